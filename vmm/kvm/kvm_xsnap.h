/* kvm_xsnap: cross-backend snapshots, emu -> kvm. A snapshot taken under the emu backend
 * holds the emulated i8259 pair and i8254 ("dev.pic", "dev.pit") and no in-kernel irqchip
 * state; restoring it under KVM translates those into the in-kernel PIC and PIT. On the
 * emulator's PIC platform it masks the IOAPIC (the guest never programmed one) and lets the
 * local APIC pass the PIC's interrupts through (LVT0 ExtINT); a snapshot of its APIC platform
 * ("dev.apic" present) also has its IOAPIC and local APICs, which are loaded as they were. So
 * the guest carries on as it was. See docs/snapshots.md, "Cross-backend".
 */
#ifndef VMD_KVM_XSNAP_H
#define VMD_KVM_XSNAP_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>

#include "devices/pic.h"
#include "devices/pit.h"

struct machine;
struct snap_file;

/* The in-kernel PIC chip state (chip.pic of KVM_SET_IRQCHIP) equivalent to one saved 8259
 * (`is_master` selects the edge-only ELCR bits). */
void kvm_xsnap_pic_chip(const struct pic_saved_chip *c, bool is_master, struct kvm_pic_state *out);
/* The in-kernel PIT channels equivalent to a saved 8254; `out`'s flags are left alone. */
void kvm_xsnap_pit(const struct pit_saved *p, struct kvm_pit_state2 *out);

/* If sf holds emulated interrupt-controller state (a snapshot taken under emu), validate its
 * "dev.pic", "dev.pit" and "dev.apic" sections and, when `apply`, load them into machine m's
 * in-kernel irqchip (m runs the kvm backend). Returns 1 if it did (or, with apply=false,
 * would), 0 if sf has no emulated state to take over, or -errno with the reason in err. */
int kvm_xsnap_import(struct machine *m, struct snap_file *sf, bool apply, char *err, size_t errlen);

#endif
