/* bus: sorted range table with binary search; used for both the PIO and the MMIO space. */
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void bus_init(struct bus *bus) { memset(bus, 0, sizeof(*bus)); }

void bus_free(struct bus *bus)
{
    free(bus->ranges);
    memset(bus, 0, sizeof(*bus));
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler_fn handler, void *opaque, const char *name)
{
    if (len == 0 || !handler || base + len - 1 < base) return -EINVAL;
    unsigned i = 0;
    while (i < bus->count && bus->ranges[i].base < base) i++;
    if (i > 0) {
        const struct bus_range *prev = &bus->ranges[i - 1];
        if (prev->base + prev->len - 1 >= base) return -EEXIST;
    }
    if (i < bus->count && base + len - 1 >= bus->ranges[i].base) return -EEXIST;
    if (bus->count == bus->cap) {
        unsigned cap = bus->cap ? bus->cap * 2 : 16;
        struct bus_range *r = realloc(bus->ranges, cap * sizeof(*r));
        if (!r) return -ENOMEM;
        bus->ranges = r;
        bus->cap = cap;
    }
    memmove(&bus->ranges[i + 1], &bus->ranges[i], (bus->count - i) * sizeof(*bus->ranges));
    bus->ranges[i] = (struct bus_range){base, len, handler, opaque, name};
    bus->count++;
    return 0;
}

int bus_unregister(struct bus *bus, uint64_t base)
{
    for (unsigned i = 0; i < bus->count; i++) {
        if (bus->ranges[i].base == base) {
            memmove(&bus->ranges[i], &bus->ranges[i + 1], (bus->count - i - 1) * sizeof(*bus->ranges));
            bus->count--;
            return 0;
        }
    }
    return -ENOENT;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
    unsigned lo = 0, hi = bus->count;
    while (lo < hi) {
        unsigned mid = lo + (hi - lo) / 2;
        const struct bus_range *r = &bus->ranges[mid];
        if (addr < r->base)
            hi = mid;
        else if (addr - r->base >= r->len)
            lo = mid + 1;
        else
            return r;
    }
    return NULL;
}

bool bus_access(const struct bus *bus, uint64_t addr, uint64_t *data, unsigned size, bool is_write)
{
    const struct bus_range *r = bus_find(bus, addr);
    if (!r) {
        if (!is_write) *data = size >= 8 ? ~0ULL : ((1ULL << (size * 8)) - 1);
        return false;
    }
    if (!is_write) *data = 0;
    r->handler(r->opaque, addr - r->base, data, size, is_write);
    return true;
}
