/* kvm_backend: PLACEHOLDER until the kvm backend lands: every entry point fails with ENOSYS. */
#include <errno.h>

#include "vmm/cpu_backend.h"
#include "vmm/log.h"

static int kvm_init(struct machine *m) { (void)m; log_error("the kvm backend is not built yet"); return -ENOSYS; }
static void kvm_destroy(struct machine *m) { (void)m; }
static int kvm_vcpu_init(struct vcpu *v) { (void)v; return -ENOSYS; }
static void kvm_vcpu_destroy(struct vcpu *v) { (void)v; }
static enum vcpu_exit kvm_vcpu_run(struct vcpu *v) { (void)v; return VCPU_EXIT_ERROR; }
static int kvm_get_state(struct vcpu *v, struct cpu_state *s) { (void)v; (void)s; return -ENOSYS; }
static int kvm_set_state(struct vcpu *v, const struct cpu_state *s) { (void)v; (void)s; return -ENOSYS; }
static void kvm_kick(struct vcpu *v) { (void)v; }
static void kvm_set_irq(struct machine *m, unsigned gsi, int level) { (void)m; (void)gsi; (void)level; }

const struct cpu_backend_ops kvm_backend_ops = {
    .name = "kvm", .init = kvm_init, .destroy = kvm_destroy, .vcpu_init = kvm_vcpu_init,
    .vcpu_destroy = kvm_vcpu_destroy, .vcpu_run = kvm_vcpu_run, .get_state = kvm_get_state,
    .set_state = kvm_set_state, .kick = kvm_kick, .set_irq = kvm_set_irq,
};

bool kvm_host_has_hw_virt(void) { return false; }
