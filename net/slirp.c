/* slirp: user-mode networking through libslirp: DHCP, DNS, NAT for outbound TCP/UDP, and
 * host-to-guest port forwards (hostfwd=tcp:ADDR:HOSTPORT-:GUESTPORT, as QEMU spells it).
 * Guest network 10.0.2.0/24, gateway 10.0.2.2, DNS 10.0.2.3, first DHCP address 10.0.2.15. */
#include <arpa/inet.h>
#include <errno.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/net.h"
#include "vmm/log.h"
#include "vmm/vm_config.h"

#define SLIRP_MAX_TIMERS 16

struct slirp_timer {
    bool used, armed;
    int64_t expire_ms;
    SlirpTimerId id;
    void *cb_opaque;
};

struct net_slirp {
    struct net_backend nb;
    Slirp *slirp;
    struct slirp_timer timers[SLIRP_MAX_TIMERS];
    /* poll bookkeeping between poll_fill and poll_done */
    struct pollfd *fds;
    int nfds, maxfds;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
    struct net_slirp *s = opaque;
    s->nb.rx(s->nb.rx_opaque, buf, len);
    return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
    (void)opaque;
    log_warn("slirp: guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
    (void)opaque;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *cb_timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
    struct net_slirp *s = opaque;
    for (int i = 0; i < SLIRP_MAX_TIMERS; i++) {
        if (!s->timers[i].used) {
            s->timers[i] = (struct slirp_timer){.used = true, .id = id, .cb_opaque = cb_opaque};
            return &s->timers[i];
        }
    }
    log_error("slirp: out of timers");
    return NULL;
}

static void cb_timer_free(void *timer, void *opaque)
{
    (void)opaque;
    if (timer) memset(timer, 0, sizeof(struct slirp_timer));
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
    (void)opaque;
    struct slirp_timer *t = timer;
    if (!t) return;
    t->expire_ms = expire_ms;
    t->armed = true;
}

static void cb_register_poll_fd(int fd, void *opaque) { (void)fd, (void)opaque; }
static void cb_unregister_poll_fd(int fd, void *opaque) { (void)fd, (void)opaque; }
static void cb_notify(void *opaque) { (void)opaque; }

static const SlirpCb slirp_callbacks = {
    .send_packet = cb_send_packet,
    .guest_error = cb_guest_error,
    .clock_get_ns = cb_clock_get_ns,
    .timer_free = cb_timer_free,
    .timer_mod = cb_timer_mod,
    .register_poll_fd = cb_register_poll_fd,
    .unregister_poll_fd = cb_unregister_poll_fd,
    .notify = cb_notify,
    .timer_new_opaque = cb_timer_new_opaque,
};

static int slirp_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
    struct net_slirp *s = (struct net_slirp *)nb;
    uint8_t frame[65536 + 14];
    size_t len = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > sizeof(frame) - len) return -EMSGSIZE;
        memcpy(frame + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    slirp_input(s->slirp, frame, (int)len);
    return 0;
}

static int slirp_events_to_poll(int ev)
{
    int p = 0;
    if (ev & SLIRP_POLL_IN) p |= POLLIN;
    if (ev & SLIRP_POLL_OUT) p |= POLLOUT;
    if (ev & SLIRP_POLL_PRI) p |= POLLPRI;
    if (ev & SLIRP_POLL_ERR) p |= POLLERR;
    if (ev & SLIRP_POLL_HUP) p |= POLLHUP;
    return p;
}

static int add_poll_cb(int fd, int events, void *opaque)
{
    struct net_slirp *s = opaque;
    if (s->nfds >= s->maxfds) return -1;
    s->fds[s->nfds] = (struct pollfd){.fd = fd, .events = (short)slirp_events_to_poll(events)};
    return s->nfds++;
}

static int get_revents_cb(int idx, void *opaque)
{
    struct net_slirp *s = opaque;
    if (idx < 0 || idx >= s->nfds) return 0;
    int r = s->fds[idx].revents, ev = 0;
    if (r & POLLIN) ev |= SLIRP_POLL_IN;
    if (r & POLLOUT) ev |= SLIRP_POLL_OUT;
    if (r & POLLPRI) ev |= SLIRP_POLL_PRI;
    if (r & POLLERR) ev |= SLIRP_POLL_ERR;
    if (r & POLLHUP) ev |= SLIRP_POLL_HUP;
    return ev;
}

static int slirp_poll_fill(struct net_backend *nb, struct pollfd *fds, int max, int *timeout_ms)
{
    struct net_slirp *s = (struct net_slirp *)nb;
    s->fds = fds;
    s->maxfds = max;
    s->nfds = 0;
    uint32_t t = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
    slirp_pollfds_fill(s->slirp, &t, add_poll_cb, s);
    int64_t now = now_ms();
    for (int i = 0; i < SLIRP_MAX_TIMERS; i++) {
        if (!s->timers[i].armed) continue;
        int64_t left = s->timers[i].expire_ms - now;
        if (left < 0) left = 0;
        if ((uint64_t)left < t) t = (uint32_t)left;
    }
    *timeout_ms = t == UINT32_MAX ? -1 : (int)t;
    return s->nfds;
}

static void slirp_poll_done(struct net_backend *nb, struct pollfd *fds, int n)
{
    struct net_slirp *s = (struct net_slirp *)nb;
    s->fds = fds;
    s->nfds = n;
    slirp_pollfds_poll(s->slirp, 0, get_revents_cb, s);
    int64_t now = now_ms();
    for (int i = 0; i < SLIRP_MAX_TIMERS; i++) {
        struct slirp_timer *t = &s->timers[i];
        if (t->armed && t->expire_ms <= now) {
            t->armed = false;
            slirp_handle_timer(s->slirp, t->id, t->cb_opaque);
        }
    }
}

static void slirp_destroy(struct net_backend *nb)
{
    struct net_slirp *s = (struct net_slirp *)nb;
    if (s->slirp) slirp_cleanup(s->slirp);
    free(s);
}

static const struct net_backend_ops slirp_ops = {
    .send = slirp_send, .poll_fill = slirp_poll_fill, .poll_done = slirp_poll_done, .destroy = slirp_destroy};

struct net_backend *net_slirp_create(const struct vm_net *spec, net_rx_fn rx, void *rx_opaque, char *err, size_t errlen)
{
    struct net_slirp *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "slirp: out of memory");
        return NULL;
    }
    s->nb = (struct net_backend){.ops = &slirp_ops, .rx = rx, .rx_opaque = rx_opaque};
    SlirpConfig cfg = {
        .version = 4,
        .in_enabled = true,
        .if_mtu = 1500,
        .if_mru = 1500,
    };
    inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
    inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
    inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
    inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
    inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
    cfg.vhostname = "vmd";
    s->slirp = slirp_new(&cfg, &slirp_callbacks, s);
    if (!s->slirp) {
        snprintf(err, errlen, "slirp: initialisation failed");
        free(s);
        return NULL;
    }
    for (unsigned i = 0; i < spec->nhostfwd; i++) {
        const struct vm_hostfwd *f = &spec->hostfwd[i];
        struct in_addr host = {.s_addr = htonl(INADDR_ANY)}, guest;
        inet_pton(AF_INET, "10.0.2.15", &guest);
        if (f->host_addr[0] && inet_pton(AF_INET, f->host_addr, &host) != 1) {
            snprintf(err, errlen, "--net: hostfwd address '%s' is not an IPv4 address", f->host_addr);
            slirp_destroy(&s->nb);
            return NULL;
        }
        if (slirp_add_hostfwd(s->slirp, f->udp, host, f->host_port, guest, f->guest_port) < 0) {
            snprintf(err, errlen, "--net: hostfwd %s:%s:%u: %s", f->udp ? "udp" : "tcp",
                     f->host_addr[0] ? f->host_addr : "0.0.0.0", f->host_port,
                     errno ? strerror(errno) : "cannot listen on that port");
            slirp_destroy(&s->nb);
            return NULL;
        }
        log_info("slirp: forwarding %s %s:%u to guest port %u", f->udp ? "udp" : "tcp",
                 f->host_addr[0] ? f->host_addr : "0.0.0.0", f->host_port, f->guest_port);
    }
    return &s->nb;
}

struct net_backend *net_backend_create(const struct vm_net *spec, unsigned index, net_rx_fn rx, void *rx_opaque,
                                       char *err, size_t errlen)
{
    if (spec->kind == NET_TAP) return net_tap_create(spec, index, rx, rx_opaque, err, errlen);
    return net_slirp_create(spec, rx, rx_opaque, err, errlen);
}
