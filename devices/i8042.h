/* i8042: the PS/2 keyboard controller (data 0x60, status/command 0x64) with a keyboard on
 * its first port (ISA IRQ 1) and an auxiliary port with no device attached (IRQ 12): the aux
 * port answers the controller's own loop/test commands, and bytes sent to the absent mouse
 * come back as 0xFE with the timeout status bit, so Linux's psmouse probe fails at once.
 * The output-port reset line and the 0xFE pulse command reset the machine.
 */
#ifndef VMD_DEVICES_I8042_H
#define VMD_DEVICES_I8042_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/device.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_KBD_IRQ 1
#define I8042_AUX_IRQ 12
/* Bytes buffered towards the guest (the keyboard's own buffer is 16 bytes). Linux's i8042_flush
 * gives up on a controller that still has data after 16 reads, so never hold more. */
#define I8042_QUEUE_SIZE 16

/* Status register */
#define I8042_STR_OBF 0x01
#define I8042_STR_IBF 0x02
#define I8042_STR_SYS 0x04
#define I8042_STR_CMDDAT 0x08 /* A2: last write went to the command port */
#define I8042_STR_KEYLOCK 0x10 /* 1 = keyboard not inhibited */
#define I8042_STR_AUXDATA 0x20
#define I8042_STR_TIMEOUT 0x40
#define I8042_STR_PARITY 0x80

/* Controller command byte (CTR) */
#define I8042_CTR_KBDINT 0x01
#define I8042_CTR_AUXINT 0x02
#define I8042_CTR_SYS 0x04
#define I8042_CTR_KBDDIS 0x10
#define I8042_CTR_AUXDIS 0x20
#define I8042_CTR_XLATE 0x40

struct machine;

struct i8042_byte {
    uint8_t data;
    uint8_t status; /* I8042_STR_AUXDATA / I8042_STR_TIMEOUT for this byte */
};

struct i8042 {
    struct machine *m;
    uint8_t ctr;            /* controller command byte (RAM byte 0) */
    uint8_t ram[32];        /* controller RAM bytes 0x00-0x1F (ram[0] mirrors ctr) */
    uint8_t outport;        /* output port: bit 0 reset line (1 = run), bit 1 A20 */
    uint8_t status_flags;   /* SYS and CMDDAT bits */
    uint8_t pending_cmd;    /* controller command waiting for its data byte, or 0 */

    /* keyboard device state */
    uint8_t kbd_pending_cmd; /* keyboard command waiting for its argument, or 0 */
    bool kbd_scanning;
    uint8_t kbd_scancode_set; /* 1-3 as set by command 0xF0 */
    uint8_t kbd_leds, kbd_typematic;

    /* output buffer queue; the head is what port 0x60 returns */
    struct i8042_byte queue[I8042_QUEUE_SIZE];
    unsigned q_head, q_count;
    int irq1_level, irq12_level;
};

/* The registered device (tests call .init/.destroy directly). */
extern const struct device_desc i8042_device;

/* Inject key presses/releases as PC scan code set 1 bytes (make code, make|0x80 for the
 * break, 0xE0 prefix for extended keys), e.g. from the VNC server. The controller delivers
 * them as set 1 when translation (CTR bit 6) is on, which is how Linux's atkbd runs it, and
 * converts them to set 2 when translation is off. Dropped while the keyboard is disabled
 * or not scanning. Caller holds dev_lock. */
void i8042_key_event(struct i8042 *k, const uint8_t *scancodes, size_t n);
/* Free bytes in the output queue: a caller feeding bursts (VNC) injects only what fits and
 * keeps the rest, as a keyboard holds keys the controller has not taken. Caller holds dev_lock. */
unsigned i8042_key_room(const struct i8042 *k);

/* Press and release Ctrl-Alt-Del (Linux then signals init, which reboots or stops the
 * machine as it is configured to). Caller holds dev_lock. */
void i8042_ctrl_alt_del(struct i8042 *k);

#endif
