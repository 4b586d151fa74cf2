/* rtc: MC146818 register model over the host wall clock (see rtc.h). */
#include "rtc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus_claim.h"
#include "dev_snapshot.h"
#include "vmm/machine.h"

#define RTC_UIP_WINDOW_NS 244000 /* UIP is set this long before each update */
#define RTC_DIVIDER_MASK 0x70
#define RTC_DIVIDER_NORMAL 0x20 /* 32.768 kHz time base, clock running */
#define RTC_ALARM_DONT_CARE 0xC0
#define CMOS_BASE_MEM_LO 0x15
#define CMOS_EXT_MEM_LO 0x17
#define CMOS_EXT_MEM2_LO 0x30
#define CMOS_MEM_ABOVE_16M_LO 0x34
#define CMOS_MEM_ABOVE_4G 0x5B
#define CMOS_CHECKSUM_HI 0x2E
#define RTC_MAX_OFFSET_S 10000000000000LL /* about 317,000 years either way */

static uint64_t rtc_host_wall_ns(void *opaque)
{
    (void)opaque;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t rtc_host_mono_ns(void *opaque) { (void)opaque; return clock_now_ns(); }

static bool rtc_binary(const struct rtc *r) { return r->cmos[RTC_REG_B] & RTC_B_DM_BINARY; }

static uint8_t rtc_to_bcd(unsigned v) { return (uint8_t)(((v / 10) % 10) << 4 | (v % 10)); }
static unsigned rtc_from_bcd(uint8_t v) { return (v >> 4) * 10u + (v & 0x0F); }

static uint8_t rtc_encode(const struct rtc *r, unsigned v) { return rtc_binary(r) ? (uint8_t)v : rtc_to_bcd(v); }
static unsigned rtc_decode(const struct rtc *r, uint8_t v) { return rtc_binary(r) ? v : rtc_from_bcd(v); }

static uint8_t rtc_encode_hours(const struct rtc *r, unsigned h24)
{
    if (r->cmos[RTC_REG_B] & RTC_B_24H) return rtc_encode(r, h24);
    unsigned h12 = h24 % 12 == 0 ? 12 : h24 % 12;
    return (uint8_t)(rtc_encode(r, h12) | (h24 >= 12 ? 0x80 : 0));
}

static unsigned rtc_decode_hours(const struct rtc *r, uint8_t v)
{
    if (r->cmos[RTC_REG_B] & RTC_B_24H) return rtc_decode(r, v);
    unsigned h12 = rtc_decode(r, v & 0x7F) % 12;
    return h12 + ((v & 0x80) ? 12 : 0);
}

static bool rtc_is_time_reg(unsigned reg)
{
    return reg == RTC_REG_SECONDS || reg == RTC_REG_MINUTES || reg == RTC_REG_HOURS ||
           (reg >= RTC_REG_DAY_OF_WEEK && reg <= RTC_REG_YEAR) || reg == RTC_REG_CENTURY;
}

static int64_t rtc_guest_seconds(const struct rtc *r)
{
    return (int64_t)(r->wall_ns(r->clock_opaque) / 1000000000ULL) + r->offset_s;
}

/* Write the guest's current time into the CMOS time registers (unless the guest is
 * setting the clock: SET freezes them). */
static void rtc_refresh_time(struct rtc *r)
{
    if (r->cmos[RTC_REG_B] & RTC_B_SET) return;
    time_t t = (time_t)rtc_guest_seconds(r);
    struct tm tm;
    if (!gmtime_r(&t, &tm)) return;
    unsigned year = (unsigned)tm.tm_year + 1900;
    r->cmos[RTC_REG_SECONDS] = rtc_encode(r, (unsigned)tm.tm_sec);
    r->cmos[RTC_REG_MINUTES] = rtc_encode(r, (unsigned)tm.tm_min);
    r->cmos[RTC_REG_HOURS] = rtc_encode_hours(r, (unsigned)tm.tm_hour);
    r->cmos[RTC_REG_DAY_OF_WEEK] = rtc_encode(r, (unsigned)tm.tm_wday + 1);
    r->cmos[RTC_REG_DAY_OF_MONTH] = rtc_encode(r, (unsigned)tm.tm_mday);
    r->cmos[RTC_REG_MONTH] = rtc_encode(r, (unsigned)tm.tm_mon + 1);
    r->cmos[RTC_REG_YEAR] = rtc_encode(r, year % 100);
    r->cmos[RTC_REG_CENTURY] = rtc_encode(r, year / 100);
}

/* The guest wrote the time registers: the clock now runs from what they say. */
static void rtc_take_time_from_registers(struct rtc *r)
{
    struct tm tm = {0};
    tm.tm_sec = (int)rtc_decode(r, r->cmos[RTC_REG_SECONDS]);
    tm.tm_min = (int)rtc_decode(r, r->cmos[RTC_REG_MINUTES]);
    tm.tm_hour = (int)rtc_decode_hours(r, r->cmos[RTC_REG_HOURS]);
    tm.tm_mday = (int)rtc_decode(r, r->cmos[RTC_REG_DAY_OF_MONTH]);
    tm.tm_mon = (int)rtc_decode(r, r->cmos[RTC_REG_MONTH]) - 1;
    tm.tm_year = (int)(rtc_decode(r, r->cmos[RTC_REG_CENTURY]) * 100 + rtc_decode(r, r->cmos[RTC_REG_YEAR])) - 1900;
    time_t t = timegm(&tm); /* normalises out-of-range fields; nonsense in, some date out */
    int64_t host = (int64_t)(r->wall_ns(r->clock_opaque) / 1000000000ULL);
    int64_t offset = (int64_t)t - host;
    /* Whatever the registers said (binary century 255, month 200), the offset stays in a range
     * gmtime_r and a snapshot restore accept. */
    if (offset > RTC_MAX_OFFSET_S) offset = RTC_MAX_OFFSET_S;
    if (offset < -RTC_MAX_OFFSET_S) offset = -RTC_MAX_OFFSET_S;
    r->offset_s = offset;
}

static bool rtc_clock_running(const struct rtc *r)
{
    return (r->cmos[RTC_REG_A] & RTC_DIVIDER_MASK) == RTC_DIVIDER_NORMAL && !(r->cmos[RTC_REG_B] & RTC_B_SET);
}

static void rtc_update_irq(struct rtc *r)
{
    uint8_t b = r->cmos[RTC_REG_B], c = r->cmos[RTC_REG_C] & ~RTC_C_IRQF;
    bool irqf = ((c & RTC_C_PF) && (b & RTC_B_PIE)) || ((c & RTC_C_AF) && (b & RTC_B_AIE)) ||
                ((c & RTC_C_UF) && (b & RTC_B_UIE));
    r->cmos[RTC_REG_C] = (uint8_t)(c | (irqf ? RTC_C_IRQF : 0));
    int level = irqf;
    if (level != r->irq_level) {
        r->irq_level = level;
        machine_set_irq(r->m, RTC_IRQ, level);
    }
}

static bool rtc_alarm_field_matches(const struct rtc *r, uint8_t alarm, uint8_t now)
{
    return (alarm & RTC_ALARM_DONT_CARE) == RTC_ALARM_DONT_CARE || alarm == now;
}

/* Arm the update timer for the next second boundary while an update/alarm IRQ is enabled. */
static void rtc_rearm(struct rtc *r)
{
    if (!r->m) return;
    bool want = (r->cmos[RTC_REG_B] & (RTC_B_UIE | RTC_B_AIE)) && rtc_clock_running(r);
    if (!want) {
        timer_del(&r->m->timers, &r->update_timer);
        return;
    }
    uint64_t to_boundary = 1000000000ULL - r->wall_ns(r->clock_opaque) % 1000000000ULL;
    timer_mod(&r->m->timers, &r->update_timer, r->mono_ns(r->clock_opaque) + to_boundary);
}

/* Periodic interrupt period from register A's rate select (0: off), on the 32.768 kHz base. */
static uint64_t rtc_periodic_ns(const struct rtc *r)
{
    unsigned rate = r->cmos[RTC_REG_A] & 0x0F;
    if (rate == 0 || (r->cmos[RTC_REG_A] & RTC_DIVIDER_MASK) != RTC_DIVIDER_NORMAL) return 0;
    unsigned shift = rate <= 2 ? rate + 6 : rate - 1; /* rates 1 and 2 repeat 8 and 9 */
    return (1000000000ULL << shift) / 32768;
}

/* (Re)start or stop the periodic interrupt timer; it runs while PIE is set. */
static void rtc_restart_periodic(struct rtc *r)
{
    if (!r->m) return;
    uint64_t period = rtc_periodic_ns(r);
    if (!period || !(r->cmos[RTC_REG_B] & RTC_B_PIE)) {
        timer_del(&r->m->timers, &r->periodic_timer);
        return;
    }
    r->periodic_next_ns = r->mono_ns(r->clock_opaque) + period;
    timer_mod(&r->m->timers, &r->periodic_timer, r->periodic_next_ns);
}

static void rtc_periodic_timer(void *opaque, uint64_t now_ns)
{
    struct rtc *r = opaque;
    uint64_t period = rtc_periodic_ns(r);
    if (!period || !(r->cmos[RTC_REG_B] & RTC_B_PIE)) return;
    r->cmos[RTC_REG_C] |= RTC_C_PF;
    rtc_update_irq(r);
    /* Keep the schedule; periods the host missed are skipped, not queued. */
    uint64_t next = r->periodic_next_ns + period;
    if (next <= now_ns) next = now_ns + period;
    r->periodic_next_ns = next;
    timer_mod(&r->m->timers, &r->periodic_timer, next);
}

static void rtc_update_timer(void *opaque, uint64_t now_ns)
{
    (void)now_ns;
    struct rtc *r = opaque;
    rtc_refresh_time(r);
    r->cmos[RTC_REG_C] |= RTC_C_UF;
    if (rtc_alarm_field_matches(r, r->cmos[RTC_REG_SECONDS_ALARM], r->cmos[RTC_REG_SECONDS]) &&
        rtc_alarm_field_matches(r, r->cmos[RTC_REG_MINUTES_ALARM], r->cmos[RTC_REG_MINUTES]) &&
        rtc_alarm_field_matches(r, r->cmos[RTC_REG_HOURS_ALARM], r->cmos[RTC_REG_HOURS]))
        r->cmos[RTC_REG_C] |= RTC_C_AF;
    rtc_update_irq(r);
    rtc_rearm(r);
}

static uint8_t rtc_read(struct rtc *r, unsigned reg)
{
    if (rtc_is_time_reg(reg)) {
        rtc_refresh_time(r);
        return r->cmos[reg];
    }
    switch (reg) {
    case RTC_REG_A: {
        uint8_t a = r->cmos[RTC_REG_A] & ~RTC_A_UIP;
        if (rtc_clock_running(r) && r->wall_ns(r->clock_opaque) % 1000000000ULL >= 1000000000ULL - RTC_UIP_WINDOW_NS)
            a |= RTC_A_UIP;
        return a;
    }
    case RTC_REG_C: {
        uint8_t c = r->cmos[RTC_REG_C];
        r->cmos[RTC_REG_C] = 0;
        rtc_update_irq(r);
        return c;
    }
    case RTC_REG_D:
        return RTC_D_VRT;
    default:
        return r->cmos[reg];
    }
}

static void rtc_write(struct rtc *r, unsigned reg, uint8_t v)
{
    if (rtc_is_time_reg(reg)) {
        rtc_refresh_time(r); /* the other fields keep their current values */
        r->cmos[reg] = v;
        if (!(r->cmos[RTC_REG_B] & RTC_B_SET)) rtc_take_time_from_registers(r);
        return;
    }
    switch (reg) {
    case RTC_REG_A: {
        uint8_t old = r->cmos[RTC_REG_A];
        r->cmos[RTC_REG_A] = v & ~RTC_A_UIP;
        rtc_rearm(r);
        if ((old ^ v) & 0x7F) rtc_restart_periodic(r);
        break;
    }
    case RTC_REG_B: {
        uint8_t old = r->cmos[RTC_REG_B];
        if (!(old & RTC_B_SET) && (v & RTC_B_SET)) rtc_refresh_time(r); /* freeze current time */
        r->cmos[RTC_REG_B] = v;
        if ((old & RTC_B_SET) && !(v & RTC_B_SET)) rtc_take_time_from_registers(r);
        /* Changing the data mode re-encodes what is read next, as the chip's next update would. */
        rtc_update_irq(r);
        rtc_rearm(r);
        if ((old ^ v) & RTC_B_PIE) rtc_restart_periodic(r);
        break;
    }
    case RTC_REG_C:
    case RTC_REG_D:
        break; /* read-only */
    default:
        r->cmos[reg] = v;
        break;
    }
}

static void rtc_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct rtc *r = opaque;
    if (offset == 0) {
        if (is_write) {
            r->index = (uint8_t)*data & 0x7F;
            r->nmi_masked = *data & 0x80;
        } else {
            *data = 0xFF; /* the index port is write-only */
        }
        return;
    }
    if (is_write) rtc_write(r, r->index, (uint8_t)*data);
    else *data = rtc_read(r, r->index);
}

static void rtc_store16(struct rtc *r, unsigned reg, uint64_t v)
{
    if (v > 0xFFFF) v = 0xFFFF;
    r->cmos[reg] = (uint8_t)v;
    r->cmos[reg + 1] = (uint8_t)(v >> 8);
}

/* What firmware records about memory, from the guest RAM layout. */
static void rtc_fill_memory_size(struct rtc *r, const struct guest_mem *mem)
{
    uint64_t low = mem->nregions ? mem->regions[0].size : 0;
    uint64_t high = mem->nregions > 1 ? mem->regions[1].size : 0;
    rtc_store16(r, CMOS_BASE_MEM_LO, 640);
    uint64_t ext_kib = low > (1ULL << 20) ? (low - (1ULL << 20)) >> 10 : 0;
    rtc_store16(r, CMOS_EXT_MEM_LO, ext_kib);
    rtc_store16(r, CMOS_EXT_MEM2_LO, ext_kib);
    uint64_t above16m = low > (16ULL << 20) ? (low - (16ULL << 20)) >> 16 : 0;
    rtc_store16(r, CMOS_MEM_ABOVE_16M_LO, above16m);
    uint64_t above4g = high >> 16;
    if (above4g > 0xFFFFFF) above4g = 0xFFFFFF;
    r->cmos[CMOS_MEM_ABOVE_4G] = (uint8_t)above4g;
    r->cmos[CMOS_MEM_ABOVE_4G + 1] = (uint8_t)(above4g >> 8);
    r->cmos[CMOS_MEM_ABOVE_4G + 2] = (uint8_t)(above4g >> 16);
    /* Standard checksum over 0x10-0x2D, big-endian at 0x2E. */
    unsigned sum = 0;
    for (unsigned i = 0x10; i <= 0x2D; i++) sum += r->cmos[i];
    r->cmos[CMOS_CHECKSUM_HI] = (uint8_t)(sum >> 8);
    r->cmos[CMOS_CHECKSUM_HI + 1] = (uint8_t)sum;
}

static int rtc_init(struct machine *m, char *err, size_t errlen)
{
    struct rtc *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(err, errlen, "rtc: out of memory");
        return -ENOMEM;
    }
    r->m = m;
    r->wall_ns = rtc_host_wall_ns;
    r->mono_ns = rtc_host_mono_ns;
    r->cmos[RTC_REG_A] = RTC_DIVIDER_NORMAL | 0x06; /* 32.768 kHz, 1024 Hz rate */
    r->cmos[RTC_REG_B] = RTC_B_24H;                 /* BCD, 24-hour */
    r->cmos[RTC_REG_D] = RTC_D_VRT;
    rtc_fill_memory_size(r, &m->mem);
    timer_init(&r->update_timer, rtc_update_timer, r);
    timer_init(&r->periodic_timer, rtc_periodic_timer, r);
    int rc = bus_register(&m->pio, RTC_INDEX_PORT, 2, rtc_io, r, "rtc");
    if (rc < 0) {
        snprintf(err, errlen, "rtc ports 0x70/0x71: %s", strerror(-rc));
        free(r);
        return rc;
    }
    m->rtc = r;
    return 0;
}

static void rtc_destroy(struct machine *m)
{
    struct rtc *r = m->rtc;
    if (!r) return;
    timer_del(&m->timers, &r->update_timer);
    timer_del(&m->timers, &r->periodic_timer);
    bus_release(&m->pio, RTC_INDEX_PORT, r);
    m->rtc = NULL;
    free(r);
}

/* Snapshot: the CMOS bytes, the index and the guest's offset from the host's wall clock (the
 * RTC keeps following real time across a save and restore, as a battery-backed clock does). */
#define RTC_STATE_VERSION 1

static int rtc_save(struct machine *m, struct snap_buf *b)
{
    struct rtc *r = m->rtc;
    snap_put_bool(b, r != NULL);
    if (!r) return 0;
    snap_put_u8(b, r->index);
    snap_put_bool(b, r->nmi_masked);
    snap_put(b, r->cmos, sizeof(r->cmos));
    snap_put_u64(b, (uint64_t)r->offset_s);
    return 0;
}

static int rtc_restore(struct machine *m, struct snap_reader *rd, uint32_t version, bool apply, char *err,
                       size_t errlen)
{
    if (version != RTC_STATE_VERSION) return dev_snapshot_invalid("rtc", "unknown version", err, errlen);
    bool bad = false;
    bool present = snap_get_bool(rd, &bad);
    if (!present) return bad || rd->short_read ? dev_snapshot_invalid("rtc", "presence flag", err, errlen) : 0;
    uint8_t index = snap_get_u8(rd);
    bool nmi = snap_get_bool(rd, &bad);
    uint8_t cmos[RTC_CMOS_SIZE];
    snap_get(rd, cmos, sizeof(cmos));
    int64_t offset = (int64_t)snap_get_u64(rd);
    if (rd->short_read || bad) return dev_snapshot_invalid("rtc", "truncated or malformed", err, errlen);
    if (index >= RTC_CMOS_SIZE || offset > RTC_MAX_OFFSET_S || offset < -RTC_MAX_OFFSET_S)
        return dev_snapshot_invalid("rtc", "value out of range", err, errlen);
    struct rtc *r = m->rtc;
    if (!apply || !r) return 0;
    r->index = index;
    r->nmi_masked = nmi;
    memcpy(r->cmos, cmos, sizeof(cmos));
    r->offset_s = offset;
    r->irq_level = -1;
    rtc_update_irq(r);
    rtc_rearm(r);
    rtc_restart_periodic(r);
    return 0;
}

const struct device_desc rtc_device = {.name = "rtc",
                                       .level = DEVICE_LEVEL_BASE,
                                       .init = rtc_init,
                                       .destroy = rtc_destroy,
                                       .state_version = RTC_STATE_VERSION,
                                       .save = rtc_save,
                                       .restore = rtc_restore};
DEVICE_REGISTER(rtc_device);
