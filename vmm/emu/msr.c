/* msr: RDMSR/WRMSR for the emulator. Only the MSRs vmd models exist; any other number raises
 * #GP(0), which Linux handles once its exception table is live (and on the AMD vendor path
 * this CPU reports, nothing reads an unknown MSR before that).
 */
#include "vmm/emu/emu.h"
#include "vmm/emu/sys_priv.h"
#include "vmm/log.h"

#define MSR_MTRRCAP 0xfe
#define MSR_K8_SYSCFG 0xc0010010
#define MSR_K7_HWCR 0xc0010015
#define MSR_K8_INT_PENDING_MSG 0xc0010055
#define MSR_AMD64_PATCH_LEVEL 0x8b

static bool pat_valid(uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        unsigned t = (v >> (8 * i)) & 0xff;
        if (t != 0 && t != 1 && t != 4 && t != 5 && t != 6 && t != 7) return false;
    }
    return true;
}

/* Returns false for an MSR that does not exist. */
static bool msr_read(struct emu_cpu *cpu, uint32_t msr, uint64_t *v)
{
    struct cpu_state *s = &cpu->s;
    switch (msr) {
    case MSR_IA32_TSC: *v = sys_tsc_now(cpu); return true;
    case MSR_IA32_SYSENTER_CS: *v = s->sysenter_cs; return true;
    case MSR_IA32_SYSENTER_ESP: *v = s->sysenter_esp; return true;
    case MSR_IA32_SYSENTER_EIP: *v = s->sysenter_eip; return true;
    case MSR_IA32_MISC_ENABLE: *v = s->misc_enable; return true;
    case MSR_IA32_PAT: *v = s->pat; return true;
    case MSR_EFER: *v = s->efer; return true;
    case MSR_STAR: *v = s->star; return true;
    case MSR_LSTAR: *v = s->lstar; return true;
    case MSR_CSTAR: *v = s->cstar; return true;
    case MSR_SYSCALL_MASK: *v = s->sfmask; return true;
    case MSR_FS_BASE: *v = s->seg[SEG_FS].base; return true;
    case MSR_GS_BASE: *v = s->seg[SEG_GS].base; return true;
    case MSR_KERNEL_GS_BASE: *v = s->kernel_gs_base; return true;
    case MSR_TSC_AUX: *v = s->tsc_aux; return true;
    case MSR_AMD64_PATCH_LEVEL: *v = 0; return true; /* microcode revision: none */
    case MSR_K7_HWCR: *v = 0; return true;
    case MSR_K8_SYSCFG: *v = 0; return true;
    case MSR_K8_INT_PENDING_MSG: *v = 0; return true; /* no C1E */
    default: return false;
    }
}

static bool msr_write(struct emu_cpu *cpu, uint32_t msr, uint64_t v)
{
    struct cpu_state *s = &cpu->s;
    switch (msr) {
    case MSR_IA32_TSC:
        cpu->tsc_offset += (int64_t)(v - sys_tsc_now(cpu));
        return true;
    case MSR_IA32_SYSENTER_CS: s->sysenter_cs = v & 0xffff; return true;
    case MSR_IA32_SYSENTER_ESP:
        if (!emu_canonical(v)) emu_raise_gp0(cpu);
        s->sysenter_esp = v;
        return true;
    case MSR_IA32_SYSENTER_EIP:
        if (!emu_canonical(v)) emu_raise_gp0(cpu);
        s->sysenter_eip = v;
        return true;
    case MSR_IA32_MISC_ENABLE: s->misc_enable = v; return true;
    case MSR_IA32_PAT:
        if (!pat_valid(v)) emu_raise_gp0(cpu);
        s->pat = v;
        return true;
    case MSR_EFER: {
        uint64_t allowed = EFER_SCE | EFER_LME | EFER_NXE;
        if (v & ~(allowed | EFER_LMA)) emu_raise_gp0(cpu);
        /* LME cannot change while paging is on; LMA is read-only */
        if ((cpu->s.cr0 & CR0_PG) && ((v ^ s->efer) & EFER_LME)) emu_raise_gp0(cpu);
        uint64_t old = s->efer;
        s->efer = (v & allowed) | (old & EFER_LMA);
        if ((old ^ s->efer) & EFER_NXE) emu_tlb_flush(cpu);
        return true;
    }
    case MSR_STAR: s->star = v; return true;
    case MSR_LSTAR:
    case MSR_CSTAR:
        if (!emu_canonical(v)) emu_raise_gp0(cpu);
        if (msr == MSR_LSTAR) s->lstar = v;
        else s->cstar = v;
        return true;
    case MSR_SYSCALL_MASK: s->sfmask = v & 0xffffffffULL; return true;
    case MSR_FS_BASE:
    case MSR_GS_BASE:
    case MSR_KERNEL_GS_BASE:
        if (!emu_canonical(v)) emu_raise_gp0(cpu);
        if (msr == MSR_FS_BASE) s->seg[SEG_FS].base = v;
        else if (msr == MSR_GS_BASE) s->seg[SEG_GS].base = v;
        else s->kernel_gs_base = v;
        return true;
    case MSR_TSC_AUX:
        if (v >> 32) emu_raise_gp0(cpu);
        s->tsc_aux = v;
        return true;
    case MSR_AMD64_PATCH_LEVEL: return true;
    case MSR_K7_HWCR: return true;
    case MSR_K8_SYSCFG: return true;
    default: return false;
    }
}

void emu_sys_rdmsr(struct emu_cpu *cpu)
{
    if (cpu->cpl != 0) emu_raise_gp0(cpu);
    uint32_t msr = (uint32_t)cpu->s.gpr[GPR_RCX];
    uint64_t v = 0;
    if (!msr_read(cpu, msr, &v)) {
        if (cpu->trace) log_debug("emu: rdmsr 0x%x (unknown) at RIP 0x%llx", msr, (unsigned long long)cpu->insn_rip);
        emu_raise_gp0(cpu);
    }
    cpu->s.gpr[GPR_RAX] = (uint32_t)v;
    cpu->s.gpr[GPR_RDX] = v >> 32;
}

void emu_sys_wrmsr(struct emu_cpu *cpu)
{
    if (cpu->cpl != 0) emu_raise_gp0(cpu);
    uint32_t msr = (uint32_t)cpu->s.gpr[GPR_RCX];
    uint64_t v = (cpu->s.gpr[GPR_RDX] << 32) | (uint32_t)cpu->s.gpr[GPR_RAX];
    if (!msr_write(cpu, msr, v)) {
        if (cpu->trace)
            log_debug("emu: wrmsr 0x%x = 0x%llx (unknown) at RIP 0x%llx", msr, (unsigned long long)v,
                      (unsigned long long)cpu->insn_rip);
        emu_raise_gp0(cpu);
    }
}
