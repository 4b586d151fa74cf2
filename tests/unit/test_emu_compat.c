/* Unit tests for compatibility mode: 32-bit code (CS.L=0, CS.D=1) at CPL3 under the testbed's
 * 64-bit page tables, GDT and IDT, as a 64-bit kernel runs i386 programs. Each program was
 * assembled with `as --32` (the source is in the comment above its bytes); the tests check the
 * registers, memory and segment state it leaves, the exception frames written by delivery from
 * compatibility mode, INT 0x80 / IRETQ and SYSCALL / SYSRETL round trips through 64-bit
 * handlers, #UD for what this mode does not decode, and the instructions that exist only outside
 * 64-bit mode (BCD adjust, SALC, ARPL) against the host CPU running the same bytes in its own
 * compatibility mode (Linux's 32-bit user code segment, selector 0x23).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "emu_exec_testbed.h"

#define SEL_UCODE32 TB_SEL_UCODE32
#define SEL_UDATA32 TB_SEL_UDATA32
#define SEL_GSDATA TB_SEL_DATA_AT_GB_DATA
#define GS_BASE GB_DATA

static int setup(void **state)
{
    struct testbed *tb = tb_new();
    assert_non_null(tb);
    /* IDT gate 0x80 (DPL 3) to a 64-bit handler at GB_CODE + 0x800 */
    assert_int_equal(guest_set_gate(&tb->m.mem, 0x80, GB_CODE + 0x800), 0);
    uint8_t *g = tb_ram(tb, GB_IDT + 16 * 0x80 + 5, 1);
    *g = 0xee;
    *state = tb;
    return 0;
}

static int teardown(void **state)
{
    tb_free(*state);
    return 0;
}

static uint32_t rd32(struct testbed *tb, uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, tb_ram(tb, gpa, 4), 4);
    return v;
}

static uint64_t rd64(struct testbed *tb, uint64_t gpa)
{
    uint64_t v;
    memcpy(&v, tb_ram(tb, gpa, 8), 8);
    return v;
}

/* Load `code` (and the 64-bit handlers at +0x800) and enter it in compatibility mode at CPL3 with
 * flat 32-bit segments; run until an exception stub reports a vector. Returns that vector. */
static int run32(struct testbed *tb, const uint8_t *code, size_t len, const uint8_t *handlers, size_t hlen)
{
    uint8_t image[0x900] = {0};
    assert_true(len <= 0x800 && hlen <= 0x100);
    memcpy(image, code, len);
    if (handlers) memcpy(image + 0x800, handlers, hlen);
    tb_start(tb, image, sizeof(image), 3);
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(tb_enter_compat(tb), 0);
    cpu->s.idtr.limit = 0x81 * 16 - 1;
    cpu->s.star = ((uint64_t)(SEL_UCODE32 & ~3) << 48) | ((uint64_t)GB_SEL_KCODE << 32);
    cpu->s.cstar = GB_CODE + 0x880;
    assert_false(cpu->long64);
    for (int i = 0; i < 1000 && tb->exc_count == 0; i++) emu_exec(cpu, 50);
    return tb->exc_vector;
}

static void test_compat_integer_stack_addressing(void **state)
{
    struct testbed *tb = *state;
    /*  0: mov $0x10,%eax; inc %eax (40); mov $5,%ebx; dec %ebx (4b); pusha; xor %eax,%eax;
     *     xor %ebx,%ebx; popa; push %eax; pop %edx; call f (4-byte return address)
     * 19: mov %eax,%esi; mov %eax,0x20000 (moffs32); mov $0xaabbccdd,%ecx; mov $0x1234,%cx (66)
     * 29: mov 0x20000,%ebx (ModRM mod 0 rm 5: absolute, not RIP-relative); mov $0xc000,%ebx;
     *     mov $0x10,%esi; addr16 mov %edx,4(%bx,%si) (67: 16-bit addressing, 0xc014)
     * 3d: mov $0xfffffff0,%eax; mov %edx,0x20020(%eax) (wraps at 4 GiB to 0x20010)
     * 48: mov $0x4b,%ax; mov %eax,%gs; mov %edx,%gs:0x40 (GS base 0x20000)
     * 55: push %ds; pop %es; add $5,%cl (82: 80 outside 64-bit mode); jmp 1f; ud2; 1: ud2
     * 60: f: lea (%ebx,%ebx,4),%eax; ret */
    static const uint8_t code[] = {
        0xb8, 0x10, 0x00, 0x00, 0x00, 0x40, 0xbb, 0x05, 0x00, 0x00, 0x00, 0x4b, 0x60, 0x31, 0xc0, 0x31, 0xdb,
        0x61, 0x50, 0x5a, 0xe8, 0x47, 0x00, 0x00, 0x00, 0x89, 0xc6, 0xa3, 0x00, 0x00, 0x02, 0x00, 0xb9, 0xdd,
        0xcc, 0xbb, 0xaa, 0x66, 0xb9, 0x34, 0x12, 0x8b, 0x1d, 0x00, 0x00, 0x02, 0x00, 0xbb, 0x00, 0xc0, 0x00,
        0x00, 0xbe, 0x10, 0x00, 0x00, 0x00, 0x67, 0x89, 0x50, 0x04, 0xb8, 0xf0, 0xff, 0xff, 0xff, 0x89, 0x90,
        0x20, 0x00, 0x02, 0x00, 0x66, 0xb8, 0x4b, 0x00, 0x8e, 0xe8, 0x65, 0x89, 0x15, 0x40, 0x00, 0x00, 0x00,
        0x1e, 0x07, 0x82, 0xc1, 0x05, 0xeb, 0x02, 0x0f, 0x0b, 0x0f, 0x0b, 0x8d, 0x04, 0x9b, 0xc3};
    memset(tb_ram(tb, GB_DATA, 0x100), 0, 0x100);
    tb->cpu.s.seg[SEG_ES] = (struct cpu_segment){.unusable = 1};
    assert_int_equal(run32(tb, code, sizeof(code), NULL, 0), EXC_UD);
    struct emu_cpu *cpu = &tb->cpu;
    /* the #UD frame: the second UD2, in the 32-bit code segment, on the CPL0 stack */
    assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE + 0x5e);
    assert_int_equal(rd64(tb, GB_FRAME_CS), SEL_UCODE32);
    assert_int_equal(rd64(tb, GB_FRAME_SS), SEL_UDATA32);
    assert_int_equal(rd64(tb, GB_FRAME_RSP), GB_STACK_TOP);
    /* registers (the stub pushed RAX and RDX: read them from the frame) */
    assert_int_equal((uint32_t)rd64(tb, GB_FRAME_RAX(false)), 0xffff004b);
    assert_int_equal((uint32_t)rd64(tb, GB_FRAME_RDX(false)), 0x11);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RBX], 0xc000);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RSI], 0x10);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RCX], 0xaabb1239);
    /* memory */
    /* the last use of the top slot: PUSH DS, 4 bytes (CALL/RET, PUSH/POP, PUSHA/POPA balanced) */
    assert_int_equal(rd32(tb, GB_STACK_TOP - 4), SEL_UDATA32);
    assert_int_equal(rd32(tb, GB_STACK_TOP - 16), 4);            /* PUSHA: EBX ... */
    assert_int_equal(rd32(tb, GB_STACK_TOP - 20), GB_STACK_TOP); /* ... and the ESP before it */
    assert_int_equal(rd32(tb, GB_DATA), 20);
    assert_int_equal(rd32(tb, 0xc014), 0x11);
    assert_int_equal(rd32(tb, GB_DATA + 0x10), 0x11);
    assert_int_equal(rd32(tb, GB_DATA + 0x40), 0x11);
    /* segments */
    assert_int_equal(cpu->s.seg[SEG_GS].selector, SEL_GSDATA);
    assert_int_equal(cpu->s.seg[SEG_GS].base, GS_BASE);
    assert_int_equal(cpu->s.seg[SEG_ES].selector, SEL_UDATA32);
    assert_false(cpu->s.seg[SEG_ES].unusable);
}

static void test_compat_int80_and_syscall_round_trips(void **state)
{
    struct testbed *tb = *state;
    /* mov $41,%eax; int $0x80; mov %eax,%ebx; mov $99,%eax; syscall; mov %eax,%edi;
     * dec %eax (48: not REX.W); mov %eax,%ecx; ud2 */
    static const uint8_t code[] = {0xb8, 0x29, 0x00, 0x00, 0x00, 0xcd, 0x80, 0x89, 0xc3, 0xb8, 0x63, 0x00,
                                   0x00, 0x00, 0x0f, 0x05, 0x89, 0xc7, 0x48, 0x89, 0xc1, 0x0f, 0x0b};
    /* 64-bit: +0x00 (INT 0x80 gate): add $1,%eax; iretq   +0x80 (CSTAR): add $1,%eax; sysretl */
    uint8_t handlers[0x85] = {0x83, 0xc0, 0x01, 0x48, 0xcf};
    memcpy(handlers + 0x80, (const uint8_t[]){0x83, 0xc0, 0x01, 0x0f, 0x07}, 5);
    assert_int_equal(run32(tb, code, sizeof(code), handlers, sizeof(handlers)), EXC_UD);
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RBX], 42);  /* INT 0x80 + IRETQ back to 32-bit code */
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RDI], 100); /* SYSCALL + SYSRETL */
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RCX], 99);
    assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE + 0x15);
    assert_int_equal(rd64(tb, GB_FRAME_CS), SEL_UCODE32); /* SYSRET's CS: STAR[63:48] | 3 */
    assert_int_equal(rd64(tb, GB_FRAME_SS), SEL_UDATA32); /* ... and SS: + 8 */
    assert_int_equal(rd64(tb, GB_FRAME_RSP), GB_STACK_TOP);
}

/* Encodings undefined in this mode raise #UD at the instruction: BOUND and LES/LDS with a
 * register operand (EVEX / VEX forms: no AVX), SYSENTER and SYSEXIT (#UD in long mode on AMD),
 * UD2, and 64-bit-only forms (SWAPGS is #UD outside 64-bit mode). */
static void test_compat_undefined_raise_ud(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t cases[][8] = {
        {0x62, 0xc0}, {0xc4, 0xc0}, {0xc5, 0xc0}, {0xc4, 0xe2, 0x79, 0x18, 0xc0}, {0x0f, 0x34}, {0x0f, 0x35},
        {0x0f, 0x0b}, {0x0f, 0x01, 0xf8},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t code[16];
        memcpy(code, cases[i], 8);
        memset(code + 8, 0x90, 8);
        assert_int_equal(run32(tb, code, sizeof(code), NULL, 0), EXC_UD);
        assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE);
    }
}

/* BOUND (#BR), INTO (#OF as a trap), AAM 0 (#DE), LES/LDS, ARPL, far CALL ptr16:32 into 64-bit
 * code and RETF back, PUSH/POP of DS/ES/SS and 16-bit operand forms. */
static void test_compat_legacy_only_instructions(void **state)
{
    struct testbed *tb = *state;
    /* bounds [0x20000] = {-5, 100} */
    const int32_t bounds[2] = {-5, 100};
    memcpy(tb_ram(tb, GB_DATA, 8), bounds, 8);
    /* mov $100,%eax; bound %eax,0x20000 (in range); mov $-6,%eax; bound %eax,0x20000 (#BR) */
    static const uint8_t bound[] = {0xb8, 0x64, 0, 0, 0, 0x62, 0x05, 0, 0, 0x02, 0, 0xb8, 0xfa, 0xff, 0xff, 0xff,
                                    0x62, 0x05, 0, 0, 0x02, 0};
    assert_int_equal(run32(tb, bound, sizeof(bound), NULL, 0), EXC_BR);
    assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE + 0x10); /* a fault: at the BOUND */
    /* mov $0x7f,%al; add $1,%al (OF); into (#OF, a trap: after INTO) */
    static const uint8_t into[] = {0xb0, 0x7f, 0x04, 0x01, 0xce, 0x90};
    guest_set_gate(&tb->m.mem, EXC_OF, GB_EXC_STUBS + 16 * EXC_OF);
    *(uint8_t *)tb_ram(tb, GB_IDT + 16 * EXC_OF + 5, 1) = 0xee; /* INTO checks the gate's DPL */
    assert_int_equal(run32(tb, into, sizeof(into), NULL, 0), EXC_OF);
    assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE + 5);
    /* mov $7,%al; aam $0 (#DE) */
    static const uint8_t aam0[] = {0xb0, 0x07, 0xd4, 0x00};
    assert_int_equal(run32(tb, aam0, sizeof(aam0), NULL, 0), EXC_DE);
    assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE + 2);
    /* [0x20010] = 0x11223344:0x004b (far pointer); les 0x20010,%ebx; lds 0x20010,%ecx;
     * mov $0x40,%dx; mov $0x43,%ax; arpl %dx,%ax (ZF=0: RPL 3 >= 0); arpl %ax,%dx (dx = 0x43, ZF=1);
     * setz %bl; push %es; pop %eax; ud2 */
    const uint8_t ptr[6] = {0x44, 0x33, 0x22, 0x11, 0x4b, 0x00};
    memcpy(tb_ram(tb, GB_DATA + 0x10, 6), ptr, 6);
    static const uint8_t les[] = {0xc4, 0x1d, 0x10, 0, 0x02, 0, 0xc5, 0x0d, 0x10, 0, 0x02, 0,
                                  0x66, 0xba, 0x40, 0, 0x66, 0xb8, 0x43, 0, 0x63, 0xd0, 0x63, 0xc2,
                                  0x0f, 0x94, 0xc3, 0x06, 0x58, 0x0f, 0x0b};
    assert_int_equal(run32(tb, les, sizeof(les), NULL, 0), EXC_UD);
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RCX], 0x11223344);
    assert_int_equal(cpu->s.seg[SEG_ES].selector, SEL_GSDATA);
    assert_int_equal(cpu->s.seg[SEG_DS].base, GS_BASE);
    assert_int_equal((uint16_t)rd64(tb, GB_FRAME_RDX(false)), 0x43);
    assert_int_equal((uint8_t)cpu->s.gpr[GPR_RBX], 1);
    assert_int_equal((uint16_t)rd64(tb, GB_FRAME_RAX(false)), SEL_GSDATA);
    /* far call from 32-bit code to a 64-bit code segment (KCODE is DPL 0: use the 64-bit user
     * code segment 0x23) and a 64-bit RETF (REX.W) back; then RETF-less: ud2.
     * lcall $0x23,$handler64; mov %eax,%esi; ud2 -- handler64: mov $0x1234,%eax; rex.w lret */
    uint8_t call[16] = {0x9a, 0, 0, 0, 0, 0x23, 0x00, 0x89, 0xc6, 0x0f, 0x0b};
    uint32_t target = (uint32_t)(GB_CODE + 0x800);
    memcpy(call + 1, &target, 4);
    /* the 32-bit far CALL pushed CS:EIP as two 4-byte slots; a 64-bit code segment returns with
     * a 32-bit RETF (no REX.W) */
    static const uint8_t handler64[] = {0xb8, 0x34, 0x12, 0, 0, 0xcb};
    assert_int_equal(run32(tb, call, sizeof(call), handler64, sizeof(handler64)), EXC_UD);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RSI], 0x1234);
    assert_int_equal(rd64(tb, GB_FRAME_CS), SEL_UCODE32);
    assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE + 9);
}

/* The SDM's worked examples of the BCD adjustments (the host oracle below checks them further
 * where the host can run 32-bit code). */
static void test_compat_bcd_sdm_examples(void **state)
{
    struct testbed *tb = *state;
    /* mov $0x79,%al; add $0x35,%al; daa; lahf; mov %ax,0x20000
     * mov $0x35,%al; sub $0x47,%al; das; lahf; mov %ax,0x20002
     * mov $0x108,%ax; add $9,%al; aaa; mov %ax,0x20004
     * mov $0x203,%ax; sub $5,%al; aas; mov %ax,0x20006
     * mov $0x3f,%al; aam; mov %ax,0x20008; aad; mov %ax,0x2000a
     * stc; salc; mov %al,0x2000c; clc; salc; mov %al,0x2000d; ud2 */
    static const uint8_t code[] = {
        0xb0, 0x79, 0x04, 0x35, 0x27, 0x9f, 0x66, 0xa3, 0x00, 0x00, 0x02, 0x00, 0xb0, 0x35, 0x2c, 0x47, 0x2f,
        0x9f, 0x66, 0xa3, 0x02, 0x00, 0x02, 0x00, 0x66, 0xb8, 0x08, 0x01, 0x04, 0x09, 0x37, 0x66, 0xa3, 0x04,
        0x00, 0x02, 0x00, 0x66, 0xb8, 0x03, 0x02, 0x2c, 0x05, 0x3f, 0x66, 0xa3, 0x06, 0x00, 0x02, 0x00, 0xb0,
        0x3f, 0xd4, 0x0a, 0x66, 0xa3, 0x08, 0x00, 0x02, 0x00, 0xd5, 0x0a, 0x66, 0xa3, 0x0a, 0x00, 0x02, 0x00,
        0xf9, 0xd6, 0xa2, 0x0c, 0x00, 0x02, 0x00, 0xf8, 0xd6, 0xa2, 0x0d, 0x00, 0x02, 0x00, 0x0f, 0x0b};
    memset(tb_ram(tb, GB_DATA, 16), 0x55, 16);
    assert_int_equal(run32(tb, code, sizeof(code), NULL, 0), EXC_UD);
    const uint16_t *w = tb_ram(tb, GB_DATA, 16);
    assert_int_equal(w[0], 0x1714); /* DAA: AL 0x14; AH = flags: CF AF PF */
    assert_int_equal(w[1], 0x9788); /* DAS: AL 0x88; CF AF PF SF */
    assert_int_equal(w[2], 0x0207); /* AAA */
    assert_int_equal(w[3], 0x0108); /* AAS */
    assert_int_equal(w[4], 0x0603); /* AAM 10: 63 = 6, 3 */
    assert_int_equal(w[5], 0x003f); /* AAD 10 */
    assert_int_equal(w[6], 0x00ff); /* SALC with CF set, then clear */
}

/* ---- host oracle: the same bytes in the host's compatibility mode --------------------------
 * A page at a fixed address below 4 GiB holds a 64-bit entry (saves the callee-saved registers
 * and RSP, switches to a stack in the page, LRETQ to CS 0x23), a 32-bit part that loads EAX..EDI
 * and EFLAGS from a block in the page, the instruction under test, the stores back, and a 32-bit
 * LRET to CS 0x33. Assembled with `as` (offsets: 64-bit entry 0x000, return 0x040; 32-bit load
 * 0x100, store 0x180; the instruction 0x200; block 0x300; saved RSP 0x340; stack top 0xff0). */
#define HOST32 0x3e000000UL
struct r32 {
    uint32_t eax, ebx, ecx, edx, esi, edi, eflags;
};
static uint8_t *host32_page;

static void host32_build(void)
{
    static const uint8_t entry64[] = {0x53, 0x55, 0x41, 0x54, 0x41, 0x55, 0x41, 0x56, 0x41, 0x57, 0x48, 0x89, 0x24,
                                      0x25, 0x40, 0x03, 0x00, 0x3e, 0xbc, 0xf0, 0x0f, 0x00, 0x3e, 0x6a, 0x23, 0x68,
                                      0x00, 0x01, 0x00, 0x3e, 0x48, 0xcb};
    static const uint8_t back64[] = {0x48, 0x8b, 0x24, 0x25, 0x40, 0x03, 0x00, 0x3e, 0x41, 0x5f,
                                     0x41, 0x5e, 0x41, 0x5d, 0x41, 0x5c, 0x5d, 0x5b, 0xc3};
    static const uint8_t load32[] = {0xa1, 0x00, 0x03, 0x00, 0x3e, 0x8b, 0x1d, 0x04, 0x03, 0x00, 0x3e, 0x8b,
                                     0x0d, 0x08, 0x03, 0x00, 0x3e, 0x8b, 0x15, 0x0c, 0x03, 0x00, 0x3e, 0x8b,
                                     0x35, 0x10, 0x03, 0x00, 0x3e, 0x8b, 0x3d, 0x14, 0x03, 0x00, 0x3e, 0xff,
                                     0x35, 0x18, 0x03, 0x00, 0x3e, 0x9d, 0xe9, 0xd1, 0x00, 0x00, 0x00};
    static const uint8_t store32[] = {0x9c, 0x8f, 0x05, 0x18, 0x03, 0x00, 0x3e, 0xa3, 0x00, 0x03, 0x00, 0x3e,
                                      0x89, 0x1d, 0x04, 0x03, 0x00, 0x3e, 0x89, 0x0d, 0x08, 0x03, 0x00, 0x3e,
                                      0x89, 0x15, 0x0c, 0x03, 0x00, 0x3e, 0x89, 0x35, 0x10, 0x03, 0x00, 0x3e,
                                      0x89, 0x3d, 0x14, 0x03, 0x00, 0x3e, 0x6a, 0x33, 0x68, 0x40, 0x00, 0x00,
                                      0x3e, 0xcb};
    memcpy(host32_page, entry64, sizeof(entry64));
    memcpy(host32_page + 0x40, back64, sizeof(back64));
    memcpy(host32_page + 0x100, load32, sizeof(load32));
    memcpy(host32_page + 0x180, store32, sizeof(store32));
}

static void host32_run(const uint8_t *insn, unsigned len, struct r32 *r)
{
    memcpy(host32_page + 0x200, insn, len);
    host32_page[0x200 + len] = 0xe9; /* jmp 0x180 */
    int32_t rel = 0x180 - (int32_t)(0x200 + len + 5);
    memcpy(host32_page + 0x201 + len, &rel, 4);
    memcpy(host32_page + 0x300, r, sizeof(*r));
    __builtin___clear_cache((char *)host32_page, (char *)host32_page + 4096);
    ((void (*)(void))(void *)host32_page)();
    memcpy(r, host32_page + 0x300, sizeof(*r));
}

/* Map the page and check in a child process that the host runs 32-bit code (a kernel without
 * IA32 emulation may not let it). Returns NULL with *why set when it cannot. */
static uint8_t *host32_setup(const char **why)
{
    if (host32_page) return host32_page;
    void *p = mmap((void *)HOST32, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)HOST32) {
        *why = "the host oracle's page at 0x3e000000 is not free";
        if (p != MAP_FAILED) munmap(p, 4096);
        return NULL;
    }
    host32_page = p;
    host32_build();
    pid_t pid = fork();
    if (pid == 0) {
        struct r32 r = {.eflags = 0x202};
        static const uint8_t nop = 0x90;
        host32_run(&nop, 1, &r);
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        *why = "the host does not run 32-bit code in compatibility mode (no IA32 emulation?)";
        munmap(host32_page, 4096);
        host32_page = NULL;
        return NULL;
    }
    return host32_page;
}

/* The same instruction under the emulator, in compatibility mode at CPL3, one instruction. */
static void emu32_run(struct testbed *tb, const uint8_t *insn, unsigned len, struct r32 *r)
{
    uint8_t code[16] = {0};
    memcpy(code, insn, len);
    tb_start(tb, code, sizeof(code), 3);
    assert_int_equal(tb_enter_compat(tb), 0);
    struct emu_cpu *cpu = &tb->cpu;
    const uint32_t *in = &r->eax;
    static const int gpr[6] = {GPR_RAX, GPR_RBX, GPR_RCX, GPR_RDX, GPR_RSI, GPR_RDI};
    for (int i = 0; i < 6; i++) cpu->s.gpr[gpr[i]] = in[i];
    emu_set_rflags(cpu, RFLAGS_FIXED | (r->eflags & ARITH_FLAGS));
    assert_int_equal(emu_exec(cpu, 1), 1);
    assert_int_equal(tb->exc_count, 0);
    uint32_t *out = &r->eax;
    for (int i = 0; i < 6; i++) out[i] = (uint32_t)cpu->s.gpr[gpr[i]];
    r->eflags = (uint32_t)emu_get_rflags(cpu);
}

static uint64_t rng = 0x2026120715ULL;
static uint32_t rnd32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static void test_compat_bcd_vs_host(void **state)
{
    struct testbed *tb = *state;
    const char *why = NULL;
    if (!host32_setup(&why)) {
        print_message("skipped: %s\n", why);
        skip();
    }
    const uint32_t szp = RFLAGS_SF | RFLAGS_ZF | RFLAGS_PF;
    /* instruction, the bytes of EAX it defines, the flags it defines */
    static const struct {
        const char *name;
        uint8_t bytes[2];
        unsigned len;
        uint32_t eax_mask;
        uint32_t flags;
    } insns[] = {
        {"daa", {0x27}, 1, 0xff, RFLAGS_CF | RFLAGS_AF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_PF},
        {"das", {0x2f}, 1, 0xff, RFLAGS_CF | RFLAGS_AF | RFLAGS_SF | RFLAGS_ZF | RFLAGS_PF},
        {"aaa", {0x37}, 1, 0xffff, RFLAGS_CF | RFLAGS_AF},
        {"aas", {0x3f}, 1, 0xffff, RFLAGS_CF | RFLAGS_AF},
        {"aam 10", {0xd4, 0x0a}, 2, 0xffff, szp},
        {"aam 7", {0xd4, 0x07}, 2, 0xffff, szp},
        {"aad 10", {0xd5, 0x0a}, 2, 0xffff, szp},
        {"aad 13", {0xd5, 0x0d}, 2, 0xffff, szp},
        {"salc", {0xd6}, 1, 0xffffffff, ARITH_FLAGS},
        {"arpl dx,ax", {0x63, 0xc2}, 2, 0xffffffff, ARITH_FLAGS},
    };
    unsigned failures = 0;
    for (size_t k = 0; k < sizeof(insns) / sizeof(insns[0]); k++) {
        for (int i = 0; i < 600; i++) {
            uint32_t v = rnd32();
            struct r32 a = {.eax = i < 512 ? (uint32_t)i | (v & 0xffff0000) : v, .ebx = rnd32(), .ecx = rnd32(),
                            .edx = rnd32(), .esi = rnd32(), .edi = rnd32(),
                            .eflags = 0x202 | (rnd32() & ARITH_FLAGS)};
            struct r32 host = a, emu = a;
            host32_run(insns[k].bytes, insns[k].len, &host);
            emu32_run(tb, insns[k].bytes, insns[k].len, &emu);
            bool regs_ok = ((host.eax ^ emu.eax) & insns[k].eax_mask) == 0 && host.ebx == emu.ebx &&
                           host.ecx == emu.ecx && host.edx == emu.edx && host.esi == emu.esi && host.edi == emu.edi;
            bool flags_ok = ((host.eflags ^ emu.eflags) & insns[k].flags) == 0;
            if (!regs_ok || !flags_ok) {
                if (failures++ < 10)
                    print_message("%s: eax %08x flags %03x: host eax %08x flags %03x, emu eax %08x flags %03x\n",
                                  insns[k].name, a.eax, a.eflags & (uint32_t)ARITH_FLAGS, host.eax, host.eflags & (uint32_t)ARITH_FLAGS,
                                  emu.eax, emu.eflags & (uint32_t)ARITH_FLAGS);
            }
        }
    }
    assert_int_equal(failures, 0);
}

/* IRET in compatibility mode to the same level pops EIP, CS and EFLAGS only (64-bit mode always
 * pops SS:RSP too). */
static void test_compat_iret_same_level(void **state)
{
    struct testbed *tb = *state;
    /* mov %esp,%ebp; pushf; push %cs; push $1f; iret; ud2; 1: mov %esp,%ebx; ud2 */
    uint8_t code[] = {0x89, 0xe5, 0x9c, 0x0e, 0x68, 0, 0, 0, 0, 0xcf, 0x0f, 0x0b, 0x89, 0xe3, 0x0f, 0x0b};
    uint32_t target = (uint32_t)(GB_CODE + 0xc);
    memcpy(code + 5, &target, 4);
    assert_int_equal(run32(tb, code, sizeof(code), NULL, 0), EXC_UD);
    assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE + 0xe);
    assert_int_equal(rd64(tb, GB_FRAME_CS), SEL_UCODE32);
    assert_int_equal(rd64(tb, GB_FRAME_SS), SEL_UDATA32);
    assert_int_equal(tb->cpu.s.gpr[GPR_RBX], tb->cpu.s.gpr[GPR_RBP]);
    assert_int_equal(tb->cpu.s.gpr[GPR_RBX], GB_STACK_TOP);
}

/* String instructions with 32-bit addressing (REP STOSD, REP MOVSB across pages, the bulk path)
 * and with 16-bit addressing (67: SI wraps at 64 KiB, CX counts, the upper halves are kept). */
static void test_compat_string_ops(void **state)
{
    struct testbed *tb = *state;
    /* cld; mov $0x21000,%edi; mov $0x5a5a5a5a,%eax; mov $1300,%ecx; rep stosl;
     * mov $0x21000,%esi; mov $0x24000,%edi; mov $5000,%ecx; rep movsb;
     * mov $0xfffe,%esi; mov $0xc100,%edi; mov $0x10004,%ecx; addr16 rep movsb; ud2 */
    static const uint8_t code[] = {0xfc, 0xbf, 0x00, 0x10, 0x02, 0x00, 0xb8, 0x5a, 0x5a, 0x5a, 0x5a, 0xb9, 0x14, 0x05,
                                   0x00, 0x00, 0xf3, 0xab, 0xbe, 0x00, 0x10, 0x02, 0x00, 0xbf, 0x00, 0x40, 0x02, 0x00,
                                   0xb9, 0x88, 0x13, 0x00, 0x00, 0xf3, 0xa4, 0xbe, 0xfe, 0xff, 0x00, 0x00, 0xbf, 0x00,
                                   0xc1, 0x00, 0x00, 0xb9, 0x04, 0x00, 0x01, 0x00, 0x67, 0xf3, 0xa4, 0x0f, 0x0b};
    memset(tb_ram(tb, 0x21000, 0x5000), 0, 0x5000);
    memcpy(tb_ram(tb, 0xfffe, 2), (const uint8_t[]){0x11, 0x22}, 2);
    memcpy(tb_ram(tb, 0, 2), (const uint8_t[]){0x33, 0x44}, 2);
    assert_int_equal(run32(tb, code, sizeof(code), NULL, 0), EXC_UD);
    struct emu_cpu *cpu = &tb->cpu;
    const uint8_t *a = tb_ram(tb, 0x21000, 5200), *b = tb_ram(tb, 0x24000, 5001);
    for (unsigned i = 0; i < 5200; i++) assert_int_equal(a[i], 0x5a);
    for (unsigned i = 0; i < 5000; i++) assert_int_equal(b[i], 0x5a);
    assert_int_equal(b[5000], 0);
    assert_memory_equal(tb_ram(tb, 0xc100, 4), ((const uint8_t[]){0x11, 0x22, 0x33, 0x44}), 4);
    assert_int_equal(cpu->s.gpr[GPR_RSI], 2);      /* SI wrapped; the upper half stays 0 */
    assert_int_equal(cpu->s.gpr[GPR_RDI], 0xc104);
    assert_int_equal(cpu->s.gpr[GPR_RCX], 0x10000); /* CX counted down to 0, ECX's upper half kept */
}

/* A 16-bit code segment (CS.D=0) under long mode, based at GB_CODE so that IP stays below 64 KiB
 * (such code runs uncached, as any code segment with a base): 16-bit operands and addressing by
 * default, 66 for a 32-bit operand, 2-byte pushes and return addresses, IP-relative CALL. */
static void test_compat_16bit_code(void **state)
{
    struct testbed *tb = *state;
    /* mov $0x1234,%ax; mov $0x10,%cx; add %cx,%ax; push %ax; pop %dx; call f; mov %ax,%si;
     * mov $0xc000,%bx; mov %dx,2(%bx); mov $0x55aa,%di; mov $0x11223344,%ecx (66);
     * lea 8(%bx,%di),%bp (wraps at 64 KiB); ud2;  f: add $1,%ax; ret */
    static const uint8_t code[] = {0xb8, 0x34, 0x12, 0xb9, 0x10, 0x00, 0x01, 0xc8, 0x50, 0x5a, 0xe8, 0x16, 0x00,
                                   0x89, 0xc6, 0xbb, 0x00, 0xc0, 0x89, 0x57, 0x02, 0xbf, 0xaa, 0x55, 0x66, 0xb9,
                                   0x44, 0x33, 0x22, 0x11, 0x8d, 0x69, 0x08, 0x0f, 0x0b, 0x83, 0xc0, 0x01, 0xc3};
    tb_start(tb, code, sizeof(code), 3);
    assert_int_equal(tb_enter_compat(tb), 0);
    struct emu_cpu *cpu = &tb->cpu;
    cpu->s.seg[SEG_CS] = (struct cpu_segment){.base = GB_CODE, .limit = 0xffff, .selector = SEL_UCODE32,
                                              .type = 0xb, .s = 1, .dpl = 3, .present = 1};
    cpu->s.rip = 0;
    emu_update_mode(cpu);
    assert_false(cpu->code32);
    for (int i = 0; i < 100 && tb->exc_count == 0; i++) emu_exec(cpu, 50);
    assert_int_equal(tb->exc_vector, EXC_UD);
    assert_int_equal(rd64(tb, GB_FRAME_RIP), 0x21); /* IP within the code segment */
    assert_int_equal(rd64(tb, GB_FRAME_CS), SEL_UCODE32);
    assert_int_equal(rd64(tb, GB_FRAME_RSP), GB_STACK_TOP);
    assert_int_equal(rd64(tb, GB_FRAME_RAX(false)), 0x1245);
    assert_int_equal(rd64(tb, GB_FRAME_RDX(false)), 0x1244);
    assert_int_equal(cpu->s.gpr[GPR_RSI], 0x1245);
    assert_int_equal(cpu->s.gpr[GPR_RCX], 0x11223344);
    assert_int_equal(cpu->s.gpr[GPR_RBP], 0x15b2);
    assert_int_equal(*(uint16_t *)tb_ram(tb, 0xc002, 2), 0x1244);
    assert_int_equal(*(uint16_t *)tb_ram(tb, GB_STACK_TOP - 2, 2), 0x0d); /* CALL pushed IP, 2 bytes */

    /* running off the end of the segment: NOP at IP 0xffff, then IP 0x10000 > CS.limit: #GP(0) */
    static const uint8_t nop = 0x90;
    tb_start(tb, &nop, 1, 3);
    assert_int_equal(tb_enter_compat(tb), 0);
    cpu->s.seg[SEG_CS] = (struct cpu_segment){.base = GB_CODE - 0xffff, .limit = 0xffff, .selector = SEL_UCODE32,
                                              .type = 0xb, .s = 1, .dpl = 3, .present = 1};
    cpu->s.rip = 0xffff;
    emu_update_mode(cpu);
    for (int i = 0; i < 100 && tb->exc_count == 0; i++) emu_exec(cpu, 50);
    assert_int_equal(tb->exc_vector, EXC_GP);
    assert_int_equal(rd64(tb, GB_FRAME_RIP), 0x10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_compat_integer_stack_addressing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_int80_and_syscall_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_undefined_raise_ud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_legacy_only_instructions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_bcd_sdm_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_bcd_vs_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_iret_same_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_string_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_16bit_code, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
