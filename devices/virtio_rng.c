/* virtio_rng: entropy device (virtio ID 4) filled from the host's getrandom(). Always present. */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <stdlib.h>
#include <sys/random.h>

#include "devices/virtio_pci.h"
#include "vmm/device.h"
#include "vmm/machine.h"

struct virtio_rng {
    struct virtio_dev vdev;
    struct virtq_elem elem;
};

static void rng_queue_notify(struct virtio_dev *d, unsigned qi)
{
    struct virtio_rng *r = d->opaque;
    struct virtq *q = &d->vq[qi];
    int got, pushed = 0;
    while ((got = virtq_pop(q, &r->elem)) == 1) {
        uint32_t written = 0;
        for (unsigned i = 0; i < r->elem.nin; i++) {
            size_t want = r->elem.in[i].iov_len;
            ssize_t n = getrandom(r->elem.in[i].iov_base, want, GRND_NONBLOCK);
            if (n <= 0) break;
            written += (uint32_t)n;
            if ((size_t)n < want) break;
        }
        virtq_push(q, &r->elem, written);
        pushed++;
    }
    if (got < 0) virtio_set_needs_reset(d);
    if (pushed) virtio_notify_queue(d, qi);
}

static void rng_release(struct virtio_dev *d);
static const struct virtio_ops rng_ops = {
    .name = "virtio-rng",
    .device_id = VIRTIO_ID_RNG,
    .pci_class = 0xff0000, /* unclassified */
    .num_queues = 1,
    .queue_max = 64,
    .queue_notify = rng_queue_notify,
    .release = rng_release,
};

static void rng_release(struct virtio_dev *d) { free(d->opaque); }

static int rng_init(struct machine *m, char *err, size_t errlen)
{
    struct virtio_rng *r = calloc(1, sizeof(*r));
    if (!r) return -ENOMEM;
    int ret = virtio_pci_register(m, &r->vdev, &rng_ops, r, err, errlen);
    if (ret) {
        free(r);
        return ret;
    }
    return 0;
}

static const struct device_desc virtio_rng_desc = {
    .name = "virtio-rng", .level = DEVICE_LEVEL_DEVICE, .init = rng_init};
DEVICE_REGISTER(virtio_rng_desc)
