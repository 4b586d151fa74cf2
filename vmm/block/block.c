/* block: opening an image in its format, the serialized entry points, probing (see block.h). */
#include "vmm/block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/block/qcow2.h"
#include "vmm/host_files.h"


const char *block_format_name(enum block_format f)
{
    return f == BLOCK_FORMAT_QCOW2 ? "qcow2" : "raw";
}

int block_format_parse(const char *name, enum block_format *f)
{
    if (!strcmp(name, "raw")) *f = BLOCK_FORMAT_RAW;
    else if (!strcmp(name, "qcow2")) *f = BLOCK_FORMAT_QCOW2;
    else return -EINVAL;
    return 0;
}

size_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t t = 0;
    for (int i = 0; i < iovcnt; i++) t += iov[i].iov_len;
    return t;
}

int iov_slice(const struct iovec *iov, int iovcnt, size_t skip, size_t len, struct iovec *out, int max)
{
    int n = 0;
    for (int i = 0; i < iovcnt && len && n < max; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t l = iov[i].iov_len - skip;
        if (l > len) l = len;
        out[n++] = (struct iovec){(uint8_t *)iov[i].iov_base + skip, l};
        len -= l;
        skip = 0;
    }
    return n;
}

void iov_zero(const struct iovec *iov, int iovcnt)
{
    for (int i = 0; i < iovcnt; i++) memset(iov[i].iov_base, 0, iov[i].iov_len);
}

static const struct block_driver *driver_for(enum block_format fmt)
{
    return fmt == BLOCK_FORMAT_QCOW2 ? &block_qcow2_driver : &block_raw_driver;
}

int block_open_backing(struct block **out, const char *path, enum block_format fmt, unsigned flags,
                       const struct block_chain *up, char *err, size_t errlen)
{
    *out = NULL;
    bool readonly = flags & BLOCK_RDONLY;
    /* O_NOFOLLOW: the path is resolved by vmd (or vmctl run); a symlink swapped in is not followed */
    /* through host_files: a sandboxed worker opened its disks and their backing chains before it
     * was confined (vmm/sandbox.c) */
    int fd = host_files_open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "disk '%s': %s", path,
                 e == ELOOP ? "is a symbolic link (image paths are opened without following links)" : strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))) {
        snprintf(err, errlen, "disk '%s': not a regular file or block device", path);
        close(fd);
        return -EINVAL;
    }
    struct block_chain self = {(unsigned long long)st.st_dev, (unsigned long long)st.st_ino, up ? up->depth + 1 : 0, up};
    for (const struct block_chain *c = up; c; c = c->up) {
        if (c->dev == self.dev && c->ino == self.ino) {
            snprintf(err, errlen, "disk '%s': the backing chain loops back to an image above it", path);
            close(fd);
            return -ELOOP;
        }
    }
    if (self.depth >= BLOCK_MAX_CHAIN) {
        snprintf(err, errlen, "disk '%s': backing chain deeper than %d images", path, BLOCK_MAX_CHAIN);
        close(fd);
        return -ELOOP;
    }
    if (!(flags & BLOCK_NOLOCK) && flock(fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
        snprintf(err, errlen, "disk '%s': in use by another process (%s)", path, strerror(errno));
        close(fd);
        return -EBUSY;
    }
    const struct block_driver *drv = driver_for(fmt);
    struct block *b = calloc(1, sizeof(*b));
    if (!b || !(b->path = strdup(path))) {
        free(b);
        close(fd);
        snprintf(err, errlen, "disk '%s': out of memory", path);
        return -ENOMEM;
    }
    b->drv = drv;
    b->fd = fd;
    b->readonly = readonly;
    b->flags = flags;
    pthread_mutex_init(&b->lock, NULL);
    int r = b->drv->open(b, &self, err, errlen);
    if (r) {
        pthread_mutex_destroy(&b->lock);
        close(fd);
        free(b->path);
        free(b);
        return r;
    }
    *out = b;
    return 0;
}

int block_open(struct block **out, const char *path, enum block_format fmt, unsigned flags, char *err, size_t errlen)
{
    return block_open_backing(out, path, fmt, flags, NULL, err, errlen);
}

int block_readv(struct block *b, uint64_t off, const struct iovec *iov, int iovcnt)
{
    size_t len = iov_total(iov, iovcnt);
    if (off > b->size || len > b->size - off) return -EIO;
    pthread_mutex_lock(&b->lock);
    int r = b->drv->readv(b, off, iov, iovcnt);
    pthread_mutex_unlock(&b->lock);
    return r;
}

int block_writev(struct block *b, uint64_t off, const struct iovec *iov, int iovcnt)
{
    size_t len = iov_total(iov, iovcnt);
    if (b->readonly) return -EROFS;
    if (off > b->size || len > b->size - off) return -EIO;
    pthread_mutex_lock(&b->lock);
    int r = b->drv->writev(b, off, iov, iovcnt);
    pthread_mutex_unlock(&b->lock);
    return r;
}

int block_read(struct block *b, uint64_t off, void *buf, size_t len)
{
    struct iovec v = {buf, len};
    return block_readv(b, off, &v, 1);
}

int block_write(struct block *b, uint64_t off, const void *buf, size_t len)
{
    struct iovec v = {(void *)buf, len};
    return block_writev(b, off, &v, 1);
}

int block_flush(struct block *b)
{
    pthread_mutex_lock(&b->lock);
    int r = b->drv->flush(b);
    pthread_mutex_unlock(&b->lock);
    return r;
}

int block_discard(struct block *b, uint64_t off, uint64_t len)
{
    if (b->readonly) return -EROFS;
    if (off > b->size || len > b->size - off) return -EIO;
    if (!b->drv->discard) return 0;
    pthread_mutex_lock(&b->lock);
    int r = b->drv->discard(b, off, len);
    pthread_mutex_unlock(&b->lock);
    return r;
}

void block_write_behind(struct block *b, uint64_t off, uint64_t len)
{
    if (b->drv->write_behind) b->drv->write_behind(b, off, len);
}

int block_quiesce(struct block *b)
{
    if (!b->drv->quiesce) return 0;
    pthread_mutex_lock(&b->lock);
    int r = b->drv->quiesce(b);
    pthread_mutex_unlock(&b->lock);
    return r;
}

int block_reload(struct block *b, char *err, size_t errlen)
{
    if (!b->drv->reload) return 0;
    pthread_mutex_lock(&b->lock);
    int r = b->drv->reload(b, err, errlen);
    pthread_mutex_unlock(&b->lock);
    return r;
}

uint64_t block_size(const struct block *b) { return b->size; }

void block_close(struct block *b)
{
    if (!b) return;
    b->drv->close(b);
    if (b->fd >= 0) close(b->fd);
    pthread_mutex_destroy(&b->lock);
    free(b->path);
    free(b);
}

int block_probe(const char *path, enum block_format *fmt, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "disk '%s': %s", path, strerror(e));
        return -e;
    }
    uint8_t magic[4];
    ssize_t n = pread(fd, magic, sizeof(magic), 0);
    close(fd);
    *fmt = n == 4 && qcow2_magic_ok(magic) ? BLOCK_FORMAT_QCOW2 : BLOCK_FORMAT_RAW;
    return 0;
}

void block_chain_free(char **paths, unsigned n)
{
    for (unsigned i = 0; i < n; i++) free(paths[i]);
    free(paths);
}

int block_backing_chain(const char *path, enum block_format fmt, char ***paths, unsigned *n, char *err, size_t errlen)
{
    *paths = NULL;
    *n = 0;
    if (fmt != BLOCK_FORMAT_QCOW2) return 0;
    struct block *b;
    int r = block_open(&b, path, fmt, BLOCK_RDONLY | BLOCK_NOLOCK, err, errlen); /* opens (and checks) the whole chain */
    if (r) return r;
    r = qcow2_chain_paths(b, paths, n);
    block_close(b);
    if (r) snprintf(err, errlen, "disk '%s': %s", path, strerror(-r));
    return r;
}
