/* vnc: libvncserver screen, text renderer thread, keyboard events. See vnc.h. */
#include "vnc/vnc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <rfb/rfb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/log.h"
#include "vnc/font.h"
#include "vnc/keymap.h"

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
    pthread_t render_thread;
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
    s->clients++;
    cl->clientGoneHook = on_client_gone;
    log_info("vnc: viewer %s connected", cl->host ? cl->host : "?");
    return RFB_CLIENT_ACCEPT;
}

static int read_password(const char *path, char **out, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
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
    s->screen->listenInterface = addr.s_addr;
    s->screen->ipv6port = 0; /* IPv4 only, on the given address */
    /* Port 0: libvncserver probes 5900-5999 for a free port (it wants a non-zero port for that). */
    s->screen->port = port ? (int)port : 5900;
    s->screen->autoPort = port == 0;
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
    rfbInitServer(s->screen);
    if (s->screen->listenSock == RFB_INVALID_SOCKET) {
        snprintf(err, errlen, "--vnc: cannot listen on %s:%ld", host, port);
        r = -EADDRINUSE;
        goto fail;
    }
    snprintf(s->address, sizeof(s->address), "%s:%d", host, s->screen->port);
    render_once(s);
    rfbRunEventLoop(s->screen, 40000, TRUE);
    r = pthread_create(&s->render_thread, NULL, render_thread, s);
    if (r) {
        snprintf(err, errlen, "vnc: render thread: %s", strerror(r));
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
    rfbShutdownServer(s->screen, TRUE);
    /* Client threads finish on their own after their sockets close (and a viewer accepted just
     * before the listener stopped may still be starting): the screen must outlive them. */
    for (int i = 0; i < 300 && s->clients > 0; i++) nanosleep(&(struct timespec){0, 10000000L}, NULL);
    rfbScreenCleanup(s->screen);
    free(s->fb);
    free(s->passwords[0]);
    free(s->tls_cert);
    free(s->tls_key);
    free(s);
}

const char *vnc_address(const struct vnc_server *s) { return s->address; }

unsigned vnc_client_count(const struct vnc_server *s) { return s->clients; }
