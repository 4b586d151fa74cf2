/* kvm_rig: a bare machine (guest RAM, buses, one KVM vCPU, no devices, no kernel) for tests
 * that run small guests under the kvm backend, built with guest_builder.h.
 *
 * The guest ends a run by writing to RIG_DONE_MMIO (any size; a clean exit at any CPL) or
 * RIG_DONE_PORT, which requests MACHINE_STOP_POWEROFF; an exception reported by the
 * guest_builder stubs also stops it (exc_vector says which). A watchdog requests
 * MACHINE_STOP_KILL if a run takes longer than the rig's timeout.
 */
#ifndef VMD_TESTS_KVM_RIG_H
#define VMD_TESTS_KVM_RIG_H

#include <stddef.h>

#include "vmm/machine.h"

#define RIG_DONE_PORT 0xf4
/* Below 2 GiB, so `mov [disp32], al` reaches it; outside RAM (an exit) only in rigs with at
 * most 1 GiB of RAM. Larger rigs end their runs with an exception instead. */
#define RIG_DONE_MMIO 0x40000000ULL

struct kvm_rig {
    struct machine m;
    unsigned timeout_ms; /* watchdog per run (default 5000) */
    int exc_vector;      /* last vector reported by the guest's exception stubs, or -1 */
};

/* Create a rig with `ram` bytes of RAM (>= GB_MIN_RAM), the test guest's tables built in it.
 * Returns NULL and writes the reason to why if KVM is unavailable on this host. */
struct kvm_rig *kvm_rig_new(uint64_t ram, char *why, size_t whylen);
void kvm_rig_free(struct kvm_rig *r);
/* Add a vCPU (m.ncpus grows). Returns its index or -errno. */
int kvm_rig_add_vcpu(struct kvm_rig *r);

/* Load state s and run vCPU 0 until the guest stops the machine (or the watchdog does).
 * Returns the vcpu_run result; *stop (if non-NULL) receives the stop reason. The stop flag
 * is cleared afterwards so the rig can run again. */
enum vcpu_exit kvm_rig_run(struct kvm_rig *r, const struct cpu_state *s, enum machine_stop *stop);
/* The same for vCPU `index`, on the calling thread. */
enum vcpu_exit kvm_rig_run_vcpu(struct kvm_rig *r, unsigned index, const struct cpu_state *s, enum machine_stop *stop);

#endif
