/* device: self-registering device models, in the manner of kvmtool's init levels.
 *
 * A device file declares one `struct device_desc` and DEVICE_REGISTER()s it;
 * machine_create() runs every registered init in level order, so adding a
 * device touches only its own file. (libvmm.a is linked whole-archive so that
 * these constructors are kept.)
 */
#ifndef VMD_DEVICE_H
#define VMD_DEVICE_H

#include <stddef.h>

struct machine;

enum device_level {
    DEVICE_LEVEL_CORE = 0,     /* interrupt controllers, timers */
    DEVICE_LEVEL_BASE = 1,     /* legacy ISA devices: uart, rtc, i8042 */
    DEVICE_LEVEL_BUS = 2,      /* PCI host bridge */
    DEVICE_LEVEL_DEVICE = 3,   /* PCI / virtio devices */
    DEVICE_LEVEL_FIRMWARE = 4, /* tables describing the above (ACPI, MP) */
    DEVICE_LEVEL_LATE = 5,
};

struct device_desc {
    const char *name;
    enum device_level level;
    /* Create the device for machine m. Returns 0, or -errno with a user-facing message in err.
     * `backend_irqchip` devices (PIC, PIT, IOAPIC) should return 0 without doing anything when
     * m->backend->has_kernel_irqchip is set. */
    int (*init)(struct machine *m, char *err, size_t errlen);
    void (*destroy)(struct machine *m);
};

void device_register(const struct device_desc *desc);
/* Run every registered init in level order; on failure destroy what was made. */
int devices_init_all(struct machine *m, char *err, size_t errlen);
void devices_destroy_all(struct machine *m);

#define DEVICE_REGISTER(desc) \
    __attribute__((constructor)) static void device_register_##desc(void) { device_register(&(desc)); }

#endif
