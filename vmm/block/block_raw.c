/* block_raw: the raw format: guest byte N is file byte N.
 *
 * Reads and writes go straight to the file with preadv/pwritev; a read past the end of a file
 * shorter than advertised (a block device that shrank) gives zeros. Flush is fdatasync, discard
 * punches holes, and a large write starts its own write-back at once (write-behind), so the
 * guest's next flush finds most of a streaming write already on its way to disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/block/block.h"
#include "vmm/log.h"

static int raw_open(struct block *b, const struct block_chain *self, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(b->fd, &st) < 0) {
        snprintf(err, errlen, "disk '%s': %s", b->path, strerror(errno));
        return -errno;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(b->fd, 0, SEEK_END);
        size = end > 0 ? (uint64_t)end : 0;
    }
    b->size = size;
    return 0;
}

static int raw_rw(struct block *b, bool write, uint64_t off, const struct iovec *iov_in, int iovcnt)
{
    struct iovec iov[IOV_MAX];
    if (iovcnt > IOV_MAX) return -EINVAL;
    memcpy(iov, iov_in, sizeof(iov[0]) * (size_t)iovcnt);
    int i = 0;
    while (i < iovcnt) {
        ssize_t r = write ? pwritev(b->fd, &iov[i], iovcnt - i, (off_t)off) : preadv(b->fd, &iov[i], iovcnt - i, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno; /* the device logs it */
        if (r == 0) {
            if (write) return -EIO;
            iov_zero(&iov[i], iovcnt - i); /* past the end of a file shorter than advertised */
            return 0;
        }
        off += (uint64_t)r;
        while (i < iovcnt && (size_t)r >= iov[i].iov_len) r -= (ssize_t)iov[i++].iov_len;
        if (i < iovcnt) {
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + r;
            iov[i].iov_len -= (size_t)r;
        }
    }
    return 0;
}

static int raw_readv(struct block *b, uint64_t off, const struct iovec *iov, int iovcnt)
{
    return raw_rw(b, false, off, iov, iovcnt);
}

static int raw_writev(struct block *b, uint64_t off, const struct iovec *iov, int iovcnt)
{
    return raw_rw(b, true, off, iov, iovcnt);
}

static int raw_flush(struct block *b)
{
    if (fdatasync(b->fd) < 0) {
        int e = errno;
        log_warn("disk '%s': flush: %s", b->path, strerror(e));
        return -e;
    }
    return 0;
}

static int raw_discard(struct block *b, uint64_t off, uint64_t len)
{
    if (fallocate(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0 && errno != EOPNOTSUPP)
        return -errno;
    return 0;
}

static void raw_write_behind(struct block *b, uint64_t off, uint64_t len)
{
    sync_file_range(b->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
}

static void raw_close(struct block *b)
{
    if (!b->readonly) fdatasync(b->fd);
}

const struct block_driver block_raw_driver = {
    .name = "raw",
    .open = raw_open,
    .readv = raw_readv,
    .writev = raw_writev,
    .flush = raw_flush,
    .discard = raw_discard,
    .write_behind = raw_write_behind,
    .close = raw_close,
};
