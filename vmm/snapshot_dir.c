/* snapshot_dir: saving a paused machine into a snapshot directory and restoring it
 * (vm.snap + disk copies + meta.json; see store/snap_store.h and docs/snapshots.md). */
#include "vmm/snapshot_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/vm_store.h"
#include "vmm/host_files.h"
#include "vmm/irqchip.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/vm_config.h"

#define COPY_CHUNK (1u << 20)

static int copy_range(int in, int out, off_t start, off_t end, char *buf)
{
    while (start < end) {
        size_t want = (size_t)(end - start) < COPY_CHUNK ? (size_t)(end - start) : COPY_CHUNK;
        ssize_t n = pread(in, buf, want, start);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? -errno : -EIO;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = pwrite(out, buf + done, (size_t)(n - done), start + done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return w < 0 ? -errno : -EIO;
            done += w;
        }
        start += n;
    }
    return 0;
}

int snapshot_dir_copy_file(const char *src, const char *dst, char *err, size_t errlen)
{
    /* O_NOFOLLOW both ways: a disk image swapped for a symlink is neither read nor written through */
    int in = host_files_open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0); /* a disk: opened before the sandbox */
    if (in < 0) {
        int r = -errno;
        snprintf(err, errlen, "disk copy: '%s': %s", src, strerror(-r));
        return r;
    }
    /* Not O_TRUNC: restoring writes over the image a running virtio-blk device has open, so
     * the copy goes into the same inode and is cut to size afterwards. */
    int out = host_files_open(dst, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0) {
        int r = -errno;
        snprintf(err, errlen, "disk copy: '%s': %s", dst, strerror(-r));
        close(in);
        return r;
    }
    struct stat st;
    int r = fstat(in, &st) < 0 ? -errno : 0;
    if (!r && ioctl(out, FICLONE, in) == 0) goto done; /* reflink: shares the blocks, copy-on-write */
    char *buf = r ? NULL : malloc(COPY_CHUNK);
    if (!r && !buf) r = -ENOMEM;
    /* Sparse copy: punch the destination empty, then copy only the data extents. */
    if (!r && ftruncate(out, 0) < 0) r = -errno;
    if (!r && ftruncate(out, st.st_size) < 0) r = -errno;
    off_t pos = 0;
    while (!r && pos < st.st_size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) break; /* only a hole is left */
            if (errno == EINVAL) { /* no SEEK_DATA here: plain copy */
                r = copy_range(in, out, pos, st.st_size, buf);
                break;
            }
            r = -errno;
            break;
        }
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0) hole = st.st_size;
        r = copy_range(in, out, data, hole, buf);
        pos = hole;
    }
    free(buf);
done:
    if (!r && fsync(out) < 0) r = -errno;
    if (r) snprintf(err, errlen, "disk copy '%s' -> '%s': %s", src, dst, strerror(-r));
    close(in);
    close(out);
    return r;
}

static void disk_file_name(char *buf, size_t len, const char *dir, unsigned i)
{
    snprintf(buf, len, "%s/disk%u.img", dir, i);
}

/* Undo a failed save: every file the save may have written. */
static void clean_dir(const struct vm_config *cfg, const char *dir)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/vm.snap", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/vm.snap.tmp", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/meta.json", dir);
    unlink(p);
    for (unsigned i = 0; i < cfg->ndisks; i++) {
        disk_file_name(p, sizeof(p), dir, i);
        unlink(p);
    }
}

int snapshot_dir_save(struct machine *m, const struct vm_config *cfg, const char *dir, const char *vm_state,
                         snap_progress_fn progress, void *opaque, json_t **meta, char *err, size_t errlen)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char path[4200];
    snprintf(path, sizeof(path), "%s/vm.snap", dir);
    int r = snapshot_save(m, path, progress, opaque, err, errlen);
    json_t *disks = json_array();
    for (unsigned i = 0; !r && i < cfg->ndisks; i++) {
        json_t *d = json_pack("{s:i, s:s, s:b}", "index", (int)i, "source", cfg->disks[i].path, "readonly",
                              cfg->disks[i].readonly);
        if (!cfg->disks[i].readonly) { /* a readonly disk cannot have changed: nothing to keep */
            char dst[4200];
            disk_file_name(dst, sizeof(dst), dir, i);
            r = snapshot_dir_copy_file(cfg->disks[i].path, dst, err, errlen);
            char *slash = strrchr(dst, '/');
            json_object_set_new(d, "file", json_string(slash ? slash + 1 : dst));
        }
        json_array_append_new(disks, d);
    }
    struct stat st;
    if (!r && stat(path, &st) < 0) r = -errno;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    json_t *j = NULL;
    if (!r) {
        j = json_pack("{s:I, s:s, s:I, s:i, s:s, s:I, s:I, s:f, s:o}", "created", (json_int_t)time(NULL), "backend",
                      m->backend->name, "memory_mib", (json_int_t)cfg->memory_mib, "vcpus", (int)cfg->cpus, "vm_state",
                      vm_state, "ram_bytes", (json_int_t)m->mem.size, "file_bytes", (json_int_t)st.st_size,
                      "save_seconds", secs, "disks", json_incref(disks));
        snprintf(path, sizeof(path), "%s/meta.json", dir);
        r = j ? vm_store_write_json(path, j) : -ENOMEM;
        if (r) snprintf(err, errlen, "snapshot: writing '%s': %s", path, strerror(-r));
    }
    json_decref(disks);
    if (r) {
        json_decref(j);
        clean_dir(cfg, dir);
        return r;
    }
    *meta = j;
    return 0;
}

int snapshot_dir_check(const struct vm_config *cfg, const char *backend, const char *dir, bool *uses_apic,
                          char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/meta.json", dir);
    json_t *meta = vm_store_read_json(path);
    if (!json_is_object(meta)) {
        json_decref(meta);
        snprintf(err, errlen, "snapshot '%s' is incomplete: no readable meta.json", dir);
        return -ENOENT;
    }
    int r = 0;
    json_int_t mib = json_integer_value(json_object_get(meta, "memory_mib"));
    json_int_t cpus = json_integer_value(json_object_get(meta, "vcpus"));
    json_t *disks = json_object_get(meta, "disks");
    if ((uint64_t)mib != cfg->memory_mib || (unsigned)cpus != cfg->cpus) {
        snprintf(err, errlen, "snapshot was taken with %lld MiB and %lld vCPU(s); this VM has %llu MiB and %u",
                 (long long)mib, (long long)cpus, (unsigned long long)cfg->memory_mib, cfg->cpus);
        r = -EINVAL;
    } else if (json_array_size(disks) != cfg->ndisks) {
        snprintf(err, errlen, "snapshot has %zu disk(s); this VM has %u", json_array_size(disks), cfg->ndisks);
        r = -EINVAL;
    }
    for (unsigned i = 0; !r && i < cfg->ndisks; i++) {
        if (cfg->disks[i].readonly) continue;
        disk_file_name(path, sizeof(path), dir, i);
        if (access(path, R_OK) < 0) {
            r = -errno;
            snprintf(err, errlen, "snapshot's copy of disk %u '%s': %s", i, path, strerror(-r));
        }
    }
    json_decref(meta);
    if (r) return r;
    snprintf(path, sizeof(path), "%s/vm.snap", dir);
    struct snap_file sf;
    r = snap_file_open(&sf, path, err, errlen); /* header and every section's CRC */
    if (r) return r;
    r = irqchip_snapshot_check(&sf, backend, uses_apic, err, errlen);
    snap_file_close(&sf);
    return r;
}

int snapshot_dir_restore_disks(const struct vm_config *cfg, const char *dir, char *err, size_t errlen)
{
    for (unsigned i = 0; i < cfg->ndisks; i++) {
        if (cfg->disks[i].readonly) continue;
        char src[4200];
        disk_file_name(src, sizeof(src), dir, i);
        int r = snapshot_dir_copy_file(src, cfg->disks[i].path, err, errlen);
        if (r) return r;
    }
    return 0;
}

int snapshot_dir_restore_machine(struct machine *m, const char *dir, snap_progress_fn progress, void *opaque,
                                    char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/vm.snap", dir);
    return snapshot_restore(m, path, progress, opaque, err, errlen);
}
