/* Differential test of the software emulator (vmm/emu/) against the CPU itself.
 *
 * Random instruction sequences run natively under KVM at CPL3 in long mode and in the
 * emulator from the same initial state (page tables, registers, XMM registers, memory).
 * Both end with a store to an MMIO address that stops the machine (or with an exception,
 * reported by the guest_builder IDT stubs). Then the general registers, RIP, the arithmetic
 * flags (those an instruction leaves undefined are masked), DF, the XMM registers, MXCSR,
 * the data and stack memory and the exception vector and frame must match.
 *
 * On a mismatch the case is shrunk to the first instruction after which the two differ and
 * printed as bytes with a register/memory diff, with the seed that reproduces it.
 *
 * Environment: VMD_DIFF_SEED (base seed, default fresh each run and printed), VMD_DIFF_CASES (default 3000),
 * VMD_DIFF_ONLY (run only case number N), VMD_DIFF_CLASSES (comma-separated class names to
 * enable; default: all), VMD_DIFF_VERBOSE=1 (print every case). Skips when KVM is unavailable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "guest_builder.h"
#include "x86_undefined.h"
#include "kvm_rig.h"
#include "vmm/emu/emu.h"
#include "vmm/machine.h"

/* The emulator is built by other parts of the tree; until its entry points exist the test
 * skips instead of failing to link. */
#pragma weak emu_cpu_init
#pragma weak emu_cpu_destroy
#pragma weak emu_exec
#pragma weak emu_set_rflags
#pragma weak emu_get_rflags
#pragma weak emu_update_mode
#pragma weak emu_tlb_flush
#pragma weak emu_icache_flush

#define DIFF_RAM (4ULL << 20)
#define DIFF_DEFAULT_CASES 3000
/* Memory the generated code may touch: data window and the user stack below its start RSP. */
#define DATA_WIN GB_DATA
#define DATA_WIN_SIZE 0x2000ULL /* two 4 KiB pages: accesses may straddle them */
#define STACK_LO (GB_STACK_TOP - 0x1000)
#define STACK_SIZE 0x1000ULL
#define START_RSP (GB_STACK_TOP - 0x800)
/* Right after the data window: a read-only user page, then a not-present page (4 KiB pages
 * mapped by FAULT_PT, which replaces the first 2 MiB large page). */
#define RO_PAGE (DATA_WIN + DATA_WIN_SIZE)
#define NP_PAGE (RO_PAGE + 0x1000)
#define FAULT_PT 0x60000ULL
/* FS and GS bases of the initial state: memory operands with FS:/GS: overrides add them. */
#define FS_BASE_VAL (DATA_WIN - 0x3000)
#define GS_BASE_VAL 0x7ff00000ULL
/* The kernel-stack bytes an exception frame (plus the stub's pushes) occupies. */
#define KFRAME_LO (GB_KSTACK_TOP - 0x40)

#define MAX_ITEMS 24
#define MAX_CODE 1024
#define ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)
#define OSZAPC ARITH

/* ---- random numbers (xorshift64*) ----------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dULL;
}
static unsigned rn(uint64_t *s, unsigned n) { return (unsigned)(rnd(s) % n); }
static bool chance(uint64_t *s, unsigned percent) { return rn(s, 100) < percent; }
static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Interesting 64-bit values: edges more often than uniform noise. */
static uint64_t rnd_value(uint64_t *s)
{
    static const uint64_t edges[] = {0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000,
                                     0xffffffff, 0x100000000ULL, 0x7fffffffffffffffULL, 0x8000000000000000ULL,
                                     ~0ULL, ~0ULL - 1};
    switch (rn(s, 6)) {
    case 0: return edges[rn(s, sizeof(edges) / sizeof(edges[0]))];
    case 1: return rnd(s) & 0xff;
    case 2: return (uint64_t)(int64_t)(int8_t)rnd(s);
    default: return rnd(s);
    }
}

/* ---- the generator -------------------------------------------------------------------- */

enum diff_class {
    C_ALU_RR, C_ALU_MEM, C_ALU_IMM, C_INCDEC_NEG_NOT, C_SHIFT, C_MULDIV, C_MOV, C_LEA, C_CMOV_SETCC, C_BT,
    C_BSF_BSR, C_STRING, C_STACK, C_XCHG, C_BRANCH, C_SSE_MOV, C_SSE_INT, C_SSE_FP, C_X87, C_MMX, C_MISC, C_SMC, C_PAGEFAULT, C_EXCEPTION, C_COUNT
};
static const char *const class_names[C_COUNT] = {
    "alu-rr", "alu-mem", "alu-imm", "incdec-neg-not", "shift", "muldiv", "mov", "lea", "cmov-setcc", "bt",
    "bsf-bsr", "string", "stack", "xchg-cmpxchg-xadd", "branch", "sse-mov", "sse-int", "sse-fp", "x87", "mmx", "misc", "smc", "pagefault", "exception",
};

/* One generated item: setup instructions and the instruction under test (the last one). */
struct item {
    uint16_t off, len;   /* bytes [off, off+len) of the code */
    uint8_t cls;
    uint64_t undef_after; /* arithmetic flags possibly undefined after this item */
};

struct gen {
    uint64_t rng;
    uint8_t code[MAX_CODE];
    unsigned len;
    struct item items[MAX_ITEMS];
    unsigned nitems;
    uint64_t undef;     /* arithmetic flags that may be undefined at this point */
    int64_t rsp_delta;  /* RSP relative to START_RSP */
    bool ended;         /* an exception item ends the sequence */
    unsigned x87_depth; /* registers on the x87 stack (kept within 0..8: no stack faults) */
    uint64_t code_base; /* where the code runs: GB_CODE, or just below a 4 KiB page boundary */
    bool enabled[C_COUNT];
};

static void b(struct gen *g, uint8_t v)
{
    if (g->len < MAX_CODE) g->code[g->len++] = v;
}
static void b32(struct gen *g, uint32_t v)
{
    for (int i = 0; i < 4; i++) b(g, (uint8_t)(v >> (8 * i)));
}

/* General registers that may be written: all but RSP. */
static int rnd_dst(struct gen *g)
{
    int r = (int)rn(&g->rng, 15);
    return r >= 4 ? r + 1 : r;
}
static int rnd_reg(struct gen *g) { return (int)rn(&g->rng, 16); }
static int rnd_dst_not(struct gen *g, int a, int b2)
{
    for (;;) {
        int r = rnd_dst(g);
        if (r != a && r != b2) return r;
    }
}

/* mov r32, imm32 (zero-extends): sets up an address or a count */
static void emit_mov_r32(struct gen *g, int reg, uint32_t v)
{
    if (reg >= 8) b(g, 0x41);
    b(g, (uint8_t)(0xb8 + (reg & 7)));
    b32(g, v);
}

/* Whether the CPU under KVM is an AMD one, as the emulator claims to be (x86_undefined.h).
 * The flags the manuals leave undefined are masked here whatever the vendor; test_emu_exec
 * compares the ones the emulator computes as AMD does. */
static bool reference_is_amd(void)
{
    return x86_host_vendor() == X86_VENDOR_AMD;
}

/* Flags readers after an instruction that left flags undefined get defined flags first. */
static void define_flags(struct gen *g, uint64_t needed)
{
    if (!(g->undef & needed)) return;
    /* cmp r64, r64 defines all six */
    int a = rnd_reg(g), c = rnd_reg(g);
    b(g, (uint8_t)(0x48 | (c >= 8 ? 4 : 0) | (a >= 8 ? 1 : 0)));
    b(g, 0x39);
    b(g, (uint8_t)(0xc0 | ((c & 7) << 3) | (a & 7)));
    g->undef = 0;
}

/* Flags bookkeeping for the instruction under test. */
static void flags_set(struct gen *g, uint64_t defined, uint64_t undefined)
{
    g->undef = (g->undef & ~defined) | undefined;
}

/* A ModRM operand: a register, or memory at a known target address. */
enum mem_kind { MK_ABS, MK_BASE, MK_BASE_INDEX, MK_RIP, MK_RSP };
struct operand {
    bool mem;
    int reg;                 /* register operand */
    enum mem_kind kind;      /* memory operand */
    int base, index, scale;  /* scale: 0..3 */
    int32_t disp;
    uint64_t target;
    bool addr32;             /* 0x67 prefix: 32-bit address arithmetic */
    int seg;                 /* segment prefix: 0 none, 1-4 ES CS SS DS (no effect in 64-bit mode), 5 FS, 6 GS */
};

static uint64_t seg_base_of(int seg) { return seg == 5 ? FS_BASE_VAL : seg == 6 ? GS_BASE_VAL : 0; }

/* mov r64, simm32 (sign-extends) */
static void emit_mov_r64s(struct gen *g, int reg, int32_t v)
{
    b(g, (uint8_t)(0x48 | (reg >= 8 ? 1 : 0)));
    b(g, 0xc7);
    b(g, (uint8_t)(0xc0 | (reg & 7)));
    b32(g, (uint32_t)v);
}

/* A target in the data window with room for `size` bytes, aligned to `align`. */
static uint64_t rnd_target(struct gen *g, unsigned size, unsigned align)
{
    uint64_t t;
    if (chance(&g->rng, 20)) /* at or across the page boundary in the middle of the window */
        t = DATA_WIN + 0x1000 - 1 - rn(&g->rng, size + 8);
    else
        t = DATA_WIN + 32 + rn(&g->rng, (unsigned)(DATA_WIN_SIZE - 64 - size));
    if (align > 1) t &= ~(uint64_t)(align - 1);
    else if (chance(&g->rng, 30)) t &= ~7ULL;
    return t;
}

/* Memory operand at a fresh target; emits the register set-up it needs. `avoid` registers
 * (e.g. the other operand) are not used as base/index. */
static struct operand mem_operand(struct gen *g, unsigned size, unsigned align, int avoid1, int avoid2)
{
    struct operand o = {.mem = true, .base = -1, .index = -1};
    o.target = rnd_target(g, size, align);
    unsigned sp = rn(&g->rng, 100);
    o.seg = sp < 12 ? 5 : sp < 24 ? 6 : sp < 30 ? 1 + (int)rn(&g->rng, 4) : 0;
    uint64_t off = o.target - seg_base_of(o.seg); /* the effective address the operand must compute */
    bool wide = o.seg >= 5; /* offsets from GS's base are negative: set registers sign-extended */
    unsigned k = rn(&g->rng, 10);
    if (k < 2) {
        o.kind = MK_ABS;
        o.disp = (int32_t)off;
    } else if (k < 5) {
        o.kind = MK_BASE;
        o.base = rnd_dst_not(g, avoid1, avoid2);
        o.disp = chance(&g->rng, 40) ? 0 : chance(&g->rng, 70) ? (int8_t)rnd(&g->rng) : (int32_t)(rn(&g->rng, 0x20000) - 0x10000);
        uint64_t v = off - (uint64_t)(int64_t)o.disp;
        if (wide) emit_mov_r64s(g, o.base, (int32_t)v);
        else emit_mov_r32(g, o.base, (uint32_t)v);
    } else if (k < 8) {
        o.kind = MK_BASE_INDEX;
        o.base = rnd_dst_not(g, avoid1, avoid2);
        do o.index = rnd_dst_not(g, avoid1, avoid2); while (o.index == o.base);
        o.scale = (int)rn(&g->rng, 4);
        o.disp = chance(&g->rng, 50) ? 0 : (int8_t)rnd(&g->rng);
        uint32_t idx = rn(&g->rng, 64);
        emit_mov_r32(g, o.index, idx);
        uint64_t v = off - ((uint64_t)idx << o.scale) - (uint64_t)(int64_t)o.disp;
        if (wide) emit_mov_r64s(g, o.base, (int32_t)v);
        else emit_mov_r32(g, o.base, (uint32_t)v);
        o.addr32 = !wide && chance(&g->rng, 10);
    } else if (k < 9 || g->rsp_delta > -64) {
        o.kind = MK_RIP;
    } else {
        /* [rsp + disp8] into what was pushed */
        o.kind = MK_RSP;
        o.seg = 0;
        unsigned room = (unsigned)(-g->rsp_delta - 16);
        o.disp = (int32_t)(rn(&g->rng, (room < 120 ? room : 120) + 1) & ~(align > 1 ? align - 1 : 0));
        o.target = START_RSP + (uint64_t)(g->rsp_delta + o.disp);
        if (align > 1 && (o.target & (align - 1))) {
            o.kind = MK_RIP;
            o.target = rnd_target(g, size, align);
            o.seg = 0;
        }
    }
    return o;
}

static struct operand reg_operand(int reg) { return (struct operand){.reg = reg}; }

/* Encoding of one instruction: legacy prefixes, REX, opcode, ModRM/SIB/disp, immediate. */
struct enc {
    uint8_t pfx[4];
    int npfx;
    bool rex_w, rex_force;
    uint8_t op[3];
    int nop;
    int reg; /* ModRM.reg (register number or /digit) */
    uint8_t imm[8];
    int nimm;
};

static void emit(struct gen *g, const struct enc *e, const struct operand *rm)
{
    if (rm->mem && rm->seg) b(g, (uint8_t)"\x00\x26\x2e\x36\x3e\x64\x65"[rm->seg]);
    for (int i = 0; i < e->npfx; i++) b(g, e->pfx[i]);
    if (rm->mem && rm->addr32) b(g, 0x67);
    int rex = 0x40 | (e->rex_w ? 8 : 0) | (e->reg >= 8 ? 4 : 0);
    uint8_t modrm, sib = 0;
    bool has_sib = false;
    int disp_bytes = 0;
    if (!rm->mem) {
        if (rm->reg >= 8) rex |= 1;
        modrm = (uint8_t)(0xc0 | ((e->reg & 7) << 3) | (rm->reg & 7));
    } else {
        switch (rm->kind) {
        case MK_ABS:
            modrm = (uint8_t)(((e->reg & 7) << 3) | 4);
            sib = 0x25; /* no index, no base: disp32 */
            has_sib = true;
            disp_bytes = 4;
            break;
        case MK_RIP:
            modrm = (uint8_t)(((e->reg & 7) << 3) | 5);
            disp_bytes = 4;
            break;
        case MK_RSP:
            modrm = (uint8_t)(0x40 | ((e->reg & 7) << 3) | 4);
            sib = 0x24;
            has_sib = true;
            disp_bytes = 1;
            break;
        default: {
            int mod = rm->disp == 0 && (rm->base & 7) != 5 ? 0 : (rm->disp >= -128 && rm->disp <= 127) ? 1 : 2;
            disp_bytes = mod == 0 ? 0 : mod == 1 ? 1 : 4;
            if (rm->base >= 8) rex |= 1;
            if (rm->kind == MK_BASE_INDEX || (rm->base & 7) == 4) {
                int index = rm->kind == MK_BASE_INDEX ? rm->index : 4;
                if (index >= 8) rex |= 2;
                modrm = (uint8_t)((mod << 6) | ((e->reg & 7) << 3) | 4);
                sib = (uint8_t)((rm->scale << 6) | ((index & 7) << 3) | (rm->base & 7));
                has_sib = true;
            } else {
                modrm = (uint8_t)((mod << 6) | ((e->reg & 7) << 3) | (rm->base & 7));
            }
        }
        }
    }
    if (rex != 0x40 || e->rex_force) b(g, (uint8_t)rex);
    for (int i = 0; i < e->nop; i++) b(g, e->op[i]);
    b(g, modrm);
    if (has_sib) b(g, sib);
    int32_t disp = rm->disp;
    if (rm->mem && rm->kind == MK_RIP) {
        uint64_t next = g->code_base + g->len + 4 + (unsigned)e->nimm;
        disp = (int32_t)(rm->target - seg_base_of(rm->seg) - next);
    }
    if (disp_bytes == 1) b(g, (uint8_t)disp);
    if (disp_bytes == 4) b32(g, (uint32_t)disp);
    for (int i = 0; i < e->nimm; i++) b(g, e->imm[i]);
}

/* Operand size: prefixes and REX.W for a non-byte instruction. */
static void set_osize(struct enc *e, unsigned size)
{
    if (size == 2) e->pfx[e->npfx++] = 0x66;
    if (size == 8) e->rex_w = true;
}

static unsigned rnd_size(struct gen *g) { return 1u << rn(&g->rng, 4); }
static unsigned rnd_size248(struct gen *g) { return 2u << rn(&g->rng, 3); }

static void set_imm(struct enc *e, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) e->imm[i] = (uint8_t)(v >> (8 * i));
    e->nimm = n;
}

/* Register operand for a byte instruction: REX sometimes forced so 4-7 mean SPL..DIL. */
static void byte_rex(struct gen *g, struct enc *e, unsigned size)
{
    if (size == 1 && chance(&g->rng, 50)) e->rex_force = true;
}


/* ---- instruction classes --------------------------------------------------------------- */

static void gen_alu(struct gen *g, bool mem)
{
    unsigned op = rn(&g->rng, 8), size = rnd_size(g);
    bool to_reg = chance(&g->rng, 50);
    struct enc e = {0};
    set_osize(&e, size);
    byte_rex(g, &e, size);
    if (op == 2 || op == 3) define_flags(g, RFLAGS_CF); /* ADC, SBB read CF */
    int reg = op == 7 || !to_reg ? rnd_reg(g) : rnd_dst(g);
    struct operand rm = mem ? mem_operand(g, size, 1, reg, -1) : reg_operand(op == 7 || to_reg ? rnd_reg(g) : rnd_dst(g));
    if (mem && op == 2) define_flags(g, RFLAGS_CF);
    if (mem && op == 3) define_flags(g, RFLAGS_CF);
    e.reg = reg;
    e.op[0] = (uint8_t)(op * 8 + (to_reg ? 2 : 0) + (size == 1 ? 0 : 1));
    e.nop = 1;
    if (mem && !to_reg && op != 7 && chance(&g->rng, 15)) e.pfx[e.npfx++] = 0xf0; /* LOCK */
    emit(g, &e, &rm);
    bool logic = op == 1 || op == 4 || op == 6;
    flags_set(g, OSZAPC, logic ? RFLAGS_AF : 0);
}

static void gen_alu_imm(struct gen *g)
{
    unsigned op = rn(&g->rng, 8), size = rnd_size(g);
    if (op == 2 || op == 3) define_flags(g, RFLAGS_CF);
    struct enc e = {0};
    set_osize(&e, size);
    byte_rex(g, &e, size);
    uint64_t imm = rnd_value(&g->rng);
    unsigned form = rn(&g->rng, 4);
    if (form == 0) { /* AL/AX/EAX/RAX, imm short form */
        for (int i = 0; i < e.npfx; i++) b(g, e.pfx[i]);
        if (e.rex_w) b(g, 0x48);
        b(g, (uint8_t)(op * 8 + (size == 1 ? 4 : 5)));
        int n = size == 1 ? 1 : size == 2 ? 2 : 4;
        for (int i = 0; i < n; i++) b(g, (uint8_t)(imm >> (8 * i)));
    } else {
        bool mem = form == 3;
        struct operand rm = mem ? mem_operand(g, size, 1, -1, -1) : reg_operand(op == 7 ? rnd_reg(g) : rnd_dst(g));
        e.reg = (int)op;
        if (size == 1) {
            e.op[0] = 0x80;
            set_imm(&e, imm, 1);
        } else if (form == 1) {
            e.op[0] = 0x83;
            set_imm(&e, imm, 1);
        } else {
            e.op[0] = 0x81;
            set_imm(&e, imm, size == 2 ? 2 : 4);
        }
        e.nop = 1;
        if (mem && op != 7 && chance(&g->rng, 10)) e.pfx[e.npfx++] = 0xf0;
        emit(g, &e, &rm);
    }
    bool logic = op == 1 || op == 4 || op == 6;
    flags_set(g, OSZAPC, logic ? RFLAGS_AF : 0);
}

static void gen_incdec_neg_not(struct gen *g)
{
    unsigned size = rnd_size(g), kind = rn(&g->rng, 5);
    struct enc e = {0};
    set_osize(&e, size);
    byte_rex(g, &e, size);
    bool mem = chance(&g->rng, 30);
    struct operand rm = mem ? mem_operand(g, size, 1, -1, -1) : reg_operand(rnd_dst(g));
    e.nop = 1;
    switch (kind) {
    case 0: case 1: /* INC, DEC */
        e.op[0] = size == 1 ? 0xfe : 0xff;
        e.reg = (int)kind;
        emit(g, &e, &rm);
        flags_set(g, OSZAPC & ~RFLAGS_CF, 0);
        break;
    case 2: case 3: /* NOT, NEG */
        e.op[0] = size == 1 ? 0xf6 : 0xf7;
        e.reg = (int)kind;
        emit(g, &e, &rm);
        if (kind == 3) flags_set(g, OSZAPC, 0);
        break;
    default: /* TEST rm, imm */
        e.op[0] = size == 1 ? 0xf6 : 0xf7;
        e.reg = 0;
        set_imm(&e, rnd_value(&g->rng), size == 1 ? 1 : size == 2 ? 2 : 4);
        emit(g, &e, &rm);
        flags_set(g, OSZAPC, RFLAGS_AF);
        break;
    }
}

static void gen_shift(struct gen *g)
{
    static const int ops[] = {0, 1, 2, 3, 4, 5, 7};
    int op = ops[rn(&g->rng, 7)];
    unsigned size = rnd_size(g), form = rn(&g->rng, 3);
    struct enc e = {0};
    set_osize(&e, size);
    byte_rex(g, &e, size);
    if (op == 2 || op == 3) define_flags(g, RFLAGS_CF); /* RCL, RCR */
    bool mem = chance(&g->rng, 25);
    struct operand rm = mem ? mem_operand(g, size, 1, 1, -1) : reg_operand(form == 2 ? rnd_dst_not(g, 1, -1) : rnd_dst(g));
    e.reg = op;
    e.nop = 1;
    int count = -1; /* unknown */
    if (form == 0) {
        e.op[0] = size == 1 ? 0xc0 : 0xc1;
        count = (int)rn(&g->rng, 70);
        set_imm(&e, (uint64_t)count, 1);
    } else if (form == 1) {
        e.op[0] = size == 1 ? 0xd0 : 0xd1;
        count = 1;
    } else {
        e.op[0] = size == 1 ? 0xd2 : 0xd3;
        if (chance(&g->rng, 70)) {
            count = (int)rn(&g->rng, 70);
            emit_mov_r32(g, 1, (uint32_t)count); /* ecx */
        }
    }
    emit(g, &e, &rm);
    int masked = count < 0 ? -1 : count & (size == 8 ? 63 : 31);
    bool rotate = op <= 3;
    if (masked == 0) return; /* flags unchanged */
    if (masked < 0) {
        g->undef |= RFLAGS_OF | (rotate ? 0 : RFLAGS_AF | RFLAGS_CF);
        if (!rotate) g->undef |= RFLAGS_CF;
        return;
    }
    struct x86_operands o = {.size = size, .count = (unsigned)masked};
    enum x86_family f = op <= 1 ? XF_ROTATE : op <= 3 ? XF_ROTATE_C : op == 7 ? XF_SAR : XF_SHL_SHR;
    flags_set(g, rotate ? RFLAGS_CF | RFLAGS_OF : OSZAPC, x86_undefined(f, &o).flags);
}

static void gen_muldiv(struct gen *g)
{
    unsigned kind = rn(&g->rng, 5), size = rnd_size(g);
    struct enc e = {0};
    e.nop = 1;
    if (kind <= 1) { /* MUL / IMUL one operand */
        set_osize(&e, size);
        byte_rex(g, &e, size);
        struct operand rm = chance(&g->rng, 30) ? mem_operand(g, size, 1, 0, 2) : reg_operand(rnd_reg(g));
        e.op[0] = size == 1 ? 0xf6 : 0xf7;
        e.reg = 4 + (int)kind;
        emit(g, &e, &rm);
        flags_set(g, OSZAPC, x86_undefined(XF_MUL, &(struct x86_operands){.size = size}).flags);
        return;
    }
    if (kind == 2) { /* IMUL r, rm / IMUL r, rm, imm */
        size = rnd_size248(g);
        set_osize(&e, size);
        int dst = rnd_dst(g);
        struct operand rm = chance(&g->rng, 30) ? mem_operand(g, size, 1, dst, -1) : reg_operand(rnd_reg(g));
        e.reg = dst;
        unsigned f = rn(&g->rng, 3);
        if (f == 0) {
            e.op[0] = 0x0f;
            e.op[1] = 0xaf;
            e.nop = 2;
        } else if (f == 1) {
            e.op[0] = 0x6b;
            set_imm(&e, rnd(&g->rng), 1);
        } else {
            e.op[0] = 0x69;
            set_imm(&e, rnd_value(&g->rng), size == 2 ? 2 : 4);
        }
        emit(g, &e, &rm);
        flags_set(g, OSZAPC, x86_undefined(XF_MUL, &(struct x86_operands){.size = size}).flags);
        return;
    }
    /* DIV / IDIV without #DE: |divisor| >= 2 and a dividend whose high half is an extension */
    bool is_idiv = kind == 4;
    int div_reg = rnd_dst_not(g, 0, 2);
    uint32_t dv = 2 + rn(&g->rng, 120);
    if (is_idiv && chance(&g->rng, 50)) dv = (uint32_t)-(int32_t)dv;
    if (size == 1) dv &= 0xff;
    else if (size == 2) dv &= 0xffff;
    bool mem = chance(&g->rng, 30);
    struct operand rm;
    if (mem) {
        rm = mem_operand(g, size, 1, 0, 2);
        /* store the divisor: mov [target], imm (through its own absolute operand) */
        struct enc st = {0};
        set_osize(&st, size == 8 ? 4 : size);
        struct operand abs = {.mem = true, .kind = MK_ABS, .disp = (int32_t)rm.target, .target = rm.target};
        st.op[0] = size == 1 ? 0xc6 : 0xc7;
        st.nop = 1;
        set_imm(&st, dv, size == 1 ? 1 : size == 2 ? 2 : 4);
        emit(g, &st, &abs);
        if (size == 8) { /* upper half: sign extension of the 32-bit divisor */
            struct operand hi = {.mem = true, .kind = MK_ABS, .disp = (int32_t)(rm.target + 4), .target = rm.target + 4};
            struct enc st2 = {.op = {0xc7}, .nop = 1};
            set_imm(&st2, (int32_t)dv < 0 ? 0xffffffffu : 0, 4);
            emit(g, &st2, &hi);
        }
    } else {
        rm = reg_operand(div_reg);
        if (size == 8) { /* mov r64, simm32 */
            struct enc mv = {.rex_w = true, .op = {0xc7}, .nop = 1};
            set_imm(&mv, dv, 4);
            struct operand r = reg_operand(div_reg);
            emit(g, &mv, &r);
        } else {
            emit_mov_r32(g, div_reg, dv);
        }
        if (size == 1 && div_reg >= 4) {
            /* byte register 4-7 needs REX to mean SPL..DIL; force REX below */
        }
    }
    /* dividend high half */
    if (size == 1) {
        if (is_idiv) { b(g, 0x66); b(g, 0x98); } /* cbw */
        else { b(g, 0x0f); b(g, 0xb6); b(g, 0xc0); } /* movzx eax, al */
    } else if (is_idiv) {
        if (size == 2) b(g, 0x66);
        if (size == 8) b(g, 0x48);
        b(g, 0x99); /* cwd / cdq / cqo */
    } else {
        b(g, 0x31); b(g, 0xd2); /* xor edx, edx */
        flags_set(g, OSZAPC, RFLAGS_AF);
    }
    set_osize(&e, size);
    if (size == 1 && !mem) e.rex_force = true;
    e.op[0] = size == 1 ? 0xf6 : 0xf7;
    e.reg = is_idiv ? 7 : 6;
    emit(g, &e, &rm);
    flags_set(g, OSZAPC, x86_undefined(XF_DIV, &(struct x86_operands){.size = size}).flags);
}

static void gen_mov(struct gen *g)
{
    unsigned kind = rn(&g->rng, 8);
    struct enc e = {0};
    e.nop = 1;
    switch (kind) {
    case 0: case 1: { /* MOV r/m, r  and  r, r/m */
        unsigned size = rnd_size(g);
        set_osize(&e, size);
        byte_rex(g, &e, size);
        bool to_reg = kind == 1;
        int reg = to_reg ? rnd_dst(g) : rnd_reg(g);
        struct operand rm = chance(&g->rng, 50) ? mem_operand(g, size, 1, reg, -1) : reg_operand(to_reg ? rnd_reg(g) : rnd_dst(g));
        e.reg = reg;
        e.op[0] = (uint8_t)(0x88 + (to_reg ? 2 : 0) + (size == 1 ? 0 : 1));
        emit(g, &e, &rm);
        break;
    }
    case 2: { /* MOV r/m, imm */
        unsigned size = rnd_size(g);
        set_osize(&e, size);
        byte_rex(g, &e, size);
        struct operand rm = chance(&g->rng, 50) ? mem_operand(g, size, 1, -1, -1) : reg_operand(rnd_dst(g));
        e.op[0] = size == 1 ? 0xc6 : 0xc7;
        e.reg = 0;
        set_imm(&e, rnd_value(&g->rng), size == 1 ? 1 : size == 2 ? 2 : 4);
        emit(g, &e, &rm);
        break;
    }
    case 3: { /* MOV r, imm (B0+r / B8+r, incl. movabs) */
        unsigned size = rnd_size(g);
        int r = rnd_dst(g);
        if (size == 2) b(g, 0x66);
        int rex = (size == 8 ? 8 : 0) | (r >= 8 ? 1 : 0);
        if (rex || (size == 1 && chance(&g->rng, 50))) b(g, (uint8_t)(0x40 | rex));
        b(g, (uint8_t)((size == 1 ? 0xb0 : 0xb8) + (r & 7)));
        uint64_t v = rnd_value(&g->rng);
        for (unsigned i = 0; i < size; i++) b(g, (uint8_t)(v >> (8 * i)));
        break;
    }
    case 4: case 5: { /* MOVZX / MOVSX */
        unsigned dsize = rnd_size248(g), ssize = chance(&g->rng, 50) || dsize == 2 ? 1 : 2;
        set_osize(&e, dsize);
        if (ssize == 1) byte_rex(g, &e, 1);
        int dst = rnd_dst(g);
        struct operand rm = chance(&g->rng, 40) ? mem_operand(g, ssize, 1, dst, -1) : reg_operand(rnd_reg(g));
        e.reg = dst;
        e.op[0] = 0x0f;
        e.op[1] = (uint8_t)((kind == 4 ? 0xb6 : 0xbe) + (ssize == 2 ? 1 : 0));
        e.nop = 2;
        emit(g, &e, &rm);
        break;
    }
    case 6: { /* MOVSXD r64, r/m32 */
        e.rex_w = true;
        int dst = rnd_dst(g);
        struct operand rm = chance(&g->rng, 40) ? mem_operand(g, 4, 1, dst, -1) : reg_operand(rnd_reg(g));
        e.reg = dst;
        e.op[0] = 0x63;
        emit(g, &e, &rm);
        break;
    }
    default: { /* MOV AL/AX/EAX/RAX, moffs64 and back */
        unsigned size = rnd_size(g);
        uint64_t t = rnd_target(g, size, 1);
        if (size == 2) b(g, 0x66);
        if (size == 8) b(g, 0x48);
        b(g, (uint8_t)((chance(&g->rng, 50) ? 0xa0 : 0xa2) + (size == 1 ? 0 : 1)));
        for (int i = 0; i < 8; i++) b(g, (uint8_t)(t >> (8 * i)));
        break;
    }
    }
}

static void gen_lea(struct gen *g)
{
    unsigned size = rnd_size248(g);
    struct enc e = {0};
    set_osize(&e, size);
    int dst = rnd_dst(g);
    /* LEA computes without accessing memory: any base/index/disp is fine. */
    struct operand rm = {.mem = true};
    unsigned k = rn(&g->rng, 4);
    rm.base = rnd_reg(g);
    rm.disp = chance(&g->rng, 30) ? 0 : chance(&g->rng, 50) ? (int8_t)rnd(&g->rng) : (int32_t)rnd(&g->rng);
    if (k == 0) {
        rm.kind = MK_RIP;
        rm.target = rnd(&g->rng) & 0xffffffffULL;
    } else if (k == 1) {
        rm.kind = MK_BASE;
    } else {
        rm.kind = MK_BASE_INDEX;
        do rm.index = rnd_reg(g); while (rm.index == 4);
        rm.scale = (int)rn(&g->rng, 4);
    }
    rm.addr32 = chance(&g->rng, 15);
    e.reg = dst;
    e.op[0] = 0x8d;
    e.nop = 1;
    emit(g, &e, &rm);
}

static void gen_cmov_setcc(struct gen *g)
{
    define_flags(g, OSZAPC);
    unsigned cc = rn(&g->rng, 16);
    struct enc e = {0};
    e.op[0] = 0x0f;
    e.nop = 2;
    if (chance(&g->rng, 50)) {
        unsigned size = rnd_size248(g);
        set_osize(&e, size);
        int dst = rnd_dst(g);
        struct operand rm = chance(&g->rng, 30) ? mem_operand(g, size, 1, dst, -1) : reg_operand(rnd_reg(g));
        e.reg = dst;
        e.op[1] = (uint8_t)(0x40 + cc);
        emit(g, &e, &rm);
    } else {
        byte_rex(g, &e, 1);
        struct operand rm = chance(&g->rng, 30) ? mem_operand(g, 1, 1, -1, -1) : reg_operand(rnd_dst(g));
        e.reg = 0;
        e.op[1] = (uint8_t)(0x90 + cc);
        emit(g, &e, &rm);
    }
}

static void gen_bt(struct gen *g)
{
    unsigned size = rnd_size248(g), op = rn(&g->rng, 4); /* BT BTS BTR BTC */
    struct enc e = {0};
    set_osize(&e, size);
    e.op[0] = 0x0f;
    e.nop = 2;
    bool mem = chance(&g->rng, 40);
    if (chance(&g->rng, 50)) { /* 0F BA /4-7 ib */
        struct operand rm = mem ? mem_operand(g, size, 1, -1, -1) : reg_operand(op == 0 ? rnd_reg(g) : rnd_dst(g));
        e.op[1] = 0xba;
        e.reg = 4 + (int)op;
        set_imm(&e, rnd(&g->rng), 1);
        if (mem && op && chance(&g->rng, 15)) e.pfx[e.npfx++] = 0xf0;
        emit(g, &e, &rm);
    } else {
        int off = rnd_dst(g);
        struct operand rm;
        if (mem) {
            /* The bit offset register addresses beyond the operand: keep it small and positive. */
            rm = mem_operand(g, size, 1, off, -1);
            emit_mov_r32(g, off, rn(&g->rng, 256));
        } else {
            rm = reg_operand(op == 0 ? rnd_reg(g) : rnd_dst(g));
        }
        e.op[1] = (uint8_t)(0xa3 + 8 * op);
        e.reg = off;
        emit(g, &e, &rm);
    }
    flags_set(g, OSZAPC & ~RFLAGS_ZF, x86_undefined(XF_BT, &(struct x86_operands){.size = size}).flags);
}

static void gen_bsf_bsr(struct gen *g)
{
    unsigned size = rnd_size248(g);
    struct enc e = {0};
    set_osize(&e, size);
    int dst = rnd_dst(g);
    struct operand rm = chance(&g->rng, 30) ? mem_operand(g, size, 1, dst, -1) : reg_operand(rnd_reg(g));
    if (!reference_is_amd()) {
        /* A zero source leaves the destination undefined (x86_undefined.c), and only an AMD
         * reference leaves it as the emulator does: give the source a set bit first. */
        struct enc or1 = {.op = {rm.mem ? 0x80 : 0x83}, .nop = 1, .reg = 1};
        if (!rm.mem) set_osize(&or1, size);
        set_imm(&or1, 1, 1);
        emit(g, &or1, &rm);
    }
    e.reg = dst;
    e.op[0] = 0x0f;
    e.op[1] = chance(&g->rng, 50) ? 0xbc : 0xbd;
    e.nop = 2;
    emit(g, &e, &rm);
    flags_set(g, OSZAPC, x86_undefined(XF_BSF_BSR, &(struct x86_operands){.size = size}).flags);
}

static void gen_string(struct gen *g)
{
    static const uint8_t ops[] = {0xa4, 0xa6, 0xaa, 0xac, 0xae}; /* MOVS CMPS STOS LODS SCAS */
    uint8_t op = ops[rn(&g->rng, 5)];
    unsigned size = rnd_size(g), count = rn(&g->rng, 9);
    bool down = chance(&g->rng, 30);
    unsigned span = count * size + 16;
    uint64_t src = rnd_target(g, span, size), dst = rnd_target(g, span, size);
    if (down) {
        src += span - 16;
        dst += span - 16;
    }
    emit_mov_r32(g, 6, (uint32_t)src);   /* esi */
    emit_mov_r32(g, 7, (uint32_t)dst);   /* edi */
    emit_mov_r32(g, 1, count);           /* ecx */
    if (down) b(g, 0xfd);                /* std */
    unsigned rep = rn(&g->rng, 3);       /* none, REP/REPE, REPNE */
    bool cmp = op == 0xa6 || op == 0xae;
    if (rep == 2 && !cmp) rep = 1;
    if (rep == 1) b(g, 0xf3);
    if (rep == 2) b(g, 0xf2);
    if (size == 2) b(g, 0x66);
    if (size == 8) b(g, 0x48);
    b(g, (uint8_t)(op + (size == 1 ? 0 : 1)));
    if (down) b(g, 0xfc);                /* cld */
    if (cmp) {
        if (rep == 0) flags_set(g, OSZAPC, 0);
        /* with a count of 0 a REP form leaves the flags alone: keep what was undefined */
        else if (count > 0) flags_set(g, OSZAPC, 0);
    }
}

static void gen_stack(struct gen *g)
{
    unsigned kind = rn(&g->rng, 8);
    if (g->rsp_delta < -0x600) kind = 1; /* don't run off the stack window: pop */
    if (g->rsp_delta >= 0 && (kind == 1 || kind == 5 || kind == 7)) kind = 0;
    switch (kind) {
    case 0: { /* PUSH r64 (or r16) */
        int r = rnd_reg(g);
        bool w16 = chance(&g->rng, 10);
        if (w16) b(g, 0x66);
        if (r >= 8) b(g, 0x41);
        b(g, (uint8_t)(0x50 + (r & 7)));
        g->rsp_delta -= w16 ? 2 : 8;
        break;
    }
    case 1: { /* POP r64 */
        int r = rnd_dst(g);
        if (r >= 8) b(g, 0x41);
        b(g, (uint8_t)(0x58 + (r & 7)));
        g->rsp_delta += 8;
        break;
    }
    case 2: /* PUSH imm8 / imm32 */
        if (chance(&g->rng, 50)) {
            b(g, 0x6a);
            b(g, (uint8_t)rnd(&g->rng));
        } else {
            b(g, 0x68);
            b32(g, (uint32_t)rnd_value(&g->rng));
        }
        g->rsp_delta -= 8;
        break;
    case 3: { /* PUSH m64 */
        struct enc e = {.op = {0xff}, .nop = 1, .reg = 6};
        struct operand rm = mem_operand(g, 8, 1, -1, -1);
        emit(g, &e, &rm);
        g->rsp_delta -= 8;
        break;
    }
    case 4: /* PUSHF after defining the flags */
        define_flags(g, OSZAPC);
        b(g, 0x9c);
        g->rsp_delta -= 8;
        break;
    case 5: { /* POP m64 (not RSP-relative: that uses the incremented RSP) */
        struct enc e = {.op = {0x8f}, .nop = 1, .reg = 0};
        struct operand rm;
        do rm = mem_operand(g, 8, 1, -1, -1); while (rm.kind == MK_RSP);
        emit(g, &e, &rm);
        g->rsp_delta += 8;
        break;
    }
    case 6: { /* push imm32 with chosen arithmetic flags and DF; popf; (TF, AC stay clear) */
        uint32_t fl = 0x202 | (uint32_t)(rnd(&g->rng) & (ARITH | RFLAGS_DF));
        b(g, 0x68);
        b32(g, fl);
        b(g, 0x9d);
        b(g, 0xfc); /* cld: keep DF clear for later string ops (DF itself was checked by popf+pushf paths) */
        g->undef = 0;
        break;
    }
    default: /* LAHF / SAHF */
        if (chance(&g->rng, 50)) {
            define_flags(g, OSZAPC);
            b(g, 0x9f);
        } else {
            b(g, 0x9e);
            flags_set(g, RFLAGS_SF | RFLAGS_ZF | RFLAGS_AF | RFLAGS_PF | RFLAGS_CF, 0);
        }
        break;
    }
}

static void gen_xchg(struct gen *g)
{
    unsigned kind = rn(&g->rng, 4), size = rnd_size(g);
    struct enc e = {0};
    set_osize(&e, size);
    byte_rex(g, &e, size);
    int reg = rnd_dst(g);
    bool mem = chance(&g->rng, 50);
    struct operand rm = mem ? mem_operand(g, size, 1, reg, 0) : reg_operand(rnd_dst(g));
    e.reg = reg;
    if (mem && kind != 0 && chance(&g->rng, 30)) e.pfx[e.npfx++] = 0xf0;
    switch (kind) {
    case 0: /* XCHG r/m, r */
        e.op[0] = size == 1 ? 0x86 : 0x87;
        e.nop = 1;
        emit(g, &e, &rm);
        break;
    case 1: /* XCHG eAX, r (90+r; not 90 itself, the NOP) */
        if (size == 1) size = 4;
        {
            int r = rnd_dst(g);
            if (r == 0) r = 8;
            if (size == 2) b(g, 0x66);
            int rex = (size == 8 ? 8 : 0) | (r >= 8 ? 1 : 0);
            if (rex) b(g, (uint8_t)(0x40 | rex));
            b(g, (uint8_t)(0x90 + (r & 7)));
        }
        break;
    case 2: /* CMPXCHG r/m, r */
        e.op[0] = 0x0f;
        e.op[1] = size == 1 ? 0xb0 : 0xb1;
        e.nop = 2;
        emit(g, &e, &rm);
        flags_set(g, OSZAPC, 0);
        break;
    default: /* XADD r/m, r */
        e.op[0] = 0x0f;
        e.op[1] = size == 1 ? 0xc0 : 0xc1;
        e.nop = 2;
        emit(g, &e, &rm);
        flags_set(g, OSZAPC, 0);
        break;
    }
}

static void gen_branch(struct gen *g)
{
    unsigned kind = rn(&g->rng, 5);
    switch (kind) {
    case 0: { /* Jcc rel8 over a 4-byte add r64, imm8 */
        define_flags(g, OSZAPC);
        b(g, (uint8_t)(0x70 + rn(&g->rng, 16)));
        b(g, 4);
        int r = rnd_dst(g);
        b(g, (uint8_t)(0x48 | (r >= 8 ? 1 : 0)));
        b(g, 0x83);
        b(g, (uint8_t)(0xc0 | (r & 7)));
        b(g, (uint8_t)rnd(&g->rng));
        g->undef = 0; /* taken or not, flags defined (add defines all) */
        break;
    }
    case 1: { /* Jcc rel32 (0F 8x) over a 4-byte add */
        define_flags(g, OSZAPC);
        b(g, 0x0f);
        b(g, (uint8_t)(0x80 + rn(&g->rng, 16)));
        b32(g, 4);
        int r = rnd_dst(g);
        b(g, (uint8_t)(0x48 | (r >= 8 ? 1 : 0)));
        b(g, 0x83);
        b(g, (uint8_t)(0xc0 | (r & 7)));
        b(g, (uint8_t)rnd(&g->rng));
        break;
    }
    case 2: { /* call next; pop r: the return address */
        b(g, 0xe8);
        b32(g, 0);
        int r = rnd_dst(g);
        if (r >= 8) b(g, 0x41);
        b(g, (uint8_t)(0x58 + (r & 7)));
        break;
    }
    case 3: { /* call +1 over a RET's target: call L; jmp end; L: ret  => lands on jmp end */
        b(g, 0xe8);
        b32(g, 2);
        b(g, 0xeb);
        b(g, 1);
        b(g, 0xc3);
        break;
    }
    default: { /* LOOP / JRCXZ with a small ECX: loop body decrements a register */
        bool loop = chance(&g->rng, 50);
        emit_mov_r32(g, 1, loop ? 1 + rn(&g->rng, 5) : rn(&g->rng, 2)); /* LOOP needs ECX >= 1 to end */
        int r = rnd_dst_not(g, 1, -1);
        /* L: inc r (REX.W FF /0, 3 bytes); loop L (E2 disp8) */
        b(g, (uint8_t)(0x48 | (r >= 8 ? 1 : 0)));
        b(g, 0xff);
        b(g, (uint8_t)(0xc0 | (r & 7)));
        if (loop) {
            b(g, 0xe2);
            b(g, (uint8_t)-5);
        } else {
            b(g, 0xe3); /* jrcxz +0 */
            b(g, 0);
        }
        flags_set(g, OSZAPC & ~RFLAGS_CF, 0);
        break;
    }
    }
}

/* SSE: ModRM reg = xmm, rm = xmm or memory. */
static void sse_emit(struct gen *g, uint8_t pfx, uint8_t op, int xreg, bool mem_ok, unsigned msize, unsigned align,
                     int imm)
{
    struct enc e = {0};
    if (pfx) e.pfx[e.npfx++] = pfx;
    e.op[0] = 0x0f;
    e.op[1] = op;
    e.nop = 2;
    e.reg = xreg;
    struct operand rm = mem_ok && chance(&g->rng, 30) ? mem_operand(g, msize, align, -1, -1) : reg_operand(rnd_reg(g));
    if (imm >= 0) set_imm(&e, (uint64_t)imm, 1);
    emit(g, &e, &rm);
}

static void gen_sse_mov(struct gen *g)
{
    int x = rnd_reg(g);
    switch (rn(&g->rng, 9)) {
    case 0: sse_emit(g, 0x66, chance(&g->rng, 50) ? 0x6f : 0x7f, x, true, 16, 16, -1); break; /* movdqa */
    case 1: sse_emit(g, 0xf3, chance(&g->rng, 50) ? 0x6f : 0x7f, x, true, 16, 1, -1); break;  /* movdqu */
    case 2: sse_emit(g, 0, (uint8_t)(0x28 + rn(&g->rng, 2)), x, true, 16, 16, -1); break;     /* movaps */
    case 3: sse_emit(g, 0, (uint8_t)(0x10 + rn(&g->rng, 2)), x, true, 16, 1, -1); break;      /* movups */
    case 4: sse_emit(g, 0xf2, (uint8_t)(0x10 + rn(&g->rng, 2)), x, true, 8, 1, -1); break;    /* movsd */
    case 5: sse_emit(g, 0xf3, (uint8_t)(0x10 + rn(&g->rng, 2)), x, true, 4, 1, -1); break;    /* movss */
    case 6: sse_emit(g, 0xf3, 0x7e, x, true, 8, 1, -1); break;                                 /* movq x, xm64 */
    case 7: sse_emit(g, 0x66, 0xd6, x, true, 8, 1, -1); break;                                 /* movq xm64, x */
    default: { /* movd/movq between xmm and r/m32/64 */
        struct enc e = {.pfx = {0x66}, .npfx = 1, .op = {0x0f, chance(&g->rng, 50) ? 0x6e : 0x7e}, .nop = 2};
        e.rex_w = chance(&g->rng, 50);
        e.reg = x;
        bool to_gpr = e.op[1] == 0x7e;
        struct operand rm = chance(&g->rng, 30) ? mem_operand(g, e.rex_w ? 8 : 4, 1, -1, -1)
                                                : reg_operand(to_gpr ? rnd_dst(g) : rnd_reg(g));
        emit(g, &e, &rm);
        break;
    }
    }
}

static void gen_sse_int(struct gen *g)
{
    static const uint8_t ops[] = {
        0xfc, 0xfd, 0xfe, 0xd4, 0xf8, 0xf9, 0xfa, 0xfb, 0xec, 0xed, 0xdc, 0xdd, 0xe8, 0xe9, 0xd8, 0xd9,
        0xd5, 0xe5, 0xe4, 0xf4, 0xf5, 0xdb, 0xdf, 0xeb, 0xef, 0x74, 0x75, 0x76, 0x64, 0x65, 0x66, 0xda,
        0xde, 0xea, 0xee, 0xe0, 0xe3, 0xf6, 0x60, 0x61, 0x62, 0x68, 0x69, 0x6a, 0x6c, 0x6d, 0x63, 0x6b,
        0x67, 0xd1, 0xd2, 0xd3, 0xe1, 0xe2, 0xf1, 0xf2, 0xf3};
    int x = rnd_reg(g);
    unsigned k = rn(&g->rng, 10);
    if (k < 7) {
        sse_emit(g, 0x66, ops[rn(&g->rng, sizeof(ops))], x, true, 16, 16, -1);
    } else if (k == 7) { /* shift by immediate: 66 0F 71/72/73 /digit ib, register only */
        static const struct { uint8_t op, digit; } sh[] = {
            {0x71, 2}, {0x71, 4}, {0x71, 6}, {0x72, 2}, {0x72, 4}, {0x72, 6}, {0x73, 2}, {0x73, 3}, {0x73, 6}, {0x73, 7}};
        unsigned i = rn(&g->rng, 10);
        struct enc e = {.pfx = {0x66}, .npfx = 1, .op = {0x0f, sh[i].op}, .nop = 2, .reg = sh[i].digit};
        set_imm(&e, rn(&g->rng, 70), 1);
        struct operand rm = reg_operand(x);
        emit(g, &e, &rm);
    } else if (k == 8) { /* pshufd / pshufhw / pshuflw */
        static const uint8_t p[] = {0x66, 0xf3, 0xf2};
        sse_emit(g, p[rn(&g->rng, 3)], 0x70, x, true, 16, 16, (int)rn(&g->rng, 256));
    } else { /* pmovmskb r32, xmm */
        struct enc e = {.pfx = {0x66}, .npfx = 1, .op = {0x0f, 0xd7}, .nop = 2, .reg = rnd_dst(g)};
        struct operand rm = reg_operand(rnd_reg(g));
        emit(g, &e, &rm);
    }
}

static void gen_sse_fp(struct gen *g)
{
    static const uint8_t arith[] = {0x58, 0x59, 0x5c, 0x5e, 0x5d, 0x5f, 0x51, 0x54, 0x55, 0x56, 0x57};
    static const uint8_t pfxs[] = {0, 0x66, 0xf3, 0xf2};
    int x = rnd_reg(g);
    unsigned k = rn(&g->rng, 10);
    if (k < 6) {
        uint8_t op = arith[rn(&g->rng, sizeof(arith))];
        uint8_t p = op >= 0x54 && op <= 0x57 ? pfxs[rn(&g->rng, 2)] : pfxs[rn(&g->rng, 4)];
        unsigned msize = p == 0xf3 ? 4 : p == 0xf2 ? 8 : 16;
        sse_emit(g, p, op, x, true, msize, msize == 16 ? 16 : 1, -1);
    } else if (k == 6) { /* (u)comiss / (u)comisd */
        uint8_t p = chance(&g->rng, 50) ? 0x66 : 0;
        sse_emit(g, p, (uint8_t)(0x2e + rn(&g->rng, 2)), x, true, p ? 8 : 4, 1, -1);
        flags_set(g, OSZAPC, 0);
    } else if (k == 7) { /* conversions between packed/scalar formats */
        static const struct { uint8_t p, op; unsigned m; } cv[] = {
            {0, 0x5a, 8}, {0x66, 0x5a, 16}, {0xf2, 0x5a, 8}, {0xf3, 0x5a, 4}, {0, 0x5b, 16},
            {0x66, 0x5b, 16}, {0xf3, 0x5b, 16}, {0xf3, 0xe6, 8}, {0xf2, 0xe6, 16}, {0x66, 0xe6, 16}};
        unsigned i = rn(&g->rng, 10);
        sse_emit(g, cv[i].p, cv[i].op, x, true, cv[i].m, cv[i].m == 16 ? 16 : 1, -1);
    } else if (k == 8) { /* cvtsi2sd/ss x, r/m ; cvt(t)sd2si / cvt(t)ss2si r, xm */
        bool dbl = chance(&g->rng, 50);
        struct enc e = {.pfx = {(uint8_t)(dbl ? 0xf2 : 0xf3)}, .npfx = 1, .op = {0x0f, 0x2a}, .nop = 2};
        e.rex_w = chance(&g->rng, 50);
        unsigned which = rn(&g->rng, 3);
        struct operand rm;
        if (which == 0) {
            e.reg = x;
            rm = chance(&g->rng, 30) ? mem_operand(g, e.rex_w ? 8 : 4, 1, -1, -1) : reg_operand(rnd_reg(g));
        } else {
            e.op[1] = which == 1 ? 0x2c : 0x2d;
            e.reg = rnd_dst(g);
            rm = chance(&g->rng, 30) ? mem_operand(g, dbl ? 8 : 4, 1, e.reg, -1) : reg_operand(rnd_reg(g));
        }
        emit(g, &e, &rm);
    } else { /* shufps / shufpd, movmskps/pd */
        if (chance(&g->rng, 50)) {
            sse_emit(g, chance(&g->rng, 50) ? 0x66 : 0, 0xc6, x, true, 16, 16, (int)rn(&g->rng, 256));
        } else {
            struct enc e = {.op = {0x0f, 0x50}, .nop = 2, .reg = rnd_dst(g)};
            if (chance(&g->rng, 50)) e.pfx[e.npfx++] = 0x66;
            struct operand rm = reg_operand(rnd_reg(g));
            emit(g, &e, &rm);
        }
    }
}

/* x87: loads, stores, arithmetic, compares, control word changes (rounding and precision),
 * integer conversions. Transcendental instructions are left out: their last-bit results are
 * implementation-specific. The stack depth is tracked so nothing overflows or underflows. */
static void x87_mem(struct gen *g, uint8_t op, int digit, unsigned size)
{
    struct enc e = {.op = {op}, .nop = 1, .reg = digit};
    struct operand rm = mem_operand(g, size, 1, -1, -1);
    emit(g, &e, &rm);
}

static void gen_x87(struct gen *g)
{
    unsigned d = g->x87_depth;
    unsigned k = rn(&g->rng, 17);
    if (d == 0 && k >= 4) k = rn(&g->rng, 4);     /* only pushes on an empty stack */
    if (d == 8 && k < 4) k = 4 + rn(&g->rng, 13); /* no pushes on a full one */
    unsigned i = d ? rn(&g->rng, d) : 0;          /* a valid ST(i) */
    switch (k) {
    case 0: { /* FLD m32 / m64 / m80, FILD m16 / m32 / m64 */
        static const struct { uint8_t op; int digit; unsigned size; } ld[] = {
            {0xd9, 0, 4}, {0xdd, 0, 8}, {0xdb, 5, 10}, {0xdf, 0, 2}, {0xdb, 0, 4}, {0xdf, 5, 8}};
        unsigned j = rn(&g->rng, 6);
        x87_mem(g, ld[j].op, ld[j].digit, ld[j].size);
        g->x87_depth++;
        break;
    }
    case 1: /* FLD1 FLDZ FLDPI FLDL2E FLDLN2 */
        b(g, 0xd9);
        b(g, (uint8_t)(0xe8 + "\0\6\3\2\5"[rn(&g->rng, 5)]));
        g->x87_depth++;
        break;
    case 2: case 3: /* FLD ST(i) */
        if (d == 0) {
            x87_mem(g, 0xdd, 0, 8);
        } else {
            b(g, 0xd9);
            b(g, (uint8_t)(0xc0 + i));
        }
        g->x87_depth++;
        break;
    case 4: case 5: case 6: { /* FADD/FMUL/FSUB/FSUBR/FDIV/FDIVR: ST(0),ST(i) | ST(i),ST(0) | ...P | m32/m64 */
        unsigned op = rn(&g->rng, 8);
        if (op == 2 || op == 3) op += 2; /* skip FCOM/FCOMP here */
        unsigned form = rn(&g->rng, 4);
        if (form == 0) {
            b(g, 0xd8);
            b(g, (uint8_t)(0xc0 + op * 8 + i));
        } else if (form == 1) {
            b(g, 0xdc);
            b(g, (uint8_t)(0xc0 + op * 8 + i));
        } else if (form == 2 && d >= 2) {
            b(g, 0xde);
            b(g, (uint8_t)(0xc0 + op * 8 + (i ? i : 1)));
            g->x87_depth--;
        } else {
            x87_mem(g, chance(&g->rng, 50) ? 0xd8 : 0xdc, (int)op, 8);
        }
        break;
    }
    case 7: /* FCHS FABS FTST FXAM FSQRT FRNDINT, and with ST(1) present FSCALE FPREM FPREM1 */
        b(g, 0xd9);
        b(g, (uint8_t)"\xe0\xe1\xe4\xe5\xfa\xfc\xfd\xf8\xf5"[rn(&g->rng, d >= 2 ? 9 : 6)]);
        break;
    case 8: /* FXCH ST(i) */
        b(g, 0xd9);
        b(g, (uint8_t)(0xc8 + i));
        break;
    case 9: { /* FCOMI / FUCOMI / FCOMIP / FUCOMIP ST(0), ST(i) */
        bool pop = d >= 2 && chance(&g->rng, 40);
        b(g, pop ? 0xdf : 0xdb);
        b(g, (uint8_t)((chance(&g->rng, 50) ? 0xf0 : 0xe8) + i));
        if (pop) g->x87_depth--;
        flags_set(g, OSZAPC, 0);
        break;
    }
    case 10: /* FCOM / FCOMP m64 or ST(i), then FNSTSW AX */
        if (chance(&g->rng, 50)) {
            b(g, 0xd8);
            b(g, (uint8_t)(0xd0 + i));
        } else {
            x87_mem(g, 0xdc, 2, 8);
        }
        b(g, 0xdf);
        b(g, 0xe0);
        break;
    case 11: case 12: { /* FST/FSTP m32/m64/m80, FIST m16, FISTP m32/m64 */
        static const struct { uint8_t op; int digit; unsigned size; bool pop; } st[] = {
            {0xd9, 2, 4, false}, {0xd9, 3, 4, true}, {0xdd, 2, 8, false}, {0xdd, 3, 8, true},
            {0xdb, 7, 10, true}, {0xdf, 2, 2, false}, {0xdb, 3, 4, true}, {0xdf, 7, 8, true}};
        unsigned j = rn(&g->rng, 8);
        x87_mem(g, st[j].op, st[j].digit, st[j].size);
        if (st[j].pop) g->x87_depth--;
        break;
    }
    case 13: { /* FLDCW: masked exceptions, random rounding and precision control */
        uint64_t t = rnd_target(g, 2, 2);
        static const uint16_t pc[] = {0x000, 0x200, 0x300};
        uint16_t cw = (uint16_t)(0x7f | pc[rn(&g->rng, 3)] | (rn(&g->rng, 4) << 10));
        struct operand abs = {.mem = true, .kind = MK_ABS, .disp = (int32_t)t, .target = t};
        struct enc mv = {.pfx = {0x66}, .npfx = 1, .op = {0xc7}, .nop = 1};
        set_imm(&mv, cw, 2);
        emit(g, &mv, &abs);
        struct enc ld = {.op = {0xd9}, .nop = 1, .reg = 5};
        emit(g, &ld, &abs);
        break;
    }
    case 14: /* FSTP ST(i) / FFREE-free: pop into a register */
        b(g, 0xdd);
        b(g, (uint8_t)(0xd8 + i));
        g->x87_depth--;
        break;
    case 15: { /* transcendentals (the emulator uses the host FPU, so even these match) */
        static const struct { uint8_t op; int need, push; } tr[] = {
            {0xf0, 1, 0}, {0xfe, 1, 0}, {0xff, 1, 0}, /* F2XM1 FSIN FCOS */
            {0xf2, 1, 1}, {0xfb, 1, 1}, {0xf4, 1, 1}, /* FPTAN FSINCOS FXTRACT */
            {0xf3, 2, -1}, {0xf1, 2, -1}, {0xf9, 2, -1}, /* FPATAN FYL2X FYL2XP1 */
        };
        unsigned j;
        do j = rn(&g->rng, 9); while ((int)d < tr[j].need || (tr[j].push > 0 && d == 8));
        b(g, 0xd9);
        b(g, tr[j].op);
        g->x87_depth = (unsigned)((int)g->x87_depth + tr[j].push);
        break;
    }
    default: /* FNSTSW m16 / FNSTCW m16 */
        x87_mem(g, chance(&g->rng, 50) ? 0xdd : 0xd9, 7, 2);
        break;
    }
}

/* MMX: moves and integer arithmetic on MM registers, ending with EMMS (which empties the x87
 * stack: the x87 generator starts over from depth 0). */
static void gen_mmx(struct gen *g)
{
    static const uint8_t ops[] = {0xfc, 0xfd, 0xfe, 0xd4, 0xf8, 0xf9, 0xfa, 0xfb, 0xec, 0xed, 0xdc, 0xdd,
                                  0xe8, 0xe9, 0xd8, 0xd9, 0xd5, 0xe5, 0xf5, 0xdb, 0xdf, 0xeb, 0xef, 0x74,
                                  0x75, 0x76, 0x64, 0x65, 0x66, 0x60, 0x61, 0x62, 0x68, 0x69, 0x6a, 0x63,
                                  0x6b, 0x67, 0xd1, 0xd2, 0xd3, 0xe1, 0xe2, 0xf1, 0xf2, 0xf3, 0xe4, 0xf4};
    unsigned n = 1 + rn(&g->rng, 4);
    for (unsigned j = 0; j < n; j++) {
        int mm = (int)rn(&g->rng, 8);
        struct enc e = {.op = {0x0f, 0}, .nop = 2, .reg = mm};
        struct operand rm;
        unsigned k = rn(&g->rng, 6);
        if (k == 0) { /* movq mm, mm/m64 */
            e.op[1] = 0x6f;
            rm = chance(&g->rng, 50) ? mem_operand(g, 8, 1, -1, -1) : (struct operand){.reg = (int)rn(&g->rng, 8)};
        } else if (k == 1) { /* movd/movq mm, r/m */
            e.op[1] = 0x6e;
            e.rex_w = chance(&g->rng, 50);
            rm = reg_operand(rnd_reg(g));
        } else if (k == 2) { /* movd/movq r/m, mm */
            e.op[1] = 0x7e;
            e.rex_w = chance(&g->rng, 50);
            rm = chance(&g->rng, 30) ? mem_operand(g, e.rex_w ? 8 : 4, 1, -1, -1) : reg_operand(rnd_dst(g));
        } else {
            e.op[1] = ops[rn(&g->rng, sizeof(ops))];
            rm = chance(&g->rng, 30) ? mem_operand(g, 8, 1, -1, -1) : (struct operand){.reg = (int)rn(&g->rng, 8)};
        }
        emit(g, &e, &rm);
    }
    b(g, 0x0f);
    b(g, 0x77); /* emms */
    g->x87_depth = 0;
}

/* Odds and ends: SHLD/SHRD, BSWAP, POPCNT, CBW..CQO, CMPXCHG8B/16B, XLAT, CLC/STC/CMC,
 * multi-byte NOP, PAUSE, XCHG eax,eax (which zero-extends, unlike NOP). */
static void gen_misc(struct gen *g)
{
    struct enc e = {0};
    switch (rn(&g->rng, 9)) {
    case 0: { /* SHLD/SHRD r/m, r, imm8 | CL */
        unsigned size = rnd_size248(g);
        set_osize(&e, size);
        bool cl = chance(&g->rng, 50), left = chance(&g->rng, 50);
        unsigned limit = size == 2 ? 16 : size * 8; /* 16-bit counts above 16 give undefined results */
        unsigned count = rn(&g->rng, limit + 1);
        if (size == 2) count = rn(&g->rng, 17);
        int src = rnd_reg(g);
        if (cl && src == 1) src = 0;
        struct operand rm = chance(&g->rng, 30) ? mem_operand(g, size, 1, src, 1) : reg_operand(rnd_dst_not(g, 1, -1));
        if (cl) emit_mov_r32(g, 1, count);
        e.op[0] = 0x0f;
        e.op[1] = (uint8_t)((left ? 0xa4 : 0xac) + (cl ? 1 : 0));
        e.nop = 2;
        e.reg = src;
        if (!cl) set_imm(&e, count, 1);
        emit(g, &e, &rm);
        unsigned masked = count & (size == 8 ? 63 : 31);
        if (masked) flags_set(g, OSZAPC, x86_undefined(XF_SHXD, &(struct x86_operands){.size = size, .count = masked}).flags);
        break;
    }
    case 1: { /* BSWAP r32 / r64 */
        int r = rnd_dst(g);
        int rex = (chance(&g->rng, 50) ? 8 : 0) | (r >= 8 ? 1 : 0);
        if (rex) b(g, (uint8_t)(0x40 | rex));
        b(g, 0x0f);
        b(g, (uint8_t)(0xc8 + (r & 7)));
        break;
    }
    case 2: { /* POPCNT r, r/m */
        unsigned size = rnd_size248(g);
        e.pfx[e.npfx++] = 0xf3;
        set_osize(&e, size);
        int dst = rnd_dst(g);
        struct operand rm = chance(&g->rng, 30) ? mem_operand(g, size, 1, dst, -1) : reg_operand(rnd_reg(g));
        e.op[0] = 0x0f;
        e.op[1] = 0xb8;
        e.nop = 2;
        e.reg = dst;
        emit(g, &e, &rm);
        flags_set(g, OSZAPC, 0);
        break;
    }
    case 3: { /* CBW CWDE CDQE CWD CDQ CQO */
        unsigned size = rnd_size248(g);
        if (size == 2) b(g, 0x66);
        if (size == 8) b(g, 0x48);
        b(g, chance(&g->rng, 50) ? 0x98 : 0x99);
        break;
    }
    case 4: { /* CMPXCHG8B / CMPXCHG16B m */
        bool wide = chance(&g->rng, 50);
        struct operand rm = mem_operand(g, wide ? 16 : 8, wide ? 16 : 1, 0, 2);
        if (chance(&g->rng, 50)) { /* make the compare succeed: load RDX:RAX from the operand */
            struct enc ld = {.rex_w = true, .op = {0x8b}, .nop = 1, .reg = 0};
            struct operand lo = {.mem = true, .kind = MK_ABS, .disp = (int32_t)rm.target, .target = rm.target};
            emit(g, &ld, &lo);
            if (wide) {
                struct operand hi = {.mem = true, .kind = MK_ABS, .disp = (int32_t)(rm.target + 8), .target = rm.target + 8};
                ld.reg = 2;
                emit(g, &ld, &hi);
            } else {
                struct operand hi = {.mem = true, .kind = MK_ABS, .disp = (int32_t)(rm.target + 4), .target = rm.target + 4};
                struct enc ld32 = {.op = {0x8b}, .nop = 1, .reg = 2};
                emit(g, &ld32, &hi);
                struct enc ld32a = {.op = {0x8b}, .nop = 1, .reg = 0};
                emit(g, &ld32a, &lo);
            }
        }
        if (chance(&g->rng, 30)) e.pfx[e.npfx++] = 0xf0;
        e.rex_w = wide;
        e.op[0] = 0x0f;
        e.op[1] = 0xc7;
        e.nop = 2;
        e.reg = 1;
        emit(g, &e, &rm);
        flags_set(g, RFLAGS_ZF, 0);
        break;
    }
    case 5: /* XLAT: AL = [RBX + AL] */
        emit_mov_r32(g, 3, (uint32_t)rnd_target(g, 256, 1));
        b(g, 0xd7);
        break;
    case 6: /* CLC / STC / CMC */
        if (chance(&g->rng, 33)) {
            b(g, 0xf8);
        } else if (chance(&g->rng, 50)) {
            b(g, 0xf9);
        } else {
            define_flags(g, RFLAGS_CF);
            b(g, 0xf5);
        }
        g->undef &= ~RFLAGS_CF;
        break;
    case 7: { /* multi-byte NOP 0F 1F /0 with a memory form (never accessed), PAUSE */
        if (chance(&g->rng, 50)) {
            b(g, 0xf3);
            b(g, 0x90);
        } else {
            struct operand rm = {.mem = true, .kind = MK_BASE_INDEX, .base = rnd_reg(g), .index = 0, .scale = 1,
                                 .disp = (int32_t)rnd(&g->rng)};
            struct enc nop = {.op = {0x0f, 0x1f}, .nop = 2, .reg = 0};
            if (chance(&g->rng, 30)) nop.pfx[nop.npfx++] = 0x66;
            emit(g, &nop, &rm);
        }
        break;
    }
    default: /* XCHG eax, eax (87 C0): zero-extends RAX */
        b(g, 0x87);
        b(g, 0xc0);
        break;
    }
}

/* Self-modifying code: a store patches the immediate of an instruction ahead (possibly already
 * decoded into the emulator's block cache) or of one that already ran and runs again. */
static void gen_smc(struct gen *g)
{
    int r = rnd_dst_not(g, 1, -1);
    uint8_t rex = (uint8_t)(0x48 | (r >= 8 ? 1 : 0)), modrm = (uint8_t)(0xc0 | (r & 7));
    uint8_t newimm = (uint8_t)rnd(&g->rng);
    if (chance(&g->rng, 50)) {
        /* mov byte [rip+3+gap], imm8 ; (gap bytes of nop) ; add r64, imm8 */
        unsigned gap = rn(&g->rng, 3);
        b(g, 0xc6);
        b(g, 0x05);
        b32(g, 3 + gap);
        b(g, newimm);
        for (unsigned i = 0; i < gap; i++) b(g, 0x90);
        b(g, rex);
        b(g, 0x83);
        b(g, modrm);
        b(g, (uint8_t)rnd(&g->rng));
    } else {
        /* mov ecx, 2 ; L: add r64, imm8 ; mov byte [rip-8], imm8 (L+3) ; loop L */
        emit_mov_r32(g, 1, 2);
        b(g, rex);
        b(g, 0x83);
        b(g, modrm);
        b(g, (uint8_t)rnd(&g->rng));
        b(g, 0xc6);
        b(g, 0x05);
        b32(g, (uint32_t)-8);
        b(g, newimm);
        b(g, 0xe2);
        b(g, (uint8_t)-13);
    }
    flags_set(g, OSZAPC, 0);
}

/* Page faults in the middle of an access: stores straddling into the read-only page (nothing
 * may be written, error code W|U|P, CR2 the first faulting byte), loads straddling into the
 * not-present page, and REP MOVSB/STOSB running into the read-only page (the bytes before it
 * are written and RCX/RSI/RDI show the progress). Ends the sequence. */
static void gen_pagefault(struct gen *g)
{
    unsigned kind = rn(&g->rng, 4);
    if (kind == 0) { /* store straddling RW -> RO */
        unsigned size = 2u << rn(&g->rng, 4); /* 2 4 8 16 */
        uint64_t t = RO_PAGE - 1 - rn(&g->rng, size - 1);
        struct operand abs = {.mem = true, .kind = MK_ABS, .disp = (int32_t)t, .target = t};
        struct enc e = {0};
        if (size == 16) { /* movdqu [t], xmm */
            e.pfx[e.npfx++] = 0xf3;
            e.op[0] = 0x0f;
            e.op[1] = 0x7f;
            e.nop = 2;
            e.reg = rnd_reg(g);
        } else {
            set_osize(&e, size);
            e.op[0] = 0x89;
            e.nop = 1;
            e.reg = rnd_reg(g);
        }
        emit(g, &e, &abs);
    } else if (kind == 1) { /* load straddling RO -> not present */
        unsigned size = 2u << rn(&g->rng, 4);
        uint64_t t = NP_PAGE - 1 - rn(&g->rng, size - 1);
        struct operand abs = {.mem = true, .kind = MK_ABS, .disp = (int32_t)t, .target = t};
        struct enc e = {.nop = 1, .reg = rnd_dst(g)};
        if (size == 16) {
            e.pfx[e.npfx++] = 0xf3;
            e.op[0] = 0x0f;
            e.op[1] = 0x6f;
            e.nop = 2;
        } else {
            set_osize(&e, size);
            e.op[0] = 0x8b;
        }
        emit(g, &e, &abs);
    } else if (kind == 2) { /* rep movs/stos into the RO page */
        unsigned size = 1u << rn(&g->rng, 4);
        unsigned before = 1 + rn(&g->rng, 4); /* elements that fit before the page */
        emit_mov_r32(g, 6, (uint32_t)(DATA_WIN + 0x100));
        emit_mov_r32(g, 7, (uint32_t)(RO_PAGE - before * size));
        emit_mov_r32(g, 1, before + 1 + rn(&g->rng, 4));
        b(g, 0xf3);
        if (size == 2) b(g, 0x66);
        if (size == 8) b(g, 0x48);
        b(g, (uint8_t)((chance(&g->rng, 50) ? 0xa4 : 0xaa) + (size == 1 ? 0 : 1)));
    } else { /* whole access on the RO page (write) or the NP page (read) */
        bool write = chance(&g->rng, 50);
        uint64_t t = (write ? RO_PAGE : NP_PAGE) + rn(&g->rng, 0xff0);
        struct operand abs = {.mem = true, .kind = MK_ABS, .disp = (int32_t)t, .target = t};
        struct enc e = {.op = {(uint8_t)(write ? 0x89 : 0x8b)}, .nop = 1, .reg = write ? rnd_reg(g) : rnd_dst(g)};
        set_osize(&e, 4u << rn(&g->rng, 2));
        emit(g, &e, &abs);
    }
    g->ended = true;
}

/* Deliberate exceptions, delivered through the IDT in both: #DE, #UD, #GP (HLT at CPL3,
 * non-canonical access), #BP, #PF (write to the read-only... no: access to unmapped space). */
static void gen_exception(struct gen *g)
{
    switch (rn(&g->rng, 5)) {
    case 0: /* div by zero: xor ecx, ecx; div ecx */
        b(g, 0x31);
        b(g, 0xc9);
        b(g, 0xf7);
        b(g, 0xf1);
        break;
    case 1: /* ud2 */
        b(g, 0x0f);
        b(g, 0x0b);
        break;
    case 2: /* hlt: #GP(0) at CPL3 */
        b(g, 0xf4);
        break;
    case 3: /* int3 */
        b(g, 0xcc);
        break;
    default: { /* load from a non-canonical address: #GP(0) */
        int r = rnd_dst(g);
        b(g, (uint8_t)(0x48 | (r >= 8 ? 1 : 0)));
        b(g, (uint8_t)(0xb8 + (r & 7)));
        uint64_t a = 0x8000000000000000ULL | (rnd(&g->rng) & 0xffffffffffffULL);
        for (int i = 0; i < 8; i++) b(g, (uint8_t)(a >> (8 * i)));
        /* mov r, [r] */
        struct enc e = {.rex_w = true, .op = {0x8b}, .nop = 1, .reg = r};
        struct operand rm = {.mem = true, .kind = MK_BASE, .base = r};
        emit(g, &e, &rm);
        break;
    }
    }
    g->ended = true;
}

typedef void (*gen_fn)(struct gen *g);
static void gen_alu_rr(struct gen *g) { gen_alu(g, false); }
static void gen_alu_mem(struct gen *g) { gen_alu(g, true); }
static const gen_fn class_gen[C_COUNT] = {
    gen_alu_rr, gen_alu_mem, gen_alu_imm, gen_incdec_neg_not, gen_shift, gen_muldiv, gen_mov, gen_lea,
    gen_cmov_setcc, gen_bt, gen_bsf_bsr, gen_string, gen_stack, gen_xchg, gen_branch, gen_sse_mov,
    gen_sse_int, gen_sse_fp, gen_x87, gen_mmx, gen_misc, gen_smc, gen_pagefault, gen_exception,
};

/* The end marker: mov [RIG_DONE_MMIO], al ; jmp $ (the emulator may run on to the end of its
 * block before it notices the stop; spinning in place keeps its state that of the store) */
#define END_LEN 9
static void gen_end(struct gen *g)
{
    b(g, 0x88);
    b(g, 0x04);
    b(g, 0x25);
    b32(g, (uint32_t)RIG_DONE_MMIO);
    b(g, 0xeb);
    b(g, 0xfe);
}

static void gen_case(struct gen *g, uint64_t seed, const bool *enabled)
{
    memset(g, 0, sizeof(*g));
    g->rng = splitmix(seed) | 1;
    memcpy(g->enabled, enabled, sizeof(g->enabled));
    /* one case in four runs across a page boundary (instructions straddling it, too) */
    g->code_base = chance(&g->rng, 25) ? GB_CODE + 0x1000 - 8 - rn(&g->rng, 120) : GB_CODE;
    unsigned n = chance(&g->rng, 20) ? 12 + rn(&g->rng, MAX_ITEMS - 13) : 1 + rn(&g->rng, 12); /* sometimes long */
    unsigned ncls = 0;
    int cls_list[C_COUNT];
    for (int c = 0; c < C_COUNT; c++)
        if (enabled[c] && c != C_EXCEPTION && c != C_PAGEFAULT) cls_list[ncls++] = c;
    for (unsigned i = 0; i < n && g->nitems < MAX_ITEMS - 1 && g->len < MAX_CODE - 100; i++) {
        int c;
        if (enabled[C_EXCEPTION] && i == n - 1 && chance(&g->rng, 5)) c = C_EXCEPTION;
        else if (enabled[C_PAGEFAULT] && i == n - 1 && chance(&g->rng, 5)) c = C_PAGEFAULT;
        else if (ncls == 0) break;
        else c = cls_list[rn(&g->rng, ncls)];
        struct item *it = &g->items[g->nitems++];
        it->off = (uint16_t)g->len;
        it->cls = (uint8_t)c;
        class_gen[c](g);
        it->len = (uint16_t)(g->len - it->off);
        it->undef_after = g->undef;
        if (g->ended) break;
    }
    gen_end(g);
}

/* Initial state and memory, from the case seed (independent of the code generator's stream). */
static void gen_state(uint64_t seed, uint64_t code_base, struct cpu_state *s, uint8_t *data, uint8_t *stack)
{
    uint64_t r = splitmix(seed ^ 0xabcdef) | 1;
    guest_cpl3_state(s, code_base);
    for (int i = 0; i < GPR_COUNT; i++) s->gpr[i] = rnd_value(&r);
    s->gpr[GPR_RSP] = START_RSP;
    s->seg[SEG_FS].base = FS_BASE_VAL;
    s->seg[SEG_GS].base = GS_BASE_VAL;
    /* kvm_pvm runs CPL3 code with IF=1 and IOPL=0 whatever the state says: start there. */
    s->rflags = RFLAGS_FIXED | RFLAGS_IF | (rnd(&r) & ARITH);
    static const uint32_t f32[] = {0, 0x80000000, 0x3f800000, 0xbf800000, 0x7f800000, 0xff800000, 0x7fc00000,
                                   0x7fa00000, 0x00000001, 0x807fffff, 0x7f7fffff, 0x4b000000};
    static const uint64_t f64[] = {0, 0x8000000000000000ULL, 0x3ff0000000000000ULL, 0xbff0000000000000ULL,
                                   0x7ff0000000000000ULL, 0xfff0000000000000ULL, 0x7ff8000000000000ULL,
                                   0x7ff4000000000000ULL, 1, 0x800fffffffffffffULL, 0x7fefffffffffffffULL,
                                   0x4330000000000000ULL, 0x41e0000000000000ULL, 0xc3e0000000000000ULL};
    for (int x = 0; x < 16; x++) {
        unsigned mode = (unsigned)(rnd(&r) % 4);
        for (int j = 0; j < 16; j += 8) {
            uint64_t v;
            if (mode == 0) v = rnd(&r);
            else if (mode == 1) v = f64[rnd(&r) % (sizeof(f64) / sizeof(f64[0]))] ^ (rnd(&r) % 4 == 0 ? rnd(&r) & 0xfffff : 0);
            else if (mode == 2) v = (uint64_t)f32[rnd(&r) % 12] | (uint64_t)f32[rnd(&r) % 12] << 32;
            else v = rnd(&r) & 0x00ff00ff00ff00ffULL;
            memcpy(&s->fx.xmm[x][j], &v, 8);
        }
    }
    /* MXCSR: all exceptions masked; random rounding mode, sometimes FTZ/DAZ. */
    s->fx.mxcsr = 0x1f80 | (uint32_t)((rnd(&r) % 4) << 13);
    if (rnd(&r) % 8 == 0) s->fx.mxcsr |= 0x8040;
    for (unsigned i = 0; i < DATA_WIN_SIZE; i += 8) {
        uint64_t v = rnd_value(&r);
        memcpy(data + i, &v, 8);
    }
    for (unsigned i = 0; i < STACK_SIZE; i += 8) {
        uint64_t v = rnd(&r);
        memcpy(stack + i, &v, 8);
    }
}

/* ---- running a case ------------------------------------------------------------------- */

struct outcome {
    struct cpu_state s;
    int exc_vector;
    enum vcpu_exit exit;
    enum machine_stop stop;
    uint8_t data[DATA_WIN_SIZE];
    uint8_t stack[STACK_SIZE];
    uint8_t kframe[GB_KSTACK_TOP - KFRAME_LO];
};

/* The emulator side: a machine without backend threads over its own RAM. */
struct emu_side {
    struct machine m;
    int exc_vector;
    struct emu_cpu cpu; /* reused across cases: its decoded-instruction cache is large to set up */
    bool cpu_ready;
};

static void emu_done(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct emu_side *e = opaque;
    if (is_write) machine_request_stop(&e->m, MACHINE_STOP_POWEROFF);
    else *data = 0;
}

static void emu_exc(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct emu_side *e = opaque;
    if (!is_write) {
        *data = ~0ULL;
        return;
    }
    e->exc_vector = (int)(*data & 0xff);
    machine_request_stop(&e->m, MACHINE_STOP_POWEROFF);
}

/* 4 KiB pages for the first 2 MiB: user read/write, except RO_PAGE (read-only) and NP_PAGE
 * (not present). Applied to both guests' RAM. */
static int setup_fault_pages(struct guest_mem *mem)
{
    int r = 0;
    for (uint64_t i = 0; i < 512; i++) {
        uint64_t pa = i << 12;
        uint64_t pte = pa | 0x7; /* P RW US */
        if (pa == RO_PAGE) pte = pa | 0x5;
        if (pa == NP_PAGE) pte = 0;
        r |= guest_mem_write(mem, FAULT_PT + 8 * i, &pte, 8);
    }
    uint64_t pde = FAULT_PT | 0x7;
    r |= guest_mem_write(mem, GB_PML4 + 0x2000, &pde, 8); /* PD[0] of the first page directory */
    return r ? -EFAULT : 0;
}

static int emu_side_init(struct emu_side *e)
{
    memset(e, 0, sizeof(*e));
    struct machine *m = &e->m;
    m->backend = &emu_backend_ops;
    m->ncpus = 0; /* no vCPU threads to kick */
    atomic_init(&m->stop, MACHINE_RUNNING);
    m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&m->dev_lock, NULL);
    bus_init(&m->pio);
    bus_init(&m->mmio);
    int r = guest_mem_init(&m->mem, DIFF_RAM);
    if (r == 0) r = guest_build_long_mode(&m->mem);
    if (r == 0) r = setup_fault_pages(&m->mem);
    if (r == 0) r = bus_register(&m->mmio, RIG_DONE_MMIO, 0x1000, emu_done, e, "diff-done");
    if (r == 0) r = bus_register(&m->pio, GB_EXC_PORT, 1, emu_exc, e, "diff-exception");
    return r;
}

static void emu_side_free(struct emu_side *e)
{
    if (e->cpu_ready) emu_cpu_destroy(&e->cpu);
    guest_mem_free(&e->m.mem);
    bus_free(&e->m.pio);
    bus_free(&e->m.mmio);
    pthread_mutex_destroy(&e->m.dev_lock);
    close(e->m.stop_fd);
}

static void write_case(struct guest_mem *mem, const struct gen *g, const uint8_t *data, const uint8_t *stack)
{
    uint8_t *code = guest_mem_ptr(mem, GB_CODE, 0x1000 + MAX_CODE + 16);
    memset(code, 0xcc, 0x1000 + MAX_CODE + 16); /* int3 around the code */
    memcpy(code + (g->code_base - GB_CODE), g->code, g->len);
    guest_mem_write(mem, DATA_WIN, data, DATA_WIN_SIZE);
    guest_mem_write(mem, STACK_LO, stack, STACK_SIZE);
    memset(guest_mem_ptr(mem, KFRAME_LO, sizeof(((struct outcome *)0)->kframe)), 0, sizeof(((struct outcome *)0)->kframe));
}

static void collect_memory(const struct guest_mem *mem, struct outcome *o)
{
    guest_mem_read(mem, DATA_WIN, o->data, DATA_WIN_SIZE);
    guest_mem_read(mem, STACK_LO, o->stack, STACK_SIZE);
    guest_mem_read(mem, KFRAME_LO, o->kframe, sizeof(o->kframe));
}

static void run_kvm(struct kvm_rig *rig, const struct gen *g, const struct cpu_state *init, const uint8_t *data,
                    const uint8_t *stack, struct outcome *o)
{
    write_case(&rig->m.mem, g, data, stack);
    o->exit = kvm_rig_run(rig, init, &o->stop);
    o->exc_vector = rig->exc_vector;
    kvm_backend_ops.get_state(&rig->m.vcpus[0], &o->s);
    collect_memory(&rig->m.mem, o);
}

static void run_emu(struct emu_side *e, const struct gen *g, const struct cpu_state *init, const uint8_t *data,
                    const uint8_t *stack, bool single_step, struct outcome *o)
{
    write_case(&e->m.mem, g, data, stack);
    e->exc_vector = -1;
    atomic_store(&e->m.stop, MACHINE_RUNNING);
    o->exit = VCPU_EXIT_ERROR;
    if (!e->cpu_ready) {
        if (emu_cpu_init(&e->cpu, &e->m) < 0) return;
        e->cpu_ready = true;
    }
    struct emu_cpu *cpu = &e->cpu;
    cpu->s = *init;
    cpu->exc_vector = -1;
    emu_set_rflags(cpu, init->rflags);
    emu_update_mode(cpu);
    emu_tlb_flush(cpu);
    emu_icache_flush(cpu); /* the code was rewritten behind its back */
    /* Either one instruction per call, or whole blocks (chained, as the backend runs them). */
    uint64_t budget = single_step ? 1 : 100000, ran = 0;
    while (ran < 200000 && machine_stop_requested(&e->m) == MACHINE_RUNNING) {
        ran += emu_exec(cpu, budget) + 1;
        if (cpu->s.halted) break;
    }
    o->stop = machine_stop_requested(&e->m);
    o->exit = o->stop == MACHINE_RUNNING ? VCPU_EXIT_ERROR : VCPU_EXIT_STOP;
    o->s = cpu->s;
    o->s.rflags = emu_get_rflags(cpu);
    o->exc_vector = e->exc_vector;
    collect_memory(&e->m.mem, o);
    uint64_t cnt;
    while (read(e->m.stop_fd, &cnt, sizeof(cnt)) > 0) {
    }
}

/* ---- comparison ------------------------------------------------------------------------- */

static const char *const gpr_names[GPR_COUNT] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                                 "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

/* Compare; print differences when `out` is set. Returns the number of differences. */
static int compare(const struct outcome *k, const struct outcome *e, uint64_t undef, FILE *out)
{
    int nd = 0;
#define DIFF(...)                                      \
    do {                                               \
        nd++;                                          \
        if (out) fprintf(out, "    " __VA_ARGS__);     \
    } while (0)
    if (k->stop != e->stop || k->exit != e->exit)
        DIFF("run ended differently: kvm exit %d stop %d, emu exit %d stop %d\n", k->exit, k->stop, e->exit, e->stop);
    if (k->exc_vector != e->exc_vector) DIFF("exception: kvm %d, emu %d\n", k->exc_vector, e->exc_vector);
    for (int i = 0; i < GPR_COUNT; i++)
        if (k->s.gpr[i] != e->s.gpr[i])
            DIFF("%-6s kvm %016" PRIx64 "  emu %016" PRIx64 "\n", gpr_names[i], k->s.gpr[i], e->s.gpr[i]);
    if (k->s.rip != e->s.rip) DIFF("rip    kvm %016" PRIx64 "  emu %016" PRIx64 "\n", k->s.rip, e->s.rip);
    uint64_t fmask = (ARITH | RFLAGS_DF) & ~undef;
    if ((k->s.rflags ^ e->s.rflags) & fmask)
        DIFF("rflags kvm %08" PRIx64 "  emu %08" PRIx64 " (compared bits %03" PRIx64 ")\n", k->s.rflags,
             e->s.rflags, fmask);
    for (int x = 0; x < 16; x++)
        if (memcmp(k->s.fx.xmm[x], e->s.fx.xmm[x], 16)) {
            uint64_t a[2], c[2];
            memcpy(a, k->s.fx.xmm[x], 16);
            memcpy(c, e->s.fx.xmm[x], 16);
            DIFF("xmm%-3d kvm %016" PRIx64 ":%016" PRIx64 "  emu %016" PRIx64 ":%016" PRIx64 "\n", x, a[1], a[0],
                 c[1], c[0]);
        }
    if (k->s.fx.mxcsr != e->s.fx.mxcsr) DIFF("mxcsr  kvm %08x  emu %08x\n", k->s.fx.mxcsr, e->s.fx.mxcsr);
    if (k->s.fx.fcw != e->s.fx.fcw) DIFF("fcw    kvm %04x  emu %04x\n", k->s.fx.fcw, e->s.fx.fcw);
    if (k->s.fx.fsw != e->s.fx.fsw) DIFF("fsw    kvm %04x  emu %04x\n", k->s.fx.fsw, e->s.fx.fsw);
    if (k->s.fx.ftw != e->s.fx.ftw) DIFF("ftw    kvm %02x  emu %02x\n", k->s.fx.ftw, e->s.fx.ftw);
    unsigned top = (k->s.fx.fsw >> 11) & 7;
    for (unsigned i = 0; i < 8; i++) {
        bool valid = (k->s.fx.ftw >> ((top + i) & 7)) & 1; /* stale contents of empty registers don't count */
        if (valid && memcmp(k->s.fx.st[i], e->s.fx.st[i], 10)) {
            uint64_t a, c;
            uint16_t ae, ce;
            memcpy(&a, k->s.fx.st[i], 8);
            memcpy(&ae, k->s.fx.st[i] + 8, 2);
            memcpy(&c, e->s.fx.st[i], 8);
            memcpy(&ce, e->s.fx.st[i] + 8, 2);
            DIFF("st%u    kvm %04x:%016" PRIx64 "  emu %04x:%016" PRIx64 "\n", i, ae, a, ce, c);
        }
    }
    if (k->s.seg[SEG_CS].selector != e->s.seg[SEG_CS].selector)
        DIFF("cs     kvm %04x  emu %04x\n", k->s.seg[SEG_CS].selector, e->s.seg[SEG_CS].selector);
    for (unsigned i = 0; i < DATA_WIN_SIZE; i++)
        if (k->data[i] != e->data[i]) {
            DIFF("mem %08" PRIx64 " kvm %02x  emu %02x\n", (uint64_t)(DATA_WIN + i), k->data[i], e->data[i]);
            if (nd > 40) return nd;
        }
    for (unsigned i = 0; i < STACK_SIZE; i++)
        if (k->stack[i] != e->stack[i]) {
            DIFF("stack %08" PRIx64 " kvm %02x  emu %02x\n", (uint64_t)(STACK_LO + i), k->stack[i], e->stack[i]);
            if (nd > 40) return nd;
        }
    if (k->exc_vector == 14 && e->exc_vector == 14 && k->s.cr2 != e->s.cr2)
        DIFF("cr2    kvm %016" PRIx64 "  emu %016" PRIx64 "\n", k->s.cr2, e->s.cr2);
    if (k->exc_vector >= 0 && k->exc_vector == e->exc_vector) {
        /* The exception frame: RFLAGS without RF (set by hardware for faults), the rest exactly. */
        for (unsigned i = 0; i < sizeof(k->kframe); i += 8) {
            uint64_t a, c;
            memcpy(&a, k->kframe + i, 8);
            memcpy(&c, e->kframe + i, 8);
            uint64_t addr = KFRAME_LO + i;
            if (addr == GB_FRAME_RFLAGS) {
                a &= ~(1ULL << 16) & ~undef;
                c &= ~(1ULL << 16) & ~undef;
            }
            if (a != c) DIFF("frame %08" PRIx64 " kvm %016" PRIx64 "  emu %016" PRIx64 "\n", addr, a, c);
        }
    }
#undef DIFF
    return nd;
}

/* ---- the test ------------------------------------------------------------------------------ */

struct diff_ctx {
    struct kvm_rig *rig;
    struct emu_side emu;
    bool enabled[C_COUNT];
    unsigned cases_with[C_COUNT], fails_in[C_COUNT];
    uint8_t data[DATA_WIN_SIZE], stack[STACK_SIZE];
    struct outcome ko, eo;
    bool single_step; /* run the emulator one instruction per emu_exec call (else whole blocks) */
};

static void print_case(FILE *f, const struct gen *g, unsigned upto)
{
    for (unsigned i = 0; i < upto && i < g->nitems; i++) {
        const struct item *it = &g->items[i];
        fprintf(f, "    [%2u] %-18s +%03x:", i, class_names[it->cls], it->off);
        for (unsigned j = 0; j < it->len; j++) fprintf(f, " %02x", g->code[it->off + j]);
        fprintf(f, "\n");
    }
}

/* Run the case truncated after `n` items (plus the end marker). Returns the difference count. */
static int run_prefix(struct diff_ctx *c, const struct gen *full, unsigned n, const struct cpu_state *init, FILE *out)
{
    static struct gen g;
    g = *full;
    g.len = n < full->nitems ? full->items[n].off : full->len - END_LEN;
    g.nitems = n;
    g.undef = full->items[n - 1].undef_after;
    gen_end(&g);
    run_kvm(c->rig, &g, init, c->data, c->stack, &c->ko);
    run_emu(&c->emu, &g, init, c->data, c->stack, c->single_step, &c->eo);
    return compare(&c->ko, &c->eo, g.undef, out);
}

/* Whether emu_exec runs instructions yet (a stub reports 0 executed): try one NOP. */
static bool emu_executes_instructions(struct diff_ctx *c)
{
    static struct emu_cpu cpu;
    static const uint8_t nop = 0x90;
    guest_load_code(&c->emu.m.mem, &nop, 1);
    if (emu_cpu_init(&cpu, &c->emu.m) < 0) return false;
    guest_cpl3_state(&cpu.s, GB_CODE);
    emu_set_rflags(&cpu, cpu.s.rflags);
    emu_update_mode(&cpu);
    emu_tlb_flush(&cpu);
    uint64_t n = emu_exec(&cpu, 1);
    bool ok = n == 1 && cpu.s.rip == GB_CODE + 1;
    emu_cpu_destroy(&cpu);
    return ok;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

/* The base seed: VMD_DIFF_SEED, or a fresh one per run (printed, so a failure can be replayed). */
static uint64_t diff_seed(void)
{
    static uint64_t seed; /* chosen once per process: both tests and the summary name the same one */
    if (!seed) seed = env_u64("VMD_DIFF_SEED", ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x5eed0fd1ffULL);
    return seed;
}

static int diff_setup(void **state)
{
    static struct diff_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    static char why[256];
    ctx.rig = kvm_rig_new(DIFF_RAM, why, sizeof(why));
    if (ctx.rig && (setup_fault_pages(&ctx.rig->m.mem) < 0 || emu_side_init(&ctx.emu) < 0)) {
        kvm_rig_free(ctx.rig);
        ctx.rig = NULL;
        snprintf(why, sizeof(why), "emulator-side machine set-up failed");
    }
    if (!ctx.rig) {
        print_message("skipped: %s\n", why);
        *state = NULL;
        return 0;
    }
    ctx.rig->timeout_ms = 2000;
    const char *cl = getenv("VMD_DIFF_CLASSES");
    for (int i = 0; i < C_COUNT; i++) ctx.enabled[i] = !cl || !*cl;
    if (cl && *cl) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", cl);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ","))
            for (int i = 0; i < C_COUNT; i++)
                if (!strcmp(tok, class_names[i])) ctx.enabled[i] = true;
    }
    *state = &ctx;
    return 0;
}

static int diff_teardown(void **state)
{
    struct diff_ctx *c = *state;
    if (c) {
        kvm_rig_free(c->rig);
        emu_side_free(&c->emu);
    }
    return 0;
}

static void test_emu_matches_kvm(void **state)
{
    struct diff_ctx *c = *state;
    if (!c) skip();
    if (!emu_cpu_init || !emu_exec || !emu_get_rflags || !emu_set_rflags || !emu_update_mode || !emu_tlb_flush ||
        !emu_cpu_destroy || !emu_icache_flush) {
        print_message("skipped: the emulator (vmm/emu) is not built yet\n");
        skip();
    }
    if (!emu_executes_instructions(c)) {
        print_message("skipped: the emulator's instruction execution (emu_exec) is a stub so far\n");
        skip();
    }
    uint64_t seed = diff_seed();
    print_message("emu-diff: seed %#" PRIx64 " (VMD_DIFF_SEED to replay); host %s\n", seed,
                  x86_vendor_name(x86_host_vendor()));
    unsigned ncases = (unsigned)env_u64("VMD_DIFF_CASES", DIFF_DEFAULT_CASES);
    long only = getenv("VMD_DIFF_ONLY") ? (long)env_u64("VMD_DIFF_ONLY", 0) : -1;
    bool verbose = env_u64("VMD_DIFF_VERBOSE", 0) != 0;
    unsigned failures = 0, ran = 0;
    static struct gen g;
    for (unsigned i = 0; i < ncases; i++) {
        if (only >= 0 && i != (unsigned)only) continue;
        uint64_t cs = splitmix(seed + i);
        gen_case(&g, cs, c->enabled);
        struct cpu_state init;
        gen_state(cs, g.code_base, &init, c->data, c->stack);
        c->single_step = (cs >> 40) & 1;
        bool seen[C_COUNT] = {0};
        for (unsigned j = 0; j < g.nitems; j++) seen[g.items[j].cls] = true;
        for (int j = 0; j < C_COUNT; j++) c->cases_with[j] += seen[j];
        run_kvm(c->rig, &g, &init, c->data, c->stack, &c->ko);
        run_emu(&c->emu, &g, &init, c->data, c->stack, c->single_step, &c->eo);
        ran++;
        if (verbose) {
            fprintf(stderr, "case %u:\n", i);
            print_case(stderr, &g, g.nitems);
        }
        if (c->ko.exit != VCPU_EXIT_STOP || c->ko.stop != MACHINE_STOP_POWEROFF) {
            fprintf(stderr, "emu-diff: case %u: the KVM run did not end cleanly (exit %d, stop %d): generator bug\n",
                    i, c->ko.exit, c->ko.stop);
            print_case(stderr, &g, g.nitems);
            failures++;
            continue;
        }
        if (c->ko.exc_vector >= 0 && !g.ended) {
            fprintf(stderr, "emu-diff: case %u: unexpected exception %d under KVM: generator bug\n", i,
                    c->ko.exc_vector);
            print_case(stderr, &g, g.nitems);
            failures++;
            continue;
        }
        if (compare(&c->ko, &c->eo, g.undef, NULL) == 0) continue;

        /* Shrink: the shortest prefix that still differs names the culprit item. */
        failures++;
        unsigned culprit = g.nitems;
        for (unsigned n = 1; n < g.nitems; n++) {
            if (run_prefix(c, &g, n, &init, NULL) != 0) {
                culprit = n;
                break;
            }
        }
        unsigned bad = culprit - 1;
        c->fails_in[g.items[bad].cls]++;
        if (failures <= 5) {
            fprintf(stderr, "\nemu-diff: MISMATCH case %u (reproduce: VMD_DIFF_SEED=0x%" PRIx64 " VMD_DIFF_ONLY=%u)\n", i,
                    seed, i);
            fprintf(stderr, "  first differing item: [%u] %s; emulator run %s; code up to it:\n", bad,
                    class_names[g.items[bad].cls], c->single_step ? "one instruction per emu_exec" : "in blocks");
            print_case(stderr, &g, culprit);
            fprintf(stderr, "  initial:");
            for (int r = 0; r < GPR_COUNT; r++)
                fprintf(stderr, "%s%s=%" PRIx64, r % 4 ? " " : "\n    ", gpr_names[r], init.gpr[r]);
            fprintf(stderr, "\n    rflags=%" PRIx64 " mxcsr=%x\n", init.rflags, init.fx.mxcsr);
            fprintf(stderr, "  differences after item %u (undefined flags %03" PRIx64 " masked):\n", bad,
                    g.items[bad].undef_after);
            run_prefix(c, &g, culprit, &init, stderr);
        }
    }
    fprintf(stderr, "emu-diff: seed 0x%" PRIx64 ", %u cases, %u mismatches\n", seed, ran, failures);
    for (int j = 0; j < C_COUNT; j++)
        if (c->enabled[j])
            fprintf(stderr, "emu-diff:   %-18s in %5u cases, %u mismatches\n", class_names[j], c->cases_with[j],
                    c->fails_in[j]);
    assert_int_equal(failures, 0);
}

/* The harness itself: every generated case ends cleanly under KVM (no exception it did not
 * ask for, no timeout) and runs the same twice, so a mismatch is the emulator's. */
static void test_generator_runs_cleanly_under_kvm(void **state)
{
    struct diff_ctx *c = *state;
    if (!c) skip();
    uint64_t seed = diff_seed() ^ 0x6e6e;
    unsigned ncases = (unsigned)env_u64("VMD_DIFF_GEN_CASES", 300);
    static struct gen g;
    static struct outcome first;
    unsigned bad = 0;
    for (unsigned i = 0; i < ncases; i++) {
        uint64_t cs = splitmix(seed + i);
        gen_case(&g, cs, c->enabled);
        struct cpu_state init;
        gen_state(cs, g.code_base, &init, c->data, c->stack);
        run_kvm(c->rig, &g, &init, c->data, c->stack, &first);
        run_kvm(c->rig, &g, &init, c->data, c->stack, &c->ko);
        bool clean = first.exit == VCPU_EXIT_STOP && first.stop == MACHINE_STOP_POWEROFF &&
                     (first.exc_vector < 0 || g.ended);
        int nd = compare(&first, &c->ko, g.undef, NULL);
        if (!clean || nd) {
            bad++;
            fprintf(stderr, "emu-diff generator: case %u (seed 0x%" PRIx64 "): %s (exit %d stop %d exception %d)\n", i,
                    seed, !clean ? "did not end cleanly" : "not deterministic", first.exit, first.stop,
                    first.exc_vector);
            print_case(stderr, &g, g.nitems);
            if (nd) compare(&first, &c->ko, g.undef, stderr);
        }
    }
    assert_int_equal(bad, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generator_runs_cleanly_under_kvm, diff_setup, diff_teardown),
        cmocka_unit_test_setup_teardown(test_emu_matches_kvm, diff_setup, diff_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
