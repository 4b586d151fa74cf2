/* block: the disk image a virtio-blk device reads and writes, behind one interface.
 *
 * A `struct block` is an open image of a fixed format (raw or qcow2, chosen when the VM was
 * defined, never probed here): the device asks for guest-visible bytes at guest-visible offsets
 * and the format driver (block_raw.c, qcow2.c) maps them onto the file. Every call is serialized
 * by the block's own lock, so a driver keeps its metadata caches without locking of its own.
 * Errors are negative errno values; messages that name the image and the reason are logged by
 * the driver (for I/O) or written to err (for open).
 */
#ifndef VMD_VMM_BLOCK_BLOCK_H
#define VMD_VMM_BLOCK_BLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum block_format { BLOCK_FORMAT_RAW, BLOCK_FORMAT_QCOW2 };

/* Backing chains longer than this are refused (as a loop would be). */
#define BLOCK_MAX_CHAIN 16

struct block;

/* The images above one being opened in a backing chain (its overlays), to refuse loops. */
struct block_chain {
    unsigned long long dev, ino;
    unsigned depth; /* 0: the VM's disk itself */
    const struct block_chain *up;
};

struct block_driver {
    const char *name;
    /* Open the image already opened (and locked) as b->fd. Fills b->size; may set b->opaque.
     * `self` is this image's place in its chain; backing files are opened with
     * block_open_backing(..., self, ...). */
    int (*open)(struct block *b, const struct block_chain *self, char *err, size_t errlen);
    /* Guest bytes [off, off + total of iov) — the caller checked the range against b->size. */
    int (*readv)(struct block *b, uint64_t off, const struct iovec *iov, int iovcnt);
    int (*writev)(struct block *b, uint64_t off, const struct iovec *iov, int iovcnt);
    int (*flush)(struct block *b);
    /* Optional: the guest no longer needs [off, off+len) (advisory). */
    int (*discard)(struct block *b, uint64_t off, uint64_t len);
    /* Optional: start the write-out of what was just written (no waiting). */
    void (*write_behind)(struct block *b, uint64_t off, uint64_t len);
    /* Optional: put the file in the state another reader may copy (e.g. give back clusters
     * reserved ahead), and drop / re-read any cached metadata after the file was replaced
     * under us (a snapshot restored over it). */
    int (*quiesce)(struct block *b);
    int (*reload)(struct block *b, char *err, size_t errlen);
    void (*close)(struct block *b);
};

struct block {
    const struct block_driver *drv;
    char *path;
    int fd;
    bool readonly;
    unsigned flags; /* BLOCK_* as opened */
    uint64_t size; /* guest-visible bytes */
    void *opaque;  /* the driver's state */
    pthread_mutex_t lock;
};

const char *block_format_name(enum block_format f);
/* "raw" / "qcow2" -> format; -EINVAL for anything else. */
int block_format_parse(const char *name, enum block_format *f);

/* Open `path` (without following a symlink in its last component) as `fmt`. A read-only image
 * is locked shared, a writable one exclusively, so two VMs cannot write one file. */
#define BLOCK_RDONLY 1u
#define BLOCK_NOLOCK 2u /* inspection only (the daemon listing a chain): takes no flock */
int block_open(struct block **out, const char *path, enum block_format fmt, unsigned flags, char *err, size_t errlen);
/* A backing file of the image at `up`: refused when it is one of the images above it (a loop)
 * or would be deeper than BLOCK_MAX_CHAIN. */
int block_open_backing(struct block **out, const char *path, enum block_format fmt, unsigned flags,
                       const struct block_chain *up, char *err, size_t errlen);
int block_readv(struct block *b, uint64_t off, const struct iovec *iov, int iovcnt);
int block_writev(struct block *b, uint64_t off, const struct iovec *iov, int iovcnt);
int block_read(struct block *b, uint64_t off, void *buf, size_t len);
int block_write(struct block *b, uint64_t off, const void *buf, size_t len);
int block_flush(struct block *b);
int block_discard(struct block *b, uint64_t off, uint64_t len);
void block_write_behind(struct block *b, uint64_t off, uint64_t len);
int block_quiesce(struct block *b);
int block_reload(struct block *b, char *err, size_t errlen);
uint64_t block_size(const struct block *b);
void block_close(struct block *b);

/* What the first bytes of the file say it is (for vm.create and `vmctl run` when no format was
 * given; never used to open a defined VM's disk). 0 or -errno with err. */
int block_probe(const char *path, enum block_format *fmt, char *err, size_t errlen);

/* The backing chain of an image, for the image path policy: each backing file's path as the
 * worker will open it (relative names resolved against the overlay's directory), top first,
 * without the image itself. *paths is a malloc'd array of malloc'd strings. 0 or -errno + err. */
int block_backing_chain(const char *path, enum block_format fmt, char ***paths, unsigned *n, char *err, size_t errlen);
void block_chain_free(char **paths, unsigned n);

/* iovec helpers for drivers. */
size_t iov_total(const struct iovec *iov, int iovcnt);
/* The part [skip, skip + len) of iov as at most `max` entries in out; returns the count. */
int iov_slice(const struct iovec *iov, int iovcnt, size_t skip, size_t len, struct iovec *out, int max);
void iov_zero(const struct iovec *iov, int iovcnt);

extern const struct block_driver block_raw_driver;
extern const struct block_driver block_qcow2_driver;

#endif
