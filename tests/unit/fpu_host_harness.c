/* fpu_host_harness: native-vs-emulated execution of single x87/MMX/SSE instructions for the
 * fpu differential tests (see fpu_host_harness.h). */
#include "tests/unit/fpu_host_harness.h"

#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

/* The executable scratch page and the fault-recovery state of the native run. Test-only
 * globals: the harness runs one instruction at a time on the test's thread. */
static uint8_t *code_page;
static sigjmp_buf host_jmp;
static volatile sig_atomic_t host_sig;
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

/* The SSE state at a #XM (SIGFPE), from the signal frame: MXCSR flags and XMM registers. */
static struct cpu_fxsave fault_fx;

static void host_fault(int sig, siginfo_t *si, void *uc)
{
    (void)si;
    host_sig = sig;
    if (sig == SIGFPE) {
        const ucontext_t *u = uc;
        memcpy(&fault_fx, u->uc_mcontext.fpregs, sizeof(fault_fx));
    }
    siglongjmp(host_jmp, 1);
}

int harness_init(void)
{
    if (code_page) return 0;
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -1;
    code_page = p;
    return 0;
}

void harness_seed(uint64_t seed) { rng_state = seed ? seed : 1; }

uint64_t harness_rand(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static uint32_t rand_f32(void)
{
    static const uint32_t special[] = {
        0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001,
        0x7FA00000, 0x00000001, 0x807FFFFF, 0x00400000, 0x7F7FFFFF, 0xFF7FFFFF, 0x00800000,
        0x3F800000, 0xBF800000, 0x4F000000, 0xCF000000, 0x5F000000, 0xDF000000, 0x3F000000,
        0x4B000000, 0x7FFFFFFF, 0x80000001, 0x3FC00000, 0x40490FDB,
    };
    uint64_t r = harness_rand();
    switch (r & 3) {
    case 0: return special[(r >> 8) % (sizeof(special) / sizeof(special[0]))];
    case 1: { /* "nice" numbers: small exponent range so sums/products are interesting */
        uint32_t e = 100 + (uint32_t)((r >> 8) % 56);
        return (uint32_t)((r >> 32) & 0x807FFFFF) | (e << 23);
    }
    default: return (uint32_t)(r >> 16);
    }
}

static uint64_t rand_f64(void)
{
    static const uint64_t special[] = {
        0, 0x8000000000000000ull, 0x7FF0000000000000ull, 0xFFF0000000000000ull,
        0x7FF8000000000000ull, 0xFFF8000000000000ull, 0x7FF0000000000001ull, 0x7FF4000000000000ull,
        1, 0x800FFFFFFFFFFFFFull, 0x7FEFFFFFFFFFFFFFull, 0x0010000000000000ull,
        0x3FF0000000000000ull, 0xBFF0000000000000ull, 0x41DFFFFFFFC00000ull, 0xC1E0000000000000ull,
        0x41E0000000000000ull, 0x43E0000000000000ull, 0xC3E0000000000000ull, 0x3FE0000000000000ull,
        0x4330000000000000ull, 0x47EFFFFFE0000000ull, 0x3690000000000000ull, 0x400921FB54442D18ull,
    };
    uint64_t r = harness_rand();
    switch (r & 3) {
    case 0: return special[(r >> 8) % (sizeof(special) / sizeof(special[0]))];
    case 1: {
        uint64_t e = 900 + (r >> 8) % 250;
        return (harness_rand() & 0x800FFFFFFFFFFFFFull) | (e << 52);
    }
    default: return harness_rand();
    }
}

void harness_rand_xmm(uint8_t out[16])
{
    uint64_t r = harness_rand();
    if ((r & 3) == 0) {
        for (int i = 0; i < 2; i++) {
            uint64_t v = harness_rand();
            memcpy(out + 8 * i, &v, 8);
        }
    } else if ((r & 3) == 1) {
        for (int i = 0; i < 2; i++) {
            uint64_t v = rand_f64();
            memcpy(out + 8 * i, &v, 8);
        }
    } else if ((r & 3) == 2) {
        for (int i = 0; i < 4; i++) {
            uint32_t v = rand_f32();
            memcpy(out + 4 * i, &v, 4);
        }
    } else { /* small integers / boundary words */
        static const uint16_t w[] = {0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x100, 0xFF80};
        for (int i = 0; i < 8; i++) {
            uint16_t v = (harness_rand() & 1) ? w[harness_rand() % 10] : (uint16_t)harness_rand();
            memcpy(out + 2 * i, &v, 2);
        }
    }
}

void harness_rand_f80(uint8_t out[10])
{
    uint64_t r = harness_rand();
    uint64_t mant = harness_rand();
    uint16_t se;
    switch (r % 10) {
    case 0: se = 0; mant = 0; break;                                         /* +-0 */
    case 1: se = 0x7FFF; mant = 0x8000000000000000ull; break;                /* Inf */
    case 2: se = 0x7FFF; mant |= 0xC000000000000000ull; break;               /* QNaN */
    case 3: se = 0x7FFF; mant = (mant | 1) & 0xBFFFFFFFFFFFFFFFull; mant |= 1ull << 63; break; /* SNaN */
    case 4: se = 0; mant &= 0x7FFFFFFFFFFFFFFFull; break;                     /* denormal */
    case 5: se = (uint16_t)(16383 + (int)(r >> 32) % 64 - 32); mant = 1ull << 63; break; /* powers of 2 */
    case 6: se = (uint16_t)(16383 + (int)((r >> 32) % 130) - 65); mant = (mant >> 11 << 11) | (1ull << 63); break;
    case 7: se = (uint16_t)(16383 + 62); mant |= 1ull << 63; break;         /* near int64 limits */
    default: se = (uint16_t)(16383 + (int)((r >> 32) % 200) - 100); mant |= 1ull << 63; break;
    }
    if (r & (1ull << 20)) se |= 0x8000;
    memcpy(out, &mant, 8);
    memcpy(out + 8, &se, 2);
}

void harness_rand_state(struct harness_state *st)
{
    memset(st, 0, sizeof(*st));
    for (int i = 0; i < 16; i++) harness_rand_xmm(st->fx.xmm[i]);
    for (int i = 0; i < 8; i++) harness_rand_f80(st->fx.st[i]);
    uint64_t r = harness_rand();
    st->fx.fcw = (uint16_t)(0x3F | (((r >> 0) & 3) << 8) | (((r >> 2) & 3) << 10) | 0x40);
    if (((r >> 4) & 3) == 1) st->fx.fcw = (uint16_t)((st->fx.fcw & ~0x300u) | 0x300u);
    /* TOP, C0-C3 and (masked, so no ES) exception flags */
    st->fx.fsw = (uint16_t)((((r >> 8) & 7) << 11) | ((r >> 11) & 0x4700) | ((r >> 16) & 0x3F));
    st->fx.ftw = (uint8_t)(r >> 24);
    if (((r >> 32) & 3) == 0) st->fx.ftw = 0xFF;
    st->fx.mxcsr = 0x1F80 | (uint32_t)((r >> 40) & 0x3F) | (uint32_t)(((r >> 46) & 3) << 13) |
                   (uint32_t)(((r >> 48) & 1) << 15) | (uint32_t)(((r >> 49) & 1) << 6);
    st->fx.mxcsr_mask = 0xFFFF;
    for (int i = 0; i < 16; i++) st->gpr[i] = harness_rand();
    if (harness_rand() & 1) st->gpr[0] = rand_f64() >> (harness_rand() % 64);
    st->rflags = 0x202 | (harness_rand() & 0x8D5);
    for (unsigned i = 0; i < HARNESS_MEM; i += 16) harness_rand_xmm(st->mem + i);
}

static unsigned encode(uint8_t *b, const struct harness_insn *in)
{
    unsigned n = 0;
    if (in->prefix) b[n++] = in->prefix;
    if (in->rex) b[n++] = in->rex;
    if (in->map != FPU_MAP_X87) {
        b[n++] = 0x0F;
        if (in->map == FPU_MAP_0F38) b[n++] = 0x38;
        if (in->map == FPU_MAP_0F3A) b[n++] = 0x3A;
    }
    b[n++] = in->opcode;
    if (!in->no_modrm) b[n++] = in->modrm;
    if (in->has_imm) b[n++] = in->imm8;
    return n;
}

void harness_run_host(struct harness_state *st, const struct harness_insn *in, enum harness_outcome *out)
{
    unsigned n = encode(code_page, in);
    code_page[n] = 0xC3; /* ret */
    __builtin___clear_cache((char *)code_page, (char *)code_page + n + 1);

    struct sigaction sa, old_ill, old_segv, old_fpe, old_bus;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = host_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGILL, &sa, &old_ill);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGFPE, &sa, &old_fpe);
    sigaction(SIGBUS, &sa, &old_bus);

    static struct cpu_fxsave host_save; /* host FP state around the native run */
    static struct cpu_fxsave img;
    img = st->fx;
    uint64_t a = st->gpr[GPR_RAX], c = st->gpr[GPR_RCX], d = st->gpr[GPR_RDX];
    uint64_t f = st->rflags;
    uint64_t rsi = (uint64_t)(uintptr_t)(st->mem + in->mem_off);
    uint64_t rdi = (uint64_t)(uintptr_t)(st->mem + in->rdi_off);
    void *code = code_page;
    host_sig = 0;
    if (sigsetjmp(host_jmp, 1) == 0) {
        __asm__ volatile("fxsave64 (%[save])\n\t"
                         "fxrstor64 (%[img])\n\t"
                         "sub $256, %%rsp\n\t"
                         "push %[f]\n\t"
                         "popfq\n\t"
                         "call *%[code]\n\t"
                         "pushfq\n\t"
                         "pop %[f]\n\t"
                         "add $256, %%rsp\n\t"
                         "fxsave64 (%[img])\n\t"
                         "fxrstor64 (%[save])\n\t"
                         : "+a"(a), "+c"(c), "+d"(d), [f] "+r"(f)
                         : "S"(rsi), "D"(rdi), [code] "r"(code), [save] "r"(&host_save), [img] "r"(&img)
                         : "memory", "cc");
        *out = OUT_OK;
        st->fx.fcw = img.fcw;
        st->fx.fsw = img.fsw;
        st->fx.ftw = img.ftw;
        st->fx.mxcsr = img.mxcsr;
        memcpy(st->fx.st, img.st, sizeof(img.st));
        memcpy(st->fx.xmm, img.xmm, sizeof(img.xmm));
        st->gpr[GPR_RAX] = a;
        st->gpr[GPR_RCX] = c;
        st->gpr[GPR_RDX] = d;
        st->rflags = f;
    } else {
        /* The kernel gave the signal handler a fresh FP state; restore the host's. */
        __asm__ volatile("fxrstor64 (%0)" : : "r"(&host_save) : "memory");
        *out = host_sig == SIGILL ? OUT_UD : (host_sig == SIGSEGV || host_sig == SIGBUS) ? OUT_GP
             : host_sig == SIGFPE ? OUT_XM : OUT_OTHER;
        if (host_sig == SIGFPE) { /* the faulting instruction did not complete: report its state */
            st->fx.mxcsr = fault_fx.mxcsr;
            memcpy(st->fx.xmm, fault_fx.xmm, sizeof(fault_fx.xmm));
        }
    }
    sigaction(SIGILL, &old_ill, NULL);
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGFPE, &old_fpe, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
}

struct emu_ctx {
    struct harness_state *st;
};

static uint8_t *emu_ptr(struct emu_ctx *c, uint64_t la, unsigned len)
{
    uintptr_t base = (uintptr_t)c->st->mem;
    if (la < base || la + len > base + HARNESS_MEM) {
        fprintf(stderr, "fpu harness: access outside the test buffer (la %#llx len %u)\n",
                (unsigned long long)la, len);
        abort();
    }
    return (uint8_t *)(uintptr_t)la;
}

static void emu_read(void *ctx, uint64_t la, void *buf, unsigned len) { memcpy(buf, emu_ptr(ctx, la, len), len); }
static void emu_write(void *ctx, uint64_t la, const void *buf, unsigned len) { memcpy(emu_ptr(ctx, la, len), buf, len); }

enum fpu_result harness_run_emu(struct harness_state *st, const struct harness_insn *in, uint64_t cr0, uint64_t cr4)
{
    struct emu_ctx c = {st};
    bool written = false;
    st->gpr[GPR_RSI] = (uint64_t)(uintptr_t)(st->mem + in->mem_off);
    st->gpr[GPR_RDI] = (uint64_t)(uintptr_t)(st->mem + in->rdi_off);
    struct fpu_env env = {
        .fx = &st->fx, .gpr = st->gpr, .cr0 = cr0, .cr4 = cr4, .ctx = &c,
        .read = emu_read, .write = emu_write, .rflags = &st->rflags, .rflags_written = &written,
    };
    struct fpu_op op = {
        .map = in->map, .opcode = in->opcode, .mandatory = in->prefix, .modrm = in->modrm,
        .rex = in->rex, .imm8 = in->imm8, .has_mem = in->mem,
        .ea = (uint64_t)(uintptr_t)(st->mem + in->mem_off), .long64 = true, .rip = in->rip,
    };
    uint64_t rflags_before = st->rflags;
    enum fpu_result r = fpu_sse_exec(&op, &env);
    if (!fpu_op_uses_rflags(&op) && (written || st->rflags != rflags_before)) {
        fprintf(stderr, "fpu harness: map %u opcode %02x modrm %02x changed RFLAGS but fpu_op_uses_rflags() is false\n",
                op.map, op.opcode, op.modrm);
        abort();
    }
    return r;
}

enum harness_outcome harness_outcome_of(enum fpu_result r)
{
    switch (r) {
    case FPU_OK: return OUT_OK;
    case FPU_UD: return OUT_UD;
    case FPU_GP: return OUT_GP;
    case FPU_NM: return OUT_NM;
    case FPU_MF: return OUT_MF;
    case FPU_XM: return OUT_XM;
    }
    return OUT_OTHER;
}

static void hex(const char *name, const uint8_t *a, const uint8_t *b, unsigned n)
{
    fprintf(stderr, "  %s emu:  ", name);
    for (unsigned i = n; i-- > 0;) fprintf(stderr, "%02x", a[i]);
    fprintf(stderr, "\n  %s host: ", name);
    for (unsigned i = n; i-- > 0;) fprintf(stderr, "%02x", b[i]);
    fprintf(stderr, "\n");
}

bool harness_same(const struct harness_state *a, const struct harness_state *b, const char *what, bool cmp_x87_regs)
{
    bool ok = true;
    for (int i = 0; i < 16; i++)
        if (memcmp(a->fx.xmm[i], b->fx.xmm[i], 16)) {
            char n[16];
            snprintf(n, sizeof(n), "xmm%d", i);
            hex(n, a->fx.xmm[i], b->fx.xmm[i], 16);
            ok = false;
        }
    if (a->fx.mxcsr != b->fx.mxcsr) {
        fprintf(stderr, "  mxcsr emu %#x host %#x\n", a->fx.mxcsr, b->fx.mxcsr);
        ok = false;
    }
    if (cmp_x87_regs) {
        for (int i = 0; i < 8; i++)
            if (memcmp(a->fx.st[i], b->fx.st[i], 10)) {
                char n[16];
                snprintf(n, sizeof(n), "st%d", i);
                hex(n, a->fx.st[i], b->fx.st[i], 10);
                ok = false;
            }
        if (a->fx.fsw != b->fx.fsw || a->fx.ftw != b->fx.ftw || a->fx.fcw != b->fx.fcw) {
            fprintf(stderr, "  fcw/fsw/ftw emu %04x/%04x/%02x host %04x/%04x/%02x\n", a->fx.fcw, a->fx.fsw,
                    a->fx.ftw, b->fx.fcw, b->fx.fsw, b->fx.ftw);
            ok = false;
        }
    }
    for (int i = 0; i < 3; i++)
        if (a->gpr[i] != b->gpr[i]) {
            fprintf(stderr, "  gpr%d emu %#llx host %#llx\n", i, (unsigned long long)a->gpr[i],
                    (unsigned long long)b->gpr[i]);
            ok = false;
        }
    const uint64_t arith = RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF;
    if ((a->rflags & arith) != (b->rflags & arith)) {
        fprintf(stderr, "  rflags emu %#llx host %#llx\n", (unsigned long long)(a->rflags & arith),
                (unsigned long long)(b->rflags & arith));
        ok = false;
    }
    for (unsigned i = 0; i < HARNESS_MEM; i++)
        if (a->mem[i] != b->mem[i]) {
            fprintf(stderr, "  mem[%u] emu %02x host %02x\n", i, a->mem[i], b->mem[i]);
            ok = false;
            break;
        }
    if (!ok) fprintf(stderr, "  ^ mismatch in %s\n", what);
    return ok;
}

bool harness_suite_setup(const char *suite)
{
    uint64_t seed = (uint64_t)time(NULL);
    const char *e = getenv("FPU_TEST_SEED");
    if (e) seed = strtoull(e, NULL, 0);
    printf("%s: seed %llu (set FPU_TEST_SEED to repeat)\n", suite, (unsigned long long)seed);
    harness_seed(seed);
    bool ok = harness_init() == 0;
    if (!ok) printf("%s: skipping differential tests: no executable memory for native runs\n", suite);
    return ok;
}
