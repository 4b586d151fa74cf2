/* pit: the i8254 programmable interval timer (ports 0x40-0x43) and the system control
 * port B at 0x61 (channel 2 gate, speaker, refresh toggle, channel 2 output).
 *
 * Counters are derived from a clock in nanoseconds (clock_now_ns() unless a test swaps
 * it) at 1.193182 MHz, so the guest's TSC calibration against channel 2 agrees with the
 * host-time-based TSC. Channel 0's output rising edges pulse ISA IRQ 0 from a vm_timer.
 * Skipped when the backend has an in-kernel irqchip (KVM provides PIT and port 0x61).
 */
#ifndef VMD_DEVICES_PIT_H
#define VMD_DEVICES_PIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/device.h"
#include "vmm/timer.h"

#define PIT_FREQ_HZ 1193182ULL
#define PIT_BASE 0x40
#define PIT_PORT_B 0x61
#define PIT_IRQ 0

struct machine;

struct pit_channel {
    uint8_t mode;   /* 0-5 */
    uint8_t access; /* 1 lobyte, 2 hibyte, 3 lobyte then hibyte */
    bool bcd;
    bool gate;
    uint32_t reload; /* programmed count N: 1..65536 (10000 in BCD) */

    /* Counting element: while `running`, it held `base_count` at time `base_ns` and counts
     * down from there; when stopped it holds `base_count`. */
    bool loaded;  /* a count was written since the last control word */
    bool running;
    uint64_t base_ns;
    uint32_t base_count;
    bool terminal_passed; /* modes 0/1/4/5: terminal count already reached before base_ns */
    bool null_count;

    /* write side */
    bool write_hi_next;
    uint8_t write_lo;
    /* read side */
    bool read_hi_next;
    bool count_latched;
    uint16_t latched_count;
    bool latched_hi_next;
    bool status_latched;
    uint8_t status;
};

struct pit {
    struct machine *m;
    struct pit_channel ch[3];
    uint8_t port_b; /* bits 0-3 as written to port 0x61 */
    struct vm_timer irq_timer; /* next channel 0 output rising edge (or backlog retry) */
    uint64_t periods_counted;  /* channel 0 periods since base_ns already accounted for */
    uint32_t ticks_pending;    /* channel 0 ticks owed to the guest */
    /* Time source; tests replace it to drive the counters deterministically. */
    uint64_t (*clock_ns)(void *opaque);
    void *clock_opaque;
};

/* A PIT section of a snapshot ("dev.pit"), decoded and validated (channels' base_ns left 0):
 * lets the kvm backend's in-kernel PIT take over a snapshot made with this model. */
struct pit_saved {
    bool present; /* false: the snapshot was taken with an in-kernel PIT */
    uint8_t port_b;
    struct pit_channel ch[3];
    uint64_t elapsed_ns[3]; /* time each running channel had been counting at the save */
    uint32_t ticks_pending; /* channel 0 ticks owed to the guest */
};
struct snap_reader;
/* Parse a "dev.pit" section payload of section version `version`. 0, or -EINVAL with the
 * reason in err. */
int pit_state_decode(struct snap_reader *r, uint32_t version, struct pit_saved *out, char *err, size_t errlen);
/* The value channel `ch`'s counting element held at the save (binary, 0..modulus-1). */
uint32_t pit_saved_count(const struct pit_saved *s, unsigned ch);

/* Take over KVM's in-kernel PIT: `kvm_pit_state2` is struct kvm_pit_state2 (KVM_GET_PIT2, passed
 * as bytes so this header does not need <linux/kvm.h>), `len` its size, `save_host_ns` the
 * saving host's CLOCK_MONOTONIC at the save (its channels' count_load_time are on that clock);
 * 0 (an older snapshot) restarts every channel's count at the import. Each channel carries on
 * with the same time elapsed since its count was loaded (periodic modes keep their phase);
 * flags' SPEAKER_DATA_ON becomes port 0x61 bit 1, HPET_LEGACY is ignored; channel 0's IRQ
 * timer is re-armed. Validates first: 0, or -EINVAL with the reason in err; changes `pit`
 * only when apply (and pit is not NULL). Lock held. */
int pit_import_kvm(struct pit *pit, const void *kvm_pit_state2, size_t len, int64_t save_host_ns, bool apply,
                   char *err, size_t errlen);

/* The registered device (tests call .init/.destroy directly). */
extern const struct device_desc pit_device;

/* Current output level of channel `ch` (0-2) at time now_ns. Lock held. */
bool pit_channel_output(struct pit *p, unsigned ch, uint64_t now_ns);

#endif
