/* Unit tests for devices/ioapic: the register window as Linux programs it, edge and level
 * delivery with remote IRR and EOI, the interrupt-storm guard, snapshots and the import of
 * KVM's in-kernel IOAPIC state. A fake host records the messages sent to the local APICs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/kvm.h>
#include <string.h>

#include "devices/ioapic.h"
#include "irqchip_test_helpers.h"
#include "vmm/kvm/kvm_irqchip.h"
#include "vmm/snapshot.h"
#include "vmm/timer.h"

#define MAX_MSGS 64

/* KVM's in-kernel IOAPIC state through the kvm backend's conversion (vmm/kvm/kvm_irqchip.c). */
static int import_kvm(struct ioapic *io, const struct kvm_ioapic_state *k, bool apply, char *err, size_t errlen)
{
    struct irqchip_ioapic s;
    int rc = kvm_irqchip_ioapic_from(k, &s, err, errlen);
    if (!rc) rc = ioapic_state_check(&s, err, errlen);
    if (!rc && apply) ioapic_set_state(io, &s);
    return rc;
}

static void export_kvm(const struct ioapic *io, struct kvm_ioapic_state *k)
{
    struct irqchip_ioapic s;
    ioapic_get_state(io, &s);
    kvm_irqchip_ioapic_to(&s, k);
}

struct fake_host {
    struct ioapic *io;
    struct ioapic_msg msgs[MAX_MSGS];
    unsigned count; /* deliveries seen (msgs keeps the first MAX_MSGS) */
    uint64_t now_ns;
    struct timer_list timers;
};

static void fake_deliver(void *opaque, const struct ioapic_msg *msg)
{
    struct fake_host *h = opaque;
    if (h->count < MAX_MSGS) h->msgs[h->count] = *msg;
    h->count++;
}

static uint64_t fake_clock(void *opaque) { return ((struct fake_host *)opaque)->now_ns; }

static int setup(void **state)
{
    static struct fake_host h;
    memset(&h, 0, sizeof(h));
    h.now_ns = 5000000000ULL;
    struct ioapic_host host = {.opaque = &h, .deliver = fake_deliver, .clock_ns = fake_clock, .timers = &h.timers};
    h.io = ioapic_create(&host);
    assert_non_null(h.io);
    *state = &h;
    return 0;
}

static int teardown(void **state)
{
    struct fake_host *h = *state;
    ioapic_destroy(h->io);
    assert_int_equal(timers_next_deadline(&h->timers), TIMER_NEVER); /* the timer left the list */
    return 0;
}

static void advance(struct fake_host *h, uint64_t ns)
{
    h->now_ns += ns;
    timers_run(&h->timers, h->now_ns);
}

static uint32_t reg_read(struct ioapic *io, uint8_t index)
{
    ioapic_mmio_write(io, 0x00, index, 4);
    return ioapic_mmio_read(io, 0x10, 4);
}

static void reg_write(struct ioapic *io, uint8_t index, uint32_t v)
{
    ioapic_mmio_write(io, 0x00, index, 4);
    ioapic_mmio_write(io, 0x10, v, 4);
}

static uint64_t entry_read(struct ioapic *io, unsigned pin)
{
    uint32_t lo = reg_read(io, (uint8_t)(0x10 + 2 * pin));
    uint32_t hi = reg_read(io, (uint8_t)(0x11 + 2 * pin));
    return (uint64_t)hi << 32 | lo;
}

/* As Linux's ioapic_write_entry: high dword first, then the low one (which may unmask). */
static void entry_write(struct ioapic *io, unsigned pin, uint64_t e)
{
    reg_write(io, (uint8_t)(0x11 + 2 * pin), (uint32_t)(e >> 32));
    reg_write(io, (uint8_t)(0x10 + 2 * pin), (uint32_t)e);
}

#define E_LEVEL (1ULL << 15)
#define E_MASKED (1ULL << 16)
#define E_REMOTE_IRR (1ULL << 14)
#define E_POLARITY_LOW (1ULL << 13)
#define E_LOGICAL (1ULL << 11)
#define E_DEST(d) ((uint64_t)(d) << 56)

static void test_reset_state_and_ids(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    assert_int_equal(reg_read(io, 0x01), 0x00170020); /* 24 entries, version 0x20 */
    assert_int_equal(reg_read(io, 0x00), 0);
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) assert_int_equal(entry_read(io, pin), E_MASKED);
    reg_write(io, 0x00, 0x0a000000 | 0x00ffffff); /* only ID bits 27:24 stick */
    assert_int_equal(reg_read(io, 0x00), 0x0a000000);
    assert_int_equal(reg_read(io, 0x02), 0x0a000000); /* arbitration ID follows */
    reg_write(io, 0x01, 0); /* version is read-only */
    assert_int_equal(reg_read(io, 0x01), 0x00170020);
    /* IOREGSEL reads back; indexes past the table read all ones. */
    ioapic_mmio_write(io, 0x00, 0x3f, 4);
    assert_int_equal(ioapic_mmio_read(io, 0x00, 4), 0x3f);
    assert_int_equal(reg_read(io, 0x40), 0xffffffffu);
    /* Only 32-bit accesses. */
    assert_int_equal(ioapic_mmio_read(io, 0x10, 1), 0);
    ioapic_set_irq(io, 3, 1);
    assert_int_equal(h->count, 0); /* masked at reset */
    reg_write(io, 0x10 + 2 * 3, 0x30);
    ioapic_mmio_write(io, 0x10, 0x12345678, 2); /* ignored */
    assert_int_equal(entry_read(io, 3), 0x30);
    /* reset masks everything again and clears the ID */
    ioapic_reset(io);
    assert_int_equal(entry_read(io, 3), E_MASKED);
    assert_int_equal(reg_read(io, 0x00), 0);
}

static void test_entry_readback_and_read_only_bits(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    entry_write(io, 5, E_DEST(0x0f) | E_LOGICAL | E_LEVEL | 0x100 | 0x41);
    assert_int_equal(entry_read(io, 5), E_DEST(0x0f) | E_LOGICAL | E_LEVEL | 0x100 | 0x41);
    /* deliver once so remote IRR is set, then rewrite the entry trying to clear/set the RO bits */
    ioapic_set_irq(io, 5, 1);
    assert_int_equal(h->count, 1);
    assert_true(entry_read(io, 5) & E_REMOTE_IRR);
    reg_write(io, 0x10 + 2 * 5, (uint32_t)(E_LEVEL | 0x100 | 0x42)); /* remote IRR written as 0 */
    assert_int_equal(entry_read(io, 5), E_DEST(0x0f) | E_LEVEL | E_REMOTE_IRR | 0x100 | 0x42);
    reg_write(io, 0x10 + 2 * 5, (uint32_t)(E_MASKED | E_LEVEL | (1u << 12) | 0x42)); /* delivery status as 1 */
    assert_int_equal(entry_read(io, 5) & (1u << 12), 0);
    assert_true(entry_read(io, 5) & E_REMOTE_IRR);
    /* Making the entry edge-triggered drops remote IRR (Linux relies on it). */
    reg_write(io, 0x10 + 2 * 5, (uint32_t)(E_MASKED | 0x42));
    assert_int_equal(entry_read(io, 5), E_DEST(0x0f) | E_MASKED | 0x42);
    assert_int_equal(h->count, 1);
}

static void test_edge_delivery(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    entry_write(io, 2, E_DEST(0) | 0x30); /* the PIT's line, as Linux sets it up */
    ioapic_set_irq(io, 2, 1);
    assert_int_equal(h->count, 1);
    assert_int_equal(h->msgs[0].vector, 0x30);
    assert_false(h->msgs[0].level);
    ioapic_set_irq(io, 2, 1); /* still high: no new edge */
    assert_int_equal(h->count, 1);
    ioapic_set_irq(io, 2, 0);
    assert_int_equal(h->count, 1);
    ioapic_set_irq(io, 2, 1);
    assert_int_equal(h->count, 2);
    ioapic_set_irq(io, 2, 0);
    /* Edge entries have no EOI handshake. */
    ioapic_eoi(io, 0x30);
    assert_int_equal(h->count, 2);
    assert_int_equal(entry_read(io, 2) & E_REMOTE_IRR, 0);
    /* Out-of-range pins are ignored. */
    ioapic_set_irq(io, 24, 1);
    ioapic_set_irq(io, 1000, 1);
    assert_int_equal(h->count, 2);
}

static void test_masked_edge_is_lost(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    entry_write(io, 4, E_MASKED | 0x34);
    ioapic_set_irq(io, 4, 1);
    ioapic_set_irq(io, 4, 0);
    ioapic_set_irq(io, 4, 1);
    entry_write(io, 4, 0x34); /* unmasking while high: the edge was missed */
    assert_int_equal(h->count, 0);
    ioapic_set_irq(io, 4, 0);
    ioapic_set_irq(io, 4, 1);
    assert_int_equal(h->count, 1);
}

static void test_level_remote_irr_and_eoi(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    entry_write(io, 11, E_DEST(1) | E_LEVEL | E_POLARITY_LOW | 0x41);
    ioapic_set_irq(io, 11, 1);
    assert_int_equal(h->count, 1);
    assert_true(h->msgs[0].level);
    assert_int_equal(h->msgs[0].vector, 0x41);
    assert_int_equal(h->msgs[0].dest, 1);
    assert_true(entry_read(io, 11) & E_REMOTE_IRR);
    /* no re-delivery while waiting for the EOI, whatever the line does */
    ioapic_set_irq(io, 11, 1);
    ioapic_set_irq(io, 11, 0);
    ioapic_set_irq(io, 11, 1);
    assert_int_equal(h->count, 1);
    /* an EOI for another vector changes nothing */
    ioapic_eoi(io, 0x42);
    assert_int_equal(h->count, 1);
    assert_true(entry_read(io, 11) & E_REMOTE_IRR);
    /* EOI while still asserted: delivered again */
    ioapic_eoi(io, 0x41);
    assert_int_equal(h->count, 2);
    assert_true(entry_read(io, 11) & E_REMOTE_IRR);
    /* deasserted before the EOI: remote IRR clears, nothing more */
    ioapic_set_irq(io, 11, 0);
    ioapic_eoi(io, 0x41);
    assert_int_equal(h->count, 2);
    assert_int_equal(entry_read(io, 11) & E_REMOTE_IRR, 0);
    /* asserted while masked: delivered on unmask */
    entry_write(io, 11, E_DEST(1) | E_LEVEL | E_MASKED | 0x41);
    ioapic_set_irq(io, 11, 1);
    assert_int_equal(h->count, 2);
    entry_write(io, 11, E_DEST(1) | E_LEVEL | 0x41);
    assert_int_equal(h->count, 3);
    /* The EOI register (version 0x20) does what the local APIC's broadcast does. */
    ioapic_set_irq(io, 11, 0);
    ioapic_mmio_write(io, 0x40, 0x41, 4);
    assert_int_equal(entry_read(io, 11) & E_REMOTE_IRR, 0);
    assert_int_equal(h->count, 3);
    ioapic_set_irq(io, 11, 1);
    assert_int_equal(h->count, 4);
    ioapic_mmio_write(io, 0x40, 0x41, 4);
    assert_int_equal(h->count, 5);
}

/* The input is the device's assertion: an active-low entry (as vmd's tables declare PCI INTx)
 * delivers on assertion and keeps its polarity bit for the guest. */
static void test_polarity_low(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    entry_write(io, 16, E_LEVEL | E_POLARITY_LOW | 0x51);
    assert_int_equal(h->count, 0); /* an idle (deasserted) line does not request */
    ioapic_set_irq(io, 16, 1);
    assert_int_equal(h->count, 1);
    assert_int_equal(entry_read(io, 16), E_LEVEL | E_POLARITY_LOW | E_REMOTE_IRR | 0x51);
    ioapic_set_irq(io, 16, 0);
    ioapic_eoi(io, 0x51);
    assert_int_equal(h->count, 1);
}

static void test_destination_and_delivery_mode(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    entry_write(io, 7, E_DEST(0x03) | E_LOGICAL | (1ULL << 8) | 0x61); /* logical, lowest priority */
    entry_write(io, 8, E_DEST(0x02) | (4ULL << 8) | 0x00);             /* physical, NMI */
    entry_write(io, 9, E_DEST(0x00) | (7ULL << 8) | 0x00);             /* ExtINT */
    ioapic_set_irq(io, 7, 1);
    ioapic_set_irq(io, 8, 1);
    ioapic_set_irq(io, 9, 1);
    assert_int_equal(h->count, 3);
    assert_true(h->msgs[0].logical);
    assert_int_equal(h->msgs[0].dest, 3);
    assert_int_equal(h->msgs[0].delivery_mode, 1);
    assert_int_equal(h->msgs[0].vector, 0x61);
    assert_false(h->msgs[1].logical);
    assert_int_equal(h->msgs[1].dest, 2);
    assert_int_equal(h->msgs[1].delivery_mode, 4);
    assert_int_equal(h->msgs[2].delivery_mode, 7);
}

/* A level line the guest acknowledges without silencing: deliveries are bounded in time. */
static void test_storm_guard(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    entry_write(io, 10, E_LEVEL | 0x71);
    ioapic_set_irq(io, 10, 1);
    assert_int_equal(h->count, 1);
    unsigned eois = 0;
    while (h->count == eois + 1 && eois < 100000) {
        ioapic_eoi(io, 0x71);
        eois++;
    }
    /* It stopped re-delivering at once after 10000 successive EOIs... */
    assert_int_equal(eois, 10000);
    assert_int_equal(h->count, 10000);
    assert_int_equal(entry_read(io, 10) & E_REMOTE_IRR, 0);
    /* ...more EOIs and register accesses do not re-deliver it either... */
    for (unsigned i = 0; i < 1000; i++) ioapic_eoi(io, 0x71);
    ioapic_set_irq(io, 10, 1);
    assert_int_equal(h->count, 10000);
    /* ...until 10 ms later, when the line, still asserted, is delivered again. */
    advance(h, 9000000);
    assert_int_equal(h->count, 10000);
    advance(h, 1000000);
    assert_int_equal(h->count, 10001);
    assert_true(entry_read(io, 10) & E_REMOTE_IRR);
    /* A quiet line resets the count: the next 9999 EOIs re-deliver at once again. */
    ioapic_set_irq(io, 10, 0);
    ioapic_eoi(io, 0x71);
    ioapic_set_irq(io, 10, 1);
    assert_int_equal(h->count, 10002);
    for (unsigned i = 0; i < 9999; i++) ioapic_eoi(io, 0x71);
    assert_int_equal(h->count, 20001);
    /* the deferred delivery is dropped if the line went quiet meanwhile */
    ioapic_eoi(io, 0x71);
    assert_int_equal(h->count, 20001);
    ioapic_set_irq(io, 10, 0);
    advance(h, 20000000);
    assert_int_equal(h->count, 20001);
}

/* Without a timer list, the postponed delivery happens at the next input change or access. */
static void test_storm_guard_without_timers(void **state)
{
    (void)state;
    struct fake_host h;
    memset(&h, 0, sizeof(h));
    struct ioapic_host host = {.opaque = &h, .deliver = fake_deliver};
    struct ioapic *io = ioapic_create(&host);
    assert_non_null(io);
    entry_write(io, 10, E_LEVEL | 0x71);
    ioapic_set_irq(io, 10, 1);
    for (unsigned i = 0; i < 20000; i++) ioapic_eoi(io, 0x71);
    assert_int_equal(h.count, 10000);
    (void)ioapic_mmio_read(io, 0x00, 4);
    assert_int_equal(h.count, 10001);
    ioapic_destroy(io);
}

static void program_sample(struct fake_host *h)
{
    struct ioapic *io = h->io;
    reg_write(io, 0x00, 0x05000000);
    entry_write(io, 2, E_DEST(0) | 0x30);
    entry_write(io, 9, E_DEST(1) | E_LEVEL | 0x39);
    entry_write(io, 11, E_DEST(3) | E_LOGICAL | E_LEVEL | E_POLARITY_LOW | (1ULL << 8) | 0x41);
    ioapic_set_irq(io, 11, 1); /* delivered, waits for its EOI */
    ioapic_set_irq(io, 5, 1);  /* masked input held high */
    ioapic_mmio_write(io, 0x00, 0x17, 4);
}

static void test_snapshot_round_trip(void **state)
{
    struct fake_host *h = *state;
    program_sample(h);
    assert_int_equal(h->count, 1);
    struct snap_buf b;
    snap_buf_init(&b);
    ioapic_save(h->io, &b);
    assert_false(b.failed);

    struct fake_host h2;
    memset(&h2, 0, sizeof(h2));
    h2.now_ns = 77;
    struct ioapic_host host = {.opaque = &h2, .deliver = fake_deliver, .clock_ns = fake_clock, .timers = &h2.timers};
    struct ioapic *io2 = ioapic_create(&host);
    assert_non_null(io2);
    char err[256];
    struct snap_reader r = {.data = b.data, .len = b.len};
    assert_int_equal(ioapic_restore(io2, &r, false, err, sizeof(err)), 0);
    assert_int_equal(entry_read(io2, 11), E_MASKED); /* apply=false changed nothing */
    ioapic_mmio_write(io2, 0x00, 0x00, 4);
    struct snap_reader r2 = {.data = b.data, .len = b.len};
    assert_int_equal(ioapic_restore(io2, &r2, true, err, sizeof(err)), 0);
    assert_int_equal(r2.pos, b.len);
    assert_int_equal(ioapic_mmio_read(io2, 0x00, 4), 0x17);
    assert_int_equal(reg_read(io2, 0x00), 0x05000000);
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) assert_int_equal(entry_read(io2, pin), entry_read(h->io, pin));
    /* same behaviour: EOI re-delivers the asserted line, unmasking 5 as level delivers */
    ioapic_eoi(io2, 0x41);
    assert_int_equal(h2.count, 1);
    assert_int_equal(h2.msgs[0].vector, 0x41);
    assert_true(h2.msgs[0].logical);
    entry_write(io2, 5, E_LEVEL | 0x35);
    assert_int_equal(h2.count, 2);
    ioapic_destroy(io2);
    snap_buf_free(&b);
}

/* A level line asserted with remote IRR clear is delivered after the restore, from the timer. */
static void test_restore_delivers_due_level_line_later(void **state)
{
    struct fake_host *h = *state;
    entry_write(h->io, 9, E_MASKED | E_LEVEL | 0x39);
    ioapic_set_irq(h->io, 9, 1);
    struct snap_buf b;
    snap_buf_init(&b);
    ioapic_save(h->io, &b);
    /* make pin 9 look due in the saved state: unmasked, remote IRR clear */
    uint64_t e = E_LEVEL | 0x39;
    memcpy(b.data + b.len - 8 * (IOAPIC_PINS - 9), &e, 8);
    char err[256];
    struct snap_reader r = {.data = b.data, .len = b.len};
    unsigned before = h->count;
    assert_int_equal(ioapic_restore(h->io, &r, true, err, sizeof(err)), 0);
    assert_int_equal(h->count, before); /* not from inside the restore */
    advance(h, 0);
    assert_int_equal(h->count, before + 1);
    assert_int_equal(h->msgs[before].vector, 0x39);
    snap_buf_free(&b);
}

static void test_restore_refuses_garbage(void **state)
{
    struct fake_host *h = *state;
    program_sample(h);
    struct snap_buf b;
    snap_buf_init(&b);
    ioapic_save(h->io, &b);
    struct fake_host h2;
    memset(&h2, 0, sizeof(h2));
    struct ioapic_host host = {.opaque = &h2, .deliver = fake_deliver};
    struct ioapic *io2 = ioapic_create(&host);
    char err[256];
    for (size_t n = 0; n < b.len; n++) {
        struct snap_reader cut = {.data = b.data, .len = n};
        err[0] = 0;
        assert_int_equal(ioapic_restore(io2, &cut, true, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "ioapic"));
    }
    uint8_t bad[sizeof(uint8_t) * 512];
    assert_true(b.len <= sizeof(bad));
    /* ID beyond 4 bits */
    memcpy(bad, b.data, b.len);
    bad[1] = 0x10;
    struct snap_reader r1 = {.data = bad, .len = b.len};
    assert_int_equal(ioapic_restore(io2, &r1, true, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "ID"));
    /* an input beyond pin 23 */
    memcpy(bad, b.data, b.len);
    bad[5] = 0x80;
    struct snap_reader r2 = {.data = bad, .len = b.len};
    assert_int_equal(ioapic_restore(io2, &r2, true, err, sizeof(err)), -EINVAL);
    /* remote IRR on an edge entry (pin 2) */
    memcpy(bad, b.data, b.len);
    bad[10 + 8 * 2 + 1] |= 0x40;
    struct snap_reader r3 = {.data = bad, .len = b.len};
    assert_int_equal(ioapic_restore(io2, &r3, true, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "remote IRR"));
    /* all ones */
    memset(bad, 0xff, b.len);
    struct snap_reader r4 = {.data = bad, .len = b.len};
    assert_int_equal(ioapic_restore(io2, &r4, true, err, sizeof(err)), -EINVAL);
    /* nothing was applied */
    assert_int_equal(reg_read(io2, 0x00), 0);
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) assert_int_equal(entry_read(io2, pin), E_MASKED);
    assert_int_equal(h2.count, 0);
    ioapic_destroy(io2);
    snap_buf_free(&b);
}

static void kvm_sample(struct kvm_ioapic_state *k)
{
    memset(k, 0, sizeof(*k));
    k->base_address = 0xfec00000;
    k->ioregsel = 0x12;
    k->id = 2;
    for (unsigned pin = 0; pin < KVM_IOAPIC_NUM_PINS; pin++) k->redirtbl[pin].fields.mask = 1;
    /* pin 2: the PIT, edge, physical to APIC 0 */
    k->redirtbl[2].bits = 0x30;
    /* pin 11: level active-low, logical, lowest priority, delivered and waiting for its EOI */
    k->redirtbl[11].bits = 0;
    k->redirtbl[11].fields.vector = 0x41;
    k->redirtbl[11].fields.delivery_mode = 1;
    k->redirtbl[11].fields.dest_mode = 1;
    k->redirtbl[11].fields.polarity = 1;
    k->redirtbl[11].fields.trig_mode = 1;
    k->redirtbl[11].fields.remote_irr = 1;
    k->redirtbl[11].fields.dest_id = 0x01;
    /* pin 9: level, masked, input asserted */
    k->redirtbl[9].bits = (1ULL << 16) | (1ULL << 15) | 0x39;
    k->irr = (1u << 11) | (1u << 9);
}

static void test_import_kvm(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    struct kvm_ioapic_state k;
    kvm_sample(&k);
    char err[256];
    assert_int_equal(import_kvm(io, &k, false, err, sizeof(err)), 0);
    assert_int_equal(entry_read(io, 11), E_MASKED); /* dry run changes nothing */
    assert_int_equal(import_kvm(io, &k, true, err, sizeof(err)), 0);
    advance(h, 0);
    assert_int_equal(h->count, 0); /* 11 waits for its EOI, 9 is masked */
    assert_int_equal(ioapic_mmio_read(io, 0x00, 4), 0x12);
    assert_int_equal(reg_read(io, 0x00), 0x02000000);
    assert_int_equal(entry_read(io, 2), 0x30);
    assert_int_equal(entry_read(io, 11), E_DEST(1) | E_LEVEL | E_REMOTE_IRR | E_POLARITY_LOW | E_LOGICAL |
                                             (1ULL << 8) | 0x41);
    assert_int_equal(entry_read(io, 9), E_MASKED | E_LEVEL | 0x39);
    assert_int_equal(entry_read(io, 0), E_MASKED);
    assert_int_equal(entry_read(io, 23), E_MASKED);
    /* the asserted inputs came over: EOI re-delivers 11, unmasking 9 delivers it */
    ioapic_eoi(io, 0x41);
    assert_int_equal(h->count, 1);
    assert_int_equal(h->msgs[0].vector, 0x41);
    assert_int_equal(h->msgs[0].dest, 1);
    assert_int_equal(h->msgs[0].delivery_mode, 1);
    entry_write(io, 9, E_LEVEL | 0x39);
    assert_int_equal(h->count, 2);
    /* pin 2's input was low: the next rising edge delivers */
    ioapic_set_irq(io, 2, 1);
    assert_int_equal(h->count, 3);
    assert_int_equal(h->msgs[2].vector, 0x30);
}

static void test_import_kvm_refusals(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    struct kvm_ioapic_state k;
    kvm_sample(&k);
    char err[256] = "";
    k.base_address = 0xfec01000;
    assert_int_equal(import_kvm(io, &k, true, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "moved its IOAPIC to 0xfec01000"));
    kvm_sample(&k);
    k.id = 16;
    assert_int_equal(import_kvm(io, &k, true, err, sizeof(err)), -EINVAL);
    kvm_sample(&k);
    k.irr = 1u << 24;
    assert_int_equal(import_kvm(io, &k, true, err, sizeof(err)), -EINVAL);
    /* nothing was applied */
    assert_int_equal(reg_read(io, 0x00), 0);
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) assert_int_equal(entry_read(io, pin), E_MASKED);
}

/* export_kvm gives KVM what a guest programmed; import_kvm takes it back to the
 * same registers. An edge pin's high input is not handed over (KVM would deliver it again). */
static void test_export_kvm_round_trip(void **state)
{
    struct fake_host *h = *state;
    struct ioapic *io = h->io;
    reg_write(io, 0x00, 0x05000000); /* ID 5 */
    entry_write(io, 1, E_DEST(1) | 0x31);
    entry_write(io, 4, E_DEST(1) | 0x34);
    entry_write(io, 10, E_DEST(1) | E_LEVEL | E_POLARITY_LOW | (1ULL << 8) | 0x41);
    entry_write(io, 11, E_MASKED | E_LEVEL | 0x42);
    ioapic_set_irq(io, 10, 1); /* delivered: remote IRR until the EOI */
    ioapic_set_irq(io, 11, 1); /* masked: waits */
    ioapic_set_irq(io, 4, 1);  /* edge: delivered, input stays high */
    assert_int_equal(h->count, 2);
    ioapic_mmio_write(io, 0x00, 0x13, 4);
    struct kvm_ioapic_state k;
    export_kvm(io, &k);
    assert_int_equal(k.base_address, 0xfec00000);
    assert_int_equal(k.id, 5);
    assert_int_equal(k.ioregsel, 0x13);
    assert_int_equal(k.irr, (1u << 10) | (1u << 11));
    assert_int_equal(k.redirtbl[10].fields.remote_irr, 1);
    assert_int_equal(k.redirtbl[10].fields.vector, 0x41);
    assert_int_equal(k.redirtbl[11].fields.mask, 1);
    assert_int_equal(k.redirtbl[0].fields.mask, 1);

    struct ioapic_host host = {0};
    struct ioapic *io2 = ioapic_create(&host);
    assert_non_null(io2);
    char err[256] = "";
    assert_int_equal(import_kvm(io2, &k, true, err, sizeof(err)), 0);
    assert_int_equal(ioapic_mmio_read(io2, 0x00, 4), 0x13);
    for (uint8_t index = 0; index < 0x10 + 2 * IOAPIC_PINS; index++)
        if (index < 3 || index >= 0x10) assert_int_equal(reg_read(io2, index), reg_read(io, index));
    ioapic_destroy(io2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reset_state_and_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_readback_and_read_only_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edge_delivery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_masked_edge_is_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_remote_irr_and_eoi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_polarity_low, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destination_and_delivery_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storm_guard, setup, teardown),
        cmocka_unit_test(test_storm_guard_without_timers),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_delivers_due_level_line_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_refuses_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_kvm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_kvm_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_kvm_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
