/* mptable: MP Specification 1.4 floating pointer + configuration table. */
#include "vmm/boot/mptable.h"

#include <errno.h>
#include <string.h>

#include "vmm/boot/acpi.h"
#include "vmm/boot/pci_intx.h"
#include "vmm/boot/layout.h"
#include "vmm/machine.h"

#define MP_ENTRY_PROCESSOR 0
#define MP_ENTRY_BUS 1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_IOINT 3
#define MP_ENTRY_LINT 4

#define MP_INT 0
#define MP_NMI 1
#define MP_EXTINT 3

#define MP_FLAGS_LEVEL_LOW 0x000F /* polarity 11 (low), trigger 11 (level) */

#define MP_APIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }

/* One 8-byte interrupt assignment entry (I/O or local). */
static uint8_t *irq_entry(uint8_t *e, uint8_t kind, uint8_t type, uint16_t flags, uint8_t bus, uint8_t bus_irq,
                          uint8_t dst_id, uint8_t dst_pin)
{
    e[0] = kind;
    e[1] = type;
    put16(e + 2, flags); /* 0: conforms to the bus */
    e[4] = bus;
    e[5] = bus_irq;
    e[6] = dst_id;
    e[7] = dst_pin;
    return e + 8;
}

int mptable_build(struct machine *m)
{
    unsigned n = m->ncpus;
    uint8_t ioapic_id = (uint8_t)n;
    uint8_t *cfg = guest_mem_ptr(&m->mem, MPTABLE_CONFIG_ADDR, MPTABLE_CONFIG_MAX);
    uint8_t *fp = guest_mem_ptr(&m->mem, MPTABLE_FLOAT_ADDR, 16);
    if (!cfg || !fp) return -EFAULT;
    struct pci_intx_route routes[PCI_INTX_MAX_ROUTES];
    unsigned nroutes = pci_intx_routes(m, routes);
    uint16_t pci_irqs = 0; /* ISA IRQs taken by PCI INTx: no ISA entry for them */
    for (unsigned i = 0; i < nroutes; i++) pci_irqs |= (uint16_t)(1u << routes[i].irq);
    uint64_t max_len = 44 + 20ULL * n + 8 * 2 + 8 + 8 * 15 + 8 * nroutes + 8 * 2;
    if (max_len > MPTABLE_CONFIG_MAX) return -ENOSPC;
    memset(cfg, 0, MPTABLE_CONFIG_MAX);

    uint8_t *e = cfg + 44;
    unsigned count = 0;
    for (unsigned i = 0; i < n; i++, e += 20, count++) {
        e[0] = MP_ENTRY_PROCESSOR;
        e[1] = (uint8_t)i;                    /* local APIC ID */
        e[2] = MP_APIC_VERSION;
        e[3] = 0x01 | (i == 0 ? 0x02 : 0);    /* enabled, bootstrap processor */
        put32(e + 4, 0x600);                  /* CPU signature: family 6 */
        put32(e + 8, 0x201);                  /* feature flags: FPU, APIC */
    }
    static const struct { uint8_t id; char name[7]; } buses[] = {
        {MPTABLE_BUS_PCI, "PCI   "},
        {MPTABLE_BUS_ISA, "ISA   "},
    };
    for (unsigned i = 0; i < 2; i++, e += 8, count++) {
        e[0] = MP_ENTRY_BUS;
        e[1] = buses[i].id;
        memcpy(e + 2, buses[i].name, 6);
    }
    e[0] = MP_ENTRY_IOAPIC;
    e[1] = ioapic_id;
    e[2] = MP_IOAPIC_VERSION;
    e[3] = 0x01; /* enabled */
    put32(e + 4, BOOT_IOAPIC_ADDR);
    e += 8;
    count++;
    /* ISA IRQs identity-mapped to IOAPIC pins, except the PIT's IRQ0 which arrives on pin 2
     * (as on PC chipsets and in the MADT override); IRQ2 is the 8259 cascade and has no pin. */
    for (unsigned irq = 0; irq < 16; irq++) {
        if (irq == 2 || (pci_irqs & (1u << irq))) continue;
        e = irq_entry(e, MP_ENTRY_IOINT, MP_INT, 0, MPTABLE_BUS_ISA, (uint8_t)irq, ioapic_id,
                      irq == 0 ? 2 : (uint8_t)irq);
        count++;
    }
    /* PCI INTx (source IRQ = slot << 2 | pin), level, active low, on the pin of its ISA IRQ */
    for (unsigned i = 0; i < nroutes; i++) {
        e = irq_entry(e, MP_ENTRY_IOINT, MP_INT, MP_FLAGS_LEVEL_LOW, MPTABLE_BUS_PCI,
                      (uint8_t)(routes[i].slot << 2 | routes[i].pin), ioapic_id, routes[i].irq);
        count++;
    }
    e = irq_entry(e, MP_ENTRY_LINT, MP_EXTINT, 0, MPTABLE_BUS_ISA, 0, 0xFF, 0); /* LINT0: 8259 ExtINT */
    e = irq_entry(e, MP_ENTRY_LINT, MP_NMI, 0, MPTABLE_BUS_ISA, 0, 0xFF, 1);    /* LINT1: NMI */
    count += 2;
    uint64_t len = (uint64_t)(e - cfg);

    memcpy(cfg, "PCMP", 4);
    put16(cfg + 4, (uint16_t)len);      /* base table length */
    cfg[6] = 4;                         /* spec revision 1.4 */
    memcpy(cfg + 8, "VMD     ", 8);     /* OEM ID */
    memcpy(cfg + 16, "VMD-PC      ", 12); /* product ID */
    put16(cfg + 34, (uint16_t)count);   /* entry count */
    put32(cfg + 36, BOOT_LAPIC_ADDR);
    cfg[7] = (uint8_t)(0x100 - acpi_checksum(cfg, len));

    memset(fp, 0, 16);
    memcpy(fp, "_MP_", 4);
    put32(fp + 4, (uint32_t)MPTABLE_CONFIG_ADDR);
    fp[8] = 1;  /* length in 16-byte units */
    fp[9] = 4;  /* spec revision 1.4 */
    /* feature bytes 0: a configuration table is present (no default configuration) */
    fp[10] = (uint8_t)(0x100 - acpi_checksum(fp, 16));
    return 0;
}
