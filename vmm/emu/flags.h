/* flags: the emulator's lazy arithmetic flags (see flags.c for the encodings), the condition
 * codes evaluated from them, and RFLAGS as the rest of the emulator reads and writes it.
 * Layer: above cpu.h only.
 */
#ifndef VMD_EMU_FLAGS_H
#define VMD_EMU_FLAGS_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/emu/cpu.h"

enum lf_op {
    LF_RAW = 0,  /* res holds the six arithmetic flags themselves */
    LF_ADD, LF_ADC1, LF_SUB, LF_SBB1, LF_LOGIC, LF_INC, LF_DEC,
    LF_SHL, LF_SHR, LF_SAR, LF_MUL,
};
uint64_t emu_flags_compute(const struct emu_lazy_flags *lf);
bool emu_flags_cf(const struct emu_lazy_flags *lf);
bool emu_cond(const struct emu_cpu *cpu, unsigned cc);
/* Materialize / load RFLAGS (arithmetic flags from the lazy state). */
uint64_t emu_get_rflags(const struct emu_cpu *cpu);
void emu_set_rflags(struct emu_cpu *cpu, uint64_t rflags);

static inline void setf(struct emu_cpu *cpu, unsigned op, unsigned size, uint64_t res, uint64_t s1, uint64_t s2)
{
    cpu->lf.op = op;
    cpu->lf.size = size;
    cpu->lf.res = res;
    cpu->lf.src1 = s1;
    cpu->lf.src2 = s2;
}
static inline void set_raw_flags(struct emu_cpu *cpu, uint64_t f)
{
    cpu->lf.op = LF_RAW;
    cpu->lf.size = 8;
    cpu->lf.res = f & ARITH_FLAGS;
}

/* Condition code cc (0..15, the Jcc order) of the lazy flags: the common cases (after a 64-bit
 * CMP/SUB, ZF after any operation) evaluated inline, the others by emu_cond. With a constant cc
 * the test compiles to one comparison. cond_after_sub: what a CMP/SUB of a and b decides. */
static inline __attribute__((always_inline)) bool cond_after_sub(uint64_t a, uint64_t b, unsigned size, unsigned cc,
                                                                  bool *known)
{
    *known = true;
    switch (cc) {
    case 2: return a < b;
    case 3: return a >= b;
    case 4: return a == b;
    case 5: return a != b;
    case 6: return a <= b;
    case 7: return a > b;
    case 12: return (int64_t)sext(a, size) < (int64_t)sext(b, size);
    case 13: return (int64_t)sext(a, size) >= (int64_t)sext(b, size);
    case 14: return (int64_t)sext(a, size) <= (int64_t)sext(b, size);
    case 15: return (int64_t)sext(a, size) > (int64_t)sext(b, size);
    default: *known = false; return false; /* O, NO, S, NS, P, NP need the result's flags */
    }
}
static inline __attribute__((always_inline)) bool cond(const struct emu_cpu *cpu, unsigned cc)
{
    const struct emu_lazy_flags *lf = &cpu->lf;
    if (lf->op == LF_SUB && lf->size == 8) {
        bool known, r = cond_after_sub(lf->src1, lf->src2, 8, cc, &known);
        if (known) return r;
    }
    if (cc == 4 && lf->op != LF_RAW) return lf->res == 0;
    if (cc == 5 && lf->op != LF_RAW) return lf->res != 0;
    return emu_cond(cpu, cc);
}

#endif
