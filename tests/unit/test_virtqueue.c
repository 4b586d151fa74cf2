/* Unit tests for devices/virtqueue and devices/virtio_pci: well-formed chains, and hostile
 * descriptor chains (out-of-range addresses and indices, loops, zero lengths, oversized chains,
 * misordered segments, malformed indirect tables) that must break the queue without touching memory outside guest RAM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <string.h>

#include "devices/pci.h"
#include "devices/virtio_pci.h"
#include "devices/virtqueue.h"
#include "tests/unit/virtio_test_driver.h"
#include "vmm/machine.h"

#define QSZ 8
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define DATA 0x10000
#define RAM (1u << 20)

struct fixture {
    struct guest_mem mem;
    struct virtq q;
    struct virtq_elem e;
};

static struct vring_desc *desc(struct fixture *f) { return guest_mem_ptr(&f->mem, DESC, 16 * QSZ); }
static struct vring_avail *avail(struct fixture *f) { return guest_mem_ptr(&f->mem, AVAIL, 6 + 2 * QSZ); }
static struct vring_used *used(struct fixture *f) { return guest_mem_ptr(&f->mem, USED, 6 + 8 * QSZ); }

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(guest_mem_init(&f.mem, RAM), 0);
    virtq_reset(&f.q, &f.mem);
    f.q.size = QSZ;
    f.q.desc_gpa = DESC;
    f.q.avail_gpa = AVAIL;
    f.q.used_gpa = USED;
    assert_int_equal(virtq_enable(&f.q), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    guest_mem_free(&f->mem);
    return 0;
}

static void set_desc(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    desc(f)[i] = (struct vring_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

static void publish(struct fixture *f, uint16_t head)
{
    struct vring_avail *a = avail(f);
    a->ring[a->idx % QSZ] = head;
    a->idx++;
}

static void test_empty_queue_has_nothing(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(virtq_pop(&f->q, &f->e), 0);
}

static void test_well_formed_chain(void **state)
{
    struct fixture *f = *state;
    uint8_t *ram = guest_mem_ptr(&f->mem, DATA, 64);
    memcpy(ram, "request!", 8);
    set_desc(f, 0, DATA, 8, VRING_DESC_F_NEXT, 3);
    set_desc(f, 3, DATA + 16, 4, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 5);
    set_desc(f, 5, DATA + 32, 1, VRING_DESC_F_WRITE, 0);
    publish(f, 0);
    assert_int_equal(virtq_pop(&f->q, &f->e), 1);
    assert_int_equal(f->e.head, 0);
    assert_int_equal(f->e.nout, 1);
    assert_int_equal(f->e.nin, 2);
    assert_int_equal(f->e.out_len, 8);
    assert_int_equal(f->e.in_len, 5);
    char buf[8];
    assert_int_equal(iov_to_buf(f->e.out, f->e.nout, 0, buf, 8), 8);
    assert_memory_equal(buf, "request!", 8);
    assert_int_equal(iov_from_buf(f->e.in, f->e.nin, 0, "abcde", 5), 5);
    assert_memory_equal(ram + 16, "abcd", 4);
    assert_int_equal(ram[32], 'e');
    virtq_push(&f->q, &f->e, 5);
    assert_int_equal(used(f)->idx, 1);
    assert_int_equal(used(f)->ring[0].id, 0);
    assert_int_equal(used(f)->ring[0].len, 5);
    assert_int_equal(virtq_pop(&f->q, &f->e), 0);
}

static void test_zero_length_descriptor_skipped(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA, 0, VRING_DESC_F_NEXT, 1);
    set_desc(f, 1, DATA, 4, VRING_DESC_F_WRITE, 0);
    publish(f, 0);
    assert_int_equal(virtq_pop(&f->q, &f->e), 1);
    assert_int_equal(f->e.nout, 0);
    assert_int_equal(f->e.nin, 1);
}

static void expect_broken(struct fixture *f)
{
    assert_int_equal(virtq_pop(&f->q, &f->e), -EIO);
    assert_true(f->q.broken);
    /* Stays broken: no further chain is consumed. */
    assert_int_equal(virtq_pop(&f->q, &f->e), -EIO);
}

static void test_address_outside_ram(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, RAM - 4, 8, 0, 0); /* straddles the end of RAM */
    publish(f, 0);
    expect_broken(f);
}

static void test_huge_address_wraps(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, UINT64_MAX - 2, 16, 0, 0);
    publish(f, 0);
    expect_broken(f);
}

static void test_head_index_out_of_range(void **state)
{
    struct fixture *f = *state;
    publish(f, QSZ);
    expect_broken(f);
}

static void test_next_index_out_of_range(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA, 4, VRING_DESC_F_NEXT, 200);
    publish(f, 0);
    expect_broken(f);
}

static void test_loop_detected(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA, 4, VRING_DESC_F_NEXT, 1);
    set_desc(f, 1, DATA, 4, VRING_DESC_F_NEXT, 0);
    publish(f, 0);
    expect_broken(f);
}

static void test_self_loop_zero_length(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 2, DATA, 0, VRING_DESC_F_NEXT, 2);
    publish(f, 2);
    expect_broken(f);
}

static void test_readable_after_writable(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA, 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    set_desc(f, 1, DATA, 4, 0, 0);
    publish(f, 0);
    expect_broken(f);
}

static void test_indirect_not_negotiated(void **state)
{
    struct fixture *f = *state;
    set_desc(f, 0, DATA, 16, VRING_DESC_F_INDIRECT, 0);
    publish(f, 0);
    expect_broken(f);
}

#define TABLE 0x8000 /* an indirect descriptor table in guest RAM */

static void set_table_desc(struct fixture *f, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    struct vring_desc d = {.addr = addr, .len = len, .flags = flags, .next = next};
    guest_mem_write(&f->mem, TABLE + 16u * i, &d, sizeof(d));
}

static void test_indirect_table(void **state)
{
    struct fixture *f = *state;
    f->q.indirect = true;
    /* The chain lives in a 4-entry table, linked out of order; the ring holds only its head. */
    set_table_desc(f, 0, DATA, 8, VRING_DESC_F_NEXT, 2);
    set_table_desc(f, 2, DATA + 16, 4, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 3);
    set_table_desc(f, 3, DATA + 32, 1, VRING_DESC_F_WRITE, 0);
    set_desc(f, 4, TABLE, 4 * 16, VRING_DESC_F_INDIRECT, 0);
    publish(f, 4);
    assert_int_equal(virtq_pop(&f->q, &f->e), 1);
    assert_int_equal(f->e.head, 4);
    assert_int_equal(f->e.nout, 1);
    assert_int_equal(f->e.nin, 2);
    assert_int_equal(f->e.out_len, 8);
    assert_int_equal(f->e.in_len, 5);
    assert_ptr_equal(f->e.in[1].iov_base, guest_mem_ptr(&f->mem, DATA + 32, 1));
    virtq_push(&f->q, &f->e, 5);
    assert_int_equal(used(f)->ring[0].id, 4);
}

static void test_indirect_hostile(void **state)
{
    struct fixture *f = *state;
    /* Each case breaks the queue; a fresh queue for the next. */
    struct {
        uint64_t addr;
        uint32_t len;
        uint16_t flags;
        uint16_t next_in_table; /* the table's entry 0 links here */
    } cases[] = {
        {TABLE, 0, VRING_DESC_F_INDIRECT, 0},                               /* empty table */
        {TABLE, 24, VRING_DESC_F_INDIRECT, 0},                              /* not whole descriptors */
        {TABLE, 16 * 257, VRING_DESC_F_INDIRECT, 0},                        /* more than 256 entries */
        {RAM - 16, 32, VRING_DESC_F_INDIRECT, 0},                           /* table past the end of RAM */
        {TABLE, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 0},          /* INDIRECT with NEXT */
        {TABLE, 32, VRING_DESC_F_INDIRECT, 2},                              /* next beyond the table */
        {TABLE, 32, VRING_DESC_F_INDIRECT, 0},                              /* entry 0 loops to itself */
    };
    for (unsigned c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        virtq_reset(&f->q, &f->mem);
        f->q.size = QSZ;
        f->q.desc_gpa = DESC;
        f->q.avail_gpa = AVAIL;
        f->q.used_gpa = USED;
        memset(avail(f), 0, 6 + 2 * QSZ);
        assert_int_equal(virtq_enable(&f->q), 0);
        f->q.indirect = true;
        set_table_desc(f, 0, DATA, 8, VRING_DESC_F_NEXT, cases[c].next_in_table);
        set_table_desc(f, 1, DATA, 8, 0, 0);
        set_desc(f, 0, cases[c].addr, cases[c].len, cases[c].flags, 1);
        set_desc(f, 1, DATA, 8, 0, 0);
        publish(f, 0);
        assert_int_equal(virtq_pop(&f->q, &f->e), -EIO);
        assert_true(f->q.broken);
    }
    /* An indirect descriptor inside a table (nested), and one after a direct descriptor. */
    for (unsigned c = 0; c < 2; c++) {
        virtq_reset(&f->q, &f->mem);
        f->q.size = QSZ;
        f->q.desc_gpa = DESC;
        f->q.avail_gpa = AVAIL;
        f->q.used_gpa = USED;
        memset(avail(f), 0, 6 + 2 * QSZ);
        assert_int_equal(virtq_enable(&f->q), 0);
        f->q.indirect = true;
        set_table_desc(f, 0, TABLE, 16, VRING_DESC_F_INDIRECT, 0);
        if (c == 0) {
            set_desc(f, 0, TABLE, 16, VRING_DESC_F_INDIRECT, 0);
        } else {
            set_desc(f, 0, DATA, 8, VRING_DESC_F_NEXT, 1);
            set_desc(f, 1, TABLE + 16, 16, VRING_DESC_F_INDIRECT, 0);
            set_table_desc(f, 1, DATA, 8, 0, 0);
        }
        publish(f, 0);
        assert_int_equal(virtq_pop(&f->q, &f->e), -EIO);
        assert_true(f->q.broken);
    }
}

static void test_oversized_chain(void **state)
{
    struct fixture *f = *state;
    /* Each descriptor stays inside RAM, but together they exceed the per-request bound. */
    guest_mem_free(&f->mem);
    assert_int_equal(guest_mem_init(&f->mem, 48u << 20), 0);
    virtq_reset(&f->q, &f->mem);
    f->q.size = QSZ;
    f->q.desc_gpa = DESC;
    f->q.avail_gpa = AVAIL;
    f->q.used_gpa = USED;
    assert_int_equal(virtq_enable(&f->q), 0);
    for (unsigned i = 0; i < 3; i++) set_desc(f, i, 0x100000, 40u << 20, VRING_DESC_F_NEXT, (uint16_t)(i + 1));
    set_desc(f, 3, 0x100000, 40u << 20, 0, 0);
    publish(f, 0);
    expect_broken(f);
}

static void test_avail_idx_runaway(void **state)
{
    struct fixture *f = *state;
    avail(f)->idx = QSZ + 1; /* claims more entries than the ring holds */
    expect_broken(f);
}

static void test_ring_outside_ram_refused(void **state)
{
    struct fixture *f = *state;
    struct virtq q;
    virtq_reset(&q, &f->mem);
    q.size = QSZ;
    q.desc_gpa = RAM - 16;
    q.avail_gpa = AVAIL;
    q.used_gpa = USED;
    assert_int_equal(virtq_enable(&q), -EINVAL);
    assert_true(q.broken);
    virtq_reset(&q, &f->mem);
    q.size = 6; /* not a power of two */
    q.desc_gpa = DESC;
    q.avail_gpa = AVAIL;
    q.used_gpa = USED;
    assert_int_equal(virtq_enable(&q), -EINVAL);
}

/* ---- the PCI transport, driven through config mechanism #1 and the BAR like a driver ---- */

static void notify_count(struct virtio_dev *d, unsigned q) { (*(int *)d->opaque)++; (void)q; }

static void test_virtio_pci_enumeration_and_negotiation(void **state)
{
    (void)state;
    struct machine *mp = vtd_machine_new(RAM);
    assert_non_null(mp);
    char err[128];
    static struct virtio_dev d;
    int notified = 0;
    static const struct virtio_ops ops = {
        .name = "virtio-test", .device_id = 4, .num_queues = 1, .queue_max = 16, .queue_notify = notify_count};
    assert_int_equal(virtio_pci_register(mp, &d, &ops, &notified, err, sizeof(err)), 0);

    /* Slot 0 is the host bridge, slot 1 our device; slot 2 is empty. */
    assert_int_equal(vtd_cfg_read(mp, 0, PCI_CLASS_DEVICE, 2), 0x0600);
    assert_int_equal(vtd_cfg_read(mp, 1, PCI_VENDOR_ID, 2), 0x1af4);
    assert_int_equal(vtd_cfg_read(mp, 1, PCI_DEVICE_ID, 2), 0x1044);
    assert_int_equal(vtd_cfg_read(mp, 2, PCI_VENDOR_ID, 2), 0xffff);
    assert_int_equal(vtd_cfg_read(mp, 1, PCI_INTERRUPT_PIN, 1), 1);
    unsigned irq = vtd_cfg_read(mp, 1, PCI_INTERRUPT_LINE, 1);

    /* BAR sizing as Linux does it: write all-ones, read the mask, restore. */
    uint32_t bar = vtd_cfg_read(mp, 1, PCI_BASE_ADDRESS_0, 4);
    assert_int_equal(bar & 0xf, 0);
    vtd_cfg_write(mp, 1, PCI_BASE_ADDRESS_0, 4, 0xffffffff);
    assert_int_equal(vtd_cfg_read(mp, 1, PCI_BASE_ADDRESS_0, 4), 0xffffc000);
    vtd_cfg_write(mp, 1, PCI_BASE_ADDRESS_0, 4, bar);
    assert_int_equal(vtd_cfg_read(mp, 1, PCI_BASE_ADDRESS_0, 4), bar);

    /* Walk the capability list and find the four virtio structures. */
    assert_true(vtd_cfg_read(mp, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
    unsigned found = 0;
    for (unsigned p = vtd_cfg_read(mp, 1, PCI_CAPABILITY_LIST, 1), n = 0; p && n < 16; p = vtd_cfg_read(mp, 1, p + 1, 1), n++) {
        assert_int_equal(vtd_cfg_read(mp, 1, p, 1), PCI_CAP_ID_VNDR);
        found |= 1u << vtd_cfg_read(mp, 1, p + 3, 1);
    }
    assert_int_equal(found, (1u << VIRTIO_PCI_CAP_COMMON_CFG) | (1u << VIRTIO_PCI_CAP_NOTIFY_CFG) |
                                (1u << VIRTIO_PCI_CAP_ISR_CFG));

    /* Negotiate: a driver without VERSION_1 is refused FEATURES_OK. */
    uint64_t v;
#define COMMON(f) (bar + offsetof(struct virtio_pci_common_cfg, f))
    v = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;
    machine_mmio(mp, COMMON(device_status), &v, 1, true);
    v = 0;
    machine_mmio(mp, COMMON(guest_feature), &v, 4, true);
    v = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
    machine_mmio(mp, COMMON(device_status), &v, 1, true);
    machine_mmio(mp, COMMON(device_status), &v, 1, false);
    assert_false(v & VIRTIO_CONFIG_S_FEATURES_OK);
    v = 1;
    machine_mmio(mp, COMMON(guest_feature_select), &v, 4, true);
    v = 1; /* VIRTIO_F_VERSION_1 is bit 32 */
    machine_mmio(mp, COMMON(guest_feature), &v, 4, true);
    v = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK;
    machine_mmio(mp, COMMON(device_status), &v, 1, true);
    machine_mmio(mp, COMMON(device_status), &v, 1, false);
    assert_true(v & VIRTIO_CONFIG_S_FEATURES_OK);

    /* A queue with its rings outside RAM: the device asks for a reset, the host survives. */
    v = 0;
    machine_mmio(mp, COMMON(queue_select), &v, 2, true);
    machine_mmio(mp, COMMON(queue_size), &v, 2, false);
    assert_int_equal(v, 16);
    v = 0xfff00000;
    machine_mmio(mp, COMMON(queue_desc_lo), &v, 4, true);
    v = 1;
    machine_mmio(mp, COMMON(queue_enable), &v, 2, true);
    machine_mmio(mp, COMMON(device_status), &v, 1, false);
    assert_true(v & VIRTIO_CONFIG_S_NEEDS_RESET);

    /* Reset, then a good queue; notify reaches the device once DRIVER_OK. */
    v = 0;
    machine_mmio(mp, COMMON(device_status), &v, 1, true);
    machine_mmio(mp, COMMON(device_status), &v, 1, false);
    assert_int_equal(v, 0);
    v = DESC;
    machine_mmio(mp, COMMON(queue_desc_lo), &v, 4, true);
    v = AVAIL;
    machine_mmio(mp, COMMON(queue_avail_lo), &v, 4, true);
    v = USED;
    machine_mmio(mp, COMMON(queue_used_lo), &v, 4, true);
    v = 1;
    machine_mmio(mp, COMMON(queue_enable), &v, 2, true);
    v = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK;
    machine_mmio(mp, COMMON(device_status), &v, 1, true);
    v = 0;
    machine_mmio(mp, bar + 0x3000, &v, 2, true);
    assert_int_equal(notified, 1);

    /* Interrupt: notify raises INTx, reading the ISR returns the cause and lowers it. */
    virtio_notify_queue(&d, 0);
    assert_int_equal(vtd_irq_levels[irq], 1);
    machine_mmio(mp, bar + 0x1000, &v, 1, false);
    assert_int_equal(v, 1);
    assert_int_equal(vtd_irq_levels[irq], 0);
#undef COMMON
    vtd_machine_free(mp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_queue_has_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_well_formed_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_length_descriptor_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_outside_ram, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_address_wraps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_index_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_index_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_self_loop_zero_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readable_after_writable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_not_negotiated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_indirect_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_avail_idx_runaway, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_outside_ram_refused, setup, teardown),
        cmocka_unit_test(test_virtio_pci_enumeration_and_negotiation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
