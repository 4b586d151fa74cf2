/* exec_fast: specialized handlers for the hottest instruction forms (exec part), split by
 * register and memory operands so no operand-size or ModRM-mode switch runs at execution time,
 * and emu_specialize(), which picks one at decode time. The ALU, TEST and INC/DEC forms are
 * derived in exec_alu.c, the MOV, LEA, MOVZX/MOVSXD and PUSH/POP forms in exec_move.c, from the
 * same semantics as their generic handlers (SPECIALIZED); the shift-by-immediate, rotate, IMUL
 * and CMOV forms here are still written out (to be derived the same way), and Jcc evaluates
 * common conditions inline.
 */
#include "vmm/emu/exec.h"

#define GPR(r) cpu->s.gpr[r]

/* write a 32- or 64-bit register (32-bit writes zero-extend) */
#define WR32(r, v) (GPR(r) = (uint32_t)(v))
#define WR64(r, v) (GPR(r) = (uint64_t)(v))

/* ---- shifts ---- */

/* SHL/SHR/SAR reg, imm8 (count already masked at decode time, non-zero) */
static void f_shl64(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t a = GPR(in->rm), c = in->imm, r = a << c;
    WR64(in->rm, r);
    setf(cpu, LF_SHL, 8, r, a, c);
    chain_next(cpu);
}
static void f_shr64(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t a = GPR(in->rm), c = in->imm, r = a >> c;
    WR64(in->rm, r);
    setf(cpu, LF_SHR, 8, r, a, c);
    chain_next(cpu);
}
static void f_sar64(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t a = GPR(in->rm), c = in->imm, r = (uint64_t)((int64_t)a >> c);
    WR64(in->rm, r);
    setf(cpu, LF_SAR, 8, r, a, c);
    chain_next(cpu);
}
static void f_shl32(struct emu_cpu *cpu, const struct insn *in)
{
    uint32_t a = (uint32_t)GPR(in->rm), r = a << in->imm;
    WR32(in->rm, r);
    setf(cpu, LF_SHL, 4, r, a, in->imm);
    chain_next(cpu);
}
static void f_shr32(struct emu_cpu *cpu, const struct insn *in)
{
    uint32_t a = (uint32_t)GPR(in->rm), r = a >> in->imm;
    WR32(in->rm, r);
    setf(cpu, LF_SHR, 4, r, a, in->imm);
    chain_next(cpu);
}
static void f_sar32(struct emu_cpu *cpu, const struct insn *in)
{
    uint32_t a = (uint32_t)GPR(in->rm), r = (uint32_t)((int32_t)a >> in->imm);
    WR32(in->rm, r);
    setf(cpu, LF_SAR, 4, r, a, in->imm);
    chain_next(cpu);
}

/* ---- Jcc per condition code, with the CMP/SUB and logic-op cases inline ---- */

static inline __attribute__((always_inline)) bool cond_inline(const struct emu_cpu *cpu, unsigned cc)
{
    const struct emu_lazy_flags *lf = &cpu->lf;
    if (lf->op == LF_SUB && lf->size == 8) {
        uint64_t a = lf->src1, b = lf->src2;
        switch (cc) {
        case 2: return a < b;
        case 3: return a >= b;
        case 4: return a == b;
        case 5: return a != b;
        case 6: return a <= b;
        case 7: return a > b;
        case 12: return (int64_t)a < (int64_t)b;
        case 13: return (int64_t)a >= (int64_t)b;
        case 14: return (int64_t)a <= (int64_t)b;
        case 15: return (int64_t)a > (int64_t)b;
        default: break;
        }
    }
    if (cc == 4 && lf->op != LF_RAW) return lf->res == 0;
    if (cc == 5 && lf->op != LF_RAW) return lf->res != 0;
    return emu_cond(cpu, cc);
}

#define JCC(cc)                                                                          \
    static void f_jcc##cc(struct emu_cpu *cpu, const struct insn *in)                    \
    {                                                                                    \
        if (cond_inline(cpu, cc)) jump_to(cpu, cpu->s.rip + (uint64_t)in->disp);         \
    }
JCC(0) JCC(1) JCC(2) JCC(3) JCC(4) JCC(5) JCC(6) JCC(7)
JCC(8) JCC(9) JCC(10) JCC(11) JCC(12) JCC(13) JCC(14) JCC(15)
static const insn_fn t_jcc[16] = {f_jcc0, f_jcc1, f_jcc2,  f_jcc3,  f_jcc4,  f_jcc5,  f_jcc6,  f_jcc7,
                                  f_jcc8, f_jcc9, f_jcc10, f_jcc11, f_jcc12, f_jcc13, f_jcc14, f_jcc15};

/* ROL/ROR reg, imm8 with a count that is not a multiple of the width (decode-time checked):
 * only CF and OF change; OF as for count 1 (what AMD hardware gives for every count). */
#define ROT(name, T, BITS, LEFT)                                                              \
    static void f_##name(struct emu_cpu *cpu, const struct insn *in)                          \
    {                                                                                         \
        T a = (T)GPR(in->rm);                                                                 \
        unsigned k = (unsigned)in->imm;                                                       \
        T r = LEFT ? (T)((a << k) | (a >> (BITS - k))) : (T)((a >> k) | (a << (BITS - k)));  \
        uint64_t f = emu_flags_compute(&cpu->lf) & ~(RFLAGS_CF | RFLAGS_OF);                  \
        unsigned hi = (unsigned)(r >> (BITS - 1)) & 1;                                        \
        if (LEFT) {                                                                           \
            if (r & 1) f |= RFLAGS_CF;                                                        \
            if (hi ^ (unsigned)(r & 1)) f |= RFLAGS_OF;                                       \
        } else {                                                                              \
            if (hi) f |= RFLAGS_CF;                                                           \
            if (hi ^ ((unsigned)(r >> (BITS - 2)) & 1)) f |= RFLAGS_OF;                       \
        }                                                                                     \
        if (BITS == 64) WR64(in->rm, r);                                                      \
        else WR32(in->rm, r);                                                                 \
        set_raw_flags(cpu, f);                                                                \
        chain_next(cpu);                                                                      \
    }
ROT(rol32, uint32_t, 32, 1)
ROT(ror32, uint32_t, 32, 0)
ROT(rol64, uint64_t, 64, 1)
ROT(ror64, uint64_t, 64, 0)

/* IMUL r64, r/m64 and CMOVcc r64/r32, r/m */
static inline __attribute__((always_inline)) void imul64(struct emu_cpu *cpu, const struct insn *in, uint64_t b)
{
    __int128 r = (__int128)(int64_t)GPR(in->reg) * (int64_t)b;
    uint64_t lo = (uint64_t)r;
    WR64(in->reg, lo);
    setf(cpu, LF_MUL, 8, lo, 0, r != (__int128)(int64_t)lo);
}
static void f_imul_rr64(struct emu_cpu *cpu, const struct insn *in) { imul64(cpu, in, GPR(in->rm)); chain_next(cpu); }
static void f_imul_rm64(struct emu_cpu *cpu, const struct insn *in) { imul64(cpu, in, emu_read64(cpu, ea(cpu, in))); chain_next(cpu); }
static void f_cmov_rr64(struct emu_cpu *cpu, const struct insn *in)
{
    if (cond_inline(cpu, in->op & 15)) WR64(in->reg, GPR(in->rm));
    chain_next(cpu);
}
static void f_cmov_rr32(struct emu_cpu *cpu, const struct insn *in)
{
    WR32(in->reg, cond_inline(cpu, in->op & 15) ? GPR(in->rm) : GPR(in->reg));
    chain_next(cpu);
}

/* Pick a specialized handler for a decoded instruction, or return NULL to keep the generic one. */
insn_fn emu_specialize(const struct insn *in)
{
    bool mem = in->mod != 3, w = in->osz == 8;
    unsigned op = in->op, sz = in->osz;
    if (in->fn == h_jcc) return t_jcc[op & 15];
    if (in->lock) return NULL;
    if (in->map == 0) {
        if (op < 0x40 && (op & 7) < 6 && sz >= 4) {
            unsigned aop = op >> 3;
            switch (op & 7) {
            case 1: return emu_alu_rm_r[aop][mem][w];
            case 3: return emu_alu_r_rm[aop][mem][w];
            case 5: return emu_alu_rm_i[aop][0][w];
            default: return NULL;
            }
        }
        switch (op) {
        case 0x81:
        case 0x83:
            if (sz < 4) return NULL;
            return emu_alu_rm_i[(in->modrm >> 3) & 7][mem][w];
        case 0x85: return !mem && sz >= 4 ? emu_test_rr[1 + w] : NULL;
        case 0x84: return !mem ? emu_test_rr[0] : NULL;
        case 0xa9: return sz >= 4 ? emu_test_ri[w] : NULL;
        case 0x89: return sz >= 4 ? emu_mov_rm_r[mem][w] : NULL;
        case 0x8b: return sz >= 4 ? emu_mov_r_rm[mem][w] : NULL;
        case 0x8d: return sz >= 4 ? emu_lea[w] : NULL;
        case 0x63: return w ? emu_movsxd64[mem] : NULL;
        case 0xb8 ... 0xbf: return sz >= 4 ? emu_mov_r_i[w] : NULL;
        case 0xc7: return sz >= 4 ? emu_mov_rm_i[mem][w] : NULL;
        case 0xc1: {
            unsigned sub = (in->modrm >> 3) & 7;
            unsigned c = (unsigned)(in->imm & (w ? 63 : 31));
            if (mem || sz < 4 || c == 0 || c != (in->imm & 0xff)) return NULL;
            if (sub == 0) return w ? f_rol64 : f_rol32;
            if (sub == 1) return w ? f_ror64 : f_ror32;
            if (sub == 4) return w ? f_shl64 : f_shl32;
            if (sub == 5) return w ? f_shr64 : f_shr32;
            if (sub == 7) return w ? f_sar64 : f_sar32;
            return NULL;
        }
        case 0xff: {
            unsigned sub = (in->modrm >> 3) & 7;
            if (mem || sz < 4 || sub > 1) return NULL;
            return emu_incdec_r[sub][w];
        }
        case 0x50 ... 0x57: return sz == 8 ? emu_push_r64 : NULL;
        case 0x58 ... 0x5f: return sz == 8 ? emu_pop_r64 : NULL;
        default: return NULL;
        }
    }
    if (in->map == 1) {
        if (op == 0xaf && w) return mem ? f_imul_rm64 : f_imul_rr64;
        if (op >= 0x40 && op <= 0x4f && !mem && sz >= 4) return w ? f_cmov_rr64 : f_cmov_rr32;
        if ((op == 0xb6 || op == 0xb7) && sz >= 4) return emu_movzx[op & 1][mem];
    }
    return NULL;
}
