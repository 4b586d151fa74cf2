/* Unit tests for vmm/snapshot: a round trip of RAM (sparse), vCPU state and device state, and
 * refusal of corrupted, truncated, foreign and mismatched files with an error naming the
 * section, leaving the machine as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define RAM (16u << 20)

static struct cpu_state fake_cpu;
static int fake_get(struct vcpu *v, struct cpu_state *s) { (void)v; *s = fake_cpu; return 0; }
static int fake_set(struct vcpu *v, const struct cpu_state *s) { (void)v; fake_cpu = *s; return 0; }
static const struct cpu_backend_ops fake_backend = {.name = "fake", .get_state = fake_get, .set_state = fake_set};

/* A device with two registers; restore rejects reg_b > 100. */
static struct { uint32_t reg_a, reg_b; } fake_dev;
static int fake_save(struct machine *m, struct snap_buf *b)
{
    (void)m;
    snap_put_u32(b, fake_dev.reg_a);
    snap_put_u32(b, fake_dev.reg_b);
    return 0;
}
static int fake_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err, size_t errlen)
{
    (void)m;
    uint32_t a = snap_get_u32(r), b = snap_get_u32(r);
    if (version != 3 || b > 100) {
        snprintf(err, errlen, "fake device: bad state");
        return -EINVAL;
    }
    if (apply) fake_dev.reg_a = a, fake_dev.reg_b = b;
    return 0;
}
static int fake_init(struct machine *m, char *err, size_t errlen) { (void)m, (void)err, (void)errlen; return 0; }
static const struct device_desc fake_desc = {
    .name = "fake", .init = fake_init, .state_version = 3, .save = fake_save, .restore = fake_restore};

static struct machine m;
static char path[64];

static void fill(void)
{
    memset(m.mem.base, 0, RAM);
    for (unsigned p = 0; p < RAM / 4096; p += 7) memset(m.mem.base + p * 4096ull, (int)(p & 0xff) | 1, 100);
    memset(&fake_cpu, 0, sizeof(fake_cpu));
    fake_cpu.rip = 0xffffffff81000000ull;
    fake_cpu.gpr[GPR_RAX] = 42;
    fake_cpu.cr3 = 0x9000;
    fake_dev.reg_a = 7;
    fake_dev.reg_b = 9;
}

static void scribble(void)
{
    memset(m.mem.base, 0x5a, RAM);
    fake_cpu.rip = 1;
    fake_dev.reg_a = 1000;
}

static void check_restored(void)
{
    for (unsigned p = 0; p < RAM / 4096; p++) {
        uint8_t expect = (p % 7 == 0) ? (uint8_t)((p & 0xff) | 1) : 0;
        assert_int_equal(m.mem.base[p * 4096ull], expect);
        assert_int_equal(m.mem.base[p * 4096ull + 200], 0);
    }
    assert_int_equal(fake_cpu.rip, 0xffffffff81000000ull);
    assert_int_equal(fake_cpu.gpr[GPR_RAX], 42);
    assert_int_equal(fake_dev.reg_a, 7);
    assert_int_equal(fake_dev.reg_b, 9);
}

static int setup(void **state)
{
    (void)state;
    device_register(&fake_desc);
    memset(&m, 0, sizeof(m));
    m.backend = &fake_backend;
    m.ncpus = 1;
    pthread_mutex_init(&m.dev_lock, NULL);
    snprintf(path, sizeof(path), "/tmp/vmd-snap-test-%d", (int)getpid());
    return guest_mem_init(&m.mem, RAM);
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    guest_mem_free(&m.mem);
    return 0;
}

static void save_ok(void)
{
    char err[256];
    fill();
    int r = snapshot_save(&m, path, NULL, NULL, err, sizeof(err));
    if (r) print_error("%s\n", err);
    assert_int_equal(r, 0);
}

static void expect_restore_error(const char *needle)
{
    char err[256] = "";
    scribble();
    assert_int_not_equal(snapshot_restore(&m, path, NULL, NULL, err, sizeof(err)), 0);
    if (!strstr(err, needle)) print_error("error was: %s\n", err);
    assert_non_null(strstr(err, needle));
    /* Nothing was applied. */
    assert_int_equal(m.mem.base[0], 0x5a);
    assert_int_equal(fake_cpu.rip, 1);
    assert_int_equal(fake_dev.reg_a, 1000);
}

static void flip_byte_at(long off)
{
    FILE *f = fopen(path, "r+b");
    fseek(f, off, SEEK_SET);
    int c = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(c ^ 0x01, f);
    fclose(f);
}

static long section_payload(const char *name)
{
    struct snap_file sf;
    char err[256];
    assert_int_equal(snap_file_open(&sf, path, err, sizeof(err)), 0);
    const struct snap_section_info *s = snap_file_find(&sf, name);
    assert_non_null(s);
    long off = s->payload_offset;
    snap_file_close(&sf);
    return off;
}

static uint64_t last_done, last_total;
static void progress(void *o, uint64_t done, uint64_t total) { (void)o; last_done = done; last_total = total; }

static void test_round_trip_is_exact_and_sparse(void **state)
{
    (void)state;
    save_ok();
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    unsigned nonzero = (RAM / 4096 + 6) / 7;
    assert_true((uint64_t)st.st_size < (uint64_t)nonzero * 4096 + 64 * 1024); /* zero pages not written */
    scribble();
    char err[256];
    assert_int_equal(snapshot_restore(&m, path, progress, NULL, err, sizeof(err)), 0);
    check_restored();
    assert_int_equal(last_done, RAM);
    assert_int_equal(last_total, RAM);
}

static void test_corrupt_ram_named(void **state)
{
    (void)state;
    save_ok();
    flip_byte_at(section_payload("ram") + 9000);
    expect_restore_error("section 'ram' is corrupted");
}

static void test_corrupt_device_named(void **state)
{
    (void)state;
    save_ok();
    flip_byte_at(section_payload("dev.fake") + 1);
    expect_restore_error("section 'dev.fake' is corrupted");
}

static void test_corrupt_cpu_named(void **state)
{
    (void)state;
    save_ok();
    flip_byte_at(section_payload("cpu.0") + 8);
    expect_restore_error("section 'cpu.0' is corrupted");
}

static void test_truncated(void **state)
{
    (void)state;
    save_ok();
    struct stat st;
    stat(path, &st);
    assert_int_equal(truncate(path, st.st_size - 5000), 0);
    expect_restore_error("truncated");
}

static void test_not_a_snapshot_and_other_version(void **state)
{
    (void)state;
    FILE *f = fopen(path, "wb");
    fputs("this is not a snapshot at all, just some text that is long enough", f);
    fclose(f);
    expect_restore_error("not a vmd snapshot");
    save_ok();
    flip_byte_at(8); /* format version */
    expect_restore_error("header checksum");
}

static void test_device_rejects_state_nothing_applied(void **state)
{
    (void)state;
    fill();
    fake_dev.reg_b = 500; /* a value this device's restore refuses */
    char err[256];
    assert_int_equal(snapshot_save(&m, path, NULL, NULL, err, sizeof(err)), 0);
    expect_restore_error("fake device: bad state");
}

static void test_ram_size_mismatch(void **state)
{
    (void)state;
    save_ok();
    struct guest_mem small;
    assert_int_equal(guest_mem_init(&small, 8u << 20), 0);
    struct guest_mem saved = m.mem;
    m.mem = small;
    char err[256];
    assert_int_not_equal(snapshot_restore(&m, path, NULL, NULL, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "section 'ram' holds 16 MiB, this VM has 8 MiB"));
    m.mem = saved;
    guest_mem_free(&small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_is_exact_and_sparse),
        cmocka_unit_test(test_corrupt_ram_named),
        cmocka_unit_test(test_corrupt_device_named),
        cmocka_unit_test(test_corrupt_cpu_named),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_not_a_snapshot_and_other_version),
        cmocka_unit_test(test_device_rejects_state_nothing_applied),
        cmocka_unit_test(test_ram_size_mismatch),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
