/* Unit tests for the emu backend's run loop: a halted vCPU sleeps until a device timer is
 * due (and runs it), stops promptly when the machine is asked to stop, and state set through
 * set_state reads back through get_state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/cpu_backend.h"
#include "vmm/emu/emu.h"
#include "vmm/machine.h"

struct fix {
    struct machine m;
    struct vm_timer t;
    _Atomic int fired;
    uint64_t fired_at;
};

static void timer_cb(void *opaque, uint64_t now)
{
    struct fix *f = opaque;
    f->fired_at = now;
    atomic_fetch_add(&f->fired, 1);
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct machine *m = &f->m;
    assert_int_equal(guest_mem_init(&m->mem, 4 << 20), 0);
    bus_init(&m->mmio);
    bus_init(&m->pio);
    pthread_mutex_init(&m->dev_lock, NULL);
    m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    atomic_init(&m->stop, MACHINE_RUNNING);
    m->backend = &emu_backend_ops;
    m->ncpus = 1;
    assert_int_equal(emu_backend_ops.init(m), 0);
    assert_false(m->apic);
    m->vcpus[0].m = m;
    m->vcpus[0].index = 0;
    assert_int_equal(emu_backend_ops.vcpu_init(&m->vcpus[0]), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    emu_backend_ops.vcpu_destroy(&f->m.vcpus[0]);
    emu_backend_ops.destroy(&f->m);
    bus_free(&f->m.mmio);
    bus_free(&f->m.pio);
    guest_mem_free(&f->m.mem);
    pthread_mutex_destroy(&f->m.dev_lock);
    close(f->m.stop_fd);
    free(f);
    return 0;
}

/* A long-mode state whose code at 0x1000 is "hlt; jmp $-3" with interrupts off. */
static void halted_state(struct fix *f, struct cpu_state *s)
{
    memset(s, 0, sizeof(*s));
    uint8_t *ram = guest_mem_ptr(&f->m.mem, 0, 0x10000);
    const uint8_t code[] = {0xf4, 0xeb, 0xfd};
    memcpy(ram + 0x1000, code, sizeof(code));
    /* identity map the first 2 MiB with one large page: PML4 0x2000, PDPT 0x3000, PD 0x4000 */
    uint64_t pml4e = 0x3000 | 3, pdpte = 0x4000 | 3, pde = 0x83;
    memcpy(ram + 0x2000, &pml4e, 8);
    memcpy(ram + 0x3000, &pdpte, 8);
    memcpy(ram + 0x4000, &pde, 8);
    s->cr0 = CR0_PE | CR0_PG | CR0_ET;
    s->cr4 = CR4_PAE;
    s->cr3 = 0x2000;
    s->efer = EFER_LME | EFER_LMA;
    s->seg[SEG_CS] = (struct cpu_segment){.limit = 0xffffffff, .selector = 0x10, .type = 0xb, .s = 1, .present = 1, .l = 1, .g = 1};
    s->seg[SEG_SS] = (struct cpu_segment){.limit = 0xffffffff, .selector = 0x18, .type = 0x3, .s = 1, .present = 1, .db = 1, .g = 1};
    s->rip = 0x1000;
    s->rflags = RFLAGS_FIXED;
    s->gpr[GPR_RSP] = 0x8000;
    s->tsc = 12345;
    s->fx.fcw = 0x37f;
    s->fx.mxcsr = 0x1f80;
}

static void *run_thread(void *arg)
{
    struct vcpu *v = arg;
    v->exit = emu_backend_ops.vcpu_run(v);
    return NULL;
}

static void test_state_round_trip(void **state)
{
    struct fix *f = *state;
    struct cpu_state s, out;
    halted_state(f, &s);
    s.gpr[GPR_R12] = 0x1234;
    s.rflags = RFLAGS_FIXED | RFLAGS_CF | RFLAGS_ZF;
    assert_int_equal(emu_backend_ops.set_state(&f->m.vcpus[0], &s), 0);
    assert_int_equal(emu_backend_ops.get_state(&f->m.vcpus[0], &out), 0);
    assert_int_equal(out.gpr[GPR_R12], 0x1234);
    assert_int_equal(out.rip, 0x1000);
    assert_int_equal(out.rflags & (RFLAGS_CF | RFLAGS_ZF), RFLAGS_CF | RFLAGS_ZF);
    assert_int_equal(out.cr3, 0x2000);
    assert_true(out.tsc >= 12345 && out.tsc < 12345 + 2000000000ULL); /* continues from the set value */
}

static void test_halted_vcpu_runs_timers_and_stops(void **state)
{
    struct fix *f = *state;
    struct cpu_state s;
    halted_state(f, &s);
    assert_int_equal(emu_backend_ops.set_state(&f->m.vcpus[0], &s), 0);
    timer_init(&f->t, timer_cb, f);
    uint64_t deadline = clock_now_ns() + 20000000ULL; /* 20 ms */
    pthread_mutex_lock(&f->m.dev_lock);
    timer_mod(&f->m.timers, &f->t, deadline);
    pthread_mutex_unlock(&f->m.dev_lock);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_thread, &f->m.vcpus[0]), 0);
    for (int i = 0; i < 400 && !atomic_load(&f->fired); i++) usleep(5000);
    int fired = atomic_load(&f->fired);
    /* stop and join before asserting, so a failure never leaves the thread running */
    uint64_t t0 = clock_now_ns();
    machine_request_stop(&f->m, MACHINE_STOP_POWEROFF);
    pthread_join(th, NULL);
    uint64_t stop_ns = clock_now_ns() - t0;

    assert_int_equal(fired, 1);
    assert_true(f->fired_at >= deadline);
    /* bounds are loose: the host running the tests may be heavily loaded */
    assert_true(f->fired_at < deadline + 1000000000ULL);
    assert_true(stop_ns < 1000000000ULL);
    assert_int_equal(f->m.vcpus[0].exit, VCPU_EXIT_STOP);
    struct cpu_state out;
    emu_backend_ops.get_state(&f->m.vcpus[0], &out);
    assert_int_equal(out.halted, 1);
}

static void test_only_one_vcpu(void **state)
{
    struct fix *f = *state;
    struct vcpu v = {.m = &f->m, .index = 1};
    assert_int_equal(emu_backend_ops.vcpu_init(&v), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_state_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_halted_vcpu_runs_timers_and_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_one_vcpu, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
