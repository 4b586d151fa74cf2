/* exec_move: data movement instructions (exec part): MOV (all forms), MOVZX MOVSX MOVSXD LEA
 * XCHG CMPXCHG CMPXCHG8B/16B XADD BSWAP MOVNTI MOVBE, PUSH/POP (register, immediate, r/m),
 * PUSHF/POPF, ENTER/LEAVE, XLAT, CMOVcc and SETcc.
 * The emulator runs one vCPU per thread and LOCKed operations are executed as plain
 * read-modify-writes: atomicity against other vCPUs is not provided.
 */
#include "vmm/emu/exec.h"

/* MOV r/m, reg; reg, r/m; r/m, imm; reg, imm */
static ALWAYS_INLINE void mov_rm_r(struct emu_cpu *cpu, const struct insn *in, unsigned sz, enum opnd_form form)
{
    uint64_t v = rreg(cpu, in->reg, sz);
    if (rm_is_reg(in, form)) wreg(cpu, in->rm, v, sz);
    else mwrite(cpu, ea(cpu, in), v, sz);
}
static ALWAYS_INLINE void mov_r_rm(struct emu_cpu *cpu, const struct insn *in, unsigned sz, enum opnd_form form)
{
    uint64_t la, v = load_rm_as(cpu, in, sz, form, &la);
    wreg(cpu, in->reg, v, sz);
}
static ALWAYS_INLINE void mov_rm_i(struct emu_cpu *cpu, const struct insn *in, unsigned sz, enum opnd_form form)
{
    if (rm_is_reg(in, form)) wreg(cpu, in->rm, in->imm, sz);
    else mwrite(cpu, ea(cpu, in), in->imm, sz);
}
HANDLER(h_mov_rm_r) { mov_rm_r(cpu, in, in->osz, OPND_ANY); }
HANDLER(h_mov_r_rm) { mov_r_rm(cpu, in, in->osz, OPND_ANY); }
HANDLER(h_mov_rm_i) { mov_rm_i(cpu, in, in->osz, OPND_ANY); }
HANDLER(h_mov_r_i) { wreg(cpu, in->reg, in->imm, in->osz); }
SPECIALIZED_RM(f_mov_rm_r, mov_rm_r)
SPECIALIZED_RM(f_mov_r_rm, mov_r_rm)
SPECIALIZED_RM(f_mov_rm_i, mov_rm_i)
SPECIALIZED(f_mov_r_i32, wreg(cpu, in->reg, in->imm, 4))
SPECIALIZED(f_mov_r_i64, wreg(cpu, in->reg, in->imm, 8))
const insn_fn (*const emu_mov_rm_r)[2] = f_mov_rm_r, (*const emu_mov_r_rm)[2] = f_mov_r_rm,
              (*const emu_mov_rm_i)[2] = f_mov_rm_i;
const insn_fn emu_mov_r_i[2] = {f_mov_r_i32, f_mov_r_i64};

HANDLER(h_mov_a_moffs)
{
    uint64_t v = mread(cpu, lin_seg(cpu, in->seg, ea_off(cpu, in)), in->osz);
    wreg(cpu, GPR_RAX, v, in->osz);
}

HANDLER(h_mov_moffs_a)
{
    mwrite(cpu, lin_seg(cpu, in->seg, ea_off(cpu, in)), rreg(cpu, GPR_RAX, in->osz), in->osz);
}

/* MOVZX, MOVSX, MOVSXD: a source of ssz bytes into a destination of dsz */
static ALWAYS_INLINE void mov_extend(struct emu_cpu *cpu, const struct insn *in, unsigned ssz, unsigned dsz, bool sign,
                                     enum opnd_form form)
{
    uint64_t la, v = load_rm_as(cpu, in, ssz, form, &la);
    wreg(cpu, in->reg, sign ? sext(v, ssz) : v, dsz);
}
HANDLER(h_movzx) { mov_extend(cpu, in, (in->op & 1) ? 2 : 1, in->osz, false, OPND_ANY); }
HANDLER(h_movsx) { mov_extend(cpu, in, (in->op & 1) ? 2 : 1, in->osz, true, OPND_ANY); }
HANDLER(h_movsxd) { mov_extend(cpu, in, in->osz == 8 ? 4 : in->osz, in->osz, true, OPND_ANY); }
/* a zero-extended byte or word is the same in a 32- or 64-bit destination: one form for both */
SPECIALIZED(f_movzx8_reg, mov_extend(cpu, in, 1, 8, false, OPND_REG))
SPECIALIZED(f_movzx8_mem, mov_extend(cpu, in, 1, 8, false, OPND_MEM))
SPECIALIZED(f_movzx16_reg, mov_extend(cpu, in, 2, 8, false, OPND_REG))
SPECIALIZED(f_movzx16_mem, mov_extend(cpu, in, 2, 8, false, OPND_MEM))
SPECIALIZED(f_movsxd_reg, mov_extend(cpu, in, 4, 8, true, OPND_REG))
SPECIALIZED(f_movsxd_mem, mov_extend(cpu, in, 4, 8, true, OPND_MEM))
const insn_fn emu_movzx[2][2] = {{f_movzx8_reg, f_movzx8_mem}, {f_movzx16_reg, f_movzx16_mem}};
const insn_fn emu_movsxd64[2] = {f_movsxd_reg, f_movsxd_mem};

HANDLER(h_lea) { wreg(cpu, in->reg, ea_off(cpu, in), in->osz); }
SPECIALIZED(f_lea32, wreg(cpu, in->reg, ea_off(cpu, in), 4))
SPECIALIZED(f_lea64, wreg(cpu, in->reg, ea_off(cpu, in), 8))
const insn_fn emu_lea[2] = {f_lea32, f_lea64};

HANDLER(h_xchg_rm_r)
{
    unsigned sz = in->osz;
    uint64_t la = 0, a = load_rm(cpu, in, sz, &la), b = rreg(cpu, in->reg, sz);
    store_rm(cpu, in, sz, la, b);
    wreg(cpu, in->reg, a, sz);
}

HANDLER(h_xchg_a_r)
{
    unsigned sz = in->osz;
    uint64_t a = rreg(cpu, GPR_RAX, sz), b = rreg(cpu, in->reg, sz);
    wreg(cpu, GPR_RAX, b, sz);
    wreg(cpu, in->reg, a, sz);
}

HANDLER(h_cmpxchg)
{
    unsigned sz = in->osz;
    uint64_t la = 0, d = load_rm(cpu, in, sz, &la), acc = rreg(cpu, GPR_RAX, sz);
    if (d == acc) {
        store_rm(cpu, in, sz, la, rreg(cpu, in->reg, sz));
    } else {
        if (in->mod != 3) mwrite(cpu, la, d, sz); /* the destination is written back either way */
        wreg(cpu, GPR_RAX, d, sz);
    }
    setf(cpu, LF_SUB, sz, (acc - d) & szmask(sz), acc, d);
}

void h_cmpxchg8b16b(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t la = ea(cpu, in);
    uint64_t f = emu_flags_compute(&cpu->lf) & ~RFLAGS_ZF;
    if (in->rex & 8) {
        if (la & 15) emu_raise_gp0(cpu);
        uint64_t lo = emu_read64(cpu, la), hi = emu_read64(cpu, la + 8);
        if (lo == cpu->s.gpr[GPR_RAX] && hi == cpu->s.gpr[GPR_RDX]) {
            emu_write64(cpu, la, cpu->s.gpr[GPR_RBX]);
            emu_write64(cpu, la + 8, cpu->s.gpr[GPR_RCX]);
            f |= RFLAGS_ZF;
        } else {
            emu_write64(cpu, la, lo);
            emu_write64(cpu, la + 8, hi);
            cpu->s.gpr[GPR_RAX] = lo;
            cpu->s.gpr[GPR_RDX] = hi;
        }
    } else {
        uint64_t v = emu_read64(cpu, la);
        uint64_t cmp = (uint32_t)cpu->s.gpr[GPR_RAX] | (cpu->s.gpr[GPR_RDX] << 32);
        if (v == cmp) {
            emu_write64(cpu, la, (uint32_t)cpu->s.gpr[GPR_RBX] | (cpu->s.gpr[GPR_RCX] << 32));
            f |= RFLAGS_ZF;
        } else {
            emu_write64(cpu, la, v);
            cpu->s.gpr[GPR_RAX] = (uint32_t)v;
            cpu->s.gpr[GPR_RDX] = v >> 32;
        }
    }
    set_raw_flags(cpu, f);
}

HANDLER(h_xadd)
{
    unsigned sz = in->osz;
    uint64_t la = 0, d = load_rm(cpu, in, sz, &la), s = rreg(cpu, in->reg, sz);
    uint64_t r = (d + s) & szmask(sz);
    if (in->mod != 3) {
        mwrite(cpu, la, r, sz);
        wreg(cpu, in->reg, d, sz);
    } else {
        wreg(cpu, in->reg, d, sz);
        wreg(cpu, in->rm, r, sz);
    }
    setf(cpu, LF_ADD, sz, r, d, s);
}

HANDLER(h_bswap)
{
    uint64_t *r = &cpu->s.gpr[in->reg];
    if (in->osz == 8) *r = __builtin_bswap64(*r);
    else if (in->osz == 4) *r = __builtin_bswap32((uint32_t)*r);
    else *r &= ~0xffffULL; /* 16-bit BSWAP is undefined; hardware gives 0 */
}

void h_movnti(struct emu_cpu *cpu, const struct insn *in) { mwrite(cpu, ea(cpu, in), rreg(cpu, in->reg, in->osz), in->osz); }

static uint64_t bswap_sz(uint64_t v, unsigned sz)
{
    return sz == 8 ? __builtin_bswap64(v) : sz == 4 ? __builtin_bswap32((uint32_t)v) : __builtin_bswap16((uint16_t)v);
}

void h_movbe(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
    uint64_t la = ea(cpu, in);
    if (in->op == 0xf0) wreg(cpu, in->reg, bswap_sz(mread(cpu, la, sz), sz), sz);
    else mwrite(cpu, la, bswap_sz(rreg(cpu, in->reg, sz), sz), sz);
}

/* ---- stack ---- */

HANDLER(h_push_r) { pushsz(cpu, rreg(cpu, in->reg, in->osz), in->osz); }
static ALWAYS_INLINE void pop_r(struct emu_cpu *cpu, const struct insn *in, unsigned sz)
{
    uint64_t v = popsz(cpu, sz);
    wreg(cpu, in->reg, v, sz);
}
HANDLER(h_pop_r) { pop_r(cpu, in, in->osz); }
SPECIALIZED(f_push_r64, pushsz(cpu, rreg(cpu, in->reg, 8), 8))
SPECIALIZED(f_pop_r64, pop_r(cpu, in, 8))
const insn_fn emu_push_r64 = f_push_r64, emu_pop_r64 = f_pop_r64;

HANDLER(h_push_i)
{
    pushsz(cpu, in->imm, in->osz);
}

HANDLER(h_push_rm)
{
    uint64_t la, v = load_rm(cpu, in, in->osz, &la);
    pushsz(cpu, v, in->osz);
}

/* POP r/m: the address is computed with RSP already incremented (SDM). */
void h_pop_rm(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
    uint64_t sp = cpu->s.gpr[GPR_RSP];
    uint64_t v = mread(cpu, lin_seg(cpu, SEG_SS, sp), sz);
    if (in->mod == 3) {
        cpu->s.gpr[GPR_RSP] = sp + sz;
        wreg(cpu, in->rm, v, sz);
        return;
    }
    cpu->s.gpr[GPR_RSP] = sp + sz;
    uint64_t off = ea_off(cpu, in);
    cpu->s.gpr[GPR_RSP] = sp;
    mwrite(cpu, lin_seg(cpu, in->seg, off), v, sz);
    cpu->s.gpr[GPR_RSP] = sp + sz;
}

/* PUSHA/PUSHAD (outside 64-bit mode): EAX ECX EDX EBX, the original ESP, EBP ESI EDI. Every
 * store is done before ESP changes. */
void h_pusha(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
    uint64_t sp = cpu->s.gpr[GPR_RSP];
    for (unsigned r = GPR_RAX; r <= GPR_RDI; r++) {
        sp = stack_add(cpu, sp, -(uint64_t)sz);
        mwrite(cpu, lin_seg(cpu, SEG_SS, sp), rreg(cpu, r, sz), sz);
    }
    cpu->s.gpr[GPR_RSP] = sp;
}

/* POPA/POPAD: EDI ESI EBP, (the saved ESP is skipped), EBX EDX ECX EAX. */
void h_popa(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
    uint64_t sp = cpu->s.gpr[GPR_RSP], v[8];
    for (int r = GPR_RDI; r >= GPR_RAX; r--) {
        v[r] = mread(cpu, lin_seg(cpu, SEG_SS, sp), sz);
        sp = stack_add(cpu, sp, sz);
    }
    for (unsigned r = GPR_RAX; r <= GPR_RDI; r++)
        if (r != GPR_RSP) wreg(cpu, r, v[r], sz);
    cpu->s.gpr[GPR_RSP] = sp;
}

void h_pushf(struct emu_cpu *cpu, const struct insn *in)
{
    if (unlikely(emu_v86_iopl_trap(cpu))) emu_raise_gp0(cpu);
    pushsz(cpu, emu_get_rflags(cpu) & ~(RFLAGS_VM | RFLAGS_RF), in->osz);
}

/* POPF: IOPL changes only at CPL 0, IF only when CPL <= IOPL; VM, VIF, VIP are kept and RF
 * is cleared. */
void h_popf(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
    if (unlikely(emu_v86_iopl_trap(cpu))) emu_raise_gp0(cpu);
    uint64_t v = popsz(cpu, sz);
    uint64_t old = emu_get_rflags(cpu);
    uint64_t mask = ARITH_FLAGS | RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_IOPL | RFLAGS_NT | RFLAGS_AC | RFLAGS_ID;
    unsigned iopl = (old >> 12) & 3;
    if (cpu->cpl > 0) mask &= ~RFLAGS_IOPL;
    if (cpu->cpl > iopl) mask &= ~RFLAGS_IF;
    if (sz == 2) mask &= 0xffff;
    uint64_t nv = ((old & ~mask) | (v & mask)) & ~RFLAGS_RF;
    emu_set_rflags(cpu, nv);
}

void h_enter(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz, level = in->imm2 & 31;
    uint64_t size = in->imm & 0xffff;
    uint64_t rbp = cpu->s.gpr[GPR_RBP], sp = cpu->s.gpr[GPR_RSP];
    sp -= sz;
    mwrite(cpu, lin_seg(cpu, SEG_SS, sp), rbp, sz);
    uint64_t frame = sp;
    if (level > 0) {
        uint64_t bp = rbp;
        for (unsigned i = 1; i < level; i++) {
            bp -= sz;
            uint64_t v = mread(cpu, lin_seg(cpu, SEG_SS, bp), sz);
            sp -= sz;
            mwrite(cpu, lin_seg(cpu, SEG_SS, sp), v, sz);
        }
        sp -= sz;
        mwrite(cpu, lin_seg(cpu, SEG_SS, sp), frame, sz);
    }
    sp -= size;
    (void)lin_seg(cpu, SEG_SS, sp);
    wreg(cpu, GPR_RBP, frame, sz);
    cpu->s.gpr[GPR_RSP] = sp;
}

void h_leave(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
    uint64_t bp = cpu->s.gpr[GPR_RBP];
    uint64_t v = mread(cpu, lin_seg(cpu, SEG_SS, bp), sz);
    cpu->s.gpr[GPR_RSP] = bp + sz;
    wreg(cpu, GPR_RBP, v, sz);
}

void h_xlat(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t off = cpu->s.gpr[GPR_RBX] + (cpu->s.gpr[GPR_RAX] & 0xff);
    if (in->asz == 4) off = (uint32_t)off;
    *reg8p(cpu, GPR_RAX) = emu_read8(cpu, lin_seg(cpu, in->seg, off));
}

/* CMOVcc: the source is read whatever the condition; a 32-bit destination is zero-extended
 * whatever the condition */
static ALWAYS_INLINE void cmov(struct emu_cpu *cpu, const struct insn *in, unsigned sz, enum opnd_form form)
{
    uint64_t la, v = load_rm_as(cpu, in, sz, form, &la);
    if (cond(cpu, in->op & 15)) wreg(cpu, in->reg, v, sz);
    else if (sz == 4) cpu->s.gpr[in->reg] = (uint32_t)cpu->s.gpr[in->reg];
}
HANDLER(h_cmov) { cmov(cpu, in, in->osz, OPND_ANY); }
SPECIALIZED(f_cmov_r32, cmov(cpu, in, 4, OPND_REG))
SPECIALIZED(f_cmov_r64, cmov(cpu, in, 8, OPND_REG))
const insn_fn emu_cmov_r[2] = {f_cmov_r32, f_cmov_r64};

HANDLER(h_setcc)
{
    store_rm_new(cpu, in, 1, cond(cpu, in->op & 15));
}
