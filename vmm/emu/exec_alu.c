/* exec_alu: integer arithmetic and logic instructions (exec part): ADD OR ADC SBB AND SUB XOR
 * CMP TEST INC DEC NOT NEG, MUL IMUL DIV IDIV, shifts and rotates, SHLD/SHRD, CBW/CWD
 * families and the direct flag instructions (LAHF SAHF CLC STC CMC CLD STD).
 * Flags are committed after the destination store so a faulting store leaves them intact.
 */
#include "vmm/emu/exec.h"

static inline struct emu_lazy_flags mkf(unsigned op, unsigned size, uint64_t res, uint64_t s1, uint64_t s2)
{
    return (struct emu_lazy_flags){.res = res, .src1 = s1, .src2 = s2, .op = op, .size = size};
}

static inline uint64_t alu(struct emu_cpu *cpu, unsigned op, uint64_t a, uint64_t b, unsigned size,
                           struct emu_lazy_flags *f)
{
    uint64_t m = szmask(size), r;
    bool c;
    b &= m;
    switch (op) {
    case 0: r = (a + b) & m; *f = mkf(LF_ADD, size, r, a, b); break;
    case 1: r = a | b; *f = mkf(LF_LOGIC, size, r, 0, 0); break;
    case 2:
        c = emu_flags_cf(&cpu->lf);
        r = (a + b + c) & m;
        *f = mkf(c ? LF_ADC1 : LF_ADD, size, r, a, b);
        break;
    case 3:
        c = emu_flags_cf(&cpu->lf);
        r = (a - b - c) & m;
        *f = mkf(c ? LF_SBB1 : LF_SUB, size, r, a, b);
        break;
    case 4: r = a & b; *f = mkf(LF_LOGIC, size, r, 0, 0); break;
    case 6: r = a ^ b; *f = mkf(LF_LOGIC, size, r, 0, 0); break;
    default: r = (a - b) & m; *f = mkf(LF_SUB, size, r, a, b); break; /* SUB, CMP */
    }
    return r;
}

/* ALU op (0 ADD ... 7 CMP) of size sz: r/m op= reg, reg op= r/m, r/m op= imm. The flags are
 * committed after the store, so a faulting store leaves them as they were. */
static ALWAYS_INLINE void alu_rm_r(struct emu_cpu *cpu, const struct insn *in, unsigned op, unsigned sz,
                                   enum opnd_form form)
{
    uint64_t la = 0, a = load_rm_as(cpu, in, sz, form, &la);
    struct emu_lazy_flags f;
    uint64_t r = alu(cpu, op, a, rreg(cpu, in->reg, sz), sz, &f);
    if (op != 7) store_rm_as(cpu, in, sz, form, la, r);
    cpu->lf = f;
}
static ALWAYS_INLINE void alu_r_rm(struct emu_cpu *cpu, const struct insn *in, unsigned op, unsigned sz,
                                   enum opnd_form form)
{
    uint64_t la = 0, b = load_rm_as(cpu, in, sz, form, &la);
    struct emu_lazy_flags f;
    uint64_t r = alu(cpu, op, rreg(cpu, in->reg, sz), b, sz, &f);
    if (op != 7) wreg(cpu, in->reg, r, sz);
    cpu->lf = f;
}
static ALWAYS_INLINE void alu_rm_i(struct emu_cpu *cpu, const struct insn *in, unsigned op, unsigned sz,
                                   enum opnd_form form)
{
    uint64_t la = 0, a = load_rm_as(cpu, in, sz, form, &la);
    struct emu_lazy_flags f;
    uint64_t r = alu(cpu, op, a, in->imm, sz, &f);
    if (op != 7) store_rm_as(cpu, in, sz, form, la, r);
    cpu->lf = f;
}

/* The generic handlers (any size, either form), and the specialized ones for 32- and 64-bit
 * operands with a register or memory r/m, derived from the same three functions. */
#define ALU_HANDLERS(name, op)                                                                          \
    HANDLER(h_##name##_rm_r) { alu_rm_r(cpu, in, op, in->osz, OPND_ANY); }                              \
    HANDLER(h_##name##_r_rm) { alu_r_rm(cpu, in, op, in->osz, OPND_ANY); }                              \
    HANDLER(h_##name##_rm_i) { alu_rm_i(cpu, in, op, in->osz, OPND_ANY); }                              \
    SPECIALIZED_RM(f_##name##_rm_r, alu_rm_r, op)                                                       \
    SPECIALIZED_RM(f_##name##_r_rm, alu_r_rm, op)                                                       \
    SPECIALIZED_RM(f_##name##_rm_i, alu_rm_i, op)
ALU_HANDLERS(add, 0)
ALU_HANDLERS(or, 1)
ALU_HANDLERS(adc, 2)
ALU_HANDLERS(sbb, 3)
ALU_HANDLERS(and, 4)
ALU_HANDLERS(sub, 5)
ALU_HANDLERS(xor, 6)
ALU_HANDLERS(cmp, 7)

#define ALU_FORM_TABLE(form)                                                                            \
    const insn_fn (*const emu_alu_##form[8])[2] = {f_add_##form, f_or_##form,  f_adc_##form, f_sbb_##form, \
                                                   f_and_##form, f_sub_##form, f_xor_##form, f_cmp_##form};
ALU_FORM_TABLE(rm_r)
ALU_FORM_TABLE(r_rm)
ALU_FORM_TABLE(rm_i)

/* TEST r/m, reg and r/m, imm */
static ALWAYS_INLINE void test_rm(struct emu_cpu *cpu, const struct insn *in, uint64_t b, unsigned sz,
                                  enum opnd_form form)
{
    uint64_t la, r = load_rm_as(cpu, in, sz, form, &la) & b & szmask(sz);
    setf(cpu, LF_LOGIC, sz, r, 0, 0);
}
HANDLER(h_test_rm_r) { test_rm(cpu, in, rreg(cpu, in->reg, in->osz), in->osz, OPND_ANY); }
HANDLER(h_test_rm_i) { test_rm(cpu, in, in->imm, in->osz, OPND_ANY); }
SPECIALIZED(f_test_rr8, test_rm(cpu, in, rreg(cpu, in->reg, 1), 1, OPND_REG))
SPECIALIZED(f_test_rr32, test_rm(cpu, in, rreg(cpu, in->reg, 4), 4, OPND_REG))
SPECIALIZED(f_test_rr64, test_rm(cpu, in, rreg(cpu, in->reg, 8), 8, OPND_REG))
SPECIALIZED(f_test_ri32, test_rm(cpu, in, in->imm, 4, OPND_REG))
SPECIALIZED(f_test_ri64, test_rm(cpu, in, in->imm, 8, OPND_REG))
const insn_fn emu_test_rr[3] = {f_test_rr8, f_test_rr32, f_test_rr64};
const insn_fn emu_test_ri[2] = {f_test_ri32, f_test_ri64};

/* INC, DEC: CF is kept */
static ALWAYS_INLINE void incdec(struct emu_cpu *cpu, const struct insn *in, bool dec, unsigned sz, enum opnd_form form)
{
    uint64_t la = 0, a = load_rm_as(cpu, in, sz, form, &la);
    uint64_t r = (dec ? a - 1 : a + 1) & szmask(sz);
    bool cf = emu_flags_cf(&cpu->lf);
    store_rm_as(cpu, in, sz, form, la, r);
    setf(cpu, dec ? LF_DEC : LF_INC, sz, r, a, cf);
}
HANDLER(h_inc) { incdec(cpu, in, false, in->osz, OPND_ANY); }
HANDLER(h_dec) { incdec(cpu, in, true, in->osz, OPND_ANY); }
SPECIALIZED(f_inc32, incdec(cpu, in, false, 4, OPND_REG))
SPECIALIZED(f_inc64, incdec(cpu, in, false, 8, OPND_REG))
SPECIALIZED(f_dec32, incdec(cpu, in, true, 4, OPND_REG))
SPECIALIZED(f_dec64, incdec(cpu, in, true, 8, OPND_REG))
const insn_fn emu_incdec_r[2][2] = {{f_inc32, f_inc64}, {f_dec32, f_dec64}};

HANDLER(h_not)
{
    unsigned sz = in->osz;
    uint64_t la = 0, a = load_rm(cpu, in, sz, &la);
    store_rm(cpu, in, sz, la, ~a & szmask(sz));
}

HANDLER(h_neg)
{
    unsigned sz = in->osz;
    uint64_t la = 0, a = load_rm(cpu, in, sz, &la);
    uint64_t r = (0 - a) & szmask(sz);
    store_rm(cpu, in, sz, la, r);
    setf(cpu, LF_SUB, sz, r, 0, a);
}

/* ---- multiply and divide ---- */

HANDLER(h_mul1)
{
    unsigned sz = in->osz;
    uint64_t la, b = load_rm(cpu, in, sz, &la);
    uint64_t a = rreg(cpu, GPR_RAX, sz);
    switch (sz) {
    case 1: {
        uint64_t r = a * b;
        wreg(cpu, GPR_RAX, r, 2);
        setf(cpu, LF_MUL, 1, r & 0xff, 0, (r >> 8) != 0);
        break;
    }
    case 2:
    case 4: {
        uint64_t r = a * b, hi = r >> (sz * 8), lo = r & szmask(sz);
        wreg(cpu, GPR_RAX, lo, sz);
        wreg(cpu, GPR_RDX, hi, sz);
        setf(cpu, LF_MUL, sz, lo, 0, hi != 0);
        break;
    }
    default: {
        unsigned __int128 r = (unsigned __int128)a * b;
        uint64_t hi = (uint64_t)(r >> 64);
        cpu->s.gpr[GPR_RAX] = (uint64_t)r;
        cpu->s.gpr[GPR_RDX] = hi;
        setf(cpu, LF_MUL, 8, (uint64_t)r, 0, hi != 0);
        break;
    }
    }
}

HANDLER(h_imul1)
{
    unsigned sz = in->osz;
    uint64_t la, b = load_rm(cpu, in, sz, &la);
    uint64_t a = rreg(cpu, GPR_RAX, sz);
    if (sz == 8) {
        __int128 r = (__int128)(int64_t)a * (int64_t)b;
        uint64_t lo = (uint64_t)r, hi = (uint64_t)((unsigned __int128)r >> 64);
        cpu->s.gpr[GPR_RAX] = lo;
        cpu->s.gpr[GPR_RDX] = hi;
        setf(cpu, LF_MUL, 8, lo, 0, r != (__int128)(int64_t)lo);
        return;
    }
    int64_t r = (int64_t)sext(a, sz) * (int64_t)sext(b, sz);
    uint64_t lo = (uint64_t)r & szmask(sz);
    bool ovf = (int64_t)sext(lo, sz) != r;
    if (sz == 1) {
        wreg(cpu, GPR_RAX, (uint64_t)r, 2);
    } else {
        wreg(cpu, GPR_RAX, lo, sz);
        wreg(cpu, GPR_RDX, ((uint64_t)r >> (sz * 8)) & szmask(sz), sz);
    }
    setf(cpu, LF_MUL, sz, lo, 0, ovf);
}

static ALWAYS_INLINE void imul2(struct emu_cpu *cpu, const struct insn *in, uint64_t a, uint64_t b, unsigned sz)
{
    if (sz == 8) {
        __int128 r = (__int128)(int64_t)a * (int64_t)b;
        uint64_t lo = (uint64_t)r;
        cpu->s.gpr[in->reg] = lo;
        setf(cpu, LF_MUL, 8, lo, 0, r != (__int128)(int64_t)lo);
        return;
    }
    int64_t r = (int64_t)sext(a, sz) * (int64_t)sext(b, sz);
    uint64_t lo = (uint64_t)r & szmask(sz);
    wreg(cpu, in->reg, lo, sz);
    setf(cpu, LF_MUL, sz, lo, 0, (int64_t)sext(lo, sz) != r);
}

/* IMUL reg, r/m */
static ALWAYS_INLINE void imul_r_rm(struct emu_cpu *cpu, const struct insn *in, unsigned sz, enum opnd_form form)
{
    uint64_t la, b = load_rm_as(cpu, in, sz, form, &la);
    imul2(cpu, in, rreg(cpu, in->reg, sz), b, sz);
}
HANDLER(h_imul_r_rm) { imul_r_rm(cpu, in, in->osz, OPND_ANY); }
SPECIALIZED(f_imul_r_rm_reg64, imul_r_rm(cpu, in, 8, OPND_REG))
SPECIALIZED(f_imul_r_rm_mem64, imul_r_rm(cpu, in, 8, OPND_MEM))
const insn_fn emu_imul_r_rm64[2] = {f_imul_r_rm_reg64, f_imul_r_rm_mem64};

HANDLER(h_imul_r_rm_i)
{
    uint64_t la, a = load_rm(cpu, in, in->osz, &la);
    imul2(cpu, in, a, in->imm, in->osz);
}

static __attribute__((noreturn)) void raise_de(struct emu_cpu *cpu) { emu_raise(cpu, EXC_DE, 0, false); }

/* DIV/IDIV leave the flags undefined; hardware leaves them as they were on AMD, so do we. */
HANDLER(h_div)
{
    unsigned sz = in->osz;
    uint64_t la, d = load_rm(cpu, in, sz, &la);
    if (d == 0) raise_de(cpu);
    if (sz == 8) {
        unsigned __int128 n = ((unsigned __int128)cpu->s.gpr[GPR_RDX] << 64) | cpu->s.gpr[GPR_RAX];
        unsigned __int128 q = n / d;
        if (q >> 64) raise_de(cpu);
        cpu->s.gpr[GPR_RAX] = (uint64_t)q;
        cpu->s.gpr[GPR_RDX] = (uint64_t)(n % d);
        return;
    }
    uint64_t n = sz == 1 ? rreg(cpu, GPR_RAX, 2) : (rreg(cpu, GPR_RDX, sz) << (sz * 8)) | rreg(cpu, GPR_RAX, sz);
    uint64_t q = n / d, r = n % d;
    if (q > szmask(sz)) raise_de(cpu);
    if (sz == 1) {
        wreg(cpu, GPR_RAX, (r << 8) | q, 2);
    } else {
        wreg(cpu, GPR_RAX, q, sz);
        wreg(cpu, GPR_RDX, r, sz);
    }
}

HANDLER(h_idiv)
{
    unsigned sz = in->osz;
    uint64_t la, d = load_rm(cpu, in, sz, &la);
    if (d == 0) raise_de(cpu);
    if (sz == 8) {
        __int128 n = (__int128)(((unsigned __int128)cpu->s.gpr[GPR_RDX] << 64) | cpu->s.gpr[GPR_RAX]);
        int64_t dv = (int64_t)d;
        __int128 q, r;
        if (dv == -1) {
            if (n < -(__int128)INT64_MAX || n > (__int128)INT64_MAX + 1) raise_de(cpu);
            q = -n;
            r = 0;
        } else {
            q = n / dv;
            r = n % dv;
        }
        if (q > INT64_MAX || q < INT64_MIN) raise_de(cpu);
        cpu->s.gpr[GPR_RAX] = (uint64_t)q;
        cpu->s.gpr[GPR_RDX] = (uint64_t)r;
        return;
    }
    int64_t n = sz == 1 ? (int64_t)sext(rreg(cpu, GPR_RAX, 2), 2)
                        : (int64_t)sext((rreg(cpu, GPR_RDX, sz) << (sz * 8)) | rreg(cpu, GPR_RAX, sz), sz * 2);
    int64_t dv = (int64_t)sext(d, sz);
    if (dv == -1 && n == INT64_MIN) raise_de(cpu);
    int64_t q = n / dv, r = n % dv;
    int64_t lim = (int64_t)1 << (sz * 8 - 1);
    if (q >= lim || q < -lim) raise_de(cpu);
    if (sz == 1) {
        wreg(cpu, GPR_RAX, (((uint64_t)r & 0xff) << 8) | ((uint64_t)q & 0xff), 2);
    } else {
        wreg(cpu, GPR_RAX, (uint64_t)q, sz);
        wreg(cpu, GPR_RDX, (uint64_t)r, sz);
    }
}

/* ---- shifts and rotates ---- */

/* OF after rotates by more than one is undefined; we compute it with the count-1 formula. */
/* Group 2 operation op (ROL ROR RCL RCR SHL SHR SAL SAR) of size sz by count. */
static ALWAYS_INLINE void shift(struct emu_cpu *cpu, const struct insn *in, unsigned op, unsigned sz,
                                enum opnd_form form, uint64_t count)
{
    unsigned bits = sz * 8;
    uint64_t m = szmask(sz);
    unsigned c = (unsigned)(count & (sz == 8 ? 63 : 31));
    uint64_t la = 0, a = load_rm_as(cpu, in, sz, form, &la), r;
    if (c == 0) {
        /* no flags change; a 32-bit register destination is still written (zero-extended) */
        if (sz == 4 && rm_is_reg(in, form)) cpu->s.gpr[in->rm] = a;
        return;
    }
    uint64_t f;
    switch (op) {
    case 0: /* ROL */
    case 1: /* ROR */ {
        unsigned k = c % bits;
        if (op == 0) r = k ? ((a << k) | (a >> (bits - k))) & m : a;
        else r = k ? ((a >> k) | (a << (bits - k))) & m : a;
        store_rm_as(cpu, in, sz, form, la, r);
        f = emu_flags_compute(&cpu->lf) & ~(RFLAGS_CF | RFLAGS_OF);
        if (op == 0) {
            if (r & 1) f |= RFLAGS_CF;
            if (msb(r, sz) ^ (r & 1)) f |= RFLAGS_OF;
        } else {
            if (msb(r, sz)) f |= RFLAGS_CF;
            if (msb(r, sz) ^ ((r >> (bits - 2)) & 1)) f |= RFLAGS_OF;
        }
        set_raw_flags(cpu, f);
        return;
    }
    case 2: /* RCL */
    case 3: /* RCR */ {
        unsigned k = c % (bits + 1);
        uint64_t cf = emu_flags_cf(&cpu->lf);
        f = emu_flags_compute(&cpu->lf) & ~(RFLAGS_CF | RFLAGS_OF);
        r = a;
        /* rotate through carry one bit at a time: counts are small (<= 64) */
        for (unsigned i = 0; i < k; i++) {
            if (op == 2) {
                uint64_t out = msb(r, sz);
                r = ((r << 1) | cf) & m;
                cf = out;
            } else {
                uint64_t out = r & 1;
                r = (r >> 1) | (cf << (bits - 1));
                cf = out;
            }
        }
        store_rm_as(cpu, in, sz, form, la, r);
        if (cf) f |= RFLAGS_CF;
        if (op == 2) {
            if (msb(r, sz) ^ cf) f |= RFLAGS_OF;
        } else {
            if (msb(r, sz) ^ ((r >> (bits - 2)) & 1)) f |= RFLAGS_OF;
        }
        set_raw_flags(cpu, f);
        return;
    }
    case 4: /* SHL */
    case 6:
        r = c < 64 ? (a << c) & m : 0;
        store_rm_as(cpu, in, sz, form, la, r);
        setf(cpu, LF_SHL, sz, r, a, c);
        return;
    case 5: /* SHR */
        r = c < 64 ? a >> c : 0;
        store_rm_as(cpu, in, sz, form, la, r);
        setf(cpu, LF_SHR, sz, r, a, c);
        return;
    default: /* SAR */
        r = (uint64_t)((int64_t)sext(a, sz) >> (c > 63 ? 63 : c)) & m;
        store_rm_as(cpu, in, sz, form, la, r);
        setf(cpu, LF_SAR, sz, r, a, c);
        return;
    }
}

HANDLER(h_shift_1)
{
    shift(cpu, in, (in->modrm >> 3) & 7, in->osz, OPND_ANY, 1);
}
HANDLER(h_shift_cl)
{
    shift(cpu, in, (in->modrm >> 3) & 7, in->osz, OPND_ANY, cpu->s.gpr[GPR_RCX] & 0xff);
}
HANDLER(h_shift_i)
{
    shift(cpu, in, (in->modrm >> 3) & 7, in->osz, OPND_ANY, in->imm & 0xff);
}

/* Register operand, immediate count (emu_specialize takes only counts non-zero after masking). */
#define SHIFT_I(name, op)                                                                \
    SPECIALIZED(f_##name##_i32, shift(cpu, in, op, 4, OPND_REG, in->imm))                \
    SPECIALIZED(f_##name##_i64, shift(cpu, in, op, 8, OPND_REG, in->imm))
SHIFT_I(rol, 0)
SHIFT_I(ror, 1)
SHIFT_I(shl, 4)
SHIFT_I(shr, 5)
SHIFT_I(sar, 7)
const insn_fn emu_shift_i_r[8][2] = {
    [0] = {f_rol_i32, f_rol_i64}, [1] = {f_ror_i32, f_ror_i64}, [4] = {f_shl_i32, f_shl_i64},
    [5] = {f_shr_i32, f_shr_i64}, [7] = {f_sar_i32, f_sar_i64},
};

/* SHLD/SHRD: count masked to 5 (6 for 64-bit) bits; 16-bit counts above 16 are undefined
 * (we shift through a 32-bit concatenation like Intel). Flags: CF = last bit out,
 * OF = sign change (count-1 formula), SF ZF PF from the result, AF cleared. */
static void shxd(struct emu_cpu *cpu, const struct insn *in, uint64_t count, bool left)
{
    unsigned sz = in->osz, bits = sz * 8;
    unsigned c = (unsigned)(count & (sz == 8 ? 63 : 31));
    uint64_t la = 0, a = load_rm(cpu, in, sz, &la), b = rreg(cpu, in->reg, sz), m = szmask(sz), r, cf;
    if (c == 0) {
        if (sz == 4 && in->mod == 3) cpu->s.gpr[in->rm] = a;
        return;
    }
    if (sz == 2) {
        /* 16-bit: operate on dst:src:dst as 48 bits */
        if (left) {
            uint64_t w = (a << 32) | (b << 16) | a;
            r = ((w << c) >> 32) & m;
            cf = (w >> (48 - c)) & 1;
        } else {
            uint64_t w = a | (b << 16) | (a << 32);
            r = (w >> c) & m;
            cf = (w >> (c - 1)) & 1;
        }
    } else if (left) {
        r = ((a << c) | (b >> (bits - c))) & m;
        cf = (a >> (bits - c)) & 1;
    } else {
        r = ((a >> c) | (b << (bits - c))) & m;
        cf = (a >> (c - 1)) & 1;
    }
    store_rm(cpu, in, sz, la, r);
    uint64_t f = 0;
    if (cf) f |= RFLAGS_CF;
    if (__builtin_parity((unsigned)(r & 0xff)) == 0) f |= RFLAGS_PF;
    if (r == 0) f |= RFLAGS_ZF;
    if (msb(r, sz)) f |= RFLAGS_SF;
    /* OF as AMD hardware computes it for every count (SDM: defined for count 1 only) */
    if (left ? (msb(r, sz) ^ cf) : (msb(r, sz) ^ ((r >> (bits - 2)) & 1))) f |= RFLAGS_OF;
    set_raw_flags(cpu, f);
}

HANDLER(h_shld_i)
{
    shxd(cpu, in, in->imm & 0xff, true);
}
HANDLER(h_shld_cl)
{
    shxd(cpu, in, cpu->s.gpr[GPR_RCX] & 0xff, true);
}
HANDLER(h_shrd_i)
{
    shxd(cpu, in, in->imm & 0xff, false);
}
HANDLER(h_shrd_cl)
{
    shxd(cpu, in, cpu->s.gpr[GPR_RCX] & 0xff, false);
}

/* ---- conversions and flag instructions ---- */

HANDLER(h_cbw)
{
    unsigned sz = in->osz;
    wreg(cpu, GPR_RAX, sext(rreg(cpu, GPR_RAX, sz / 2), sz / 2), sz);
}

HANDLER(h_cwd)
{
    unsigned sz = in->osz;
    wreg(cpu, GPR_RDX, msb(rreg(cpu, GPR_RAX, sz), sz) ? ~0ULL : 0, sz);
}

HANDLER(h_lahf)
{
    *reg8p(cpu, REG8_HIGH + GPR_RAX) = (uint8_t)(emu_get_rflags(cpu) & 0xd5) | 2;
}

HANDLER(h_sahf)
{
    uint64_t f = emu_flags_compute(&cpu->lf) & RFLAGS_OF;
    f |= *reg8p(cpu, REG8_HIGH + GPR_RAX) & (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF);
    set_raw_flags(cpu, f);
}

/* ---- instructions only valid outside 64-bit mode ---- */

/* SF ZF PF of a byte result (the BCD instructions and AAM/AAD define these from AL). */
static uint64_t szp8(uint8_t v)
{
    uint64_t f = __builtin_parity(v) ? 0 : RFLAGS_PF;
    if (!v) f |= RFLAGS_ZF;
    if (v & 0x80) f |= RFLAGS_SF;
    return f;
}

/* DAA / DAS (SDM): adjust AL after a packed-BCD addition / subtraction. OF is undefined: 0. */
static void decimal_adjust(struct emu_cpu *cpu, bool sub)
{
    uint64_t fl = emu_flags_compute(&cpu->lf);
    uint8_t *al = reg8p(cpu, GPR_RAX), old = *al;
    bool old_cf = fl & RFLAGS_CF, cf = false, af = false;
    if ((old & 0xf) > 9 || (fl & RFLAGS_AF)) {
        cf = old_cf || (sub ? old < 6 : old > 0xf9);
        *al = (uint8_t)(sub ? old - 6 : old + 6);
        af = true;
    }
    if (old > 0x99 || old_cf) {
        *al = (uint8_t)(sub ? *al - 0x60 : *al + 0x60);
        cf = true;
    }
    set_raw_flags(cpu, szp8(*al) | (cf ? RFLAGS_CF : 0) | (af ? RFLAGS_AF : 0));
}
HANDLER(h_daa) { decimal_adjust(cpu, false); }
HANDLER(h_das) { decimal_adjust(cpu, true); }

/* AAA / AAS (SDM): adjust AX after an unpacked-BCD addition / subtraction (AX +/- 0x106 as
 * Intel documents it; AMD hardware matches). OF SF ZF PF are undefined: from AL. */
static void ascii_adjust(struct emu_cpu *cpu, bool sub)
{
    uint64_t fl = emu_flags_compute(&cpu->lf);
    uint16_t ax = (uint16_t)cpu->s.gpr[GPR_RAX];
    bool adj = (ax & 0xf) > 9 || (fl & RFLAGS_AF);
    if (adj) ax = sub ? (uint16_t)(ax - 6 - 0x100) : (uint16_t)(ax + 0x106);
    ax &= 0xff0f;
    wreg(cpu, GPR_RAX, ax, 2);
    set_raw_flags(cpu, szp8((uint8_t)ax) | (adj ? RFLAGS_CF | RFLAGS_AF : 0));
}
HANDLER(h_aaa) { ascii_adjust(cpu, false); }
HANDLER(h_aas) { ascii_adjust(cpu, true); }

/* AAM imm8: AH = AL / imm8, AL = AL % imm8 (#DE if imm8 is 0). AAD imm8: AL = AL + AH * imm8,
 * AH = 0. SF ZF PF from AL; OF AF CF are undefined: 0. */
HANDLER(h_aam)
{
    uint8_t base = (uint8_t)in->imm, al = *reg8p(cpu, GPR_RAX);
    if (!base) emu_raise(cpu, EXC_DE, 0, false);
    uint16_t ax = (uint16_t)(((al / base) << 8) | (al % base));
    wreg(cpu, GPR_RAX, ax, 2);
    set_raw_flags(cpu, szp8((uint8_t)ax));
}
HANDLER(h_aad)
{
    uint16_t ax = (uint16_t)cpu->s.gpr[GPR_RAX];
    uint8_t al = (uint8_t)((ax & 0xff) + (ax >> 8) * (uint8_t)in->imm);
    wreg(cpu, GPR_RAX, al, 2);
    set_raw_flags(cpu, szp8(al));
}

/* SALC (D6): AL = CF ? 0xFF : 0; flags unchanged. */
HANDLER(h_salc) { *reg8p(cpu, GPR_RAX) = emu_flags_cf(&cpu->lf) ? 0xff : 0; }

/* ARPL r/m16, r16: raise the destination selector's RPL to the source's; ZF says whether it
 * changed. The other flags are unchanged. */
HANDLER(h_arpl)
{
    if (!(cpu->s.cr0 & CR0_PE) || (cpu->s.rflags & RFLAGS_VM)) emu_raise_ud(cpu); /* not recognized in real or v86 mode */
    uint64_t la = 0, dst = load_rm(cpu, in, 2, &la);
    uint64_t src = rreg(cpu, in->reg, 2);
    uint64_t fl = emu_flags_compute(&cpu->lf) & ~RFLAGS_ZF;
    if ((dst & 3) < (src & 3)) {
        store_rm(cpu, in, 2, la, (dst & ~3ULL) | (src & 3));
        fl |= RFLAGS_ZF;
    }
    set_raw_flags(cpu, fl);
}

static void set_cf(struct emu_cpu *cpu, int v) /* v: 0 clear, 1 set, 2 complement */
{
    uint64_t f = emu_flags_compute(&cpu->lf);
    if (v == 0) f &= ~RFLAGS_CF;
    else if (v == 1) f |= RFLAGS_CF;
    else f ^= RFLAGS_CF;
    set_raw_flags(cpu, f);
}
HANDLER(h_clc)
{
    set_cf(cpu, 0);
}
HANDLER(h_stc)
{
    set_cf(cpu, 1);
}
HANDLER(h_cmc)
{
    set_cf(cpu, 2);
}
HANDLER(h_cld)
{
    cpu->s.rflags &= ~RFLAGS_DF;
}
HANDLER(h_std)
{
    cpu->s.rflags |= RFLAGS_DF;
}

HANDLER(h_nop)
{
    (void)cpu;
}
void h_ud(struct emu_cpu *cpu, const struct insn *in) { emu_raise_ud(cpu); }
void h_gp0(struct emu_cpu *cpu, const struct insn *in) { emu_raise_gp0(cpu); }
