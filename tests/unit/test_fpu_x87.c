/* Unit tests for vmm/emu/fpu_x87: every x87 encoding (D8..DF, all register forms and all
 * memory forms) runs with random register stacks, tags, TOP, precision/rounding control and
 * memory operands both through fpu_sse_exec and natively on the host, and the register
 * stack, FSW/FTW/FCW, RFLAGS, RAX and memory are compared bit-exactly. Also: #NM/#MF
 * behaviour, FNSTENV/FNSAVE images, unmasked exceptions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/fpu_host_harness.h"
#include "vmm/emu/fpu_sse.h"

#define CR0_BASE (CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG)
#define CR4_BASE (CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_PAE)

static bool host_ok;

static int setup(void **state)
{
    (void)state;
    host_ok = harness_suite_setup("test_fpu_x87");
    return 0;
}

static const char *outcome_name(enum harness_outcome o)
{
    static const char *n[] = {"ok", "#UD", "#GP", "#NM", "#MF", "#XM", "other"};
    return n[o];
}

/* Bytes of an FNSTENV/FNSAVE image (28-byte format) that hold FIP/FCS/FOP/FDP/FDS: they
 * describe the host's previous instruction, not comparable. */
static void mask_env_pointers(uint8_t *img) { memset(img + 12, 0, 16); }

/* When set, FCW exception masks are random (unmasked exceptions: ES, deferred #MF). */
static bool random_masks;

static int run_case(uint8_t opc, uint8_t modrm, bool mem, uint8_t prefix)
{
    static struct harness_state s0, se, sh;
    struct harness_insn in = {.map = FPU_MAP_X87, .opcode = opc, .modrm = modrm, .mem = mem, .prefix = prefix};
    uint64_t r = harness_rand();
    in.mem_off = (r & 3) ? 64 : 64 + (unsigned)((r >> 2) % 16);
    harness_rand_state(&s0);
    if (random_masks) {
        s0.fx.fcw = (uint16_t)((s0.fx.fcw & ~0x3Fu) | (harness_rand() & 0x3F));
        if ((harness_rand() & 3) != 0) s0.fx.fsw &= (uint16_t)~0x3F; /* mostly no pending exception */
        if (s0.fx.fsw & 0x3F & ~s0.fx.fcw) s0.fx.fsw |= 0x8080;   /* ES and B, as the hardware keeps them */
    }
    if (mem && opc == 0xDF && ((modrm >> 3) & 7) == 4) {
        /* FBLD: mostly valid packed BCD */
        for (int k = 0; k < 9; k++) s0.mem[in.mem_off + k] = (uint8_t)((harness_rand() % 10) | (harness_rand() % 10) << 4);
        s0.mem[in.mem_off + 9] &= 0x80;
    }
    se = s0;
    sh = s0;
    enum harness_outcome oe = harness_outcome_of(harness_run_emu(&se, &in, CR0_BASE, CR4_BASE));
    enum harness_outcome oh;
    harness_run_host(&sh, &in, &oh);
    char what[128];
    snprintf(what, sizeof(what), "%s%02x %02x%s off %u (before: fcw %04x fsw %04x ftw %02x)", prefix ? "66 " : "",
             opc, modrm, mem ? " [mem]" : "", in.mem_off, s0.fx.fcw, s0.fx.fsw, s0.fx.ftw);
    if (oe == OUT_MF && oh == OUT_XM) return 0; /* the host reports #MF as SIGFPE too */
    if (oe != oh) {
        fprintf(stderr, "outcome emu %s host %s: %s\n", outcome_name(oe), outcome_name(oh), what);
        return 1;
    }
    if (oe != OUT_OK) return 0;
    unsigned sub = (modrm >> 3) & 7;
    if (mem && ((opc == 0xD9 && sub == 6) || (opc == 0xDD && sub == 6))) {
        if (prefix) {
            memset(se.mem + in.mem_off + 6, 0, 8);
            memset(sh.mem + in.mem_off + 6, 0, 8);
        } else {
            mask_env_pointers(se.mem + in.mem_off);
            mask_env_pointers(sh.mem + in.mem_off);
        }
    }
    return harness_same(&se, &sh, what, true) ? 0 : 1;
}

static void test_x87_differential_register_forms(void **state)
{
    (void)state;
    if (!host_ok) { print_message("skipped: no executable memory for native runs\n"); skip(); }
    int failures = 0;
    unsigned cases = 0;
    for (unsigned opc = 0xD8; opc <= 0xDF; opc++)
        for (unsigned modrm = 0xC0; modrm <= 0xFF; modrm++) {
            /* D9 D8+i (undocumented FSTP1 alias): the AMD host stores without tag checks;
             * the emulator treats it as FSTP ST(i), as Intel documents for the aliases. */
            if (opc == 0xD9 && modrm >= 0xD8 && modrm <= 0xDF) continue;
            int f = 0;
            for (int k = 0; k < 80 && f < 3; k++, cases++) f += run_case((uint8_t)opc, (uint8_t)modrm, false, 0);
            failures += f;
        }
    printf("test_fpu_x87: %u register-form cases against the host\n", cases);
    assert_int_equal(failures, 0);
}

static void test_x87_differential_memory_forms(void **state)
{
    (void)state;
    if (!host_ok) { print_message("skipped: no executable memory for native runs\n"); skip(); }
    int failures = 0;
    unsigned cases = 0;
    for (unsigned opc = 0xD8; opc <= 0xDF; opc++)
        for (unsigned sub = 0; sub < 8; sub++) {
            int f = 0;
            for (int k = 0; k < 400 && f < 3; k++, cases++) f += run_case((uint8_t)opc, (uint8_t)(sub << 3 | 6), true, 0);
            failures += f;
        }
    /* 16-bit operand size environment forms */
    for (int k = 0; k < 200; k++, cases += 4) {
        failures += run_case(0xD9, 0x26, true, 0x66); /* FLDENV m14 */
        failures += run_case(0xD9, 0x36, true, 0x66); /* FNSTENV m14 */
        failures += run_case(0xDD, 0x26, true, 0x66); /* FRSTOR m94 */
        failures += run_case(0xDD, 0x36, true, 0x66); /* FNSAVE m94 */
    }
    printf("test_fpu_x87: %u memory-form cases against the host\n", cases);
    assert_int_equal(failures, 0);
}

static void test_x87_differential_unmasked_exceptions(void **state)
{
    (void)state;
    if (!host_ok) { print_message("skipped: no executable memory for native runs\n"); skip(); }
    random_masks = true;
    int failures = 0;
    unsigned cases = 0;
    for (unsigned opc = 0xD8; opc <= 0xDF; opc++) {
        for (unsigned modrm = 0xC0; modrm <= 0xFF; modrm++) {
            if (opc == 0xD9 && modrm >= 0xD8 && modrm <= 0xDF) continue; /* see the register-form test */
            int f = 0;
            for (int k = 0; k < 30 && f < 3; k++, cases++) f += run_case((uint8_t)opc, (uint8_t)modrm, false, 0);
            failures += f;
        }
        for (unsigned sub = 0; sub < 8; sub++) {
            int f = 0;
            for (int k = 0; k < 100 && f < 3; k++, cases++) f += run_case((uint8_t)opc, (uint8_t)(sub << 3 | 6), true, 0);
            failures += f;
        }
    }
    random_masks = false;
    printf("test_fpu_x87: %u cases with random exception masks against the host\n", cases);
    assert_int_equal(failures, 0);
}

static enum fpu_result run_emu(struct harness_state *s, uint8_t opc, uint8_t modrm, bool mem, uint64_t cr0)
{
    struct harness_insn in = {.map = FPU_MAP_X87, .opcode = opc, .modrm = modrm, .mem = mem, .mem_off = 64};
    return harness_run_emu(s, &in, cr0, CR4_BASE);
}

static void test_x87_nm_and_deferred_mf(void **state)
{
    (void)state;
    static struct harness_state s;
    harness_rand_state(&s);
    assert_int_equal(run_emu(&s, 0xD9, 0xE8, false, CR0_BASE | CR0_TS), FPU_NM); /* FLD1 */
    assert_int_equal(run_emu(&s, 0xD9, 0xE8, false, CR0_BASE | CR0_EM), FPU_NM);
    assert_int_equal(run_emu(&s, 0xDB, 0xE3, false, CR0_BASE | CR0_TS), FPU_NM); /* FNINIT too */

    /* Divide by zero with ZE unmasked: flags and ES set, ST0 unchanged, then #MF on the next
     * waiting instruction, but not on FNSTSW / FNCLEX. */
    assert_int_equal(run_emu(&s, 0xDB, 0xE3, false, CR0_BASE), FPU_OK); /* FNINIT */
    s.fx.fcw = 0x37F & ~0x4;
    assert_int_equal(run_emu(&s, 0xD9, 0xE8, false, CR0_BASE), FPU_OK); /* FLD1 */
    assert_int_equal(run_emu(&s, 0xD9, 0xEE, false, CR0_BASE), FPU_OK); /* FLDZ */
    assert_int_equal(run_emu(&s, 0xDC, 0xF9, false, CR0_BASE), FPU_OK); /* FDIV ST1, ST0: 1/0 */
    assert_true(s.fx.fsw & 0x4);
    assert_true(s.fx.fsw & 0x80);
    assert_true(s.fx.fsw & 0x8000);
    uint8_t one[10] = {0, 0, 0, 0, 0, 0, 0, 0x80, 0xFF, 0x3F};
    assert_memory_equal(s.fx.st[1], one, 10);
    assert_int_equal(run_emu(&s, 0xD9, 0xE8, false, CR0_BASE), FPU_MF); /* FLD1: waiting */
    assert_int_equal(run_emu(&s, 0xDF, 0xE0, false, CR0_BASE), FPU_OK); /* FNSTSW AX */
    assert_int_equal(s.gpr[0] & 0xFFFF, s.fx.fsw);
    struct fpu_env env = {.fx = &s.fx, .cr0 = CR0_BASE};
    assert_int_equal(fpu_wait(&env), FPU_MF);
    assert_int_equal(run_emu(&s, 0xDB, 0xE2, false, CR0_BASE), FPU_OK); /* FNCLEX */
    assert_int_equal(s.fx.fsw & 0x80FF, 0);
    assert_int_equal(fpu_wait(&env), FPU_OK);
    assert_int_equal(run_emu(&s, 0xD9, 0xE8, false, CR0_BASE), FPU_OK);
    env.cr0 = CR0_BASE | CR0_TS;
    assert_int_equal(fpu_wait(&env), FPU_NM);
}

static void test_x87_stack_overflow_masked_pushes_indefinite(void **state)
{
    (void)state;
    static struct harness_state s;
    harness_rand_state(&s);
    assert_int_equal(run_emu(&s, 0xDB, 0xE3, false, CR0_BASE), FPU_OK); /* FNINIT */
    for (int k = 0; k < 8; k++) assert_int_equal(run_emu(&s, 0xD9, 0xE8, false, CR0_BASE), FPU_OK);
    assert_int_equal(s.fx.ftw, 0xFF);
    assert_int_equal(s.fx.fsw & 0x41, 0);
    assert_int_equal(run_emu(&s, 0xD9, 0xEB, false, CR0_BASE), FPU_OK); /* FLDPI: 9th push */
    assert_int_equal(s.fx.fsw & 0x0241, 0x0241); /* IE SF C1 (overflow) */
    static const uint8_t indef[10] = {0, 0, 0, 0, 0, 0, 0, 0xC0, 0xFF, 0xFF};
    assert_memory_equal(s.fx.st[0], indef, 10);
}

static void test_x87_records_fop_fip_fdp_and_fnstenv_reports_them(void **state)
{
    (void)state;
    static struct harness_state s;
    harness_rand_state(&s);
    s.fx.ftw = 0xFF;
    struct harness_insn in = {.map = FPU_MAP_X87, .opcode = 0xD8, .modrm = 0x06, .mem = true, .mem_off = 64,
                              .rip = 0x401234};
    float two = 2.0f;
    memcpy(s.mem + 64, &two, 4);
    assert_int_equal(harness_run_emu(&s, &in, CR0_BASE, CR4_BASE), FPU_OK); /* FADD m32 */
    uint64_t ea = (uint64_t)(uintptr_t)(s.mem + 64);
    assert_int_equal(s.fx.fop, 0x006);
    assert_int_equal(s.fx.fip, 0x401234);
    assert_int_equal(s.fx.fdp, ea);
    /* FNSTCW is a control instruction: the pointers stay. */
    struct harness_insn ctl = {.map = FPU_MAP_X87, .opcode = 0xD9, .modrm = 0x3E, .mem = true, .mem_off = 128, .rip = 0x999};
    assert_int_equal(harness_run_emu(&s, &ctl, CR0_BASE, CR4_BASE), FPU_OK);
    assert_int_equal(s.fx.fip, 0x401234);
    /* FNSTENV (32-bit format): FIP at 12, FOP in bits 16-26 of the dword at 16, FDP at 20. */
    struct harness_insn env = {.map = FPU_MAP_X87, .opcode = 0xD9, .modrm = 0x36, .mem = true, .mem_off = 256};
    s.fx.fcw = 0x0372; /* some exceptions unmasked; no pending flags */
    s.fx.fsw &= (uint16_t)~0x3F;
    assert_int_equal(harness_run_emu(&s, &env, CR0_BASE, CR4_BASE), FPU_OK);
    uint32_t d[7];
    memcpy(d, s.mem + 256, 28);
    assert_int_equal(d[3], 0x401234);
    assert_int_equal(d[4] >> 16, 0x006);
    assert_int_equal(d[5], (uint32_t)ea);
    assert_int_equal(d[0] & 0xFFFF, 0x0372);  /* stored before FNSTENV masks everything */
    assert_int_equal(s.fx.fcw, 0x037F);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x87_nm_and_deferred_mf),
        cmocka_unit_test(test_x87_stack_overflow_masked_pushes_indefinite),
        cmocka_unit_test(test_x87_records_fop_fip_fdp_and_fnstenv_reports_them),
        cmocka_unit_test(test_x87_differential_register_forms),
        cmocka_unit_test(test_x87_differential_memory_forms),
        cmocka_unit_test(test_x87_differential_unmasked_exceptions),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
