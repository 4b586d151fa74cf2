/* pit: i8254 counter model derived from elapsed time, plus port 0x61.
 *
 * Nothing ticks: a counter stores when it started counting (base_ns) from which value
 * (base_count); reads compute the current count and output level from the elapsed
 * 1.193182 MHz ticks. Only channel 0 needs events: a vm_timer armed for its next output
 * rising edge pulses IRQ 0 (periodic modes 2/3 re-arm, one-shot modes 0/1/4/5 do not);
 * periodic ticks the guest could not take in time are re-injected (see pit_irq0_acknowledged).
 */
#include "pit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "dev_snapshot.h"
#include "pic.h"
#include "vmm/log.h"
#include "vmm/machine.h"

#define PIT_CTRL_SC(v) (((v) >> 6) & 3)
#define PIT_CTRL_RW(v) (((v) >> 4) & 3)
#define PIT_CTRL_MODE(v) (((v) >> 1) & 7)
#define PIT_CTRL_BCD 0x01
#define PIT_SC_READBACK 3
#define PIT_RW_LATCH 0
#define PIT_ACCESS_LO 1
#define PIT_ACCESS_HI 2
#define PIT_ACCESS_LOHI 3
#define PIT_RB_NO_COUNT 0x20  /* read-back: 0 = latch count */
#define PIT_RB_NO_STATUS 0x10 /* read-back: 0 = latch status */
#define PIT_STATUS_OUT 0x80
#define PIT_STATUS_NULL 0x40

#define PORTB_GATE2 0x01
#define PORTB_SPKR 0x02
#define PORTB_WRITABLE 0x0F
#define PORTB_REFRESH 0x10
#define PORTB_OUT2 0x20
#define PIT_REFRESH_PERIOD_NS 15085 /* DRAM refresh request toggle, as on PC/AT boards */
#define PIT_MIN_RETRY_NS 50000     /* backlog delivery: at most one retry per 50 us */

static uint64_t pit_default_clock(void *opaque) { (void)opaque; return clock_now_ns(); }

static uint64_t pit_now(const struct pit *p) { return p->clock_ns(p->clock_opaque); }

static uint64_t pit_ticks_since(uint64_t base_ns, uint64_t now_ns)
{
    if (now_ns <= base_ns) return 0;
    return (uint64_t)((unsigned __int128)(now_ns - base_ns) * PIT_FREQ_HZ / 1000000000ULL);
}

/* Time offset at which tick `k` (counted from base) has happened: ceil(k / f). */
static uint64_t pit_ticks_to_ns(uint64_t k)
{
    return (uint64_t)(((unsigned __int128)k * 1000000000ULL + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ);
}

static uint32_t pit_modulus(const struct irqchip_pit_channel *c) { return c->bcd ? 10000 : 65536; }

static uint64_t pit_elapsed(const struct irqchip_pit_channel *c, uint64_t now_ns)
{
    return c->running ? pit_ticks_since(c->base_ns, now_ns) : 0;
}

/* Periodic modes need N >= 2 (N = 1 is illegal on the 8254); keep the arithmetic sane. */
static uint32_t pit_period(const struct irqchip_pit_channel *c) { return c->reload < 2 ? 2 : c->reload; }

/* Current value of the counting element, 0..modulus-1 (binary value, not BCD-encoded). */
static uint32_t pit_count(const struct irqchip_pit_channel *c, uint64_t now_ns)
{
    uint32_t mod = pit_modulus(c);
    if (!c->running) return c->base_count % mod;
    uint64_t d = pit_elapsed(c, now_ns);
    switch (c->mode) {
    case 2: {
        uint32_t n = pit_period(c);
        return (uint32_t)(n - d % n) % mod;
    }
    case 3: {
        /* Decrements by two; the high half lasts ceil(N/2) ticks, the low half floor(N/2). */
        uint32_t n = pit_period(c);
        uint32_t pos = (uint32_t)(d % n);
        uint32_t high = (n + 1) / 2;
        uint32_t phase = pos < high ? pos : pos - high;
        return (uint32_t)(n - 2 * phase) % mod;
    }
    default: { /* 0, 1, 4, 5: count down from base_count, wrapping past zero */
        uint64_t v = (uint64_t)c->base_count + mod - d % mod;
        return (uint32_t)(v % mod);
    }
    }
}

static bool pit_out(const struct irqchip_pit_channel *c, uint64_t now_ns)
{
    if (!c->loaded) return c->mode != 0;
    uint64_t d = pit_elapsed(c, now_ns);
    switch (c->mode) {
    case 0:
        return c->terminal_passed || (c->running && d >= c->base_count);
    case 1:
        if (!c->running) return true;
        return c->terminal_passed || d >= c->base_count;
    case 2:
        if (!c->running) return true;
        return d % pit_period(c) != pit_period(c) - 1;
    case 3:
        if (!c->running) return true;
        return d % pit_period(c) < (pit_period(c) + 1) / 2;
    default: /* 4, 5: low for one tick at terminal count */
        if (!c->running || c->terminal_passed) return true;
        return d != c->base_count;
    }
}

bool pit_channel_output(struct pit *p, unsigned ch, uint64_t now_ns)
{
    return ch < 3 && pit_out(&p->ch[ch], now_ns);
}

/* Tick (since base) of the next IRQ-raising output edge after tick d, or UINT64_MAX. */
static uint64_t pit_next_edge(const struct irqchip_pit_channel *c, uint64_t d)
{
    if (!c->loaded || !c->running) return UINT64_MAX;
    switch (c->mode) {
    case 2:
    case 3: {
        uint64_t n = pit_period(c);
        return (d / n + 1) * n;
    }
    default: /* one-shot: the terminal count */
        if (c->terminal_passed) return UINT64_MAX;
        return c->base_count > d ? c->base_count : d; /* d == base_count: due now */
    }
}

/* Channel 0 in a periodic mode keeps count of the ticks the guest has not been given yet
 * (the host ran late, or the previous tick was still unacknowledged in the PIC) and hands
 * them over one by one, as KVM's PIT does in its default "reinject" policy: Linux counts
 * jiffies by tick interrupts while its tick is periodic, and its clocksource watchdog
 * compares them with the TSC. At most one second's worth is kept. */
static bool pit_irq0_acknowledged(const struct pit *p)
{
    if (!p->m->pic) return true;
    /* Routed through the IOAPIC (the APIC platform, IRQ0 masked at the 8259): a latched 8259
     * request is never acknowledged there, and the IOAPIC takes every edge. */
    if (p->m->ioapic && pic_irq_masked(p->m->pic, PIT_IRQ)) return true;
    return !pic_irq_requested(p->m->pic, PIT_IRQ);
}

static void pit_reset_tick_backlog(struct pit *p)
{
    p->periods_counted = 0;
    p->ticks_pending = 0;
}

static void pit_rearm(struct pit *p, uint64_t now_ns)
{
    struct irqchip_pit_channel *c = &p->ch[0];
    if (p->ticks_pending && c->loaded && c->running && (c->mode == 2 || c->mode == 3)) {
        uint64_t retry = pit_ticks_to_ns(pit_period(c)) / 4;
        if (retry < PIT_MIN_RETRY_NS) retry = PIT_MIN_RETRY_NS;
        timer_mod(&p->m->timers, &p->irq_timer, now_ns + retry);
        return;
    }
    uint64_t k = pit_next_edge(c, pit_elapsed(c, now_ns));
    if (k == UINT64_MAX) {
        timer_del(&p->m->timers, &p->irq_timer);
        return;
    }
    timer_mod(&p->m->timers, &p->irq_timer, c->base_ns + pit_ticks_to_ns(k));
}

static void pit_irq_timer(void *opaque, uint64_t now_ns)
{
    struct pit *p = opaque;
    struct irqchip_pit_channel *c = &p->ch[0];
    if (!c->loaded || !c->running) return;
    uint64_t d = pit_elapsed(c, now_ns);
    if (c->mode == 2 || c->mode == 3) {
        uint64_t periods = d / pit_period(c);
        if (periods > p->periods_counted) {
            uint64_t max_pending = PIT_FREQ_HZ / pit_period(c);
            if (max_pending == 0) max_pending = 1;
            uint64_t pending = p->ticks_pending + (periods - p->periods_counted);
            p->ticks_pending = (uint32_t)(pending > max_pending ? max_pending : pending);
            p->periods_counted = periods;
        }
        if (p->ticks_pending && pit_irq0_acknowledged(p)) {
            p->ticks_pending--;
            machine_pulse_irq(p->m, PIT_IRQ);
        }
    } else if (!c->terminal_passed && d >= c->base_count) {
        c->terminal_passed = true;
        machine_pulse_irq(p->m, PIT_IRQ);
    }
    pit_rearm(p, now_ns);
}

static uint16_t pit_to_bcd(uint32_t v)
{
    return (uint16_t)((v % 10) | ((v / 10 % 10) << 4) | ((v / 100 % 10) << 8) | ((v / 1000 % 10) << 12));
}

static uint32_t pit_from_bcd(uint16_t v)
{
    /* Invalid digits (A-F) are taken at face value, as the counter would mis-count them anyway. */
    return (v & 0xF) + ((v >> 4) & 0xF) * 10 + ((v >> 8) & 0xF) * 100 + ((v >> 12) & 0xF) * 1000u;
}

static uint16_t pit_visible_count(const struct irqchip_pit_channel *c, uint64_t now_ns)
{
    uint32_t v = pit_count(c, now_ns);
    return c->bcd ? pit_to_bcd(v) : (uint16_t)v;
}

static void pit_latch_count(struct irqchip_pit_channel *c, uint64_t now_ns)
{
    if (c->count_latched) return; /* a second latch before the read is ignored */
    c->latched_count = pit_visible_count(c, now_ns);
    c->count_latched = true;
    c->latched_hi_next = false;
}

static void pit_latch_status(struct irqchip_pit_channel *c, uint64_t now_ns)
{
    if (c->status_latched) return;
    c->status = (uint8_t)((pit_out(c, now_ns) ? PIT_STATUS_OUT : 0) | (c->null_count ? PIT_STATUS_NULL : 0) |
                          (c->access << 4) | (c->mode << 1) | (c->bcd ? 1 : 0));
    c->status_latched = true;
}

/* Start counting from the programmed count now. */
static void pit_start(struct irqchip_pit_channel *c, uint64_t now_ns)
{
    c->base_ns = now_ns;
    c->base_count = c->reload;
    c->terminal_passed = false;
    c->running = true;
    c->null_count = false;
}

static void pit_set_gate(struct irqchip_pit_channel *c, bool gate, uint64_t now_ns)
{
    if (gate == c->gate) return;
    c->gate = gate;
    if (!c->loaded) return;
    switch (c->mode) {
    case 0:
    case 4:
        if (!gate && c->running) { /* suspend counting, keep the count and the output */
            bool passed = c->terminal_passed || pit_elapsed(c, now_ns) >= c->base_count;
            c->base_count = pit_count(c, now_ns);
            c->terminal_passed = passed;
            c->running = false;
        } else if (gate && !c->running) {
            c->base_ns = now_ns; /* resume from the held count */
            c->running = true;
        }
        break;
    case 2:
    case 3:
        if (gate) pit_start(c, now_ns); /* a rising gate reloads */
        else c->running = false;        /* gate low holds the output high */
        break;
    default: /* 1, 5: a rising gate (re)triggers */
        if (gate) pit_start(c, now_ns);
        break;
    }
}

static void pit_control_word(struct pit *p, uint8_t v, uint64_t now_ns)
{
    unsigned sc = PIT_CTRL_SC(v);
    if (sc == PIT_SC_READBACK) {
        for (unsigned i = 0; i < 3; i++) {
            if (!(v & (2u << i))) continue;
            if (!(v & PIT_RB_NO_COUNT)) pit_latch_count(&p->ch[i], now_ns);
            if (!(v & PIT_RB_NO_STATUS)) pit_latch_status(&p->ch[i], now_ns);
        }
        return;
    }
    struct irqchip_pit_channel *c = &p->ch[sc];
    if (PIT_CTRL_RW(v) == PIT_RW_LATCH) {
        pit_latch_count(c, now_ns);
        return;
    }
    unsigned mode = PIT_CTRL_MODE(v);
    c->mode = (uint8_t)(mode > 5 ? mode - 4 : mode);
    c->access = (uint8_t)PIT_CTRL_RW(v);
    c->bcd = v & PIT_CTRL_BCD;
    /* A control word stops the counter until a new count arrives; mode 0 drives OUT low. */
    c->loaded = false;
    c->running = false;
    c->terminal_passed = false;
    c->null_count = true;
    c->write_hi_next = false;
    c->read_hi_next = false;
    c->count_latched = false;
    c->status_latched = false;
    if (sc == 0) {
        pit_reset_tick_backlog(p);
        pit_rearm(p, now_ns);
    }
}

static void pit_write_count(struct pit *p, unsigned ch, uint8_t v, uint64_t now_ns)
{
    struct irqchip_pit_channel *c = &p->ch[ch];
    uint16_t value;
    switch (c->access) {
    case PIT_ACCESS_LO:
        value = v;
        break;
    case PIT_ACCESS_HI:
        value = (uint16_t)(v << 8);
        break;
    default:
        if (!c->write_hi_next) {
            c->write_lo = v;
            c->write_hi_next = true;
            return;
        }
        c->write_hi_next = false;
        value = (uint16_t)(c->write_lo | (v << 8));
        break;
    }
    uint32_t n = c->bcd ? pit_from_bcd(value) : value;
    c->reload = n == 0 ? pit_modulus(c) : n;
    c->null_count = true;
    c->loaded = true;
    switch (c->mode) {
    case 1:
    case 5:
        break; /* waits for a gate trigger */
    default:
        if (c->gate) {
            pit_start(c, now_ns);
        } else {
            c->running = false;
            c->base_count = c->reload;
            c->terminal_passed = false;
        }
        break;
    }
    if (ch == 0) {
        pit_reset_tick_backlog(p);
        pit_rearm(p, now_ns);
    }
}

static uint8_t pit_read_count(struct pit *p, unsigned ch, uint64_t now_ns)
{
    struct irqchip_pit_channel *c = &p->ch[ch];
    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    uint16_t v;
    bool hi;
    if (c->count_latched) {
        v = c->latched_count;
        switch (c->access) {
        case PIT_ACCESS_LO:
            hi = false;
            c->count_latched = false;
            break;
        case PIT_ACCESS_HI:
            hi = true;
            c->count_latched = false;
            break;
        default:
            hi = c->latched_hi_next;
            c->latched_hi_next = !hi;
            if (hi) c->count_latched = false;
            break;
        }
    } else {
        v = pit_visible_count(c, now_ns);
        switch (c->access) {
        case PIT_ACCESS_LO:
            hi = false;
            break;
        case PIT_ACCESS_HI:
            hi = true;
            break;
        default:
            hi = c->read_hi_next;
            c->read_hi_next = !hi;
            break;
        }
    }
    return hi ? (uint8_t)(v >> 8) : (uint8_t)v;
}

static void pit_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct pit *p = opaque;
    uint64_t now = pit_now(p);
    if (offset == 3) {
        if (is_write) pit_control_word(p, (uint8_t)*data, now);
        /* reading the control register returns nothing on an 8254 */
        return;
    }
    if (is_write)
        pit_write_count(p, (unsigned)offset, (uint8_t)*data, now);
    else
        *data = pit_read_count(p, (unsigned)offset, now);
}

static void pit_io_port_b(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct pit *p = opaque;
    uint64_t now = pit_now(p);
    if (is_write) {
        p->port_b = (uint8_t)*data & PORTB_WRITABLE;
        pit_set_gate(&p->ch[2], p->port_b & PORTB_GATE2, now);
        return;
    }
    uint8_t v = p->port_b;
    if ((now / PIT_REFRESH_PERIOD_NS) & 1) v |= PORTB_REFRESH;
    if (pit_out(&p->ch[2], now)) v |= PORTB_OUT2;
    *data = v;
}

static void pit_destroy(struct machine *m);

static int pit_init(struct machine *m, char *err, size_t errlen)
{
    if (m->backend->has_kernel_irqchip) return 0;
    struct pit *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "pit: out of memory");
        return -ENOMEM;
    }
    p->m = m;
    p->clock_ns = pit_default_clock;
    for (unsigned i = 0; i < 3; i++) {
        p->ch[i].access = PIT_ACCESS_LOHI;
        p->ch[i].gate = i != 2; /* channels 0 and 1 are gated on; channel 2 follows port 0x61 */
        p->ch[i].reload = 65536;
    }
    timer_init(&p->irq_timer, pit_irq_timer, p);
    m->pit = p;
    int r = bus_register(&m->pio, PIT_BASE, 4, pit_io, p, "pit");
    if (r == 0) r = bus_register(&m->pio, PIT_PORT_B, 1, pit_io_port_b, p, "port-b");
    if (r < 0) {
        snprintf(err, errlen, "pit ports: %s", strerror(-r));
        pit_destroy(m);
        return r;
    }
    return 0;
}

static void pit_destroy(struct machine *m)
{
    struct pit *p = m->pit;
    if (!p) return;
    timer_del(&m->timers, &p->irq_timer);
    bus_release(&m->pio, PIT_BASE, p);
    bus_release(&m->pio, PIT_PORT_B, p);
    m->pit = NULL;
    free(p);
}

/* Snapshot: every channel's programming and latches. Times are saved relative to the moment of
 * the save, so the counters carry on from the same values after a restore at any later time;
 * the elapsed time is reduced to the counter's phase (periodic modes: within the period, with
 * the unaccounted channel 0 ticks moved into the backlog; one-shot modes: modulo the counter
 * range) so that a long-running guest restores onto a freshly booted host. */
#define PIT_CH_BCD 0x01
#define PIT_CH_GATE 0x02
#define PIT_CH_LOADED 0x04
#define PIT_CH_RUNNING 0x08
#define PIT_CH_TERMINAL 0x10
#define PIT_CH_NULL 0x20
#define PIT_CH_WRITE_HI 0x40
#define PIT_CH_READ_HI 0x80
#define PIT_CH_COUNT_LATCHED 0x01
#define PIT_CH_LATCHED_HI 0x02
#define PIT_CH_STATUS_LATCHED 0x04

/* The ticks since base_ns worth keeping when `d` have elapsed: the phase within the period
 * (periodic modes), or the count modulo the counter range, kept past the terminal count
 * (one-shot modes). The counter reads and behaves the same from there. */
static uint64_t pit_phase_ticks(const struct irqchip_pit_channel *c, uint64_t d)
{
    if (c->mode == 2 || c->mode == 3) return d % pit_period(c);
    uint64_t mod = pit_modulus(c);
    return d >= 2 * mod ? d % mod + mod : d;
}

void pit_get_state(const struct pit *p, struct irqchip_pit *s)
{
    memset(s, 0, sizeof(*s));
    uint64_t now = pit_now(p);
    s->port_b = p->port_b;
    for (unsigned i = 0; i < 3; i++) {
        const struct irqchip_pit_channel *c = &p->ch[i];
        s->ch[i] = *c;
        s->ch[i].base_ns = 0;
        s->elapsed_ns[i] = c->running ? pit_ticks_to_ns(pit_phase_ticks(c, pit_elapsed(c, now))) : 0;
    }
    uint64_t owed = p->ticks_pending;
    const struct irqchip_pit_channel *c0 = &p->ch[0];
    if (c0->running && (c0->mode == 2 || c0->mode == 3)) {
        uint64_t periods = pit_elapsed(c0, now) / pit_period(c0);
        if (periods > p->periods_counted) owed += periods - p->periods_counted;
        uint64_t max_pending = PIT_FREQ_HZ / pit_period(c0);
        if (owed > max_pending) owed = max_pending ? max_pending : 1;
    }
    s->ticks_pending = (uint32_t)owed;
}

int pit_state_check(const struct irqchip_pit *s, char *err, size_t errlen)
{
    for (unsigned i = 0; i < 3; i++) {
        const struct irqchip_pit_channel *c = &s->ch[i];
        if (c->mode > 5 || c->access < 1 || c->access > 3 || c->reload < 1 || c->reload > 65536 ||
            c->base_count > 65536 || s->elapsed_ns[i] > 1000000000ULL)
            return dev_snapshot_invalid("pit", "register out of range", err, errlen);
    }
    if (s->port_b & ~PORTB_WRITABLE) return dev_snapshot_invalid("pit", "register out of range", err, errlen);
    return 0;
}

void pit_state_encode(struct snap_buf *b, const struct irqchip_pit *s)
{
    snap_put_bool(b, s != NULL);
    if (!s) return;
    snap_put_u8(b, s->port_b);
    for (unsigned i = 0; i < 3; i++) {
        const struct irqchip_pit_channel *c = &s->ch[i];
        snap_put_u8(b, c->mode);
        snap_put_u8(b, c->access);
        snap_put_u8(b, (uint8_t)((c->bcd ? PIT_CH_BCD : 0) | (c->gate ? PIT_CH_GATE : 0) |
                                 (c->loaded ? PIT_CH_LOADED : 0) | (c->running ? PIT_CH_RUNNING : 0) |
                                 (c->terminal_passed ? PIT_CH_TERMINAL : 0) | (c->null_count ? PIT_CH_NULL : 0) |
                                 (c->write_hi_next ? PIT_CH_WRITE_HI : 0) | (c->read_hi_next ? PIT_CH_READ_HI : 0)));
        snap_put_u8(b, (uint8_t)((c->count_latched ? PIT_CH_COUNT_LATCHED : 0) |
                                 (c->latched_hi_next ? PIT_CH_LATCHED_HI : 0) |
                                 (c->status_latched ? PIT_CH_STATUS_LATCHED : 0)));
        snap_put_u32(b, c->reload);
        snap_put_u32(b, c->base_count);
        snap_put_u64(b, s->elapsed_ns[i]);
        snap_put_u8(b, c->write_lo);
        snap_put_u16(b, c->latched_count);
        snap_put_u8(b, c->status);
    }
    snap_put_u32(b, s->ticks_pending);
}

int pit_state_decode(struct snap_reader *r, bool *present, struct irqchip_pit *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    bool bad = false;
    *present = snap_get_bool(r, &bad);
    if (bad || r->short_read) return dev_snapshot_invalid("pit", "presence flag", err, errlen);
    if (!*present) return 0;
    out->port_b = snap_get_u8(r);
    for (unsigned i = 0; i < 3; i++) {
        struct irqchip_pit_channel *c = &out->ch[i];
        c->mode = snap_get_u8(r);
        c->access = snap_get_u8(r);
        uint8_t f = snap_get_u8(r), l = snap_get_u8(r);
        c->bcd = f & PIT_CH_BCD;
        c->gate = f & PIT_CH_GATE;
        c->loaded = f & PIT_CH_LOADED;
        c->running = f & PIT_CH_RUNNING;
        c->terminal_passed = f & PIT_CH_TERMINAL;
        c->null_count = f & PIT_CH_NULL;
        c->write_hi_next = f & PIT_CH_WRITE_HI;
        c->read_hi_next = f & PIT_CH_READ_HI;
        c->count_latched = l & PIT_CH_COUNT_LATCHED;
        c->latched_hi_next = l & PIT_CH_LATCHED_HI;
        c->status_latched = l & PIT_CH_STATUS_LATCHED;
        c->reload = snap_get_u32(r);
        c->base_count = snap_get_u32(r);
        out->elapsed_ns[i] = snap_get_u64(r);
        c->write_lo = snap_get_u8(r);
        c->latched_count = snap_get_u16(r);
        c->status = snap_get_u8(r);
        if (l & ~7u) bad = true;
    }
    out->ticks_pending = snap_get_u32(r);
    if (r->short_read) return dev_snapshot_invalid("pit", "truncated", err, errlen);
    if (bad) return dev_snapshot_invalid("pit", "register out of range", err, errlen);
    return pit_state_check(out, err, errlen);
}

uint32_t pit_state_count(const struct irqchip_pit *s, unsigned ch)
{
    struct irqchip_pit_channel c = s->ch[ch];
    c.base_ns = 0;
    return pit_count(&c, s->elapsed_ns[ch]);
}

void pit_state_channel_loaded(struct irqchip_pit *s, unsigned ch, uint8_t mode, uint8_t access, bool bcd,
                              uint32_t count, bool gate, uint64_t ns_since_load)
{
    struct irqchip_pit_channel *c = &s->ch[ch];
    memset(c, 0, sizeof(*c));
    c->mode = mode;
    c->access = access;
    c->bcd = bcd;
    c->gate = gate;
    c->reload = count;
    if (c->bcd && c->reload > 10000) /* BCD digits taken as binary by the other model */
        c->reload = count == 65536 ? 10000 : pit_from_bcd((uint16_t)count);
    if (c->reload == 0) c->reload = pit_modulus(c);
    c->loaded = true;
    /* Counting since the load (the load triggers modes 1 and 5 too). */
    c->running = true;
    c->base_ns = 0;
    c->base_count = c->reload;
    uint64_t keep = pit_phase_ticks(c, pit_ticks_since(0, ns_since_load));
    bool one_shot = c->mode != 2 && c->mode != 3;
    c->terminal_passed = one_shot && keep >= c->base_count; /* its IRQ was delivered already */
    uint64_t at = pit_ticks_to_ns(keep);
    if (!gate) { /* held: modes 0/4 suspend their count, 2/3 stop with output high */
        c->gate = true;
        pit_set_gate(c, false, at);
    }
    s->elapsed_ns[ch] = c->running ? at : 0;
}

/* Make `s` the state of p now: every running channel has counted for its elapsed_ns;
 * channel 0's IRQ timer is re-armed for its next output edge (or its tick backlog). */
void pit_set_state(struct pit *p, const struct irqchip_pit *s)
{
    uint64_t now = pit_now(p);
    for (unsigned i = 0; i < 3; i++) {
        uint64_t elapsed = s->elapsed_ns[i];
        p->ch[i] = s->ch[i];
        p->ch[i].base_ns = now - (elapsed < now ? elapsed : now); /* the monotonic clock exceeds 1 s */
    }
    p->port_b = s->port_b;
    p->periods_counted = 0;
    p->ticks_pending = s->ticks_pending > PIT_FREQ_HZ / 2 ? PIT_FREQ_HZ / 2 : s->ticks_pending;
    pit_rearm(p, now);
}

const struct device_desc pit_device = {.name = "pit",
                                       .level = DEVICE_LEVEL_CORE,
                                       .init = pit_init,
                                       .destroy = pit_destroy};
DEVICE_REGISTER(pit_device);
