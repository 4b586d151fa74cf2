/* lapic: the local APIC of one emulated vCPU (xAPIC MMIO page and x2APIC MSRs), for the emu
 * backend's APIC platform.
 *
 * Modelled: ID, version, TPR/PPR/APR, EOI (with a broadcast to the IOAPIC for level-triggered
 * vectors), LDR/DFR, SVR (software enable), ISR/TMR/IRR, ESR, ICR (fixed delivery to self, the
 * "self" and "all including self" shorthands and x2APIC SELF_IPI; other destinations are dropped
 * since the emulator runs one vCPU), the LVTs (timer, LINT0 with ExtINT for the i8259's INTR,
 * LINT1, error, thermal, perf counters held as plain registers), the timer in one-shot, periodic
 * and TSC-deadline modes with the divide configuration, and IA32_APIC_BASE transitions
 * (disabled, xAPIC, x2APIC).
 *
 * Threads and locking: every call is made with the machine's dev_lock held (the vCPU thread for
 * MMIO/MSR accesses and interrupt acknowledge; device threads delivering IOAPIC or MSI
 * interrupts; the timer list's callbacks).
 */
#ifndef VMD_DEVICES_LAPIC_H
#define VMD_DEVICES_LAPIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/irqchip.h"
#include "vmm/timer.h"

#define LAPIC_DEFAULT_BASE 0xfee00000ULL
#define APIC_BASE_BSP (1ULL << 8)
#define APIC_BASE_EXTD (1ULL << 10) /* x2APIC mode */
#define APIC_BASE_ENABLE (1ULL << 11)

#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MSR_X2APIC_FIRST 0x800
#define MSR_X2APIC_LAST 0x8ff

struct lapic;
struct snap_buf;
struct snap_reader;

struct lapic_host {
    void *opaque;
    /* An interrupt may have become deliverable (IRR set, timer fired): wake the vCPU. */
    void (*kick)(void *opaque);
    /* EOI of a vector whose TMR bit was set (level-triggered): tell the IOAPIC. */
    void (*eoi_broadcast)(void *opaque, uint8_t vector);
    /* The guest's TSC now, and its rate, for the TSC-deadline timer. */
    uint64_t (*tsc_now)(void *opaque);
    uint64_t tsc_khz;
    /* The clock timers run on (clock_now_ns unless a test swaps it) and the list they live in. */
    uint64_t (*clock_ns)(void *opaque);
    struct timer_list *timers;
};

/* A local APIC with APIC ID `id`, at power-on state: IA32_APIC_BASE = 0xFEE00000 | enable
 * (| BSP for id 0), software-disabled (SVR 0xFF), every LVT masked except the BSP's LINT0, which
 * is ExtINT (virtual wire, as KVM resets it). NULL on ENOMEM. */
struct lapic *lapic_create(const struct lapic_host *host, uint32_t id);
void lapic_destroy(struct lapic *a);
/* Back to the power-on state (INIT / machine reset). */
void lapic_reset(struct lapic *a);

/* IA32_APIC_BASE. set returns false for a value or transition the SDM says raises #GP
 * (reserved bits, x2APIC -> xAPIC without disabling first, enabling x2APIC while disabled). */
uint64_t lapic_get_base(const struct lapic *a);
bool lapic_set_base(struct lapic *a, uint64_t value);
/* The task-priority register (CR8 is its bits 7:4). */
uint32_t lapic_get_tpr(const struct lapic *a);
/* Load IA32_APIC_BASE as a snapshot had it: no transition checks, no state reset. */
void lapic_load_base(struct lapic *a, uint64_t value);

/* The guest TSC's rate changed (a restored guest keeps the rate it had): re-arm a TSC deadline. */
void lapic_set_tsc_khz(struct lapic *a, uint64_t tsc_khz);

/* Whether the APIC is globally enabled (IA32_APIC_BASE bit 11); when it is not, the i8259's
 * INTR goes to the CPU directly as on a PIC-only machine. */
bool lapic_enabled(const struct lapic *a);
/* Whether the xAPIC MMIO page claims guest-physical address gpa (enabled, not x2APIC, gpa in
 * the 4 KiB page at the base). */
bool lapic_mmio_claims(const struct lapic *a, uint64_t gpa);
/* MMIO access at `offset` (0..0xfff) of the page; sizes 1-8 as the emulator issues them. Reads
 * of unimplemented offsets return 0, writes to them are ignored (an ESR bit where the SDM says so). */
void lapic_mmio_read(struct lapic *a, uint32_t offset, void *data, unsigned size);
void lapic_mmio_write(struct lapic *a, uint32_t offset, const void *data, unsigned size);
/* x2APIC MSRs (0x800-0x8ff) and IA32_TSC_DEADLINE (0x6e0). false = #GP (x2APIC MSRs outside x2APIC
 * mode, reserved or read-only registers written, write-only ones read, reserved bits set). */
bool lapic_msr_read(struct lapic *a, uint32_t msr, uint64_t *value);
bool lapic_msr_write(struct lapic *a, uint32_t msr, uint64_t value);

/* A fixed-delivery interrupt for `vector` arrives (IOAPIC entry, MSI, IPI): set its IRR bit (and
 * TMR when level-triggered) and kick. Vectors 0-15 are illegal: they set ESR's receive-illegal
 * bit instead. Dropped while the APIC is disabled (hardware or software). */
void lapic_set_irq(struct lapic *a, uint8_t vector, bool level);
/* Whether LINT0 passes the i8259's INTR (APIC hardware-disabled, or LVT0 unmasked with ExtINT
 * delivery): the vCPU then takes PIC interrupts through the ExtINT path (the PIC supplies the
 * vector). */
bool lapic_accepts_pic_intr(const struct lapic *a);
/* The highest-priority pending vector that PPR lets through, or -1 (for HLT wake-up checks). */
int lapic_pending_vector(const struct lapic *a);
/* Interrupt acknowledge: move lapic_pending_vector() from IRR to ISR, update PPR, and return it
 * (or -1). The caller delivers it through the IDT. */
int lapic_ack(struct lapic *a);

/* State (vmm/irqchip.h): get, check, set (checked state whose initial_id is this APIC's), and
 * its codec in a snapshot (decode checks what it reads). */
void lapic_get_state(const struct lapic *a, struct irqchip_lapic *s);
int lapic_state_check(const struct irqchip_lapic *s, char *err, size_t errlen);
void lapic_set_state(struct lapic *a, const struct irqchip_lapic *s);
void lapic_state_encode(struct snap_buf *b, const struct irqchip_lapic *s);
int lapic_state_decode(struct snap_reader *r, struct irqchip_lapic *s, char *err, size_t errlen);

/* The state as the 1 KiB xAPIC register page, the form an in-kernel local APIC (KVM_GET/
 * SET_LAPIC without KVM_CAP_X2APIC_API) exchanges: xAPIC layout in both modes, so the ID sits
 * in bits 31:24 and, in x2APIC mode, ICR2 holds the 32-bit destination. IA32_APIC_BASE and
 * IA32_TSC_DEADLINE travel beside the page.
 *  - from: the timer's current count (0x390) is what is left of the running period; the page's
 *    own checks, then lapic_state_check. 0, or -EINVAL with the reason in err.
 *  - to: the current count is what is left of the running one-shot/periodic period, rounded up
 *    to whole divided ticks (its taker restarts the timer with that count, not TMICT); a
 *    stopped timer has an initial count of 0 (it would otherwise be restarted). Pending ESR
 *    errors not yet latched by an ESR write are not carried. */
int lapic_state_from_page(struct irqchip_lapic *s, uint32_t initial_id, const uint8_t regs[1024], uint64_t apic_base,
                          uint64_t tsc_deadline, char *err, size_t errlen);
void lapic_state_to_page(const struct irqchip_lapic *s, uint8_t regs[1024]);

#endif
