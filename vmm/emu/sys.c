/* sys: the emulator's system instructions: MOV to/from control and debug registers,
 * LGDT/LIDT/SGDT/SIDT/LLDT/LTR, INVLPG, CLTS, WBINVD, XGETBV/XSETBV, SMSW/LMSW, IN/OUT, HLT,
 * CLI/STI and RDTSC. MSRs live in msr.c and CPUID in cpuid.c.
 */
#include <string.h>

#include "vmm/emu/except.h"
#include "vmm/emu/mmu.h"
#include "vmm/emu/sys.h"
#include "vmm/log.h"
#include "vmm/machine.h"

static void require_cpl0(struct emu_cpu *cpu)
{
    if (cpu->cpl != 0) emu_raise_gp0(cpu);
}

/* CR4 bits this CPU implements (and CPUID advertises) */
#define CR4_SUPPORTED (CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT)

static void set_cr0(struct emu_cpu *cpu, uint64_t val)
{
    if (val >> 32) emu_raise_gp0(cpu);
    if ((val & CR0_PG) && !(val & CR0_PE)) emu_raise_gp0(cpu);
    if ((val & CR0_NW) && !(val & CR0_CD)) emu_raise_gp0(cpu);
    uint64_t old = cpu->s.cr0;
    bool pg_on = (val & CR0_PG) && !(old & CR0_PG);
    bool pg_off = !(val & CR0_PG) && (old & CR0_PG);
    /* paging without EFER.LME: legacy 32-bit paging, or PAE paging with CR4.PAE (mmu.c) */
    if (pg_on && (cpu->s.efer & EFER_LME) && !(cpu->s.cr4 & CR4_PAE)) emu_raise_gp0(cpu);
    if (pg_off && cpu->long64) emu_raise_gp0(cpu);
    val |= CR0_ET;
    cpu->s.cr0 = val;
    if (pg_on && (cpu->s.efer & EFER_LME)) cpu->s.efer |= EFER_LMA;
    if (pg_off) cpu->s.efer &= ~EFER_LMA;
    if ((old ^ val) & (CR0_PG | CR0_WP | CR0_PE)) emu_tlb_flush(cpu);
    emu_update_mode(cpu);
}

void emu_sys_mov_to_cr(struct emu_cpu *cpu, int cr, uint64_t val)
{
    require_cpl0(cpu);
    switch (cr) {
    case 0:
        set_cr0(cpu, val);
        break;
    case 2:
        cpu->s.cr2 = val;
        break;
    case 3:
        if (cpu->s.efer & EFER_LMA) {
            if (val & ~EMU_PHYS_MASK) emu_raise_gp0(cpu);
        } else {
            val &= 0xffffffffULL;
        }
        cpu->s.cr3 = val;
        emu_tlb_flush(cpu);
        break;
    case 4: {
        if (val & ~CR4_SUPPORTED) emu_raise_gp0(cpu);
        if ((cpu->s.efer & EFER_LMA) && !(val & CR4_PAE)) emu_raise_gp0(cpu);
        uint64_t old = cpu->s.cr4;
        cpu->s.cr4 = val;
        if ((old ^ val) & (CR4_PGE | CR4_PAE | CR4_PSE)) emu_tlb_flush(cpu);
        break;
    }
    case 8:
        if (val & ~0xfULL) emu_raise_gp0(cpu);
        cpu->s.cr8 = val;
        break;
    default:
        emu_raise_ud(cpu);
    }
}

uint64_t emu_sys_mov_from_cr(struct emu_cpu *cpu, int cr)
{
    require_cpl0(cpu);
    switch (cr) {
    case 0: return cpu->s.cr0;
    case 2: return cpu->s.cr2;
    case 3: return cpu->s.cr3;
    case 4: return cpu->s.cr4;
    case 8: return cpu->s.cr8;
    default: emu_raise_ud(cpu);
    }
}

static int dr_index(struct emu_cpu *cpu, int dr)
{
    if (dr == 4 || dr == 5) {
        if (cpu->s.cr4 & CR4_DE) emu_raise_ud(cpu);
        return dr + 2;
    }
    if (dr < 0 || dr > 7) emu_raise_ud(cpu);
    return dr;
}

void emu_sys_mov_to_dr(struct emu_cpu *cpu, int dr, uint64_t val)
{
    require_cpl0(cpu);
    int i = dr_index(cpu, dr);
    if ((i == 6 || i == 7) && (val >> 32)) emu_raise_gp0(cpu);
    if (i == 6) val = (val & 0xe00fULL) | 0xffff0ff0ULL;
    if (i == 7) val = (val & ~0xd800ULL) | 0x400ULL;
    cpu->s.dr[i] = val; /* breakpoints are stored, not armed */
}

uint64_t emu_sys_mov_from_dr(struct emu_cpu *cpu, int dr)
{
    require_cpl0(cpu);
    return cpu->s.dr[dr_index(cpu, dr)];
}

void emu_sys_lgdt_lidt(struct emu_cpu *cpu, bool idt, uint64_t la)
{
    require_cpl0(cpu);
    bool user = false;
    uint16_t limit = (uint16_t)mmu_read(cpu, la, 2, ACC_READ, user);
    uint64_t base = cpu->long64 ? mmu_read(cpu, la + 2, 8, ACC_READ, user)
                                : mmu_read(cpu, la + 2, 4, ACC_READ, user);
    if (cpu->long64 && !emu_canonical(base)) emu_raise_gp0(cpu);
    struct cpu_dtable *t = idt ? &cpu->s.idtr : &cpu->s.gdtr;
    t->base = base;
    t->limit = limit;
}

void emu_sys_sgdt_sidt(struct emu_cpu *cpu, bool idt, uint64_t la)
{
    const struct cpu_dtable *t = idt ? &cpu->s.idtr : &cpu->s.gdtr;
    uint8_t buf[10];
    memcpy(buf, &t->limit, 2);
    memcpy(buf + 2, &t->base, 8);
    emu_write_bytes(cpu, la, buf, cpu->long64 ? 10 : 6);
}

void emu_sys_lldt(struct emu_cpu *cpu, uint16_t sel)
{
    if (!(cpu->s.cr0 & CR0_PE)) emu_raise_ud(cpu);
    require_cpl0(cpu);
    if ((sel & ~3u) == 0) {
        seg_load_null(&cpu->s.seg[SEG_LDTR], sel);
        return;
    }
    if (sel & 4) emu_raise(cpu, EXC_GP, sel & ~3u, true);
    struct emu_desc d;
    bool lm = cpu->s.efer & EFER_LMA;
    desc_read(cpu, sel, &d, lm, 0);
    if (desc_s(&d) || desc_type(&d) != 2) emu_raise(cpu, EXC_GP, sel & ~3u, true);
    if (!desc_present(&d)) emu_raise(cpu, EXC_NP, sel & ~3u, true);
    if (lm && !emu_canonical(((uint64_t)d.base_hi << 32) | 0)) emu_raise(cpu, EXC_GP, sel & ~3u, true);
    desc_to_seg(&d, sel, &cpu->s.seg[SEG_LDTR]);
}

void emu_sys_ltr(struct emu_cpu *cpu, uint16_t sel)
{
    if (!(cpu->s.cr0 & CR0_PE)) emu_raise_ud(cpu);
    require_cpl0(cpu);
    if ((sel & ~3u) == 0) emu_raise_gp0(cpu);
    if (sel & 4) emu_raise(cpu, EXC_GP, sel & ~3u, true);
    struct emu_desc d;
    bool lm = cpu->s.efer & EFER_LMA;
    desc_read(cpu, sel, &d, lm, 0);
    unsigned type = desc_type(&d);
    if (desc_s(&d) || (type != 9 && !(type == 1 && !lm))) emu_raise(cpu, EXC_GP, sel & ~3u, true);
    if (!desc_present(&d)) emu_raise(cpu, EXC_NP, sel & ~3u, true);
    /* mark busy in the GDT */
    d.hi |= 2u << 8;
    mmu_write(cpu, cpu->s.gdtr.base + (sel & ~7u) + 5, (uint8_t)(d.hi >> 8), 1, false);
    desc_to_seg(&d, sel, &cpu->s.seg[SEG_TR]);
}

void emu_sys_invlpg(struct emu_cpu *cpu, uint64_t la)
{
    require_cpl0(cpu);
    emu_tlb_flush_page(cpu, la);
}

void emu_sys_clts(struct emu_cpu *cpu)
{
    require_cpl0(cpu);
    cpu->s.cr0 &= ~CR0_TS;
}

void emu_sys_wbinvd(struct emu_cpu *cpu)
{
    require_cpl0(cpu);
}

uint64_t emu_sys_xgetbv(struct emu_cpu *cpu)
{
    emu_raise_ud(cpu); /* XSAVE is not advertised, so CR4.OSXSAVE can never be set */
}

void emu_sys_xsetbv(struct emu_cpu *cpu)
{
    emu_raise_ud(cpu);
}

uint16_t emu_sys_smsw(struct emu_cpu *cpu)
{
    return (uint16_t)cpu->s.cr0;
}

void emu_sys_lmsw(struct emu_cpu *cpu, uint16_t val)
{
    require_cpl0(cpu);
    /* LMSW changes PE MP EM TS only, and cannot clear PE */
    uint64_t cr0 = (cpu->s.cr0 & ~0xeULL) | (val & 0xfULL) | (cpu->s.cr0 & CR0_PE);
    set_cr0(cpu, cr0);
}

uint64_t sys_tsc_now(const struct emu_cpu *cpu)
{
    unsigned __int128 t = (unsigned __int128)clock_now_ns() * cpu->tsc_khz / 1000000u;
    return (uint64_t)t + (uint64_t)cpu->tsc_offset;
}

uint64_t emu_sys_rdtsc(struct emu_cpu *cpu)
{
    if ((cpu->s.cr4 & CR4_TSD) && cpu->cpl != 0) emu_raise_gp0(cpu);
    return sys_tsc_now(cpu);
}

/* IN/OUT in protected mode with CPL > IOPL (or in virtual-8086 mode) are allowed only where the
 * TSS's I/O permission bitmap has a 0 bit for every byte of the access (SDM vol. 1 19.5.2): the
 * bitmap starts at the 16-bit offset at TSS+102; a bit beyond the TSS limit counts as 1. Linux's
 * ioperm() and iopl(3) work this way (the kernel never raises IOPL for user code). */
static void check_io(struct emu_cpu *cpu, uint16_t port, unsigned size)
{
    if (!(cpu->s.cr0 & CR0_PE)) return;
    if (!(cpu->s.rflags & RFLAGS_VM) && cpu->cpl <= ((cpu->s.rflags & RFLAGS_IOPL) >> 12)) return;
    const struct cpu_segment *tr = &cpu->s.seg[SEG_TR];
    unsigned type = tr->type & 0xD; /* 9 or 11 (32/64-bit TSS, available or busy) -> 9 */
    if (tr->unusable || !tr->present || tr->s || type != 0x9 || tr->limit < 103) emu_raise_gp0(cpu);
    uint32_t base = (uint32_t)mmu_read(cpu, tr->base + 102, 2, ACC_READ, false);
    uint32_t off = base + port / 8;
    if ((uint64_t)off + 1 > tr->limit) emu_raise_gp0(cpu);
    uint32_t bits = (uint32_t)mmu_read(cpu, tr->base + off, 1, ACC_READ, false) |
                    (uint32_t)mmu_read(cpu, tr->base + off + 1, 1, ACC_READ, false) << 8;
    uint32_t mask = ((1u << size) - 1) << (port & 7);
    if (bits & mask) emu_raise_gp0(cpu);
}

void emu_sys_in(struct emu_cpu *cpu, uint16_t port, unsigned size, uint64_t *val)
{
    check_io(cpu, port, size);
    uint64_t v = 0;
    machine_pio(cpu->m, port, &v, size, false);
    *val = size >= 8 ? v : v & ((1ULL << (size * 8)) - 1);
}

void emu_sys_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint64_t val)
{
    check_io(cpu, port, size);
    uint64_t v = size >= 8 ? val : val & ((1ULL << (size * 8)) - 1);
    machine_pio(cpu->m, port, &v, size, true);
}

void emu_sys_hlt(struct emu_cpu *cpu)
{
    require_cpl0(cpu);
    cpu->s.halted = 1;
}

static bool if_allowed(const struct emu_cpu *cpu)
{
    return !(cpu->s.cr0 & CR0_PE) || cpu->cpl <= ((cpu->s.rflags & RFLAGS_IOPL) >> 12);
}

void emu_sys_cli(struct emu_cpu *cpu)
{
    if (!if_allowed(cpu)) emu_raise_gp0(cpu);
    cpu->s.rflags &= ~RFLAGS_IF;
}

void emu_sys_sti(struct emu_cpu *cpu)
{
    if (!if_allowed(cpu)) emu_raise_gp0(cpu);
    if (!(cpu->s.rflags & RFLAGS_IF)) cpu->s.interrupt_shadow = 1;
    cpu->s.rflags |= RFLAGS_IF;
}
