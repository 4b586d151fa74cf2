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

void ioapic_get_state(const struct ioapic *io, struct irqchip_ioapic *s)
{
    memset(s, 0, sizeof(*s));
    s->ioregsel = io->ioregsel;
    s->id = io->id;
    s->lines = io->lines;
    s->deferred = io->deferred;
    memcpy(s->redir, io->redir, sizeof(s->redir));
}

int ioapic_state_check(const struct irqchip_ioapic *s, char *err, size_t errlen)
{
    if (s->id > 0xf) return dev_snapshot_invalid("ioapic", "ID out of range", err, errlen);
    if ((s->lines | s->deferred) & ~IOAPIC_PIN_MASK) return dev_snapshot_invalid("ioapic", "pin out of range", err, errlen);
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        if (s->redir[pin] & REDIR_DELIVERY_STATUS)
            return dev_snapshot_invalid("ioapic", "redirection entry with delivery status set", err, errlen);
        if ((s->redir[pin] & REDIR_REMOTE_IRR) && !redir_level(s->redir[pin]))
            return dev_snapshot_invalid("ioapic", "edge-triggered entry with remote IRR set", err, errlen);
    }
    return 0;
}

/* Load checked state, then have the level lines that are due delivered once the rest of
 * the machine (the local APICs) is restored: from the timer list, or at the next call. */
void ioapic_set_state(struct ioapic *io, const struct irqchip_ioapic *s)
{
    if (io->host.timers) timer_del(io->host.timers, &io->storm_timer);
    io->ioregsel = s->ioregsel;
    io->id = s->id;
    io->lines = s->lines;
    io->deferred = 0;
    memcpy(io->redir, s->redir, sizeof(io->redir));
    memset(io->eoi_redeliveries, 0, sizeof(io->eoi_redeliveries));
    uint32_t due = s->deferred;
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
        if (ioapic_level_ready(io, pin)) due |= 1u << pin;
    ioapic_defer(io, due, 0);
}

/* Codec: u8 ioregsel, u8 id, u32 input levels, u32 postponed pins, 24 x u64 entries. */
void ioapic_state_encode(struct snap_buf *b, const struct irqchip_ioapic *s)
{
    snap_put_u8(b, s->ioregsel);
    snap_put_u8(b, s->id);
    snap_put_u32(b, s->lines);
    snap_put_u32(b, s->deferred);
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) snap_put_u64(b, s->redir[pin]);
}

int ioapic_state_decode(struct snap_reader *r, struct irqchip_ioapic *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->ioregsel = snap_get_u8(r);
    s->id = snap_get_u8(r);
    s->lines = snap_get_u32(r);
    s->deferred = snap_get_u32(r);
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) s->redir[pin] = snap_get_u64(r);
    if (r->short_read) return dev_snapshot_invalid("ioapic", "truncated", err, errlen);
    return ioapic_state_check(s, err, errlen);
}
