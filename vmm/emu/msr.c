/* msr: RDMSR/WRMSR for the emulator. Only the MSRs vmd models exist; any other number raises
 * #GP(0), which Linux handles once its exception table is live (and on the AMD vendor path
 * this CPU reports, nothing reads an unknown MSR before that).
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "devices/lapic.h"
#include "vmm/emu/mmu.h"
#include "vmm/emu/sys.h"
#include "vmm/log.h"
#include "vmm/machine.h"

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

/* The MSRs of the local APIC (APIC platform only): its base, the x2APIC registers, the TSC deadline. */
static bool is_apic_msr(uint32_t msr)
{
    return msr == MSR_IA32_APIC_BASE || msr == MSR_IA32_TSC_DEADLINE ||
           (msr >= MSR_X2APIC_FIRST && msr <= MSR_X2APIC_LAST);
}

/* ---- kvmclock ------------------------------------------------------------------------- */

/* pvclock_vcpu_time_info, as the guest reads it (Documentation/virt/kvm/x86/msr.rst) */
struct pvclock_time {
    uint32_t version;
    uint32_t pad0;
    uint64_t tsc_timestamp;
    uint64_t system_time;
    uint32_t tsc_to_system_mul;
    int8_t tsc_shift;
    uint8_t flags;
    uint8_t pad[2];
};
#define PVCLOCK_TSC_STABLE_BIT 1u

void emu_pvclock_scale(uint64_t tsc_khz, uint32_t *mul, int8_t *shift)
{
    /* ns = ((tsc_delta << shift, or >> -shift) * mul) >> 32, mul < 2^32: scale ticks per second
     * and nanoseconds per second by powers of two until their ratio fits (KVM's method) */
    uint64_t scaled = 1000000000ULL, base = (tsc_khz ? tsc_khz : 1) * 1000ULL;
    int sh = 0;
    while (base > scaled * 2 || (base >> 32)) {
        base >>= 1;
        sh--;
    }
    uint32_t base32 = (uint32_t)base;
    while (base32 <= scaled || (scaled >> 32)) {
        if ((scaled >> 32) || (base32 & 0x80000000u)) scaled >>= 1;
        else base32 <<= 1;
        sh++;
    }
    *mul = (uint32_t)((scaled << 32) / base32);
    *shift = (int8_t)sh;
}

uint64_t emu_pvclock_ns(uint64_t delta, uint32_t mul, int8_t shift)
{
    if (shift < 0) delta >>= -shift;
    else delta <<= shift;
    return (uint64_t)(((unsigned __int128)delta * mul) >> 32);
}

void emu_kvmclock_update(struct emu_cpu *cpu)
{
    uint64_t v = cpu->s.kvm_system_time;
    if (!(v & 1)) return;
    struct pvclock_time *p = guest_mem_ptr(&cpu->m->mem, v & ~(uint64_t)1, sizeof(*p));
    if (!p || ((v & ~(uint64_t)1) & 7)) return; /* not in RAM or misaligned: the guest gets no clock */
    uint64_t tsc = sys_tsc_now(cpu), now_ns;
    struct pvclock_time old;
    memcpy(&old, p, sizeof(old));
    if (!old.tsc_to_system_mul) {
        /* a new page: kvmclock counts from TSC 0 at this TSC rate */
        uint32_t mul;
        int8_t shift;
        emu_pvclock_scale(cpu->tsc_khz, &mul, &shift);
        now_ns = emu_pvclock_ns(tsc, mul, shift);
    } else {
        /* a page in use (a restored guest's, or one registered again): carry its clock on from
         * the parameters it holds, so guest time neither jumps nor runs backwards */
        now_ns = old.system_time + emu_pvclock_ns(tsc - old.tsc_timestamp, old.tsc_to_system_mul, old.tsc_shift);
    }
    struct pvclock_time t = {.version = (old.version | 1) + 1, .tsc_timestamp = tsc, .system_time = now_ns,
                             .flags = PVCLOCK_TSC_STABLE_BIT};
    emu_pvclock_scale(cpu->tsc_khz, &t.tsc_to_system_mul, &t.tsc_shift);
    uint32_t odd = t.version - 1;
    __atomic_store_n(&p->version, odd, __ATOMIC_RELEASE);
    memcpy((uint8_t *)p + 8, (uint8_t *)&t + 8, sizeof(t) - 8);
    __atomic_store_n(&p->version, t.version, __ATOMIC_RELEASE);
}

void emu_kvmclock_wall(struct emu_cpu *cpu)
{
    /* pvclock_wall_clock: version, sec, nsec — the wall-clock time at kvmclock 0 */
    uint64_t gpa = cpu->s.kvm_wall_clock;
    uint32_t *w = guest_mem_ptr(&cpu->m->mem, gpa, 12);
    if (!w || (gpa & 3)) return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint32_t mul;
    int8_t shift;
    emu_pvclock_scale(cpu->tsc_khz, &mul, &shift);
    uint64_t up = emu_pvclock_ns(sys_tsc_now(cpu), mul, shift);
    uint64_t wall = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
    wall = wall > up ? wall - up : 0;
    uint32_t ver = (w[0] | 1) + 1;
    __atomic_store_n(&w[0], ver - 1, __ATOMIC_RELEASE);
    w[1] = (uint32_t)(wall / 1000000000ULL);
    w[2] = (uint32_t)(wall % 1000000000ULL);
    __atomic_store_n(&w[0], ver, __ATOMIC_RELEASE);
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
    /* KVM's paravirtual MSRs, for a guest that booted under kvm and was restored here (the
     * emulator does not offer KVM's CPUID leaves to a guest it boots) */
    case MSR_KVM_SYSTEM_TIME_NEW: *v = s->kvm_system_time; return cpu->lapic != NULL;
    case MSR_KVM_WALL_CLOCK_NEW: *v = s->kvm_wall_clock; return cpu->lapic != NULL;
    case MSR_KVM_STEAL_TIME: *v = s->kvm_steal_time; return cpu->lapic != NULL;
    case MSR_KVM_ASYNC_PF_EN: *v = s->kvm_async_pf_en; return cpu->lapic != NULL;
    case MSR_KVM_PV_EOI_EN: *v = s->kvm_pv_eoi_en; return cpu->lapic != NULL;
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
    case MSR_KVM_SYSTEM_TIME_NEW:
        if (!cpu->lapic) return false;
        s->kvm_system_time = v;
        emu_kvmclock_update(cpu);
        return true;
    case MSR_KVM_WALL_CLOCK_NEW:
        if (!cpu->lapic) return false;
        s->kvm_wall_clock = v;
        emu_kvmclock_wall(cpu);
        return true;
    /* registered but never used: the emulator sets no PV EOI bit, takes no steal time and
     * sends no async page faults, which the guest's protocols allow */
    case MSR_KVM_STEAL_TIME: s->kvm_steal_time = v; return cpu->lapic != NULL;
    case MSR_KVM_ASYNC_PF_EN: s->kvm_async_pf_en = v; return cpu->lapic != NULL;
    case MSR_KVM_PV_EOI_EN: s->kvm_pv_eoi_en = v; return cpu->lapic != NULL;
    default: return false;
    }
}

void emu_sys_rdmsr(struct emu_cpu *cpu)
{
    if (cpu->cpl != 0) emu_raise_gp0(cpu);
    uint32_t msr = (uint32_t)cpu->s.gpr[GPR_RCX];
    uint64_t v = 0;
    bool ok;
    if (cpu->lapic && is_apic_msr(msr)) {
        pthread_mutex_lock(&cpu->m->dev_lock);
        ok = msr == MSR_IA32_APIC_BASE ? (v = lapic_get_base(cpu->lapic), true) : lapic_msr_read(cpu->lapic, msr, &v);
        pthread_mutex_unlock(&cpu->m->dev_lock);
    } else {
        ok = msr_read(cpu, msr, &v);
    }
    if (!ok) {
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
    bool ok;
    if (cpu->lapic && is_apic_msr(msr)) {
        pthread_mutex_lock(&cpu->m->dev_lock);
        ok = msr == MSR_IA32_APIC_BASE ? lapic_set_base(cpu->lapic, v) : lapic_msr_write(cpu->lapic, msr, v);
        pthread_mutex_unlock(&cpu->m->dev_lock);
    } else {
        ok = msr_write(cpu, msr, v);
    }
    if (!ok) {
        if (cpu->trace)
            log_debug("emu: wrmsr 0x%x = 0x%llx (unknown) at RIP 0x%llx", msr, (unsigned long long)v,
                      (unsigned long long)cpu->insn_rip);
        emu_raise_gp0(cpu);
    }
}
