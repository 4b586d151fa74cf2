/* Unit tests for kvm_xsnap: an emu machine's i8259/i8254, programmed through their ports and
 * saved into a snapshot file, restored into a KVM machine's in-kernel irqchip and PIT, read
 * back with KVM_GET_IRQCHIP / KVM_GET_PIT2 / KVM_GET_LAPIC. Skips when /dev/kvm is absent. */
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
#include "devices/pit.h"
#include "guest_builder.h"
#include "kvm_rig.h"
#include "vmm/kvm/kvm_backend.h"
#include "vmm/kvm/kvm_xsnap.h"
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

/* Write a snapshot file holding what the emu machine's devices save (no cpu/ram sections:
 * the test restores the device sections only). `pic_override`, if set, replaces dev.pic. */
static void write_snapshot(struct fixture *f, const uint8_t *pic_override, size_t pic_len)
{
    char err[256] = "";
    struct snap_writer w;
    assert_int_equal(snap_writer_open(&w, f->path, "emu", err, sizeof(err)), 0);
    const char *names[] = {"pic", "pit", "kvm-irqchip"};
    for (unsigned i = 0; i < 3; i++) {
        const struct device_desc *d = device_named(names[i]);
        assert_non_null(d);
        struct snap_buf b;
        snap_buf_init(&b);
        assert_int_equal(d->save(&f->emu.m, &b), 0);
        char name[32];
        snprintf(name, sizeof(name), "dev.%s", d->name);
        if (i == 0 && pic_override) assert_int_equal(snap_write_section(&w, name, d->state_version, pic_override, pic_len), 0);
        else assert_int_equal(snap_write_section(&w, name, d->state_version, b.data, b.len), 0);
        snap_buf_free(&b);
    }
    assert_int_equal(snap_writer_close(&w, err, sizeof(err)), 0);
}

/* Run the kvm-irqchip device's restore against the snapshot, as snapshot_restore does. */
static int restore_irqchip(struct fixture *f, bool apply, char *err, size_t errlen)
{
    struct snap_file sf;
    assert_int_equal(snap_file_open(&sf, f->path, err, errlen), 0);
    const struct device_desc *d = device_named("kvm-irqchip");
    const struct snap_section_info *s = snap_file_find(&sf, "dev.kvm-irqchip");
    assert_non_null(s);
    uint8_t *data;
    assert_int_equal(snap_file_read(&sf, s, &data), 0);
    struct snap_reader rd = {.data = data, .len = s->length, .file = &sf};
    int r = d->restore(&f->rig->m, &rd, s->version, apply, err, errlen);
    free(data);
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
static void test_emu_pic_pit_restore_into_kvm(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    program_emu(&f->emu);
    write_snapshot(f, NULL, 0);
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

/* A malformed emulated PIC section is refused at validation, and KVM is left alone. */
static void test_bad_pic_section_refused(void **state)
{
    struct fixture *f = fixture_or_skip(state);
    program_emu(&f->emu);
    uint8_t bad[21] = {1};
    bad[1 + 7] = 9; /* master lowest_priority beyond IRQ 7 */
    write_snapshot(f, bad, sizeof(bad));
    struct kvm_pic_state before = get_pic(f, KVM_IRQCHIP_PIC_MASTER);
    char err[256] = "";
    assert_int_equal(restore_irqchip(f, false, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "pic state is invalid"));
    struct kvm_pic_state after = get_pic(f, KVM_IRQCHIP_PIC_MASTER);
    assert_memory_equal(&before, &after, sizeof(before));
}

/* The field mapping on its own (no KVM needed): rotated priority, ICW steps, latches. */
static void test_translation_fields(void **state)
{
    (void)state;
    struct pic_saved_chip c = {.irr = 0x01, .lowest_priority = 3, .init_step = 2, .vector_base = 0x08,
                               .rotate_on_auto_eoi = true, .special_mask = true, .poll = true};
    struct kvm_pic_state k;
    kvm_xsnap_pic_chip(&c, false, &k);
    assert_int_equal(k.priority_add, 4); /* IRQ 4 has the highest priority after IRQ 3 */
    assert_int_equal(k.init_state, 2);
    assert_int_equal(k.irq_base, 0x08);
    assert_int_equal(k.rotate_on_auto_eoi, 1);
    assert_int_equal(k.special_mask, 1);
    assert_int_equal(k.poll, 1);
    assert_int_equal(k.elcr_mask, 0xDE);

    struct pit_saved p;
    memset(&p, 0, sizeof(p));
    p.present = true;
    p.ch[1] = (struct pit_channel){.mode = 3, .access = 3, .reload = 18, .loaded = true, .running = true,
                                   .count_latched = true, .latched_hi_next = true, .latched_count = 0x1234,
                                   .write_hi_next = true, .write_lo = 0x56};
    p.ch[0] = p.ch[2] = (struct pit_channel){.mode = 0, .access = 1, .reload = 100};
    struct kvm_pit_state2 ps;
    memset(&ps, 0, sizeof(ps));
    kvm_xsnap_pit(&p, &ps);
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
        cmocka_unit_test(test_translation_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
