/* multiboot_load: puts a multiboot v1 image, its module and the multiboot_info into guest RAM
 * (see multiboot.h; the layout is in layout.h, docs/boot.md "Multiboot"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <asm/bootparam.h>

#include "vmm/boot/e820.h"
#include "vmm/boot/image_file.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/longmode.h"
#include "vmm/boot/multiboot.h"
#include "vmm/log.h"
#include "vmm/machine.h"

#define MIB (1024ULL * 1024ULL)

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* The initrd as the one module, page-aligned from *next; its string is the initrd's path. */
static int load_module(struct machine *m, uint64_t low_end, uint64_t *next, uint8_t *mods, char *err, size_t errlen)
{
    const char *path = m->cfg->initrd;
    uint64_t isize;
    int fd = boot_open_image("initrd", path, &isize, err, errlen);
    if (fd < 0) return fd;
    uint64_t addr = (*next + 0xFFF) & ~0xFFFULL;
    if (addr > low_end || isize > low_end - addr) {
        snprintf(err, errlen, "initrd '%s': does not fit in RAM after the multiboot image (%llu KiB at 0x%llx, the VM has "
                 "%llu MiB below 3 GiB)", path, (unsigned long long)((isize + 1023) >> 10), (unsigned long long)addr,
                 (unsigned long long)(low_end / MIB));
        close(fd);
        return -ENOMEM;
    }
    int r = isize ? boot_pread_full(fd, guest_mem_ptr(&m->mem, addr, isize), isize, 0) : 0;
    close(fd);
    if (r < 0) {
        snprintf(err, errlen, "initrd '%s': %s", path, strerror(-r));
        return r;
    }
    size_t slen = strlen(path);
    if (slen + 1 > BOOT_MB_MODSTR_MAX) {
        snprintf(err, errlen, "initrd '%s': the path is longer than %llu bytes", path,
                 (unsigned long long)BOOT_MB_MODSTR_MAX - 1);
        return -ENAMETOOLONG;
    }
    if (guest_mem_write(&m->mem, BOOT_MB_MODSTR_ADDR, path, slen + 1) < 0) return -EFAULT;
    put32(mods + 0, (uint32_t)addr);           /* mod_start */
    put32(mods + 4, (uint32_t)(addr + isize)); /* mod_end (exclusive) */
    put32(mods + 8, (uint32_t)BOOT_MB_MODSTR_ADDR);
    put32(mods + 12, 0);
    *next = addr + isize;
    log_debug("multiboot: module '%s' at 0x%llx, %llu bytes", path, (unsigned long long)addr, (unsigned long long)isize);
    return 0;
}

int multiboot_load(struct machine *m, int fd, uint64_t ksize, char *err, size_t errlen)
{
    const struct vm_config *cfg = m->cfg;
    uint64_t low_end = m->mem.regions[0].size;
    if (ksize > low_end) {
        snprintf(err, errlen, "kernel '%s': multiboot image of %llu MiB does not fit in the VM's %llu MiB", cfg->kernel,
                 (unsigned long long)(ksize / MIB), (unsigned long long)(low_end / MIB));
        return -ENOMEM;
    }
    uint8_t *file = malloc(ksize ? ksize : 1);
    if (!file) {
        snprintf(err, errlen, "kernel '%s': out of memory", cfg->kernel);
        return -ENOMEM;
    }
    int r = boot_pread_full(fd, file, ksize, 0);
    if (r < 0) {
        snprintf(err, errlen, "kernel '%s': %s", cfg->kernel, strerror(-r));
        free(file);
        return r;
    }
    struct multiboot_image mb;
    char why[200];
    r = multiboot_parse(file, (size_t)ksize, &mb, why, sizeof(why));
    if (r < 0) {
        snprintf(err, errlen, "kernel '%s': %s", cfg->kernel, why);
        free(file);
        return r;
    }
    if (mb.low < BOOT_MB_MIN_LOAD || mb.high > low_end) {
        snprintf(err, errlen, "kernel '%s': multiboot image at 0x%llx-0x%llx: vmd loads multiboot images between 1 MiB "
                 "and the end of low RAM (0x%llx)", cfg->kernel, (unsigned long long)mb.low, (unsigned long long)mb.high,
                 (unsigned long long)low_end);
        free(file);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < mb.nsegments; i++) {
        const struct multiboot_segment *s = &mb.seg[i];
        uint8_t *dst = guest_mem_ptr(&m->mem, s->addr, s->mem_size);
        if (!dst) { /* cannot happen: checked against low RAM above */
            free(file);
            snprintf(err, errlen, "kernel '%s': segment outside guest RAM", cfg->kernel);
            return -EFAULT;
        }
        memcpy(dst, file + s->file_offset, s->file_size);
        memset(dst + s->file_size, 0, s->mem_size - s->file_size);
    }
    free(file);

    uint8_t info[120] = {0}, mods[16] = {0};
    uint32_t flags = MBI_FLAG_MEMORY | MBI_FLAG_CMDLINE | MBI_FLAG_MODS | MBI_FLAG_MMAP | MBI_FLAG_LOADER_NAME;
    put32(info + 4, (uint32_t)(BOOT_EBDA_ADDR >> 10));                /* mem_lower, KiB below 640 KiB */
    put32(info + 8, (uint32_t)((low_end - BOOT_MB_MIN_LOAD) >> 10));  /* mem_upper, KiB from 1 MiB */

    /* Command line: the kernel's path, then cfg->cmdline, as QEMU and GRUB pass it */
    char *cmd = NULL;
    if (asprintf(&cmd, "%s%s%s", cfg->kernel, cfg->cmdline && *cfg->cmdline ? " " : "",
                 cfg->cmdline ? cfg->cmdline : "") < 0) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    size_t clen = strlen(cmd);
    if (clen + 1 > BOOT_CMDLINE_MAX) {
        snprintf(err, errlen, "command line is %zu bytes, vmd passes at most %llu", clen,
                 (unsigned long long)BOOT_CMDLINE_MAX - 1);
        free(cmd);
        return -E2BIG;
    }
    r = guest_mem_write(&m->mem, BOOT_CMDLINE_ADDR, cmd, clen + 1);
    free(cmd);
    put32(info + 16, (uint32_t)BOOT_CMDLINE_ADDR);

    /* Module: the initrd, after the image */
    uint64_t next = mb.high;
    if (cfg->initrd) {
        int e = load_module(m, low_end, &next, mods, err, errlen);
        if (e < 0) return e;
        put32(info + 20, 1); /* mods_count */
    }
    put32(info + 24, (uint32_t)BOOT_MB_MODS_ADDR);

    /* Memory map: vmd's e820, each entry preceded by its size (20) */
    struct boot_e820_entry e820[BOOT_MB_MMAP_MAX];
    int n = e820_build(&m->mem, e820, BOOT_MB_MMAP_MAX);
    if (n < 0) {
        snprintf(err, errlen, "e820 map: %s", strerror(-n));
        return n;
    }
    uint8_t mmap[BOOT_MB_MMAP_MAX * 24];
    for (int i = 0; i < n; i++) {
        put32(mmap + i * 24, 20);
        put64(mmap + i * 24 + 4, e820[i].addr);
        put64(mmap + i * 24 + 12, e820[i].size);
        put32(mmap + i * 24 + 20, e820[i].type);
    }
    put32(info + 44, (uint32_t)(n * 24));            /* mmap_length */
    put32(info + 48, (uint32_t)BOOT_MB_MMAP_ADDR);   /* mmap_addr: the first entry's size field */
    static const char loader[] = "vmd";
    put32(info + 64, (uint32_t)BOOT_MB_LOADER_NAME_ADDR);
    put32(info + 0, flags);

    r |= guest_mem_write(&m->mem, BOOT_MB_MMAP_ADDR, mmap, (size_t)n * 24);
    r |= guest_mem_write(&m->mem, BOOT_MB_MODS_ADDR, mods, sizeof(mods));
    r |= guest_mem_write(&m->mem, BOOT_MB_LOADER_NAME_ADDR, loader, sizeof(loader));
    r |= guest_mem_write(&m->mem, BOOT_MB_INFO_ADDR, info, sizeof(info));
    r |= protmode_write_tables(&m->mem);
    if (r < 0) {
        snprintf(err, errlen, "boot structures: outside guest RAM");
        return -EFAULT;
    }
    uint64_t rsdp = 0;
    r = boot_platform_tables(m, &rsdp, err, errlen); /* ACPI (pvpanic, power-off) and the MP table */
    if (r < 0) return r;

    m->kernel_entry32 = true;
    m->kernel_entry = mb.entry;
    m->boot_params_gpa = 0;
    m->multiboot = true;
    m->multiboot_info = BOOT_MB_INFO_ADDR;
    log_debug("boot: multiboot %s image at 0x%llx-0x%llx (%u segment(s)), entry 0x%x, info at 0x%llx",
              mb.aout_kludge ? "a.out kludge" : "ELF", (unsigned long long)mb.low, (unsigned long long)mb.high,
              mb.nsegments, mb.entry, (unsigned long long)BOOT_MB_INFO_ADDR);
    return 0;
}
