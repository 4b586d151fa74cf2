/* irqchip: the interrupt controllers' state, independent of the backend that runs them.
 *
 * One plain struct per controller: the i8259 pair, the i8254 PIT (with port 0x61), the IOAPIC
 * and each vCPU's local APIC. The emulator's device models (devices/pic.c, pit.c, ioapic.c,
 * lapic.c) take it and give it (pic_get_state, pic_set_state...); the kvm backend converts it to
 * and from KVM_GET/SET_IRQCHIP, KVM_GET/SET_PIT2 and KVM_GET/SET_LAPIC (vmm/kvm/kvm_irqchip.c).
 * Snapshots hold it in one section, "dev.irqchip", written by whichever backend ran the guest,
 * so a snapshot restores under either backend (docs/snapshots.md, "Cross-backend").
 *
 * Section "dev.irqchip", version 1: the PIC part, the PIT part and the APIC part, each led by its
 * presence flag (pic_state_encode, pit_state_encode, then u32 present, ioapic_state_encode, u32
 * vCPU count, lapic_state_encode per vCPU). These are, byte for byte, the payloads of the
 * sections "dev.pic", "dev.pit" and "dev.apic" that an emu snapshot of an older vmd (before
 * 2026-12-08) held, which is how those snapshots are still read; a kvm snapshot of those
 * versions held KVM's own structures in "dev.kvm-irqchip" (versions 1 and 2), which
 * vmm/kvm/kvm_irqchip.c converts.
 */
#ifndef VMD_IRQCHIP_H
#define VMD_IRQCHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IRQCHIP_STATE_VERSION 1
#define IRQCHIP_MAX_CPUS 64 /* MACHINE_MAX_CPUS */
#define IRQCHIP_IOAPIC_PINS 24
#define IRQCHIP_LAPIC_LVTS 7 /* CMCI, timer, thermal, perf, LINT0, LINT1, error */

/* One i8259. */
struct irqchip_pic_chip {
    uint8_t irr, isr, imr;
    uint8_t lines; /* input levels (edge detection) */
    uint8_t elcr;
    uint8_t vector_base; /* ICW2 & 0xF8 */
    uint8_t icw3;
    uint8_t lowest_priority; /* the IRQ with the lowest priority; (lowest + 1) & 7 is the highest */
    uint8_t init_step;       /* 0 ready, 1 expecting ICW2, 2 ICW3, 3 ICW4 */
    bool icw4_needed, single;
    bool auto_eoi, rotate_on_auto_eoi, special_fully_nested;
    bool read_isr, poll, special_mask;
};

struct irqchip_pic {
    struct irqchip_pic_chip chip[2]; /* 0 master, 1 slave (on master IRQ 2) */
};

/* One i8254 channel. */
struct irqchip_pit_channel {
    uint8_t mode;   /* 0-5 */
    uint8_t access; /* 1 lobyte, 2 hibyte, 3 lobyte then hibyte */
    bool bcd;
    bool gate;
    uint32_t reload; /* programmed count N: 1..65536 (10000 in BCD) */

    /* Counting element: while `running`, it held `base_count` at time `base_ns` and counts
     * down from there; when stopped it holds `base_count`. In struct irqchip_pit base_ns is 0
     * and elapsed_ns[] says how long the channel had been counting. */
    bool loaded; /* a count was written since the last control word */
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

struct irqchip_pit {
    uint8_t port_b; /* port 0x61 bits 0-3: channel 2 gate, speaker data */
    struct irqchip_pit_channel ch[3];
    uint64_t elapsed_ns[3]; /* time each running channel had been counting since base_count */
    uint32_t ticks_pending; /* channel 0 ticks owed to the guest (interrupts not yet delivered) */
};

struct irqchip_ioapic {
    uint8_t ioregsel;
    uint8_t id; /* 4 bits */
    uint32_t lines;    /* asserted inputs */
    uint32_t deferred; /* level pins whose delivery was postponed (interrupt-storm guard) */
    uint64_t redir[IRQCHIP_IOAPIC_PINS]; /* with remote IRR (bit 14); delivery status (12) clear */
};

/* One local APIC, as the xAPIC/x2APIC registers read, plus its timer's progress. */
struct irqchip_lapic {
    uint32_t initial_id; /* the APIC ID the vCPU was created with (its index) */
    uint64_t base;       /* IA32_APIC_BASE */
    uint32_t id, tpr, ldr, dfr, svr, esr, esr_pending, icr_lo, icr_hi;
    uint32_t lvt[IRQCHIP_LAPIC_LVTS];
    uint32_t timer_initial, dcr;
    uint32_t irr[8], isr[8], tmr[8];
    bool timer_running;
    uint64_t timer_remaining_ns; /* running one-shot/periodic: ns left in this period */
    uint64_t tsc_deadline;       /* TSC-deadline mode: armed value or 0 */
};

/* A whole machine's interrupt controllers. A controller the machine does not have is absent:
 * the emulator's PIC platform has no APIC part; every kvm machine has all three. */
struct irqchip_state {
    bool has_pic, has_pit, has_apic;
    struct irqchip_pic pic;
    struct irqchip_pit pit;
    struct irqchip_ioapic ioapic;   /* has_apic */
    unsigned ncpus;                 /* has_apic: local APICs that follow */
    struct irqchip_lapic lapic[IRQCHIP_MAX_CPUS];
};

struct machine;
struct snap_buf;
struct snap_reader;
struct snap_file;

/* The section's codec. decode validates every field as the models would (a state it accepts
 * can be set on them); 0, or -EINVAL with the reason in err. */
void irqchip_state_encode(struct snap_buf *b, const struct irqchip_state *s);
int irqchip_state_decode(struct snap_reader *r, uint32_t version, struct irqchip_state *s, char *err, size_t errlen);

/* The interrupt-controller state a snapshot file holds (its "dev.irqchip" section, or what an
 * older vmd wrote in its place). 0 (found false when the file holds none: a kvm snapshot of an
 * older vmd, whose state vmm/kvm/kvm_irqchip.c reads), or -errno with err. */
int irqchip_snapshot_state(struct snap_file *sf, struct irqchip_state *s, bool *found, char *err, size_t errlen);

/* Whether a machine of `backend` can restore snapshot sf (snapshot_check_backend) and its
 * interrupt-controller state is one this vmd reads: checked before a restore changes anything,
 * so that a file of an unknown or inconsistent version is refused with the reason in err
 * (-EINVAL, or -ENOTSUP for an unknown backend). If uses_apic is not NULL it is set to whether
 * the guest used the local APIC and IOAPIC (an emulator restoring it needs its APIC platform). */
int irqchip_snapshot_check(struct snap_file *sf, const char *backend, bool *uses_apic, char *err, size_t errlen);

/* Set the machine's interrupt controllers to `s` through its backend (validating first; with
 * apply false only validate). sf is the snapshot being restored (for the vCPUs' state), or NULL. */
int irqchip_restore_state(struct machine *m, const struct irqchip_state *s, struct snap_file *sf, bool apply,
                          char *err, size_t errlen);

#endif
