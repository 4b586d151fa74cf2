/* e820: the guest's physical memory map as the kernel sees it (boot_params.e820_table). */
#ifndef VMD_BOOT_E820_H
#define VMD_BOOT_E820_H

#include <asm/bootparam.h>

#include "vmm/guest_mem.h"

#define E820_TYPE_RAM 1
#define E820_TYPE_RESERVED 2
#define E820_TYPE_ACPI 3
#define E820_TYPE_NVS 4

/* Fill table (room for max entries) for mem: RAM below 640 KiB minus the EBDA,
 * the reserved BIOS area, RAM from 1 MiB to the end of low RAM and from 4 GiB up.
 * Returns the number of entries (sorted, non-overlapping) or -ENOSPC / -EINVAL. */
int e820_build(const struct guest_mem *mem, struct boot_e820_entry *table, unsigned max);

#endif
