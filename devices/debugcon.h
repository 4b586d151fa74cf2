/* debugcon: the firmware debug console at I/O port 0x402, as QEMU's isa-debugcon that SeaBIOS
 * writes its messages to. A read returns 0xE9 (how firmware finds out that the port is there);
 * written bytes are collected into lines and logged to the VM's log as "firmware: <line>", with
 * control characters escaped and a rate limit, since the guest controls them. */
#ifndef VMD_DEVICES_DEBUGCON_H
#define VMD_DEVICES_DEBUGCON_H

#include "vmm/device.h"

#define DEBUGCON_PORT 0x402
#define DEBUGCON_READBACK 0xE9
#define DEBUGCON_LINE_MAX 200 /* longer lines are logged in pieces */

extern const struct device_desc debugcon_device;

#endif
