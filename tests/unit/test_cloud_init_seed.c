/* Unit tests for store/cloud_init_seed: the NoCloud seed ISO, read back with a reader vmd's
 * authors did not write (isoinfo, Debian package genisoimage): volume id, file names under Rock
 * Ridge and Joliet, and every file's bytes equal to what was given. Also: the default
 * meta-data, byte-identical images for the same input, atomic replacement, and errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/cloud_init_seed.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/vmd-seed-test-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static bool have_isoinfo(void)
{
    if (system("command -v isoinfo > /dev/null 2>&1") == 0) return true;
    print_message("[  SKIP    ] isoinfo not installed (Debian package genisoimage)\n");
    return false;
}

/* The whole stdout of cmd (malloc'd, NUL-terminated), its length in *len. */
static char *capture(const char *cmd, size_t *len)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, p)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    assert_int_equal(pclose(p), 0);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* The bytes of /name in iso, as isoinfo extracts them through Rock Ridge (-R) or Joliet (-J). */
static char *extract(const char *iso, const char *ext, const char *name, size_t *len)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "isoinfo %s -i '%s' -x '/%s' 2>/dev/null", ext, iso, name);
    return capture(cmd, len);
}

static void assert_file(const char *iso, const char *name, const char *want)
{
    const char *exts[] = {"-R", "-J"};
    for (int i = 0; i < 2; i++) {
        size_t len;
        char *got = extract(iso, exts[i], name, &len);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(got, want, len);
        free(got);
    }
}

/* The names isoinfo lists in the root with extension ext, as one sorted line. */
static char *listing(const char *iso, const char *ext)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "isoinfo %s -i '%s' -f | sort | tr '\\n' ' '", ext, iso);
    return capture(cmd, NULL);
}

static void test_seed_read_back_by_isoinfo(void **state)
{
    (void)state;
    if (!have_isoinfo()) skip();
    char iso[128], err[512];
    snprintf(iso, sizeof(iso), "%s/seed.iso", dir);
    const char *user = "#cloud-config\nhostname: web1\nssh_authorized_keys:\n  - ssh-ed25519 AAAAC3Nza test@host\n"
                       "write_files:\n  - path: /etc/motd\n    content: \"caf\xc3\xa9 \xe2\x9c\x93\"\n";
    const char *meta = "instance-id: iid-web1-0001\nlocal-hostname: web1\n";
    const char *net = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n";
    struct vm_cloud_init ci = {(char *)user, (char *)meta, (char *)net};
    assert_int_equal(cloud_init_seed_write(&ci, "web1", iso, 1700000000, err, sizeof(err)), 0);

    char cmd[256];
    snprintf(cmd, sizeof(cmd), "isoinfo -d -i '%s'", iso);
    char *d = capture(cmd, NULL);
    assert_non_null(strstr(d, "Volume id: cidata\n"));
    assert_non_null(strstr(d, "Rock Ridge signatures version"));
    assert_non_null(strstr(d, "Joliet with UCS level"));
    free(d);

    char *rr = listing(iso, "-R"), *joliet = listing(iso, "-J");
    assert_string_equal(rr, "/meta-data /network-config /user-data ");
    assert_string_equal(joliet, "/meta-data /network-config /user-data ");
    free(rr);
    free(joliet);
    assert_file(iso, "user-data", user);
    assert_file(iso, "meta-data", meta);
    assert_file(iso, "network-config", net);

    struct stat st;
    assert_int_equal(stat(iso, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size % 2048, 0);
}

static void test_default_meta_data(void **state)
{
    (void)state;
    char *m = cloud_init_default_meta_data("db-2");
    assert_string_equal(m, "instance-id: \"db-2\"\nlocal-hostname: \"db-2\"\n");
    free(m);
    if (!have_isoinfo()) skip();
    char iso[128], err[512];
    snprintf(iso, sizeof(iso), "%s/default.iso", dir);
    struct vm_cloud_init ci = {.user_data = "#cloud-config\n"};
    assert_int_equal(cloud_init_seed_write(&ci, "db-2", iso, 1700000000, err, sizeof(err)), 0);
    char *rr = listing(iso, "-R");
    assert_string_equal(rr, "/meta-data /user-data "); /* no network-config when none was given */
    free(rr);
    assert_file(iso, "meta-data", "instance-id: \"db-2\"\nlocal-hostname: \"db-2\"\n");
    assert_file(iso, "user-data", "#cloud-config\n");
}

/* The largest texts vm.create accepts, and empty ones, come back byte for byte. */
static void test_sizes(void **state)
{
    (void)state;
    if (!have_isoinfo()) skip();
    char *big = malloc(VM_CLOUD_INIT_MAX_BYTES + 1);
    assert_non_null(big);
    for (size_t i = 0; i < VM_CLOUD_INIT_MAX_BYTES; i++) big[i] = (char)(i % 61 == 60 ? '\n' : 'a' + (char)(i % 26));
    big[VM_CLOUD_INIT_MAX_BYTES] = 0;
    char iso[128], err[512];
    snprintf(iso, sizeof(iso), "%s/big.iso", dir);
    struct vm_cloud_init ci = {.user_data = big, .meta_data = "", .network_config = big};
    assert_int_equal(cloud_init_seed_write(&ci, "big", iso, 1700000000, err, sizeof(err)), 0);
    assert_file(iso, "user-data", big);
    assert_file(iso, "meta-data", "");
    assert_file(iso, "network-config", big);
    free(big);
}

static void *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* The same data and time give the same bytes (vmd regenerates a VM's seed at every start). */
static void test_deterministic(void **state)
{
    (void)state;
    char a[128], b[128], c[128], err[512];
    snprintf(a, sizeof(a), "%s/a.iso", dir);
    snprintf(b, sizeof(b), "%s/b.iso", dir);
    snprintf(c, sizeof(c), "%s/c.iso", dir);
    struct vm_cloud_init ci = {.user_data = "#cloud-config\npackages: [htop]\n", .network_config = "version: 2\n"};
    assert_int_equal(cloud_init_seed_write(&ci, "x", a, 1700000000, err, sizeof(err)), 0);
    sleep(1); /* a clock that leaked into the image would now differ */
    assert_int_equal(cloud_init_seed_write(&ci, "x", b, 1700000000, err, sizeof(err)), 0);
    assert_int_equal(cloud_init_seed_write(&ci, "x", c, 1800000000, err, sizeof(err)), 0);
    size_t la, lb, lc;
    void *da = slurp(a, &la), *db = slurp(b, &lb), *dc = slurp(c, &lc);
    assert_int_equal(la, lb);
    assert_memory_equal(da, db, la);
    assert_true(la != lc || memcmp(da, dc, la) != 0);
    free(da);
    free(db);
    free(dc);
}

/* The image replaces what was at the path, a symlink included (it is not followed), and leaves
 * no temporary file behind. */
static void test_replaces_atomically(void **state)
{
    (void)state;
    char sub[128], iso[160], target[160], err[512];
    snprintf(sub, sizeof(sub), "%s/vm", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(iso, sizeof(iso), "%s/" CLOUD_INIT_SEED_FILE, sub);
    snprintf(target, sizeof(target), "%s/precious", dir);
    FILE *f = fopen(target, "w");
    fputs("keep me", f);
    fclose(f);
    assert_int_equal(symlink(target, iso), 0);
    struct vm_cloud_init ci = {.user_data = "#cloud-config\n"};
    assert_int_equal(cloud_init_seed_write(&ci, "vm", iso, 1700000000, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(lstat(iso, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    size_t len;
    char *kept = slurp(target, &len);
    assert_int_equal(len, 7);
    assert_memory_equal(kept, "keep me", 7);
    free(kept);
    DIR *dh = opendir(sub);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dh)))
        if (e->d_name[0] != '.') {
            assert_string_equal(e->d_name, CLOUD_INIT_SEED_FILE);
            n++;
        }
    closedir(dh);
    assert_int_equal(n, 1);
}

static void test_errors(void **state)
{
    (void)state;
    char err[512], path[160];
    struct vm_cloud_init none = {0};
    snprintf(path, sizeof(path), "%s/none.iso", dir);
    assert_int_equal(cloud_init_seed_write(&none, "x", path, 0, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no user-data"));
    struct vm_cloud_init ci = {.user_data = "#cloud-config\n"};
    snprintf(path, sizeof(path), "%s/no/such/dir/seed.iso", dir);
    assert_int_equal(cloud_init_seed_write(&ci, "x", path, 0, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file or directory"));
}

/* The checks vm.create and the command line share. */
static void test_text_checks(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(vm_cloud_init_check("cloud_init.user_data", "ok", 2, err, sizeof(err)), 0);
    assert_int_equal(vm_cloud_init_check("cloud_init.user_data", "a\0b", 3, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "cloud_init.user_data: contains a NUL byte"));
    char *big = calloc(1, VM_CLOUD_INIT_MAX_BYTES + 2);
    memset(big, 'x', VM_CLOUD_INIT_MAX_BYTES + 1);
    assert_int_equal(vm_cloud_init_check("cloud_init.meta_data", big, VM_CLOUD_INIT_MAX_BYTES, err, sizeof(err)), 0);
    assert_int_equal(vm_cloud_init_check("cloud_init.meta_data", big, VM_CLOUD_INIT_MAX_BYTES + 1, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "cloud_init.meta_data: 65537 bytes, more than the 65536 allowed"));
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seed_read_back_by_isoinfo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_meta_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replaces_atomically, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test(test_text_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
