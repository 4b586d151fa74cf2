/* Unit tests for the kvm backend (vmm/kvm/): small guests at CPL3 in long mode exercise
 * state round trips, guest memory, port I/O and MMIO exits, string I/O, exception delivery,
 * triple fault, and stopping a running vCPU from another thread.
 * Each test skips with a reason when /dev/kvm is absent or cannot create a VM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest_builder.h"
#include "kvm_rig.h"
#include "vmm/device.h"
#include "vmm/irqchip.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define TEST_RAM (4ULL << 20)
#define TEST_PORT 0x1234
#define TEST_MMIO 0xd0000000ULL
/* mov [0x40000000], al: the store to RIG_DONE_MMIO that ends a test guest */
#define DONE_MMIO_AL 0x88, 0x04, 0x25, 0x00, 0x00, 0x00, 0x40

/* ---- fixtures ---------------------------------------------------------------------- */

struct access {
    uint64_t addr, data;
    unsigned size;
    bool is_write;
};

struct recorder {
    struct access log[64];
    unsigned n;
    uint64_t reads[8]; /* value returned by the i-th read, masked to the access size */
    unsigned nreads;
};

static void record(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct recorder *rec = opaque;
    if (!is_write) {
        uint64_t v = rec->reads[rec->nreads++ % 8];
        *data = size == 8 ? v : v & ((1ULL << (8 * size)) - 1);
    }
    if (rec->n < 64) rec->log[rec->n++] = (struct access){.addr = offset, .data = *data, .size = size, .is_write = is_write};
}

/* Why the rig could not be built (KVM unavailable), reported once per skipped test. */
static char g_skip_reason[256];

static int rig_setup(void **state)
{
    *state = kvm_rig_new(TEST_RAM, g_skip_reason, sizeof(g_skip_reason));
    return 0;
}

static int rig_teardown(void **state)
{
    kvm_rig_free(*state);
    return 0;
}

static struct kvm_rig *rig_or_skip(void **state)
{
    if (!*state) {
        print_message("skipped: %s\n", g_skip_reason);
        skip();
    }
    return *state;
}

/* Load code at GB_CODE, apply the state, run to the done port. Returns the final state. */
static void run_code(struct kvm_rig *r, const uint8_t *code, size_t len, struct cpu_state *s)
{
    assert_int_equal(guest_load_code(&r->m.mem, code, len), 0);
    enum machine_stop why;
    assert_int_equal(kvm_rig_run(r, s, &why), VCPU_EXIT_STOP);
    assert_int_equal(why, MACHINE_STOP_POWEROFF);
    assert_int_equal(kvm_backend_ops.get_state(&r->m.vcpus[0], s), 0);
}

/* ---- tests ------------------------------------------------------------------------- */

static void fill_state_pattern(struct cpu_state *s)
{
    guest_cpl3_state(s, GB_CODE);
    for (int i = 0; i < GPR_COUNT; i++)
        if (i != GPR_RSP) s->gpr[i] = 0x0101010101010101ULL * (uint64_t)(i + 1) ^ 0x8000000000000000ULL;
    s->rflags |= RFLAGS_CF | RFLAGS_ZF | RFLAGS_OF | RFLAGS_DF | RFLAGS_AF;
    s->seg[SEG_FS].base = 0x123456789000ULL;
    s->seg[SEG_GS].base = 0xffff800000001000ULL;
    s->kernel_gs_base = 0xffff800012345000ULL;
    s->lstar = 0xffffffff81000000ULL;
    s->star = 0x0023001000000000ULL;
    s->sfmask = 0x47700;
    s->sysenter_esp = 0x5000;
    s->sysenter_eip = 0x6000;
    s->sysenter_cs = 0x10;
    s->tsc_aux = 7;
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) s->fx.xmm[i][j] = (uint8_t)(i * 16 + j + 1);
    s->fx.mxcsr = 0x1f80 | 0x6000; /* round toward zero */
    s->fx.fcw = 0x27f;
    s->dr[0] = 0x1000;
    s->dr[7] = 0x400;
}

static void test_state_round_trip(void **state)
{
    struct kvm_rig *r = rig_or_skip(state);
    struct vcpu *v = &r->m.vcpus[0];
    struct cpu_state in, out;
    fill_state_pattern(&in);
    assert_int_equal(kvm_backend_ops.set_state(v, &in), 0);
    assert_int_equal(kvm_backend_ops.get_state(v, &out), 0);

    assert_memory_equal(in.gpr, out.gpr, sizeof(in.gpr));
    assert_int_equal(out.rip, in.rip);
    assert_int_equal(out.rflags, in.rflags);
    for (int i = 0; i < SEG_COUNT; i++) {
        if (i == SEG_LDTR) continue; /* unusable: KVM normalizes the hidden fields */
        assert_int_equal(out.seg[i].selector, in.seg[i].selector);
        assert_int_equal(out.seg[i].base, in.seg[i].base);
        assert_int_equal(out.seg[i].dpl, in.seg[i].dpl);
        assert_int_equal(out.seg[i].type, in.seg[i].type);
        assert_int_equal(out.seg[i].l, in.seg[i].l);
    }
    assert_int_equal(out.gdtr.base, in.gdtr.base);
    assert_int_equal(out.gdtr.limit, in.gdtr.limit);
    assert_int_equal(out.idtr.base, in.idtr.base);
    assert_int_equal(out.cr0, in.cr0);
    assert_int_equal(out.cr3, in.cr3);
    assert_int_equal(out.cr4, in.cr4);
    assert_int_equal(out.efer, in.efer);
    assert_int_equal(out.kernel_gs_base, in.kernel_gs_base);
    assert_int_equal(out.lstar, in.lstar);
    assert_int_equal(out.star, in.star);
    assert_int_equal(out.sfmask, in.sfmask);
    assert_int_equal(out.sysenter_eip, in.sysenter_eip);
    assert_int_equal(out.sysenter_esp, in.sysenter_esp);
    assert_int_equal(out.sysenter_cs, in.sysenter_cs);
    assert_int_equal(out.pat, in.pat);
    assert_int_equal(out.tsc_aux, in.tsc_aux);
    assert_memory_equal(out.fx.xmm, in.fx.xmm, sizeof(in.fx.xmm));
    assert_int_equal(out.fx.mxcsr, in.fx.mxcsr);
    assert_int_equal(out.fx.fcw, in.fx.fcw);
    assert_int_equal(out.dr[0], in.dr[0]);
    assert_int_equal(out.apic_base & 0xfffff000, 0xfee00000);
    assert_false(out.halted);
}

/* The guest computes with registers and memory; the results come back through get_state
 * and guest RAM:
 *   movabs rax, 0x1122334455667788; mov rbx, 1; add rax, rbx; movq xmm1, rax; paddq xmm1, xmm1
 *   pushfq; pop rcx; mov [0x20000], rax; mov rdx, [0x20008]; mov [0x40000000], al (done) */
static void test_registers_and_memory(void **state)
{
    static const uint8_t code[] = {
        0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, 0x48, 0xc7, 0xc3, 0x01, 0x00, 0x00, 0x00,
        0x48, 0x01, 0xd8, 0x66, 0x48, 0x0f, 0x6e, 0xc8, 0x66, 0x0f, 0xd4, 0xc9, 0x9c, 0x59, 0x48, 0x89, 0x04,
        0x25, 0x00, 0x00, 0x02, 0x00, 0x48, 0x8b, 0x14, 0x25, 0x08, 0x00, 0x02, 0x00, DONE_MMIO_AL};
    struct kvm_rig *r = rig_or_skip(state);
    uint64_t host_value = 0xcafef00dbaadc0deULL;
    assert_int_equal(guest_mem_write(&r->m.mem, GB_DATA + 8, &host_value, 8), 0);
    struct cpu_state s;
    guest_cpl3_state(&s, GB_CODE);
    s.gpr[GPR_R15] = 0x5a5a5a5a5a5a5a5aULL; /* untouched by the guest */
    s.rflags |= RFLAGS_IF; /* kvm_pvm runs CPL3 code with IF=1 whatever the state says */
    run_code(r, code, sizeof(code), &s);

    assert_int_equal(s.gpr[GPR_RAX], 0x1122334455667789ULL);
    assert_int_equal(s.gpr[GPR_RDX], host_value);
    assert_int_equal(s.gpr[GPR_R15], 0x5a5a5a5a5a5a5a5aULL);
    /* PUSHF inside the guest saw the flags of the ADD: 0x...89 has odd parity, nothing else set. */
    assert_int_equal(s.gpr[GPR_RCX] & 0xfff, RFLAGS_FIXED | RFLAGS_IF);
    uint64_t xmm1_lo;
    memcpy(&xmm1_lo, s.fx.xmm[1], 8);
    assert_int_equal(xmm1_lo, 0x1122334455667789ULL * 2);
    uint64_t guest_value;
    assert_int_equal(guest_mem_read(&r->m.mem, GB_DATA, &guest_value, 8), 0);
    assert_int_equal(guest_value, 0x1122334455667789ULL);
    assert_int_equal(s.rip, GB_CODE + sizeof(code)); /* after the store that stopped it */
    assert_int_equal(s.seg[SEG_CS].dpl, 3);
}

/* Port I/O runs at CPL0 here: kvm_pvm ignores IOPL, so IN/OUT at CPL3 raise #GP there.
 *   mov dx, 0x1234; mov eax, 0xdeadbeef; out dx, eax; out dx, ax; out dx, al
 *   in eax, dx; mov r8, rax; in ax, dx; mov r9, rax; in al, dx; mov r10, rax; out 0xf4, al */
static void test_port_io(void **state)
{
    static const uint8_t code[] = {0x66, 0xba, 0x34, 0x12, 0xb8, 0xef, 0xbe, 0xad, 0xde, 0xef, 0x66, 0xef,
                                   0xee, 0xed, 0x49, 0x89, 0xc0, 0x66, 0xed, 0x49, 0x89, 0xc1, 0xec, 0x49,
                                   0x89, 0xc2, 0xe6, 0xf4};
    struct kvm_rig *r = rig_or_skip(state);
    struct recorder rec = {.reads = {0x87654321, 0x1111aaaa, 0x222222bb}};
    assert_int_equal(bus_register(&r->m.pio, TEST_PORT, 4, record, &rec, "test"), 0);
    struct cpu_state s;
    guest_cpl3_state(&s, GB_CODE);
    guest_cpl0_state(&s, GB_CODE);
    s.gpr[GPR_R8] = s.gpr[GPR_R9] = s.gpr[GPR_R10] = ~0ULL;
    run_code(r, code, sizeof(code), &s);

    assert_int_equal(rec.n, 6);
    const struct access want[6] = {
        {0, 0xdeadbeef, 4, true}, {0, 0xbeef, 2, true}, {0, 0xef, 1, true},
        {0, 0x87654321, 4, false}, {0, 0xaaaa, 2, false}, {0, 0xbb, 1, false},
    };
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rec.log[i].addr, want[i].addr);
        assert_int_equal(rec.log[i].size, want[i].size);
        assert_int_equal(rec.log[i].is_write, want[i].is_write);
        assert_int_equal(rec.log[i].data, want[i].data);
    }
    assert_int_equal(s.gpr[GPR_R8], 0x87654321);  /* IN EAX zero-extends */
    assert_int_equal(s.gpr[GPR_R9], 0x8765aaaa);  /* IN AX keeps bits 16-63 */
    assert_int_equal(s.gpr[GPR_R10], 0x8765aabb); /* IN AL keeps bits 8-63 */
}

/* Accesses to an address outside RAM leave KVM as MMIO exits:
 *   movabs rax, 0xd0000000; mov [rax], rbx; mov [rax+8], ebx; mov [rax+16], bx; mov [rax+24], bl
 *   mov rcx, [rax+32]; mov edx, [rax+40]; movabs rsi, 0xe0000000; mov rdi, [rsi]; mov [0x40000000], al
 * 0xe0000000 is claimed by no device: it reads as all-ones. This runs at CPL3. */
static void test_mmio(void **state)
{
    static const uint8_t code[] = {
        0x48, 0xb8, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x00, 0x00, 0x00, 0x48, 0x89, 0x18, 0x89, 0x58, 0x08,
        0x66, 0x89, 0x58, 0x10, 0x88, 0x58, 0x18, 0x48, 0x8b, 0x48, 0x20, 0x8b, 0x50, 0x28, 0x48, 0xbe,
        0x00, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x3e, DONE_MMIO_AL};
    struct kvm_rig *r = rig_or_skip(state);
    struct recorder rec = {.reads = {0x0123456789abcdefULL, 0xfedcba9876543210ULL}};
    assert_int_equal(bus_register(&r->m.mmio, TEST_MMIO, 0x1000, record, &rec, "test"), 0);
    struct cpu_state s;
    guest_cpl3_state(&s, GB_CODE);
    s.gpr[GPR_RBX] = 0xa1a2a3a4a5a6a7a8ULL;
    s.gpr[GPR_RDX] = ~0ULL;
    run_code(r, code, sizeof(code), &s);

    assert_int_equal(rec.n, 6);
    const struct access want[6] = {
        {0, 0xa1a2a3a4a5a6a7a8ULL, 8, true}, {8, 0xa5a6a7a8, 4, true}, {16, 0xa7a8, 2, true},
        {24, 0xa8, 1, true}, {32, 0x0123456789abcdefULL, 8, false}, {40, 0x76543210, 4, false},
    };
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rec.log[i].addr, want[i].addr);
        assert_int_equal(rec.log[i].size, want[i].size);
        assert_int_equal(rec.log[i].is_write, want[i].is_write);
        assert_int_equal(rec.log[i].data, want[i].data);
    }
    assert_int_equal(s.gpr[GPR_RCX], 0x0123456789abcdefULL);
    assert_int_equal(s.gpr[GPR_RDX], 0x76543210); /* 32-bit load zero-extends */
    assert_int_equal(s.gpr[GPR_RDI], ~0ULL);      /* unclaimed MMIO */
}

/* String I/O is one exit carrying several items (at CPL0, see test_port_io):
 *   mov dx, 0x1234; mov rsi, 0x20000; mov rcx, 5; rep outsb
 *   mov rdi, 0x20100; mov rcx, 3; rep insw; out 0xf4, al */
static void test_string_io(void **state)
{
    static const uint8_t code[] = {0x66, 0xba, 0x34, 0x12, 0x48, 0xc7, 0xc6, 0x00, 0x00, 0x02, 0x00, 0x48, 0xc7,
                                   0xc1, 0x05, 0x00, 0x00, 0x00, 0xf3, 0x6e, 0x48, 0xc7, 0xc7, 0x00, 0x01, 0x02,
                                   0x00, 0x48, 0xc7, 0xc1, 0x03, 0x00, 0x00, 0x00, 0x66, 0xf3, 0x6d, 0xe6, 0xf4};
    struct kvm_rig *r = rig_or_skip(state);
    struct recorder rec = {.reads = {0x1111, 0x2222, 0x3333}};
    assert_int_equal(bus_register(&r->m.pio, TEST_PORT, 1, record, &rec, "test"), 0);
    assert_int_equal(guest_mem_write(&r->m.mem, GB_DATA, "hello", 5), 0);
    struct cpu_state s;
    guest_cpl0_state(&s, GB_CODE);
    run_code(r, code, sizeof(code), &s);

    assert_int_equal(rec.n, 8);
    for (int i = 0; i < 5; i++) {
        assert_true(rec.log[i].is_write);
        assert_int_equal(rec.log[i].size, 1);
        assert_int_equal(rec.log[i].data, (uint8_t)"hello"[i]);
    }
    uint16_t words[3];
    assert_int_equal(guest_mem_read(&r->m.mem, GB_DATA + 0x100, words, sizeof(words)), 0);
    assert_int_equal(words[0], 0x1111);
    assert_int_equal(words[1], 0x2222);
    assert_int_equal(words[2], 0x3333);
    assert_int_equal(s.gpr[GPR_RCX], 0);
    assert_int_equal(s.gpr[GPR_RSI], GB_DATA + 5);
    assert_int_equal(s.gpr[GPR_RDI], GB_DATA + 0x106);
}

/* HLT at CPL3 raises #GP(0); the IDT stub (CPL0, on the TSS's RSP0 stack) reports vector 13
 * and the frame holds the user state at the HLT. */
static void test_exception_delivery(void **state)
{
    static const uint8_t code[] = {0x90, 0xf4}; /* nop; hlt */
    struct kvm_rig *r = rig_or_skip(state);
    struct cpu_state s;
    guest_cpl3_state(&s, GB_CODE);
    s.gpr[GPR_RAX] = 0x1111;
    s.gpr[GPR_RDX] = 0x2222;
    run_code(r, code, sizeof(code), &s);
    assert_int_equal(r->exc_vector, 13);
    uint64_t f[8];
    assert_int_equal(guest_mem_read(&r->m.mem, GB_FRAME_RDX(true), f, sizeof(f)), 0);
    assert_int_equal(f[0], 0x2222);             /* RDX pushed by the stub */
    assert_int_equal(f[1], 0x1111);             /* RAX */
    assert_int_equal(f[2], 0);                  /* error code */
    assert_int_equal(f[3], GB_CODE + 1);        /* RIP of the HLT */
    assert_int_equal(f[4], GB_SEL_UCODE);       /* CS */
    assert_int_equal(f[6], GB_STACK_TOP);       /* RSP */
    assert_int_equal(f[7], GB_SEL_UDATA);       /* SS */
    assert_int_equal(s.seg[SEG_CS].selector, GB_SEL_KCODE); /* stopped inside the CPL0 stub */
}

/* With no usable IDT, UD2 escalates to a triple fault: vcpu_run reports SHUTDOWN (reset). */
static void test_triple_fault(void **state)
{
    static const uint8_t code[] = {0x0f, 0x0b}; /* ud2 */
    struct kvm_rig *r = rig_or_skip(state);
    struct cpu_state s;
    guest_cpl3_state(&s, GB_CODE);
    s.idtr.limit = 0;
    assert_int_equal(guest_load_code(&r->m.mem, code, sizeof(code)), 0);
    assert_int_equal(kvm_rig_run(r, &s, NULL), VCPU_EXIT_SHUTDOWN);
}

struct stopper {
    struct machine *m;
    unsigned delay_ms;
};

static void *stop_later(void *arg)
{
    struct stopper *st = arg;
    struct timespec ts = {.tv_sec = st->delay_ms / 1000, .tv_nsec = (long)(st->delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    machine_request_stop(st->m, MACHINE_STOP_PAUSE);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A guest spinning forever (1: inc rax; jmp 1b) is stopped by another thread, promptly,
 * and can be resumed where it stopped. */
static void test_stop_running_guest(void **state)
{
    static const uint8_t code[] = {0x48, 0xff, 0xc0, 0xeb, 0xfb};
    struct kvm_rig *r = rig_or_skip(state);
    r->timeout_ms = 0;
    struct cpu_state s;
    guest_cpl3_state(&s, GB_CODE);
    assert_int_equal(guest_load_code(&r->m.mem, code, sizeof(code)), 0);
    for (int round = 0; round < 2; round++) {
        struct stopper st = {.m = &r->m, .delay_ms = 100};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, stop_later, &st), 0);
        double t0 = now_s();
        enum machine_stop why;
        assert_int_equal(kvm_rig_run(r, round == 0 ? &s : NULL, &why), VCPU_EXIT_STOP);
        double took = now_s() - t0;
        pthread_join(t, NULL);
        assert_int_equal(why, MACHINE_STOP_PAUSE);
        assert_true(took >= 0.09 && took < 2.0);
        struct cpu_state after;
        assert_int_equal(kvm_backend_ops.get_state(&r->m.vcpus[0], &after), 0);
        assert_true(after.gpr[GPR_RAX] > s.gpr[GPR_RAX]); /* it ran, and kept running on resume */
        assert_true(after.rip == GB_CODE || after.rip == GB_CODE + 3);
        s = after;
    }
}

/* A vCPU halted with interrupts off (CPL0: cli; hlt) sleeps inside KVM_RUN (in-kernel LAPIC);
 * a stop request still ends vcpu_run promptly, and the state says halted. */
static void test_stop_halted_guest(void **state)
{
    static const uint8_t code[] = {0xfa, 0xf4, 0xeb, 0xfe}; /* cli; hlt; jmp $ */
    struct kvm_rig *r = rig_or_skip(state);
    r->timeout_ms = 0;
    struct cpu_state s;
    guest_cpl0_state(&s, GB_CODE);
    assert_int_equal(guest_load_code(&r->m.mem, code, sizeof(code)), 0);
    struct stopper st = {.m = &r->m, .delay_ms = 200};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_later, &st), 0);
    double t0 = now_s();
    enum machine_stop why;
    assert_int_equal(kvm_rig_run(r, &s, &why), VCPU_EXIT_STOP);
    double took = now_s() - t0;
    pthread_join(t, NULL);
    assert_int_equal(why, MACHINE_STOP_PAUSE);
    assert_true(took >= 0.19 && took < 2.0);
    struct cpu_state after;
    assert_int_equal(kvm_backend_ops.get_state(&r->m.vcpus[0], &after), 0);
    assert_true(after.halted);
    assert_int_equal(after.rip, GB_CODE + 2);
}

/* A stop requested before vcpu_run starts makes it return at once without running the guest. */
static void test_stop_before_run(void **state)
{
    static const uint8_t code[] = {0x48, 0xff, 0xc0, 0xeb, 0xfb};
    struct kvm_rig *r = rig_or_skip(state);
    struct cpu_state s;
    guest_cpl3_state(&s, GB_CODE);
    assert_int_equal(guest_load_code(&r->m.mem, code, sizeof(code)), 0);
    assert_int_equal(kvm_backend_ops.set_state(&r->m.vcpus[0], &s), 0);
    machine_request_stop(&r->m, MACHINE_STOP_KILL);
    assert_int_equal(kvm_rig_run(r, NULL, NULL), VCPU_EXIT_STOP);
    struct cpu_state after;
    assert_int_equal(kvm_backend_ops.get_state(&r->m.vcpus[0], &after), 0);
    assert_int_equal(after.gpr[GPR_RAX], 0);
    assert_int_equal(after.rip, GB_CODE);
}

/* The in-kernel irqchip: a CPL0 guest enables its local APIC, routes IOAPIC pin 5 to vector
 * 0x40, reports ready with an OUT (whose handler pulses GSI 5 through set_irq) and halts with
 * interrupts on; the interrupt wakes it and its handler reports vector 0x40. The in-kernel
 * PIC (whose reset state would deliver GSI 5 as vector 5 through LINT0) is masked first.
 *   mov al, 0xff; out 0x21, al; out 0xa1, al
 *   mov eax, 0xfee000f0; mov dword [rax], 0x1ff        ; LAPIC SVR: enabled
 *   mov eax, 0xfec00000; mov dword [rax], 0x1a; mov dword [rax+0x10], 0x40   ; redir 5 low
 *   mov dword [rax], 0x1b; mov dword [rax+0x10], 0     ; redir 5 high: APIC 0
 *   mov dx, 0x1234; out dx, al; sti; hlt; jmp $
 * handler: mov eax, 0x40; mov dx, 0xf5; out dx, eax; jmp $ */
struct irq_raiser {
    struct machine *m;
    unsigned gsi;
    unsigned pulses;
};

static void raise_irq5(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct irq_raiser *ir = opaque;
    if (!is_write) return;
    kvm_backend_ops.set_irq(ir->m, ir->gsi, 1);
    kvm_backend_ops.set_irq(ir->m, ir->gsi, 0);
    ir->pulses++;
}

static void run_ioapic_guest(void **state, unsigned gsi, unsigned pin)
{
    uint8_t code[] = {
        0xb0, 0xff, 0xe6, 0x21, 0xe6, 0xa1, 0xb8, 0xf0, 0x00, 0xe0, 0xfe, 0xc7, 0x00, 0xff, 0x01, 0x00, 0x00, 0xb8, 0x00, 0x00, 0xc0, 0xfe, 0xc7,
        0x00, 0x1a, 0x00, 0x00, 0x00, 0xc7, 0x40, 0x10, 0x40, 0x00, 0x00, 0x00, 0xc7, 0x00, 0x1b, 0x00, 0x00,
        0x00, 0xc7, 0x40, 0x10, 0x00, 0x00, 0x00, 0x00, 0x66, 0xba, 0x34, 0x12, 0xee, 0xfb, 0xf4, 0xeb, 0xfe};
    static const uint8_t handler[] = {0xb8, 0x40, 0x00, 0x00, 0x00, 0x66, 0xba, 0xf5, 0x00, 0xef, 0xeb, 0xfe};
    code[24] = (uint8_t)(0x10 + 2 * pin); /* IOREGSEL of the redirection entry's low and high halves */
    code[37] = (uint8_t)(0x11 + 2 * pin);
    struct kvm_rig *r = rig_or_skip(state);
    struct irq_raiser ir = {.m = &r->m, .gsi = gsi};
    assert_int_equal(bus_register(&r->m.pio, TEST_PORT, 1, raise_irq5, &ir, "test"), 0);
    assert_int_equal(guest_mem_write(&r->m.mem, GB_CODE + 0x100, handler, sizeof(handler)), 0);
    assert_int_equal(guest_set_gate(&r->m.mem, 0x40, GB_CODE + 0x100), 0);
    struct cpu_state s;
    guest_cpl0_state(&s, GB_CODE);
    s.idtr.limit = 256 * 16 - 1;
    run_code(r, code, sizeof(code), &s);
    assert_int_equal(ir.pulses, 1);
    assert_int_equal(r->exc_vector, 0x40);
}

static void test_interrupt_through_ioapic(void **state) { run_ioapic_guest(state, 5, 5); }

/* IRQ0 (the PIT's line) arrives on IOAPIC pin 2, as the MADT override and the MP table say. */
static void test_irq0_on_ioapic_pin2(void **state) { run_ioapic_guest(state, 0, 2); }

/* Two vCPUs on their own threads (machine_start, as `--cpus 2` runs them) both run their CPL3
 * loops (lock inc qword [0x20000 / 0x20008]; jmp back) until one stop request ends both. */
static void test_two_vcpus_run_and_stop(void **state)
{
    static const uint8_t loop0[] = {0xf0, 0x48, 0xff, 0x04, 0x25, 0x00, 0x00, 0x02, 0x00, 0xeb, 0xf5};
    static const uint8_t loop1[] = {0xf0, 0x48, 0xff, 0x04, 0x25, 0x08, 0x00, 0x02, 0x00, 0xeb, 0xf5};
    struct kvm_rig *r = rig_or_skip(state);
    assert_int_equal(kvm_rig_add_vcpu(r), 1);
    assert_int_equal(guest_mem_write(&r->m.mem, GB_CODE, loop0, sizeof(loop0)), 0);
    assert_int_equal(guest_mem_write(&r->m.mem, GB_CODE + 0x40, loop1, sizeof(loop1)), 0);
    for (unsigned i = 0; i < 2; i++) {
        struct cpu_state s;
        guest_cpl3_state(&s, GB_CODE + 0x40 * i);
        s.gpr[GPR_RSP] = GB_STACK_TOP - 0x1000 * i;
        assert_int_equal(kvm_backend_ops.set_state(&r->m.vcpus[i], &s), 0);
    }
    assert_int_equal(machine_start(&r->m), 0);
    struct timespec ts = {.tv_nsec = 150 * 1000000L};
    nanosleep(&ts, NULL);
    uint64_t counters[2];
    assert_int_equal(guest_mem_read(&r->m.mem, GB_DATA, counters, sizeof(counters)), 0);
    double t0 = now_s();
    machine_request_stop(&r->m, MACHINE_STOP_KILL);
    assert_int_equal(machine_join(&r->m), MACHINE_STOP_KILL);
    assert_true(now_s() - t0 < 2.0);
    assert_true(counters[0] > 0);
    assert_true(counters[1] > 0);
    assert_int_equal(r->m.vcpus[0].exit, VCPU_EXIT_STOP);
    assert_int_equal(r->m.vcpus[1].exit, VCPU_EXIT_STOP);
}

/* CPUID as the guest kernel sees it: the hypervisor bit and KVM's signature leaf (so Linux
 * finds kvm-clock and the paravirt features), and each vCPU's own APIC ID in leaf 1
 * EBX[31:24]. At CPL0: on kvm_pvm, CPUID at CPL3 runs on the host CPU unintercepted.
 *   mov eax, 1; xor ecx, ecx; cpuid; mov r8, rbx; mov r9, rcx
 *   mov eax, 0x40000000; cpuid; mov r10, rbx; mov r11, rcx; mov r12, rdx; mov r13, rax; done */
static void test_guest_cpuid(void **state)
{
    static const uint8_t code[] = {
        0xb8, 0x01, 0x00, 0x00, 0x00, 0x31, 0xc9, 0x0f, 0xa2, 0x49, 0x89, 0xd8, 0x49, 0x89, 0xc9, 0xb8, 0x00,
        0x00, 0x00, 0x40, 0x0f, 0xa2, 0x49, 0x89, 0xda, 0x49, 0x89, 0xcb, 0x49, 0x89, 0xd4, 0x49, 0x89, 0xc5,
        DONE_MMIO_AL};
    struct kvm_rig *r = rig_or_skip(state);
    assert_int_equal(kvm_rig_add_vcpu(r), 1);
    assert_int_equal(guest_load_code(&r->m.mem, code, sizeof(code)), 0);
    for (unsigned i = 0; i < 2; i++) {
        struct cpu_state s;
        guest_cpl0_state(&s, GB_CODE);
        enum machine_stop why;
        enum vcpu_exit ex = kvm_rig_run_vcpu(r, i, &s, &why);
        assert_int_equal(kvm_backend_ops.get_state(&r->m.vcpus[i], &s), 0);
        assert_int_equal(ex, VCPU_EXIT_STOP);
        assert_int_equal(why, MACHINE_STOP_POWEROFF);
        assert_int_equal(s.gpr[GPR_R8] >> 24 & 0xff, i);      /* initial APIC ID */
        assert_true(s.gpr[GPR_R9] & (1u << 31));              /* hypervisor present */
        assert_true(s.gpr[GPR_R13] >= 0x40000001);            /* max hypervisor leaf */
        char sig[13];
        uint32_t regs[3] = {(uint32_t)s.gpr[GPR_R10], (uint32_t)s.gpr[GPR_R11], (uint32_t)s.gpr[GPR_R12]};
        memcpy(sig, regs, 12);
        sig[12] = 0;
        assert_string_equal(sig, "KVMKVMKVM");
    }
}

/* More than 3 GiB of RAM: two memory slots, RAM resuming at 4 GiB above the MMIO hole. The
 * guest (page tables extended to map 4-5 GiB) writes at 4 GiB + 4 KiB and reads the last page
 * below the hole, then ends with HLT (#GP at CPL3).
 *   mov rax, 0x100001000; mov [rax], rbx; mov rcx, 0xbffff000; mov rdx, [rcx]; hlt */
static void test_ram_above_4g(void **state)
{
    (void)state;
    static const uint8_t code[] = {0x48, 0xb8, 0x00, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x48, 0x89, 0x18, 0x48,
                                   0xb9, 0x00, 0xf0, 0xff, 0xbf, 0x00, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x11, 0xf4};
    char why[256];
    struct kvm_rig *r = kvm_rig_new(GUEST_MEM_HOLE_START + (512ULL << 20), why, sizeof(why));
    if (!r) {
        print_message("skipped: %s\n", why);
        skip();
    }
    assert_int_equal(r->m.mem.nregions, 2);
    /* PDPT[4] -> a page directory of 2 MiB pages for 4-5 GiB (free page 0x60000) */
    uint64_t pdpte = 0x60000 | 7;
    assert_int_equal(guest_mem_write(&r->m.mem, GB_PML4 + 0x1000 + 8 * 4, &pdpte, 8), 0);
    for (uint64_t j = 0; j < 512; j++) {
        uint64_t pde = (GUEST_MEM_HIGH_START + (j << 21)) | 0x87;
        assert_int_equal(guest_mem_write(&r->m.mem, 0x60000 + 8 * j, &pde, 8), 0);
    }
    uint64_t below = 0x1122334455667788ULL;
    assert_int_equal(guest_mem_write(&r->m.mem, 0xbffff000ULL, &below, 8), 0);
    struct cpu_state s;
    guest_cpl3_state(&s, GB_CODE);
    s.gpr[GPR_RBX] = 0xa5a5a5a5deadbeefULL;
    assert_int_equal(guest_load_code(&r->m.mem, code, sizeof(code)), 0);
    enum machine_stop stop;
    enum vcpu_exit ex = kvm_rig_run(r, &s, &stop);
    int vector = r->exc_vector;
    uint64_t above = 0, rdx = 0;
    guest_mem_read(&r->m.mem, GUEST_MEM_HIGH_START + 0x1000, &above, 8);
    guest_mem_read(&r->m.mem, GB_FRAME_RDX(true), &rdx, 8);
    kvm_rig_free(r);
    assert_int_equal(ex, VCPU_EXIT_STOP);
    assert_int_equal(stop, MACHINE_STOP_POWEROFF);
    assert_int_equal(vector, 13);
    assert_int_equal(above, 0xa5a5a5a5deadbeefULL);
    assert_int_equal(rdx, below);
}

static const struct device_desc *find_device(const char *name)
{
    for (unsigned i = 0; i < devices_count(); i++)
        if (!strcmp(device_at(i)->name, name)) return device_at(i);
    return NULL;
}

/* The in-kernel irqchip state goes into snapshots: after a guest programmed the IOAPIC and
 * its LAPIC, the "irqchip" section restored into a fresh VM reproduces them. */
static void test_irqchip_snapshot_round_trip(void **state)
{
    struct kvm_rig *a = rig_or_skip(state);
    const struct device_desc *d = find_device("irqchip");
    assert_non_null(d);
    run_ioapic_guest(state, 5, 5); /* leaves IOAPIC pin 5 -> vector 0x40 and the LAPIC enabled */
    struct snap_buf saved, again;
    snap_buf_init(&saved);
    snap_buf_init(&again);
    assert_int_equal(d->save(&a->m, &saved), 0);
    assert_false(saved.failed);

    char why[256];
    struct kvm_rig *b = kvm_rig_new(TEST_RAM, why, sizeof(why));
    assert_non_null(b);
    char err[256] = "";
    struct snap_reader rd = {.data = saved.data, .len = saved.len};
    assert_int_equal(d->restore(&b->m, &rd, d->state_version, false, err, sizeof(err)), 0);
    rd = (struct snap_reader){.data = saved.data, .len = saved.len};
    if (d->restore(&b->m, &rd, d->state_version, true, err, sizeof(err))) fail_msg("restore: %s", err);
    assert_false(rd.short_read);
    assert_int_equal(d->save(&b->m, &again), 0);
    assert_int_equal(again.len, saved.len);
    /* the PIC part (first) is identical; the IOAPIC and local APIC as the guest left them */
    assert_memory_equal(again.data, saved.data, 21);
    struct irqchip_state *s0 = calloc(1, sizeof(*s0)), *s1 = calloc(1, sizeof(*s1));
    assert_non_null(s0);
    assert_non_null(s1);
    rd = (struct snap_reader){.data = saved.data, .len = saved.len};
    assert_int_equal(irqchip_state_decode(&rd, d->state_version, s0, err, sizeof(err)), 0);
    rd = (struct snap_reader){.data = again.data, .len = again.len};
    assert_int_equal(irqchip_state_decode(&rd, d->state_version, s1, err, sizeof(err)), 0);
    assert_true(s1->has_apic);
    assert_memory_equal(&s1->ioapic, &s0->ioapic, sizeof(s0->ioapic));
    assert_int_equal(s1->ioapic.redir[5] & 0xff, 0x40);
    assert_int_equal(s1->lapic[0].svr, 0x1ff);
    assert_int_equal(s1->lapic[0].base, s0->lapic[0].base);
    free(s0);
    free(s1);

    /* a truncated section is refused */
    rd = (struct snap_reader){.data = saved.data, .len = saved.len - 1};
    assert_true(d->restore(&b->m, &rd, d->state_version, false, err, sizeof(err)) < 0);
    snap_buf_free(&saved);
    snap_buf_free(&again);
    kvm_rig_free(b);
}

static void test_host_hw_virt_matches_cpuinfo(void **unused)
{
    (void)unused;
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) skip();
    char line[8192];
    bool flag = false;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "flags", 5) && (strstr(line, " vmx") || strstr(line, " svm"))) flag = true;
    fclose(f);
    FILE *k = fopen("/dev/kvm", "r+");
    if (k) fclose(k);
    assert_int_equal(kvm_host_has_hw_virt(), flag && k != NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_hw_virt_matches_cpuinfo),
        cmocka_unit_test_setup_teardown(test_state_round_trip, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_registers_and_memory, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_port_io, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_mmio, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_string_io, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_exception_delivery, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_triple_fault, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_stop_running_guest, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_stop_before_run, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_stop_halted_guest, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_interrupt_through_ioapic, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_irq0_on_ioapic_pin2, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_irqchip_snapshot_round_trip, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_two_vcpus_run_and_stop, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(test_guest_cpuid, rig_setup, rig_teardown),
        cmocka_unit_test(test_ram_above_4g),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
