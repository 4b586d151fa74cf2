/* bus_claim: helper for device teardown: release a bus range only if this device owns it,
 * so that a device whose registration failed half-way never removes another device's range. */
#ifndef VMD_DEVICES_BUS_CLAIM_H
#define VMD_DEVICES_BUS_CLAIM_H

#include "vmm/bus.h"

static inline void bus_release(struct bus *bus, uint64_t base, const void *owner)
{
    const struct bus_range *r = bus_find(bus, base);
    if (r && r->base == base && r->opaque == owner) bus_unregister(bus, base);
}

#endif
