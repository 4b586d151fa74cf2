/* Unit tests for devices/i8042: the controller as Linux's i8042 and atkbd drivers probe it. */
#include "tests/unit/device_test_machine.h"

#include "devices/i8042.h"

#define DATA 0x60
#define CMD 0x64

static int setup(void **state)
{
    static struct device_test_machine t;
    dtm_setup(&t, 1 << 20, &dtm_backend, &i8042_device);
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, &i8042_device);
    return 0;
}

/* i8042_command(): write the command, then read one reply byte with OBF set. */
static uint8_t ctl_command(struct device_test_machine *t, uint8_t cmd)
{
    dtm_outb(t, CMD, cmd);
    assert_true(dtm_inb(t, CMD) & I8042_STR_OBF);
    return dtm_inb(t, DATA);
}

static void assert_empty(struct device_test_machine *t) { assert_false(dtm_inb(t, CMD) & I8042_STR_OBF); }

static void test_self_tests(void **state)
{
    struct device_test_machine *t = *state;
    assert_non_null(t->m.i8042);
    assert_empty(t);
    assert_int_equal(ctl_command(t, 0xAA), 0x55);
    assert_true(dtm_inb(t, CMD) & I8042_STR_SYS);
    assert_int_equal(ctl_command(t, 0xAB), 0x00);
    assert_int_equal(ctl_command(t, 0xA9), 0x00);
    assert_empty(t);
}

static void test_command_byte_round_trip(void **state)
{
    struct device_test_machine *t = *state;
    uint8_t ctr = ctl_command(t, 0x20);
    assert_int_equal(ctr, I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_AUXDIS | I8042_CTR_XLATE);
    dtm_outb(t, CMD, 0x60);
    assert_true(dtm_inb(t, CMD) & I8042_STR_CMDDAT);
    dtm_outb(t, DATA, 0x47);
    assert_false(dtm_inb(t, CMD) & I8042_STR_CMDDAT);
    assert_int_equal(ctl_command(t, 0x20), 0x47);
    /* 0xAD / 0xAE and 0xA7 / 0xA8 flip the disable bits. */
    dtm_outb(t, CMD, 0xAD);
    assert_int_equal(ctl_command(t, 0x20), 0x47 | I8042_CTR_KBDDIS);
    dtm_outb(t, CMD, 0xAE);
    dtm_outb(t, CMD, 0xA7);
    assert_int_equal(ctl_command(t, 0x20), 0x47 | I8042_CTR_AUXDIS);
    dtm_outb(t, CMD, 0xA8);
    assert_int_equal(ctl_command(t, 0x20), 0x47);
}

static void test_keyboard_reset_and_identify(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, DATA, 0xFF);
    assert_int_equal(t->irq_level[1], 1);
    assert_int_equal(dtm_inb(t, DATA), 0xFA);
    assert_int_equal(t->irq_rises[1], 2); /* the queued 0xAA made a fresh edge */
    assert_int_equal(dtm_inb(t, DATA), 0xAA);
    assert_int_equal(t->irq_level[1], 0);
    assert_empty(t);
    /* Identify through translation: AB 83 arrives as AB 41. */
    dtm_outb(t, DATA, 0xF2);
    assert_int_equal(dtm_inb(t, DATA), 0xFA);
    assert_int_equal(dtm_inb(t, DATA), 0xAB);
    assert_int_equal(dtm_inb(t, DATA), 0x41);
    /* LEDs with argument, echo, scan code set query, unknown command. */
    dtm_outb(t, DATA, 0xED);
    assert_int_equal(dtm_inb(t, DATA), 0xFA);
    dtm_outb(t, DATA, 0x07);
    assert_int_equal(dtm_inb(t, DATA), 0xFA);
    assert_int_equal(t->m.i8042->kbd_leds, 7);
    dtm_outb(t, DATA, 0xEE);
    assert_int_equal(dtm_inb(t, DATA), 0xEE);
    dtm_outb(t, DATA, 0xF0);
    dtm_outb(t, DATA, 0x00);
    assert_int_equal(dtm_inb(t, DATA), 0xFA);
    assert_int_equal(dtm_inb(t, DATA), 0xFA);
    assert_int_equal(dtm_inb(t, DATA), 0x02);
    dtm_outb(t, DATA, 0x01);
    assert_int_equal(dtm_inb(t, DATA), 0xFE);
    assert_empty(t);
}

static void test_interrupt_enable_bits(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, CMD, 0x60);
    dtm_outb(t, DATA, 0x44); /* keyboard interrupt off */
    dtm_outb(t, DATA, 0xF4);
    assert_int_equal(t->irq_level[1], 0);
    assert_true(dtm_inb(t, CMD) & I8042_STR_OBF);
    assert_int_equal(dtm_inb(t, DATA), 0xFA);
    /* Aux loop (0xD3) answers as aux data on IRQ 12 when enabled. */
    dtm_outb(t, CMD, 0x60);
    dtm_outb(t, DATA, 0x47 & ~I8042_CTR_AUXDIS);
    dtm_outb(t, CMD, 0xD3);
    dtm_outb(t, DATA, 0x5A);
    assert_int_equal(t->irq_level[12], 1);
    assert_int_equal(t->irq_level[1], 0);
    assert_true(dtm_inb(t, CMD) & I8042_STR_AUXDATA);
    assert_int_equal(dtm_inb(t, DATA), 0x5A);
    assert_int_equal(t->irq_level[12], 0);
    /* Nothing on the aux port: a byte for the mouse comes back as 0xFE with timeout. */
    dtm_outb(t, CMD, 0xD4);
    dtm_outb(t, DATA, 0xF2);
    uint8_t st = dtm_inb(t, CMD);
    assert_true(st & I8042_STR_AUXDATA);
    assert_true(st & I8042_STR_TIMEOUT);
    assert_int_equal(dtm_inb(t, DATA), 0xFE);
    assert_false(dtm_inb(t, CMD) & I8042_STR_TIMEOUT);
}

static void test_output_port_reset(void **state)
{
    struct device_test_machine *t = *state;
    uint8_t out = ctl_command(t, 0xD0);
    assert_int_equal(out & 0x03, 0x03);
    dtm_outb(t, CMD, 0xD1);
    dtm_outb(t, DATA, 0x03); /* reset line stays high: nothing happens */
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_RUNNING);
    dtm_outb(t, CMD, 0xD1);
    dtm_outb(t, DATA, 0x02);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_STOP_RESET);
}

/* The output port's A20 bit (written with 0xD1, or by the 0xDD/0xDF commands) drives the
 * keyboard controller's half of the machine's A20 gate. */
static void test_a20_through_output_port(void **state)
{
    struct device_test_machine *t = *state;
    machine_set_a20(&t->m, MACHINE_A20_PORT92, false); /* port 0x92's half off: the i8042 decides */
    assert_true(machine_a20_enabled(&t->m));
    dtm_outb(t, CMD, 0xDD);
    assert_false(machine_a20_enabled(&t->m));
    assert_int_equal(ctl_command(t, 0xD0) & 0x02, 0);
    dtm_outb(t, CMD, 0xDF);
    assert_true(machine_a20_enabled(&t->m));
    dtm_outb(t, CMD, 0xD1);
    dtm_outb(t, DATA, 0x01); /* reset high, A20 low */
    assert_false(machine_a20_enabled(&t->m));
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_RUNNING);
}

static void test_pulse_reset(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, CMD, 0xFF); /* pulse nothing */
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_RUNNING);
    dtm_outb(t, CMD, 0xFE);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_STOP_RESET);
}

static void test_ctrl_alt_del_translated(void **state)
{
    struct device_test_machine *t = *state;
    pthread_mutex_lock(&t->m.dev_lock);
    i8042_ctrl_alt_del(t->m.i8042);
    pthread_mutex_unlock(&t->m.dev_lock);
    const uint8_t want[] = {0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D};
    for (size_t i = 0; i < sizeof(want); i++) {
        assert_int_equal(t->irq_level[1], 1);
        assert_int_equal(dtm_inb(t, DATA), want[i]);
    }
    assert_int_equal(t->irq_rises[1], sizeof(want));
    assert_empty(t);
}

static void test_ctrl_alt_del_set2(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, CMD, 0x60);
    dtm_outb(t, DATA, I8042_CTR_KBDINT | I8042_CTR_SYS); /* translation off */
    pthread_mutex_lock(&t->m.dev_lock);
    i8042_ctrl_alt_del(t->m.i8042);
    pthread_mutex_unlock(&t->m.dev_lock);
    const uint8_t want[] = {0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0, 0x71, 0xF0, 0x11, 0xF0, 0x14};
    for (size_t i = 0; i < sizeof(want); i++) assert_int_equal(dtm_inb(t, DATA), want[i]);
    assert_empty(t);
}

static void test_keys_dropped_while_disabled(void **state)
{
    struct device_test_machine *t = *state;
    const uint8_t a[] = {0x1E, 0x9E};
    dtm_outb(t, CMD, 0xAD);
    pthread_mutex_lock(&t->m.dev_lock);
    i8042_key_event(t->m.i8042, a, sizeof(a));
    pthread_mutex_unlock(&t->m.dev_lock);
    assert_empty(t);
    dtm_outb(t, CMD, 0xAE);
    dtm_outb(t, DATA, 0xF5); /* keyboard stops scanning */
    assert_int_equal(dtm_inb(t, DATA), 0xFA);
    pthread_mutex_lock(&t->m.dev_lock);
    i8042_key_event(t->m.i8042, a, sizeof(a));
    pthread_mutex_unlock(&t->m.dev_lock);
    assert_empty(t);
    dtm_outb(t, DATA, 0xF4);
    assert_int_equal(dtm_inb(t, DATA), 0xFA);
    pthread_mutex_lock(&t->m.dev_lock);
    i8042_key_event(t->m.i8042, a, sizeof(a));
    pthread_mutex_unlock(&t->m.dev_lock);
    assert_int_equal(dtm_inb(t, DATA), 0x1E);
    assert_int_equal(dtm_inb(t, DATA), 0x9E);
}

static void test_queue_overflow_is_bounded(void **state)
{
    struct device_test_machine *t = *state;
    uint8_t keys[200];
    memset(keys, 0x1E, sizeof(keys));
    pthread_mutex_lock(&t->m.dev_lock);
    i8042_key_event(t->m.i8042, keys, sizeof(keys));
    pthread_mutex_unlock(&t->m.dev_lock);
    unsigned n = 0;
    while (dtm_inb(t, CMD) & I8042_STR_OBF) {
        assert_int_equal(dtm_inb(t, DATA), 0x1E);
        n++;
    }
    assert_int_equal(n, I8042_QUEUE_SIZE);
}

static void test_snapshot_round_trip(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, CMD, 0x60);
    dtm_outb(t, DATA, I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_XLATE);
    dtm_outb(t, DATA, 0xF2); /* FA AB 41 queued */
    assert_int_equal(dtm_inb(t, DATA), 0xFA);
    dtm_outb(t, DATA, 0xED); /* waiting for the LED argument */
    assert_int_equal(dtm_inb(t, DATA), 0xAB);
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, 1 << 20, &dtm_backend, &i8042_device);
    dtm_snapshot_copy(t, u, &i8042_device);
    assert_int_equal(u->irq_level[1], 1);
    assert_int_equal(dtm_inb(u, DATA), 0x41);
    assert_int_equal(dtm_inb(u, DATA), 0xFA);
    dtm_outb(u, DATA, 0x02); /* the argument the snapshot was waiting for */
    assert_int_equal(dtm_inb(u, DATA), 0xFA);
    assert_int_equal(u->m.i8042->kbd_leds, 2);
    assert_int_equal(ctl_command(u, 0x20), I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_XLATE);
    dtm_teardown(u, &i8042_device);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_self_tests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_command_byte_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyboard_reset_and_identify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_enable_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_port_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a20_through_output_port, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pulse_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_alt_del_translated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctrl_alt_del_set2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_dropped_while_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_overflow_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
