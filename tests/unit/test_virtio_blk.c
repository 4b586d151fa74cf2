/* Unit tests for devices/virtio_blk, driven through PCI and a virtqueue like a guest driver:
 * reads return the image's bytes, writes reach the file, FLUSH, GET_ID, read-only disks refuse
 * writes, out-of-range requests fail, and a missing image is a clear error; the cloud-init
 * seed's device is read-only with serial vmd-cidata and counts its I/O in its own slot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <linux/virtio_blk.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio_blk.h"
#include "tests/unit/virtio_test_driver.h"
#include "vmm/device.h"
#include "vmm/snapshot.h"
#include "vmm/vm_config.h"

#define RING 0x10000
#define HDR 0x20000
#define DATA 0x21000
#define STATUS 0x30000

static char image[64];

static int make_image(void **state)
{
    (void)state;
    snprintf(image, sizeof(image), "/tmp/vmd-test-blk-XXXXXX");
    int fd = mkstemp(image);
    assert_true(fd >= 0);
    uint8_t sector[512];
    for (unsigned s = 0; s < 64; s++) {
        memset(sector, (int)s, sizeof(sector));
        assert_int_equal(write(fd, sector, sizeof(sector)), 512);
    }
    close(fd);
    return 0;
}

static int remove_image(void **state)
{
    (void)state;
    unlink(image);
    return 0;
}

static uint8_t request(struct vtd *d, uint32_t type, uint64_t sector, uint32_t len, int data_writable, uint32_t *used_len)
{
    struct machine *m = d->m;
    struct virtio_blk_outhdr hdr = {.type = type, .sector = sector};
    guest_mem_write(&m->mem, HDR, &hdr, sizeof(hdr));
    uint8_t st = 0xee;
    guest_mem_write(&m->mem, STATUS, &st, 1);
    uint64_t addr[3] = {HDR, DATA, STATUS};
    uint32_t lens[3] = {sizeof(hdr), len, 1};
    int wr[3] = {0, data_writable, 1};
    uint16_t before = d->q[0].next_avail;
    if (len) {
        vtd_submit(d, 0, 3, addr, lens, wr);
    } else {
        uint64_t a2[2] = {HDR, STATUS};
        uint32_t l2[2] = {sizeof(hdr), 1};
        int w2[2] = {0, 1};
        vtd_submit(d, 0, 2, a2, l2, w2);
    }
    assert_int_equal(vtd_wait_used(d, 0, (uint16_t)(before + 1), 5000), 0);
    if (used_len) *used_len = vtd_used_len(d, 0, before);
    guest_mem_read(&m->mem, STATUS, &st, 1);
    return st;
}

static void test_read_write_flush_id(void **state)
{
    (void)state;
    struct machine *m = vtd_machine_new(1 << 20);
    assert_non_null(m);
    struct vm_disk disk = {.path = image, .readonly = false};
    char err[256];
    assert_int_equal(virtio_blk_create(m, &disk, 0, err, sizeof(err)), 0);
    struct vtd d;
    uint8_t status = vtd_init(&d, m, 1, 1ULL << VIRTIO_BLK_F_FLUSH, RING, 1);
    assert_true(status & 4); /* DRIVER_OK accepted */

    /* Capacity in the device config. */
    uint64_t cap = 0;
    machine_mmio(m, d.bar + 0x2000, &cap, 8, false);
    assert_int_equal(cap, 64);

    /* Read sectors 5-6: the image holds the sector number in every byte. */
    uint32_t used_len;
    assert_int_equal(request(&d, VIRTIO_BLK_T_IN, 5, 1024, 1, &used_len), VIRTIO_BLK_S_OK);
    assert_int_equal(used_len, 1025);
    uint8_t buf[1024];
    guest_mem_read(&m->mem, DATA, buf, sizeof(buf));
    assert_int_equal(buf[0], 5);
    assert_int_equal(buf[511], 5);
    assert_int_equal(buf[512], 6);

    /* Write sector 9, flush, and see it in the file. */
    memset(buf, 0xab, 512);
    guest_mem_write(&m->mem, DATA, buf, 512);
    assert_int_equal(request(&d, VIRTIO_BLK_T_OUT, 9, 512, 0, NULL), VIRTIO_BLK_S_OK);
    assert_int_equal(request(&d, VIRTIO_BLK_T_FLUSH, 0, 0, 0, NULL), VIRTIO_BLK_S_OK);
    int fd = open(image, O_RDONLY);
    uint8_t file[512];
    assert_int_equal(pread(fd, file, 512, 9 * 512), 512);
    close(fd);
    assert_int_equal(file[0], 0xab);
    assert_int_equal(file[511], 0xab);

    /* GET_ID, an out-of-range read, a misaligned length, and an unknown type. */
    assert_int_equal(request(&d, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, 1, NULL), VIRTIO_BLK_S_OK);
    char id[VIRTIO_BLK_ID_BYTES + 1] = {0};
    guest_mem_read(&m->mem, DATA, id, VIRTIO_BLK_ID_BYTES);
    assert_string_equal(id, "vmd-disk0");
    assert_int_equal(request(&d, VIRTIO_BLK_T_IN, 63, 1024, 1, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(&d, VIRTIO_BLK_T_IN, UINT64_MAX / 256, 512, 1, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(&d, VIRTIO_BLK_T_IN, 0, 100, 1, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(request(&d, 0x1234, 0, 512, 1, NULL), VIRTIO_BLK_S_UNSUPP);
    vtd_machine_free(m);
}

static void test_readonly_refuses_writes(void **state)
{
    (void)state;
    struct machine *m = vtd_machine_new(1 << 20);
    struct vm_disk disk = {.path = image, .readonly = true};
    char err[256];
    assert_int_equal(virtio_blk_create(m, &disk, 0, err, sizeof(err)), 0);
    struct vtd d;
    vtd_init(&d, m, 1, 1ULL << VIRTIO_BLK_F_RO, RING, 1);
    uint8_t buf[512];
    memset(buf, 0x55, sizeof(buf));
    guest_mem_write(&m->mem, DATA, buf, 512);
    assert_int_equal(request(&d, VIRTIO_BLK_T_OUT, 2, 512, 0, NULL), VIRTIO_BLK_S_IOERR);
    int fd = open(image, O_RDONLY);
    uint8_t file[1];
    assert_int_equal(pread(fd, file, 1, 2 * 512), 1);
    close(fd);
    assert_int_equal(file[0], 2);
    vtd_machine_free(m);
}

/* The cloud-init seed's device (index VM_SEED_DISK_INDEX): read-only, serial vmd-cidata, its I/O
 * counted in its own slot after the VM's disks. */
static void test_cloud_init_seed_disk(void **state)
{
    (void)state;
    struct machine *m = vtd_machine_new(1 << 20);
    struct vm_disk disk = {.path = image, .readonly = true, .format = DISK_FORMAT_RAW};
    char err[256];
    assert_int_equal(virtio_blk_create(m, &disk, VM_SEED_DISK_INDEX, err, sizeof(err)), 0);
    struct vtd d;
    uint8_t status = vtd_init(&d, m, 1, 1ULL << VIRTIO_BLK_F_RO, RING, 1);
    assert_true(status & 4);
    assert_int_equal(request(&d, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, 1, NULL), VIRTIO_BLK_S_OK);
    char id[VIRTIO_BLK_ID_BYTES + 1] = "";
    guest_mem_read(&m->mem, DATA, id, VIRTIO_BLK_ID_BYTES);
    assert_string_equal(id, "vmd-cidata");
    assert_int_equal(request(&d, VIRTIO_BLK_T_IN, 3, 512, 1, NULL), VIRTIO_BLK_S_OK);
    uint8_t b;
    guest_mem_read(&m->mem, DATA, &b, 1);
    assert_int_equal(b, 3);
    assert_int_equal(request(&d, VIRTIO_BLK_T_OUT, 3, 512, 0, NULL), VIRTIO_BLK_S_IOERR);
    assert_int_equal(m->io_stats.disk_read_ops[VM_SEED_DISK_INDEX], 1);
    assert_int_equal(m->io_stats.disk_read_bytes[VM_SEED_DISK_INDEX], 512);
    for (unsigned i = 0; i < VM_MAX_DISKS; i++) assert_int_equal(m->io_stats.disk_read_ops[i], 0);
    vtd_machine_free(m);
}

static void test_missing_image_is_a_clear_error(void **state)
{
    (void)state;
    struct machine *m = vtd_machine_new(1 << 20);
    struct vm_disk disk = {.path = "/nonexistent/disk.img"};
    char err[256];
    assert_int_equal(virtio_blk_create(m, &disk, 0, err, sizeof(err)), -ENOENT);
    assert_string_equal(err, "disk '/nonexistent/disk.img': No such file or directory");
    vtd_machine_free(m);
}

static void test_second_writer_refused(void **state)
{
    (void)state;
    struct machine *m = vtd_machine_new(1 << 20);
    struct vm_disk disk = {.path = image};
    char err[256];
    assert_int_equal(virtio_blk_create(m, &disk, 0, err, sizeof(err)), 0);
    assert_int_equal(virtio_blk_create(m, &disk, 1, err, sizeof(err)), -EBUSY);
    assert_non_null(strstr(err, "in use"));
    vtd_machine_free(m);
}

/* The PCI bus state (config space, virtio negotiation, queue positions) survives a save and
 * restore: after scribbling over the transport, restoring brings the queue back and requests
 * keep working where they left off. */
static void test_pci_virtio_state_snapshot(void **state)
{
    (void)state;
    struct machine *m = vtd_machine_new(1 << 20);
    struct vm_disk disk = {.path = image};
    char err[256];
    assert_int_equal(virtio_blk_create(m, &disk, 0, err, sizeof(err)), 0);
    struct vtd d;
    vtd_init(&d, m, 1, 0, RING, 1);
    assert_int_equal(request(&d, VIRTIO_BLK_T_IN, 3, 512, 1, NULL), VIRTIO_BLK_S_OK);
    const struct device_desc *pci = NULL;
    for (unsigned i = 0; i < devices_count(); i++)
        if (!strcmp(device_at(i)->name, "pci")) pci = device_at(i);
    assert_non_null(pci);
    struct snap_buf b;
    snap_buf_init(&b);
    pthread_mutex_lock(&m->dev_lock);
    assert_int_equal(pci->save(m, &b), 0);
    pthread_mutex_unlock(&m->dev_lock);
    uint8_t st = vtd_status(&d);
    /* Reset the device (as a guest driver unbind would): status 0, queues gone. */
    uint64_t zero = 0;
    machine_mmio(m, d.bar + 0x14, &zero, 1, true);
    assert_int_equal(vtd_status(&d), 0);
    struct snap_reader r = {.data = b.data, .len = b.len};
    pthread_mutex_lock(&m->dev_lock);
    assert_int_equal(pci->restore(m, &r, 1, false, err, sizeof(err)), 0);
    pthread_mutex_unlock(&m->dev_lock);
    assert_int_equal(vtd_status(&d), 0); /* the dry run changed nothing */
    r.pos = 0;
    pthread_mutex_lock(&m->dev_lock);
    assert_int_equal(pci->restore(m, &r, 1, true, err, sizeof(err)), 0);
    pthread_mutex_unlock(&m->dev_lock);
    assert_int_equal(vtd_status(&d), st);
    /* The queue carries on from its saved position. */
    assert_int_equal(request(&d, VIRTIO_BLK_T_IN, 4, 512, 1, NULL), VIRTIO_BLK_S_OK);
    uint8_t buf[1];
    guest_mem_read(&m->mem, DATA, buf, 1);
    assert_int_equal(buf[0], 4);
    /* A truncated blob is refused. */
    struct snap_reader shortr = {.data = b.data, .len = b.len / 2};
    pthread_mutex_lock(&m->dev_lock);
    assert_int_not_equal(pci->restore(m, &shortr, 1, false, err, sizeof(err)), 0);
    pthread_mutex_unlock(&m->dev_lock);
    snap_buf_free(&b);
    vtd_machine_free(m);
}

/* With a local APIC (kvm), the device offers MSI-X: queue interrupts go to the programmed
 * vector as MSIs (not INTx), masked vectors wait in the PBA and fire on unmask, and a vector
 * number the device doesn't have reads back as NO_VECTOR. */
static uint64_t msi_addr;
static uint32_t msi_data;
static int msi_count;
static int fake_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
    (void)m;
    msi_addr = addr, msi_data = data, msi_count++;
    return 0;
}
static void fake_set_irq(struct machine *m, unsigned gsi, int level) { (void)m; if (gsi < 24) vtd_irq_levels[gsi] = level; }
static const struct cpu_backend_ops msi_backend = {.name = "msi-test", .set_irq = fake_set_irq, .send_msi = fake_send_msi};

static void test_msix_under_an_apic(void **state)
{
    (void)state;
    struct machine *m = vtd_machine_new(1 << 20);
    memset(vtd_irq_levels, 0, sizeof(vtd_irq_levels)); /* earlier tests left lines high */
    m->backend = &msi_backend;
    m->apic = true;
    struct vm_disk disk = {.path = image};
    char err[256];
    assert_int_equal(virtio_blk_create(m, &disk, 0, err, sizeof(err)), 0);
    /* find the MSI-X capability */
    unsigned cap = 0;
    for (unsigned p = vtd_cfg_read(m, 1, PCI_CAPABILITY_LIST, 1), n = 0; p && n < 16; p = vtd_cfg_read(m, 1, p + 1, 1), n++)
        if (vtd_cfg_read(m, 1, p, 1) == PCI_CAP_ID_MSIX) cap = p;
    assert_int_not_equal(cap, 0);
    unsigned nvec = (vtd_cfg_read(m, 1, cap + 2, 2) & 0x7ff) + 1;
    assert_int_equal(nvec, 2); /* one queue + config */
    uint32_t table = vtd_cfg_read(m, 1, cap + 4, 4);
    assert_int_equal(table & 7, 0); /* in BAR0 */
    struct vtd d;
    vtd_init(&d, m, 1, 0, RING, 1);
    uint64_t tbl = d.bar + (table & ~7u);
    for (unsigned v = 0; v < nvec; v++) {
        uint64_t x = 0xFEE00000u;
        machine_mmio(m, tbl + 16 * v, &x, 4, true);
        x = 0;
        machine_mmio(m, tbl + 16 * v + 4, &x, 4, true);
        x = 0x40 + v;
        machine_mmio(m, tbl + 16 * v + 8, &x, 4, true);
        x = 0; /* unmask */
        machine_mmio(m, tbl + 16 * v + 12, &x, 4, true);
    }
    vtd_cfg_write(m, 1, cap + 2, 2, 0x8000); /* MSI-X enable */
    uint64_t v = 1;
    machine_mmio(m, d.bar + 0x1a /* queue_msix_vector */, &v, 2, true);
    machine_mmio(m, d.bar + 0x1a, &v, 2, false);
    assert_int_equal(v, 1);
    v = 7; /* no such vector */
    machine_mmio(m, d.bar + 0x10 /* msix_config */, &v, 2, true);
    machine_mmio(m, d.bar + 0x10, &v, 2, false);
    assert_int_equal(v, 0xffff);
    v = 1;
    machine_mmio(m, d.bar + 0x1a, &v, 2, true);

    msi_count = 0;
    assert_int_equal(request(&d, VIRTIO_BLK_T_IN, 1, 512, 1, NULL), VIRTIO_BLK_S_OK);
    for (int i = 0; i < 1000 && msi_count == 0; i++) usleep(1000);
    assert_int_equal(msi_count, 1);
    assert_int_equal(msi_addr, 0xFEE00000u);
    assert_int_equal(msi_data, 0x41);
    unsigned irq = vtd_cfg_read(m, 1, PCI_INTERRUPT_LINE, 1);
    assert_int_equal(vtd_irq_levels[irq], 0); /* no INTx with MSI-X on */

    /* mask vector 1: the completion waits in the PBA, then fires on unmask */
    uint64_t one = 1;
    machine_mmio(m, tbl + 16 + 12, &one, 4, true);
    assert_int_equal(request(&d, VIRTIO_BLK_T_IN, 2, 512, 1, NULL), VIRTIO_BLK_S_OK);
    usleep(20000);
    assert_int_equal(msi_count, 1);
    uint64_t pba = 0;
    machine_mmio(m, d.bar + (vtd_cfg_read(m, 1, cap + 8, 4) & ~7u), &pba, 4, false);
    assert_int_equal(pba, 2);
    uint64_t zero = 0;
    machine_mmio(m, tbl + 16 + 12, &zero, 4, true);
    assert_int_equal(msi_count, 2);
    vtd_machine_free(m);
}

/* A snapshot of a device without MSI-X (taken under emu) restores into one that offers it (kvm):
 * MSI-X stays off and the queue interrupts on INTx, as the guest's driver expects. */
static void test_snapshot_without_msix_restores_with_intx(void **state)
{
    (void)state;
    struct vm_disk disk = {.path = image};
    char err[256];
    struct machine *src = vtd_machine_new(1 << 20);
    assert_int_equal(virtio_blk_create(src, &disk, 0, err, sizeof(err)), 0);
    struct vtd d;
    vtd_init(&d, src, 1, 0, RING, 1);
    const struct device_desc *pci = NULL;
    for (unsigned i = 0; i < devices_count(); i++)
        if (!strcmp(device_at(i)->name, "pci")) pci = device_at(i);
    struct snap_buf b;
    snap_buf_init(&b);
    assert_int_equal(pci->save(src, &b), 0);
    vtd_machine_free(src);

    struct machine *dst = vtd_machine_new(1 << 20);
    memset(vtd_irq_levels, 0, sizeof(vtd_irq_levels));
    dst->backend = &msi_backend;
    dst->apic = true;
    assert_int_equal(virtio_blk_create(dst, &disk, 0, err, sizeof(err)), 0);
    struct snap_reader r = {.data = b.data, .len = b.len};
    pthread_mutex_lock(&dst->dev_lock);
    int ret = pci->restore(dst, &r, 1, false, err, sizeof(err));
    r.pos = 0;
    if (!ret) ret = pci->restore(dst, &r, 1, true, err, sizeof(err));
    pthread_mutex_unlock(&dst->dev_lock);
    if (ret) print_error("%s\n", err);
    assert_int_equal(ret, 0);
    d.m = dst;
    msi_count = 0;
    assert_int_equal(request(&d, VIRTIO_BLK_T_IN, 1, 512, 1, NULL), VIRTIO_BLK_S_OK);
    unsigned irq = vtd_cfg_read(dst, 1, PCI_INTERRUPT_LINE, 1);
    for (int i = 0; i < 1000 && !vtd_irq_levels[irq]; i++) usleep(1000);
    assert_int_equal(vtd_irq_levels[irq], 1);
    assert_int_equal(msi_count, 0);
    snap_buf_free(&b);
    vtd_machine_free(dst);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_write_flush_id),
        cmocka_unit_test(test_readonly_refuses_writes),
        cmocka_unit_test(test_cloud_init_seed_disk),
        cmocka_unit_test(test_missing_image_is_a_clear_error),
        cmocka_unit_test(test_second_writer_refused),
        cmocka_unit_test(test_pci_virtio_state_snapshot),
        cmocka_unit_test(test_msix_under_an_apic),
        cmocka_unit_test(test_snapshot_without_msix_restores_with_intx),
    };
    return cmocka_run_group_tests(tests, make_image, remove_image);
}
