/* exec: private interface of the emulator's exec part (decoder, instruction handlers, and the
 * dispatch state the decoded-block cache shares with them). Nothing outside
 * vmm/emu/{decode,exec_*,icache}.c uses it. Layer: above cpu, flags, mmu, except and sys.
 *
 * Execution model: a decoded instruction (struct insn) carries its handler. The dispatch loop
 * sets cpu->insn_rip to the instruction's address, advances cpu->s.rip past it and calls
 * in->fn(cpu, in); relative branches therefore add their displacement to cpu->s.rip.
 *
 * Modes: 64-bit mode, compatibility mode (16- and 32-bit code segments under a 64-bit kernel),
 * legacy protected mode with or without paging, and real mode (realmode.h): the helpers below
 * add segment bases, check limits (the cached limits in real mode, which is what unreal mode
 * relies on) and wrap addresses when !long64.
 */
#ifndef VMD_EMU_EXEC_H
#define VMD_EMU_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "vmm/emu/cpu.h"
#include "vmm/emu/except.h"
#include "vmm/emu/flags.h"
#include "vmm/emu/mmu.h"
#include "vmm/emu/sys.h"

struct insn;
typedef void (*insn_fn)(struct emu_cpu *cpu, const struct insn *in);

#define NOREG 0xff
#define RIPREL 0xfe /* base register value meaning "RIP-relative" */

/* insn.flags */
#define IF_END_BLOCK 0x01 /* control transfer or system instruction: the block ends after it */
#define IF_COND_BRANCH 0x02

struct insn {
    insn_fn fn;
    uint64_t imm;   /* immediate, sign-extended to 64 bits where the encoding says so */
    int64_t disp;   /* ModRM displacement, or moffs / branch displacement */
    uint16_t imm2;  /* ENTER's second immediate */
    uint8_t len;
    uint8_t op;     /* opcode byte within its map */
    uint8_t map;    /* 0: one-byte map, 1: 0F, 2: 0F38, 3: 0F3A */
    uint8_t modrm;
    uint8_t mod;    /* 3: register operand */
    uint8_t reg;    /* ModRM.reg | REX.R (byte-register encoding for byte operands) */
    uint8_t rm;     /* ModRM.rm | REX.B  (byte-register encoding for byte operands) */
    uint8_t base, index, scale;
    uint8_t osz;    /* operand size in bytes: 1, 2, 4, 8 */
    uint8_t asz;    /* address size: 4 or 8 */
    uint8_t seg;    /* effective segment of the memory operand */
    uint8_t rep;    /* 0, 0xF2 or 0xF3 */
    uint8_t lock;
    uint8_t rex;
    uint8_t pfx66;
    uint8_t flags;  /* IF_* */
    uint8_t mandatory; /* SSE mandatory prefix (fpu_op.mandatory) */
};

/* Byte registers: 0..15 are the low bytes of the GPRs, 16..19 are AH CH DH BH. */
#define REG8_HIGH 16

/* ---- decoder (decode.c) ---- */
#define DECODE_NEED_MORE (-1)
/* Decode one instruction from bytes[0..avail). Returns its length, or DECODE_NEED_MORE when
 * avail < 15 and the instruction continues past it. An invalid encoding still decodes: its
 * handler raises #UD (or #GP for an over-long instruction). */
int emu_decode(const uint8_t *bytes, unsigned avail, unsigned mode, struct insn *in);
/* The decoder mode for the CPU's current state: 8 in 64-bit mode, 4 or 2 for a 32- or 16-bit code
 * segment in compatibility mode, legacy protected mode and real mode. Real mode takes its default
 * size from the cached CS.D bit like the other modes (as the processor and QEMU do): 16-bit
 * after reset or after CS was reloaded from a 16-bit descriptor, 32-bit if code left protected
 * mode with a 32-bit CS. (Blocks decoded in one mode are never followed in another: CS changes
 * end blocks, and entering or leaving long mode flushes the TLB that block chaining checks.
 * Mode 0, everything #UD, is left for the decoder's callers that want it.) */
static inline unsigned emu_decode_mode(const struct emu_cpu *cpu)
{
    if (cpu->long64) return 8;
    return cpu->code32 ? 4 : 2;
}

/* Dispatch state of the running block, the first member of the (private) struct emu_icache:
 * pos is the next instruction to run, left how many more may run in this block (budget and
 * block end); emu_code_written() zeroes left (and sets abort) to leave the block early. */
struct exec_hot {
    const struct insn *pos;
    uint32_t left;
    uint32_t abort;
    /* Work beyond one instruction per instruction, charged to the run loop's budget in
     * instruction units (a REP string chunk), so that the loop still returns to the vCPU's
     * run loop (device timers, stop requests) in bounded time. */
    uint32_t extra;
};
#define EXEC_HOT(cpu) ((struct exec_hot *)(void *)(cpu)->icache)

/* Threaded dispatch: a handler that never ends its block ends with chain_next(cpu), which runs
 * the next instruction of the block from a tail call (one indirect jump per handler, which the
 * host predicts far better than one shared call site). */
static inline __attribute__((always_inline)) void chain_next(struct emu_cpu *cpu)
{
    struct exec_hot *h = EXEC_HOT(cpu);
    if (likely(h->left)) {
        const struct insn *nx = h->pos;
        h->left--;
        h->pos = nx + 1;
        cpu->insn_rip = cpu->s.rip;
        cpu->s.rip += nx->len;
        nx->fn(cpu, nx);
    }
}

/* Handlers. HANDLER(h_name) { body } defines an instruction's semantics once (the body, which
 * may `return` early) and the handler that runs it: the dispatcher's part, chaining to the next
 * instruction of the block, is added here and nowhere else. Specialized forms of the hottest
 * instructions are derived from the same semantics (always_inline functions called with constant
 * operand sizes and forms) by SPECIALIZED(f_name, call), and picked at decode time by
 * emu_specialize (exec_fast.c). Handlers that transfer control or raise never chain. */
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define HANDLER(name)                                                                              \
    static ALWAYS_INLINE void name##_semantics(struct emu_cpu *cpu, const struct insn *in);         \
    void name(struct emu_cpu *cpu, const struct insn *in)                                          \
    {                                                                                              \
        name##_semantics(cpu, in);                                                                 \
        chain_next(cpu);                                                                           \
    }                                                                                              \
    static ALWAYS_INLINE void name##_semantics(struct emu_cpu *cpu, const struct insn *in)
#define SPECIALIZED(name, call)                                                                    \
    static void name(struct emu_cpu *cpu, const struct insn *in)                                   \
    {                                                                                              \
        call;                                                                                      \
        chain_next(cpu);                                                                           \
    }

/* The four specialized forms of semantics sem(cpu, in, [args,] size, form) for 32- and 64-bit
 * operands with a register or memory r/m, and their table name[r/m: 0 register, 1 memory][0:
 * 32-bit, 1: 64-bit]. */
#define SPECIALIZED_RM(name, sem, ...)                                                             \
    SPECIALIZED(name##_reg32, sem(cpu, in, ##__VA_ARGS__, 4, OPND_REG))                            \
    SPECIALIZED(name##_reg64, sem(cpu, in, ##__VA_ARGS__, 8, OPND_REG))                            \
    SPECIALIZED(name##_mem32, sem(cpu, in, ##__VA_ARGS__, 4, OPND_MEM))                            \
    SPECIALIZED(name##_mem64, sem(cpu, in, ##__VA_ARGS__, 8, OPND_MEM))                            \
    static const insn_fn name[2][2] = {{name##_reg32, name##_reg64}, {name##_mem32, name##_mem64}};

/* exec_fast.c: a specialized handler for `in`, or NULL (keep in->fn) */
insn_fn emu_specialize(const struct insn *in);
/* Specialized forms, defined next to their generic handlers from the same semantics.
 * [op 0..7][r/m: 0 register, 1 memory][0: 32-bit, 1: 64-bit] (exec_alu.c) */
extern const insn_fn (*const emu_alu_rm_r[8])[2], (*const emu_alu_r_rm[8])[2], (*const emu_alu_rm_i[8])[2];
extern const insn_fn emu_test_rr[3]; /* 8-, 32-, 64-bit */
extern const insn_fn emu_test_ri[2]; /* 32-, 64-bit */
extern const insn_fn emu_incdec_r[2][2]; /* [0 INC, 1 DEC][32-, 64-bit] */
/* [r/m: 0 register, 1 memory][0: 32-bit, 1: 64-bit] (exec_move.c) */
extern const insn_fn (*const emu_mov_rm_r)[2], (*const emu_mov_r_rm)[2], (*const emu_mov_rm_i)[2];
extern const insn_fn emu_mov_r_i[2], emu_lea[2]; /* 32-, 64-bit */
extern const insn_fn emu_movzx[2][2];            /* [byte, word source][r/m: register, memory] */
extern const insn_fn emu_movsxd64[2];            /* [r/m: register, memory] */
extern const insn_fn emu_push_r64, emu_pop_r64;
extern const insn_fn emu_cmov_r[2];              /* register source: 32-, 64-bit */
/* exec_alu.c: group 2 by an immediate count on a register [op][32-, 64-bit] (ROL ROR SHL SHR
 * SAR; NULL for the others), IMUL r64, r/m64 [register, memory] */
extern const insn_fn emu_shift_i_r[8][2], emu_imul_r_rm64[2];
extern const insn_fn emu_jcc[16];                /* exec_control.c: one per condition code */
/* exec_control.c: the form of a near branch for code outside 64-bit mode (EIP, CS.limit, 4-byte
 * return addresses), or fn itself. The decoder picks it at decode time. */
insn_fn emu_legacy_form(insn_fn fn);

/* ---- operand helpers (the operand-size masks and the lazy flags: cpu.h, flags.h) ---- */
static inline uint8_t *reg8p(struct emu_cpu *cpu, unsigned r)
{
    return r < REG8_HIGH ? (uint8_t *)&cpu->s.gpr[r] : (uint8_t *)&cpu->s.gpr[r - REG8_HIGH] + 1;
}
static inline __attribute__((always_inline)) uint64_t rreg(struct emu_cpu *cpu, unsigned r, unsigned size)
{
    switch (size) {
    case 1: return *reg8p(cpu, r);
    case 2: return (uint16_t)cpu->s.gpr[r];
    case 4: return (uint32_t)cpu->s.gpr[r];
    default: return cpu->s.gpr[r];
    }
}
static inline __attribute__((always_inline)) void wreg(struct emu_cpu *cpu, unsigned r, uint64_t v, unsigned size)
{
    switch (size) {
    case 1: *reg8p(cpu, r) = (uint8_t)v; break;
    case 2: cpu->s.gpr[r] = (cpu->s.gpr[r] & ~0xffffULL) | (uint16_t)v; break;
    case 4: cpu->s.gpr[r] = (uint32_t)v; break;
    default: cpu->s.gpr[r] = v; break;
    }
}

/* Effective address (offset within the segment) of the ModRM memory operand. */
static inline __attribute__((always_inline)) uint64_t ea_off(const struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t a = (uint64_t)in->disp;
    if (in->base != NOREG) a += in->base == RIPREL ? cpu->s.rip : cpu->s.gpr[in->base];
    if (in->index != NOREG) a += cpu->s.gpr[in->index] << in->scale;
    if (in->asz != 8) a = in->asz == 4 ? (uint32_t)a : (uint16_t)a;
    return a;
}
/* 64-bit mode: FS/GS add their base; every linear address must be canonical. */
static inline __attribute__((always_inline)) uint64_t lin_seg64(struct emu_cpu *cpu, unsigned seg, uint64_t off)
{
    if (seg == SEG_FS || seg == SEG_GS) off += cpu->s.seg[seg].base;
    if (unlikely(!emu_canonical(off))) emu_raise(cpu, seg == SEG_SS ? EXC_SS : EXC_GP, 0, true);
    return off;
}
/* Any mode. Compatibility mode: the segment's base and limit (emu_seg_linear; the access is
 * checked as a read), wrapping at 4 GiB. */
static inline __attribute__((always_inline)) uint64_t lin_seg(struct emu_cpu *cpu, unsigned seg, uint64_t off)
{
    if (unlikely(!cpu->long64)) return emu_seg_linear(cpu, (int)seg, off, 1, ACC_READ);
    return lin_seg64(cpu, seg, off);
}
/* The linear address of the ModRM memory operand. The address size tells the modes apart at no
 * cost in 64-bit mode: only a 67-prefixed 64-bit instruction also takes the narrow path. */
static inline __attribute__((always_inline)) uint64_t ea(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t a = (uint64_t)in->disp;
    if (in->base != NOREG) a += in->base == RIPREL ? cpu->s.rip : cpu->s.gpr[in->base];
    if (in->index != NOREG) a += cpu->s.gpr[in->index] << in->scale;
    if (unlikely(in->asz != 8)) {
        a = in->asz == 4 ? (uint32_t)a : (uint16_t)a;
        if (!cpu->long64) return emu_seg_linear(cpu, in->seg, a, 1, ACC_READ);
    }
    return lin_seg64(cpu, in->seg, a);
}

static inline __attribute__((always_inline)) uint64_t mread(struct emu_cpu *cpu, uint64_t la, unsigned size)
{
    switch (size) {
    case 1: return emu_read8(cpu, la);
    case 2: return emu_read16(cpu, la);
    case 4: return emu_read32(cpu, la);
    default: return emu_read64(cpu, la);
    }
}
static inline __attribute__((always_inline)) void mwrite(struct emu_cpu *cpu, uint64_t la, uint64_t v, unsigned size)
{
    switch (size) {
    case 1: emu_write8(cpu, la, (uint8_t)v); break;
    case 2: emu_write16(cpu, la, (uint16_t)v); break;
    case 4: emu_write32(cpu, la, (uint32_t)v); break;
    default: emu_write64(cpu, la, v); break;
    }
}

/* The r/m operand: register or memory. For a memory read-modify-write, *la keeps the address. */
static inline __attribute__((always_inline)) uint64_t load_rm(struct emu_cpu *cpu, const struct insn *in, unsigned size, uint64_t *la)
{
    if (in->mod == 3) return rreg(cpu, in->rm, size);
    *la = ea(cpu, in);
    return mread(cpu, *la, size);
}
static inline __attribute__((always_inline)) void store_rm(struct emu_cpu *cpu, const struct insn *in, unsigned size, uint64_t la, uint64_t v)
{
    if (in->mod == 3) wreg(cpu, in->rm, v, size);
    else mwrite(cpu, la, v, size);
}
/* The r/m operand when the form is known: OPND_REG or OPND_MEM in a specialized handler (the
 * ModRM mode test then compiles away), OPND_ANY in the generic one. */
enum opnd_form { OPND_ANY, OPND_REG, OPND_MEM };
static inline __attribute__((always_inline)) bool rm_is_reg(const struct insn *in, enum opnd_form form)
{
    return form == OPND_ANY ? in->mod == 3 : form == OPND_REG;
}
static inline __attribute__((always_inline)) uint64_t load_rm_as(struct emu_cpu *cpu, const struct insn *in, unsigned size,
                                                               enum opnd_form form, uint64_t *la)
{
    if (rm_is_reg(in, form)) return rreg(cpu, in->rm, size);
    *la = ea(cpu, in);
    return mread(cpu, *la, size);
}
static inline __attribute__((always_inline)) void store_rm_as(struct emu_cpu *cpu, const struct insn *in, unsigned size,
                                                            enum opnd_form form, uint64_t la, uint64_t v)
{
    if (rm_is_reg(in, form)) wreg(cpu, in->rm, v, size);
    else mwrite(cpu, la, v, size);
}
static inline __attribute__((always_inline)) void store_rm_new(struct emu_cpu *cpu, const struct insn *in, unsigned size, uint64_t v)
{
    if (in->mod == 3) wreg(cpu, in->rm, v, size);
    else mwrite(cpu, ea(cpu, in), v, size);
}

/* 64-bit mode stack (SS base 0; the only mode with 8-byte stack operations). The store happens before RSP changes, so a fault leaves
 * RSP intact. */
static inline __attribute__((always_inline)) void push64(struct emu_cpu *cpu, uint64_t v)
{
    uint64_t sp = cpu->s.gpr[GPR_RSP] - 8;
    emu_write64(cpu, lin_seg64(cpu, SEG_SS, sp), v);
    cpu->s.gpr[GPR_RSP] = sp;
}
static inline __attribute__((always_inline)) uint64_t pop64(struct emu_cpu *cpu)
{
    uint64_t sp = cpu->s.gpr[GPR_RSP];
    uint64_t v = emu_read64(cpu, lin_seg64(cpu, SEG_SS, sp));
    cpu->s.gpr[GPR_RSP] = sp + 8;
    return v;
}
/* Outside 64-bit mode: sp + n within the stack's size (SS.B set: ESP, else SP). */
static inline uint64_t stack_add(const struct emu_cpu *cpu, uint64_t sp, uint64_t n)
{
    if (cpu->s.seg[SEG_SS].db) return (uint32_t)(sp + n);
    return (sp & ~0xffffULL) | (uint16_t)(sp + n);
}
static inline __attribute__((always_inline)) void pushsz(struct emu_cpu *cpu, uint64_t v, unsigned size)
{
    if (size == 8) {
        push64(cpu, v);
        return;
    }
    uint64_t sp = cpu->s.gpr[GPR_RSP] - size;
    if (unlikely(!cpu->long64)) sp = stack_add(cpu, cpu->s.gpr[GPR_RSP], -(uint64_t)size);
    mwrite(cpu, lin_seg(cpu, SEG_SS, sp), v, size);
    cpu->s.gpr[GPR_RSP] = sp;
}
static inline __attribute__((always_inline)) uint64_t popsz(struct emu_cpu *cpu, unsigned size)
{
    if (size == 8) return pop64(cpu);
    uint64_t sp = cpu->s.gpr[GPR_RSP];
    uint64_t v = mread(cpu, lin_seg(cpu, SEG_SS, sp), size);
    cpu->s.gpr[GPR_RSP] = likely(cpu->long64) ? sp + size : stack_add(cpu, sp, size);
    return v;
}

/* Branch target outside 64-bit mode: EIP (IP for a 16-bit operand size) within the CS limit. */
static inline uint64_t legacy_ip(struct emu_cpu *cpu, uint64_t target, unsigned osz)
{
    target &= osz == 2 ? 0xffffULL : 0xffffffffULL;
    if (unlikely(target > cpu->s.seg[SEG_CS].limit)) emu_raise_gp0(cpu);
    return target;
}
/* Branch target: #GP(0) at the branch if non-canonical (64-bit mode) or beyond CS.limit (the
 * `legacy` forms of the near branches, which the decoder picks outside 64-bit mode). */
static inline __attribute__((always_inline)) void jump_to(struct emu_cpu *cpu, const struct insn *in,
                                                          uint64_t target, bool legacy)
{
    if (legacy) target = legacy_ip(cpu, target, in->osz);
    else if (unlikely(!emu_canonical(target))) emu_raise_gp0(cpu);
    cpu->s.rip = target;
}

/* ---- handlers, by family ---- */
#define H(name) void name(struct emu_cpu *cpu, const struct insn *in)
/* common */
H(h_ud); H(h_gp0); H(h_nop);
/* exec_alu.c */
H(h_add_rm_r); H(h_or_rm_r); H(h_adc_rm_r); H(h_sbb_rm_r); H(h_and_rm_r); H(h_sub_rm_r); H(h_xor_rm_r); H(h_cmp_rm_r);
H(h_add_r_rm); H(h_or_r_rm); H(h_adc_r_rm); H(h_sbb_r_rm); H(h_and_r_rm); H(h_sub_r_rm); H(h_xor_r_rm); H(h_cmp_r_rm);
H(h_add_rm_i); H(h_or_rm_i); H(h_adc_rm_i); H(h_sbb_rm_i); H(h_and_rm_i); H(h_sub_rm_i); H(h_xor_rm_i); H(h_cmp_rm_i);
H(h_test_rm_r); H(h_test_rm_i);
H(h_inc); H(h_dec); H(h_not); H(h_neg);
H(h_mul1); H(h_imul1); H(h_div); H(h_idiv); H(h_imul_r_rm); H(h_imul_r_rm_i);
H(h_shift_1); H(h_shift_cl); H(h_shift_i);
H(h_shld_i); H(h_shld_cl); H(h_shrd_i); H(h_shrd_cl);
H(h_cbw); H(h_cwd);
H(h_lahf); H(h_sahf); H(h_clc); H(h_stc); H(h_cmc); H(h_cld); H(h_std);
H(h_daa); H(h_das); H(h_aaa); H(h_aas); H(h_aam); H(h_aad); H(h_salc); H(h_arpl); /* not in 64-bit mode */
/* exec_move.c */
H(h_mov_rm_r); H(h_mov_r_rm); H(h_mov_rm_i); H(h_mov_r_i); H(h_mov_a_moffs); H(h_mov_moffs_a);
H(h_movzx); H(h_movsx); H(h_movsxd); H(h_lea); H(h_xchg_rm_r); H(h_xchg_a_r);
H(h_cmpxchg); H(h_cmpxchg8b16b); H(h_xadd); H(h_bswap); H(h_movnti); H(h_movbe);
H(h_push_r); H(h_pop_r); H(h_push_i); H(h_push_rm); H(h_pop_rm); H(h_pusha); H(h_popa);
H(h_pushf); H(h_popf); H(h_enter); H(h_leave); H(h_xlat); H(h_cmov); H(h_setcc);
/* exec_control.c */
H(h_jcc); H(h_jmp_rel); H(h_call_rel); H(h_jmp_rm); H(h_call_rm); H(h_ret); H(h_ret_i);
H(h_loop); H(h_loope); H(h_loopne); H(h_jrcxz);
/* exec_bits.c */
H(h_bt_rm_r); H(h_bt_rm_i); H(h_bsf); H(h_bsr); H(h_tzcnt); H(h_lzcnt); H(h_popcnt);
/* exec_string.c */
H(h_movs); H(h_stos); H(h_lods); H(h_scas); H(h_cmps); H(h_ins); H(h_outs);
/* exec_system.c */
H(h_in_i); H(h_in_dx); H(h_out_i); H(h_out_dx);
H(h_hlt); H(h_cli); H(h_sti); H(h_int3); H(h_int); H(h_int1); H(h_iret);
H(h_cpuid); H(h_rdtsc); H(h_rdtscp); H(h_rdmsr); H(h_wrmsr);
H(h_mov_from_cr); H(h_mov_to_cr); H(h_mov_from_dr); H(h_mov_to_dr);
H(h_mov_rm_sreg); H(h_mov_sreg_rm); H(h_push_seg); H(h_pop_seg);
H(h_grp6); H(h_grp7_mem); H(h_swapgs); H(h_xgetbv); H(h_xsetbv); H(h_smsw_r);
H(h_syscall); H(h_sysret); H(h_clts); H(h_wbinvd); H(h_jmp_far_m); H(h_call_far_m); H(h_retf); H(h_retf_i);
H(h_into); H(h_bound); H(h_jmp_far_i); H(h_call_far_i); H(h_les_lds); /* not in 64-bit mode */
H(h_lss_lfs_lgs);
H(h_fence); H(h_clflush); H(h_fpu); H(h_fwait); H(h_rdpid); H(h_pause);
#undef H

#endif
