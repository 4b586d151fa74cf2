/* emu_backend: PLACEHOLDER until the emu backend lands: every entry point fails with ENOSYS. */
#include <errno.h>

#include "vmm/cpu_backend.h"
#include "vmm/log.h"

static int emu_init(struct machine *m) { (void)m; log_error("the emu backend is not built yet"); return -ENOSYS; }
static void emu_destroy(struct machine *m) { (void)m; }
static int emu_vcpu_init(struct vcpu *v) { (void)v; return -ENOSYS; }
static void emu_vcpu_destroy(struct vcpu *v) { (void)v; }
static enum vcpu_exit emu_vcpu_run(struct vcpu *v) { (void)v; return VCPU_EXIT_ERROR; }
static int emu_get_state(struct vcpu *v, struct cpu_state *s) { (void)v; (void)s; return -ENOSYS; }
static int emu_set_state(struct vcpu *v, const struct cpu_state *s) { (void)v; (void)s; return -ENOSYS; }
static void emu_kick(struct vcpu *v) { (void)v; }
static void emu_set_irq(struct machine *m, unsigned gsi, int level) { (void)m; (void)gsi; (void)level; }

const struct cpu_backend_ops emu_backend_ops = {
    .name = "emu", .init = emu_init, .destroy = emu_destroy, .vcpu_init = emu_vcpu_init,
    .vcpu_destroy = emu_vcpu_destroy, .vcpu_run = emu_vcpu_run, .get_state = emu_get_state,
    .set_state = emu_set_state, .kick = emu_kick, .set_irq = emu_set_irq,
};
