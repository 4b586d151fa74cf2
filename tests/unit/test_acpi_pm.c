/* Unit tests for devices/acpi_pm: sleep/power-off, reset register, PM timer, power button SCI. */
#include "tests/unit/device_test_machine.h"

#include "devices/acpi_pm.h"

static int setup(void **state)
{
    static struct device_test_machine t;
    dtm_setup(&t, 1 << 20, &dtm_backend, &acpi_pm_device);
    t.m.acpi_pm->clock_ns = dtm_clock;
    t.m.acpi_pm->clock_opaque = &t;
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, &acpi_pm_device);
    return 0;
}

static void test_sci_en_always_set(void **state)
{
    struct device_test_machine *t = *state;
    assert_non_null(t->m.acpi_pm);
    assert_int_equal(dtm_in(t, ACPI_PM1_CNT, 2) & ACPI_PM1_CNT_SCI_EN, ACPI_PM1_CNT_SCI_EN);
    dtm_out(t, ACPI_PM1_CNT, 0, 2);
    assert_int_equal(dtm_in(t, ACPI_PM1_CNT, 2) & ACPI_PM1_CNT_SCI_EN, ACPI_PM1_CNT_SCI_EN);
}

static void test_s5_powers_off(void **state)
{
    struct device_test_machine *t = *state;
    /* SLP_TYP alone does nothing. */
    dtm_out(t, ACPI_PM1_CNT, ACPI_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT | ACPI_PM1_CNT_SCI_EN, 2);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_RUNNING);
    /* Another sleep type with SLP_EN is ignored (reports a wake). */
    dtm_out(t, ACPI_PM1_CNT, 3 << ACPI_PM1_CNT_SLP_TYP_SHIFT | ACPI_PM1_CNT_SLP_EN, 2);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_RUNNING);
    assert_true(dtm_in(t, ACPI_PM1_STS, 2) & ACPI_PM1_WAK_STS);
    /* Linux's acpi_hw_legacy_sleep: write SLP_TYP, then SLP_TYP|SLP_EN. */
    dtm_out(t, ACPI_PM1_CNT, ACPI_SLP_TYP_S5 << ACPI_PM1_CNT_SLP_TYP_SHIFT | ACPI_PM1_CNT_SLP_EN, 2);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_STOP_POWEROFF);
    assert_int_equal(dtm_in(t, ACPI_PM1_CNT, 2) & ACPI_PM1_CNT_SLP_EN, 0); /* write-only bit */
}

static void test_reset_register(void **state)
{
    struct device_test_machine *t = *state;
    dtm_outb(t, ACPI_RESET_REG, 0);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_RUNNING);
    dtm_outb(t, ACPI_RESET_REG, 1);
    assert_int_equal(machine_stop_requested(&t->m), MACHINE_STOP_RESET);
}

static void test_pm_timer_advances(void **state)
{
    struct device_test_machine *t = *state;
    uint32_t a = (uint32_t)dtm_in(t, ACPI_PM_TMR, 4);
    t->now_ns += 1000000; /* 1 ms = 3579.545 ticks */
    uint32_t b = (uint32_t)dtm_in(t, ACPI_PM_TMR, 4);
    assert_true(b - a >= 3579 && b - a <= 3580);
    /* Byte reads see the same counter. */
    uint32_t lo = (uint32_t)dtm_in(t, ACPI_PM_TMR, 2);
    assert_int_equal(lo, b & 0xFFFF);
    /* Read-only. */
    dtm_out(t, ACPI_PM_TMR, 0, 4);
    assert_int_equal((uint32_t)dtm_in(t, ACPI_PM_TMR, 4), b);
}

static void test_timer_status_on_msb_toggle(void **state)
{
    struct device_test_machine *t = *state;
    /* The device was created on the real clock and then pointed at the fake one, so bit 31 may
     * already differ from what it saw at creation: clear the status as a guest does first. */
    dtm_out(t, ACPI_PM1_STS, ACPI_PM1_TMR_STS, 2);
    assert_int_equal(dtm_in(t, ACPI_PM1_STS, 2) & ACPI_PM1_TMR_STS, 0);
    t->now_ns += (uint64_t)(2147483648.0 / ACPI_PM_TIMER_HZ * 1e9) + 1000000;
    assert_true(dtm_in(t, ACPI_PM1_STS, 2) & ACPI_PM1_TMR_STS);
    dtm_out(t, ACPI_PM1_STS, ACPI_PM1_TMR_STS, 2);
    assert_int_equal(dtm_in(t, ACPI_PM1_STS, 2) & ACPI_PM1_TMR_STS, 0);
}

static void test_power_button_sci(void **state)
{
    struct device_test_machine *t = *state;
    /* Not enabled: status only. */
    pthread_mutex_lock(&t->m.dev_lock);
    acpi_pm_power_button(t->m.acpi_pm);
    pthread_mutex_unlock(&t->m.dev_lock);
    assert_true(dtm_in(t, ACPI_PM1_STS, 2) & ACPI_PM1_PWRBTN_STS);
    assert_int_equal(t->irq_level[ACPI_SCI_IRQ], 0);
    /* Enabling PWRBTN_EN with the status set raises the SCI (level). */
    dtm_out(t, ACPI_PM1_EN, ACPI_PM1_PWRBTN_STS, 2);
    assert_int_equal(dtm_in(t, ACPI_PM1_EN, 2), ACPI_PM1_PWRBTN_STS);
    assert_int_equal(t->irq_level[ACPI_SCI_IRQ], 1);
    /* Writing 0 clears nothing; writing 1 clears and drops the line. */
    dtm_out(t, ACPI_PM1_STS, 0, 2);
    assert_int_equal(t->irq_level[ACPI_SCI_IRQ], 1);
    dtm_out(t, ACPI_PM1_STS, ACPI_PM1_PWRBTN_STS, 2);
    assert_int_equal(dtm_in(t, ACPI_PM1_STS, 2) & ACPI_PM1_PWRBTN_STS, 0);
    assert_int_equal(t->irq_level[ACPI_SCI_IRQ], 0);
    pthread_mutex_lock(&t->m.dev_lock);
    acpi_pm_power_button(t->m.acpi_pm);
    pthread_mutex_unlock(&t->m.dev_lock);
    assert_int_equal(t->irq_level[ACPI_SCI_IRQ], 1);
    assert_int_equal(t->irq_rises[ACPI_SCI_IRQ], 2);
}

static void test_snapshot_round_trip(void **state)
{
    struct device_test_machine *t = *state;
    t->now_ns += 123456789;
    dtm_out(t, ACPI_PM1_EN, ACPI_PM1_PWRBTN_STS, 2);
    pthread_mutex_lock(&t->m.dev_lock);
    acpi_pm_power_button(t->m.acpi_pm);
    pthread_mutex_unlock(&t->m.dev_lock);
    uint32_t timer = (uint32_t)dtm_in(t, ACPI_PM_TMR, 4);
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, 1 << 20, &dtm_backend, &acpi_pm_device);
    u->m.acpi_pm->clock_ns = dtm_clock;
    u->m.acpi_pm->clock_opaque = u;
    u->now_ns = 5; /* a freshly booted host */
    dtm_snapshot_copy(t, u, &acpi_pm_device);
    assert_int_equal((uint32_t)dtm_in(u, ACPI_PM_TMR, 4), timer); /* no jump */
    u->now_ns += 1000000;
    uint32_t later = (uint32_t)dtm_in(u, ACPI_PM_TMR, 4);
    assert_true(later - timer >= 3579 && later - timer <= 3580);
    assert_int_equal(u->irq_level[ACPI_SCI_IRQ], 1); /* the pending power button SCI */
    assert_true(dtm_in(u, ACPI_PM1_STS, 2) & ACPI_PM1_PWRBTN_STS);
    dtm_teardown(u, &acpi_pm_device);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sci_en_always_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s5_powers_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pm_timer_advances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_status_on_msb_toggle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_button_sci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
