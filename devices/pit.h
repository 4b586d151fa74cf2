/* pit: the i8254 programmable interval timer (ports 0x40-0x43) and the system control
 * port B at 0x61 (channel 2 gate, speaker, refresh toggle, channel 2 output).
 *
 * Counters are derived from a clock in nanoseconds (clock_now_ns() unless a test swaps
 * it) at 1.193182 MHz, so the guest's TSC calibration against channel 2 agrees with the
 * host-time-based TSC. Channel 0's output rising edges pulse ISA IRQ 0 from a vm_timer.
 */
#ifndef VMD_DEVICES_PIT_H
#define VMD_DEVICES_PIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/device.h"
#include "vmm/irqchip.h"
#include "vmm/timer.h"

#define PIT_FREQ_HZ 1193182ULL
#define PIT_BASE 0x40
#define PIT_PORT_B 0x61
#define PIT_IRQ 0

struct machine;

struct pit {
    struct machine *m;
    struct irqchip_pit_channel ch[3];
    uint8_t port_b; /* bits 0-3 as written to port 0x61 */
    struct vm_timer irq_timer; /* next channel 0 output rising edge (or backlog retry) */
    uint64_t periods_counted;  /* channel 0 periods since base_ns already accounted for */
    uint32_t ticks_pending;    /* channel 0 ticks owed to the guest */
    /* Time source; tests replace it to drive the counters deterministically. */
    uint64_t (*clock_ns)(void *opaque);
    void *clock_opaque;
};

/* State (vmm/irqchip.h): get, check, set (checked state only; re-arms channel 0's IRQ timer),
 * and the codec of the PIT part of a snapshot (s NULL: absent). decode checks what it reads. */
void pit_get_state(const struct pit *p, struct irqchip_pit *s);
int pit_state_check(const struct irqchip_pit *s, char *err, size_t errlen);
void pit_set_state(struct pit *p, const struct irqchip_pit *s);
struct snap_buf;
struct snap_reader;
void pit_state_encode(struct snap_buf *b, const struct irqchip_pit *s);
int pit_state_decode(struct snap_reader *r, bool *present, struct irqchip_pit *out, char *err, size_t errlen);

/* The value channel `ch`'s counting element held in state s (binary, 0..modulus-1). */
uint32_t pit_state_count(const struct irqchip_pit *s, unsigned ch);
/* Make channel `ch` of s one whose control word set `mode`, `access` and `bcd` and whose count
 * `count` (1..65536; BCD digits read as binary are converted) was loaded ns_since_load ago,
 * counting since then (periodic modes keep their phase; one-shot modes past their terminal
 * count have delivered it), with its gate input at `gate`. For a model that records the time
 * of the load rather than the counting element (KVM's in-kernel PIT). */
void pit_state_channel_loaded(struct irqchip_pit *s, unsigned ch, uint8_t mode, uint8_t access, bool bcd,
                              uint32_t count, bool gate, uint64_t ns_since_load);

/* The registered device (tests call .init/.destroy directly). */
extern const struct device_desc pit_device;

/* Current output level of channel `ch` (0-2) at time now_ns. Lock held. */
bool pit_channel_output(struct pit *p, unsigned ch, uint64_t now_ns);

#endif
