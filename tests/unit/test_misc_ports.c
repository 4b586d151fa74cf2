/* Unit tests for devices/misc_ports: the I/O delay port and system control port A. */
#include "tests/unit/device_test_machine.h"

#include "devices/misc_ports.h"

static int setup(void **state)
{
    static struct device_test_machine t;
    dtm_setup(&t, 1 << 20, &dtm_backend, &misc_ports_device);
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, &misc_ports_device);
    return 0;
}

static void test_port80_is_a_sink(void **state)
{
    struct device_test_machine *t = *state;
    for (unsigned i = 0; i < 100; i++) dtm_outb(t, 0x80, (uint8_t)i);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_RUNNING);
    assert_true(bus_find(&t->m.pio, 0x80) != NULL); /* claimed: no "unclaimed port" noise */
}

static void test_port92_a20_and_reset(void **state)
{
    struct device_test_machine *t = *state;
    assert_int_equal(dtm_inb(t, 0x92) & 0x02, 0x02);
    dtm_outb(t, 0x92, 0x00);
    assert_int_equal(dtm_inb(t, 0x92) & 0x02, 0x00);
    /* port 0x92 drives its half of the machine's A20 gate (the i8042 holds the other) */
    assert_true(atomic_load(&t->m.a20_off) & MACHINE_A20_PORT92);
    machine_set_a20(&t->m, MACHINE_A20_KBC, false);
    assert_false(machine_a20_enabled(&t->m));
    dtm_outb(t, 0x92, 0x02);
    assert_true(machine_a20_enabled(&t->m));
    assert_int_equal(dtm_inb(t, 0x92), 0x02);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_RUNNING);
    dtm_outb(t, 0x92, 0x03);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_STOP_RESET);
}

static void test_snapshot_round_trip(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, 0x92, 0x00);
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, 1 << 20, &dtm_backend, &misc_ports_device);
    assert_int_equal(dtm_inb(u, 0x92), 0x02);
    dtm_snapshot_copy(t, u, &misc_ports_device);
    assert_int_equal(dtm_inb(u, 0x92), 0x00);
    dtm_teardown(u, &misc_ports_device);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_port80_is_a_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port92_a20_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
