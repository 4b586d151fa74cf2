/* Unit tests for store/snap_store: snapshot names, paths, listing (complete snapshots only,
 * oldest first) and removal. */
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

#include "store/snap_store.h"
#include "store/vm_store.h"

static void test_names(void **state)
{
    (void)state;
    char err[256];
    const char *good[] = {"s1", "before-upgrade", "a.b_c-d", "X", "0"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) assert_int_equal(snap_name_check(good[i], err, sizeof(err)), 0);
    const char *bad[] = {"", "../x", "a/b", ".hidden", "-opt", "sp ace", "tab\t", "é"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(snap_name_check(bad[i], err, sizeof(err)), -EINVAL);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(snap_name_check(NULL, err, sizeof(err)), -EINVAL);
    char longname[80];
    memset(longname, 'a', 64);
    longname[64] = 0;
    assert_int_equal(snap_name_check(longname, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "1 to 63"));
    longname[63] = 0;
    assert_int_equal(snap_name_check(longname, err, sizeof(err)), 0);
}

static void test_paths(void **state)
{
    (void)state;
    char p[64];
    assert_int_equal(snap_store_path(p, sizeof(p), "/st", "vm1", NULL, NULL), 0);
    assert_string_equal(p, "/st/vms/vm1/snapshots");
    assert_int_equal(snap_store_path(p, sizeof(p), "/st", "vm1", "s1", NULL), 0);
    assert_string_equal(p, "/st/vms/vm1/snapshots/s1");
    assert_int_equal(snap_store_path(p, sizeof(p), "/st", "vm1", "s1", "vm.snap"), 0);
    assert_string_equal(p, "/st/vms/vm1/snapshots/s1/vm.snap");
    char tiny[10];
    assert_int_equal(snap_store_path(tiny, sizeof(tiny), "/st", "vm1", "s1", NULL), -ENAMETOOLONG);
}

static void write_meta(const char *root, const char *snap, long created)
{
    char p[4096];
    snap_store_path(p, sizeof(p), root, "vm1", snap, NULL);
    assert_int_equal(vm_store_mkdirs(p, 0700), 0);
    if (created < 0) return; /* incomplete: no meta.json */
    snap_store_path(p, sizeof(p), root, "vm1", snap, "meta.json");
    json_t *j = json_pack("{s:I, s:s}", "created", (json_int_t)created, "backend", "emu");
    assert_int_equal(vm_store_write_json(p, j), 0);
    json_decref(j);
}

static void test_list_and_remove(void **state)
{
    (void)state;
    char root[] = "/tmp/test_snap_store.XXXXXX";
    assert_non_null(mkdtemp(root));
    json_t *l = snap_store_list(root, "vm1"); /* no snapshots directory yet */
    assert_int_equal(json_array_size(l), 0);
    json_decref(l);
    write_meta(root, "later", 200);
    write_meta(root, "early", 100);
    write_meta(root, "partial", -1);
    write_meta(root, "also-early", 100);
    l = snap_store_list(root, "vm1");
    assert_int_equal(json_array_size(l), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "snapshot")), "also-early");
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "snapshot")), "early");
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 2), "snapshot")), "later");
    json_decref(l);

    char p[4096];
    snap_store_path(p, sizeof(p), root, "vm1", "later", "disk0.img");
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("data", f);
    fclose(f);
    assert_int_equal(snap_store_remove(root, "vm1", "later"), 0);
    snap_store_path(p, sizeof(p), root, "vm1", "later", NULL);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(snap_store_remove(root, "vm1", "later"), -ENOENT);
    l = snap_store_list(root, "vm1");
    assert_int_equal(json_array_size(l), 2);
    json_decref(l);
    assert_int_equal(snap_store_remove(root, "vm1", "early"), 0);
    /* remove_all: what is left (a complete and a partial snapshot), then the directory */
    assert_int_equal(snap_store_remove_all(root, "vm1"), 0);
    snap_store_path(p, sizeof(p), root, "vm1", NULL, NULL);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(snap_store_remove_all(root, "vm1"), 0); /* nothing there: fine */
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

/* A VM's directory belongs to its sandboxed worker: a snapshot (or the snapshots directory)
 * it replaced by a symlink is removed as a link, and what the link points to is left alone. */
static void test_remove_does_not_follow_links(void **state)
{
    (void)state;
    char root[] = "/tmp/snapstore-link-XXXXXX";
    assert_non_null(mkdtemp(root));
    char victim[4200], f[4300], p[4200];
    snprintf(victim, sizeof(victim), "%s/victim", root);
    assert_int_equal(mkdir(victim, 0700), 0);
    snprintf(f, sizeof(f), "%s/precious", victim);
    FILE *fp = fopen(f, "w");
    assert_non_null(fp);
    fclose(fp);
    snap_store_path(p, sizeof(p), root, "vm1", NULL, NULL);
    assert_int_equal(vm_store_mkdirs(p, 0700), 0);
    snap_store_path(p, sizeof(p), root, "vm1", "evil", NULL);
    assert_int_equal(symlink(victim, p), 0);
    assert_int_equal(snap_store_remove(root, "vm1", "evil"), -ENOTDIR);
    assert_int_equal(access(f, F_OK), 0);
    assert_int_equal(snap_store_remove_all(root, "vm1"), 0); /* the link goes, not its target's files */
    assert_int_equal(access(f, F_OK), 0);
    /* the snapshots directory itself a link */
    snap_store_path(p, sizeof(p), root, "vm1", NULL, NULL);
    assert_int_equal(symlink(victim, p), 0);
    assert_int_equal(snap_store_remove_all(root, "vm1"), 0);
    assert_int_equal(access(f, F_OK), 0);
    assert_int_equal(access(p, F_OK), -1);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_list_and_remove),
        cmocka_unit_test(test_remove_does_not_follow_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
