/* Unit tests for firmware boot (vmm/boot/firmware.c): the ROM image's size rules (bad sizes get
 * a clear error, before any VM exists), a machine built with --firmware (the ROM read at the top
 * of 4 GiB, writes to it ignored, its end copied below 1 MiB) and the vCPU's reset state, and
 * the config rules (--firmware with --kernel or --accel kvm refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/boot/firmware.h"
#include "vmm/cpu_backend.h"
#include "vmm/machine.h"
#include "vmm/vm_config.h"

static void test_firmware_sizes(void **state)
{
    (void)state;
    char why[128];
    assert_int_equal(firmware_check_size(64 * 1024, why, sizeof(why)), 0);
    assert_int_equal(firmware_check_size(256 * 1024, why, sizeof(why)), 0);
    assert_int_equal(firmware_check_size(16 * 1024 * 1024, why, sizeof(why)), 0);
    const uint64_t bad[] = {0, 1, 1000, 64 * 1024 - 1, 64 * 1024 + 1, 100 * 1024, 16 * 1024 * 1024 + 64 * 1024,
                            1ULL << 40};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = 0;
        assert_int_equal(firmware_check_size(bad[i], why, sizeof(why)), -EINVAL);
        assert_non_null(strstr(why, "multiple of 64 KiB"));
    }
}

/* A ROM of `size` bytes: byte i is (i * 7) & 0xff, the last 16 bytes a marker. */
static char *write_rom(uint64_t size)
{
    char *path = strdup("/tmp/vmd-test-rom-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    uint8_t *buf = malloc(size ? size : 1);
    for (uint64_t i = 0; i < size; i++) buf[i] = (uint8_t)(i * 7);
    if (size >= 16) memcpy(buf + size - 16, "RESET-VECTOR-ROM", 16);
    assert_int_equal(write(fd, buf, size), (ssize_t)size);
    close(fd);
    free(buf);
    return path;
}

static int make_machine(struct machine *m, struct vm_config *cfg, const char *rom, char *err, size_t errlen)
{
    vm_config_init(cfg);
    cfg->accel = ACCEL_EMU;
    cfg->firmware = strdup(rom);
    return machine_create(m, cfg, &emu_backend_ops, err, errlen);
}

static void test_firmware_machine(void **state)
{
    (void)state;
    const uint64_t size = 256 * 1024;
    char *rom = write_rom(size);
    struct machine *m = calloc(1, sizeof(*m));
    struct vm_config cfg;
    char err[256] = "";
    int r = make_machine(m, &cfg, rom, err, sizeof(err));
    if (r < 0) fail_msg("machine_create: %s", err);
    /* the ROM ends at 0xFFFFFFFF */
    uint64_t v = 0;
    assert_true(machine_mmio(m, 0xFFFFFFF0ULL, &v, 8, false));
    assert_memory_equal(&v, "RESET-VE", 8);
    assert_true(machine_mmio(m, (1ULL << 32) - size + 3, &v, 1, false));
    assert_int_equal(v, 21);
    /* writes are ignored */
    uint64_t w = 0x1122334455667788ULL;
    machine_mmio(m, 0xFFFFFFF0ULL, &w, 8, true);
    assert_true(machine_mmio(m, 0xFFFFFFF0ULL, &v, 8, false));
    assert_memory_equal(&v, "RESET-VE", 8);
    /* the last 128 KiB below 1 MiB: 0xE0000 holds ROM offset size - 128 KiB */
    const uint8_t *low = guest_mem_ptr(&m->mem, 0xE0000, 128 * 1024);
    assert_non_null(low);
    assert_int_equal(low[1], (uint8_t)((size - 128 * 1024 + 1) * 7));
    assert_memory_equal(low + 128 * 1024 - 16, "RESET-VECTOR-ROM", 16);
    /* the vCPU at the reset vector */
    struct cpu_state s;
    assert_int_equal(m->backend->get_state(&m->vcpus[0], &s), 0);
    assert_int_equal(s.seg[SEG_CS].selector, 0xF000);
    assert_int_equal(s.seg[SEG_CS].base, 0xFFFF0000ULL);
    assert_int_equal(s.seg[SEG_CS].limit, 0xFFFF);
    assert_int_equal(s.rip, 0xFFF0);
    assert_int_equal(s.cr0, 0x60000010);
    assert_int_equal(s.rflags, 0x2);
    assert_int_equal(s.gpr[GPR_RDX], 0x00060fb1);
    assert_int_equal(s.gpr[GPR_RSP], 0);
    assert_int_equal(s.seg[SEG_DS].selector, 0);
    assert_int_equal(s.seg[SEG_DS].limit, 0xFFFF);
    assert_int_equal(s.idtr.limit, 0xFFFF);
    assert_int_equal(s.efer, 0);
    machine_destroy(m);
    free(m);
    vm_config_free(&cfg);
    unlink(rom);
    free(rom);
}

static void test_firmware_bad_image(void **state)
{
    (void)state;
    char *rom = write_rom(100 * 1024);
    struct machine *m = calloc(1, sizeof(*m));
    struct vm_config cfg;
    char err[256] = "";
    assert_int_equal(make_machine(m, &cfg, rom, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "firmware '"));
    assert_non_null(strstr(err, "is 102400 bytes: a ROM image must be a non-zero multiple of 64 KiB, at most 16 MiB"));
    vm_config_free(&cfg);
    unlink(rom);
    free(rom);
    /* a missing file names it */
    assert_int_equal(make_machine(m, &cfg, "/nonexistent/bios.bin", err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "firmware '/nonexistent/bios.bin': No such file or directory"));
    vm_config_free(&cfg);
    free(m);
}

static void test_firmware_config_rules(void **state)
{
    (void)state;
    struct vm_config c;
    char err[256];
    vm_config_init(&c);
    assert_int_equal(vm_config_validate(&c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--kernel: required (or --firmware)"));
    assert_int_equal(vm_config_set(&c, "firmware", "/x/bios.bin", err, sizeof(err)), 0);
    assert_int_equal(vm_config_validate(&c, err, sizeof(err)), 0);
    assert_int_equal(vm_config_set(&c, "accel", "kvm", err, sizeof(err)), 0);
    assert_int_equal(vm_config_validate(&c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "--firmware: runs under the emulator only"));
    assert_int_equal(vm_config_set(&c, "accel", "emu", err, sizeof(err)), 0);
    assert_int_equal(vm_config_set(&c, "kernel", "/x/vmlinuz", err, sizeof(err)), 0);
    assert_int_equal(vm_config_validate(&c, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not both"));
    vm_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_firmware_sizes),
        cmocka_unit_test(test_firmware_machine),
        cmocka_unit_test(test_firmware_bad_image),
        cmocka_unit_test(test_firmware_config_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
