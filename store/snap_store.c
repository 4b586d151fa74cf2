/* snap_store: snapshot directory layout, names, listing and removal (see snap_store.h). */
#include "snap_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vm_store.h"

int snap_name_check(const char *name, char *err, size_t errlen)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > SNAP_STORE_NAME_MAX) {
        snprintf(err, errlen, "snapshot name must be 1 to %d characters", SNAP_STORE_NAME_MAX);
        return -EINVAL;
    }
    if (name[0] == '.' || name[0] == '-') {
        snprintf(err, errlen, "snapshot name '%s' must not start with '%c'", name, name[0]);
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
        if (!ok) {
            snprintf(err, errlen, "snapshot name '%s': only letters, digits, '.', '_' and '-' are allowed", name);
            return -EINVAL;
        }
    }
    return 0;
}

int snap_store_path(char *buf, size_t len, const char *state_dir, const char *vm, const char *snap, const char *file)
{
    int n = snprintf(buf, len, "%s/vms/%s/snapshots%s%s%s%s", state_dir, vm, snap ? "/" : "", snap ? snap : "",
                     snap && file ? "/" : "", snap && file ? file : "");
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int by_created(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t cx = json_integer_value(json_object_get(x, "created")), cy = json_integer_value(json_object_get(y, "created"));
    if (cx != cy) return cx < cy ? -1 : 1;
    const char *nx = json_string_value(json_object_get(x, "snapshot")), *ny = json_string_value(json_object_get(y, "snapshot"));
    return strcmp(nx ? nx : "", ny ? ny : "");
}

json_t *snap_store_list(const char *state_dir, const char *vm)
{
    json_t *out = json_array();
    char dir[4096];
    if (snap_store_path(dir, sizeof(dir), state_dir, vm, NULL, NULL)) return out;
    DIR *d = opendir(dir);
    if (!d) return out;
    json_t *items[1024];
    size_t n = 0;
    struct dirent *e;
    char err[128];
    while ((e = readdir(d)) && n < sizeof(items) / sizeof(items[0])) {
        if (snap_name_check(e->d_name, err, sizeof(err))) continue;
        char meta[4200];
        if (snap_store_path(meta, sizeof(meta), state_dir, vm, e->d_name, "meta.json")) continue;
        json_t *j = vm_store_read_json(meta);
        if (!json_is_object(j)) {
            json_decref(j);
            continue;
        }
        json_object_set_new(j, "snapshot", json_string(e->d_name));
        items[n++] = j;
    }
    closedir(d);
    qsort(items, n, sizeof(items[0]), by_created);
    for (size_t i = 0; i < n; i++) json_array_append_new(out, items[i]);
    return out;
}

/* The directory STATE_DIR/vms/VM/snapshots[/SNAP], opened one component at a time from vms/
 * without following a symlink: a VM's directory belongs to its sandboxed worker, and vmd (root)
 * must not be led out of it (docs/security.md). An fd or -errno. */
static int open_snap_dir(const char *state_dir, const char *vm, const char *snap)
{
    char vms[4096];
    if (snprintf(vms, sizeof(vms), "%s/vms", state_dir) >= (int)sizeof(vms)) return -ENAMETOOLONG;
    int fd = open(vms, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char *parts[3] = {vm, "snapshots", snap};
    for (int i = 0; i < 3 && fd >= 0 && parts[i]; i++) {
        int next = openat(fd, parts[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        fd = next;
        errno = e;
    }
    return fd < 0 ? (errno == ELOOP ? -ENOTDIR : -errno) : fd;
}

/* Empty the open directory dfd (regular entries only; unlinkat never follows a symlink). */
static int empty_dir(int dfd)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        int e = errno;
        close(dfd);
        return -e;
    }
    struct dirent *e;
    int r = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (unlinkat(dirfd(d), e->d_name, 0) < 0 && errno != ENOENT) r = -errno;
    }
    closedir(d);
    return r;
}

int snap_store_remove(const char *state_dir, const char *vm, const char *snap)
{
    int pfd = open_snap_dir(state_dir, vm, NULL);
    if (pfd < 0) return pfd;
    int fd = openat(pfd, snap, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int r = fd < 0 ? (errno == ELOOP ? -ENOTDIR : -errno) : empty_dir(fd);
    if (!r && unlinkat(pfd, snap, AT_REMOVEDIR) < 0) r = -errno;
    close(pfd);
    return r;
}

int snap_store_remove_all(const char *state_dir, const char *vm)
{
    char dir[4096];
    if (snap_store_path(dir, sizeof(dir), state_dir, vm, NULL, NULL)) return -ENAMETOOLONG;
    int fd = open_snap_dir(state_dir, vm, NULL);
    if (fd == -ENOENT) return 0;
    if (fd == -ENOTDIR) return unlink(dir) < 0 ? -errno : 0; /* a symlink the worker left: only it goes */
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return fd < 0 ? fd : -errno;
    }
    struct dirent *e;
    int r = 0;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int rr = snap_store_remove(state_dir, vm, e->d_name);
        if (rr == -ENOTDIR) rr = unlinkat(dirfd(d), e->d_name, 0) < 0 ? -errno : 0;
        if (rr && !r) r = rr;
    }
    closedir(d);
    if (!r && rmdir(dir) < 0) r = -errno;
    return r;
}
