/* Unit tests for devices/rtc: time registers in BCD/binary/12h, setting the clock, status
 * registers, NVRAM, the memory-size bytes and the update-ended interrupt. */
#include "tests/unit/device_test_machine.h"

#include <time.h>

#include "devices/rtc.h"

/* Test-only: the fake wall clock is this epoch time plus the machine's fake monotonic clock. */
static uint64_t g_wall_base_ns;

static uint64_t fake_wall(void *opaque)
{
    return g_wall_base_ns + ((struct device_test_machine *)opaque)->now_ns;
}

/* 2026-11-21 05:34:56 UTC, a Saturday. */
static uint64_t epoch_of_test_date(void)
{
    struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 21, .tm_hour = 5, .tm_min = 34, .tm_sec = 56};
    return (uint64_t)timegm(&tm);
}

static void use_fake_clocks(struct device_test_machine *t)
{
    t->m.rtc->wall_ns = fake_wall;
    t->m.rtc->mono_ns = dtm_clock;
    t->m.rtc->clock_opaque = t;
    /* half-way through the second at the start */
    g_wall_base_ns = epoch_of_test_date() * 1000000000ULL + 500000000ULL - t->now_ns;
}

static int setup(void **state)
{
    static struct device_test_machine t;
    dtm_setup(&t, 32 << 20, &dtm_backend, &rtc_device);
    use_fake_clocks(&t);
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, &rtc_device);
    return 0;
}

static uint8_t cmos_read(struct device_test_machine *t, uint8_t reg)
{
    dtm_outb(t, 0x70, reg);
    return dtm_inb(t, 0x71);
}

static void cmos_write(struct device_test_machine *t, uint8_t reg, uint8_t v)
{
    dtm_outb(t, 0x70, reg);
    dtm_outb(t, 0x71, v);
}

static void test_bcd_24h_default(void **state)
{
    struct device_test_machine *t = *state;
    assert_non_null(t->m.rtc);
    assert_int_equal(cmos_read(t, RTC_REG_B), RTC_B_24H);
    assert_int_equal(cmos_read(t, RTC_REG_SECONDS), 0x56);
    assert_int_equal(cmos_read(t, RTC_REG_MINUTES), 0x34);
    assert_int_equal(cmos_read(t, RTC_REG_HOURS), 0x05);
    assert_int_equal(cmos_read(t, RTC_REG_DAY_OF_WEEK), 7);
    assert_int_equal(cmos_read(t, RTC_REG_DAY_OF_MONTH), 0x21);
    assert_int_equal(cmos_read(t, RTC_REG_MONTH), 0x11);
    assert_int_equal(cmos_read(t, RTC_REG_YEAR), 0x26);
    assert_int_equal(cmos_read(t, RTC_REG_CENTURY), 0x20);
    assert_int_equal(cmos_read(t, RTC_REG_D), RTC_D_VRT);
    /* The clock runs with the host. */
    t->now_ns += 5ULL * 1000000000ULL;
    assert_int_equal(cmos_read(t, RTC_REG_SECONDS), 0x01);
    assert_int_equal(cmos_read(t, RTC_REG_MINUTES), 0x35);
}

static void test_binary_and_12h(void **state)
{
    struct device_test_machine *t = *state;
    cmos_write(t, RTC_REG_B, RTC_B_DM_BINARY | RTC_B_24H);
    assert_int_equal(cmos_read(t, RTC_REG_SECONDS), 56);
    assert_int_equal(cmos_read(t, RTC_REG_DAY_OF_MONTH), 21);
    assert_int_equal(cmos_read(t, RTC_REG_YEAR), 26);
    t->now_ns += 12ULL * 3600 * 1000000000ULL; /* 17:34 */
    cmos_write(t, RTC_REG_B, 0);               /* BCD, 12-hour */
    assert_int_equal(cmos_read(t, RTC_REG_HOURS), 0x80 | 0x05);
    cmos_write(t, RTC_REG_B, RTC_B_DM_BINARY);
    assert_int_equal(cmos_read(t, RTC_REG_HOURS), 0x80 | 5);
    t->now_ns += 7ULL * 3600 * 1000000000ULL; /* 00:34 next day */
    assert_int_equal(cmos_read(t, RTC_REG_HOURS), 12);
    assert_int_equal(cmos_read(t, RTC_REG_DAY_OF_WEEK), 1); /* Sunday */
}

static void test_guest_sets_clock(void **state)
{
    struct device_test_machine *t = *state;
    /* What Linux's mc146818_set_time does: SET, write fields, clear SET. */
    cmos_write(t, RTC_REG_B, RTC_B_SET | RTC_B_24H);
    cmos_write(t, RTC_REG_YEAR, 0x99);
    cmos_write(t, RTC_REG_CENTURY, 0x19);
    cmos_write(t, RTC_REG_MONTH, 0x12);
    cmos_write(t, RTC_REG_DAY_OF_MONTH, 0x31);
    cmos_write(t, RTC_REG_HOURS, 0x23);
    cmos_write(t, RTC_REG_MINUTES, 0x59);
    cmos_write(t, RTC_REG_SECONDS, 0x58);
    t->now_ns += 3ULL * 1000000000ULL; /* frozen while SET */
    assert_int_equal(cmos_read(t, RTC_REG_SECONDS), 0x58);
    cmos_write(t, RTC_REG_B, RTC_B_24H);
    t->now_ns += 3ULL * 1000000000ULL;
    assert_int_equal(cmos_read(t, RTC_REG_SECONDS), 0x01);
    assert_int_equal(cmos_read(t, RTC_REG_MINUTES), 0x00);
    assert_int_equal(cmos_read(t, RTC_REG_HOURS), 0x00);
    assert_int_equal(cmos_read(t, RTC_REG_DAY_OF_MONTH), 0x01);
    assert_int_equal(cmos_read(t, RTC_REG_MONTH), 0x01);
    assert_int_equal(cmos_read(t, RTC_REG_YEAR), 0x00);
    assert_int_equal(cmos_read(t, RTC_REG_CENTURY), 0x20);
}

static void test_uip_window(void **state)
{
    struct device_test_machine *t = *state;
    assert_int_equal(cmos_read(t, RTC_REG_A) & RTC_A_UIP, 0);
    t->now_ns += 500000000ULL - 100000; /* 100 us before the update */
    assert_int_equal(cmos_read(t, RTC_REG_A) & RTC_A_UIP, RTC_A_UIP);
    assert_int_equal(cmos_read(t, RTC_REG_A) & 0x7F, 0x26);
    t->now_ns += 200000;
    assert_int_equal(cmos_read(t, RTC_REG_A) & RTC_A_UIP, 0);
}

static void test_nvram_and_nmi_bit(void **state)
{
    struct device_test_machine *t = *state;
    for (unsigned i = 0x0E; i < RTC_CMOS_SIZE; i++) {
        if (i == RTC_REG_CENTURY) continue;
        cmos_write(t, (uint8_t)(i | 0x80), (uint8_t)(i ^ 0x5A)); /* NMI mask bit set */
    }
    for (unsigned i = 0x0E; i < RTC_CMOS_SIZE; i++) {
        if (i == RTC_REG_CENTURY) continue;
        assert_int_equal(cmos_read(t, (uint8_t)i), i ^ 0x5A);
    }
    assert_true(t->m.rtc->nmi_masked == false); /* the last index write (a read) cleared it */
    /* C and D are read-only. */
    cmos_write(t, RTC_REG_D, 0);
    assert_int_equal(cmos_read(t, RTC_REG_D), RTC_D_VRT);
}

static void test_memory_size_small(void **state)
{
    struct device_test_machine *t = *state; /* 32 MiB */
    assert_int_equal(cmos_read(t, 0x15) | cmos_read(t, 0x16) << 8, 640);
    assert_int_equal(cmos_read(t, 0x17) | cmos_read(t, 0x18) << 8, 31 * 1024);
    assert_int_equal(cmos_read(t, 0x30) | cmos_read(t, 0x31) << 8, 31 * 1024);
    assert_int_equal(cmos_read(t, 0x34) | cmos_read(t, 0x35) << 8, (16 << 20) >> 16);
    assert_int_equal(cmos_read(t, 0x5B) | cmos_read(t, 0x5C) << 8 | cmos_read(t, 0x5D) << 16, 0);
}

static void test_memory_size_above_4g(void **state)
{
    (void)state;
    struct device_test_machine *t = malloc(sizeof(*t));
    assert_non_null(t);
    dtm_setup(t, 6ULL << 30, &dtm_backend, &rtc_device); /* reserved lazily: never touched */
    assert_int_equal(cmos_read(t, 0x17) | cmos_read(t, 0x18) << 8, 0xFFFF);
    assert_int_equal(cmos_read(t, 0x30) | cmos_read(t, 0x31) << 8, 0xFFFF);
    assert_int_equal(cmos_read(t, 0x34) | cmos_read(t, 0x35) << 8, ((3ULL << 30) - (16 << 20)) >> 16);
    assert_int_equal(cmos_read(t, 0x5B) | cmos_read(t, 0x5C) << 8 | cmos_read(t, 0x5D) << 16, (3ULL << 30) >> 16);
    dtm_teardown(t, &rtc_device);
    free(t);
}

static void test_update_ended_interrupt(void **state)
{
    struct device_test_machine *t = *state;
    assert_int_equal(cmos_read(t, RTC_REG_C), 0);
    cmos_write(t, RTC_REG_B, RTC_B_UIE | RTC_B_24H);
    dtm_advance(t, 400000000ULL);
    assert_int_equal(t->irq_level[RTC_IRQ], 0);
    dtm_advance(t, 100000000ULL); /* the second boundary */
    assert_int_equal(t->irq_level[RTC_IRQ], 1);
    assert_int_equal(cmos_read(t, RTC_REG_C), RTC_C_IRQF | RTC_C_UF);
    assert_int_equal(t->irq_level[RTC_IRQ], 0);
    assert_int_equal(cmos_read(t, RTC_REG_C), 0);
    dtm_advance(t, 1000000000ULL);
    assert_int_equal(t->irq_rises[RTC_IRQ], 2);
    (void)cmos_read(t, RTC_REG_C);
    /* Disabled: no more updates delivered. */
    cmos_write(t, RTC_REG_B, RTC_B_24H);
    dtm_advance(t, 3000000000ULL);
    assert_int_equal(t->irq_rises[RTC_IRQ], 2);
}

static void test_alarm_interrupt(void **state)
{
    struct device_test_machine *t = *state;
    cmos_write(t, RTC_REG_SECONDS_ALARM, 0x59);
    cmos_write(t, RTC_REG_MINUTES_ALARM, 0xFF); /* any minute */
    cmos_write(t, RTC_REG_HOURS_ALARM, 0xFF);
    cmos_write(t, RTC_REG_B, RTC_B_AIE | RTC_B_24H);
    dtm_advance(t, 500000000ULL); /* :57 */
    dtm_advance(t, 1000000000ULL); /* :58 */
    assert_int_equal(t->irq_level[RTC_IRQ], 0);
    dtm_advance(t, 1000000000ULL); /* :59 */
    assert_int_equal(t->irq_level[RTC_IRQ], 1);
    assert_true(cmos_read(t, RTC_REG_C) & RTC_C_AF);
}

static void test_snapshot_round_trip(void **state)
{
    struct device_test_machine *t = *state;
    cmos_write(t, RTC_REG_B, RTC_B_24H | RTC_B_DM_BINARY);
    cmos_write(t, RTC_REG_B, RTC_B_SET | RTC_B_24H | RTC_B_DM_BINARY);
    cmos_write(t, RTC_REG_YEAR, 30);
    cmos_write(t, RTC_REG_B, RTC_B_24H | RTC_B_DM_BINARY | RTC_B_UIE);
    cmos_write(t, 0x40, 0xAB);
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, 32 << 20, &dtm_backend, &rtc_device);
    u->m.rtc->wall_ns = fake_wall;
    u->m.rtc->mono_ns = dtm_clock;
    u->m.rtc->clock_opaque = u;
    u->now_ns = t->now_ns + 3ULL * 1000000000ULL; /* restored three seconds later */
    dtm_snapshot_copy(t, u, &rtc_device);
    assert_int_equal(cmos_read(u, 0x40), 0xAB);
    assert_int_equal(cmos_read(u, RTC_REG_YEAR), 30);
    assert_int_equal(cmos_read(u, RTC_REG_SECONDS), 59); /* the clock kept following real time */
    dtm_advance(u, 1000000000ULL);                           /* update interrupts still armed */
    assert_int_equal(u->irq_level[RTC_IRQ], 1);
    dtm_teardown(u, &rtc_device);
    free(u);
}

/* Whatever date the guest writes, the clock keeps running and stays saveable. */
static void test_absurd_date_is_clamped(void **state)
{
    struct device_test_machine *t = *state;
    cmos_write(t, RTC_REG_B, RTC_B_24H | RTC_B_DM_BINARY);
    cmos_write(t, RTC_REG_CENTURY, 255);
    cmos_write(t, RTC_REG_MONTH, 200);
    (void)cmos_read(t, RTC_REG_SECONDS);
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, 32 << 20, &dtm_backend, &rtc_device);
    dtm_snapshot_copy(t, u, &rtc_device);
    dtm_teardown(u, &rtc_device);
    free(u);
}

static void test_periodic_interrupt(void **state)
{
    struct device_test_machine *t = *state;
    assert_int_equal(cmos_read(t, RTC_REG_A) & 0x0F, 6); /* 1024 Hz */
    cmos_write(t, RTC_REG_B, RTC_B_PIE | RTC_B_24H);
    dtm_advance(t, 976000);
    assert_int_equal(t->irq_level[RTC_IRQ], 0);
    dtm_advance(t, 1000);
    assert_int_equal(t->irq_level[RTC_IRQ], 1);
    assert_int_equal(cmos_read(t, RTC_REG_C), RTC_C_IRQF | RTC_C_PF);
    assert_int_equal(t->irq_level[RTC_IRQ], 0);
    for (unsigned i = 0; i < 100; i++) {
        dtm_advance(t, 976563);
        (void)cmos_read(t, RTC_REG_C);
    }
    assert_int_equal(t->irq_rises[RTC_IRQ], 101);
    /* 2 Hz */
    cmos_write(t, RTC_REG_A, 0x20 | 0x0F);
    unsigned before = t->irq_rises[RTC_IRQ];
    for (unsigned i = 0; i < 20; i++) {
        dtm_advance(t, 100000000ULL);
        (void)cmos_read(t, RTC_REG_C);
    }
    assert_int_equal(t->irq_rises[RTC_IRQ] - before, 4);
    /* Off */
    cmos_write(t, RTC_REG_B, RTC_B_24H);
    before = t->irq_rises[RTC_IRQ];
    dtm_advance(t, 2000000000ULL);
    assert_int_equal(t->irq_rises[RTC_IRQ], before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bcd_24h_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_and_12h, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_sets_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uip_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nvram_and_nmi_bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_size_small, setup, teardown),
        cmocka_unit_test(test_memory_size_above_4g),
        cmocka_unit_test_setup_teardown(test_update_ended_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alarm_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absurd_date_is_clamped, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
