/* device: self-registering device models, in the manner of kvmtool's init levels.
 *
 * A device file declares one `struct device_desc` and DEVICE_REGISTER()s it;
 * machine_create() runs every registered init in level order, so adding a
 * device touches only its own file. (libvmm.a is linked whole-archive so that
 * these constructors are kept.)
 */
#ifndef VMD_DEVICE_H
#define VMD_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct machine;
struct snap_buf;
struct snap_reader;
struct snap_file;

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
    int (*init)(struct machine *m, char *err, size_t errlen); /* optional */
    void (*destroy)(struct machine *m);
    /* Snapshot support (optional: devices without guest-visible state leave these NULL).
     * save appends the device's state to b. restore parses what save wrote (section version
     * `version`), validating every field; it changes the device only when `apply` is true
     * (restore runs once with apply=false on every device before any is changed). Both must
     * cope with the device being absent in this machine (e.g. the PIC under KVM): record that,
     * and refuse a snapshot whose presence differs. */
    uint32_t state_version;
    int (*save)(struct machine *m, struct snap_buf *b);
    int (*restore)(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err, size_t errlen);
    /* Optional: called instead of restore when the snapshot has no section for this device (one
     * written before the device existed), with the same apply passes; it may take the state from
     * other sections of sf. Without it such a snapshot is refused. */
    int (*restore_missing)(struct machine *m, struct snap_file *sf, bool apply, char *err, size_t errlen);
};

void device_register(const struct device_desc *desc);
/* Run every registered init in level order; on failure destroy what was made. */
int devices_init_all(struct machine *m, char *err, size_t errlen);
void devices_destroy_all(struct machine *m);
/* The registered devices, in init order (for snapshots). */
unsigned devices_count(void);
const struct device_desc *device_at(unsigned i);

#define DEVICE_REGISTER(desc) \
    __attribute__((constructor)) static void device_register_##desc(void) { device_register(&(desc)); }

#endif
