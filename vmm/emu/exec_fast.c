/* exec_fast: emu_specialize(), which picks at decode time a specialized handler for the hottest
 * instruction forms: 32- and 64-bit operands split by register and memory r/m, so no operand-size
 * or ModRM-mode switch runs at execution time, and Jcc per condition code. The forms themselves
 * are derived, next to their generic handlers, from the same semantics (SPECIALIZED in exec.h):
 * ALU, TEST, INC/DEC, shifts, IMUL in exec_alu.c; MOV, LEA, MOVZX/MOVSXD, PUSH/POP, CMOV in
 * exec_move.c; Jcc in exec_control.c.
 */
#include "vmm/emu/exec.h"

/* Pick a specialized handler for a decoded instruction, or return NULL to keep the generic one. */
insn_fn emu_specialize(const struct insn *in)
{
    bool mem = in->mod != 3, w = in->osz == 8;
    unsigned op = in->op, sz = in->osz;
    if (in->fn == h_jcc) return emu_jcc[op & 15];
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
            return emu_shift_i_r[sub][w];
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
        if (op == 0xaf && w) return emu_imul_r_rm64[mem];
        if (op >= 0x40 && op <= 0x4f && !mem && sz >= 4) return emu_cmov_r[w];
        if ((op == 0xb6 || op == 0xb7) && sz >= 4) return emu_movzx[op & 1][mem];
    }
    return NULL;
}
