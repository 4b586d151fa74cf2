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

/* Hostile guest: random accesses of every size to every legacy port and the VGA window, with
 * time passing and host input arriving. Nothing may crash, trip the sanitizers, or leave an
 * interrupt line in a state other than 0/1. Deterministic (fixed xorshift seed). */
static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_random_io_is_survivable(void **state)
{
    (void)state;
    struct device_test_machine *t = malloc(sizeof(*t));
    assert_non_null(t);
    build_all(t, &dtm_backend_pic);
    t->m.pit->clock_ns = dtm_clock;
    t->m.pit->clock_opaque = t;
    t->m.acpi_pm->clock_ns = dtm_clock;
    t->m.acpi_pm->clock_opaque = t;
    t->m.rtc->mono_ns = dtm_clock;
    t->m.rtc->clock_opaque = t;
    static const uint16_t bases[] = {0x20, 0xA0, 0x4D0, 0x40, 0x61, 0x3F8, 0x70, 0x60, 0x64, 0x600,
                                     0x80, 0x92, 0x3C0, 0x3D4, 0x3DA};
    static const uint16_t spans[] = {2, 2, 2, 4, 1, 8, 2, 1, 1, 13, 1, 1, 16, 2, 1};
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    static uint8_t dirty[VGA_TEXT_MAX_ROWS][VGA_DIRTY_ROW_BYTES];
    for (unsigned i = 0; i < 200000; i++) {
        uint64_t r = xorshift(&seed);
        unsigned which = (unsigned)(r % (sizeof(bases) / sizeof(bases[0])));
        uint16_t port = (uint16_t)(bases[which] + (r >> 8) % spans[which]);
        unsigned size = 1u << ((r >> 16) % 3);
        uint64_t v = xorshift(&seed);
        bool write = (r >> 20) & 1;
        /* Leave the machine running: reset/poweroff writes only set the stop request. */
        machine_pio(&t->m, port, &v, size, write);
        if ((r >> 24) % 64 == 0) {
            uint64_t addr = VGA_MEM_BASE + (xorshift(&seed) % (VGA_MEM_SIZE + 16));
            uint64_t d = xorshift(&seed);
            machine_mmio(&t->m, addr, &d, 1u << ((r >> 30) % 4), (r >> 33) & 1);
        }
        if ((r >> 36) % 256 == 0) dtm_advance(t, xorshift(&seed) % 50000000ULL);
        if ((r >> 44) % 1024 == 0) {
            uint8_t in[8];
            memcpy(in, &v, sizeof(in));
            machine_console_input(&t->m, in, sizeof(in));
            pthread_mutex_lock(&t->m.dev_lock);
            i8042_key_event(t->m.i8042, in, sizeof(in));
            acpi_pm_power_button(t->m.acpi_pm);
            if (pic_has_irq(t->m.pic)) (void)pic_read_irq(t->m.pic);
            (void)vga_text_collect_dirty(t->m.vga, dirty);
            pthread_mutex_unlock(&t->m.dev_lock);
        }
    }
    for (unsigned g = 0; g < MACHINE_NUM_GSI; g++) assert_true(t->irq_level[g] == 0 || t->irq_level[g] == 1);
    assert_true(t->console_len > 0); /* the accesses did reach the devices */
    assert_true(t->irq_rises[1] + t->irq_rises[4] + t->irq_rises[9] > 0);
    destroy_all(t);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_emu_platform),
        cmocka_unit_test(test_kvm_platform_leaves_irqchip_ports),
        cmocka_unit_test(test_random_io_is_survivable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
