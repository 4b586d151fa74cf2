/* virtio_pci: the modern (virtio 1.x) PCI transport shared by every virtio device.
 *
 * A device supplies a struct virtio_ops (its ID, features, queues, config space and a
 * queue-notify callback) and calls virtio_pci_register(). The transport owns feature
 * negotiation, device status, the virtqueues and the INTx interrupt (ISR). Layout of the one
 * memory BAR (BAR0, 16 KiB): common config 0x0000, ISR 0x1000, device config 0x2000,
 * notify 0x3000 (queue n at 0x3000 + 4n), MSI-X table 0x3800 and PBA 0x3C00.
 *
 * Interrupts: INTx (ISR) always; MSI-X where the platform can deliver MSIs (a local APIC:
 * the kvm backend), with one vector per queue plus one for configuration changes.
 */
#ifndef VMD_DEVICES_VIRTIO_PCI_H
#define VMD_DEVICES_VIRTIO_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices/pci.h"
#include "devices/virtqueue.h"

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_CONFIG_MAX 256

struct virtio_dev;

struct virtio_ops {
    const char *name;
    uint16_t device_id;        /* VIRTIO_ID_* */
    uint32_t pci_class;        /* base<<16 | sub<<8 */
    uint64_t features;         /* device features; VIRTIO_F_VERSION_1 is added by the transport */
    unsigned num_queues;
    uint16_t queue_max;        /* <= VIRTQ_MAX_SIZE */
    size_t config_size;        /* bytes of dev->config the driver sees */
    /* Driver wrote to the notify register of queue `q`. Device lock held (vCPU thread). */
    void (*queue_notify)(struct virtio_dev *d, unsigned q);
    /* Driver wrote device config bytes [off, off+len) (already stored in d->config). Optional. */
    void (*config_write)(struct virtio_dev *d, unsigned off, unsigned len);
    /* Device reset by the driver (status 0) or the transport. Optional. Device lock held. */
    void (*reset)(struct virtio_dev *d);
    /* Driver set DRIVER_OK. Optional. Device lock held. */
    void (*driver_ok)(struct virtio_dev *d);
    /* Optional: the device's state is about to be saved in a snapshot (the disks are copied
     * after). */
    void (*before_save)(struct virtio_dev *d);
    /* Optional: a snapshot's device state was applied (and its disk copies written back over
     * the images): re-read what the device caches of them. 0, or -errno with err. */
    int (*after_restore)(struct virtio_dev *d, char *err, size_t errlen);
    /* The machine is being torn down: free the device model (d->opaque). */
    void (*release)(struct virtio_dev *d);
};

#define VIRTIO_MSIX_VECTORS (VIRTIO_MAX_QUEUES + 1)

struct virtio_msix_entry {
    uint32_t addr_lo, addr_hi, data, ctrl; /* ctrl bit 0: masked */
};

struct virtio_dev {
    struct pci_device pci;
    uint8_t msix_cap;          /* config-space offset of the MSI-X capability, 0 without one */
    unsigned msix_nvec;
    struct virtio_msix_entry msix[VIRTIO_MSIX_VECTORS];
    uint64_t msix_pending;     /* PBA: vectors that fired while masked */
    uint16_t msix_config_vector;
    uint16_t queue_vector[VIRTIO_MAX_QUEUES];
    const struct virtio_ops *ops;
    void *opaque;              /* the device model's state */
    uint64_t features;         /* what this instance offers: ops->features unless the model adjusts it */
    struct machine *m;
    uint64_t driver_features;
    uint32_t device_feature_select, driver_feature_select;
    uint8_t status;
    uint8_t isr;
    uint8_t config_generation;
    uint16_t queue_select;
    struct virtq vq[VIRTIO_MAX_QUEUES];
    uint8_t config[VIRTIO_CONFIG_MAX];
};

int virtio_pci_register(struct machine *m, struct virtio_dev *d, const struct virtio_ops *ops, void *opaque,
                        char *err, size_t errlen);
/* Tell the driver that queue q has used buffers (raises INTx unless suppressed). Lock held. */
void virtio_notify_queue(struct virtio_dev *d, unsigned q);
/* Config space changed (e.g. link state): bump generation and interrupt. Lock held. */
void virtio_notify_config(struct virtio_dev *d);
/* Mark the device broken after a driver error: DEVICE_NEEDS_RESET and a config interrupt. */
void virtio_set_needs_reset(struct virtio_dev *d);
bool virtio_driver_ok(const struct virtio_dev *d);
bool virtio_has_feature(const struct virtio_dev *d, unsigned bit);

#endif
