/* Unit tests for the emulator's exec part: randomized integer instructions checked against
 * the host CPU (the same bytes run natively in a thunk), control flow, stack, string
 * instructions, memory operands, exceptions (#UD #GP #DE #PF end to end), self-modifying
 * code, CPL3 execution and exact instruction budgets. Set EMU_TEST_SEED to replay a seed.
 * Only what the architecture defines is compared, per tests/unit/x86_undefined.c (docs/emu-diff.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#include "emu_exec_testbed.h"
#include "amd_undefined_vectors.h"
#include "x86_undefined.h"

static int setup(void **state)
{
    struct testbed *tb = tb_new();
    assert_non_null(tb);
    *state = tb;
    return 0;
}

static int teardown(void **state)
{
    tb_free(*state);
    return 0;
}

static uint64_t rd64(struct testbed *tb, uint64_t gpa)
{
    uint64_t v;
    memcpy(&v, tb_ram(tb, gpa, 8), 8);
    return v;
}

/* Run code at CPL0 until HLT (or budget); returns instructions executed. */
static uint64_t run0(struct testbed *tb, const uint8_t *code, size_t len, uint64_t budget)
{
    tb_start(tb, code, len, 0);
    uint64_t n = 0;
    while (n < budget && !tb->cpu.s.halted) {
        uint64_t k = emu_exec(&tb->cpu, budget - n);
        if (k == 0) break;
        n += k;
    }
    return n;
}

/* ---- host oracle ---------------------------------------------------------------------- */

struct hregs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rflags;
};
static const int hreg_gpr[6] = {GPR_RAX, GPR_RBX, GPR_RCX, GPR_RDX, GPR_RSI, GPR_RDI};

/* The struct hregs slot of a register by its ModRM number (only rax rcx rdx rbx rsi rdi). */
static unsigned hreg_index(int modrm_reg)
{
    static const unsigned slot[8] = {0, 2, 3, 1, 0, 0, 4, 5};
    return slot[modrm_reg & 7];
}

static uint8_t *thunk_mem;

/* Runs `insn` natively with the registers of a struct hregs (pointer in RDI). */
static void host_run(const uint8_t *insn, unsigned len, struct hregs *r)
{
    static const uint8_t pre[] = {
        0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, /* push rbx rbp r12-r15 */
        0x49, 0x89, 0xff,                                           /* mov r15, rdi */
        0x49, 0x8b, 0x07, 0x49, 0x8b, 0x5f, 0x08, 0x49, 0x8b, 0x4f, 0x10, 0x49, 0x8b, 0x57, 0x18,
        0x49, 0x8b, 0x77, 0x20, 0x49, 0x8b, 0x7f, 0x28, /* load rax rbx rcx rdx rsi rdi */
        0x41, 0xff, 0x77, 0x30, 0x9d,                   /* push [r15+48]; popfq */
    };
    static const uint8_t post[] = {
        0x9c, 0x41, 0x8f, 0x47, 0x30, /* pushfq; pop [r15+48] */
        0x49, 0x89, 0x07, 0x49, 0x89, 0x5f, 0x08, 0x49, 0x89, 0x4f, 0x10, 0x49, 0x89, 0x57, 0x18,
        0x49, 0x89, 0x77, 0x20, 0x49, 0x89, 0x7f, 0x28, /* store */
        0x41, 0x5f, 0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3,
    };
    if (!thunk_mem) {
        thunk_mem = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert_true(thunk_mem != MAP_FAILED);
    }
    size_t o = 0;
    memcpy(thunk_mem, pre, sizeof(pre));
    o += sizeof(pre);
    memcpy(thunk_mem + o, insn, len);
    o += len;
    memcpy(thunk_mem + o, post, sizeof(post));
    __builtin___clear_cache((char *)thunk_mem, (char *)thunk_mem + 4096);
    ((void (*)(struct hregs *))thunk_mem)(r);
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static uint64_t rnd_val(void)
{
    static const uint64_t edge[] = {0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000,
                                    0xffffffff, 0x7fffffffffffffffULL, 0x8000000000000000ULL, ~0ULL, 63, 64, 31, 32};
    switch (rnd() % 4) {
    case 0: return edge[rnd() % (sizeof(edge) / sizeof(edge[0]))];
    case 1: return rnd() & 0xff;
    case 2: return rnd() & 0xffffffff;
    default: return rnd();
    }
}

/* Registers usable in generated instructions (ModRM numbers): rax rcx rdx rbx rsi rdi. */
static unsigned rnd_reg(void)
{
    static const unsigned r[6] = {0, 1, 2, 3, 6, 7};
    return r[rnd() % 6];
}

#define F_ALL (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

/* Generate one instruction; returns its length, sets the flags to ignore. */
/* What gen() tells the test about the instruction it made. */
struct gen_info {
    int family;         /* enum x86_family whose undefined bits apply, -1 for none */
    struct x86_operands ops;
    int scan_src;       /* bit scans: ModRM number of the source register, else -1 */
    bool may_fault;     /* DIV/IDIV: #DE possible */
    int force_cl;       /* the count to put in CL, -1 for none */
};

/* Generate one instruction; returns its length. */
static unsigned gen(uint8_t *b, struct gen_info *gi, char *what, size_t whatlen)
{
    unsigned n = 0, kind = rnd() % 22;
    unsigned sz = (unsigned[]){1, 2, 4, 8}[rnd() % 4];
    unsigned rm = rnd_reg(), reg = rnd_reg();
    *gi = (struct gen_info){.family = -1, .scan_src = -1, .force_cl = -1};
#define PFX()                         \
    do {                              \
        if (sz == 2) b[n++] = 0x66;   \
        if (sz == 8) b[n++] = 0x48;   \
    } while (0)
    switch (kind) {
    case 0: case 1: { /* ALU r/m, r and r, r/m */
        unsigned op = rnd() % 8;
        if (sz == 1) rm = rnd() % 8, reg = rnd() % 8; /* incl. AH CH DH BH */
        if (sz == 1 && (rm == 4 || reg == 4)) { rm &= 3; reg &= 3; }
        PFX();
        b[n++] = (uint8_t)(op * 8 + (sz == 1 ? 0 : 1) + (kind == 1 ? 2 : 0));
        b[n++] = (uint8_t)(0xc0 | reg << 3 | rm);
        snprintf(what, whatlen, "alu%u sz%u", op, sz);
        break;
    }
    case 2: { /* ALU imm */
        unsigned op = rnd() % 8, form = rnd() % 3;
        PFX();
        if (sz == 1) { b[n++] = 0x80; b[n++] = (uint8_t)(0xc0 | op << 3 | (rm & 3)); b[n++] = (uint8_t)rnd(); }
        else if (form == 0) { b[n++] = 0x83; b[n++] = (uint8_t)(0xc0 | op << 3 | rm); b[n++] = (uint8_t)rnd(); }
        else if (form == 1) { b[n++] = 0x81; b[n++] = (uint8_t)(0xc0 | op << 3 | rm); uint64_t v = rnd_val(); memcpy(b + n, &v, sz == 2 ? 2 : 4); n += sz == 2 ? 2 : 4; }
        else { b[n++] = (uint8_t)(op * 8 + 5); uint64_t v = rnd_val(); memcpy(b + n, &v, sz == 2 ? 2 : 4); n += sz == 2 ? 2 : 4; }
        snprintf(what, whatlen, "alu-imm%u sz%u", op, sz);
        break;
    }
    case 3: { /* INC DEC NOT NEG */
        unsigned op = rnd() % 4;
        PFX();
        if (op < 2) { b[n++] = sz == 1 ? 0xfe : 0xff; b[n++] = (uint8_t)(0xc0 | op << 3 | rm); }
        else { b[n++] = sz == 1 ? 0xf6 : 0xf7; b[n++] = (uint8_t)(0xc0 | op << 3 | rm); }
        snprintf(what, whatlen, "incdecnotneg%u sz%u", op, sz);
        break;
    }
    case 4: case 5: { /* shifts and rotates */
        unsigned op = rnd() % 8, form = rnd() % 3;
        if (op == 6) op = 4;
        if (rm == 1) rm = 0;
        PFX();
        unsigned cnt;
        if (form == 0) { b[n++] = sz == 1 ? 0xd0 : 0xd1; b[n++] = (uint8_t)(0xc0 | op << 3 | rm); cnt = 1; }
        else if (form == 1) { b[n++] = sz == 1 ? 0xc0 : 0xc1; b[n++] = (uint8_t)(0xc0 | op << 3 | rm); cnt = (unsigned)rnd() % 70; b[n++] = (uint8_t)cnt; }
        else { b[n++] = sz == 1 ? 0xd2 : 0xd3; b[n++] = (uint8_t)(0xc0 | op << 3 | rm); cnt = (unsigned)rnd() % 256; gi->force_cl = (int)cnt; }
        gi->family = op < 2 ? XF_ROTATE : op < 4 ? XF_ROTATE_C : op == 7 ? XF_SAR : XF_SHL_SHR;
        gi->ops.count = cnt & (sz == 8 ? 63 : 31);
        snprintf(what, whatlen, "shift%u form%u cnt%u sz%u", op, form, cnt, sz);
        break;
    }
    case 6: { /* MUL IMUL one operand */
        unsigned op = 4 + rnd() % 2;
        PFX();
        b[n++] = sz == 1 ? 0xf6 : 0xf7;
        b[n++] = (uint8_t)(0xc0 | op << 3 | (sz == 1 ? 3 : rm));
        gi->family = XF_MUL;
        snprintf(what, whatlen, "mul%u sz%u", op, sz);
        break;
    }
    case 7: { /* IMUL two / three operand */
        if (sz == 1) sz = 4;
        PFX();
        unsigned f = rnd() % 3;
        if (f == 0) { b[n++] = 0x0f; b[n++] = 0xaf; b[n++] = (uint8_t)(0xc0 | reg << 3 | rm); }
        else if (f == 1) { b[n++] = 0x6b; b[n++] = (uint8_t)(0xc0 | reg << 3 | rm); b[n++] = (uint8_t)rnd(); }
        else { b[n++] = 0x69; b[n++] = (uint8_t)(0xc0 | reg << 3 | rm); uint64_t v = rnd_val(); memcpy(b + n, &v, sz == 2 ? 2 : 4); n += sz == 2 ? 2 : 4; }
        gi->family = XF_MUL;
        snprintf(what, whatlen, "imul-form%u sz%u", f, sz);
        break;
    }
    case 8: { /* DIV IDIV by rbx/bl */
        unsigned op = 6 + rnd() % 2;
        PFX();
        b[n++] = sz == 1 ? 0xf6 : 0xf7;
        b[n++] = (uint8_t)(0xc0 | op << 3 | 3);
        gi->family = XF_DIV;
        gi->may_fault = true;
        snprintf(what, whatlen, "div%u sz%u", op, sz);
        break;
    }
    case 9: { /* BT BTS BTR BTC */
        if (sz == 1) sz = 4;
        PFX();
        unsigned op = rnd() % 4;
        if (rnd() & 1) { b[n++] = 0x0f; b[n++] = (uint8_t)(0xa3 + op * 8); b[n++] = (uint8_t)(0xc0 | reg << 3 | rm); }
        else { b[n++] = 0x0f; b[n++] = 0xba; b[n++] = (uint8_t)(0xc0 | (4 + op) << 3 | rm); b[n++] = (uint8_t)rnd(); }
        gi->family = XF_BT;
        snprintf(what, whatlen, "bt%u sz%u", op, sz);
        break;
    }
    case 10: { /* BSF BSR TZCNT LZCNT POPCNT */
        if (sz == 1) sz = 4;
        unsigned op = rnd() % 5;
        if (op >= 2) b[n++] = 0xf3;
        PFX();
        b[n++] = 0x0f;
        b[n++] = (uint8_t)(op == 0 || op == 2 ? 0xbc : op == 1 || op == 3 ? 0xbd : 0xb8);
        b[n++] = (uint8_t)(0xc0 | reg << 3 | rm);
        gi->family = op < 2 ? XF_BSF_BSR : op < 4 ? XF_TZ_LZCNT : -1;
        gi->scan_src = (int)rm;
        snprintf(what, whatlen, "bitscan%u sz%u", op, sz);
        break;
    }
    case 11: { /* SHLD SHRD */
        if (sz == 1) sz = 4;
        if (rm == 1) rm = 0;
        PFX();
        unsigned right = rnd() & 1, cnt;
        b[n++] = 0x0f;
        if (rnd() & 1) { b[n++] = right ? 0xac : 0xa4; b[n++] = (uint8_t)(0xc0 | reg << 3 | rm); cnt = (unsigned)rnd() % 64; b[n++] = (uint8_t)cnt; }
        else { b[n++] = right ? 0xad : 0xa5; b[n++] = (uint8_t)(0xc0 | reg << 3 | rm); cnt = (unsigned)rnd() % 256; gi->force_cl = (int)cnt; }
        gi->family = XF_SHXD;
        gi->ops.count = cnt & (sz == 8 ? 63 : 31);
        snprintf(what, whatlen, "shxd%u cnt%u sz%u", right, cnt, sz);
        break;
    }
    case 12: { /* CMOVcc SETcc */
        unsigned cc = rnd() % 16;
        if (rnd() & 1) {
            if (sz == 1) sz = 4;
            PFX();
            b[n++] = 0x0f; b[n++] = (uint8_t)(0x40 + cc); b[n++] = (uint8_t)(0xc0 | reg << 3 | rm);
        } else {
            b[n++] = 0x0f; b[n++] = (uint8_t)(0x90 + cc); b[n++] = (uint8_t)(0xc0 | (rm & 3));
        }
        snprintf(what, whatlen, "cc%u", cc);
        break;
    }
    case 13: { /* XADD CMPXCHG XCHG */
        unsigned op = rnd() % 3;
        if (sz == 1) { rm &= 3; reg &= 3; }
        PFX();
        if (op == 0) { b[n++] = 0x0f; b[n++] = sz == 1 ? 0xc0 : 0xc1; }
        else if (op == 1) { b[n++] = 0x0f; b[n++] = sz == 1 ? 0xb0 : 0xb1; }
        else b[n++] = sz == 1 ? 0x86 : 0x87;
        b[n++] = (uint8_t)(0xc0 | reg << 3 | rm);
        snprintf(what, whatlen, "xchg-family%u sz%u", op, sz);
        break;
    }
    case 14: { /* MOVZX MOVSX MOVSXD */
        if (sz == 1) sz = 4;
        unsigned op = rnd() % 5;
        PFX();
        if (op == 4) { b[n++] = 0x63; }
        else { b[n++] = 0x0f; b[n++] = (uint8_t)(0xb6 + (op & 1) + (op & 2 ? 8 : 0)); if (!(op & 1)) rm &= 3; }
        b[n++] = (uint8_t)(0xc0 | reg << 3 | rm);
        snprintf(what, whatlen, "movx%u sz%u", op, sz);
        break;
    }
    case 15: { /* CBW family, CWD family, BSWAP */
        if (sz == 1) sz = 4;
        unsigned op = rnd() % 3;
        PFX();
        if (op == 0) b[n++] = 0x98;
        else if (op == 1) b[n++] = 0x99;
        else { if (sz == 2) { n = 0; sz = 4; } if (sz == 8) n = 0, b[n++] = 0x48; b[n++] = 0x0f; b[n++] = (uint8_t)(0xc8 + rm); }
        snprintf(what, whatlen, "conv%u sz%u", op, sz);
        break;
    }
    case 16: { /* LAHF SAHF CLC STC CMC */
        static const uint8_t ops[5] = {0x9f, 0x9e, 0xf8, 0xf9, 0xf5};
        b[n++] = ops[rnd() % 5];
        snprintf(what, whatlen, "flagop %02x", b[0]);
        break;
    }
    case 17: { /* LEA with SIB */
        if (sz == 1) sz = 8;
        PFX();
        b[n++] = 0x8d;
        unsigned base = rnd_reg(), idx = rnd_reg();
        b[n++] = (uint8_t)(0x80 | reg << 3 | 4);
        b[n++] = (uint8_t)((rnd() % 4) << 6 | idx << 3 | base);
        uint32_t d = (uint32_t)rnd();
        memcpy(b + n, &d, 4);
        n += 4;
        snprintf(what, whatlen, "lea sz%u", sz);
        break;
    }
    case 18: { /* MOV imm forms incl. 64-bit */
        PFX();
        if (sz == 1) { b[n++] = (uint8_t)(0xb0 + rm % 8); b[n++] = (uint8_t)rnd(); }
        else { b[n++] = (uint8_t)(0xb8 + rm); uint64_t v = rnd(); memcpy(b + n, &v, sz); n += sz; }
        snprintf(what, whatlen, "movimm sz%u", sz);
        break;
    }
    case 19: { /* TEST */
        PFX();
        if (sz == 1) { rm &= 3; reg &= 3; }
        if (rnd() & 1) { b[n++] = sz == 1 ? 0x84 : 0x85; b[n++] = (uint8_t)(0xc0 | reg << 3 | rm); }
        else { b[n++] = sz == 1 ? 0xf6 : 0xf7; b[n++] = (uint8_t)(0xc0 | rm); uint64_t v = rnd_val(); memcpy(b + n, &v, sz == 1 ? 1 : sz == 2 ? 2 : 4); n += sz == 1 ? 1 : sz == 2 ? 2 : 4; }
        snprintf(what, whatlen, "test sz%u", sz);
        break;
    }
    case 20: { /* ADC/SBB with REX high registers and 8-bit SPL-style encodings */
        b[n++] = 0x40;
        b[n++] = (uint8_t)(rnd() & 1 ? 0x10 : 0x18);
        b[n++] = (uint8_t)(0xc0 | (reg & 3) << 3 | (rm & 3));
        snprintf(what, whatlen, "rex-byte adc/sbb");
        break;
    }
    default: { /* RCL/RCR by 1..9 */
        unsigned op = 2 + rnd() % 2;
        if (rm == 1) rm = 0;
        PFX();
        unsigned cnt = 1 + (unsigned)rnd() % 9;
        b[n++] = sz == 1 ? 0xc0 : 0xc1;
        b[n++] = (uint8_t)(0xc0 | op << 3 | rm);
        b[n++] = (uint8_t)cnt;

        snprintf(what, whatlen, "rcx%u cnt%u sz%u", op, cnt, sz);
        break;
    }
    }
#undef PFX
    gi->ops.size = sz;
    return n;
}

static bool div_faults(const uint8_t *b, unsigned len, const struct hregs *r)
{
    unsigned sz = 4, i = 0;
    if (b[0] == 0x66) sz = 2, i++;
    if (b[0] == 0x48) sz = 8, i++;
    if (b[i] == 0xf6) sz = 1;
    bool sgn = ((b[i + 1] >> 3) & 7) == 7;
    (void)len;
    uint64_t m = sz == 8 ? ~0ULL : (1ULL << (sz * 8)) - 1;
    uint64_t d = r->rbx & m;
    if (d == 0) return true;
    unsigned __int128 n;
    if (sz == 1) n = r->rax & 0xffff;
    else n = ((unsigned __int128)(r->rdx & m) << (sz * 8)) | (r->rax & m);
    if (!sgn) return (n / d) >> (sz * 8) != 0;
    unsigned bits = sz * 8;
    __int128 sn = (__int128)(n << (128 - 2 * bits)) >> (128 - 2 * bits);
    __int128 sd = (__int128)((unsigned __int128)d << (128 - bits)) >> (128 - bits);
    __int128 q = sn / sd;
    __int128 lim = (__int128)1 << (bits - 1);
    return q >= lim || q < -lim;
}

/* The reference the random cases are compared with: the host CPU. Where the manuals leave a
 * flag or result undefined, only the bits the emulator computes as AMD CPUs do are compared,
 * and only when the host is an AMD CPU (x86_undefined.h); EMU_TEST_REFERENCE=other masks
 * them on any host (what an Intel host does). */
static bool reference_is_amd(void)
{
    const char *env = getenv("EMU_TEST_REFERENCE");
    if (env) return !strcmp(env, "amd");
    return x86_host_vendor() == X86_VENDOR_AMD;
}

/* EMU_TEST_RECORD_AMD_VECTORS=FILE (on an AMD host) writes the cases whose vendor-specific
 * bits were compared, as rows of amd_undefined_vectors.h. */
static void record_vector(FILE *f, const uint8_t *code, unsigned len, const struct hregs *in, const struct hregs *out,
                          uint64_t flags_mask, const char *what)
{
    fprintf(f, "    {{");
    for (unsigned i = 0; i < len; i++) fprintf(f, "%s0x%02x", i ? ", " : "", code[i]);
    fprintf(f, "}, %u, {", len);
    for (int i = 0; i < 7; i++) fprintf(f, "%s%#llx", i ? ", " : "", (unsigned long long)(&in->rax)[i]);
    fprintf(f, "}, {");
    for (int i = 0; i < 7; i++) fprintf(f, "%s%#llx", i ? ", " : "", (unsigned long long)(&out->rax)[i] & (i == 6 ? flags_mask : ~0ULL));
    fprintf(f, "}, %#llx, \"%s\"},\n", (unsigned long long)flags_mask, what);
}

static void test_random_alu_vs_host(void **state)
{
    struct testbed *tb = *state;
    const char *env = getenv("EMU_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) * 2654435761u + 1;
    rng_state = seed ? seed : 1;
    bool amd = reference_is_amd();
    const char *record_path = getenv("EMU_TEST_RECORD_AMD_VECTORS");
    FILE *record = record_path ? fopen(record_path, "w") : NULL;
    print_message("emu exec random ALU seed: %llu (EMU_TEST_SEED to replay); host %s, vendor-specific bits %s\n",
                  (unsigned long long)seed, x86_vendor_name(x86_host_vendor()), amd ? "compared (AMD)" : "masked");
    unsigned cases = 20000, failures = 0, compared = 0, masked_cases = 0, skipped = 0;
    for (unsigned c = 0; c < cases; c++) {
        uint8_t code[32];
        struct gen_info gi;
        char what[64];
        unsigned len = gen(code, &gi, what, sizeof(what));
        struct hregs in = {rnd_val(), rnd_val(), rnd_val(), rnd_val(), rnd_val(), rnd_val(), 0};
        if (gi.force_cl >= 0) in.rcx = (in.rcx & ~0xffULL) | (unsigned)gi.force_cl;
        if (strstr(what, "div")) {
            if (rnd() % 4) in.rdx = rnd() % 3 == 0 ? (uint64_t)-(int64_t)(rnd() & 1) : in.rdx & 0xff;
            if (in.rbx == 0 && rnd() % 8) in.rbx = 7;
        }
        if (gi.scan_src >= 0) {
            if (rnd() % 8 == 0) (&in.rax)[hreg_index(gi.scan_src)] = rnd() & 1 ? 0 : 0xffffffff00000000ULL;
            uint64_t m = gi.ops.size == 8 ? ~0ULL : (1ULL << (gi.ops.size * 8)) - 1;
            gi.ops.src_zero = ((&in.rax)[hreg_index(gi.scan_src)] & m) == 0;
        }
        struct x86_undef u = gi.family >= 0 ? x86_undefined((enum x86_family)gi.family, &gi.ops) : (struct x86_undef){0};
        uint64_t mask = x86_defined_flags(&u, amd);
        if (!x86_result_defined(&u, amd) && !gi.may_fault) {
            skipped++;
            continue;
        }
        in.rflags = RFLAGS_FIXED | (rnd() & F_ALL);
        code[len] = 0xf4;
        tb_start(tb, code, len + 1, 0);
        for (int i = 0; i < 6; i++) tb->cpu.s.gpr[hreg_gpr[i]] = (&in.rax)[i];
        emu_set_rflags(&tb->cpu, in.rflags);
        if (gi.may_fault && div_faults(code, len, &in)) {
            emu_exec(&tb->cpu, 8);
            if (tb->exc_vector != EXC_DE) {
                print_error("case %u (%s): expected #DE, got vector %d\n", c, what, tb->exc_vector);
                failures++;
            }
            continue;
        }
        compared++;
        if (mask != F_ALL) masked_cases++;
        uint64_t ran = emu_exec(&tb->cpu, 1);
        struct hregs out = in;
        host_run(code, len, &out);
        bool bad = ran != 1 || tb->cpu.s.rip != GB_CODE + len;
        uint64_t ef = emu_get_rflags(&tb->cpu);
        if ((ef & mask) != (out.rflags & mask)) bad = true;
        if (record && (u.amd_flags || (u.result && u.amd_result)) && x86_host_vendor() == X86_VENDOR_AMD)
            record_vector(record, code, len, &in, &out, mask, what);
        for (int i = 0; i < 6; i++)
            if (tb->cpu.s.gpr[hreg_gpr[i]] != (&out.rax)[i]) bad = true;
        if (bad) {
            failures++;
            if (failures <= 10) {
                char hex[64] = {0};
                for (unsigned i = 0; i < len && i < 20; i++) snprintf(hex + 3 * i, 4, "%02x ", code[i]);
                print_error("case %u (%s) [%s]: ran %llu rip %+lld flags emu %#llx host %#llx (mask %#llx)\n", c, what, hex,
                            (unsigned long long)ran, (long long)(tb->cpu.s.rip - GB_CODE),
                            (unsigned long long)ef, (unsigned long long)out.rflags, (unsigned long long)mask);
                for (int i = 0; i < 6; i++)
                    print_error("  reg%d in %#llx emu %#llx host %#llx\n", hreg_gpr[i], (unsigned long long)(&in.rax)[i],
                                (unsigned long long)tb->cpu.s.gpr[hreg_gpr[i]], (unsigned long long)(&out.rax)[i]);
            }
        }
    }
    if (record) fclose(record);
    print_message("emu exec random ALU: %u cases compared with the host, %u of them with undefined bits masked, %u skipped "
                  "(undefined result)\n", compared, masked_cases, skipped);
    if (failures) print_error("%u of %u random cases differ from the host (seed %llu)\n", failures, cases, (unsigned long long)seed);
    assert_int_equal(failures, 0);
}

/* The vendor-specific bits against the vectors recorded on an AMD CPU: on every host, every
 * arithmetic flag and register compared (on an Intel host this is what checks them). */
static void test_amd_undefined_vectors(void **state)
{
    struct testbed *tb = *state;
    unsigned n = sizeof(amd_vectors) / sizeof(amd_vectors[0]), failures = 0;
    for (unsigned c = 0; c < n; c++) {
        const struct amd_vector *v = &amd_vectors[c];
        uint8_t code[17];
        memcpy(code, v->code, v->len);
        code[v->len] = 0xf4;
        tb_start(tb, code, v->len + 1u, 0);
        for (int i = 0; i < 6; i++) tb->cpu.s.gpr[hreg_gpr[i]] = v->in[i];
        emu_set_rflags(&tb->cpu, v->in[6]);
        uint64_t ran = emu_exec(&tb->cpu, 1);
        uint64_t ef = emu_get_rflags(&tb->cpu) & v->flags_mask;
        bool bad = ran != 1 || ef != v->out[6];
        for (int i = 0; i < 6; i++)
            if (tb->cpu.s.gpr[hreg_gpr[i]] != v->out[i]) bad = true;
        if (bad && ++failures <= 10)
            print_error("AMD vector %u (%s): flags emu %#llx AMD %#llx (mask %#llx)\n", c, v->what, (unsigned long long)ef,
                        (unsigned long long)v->out[6], (unsigned long long)v->flags_mask);
    }
    print_message("emu exec: %u vectors recorded on an AMD CPU, %u differ\n", n, failures);
    assert_true(n > 300);
    assert_int_equal(failures, 0);
}

/* ---- programs ------------------------------------------------------------------------- */

static void test_loop_sum(void **state)
{
    struct testbed *tb = *state;
    /* xor eax,eax; mov ecx,1000; L: add rax,rcx; dec rcx; jnz L; hlt */
    const uint8_t code[] = {0x31, 0xc0, 0xb9, 0xe8, 0x03, 0, 0, 0x48, 0x01, 0xc8, 0x48, 0xff, 0xc9, 0x75, 0xf8, 0xf4};
    uint64_t n = run0(tb, code, sizeof(code), 100000);
    assert_true(tb->cpu.s.halted);
    assert_int_equal(tb->cpu.s.gpr[GPR_RAX], 500500);
    assert_int_equal(tb->cpu.s.gpr[GPR_RCX], 0);
    assert_int_equal(n, 2 + 3 * 1000 + 1);
}

static void test_call_ret_push_pop(void **state)
{
    struct testbed *tb = *state;
    /* mov rbx,5; call f; push rax; pop rdx; hlt; f: lea rax,[rbx*4+rbx]; push rbx; pop rcx; ret */
    const uint8_t code[] = {0x48, 0xc7, 0xc3, 5, 0, 0, 0, 0xe8, 0x03, 0, 0, 0, 0x50, 0x5a, 0xf4,
                            0x48, 0x8d, 0x04, 0x9b, 0x53, 0x59, 0xc3};
    uint64_t sp0;
    tb_start(tb, code, sizeof(code), 0);
    sp0 = tb->cpu.s.gpr[GPR_RSP];
    run0(tb, code, sizeof(code), 100);
    assert_true(tb->cpu.s.halted);
    assert_int_equal(tb->cpu.s.gpr[GPR_RAX], 25);
    assert_int_equal(tb->cpu.s.gpr[GPR_RDX], 25);
    assert_int_equal(tb->cpu.s.gpr[GPR_RCX], 5);
    assert_int_equal(tb->cpu.s.gpr[GPR_RSP], sp0);
    assert_int_equal(rd64(tb, sp0 - 8), 25); /* PUSH RAX reused the return address slot */
    assert_int_equal(rd64(tb, sp0 - 16), 5);
}

static void test_memory_operands(void **state)
{
    struct testbed *tb = *state;
    /* mov rdi, GB_DATA; mov qword [rdi+8], 0x11; add qword [rdi+8], 0x22; lock inc dword [rdi+8];
     * mov rax, [rip+data]; mov rsi,2; mov [rdi+rsi*8+16], rax; hlt; data: dq 0x1122334455667788 */
    uint8_t code[] = {0x48, 0xc7, 0xc7, 0, 0, 0, 0,  0x48, 0xc7, 0x47, 0x08, 0x11, 0, 0, 0,
                      0x48, 0x83, 0x47, 0x08, 0x22,  0xf0, 0xff, 0x47, 0x08,
                      0x48, 0x8b, 0x05, 0x0d, 0, 0, 0, 0x48, 0xc7, 0xc6, 2, 0, 0, 0,
                      0x48, 0x89, 0x44, 0xf7, 0x10, 0xf4,
                      0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
    uint32_t data = (uint32_t)GB_DATA;
    memcpy(code + 3, &data, 4);
    run0(tb, code, sizeof(code), 100);
    assert_true(tb->cpu.s.halted);
    assert_int_equal(rd64(tb, GB_DATA + 8), 0x34);
    assert_int_equal(tb->cpu.s.gpr[GPR_RAX], 0x1122334455667788ULL);
    assert_int_equal(rd64(tb, GB_DATA + 32), 0x1122334455667788ULL);
}

static void test_string_ops(void **state)
{
    struct testbed *tb = *state;
    uint8_t *src = tb_ram(tb, GB_DATA, 0x4000);
    for (int i = 0; i < 0x3000; i++) src[i] = (uint8_t)(i * 7);
    /* mov rsi,GB_DATA; mov rdi,GB_DATA+0x8000; mov ecx,0x2ff1; cld; rep movsb;
     * mov rdi,GB_DATA+0x10000; mov eax,0xab; mov ecx,100; rep stosq;
     * mov rsi,GB_DATA; mov rdi,GB_DATA+0x8000; mov ecx,0x2ff1; repe cmpsb; hlt */
    uint8_t code[] = {0x48, 0xc7, 0xc6, 0, 0, 0, 0, 0x48, 0xc7, 0xc7, 0, 0, 0, 0, 0xb9, 0xf1, 0x2f, 0, 0, 0xfc, 0xf3, 0xa4,
                      0x48, 0xc7, 0xc7, 0, 0, 0, 0, 0xb8, 0xab, 0, 0, 0, 0xb9, 100, 0, 0, 0, 0xf3, 0x48, 0xab,
                      0x48, 0xc7, 0xc6, 0, 0, 0, 0, 0x48, 0xc7, 0xc7, 0, 0, 0, 0, 0xb9, 0xf1, 0x2f, 0, 0, 0xf3, 0xa6, 0xf4};
    uint32_t a = (uint32_t)GB_DATA, b = (uint32_t)GB_DATA + 0x8000, c = (uint32_t)GB_DATA + 0x10000;
    memcpy(code + 3, &a, 4);
    memcpy(code + 10, &b, 4);
    memcpy(code + 25, &c, 4);
    memcpy(code + 45, &a, 4);
    memcpy(code + 52, &b, 4);
    run0(tb, code, sizeof(code), 10000); /* REP chunks are charged ~1024 instructions each */
    assert_true(tb->cpu.s.halted);
    assert_memory_equal(tb_ram(tb, GB_DATA + 0x8000, 0x2ff1), src, 0x2ff1);
    assert_int_equal(rd64(tb, GB_DATA + 0x10000 + 99 * 8), 0xab);
    assert_int_equal(rd64(tb, GB_DATA + 0x10000 + 100 * 8), 0);
    assert_int_equal(tb->cpu.s.gpr[GPR_RCX], 0);
    assert_int_equal(tb->cpu.s.gpr[GPR_RSI], GB_DATA + 0x2ff1);
    assert_true(emu_get_rflags(&tb->cpu) & RFLAGS_ZF);
}

static void test_overlapping_movsb_forward(void **state)
{
    struct testbed *tb = *state;
    uint8_t *p = tb_ram(tb, GB_DATA, 64);
    for (int i = 0; i < 64; i++) p[i] = (uint8_t)i;
    /* rep movsb from GB_DATA to GB_DATA+1, 10 bytes: replicates byte 0 */
    uint8_t code[] = {0x48, 0xc7, 0xc6, 0, 0, 0, 0, 0x48, 0xc7, 0xc7, 0, 0, 0, 0, 0xb9, 10, 0, 0, 0, 0xf3, 0xa4, 0xf4};
    uint32_t a = (uint32_t)GB_DATA, b = (uint32_t)GB_DATA + 1;
    memcpy(code + 3, &a, 4);
    memcpy(code + 10, &b, 4);
    run0(tb, code, sizeof(code), 100);
    for (int i = 0; i <= 10; i++) assert_int_equal(p[i], 0);
    assert_int_equal(p[11], 11);
}

/* LODS with and without REP: the element count, RSI, RCX and the last element loaded; with
 * RCX 0 nothing is read. */
static void test_lods(void **state)
{
    struct testbed *tb = *state;
    uint8_t *p = tb_ram(tb, GB_DATA, 64);
    for (int i = 0; i < 64; i++) p[i] = (uint8_t)(0x40 + i);
    /* mov rsi,GB_DATA; mov ecx,5; rep lodsb; mov ebx,eax; mov ecx,7; lodsw; mov edx,ecx;
     * xor ecx,ecx; rep lodsq; hlt */
    uint8_t code[] = {0x48, 0xc7, 0xc6, 0,    0,    0,    0,    0xb9, 5,    0,    0,    0, 0xf3, 0xac,
                      0x89, 0xc3, 0xb9, 7,    0,    0,    0,    0x66, 0xad, 0x89, 0xca, 0x31, 0xc9, 0xf3,
                      0x48, 0xad, 0xf4};
    uint32_t a = (uint32_t)GB_DATA;
    memcpy(code + 3, &a, 4);
    run0(tb, code, sizeof(code), 100);
    assert_int_equal(tb->cpu.s.gpr[GPR_RBX] & 0xff, 0x44); /* the fifth byte */
    assert_int_equal(tb->cpu.s.gpr[GPR_RDX], 7);           /* LODSW without REP leaves RCX */
    assert_int_equal(tb->cpu.s.gpr[GPR_RAX] & 0xffff, 0x4645); /* bytes 5 and 6 */
    assert_int_equal(tb->cpu.s.gpr[GPR_RSI], GB_DATA + 7); /* REP with RCX 0 read nothing */
    assert_int_equal(tb->cpu.s.gpr[GPR_RCX], 0);
}

static int run_for_exception(struct testbed *tb, const uint8_t *code, size_t len, unsigned cpl)
{
    tb_start(tb, code, len, cpl);
    for (int i = 0; i < 50 && tb->exc_vector < 0; i++) emu_exec(&tb->cpu, 10);
    return tb->exc_vector;
}

static void test_exceptions(void **state)
{
    struct testbed *tb = *state;
    const uint8_t ud2[] = {0x0f, 0x0b};
    assert_int_equal(run_for_exception(tb, ud2, sizeof(ud2), 0), EXC_UD);
    const uint8_t vex[] = {0xc5, 0xf8, 0x77};
    assert_int_equal(run_for_exception(tb, vex, sizeof(vex), 0), EXC_UD);
    const uint8_t lock_reg[] = {0xf0, 0x01, 0xc0};
    assert_int_equal(run_for_exception(tb, lock_reg, sizeof(lock_reg), 0), EXC_UD);
    const uint8_t lock_mov[] = {0xf0, 0x89, 0x07};
    assert_int_equal(run_for_exception(tb, lock_mov, sizeof(lock_mov), 0), EXC_UD);
    uint8_t too_long[16];
    memset(too_long, 0x66, 15);
    too_long[15] = 0x90;
    assert_int_equal(run_for_exception(tb, too_long, 16, 0), EXC_GP);
    const uint8_t div0[] = {0x31, 0xc9, 0xf7, 0xf1}; /* xor ecx,ecx; div ecx */
    assert_int_equal(run_for_exception(tb, div0, sizeof(div0), 0), EXC_DE);
    /* the frame's RIP is the faulting DIV */
    assert_int_equal(rd64(tb, tb->cpu.s.gpr[GPR_RSP] + 16), GB_CODE + 2);
    /* mov rax, 0x8000000000000000; mov rbx,[rax] -> #GP(0) */
    const uint8_t noncanon[] = {0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x48, 0x8b, 0x18};
    assert_int_equal(run_for_exception(tb, noncanon, sizeof(noncanon), 0), EXC_GP);
    /* HLT at CPL3 -> #GP */
    const uint8_t hlt[] = {0xf4};
    assert_int_equal(run_for_exception(tb, hlt, sizeof(hlt), 3), EXC_GP);
    /* #PF: read from 0x200000000 (not mapped: the identity map covers 4 GiB) at CPL3 */
    const uint8_t pf[] = {0x48, 0xb8, 0, 0, 0, 0, 2, 0, 0, 0, 0x48, 0x8b, 0x00};
    assert_int_equal(run_for_exception(tb, pf, sizeof(pf), 3), EXC_PF);
    assert_int_equal(tb->cpu.s.cr2, 0x200000000ULL);
    assert_int_equal(rd64(tb, GB_FRAME_ERROR), PFEC_U);
    assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE + 10);
}

static void test_self_modifying_code(void **state)
{
    struct testbed *tb = *state;
    /* L: mov eax, 1; mov byte [rip+L+1 - next], 2 ... executed twice:
     *   mov eax,1 (b8 01 00 00 00) ; mov byte [rip-11], 2 (c6 05 f5 ff ff ff 02); inc ebx; cmp ebx,2; jne L; hlt */
    const uint8_t code[] = {0xb8, 1, 0, 0, 0, 0xc6, 0x05, 0xf5, 0xff, 0xff, 0xff, 0x02, 0xff, 0xc3,
                            0x83, 0xfb, 0x02, 0x75, 0xed, 0xf4};
    run0(tb, code, sizeof(code), 100);
    assert_true(tb->cpu.s.halted);
    assert_int_equal(tb->cpu.s.gpr[GPR_RBX], 2);
    assert_int_equal(tb->cpu.s.gpr[GPR_RAX], 2); /* the second pass ran the modified immediate */
}

static void test_same_block_store_then_execute(void **state)
{
    struct testbed *tb = *state;
    /* mov byte [rip+1], 0x90 overwrites the following INT3 (cc) with a NOP inside one block:
     * c6 05 00 00 00 00 90 ; cc ; mov eax, 7 ; hlt */
    const uint8_t code[] = {0xc6, 0x05, 0x00, 0x00, 0x00, 0x00, 0x90, 0xcc, 0xb8, 7, 0, 0, 0, 0xf4};
    run0(tb, code, sizeof(code), 100);
    assert_true(tb->cpu.s.halted);
    assert_int_equal(tb->exc_vector, -1);
    assert_int_equal(tb->cpu.s.gpr[GPR_RAX], 7);
}

static void test_cpl3_and_budget(void **state)
{
    struct testbed *tb = *state;
    /* xor eax,eax; L: inc eax; jmp L */
    const uint8_t code[] = {0x31, 0xc0, 0xff, 0xc0, 0xeb, 0xfc};
    tb_start(tb, code, sizeof(code), 3);
    assert_int_equal(tb->cpu.cpl, 3);
    assert_int_equal(emu_exec(&tb->cpu, 1), 1);
    assert_int_equal(tb->cpu.s.rip, GB_CODE + 2);
    assert_int_equal(emu_exec(&tb->cpu, 7), 7); /* inc jmp inc jmp inc jmp inc */
    assert_int_equal(tb->cpu.s.gpr[GPR_RAX], 4);
    assert_int_equal(tb->cpu.s.rip, GB_CODE + 4);
    assert_int_equal(emu_exec(&tb->cpu, 1001), 1001);
    assert_int_equal(tb->cpu.s.gpr[GPR_RAX], 4 + 500);
    assert_int_equal(tb->cpu.s.rip, GB_CODE + 2);
}

static void test_page_crossing_instruction(void **state)
{
    struct testbed *tb = *state;
    /* put "mov rax, imm64; hlt" so that it straddles GB_CODE+0x1000 */
    uint8_t code[0x1010];
    memset(code, 0x90, sizeof(code));
    const uint8_t tail[] = {0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 0xf4};
    memcpy(code + 0xffc, tail, sizeof(tail));
    run0(tb, code, sizeof(code), 10000);
    assert_true(tb->cpu.s.halted);
    assert_int_equal(tb->cpu.s.gpr[GPR_RAX], 0x0807060504030201ULL);
}

static void test_pushf_popf_cpl3(void **state)
{
    struct testbed *tb = *state;
    /* pushfq; or qword [rsp], 0x3200 (IF|IOPL3 attempt... ) ; popfq; pushfq; pop rax */
    const uint8_t code[] = {0x9c, 0x48, 0x81, 0x0c, 0x24, 0x01, 0x32, 0, 0, 0x9d, 0x9c, 0x58};
    tb_start(tb, code, sizeof(code), 3);
    tb->cpu.s.rflags &= ~(3ULL << 12); /* IOPL 0: CPL3 may not change IF or IOPL */
    emu_exec(&tb->cpu, 5);
    assert_int_equal(tb->cpu.s.gpr[GPR_RAX] & 0x3201, 0x1); /* CF set, IF and IOPL unchanged */
}

static void test_enter_leave_cmpxchg16b(void **state)
{
    struct testbed *tb = *state;
    /* enter 0x20,0; mov rbp->rcx; leave; mov rdi,GB_DATA; cmpxchg16b [rdi]; hlt */
    uint8_t code[] = {0xc8, 0x20, 0, 0, 0x48, 0x89, 0xe9, 0xc9, 0x48, 0xc7, 0xc7, 0, 0, 0, 0, 0x48, 0x0f, 0xc7, 0x0f, 0xf4};
    uint32_t a = (uint32_t)GB_DATA;
    memcpy(code + 11, &a, 4);
    uint64_t *d = tb_ram(tb, GB_DATA, 16);
    d[0] = 5;
    d[1] = 6;
    tb_start(tb, code, sizeof(code), 0);
    uint64_t sp0 = tb->cpu.s.gpr[GPR_RSP];
    tb->cpu.s.gpr[GPR_RAX] = 5;
    tb->cpu.s.gpr[GPR_RDX] = 6;
    tb->cpu.s.gpr[GPR_RBX] = 7;
    tb->cpu.s.gpr[GPR_RCX] = 8;
    for (int i = 0; i < 5 && !tb->cpu.s.halted; i++) emu_exec(&tb->cpu, 100);
    assert_true(tb->cpu.s.halted);
    assert_int_equal(tb->cpu.s.gpr[GPR_RSP], sp0);
    assert_int_equal(d[0], 7);
    assert_int_equal(d[1], sp0 - 8); /* RCX held the frame pointer (rbp after ENTER) */
}

static void test_rep_chunks_resume(void **state)
{
    struct testbed *tb = *state;
    /* std; rep stosb backwards over 10000 bytes (element path, several chunks); cld; hlt */
    uint8_t code[] = {0x48, 0xc7, 0xc7, 0, 0, 0, 0, 0xb8, 0x5a, 0, 0, 0, 0xb9, 0x10, 0x27, 0, 0, 0xfd, 0xf3, 0xaa, 0xfc, 0xf4};
    uint32_t top = (uint32_t)GB_DATA + 10000 - 1;
    memcpy(code + 3, &top, 4);
    tb_start(tb, code, sizeof(code), 0);
    uint64_t calls = 0, n = 0;
    while (!tb->cpu.s.halted && calls < 100) {
        n += emu_exec(&tb->cpu, 2); /* tiny budgets: every chunk boundary is also an exit */
        calls++;
    }
    assert_true(tb->cpu.s.halted);
    assert_true(n > 6); /* the REP ran as more than one execution (chunked) */
    uint8_t *p = tb_ram(tb, GB_DATA, 10001);
    for (int i = 0; i < 10000; i++) assert_int_equal(p[i], 0x5a);
    assert_int_equal(p[10000], 0);
    assert_int_equal(tb->cpu.s.gpr[GPR_RCX], 0);
    assert_int_equal(tb->cpu.s.gpr[GPR_RDI], GB_DATA - 1);
}

/* A REP chunk is charged to the budget (~REP_CHUNK/4 instructions), so a budget of N
 * instructions cannot mean N chunks: emu_exec returns to the vCPU's run loop (timers, stop
 * requests) in bounded time. Found by fuzz_decode: rep movsb of 88M bytes took 23 s in one call. */
static void test_rep_charges_budget(void **state)
{
    struct testbed *tb = *state;
    /* std; rep stosb backwards over 0x18000 bytes (element path: 4096 per chunk); cld; hlt */
    uint8_t code[] = {0x48, 0xc7, 0xc7, 0, 0, 0, 0, 0xb8, 0x5a, 0, 0, 0, 0xb9, 0, 0x80, 1, 0, 0xfd, 0xf3, 0xaa, 0xfc, 0xf4};
    uint32_t top = (uint32_t)GB_DATA + 0x18000 - 1;
    memcpy(code + 3, &top, 4);
    tb_start(tb, code, sizeof(code), 0);
    uint64_t done = emu_exec(&tb->cpu, 1000);
    assert_false(tb->cpu.s.halted);
    /* one or two chunks, not the whole count (which needs 24 chunks) */
    assert_true(tb->cpu.s.gpr[GPR_RCX] >= 0x18000 - 2 * 4096);
    assert_true(tb->cpu.s.gpr[GPR_RCX] < 0x18000);
    assert_true(done >= 1000);
    uint64_t calls = 1;
    while (!tb->cpu.s.halted && calls < 200) {
        emu_exec(&tb->cpu, 1000);
        calls++;
    }
    assert_true(tb->cpu.s.halted);
    assert_int_equal(tb->cpu.s.gpr[GPR_RCX], 0);
    assert_true(calls >= 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_random_alu_vs_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_amd_undefined_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rep_charges_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_sum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_ret_push_pop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_operands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_string_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lods, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlapping_movsb_forward, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exceptions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_modifying_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_block_store_then_execute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cpl3_and_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_page_crossing_instruction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pushf_popf_cpl3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enter_leave_cmpxchg16b, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rep_chunks_resume, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
