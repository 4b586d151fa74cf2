/* virtio_test_driver: a minimal virtio-pci driver for unit tests, speaking to devices through
 * the machine's buses exactly as a guest would (config mechanism #1, BAR0 MMIO). */
#ifndef VMD_TESTS_VIRTIO_TEST_DRIVER_H
#define VMD_TESTS_VIRTIO_TEST_DRIVER_H

#include <stdint.h>

#include "vmm/machine.h"

#define VTD_MAX_QUEUES 4

struct vtd_queue {
    uint64_t desc, avail, used; /* guest-physical ring addresses */
    uint16_t size;
    uint16_t next_avail;
};

struct vtd {
    struct machine *m;
    unsigned slot;
    uint64_t bar;
    struct vtd_queue q[VTD_MAX_QUEUES];
};

/* A machine with guest RAM, buses, a fake backend recording IRQ levels, and PCI bus 0. */
struct machine *vtd_machine_new(uint64_t ram_bytes);
void vtd_machine_free(struct machine *m);
extern int vtd_irq_levels[24];

uint32_t vtd_cfg_read(struct machine *m, unsigned slot, unsigned reg, unsigned size);
void vtd_cfg_write(struct machine *m, unsigned slot, unsigned reg, unsigned size, uint32_t val);
/* Negotiate `features` (VERSION_1 added) and set up queues 0..nq-1 of the device in `slot`, with
 * rings from `ring_gpa` on (64 KiB per queue). Returns the device status after DRIVER_OK. */
uint8_t vtd_init(struct vtd *d, struct machine *m, unsigned slot, uint64_t features, uint64_t ring_gpa, unsigned nq);
/* Publish a chain of `n` (<= 4) descriptors (addr, len, writable) on queue qi and notify. Returns head. */
uint16_t vtd_submit(struct vtd *d, unsigned qi, unsigned n, const uint64_t *addr, const uint32_t *len,
                    const int *writable);
/* Wait (up to timeout_ms) until queue qi's used index reaches `idx`. Returns 0 or -1 on timeout. */
int vtd_wait_used(struct vtd *d, unsigned qi, uint16_t idx, int timeout_ms);
/* The length the device reported for used entry number `n` of queue qi. */
uint32_t vtd_used_len(struct vtd *d, unsigned qi, uint16_t n);
uint8_t vtd_status(struct vtd *d);

#endif
