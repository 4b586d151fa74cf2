/* virtio_test_driver: see virtio_test_driver.h. */
#include "tests/unit/virtio_test_driver.h"

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/pci.h"

int vtd_irq_levels[24];
static void vtd_set_irq(struct machine *m, unsigned gsi, int level)
{
    (void)m;
    if (gsi < 24) vtd_irq_levels[gsi] = level;
}
static const struct cpu_backend_ops vtd_backend = {.name = "test", .set_irq = vtd_set_irq};

struct machine *vtd_machine_new(uint64_t ram_bytes)
{
    struct machine *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->backend = &vtd_backend;
    pthread_mutex_init(&m->dev_lock, NULL);
    bus_init(&m->pio);
    bus_init(&m->mmio);
    char err[128];
    if (guest_mem_init(&m->mem, ram_bytes) || pci_bus_init(m, err, sizeof(err))) {
        free(m);
        return NULL;
    }
    return m;
}

void vtd_machine_free(struct machine *m)
{
    pci_bus_destroy(m);
    guest_mem_free(&m->mem);
    bus_free(&m->pio);
    bus_free(&m->mmio);
    pthread_mutex_destroy(&m->dev_lock);
    free(m);
}

uint32_t vtd_cfg_read(struct machine *m, unsigned slot, unsigned reg, unsigned size)
{
    uint64_t v = 0x80000000u | slot << 11 | (reg & 0xfc);
    machine_pio(m, 0xcf8, &v, 4, true);
    machine_pio(m, (uint16_t)(0xcfc + (reg & 3)), &v, size, false);
    return (uint32_t)v;
}

void vtd_cfg_write(struct machine *m, unsigned slot, unsigned reg, unsigned size, uint32_t val)
{
    uint64_t v = 0x80000000u | slot << 11 | (reg & 0xfc);
    machine_pio(m, 0xcf8, &v, 4, true);
    v = val;
    machine_pio(m, (uint16_t)(0xcfc + (reg & 3)), &v, size, true);
}

static void common_write(struct vtd *d, size_t off, uint64_t v, unsigned size)
{
    machine_mmio(d->m, d->bar + off, &v, size, true);
}

static uint64_t common_read(struct vtd *d, size_t off, unsigned size)
{
    uint64_t v = 0;
    machine_mmio(d->m, d->bar + off, &v, size, false);
    return v;
}

#define C(f) offsetof(struct virtio_pci_common_cfg, f)

uint8_t vtd_status(struct vtd *d) { return (uint8_t)common_read(d, C(device_status), 1); }

uint8_t vtd_init(struct vtd *d, struct machine *m, unsigned slot, uint64_t features, uint64_t ring_gpa, unsigned nq)
{
    memset(d, 0, sizeof(*d));
    d->m = m;
    d->slot = slot;
    d->bar = vtd_cfg_read(m, slot, PCI_BASE_ADDRESS_0, 4) & ~0xfULL;
    features |= 1ULL << VIRTIO_F_VERSION_1;
    common_write(d, C(device_status), 0, 1);
    common_write(d, C(device_status), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER, 1);
    for (unsigned i = 0; i < 2; i++) {
        common_write(d, C(guest_feature_select), i, 4);
        common_write(d, C(guest_feature), (uint32_t)(features >> (32 * i)), 4);
    }
    common_write(d, C(device_status), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK, 1);
    for (unsigned qi = 0; qi < nq && qi < VTD_MAX_QUEUES; qi++) {
        struct vtd_queue *q = &d->q[qi];
        common_write(d, C(queue_select), qi, 2);
        q->size = (uint16_t)common_read(d, C(queue_size), 2);
        q->desc = ring_gpa + 0x10000ull * qi;
        q->avail = q->desc + 16ull * q->size;
        q->used = (q->avail + 6 + 2ull * q->size + 4095) & ~4095ULL;
        common_write(d, C(queue_desc_lo), q->desc, 8);
        common_write(d, C(queue_avail_lo), q->avail, 8);
        common_write(d, C(queue_used_lo), q->used, 8);
        common_write(d, C(queue_enable), 1, 2);
    }
    common_write(d, C(device_status),
                 VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK, 1);
    return vtd_status(d);
}

uint16_t vtd_submit(struct vtd *d, unsigned qi, unsigned n, const uint64_t *addr, const uint32_t *len,
                    const int *writable)
{
    struct vtd_queue *q = &d->q[qi];
    struct vring_desc *desc = guest_mem_ptr(&d->m->mem, q->desc, 16ull * q->size);
    struct vring_avail *avail = guest_mem_ptr(&d->m->mem, q->avail, 6 + 2ull * q->size);
    uint16_t head = (uint16_t)((q->next_avail * 4) % q->size); /* up to 4 descriptors per request */
    for (unsigned i = 0; i < n; i++) {
        uint16_t idx = (uint16_t)((head + i) % q->size);
        desc[idx].addr = addr[i];
        desc[idx].len = len[i];
        desc[idx].flags = (uint16_t)((writable[i] ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0));
        desc[idx].next = (uint16_t)((idx + 1) % q->size);
    }
    avail->ring[avail->idx % q->size] = head;
    __atomic_store_n(&avail->idx, (uint16_t)(avail->idx + 1), __ATOMIC_RELEASE);
    q->next_avail++;
    uint64_t v = qi;
    machine_mmio(d->m, d->bar + 0x3000 + 4 * qi, &v, 2, true);
    return head;
}

int vtd_wait_used(struct vtd *d, unsigned qi, uint16_t idx, int timeout_ms)
{
    struct vtd_queue *q = &d->q[qi];
    struct vring_used *used = guest_mem_ptr(&d->m->mem, q->used, 6 + 8ull * q->size);
    for (int waited = 0; waited < timeout_ms; waited++) {
        if ((int16_t)(__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) - idx) >= 0) return 0;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    return -1;
}

uint32_t vtd_used_len(struct vtd *d, unsigned qi, uint16_t n)
{
    struct vtd_queue *q = &d->q[qi];
    struct vring_used *used = guest_mem_ptr(&d->m->mem, q->used, 6 + 8ull * q->size);
    return used->ring[n % q->size].len;
}
