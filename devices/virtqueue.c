/* virtqueue: split-ring parsing with bounds and loop checks; see virtqueue.h. */
#include "devices/virtqueue.h"

#include <errno.h>
#include <linux/virtio_ring.h>
#include <string.h>

#include "vmm/log.h"

void virtq_reset(struct virtq *q, struct guest_mem *mem)
{
    memset(q, 0, sizeof(*q));
    q->mem = mem;
}

static int virtq_break(struct virtq *q, const char *why)
{
    if (!q->broken) log_warn("virtqueue: %s; queue stopped until the driver resets the device", why);
    q->broken = true;
    q->why_broken = why;
    return -EIO;
}

int virtq_enable(struct virtq *q)
{
    uint16_t n = q->size;
    if (n == 0 || n > VIRTQ_MAX_SIZE || (n & (n - 1))) return virtq_break(q, "queue size is not a power of two <= 256"), -EINVAL;
    if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
        return virtq_break(q, "misaligned ring address"), -EINVAL;
    q->desc = guest_mem_ptr(q->mem, q->desc_gpa, 16ull * n);
    q->avail = guest_mem_ptr(q->mem, q->avail_gpa, 6 + 2ull * n);
    q->used = guest_mem_ptr(q->mem, q->used_gpa, 6 + 8ull * n);
    if (!q->desc || !q->avail || !q->used) return virtq_break(q, "ring outside guest RAM"), -EINVAL;
    q->last_avail = 0;
    q->used_idx = 0;
    q->enabled = true;
    return 0;
}

static inline uint16_t load16_acquire(const void *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

int virtq_pop(struct virtq *q, struct virtq_elem *e)
{
    if (q->broken) return -EIO;
    if (!q->enabled) return 0;
    uint16_t avail_idx = load16_acquire(&q->avail->idx);
    uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
    if (pending == 0) return 0;
    if (pending > q->size) return virtq_break(q, "driver published more entries than the queue holds");

    uint16_t head = __atomic_load_n(&q->avail->ring[q->last_avail & (q->size - 1)], __ATOMIC_RELAXED);
    if (head >= q->size) return virtq_break(q, "avail ring names a descriptor beyond the table");
    e->head = head;
    e->nout = e->nin = 0;
    e->out_len = e->in_len = 0;

    /* The chain is walked in the ring's table or, after an indirect head, in the table that head
     * names (guest RAM, `limit` entries): `count` bounds it to that table's size either way. */
    const uint8_t *table = (const uint8_t *)q->desc;
    unsigned limit = q->size;
    uint16_t i = head;
    for (unsigned count = 0;; count++) {
        if (count >= limit) return virtq_break(q, "descriptor chain loops or exceeds the queue size");
        struct vring_desc d;
        memcpy(&d, table + 16u * i, sizeof(d)); /* one snapshot: the guest may change it meanwhile */
        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (!q->indirect) return virtq_break(q, "indirect descriptor (not negotiated)");
            if (table != (const uint8_t *)q->desc || count != 0)
                return virtq_break(q, "indirect descriptor not at the head of a chain");
            if (d.flags & VRING_DESC_F_NEXT) return virtq_break(q, "indirect descriptor with NEXT set");
            if (d.len == 0 || d.len % 16 || d.len / 16 > VIRTQ_MAX_SIZE)
                return virtq_break(q, "indirect table size is not 1..256 descriptors");
            table = guest_mem_ptr(q->mem, d.addr, d.len);
            if (!table) return virtq_break(q, "indirect table outside guest RAM");
            limit = d.len / 16;
            i = 0;
            count = (unsigned)-1; /* the table's first entry is count 0 */
            continue;
        }
        bool writable = d.flags & VRING_DESC_F_WRITE;
        if (d.len > 0) {
            void *p = guest_mem_ptr(q->mem, d.addr, d.len);
            if (!p) return virtq_break(q, "descriptor buffer outside guest RAM");
            if (writable) {
                e->in[e->nin++] = (struct iovec){p, d.len};
                e->in_len += d.len;
            } else {
                if (e->nin) return virtq_break(q, "readable descriptor after a writable one");
                e->out[e->nout++] = (struct iovec){p, d.len};
                e->out_len += d.len;
            }
            if (e->out_len + e->in_len > VIRTQ_MAX_CHAIN_BYTES) return virtq_break(q, "descriptor chain too large");
        }
        if (!(d.flags & VRING_DESC_F_NEXT)) break;
        if (d.next >= limit) return virtq_break(q, "descriptor next index beyond the table");
        i = d.next;
    }
    q->last_avail++;
    return 1;
}

void virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t written)
{
    if (!q->enabled || q->broken) return;
    /* Before the driver can see the completion, invalidate any decoded code the data replaced. */
    uint64_t left = written;
    for (unsigned i = 0; i < e->nin && left > 0; i++) {
        uint64_t n = e->in[i].iov_len < left ? e->in[i].iov_len : left;
        guest_mem_dma_written(q->mem, e->in[i].iov_base, n);
        left -= n;
    }
    struct vring_used_elem *ue = &q->used->ring[q->used_idx & (q->size - 1)];
    ue->id = e->head;
    ue->len = written;
    q->used_idx++;
    __atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
}

bool virtq_needs_interrupt(const struct virtq *q)
{
    if (!q->enabled) return false;
    return !(load16_acquire(&q->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
}

/* Copy between an iovec array (from byte `skip` on) and a flat buffer, in either direction. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t skip, uint8_t *buf, size_t len, bool to_iov)
{
    size_t done = 0;
    for (unsigned i = 0; i < n && done < len; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        size_t c = iov[i].iov_len - skip;
        if (c > len - done) c = len - done;
        uint8_t *seg = (uint8_t *)iov[i].iov_base + skip;
        if (to_iov) memcpy(seg, buf + done, c);
        else memcpy(buf + done, seg, c);
        done += c;
        skip = 0;
    }
    return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
    return iov_copy(iov, n, skip, buf, len, false);
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len)
{
    return iov_copy(iov, n, skip, (uint8_t *)buf, len, true);
}
