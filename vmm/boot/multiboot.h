/* multiboot: parsing and validation of Multiboot (v1, 0.6.96) kernel images, as QEMU's -kernel
 * and GRUB load them: the header in the first 8 KiB, then either the ELF32 program headers or the
 * "a.out kludge" addresses of the header (flags bit 16). Pure functions on bytes, like bzimage.h:
 * nothing here touches guest memory or files. The loader is multiboot_load.c. */
#ifndef VMD_BOOT_MULTIBOOT_H
#define VMD_BOOT_MULTIBOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MULTIBOOT_SEARCH 8192            /* the header lies 4-byte aligned in the first 8 KiB */
#define MULTIBOOT_HEADER_MAGIC 0x1BADB002u
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u /* in EAX at the kernel's entry */

/* Header flags (bits 0-15 are requirements: a loader must refuse one it does not meet) */
#define MULTIBOOT_PAGE_ALIGN 0x1u        /* modules 4 KiB aligned */
#define MULTIBOOT_MEMORY_INFO 0x2u       /* mem_lower/upper (and the mmap) wanted */
#define MULTIBOOT_VIDEO_MODE 0x4u        /* a video mode table wanted: not provided, refused */
#define MULTIBOOT_AOUT_KLUDGE 0x10000u   /* load by the header's addresses, not as ELF */

/* multiboot_info flags vmd sets */
#define MBI_FLAG_MEMORY 0x1u
#define MBI_FLAG_CMDLINE 0x4u
#define MBI_FLAG_MODS 0x8u
#define MBI_FLAG_MMAP 0x40u
#define MBI_FLAG_LOADER_NAME 0x200u

#define MULTIBOOT_MAX_SEGMENTS 16

/* One piece of the image: file_size bytes from file_offset go to guest-physical addr, and the
 * rest up to mem_size is zeroed (bss). */
struct multiboot_segment {
    uint64_t file_offset, file_size, addr, mem_size;
};

struct multiboot_image {
    uint32_t header_offset; /* where the header is in the file */
    uint32_t flags;         /* the header's */
    bool aout_kludge;       /* loaded by the header's addresses (else ELF32) */
    uint32_t entry;         /* guest-physical entry point */
    unsigned nsegments;
    struct multiboot_segment seg[MULTIBOOT_MAX_SEGMENTS];
    uint64_t low, high;     /* lowest address and end (exclusive) of everything loaded */
};

/* Whether the first head_len bytes hold a multiboot header: 1 (a valid one; *offset is where),
 * 0 (no magic at all), or -ENOEXEC with a reason in why (a magic whose checksum is wrong). */
int multiboot_find(const uint8_t *head, size_t head_len, uint32_t *offset, char *why, size_t whylen);

/* Parse a whole multiboot image of len bytes. 0, or -ENOEXEC with a reason (no file name) in why,
 * e.g. "multiboot: a.out kludge: load_end_addr 0x1000 is below load_addr 0x100000". */
int multiboot_parse(const uint8_t *file, size_t len, struct multiboot_image *mb, char *why, size_t whylen);

/* The loader (multiboot_load.c), called by boot_linux_load for a kernel file with a multiboot
 * header and no bzImage header: loads the segments (1 MiB and up, inside RAM), cfg->initrd as the
 * one module (page-aligned after the image), writes the multiboot_info (memory, the e820 map as
 * mmap, "KERNEL CMDLINE" as the command line, boot loader name "vmd", the module) and the ACPI/MP
 * tables, and sets m up for a flat 32-bit protected-mode entry with EAX = 0x2BADB002 and EBX =
 * the info. fd is the open kernel file of ksize bytes. 0, or -errno with a message naming the file. */
struct machine;
int multiboot_load(struct machine *m, int fd, uint64_t ksize, char *err, size_t errlen);

#endif
