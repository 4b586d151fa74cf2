/* cpu_backend: the one interface both CPU backends (kvm, emu) implement.
 *
 * The machine owns guest RAM, the buses and the devices; a backend owns only
 * how guest instructions run. A backend reports PIO/MMIO accesses to the
 * machine's buses (machine_pio/machine_mmio) and receives interrupts through
 * set_irq. Devices never know which backend runs the CPU.
 */
#ifndef VMD_CPU_BACKEND_H
#define VMD_CPU_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "cpu_state.h"
#include "vm_config.h"

struct machine;
struct vcpu;

/* Why vcpu_run returned. */
enum vcpu_exit {
    VCPU_EXIT_STOP,     /* machine_request_stop() was called (poweroff, reset, pause, signal) */
    VCPU_EXIT_SHUTDOWN, /* triple fault or unrecoverable guest state: the guest reset itself */
    VCPU_EXIT_ERROR,    /* backend failure; message already logged */
};

struct irqchip_state;
struct snap_file;

struct cpu_backend_ops {
    const char *name; /* "kvm" or "emu" */
    /* Machine-wide set-up after guest RAM exists (memory slots, irqchip). */
    int (*init)(struct machine *m);
    void (*destroy)(struct machine *m);
    int (*vcpu_init)(struct vcpu *v);
    void (*vcpu_destroy)(struct vcpu *v);
    /* Run the vCPU until the machine asks it to stop or the guest resets. */
    enum vcpu_exit (*vcpu_run)(struct vcpu *v);
    int (*get_state)(struct vcpu *v, struct cpu_state *s);
    int (*set_state)(struct vcpu *v, const struct cpu_state *s);
    /* Make a running vcpu_run return promptly (called from another thread). */
    void (*kick)(struct vcpu *v);
    /* Set the level of interrupt line `gsi` (0-23). Called with the device lock held. */
    void (*set_irq)(struct machine *m, unsigned gsi, int level);
    /* Deliver a message-signalled interrupt (the address/data a device's MSI-X table holds).
     * NULL where the platform has no local APIC to receive it (emu for now). Any thread. */
    int (*send_msi)(struct machine *m, uint64_t addr, uint32_t data);
    /* The interrupt controllers' state in backend-neutral form (vmm/irqchip.h), for snapshots.
     * get fills s (0 or -errno); set checks s against this machine and, when apply, loads it
     * (0, or -errno with the reason in err); sf is the snapshot being restored, or NULL. */
    int (*irqchip_get)(struct machine *m, struct irqchip_state *s);
    int (*irqchip_set)(struct machine *m, const struct irqchip_state *s, struct snap_file *sf, bool apply, char *err,
                       size_t errlen);
    /* Whether the backend supplies PIC/PIT/IOAPIC itself (KVM in-kernel irqchip). */
    bool has_kernel_irqchip;
    /* Whether the backend's vCPU thread runs the machine's device timers (emu does, between
     * instruction batches). Otherwise the process's I/O loop must call machine_run_timers(). */
    bool runs_device_timers;
};

extern const struct cpu_backend_ops kvm_backend_ops;
extern const struct cpu_backend_ops emu_backend_ops;

/* True if this host can run the kvm backend for real guests (vmx/svm present and /dev/kvm opens). */
bool kvm_host_has_hw_virt(void);

/* The backend for --accel: kvm or emu as asked; auto picks kvm only where the host CPU has
 * vmx or svm (this project's hosts expose kvm_pvm, which cannot run a stock kernel), else emu. */
const struct cpu_backend_ops *cpu_backend_for_accel(enum vm_accel accel);

#endif
