/* vnc_console: the machine's VNC console: starts the VNC server when the VM has --vnc, showing
 * the VGA text screen and typing into the i8042 keyboard.
 *
 * --vnc ADDR:PORT[,password-file=FILE][,tls-cert=FILE,tls-key=FILE]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/i8042.h"
#include "devices/vga.h"
#include "vmm/device.h"
#include "vmm/host_files.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vnc/font.h"
#include "vnc/vnc.h"

/* Key events from viewers wait here until the keyboard controller has room: a viewer sends a
 * burst (a pasted line) faster than the guest drains the i8042's 16-byte queue. */
#define KEY_FIFO 4096
struct vnc_console {
    struct machine *m;
    pthread_mutex_t lock; /* guards the FIFO; taken before dev_lock */
    uint8_t fifo[KEY_FIFO];
    size_t head, count;
};

/* Length of the key event at the FIFO head: an 0xE0 prefix belongs to the code after it. */
static size_t head_event_len(const struct vnc_console *c)
{
    if (c->count == 0) return 0;
    if (c->fifo[c->head] == 0xE0) return c->count >= 2 ? 2 : 0;
    return 1;
}

static void console_flush_keys(struct vnc_console *c)
{
    struct machine *m = c->m;
    pthread_mutex_lock(&c->lock);
    pthread_mutex_lock(&m->dev_lock);
    if (m->i8042) {
        size_t len;
        while ((len = head_event_len(c)) && i8042_key_room(m->i8042) >= len) {
            uint8_t ev[2];
            for (size_t i = 0; i < len; i++) ev[i] = c->fifo[(c->head + i) % KEY_FIFO];
            i8042_key_event(m->i8042, ev, len);
            c->head = (c->head + len) % KEY_FIFO;
            c->count -= len;
        }
    }
    pthread_mutex_unlock(&m->dev_lock);
    pthread_mutex_unlock(&c->lock);
}

static void console_tick(void *opaque) { console_flush_keys(opaque); }

static bool console_text(void *opaque, uint8_t cells[VNC_ROWS * VNC_COLS * 2], int *cursor)
{
    struct machine *m = ((struct vnc_console *)opaque)->m;
    bool ok = false;
    pthread_mutex_lock(&m->dev_lock);
    if (m->vga) {
        const uint8_t *buf = vga_text_buffer(m->vga);
        unsigned cols, rows;
        vga_text_geometry(m->vga, &cols, &rows);
        uint16_t start = vga_start_address(m->vga);
        memset(cells, 0, VNC_ROWS * VNC_COLS * 2);
        for (unsigned r = 0; r < rows && r < VNC_ROWS; r++)
            for (unsigned c = 0; c < cols && c < VNC_COLS; c++) {
                unsigned src = (start + r * cols + c) % VGA_TEXT_CELLS;
                cells[2 * (r * VNC_COLS + c)] = buf[2 * src];
                cells[2 * (r * VNC_COLS + c) + 1] = buf[2 * src + 1];
            }
        struct vga_cursor cur;
        vga_cursor(m->vga, &cur);
        *cursor = cur.visible && cur.row < VNC_ROWS && cur.col < VNC_COLS ? (int)(cur.row * VNC_COLS + cur.col) : -1;
        ok = true;
    }
    pthread_mutex_unlock(&m->dev_lock);
    return ok;
}

static void console_keys(void *opaque, const uint8_t *codes, size_t n)
{
    struct vnc_console *c = opaque;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < n && c->count < KEY_FIFO; i++) c->fifo[(c->head + c->count++) % KEY_FIFO] = codes[i];
    pthread_mutex_unlock(&c->lock);
    console_flush_keys(c);
}

/* Split "ADDR:PORT,key=value,..." into its parts (pointers into spec, which is modified). */
static int parse_spec(char *spec, struct vnc_options *o, char *err, size_t errlen)
{
    char *save = NULL, *tok = strtok_r(spec, ",", &save);
    o->listen = tok;
    while ((tok = strtok_r(NULL, ",", &save))) {
        if (!strncmp(tok, "password-file=", 14)) o->password_file = tok + 14;
        else if (!strncmp(tok, "tls-cert=", 9)) o->tls_cert = tok + 9;
        else if (!strncmp(tok, "tls-key=", 8)) o->tls_key = tok + 8;
        else {
            snprintf(err, errlen, "--vnc: unknown option '%s' (password-file=, tls-cert=, tls-key=)", tok);
            return -EINVAL;
        }
    }
    if (!o->listen || (!o->tls_cert != !o->tls_key)) {
        snprintf(err, errlen, "--vnc: expected ADDR:PORT[,password-file=F][,tls-cert=F,tls-key=F]");
        return -EINVAL;
    }
    return 0;
}

int vnc_console_preopen(const char *vnc_spec, char *err, size_t errlen)
{
    char *spec = strdup(vnc_spec);
    if (!spec) return -ENOMEM;
    struct vnc_options o = {0};
    int r = parse_spec(spec, &o, err, errlen);
    if (!r && o.tls_cert) { /* libvncserver opens them by path at each TLS connection */
        snprintf(err, errlen, "--vnc: tls-cert/tls-key are read by libvncserver at each connection, which a sandboxed "
                              "process cannot do: VNC over TLS needs an unconfined worker (docs/security.md)");
        r = -EPERM;
    }
    if (!r) {
        r = host_files_preopen(VMD_DEFAULT_FONT, O_RDONLY);
        if (r) snprintf(err, errlen, "font '%s': %s", VMD_DEFAULT_FONT, strerror(-r));
    }
    if (!r && o.password_file) {
        r = host_files_preopen(o.password_file, O_RDONLY | O_NOFOLLOW);
        if (r) snprintf(err, errlen, "vnc password file '%s': %s", o.password_file, strerror(-r));
    }
    free(spec);
    return r;
}

static int vnc_console_init(struct machine *m, char *err, size_t errlen)
{
    if (!m->cfg->vnc) return 0;
    char *spec = strdup(m->cfg->vnc);
    struct vnc_console *c = calloc(1, sizeof(*c));
    if (!spec || !c) {
        free(spec);
        free(c);
        return -ENOMEM;
    }
    c->m = m;
    pthread_mutex_init(&c->lock, NULL);
    struct vnc_options o = {.text = console_text, .keys = console_keys, .tick = console_tick, .opaque = c};
    int r = parse_spec(spec, &o, err, errlen);
    /* Under vmd, the daemon's certificate (passed to its workers) is the default for TLS. */
    if (!r && !o.tls_cert && getenv("VMD_VNC_TLS_CERT") && getenv("VMD_VNC_TLS_KEY")) {
        o.tls_cert = getenv("VMD_VNC_TLS_CERT");
        o.tls_key = getenv("VMD_VNC_TLS_KEY");
    }
    if (!r) r = vnc_start(&o, &m->vnc, err, errlen);
    free(spec);
    if (r) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return r;
    }
    m->vnc_console = c;
    return 0;
}

static void vnc_console_destroy(struct machine *m)
{
    vnc_stop(m->vnc); /* joins the threads that use the console state */
    m->vnc = NULL;
    if (m->vnc_console) {
        pthread_mutex_destroy(&m->vnc_console->lock);
        free(m->vnc_console);
        m->vnc_console = NULL;
    }
}

static const struct device_desc vnc_console_desc = {
    .name = "vnc", .level = DEVICE_LEVEL_LATE, .init = vnc_console_init, .destroy = vnc_console_destroy};
DEVICE_REGISTER(vnc_console_desc)
