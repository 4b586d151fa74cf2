/* debug_exit: QEMU's isa-debug-exit (iobase 0xf4, iosize 4): test kernels end the VM through it.
 * A guest write of V (1, 2 or 4 bytes) ends the VM with exit status (V<<1)|1 (the low 8 bits,
 * as a process exit status). Off by default: present only with --device isa-debug-exit. */
#ifndef VMD_DEVICES_DEBUG_EXIT_H
#define VMD_DEVICES_DEBUG_EXIT_H

#include "vmm/device.h"

#define DEBUG_EXIT_PORT 0xF4
#define DEBUG_EXIT_SIZE 4

/* The registered device (tests call .init/.destroy directly). */
extern const struct device_desc debug_exit_device;

#endif
