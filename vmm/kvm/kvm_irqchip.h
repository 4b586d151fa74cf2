/* kvm_irqchip: the "kvm-irqchip" snapshot section (KVM's in-kernel PIC pair, IOAPIC, PIT,
 * kvmclock and local APICs), decoded for whichever backend restores it: KVM loads it back,
 * the emulator's APIC platform translates it into its own models (vmm/emu/emu_apic.c).
 */
#ifndef VMD_KVM_IRQCHIP_H
#define VMD_KVM_IRQCHIP_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KVM_IRQCHIP_STATE_VERSION 2
#define NUM_CHIPS 3 /* KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC */

struct snap_reader;

struct kvm_irqchip_saved {
    bool present; /* false: taken under a backend without an in-kernel irqchip */
    uint32_t ncpus;
    struct kvm_irqchip chips[NUM_CHIPS];
    struct kvm_pit_state2 pit;
    struct kvm_clock_data clock;
    int64_t save_host_ns; /* host CLOCK_MONOTONIC at the save; 0 in version 1 */
    struct kvm_lapic_state *lapics; /* ncpus of them (malloc'd) */
};

/* Parse a "dev.kvm-irqchip" payload of section version `version` (1 or 2). 0, or -errno with the
 * reason in err. Free with kvm_irqchip_saved_free. */
int kvm_irqchip_decode(struct snap_reader *r, uint32_t version, struct kvm_irqchip_saved *out, char *err,
                       size_t errlen);
void kvm_irqchip_saved_free(struct kvm_irqchip_saved *s);

#endif
