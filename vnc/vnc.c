/* vnc: libvncserver screen, text renderer thread, keyboard events. See vnc.h. */
#include "vnc/vnc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/host_files.h"
#include "vmm/log.h"
#include "vmm/timer.h"
#include "vnc/font.h"
#include "vnc/keymap.h"

#define VNC_MAX_HANDOVERS 8
#define FB_W (VNC_COLS * FONT_WIDTH)
#define FB_H (VNC_ROWS * FONT_HEIGHT)
#define CELLS (VNC_COLS * VNC_ROWS)

/* The 16 colours of the VGA text palette, as 0x00RRGGBB. */
static const uint32_t vga_palette[16] = {
    0x000000, 0x0000AA, 0x00AA00, 0x00AAAA, 0xAA0000, 0xAA00AA, 0xAA5500, 0xAAAAAA,
    0x555555, 0x5555FF, 0x55FF55, 0x55FFFF, 0xFF5555, 0xFF55FF, 0xFFFF55, 0xFFFFFF,
};

struct vnc_server {
    struct vnc_options opt;
    rfbScreenInfoPtr screen;
    struct vga_font font;
    uint32_t *fb;
    char *passwords[2];
    char *tls_cert, *tls_key; /* owned copies: libvncserver keeps the pointers */
    char address[80];
    int listen_fd, stop_fd; /* our listening socket (see accept_thread), the eventfd that stops it */
    pthread_t render_thread, accept_thread;
    bool accepting;
    /* Connections being handed to libvncserver (rfbNewClient runs in a thread of its own). */
    pthread_mutex_t handover_lock;
    struct handover {
        struct vnc_server *s;
        int fd;
        dev_t dev;
        ino_t ino;
        uint64_t start_ns;
        bool active;
    } handover[VNC_MAX_HANDOVERS];
    _Atomic bool stop;
    _Atomic unsigned clients;
    uint8_t shown[CELLS * 2]; /* what the framebuffer currently shows */
    int shown_cursor;
    bool first;
};

/* libvncserver's log goes through ours, at debug level (it is chatty). */
static void rfb_log_debug(const char *fmt, ...)
{
    if (log_get_level() < LOG_DEBUG) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    buf[strcspn(buf, "\n")] = 0;
    log_debug("vnc: %s", buf);
}

static void draw_cell(struct vnc_server *s, unsigned idx, uint8_t ch, uint8_t attr, bool cursor)
{
    unsigned cx = idx % VNC_COLS, cy = idx / VNC_COLS;
    uint32_t fg = vga_palette[attr & 0x0f], bg = vga_palette[(attr >> 4) & 0x07];
    /* Bit 7 of the attribute is blink (Linux's vgacon default); blinking text is drawn steadily. */
    const uint8_t *g = s->font.glyph[ch];
    for (unsigned y = 0; y < FONT_HEIGHT; y++) {
        uint8_t bits = g[y];
        if (cursor && y >= FONT_HEIGHT - 2) bits = 0xff;
        uint32_t *row = s->fb + (cy * FONT_HEIGHT + y) * FB_W + cx * FONT_WIDTH;
        for (unsigned x = 0; x < FONT_WIDTH; x++) row[x] = (bits & (0x80 >> x)) ? fg : bg;
    }
}

static void mark_cell(struct vnc_server *s, unsigned idx)
{
    int x = (int)(idx % VNC_COLS) * FONT_WIDTH, y = (int)(idx / VNC_COLS) * FONT_HEIGHT;
    rfbMarkRectAsModified(s->screen, x, y, x + FONT_WIDTH, y + FONT_HEIGHT);
}

/* Render the cells that changed since the last pass, and the old and new cursor cells. */
static void render_once(struct vnc_server *s)
{
    uint8_t cells[CELLS * 2];
    int cursor = -1;
    if (!s->opt.text(s->opt.opaque, cells, &cursor)) return;
    if (cursor >= CELLS) cursor = -1;
    for (unsigned i = 0; i < CELLS; i++) {
        bool is_cursor = (int)i == cursor, was_cursor = (int)i == s->shown_cursor;
        if (!s->first && cells[2 * i] == s->shown[2 * i] && cells[2 * i + 1] == s->shown[2 * i + 1] &&
            is_cursor == was_cursor)
            continue;
        draw_cell(s, i, cells[2 * i], cells[2 * i + 1], is_cursor);
        mark_cell(s, i);
    }
    memcpy(s->shown, cells, sizeof(cells));
    s->shown_cursor = cursor;
    s->first = false;
}

static void *render_thread(void *arg)
{
    struct vnc_server *s = arg;
    unsigned hz = s->opt.refresh_hz ? s->opt.refresh_hz : 60;
    struct timespec period = {0, 1000000000L / hz};
    while (!s->stop) {
        if (s->opt.tick) s->opt.tick(s->opt.opaque);
        render_once(s);
        nanosleep(&period, NULL);
    }
    return NULL;
}

static void on_key(rfbBool down, rfbKeySym keysym, rfbClientPtr cl)
{
    struct vnc_server *s = cl->screen->screenData;
    uint8_t codes[4];
    size_t n = keysym_to_scancodes(keysym, down, codes);
    if (n && s->opt.keys) s->opt.keys(s->opt.opaque, codes, n);
}

static void on_pointer(int buttons, int x, int y, rfbClientPtr cl)
{
    /* No pointing device yet: accepted and ignored. */
    (void)buttons, (void)x, (void)y, (void)cl;
}

static void on_client_gone(rfbClientPtr cl)
{
    struct vnc_server *s = cl->screen->screenData;
    s->clients--;
    log_info("vnc: viewer %s disconnected", cl->host ? cl->host : "?");
}

static enum rfbNewClientAction on_new_client(rfbClientPtr cl)
{
    struct vnc_server *s = cl->screen->screenData;
    /* past libvncserver's first-bytes check: RFB messages may be 1 byte (accept_thread) */
    int lowat = 1;
    setsockopt(cl->sock, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
    s->clients++;
    cl->clientGoneHook = on_client_gone;
    log_info("vnc: viewer %s connected", cl->host ? cl->host : "?");
    return RFB_CLIENT_ACCEPT;
}

static int read_password(const char *path, char **out, char *err, size_t errlen)
{
    int fd = host_files_open(path, O_RDONLY | O_CLOEXEC, 0); /* sandboxed: opened before the drop */
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        snprintf(err, errlen, "vnc password file '%s': %s", path, strerror(errno));
        return -errno;
    }
    char line[128] = "";
    if (!fgets(line, sizeof(line), f)) line[0] = 0;
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) {
        snprintf(err, errlen, "vnc password file '%s': empty", path);
        return -EINVAL;
    }
    *out = strdup(line);
    return *out ? 0 : -ENOMEM;
}

/* New connections: vmd accepts them itself instead of libvncserver's listener thread, because
 * libvncserver 0.9.14 (Debian bookworm) peeks at a new client's first 4 bytes to tell WebSockets
 * and TLS from plain RFB (webSocketsCheck -> rfbPeekExactTimeout), and a client that sends 1 to 3
 * bytes can make that peek return short with a stale EAGAIN in errno, after which it loops on
 * select() for as long as those bytes sit unread: its listener was stuck (no viewer could connect
 * again) and burnt a CPU. A plain RFB viewer sends nothing before the server's banner; WebSocket
 * and TLS clients send at least 4 bytes at once. So:
 *  - the gate: a connection is handed over once it has 0 bytes (quiet for GATE_MS) or at least 4;
 *    1 to 3 bytes and then the peer's end of sending, or still 1 to 3 at GATE_MS: closed;
 *  - SO_RCVLOWAT 4 on the handed-over socket keeps select() from waking on fewer than 4 bytes,
 *    so bytes that trickle in later make the peek time out (a plain connection) instead of spin
 *    (newClientHook, which libvncserver calls after that check, sets it back to 1);
 *  - each hand-over (rfbNewClient) runs in a thread of its own, so a stuck one cannot block the
 *    accepting; and one still running after HANDOVER_STALL_MS with 1-3 bytes pending (a peer
 *    that sent them and shut down inside libvncserver's 100 ms window, which select() reports
 *    readable despite the low-water mark) has those bytes drained: the peek then sees the end of
 *    the stream and libvncserver drops the client. */
#define GATE_MS 60
#define HANDOVER_STALL_MS 400

static bool gate_connection(int fd)
{
    uint64_t t0 = clock_now_ns();
    for (;;) {
        int avail = 0;
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
        int left = GATE_MS - (int)((clock_now_ns() - t0) / 1000000);
        int n = poll(&p, 1, left > 0 ? left : 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || ioctl(fd, FIONREAD, &avail) < 0) return false;
        if (avail >= 4) return true;
        if (n == 0) return avail == 0; /* quiet until the deadline: a viewer waiting for the banner */
        if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return false; /* < 4 bytes, then gone */
        if (left <= 0) return false; /* 1-3 bytes and no more */
        nanosleep(&(struct timespec){0, 5000000L}, NULL); /* 1-3 bytes so far: wait for more */
    }
}

static void *handover_thread(void *arg)
{
    struct handover *h = arg;
    rfbClientPtr cl = rfbNewClient(h->s->screen, h->fd);
    if (cl && !cl->onHold) rfbStartOnHoldClient(cl);
    pthread_mutex_lock(&h->s->handover_lock);
    h->active = false;
    pthread_mutex_unlock(&h->s->handover_lock);
    return NULL;
}

static void hand_over(struct vnc_server *s, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return;
    }
    int lowat = 4;
    setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
    pthread_mutex_lock(&s->handover_lock);
    struct handover *h = NULL;
    for (unsigned i = 0; i < VNC_MAX_HANDOVERS && !h; i++)
        if (!s->handover[i].active) h = &s->handover[i];
    if (h) *h = (struct handover){.s = s, .fd = fd, .dev = st.st_dev, .ino = st.st_ino,
                                  .start_ns = clock_now_ns(), .active = true};
    pthread_mutex_unlock(&s->handover_lock);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!h || pthread_create(&t, &attr, handover_thread, h) != 0) {
        log_info("vnc: connection closed: %s", h ? "no thread for it" : "too many connections being set up");
        if (h) {
            pthread_mutex_lock(&s->handover_lock);
            h->active = false;
            pthread_mutex_unlock(&s->handover_lock);
        }
        close(fd);
    }
    pthread_attr_destroy(&attr);
}

/* Drain the 1-3 bytes a stalled hand-over is spinning on (see above). */
static void unstick_handovers(struct vnc_server *s)
{
    uint64_t now = clock_now_ns();
    pthread_mutex_lock(&s->handover_lock);
    for (unsigned i = 0; i < VNC_MAX_HANDOVERS; i++) {
        struct handover *h = &s->handover[i];
        struct stat st;
        int avail = 0;
        if (!h->active || now - h->start_ns < HANDOVER_STALL_MS * 1000000ULL) continue;
        /* still the socket we accepted (libvncserver has not closed it), with 1-3 bytes waiting */
        if (fstat(h->fd, &st) < 0 || st.st_dev != h->dev || st.st_ino != h->ino) continue;
        if (ioctl(h->fd, FIONREAD, &avail) < 0 || avail < 1 || avail > 3) continue;
        char junk[4];
        if (recv(h->fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
            log_info("vnc: a client stalled the connection set-up with %d stray bytes; dropping it", avail);
    }
    pthread_mutex_unlock(&s->handover_lock);
}

static bool handovers_active(struct vnc_server *s)
{
    bool any = false;
    pthread_mutex_lock(&s->handover_lock);
    for (unsigned i = 0; i < VNC_MAX_HANDOVERS; i++) any |= s->handover[i].active;
    pthread_mutex_unlock(&s->handover_lock);
    return any;
}

static void *accept_thread(void *arg)
{
    struct vnc_server *s = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN}, {.fd = s->stop_fd, .events = POLLIN}};
        int n = poll(p, 2, 100);
        if (n < 0 && errno != EINTR) break;
        unstick_handovers(s);
        if (n <= 0) continue;
        if (p[1].revents || s->stop) break;
        if (!(p[0].revents & POLLIN)) continue;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        if (!gate_connection(fd)) {
            log_info("vnc: connection closed: it sent 1-3 bytes, which is neither RFB nor WebSocket/TLS");
            close(fd);
            continue;
        }
        hand_over(s, fd);
    }
    /* let hand-overs in flight finish (unsticking them) before the screen goes away */
    for (int i = 0; i < 100 && handovers_active(s); i++) {
        unstick_handovers(s);
        nanosleep(&(struct timespec){0, 20000000L}, NULL);
    }
    return NULL;
}

static void stop_accepting(struct vnc_server *s)
{
    if (!s->accepting) return;
    s->stop = true;
    uint64_t one = 1;
    if (write(s->stop_fd, &one, sizeof(one)) < 0) log_warn("vnc: cannot stop the accept thread: %s", strerror(errno));
    pthread_join(s->accept_thread, NULL);
    s->accepting = false;
}

/* Listen on host:port (port 0: the first free one of 5900-5999, as VNC servers do). */
static int listen_tcp(struct in_addr addr, long port, int *out_port)
{
    for (long p = port ? port : 5900; p <= (port ? port : 5999); p++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -errno;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p), .sin_addr = addr};
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 32) == 0) {
            *out_port = (int)p;
            return fd;
        }
        int e = errno;
        close(fd);
        if (e != EADDRINUSE || port) return -e;
    }
    return -EADDRINUSE;
}

int vnc_start(const struct vnc_options *o, struct vnc_server **out, char *err, size_t errlen)
{
    const char *colon = strrchr(o->listen, ':');
    char host[64];
    if (!colon || (size_t)(colon - o->listen) >= sizeof(host)) {
        snprintf(err, errlen, "--vnc: '%s': expected ADDR:PORT", o->listen);
        return -EINVAL;
    }
    memcpy(host, o->listen, (size_t)(colon - o->listen));
    host[colon - o->listen] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct in_addr addr;
    if (*end || port < 0 || port > 65535) {
        snprintf(err, errlen, "--vnc: '%s': bad port", o->listen);
        return -EINVAL;
    }
    if (!host[0]) snprintf(host, sizeof(host), "127.0.0.1");
    if (inet_pton(AF_INET, host, &addr) != 1) {
        snprintf(err, errlen, "--vnc: '%s': '%s' is not an IPv4 address", o->listen, host);
        return -EINVAL;
    }
    struct vnc_server *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    s->opt = *o;
    s->listen_fd = s->stop_fd = -1;
    pthread_mutex_init(&s->handover_lock, NULL);
    s->shown_cursor = -1;
    s->first = true;
    int r = font_load(&s->font, o->font ? o->font : VMD_DEFAULT_FONT, err, errlen);
    if (r) goto fail;
    if (o->password_file && (r = read_password(o->password_file, &s->passwords[0], err, errlen))) goto fail;

    rfbLog = rfb_log_debug;
    rfbErr = rfb_log_debug;
    int argc = 0;
    s->screen = rfbGetScreen(&argc, NULL, FB_W, FB_H, 8, 3, 4);
    if (!s->screen) {
        snprintf(err, errlen, "vnc: cannot create the screen");
        r = -ENOMEM;
        goto fail;
    }
    s->fb = calloc((size_t)FB_W * FB_H, 4);
    if (!s->fb) {
        r = -ENOMEM;
        goto fail;
    }
    s->screen->desktopName = "vmd";
    s->screen->frameBuffer = (char *)s->fb;
    /* 0x00RRGGBB in little-endian memory: blue is the lowest byte. */
    s->screen->serverFormat.redShift = 16;
    s->screen->serverFormat.greenShift = 8;
    s->screen->serverFormat.blueShift = 0;
    s->screen->screenData = s;
    /* vmd listens and accepts itself (accept_thread): libvncserver gets no port of its own. */
    s->screen->ipv6port = 0;
    s->screen->port = 0;
    s->screen->autoPort = FALSE;
    s->screen->alwaysShared = TRUE;
    s->screen->cursor = NULL; /* no pointer device: don't paint libvncserver's arrow over cell 0 */
    s->screen->kbdAddEvent = on_key;
    s->screen->ptrAddEvent = on_pointer;
    s->screen->newClientHook = on_new_client;
    if (s->passwords[0]) {
        s->screen->authPasswdData = s->passwords;
        s->screen->passwordCheck = rfbCheckPasswordByList;
    }
    if (o->tls_cert && o->tls_key) {
        s->tls_cert = strdup(o->tls_cert);
        s->tls_key = strdup(o->tls_key);
        s->screen->sslcertfile = s->tls_cert;
        s->screen->sslkeyfile = s->tls_key;
    }
    int bound = 0;
    s->listen_fd = listen_tcp(addr, port, &bound);
    if (s->listen_fd < 0) {
        r = s->listen_fd;
        snprintf(err, errlen, "--vnc: cannot listen on %s:%ld: %s", host, port, strerror(-r));
        goto fail;
    }
    s->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (s->stop_fd < 0) {
        r = -errno;
        snprintf(err, errlen, "vnc: eventfd: %s", strerror(errno));
        goto fail;
    }
    rfbInitServer(s->screen);
    s->screen->port = bound;
    snprintf(s->address, sizeof(s->address), "%s:%d", host, bound);
    render_once(s);
    rfbRunEventLoop(s->screen, 40000, TRUE);
    r = pthread_create(&s->accept_thread, NULL, accept_thread, s);
    if (r) {
        snprintf(err, errlen, "vnc: accept thread: %s", strerror(r));
        rfbShutdownServer(s->screen, TRUE);
        r = -r;
        goto fail;
    }
    s->accepting = true;
    r = pthread_create(&s->render_thread, NULL, render_thread, s);
    if (r) {
        snprintf(err, errlen, "vnc: render thread: %s", strerror(r));
        stop_accepting(s);
        rfbShutdownServer(s->screen, TRUE);
        r = -r;
        goto fail;
    }
    log_info("vnc: listening on %s%s%s", s->address, s->passwords[0] ? " (password)" : "",
             s->tls_cert ? " (TLS)" : "");
    /* The caller's strings are not kept. */
    s->opt.listen = s->opt.password_file = s->opt.tls_cert = s->opt.tls_key = s->opt.font = NULL;
    *out = s;
    return 0;
fail:
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->stop_fd >= 0) close(s->stop_fd);
    if (s->screen) rfbScreenCleanup(s->screen);
    free(s->fb);
    free(s->passwords[0]);
    free(s->tls_cert);
    free(s->tls_key);
    free(s);
    return r;
}

void vnc_stop(struct vnc_server *s)
{
    if (!s) return;
    s->stop = true;
    pthread_join(s->render_thread, NULL);
    stop_accepting(s);
    close(s->listen_fd);
    close(s->stop_fd);
    rfbShutdownServer(s->screen, TRUE);
    /* Client threads finish on their own after their sockets close (and a viewer accepted just
     * before the listener stopped may still be starting): the screen must outlive them. */
    for (int i = 0; i < 300 && s->clients > 0; i++) nanosleep(&(struct timespec){0, 10000000L}, NULL);
    rfbScreenCleanup(s->screen);
    pthread_mutex_destroy(&s->handover_lock);
    free(s->fb);
    free(s->passwords[0]);
    free(s->tls_cert);
    free(s->tls_key);
    free(s);
}

const char *vnc_address(const struct vnc_server *s) { return s->address; }

unsigned vnc_client_count(const struct vnc_server *s) { return s->clients; }
