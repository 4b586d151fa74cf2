/* Unit tests for vmm/kvm/kvm_irqchip.c: an emu machine's i8259/i8254, programmed through their
 * ports and saved into a snapshot file ("dev.irqchip", or the separate sections an older vmd
 * wrote), restored into a KVM machine's in-kernel irqchip and PIT, read back with
 * KVM_GET_IRQCHIP / KVM_GET_PIT2 / KVM_GET_LAPIC; the emulator's APIC platform (a local APIC
 * and IOAPIC programmed through their registers) restored into KVM's in-kernel IOAPIC and local
 * APIC; and the KVM state read back as neutral state. Skips when /dev/kvm is absent, except the
 * field mapping, which needs no KVM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "device_test_machine.h"
#include "devices/ioapic.h"
#include "devices/pit.h"
#include "guest_builder.h"
#include "kvm_rig.h"
#include "devices/lapic.h"
#include "devices/pic.h"
#include "vmm/irqchip.h"
#include "vmm/kvm/kvm_backend.h"
#include "vmm/kvm/kvm_irqchip.h"
#include "vmm/snapshot.h"

#define CH0_RELOAD 11932 /* 100 Hz */
#define CH2_RELOAD 4096
#define PIT_NS(ticks) ((uint64_t)(ticks) * 1000000000ULL / PIT_FREQ_HZ)

struct fixture {
    struct device_test_machine emu;
    struct kvm_rig *rig;
    char path[64];
    char skip_reason[256];
};

static const struct device_desc *device_named(const char *name)
{
    for (unsigned i = 0; i < devices_count(); i++)
        if (!strcmp(device_at(i)->name, name)) return device_at(i);
    return NULL;
}

/* Program the emulated PIC and PIT the way a guest kernel would. */
static void program_emu(struct device_test_machine *t)
{
    /* Master: ICW1 (edge, cascade, ICW4), vectors 0x30, slave on IRQ2, 8086 mode. */
    dtm_outb(t, 0x20, 0x11);
    dtm_outb(t, 0x21, 0x30);
    dtm_outb(t, 0x21, 0x04);
    dtm_outb(t, 0x21, 0x01);
    dtm_outb(t, 0x21, 0xFA); /* IRQ0 and the cascade unmasked */
    /* Slave: vectors 0x38, cascade identity 2, auto-EOI. */
    dtm_outb(t, 0xA0, 0x11);
    dtm_outb(t, 0xA1, 0x38);
    dtm_outb(t, 0xA1, 0x02);
    dtm_outb(t, 0xA1, 0x03);
    dtm_outb(t, 0xA1, 0xEF); /* IRQ12 unmasked */
    dtm_outb(t, 0x4D0, 0x20); /* IRQ5 level-triggered */
    dtm_outb(t, 0x4D1, 0x0E); /* IRQ9-11 level-triggered */
    dtm_outb(t, 0x20, 0x0B); /* OCW3: reads return the master's ISR */
    pic_set_irq(t->m.pic, 12, 1); /* a request latched on the slave */
    /* PIT channel 0: rate generator at 100 Hz; channel 2: one-shot 4096 ticks, gate on. */
    dtm_outb(t, 0x43, 0x34);
    dtm_outb(t, 0x40, CH0_RELOAD & 0xFF);
    dtm_outb(t, 0x40, CH0_RELOAD >> 8);
    dtm_outb(t, 0x61, 0x01);
    dtm_outb(t, 0x43, 0xB0);
    dtm_outb(t, 0x42, CH2_RELOAD & 0xFF);
    dtm_outb(t, 0x42, CH2_RELOAD >> 8);
    dtm_advance(t, PIT_NS(1000)); /* channel 2 has about 3096 ticks to go */
}

/* A local APIC and IOAPIC as the APIC platform has them (see program_apic_platform). */
struct apic_platform {
    struct lapic *lapic;
    struct ioapic *io;
    struct timer_list timers; /* never run: what the IOAPIC postpones stays postponed */
};

/* The emu machine's interrupt controllers as neutral state: its PIC and PIT, and the APIC
 * platform's IOAPIC and local APIC when `apic` is given. */
static void emu_state(struct fixture *f, const struct apic_platform *apic, struct irqchip_state *s)
{
    memset(s, 0, sizeof(*s));
    s->has_pic = s->has_pit = true;
    pic_get_state(f->emu.m.pic, &s->pic);
    pit_get_state(f->emu.m.pit, &s->pit);
    if (!apic) return;
    s->has_apic = true;
    ioapic_get_state(apic->io, &s->ioapic);
    s->ncpus = 1;
    lapic_get_state(apic->lapic, &s->lapic[0]);
}

/* The three parts of the state's encoding: [0] PIC, [1] PIT, [2] APIC. */
static void encode_parts(const struct irqchip_state *s, struct snap_buf part[3])
{
    for (unsigned i = 0; i < 3; i++) snap_buf_init(&part[i]);
    pic_state_encode(&part[0], &s->pic);
    pit_state_encode(&part[1], &s->pit);
    snap_put_u32(&part[2], s->has_apic);
    if (s->has_apic) {
        ioapic_state_encode(&part[2], &s->ioapic);
        snap_put_u32(&part[2], s->ncpus);
        lapic_state_encode(&part[2], &s->lapic[0]);
    }
    for (unsigned i = 0; i < 3; i++) assert_false(part[i].failed);
}

/* Write a snapshot file holding the emu machine's interrupt controllers (no cpu/ram sections:
 * the test restores them only), as "dev.irqchip" or, `legacy`, as the sections "dev.pic",
 * "dev.pit", "dev.apic" and "dev.kvm-irqchip" (absent) of an older vmd. part[] may be changed
 * by `corrupt` (NULL: none) before it is written. */
static void write_snapshot_with(struct fixture *f, const struct apic_platform *apic, bool legacy,
                                void (*corrupt)(struct snap_buf part[3]))
{
    struct irqchip_state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    emu_state(f, apic, s);
    struct snap_buf part[3];
    encode_parts(s, part);
    free(s);
    if (corrupt) corrupt(part);
    char err[256] = "";
    struct snap_writer w;
    assert_int_equal(snap_writer_open(&w, f->path, "emu", err, sizeof(err)), 0);
    if (legacy) {
        static const char *const names[3] = {"dev.pic", "dev.pit", "dev.apic"};
        for (unsigned i = 0; i < 3; i++)
            assert_int_equal(snap_write_section(&w, names[i], 1, part[i].data, part[i].len), 0);
        uint32_t absent = 0;
        assert_int_equal(snap_write_section(&w, "dev.kvm-irqchip", 2, &absent, sizeof(absent)), 0);
    } else {
        struct snap_buf all;
        snap_buf_init(&all);
        for (unsigned i = 0; i < 3; i++) snap_put(&all, part[i].data, part[i].len);
        assert_int_equal(snap_write_section(&w, "dev.irqchip", IRQCHIP_STATE_VERSION, all.data, all.len), 0);
        snap_buf_free(&all);
    }
    for (unsigned i = 0; i < 3; i++) snap_buf_free(&part[i]);
    assert_int_equal(snap_writer_close(&w, err, sizeof(err)), 0);
}

static void write_snapshot(struct fixture *f, bool legacy) { write_snapshot_with(f, NULL, legacy, NULL); }

/* Run the irqchip device's restore against the snapshot, as snapshot_restore does (its
 * restore_missing when the file has no "dev.irqchip"). */
static int restore_irqchip(struct fixture *f, bool apply, char *err, size_t errlen)
{
    struct snap_file sf;
    assert_int_equal(snap_file_open(&sf, f->path, err, errlen), 0);
    const struct device_desc *d = device_named("irqchip");
    assert_non_null(d);
    const struct snap_section_info *s = snap_file_find(&sf, "dev.irqchip");
    int r;
    if (s) {
        uint8_t *data;
        assert_int_equal(snap_file_read(&sf, s, &data), 0);
        struct snap_reader rd = {.data = data, .len = s->length, .file = &sf};
        r = d->restore(&f->rig->m, &rd, s->version, apply, err, errlen);
        free(data);
    } else {
        r = d->restore_missing(&f->rig->m, &sf, apply, err, errlen);
    }
    snap_file_close(&sf);
    return r;
}

static struct kvm_pic_state get_pic(struct fixture *f, unsigned chip_id)
{
    struct kvm_irqchip c;
    memset(&c, 0, sizeof(c));
    c.chip_id = chip_id;
    assert_int_equal(ioctl(kvm_machine_vm_fd(&f->rig->m), KVM_GET_IRQCHIP, &c), 0);
    return c.chip.pic;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->rig = kvm_rig_new(GB_MIN_RAM, f->skip_reason, sizeof(f->skip_reason));
    dtm_setup(&f->emu, 1 << 20, &dtm_backend_pic, &pic_device);
    char err[256] = "";
    if (pit_device.init(&f->emu.m, err, sizeof(err)) < 0) fail_msg("pit init: %s", err);
    f->emu.m.pit->clock_ns = dtm_clock;
    f->emu.m.pit->clock_opaque = &f->emu;
    snprintf(f->path, sizeof(f->path), "/tmp/vmd-xsnap-%d.snap", (int)getpid());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pit_device.destroy(&f->emu.m);
    dtm_teardown(&f->emu, &pic_device);
    if (f->rig) kvm_rig_free(f->rig);
    unlink(f->path);
    free(f);
    return 0;
}

static struct fixture *fixture_or_skip(void **state)
{
    struct fixture *f = *state;
    if (!f->rig) {
        print_message("skipped: %s\n", f->skip_reason);
        skip();
    }
    return f;
}

/* The translated PIC, PIT, IOAPIC and LAPIC state is what KVM reports afterwards. */
static void check_emu_pic_pit_in_kvm(void **state, bool legacy)
{
    struct fixture *f = fixture_or_skip(state);
    program_emu(&f->emu);
    write_snapshot(f, legacy);
    char err[256] = "";
    struct kvm_pic_state before = get_pic(f, KVM_IRQCHIP_PIC_MASTER);
    /* Validation alone changes nothing. */
    assert_int_equal(restore_irqchip(f, false, err, sizeof(err)), 0);
    struct kvm_pic_state unchanged = get_pic(f, KVM_IRQCHIP_PIC_MASTER);
    assert_memory_equal(&before, &unchanged, sizeof(before));
    assert_int_equal(restore_irqchip(f, true, err, sizeof(err)), 0);

    struct kvm_pic_state master = get_pic(f, KVM_IRQCHIP_PIC_MASTER);
    struct kvm_pic_state slave = get_pic(f, KVM_IRQCHIP_PIC_SLAVE);
    assert_int_equal(master.irq_base, 0x30);
    assert_int_equal(master.imr, 0xFA);
    assert_int_equal(master.elcr, 0x20);
    assert_int_equal(master.init4, 1);
    assert_int_equal(master.init_state, 0);
    assert_int_equal(master.read_reg_select, 1);
    assert_int_equal(master.priority_add, 0);
    assert_int_equal(master.auto_eoi, 0);
    assert_int_equal(slave.irq_base, 0x38);
    assert_int_equal(slave.imr, 0xEF);
    assert_int_equal(slave.elcr, 0x0E);
    assert_int_equal(slave.auto_eoi, 1);
    assert_int_equal(slave.irr & 0x10, 0x10); /* IRQ12's pending request came along */
    assert_int_equal(slave.last_irr & 0x10, 0x10);

    struct kvm_pit_state2 pit;
    assert_int_equal(ioctl(kvm_machine_vm_fd(&f->rig->m), KVM_GET_PIT2, &pit), 0);
    assert_int_equal(pit.channels[0].mode, 2);
    assert_int_equal(pit.channels[0].count, CH0_RELOAD);
    assert_int_equal(pit.channels[0].rw_mode, 3);
    assert_int_equal(pit.channels[0].read_state, 3);
    assert_int_equal(pit.channels[2].mode, 0);
    assert_int_equal(pit.channels[2].gate, 1);
    /* One-shot channel 2 continues with what was left: 4096 - 1000 ticks (give or take one). */
    assert_in_range(pit.channels[2].count, CH2_RELOAD - 1001, CH2_RELOAD - 999);

    struct kvm_irqchip ioapic;
    memset(&ioapic, 0, sizeof(ioapic));
    ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    assert_int_equal(ioctl(kvm_machine_vm_fd(&f->rig->m), KVM_GET_IRQCHIP, &ioapic), 0);
    for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS; i++) assert_true(ioapic.chip.ioapic.redirtbl[i].fields.mask);

    struct kvm_lapic_state lapic;
    assert_int_equal(ioctl(kvm_vcpu_fd(&f->rig->m.vcpus[0]), KVM_GET_LAPIC, &lapic), 0);
    uint32_t lvt0;
    memcpy(&lvt0, &lapic.regs[0x350], 4);
    assert_int_equal(lvt0 & 0x10700, 0x700); /* LINT0 unmasked, ExtINT: the PIC reaches vCPU 0 */
}

static void test_emu_pic_pit_restore_into_kvm(void **state) { check_emu_pic_pit_in_kvm(state, false); }
static void test_old_emu_snapshot_into_kvm(void **state) { check_emu_pic_pit_in_kvm(state, true); }

static void bad_pic_priority(struct snap_buf part[3])
{
    assert_int_equal(part[0].len, 21);
    part[0].data[1 + 7] = 9; /* master lowest_priority beyond IRQ 7 */
}

/* A malformed PIC state is refused at validation, and KVM is left alone. */
static void test_bad_pic_section_refused(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    program_emu(&f->emu);
    write_snapshot_with(f, NULL, false, bad_pic_priority);
    struct kvm_pic_state before = get_pic(f, KVM_IRQCHIP_PIC_MASTER);
    char err[256] = "";
    assert_int_equal(restore_irqchip(f, false, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "pic state is invalid"));
    struct kvm_pic_state after = get_pic(f, KVM_IRQCHIP_PIC_MASTER);
    assert_memory_equal(&before, &after, sizeof(before));
}

/* ---- the emulator's APIC platform -> KVM ---- */

/* The APIC platform's models wired as emu_apic.c wires them (IOAPIC messages set the local
 * APIC's IRR), on the host clock with no timer list. */

static uint64_t platform_clock(void *opaque)
{
    (void)opaque;
    return 1000;
}

static void platform_deliver(void *opaque, const struct ioapic_msg *msg)
{
    struct apic_platform *p = opaque;
    lapic_set_irq(p->lapic, msg->vector, msg->level);
}

static void ioapic_reg(struct ioapic *io, uint8_t index, uint32_t v)
{
    ioapic_mmio_write(io, 0x00, index, 4);
    ioapic_mmio_write(io, 0x10, v, 4);
}

static void ioapic_entry(struct ioapic *io, unsigned pin, uint64_t e)
{
    ioapic_reg(io, (uint8_t)(0x11 + 2 * pin), (uint32_t)(e >> 32));
    ioapic_reg(io, (uint8_t)(0x10 + 2 * pin), (uint32_t)e);
}

static void lapic_wr(struct lapic *a, uint32_t off, uint32_t v) { lapic_mmio_write(a, off, &v, 4); }

#define TIMER_COUNT 100000000u /* at /16: 1.6 s */

/* Program the platform as a guest kernel would; x2apic switches the local APIC to x2APIC. */
static void program_apic_platform(struct apic_platform *p, bool x2apic)
{
    struct lapic_host lh = {0};
    p->lapic = lapic_create(&lh, 0);
    memset(&p->timers, 0, sizeof(p->timers));
    struct ioapic_host ih = {.opaque = p, .deliver = platform_deliver, .clock_ns = platform_clock, .timers = &p->timers};
    p->io = ioapic_create(&ih);
    assert_non_null(p->lapic);
    assert_non_null(p->io);
    struct lapic *a = p->lapic;
    if (x2apic) {
        assert_true(lapic_set_base(a, LAPIC_DEFAULT_BASE | APIC_BASE_BSP | APIC_BASE_ENABLE | APIC_BASE_EXTD));
        assert_true(lapic_msr_write(a, 0x80f, 0x1ff));
        assert_true(lapic_msr_write(a, 0x808, 0x20));
        assert_true(lapic_msr_write(a, 0x835, 0x10700));
        assert_true(lapic_msr_write(a, 0x836, 0x400));
        assert_true(lapic_msr_write(a, 0x837, 0xfe));
        assert_true(lapic_msr_write(a, 0x830, 7ULL << 32 | 0x4031)); /* to APIC 7: dropped */
        assert_true(lapic_msr_write(a, 0x83e, 0x3));
        assert_true(lapic_msr_write(a, 0x832, 0xec));
        assert_true(lapic_msr_write(a, 0x838, TIMER_COUNT));
    } else {
        lapic_wr(a, 0xf0, 0x1ff);
        lapic_wr(a, 0x80, 0x20);
        lapic_wr(a, 0xd0, 0x01000000);
        lapic_wr(a, 0x350, 0x10700); /* LINT0 masked: the guest uses the IOAPIC, not the PIC */
        lapic_wr(a, 0x360, 0x400);
        lapic_wr(a, 0x370, 0xfe);
        lapic_wr(a, 0x3e0, 0x3); /* /16 */
        lapic_wr(a, 0x320, 0xec); /* one-shot */
        lapic_wr(a, 0x380, TIMER_COUNT);
    }
    /* Pin 12, level, acknowledged until the storm guard postponed its redelivery: asserted,
     * unmasked, remote IRR clear, nothing in the local APIC. Due at the restore. */
    ioapic_entry(p->io, 12, (1ULL << 15) | 0x63);
    ioapic_set_irq(p->io, 12, 1);
    unsigned eois = 0;
    while (lapic_ack(a) == 0x63) {
        if (x2apic) assert_true(lapic_msr_write(a, 0x80b, 0));
        else lapic_wr(a, 0xb0, 0);
        ioapic_eoi(p->io, 0x63);
        assert_true(++eois < 100000);
    }
    assert_int_equal(lapic_pending_vector(a), -1);
    ioapic_reg(p->io, 0x00, 0x02000000); /* IOAPIC ID 2 */
    ioapic_entry(p->io, 2, 0x30);                                    /* PIT: edge, vector 0x30 */
    ioapic_entry(p->io, 10, (1ULL << 15) | (1ULL << 13) | 0x61);     /* level, active low */
    ioapic_entry(p->io, 11, (1ULL << 16) | (1ULL << 15) | 0x62);     /* level, masked */
    ioapic_set_irq(p->io, 10, 1); /* delivered: remote IRR, the local APIC's IRR + TMR */
    ioapic_set_irq(p->io, 11, 1); /* masked: waits */
    assert_int_equal(lapic_ack(a), 0x61); /* the guest took it: in service */
    lapic_set_irq(a, 0x52, false);        /* another one pending (blocked by 0x61's class) */
    ioapic_mmio_write(p->io, 0x00, 0x14, 4); /* IOREGSEL left at pin 2's low dword */
}

static void free_apic_platform(struct apic_platform *p)
{
    lapic_destroy(p->lapic);
    ioapic_destroy(p->io);
}

static uint32_t lapic_reg(const struct kvm_lapic_state *l, uint32_t off)
{
    uint32_t v;
    memcpy(&v, l->regs + off, 4);
    return v;
}

static struct kvm_lapic_state get_lapic(struct fixture *f)
{
    struct kvm_lapic_state l;
    assert_int_equal(ioctl(kvm_vcpu_fd(&f->rig->m.vcpus[0]), KVM_GET_LAPIC, &l), 0);
    return l;
}

static struct kvm_ioapic_state get_ioapic(struct fixture *f)
{
    struct kvm_irqchip c;
    memset(&c, 0, sizeof(c));
    c.chip_id = KVM_IRQCHIP_IOAPIC;
    assert_int_equal(ioctl(kvm_machine_vm_fd(&f->rig->m), KVM_GET_IRQCHIP, &c), 0);
    return c.chip.ioapic;
}

static uint64_t get_apic_base(struct fixture *f)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e;
    } b;
    memset(&b, 0, sizeof(b));
    b.hdr.nmsrs = 1;
    b.e.index = 0x1b;
    assert_int_equal(ioctl(kvm_vcpu_fd(&f->rig->m.vcpus[0]), KVM_GET_MSRS, &b), 1);
    return b.e.data;
}

static void check_apic_platform_in_kvm(void **state, bool x2apic, bool legacy)
{
    struct fixture *f = fixture_or_skip(state);
    program_emu(&f->emu);
    struct apic_platform p;
    program_apic_platform(&p, x2apic);
    write_snapshot_with(f, &p, legacy, NULL);
    char err[256] = "";
    struct kvm_lapic_state before = get_lapic(f);
    struct kvm_ioapic_state io_before = get_ioapic(f);
    /* Validation alone changes nothing. */
    assert_int_equal(restore_irqchip(f, false, err, sizeof(err)), 0);
    struct kvm_lapic_state unchanged = get_lapic(f);
    struct kvm_ioapic_state io_unchanged = get_ioapic(f);
    assert_memory_equal(&before, &unchanged, sizeof(before));
    assert_memory_equal(&io_before, &io_unchanged, sizeof(io_before));
    assert_int_equal(restore_irqchip(f, true, err, sizeof(err)), 0);

    struct kvm_lapic_state l = get_lapic(f);
    assert_int_equal(lapic_reg(&l, 0x20), 0); /* APIC ID 0 (bits 31:24 in both modes) */
    assert_int_equal(lapic_reg(&l, 0x80), 0x20);
    assert_int_equal(lapic_reg(&l, 0xf0), 0x1ff);
    assert_int_equal(lapic_reg(&l, 0x350), 0x10700); /* LINT0 as the guest left it: not forced to ExtINT */
    assert_int_equal(lapic_reg(&l, 0x360), 0x400);
    assert_int_equal(lapic_reg(&l, 0x370), 0xfe);
    assert_int_equal(lapic_reg(&l, 0x320), 0xec);
    assert_int_equal(lapic_reg(&l, 0x3e0), 0x3);
    assert_int_equal(lapic_reg(&l, 0x380), TIMER_COUNT);
    /* KVM restarted the one-shot with what was left (well within 10% of 1.6 s passed here). */
    assert_in_range(lapic_reg(&l, 0x390), TIMER_COUNT / 10 * 9, TIMER_COUNT);
    assert_int_equal(lapic_reg(&l, 0x100 + 3 * 16), 1u << 1);         /* ISR: 0x61 */
    assert_int_equal(lapic_reg(&l, 0x200 + 2 * 16), 1u << 18);        /* IRR: 0x52 */
    /* Pin 12's due delivery reached the restored local APIC (the IOAPIC is loaded after it). */
    assert_int_equal(lapic_reg(&l, 0x200 + 3 * 16), 1u << 3);         /* IRR: 0x63 */
    assert_int_equal(lapic_reg(&l, 0x180 + 3 * 16), (1u << 1) | (1u << 3)); /* TMR: 0x61, 0x63 level */
    if (x2apic) {
        assert_int_equal(get_apic_base(f), LAPIC_DEFAULT_BASE | APIC_BASE_BSP | APIC_BASE_ENABLE | APIC_BASE_EXTD);
        assert_int_equal(lapic_reg(&l, 0xd0), 1);  /* x2APIC LDR of ID 0: cluster 0, bit 0 */
        assert_int_equal(lapic_reg(&l, 0x310), 7); /* ICR2: the 32-bit destination */
        assert_int_equal(lapic_reg(&l, 0x300), 0x4031);
    } else {
        assert_int_equal(get_apic_base(f), LAPIC_DEFAULT_BASE | APIC_BASE_BSP | APIC_BASE_ENABLE);
        assert_int_equal(lapic_reg(&l, 0xd0), 0x01000000);
        assert_int_equal(lapic_reg(&l, 0xe0), 0xffffffff);
    }

    struct kvm_ioapic_state io = get_ioapic(f);
    assert_int_equal(io.base_address, 0xfec00000);
    assert_int_equal(io.id, 2);
    assert_int_equal(io.ioregsel, 0x14);
    assert_int_equal(io.irr, (1u << 10) | (1u << 11) | (1u << 12)); /* the asserted level inputs */
    assert_int_equal(io.redirtbl[12].bits, (1ULL << 15) | (1ULL << 14) | 0x63); /* delivered: remote IRR */
    assert_int_equal(io.redirtbl[2].bits, 0x30);       /* unmasked: not the PIC platform's masking */
    assert_int_equal(io.redirtbl[10].bits, (1ULL << 15) | (1ULL << 14) | (1ULL << 13) | 0x61);
    assert_int_equal(io.redirtbl[11].bits, (1ULL << 16) | (1ULL << 15) | 0x62);
    assert_int_equal(io.redirtbl[0].fields.mask, 1);

    /* The PIC and PIT came over as on the PIC platform. */
    assert_int_equal(get_pic(f, KVM_IRQCHIP_PIC_MASTER).irq_base, 0x30);
    struct kvm_pit_state2 pit;
    assert_int_equal(ioctl(kvm_machine_vm_fd(&f->rig->m), KVM_GET_PIT2, &pit), 0);
    assert_int_equal(pit.channels[0].count, CH0_RELOAD);
    free_apic_platform(&p);
}

static void test_emu_apic_platform_into_kvm_xapic(void **state) { check_apic_platform_in_kvm(state, false, false); }
static void test_emu_apic_platform_into_kvm_x2apic(void **state) { check_apic_platform_in_kvm(state, true, false); }
static void test_old_emu_apic_snapshot_into_kvm(void **state) { check_apic_platform_in_kvm(state, true, true); }

#define LAPIC_AT (4 + (1 + 1 + 4 + 4 + 8 * IOAPIC_PINS) + 4) /* in the APIC part */

static void bad_lapic_format(struct snap_buf part[3])
{
    assert_int_equal(part[2].data[LAPIC_AT], 1); /* lapic_state_encode's format byte */
    part[2].data[LAPIC_AT] = 9;
}

static void two_lapics(struct snap_buf part[3])
{
    part[2].data[LAPIC_AT - 4] = 2; /* two local APICs, one vCPU (and one record) */
}

/* A malformed APIC part (a local APIC record of an unknown format, or a second vCPU this VM
 * lacks) is refused at validation, in either format, and KVM is left alone. */
static void test_bad_apic_section_refused(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    program_emu(&f->emu);
    struct apic_platform p;
    program_apic_platform(&p, false);
    struct kvm_lapic_state before = get_lapic(f);
    struct kvm_ioapic_state io_before = get_ioapic(f);
    struct kvm_pic_state pic_before = get_pic(f, KVM_IRQCHIP_PIC_MASTER);
    char err[256] = "";
    for (int legacy = 0; legacy < 2; legacy++) {
        write_snapshot_with(f, &p, legacy, bad_lapic_format);
        err[0] = 0;
        assert_int_equal(restore_irqchip(f, false, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "local APIC state is invalid"));
        write_snapshot_with(f, &p, legacy, two_lapics);
        assert_int_equal(restore_irqchip(f, false, err, sizeof(err)), -EINVAL);
    }
    struct kvm_lapic_state after = get_lapic(f);
    struct kvm_ioapic_state io_after = get_ioapic(f);
    struct kvm_pic_state pic_after = get_pic(f, KVM_IRQCHIP_PIC_MASTER);
    assert_memory_equal(&before, &after, sizeof(before));
    assert_memory_equal(&io_before, &io_after, sizeof(io_before));
    assert_memory_equal(&pic_before, &pic_after, sizeof(pic_before));
    free_apic_platform(&p);
}

/* KVM's own state comes back as neutral state a restore takes again (kvm -> kvm snapshots):
 * after loading the APIC platform's state, kvm_irqchip_get gives the same registers. */
static void test_kvm_state_round_trip(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    program_emu(&f->emu);
    struct apic_platform p;
    program_apic_platform(&p, false);
    write_snapshot_with(f, &p, false, NULL);
    char err[256] = "";
    assert_int_equal(restore_irqchip(f, true, err, sizeof(err)), 0);
    struct irqchip_state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    assert_int_equal(kvm_irqchip_get(&f->rig->m, s), 0);
    assert_true(s->has_pic && s->has_pit && s->has_apic);
    assert_int_equal(s->ncpus, 1);
    assert_int_equal(s->pic.chip[0].vector_base, 0x30);
    assert_int_equal(s->pic.chip[0].imr, 0xFA);
    assert_int_equal(s->pit.ch[0].mode, 2);
    assert_int_equal(s->pit.ch[0].reload, CH0_RELOAD);
    assert_int_equal(s->ioapic.id, 2);
    assert_int_equal(s->ioapic.redir[10], (1ULL << 15) | (1ULL << 14) | (1ULL << 13) | 0x61);
    assert_int_equal(s->lapic[0].tpr, 0x20);
    assert_int_equal(s->lapic[0].isr[3], 1u << 1); /* 0x61 in service */
    assert_true(s->lapic[0].timer_running);
    /* and KVM takes it again unchanged */
    struct kvm_lapic_state before = get_lapic(f);
    assert_int_equal(kvm_irqchip_set(&f->rig->m, s, NULL, true, err, sizeof(err)), 0);
    struct kvm_lapic_state after = get_lapic(f);
    assert_int_equal(lapic_reg(&after, 0x100 + 3 * 16), lapic_reg(&before, 0x100 + 3 * 16));
    assert_int_equal(lapic_reg(&after, 0x80), 0x20);
    free(s);
    free_apic_platform(&p);
}

/* The field mapping on its own (no KVM needed): rotated priority, ICW steps, latches. */
static void test_translation_fields(void **state)
{
    (void)state;
    struct irqchip_pic_chip c = {.irr = 0x01, .lowest_priority = 3, .init_step = 2, .vector_base = 0x08,
                               .rotate_on_auto_eoi = true, .special_mask = true, .poll = true};
    struct kvm_pic_state k;
    kvm_irqchip_pic_to(&c, false, &k);
    assert_int_equal(k.priority_add, 4); /* IRQ 4 has the highest priority after IRQ 3 */
    assert_int_equal(k.init_state, 2);
    assert_int_equal(k.irq_base, 0x08);
    assert_int_equal(k.rotate_on_auto_eoi, 1);
    assert_int_equal(k.special_mask, 1);
    assert_int_equal(k.poll, 1);
    assert_int_equal(k.elcr_mask, 0xDE);

    struct irqchip_pit p;
    memset(&p, 0, sizeof(p));
    p.ch[1] = (struct irqchip_pit_channel){.mode = 3, .access = 3, .reload = 18, .loaded = true, .running = true,
                                   .count_latched = true, .latched_hi_next = true, .latched_count = 0x1234,
                                   .write_hi_next = true, .write_lo = 0x56};
    p.ch[0] = p.ch[2] = (struct irqchip_pit_channel){.mode = 0, .access = 1, .reload = 100};
    struct kvm_pit_state2 ps;
    memset(&ps, 0, sizeof(ps));
    kvm_irqchip_pit_to(&p, &ps);
    assert_int_equal(ps.channels[1].count, 18);
    assert_int_equal(ps.channels[1].count_latched, 2); /* the high byte of the latch is next */
    assert_int_equal(ps.channels[1].latched_count, 0x1234);
    assert_int_equal(ps.channels[1].write_state, 4);
    assert_int_equal(ps.channels[1].write_latch, 0x56);
    assert_int_equal(ps.channels[0].rw_mode, 1);
    assert_int_equal(ps.channels[0].read_state, 1);
    assert_int_equal(ps.channels[0].count, 100); /* not running: the programmed count */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_emu_pic_pit_restore_into_kvm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_pic_section_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emu_apic_platform_into_kvm_xapic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emu_apic_platform_into_kvm_x2apic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_emu_snapshot_into_kvm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_emu_apic_snapshot_into_kvm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_apic_section_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kvm_state_round_trip, setup, teardown),
        cmocka_unit_test(test_translation_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
