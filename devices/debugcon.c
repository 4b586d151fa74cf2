/* debugcon: the firmware debug console (see debugcon.h). No snapshot state: a line being
 * collected when the VM is saved is logged by the machine that saved it. */
#include "debugcon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "vmm/log.h"
#include "vmm/machine.h"

struct debugcon {
    char line[DEBUGCON_LINE_MAX * 4 + 1]; /* room for every byte escaped as \xNN */
    unsigned len, bytes;                   /* characters in line; guest bytes they stand for */
    struct log_limit limit;
};

static void flush_line(struct debugcon *d)
{
    d->line[d->len] = 0;
    log_limited(&d->limit, LOG_INFO, "firmware: %s", d->line);
    d->len = d->bytes = 0;
}

static void debugcon_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct debugcon *d = opaque;
    if (!is_write) {
        *data = DEBUGCON_READBACK;
        return;
    }
    uint8_t c = (uint8_t)*data; /* the port is one byte wide: wider writes carry their low byte */
    if (c == '\n') {
        flush_line(d);
        return;
    }
    if (c == '\r') return;
    if (c >= 0x20 && c < 0x7f && c != '\\') d->line[d->len++] = (char)c;
    else d->len += (unsigned)snprintf(d->line + d->len, 5, "\\x%02x", c);
    if (++d->bytes == DEBUGCON_LINE_MAX) flush_line(d);
}

static int debugcon_init(struct machine *m, char *err, size_t errlen)
{
    struct debugcon *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "debugcon: out of memory");
        return -ENOMEM;
    }
    d->limit = (struct log_limit)LOG_LIMIT_INIT("firmware debug lines", 200);
    int r = bus_register(&m->pio, DEBUGCON_PORT, 1, debugcon_io, d, "debugcon");
    if (r) {
        snprintf(err, errlen, "debugcon port 0x%x: %s", DEBUGCON_PORT, strerror(-r));
        free(d);
    }
    return r;
}

static void debugcon_destroy(struct machine *m)
{
    const struct bus_range *r = bus_find(&m->pio, DEBUGCON_PORT);
    if (!r || r->handler != debugcon_io) return;
    struct debugcon *d = r->opaque;
    if (d->len) flush_line(d);
    bus_release(&m->pio, DEBUGCON_PORT, d);
    free(d);
}

const struct device_desc debugcon_device = {
    .name = "debugcon", .level = DEVICE_LEVEL_BASE, .init = debugcon_init, .destroy = debugcon_destroy};
DEVICE_REGISTER(debugcon_device);
