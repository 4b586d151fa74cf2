/* pic: i8259A master/slave pair with the PIIX-style edge/level control registers (ELCR).
 *
 * Model: each chip has eight request inputs; IRR latches a rising edge (edge mode) or follows
 * the input (level mode, per ELCR bit). Priority rotates with `lowest_priority` (the IRQ
 * with the lowest priority; IRQ (lowest+1)&7 is the highest). The slave's INT output drives
 * master input 2. Skipped entirely when the backend has an in-kernel irqchip.
 */
#include "pic.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "dev_snapshot.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/machine.h"

#define PIC_MASTER_BASE 0x20
#define PIC_SLAVE_BASE 0xA0
#define PIC_ELCR_BASE 0x4D0
#define PIC_CASCADE_IRQ 2

/* ICW1 / OCW2 / OCW3 bits */
#define ICW1_IC4 0x01
#define ICW1_SNGL 0x02
#define ICW1_INIT 0x10
#define OCW3_SELECT 0x08
#define OCW3_RIS 0x01
#define OCW3_RR 0x02
#define OCW3_POLL 0x04
#define OCW3_SMM 0x20
#define OCW3_ESMM 0x40
#define ICW4_AEOI 0x02
#define ICW4_SFNM 0x10

enum pic_init_step { PIC_READY, PIC_WANT_ICW2, PIC_WANT_ICW3, PIC_WANT_ICW4 };

struct pic_chip {
    uint8_t irr, isr, imr;
    uint8_t lines;          /* current input levels */
    uint8_t elcr, elcr_mask;
    uint8_t vector_base;    /* ICW2 & 0xF8 */
    uint8_t icw3;
    uint8_t lowest_priority; /* the IRQ with the lowest priority (7 after init) */
    enum pic_init_step init_step;
    bool icw4_needed, single;
    bool auto_eoi, rotate_on_auto_eoi, special_fully_nested;
    bool read_isr, poll, special_mask;
};

struct pic {
    struct machine *m;
    struct pic_chip chip[2]; /* 0 master, 1 slave */
};

/* Priority rank (0 = highest) of the highest-priority bit set in `mask`, or 8 if none. */
static unsigned pic_best_rank(const struct pic_chip *c, uint8_t mask)
{
    for (unsigned rank = 0; rank < 8; rank++)
        if (mask & (1u << ((c->lowest_priority + 1 + rank) & 7))) return rank;
    return 8;
}

static unsigned pic_rank_irq(const struct pic_chip *c, unsigned rank) { return (c->lowest_priority + 1 + rank) & 7; }

/* The IRQ this chip would present to its INT output, or -1. */
static int pic_chip_pending(const struct pic_chip *c, bool is_master)
{
    unsigned req = pic_best_rank(c, c->irr & ~c->imr);
    if (req == 8) return -1;
    uint8_t in_service = c->isr;
    if (c->special_mask) in_service &= ~c->imr;
    /* Special fully nested mode: a slave in service does not block higher slave requests. */
    if (is_master && c->special_fully_nested) in_service &= ~(1u << PIC_CASCADE_IRQ);
    unsigned cur = pic_best_rank(c, in_service);
    return req < cur ? (int)pic_rank_irq(c, req) : -1;
}

static void pic_chip_set_line(struct pic_chip *c, unsigned irq, int level)
{
    uint8_t bit = (uint8_t)(1u << irq);
    if (c->elcr & bit) {
        if (level) c->irr |= bit;
        else c->irr &= ~bit;
    } else if (level && !(c->lines & bit)) {
        c->irr |= bit; /* rising edge latched until acknowledged */
    }
    if (level) c->lines |= bit;
    else c->lines &= ~bit;
}

static void pic_update(struct pic *p)
{
    pic_chip_set_line(&p->chip[0], PIC_CASCADE_IRQ, pic_chip_pending(&p->chip[1], false) >= 0);
}

void pic_set_irq(struct pic *p, unsigned irq, int level)
{
    if (!p || irq >= 16) return;
    pic_chip_set_line(&p->chip[irq >> 3], irq & 7, level);
    pic_update(p);
}

bool pic_irq_requested(const struct pic *p, unsigned irq)
{
    return p && irq < 16 && (p->chip[irq >> 3].irr & (1u << (irq & 7)));
}

bool pic_irq_masked(const struct pic *p, unsigned irq)
{
    return !p || irq >= 16 || (p->chip[irq >> 3].imr & (1u << (irq & 7)));
}

bool pic_has_irq(const struct pic *p) { return p && pic_chip_pending(&p->chip[0], true) >= 0; }

/* Acknowledge `irq` on chip c: move it from IRR to ISR (or not, with auto-EOI). */
static void pic_chip_ack(struct pic_chip *c, unsigned irq)
{
    uint8_t bit = (uint8_t)(1u << irq);
    if (c->auto_eoi) {
        if (c->rotate_on_auto_eoi) c->lowest_priority = (uint8_t)irq;
    } else {
        c->isr |= bit;
    }
    /* A level-triggered request stays in IRR while its input is high. */
    if (!(c->elcr & bit)) c->irr &= ~bit;
}

int pic_read_irq(struct pic *p)
{
    if (!p) return -1;
    struct pic_chip *master = &p->chip[0], *slave = &p->chip[1];
    int irq = pic_chip_pending(master, true);
    if (irq < 0) return -1;
    pic_chip_ack(master, (unsigned)irq);
    int vector;
    if (irq == PIC_CASCADE_IRQ) {
        int sirq = pic_chip_pending(slave, false);
        if (sirq >= 0) {
            pic_chip_ack(slave, (unsigned)sirq);
        } else {
            sirq = 7; /* the request went away: the slave answers with its IRQ7 (IRQ15) vector */
        }
        vector = slave->vector_base + sirq;
    } else {
        vector = master->vector_base + irq;
    }
    pic_update(p);
    return vector;
}

/* Poll command: the read returns 0x80|irq and acknowledges it, or 0 when nothing is pending. */
static uint8_t pic_poll_read(struct pic *p, unsigned idx)
{
    struct pic_chip *c = &p->chip[idx];
    c->poll = false;
    int irq = pic_chip_pending(c, idx == 0);
    if (irq < 0) return 0;
    pic_chip_ack(c, (unsigned)irq);
    pic_update(p);
    return (uint8_t)(0x80 | irq);
}

static void pic_eoi(struct pic_chip *c, uint8_t ocw2)
{
    unsigned cmd = ocw2 >> 5;
    unsigned level = ocw2 & 7;
    switch (cmd) {
    case 0: /* rotate in auto-EOI mode: clear */
        c->rotate_on_auto_eoi = false;
        break;
    case 4: /* rotate in auto-EOI mode: set */
        c->rotate_on_auto_eoi = true;
        break;
    case 1: /* non-specific EOI */
    case 5: /* rotate on non-specific EOI */
    {
        unsigned rank = pic_best_rank(c, c->isr);
        if (rank == 8) break;
        unsigned irq = pic_rank_irq(c, rank);
        c->isr &= (uint8_t)~(1u << irq);
        if (cmd == 5) c->lowest_priority = (uint8_t)irq;
        break;
    }
    case 3: /* specific EOI */
        c->isr &= (uint8_t)~(1u << level);
        break;
    case 7: /* rotate on specific EOI */
        c->isr &= (uint8_t)~(1u << level);
        c->lowest_priority = (uint8_t)level;
        break;
    case 6: /* set priority */
        c->lowest_priority = (uint8_t)level;
        break;
    case 2: /* no operation */
        break;
    }
}

static void pic_chip_icw1(struct pic_chip *c, uint8_t v)
{
    c->imr = 0;
    c->isr = 0;
    c->irr = c->lines & c->elcr; /* edges must be new after init; levels still request */
    c->lowest_priority = 7;
    c->read_isr = false;
    c->poll = false;
    c->special_mask = false;
    c->auto_eoi = false;
    c->rotate_on_auto_eoi = false;
    c->special_fully_nested = false;
    c->icw4_needed = v & ICW1_IC4;
    c->single = v & ICW1_SNGL;
    c->init_step = PIC_WANT_ICW2;
}

static void pic_write(struct pic *p, unsigned idx, unsigned port, uint8_t v)
{
    struct pic_chip *c = &p->chip[idx];
    if (port == 0) {
        if (v & ICW1_INIT) {
            pic_chip_icw1(c, v);
        } else if (v & OCW3_SELECT) {
            if (v & OCW3_POLL) c->poll = true;
            if (v & OCW3_RR) c->read_isr = v & OCW3_RIS;
            if (v & OCW3_ESMM) c->special_mask = v & OCW3_SMM;
        } else {
            pic_eoi(c, v);
        }
    } else {
        switch (c->init_step) {
        case PIC_READY:
            c->imr = v; /* OCW1 */
            break;
        case PIC_WANT_ICW2:
            c->vector_base = v & 0xF8;
            c->init_step = !c->single ? PIC_WANT_ICW3 : c->icw4_needed ? PIC_WANT_ICW4 : PIC_READY;
            break;
        case PIC_WANT_ICW3:
            c->icw3 = v;
            c->init_step = c->icw4_needed ? PIC_WANT_ICW4 : PIC_READY;
            break;
        case PIC_WANT_ICW4:
            c->auto_eoi = v & ICW4_AEOI;
            c->special_fully_nested = v & ICW4_SFNM;
            c->init_step = PIC_READY;
            break;
        }
    }
    pic_update(p);
}

static uint8_t pic_read(struct pic *p, unsigned idx, unsigned port)
{
    struct pic_chip *c = &p->chip[idx];
    if (c->poll) return pic_poll_read(p, idx);
    if (port == 0) return c->read_isr ? c->isr : c->irr;
    return c->imr;
}

static void pic_io_master(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct pic *p = opaque;
    if (is_write) pic_write(p, 0, (unsigned)offset, (uint8_t)*data);
    else *data = pic_read(p, 0, (unsigned)offset);
}

static void pic_io_slave(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct pic *p = opaque;
    if (is_write) pic_write(p, 1, (unsigned)offset, (uint8_t)*data);
    else *data = pic_read(p, 1, (unsigned)offset);
}

static void pic_io_elcr(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct pic *p = opaque;
    for (unsigned i = 0; i < size && offset + i < 2; i++) {
        struct pic_chip *c = &p->chip[offset + i];
        if (is_write) {
            c->elcr = (uint8_t)(*data >> (8 * i)) & c->elcr_mask;
            /* Level lines request for as long as they are high. */
            c->irr = (uint8_t)((c->irr & ~c->elcr) | (c->lines & c->elcr));
        } else {
            *data |= (uint64_t)c->elcr << (8 * i);
        }
    }
    if (is_write) pic_update(p);
}

static void pic_destroy(struct machine *m);

static int pic_init(struct machine *m, char *err, size_t errlen)
{
    if (m->backend->has_kernel_irqchip) return 0;
    struct pic *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "pic: out of memory");
        return -ENOMEM;
    }
    p->m = m;
    for (unsigned i = 0; i < 2; i++) {
        p->chip[i].lowest_priority = 7;
        p->chip[i].imr = 0xFF; /* masked until the guest programs the controller */
    }
    /* IRQ0, 1, 2 (master) and 8, 13 (slave) are edge-only on PIIX. */
    p->chip[0].elcr_mask = 0xF8;
    p->chip[1].elcr_mask = 0xDE;
    m->pic = p;
    int r = bus_register(&m->pio, PIC_MASTER_BASE, 2, pic_io_master, p, "pic-master");
    if (r == 0) r = bus_register(&m->pio, PIC_SLAVE_BASE, 2, pic_io_slave, p, "pic-slave");
    if (r == 0) r = bus_register(&m->pio, PIC_ELCR_BASE, 2, pic_io_elcr, p, "pic-elcr");
    if (r < 0) {
        snprintf(err, errlen, "pic ports: %s", strerror(-r));
        pic_destroy(m);
        return r;
    }
    return 0;
}

static void pic_destroy(struct machine *m)
{
    struct pic *p = m->pic;
    if (!p) return;
    bus_release(&m->pio, PIC_MASTER_BASE, p);
    bus_release(&m->pio, PIC_SLAVE_BASE, p);
    bus_release(&m->pio, PIC_ELCR_BASE, p);
    m->pic = NULL;
    free(p);
}

/* State codec (the PIC part of "dev.irqchip", vmm/irqchip.h): a presence flag, then per chip
 * its registers, input levels and initialization state. */
#define PIC_FLAG_ICW4 0x01
#define PIC_FLAG_SINGLE 0x02
#define PIC_FLAG_AEOI 0x04
#define PIC_FLAG_ROTATE_AEOI 0x08
#define PIC_FLAG_SFNM 0x10
#define PIC_FLAG_READ_ISR 0x20
#define PIC_FLAG_POLL 0x40
#define PIC_FLAG_SMM 0x80

void pic_state_encode(struct snap_buf *b, const struct irqchip_pic *s)
{
    snap_put_bool(b, s != NULL);
    if (!s) return;
    for (unsigned i = 0; i < 2; i++) {
        const struct irqchip_pic_chip *c = &s->chip[i];
        uint8_t flags = (c->icw4_needed ? PIC_FLAG_ICW4 : 0) | (c->single ? PIC_FLAG_SINGLE : 0) |
                        (c->auto_eoi ? PIC_FLAG_AEOI : 0) | (c->rotate_on_auto_eoi ? PIC_FLAG_ROTATE_AEOI : 0) |
                        (c->special_fully_nested ? PIC_FLAG_SFNM : 0) | (c->read_isr ? PIC_FLAG_READ_ISR : 0) |
                        (c->poll ? PIC_FLAG_POLL : 0) | (c->special_mask ? PIC_FLAG_SMM : 0);
        const uint8_t regs[] = {c->irr,  c->isr,           c->imr,       c->lines, c->elcr, c->vector_base,
                                c->icw3, c->lowest_priority, c->init_step, flags};
        snap_put(b, regs, sizeof(regs));
    }
}

int pic_state_check(const struct irqchip_pic *s, char *err, size_t errlen)
{
    static const uint8_t elcr_mask[2] = {0xF8, 0xDE}; /* IRQ 0, 1, 2, 8 and 13 are edge-only */
    static const char *const name[2] = {"master", "slave"};
    for (unsigned i = 0; i < 2; i++) {
        const struct irqchip_pic_chip *c = &s->chip[i];
        const char *bad = NULL;
        if (c->lowest_priority > 7) bad = "lowest priority";
        else if (c->init_step > PIC_WANT_ICW4) bad = "initialization step";
        else if (c->elcr & ~elcr_mask[i]) bad = "edge/level control";
        else if (c->vector_base & 7) bad = "vector base";
        if (bad) {
            snprintf(err, errlen, "snapshot: pic state is invalid (%s %s out of range)", name[i], bad);
            return -EINVAL;
        }
    }
    return 0;
}

int pic_state_decode(struct snap_reader *r, bool *present, struct irqchip_pic *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    bool bad = false;
    *present = snap_get_bool(r, &bad);
    if (bad || r->short_read) return dev_snapshot_invalid("pic", "presence flag", err, errlen);
    if (!*present) return 0;
    uint8_t regs[2][10];
    snap_get(r, regs, sizeof(regs));
    if (r->short_read) return dev_snapshot_invalid("pic", "truncated", err, errlen);
    for (unsigned i = 0; i < 2; i++) {
        struct irqchip_pic_chip *c = &out->chip[i];
        const uint8_t *v = regs[i];
        c->irr = v[0];
        c->isr = v[1];
        c->imr = v[2];
        c->lines = v[3];
        c->elcr = v[4];
        c->vector_base = v[5] & 0xF8;
        c->icw3 = v[6];
        c->lowest_priority = v[7];
        c->init_step = v[8];
        c->icw4_needed = v[9] & PIC_FLAG_ICW4;
        c->single = v[9] & PIC_FLAG_SINGLE;
        c->auto_eoi = v[9] & PIC_FLAG_AEOI;
        c->rotate_on_auto_eoi = v[9] & PIC_FLAG_ROTATE_AEOI;
        c->special_fully_nested = v[9] & PIC_FLAG_SFNM;
        c->read_isr = v[9] & PIC_FLAG_READ_ISR;
        c->poll = v[9] & PIC_FLAG_POLL;
        c->special_mask = v[9] & PIC_FLAG_SMM;
    }
    return pic_state_check(out, err, errlen);
}

void pic_get_state(const struct pic *p, struct irqchip_pic *s)
{
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < 2; i++) {
        const struct pic_chip *c = &p->chip[i];
        struct irqchip_pic_chip *v = &s->chip[i];
        v->irr = c->irr;
        v->isr = c->isr;
        v->imr = c->imr;
        v->lines = c->lines;
        v->elcr = c->elcr;
        v->vector_base = c->vector_base;
        v->icw3 = c->icw3;
        v->lowest_priority = c->lowest_priority;
        v->init_step = (uint8_t)c->init_step;
        v->icw4_needed = c->icw4_needed;
        v->single = c->single;
        v->auto_eoi = c->auto_eoi;
        v->rotate_on_auto_eoi = c->rotate_on_auto_eoi;
        v->special_fully_nested = c->special_fully_nested;
        v->read_isr = c->read_isr;
        v->poll = c->poll;
        v->special_mask = c->special_mask;
    }
}

void pic_set_state(struct pic *p, const struct irqchip_pic *s)
{
    for (unsigned i = 0; i < 2; i++) {
        struct pic_chip *c = &p->chip[i];
        const struct irqchip_pic_chip *v = &s->chip[i];
        c->irr = v->irr;
        c->isr = v->isr;
        c->imr = v->imr;
        c->lines = v->lines;
        c->elcr = v->elcr;
        c->vector_base = v->vector_base;
        c->icw3 = v->icw3;
        c->lowest_priority = v->lowest_priority;
        c->init_step = (enum pic_init_step)v->init_step;
        c->icw4_needed = v->icw4_needed;
        c->single = v->single;
        c->auto_eoi = v->auto_eoi;
        c->rotate_on_auto_eoi = v->rotate_on_auto_eoi;
        c->special_fully_nested = v->special_fully_nested;
        c->read_isr = v->read_isr;
        c->poll = v->poll;
        c->special_mask = v->special_mask;
    }
    pic_update(p); /* the slave's output on master IRQ 2 */
}

const struct device_desc pic_device = {.name = "pic",
                                       .level = DEVICE_LEVEL_CORE,
                                       .init = pic_init,
                                       .destroy = pic_destroy};
DEVICE_REGISTER(pic_device);
