/* kvm_backend: accessors the other kvm modules (kvm_irqchip.c) use to reach the VM and vCPU
 * file descriptors. The backend itself is `kvm_backend_ops` (vmm/cpu_backend.h). */
#ifndef VMD_KVM_BACKEND_H
#define VMD_KVM_BACKEND_H

struct machine;
struct vcpu;

/* The KVM VM fd of a machine running the kvm backend, or -1 for any other backend. */
int kvm_machine_vm_fd(const struct machine *m);
/* The KVM vCPU fd, or -1 if the vCPU does not exist (yet) under the kvm backend. */
int kvm_vcpu_fd(const struct vcpu *v);

#endif
