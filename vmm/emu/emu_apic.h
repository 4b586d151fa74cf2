/* emu_apic: the emulator's APIC platform device ("apic", vmm/emu/emu_apic.c). What other
 * modules need of it: its snapshot section ("dev.apic") translated into the state of KVM's
 * in-kernel IOAPIC and local APICs, for restoring under kvm a snapshot taken on this platform
 * (vmm/kvm/kvm_xsnap.c). */
#ifndef VMD_EMU_APIC_H
#define VMD_EMU_APIC_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snap_reader;

/* dev.apic's state as KVM takes it. lapics/apic_bases have ncpus entries (heap). */
struct emu_apic_kvm_state {
    bool present;                   /* the snapshot was taken on the APIC platform */
    unsigned ncpus;
    struct kvm_ioapic_state ioapic; /* KVM_SET_IRQCHIP, chip 2 */
    struct kvm_lapic_state *lapics; /* KVM_SET_LAPIC, per vCPU */
    uint64_t *apic_bases;           /* each local APIC's IA32_APIC_BASE */
};

/* Parse a "dev.apic" section payload of state version `version` into `out` (which then needs
 * emu_apic_kvm_state_free). Every part is checked as the emulator's own restore checks it. 0
 * (out->present false when the section says absent), or -errno with the reason in err. */
int emu_apic_decode_for_kvm(struct snap_reader *r, uint32_t version, struct emu_apic_kvm_state *out, char *err,
                            size_t errlen);
void emu_apic_kvm_state_free(struct emu_apic_kvm_state *s);

#endif
