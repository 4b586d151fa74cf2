/* device_test_machine: a bare machine for device unit tests: buses, device lock, timers, a
 * little guest RAM and a fake CPU backend that records interrupt line levels and edges.
 * Header-only so that it is linked into no other test binary. */
#ifndef VMD_TESTS_DEVICE_TEST_MACHINE_H
#define VMD_TESTS_DEVICE_TEST_MACHINE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/pic.h"
#include "devices/pit.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

struct device_test_machine {
    struct machine m;
    struct vm_config cfg;
    int irq_level[MACHINE_NUM_GSI];
    unsigned irq_rises[MACHINE_NUM_GSI]; /* 0 -> 1 transitions seen */
    uint8_t console[4096];               /* what the guest wrote to the console */
    size_t console_len;
    uint64_t now_ns;                     /* the fake clock devices may be pointed at */
};

/* The fake backend's set_irq needs to find the recorder from the machine; the machine is the
 * first member of device_test_machine, so a cast recovers it. */
static inline struct device_test_machine *dtm_of(struct machine *m) { return (struct device_test_machine *)m; }

static inline void dtm_set_irq(struct machine *m, unsigned gsi, int level)
{
    struct device_test_machine *t = dtm_of(m);
    if (gsi >= MACHINE_NUM_GSI) return;
    if (level && !t->irq_level[gsi]) t->irq_rises[gsi]++;
    t->irq_level[gsi] = level ? 1 : 0;
}

static inline void dtm_kick(struct vcpu *v) { (void)v; }

static const struct cpu_backend_ops dtm_backend = {
    .name = "test", .set_irq = dtm_set_irq, .kick = dtm_kick, .has_kernel_irqchip = false};

/* Like the emu backend: ISA lines go to the i8259 model as well as to the recorder. */
static inline void dtm_set_irq_pic(struct machine *m, unsigned gsi, int level)
{
    dtm_set_irq(m, gsi, level);
    if (m->pic && gsi < 16) pic_set_irq(m->pic, gsi, level);
}

static const struct cpu_backend_ops dtm_backend_pic = {
    .name = "test-pic", .set_irq = dtm_set_irq_pic, .kick = dtm_kick, .has_kernel_irqchip = false};

static const struct cpu_backend_ops dtm_backend_irqchip = {
    .name = "test-irqchip", .set_irq = dtm_set_irq, .kick = dtm_kick, .has_kernel_irqchip = true};

static inline void dtm_console_out(void *opaque, const uint8_t *buf, size_t len)
{
    struct device_test_machine *t = opaque;
    for (size_t i = 0; i < len && t->console_len < sizeof(t->console); i++) t->console[t->console_len++] = buf[i];
}

static inline uint64_t dtm_clock(void *opaque) { return ((struct device_test_machine *)opaque)->now_ns; }

/* Build the machine with `mem_bytes` of RAM and run one device's init. */
static inline void dtm_setup(struct device_test_machine *t, uint64_t mem_bytes, const struct cpu_backend_ops *ops,
                             const struct device_desc *dev)
{
    memset(t, 0, sizeof(*t));
    struct machine *m = &t->m;
    m->cfg = &t->cfg;
    m->backend = ops;
    atomic_init(&m->stop, MACHINE_RUNNING);
    m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(m->stop_fd >= 0);
    pthread_mutex_init(&m->dev_lock, NULL);
    bus_init(&m->pio);
    bus_init(&m->mmio);
    assert_int_equal(guest_mem_init(&m->mem, mem_bytes), 0);
    m->console_out = dtm_console_out;
    m->console_opaque = t;
    t->now_ns = 1000000000ULL;
    char err[256] = "";
    int r = dev->init(m, err, sizeof(err));
    if (r < 0) fail_msg("%s init: %s", dev->name, err);
}

static inline void dtm_teardown(struct device_test_machine *t, const struct device_desc *dev)
{
    struct machine *m = &t->m;
    dev->destroy(m);
    assert_int_equal(m->pio.count, 0); /* the device released every port it claimed */
    assert_int_equal(m->mmio.count, 0);
    guest_mem_free(&m->mem);
    bus_free(&m->pio);
    bus_free(&m->mmio);
    pthread_mutex_destroy(&m->dev_lock);
    close(m->stop_fd);
}

static inline uint8_t dtm_inb(struct device_test_machine *t, uint16_t port)
{
    uint64_t v = 0;
    machine_pio(&t->m, port, &v, 1, false);
    return (uint8_t)v;
}

static inline uint64_t dtm_in(struct device_test_machine *t, uint16_t port, unsigned size)
{
    uint64_t v = 0;
    machine_pio(&t->m, port, &v, size, false);
    return v;
}

static inline void dtm_outb(struct device_test_machine *t, uint16_t port, uint8_t v)
{
    uint64_t d = v;
    machine_pio(&t->m, port, &d, 1, true);
}

static inline void dtm_out(struct device_test_machine *t, uint16_t port, uint64_t v, unsigned size)
{
    machine_pio(&t->m, port, &v, size, true);
}

/* ---- the i8259 pair (t->m.pic), as Linux drives it ---- */

/* Linux's init_8259A: vectors 0x30 / 0x38, cascade on IRQ2, every line unmasked afterwards. */
static inline void dtm_pic_init_linux(struct device_test_machine *t, bool auto_eoi)
{
    dtm_outb(t, 0x21, 0xFF);
    dtm_outb(t, 0xA1, 0xFF);
    dtm_outb(t, 0x20, 0x11); /* ICW1: edge, cascade, ICW4 */
    dtm_outb(t, 0x21, 0x30); /* ICW2 */
    dtm_outb(t, 0x21, 0x04); /* ICW3: slave on IRQ2 */
    dtm_outb(t, 0x21, auto_eoi ? 0x03 : 0x01);
    dtm_outb(t, 0xA0, 0x11);
    dtm_outb(t, 0xA1, 0x38);
    dtm_outb(t, 0xA1, 0x02);
    dtm_outb(t, 0xA1, 0x01);
    dtm_outb(t, 0x21, 0x00);
    dtm_outb(t, 0xA1, 0x00);
}

/* Interrupt acknowledge cycle: the vector, or -1. */
static inline int dtm_pic_ack(struct device_test_machine *t)
{
    pthread_mutex_lock(&t->m.dev_lock);
    int v = pic_read_irq(t->m.pic);
    pthread_mutex_unlock(&t->m.dev_lock);
    return v;
}

/* Set ISA IRQ line `irq` to `level`. */
static inline void dtm_pic_line(struct device_test_machine *t, unsigned irq, int level)
{
    pthread_mutex_lock(&t->m.dev_lock);
    pic_set_irq(t->m.pic, irq, level);
    pthread_mutex_unlock(&t->m.dev_lock);
}

/* Advance the fake clock and run due timers, as a backend's loop would. */
static inline void dtm_advance(struct device_test_machine *t, uint64_t ns)
{
    t->now_ns += ns;
    pthread_mutex_lock(&t->m.dev_lock);
    timers_run(&t->m.timers, t->now_ns);
    pthread_mutex_unlock(&t->m.dev_lock);
}

/* Save `dev` from `from` and restore it into `to` the way snapshot_restore does (validate,
 * then apply). Also checks that every truncation of the saved state is refused. */
static inline void dtm_snapshot_copy(struct device_test_machine *from, struct device_test_machine *to,
                                     const struct device_desc *dev)
{
    struct snap_buf b;
    snap_buf_init(&b);
    pthread_mutex_lock(&from->m.dev_lock);
    assert_int_equal(dev->save(&from->m, &b), 0);
    pthread_mutex_unlock(&from->m.dev_lock);
    assert_false(b.failed);
    char err[256] = "";
    for (size_t n = 0; n < b.len; n++) {
        struct snap_reader cut = {.data = b.data, .len = n};
        int r = dev->restore(&to->m, &cut, dev->state_version, false, err, sizeof(err));
        if (r == 0 && !cut.short_read) fail_msg("%s: state cut to %zu of %zu bytes was accepted", dev->name, n, b.len);
    }
    struct snap_reader other = {.data = b.data, .len = b.len};
    assert_true(dev->restore(&to->m, &other, dev->state_version + 1, false, err, sizeof(err)) < 0);
    pthread_mutex_lock(&to->m.dev_lock);
    for (int apply = 0; apply <= 1; apply++) {
        struct snap_reader r = {.data = b.data, .len = b.len};
        int rc = dev->restore(&to->m, &r, dev->state_version, apply, err, sizeof(err));
        if (rc < 0) fail_msg("%s restore: %s", dev->name, err);
        assert_false(r.short_read);
        assert_int_equal(r.pos, b.len); /* every byte saved was consumed */
    }
    pthread_mutex_unlock(&to->m.dev_lock);
    snap_buf_free(&b);
}

/* The PIC's or PIT's state copied from one machine to the other as a snapshot carries it
 * (get, encode; decode, set), checking that every truncation of the encoding is refused and
 * that decoding consumes all of it. */
static inline void dtm_check_cuts(const struct snap_buf *b, int (*decode)(struct snap_reader *r, char *err, size_t))
{
    char err[256];
    for (size_t n = 0; n < b->len; n++) {
        struct snap_reader cut = {.data = b->data, .len = n};
        if (decode(&cut, err, sizeof(err)) == 0 && !cut.short_read) fail_msg("state cut to %zu of %zu bytes accepted", n, b->len);
    }
}

static inline int dtm_decode_pic(struct snap_reader *r, char *err, size_t errlen)
{
    struct irqchip_pic s;
    bool present;
    return pic_state_decode(r, &present, &s, err, errlen);
}

static inline int dtm_decode_pit(struct snap_reader *r, char *err, size_t errlen)
{
    struct irqchip_pit s;
    bool present;
    return pit_state_decode(r, &present, &s, err, errlen);
}

static inline void dtm_pic_copy(struct device_test_machine *from, struct device_test_machine *to)
{
    struct irqchip_pic s;
    struct snap_buf b;
    snap_buf_init(&b);
    pthread_mutex_lock(&from->m.dev_lock);
    pic_get_state(from->m.pic, &s);
    pthread_mutex_unlock(&from->m.dev_lock);
    pic_state_encode(&b, &s);
    dtm_check_cuts(&b, dtm_decode_pic);
    struct snap_reader r = {.data = b.data, .len = b.len};
    bool present = false;
    char err[256];
    if (pic_state_decode(&r, &present, &s, err, sizeof(err))) fail_msg("pic: %s", err);
    assert_true(present);
    assert_int_equal(r.pos, b.len);
    pthread_mutex_lock(&to->m.dev_lock);
    pic_set_state(to->m.pic, &s);
    pthread_mutex_unlock(&to->m.dev_lock);
    snap_buf_free(&b);
}

static inline void dtm_pit_copy(struct device_test_machine *from, struct device_test_machine *to)
{
    struct irqchip_pit s;
    struct snap_buf b;
    snap_buf_init(&b);
    pthread_mutex_lock(&from->m.dev_lock);
    pit_get_state(from->m.pit, &s);
    pthread_mutex_unlock(&from->m.dev_lock);
    pit_state_encode(&b, &s);
    dtm_check_cuts(&b, dtm_decode_pit);
    struct snap_reader r = {.data = b.data, .len = b.len};
    bool present = false;
    char err[256];
    if (pit_state_decode(&r, &present, &s, err, sizeof(err))) fail_msg("pit: %s", err);
    assert_true(present);
    assert_int_equal(r.pos, b.len);
    pthread_mutex_lock(&to->m.dev_lock);
    pit_set_state(to->m.pit, &s);
    pthread_mutex_unlock(&to->m.dev_lock);
    snap_buf_free(&b);
}

#endif
