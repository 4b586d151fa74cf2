/* Unit tests for the kvm backend's conversion of KVM's in-kernel i8259 pair and i8254 to and
 * from the neutral state (vmm/kvm/kvm_irqchip.c), as the emulated models take it over (kvm ->
 * emu snapshots). Round trips go emu model -> neutral state -> the KVM structs the kvm backend
 * loads (emu -> kvm) -> neutral state -> model, and must give back the behaviour the guest
 * sees through the ports; crafted KVM structs check the time re-basing. */
#include "tests/unit/device_test_machine.h"

#include <errno.h>
#include <linux/kvm.h>

#include "devices/pic.h"
#include "devices/pit.h"
#include "vmm/kvm/kvm_irqchip.h"

static struct device_test_machine *new_machine(const struct device_desc *dev)
{
    struct device_test_machine *t = malloc(sizeof(*t));
    assert_non_null(t);
    dtm_setup(t, 1 << 20, &dtm_backend, dev);
    if (dev == &pit_device) {
        t->m.pit->clock_ns = dtm_clock;
        t->m.pit->clock_opaque = t;
    }
    return t;
}

static void free_machine(struct device_test_machine *t, const struct device_desc *dev)
{
    dtm_teardown(t, dev);
    free(t);
}

/* ---- PIC ---- */


/* The emu PIC's state as KVM_SET_IRQCHIP would get it from the kvm backend (through the
 * snapshot codec, as a snapshot carries it). */
static void pic_to_kvm(struct device_test_machine *t, struct kvm_pic_state k[2])
{
    struct irqchip_pic st;
    pic_get_state(t->m.pic, &st);
    struct snap_buf b;
    snap_buf_init(&b);
    pic_state_encode(&b, &st);
    struct snap_reader r = {.data = b.data, .len = b.len};
    struct irqchip_pic saved;
    bool present;
    char err[256];
    assert_int_equal(pic_state_decode(&r, &present, &saved, err, sizeof(err)), 0);
    assert_true(present);
    kvm_irqchip_pic_to(&saved.chip[0], true, &k[0]);
    kvm_irqchip_pic_to(&saved.chip[1], false, &k[1]);
    snap_buf_free(&b);
}

/* KVM's i8259 pair taken over by the model (as an emu restore of a kvm snapshot does). */
static int pic_import_kvm(struct pic *pic, const struct kvm_pic_state *master, const struct kvm_pic_state *slave,
                          bool apply, char *err, size_t errlen)
{
    struct irqchip_pic st;
    int rc = kvm_irqchip_pic_from(master, 0, &st.chip[0], err, errlen);
    if (!rc) rc = kvm_irqchip_pic_from(slave, 1, &st.chip[1], err, errlen);
    if (!rc) rc = pic_state_check(&st, err, errlen);
    if (!rc && apply) pic_set_state(pic, &st);
    return rc;
}

/* What the guest can read without changing anything but the OCW3 selection (restored after). */
struct pic_view {
    uint8_t irr[2], isr[2], imr[2], elcr[2], port0[2];
};

static void pic_view(struct device_test_machine *t, struct pic_view *v)
{
    for (unsigned i = 0; i < 2; i++) {
        uint16_t base = i ? 0xA0 : 0x20;
        v->port0[i] = dtm_inb(t, base); /* whatever register is selected */
        v->imr[i] = dtm_inb(t, (uint16_t)(base + 1));
        v->elcr[i] = dtm_inb(t, (uint16_t)(0x4D0 + i));
        dtm_outb(t, base, 0x0A);
        v->irr[i] = dtm_inb(t, base);
        dtm_outb(t, base, 0x0B);
        v->isr[i] = dtm_inb(t, base);
    }
}

static void test_pic_round_trip(void **state)
{
    (void)state;
    struct device_test_machine *t = new_machine(&pic_device);
    dtm_pic_init_linux(t, false);
    dtm_outb(t, 0x4D1, 0x06);  /* IRQ 9, 10 level */
    dtm_outb(t, 0x20, 0xC4);   /* OCW2 set priority: IRQ4 lowest, IRQ5 highest */
    dtm_outb(t, 0x21, 0x40);   /* IRQ6 masked */
    dtm_pic_line(t, 3, 1);
    assert_int_equal(dtm_pic_ack(t), 0x33); /* IRQ3 in service */
    dtm_pic_line(t, 10, 1);        /* slave level line, held: nests over IRQ3 */
    assert_int_equal(dtm_pic_ack(t), 0x3A);
    dtm_pic_line(t, 1, 1);         /* pending: higher than IRQ2 in this rotation */
    dtm_pic_line(t, 6, 1);         /* masked */
    dtm_pic_line(t, 9, 1);         /* slave: higher than its IRQ2 (10) in service */
    dtm_pic_line(t, 5, 1);         /* the highest priority in this rotation: taken before IRQ1 */
    dtm_outb(t, 0xA0, 0x0B);   /* the slave's port reads ISR */
    dtm_outb(t, 0x20, 0x0A);   /* the master's IRR */

    struct kvm_pic_state k[2];
    pic_to_kvm(t, k);
    struct device_test_machine *u = new_machine(&pic_device);
    char err[256] = "";
    assert_int_equal(pic_import_kvm(u->m.pic, &k[0], &k[1], false, err, sizeof(err)), 0);
    assert_int_equal(dtm_inb(u, 0x21), 0xFF); /* dry run: nothing changed */
    assert_int_equal(pic_import_kvm(u->m.pic, &k[0], &k[1], true, err, sizeof(err)), 0);

    struct pic_view a, b;
    pic_view(t, &a);
    pic_view(u, &b);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_int_equal(b.port0[1], b.isr[1]);
    assert_int_equal(b.imr[0], 0x40);
    assert_int_equal(b.elcr[1], 0x06);
    assert_int_equal(b.isr[1], 0x04);
    /* The same acknowledge sequence from both, priorities and nesting included. */
    assert_int_equal(dtm_pic_ack(u), 0x35);
    assert_int_equal(dtm_pic_ack(t), 0x35);
    for (int step = 0; step < 8; step++) {
        int va = dtm_pic_ack(t), vb = dtm_pic_ack(u);
        assert_int_equal(va, vb);
        if (va < 0) {
            dtm_outb(t, 0xA0, 0x20);
            dtm_outb(u, 0xA0, 0x20);
            dtm_outb(t, 0x20, 0x20);
            dtm_outb(u, 0x20, 0x20);
        }
    }
    /* Edge detection came over: IRQ1 already high makes no new request, a new edge does. */
    dtm_pic_line(t, 1, 1);
    dtm_pic_line(u, 1, 1);
    assert_int_equal(pic_has_irq(t->m.pic), pic_has_irq(u->m.pic));
    free_machine(t, &pic_device);
    free_machine(u, &pic_device);
}

/* Caught in the middle of an initialization sequence: the next writes finish it the same way. */
static void test_pic_mid_init(void **state)
{
    (void)state;
    struct device_test_machine *t = new_machine(&pic_device);
    dtm_pic_init_linux(t, false);
    dtm_outb(t, 0x20, 0x11);
    dtm_outb(t, 0x21, 0x68); /* ICW2 given; ICW3 and ICW4 to come */
    struct kvm_pic_state k[2];
    pic_to_kvm(t, k);
    assert_int_equal(k[0].init_state, 2);
    struct device_test_machine *u = new_machine(&pic_device);
    char err[256];
    assert_int_equal(pic_import_kvm(u->m.pic, &k[0], &k[1], true, err, sizeof(err)), 0);
    struct device_test_machine *m[2] = {t, u};
    for (unsigned i = 0; i < 2; i++) {
        dtm_outb(m[i], 0x21, 0x04);
        dtm_outb(m[i], 0x21, 0x03); /* ICW4: auto-EOI */
        dtm_outb(m[i], 0x21, 0xFE); /* OCW1 */
        dtm_pic_line(m[i], 0, 1);
        assert_int_equal(dtm_pic_ack(m[i]), 0x68);
        dtm_outb(m[i], 0x20, 0x0B);
        assert_int_equal(dtm_inb(m[i], 0x20), 0); /* auto-EOI: nothing in service */
        assert_int_equal(dtm_inb(m[i], 0x21), 0xFE);
    }
    free_machine(t, &pic_device);
    free_machine(u, &pic_device);
}

static void test_pic_import_refusals(void **state)
{
    (void)state;
    struct device_test_machine *t = new_machine(&pic_device);
    dtm_pic_init_linux(t, false);
    dtm_outb(t, 0x21, 0x5A);
    struct kvm_pic_state good[2], k[2];
    pic_to_kvm(t, good);
    struct device_test_machine *u = new_machine(&pic_device);
    char err[256] = "";
    struct {
        unsigned chip;
        size_t off;
        uint8_t value;
        const char *what;
    } cases[] = {
        {0, offsetof(struct kvm_pic_state, init_state), 4, "init_state"},
        {1, offsetof(struct kvm_pic_state, priority_add), 8, "priority_add"},
        {0, offsetof(struct kvm_pic_state, irq_base), 0x31, "irq_base"},
        {0, offsetof(struct kvm_pic_state, elcr), 0x01, "elcr"}, /* IRQ0 is edge-only */
        {1, offsetof(struct kvm_pic_state, elcr), 0x01, "elcr"}, /* IRQ8 is edge-only */
        {1, offsetof(struct kvm_pic_state, auto_eoi), 2, "flag"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(k, good, sizeof(k));
        ((uint8_t *)&k[cases[i].chip])[cases[i].off] = cases[i].value;
        err[0] = 0;
        assert_int_equal(pic_import_kvm(u->m.pic, &k[0], &k[1], true, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, cases[i].what));
        assert_non_null(strstr(err, cases[i].chip ? "slave" : "master"));
    }
    /* nothing was applied: still the reset state */
    assert_int_equal(dtm_inb(u, 0x21), 0xFF);
    assert_int_equal(dtm_inb(u, 0xA1), 0xFF);
    free_machine(t, &pic_device);
    free_machine(u, &pic_device);
}

/* ---- PIT ---- */

/* KVM's PIT taken over by the model (as an emu restore of a kvm snapshot does). */
static int pit_import_kvm(struct pit *pit, const struct kvm_pit_state2 *k, int64_t save_host_ns, bool apply, char *err,
                          size_t errlen)
{
    struct irqchip_pit st;
    int rc = kvm_irqchip_pit_from(k, save_host_ns, &st, err, errlen);
    if (!rc) rc = pit_state_check(&st, err, errlen);
    if (!rc && apply) pit_set_state(pit, &st);
    return rc;
}

static uint64_t ticks_ns(uint64_t ticks) { return (ticks * 1000000000ULL + PIT_FREQ_HZ - 1) / PIT_FREQ_HZ; }

static uint16_t read_count_lohi(struct device_test_machine *t, unsigned ch)
{
    uint8_t lo = dtm_inb(t, (uint16_t)(0x40 + ch));
    uint8_t hi = dtm_inb(t, (uint16_t)(0x40 + ch));
    return (uint16_t)(lo | hi << 8);
}

static void write_count_lohi(struct device_test_machine *t, unsigned ch, uint16_t v)
{
    dtm_outb(t, (uint16_t)(0x40 + ch), (uint8_t)v);
    dtm_outb(t, (uint16_t)(0x40 + ch), (uint8_t)(v >> 8));
}

/* The emu PIT as the kvm backend hands it to KVM_SET_PIT2 (through the snapshot codec), which
 * (re)loads every channel at that moment: count_load_time = the save time. */
static void pit_to_kvm(struct device_test_machine *t, struct kvm_pit_state2 *k, int64_t save_host_ns)
{
    struct irqchip_pit st;
    pit_get_state(t->m.pit, &st);
    struct snap_buf b;
    snap_buf_init(&b);
    pit_state_encode(&b, &st);
    struct snap_reader r = {.data = b.data, .len = b.len};
    struct irqchip_pit saved;
    bool present;
    char err[256];
    assert_int_equal(pit_state_decode(&r, &present, &saved, err, sizeof(err)), 0);
    memset(k, 0, sizeof(*k));
    kvm_irqchip_pit_to(&saved, k);
    for (unsigned i = 0; i < 3; i++) k->channels[i].count_load_time = save_host_ns;
    snap_buf_free(&b);
}

static int pit_import(struct device_test_machine *u, const struct kvm_pit_state2 *k, int64_t save_host_ns)
{
    char err[256] = "";
    pthread_mutex_lock(&u->m.dev_lock);
    int r = pit_import_kvm(u->m.pit, k, save_host_ns, true, err, sizeof(err));
    pthread_mutex_unlock(&u->m.dev_lock);
    if (r) fail_msg("pit_import_kvm: %s", err);
    return r;
}

/* One-shot counters (channel 2 calibration, channel 0 one-shot tick) carry on exactly; the
 * periodic tick keeps its rate; half-read counters and latches finish their reads. */
static void test_pit_round_trip(void **state)
{
    (void)state;
    struct device_test_machine *t = new_machine(&pit_device);
    /* channel 2: mode 0, gate on, speaker bit on, 30000 clocks, 1000 of them gone */
    dtm_outb(t, 0x61, 0x03);
    dtm_outb(t, 0x43, 0xB0);
    write_count_lohi(t, 2, 30000);
    t->now_ns += ticks_ns(1000);
    /* channel 0: mode 4 one-shot 20000, 5100 gone at the save */
    dtm_outb(t, 0x43, 0x38);
    write_count_lohi(t, 0, 20000);
    t->now_ns += ticks_ns(5000);
    /* channel 1: mode 2 with a latched count, half read */
    dtm_outb(t, 0x43, 0x74);
    write_count_lohi(t, 1, 1000);
    t->now_ns += ticks_ns(100);
    dtm_outb(t, 0x43, 0x40); /* latch channel 1 */
    uint8_t lo = dtm_inb(t, 0x41);
    uint16_t c2 = read_count_lohi(t, 2);
    assert_int_equal(c2, 30000 - 6100);

    struct kvm_pit_state2 k;
    const int64_t save_host = 3600LL * 1000000000LL; /* the saving host had been up an hour */
    pit_to_kvm(t, &k, save_host);
    assert_int_equal(k.channels[1].count_latched, 2); /* MSB of the latch to come */

    struct device_test_machine *u = new_machine(&pit_device);
    u->now_ns = 50 * 1000000000ULL; /* this host: 50 s */
    pit_import(u, &k, save_host);
    /* channel 1: the latch's high byte, then the live count */
    uint8_t hi = dtm_inb(u, 0x41);
    assert_int_equal(lo | hi << 8, 900);
    assert_int_equal(dtm_inb(u, 0x61) & 0x03, 0x03);
    assert_int_equal(read_count_lohi(u, 2), read_count_lohi(t, 2));
    assert_int_equal(dtm_inb(u, 0x61) & 0x20, 0);
    /* channel 0: the one-shot fires 14900 clocks after the save, once */
    dtm_advance(u, ticks_ns(14890));
    assert_int_equal(u->irq_rises[0], 0);
    dtm_advance(u, ticks_ns(20));
    assert_int_equal(u->irq_rises[0], 1);
    /* channel 2's output rises when its count runs out: 23900 clocks after the save */
    dtm_advance(u, ticks_ns(23900 - 14910 - 5));
    assert_int_equal(dtm_inb(u, 0x61) & 0x20, 0);
    dtm_advance(u, ticks_ns(10));
    assert_int_equal(dtm_inb(u, 0x61) & 0x20, 0x20);
    dtm_advance(u, 1000000000ULL);
    assert_int_equal(u->irq_rises[0], 1);
    free_machine(t, &pit_device);
    free_machine(u, &pit_device);
}

static void test_pit_periodic_tick_after_round_trip(void **state)
{
    (void)state;
    struct device_test_machine *t = new_machine(&pit_device);
    dtm_outb(t, 0x43, 0x34);
    write_count_lohi(t, 0, 4773);
    for (unsigned i = 0; i < 3; i++) dtm_advance(t, ticks_ns(4773));
    dtm_advance(t, ticks_ns(100));
    assert_int_equal(t->irq_rises[0], 3);
    struct kvm_pit_state2 k;
    pit_to_kvm(t, &k, 1000);
    struct device_test_machine *u = new_machine(&pit_device);
    pit_import(u, &k, 1000);
    /* KVM_SET_PIT2 restarts the period at the load: a tick per period from there */
    assert_int_equal(read_count_lohi(u, 0), 4773);
    for (unsigned i = 1; i <= 5; i++) {
        dtm_advance(u, ticks_ns(4773) - 2000);
        assert_int_equal(u->irq_rises[0], i - 1);
        dtm_advance(u, 2000);
        assert_int_equal(u->irq_rises[0], i);
    }
    free_machine(t, &pit_device);
    free_machine(u, &pit_device);
}

static void kvm_channel(struct kvm_pit_channel_state *c, uint8_t mode, uint32_t count, int64_t load_time)
{
    memset(c, 0, sizeof(*c));
    c->mode = mode;
    c->count = count;
    c->rw_mode = 3;
    c->read_state = 3;
    c->write_state = 3;
    c->gate = 1;
    c->count_load_time = load_time;
}

/* A snapshot taken by KVM itself: count_load_time on the saving host's clock. */
static void test_pit_import_rebases_load_time(void **state)
{
    (void)state;
    const int64_t save = 7200LL * 1000000000LL;
    struct kvm_pit_state2 k;
    memset(&k, 0, sizeof(k));
    /* channel 0: mode 2 HZ=250, loaded 2.5 periods and many hours' worth before the save */
    uint64_t period_ns = 4773ULL * 1000000000ULL / PIT_FREQ_HZ;
    kvm_channel(&k.channels[0], 2, 4773, save - (int64_t)(ticks_ns(4773 * 100000ULL + 2386)));
    /* channel 1: never programmed since reset */
    k.channels[1].mode = 0xff;
    k.channels[1].gate = 1;
    /* channel 2: mode 0 calibration, 1000 of 11931 gone, gate on, speaker off */
    kvm_channel(&k.channels[2], 0, 11931, save - (int64_t)ticks_ns(1000));
    k.flags = KVM_PIT_FLAGS_HPET_LEGACY;

    struct device_test_machine *u = new_machine(&pit_device);
    pit_import(u, &k, save);
    uint16_t c0 = read_count_lohi(u, 0);
    assert_true(c0 >= 4773 - 2387 && c0 <= 4773 - 2385);
    uint16_t c2 = read_count_lohi(u, 2);
    assert_true(c2 >= 11931 - 1001 && c2 <= 11931 - 999);
    assert_int_equal(dtm_inb(u, 0x61) & 0x03, 0x01); /* gate 2 on, speaker data off */
    /* channel 1 reads as after reset and starts on programming */
    dtm_outb(u, 0x43, 0x74);
    write_count_lohi(u, 1, 500);
    assert_int_equal(read_count_lohi(u, 1), 500);
    /* the next tick comes half a period after the import, then one per period */
    dtm_advance(u, period_ns / 2 - 5000);
    assert_int_equal(u->irq_rises[0], 0);
    dtm_advance(u, 10000);
    assert_int_equal(u->irq_rises[0], 1);
    dtm_advance(u, period_ns);
    assert_int_equal(u->irq_rises[0], 2);
    free_machine(u, &pit_device);

    /* An older snapshot (no save time): every channel counts from its full count again. */
    u = new_machine(&pit_device);
    pit_import(u, &k, 0);
    assert_int_equal(read_count_lohi(u, 0), 4773);
    assert_int_equal(read_count_lohi(u, 2), 11931);
    free_machine(u, &pit_device);
}

/* One-shot channel 0: pending expiry at the right time; an expiry already delivered under KVM
 * is not delivered again. */
static void test_pit_import_one_shot(void **state)
{
    (void)state;
    const int64_t save = 99LL * 1000000000LL;
    struct kvm_pit_state2 k;
    memset(&k, 0, sizeof(k));
    kvm_channel(&k.channels[0], 4, 10000, save - (int64_t)ticks_ns(3000));
    kvm_channel(&k.channels[1], 2, 18, save);
    k.channels[2].mode = 0xff;
    struct device_test_machine *u = new_machine(&pit_device);
    pit_import(u, &k, save);
    dtm_advance(u, ticks_ns(6990));
    assert_int_equal(u->irq_rises[0], 0);
    dtm_advance(u, ticks_ns(20));
    assert_int_equal(u->irq_rises[0], 1);
    dtm_advance(u, 1000000000ULL);
    assert_int_equal(u->irq_rises[0], 1);
    free_machine(u, &pit_device);

    kvm_channel(&k.channels[0], 0, 10000, save - (int64_t)ticks_ns(12000)); /* expired before the save */
    u = new_machine(&pit_device);
    pit_import(u, &k, save);
    dtm_advance(u, 1000000000ULL);
    assert_int_equal(u->irq_rises[0], 0);
    free_machine(u, &pit_device);
}

/* Channel 2 with its gate low (port 0x61 bit 0 clear): mode 0 holds the count it had at the
 * save (the 8254 suspends counting; KVM itself does not model that) and resumes on the gate. */
static void test_pit_import_gate_low(void **state)
{
    (void)state;
    const int64_t save = 10LL * 1000000000LL;
    struct kvm_pit_state2 k;
    memset(&k, 0, sizeof(k));
    kvm_channel(&k.channels[0], 2, 4773, save);
    k.channels[1].mode = 0xff;
    kvm_channel(&k.channels[2], 0, 1000, save - (int64_t)ticks_ns(300));
    k.channels[2].gate = 0;
    k.flags = KVM_PIT_FLAGS_SPEAKER_DATA_ON;
    struct device_test_machine *u = new_machine(&pit_device);
    pit_import(u, &k, save);
    assert_int_equal(dtm_inb(u, 0x61) & 0x23, 0x02); /* gate off, speaker data on, output low */
    u->now_ns += ticks_ns(5000);
    assert_int_equal(read_count_lohi(u, 2), 700);
    dtm_outb(u, 0x61, 0x01);
    u->now_ns += ticks_ns(200);
    assert_int_equal(read_count_lohi(u, 2), 500);
    u->now_ns += ticks_ns(500);
    assert_int_equal(dtm_inb(u, 0x61) & 0x20, 0x20);
    free_machine(u, &pit_device);
}

static void test_pit_import_refusals(void **state)
{
    (void)state;
    struct kvm_pit_state2 good, k;
    memset(&good, 0, sizeof(good));
    kvm_channel(&good.channels[0], 2, 4773, 1000);
    kvm_channel(&good.channels[1], 2, 18, 1000);
    kvm_channel(&good.channels[2], 0, 100, 1000);
    struct device_test_machine *u = new_machine(&pit_device);
    char err[256] = "";
    assert_int_equal(pit_import_kvm(u->m.pit, &good, -5, true, err, sizeof(err)), -EINVAL);
    struct {
        unsigned ch;
        const char *what;
    } cases[] = {
        {0, "mode"}, {1, "rw_mode"}, {2, "count"}, {0, "gate"}, {1, "write_state"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        k = good;
        struct kvm_pit_channel_state *c = &k.channels[cases[i].ch];
        switch (i) {
        case 0: c->mode = 6; break;
        case 1: c->rw_mode = 0; break;
        case 2: c->count = 0x10001; break;
        case 3: c->gate = 2; break;
        default: c->write_state = 5; break;
        }
        err[0] = 0;
        assert_int_equal(pit_import_kvm(u->m.pit, &k, 2000, true, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, cases[i].what));
    }
    /* nothing applied: channel 0 is still unprogrammed, so no tick ever comes */
    assert_int_equal(pit_import_kvm(u->m.pit, &good, 2000, false, err, sizeof(err)), 0);
    dtm_advance(u, 100000000ULL);
    assert_int_equal(u->irq_rises[0], 0);
    free_machine(u, &pit_device);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pic_round_trip),
        cmocka_unit_test(test_pic_mid_init),
        cmocka_unit_test(test_pic_import_refusals),
        cmocka_unit_test(test_pit_round_trip),
        cmocka_unit_test(test_pit_periodic_tick_after_round_trip),
        cmocka_unit_test(test_pit_import_rebases_load_time),
        cmocka_unit_test(test_pit_import_one_shot),
        cmocka_unit_test(test_pit_import_gate_low),
        cmocka_unit_test(test_pit_import_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
