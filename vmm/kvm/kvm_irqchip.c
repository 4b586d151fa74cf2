/* kvm_irqchip: KVM's in-kernel irqchip <-> the neutral interrupt-controller state (see
 * kvm_irqchip.h). Mapping facts (Linux arch/x86/kvm/i8259.c, i8254.c, ioapic.c, lapic.c):
 *  - PIC: priority_add is the highest-priority IRQ; last_irr the input levels (edge
 *    detection); read_reg_select 1 reads the ISR; init_state counts the ICW steps as ours
 *    does. KVM has no single (no-ICW3) mode and no ICW3: the PC wiring (slave on IRQ 2) holds.
 *  - PIT: rw_mode is the access value; read_state/write_state use 1 LSB, 2 MSB, 3 LSB next of
 *    a word, 4 MSB next; count_latched holds the read state of the latch (0 none); mode 0xff is
 *    a channel never programmed since reset; count is the programmed count, counting since
 *    count_load_time (host CLOCK_MONOTONIC). KVM counts regardless of the gate except that a
 *    rising gate reloads modes 1, 2, 3 and 5.
 *  - IOAPIC: irr is the asserted state of each input (polarity ignored); delivery status is not
 *    modelled; remote IRR only means something on level entries.
 *  - Local APIC: the 1 KiB register page (devices/lapic.h) beside IA32_APIC_BASE and
 *    IA32_TSC_DEADLINE. IA32_APIC_BASE is set before KVM_SET_LAPIC so KVM reads the page in
 *    the right mode; the IOAPIC is set after the local APICs.
 */
#include "kvm_irqchip.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "kvm_backend.h"
#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define PIC_WANT_ICW4 3
#define PIC_CASCADE_IRQ 2
#define PIT_RW_LSB 1
#define PIT_RW_MSB 2
#define PIT_RW_WORD0 3
#define PIT_RW_WORD1 4
#define PIT_MODE_UNSET 0xff
#define PORTB_GATE2 0x01
#define PORTB_SPKR 0x02
#define REDIR_DELIVERY_STATUS (1ULL << 12)
#define REDIR_REMOTE_IRR (1ULL << 14)
#define REDIR_LEVEL (1ULL << 15)
#define REDIR_MASKED (1ULL << 16)
#define MSR_IA32_APICBASE 0x1b
#define APIC_LVT0_OFFSET 0x350
#define APIC_DM_EXTINT 0x700
#define APIC_LVT_MASKED 0x10000u

/* ---- conversions ---- */

int kvm_irqchip_pic_from(const struct kvm_pic_state *k, unsigned idx, struct irqchip_pic_chip *c, char *err,
                        size_t errlen)
{
    static const uint8_t elcr_mask[2] = {0xF8, 0xDE};
    static const char *const name[2] = {"master", "slave"};
    const char *bad = NULL;
    if (k->priority_add > 7) bad = "priority_add";
    else if (k->irq_base & 7) bad = "irq_base";
    else if (k->init_state > PIC_WANT_ICW4) bad = "init_state";
    else if (k->elcr & ~elcr_mask[idx]) bad = "elcr";
    else if ((k->read_reg_select | k->poll | k->special_mask | k->auto_eoi | k->rotate_on_auto_eoi |
              k->special_fully_nested_mode | k->init4) > 1)
        bad = "flag";
    if (bad) {
        snprintf(err, errlen, "pic: KVM's %s i8259 state is invalid (%s out of range)", name[idx], bad);
        return -EINVAL;
    }
    memset(c, 0, sizeof(*c));
    c->irr = k->irr;
    c->isr = k->isr;
    c->imr = k->imr;
    c->lines = k->last_irr;
    c->elcr = k->elcr;
    c->vector_base = k->irq_base;
    c->icw3 = idx == 0 ? 1u << PIC_CASCADE_IRQ : PIC_CASCADE_IRQ;
    c->lowest_priority = (uint8_t)((k->priority_add + 7) & 7);
    c->init_step = k->init_state;
    c->icw4_needed = k->init4;
    c->auto_eoi = k->auto_eoi;
    c->rotate_on_auto_eoi = k->rotate_on_auto_eoi;
    c->special_fully_nested = k->special_fully_nested_mode;
    c->read_isr = k->read_reg_select;
    c->poll = k->poll;
    c->special_mask = k->special_mask;
    return 0;
}

void kvm_irqchip_pic_to(const struct irqchip_pic_chip *c, bool is_master, struct kvm_pic_state *out)
{
    memset(out, 0, sizeof(*out));
    out->last_irr = c->lines;
    out->irr = c->irr;
    out->imr = c->imr;
    out->isr = c->isr;
    out->priority_add = (uint8_t)((c->lowest_priority + 1) & 7);
    out->irq_base = c->vector_base;
    out->read_reg_select = c->read_isr;
    out->poll = c->poll;
    out->special_mask = c->special_mask;
    out->init_state = c->init_step;
    out->auto_eoi = c->auto_eoi;
    out->rotate_on_auto_eoi = c->rotate_on_auto_eoi;
    out->special_fully_nested_mode = c->special_fully_nested;
    out->init4 = c->icw4_needed;
    out->elcr = c->elcr;
    out->elcr_mask = is_master ? 0xF8 : 0xDE; /* IRQ 0, 1, 2, 8 and 13 are edge-only */
}

static const char *pit_channel_invalid(const struct kvm_pit_channel_state *k)
{
    if (k->gate > 1) return "gate";
    if (k->mode == PIT_MODE_UNSET) return NULL;
    if (k->mode > 5) return "mode";
    if (k->rw_mode < PIT_RW_LSB || k->rw_mode > PIT_RW_WORD0) return "rw_mode";
    if (k->count < 1 || k->count > 65536) return "count";
    if (k->read_state < PIT_RW_LSB || k->read_state > PIT_RW_WORD1) return "read_state";
    if (k->write_state < PIT_RW_LSB || k->write_state > PIT_RW_WORD1) return "write_state";
    if (k->count_latched > PIT_RW_WORD0) return "count_latched";
    if (k->bcd > 1 || k->status_latched > 1) return "flag";
    return NULL;
}

int kvm_irqchip_pit_from(const struct kvm_pit_state2 *k, int64_t save_host_ns, struct irqchip_pit *s, char *err,
                        size_t errlen)
{
    if (save_host_ns < 0) {
        snprintf(err, errlen, "pit: KVM's PIT state has a negative save time (%lld)", (long long)save_host_ns);
        return -EINVAL;
    }
    for (unsigned i = 0; i < 3; i++) {
        const char *bad = pit_channel_invalid(&k->channels[i]);
        if (bad) {
            snprintf(err, errlen, "pit: KVM's PIT channel %u state is invalid (%s out of range)", i, bad);
            return -EINVAL;
        }
    }
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < 3; i++) {
        const struct kvm_pit_channel_state *kc = &k->channels[i];
        struct irqchip_pit_channel *c = &s->ch[i];
        if (kc->mode == PIT_MODE_UNSET) { /* as after reset: waiting for programming */
            memset(c, 0, sizeof(*c));
            c->access = 3;
            c->gate = kc->gate;
            c->reload = 65536;
            continue;
        }
        uint64_t ns = 0;
        if (save_host_ns > 0 && kc->count_load_time > 0 && kc->count_load_time < save_host_ns)
            ns = (uint64_t)save_host_ns - (uint64_t)kc->count_load_time;
        pit_state_channel_loaded(s, i, kc->mode, kc->rw_mode, kc->bcd, kc->count, kc->gate, ns);
        c->write_hi_next = kc->write_state == PIT_RW_WORD1;
        c->write_lo = kc->write_latch;
        c->read_hi_next = kc->read_state == PIT_RW_WORD1;
        c->count_latched = kc->count_latched != 0;
        c->latched_count = kc->latched_count;
        c->latched_hi_next = c->access == 3 && kc->count_latched == PIT_RW_MSB;
        c->status_latched = kc->status_latched;
        c->status = kc->status;
    }
    /* Port 0x61: channel 2's gate and the speaker data bit. */
    s->port_b = (uint8_t)((s->ch[2].gate ? PORTB_GATE2 : 0) | ((k->flags & KVM_PIT_FLAGS_SPEAKER_DATA_ON) ? PORTB_SPKR : 0));
    return 0;
}

static uint8_t pit_rw_state(uint8_t access, bool hi_next)
{
    if (access == 3) return hi_next ? PIT_RW_WORD1 : PIT_RW_WORD0;
    return access;
}

void kvm_irqchip_pit_to(const struct irqchip_pit *p, struct kvm_pit_state2 *out)
{
    for (unsigned i = 0; i < 3; i++) {
        const struct irqchip_pit_channel *c = &p->ch[i];
        struct kvm_pit_channel_state *k = &out->channels[i];
        memset(k, 0, sizeof(*k));
        uint32_t count = c->reload;
        bool one_shot = c->mode != 2 && c->mode != 3;
        if (one_shot && c->running && !c->terminal_passed) {
            count = pit_state_count(p, i); /* what is left until the terminal count */
            if (count == 0) count = 1;
        }
        k->count = count;
        k->latched_count = c->latched_count;
        if (c->count_latched) k->count_latched = c->access == 3 ? (c->latched_hi_next ? PIT_RW_MSB : PIT_RW_WORD0) : c->access;
        k->status_latched = c->status_latched;
        k->status = c->status;
        k->read_state = pit_rw_state(c->access, c->read_hi_next);
        k->write_state = pit_rw_state(c->access, c->write_hi_next);
        k->write_latch = c->write_lo;
        k->rw_mode = c->access;
        k->mode = c->mode;
        k->bcd = c->bcd;
        k->gate = c->gate;
    }
    out->flags = (out->flags & ~(uint32_t)KVM_PIT_FLAGS_SPEAKER_DATA_ON) |
                 ((p->port_b & PORTB_SPKR) ? KVM_PIT_FLAGS_SPEAKER_DATA_ON : 0);
}

int kvm_irqchip_ioapic_from(const struct kvm_ioapic_state *k, struct irqchip_ioapic *s, char *err, size_t errlen)
{
    if (k->base_address != IOAPIC_BASE) {
        snprintf(err, errlen, "ioapic: the guest moved its IOAPIC to 0x%llx, not supported (only 0x%llx)",
                 (unsigned long long)k->base_address, IOAPIC_BASE);
        return -EINVAL;
    }
    if (k->id > 0xf) {
        snprintf(err, errlen, "ioapic: KVM's IOAPIC has ID %u (4 bits expected)", k->id);
        return -EINVAL;
    }
    if (k->irr & ~((1u << IOAPIC_PINS) - 1)) {
        snprintf(err, errlen, "ioapic: KVM's IOAPIC has inputs asserted beyond pin %d (irr 0x%x)", IOAPIC_PINS - 1,
                 k->irr);
        return -EINVAL;
    }
    memset(s, 0, sizeof(*s));
    s->ioregsel = (uint8_t)k->ioregsel;
    s->id = (uint8_t)k->id;
    s->lines = k->irr;
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        uint64_t e = k->redirtbl[pin].bits & ~REDIR_DELIVERY_STATUS;
        if (!(e & REDIR_LEVEL)) e &= ~REDIR_REMOTE_IRR;
        s->redir[pin] = e;
    }
    return 0;
}

void kvm_irqchip_ioapic_to(const struct irqchip_ioapic *s, struct kvm_ioapic_state *k)
{
    memset(k, 0, sizeof(*k));
    k->base_address = IOAPIC_BASE;
    k->ioregsel = s->ioregsel;
    k->id = s->id;
    for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
        k->redirtbl[pin].bits = s->redir[pin] & ~REDIR_DELIVERY_STATUS;
        if (s->redir[pin] & REDIR_LEVEL) k->irr |= s->lines & (1u << pin);
    }
}

int kvm_irqchip_from_kvm(const struct kvm_irqchip_raw *k, struct irqchip_state *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (k->ncpus == 0 || k->ncpus > IRQCHIP_MAX_CPUS) {
        snprintf(err, errlen, "kvm-irqchip: %u local APICs (1 to %u expected)", k->ncpus, IRQCHIP_MAX_CPUS);
        return -EINVAL;
    }
    s->has_pic = s->has_pit = s->has_apic = true;
    int rc = 0;
    for (unsigned i = 0; !rc && i < 2; i++) rc = kvm_irqchip_pic_from(&k->pic[i], i, &s->pic.chip[i], err, errlen);
    if (!rc) rc = kvm_irqchip_pit_from(&k->pit, k->save_host_ns, &s->pit, err, errlen);
    if (!rc) rc = kvm_irqchip_ioapic_from(&k->ioapic, &s->ioapic, err, errlen);
    s->ncpus = k->ncpus;
    for (unsigned i = 0; !rc && i < k->ncpus; i++)
        rc = lapic_state_from_page(&s->lapic[i], i, (const uint8_t *)k->lapic[i].regs, k->apic_base[i],
                                   k->tsc_deadline[i], err, errlen);
    return rc;
}

void kvm_irqchip_to_kvm(const struct irqchip_state *s, struct kvm_irqchip_raw *k)
{
    if (s->has_pic)
        for (unsigned i = 0; i < 2; i++) kvm_irqchip_pic_to(&s->pic.chip[i], i == 0, &k->pic[i]);
    if (s->has_pit) kvm_irqchip_pit_to(&s->pit, &k->pit);
    if (!s->has_apic) return;
    kvm_irqchip_ioapic_to(&s->ioapic, &k->ioapic);
    k->ncpus = s->ncpus;
    for (unsigned i = 0; i < s->ncpus; i++) {
        lapic_state_to_page(&s->lapic[i], (uint8_t *)k->lapic[i].regs);
        k->apic_base[i] = s->lapic[i].base;
        k->tsc_deadline[i] = s->lapic[i].tsc_deadline;
    }
}

/* ---- the backend's irqchip_get / irqchip_set ---- */

static int fail_ioctl(const char *what, char *err, size_t errlen)
{
    int e = errno;
    if (err) snprintf(err, errlen, "kvm-irqchip: %s: %s", what, strerror(e));
    else log_error("kvm-irqchip: %s: %s", what, strerror(e));
    return -e;
}

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static int chip_get(int vm_fd, unsigned id, struct kvm_irqchip *c)
{
    memset(c, 0, sizeof(*c));
    c->chip_id = id;
    return ioctl(vm_fd, KVM_GET_IRQCHIP, c);
}

static int chip_set(int vm_fd, unsigned id, const void *state, size_t len)
{
    struct kvm_irqchip c;
    memset(&c, 0, sizeof(c));
    c.chip_id = id;
    memcpy(&c.chip, state, len);
    return ioctl(vm_fd, KVM_SET_IRQCHIP, &c);
}

/* One MSR of a vCPU, read or written as the host (any value KVM accepts). */
static int vcpu_msr(int fd, uint32_t index, uint64_t *value, bool write)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e;
    } b;
    memset(&b, 0, sizeof(b));
    b.hdr.nmsrs = 1;
    b.e.index = index;
    b.e.data = write ? *value : 0;
    int n = ioctl(fd, write ? KVM_SET_MSRS : KVM_GET_MSRS, &b);
    if (n != 1) {
        if (n >= 0) errno = EINVAL;
        return -1;
    }
    if (!write) *value = b.e.data;
    return 0;
}

int kvm_irqchip_get(struct machine *m, struct irqchip_state *s)
{
    int vm_fd = kvm_machine_vm_fd(m);
    if (vm_fd < 0) return -ENODEV;
    struct kvm_irqchip_raw *k = calloc(1, sizeof(*k));
    if (!k) return -ENOMEM;
    int rc = 0;
    struct kvm_irqchip c;
    for (unsigned i = 0; !rc && i < 3; i++) {
        if (chip_get(vm_fd, i, &c) < 0) rc = fail_ioctl("KVM_GET_IRQCHIP", NULL, 0);
        else if (i < 2) k->pic[i] = c.chip.pic;
        else k->ioapic = c.chip.ioapic;
    }
    if (!rc && ioctl(vm_fd, KVM_GET_PIT2, &k->pit) < 0) rc = fail_ioctl("KVM_GET_PIT2", NULL, 0);
    k->save_host_ns = monotonic_ns(); /* the clock of the PIT's count_load_time, now */
    k->ncpus = m->ncpus;
    for (unsigned i = 0; !rc && i < m->ncpus; i++) {
        int fd = kvm_vcpu_fd(&m->vcpus[i]);
        if (fd < 0) rc = -ENODEV;
        else if (ioctl(fd, KVM_GET_LAPIC, &k->lapic[i]) < 0) rc = fail_ioctl("KVM_GET_LAPIC", NULL, 0);
        else if (vcpu_msr(fd, MSR_IA32_APICBASE, &k->apic_base[i], false) < 0 ||
                 vcpu_msr(fd, MSR_IA32_TSC_DEADLINE, &k->tsc_deadline[i], false) < 0)
            rc = fail_ioctl("KVM_GET_MSRS (IA32_APIC_BASE, IA32_TSC_DEADLINE)", NULL, 0);
    }
    char err[256];
    if (!rc && (rc = kvm_irqchip_from_kvm(k, s, err, sizeof(err)))) log_error("kvm-irqchip: %s", err);
    free(k);
    return rc;
}

/* The local APICs and IOAPIC of s (has_apic), or, for a guest that ran on the emulator's PIC
 * platform, LINT0 passing the PIC's INTR and a masked IOAPIC. */
static int load_apics(struct machine *m, int vm_fd, const struct irqchip_state *s, const struct kvm_irqchip_raw *k,
                      char *err, size_t errlen)
{
    for (unsigned i = 0; i < m->ncpus; i++) {
        int fd = kvm_vcpu_fd(&m->vcpus[i]);
        if (fd < 0) {
            errno = ENODEV;
            return fail_ioctl("vCPU", err, errlen);
        }
        if (s->has_apic) {
            /* IA32_APIC_BASE first: KVM interprets the page in the APIC's current mode
             * (x2APIC: the ID and LDR are its own, ICR/ICR2 are joined into one register), and
             * switching to x2APIC afterwards would re-derive the ID and LDR but leave the xAPIC
             * ICR layout. The vCPU state's later KVM_SET_SREGS finds it unchanged. */
            uint64_t base = k->apic_base[i];
            if (vcpu_msr(fd, MSR_IA32_APICBASE, &base, true) < 0)
                return fail_ioctl("KVM_SET_MSRS (IA32_APIC_BASE)", err, errlen);
            if (ioctl(fd, KVM_SET_LAPIC, &k->lapic[i]) < 0) return fail_ioctl("KVM_SET_LAPIC", err, errlen);
            continue;
        }
        /* The PIC's INTR reaches vCPU 0 through its local APIC's LINT0 in ExtINT mode (KVM also
         * accepts it while the APIC is globally disabled). The other vCPUs keep LINT0 masked. */
        struct kvm_lapic_state lapic;
        if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0) return fail_ioctl("KVM_GET_LAPIC", err, errlen);
        uint32_t lvt0 = i == 0 ? APIC_DM_EXTINT : APIC_LVT_MASKED;
        memcpy(&lapic.regs[APIC_LVT0_OFFSET], &lvt0, sizeof(lvt0));
        if (ioctl(fd, KVM_SET_LAPIC, &lapic) < 0) return fail_ioctl("KVM_SET_LAPIC", err, errlen);
    }
    /* The IOAPIC after the local APICs: KVM_SET_IRQCHIP delivers the asserted level inputs that
     * are due at once, and a later KVM_SET_LAPIC would overwrite their IRR bits (with remote IRR
     * left set, the line would wait for an EOI that never comes). */
    struct kvm_irqchip io;
    if (s->has_apic) {
        io.chip.ioapic = k->ioapic;
    } else {
        /* The guest never saw an IOAPIC: with its pins unmasked ISA IRQs would arrive twice. */
        if (chip_get(vm_fd, KVM_IRQCHIP_IOAPIC, &io) < 0) return fail_ioctl("KVM_GET_IRQCHIP (IOAPIC)", err, errlen);
        for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS; i++) io.chip.ioapic.redirtbl[i].bits |= REDIR_MASKED;
    }
    if (chip_set(vm_fd, KVM_IRQCHIP_IOAPIC, &io.chip.ioapic, sizeof(io.chip.ioapic)) < 0)
        return fail_ioctl("KVM_SET_IRQCHIP (IOAPIC)", err, errlen);
    return 0;
}

int kvm_irqchip_set(struct machine *m, const struct irqchip_state *s, struct snap_file *sf, bool apply, char *err,
                    size_t errlen)
{
    int vm_fd = kvm_machine_vm_fd(m);
    if (vm_fd < 0) {
        snprintf(err, errlen, "kvm-irqchip: the machine has no KVM VM to load interrupt controllers into");
        return -ENODEV;
    }
    /* The state was checked when it was decoded (or converted from KVM), and every checked
     * state converts; the validation pass only needs the VM's PIT flags to be readable. */
    struct kvm_irqchip_raw *k = calloc(1, sizeof(*k));
    if (!k) return -ENOMEM;
    int rc = 0;
    if (s->has_pit && ioctl(vm_fd, KVM_GET_PIT2, &k->pit) < 0) rc = fail_ioctl("KVM_GET_PIT2", err, errlen);
    if (!rc) kvm_irqchip_to_kvm(s, k);
    if (!rc && !apply) goto out;
    for (unsigned i = 0; !rc && s->has_pic && i < 2; i++)
        if (chip_set(vm_fd, i, &k->pic[i], sizeof(k->pic[i])) < 0) rc = fail_ioctl("KVM_SET_IRQCHIP (PIC)", err, errlen);
    if (!rc && s->has_pit && ioctl(vm_fd, KVM_SET_PIT2, &k->pit) < 0) rc = fail_ioctl("KVM_SET_PIT2", err, errlen);
    if (!rc) rc = load_apics(m, vm_fd, s, k, err, errlen);
    if (!rc && sf && strcmp(sf->backend, "kvm"))
        log_info("snapshot: taken under the %s backend; its %s state now drives KVM's in-kernel irqchip",
                 sf->backend[0] ? sf->backend : "emu",
                 s->has_apic ? "IOAPIC, local APIC, i8259 and i8254" : "i8259/i8254");
out:
    free(k);
    return rc;
}

/* ---- kvmclock ("dev.kvm-clock") ----
 * Payload: u32 present (0 when the machine did not run the kvm backend: nothing follows), then
 * struct kvm_clock_data as KVM_GET_CLOCK gave it. Only its clock value is loaded back. */

#define KVM_CLOCK_STATE_VERSION 1

static int kvm_clock_save(struct machine *m, struct snap_buf *b)
{
    int vm_fd = kvm_machine_vm_fd(m);
    snap_put_u32(b, vm_fd >= 0);
    if (vm_fd < 0) return 0;
    struct kvm_clock_data clock;
    memset(&clock, 0, sizeof(clock));
    if (ioctl(vm_fd, KVM_GET_CLOCK, &clock) < 0) return fail_ioctl("KVM_GET_CLOCK", NULL, 0);
    snap_put(b, &clock, sizeof(clock));
    return 0;
}

static int set_clock(struct machine *m, const struct kvm_clock_data *saved, char *err, size_t errlen)
{
    int vm_fd = kvm_machine_vm_fd(m);
    if (vm_fd < 0) return 0; /* the emulator keeps its own time */
    struct kvm_clock_data c = {.clock = saved->clock}; /* no flags: set the clock value only */
    if (ioctl(vm_fd, KVM_SET_CLOCK, &c) < 0) return fail_ioctl("KVM_SET_CLOCK", err, errlen);
    return 0;
}

static int kvm_clock_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                             size_t errlen)
{
    if (version != KVM_CLOCK_STATE_VERSION) {
        snprintf(err, errlen, "kvm-clock: state version %u, this vmd reads %u", version, KVM_CLOCK_STATE_VERSION);
        return -EINVAL;
    }
    if (!snap_get_u32(r)) return 0;
    struct kvm_clock_data clock;
    snap_get(r, &clock, sizeof(clock));
    if (r->short_read || !apply) return 0; /* a short section is reported by the caller */
    return set_clock(m, &clock, err, errlen);
}

/* Snapshots of the emulator, and kvm ones of an older vmd (whose clock is in dev.kvm-irqchip). */
static int kvm_clock_restore_missing(struct machine *m, struct snap_file *sf, bool apply, char *err, size_t errlen)
{
    (void)m, (void)sf, (void)apply, (void)err, (void)errlen;
    return 0;
}

static const struct device_desc kvm_clock_desc = {
    .name = "kvm-clock",
    .level = DEVICE_LEVEL_CORE,
    .state_version = KVM_CLOCK_STATE_VERSION,
    .save = kvm_clock_save,
    .restore = kvm_clock_restore,
    .restore_missing = kvm_clock_restore_missing,
};
DEVICE_REGISTER(kvm_clock_desc)

/* ---- "dev.kvm-irqchip" of older vmd versions (restore only) ----
 * Payload: u32 present (0 when taken under another backend: nothing follows), u32 vCPU count,
 * the three struct kvm_irqchip (PIC master, PIC slave, IOAPIC), struct kvm_pit_state2, struct
 * kvm_clock_data, (version 2:) u64 host CLOCK_MONOTONIC ns at the save, then one struct
 * kvm_lapic_state per vCPU. IA32_APIC_BASE and IA32_TSC_DEADLINE come from the vCPU sections. */

static int old_kvm_irqchip_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply,
                                   char *err, size_t errlen)
{
    if (version < 1 || version > 2) {
        snprintf(err, errlen, "kvm-irqchip: state version %u, this vmd reads 1 and 2 (and dev.irqchip since)", version);
        return -EINVAL;
    }
    if (!snap_get_u32(r) || r->short_read) {
        if (r->file && !strcmp(r->file->backend, "kvm")) {
            snprintf(err, errlen,
                     "snapshot says it was taken under kvm but its section 'dev.kvm-irqchip' holds no in-kernel "
                     "interrupt controller state");
            return -EINVAL;
        }
        return 0; /* taken under the emulator: dev.pic... hold it */
    }
    struct kvm_irqchip_raw *k = calloc(1, sizeof(*k));
    struct irqchip_state *s = calloc(1, sizeof(*s));
    int rc = 0;
    if (!k || !s) {
        rc = -ENOMEM;
        goto out;
    }
    k->ncpus = snap_get_u32(r);
    if (k->ncpus == 0 || k->ncpus > IRQCHIP_MAX_CPUS) {
        snprintf(err, errlen, "kvm-irqchip: %u local APICs (1 to %u expected)", k->ncpus, IRQCHIP_MAX_CPUS);
        rc = -EINVAL;
        goto out;
    }
    struct kvm_irqchip chips[3];
    for (unsigned i = 0; i < 3; i++) {
        snap_get(r, &chips[i], sizeof(chips[i]));
        if (!r->short_read && chips[i].chip_id != i) {
            snprintf(err, errlen, "kvm-irqchip: interrupt controller %u has id %u", i, chips[i].chip_id);
            rc = -EINVAL;
            goto out;
        }
    }
    k->pic[0] = chips[0].chip.pic;
    k->pic[1] = chips[1].chip.pic;
    k->ioapic = chips[2].chip.ioapic;
    snap_get(r, &k->pit, sizeof(k->pit));
    struct kvm_clock_data clock;
    snap_get(r, &clock, sizeof(clock));
    if (version >= 2) k->save_host_ns = (int64_t)snap_get_u64(r);
    for (unsigned i = 0; i < k->ncpus; i++) snap_get(r, &k->lapic[i], sizeof(k->lapic[i]));
    if (r->short_read) {
        snprintf(err, errlen, "kvm-irqchip: section is shorter than its state");
        rc = -EINVAL;
        goto out;
    }
    for (unsigned i = 0; r->file && i < k->ncpus && i < m->ncpus; i++) {
        struct cpu_state cs;
        if ((rc = snap_file_cpu_state(r->file, i, &cs, err, errlen))) goto out;
        k->apic_base[i] = cs.apic_base;
        k->tsc_deadline[i] = cs.tsc_deadline;
    }
    if (!(rc = kvm_irqchip_from_kvm(k, s, err, errlen))) rc = irqchip_restore_state(m, s, r->file, apply, err, errlen);
    if (!rc && apply) rc = set_clock(m, &clock, err, errlen);
out:
    free(k);
    free(s);
    return rc;
}

static int old_kvm_irqchip_missing(struct machine *m, struct snap_file *sf, bool apply, char *err, size_t errlen)
{
    (void)m, (void)sf, (void)apply, (void)err, (void)errlen;
    return 0; /* a snapshot of this vmd: dev.irqchip holds the state */
}

static const struct device_desc old_kvm_irqchip_desc = {
    .name = "kvm-irqchip",
    .level = DEVICE_LEVEL_CORE,
    .restore = old_kvm_irqchip_restore,
    .restore_missing = old_kvm_irqchip_missing,
};
DEVICE_REGISTER(old_kvm_irqchip_desc)
