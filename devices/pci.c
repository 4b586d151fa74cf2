/* pci: host bridge, configuration mechanism #1, BAR assignment and mapping, INTx lines. */
#include "devices/pci.h"

#include <errno.h>
#include <linux/pci_regs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define PCI_CONFIG_ADDRESS 0xCF8
#define PCI_CONFIG_DATA 0xCFC
#define PCI_RESET_CONTROL 0xCF9

/* ISA IRQs given to INTA# of PCI devices, round robin (9 is the ACPI SCI; 3/4 UARTs, 8 RTC, 12 aux). */
static const unsigned pci_intx_irqs[] = {10, 11, 5, 7};

void pci_device_init(struct pci_device *d, const char *name, uint16_t vendor, uint16_t device, uint32_t class_code,
                     uint8_t revision, uint16_t subsys_vendor, uint16_t subsys_id)
{
    memset(d, 0, sizeof(*d));
    d->name = name;
    pci_cfg_write16(d, PCI_VENDOR_ID, vendor);
    pci_cfg_write16(d, PCI_DEVICE_ID, device);
    d->cfg[PCI_REVISION_ID] = revision;
    d->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
    d->cfg[PCI_CLASS_DEVICE] = (uint8_t)(class_code >> 8);
    d->cfg[PCI_CLASS_DEVICE + 1] = (uint8_t)(class_code >> 16);
    d->cfg[PCI_HEADER_TYPE] = PCI_HEADER_TYPE_NORMAL;
    pci_cfg_write16(d, PCI_SUBSYSTEM_VENDOR_ID, subsys_vendor);
    pci_cfg_write16(d, PCI_SUBSYSTEM_ID, subsys_id);
    /* Command: I/O, memory, bus master, INTx disable are writable. */
    pci_cfg_write16((struct pci_device *)d, PCI_COMMAND, 0);
    d->wmask[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    d->wmask[PCI_COMMAND + 1] = PCI_COMMAND_INTX_DISABLE >> 8;
    d->wmask[PCI_CACHE_LINE_SIZE] = 0xff;
    d->wmask[PCI_LATENCY_TIMER] = 0xff;
    d->wmask[PCI_INTERRUPT_LINE] = 0xff;
    d->next_cap = 0x40;
}

int pci_device_add_bar(struct pci_device *d, unsigned idx, uint64_t size, bool io, bus_handler_fn handler, void *opaque)
{
    if (idx >= PCI_NUM_BARS || size == 0 || (size & (size - 1)) || size > (1u << 30) || (io && size < 4) ||
        (!io && size < 16))
        return -EINVAL;
    d->bars[idx] = (struct pci_bar){.size = size, .io = io, .handler = handler, .opaque = opaque};
    uint32_t mask = (uint32_t)~(size - 1);
    unsigned off = PCI_BASE_ADDRESS_0 + idx * 4;
    pci_cfg_write32(d, off, io ? PCI_BASE_ADDRESS_SPACE_IO : PCI_BASE_ADDRESS_MEM_TYPE_32);
    for (unsigned i = 0; i < 4; i++) d->wmask[off + i] = (uint8_t)(mask >> (8 * i));
    d->wmask[off] &= io ? 0xfc : 0xf0; /* type bits are read-only */
    return 0;
}

uint8_t pci_device_add_capability(struct pci_device *d, uint8_t cap_id, uint8_t len)
{
    unsigned off = (d->next_cap + 3u) & ~3u;
    if (len < 2 || off + len > PCI_CFG_SIZE) return 0;
    d->cfg[off] = cap_id;
    d->cfg[off + 1] = 0;
    /* Link: append at the end of the list. */
    if (!d->cfg[PCI_CAPABILITY_LIST]) {
        d->cfg[PCI_CAPABILITY_LIST] = (uint8_t)off;
    } else {
        unsigned p = d->cfg[PCI_CAPABILITY_LIST];
        while (d->cfg[p + 1]) p = d->cfg[p + 1];
        d->cfg[p + 1] = (uint8_t)off;
    }
    d->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    d->next_cap = (uint8_t)(off + len);
    return (uint8_t)off;
}

static bool bar_decoding(const struct pci_device *d, const struct pci_bar *b)
{
    uint16_t cmd = (uint16_t)(d->cfg[PCI_COMMAND] | d->cfg[PCI_COMMAND + 1] << 8);
    return b->io ? (cmd & PCI_COMMAND_IO) : (cmd & PCI_COMMAND_MEMORY);
}

static uint64_t bar_cfg_addr(const struct pci_device *d, unsigned idx)
{
    uint32_t v = pci_cfg_read32(d, PCI_BASE_ADDRESS_0 + idx * 4);
    return d->bars[idx].io ? (v & PCI_BASE_ADDRESS_IO_MASK) : (v & PCI_BASE_ADDRESS_MEM_MASK);
}

/* Bring the bus mapping of every BAR in line with the config space (address and decode bits). */
static void pci_update_mappings(struct pci_device *d)
{
    struct machine *m = d->m;
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        struct pci_bar *b = &d->bars[i];
        if (!b->size) continue;
        uint64_t addr = bar_cfg_addr(d, i);
        /* A BAR holding the sizing pattern or 0 is not decoded. */
        bool want = bar_decoding(d, b) && addr != 0 && addr + b->size - 1 < (b->io ? 0x10000ULL : 0x100000000ULL) &&
                    !(b->io == false && addr + b->size > GUEST_MEM_HOLE_START && addr < GUEST_MEM_HOLE_START);
        struct bus *bus = b->io ? &m->pio : &m->mmio;
        if (b->mapped && (!want || addr != b->addr)) {
            bus_unregister(bus, b->addr);
            b->mapped = false;
        }
        if (want && !b->mapped) {
            if (!b->io && guest_mem_ptr(&m->mem, addr, 1)) continue; /* never shadow RAM */
            if (bus_register(bus, addr, b->size, b->handler, b->opaque, d->name) == 0) {
                b->addr = addr;
                b->mapped = true;
            } else {
                log_debug("pci %s: BAR%u at 0x%llx overlaps another range; not decoded", d->name, i,
                          (unsigned long long)addr);
            }
        }
    }
}

static void pci_cfg_access(struct pci_device *d, unsigned off, uint64_t *data, unsigned size, bool is_write)
{
    if (off + size > PCI_CFG_SIZE) {
        if (!is_write) *data = ~0ULL >> (64 - 8 * size);
        return;
    }
    if (!is_write) {
        uint64_t v = 0;
        for (unsigned i = 0; i < size; i++) v |= (uint64_t)d->cfg[off + i] << (8 * i);
        *data = v;
        return;
    }
    bool bars_touched = false;
    for (unsigned i = 0; i < size; i++) {
        unsigned o = off + i;
        uint8_t w = d->wmask[o], v = (uint8_t)(*data >> (8 * i));
        d->cfg[o] = (uint8_t)((d->cfg[o] & ~w) | (v & w));
        if ((o >= PCI_BASE_ADDRESS_0 && o < PCI_BASE_ADDRESS_5 + 4) || o == PCI_COMMAND) bars_touched = true;
    }
    /* Status bits are write-one-to-clear; we set none that need clearing. */
    if (bars_touched) pci_update_mappings(d);
    if (d->cfg_written) d->cfg_written(d, off, size);
}

static void pci_config_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct pci_bus *pb = opaque;
    uint16_t port = (uint16_t)(PCI_CONFIG_ADDRESS + offset);
    if (port == PCI_CONFIG_ADDRESS && size == 4) {
        if (is_write) pb->config_address = (uint32_t)*data & 0x80fffffcu;
        else *data = pb->config_address;
        return;
    }
    if (port < PCI_CONFIG_DATA) {
        /* Byte/word accesses to 0xCF8-0xCFB: only the reset control register at 0xCF9 means anything. */
        if (port == PCI_RESET_CONTROL && size == 1 && is_write && (*data & 0x04))
            machine_request_stop(pb->host_bridge.m, MACHINE_STOP_RESET);
        else if (!is_write)
            *data = 0;
        return;
    }
    uint32_t a = pb->config_address;
    unsigned bus = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f, fn = (a >> 8) & 7;
    unsigned reg = (a & 0xfc) + (port - PCI_CONFIG_DATA);
    struct pci_device *d = (a & 0x80000000u) && bus == 0 && fn == 0 ? pb->slots[slot] : NULL;
    if (!d) {
        if (!is_write) *data = ~0ULL >> (64 - 8 * size);
        return;
    }
    pci_cfg_access(d, reg, data, size, is_write);
}

int pci_register(struct machine *m, struct pci_device *d, char *err, size_t errlen)
{
    struct pci_bus *pb = m->pci;
    if (!pb) {
        snprintf(err, errlen, "pci %s: no PCI bus", d->name);
        return -ENODEV;
    }
    unsigned slot = 0;
    while (slot < PCI_MAX_SLOTS && pb->slots[slot]) slot++;
    if (slot == PCI_MAX_SLOTS) {
        snprintf(err, errlen, "pci %s: all %d slots of bus 0 are taken", d->name, PCI_MAX_SLOTS);
        return -ENOSPC;
    }
    d->m = m;
    d->slot = slot;
    for (unsigned i = 0; i < PCI_NUM_BARS; i++) {
        struct pci_bar *b = &d->bars[i];
        if (!b->size) continue;
        uint64_t addr;
        if (b->io) {
            addr = (pb->next_io + b->size - 1) & ~(b->size - 1);
            if (addr + b->size > PCI_IOPORT_END) goto no_space;
            pb->next_io = (uint32_t)(addr + b->size);
        } else {
            addr = (pb->next_mmio + b->size - 1) & ~(b->size - 1);
            if (addr + b->size > PCI_MMIO_END) goto no_space;
            pb->next_mmio = addr + b->size;
        }
        uint32_t type = pci_cfg_read32(d, PCI_BASE_ADDRESS_0 + i * 4) & (b->io ? 0x3u : 0xfu);
        pci_cfg_write32(d, PCI_BASE_ADDRESS_0 + i * 4, (uint32_t)addr | type);
    }
    if (d != &pb->host_bridge) {
        d->irq = pci_intx_irqs[pb->nirq_next++ % (sizeof(pci_intx_irqs) / sizeof(pci_intx_irqs[0]))];
        d->cfg[PCI_INTERRUPT_LINE] = (uint8_t)d->irq;
        d->cfg[PCI_INTERRUPT_PIN] = 1; /* INTA# */
    }
    /* Firmware leaves devices decoding, as a BIOS would. */
    pci_cfg_write16(d, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
    pb->slots[slot] = d;
    pci_update_mappings(d);
    log_debug("pci 00:%02x.0 %s irq %u", slot, d->name, d->irq);
    return 0;
no_space:
    snprintf(err, errlen, "pci %s: no room left for its BARs", d->name);
    return -ENOSPC;
}

void pci_set_irq(struct pci_device *d, int level)
{
    uint16_t cmd = (uint16_t)(d->cfg[PCI_COMMAND] | d->cfg[PCI_COMMAND + 1] << 8);
    if (cmd & PCI_COMMAND_INTX_DISABLE) level = 0;
    if (level) d->cfg[PCI_STATUS] |= PCI_STATUS_INTERRUPT;
    else d->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_INTERRUPT;
    if (level == d->irq_level) return;
    d->irq_level = level;
    machine_set_irq(d->m, d->irq, level);
}

int pci_bus_init(struct machine *m, char *err, size_t errlen)
{
    struct pci_bus *pb = calloc(1, sizeof(*pb));
    if (!pb) return -ENOMEM;
    pb->next_mmio = PCI_MMIO_BASE;
    pb->next_io = PCI_IOPORT_BASE;
    int r = bus_register(&m->pio, PCI_CONFIG_ADDRESS, 8, pci_config_io, pb, "pci-conf1");
    if (r) {
        snprintf(err, errlen, "pci: ports 0xcf8-0xcff: %s", strerror(-r));
        free(pb);
        return r;
    }
    m->pci = pb;
    /* Host bridge at 00:00.0: an i440FX (82441FX) with QEMU's subsystem ID, the identity SeaBIOS
     * looks for (it finds the PAM registers through it and knows the platform), as QEMU's pc
     * machine has. The PAM registers (0x59-0x5F) are stored: the BIOS area below 1 MiB is always
     * RAM here, which is what firmware asks them for (read/write RAM) once it has copied itself. */
    pci_device_init(&pb->host_bridge, "host-bridge", PCI_HOST_BRIDGE_VENDOR, PCI_HOST_BRIDGE_DEVICE, 0x060000, 0x02,
                    0x1af4, 0x1100);
    pb->host_bridge.wmask[I440FX_PAM0] = 0x30;
    for (unsigned i = 1; i < I440FX_PAM_COUNT; i++) pb->host_bridge.wmask[I440FX_PAM0 + i] = 0x33;
    r = pci_register(m, &pb->host_bridge, err, errlen);
    if (r) {
        bus_unregister(&m->pio, PCI_CONFIG_ADDRESS);
        free(pb);
        m->pci = NULL;
    }
    return r;
}

void pci_bus_destroy(struct machine *m)
{
    if (!m->pci) return;
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = m->pci->slots[s];
        m->pci->slots[s] = NULL;
        if (d && d->release) d->release(d);
    }
    bus_unregister(&m->pio, PCI_CONFIG_ADDRESS);
    free(m->pci);
    m->pci = NULL;
}

/* Snapshot: the config address register, then per occupied slot its vendor/device ID, config
 * space and the device model's own state, length-prefixed. */
static int pci_bus_save(struct machine *m, struct snap_buf *b)
{
    struct pci_bus *pb = m->pci;
    snap_put_u8(b, pb != NULL);
    if (!pb) return 0;
    snap_put_u32(b, pb->config_address);
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = pb->slots[s];
        snap_put_u8(b, d != NULL);
        if (!d) continue;
        snap_put(b, d->cfg, PCI_CFG_SIZE);
        snap_put_u8(b, (uint8_t)d->irq_level);
        struct snap_buf own;
        snap_buf_init(&own);
        if (d->save) d->save(d, &own);
        b->failed |= own.failed;
        snap_put_u32(b, (uint32_t)own.len);
        snap_put(b, own.data, own.len);
        snap_buf_free(&own);
    }
    return 0;
}

static int pci_bus_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                           size_t errlen)
{
    struct pci_bus *pb = m->pci;
    if (version != 1) {
        snprintf(err, errlen, "snapshot: section 'dev.pci' has version %u, this vmd reads 1", version);
        return -EINVAL;
    }
    bool had_bus = snap_get_u8(r);
    if (had_bus != (pb != NULL)) {
        snprintf(err, errlen, "snapshot: the PCI bus is %s in the snapshot but %s in this VM", had_bus ? "present" : "absent",
                 pb ? "present" : "absent");
        return -EINVAL;
    }
    if (!pb) return 0;
    uint32_t config_address = snap_get_u32(r);
    for (unsigned s = 0; s < PCI_MAX_SLOTS; s++) {
        struct pci_device *d = pb->slots[s];
        bool present = snap_get_u8(r);
        if (present != (d != NULL)) {
            snprintf(err, errlen, "snapshot: PCI slot %u is %s in the snapshot but %s in this VM", s,
                     present ? "occupied" : "empty", d ? "occupied" : "empty");
            return -EINVAL;
        }
        if (!d) continue;
        uint8_t cfg[PCI_CFG_SIZE];
        snap_get(r, cfg, sizeof(cfg));
        uint8_t level = snap_get_u8(r);
        uint32_t len = snap_get_u32(r);
        if (r->short_read || len > r->len - r->pos) {
            snprintf(err, errlen, "snapshot: section 'dev.pci' is truncated at slot %u", s);
            return -EINVAL;
        }
        /* snapshots from before the host bridge became an i440FX carry the generic ID it had */
        static const uint8_t old_host_bridge_id[4] = {0x36, 0x1b, 0x08, 0x00};
        bool old_host_bridge = d == &pb->host_bridge && !memcmp(cfg, old_host_bridge_id, 4);
        if (old_host_bridge) { /* take this vmd's identity (none of it is writable) */
            memcpy(cfg, d->cfg, 4);
            cfg[PCI_REVISION_ID] = d->cfg[PCI_REVISION_ID];
            memcpy(cfg + PCI_SUBSYSTEM_VENDOR_ID, d->cfg + PCI_SUBSYSTEM_VENDOR_ID, 4);
        }
        if (memcmp(cfg, d->cfg, 4)) { /* vendor and device ID */
            snprintf(err, errlen, "snapshot: PCI slot %u holds another device (%02x%02x:%02x%02x) than this VM's %s", s,
                     cfg[1], cfg[0], cfg[3], cfg[2], d->name);
            return -EINVAL;
        }
        struct snap_reader own = {.data = r->data + r->pos, .len = len};
        r->pos += len;
        if (d->restore) {
            int ret = d->restore(d, &own, apply, err, errlen);
            if (ret) return ret;
        }
        if (apply) {
            memcpy(d->cfg, cfg, sizeof(cfg));
            d->irq_level = level;
            pci_update_mappings(d);
            machine_set_irq(m, d->irq, level);
        }
    }
    if (apply) pb->config_address = config_address;
    return 0;
}

static const struct device_desc pci_bus_desc = {.name = "pci",
                                                .level = DEVICE_LEVEL_BUS,
                                                .init = pci_bus_init,
                                                .destroy = pci_bus_destroy,
                                                .state_version = 1,
                                                .save = pci_bus_save,
                                                .restore = pci_bus_restore};
DEVICE_REGISTER(pci_bus_desc)
