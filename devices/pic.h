/* pic: the i8259A programmable interrupt controller pair (master 0x20/0x21, slave 0xA0/0xA1,
 * edge/level control 0x4D0/0x4D1), used as the guest's interrupt controller by the emu
 * backend's platforms.
 */
#ifndef VMD_DEVICES_PIC_H
#define VMD_DEVICES_PIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/irqchip.h"

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

/* True while `irq` is masked in its chip's IMR (the guest routes it elsewhere, e.g. the IOAPIC). */
bool pic_irq_masked(const struct pic *pic, unsigned irq);

/* State (vmm/irqchip.h): get, check, set (checked state only), and the codec of the PIC part
 * of a snapshot (s NULL: absent). decode checks what it reads: 0, or -EINVAL with the reason. */
void pic_get_state(const struct pic *pic, struct irqchip_pic *s);
int pic_state_check(const struct irqchip_pic *s, char *err, size_t errlen);
void pic_set_state(struct pic *pic, const struct irqchip_pic *s);
struct snap_buf;
struct snap_reader;
void pic_state_encode(struct snap_buf *b, const struct irqchip_pic *s);
int pic_state_decode(struct snap_reader *r, bool *present, struct irqchip_pic *out, char *err, size_t errlen);

/* The registered device (tests call .init/.destroy directly). */
struct device_desc;
extern const struct device_desc pic_device;

#endif
