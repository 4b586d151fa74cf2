/* kvm_irqchip: snapshot state of the devices KVM emulates in the kernel for vmd (the 8259
 * pair, the IOAPIC, the PIT, every vCPU's local APIC, and the kvmclock base), registered as
 * the device "kvm-irqchip" so snapshot.c saves and restores it with the other devices.
 *
 * Section payload: u32 present (0 when the machine did not run the kvm backend: nothing
 * follows), u32 vCPU count, the three struct kvm_irqchip (PIC master, PIC slave, IOAPIC),
 * struct kvm_pit_state2, struct kvm_clock_data, (version 2:) u64 host CLOCK_MONOTONIC ns at the
 * save (the clock of the PIT's count_load_time), then one struct kvm_lapic_state per vCPU.
 * Restoring a kvm snapshot under the emulator: its APIC platform takes this state over
 * (kvm_irqchip_decode, vmm/emu/emu_apic.c). Restoring under kvm a snapshot taken under emu
 * (present = 0, "dev.pic"/"dev.pit" present) translates those sections instead (kvm_xsnap.c).
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "kvm_backend.h"
#include "kvm_irqchip.h"
#include "kvm_xsnap.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"


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
    /* the clock the PIT's count_load_time is on (host CLOCK_MONOTONIC), now */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    snap_put(b, &pit, sizeof(pit));
    struct kvm_clock_data clock;
    memset(&clock, 0, sizeof(clock));
    if (ioctl(vm_fd, KVM_GET_CLOCK, &clock) < 0) return fail_ioctl("KVM_GET_CLOCK", NULL, 0);
    snap_put(b, &clock, sizeof(clock));
    snap_put_u64(b, (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec);
    for (unsigned i = 0; i < m->ncpus; i++) {
        struct kvm_lapic_state lapic;
        int fd = kvm_vcpu_fd(&m->vcpus[i]);
        if (fd < 0) return -ENODEV;
        if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0) return fail_ioctl("KVM_GET_LAPIC", NULL, 0);
        snap_put(b, &lapic, sizeof(lapic));
    }
    return 0;
}

void kvm_irqchip_saved_free(struct kvm_irqchip_saved *s)
{
    free(s->lapics);
    s->lapics = NULL;
}

int kvm_irqchip_decode(struct snap_reader *r, uint32_t version, struct kvm_irqchip_saved *out, char *err,
                       size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (version < 1 || version > KVM_IRQCHIP_STATE_VERSION) {
        snprintf(err, errlen, "kvm-irqchip: state version %u, this vmd reads 1 to %u", version,
                 KVM_IRQCHIP_STATE_VERSION);
        return -EINVAL;
    }
    out->present = snap_get_u32(r) != 0;
    if (!out->present || r->short_read) return 0;
    out->ncpus = snap_get_u32(r);
    if (out->ncpus > MACHINE_MAX_CPUS) {
        snprintf(err, errlen, "kvm-irqchip: %u local APICs is more than vmd supports", out->ncpus);
        return -EINVAL;
    }
    for (unsigned chip = 0; chip < NUM_CHIPS; chip++) {
        snap_get(r, &out->chips[chip], sizeof(out->chips[chip]));
        if (!r->short_read && out->chips[chip].chip_id != chip) {
            snprintf(err, errlen, "kvm-irqchip: interrupt controller %u has id %u", chip, out->chips[chip].chip_id);
            return -EINVAL;
        }
    }
    snap_get(r, &out->pit, sizeof(out->pit));
    snap_get(r, &out->clock, sizeof(out->clock));
    if (version >= 2) out->save_host_ns = (int64_t)snap_get_u64(r);
    out->lapics = calloc(out->ncpus ? out->ncpus : 1, sizeof(*out->lapics));
    if (!out->lapics) return -ENOMEM;
    for (unsigned i = 0; i < out->ncpus; i++) snap_get(r, &out->lapics[i], sizeof(out->lapics[i]));
    if (r->short_read) {
        snprintf(err, errlen, "kvm-irqchip: section is shorter than its state");
        kvm_irqchip_saved_free(out);
        return -EINVAL;
    }
    return 0;
}

static int kvm_irqchip_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                               size_t errlen)
{
    struct kvm_irqchip_saved saved;
    int rc = kvm_irqchip_decode(r, version, &saved, err, errlen);
    if (rc) return rc;
    int vm_fd = kvm_machine_vm_fd(m);
    if (!saved.present) {
        /* Taken under another backend: take over its emulated PIC/PIT if it has them, else
         * KVM keeps its reset state. */
        if (vm_fd < 0 || !r->file) return 0;
        rc = kvm_xsnap_import(m, r->file, apply, err, errlen);
        return rc < 0 ? rc : 0;
    }
    /* Under the emulator, its APIC platform device takes this state over (vmm/emu/emu_apic.c). */
    if (vm_fd < 0) goto out;
    if (saved.ncpus != m->ncpus) {
        snprintf(err, errlen, "kvm-irqchip: snapshot has %u local APICs, this VM %u vCPUs", saved.ncpus, m->ncpus);
        rc = -EINVAL;
        goto out;
    }
    if (!apply) goto out;
    for (unsigned chip = 0; chip < NUM_CHIPS && !rc; chip++)
        if (ioctl(vm_fd, KVM_SET_IRQCHIP, &saved.chips[chip]) < 0) rc = fail_ioctl("KVM_SET_IRQCHIP", err, errlen);
    if (!rc && ioctl(vm_fd, KVM_SET_PIT2, &saved.pit) < 0) rc = fail_ioctl("KVM_SET_PIT2", err, errlen);
    if (!rc) {
        struct kvm_clock_data c = {.clock = saved.clock.clock}; /* no flags: set the clock value only */
        if (ioctl(vm_fd, KVM_SET_CLOCK, &c) < 0) rc = fail_ioctl("KVM_SET_CLOCK", err, errlen);
    }
    for (unsigned i = 0; i < saved.ncpus && !rc; i++) {
        int fd = kvm_vcpu_fd(&m->vcpus[i]);
        if (fd < 0) errno = ENODEV;
        if (fd < 0 || ioctl(fd, KVM_SET_LAPIC, &saved.lapics[i]) < 0) rc = fail_ioctl("KVM_SET_LAPIC", err, errlen);
    }
out:
    kvm_irqchip_saved_free(&saved);
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
