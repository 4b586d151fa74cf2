/* debug_exit: the isa-debug-exit port (see debug_exit.h). It has no state: the write ends the VM,
 * so there is nothing for a snapshot to keep. */
#include "debug_exit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "vmm/log.h"
#include "vmm/machine.h"

struct debug_exit {
    struct machine *m;
};

static void debug_exit_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct debug_exit *d = opaque;
    if (!is_write) {
        *data = 0; /* QEMU reads 0 too */
        return;
    }
    uint64_t v = *data;
    if (size < 8) v &= (1ULL << (size * 8)) - 1;
    /* QEMU calls exit((val << 1) | 1): the process's status is the low 8 bits of that */
    int status = (int)(((v << 1) | 1) & 0xFF);
    if (machine_stop_requested(d->m) < MACHINE_STOP_GUEST_EXIT) { /* the first write decides */
        d->m->guest_exit_status = status;
        log_info("guest wrote 0x%llx to isa-debug-exit: exit status %d", (unsigned long long)v, status);
    }
    machine_request_stop(d->m, MACHINE_STOP_GUEST_EXIT);
}

static int debug_exit_init(struct machine *m, char *err, size_t errlen)
{
    if (!(m->cfg->devices & VM_DEVICE_ISA_DEBUG_EXIT)) return 0;
    struct debug_exit *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "isa-debug-exit: out of memory");
        return -ENOMEM;
    }
    d->m = m;
    int r = bus_register(&m->pio, DEBUG_EXIT_PORT, DEBUG_EXIT_SIZE, debug_exit_io, d, "isa-debug-exit");
    if (r < 0) {
        snprintf(err, errlen, "isa-debug-exit at port 0x%x: %s", DEBUG_EXIT_PORT, strerror(-r));
        free(d);
        return r;
    }
    return 0;
}

static void debug_exit_destroy(struct machine *m)
{
    const struct bus_range *r = bus_find(&m->pio, DEBUG_EXIT_PORT);
    if (!r || r->handler != debug_exit_io) return;
    struct debug_exit *d = r->opaque;
    bus_release(&m->pio, DEBUG_EXIT_PORT, d);
    free(d);
}

const struct device_desc debug_exit_device = {.name = "isa-debug-exit",
                                              .level = DEVICE_LEVEL_BASE,
                                              .init = debug_exit_init,
                                              .destroy = debug_exit_destroy};
DEVICE_REGISTER(debug_exit_device);
