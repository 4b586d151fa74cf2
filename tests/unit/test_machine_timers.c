/* Unit tests for the machine's timer service used by I/O loops (backends whose vCPU threads do
 * not run device timers, i.e. kvm): due timers fire, and the poll timeout tracks the deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>

#include "vmm/machine.h"

static const struct cpu_backend_ops io_loop_backend = {.name = "io", .runs_device_timers = false};
static const struct cpu_backend_ops self_timed_backend = {.name = "self", .runs_device_timers = true};

static int fired;
static void on_timer(void *opaque, uint64_t now) { (void)opaque, (void)now; fired++; }

static void test_io_loop_runs_due_timers(void **state)
{
    (void)state;
    static struct machine m;
    memset(&m, 0, sizeof(m));
    m.backend = &io_loop_backend;
    pthread_mutex_init(&m.dev_lock, NULL);
    struct vm_timer t;
    timer_init(&t, on_timer, NULL);
    fired = 0;
    assert_int_equal(machine_timer_poll_ms(&m, 1000), 1000); /* nothing armed */
    timer_mod(&m.timers, &t, clock_now_ns() + 20 * 1000000ULL);
    int ms = machine_timer_poll_ms(&m, 1000);
    assert_true(ms >= 1 && ms <= 20);
    assert_int_equal(fired, 0);
    nanosleep(&(struct timespec){0, 25 * 1000000L}, NULL);
    assert_int_equal(machine_timer_poll_ms(&m, 1000), 1000);
    assert_int_equal(fired, 1);
    /* A backend that runs timers itself is left alone. */
    m.backend = &self_timed_backend;
    timer_mod(&m.timers, &t, clock_now_ns());
    assert_int_equal(machine_timer_poll_ms(&m, 500), 500);
    assert_int_equal(fired, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_io_loop_runs_due_timers)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
