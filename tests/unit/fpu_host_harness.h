/* fpu_host_harness: runs one instruction both through fpu_sse_exec and natively on the host
 * CPU (from an executable scratch page, with the same register file loaded by FXRSTOR64), and
 * compares the outcomes. Used by the test_fpu_sse* differential tests.
 *
 * Operands the generated instructions may use: any XMM/MM/ST register, RAX/RCX/RDX as GPR
 * operands, [RSI] as the memory operand and [RDI] for MASKMOVQ/MASKMOVDQU.
 */
#ifndef VMD_TESTS_FPU_HOST_HARNESS_H
#define VMD_TESTS_FPU_HOST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/emu/fpu_sse.h"

#define HARNESS_MEM 1024

struct harness_state {
    struct cpu_fxsave fx;
    uint64_t gpr[16];
    uint64_t rflags;
    uint8_t mem[HARNESS_MEM] __attribute__((aligned(64)));
};

enum harness_outcome { OUT_OK = 0, OUT_UD, OUT_GP, OUT_NM, OUT_MF, OUT_XM, OUT_OTHER };

/* An instruction to build: map (FPU_MAP_*), prefix (0/0x66/0xF3/0xF2), rex, opcode, modrm
 * (when mem is set, ModRM.mod must be 0 and rm 6: [rsi]), imm8 if has_imm. */
struct harness_insn {
    uint8_t map, prefix, rex, opcode, modrm, imm8;
    bool has_imm, mem;
    bool no_modrm; /* EMMS */
    uint64_t rip;  /* passed to fpu_sse_exec as the instruction address (emulated run only) */
    unsigned mem_off; /* offset of [rsi] inside mem */
    unsigned rdi_off; /* offset of [rdi] inside mem */
};

/* 0 on success, -1 if executable memory is unavailable (caller skips). */
int harness_init(void);
/* Run natively; *out = outcome. st is updated in place. */
void harness_run_host(struct harness_state *st, const struct harness_insn *in, enum harness_outcome *out);
/* Run through fpu_sse_exec with CR0 = PE|MP|ET|NE|PG and CR4 = OSFXSR|OSXMMEXCPT unless overridden. */
enum fpu_result harness_run_emu(struct harness_state *st, const struct harness_insn *in, uint64_t cr0, uint64_t cr4);
enum harness_outcome harness_outcome_of(enum fpu_result r);
/* Compare two states; prints the first difference with `what` and returns false on mismatch. */
bool harness_same(const struct harness_state *a, const struct harness_state *b, const char *what, bool cmp_x87_regs);

/* Random numbers (xorshift64*), seeded once per test binary. */
void harness_seed(uint64_t seed);
/* Suite set-up shared by the fpu tests: seed from FPU_TEST_SEED or the clock (printed, so a
 * failure can be repeated), then harness_init(). Returns whether native runs are possible. */
bool harness_suite_setup(const char *suite);
uint64_t harness_rand(void);
/* Random 16 bytes biased towards FP special values (NaN, Inf, zero, denormals, limits). */
void harness_rand_xmm(uint8_t out[16]);
/* Random 80-bit extended value biased towards specials. */
void harness_rand_f80(uint8_t out[10]);
/* Random but valid state: XMM/MM/ST, MXCSR with all exceptions masked, FCW masked, no ES. */
void harness_rand_state(struct harness_state *st);

#endif
