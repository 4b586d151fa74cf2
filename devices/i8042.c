/* i8042: controller command set, keyboard device command set, output queue and IRQs. */
#include "i8042.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "dev_snapshot.h"
#include "vmm/log.h"
#include "vmm/machine.h"

/* Controller commands (port 0x64) */
#define CMD_READ_RAM_FIRST 0x20
#define CMD_READ_RAM_LAST 0x3F
#define CMD_WRITE_RAM_FIRST 0x60
#define CMD_WRITE_RAM_LAST 0x7F
#define CMD_PASSWORD_TEST 0xA4
#define CMD_AUX_DISABLE 0xA7
#define CMD_AUX_ENABLE 0xA8
#define CMD_AUX_TEST 0xA9
#define CMD_SELF_TEST 0xAA
#define CMD_KBD_TEST 0xAB
#define CMD_KBD_DISABLE 0xAD
#define CMD_KBD_ENABLE 0xAE
#define CMD_READ_INPUT 0xC0
#define CMD_READ_OUTPUT 0xD0
#define CMD_WRITE_OUTPUT 0xD1
#define CMD_WRITE_KBD_OBUF 0xD2
#define CMD_WRITE_AUX_OBUF 0xD3
#define CMD_WRITE_AUX 0xD4
#define CMD_DISABLE_A20 0xDD
#define CMD_ENABLE_A20 0xDF
#define CMD_READ_TEST 0xE0
#define CMD_PULSE_FIRST 0xF0

#define SELF_TEST_OK 0x55
#define INTERFACE_OK 0x00
#define NO_PASSWORD 0xF1

#define OUTPORT_RESET 0x01 /* 0 holds the CPU in reset */
#define OUTPORT_A20 0x02

/* Keyboard device commands and replies */
#define KBD_CMD_SET_LEDS 0xED
#define KBD_CMD_ECHO 0xEE
#define KBD_CMD_SCANCODE_SET 0xF0
#define KBD_CMD_IDENTIFY 0xF2
#define KBD_CMD_TYPEMATIC 0xF3
#define KBD_CMD_ENABLE 0xF4
#define KBD_CMD_DISABLE 0xF5
#define KBD_CMD_DEFAULTS 0xF6
#define KBD_CMD_RESEND 0xFE
#define KBD_CMD_RESET 0xFF
#define KBD_REPLY_ACK 0xFA
#define KBD_REPLY_RESEND 0xFE
#define KBD_REPLY_POST_OK 0xAA
#define KBD_ID_1 0xAB
#define KBD_ID_2 0x83
#define KBD_ID_2_TRANSLATED 0x41 /* the controller's translation of 0x83 */

/* Scan code set 1 make code -> set 2 make code (0 = no key). Extended keys (0xE0 prefix)
 * use the same mapping for their second byte. */
static const uint8_t set1_to_set2[0x60] = {
    [0x01] = 0x76, [0x02] = 0x16, [0x03] = 0x1E, [0x04] = 0x26, [0x05] = 0x25, [0x06] = 0x2E,
    [0x07] = 0x36, [0x08] = 0x3D, [0x09] = 0x3E, [0x0A] = 0x46, [0x0B] = 0x45, [0x0C] = 0x4E,
    [0x0D] = 0x55, [0x0E] = 0x66, [0x0F] = 0x0D, [0x10] = 0x15, [0x11] = 0x1D, [0x12] = 0x24,
    [0x13] = 0x2D, [0x14] = 0x2C, [0x15] = 0x35, [0x16] = 0x3C, [0x17] = 0x43, [0x18] = 0x44,
    [0x19] = 0x4D, [0x1A] = 0x54, [0x1B] = 0x5B, [0x1C] = 0x5A, [0x1D] = 0x14, [0x1E] = 0x1C,
    [0x1F] = 0x1B, [0x20] = 0x23, [0x21] = 0x2B, [0x22] = 0x34, [0x23] = 0x33, [0x24] = 0x3B,
    [0x25] = 0x42, [0x26] = 0x4B, [0x27] = 0x4C, [0x28] = 0x52, [0x29] = 0x0E, [0x2A] = 0x12,
    [0x2B] = 0x5D, [0x2C] = 0x1A, [0x2D] = 0x22, [0x2E] = 0x21, [0x2F] = 0x2A, [0x30] = 0x32,
    [0x31] = 0x31, [0x32] = 0x3A, [0x33] = 0x41, [0x34] = 0x49, [0x35] = 0x4A, [0x36] = 0x59,
    [0x37] = 0x7C, [0x38] = 0x11, [0x39] = 0x29, [0x3A] = 0x58, [0x3B] = 0x05, [0x3C] = 0x06,
    [0x3D] = 0x04, [0x3E] = 0x0C, [0x3F] = 0x03, [0x40] = 0x0B, [0x41] = 0x83, [0x42] = 0x0A,
    [0x43] = 0x01, [0x44] = 0x09, [0x45] = 0x77, [0x46] = 0x7E, [0x47] = 0x6C, [0x48] = 0x75,
    [0x49] = 0x7D, [0x4A] = 0x7B, [0x4B] = 0x6B, [0x4C] = 0x73, [0x4D] = 0x74, [0x4E] = 0x79,
    [0x4F] = 0x69, [0x50] = 0x72, [0x51] = 0x7A, [0x52] = 0x70, [0x53] = 0x71, [0x54] = 0x84,
    [0x56] = 0x61, [0x57] = 0x78, [0x58] = 0x07, [0x5B] = 0x1F, [0x5C] = 0x27, [0x5D] = 0x2F,
};

static void i8042_set_line(struct i8042 *k, int *cur, unsigned irq, int level)
{
    if (*cur == level) return;
    *cur = level;
    machine_set_irq(k->m, irq, level);
}

/* IRQ 1 / IRQ 12 follow "output buffer full" for the head byte's port, if enabled in CTR. */
static void i8042_update_irq(struct i8042 *k)
{
    int kbd = 0, aux = 0;
    if (k->q_count) {
        if (k->queue[k->q_head].status & I8042_STR_AUXDATA) aux = (k->ctr & I8042_CTR_AUXINT) != 0;
        else kbd = (k->ctr & I8042_CTR_KBDINT) != 0;
    }
    i8042_set_line(k, &k->irq1_level, I8042_KBD_IRQ, kbd);
    i8042_set_line(k, &k->irq12_level, I8042_AUX_IRQ, aux);
}

static void i8042_push(struct i8042 *k, uint8_t data, uint8_t status)
{
    if (k->q_count == I8042_QUEUE_SIZE) {
        log_debug("i8042: output queue full, byte 0x%02x dropped", data);
        return;
    }
    k->queue[(k->q_head + k->q_count) % I8042_QUEUE_SIZE] = (struct i8042_byte){data, status};
    k->q_count++;
}

/* A byte from the keyboard device, through the controller's translation. */
static void i8042_kbd_reply(struct i8042 *k, uint8_t data)
{
    if ((k->ctr & I8042_CTR_XLATE) && data == KBD_ID_2) data = KBD_ID_2_TRANSLATED;
    i8042_push(k, data, 0);
}

static void i8042_kbd_reset_state(struct i8042 *k)
{
    k->kbd_pending_cmd = 0;
    k->kbd_scanning = true;
    k->kbd_scancode_set = 2;
    k->kbd_leds = 0;
    k->kbd_typematic = 0x2B; /* 10.9 cps, 500 ms */
}

/* A byte the guest sent to the keyboard device (port 0x60 with no controller command). */
static void i8042_kbd_write(struct i8042 *k, uint8_t v)
{
    uint8_t pending = k->kbd_pending_cmd;
    k->kbd_pending_cmd = 0;
    if (pending == KBD_CMD_SCANCODE_SET && v <= 3) {
        i8042_kbd_reply(k, KBD_REPLY_ACK);
        if (v == 0) i8042_kbd_reply(k, k->kbd_scancode_set);
        else k->kbd_scancode_set = v;
        return;
    }
    if ((pending == KBD_CMD_SET_LEDS || pending == KBD_CMD_TYPEMATIC) && v < 0x80) {
        if (pending == KBD_CMD_SET_LEDS) k->kbd_leds = v & 7;
        else k->kbd_typematic = v;
        i8042_kbd_reply(k, KBD_REPLY_ACK);
        return;
    }
    /* Otherwise the byte is a new command (a command byte also cancels a pending argument). */
    switch (v) {
    case KBD_CMD_RESET:
        i8042_kbd_reset_state(k);
        i8042_kbd_reply(k, KBD_REPLY_ACK);
        i8042_kbd_reply(k, KBD_REPLY_POST_OK);
        break;
    case KBD_CMD_IDENTIFY:
        i8042_kbd_reply(k, KBD_REPLY_ACK);
        i8042_kbd_reply(k, KBD_ID_1);
        i8042_kbd_reply(k, KBD_ID_2);
        break;
    case KBD_CMD_ENABLE:
        k->kbd_scanning = true;
        i8042_kbd_reply(k, KBD_REPLY_ACK);
        break;
    case KBD_CMD_DISABLE:
        k->kbd_scanning = false;
        k->kbd_leds = 0;
        i8042_kbd_reply(k, KBD_REPLY_ACK);
        break;
    case KBD_CMD_DEFAULTS:
        k->kbd_leds = 0;
        k->kbd_typematic = 0x2B;
        i8042_kbd_reply(k, KBD_REPLY_ACK);
        break;
    case KBD_CMD_SET_LEDS:
    case KBD_CMD_TYPEMATIC:
    case KBD_CMD_SCANCODE_SET:
        k->kbd_pending_cmd = v;
        i8042_kbd_reply(k, KBD_REPLY_ACK);
        break;
    case KBD_CMD_ECHO:
        i8042_kbd_reply(k, KBD_CMD_ECHO);
        break;
    case KBD_CMD_RESEND:
    case 0xF7: /* set-3 key type commands: accepted, no effect */
    case 0xF8:
    case 0xF9:
    case 0xFA:
    case 0xFB:
    case 0xFC:
    case 0xFD:
        i8042_kbd_reply(k, KBD_REPLY_ACK);
        break;
    default:
        i8042_kbd_reply(k, KBD_REPLY_RESEND);
        break;
    }
}

static void i8042_set_outport(struct i8042 *k, uint8_t v)
{
    k->outport = v;
    machine_set_a20(k->m, MACHINE_A20_KBC, v & OUTPORT_A20);
}

static void i8042_write_outport(struct i8042 *k, uint8_t v)
{
    i8042_set_outport(k, v);
    if (!(v & OUTPORT_RESET)) machine_request_stop(k->m, MACHINE_STOP_RESET);
}

static void i8042_set_ctr(struct i8042 *k, uint8_t v)
{
    k->ctr = v;
    k->ram[0] = v;
    k->status_flags = (uint8_t)((k->status_flags & ~I8042_STR_SYS) | (v & I8042_CTR_SYS ? I8042_STR_SYS : 0));
}

static void i8042_command(struct i8042 *k, uint8_t cmd)
{
    if (cmd >= CMD_READ_RAM_FIRST && cmd <= CMD_READ_RAM_LAST) {
        i8042_push(k, k->ram[cmd - CMD_READ_RAM_FIRST], 0);
        return;
    }
    if (cmd >= CMD_WRITE_RAM_FIRST && cmd <= CMD_WRITE_RAM_LAST) {
        k->pending_cmd = cmd;
        return;
    }
    if (cmd >= CMD_PULSE_FIRST) {
        /* Pulse the output-port lines whose bit is 0 in the low nibble; bit 0 is reset. */
        if (!(cmd & OUTPORT_RESET)) machine_request_stop(k->m, MACHINE_STOP_RESET);
        return;
    }
    switch (cmd) {
    case CMD_PASSWORD_TEST:
        i8042_push(k, NO_PASSWORD, 0);
        break;
    case CMD_AUX_DISABLE:
        i8042_set_ctr(k, k->ctr | I8042_CTR_AUXDIS);
        break;
    case CMD_AUX_ENABLE:
        i8042_set_ctr(k, k->ctr & ~I8042_CTR_AUXDIS);
        break;
    case CMD_AUX_TEST:
    case CMD_KBD_TEST:
        i8042_push(k, INTERFACE_OK, 0);
        break;
    case CMD_SELF_TEST:
        k->status_flags |= I8042_STR_SYS;
        i8042_push(k, SELF_TEST_OK, 0);
        break;
    case CMD_KBD_DISABLE:
        i8042_set_ctr(k, k->ctr | I8042_CTR_KBDDIS);
        break;
    case CMD_KBD_ENABLE:
        i8042_set_ctr(k, k->ctr & ~I8042_CTR_KBDDIS);
        break;
    case CMD_READ_INPUT:
    case CMD_READ_TEST:
        i8042_push(k, 0x00, 0);
        break;
    case CMD_READ_OUTPUT:
        i8042_push(k, k->outport, 0);
        break;
    case CMD_WRITE_OUTPUT:
    case CMD_WRITE_KBD_OBUF:
    case CMD_WRITE_AUX_OBUF:
    case CMD_WRITE_AUX:
        k->pending_cmd = cmd;
        break;
    case CMD_DISABLE_A20:
        i8042_set_outport(k, k->outport & ~OUTPORT_A20);
        break;
    case CMD_ENABLE_A20:
        i8042_set_outport(k, k->outport | OUTPORT_A20);
        break;
    default:
        log_debug("i8042: unknown controller command 0x%02x ignored", cmd);
        break;
    }
}

static void i8042_data_write(struct i8042 *k, uint8_t v)
{
    uint8_t cmd = k->pending_cmd;
    k->pending_cmd = 0;
    if (cmd >= CMD_WRITE_RAM_FIRST && cmd <= CMD_WRITE_RAM_LAST) {
        if (cmd == CMD_WRITE_RAM_FIRST) i8042_set_ctr(k, v);
        else k->ram[cmd - CMD_WRITE_RAM_FIRST] = v;
        return;
    }
    switch (cmd) {
    case CMD_WRITE_OUTPUT:
        i8042_write_outport(k, v);
        break;
    case CMD_WRITE_KBD_OBUF:
        i8042_push(k, v, 0);
        break;
    case CMD_WRITE_AUX_OBUF:
        i8042_push(k, v, I8042_STR_AUXDATA);
        break;
    case CMD_WRITE_AUX:
        /* No mouse on the aux port: the controller reports a transmit timeout. */
        i8042_push(k, KBD_REPLY_RESEND, I8042_STR_AUXDATA | I8042_STR_TIMEOUT);
        break;
    default:
        i8042_kbd_write(k, v);
        break;
    }
}

static uint8_t i8042_status(const struct i8042 *k)
{
    uint8_t s = k->status_flags | I8042_STR_KEYLOCK;
    if (k->q_count) s |= I8042_STR_OBF | k->queue[k->q_head].status;
    return s;
}

static uint8_t i8042_data_read(struct i8042 *k)
{
    if (!k->q_count) {
        /* Empty buffer: the last byte read stays on the data lines. */
        return k->queue[(k->q_head + I8042_QUEUE_SIZE - 1) % I8042_QUEUE_SIZE].data;
    }
    uint8_t v = k->queue[k->q_head].data;
    k->q_head = (k->q_head + 1) % I8042_QUEUE_SIZE;
    k->q_count--;
    /* Drop the lines so that the next queued byte makes a fresh edge. */
    i8042_set_line(k, &k->irq1_level, I8042_KBD_IRQ, 0);
    i8042_set_line(k, &k->irq12_level, I8042_AUX_IRQ, 0);
    return v;
}

static void i8042_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct i8042 *k = opaque;
    bool cmd_port = offset == I8042_CMD_PORT - I8042_DATA_PORT;
    if (is_write) {
        if (cmd_port) {
            k->status_flags |= I8042_STR_CMDDAT;
            i8042_command(k, (uint8_t)*data);
        } else {
            k->status_flags &= ~I8042_STR_CMDDAT;
            i8042_data_write(k, (uint8_t)*data);
        }
    } else {
        *data = cmd_port ? i8042_status(k) : i8042_data_read(k);
    }
    i8042_update_irq(k);
}

static void i8042_io_data(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    i8042_io(opaque, 0, data, size, is_write);
}

static void i8042_io_cmd(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    i8042_io(opaque, I8042_CMD_PORT - I8042_DATA_PORT, data, size, is_write);
}

void i8042_key_event(struct i8042 *k, const uint8_t *scancodes, size_t n)
{
    if (!k || !k->kbd_scanning || (k->ctr & I8042_CTR_KBDDIS)) return;
    bool to_set2 = !(k->ctr & I8042_CTR_XLATE) && k->kbd_scancode_set != 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = scancodes[i];
        if (!to_set2 || b == 0xE0 || b == 0xE1) {
            i8042_push(k, b, 0);
            continue;
        }
        uint8_t make = b & 0x7F;
        uint8_t code = make < sizeof(set1_to_set2) ? set1_to_set2[make] : 0;
        if (!code) continue; /* no set 2 equivalent */
        if (b & 0x80) i8042_push(k, 0xF0, 0);
        i8042_push(k, code, 0);
    }
    i8042_update_irq(k);
}

unsigned i8042_key_room(const struct i8042 *k) { return I8042_QUEUE_SIZE - k->q_count; }

void i8042_ctrl_alt_del(struct i8042 *k)
{
    static const uint8_t cad[] = {0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D};
    i8042_key_event(k, cad, sizeof(cad));
}

static void i8042_destroy(struct machine *m);

static int i8042_init(struct machine *m, char *err, size_t errlen)
{
    struct i8042 *k = calloc(1, sizeof(*k));
    if (!k) {
        snprintf(err, errlen, "i8042: out of memory");
        return -ENOMEM;
    }
    k->m = m;
    /* As firmware leaves it: keyboard interrupt on, translation on, aux disabled, POST passed. */
    i8042_set_ctr(k, I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_AUXDIS | I8042_CTR_XLATE);
    i8042_set_outport(k, OUTPORT_RESET | OUTPORT_A20);
    i8042_kbd_reset_state(k);
    m->i8042 = k;
    int r = bus_register(&m->pio, I8042_DATA_PORT, 1, i8042_io_data, k, "i8042-data");
    if (r == 0) r = bus_register(&m->pio, I8042_CMD_PORT, 1, i8042_io_cmd, k, "i8042-cmd");
    if (r < 0) {
        snprintf(err, errlen, "i8042 ports 0x60/0x64: %s", strerror(-r));
        i8042_destroy(m);
        return r;
    }
    return 0;
}

static void i8042_destroy(struct machine *m)
{
    struct i8042 *k = m->i8042;
    if (!k) return;
    bus_release(&m->pio, I8042_DATA_PORT, k);
    bus_release(&m->pio, I8042_CMD_PORT, k);
    m->i8042 = NULL;
    free(k);
}

/* Snapshot: controller and keyboard state and the unread output queue. */
#define I8042_STATE_VERSION 1

static int i8042_save(struct machine *m, struct snap_buf *b)
{
    struct i8042 *k = m->i8042;
    snap_put_bool(b, k != NULL);
    if (!k) return 0;
    snap_put(b, k->ram, sizeof(k->ram)); /* ram[0] is the command byte */
    const uint8_t regs[] = {k->outport,          k->status_flags, k->pending_cmd,     k->kbd_pending_cmd,
                            k->kbd_scanning,     k->kbd_scancode_set, k->kbd_leds, k->kbd_typematic};
    snap_put(b, regs, sizeof(regs));
    snap_put_u32(b, k->q_count);
    for (unsigned i = 0; i < k->q_count; i++) {
        const struct i8042_byte *e = &k->queue[(k->q_head + i) % I8042_QUEUE_SIZE];
        snap_put_u8(b, e->data);
        snap_put_u8(b, e->status);
    }
    return 0;
}

static int i8042_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                         size_t errlen)
{
    if (version != I8042_STATE_VERSION) return dev_snapshot_invalid("i8042", "unknown version", err, errlen);
    bool bad = false;
    bool present = snap_get_bool(r, &bad);
    if (!present) return bad || r->short_read ? dev_snapshot_invalid("i8042", "presence flag", err, errlen) : 0;
    uint8_t ram[32], regs[8];
    snap_get(r, ram, sizeof(ram));
    snap_get(r, regs, sizeof(regs));
    uint32_t count = snap_get_u32(r);
    if (count > I8042_QUEUE_SIZE) return dev_snapshot_invalid("i8042", "output queue too long", err, errlen);
    struct i8042_byte queue[I8042_QUEUE_SIZE];
    for (uint32_t i = 0; i < count; i++) {
        queue[i].data = snap_get_u8(r);
        queue[i].status = snap_get_u8(r) & (I8042_STR_AUXDATA | I8042_STR_TIMEOUT);
    }
    if (r->short_read) return dev_snapshot_invalid("i8042", "truncated", err, errlen);
    if (regs[4] > 1 || regs[5] < 1 || regs[5] > 3) return dev_snapshot_invalid("i8042", "keyboard state", err, errlen);
    struct i8042 *k = m->i8042;
    if (!apply || !k) return 0;
    memcpy(k->ram, ram, sizeof(ram));
    i8042_set_ctr(k, ram[0]);
    i8042_set_outport(k, regs[0]);
    k->status_flags = regs[1] & (I8042_STR_SYS | I8042_STR_CMDDAT);
    k->pending_cmd = regs[2];
    k->kbd_pending_cmd = regs[3];
    k->kbd_scanning = regs[4];
    k->kbd_scancode_set = regs[5];
    k->kbd_leds = regs[6];
    k->kbd_typematic = regs[7];
    memcpy(k->queue, queue, count * sizeof(queue[0]));
    k->q_head = 0;
    k->q_count = count;
    k->irq1_level = k->irq12_level = -1; /* drive both lines to the restored state */
    i8042_update_irq(k);
    return 0;
}

const struct device_desc i8042_device = {.name = "i8042",
                                         .level = DEVICE_LEVEL_BASE,
                                         .init = i8042_init,
                                         .destroy = i8042_destroy,
                                         .state_version = I8042_STATE_VERSION,
                                         .save = i8042_save,
                                         .restore = i8042_restore};
DEVICE_REGISTER(i8042_device);
