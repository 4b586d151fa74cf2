/* ioapic: the 82093AA-style I/O APIC of the emu backend's APIC platform (see ioapic.h).
 *
 * Model: `lines` holds each pin's input as the devices drive it (1 = asserted). An edge entry
 * delivers when its input goes from 0 to 1 while unmasked (an edge arriving while masked is
 * lost, as on the chip). A level entry delivers whenever its input is asserted, it is unmasked
 * and remote IRR is clear; delivering sets remote IRR, the local APIC's EOI for its vector
 * clears it (and so re-delivers a line still asserted). The polarity bit is kept for the guest
 * to read back but does not invert the input: like KVM's and QEMU's IOAPICs, the input is the
 * device's logical assertion (vmd's firmware tables declare PCI INTx active-low while its
 * devices assert with 1).
 *
 * Storm guard: a level line re-delivered at EOI IOAPIC_STORM_EOIS times in a row (the guest
 * acknowledges it without silencing the device) has its next delivery postponed by
 * IOAPIC_STORM_DELAY_NS, as KVM does (IOAPIC_SUCCESSIVE_IRQ_MAX_COUNT): the guest makes
 * progress and the host does not spin in interrupt delivery. Postponed deliveries are made by
 * a timer when the host gives a timer list, else at the next input change or register access.
 */
#include "ioapic.h"

#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dev_snapshot.h"
#include "vmm/snapshot.h"
#include "vmm/timer.h"

#define IOAPIC_REG_SELECT 0x00
#define IOAPIC_REG_WINDOW 0x10
#define IOAPIC_REG_EOI 0x40

#define IOAPIC_INDEX_ID 0x00
#define IOAPIC_INDEX_VERSION 0x01
#define IOAPIC_INDEX_ARB 0x02
#define IOAPIC_INDEX_REDIR 0x10
#define IOAPIC_VERSION_VALUE (((uint32_t)(IOAPIC_PINS - 1) << 16) | 0x20)

#define REDIR_VECTOR_MASK 0xffULL
#define REDIR_DELIVERY_SHIFT 8
#define REDIR_DEST_LOGICAL (1ULL << 11)
#define REDIR_DELIVERY_STATUS (1ULL << 12)
#define REDIR_POLARITY_LOW (1ULL << 13)
#define REDIR_REMOTE_IRR (1ULL << 14)
#define REDIR_LEVEL (1ULL << 15)
#define REDIR_MASKED (1ULL << 16)
#define REDIR_DEST_SHIFT 56
#define REDIR_READ_ONLY (REDIR_DELIVERY_STATUS | REDIR_REMOTE_IRR)

#define IOAPIC_PIN_MASK ((1u << IOAPIC_PINS) - 1)
#define IOAPIC_STORM_EOIS 10000
#define IOAPIC_STORM_DELAY_NS 10000000ULL /* 10 ms, as KVM (HZ / 100) */

struct ioapic {
    struct ioapic_host host;
    uint8_t ioregsel;
    uint8_t id; /* 4 bits */
    uint64_t redir[IOAPIC_PINS];
    uint32_t lines;                    /* input levels (1 asserted) */
    uint32_t deferred;                 /* level pins whose delivery waits for the storm timer */
    uint16_t eoi_redeliveries[IOAPIC_PINS]; /* successive re-deliveries at EOI */
    struct vm_timer storm_timer;
};

static bool redir_level(uint64_t e) { return e & REDIR_LEVEL; }

static void ioapic_deliver(struct ioapic *io, unsigned pin)
{
    uint64_t e = io->redir[pin];
    struct ioapic_msg msg = {
        .vector = (uint8_t)(e & REDIR_VECTOR_MASK),
        .delivery_mode = (uint8_t)((e >> REDIR_DELIVERY_SHIFT) & 7),
        .logical = e & REDIR_DEST_LOGICAL,
        .level = redir_level(e),
        .dest = (uint8_t)(e >> REDIR_DEST_SHIFT),
    };
    if (redir_level(e)) io->redir[pin] |= REDIR_REMOTE_IRR;
    if (io->host.deliver) io->host.deliver(io->host.opaque, &msg);
}

/* A level entry's delivery condition: asserted, unmasked, not waiting for an EOI. */
static bool ioapic_level_ready(const struct ioapic *io, unsigned pin)
{
    uint64_t e = io->redir[pin];
    return redir_level(e) && (io->lines & (1u << pin)) && !(e & (REDIR_MASKED | REDIR_REMOTE_IRR));
}

/* Deliver what the storm guard (or a restore) postponed and is still due. */
static void ioapic_run_deferred(struct ioapic *io)
{
    uint32_t pins = io->deferred;
    io->deferred = 0;
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
        if ((pins & (1u << pin)) && ioapic_level_ready(io, pin)) ioapic_deliver(io, pin);
}

static void ioapic_storm_timer(void *opaque, uint64_t now_ns)
{
    (void)now_ns;
    ioapic_run_deferred(opaque);
}

static bool ioapic_has_timer(const struct ioapic *io) { return io->host.timers && io->host.clock_ns; }

/* Postpone `pins`' delivery by `delay_ns` (to the next call into the model without a timer list). */
static void ioapic_defer(struct ioapic *io, uint32_t pins, uint64_t delay_ns)
{
    if (!pins) return;
    io->deferred |= pins;
    if (ioapic_has_timer(io) && !io->storm_timer.armed)
        timer_mod(io->host.timers, &io->storm_timer, io->host.clock_ns(io->host.opaque) + delay_ns);
}

/* Without a timer list, postponed deliveries happen at the next input change or register
 * access (not at an EOI: that would re-deliver a storming line at once). */
static void ioapic_poll_deferred(struct ioapic *io)
{
    if (io->deferred && !ioapic_has_timer(io)) ioapic_run_deferred(io);
}

struct ioapic *ioapic_create(const struct ioapic_host *host)
{
    struct ioapic *io = calloc(1, sizeof(*io));
    if (!io) return NULL;
    if (host) io->host = *host;
    timer_init(&io->storm_timer, ioapic_storm_timer, io);
    ioapic_reset(io);
    return io;
}

void ioapic_destroy(struct ioapic *io)
{
    if (!io) return;
    if (io->host.timers) timer_del(io->host.timers, &io->storm_timer);
    free(io);
}

void ioapic_reset(struct ioapic *io)
{
    io->ioregsel = 0;
    io->id = 0;
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        io->redir[pin] = REDIR_MASKED;
        io->eoi_redeliveries[pin] = 0;
    }
    io->deferred = 0;
    if (io->host.timers) timer_del(io->host.timers, &io->storm_timer);
    /* `lines` stays: the input levels belong to the devices driving them. */
}

static uint32_t ioapic_read_reg(const struct ioapic *io)
{
    switch (io->ioregsel) {
    case IOAPIC_INDEX_ID:
    case IOAPIC_INDEX_ARB:
        return (uint32_t)io->id << 24;
    case IOAPIC_INDEX_VERSION:
        return IOAPIC_VERSION_VALUE;
    default: {
        if (io->ioregsel < IOAPIC_INDEX_REDIR) return 0xffffffffu;
        unsigned pin = (io->ioregsel - IOAPIC_INDEX_REDIR) >> 1;
        if (pin >= IOAPIC_PINS) return 0xffffffffu;
        uint64_t e = io->redir[pin];
        return (io->ioregsel & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
    }
    }
}

static void ioapic_write_reg(struct ioapic *io, uint32_t value)
{
    switch (io->ioregsel) {
    case IOAPIC_INDEX_ID:
        io->id = (uint8_t)((value >> 24) & 0xf);
        return;
    case IOAPIC_INDEX_VERSION:
    case IOAPIC_INDEX_ARB:
        return; /* read-only */
    default:
        break;
    }
    if (io->ioregsel < IOAPIC_INDEX_REDIR) return;
    unsigned pin = (io->ioregsel - IOAPIC_INDEX_REDIR) >> 1;
    if (pin >= IOAPIC_PINS) return;
    uint64_t old = io->redir[pin], e;
    if (io->ioregsel & 1) {
        e = (old & 0xffffffffULL) | ((uint64_t)value << 32);
    } else {
        e = (old & ~0xffffffffULL) | value;
        e = (e & ~REDIR_READ_ONLY) | (old & REDIR_READ_ONLY);
    }
    /* An entry made edge-triggered has no EOI to wait for (Linux relies on this to clear a
     * stuck remote IRR: KVM and QEMU do the same). */
    if (!redir_level(e)) e &= ~REDIR_REMOTE_IRR;
    io->redir[pin] = e;
    if (ioapic_level_ready(io, pin)) ioapic_deliver(io, pin);
}

uint32_t ioapic_mmio_read(struct ioapic *io, uint32_t offset, unsigned size)
{
    ioapic_poll_deferred(io);
    if (size != 4) return 0;
    switch (offset) {
    case IOAPIC_REG_SELECT:
        return io->ioregsel;
    case IOAPIC_REG_WINDOW:
        return ioapic_read_reg(io);
    default:
        return 0; /* the EOI register is write-only */
    }
}

void ioapic_mmio_write(struct ioapic *io, uint32_t offset, uint32_t value, unsigned size)
{
    ioapic_poll_deferred(io);
    if (size != 4) return;
    switch (offset) {
    case IOAPIC_REG_SELECT:
        io->ioregsel = (uint8_t)value;
        break;
    case IOAPIC_REG_WINDOW:
        ioapic_write_reg(io, value);
        break;
    case IOAPIC_REG_EOI:
        ioapic_eoi(io, (uint8_t)value);
        break;
    default:
        break;
    }
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, int level)
{
    if (!io || pin >= IOAPIC_PINS) return;
    ioapic_poll_deferred(io);
    uint32_t bit = 1u << pin;
    bool was = io->lines & bit;
    if (!level) {
        io->lines &= ~bit;
        return;
    }
    io->lines |= bit;
    uint64_t e = io->redir[pin];
    if (redir_level(e)) {
        if (ioapic_level_ready(io, pin) && !(io->deferred & bit)) ioapic_deliver(io, pin);
    } else if (!was && !(e & REDIR_MASKED)) {
        ioapic_deliver(io, pin);
    }
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
    if (!io) return;
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        uint64_t e = io->redir[pin];
        if (!redir_level(e) || (uint8_t)(e & REDIR_VECTOR_MASK) != vector) continue;
        io->redir[pin] &= ~REDIR_REMOTE_IRR;
        if (!ioapic_level_ready(io, pin)) {
            io->eoi_redeliveries[pin] = 0; /* the device went quiet (or is masked): no storm */
            continue;
        }
        if (io->deferred & (1u << pin)) continue; /* already postponed */
        if (++io->eoi_redeliveries[pin] >= IOAPIC_STORM_EOIS) {
            io->eoi_redeliveries[pin] = 0;
            ioapic_defer(io, 1u << pin, IOAPIC_STORM_DELAY_NS);
            continue;
        }
        ioapic_deliver(io, pin);
    }
}

/* Snapshot payload: u8 ioregsel, u8 id, u32 input levels, u32 postponed pins, 24 x u64 entries. */
#define IOAPIC_SAVED_LEN (1 + 1 + 4 + 4 + 8 * IOAPIC_PINS)

void ioapic_save(const struct ioapic *io, struct snap_buf *b)
{
    snap_put_u8(b, io->ioregsel);
    snap_put_u8(b, io->id);
    snap_put_u32(b, io->lines);
    snap_put_u32(b, io->deferred);
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) snap_put_u64(b, io->redir[pin]);
}

/* Load validated state, then have the level lines that are due delivered once the rest of
 * the machine (the local APICs) is restored: from the timer list, or at the next call. */
static void ioapic_load(struct ioapic *io, uint8_t ioregsel, uint8_t id, uint32_t lines, uint32_t deferred,
                        const uint64_t *redir)
{
    if (io->host.timers) timer_del(io->host.timers, &io->storm_timer);
    io->ioregsel = ioregsel;
    io->id = id;
    io->lines = lines;
    io->deferred = 0;
    memcpy(io->redir, redir, sizeof(io->redir));
    memset(io->eoi_redeliveries, 0, sizeof(io->eoi_redeliveries));
    uint32_t due = deferred;
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
        if (ioapic_level_ready(io, pin)) due |= 1u << pin;
    ioapic_defer(io, due, 0);
}

int ioapic_restore(struct ioapic *io, struct snap_reader *r, bool apply, char *err, size_t errlen)
{
    uint8_t ioregsel = snap_get_u8(r);
    uint8_t id = snap_get_u8(r);
    uint32_t lines = snap_get_u32(r);
    uint32_t deferred = snap_get_u32(r);
    uint64_t redir[IOAPIC_PINS];
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) redir[pin] = snap_get_u64(r);
    if (r->short_read) return dev_snapshot_invalid("ioapic", "truncated", err, errlen);
    if (id > 0xf) return dev_snapshot_invalid("ioapic", "ID out of range", err, errlen);
    if ((lines | deferred) & ~IOAPIC_PIN_MASK) return dev_snapshot_invalid("ioapic", "pin out of range", err, errlen);
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        if (redir[pin] & REDIR_DELIVERY_STATUS)
            return dev_snapshot_invalid("ioapic", "redirection entry with delivery status set", err, errlen);
        if ((redir[pin] & REDIR_REMOTE_IRR) && !redir_level(redir[pin]))
            return dev_snapshot_invalid("ioapic", "edge-triggered entry with remote IRR set", err, errlen);
    }
    if (apply) ioapic_load(io, ioregsel, id, lines, deferred, redir);
    return 0;
}

int ioapic_import_kvm(struct ioapic *io, const void *kvm_ioapic_state, size_t len, bool apply, char *err,
                      size_t errlen)
{
    struct kvm_ioapic_state k;
    if (!kvm_ioapic_state || len != sizeof(k)) {
        snprintf(err, errlen, "ioapic: KVM's IOAPIC state is %zu bytes, expected %zu", len, sizeof(k));
        return -EINVAL;
    }
    memcpy(&k, kvm_ioapic_state, sizeof(k));
    if (k.base_address != IOAPIC_BASE) {
        snprintf(err, errlen, "ioapic: the guest moved its IOAPIC to 0x%" PRIx64 ", not supported (only 0x%llx)",
                 (uint64_t)k.base_address, IOAPIC_BASE);
        return -EINVAL;
    }
    if (k.id > 0xf) {
        snprintf(err, errlen, "ioapic: KVM's IOAPIC has ID %u (4 bits expected)", k.id);
        return -EINVAL;
    }
    if (k.irr & ~IOAPIC_PIN_MASK) {
        snprintf(err, errlen, "ioapic: KVM's IOAPIC has inputs asserted beyond pin %d (irr 0x%x)", IOAPIC_PINS - 1,
                 k.irr);
        return -EINVAL;
    }
    uint64_t redir[IOAPIC_PINS];
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        /* KVM does not model delivery status (always idle); remote IRR only means something
         * on level entries (KVM clears it when an entry becomes edge-triggered). */
        uint64_t e = k.redirtbl[pin].bits & ~REDIR_DELIVERY_STATUS;
        if (!redir_level(e)) e &= ~REDIR_REMOTE_IRR;
        redir[pin] = e;
    }
    /* KVM's irr is the asserted state of each input (it ignores polarity, as this model does). */
    if (apply) ioapic_load(io, (uint8_t)k.ioregsel, (uint8_t)k.id, k.irr, 0, redir);
    return 0;
}

int ioapic_export_kvm(const struct ioapic *io, void *kvm_ioapic_state, size_t len)
{
    struct kvm_ioapic_state k;
    if (!kvm_ioapic_state || len != sizeof(k)) return -EINVAL;
    memset(&k, 0, sizeof(k));
    k.base_address = IOAPIC_BASE;
    k.ioregsel = io->ioregsel;
    k.id = io->id;
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        k.redirtbl[pin].bits = io->redir[pin] & ~REDIR_DELIVERY_STATUS;
        if (redir_level(io->redir[pin])) k.irr |= io->lines & (1u << pin);
    }
    memcpy(kvm_ioapic_state, &k, sizeof(k));
    return 0;
}

int ioapic_saved_to_kvm(struct snap_reader *r, void *kvm_ioapic_state, size_t len, char *err, size_t errlen)
{
    /* A model with no host: restoring into it only parses, checks and holds the state. */
    struct ioapic *io = ioapic_create(NULL);
    if (!io) return -ENOMEM;
    int rc = ioapic_restore(io, r, true, err, errlen);
    if (!rc && (rc = ioapic_export_kvm(io, kvm_ioapic_state, len)))
        snprintf(err, errlen, "ioapic: the buffer for KVM's IOAPIC state is %zu bytes, expected %zu", len,
                 sizeof(struct kvm_ioapic_state));
    ioapic_destroy(io);
    return rc;
}
