/* image_file: what the boot loaders (linux.c, multiboot_load.c) share: opening the kernel and
 * initrd files, reading them whole, and the platform tables every boot writes. */
#ifndef VMD_BOOT_IMAGE_FILE_H
#define VMD_BOOT_IMAGE_FILE_H

#include <stddef.h>
#include <stdint.h>

struct machine;

/* Open a regular file for reading. what is "kernel" or "initrd", for messages. The path is one
 * vmd resolved (or vmctl run, for its user): a symlink put there since is not followed. Returns
 * the fd (size in *size), or -errno with a message naming the file in err. */
int boot_open_image(const char *what, const char *path, uint64_t *size, char *err, size_t errlen);

/* Read exactly len bytes at off (short reads retried). 0, -EIO on early EOF, or -errno. */
int boot_pread_full(int fd, void *buf, uint64_t len, uint64_t off);

/* The BIOS data area's EBDA and base-memory fields, the ACPI tables (*rsdp: the RSDP's address)
 * and, with APICs, the MP table. 0, or -errno with a message in err. */
int boot_platform_tables(struct machine *m, uint64_t *rsdp, char *err, size_t errlen);

#endif
