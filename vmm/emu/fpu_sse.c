/* fpu_sse: the emulator's SSE/SSE2/SSE3/SSSE3/SSE4.1 and MMX instructions, FXSAVE/FXRSTOR,
 * LDMXCSR/STMXCSR, EMMS, and the dispatcher to the x87 part (fpu_x87.c).
 *
 * Method: every floating-point or packed-integer operation is carried out by the host's own
 * instruction of the same name (inline asm), on copies of the guest registers. Floating-point
 * operations run under the guest's MXCSR (rounding, FZ, DAZ) with every exception masked; the
 * exception flags the host raised are merged into the guest MXCSR afterwards. This makes the
 * results and flags bit-exact with the host CPU. The host's MXCSR is restored after each op.
 *
 * Unmasked SIMD exceptions: when an operation raises a flag whose exception is unmasked in the
 * guest MXCSR, the destination is left unchanged and FPU_XM is returned; with an unmasked
 * invalid/denormal/divide-by-zero only those pre-computation flags are recorded, as the
 * hardware does. Simplifications: the flags come from the masked computation, so an exact tiny
 * result (which raises UE only when UE is unmasked) does not report #XM, and in rare cases the
 * hardware records PE differently (the differential test measures this), and DPPS/DPPD may
 * record flags of a different stage than the hardware. Linux and glibc run with every SIMD
 * exception masked.
 *
 * SSE3, SSSE3 and SSE4.1 are implemented completely but executed and reported in CPUID only
 * when the host has them (they run on the host's instructions). SSE4.2 is not implemented.
 *
 * Encodings are described by one table per opcode map indexed by [opcode][mandatory prefix];
 * the regular forms (xmm op= xmm/mem, mm op= mm/mem) are executed generically, the others
 * (moves with merging rules, GPR operands, shift groups, FXSAVE...) by sse_special().
 */
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "vmm/emu/fpu_internal.h"
#include "vmm/emu/fpu_sse.h"

typedef union {
    uint8_t b[16];
    uint16_t w[8];
    uint32_t d[4];
    uint64_t q[2];
    __m128i v;
} xreg;

typedef void sse_fn(xreg *d, const xreg *s, uint8_t imm);

/* ---- host operations ---------------------------------------------------------------- */

#define XBIN(name, insn)                                                  \
    static void name(xreg *d, const xreg *s, uint8_t imm)                 \
    {                                                                     \
        (void)imm;                                                        \
        __asm__ volatile(insn " %1, %0" : "+x"(d->v) : "x"(s->v));        \
    }

#define MBIN(name, insn)                                                                    \
    static void name(xreg *d, const xreg *s, uint8_t imm)                                   \
    {                                                                                       \
        (void)imm;                                                                          \
        uint64_t a = d->q[0], b = s->q[0];                                                  \
        __asm__ volatile("movq %0, %%mm0\n\tmovq %1, %%mm1\n\t" insn " %%mm1, %%mm0\n\t"    \
                         "movq %%mm0, %0\n\temms"                                           \
                         : "+r"(a) : "r"(b) : "mm0", "mm1");                                \
        d->q[0] = a;                                                                        \
    }

/* Integer ops with both an MMX (no prefix) and an SSE2 (66) form: opcode, mnemonic,
 * MMX memory operand size. */
#define INT_OPS(_)                                                                        \
    _(0x60, punpcklbw, 4) _(0x61, punpcklwd, 4) _(0x62, punpckldq, 4) _(0x63, packsswb, 8)  \
    _(0x64, pcmpgtb, 8) _(0x65, pcmpgtw, 8) _(0x66, pcmpgtd, 8) _(0x67, packuswb, 8)       \
    _(0x68, punpckhbw, 8) _(0x69, punpckhwd, 8) _(0x6A, punpckhdq, 8) _(0x6B, packssdw, 8) \
    _(0x74, pcmpeqb, 8) _(0x75, pcmpeqw, 8) _(0x76, pcmpeqd, 8)                            \
    _(0xD1, psrlw, 8) _(0xD2, psrld, 8) _(0xD3, psrlq, 8) _(0xD4, paddq, 8)                \
    _(0xD5, pmullw, 8) _(0xD8, psubusb, 8) _(0xD9, psubusw, 8) _(0xDA, pminub, 8)          \
    _(0xDB, pand, 8) _(0xDC, paddusb, 8) _(0xDD, paddusw, 8) _(0xDE, pmaxub, 8)            \
    _(0xDF, pandn, 8) _(0xE0, pavgb, 8) _(0xE1, psraw, 8) _(0xE2, psrad, 8)                \
    _(0xE3, pavgw, 8) _(0xE4, pmulhuw, 8) _(0xE5, pmulhw, 8) _(0xE8, psubsb, 8)            \
    _(0xE9, psubsw, 8) _(0xEA, pminsw, 8) _(0xEB, por, 8) _(0xEC, paddsb, 8)               \
    _(0xED, paddsw, 8) _(0xEE, pmaxsw, 8) _(0xEF, pxor, 8) _(0xF1, psllw, 8)               \
    _(0xF2, pslld, 8) _(0xF3, psllq, 8) _(0xF4, pmuludq, 8) _(0xF5, pmaddwd, 8)            \
    _(0xF6, psadbw, 8) _(0xF8, psubb, 8) _(0xF9, psubw, 8) _(0xFA, psubd, 8)               \
    _(0xFB, psubq, 8) _(0xFC, paddb, 8) _(0xFD, paddw, 8) _(0xFE, paddd, 8)

#define DEF_INT(opc, name, msz) XBIN(x_##name, #name) MBIN(m_##name, #name)
INT_OPS(DEF_INT)
#undef DEF_INT
XBIN(x_punpcklqdq, "punpcklqdq")
XBIN(x_punpckhqdq, "punpckhqdq")

/* Floating-point ops in the four forms PS (none), PD (66), SS (F3), SD (F2). */
#define FP4_OPS(_) _(0x51, sqrt) _(0x58, add) _(0x59, mul) _(0x5C, sub) _(0x5D, min) _(0x5E, div) _(0x5F, max)
#define DEF_FP4(opc, name) XBIN(x_##name##ps, #name "ps") XBIN(x_##name##pd, #name "pd") \
    XBIN(x_##name##ss, #name "ss") XBIN(x_##name##sd, #name "sd")
FP4_OPS(DEF_FP4)
#undef DEF_FP4
XBIN(x_rsqrtps, "rsqrtps")
XBIN(x_rsqrtss, "rsqrtss")
XBIN(x_rcpps, "rcpps")
XBIN(x_rcpss, "rcpss")
XBIN(x_andps, "andps")
XBIN(x_andpd, "andpd")
XBIN(x_andnps, "andnps")
XBIN(x_andnpd, "andnpd")
XBIN(x_orps, "orps")
XBIN(x_orpd, "orpd")
XBIN(x_xorps, "xorps")
XBIN(x_xorpd, "xorpd")
XBIN(x_unpcklps, "unpcklps")
XBIN(x_unpcklpd, "unpcklpd")
XBIN(x_unpckhps, "unpckhps")
XBIN(x_unpckhpd, "unpckhpd")
XBIN(x_cvtps2pd, "cvtps2pd")
XBIN(x_cvtpd2ps, "cvtpd2ps")
XBIN(x_cvtss2sd, "cvtss2sd")
XBIN(x_cvtsd2ss, "cvtsd2ss")
XBIN(x_cvtdq2ps, "cvtdq2ps")
XBIN(x_cvtps2dq, "cvtps2dq")
XBIN(x_cvttps2dq, "cvttps2dq")
XBIN(x_cvttpd2dq, "cvttpd2dq")
XBIN(x_cvtdq2pd, "cvtdq2pd")
XBIN(x_cvtpd2dq, "cvtpd2dq")
/* SSE3 */
XBIN(x_addsubps, "addsubps")
XBIN(x_addsubpd, "addsubpd")
XBIN(x_haddps, "haddps")
XBIN(x_haddpd, "haddpd")
XBIN(x_hsubps, "hsubps")
XBIN(x_hsubpd, "hsubpd")
XBIN(x_movsldup, "movsldup")
XBIN(x_movshdup, "movshdup")
XBIN(x_movddup, "movddup")

/* CMPccPS/PD/SS/SD: the predicate is imm8[2:0] (legacy encodings ignore bits 7:3). */
#define CMP_PREDS(_, sfx) _(0, eq, sfx) _(1, lt, sfx) _(2, le, sfx) _(3, unord, sfx) \
    _(4, neq, sfx) _(5, nlt, sfx) _(6, nle, sfx) _(7, ord, sfx)
#define DEF_CMP(n, pred, sfx) XBIN(x_cmp##pred##sfx, "cmp" #pred #sfx)
#define CMP_ENTRY(n, pred, sfx) x_cmp##pred##sfx,
#define DEF_CMP_FORM(sfx)                                                          \
    CMP_PREDS(DEF_CMP, sfx)                                                        \
    static sse_fn *const cmp_##sfx##_tab[8] = {CMP_PREDS(CMP_ENTRY, sfx)};         \
    static void x_cmp##sfx(xreg *d, const xreg *s, uint8_t imm) { cmp_##sfx##_tab[imm & 7](d, s, 0); }
DEF_CMP_FORM(ps)
DEF_CMP_FORM(pd)
DEF_CMP_FORM(ss)
DEF_CMP_FORM(sd)

/* Plain copies and shuffles (no host instruction needed). */
static void x_mov(xreg *d, const xreg *s, uint8_t imm) { (void)imm; *d = *s; }
static void m_mov(xreg *d, const xreg *s, uint8_t imm) { (void)imm; d->q[0] = s->q[0]; }
static void x_pshufd(xreg *d, const xreg *s, uint8_t imm)
{
    xreg r;
    for (int i = 0; i < 4; i++) r.d[i] = s->d[(imm >> (2 * i)) & 3];
    *d = r;
}
static void x_pshufhw(xreg *d, const xreg *s, uint8_t imm)
{
    xreg r = *s;
    for (int i = 0; i < 4; i++) r.w[4 + i] = s->w[4 + ((imm >> (2 * i)) & 3)];
    *d = r;
}
static void x_pshuflw(xreg *d, const xreg *s, uint8_t imm)
{
    xreg r = *s;
    for (int i = 0; i < 4; i++) r.w[i] = s->w[(imm >> (2 * i)) & 3];
    *d = r;
}
static void m_pshufw(xreg *d, const xreg *s, uint8_t imm)
{
    uint16_t r[4];
    for (int i = 0; i < 4; i++) r[i] = s->w[(imm >> (2 * i)) & 3];
    memcpy(&d->q[0], r, 8);
}
static void x_shufps(xreg *d, const xreg *s, uint8_t imm)
{
    xreg r;
    r.d[0] = d->d[imm & 3];
    r.d[1] = d->d[(imm >> 2) & 3];
    r.d[2] = s->d[(imm >> 4) & 3];
    r.d[3] = s->d[(imm >> 6) & 3];
    *d = r;
}
static void x_shufpd(xreg *d, const xreg *s, uint8_t imm)
{
    xreg r;
    r.q[0] = d->q[imm & 1];
    r.q[1] = s->q[(imm >> 1) & 1];
    *d = r;
}


/* ---- SSSE3 / SSE4.1 ------------------------------------------------------------------- */

/* SSSE3 ops with MMX (no prefix) and XMM (66) forms, 0F 38 xx. */
#define SSSE3_OPS(_) _(0x00, pshufb) _(0x01, phaddw) _(0x02, phaddd) _(0x03, phaddsw) _(0x04, pmaddubsw) \
    _(0x05, phsubw) _(0x06, phsubd) _(0x07, phsubsw) _(0x08, psignb) _(0x09, psignw) _(0x0A, psignd)      \
    _(0x0B, pmulhrsw) _(0x1C, pabsb) _(0x1D, pabsw) _(0x1E, pabsd)
#define DEF_SSSE3(opc, name) XBIN(x_##name, #name) MBIN(m_##name, #name)
SSSE3_OPS(DEF_SSSE3)
#undef DEF_SSSE3

/* SSE4.1 0F 38 xx (66) ops: opcode, mnemonic, memory operand size (16 = m128, aligned). */
#define SSE41_OPS(_) _(0x20, pmovsxbw, 8) _(0x21, pmovsxbd, 4) _(0x22, pmovsxbq, 2) _(0x23, pmovsxwd, 8)     \
    _(0x24, pmovsxwq, 4) _(0x25, pmovsxdq, 8) _(0x28, pmuldq, 16) _(0x29, pcmpeqq, 16) _(0x2B, packusdw, 16) \
    _(0x30, pmovzxbw, 8) _(0x31, pmovzxbd, 4) _(0x32, pmovzxbq, 2) _(0x33, pmovzxwd, 8) _(0x34, pmovzxwq, 4) \
    _(0x35, pmovzxdq, 8) _(0x38, pminsb, 16) _(0x39, pminsd, 16) _(0x3A, pminuw, 16) _(0x3B, pminud, 16)     \
    _(0x3C, pmaxsb, 16) _(0x3D, pmaxsd, 16) _(0x3E, pmaxuw, 16) _(0x3F, pmaxud, 16) _(0x40, pmulld, 16)      \
    _(0x41, phminposuw, 16)
#define DEF_SSE41(opc, name, ms) XBIN(x_##name, #name)
SSE41_OPS(DEF_SSE41)
#undef DEF_SSE41

/* Variable blends: the mask is XMM0. */
#define XBLENDV(name, insn)                                                                  \
    static void name(xreg *d, const xreg *s, uint8_t imm, const xreg *x0)                    \
    {                                                                                        \
        (void)imm;                                                                           \
        __asm__ volatile(insn " %1, %0" : "+x"(d->v) : "x"(s->v), "Yz"(x0->v));              \
    }
XBLENDV(x_pblendvb, "pblendvb")
XBLENDV(x_blendvps, "blendvps")
XBLENDV(x_blendvpd, "blendvpd")

/* ROUNDPS/PD/SS/SD: imm8[3:0] selects the rounding (imm8[2]: MXCSR.RC) and precision mask. */
#define ROUND_IMMS(_, insn) _(0, insn) _(1, insn) _(2, insn) _(3, insn) _(4, insn) _(5, insn) _(6, insn) \
    _(7, insn) _(8, insn) _(9, insn) _(10, insn) _(11, insn) _(12, insn) _(13, insn) _(14, insn) _(15, insn)
#define ROUND_CASE(n, insn) case n: __asm__ volatile(insn " $" #n ", %1, %0" : "+x"(d->v) : "x"(s->v)); break;
#define DEF_ROUND(name, insn)                                              \
    static void name(xreg *d, const xreg *s, uint8_t imm)                  \
    {                                                                      \
        switch (imm & 15) { ROUND_IMMS(ROUND_CASE, insn) }                 \
    }
DEF_ROUND(x_roundps, "roundps")
DEF_ROUND(x_roundpd, "roundpd")
DEF_ROUND(x_roundss, "roundss")
DEF_ROUND(x_roundsd, "roundsd")

static void x_blendps(xreg *d, const xreg *s, uint8_t imm)
{
    for (int i = 0; i < 4; i++)
        if (imm & (1 << i)) d->d[i] = s->d[i];
}
static void x_blendpd(xreg *d, const xreg *s, uint8_t imm)
{
    for (int i = 0; i < 2; i++)
        if (imm & (1 << i)) d->q[i] = s->q[i];
}
static void x_pblendw(xreg *d, const xreg *s, uint8_t imm)
{
    for (int i = 0; i < 8; i++)
        if (imm & (1 << i)) d->w[i] = s->w[i];
}
static void x_mpsadbw(xreg *d, const xreg *s, uint8_t imm)
{
    unsigned od = (imm & 4) ? 4 : 0, os = (imm & 3) * 4;
    xreg r;
    for (unsigned i = 0; i < 8; i++) {
        unsigned sum = 0;
        for (unsigned j = 0; j < 4; j++) {
            int a = d->b[od + i + j], b = s->b[os + j];
            sum += (unsigned)(a > b ? a - b : b - a);
        }
        r.w[i] = (uint16_t)sum;
    }
    *d = r;
}
/* PALIGNR: (dest:src) >> imm8 bytes, low half kept. */
static void x_palignr(xreg *d, const xreg *s, uint8_t imm)
{
    uint8_t cat[32];
    memcpy(cat, s->b, 16);
    memcpy(cat + 16, d->b, 16);
    xreg r;
    for (unsigned i = 0; i < 16; i++) r.b[i] = imm + i < 32 ? cat[imm + i] : 0;
    *d = r;
}
static void m_palignr(xreg *d, const xreg *s, uint8_t imm)
{
    uint8_t cat[16];
    memcpy(cat, s->b, 8);
    memcpy(cat + 8, d->b, 8);
    for (unsigned i = 0; i < 8; i++) d->b[i] = imm + i < 16 ? cat[imm + i] : 0;
}
/* The guest MXCSR of the floating-point operation in progress on this thread (set by the
 * dispatcher around each D_FP operation): DPPS/DPPD stop after their multiply stage when it
 * raised an unmasked exception, as the hardware does. */
static __thread uint32_t op_guest_mxcsr;

static inline bool stage_raised_unmasked(void)
{
    uint32_t cur;
    __asm__ volatile("stmxcsr %0" : "=m"(cur));
    return (cur & 0x3Fu & ~(op_guest_mxcsr >> 7)) != 0;
}

/* DPPS / DPPD, following the SDM's order of operations (products, then pairwise sums), each
 * step on the host under the guest MXCSR. */
static void x_dpps(xreg *d, const xreg *s, uint8_t imm)
{
    xreg t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (xreg){.d = {0}};
        if (imm & (0x10 << i)) {
            xreg a = {.d = {d->d[i]}}, b = {.d = {s->d[i]}};
            __asm__ volatile("mulss %1, %0" : "+x"(a.v) : "x"(b.v));
            t[i] = a;
        }
    }
    if (stage_raised_unmasked()) return;
    __asm__ volatile("addss %1, %0" : "+x"(t[0].v) : "x"(t[1].v));
    __asm__ volatile("addss %1, %0" : "+x"(t[2].v) : "x"(t[3].v));
    __asm__ volatile("addss %1, %0" : "+x"(t[0].v) : "x"(t[2].v));
    for (int i = 0; i < 4; i++) d->d[i] = (imm & (1 << i)) ? t[0].d[0] : 0;
}
static void x_dppd(xreg *d, const xreg *s, uint8_t imm)
{
    xreg t[2];
    for (int i = 0; i < 2; i++) {
        t[i] = (xreg){.q = {0}};
        if (imm & (0x10 << i)) {
            xreg a = {.q = {d->q[i]}}, b = {.q = {s->q[i]}};
            __asm__ volatile("mulsd %1, %0" : "+x"(a.v) : "x"(b.v));
            t[i] = a;
        }
    }
    if (stage_raised_unmasked()) return;
    __asm__ volatile("addsd %1, %0" : "+x"(t[0].v) : "x"(t[1].v));
    for (int i = 0; i < 2; i++) d->q[i] = (imm & (1 << i)) ? t[0].q[0] : 0;
}

/* ---- encoding tables ------------------------------------------------------------------ */

enum sse_kind {
    K_NONE = 0,
    K_X_XM,    /* xmm(reg) = fn(xmm(reg), xmm(rm) or mem[msize]) */
    K_M_MM,    /* mm(reg) = fn(mm(reg), mm(rm) or mem[msize]) */
    K_ST_X,    /* xmm(rm) or mem[16] = xmm(reg) (full-register stores) */
    K_SPECIAL, /* sse_special() */
};

enum {
    D_ALIGN = 1 << 0,   /* 16-byte memory operand must be aligned */
    D_FP = 1 << 1,      /* runs under the guest MXCSR */
    D_IMM = 1 << 2,     /* imm8 follows ModRM */
    D_MMX = 1 << 3,     /* touches MMX registers (x87 state checks, MMX transition) */
    D_MEMONLY = 1 << 4, /* register form is #UD */
    D_REGONLY = 1 << 5, /* memory form is #UD */
    D_NOCHK = 1 << 6,   /* no CR0/CR4 checks (hints, fences, MOVNTI) */
    D_SSE = 1 << 7,     /* needs CR4.OSFXSR (set for everything except pure MMX forms) */
};

enum { ISA_BASE = 0, ISA_SSE3, ISA_SSSE3, ISA_SSE41 };

struct sse_desc {
    uint8_t kind;
    uint8_t msize;
    uint8_t flags;
    uint8_t isa;
    sse_fn *fn;
};

#define XX(fn_, ms, fl) {K_X_XM, ms, (fl) | D_SSE, ISA_BASE, fn_}
#define XX3(fn_, ms, fl) {K_X_XM, ms, (fl) | D_SSE, ISA_SSE3, fn_}
#define MM(fn_, ms, fl) {K_M_MM, ms, (fl) | D_MMX, ISA_BASE, fn_}
#define STX(ms, fl) {K_ST_X, ms, (fl) | D_SSE, ISA_BASE, NULL}
#define SP(ms, fl) {K_SPECIAL, ms, (fl), ISA_BASE, NULL}
#define SPX(ms, fl) {K_SPECIAL, ms, (fl) | D_SSE, ISA_BASE, NULL}
#define SPM(ms, fl) {K_SPECIAL, ms, (fl) | D_MMX, ISA_BASE, NULL}
#define SPXM(ms, fl) {K_SPECIAL, ms, (fl) | D_SSE | D_MMX, ISA_BASE, NULL}
#define SPX3(ms, fl) {K_SPECIAL, ms, (fl) | D_SSE, ISA_SSE3, NULL}
#define XS3(fn_, ms, fl) {K_X_XM, ms, (fl) | D_SSE, ISA_SSSE3, fn_}
#define MS3(fn_, ms, fl) {K_M_MM, ms, (fl) | D_MMX, ISA_SSSE3, fn_}
#define X41(fn_, ms, fl) {K_X_XM, ms, (fl) | D_SSE, ISA_SSE41, fn_}
#define SP41(ms, fl) {K_SPECIAL, ms, (fl) | D_SSE, ISA_SSE41, NULL}

#define A D_ALIGN
#define FP D_FP
#define IM D_IMM

/* [opcode][0: none, 1: 66, 2: F3, 3: F2] */
static const struct sse_desc tab0f[256][4] = {
    [0x10] = {XX(x_mov, 16, 0), XX(x_mov, 16, 0), SPX(4, 0), SPX(8, 0)},
    [0x11] = {STX(16, 0), STX(16, 0), SPX(4, 0), SPX(8, 0)},
    [0x12] = {SPX(8, 0), SPX(8, D_MEMONLY), XX3(x_movsldup, 16, A), XX3(x_movddup, 8, 0)},
    [0x13] = {SPX(8, D_MEMONLY), SPX(8, D_MEMONLY)},
    [0x14] = {XX(x_unpcklps, 16, A), XX(x_unpcklpd, 16, A)},
    [0x15] = {XX(x_unpckhps, 16, A), XX(x_unpckhpd, 16, A)},
    [0x16] = {SPX(8, 0), SPX(8, D_MEMONLY), XX3(x_movshdup, 16, A)},
    [0x17] = {SPX(8, D_MEMONLY), SPX(8, D_MEMONLY)},
    [0x18] = {SP(0, D_NOCHK), SP(0, D_NOCHK), SP(0, D_NOCHK), SP(0, D_NOCHK)}, /* PREFETCHh: hints */
    [0x28] = {XX(x_mov, 16, A), XX(x_mov, 16, A)},
    [0x29] = {STX(16, A), STX(16, A)},
    [0x2A] = {SPXM(8, 0), SPXM(8, 0), SPX(4, FP), SPX(4, FP)},
    [0x2B] = {STX(16, A | D_MEMONLY), STX(16, A | D_MEMONLY)},
    [0x2C] = {SPXM(8, FP), SPXM(16, A | FP), SPX(4, FP), SPX(8, FP)},
    [0x2D] = {SPXM(8, FP), SPXM(16, A | FP), SPX(4, FP), SPX(8, FP)},
    [0x2E] = {SPX(4, FP), SPX(8, FP)},
    [0x2F] = {SPX(4, FP), SPX(8, FP)},
    [0x50] = {SPX(0, D_REGONLY), SPX(0, D_REGONLY)},
    [0x51] = {XX(x_sqrtps, 16, A | FP), XX(x_sqrtpd, 16, A | FP), XX(x_sqrtss, 4, FP), XX(x_sqrtsd, 8, FP)},
    [0x52] = {XX(x_rsqrtps, 16, A | FP), {0}, XX(x_rsqrtss, 4, FP)},
    [0x53] = {XX(x_rcpps, 16, A | FP), {0}, XX(x_rcpss, 4, FP)},
    [0x54] = {XX(x_andps, 16, A), XX(x_andpd, 16, A)},
    [0x55] = {XX(x_andnps, 16, A), XX(x_andnpd, 16, A)},
    [0x56] = {XX(x_orps, 16, A), XX(x_orpd, 16, A)},
    [0x57] = {XX(x_xorps, 16, A), XX(x_xorpd, 16, A)},
    [0x58] = {XX(x_addps, 16, A | FP), XX(x_addpd, 16, A | FP), XX(x_addss, 4, FP), XX(x_addsd, 8, FP)},
    [0x59] = {XX(x_mulps, 16, A | FP), XX(x_mulpd, 16, A | FP), XX(x_mulss, 4, FP), XX(x_mulsd, 8, FP)},
    [0x5A] = {XX(x_cvtps2pd, 8, FP), XX(x_cvtpd2ps, 16, A | FP), XX(x_cvtss2sd, 4, FP), XX(x_cvtsd2ss, 8, FP)},
    [0x5B] = {XX(x_cvtdq2ps, 16, A | FP), XX(x_cvtps2dq, 16, A | FP), XX(x_cvttps2dq, 16, A | FP)},
    [0x5C] = {XX(x_subps, 16, A | FP), XX(x_subpd, 16, A | FP), XX(x_subss, 4, FP), XX(x_subsd, 8, FP)},
    [0x5D] = {XX(x_minps, 16, A | FP), XX(x_minpd, 16, A | FP), XX(x_minss, 4, FP), XX(x_minsd, 8, FP)},
    [0x5E] = {XX(x_divps, 16, A | FP), XX(x_divpd, 16, A | FP), XX(x_divss, 4, FP), XX(x_divsd, 8, FP)},
    [0x5F] = {XX(x_maxps, 16, A | FP), XX(x_maxpd, 16, A | FP), XX(x_maxss, 4, FP), XX(x_maxsd, 8, FP)},
#define TAB_INT(opc, name, msz) [opc] = {MM(m_##name, msz, 0), XX(x_##name, 16, A)},
    INT_OPS(TAB_INT)
#undef TAB_INT
    [0x6C] = {{0}, XX(x_punpcklqdq, 16, A)},
    [0x6D] = {{0}, XX(x_punpckhqdq, 16, A)},
    [0x6E] = {SPM(0, 0), SPX(0, 0)},
    [0x6F] = {MM(m_mov, 8, 0), XX(x_mov, 16, A), XX(x_mov, 16, 0)},
    [0x70] = {MM(m_pshufw, 8, IM), XX(x_pshufd, 16, A | IM), XX(x_pshufhw, 16, A | IM), XX(x_pshuflw, 16, A | IM)},
    [0x71] = {SPM(0, IM | D_REGONLY), SPX(0, IM | D_REGONLY)},
    [0x72] = {SPM(0, IM | D_REGONLY), SPX(0, IM | D_REGONLY)},
    [0x73] = {SPM(0, IM | D_REGONLY), SPX(0, IM | D_REGONLY)},
    [0x77] = {SPM(0, 0)},
    [0x7C] = {{0}, XX3(x_haddpd, 16, A | FP), {0}, XX3(x_haddps, 16, A | FP)},
    [0x7D] = {{0}, XX3(x_hsubpd, 16, A | FP), {0}, XX3(x_hsubps, 16, A | FP)},
    [0x7E] = {SPM(0, 0), SPX(0, 0), SPX(8, 0)},
    [0x7F] = {SPM(8, 0), STX(16, A), STX(16, 0)},
    [0xAE] = {SP(0, D_NOCHK)},
    [0xC2] = {XX(x_cmpps, 16, A | FP | IM), XX(x_cmppd, 16, A | FP | IM), XX(x_cmpss, 4, FP | IM), XX(x_cmpsd, 8, FP | IM)},
    [0xC3] = {SP(0, D_NOCHK | D_MEMONLY)},
    [0xC4] = {SPM(2, IM), SPX(2, IM)},
    [0xC5] = {SPM(0, IM | D_REGONLY), SPX(0, IM | D_REGONLY)},
    [0xC6] = {XX(x_shufps, 16, A | IM), XX(x_shufpd, 16, A | IM)},
    [0xD0] = {{0}, XX3(x_addsubpd, 16, A | FP), {0}, XX3(x_addsubps, 16, A | FP)},
    [0xD6] = {{0}, SPX(8, 0), SPXM(0, D_REGONLY), SPXM(0, D_REGONLY)},
    [0xD7] = {SPM(0, D_REGONLY), SPX(0, D_REGONLY)},
    [0xE6] = {{0}, XX(x_cvttpd2dq, 16, A | FP), XX(x_cvtdq2pd, 8, FP), XX(x_cvtpd2dq, 16, A | FP)},
    [0xE7] = {SPM(8, D_MEMONLY), STX(16, A | D_MEMONLY)},
    [0xF0] = {{0}, {0}, {0}, SPX3(16, D_MEMONLY)},
    [0xF7] = {SPM(0, D_REGONLY), SPX(0, D_REGONLY)},
};


static const struct sse_desc tab0f38[256][4] = {
#define TAB_SSSE3(opc, name) [opc] = {MS3(m_##name, 8, 0), XS3(x_##name, 16, A)},
    SSSE3_OPS(TAB_SSSE3)
#undef TAB_SSSE3
#define TAB_SSE41(opc, name, ms) [opc] = {{0}, X41(x_##name, ms, (ms) == 16 ? A : 0)},
    SSE41_OPS(TAB_SSE41)
#undef TAB_SSE41
    [0x10] = {{0}, SP41(16, A)}, /* PBLENDVB */
    [0x14] = {{0}, SP41(16, A)}, /* BLENDVPS */
    [0x15] = {{0}, SP41(16, A)}, /* BLENDVPD */
    [0x17] = {{0}, SP41(16, A)}, /* PTEST */
    [0x2A] = {{0}, X41(x_mov, 16, A | D_MEMONLY)}, /* MOVNTDQA */
};

static const struct sse_desc tab0f3a[256][4] = {
    [0x08] = {{0}, X41(x_roundps, 16, A | FP | IM)},
    [0x09] = {{0}, X41(x_roundpd, 16, A | FP | IM)},
    [0x0A] = {{0}, X41(x_roundss, 4, FP | IM)},
    [0x0B] = {{0}, X41(x_roundsd, 8, FP | IM)},
    [0x0C] = {{0}, X41(x_blendps, 16, A | IM)},
    [0x0D] = {{0}, X41(x_blendpd, 16, A | IM)},
    [0x0E] = {{0}, X41(x_pblendw, 16, A | IM)},
    [0x0F] = {MS3(m_palignr, 8, IM), XS3(x_palignr, 16, A | IM)},
    [0x14] = {{0}, SP41(1, IM)}, /* PEXTRB r32/m8 */
    [0x15] = {{0}, SP41(2, IM)}, /* PEXTRW r32/m16 */
    [0x16] = {{0}, SP41(4, IM)}, /* PEXTRD/PEXTRQ */
    [0x17] = {{0}, SP41(4, IM)}, /* EXTRACTPS */
    [0x20] = {{0}, SP41(1, IM)}, /* PINSRB */
    [0x21] = {{0}, SP41(4, IM)}, /* INSERTPS */
    [0x22] = {{0}, SP41(4, IM)}, /* PINSRD/PINSRQ */
    [0x40] = {{0}, X41(x_dpps, 16, A | FP | IM)},
    [0x41] = {{0}, X41(x_dppd, 16, A | FP | IM)},
    [0x42] = {{0}, X41(x_mpsadbw, 16, A | IM)},
};

#undef A
#undef FP
#undef IM

/* Which optional ISA extensions this build reports and executes: only those the host
 * itself has (operations run on the host's instructions). Computed once; constant after. */
static inline uint8_t isa_enabled_mask(void)
{
    static int cached = -1; /* host CPUID result, immutable once computed (benign race) */
    if (cached < 0) {
        unsigned a, b, c, d;
        __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
        int m = 1 << ISA_BASE;
        if (c & (1u << 0)) m |= 1 << ISA_SSE3;
        if (c & (1u << 9)) m |= 1 << ISA_SSSE3;
        if ((c & (1u << 19)) && (m & (1 << ISA_SSSE3))) m |= 1 << ISA_SSE41;
        cached = m;
    }
    return (uint8_t)cached;
}

static inline __attribute__((always_inline)) const struct sse_desc *sse_lookup(uint8_t map, uint8_t opcode, uint8_t mandatory)
{
    int p = mandatory == 0x66 ? 1 : mandatory == 0xF3 ? 2 : mandatory == 0xF2 ? 3 : 0;
    const struct sse_desc *d = NULL;
    if (map == FPU_MAP_0F) d = &tab0f[opcode][p];
    else if (map == FPU_MAP_0F38) d = &tab0f38[opcode][p];
    else if (map == FPU_MAP_0F3A) d = &tab0f3a[opcode][p];
    if (!d || d->kind == K_NONE) return NULL;
    if (!(isa_enabled_mask() & (1u << d->isa))) return NULL;
    return d;
}

bool fpu_sse_claims(uint8_t map, uint8_t opcode, uint8_t mandatory, bool *has_imm8)
{
    if (has_imm8) *has_imm8 = false;
    if (map == FPU_MAP_X87) return opcode >= 0xD8 && opcode <= 0xDF;
    const struct sse_desc *d = sse_lookup(map, opcode, mandatory);
    if (!d) return false;
    if (has_imm8) *has_imm8 = (d->flags & D_IMM) != 0;
    return true;
}

bool fpu_sse_has_modrm(uint8_t map, uint8_t opcode) { return !(map == FPU_MAP_0F && opcode == 0x77); }

bool fpu_op_uses_rflags(const struct fpu_op *op)
{
    switch (op->map) {
    case FPU_MAP_0F: return op->opcode == 0x2E || op->opcode == 0x2F;
    case FPU_MAP_0F38: return op->opcode == 0x17;
    case FPU_MAP_X87:
        if (op->has_mem) return false;
        if (op->opcode == 0xDA || op->opcode == 0xDB) return op->modrm < 0xE0 || op->modrm >= 0xE8; /* FCMOVcc, F(U)COMI */
        return op->opcode == 0xDF && op->modrm >= 0xE8 && op->modrm < 0xF8;                           /* F(U)COMIP */
    default: return false;
    }
}

void fpu_sse_cpuid(uint32_t *leaf1_ecx, uint32_t *leaf1_edx)
{
    /* EDX: FPU(0) MMX(23) FXSR(24) SSE(25) SSE2(26) */
    *leaf1_edx |= (1u << 0) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26);
    uint8_t m = isa_enabled_mask();
    if (m & (1u << ISA_SSE3)) *leaf1_ecx |= 1u << 0;
    if (m & (1u << ISA_SSSE3)) *leaf1_ecx |= 1u << 9;
    if (m & (1u << ISA_SSE41)) *leaf1_ecx |= 1u << 19;
}

void fpu_reset(struct cpu_fxsave *fx)
{
    memset(fx, 0, sizeof(*fx));
    fx->fcw = 0x37F;
    fx->mxcsr = 0x1F80;
    fx->mxcsr_mask = MXCSR_MASK_SUPPORTED;
}

/* ---- register access ------------------------------------------------------------------ */

static inline void xmm_get(const struct cpu_fxsave *fx, unsigned i, xreg *r) { memcpy(r, fx->xmm[i], 16); }
static inline void xmm_set(struct cpu_fxsave *fx, unsigned i, const xreg *r) { memcpy(fx->xmm[i], r, 16); }
static inline uint64_t mm_get(const struct cpu_fxsave *fx, unsigned i)
{
    uint64_t v;
    memcpy(&v, fx->st[i & 7], 8);
    return v;
}
static inline void mm_set(struct cpu_fxsave *fx, unsigned i, uint64_t v)
{
    memcpy(fx->st[i & 7], &v, 8);
    fx->st[i & 7][8] = 0xFF;
    fx->st[i & 7][9] = 0xFF;
}

/* MMi (physical register i) before the MMX transition, for stores that must not change any
 * state if the memory access faults. */
static inline uint64_t mm_peek(const struct cpu_fxsave *fx, unsigned i)
{
    uint64_t v;
    memcpy(&v, fx->st[((i & 7) - fpu_top(fx)) & 7], 8);
    return v;
}

void fpu_mmx_enter(struct cpu_fxsave *fx)
{
    unsigned top = fpu_top(fx);
    if (top) {
        uint8_t tmp[8][16];
        for (unsigned i = 0; i < 8; i++) memcpy(tmp[i], fx->st[(i - top) & 7], 16);
        memcpy(fx->st, tmp, sizeof(tmp));
        fpu_set_top(fx, 0);
    }
    fx->ftw = 0xFF;
}

static inline uint32_t mx_enter(uint32_t guest)
{
    uint32_t host, g = (guest & 0xFFC0u) | 0x1F80u; /* guest RC/FZ/DAZ, flags clear, all masked */
    __asm__ volatile("stmxcsr %0\n\tldmxcsr %1" : "=m"(host) : "m"(g) : "memory");
    return host;
}

static inline uint32_t mx_leave(uint32_t host)
{
    uint32_t now;
    __asm__ volatile("stmxcsr %0\n\tldmxcsr %1" : "=m"(now) : "m"(host) : "memory");
    return now & 0x3Fu;
}

/* Merge flags raised by an operation; true if one of them is unmasked (#XM). When an unmasked
 * pre-computation exception (invalid, denormal, divide-by-zero) occurs, the hardware records
 * only the pre-computation flags; otherwise every raised flag is recorded. */
static inline bool mx_merge(struct cpu_fxsave *fx, uint32_t raised)
{
    const uint32_t pre = 0x7u; /* IE DE ZE */
    uint32_t unmasked = raised & ~(fx->mxcsr >> 7) & 0x3Fu;
    if (unmasked & pre) {
        fx->mxcsr |= raised & pre;
        return true;
    }
    fx->mxcsr |= raised;
    return unmasked != 0;
}

struct ops {
    const struct fpu_op *op;
    struct fpu_env *env;
    unsigned reg, rm;
};

static inline void rd_mem(struct ops *o, void *buf, unsigned len) { o->env->read(o->env->ctx, o->op->ea, buf, len); }
static inline void wr_mem(struct ops *o, const void *buf, unsigned len) { o->env->write(o->env->ctx, o->op->ea, buf, len); }

static uint64_t gpr_rm_read(struct ops *o, bool w64)
{
    if (o->op->has_mem) {
        uint64_t v = 0;
        rd_mem(o, &v, w64 ? 8 : 4);
        return v;
    }
    uint64_t v = o->env->gpr[o->rm];
    return w64 ? v : (uint32_t)v;
}

/* ---- FXSAVE / FXRSTOR / MXCSR --------------------------------------------------------- */

static enum fpu_result do_fxsave(struct ops *o, bool w64)
{
    struct cpu_fxsave *fx = o->env->fx;
    if (o->op->ea & 15) return FPU_GP;
    uint8_t img[416];
    memset(img, 0, sizeof(img));
    memcpy(img + 0, &fx->fcw, 2);
    memcpy(img + 2, &fx->fsw, 2);
    img[4] = fx->ftw;
    memcpy(img + 6, &fx->fop, 2);
    if (w64) {
        memcpy(img + 8, &fx->fip, 8);
        memcpy(img + 16, &fx->fdp, 8);
    } else {
        uint32_t ip = (uint32_t)fx->fip, dp = (uint32_t)fx->fdp;
        memcpy(img + 8, &ip, 4);
        memcpy(img + 16, &dp, 4);
    }
    memcpy(img + 24, &fx->mxcsr, 4);
    uint32_t mask = MXCSR_MASK_SUPPORTED;
    memcpy(img + 28, &mask, 4);
    for (int i = 0; i < 8; i++) memcpy(img + 32 + 16 * i, fx->st[i], 10);
    unsigned nxmm = o->op->long64 ? 16 : 8;
    memcpy(img + 160, fx->xmm, 16 * nxmm);
    wr_mem(o, img, 160 + 16 * nxmm);
    return FPU_OK;
}

static enum fpu_result do_fxrstor(struct ops *o, bool w64)
{
    struct cpu_fxsave *fx = o->env->fx;
    if (o->op->ea & 15) return FPU_GP;
    uint8_t img[416];
    unsigned nxmm = o->op->long64 ? 16 : 8;
    rd_mem(o, img, 160 + 16 * nxmm);
    uint32_t mxcsr;
    memcpy(&mxcsr, img + 24, 4);
    if (mxcsr & ~MXCSR_MASK_SUPPORTED) return FPU_GP;
    memcpy(&fx->fcw, img + 0, 2);
    memcpy(&fx->fsw, img + 2, 2);
    fx->fcw = fpu_fcw_canon(fx->fcw);
    fpu_update_es(fx);
    fx->ftw = img[4];
    memcpy(&fx->fop, img + 6, 2);
    fx->fop &= 0x7FF;
    if (w64) {
        memcpy(&fx->fip, img + 8, 8);
        memcpy(&fx->fdp, img + 16, 8);
    } else {
        uint32_t ip, dp;
        memcpy(&ip, img + 8, 4);
        memcpy(&dp, img + 16, 4);
        fx->fip = ip;
        fx->fdp = dp;
    }
    fx->mxcsr = mxcsr;
    fx->mxcsr_mask = MXCSR_MASK_SUPPORTED;
    for (int i = 0; i < 8; i++) {
        memcpy(fx->st[i], img + 32 + 16 * i, 10);
        memset(fx->st[i] + 10, 0, 6);
    }
    memcpy(fx->xmm, img + 160, 16 * nxmm);
    return FPU_OK;
}

static enum fpu_result grp15(struct ops *o)
{
    const struct fpu_op *op = o->op;
    struct fpu_env *env = o->env;
    unsigned sub = (op->modrm >> 3) & 7;
    bool w64 = (op->rex & 8) != 0;
    if (!op->has_mem) {
        /* LFENCE / MFENCE / SFENCE: this single-threaded-per-vCPU interpreter performs
         * memory accesses in program order; the host fence is still issued for vCPU threads. */
        if (sub == 5 || sub == 6 || sub == 7) {
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            return FPU_OK;
        }
        return FPU_UD;
    }
    switch (sub) {
    case 0: /* FXSAVE */
    case 1: /* FXRSTOR */
        if (env->cr0 & (CR0_TS | CR0_EM)) return FPU_NM;
        return sub == 0 ? do_fxsave(o, w64) : do_fxrstor(o, w64);
    case 2: /* LDMXCSR */
    case 3: { /* STMXCSR */
        if (env->cr0 & CR0_EM) return FPU_UD;
        if (!(env->cr4 & CR4_OSFXSR)) return FPU_UD;
        if (env->cr0 & CR0_TS) return FPU_NM;
        if (sub == 3) {
            uint32_t v = env->fx->mxcsr;
            wr_mem(o, &v, 4);
            return FPU_OK;
        }
        uint32_t v;
        rd_mem(o, &v, 4);
        if (v & ~MXCSR_MASK_SUPPORTED) return FPU_GP;
        env->fx->mxcsr = v;
        return FPU_OK;
    }
    case 7: /* CLFLUSH: caches are coherent for the emulator; check the address is readable. */
    {
        uint8_t b;
        rd_mem(o, &b, 1);
        return FPU_OK;
    }
    default:
        return FPU_UD; /* XSAVE family: not reported in CPUID */
    }
}

/* ---- special forms -------------------------------------------------------------------- */

static enum fpu_result fp_scalar_to_gpr(struct ops *o, bool dbl, bool trunc)
{
    struct cpu_fxsave *fx = o->env->fx;
    xreg s = {0};
    if (o->op->has_mem) rd_mem(o, &s, dbl ? 8 : 4);
    else xmm_get(fx, o->rm, &s);
    bool w64 = (o->op->rex & 8) != 0;
    uint64_t r;
    uint32_t host = mx_enter(fx->mxcsr);
    if (w64) {
        if (dbl) {
            if (trunc) __asm__ volatile("cvttsd2si %1, %0" : "=r"(r) : "x"(s.v));
            else __asm__ volatile("cvtsd2si %1, %0" : "=r"(r) : "x"(s.v));
        } else {
            if (trunc) __asm__ volatile("cvttss2si %1, %0" : "=r"(r) : "x"(s.v));
            else __asm__ volatile("cvtss2si %1, %0" : "=r"(r) : "x"(s.v));
        }
    } else {
        uint32_t r32;
        if (dbl) {
            if (trunc) __asm__ volatile("cvttsd2si %1, %0" : "=r"(r32) : "x"(s.v));
            else __asm__ volatile("cvtsd2si %1, %0" : "=r"(r32) : "x"(s.v));
        } else {
            if (trunc) __asm__ volatile("cvttss2si %1, %0" : "=r"(r32) : "x"(s.v));
            else __asm__ volatile("cvtss2si %1, %0" : "=r"(r32) : "x"(s.v));
        }
        r = r32;
    }
    if (mx_merge(fx, mx_leave(host))) return FPU_XM;
    o->env->gpr[o->reg] = r;
    return FPU_OK;
}

static enum fpu_result gpr_to_fp_scalar(struct ops *o, bool dbl)
{
    struct cpu_fxsave *fx = o->env->fx;
    bool w64 = (o->op->rex & 8) != 0;
    uint64_t v = gpr_rm_read(o, w64);
    xreg d;
    xmm_get(fx, o->reg, &d);
    uint32_t host = mx_enter(fx->mxcsr);
    if (w64) {
        if (dbl) __asm__ volatile("cvtsi2sdq %1, %0" : "+x"(d.v) : "r"(v));
        else __asm__ volatile("cvtsi2ssq %1, %0" : "+x"(d.v) : "r"(v));
    } else {
        uint32_t v32 = (uint32_t)v;
        if (dbl) __asm__ volatile("cvtsi2sdl %1, %0" : "+x"(d.v) : "r"(v32));
        else __asm__ volatile("cvtsi2ssl %1, %0" : "+x"(d.v) : "r"(v32));
    }
    if (mx_merge(fx, mx_leave(host))) return FPU_XM;
    xmm_set(fx, o->reg, &d);
    return FPU_OK;
}

static enum fpu_result comis(struct ops *o, bool dbl, bool ordered)
{
    struct cpu_fxsave *fx = o->env->fx;
    xreg a, b = {0};
    xmm_get(fx, o->reg, &a);
    if (o->op->has_mem) rd_mem(o, &b, dbl ? 8 : 4);
    else xmm_get(fx, o->rm, &b);
    bool z, p, c;
    uint32_t host = mx_enter(fx->mxcsr);
    if (dbl) {
        if (ordered) __asm__ volatile("comisd %3, %4" : "=@ccz"(z), "=@ccp"(p), "=@ccc"(c) : "x"(b.v), "x"(a.v));
        else __asm__ volatile("ucomisd %3, %4" : "=@ccz"(z), "=@ccp"(p), "=@ccc"(c) : "x"(b.v), "x"(a.v));
    } else {
        if (ordered) __asm__ volatile("comiss %3, %4" : "=@ccz"(z), "=@ccp"(p), "=@ccc"(c) : "x"(b.v), "x"(a.v));
        else __asm__ volatile("ucomiss %3, %4" : "=@ccz"(z), "=@ccp"(p), "=@ccc"(c) : "x"(b.v), "x"(a.v));
    }
    if (mx_merge(fx, mx_leave(host))) return FPU_XM;
    uint64_t f = *o->env->rflags & ~(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
    if (z) f |= RFLAGS_ZF;
    if (p) f |= RFLAGS_PF;
    if (c) f |= RFLAGS_CF;
    *o->env->rflags = f;
    if (o->env->rflags_written) *o->env->rflags_written = true;
    return FPU_OK;
}

/* CVTPI2PS / CVTPI2PD / CVT(T)PS2PI / CVT(T)PD2PI: MMX <-> XMM conversions. */
static enum fpu_result cvt_mmx(struct ops *o, uint8_t opcode, bool pd)
{
    struct cpu_fxsave *fx = o->env->fx;
    xreg s = {0}, d;
    if (opcode == 0x2A) {
        if (o->op->has_mem) rd_mem(o, &s, 8);
        else {
            fpu_mmx_enter(fx);
            s.q[0] = mm_get(fx, o->rm);
        }
        xmm_get(fx, o->reg, &d);
        uint32_t host = mx_enter(fx->mxcsr);
        if (pd) __asm__ volatile("cvtdq2pd %1, %0" : "=x"(d.v) : "x"(s.v));
        else {
            /* CVTPI2PS writes the low two floats and keeps the upper half. */
            xreg t;
            __asm__ volatile("cvtdq2ps %1, %0" : "=x"(t.v) : "x"(s.v));
            d.q[0] = t.q[0];
        }
        if (mx_merge(fx, mx_leave(host))) return FPU_XM;
        xmm_set(fx, o->reg, &d);
        return FPU_OK;
    }
    /* 2C (truncating) / 2D: to MMX */
    if (o->op->has_mem) {
        if (pd && (o->op->ea & 15)) return FPU_GP;
        rd_mem(o, &s, pd ? 16 : 8);
    } else {
        xmm_get(fx, o->rm, &s);
        if (!pd) s.q[1] = 0; /* only the low two floats are converted */
    }
    fpu_mmx_enter(fx);
    uint32_t host = mx_enter(fx->mxcsr);
    if (pd) {
        if (opcode == 0x2C) __asm__ volatile("cvttpd2dq %1, %0" : "=x"(d.v) : "x"(s.v));
        else __asm__ volatile("cvtpd2dq %1, %0" : "=x"(d.v) : "x"(s.v));
    } else {
        if (opcode == 0x2C) __asm__ volatile("cvttps2dq %1, %0" : "=x"(d.v) : "x"(s.v));
        else __asm__ volatile("cvtps2dq %1, %0" : "=x"(d.v) : "x"(s.v));
    }
    if (mx_merge(fx, mx_leave(host))) return FPU_XM;
    mm_set(fx, o->reg, d.q[0]);
    return FPU_OK;
}

static void pslldq(xreg *d, unsigned n)
{
    xreg r = {0};
    if (n < 16) memcpy(r.b + n, d->b, 16 - n);
    *d = r;
}

static void psrldq(xreg *d, unsigned n)
{
    xreg r = {0};
    if (n < 16) memcpy(r.b, d->b + n, 16 - n);
    *d = r;
}

static enum fpu_result shift_group(struct ops *o, uint8_t opcode, bool xmm)
{
    struct cpu_fxsave *fx = o->env->fx;
    unsigned sub = (o->op->modrm >> 3) & 7;
    sse_fn *fn = NULL;
    bool dq = false;
    static sse_fn *const xtab[3][8] = {
        [0] = {[2] = x_psrlw, [4] = x_psraw, [6] = x_psllw},
        [1] = {[2] = x_psrld, [4] = x_psrad, [6] = x_pslld},
        [2] = {[2] = x_psrlq, [6] = x_psllq},
    };
    static sse_fn *const mtab[3][8] = {
        [0] = {[2] = m_psrlw, [4] = m_psraw, [6] = m_psllw},
        [1] = {[2] = m_psrld, [4] = m_psrad, [6] = m_pslld},
        [2] = {[2] = m_psrlq, [6] = m_psllq},
    };
    unsigned grp = (unsigned)(opcode - 0x71);
    if (grp > 2) return FPU_UD;
    fn = (xmm ? xtab : mtab)[grp][sub];
    if (xmm && opcode == 0x73 && (sub == 3 || sub == 7)) dq = true;
    if (!fn && !dq) return FPU_UD;
    xreg cnt = {.q = {o->op->imm8, 0}};
    if (xmm) {
        xreg d;
        xmm_get(fx, o->rm, &d);
        if (dq) {
            if (sub == 3) psrldq(&d, o->op->imm8);
            else pslldq(&d, o->op->imm8);
        } else {
            fn(&d, &cnt, 0);
        }
        xmm_set(fx, o->rm, &d);
    } else {
        fpu_mmx_enter(fx);
        xreg d = {.q = {mm_get(fx, o->rm), 0}};
        fn(&d, &cnt, 0);
        mm_set(fx, o->rm, d.q[0]);
    }
    return FPU_OK;
}

__attribute__((noinline)) static enum fpu_result sse_special(struct ops *o, const struct sse_desc *desc, int pfx)
{
    const struct fpu_op *op = o->op;
    struct fpu_env *env = o->env;
    struct cpu_fxsave *fx = env->fx;
    bool w64 = (op->rex & 8) != 0;
    xreg d, s = {0};

    switch (op->opcode) {
    case 0x10: /* MOVSS / MOVSD load: memory zero-extends, register merges */
        if (op->has_mem) {
            rd_mem(o, &s, desc->msize);
            xmm_set(fx, o->reg, &s);
        } else {
            xmm_get(fx, o->reg, &d);
            xmm_get(fx, o->rm, &s);
            memcpy(&d, &s, desc->msize);
            xmm_set(fx, o->reg, &d);
        }
        return FPU_OK;
    case 0x11: /* MOVSS / MOVSD store */
        xmm_get(fx, o->reg, &s);
        if (op->has_mem) {
            wr_mem(o, &s, desc->msize);
        } else {
            xmm_get(fx, o->rm, &d);
            memcpy(&d, &s, desc->msize);
            xmm_set(fx, o->rm, &d);
        }
        return FPU_OK;
    case 0x12: /* MOVLPS/MOVLPD xmm, m64 ; MOVHLPS xmm, xmm */
    case 0x16: /* MOVHPS/MOVHPD xmm, m64 ; MOVLHPS xmm, xmm */
        xmm_get(fx, o->reg, &d);
        if (op->has_mem) rd_mem(o, &s, 8);
        else {
            xmm_get(fx, o->rm, &s);
            if (op->opcode == 0x12) s.q[0] = s.q[1];
        }
        d.q[op->opcode == 0x12 ? 0 : 1] = s.q[0];
        xmm_set(fx, o->reg, &d);
        return FPU_OK;
    case 0x13: /* MOVLPS/MOVLPD m64, xmm */
    case 0x17: /* MOVHPS/MOVHPD m64, xmm */
        xmm_get(fx, o->reg, &s);
        wr_mem(o, &s.q[op->opcode == 0x13 ? 0 : 1], 8);
        return FPU_OK;
    case 0x18: /* PREFETCHh (and reserved hint NOPs) */
        return FPU_OK;
    case 0x2A:
        if (pfx >= 2) return gpr_to_fp_scalar(o, pfx == 3);
        return cvt_mmx(o, 0x2A, pfx == 1);
    case 0x2C:
    case 0x2D:
        if (pfx >= 2) return fp_scalar_to_gpr(o, pfx == 3, op->opcode == 0x2C);
        return cvt_mmx(o, op->opcode, pfx == 1);
    case 0x2E:
    case 0x2F:
        return comis(o, pfx == 1, op->opcode == 0x2F);
    case 0x50: { /* MOVMSKPS / MOVMSKPD */
        xmm_get(fx, o->rm, &s);
        uint32_t m = 0;
        if (pfx == 1) m = (uint32_t)(s.q[0] >> 63) | (uint32_t)(s.q[1] >> 63) << 1;
        else for (int i = 0; i < 4; i++) m |= (s.d[i] >> 31) << i;
        env->gpr[o->reg] = m;
        return FPU_OK;
    }
    case 0x6E: { /* MOVD/MOVQ mm|xmm, r/m32|64 */
        uint64_t v = gpr_rm_read(o, w64);
        if (pfx == 1) {
            xreg r = {.q = {v, 0}};
            xmm_set(fx, o->reg, &r);
        } else {
            fpu_mmx_enter(fx);
            mm_set(fx, o->reg, v);
        }
        return FPU_OK;
    }
    case 0x7E:
        if (pfx == 2) { /* MOVQ xmm, xmm/m64 */
            if (op->has_mem) rd_mem(o, &s, 8);
            else xmm_get(fx, o->rm, &s);
            s.q[1] = 0;
            xmm_set(fx, o->reg, &s);
            return FPU_OK;
        } else { /* MOVD/MOVQ r/m32|64, mm|xmm */
            uint64_t v;
            if (pfx == 1) {
                xmm_get(fx, o->reg, &s);
                v = s.q[0];
            } else {
                v = mm_peek(fx, o->reg);
            }
            if (!w64) v = (uint32_t)v;
            if (op->has_mem) wr_mem(o, &v, w64 ? 8 : 4);
            else env->gpr[o->rm] = v;
            if (pfx != 1) fpu_mmx_enter(fx);
            return FPU_OK;
        }
    case 0x7F: /* MOVQ mm/m64, mm */
    case 0xE7: /* MOVNTQ m64, mm */
    {
        uint64_t v = mm_peek(fx, o->reg);
        if (op->has_mem) wr_mem(o, &v, 8);
        fpu_mmx_enter(fx);
        if (!op->has_mem) mm_set(fx, o->rm, v);
        return FPU_OK;
    }
    case 0x71:
    case 0x72:
    case 0x73:
        return shift_group(o, op->opcode, pfx == 1);
    case 0x77: /* EMMS: enters MMX state (TOP=0, as the hardware does), then empties every tag */
        fpu_mmx_enter(fx);
        fx->ftw = 0;
        return FPU_OK;
    case 0xAE:
        return grp15(o);
    case 0xC3: { /* MOVNTI m32/m64, r32/r64 */
        uint64_t v = env->gpr[o->reg];
        wr_mem(o, &v, w64 ? 8 : 4);
        return FPU_OK;
    }
    case 0xC4: { /* PINSRW mm|xmm, r32/m16, imm8 */
        uint16_t v;
        if (op->has_mem) rd_mem(o, &v, 2);
        else v = (uint16_t)env->gpr[o->rm];
        if (pfx == 1) {
            xmm_get(fx, o->reg, &d);
            d.w[op->imm8 & 7] = v;
            xmm_set(fx, o->reg, &d);
        } else {
            fpu_mmx_enter(fx);
            uint64_t m = mm_get(fx, o->reg);
            unsigned sh = (op->imm8 & 3) * 16;
            m = (m & ~(0xFFFFull << sh)) | ((uint64_t)v << sh);
            mm_set(fx, o->reg, m);
        }
        return FPU_OK;
    }
    case 0xC5: /* PEXTRW r32, mm|xmm, imm8 */
        if (pfx == 1) {
            xmm_get(fx, o->rm, &s);
            env->gpr[o->reg] = s.w[op->imm8 & 7];
        } else {
            fpu_mmx_enter(fx);
            env->gpr[o->reg] = (mm_get(fx, o->rm) >> ((op->imm8 & 3) * 16)) & 0xFFFF;
        }
        return FPU_OK;
    case 0xD6:
        if (pfx == 1) { /* MOVQ xmm/m64, xmm */
            xmm_get(fx, o->reg, &s);
            if (op->has_mem) wr_mem(o, &s, 8);
            else {
                s.q[1] = 0;
                xmm_set(fx, o->rm, &s);
            }
        } else if (pfx == 2) { /* MOVQ2DQ xmm, mm */
            fpu_mmx_enter(fx);
            xreg r = {.q = {mm_get(fx, o->rm), 0}};
            xmm_set(fx, o->reg, &r);
        } else { /* MOVDQ2Q mm, xmm */
            xmm_get(fx, o->rm, &s);
            fpu_mmx_enter(fx);
            mm_set(fx, o->reg, s.q[0]);
        }
        return FPU_OK;
    case 0xD7: { /* PMOVMSKB r32, mm|xmm */
        uint32_t m = 0;
        if (pfx == 1) {
            xmm_get(fx, o->rm, &s);
            m = (uint32_t)_mm_movemask_epi8(s.v);
        } else {
            fpu_mmx_enter(fx);
            uint64_t v = mm_get(fx, o->rm);
            for (int i = 0; i < 8; i++) m |= (uint32_t)((v >> (8 * i + 7)) & 1) << i;
        }
        env->gpr[o->reg] = m;
        return FPU_OK;
    }
    case 0xF0: /* LDDQU */
        rd_mem(o, &s, 16);
        xmm_set(fx, o->reg, &s);
        return FPU_OK;
    case 0xF7: { /* MASKMOVQ / MASKMOVDQU: store selected bytes to DS:rDI */
        uint64_t la = env->gpr[GPR_RDI];
        if (!op->long64) la = (uint32_t)la;
        unsigned n = pfx == 1 ? 16 : 8;
        xreg data, mask;
        if (pfx == 1) {
            xmm_get(fx, o->reg, &data);
            xmm_get(fx, o->rm, &mask);
        } else {
            data.q[0] = mm_peek(fx, o->reg);
            mask.q[0] = mm_peek(fx, o->rm);
        }
        /* Read-modify-write of the whole span: faults (if any) happen before any byte changes. */
        uint8_t buf[16];
        env->read(env->ctx, la, buf, n);
        bool any = false;
        for (unsigned i = 0; i < n; i++)
            if (mask.b[i] & 0x80) {
                buf[i] = data.b[i];
                any = true;
            }
        if (any) env->write(env->ctx, la, buf, n);
        if (pfx != 1) fpu_mmx_enter(fx);
        return FPU_OK;
    }
    }
    return FPU_UD;
}


/* SSE4.1 forms with GPR operands, implicit XMM0 or flags output (0F 38 / 0F 3A, 66). */
__attribute__((noinline)) static enum fpu_result sse41_special(struct ops *o, const struct sse_desc *desc)
{
    const struct fpu_op *op = o->op;
    struct fpu_env *env = o->env;
    struct cpu_fxsave *fx = env->fx;
    bool w64 = (op->rex & 8) != 0;
    xreg d, s = {0};
    if (op->map == FPU_MAP_0F38) {
        if (op->has_mem) rd_mem(o, &s, 16);
        else xmm_get(fx, o->rm, &s);
        xmm_get(fx, o->reg, &d);
        if (op->opcode == 0x17) { /* PTEST: ZF = (d & s) == 0, CF = (~d & s) == 0 */
            bool z = !((d.q[0] & s.q[0]) | (d.q[1] & s.q[1]));
            bool c = !((~d.q[0] & s.q[0]) | (~d.q[1] & s.q[1]));
            uint64_t f = *env->rflags & ~(RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
            if (z) f |= RFLAGS_ZF;
            if (c) f |= RFLAGS_CF;
            *env->rflags = f;
            if (env->rflags_written) *env->rflags_written = true;
            return FPU_OK;
        }
        xreg x0;
        xmm_get(fx, 0, &x0);
        if (op->opcode == 0x10) x_pblendvb(&d, &s, 0, &x0);
        else if (op->opcode == 0x14) x_blendvps(&d, &s, 0, &x0);
        else x_blendvpd(&d, &s, 0, &x0);
        xmm_set(fx, o->reg, &d);
        return FPU_OK;
    }
    uint8_t imm = op->imm8;
    switch (op->opcode) {
    case 0x14: case 0x15: case 0x16: case 0x17: { /* PEXTRB/W/D/Q, EXTRACTPS: r/m <- xmm(reg) */
        xmm_get(fx, o->reg, &s);
        uint64_t v;
        unsigned n;
        if (op->opcode == 0x14) v = s.b[imm & 15], n = 1;
        else if (op->opcode == 0x15) v = s.w[imm & 7], n = 2;
        else if (op->opcode == 0x16 && w64) v = s.q[imm & 1], n = 8;
        else v = s.d[imm & 3], n = 4;
        if (op->has_mem) wr_mem(o, &v, n);
        else env->gpr[o->rm] = v;
        return FPU_OK;
    }
    case 0x20: case 0x22: { /* PINSRB / PINSRD / PINSRQ */
        unsigned n = op->opcode == 0x20 ? 1 : w64 ? 8 : 4;
        uint64_t v = 0;
        if (op->has_mem) rd_mem(o, &v, n);
        else v = env->gpr[o->rm];
        xmm_get(fx, o->reg, &d);
        if (n == 1) d.b[imm & 15] = (uint8_t)v;
        else if (n == 4) d.d[imm & 3] = (uint32_t)v;
        else d.q[imm & 1] = v;
        xmm_set(fx, o->reg, &d);
        return FPU_OK;
    }
    case 0x21: { /* INSERTPS */
        uint32_t v;
        if (op->has_mem) rd_mem(o, &v, 4);
        else {
            xmm_get(fx, o->rm, &s);
            v = s.d[(imm >> 6) & 3];
        }
        xmm_get(fx, o->reg, &d);
        d.d[(imm >> 4) & 3] = v;
        for (int i = 0; i < 4; i++)
            if (imm & (1 << i)) d.d[i] = 0;
        xmm_set(fx, o->reg, &d);
        return FPU_OK;
    }
    }
    (void)desc;
    return FPU_UD;
}

/* ---- dispatcher ----------------------------------------------------------------------- */

enum fpu_result fpu_sse_exec(const struct fpu_op *op, struct fpu_env *env)
{
    if (op->map == FPU_MAP_X87) return fpu_x87_exec(op, env);
    const struct sse_desc *desc = sse_lookup(op->map, op->opcode, op->mandatory);
    if (!desc) return FPU_UD;
    struct cpu_fxsave *fx = env->fx;
    uint8_t fl = desc->flags;

    if ((fl & D_MEMONLY) && !op->has_mem) return FPU_UD;
    if ((fl & D_REGONLY) && op->has_mem) return FPU_UD;
    if (!(fl & D_NOCHK)) {
        if (env->cr0 & CR0_EM) return FPU_UD;
        if ((fl & D_SSE) && !(env->cr4 & CR4_OSFXSR)) return FPU_UD;
        if (env->cr0 & CR0_TS) return FPU_NM;
        if ((fl & D_MMX) && (fx->fsw & FSW_ES)) return FPU_MF;
    }

    struct ops o = {
        .op = op,
        .env = env,
        .reg = ((op->modrm >> 3) & 7) | ((op->rex & 4) << 1),
        .rm = (op->modrm & 7) | ((op->rex & 1) << 3),
    };
    if (op->has_mem && (fl & D_ALIGN) && desc->msize == 16 && (op->ea & 15)) return FPU_GP;

    switch (desc->kind) {
    case K_X_XM: {
        xreg d, s;
        if (op->has_mem) {
            if (desc->msize < 16) memset(&s, 0, sizeof(s));
            rd_mem(&o, &s, desc->msize);
        } else {
            xmm_get(fx, o.rm, &s);
        }
        xmm_get(fx, o.reg, &d);
        if (fl & D_FP) {
            op_guest_mxcsr = fx->mxcsr;
            uint32_t host = mx_enter(fx->mxcsr);
            desc->fn(&d, &s, op->imm8);
            if (mx_merge(fx, mx_leave(host))) return FPU_XM;
        } else {
            desc->fn(&d, &s, op->imm8);
        }
        xmm_set(fx, o.reg, &d);
        return FPU_OK;
    }
    case K_M_MM: {
        xreg d = {0}, s = {0};
        if (op->has_mem) rd_mem(&o, &s, desc->msize);
        fpu_mmx_enter(fx);
        if (!op->has_mem) s.q[0] = mm_get(fx, o.rm);
        d.q[0] = mm_get(fx, o.reg);
        desc->fn(&d, &s, op->imm8);
        mm_set(fx, o.reg, d.q[0]);
        return FPU_OK;
    }
    case K_ST_X: {
        xreg s;
        xmm_get(fx, o.reg, &s);
        if (op->has_mem) wr_mem(&o, &s, 16);
        else xmm_set(fx, o.rm, &s);
        return FPU_OK;
    }
    default:
        if (op->map != FPU_MAP_0F) return sse41_special(&o, desc);
        return sse_special(&o, desc, op->mandatory == 0x66 ? 1 : op->mandatory == 0xF3 ? 2 : op->mandatory == 0xF2 ? 3 : 0);
    }
}
