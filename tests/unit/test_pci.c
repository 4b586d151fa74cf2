/* Unit tests for devices/pci's host bridge as firmware and guests see it: the i440FX identity
 * (82441FX, QEMU's subsystem ID) that SeaBIOS looks for, its PAM registers (writable bits only),
 * and that a snapshot taken when the host bridge had the generic 1b36:0008 identity still restores
 * (the identity is this vmd's, the guest-written registers the snapshot's). */
#include "tests/unit/device_test_machine.h"

#include <errno.h>

#include "devices/pci.h"

static const struct device_desc *pci_desc(void)
{
    for (unsigned i = 0; i < devices_count(); i++)
        if (!strcmp(device_at(i)->name, "pci")) return device_at(i);
    fail_msg("no registered pci device");
    return NULL;
}

static uint32_t cfg_read(struct device_test_machine *t, unsigned reg, unsigned size)
{
    dtm_out(t, 0xCF8, 0x80000000u | (reg & 0xfc), 4);
    return (uint32_t)dtm_in(t, (uint16_t)(0xCFC + (reg & 3)), size);
}

static void cfg_write(struct device_test_machine *t, unsigned reg, uint32_t v, unsigned size)
{
    dtm_out(t, 0xCF8, 0x80000000u | (reg & 0xfc), 4);
    dtm_out(t, (uint16_t)(0xCFC + (reg & 3)), v, size);
}

static int setup(void **state)
{
    struct device_test_machine *t = malloc(sizeof(*t));
    assert_non_null(t);
    dtm_setup(t, 1 << 20, &dtm_backend, pci_desc());
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, pci_desc());
    free(*state);
    return 0;
}

static void test_i440fx_identity(void **state)
{
    struct device_test_machine *t = *state;
    assert_int_equal(cfg_read(t, 0x00, 4), 0x12378086);
    assert_int_equal(cfg_read(t, 0x08, 1), 0x02);          /* revision */
    assert_int_equal(cfg_read(t, 0x0a, 2), 0x0600);        /* host bridge */
    assert_int_equal(cfg_read(t, 0x2c, 4), 0x11001af4);    /* "QEMU virtual machine" */
}

static void test_pam_registers(void **state)
{
    struct device_test_machine *t = *state;
    for (unsigned r = 0x58; r <= 0x60; r++) cfg_write(t, r, 0xff, 1);
    assert_int_equal(cfg_read(t, 0x58, 1), 0);
    assert_int_equal(cfg_read(t, I440FX_PAM0, 1), 0x30);
    for (unsigned i = 1; i < I440FX_PAM_COUNT; i++) assert_int_equal(cfg_read(t, I440FX_PAM0 + i, 1), 0x33);
    assert_int_equal(cfg_read(t, 0x60, 1), 0);
    /* the identity is read-only */
    cfg_write(t, 0x00, 0, 4);
    assert_int_equal(cfg_read(t, 0x00, 4), 0x12378086);
}

static void test_old_snapshot_with_generic_identity(void **state)
{
    struct device_test_machine *t = *state;
    cfg_write(t, I440FX_PAM0 + 1, 0x33, 1);
    cfg_write(t, 0x0d, 0x40, 1); /* latency timer: guest-written */
    struct snap_buf b;
    snap_buf_init(&b);
    assert_int_equal(pci_desc()->save(&t->m, &b), 0);
    /* the section: bus present (1), config address (4), slot 0 present (1), then its config space */
    assert_true(b.len > 6 + 64);
    uint8_t *cfg0 = b.data + 6;
    assert_int_equal(cfg0[0], 0x86);
    static const uint8_t generic[4] = {0x36, 0x1b, 0x08, 0x00};
    memcpy(cfg0, generic, 4);
    cfg0[8] = 0;
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, 1 << 20, &dtm_backend, pci_desc());
    char err[256] = "";
    for (int apply = 0; apply <= 1; apply++) {
        struct snap_reader r = {.data = b.data, .len = b.len};
        if (pci_desc()->restore(&u->m, &r, 1, apply, err, sizeof(err))) fail_msg("restore: %s", err);
    }
    assert_int_equal(cfg_read(u, 0x00, 4), 0x12378086);
    assert_int_equal(cfg_read(u, 0x08, 1), 0x02);
    assert_int_equal(cfg_read(u, I440FX_PAM0 + 1, 1), 0x33);
    assert_int_equal(cfg_read(u, 0x0d, 1), 0x40);
    /* any other identity in slot 0 is still refused */
    cfg0[0] = 0x34;
    struct snap_reader r = {.data = b.data, .len = b.len};
    assert_int_equal(pci_desc()->restore(&u->m, &r, 1, false, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "another device"));
    dtm_teardown(u, pci_desc());
    free(u);
    snap_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_i440fx_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pam_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_snapshot_with_generic_identity, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
