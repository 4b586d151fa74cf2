/* Unit tests for vmm/irqchip.c: the "dev.irqchip" section's codec (round trip, every truncation
 * and a wrong version refused, trailing bytes refused) and the reading of snapshots written by
 * an older vmd, whose emulated models had a section each ("dev.pic", "dev.pit", "dev.apic") and
 * whose kvm snapshots held KVM's own structures ("dev.kvm-irqchip"). */
#include "tests/unit/device_test_machine.h"

#include <errno.h>
#include <stdio.h>

#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "vmm/irqchip.h"

struct fixture {
    struct device_test_machine pic_m, pit_m;
    struct lapic *lapic;
    struct ioapic *io;
    struct irqchip_state s; /* what the models above hold */
    char path[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    dtm_setup(&f->pic_m, 1 << 20, &dtm_backend, &pic_device);
    dtm_setup(&f->pit_m, 1 << 20, &dtm_backend, &pit_device);
    f->pit_m.m.pit->clock_ns = dtm_clock;
    f->pit_m.m.pit->clock_opaque = &f->pit_m;
    struct lapic_host lh = {0};
    struct ioapic_host ih = {0};
    f->lapic = lapic_create(&lh, 0);
    f->io = ioapic_create(&ih);
    assert_non_null(f->lapic);
    assert_non_null(f->io);
    /* a guest's programming: PIC vectors, a periodic PIT, an IOAPIC entry, the APIC enabled */
    dtm_outb(&f->pic_m, 0x20, 0x11);
    dtm_outb(&f->pic_m, 0x21, 0x30);
    dtm_outb(&f->pic_m, 0x21, 0x04);
    dtm_outb(&f->pic_m, 0x21, 0x01);
    dtm_outb(&f->pic_m, 0x21, 0xFA);
    dtm_outb(&f->pit_m, 0x43, 0x34);
    dtm_outb(&f->pit_m, 0x40, 0x9c);
    dtm_outb(&f->pit_m, 0x40, 0x2e);
    dtm_advance(&f->pit_m, 3000000);
    ioapic_mmio_write(f->io, 0x00, 0x14, 4);
    ioapic_mmio_write(f->io, 0x10, 0x41, 4);
    uint32_t svr = 0x1ff;
    lapic_mmio_write(f->lapic, 0xf0, &svr, 4);
    f->s.has_pic = f->s.has_pit = f->s.has_apic = true;
    pic_get_state(f->pic_m.m.pic, &f->s.pic);
    pit_get_state(f->pit_m.m.pit, &f->s.pit);
    ioapic_get_state(f->io, &f->s.ioapic);
    f->s.ncpus = 1;
    lapic_get_state(f->lapic, &f->s.lapic[0]);
    snprintf(f->path, sizeof(f->path), "/tmp/vmd-irqchip-%d.snap", (int)getpid());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dtm_teardown(&f->pic_m, &pic_device);
    dtm_teardown(&f->pit_m, &pit_device);
    lapic_destroy(f->lapic);
    ioapic_destroy(f->io);
    unlink(f->path);
    free(f);
    return 0;
}

static void assert_same_state(const struct irqchip_state *a, const struct irqchip_state *b)
{
    assert_int_equal(a->has_pic, b->has_pic);
    assert_int_equal(a->has_pit, b->has_pit);
    assert_int_equal(a->has_apic, b->has_apic);
    if (a->has_pic) assert_memory_equal(&a->pic, &b->pic, sizeof(a->pic));
    if (a->has_pit) assert_memory_equal(&a->pit, &b->pit, sizeof(a->pit));
    if (!a->has_apic) return;
    assert_memory_equal(&a->ioapic, &b->ioapic, sizeof(a->ioapic));
    assert_int_equal(a->ncpus, b->ncpus);
    for (unsigned i = 0; i < a->ncpus; i++) assert_memory_equal(&a->lapic[i], &b->lapic[i], sizeof(a->lapic[i]));
}

static void test_round_trip_and_refusals(void **state)
{
    struct fixture *f = *state;
    struct snap_buf b;
    snap_buf_init(&b);
    irqchip_state_encode(&b, &f->s);
    assert_false(b.failed);
    struct irqchip_state *back = calloc(1, sizeof(*back));
    assert_non_null(back);
    char err[256] = "";
    struct snap_reader r = {.data = b.data, .len = b.len};
    if (irqchip_state_decode(&r, IRQCHIP_STATE_VERSION, back, err, sizeof(err))) fail_msg("decode: %s", err);
    assert_same_state(&f->s, back);
    assert_int_equal(back->pit.ch[0].reload, 0x2e9c);
    for (size_t n = 0; n < b.len; n++) {
        struct snap_reader cut = {.data = b.data, .len = n};
        if (irqchip_state_decode(&cut, IRQCHIP_STATE_VERSION, back, err, sizeof(err)) == 0)
            fail_msg("state cut to %zu of %zu bytes accepted", n, b.len);
    }
    r = (struct snap_reader){.data = b.data, .len = b.len};
    assert_int_equal(irqchip_state_decode(&r, IRQCHIP_STATE_VERSION + 1, back, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "state version 2"));
    snap_put_u8(&b, 0);
    r = (struct snap_reader){.data = b.data, .len = b.len};
    assert_int_equal(irqchip_state_decode(&r, IRQCHIP_STATE_VERSION, back, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "unexpected bytes"));
    /* a local APIC saved for another vCPU */
    struct irqchip_state *other = calloc(1, sizeof(*other));
    assert_non_null(other);
    *other = f->s;
    other->lapic[0].initial_id = 3;
    snap_buf_free(&b);
    snap_buf_init(&b);
    irqchip_state_encode(&b, other);
    r = (struct snap_reader){.data = b.data, .len = b.len};
    assert_int_equal(irqchip_state_decode(&r, IRQCHIP_STATE_VERSION, back, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "APIC ID 3"));
    free(other);
    free(back);
    snap_buf_free(&b);
}

/* The emulator's PIC platform: no APIC part. */
static void test_pic_platform_state(void **state)
{
    struct fixture *f = *state;
    f->s.has_apic = false;
    struct snap_buf b;
    snap_buf_init(&b);
    irqchip_state_encode(&b, &f->s);
    struct irqchip_state *back = calloc(1, sizeof(*back));
    assert_non_null(back);
    char err[256];
    struct snap_reader r = {.data = b.data, .len = b.len};
    assert_int_equal(irqchip_state_decode(&r, IRQCHIP_STATE_VERSION, back, err, sizeof(err)), 0);
    assert_same_state(&f->s, back);
    free(back);
    snap_buf_free(&b);
}

/* Write a snapshot file of `backend` with sections name[i] (NULL ends) holding part[i]. */
static void write_file(struct fixture *f, const char *backend, const char *const names[], const uint32_t versions[],
                       struct snap_buf part[])
{
    char err[256] = "";
    struct snap_writer w;
    assert_int_equal(snap_writer_open(&w, f->path, backend, err, sizeof(err)), 0);
    for (unsigned i = 0; names[i]; i++)
        assert_int_equal(snap_write_section(&w, names[i], versions[i], part[i].data, part[i].len), 0);
    assert_int_equal(snap_writer_close(&w, err, sizeof(err)), 0);
}

/* An emu snapshot of an older vmd: its sections are the parts of dev.irqchip. */
static void test_old_emu_snapshot(void **state)
{
    struct fixture *f = *state;
    struct snap_buf part[4];
    for (unsigned i = 0; i < 4; i++) snap_buf_init(&part[i]);
    pic_state_encode(&part[0], &f->s.pic);
    pit_state_encode(&part[1], &f->s.pit);
    snap_put_u32(&part[2], 1);
    ioapic_state_encode(&part[2], &f->s.ioapic);
    snap_put_u32(&part[2], 1);
    lapic_state_encode(&part[2], &f->s.lapic[0]);
    snap_put_u32(&part[3], 0); /* no in-kernel irqchip */
    static const char *const names[] = {"dev.pic", "dev.pit", "dev.apic", "dev.kvm-irqchip", NULL};
    uint32_t versions[] = {1, 1, 1, 2};
    write_file(f, "emu", names, versions, part);

    struct snap_file sf;
    char err[256] = "";
    assert_int_equal(snap_file_open(&sf, f->path, err, sizeof(err)), 0);
    struct irqchip_state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    bool found = false;
    if (irqchip_snapshot_state(&sf, s, &found, err, sizeof(err))) fail_msg("%s", err);
    assert_true(found);
    assert_same_state(&f->s, s);
    bool apic = false;
    assert_int_equal(irqchip_snapshot_check(&sf, "emu", &apic, err, sizeof(err)), 0);
    assert_true(apic);
    snap_file_close(&sf);

    /* a section of a version this vmd never wrote is refused, naming it */
    versions[1] = 7;
    write_file(f, "emu", names, versions, part);
    assert_int_equal(snap_file_open(&sf, f->path, err, sizeof(err)), 0);
    assert_int_equal(irqchip_snapshot_state(&sf, s, &found, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'dev.pit' has version 7"));
    snap_file_close(&sf);

    /* the PIC platform: dev.apic says absent */
    versions[1] = 1;
    snap_buf_free(&part[2]);
    snap_buf_init(&part[2]);
    snap_put_u32(&part[2], 0);
    write_file(f, "emu", names, versions, part);
    assert_int_equal(snap_file_open(&sf, f->path, err, sizeof(err)), 0);
    assert_int_equal(irqchip_snapshot_state(&sf, s, &found, err, sizeof(err)), 0);
    assert_true(found && s->has_pic && s->has_pit && !s->has_apic);
    assert_int_equal(irqchip_snapshot_check(&sf, "kvm", &apic, err, sizeof(err)), 0);
    assert_false(apic);
    snap_file_close(&sf);
    free(s);
    for (unsigned i = 0; i < 4; i++) snap_buf_free(&part[i]);
}

/* A kvm snapshot of an older vmd: the emulated models' sections say absent; its state is in
 * dev.kvm-irqchip (read by vmm/kvm/kvm_irqchip.c), and its guest used the APIC. */
static void test_old_kvm_snapshot(void **state)
{
    struct fixture *f = *state;
    struct snap_buf part[3];
    for (unsigned i = 0; i < 3; i++) snap_buf_init(&part[i]);
    pic_state_encode(&part[0], NULL);
    pit_state_encode(&part[1], NULL);
    snap_put_u32(&part[2], 0);
    static const char *const names[] = {"dev.pic", "dev.pit", "dev.apic", NULL};
    const uint32_t versions[] = {1, 1, 1};
    write_file(f, "kvm", names, versions, part);
    struct snap_file sf;
    char err[256] = "";
    assert_int_equal(snap_file_open(&sf, f->path, err, sizeof(err)), 0);
    struct irqchip_state *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    bool found = true;
    assert_int_equal(irqchip_snapshot_state(&sf, s, &found, err, sizeof(err)), 0);
    assert_false(found);
    /* no dev.kvm-irqchip either: nothing to restore the controllers from */
    bool apic = false;
    assert_int_equal(irqchip_snapshot_check(&sf, "emu", &apic, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "'dev.irqchip' is missing"));
    snap_file_close(&sf);
    /* with it: taken under kvm, so the guest used the APIC (its content is kvm_irqchip.c's) */
    snap_buf_free(&part[2]);
    snap_buf_init(&part[2]);
    snap_put_u32(&part[2], 1);
    static const char *const with_kvm[] = {"dev.pic", "dev.pit", "dev.kvm-irqchip", NULL};
    const uint32_t kvm_versions[] = {1, 1, 2};
    write_file(f, "kvm", with_kvm, kvm_versions, part);
    assert_int_equal(snap_file_open(&sf, f->path, err, sizeof(err)), 0);
    assert_int_equal(irqchip_snapshot_check(&sf, "emu", &apic, err, sizeof(err)), 0);
    assert_true(apic);
    snap_file_close(&sf);
    free(s);
    for (unsigned i = 0; i < 3; i++) snap_buf_free(&part[i]);
}

/* A file that says kvm but lacks the controllers every kvm machine has was not written by kvm:
 * refused before anything changes, whichever backend restores it. */
static void test_kvm_label_without_apic_refused(void **state)
{
    struct fixture *f = *state;
    f->s.has_apic = false;
    struct snap_buf part[1];
    snap_buf_init(&part[0]);
    irqchip_state_encode(&part[0], &f->s);
    static const char *const names[] = {"dev.irqchip", NULL};
    const uint32_t versions[] = {IRQCHIP_STATE_VERSION};
    write_file(f, "kvm", names, versions, part);
    struct snap_file sf;
    char err[256] = "";
    assert_int_equal(snap_file_open(&sf, f->path, err, sizeof(err)), 0);
    assert_int_equal(irqchip_restore_state(&f->pic_m.m, &f->s, &sf, false, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "says it was taken under kvm but holds no in-kernel interrupt controller state"));
    bool apic = true;
    assert_int_equal(irqchip_snapshot_check(&sf, "emu", &apic, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "says it was taken under kvm"));
    snap_file_close(&sf);
    snap_buf_free(&part[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pic_platform_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_emu_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_kvm_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kvm_label_without_apic_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
