/* exec_bits: bit instructions (exec part): BT BTS BTR BTC (register and memory forms with
 * bit-offset addressing), BSF BSR, TZCNT LZCNT POPCNT.
 * Undefined flags: after BT* only CF changes (others kept); after BSF/BSR only ZF is defined
 * (CF OF SF AF PF are cleared here); TZCNT/LZCNT leave OF SF AF PF cleared.
 */
#include "vmm/emu/exec.h"

static void bt_common(struct emu_cpu *cpu, const struct insn *in, unsigned op, int64_t off, bool reg_offset)
{
    unsigned sz = in->osz, bits = sz * 8;
    uint64_t la = 0, v;
    unsigned bit;
    if (in->mod == 3) {
        v = rreg(cpu, in->rm, sz);
        bit = (unsigned)off & (bits - 1);
    } else {
        uint64_t o = ea_off(cpu, in);
        if (reg_offset) {
            int64_t words = off >> (bits == 16 ? 4 : bits == 32 ? 5 : 6);
            o += (uint64_t)(words * (int64_t)sz);
            if (in->asz == 4) o = (uint32_t)o;
        }
        bit = (unsigned)off & (bits - 1);
        la = lin_seg(cpu, in->seg, o);
        v = mread(cpu, la, sz);
    }
    uint64_t f = emu_flags_compute(&cpu->lf) & ~RFLAGS_CF;
    if ((v >> bit) & 1) f |= RFLAGS_CF;
    uint64_t m = 1ULL << bit;
    switch (op) {
    case 1: v |= m; break;  /* BTS */
    case 2: v &= ~m; break; /* BTR */
    case 3: v ^= m; break;  /* BTC */
    default: set_raw_flags(cpu, f); return;
    }
    store_rm(cpu, in, sz, la, v);
    set_raw_flags(cpu, f);
}

HANDLER(h_bt_rm_r)
{
    unsigned op = in->op == 0xa3 ? 0 : in->op == 0xab ? 1 : in->op == 0xb3 ? 2 : 3;
    bt_common(cpu, in, op, (int64_t)sext(rreg(cpu, in->reg, in->osz), in->osz), true);
}

HANDLER(h_bt_rm_i)
{
    bt_common(cpu, in, ((in->modrm >> 3) & 7) - 4, (int64_t)(in->imm & 0xff), false);
}

HANDLER(h_bsf)
{
    uint64_t la, v = load_rm(cpu, in, in->osz, &la);
    if (v == 0) {
        set_raw_flags(cpu, RFLAGS_ZF);
        return;
    }
    wreg(cpu, in->reg, (uint64_t)__builtin_ctzll(v), in->osz);
    set_raw_flags(cpu, 0);
}

HANDLER(h_bsr)
{
    uint64_t la, v = load_rm(cpu, in, in->osz, &la);
    if (v == 0) {
        set_raw_flags(cpu, RFLAGS_ZF);
        return;
    }
    wreg(cpu, in->reg, (uint64_t)(63 - __builtin_clzll(v)), in->osz);
    set_raw_flags(cpu, 0);
}

HANDLER(h_tzcnt)
{
    unsigned sz = in->osz;
    uint64_t la, v = load_rm(cpu, in, sz, &la);
    uint64_t r = v ? (uint64_t)__builtin_ctzll(v) : sz * 8;
    wreg(cpu, in->reg, r, sz);
    set_raw_flags(cpu, (v == 0 ? RFLAGS_CF : 0) | (r == 0 ? RFLAGS_ZF : 0));
}

HANDLER(h_lzcnt)
{
    unsigned sz = in->osz;
    uint64_t la, v = load_rm(cpu, in, sz, &la);
    uint64_t r = v ? (uint64_t)(__builtin_clzll(v) - (64 - sz * 8)) : sz * 8;
    wreg(cpu, in->reg, r, sz);
    set_raw_flags(cpu, (v == 0 ? RFLAGS_CF : 0) | (r == 0 ? RFLAGS_ZF : 0));
}

HANDLER(h_popcnt)
{
    uint64_t la, v = load_rm(cpu, in, in->osz, &la);
    wreg(cpu, in->reg, (uint64_t)__builtin_popcountll(v), in->osz);
    set_raw_flags(cpu, v == 0 ? RFLAGS_ZF : 0);
}
