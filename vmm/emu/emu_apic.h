/* emu_apic: the emulator's interrupt-controller platforms (vmm/emu/emu_apic.c): its backend's
 * irqchip_get and irqchip_set (vmm/cpu_backend.h, state in vmm/irqchip.h). */
#ifndef VMD_EMU_APIC_H
#define VMD_EMU_APIC_H

#include <stdbool.h>
#include <stddef.h>

struct machine;
struct irqchip_state;
struct snap_file;

int emu_irqchip_get(struct machine *m, struct irqchip_state *s);
int emu_irqchip_set(struct machine *m, const struct irqchip_state *s, struct snap_file *sf, bool apply, char *err,
                    size_t errlen);

#endif
