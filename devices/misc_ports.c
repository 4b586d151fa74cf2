/* misc_ports: small fixed-function ports of a PC chipset.
 *   0x80  POST code / I/O delay port: writes are dropped silently (Linux's io_delay uses it).
 *   0x92  System control port A: bit 1 fast A20 gate (stored), bit 0 written as 1 resets.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "dev_snapshot.h"
#include "misc_ports.h"
#include "vmm/machine.h"

#define POST_PORT 0x80
#define SYSCTL_PORT_A 0x92
#define SYSCTL_A_RESET 0x01
#define SYSCTL_A_A20 0x02

struct misc_ports {
    struct machine *m;
    uint8_t post_code; /* last POST code written, kept for debugging */
    uint8_t port_a;
};

static void misc_post_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct misc_ports *d = opaque;
    if (is_write) d->post_code = (uint8_t)*data;
    else *data = d->post_code;
}

static void misc_port_a_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct misc_ports *d = opaque;
    if (!is_write) {
        *data = d->port_a & SYSCTL_A_A20;
        return;
    }
    d->port_a = (uint8_t)*data & SYSCTL_A_A20;
    machine_set_a20(d->m, MACHINE_A20_PORT92, d->port_a & SYSCTL_A_A20);
    if (*data & SYSCTL_A_RESET) machine_request_stop(d->m, MACHINE_STOP_RESET);
}

static void misc_ports_destroy(struct machine *m);

static int misc_ports_init(struct machine *m, char *err, size_t errlen)
{
    struct misc_ports *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "misc ports: out of memory");
        return -ENOMEM;
    }
    d->m = m;
    d->port_a = SYSCTL_A_A20; /* A20 enabled: the kernel is entered in long mode */
    int r = bus_register(&m->pio, POST_PORT, 1, misc_post_io, d, "post");
    if (r == 0) r = bus_register(&m->pio, SYSCTL_PORT_A, 1, misc_port_a_io, d, "sysctl-a");
    if (r < 0) {
        snprintf(err, errlen, "misc ports 0x80/0x92: %s", strerror(-r));
        bus_release(&m->pio, POST_PORT, d);
        free(d);
        return r;
    }
    return 0;
}

/* The machine has no typed slot for this device: find the instance through the bus. */
static struct misc_ports *misc_ports_of(struct machine *m)
{
    const struct bus_range *r = bus_find(&m->pio, POST_PORT);
    return r && r->handler == misc_post_io ? r->opaque : NULL;
}

static void misc_ports_destroy(struct machine *m)
{
    struct misc_ports *d = misc_ports_of(m);
    if (!d) return;
    bus_release(&m->pio, POST_PORT, d);
    bus_release(&m->pio, SYSCTL_PORT_A, d);
    free(d);
}

/* Snapshot: the A20 gate and the last POST code. */
#define MISC_PORTS_STATE_VERSION 1

static int misc_ports_save(struct machine *m, struct snap_buf *b)
{
    struct misc_ports *d = misc_ports_of(m);
    snap_put_bool(b, d != NULL);
    if (!d) return 0;
    snap_put_u8(b, d->port_a);
    snap_put_u8(b, d->post_code);
    return 0;
}

static int misc_ports_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                              size_t errlen)
{
    if (version != MISC_PORTS_STATE_VERSION) return dev_snapshot_invalid("misc-ports", "unknown version", err, errlen);
    bool bad = false;
    bool present = snap_get_bool(r, &bad);
    if (!present) return bad || r->short_read ? dev_snapshot_invalid("misc-ports", "presence flag", err, errlen) : 0;
    uint8_t port_a = snap_get_u8(r), post = snap_get_u8(r);
    if (r->short_read) return dev_snapshot_invalid("misc-ports", "truncated", err, errlen);
    struct misc_ports *d = misc_ports_of(m);
    if (!apply || !d) return 0;
    d->port_a = port_a & SYSCTL_A_A20;
    machine_set_a20(m, MACHINE_A20_PORT92, d->port_a & SYSCTL_A_A20);
    d->post_code = post;
    return 0;
}

const struct device_desc misc_ports_device = {.name = "misc-ports",
                                              .level = DEVICE_LEVEL_BASE,
                                              .init = misc_ports_init,
                                              .destroy = misc_ports_destroy,
                                              .state_version = MISC_PORTS_STATE_VERSION,
                                              .save = misc_ports_save,
                                              .restore = misc_ports_restore};
DEVICE_REGISTER(misc_ports_device);
