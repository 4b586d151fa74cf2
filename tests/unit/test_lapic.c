/* Unit tests for vmm/emu/lapic: the local APIC model driven through a fake host (its own timer
 * list, a clock and a TSC the test advances, counting kick and EOI-broadcast callbacks). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "devices/lapic.h"
#include "irqchip_test_helpers.h"
#include "vmm/snapshot.h"

#define TSC_KHZ 2000000ULL /* 2 GHz: the fake TSC runs 2 ticks per ns */

struct fake_host {
    struct timer_list timers;
    uint64_t now_ns;
    uint64_t tsc_base; /* TSC at now_ns == 0 */
    unsigned kicks, eois;
    int last_eoi;
    struct lapic_host host;
    struct lapic *a;
};

static void fake_kick(void *o) { ((struct fake_host *)o)->kicks++; }
static void fake_eoi(void *o, uint8_t vector)
{
    struct fake_host *f = o;
    f->eois++;
    f->last_eoi = vector;
}
static uint64_t fake_clock(void *o) { return ((struct fake_host *)o)->now_ns; }
static uint64_t fake_tsc(void *o)
{
    struct fake_host *f = o;
    return f->tsc_base + f->now_ns * (TSC_KHZ / 1000000);
}

static struct fake_host *host_new(uint32_t id, uint64_t start_ns)
{
    struct fake_host *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->now_ns = start_ns;
    f->tsc_base = 1000000;
    f->last_eoi = -1;
    f->host = (struct lapic_host){.opaque = f,
                                  .kick = fake_kick,
                                  .eoi_broadcast = fake_eoi,
                                  .tsc_now = fake_tsc,
                                  .tsc_khz = TSC_KHZ,
                                  .clock_ns = fake_clock,
                                  .timers = &f->timers};
    f->a = lapic_create(&f->host, id);
    assert_non_null(f->a);
    return f;
}

static void host_free(struct fake_host *f)
{
    lapic_destroy(f->a);
    assert_null(f->timers.head); /* destroy disarmed the timer */
    free(f);
}

static void advance(struct fake_host *f, uint64_t ns)
{
    f->now_ns += ns;
    timers_run(&f->timers, f->now_ns);
}

static uint32_t rd(struct fake_host *f, uint32_t off)
{
    uint32_t v = 0xdeadbeef;
    lapic_mmio_read(f->a, off, &v, 4);
    return v;
}

static void wr(struct fake_host *f, uint32_t off, uint32_t v) { lapic_mmio_write(f->a, off, &v, 4); }

static bool irr_has(struct fake_host *f, unsigned v) { return (rd(f, 0x200 + (v / 32) * 16) >> (v % 32)) & 1; }
static bool isr_has(struct fake_host *f, unsigned v) { return (rd(f, 0x100 + (v / 32) * 16) >> (v % 32)) & 1; }
static bool tmr_has(struct fake_host *f, unsigned v) { return (rd(f, 0x180 + (v / 32) * 16) >> (v % 32)) & 1; }

static void sw_enable(struct fake_host *f) { wr(f, 0xf0, 0x1ff); }

/* Take the pending vector and end it, as a guest handler would. */
static void ack_eoi(struct fake_host *f, int expect)
{
    assert_int_equal(lapic_ack(f->a), expect);
    wr(f, 0xb0, 0);
}

static void enter_x2apic(struct fake_host *f)
{
    assert_true(lapic_set_base(f->a, LAPIC_DEFAULT_BASE | APIC_BASE_ENABLE | APIC_BASE_EXTD));
}

/* The model's whole state as lapic_save writes it (for "nothing changed" checks). */
static struct snap_buf save_of(struct lapic *a)
{
    struct snap_buf b;
    snap_buf_init(&b);
    lapic_save(a, &b);
    assert_false(b.failed);
    return b;
}

static void assert_same_state(struct lapic *a, const struct snap_buf *before)
{
    struct snap_buf now = save_of(a);
    assert_int_equal(now.len, before->len);
    assert_memory_equal(now.data, before->data, now.len);
    snap_buf_free(&now);
}

static void test_power_on_state(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 0);
    assert_int_equal(lapic_get_base(f->a), 0xfee00900ULL); /* base | enable | BSP */
    assert_true(lapic_enabled(f->a));
    assert_true(lapic_mmio_claims(f->a, 0xfee00000));
    assert_true(lapic_mmio_claims(f->a, 0xfee00ff0));
    assert_false(lapic_mmio_claims(f->a, 0xfee01000));
    assert_false(lapic_mmio_claims(f->a, 0xfedff000));
    assert_int_equal(rd(f, 0x20), 0);
    assert_int_equal(rd(f, 0x30), 0x50014);
    assert_int_equal(rd(f, 0x80), 0);
    assert_int_equal(rd(f, 0xa0), 0);
    assert_int_equal(rd(f, 0xd0), 0);
    assert_int_equal(rd(f, 0xe0), 0xffffffffu);
    assert_int_equal(rd(f, 0xf0), 0xff);
    /* every LVT masked, except the BSP's LINT0: virtual wire (ExtINT), as firmware leaves it */
    for (uint32_t off = 0x320; off <= 0x370; off += 0x10) assert_int_equal(rd(f, off), off == 0x350 ? 0x700 : 0x10000);
    assert_int_equal(rd(f, 0x2f0), 0x10000);
    assert_int_equal(rd(f, 0x380), 0);
    assert_int_equal(rd(f, 0x390), 0);
    assert_int_equal(rd(f, 0x3e0), 0);
    for (uint32_t off = 0x100; off < 0x280; off += 0x10) assert_int_equal(rd(f, off), 0);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    assert_int_equal(lapic_ack(f->a), -1);
    assert_true(lapic_accepts_pic_intr(f->a)); /* enabled, the BSP's LINT0 in ExtINT */
    /* Unimplemented and out-of-range offsets read 0. */
    assert_int_equal(rd(f, 0x10), 0);
    assert_int_equal(rd(f, 0xb0), 0); /* EOI is write-only */
    assert_int_equal(rd(f, 0x400), 0);
    assert_int_equal(rd(f, 0xff0), 0);
    assert_int_equal(rd(f, 0x2000), 0);
    host_free(f);

    struct fake_host *g = host_new(5, 0);
    assert_int_equal(lapic_get_base(g->a), 0xfee00800ULL); /* not the BSP */
    assert_int_equal(rd(g, 0x20), 5u << 24);
    host_free(g);
}

static void test_mmio_registers(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 0);
    wr(f, 0x20, 0x07000000);
    assert_int_equal(rd(f, 0x20), 0x07000000);
    wr(f, 0x30, 0x12345678); /* read-only */
    assert_int_equal(rd(f, 0x30), 0x50014);
    wr(f, 0x80, 0x1234);
    assert_int_equal(rd(f, 0x80), 0x34);
    assert_int_equal(rd(f, 0xa0), 0x34); /* PPR = TPR with nothing in service */
    wr(f, 0xa0, 0x99);                   /* PPR read-only */
    assert_int_equal(rd(f, 0xa0), 0x34);
    wr(f, 0xd0, 0x12345678);
    assert_int_equal(rd(f, 0xd0), 0x12000000);
    wr(f, 0xe0, 0x0);
    assert_int_equal(rd(f, 0xe0), 0x0fffffff);
    wr(f, 0xe0, 0xffffffff);
    assert_int_equal(rd(f, 0xe0), 0xffffffff);
    wr(f, 0xf0, 0xffffffff);
    assert_int_equal(rd(f, 0xf0), 0x3ff);
    wr(f, 0xf0, 0x1ff);
    assert_int_equal(rd(f, 0xf0), 0x1ff);
    wr(f, 0x2f0, 0xffffffff);
    assert_int_equal(rd(f, 0x2f0), 0x107ff);
    wr(f, 0x320, 0x000200ef); /* periodic, vector 0xef */
    assert_int_equal(rd(f, 0x320), 0x000200ef);
    wr(f, 0x330, 0xffffffff);
    assert_int_equal(rd(f, 0x330), 0x107ff);
    wr(f, 0x340, 0x00000400); /* perf counter: NMI */
    assert_int_equal(rd(f, 0x340), 0x400);
    wr(f, 0x350, 0x00000700);
    assert_int_equal(rd(f, 0x350), 0x700);
    wr(f, 0x360, 0xffffffff);
    assert_int_equal(rd(f, 0x360), 0x1a7ff); /* delivery status and remote IRR are read-only */
    wr(f, 0x370, 0xffffffff);
    assert_int_equal(rd(f, 0x370), 0x100ff);
    wr(f, 0x310, 0xffffffff);
    assert_int_equal(rd(f, 0x310), 0xff000000);
    wr(f, 0x3e0, 0xffffffff);
    assert_int_equal(rd(f, 0x3e0), 0xb);
    wr(f, 0x380, 12345);
    assert_int_equal(rd(f, 0x380), 12345);
    assert_int_equal(rd(f, 0x390), 12345); /* divide by 1, no time passed */
    wr(f, 0x390, 1);                       /* current count is read-only */
    assert_int_equal(rd(f, 0x390), 12345);

    /* Narrow and misaligned accesses: reads see their bytes, writes other than aligned 32-bit
     * ones are ignored, nothing crashes. */
    uint8_t b = 0xaa;
    lapic_mmio_read(f->a, 0xf1, &b, 1);
    assert_int_equal(b, 0x01);
    uint16_t h = 0;
    lapic_mmio_read(f->a, 0x30, &h, 2);
    assert_int_equal(h, 0x0014);
    uint64_t q = ~0ULL;
    lapic_mmio_read(f->a, 0x30, &q, 8);
    assert_int_equal(q, 0x50014);
    lapic_mmio_read(f->a, 0x34, &q, 8);
    assert_int_equal(q, 0);
    lapic_mmio_read(f->a, 0x3f, &q, 8);
    assert_int_equal(q, 0);
    uint32_t v = 0x55;
    lapic_mmio_write(f->a, 0x81, &v, 4);
    lapic_mmio_write(f->a, 0x80, &v, 2);
    lapic_mmio_write(f->a, 0x80, &v, 1);
    lapic_mmio_write(f->a, 0xfff, &v, 4);
    lapic_mmio_write(f->a, 0x1080, &v, 4);
    assert_int_equal(rd(f, 0x80), 0x34);
    host_free(f);
}

static void test_priority_gating_and_nesting(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 0);
    sw_enable(f);
    wr(f, 0x80, 0x50);
    lapic_set_irq(f->a, 0x45, false);
    assert_int_equal(f->kicks, 1);
    assert_true(irr_has(f, 0x45));
    assert_int_equal(lapic_pending_vector(f->a), -1); /* class 4 <= TPR class 5 */
    lapic_set_irq(f->a, 0x65, false);
    assert_int_equal(lapic_pending_vector(f->a), 0x65);
    assert_int_equal(lapic_ack(f->a), 0x65);
    assert_false(irr_has(f, 0x65));
    assert_true(isr_has(f, 0x65));
    assert_int_equal(rd(f, 0xa0), 0x60);
    wr(f, 0x80, 0x6a); /* TPR class equal to the in-service class: PPR is the TPR */
    assert_int_equal(rd(f, 0xa0), 0x6a);
    wr(f, 0x80, 0x50);
    lapic_set_irq(f->a, 0x61, false); /* same class as the one in service: waits */
    assert_int_equal(lapic_pending_vector(f->a), -1);
    lapic_set_irq(f->a, 0x71, false); /* higher class nests */
    assert_int_equal(lapic_ack(f->a), 0x71);
    assert_int_equal(rd(f, 0xa0), 0x70);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    /* EOI ends the highest in service first. */
    wr(f, 0xb0, 0);
    assert_false(isr_has(f, 0x71));
    assert_true(isr_has(f, 0x65));
    assert_int_equal(rd(f, 0xa0), 0x60);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    wr(f, 0xb0, 0);
    assert_false(isr_has(f, 0x65));
    assert_int_equal(rd(f, 0xa0), 0x50);
    assert_int_equal(lapic_ack(f->a), 0x61);
    wr(f, 0xb0, 0);
    assert_int_equal(lapic_pending_vector(f->a), -1); /* 0x45 still below the TPR */
    unsigned kicks = f->kicks;
    wr(f, 0x80, 0);
    assert_true(f->kicks > kicks); /* lowering the TPR let 0x45 through */
    ack_eoi(f, 0x45);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    wr(f, 0xb0, 0); /* EOI with nothing in service: harmless */
    assert_int_equal(f->eois, 0);
    host_free(f);
}

static void test_level_eoi_broadcast(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 0);
    sw_enable(f);
    lapic_set_irq(f->a, 0x30, true);
    assert_true(tmr_has(f, 0x30));
    lapic_set_irq(f->a, 0x31, false);
    assert_false(tmr_has(f, 0x31));
    ack_eoi(f, 0x31);
    assert_int_equal(f->eois, 0); /* edge: no broadcast */
    ack_eoi(f, 0x30);
    assert_int_equal(f->eois, 1);
    assert_int_equal(f->last_eoi, 0x30);
    /* The same vector arriving edge-triggered clears its TMR bit. */
    lapic_set_irq(f->a, 0x30, false);
    assert_false(tmr_has(f, 0x30));
    ack_eoi(f, 0x30);
    assert_int_equal(f->eois, 1);
    host_free(f);
}

static void test_illegal_and_dropped_interrupts(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 0);
    /* Software-disabled (power-on): dropped, no kick. */
    lapic_set_irq(f->a, 0x40, false);
    assert_false(irr_has(f, 0x40));
    assert_int_equal(f->kicks, 0);
    sw_enable(f);
    lapic_set_irq(f->a, 5, false);
    assert_int_equal(rd(f, 0x200), 0);
    assert_int_equal(rd(f, 0x280), 0); /* not visible before an ESR write */
    wr(f, 0x280, 0);
    assert_int_equal(rd(f, 0x280), 0x40); /* receive illegal vector */
    wr(f, 0x280, 0);
    assert_int_equal(rd(f, 0x280), 0);
    /* An illegal vector with the error LVT unmasked raises the error interrupt. */
    wr(f, 0x370, 0xfe);
    lapic_set_irq(f->a, 3, false);
    assert_int_equal(lapic_pending_vector(f->a), 0xfe);
    ack_eoi(f, 0xfe);
    /* Hardware-disabled: dropped. */
    assert_true(lapic_set_base(f->a, LAPIC_DEFAULT_BASE));
    assert_false(lapic_enabled(f->a));
    assert_false(lapic_mmio_claims(f->a, 0xfee00000));
    lapic_set_irq(f->a, 0x40, false);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    host_free(f);
}

static void test_xapic_icr(void **state)
{
    (void)state;
    struct fake_host *f = host_new(2, 0);
    sw_enable(f);
    wr(f, 0x300, 0x00040050); /* self */
    assert_true(irr_has(f, 0x50));
    assert_int_equal(rd(f, 0x300) & 0x1000, 0); /* delivery status idle */
    wr(f, 0x310, 0x02000000);
    wr(f, 0x300, 0x00000051); /* physical, to us */
    assert_true(irr_has(f, 0x51));
    wr(f, 0x310, 0x03000000);
    wr(f, 0x300, 0x00000052); /* physical, someone else */
    assert_false(irr_has(f, 0x52));
    wr(f, 0x310, 0xff000000);
    wr(f, 0x300, 0x00000053); /* physical broadcast */
    assert_true(irr_has(f, 0x53));
    wr(f, 0x300, 0x000c0054); /* all excluding self */
    assert_false(irr_has(f, 0x54));
    wr(f, 0x300, 0x00080055); /* all including self */
    assert_true(irr_has(f, 0x55));
    /* Logical flat: LDR bit 2. */
    wr(f, 0xd0, 0x04000000);
    wr(f, 0x310, 0x04000000);
    wr(f, 0x300, 0x00000856);
    assert_true(irr_has(f, 0x56));
    wr(f, 0x310, 0x08000000);
    wr(f, 0x300, 0x00000857);
    assert_false(irr_has(f, 0x57));
    /* INIT / NMI to self: not modelled, no IRR bit. */
    wr(f, 0x300, 0x00044500);
    wr(f, 0x300, 0x00040458);
    assert_false(irr_has(f, 0x58));
    /* Sending an illegal vector: send and receive illegal. */
    wr(f, 0x300, 0x00040005);
    wr(f, 0x280, 0);
    assert_int_equal(rd(f, 0x280), 0x60);
    host_free(f);
}

static void test_x2apic_msrs(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0x23, 0);
    uint64_t v;
    /* xAPIC mode: the x2APIC MSRs #GP. */
    assert_false(lapic_msr_read(f->a, 0x808, &v));
    assert_false(lapic_msr_write(f->a, 0x808, 0));
    wr(f, 0x20, 0x05000000); /* a guest-written xAPIC ID is replaced by the x2APIC ID */
    enter_x2apic(f);
    assert_false(lapic_mmio_claims(f->a, 0xfee00000));
    assert_true(lapic_msr_read(f->a, 0x802, &v));
    assert_int_equal(v, 0x23);
    assert_true(lapic_msr_read(f->a, 0x803, &v));
    assert_int_equal(v, 0x50014);
    assert_true(lapic_msr_read(f->a, 0x80d, &v));
    assert_int_equal(v, (2u << 16) | (1u << 3));
    /* Read-only, absent and write-only registers. */
    assert_false(lapic_msr_write(f->a, 0x802, 0x23));
    assert_false(lapic_msr_write(f->a, 0x803, 0));
    assert_false(lapic_msr_write(f->a, 0x80a, 0));
    assert_false(lapic_msr_write(f->a, 0x80d, 0));
    assert_false(lapic_msr_write(f->a, 0x810, 0));
    assert_false(lapic_msr_write(f->a, 0x820, 0));
    assert_false(lapic_msr_write(f->a, 0x839, 0));
    assert_false(lapic_msr_read(f->a, 0x80e, &v)); /* DFR */
    assert_false(lapic_msr_write(f->a, 0x80e, 0));
    assert_false(lapic_msr_read(f->a, 0x809, &v)); /* APR */
    assert_false(lapic_msr_read(f->a, 0x80b, &v)); /* EOI */
    assert_false(lapic_msr_read(f->a, 0x83f, &v)); /* SELF_IPI */
    assert_false(lapic_msr_read(f->a, 0x831, &v)); /* no ICR high */
    assert_false(lapic_msr_read(f->a, 0x800, &v));
    assert_false(lapic_msr_read(f->a, 0x8ff, &v));
    /* Reserved bits. */
    assert_false(lapic_msr_write(f->a, 0x808, 0x100));
    assert_false(lapic_msr_write(f->a, 0x808, 1ULL << 32));
    assert_false(lapic_msr_write(f->a, 0x80f, 0x11ff)); /* no EOI-broadcast suppression */
    assert_false(lapic_msr_write(f->a, 0x828, 1));
    assert_false(lapic_msr_write(f->a, 0x80b, 1));
    assert_false(lapic_msr_write(f->a, 0x832, 0x60000)); /* timer mode 3 */
    assert_false(lapic_msr_write(f->a, 0x83e, 0x4));
    assert_false(lapic_msr_write(f->a, 0x830, 0x2000)); /* ICR bit 13 */
    assert_false(lapic_msr_write(f->a, 0x83f, 0x100));
    /* Writable ones. */
    assert_true(lapic_msr_write(f->a, 0x80f, 0x1ff));
    assert_true(lapic_msr_read(f->a, 0x80f, &v));
    assert_int_equal(v, 0x1ff);
    assert_true(lapic_msr_write(f->a, 0x808, 0x20));
    assert_true(lapic_msr_read(f->a, 0x80a, &v));
    assert_int_equal(v, 0x20);
    assert_true(lapic_msr_write(f->a, 0x828, 0));
    assert_true(lapic_msr_write(f->a, 0x835, 0x700));
    assert_true(lapic_msr_read(f->a, 0x835, &v));
    assert_int_equal(v, 0x700);
    assert_true(lapic_msr_write(f->a, 0x83e, 0xb));
    assert_true(lapic_msr_read(f->a, 0x83e, &v));
    assert_int_equal(v, 0xb);
    /* ICR: self shorthand, physical to our ID, to another, broadcast. */
    assert_true(lapic_msr_write(f->a, 0x830, 0x40055));
    assert_true(irr_has(f, 0x55) == false); /* MMIO is gone in x2APIC mode... */
    assert_true(lapic_msr_read(f->a, 0x822, &v));
    assert_true((v >> 21) & 1); /* ...the IRR MSR shows 0x55 */
    assert_true(lapic_msr_read(f->a, 0x830, &v));
    assert_int_equal(v, 0x40055);
    assert_true(lapic_msr_write(f->a, 0x830, (0x23ULL << 32) | 0x56));
    assert_true(lapic_msr_write(f->a, 0x830, (0x24ULL << 32) | 0x57));
    assert_true(lapic_msr_write(f->a, 0x830, (0xffffffffULL << 32) | 0x58));
    assert_true(lapic_msr_read(f->a, 0x830, &v));
    assert_int_equal(v, (0xffffffffULL << 32) | 0x58);
    assert_true(lapic_msr_write(f->a, 0x83f, 0x59));
    assert_true(lapic_msr_read(f->a, 0x822, &v));
    assert_int_equal(v, (1u << 21) | (1u << 22) | (1u << 24) | (1u << 25));
    /* Logical x2APIC: cluster 2, bit 3. */
    assert_true(lapic_msr_write(f->a, 0x830, (0x00020008ULL << 32) | 0x800 | 0x5a));
    assert_true(lapic_msr_write(f->a, 0x830, (0x00020004ULL << 32) | 0x800 | 0x5b));
    assert_true(lapic_msr_read(f->a, 0x822, &v));
    assert_true((v >> 26) & 1);
    assert_false((v >> 27) & 1);
    /* TPR 0x20 lets class 5 through; EOI through the MSR. */
    assert_int_equal(lapic_ack(f->a), 0x5a);
    assert_true(lapic_msr_read(f->a, 0x812, &v));
    assert_true((v >> 26) & 1);
    assert_true(lapic_msr_write(f->a, 0x80b, 0));
    assert_true(lapic_msr_read(f->a, 0x812, &v));
    assert_int_equal(v, 0);
    host_free(f);
}

static void test_apic_base_transitions(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 0);
    const uint64_t xapic = LAPIC_DEFAULT_BASE | APIC_BASE_BSP | APIC_BASE_ENABLE;
    const uint64_t x2 = xapic | APIC_BASE_EXTD, off = LAPIC_DEFAULT_BASE | APIC_BASE_BSP;
    assert_false(lapic_set_base(f->a, xapic | 1));                    /* reserved bit 0 */
    assert_false(lapic_set_base(f->a, xapic | (1ULL << 9)));          /* reserved bit 9 */
    assert_false(lapic_set_base(f->a, xapic | (1ULL << 45)));         /* above MAXPHYADDR */
    assert_false(lapic_set_base(f->a, off | APIC_BASE_EXTD));         /* invalid: EXTD alone */
    assert_int_equal(lapic_get_base(f->a), xapic);
    assert_true(lapic_set_base(f->a, x2));
    assert_false(lapic_set_base(f->a, xapic)); /* x2APIC -> xAPIC directly */
    assert_int_equal(lapic_get_base(f->a), x2);
    /* Some state, then disable: it resets. */
    assert_true(lapic_msr_write(f->a, 0x80f, 0x1ff));
    assert_true(lapic_msr_write(f->a, 0x808, 0x40));
    assert_true(lapic_msr_write(f->a, 0x83f, 0x60));
    assert_true(lapic_set_base(f->a, off));
    assert_false(lapic_enabled(f->a));
    assert_true(lapic_accepts_pic_intr(f->a));
    assert_false(lapic_set_base(f->a, x2)); /* disabled -> x2APIC directly */
    assert_true(lapic_set_base(f->a, xapic));
    assert_int_equal(rd(f, 0xf0), 0xff);
    assert_int_equal(rd(f, 0x80), 0);
    assert_int_equal(rd(f, 0x200 + 0x30), 0);
    assert_int_equal(rd(f, 0x320), 0x10000);
    /* Moving the page. */
    assert_true(lapic_set_base(f->a, 0xfed00000 | APIC_BASE_ENABLE));
    assert_true(lapic_mmio_claims(f->a, 0xfed00020));
    assert_false(lapic_mmio_claims(f->a, 0xfee00020));
    /* load_base takes anything without resetting. */
    wr(f, 0x80, 0x33);
    lapic_load_base(f->a, x2);
    assert_int_equal(lapic_get_base(f->a), x2);
    uint64_t v;
    assert_true(lapic_msr_read(f->a, 0x808, &v));
    assert_int_equal(v, 0x33);
    host_free(f);
}

static void test_oneshot_timer_each_divider(void **state)
{
    (void)state;
    static const struct {
        uint32_t dcr;
        unsigned div;
    } divs[] = {{0x0, 2}, {0x1, 4}, {0x2, 8}, {0x3, 16}, {0x8, 32}, {0x9, 64}, {0xa, 128}, {0xb, 1}};
    struct fake_host *f = host_new(0, 1000000000ULL);
    sw_enable(f);
    for (size_t i = 0; i < sizeof(divs) / sizeof(divs[0]); i++) {
        unsigned d = divs[i].div;
        wr(f, 0x3e0, divs[i].dcr);
        wr(f, 0x320, 0x40); /* one-shot, vector 0x40 */
        wr(f, 0x380, 1000);
        assert_int_equal(rd(f, 0x390), 1000);
        advance(f, 100ULL * d);
        assert_int_equal(rd(f, 0x390), 900);
        advance(f, 250ULL * d + d / 2);
        assert_int_equal(rd(f, 0x390), 649 + (d == 1 ? 1 : 0)); /* part of a tick left */
        advance(f, 650ULL * d - d / 2 - 1);
        assert_int_equal(lapic_pending_vector(f->a), -1); /* 1 ns early */
        assert_true(rd(f, 0x390) <= 1);
        advance(f, 1);
        assert_int_equal(lapic_pending_vector(f->a), 0x40);
        assert_int_equal(rd(f, 0x390), 0);
        ack_eoi(f, 0x40);
        advance(f, 10000ULL * d); /* one-shot: no second expiry */
        assert_int_equal(lapic_pending_vector(f->a), -1);
        assert_int_equal(rd(f, 0x390), 0);
        assert_int_equal(rd(f, 0x380), 1000);
    }
    /* Writing 0 stops a running count. */
    wr(f, 0x380, 500);
    wr(f, 0x380, 0);
    advance(f, 1000000);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    /* A divider change mid-count carries the remaining count on at the new rate. */
    wr(f, 0x3e0, 0xb);
    wr(f, 0x380, 1000);
    advance(f, 400);
    wr(f, 0x3e0, 0x1); /* /4 */
    assert_int_equal(rd(f, 0x390), 600);
    advance(f, 4 * 600 - 1);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    advance(f, 1);
    assert_int_equal(lapic_pending_vector(f->a), 0x40);
    host_free(f);
}

static void test_periodic_timer(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 0);
    sw_enable(f);
    wr(f, 0x3e0, 0xb);
    wr(f, 0x320, 0x20041); /* periodic, vector 0x41 */
    wr(f, 0x380, 1000000); /* 1 ms */
    for (int i = 0; i < 3; i++) {
        advance(f, 999999);
        assert_int_equal(lapic_pending_vector(f->a), -1);
        assert_int_equal(rd(f, 0x390), 1);
        advance(f, 1);
        ack_eoi(f, 0x41);
        assert_int_equal(rd(f, 0x390), 1000000); /* reloaded */
    }
    advance(f, 250000);
    assert_int_equal(rd(f, 0x390), 750000);
    /* A tiny period is clamped to 100 us. */
    wr(f, 0x380, 10);
    advance(f, 99999);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    advance(f, 1);
    ack_eoi(f, 0x41);
    advance(f, 100000);
    ack_eoi(f, 0x41);
    assert_true(rd(f, 0x390) <= 10);
    /* A host that fell behind by many periods gets one expiry, then the schedule resumes. */
    wr(f, 0x380, 1000000);
    f->now_ns += 10500000;
    timers_run(&f->timers, f->now_ns);
    ack_eoi(f, 0x41);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    advance(f, 999999);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    advance(f, 1);
    assert_int_equal(lapic_pending_vector(f->a), 0x41);
    host_free(f);
}

static void test_tsc_deadline_timer(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 5000);
    sw_enable(f);
    uint64_t v;
    /* Not in TSC-deadline mode: writes are ignored, reads give 0. */
    assert_true(lapic_msr_write(f->a, MSR_IA32_TSC_DEADLINE, fake_tsc(f) + 100));
    assert_true(lapic_msr_read(f->a, MSR_IA32_TSC_DEADLINE, &v));
    assert_int_equal(v, 0);
    wr(f, 0x320, 0x400ec); /* TSC-deadline, vector 0xec */
    uint64_t dl = fake_tsc(f) + 2000; /* 1 us at 2 GHz */
    assert_true(lapic_msr_write(f->a, MSR_IA32_TSC_DEADLINE, dl));
    assert_true(lapic_msr_read(f->a, MSR_IA32_TSC_DEADLINE, &v));
    assert_int_equal(v, dl);
    wr(f, 0x380, 5); /* initial count ignored in this mode */
    assert_int_equal(rd(f, 0x380), 0);
    assert_int_equal(rd(f, 0x390), 0);
    advance(f, 999);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    advance(f, 1);
    assert_int_equal(fake_tsc(f), dl);
    assert_int_equal(lapic_pending_vector(f->a), 0xec);
    assert_true(lapic_msr_read(f->a, MSR_IA32_TSC_DEADLINE, &v));
    assert_int_equal(v, 0); /* 0 once fired */
    ack_eoi(f, 0xec);
    /* 0 disarms. */
    assert_true(lapic_msr_write(f->a, MSR_IA32_TSC_DEADLINE, fake_tsc(f) + 2000));
    assert_true(lapic_msr_write(f->a, MSR_IA32_TSC_DEADLINE, 0));
    advance(f, 1000000);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    assert_null(f->timers.head);
    /* A deadline already passed fires at once. */
    assert_true(lapic_msr_write(f->a, MSR_IA32_TSC_DEADLINE, fake_tsc(f) - 1));
    assert_int_equal(lapic_pending_vector(f->a), 0xec);
    ack_eoi(f, 0xec);
    /* An odd deadline never fires early (rounding up to the next ns). */
    dl = fake_tsc(f) + 3;
    assert_true(lapic_msr_write(f->a, MSR_IA32_TSC_DEADLINE, dl));
    advance(f, 1);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    advance(f, 1);
    assert_int_equal(lapic_pending_vector(f->a), 0xec);
    ack_eoi(f, 0xec);
    /* A new TSC rate (a restored guest's) re-arms an armed deadline in the new units. */
    dl = fake_tsc(f) + 2000;
    assert_true(lapic_msr_write(f->a, MSR_IA32_TSC_DEADLINE, dl));
    lapic_set_tsc_khz(f->a, TSC_KHZ / 2); /* 1 GHz: 2000 ticks are now 2 us */
    assert_true(lapic_msr_read(f->a, MSR_IA32_TSC_DEADLINE, &v));
    assert_int_equal(v, dl);
    advance(f, 1999);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    advance(f, 1);
    assert_int_equal(lapic_pending_vector(f->a), 0xec);
    ack_eoi(f, 0xec);
    lapic_set_tsc_khz(f->a, TSC_KHZ);
    /* Switching to one-shot disarms the deadline. */
    assert_true(lapic_msr_write(f->a, MSR_IA32_TSC_DEADLINE, fake_tsc(f) + 2000));
    wr(f, 0x320, 0xec);
    advance(f, 1000000);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    wr(f, 0x320, 0x400ec);
    assert_true(lapic_msr_read(f->a, MSR_IA32_TSC_DEADLINE, &v));
    assert_int_equal(v, 0);
    /* And switching into TSC-deadline mode stops a one-shot count. */
    wr(f, 0x320, 0xec);
    wr(f, 0x380, 1000);
    wr(f, 0x320, 0x400ec);
    assert_int_equal(rd(f, 0x380), 0);
    advance(f, 1000000);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    host_free(f);
}

static void test_masked_timer_and_software_disable(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 0);
    sw_enable(f);
    wr(f, 0x3e0, 0xb);
    wr(f, 0x320, 0x10042); /* masked one-shot */
    wr(f, 0x380, 1000);
    advance(f, 1000);
    assert_int_equal(rd(f, 0x200 + 0x20), 0);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    assert_int_equal(rd(f, 0x390), 0); /* it still ran out */
    /* Software disable masks every LVT and keeps them masked. */
    wr(f, 0x320, 0x42);
    wr(f, 0x350, 0x700);
    wr(f, 0x370, 0xf0);
    wr(f, 0xf0, 0xff);
    assert_int_equal(rd(f, 0x320), 0x10042);
    assert_int_equal(rd(f, 0x350), 0x10700);
    assert_int_equal(rd(f, 0x370), 0x100f0);
    wr(f, 0x320, 0x42);
    assert_int_equal(rd(f, 0x320), 0x10042);
    wr(f, 0x380, 1000);
    advance(f, 2000);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    host_free(f);
}

static void test_accepts_pic_intr(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 0);
    assert_true(lapic_accepts_pic_intr(f->a)); /* the BSP's LINT0 is ExtINT at power-on */
    struct fake_host *ap = host_new(1, 0);
    assert_false(lapic_accepts_pic_intr(ap->a)); /* an AP's LINT0 is masked */
    host_free(ap);
    sw_enable(f);
    wr(f, 0x350, 0x700); /* ExtINT, unmasked */
    assert_true(lapic_accepts_pic_intr(f->a));
    wr(f, 0x350, 0x10700); /* masked */
    assert_false(lapic_accepts_pic_intr(f->a));
    wr(f, 0x350, 0x00030); /* fixed */
    assert_false(lapic_accepts_pic_intr(f->a));
    wr(f, 0x350, 0x00400); /* NMI */
    assert_false(lapic_accepts_pic_intr(f->a));
    assert_true(lapic_set_base(f->a, LAPIC_DEFAULT_BASE | APIC_BASE_BSP)); /* hardware-disabled */
    assert_true(lapic_accepts_pic_intr(f->a));
    host_free(f);
}

static void test_save_restore_continues_timer(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 3000000);
    sw_enable(f);
    wr(f, 0x80, 0x10);
    wr(f, 0xd0, 0x01000000);
    wr(f, 0x3e0, 0x3); /* /16 */
    wr(f, 0x320, 0x20043);
    wr(f, 0x350, 0x700);
    wr(f, 0x380, 100000); /* 1.6 ms periods */
    lapic_set_irq(f->a, 0x80, true);
    assert_int_equal(lapic_ack(f->a), 0x80);
    lapic_set_irq(f->a, 0x33, false);
    advance(f, 1600000 + 400000); /* one expiry, then 400 us into the second period */
    assert_true(irr_has(f, 0x43));
    assert_int_equal(rd(f, 0x390), 75000);
    struct snap_buf saved = save_of(f->a);

    /* A fresh APIC on a host whose clock is somewhere else entirely. */
    struct fake_host *g = host_new(0, 77000000000ULL);
    struct snap_buf fresh = save_of(g->a);
    char err[160] = "";
    struct snap_reader r = {.data = saved.data, .len = saved.len};
    assert_int_equal(lapic_restore(g->a, &r, false, err, sizeof(err)), 0);
    assert_same_state(g->a, &fresh); /* apply=false changed nothing */
    r = (struct snap_reader){.data = saved.data, .len = saved.len};
    assert_int_equal(lapic_restore(g->a, &r, true, err, sizeof(err)), 0);
    assert_int_equal(r.pos, saved.len);
    for (uint32_t off = 0x20; off < 0x400; off += 0x10) assert_int_equal(rd(g, off), rd(f, off));
    assert_true(lapic_accepts_pic_intr(g->a));
    assert_true(isr_has(g, 0x80));
    assert_true(tmr_has(g, 0x80));
    /* The restored timer finishes its period, then keeps the period. */
    advance(g, 1200000 - 1);
    assert_int_equal(rd(g, 0x390), 0);
    assert_true(irr_has(g, 0x43)); /* from before the save */
    assert_int_equal(lapic_ack(g->a), -1); /* 0x80 in service blocks classes <= 8 */
    wr(g, 0xb0, 0);
    assert_int_equal(g->eois, 1);
    assert_int_equal(g->last_eoi, 0x80);
    ack_eoi(g, 0x43);
    ack_eoi(g, 0x33);
    advance(g, 1);
    ack_eoi(g, 0x43);
    advance(g, 1600000 - 1);
    assert_int_equal(lapic_pending_vector(g->a), -1);
    advance(g, 1);
    assert_int_equal(lapic_pending_vector(g->a), 0x43);

    /* x2APIC with an armed TSC deadline. */
    struct fake_host *h = host_new(0, 1000);
    enter_x2apic(h);
    assert_true(lapic_msr_write(h->a, 0x80f, 0x1ff));
    assert_true(lapic_msr_write(h->a, 0x832, 0x400ee));
    assert_true(lapic_msr_write(h->a, MSR_IA32_TSC_DEADLINE, fake_tsc(h) + 10000));
    struct snap_buf s2 = save_of(h->a);
    struct fake_host *k = host_new(0, 1000);
    r = (struct snap_reader){.data = s2.data, .len = s2.len};
    assert_int_equal(lapic_restore(k->a, &r, true, err, sizeof(err)), 0);
    uint64_t v;
    assert_true(lapic_msr_read(k->a, 0x802, &v));
    assert_true(lapic_msr_read(k->a, 0x80d, &v));
    assert_int_equal(v, 1);
    assert_true(lapic_msr_read(k->a, MSR_IA32_TSC_DEADLINE, &v));
    assert_int_equal(v, fake_tsc(k) + 10000);
    advance(k, 4999);
    assert_int_equal(lapic_pending_vector(k->a), -1);
    advance(k, 1);
    assert_int_equal(lapic_pending_vector(k->a), 0xee);

    snap_buf_free(&saved);
    snap_buf_free(&fresh);
    snap_buf_free(&s2);
    host_free(f);
    host_free(g);
    host_free(h);
    host_free(k);
}

/* Offsets in lapic_save's layout: format u8, base u64, 12 u32 registers (initial ID, ID, TPR,
 * LDR, DFR, SVR, ESR, pending ESR, ICR low/high), 7 LVTs (CMCI first), initial count, DCR,
 * IRR/ISR/TMR, timer flags u8, remaining ns u64, TSC deadline u64. */
enum {
    SAVED_SVR = 1 + 8 + 4 * 5,
    SAVED_LVT_TIMER = 1 + 8 + 4 * 10 + 4,
    SAVED_DCR = 1 + 8 + 4 * 10 + 4 * 7 + 4,
    SAVED_IRR = SAVED_DCR + 4,
    SAVED_TIMER_FLAGS = SAVED_IRR + 3 * 32,
    SAVED_LEN = SAVED_TIMER_FLAGS + 1 + 8 + 8,
};

static void test_restore_refuses_bad_payloads(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 0);
    sw_enable(f);
    wr(f, 0x320, 0x40);
    wr(f, 0x380, 5000);
    struct snap_buf good = save_of(f->a);
    struct fake_host *g = host_new(0, 0);
    wr(g, 0x80, 0x42);
    struct snap_buf before = save_of(g->a);
    char err[160];
    /* Every truncation. */
    for (size_t n = 0; n < good.len; n++) {
        struct snap_reader r = {.data = good.data, .len = n};
        err[0] = 0;
        assert_int_equal(lapic_restore(g->a, &r, true, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "local APIC"));
        assert_same_state(g->a, &before);
    }
    /* Specific corruptions, each refused with a reason. */
    struct {
        size_t at;
        uint8_t val;
        const char *why;
    } bad[] = {
        {0, 9, "unknown format"},
        {1, 0x01, "IA32_APIC_BASE"},   /* base bit 0 */
        {9, 0x01, "APIC ID"},          /* initial id 1 != 0 */
        {SAVED_SVR + 1, 0x10, "SVR"},               /* SVR bit 12 */
        {SAVED_LVT_TIMER + 2, 0x08, "LVT"},         /* timer LVT bit 19 */
        {SAVED_DCR, 0x10, "divide"},                /* DCR bit 4 */
        {SAVED_IRR, 0x01, "vectors 0-15"},          /* IRR vector 0 */
        {SAVED_TIMER_FLAGS, 0x80, "timer flags"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *copy = malloc(good.len);
        assert_non_null(copy);
        memcpy(copy, good.data, good.len);
        copy[bad[i].at] = bad[i].val;
        struct snap_reader r = {.data = copy, .len = good.len};
        err[0] = 0;
        assert_int_equal(lapic_restore(g->a, &r, true, err, sizeof(err)), -EINVAL);
        if (!strstr(err, bad[i].why)) fail_msg("corruption %zu: '%s' lacks '%s'", i, err, bad[i].why);
        assert_same_state(g->a, &before);
        free(copy);
    }
    /* A stopped timer with a remaining time, a remaining time beyond the period. */
    assert_int_equal(good.len, SAVED_LEN);
    size_t timer_at = SAVED_TIMER_FLAGS;
    uint8_t *copy = malloc(good.len);
    assert_non_null(copy);
    memcpy(copy, good.data, good.len);
    copy[timer_at] = 0;
    struct snap_reader r = {.data = copy, .len = good.len};
    assert_int_equal(lapic_restore(g->a, &r, false, err, sizeof(err)), -EINVAL);
    memcpy(copy, good.data, good.len);
    copy[timer_at + 1 + 7] = 0x01;
    r = (struct snap_reader){.data = copy, .len = good.len};
    assert_int_equal(lapic_restore(g->a, &r, false, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "beyond its period"));
    free(copy);
    /* Random garbage: never crashes; apply=false never changes anything. */
    uint32_t seed = 12345;
    uint8_t junk[256];
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(i % 257);
        for (size_t j = 0; j < n && j < sizeof(junk); j++) {
            seed = seed * 1103515245u + 12345u;
            junk[j] = (uint8_t)(seed >> 16);
        }
        if (n > 0) junk[0] = 1; /* get past the format byte */
        r = (struct snap_reader){.data = junk, .len = n < sizeof(junk) ? n : sizeof(junk)};
        (void)lapic_restore(g->a, &r, false, err, sizeof(err));
        assert_same_state(g->a, &before);
    }
    snap_buf_free(&good);
    snap_buf_free(&before);
    host_free(f);
    host_free(g);
}

/* Every state a guest can drive the model into must save and restore again (a snapshot taken
 * at any moment must load). Deterministic random register/MSR/interrupt/time operations, with
 * a save -> restore into a fresh APIC after each one; plus the two cases fuzzing found. */
static void restore_into_fresh(struct fake_host *f)
{
    struct snap_buf b = save_of(f->a);
    struct fake_host *g = host_new(0, f->now_ns + 999);
    char err[160] = "";
    struct snap_reader r = {.data = b.data, .len = b.len};
    if (lapic_restore(g->a, &r, true, err, sizeof(err))) fail_msg("live state refused: %s", err);
    struct snap_buf again = save_of(g->a);
    assert_int_equal(again.len, b.len);
    snap_buf_free(&again);
    snap_buf_free(&b);
    host_free(g);
}

static void test_every_live_state_restores(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 1000);
    restore_into_fresh(f); /* power-on: software-disabled, the BSP's LINT0 unmasked ExtINT */
    sw_enable(f);
    /* Fuzz finding 1: an undefined DFR model nibble. */
    wr(f, 0xe0, 0x5fffffff);
    restore_into_fresh(f);
    /* Fuzz finding 2: a periodic timer clamped to 100 us, switched to one-shot mid-period. */
    wr(f, 0x3e0, 0xb);
    wr(f, 0x320, 0x20040);
    wr(f, 0x380, 10);
    advance(f, 1000);
    wr(f, 0x320, 0x00040);
    restore_into_fresh(f);
    advance(f, 99000 - 1);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    advance(f, 1);
    assert_int_equal(lapic_pending_vector(f->a), 0x40);

    static const uint32_t regs[] = {0x20, 0x80, 0xb0, 0xd0, 0xe0, 0xf0, 0x280, 0x2f0, 0x300, 0x310,
                                    0x320, 0x330, 0x340, 0x350, 0x360, 0x370, 0x380, 0x3e0};
    uint32_t seed = 42;
    for (int i = 0; i < 3000; i++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t x = seed >> 8;
        seed = seed * 1103515245u + 12345u;
        uint64_t y = (uint64_t)(seed >> 4) << 16 ^ x;
        switch (x % 9) {
        case 0:
        case 1: wr(f, regs[(x >> 4) % (sizeof(regs) / sizeof(regs[0]))], (uint32_t)y); break;
        case 2: (void)lapic_msr_write(f->a, 0x800 + ((x >> 4) & 0x3f), (x & 0x4000) ? y : (y & 0xffff)); break;
        case 3: (void)lapic_msr_write(f->a, MSR_IA32_TSC_DEADLINE, fake_tsc(f) + (y & 0xfffff)); break;
        case 4: (void)lapic_set_base(f->a, LAPIC_DEFAULT_BASE | ((y & 3) << 10)); break;
        case 5: lapic_set_irq(f->a, (uint8_t)(x >> 4), x & 0x2000); break;
        case 6: (void)lapic_ack(f->a); break;
        case 7: advance(f, y % 3000000); break;
        default: wr(f, 0xf0, 0x1ff); break;
        }
        restore_into_fresh(f);
    }
    host_free(f);
}

static void put32(uint8_t *page, uint32_t off, uint32_t v) { memcpy(page + off, &v, 4); }

static void test_import_kvm_x2apic_tsc_deadline(void **state)
{
    (void)state;
    struct fake_host *f = host_new(2, 50000);
    uint8_t page[1024] = {0};
    put32(page, 0x20, 2u << 24); /* ID in bits 31:24 even in x2APIC mode */
    put32(page, 0x30, 0x50014);
    put32(page, 0x80, 0x10);
    put32(page, 0xd0, 0xdead0000); /* recomputed from the ID */
    put32(page, 0xe0, 0xffffffff);
    put32(page, 0xf0, 0x1ff);
    put32(page, 0x100 + 0x10 * 1, 1u << 16); /* ISR 0x30 */
    put32(page, 0x180 + 0x10 * 1, 1u << 16); /* TMR 0x30: level */
    put32(page, 0x200 + 0x10 * 1, 1u << 17); /* IRR 0x31 */
    put32(page, 0x320, 0x400ec);
    put32(page, 0x330, 0x10000);
    put32(page, 0x340, 0x400);
    put32(page, 0x350, 0x10700);
    put32(page, 0x360, 0x400);
    put32(page, 0x370, 0xfe);
    put32(page, 0x3e0, 0xb);
    const uint64_t base = LAPIC_DEFAULT_BASE | APIC_BASE_ENABLE | APIC_BASE_EXTD;
    uint64_t dl = fake_tsc(f) + 8000; /* 4 us */
    struct snap_buf before = save_of(f->a);
    char err[200] = "";
    assert_int_equal(lapic_from_page(f->a, page, base, dl, false, err, sizeof(err)), 0);
    assert_same_state(f->a, &before);
    assert_int_equal(lapic_from_page(f->a, page, base, dl, true, err, sizeof(err)), 0);
    assert_int_equal(lapic_get_base(f->a), base);
    assert_false(lapic_accepts_pic_intr(f->a));
    uint64_t v;
    assert_true(lapic_msr_read(f->a, 0x802, &v));
    assert_int_equal(v, 2);
    assert_true(lapic_msr_read(f->a, 0x80d, &v));
    assert_int_equal(v, 1u << 2);
    assert_true(lapic_msr_read(f->a, 0x808, &v));
    assert_int_equal(v, 0x10);
    assert_true(lapic_msr_read(f->a, 0x80a, &v));
    assert_int_equal(v, 0x30); /* PPR from the vector in service */
    assert_true(lapic_msr_read(f->a, 0x832, &v));
    assert_int_equal(v, 0x400ec);
    assert_true(lapic_msr_read(f->a, 0x837, &v));
    assert_int_equal(v, 0xfe);
    assert_true(lapic_msr_read(f->a, MSR_IA32_TSC_DEADLINE, &v));
    assert_int_equal(v, dl);
    assert_int_equal(lapic_pending_vector(f->a), -1); /* 0x31 waits for 0x30's EOI */
    assert_true(lapic_msr_write(f->a, 0x80b, 0));
    assert_int_equal(f->eois, 1);
    assert_int_equal(f->last_eoi, 0x30);
    assert_int_equal(lapic_ack(f->a), 0x31);
    assert_true(lapic_msr_write(f->a, 0x80b, 0));
    advance(f, 3999);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    advance(f, 1);
    assert_int_equal(lapic_pending_vector(f->a), 0xec);

    /* Invalid IA32_APIC_BASE values are refused and change nothing. */
    struct snap_buf now = save_of(f->a);
    assert_int_equal(lapic_from_page(f->a, page, base | 1, 0, true, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "IA32_APIC_BASE"));
    assert_int_equal(lapic_from_page(f->a, page, LAPIC_DEFAULT_BASE | APIC_BASE_EXTD, 0, true, err, sizeof(err)),
                     -EINVAL);
    assert_same_state(f->a, &now);
    snap_buf_free(&now);
    snap_buf_free(&before);
    host_free(f);
}

static void test_import_kvm_xapic_oneshot(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 123456789);
    uint8_t page[1024] = {0};
    put32(page, 0x20, 0);
    put32(page, 0xd0, 0x01000000);
    put32(page, 0xe0, 0xffffffff);
    put32(page, 0xf0, 0x1ff);
    put32(page, 0x320, 0x30); /* one-shot, vector 0x30 */
    put32(page, 0x350, 0x700);
    put32(page, 0x360, 0x400);
    put32(page, 0x370, 0x10000);
    put32(page, 0x380, 100000);
    put32(page, 0x390, 25000); /* remaining at save */
    put32(page, 0x3e0, 0x3);   /* /16 */
    const uint64_t base = LAPIC_DEFAULT_BASE | APIC_BASE_ENABLE | APIC_BASE_BSP;
    char err[200] = "";
    assert_int_equal(lapic_from_page(f->a, page, base, 0, true, err, sizeof(err)), 0);
    assert_true(lapic_mmio_claims(f->a, 0xfee00000));
    assert_true(lapic_accepts_pic_intr(f->a));
    assert_int_equal(rd(f, 0xd0), 0x01000000);
    assert_int_equal(rd(f, 0xf0), 0x1ff);
    assert_int_equal(rd(f, 0x320), 0x30);
    assert_int_equal(rd(f, 0x380), 100000);
    assert_int_equal(rd(f, 0x390), 25000);
    assert_int_equal(rd(f, 0x3e0), 0x3);
    advance(f, 16 * 10000);
    assert_int_equal(rd(f, 0x390), 15000);
    advance(f, 16 * 15000 - 1);
    assert_int_equal(lapic_pending_vector(f->a), -1);
    advance(f, 1);
    assert_int_equal(lapic_pending_vector(f->a), 0x30);
    assert_int_equal(rd(f, 0x390), 0);

    /* KVM's reset state (before the guest set its APIC up): software-disabled, LINT0 ExtINT
     * unmasked; the PIC's interrupts must keep flowing after the import. */
    struct fake_host *r = host_new(0, 0);
    uint8_t reset_page[1024] = {0};
    put32(reset_page, 0xe0, 0xffffffff);
    put32(reset_page, 0xf0, 0xff);
    for (uint32_t off = 0x320; off <= 0x370; off += 0x10) put32(reset_page, off, 0x10000);
    put32(reset_page, 0x350, 0x700);
    assert_int_equal(lapic_from_page(r->a, reset_page, base, 0, true, err, sizeof(err)), 0);
    assert_true(lapic_accepts_pic_intr(r->a));
    assert_int_equal(rd(r, 0x350), 0x700);
    assert_int_equal(rd(r, 0xf0), 0xff);
    host_free(r);

    /* A one-shot that had already expired (count 0) stays quiet. */
    struct fake_host *g = host_new(0, 0);
    put32(page, 0x390, 0);
    assert_int_equal(lapic_from_page(g->a, page, base, 0, true, err, sizeof(err)), 0);
    advance(g, 10000000);
    assert_int_equal(lapic_pending_vector(g->a), -1);
    assert_null(g->timers.head);
    /* A periodic one re-arms with its remaining count, then full periods. */
    put32(page, 0x320, 0x20031);
    put32(page, 0x390, 500);
    assert_int_equal(lapic_from_page(g->a, page, base, 0, true, err, sizeof(err)), 0);
    advance(g, 16 * 500);
    ack_eoi(g, 0x31);
    advance(g, 16 * 100000 - 1);
    assert_int_equal(lapic_pending_vector(g->a), -1);
    advance(g, 1);
    assert_int_equal(lapic_pending_vector(g->a), 0x31);
    host_free(f);
    host_free(g);
}

/* Every register a guest reads through the xAPIC page but the current count, the same on both
 * models. */
static void assert_same_mmio_registers(struct fake_host *f, struct fake_host *g)
{
    for (uint32_t off = 0x20; off <= 0x3e0; off += 0x10) {
        if (off == 0x390) continue;
        if (rd(f, off) != rd(g, off)) fail_msg("register 0x%x: 0x%x exported, 0x%x imported", off, rd(f, off), rd(g, off));
    }
}

/* xAPIC: the page lapic_export_kvm makes, taken back by lapic_import_kvm, gives a model a guest
 * cannot tell from the original (registers, pending and in-service vectors, the timer's count
 * and its expiry). */
static void test_export_kvm_round_trip_xapic(void **state)
{
    (void)state;
    struct fake_host *f = host_new(0, 1000);
    sw_enable(f);
    wr(f, 0x80, 0x20);        /* TPR */
    assert_int_equal(lapic_get_tpr(f->a), 0x20);
    wr(f, 0xd0, 0x02000000);  /* LDR */
    wr(f, 0xe0, 0x0fffffff);  /* DFR: cluster model */
    wr(f, 0x350, 0x8700);     /* LINT0 ExtINT, level */
    wr(f, 0x360, 0x400);      /* LINT1 NMI */
    wr(f, 0x370, 0xfe);       /* error vector */
    wr(f, 0x310, 0x05000000); /* ICR: an IPI to APIC 5 (not us: dropped) */
    wr(f, 0x300, 0x4031);
    lapic_set_irq(f->a, 0x51, false);
    assert_int_equal(lapic_ack(f->a), 0x51); /* in service */
    lapic_set_irq(f->a, 0x61, true);          /* pending, level */
    lapic_set_irq(f->a, 0x42, false);         /* pending, blocked by 0x51 */
    wr(f, 0x3e0, 0x3);                        /* /16 */
    wr(f, 0x320, 0x30);                       /* one-shot, vector 0x30 */
    wr(f, 0x380, 100000);
    advance(f, 16 * 40000 + 5); /* 60000 ticks less 5 ns left */
    uint8_t page[1024];
    lapic_to_page(f->a, page);
    uint32_t v;
    memcpy(&v, page + 0x20, 4);
    assert_int_equal(v, 0);
    memcpy(&v, page + 0x390, 4);
    assert_int_equal(v, 60000); /* rounded up: never fires early */
    memcpy(&v, page + 0x310, 4);
    assert_int_equal(v, 0x05000000);

    struct fake_host *g = host_new(0, 777777);
    char err[200] = "";
    assert_int_equal(lapic_from_page(g->a, page, lapic_get_base(f->a), 0, true, err, sizeof(err)), 0);
    assert_same_mmio_registers(f, g);
    assert_int_equal(rd(f, 0x390), 59999); /* 59999 ticks and 11 ns */
    assert_true(isr_has(g, 0x51) && irr_has(g, 0x61) && tmr_has(g, 0x61) && irr_has(g, 0x42) && !tmr_has(g, 0x42));
    assert_int_equal(rd(g, 0x390), 60000);
    advance(g, 16 * 60000 - 1);
    assert_false(irr_has(g, 0x30));
    advance(g, 1);
    assert_true(irr_has(g, 0x30));

    /* The expired one-shot exports TMICT 0 (KVM would fire it again); it stays quiet. */
    advance(f, 16 * 60000);
    assert_true(irr_has(f, 0x30));
    assert_int_equal(rd(f, 0x380), 100000);
    lapic_to_page(f->a, page);
    memcpy(&v, page + 0x380, 4);
    assert_int_equal(v, 0);
    struct fake_host *h = host_new(0, 5);
    assert_int_equal(lapic_from_page(h->a, page, lapic_get_base(f->a), 0, true, err, sizeof(err)), 0);
    assert_int_equal(rd(h, 0x380), 0);
    assert_null(h->timers.head);
    host_free(f);
    host_free(g);
    host_free(h);
}

/* x2APIC with a periodic timer: the ID and the ICR's 32-bit destination go in KVM's layout. */
static void test_export_kvm_round_trip_x2apic(void **state)
{
    (void)state;
    struct fake_host *f = host_new(3, 0);
    enter_x2apic(f);
    assert_true(lapic_msr_write(f->a, 0x80f, 0x1ff));
    assert_true(lapic_msr_write(f->a, 0x808, 0x10));
    assert_true(lapic_msr_write(f->a, 0x830, 7ULL << 32 | 0x4031));
    assert_true(lapic_msr_write(f->a, 0x83e, 0xb)); /* /1 */
    assert_true(lapic_msr_write(f->a, 0x832, 0x20040));
    assert_true(lapic_msr_write(f->a, 0x838, 200000));
    advance(f, 50000);
    uint8_t page[1024];
    lapic_to_page(f->a, page);
    uint32_t v;
    memcpy(&v, page + 0x20, 4);
    assert_int_equal(v, 3u << 24); /* bits 31:24 without KVM_CAP_X2APIC_API */
    memcpy(&v, page + 0x310, 4);
    assert_int_equal(v, 7);
    memcpy(&v, page + 0x390, 4);
    assert_int_equal(v, 150000);

    struct fake_host *g = host_new(3, 99);
    char err[200] = "";
    assert_int_equal(lapic_from_page(g->a, page, lapic_get_base(f->a), 0, true, err, sizeof(err)), 0);
    static const uint32_t msrs[] = {0x802, 0x803, 0x808, 0x80a, 0x80d, 0x80f, 0x828, 0x830,
                                    0x832, 0x833, 0x834, 0x835, 0x836, 0x837, 0x838, 0x839, 0x83e};
    for (size_t i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++) {
        uint64_t a = 1, b = 2;
        assert_true(lapic_msr_read(f->a, msrs[i], &a));
        assert_true(lapic_msr_read(g->a, msrs[i], &b));
        if (a != b) fail_msg("MSR 0x%x: 0x%llx exported, 0x%llx imported", msrs[i], (unsigned long long)a,
                             (unsigned long long)b);
    }
    advance(g, 150000 - 1);
    assert_int_equal(lapic_pending_vector(g->a), -1);
    advance(g, 1);
    assert_int_equal(lapic_ack(g->a), 0x40);
    assert_true(lapic_msr_write(g->a, 0x80b, 0)); /* EOI */
    advance(g, 200000); /* then whole periods */
    assert_int_equal(lapic_pending_vector(g->a), 0x40);
    host_free(f);
    host_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_power_on_state),
        cmocka_unit_test(test_mmio_registers),
        cmocka_unit_test(test_priority_gating_and_nesting),
        cmocka_unit_test(test_level_eoi_broadcast),
        cmocka_unit_test(test_illegal_and_dropped_interrupts),
        cmocka_unit_test(test_xapic_icr),
        cmocka_unit_test(test_x2apic_msrs),
        cmocka_unit_test(test_apic_base_transitions),
        cmocka_unit_test(test_oneshot_timer_each_divider),
        cmocka_unit_test(test_periodic_timer),
        cmocka_unit_test(test_tsc_deadline_timer),
        cmocka_unit_test(test_masked_timer_and_software_disable),
        cmocka_unit_test(test_accepts_pic_intr),
        cmocka_unit_test(test_save_restore_continues_timer),
        cmocka_unit_test(test_restore_refuses_bad_payloads),
        cmocka_unit_test(test_every_live_state_restores),
        cmocka_unit_test(test_import_kvm_x2apic_tsc_deadline),
        cmocka_unit_test(test_import_kvm_xapic_oneshot),
        cmocka_unit_test(test_export_kvm_round_trip_xapic),
        cmocka_unit_test(test_export_kvm_round_trip_x2apic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
