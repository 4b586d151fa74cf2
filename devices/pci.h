/* pci: the PCI host bridge (configuration mechanism #1 at 0xCF8/0xCFC) and bus 0.
 *
 * A PCI device model embeds a struct pci_device, fills its identity and BARs, and calls
 * pci_register(). vmd assigns BAR addresses (memory BARs in the 32-bit hole from
 * PCI_MMIO_BASE, I/O BARs from PCI_IOPORT_BASE) and an interrupt line; Linux keeps them. INTx is
 * delivered on the ISA IRQ named by the Interrupt Line register (no ACPI _PRT or $PIR is
 * needed for Linux to find it); the device's line is driven with pci_set_irq().
 */
#ifndef VMD_DEVICES_PCI_H
#define VMD_DEVICES_PCI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"

struct machine;
struct snap_buf;
struct snap_reader;

#define PCI_CFG_SIZE 256
#define PCI_HOST_BRIDGE_VENDOR 0x8086 /* Intel */
#define PCI_HOST_BRIDGE_DEVICE 0x1237 /* 82441FX (i440FX) */
#define I440FX_PAM0 0x59              /* PAM0..PAM6: shadow-RAM control of 0xC0000-0xFFFFF */
#define I440FX_PAM_COUNT 7
#define PCI_NUM_BARS 6
#define PCI_MAX_SLOTS 32
#define PCI_MMIO_BASE 0xE0000000ULL
#define PCI_MMIO_END 0xFEC00000ULL /* IOAPIC above */
#define PCI_IOPORT_BASE 0xC000
#define PCI_IOPORT_END 0x10000

struct pci_bar {
    uint64_t size;  /* power of two, 0 = unused */
    bool io;        /* I/O space rather than memory */
    uint64_t addr;  /* current address (as programmed) */
    bool mapped;    /* registered on the machine's bus */
    bus_handler_fn handler;
    void *opaque;
};

struct pci_device {
    uint8_t cfg[PCI_CFG_SIZE];   /* configuration space, little-endian */
    uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may write */
    struct pci_bar bars[PCI_NUM_BARS];
    uint8_t next_cap;            /* where pci_add_capability puts the next capability */
    unsigned slot;
    unsigned irq;                /* ISA IRQ / GSI of INTA# */
    int irq_level;
    const char *name;
    struct machine *m;
    /* Called when the bus is torn down with the machine; frees the device model. Optional. */
    void (*release)(struct pci_device *d);
    /* Config space bytes [off, off+size) were written by the guest (after storing). Optional. */
    void (*cfg_written)(struct pci_device *d, unsigned off, unsigned size);
    /* Snapshot of the device model's own state (beyond config space). Optional; restore
     * validates and changes nothing unless `apply`. */
    void (*save)(struct pci_device *d, struct snap_buf *b);
    int (*restore)(struct pci_device *d, struct snap_reader *r, bool apply, char *err, size_t errlen);
};

struct pci_bus {
    uint32_t config_address; /* the 0xCF8 register */
    struct pci_device *slots[PCI_MAX_SLOTS];
    struct pci_device host_bridge;
    uint64_t next_mmio;
    uint32_t next_io;
    unsigned nirq_next;      /* round-robin over the INTx IRQs */
};

/* Identity: vendor, device, class (base<<16 | sub<<8 | prog-if), revision, subsystem ids. */
void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device, uint32_t class_code,
                     uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id);
/* Declare BAR `idx` of `size` bytes (power of two >= 16, I/O >= 4) served by handler. */
int pci_device_add_bar(struct pci_device *d, unsigned idx, uint64_t size, bool io, bus_handler_fn handler, void *opaque);
/* Append a capability of `len` bytes (including the 2-byte header) with id `cap_id`;
 * returns its offset in config space, or 0 when space is exhausted. */
uint8_t pci_device_add_capability(struct pci_device *d, uint8_t cap_id, uint8_t len);
/* Put the device on bus 0: slot, BAR addresses and IRQ assigned, BARs mapped. */
int pci_register(struct machine *m, struct pci_device *d, char *err, size_t errlen);
/* Drive INTA#. Caller holds the device lock. */
void pci_set_irq(struct pci_device *d, int level);

/* Create / tear down bus 0 with its host bridge (run by the device registry; public for tests). */
int pci_bus_init(struct machine *m, char *err, size_t errlen);
void pci_bus_destroy(struct machine *m);

/* Config-space accessors for device code and tests. */
static inline void pci_cfg_write16(struct pci_device *d, unsigned off, uint16_t v)
{
    d->cfg[off] = (uint8_t)v;
    d->cfg[off + 1] = (uint8_t)(v >> 8);
}
static inline void pci_cfg_write32(struct pci_device *d, unsigned off, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++) d->cfg[off + i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t pci_cfg_read32(const struct pci_device *d, unsigned off)
{
    return (uint32_t)d->cfg[off] | (uint32_t)d->cfg[off + 1] << 8 | (uint32_t)d->cfg[off + 2] << 16 |
           (uint32_t)d->cfg[off + 3] << 24;
}

#endif
