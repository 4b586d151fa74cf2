/* Unit tests for vmm/host_files (fds opened before the sandbox's privilege drop) and the two
 * pieces of the sandbox that need no privileges: vm_store_open_regular (how vmd reads a worker's
 * files) and the seccomp violation report. */
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
#include <sys/stat.h>
#include <unistd.h>

#include "store/vm_store.h"
#include "vmm/host_files.h"
#include "vmm/seccomp_filter.h"

static char dir[] = "/tmp/hostfiles-XXXXXX";

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_registered_paths(void **state)
{
    (void)state;
    char ro[4200], rw[4200];
    snprintf(ro, sizeof(ro), "%s/kernel", dir);
    snprintf(rw, sizeof(rw), "%s/disk", dir);
    write_file(ro, "kernel bytes");
    write_file(rw, "disk bytes");
    assert_int_equal(host_files_preopen(ro, O_RDONLY), 0);
    assert_int_equal(host_files_preopen(rw, O_RDWR), 0);
    assert_int_equal(host_files_preopen(ro, O_RDONLY), 0); /* again: keeps the first */
    /* the files are gone from the file system (as outside a jail): the registered fds remain */
    assert_int_equal(unlink(ro), 0);
    assert_int_equal(unlink(rw), 0);
    char buf[32] = "";
    int fd = host_files_open(ro, O_RDONLY | O_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, sizeof(buf)), 12);
    assert_memory_equal(buf, "kernel bytes", 12);
    close(fd);
    fd = host_files_open(ro, O_RDONLY, 0); /* a second open starts at offset 0 again */
    assert_true(fd >= 0);
    assert_int_equal(read(fd, buf, 6), 6);
    assert_memory_equal(buf, "kernel", 6);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    /* a read-only registration never yields a writable fd */
    errno = 0;
    assert_int_equal(host_files_open(ro, O_RDWR, 0), -1);
    assert_int_equal(errno, EACCES);
    /* a read-write one serves both (the snapshot code copies into a disk with O_WRONLY) */
    fd = host_files_open(rw, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "DISK", 4, 0), 4);
    close(fd);
    fd = host_files_open(rw, O_RDONLY, 0);
    assert_int_equal(pread(fd, buf, 10, 0), 10);
    assert_memory_equal(buf, "DISK bytes", 10);
    close(fd);
    /* unregistered: plain open(2) */
    char other[4200];
    snprintf(other, sizeof(other), "%s/other", dir);
    errno = 0;
    assert_int_equal(host_files_open(other, O_RDONLY, 0), -1);
    assert_int_equal(errno, ENOENT);
    host_files_clear();
    assert_int_equal(host_files_open(ro, O_RDONLY, 0), -1);
}

static void test_keys(void **state)
{
    (void)state;
    errno = 0;
    assert_int_equal(host_files_dup("tap:0"), -1);
    assert_int_equal(errno, ENOENT);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(host_files_add("tap:0", p[1]), 0);
    int fd = host_files_dup("tap:0");
    assert_true(fd >= 0 && fd != p[1]);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(c, 'x');
    close(p[0]);
    host_files_clear();
}

static void test_open_regular(void **state)
{
    (void)state;
    char f[4200], link[4200], fifo[4200];
    snprintf(f, sizeof(f), "%s/status.json", dir);
    snprintf(link, sizeof(link), "%s/link.json", dir);
    snprintf(fifo, sizeof(fifo), "%s/fifo.json", dir);
    write_file(f, "{\"state\": \"running\"}");
    assert_int_equal(symlink(f, link), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int fd = vm_store_open_regular(f);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(vm_store_open_regular(link), -ELOOP); /* a worker's symlink is not followed */
    assert_int_equal(vm_store_open_regular(fifo), -EINVAL); /* nor does a FIFO block vmd */
    assert_null(vm_store_read_json(link));
    assert_null(vm_store_read_json(fifo));
    json_t *j = vm_store_read_json(f);
    assert_non_null(j);
    json_decref(j);
    unlink(f);
    unlink(link);
    unlink(fifo);
}

static void test_violation_report(void **state)
{
    (void)state;
    char out[160];
    seccomp_violation_describe("forbidden system call 250\n", out, sizeof(out));
    assert_string_equal(out, "forbidden system call 250 (keyctl) (seccomp)");
    seccomp_violation_describe("", out, sizeof(out));
    assert_string_equal(out, "a forbidden system call (seccomp)");
    seccomp_violation_describe(NULL, out, sizeof(out));
    assert_string_equal(out, "a forbidden system call (seccomp)");
    seccomp_violation_describe("forbidden system call 99999", out, sizeof(out));
    assert_string_equal(out, "forbidden system call 99999 (unknown) (seccomp)");
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registered_paths),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_open_regular),
        cmocka_unit_test(test_violation_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
