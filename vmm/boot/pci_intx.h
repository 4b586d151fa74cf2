/* pci_intx: the PCI INTx wiring of bus 0 as the platform tables describe it (ACPI _PRT,
 * MP-table I/O interrupt entries). Read from the devices already registered on the
 * machine's PCI bus (devices/pci.c assigns each an ISA IRQ for INTA#), so the tables
 * say exactly what the device model does. */
#ifndef VMD_BOOT_PCI_INTX_H
#define VMD_BOOT_PCI_INTX_H

#include <stdint.h>

struct machine;

struct pci_intx_route {
    uint8_t slot; /* device number on bus 0 */
    uint8_t pin;  /* 0 = INTA# .. 3 = INTD# */
    uint8_t irq;  /* ISA IRQ = GSI it raises, level-triggered, active low */
};

#define PCI_INTX_MAX_ROUTES 32

/* Fill routes (room for PCI_INTX_MAX_ROUTES) for every device with an interrupt pin. Returns the count. */
unsigned pci_intx_routes(const struct machine *m, struct pci_intx_route *routes);

#endif
