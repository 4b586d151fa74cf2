/* virtio_net: network device (virtio ID 1), one per --net, backed by slirp or a tap device.
 *
 * Each NIC has a network thread that owns its backend: it polls the backend's descriptors and
 * an eventfd the vCPU kicks on queue notifies, moves guest TX chains to the backend and host
 * frames into guest RX buffers. Virtqueue state is touched under the machine's device lock.
 * The MAC address is stable per VM: 02:76:6d (locally administered, "vm") + a hash of the VM
 * name and NIC index.
 */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_net.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/virtio_net.h"
#include "devices/virtio_pci.h"
#include "net/net.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/machine.h"

#define NET_QUEUE_SIZE 256
#define RXQ 0
#define TXQ 1
#define NET_MAX_POLLFDS 64

struct virtio_net {
    struct virtio_dev vdev;
    struct machine *m;
    struct net_backend *nb;
    int kick_fd;
    pthread_t thread;
    bool thread_started;
    _Atomic bool stop;
    uint8_t mac[6];
    unsigned reset_gen;
    uint64_t rx_dropped;
    unsigned index; /* in the config: where its traffic is counted (m->io_stats) */
    struct virtq_elem txelem, rxelem;
};

/* Host -> guest, on the network thread. */
static void net_rx(void *opaque, const uint8_t *frame, size_t len)
{
    struct virtio_net *n = opaque;
    struct machine *m = n->m;
    struct virtio_net_hdr_v1 hdr = {.num_buffers = 1};
    pthread_mutex_lock(&m->dev_lock);
    int got = virtio_driver_ok(&n->vdev) ? virtq_pop(&n->vdev.vq[RXQ], &n->rxelem) : 0;
    if (got < 0) virtio_set_needs_reset(&n->vdev);
    if (got <= 0) {
        n->rx_dropped++; /* no buffer posted: drop, as a full NIC ring would */
        machine_count(&m->io_stats.net_rx_dropped[n->index], 1);
        pthread_mutex_unlock(&m->dev_lock);
        return;
    }
    const struct virtq_elem *e = &n->rxelem;
    uint32_t written = 0;
    if (e->in_len >= sizeof(hdr) + len) {
        iov_from_buf(e->in, e->nin, 0, &hdr, sizeof(hdr));
        iov_from_buf(e->in, e->nin, sizeof(hdr), frame, len);
        written = (uint32_t)(sizeof(hdr) + len);
        machine_count(&m->io_stats.net_rx_bytes[n->index], len);
        machine_count(&m->io_stats.net_rx_packets[n->index], 1);
    } else {
        n->rx_dropped++;
        machine_count(&m->io_stats.net_rx_dropped[n->index], 1);
    }
    virtq_push(&n->vdev.vq[RXQ], e, written);
    virtio_notify_queue(&n->vdev, RXQ);
    pthread_mutex_unlock(&m->dev_lock);
}

/* Guest -> host: drain the TX queue, on the network thread. */
static void net_tx(struct virtio_net *n)
{
    struct machine *m = n->m;
    struct virtq *q = &n->vdev.vq[TXQ];
    for (int budget = 0; budget < NET_QUEUE_SIZE; budget++) {
        pthread_mutex_lock(&m->dev_lock);
        unsigned gen = n->reset_gen;
        int got = virtio_driver_ok(&n->vdev) ? virtq_pop(q, &n->txelem) : 0;
        if (got < 0) virtio_set_needs_reset(&n->vdev);
        pthread_mutex_unlock(&m->dev_lock);
        if (got <= 0) return;
        /* Skip the virtio-net header at the start of the readable bytes. */
        struct iovec iov[VIRTQ_MAX_SIZE];
        int cnt = 0;
        size_t skip = sizeof(struct virtio_net_hdr_v1);
        for (unsigned i = 0; i < n->txelem.nout; i++) {
            const struct iovec *s = &n->txelem.out[i];
            if (skip >= s->iov_len) {
                skip -= s->iov_len;
                continue;
            }
            iov[cnt++] = (struct iovec){(uint8_t *)s->iov_base + skip, s->iov_len - skip};
            skip = 0;
        }
        if (cnt > 0) {
            net_backend_send(n->nb, iov, cnt);
            size_t bytes = 0;
            for (int i = 0; i < cnt; i++) bytes += iov[i].iov_len;
            machine_count(&m->io_stats.net_tx_bytes[n->index], bytes);
            machine_count(&m->io_stats.net_tx_packets[n->index], 1);
        }
        pthread_mutex_lock(&m->dev_lock);
        if (gen == n->reset_gen) {
            virtq_push(q, &n->txelem, 0);
            virtio_notify_queue(&n->vdev, TXQ);
        }
        pthread_mutex_unlock(&m->dev_lock);
    }
    /* More pending: come round again without sleeping. */
    uint64_t one = 1;
    ssize_t w = write(n->kick_fd, &one, sizeof(one));
    (void)w;
}

static void *net_thread(void *arg)
{
    struct virtio_net *n = arg;
    struct pollfd fds[NET_MAX_POLLFDS];
    while (!n->stop) {
        fds[0] = (struct pollfd){.fd = n->kick_fd, .events = POLLIN};
        int timeout = 1000;
        int nb = n->nb->ops->poll_fill(n->nb, fds + 1, NET_MAX_POLLFDS - 1, &timeout);
        int r = poll(fds, (nfds_t)(nb + 1), timeout);
        if (r < 0 && errno != EINTR) {
            log_error("virtio-net: poll: %s", strerror(errno));
            break;
        }
        if (r > 0 && (fds[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t rd = read(n->kick_fd, &v, sizeof(v));
            (void)rd;
            if (n->stop) break;
            net_tx(n);
        }
        n->nb->ops->poll_done(n->nb, fds + 1, nb);
    }
    return NULL;
}

static void net_kick(struct virtio_net *n)
{
    uint64_t one = 1;
    ssize_t w = write(n->kick_fd, &one, sizeof(one));
    (void)w;
}

static void net_queue_notify(struct virtio_dev *d, unsigned qi)
{
    if (qi == TXQ) net_kick(d->opaque);
}

static void net_reset(struct virtio_dev *d)
{
    struct virtio_net *n = d->opaque;
    if (n) n->reset_gen++;
}

static void net_release(struct virtio_dev *d)
{
    struct virtio_net *n = d->opaque;
    if (n->thread_started) {
        n->stop = true;
        net_kick(n);
        pthread_join(n->thread, NULL);
    }
    if (n->nb) n->nb->ops->destroy(n->nb);
    if (n->kick_fd >= 0) close(n->kick_fd);
    free(n);
}

static const struct virtio_ops net_ops = {
    .name = "virtio-net",
    .device_id = VIRTIO_ID_NET,
    .pci_class = 0x020000, /* network, ethernet */
    .features = (1ULL << VIRTIO_NET_F_MAC) | (1ULL << VIRTIO_NET_F_STATUS),
    .num_queues = 2,
    .queue_max = NET_QUEUE_SIZE,
    .config_size = 8, /* mac, status */
    .queue_notify = net_queue_notify,
    .reset = net_reset,
    .release = net_release,
};

static void derive_mac(uint8_t mac[6], const char *name, unsigned index)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = name ? name : "vm"; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ index) * 16777619u;
    mac[0] = 0x02;
    mac[1] = 0x76;
    mac[2] = 0x6d;
    mac[3] = (uint8_t)(h >> 16);
    mac[4] = (uint8_t)(h >> 8);
    mac[5] = (uint8_t)h;
}

int virtio_net_create(struct machine *m, const struct vm_net *spec, unsigned index, char *err, size_t errlen)
{
    struct virtio_net *n = calloc(1, sizeof(*n));
    if (!n) return -ENOMEM;
    n->m = m;
    n->index = index < VM_MAX_NETS ? index : VM_MAX_NETS - 1;
    n->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (n->kick_fd < 0) {
        free(n);
        return -errno;
    }
    n->nb = net_backend_create(spec, index, net_rx, n, err, errlen);
    if (!n->nb) {
        close(n->kick_fd);
        free(n);
        return -EINVAL;
    }
    derive_mac(n->mac, m->cfg->name, index);
    int r = virtio_pci_register(m, &n->vdev, &net_ops, n, err, errlen);
    if (r) {
        n->vdev.opaque = n;
        net_release(&n->vdev);
        return r;
    }
    memcpy(n->vdev.config, n->mac, 6);
    n->vdev.config[6] = VIRTIO_NET_S_LINK_UP;
    r = pthread_create(&n->thread, NULL, net_thread, n);
    if (r) {
        snprintf(err, errlen, "virtio-net: thread: %s", strerror(r));
        return -r;
    }
    n->thread_started = true;
    log_debug("virtio-net %u: mac %02x:%02x:%02x:%02x:%02x:%02x", index, n->mac[0], n->mac[1], n->mac[2], n->mac[3],
              n->mac[4], n->mac[5]);
    return 0;
}

static int net_init(struct machine *m, char *err, size_t errlen)
{
    for (unsigned i = 0; i < m->cfg->nnets; i++) {
        int r = virtio_net_create(m, &m->cfg->nets[i], i, err, errlen);
        if (r) return r;
    }
    return 0;
}

static const struct device_desc virtio_net_desc = {.name = "virtio-net", .level = DEVICE_LEVEL_DEVICE, .init = net_init};
DEVICE_REGISTER(virtio_net_desc)
