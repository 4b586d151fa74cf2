/* acpi_pm: PM1a event/control blocks, the PM timer and the reset register (see acpi_pm.h). */
#include "acpi_pm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "dev_snapshot.h"
#include "vmm/machine.h"

static uint64_t acpi_pm_default_clock(void *opaque) { (void)opaque; return clock_now_ns(); }

uint32_t acpi_pm_timer(const struct acpi_pm *p)
{
    uint64_t ns = p->clock_ns(p->clock_opaque) + p->timer_offset_ns; /* wraps harmlessly */
    return (uint32_t)((unsigned __int128)ns * ACPI_PM_TIMER_HZ / 1000000000ULL);
}

/* TMR_STS is set whenever bit 31 of the timer changed since the guest last cleared it. */
static uint16_t acpi_pm_status(const struct acpi_pm *p)
{
    uint16_t sts = p->pm1_sts;
    if ((acpi_pm_timer(p) >> 31) != p->tmr_msb_seen) sts |= ACPI_PM1_TMR_STS;
    return sts;
}

static void acpi_pm_update_sci(struct acpi_pm *p)
{
    /* The timer overflow event is not delivered as an SCI (no timer is armed for it). */
    int level = (p->pm1_sts & p->pm1_en & ~ACPI_PM1_TMR_STS) != 0;
    if (level != p->sci_level) {
        p->sci_level = level;
        machine_set_irq(p->m, ACPI_SCI_IRQ, level);
    }
}

void acpi_pm_power_button(struct acpi_pm *p)
{
    p->pm1_sts |= ACPI_PM1_PWRBTN_STS;
    acpi_pm_update_sci(p);
}

static uint8_t acpi_pm_read_byte(struct acpi_pm *p, unsigned off, uint32_t timer)
{
    switch (off) {
    case 0:
    case 1:
        return (uint8_t)(acpi_pm_status(p) >> (8 * off));
    case 2:
    case 3:
        return (uint8_t)(p->pm1_en >> (8 * (off - 2)));
    case 4:
    case 5:
        return (uint8_t)((p->pm1_cnt | ACPI_PM1_CNT_SCI_EN) >> (8 * (off - 4)));
    case 8:
    case 9:
    case 10:
    case 11:
        return (uint8_t)(timer >> (8 * (off - 8)));
    default:
        return 0; /* 0x606-0x607 unused, reset register reads 0 */
    }
}

static void acpi_pm_write_byte(struct acpi_pm *p, unsigned off, uint8_t v)
{
    switch (off) {
    case 0:
    case 1: {
        uint16_t clear = (uint16_t)(v << (8 * off));
        if (clear & ACPI_PM1_TMR_STS) p->tmr_msb_seen = acpi_pm_timer(p) >> 31;
        p->pm1_sts &= ~clear;
        break;
    }
    case 2:
    case 3: {
        unsigned shift = 8 * (off - 2);
        p->pm1_en = (uint16_t)((p->pm1_en & ~(0xFFu << shift)) | ((unsigned)v << shift));
        break;
    }
    case 4:
    case 5: {
        unsigned shift = 8 * (off - 4);
        uint16_t cnt = (uint16_t)((p->pm1_cnt & ~(0xFFu << shift)) | ((unsigned)v << shift));
        p->pm1_cnt = cnt & ~ACPI_PM1_CNT_SLP_EN; /* SLP_EN is write-only */
        if (cnt & ACPI_PM1_CNT_SLP_EN) {
            unsigned slp_typ = (cnt >> ACPI_PM1_CNT_SLP_TYP_SHIFT) & 7;
            /* S5 is the only sleep state the DSDT offers; others are ignored (the guest
             * stays running, as if it had woken at once). */
            if (slp_typ == ACPI_SLP_TYP_S5) machine_request_stop(p->m, MACHINE_STOP_POWEROFF);
            else p->pm1_sts |= ACPI_PM1_WAK_STS;
        }
        break;
    }
    case 12:
        if (v) machine_request_stop(p->m, MACHINE_STOP_RESET);
        break;
    default:
        break; /* the PM timer is read-only */
    }
}

static void acpi_pm_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct acpi_pm *p = opaque;
    if (is_write) {
        /* A 16-bit write of PM1_CNT lands its high byte (SLP_TYP and SLP_EN) last. */
        for (unsigned i = 0; i < size && offset + i < ACPI_PM_LEN; i++)
            acpi_pm_write_byte(p, (unsigned)(offset + i), (uint8_t)(*data >> (8 * i)));
        acpi_pm_update_sci(p);
    } else {
        uint32_t timer = acpi_pm_timer(p); /* one sample for a multi-byte read */
        for (unsigned i = 0; i < size && offset + i < ACPI_PM_LEN; i++)
            *data |= (uint64_t)acpi_pm_read_byte(p, (unsigned)(offset + i), timer) << (8 * i);
    }
}

static int acpi_pm_init(struct machine *m, char *err, size_t errlen)
{
    struct acpi_pm *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "acpi pm: out of memory");
        return -ENOMEM;
    }
    p->m = m;
    p->clock_ns = acpi_pm_default_clock;
    p->pm1_cnt = ACPI_PM1_CNT_SCI_EN;
    p->tmr_msb_seen = acpi_pm_timer(p) >> 31;
    int r = bus_register(&m->pio, ACPI_PM_BASE, ACPI_PM_LEN, acpi_pm_io, p, "acpi-pm");
    if (r < 0) {
        snprintf(err, errlen, "acpi pm ports 0x%x-0x%x: %s", ACPI_PM_BASE, ACPI_PM_BASE + ACPI_PM_LEN - 1,
                 strerror(-r));
        free(p);
        return r;
    }
    m->acpi_pm = p;
    return 0;
}

static void acpi_pm_destroy(struct machine *m)
{
    struct acpi_pm *p = m->acpi_pm;
    if (!p) return;
    bus_release(&m->pio, ACPI_PM_BASE, p);
    m->acpi_pm = NULL;
    free(p);
}

/* Snapshot: the PM1 registers and the PM timer's value, which continues from there after a
 * restore (a clocksource must not jump). */
#define ACPI_PM_STATE_VERSION 1

static int acpi_pm_save(struct machine *m, struct snap_buf *b)
{
    struct acpi_pm *p = m->acpi_pm;
    snap_put_bool(b, p != NULL);
    if (!p) return 0;
    snap_put_u16(b, p->pm1_sts);
    snap_put_u16(b, p->pm1_en);
    snap_put_u16(b, p->pm1_cnt);
    snap_put_u32(b, acpi_pm_timer(p));
    snap_put_u8(b, (uint8_t)p->tmr_msb_seen);
    return 0;
}

static int acpi_pm_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                           size_t errlen)
{
    if (version != ACPI_PM_STATE_VERSION) return dev_snapshot_invalid("acpi-pm", "unknown version", err, errlen);
    bool bad = false;
    bool present = snap_get_bool(r, &bad);
    if (!present) return bad || r->short_read ? dev_snapshot_invalid("acpi-pm", "presence flag", err, errlen) : 0;
    uint16_t sts = snap_get_u16(r), en = snap_get_u16(r), cnt = snap_get_u16(r);
    uint32_t timer = snap_get_u32(r);
    uint8_t msb = snap_get_u8(r);
    if (r->short_read || msb > 1) return dev_snapshot_invalid("acpi-pm", "truncated or malformed", err, errlen);
    struct acpi_pm *p = m->acpi_pm;
    if (!apply || !p) return 0;
    p->pm1_sts = sts;
    p->pm1_en = en;
    p->pm1_cnt = (uint16_t)((cnt & ~ACPI_PM1_CNT_SLP_EN) | ACPI_PM1_CNT_SCI_EN);
    p->tmr_msb_seen = msb;
    /* Choose the offset so that the timer reads `timer` now (in 2^32-tick cycles). */
    uint64_t now = p->clock_ns(p->clock_opaque);
    uint64_t want_ns = (uint64_t)(((unsigned __int128)timer * 1000000000ULL + ACPI_PM_TIMER_HZ - 1) / ACPI_PM_TIMER_HZ);
    p->timer_offset_ns = want_ns - now;
    p->sci_level = -1;
    acpi_pm_update_sci(p);
    return 0;
}

const struct device_desc acpi_pm_device = {.name = "acpi-pm",
                                           .level = DEVICE_LEVEL_BASE,
                                           .init = acpi_pm_init,
                                           .destroy = acpi_pm_destroy,
                                           .state_version = ACPI_PM_STATE_VERSION,
                                           .save = acpi_pm_save,
                                           .restore = acpi_pm_restore};
DEVICE_REGISTER(acpi_pm_device);
