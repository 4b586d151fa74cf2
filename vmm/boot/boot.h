/* boot: direct Linux boot. Loads a bzImage and initrd into guest RAM, writes
 * boot_params (e820, command line, initrd, screen_info), the platform tables
 * (ACPI and/or MP table), page tables and a GDT, and produces the vCPU state
 * that enters the kernel's 64-bit entry point in long mode.
 */
#ifndef VMD_BOOT_H
#define VMD_BOOT_H

#include <stddef.h>

#include "vmm/cpu_state.h"

struct machine;

/* Load cfg->kernel / cfg->initrd / cfg->cmdline into m's RAM. Returns 0 or -errno
 * with a user-facing message in err naming the file and the reason. */
int boot_linux_load(struct machine *m, char *err, size_t errlen);

/* Initial register state of vCPU `index` (the BSP enters the kernel; APs wait for INIT/SIPI). */
void boot_cpu_state(const struct machine *m, unsigned index, struct cpu_state *s);

#endif
