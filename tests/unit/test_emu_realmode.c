/* Unit tests for the emulator's real mode (vmm/emu/realmode.c): events through the IVT and
 * their 6-byte frame, INT/IRET round trips (16- and 32-bit IRET), exceptions (#DE, #UD, #GP
 * from a limit violation, the IVT limit giving #GP, #DF and a triple fault), unreal mode (a
 * 4 GiB limit loaded in protected mode survives a real-mode segment load), far JMP/CALL/RET
 * (ptr16:16, m16:16 and the 66h forms), a round trip real -> 32-bit protected -> 16-bit
 * protected -> real mode, LMSW entering protected mode, decoded blocks found by CS.base + IP,
 * and ARPL/SLDT raising #UD. The code is GNU as output (the source is in the comments).
 *
 * Layout: code at 1000:0000 (0x10000), exception stubs at 2000:16*v (each reports its vector on
 * GB_EXC_PORT), INT 0x30 at 2000:0400, far targets at 3000:xxxx, the stack at 0000:8000, the IVT
 * at 0 and a GDT at 0x500.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu_exec_testbed.h"

#define R_CODE_SEG 0x1000
#define R_STUB_SEG 0x2000
#define R_FAR_SEG 0x3000
#define R_STACK 0x8000
#define R_GDT 0x500

static void put(struct testbed *tb, uint64_t gpa, const void *p, size_t n)
{
    assert_int_equal(guest_mem_write(&tb->m.mem, gpa, p, n), 0);
    for (uint64_t pg = gpa & ~0xfffULL; pg < gpa + n; pg += 4096) emu_code_written(&tb->cpu, pg);
}

static uint16_t rd16(struct testbed *tb, uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, tb_ram(tb, gpa, 2), 2);
    return v;
}

static struct cpu_segment real_seg(uint16_t sel, bool code)
{
    return (struct cpu_segment){.base = (uint64_t)sel << 4, .limit = 0xffff, .selector = sel,
                                .type = code ? 0xb : 0x3, .s = 1, .present = 1};
}

/* Real mode as after reset (but CS:IP at 1000:0000), the IVT pointing every vector below 32 at
 * its stub, and `code` at 0x10000. */
static void setup_real(struct testbed *tb, const uint8_t *code, size_t len)
{
    memset(tb_ram(tb, 0, 0x1000), 0, 0x1000);
    for (unsigned v = 0; v < 32; v++) {
        /* mov $v,%al; out %al,$GB_EXC_PORT; jmp . */
        const uint8_t stub[] = {0xb0, (uint8_t)v, 0xe6, GB_EXC_PORT, 0xeb, 0xfe};
        put(tb, (R_STUB_SEG << 4) + 16 * v, stub, sizeof(stub));
        const uint32_t ent = (uint32_t)(R_STUB_SEG << 16) | (16 * v);
        put(tb, 4 * v, &ent, 4);
    }
    /* INT 0x30: pushf; pop %dx; inc %ax; iret */
    static const uint8_t int30[] = {0x9c, 0x5a, 0x40, 0xcf};
    put(tb, (R_STUB_SEG << 4) + 0x400, int30, sizeof(int30));
    const uint32_t ent30 = (uint32_t)(R_STUB_SEG << 16) | 0x400;
    put(tb, 4 * 0x30, &ent30, 4);
    put(tb, R_CODE_SEG << 4, code, len);
    emu_icache_flush(&tb->cpu);

    struct cpu_state *s = &tb->cpu.s;
    memset(s, 0, sizeof(*s));
    s->rip = 0;
    s->gpr[GPR_RSP] = R_STACK;
    s->rflags = RFLAGS_FIXED | RFLAGS_IF;
    s->seg[SEG_CS] = real_seg(R_CODE_SEG, true);
    s->seg[SEG_SS] = s->seg[SEG_DS] = s->seg[SEG_ES] = s->seg[SEG_FS] = s->seg[SEG_GS] = real_seg(0, false);
    s->seg[SEG_TR] = (struct cpu_segment){.limit = 0xffff, .type = 0xb, .present = 1};
    s->seg[SEG_LDTR] = (struct cpu_segment){.limit = 0xffff, .type = 0x2, .present = 1};
    s->idtr = (struct cpu_dtable){.base = 0, .limit = 0x3ff};
    s->cr0 = CR0_ET;
    s->fx.fcw = 0x37f;
    s->fx.mxcsr = 0x1f80;
    emu_set_rflags(&tb->cpu, s->rflags);
    emu_update_mode(&tb->cpu);
    emu_tlb_flush(&tb->cpu);
    tb->cpu.triple_fault = 0;
    tb->exc_vector = -1;
    tb->exc_count = 0;
}

static int run(struct testbed *tb)
{
    for (int i = 0; i < 1000 && tb->exc_count == 0 && !tb->cpu.triple_fault; i++) emu_exec(&tb->cpu, 50);
    return tb->exc_vector;
}

/* The frame the last event pushed on 0000:8000: IP, CS, FLAGS. */
static uint16_t frame_ip(struct testbed *tb) { return rd16(tb, R_STACK - 6); }
static uint16_t frame_cs(struct testbed *tb) { return rd16(tb, R_STACK - 4); }
static uint16_t frame_flags(struct testbed *tb) { return rd16(tb, R_STACK - 2); }

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

/* mov $5,%ax; int $0x30 (pushf; pop %dx; inc %ax; iret); mov %ax,%bx; ud2 */
static void test_real_int_iret_and_ivt_frame(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0xb8, 0x05, 0x00, 0xcd, 0x30, 0x89, 0xc3, 0x0f, 0x0b};
    setup_real(tb, code, sizeof(code));
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(cpu->cpl, 0);
    assert_false(cpu->code32);
    assert_int_equal(run(tb), EXC_UD);
    assert_int_equal((uint16_t)cpu->s.gpr[GPR_RBX], 6);   /* the handler ran and IRET came back */
    assert_false(cpu->s.gpr[GPR_RDX] & RFLAGS_IF);        /* IF was clear inside the handler */
    /* #UD's frame: IP of the UD2 (a fault), CS, FLAGS with IF set again by IRET; no error code */
    assert_int_equal(frame_ip(tb), 7);
    assert_int_equal(frame_cs(tb), R_CODE_SEG);
    assert_int_equal(frame_flags(tb) & (RFLAGS_IF | RFLAGS_FIXED), RFLAGS_IF | RFLAGS_FIXED);
    assert_int_equal(cpu->s.gpr[GPR_RSP], R_STACK - 6);
    assert_int_equal(cpu->s.seg[SEG_CS].selector, R_STUB_SEG);
    assert_int_equal(cpu->s.seg[SEG_CS].base, R_STUB_SEG << 4);
    assert_int_equal(cpu->s.seg[SEG_CS].limit, 0xffff);
    assert_false(emu_get_rflags(cpu) & RFLAGS_IF);
}

/* pushl $0x893; pushl $0x2000; pushl $0x500; iretl -> 2000:0500 (a UD2 placed there) */
static void test_real_iret32(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0x66, 0x68, 0x93, 0x08, 0x00, 0x00, 0x66, 0x68, 0x00, 0x20,
                                   0x00, 0x00, 0x66, 0x68, 0x00, 0x05, 0x00, 0x00, 0x66, 0xcf};
    setup_real(tb, code, sizeof(code));
    static const uint8_t ud2[] = {0x0f, 0x0b};
    put(tb, (R_STUB_SEG << 4) + 0x500, ud2, sizeof(ud2));
    assert_int_equal(run(tb), EXC_UD);
    /* IRET popped 12 bytes; the #UD frame then went where they were */
    assert_int_equal(tb->cpu.s.gpr[GPR_RSP], R_STACK - 6);
    assert_int_equal(frame_ip(tb), 0x500);
    assert_int_equal(frame_cs(tb), R_STUB_SEG);
    assert_int_equal(frame_flags(tb), 0x893); /* CF AF SF OF and bit 1; IF clear */
}

/* xor %cx,%cx; mov $7,%ax; div %cx: #DE, the frame points at the DIV */
static void test_real_divide_error(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0x31, 0xc9, 0xb8, 0x07, 0x00, 0xf7, 0xf1};
    setup_real(tb, code, sizeof(code));
    assert_int_equal(run(tb), EXC_DE);
    assert_int_equal(frame_ip(tb), 5);
    assert_int_equal(frame_cs(tb), R_CODE_SEG);
}

/* mov $0x3000,%ax; mov %ax,%ds; addr32 mov 0x10000,%al: offset 0x10000 is past the 64 KiB
 * limit: #GP (no error code is pushed in real mode) */
static void test_real_limit_gp(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0xb8, 0x00, 0x30, 0x8e, 0xd8, 0x67, 0xa0, 0x00, 0x00, 0x01, 0x00};
    setup_real(tb, code, sizeof(code));
    assert_int_equal(run(tb), EXC_GP);
    assert_int_equal(frame_ip(tb), 5);
    assert_int_equal(tb->cpu.s.gpr[GPR_RSP], R_STACK - 6);
    assert_int_equal(tb->cpu.s.seg[SEG_DS].base, 0x30000);
}

/* lidt %cs:desc (a 16-bit LIDT: base 0xff000000 loads as 0); int $0x40 beyond the limit */
static void test_real_ivt_limit(void **state)
{
    struct testbed *tb = *state;
    uint8_t code[] = {0x2e, 0x0f, 0x01, 0x1e, 0x08, 0x00, 0xcd, 0x40, 0x7f, 0x00, 0x00, 0x00, 0x00, 0xff};
    struct emu_cpu *cpu = &tb->cpu;
    /* limit 0x7f: vector 0x40 is beyond it -> #GP, whose entry is within: the #GP stub runs,
     * and the frame points at the INT */
    setup_real(tb, code, sizeof(code));
    assert_int_equal(run(tb), EXC_GP);
    assert_int_equal(cpu->s.idtr.base, 0);
    assert_int_equal(cpu->s.idtr.limit, 0x7f);
    assert_int_equal(frame_ip(tb), 6);
    /* limit 0x33: #GP's entry (0x34..0x37) is beyond it too -> #DF (entry 0x20..0x23) */
    code[8] = 0x33;
    setup_real(tb, code, sizeof(code));
    assert_int_equal(run(tb), EXC_DF);
    assert_int_equal(frame_ip(tb), 6);
    /* limit 0x1f: #DF's entry is beyond it as well -> triple fault */
    code[8] = 0x1f;
    setup_real(tb, code, sizeof(code));
    run(tb);
    assert_true(cpu->triple_fault);
    assert_int_equal(tb->exc_count, 0);
}

/* Unreal mode: lgdt; CR0.PE=1; DS = 0x08 (base 0, limit 4 GiB); CR0.PE=0; mov %bx(0),%ds (a real
 * mode load: base 0, the limit stays); addr32 movl $0x12345678,0x200000; addr32 mov
 * 0x200000,%ecx; ud2 */
static void test_real_unreal_mode(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0x2e, 0x0f, 0x01, 0x16, 0x32, 0x00, 0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0,
                                   0xbb, 0x08, 0x00, 0x8e, 0xdb, 0x24, 0xfe, 0x0f, 0x22, 0xc0, 0x31, 0xdb, 0x8e, 0xdb,
                                   0x67, 0x66, 0xc7, 0x05, 0x00, 0x00, 0x20, 0x00, 0x78, 0x56, 0x34, 0x12, 0x67, 0x66,
                                   0x8b, 0x0d, 0x00, 0x00, 0x20, 0x00, 0x0f, 0x0b,
                                   /* gdtdesc */ 0x0f, 0x00, 0x00, 0x05, 0x00, 0x00};
    setup_real(tb, code, sizeof(code));
    const uint64_t gdt[2] = {0, 0x00cf92000000ffffULL};
    put(tb, R_GDT, gdt, sizeof(gdt));
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(run(tb), EXC_UD);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RCX], 0x12345678);
    assert_int_equal(*(uint32_t *)tb_ram(tb, 0x200000, 4), 0x12345678);
    assert_false(cpu->s.cr0 & CR0_PE);
    assert_int_equal(cpu->s.seg[SEG_DS].selector, 0);
    assert_int_equal(cpu->s.seg[SEG_DS].base, 0);
    assert_int_equal(cpu->s.seg[SEG_DS].limit, 0xffffffff); /* kept across the real-mode load */
    assert_int_equal(cpu->s.gdtr.base, R_GDT);

    /* the same 32-bit offset with a plain 64 KiB DS: #GP */
    static const uint8_t plain[] = {0x67, 0x66, 0x8b, 0x0d, 0x00, 0x00, 0x20, 0x00};
    setup_real(tb, plain, sizeof(plain));
    assert_int_equal(run(tb), EXC_GP);
    assert_int_equal(frame_ip(tb), 0);
}

/* lcall $0x3000,$0x10 (mov %cs,%ax; lret); mov %ax,%si; ljmp *%cs:farptr (3000:0020:
 * lcalll $0x3000,$0x30 (mov %sp,%di; lretl); ud2) */
static void test_real_far_transfers(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0x9a, 0x10, 0x00, 0x00, 0x30, 0x89, 0xc6, 0x2e,
                                   0xff, 0x2e, 0x0c, 0x00, 0x20, 0x00, 0x00, 0x30};
    static const uint8_t far_code[] = {
        [0x10] = 0x8c, 0xc8, 0xcb,
        [0x20] = 0x66, 0x9a, 0x30, 0x00, 0x00, 0x00, 0x00, 0x30, 0x0f, 0x0b,
        [0x30] = 0x89, 0xe7, 0x66, 0xcb,
    };
    setup_real(tb, code, sizeof(code));
    put(tb, R_FAR_SEG << 4, far_code, sizeof(far_code));
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(run(tb), EXC_UD);
    assert_int_equal((uint16_t)cpu->s.gpr[GPR_RSI], R_FAR_SEG);      /* CS in the callee */
    assert_int_equal((uint16_t)cpu->s.gpr[GPR_RDI], R_STACK - 8);    /* the 66h call pushed 2x4 bytes */
    assert_int_equal(frame_cs(tb), R_FAR_SEG);
    assert_int_equal(frame_ip(tb), 0x28);                           /* the UD2 after the 66h call */
    assert_int_equal(cpu->s.gpr[GPR_RSP], R_STACK - 6);             /* every RETF popped what its call pushed */
}

/* Real -> 32-bit protected (ljmpl $0x08) -> 16-bit protected (ljmp $0x18) -> real (ljmp
 * $0x1000), storing through a flat 32-bit DS on the way. */
static void test_real_protected_round_trip(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {
        0x2e, 0x0f, 0x01, 0x16, 0x44, 0x00,       /* lgdt %cs:gdtdesc */
        0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0, /* CR0.PE = 1 */
        0x66, 0xea, 0x16, 0x00, 0x01, 0x00, 0x08, 0x00, /* ljmpl $0x08,$0x10016 */
        0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8,       /* .code32: mov $0x10,%ax; mov %ax,%ds */
        0xbb, 0x44, 0x33, 0x22, 0x11,             /* mov $0x11223344,%ebx */
        0x89, 0x1d, 0x00, 0x00, 0x20, 0x00,       /* mov %ebx,0x200000 */
        0xea, 0x2e, 0x00, 0x00, 0x00, 0x18, 0x00, /* ljmp $0x18,$0x2e */
        0xb8, 0x20, 0x00, 0x8e, 0xd8,             /* .code16: mov $0x20,%ax; mov %ax,%ds */
        0x0f, 0x20, 0xc0, 0x24, 0xfe, 0x0f, 0x22, 0xc0, /* CR0.PE = 0 */
        0xea, 0x40, 0x00, 0x00, 0x10,             /* ljmp $0x1000,$0x40 */
        0x8c, 0xca, 0x0f, 0x0b,                   /* mov %cs,%dx; ud2 */
        0x27, 0x00, 0x00, 0x05, 0x00, 0x00,       /* gdtdesc: limit 39, base 0x500 */
    };
    setup_real(tb, code, sizeof(code));
    const uint64_t gdt[5] = {0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL,
                             0x00009a010000ffffULL /* 16-bit code, base 0x10000 */,
                             0x000092000000ffffULL /* 16-bit data, base 0 */};
    put(tb, R_GDT, gdt, sizeof(gdt));
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(run(tb), EXC_UD);
    assert_int_equal(*(uint32_t *)tb_ram(tb, 0x200000, 4), 0x11223344);
    assert_int_equal((uint16_t)cpu->s.gpr[GPR_RDX], R_CODE_SEG);
    assert_int_equal(frame_cs(tb), R_CODE_SEG);
    assert_int_equal(frame_ip(tb), 0x42);
    assert_false(cpu->s.cr0 & CR0_PE);
    assert_false(cpu->code32);
    assert_int_equal(cpu->cpl, 0);
    /* DS was loaded from the 16-bit data descriptor before leaving: selector 0x20, base 0, 64 KiB */
    assert_int_equal(cpu->s.seg[SEG_DS].selector, 0x20);
    assert_int_equal(cpu->s.seg[SEG_DS].limit, 0xffff);
    /* the real-mode CS load kept the 16-bit descriptor's cached limit and attributes */
    assert_int_equal(cpu->s.seg[SEG_CS].limit, 0xffff);
    assert_false(cpu->s.seg[SEG_CS].db);
}

/* Decoded blocks are found through CS.base + IP: the same far call instruction reaching offset 0
 * of segments 3000, 3001 and 3002 (linear 0x30000, 0x30010, 0x30020: one page) runs three
 * different routines, even when the call's block links to the previous one's successor.
 * movw $0,0x600; movw $0x3000,0x602; xor %bx,%bx; again: lcall *0x600; addw $1,0x602;
 * cmpw $0x3003,0x602; jne again; ud2. The routines: add $1/$0x10/$0x100,%bx; lret */
static void test_real_blocks_by_linear_address(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0xc7, 0x06, 0x00, 0x06, 0x00, 0x00, 0xc7, 0x06, 0x02, 0x06, 0x00,
                                   0x30, 0x31, 0xdb, 0xff, 0x1e, 0x00, 0x06, 0x83, 0x06, 0x02, 0x06,
                                   0x01, 0x81, 0x3e, 0x02, 0x06, 0x03, 0x30, 0x75, 0xef, 0x0f, 0x0b};
    static const uint8_t routines[] = {
        [0x00] = 0x83, 0xc3, 0x01, 0xcb,
        [0x10] = 0x81, 0xc3, 0x10, 0x00, 0xcb,
        [0x20] = 0x81, 0xc3, 0x00, 0x01, 0xcb,
    };
    setup_real(tb, code, sizeof(code));
    put(tb, R_FAR_SEG << 4, routines, sizeof(routines));
    assert_int_equal(run(tb), EXC_UD);
    assert_int_equal((uint16_t)tb->cpu.s.gpr[GPR_RBX], 0x111);
    assert_int_equal(frame_ip(tb), sizeof(code) - 2);
}

/* LMSW enters protected mode (it cannot leave it) with the segment caches as they were; HLT at
 * CPL 0. mov $1,%ax; lmsw %ax; smsw %bx; mov %cr0,%ecx; hlt */
static void test_real_lmsw_enters_protected_mode(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0xb8, 0x01, 0x00, 0x0f, 0x01, 0xf0, 0x0f, 0x01, 0xe3, 0x0f, 0x20, 0xc1, 0xf4};
    setup_real(tb, code, sizeof(code));
    struct emu_cpu *cpu = &tb->cpu;
    for (int i = 0; i < 100 && !cpu->s.halted && tb->exc_count == 0; i++) emu_exec(cpu, 50);
    assert_true(cpu->s.halted);
    assert_int_equal(tb->exc_count, 0);
    assert_true(cpu->s.cr0 & CR0_PE);
    assert_int_equal((uint16_t)cpu->s.gpr[GPR_RBX], 0x11);       /* MSW: PE and ET */
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RCX], CR0_ET | CR0_PE);
    assert_int_equal(cpu->cpl, 0);
    assert_int_equal(cpu->s.seg[SEG_CS].base, R_CODE_SEG << 4);  /* the real-mode cache, kept */
    assert_int_equal(cpu->s.rip, sizeof(code));
}

/* ARPL and SLDT are not recognized in real mode: #UD */
static void test_real_arpl_sldt_ud(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t arpl[] = {0x63, 0xc8};       /* arpl %cx,%ax */
    setup_real(tb, arpl, sizeof(arpl));
    assert_int_equal(run(tb), EXC_UD);
    assert_int_equal(frame_ip(tb), 0);
    static const uint8_t sldt[] = {0x0f, 0x00, 0xc0}; /* sldt %ax */
    setup_real(tb, sldt, sizeof(sldt));
    assert_int_equal(run(tb), EXC_UD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_real_int_iret_and_ivt_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_iret32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_divide_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_limit_gp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_ivt_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_unreal_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_far_transfers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_protected_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_blocks_by_linear_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_lmsw_enters_protected_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_arpl_sldt_ud, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
