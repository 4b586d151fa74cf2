/* tap: a tap device (vmdtapN...) created for the guest NIC and attached to an existing Linux
 * bridge. Needs CAP_NET_ADMIN; without it the error says so. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net.h"
#include "vmm/host_files.h"
#include "vmm/log.h"
#include "vmm/vm_config.h"

struct net_tap {
    struct net_backend nb;
    int fd;
    char ifname[IFNAMSIZ];
    uint8_t buf[65536];
};

static int tap_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
    struct net_tap *t = (struct net_tap *)nb;
    ssize_t w;
    do w = writev(t->fd, iov, iovcnt);
    while (w < 0 && errno == EINTR);
    return w < 0 ? -errno : 0; /* EAGAIN: the frame is dropped, as a congested wire would */
}

static int tap_poll_fill(struct net_backend *nb, struct pollfd *fds, int max, int *timeout_ms)
{
    struct net_tap *t = (struct net_tap *)nb;
    (void)timeout_ms;
    if (max < 1) return 0;
    fds[0] = (struct pollfd){.fd = t->fd, .events = POLLIN};
    return 1;
}

static void tap_poll_done(struct net_backend *nb, struct pollfd *fds, int n)
{
    struct net_tap *t = (struct net_tap *)nb;
    if (n < 1 || !(fds[0].revents & POLLIN)) return;
    for (int i = 0; i < 64; i++) { /* bounded: let the guest side run too */
        ssize_t r = read(t->fd, t->buf, sizeof(t->buf));
        if (r <= 0) break;
        t->nb.rx(t->nb.rx_opaque, t->buf, (size_t)r);
    }
}

static void tap_destroy(struct net_backend *nb)
{
    struct net_tap *t = (struct net_tap *)nb;
    if (t->fd >= 0) close(t->fd); /* a non-persistent tap disappears with its fd */
    free(t);
}

static const struct net_backend_ops tap_ops = {
    .send = tap_send, .poll_fill = tap_poll_fill, .poll_done = tap_poll_done, .destroy = tap_destroy};

/* Create the tap device for NIC index, attach it to spec's bridge and bring it up: its fd
 * (non-blocking, close-on-exec), its name in ifname. -1 with the reason in err. */
int net_tap_open(const struct vm_net *spec, unsigned index, char ifname[16], char *err, size_t errlen)
{
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "tap: /dev/net/tun: %s", strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    /* The kernel picks the number: vmd<pid-ish>... keep it short and unique per process. */
    snprintf(ifr.ifr_name, IFNAMSIZ, "vmd%d.%u", (int)(getpid() % 100000), index);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        int e = errno;
        if (e == EPERM)
            snprintf(err, errlen, "tap: creating a tap device needs CAP_NET_ADMIN (run vmd as root or grant the capability)");
        else
            snprintf(err, errlen, "tap: TUNSETIFF: %s", strerror(e));
        close(fd);
        return -1;
    }
    memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        snprintf(err, errlen, "tap: socket: %s", strerror(errno));
        close(fd);
        return -1;
    }
    /* Attach to the bridge, then bring the tap up. */
    struct ifreq br;
    memset(&br, 0, sizeof(br));
    size_t blen = strnlen(spec->bridge, IFNAMSIZ - 1);
    memcpy(br.ifr_name, spec->bridge, blen);
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, ifname, IFNAMSIZ);
    if (ioctl(s, SIOCGIFINDEX, &ifr) == 0) br.ifr_ifindex = ifr.ifr_ifindex;
    if (ioctl(s, SIOCBRADDIF, &br) < 0) {
        int e = errno;
        if (e == ENODEV)
            snprintf(err, errlen, "tap: bridge '%s' does not exist", spec->bridge);
        else if (e == EPERM)
            snprintf(err, errlen, "tap: attaching to bridge '%s' needs CAP_NET_ADMIN", spec->bridge);
        else
            snprintf(err, errlen, "tap: attaching %s to bridge '%s': %s", ifname, spec->bridge, strerror(e));
        close(s);
        close(fd);
        return -1;
    }
    memset(&ifr, 0, sizeof(ifr));
    memcpy(ifr.ifr_name, ifname, IFNAMSIZ);
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
    log_info("tap: %s on bridge %s", ifname, spec->bridge);
    return fd;
}

void net_tap_key(char *buf, size_t len, unsigned index) { snprintf(buf, len, "tap:%u", index); }

struct net_backend *net_tap_create(const struct vm_net *spec, unsigned index, net_rx_fn rx, void *rx_opaque, char *err,
                                   size_t errlen)
{
    struct net_tap *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "tap: out of memory");
        return NULL;
    }
    t->nb = (struct net_backend){.ops = &tap_ops, .rx = rx, .rx_opaque = rx_opaque};
    /* Sandboxed (vmm/sandbox.h): the tap was created before the privilege drop and lives on
     * across guest resets, because an unprivileged process could not create it again. */
    char key[32];
    net_tap_key(key, sizeof(key), index);
    t->fd = host_files_dup(key);
    if (t->fd >= 0) {
        struct ifreq ifr;
        memset(&ifr, 0, sizeof(ifr));
        if (ioctl(t->fd, TUNGETIFF, &ifr) == 0) memcpy(t->ifname, ifr.ifr_name, IFNAMSIZ);
        return &t->nb;
    }
    t->fd = net_tap_open(spec, index, t->ifname, err, errlen);
    if (t->fd < 0) {
        free(t);
        return NULL;
    }
    return &t->nb;
}
