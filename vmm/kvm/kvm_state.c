/* kvm_state: struct cpu_state <-> KVM vCPU ioctls. See kvm_state.h. */
#include "kvm_state.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/log.h"

_Static_assert(sizeof(struct cpu_fxsave) == 512, "cpu_fxsave must have the FXSAVE layout");
_Static_assert(sizeof(((struct kvm_fpu *)0)->fpr) == sizeof(((struct cpu_fxsave *)0)->st), "kvm_fpu.fpr");
_Static_assert(sizeof(((struct kvm_fpu *)0)->xmm) == sizeof(((struct cpu_fxsave *)0)->xmm), "kvm_fpu.xmm");

/* XSAVE header: XSTATE_BV at byte 512 of the XSAVE area; bits 0 (x87) and 1 (SSE). */
#define XSAVE_HDR_XSTATE_BV 512
#define XSTATE_X87_SSE 3ULL

static int vcpu_ioctl(int fd, unsigned long req, void *arg, const char *what)
{
    if (ioctl(fd, req, arg) < 0) {
        int e = errno;
        log_error("kvm: %s: %s", what, strerror(e));
        return -e;
    }
    return 0;
}

/* ---- segments ------------------------------------------------------------------- */

static void seg_from_kvm(struct cpu_segment *d, const struct kvm_segment *k)
{
    d->base = k->base;
    d->limit = k->limit;
    d->selector = k->selector;
    d->type = k->type;
    d->s = k->s;
    d->dpl = k->dpl;
    d->present = k->present;
    d->avl = k->avl;
    d->l = k->l;
    d->db = k->db;
    d->g = k->g;
    d->unusable = k->unusable;
}

static void seg_to_kvm(struct kvm_segment *k, const struct cpu_segment *d)
{
    memset(k, 0, sizeof(*k));
    k->base = d->base;
    k->limit = d->limit;
    k->selector = d->selector;
    k->type = d->type;
    k->s = d->s;
    k->dpl = d->dpl;
    k->present = d->present;
    k->avl = d->avl;
    k->l = d->l;
    k->db = d->db;
    k->g = d->g;
    k->unusable = d->unusable;
}

static struct kvm_segment *sregs_seg(struct kvm_sregs *sr, int i)
{
    switch (i) {
    case SEG_ES: return &sr->es;
    case SEG_CS: return &sr->cs;
    case SEG_SS: return &sr->ss;
    case SEG_DS: return &sr->ds;
    case SEG_FS: return &sr->fs;
    case SEG_GS: return &sr->gs;
    case SEG_TR: return &sr->tr;
    default: return &sr->ldt;
    }
}

/* ---- general registers -------------------------------------------------------------- */

static void regs_from_kvm(struct cpu_state *s, const struct kvm_regs *r)
{
    s->gpr[GPR_RAX] = r->rax;
    s->gpr[GPR_RCX] = r->rcx;
    s->gpr[GPR_RDX] = r->rdx;
    s->gpr[GPR_RBX] = r->rbx;
    s->gpr[GPR_RSP] = r->rsp;
    s->gpr[GPR_RBP] = r->rbp;
    s->gpr[GPR_RSI] = r->rsi;
    s->gpr[GPR_RDI] = r->rdi;
    s->gpr[GPR_R8] = r->r8;
    s->gpr[GPR_R9] = r->r9;
    s->gpr[GPR_R10] = r->r10;
    s->gpr[GPR_R11] = r->r11;
    s->gpr[GPR_R12] = r->r12;
    s->gpr[GPR_R13] = r->r13;
    s->gpr[GPR_R14] = r->r14;
    s->gpr[GPR_R15] = r->r15;
    s->rip = r->rip;
    s->rflags = r->rflags;
}

static void regs_to_kvm(struct kvm_regs *r, const struct cpu_state *s)
{
    memset(r, 0, sizeof(*r));
    r->rax = s->gpr[GPR_RAX];
    r->rcx = s->gpr[GPR_RCX];
    r->rdx = s->gpr[GPR_RDX];
    r->rbx = s->gpr[GPR_RBX];
    r->rsp = s->gpr[GPR_RSP];
    r->rbp = s->gpr[GPR_RBP];
    r->rsi = s->gpr[GPR_RSI];
    r->rdi = s->gpr[GPR_RDI];
    r->r8 = s->gpr[GPR_R8];
    r->r9 = s->gpr[GPR_R9];
    r->r10 = s->gpr[GPR_R10];
    r->r11 = s->gpr[GPR_R11];
    r->r12 = s->gpr[GPR_R12];
    r->r13 = s->gpr[GPR_R13];
    r->r14 = s->gpr[GPR_R14];
    r->r15 = s->gpr[GPR_R15];
    r->rip = s->rip;
    r->rflags = s->rflags | RFLAGS_FIXED;
}

/* ---- MSRs --------------------------------------------------------------------------- */

/* The MSRs carried in cpu_state besides those KVM keeps in sregs (EFER, APIC base, FS/GS base). */
static const uint32_t state_msrs[] = {
    MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK, MSR_KERNEL_GS_BASE,
    MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP, MSR_IA32_SYSENTER_EIP,
    MSR_IA32_PAT, MSR_IA32_MISC_ENABLE, MSR_IA32_TSC, MSR_TSC_AUX,
    /* after the TSC: the deadline is in TSC units */
    MSR_IA32_TSC_DEADLINE,
    MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_WALL_CLOCK_NEW, MSR_KVM_STEAL_TIME, MSR_KVM_ASYNC_PF_EN, MSR_KVM_PV_EOI_EN,
};
#define NUM_STATE_MSRS (sizeof(state_msrs) / sizeof(state_msrs[0]))

static uint64_t *state_msr_field(struct cpu_state *s, uint32_t index)
{
    switch (index) {
    case MSR_STAR: return &s->star;
    case MSR_LSTAR: return &s->lstar;
    case MSR_CSTAR: return &s->cstar;
    case MSR_SYSCALL_MASK: return &s->sfmask;
    case MSR_KERNEL_GS_BASE: return &s->kernel_gs_base;
    case MSR_IA32_SYSENTER_CS: return &s->sysenter_cs;
    case MSR_IA32_SYSENTER_ESP: return &s->sysenter_esp;
    case MSR_IA32_SYSENTER_EIP: return &s->sysenter_eip;
    case MSR_IA32_PAT: return &s->pat;
    case MSR_IA32_MISC_ENABLE: return &s->misc_enable;
    case MSR_IA32_TSC: return &s->tsc;
    case MSR_IA32_TSC_DEADLINE: return &s->tsc_deadline;
    case MSR_KVM_SYSTEM_TIME_NEW: return &s->kvm_system_time;
    case MSR_KVM_WALL_CLOCK_NEW: return &s->kvm_wall_clock;
    case MSR_KVM_STEAL_TIME: return &s->kvm_steal_time;
    case MSR_KVM_ASYNC_PF_EN: return &s->kvm_async_pf_en;
    case MSR_KVM_PV_EOI_EN: return &s->kvm_pv_eoi_en;
    default: return &s->tsc_aux;
    }
}

struct msr_buf {
    struct kvm_msrs hdr;
    struct kvm_msr_entry e[NUM_STATE_MSRS];
};

static int msrs_get(int fd, struct cpu_state *s)
{
    struct msr_buf b;
    unsigned done = 0;
    /* KVM stops at the first MSR it cannot read: that one reads as 0, the rest are retried. */
    while (done < NUM_STATE_MSRS) {
        memset(&b, 0, sizeof(b));
        b.hdr.nmsrs = NUM_STATE_MSRS - done;
        for (unsigned i = 0; i < b.hdr.nmsrs; i++) b.e[i].index = state_msrs[done + i];
        int n = ioctl(fd, KVM_GET_MSRS, &b);
        if (n < 0) {
            int e = errno;
            log_error("kvm: KVM_GET_MSRS: %s", strerror(e));
            return -e;
        }
        for (int i = 0; i < n; i++) *state_msr_field(s, b.e[i].index) = b.e[i].data;
        done += (unsigned)n;
        if (done < NUM_STATE_MSRS) {
            log_debug("kvm: MSR 0x%x is not readable here; it reads as 0", state_msrs[done]);
            *state_msr_field(s, state_msrs[done]) = 0;
            done++;
        }
    }
    return 0;
}

static int msrs_set(int fd, const struct cpu_state *s)
{
    struct msr_buf b;
    struct cpu_state tmp = *s;
    unsigned done = 0;
    /* KVM stops at the first MSR it refuses. One it does not model (e.g. TSC_AUX without
     * RDTSCP in the guest CPUID) is skipped when the state holds 0 there, its reset value. */
    while (done < NUM_STATE_MSRS) {
        memset(&b, 0, sizeof(b));
        b.hdr.nmsrs = NUM_STATE_MSRS - done;
        for (unsigned i = 0; i < b.hdr.nmsrs; i++) {
            b.e[i].index = state_msrs[done + i];
            b.e[i].data = *state_msr_field(&tmp, state_msrs[done + i]);
        }
        int n = ioctl(fd, KVM_SET_MSRS, &b);
        if (n < 0) {
            int e = errno;
            log_error("kvm: KVM_SET_MSRS: %s", strerror(e));
            return -e;
        }
        done += (unsigned)n;
        if (done == NUM_STATE_MSRS) break;
        if (b.e[n].data != 0) {
            log_error("kvm: MSR 0x%x rejected value 0x%llx", b.e[n].index, (unsigned long long)b.e[n].data);
            return -EINVAL;
        }
        log_debug("kvm: MSR 0x%x not settable here; left at its reset value", b.e[n].index);
        done++;
    }
    return 0;
}

/* ---- FPU / SSE ------------------------------------------------------------------------ */

static int fpu_get(int fd, const struct kvm_state_caps *caps, struct cpu_state *s)
{
    if (caps->xsave) {
        struct kvm_xsave xs;
        int r = vcpu_ioctl(fd, KVM_GET_XSAVE, &xs, "KVM_GET_XSAVE");
        if (r < 0) return r;
        memcpy(&s->fx, xs.region, sizeof(s->fx)); /* the legacy region is the FXSAVE image */
        return 0;
    }
    struct kvm_fpu f;
    int r = vcpu_ioctl(fd, KVM_GET_FPU, &f, "KVM_GET_FPU");
    if (r < 0) return r;
    memset(&s->fx, 0, sizeof(s->fx));
    s->fx.fcw = f.fcw;
    s->fx.fsw = f.fsw;
    s->fx.ftw = f.ftwx;
    s->fx.fop = f.last_opcode;
    s->fx.fip = f.last_ip;
    s->fx.fdp = f.last_dp;
    s->fx.mxcsr = f.mxcsr;
    memcpy(s->fx.st, f.fpr, sizeof(s->fx.st));
    memcpy(s->fx.xmm, f.xmm, sizeof(s->fx.xmm));
    return 0;
}

static int fpu_set(int fd, const struct kvm_state_caps *caps, const struct cpu_state *s)
{
    if (caps->xsave) {
        struct kvm_xsave xs;
        int r = vcpu_ioctl(fd, KVM_GET_XSAVE, &xs, "KVM_GET_XSAVE");
        if (r < 0) return r;
        struct cpu_fxsave fx = s->fx;
        fx.mxcsr_mask = 0; /* must be 0 on XRSTOR-style loads; KVM recomputes the mask */
        memcpy(xs.region, &fx, sizeof(fx));
        uint64_t bv;
        memcpy(&bv, (uint8_t *)xs.region + XSAVE_HDR_XSTATE_BV, sizeof(bv));
        bv |= XSTATE_X87_SSE;
        memcpy((uint8_t *)xs.region + XSAVE_HDR_XSTATE_BV, &bv, sizeof(bv));
        return vcpu_ioctl(fd, KVM_SET_XSAVE, &xs, "KVM_SET_XSAVE");
    }
    struct kvm_fpu f;
    memset(&f, 0, sizeof(f));
    f.fcw = s->fx.fcw;
    f.fsw = s->fx.fsw;
    f.ftwx = s->fx.ftw;
    f.last_opcode = s->fx.fop;
    f.last_ip = s->fx.fip;
    f.last_dp = s->fx.fdp;
    f.mxcsr = s->fx.mxcsr;
    memcpy(f.fpr, s->fx.st, sizeof(f.fpr));
    memcpy(f.xmm, s->fx.xmm, sizeof(f.xmm));
    return vcpu_ioctl(fd, KVM_SET_FPU, &f, "KVM_SET_FPU");
}

/* ---- whole state ----------------------------------------------------------------------- */

int kvm_state_get(int fd, const struct kvm_state_caps *caps, struct cpu_state *s)
{
    memset(s, 0, sizeof(*s));
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    int r = vcpu_ioctl(fd, KVM_GET_REGS, &regs, "KVM_GET_REGS");
    if (r < 0) return r;
    regs_from_kvm(s, &regs);
    if ((r = vcpu_ioctl(fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS")) < 0) return r;
    for (int i = 0; i < SEG_COUNT; i++) seg_from_kvm(&s->seg[i], sregs_seg(&sregs, i));
    s->gdtr = (struct cpu_dtable){.base = sregs.gdt.base, .limit = sregs.gdt.limit};
    s->idtr = (struct cpu_dtable){.base = sregs.idt.base, .limit = sregs.idt.limit};
    s->cr0 = sregs.cr0;
    s->cr2 = sregs.cr2;
    s->cr3 = sregs.cr3;
    s->cr4 = sregs.cr4;
    s->cr8 = sregs.cr8;
    s->efer = sregs.efer;
    s->apic_base = sregs.apic_base;
    if ((r = msrs_get(fd, s)) < 0) return r;
    int khz = ioctl(fd, KVM_GET_TSC_KHZ, 0);
    s->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
    if ((r = fpu_get(fd, caps, s)) < 0) return r;
    s->xcr0 = 1;
    if (caps->xcrs) {
        struct kvm_xcrs xcrs;
        if ((r = vcpu_ioctl(fd, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS")) < 0) return r;
        for (unsigned i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
            if (xcrs.xcrs[i].xcr == 0) s->xcr0 = xcrs.xcrs[i].value;
    }
    if (caps->debugregs) {
        struct kvm_debugregs dr;
        if ((r = vcpu_ioctl(fd, KVM_GET_DEBUGREGS, &dr, "KVM_GET_DEBUGREGS")) < 0) return r;
        for (int i = 0; i < 4; i++) s->dr[i] = dr.db[i];
        s->dr[6] = dr.dr6;
        s->dr[7] = dr.dr7;
    }
    if (caps->vcpu_events) {
        struct kvm_vcpu_events ev;
        if ((r = vcpu_ioctl(fd, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS")) < 0) return r;
        s->interrupt_shadow = ev.interrupt.shadow != 0;
        s->nmi_pending = ev.nmi.pending;
    }
    if (caps->mp_state) {
        struct kvm_mp_state mp;
        if ((r = vcpu_ioctl(fd, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE")) < 0) return r;
        s->halted = mp.mp_state == KVM_MP_STATE_HALTED;
    }
    return 0;
}

int kvm_state_set(int fd, const struct kvm_state_caps *caps, const struct cpu_state *s)
{
    int r;
    struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
    if (caps->mp_state) {
        if ((r = vcpu_ioctl(fd, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE")) < 0) return r;
        /* An AP waiting for INIT/SIPI given the reset state: leave it to the in-kernel LAPIC. */
        if (mp.mp_state == KVM_MP_STATE_UNINITIALIZED && !(s->cr0 & CR0_PE)) return 0;
    }

    struct kvm_sregs sregs;
    if ((r = vcpu_ioctl(fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS")) < 0) return r;
    for (int i = 0; i < SEG_COUNT; i++) seg_to_kvm(sregs_seg(&sregs, i), &s->seg[i]);
    sregs.gdt = (struct kvm_dtable){.base = s->gdtr.base, .limit = s->gdtr.limit};
    sregs.idt = (struct kvm_dtable){.base = s->idtr.base, .limit = s->idtr.limit};
    sregs.cr0 = s->cr0;
    sregs.cr2 = s->cr2;
    sregs.cr3 = s->cr3;
    sregs.cr4 = s->cr4;
    sregs.cr8 = s->cr8;
    sregs.efer = s->efer;
    if (s->apic_base) sregs.apic_base = s->apic_base;
    /* No interrupt is being injected; KVM takes pending interrupts from its own LAPIC. */
    memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
    if ((r = vcpu_ioctl(fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS")) < 0) return r;

    struct kvm_regs regs;
    regs_to_kvm(&regs, s);
    if ((r = vcpu_ioctl(fd, KVM_SET_REGS, &regs, "KVM_SET_REGS")) < 0) return r;

    if (caps->xcrs) {
        struct kvm_xcrs xcrs;
        memset(&xcrs, 0, sizeof(xcrs));
        xcrs.nr_xcrs = 1;
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = s->xcr0 ? s->xcr0 : 1;
        if ((r = vcpu_ioctl(fd, KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS")) < 0) return r;
    }
    if ((r = fpu_set(fd, caps, s)) < 0) return r;
    /* The guest's TSC rate (before the TSC value is written back). Changing it needs TSC
     * scaling in the host CPU; without it the guest's TSC-based time runs at this host's rate. */
    int khz = ioctl(fd, KVM_GET_TSC_KHZ, 0);
    if (s->tsc_khz && khz > 0 && (uint32_t)khz != s->tsc_khz && ioctl(fd, KVM_SET_TSC_KHZ, (unsigned long)s->tsc_khz) < 0)
        log_warn("kvm: the guest's TSC ran at %u kHz, this host gives %d kHz and cannot scale it (%s): "
                 "the guest's TSC-based time runs off by that ratio",
                 s->tsc_khz, khz, strerror(errno));
    if ((r = msrs_set(fd, s)) < 0) return r;

    if (caps->debugregs) {
        struct kvm_debugregs dr;
        memset(&dr, 0, sizeof(dr));
        for (int i = 0; i < 4; i++) dr.db[i] = s->dr[i];
        /* DR6/DR7 have fixed-1 bits; an all-zero state means "architectural reset values". */
        dr.dr6 = s->dr[6] ? s->dr[6] : 0xffff0ff0;
        dr.dr7 = s->dr[7] ? s->dr[7] : 0x400;
        if ((r = vcpu_ioctl(fd, KVM_SET_DEBUGREGS, &dr, "KVM_SET_DEBUGREGS")) < 0) return r;
    }
    if (caps->vcpu_events) {
        struct kvm_vcpu_events ev;
        if ((r = vcpu_ioctl(fd, KVM_GET_VCPU_EVENTS, &ev, "KVM_GET_VCPU_EVENTS")) < 0) return r;
        ev.flags = KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_NMI_PENDING;
        ev.interrupt.shadow = s->interrupt_shadow ? KVM_X86_SHADOW_INT_STI : 0;
        ev.nmi.pending = s->nmi_pending;
        /* A restored state has nothing in flight. */
        ev.exception.injected = 0;
        ev.exception.pending = 0;
        ev.interrupt.injected = 0;
        ev.nmi.injected = 0;
        if ((r = vcpu_ioctl(fd, KVM_SET_VCPU_EVENTS, &ev, "KVM_SET_VCPU_EVENTS")) < 0) return r;
    }
    if (caps->mp_state) {
        mp.mp_state = s->halted ? KVM_MP_STATE_HALTED : KVM_MP_STATE_RUNNABLE;
        if ((r = vcpu_ioctl(fd, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE")) < 0) return r;
    }
    return 0;
}
