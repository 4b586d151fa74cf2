/* pvpanic: the guest's panic notification port (see pvpanic.h). No state worth a snapshot: an event
 * acts at once, and the port's read value is fixed. */
#include "pvpanic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "vmm/log.h"
#include "vmm/machine.h"

struct pvpanic {
    struct machine *m;
    enum vm_on_panic policy; /* resolved at init: never AUTO */
};

enum vm_on_panic pvpanic_effective_policy(enum vm_on_panic policy, const char *cmdline)
{
    if (policy != ON_PANIC_AUTO) return policy;
    long timeout = 0;
    const char *p = cmdline ? cmdline : "";
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        const char *end = p;
        while (*end && *end != ' ' && *end != '\t') end++;
        if (end - p == 2 && !strncmp(p, "--", 2)) break; /* the rest is init's */
        if (end - p > 6 && !strncmp(p, "panic=", 6)) {
            char *e;
            long v = strtol(p + 6, &e, 0);
            if (e == end) timeout = v; /* the kernel ignores a value it cannot parse */
        }
        p = end;
    }
    return timeout != 0 ? ON_PANIC_IGNORE : ON_PANIC_STOP;
}

static void pvpanic_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct pvpanic *d = opaque;
    if (!is_write) {
        *data = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED; /* the events we understand */
        return;
    }
    if (*data & PVPANIC_CRASH_LOADED)
        log_warn("guest kernel panicked; a crash kernel is loaded and takes over (pvpanic)");
    if (!(*data & PVPANIC_PANICKED)) return;
    switch (d->policy) {
    case ON_PANIC_REBOOT:
        log_warn("guest kernel panicked (pvpanic): resetting the VM (on-panic reboot)");
        machine_request_stop(d->m, MACHINE_STOP_RESET);
        break;
    case ON_PANIC_IGNORE:
        log_warn("guest kernel panicked (pvpanic): %s", d->m->cfg->on_panic == ON_PANIC_AUTO
                                                             ? "its command line has panic=N: it reboots itself"
                                                             : "ignored (on-panic ignore)");
        break;
    default:
        log_error("guest kernel panicked (pvpanic): stopping the VM");
        machine_request_stop(d->m, MACHINE_STOP_PANIC);
        break;
    }
}

static int pvpanic_init(struct machine *m, char *err, size_t errlen)
{
    struct pvpanic *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "pvpanic: out of memory");
        return -ENOMEM;
    }
    d->m = m;
    d->policy = pvpanic_effective_policy(m->cfg->on_panic, m->cfg->cmdline);
    int r = bus_register(&m->pio, PVPANIC_PORT, 1, pvpanic_io, d, "pvpanic");
    if (r < 0) {
        snprintf(err, errlen, "pvpanic at port 0x%x: %s", PVPANIC_PORT, strerror(-r));
        free(d);
        return r;
    }
    return 0;
}

bool pvpanic_present(const struct machine *m)
{
    const struct bus_range *r = bus_find(&m->pio, PVPANIC_PORT);
    return r && r->handler == pvpanic_io;
}

static void pvpanic_destroy(struct machine *m)
{
    if (!pvpanic_present(m)) return;
    struct pvpanic *d = bus_find(&m->pio, PVPANIC_PORT)->opaque;
    bus_release(&m->pio, PVPANIC_PORT, d);
    free(d);
}

const struct device_desc pvpanic_device = {.name = "pvpanic",
                                           .level = DEVICE_LEVEL_BASE,
                                           .init = pvpanic_init,
                                           .destroy = pvpanic_destroy};
DEVICE_REGISTER(pvpanic_device);
