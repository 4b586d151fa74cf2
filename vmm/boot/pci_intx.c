/* pci_intx: collects bus 0's INTx routing for the ACPI and MP tables. */
#include "vmm/boot/pci_intx.h"

#include <linux/pci_regs.h>

#include "devices/pci.h"
#include "vmm/machine.h"

unsigned pci_intx_routes(const struct machine *m, struct pci_intx_route *routes)
{
    unsigned n = 0;
    if (!m->pci) return 0;
    for (unsigned slot = 1; slot < PCI_MAX_SLOTS && n < PCI_INTX_MAX_ROUTES; slot++) {
        const struct pci_device *d = m->pci->slots[slot];
        if (!d) continue;
        uint8_t pin = d->cfg[PCI_INTERRUPT_PIN];
        if (pin < 1 || pin > 4 || d->irq == 0 || d->irq > 15) continue;
        routes[n++] = (struct pci_intx_route){.slot = (uint8_t)slot, .pin = (uint8_t)(pin - 1), .irq = (uint8_t)d->irq};
    }
    return n;
}
