/* device: the registry of device models and their ordered init/destroy. */
#include "device.h"

#include <errno.h>
#include <stdio.h>

#include "log.h"

#define DEVICE_MAX 64

/* Global by design: filled once by constructors before main(), read-only afterwards. */
static const struct device_desc *g_devices[DEVICE_MAX];
static unsigned g_ndevices;

void device_register(const struct device_desc *desc)
{
    if (g_ndevices == DEVICE_MAX) {
        fprintf(stderr, "device registry full: %s dropped\n", desc->name);
        return;
    }
    /* keep sorted by level, stable */
    unsigned i = g_ndevices++;
    while (i > 0 && g_devices[i - 1]->level > desc->level) {
        g_devices[i] = g_devices[i - 1];
        i--;
    }
    g_devices[i] = desc;
}

int devices_init_all(struct machine *m, char *err, size_t errlen)
{
    for (unsigned i = 0; i < g_ndevices; i++) {
        int r = g_devices[i]->init ? g_devices[i]->init(m, err, errlen) : 0;
        if (r < 0) {
            while (i-- > 0)
                if (g_devices[i]->destroy) g_devices[i]->destroy(m);
            return r;
        }
        log_debug("device %s ready", g_devices[i]->name);
    }
    return 0;
}

void devices_destroy_all(struct machine *m)
{
    for (unsigned i = g_ndevices; i-- > 0;)
        if (g_devices[i]->destroy) g_devices[i]->destroy(m);
}

unsigned devices_count(void) { return g_ndevices; }

const struct device_desc *device_at(unsigned i) { return i < g_ndevices ? g_devices[i] : NULL; }
