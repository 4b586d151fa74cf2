/* fpu_sse: the emulator's x87, MMX and SSE/SSE2/SSE3/SSSE3/SSE4.1 instructions, and
 * FXSAVE/FXRSTOR/LDMXCSR/STMXCSR/EMMS, operating on the FXSAVE-layout register file of
 * struct cpu_state. The decoder (exec part) decodes prefixes, ModRM and the memory operand's
 * linear address; this module interprets the operation.
 */
#ifndef VMD_EMU_FPU_SSE_H
#define VMD_EMU_FPU_SSE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/cpu_state.h"

enum fpu_map { FPU_MAP_X87 = 0, FPU_MAP_0F = 1, FPU_MAP_0F38 = 2, FPU_MAP_0F3A = 3 };

struct fpu_op {
    uint8_t map;       /* enum fpu_map */
    uint8_t opcode;    /* byte after the escape (0F / 0F38 / 0F3A), or D8..DF for x87 */
    uint8_t mandatory; /* 0, 0x66, 0xF3 or 0xF2: F2/F3 if present (the last one wins), else 66 if present */
    uint8_t modrm;
    uint8_t rex;       /* the REX byte (0x40..0x4F) or 0 */
    uint8_t imm8;      /* immediate byte, for forms that take one */
    bool has_mem;      /* ModRM.mod != 3 */
    uint64_t ea;       /* linear address of the memory operand (segment base added) */
    bool long64;       /* 64-bit mode (FXSAVE64 layout when REX.W) */
    uint64_t rip;      /* address of the instruction, recorded as the x87 FIP (0 if not supplied) */
};

/* What fpu_sse_exec needs from the CPU. Memory callbacks return 0, or never return when they
 * raise a fault (they longjmp through the emulator's fault path). */
struct fpu_env {
    struct cpu_fxsave *fx;
    uint64_t *gpr;     /* the 16 general registers, for MOVD/MOVQ/CVT*2SI/PMOVMSKB/PEXTR... */
    uint64_t cr0, cr4;
    void *ctx;
    void (*read)(void *ctx, uint64_t la, void *buf, unsigned len);
    void (*write)(void *ctx, uint64_t la, const void *buf, unsigned len);
    uint64_t *rflags;  /* for COMISS/UCOMISS/FCOMI (ZF PF CF, OF SF AF cleared); exec re-loads lazy flags */
    bool *rflags_written; /* set to true when *rflags was changed */
};

enum fpu_result {
    FPU_OK = 0,
    FPU_UD,   /* invalid or unimplemented encoding: raise #UD */
    FPU_NM,   /* CR0.TS (or CR0.EM for x87/MMX): raise #NM */
    FPU_GP,   /* misaligned 16-byte operand, reserved MXCSR bits: raise #GP(0) */
    FPU_MF,   /* unmasked x87 exception pending: raise #MF */
    FPU_XM,   /* unmasked SIMD exception: raise #XM (CR4.OSXMMEXCPT) or #UD */
};

/* True if this module implements the encoding (so the decoder knows whether an imm8 follows:
 * *has_imm8 is set). Used for instruction-length decoding of 0F/0F38/0F3A SSE forms. */
bool fpu_sse_claims(uint8_t map, uint8_t opcode, uint8_t mandatory, bool *has_imm8);

/* Whether the encoding has a ModRM byte: every claimed form does except 0F 77 (EMMS). The
 * x87 escapes D8..DF always have one. */
bool fpu_sse_has_modrm(uint8_t map, uint8_t opcode);

/* Whether the instruction reads or writes RFLAGS (COMISS/UCOMISS/COMISD/UCOMISD, PTEST,
 * FCOMI/FUCOMI(P), FCMOVcc). When false, exec may skip materializing its lazy flags and
 * pass any scratch value in *env->rflags. */
bool fpu_op_uses_rflags(const struct fpu_op *op);

/* Execute one instruction. */
enum fpu_result fpu_sse_exec(const struct fpu_op *op, struct fpu_env *env);

/* WAIT/FWAIT (9B), decoded by exec: FPU_NM if CR0.MP and CR0.TS, FPU_MF if an unmasked x87
 * exception is pending (FSW.ES), else FPU_OK. */
enum fpu_result fpu_wait(struct fpu_env *env);

/* CPUID leaf 1 ECX/EDX feature bits for what this module implements: EDX FPU, MMX, FXSR, SSE,
 * SSE2; ECX SSE3, SSSE3, SSE4.1 when the host CPU has them (not SSE4.2). The system part's
 * CPUID ORs these in. */
void fpu_sse_cpuid(uint32_t *leaf1_ecx, uint32_t *leaf1_edx);

/* Reset values (FNINIT / power-on): FCW 0x37F, FTW empty, MXCSR 0x1F80. */
void fpu_reset(struct cpu_fxsave *fx);

#endif
