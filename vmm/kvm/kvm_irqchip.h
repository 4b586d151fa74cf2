/* kvm_irqchip: KVM's in-kernel interrupt controllers (i8259 pair, IOAPIC, PIT, local APICs)
 * converted to and from the backend-neutral state of vmm/irqchip.h, the kvm backend's
 * irqchip_get/irqchip_set, the kvmclock base ("kvm-clock" section), and the reading of the
 * "dev.kvm-irqchip" section that kvm snapshots of older vmd versions hold. The only place that
 * knows KVM's irqchip structures.
 */
#ifndef VMD_KVM_IRQCHIP_H
#define VMD_KVM_IRQCHIP_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/irqchip.h"

struct machine;
struct snap_file;

/* Everything KVM holds of a VM's interrupt controllers. */
struct kvm_irqchip_raw {
    struct kvm_pic_state pic[2]; /* KVM_GET_IRQCHIP chips 0 (master) and 1 (slave) */
    struct kvm_ioapic_state ioapic; /* chip 2 */
    struct kvm_pit_state2 pit;
    int64_t save_host_ns; /* host CLOCK_MONOTONIC when pit was read (its count_load_time's clock);
                             0: unknown, every channel counts from its load */
    unsigned ncpus;
    struct kvm_lapic_state lapic[IRQCHIP_MAX_CPUS];
    uint64_t apic_base[IRQCHIP_MAX_CPUS];    /* IA32_APIC_BASE */
    uint64_t tsc_deadline[IRQCHIP_MAX_CPUS]; /* IA32_TSC_DEADLINE */
};

/* KVM -> neutral: validates every field (0, or -EINVAL with the reason in err). The PIT's
 * channels carry on with the time elapsed since their count was loaded; flags' SPEAKER_DATA_ON
 * becomes port 0x61 bit 1 (HPET_LEGACY has no meaning here). */
int kvm_irqchip_from_kvm(const struct kvm_irqchip_raw *k, struct irqchip_state *s, char *err, size_t errlen);

/* Neutral -> KVM (the parts s has; k's other fields are left alone):
 *  - PIC: priority_add is the highest-priority IRQ (our lowest + 1); KVM has no single mode and
 *    no ICW3 register: both are dropped.
 *  - PIT: KVM_SET_PIT2 (re)loads every channel with `count` and restarts channel 0's timer from
 *    "now": periodic modes keep their reload value (the phase within one period is lost),
 *    one-shot modes get the remaining count so a pending expiry still happens on time. Ticks
 *    owed to the guest are not carried.
 *  - IOAPIC: irr holds only the asserted level-triggered inputs (KVM_SET_IRQCHIP re-injects
 *    every irr bit, which would deliver an edge again).
 *  - local APICs: the register page (lapic_state_to_page) and IA32_APIC_BASE. */
void kvm_irqchip_to_kvm(const struct irqchip_state *s, struct kvm_irqchip_raw *k);

/* The same per controller (KVM -> neutral validates; idx 0 master, 1 slave). */
int kvm_irqchip_pic_from(const struct kvm_pic_state *k, unsigned idx, struct irqchip_pic_chip *c, char *err,
                         size_t errlen);
void kvm_irqchip_pic_to(const struct irqchip_pic_chip *c, bool is_master, struct kvm_pic_state *out);
int kvm_irqchip_pit_from(const struct kvm_pit_state2 *k, int64_t save_host_ns, struct irqchip_pit *s, char *err,
                         size_t errlen);
void kvm_irqchip_pit_to(const struct irqchip_pit *p, struct kvm_pit_state2 *out);
int kvm_irqchip_ioapic_from(const struct kvm_ioapic_state *k, struct irqchip_ioapic *s, char *err, size_t errlen);
void kvm_irqchip_ioapic_to(const struct irqchip_ioapic *s, struct kvm_ioapic_state *k);

/* The kvm backend's irqchip_get and irqchip_set (vmm/cpu_backend.h). */
int kvm_irqchip_get(struct machine *m, struct irqchip_state *s);
int kvm_irqchip_set(struct machine *m, const struct irqchip_state *s, struct snap_file *sf, bool apply, char *err,
                    size_t errlen);

#endif
