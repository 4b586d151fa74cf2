/* bzimage: parsing and validation of a Linux x86 bzImage's setup header
 * (Documentation/x86/boot.rst). Pure functions on bytes: nothing here touches
 * guest memory or files, so hostile images can be tested in memory.
 */
#ifndef VMD_BOOT_BZIMAGE_H
#define VMD_BOOT_BZIMAGE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include <asm/bootparam.h>

/* How many leading bytes of the file bzimage_parse wants (the header ends by 0x301). */
#define BZIMAGE_HEAD_BYTES 0x400

#define BZIMAGE_MIN_VERSION 0x0206   /* cmdline_size appears in 2.06 */
#define BZIMAGE_HDR_OFFSET 0x1F1     /* struct setup_header inside the file and the zero page */

struct bzimage {
    struct setup_header hdr; /* as found in the file; fields past the kernel's header end are 0 */
    size_t hdr_len;          /* bytes of setup header the file provides (from 0x1F1) */
    uint16_t version;        /* boot protocol, e.g. 0x020F */
    uint64_t setup_size;     /* real-mode setup code, (setup_sects+1)*512 */
    uint64_t kernel_offset;  /* = setup_size: where the protected-mode kernel starts in the file */
    uint64_t kernel_size;    /* bytes of protected-mode kernel in the file */
    uint64_t init_size;      /* memory the kernel needs from its runtime start before it reads e820 */
    uint64_t alignment;      /* kernel_alignment (power of two) */
    uint64_t pref_address;   /* preferred runtime address (0 if the protocol predates it) */
    int relocatable;
    uint32_t cmdline_size;   /* maximum command-line length, NUL excluded */
    uint64_t initrd_addr_max;/* highest address the last initrd byte may have */
    int can_load_above_4g;
    bool has_entry64;        /* XLF_KERNEL_64: a 64-bit entry at +0x200; else the 32-bit protocol */
};

/* Validate the first head_len bytes of a file of file_size bytes. Returns 0, or
 * -ENOEXEC with a reason (no file name) in why, e.g. "not a bzImage (no HdrS magic)". */
int bzimage_parse(const uint8_t *head, size_t head_len, uint64_t file_size, struct bzimage *bz, char *why,
                  size_t whylen);

/* Guest-physical end of the memory the kernel may use before it reads the e820 map,
 * when its protected-mode part is loaded at load_addr (decompression happens in place
 * or at the runtime address, whichever is higher). */
uint64_t bzimage_footprint_end(const struct bzimage *bz, uint64_t load_addr);

#endif
