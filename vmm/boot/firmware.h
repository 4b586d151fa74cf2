/* firmware: boot through a ROM image (--firmware) instead of a kernel. The image is checked
 * (a non-zero multiple of 64 KiB, at most 16 MiB, as QEMU's -bios asks), mapped read-only so
 * that it ends at 0xFFFFFFFF (guest writes are ignored), and its last 128 KiB (all of it if it
 * is smaller) are copied into RAM below 1 MiB (0xE0000-0xFFFFF for 128 KiB), where firmware
 * expects its shadow. The vCPU starts in the architectural reset state at F000:FFF0 (linear
 * 0xFFFFFFF0). Only the emulator runs it for now: the kvm backend would need a read-only memory
 * slot for the ROM.
 *
 * Not yet: PAM shadow-RAM control (the copy below 1 MiB is plain writable RAM), fw_cfg, and
 * everything else SeaBIOS needs from the platform (issue #17).
 */
#ifndef VMD_BOOT_FIRMWARE_H
#define VMD_BOOT_FIRMWARE_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/cpu_state.h"

struct machine;

#define FIRMWARE_SIZE_UNIT (64ULL * 1024)
#define FIRMWARE_MAX_SIZE (16ULL * 1024 * 1024)
#define FIRMWARE_LOW_MAX (128ULL * 1024) /* how much of the image's end is visible below 1 MiB */

/* 0 if a ROM image of `size` bytes is acceptable, else -EINVAL with the reason in why. */
int firmware_check_size(uint64_t size, char *why, size_t whylen);

/* Load cfg->firmware into m (the ROM at the top of 4 GiB and its copy below 1 MiB). 0, or -errno
 * with a user-facing message naming the file and the reason. */
int boot_firmware_load(struct machine *m, char *err, size_t errlen);
void boot_firmware_free(struct machine *m);

/* The architectural power-on state (Intel SDM vol. 3, "Processor State After Reset"): real mode,
 * CS F000 with base 0xFFFF0000, IP 0xFFF0, CR0 0x60000010, EDX = `signature` (the family, model
 * and stepping CPUID leaf 1 reports), data segments 0 with 64 KiB limits, GDTR/IDTR limit
 * 0xFFFF. */
void boot_reset_state(struct cpu_state *s, uint32_t signature);

#endif
