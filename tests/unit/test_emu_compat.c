/* Unit tests for compatibility mode: 32-bit code (CS.L=0, CS.D=1) at CPL3 under the testbed's
 * 64-bit page tables, GDT and IDT, as a 64-bit kernel runs i386 programs. Each program was
 * assembled with `as --32` (the source is in the comment above its bytes); the tests check the
 * registers, memory and segment state it leaves, the exception frames written by delivery from
 * compatibility mode, INT 0x80 / IRETQ and SYSCALL / SYSRETL round trips through 64-bit
 * handlers, and #UD for what this mode does not (yet) decode.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

/* Encodings this mode does not decode (yet) raise #UD at the instruction, whatever follows:
 * BCD (27 2F 37 3F D4 D5), BOUND, LES/LDS, ARPL, INTO, SALC, far CALL/JMP ptr16:32, and the
 * VEX form of C4 (no AVX). */
static void test_compat_unimplemented_raise_ud(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t cases[][8] = {
        {0x27}, {0x2f}, {0x37}, {0x3f}, {0xd4, 0x0a}, {0xd5, 0x0a}, {0x62, 0x00}, {0xc4, 0x00}, {0xc5, 0x00},
        {0x63, 0xc0}, {0xce}, {0xd6}, {0x9a, 0, 0, 0, 0, 0x3b, 0}, {0xea, 0, 0, 0, 0, 0x3b, 0}, {0xc4, 0xe2, 0x79, 0x18, 0xc0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t code[16];
        memcpy(code, cases[i], 8);
        memset(code + 8, 0x90, 8);
        assert_int_equal(run32(tb, code, sizeof(code), NULL, 0), EXC_UD);
        assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE);
    }
}

/* A 16-bit code segment under long mode is not run yet: its first instruction raises #UD. */
static void test_compat_16bit_code_raises_ud(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0x90, 0x90};
    uint8_t image[0x10] = {0};
    memcpy(image, code, sizeof(code));
    tb_start(tb, image, sizeof(image), 3);
    tb->cpu.s.seg[SEG_CS] = (struct cpu_segment){.limit = 0xffff, .selector = SEL_UCODE32, .type = 0xb, .s = 1,
                                                 .dpl = 3, .present = 1};
    emu_update_mode(&tb->cpu);
    for (int i = 0; i < 100 && tb->exc_count == 0; i++) emu_exec(&tb->cpu, 50);
    assert_int_equal(tb->exc_vector, EXC_UD);
    assert_int_equal(rd64(tb, GB_FRAME_RIP), GB_CODE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_compat_integer_stack_addressing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_int80_and_syscall_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_unimplemented_raise_ud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compat_16bit_code_raises_ud, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
