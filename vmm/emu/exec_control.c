/* exec_control: near control transfers (exec part): Jcc, JMP, CALL, RET (incl. RET imm16),
 * LOOP/LOOPE/LOOPNE and JRCXZ. Far transfers and IRET are in exec_system.c.
 * Targets are checked for canonical form at the branch (#GP(0) with RIP at the branch). Each
 * is written once with a constant `legacy` and instantiated twice: the 64-bit-mode handler and
 * the form for code outside 64-bit mode (EIP/IP within CS.limit, return addresses of the operand
 * size), which emu_legacy_form gives the decoder.
 */
#include "vmm/emu/exec.h"

/* h_name (64-bit mode) and h_name_legacy from name_sem(cpu, in, legacy). */
#define BOTH_MODES(name)                                                                           \
    void h_##name(struct emu_cpu *cpu, const struct insn *in) { name##_sem(cpu, in, false); }       \
    static void h_##name##_legacy(struct emu_cpu *cpu, const struct insn *in) { name##_sem(cpu, in, true); }

/* Jcc ends its block: no chaining. One handler per condition code is derived for the decoder
 * to pick (emu_specialize), so each evaluates its condition with constant cc. */
static ALWAYS_INLINE void jcc(struct emu_cpu *cpu, const struct insn *in, unsigned cc, bool legacy)
{
    if (cond(cpu, cc)) jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp, legacy);
}
static ALWAYS_INLINE void jcc_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy) { jcc(cpu, in, in->op & 15, legacy); }
BOTH_MODES(jcc)
#define JCC(cc) \
    static void f_jcc##cc(struct emu_cpu *cpu, const struct insn *in) { jcc(cpu, in, cc, false); }
JCC(0) JCC(1) JCC(2) JCC(3) JCC(4) JCC(5) JCC(6) JCC(7)
JCC(8) JCC(9) JCC(10) JCC(11) JCC(12) JCC(13) JCC(14) JCC(15)
const insn_fn emu_jcc[16] = {f_jcc0, f_jcc1, f_jcc2,  f_jcc3,  f_jcc4,  f_jcc5,  f_jcc6,  f_jcc7,
                             f_jcc8, f_jcc9, f_jcc10, f_jcc11, f_jcc12, f_jcc13, f_jcc14, f_jcc15};

static ALWAYS_INLINE void jmp_rel_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy)
{
    jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp, legacy);
}
BOTH_MODES(jmp_rel)

/* CALL: the return address is pushed after the target is checked. */
static ALWAYS_INLINE void call_to(struct emu_cpu *cpu, const struct insn *in, uint64_t target, bool legacy)
{
    if (legacy) {
        target = legacy_ip(cpu, target, in->osz);
        pushsz(cpu, cpu->s.rip, in->osz);
    } else {
        if (unlikely(!emu_canonical(target))) emu_raise_gp0(cpu);
        push64(cpu, cpu->s.rip);
    }
    cpu->s.rip = target;
}
static ALWAYS_INLINE void call_rel_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy)
{
    call_to(cpu, in, cpu->s.rip + (uint64_t)in->disp, legacy);
}
BOTH_MODES(call_rel)

/* the operand size is 8 in 64-bit mode (the decoder sets it) */
static ALWAYS_INLINE void jmp_rm_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy)
{
    uint64_t la, t = load_rm(cpu, in, in->osz, &la);
    jump_to(cpu, in, t, legacy);
}
BOTH_MODES(jmp_rm)

static ALWAYS_INLINE void call_rm_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy)
{
    uint64_t la, t = load_rm(cpu, in, in->osz, &la);
    call_to(cpu, in, t, legacy);
}
BOTH_MODES(call_rm)

static ALWAYS_INLINE void ret_common(struct emu_cpu *cpu, const struct insn *in, uint64_t extra, bool legacy)
{
    uint64_t sp = cpu->s.gpr[GPR_RSP];
    if (legacy) {
        uint64_t t = legacy_ip(cpu, mread(cpu, lin_seg(cpu, SEG_SS, sp), in->osz), in->osz);
        cpu->s.gpr[GPR_RSP] = stack_add(cpu, sp, in->osz + extra);
        cpu->s.rip = t;
        return;
    }
    uint64_t t = emu_read64(cpu, lin_seg64(cpu, SEG_SS, sp));
    if (unlikely(!emu_canonical(t))) emu_raise_gp0(cpu);
    cpu->s.gpr[GPR_RSP] = sp + 8 + extra;
    cpu->s.rip = t;
}
static ALWAYS_INLINE void ret_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy) { ret_common(cpu, in, 0, legacy); }
static ALWAYS_INLINE void ret_i_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy) { ret_common(cpu, in, in->imm & 0xffff, legacy); }
BOTH_MODES(ret)
BOTH_MODES(ret_i)

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

static ALWAYS_INLINE void loop_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy)
{
    if (dec_count(cpu, in)) jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp, legacy);
}
static ALWAYS_INLINE void loope_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy)
{
    if (dec_count(cpu, in) && emu_cond(cpu, 4)) jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp, legacy);
}
static ALWAYS_INLINE void loopne_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy)
{
    if (dec_count(cpu, in) && emu_cond(cpu, 5)) jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp, legacy);
}
static ALWAYS_INLINE void jrcxz_sem(struct emu_cpu *cpu, const struct insn *in, bool legacy)
{
    if ((cpu->s.gpr[GPR_RCX] & szmask(in->asz)) == 0) jump_to(cpu, in, cpu->s.rip + (uint64_t)in->disp, legacy);
}
BOTH_MODES(loop)
BOTH_MODES(loope)
BOTH_MODES(loopne)
BOTH_MODES(jrcxz)

insn_fn emu_legacy_form(insn_fn fn)
{
    static const insn_fn map[][2] = {
        {h_jcc, h_jcc_legacy},       {h_jmp_rel, h_jmp_rel_legacy}, {h_call_rel, h_call_rel_legacy},
        {h_jmp_rm, h_jmp_rm_legacy}, {h_call_rm, h_call_rm_legacy}, {h_ret, h_ret_legacy},
        {h_ret_i, h_ret_i_legacy},   {h_loop, h_loop_legacy},       {h_loope, h_loope_legacy},
        {h_loopne, h_loopne_legacy}, {h_jrcxz, h_jrcxz_legacy},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (map[i][0] == fn) return map[i][1];
    return fn;
}
