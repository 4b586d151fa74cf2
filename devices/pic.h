/* pic: the i8259A programmable interrupt controller pair (master 0x20/0x21, slave 0xA0/0xA1,
 * edge/level control 0x4D0/0x4D1), used as the guest's interrupt controller by the emu
 * backend. Under KVM the in-kernel irqchip models it instead.
 */
#ifndef VMD_DEVICES_PIC_H
#define VMD_DEVICES_PIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* A PIC section of a snapshot ("dev.pic"), decoded and validated: lets another interrupt
 * controller model (the kvm backend's in-kernel one) take over a snapshot made with this one. */
struct pic_saved_chip {
    uint8_t irr, isr, imr;
    uint8_t lines; /* input levels (edge detection) */
    uint8_t elcr;
    uint8_t vector_base; /* ICW2 & 0xF8 */
    uint8_t icw3;
    uint8_t lowest_priority; /* the IRQ with the lowest priority; (lowest + 1) & 7 is the highest */
    uint8_t init_step;       /* 0 ready, 1 expecting ICW2, 2 ICW3, 3 ICW4 */
    bool icw4_needed, single;
    bool auto_eoi, rotate_on_auto_eoi, special_fully_nested;
    bool read_isr, poll, special_mask;
};
struct pic_saved {
    bool present; /* false: the snapshot was taken with an in-kernel irqchip */
    struct pic_saved_chip chip[2]; /* 0 master, 1 slave */
};
struct snap_reader;
/* Parse a "dev.pic" section payload of section version `version`. 0, or -EINVAL with the
 * reason in err. */
int pic_state_decode(struct snap_reader *r, uint32_t version, struct pic_saved *out, char *err, size_t errlen);

/* Take over KVM's in-kernel i8259 pair: `master` and `slave` are struct kvm_pic_state (chips 0
 * and 1 of KVM_GET_IRQCHIP, passed as bytes so this header does not need <linux/kvm.h>), `len`
 * their size. Validates both first: 0, or -EINVAL with the reason in err; changes `pic` only
 * when apply (and pic is not NULL). Lock held. */
int pic_import_kvm(struct pic *pic, const void *master, const void *slave, size_t len, bool apply, char *err,
                   size_t errlen);

/* The registered device (tests call .init/.destroy directly). */
struct device_desc;
extern const struct device_desc pic_device;

#endif
