/* virtio_pci: modern virtio-pci transport: capabilities, common config, ISR, notify. */
#include "devices/virtio_pci.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define BAR_SIZE 0x4000
#define COMMON_OFF 0x0000
#define ISR_OFF 0x1000
#define DEVCFG_OFF 0x2000
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULT 4
#define MSIX_TABLE_OFF 0x3800
#define MSIX_PBA_OFF 0x3C00
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_FUNC_MASK 0x4000
#define VIRTIO_PCI_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040
#define ISR_QUEUE 0x1 /* ISR_QUEUE is legacy-only in the uapi header */

bool virtio_driver_ok(const struct virtio_dev *d) { return d->status & VIRTIO_CONFIG_S_DRIVER_OK; }

bool virtio_has_feature(const struct virtio_dev *d, unsigned bit) { return (d->driver_features >> bit) & 1; }

static uint64_t device_features(const struct virtio_dev *d)
{
    return d->features | (1ULL << VIRTIO_F_VERSION_1);
}

static void virtio_update_irq(struct virtio_dev *d) { pci_set_irq(&d->pci, d->isr != 0); }

static uint16_t msix_control(const struct virtio_dev *d)
{
    return d->msix_cap ? (uint16_t)(d->pci.cfg[d->msix_cap + 2] | d->pci.cfg[d->msix_cap + 3] << 8) : 0;
}

static bool msix_enabled(const struct virtio_dev *d) { return msix_control(d) & MSIX_CTRL_ENABLE; }

/* Send vector v, or remember it in the PBA while it (or the whole function) is masked. */
static void msix_fire(struct virtio_dev *d, uint16_t v)
{
    if (v >= d->msix_nvec) return; /* VIRTIO_MSI_NO_VECTOR or out of range: no interrupt */
    const struct virtio_msix_entry *e = &d->msix[v];
    if ((msix_control(d) & MSIX_CTRL_FUNC_MASK) || (e->ctrl & 1)) {
        d->msix_pending |= 1ULL << v;
        return;
    }
    d->msix_pending &= ~(1ULL << v);
    machine_send_msi(d->m, (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data);
}

/* After an unmask: deliver what fired meanwhile. */
static void msix_flush_pending(struct virtio_dev *d)
{
    for (uint16_t v = 0; v < d->msix_nvec && d->msix_pending; v++)
        if (d->msix_pending & (1ULL << v)) msix_fire(d, v);
}

void virtio_notify_queue(struct virtio_dev *d, unsigned q)
{
    if (q >= d->ops->num_queues || !virtq_needs_interrupt(&d->vq[q])) return;
    if (msix_enabled(d)) {
        msix_fire(d, d->queue_vector[q]);
        return;
    }
    d->isr |= ISR_QUEUE;
    virtio_update_irq(d);
}

void virtio_notify_config(struct virtio_dev *d)
{
    d->config_generation++;
    if (!virtio_driver_ok(d)) return;
    if (msix_enabled(d)) {
        msix_fire(d, d->msix_config_vector);
        return;
    }
    d->isr |= VIRTIO_PCI_ISR_CONFIG;
    virtio_update_irq(d);
}

void virtio_set_needs_reset(struct virtio_dev *d)
{
    if (d->status & VIRTIO_CONFIG_S_NEEDS_RESET) return;
    log_warn("%s: driver error; device needs reset", d->ops->name);
    d->status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    virtio_notify_config(d);
}

static void virtio_reset(struct virtio_dev *d)
{
    if (d->ops->reset) d->ops->reset(d);
    d->driver_features = 0;
    d->device_feature_select = d->driver_feature_select = 0;
    d->status = 0;
    d->isr = 0;
    d->queue_select = 0;
    d->msix_config_vector = VIRTIO_MSI_NO_VECTOR;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) d->queue_vector[i] = VIRTIO_MSI_NO_VECTOR;
    for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) virtq_reset(&d->vq[i], &d->m->mem);
    for (unsigned i = 0; i < d->ops->num_queues; i++) d->vq[i].size = d->ops->queue_max;
    virtio_update_irq(d);
}

static void write_status(struct virtio_dev *d, uint8_t v)
{
    if (v == 0) {
        virtio_reset(d);
        return;
    }
    if ((v & VIRTIO_CONFIG_S_FEATURES_OK) && !(d->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
        /* Accept only a subset of what we offered, and only a modern driver. */
        if ((d->driver_features & ~device_features(d)) || !virtio_has_feature(d, VIRTIO_F_VERSION_1))
            v &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK;
    }
    bool became_ok = (v & VIRTIO_CONFIG_S_DRIVER_OK) && !(d->status & VIRTIO_CONFIG_S_DRIVER_OK);
    d->status = (uint8_t)(v | (d->status & VIRTIO_CONFIG_S_NEEDS_RESET));
    if (became_ok && d->ops->driver_ok) d->ops->driver_ok(d);
}

static struct virtq *selected_queue(struct virtio_dev *d)
{
    return d->queue_select < d->ops->num_queues ? &d->vq[d->queue_select] : NULL;
}

static void common_access(struct virtio_dev *d, unsigned off, uint64_t *data, unsigned size, bool is_write)
{
    struct virtq *q = selected_queue(d);
    uint64_t v = is_write ? *data : 0;
#define FIELD(name) offsetof(struct virtio_pci_common_cfg, name)
    switch (off) {
    case FIELD(device_feature_select):
        if (is_write) d->device_feature_select = (uint32_t)v;
        else v = d->device_feature_select;
        break;
    case FIELD(device_feature):
        if (!is_write) v = d->device_feature_select < 2 ? (uint32_t)(device_features(d) >> (32 * d->device_feature_select)) : 0;
        break;
    case FIELD(guest_feature_select):
        if (is_write) d->driver_feature_select = (uint32_t)v;
        else v = d->driver_feature_select;
        break;
    case FIELD(guest_feature):
        if (is_write && d->driver_feature_select < 2 && !(d->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
            unsigned shift = 32 * d->driver_feature_select;
            d->driver_features = (d->driver_features & ~(0xffffffffULL << shift)) | ((v & 0xffffffffULL) << shift);
        } else if (!is_write && d->driver_feature_select < 2) {
            v = (uint32_t)(d->driver_features >> (32 * d->driver_feature_select));
        }
        break;
    case FIELD(msix_config):
        /* A vector the device cannot use reads back as NO_VECTOR (the driver checks). */
        if (is_write) d->msix_config_vector = v < d->msix_nvec ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
        else v = d->msix_config_vector;
        break;
    case FIELD(queue_msix_vector):
        if (!q) break;
        if (is_write) d->queue_vector[d->queue_select] = v < d->msix_nvec ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
        else v = d->queue_vector[d->queue_select];
        break;
    case FIELD(num_queues):
        if (!is_write) v = d->ops->num_queues;
        break;
    case FIELD(device_status):
        if (is_write) write_status(d, (uint8_t)v);
        else v = d->status;
        break;
    case FIELD(config_generation):
        if (!is_write) v = d->config_generation;
        break;
    case FIELD(queue_select):
        if (is_write) d->queue_select = (uint16_t)v;
        else v = d->queue_select;
        break;
    case FIELD(queue_size):
        if (!q) break;
        if (is_write && !q->enabled) q->size = (uint16_t)v;
        else if (!is_write) v = q->size;
        break;
    case FIELD(queue_enable):
        if (!q) break;
        if (is_write && v == 1 && !q->enabled) {
            q->indirect = virtio_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC);
            if (virtq_enable(q) < 0) virtio_set_needs_reset(d);
        } else if (!is_write) {
            v = q->enabled;
        }
        break;
    case FIELD(queue_notify_off):
        if (!is_write && q) v = d->queue_select;
        break;
    default: {
        /* The three 64-bit ring addresses, accessed as 32-bit halves or whole. */
        uint64_t *reg = NULL;
        unsigned base = 0;
        if (off >= FIELD(queue_desc_lo) && off < FIELD(queue_desc_lo) + 8) reg = q ? &q->desc_gpa : NULL, base = FIELD(queue_desc_lo);
        else if (off >= FIELD(queue_avail_lo) && off < FIELD(queue_avail_lo) + 8) reg = q ? &q->avail_gpa : NULL, base = FIELD(queue_avail_lo);
        else if (off >= FIELD(queue_used_lo) && off < FIELD(queue_used_lo) + 8) reg = q ? &q->used_gpa : NULL, base = FIELD(queue_used_lo);
        if (!reg) break;
        unsigned shift = (off - base) * 8;
        uint64_t mask = (size >= 8 ? ~0ULL : ((1ULL << (size * 8)) - 1)) << shift;
        if (is_write && !q->enabled) *reg = (*reg & ~mask) | ((v << shift) & mask);
        else if (!is_write) v = (*reg & mask) >> shift;
        break;
    }
    }
#undef FIELD
    if (!is_write) *data = v;
}

static void virtio_bar_access(void *opaque, uint64_t off, uint64_t *data, unsigned size, bool is_write)
{
    struct virtio_dev *d = opaque;
    if (off < ISR_OFF) {
        if (off < sizeof(struct virtio_pci_common_cfg)) common_access(d, (unsigned)off, data, size, is_write);
        else if (!is_write) *data = 0;
    } else if (off < DEVCFG_OFF) {
        if (!is_write && off == ISR_OFF) {
            *data = d->isr; /* read clears and deasserts */
            d->isr = 0;
            virtio_update_irq(d);
        } else if (!is_write) {
            *data = 0;
        }
    } else if (off < NOTIFY_OFF) {
        unsigned o = (unsigned)(off - DEVCFG_OFF);
        if (o + size > d->ops->config_size) {
            if (!is_write) *data = 0;
            return;
        }
        if (is_write) {
            for (unsigned i = 0; i < size; i++) d->config[o + i] = (uint8_t)(*data >> (8 * i));
            if (d->ops->config_write) d->ops->config_write(d, o, size);
        } else {
            uint64_t v = 0;
            for (unsigned i = 0; i < size; i++) v |= (uint64_t)d->config[o + i] << (8 * i);
            *data = v;
        }
    } else if (off >= MSIX_PBA_OFF) {
        if (!is_write) *data = off == MSIX_PBA_OFF ? (uint32_t)d->msix_pending : off == MSIX_PBA_OFF + 4 ? (uint32_t)(d->msix_pending >> 32) : 0;
    } else if (off >= MSIX_TABLE_OFF) {
        unsigned idx = (unsigned)((off - MSIX_TABLE_OFF) / 16), field = (unsigned)((off - MSIX_TABLE_OFF) % 16) / 4;
        if (idx >= d->msix_nvec || size < 4) {
            if (!is_write) *data = 0;
            return;
        }
        uint32_t *e = &d->msix[idx].addr_lo;
        for (unsigned i = 0; i < size / 4 && field + i < 4; i++) {
            if (is_write) e[field + i] = (uint32_t)(*data >> (32 * i));
            else *data = (i ? *data : 0) | (uint64_t)e[field + i] << (32 * i);
        }
        if (is_write && field + size / 4 > 3 && !(d->msix[idx].ctrl & 1)) msix_flush_pending(d);
    } else {
        unsigned qi = (unsigned)((off - NOTIFY_OFF) / NOTIFY_MULT);
        if (!is_write) {
            *data = 0;
            return;
        }
        if (qi < d->ops->num_queues && d->vq[qi].enabled && virtio_driver_ok(d) && !d->vq[qi].broken)
            d->ops->queue_notify(d, qi);
        if (qi < d->ops->num_queues && d->vq[qi].broken) virtio_set_needs_reset(d);
    }
}

static void add_cap(struct virtio_dev *d, uint8_t type, uint32_t offset, uint32_t length, bool notify)
{
    uint8_t len = notify ? sizeof(struct virtio_pci_notify_cap) : sizeof(struct virtio_pci_cap);
    uint8_t at = pci_device_add_capability(&d->pci, PCI_CAP_ID_VNDR, len);
    if (!at) return;
    uint8_t *c = &d->pci.cfg[at];
    c[2] = len;
    c[3] = type;
    c[4] = 0; /* BAR0 */
    for (unsigned i = 0; i < 4; i++) {
        c[8 + i] = (uint8_t)(offset >> (8 * i));
        c[12 + i] = (uint8_t)(length >> (8 * i));
    }
    if (notify)
        for (unsigned i = 0; i < 4; i++) c[16 + i] = (uint8_t)(NOTIFY_MULT >> (8 * i));
}

/* The guest wrote config space: an MSI-X function unmask delivers what was pending. */
static void virtio_pci_cfg_written(struct pci_device *p, unsigned off, unsigned size)
{
    struct virtio_dev *d = (struct virtio_dev *)((char *)p - offsetof(struct virtio_dev, pci));
    if (d->msix_cap && off <= d->msix_cap + 3u && off + size > d->msix_cap + 2u && msix_enabled(d) &&
        !(msix_control(d) & MSIX_CTRL_FUNC_MASK))
        msix_flush_pending(d);
}

static void virtio_pci_release(struct pci_device *p)
{
    struct virtio_dev *d = (struct virtio_dev *)((char *)p - offsetof(struct virtio_dev, pci));
    if (d->ops->release) d->ops->release(d);
}

/* Snapshot of the transport: negotiation, status, interrupt and every queue's ring addresses and
 * positions (the rings themselves are in guest RAM). */
static void virtio_pci_save(struct pci_device *p, struct snap_buf *b)
{
    struct virtio_dev *d = (struct virtio_dev *)((char *)p - offsetof(struct virtio_dev, pci));
    if (d->ops->before_save) d->ops->before_save(d);
    snap_put_u64(b, d->driver_features);
    snap_put_u32(b, d->device_feature_select);
    snap_put_u32(b, d->driver_feature_select);
    snap_put_u8(b, d->status);
    snap_put_u8(b, d->isr);
    snap_put_u8(b, d->config_generation);
    snap_put_u16(b, d->queue_select);
    snap_put(b, d->config, sizeof(d->config));
    snap_put_u8(b, (uint8_t)d->ops->num_queues);
    for (unsigned i = 0; i < d->ops->num_queues; i++) {
        const struct virtq *q = &d->vq[i];
        snap_put_u16(b, q->size);
        snap_put_u64(b, q->desc_gpa);
        snap_put_u64(b, q->avail_gpa);
        snap_put_u64(b, q->used_gpa);
        snap_put_u8(b, q->enabled);
        snap_put_u8(b, q->broken);
        snap_put_u16(b, q->last_avail);
        snap_put_u16(b, q->used_idx);
    }
    /* MSI-X (the capability's control word is in config space, saved by the bus) */
    snap_put_u8(b, (uint8_t)d->msix_nvec);
    for (unsigned i = 0; i < d->msix_nvec; i++) snap_put(b, &d->msix[i], sizeof(d->msix[i]));
    snap_put_u64(b, d->msix_pending);
    snap_put_u16(b, d->msix_config_vector);
    for (unsigned i = 0; i < d->ops->num_queues; i++) snap_put_u16(b, d->queue_vector[i]);
}

static int virtio_pci_restore(struct pci_device *p, struct snap_reader *r, bool apply, char *err, size_t errlen)
{
    struct virtio_dev *d = (struct virtio_dev *)((char *)p - offsetof(struct virtio_dev, pci));
    uint64_t drv = snap_get_u64(r);
    uint32_t dsel = snap_get_u32(r), gsel = snap_get_u32(r);
    uint8_t status = snap_get_u8(r), isr = snap_get_u8(r), gen = snap_get_u8(r);
    uint16_t qsel = snap_get_u16(r);
    uint8_t config[VIRTIO_CONFIG_MAX];
    snap_get(r, config, sizeof(config));
    unsigned nq = snap_get_u8(r);
    if (nq != d->ops->num_queues || r->short_read) {
        snprintf(err, errlen, "snapshot: %s has %u queues in the snapshot, %u here", d->ops->name, nq, d->ops->num_queues);
        return -EINVAL;
    }
    struct virtq qs[VIRTIO_MAX_QUEUES];
    for (unsigned i = 0; i < nq; i++) {
        struct virtq *q = &qs[i];
        virtq_reset(q, &d->m->mem);
        q->size = snap_get_u16(r);
        q->desc_gpa = snap_get_u64(r);
        q->avail_gpa = snap_get_u64(r);
        q->used_gpa = snap_get_u64(r);
        bool enabled = snap_get_u8(r), broken = snap_get_u8(r);
        uint16_t last_avail = snap_get_u16(r), used_idx = snap_get_u16(r);
        if (enabled && !broken && virtq_enable(q) < 0) {
            snprintf(err, errlen, "snapshot: %s queue %u has rings outside guest RAM", d->ops->name, i);
            return -EINVAL;
        }
        q->broken = broken;
        q->indirect = (drv >> VIRTIO_RING_F_INDIRECT_DESC) & 1;
        q->last_avail = last_avail;
        q->used_idx = used_idx;
    }
    unsigned nvec = snap_get_u8(r);
    /* A snapshot from a platform without MSI-X (emu) restores here with MSI-X off: its config
     * space, restored by the bus, has no MSI-X capability, and the guest's driver uses INTx. */
    if (nvec != d->msix_nvec && nvec != 0) {
        snprintf(err, errlen, "snapshot: %s has %u MSI-X vectors in the snapshot, %u here", d->ops->name, nvec, d->msix_nvec);
        return -EINVAL;
    }
    struct virtio_msix_entry msix[VIRTIO_MSIX_VECTORS];
    for (unsigned i = 0; i < nvec; i++) snap_get(r, &msix[i], sizeof(msix[i]));
    uint64_t pending = snap_get_u64(r);
    uint16_t cfg_vec = snap_get_u16(r), qvec[VIRTIO_MAX_QUEUES];
    for (unsigned i = 0; i < nq; i++) qvec[i] = snap_get_u16(r);
    if (r->short_read) {
        snprintf(err, errlen, "snapshot: %s state is truncated", d->ops->name);
        return -EINVAL;
    }
    if (!apply) return 0;
    if (nvec == 0 && d->msix_cap) {
        d->pci.wmask[d->msix_cap + 3] = 0;
        d->pci.cfg_written = NULL;
        d->msix_cap = 0;
        d->msix_nvec = 0;
    }
    memcpy(d->msix, msix, sizeof(msix[0]) * nvec);
    d->msix_pending = pending;
    d->msix_config_vector = cfg_vec;
    memcpy(d->queue_vector, qvec, sizeof(qvec[0]) * nq);
    d->driver_features = drv;
    d->device_feature_select = dsel;
    d->driver_feature_select = gsel;
    d->status = status;
    d->isr = isr;
    d->config_generation = gen;
    d->queue_select = qsel;
    memcpy(d->config, config, sizeof(config));
    for (unsigned i = 0; i < nq; i++) d->vq[i] = qs[i];
    return d->ops->after_restore ? d->ops->after_restore(d, err, errlen) : 0;
}

int virtio_pci_register(struct machine *m, struct virtio_dev *d, const struct virtio_ops *ops, void *opaque,
                        char *err, size_t errlen)
{
    if (ops->num_queues > VIRTIO_MAX_QUEUES || ops->config_size > VIRTIO_CONFIG_MAX || ops->queue_max > VIRTQ_MAX_SIZE) {
        snprintf(err, errlen, "%s: device description out of range", ops->name);
        return -EINVAL;
    }
    d->ops = ops;
    d->opaque = opaque;
    d->features = ops->features;
    d->m = m;
    pci_device_init(&d->pci, ops->name, VIRTIO_PCI_VENDOR, (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id),
                    ops->pci_class, 1, VIRTIO_PCI_VENDOR, ops->device_id);
    d->pci.release = virtio_pci_release;
    d->pci.save = virtio_pci_save;
    d->pci.restore = virtio_pci_restore;
    int r = pci_device_add_bar(&d->pci, 0, BAR_SIZE, false, virtio_bar_access, d);
    if (r) {
        snprintf(err, errlen, "%s: BAR: %s", ops->name, strerror(-r));
        return r;
    }
    add_cap(d, VIRTIO_PCI_CAP_COMMON_CFG, COMMON_OFF, sizeof(struct virtio_pci_common_cfg), false);
    add_cap(d, VIRTIO_PCI_CAP_ISR_CFG, ISR_OFF, 1, false);
    if (ops->config_size) add_cap(d, VIRTIO_PCI_CAP_DEVICE_CFG, DEVCFG_OFF, (uint32_t)ops->config_size, false);
    add_cap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, NOTIFY_OFF, NOTIFY_MULT * ops->num_queues, true);
    if (machine_msi_supported(m)) {
        d->msix_nvec = ops->num_queues + 1;
        d->msix_cap = pci_device_add_capability(&d->pci, PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF);
        if (d->msix_cap) {
            uint8_t *c = &d->pci.cfg[d->msix_cap];
            c[2] = (uint8_t)(d->msix_nvec - 1); /* table size - 1 */
            c[3] = 0;
            d->pci.wmask[d->msix_cap + 3] = (MSIX_CTRL_ENABLE | MSIX_CTRL_FUNC_MASK) >> 8;
            uint32_t table = MSIX_TABLE_OFF | 0 /* BAR0 */, pba = MSIX_PBA_OFF | 0;
            for (unsigned i = 0; i < 4; i++) {
                c[4 + i] = (uint8_t)(table >> (8 * i));
                c[8 + i] = (uint8_t)(pba >> (8 * i));
            }
            for (unsigned i = 0; i < d->msix_nvec; i++) d->msix[i].ctrl = 1; /* masked at reset */
            d->pci.cfg_written = virtio_pci_cfg_written;
        }
    }
    d->m = m;
    virtio_reset(d);
    return pci_register(m, &d->pci, err, errlen);
}
