/* uart: 16550A register model (kvmtool's habit: state named after the datasheet registers,
 * constants from <linux/serial_reg.h>). */
#include "uart.h"

#include <errno.h>
#include <linux/serial_reg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "dev_snapshot.h"
#include "vmm/machine.h"

#define UART_IIR_FIFO_BITS 0xC0 /* IIR bits 7:6 read 11 while the FIFOs are enabled */
#define UART_MSR_STATUS_BITS (UART_MSR_DCD | UART_MSR_RI | UART_MSR_DSR | UART_MSR_CTS)

struct uart {
    struct machine *m;
    uint16_t base;
    unsigned irq;

    /* registers */
    uint8_t ier, iir, fcr, lcr, mcr, lsr, msr, scr, dll, dlm;

    bool thri_pending; /* THR empty interrupt condition, cleared by an IIR read or a THR write */
    int irq_level;

    /* receive FIFO (ring) */
    uint8_t rx[UART_RX_FIFO_SIZE];
    size_t rx_head, rx_count;
};

static bool uart_line_status_error(const struct uart *u) { return (u->lsr & UART_LSR_BRK_ERROR_BITS) != 0; }

/* Highest-priority pending interrupt identification (without the FIFO bits). */
static uint8_t uart_pending_iir(const struct uart *u)
{
    if ((u->ier & UART_IER_RLSI) && uart_line_status_error(u)) return UART_IIR_RLSI;
    if ((u->ier & UART_IER_RDI) && u->rx_count > 0) return UART_IIR_RDI;
    if ((u->ier & UART_IER_THRI) && u->thri_pending) return UART_IIR_THRI;
    if ((u->ier & UART_IER_MSI) && (u->msr & UART_MSR_ANY_DELTA)) return UART_IIR_MSI;
    return UART_IIR_NO_INT;
}

static void uart_update_irq(struct uart *u)
{
    uint8_t id = uart_pending_iir(u);
    u->iir = id | ((u->fcr & UART_FCR_ENABLE_FIFO) ? UART_IIR_FIFO_BITS : 0);
    /* OUT2 gates the interrupt line on PC serial cards, but Linux's 8250 probing of the IRQ
     * line does not need that nuance; keep the line a pure function of "interrupt pending". */
    int level = id != UART_IIR_NO_INT;
    if (level != u->irq_level) {
        u->irq_level = level;
        machine_set_irq(u->m, u->irq, level);
    }
}

static void uart_rx_push(struct uart *u, uint8_t byte)
{
    if (u->rx_count == UART_RX_FIFO_SIZE) {
        u->lsr |= UART_LSR_OE;
        return;
    }
    u->rx[(u->rx_head + u->rx_count) % UART_RX_FIFO_SIZE] = byte;
    u->rx_count++;
}

static uint8_t uart_rx_pop(struct uart *u)
{
    if (u->rx_count == 0) return 0;
    uint8_t byte = u->rx[u->rx_head];
    u->rx_head = (u->rx_head + 1) % UART_RX_FIFO_SIZE;
    u->rx_count--;
    return byte;
}

/* Modem status inputs: in loopback mode they are wired to the modem control outputs
 * (RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD); otherwise a connected, ready terminal. */
static uint8_t uart_modem_inputs(const struct uart *u)
{
    if (!(u->mcr & UART_MCR_LOOP)) return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
    uint8_t in = 0;
    if (u->mcr & UART_MCR_RTS) in |= UART_MSR_CTS;
    if (u->mcr & UART_MCR_DTR) in |= UART_MSR_DSR;
    if (u->mcr & UART_MCR_OUT1) in |= UART_MSR_RI;
    if (u->mcr & UART_MCR_OUT2) in |= UART_MSR_DCD;
    return in;
}

static void uart_set_modem_inputs(struct uart *u, uint8_t in)
{
    uint8_t old = u->msr & UART_MSR_STATUS_BITS;
    uint8_t changed = old ^ in;
    uint8_t delta = 0;
    if (changed & UART_MSR_CTS) delta |= UART_MSR_DCTS;
    if (changed & UART_MSR_DSR) delta |= UART_MSR_DDSR;
    if (changed & UART_MSR_DCD) delta |= UART_MSR_DDCD;
    if ((old & UART_MSR_RI) && !(in & UART_MSR_RI)) delta |= UART_MSR_TERI; /* trailing edge */
    u->msr = in | (u->msr & UART_MSR_ANY_DELTA) | delta;
}

static void uart_transmit(struct uart *u, uint8_t byte)
{
    if (u->mcr & UART_MCR_LOOP) {
        uart_rx_push(u, byte);
    } else if (u->m->console_out) {
        u->m->console_out(u->m->console_opaque, &byte, 1);
    }
    /* The byte left at once: THR and the shift register are empty again. */
    u->thri_pending = true;
}

static uint8_t uart_read(struct uart *u, unsigned reg)
{
    bool dlab = u->lcr & UART_LCR_DLAB;
    uint8_t v = 0;
    switch (reg) {
    case UART_RX:
        if (dlab) return u->dll;
        v = uart_rx_pop(u);
        break;
    case UART_IER:
        return dlab ? u->dlm : u->ier;
    case UART_IIR:
        v = u->iir;
        /* Reading IIR while it reports THR empty acknowledges that interrupt. */
        if ((v & UART_IIR_ID) == UART_IIR_THRI) u->thri_pending = false;
        break;
    case UART_LCR:
        return u->lcr;
    case UART_MCR:
        return u->mcr;
    case UART_LSR:
        v = u->lsr | UART_LSR_THRE | UART_LSR_TEMT | (u->rx_count ? UART_LSR_DR : 0);
        u->lsr &= ~UART_LSR_BRK_ERROR_BITS; /* error bits clear on read */
        break;
    case UART_MSR:
        v = u->msr;
        u->msr &= ~UART_MSR_ANY_DELTA;
        break;
    case UART_SCR:
        return u->scr;
    }
    uart_update_irq(u);
    return v;
}

static void uart_write(struct uart *u, unsigned reg, uint8_t v)
{
    bool dlab = u->lcr & UART_LCR_DLAB;
    switch (reg) {
    case UART_TX:
        if (dlab) {
            u->dll = v;
            return;
        }
        uart_transmit(u, v);
        break;
    case UART_IER:
        if (dlab) {
            u->dlm = v;
            return;
        }
        /* Enabling (or re-enabling) the THR interrupt while THR is empty raises it at once,
         * which Linux's 8250 driver relies on to start transmission. */
        if (v & UART_IER_THRI) u->thri_pending = true;
        u->ier = v & 0x0F;
        break;
    case UART_FCR:
        if (v & UART_FCR_CLEAR_RCVR) {
            u->rx_head = u->rx_count = 0;
        }
        /* CLEAR_XMIT: the transmitter never holds data. */
        u->fcr = v & (UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_MASK);
        break;
    case UART_LCR:
        u->lcr = v;
        return;
    case UART_MCR:
        u->mcr = v & 0x1F;
        uart_set_modem_inputs(u, uart_modem_inputs(u));
        break;
    case UART_LSR:
        return; /* read-only on a 16550A */
    case UART_MSR:
        return;
    case UART_SCR:
        u->scr = v;
        return;
    }
    uart_update_irq(u);
}

static void uart_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct uart *u = opaque;
    /* Wider accesses touch consecutive registers, one byte each (as on the ISA bus). */
    for (unsigned i = 0; i < size && offset + i < 8; i++) {
        unsigned reg = (unsigned)(offset + i);
        if (is_write)
            uart_write(u, reg, (uint8_t)(*data >> (8 * i)));
        else
            *data |= (uint64_t)uart_read(u, reg) << (8 * i);
    }
}

void uart_receive(struct uart *u, const uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) uart_rx_push(u, buf[i]);
    uart_update_irq(u);
}

static void uart_console_in(void *dev, const uint8_t *buf, size_t len) { uart_receive(dev, buf, len); }

static int uart_init(struct machine *m, char *err, size_t errlen)
{
    struct uart *u = calloc(1, sizeof(*u));
    if (!u) {
        snprintf(err, errlen, "uart COM1: out of memory");
        return -ENOMEM;
    }
    u->m = m;
    u->base = UART_COM1_BASE;
    u->irq = UART_COM1_IRQ;
    u->iir = UART_IIR_NO_INT;
    u->lsr = UART_LSR_THRE | UART_LSR_TEMT;
    u->lcr = UART_LCR_WLEN8;
    u->dll = 0x0C; /* 9600 baud, as firmware leaves it */
    u->msr = UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
    int r = bus_register(&m->pio, u->base, 8, uart_io, u, "uart-com1");
    if (r < 0) {
        snprintf(err, errlen, "uart COM1 ports 0x%x-0x%x: %s", u->base, u->base + 7, strerror(-r));
        free(u);
        return r;
    }
    m->com1 = u;
    m->console_in = uart_console_in;
    m->console_in_dev = u;
    return 0;
}

static void uart_destroy(struct machine *m)
{
    struct uart *u = m->com1;
    if (!u) return;
    bus_release(&m->pio, u->base, u);
    if (m->console_in_dev == u) {
        m->console_in = NULL;
        m->console_in_dev = NULL;
    }
    m->com1 = NULL;
    free(u);
}

/* Snapshot: the registers, the THR-empty condition and the unread receive FIFO. */
#define UART_STATE_VERSION 1

static int uart_save(struct machine *m, struct snap_buf *b)
{
    struct uart *u = m->com1;
    snap_put_bool(b, u != NULL);
    if (!u) return 0;
    const uint8_t regs[] = {u->ier, u->fcr, u->lcr, u->mcr, u->lsr, u->msr, u->scr, u->dll, u->dlm};
    snap_put(b, regs, sizeof(regs));
    snap_put_bool(b, u->thri_pending);
    snap_put_u32(b, (uint32_t)u->rx_count);
    for (size_t i = 0; i < u->rx_count; i++) snap_put_u8(b, u->rx[(u->rx_head + i) % UART_RX_FIFO_SIZE]);
    return 0;
}

static int uart_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                        size_t errlen)
{
    if (version != UART_STATE_VERSION) return dev_snapshot_invalid("uart", "unknown version", err, errlen);
    bool bad = false;
    bool present = snap_get_bool(r, &bad);
    if (!present) return bad || r->short_read ? dev_snapshot_invalid("uart", "presence flag", err, errlen) : 0;
    uint8_t regs[9];
    snap_get(r, regs, sizeof(regs));
    bool thri = snap_get_bool(r, &bad);
    uint32_t count = snap_get_u32(r);
    if (count > UART_RX_FIFO_SIZE) return dev_snapshot_invalid("uart", "receive FIFO too long", err, errlen);
    uint8_t *rx = malloc(count ? count : 1);
    if (!rx) return -ENOMEM;
    snap_get(r, rx, count);
    struct uart *u = m->com1;
    if (bad || r->short_read || !apply || !u) {
        free(rx);
        return bad || r->short_read ? dev_snapshot_invalid("uart", "truncated or malformed", err, errlen) : 0;
    }
    u->ier = regs[0] & 0x0F;
    u->fcr = regs[1] & (UART_FCR_ENABLE_FIFO | UART_FCR_TRIGGER_MASK);
    u->lcr = regs[2];
    u->mcr = regs[3] & 0x1F;
    u->lsr = regs[4];
    u->msr = regs[5];
    u->scr = regs[6];
    u->dll = regs[7];
    u->dlm = regs[8];
    u->thri_pending = thri;
    memcpy(u->rx, rx, count);
    free(rx);
    u->rx_head = 0;
    u->rx_count = count;
    u->irq_level = -1; /* drive IRQ 4 to the restored level */
    uart_update_irq(u);
    return 0;
}

const struct device_desc uart_device = {.name = "uart-com1",
                                        .level = DEVICE_LEVEL_BASE,
                                        .init = uart_init,
                                        .destroy = uart_destroy,
                                        .state_version = UART_STATE_VERSION,
                                        .save = uart_save,
                                        .restore = uart_restore};
DEVICE_REGISTER(uart_device);
