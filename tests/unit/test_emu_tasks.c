/* Unit tests for the emulator's control transfers through system descriptors (vmm/emu/task.c):
 * call gates in legacy protected mode (a 32-bit gate to CPL0 with parameters copied to the TSS's
 * SS0:ESP0 stack and RET imm16 back to CPL3 nulling DS, a 16-bit gate with 2-byte slots, and the
 * faults: gate DPL, gate not present, a gate to a data segment, a JMP to an inner level) and a
 * 16-byte 64-bit call gate from compatibility mode; task switches (JMP to a 32-bit and to a
 * 16-bit TSS, CALL through a task gate and IRET back through the back-link, #DF through a task
 * gate in the IDT, CR3 loaded with paging, the checks before a switch); virtual-8086 mode (entry
 * by IRET and by a task switch, INT n / CLI / PUSHF / a denied OUT at IOPL 0 to a #GP monitor
 * with the v86 frame and IRET back, IOPL 3, a gate to a non-CPL0 handler) and the TSS I/O
 * bitmap in protected mode; CPUID without VME. The machine (RAM, the exception port) comes
 * from emu_exec_testbed.h; the tables are built here: every exception goes to a CPL0 stub that
 * OUTs its vector and spins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "emu_exec_testbed.h"
#include "vmm/emu/sys.h"

#define P_GDT 0x100000ULL
#define P_IDT 0x101000ULL
#define P_TSS 0x102000ULL  /* the first task's TSS, with an I/O bitmap */
#define P_TSS2 0x103000ULL /* a second task's TSS */
#define P_TSS_DF 0x104000ULL
#define P_KSTACK 0x110000ULL
#define P_USTACK 0x120000ULL
#define P_KSTACK2 0x128000ULL
#define P_CODE 0x130000ULL
#define P_HANDLERS 0x131000ULL /* exception stubs at +0x100 + 16 * vector; gate targets at +0x800 */
#define P_TARGET (P_HANDLERS + 0x800)
#define P_TASK2 0x134000ULL
#define P_SCRATCH 0x140000ULL

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UCODE 0x1b
#define SEL_UDATA 0x23
#define SEL_TSS 0x28
#define SEL_TSS2 0x30
#define SEL_GATE 0x3b        /* 32-bit call gate, DPL 3, to SEL_KCODE:P_TARGET, 2 parameters */
#define SEL_GATE_DPL0 0x43   /* the same gate with DPL 0 */
#define SEL_GATE_NP 0x4b     /* DPL 3, not present */
#define SEL_GATE_DATA 0x53   /* DPL 3, to a data segment */
#define SEL_TASKGATE 0x5b    /* task gate, DPL 3, to SEL_TSS2 */
#define SEL_TSS_DF 0x60
#define SEL_KCODE16 0x68     /* 16-bit CPL0 code based at P_HANDLERS */
#define SEL_GATE16 0x73      /* 16-bit call gate, DPL 3, to SEL_KCODE16:0x900, 1 parameter */
#define GDT_ENTRIES 15

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

static uint16_t rd16(struct testbed *tb, uint64_t gpa)
{
    uint16_t v;
    memcpy(&v, tb_ram(tb, gpa, 2), 2);
    return v;
}

static void wr32(struct testbed *tb, uint64_t gpa, uint32_t v) { put(tb, gpa, &v, 4); }

static uint64_t gdt_entry(uint32_t base, uint32_t limit, unsigned access, unsigned flags)
{
    return (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) | ((uint64_t)access << 40) |
           ((uint64_t)((limit >> 16) & 0xf) << 48) | ((uint64_t)flags << 52) | ((uint64_t)(base >> 24) << 56);
}

/* A gate: offset, selector, access byte (P DPL type) and, for call gates, the parameter count. */
static uint64_t gate(uint32_t offset, uint16_t sel, unsigned access, unsigned count)
{
    return (offset & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)count << 32) | ((uint64_t)access << 40) |
           ((uint64_t)(offset >> 16) << 48);
}

static void set_idt(struct testbed *tb, unsigned vector, uint64_t g) { put(tb, P_IDT + 8 * vector, &g, 8); }

static struct cpu_segment flat(uint16_t sel, unsigned type, unsigned dpl)
{
    return (struct cpu_segment){.limit = 0xffffffff, .selector = sel, .type = (uint8_t)type, .s = 1,
                                .dpl = (uint8_t)dpl, .present = 1, .db = 1, .g = 1};
}

/* GDT, TSSs, IDT (every exception to a stub that reports its vector) and a CPL3 state at P_CODE
 * running `code` in the task of SEL_TSS. */
static void setup_pmode(struct testbed *tb, const uint8_t *code, size_t len)
{
    const uint64_t gdt[GDT_ENTRIES] = {
        0,
        gdt_entry(0, 0xfffff, 0x9a, 0xc),
        gdt_entry(0, 0xfffff, 0x92, 0xc),
        gdt_entry(0, 0xfffff, 0xfa, 0xc),
        gdt_entry(0, 0xfffff, 0xf2, 0xc),
        gdt_entry((uint32_t)P_TSS, 0x67 + 0x2000, 0x8b, 0), /* busy: the running task */
        gdt_entry((uint32_t)P_TSS2, 0x67, 0xe9, 0), /* DPL 3 */
        gate((uint32_t)P_TARGET, SEL_KCODE, 0xec, 2),
        gate((uint32_t)P_TARGET, SEL_KCODE, 0x8c, 2),
        gate((uint32_t)P_TARGET, SEL_KCODE, 0x6c, 2),
        gate((uint32_t)P_TARGET, SEL_KDATA, 0xec, 2),
        gate(0, SEL_TSS2, 0xe5, 0),
        gdt_entry((uint32_t)P_TSS_DF, 0x67, 0x89, 0),
        gdt_entry((uint32_t)P_HANDLERS, 0xffff, 0x9a, 0),
        gate(0x900, SEL_KCODE16, 0xe4, 1),
    };
    put(tb, P_GDT, gdt, sizeof(gdt));
    memset(tb_ram(tb, P_TSS, 0x3000), 0, 0x3000);
    wr32(tb, P_TSS + 4, (uint32_t)P_KSTACK);
    wr32(tb, P_TSS + 8, SEL_KDATA);
    wr32(tb, P_TSS + 0x64, 0x68u << 16); /* the I/O bitmap right after the TSS: all ports denied */
    memset(tb_ram(tb, P_TSS + 0x68, 0x2000), 0xff, 0x2000);
    for (unsigned v = 0; v < 32; v++) {
        /* mov $v,%eax; out %eax,$GB_EXC_PORT; jmp . */
        const uint8_t stub[16] = {0xb8, (uint8_t)v, 0, 0, 0, 0xe7, GB_EXC_PORT, 0xeb, 0xfe};
        put(tb, P_HANDLERS + 0x100 + 16 * v, stub, sizeof(stub));
        set_idt(tb, v, gate((uint32_t)(P_HANDLERS + 0x100 + 16 * v), SEL_KCODE, 0x8e, 0));
    }
    put(tb, P_CODE, code, len);
    emu_icache_flush(&tb->cpu);
    for (uint64_t p = P_CODE; p < P_SCRATCH; p += 4096) emu_code_written(&tb->cpu, p);

    struct cpu_state *s = &tb->cpu.s;
    memset(s, 0, sizeof(*s));
    s->rip = P_CODE;
    s->gpr[GPR_RSP] = P_USTACK;
    s->rflags = RFLAGS_FIXED;
    s->seg[SEG_CS] = flat(SEL_UCODE, 0xb, 3);
    s->seg[SEG_SS] = s->seg[SEG_DS] = s->seg[SEG_ES] = s->seg[SEG_FS] = s->seg[SEG_GS] = flat(SEL_UDATA, 0x3, 3);
    s->seg[SEG_TR] = (struct cpu_segment){.base = P_TSS, .limit = 0x67 + 0x2000, .selector = SEL_TSS, .type = 0xb,
                                          .present = 1};
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

/* Run until the first write to the exception port, one instruction at a time (so that the state
 * seen is the one right after that OUT). */
static int run(struct testbed *tb)
{
    for (int i = 0; i < 20000 && tb->exc_count == 0; i++) emu_exec(&tb->cpu, 1);
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

/* The frame of an exception from CPL3 on SS0:ESP0: SS -4, ESP -8, EFLAGS -12, CS -16, EIP -20,
 * and the error code (if any) -24. */
#define K_EIP (P_KSTACK - 20)
#define K_ERR (P_KSTACK - 24)

/* ---- call gates -------------------------------------------------------------------------- */

/* CPL3 pushes two parameters and calls through a DPL-3 32-bit gate with a count of 2 to CPL0:
 * the handler sees SS ESP, the two parameters in their order, CS EIP on SS0:ESP0, adds them,
 * loads DS with a DPL-0 selector and returns with RET 8 to CPL3, which pops the parameters off
 * both stacks and nulls DS. */
static void test_call_gate_inner_with_parameters(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {
        0x68, 0x11, 0x11, 0x11, 0x11,             /* push $0x11111111 */
        0x68, 0x22, 0x22, 0x22, 0x22,             /* push $0x22222222 */
        0x9a, 0x00, 0x00, 0x00, 0x00, SEL_GATE, 0, /* lcall $SEL_GATE,$0 (the offset is ignored) */
        0x89, 0xc3,                               /* mov %eax,%ebx */
        0x0f, 0x0b,                               /* ud2 */
    };
    static const uint8_t handler[] = {
        0x89, 0xe6,                   /* mov %esp,%esi */
        0xbf, 0x00, 0x00, 0x14, 0x00, /* mov $P_SCRATCH,%edi */
        0xb9, 0x06, 0x00, 0x00, 0x00, /* mov $6,%ecx */
        0xfc, 0xf3, 0xa5,             /* cld; rep movsl: copy the frame */
        0x8b, 0x44, 0x24, 0x08,       /* mov 8(%esp),%eax */
        0x03, 0x44, 0x24, 0x0c,       /* add 12(%esp),%eax */
        0xb9, SEL_KDATA, 0, 0, 0,     /* mov $SEL_KDATA,%ecx */
        0x8e, 0xd9,                   /* mov %ecx,%ds */
        0xca, 0x08, 0x00,             /* lret $8 */
    };
    setup_pmode(tb, code, sizeof(code));
    put(tb, P_TARGET, handler, sizeof(handler));
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(run(tb), EXC_UD);
    /* the frame the gate built */
    assert_int_equal(rd32(tb, P_SCRATCH + 0), P_CODE + 17);
    assert_int_equal(rd32(tb, P_SCRATCH + 4), SEL_UCODE);
    assert_int_equal(rd32(tb, P_SCRATCH + 8), 0x22222222);
    assert_int_equal(rd32(tb, P_SCRATCH + 12), 0x11111111);
    assert_int_equal(rd32(tb, P_SCRATCH + 16), P_USTACK - 8);
    assert_int_equal(rd32(tb, P_SCRATCH + 20), SEL_UDATA);
    /* back at CPL3 */
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RBX], 0x33333333);
    assert_int_equal(rd32(tb, P_KSTACK - 8), P_USTACK); /* ESP at the UD2: both parameters popped */
    assert_int_equal(rd32(tb, P_KSTACK - 16), SEL_UCODE);
    assert_int_equal(rd32(tb, P_KSTACK - 20), P_CODE + 19);
    assert_int_equal(cpu->s.seg[SEG_DS].selector, 0); /* DPL 0 data: nulled on the return to CPL3 */
    assert_true(cpu->s.seg[SEG_DS].unusable);
    assert_int_equal(cpu->s.seg[SEG_ES].selector, SEL_UDATA);
}

/* lcall or ljmp (`op` 0x9a / 0xea) to `sel` from CPL3: the vector and error code delivered. */
static void far_fault(struct testbed *tb, uint8_t op, uint16_t sel, int vector, uint32_t error)
{
    const uint8_t code[] = {op, 0, 0, 0, 0, (uint8_t)sel, (uint8_t)(sel >> 8)};
    setup_pmode(tb, code, sizeof(code));
    assert_int_equal(run(tb), vector);
    assert_int_equal(rd32(tb, K_ERR), error);
    assert_int_equal(rd32(tb, K_EIP), P_CODE); /* a fault: at the far CALL/JMP itself */
    assert_int_equal(rd32(tb, P_KSTACK - 8), P_USTACK); /* nothing pushed */
}

static void test_call_gate_faults(void **state)
{
    struct testbed *tb = *state;
    far_fault(tb, 0x9a, SEL_GATE_DPL0, EXC_GP, SEL_GATE_DPL0 & ~3u); /* gate DPL 0 < CPL 3 */
    far_fault(tb, 0x9a, SEL_GATE_NP, EXC_NP, SEL_GATE_NP & ~3u);     /* gate not present */
    far_fault(tb, 0x9a, SEL_GATE_DATA, EXC_GP, SEL_KDATA);           /* target not code */
    far_fault(tb, 0xea, SEL_GATE, EXC_GP, SEL_KCODE);                /* JMP to an inner level */
}

/* Compatibility mode under the 64-bit kernel: a far CALL through a 16-byte 64-bit call gate
 * (DPL 3) to the 64-bit kernel code segment switches to RSP0 with a null SS and pushes SS RSP
 * CS RIP, 8 bytes each. */
static void test_call_gate_64bit_from_compat(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0x9a, 0, 0, 0, 0, 0x53, 0}; /* lcall $0x53,$0 */
    /* at GB_CODE + 0x800, 64-bit: mov $0x77,%eax; out %eax,$GB_EXC_PORT; jmp . */
    static const uint8_t handler[] = {0xb8, 0x77, 0, 0, 0, 0xe7, GB_EXC_PORT, 0xeb, 0xfe};
    tb_start(tb, code, sizeof(code), 3);
    assert_int_equal(tb_enter_compat(tb), 0);
    put(tb, GB_CODE + 0x800, handler, sizeof(handler));
    const uint64_t g[2] = {gate((uint32_t)(GB_CODE + 0x800), GB_SEL_KCODE, 0xec, 0), 0};
    put(tb, GB_GDT + 10 * 8, g, sizeof(g));
    struct emu_cpu *cpu = &tb->cpu;
    cpu->s.gdtr.limit = 12 * 8 - 1;
    uint64_t rsp = cpu->s.gpr[GPR_RSP];
    assert_false(cpu->long64);
    assert_int_equal(run(tb), 0x77);
    assert_true(cpu->long64);
    assert_int_equal(cpu->cpl, 0);
    assert_int_equal(cpu->s.seg[SEG_SS].selector, 0);
    assert_int_equal(cpu->s.seg[SEG_CS].selector, GB_SEL_KCODE);
    const uint64_t *f = tb_ram(tb, GB_KSTACK_TOP - 32, 32);
    assert_int_equal(f[3], TB_SEL_UDATA32);
    assert_int_equal(f[2], rsp);
    assert_int_equal(f[1], TB_SEL_UCODE32);
    assert_int_equal(f[0], GB_CODE + 7);
    assert_int_equal(cpu->s.gpr[GPR_RSP], GB_KSTACK_TOP - 32);
}

/* ---- task switches ---------------------------------------------------------------------------- */

/* A 32-bit TSS at `base` for a CPL0 task: EIP, ESP, ECX, flat kernel segments. */
static void setup_tss(struct testbed *tb, uint64_t base, uint32_t eip, uint32_t esp, uint32_t ecx)
{
    memset(tb_ram(tb, base, 0x68), 0, 0x68);
    wr32(tb, base + 0x20, eip);
    wr32(tb, base + 0x24, 0x2);
    wr32(tb, base + 0x28 + 4 * 1, ecx);
    wr32(tb, base + 0x28 + 4 * 4, esp);
    const uint16_t segs[6] = {SEL_KDATA, SEL_KCODE, SEL_KDATA, SEL_KDATA, 0, 0};
    for (unsigned i = 0; i < 6; i++) wr32(tb, base + 0x48 + 4 * i, segs[i]);
}

static unsigned gdt_type(struct testbed *tb, uint16_t sel) { return (rd32(tb, P_GDT + (sel & ~7u) + 4) >> 8) & 15; }

/* JMP to an available TSS from CPL3: the outgoing state lands in the old TSS, the old busy bit
 * is cleared and the new one set, no back-link or NT, CR0.TS set, and the new task runs at CPL0
 * with its registers (#UD there, on its own stack). */
static void test_task_jmp(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {
        0xb9, 0x34, 0x12, 0, 0,                  /* mov $0x1234,%ecx */
        0xea, 0, 0, 0, 0, SEL_TSS2, 0,           /* ljmp $SEL_TSS2,$0 */
    };
    static const uint8_t task2[] = {0x0f, 0x0b}; /* ud2 */
    setup_pmode(tb, code, sizeof(code));
    put(tb, P_TASK2, task2, sizeof(task2));
    setup_tss(tb, P_TSS2, (uint32_t)P_TASK2, (uint32_t)P_KSTACK2, 0x5555);
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(run(tb), EXC_UD);
    /* the old task's state */
    assert_int_equal(rd32(tb, P_TSS + 0x20), P_CODE + 12);
    assert_int_equal(rd32(tb, P_TSS + 0x28 + 4), 0x1234);
    assert_int_equal(rd32(tb, P_TSS + 0x28 + 16), P_USTACK);
    assert_int_equal(rd32(tb, P_TSS + 0x4c), SEL_UCODE);
    assert_int_equal(rd32(tb, P_TSS + 0x50), SEL_UDATA);
    assert_int_equal(rd32(tb, P_TSS + 0x24) & 0x2, 0x2);
    /* busy bits, back-link, NT, TS */
    assert_int_equal(gdt_type(tb, SEL_TSS), 9);
    assert_int_equal(gdt_type(tb, SEL_TSS2), 0xb);
    assert_int_equal(rd16(tb, P_TSS2), 0);
    assert_int_equal(cpu->s.seg[SEG_TR].selector, SEL_TSS2);
    assert_int_equal(cpu->s.seg[SEG_TR].base, P_TSS2);
    assert_true(cpu->s.cr0 & CR0_TS);
    assert_false(emu_get_rflags(cpu) & RFLAGS_NT);
    /* the new task */
    assert_int_equal(cpu->cpl, 0);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RCX], 0x5555);
    assert_int_equal(cpu->s.seg[SEG_CS].selector, SEL_KCODE);
    assert_int_equal(cpu->s.seg[SEG_SS].selector, SEL_KDATA);
    assert_true(cpu->s.seg[SEG_FS].unusable);
    assert_int_equal(cpu->s.gpr[GPR_RSP], P_KSTACK2 - 12); /* EFLAGS CS EIP of the #UD */
    assert_int_equal(rd32(tb, P_KSTACK2 - 12), P_TASK2);
}

/* CALL through a DPL-3 task gate: the new task runs nested (NT set, the back-link, both TSSs
 * busy); its IRET returns through the back-link (NT cleared in the state it saves, its busy bit
 * cleared) and the caller carries on after the CALL with its own registers. */
static void test_task_call_and_iret(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {
        0xb8, 0x99, 0, 0, 0,                     /* mov $0x99,%eax */
        0x9a, 0, 0, 0, 0, SEL_TASKGATE, 0,       /* lcall $SEL_TASKGATE,$0 */
        0x89, 0xc3,                              /* mov %eax,%ebx */
        0x0f, 0x0b,                              /* ud2 */
    };
    static const uint8_t task2[] = {
        0x9c, 0x58,                              /* pushf; pop %eax */
        0xa3, 0x00, 0x00, 0x14, 0x00,            /* mov %eax,P_SCRATCH */
        0x0f, 0x00, 0xc8,                        /* str %ax */
        0xa3, 0x04, 0x00, 0x14, 0x00,            /* mov %eax,P_SCRATCH+4 */
        0xcf,                                    /* iret */
    };
    setup_pmode(tb, code, sizeof(code));
    put(tb, P_TASK2, task2, sizeof(task2));
    setup_tss(tb, P_TSS2, (uint32_t)P_TASK2, (uint32_t)P_KSTACK2, 0);
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(run(tb), EXC_UD);
    /* inside the called task */
    assert_true(rd32(tb, P_SCRATCH) & RFLAGS_NT);
    assert_int_equal(rd32(tb, P_SCRATCH + 4) & 0xffff, SEL_TSS2);
    assert_int_equal(rd16(tb, P_TSS2), SEL_TSS); /* the back-link */
    /* after its IRET */
    assert_int_equal(cpu->s.seg[SEG_TR].selector, SEL_TSS);
    assert_int_equal(gdt_type(tb, SEL_TSS), 0xb);
    assert_int_equal(gdt_type(tb, SEL_TSS2), 9);
    assert_false(rd32(tb, P_TSS2 + 0x24) & RFLAGS_NT);   /* saved without NT */
    assert_int_equal(rd32(tb, P_TSS2 + 0x20), P_TASK2 + 16); /* past its IRET */
    assert_false(emu_get_rflags(cpu) & RFLAGS_NT);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RBX], 0x99);
    assert_int_equal(rd32(tb, P_KSTACK - 16), SEL_UCODE); /* back at CPL3 */
    assert_int_equal(rd32(tb, K_EIP), P_CODE + 14); /* the UD2 after the CALL */
    assert_int_equal(rd32(tb, P_KSTACK - 8), P_USTACK);
}

/* #GP at CPL3 whose IDT entry is not present: #NP while delivering it, so #DF, whose IDT entry is
 * a task gate (as Linux i386 has): the #DF task runs nested with error code 0 on its stack. */
static void test_task_gate_double_fault(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0xfa}; /* cli: #GP(0) at CPL3, IOPL 0 */
    /* pop %ebx; mov $0x48,%eax; out %eax,$GB_EXC_PORT; jmp . */
    static const uint8_t df_task[] = {0x5b, 0xb8, 0x48, 0, 0, 0, 0xe7, GB_EXC_PORT, 0xeb, 0xfe};
    setup_pmode(tb, code, sizeof(code));
    put(tb, P_TASK2 + 0x100, df_task, sizeof(df_task));
    setup_tss(tb, P_TSS_DF, (uint32_t)(P_TASK2 + 0x100), (uint32_t)P_KSTACK2, 0);
    set_idt(tb, EXC_GP, gate((uint32_t)(P_HANDLERS + 0x100 + 16 * EXC_GP), SEL_KCODE, 0x0e, 0)); /* P=0 */
    set_idt(tb, EXC_DF, gate(0, SEL_TSS_DF, 0x85, 0));
    struct emu_cpu *cpu = &tb->cpu;
    tb->cpu.s.gpr[GPR_RBX] = 0x777;
    assert_int_equal(run(tb), 0x48);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RBX], 0); /* the #DF error code */
    assert_int_equal(cpu->s.gpr[GPR_RSP], P_KSTACK2);
    assert_int_equal(cpu->s.seg[SEG_TR].selector, SEL_TSS_DF);
    assert_int_equal(rd16(tb, P_TSS_DF), SEL_TSS);
    assert_true(emu_get_rflags(cpu) & RFLAGS_NT);
    assert_int_equal(gdt_type(tb, SEL_TSS), 0xb);
    assert_int_equal(gdt_type(tb, SEL_TSS_DF), 0xb);
    assert_int_equal(rd32(tb, P_TSS + 0x20), P_CODE); /* the faulting CLI */
    assert_int_equal(rd32(tb, P_TSS + 0x4c), SEL_UCODE);
    assert_int_equal(rd32(tb, P_TSS + 0x28 + 12), 0x777);
}

/* The checks before a switch: a busy TSS (#GP), a TSS limit below 0x67 (#TS), a task gate whose
 * DPL is below CPL (#GP with the gate's selector), all at the JMP/CALL and changing nothing. */
static void test_task_switch_faults(void **state)
{
    struct testbed *tb = *state;
    far_fault(tb, 0xea, SEL_TSS | 3, EXC_GP, SEL_TSS); /* busy: the running task */
    far_fault(tb, 0x9a, SEL_TSS_DF | 3, EXC_GP, SEL_TSS_DF); /* TSS DPL 0 < CPL 3 */
    /* a limit of 0x40 */
    const uint64_t small = gdt_entry((uint32_t)P_TSS2, 0x40, 0xe9, 0);
    const uint8_t code[] = {0xea, 0, 0, 0, 0, SEL_TSS2 | 3, 0};
    setup_pmode(tb, code, sizeof(code));
    put(tb, P_GDT + SEL_TSS2, &small, 8);
    assert_int_equal(run(tb), EXC_TS);
    assert_int_equal(rd32(tb, K_ERR), SEL_TSS2);
    assert_int_equal(gdt_type(tb, SEL_TSS2), 9);
    assert_int_equal(tb->cpu.s.seg[SEG_TR].selector, SEL_TSS);
    /* a DPL-0 task gate from CPL 3 */
    const uint64_t g0 = gate(0, SEL_TSS2, 0x85, 0);
    const uint8_t code2[] = {0x9a, 0, 0, 0, 0, SEL_TASKGATE, 0};
    setup_pmode(tb, code2, sizeof(code2));
    put(tb, P_GDT + (SEL_TASKGATE & ~7u), &g0, 8);
    assert_int_equal(run(tb), EXC_GP);
    assert_int_equal(rd32(tb, K_ERR), SEL_TASKGATE & ~3u);
}

/* ---- virtual-8086 mode -------------------------------------------------------------------------- */

#define V86_CODE 0x10010ULL /* CS 0x1000, IP 0x10 */

/* CPL0 code that IRETs to virtual-8086 mode (CS:IP 1000:0010, SS:SP 4000:0100, DS 2000, ES 3000)
 * with `eflags`, and a #GP monitor at P_TARGET that loads DS/ES, copies its frame (error EIP CS
 * EFLAGS ESP SS ES DS FS GS) to P_SCRATCH, counts at P_SCRATCH+0x40, OUTs 13, then skips two
 * bytes of the v86 code and IRETs back. */
static void setup_v86(struct testbed *tb, uint32_t eflags, const uint8_t *v86, size_t len)
{
    uint8_t code[] = {
        0x6a, 0x00, 0x6a, 0x00,                  /* push $0 (GS); push $0 (FS) */
        0x68, 0x00, 0x20, 0x00, 0x00,            /* push $0x2000 (DS) */
        0x68, 0x00, 0x30, 0x00, 0x00,            /* push $0x3000 (ES) */
        0x68, 0x00, 0x40, 0x00, 0x00,            /* push $0x4000 (SS) */
        0x68, 0x00, 0x01, 0x00, 0x00,            /* push $0x100 (ESP) */
        0x68, (uint8_t)eflags, (uint8_t)(eflags >> 8), (uint8_t)(eflags >> 16), 0x00, /* EFLAGS */
        0x68, 0x00, 0x10, 0x00, 0x00,            /* push $0x1000 (CS) */
        0x68, 0x10, 0x00, 0x00, 0x00,            /* push $0x10 (EIP) */
        0xcf,                                    /* iret */
    };
    static const uint8_t monitor[] = {
        0xb8, SEL_KDATA, 0, 0, 0, 0x8e, 0xd8, 0x8e, 0xc0, /* mov $SEL_KDATA,%eax; mov %eax,%ds; mov %eax,%es */
        0x89, 0xe6, 0xbf, 0x00, 0x00, 0x14, 0x00,         /* mov %esp,%esi; mov $P_SCRATCH,%edi */
        0xb9, 0x0a, 0, 0, 0, 0xfc, 0xf3, 0xa5,            /* mov $10,%ecx; cld; rep movsl */
        0xff, 0x05, 0x40, 0x00, 0x14, 0x00,               /* incl P_SCRATCH+0x40 */
        0xb8, 0x0d, 0, 0, 0, 0xe7, GB_EXC_PORT,           /* mov $13,%eax; out %eax,$GB_EXC_PORT */
        0x83, 0xc4, 0x04,                                 /* add $4,%esp: the error code */
        0x83, 0x04, 0x24, 0x02,                           /* addl $2,(%esp): past the instruction */
        0xcf,                                             /* iret */
    };
    setup_pmode(tb, code, sizeof(code));
    put(tb, P_TARGET, monitor, sizeof(monitor));
    set_idt(tb, EXC_GP, gate((uint32_t)P_TARGET, SEL_KCODE, 0x8e, 0));
    put(tb, V86_CODE, v86, len);
    memset(tb_ram(tb, P_SCRATCH, 0x80), 0, 0x80);
    *(uint8_t *)tb_ram(tb, P_TSS + 0x68 + GB_EXC_PORT / 8, 1) &= (uint8_t)~(1u << (GB_EXC_PORT & 7));
    struct emu_cpu *cpu = &tb->cpu;
    cpu->s.seg[SEG_CS] = flat(SEL_KCODE, 0xb, 0);
    cpu->s.seg[SEG_SS] = cpu->s.seg[SEG_DS] = cpu->s.seg[SEG_ES] = flat(SEL_KDATA, 0x3, 0);
    cpu->s.gpr[GPR_RSP] = P_KSTACK;
    emu_update_mode(cpu);
}

static int run_again(struct testbed *tb)
{
    tb->exc_count = 0;
    tb->exc_vector = -1;
    return run(tb);
}

/* IRET at CPL0 enters virtual-8086 mode; its segments are based at selector * 16. INT n at IOPL 0
 * raises #GP(0), which leaves v86 mode through the 32-bit gate to the CPL0 monitor with GS FS DS
 * ES SS ESP EFLAGS CS EIP error on SS0:ESP0 and DS ES FS GS null. The monitor's IRET returns to
 * v86 mode; OUT to a port the TSS's I/O bitmap allows works, to one it denies raises #GP(0), and
 * so do CLI and PUSHF at IOPL 0. */
static void test_v86_iret_int_monitor_and_io(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t v86[] = {
        0xb8, 0x34, 0x12, /* 0x10 mov $0x1234,%ax */
        0xa3, 0x10, 0x00, /* 0x13 mov %ax,0x10 (DS:0x10 = 0x20010) */
        0xcd, 0x21,       /* 0x16 int $0x21 */
        0xb0, 0x66,       /* 0x18 mov $0x66,%al */
        0xe6, GB_EXC_PORT, /* 0x1a out %al,$GB_EXC_PORT (allowed) */
        0xe6, 0xf6,       /* 0x1c out %al,$0xf6 (denied) */
        0xfa, 0x90,       /* 0x1e cli; nop */
        0x9c, 0x90,       /* 0x20 pushf; nop */
        0xb0, 0x77,       /* 0x22 mov $0x77,%al */
        0xe6, GB_EXC_PORT, /* 0x24 out %al,$GB_EXC_PORT */
    };
    setup_v86(tb, 0x20002, v86, sizeof(v86));
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(run(tb), EXC_GP);
    assert_int_equal(*(uint16_t *)tb_ram(tb, 0x20010, 2), 0x1234);
    const uint32_t expect[10] = {0, 0x16, 0x1000, 0, 0x100, 0x4000, 0x3000, 0x2000, 0, 0};
    for (unsigned i = 0; i < 10; i++)
        if (i != 3) assert_int_equal(rd32(tb, P_SCRATCH + 4 * i), expect[i]);
    assert_int_equal(rd32(tb, P_SCRATCH + 12) & (RFLAGS_VM | RFLAGS_IOPL), RFLAGS_VM);
    assert_int_equal(cpu->cpl, 0);
    assert_false(emu_get_rflags(cpu) & RFLAGS_VM);
    assert_true(cpu->s.seg[SEG_FS].unusable);
    assert_true(cpu->s.seg[SEG_GS].unusable);
    assert_int_equal(cpu->s.seg[SEG_SS].selector, SEL_KDATA);

    assert_int_equal(run_again(tb), 0x66); /* back in v86 mode: the allowed OUT */
    assert_true(emu_get_rflags(cpu) & RFLAGS_VM);
    assert_int_equal(cpu->cpl, 3);
    assert_int_equal(cpu->s.seg[SEG_CS].base, 0x10000);
    assert_int_equal(cpu->s.seg[SEG_DS].selector, 0x2000);
    assert_int_equal(cpu->s.seg[SEG_SS].base, 0x40000);
    assert_int_equal(cpu->s.gpr[GPR_RSP] & 0xffff, 0x100);

    assert_int_equal(run_again(tb), EXC_GP); /* the denied OUT */
    assert_int_equal(rd32(tb, P_SCRATCH), 0);
    assert_int_equal(rd32(tb, P_SCRATCH + 4), 0x1c);
    assert_int_equal(run_again(tb), EXC_GP); /* CLI */
    assert_int_equal(rd32(tb, P_SCRATCH + 4), 0x1e);
    assert_int_equal(run_again(tb), EXC_GP); /* PUSHF */
    assert_int_equal(rd32(tb, P_SCRATCH + 4), 0x20);
    assert_int_equal(run_again(tb), 0x77);
    assert_int_equal(rd32(tb, P_SCRATCH + 0x40), 4);
}

/* IOPL 3: INT n goes through the IDT; a gate whose code segment is not CPL0 raises #GP with its
 * selector. CLI, PUSHF and IRET run in v86 mode itself. */
static void test_v86_iopl3(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t v86[] = {
        0xfa, 0x9c, 0x0e,             /* 0x10 cli; pushf; push %cs */
        0x68, 0x19, 0x00,             /* 0x13 push $0x19 */
        0xcf, 0x90, 0x90,             /* 0x16 iret (to 0x19); nop; nop (skipped) */
        0xcd, 0x21,                   /* 0x19 int $0x21 */
    };
    setup_v86(tb, 0x23202, v86, sizeof(v86));
    set_idt(tb, 0x21, gate(0x100, SEL_UCODE, 0xef, 0)); /* trap gate, DPL 3, to CPL3 code */
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(run(tb), EXC_GP);
    assert_int_equal(rd32(tb, P_SCRATCH), SEL_UCODE & ~3u); /* #GP(selector) */
    assert_int_equal(rd32(tb, P_SCRATCH + 4), 0x19);        /* at the INT: IRET went there */
    uint32_t fl = rd32(tb, P_SCRATCH + 12);
    assert_int_equal(fl & (RFLAGS_VM | RFLAGS_IOPL | RFLAGS_IF), RFLAGS_VM | RFLAGS_IOPL);
    assert_int_equal(cpu->s.gpr[GPR_RSP], P_KSTACK - 40);
}

/* Protected mode at CPL 3 > IOPL 0: IN/OUT as the TSS's I/O permission bitmap says, #GP(0) for a
 * port it denies (and for a word access of which one byte is denied). */
static void test_pmode_io_bitmap(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {
        0xb0, 0x55, 0xe6, GB_EXC_PORT, /* mov $0x55,%al; out %al,$GB_EXC_PORT (allowed) */
        0x66, 0xe7, GB_EXC_PORT,       /* out %ax,$GB_EXC_PORT: 0xf6 is denied */
    };
    setup_pmode(tb, code, sizeof(code));
    *(uint8_t *)tb_ram(tb, P_TSS + 0x68 + GB_EXC_PORT / 8, 1) &= (uint8_t)~(1u << (GB_EXC_PORT & 7));
    assert_int_equal(run(tb), 0x55);
    assert_int_equal(run_again(tb), EXC_GP);
    assert_int_equal(rd32(tb, K_ERR), 0);
    assert_int_equal(rd32(tb, K_EIP), P_CODE + 4);
}

/* A task switch to a TSS whose EFLAGS has VM set enters virtual-8086 mode with the TSS's
 * selectors loaded as v86 segments. That TSS has no I/O bitmap (its base lies beyond the limit),
 * so v86 mode's OUT raises #GP(0), delivered to CPL0 on the new TSS's SS0:ESP0 with the v86
 * frame. CPUID does not advertise VME (CR4.VME is not implemented). */
static void test_v86_by_task_switch_and_no_vme(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0xea, 0, 0, 0, 0, SEL_TSS2 | 3, 0}; /* ljmp $SEL_TSS2,$0 */
    static const uint8_t v86[] = {0xb0, 0x66, 0xe6, GB_EXC_PORT};    /* mov $0x66,%al; out %al,$.. */
    setup_pmode(tb, code, sizeof(code));
    put(tb, V86_CODE, v86, sizeof(v86));
    setup_tss(tb, P_TSS2, 0x10, 0x100, 0);
    wr32(tb, P_TSS2 + 4, (uint32_t)P_KSTACK2);
    wr32(tb, P_TSS2 + 8, SEL_KDATA);
    wr32(tb, P_TSS2 + 0x24, 0x20002);
    const uint16_t segs[6] = {0x3000, 0x1000, 0x4000, 0x2000, 0x5000, 0x6000};
    for (unsigned i = 0; i < 6; i++) wr32(tb, P_TSS2 + 0x48 + 4 * i, segs[i]);
    wr32(tb, P_TSS2 + 0x64, 0x68u << 16);
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(run(tb), EXC_GP);
    const uint32_t expect[10] = {0, 0x12, 0x1000, 0, 0x100, 0x4000, 0x3000, 0x2000, 0x5000, 0x6000};
    for (unsigned i = 0; i < 10; i++)
        if (i != 3) assert_int_equal(rd32(tb, P_KSTACK2 - 40 + 4 * i), expect[i]);
    assert_true(rd32(tb, P_KSTACK2 - 40 + 12) & RFLAGS_VM);
    assert_int_equal(cpu->s.seg[SEG_TR].selector, SEL_TSS2 | 3); /* as the JMP named it, RPL included */
    cpu->s.gpr[GPR_RAX] = 1;
    cpu->s.gpr[GPR_RCX] = 0;
    emu_sys_cpuid(cpu);
    assert_false(cpu->s.gpr[GPR_RDX] & (1u << 1)); /* CPUID.1:EDX.VME */
}

/* A JMP to a 16-bit TSS (type 1, limit 0x2b): IP FLAGS, the low halves of the eight registers, ES
 * CS SS DS and the LDT come from it; FS and GS are nulled; no CR3. */
static void test_task_jmp_16bit_tss(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0xb9, 0x78, 0x56, 0x34, 0x12, 0xea, 0, 0, 0, 0, SEL_TSS2 | 3, 0};
    static const uint8_t task2[] = {0x0f, 0x0b}; /* ud2 */
    setup_pmode(tb, code, sizeof(code));
    put(tb, 0xc000, task2, sizeof(task2)); /* IP is 16 bits: below 64 KiB */
    const uint64_t d16 = gdt_entry((uint32_t)P_TSS2, 0x2b, 0xe1, 0); /* 16-bit TSS, available, DPL 3 */
    put(tb, P_GDT + SEL_TSS2, &d16, 8);
    memset(tb_ram(tb, P_TSS2, 0x2c), 0, 0x2c);
    const uint16_t ip = 0xc000, flags = 0x2, cx = 0xbeef, sp = 0x8000;
    put(tb, P_TSS2 + 0x0e, &ip, 2);
    put(tb, P_TSS2 + 0x10, &flags, 2);
    put(tb, P_TSS2 + 0x12 + 2, &cx, 2);
    put(tb, P_TSS2 + 0x12 + 8, &sp, 2);
    const uint16_t segs[4] = {SEL_KDATA, SEL_KCODE, SEL_KDATA, SEL_KDATA};
    put(tb, P_TSS2 + 0x22, segs, sizeof(segs));
    struct emu_cpu *cpu = &tb->cpu;
    assert_int_equal(run(tb), EXC_UD);
    assert_int_equal(cpu->s.seg[SEG_TR].type, 3); /* busy 16-bit TSS */
    assert_int_equal(gdt_type(tb, SEL_TSS2), 3);
    assert_int_equal((uint32_t)cpu->s.gpr[GPR_RCX], 0x1234beef); /* the upper half kept */
    assert_true(cpu->s.seg[SEG_FS].unusable);
    assert_int_equal(cpu->s.seg[SEG_CS].selector, SEL_KCODE);
    assert_int_equal(cpu->s.gpr[GPR_RSP], (P_USTACK & ~0xffffULL) + 0x8000 - 12); /* SP from the TSS */
    assert_int_equal(rd32(tb, cpu->s.gpr[GPR_RSP]), ip);                          /* the #UD frame's EIP */
    assert_int_equal(rd32(tb, P_TSS + 0x28 + 4), 0x12345678);      /* the old 32-bit TSS */
}

/* With paging on, a switch to a 32-bit TSS loads its CR3 (and the old TSS's CR3 field, static,
 * is not written). */
static void test_task_switch_loads_cr3(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t code[] = {0xea, 0, 0, 0, 0, SEL_TSS2 | 3, 0};
    static const uint8_t task2[] = {0x0f, 0x0b};
    setup_pmode(tb, code, sizeof(code));
    put(tb, P_TASK2, task2, sizeof(task2));
    setup_tss(tb, P_TSS2, (uint32_t)P_TASK2, (uint32_t)P_KSTACK2, 0);
    const uint32_t pde = 0x87; /* a 4 MiB identity page: P RW US PS */
    memset(tb_ram(tb, 0x150000, 0x2000), 0, 0x2000);
    put(tb, 0x150000, &pde, 4);
    put(tb, 0x151000, &pde, 4);
    wr32(tb, P_TSS2 + 0x1c, 0x151000);
    struct emu_cpu *cpu = &tb->cpu;
    cpu->s.cr3 = 0x150000;
    cpu->s.cr4 = CR4_PSE;
    cpu->s.cr0 |= CR0_PG;
    emu_update_mode(cpu);
    emu_tlb_flush(cpu);
    assert_int_equal(run(tb), EXC_UD);
    assert_int_equal(cpu->s.cr3, 0x151000);
    assert_int_equal(rd32(tb, P_TSS + 0x1c), 0);
    assert_int_equal(cpu->s.seg[SEG_TR].selector, SEL_TSS2 | 3);
}

/* A 16-bit call gate (count 1) from CPL3 to a 16-bit CPL0 segment: 2-byte slots (SS SP param CS
 * IP, IP the low half of the caller's EIP, so the caller sits below 64 KiB), and a 16-bit
 * RET 2 back to CPL3. */
static void test_call_gate_16bit(void **state)
{
    struct testbed *tb = *state;
    static const uint8_t caller[] = {
        0x66, 0x68, 0x44, 0x44,                      /* pushw $0x4444 */
        0x9a, 0x00, 0x00, 0x00, 0x00, SEL_GATE16, 0, /* lcall $SEL_GATE16,$0 */
        0x89, 0xc3,                                  /* mov %eax,%ebx */
        0x0f, 0x0b,                                  /* ud2 */
    };
    /* 16-bit code on the 32-bit SS0:ESP0 stack: 67 for ESP-based addressing */
    static const uint8_t handler16[] = {
        0x67, 0x8b, 0x44, 0x24, 0x04, /* mov 4(%esp),%ax: the parameter */
        0x67, 0x8b, 0x4c, 0x24, 0x06, /* mov 6(%esp),%cx: SP */
        0x67, 0x8b, 0x54, 0x24, 0x08, /* mov 8(%esp),%dx: SS */
        0x67, 0x8b, 0x74, 0x24, 0x02, /* mov 2(%esp),%si: CS */
        0x67, 0x8b, 0x3c, 0x24,       /* mov (%esp),%di: IP */
        0xca, 0x02, 0x00,             /* lret $2 */
    };
    setup_pmode(tb, caller, sizeof(caller));
    put(tb, 0xc000, caller, sizeof(caller));
    put(tb, P_HANDLERS + 0x900, handler16, sizeof(handler16));
    struct emu_cpu *cpu = &tb->cpu;
    cpu->s.rip = 0xc000;
    cpu->s.gpr[GPR_RSP] = 0xb000;
    assert_int_equal(run(tb), EXC_UD);
    assert_int_equal((uint16_t)cpu->s.gpr[GPR_RBX], 0x4444);
    assert_int_equal((uint16_t)cpu->s.gpr[GPR_RCX], 0xaffe);
    assert_int_equal((uint16_t)cpu->s.gpr[GPR_RDX], SEL_UDATA);
    assert_int_equal((uint16_t)cpu->s.gpr[GPR_RSI], SEL_UCODE);
    assert_int_equal((uint16_t)cpu->s.gpr[GPR_RDI], 0xc00b);
    assert_int_equal(rd32(tb, P_KSTACK - 16), SEL_UCODE); /* the #UD came from CPL3 */
    assert_int_equal(rd32(tb, K_EIP), 0xc00d);
    assert_int_equal(rd32(tb, P_KSTACK - 8), 0xb000);     /* the parameter popped off both stacks */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_call_gate_inner_with_parameters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_gate_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_gate_64bit_from_compat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_call_gate_16bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_jmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_call_and_iret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_gate_double_fault, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_switch_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_jmp_16bit_tss, setup, teardown),
        cmocka_unit_test_setup_teardown(test_task_switch_loads_cr3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v86_iret_int_monitor_and_io, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v86_iopl3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pmode_io_bitmap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v86_by_task_switch_and_no_vme, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
