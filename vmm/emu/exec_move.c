/* exec_move: data movement instructions (exec part): MOV (all forms), MOVZX MOVSX MOVSXD LEA
 * XCHG CMPXCHG CMPXCHG8B/16B XADD BSWAP MOVNTI MOVBE, PUSH/POP (register, immediate, r/m),
 * PUSHF/POPF, ENTER/LEAVE, XLAT, CMOVcc and SETcc.
 * The emulator runs one vCPU per thread and LOCKed operations are executed as plain
 * read-modify-writes: atomicity against other vCPUs is not provided.
 */
#include "vmm/emu/exec.h"

void h_mov_rm_r(struct emu_cpu *cpu, const struct insn *in)
{
    store_rm_new(cpu, in, in->osz, rreg(cpu, in->reg, in->osz));
    chain_next(cpu);
}

void h_mov_r_rm(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t la, v = load_rm(cpu, in, in->osz, &la);
    wreg(cpu, in->reg, v, in->osz);
    chain_next(cpu);
}

void h_mov_rm_i(struct emu_cpu *cpu, const struct insn *in)
{
    store_rm_new(cpu, in, in->osz, in->imm);
    chain_next(cpu);
}
void h_mov_r_i(struct emu_cpu *cpu, const struct insn *in)
{
    wreg(cpu, in->reg, in->imm, in->osz);
    chain_next(cpu);
}

void h_mov_a_moffs(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t v = mread(cpu, lin_seg(cpu, in->seg, ea_off(cpu, in)), in->osz);
    wreg(cpu, GPR_RAX, v, in->osz);
    chain_next(cpu);
}

void h_mov_moffs_a(struct emu_cpu *cpu, const struct insn *in)
{
    mwrite(cpu, lin_seg(cpu, in->seg, ea_off(cpu, in)), rreg(cpu, GPR_RAX, in->osz), in->osz);
    chain_next(cpu);
}

void h_movzx(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned ssz = (in->op & 1) ? 2 : 1;
    uint64_t la, v = load_rm(cpu, in, ssz, &la);
    wreg(cpu, in->reg, v, in->osz);
    chain_next(cpu);
}

void h_movsx(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned ssz = (in->op & 1) ? 2 : 1;
    uint64_t la, v = load_rm(cpu, in, ssz, &la);
    wreg(cpu, in->reg, sext(v, ssz), in->osz);
    chain_next(cpu);
}

void h_movsxd(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned ssz = in->osz == 8 ? 4 : in->osz;
    uint64_t la, v = load_rm(cpu, in, ssz, &la);
    wreg(cpu, in->reg, sext(v, ssz), in->osz);
    chain_next(cpu);
}

void h_lea(struct emu_cpu *cpu, const struct insn *in)
{
    wreg(cpu, in->reg, ea_off(cpu, in), in->osz);
    chain_next(cpu);
}

void h_xchg_rm_r(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
    uint64_t la = 0, a = load_rm(cpu, in, sz, &la), b = rreg(cpu, in->reg, sz);
    store_rm(cpu, in, sz, la, b);
    wreg(cpu, in->reg, a, sz);
    chain_next(cpu);
}

void h_xchg_a_r(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
    uint64_t a = rreg(cpu, GPR_RAX, sz), b = rreg(cpu, in->reg, sz);
    wreg(cpu, GPR_RAX, b, sz);
    wreg(cpu, in->reg, a, sz);
    chain_next(cpu);
}

void h_cmpxchg(struct emu_cpu *cpu, const struct insn *in)
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
    chain_next(cpu);
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

void h_xadd(struct emu_cpu *cpu, const struct insn *in)
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
    chain_next(cpu);
}

void h_bswap(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t *r = &cpu->s.gpr[in->reg];
    if (in->osz == 8) *r = __builtin_bswap64(*r);
    else if (in->osz == 4) *r = __builtin_bswap32((uint32_t)*r);
    else *r &= ~0xffffULL; /* 16-bit BSWAP is undefined; hardware gives 0 */
    chain_next(cpu);
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

void h_push_r(struct emu_cpu *cpu, const struct insn *in)
{
    pushsz(cpu, rreg(cpu, in->reg, in->osz), in->osz);
    chain_next(cpu);
}

void h_pop_r(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t v = popsz(cpu, in->osz);
    wreg(cpu, in->reg, v, in->osz);
    chain_next(cpu);
}

void h_push_i(struct emu_cpu *cpu, const struct insn *in)
{
    pushsz(cpu, in->imm, in->osz);
    chain_next(cpu);
}

void h_push_rm(struct emu_cpu *cpu, const struct insn *in)
{
    uint64_t la, v = load_rm(cpu, in, in->osz, &la);
    pushsz(cpu, v, in->osz);
    chain_next(cpu);
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

#define RFLAGS_IOPL (3ULL << 12)
#define RFLAGS_NT (1ULL << 14)
#define RFLAGS_RF (1ULL << 16)
#define RFLAGS_VM (1ULL << 17)
#define RFLAGS_AC (1ULL << 18)
#define RFLAGS_ID (1ULL << 21)

void h_pushf(struct emu_cpu *cpu, const struct insn *in)
{
    pushsz(cpu, emu_get_rflags(cpu) & ~(RFLAGS_VM | RFLAGS_RF), in->osz);
}

/* POPF: IOPL changes only at CPL 0, IF only when CPL <= IOPL; VM, VIF, VIP are kept and RF
 * is cleared. */
void h_popf(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
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

void h_cmov(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz;
    uint64_t la, v = load_rm(cpu, in, sz, &la);
    if (emu_cond(cpu, in->op & 15)) wreg(cpu, in->reg, v, sz);
    else if (sz == 4) cpu->s.gpr[in->reg] = (uint32_t)cpu->s.gpr[in->reg];
    chain_next(cpu);
}

void h_setcc(struct emu_cpu *cpu, const struct insn *in)
{
    store_rm_new(cpu, in, 1, emu_cond(cpu, in->op & 15));
    chain_next(cpu);
}
