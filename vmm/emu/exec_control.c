/* exec_control: near control transfers (exec part): Jcc, JMP, CALL, RET (incl. RET imm16),
 * LOOP/LOOPE/LOOPNE and JRCXZ. Far transfers and IRET are in exec_system.c.
 * Targets are checked for canonical form at the branch (#GP(0) with RIP at the branch).
 */
#include "vmm/emu/exec.h"

/* Jcc ends its block: no chaining. One handler per condition code is derived for the decoder
 * to pick (emu_specialize), so each evaluates its condition with constant cc. */
static ALWAYS_INLINE void jcc(struct emu_cpu *cpu, const struct insn *in, unsigned cc)
{
    if (cond(cpu, cc)) jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp);
}
void h_jcc(struct emu_cpu *cpu, const struct insn *in) { jcc(cpu, in, in->op & 15); }
#define JCC(cc) \
    static void f_jcc##cc(struct emu_cpu *cpu, const struct insn *in) { jcc(cpu, in, cc); }
JCC(0) JCC(1) JCC(2) JCC(3) JCC(4) JCC(5) JCC(6) JCC(7)
JCC(8) JCC(9) JCC(10) JCC(11) JCC(12) JCC(13) JCC(14) JCC(15)
const insn_fn emu_jcc[16] = {f_jcc0, f_jcc1, f_jcc2,  f_jcc3,  f_jcc4,  f_jcc5,  f_jcc6,  f_jcc7,
                             f_jcc8, f_jcc9, f_jcc10, f_jcc11, f_jcc12, f_jcc13, f_jcc14, f_jcc15};

void h_jmp_rel(struct emu_cpu *cpu, const struct insn *in) { jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp); }

/* Outside 64-bit mode: push the return EIP (IP) with the operand size, then branch. */
static void call_legacy(struct emu_cpu *cpu, const struct insn *in, uint64_t target)
{
    target = legacy_ip(cpu, target, in->osz);
    pushsz(cpu, cpu->s.rip, in->osz);
    cpu->s.rip = target;
}

void h_call_rel(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t target = cpu->s.rip + (uint64_t)in->disp;
    if (unlikely(!cpu->long64)) return call_legacy(cpu, in, target);
    if (unlikely(!emu_canonical(target))) emu_raise_gp0(cpu);
    push64(cpu, cpu->s.rip);
    cpu->s.rip = target;
}

void h_jmp_rm(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t la, t = load_rm(cpu, in, in->osz, &la); /* 8 in 64-bit mode */
    jump_to(cpu, in, t);
}

void h_call_rm(struct emu_cpu *cpu, const struct insn *in)
{
    if (unlikely(!cpu->long64)) {
        uint64_t la, t = load_rm(cpu, in, in->osz, &la);
        return call_legacy(cpu, in, t);
    }
    uint64_t la, t = load_rm(cpu, in, 8, &la);
    if (unlikely(!emu_canonical(t))) emu_raise_gp0(cpu);
    push64(cpu, cpu->s.rip);
    cpu->s.rip = t;
}

static inline void ret_common(struct emu_cpu *cpu, const struct insn *in, uint64_t extra)
{
    if (unlikely(!cpu->long64)) {
        uint64_t sp = cpu->s.gpr[GPR_RSP];
        uint64_t t = legacy_ip(cpu, mread(cpu, lin_seg(cpu, SEG_SS, sp), in->osz), in->osz);
        cpu->s.gpr[GPR_RSP] = stack_add(cpu, sp, in->osz + extra);
        cpu->s.rip = t;
        return;
    }
    uint64_t sp = cpu->s.gpr[GPR_RSP];
    uint64_t t = emu_read64(cpu, lin_seg(cpu, SEG_SS, sp));
    if (unlikely(!emu_canonical(t))) emu_raise_gp0(cpu);
    cpu->s.gpr[GPR_RSP] = sp + 8 + extra;
    cpu->s.rip = t;
}

void h_ret(struct emu_cpu *cpu, const struct insn *in) { ret_common(cpu, in, 0); }
void h_ret_i(struct emu_cpu *cpu, const struct insn *in) { ret_common(cpu, in, in->imm & 0xffff); }

/* The count register is RCX, ECX or CX by the address size. */
static inline uint64_t dec_count(struct emu_cpu *cpu, const struct insn *in)
{
    if (in->asz == 8) return --cpu->s.gpr[GPR_RCX];
    if (in->asz == 2) {
        uint16_t c = (uint16_t)cpu->s.gpr[GPR_RCX] - 1;
        wreg(cpu, GPR_RCX, c, 2);
        return c;
    }
    uint32_t c = (uint32_t)cpu->s.gpr[GPR_RCX] - 1;
    cpu->s.gpr[GPR_RCX] = c;
    return c;
}

void h_loop(struct emu_cpu *cpu, const struct insn *in)
{
    if (dec_count(cpu, in)) jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp);
}

void h_loope(struct emu_cpu *cpu, const struct insn *in)
{
    if (dec_count(cpu, in) && emu_cond(cpu, 4)) jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp);
}

void h_loopne(struct emu_cpu *cpu, const struct insn *in)
{
    if (dec_count(cpu, in) && emu_cond(cpu, 5)) jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp);
}

void h_jrcxz(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t c = cpu->s.gpr[GPR_RCX] & szmask(in->asz);
    if (c == 0) jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp);
}
