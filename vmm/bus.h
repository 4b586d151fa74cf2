/* bus: port-I/O and MMIO dispatch. Devices register address ranges with a
 * handler; a CPU backend reports an access and the bus finds the device.
 *
 * Accesses to unclaimed ports read as all-ones and writes are dropped, as on a
 * PC. Handlers run with the machine's device lock held (see machine.h).
 */
#ifndef VMD_BUS_H
#define VMD_BUS_H

#include <stdbool.h>
#include <stdint.h>

/* Handle one access of `size` bytes (1, 2, 4 or 8) at `offset` from the range
 * start. On a read, store the value in *data (little-endian value, zero-extended).
 * On a write, *data holds the value. */
typedef void (*bus_handler_fn)(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write);

struct bus_range {
    uint64_t base;
    uint64_t len;
    bus_handler_fn handler;
    void *opaque;
    const char *name;
};

struct bus {
    struct bus_range *ranges; /* sorted by base, non-overlapping */
    unsigned count, cap;
};

void bus_init(struct bus *bus);
void bus_free(struct bus *bus);
/* Claim [base, base+len). Returns 0, -EEXIST if it overlaps a claimed range, -EINVAL, -ENOMEM. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler_fn handler, void *opaque, const char *name);
int bus_unregister(struct bus *bus, uint64_t base);
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr);
/* Dispatch an access. Returns true if a device claimed it. Unclaimed reads return all-ones. */
bool bus_access(const struct bus *bus, uint64_t addr, uint64_t *data, unsigned size, bool is_write);

#endif
