/* irqchip_test_helpers: what a snapshot does with one interrupt-controller model, composed from
 * its state API (vmm/irqchip.h), for the tests and fuzzers of the local APIC and IOAPIC:
 * save = get + encode; restore = decode (+ the vCPU check the emulator makes) + set when apply;
 * the register page an in-kernel APIC exchanges, taken (from_page) and given (to_page). */
#ifndef VMD_TESTS_IRQCHIP_TEST_HELPERS_H
#define VMD_TESTS_IRQCHIP_TEST_HELPERS_H

#include <errno.h>
#include <stdio.h>

#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "vmm/irqchip.h"
#include "vmm/snapshot.h"

static inline void lapic_save(const struct lapic *a, struct snap_buf *b)
{
    struct irqchip_lapic s;
    lapic_get_state(a, &s);
    lapic_state_encode(b, &s);
}

static inline uint32_t lapic_initial_id_of(const struct lapic *a)
{
    struct irqchip_lapic s;
    lapic_get_state(a, &s);
    return s.initial_id;
}

static inline int lapic_restore(struct lapic *a, struct snap_reader *r, bool apply, char *err, size_t errlen)
{
    struct irqchip_lapic s;
    int rc = lapic_state_decode(r, &s, err, errlen);
    if (!rc && s.initial_id != lapic_initial_id_of(a)) {
        snprintf(err, errlen, "local APIC state is invalid: saved for APIC ID %u, this vCPU's is %u", s.initial_id,
                 lapic_initial_id_of(a));
        rc = -EINVAL;
    }
    if (!rc && apply) lapic_set_state(a, &s);
    return rc;
}

static inline int lapic_from_page(struct lapic *a, const uint8_t page[1024], uint64_t base, uint64_t tsc_deadline,
                                  bool apply, char *err, size_t errlen)
{
    struct irqchip_lapic s;
    int rc = lapic_state_from_page(&s, lapic_initial_id_of(a), page, base, tsc_deadline, err, errlen);
    if (!rc && apply) lapic_set_state(a, &s);
    return rc;
}

static inline void lapic_to_page(const struct lapic *a, uint8_t page[1024])
{
    struct irqchip_lapic s;
    lapic_get_state(a, &s);
    lapic_state_to_page(&s, page);
}

static inline void ioapic_save(const struct ioapic *io, struct snap_buf *b)
{
    struct irqchip_ioapic s;
    ioapic_get_state(io, &s);
    ioapic_state_encode(b, &s);
}

static inline int ioapic_restore(struct ioapic *io, struct snap_reader *r, bool apply, char *err, size_t errlen)
{
    struct irqchip_ioapic s;
    int rc = ioapic_state_decode(r, &s, err, errlen);
    if (!rc && apply) ioapic_set_state(io, &s);
    return rc;
}

#endif
