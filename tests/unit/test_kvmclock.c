/* Unit tests for the emulator's kvmclock (vmm/emu/msr.c), used by guests restored from a KVM
 * snapshot: the pvclock scale factors convert TSC ticks to nanoseconds for any TSC rate, and a
 * page the guest already uses is rewritten so that its clock carries on (no jump) at the new rate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "vmm/emu/emu.h"
#include "vmm/emu/sys.h"
#include "vmm/machine.h"

static void test_scale_factors(void **state)
{
    (void)state;
    static const uint64_t rates_khz[] = {1000, 1000000, 2000000, 2494312, 3600000, 5000000};
    for (size_t i = 0; i < sizeof(rates_khz) / sizeof(rates_khz[0]); i++) {
        uint32_t mul;
        int8_t shift;
        emu_pvclock_scale(rates_khz[i], &mul, &shift);
        /* one second of ticks is one second, to within a few parts per billion */
        uint64_t ns = emu_pvclock_ns(rates_khz[i] * 1000, mul, shift);
        assert_in_range(ns, 1000000000ULL - 4, 1000000000ULL + 4);
        /* and an hour stays within a microsecond */
        uint64_t hour = emu_pvclock_ns(rates_khz[i] * 1000 * 3600, mul, shift);
        assert_in_range(hour, 3600000000000ULL - 1000, 3600000000000ULL + 1000);
    }
}

struct pvclock_page {
    uint32_t version, pad0;
    uint64_t tsc_timestamp, system_time;
    uint32_t mul;
    int8_t shift;
    uint8_t flags, pad[2];
};

static void test_page_carries_on(void **state)
{
    (void)state;
    static struct machine m;
    memset(&m, 0, sizeof(m));
    assert_int_equal(guest_mem_init(&m.mem, 1 << 20), 0);
    static struct emu_cpu cpu;
    memset(&cpu, 0, sizeof(cpu));
    cpu.m = &m;
    cpu.tsc_khz = 2000000;
    struct pvclock_page *p = guest_mem_ptr(&m.mem, 0x5000, sizeof(*p));
    assert_non_null(p);

    /* A page as KVM left it: 3 GHz TSC, clock 77 s at TSC 1e12. */
    uint32_t kmul;
    int8_t kshift;
    emu_pvclock_scale(3000000, &kmul, &kshift);
    *p = (struct pvclock_page){.version = 8, .tsc_timestamp = 1000000000000ULL, .system_time = 77000000000ULL,
                               .mul = kmul, .shift = kshift};
    /* The restored guest's TSC stands 3e9 ticks (1 s at 3 GHz) after that timestamp. */
    cpu.tsc_offset = 0;
    cpu.tsc_offset = (int64_t)(1003000000000ULL - sys_tsc_now(&cpu));
    cpu.s.kvm_system_time = 0x5000 | 1;
    emu_kvmclock_update(&cpu);
    assert_int_equal(p->version % 2, 0);
    assert_true(p->version > 8);
    assert_int_equal(p->flags & 1, 1); /* TSC stable */
    /* the guest's clock now reads 78 s (+ the few ns this test took), at the emulator's 2 GHz */
    uint64_t now = p->system_time + emu_pvclock_ns(sys_tsc_now(&cpu) - p->tsc_timestamp, p->mul, p->shift);
    assert_in_range(now, 78000000000ULL, 78000000000ULL + 50000000ULL);
    uint32_t emul;
    int8_t eshift;
    emu_pvclock_scale(2000000, &emul, &eshift);
    assert_int_equal(p->mul, emul);
    assert_int_equal(p->shift, eshift);

    /* A page outside RAM or misaligned is left alone and does not crash. */
    cpu.s.kvm_system_time = (64ULL << 30) | 1;
    emu_kvmclock_update(&cpu);
    cpu.s.kvm_system_time = 0x5004 | 1;
    uint32_t before = p->version;
    emu_kvmclock_update(&cpu);
    assert_int_equal(p->version, before);
    guest_mem_free(&m.mem);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scale_factors),
        cmocka_unit_test(test_page_carries_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
