/* cpu_backend: choosing a backend for a VM's --accel setting. */
#include "vmm/cpu_backend.h"

const struct cpu_backend_ops *cpu_backend_for_accel(enum vm_accel accel)
{
    switch (accel) {
    case ACCEL_KVM: return &kvm_backend_ops;
    case ACCEL_EMU: return &emu_backend_ops;
    default: return kvm_host_has_hw_virt() ? &kvm_backend_ops : &emu_backend_ops;
    }
}
