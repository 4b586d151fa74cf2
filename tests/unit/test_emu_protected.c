/* Unit tests for legacy 32-bit protected mode without paging (EFER.LME clear, CR0.PG clear), as
 * a 32-bit kernel runs before it enables paging: 32-bit code at CPL3, INT 0x80 through a
 * DPL-3 interrupt gate of the 8-byte-gate IDT to a CPL0 handler on the TSS's SS0:ESP0 and IRET
 * back, an exception with an error code (#GP from CLI at IOPL 0) and its frame, a 16-bit gate's
 * 2-byte frame, and legacy paging: 32-bit (4 KiB and 4 MiB pages) and PAE with NX, their
 * accessed/dirty bits and page-fault error codes. The machine (RAM, the exception port) comes from emu_exec_testbed.h; the
 * tables are built here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu_exec_testbed.h"

#define P_GDT 0x100000ULL
#define P_IDT 0x101000ULL
#define P_TSS 0x102000ULL
#define P_KSTACK 0x110000ULL
#define P_USTACK 0x120000ULL
#define P_CODE 0x130000ULL
#define P_HANDLERS 0x131000ULL /* INT 0x80 handler; exception stubs at +0x100 + 16 * vector */

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1b
#define SEL_UDATA 0x23
#define SEL_TSS 0x28
#define SEL_KCODE16 0x30

static void put(struct testbed *tb, uint64_t gpa, const void *p, size_t n)
{
    assert_int_equal(guest_mem_write(&tb->m.mem, gpa, p, n), 0);
}

static uint32_t rd32(struct testbed *tb, uint64_t gpa)
{
    uint32_t v;
    memcpy(&v, tb_ram(tb, gpa, 4), 4);
    return v;
}

static void set_gate(struct testbed *tb, unsigned vector, uint64_t handler, unsigned type_attr, uint16_t sel)
{
    uint64_t g = (handler & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)type_attr << 40) |
                 ((handler >> 16) << 48);
    put(tb, P_IDT + 8 * vector, &g, 8);
}

static struct cpu_segment flat(uint16_t sel, unsigned type, unsigned dpl)
{
    return (struct cpu_segment){.limit = 0xffffffff, .selector = sel, .type = (uint8_t)type, .s = 1,
                                .dpl = (uint8_t)dpl, .present = 1, .db = 1, .g = 1};
}

/* GDT, TSS, IDT (every exception to a stub that reports its vector; 0x80 DPL 3) and a CPL3
 * state at P_CODE with `code`. */
static void setup_pmode(struct testbed *tb, const uint8_t *code, size_t len)
{
    const uint64_t tss_desc = 0x67 | ((P_TSS & 0xffffff) << 16) | (0x8bULL << 40) | ((P_TSS >> 24) << 56);
    const uint64_t gdt[7] = {0, 0x00cf9a000000ffffULL, 0x00cf92000000ffffULL, 0x00cffa000000ffffULL,
                             0x00cff2000000ffffULL, tss_desc,
                             /* 16-bit ring-0 code, base P_HANDLERS, limit 0xffff */
                             0x00009a000000ffffULL | ((P_HANDLERS & 0xffffff) << 16)};
    put(tb, P_GDT, gdt, sizeof(gdt));
    uint8_t tss[0x68] = {0};
    const uint32_t esp0 = (uint32_t)P_KSTACK, ss0 = SEL_KDATA;
    memcpy(tss + 4, &esp0, 4);
    memcpy(tss + 8, &ss0, 4);
    put(tb, P_TSS, tss, sizeof(tss));
    /* INT 0x80: add $1,%eax; iret */
    static const uint8_t int80[] = {0x83, 0xc0, 0x01, 0xcf};
    put(tb, P_HANDLERS, int80, sizeof(int80));
    set_gate(tb, 0x80, P_HANDLERS, 0xee, SEL_KCODE);
    for (unsigned v = 0; v < 32; v++) {
        /* mov $v,%eax; out %eax,$GB_EXC_PORT; jmp . */
        const uint8_t stub[16] = {0xb8, (uint8_t)v, 0, 0, 0, 0xe7, GB_EXC_PORT, 0xeb, 0xfe};
        put(tb, P_HANDLERS + 0x100 + 16 * v, stub, sizeof(stub));
        set_gate(tb, v, P_HANDLERS + 0x100 + 16 * v, 0x8e, SEL_KCODE);
    }
    put(tb, P_CODE, code, len);
    emu_icache_flush(&tb->cpu);
    for (uint64_t p = P_CODE; p < P_HANDLERS + 0x1000; p += 4096) emu_code_written(&tb->cpu, p);

    struct cpu_state *s = &tb->cpu.s;
    memset(s, 0, sizeof(*s));
    s->rip = P_CODE;
    s->gpr[GPR_RSP] = P_USTACK;
    s->rflags = RFLAGS_FIXED;
    s->seg[SEG_CS] = flat(SEL_UCODE, 0xb, 3);
    s->seg[SEG_SS] = s->seg[SEG_DS] = s->seg[SEG_ES] = s->seg[SEG_FS] = s->seg[SEG_GS] = flat(SEL_UDATA, 0x3, 3);
    s->seg[SEG_TR] = (struct cpu_segment){.base = P_TSS, .limit = 0x67, .selector = SEL_TSS, .type = 0xb, .present = 1};
    s->seg[SEG_LDTR] = (struct cpu_segment){.type = 0x2, .unusable = 1};
    s->gdtr = (struct cpu_dtable){.base = P_GDT, .limit = sizeof(gdt) - 1};
    s->idtr = (struct cpu_dtable){.base = P_IDT, .limit = 256 * 8 - 1};
    s->cr0 = CR0_PE | CR0_ET | CR0_NE;
    s->fx.fcw = 0x37f;
    s->fx.mxcsr = 0x1f80;
    emu_set_rflags(&tb->cpu, s->rflags);
    emu_update_mode(&tb->cpu);
    emu_tlb_flush(&tb->cpu);
    tb->exc_vector = -1;
    tb->exc_count = 0;
}

static int run(struct testbed *tb)
{
    for (int i = 0; i < 1000 && tb->exc_count == 0; i++) emu_exec(&tb->cpu, 50);
    return tb->exc_vector;
}

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

static void test_pmode_int80_iret_and_gp_frame(void **state)
{
    struct testbed *tb = *state;
    /* mov $5,%eax; int $0x80; mov %eax,%ebx; cli (#GP(0): CPL3 > IOPL 0) */
    static const uint8_t code[] = {0xb8, 0x05, 0, 0, 0, 0xcd, 0x80, 0x89, 0xc3, 0xfa};
    setup_pmode(tb, code, sizeof(code));
    struct emu_cpu *cpu = &tb->cpu;
    assert_false(cpu->long64);
    assert_int_equal(cpu->cpl, 3);
    assert_int_equal(run(tb), EXC_GP);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RBX], 6); /* the CPL0 handler ran and IRET came back */
    /* the #GP frame on SS0:ESP0: SS ESP EFLAGS CS EIP error, 4 bytes each */
    assert_int_equal(rd32(tb, P_KSTACK - 4), SEL_UDATA);
    assert_int_equal(rd32(tb, P_KSTACK - 8), P_USTACK);
    assert_int_equal(rd32(tb, P_KSTACK - 12) & 0x3, 0x2);
    assert_int_equal(rd32(tb, P_KSTACK - 16), SEL_UCODE);
    assert_int_equal(rd32(tb, P_KSTACK - 20), P_CODE + 9);
    assert_int_equal(rd32(tb, P_KSTACK - 24), 0);
    assert_int_equal(cpu->cpl, 0);
    assert_int_equal(cpu->s.seg[SEG_CS].selector, SEL_KCODE);
    assert_int_equal(cpu->s.seg[SEG_SS].selector, SEL_KDATA);
    assert_int_equal(cpu->s.gpr[GPR_RSP], P_KSTACK - 24);
    assert_false(emu_get_rflags(cpu) & RFLAGS_IF); /* an interrupt gate */
}

/* IN/OUT at CPL3 > IOPL go through the TSS's I/O permission bitmap (what Linux's ioperm() sets
 * up): a 4-byte OUT is allowed when the 4 bits of its ports are clear, #GP(0) when one is set or
 * the bitmap lies beyond the TSS limit. The testbed's exception port records the value written. */
static void test_pmode_io_bitmap(void **state)
{
    struct testbed *tb = *state;
    /* mov $0x42,%eax; out %eax,$GB_EXC_PORT; jmp . */
    static const uint8_t code[] = {0xb8, 0x42, 0, 0, 0, 0xe7, GB_EXC_PORT, 0xeb, 0xfe};
    static uint8_t bitmap[0x2001];
    const uint16_t iomap_base = 0x68;
    for (unsigned pass = 0; pass < 3; pass++) {
        setup_pmode(tb, code, sizeof(code));
        memset(bitmap, 0xff, sizeof(bitmap));
        for (unsigned p = GB_EXC_PORT; p < GB_EXC_PORT + 4u; p++)
            if (!(pass == 1 && p == GB_EXC_PORT + 3u)) bitmap[p / 8] &= (uint8_t)~(1u << (p % 8));
        put(tb, P_TSS + 102, &iomap_base, 2);
        put(tb, P_TSS + iomap_base, bitmap, sizeof(bitmap));
        if (pass < 2) tb->cpu.s.seg[SEG_TR].limit = iomap_base + sizeof(bitmap) - 1;
        int v = run(tb);
        if (pass == 0) assert_int_equal(v, 0x42);   /* allowed: the write reached the port */
        else assert_int_equal(v, EXC_GP);           /* one bit set / no bitmap within the limit */
    }
}

/* A 16-bit interrupt gate to a 16-bit code segment: the frame's slots are 2 bytes. Runs at CPL0
 * (no stack switch): #UD from UD2. */
static void test_pmode_16bit_gate(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0x0f, 0x0b};
    setup_pmode(tb, code, sizeof(code));
    struct emu_cpu *cpu = &tb->cpu;
    /* #UD -> a 16-bit interrupt gate (type 6) to SEL_KCODE16:0x800, a 16-bit stub there:
     * mov $6,%eax (66); out %ax,$GB_EXC_PORT; jmp . */
    static const uint8_t stub16[] = {0x66, 0xb8, 0x06, 0, 0, 0, 0xe7, GB_EXC_PORT, 0xeb, 0xfe};
    put(tb, P_HANDLERS + 0x800, stub16, sizeof(stub16));
    set_gate(tb, EXC_UD, 0x800, 0x86, SEL_KCODE16);
    cpu->s.seg[SEG_CS] = flat(SEL_KCODE, 0xb, 0);
    cpu->s.seg[SEG_SS] = cpu->s.seg[SEG_DS] = flat(SEL_KDATA, 0x3, 0);
    cpu->s.gpr[GPR_RSP] = P_KSTACK;
    emu_update_mode(cpu);
    assert_int_equal(run(tb), EXC_UD);
    assert_false(cpu->code32);
    assert_int_equal(cpu->s.seg[SEG_CS].base, P_HANDLERS);
    /* FLAGS CS IP, 2 bytes each, on the same stack */
    assert_int_equal(cpu->s.gpr[GPR_RSP], P_KSTACK - 6);
    assert_int_equal(*(uint16_t *)tb_ram(tb, P_KSTACK - 4, 2), SEL_KCODE);
    assert_int_equal(*(uint16_t *)tb_ram(tb, P_KSTACK - 6, 2), (uint16_t)P_CODE);
}

static uint32_t pg32(struct testbed *tb, uint64_t gpa) { return rd32(tb, gpa); }

/* 32-bit paging: a 4 MiB identity page for RAM (CR4.PSE), and 4 KiB pages at 4 MiB: 0x400000 ->
 * 0x150000 (writable), 0x401000 -> 0x151000 (read-only). A user write to the read-only page
 * faults with P|W|U and CR2. */
static void test_pmode_paging_32bit(void **state)
{
    struct testbed *tb = *state;
    /* movl $0x12345678,0x400010; mov 0x401000,%ebx; movl $1,0x401004; ud2 */
    static const uint8_t code[] = {0xc7, 0x05, 0x10, 0x00, 0x40, 0x00, 0x78, 0x56, 0x34, 0x12, 0x8b, 0x1d, 0x00, 0x10,
                                   0x40, 0x00, 0xc7, 0x05, 0x04, 0x10, 0x40, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x0b};
    setup_pmode(tb, code, sizeof(code));
    const uint32_t pd[2] = {0x0 | 0x87 /* P RW US PS */, 0x141000 | 0x07};
    const uint32_t pt[2] = {0x150000 | 0x07, 0x151000 | 0x05};
    memset(tb_ram(tb, 0x140000, 0x2000), 0, 0x2000);
    put(tb, 0x140000, pd, sizeof(pd));
    put(tb, 0x141000, pt, sizeof(pt));
    *(uint32_t *)tb_ram(tb, 0x151000, 4) = 0xcafe;
    struct emu_cpu *cpu = &tb->cpu;
    cpu->s.cr3 = 0x140000;
    cpu->s.cr4 = CR4_PSE;
    cpu->s.cr0 |= CR0_PG | CR0_WP;
    emu_update_mode(cpu);
    emu_tlb_flush(cpu);
    assert_true(cpu->paging);
    assert_int_equal(run(tb), EXC_PF);
    assert_int_equal(cpu->s.cr2, 0x401004);
    assert_int_equal(rd32(tb, P_KSTACK - 24), PFEC_P | PFEC_W | PFEC_U); /* the error code */
    assert_int_equal(rd32(tb, P_KSTACK - 20), P_CODE + 16);
    assert_int_equal(rd32(tb, 0x150010), 0x12345678);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RBX], 0xcafe);
    assert_int_equal(pg32(tb, 0x141000) & 0x60, 0x60); /* A and D on the written page */
    assert_int_equal(pg32(tb, 0x141004) & 0x60, 0x20); /* A only on the read one */
    assert_int_equal(pg32(tb, 0x140004) & 0x20, 0x20); /* A on the PDE */
    assert_int_equal(pg32(tb, 0x140000) & 0x20, 0x20); /* the 4 MiB page too */
}

/* PAE paging with NX: a 2 MiB identity page for 0..2 MiB, and 4 KiB 0x200000 -> 0x200000 with
 * XD. Reading it works; jumping there faults with P|U|I. */
static void test_pmode_paging_pae_nx(void **state)
{
    struct testbed *tb = *state;
    /* mov 0x200000,%ebx; mov $0x200000,%ecx; jmp *%ecx */
    static const uint8_t code[] = {0x8b, 0x1d, 0x00, 0x00, 0x20, 0x00, 0xb9, 0x00, 0x00, 0x20, 0x00, 0xff, 0xe1};
    setup_pmode(tb, code, sizeof(code));
    memset(tb_ram(tb, 0x142000, 0x3000), 0, 0x3000);
    const uint64_t pdpt[4] = {0x143000 | 1, 0, 0, 0};
    const uint64_t pd[2] = {0x0 | 0x87, 0x144000 | 0x07};
    const uint64_t pte = 0x200000 | 0x07 | (1ULL << 63);
    put(tb, 0x142000, pdpt, sizeof(pdpt));
    put(tb, 0x143000, pd, sizeof(pd));
    put(tb, 0x144000, &pte, 8);
    *(uint32_t *)tb_ram(tb, 0x200000, 4) = 0xc3c3c3c3;
    struct emu_cpu *cpu = &tb->cpu;
    cpu->s.efer = EFER_NXE;
    cpu->s.cr3 = 0x142000;
    cpu->s.cr4 = CR4_PAE;
    cpu->s.cr0 |= CR0_PG;
    emu_update_mode(cpu);
    emu_tlb_flush(cpu);
    assert_int_equal(run(tb), EXC_PF);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RBX], 0xc3c3c3c3);
    assert_int_equal(cpu->s.cr2, 0x200000);
    assert_int_equal(rd32(tb, P_KSTACK - 24), PFEC_P | PFEC_U | PFEC_I);
    assert_int_equal(rd32(tb, P_KSTACK - 20), 0x200000);
    /* a reserved bit in a PDPTE (bit 1, RW, is reserved there): P|RSVD on any access */
    const uint64_t bad = 0x143000 | 1 | 2;
    put(tb, 0x142000, &bad, 8);
    setup_pmode(tb, code, sizeof(code));
    cpu->s.efer = EFER_NXE;
    cpu->s.cr3 = 0x142000;
    cpu->s.cr4 = CR4_PAE;
    cpu->s.cr0 |= CR0_PG;
    emu_update_mode(cpu);
    emu_tlb_flush(cpu);
    /* the fetch itself faults, and so does delivering it (the IDT and stack are mapped through the
     * same PDPTE): #DF, then a triple fault */
    run(tb);
    assert_true(cpu->triple_fault);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pmode_int80_iret_and_gp_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pmode_16bit_gate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pmode_io_bitmap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pmode_paging_32bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pmode_paging_pae_nx, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
