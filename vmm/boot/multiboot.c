/* multiboot: header and image validation (see multiboot.h). Every offset and size is checked
 * against the file, and every address range against 4 GiB, before it is used. */
#include "vmm/boot/multiboot.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/boot/image_parse.h"

int multiboot_find(const uint8_t *head, size_t head_len, uint32_t *offset, char *why, size_t whylen)
{
    if (head_len > MULTIBOOT_SEARCH) head_len = MULTIBOOT_SEARCH;
    long bad = -1;
    for (size_t i = 0; i + 12 <= head_len; i += 4) {
        if (img_le32(head + i) != MULTIBOOT_HEADER_MAGIC) continue;
        if ((uint32_t)(MULTIBOOT_HEADER_MAGIC + img_le32(head + i + 4) + img_le32(head + i + 8)) == 0) {
            *offset = (uint32_t)i;
            return 1;
        }
        if (bad < 0) bad = (long)i;
    }
    if (bad >= 0)
        return img_reject(why, whylen, "multiboot header at offset 0x%lx: bad checksum (magic + flags + checksum must be 0)",
                      bad);
    return 0;
}

static int add_segment(struct multiboot_image *mb, uint64_t off, uint64_t filesz, uint64_t addr, uint64_t memsz,
                       char *why, size_t whylen)
{
    if (memsz == 0) return 0;
    if (mb->nsegments == MULTIBOOT_MAX_SEGMENTS)
        return img_reject(why, whylen, "multiboot: more than %d loadable segments", MULTIBOOT_MAX_SEGMENTS);
    if (addr + memsz > (1ULL << 32))
        return img_reject(why, whylen, "multiboot: segment at 0x%llx (%llu bytes) ends above 4 GiB",
                      (unsigned long long)addr, (unsigned long long)memsz);
    for (unsigned i = 0; i < mb->nsegments; i++) {
        const struct multiboot_segment *s = &mb->seg[i];
        if (addr < s->addr + s->mem_size && s->addr < addr + memsz)
            return img_reject(why, whylen, "multiboot: segments at 0x%llx and 0x%llx overlap", (unsigned long long)s->addr,
                          (unsigned long long)addr);
    }
    mb->seg[mb->nsegments++] = (struct multiboot_segment){off, filesz, addr, memsz};
    if (mb->nsegments == 1 || addr < mb->low) mb->low = addr;
    if (addr + memsz > mb->high) mb->high = addr + memsz;
    return 0;
}

static bool entry_inside(const struct multiboot_image *mb, uint64_t entry)
{
    for (unsigned i = 0; i < mb->nsegments; i++)
        if (entry >= mb->seg[i].addr && entry < mb->seg[i].addr + mb->seg[i].mem_size) return true;
    return false;
}

/* The a.out kludge: header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr after the
 * checksum. The file from header_offset - (header_addr - load_addr) is loaded at load_addr. */
static int parse_aout(const uint8_t *file, size_t len, struct multiboot_image *mb, char *why, size_t whylen)
{
    const uint8_t *h = file + mb->header_offset;
    if ((uint64_t)mb->header_offset + 32 > len)
        return img_reject(why, whylen, "multiboot: a.out kludge: the header's address fields run past the end of the file");
    uint32_t header_addr = img_le32(h + 12), load_addr = img_le32(h + 16), load_end = img_le32(h + 20), bss_end = img_le32(h + 24);
    uint32_t entry = img_le32(h + 28);
    if (load_addr > header_addr)
        return img_reject(why, whylen, "multiboot: a.out kludge: load_addr 0x%x is above header_addr 0x%x", load_addr,
                      header_addr);
    if (header_addr - load_addr > mb->header_offset)
        return img_reject(why, whylen,
                      "multiboot: a.out kludge: header_addr - load_addr = 0x%x, but the header is at file offset 0x%x",
                      header_addr - load_addr, mb->header_offset);
    uint64_t off = mb->header_offset - (header_addr - load_addr);
    uint64_t size;
    if (load_end == 0) {
        size = len - off;
    } else {
        if (load_end < load_addr)
            return img_reject(why, whylen, "multiboot: a.out kludge: load_end_addr 0x%x is below load_addr 0x%x", load_end,
                          load_addr);
        size = load_end - load_addr;
        if (off + size > len)
            return img_reject(why, whylen,
                          "multiboot: a.out kludge: load_end_addr 0x%x needs %llu bytes of file from offset 0x%llx, the "
                          "file has %zu",
                          load_end, (unsigned long long)size, (unsigned long long)off, len);
    }
    uint64_t memsz = size;
    if (bss_end != 0) {
        if ((uint64_t)bss_end < load_addr + size)
            return img_reject(why, whylen, "multiboot: a.out kludge: bss_end_addr 0x%x is below the end of the loaded data 0x%llx",
                          bss_end, (unsigned long long)(load_addr + size));
        memsz = bss_end - load_addr;
    }
    if (memsz == 0) return img_reject(why, whylen, "multiboot: a.out kludge: nothing to load");
    int r = add_segment(mb, off, size, load_addr, memsz, why, whylen);
    if (r) return r;
    if (!entry_inside(mb, entry))
        return img_reject(why, whylen, "multiboot: a.out kludge: entry_addr 0x%x is outside the loaded image 0x%x-0x%llx",
                      entry, load_addr, (unsigned long long)(load_addr + memsz));
    mb->entry = entry;
    return 0;
}

#define EM_386_ 3
#define PT_LOAD_ 1

static int parse_elf(const uint8_t *file, size_t len, struct multiboot_image *mb, char *why, size_t whylen)
{
    if (len < 52 || memcmp(file, "\x7f" "ELF", 4) != 0)
        return img_reject(why, whylen, "multiboot: not an ELF file, and the header has no a.out kludge (flags bit 16)");
    if (file[4] == 2)
        return img_reject(why, whylen, "multiboot: a 64-bit ELF file (multiboot v1 loads 32-bit images only)");
    if (file[4] != 1 || file[5] != 1)
        return img_reject(why, whylen, "multiboot: ELF class %u / data %u (need a 32-bit little-endian ELF)", file[4], file[5]);
    if (img_le16(file + 18) != EM_386_) return img_reject(why, whylen, "multiboot: ELF machine %u (need EM_386)", img_le16(file + 18));
    if (img_le16(file + 16) != 2) return img_reject(why, whylen, "multiboot: ELF type %u (need an executable)", img_le16(file + 16));
    uint32_t entry = img_le32(file + 24), phoff = img_le32(file + 28);
    uint16_t phentsize = img_le16(file + 42), phnum = img_le16(file + 44);
    if (phnum == 0) return img_reject(why, whylen, "multiboot: the ELF file has no program headers");
    if (phentsize < 32) return img_reject(why, whylen, "multiboot: ELF program header size %u (need 32)", phentsize);
    if ((uint64_t)phoff + (uint64_t)phnum * phentsize > len)
        return img_reject(why, whylen, "multiboot: ELF program headers (%u at 0x%x) run past the end of the file", phnum, phoff);
    uint64_t vaddr_of_entry_seg = 0, paddr_of_entry_seg = 0;
    bool entry_virtual = false;
    for (unsigned i = 0; i < phnum; i++) {
        const uint8_t *ph = file + phoff + (uint64_t)i * phentsize;
        if (img_le32(ph) != PT_LOAD_) continue;
        uint32_t off = img_le32(ph + 4), vaddr = img_le32(ph + 8), paddr = img_le32(ph + 12), filesz = img_le32(ph + 16),
                 memsz = img_le32(ph + 20);
        if (filesz > memsz)
            return img_reject(why, whylen, "multiboot: ELF segment %u: file size %u exceeds memory size %u", i, filesz, memsz);
        if ((uint64_t)off + filesz > len)
            return img_reject(why, whylen, "multiboot: ELF segment %u: %u bytes at offset 0x%x run past the end of the file", i,
                          filesz, off);
        int r = add_segment(mb, off, filesz, paddr, memsz, why, whylen);
        if (r) return r;
        if (entry >= vaddr && (uint64_t)entry < (uint64_t)vaddr + memsz) {
            entry_virtual = true;
            vaddr_of_entry_seg = vaddr;
            paddr_of_entry_seg = paddr;
        }
    }
    if (mb->nsegments == 0) return img_reject(why, whylen, "multiboot: the ELF file has no loadable segment");
    if (!entry_inside(mb, entry)) {
        /* a kernel linked at a virtual address: its entry as the loader places it */
        if (!entry_virtual)
            return img_reject(why, whylen, "multiboot: ELF entry 0x%x is outside every loadable segment", entry);
        entry = (uint32_t)(entry - vaddr_of_entry_seg + paddr_of_entry_seg);
    }
    mb->entry = entry;
    return 0;
}

int multiboot_parse(const uint8_t *file, size_t len, struct multiboot_image *mb, char *why, size_t whylen)
{
    memset(mb, 0, sizeof(*mb));
    uint32_t off;
    int r = multiboot_find(file, len, &off, why, whylen);
    if (r < 0) return r;
    if (r == 0) return img_reject(why, whylen, "no multiboot header in the first %d bytes", MULTIBOOT_SEARCH);
    mb->header_offset = off;
    mb->flags = img_le32(file + off + 4);
    if (mb->flags & MULTIBOOT_VIDEO_MODE)
        return img_reject(why, whylen, "multiboot: the kernel asks for a video mode (flags bit 2), which vmd does not provide");
    if (mb->flags & 0xFFF8u)
        return img_reject(why, whylen, "multiboot: unknown required flags 0x%x in the header (bits 3-15)", mb->flags & 0xFFF8u);
    mb->aout_kludge = mb->flags & MULTIBOOT_AOUT_KLUDGE;
    return mb->aout_kludge ? parse_aout(file, len, mb, why, whylen) : parse_elf(file, len, mb, why, whylen);
}
