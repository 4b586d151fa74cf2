/* decode: the emulator's x86-64 instruction decoder (exec part).
 *
 * Turns instruction bytes into a struct insn: prefixes (66 67 F0 F2 F3, segment overrides;
 * CS/DS/ES/SS overrides are ignored in 64-bit mode), REX (only when immediately before the
 * opcode), the one-byte, 0F, 0F38 and 0F3A maps, ModRM/SIB with RIP-relative and the
 * no-base/no-index cases, displacements and immediates, and picks the handler. Encodings
 * that are invalid or not implemented get a handler raising #UD; instructions longer than
 * 15 bytes raise #GP(0). VEX/EVEX (C4/C5/62) raise #UD: AVX is not advertised.
 * Modes (`mode`, the default operand/address size): 64-bit mode (8), and 32-bit (4) or 16-bit
 * (2) code segments. Outside 64-bit mode there is no REX (40-4F are INC/DEC), 66/67 toggle the
 * default sizes, 67 selects 16-bit ModRM addressing, every segment override counts, ModRM
 * mod=0 rm=5 is an absolute disp32, and the opcodes only valid there decode (push/pop of ES CS
 * SS DS, PUSHA/POPA, 82, DAA DAS AAA AAS AAM AAD, BOUND, LES/LDS, ARPL, INTO, SALC, far JMP/CALL
 * ptr16:16/32). Real mode decodes as a 16- or 32-bit code segment (by the cached CS.D, see
 * emu_decode_mode); what differs there (the IVT, far transfers, segment loads, SLDT/STR/ARPL
 * raising #UD) is decided when the instruction runs. Mode 0 raises #UD for everything.
 */
#include "vmm/emu/exec.h"
#include "vmm/emu/fpu_sse.h"

/* Immediate kinds */
enum { I_NONE, I_B, I_W, I_Z, I_V, I_WB, I_MOFFS, I_GRP3, I_PTR };
#define M 0x10 /* has ModRM */

static const uint8_t map0_attr[256] = {
    /* 00 */ M, M, M, M, I_B, I_Z, 0, 0, M, M, M, M, I_B, I_Z, 0, 0,
    /* 10 */ M, M, M, M, I_B, I_Z, 0, 0, M, M, M, M, I_B, I_Z, 0, 0,
    /* 20 */ M, M, M, M, I_B, I_Z, 0, 0, M, M, M, M, I_B, I_Z, 0, 0,
    /* 30 */ M, M, M, M, I_B, I_Z, 0, 0, M, M, M, M, I_B, I_Z, 0, 0,
    /* 40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 50 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 60 */ 0, 0, M, M, 0, 0, 0, 0, I_Z, M | I_Z, I_B, M | I_B, 0, 0, 0, 0,
    /* 70 */ I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B,
    /* 80 */ M | I_B, M | I_Z, M | I_B, M | I_B, M, M, M, M, M, M, M, M, M, M, M, M,
    /* 90 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* A0 */ I_MOFFS, I_MOFFS, I_MOFFS, I_MOFFS, 0, 0, 0, 0, I_B, I_Z, 0, 0, 0, 0, 0, 0,
    /* B0 */ I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_V, I_V, I_V, I_V, I_V, I_V, I_V, I_V,
    /* C0 */ M | I_B, M | I_B, I_W, 0, 0, 0, M | I_B, M | I_Z, I_WB, 0, I_W, 0, 0, I_B, 0, 0,
    /* D0 */ M, M, M, M, I_B, I_B, 0, 0, M, M, M, M, M, M, M, M,
    /* E0 */ I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_B, I_Z, I_Z, 0, I_B, 0, 0, 0, 0,
    /* F0 */ 0, 0, 0, 0, 0, 0, M | I_GRP3, M | I_GRP3, 0, 0, 0, 0, 0, 0, M, M,
};

static const insn_fn alu_rm_r[8] = {h_add_rm_r, h_or_rm_r, h_adc_rm_r, h_sbb_rm_r, h_and_rm_r, h_sub_rm_r, h_xor_rm_r, h_cmp_rm_r};
static const insn_fn alu_r_rm[8] = {h_add_r_rm, h_or_r_rm, h_adc_r_rm, h_sbb_r_rm, h_and_r_rm, h_sub_r_rm, h_xor_r_rm, h_cmp_r_rm};
static const insn_fn alu_rm_i[8] = {h_add_rm_i, h_or_rm_i, h_adc_rm_i, h_sbb_rm_i, h_and_rm_i, h_sub_rm_i, h_xor_rm_i, h_cmp_rm_i};

static inline uint8_t byte_reg(uint8_t r, uint8_t rex) { return (!rex && r >= 4 && r < 8) ? REG8_HIGH + r - 4 : r; }

static bool is_sse_0f(uint8_t op)
{
    return (op >= 0x10 && op <= 0x17) || (op >= 0x28 && op <= 0x2f) || (op >= 0x50 && op <= 0x7f) || op == 0xc2 ||
           (op >= 0xc4 && op <= 0xc6) || op >= 0xd0;
}

int emu_decode(const uint8_t *b, unsigned avail, unsigned mode, struct insn *in)
{
    memset(in, 0, sizeof(*in));
    in->base = in->index = NOREG;
    in->seg = SEG_DS;
    const bool long64 = mode == 8;
    if (mode != 8 && mode != 4 && mode != 2) {
        in->fn = h_ud;
        in->len = 1;
        in->flags = IF_END_BLOCK;
        return 1;
    }

    unsigned i = 0;
    int segovr = -1;
    uint8_t rex = 0, pfx67 = 0, c;
#define NEED(n)                                  \
    do {                                         \
        if (i + (n) > 15) goto too_long;         \
        if (i + (n) > avail) return DECODE_NEED_MORE; \
    } while (0)

    for (;;) {
        NEED(1);
        c = b[i];
        if (c == 0x66) in->pfx66 = 1;
        else if (c == 0x67) pfx67 = 1;
        else if (c == 0xf0) in->lock = 1;
        else if (c == 0xf2 || c == 0xf3) in->rep = c;
        else if (c == 0x26 || c == 0x2e || c == 0x36 || c == 0x3e) {
            if (!long64) segovr = c == 0x26 ? SEG_ES : c == 0x2e ? SEG_CS : c == 0x36 ? SEG_SS : SEG_DS;
        } /* ignored in 64-bit mode */
        else if (c == 0x64) segovr = SEG_FS;
        else if (c == 0x65) segovr = SEG_GS;
        else if ((c & 0xf0) == 0x40 && long64) {
            i++;
            rex = c;
            continue;
        } else break;
        rex = 0; /* a legacy prefix after REX cancels it */
        i++;
    }
    in->rex = rex;
    if (long64) in->asz = pfx67 ? 4 : 8;
    else in->asz = (uint8_t)((mode == 4) != (pfx67 != 0) ? 4 : 2);
    in->mandatory = in->rep ? in->rep : (in->pfx66 ? 0x66 : 0);
    unsigned map = 0;
    i++;
    if (c == 0x0f) {
        NEED(1);
        c = b[i++];
        map = 1;
        if (c == 0x38 || c == 0x3a) {
            map = c == 0x38 ? 2 : 3;
            NEED(1);
            c = b[i++];
        }
    }
    in->op = c;
    in->map = (uint8_t)map;

    /* operand size and the ModRM / immediate shape */
    unsigned osz = (rex & 8) ? 8 : ((mode == 2) != (in->pfx66 != 0)) ? 2 : 4;
    unsigned attr = 0;
    bool has_imm8_sse = false, fpu = false;
    if (map == 0) {
        attr = map0_attr[c];
        if (c >= 0xd8 && c <= 0xdf) fpu = true;
        if (!long64 && (c == 0xc4 || c == 0xc5)) attr = M; /* LES/LDS (mod 3: VEX, #UD) */
        if (!long64 && (c == 0x9a || c == 0xea)) attr = I_PTR;
    } else if (map == 1) {
        if (c >= 0x80 && c <= 0x8f) attr = I_Z;
        else if (c == 0x77) fpu = true; /* EMMS: no ModRM */
        else if (is_sse_0f(c) && c != 0xff) {
            fpu = true;
            attr = M;
        } else if ((c >= 0x05 && c <= 0x0b) || (c >= 0x30 && c <= 0x37) || (c >= 0xa0 && c <= 0xa2) ||
                   (c >= 0xa8 && c <= 0xaa) || (c >= 0xc8 && c <= 0xcf) || c == 0x04 || c == 0x0c || c == 0x0e)
            attr = 0;
        else attr = M;
        if (c == 0xa4 || c == 0xac || c == 0xba) attr |= I_B;
    } else if (map == 2) {
        attr = M;
        if (!((c == 0xf0 || c == 0xf1) && in->rep != 0xf2)) fpu = true;
    } else {
        attr = M | I_B;
        fpu = true;
    }
    if (fpu && map != 0 && !(map == 1 && c == 0x77)) {
        if (!fpu_sse_claims((uint8_t)map, c, in->mandatory, &has_imm8_sse)) goto ud_decoded;
        attr = M | (has_imm8_sse ? I_B : 0);
    } else if (fpu && map == 1) {
        if (!fpu_sse_claims(1, c, in->mandatory, &has_imm8_sse)) goto ud_decoded;
    }

    /* ModRM, SIB, displacement */
    if (attr & M) {
        NEED(1);
        uint8_t modrm = b[i++];
        in->modrm = modrm;
        in->mod = modrm >> 6;
        in->reg = ((modrm >> 3) & 7) | ((rex & 4) ? 8 : 0);
        uint8_t rm = modrm & 7;
        if (map == 1 && c >= 0x20 && c <= 0x23) in->mod = 3; /* MOV CR/DR: always a register */
        if (in->mod == 3) {
            in->rm = rm | ((rex & 1) ? 8 : 0);
        } else if (in->asz == 2) {
            /* 16-bit addressing: BX+SI BX+DI BP+SI BP+DI SI DI BP(disp16 if mod 0) BX */
            static const uint8_t base16[8] = {GPR_RBX, GPR_RBX, GPR_RBP, GPR_RBP, GPR_RSI, GPR_RDI, GPR_RBP, GPR_RBX};
            static const uint8_t index16[8] = {GPR_RSI, GPR_RDI, GPR_RSI, GPR_RDI, NOREG, NOREG, NOREG, NOREG};
            unsigned dispsz = in->mod == 1 ? 1 : in->mod == 2 ? 2 : 0;
            in->base = base16[rm];
            in->index = index16[rm];
            if (in->mod == 0 && rm == 6) {
                in->base = NOREG;
                dispsz = 2;
            }
            if (in->base == GPR_RBP) in->seg = SEG_SS;
            if (dispsz == 1) {
                NEED(1);
                in->disp = (int8_t)b[i];
                i++;
            } else if (dispsz == 2) {
                NEED(2);
                int16_t d;
                memcpy(&d, b + i, 2);
                in->disp = d;
                i += 2;
            }
        } else {
            unsigned dispsz = in->mod == 1 ? 1 : in->mod == 2 ? 4 : 0;
            if (rm == 4) {
                NEED(1);
                uint8_t sib = b[i++];
                uint8_t idx = ((sib >> 3) & 7) | ((rex & 2) ? 8 : 0);
                uint8_t base = sib & 7;
                in->scale = sib >> 6;
                in->index = idx == 4 ? NOREG : idx;
                if (base == 5 && in->mod == 0) {
                    in->base = NOREG;
                    dispsz = 4;
                } else {
                    in->base = base | ((rex & 1) ? 8 : 0);
                }
            } else if (rm == 5 && in->mod == 0) {
                in->base = long64 ? RIPREL : NOREG; /* legacy modes: an absolute disp32 */
                dispsz = 4;
            } else {
                in->base = rm | ((rex & 1) ? 8 : 0);
            }
            if (in->base == GPR_RSP || in->base == GPR_RBP) in->seg = SEG_SS;
            if (dispsz == 1) {
                NEED(1);
                in->disp = (int8_t)b[i];
                i++;
            } else if (dispsz == 4) {
                NEED(4);
                int32_t d;
                memcpy(&d, b + i, 4);
                in->disp = d;
                i += 4;
            }
        }
    }
    if (segovr >= 0) in->seg = (uint8_t)segovr;

    /* immediates */
    unsigned ik = attr & 0xf;
    if (ik == I_GRP3) ik = ((in->modrm >> 3) & 7) < 2 ? (c == 0xf6 ? I_B : I_Z) : I_NONE;
    switch (ik) {
    case I_B:
        NEED(1);
        in->imm = (uint64_t)(int64_t)(int8_t)b[i];
        i += 1;
        break;
    case I_W: {
        NEED(2);
        uint16_t w;
        memcpy(&w, b + i, 2);
        in->imm = w;
        i += 2;
        break;
    }
    case I_Z:
        /* 64-bit mode: near CALL/JMP/Jcc always take rel32 */
        if (osz == 2 && (!long64 || (!(map == 0 && (c == 0xe8 || c == 0xe9)) && map != 1))) {
            NEED(2);
            int16_t w;
            memcpy(&w, b + i, 2);
            in->imm = (uint64_t)(int64_t)w;
            i += 2;
        } else {
            NEED(4);
            int32_t d;
            memcpy(&d, b + i, 4);
            in->imm = (uint64_t)(int64_t)d;
            i += 4;
        }
        break;
    case I_V:
        if (osz == 8) {
            NEED(8);
            memcpy(&in->imm, b + i, 8);
            i += 8;
        } else if (osz == 2) {
            NEED(2);
            uint16_t w;
            memcpy(&w, b + i, 2);
            in->imm = w;
            i += 2;
        } else {
            NEED(4);
            uint32_t d;
            memcpy(&d, b + i, 4);
            in->imm = d;
            i += 4;
        }
        break;
    case I_WB: {
        NEED(3);
        uint16_t w;
        memcpy(&w, b + i, 2);
        in->imm = w;
        in->imm2 = b[i + 2];
        i += 3;
        break;
    }
    case I_PTR: /* ptr16:16 / ptr16:32: the offset in imm, the selector in imm2 */
        if (osz == 2) {
            NEED(4);
            uint16_t w;
            memcpy(&w, b + i, 2);
            in->imm = w;
            i += 2;
        } else {
            NEED(6);
            uint32_t d;
            memcpy(&d, b + i, 4);
            in->imm = d;
            i += 4;
        }
        memcpy(&in->imm2, b + i, 2);
        i += 2;
        break;
    case I_MOFFS:
        if (in->asz == 8) {
            NEED(8);
            memcpy(&in->disp, b + i, 8);
            i += 8;
        } else if (in->asz == 2) {
            NEED(2);
            uint16_t w;
            memcpy(&w, b + i, 2);
            in->disp = w;
            i += 2;
        } else {
            NEED(4);
            uint32_t d;
            memcpy(&d, b + i, 4);
            in->disp = d;
            i += 4;
        }
        break;
    default: break;
    }
    in->len = (uint8_t)i;
    in->osz = (uint8_t)osz;

    /* handler selection */
    unsigned sub = (in->modrm >> 3) & 7;
    bool lockable = false;
    bool mem = in->mod != 3;
    insn_fn fn = NULL;
    uint8_t fl = 0;
#define BYTE_OP()                                   \
    do {                                            \
        in->osz = 1;                                \
        in->reg = byte_reg(in->reg, rex);           \
        if (!mem) in->rm = byte_reg(in->rm, rex);   \
    } while (0)
/* default operand size 64 in 64-bit mode (stack operations, near branches) */
#define D64() (in->osz = long64 ? (in->pfx66 ? 2 : 8) : in->osz)

    if (fpu) {
        if (map == 1 && c == 0x77) in->mod = 3; /* EMMS has no ModRM */
        fn = h_fpu;
        in->imm2 = has_imm8_sse;
        goto done;
    }
    if (map == 0) {
        if (c < 0x40 && (c & 7) < 6) {
            unsigned aop = c >> 3;
            switch (c & 7) {
            case 0: BYTE_OP(); /* fallthrough */
            case 1: fn = alu_rm_r[aop]; lockable = aop != 7; break;
            case 2: BYTE_OP(); /* fallthrough */
            case 3: fn = alu_r_rm[aop]; break;
            case 4: in->osz = 1; /* fallthrough */
            case 5:
                in->mod = 3;
                in->rm = GPR_RAX;
                fn = alu_rm_i[aop];
                break;
            }
            goto done;
        }
        switch (c) {
        case 0x06: case 0x0e: case 0x16: case 0x1e: if (!long64) { fn = h_push_seg; } break;
        case 0x07: case 0x17: case 0x1f: if (!long64) { fn = h_pop_seg; fl = IF_END_BLOCK; } break;
        case 0x40 ... 0x47: case 0x48 ... 0x4f: /* reached outside 64-bit mode only */
            in->mod = 3;
            in->rm = c & 7;
            fn = c < 0x48 ? h_inc : h_dec;
            break;
        case 0x60: if (!long64) fn = h_pusha; break;
        case 0x61: if (!long64) fn = h_popa; break;
        case 0x27: if (!long64) fn = h_daa; break;
        case 0x2f: if (!long64) fn = h_das; break;
        case 0x37: if (!long64) fn = h_aaa; break;
        case 0x3f: if (!long64) fn = h_aas; break;
        case 0xd4: if (!long64) fn = h_aam; break;
        case 0xd5: if (!long64) fn = h_aad; break;
        case 0xd6: if (!long64) fn = h_salc; break;
        case 0x62: if (!long64 && mem) fn = h_bound; break;
        case 0xc4: case 0xc5: if (!long64 && mem) { fn = h_les_lds; fl = IF_END_BLOCK; } break;
        case 0xce: if (!long64) { fn = h_into; fl = IF_END_BLOCK; } break;
        case 0x9a: if (!long64) { fn = h_call_far_i; fl = IF_END_BLOCK; } break;
        case 0xea: if (!long64) { fn = h_jmp_far_i; fl = IF_END_BLOCK; } break;
        case 0x50 ... 0x57: D64(); in->reg = (c & 7) | ((rex & 1) ? 8 : 0); fn = h_push_r; break;
        case 0x58 ... 0x5f: D64(); in->reg = (c & 7) | ((rex & 1) ? 8 : 0); fn = h_pop_r; break;
        case 0x63: fn = long64 ? h_movsxd : h_arpl; break;
        case 0x68: case 0x6a: D64(); fn = h_push_i; break;
        case 0x69: case 0x6b: fn = h_imul_r_rm_i; break;
        case 0x6c: case 0x6d: if (c == 0x6c) in->osz = 1; if (in->osz == 8) in->osz = 4; fn = h_ins; fl = IF_END_BLOCK; break;
        case 0x6e: case 0x6f: if (c == 0x6e) in->osz = 1; if (in->osz == 8) in->osz = 4; fn = h_outs; fl = IF_END_BLOCK; break;
        case 0x70 ... 0x7f: in->disp = (int64_t)in->imm; fn = h_jcc; fl = IF_END_BLOCK | IF_COND_BRANCH; break;
        case 0x82: /* 80 outside 64-bit mode */
            if (long64) break;
            BYTE_OP();
            fn = alu_rm_i[sub];
            lockable = sub != 7;
            break;
        case 0x80: BYTE_OP(); /* fallthrough */
        case 0x81: case 0x83: fn = alu_rm_i[sub]; lockable = sub != 7; break;
        case 0x84: BYTE_OP(); /* fallthrough */
        case 0x85: fn = h_test_rm_r; break;
        case 0x86: BYTE_OP(); /* fallthrough */
        case 0x87: fn = h_xchg_rm_r; lockable = true; break;
        case 0x88: BYTE_OP(); /* fallthrough */
        case 0x89: fn = h_mov_rm_r; break;
        case 0x8a: BYTE_OP(); /* fallthrough */
        case 0x8b: fn = h_mov_r_rm; break;
        case 0x8c: fn = h_mov_rm_sreg; break;
        case 0x8d: if (mem) fn = h_lea; break;
        case 0x8e: fn = h_mov_sreg_rm; fl = IF_END_BLOCK; break;
        case 0x8f: if (sub == 0) { D64(); fn = h_pop_rm; } break;
        case 0x90:
            if (rex & 1) { in->reg = 8; fn = h_xchg_a_r; }
            else fn = in->rep == 0xf3 ? h_pause : h_nop;
            break;
        case 0x91 ... 0x97: in->reg = (c & 7) | ((rex & 1) ? 8 : 0); fn = h_xchg_a_r; break;
        case 0x98: fn = h_cbw; break;
        case 0x99: fn = h_cwd; break;
        case 0x9b: fn = h_fwait; break;
        case 0x9c: D64(); fn = h_pushf; break;
        case 0x9d: D64(); fn = h_popf; fl = IF_END_BLOCK; break;
        case 0x9e: fn = h_sahf; break;
        case 0x9f: fn = h_lahf; break;
        case 0xa0: in->osz = 1; /* fallthrough */
        case 0xa1: fn = h_mov_a_moffs; break;
        case 0xa2: in->osz = 1; /* fallthrough */
        case 0xa3: fn = h_mov_moffs_a; break;
        case 0xa4: case 0xa5: if (c == 0xa4) in->osz = 1; fn = h_movs; break;
        case 0xa6: case 0xa7: if (c == 0xa6) in->osz = 1; fn = h_cmps; break;
        case 0xa8: case 0xa9: if (c == 0xa8) in->osz = 1; in->mod = 3; in->rm = GPR_RAX; fn = h_test_rm_i; break;
        case 0xaa: case 0xab: if (c == 0xaa) in->osz = 1; fn = h_stos; break;
        case 0xac: case 0xad: if (c == 0xac) in->osz = 1; fn = h_lods; break;
        case 0xae: case 0xaf: if (c == 0xae) in->osz = 1; fn = h_scas; break;
        case 0xb0 ... 0xb7: in->osz = 1; in->reg = byte_reg((c & 7) | ((rex & 1) ? 8 : 0), rex); fn = h_mov_r_i; break;
        case 0xb8 ... 0xbf: in->reg = (c & 7) | ((rex & 1) ? 8 : 0); fn = h_mov_r_i; break;
        case 0xc0: BYTE_OP(); /* fallthrough */
        case 0xc1: if (sub != 6) fn = h_shift_i; break;
        case 0xc2: fn = h_ret_i; fl = IF_END_BLOCK; break;
        case 0xc3: fn = h_ret; fl = IF_END_BLOCK; break;
        case 0xc6: if (sub == 0) { BYTE_OP(); fn = h_mov_rm_i; } break;
        case 0xc7: if (sub == 0) fn = h_mov_rm_i; break;
        case 0xc8: D64(); fn = h_enter; break;
        case 0xc9: D64(); fn = h_leave; break;
        case 0xca: fn = h_retf_i; fl = IF_END_BLOCK; break;
        case 0xcb: fn = h_retf; fl = IF_END_BLOCK; break;
        case 0xcc: fn = h_int3; fl = IF_END_BLOCK; break;
        case 0xcd: fn = h_int; fl = IF_END_BLOCK; break;
        case 0xcf: fn = h_iret; fl = IF_END_BLOCK; break;
        case 0xd0: BYTE_OP(); /* fallthrough */
        case 0xd1: if (sub != 6) fn = h_shift_1; break;
        case 0xd2: BYTE_OP(); /* fallthrough */
        case 0xd3: if (sub != 6) fn = h_shift_cl; break;
        case 0xd7: fn = h_xlat; break;
        case 0xe0: in->disp = (int64_t)in->imm; fn = h_loopne; fl = IF_END_BLOCK | IF_COND_BRANCH; break;
        case 0xe1: in->disp = (int64_t)in->imm; fn = h_loope; fl = IF_END_BLOCK | IF_COND_BRANCH; break;
        case 0xe2: in->disp = (int64_t)in->imm; fn = h_loop; fl = IF_END_BLOCK | IF_COND_BRANCH; break;
        case 0xe3: in->disp = (int64_t)in->imm; fn = h_jrcxz; fl = IF_END_BLOCK | IF_COND_BRANCH; break;
        case 0xe4: case 0xe5: if (c == 0xe4) in->osz = 1; if (in->osz == 8) in->osz = 4; fn = h_in_i; fl = IF_END_BLOCK; break;
        case 0xe6: case 0xe7: if (c == 0xe6) in->osz = 1; if (in->osz == 8) in->osz = 4; fn = h_out_i; fl = IF_END_BLOCK; break;
        case 0xec: case 0xed: if (c == 0xec) in->osz = 1; if (in->osz == 8) in->osz = 4; fn = h_in_dx; fl = IF_END_BLOCK; break;
        case 0xee: case 0xef: if (c == 0xee) in->osz = 1; if (in->osz == 8) in->osz = 4; fn = h_out_dx; fl = IF_END_BLOCK; break;
        case 0xe8: in->disp = (int64_t)in->imm; fn = h_call_rel; fl = IF_END_BLOCK; break;
        case 0xe9: case 0xeb: in->disp = (int64_t)in->imm; fn = h_jmp_rel; fl = IF_END_BLOCK; break;
        case 0xf1: fn = h_int1; fl = IF_END_BLOCK; break;
        case 0xf4: fn = h_hlt; fl = IF_END_BLOCK; break;
        case 0xf5: fn = h_cmc; break;
        case 0xf6: BYTE_OP(); /* fallthrough */
        case 0xf7: {
            static const insn_fn g3[8] = {h_test_rm_i, h_test_rm_i, h_not, h_neg, h_mul1, h_imul1, h_div, h_idiv};
            fn = g3[sub];
            lockable = sub == 2 || sub == 3;
            break;
        }
        case 0xf8: fn = h_clc; break;
        case 0xf9: fn = h_stc; break;
        case 0xfa: fn = h_cli; fl = IF_END_BLOCK; break;
        case 0xfb: fn = h_sti; fl = IF_END_BLOCK; break;
        case 0xfc: fn = h_cld; break;
        case 0xfd: fn = h_std; break;
        case 0xfe:
            BYTE_OP();
            if (sub < 2) { fn = sub ? h_dec : h_inc; lockable = true; }
            break;
        case 0xff:
            switch (sub) {
            case 0: fn = h_inc; lockable = true; break;
            case 1: fn = h_dec; lockable = true; break;
            case 2: if (long64) in->osz = 8; fn = h_call_rm; fl = IF_END_BLOCK; break;
            case 3: if (mem) { fn = h_call_far_m; fl = IF_END_BLOCK; } break;
            case 4: if (long64) in->osz = 8; fn = h_jmp_rm; fl = IF_END_BLOCK; break;
            case 5: if (mem) { fn = h_jmp_far_m; fl = IF_END_BLOCK; } break;
            case 6: D64(); fn = h_push_rm; break;
            default: break;
            }
            break;
        default: break; /* invalid in 64-bit mode, VEX/EVEX, or unimplemented */
        }
    } else if (map == 1) {
        switch (c) {
        case 0x00: if (sub < 4) { fn = h_grp6; fl = IF_END_BLOCK; } break;
        case 0x01:
            if (mem) {
                if (sub != 5) { fn = h_grp7_mem; fl = IF_END_BLOCK; }
            } else if (sub == 4) {
                fn = h_smsw_r;
            } else if (sub == 6) {
                fn = h_grp7_mem;
                fl = IF_END_BLOCK;
            } else {
                switch (in->modrm) {
                case 0xd0: fn = h_xgetbv; break;
                case 0xd1: fn = h_xsetbv; fl = IF_END_BLOCK; break;
                case 0xf8: fn = h_swapgs; fl = IF_END_BLOCK; break;
                case 0xf9: fn = h_rdtscp; break;
                default: break;
                }
            }
            break;
        case 0x05: fn = h_syscall; fl = IF_END_BLOCK; break;
        case 0x06: fn = h_clts; fl = IF_END_BLOCK; break;
        case 0x07: fn = h_sysret; fl = IF_END_BLOCK; break;
        case 0x08: case 0x09: fn = h_wbinvd; break;
        case 0x0d: if (mem) fn = h_nop; break;
        case 0x18 ... 0x1f: fn = h_nop; break;
        case 0x20: fn = h_mov_from_cr; fl = IF_END_BLOCK; break;
        case 0x21: fn = h_mov_from_dr; fl = IF_END_BLOCK; break;
        case 0x22: fn = h_mov_to_cr; fl = IF_END_BLOCK; break;
        case 0x23: fn = h_mov_to_dr; fl = IF_END_BLOCK; break;
        case 0x30: fn = h_wrmsr; fl = IF_END_BLOCK; break;
        case 0x31: fn = h_rdtsc; break;
        case 0x32: fn = h_rdmsr; break;
        case 0x40 ... 0x4f: fn = h_cmov; break;
        case 0x80 ... 0x8f: in->disp = (int64_t)in->imm; fn = h_jcc; fl = IF_END_BLOCK | IF_COND_BRANCH; break;
        case 0x90 ... 0x9f: in->osz = 1; if (!mem) in->rm = byte_reg(in->rm, rex); fn = h_setcc; break;
        case 0xa0: case 0xa8: D64(); fn = h_push_seg; break;
        case 0xa1: case 0xa9: D64(); fn = h_pop_seg; fl = IF_END_BLOCK; break;
        case 0xa2: fn = h_cpuid; break;
        case 0xa3: fn = h_bt_rm_r; break;
        case 0xab: case 0xb3: case 0xbb: fn = h_bt_rm_r; lockable = true; break;
        case 0xa4: fn = h_shld_i; break;
        case 0xa5: fn = h_shld_cl; break;
        case 0xac: fn = h_shrd_i; break;
        case 0xad: fn = h_shrd_cl; break;
        case 0xae:
            if (in->rep) break;
            if (mem) {
                if (sub <= 3 && !in->pfx66) {
                    fn = h_fpu; /* FXSAVE FXRSTOR LDMXCSR STMXCSR */
                    in->imm2 = 0;
                } else if (sub == 7) {
                    fn = h_clflush;
                }
            } else if (sub >= 5) {
                fn = h_fence;
            }
            break;
        case 0xaf: fn = h_imul_r_rm; break;
        case 0xb2: case 0xb4: case 0xb5: if (mem) { fn = h_lss_lfs_lgs; fl = IF_END_BLOCK; } break;
        case 0xb0: BYTE_OP(); /* fallthrough */
        case 0xb1: fn = h_cmpxchg; lockable = true; break;
        case 0xb6: case 0xbe:
            if (!mem) in->rm = byte_reg(in->rm, rex);
            fn = c == 0xb6 ? h_movzx : h_movsx;
            break;
        case 0xb7: case 0xbf: fn = c == 0xb7 ? h_movzx : h_movsx; break;
        case 0xb8: if (in->rep == 0xf3) fn = h_popcnt; break;
        case 0xba:
            if (sub >= 4) { fn = h_bt_rm_i; lockable = sub != 4; }
            break;
        case 0xbc: fn = in->rep == 0xf3 ? h_tzcnt : h_bsf; break;
        case 0xbd: fn = in->rep == 0xf3 ? h_lzcnt : h_bsr; break;
        case 0xc0: BYTE_OP(); /* fallthrough */
        case 0xc1: fn = h_xadd; lockable = true; break;
        case 0xc3: if (mem && in->osz >= 4) fn = h_movnti; break;
        case 0xc7: if (sub == 1 && mem) { fn = h_cmpxchg8b16b; lockable = true; } break;
        case 0xc8 ... 0xcf: in->reg = (c & 7) | ((rex & 1) ? 8 : 0); fn = h_bswap; break;
        default: break;
        }
    } else if (map == 2) {
        if ((c == 0xf0 || c == 0xf1) && mem && in->rep == 0) fn = h_movbe;
    }

    /* a REP string instruction may leave RIP at itself (chunked): it ends its block */
    if (map == 0 && in->rep && ((c >= 0xa4 && c <= 0xa7) || (c >= 0xaa && c <= 0xaf))) fl |= IF_END_BLOCK;
done:
    if (in->lock && (!lockable || !mem)) fn = NULL;
    if (!fn) goto ud_decoded;
    if (!long64) fn = emu_legacy_form(fn);
    in->fn = fn;
    in->flags = fl;
    insn_fn fast = emu_specialize(in);
    if (fast) in->fn = fast;
    return (int)i;

ud_decoded:
    in->fn = h_ud;
    in->flags = IF_END_BLOCK;
    in->len = (uint8_t)(i ? i : 1);
    return in->len;
too_long:
    in->fn = h_gp0;
    in->flags = IF_END_BLOCK;
    in->len = 15;
    return 15;
#undef NEED
}
