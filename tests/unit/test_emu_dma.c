/* Unit test: a device writing guest RAM (DMA, e.g. virtio-blk reading a program from disk) into
 * a page whose code the emulator has decoded and cached must make the emulator run the new
 * bytes, not the stale decoded ones. Runs the real emu backend loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tests/unit/emu_exec_testbed.h"
#include "vmm/cpu_backend.h"

#define OUT_PORT 0xe0

static uint64_t last_out;
static void out_port(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct machine *m = opaque;
    (void)offset, (void)size;
    if (!is_write) return;
    last_out = *data;
    machine_request_stop(m, MACHINE_STOP_PAUSE);
}

/* mov eax, imm32 ; out 0xe0, eax ; jmp back to the start */
static void program(uint8_t *p, uint32_t value)
{
    const uint8_t code[] = {0xb8, (uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16), (uint8_t)(value >> 24),
                            0xe7, OUT_PORT, 0xeb, 0xf7};
    memcpy(p, code, sizeof(code));
}

static void run_until_out(struct machine *m, struct vcpu *v)
{
    atomic_store(&m->stop, MACHINE_RUNNING);
    emu_backend_ops.vcpu_run(v);
}

static void test_dma_over_cached_code_runs_new_code(void **state)
{
    (void)state;
    struct testbed *tb = tb_new();
    assert_non_null(tb);
    struct machine *m = &tb->m;
    m->backend = &emu_backend_ops;
    m->ncpus = 1;
    assert_int_equal(bus_register(&m->pio, OUT_PORT, 4, out_port, m, "test-out"), 0);
    assert_int_equal(emu_backend_ops.init(m), 0);
    struct vcpu *v = &m->vcpus[0];
    v->m = m;
    assert_int_equal(emu_backend_ops.vcpu_init(v), 0);

    uint8_t *code = tb_ram(tb, GB_CODE, 16);
    program(code, 0x11);
    struct cpu_state s;
    guest_cpl0_state(&s, GB_CODE);
    assert_int_equal(emu_backend_ops.set_state(v, &s), 0);
    run_until_out(m, v);
    assert_int_equal(last_out, 0x11);
    run_until_out(m, v); /* the loop ran from the cached, decoded block */
    assert_int_equal(last_out, 0x11);

    /* A device overwrites the page (no CPU store, so no write fault marks it) and says so. */
    program(code, 0x22);
    guest_mem_dma_written(&m->mem, code, 16);
    run_until_out(m, v);
    assert_int_equal(last_out, 0x22);

    emu_backend_ops.vcpu_destroy(v);
    emu_backend_ops.destroy(m);
    tb_free(tb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_dma_over_cached_code_runs_new_code)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
