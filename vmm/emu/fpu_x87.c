/* fpu_x87: the emulator's x87 instruction set (escape opcodes D8..DF).
 *
 * The register file is struct cpu_fxsave: st[j] holds ST(j) (FXSAVE order, so pushes and pops
 * rotate the array), ftw is the abridged tag (bit i = physical register i valid), TOP lives
 * in FSW. Stack bookkeeping (tags, TOP, stack overflow/underflow, C1 on stack faults,
 * masked-response indefinite values) is done here in C.
 *
 * Arithmetic is carried out by the host's own x87 instruction of the same name: each helper
 * below loads (FLDENV) the guest's control word and condition codes with an empty stack,
 * loads the operands with FLD m80 (exact, no exceptions), executes the instruction, reads the
 * status word and clears the exception state (FNSTSW; FNCLEX) before any further waiting
 * instruction, so an unmasked guest exception is never delivered to the host; then stores
 * the results and restores the host's control word. Results are therefore bit-exact with the
 * host CPU, including the transcendental instructions and the biased results of unmasked
 * overflow/underflow.
 *
 * Unmasked exceptions: the flags are recorded and ES and B are set. With an unmasked invalid
 * operation (or stack fault), denormal or divide-by-zero the instruction does nothing else;
 * with unmasked overflow, underflow or precision it completes with the hardware's result
 * (memory destinations are written only for precision). The next waiting x87/MMX
 * instruction then returns FPU_MF (the deferred #MF of the architecture).
 * FOP, FIP (from fpu_op.rip) and FDP are recorded for every non-control instruction.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "vmm/emu/fpu_internal.h"

static const uint8_t f80_indefinite[10] = {0, 0, 0, 0, 0, 0, 0, 0xC0, 0xFF, 0xFF};

/* ---- host execution ------------------------------------------------------------------- */

/* The host environment for one operation: the guest FCW (its exception masks included), the
 * guest's C0-C3 (so "unchanged/undefined" condition codes behave as on the hardware), TOP=0,
 * every register empty. */
struct hx_env {
    uint32_t cw, sw, tw, ip, op, dp, ds;
};

#define HX_BEGIN "fnstcw %[hcw]\n\tfldenv %[genv]\n\t"
#define HX_END "fninit\n\tfldcw %[hcw]\n\t"
#define HX_CW [hcw] "=m"(hcw)
#define HX_GCW [genv] "m"(*genv)

/* ST0 = dst OP src for OP in add mul - - sub subr div divr (ModRM.reg numbering of D8). */
static uint16_t hx_arith(unsigned op, long double *r, const long double *dst, const long double *src, const struct hx_env *genv)
{
    uint16_t hcw, sw;
    switch (op) {
#define ARITH(n, insn)                                                                                     \
    case n:                                                                                                \
        __asm__ volatile(HX_BEGIN "fldt %[s]\n\tfldt %[d]\n\t" insn " %%st(1), %%st\n\tfnstsw %[sw]\n\t"     \
                         "fnclex\n\tfstpt %[r]\n\t" HX_END                                                           \
                         : [r] "=m"(*r), [sw] "=m"(sw), HX_CW                                              \
                         : [s] "m"(*src), [d] "m"(*dst), HX_GCW);                                          \
        break;
        ARITH(0, "fadd")
        ARITH(1, "fmul")
        ARITH(4, "fsub")
        ARITH(5, "fsubr")
        ARITH(6, "fdiv")
        ARITH(7, "fdivr")
#undef ARITH
    default:
        sw = 0;
        break;
    }
    return sw;
}

/* Compare a (ST0) with b: kind 0 FCOM, 1 FUCOM (status C0/C2/C3), 2 FCOMI, 3 FUCOMI (flags). */
static uint16_t hx_cmp(unsigned kind, const long double *a, const long double *b, const struct hx_env *genv, bool *zf, bool *pf, bool *cf)
{
    uint16_t hcw, sw;
    *zf = *pf = *cf = false;
    switch (kind) {
    case 0:
        __asm__ volatile(HX_BEGIN "fldt %[b]\n\tfldt %[a]\n\tfcom %%st(1)\n\tfnstsw %[sw]\n\t" HX_END
                         : [sw] "=m"(sw), HX_CW : [a] "m"(*a), [b] "m"(*b), HX_GCW);
        break;
    case 1:
        __asm__ volatile(HX_BEGIN "fldt %[b]\n\tfldt %[a]\n\tfucom %%st(1)\n\tfnstsw %[sw]\n\t" HX_END
                         : [sw] "=m"(sw), HX_CW : [a] "m"(*a), [b] "m"(*b), HX_GCW);
        break;
    case 2:
        __asm__ volatile(HX_BEGIN "fldt %[b]\n\tfldt %[a]\n\tfcomi %%st(1), %%st\n\tfnstsw %[sw]\n\t" HX_END
                         : [sw] "=m"(sw), HX_CW, "=@ccz"(*zf), "=@ccp"(*pf), "=@ccc"(*cf)
                         : [a] "m"(*a), [b] "m"(*b), HX_GCW);
        break;
    default:
        __asm__ volatile(HX_BEGIN "fldt %[b]\n\tfldt %[a]\n\tfucomi %%st(1), %%st\n\tfnstsw %[sw]\n\t" HX_END
                         : [sw] "=m"(sw), HX_CW, "=@ccz"(*zf), "=@ccp"(*pf), "=@ccc"(*cf)
                         : [a] "m"(*a), [b] "m"(*b), HX_GCW);
        break;
    }
    return sw;
}

enum mtype { MT_F32, MT_F64, MT_I16, MT_I32, MT_I64, MT_BCD };

/* ST0 = dst OP mem (D8/DA/DC/DE memory forms: m32fp, m32int, m64fp, m16int), or compare
 * (op 2/3) dst with mem. The memory operand is used by the host instruction itself so that
 * exception priorities (e.g. no #D when the other operand is a NaN) are the hardware's. */
static uint16_t hx_arith_mem(unsigned esc, unsigned op, long double *r, const long double *dst, const void *m, const struct hx_env *genv)
{
    uint16_t hcw, sw = 0;
    const struct { uint8_t b[8]; } *mm = m;
#define AM(insn)                                                                                            \
    __asm__ volatile(HX_BEGIN "fldt %[d]\n\t" insn " %[m]\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\t" HX_END          \
                     : [r] "=m"(*r), [sw] "=m"(sw), HX_CW : [d] "m"(*dst), [m] "m"(*mm), HX_GCW)
#define AM_ALL(sfx, isfx)                                                                                   \
    switch (op) {                                                                                           \
    case 0: AM("fadd" sfx); break;                                                                          \
    case 1: AM("fmul" sfx); break;                                                                          \
    case 2: AM("fcom" sfx); break;                                                                          \
    case 3: AM("fcom" sfx); break;                                                                          \
    case 4: AM("fsub" sfx); break;                                                                          \
    case 5: AM("fsubr" sfx); break;                                                                         \
    case 6: AM("fdiv" sfx); break;                                                                          \
    default: AM("fdivr" sfx); break;                                                                        \
    }
    switch (esc) {
    case 0xD8: AM_ALL("s", ""); break;
    case 0xDC: AM_ALL("l", ""); break;
    case 0xDA:
        switch (op) {
        case 0: AM("fiaddl"); break;
        case 1: AM("fimull"); break;
        case 2: case 3: AM("ficoml"); break;
        case 4: AM("fisubl"); break;
        case 5: AM("fisubrl"); break;
        case 6: AM("fidivl"); break;
        default: AM("fidivrl"); break;
        }
        break;
    default:
        switch (op) {
        case 0: AM("fiadds"); break;
        case 1: AM("fimuls"); break;
        case 2: case 3: AM("ficoms"); break;
        case 4: AM("fisubs"); break;
        case 5: AM("fisubrs"); break;
        case 6: AM("fidivs"); break;
        default: AM("fidivrs"); break;
        }
        break;
    }
#undef AM_ALL
#undef AM
    return sw;
}
static const unsigned mtype_size[] = {4, 8, 2, 4, 8, 10};

/* Load a memory operand into extended format (FLD m32/m64, FILD, FBLD). */
static uint16_t hx_load(enum mtype t, long double *r, const void *m, const struct hx_env *genv)
{
    uint16_t hcw, sw;
    const struct { uint8_t b[10]; } *mm = m;
    switch (t) {
#define LOAD(n, insn)                                                                                       \
    case n:                                                                                                 \
        __asm__ volatile(HX_BEGIN insn " %[m]\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\t" HX_END                     \
                         : [r] "=m"(*r), [sw] "=m"(sw), HX_CW : [m] "m"(*mm), HX_GCW);                      \
        break;
        LOAD(MT_F32, "flds")
        LOAD(MT_F64, "fldl")
        LOAD(MT_I16, "filds")
        LOAD(MT_I32, "fildl")
        LOAD(MT_I64, "fildll")
        LOAD(MT_BCD, "fbld")
#undef LOAD
    default:
        sw = 0;
    }
    return sw;
}

/* Store v to memory in format t (FST m32/m64, FIST, FISTTP when trunc, FBSTP). */
static uint16_t hx_store(enum mtype t, bool trunc, void *m, const long double *v, const struct hx_env *genv)
{
    uint16_t hcw, sw = 0;
    struct { uint8_t b[10]; } *mm = m;
    if (trunc) {
        switch (t) {
#define STORE(n, insn)                                                                                      \
    case n:                                                                                                 \
        __asm__ volatile(HX_BEGIN "fldt %[v]\n\t" insn " %[m]\n\tfnstsw %[sw]\n\t" HX_END                   \
                         : [m] "=m"(*mm), [sw] "=m"(sw), HX_CW : [v] "m"(*v), HX_GCW);                      \
        break;
            STORE(MT_I16, "fisttps")
            STORE(MT_I32, "fisttpl")
            STORE(MT_I64, "fisttpll")
        default:
            break;
        }
        return sw;
    }
    switch (t) {
        STORE(MT_F32, "fstps")
        STORE(MT_F64, "fstpl")
        STORE(MT_I16, "fistps")
        STORE(MT_I32, "fistpl")
        STORE(MT_I64, "fistpll")
        STORE(MT_BCD, "fbstp")
#undef STORE
    }
    return sw;
}

enum unop {
    U_FCHS, U_FABS, U_FTST, U_FXAM, U_F2XM1, U_FYL2X, U_FPTAN, U_FPATAN, U_FXTRACT, U_FPREM1,
    U_FPREM, U_FYL2XP1, U_FSQRT, U_FSINCOS, U_FRNDINT, U_FSCALE, U_FSIN, U_FCOS,
    U_COUNT
};

/* Operand needs and stack effect of D9 E0..FF instructions. */
struct unop_info {
    uint8_t nargs; /* 1: ST0, 2: ST0 and ST1 */
    int8_t effect; /* -1 pop (result to ST1), 0 in place, +1 push */
    uint16_t cc;   /* condition codes the instruction defines */
};
static const struct unop_info unop_tab[U_COUNT] = {
    [U_FCHS] = {1, 0, FSW_C1},       [U_FABS] = {1, 0, FSW_C1},       [U_FTST] = {1, 0, FSW_CC},
    [U_FXAM] = {1, 0, FSW_CC},       [U_F2XM1] = {1, 0, FSW_C1},      [U_FYL2X] = {2, -1, FSW_C1},
    [U_FPTAN] = {1, 1, FSW_C1 | FSW_C2}, [U_FPATAN] = {2, -1, FSW_C1}, [U_FXTRACT] = {1, 1, FSW_C1},
    [U_FPREM1] = {2, 0, FSW_CC},     [U_FPREM] = {2, 0, FSW_CC},      [U_FYL2XP1] = {2, -1, FSW_C1},
    [U_FSQRT] = {1, 0, FSW_C1},      [U_FSINCOS] = {1, 1, FSW_C1 | FSW_C2}, [U_FRNDINT] = {1, 0, FSW_C1},
    [U_FSCALE] = {2, 0, FSW_C1},     [U_FSIN] = {1, 0, FSW_C1 | FSW_C2}, [U_FCOS] = {1, 0, FSW_C1 | FSW_C2},
};

/* Run a D9 E0..FF instruction with ST1, ST0 = a1, a0 on the host stack. r0/r1 receive the top
 * two entries afterwards; *depth the number of entries (1..3). */
static uint16_t hx_unop(enum unop u, long double *r0, long double *r1, const long double *a0, const long double *a1,
                        const struct hx_env *genv, unsigned *depth)
{
    uint16_t hcw, sw;
    switch (u) {
#define UN(n, insn)                                                                                         \
    case n:                                                                                                 \
        __asm__ volatile(HX_BEGIN "fldt %[a1]\n\tfldt %[a0]\n\t" insn "\n\tfnstsw %[sw]\n\tfnclex\n\t"    \
                         "fstpt %[r0]\n\tfstpt %[r1]\n\t" HX_END                                            \
                         : [r0] "=m"(*r0), [r1] "=m"(*r1), [sw] "=m"(sw), HX_CW                             \
                         : [a0] "m"(*a0), [a1] "m"(*a1), HX_GCW);                                           \
        break;
        UN(U_FCHS, "fchs")
        UN(U_FABS, "fabs")
        UN(U_FTST, "ftst")
        UN(U_FXAM, "fxam")
        UN(U_F2XM1, "f2xm1")
        UN(U_FYL2X, "fyl2x")
        UN(U_FPTAN, "fptan")
        UN(U_FPATAN, "fpatan")
        UN(U_FXTRACT, "fxtract")
        UN(U_FPREM1, "fprem1")
        UN(U_FPREM, "fprem")
        UN(U_FYL2XP1, "fyl2xp1")
        UN(U_FSQRT, "fsqrt")
        UN(U_FSINCOS, "fsincos")
        UN(U_FRNDINT, "frndint")
        UN(U_FSCALE, "fscale")
        UN(U_FSIN, "fsin")
        UN(U_FCOS, "fcos")
#undef UN
    default:
        sw = 0;
    }
    /* FLDENV set TOP = 0; two loads made it 6. */
    unsigned top = (sw >> FSW_TOP_SHIFT) & 7;
    *depth = (8 - top) & 7;
    return sw;
}

/* FLD1 FLDL2T FLDL2E FLDPI FLDLG2 FLDLN2 FLDZ (D9 E8..EE): rounded per the guest RC. */
static uint16_t hx_const(unsigned which, long double *r, const struct hx_env *genv)
{
    uint16_t hcw, sw;
    switch (which) {
#define K(n, insn)                                                                                          \
    case n:                                                                                                 \
        __asm__ volatile(HX_BEGIN insn "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\t" HX_END                          \
                         : [r] "=m"(*r), [sw] "=m"(sw), HX_CW : HX_GCW);                                    \
        break;
        K(0, "fld1")
        K(1, "fldl2t")
        K(2, "fldl2e")
        K(3, "fldpi")
        K(4, "fldlg2")
        K(5, "fldln2")
        K(6, "fldz")
#undef K
    default:
        sw = 0;
    }
    return sw;
}

/* ---- register stack ------------------------------------------------------------------- */

struct x87 {
    const struct fpu_op *op;
    struct fpu_env *env;
    struct cpu_fxsave *fx;
    struct hx_env henv; /* host environment for this instruction's operation */
};

static inline unsigned phys(const struct cpu_fxsave *fx, unsigned j) { return (fpu_top(fx) + j) & 7; }
static inline bool st_empty(const struct cpu_fxsave *fx, unsigned j) { return !((fx->ftw >> phys(fx, j)) & 1); }
static inline void st_get(const struct cpu_fxsave *fx, unsigned j, long double *v)
{
    memset(v, 0, sizeof(*v));
    memcpy(v, fx->st[j & 7], 10);
}
static inline void st_put_raw(struct cpu_fxsave *fx, unsigned j, const void *v)
{
    memcpy(fx->st[j & 7], v, 10);
    memset(fx->st[j & 7] + 10, 0, 6);
    fx->ftw |= (uint8_t)(1u << phys(fx, j));
}
static inline void st_put(struct cpu_fxsave *fx, unsigned j, const long double *v) { st_put_raw(fx, j, v); }

/* Rotate so that ST(j) becomes ST(j-1) (TOP+1); tags untouched. */
static void rot_inc(struct cpu_fxsave *fx)
{
    uint8_t t[16];
    memcpy(t, fx->st[0], 16);
    memmove(fx->st[0], fx->st[1], 7 * 16);
    memcpy(fx->st[7], t, 16);
    fpu_set_top(fx, fpu_top(fx) + 1);
}

/* Rotate so that ST(j) becomes ST(j+1) (TOP-1); tags untouched. */
static void rot_dec(struct cpu_fxsave *fx)
{
    uint8_t t[16];
    memcpy(t, fx->st[7], 16);
    memmove(fx->st[1], fx->st[0], 7 * 16);
    memcpy(fx->st[0], t, 16);
    fpu_set_top(fx, fpu_top(fx) - 1);
}

/* Set TOP while every physical register keeps its contents (st[] is in ST order). */
static void set_top_keep_regs(struct cpu_fxsave *fx, unsigned newtop)
{
    unsigned old = fpu_top(fx);
    if (((newtop - old) & 7) == 0) return;
    uint8_t t[8][16];
    for (unsigned j = 0; j < 8; j++) memcpy(t[j], fx->st[(j + newtop - old) & 7], 16);
    memcpy(fx->st, t, sizeof(t));
    fpu_set_top(fx, newtop);
}

static void st_pop(struct cpu_fxsave *fx)
{
    fx->ftw &= (uint8_t)~(1u << phys(fx, 0));
    rot_inc(fx);
}

static void st_push(struct cpu_fxsave *fx, const void *v)
{
    rot_dec(fx);
    st_put_raw(fx, 0, v);
}

/* Record a stack fault: IE|SF with C1 = overflow. Returns true when IE is masked (the caller
 * then applies the masked response), false when ES was set instead. */
static bool stack_fault(struct cpu_fxsave *fx, bool overflow)
{
    fx->fsw = (uint16_t)((fx->fsw & ~FSW_C1) | FSW_IE | FSW_SF | (overflow ? FSW_C1 : 0));
    if (fx->fcw & FSW_IE) return true;
    fx->fsw |= FSW_ES | FSW_B;
    return false;
}

/* Merge a host status word: exception flags accumulate, `cc` bits are replaced, ES and B are
 * set for an unmasked exception. Returns false when the instruction must not complete (an
 * unmasked invalid/denormal/divide-by-zero exception; with `mem_dest`, also overflow and
 * underflow, whose biased results cannot be stored to memory). */
static bool merge_status_dest(struct cpu_fxsave *fx, uint16_t sw, uint16_t cc, bool mem_dest)
{
    uint16_t exc = sw & 0x7F;
    fx->fsw = (uint16_t)((fx->fsw & ~cc) | (sw & cc) | exc);
    uint16_t unmasked = exc & 0x3F & ~fx->fcw;
    if (!unmasked) return true;
    fx->fsw |= FSW_ES | FSW_B;
    if (unmasked & (FSW_IE | FSW_DE | FSW_ZE)) return false;
    return !(mem_dest && (unmasked & (FSW_OE | FSW_UE)));
}

static inline bool merge_status(struct cpu_fxsave *fx, uint16_t sw, uint16_t cc)
{
    return merge_status_dest(fx, sw, cc, false);
}

/* ---- tag word ------------------------------------------------------------------------- */

static unsigned tag_of(const uint8_t *v)
{
    uint16_t se;
    uint64_t mant;
    memcpy(&mant, v, 8);
    memcpy(&se, v + 8, 2);
    unsigned exp = se & 0x7FFF;
    if (exp == 0x7FFF) return 2;
    if (exp == 0) return mant ? 2 : 1;
    return (mant >> 63) ? 0 : 2;
}

uint16_t fpu_full_tag_word(const struct cpu_fxsave *fx)
{
    uint16_t tw = 0;
    unsigned top = fpu_top(fx);
    for (unsigned i = 0; i < 8; i++) {
        unsigned t = 3;
        if ((fx->ftw >> i) & 1) t = tag_of(fx->st[(i - top) & 7]);
        tw |= (uint16_t)(t << (2 * i));
    }
    return tw;
}

uint8_t fpu_abridged_tag(uint16_t ftw)
{
    uint8_t t = 0;
    for (unsigned i = 0; i < 8; i++)
        if (((ftw >> (2 * i)) & 3) != 3) t |= (uint8_t)(1u << i);
    return t;
}

/* ---- instruction groups ---------------------------------------------------------------- */

static inline void mem_read(struct x87 *x, void *buf, unsigned len) { x->env->read(x->env->ctx, x->op->ea, buf, len); }
static inline void mem_write(struct x87 *x, const void *buf, unsigned len) { x->env->write(x->env->ctx, x->op->ea, buf, len); }

/* dst(ST j) = dst OP src; pop afterwards if requested. op in D8 numbering (0 add 1 mul 4 sub
 * 5 subr 6 div 7 divr). src is a value (already converted from memory if need be). */
static void arith(struct x87 *x, unsigned op, unsigned dst_j, const long double *src, bool src_empty, bool pop)
{
    struct cpu_fxsave *fx = x->fx;
    long double d, r;
    if (st_empty(fx, dst_j) || src_empty) {
        if (!stack_fault(fx, false)) return;
        st_put_raw(fx, dst_j, f80_indefinite);
    } else {
        st_get(fx, dst_j, &d);
        uint16_t sw = hx_arith(op, &r, &d, src, &x->henv);
        if (!merge_status(fx, sw, FSW_CC)) return;
        st_put(fx, dst_j, &r);
    }
    if (pop) st_pop(fx);
}

/* FCOM/FUCOM family: set C0/C2/C3 (or ZF/PF/CF for the FCOMI forms) comparing ST0 with src. */
static void compare(struct x87 *x, unsigned kind, const long double *src, bool src_empty, unsigned pops)
{
    struct cpu_fxsave *fx = x->fx;
    bool zf = true, pf = true, cf = true, complete;
    if (st_empty(fx, 0) || src_empty) {
        /* stack fault: "unordered" is reported even when IE is unmasked */
        complete = stack_fault(fx, false);
        if (kind < 2) fx->fsw |= FSW_C0 | FSW_C2 | FSW_C3;
    } else {
        long double a;
        st_get(fx, 0, &a);
        uint16_t sw = hx_cmp(kind, &a, src, &x->henv, &zf, &pf, &cf);
        /* FCOMI leaves C0-C3 alone (the host's operand loads clobbered its C1) */
        complete = merge_status(fx, sw, kind < 2 ? FSW_CC : 0);
    }
    if (kind >= 2) {
        uint64_t f = *x->env->rflags & ~(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
        if (zf) f |= RFLAGS_ZF;
        if (pf) f |= RFLAGS_PF;
        if (cf) f |= RFLAGS_CF;
        *x->env->rflags = f;
        if (x->env->rflags_written) *x->env->rflags_written = true;
    }
    if (!complete) return;
    while (pops--) st_pop(fx);
}

/* Load from memory in format t, then push. */
static void load_push(struct x87 *x, enum mtype t)
{
    struct cpu_fxsave *fx = x->fx;
    uint8_t m[10];
    mem_read(x, m, mtype_size[t]);
    if (!st_empty(fx, 7)) {
        if (!stack_fault(fx, true)) return;
        st_push(fx, f80_indefinite);
        return;
    }
    long double v;
    uint16_t sw = hx_load(t, &v, m, &x->henv);
    /* A load completes despite an unmasked denormal exception (only #IA stops it). */
    if (!merge_status(fx, sw, FSW_CC) && (sw & FSW_IE & ~fx->fcw)) return;
    fx->fsw &= (uint16_t)~FSW_C1;
    st_push(fx, &v);
}

/* Store ST0 to memory in format t (optionally truncating), popping if requested. */
static void store_mem(struct x87 *x, enum mtype t, bool trunc, bool pop)
{
    struct cpu_fxsave *fx = x->fx;
    uint8_t m[16];
    unsigned n = mtype_size[t];
    uint16_t old_sw = fx->fsw;
    if (st_empty(fx, 0)) {
        if (!stack_fault(fx, false)) return;
        /* masked response: the indefinite of the destination format */
        memset(m, 0, sizeof(m));
        switch (t) {
        case MT_F32: m[2] = 0xC0; m[3] = 0xFF; break;
        case MT_F64: m[6] = 0xF8; m[7] = 0xFF; break;
        case MT_I16: m[1] = 0x80; break;
        case MT_I32: m[3] = 0x80; break;
        case MT_I64: m[7] = 0x80; break;
        case MT_BCD: m[7] = 0xC0; m[8] = 0xFF; m[9] = 0xFF; break;
        }
        uint16_t nsw = fx->fsw;
        fx->fsw = old_sw;
        mem_write(x, m, n); /* may fault: state is committed only afterwards */
        fx->fsw = nsw;
    } else {
        long double v;
        st_get(fx, 0, &v);
        uint16_t sw = hx_store(t, trunc, m, &v, &x->henv);
        if (!merge_status_dest(fx, sw, FSW_CC, true)) return;
        uint16_t nsw = fx->fsw;
        fx->fsw = old_sw;
        mem_write(x, m, n); /* may fault: state is committed only afterwards */
        fx->fsw = nsw;
    }
    if (pop) st_pop(fx);
}

static void unop(struct x87 *x, enum unop u)
{
    struct cpu_fxsave *fx = x->fx;
    const struct unop_info *ui = &unop_tab[u];
    if (u == U_FXAM && st_empty(fx, 0)) {
        /* class "empty": C3=1 C2=0 C0=1, C1 = sign bit of the (stale) register */
        uint16_t sw = FSW_C3 | FSW_C0 | ((fx->st[0][9] & 0x80) ? FSW_C1 : 0);
        fx->fsw = (uint16_t)((fx->fsw & ~FSW_CC) | sw);
        return;
    }
    bool under = st_empty(fx, 0) || (ui->nargs == 2 && st_empty(fx, 1));
    bool over = ui->effect > 0 && !st_empty(fx, 7);
    if (under || over) {
        bool masked = stack_fault(fx, !under);
        fx->fsw &= (uint16_t)~(ui->cc & FSW_C2);
        if (u == U_FTST) {
            fx->fsw |= FSW_C0 | FSW_C2 | FSW_C3; /* "unordered", even when IE is unmasked */
            return;
        }
        if (!masked) return;
        if (ui->effect < 0) {
            st_put_raw(fx, 1, f80_indefinite);
            st_pop(fx);
        } else if (ui->effect > 0) {
            st_put_raw(fx, 0, f80_indefinite);
            st_push(fx, f80_indefinite);
        } else {
            st_put_raw(fx, 0, f80_indefinite);
        }
        return;
    }
    long double a0, a1, r0, r1;
    st_get(fx, 0, &a0);
    st_get(fx, 1, &a1);
    unsigned depth;
    uint16_t sw = hx_unop(u, &r0, &r1, &a0, &a1, &x->henv, &depth);
    if (!merge_status(fx, sw, FSW_CC)) return;
    if (u == U_FTST || u == U_FXAM) return;
    if (ui->effect < 0) {
        st_put(fx, 1, &r0);
        st_pop(fx);
    } else if (ui->effect > 0) {
        if (depth == 3) {
            st_put(fx, 0, &r1);
            st_push(fx, &r0);
        } else {
            st_put(fx, 0, &r0); /* FPTAN/FSINCOS out of range: C2=1, operand unchanged */
        }
    } else {
        st_put(fx, 0, &r0);
    }
}

/* ---- environment ---------------------------------------------------------------------- */

/* FNSTENV/FNSAVE image (protected-mode format; 14 bytes with a 16-bit operand size). */
static unsigned env_image(struct x87 *x, uint8_t *img, bool o16)
{
    struct cpu_fxsave *fx = x->fx;
    uint16_t tw = fpu_full_tag_word(fx);
    if (o16) {
        uint16_t w[7] = {fx->fcw, fx->fsw, tw, (uint16_t)fx->fip, 0, (uint16_t)fx->fdp, 0};
        memcpy(img, w, 14);
        return 14;
    }
    uint32_t d[7] = {0xFFFF0000u | fx->fcw, 0xFFFF0000u | fx->fsw, 0xFFFF0000u | tw, (uint32_t)fx->fip,
                     (uint32_t)(fx->fop & 0x7FF) << 16, (uint32_t)fx->fdp, 0xFFFF0000u};
    memcpy(img, d, 28);
    return 28;
}

static void env_load(struct x87 *x, const uint8_t *img, bool o16)
{
    struct cpu_fxsave *fx = x->fx;
    uint16_t cw, sw, tw;
    if (o16) {
        uint16_t w[7];
        memcpy(w, img, 14);
        cw = w[0], sw = w[1], tw = w[2];
        fx->fip = w[3];
        fx->fdp = w[5];
    } else {
        uint32_t d[7];
        memcpy(d, img, 28);
        cw = (uint16_t)d[0], sw = (uint16_t)d[1], tw = (uint16_t)d[2];
        fx->fip = d[3];
        fx->fop = (uint16_t)((d[4] >> 16) & 0x7FF);
        fx->fdp = d[5];
    }
    set_top_keep_regs(fx, (sw >> FSW_TOP_SHIFT) & 7);
    fx->fcw = fpu_fcw_canon(cw);
    fx->fsw = sw;
    fx->ftw = fpu_abridged_tag(tw);
    fpu_update_es(fx); /* ES/B follow the unmasked-exception state of the loaded words */
}

static void x87_init(struct cpu_fxsave *fx)
{
    set_top_keep_regs(fx, 0);
    fx->fcw = 0x37F;
    fx->fsw = 0;
    fx->ftw = 0;
    fx->fop = 0;
    fx->fip = 0;
    fx->fdp = 0;
}

static bool cmov_cond(uint64_t fl, unsigned opcode, unsigned sub)
{
    bool c;
    switch (sub & 3) {
    case 0: c = fl & RFLAGS_CF; break;
    case 1: c = fl & RFLAGS_ZF; break;
    case 2: c = fl & (RFLAGS_CF | RFLAGS_ZF); break;
    default: c = fl & RFLAGS_PF; break;
    }
    return opcode == 0xDB ? !c : c;
}

/* ---- dispatcher ----------------------------------------------------------------------- */

/* Reserved encodings (#UD, which takes priority over a pending #MF). */
static bool x87_reserved(const struct fpu_op *op)
{
    unsigned sub = (op->modrm >> 3) & 7, m = op->modrm;
    if (op->has_mem)
        return (op->opcode == 0xD9 && sub == 1) || (op->opcode == 0xDB && (sub == 4 || sub == 6)) ||
               (op->opcode == 0xDD && sub == 5);
    switch (op->opcode) {
    case 0xD9:
        return (m >= 0xD1 && m <= 0xD7) || m == 0xE2 || m == 0xE3 || m == 0xE6 || m == 0xE7 || m == 0xEF;
    case 0xDA: return m >= 0xE0 && m != 0xE9;
    case 0xDB: return (m >= 0xE5 && m <= 0xE7) || m >= 0xF8;
    case 0xDD: return m >= 0xF0;
    case 0xDE: return m >= 0xD8 && m <= 0xDF && m != 0xD9;
    case 0xDF: return (m >= 0xE1 && m <= 0xE7) || m >= 0xF8;
    default: return false;
    }
}

static bool non_waiting(const struct fpu_op *op)
{
    unsigned sub = (op->modrm >> 3) & 7;
    if (op->has_mem) {
        if (op->opcode == 0xD9 && sub >= 6) return true;  /* FNSTENV FNSTCW */
        if (op->opcode == 0xDD && sub >= 6) return true;  /* FNSAVE FNSTSW */
        return false;
    }
    return (op->opcode == 0xDB && op->modrm >= 0xE0 && op->modrm <= 0xE4) || /* FNENI FNDISI FNCLEX FNINIT FNSETPM */
           (op->opcode == 0xDF && op->modrm == 0xE0);                        /* FNSTSW AX */
}

static enum fpu_result x87_mem(struct x87 *x)
{
    const struct fpu_op *op = x->op;
    struct cpu_fxsave *fx = x->fx;
    unsigned sub = (op->modrm >> 3) & 7;
    bool o16 = op->mandatory == 0x66;

    switch (op->opcode) {
    case 0xD8: case 0xDA: case 0xDC: case 0xDE: { /* arithmetic with m32fp / m32int / m64fp / m16int */
        static const enum mtype mt[4] = {MT_F32, MT_I32, MT_F64, MT_I16};
        enum mtype t = mt[(op->opcode - 0xD8) >> 1];
        uint8_t m[8] = {0};
        mem_read(x, m, mtype_size[t]);
        bool cmp = sub == 2 || sub == 3;
        if (st_empty(fx, 0)) {
            bool masked = stack_fault(fx, false);
            if (cmp) fx->fsw |= FSW_C0 | FSW_C2 | FSW_C3;
            if (!masked) return FPU_OK;
            if (!cmp) st_put_raw(fx, 0, f80_indefinite);
        } else {
            long double d, r;
            st_get(fx, 0, &d);
            uint16_t sw = hx_arith_mem(op->opcode, sub, &r, &d, m, &x->henv);
            if (!merge_status(fx, sw, FSW_CC)) return FPU_OK;
            if (!cmp) st_put(fx, 0, &r);
        }
        if (sub == 3) st_pop(fx);
        return FPU_OK;
    }
    case 0xD9:
        switch (sub) {
        case 0: load_push(x, MT_F32); return FPU_OK;
        case 2: store_mem(x, MT_F32, false, false); return FPU_OK;
        case 3: store_mem(x, MT_F32, false, true); return FPU_OK;
        case 4: { /* FLDENV */
            uint8_t img[28];
            mem_read(x, img, o16 ? 14 : 28);
            env_load(x, img, o16);
            return FPU_OK;
        }
        case 5: { /* FLDCW */
            uint16_t v;
            mem_read(x, &v, 2);
            fx->fcw = fpu_fcw_canon(v);
            fpu_update_es(fx);
            return FPU_OK;
        }
        case 6: { /* FNSTENV: then masks every exception */
            uint8_t img[28];
            unsigned n = env_image(x, img, o16);
            mem_write(x, img, n);
            fx->fcw |= 0x3F;
            fpu_update_es(fx);
            return FPU_OK;
        }
        case 7: mem_write(x, &fx->fcw, 2); return FPU_OK; /* FNSTCW */
        }
        return FPU_UD;
    case 0xDB:
        switch (sub) {
        case 0: load_push(x, MT_I32); return FPU_OK;
        case 1: store_mem(x, MT_I32, true, true); return FPU_OK;
        case 2: store_mem(x, MT_I32, false, false); return FPU_OK;
        case 3: store_mem(x, MT_I32, false, true); return FPU_OK;
        case 5: { /* FLD m80: no conversion, no exception */
            uint8_t m[10];
            mem_read(x, m, 10);
            if (!st_empty(fx, 7)) {
                if (stack_fault(fx, true)) st_push(fx, f80_indefinite);
                return FPU_OK;
            }
            fx->fsw &= (uint16_t)~FSW_C1;
            st_push(fx, m);
            return FPU_OK;
        }
        case 7: { /* FSTP m80 */
            uint8_t m[10];
            uint16_t old_sw = fx->fsw;
            if (st_empty(fx, 0)) {
                if (!stack_fault(fx, false)) return FPU_OK;
                memcpy(m, f80_indefinite, 10);
            } else {
                memcpy(m, fx->st[0], 10);
                fx->fsw &= (uint16_t)~FSW_C1;
            }
            uint16_t nsw = fx->fsw;
            fx->fsw = old_sw;
            mem_write(x, m, 10); /* may fault: state is committed only afterwards */
            fx->fsw = nsw;
            st_pop(fx);
            return FPU_OK;
        }
        }
        return FPU_UD;
    case 0xDD:
        switch (sub) {
        case 0: load_push(x, MT_F64); return FPU_OK;
        case 1: store_mem(x, MT_I64, true, true); return FPU_OK;
        case 2: store_mem(x, MT_F64, false, false); return FPU_OK;
        case 3: store_mem(x, MT_F64, false, true); return FPU_OK;
        case 4: { /* FRSTOR */
            uint8_t img[28 + 80];
            unsigned n = o16 ? 14 : 28;
            mem_read(x, img, n + 80);
            env_load(x, img, o16);
            for (unsigned j = 0; j < 8; j++) {
                memcpy(fx->st[j], img + n + 10 * j, 10);
                memset(fx->st[j] + 10, 0, 6);
            }
            return FPU_OK;
        }
        case 6: { /* FNSAVE: then FNINIT */
            uint8_t img[28 + 80];
            unsigned n = env_image(x, img, o16);
            for (unsigned j = 0; j < 8; j++) memcpy(img + n + 10 * j, fx->st[j], 10);
            mem_write(x, img, n + 80);
            x87_init(fx);
            return FPU_OK;
        }
        case 7: mem_write(x, &fx->fsw, 2); return FPU_OK; /* FNSTSW m16 */
        }
        return FPU_UD;
    case 0xDF:
        switch (sub) {
        case 0: load_push(x, MT_I16); return FPU_OK;
        case 1: store_mem(x, MT_I16, true, true); return FPU_OK;
        case 2: store_mem(x, MT_I16, false, false); return FPU_OK;
        case 3: store_mem(x, MT_I16, false, true); return FPU_OK;
        case 4: load_push(x, MT_BCD); return FPU_OK;
        case 5: load_push(x, MT_I64); return FPU_OK;
        case 6: store_mem(x, MT_BCD, false, true); return FPU_OK;
        case 7: store_mem(x, MT_I64, false, true); return FPU_OK;
        }
        return FPU_UD;
    }
    return FPU_UD;
}

static enum fpu_result x87_reg(struct x87 *x)
{
    const struct fpu_op *op = x->op;
    struct cpu_fxsave *fx = x->fx;
    unsigned sub = (op->modrm >> 3) & 7, i = op->modrm & 7;
    long double v;

    switch (op->opcode) {
    case 0xD8: /* OP ST0, STi */
        st_get(fx, i, &v);
        if (sub == 2 || sub == 3) compare(x, 0, &v, st_empty(fx, i), sub == 3);
        else arith(x, sub, 0, &v, st_empty(fx, i), false);
        return FPU_OK;
    case 0xDC: /* OP STi, ST0 (sub/subr and div/divr swap names) ; D0-DF: FCOM2/FCOMP3 aliases */
    case 0xDE: /* ... and pop */
        st_get(fx, 0, &v);
        if (sub == 2 || sub == 3) {
            if (op->opcode == 0xDE && sub == 3) {
                if (i != 1) return FPU_UD;
                st_get(fx, 1, &v);
                compare(x, 0, &v, st_empty(fx, 1), 2); /* FCOMPP */
                return FPU_OK;
            }
            st_get(fx, i, &v);
            compare(x, 0, &v, st_empty(fx, i), op->opcode == 0xDE || sub == 3);
            return FPU_OK;
        }
        arith(x, sub >= 4 ? sub ^ 1 : sub, i, &v, st_empty(fx, 0), op->opcode == 0xDE);
        return FPU_OK;
    case 0xD9:
        switch (sub) {
        case 0: /* FLD STi */
            if (st_empty(fx, i)) {
                if (!stack_fault(fx, false)) return FPU_OK;
                st_push(fx, f80_indefinite);
                return FPU_OK;
            }
            if (!st_empty(fx, 7)) {
                if (stack_fault(fx, true)) st_push(fx, f80_indefinite);
                return FPU_OK;
            }
            {
                uint8_t t[10];
                memcpy(t, fx->st[i], 10);
                fx->fsw &= (uint16_t)~FSW_C1;
                st_push(fx, t);
            }
            return FPU_OK;
        case 1: { /* FXCH STi */
            uint8_t a[10], b[10];
            bool ea = st_empty(fx, 0), eb = st_empty(fx, i);
            if (ea || eb) {
                if (!stack_fault(fx, false)) return FPU_OK;
            } else {
                fx->fsw &= (uint16_t)~FSW_C1;
            }
            memcpy(a, ea ? f80_indefinite : fx->st[0], 10);
            memcpy(b, eb ? f80_indefinite : fx->st[i], 10);
            st_put_raw(fx, 0, b);
            st_put_raw(fx, i, a);
            return FPU_OK;
        }
        case 2:
            if (i == 0) return FPU_OK; /* FNOP */
            return FPU_UD;
        case 3: /* FSTP1 (alias of FSTP STi) */
            goto fstp_sti;
        case 4:
            switch (i) {
            case 0: unop(x, U_FCHS); return FPU_OK;
            case 1: unop(x, U_FABS); return FPU_OK;
            case 4: unop(x, U_FTST); return FPU_OK;
            case 5: unop(x, U_FXAM); return FPU_OK;
            }
            return FPU_UD;
        case 5: { /* constants */
            if (i == 7) return FPU_UD;
            if (!st_empty(fx, 7)) {
                if (stack_fault(fx, true)) st_push(fx, f80_indefinite);
                return FPU_OK;
            }
            uint16_t sw = hx_const(i, &v, &x->henv);
            if (!merge_status(fx, sw, FSW_CC)) return FPU_OK;
            fx->fsw &= (uint16_t)~FSW_C1;
            st_push(fx, &v);
            return FPU_OK;
        }
        case 6: {
            static const int8_t map6[8] = {U_F2XM1, U_FYL2X, U_FPTAN, U_FPATAN, U_FXTRACT, U_FPREM1, -1, -2};
            if (map6[i] == -1) { /* FDECSTP */
                fx->fsw &= (uint16_t)~FSW_C1;
                rot_dec(fx);
            } else if (map6[i] == -2) { /* FINCSTP */
                fx->fsw &= (uint16_t)~FSW_C1;
                rot_inc(fx);
            } else {
                unop(x, (enum unop)map6[i]);
            }
            return FPU_OK;
        }
        case 7: {
            static const uint8_t map7[8] = {U_FPREM, U_FYL2XP1, U_FSQRT, U_FSINCOS, U_FRNDINT, U_FSCALE, U_FSIN, U_FCOS};
            unop(x, (enum unop)map7[i]);
            return FPU_OK;
        }
        }
        return FPU_UD;
    case 0xDA:
        if (sub < 4) { /* FCMOVB/E/BE/U */
        fcmov:
            if (st_empty(fx, 0) || st_empty(fx, i)) {
                if (!stack_fault(fx, false)) return FPU_OK;
                /* masked response: ST0 = indefinite whether or not the condition holds */
                st_put_raw(fx, 0, f80_indefinite);
                return FPU_OK;
            }
            if (cmov_cond(*x->env->rflags, op->opcode, sub)) {
                uint8_t t[10];
                memcpy(t, fx->st[i], 10);
                st_put_raw(fx, 0, t);
            }
            return FPU_OK;
        }
        if (op->modrm == 0xE9) { /* FUCOMPP */
            st_get(fx, 1, &v);
            compare(x, 1, &v, st_empty(fx, 1), 2);
            return FPU_OK;
        }
        return FPU_UD;
    case 0xDB:
        if (sub < 4) goto fcmov;
        if (sub == 4) {
            switch (i) {
            case 0: case 1: case 4: return FPU_OK; /* FENI FDISI FSETPM: no-ops since the 387 */
            case 2: fx->fsw &= 0x7F00; return FPU_OK; /* FNCLEX */
            case 3: x87_init(fx); return FPU_OK;      /* FNINIT */
            }
            return FPU_UD;
        }
        if (sub == 5 || sub == 6) { /* FUCOMI / FCOMI */
            st_get(fx, i, &v);
            compare(x, sub == 5 ? 3 : 2, &v, st_empty(fx, i), 0);
            return FPU_OK;
        }
        return FPU_UD;
    case 0xDD:
        switch (sub) {
        case 0: /* FFREE */
            fx->ftw &= (uint8_t)~(1u << phys(fx, i));
            fx->fsw &= (uint16_t)~FSW_C1;
            return FPU_OK;
        case 1: /* FXCH4 alias */
        {
            struct fpu_op o2 = *op;
            o2.opcode = 0xD9;
            o2.modrm = (uint8_t)(0xC8 | i);
            struct x87 x2 = *x;
            x2.op = &o2;
            return x87_reg(&x2);
        }
        case 2: /* FST STi */
        case 3: /* FSTP STi */
        fstp_sti:
            if (st_empty(fx, 0)) {
                if (!stack_fault(fx, false)) return FPU_OK;
                st_put_raw(fx, i, f80_indefinite);
            } else {
                uint8_t t[10];
                memcpy(t, fx->st[0], 10);
                fx->fsw &= (uint16_t)~FSW_C1;
                st_put_raw(fx, i, t);
            }
            if (sub != 2) st_pop(fx);
            return FPU_OK;
        case 4: /* FUCOM */
        case 5: /* FUCOMP */
            st_get(fx, i, &v);
            compare(x, 1, &v, st_empty(fx, i), sub == 5);
            return FPU_OK;
        }
        return FPU_UD;
    case 0xDF:
        switch (sub) {
        case 0: /* FFREEP */
            fx->ftw &= (uint8_t)~(1u << phys(fx, i));
            fx->fsw &= (uint16_t)~FSW_C1;
            st_pop(fx);
            return FPU_OK;
        case 1: { /* FXCH7 alias */
            struct fpu_op o2 = *op;
            o2.opcode = 0xD9;
            o2.modrm = (uint8_t)(0xC8 | i);
            struct x87 x2 = *x;
            x2.op = &o2;
            return x87_reg(&x2);
        }
        case 2: case 3: /* FSTP8 / FSTP9 aliases */
            sub = 3;
            goto fstp_sti;
        case 4:
            if (i != 0) return FPU_UD;
            x->env->gpr[GPR_RAX] = (x->env->gpr[GPR_RAX] & ~0xFFFFull) | fx->fsw; /* FNSTSW AX */
            return FPU_OK;
        case 5: /* FUCOMIP */
        case 6: /* FCOMIP */
            st_get(fx, i, &v);
            compare(x, sub == 5 ? 3 : 2, &v, st_empty(fx, i), 1);
            return FPU_OK;
        }
        return FPU_UD;
    }
    return FPU_UD;
}

enum fpu_result fpu_x87_exec(const struct fpu_op *op, struct fpu_env *env)
{
    struct cpu_fxsave *fx = env->fx;
    if (env->cr0 & (CR0_EM | CR0_TS)) return FPU_NM;
    if (op->opcode < 0xD8 || op->opcode > 0xDF) return FPU_UD;
    if (x87_reserved(op)) return FPU_UD;
    bool nw = non_waiting(op);
    if (!nw && (fx->fsw & FSW_ES)) return FPU_MF;
    struct x87 x = {.op = op, .env = env, .fx = fx,
                    .henv = {.cw = 0xFFFF0000u | fx->fcw, .sw = 0xFFFF0000u | (fx->fsw & FSW_CC),
                             .tw = 0xFFFFFFFFu}};
    uint16_t fop = (uint16_t)(((op->opcode & 7) << 8) | op->modrm);
    enum fpu_result r = op->has_mem ? x87_mem(&x) : x87_reg(&x);
    if (r == FPU_OK && !nw && !(op->opcode == 0xDB && !op->has_mem && op->modrm >= 0xE0 && op->modrm <= 0xE4)) {
        fx->fop = fop;
        fx->fip = op->rip;
        if (op->has_mem) fx->fdp = op->ea;
    }
    return r;
}

enum fpu_result fpu_wait(struct fpu_env *env)
{
    if ((env->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS)) return FPU_NM;
    if (env->fx->fsw & FSW_ES) return FPU_MF;
    return FPU_OK;
}
