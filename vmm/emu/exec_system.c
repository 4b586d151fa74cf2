/* exec_system: system instructions (exec part): decoded here and carried out by the system
 * part's emu_sys_* functions (privilege checks live there): IN/OUT, HLT, CLI/STI, INT n/INT3,
 * IRET, CPUID, RDTSC(P), RDMSR/WRMSR, MOV CR/DR, MOV/PUSH/POP Sreg, descriptor tables,
 * LLDT/LTR/SLDT/STR, SMSW/LMSW, INVLPG, SWAPGS, XGETBV/XSETBV, SYSCALL/SYSRET, CLTS,
 * WBINVD/INVD, far JMP/CALL/RET, LES/LDS/LSS/LFS/LGS; fences and CLFLUSH; and the bridge to the
 * x87/SSE module.
 * Not implemented (#UD): LAR LSL VERR VERW, RDPID, RDRAND, MONITOR/MWAIT, CLAC/STAC, XSAVE*.
 */
#include "vmm/emu/exec.h"
#include "vmm/emu/fpu_sse.h"

void h_in_i(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t v = 0;
    emu_sys_in(cpu, (uint16_t)(in->imm & 0xff), in->osz, &v);
    wreg(cpu, GPR_RAX, v, in->osz);
}

void h_in_dx(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t v = 0;
    emu_sys_in(cpu, (uint16_t)cpu->s.gpr[GPR_RDX], in->osz, &v);
    wreg(cpu, GPR_RAX, v, in->osz);
}

void h_out_i(struct emu_cpu *cpu, const struct insn *in)
{
    emu_sys_out(cpu, (uint16_t)(in->imm & 0xff), in->osz, rreg(cpu, GPR_RAX, in->osz));
}

void h_out_dx(struct emu_cpu *cpu, const struct insn *in)
{
    emu_sys_out(cpu, (uint16_t)cpu->s.gpr[GPR_RDX], in->osz, rreg(cpu, GPR_RAX, in->osz));
}

void h_hlt(struct emu_cpu *cpu, const struct insn *in) { emu_sys_hlt(cpu); }
void h_cli(struct emu_cpu *cpu, const struct insn *in) { emu_sys_cli(cpu); }
void h_sti(struct emu_cpu *cpu, const struct insn *in) { emu_sys_sti(cpu); }
void h_int3(struct emu_cpu *cpu, const struct insn *in) { emu_sys_int(cpu, 3, true); }
void h_int(struct emu_cpu *cpu, const struct insn *in) { emu_sys_int(cpu, (uint8_t)in->imm, false); }
void h_int1(struct emu_cpu *cpu, const struct insn *in) { emu_sys_int(cpu, 1, true); }
/* INTO (outside 64-bit mode): INT 4 if OF is set. */
void h_into(struct emu_cpu *cpu, const struct insn *in)
{
    if (emu_get_rflags(cpu) & RFLAGS_OF) emu_sys_int(cpu, EXC_OF, true);
}
/* BOUND r, m: #BR unless lower <= r <= upper (signed, the operand size each). */
void h_bound(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
    uint64_t o = ea_off(cpu, in);
    int64_t lo = (int64_t)sext(mread(cpu, lin_seg(cpu, in->seg, o), sz), sz);
    int64_t hi = (int64_t)sext(mread(cpu, lin_seg(cpu, in->seg, o + sz), sz), sz);
    int64_t v = (int64_t)sext(rreg(cpu, in->reg, sz), sz);
    if (v < lo || v > hi) emu_raise(cpu, EXC_BR, 0, false);
}
void h_iret(struct emu_cpu *cpu, const struct insn *in) { emu_sys_iret(cpu, in->osz); }
void h_cpuid(struct emu_cpu *cpu, const struct insn *in) { emu_sys_cpuid(cpu); }

void h_rdtsc(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t t = emu_sys_rdtsc(cpu);
    cpu->s.gpr[GPR_RAX] = (uint32_t)t;
    cpu->s.gpr[GPR_RDX] = t >> 32;
}

void h_rdtscp(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t t = emu_sys_rdtsc(cpu);
    cpu->s.gpr[GPR_RAX] = (uint32_t)t;
    cpu->s.gpr[GPR_RDX] = t >> 32;
    cpu->s.gpr[GPR_RCX] = (uint32_t)cpu->s.tsc_aux;
}

void h_rdmsr(struct emu_cpu *cpu, const struct insn *in) { emu_sys_rdmsr(cpu); }
void h_wrmsr(struct emu_cpu *cpu, const struct insn *in) { emu_sys_wrmsr(cpu); }

void h_mov_from_cr(struct emu_cpu *cpu, const struct insn *in) { cpu->s.gpr[in->rm] = emu_sys_mov_from_cr(cpu, in->reg); }
void h_mov_to_cr(struct emu_cpu *cpu, const struct insn *in) { emu_sys_mov_to_cr(cpu, in->reg, cpu->s.gpr[in->rm]); }
void h_mov_from_dr(struct emu_cpu *cpu, const struct insn *in)
{
    if (in->reg > 7) emu_raise_ud(cpu);
    cpu->s.gpr[in->rm] = emu_sys_mov_from_dr(cpu, in->reg);
}
void h_mov_to_dr(struct emu_cpu *cpu, const struct insn *in)
{
    if (in->reg > 7) emu_raise_ud(cpu);
    emu_sys_mov_to_dr(cpu, in->reg, cpu->s.gpr[in->rm]);
}

void h_mov_rm_sreg(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sr = (in->modrm >> 3) & 7;
    if (sr > SEG_GS) emu_raise_ud(cpu);
    uint16_t sel = cpu->s.seg[sr].selector;
    if (in->mod == 3) wreg(cpu, in->rm, sel, in->osz);
    else emu_write16(cpu, ea(cpu, in), sel);
}

void h_mov_sreg_rm(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sr = (in->modrm >> 3) & 7;
    if (sr > SEG_GS || sr == SEG_CS) emu_raise_ud(cpu);
    uint64_t la;
    uint16_t sel = (uint16_t)load_rm(cpu, in, 2, &la);
    emu_sys_load_seg(cpu, (int)sr, sel);
    if (sr == SEG_SS) cpu->s.interrupt_shadow = 1;
}

/* PUSH/POP Sreg: 0F A0/A1 FS, 0F A8/A9 GS; outside 64-bit mode also 06/07 ES, 0E CS (push
 * only), 16/17 SS, 1E/1F DS. */
static unsigned sreg_of(const struct insn *in)
{
    if (in->map == 1) return (in->op & 0xf8) == 0xa0 ? SEG_FS : SEG_GS;
    switch (in->op & 0xf8) {
    case 0x00: return SEG_ES;
    case 0x08: return SEG_CS;
    case 0x10: return SEG_SS;
    default: return SEG_DS;
    }
}

void h_push_seg(struct emu_cpu *cpu, const struct insn *in)
{
    pushsz(cpu, cpu->s.seg[sreg_of(in)].selector, in->osz);
}

void h_pop_seg(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sr = sreg_of(in);
    uint64_t sp = cpu->s.gpr[GPR_RSP];
    uint16_t sel = (uint16_t)mread(cpu, lin_seg(cpu, SEG_SS, sp), in->osz);
    emu_sys_load_seg(cpu, (int)sr, sel);
    cpu->s.gpr[GPR_RSP] = cpu->long64 ? sp + in->osz : stack_add(cpu, sp, in->osz);
}

/* 0F 00: SLDT STR LLDT LTR (VERR/VERW are not decoded: #UD) */
void h_grp6(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sub = (in->modrm >> 3) & 7;
    uint64_t la;
    if (cpu->s.rflags & RFLAGS_VM) emu_raise_ud(cpu); /* not recognized in virtual-8086 mode */
    switch (sub) {
    case 0:
    case 1: {
        if (!(cpu->s.cr0 & CR0_PE)) emu_raise_ud(cpu); /* SLDT, STR: not in real mode */
        uint16_t sel = cpu->s.seg[sub == 0 ? SEG_LDTR : SEG_TR].selector;
        if (in->mod == 3) wreg(cpu, in->rm, sel, in->osz == 2 ? 2 : in->osz);
        else emu_write16(cpu, ea(cpu, in), sel);
        break;
    }
    case 2: emu_sys_lldt(cpu, (uint16_t)load_rm(cpu, in, 2, &la)); break;
    default: emu_sys_ltr(cpu, (uint16_t)load_rm(cpu, in, 2, &la)); break;
    }
}

/* 0F 01 memory forms (and LMSW r16) */
void h_grp7_mem(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sub = (in->modrm >> 3) & 7;
    uint64_t la;
    switch (sub) {
    case 0: emu_sys_sgdt_sidt(cpu, false, ea(cpu, in)); break;
    case 1: emu_sys_sgdt_sidt(cpu, true, ea(cpu, in)); break;
    case 2:
    case 3:
        emu_sys_lgdt_lidt(cpu, sub == 3, ea(cpu, in));
        /* a 16-bit operand size loads a 24-bit base (outside 64-bit mode; real mode's usual form) */
        if (in->osz == 2 && !cpu->long64) (sub == 3 ? &cpu->s.idtr : &cpu->s.gdtr)->base &= 0xffffff;
        break;
    case 4: emu_write16(cpu, ea(cpu, in), emu_sys_smsw(cpu)); break;
    case 6: emu_sys_lmsw(cpu, (uint16_t)load_rm(cpu, in, 2, &la)); break;
    case 7: {
        /* INVLPG of a non-canonical address is a no-op, not a fault */
        uint64_t off = ea_off(cpu, in);
        if (in->seg == SEG_FS || in->seg == SEG_GS) off += cpu->s.seg[in->seg].base;
        emu_sys_invlpg(cpu, off);
        break;
    }
    default: emu_raise_ud(cpu);
    }
}

void h_smsw_r(struct emu_cpu *cpu, const struct insn *in) { wreg(cpu, in->rm, emu_sys_smsw(cpu), in->osz); }
void h_swapgs(struct emu_cpu *cpu, const struct insn *in) { emu_sys_swapgs(cpu); }

void h_xgetbv(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t v = emu_sys_xgetbv(cpu);
    cpu->s.gpr[GPR_RAX] = (uint32_t)v;
    cpu->s.gpr[GPR_RDX] = v >> 32;
}

void h_xsetbv(struct emu_cpu *cpu, const struct insn *in) { emu_sys_xsetbv(cpu); }
void h_syscall(struct emu_cpu *cpu, const struct insn *in) { emu_sys_syscall(cpu); }
void h_sysret(struct emu_cpu *cpu, const struct insn *in) { emu_sys_sysret(cpu, (in->rex & 8) ? 8 : 4); }
void h_clts(struct emu_cpu *cpu, const struct insn *in) { emu_sys_clts(cpu); }
void h_wbinvd(struct emu_cpu *cpu, const struct insn *in) { emu_sys_wbinvd(cpu); }

/* Far pointer m16:16/32/64: offset of the operand size, then the selector. */
static void far_ptr(struct emu_cpu *cpu, const struct insn *in, uint16_t *sel, uint64_t *off)
{
    uint64_t o = ea_off(cpu, in);
    *off = mread(cpu, lin_seg(cpu, in->seg, o), in->osz);
    *sel = emu_read16(cpu, lin_seg(cpu, in->seg, o + in->osz));
}

void h_jmp_far_m(struct emu_cpu *cpu, const struct insn *in)
{
    uint16_t sel;
    uint64_t off;
    far_ptr(cpu, in, &sel, &off);
    emu_sys_far_jmp_call(cpu, sel, off, false, in->osz);
}

void h_call_far_m(struct emu_cpu *cpu, const struct insn *in)
{
    uint16_t sel;
    uint64_t off;
    far_ptr(cpu, in, &sel, &off);
    emu_sys_far_jmp_call(cpu, sel, off, true, in->osz);
}

/* JMP/CALL ptr16:16/32 (outside 64-bit mode): the offset in imm, the selector in imm2. */
void h_jmp_far_i(struct emu_cpu *cpu, const struct insn *in) { emu_sys_far_jmp_call(cpu, in->imm2, in->imm, false, in->osz); }
void h_call_far_i(struct emu_cpu *cpu, const struct insn *in) { emu_sys_far_jmp_call(cpu, in->imm2, in->imm, true, in->osz); }

/* Load a far pointer m16:16/32/64 into a segment register and in->reg: the segment register is
 * loaded (and checked) before the general register is written. */
static void load_far_ptr(struct emu_cpu *cpu, const struct insn *in, int seg)
{
    uint16_t sel;
    uint64_t off;
    far_ptr(cpu, in, &sel, &off);
    emu_sys_load_seg(cpu, seg, sel);
    wreg(cpu, in->reg, off, in->osz);
}

/* LES / LDS r, m16:16/32 (outside 64-bit mode). */
void h_les_lds(struct emu_cpu *cpu, const struct insn *in) { load_far_ptr(cpu, in, in->op == 0xc4 ? SEG_ES : SEG_DS); }
/* LSS / LFS / LGS r, m16:16/32/64 (0F B2, B4, B5; every mode). */
void h_lss_lfs_lgs(struct emu_cpu *cpu, const struct insn *in)
{
    load_far_ptr(cpu, in, in->op == 0xb2 ? SEG_SS : in->op == 0xb4 ? SEG_FS : SEG_GS);
}

void h_retf(struct emu_cpu *cpu, const struct insn *in) { emu_sys_far_ret(cpu, in->osz, 0); }
void h_retf_i(struct emu_cpu *cpu, const struct insn *in) { emu_sys_far_ret(cpu, in->osz, (uint16_t)in->imm); }

void h_fence(struct emu_cpu *cpu, const struct insn *in) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void h_clflush(struct emu_cpu *cpu, const struct insn *in) { (void)ea(cpu, in); }
void h_pause(struct emu_cpu *cpu, const struct insn *in) { __builtin_ia32_pause(); }

/* ---- x87 / MMX / SSE: decoded here, executed by fpu_sse ---- */

static void fpu_read(void *ctx, uint64_t la, void *buf, unsigned len) { emu_read_bytes(ctx, la, buf, len); }
static void fpu_write(void *ctx, uint64_t la, const void *buf, unsigned len) { emu_write_bytes(ctx, la, buf, len); }

/* Raise what the fpu part reported. */
static void fpu_result_raise(struct emu_cpu *cpu, enum fpu_result r)
{
    switch (r) {
    case FPU_OK: return;
    case FPU_NM: emu_raise(cpu, EXC_NM, 0, false);
    case FPU_GP: emu_raise_gp0(cpu);
    case FPU_MF: emu_raise(cpu, EXC_MF, 0, false);
    case FPU_XM:
        if (cpu->s.cr4 & CR4_OSXMMEXCPT) emu_raise(cpu, EXC_XM, 0, false);
        emu_raise_ud(cpu);
    default: emu_raise_ud(cpu);
    }
}

/* WAIT/FWAIT: #NM with CR0.MP and TS set, #MF when an unmasked x87 exception is pending. */
void h_fwait(struct emu_cpu *cpu, const struct insn *in)
{
    struct fpu_env env = {.fx = &cpu->s.fx, .gpr = cpu->s.gpr, .cr0 = cpu->s.cr0, .cr4 = cpu->s.cr4, .ctx = cpu};
    fpu_result_raise(cpu, fpu_wait(&env));
}

void h_fpu(struct emu_cpu *cpu, const struct insn *in)
{
    struct fpu_op op = {
        .map = in->map == 0 ? FPU_MAP_X87 : in->map,
        .opcode = in->op,
        .mandatory = in->mandatory,
        .modrm = in->modrm,
        .rex = in->rex,
        .imm8 = (uint8_t)in->imm,
        .has_mem = in->mod != 3,
        .long64 = true,
        .rip = cpu->insn_rip, /* the x87 FIP */
    };
    if (op.has_mem) op.ea = ea(cpu, in);
    /* Materialize the lazy flags only for the few operations that touch RFLAGS. */
    uint64_t rflags = fpu_op_uses_rflags(&op) ? emu_get_rflags(cpu) : cpu->s.rflags;
    bool written = false;
    struct fpu_env env = {
        .fx = &cpu->s.fx,
        .gpr = cpu->s.gpr,
        .cr0 = cpu->s.cr0,
        .cr4 = cpu->s.cr4,
        .ctx = cpu,
        .read = fpu_read,
        .write = fpu_write,
        .rflags = &rflags,
        .rflags_written = &written,
    };
    fpu_result_raise(cpu, fpu_sse_exec(&op, &env));
    if (written) emu_set_rflags(cpu, rflags);
}
