/* kvm_state: translation between vmd's backend-neutral struct cpu_state and
 * the KVM vCPU ioctls (regs, sregs, XSAVE/FPU, MSRs, XCRs, debug registers,
 * vCPU events, MP state). Used only by the kvm backend.
 */
#ifndef VMD_KVM_STATE_H
#define VMD_KVM_STATE_H

#include <stdbool.h>

#include "vmm/cpu_state.h"

/* What the VM supports, probed once with KVM_CHECK_EXTENSION. */
struct kvm_state_caps {
    bool xsave;       /* KVM_GET/SET_XSAVE (else KVM_GET/SET_FPU) */
    bool xcrs;        /* KVM_GET/SET_XCRS */
    bool debugregs;   /* KVM_GET/SET_DEBUGREGS */
    bool vcpu_events; /* KVM_GET/SET_VCPU_EVENTS */
    bool mp_state;    /* KVM_GET/SET_MP_STATE */
};

/* Read the whole state of the vCPU behind vcpu_fd. Returns 0 or -errno (logged). */
int kvm_state_get(int vcpu_fd, const struct kvm_state_caps *caps, struct cpu_state *s);

/* Load s into the vCPU. Two fields use 0 as "keep KVM's current value", because 0 is never
 * what a caller means there: apic_base (0 would disable the local APIC) and xcr0 (bit 0 must
 * be set). An AP still waiting for INIT/SIPI (mp_state UNINITIALIZED) given a real-mode state
 * (CR0.PE clear, i.e. the reset state) is left untouched so the in-kernel LAPIC can start it.
 * Returns 0 or -errno (logged). */
int kvm_state_set(int vcpu_fd, const struct kvm_state_caps *caps, const struct cpu_state *s);

#endif
