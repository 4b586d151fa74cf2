/* Unit tests for vmm/emu/fpu_sse (SSE/SSE2/SSE3, MMX, FXSAVE/FXRSTOR, MXCSR): every encoding
 * the module claims is run with random operands both through fpu_sse_exec and natively on the
 * host CPU, and registers, MXCSR, flags, memory and the fault raised are compared bit-exactly.
 * Also: CR0.TS/EM and CR4.OSFXSR behaviour, alignment faults, CPUID bits, FXSAVE image layout. */
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
#include "tests/unit/dot_product_amd_vectors.h"
#include "tests/unit/x86_undefined.h"
#include "vmm/emu/fpu_sse.h"

#define CR0_BASE (CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_PG)
#define CR4_BASE (CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_PAE)

static bool host_ok;
static bool host_is_amd; /* the vendor the emulator claims (vmm/emu/cpuid.c) */

static int setup(void **state)
{
    (void)state;
    host_ok = harness_suite_setup("test_fpu_sse");
    host_is_amd = getenv("FPU_TEST_REFERENCE") ? !strcmp(getenv("FPU_TEST_REFERENCE"), "amd")
                                               : x86_host_vendor() == X86_VENDOR_AMD;
    return 0;
}

/* Independent knowledge of the encodings (from the SDM), to check fpu_sse_claims against. */
static bool sdm_has_imm8(uint8_t map, uint8_t opc)
{
    if (map == FPU_MAP_0F3A) return true;
    if (map != FPU_MAP_0F) return false;
    return (opc >= 0x70 && opc <= 0x73) || opc == 0xC2 || opc == 0xC4 || opc == 0xC5 || opc == 0xC6;
}

/* Which ModRM fields name general registers for this encoding. */
static void gpr_fields(uint8_t map, uint8_t opc, uint8_t pfx, bool *gpr_reg, bool *gpr_rm)
{
    *gpr_reg = *gpr_rm = false;
    if (map == FPU_MAP_0F3A) {
        if (opc >= 0x14 && opc <= 0x17) *gpr_rm = true; /* PEXTRB/W/D/Q, EXTRACTPS */
        if (opc == 0x20 || opc == 0x22) *gpr_rm = true; /* PINSRB/D/Q */
        return;
    }
    if (map != FPU_MAP_0F) return;
    bool scalar = pfx == 0xF3 || pfx == 0xF2;
    if (((opc == 0x2C || opc == 0x2D) && scalar) || opc == 0x50 || opc == 0xC5 || opc == 0xD7 || opc == 0xC3)
        *gpr_reg = true;
    if ((opc == 0x2A && scalar) || opc == 0x6E || (opc == 0x7E && pfx != 0xF3) || opc == 0xC4) *gpr_rm = true;
}

static const char *outcome_name(enum harness_outcome o)
{
    static const char *n[] = {"ok", "#UD", "#GP", "#NM", "#MF", "#XM", "other"};
    return n[o];
}

static void random_insn(struct harness_insn *in, uint8_t map, uint8_t opc, uint8_t pfx)
{
    memset(in, 0, sizeof(*in));
    in->map = map;
    in->opcode = opc;
    in->prefix = pfx;
    uint64_t r = harness_rand();
    in->rex = (r & 1) ? (uint8_t)(0x40 | ((r >> 1) & 0xF)) : 0;
    in->mem = (r >> 5) & 1;
    unsigned reg = (r >> 6) & 7, rm = (r >> 9) & 7;
    bool greg, grm;
    gpr_fields(map, opc, pfx, &greg, &grm);
    if (greg) {
        reg = (unsigned)((r >> 12) % 3);
        in->rex &= (uint8_t)~4;
    }
    if (in->mem) {
        in->modrm = (uint8_t)(reg << 3 | 6);
        in->rex &= (uint8_t)~3;
    } else {
        if (grm) {
            rm = (unsigned)((r >> 14) % 3);
            in->rex &= (uint8_t)~1;
        }
        in->modrm = (uint8_t)(0xC0 | reg << 3 | rm);
    }
    if (in->rex == 0x40 && (r & 0x10000)) in->rex = 0;
    in->has_imm = sdm_has_imm8(map, opc);
    in->no_modrm = map == FPU_MAP_0F && opc == 0x77; /* EMMS */
    if (in->no_modrm) in->mem = false;
    in->imm8 = (uint8_t)(((r >> 20) & 1) ? (r >> 24) % 20 : (r >> 24));
    in->mem_off = ((r >> 40) & 3) ? 64 : 64 + (unsigned)((r >> 42) % 16);
    in->rdi_off = 160 + (unsigned)((r >> 48) % 16);
}

/* How many cases ended in #XM on both sides, and how many of those differed only in PE. */
static unsigned xm_cases, xm_pe_differences;

/* DPPS/DPPD (66 0F 3A 40/41) are where Intel and AMD CPUs differ (docs/emu-diff.md): Intel's
 * SSE4 reference leaves the propagation of NaNs across lanes to the implementation and gives no
 * IEEE sequence when FTZ or DAZ is set. The emulator computes them as AMD CPUs do (the SDM's
 * sequence: products, then (p0+p1)+(p2+p3), each step rounded), so they are compared with the
 * host only when it is an AMD CPU; on any other host the vectors recorded on an AMD CPU
 * (test_dot_product_amd_vectors) are their check. */
static bool is_dot_product(uint8_t map, uint8_t opc) { return map == FPU_MAP_0F3A && (opc == 0x40 || opc == 0x41); }
static unsigned dp_vendor_cases;

static int run_differential(uint8_t map, uint8_t opc, uint8_t pfx, unsigned cases)
{
    int failures = 0;
    for (unsigned i = 0; i < cases; i++) {
        struct harness_insn in;
        random_insn(&in, map, opc, pfx);
        static struct harness_state s0, se, sh;
        harness_rand_state(&s0);
        if (i % 8 == 7) /* some SIMD exceptions unmasked: #XM outcomes and flags compared too */
            s0.fx.mxcsr = (s0.fx.mxcsr & ~0x1F80u) | (uint32_t)(harness_rand() & 0x1F80) | 0x0800;
        if (is_dot_product(map, opc) && !host_is_amd) {
            dp_vendor_cases++;
            continue;
        }
        se = s0;
        sh = s0;
        enum harness_outcome oe = harness_outcome_of(harness_run_emu(&se, &in, CR0_BASE, CR4_BASE));
        enum harness_outcome oh;
        harness_run_host(&sh, &in, &oh);
        char what[128];
        snprintf(what, sizeof(what), "map %u %s%02x rex %02x modrm %02x imm %02x%s off %u", map,
                 pfx == 0x66 ? "66 " : pfx == 0xF3 ? "F3 " : pfx == 0xF2 ? "F2 " : "", opc, in.rex, in.modrm,
                 in.imm8, in.mem ? " [mem]" : "", in.mem_off);
        if (oe != oh) {
            fprintf(stderr, "outcome emu %s host %s: %s\n", outcome_name(oe), outcome_name(oh), what);
            failures++;
        } else if (oe == OUT_XM) {
            /* Documented approximation: with unmasked exceptions the hardware occasionally
             * records PE differently from the masked computation fpu_sse uses; all else
             * (destination untouched, every other flag) must match. */
            xm_cases++;
            if (map == FPU_MAP_0F3A && (opc == 0x40 || opc == 0x41)) {
                /* DPPS/DPPD: which stage's flags an unmasked exception leaves is not modelled
                 * exactly (documented in fpu_sse.c); the outcome and registers must match. */
                sh.fx.mxcsr = se.fx.mxcsr;
            }
            if ((se.fx.mxcsr ^ sh.fx.mxcsr) == 0x20) {
                xm_pe_differences++;
                sh.fx.mxcsr = se.fx.mxcsr;
            }
            if (!harness_same(&se, &sh, what, false)) failures++;
        } else if (oe == OUT_OK && !harness_same(&se, &sh, what, true)) {
            failures++;
        }
        if (failures > 5) break;
    }
    return failures;
}

static void test_sse_differential_every_claimed_encoding(void **state)
{
    (void)state;
    if (!host_ok) { print_message("skipped: no executable memory for native runs\n"); skip(); }
    static const uint8_t pfxs[4] = {0, 0x66, 0xF3, 0xF2};
    int failures = 0;
    unsigned encodings = 0, cases = 0;
    for (unsigned map = FPU_MAP_0F; map <= FPU_MAP_0F3A; map++)
        for (unsigned opc = 0; opc < 256; opc++)
            for (int p = 0; p < 4; p++) {
                bool imm;
                if (!fpu_sse_claims((uint8_t)map, (uint8_t)opc, pfxs[p], &imm)) continue;
                if (map == FPU_MAP_0F && opc == 0xAE) continue; /* FXSAVE & co: tested below */
                assert_int_equal(imm, sdm_has_imm8((uint8_t)map, (uint8_t)opc));
                assert_int_equal(fpu_sse_has_modrm((uint8_t)map, (uint8_t)opc), !(map == FPU_MAP_0F && opc == 0x77));
                encodings++;
                cases += 400;
                failures += run_differential((uint8_t)map, (uint8_t)opc, pfxs[p], 400);
            }
    printf("test_fpu_sse: %u encodings, %u random cases against the host (%u ended in #XM, %u of them with a "
           "different PE flag); host %s: %u DPPS/DPPD cases left to the AMD vectors\n", encodings,
           cases, xm_cases, xm_pe_differences, x86_vendor_name(x86_host_vendor()), dp_vendor_cases);
    assert_true(xm_pe_differences * 50 <= xm_cases + 50);
    assert_true(encodings > 150);
    assert_int_equal(failures, 0);
}

/* A DPPS/DPPD register-form case (xmm0 op= xmm1, imm) from the random state st. */
static struct harness_insn dot_product_insn(uint8_t opc, uint8_t imm)
{
    return (struct harness_insn){.map = FPU_MAP_0F3A, .prefix = 0x66, .opcode = opc, .modrm = 0xC1, .imm8 = imm,
                                 .has_imm = true};
}

/* DPPS/DPPD against results recorded on an AMD CPU, whatever the host: outside the
 * vendor-neutral domain (NaNs, FTZ, DAZ) this is the check on Intel hosts. On an AMD host,
 * FPU_TEST_RECORD_AMD_DP=FILE writes fresh rows for dot_product_amd_vectors.h. */
static void test_dot_product_amd_vectors(void **state)
{
    (void)state;
    const char *rec = getenv("FPU_TEST_RECORD_AMD_DP");
    if (rec && host_ok && x86_host_vendor() == X86_VENDOR_AMD) {
        FILE *f = fopen(rec, "w");
        assert_non_null(f);
        for (int i = 0; i < 160; i++) {
            static struct harness_state sh;
            harness_rand_state(&sh);
            uint8_t opc = i & 1 ? 0x41 : 0x40, imm = (uint8_t)harness_rand();
            sh.fx.mxcsr = 0x1F80 | (uint32_t)(harness_rand() & 0x6000) | (i % 4 == 1 ? 1u << 15 : 0) | (i % 4 == 2 ? 1u << 6 : 0);
            fprintf(f, "    {0x%02x, 0x%02x, %#x, {", opc, imm, sh.fx.mxcsr);
            for (int k = 0; k < 32; k++) fprintf(f, "%s%#x", k ? ", " : "", sh.fx.xmm[k / 16][k % 16]);
            struct harness_insn in = dot_product_insn(opc, imm);
            enum harness_outcome oh;
            harness_run_host(&sh, &in, &oh);
            assert_int_equal(oh, OUT_OK);
            fprintf(f, "}, {");
            for (int k = 0; k < 16; k++) fprintf(f, "%s%#x", k ? ", " : "", sh.fx.xmm[0][k]);
            fprintf(f, "}, %#x},\n", sh.fx.mxcsr);
        }
        fclose(f);
    }
    unsigned n = sizeof(dp_amd_vectors) / sizeof(dp_amd_vectors[0]), failures = 0;
    for (unsigned i = 0; i < n; i++) {
        const struct dp_amd_vector *v = &dp_amd_vectors[i];
        static struct harness_state se;
        memset(&se, 0, sizeof(se));
        se.fx.fcw = 0x37F;
        se.fx.mxcsr = v->mxcsr_in;
        memcpy(se.fx.xmm[0], v->in, 16);
        memcpy(se.fx.xmm[1], v->in + 16, 16);
        struct harness_insn in = dot_product_insn(v->opcode, v->imm);
        assert_int_equal(harness_run_emu(&se, &in, CR0_BASE, CR4_BASE), FPU_OK);
        if (memcmp(se.fx.xmm[0], v->out, 16) || se.fx.mxcsr != v->mxcsr_out) {
            if (++failures <= 5)
                fprintf(stderr, "dot-product AMD vector %u (%s imm %#x mxcsr %#x): emulator mxcsr %#x, AMD %#x\n", i,
                        v->opcode == 0x40 ? "dpps" : "dppd", v->imm, v->mxcsr_in, se.fx.mxcsr, v->mxcsr_out);
        }
    }
    printf("test_fpu_sse: %u DPPS/DPPD vectors recorded on an AMD CPU, %u differ\n", n, failures);
    assert_true(n >= 100);
    assert_int_equal(failures, 0);
}

static void test_fxsave_image_matches_host(void **state)
{
    (void)state;
    if (!host_ok) { print_message("skipped: no executable memory for native runs\n"); skip(); }
    for (int i = 0; i < 200; i++) {
        struct harness_insn in = {.map = FPU_MAP_0F, .opcode = 0xAE, .modrm = 0x06, .mem = true, .mem_off = 256};
        in.rex = (i & 1) ? 0x48 : 0;
        static struct harness_state s0, se, sh;
        harness_rand_state(&s0);
        se = s0;
        sh = s0;
        assert_int_equal(harness_run_emu(&se, &in, CR0_BASE, CR4_BASE), FPU_OK);
        enum harness_outcome oh;
        harness_run_host(&sh, &in, &oh);
        assert_int_equal(oh, OUT_OK);
        /* FOP/FIP/FDP (bytes 6..23) describe the host's last x87 instruction: not comparable. */
        memset(se.mem + 256 + 6, 0, 18);
        memset(sh.mem + 256 + 6, 0, 18);
        /* MXCSR_MASK is the emulated CPU's (0xFFFF), not the host's (AMD adds MM, bit 17). */
        assert_int_equal(se.mem[256 + 28] | se.mem[256 + 29] << 8, 0xFFFF);
        memset(se.mem + 256 + 28, 0, 4);
        memset(sh.mem + 256 + 28, 0, 4);
        assert_true(harness_same(&se, &sh, in.rex ? "fxsave64" : "fxsave", true));
        assert_memory_equal(se.mem, sh.mem, HARNESS_MEM);
    }
}

static void test_fxrstor_matches_host(void **state)
{
    (void)state;
    if (!host_ok) { print_message("skipped: no executable memory for native runs\n"); skip(); }
    for (int i = 0; i < 200; i++) {
        struct harness_insn in = {.map = FPU_MAP_0F, .opcode = 0xAE, .modrm = 0x0E, .mem = true, .mem_off = 256};
        in.rex = (i & 1) ? 0x48 : 0;
        static struct harness_state s0, se, sh, img;
        harness_rand_state(&s0);
        harness_rand_state(&img);
        memcpy(s0.mem + 256, &img.fx, 512);
        uint32_t mx = img.fx.mxcsr & ~0x1F80u; /* any masks: FXRSTOR itself does not trap */
        mx |= (uint32_t)(harness_rand() & 0x1F80);
        if (i % 10 == 3) mx |= 1u << (18 + harness_rand() % 14); /* reserved bit: #GP (bit 17 is AMD's MM) */
        memcpy(s0.mem + 256 + 24, &mx, 4);
        if (i % 4 == 1) { /* arbitrary control and status words, including ES and reserved bits */
            uint16_t cw = (uint16_t)harness_rand(), sw = (uint16_t)harness_rand();
            memcpy(s0.mem + 256, &cw, 2);
            memcpy(s0.mem + 256 + 2, &sw, 2);
        }
        se = s0;
        sh = s0;
        enum harness_outcome oe = harness_outcome_of(harness_run_emu(&se, &in, CR0_BASE, CR4_BASE));
        enum harness_outcome oh;
        harness_run_host(&sh, &in, &oh);
        assert_int_equal(oe, oh);
        if (oe == OUT_OK) assert_true(harness_same(&se, &sh, "fxrstor", true));
    }
}

static void test_ldmxcsr_stmxcsr_match_host(void **state)
{
    (void)state;
    if (!host_ok) { print_message("skipped: no executable memory for native runs\n"); skip(); }
    for (int i = 0; i < 300; i++) {
        bool st = i & 1;
        struct harness_insn in = {.map = FPU_MAP_0F, .opcode = 0xAE, .modrm = st ? 0x1E : 0x16, .mem = true, .mem_off = 64};
        static struct harness_state s0, se, sh;
        harness_rand_state(&s0);
        uint32_t v = (uint32_t)harness_rand() & 0xFFFF;
        if (i % 7 == 0) v |= 1u << (18 + harness_rand() % 14); /* reserved (bit 17 is AMD's MM) */
        memcpy(s0.mem + 64, &v, 4);
        se = s0;
        sh = s0;
        enum harness_outcome oe = harness_outcome_of(harness_run_emu(&se, &in, CR0_BASE, CR4_BASE));
        enum harness_outcome oh;
        harness_run_host(&sh, &in, &oh);
        assert_int_equal(oe, oh);
        if (oe == OUT_OK) assert_true(harness_same(&se, &sh, st ? "stmxcsr" : "ldmxcsr", true));
    }
}

static enum fpu_result run1(uint8_t opc, uint8_t pfx, uint8_t modrm, bool mem, unsigned off, uint64_t cr0, uint64_t cr4)
{
    static struct harness_state s;
    harness_rand_state(&s);
    struct harness_insn in = {.map = FPU_MAP_0F, .opcode = opc, .prefix = pfx, .modrm = modrm, .mem = mem, .mem_off = off};
    return harness_run_emu(&s, &in, cr0, cr4);
}

static void test_control_register_checks(void **state)
{
    (void)state;
    /* MOVAPS xmm0, xmm1 */
    assert_int_equal(run1(0x28, 0, 0xC1, false, 0, CR0_BASE, CR4_BASE), FPU_OK);
    assert_int_equal(run1(0x28, 0, 0xC1, false, 0, CR0_BASE | CR0_TS, CR4_BASE), FPU_NM);
    assert_int_equal(run1(0x28, 0, 0xC1, false, 0, CR0_BASE | CR0_EM, CR4_BASE), FPU_UD);
    assert_int_equal(run1(0x28, 0, 0xC1, false, 0, CR0_BASE, CR4_BASE & ~CR4_OSFXSR), FPU_UD);
    /* PADDB mm0, mm1 (MMX): EM -> #UD, TS -> #NM, OSFXSR irrelevant */
    assert_int_equal(run1(0xFC, 0, 0xC1, false, 0, CR0_BASE, CR4_BASE & ~CR4_OSFXSR), FPU_OK);
    assert_int_equal(run1(0xFC, 0, 0xC1, false, 0, CR0_BASE | CR0_TS, CR4_BASE), FPU_NM);
    assert_int_equal(run1(0xFC, 0, 0xC1, false, 0, CR0_BASE | CR0_EM, CR4_BASE), FPU_UD);
    /* FXSAVE: TS or EM -> #NM; misaligned -> #GP */
    assert_int_equal(run1(0xAE, 0, 0x06, true, 256, CR0_BASE | CR0_TS, CR4_BASE), FPU_NM);
    assert_int_equal(run1(0xAE, 0, 0x06, true, 256, CR0_BASE | CR0_EM, CR4_BASE), FPU_NM);
    assert_int_equal(run1(0xAE, 0, 0x06, true, 264, CR0_BASE, CR4_BASE), FPU_GP);
    assert_int_equal(run1(0xAE, 0, 0x0E, true, 264, CR0_BASE, CR4_BASE), FPU_GP);
    /* LDMXCSR: EM -> #UD, TS -> #NM */
    assert_int_equal(run1(0xAE, 0, 0x16, true, 64, CR0_BASE | CR0_EM, CR4_BASE), FPU_UD);
    assert_int_equal(run1(0xAE, 0, 0x16, true, 64, CR0_BASE | CR0_TS, CR4_BASE), FPU_NM);
    /* Fences are not FPU instructions: no #NM */
    assert_int_equal(run1(0xAE, 0, 0xF0, false, 0, CR0_BASE | CR0_TS, CR4_BASE), FPU_OK);
    /* Alignment: MOVAPS/MOVDQA/ADDPS m128 need 16 bytes, MOVUPS/MOVDQU/ADDSS do not */
    assert_int_equal(run1(0x28, 0, 0x06, true, 72, CR0_BASE, CR4_BASE), FPU_GP);
    assert_int_equal(run1(0x6F, 0x66, 0x06, true, 65, CR0_BASE, CR4_BASE), FPU_GP);
    assert_int_equal(run1(0x58, 0, 0x06, true, 68, CR0_BASE, CR4_BASE), FPU_GP);
    assert_int_equal(run1(0x10, 0, 0x06, true, 65, CR0_BASE, CR4_BASE), FPU_OK);
    assert_int_equal(run1(0x6F, 0xF3, 0x06, true, 65, CR0_BASE, CR4_BASE), FPU_OK);
    assert_int_equal(run1(0x58, 0xF3, 0x06, true, 65, CR0_BASE, CR4_BASE), FPU_OK);
}

static void test_unmasked_simd_exception_reports_xm(void **state)
{
    (void)state;
    static struct harness_state s;
    harness_rand_state(&s);
    float one = 1.0f, zero = 0.0f;
    memset(s.fx.xmm[0], 0, 16);
    memset(s.fx.xmm[1], 0, 16);
    memcpy(s.fx.xmm[0], &one, 4);
    memcpy(s.fx.xmm[1], &zero, 4);
    s.fx.mxcsr = 0x1F80 & ~(1u << 9); /* divide-by-zero unmasked */
    uint8_t before[16];
    memcpy(before, s.fx.xmm[0], 16);
    struct harness_insn in = {.map = FPU_MAP_0F, .opcode = 0x5E, .prefix = 0xF3, .modrm = 0xC1};
    assert_int_equal(harness_run_emu(&s, &in, CR0_BASE, CR4_BASE), FPU_XM);
    assert_true(s.fx.mxcsr & (1u << 2));        /* ZE recorded */
    assert_memory_equal(s.fx.xmm[0], before, 16); /* destination untouched */
    s.fx.mxcsr = 0x1F80;
    assert_int_equal(harness_run_emu(&s, &in, CR0_BASE, CR4_BASE), FPU_OK);
    float r;
    memcpy(&r, s.fx.xmm[0], 4);
    assert_true(r > 1e38f);

    /* ADDPS: lane 0 inexact (PE), lane 1 inf + -inf (IE). IE unmasked: only IE is recorded. */
    float a[4] = {1.0f, __builtin_inff(), 0, 0}, b[4] = {1e-10f, -__builtin_inff(), 0, 0};
    memcpy(s.fx.xmm[2], a, 16);
    memcpy(s.fx.xmm[3], b, 16);
    struct harness_insn addps = {.map = FPU_MAP_0F, .opcode = 0x58, .modrm = 0xD3};
    s.fx.mxcsr = 0x1F80 & ~(1u << 7);
    assert_int_equal(harness_run_emu(&s, &addps, CR0_BASE, CR4_BASE), FPU_XM);
    assert_int_equal(s.fx.mxcsr & 0x3F, 0x01);
    assert_memory_equal(s.fx.xmm[2], a, 16);
    /* Only PE unmasked: the masked IE does not stop the post-computation #XM; both recorded. */
    s.fx.mxcsr = 0x1F80 & ~(1u << 12);
    assert_int_equal(harness_run_emu(&s, &addps, CR0_BASE, CR4_BASE), FPU_XM);
    assert_int_equal(s.fx.mxcsr & 0x3F, 0x21);
    /* All masked: both flags, result written. */
    s.fx.mxcsr = 0x1F80;
    assert_int_equal(harness_run_emu(&s, &addps, CR0_BASE, CR4_BASE), FPU_OK);
    assert_int_equal(s.fx.mxcsr & 0x3F, 0x21);
}

static void test_cpuid_bits_and_claims(void **state)
{
    (void)state;
    uint32_t ecx = 0, edx = 0;
    fpu_sse_cpuid(&ecx, &edx);
    uint32_t want_edx = (1u << 0) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26);
    assert_int_equal(edx & want_edx, want_edx);
    bool imm;
    /* Each reported extension is claimed, each unreported one is not. */
    assert_int_equal(fpu_sse_claims(FPU_MAP_0F, 0x7C, 0x66, &imm), (ecx & 1) != 0);     /* HADDPD: SSE3 */
    assert_int_equal(fpu_sse_claims(FPU_MAP_0F38, 0x00, 0x66, &imm), (ecx & (1u << 9)) != 0); /* PSHUFB: SSSE3 */
    assert_int_equal(fpu_sse_claims(FPU_MAP_0F38, 0x17, 0x66, &imm), (ecx & (1u << 19)) != 0); /* PTEST: SSE4.1 */
    assert_false(ecx & (1u << 20)); /* SSE4.2 is not implemented */
    assert_false(fpu_sse_claims(FPU_MAP_0F, 0x0F, 0, &imm)); /* 3DNow! */
    assert_true(fpu_sse_claims(FPU_MAP_0F, 0xC2, 0, &imm));
    assert_true(imm);
    assert_true(fpu_sse_claims(FPU_MAP_0F, 0x6F, 0xF3, &imm));
    assert_false(imm);
    assert_false(fpu_sse_claims(FPU_MAP_0F, 0x28, 0xF3, &imm)); /* no F3 form of MOVAPS */
    for (unsigned op = 0xD8; op <= 0xDF; op++) assert_true(fpu_sse_claims(FPU_MAP_X87, (uint8_t)op, 0, &imm));
}

static void test_reset_values(void **state)
{
    (void)state;
    struct cpu_fxsave fx;
    memset(&fx, 0xAA, sizeof(fx));
    fpu_reset(&fx);
    assert_int_equal(fx.fcw, 0x37F);
    assert_int_equal(fx.fsw, 0);
    assert_int_equal(fx.ftw, 0);
    assert_int_equal(fx.mxcsr, 0x1F80);
    static const uint8_t zero[16];
    assert_memory_equal(fx.xmm[5], zero, 16);
}

/* Memory callbacks where the linear address is the host address (inside the test buffer). */
static void flat_write(void *ctx, uint64_t la, const void *buf, unsigned len)
{
    (void)ctx;
    memcpy((void *)(uintptr_t)la, buf, len);
}

static void flat_read(void *ctx, uint64_t la, void *buf, unsigned len)
{
    (void)ctx;
    memcpy(buf, (const void *)(uintptr_t)la, len);
}

static void test_unclaimed_encodings_are_ud_and_fxsave_legacy_layout(void **state)
{
    (void)state;
    static const uint8_t pfxs[4] = {0, 0x66, 0xF3, 0xF2};
    static struct harness_state s;
    unsigned unclaimed = 0;
    for (unsigned map = FPU_MAP_0F; map <= FPU_MAP_0F3A; map++)
        for (unsigned opc = 0; opc < 256; opc++)
            for (int p = 0; p < 4; p++) {
                bool imm;
                if (fpu_sse_claims((uint8_t)map, (uint8_t)opc, pfxs[p], &imm)) continue;
                unclaimed++;
                harness_rand_state(&s);
                struct harness_insn in = {.map = (uint8_t)map, .opcode = (uint8_t)opc, .prefix = pfxs[p],
                                          .modrm = (uint8_t)harness_rand(), .mem_off = 64};
                in.mem = (in.modrm >> 6) != 3;
                assert_int_equal(harness_run_emu(&s, &in, CR0_BASE, CR4_BASE), FPU_UD);
            }
    assert_true(unclaimed > 2000);

    /* FXSAVE outside 64-bit mode stores XMM0-7 only (bytes 288.. untouched). */
    harness_rand_state(&s);
    memset(s.mem, 0xA5, HARNESS_MEM);
    struct cpu_fxsave *fx = &s.fx;
    uint8_t *dst = s.mem + 256;
    struct fpu_op op = {.map = FPU_MAP_0F, .opcode = 0xAE, .modrm = 0x06, .has_mem = true,
                        .ea = (uint64_t)(uintptr_t)dst, .long64 = false};
    bool written = false;
    struct fpu_env env = {.fx = fx, .gpr = s.gpr, .cr0 = CR0_BASE, .cr4 = CR4_BASE, .rflags = &s.rflags,
                          .rflags_written = &written, .read = flat_read, .write = flat_write};
    assert_int_equal(fpu_sse_exec(&op, &env), FPU_OK);
    assert_memory_equal(dst + 160, fx->xmm[0], 128);
    for (int i = 288; i < 512; i++) assert_int_equal(dst[i], 0xA5);
}

/* A memory access that faults, as the emulator's callbacks do: longjmp out of fpu_sse_exec. */
static jmp_buf fault_jmp; /* test-only: the one in-flight faulting access */
static void faulting_read(void *ctx, uint64_t la, void *buf, unsigned len)
{
    (void)ctx, (void)la, (void)buf, (void)len;
    longjmp(fault_jmp, 1);
}
static void faulting_write(void *ctx, uint64_t la, const void *buf, unsigned len)
{
    (void)ctx, (void)la, (void)buf, (void)len;
    longjmp(fault_jmp, 1);
}

static void test_faulting_memory_access_leaves_state_unchanged(void **state)
{
    (void)state;
    /* map, prefix, opcode, modrm: stores and loads whose memory access faults */
    static const struct { uint8_t map, pfx, opc, modrm; } cases[] = {
        {FPU_MAP_0F, 0, 0x7E, 0x0E},    /* MOVD m32, mm1 */
        {FPU_MAP_0F, 0, 0x7F, 0x0E},    /* MOVQ m64, mm1 */
        {FPU_MAP_0F, 0, 0xE7, 0x0E},    /* MOVNTQ */
        {FPU_MAP_0F, 0, 0x6F, 0x0E},    /* MOVQ mm1, m64 */
        {FPU_MAP_0F, 0, 0xFC, 0x0E},    /* PADDB mm1, m64 */
        {FPU_MAP_0F, 0, 0xC4, 0x0E},    /* PINSRW mm1, m16 */
        {FPU_MAP_0F, 0x66, 0x7F, 0x0E}, /* MOVDQA m128 */
        {FPU_MAP_0F, 0x66, 0x2F, 0x0E}, /* COMISD */
        {FPU_MAP_0F, 0, 0xAE, 0x06},    /* FXSAVE */
        {FPU_MAP_0F, 0, 0xAE, 0x0E},    /* FXRSTOR */
        {FPU_MAP_0F, 0, 0xAE, 0x16},    /* LDMXCSR */
        {FPU_MAP_X87, 0, 0xD9, 0x06},   /* FLD m32 */
        {FPU_MAP_X87, 0, 0xD9, 0x1E},   /* FSTP m32 */
        {FPU_MAP_X87, 0, 0xDF, 0x3E},   /* FISTP m64 */
        {FPU_MAP_X87, 0, 0xDB, 0x3E},   /* FSTP m80 */
        {FPU_MAP_X87, 0, 0xDD, 0x36},   /* FNSAVE */
        {FPU_MAP_X87, 0, 0xDD, 0x26},   /* FRSTOR */
        {FPU_MAP_X87, 0, 0xD8, 0x06},   /* FADD m32 */
    };
    for (volatile unsigned k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        static struct harness_state s, before;
        harness_rand_state(&s);
        s.fx.fsw = (uint16_t)((s.fx.fsw & ~0x3800u) | (3u << 11)); /* TOP = 3 */
        before = s;
        struct fpu_op op = {.map = cases[k].map, .mandatory = cases[k].pfx, .opcode = cases[k].opc,
                            .modrm = cases[k].modrm, .has_mem = true, .ea = 0x1000, .long64 = true};
        bool written = false;
        struct fpu_env env = {.fx = &s.fx, .gpr = s.gpr, .cr0 = CR0_BASE, .cr4 = CR4_BASE, .rflags = &s.rflags,
                              .rflags_written = &written, .read = faulting_read, .write = faulting_write};
        if (setjmp(fault_jmp) == 0) {
            fpu_sse_exec(&op, &env);
            fail_msg("case %u: the access did not fault", k);
        }
        if (memcmp(&s.fx, &before.fx, sizeof(s.fx)) || memcmp(s.gpr, before.gpr, sizeof(s.gpr)))
            fail_msg("case %u (map %u %02x /%u): state changed before the faulting access", k, cases[k].map,
                     cases[k].opc, (cases[k].modrm >> 3) & 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpuid_bits_and_claims),
        cmocka_unit_test(test_reset_values),
        cmocka_unit_test(test_unclaimed_encodings_are_ud_and_fxsave_legacy_layout),
        cmocka_unit_test(test_control_register_checks),
        cmocka_unit_test(test_faulting_memory_access_leaves_state_unchanged),
        cmocka_unit_test(test_unmasked_simd_exception_reports_xm),
        cmocka_unit_test(test_ldmxcsr_stmxcsr_match_host),
        cmocka_unit_test(test_fxsave_image_matches_host),
        cmocka_unit_test(test_fxrstor_matches_host),
        cmocka_unit_test(test_sse_differential_every_claimed_encoding),
        cmocka_unit_test(test_dot_product_amd_vectors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
