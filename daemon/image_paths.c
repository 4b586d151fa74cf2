/* image_paths: the image path policy of vm.create (docs/operations.md "Image directories").
 *
 * Every file a definition names (kernel, initrd, disks) must be given as an absolute path that
 * resolves (realpath, following symlinks) inside one of vmd's image directories, outside vmd's
 * own vms/ directory, to a regular file that vmd can read. The definition stores the resolved
 * path; the worker opens it with O_NOFOLLOW, so a symlink swapped in later is not followed.
 * Every start checks the definition again (supervisor_start): a file moved out of the image
 * directories since, or a definition written before the policy, is refused then.
 *
 * A qcow2 disk's backing files are files the VM reads too: each one in its chain (as the worker
 * will open it, relative names against the overlay's directory) must pass the same check, at
 * create and at every start (an overlay's header is the image owner's to change). A disk's format
 * is fixed here at vm.create (from its first bytes when the client gave none) and never probed
 * again.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/vmd.h"
#include "vmm/block/block.h"
#include "vmm/boot/firmware.h"
#include "vmm/log.h"

/* Whether resolved path p lies strictly inside directory dir (both resolved, no trailing '/'
 * except for "/" itself): "/imgs2/x" is not inside "/imgs". */
static bool path_inside(const char *p, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/') return p[0] == '/' && p[1] != 0;
    return !strncmp(p, dir, n) && p[n] == '/' && p[n + 1] != 0;
}

static void dirs_list(const struct vmd *d, char *buf, size_t len)
{
    buf[0] = 0;
    size_t off = 0;
    for (size_t i = 0; i < d->nimage_dirs && off < len; i++) {
        int n = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", d->image_dirs[i]);
        if (n < 0) break;
        off += (size_t)n;
    }
}

int image_dirs_init(struct vmd *d, char *err, size_t errlen)
{
    bool by_default = d->nimage_dirs == 0; /* only the default is created: a mistyped one is an error */
    if (by_default) {
        char def[PATH_MAX];
        snprintf(def, sizeof(def), "%s/images", d->state_dir);
        d->image_dirs = calloc(1, sizeof(char *));
        if (!d->image_dirs || !(d->image_dirs[0] = strdup(def))) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        d->nimage_dirs = 1;
    }
    for (size_t i = 0; i < d->nimage_dirs; i++) {
        const char *given = d->image_dirs[i];
        if (given[0] != '/') {
            snprintf(err, errlen, "image dir '%s': must be an absolute path", given);
            return -EINVAL;
        }
        int r = by_default ? vm_store_mkdirs(given, 0750) : 0;
        char *abs = r ? NULL : realpath(given, NULL);
        struct stat st;
        if (!abs || stat(abs, &st) < 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "image dir '%s': %s", given, r ? strerror(-r) : abs ? "not a directory" : strerror(errno));
            free(abs);
            return -EINVAL;
        }
        free(d->image_dirs[i]);
        d->image_dirs[i] = abs;
    }
    char list[1024];
    dirs_list(d, list, sizeof(list));
    log_info("image directories: %s", list);
    return 0;
}

int image_path_resolve(const struct vmd *d, const char *what, const char *path, char **resolved, char *err,
                       size_t errlen)
{
    char list[1024];
    dirs_list(d, list, sizeof(list));
    *resolved = NULL;
    if (path[0] != '/') {
        snprintf(err, errlen, "%s '%s': must be an absolute path", what, path);
        return -EINVAL;
    }
    char *abs = realpath(path, NULL);
    if (!abs) {
        int e = errno;
        /* Say "No such file" only where the client may look: a missing file outside the image
         * directories is reported as outside, so the error is no probe of the host's files. */
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", path);
        char *slash = strrchr(parent, '/');
        if (slash == parent) slash[1] = 0;
        else if (slash) *slash = 0;
        char *pabs = realpath(parent, NULL);
        bool inside = false;
        for (size_t i = 0; pabs && i < d->nimage_dirs; i++)
            inside = inside || path_inside(pabs, d->image_dirs[i]) || !strcmp(pabs, d->image_dirs[i]);
        free(pabs);
        if (inside) snprintf(err, errlen, "%s '%s': %s", what, path, strerror(e));
        else snprintf(err, errlen, "%s '%s': resolves outside the image directories (%s)", what, path, list);
        return -EINVAL;
    }
    bool inside = false;
    for (size_t i = 0; i < d->nimage_dirs && !inside; i++) inside = path_inside(abs, d->image_dirs[i]);
    char vms[PATH_MAX];
    snprintf(vms, sizeof(vms), "%s/vms", d->state_dir);
    char *vms_abs = realpath(vms, NULL);
    if (!inside) {
        snprintf(err, errlen, "%s '%s': resolves outside the image directories (%s)", what, path, list);
    } else if (vms_abs && path_inside(abs, vms_abs)) {
        snprintf(err, errlen, "%s '%s': resolves into vmd's own state directory (%s)", what, path, vms_abs);
        inside = false;
    }
    free(vms_abs);
    if (!inside) {
        free(abs);
        return -EINVAL;
    }
    struct stat st;
    if (stat(abs, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s '%s': is not a regular file", what, path);
        free(abs);
        return -EINVAL;
    }
    if (access(abs, R_OK) < 0) {
        snprintf(err, errlen, "%s '%s': %s", what, path, strerror(errno));
        free(abs);
        return -EINVAL;
    }
    *resolved = abs;
    return 0;
}

int image_paths_check(const struct vmd *d, struct vm_config *c, bool resolve, const char **field, char *err,
                      size_t errlen)
{
    struct {
        const char *field, *what;
        char **path;
    } files[3 + VM_MAX_DISKS] = {{"kernel", "kernel", &c->kernel}, {"initrd", "initrd", &c->initrd},
                                 {"firmware", "firmware", &c->firmware}};
    size_t nfiles = 3;
    for (unsigned i = 0; i < c->ndisks; i++) files[nfiles++] = (typeof(files[0])){"disks", "disk", &c->disks[i].path};
    for (size_t i = 0; i < nfiles; i++) {
        char *resolved;
        if (!*files[i].path) continue;
        if (image_path_resolve(d, files[i].what, *files[i].path, &resolved, err, errlen)) {
            if (field) *field = files[i].field;
            return -EINVAL;
        }
        if (resolve) {
            free(*files[i].path);
            *files[i].path = resolved;
        } else {
            free(resolved);
        }
    }
    /* a ROM image of a size firmware boot refuses is refused here already, not at start */
    struct stat st;
    char why[128];
    if (c->firmware && stat(c->firmware, &st) == 0 && firmware_check_size((uint64_t)st.st_size, why, sizeof(why))) {
        if (field) *field = "firmware";
        snprintf(err, errlen, "firmware '%s' %s", c->firmware, why);
        return -EINVAL;
    }
    for (unsigned i = 0; i < c->ndisks; i++) {
        struct vm_disk *disk = &c->disks[i];
        if (resolve && disk->format == DISK_FORMAT_UNSET) {
            enum block_format f;
            if (block_probe(disk->path, &f, err, errlen)) {
                if (field) *field = "disks";
                return -EINVAL;
            }
            disk->format = f == BLOCK_FORMAT_QCOW2 ? DISK_FORMAT_QCOW2 : DISK_FORMAT_RAW;
        }
        if (disk->format != DISK_FORMAT_QCOW2) continue;
        char **chain, *resolved;
        unsigned n;
        if (block_backing_chain(disk->path, BLOCK_FORMAT_QCOW2, &chain, &n, err, errlen)) {
            if (field) *field = "disks";
            return -EINVAL;
        }
        for (unsigned k = 0; k < n; k++) {
            if (image_path_resolve(d, "backing file", chain[k], &resolved, err, errlen)) {
                size_t l = strlen(err);
                snprintf(err + l, errlen - l, " (in the backing chain of disk '%s')", disk->path);
                block_chain_free(chain, n);
                if (field) *field = "disks";
                return -EINVAL;
            }
            free(resolved);
        }
        block_chain_free(chain, n);
    }
    return 0;
}
