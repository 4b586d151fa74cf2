/* kvm_xsnap: translation of an emu snapshot's i8259/i8254 state (and, from the emulator's APIC
 * platform, its IOAPIC and local APICs) into KVM's in-kernel irqchip and PIT (emu -> kvm
 * cross-backend restore). See kvm_xsnap.h.
 *
 * Mapping facts (Linux arch/x86/kvm/i8259.c and i8254.c semantics):
 *  - PIC: KVM's priority_add is the highest-priority IRQ, i.e. our lowest_priority + 1;
 *    last_irr is the input level used for edge detection (our `lines`); read_reg_select 1
 *    reads the ISR; init_state counts the same ICW steps as ours (1 = ICW2 ... 3 = ICW4).
 *    KVM has no single (no-ICW3) mode and no ICW3 register: both are dropped.
 *  - PIT: rw_mode/read_state/write_state use 1 = LSB, 2 = MSB, 3 = LSB next of a word,
 *    4 = MSB next of a word; count_latched holds the read state of the latch. KVM_SET_PIT2
 *    (re)loads every channel with `count` and restarts channel 0's timer from "now": the
 *    periodic modes keep their reload value (the phase within one period is lost), the
 *    one-shot modes get the remaining count so the pending expiry still happens on time.
 *    Channel 0 ticks owed to the guest under emu are not carried over.
 *  - IOAPIC/local APIC (APIC platform): exported by their models (ioapic_export_kvm,
 *    lapic_export_kvm via emu_apic_decode_for_kvm). IA32_APIC_BASE is set before KVM_SET_LAPIC
 *    so KVM reads the page in the right mode; the IOAPIC is set after the local APICs.
 */
#include "kvm_xsnap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "kvm_backend.h"
#include "vmm/emu/emu_apic.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define IOAPIC_REDIR_MASKED (1ULL << 16)
#define MSR_IA32_APICBASE 0x1b
#define APIC_LVT0_OFFSET 0x350
#define APIC_DM_EXTINT 0x700
#define APIC_LVT_MASKED 0x10000u
/* The PIT access states KVM uses (i8254.c RW_STATE_*; 1 = LSB is our access value 1). */
#define KVM_PIT_RW_MSB 2
#define KVM_PIT_RW_WORD0 3
#define KVM_PIT_RW_WORD1 4

void kvm_xsnap_pic_chip(const struct pic_saved_chip *c, bool is_master, struct kvm_pic_state *out)
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

static uint8_t pit_rw_state(uint8_t access, bool hi_next)
{
    if (access == 3) return hi_next ? KVM_PIT_RW_WORD1 : KVM_PIT_RW_WORD0;
    return access;
}

void kvm_xsnap_pit(const struct pit_saved *p, struct kvm_pit_state2 *out)
{
    for (unsigned i = 0; i < 3; i++) {
        const struct pit_channel *c = &p->ch[i];
        struct kvm_pit_channel_state *k = &out->channels[i];
        memset(k, 0, sizeof(*k));
        uint32_t count = c->reload;
        bool one_shot = c->mode != 2 && c->mode != 3;
        if (one_shot && c->running && !c->terminal_passed) {
            count = pit_saved_count(p, i); /* what is left until the terminal count */
            if (count == 0) count = 1;
        }
        k->count = count;
        k->latched_count = c->latched_count;
        if (c->count_latched)
            k->count_latched = c->access == 3 ? (c->latched_hi_next ? KVM_PIT_RW_MSB : KVM_PIT_RW_WORD0) : c->access;
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
}

/* Read and decode one of the emulated devices' sections. 0 if absent from the file. */
static int read_section(struct snap_file *sf, const char *name, uint8_t **data, const struct snap_section_info **s,
                        char *err, size_t errlen)
{
    *data = NULL;
    *s = snap_file_find(sf, name);
    if (!*s) return 0;
    int r = snap_file_read(sf, *s, data);
    if (r) snprintf(err, errlen, "snapshot: reading section '%s' failed", name);
    return r;
}

static int fail_ioctl(const char *what, char *err, size_t errlen)
{
    int e = errno;
    snprintf(err, errlen, "kvm-irqchip: taking over the emulated interrupt controllers: %s: %s", what, strerror(e));
    return -e;
}

/* IA32_APIC_BASE as the host sets it (any mode transition allowed). */
static int set_apic_base(int fd, uint64_t value)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e;
    } b;
    memset(&b, 0, sizeof(b));
    b.hdr.nmsrs = 1;
    b.e.index = MSR_IA32_APICBASE;
    b.e.data = value;
    int n = ioctl(fd, KVM_SET_MSRS, &b);
    if (n == 1) return 0;
    if (n >= 0) errno = EINVAL;
    return -1;
}

/* The APIC platform's local APICs and IOAPIC (apic present) or, for the PIC platform, LINT0
 * passing the PIC's INTR and a masked IOAPIC. */
static int load_apics(struct machine *m, const struct emu_apic_kvm_state *apic, char *err, size_t errlen)
{
    for (unsigned i = 0; i < m->ncpus; i++) {
        int fd = kvm_vcpu_fd(&m->vcpus[i]);
        if (fd < 0) {
            errno = ENODEV;
            return fail_ioctl("vCPU", err, errlen);
        }
        if (apic->present) {
            /* IA32_APIC_BASE first: KVM interprets the page in the APIC's current mode
             * (x2APIC: the ID and LDR are its own, ICR/ICR2 are joined into one register),
             * and switching to x2APIC afterwards would re-derive the ID and LDR but leave
             * the xAPIC ICR layout. The vCPU state's later KVM_SET_SREGS finds it unchanged. */
            if (set_apic_base(fd, apic->apic_bases[i]) < 0) return fail_ioctl("KVM_SET_MSRS (IA32_APIC_BASE)", err, errlen);
            if (ioctl(fd, KVM_SET_LAPIC, &apic->lapics[i]) < 0) return fail_ioctl("KVM_SET_LAPIC", err, errlen);
            continue;
        }
        /* The PIC's INTR reaches vCPU 0 through its local APIC's LINT0 in ExtINT mode (KVM
         * also accepts it while the APIC is globally disabled; vmd leaves IA32_APIC_BASE as
         * the snapshot has it). The other vCPUs keep LINT0 masked. */
        struct kvm_lapic_state lapic;
        if (ioctl(fd, KVM_GET_LAPIC, &lapic) < 0) return fail_ioctl("KVM_GET_LAPIC", err, errlen);
        uint32_t lvt0 = i == 0 ? APIC_DM_EXTINT : APIC_LVT_MASKED;
        memcpy(&lapic.regs[APIC_LVT0_OFFSET], &lvt0, sizeof(lvt0));
        if (ioctl(fd, KVM_SET_LAPIC, &lapic) < 0) return fail_ioctl("KVM_SET_LAPIC", err, errlen);
    }
    /* The IOAPIC after the local APICs: KVM_SET_IRQCHIP delivers the asserted level inputs
     * that are due at once, and a later KVM_SET_LAPIC would overwrite their IRR bits (with
     * remote IRR left set, the line would wait for an EOI that never comes). */
    int vm_fd = kvm_machine_vm_fd(m);
    struct kvm_irqchip ioapic;
    memset(&ioapic, 0, sizeof(ioapic));
    ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    if (apic->present) {
        ioapic.chip.ioapic = apic->ioapic;
    } else {
        /* The guest never saw an IOAPIC: with its pins unmasked ISA IRQs would arrive twice. */
        if (ioctl(vm_fd, KVM_GET_IRQCHIP, &ioapic) < 0) return fail_ioctl("KVM_GET_IRQCHIP (IOAPIC)", err, errlen);
        for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS; i++) ioapic.chip.ioapic.redirtbl[i].bits |= IOAPIC_REDIR_MASKED;
    }
    if (ioctl(vm_fd, KVM_SET_IRQCHIP, &ioapic) < 0) return fail_ioctl("KVM_SET_IRQCHIP (IOAPIC)", err, errlen);
    return 0;
}

/* Load the translated state into the VM: PIC pair, PIT, then the local APICs and IOAPIC. */
static int load(struct machine *m, const struct pic_saved *pic, const struct pit_saved *pit,
                const struct emu_apic_kvm_state *apic, char *err, size_t errlen)
{
    int vm_fd = kvm_machine_vm_fd(m);
    for (unsigned i = 0; i < 2 && pic->present; i++) {
        struct kvm_irqchip chip;
        memset(&chip, 0, sizeof(chip));
        chip.chip_id = i == 0 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
        kvm_xsnap_pic_chip(&pic->chip[i], i == 0, &chip.chip.pic);
        if (ioctl(vm_fd, KVM_SET_IRQCHIP, &chip) < 0) return fail_ioctl("KVM_SET_IRQCHIP (PIC)", err, errlen);
    }
    if (pit->present) {
        struct kvm_pit_state2 ps;
        if (ioctl(vm_fd, KVM_GET_PIT2, &ps) < 0) return fail_ioctl("KVM_GET_PIT2", err, errlen);
        kvm_xsnap_pit(pit, &ps);
        if (ioctl(vm_fd, KVM_SET_PIT2, &ps) < 0) return fail_ioctl("KVM_SET_PIT2", err, errlen);
    }
    return load_apics(m, apic, err, errlen);
}

int kvm_xsnap_import(struct machine *m, struct snap_file *sf, bool apply, char *err, size_t errlen)
{
    const struct snap_section_info *pic_s, *pit_s, *apic_s;
    uint8_t *pic_data = NULL, *pit_data = NULL, *apic_data = NULL;
    struct pic_saved pic;
    struct pit_saved pit;
    struct emu_apic_kvm_state apic;
    memset(&pic, 0, sizeof(pic));
    memset(&pit, 0, sizeof(pit));
    memset(&apic, 0, sizeof(apic));
    /* The APIC platform's IOAPIC and local APICs, when the snapshot was taken on it. */
    int r = read_section(sf, "dev.apic", &apic_data, &apic_s, err, errlen);
    if (r) goto out;
    if (apic_s) {
        struct snap_reader ard = {.data = apic_data, .len = apic_s->length, .file = sf};
        r = emu_apic_decode_for_kvm(&ard, apic_s->version, &apic, err, errlen);
        if (r) goto out;
        if (apic.present && apic.ncpus != m->ncpus) {
            snprintf(err, errlen, "apic: snapshot has %u local APICs, this VM %u vCPUs", apic.ncpus, m->ncpus);
            r = -EINVAL;
            goto out;
        }
    }
    r = read_section(sf, "dev.pic", &pic_data, &pic_s, err, errlen);
    if (r) goto out;
    if (pic_s) {
        struct snap_reader rd = {.data = pic_data, .len = pic_s->length};
        r = pic_state_decode(&rd, pic_s->version, &pic, err, errlen);
        if (r) goto out;
    }
    if (!pic.present && !apic.present) goto out; /* no emulated interrupt controller to take over */
    r = read_section(sf, "dev.pit", &pit_data, &pit_s, err, errlen);
    if (r) goto out;
    if (pit_s) {
        struct snap_reader prd = {.data = pit_data, .len = pit_s->length};
        r = pit_state_decode(&prd, pit_s->version, &pit, err, errlen);
        if (r) goto out;
    }
    if (kvm_machine_vm_fd(m) < 0) {
        snprintf(err, errlen, "kvm-irqchip: the machine has no KVM VM to load the emulated interrupt controllers into");
        r = -ENODEV;
        goto out;
    }
    if (apply) {
        r = load(m, &pic, &pit, &apic, err, errlen);
        if (r) goto out;
        log_info("snapshot: taken under the %s backend; its %s state now drives KVM's in-kernel irqchip",
                 sf->backend[0] ? sf->backend : "emu",
                 apic.present ? "IOAPIC, local APIC, i8259 and i8254" : "i8259/i8254");
    }
    r = 1;
out:
    emu_apic_kvm_state_free(&apic);
    free(pic_data);
    free(pit_data);
    free(apic_data);
    return r;
}
