/* Unit tests for devices/misc_ports (the I/O delay port and system control port A) and the other
 * small ISA ports: devices/debug_exit (isa-debug-exit) and devices/pvpanic. */
#include "tests/unit/device_test_machine.h"

#include "devices/debug_exit.h"
#include "devices/misc_ports.h"
#include "devices/pvpanic.h"

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

/* isa-debug-exit is off unless the config asks for it; a write of V stops the machine with
 * status (V<<1)|1, the first write deciding. */
static void test_debug_exit(void **state)
{
    struct device_test_machine *t = *state;
    char err[128];
    assert_int_equal(debug_exit_device.init(&t->m, err, sizeof(err)), 0);
    assert_null(bus_find(&t->m.pio, 0xF4)); /* off by default */
    t->cfg.devices = VM_DEVICE_ISA_DEBUG_EXIT;
    assert_int_equal(debug_exit_device.init(&t->m, err, sizeof(err)), 0);
    const struct bus_range *r = bus_find(&t->m.pio, 0xF7);
    assert_non_null(r);
    assert_int_equal(r->base, 0xF4);
    assert_int_equal(dtm_in(t, 0xF4, 4), 0);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_RUNNING);
    dtm_out(t, 0xF4, 0x10, 4);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_STOP_GUEST_EXIT);
    assert_int_equal(t->m.guest_exit_status, 0x21);
    dtm_outb(t, 0xF4, 0x01); /* a second write changes nothing */
    assert_int_equal(t->m.guest_exit_status, 0x21);
    debug_exit_device.destroy(&t->m);
    assert_null(bus_find(&t->m.pio, 0xF4));
}

/* Statuses are the low 8 bits, as a process's: 0xFF gives 0xFF, a 32-bit 0x80 gives 1. */
static void test_debug_exit_wide_values(void **state)
{
    struct device_test_machine *t = *state;
    char err[128];
    t->cfg.devices = VM_DEVICE_ISA_DEBUG_EXIT;
    assert_int_equal(debug_exit_device.init(&t->m, err, sizeof(err)), 0);
    dtm_out(t, 0xF4, 0x80, 4);
    assert_int_equal(t->m.guest_exit_status, 1);
    debug_exit_device.destroy(&t->m);
}

/* The panic policy: auto is ignore with panic=N (N != 0) before any "--", else stop. */
static void test_pvpanic_policy(void **state)
{
    (void)state;
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_AUTO, NULL), ON_PANIC_STOP);
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_AUTO, "console=ttyS0"), ON_PANIC_STOP);
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_AUTO, "console=ttyS0 panic=1"), ON_PANIC_IGNORE);
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_AUTO, "panic=-1 quiet"), ON_PANIC_IGNORE);
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_AUTO, "panic=0"), ON_PANIC_STOP);
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_AUTO, "panic=10 panic=0"), ON_PANIC_STOP); /* the last wins */
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_AUTO, "panic=x"), ON_PANIC_STOP);
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_AUTO, "oops=panic panic_on_warn=1"), ON_PANIC_STOP);
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_AUTO, "quiet -- panic=5"), ON_PANIC_STOP); /* init's */
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_REBOOT, "console=ttyS0"), ON_PANIC_REBOOT);
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_STOP, "panic=1"), ON_PANIC_STOP);
    assert_int_equal(pvpanic_effective_policy(ON_PANIC_IGNORE, ""), ON_PANIC_IGNORE);
}

/* The port: reads the supported events; bit 0 acts by the policy, bit 1 alone only logs. */
static void test_pvpanic_port(void **state)
{
    struct device_test_machine *t = *state;
    char err[128];
    static const struct {
        enum vm_on_panic policy;
        const char *cmdline;
        enum machine_stop want;
    } cases[] = {
        {ON_PANIC_AUTO, "console=ttyS0", MACHINE_STOP_PANIC},
        {ON_PANIC_AUTO, "console=ttyS0 panic=1", MACHINE_RUNNING},
        {ON_PANIC_REBOOT, NULL, MACHINE_STOP_RESET},
        {ON_PANIC_IGNORE, NULL, MACHINE_RUNNING},
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t->cfg.on_panic = cases[i].policy;
        t->cfg.cmdline = (char *)cases[i].cmdline;
        atomic_store(&t->m.stop, MACHINE_RUNNING);
        assert_int_equal(pvpanic_device.init(&t->m, err, sizeof(err)), 0);
        assert_true(pvpanic_present(&t->m));
        assert_int_equal(dtm_inb(t, PVPANIC_PORT), PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
        dtm_outb(t, PVPANIC_PORT, PVPANIC_CRASH_LOADED);
        assert_int_equal(machine_stop_requested(&t->m), MACHINE_RUNNING);
        dtm_outb(t, PVPANIC_PORT, PVPANIC_PANICKED);
        assert_int_equal(machine_stop_requested(&t->m), cases[i].want);
        pvpanic_device.destroy(&t->m);
        assert_false(pvpanic_present(&t->m));
    }
    t->cfg.cmdline = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_port80_is_a_sink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port92_a20_and_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_debug_exit_wide_values, setup, teardown),
        cmocka_unit_test(test_pvpanic_policy),
        cmocka_unit_test_setup_teardown(test_pvpanic_port, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
