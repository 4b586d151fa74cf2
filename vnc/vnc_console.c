/* vnc_console: the machine's VNC console: starts the VNC server when the VM has --vnc, showing
 * the VGA text screen and typing into the i8042 keyboard.
 *
 * --vnc ADDR:PORT[,password-file=FILE][,tls-cert=FILE,tls-key=FILE]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/i8042.h"
#include "devices/vga.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vnc/vnc.h"

static bool console_text(void *opaque, uint8_t cells[VNC_ROWS * VNC_COLS * 2], int *cursor)
{
    struct machine *m = opaque;
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
    struct machine *m = opaque;
    pthread_mutex_lock(&m->dev_lock);
    if (m->i8042) i8042_key_event(m->i8042, codes, n);
    pthread_mutex_unlock(&m->dev_lock);
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

static int vnc_console_init(struct machine *m, char *err, size_t errlen)
{
    if (!m->cfg->vnc) return 0;
    char *spec = strdup(m->cfg->vnc);
    if (!spec) return -ENOMEM;
    struct vnc_options o = {.text = console_text, .keys = console_keys, .opaque = m};
    int r = parse_spec(spec, &o, err, errlen);
    if (!r) r = vnc_start(&o, &m->vnc, err, errlen);
    free(spec);
    return r;
}

static void vnc_console_destroy(struct machine *m)
{
    vnc_stop(m->vnc);
    m->vnc = NULL;
}

static const struct device_desc vnc_console_desc = {
    .name = "vnc", .level = DEVICE_LEVEL_LATE, .init = vnc_console_init, .destroy = vnc_console_destroy};
DEVICE_REGISTER(vnc_console_desc)
