/* net: host-side network backends for a guest NIC: slirp (user-mode NAT, libslirp) and tap
 * (a tap device attached to a Linux bridge).
 *
 * A backend is driven by the NIC's network thread: net_backend_poll_fill adds its file
 * descriptors to a pollfd array and lowers the timeout; after poll(), net_backend_poll_done
 * handles them. Frames from the host side are handed to the `rx` callback (on that thread);
 * frames from the guest are sent with net_backend_send (on that thread too). Nothing here is
 * thread-safe on purpose: one thread owns a backend.
 */
#ifndef VMD_NET_H
#define VMD_NET_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct vm_net;
struct net_backend;

typedef void (*net_rx_fn)(void *opaque, const uint8_t *frame, size_t len);

struct net_backend_ops {
    int (*send)(struct net_backend *nb, const struct iovec *iov, int iovcnt);
    int (*poll_fill)(struct net_backend *nb, struct pollfd *fds, int max, int *timeout_ms);
    void (*poll_done)(struct net_backend *nb, struct pollfd *fds, int n);
    void (*destroy)(struct net_backend *nb);
};

struct net_backend {
    const struct net_backend_ops *ops;
    net_rx_fn rx;
    void *rx_opaque;
};

/* Create the backend described by `spec` (slirp or tap:BRIDGE). Returns NULL with a user-facing
 * message in err (e.g. "tap: creating a tap device needs CAP_NET_ADMIN"). */
struct net_backend *net_backend_create(const struct vm_net *spec, unsigned index, net_rx_fn rx, void *rx_opaque,
                                       char *err, size_t errlen);

struct net_backend *net_slirp_create(const struct vm_net *spec, net_rx_fn rx, void *rx_opaque, char *err, size_t errlen);
struct net_backend *net_tap_create(const struct vm_net *spec, unsigned index, net_rx_fn rx, void *rx_opaque, char *err,
                                   size_t errlen);
/* Create a tap device for NIC index on spec's bridge (CAP_NET_ADMIN): its fd, name in ifname
 * (16 bytes, IFNAMSIZ), or -1 with the reason in err. The sandbox (vmm/sandbox.c) registers it
 * with host_files under net_tap_key(index) before the privilege drop; net_tap_create then uses
 * that tap instead of creating one. */
int net_tap_open(const struct vm_net *spec, unsigned index, char ifname[16], char *err, size_t errlen);
void net_tap_key(char *buf, size_t len, unsigned index);

static inline int net_backend_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
    return nb->ops->send(nb, iov, iovcnt);
}

#endif
