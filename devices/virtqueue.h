/* virtqueue: the device side of a virtio 1.x split virtqueue.
 *
 * Every guest-supplied value is checked: ring addresses when the queue is enabled, and on each
 * pop the head index, every descriptor's index, address and length (against guest RAM), chain
 * length (loops), and the readable-before-writable rule. Indirect tables (when negotiated) only at
 * the head of a chain, never nested, at most 256 entries, inside guest RAM, under the same checks. A violation marks the queue broken
 * (the transport then sets DEVICE_NEEDS_RESET); the host never reads outside guest RAM.
 */
#ifndef VMD_DEVICES_VIRTQUEUE_H
#define VMD_DEVICES_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/guest_mem.h"

#define VIRTQ_MAX_SIZE 256
#define VIRTQ_MAX_CHAIN_BYTES (64u << 20) /* sanity bound on one request */

struct vring_desc;
struct vring_avail;
struct vring_used;

struct virtq {
    /* Programmed by the driver through the transport */
    uint16_t size;
    uint64_t desc_gpa, avail_gpa, used_gpa;
    bool enabled;
    bool indirect;             /* VIRTIO_RING_F_INDIRECT_DESC negotiated: a chain's head may name a table */
    /* Device side */
    struct guest_mem *mem;
    struct vring_desc *desc;   /* host pointers, valid while enabled */
    struct vring_avail *avail;
    struct vring_used *used;
    uint16_t last_avail;       /* next avail entry to consume */
    uint16_t used_idx;         /* next used entry to fill */
    bool broken;
    const char *why_broken;
};

/* One request: the readable segments (driver -> device) then the writable ones. */
struct virtq_elem {
    uint16_t head;
    unsigned nout, nin;
    struct iovec out[VIRTQ_MAX_SIZE];
    struct iovec in[VIRTQ_MAX_SIZE];
    uint64_t out_len, in_len;
};

void virtq_reset(struct virtq *q, struct guest_mem *mem);
/* Validate the programmed ring addresses and size and map them. 0, or -EINVAL (queue broken). */
int virtq_enable(struct virtq *q);
/* Take the next available chain. Returns 1 with *e filled, 0 if none is pending, -EIO if the
 * queue is (or just became) broken. */
int virtq_pop(struct virtq *q, struct virtq_elem *e);
/* Return a chain to the driver with `written` bytes written into its writable segments (which
 * are reported to the CPU backend as DMA writes first: see guest_mem.dma_written). */
void virtq_push(struct virtq *q, const struct virtq_elem *e, uint32_t written);
/* Whether the driver wants an interrupt now (it has not set VRING_AVAIL_F_NO_INTERRUPT). */
bool virtq_needs_interrupt(const struct virtq *q);

/* Copy helpers over an element's segments. Return bytes copied. */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf, size_t len);

#endif
