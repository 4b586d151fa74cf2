/* Unit test: the legacy PC devices of devices/ coexist on one machine (no port overlaps),
 * with and without an in-kernel irqchip, and tear down cleanly. */
#include "tests/unit/device_test_machine.h"

#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "devices/misc_ports.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "devices/rtc.h"
#include "devices/uart.h"
#include "devices/vga.h"

static const struct device_desc *const legacy[] = {&pic_device, &pit_device, &uart_device, &rtc_device,
                                                   &i8042_device, &acpi_pm_device, &misc_ports_device, &vga_device};
#define NLEGACY (sizeof(legacy) / sizeof(legacy[0]))

static void build_all(struct device_test_machine *t, const struct cpu_backend_ops *ops)
{
    dtm_setup(t, 1 << 20, ops, legacy[0]);
    for (size_t i = 1; i < NLEGACY; i++) {
        char err[256] = "";
        int r = legacy[i]->init(&t->m, err, sizeof(err));
        if (r < 0) fail_msg("%s init next to the others: %s", legacy[i]->name, err);
    }
}

static void destroy_all(struct device_test_machine *t)
{
    for (size_t i = NLEGACY; i-- > 1;) legacy[i]->destroy(&t->m);
    dtm_teardown(t, legacy[0]);
}

static void test_emu_platform(void **state)
{
    (void)state;
    struct device_test_machine *t = malloc(sizeof(*t));
    assert_non_null(t);
    build_all(t, &dtm_backend);
    assert_non_null(t->m.pic);
    assert_non_null(t->m.pit);
    assert_non_null(t->m.com1);
    assert_non_null(t->m.rtc);
    assert_non_null(t->m.i8042);
    assert_non_null(t->m.acpi_pm);
    assert_non_null(t->m.vga);
    /* Every port Linux touches on a PC is answered by its owner. */
    const uint16_t ports[] = {0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1, 0x40, 0x43, 0x61, 0x60, 0x64, 0x70, 0x71,
                              0x80, 0x92, 0x3F8, 0x3FF, 0x600, 0x60C, 0x3C0, 0x3CF, 0x3D4, 0x3D5, 0x3DA};
    for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
        if (!bus_find(&t->m.pio, ports[i])) fail_msg("port 0x%x unclaimed", ports[i]);
    }
    destroy_all(t);
    free(t);
}

static void test_kvm_platform_leaves_irqchip_ports(void **state)
{
    (void)state;
    struct device_test_machine *t = malloc(sizeof(*t));
    assert_non_null(t);
    build_all(t, &dtm_backend_irqchip);
    assert_null(t->m.pic);
    assert_null(t->m.pit);
    const uint16_t kernel_ports[] = {0x20, 0xA0, 0x4D0, 0x40, 0x43, 0x61};
    for (size_t i = 0; i < sizeof(kernel_ports) / sizeof(kernel_ports[0]); i++)
        assert_null(bus_find(&t->m.pio, kernel_ports[i]));
    assert_non_null(t->m.com1);
    assert_non_null(t->m.acpi_pm);
    destroy_all(t);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emu_platform),
        cmocka_unit_test(test_kvm_platform_leaves_irqchip_ports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
