/* pic: the i8259A programmable interrupt controller pair (master 0x20/0x21, slave 0xA0/0xA1,
 * edge/level control 0x4D0/0x4D1), used as the guest's interrupt controller by the emu
 * backend. Under KVM the in-kernel irqchip models it instead.
 */
#ifndef VMD_DEVICES_PIC_H
#define VMD_DEVICES_PIC_H

#include <stdbool.h>

struct pic;
struct machine;

/* Set the input level of ISA IRQ line `irq` (0-15). Caller holds the device lock. */
void pic_set_irq(struct pic *pic, unsigned irq, int level);
/* The INTR output towards the CPU: true if an unmasked request is ready for acknowledgement. */
bool pic_has_irq(const struct pic *pic);
/* Interrupt acknowledge cycle: returns the vector of the highest-priority request and moves it
 * to in-service (spurious IRQ7/IRQ15 vectors as the hardware does), or -1 if none. Lock held. */
int pic_read_irq(struct pic *pic);

/* True while `irq`'s request is latched in IRR, i.e. raised but not yet acknowledged.
 * Lets the PIT hold back a tick until the previous one was taken. Lock held. */
bool pic_irq_requested(const struct pic *pic, unsigned irq);

/* The registered device (tests call .init/.destroy directly). */
struct device_desc;
extern const struct device_desc pic_device;

#endif
