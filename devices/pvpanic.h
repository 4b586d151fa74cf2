/* pvpanic: QEMU's pvpanic ISA device at I/O port 0x505. Reading it returns the events it supports
 * (bit 0 panicked, bit 1 crash loaded); the guest writes bit 0 when its kernel panics and bit 1
 * when a kdump kernel is loaded and about to take over. The DSDT describes it as _HID "QEMU0001"
 * with an IO _CRS for the port (vmm/boot/acpi.c), so Linux's pvpanic-mmio driver binds by ACPI.
 *
 * What a panic does (docs/operations.md "Guest kernel panics"), by vm_config.on_panic:
 *   stop   the VM stops (MACHINE_STOP_PANIC): `vmctl run` exits VMCTL_EXIT_GUEST_PANIC, vmd shows
 *          it crashed with reason "guest kernel panicked";
 *   reboot the VM is reset at once (MACHINE_STOP_RESET);
 *   ignore logged only (the guest does what its own panic= says);
 *   auto   (the default) ignore when the kernel was direct-booted with panic=N, N != 0 on its command
 *          line (it reboots itself), else stop.
 * Always present: it is what turns a panicked guest into a stopped VM instead of a silent spin. */
#ifndef VMD_DEVICES_PVPANIC_H
#define VMD_DEVICES_PVPANIC_H

#include <stdbool.h>

#include "vmm/device.h"
#include "vmm/vm_config.h"

#define PVPANIC_PORT 0x505
#define PVPANIC_PANICKED 0x1
#define PVPANIC_CRASH_LOADED 0x2

struct machine;

/* The registered device (tests call .init/.destroy directly). */
extern const struct device_desc pvpanic_device;

/* Whether m has the device (the DSDT describes it then). */
bool pvpanic_present(const struct machine *m);

/* What a panic does for this command line under `policy`: auto resolved to stop or ignore. The
 * kernel's panic= is the last one before a "--" (what follows it is init's). */
enum vm_on_panic pvpanic_effective_policy(enum vm_on_panic policy, const char *cmdline);

#endif
