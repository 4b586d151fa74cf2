/* bzimage: setup-header validation for the direct-boot loader. Every size and
 * offset from the header is checked against the file size before it is used. */
#include "vmm/boot/bzimage.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/boot/image_parse.h"

int bzimage_parse(const uint8_t *head, size_t head_len, uint64_t file_size, struct bzimage *bz, char *why,
                  size_t whylen)
{
    memset(bz, 0, sizeof(*bz));
    if (head_len > file_size) head_len = (size_t)file_size;
    if (head_len < 0x206)
        return img_reject(why, whylen, "not a bzImage (%llu bytes, too short for a setup header)",
                      (unsigned long long)file_size);
    if (memcmp(head + 0x202, "HdrS", 4) != 0) {
        if (memcmp(head, "\x7f" "ELF", 4) == 0)
            return img_reject(why, whylen, "not a bzImage (an ELF file: an uncompressed vmlinux? use the bzImage)");
        return img_reject(why, whylen, "not a bzImage (no HdrS magic)");
    }
    if (img_le16(head + 0x1FE) != 0xAA55) return img_reject(why, whylen, "not a bzImage (no 0xAA55 boot flag)");
    if (head_len < 0x208) return img_reject(why, whylen, "truncated (ends inside the setup header)");
    bz->version = img_le16(head + 0x206);
    if (bz->version < BZIMAGE_MIN_VERSION)
        return img_reject(why, whylen, "boot protocol %u.%02u is too old (need 2.06 or later)", bz->version >> 8,
                      bz->version & 0xFF);

    /* The header runs from 0x1F1 to 0x202 + the jump offset at 0x201. */
    size_t hdr_end = 0x202 + (size_t)head[0x201];
    if (hdr_end > head_len) return img_reject(why, whylen, "truncated (ends inside the setup header)");
    bz->hdr_len = hdr_end - BZIMAGE_HDR_OFFSET;
    if (bz->hdr_len > sizeof(bz->hdr)) bz->hdr_len = sizeof(bz->hdr);
    memcpy(&bz->hdr, head + BZIMAGE_HDR_OFFSET, bz->hdr_len);
    if (bz->hdr_len < offsetof(struct setup_header, cmdline_size) + 4)
        return img_reject(why, whylen, "setup header too short for boot protocol %u.%02u", bz->version >> 8,
                      bz->version & 0xFF);

    const struct setup_header *h = &bz->hdr;
    if (!(h->loadflags & LOADED_HIGH))
        return img_reject(why, whylen, "not a bzImage (zImage that loads at 0x10000; need LOADED_HIGH)");
    uint16_t xloadflags = 0;
    if (bz->version >= 0x020C) xloadflags = img_le16(head + 0x236);
    /* without a declared 64-bit entry (a 32-bit kernel, or protocol < 2.12) the kernel is entered
     * at code32_start in flat 32-bit protected mode (the 32-bit boot protocol) */
    bz->has_entry64 = !!(xloadflags & XLF_KERNEL_64);
    bz->can_load_above_4g = !!(xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G);

    unsigned sects = h->setup_sects ? h->setup_sects : 4;
    bz->setup_size = ((uint64_t)sects + 1) * 512;
    if (bz->setup_size >= file_size)
        return img_reject(why, whylen, "truncated (setup code is %llu bytes, the file %llu)",
                      (unsigned long long)bz->setup_size, (unsigned long long)file_size);
    bz->kernel_offset = bz->setup_size;
    bz->kernel_size = file_size - bz->setup_size;
    uint64_t sys_bytes = (uint64_t)img_le32(head + 0x1F4) * 16;
    if (sys_bytes > bz->kernel_size)
        return img_reject(why, whylen, "truncated (header says %llu bytes of kernel, the file has %llu)",
                      (unsigned long long)sys_bytes, (unsigned long long)bz->kernel_size);

    bz->cmdline_size = h->cmdline_size;
    bz->initrd_addr_max = h->initrd_addr_max ? h->initrd_addr_max : 0x37FFFFFF;
    bz->relocatable = bz->version >= 0x0205 && h->relocatable_kernel;
    bz->alignment = 0x200000;
    if (bz->relocatable) {
        uint32_t a = h->kernel_alignment;
        if (a == 0 || (a & (a - 1)) != 0)
            return img_reject(why, whylen, "bad kernel_alignment 0x%x (not a power of two)", a);
        bz->alignment = a;
    }
    if (bz->version >= 0x020A) {
        bz->pref_address = h->pref_address;
        bz->init_size = h->init_size;
    }
    if (bz->init_size < bz->kernel_size) bz->init_size = bz->kernel_size;
    if (bz->pref_address >= (1ULL << 46))
        return img_reject(why, whylen, "bad pref_address 0x%llx", (unsigned long long)bz->pref_address);
    return 0;
}

uint64_t bzimage_footprint_end(const struct bzimage *bz, uint64_t load_addr)
{
    uint64_t run = load_addr;
    if (bz->relocatable) run = (load_addr + bz->alignment - 1) & ~(bz->alignment - 1);
    /* A relocatable kernel loaded below LOAD_PHYSICAL_ADDR (= pref_address) moves up to it;
     * a non-relocatable one always runs there. */
    if (bz->pref_address > run || (!bz->relocatable && bz->pref_address)) run = bz->pref_address;
    uint64_t end = run + bz->init_size;
    uint64_t loaded_end = load_addr + bz->kernel_size;
    return end > loaded_end ? end : loaded_end;
}
