/* ioapic: the I/O APIC (82093AA-compatible, version 0x20, 24 pins) at 0xFEC00000 for the emu
 * backend's APIC platform. IOREGSEL at offset 0x00,
 * IOWIN at 0x10, EOI register at 0x40 (version 0x20 has it); registers ID (0x00), version (0x01),
 * arbitration (0x02) and the 24 64-bit redirection entries (0x10 + 2*pin, low then high dword).
 *
 * Pins follow the ACPI MADT vmd describes: GSI n is pin n, with ISA IRQ 0 (the PIT) on pin 2.
 * Edge-triggered entries deliver on a rising input edge; level-triggered ones deliver while the
 * input is asserted and remote IRR is clear, set remote IRR, and deliver again after the local
 * APIC's EOI broadcast for their vector if the line is still asserted. Masked entries deliver
 * nothing (a level entry delivers when unmasked while asserted). Delivery is a message to the
 * local APICs (fixed/lowest-priority delivery, physical or logical destination), made through
 * the `deliver` callback.
 *
 * Every call is made with the machine's dev_lock held.
 */
#ifndef VMD_DEVICES_IOAPIC_H
#define VMD_DEVICES_IOAPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/irqchip.h"

#define IOAPIC_BASE 0xfec00000ULL
#define IOAPIC_SIZE 0x1000
#define IOAPIC_PINS IRQCHIP_IOAPIC_PINS

struct ioapic;
struct snap_buf;
struct snap_reader;

/* An interrupt message to the local APICs: what the redirection entry says. delivery_mode is
 * the entry's bits 10:8 (0 fixed, 1 lowest priority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT). */
struct ioapic_msg {
    uint8_t vector;
    uint8_t delivery_mode;
    bool logical;   /* destination mode */
    bool level;     /* trigger mode */
    uint8_t dest;   /* entry bits 63:56 */
};

struct timer_list;

struct ioapic_host {
    void *opaque;
    void (*deliver)(void *opaque, const struct ioapic_msg *msg);
    /* Optional: the clock and timer list for postponed deliveries (the interrupt-storm guard,
     * and level lines due after a restore). Without them those happen at the next
     * ioapic_set_irq or register access. */
    uint64_t (*clock_ns)(void *opaque);
    struct timer_list *timers;
};

/* An IOAPIC at reset: every entry masked, edge, vector 0; ID 0. NULL on ENOMEM. */
struct ioapic *ioapic_create(const struct ioapic_host *host);
void ioapic_destroy(struct ioapic *io);
void ioapic_reset(struct ioapic *io);

/* Register-window accesses at `offset` within the 4 KiB page (32-bit accesses to IOREGSEL/IOWIN/
 * EOI; other sizes and offsets read 0 / are ignored). */
uint32_t ioapic_mmio_read(struct ioapic *io, uint32_t offset, unsigned size);
void ioapic_mmio_write(struct ioapic *io, uint32_t offset, uint32_t value, unsigned size);

/* Input pin `pin` (0-23) is now at `level` (1 asserted). `level` is the device's logical
 * state: the polarity bit is kept for the guest to read back but does not invert it (as in KVM
 * and QEMU: vmd's tables declare PCI INTx active-low while its devices assert with 1).
 * Out-of-range pins are ignored. */
void ioapic_set_irq(struct ioapic *io, unsigned pin, int level);
/* The local APIC's EOI broadcast for `vector`: clears remote IRR of every level entry with
 * that vector and re-delivers those whose line is still asserted. */
void ioapic_eoi(struct ioapic *io, uint8_t vector);

/* State (vmm/irqchip.h): get, check, set (checked state only), and its codec in a snapshot.
 * Setting delivers nothing itself: level lines that are due are delivered from the timer list
 * (at the next timers run, after the whole machine is restored) or at the next call. */
void ioapic_get_state(const struct ioapic *io, struct irqchip_ioapic *s);
int ioapic_state_check(const struct irqchip_ioapic *s, char *err, size_t errlen);
void ioapic_set_state(struct ioapic *io, const struct irqchip_ioapic *s);
void ioapic_state_encode(struct snap_buf *b, const struct irqchip_ioapic *s);
int ioapic_state_decode(struct snap_reader *r, struct irqchip_ioapic *s, char *err, size_t errlen);

#endif
