/* flags: the lazy arithmetic flags of the emulator.
 *
 * The last flag-setting operation records (op, size, res, src1, src2) in cpu->lf; the six
 * arithmetic flags are computed only when something reads them. Values in lf are masked to
 * the operand size. Encodings of lf.op (enum lf_op in flags.h):
 *   LF_RAW    res = the flags themselves (after POPF, SAHF, rotates, BT, BSF, ...)
 *   LF_ADD/LF_ADC1/LF_SUB/LF_SBB1  res = src1 op src2 (op carry-in 1 for the *1 forms)
 *   LF_LOGIC  res (CF=OF=AF=0)
 *   LF_INC/LF_DEC  res = src1 +/- 1, src2 = the CF preserved from before
 *   LF_SHL/LF_SHR/LF_SAR  res = src1 shifted by src2 (1..63, already masked, non-zero)
 *   LF_MUL    res = low half (SF ZF PF), src2 = CF=OF
 * Flags the SDM leaves undefined: AF after logic ops, shifts and MUL (0 here); SF/ZF/PF after
 * MUL/IMUL (from the low half of the result). OF after shifts and rotates by more than 1 is
 * computed as AMD hardware does (checked against the host in test_emu_exec).
 */
#include "vmm/emu/flags.h"

static inline uint64_t parity(uint64_t res) { return __builtin_parity((unsigned)(res & 0xff)) ? 0 : RFLAGS_PF; }

static inline uint64_t szp(uint64_t res, unsigned size)
{
    uint64_t f = parity(res);
    if ((res & szmask(size)) == 0) f |= RFLAGS_ZF;
    if (msb(res, size)) f |= RFLAGS_SF;
    return f;
}

bool emu_flags_cf(const struct emu_lazy_flags *lf)
{
    unsigned size = lf->size;
    switch (lf->op) {
    case LF_ADD: return lf->res < lf->src1;
    case LF_ADC1: return lf->res <= lf->src1;
    case LF_SUB: return lf->src1 < lf->src2;
    case LF_SBB1: return lf->src1 <= lf->src2;
    case LF_LOGIC: return false;
    case LF_INC:
    case LF_DEC: return lf->src2 & 1;
    case LF_SHL:
        return lf->src2 <= size * 8 ? (lf->src1 >> (size * 8 - lf->src2)) & 1 : 0;
    case LF_SHR: return (lf->src1 >> (lf->src2 - 1)) & 1;
    case LF_SAR: return (sext(lf->src1, size) >> (lf->src2 - 1 > 63 ? 63 : lf->src2 - 1)) & 1;
    case LF_MUL: return lf->src2 != 0;
    default: return lf->res & RFLAGS_CF;
    }
}

uint64_t emu_flags_compute(const struct emu_lazy_flags *lf)
{
    unsigned size = lf->size;
    uint64_t res = lf->res, a = lf->src1, b = lf->src2, f;
    switch (lf->op) {
    case LF_RAW: return res & ARITH_FLAGS;
    case LF_ADD:
    case LF_ADC1:
        f = szp(res, size) | ((a ^ b ^ res) & RFLAGS_AF);
        if (emu_flags_cf(lf)) f |= RFLAGS_CF;
        if (msb((a ^ res) & (b ^ res), size)) f |= RFLAGS_OF;
        return f;
    case LF_SUB:
    case LF_SBB1:
        f = szp(res, size) | ((a ^ b ^ res) & RFLAGS_AF);
        if (emu_flags_cf(lf)) f |= RFLAGS_CF;
        if (msb((a ^ b) & (a ^ res), size)) f |= RFLAGS_OF;
        return f;
    case LF_LOGIC: return szp(res, size);
    case LF_INC:
        f = szp(res, size) | ((a ^ res) & RFLAGS_AF) | (b & 1);
        if (res == (1ULL << (size * 8 - 1))) f |= RFLAGS_OF;
        return f;
    case LF_DEC:
        f = szp(res, size) | ((a ^ res) & RFLAGS_AF) | (b & 1);
        if (a == (1ULL << (size * 8 - 1))) f |= RFLAGS_OF;
        return f;
    case LF_SHL:
        /* OF = MSB(result) ^ CF, as hardware computes it for every count. */
        f = szp(res, size);
        if (emu_flags_cf(lf)) f |= RFLAGS_CF;
        if (msb(res, size) ^ (f & RFLAGS_CF)) f |= RFLAGS_OF;
        return f;
    case LF_SHR:
        /* OF = MSB(result) ^ next bit of the result: MSB(original) for count 1 as the SDM says,
         * and what AMD hardware gives for larger counts. */
        f = szp(res, size);
        if (emu_flags_cf(lf)) f |= RFLAGS_CF;
        if (size * 8 >= 2 && (msb(res, size) ^ ((res >> (size * 8 - 2)) & 1))) f |= RFLAGS_OF;
        return f;
    case LF_SAR:
        f = szp(res, size);
        if (emu_flags_cf(lf)) f |= RFLAGS_CF;
        return f;
    case LF_MUL:
        f = szp(res, size);
        if (b) f |= RFLAGS_CF | RFLAGS_OF;
        return f;
    default: return 0;
    }
}

/* Condition code cc (0..15) as in Jcc/SETcc/CMOVcc. Fast paths for CMP/SUB and logic ops. */
bool emu_cond(const struct emu_cpu *cpu, unsigned cc)
{
    const struct emu_lazy_flags *lf = &cpu->lf;
    unsigned size = lf->size;
    if (lf->op == LF_SUB) {
        bool known, r = cond_after_sub(lf->src1, lf->src2, size, cc, &known);
        if (known) return r;
    } else if (lf->op == LF_LOGIC) {
        bool zf = lf->res == 0, sf = msb(lf->res, size);
        switch (cc) {
        case 2: return false;
        case 3: return true;
        case 4: return zf;
        case 5: return !zf;
        case 6: return zf;
        case 7: return !zf;
        case 8: return sf;
        case 9: return !sf;
        case 12: return sf;
        case 13: return !sf;
        case 14: return zf || sf;
        case 15: return !zf && !sf;
        default: break;
        }
    } else if (cc == 4 || cc == 5) {
        if (lf->op != LF_RAW) return (lf->res == 0) == (cc == 4);
    }
    uint64_t f = emu_flags_compute(lf);
    bool r;
    switch (cc >> 1) {
    case 0: r = f & RFLAGS_OF; break;
    case 1: r = f & RFLAGS_CF; break;
    case 2: r = f & RFLAGS_ZF; break;
    case 3: r = f & (RFLAGS_CF | RFLAGS_ZF); break;
    case 4: r = f & RFLAGS_SF; break;
    case 5: r = f & RFLAGS_PF; break;
    case 6: r = !(f & RFLAGS_SF) != !(f & RFLAGS_OF); break;
    default: r = (f & RFLAGS_ZF) || (!(f & RFLAGS_SF) != !(f & RFLAGS_OF)); break;
    }
    return (cc & 1) ? !r : r;
}

uint64_t emu_get_rflags(const struct emu_cpu *cpu)
{
    return (cpu->s.rflags & ~ARITH_FLAGS) | emu_flags_compute(&cpu->lf) | RFLAGS_FIXED;
}

void emu_set_rflags(struct emu_cpu *cpu, uint64_t rflags)
{
    cpu->s.rflags = (rflags & ~ARITH_FLAGS) | RFLAGS_FIXED;
    set_raw_flags(cpu, rflags);
}
