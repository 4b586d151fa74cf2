/* uart: a 16550A UART on COM1 (I/O 0x3F8-0x3FF, ISA IRQ 4), the guest's serial console.
 *
 * Transmitted bytes go to the machine's console_out sink at once (the transmitter is
 * always empty); host input arrives through machine_console_input() into a 4 KiB
 * receive FIFO. IRQ 4 is held high while an enabled interrupt is pending.
 */
#ifndef VMD_DEVICES_UART_H
#define VMD_DEVICES_UART_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/device.h"

#define UART_COM1_BASE 0x3F8
#define UART_COM1_IRQ 4
#define UART_RX_FIFO_SIZE 4096

struct machine;
struct uart;

/* The registered COM1 device (tests call .init/.destroy directly). */
extern const struct device_desc uart_device;

/* Queue host input for the guest; bytes that do not fit set the overrun error. Lock held. */
void uart_receive(struct uart *u, const uint8_t *buf, size_t len);

#endif
