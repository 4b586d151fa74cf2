/* misc_ports: port 0x80 (POST code / I/O delay sink) and port 0x92 (system control port A:
 * fast A20, reset). No public state: the device is reached through the PIO bus only. */
#ifndef VMD_DEVICES_MISC_PORTS_H
#define VMD_DEVICES_MISC_PORTS_H

#include "vmm/device.h"

/* The registered device (tests call .init/.destroy directly). */
extern const struct device_desc misc_ports_device;

#endif
