/* Unit tests for devices/pit: counting against an injected clock, the way Linux programs and
 * reads the 8254 (clockevents on channel 0, TSC calibration on channel 2 through port 0x61). */
#include "tests/unit/device_test_machine.h"

#include "devices/pic.h"
#include "devices/pit.h"

static int setup(void **state)
{
    static struct device_test_machine t;
    dtm_setup(&t, 1 << 20, &dtm_backend, &pit_device);
    t.m.pit->clock_ns = dtm_clock;
    t.m.pit->clock_opaque = &t;
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, &pit_device);
    return 0;
}

/* Nanoseconds after which `ticks` PIT clocks have certainly elapsed. */
static uint64_t ticks_ns(uint64_t ticks) { return (ticks * 1000000000ULL + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ; }

static uint16_t read_count_lohi(struct device_test_machine *t, unsigned ch)
{
    uint8_t lo = dtm_inb(t, (uint16_t)(0x40 + ch));
    uint8_t hi = dtm_inb(t, (uint16_t)(0x40 + ch));
    return (uint16_t)(lo | hi << 8);
}

static void write_count_lohi(struct device_test_machine *t, unsigned ch, uint16_t v)
{
    dtm_outb(t, (uint16_t)(0x40 + ch), (uint8_t)v);
    dtm_outb(t, (uint16_t)(0x40 + ch), (uint8_t)(v >> 8));
}

/* pit_calibrate_tsc(): channel 2, mode 0, gate on, poll port 0x61 bit 5. */
static void test_channel2_mode0_calibration_loop(void **state)
{
    struct device_test_machine *t = *state;
    const uint16_t latch = 11931; /* 10 ms */
    dtm_outb(t, 0x61, (uint8_t)((dtm_inb(t, 0x61) & ~0x02) | 0x01));
    dtm_outb(t, 0x43, 0xB0);
    write_count_lohi(t, 2, latch);
    assert_int_equal(dtm_inb(t, 0x61) & 0x20, 0);
    uint64_t start = t->now_ns;
    unsigned polls = 0;
    while (!(dtm_inb(t, 0x61) & 0x20)) {
        dtm_advance(t, 100000); /* 100 us per poll */
        polls++;
        assert_true(polls < 1000);
    }
    uint64_t elapsed = t->now_ns - start;
    assert_true(elapsed >= 10000000 - 100000 && elapsed <= 10000000 + 100000);
    /* Output stays high; the count wrapped and keeps going down. */
    dtm_advance(t, ticks_ns(65536 / 2));
    assert_int_equal(dtm_inb(t, 0x61) & 0x20, 0x20);
    assert_int_equal(t->irq_rises[0], 0); /* channel 2 never interrupts */
}

/* quick_pit_calibrate(): count from 0xFFFF, watch the MSB step down every 256 clocks. */
static void test_channel2_msb_steps(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, 0x61, 0x01);
    dtm_outb(t, 0x43, 0xB0);
    write_count_lohi(t, 2, 0xFFFF);
    assert_int_equal(read_count_lohi(t, 2), 0xFFFF);
    for (unsigned i = 1; i <= 20; i++) {
        t->now_ns += ticks_ns(256);
        uint16_t c = read_count_lohi(t, 2);
        assert_int_equal(c >> 8, 0xFF - i);
    }
    /* The low byte counts within the step. */
    t->now_ns += ticks_ns(10);
    uint16_t c = read_count_lohi(t, 2);
    assert_true((c & 0xFF) >= 0xF4 && (c & 0xFF) <= 0xF5);
}

static void test_gate_low_holds_mode0_count(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, 0x61, 0x00); /* gate off */
    dtm_outb(t, 0x43, 0xB0);
    write_count_lohi(t, 2, 1000);
    t->now_ns += ticks_ns(500);
    assert_int_equal(read_count_lohi(t, 2), 1000); /* does not count with the gate low */
    dtm_outb(t, 0x61, 0x01);
    t->now_ns += ticks_ns(400);
    assert_int_equal(read_count_lohi(t, 2), 600);
    dtm_outb(t, 0x61, 0x00);
    t->now_ns += ticks_ns(5000);
    assert_int_equal(read_count_lohi(t, 2), 600);
    assert_int_equal(dtm_inb(t, 0x61) & 0x20, 0);
    dtm_outb(t, 0x61, 0x01);
    t->now_ns += ticks_ns(600);
    assert_int_equal(dtm_inb(t, 0x61) & 0x20, 0x20);
}

/* The periodic tick: channel 0, mode 2, HZ=250 -> LATCH 4773. */
static void test_channel0_mode2_periodic_irq(void **state)
{
    struct device_test_machine *t = *state;
    const uint16_t latch = 4773;
    dtm_outb(t, 0x43, 0x34);
    write_count_lohi(t, 0, latch);
    assert_int_equal(t->irq_rises[0], 0);
    assert_int_equal(read_count_lohi(t, 0), latch);
    for (unsigned i = 1; i <= 10; i++) {
        dtm_advance(t, ticks_ns(latch) / 2);
        dtm_advance(t, ticks_ns(latch) - ticks_ns(latch) / 2);
        assert_int_equal(t->irq_rises[0], i);
        assert_int_equal(t->irq_level[0], 0); /* pulsed, not held */
    }
    /* The count runs N..1 within each period. */
    t->now_ns += ticks_ns(latch / 2);
    uint16_t c = read_count_lohi(t, 0);
    assert_true(c >= latch - latch / 2 - 2 && c <= latch - latch / 2 + 1);
    /* A host late by several periods: the missed ticks follow one per retry (period/4). */
    dtm_advance(t, ticks_ns(5 * (uint64_t)latch)); /* now 15.5 periods in */
    assert_int_equal(t->irq_rises[0], 11);
    for (unsigned i = 0; i < 12; i++) dtm_advance(t, ticks_ns(latch) / 4); /* to 18.5 periods */
    assert_int_equal(t->irq_rises[0], 18);
    /* The backlog is bounded to one second of ticks (249 at this rate): after a 10 s stall
     * and 500 more periods, 249 + 500 ticks arrive, not 2095 + 500. */
    unsigned before = t->irq_rises[0];
    dtm_advance(t, 10ULL * 1000000000ULL);
    for (unsigned i = 0; i < 2000; i++) dtm_advance(t, ticks_ns(latch) / 4);
    unsigned delivered = t->irq_rises[0] - before;
    assert_true(delivered >= 249 + 500 - 2 && delivered <= 249 + 500 + 2);
    /* A new control word stops the channel and forgets the backlog. */
    dtm_advance(t, 10ULL * 1000000000ULL);
    dtm_outb(t, 0x43, 0x30);
    before = t->irq_rises[0];
    dtm_advance(t, ticks_ns(10 * (uint64_t)latch));
    dtm_advance(t, ticks_ns(10 * (uint64_t)latch));
    assert_int_equal(t->irq_rises[0], before);
}

/* Linux's one-shot clockevent: mode 4 (0x38) and a count per event. */
static void test_channel0_mode4_oneshot(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, 0x43, 0x38);
    write_count_lohi(t, 0, 1193); /* ~1 ms */
    dtm_advance(t, ticks_ns(1192));
    assert_int_equal(t->irq_rises[0], 0);
    dtm_advance(t, ticks_ns(2));
    assert_int_equal(t->irq_rises[0], 1);
    dtm_advance(t, ticks_ns(70000));
    assert_int_equal(t->irq_rises[0], 1); /* one shot */
    write_count_lohi(t, 0, 100);
    dtm_advance(t, ticks_ns(101));
    assert_int_equal(t->irq_rises[0], 2);
}

static void test_channel0_mode0_oneshot(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, 0x43, 0x30);
    write_count_lohi(t, 0, 0); /* 0 means 65536 */
    dtm_outb(t, 0x43, 0xE2);   /* read-back status of channel 0 */
    uint8_t status = dtm_inb(t, 0x40);
    assert_int_equal(status & 0x80, 0);       /* OUT low while counting */
    assert_int_equal(status & 0x3F, 0x30);    /* lohi, mode 0, binary */
    dtm_advance(t, ticks_ns(65535));
    assert_int_equal(t->irq_rises[0], 0);
    dtm_advance(t, ticks_ns(2));
    assert_int_equal(t->irq_rises[0], 1);
    dtm_outb(t, 0x43, 0xE2);
    assert_int_equal(dtm_inb(t, 0x40) & 0x80, 0x80);
    dtm_advance(t, ticks_ns(200000));
    assert_int_equal(t->irq_rises[0], 1);
}

static void test_mode3_square_wave_on_channel2(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, 0x43, 0xB6); /* channel 2, lohi, mode 3 (pcspkr) */
    write_count_lohi(t, 2, 1000);
    dtm_outb(t, 0x61, 0x03);
    assert_int_equal(dtm_inb(t, 0x61) & 0x03, 0x03);
    assert_int_equal(dtm_inb(t, 0x61) & 0x20, 0x20);
    t->now_ns += ticks_ns(499);
    assert_int_equal(dtm_inb(t, 0x61) & 0x20, 0x20);
    t->now_ns += ticks_ns(2);
    assert_int_equal(dtm_inb(t, 0x61) & 0x20, 0);
    uint16_t c = read_count_lohi(t, 2);
    assert_int_equal(c & 1, 0); /* counts by two */
    t->now_ns += ticks_ns(500);
    assert_int_equal(dtm_inb(t, 0x61) & 0x20, 0x20);
    /* Gate low forces OUT high and stops; gate high restarts a full period. */
    t->now_ns += ticks_ns(600);
    assert_int_equal(dtm_inb(t, 0x61) & 0x20, 0);
    dtm_outb(t, 0x61, 0x00);
    assert_int_equal(dtm_inb(t, 0x61) & 0x20, 0x20);
}

static void test_counter_latch(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, 0x43, 0x34);
    write_count_lohi(t, 0, 50000);
    t->now_ns += ticks_ns(1000);
    dtm_outb(t, 0x43, 0x00); /* latch channel 0 */
    t->now_ns += ticks_ns(5000);
    dtm_outb(t, 0x43, 0x00); /* a second latch before reading is ignored */
    assert_int_equal(read_count_lohi(t, 0), 49000);
    /* Latch released: live again. */
    assert_int_equal(read_count_lohi(t, 0), 44000);
    /* Half-read latch keeps the byte order across the live count. */
    dtm_outb(t, 0x43, 0x00);
    assert_int_equal(dtm_inb(t, 0x40), (uint8_t)44000);
    t->now_ns += ticks_ns(300);
    assert_int_equal(dtm_inb(t, 0x40), 44000 >> 8);
}

static void test_readback_command(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, 0x43, 0x74); /* channel 1, lohi, mode 2 */
    /* Before a count is written: null count set. */
    dtm_outb(t, 0x43, 0xE4); /* read-back status, channel 1 */
    assert_int_equal(dtm_inb(t, 0x41), 0x40 | 0x80 | 0x34);
    write_count_lohi(t, 1, 300);
    t->now_ns += ticks_ns(100);
    /* Latch count and status together: status comes first. */
    dtm_outb(t, 0x43, 0xC4);
    t->now_ns += ticks_ns(50);
    uint8_t status = dtm_inb(t, 0x41);
    assert_int_equal(status, 0x80 | 0x34); /* OUT high, null count cleared */
    assert_int_equal(read_count_lohi(t, 1), 200);
    /* Count-only read-back of channels 1 and 2 (2 unprogrammed) latches both. */
    dtm_outb(t, 0x43, 0xDC);
    t->now_ns += ticks_ns(10);
    assert_int_equal(read_count_lohi(t, 1), 150);
}

static void test_lobyte_hibyte_access_and_bcd(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, 0x43, 0x90); /* channel 2, lobyte only, mode 0 */
    dtm_outb(t, 0x61, 0x01);
    dtm_outb(t, 0x42, 200);
    t->now_ns += ticks_ns(50);
    assert_int_equal(dtm_inb(t, 0x42), 150);
    assert_int_equal(dtm_inb(t, 0x42), 150);
    dtm_outb(t, 0x43, 0xA0); /* hibyte only */
    dtm_outb(t, 0x42, 0x02); /* 512 */
    t->now_ns += ticks_ns(256);
    assert_int_equal(dtm_inb(t, 0x42), 0x01);
    dtm_outb(t, 0x43, 0xB1); /* lohi, mode 0, BCD */
    write_count_lohi(t, 2, 0x1234);
    t->now_ns += ticks_ns(34);
    assert_int_equal(read_count_lohi(t, 2), 0x1200);
    t->now_ns += ticks_ns(1201);
    assert_int_equal(read_count_lohi(t, 2), 0x9999); /* BCD wraps at 10000 */
}

static void test_refresh_bit_toggles(void **state)
{
    struct device_test_machine *t = *state;
    uint8_t a = dtm_inb(t, 0x61) & 0x10;
    t->now_ns += 15085;
    uint8_t b = dtm_inb(t, 0x61) & 0x10;
    assert_int_not_equal(a, b);
}

/* With the PIC in the loop, a tick is held back while the previous one is unacknowledged. */
static void test_tick_waits_for_pic_acknowledge(void **state)
{
    (void)state;
    struct device_test_machine *t = malloc(sizeof(*t));
    assert_non_null(t);
    dtm_setup(t, 1 << 20, &dtm_backend_pic, &pic_device);
    char err[128];
    assert_int_equal(pit_device.init(&t->m, err, sizeof(err)), 0);
    t->m.pit->clock_ns = dtm_clock;
    t->m.pit->clock_opaque = t;
    const uint8_t icw[] = {0x11, 0x20, 0x04, 0x01};
    for (unsigned i = 0; i < 4; i++) dtm_outb(t, i ? 0x21 : 0x20, icw[i]);
    dtm_outb(t, 0x21, 0x00);
    dtm_outb(t, 0x43, 0x34);
    write_count_lohi(t, 0, 1193); /* 1 kHz */
    for (unsigned i = 0; i < 3; i++) dtm_advance(t, ticks_ns(1193));
    assert_int_equal(t->irq_rises[0], 1); /* the guest has not taken the first tick */
    unsigned taken = 0;
    for (unsigned i = 0; i < 20 && taken < 5; i++) {
        pthread_mutex_lock(&t->m.dev_lock);
        if (pic_has_irq(t->m.pic)) {
            assert_int_equal(pic_read_irq(t->m.pic), 0x20);
            taken++;
        }
        pthread_mutex_unlock(&t->m.dev_lock);
        dtm_outb(t, 0x20, 0x20);
        dtm_advance(t, ticks_ns(1193) / 4);
    }
    /* Three periods owed plus the ones that passed meanwhile: all arrive, one per ack. */
    assert_int_equal(taken, 5);
    pit_device.destroy(&t->m);
    dtm_teardown(t, &pic_device);
    free(t);
}

static void test_absent_with_kernel_irqchip(void **state)
{
    (void)state;
    struct device_test_machine *t = malloc(sizeof(*t));
    assert_non_null(t);
    dtm_setup(t, 1 << 20, &dtm_backend_irqchip, &pit_device);
    assert_null(t->m.pit);
    assert_int_equal(dtm_inb(t, 0x61), 0xFF);
    dtm_teardown(t, &pit_device);
    free(t);
}

static void test_snapshot_round_trip(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, 0x43, 0x34);
    write_count_lohi(t, 0, 10000);
    dtm_outb(t, 0x61, 0x01);
    dtm_outb(t, 0x43, 0xB0);
    write_count_lohi(t, 2, 30000);
    dtm_advance(t, ticks_ns(12500)); /* one tick, 2500 into the second period */
    assert_int_equal(t->irq_rises[0], 1);
    dtm_outb(t, 0x43, 0x80); /* latch channel 2 (12500 elapsed -> 17500) */
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, 1 << 20, &dtm_backend, &pit_device);
    u->m.pit->clock_ns = dtm_clock;
    u->m.pit->clock_opaque = u;
    u->now_ns = 777ULL * 1000000000ULL; /* restored on a host whose clock reads otherwise */
    dtm_pit_copy(t, u);
    assert_int_equal(read_count_lohi(u, 2), 17500); /* the latch survived */
    assert_int_equal(read_count_lohi(u, 2), 17500); /* and the live count continues from there */
    assert_int_equal(read_count_lohi(u, 0), 7500);
    assert_int_equal(dtm_inb(u, 0x61) & 0x21, 0x01);
    dtm_advance(u, ticks_ns(7499));
    assert_int_equal(u->irq_rises[0], 0);
    dtm_advance(u, ticks_ns(2));
    assert_int_equal(u->irq_rises[0], 1); /* the tick comes on the restored schedule */
    dtm_advance(u, ticks_ns(17500));
    assert_int_equal(dtm_inb(u, 0x61) & 0x20, 0x20);
    dtm_teardown(u, &pit_device);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_channel2_mode0_calibration_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel2_msb_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gate_low_holds_mode0_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel0_mode2_periodic_irq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel0_mode4_oneshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel0_mode0_oneshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode3_square_wave_on_channel2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counter_latch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readback_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lobyte_hibyte_access_and_bcd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_bit_toggles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test(test_tick_waits_for_pic_acknowledge),
        cmocka_unit_test(test_absent_with_kernel_irqchip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
