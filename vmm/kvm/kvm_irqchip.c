/* kvm_irqchip: snapshot state of the devices KVM emulates in the kernel for vmd (the 8259
 * pair, the IOAPIC, the PIT, every vCPU's local APIC, and the kvmclock base), registered as
 * the device "kvm-irqchip" so snapshot.c saves and restores it with the other devices.
 *
 * Section payload: u32 present (0 when the machine did not run the kvm backend: nothing
 * follows), u32 vCPU count, the three struct kvm_irqchip (PIC master, PIC slave, IOAPIC),
 * struct kvm_pit_state2, struct kvm_clock_data, then one struct kvm_lapic_state per vCPU.
 * Restoring a kvm snapshot under another backend drops this state with a warning (the emu
 * backend's own PIC/PIT start from reset). Restoring under kvm a snapshot taken under emu
 * (present = 0, "dev.pic"/"dev.pit" present) translates those sections instead (kvm_xsnap.c).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_backend.h"
#include "kvm_xsnap.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define KVM_IRQCHIP_STATE_VERSION 1
#define NUM_CHIPS 3 /* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */

static int kvm_irqchip_init(struct machine *m, char *err, size_t errlen)
{
    (void)m;
    (void)err;
    (void)errlen;
    return 0; /* created by the kvm backend's init */
}

static int fail_ioctl(const char *what, char *err, size_t errlen)
{
    int e = errno;
    if (err) snprintf(err, errlen, "kvm-irqchip: %s: %s", what, strerror(e));
    else log_error("kvm-irqchip: %s: %s", what, strerror(e));
    return -e;
}

static int kvm_irqchip_save(struct machine *m, struct snap_buf *b)
{
    int vm_fd = kvm_machine_vm_fd(m);
    if (vm_fd < 0) {
        snap_put_u32(b, 0);
        return 0;
    }
    snap_put_u32(b, 1);
    snap_put_u32(b, m->ncpus);
    for (unsigned chip = 0; chip < NUM_CHIPS; chip++) {
        struct kvm_irqchip c;
        memset(&c, 0, sizeof(c));
        c.chip_id = chip;
        if (ioctl(vm_fd, KVM_GET_IRQCHIP, &c) < 0) return fail_ioctl("KVM_GET_IRQCHIP", NULL, 0);
        snap_put(b, &c, sizeof(c));
    }
    struct kvm_pit_state2 pit;
    if (ioctl(vm_fd, KVM_GET_PIT2, &pit) < 0) return fail_ioctl("KVM_GET_PIT2", NULL, 0);
    snap_put(b, &pit, sizeof(pit));
    struct kvm_clock_data clock;
    memset(&clock, 0, sizeof(clock));
    if (ioctl(vm_fd, KVM_GET_CLOCK, &clock) < 0) return fail_ioctl("KVM_GET_CLOCK", NULL, 0);
    snap_put(b, &clock, sizeof(clock));
    for (unsigned i = 0; i < m->ncpus; i++) {
        struct kvm_lapic_state lapic;
        int fd = kvm_vcpu_fd(&m->vcpus[i]);
        if (fd < 0) return -ENODEV;
        if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0) return fail_ioctl("KVM_GET_LAPIC", NULL, 0);
        snap_put(b, &lapic, sizeof(lapic));
    }
    return 0;
}

static int kvm_irqchip_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                               size_t errlen)
{
    if (version != KVM_IRQCHIP_STATE_VERSION) {
        snprintf(err, errlen, "kvm-irqchip: state version %u, this vmd reads %u", version, KVM_IRQCHIP_STATE_VERSION);
        return -EINVAL;
    }
    if (snap_get_u32(r) == 0) {
        /* Taken under another backend: take over its emulated PIC/PIT if it has them, else
         * KVM keeps its reset state. */
        if (r->short_read || kvm_machine_vm_fd(m) < 0 || !r->file) return 0;
        int rc = kvm_xsnap_import(m, r->file, apply, err, errlen);
        return rc < 0 ? rc : 0;
    }
    uint32_t ncpus = snap_get_u32(r);
    int vm_fd = kvm_machine_vm_fd(m);
    if (vm_fd >= 0 && ncpus != m->ncpus) {
        snprintf(err, errlen, "kvm-irqchip: snapshot has %u local APICs, this VM %u vCPUs", ncpus, m->ncpus);
        return -EINVAL;
    }
    if (ncpus > MACHINE_MAX_CPUS) {
        snprintf(err, errlen, "kvm-irqchip: %u local APICs is more than vmd supports", ncpus);
        return -EINVAL;
    }
    struct kvm_irqchip chips[NUM_CHIPS];
    for (unsigned chip = 0; chip < NUM_CHIPS; chip++) {
        snap_get(r, &chips[chip], sizeof(chips[chip]));
        if (!r->short_read && chips[chip].chip_id != chip) {
            snprintf(err, errlen, "kvm-irqchip: interrupt controller %u has id %u", chip, chips[chip].chip_id);
            return -EINVAL;
        }
    }
    struct kvm_pit_state2 pit;
    snap_get(r, &pit, sizeof(pit));
    struct kvm_clock_data clock;
    snap_get(r, &clock, sizeof(clock));
    struct kvm_lapic_state *lapics = calloc(ncpus ? ncpus : 1, sizeof(*lapics));
    if (!lapics) return -ENOMEM;
    for (unsigned i = 0; i < ncpus; i++) snap_get(r, &lapics[i], sizeof(lapics[i]));
    int rc = 0;
    if (r->short_read || !apply) goto out;
    if (vm_fd < 0) {
        log_warn("kvm-irqchip: the snapshot was taken under kvm; its in-kernel PIC/IOAPIC/PIT/LAPIC state is "
                 "not carried over to the %s backend", m->backend->name);
        goto out;
    }
    for (unsigned chip = 0; chip < NUM_CHIPS && !rc; chip++)
        if (ioctl(vm_fd, KVM_SET_IRQCHIP, &chips[chip]) < 0) rc = fail_ioctl("KVM_SET_IRQCHIP", err, errlen);
    if (!rc && ioctl(vm_fd, KVM_SET_PIT2, &pit) < 0) rc = fail_ioctl("KVM_SET_PIT2", err, errlen);
    if (!rc) {
        struct kvm_clock_data c = {.clock = clock.clock}; /* no flags: set the clock value only */
        if (ioctl(vm_fd, KVM_SET_CLOCK, &c) < 0) rc = fail_ioctl("KVM_SET_CLOCK", err, errlen);
    }
    for (unsigned i = 0; i < ncpus && !rc; i++) {
        int fd = kvm_vcpu_fd(&m->vcpus[i]);
        if (fd < 0) errno = ENODEV;
        if (fd < 0 || ioctl(fd, KVM_SET_LAPIC, &lapics[i]) < 0) rc = fail_ioctl("KVM_SET_LAPIC", err, errlen);
    }
out:
    free(lapics);
    return rc;
}

static const struct device_desc kvm_irqchip_desc = {
    .name = "kvm-irqchip",
    .level = DEVICE_LEVEL_CORE,
    .init = kvm_irqchip_init,
    .state_version = KVM_IRQCHIP_STATE_VERSION,
    .save = kvm_irqchip_save,
    .restore = kvm_irqchip_restore,
};
DEVICE_REGISTER(kvm_irqchip_desc)
