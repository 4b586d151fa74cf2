/* virtio_blk: block device (virtio ID 2) on a disk image, one per --disk, and one more, read-only,
 * for the cloud-init seed when the VM has one (serial vmd-cidata).
 *
 * Requests are served on a per-disk I/O thread, never on the vCPU thread: the queue-notify
 * callback only wakes that thread. Reads and writes go to the image through the block layer
 * (vmm/block/: raw or qcow2, as the VM was defined) straight into guest RAM; FLUSH reaches the
 * disk (fdatasync), so a write the guest flushed is on disk; DISCARD is passed on (raw punches
 * holes). Read-only disks advertise VIRTIO_BLK_F_RO and refuse writes. The block layer locks the
 * image (flock) so two VMs cannot write one file.
 */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/host_files.h"
#include "devices/virtio_blk.h"
#include "devices/virtio_pci.h"
#include "vmm/block/block.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/vm_config.h"

#define BLK_SECTOR 512
#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2)
#define BLK_MAX_DISCARD_SECTORS (1u << 22)
/* Writes at least this large start the host's write-back of their range at once (write-behind,
 * where the format has it), so the guest's FLUSH finds most of a streaming write on its way. */
#define BLK_WRITE_BEHIND_MIN (64u << 10)

struct virtio_blk {
    struct virtio_dev vdev;
    struct machine *m;
    unsigned index; /* in the config: where its I/O is counted (m->io_stats) */
    char *path;
    struct block *bdev;
    bool readonly;
    uint64_t sectors;
    char serial[VIRTIO_BLK_ID_BYTES];

    pthread_t thread;
    pthread_mutex_t lock; /* guards kick/stop/reset_gen hand-off with the I/O thread */
    pthread_cond_t cond;
    bool kick, stop, thread_started;
    unsigned reset_gen;    /* bumped on device reset: chains popped before it are not pushed */
    struct virtq_elem elem;
    uint64_t write_behind_off, write_behind_len; /* set by blk_execute for a large write, else len 0 */
};

static uint8_t blk_execute(struct virtio_blk *b, const struct virtq_elem *e, uint32_t *written)
{
    struct virtio_blk_outhdr hdr;
    *written = 0;
    if (e->nin == 0 || iov_to_buf(e->out, e->nout, 0, &hdr, sizeof(hdr)) != sizeof(hdr)) return VIRTIO_BLK_S_IOERR;
    /* Data: the readable bytes after the header, or the writable bytes before the status byte. */
    struct iovec data[VIRTQ_MAX_SIZE];
    unsigned n = 0;
    uint64_t len = 0;
    if (hdr.type == VIRTIO_BLK_T_OUT || hdr.type == VIRTIO_BLK_T_DISCARD) {
        size_t skip = sizeof(hdr);
        for (unsigned i = 0; i < e->nout; i++) {
            if (skip >= e->out[i].iov_len) {
                skip -= e->out[i].iov_len;
                continue;
            }
            data[n++] = (struct iovec){(uint8_t *)e->out[i].iov_base + skip, e->out[i].iov_len - skip};
            len += e->out[i].iov_len - skip;
            skip = 0;
        }
    } else {
        for (unsigned i = 0; i < e->nin; i++) {
            data[n] = e->in[i];
            if (i == e->nin - 1) data[n].iov_len--; /* the status byte */
            len += data[n].iov_len;
            if (data[n].iov_len) n++;
        }
    }
    uint64_t off = hdr.sector * BLK_SECTOR;
    bool in_range = hdr.sector <= b->sectors && len <= (b->sectors - hdr.sector) * BLK_SECTOR;

    switch (hdr.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
        if (!in_range || (len % BLK_SECTOR)) return VIRTIO_BLK_S_IOERR;
        if (hdr.type == VIRTIO_BLK_T_OUT && b->readonly) return VIRTIO_BLK_S_IOERR;
        b->write_behind_off = off;
        int r = hdr.type == VIRTIO_BLK_T_IN ? block_readv(b->bdev, off, data, (int)n)
                                            : block_writev(b->bdev, off, data, (int)n);
        if (r < 0) {
            log_warn("disk '%s': %s at sector %llu: %s", b->path, hdr.type ? "write" : "read",
                     (unsigned long long)hdr.sector, strerror(-r));
            return VIRTIO_BLK_S_IOERR;
        }
        if (hdr.type == VIRTIO_BLK_T_IN) *written = (uint32_t)len;
        else if (len >= BLK_WRITE_BEHIND_MIN) b->write_behind_len = len;
        struct machine_io_stats *st = &b->m->io_stats;
        machine_count(hdr.type == VIRTIO_BLK_T_IN ? &st->disk_read_bytes[b->index] : &st->disk_write_bytes[b->index], len);
        machine_count(hdr.type == VIRTIO_BLK_T_IN ? &st->disk_read_ops[b->index] : &st->disk_write_ops[b->index], 1);
        return VIRTIO_BLK_S_OK;
    }
    case VIRTIO_BLK_T_FLUSH:
        if (block_flush(b->bdev) < 0) return VIRTIO_BLK_S_IOERR; /* the driver logged why */
        machine_count(&b->m->io_stats.disk_flush_ops[b->index], 1);
        return VIRTIO_BLK_S_OK;
    case VIRTIO_BLK_T_GET_ID: {
        size_t l = len < VIRTIO_BLK_ID_BYTES ? len : VIRTIO_BLK_ID_BYTES;
        *written = (uint32_t)iov_from_buf(data, n, 0, b->serial, l);
        return VIRTIO_BLK_S_OK;
    }
    case VIRTIO_BLK_T_DISCARD: {
        if (b->readonly) return VIRTIO_BLK_S_IOERR;
        struct virtio_blk_discard_write_zeroes seg;
        for (size_t at = 0; at + sizeof(seg) <= len; at += sizeof(seg)) {
            iov_to_buf(data, n, at, &seg, sizeof(seg));
            if (seg.flags || seg.num_sectors > BLK_MAX_DISCARD_SECTORS || seg.sector > b->sectors ||
                seg.num_sectors > b->sectors - seg.sector)
                return VIRTIO_BLK_S_IOERR;
            if (block_discard(b->bdev, seg.sector * BLK_SECTOR, (uint64_t)seg.num_sectors * BLK_SECTOR) < 0)
                return VIRTIO_BLK_S_IOERR;
        }
        return VIRTIO_BLK_S_OK;
    }
    default:
        return VIRTIO_BLK_S_UNSUPP;
    }
}

static void *blk_io_thread(void *arg)
{
    struct virtio_blk *b = arg;
    struct machine *m = b->m;
    struct virtq *q = &b->vdev.vq[0];
    for (;;) {
        pthread_mutex_lock(&b->lock);
        while (!b->kick && !b->stop) pthread_cond_wait(&b->cond, &b->lock);
        bool stop = b->stop;
        b->kick = false;
        pthread_mutex_unlock(&b->lock);
        if (stop) return NULL;
        for (;;) {
            pthread_mutex_lock(&m->dev_lock);
            unsigned gen = b->reset_gen;
            int got = virtio_driver_ok(&b->vdev) ? virtq_pop(q, &b->elem) : 0;
            if (got < 0) virtio_set_needs_reset(&b->vdev);
            pthread_mutex_unlock(&m->dev_lock);
            if (got <= 0) break;
            uint32_t written;
            b->write_behind_len = 0;
            uint8_t status = blk_execute(b, &b->elem, &written);
            /* The status byte is the last writable byte of the chain. */
            const struct iovec *last = &b->elem.in[b->elem.nin - 1];
            ((uint8_t *)last->iov_base)[last->iov_len - 1] = status;
            pthread_mutex_lock(&m->dev_lock);
            if (gen == b->reset_gen) {
                virtq_push(q, &b->elem, written + 1);
                virtio_notify_queue(&b->vdev, 0);
            }
            pthread_mutex_unlock(&m->dev_lock);
            /* After the completion, off the guest's path: only starts the write-out, waits for none. */
            if (b->write_behind_len) block_write_behind(b->bdev, b->write_behind_off, b->write_behind_len);
        }
    }
}

static void blk_queue_notify(struct virtio_dev *d, unsigned qi)
{
    struct virtio_blk *b = d->opaque;
    pthread_mutex_lock(&b->lock);
    b->kick = true;
    pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void blk_reset(struct virtio_dev *d)
{
    struct virtio_blk *b = d->opaque;
    if (b) b->reset_gen++;
}

/* Before a snapshot copies the image: a state another reader may copy (qcow2 gives back the
 * clusters it counted ahead). After a snapshot's copy was written over the image: read it afresh. */
static void blk_before_save(struct virtio_dev *d)
{
    struct virtio_blk *b = d->opaque;
    int r = block_quiesce(b->bdev);
    if (r) log_warn("disk '%s': before the snapshot: %s", b->path, strerror(-r));
}

static int blk_after_restore(struct virtio_dev *d, char *err, size_t errlen)
{
    struct virtio_blk *b = d->opaque;
    int r = block_reload(b->bdev, err, errlen);
    if (!r && block_size(b->bdev) / BLK_SECTOR != b->sectors) {
        snprintf(err, errlen, "disk '%s': the restored image has another size", b->path);
        r = -EINVAL;
    }
    return r;
}

static void blk_release(struct virtio_dev *d)
{
    struct virtio_blk *b = d->opaque;
    if (b->thread_started) {
        pthread_mutex_lock(&b->lock);
        b->stop = true;
        pthread_cond_signal(&b->cond);
        pthread_mutex_unlock(&b->lock);
        /* The I/O thread takes dev_lock; the machine is being torn down without it held. */
        pthread_join(b->thread, NULL);
    }
    block_close(b->bdev);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
    free(b->path);
    free(b);
}

static void blk_config_fill(struct virtio_blk *b)
{
    struct virtio_blk_config c;
    memset(&c, 0, sizeof(c));
    c.capacity = b->sectors;
    c.seg_max = BLK_SEG_MAX;
    c.blk_size = BLK_SECTOR;
    c.max_discard_sectors = BLK_MAX_DISCARD_SECTORS;
    c.max_discard_seg = 1;
    c.discard_sector_alignment = 8; /* 4 KiB, in sectors */
    memcpy(b->vdev.config, &c, sizeof(c));
}

/* Read-only disks offer F_RO instead of F_DISCARD (see virtio_blk_create). */
static const struct virtio_ops blk_ops = {
    .name = "virtio-blk",
    .device_id = VIRTIO_ID_BLOCK,
    .pci_class = 0x010000, /* mass storage, SCSI (what Linux expects for virtio-blk) */
    .features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |
                (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC),
    .num_queues = 1,
    .queue_max = BLK_QUEUE_SIZE,
    .config_size = sizeof(struct virtio_blk_config),
    .queue_notify = blk_queue_notify,
    .reset = blk_reset,
    .before_save = blk_before_save,
    .after_restore = blk_after_restore,
    .release = blk_release,
};

int virtio_blk_create(struct machine *m, const struct vm_disk *disk, unsigned index, char *err, size_t errlen)
{
    struct block *bdev;
    /* The format the definition fixed; UNSET (a definition from before formats) is raw. */
    enum block_format fmt = disk->format == DISK_FORMAT_QCOW2 ? BLOCK_FORMAT_QCOW2 : BLOCK_FORMAT_RAW;
    int r = block_open(&bdev, disk->path, fmt, disk->readonly ? BLOCK_RDONLY : 0, err, errlen);
    if (r) return r;
    struct virtio_blk *b = calloc(1, sizeof(*b));
    if (!b || !(b->path = strdup(disk->path))) {
        free(b);
        block_close(bdev);
        return -ENOMEM;
    }
    b->m = m;
    b->index = index <= VM_SEED_DISK_INDEX ? index : VM_SEED_DISK_INDEX;
    b->bdev = bdev;
    b->readonly = disk->readonly;
    b->sectors = block_size(bdev) / BLK_SECTOR;
    if (index == VM_SEED_DISK_INDEX) snprintf(b->serial, sizeof(b->serial), "vmd-cidata");
    else snprintf(b->serial, sizeof(b->serial), "vmd-disk%u", index);
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    r = virtio_pci_register(m, &b->vdev, &blk_ops, b, err, errlen);
    if (r) {
        b->vdev.opaque = b;
        blk_release(&b->vdev);
        return r;
    }
    if (disk->readonly) b->vdev.features = (b->vdev.features & ~(1ULL << VIRTIO_BLK_F_DISCARD)) | (1ULL << VIRTIO_BLK_F_RO);
    blk_config_fill(b);
    r = pthread_create(&b->thread, NULL, blk_io_thread, b);
    if (r) {
        snprintf(err, errlen, "disk '%s': I/O thread: %s", disk->path, strerror(r));
        return -r; /* the bus frees b on teardown */
    }
    b->thread_started = true;
    log_debug("disk '%s': %llu sectors%s", disk->path, (unsigned long long)b->sectors, disk->readonly ? ", read-only" : "");
    return 0;
}

static int blk_init(struct machine *m, char *err, size_t errlen)
{
    for (unsigned i = 0; i < m->cfg->ndisks; i++) {
        int r = virtio_blk_create(m, &m->cfg->disks[i], i, err, errlen);
        if (r) return r;
    }
    if (m->cfg->cloud_init_seed) { /* after the VM's own disks, so their names in the guest stay put */
        struct vm_disk seed = {.path = m->cfg->cloud_init_seed, .readonly = true, .format = DISK_FORMAT_RAW};
        return virtio_blk_create(m, &seed, VM_SEED_DISK_INDEX, err, errlen);
    }
    return 0;
}

static const struct device_desc virtio_blk_desc = {.name = "virtio-blk", .level = DEVICE_LEVEL_DEVICE, .init = blk_init};
DEVICE_REGISTER(virtio_blk_desc)
