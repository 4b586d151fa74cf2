/* Unit tests for vmm/boot: bzImage validation and its error messages, kernel/initrd/
 * command-line placement, the zero page, e820, page tables, GDT, initial vCPU state,
 * ACPI tables and the MP table. Kernels are synthetic bzImages written to temp files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asm/bootparam.h>

#include "devices/pci.h"
#include "devices/fw_cfg.h"
#include "devices/pvpanic.h"
#include "vmm/boot/multiboot.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/aml.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/e820.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/longmode.h"
#include "vmm/boot/mptable.h"
#include "vmm/cpu_backend.h"
#include "vmm/machine.h"
#include "vmm/vm_config.h"

#define MIB (1024ULL * 1024ULL)

/* ---- synthetic bzImages ---- */

struct fake_kernel {
    uint16_t version;
    uint8_t setup_sects;
    uint8_t loadflags;
    uint16_t xloadflags;
    uint32_t payload;      /* bytes of protected-mode kernel */
    uint32_t syssize_pad;  /* extra paragraphs claimed in syssize */
    uint32_t init_size;
    uint32_t initrd_addr_max;
    uint32_t cmdline_size;
    int no_magic, no_bootflag;
};

static struct fake_kernel default_kernel(void)
{
    return (struct fake_kernel){.version = 0x020F, .setup_sects = 4, .loadflags = LOADED_HIGH,
                                .xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G, .payload = 64 * 1024,
                                .init_size = 8 * MIB, .initrd_addr_max = 0x7FFFFFFF, .cmdline_size = 2047};
}

static uint8_t payload_byte(uint64_t i)
{
    return (uint8_t)(i * 7 + (i >> 9));
}

/* A bzImage image in memory; *len gets its size. */
static uint8_t *fake_bzimage(const struct fake_kernel *k, size_t *len)
{
    unsigned sects = k->setup_sects ? k->setup_sects : 4;
    size_t setup = (sects + 1) * 512ULL;
    *len = setup + k->payload;
    uint8_t *img = calloc(1, *len);
    assert_non_null(img);
    struct setup_header h;
    memset(&h, 0, sizeof(h));
    h.setup_sects = k->setup_sects;
    h.syssize = k->payload / 16 + k->syssize_pad;
    h.boot_flag = k->no_bootflag ? 0 : 0xAA55;
    h.jump = 0x6AEB; /* jmp short to 0x26C: the whole 2.15 header */
    memcpy(&h.header, k->no_magic ? "HdrX" : "HdrS", 4);
    h.version = k->version;
    h.loadflags = k->loadflags;
    h.code32_start = 0x100000;
    h.initrd_addr_max = k->initrd_addr_max;
    h.kernel_alignment = 0x200000;
    h.relocatable_kernel = 1;
    h.min_alignment = 21;
    h.xloadflags = k->xloadflags;
    h.cmdline_size = k->cmdline_size;
    h.pref_address = 0x1000000;
    h.init_size = k->init_size;
    memcpy(img + 0x1F1, &h, sizeof(h));
    for (size_t i = 0; i < k->payload; i++) img[setup + i] = payload_byte(i);
    return img;
}

static char tmpdir[64];

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/vmd-test-boot-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Write buf to a file in tmpdir; returns its path (static buffer per name). */
static char *write_file(const char *name, const void *buf, size_t len)
{
    char *path = malloc(128);
    assert_non_null(path);
    snprintf(path, 128, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    return path;
}

static char *write_kernel(const struct fake_kernel *k)
{
    size_t len;
    uint8_t *img = fake_bzimage(k, &len);
    char *p = write_file("bzImage", img, len);
    free(img);
    return p;
}

/* ---- a machine with just RAM and a config ---- */

struct vm {
    struct machine m;
    struct vm_config cfg;
    char err[256];
    struct pci_bus pci;          /* only slots[] is read by the boot code */
    struct pci_device pcidev[2];
};

/* Put two INTA# devices on the VM's PCI bus as devices/pci.c would: slot 3 on IRQ 10, slot 5 on IRQ 11. */
static void vm_add_pci_devices(struct vm *v)
{
    for (unsigned i = 0; i < 2; i++) {
        struct pci_device *d = &v->pcidev[i];
        d->slot = 3 + 2 * i;
        d->irq = 10 + i;
        d->cfg[0x3D] = 1; /* Interrupt Pin: INTA# */
        d->cfg[0x3C] = (uint8_t)d->irq;
        v->pci.slots[d->slot] = d;
    }
    v->m.pci = &v->pci;
}

static struct vm *vm_new(uint64_t mib, unsigned cpus, bool apic, char *kernel, char *initrd, const char *cmdline)
{
    struct vm *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    v->cfg.memory_mib = mib;
    v->cfg.cpus = cpus;
    v->cfg.kernel = kernel;
    v->cfg.initrd = initrd;
    v->cfg.cmdline = cmdline ? strdup(cmdline) : NULL;
    v->m.cfg = &v->cfg;
    v->m.ncpus = cpus;
    v->m.apic = apic;
    assert_int_equal(guest_mem_init(&v->m.mem, mib * MIB), 0);
    return v;
}

static void vm_free(struct vm *v)
{
    guest_mem_free(&v->m.mem);
    free(v->cfg.kernel);
    free(v->cfg.initrd);
    free(v->cfg.cmdline);
    free(v);
}

static int vm_load(struct vm *v)
{
    return boot_linux_load(&v->m, v->err, sizeof(v->err));
}

static const struct boot_params *zero_page(struct vm *v)
{
    const struct boot_params *bp = guest_mem_ptr(&v->m.mem, BOOT_PARAMS_ADDR, sizeof(*bp));
    assert_non_null(bp);
    return bp;
}

/* ---- rejection messages ---- */

static void expect_kernel_error(const struct fake_kernel *k, uint64_t mib, const char *reason)
{
    char *path = write_kernel(k);
    char expect[256];
    snprintf(expect, sizeof(expect), "kernel '%s': %s", path, reason);
    struct vm *v = vm_new(mib, 1, false, path, NULL, NULL);
    assert_true(vm_load(v) < 0);
    if (strncmp(v->err, expect, strlen(expect)) != 0) fail_msg("got \"%s\", want prefix \"%s\"", v->err, expect);
    vm_free(v);
}

static void test_missing_kernel_file(void **state)
{
    (void)state;
    struct vm *v = vm_new(64, 1, false, strdup("/nonexistent/vmlinuz"), NULL, NULL);
    assert_int_equal(vm_load(v), -ENOENT);
    assert_string_equal(v->err, "kernel '/nonexistent/vmlinuz': No such file or directory");
    vm_free(v);
}

static void test_kernel_is_directory(void **state)
{
    (void)state;
    struct vm *v = vm_new(64, 1, false, strdup(tmpdir), NULL, NULL);
    assert_true(vm_load(v) < 0);
    char expect[128];
    snprintf(expect, sizeof(expect), "kernel '%s': not a regular file", tmpdir);
    assert_string_equal(v->err, expect);
    vm_free(v);
}

static void test_text_file_is_not_bzimage(void **state)
{
    (void)state;
    char text[2048];
    for (size_t i = 0; i < sizeof(text); i++) text[i] = "root:x:0:0:root:/root:/bin/bash\n"[i % 32];
    char *path = write_file("passwd", text, sizeof(text));
    struct vm *v = vm_new(64, 1, false, path, NULL, NULL);
    assert_int_equal(vm_load(v), -ENOEXEC);
    char expect[256];
    snprintf(expect, sizeof(expect), "kernel '%s': not a bzImage (no HdrS magic)", path);
    assert_string_equal(v->err, expect);
    vm_free(v);
}

static void test_elf_vmlinux_named(void **state)
{
    (void)state;
    uint8_t elf[4096] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    char *path = write_file("vmlinux", elf, sizeof(elf));
    struct vm *v = vm_new(64, 1, false, path, NULL, NULL);
    assert_int_equal(vm_load(v), -ENOEXEC);
    assert_non_null(strstr(v->err, "not a bzImage (an ELF file: an uncompressed vmlinux? use the bzImage)"));
    vm_free(v);
}

static void test_short_and_empty_files(void **state)
{
    (void)state;
    char *path = write_file("empty", "", 0);
    struct vm *v = vm_new(64, 1, false, path, NULL, NULL);
    assert_int_equal(vm_load(v), -ENOEXEC);
    assert_non_null(strstr(v->err, "not a bzImage (0 bytes, too short for a setup header)"));
    vm_free(v);

    struct fake_kernel k = default_kernel();
    size_t len;
    uint8_t *img = fake_bzimage(&k, &len);
    path = write_file("cut", img, 0x230); /* magic present, header cut short */
    free(img);
    v = vm_new(64, 1, false, path, NULL, NULL);
    assert_int_equal(vm_load(v), -ENOEXEC);
    assert_non_null(strstr(v->err, "truncated (ends inside the setup header)"));
    vm_free(v);
}

static void test_bad_magic_and_bootflag(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    k.no_magic = 1;
    expect_kernel_error(&k, 64, "not a bzImage (no HdrS magic)");
    k = default_kernel();
    k.no_bootflag = 1;
    expect_kernel_error(&k, 64, "not a bzImage (no 0xAA55 boot flag)");
}

static void test_old_protocols_rejected(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    k.version = 0x0204;
    expect_kernel_error(&k, 64, "boot protocol 2.04 is too old (need 2.06 or later)");
    k = default_kernel();
    k.loadflags = 0;
    expect_kernel_error(&k, 64, "not a bzImage (zImage");
}

static void test_truncated_kernel_rejected(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    k.syssize_pad = 4096; /* header claims 64 KiB more than the file holds */
    expect_kernel_error(&k, 64, "truncated (header says 131072 bytes of kernel, the file has 65536)");
    k = default_kernel();
    k.setup_sects = 200; /* setup larger than the file */
    k.payload = 0;
    expect_kernel_error(&k, 64, "truncated (setup code is 102912 bytes, the file 102912)");
}

static void test_kernel_too_big_for_ram(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    k.init_size = 60 * MIB; /* runs at 16 MiB: needs 76 MiB */
    expect_kernel_error(&k, 64, "does not fit in RAM (needs 76 MiB below 3 GiB, the VM has 64 MiB there)");
    /* the same kernel fits in 128 MiB */
    char *path = write_kernel(&k);
    struct vm *v = vm_new(128, 1, false, path, NULL, NULL);
    assert_int_equal(vm_load(v), 0);
    vm_free(v);
}

static void test_bzimage_parse_fields(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    k.setup_sects = 0; /* means 4 */
    size_t len;
    uint8_t *img = fake_bzimage(&k, &len);
    struct bzimage bz;
    char why[128];
    assert_int_equal(bzimage_parse(img, len < BZIMAGE_HEAD_BYTES ? len : BZIMAGE_HEAD_BYTES, len, &bz, why,
                                   sizeof(why)), 0);
    assert_int_equal(bz.version, 0x020F);
    assert_int_equal(bz.setup_size, 5 * 512);
    assert_int_equal(bz.kernel_size, k.payload);
    assert_int_equal(bz.init_size, 8 * MIB);
    assert_int_equal(bz.cmdline_size, 2047);
    assert_int_equal(bz.initrd_addr_max, 0x7FFFFFFF);
    assert_int_equal(bz.hdr_len, 0x26C - 0x1F1);
    assert_true(bz.relocatable);
    /* runs at pref_address (16 MiB) with init_size after it */
    assert_int_equal(bzimage_footprint_end(&bz, BOOT_KERNEL_ADDR), 16 * MIB + 8 * MIB);
    free(img);
}

/* Every header-controlled size, fuzzed a little: parsing never reads past the buffer (ASan watches). */
static void test_bzimage_parse_garbage_headers(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    size_t len;
    uint8_t *img = fake_bzimage(&k, &len);
    uint8_t head[BZIMAGE_HEAD_BYTES];
    srand(1234);
    unsigned accepted = 0;
    for (int round = 0; round < 2000; round++) {
        memcpy(head, img, sizeof(head));
        for (int j = 0; j < 4; j++) head[0x1F1 + rand() % (0x26C - 0x1F1)] = (uint8_t)rand();
        size_t hl = (size_t)(rand() % (int)sizeof(head));
        uint8_t *exact = malloc(hl ? hl : 1);
        memcpy(exact, head, hl);
        struct bzimage bz;
        char why[128];
        if (bzimage_parse(exact, hl, (uint64_t)rand() % (1 << 20), &bz, why, sizeof(why)) == 0) {
            accepted++;
            assert_true(bz.kernel_offset + bz.kernel_size > bz.kernel_offset);
        } else {
            assert_true(strlen(why) > 0);
        }
        free(exact);
    }
    (void)accepted;
    free(img);
}

/* ---- a successful load ---- */

static void test_load_places_kernel_and_zero_page(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(256, 1, false, write_kernel(&k), NULL, "console=ttyS0 panic=1");
    assert_int_equal(vm_load(v), 0);
    assert_int_equal(v->m.kernel_entry, 0x100200);
    assert_int_equal(v->m.boot_params_gpa, 0x7000);

    const uint8_t *kern = guest_mem_ptr(&v->m.mem, 0x100000, k.payload);
    for (uint32_t i = 0; i < k.payload; i++)
        if (kern[i] != payload_byte(i)) fail_msg("kernel byte %u differs", i);

    const struct boot_params *bp = zero_page(v);
    assert_memory_equal(&bp->hdr.header, "HdrS", 4);
    assert_int_equal(bp->hdr.version, 0x020F);
    assert_int_equal(bp->hdr.type_of_loader, 0xFF);
    assert_true(bp->hdr.loadflags & LOADED_HIGH);
    assert_true(bp->hdr.loadflags & CAN_USE_HEAP);
    assert_int_equal(bp->hdr.cmd_line_ptr, 0x20000);
    assert_string_equal((const char *)guest_mem_ptr(&v->m.mem, 0x20000, 1), "console=ttyS0 panic=1");
    assert_int_equal(bp->hdr.ramdisk_image, 0);
    assert_int_equal(bp->hdr.ramdisk_size, 0);
    assert_int_equal(bp->hdr.xloadflags & XLF_KERNEL_64, XLF_KERNEL_64);
    /* vgacon's 80x25 colour text console */
    assert_int_equal(bp->screen_info.orig_video_mode, 3);
    assert_int_equal(bp->screen_info.orig_video_cols, 80);
    assert_int_equal(bp->screen_info.orig_video_lines, 25);
    assert_int_not_equal(bp->screen_info.orig_video_isVGA, 0);
    assert_int_not_equal(bp->screen_info.orig_video_ega_bx & 0xFF, 0x10);
    assert_int_equal(bp->screen_info.orig_video_points, 16);
    assert_int_equal(bp->acpi_rsdp_addr, ACPI_RSDP_ADDR);
    assert_int_equal(bp->sentinel, 0);
    /* BIOS data area: EBDA segment */
    uint16_t ebda;
    assert_int_equal(guest_mem_read(&v->m.mem, 0x40E, &ebda, 2), 0);
    assert_int_equal((uint64_t)ebda << 4, BOOT_EBDA_ADDR);
    vm_free(v);
}

static void test_no_kernel_given(void **state)
{
    (void)state;
    struct vm *v = vm_new(64, 1, false, NULL, NULL, NULL);
    assert_int_equal(vm_load(v), -EINVAL);
    assert_string_equal(v->err, "no kernel given (--kernel)");
    vm_free(v);
}

static void test_cmdline_too_long(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    k.cmdline_size = 16;
    struct vm *v = vm_new(64, 1, false, write_kernel(&k), NULL, "console=ttyS0 panic=1");
    assert_int_equal(vm_load(v), -E2BIG);
    assert_string_equal(v->err, "command line is 21 bytes, the kernel accepts at most 16");
    vm_free(v);
    v = vm_new(64, 1, false, write_kernel(&k), NULL, "0123456789abcdef"); /* exactly 16 fits */
    assert_int_equal(vm_load(v), 0);
    assert_string_equal((const char *)guest_mem_ptr(&v->m.mem, 0x20000, 1), "0123456789abcdef");
    vm_free(v);
}

static void test_initrd_placed_high_and_aligned(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    size_t isize = 3 * MIB + 123;
    uint8_t *rd = malloc(isize);
    for (size_t i = 0; i < isize; i++) rd[i] = (uint8_t)(i ^ (i >> 8));
    char *rdpath = write_file("initrd", rd, isize);
    struct vm *v = vm_new(256, 1, false, write_kernel(&k), rdpath, NULL);
    assert_int_equal(vm_load(v), 0);
    const struct boot_params *bp = zero_page(v);
    uint64_t addr = bp->hdr.ramdisk_image | (uint64_t)bp->ext_ramdisk_image << 32;
    assert_int_equal(bp->hdr.ramdisk_size, isize);
    assert_int_equal(addr & 0xFFF, 0);
    assert_true(addr + isize <= 256 * MIB);
    assert_true(addr + isize > 256 * MIB - 4096); /* as high as possible */
    assert_true(addr >= 24 * MIB);                 /* clear of the kernel's footprint */
    assert_memory_equal(guest_mem_ptr(&v->m.mem, addr, isize), rd, isize);
    char *rdpath2 = strdup(rdpath);
    vm_free(v);

    /* initrd_addr_max below the end of RAM bounds the placement */
    k.initrd_addr_max = 0x3FFFFFF; /* 64 MiB - 1 */
    v = vm_new(256, 1, false, write_kernel(&k), rdpath2, NULL);
    assert_int_equal(vm_load(v), 0);
    bp = zero_page(v);
    assert_true(bp->hdr.ramdisk_image + isize <= 64 * MIB);
    assert_true(bp->hdr.ramdisk_image + isize > 64 * MIB - 4096);
    vm_free(v);
    free(rd);
}

static void test_initrd_errors(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(64, 1, false, write_kernel(&k), strdup("/nonexistent/initrd.img"), NULL);
    assert_int_equal(vm_load(v), -ENOENT);
    assert_string_equal(v->err, "initrd '/nonexistent/initrd.img': No such file or directory");
    vm_free(v);

    /* 48 MiB initrd + kernel up to 24 MiB does not fit in 64 MiB */
    char *rdpath = malloc(128);
    snprintf(rdpath, 128, "%s/big-initrd", tmpdir);
    FILE *f = fopen(rdpath, "wb");
    assert_non_null(f);
    assert_int_equal(ftruncate(fileno(f), 48 * MIB), 0);
    fclose(f);
    v = vm_new(64, 1, false, write_kernel(&k), rdpath, NULL);
    assert_int_equal(vm_load(v), -ENOMEM);
    char expect[256];
    snprintf(expect, sizeof(expect), "initrd '%s': does not fit in RAM (48 MiB initrd above a kernel that needs 24 MiB; "
             "the VM has 64 MiB below 3 GiB)", rdpath);
    assert_string_equal(v->err, expect);
    vm_free(v);
}

/* ---- e820 ---- */

static void check_e820(const struct boot_e820_entry *e, int n, uint64_t ram_bytes)
{
    assert_true(n > 0);
    uint64_t ram = 0;
    for (int i = 0; i < n; i++) {
        assert_true(e[i].size > 0);
        if (i > 0) assert_true(e[i].addr >= e[i - 1].addr + e[i - 1].size); /* sorted, no overlap */
        if (e[i].type == E820_TYPE_RAM) {
            ram += e[i].size;
            /* RAM never covers VGA memory, the BIOS area or the 3-4 GiB MMIO hole */
            assert_false(e[i].addr < 0x100000 && e[i].addr + e[i].size > 0x9FC00);
            assert_false(e[i].addr < 0x100000000ULL && e[i].addr + e[i].size > 0xC0000000ULL);
        }
        assert_false(e[i].addr < 0xC0000 && e[i].addr + e[i].size > 0xA0000); /* VGA window left alone */
    }
    /* all RAM is listed except the EBDA and the 0xA0000-0xFFFFF window */
    assert_int_equal(ram, ram_bytes - (0x100000 - 0x9FC00));
}

static void test_e820_256m(void **state)
{
    (void)state;
    struct guest_mem mem = {.size = 256 * MIB, .nregions = 1, .regions = {{.gpa = 0, .size = 256 * MIB}}};
    struct boot_e820_entry e[E820_MAX_ENTRIES_ZEROPAGE];
    int n = e820_build(&mem, e, E820_MAX_ENTRIES_ZEROPAGE);
    assert_int_equal(n, 4);
    check_e820(e, n, 256 * MIB);
    assert_int_equal(e[0].addr, 0);
    assert_int_equal(e[0].size, 0x9FC00);
    assert_int_equal(e[0].type, E820_TYPE_RAM);
    assert_int_equal(e[1].type, E820_TYPE_RESERVED);
    assert_int_equal(e[3].addr, 0x100000);
    assert_int_equal(e[3].addr + e[3].size, 256 * MIB);
    assert_int_equal(e[3].type, E820_TYPE_RAM);
    assert_int_equal(e820_build(&mem, e, 2), -ENOSPC);
}

static void test_e820_above_4g(void **state)
{
    (void)state;
    /* 5 GiB: 3 GiB below the hole, 2 GiB from 4 GiB */
    struct guest_mem mem;
    assert_int_equal(guest_mem_init(&mem, 5ULL << 30), 0);
    struct boot_e820_entry e[E820_MAX_ENTRIES_ZEROPAGE];
    int n = e820_build(&mem, e, E820_MAX_ENTRIES_ZEROPAGE);
    assert_int_equal(n, 5);
    check_e820(e, n, 5ULL << 30);
    assert_int_equal(e[3].addr + e[3].size, 0xC0000000ULL);
    assert_int_equal(e[4].addr, 0x100000000ULL);
    assert_int_equal(e[4].size, 2ULL << 30);
    assert_int_equal(e[4].type, E820_TYPE_RAM);
    guest_mem_free(&mem);
}

static void test_zero_page_e820_matches(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(4096 + 512, 1, false, write_kernel(&k), NULL, NULL);
    assert_int_equal(vm_load(v), 0);
    const struct boot_params *bp = zero_page(v);
    assert_int_equal(bp->e820_entries, 5);
    check_e820(bp->e820_table, bp->e820_entries, (4096 + 512) * MIB);
    vm_free(v);
}

/* ---- page tables and GDT ---- */

/* Walk the guest page tables from cr3 like the MMU (4-level, 2 MiB or 4 KiB leaves). */
static bool translate(struct vm *v, uint64_t cr3, uint64_t va, uint64_t *pa)
{
    uint64_t table = cr3 & ~0xFFFULL;
    for (int level = 3; level >= 0; level--) {
        uint64_t idx = (va >> (12 + 9 * level)) & 511, pte;
        if (guest_mem_read(&v->m.mem, table + idx * 8, &pte, 8) < 0) return false;
        if (!(pte & 1)) return false;
        if (level == 1 && (pte & 0x80)) {
            *pa = (pte & 0x000FFFFFFFE00000ULL) | (va & 0x1FFFFF);
            return true;
        }
        if (level == 0) {
            *pa = (pte & 0x000FFFFFFFFFF000ULL) | (va & 0xFFF);
            return true;
        }
        table = pte & 0x000FFFFFFFFFF000ULL;
    }
    return false;
}

static void test_page_tables_identity_map_4g(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(256, 1, false, write_kernel(&k), NULL, NULL);
    assert_int_equal(vm_load(v), 0);
    struct cpu_state s;
    boot_cpu_state(&v->m, 0, &s);
    static const uint64_t probes[] = {0, 0x7000, 0x20000, 0x100200, 0x1000000, 0x0FFFFFFF, 0xBFFFFFFF,
                                      0xC0000000, 0xFEC00000, 0xFEE00000, 0xFFFFFFFF};
    for (unsigned i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        uint64_t pa = 0;
        assert_true(translate(v, s.cr3, probes[i], &pa));
        assert_int_equal(pa, probes[i]);
    }
    for (uint64_t va = 0; va < 0x100000000ULL; va += 0x200000) { /* every 2 MiB page */
        uint64_t pa = 0;
        assert_true(translate(v, s.cr3, va + 0x1234, &pa));
        assert_int_equal(pa, va + 0x1234);
    }
    uint64_t pa;
    assert_false(translate(v, s.cr3, 0x100000000ULL, &pa)); /* nothing above 4 GiB */
    vm_free(v);
}

static void test_gdt_descriptors(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(64, 1, false, write_kernel(&k), NULL, NULL);
    assert_int_equal(vm_load(v), 0);
    uint64_t gdt[6];
    assert_int_equal(guest_mem_read(&v->m.mem, 0x500, gdt, sizeof(gdt)), 0);
    assert_int_equal(gdt[0], 0);
    assert_int_equal(gdt[1], 0);
    assert_int_equal(gdt[2], 0x00AF9B000000FFFFULL); /* 0x10: 64-bit code, DPL 0, G */
    assert_int_equal(gdt[3], 0x00CF93000000FFFFULL); /* 0x18: flat data */
    /* 0x20: 64-bit busy TSS at BOOT_TSS_ADDR, limit 0x67 */
    assert_int_equal(gdt[4], 0x00008B0000000067ULL | ((BOOT_TSS_ADDR & 0xFFFFFF) << 16));
    assert_int_equal(gdt[5], 0);
    vm_free(v);
}

/* A kernel without a declared 64-bit entry (a 32-bit kernel, or protocol 2.10 without
 * xloadflags) is entered by the 32-bit boot protocol: at code32_start in flat 32-bit protected
 * mode with __BOOT_CS/__BOOT_DS, paging and interrupts off, boot_params in ESI, EBX EBP EDI 0. */
static void test_32bit_boot_protocol(void **state)
{
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        struct fake_kernel k = default_kernel();
        if (variant == 0) k.xloadflags = 0;
        else if (variant == 1) k.version = 0x020A;
        struct vm *v = vm_new(64, 1, false, write_kernel(&k), NULL, NULL);
        if (variant == 2) v->cfg.boot_protocol = BOOT_PROTOCOL_32; /* a 64-bit kernel, forced */
        assert_int_equal(vm_load(v), 0);
        assert_true(v->m.kernel_entry32);
        assert_int_equal(v->m.kernel_entry, 0x100000);
        struct cpu_state s;
        boot_cpu_state(&v->m, 0, &s);
        assert_int_equal(s.rip, 0x100000);
        assert_int_equal(zero_page(v)->hdr.code32_start, 0x100000);
        assert_int_equal(s.gpr[GPR_RSI], 0x7000);
        assert_int_equal(s.gpr[GPR_RBX] | s.gpr[GPR_RBP] | s.gpr[GPR_RDI], 0);
        assert_int_equal(s.rflags, 0x2);
        assert_int_equal(s.cr0 & (CR0_PE | CR0_PG), CR0_PE);
        assert_int_equal(s.efer & (EFER_LME | EFER_LMA), 0);
        assert_int_equal(s.cr4 & CR4_PAE, 0);
        const struct cpu_segment *cs = &s.seg[SEG_CS];
        assert_int_equal(cs->selector, 0x10);
        assert_int_equal(cs->type, 0xB);
        assert_int_equal(cs->l, 0);
        assert_int_equal(cs->db, 1);
        assert_int_equal(cs->base, 0);
        assert_int_equal(cs->limit, 0xFFFFFFFF);
        for (int seg = SEG_ES; seg <= SEG_GS; seg++) {
            if (seg == SEG_CS) continue;
            assert_int_equal(s.seg[seg].selector, 0x18);
            assert_int_equal(s.seg[seg].limit, 0xFFFFFFFF);
        }
        /* the GDT in guest memory holds the same 32-bit code descriptor (the kernel reloads it) */
        uint64_t desc;
        memcpy(&desc, guest_mem_ptr(&v->m.mem, 0x500 + 0x10, 8), 8);
        assert_int_equal((desc >> 53) & 3, 2); /* L=0, D=1 */
        vm_free(v);
    }
}

/* --boot-protocol 64 needs the 64-bit entry: a 32-bit kernel is refused, naming the reason; with it,
 * the 64-bit entry is used as by default. */
static void test_boot_protocol_64_forced(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    k.xloadflags = 0;
    struct vm *v = vm_new(64, 1, false, write_kernel(&k), NULL, NULL);
    v->cfg.boot_protocol = BOOT_PROTOCOL_64;
    assert_int_equal(vm_load(v), -ENOEXEC);
    assert_non_null(strstr(v->err, "--boot-protocol 64: the kernel has no 64-bit entry point"));
    vm_free(v);
    k = default_kernel();
    v = vm_new(64, 1, false, write_kernel(&k), NULL, NULL);
    v->cfg.boot_protocol = BOOT_PROTOCOL_64;
    assert_int_equal(vm_load(v), 0);
    assert_false(v->m.kernel_entry32);
    assert_int_equal(v->m.kernel_entry, 0x100200);
    vm_free(v);
}

static void test_bsp_state(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(64, 2, true, write_kernel(&k), NULL, NULL);
    assert_int_equal(vm_load(v), 0);
    struct cpu_state s;
    boot_cpu_state(&v->m, 0, &s);
    assert_int_equal(s.rip, 0x100200);
    assert_int_equal(s.gpr[GPR_RSI], 0x7000);
    assert_int_equal(s.gpr[GPR_RSP], 0x8FF0);
    assert_int_equal(s.rflags, 0x2);
    assert_int_equal(s.cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG);
    assert_int_equal(s.cr3, 0x9000);
    assert_true(s.cr4 & CR4_PAE);
    assert_int_equal(s.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
    const struct cpu_segment *cs = &s.seg[SEG_CS];
    assert_int_equal(cs->selector, 0x10);
    assert_int_equal(cs->type, 0xB);
    assert_int_equal(cs->l, 1);
    assert_int_equal(cs->db, 0);
    assert_int_equal(cs->dpl, 0);
    assert_int_equal(cs->present, 1);
    assert_int_equal(cs->s, 1);
    for (int seg = SEG_ES; seg <= SEG_GS; seg++) {
        if (seg == SEG_CS) continue;
        assert_int_equal(s.seg[seg].selector, 0x18);
        assert_int_equal(s.seg[seg].type, 3);
        assert_int_equal(s.seg[seg].present, 1);
        assert_int_equal(s.seg[seg].limit, 0xFFFFFFFF);
        assert_int_equal(s.seg[seg].unusable, 0);
    }
    assert_int_equal(s.seg[SEG_TR].selector, 0x20);
    assert_int_equal(s.seg[SEG_TR].type, 0xB);
    assert_int_equal(s.seg[SEG_TR].s, 0);
    assert_int_equal(s.seg[SEG_TR].base, BOOT_TSS_ADDR);
    assert_int_equal(s.seg[SEG_TR].limit, 0x67);
    assert_int_equal(s.seg[SEG_TR].present, 1);
    assert_int_equal(s.seg[SEG_LDTR].unusable, 1);
    assert_int_equal(s.gdtr.base, 0x500);
    assert_int_equal(s.gdtr.limit, 47);
    assert_int_equal(s.idtr.limit, 0);
    assert_int_equal(s.fx.fcw, 0x37F);
    assert_int_equal(s.fx.mxcsr, 0x1F80);
    assert_int_equal(s.fx.ftw, 0);
    assert_int_equal(s.apic_base, 0xFEE00900);
    vm_free(v);
}

static void test_ap_reset_state(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(64, 2, true, write_kernel(&k), NULL, NULL);
    assert_int_equal(vm_load(v), 0);
    struct cpu_state s;
    boot_cpu_state(&v->m, 1, &s);
    assert_int_equal(s.seg[SEG_CS].selector, 0xF000);
    assert_int_equal(s.seg[SEG_CS].base, 0xFFFF0000);
    assert_int_equal(s.seg[SEG_CS].limit, 0xFFFF);
    assert_int_equal(s.rip, 0xFFF0);
    assert_int_equal(s.cr0, 0x60000010);
    assert_int_equal(s.efer, 0);
    assert_int_equal(s.rflags, 2);
    assert_int_equal(s.seg[SEG_DS].limit, 0xFFFF);
    assert_int_equal(s.seg[SEG_DS].present, 1);
    assert_int_equal(s.apic_base, 0xFEE00800); /* enabled, not the BSP */
    vm_free(v);
}

/* ---- ACPI ---- */

/* Linux's legacy RSDP search: 16-byte steps over 0xE0000-0xFFFFF, signature and v1 checksum. */
static uint64_t scan_rsdp(struct vm *v)
{
    for (uint64_t a = 0xE0000; a < 0x100000; a += 16) {
        const uint8_t *p = guest_mem_ptr(&v->m.mem, a, 36);
        if (memcmp(p, "RSD PTR ", 8) == 0 && acpi_checksum(p, 20) == 0) return a;
    }
    return 0;
}

static const uint8_t *acpi_table(struct vm *v, uint64_t gpa, const char *sig)
{
    const uint8_t *h = guest_mem_ptr(&v->m.mem, gpa, 36);
    assert_non_null(h);
    assert_memory_equal(h, sig, 4);
    uint32_t len;
    memcpy(&len, h + 4, 4);
    const uint8_t *t = guest_mem_ptr(&v->m.mem, gpa, len);
    assert_non_null(t);
    if (acpi_checksum(t, len) != 0) fail_msg("%s checksum does not sum to 0", sig);
    return t;
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Find the table with signature sig through the XSDT (also cross-checks the RSDT). */
static const uint8_t *find_table(struct vm *v, const char *sig)
{
    uint64_t rsdp_a = scan_rsdp(v);
    assert_int_not_equal(rsdp_a, 0);
    const uint8_t *rsdp = guest_mem_ptr(&v->m.mem, rsdp_a, 36);
    const uint8_t *xsdt = acpi_table(v, rd64(rsdp + 24), "XSDT");
    const uint8_t *rsdt = acpi_table(v, rd32(rsdp + 16), "RSDT");
    unsigned n = (rd32(xsdt + 4) - 36) / 8;
    assert_int_equal((rd32(rsdt + 4) - 36) / 4, n);
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = rd64(xsdt + 36 + 8 * i);
        assert_int_equal(rd32(rsdt + 36 + 4 * i), a);
        const uint8_t *t = guest_mem_ptr(&v->m.mem, a, 36);
        if (t && memcmp(t, sig, 4) == 0) return acpi_table(v, a, sig);
    }
    return NULL;
}

static void test_acpi_rsdp_and_checksums(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(256, 4, true, write_kernel(&k), NULL, NULL);
    assert_int_equal(vm_load(v), 0);
    uint64_t rsdp_a = scan_rsdp(v);
    assert_int_equal(rsdp_a, zero_page(v)->acpi_rsdp_addr);
    const uint8_t *rsdp = guest_mem_ptr(&v->m.mem, rsdp_a, 36);
    assert_int_equal(rsdp[15], 2);
    assert_int_equal(rd32(rsdp + 20), 36);
    assert_int_equal(acpi_checksum(rsdp, 36), 0);
    const uint8_t *fadt = find_table(v, "FACP");
    assert_non_null(fadt);
    const uint8_t *dsdt = acpi_table(v, rd64(fadt + 140), "DSDT");
    assert_int_equal(rd32(fadt + 40), rd64(fadt + 140));
    const uint8_t *facs = guest_mem_ptr(&v->m.mem, rd64(fadt + 132), 64);
    assert_memory_equal(facs, "FACS", 4);
    assert_int_equal(rd64(fadt + 132) % 64, 0);
    assert_int_equal(rd32(fadt + 36), 0); /* only X_FIRMWARE_CTRL, as ACPI 6 asks */
    /* \_S5_ with SLP_TYPa 5 */
    static const uint8_t s5[] = {0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05};
    assert_non_null(memmem(dsdt + 36, rd32(dsdt + 4) - 36, s5, sizeof(s5)));
    assert_non_null(find_table(v, "APIC"));
    vm_free(v);
}

static void test_acpi_fadt_fields(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(256, 1, false, write_kernel(&k), NULL, NULL);
    assert_int_equal(vm_load(v), 0);
    const uint8_t *f = find_table(v, "FACP");
    assert_non_null(f);
    assert_int_equal(rd32(f + 4), 276);
    assert_int_equal(f[8], 6);                 /* revision */
    assert_int_equal(rd16(f + 46), 9);         /* SCI_INT */
    assert_int_equal(rd32(f + 48), 0);         /* SMI_CMD: ACPI always on */
    assert_int_equal(rd32(f + 56), 0x600);     /* PM1a_EVT_BLK */
    assert_int_equal(rd32(f + 64), 0x604);     /* PM1a_CNT_BLK */
    assert_int_equal(rd32(f + 76), 0x608);     /* PM_TMR_BLK */
    assert_int_equal(f[88], 4);
    assert_int_equal(f[89], 2);
    assert_int_equal(f[91], 4);
    uint32_t flags = rd32(f + 112);
    assert_true(flags & (1u << 8));            /* TMR_VAL_EXT */
    assert_true(flags & (1u << 10));           /* RESET_REG_SUP */
    assert_false(flags & (1u << 20));          /* not HW_REDUCED_ACPI */
    uint16_t boot_arch = rd16(f + 109);
    assert_true(boot_arch & 2);                /* 8042 */
    assert_false(boot_arch & 4);               /* VGA present */
    assert_true(boot_arch & 8);                /* no APIC here: MSI not supported */
    /* RESET_REG: SystemIO byte at 0x60C, value 1 */
    assert_int_equal(f[116], 1);
    assert_int_equal(f[117], 8);
    assert_int_equal(rd64(f + 120), 0x60C);
    assert_int_equal(f[128], 1);
    /* X_ blocks agree with the legacy fields */
    assert_int_equal(f[148], 1);
    assert_int_equal(f[149], 32);
    assert_int_equal(rd64(f + 152), 0x600);
    assert_int_equal(f[172], 1);
    assert_int_equal(f[173], 16);
    assert_int_equal(rd64(f + 176), 0x604);
    assert_int_equal(f[208], 1);
    assert_int_equal(f[209], 32);
    assert_int_equal(rd64(f + 212), 0x608);
    /* no APIC: no MADT, and no MP table */
    assert_null(find_table(v, "APIC"));
    assert_memory_not_equal(guest_mem_ptr(&v->m.mem, MPTABLE_FLOAT_ADDR, 4), "_MP_", 4);
    vm_free(v);
}

static void test_acpi_madt(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(256, 3, true, write_kernel(&k), NULL, NULL);
    assert_int_equal(vm_load(v), 0);
    const uint8_t *t = find_table(v, "APIC");
    assert_non_null(t);
    assert_int_equal(rd32(t + 36), 0xFEE00000);
    assert_int_equal(rd32(t + 40) & 1, 1);     /* PCAT_COMPAT */
    uint32_t len = rd32(t + 4);
    unsigned lapics = 0, ioapics = 0, overrides = 0;
    bool sci_level_high = false, irq0_to_gsi2 = false;
    for (uint32_t off = 44; off < len;) {
        const uint8_t *e = t + off;
        assert_true(e[1] >= 2 && off + e[1] <= len);
        if (e[0] == 0) {
            assert_int_equal(e[3], lapics);    /* APIC IDs 0..n-1 */
            assert_int_equal(rd32(e + 4) & 1, 1);
            lapics++;
        } else if (e[0] == 1) {
            assert_int_equal(e[2], 3);         /* IOAPIC id = ncpus */
            assert_int_equal(rd32(e + 4), 0xFEC00000);
            assert_int_equal(rd32(e + 8), 0);
            ioapics++;
        } else if (e[0] == 2) {
            overrides++;
            if (e[3] == 0 && rd32(e + 4) == 2) irq0_to_gsi2 = true;
            if (e[3] == 9 && rd32(e + 4) == 9 && rd16(e + 8) == 0xD) sci_level_high = true;
        }
        off += e[1];
    }
    assert_int_equal(lapics, 3);
    assert_int_equal(ioapics, 1);
    assert_int_equal(overrides, 2);
    assert_true(irq0_to_gsi2);
    assert_true(sci_level_high);
    vm_free(v);
}

static void test_acpi_dsdt_pci_host_bridge(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(256, 2, true, write_kernel(&k), NULL, NULL);
    vm_add_pci_devices(v);
    assert_int_equal(vm_load(v), 0);
    const uint8_t *fadt = find_table(v, "FACP");
    const uint8_t *dsdt = acpi_table(v, rd64(fadt + 140), "DSDT");
    size_t len = rd32(dsdt + 4) - 36;
    const uint8_t *aml = dsdt + 36;
    /* Scope (\_SB) { Device (PCI0) { Name (_HID, EisaId ("PNP0A03")) ... */
    static const uint8_t scope[] = {'\\', '_', 'S', 'B', '_'};
    static const uint8_t dev[] = {'P', 'C', 'I', '0', 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0A, 0x03};
    assert_non_null(memmem(aml, len, scope, sizeof(scope)));
    const uint8_t *d = memmem(aml, len, dev, sizeof(dev));
    assert_non_null(d);
    assert_int_equal(d[-4], 0x5B); /* ExtOpPrefix DeviceOp PkgLength(2 bytes) "PCI0" */
    assert_int_equal(d[-3], 0x82);
    assert_int_equal(d[-2] & 0xC0, 0x40);
    assert_int_equal((d[-2] & 0x0F) | d[-1] << 4, (aml + len) - (d - 2)); /* the device runs to the table's end */
    /* _PRT: Package (2) { Package (4) { 0x0003FFFF, Zero, Zero, 10 }, Package (4) { 0x0005FFFF, Zero, Zero, 11 } } */
    static const uint8_t prt[] = {0x08, '_', 'P', 'R', 'T', 0x12};
    const uint8_t *p = memmem(aml, len, prt, sizeof(prt));
    assert_non_null(p);
    static const uint8_t e0[] = {0x12, 0x0B, 0x04, 0x0C, 0xFF, 0xFF, 0x03, 0x00, 0x00, 0x00, 0x0A, 0x0A};
    static const uint8_t e1[] = {0x12, 0x0B, 0x04, 0x0C, 0xFF, 0xFF, 0x05, 0x00, 0x00, 0x00, 0x0A, 0x0B};
    assert_int_equal(p[7], 2); /* NumElements after a 1-byte PkgLength */
    assert_memory_equal(p + 8, e0, sizeof(e0));
    assert_memory_equal(p + 8 + sizeof(e0), e1, sizeof(e1));
    /* _CRS: the 32-bit MMIO window, from the end of RAM, covers devices/pci.c's BAR range and
     * where SeaBIOS puts BARs (2 GiB up with this little RAM) */
    uint32_t ram_end = (uint32_t)v->m.mem.size;
    assert_true(ram_end <= 0x80000000u);
    const uint8_t win[] = {0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0, 0, 0, 0, (uint8_t)ram_end, (uint8_t)(ram_end >> 8),
                           (uint8_t)(ram_end >> 16), (uint8_t)(ram_end >> 24), 0xFF, 0xFF, 0xBF, 0xFE};
    assert_non_null(memmem(aml, len, win, sizeof(win)));
    assert_true(PCI_MMIO_BASE >= 0xC0000000ULL && PCI_MMIO_END - 1 <= 0xFEBFFFFFULL);
    vm_free(v);
}

/* With the pvpanic device, the DSDT has \_SB.PEVT: _HID "QEMU0001" (a String, which Linux's
 * pvpanic-mmio matches) and an IO _CRS for port 0x505. */
static void add_pvpanic(struct vm *v)
{
    bus_init(&v->m.pio);
    char err[128];
    assert_int_equal(pvpanic_device.init(&v->m, err, sizeof(err)), 0);
}

static void drop_pvpanic(struct vm *v)
{
    pvpanic_device.destroy(&v->m);
    bus_free(&v->m.pio);
}

static void test_acpi_dsdt_pvpanic(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(256, 1, false, write_kernel(&k), NULL, NULL);
    const uint8_t hid[] = {0x08, '_', 'H', 'I', 'D', 0x0D, 'Q', 'E', 'M', 'U', '0', '0', '0', '1', 0};
    const uint8_t crs[] = {0x08, '_', 'C', 'R', 'S', 0x11, 0x0D, 0x0A, 0x0A, /* Buffer (10) */
                           0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79, 0x00};
    assert_int_equal(vm_load(v), 0);
    const uint8_t *fadt = find_table(v, "FACP");
    const uint8_t *dsdt = acpi_table(v, rd64(fadt + 140), "DSDT");
    assert_null(memmem(dsdt + 36, rd32(dsdt + 4) - 36, "PEVT", 4)); /* no device, no description */
    add_pvpanic(v);
    assert_int_equal(vm_load(v), 0);
    fadt = find_table(v, "FACP");
    dsdt = acpi_table(v, rd64(fadt + 140), "DSDT");
    size_t len = rd32(dsdt + 4) - 36;
    const uint8_t *dev = memmem(dsdt + 36, len, "PEVT", 4);
    assert_non_null(dev);
    assert_non_null(memmem(dev, len - (size_t)(dev - dsdt - 36), hid, sizeof(hid)));
    assert_non_null(memmem(dev, len - (size_t)(dev - dsdt - 36), crs, sizeof(crs)));
    drop_pvpanic(v);
    vm_free(v);
}

/* Disassemble our tables with ACPICA's iasl (Debian acpica-tools), the reference AML parser. */
static void test_acpi_tables_disassemble_with_iasl(void **state)
{
    (void)state;
    if (system("command -v iasl >/dev/null 2>&1") != 0) {
        print_message("[  SKIP    ] iasl not installed (Debian package acpica-tools)\n");
        skip();
    }
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(256, 2, true, write_kernel(&k), NULL, NULL);
    vm_add_pci_devices(v);
    add_pvpanic(v);
    assert_int_equal(vm_load(v), 0);
    const uint8_t *fadt = find_table(v, "FACP");
    const uint8_t *tables[] = {fadt, acpi_table(v, rd64(fadt + 140), "DSDT"), find_table(v, "APIC")};
    static const char *names[] = {"facp", "dsdt", "apic"};
    for (unsigned i = 0; i < 3; i++) {
        char path[128], cmd[512];
        snprintf(path, sizeof(path), "%s/%s.dat", tmpdir, names[i]);
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(tables[i], 1, rd32(tables[i] + 4), f), rd32(tables[i] + 4));
        fclose(f);
        snprintf(cmd, sizeof(cmd), "cd '%s' && iasl -d %s.dat >%s.log 2>&1", tmpdir, names[i], names[i]);
        assert_int_equal(system(cmd), 0);
        /* iasl reports bad checksums, unknown opcodes and AML parse errors in the listing */
        snprintf(cmd, sizeof(cmd), "grep -qi 'error\\|invalid\\|incorrect' '%s/%s.dsl' '%s/%s.log'", tmpdir, names[i],
                 tmpdir, names[i]);
        if (system(cmd) == 0) fail_msg("iasl found a problem in %s (see %s)", names[i], tmpdir);
    }
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "grep -q 'EisaId (\"PNP0A03\")' '%s/dsdt.dsl' && grep -q 'Name (_S5, Package (0x04)' '%s/dsdt.dsl' "
             "&& grep -q '0x0005FFFF' '%s/dsdt.dsl'", tmpdir, tmpdir, tmpdir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "grep -q 'Name (_HID, \"QEMU0001\")' '%s/dsdt.dsl' && "
             "grep -q 'IO (Decode16,' '%s/dsdt.dsl' && grep -q '0x0505,' '%s/dsdt.dsl'", tmpdir, tmpdir, tmpdir);
    if (system(cmd) != 0) fail_msg("iasl's listing lacks pvpanic's _HID or IO _CRS (see %s/dsdt.dsl)", tmpdir);
    drop_pvpanic(v);
    vm_free(v);
}

/* A 4 KiB multiboot image with the a.out kludge: the header at offset 0 (loaded at load_addr),
 * NOPs after it, entry at +0x20, bss to load_addr + 0x3000. */
static char *write_multiboot(uint32_t load_addr)
{
    static uint8_t mb[4096];
    memset(mb, 0x90, sizeof(mb));
    const uint32_t flags = MULTIBOOT_AOUT_KLUDGE | MULTIBOOT_PAGE_ALIGN | MULTIBOOT_MEMORY_INFO;
    const uint32_t h[8] = {MULTIBOOT_HEADER_MAGIC, flags, (uint32_t)-(MULTIBOOT_HEADER_MAGIC + flags), load_addr,
                           load_addr, 0, load_addr + 0x3000, load_addr + 0x20};
    memcpy(mb, h, sizeof(h));
    return write_file("multiboot.bin", mb, sizeof(mb));
}

/* A multiboot kernel: loaded at its address with the bss zeroed, the initrd as its one module,
 * the info (flags, memory, mmap = e820, "KERNEL CMDLINE", loader name), and the entry state the
 * spec asks for: flat 32-bit protected mode, paging off, EAX magic, EBX the info. */
static void test_multiboot_load(void **state)
{
    (void)state;
    char *initrd = write_file("module", "MODULE-BYTES", 12);
    struct vm *v = vm_new(64, 1, false, write_multiboot(0x200000), initrd, "hello mb");
    memset(guest_mem_ptr(&v->m.mem, 0x201000, 0x2000), 0xAA, 0x2000); /* the bss must be zeroed */
    assert_int_equal(vm_load(v), 0);
    assert_true(v->m.multiboot);
    const uint8_t *k = guest_mem_ptr(&v->m.mem, 0x200000, 0x3000);
    assert_int_equal(rd32(k), MULTIBOOT_HEADER_MAGIC);
    assert_int_equal(k[0x20], 0x90);
    assert_int_equal(k[0x1000], 0);
    assert_int_equal(k[0x2FFF], 0);
    struct cpu_state s;
    boot_cpu_state(&v->m, 0, &s);
    assert_int_equal(s.rip, 0x200020);
    assert_int_equal(s.gpr[GPR_RAX], 0x2BADB002);
    assert_int_equal(s.gpr[GPR_RBX], 0x9000);
    assert_int_equal(s.cr0 & (CR0_PE | CR0_PG), CR0_PE);
    assert_int_equal(s.efer & EFER_LME, 0);
    assert_int_equal(s.rflags & 0x200, 0);
    assert_int_equal(s.seg[SEG_CS].db, 1);
    assert_int_equal(s.seg[SEG_CS].limit, 0xFFFFFFFF);
    const uint8_t *mbi = guest_mem_ptr(&v->m.mem, 0x9000, 88);
    assert_int_equal(rd32(mbi), 0x24D);
    assert_int_equal(rd32(mbi + 4), 639);
    assert_int_equal(rd32(mbi + 8), 63 * 1024);
    char *cmd = (char *)guest_mem_ptr(&v->m.mem, rd32(mbi + 16), 64);
    char want[200];
    snprintf(want, sizeof(want), "%s hello mb", v->cfg.kernel);
    assert_string_equal(cmd, want);
    assert_int_equal(rd32(mbi + 20), 1);
    const uint8_t *mod = guest_mem_ptr(&v->m.mem, rd32(mbi + 24), 16);
    assert_int_equal(rd32(mod), 0x203000); /* page-aligned after the image's bss */
    assert_int_equal(rd32(mod + 4), 0x203000 + 12);
    assert_memory_equal(guest_mem_ptr(&v->m.mem, 0x203000, 12), "MODULE-BYTES", 12);
    assert_string_equal((char *)guest_mem_ptr(&v->m.mem, rd32(mod + 8), 8), initrd);
    /* mmap: the e820 map, each entry after its size */
    struct boot_e820_entry e820[16];
    int n = e820_build(&v->m.mem, e820, 16);
    assert_true(n > 0);
    assert_int_equal(rd32(mbi + 44), (uint32_t)n * 24);
    const uint8_t *mm = guest_mem_ptr(&v->m.mem, rd32(mbi + 48), (size_t)n * 24);
    for (int i = 0; i < n; i++) {
        assert_int_equal(rd32(mm + i * 24), 20);
        assert_int_equal(rd64(mm + i * 24 + 4), e820[i].addr);
        assert_int_equal(rd64(mm + i * 24 + 12), e820[i].size);
        assert_int_equal(rd32(mm + i * 24 + 20), e820[i].type);
    }
    assert_string_equal((char *)guest_mem_ptr(&v->m.mem, rd32(mbi + 64), 4), "vmd");
    vm_free(v);
}

/* Images below 1 MiB or past the end of RAM, and a module that does not fit, are refused. */
static void test_multiboot_placement_refused(void **state)
{
    (void)state;
    struct vm *v = vm_new(64, 1, false, write_multiboot(0x10000), NULL, NULL);
    assert_int_equal(vm_load(v), -ENOMEM);
    assert_non_null(strstr(v->err, "between 1 MiB and the end of low RAM"));
    vm_free(v);
    v = vm_new(64, 1, false, write_multiboot(0x3FFF000), NULL, NULL);
    assert_int_equal(vm_load(v), -ENOMEM);
    vm_free(v);
    static uint8_t big[1 << 20];
    v = vm_new(16, 1, false, write_multiboot(0xF00000), write_file("big", big, sizeof(big)), NULL);
    assert_int_equal(vm_load(v), -ENOMEM);
    assert_non_null(strstr(v->err, "does not fit in RAM after the multiboot image"));
    vm_free(v);
}

static void test_aml_pkglength_encoding(void **state)
{
    (void)state;
    uint8_t buf[0x2000];
    struct aml a;
    /* 62 content bytes: 1-byte PkgLength 63 */
    aml_init(&a, buf, sizeof(buf));
    size_t t = aml_pkg_begin(&a);
    for (int i = 0; i < 62; i++) aml_byte(&a, (uint8_t)i);
    aml_pkg_end(&a, t);
    assert_int_equal(a.len, 63);
    assert_int_equal(buf[0], 63);
    assert_int_equal(buf[1], 0);
    assert_int_equal(buf[62], 61);
    /* 63 content bytes: 2-byte PkgLength 65 = 0x41 -> 0x41, 0x04 */
    aml_init(&a, buf, sizeof(buf));
    t = aml_pkg_begin(&a);
    for (int i = 0; i < 63; i++) aml_byte(&a, (uint8_t)i);
    aml_pkg_end(&a, t);
    assert_int_equal(a.len, 65);
    assert_int_equal(buf[0], 0x41);
    assert_int_equal(buf[1], 0x04);
    assert_int_equal(buf[2], 0);
    /* 0x1000 content bytes: 3-byte PkgLength 0x1003 -> 0x83, 0x00, 0x01 */
    aml_init(&a, buf, sizeof(buf));
    t = aml_pkg_begin(&a);
    for (int i = 0; i < 0x1000; i++) aml_byte(&a, (uint8_t)i);
    aml_pkg_end(&a, t);
    assert_int_equal(a.len, 0x1003);
    assert_int_equal(buf[0], 0x83);
    assert_int_equal(buf[1], 0x00);
    assert_int_equal(buf[2], 0x01);
    assert_int_equal(buf[3], 0);
    /* integers take the shortest form */
    aml_init(&a, buf, sizeof(buf));
    aml_int(&a, 0);
    aml_int(&a, 1);
    aml_int(&a, 0xFF);
    aml_int(&a, 0x100);
    aml_int(&a, 0x10000);
    aml_int(&a, 0x100000000ULL);
    static const uint8_t ints[] = {0x00, 0x01, 0x0A, 0xFF, 0x0B, 0x00, 0x01, 0x0C, 0x00, 0x00, 0x01, 0x00,
                                   0x0E, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
    assert_int_equal(a.len, sizeof(ints));
    assert_memory_equal(buf, ints, sizeof(ints));
    /* overflow is sticky, never writes past the buffer */
    aml_init(&a, buf, 3);
    aml_int(&a, 0x10000);
    assert_true(a.overflow);
}

/* ---- MP table ---- */

static void test_mptable(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(256, 4, true, write_kernel(&k), NULL, NULL);
    vm_add_pci_devices(v);
    assert_int_equal(vm_load(v), 0);
    /* Linux scans the first KiB of the EBDA (segment at 0x40E) for "_MP_" on 16-byte boundaries */
    uint16_t seg;
    assert_int_equal(guest_mem_read(&v->m.mem, 0x40E, &seg, 2), 0);
    const uint8_t *fp = NULL;
    for (uint64_t a = (uint64_t)seg << 4; a < ((uint64_t)seg << 4) + 1024; a += 16) {
        const uint8_t *p = guest_mem_ptr(&v->m.mem, a, 16);
        if (memcmp(p, "_MP_", 4) == 0 && acpi_checksum(p, 16) == 0) {
            fp = p;
            break;
        }
    }
    assert_non_null(fp);
    assert_int_equal(fp[8], 1);
    assert_int_equal(fp[9], 4);
    assert_int_equal(fp[11], 0); /* not a default configuration */
    uint32_t cfg_a = rd32(fp + 4);
    const uint8_t *cfg = guest_mem_ptr(&v->m.mem, cfg_a, 44);
    assert_memory_equal(cfg, "PCMP", 4);
    uint16_t len = rd16(cfg + 4), count = rd16(cfg + 34);
    cfg = guest_mem_ptr(&v->m.mem, cfg_a, len);
    assert_int_equal(acpi_checksum(cfg, len), 0);
    assert_int_equal(rd32(cfg + 36), 0xFEE00000);
    unsigned cpus = 0, bsp = 0, ioapic = 0, ioints = 0, lints = 0, buses = 0, pci_ints = 0;
    const uint8_t *e = cfg + 44;
    for (unsigned i = 0; i < count; i++) {
        assert_true(e < cfg + len);
        switch (e[0]) {
        case 0:
            assert_int_equal(e[1], cpus);
            if (e[3] & 2) bsp++;
            cpus++;
            e += 20;
            continue;
        case 1: buses++; break;
        case 2:
            assert_int_equal(e[1], 4);
            assert_int_equal(rd32(e + 4), 0xFEC00000);
            ioapic++;
            break;
        case 3:
            if (e[4] == 0) { /* PCI bus: slot 3 INTA -> pin 10, slot 5 INTA -> pin 11, level low */
                assert_true(e[5] == (3 << 2) || e[5] == (5 << 2));
                assert_int_equal(e[7], e[5] == (3 << 2) ? 10 : 11);
                assert_int_equal(rd16(e + 2), 0x000F);
                pci_ints++;
            } else if (e[5] == 0) {
                assert_int_equal(e[7], 2); /* IRQ0 -> pin 2 */
            } else {
                assert_int_equal(e[7], e[5]);
                assert_true(e[5] != 10 && e[5] != 11); /* pins taken by PCI have no ISA entry */
            }
            ioints++;
            break;
        case 4: lints++; break;
        default: fail_msg("unknown MP entry type %u", e[0]);
        }
        e += 8;
    }
    assert_ptr_equal(e, cfg + len);
    assert_int_equal(cpus, 4);
    assert_int_equal(bsp, 1);
    assert_int_equal(buses, 2);
    assert_int_equal(ioapic, 1);
    assert_int_equal(ioints, 13 + 2);
    assert_int_equal(pci_ints, 2);
    assert_int_equal(lints, 2);
    vm_free(v);
}

static void test_max_cpus_fit(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm *v = vm_new(256, MACHINE_MAX_CPUS, true, write_kernel(&k), NULL, NULL);
    assert_int_equal(vm_load(v), 0);
    assert_non_null(find_table(v, "APIC"));
    vm_free(v);
}

/* ---- the whole machine: real devices, then the loader ---- */

/* machine_create with the emu backend runs devices_init_all then boot_linux_load: the
 * DSDT's _PRT and the PCI devices the device registry created must agree. */
static void test_machine_create_tables_match_devices(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm_config cfg;
    vm_config_init(&cfg);
    cfg.kernel = write_kernel(&k);
    cfg.cmdline = strdup("console=ttyS0");
    struct machine *m = calloc(1, sizeof(*m));
    char err[256] = "";
    int r = machine_create(m, &cfg, &emu_backend_ops, err, sizeof(err));
    if (r < 0) fail_msg("machine_create: %s", err);
    assert_int_equal(m->kernel_entry, 0x100200);
    const struct boot_params *bp = guest_mem_ptr(&m->mem, m->boot_params_gpa, sizeof(*bp));
    assert_int_equal(bp->acpi_rsdp_addr, ACPI_RSDP_ADDR);
    /* find the DSDT through the RSDP */
    const uint8_t *rsdp = guest_mem_ptr(&m->mem, bp->acpi_rsdp_addr, 36);
    const uint8_t *xsdt = guest_mem_ptr(&m->mem, rd64(rsdp + 24), 44);
    const uint8_t *fadt = guest_mem_ptr(&m->mem, rd64(xsdt + 36), 276);
    assert_memory_equal(fadt, "FACP", 4);
    const uint8_t *dsdt = guest_mem_ptr(&m->mem, rd64(fadt + 140), 36);
    uint32_t dlen = rd32(dsdt + 4);
    dsdt = guest_mem_ptr(&m->mem, rd64(fadt + 140), dlen);
    assert_int_equal(acpi_checksum(dsdt, dlen), 0);
    unsigned devices = 0;
    for (unsigned slot = 1; m->pci && slot < PCI_MAX_SLOTS; slot++) {
        const struct pci_device *d = m->pci->slots[slot];
        if (!d || !d->cfg[0x3D]) continue;
        devices++;
        uint8_t entry[] = {0x12, 0x0B, 0x04, 0x0C, 0xFF, 0xFF, (uint8_t)slot, 0x00, 0x00, 0x00, 0x0A, (uint8_t)d->irq};
        if (!memmem(dsdt + 36, dlen - 36, entry, sizeof(entry)))
            fail_msg("no _PRT entry for %s in slot %u (IRQ %u)", d->name, slot, d->irq);
    }
    print_message("[  INFO    ] %u PCI device(s) with INTx routed in the _PRT\n", devices);
    machine_destroy(m);
    free(m);
    vm_config_free(&cfg);
}

/* The contents of fw_cfg file `name`, read through the ports as firmware does; *len gets its size. */
static uint8_t *fw_cfg_file(struct machine *m, const char *name, uint32_t *len)
{
    uint64_t v = FW_CFG_FILE_DIR;
    machine_pio(m, FW_CFG_PORT_SEL, &v, 2, true);
    uint8_t hdr[4], e[64];
    for (int i = 0; i < 4; i++) machine_pio(m, FW_CFG_PORT_DATA, &v, 1, false), hdr[i] = (uint8_t)v;
    uint32_t n = (uint32_t)hdr[0] << 24 | hdr[1] << 16 | hdr[2] << 8 | hdr[3];
    for (uint32_t f = 0; f < n; f++) {
        for (int i = 0; i < 64; i++) machine_pio(m, FW_CFG_PORT_DATA, &v, 1, false), e[i] = (uint8_t)v;
        if (strcmp((char *)e + 8, name)) continue;
        *len = (uint32_t)e[0] << 24 | e[1] << 16 | e[2] << 8 | e[3];
        uint8_t *data = malloc(*len + 1);
        assert_non_null(data);
        v = (uint64_t)(e[4] << 8 | e[5]);
        machine_pio(m, FW_CFG_PORT_SEL, &v, 2, true);
        for (uint32_t i = 0; i < *len; i++) machine_pio(m, FW_CFG_PORT_DATA, &v, 1, false), data[i] = (uint8_t)v;
        return data;
    }
    fail_msg("fw_cfg has no file %s", name);
    return NULL;
}

/* Firmware's view: the tables vmd gives SeaBIOS through fw_cfg's table loader, run the way the
 * firmware runs it with the RSDP placed at 0xE0000 and the tables at 0xE0040, come out byte for
 * byte as the tables a directly booted kernel finds there. */
static void test_acpi_table_loader_matches_direct_boot(void **state)
{
    (void)state;
    struct fake_kernel k = default_kernel();
    struct vm_config cfg;
    vm_config_init(&cfg);
    cfg.kernel = write_kernel(&k);
    cfg.cmdline = strdup("console=ttyS0");
    struct machine *m = calloc(1, sizeof(*m));
    char err[256] = "";
    if (machine_create(m, &cfg, &emu_backend_ops, err, sizeof(err)) < 0) fail_msg("machine_create: %s", err);
    assert_non_null(fw_cfg_of(m));
    assert_int_equal(acpi_build_fw_cfg(m, fw_cfg_of(m)), 0);
    uint32_t nloader, nrsdp, ntables;
    uint8_t *loader = fw_cfg_file(m, "etc/table-loader", &nloader);
    uint8_t *rsdp = fw_cfg_file(m, "etc/acpi/rsdp", &nrsdp);
    uint8_t *tables = fw_cfg_file(m, "etc/acpi/tables", &ntables);
    assert_int_equal(nloader % 128, 0);
    assert_int_equal(nrsdp, 36);
    const uint64_t rsdp_at = 0xE0000, tables_at = 0xE0040, span = tables_at - rsdp_at + ntables;
    assert_true(tables_at + ntables <= ACPI_AREA_END);
    uint8_t *img = calloc(1, span);
    assert_non_null(img);
    bool allocated[2] = {false, false};
    for (uint32_t off = 0; off < nloader; off += 128) {
        const uint8_t *e = loader + off;
        uint32_t cmd = rd32(e);
        const char *f1 = (const char *)e + 4, *f2 = (const char *)e + 60;
        uint8_t *blob = !strcmp(f1, "etc/acpi/rsdp") ? img : !strcmp(f1, "etc/acpi/tables") ? img + (tables_at - rsdp_at) : NULL;
        if (!blob) fail_msg("loader command %u names unknown file %s", cmd, f1);
        if (cmd == 1) { /* ALLOCATE: copy the file where it goes */
            bool is_rsdp = blob == img;
            assert_int_equal(e[64], is_rsdp ? 2 : 1); /* RSDP in the F segment, tables high */
            assert_int_equal((is_rsdp ? rsdp_at : tables_at) % rd32(e + 60), 0);
            memcpy(blob, is_rsdp ? rsdp : tables, is_rsdp ? nrsdp : ntables);
            allocated[!is_rsdp] = true;
        } else if (cmd == 2) { /* ADD_POINTER into the tables */
            assert_string_equal(f2, "etc/acpi/tables");
            assert_true(allocated[0] && allocated[1]);
            uint32_t at = rd32(e + 116);
            uint8_t size = e[120];
            assert_true(size == 4 || size == 8);
            uint64_t val = size == 4 ? rd32(blob + at) : rd64(blob + at);
            val += tables_at;
            memcpy(blob + at, &val, size);
        } else if (cmd == 3) { /* ADD_CHECKSUM */
            uint32_t at = rd32(e + 60), start = rd32(e + 64), len = rd32(e + 68);
            blob[at] = (uint8_t)(blob[at] - acpi_checksum(blob + start, len));
        } else {
            fail_msg("unexpected loader command %u", cmd);
        }
    }
    const uint8_t *ram = guest_mem_ptr(&m->mem, rsdp_at, span);
    assert_non_null(ram);
    assert_memory_equal(img, ram, span);
    free(img);
    free(loader);
    free(rsdp);
    free(tables);
    machine_destroy(m);
    free(m);
    vm_config_free(&cfg);
}

/* ---- a real kernel, when the assets helper has fetched one ---- */

static void test_real_debian_kernel(void **state)
{
    (void)state;
    const char *path = getenv("VMD_TEST_KERNEL");
    if (!path) path = ".cache/guest/vmlinuz";
    if (access(path, R_OK) != 0) {
        print_message("[  SKIP    ] no guest kernel at %s (run `make assets`)\n", path);
        skip();
    }
    struct vm *v = vm_new(256, 1, false, strdup(path), NULL, "console=ttyS0");
    if (vm_load(v) != 0) fail_msg("%s", v->err);
    const struct boot_params *bp = zero_page(v);
    assert_true(bp->hdr.version >= 0x020C);
    assert_true(bp->hdr.xloadflags & XLF_KERNEL_64);
    assert_int_equal(v->m.kernel_entry, 0x100200);
    vm_free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_kernel_file),
        cmocka_unit_test(test_kernel_is_directory),
        cmocka_unit_test(test_text_file_is_not_bzimage),
        cmocka_unit_test(test_elf_vmlinux_named),
        cmocka_unit_test(test_short_and_empty_files),
        cmocka_unit_test(test_bad_magic_and_bootflag),
        cmocka_unit_test(test_old_protocols_rejected),
        cmocka_unit_test(test_truncated_kernel_rejected),
        cmocka_unit_test(test_kernel_too_big_for_ram),
        cmocka_unit_test(test_bzimage_parse_fields),
        cmocka_unit_test(test_bzimage_parse_garbage_headers),
        cmocka_unit_test(test_load_places_kernel_and_zero_page),
        cmocka_unit_test(test_no_kernel_given),
        cmocka_unit_test(test_cmdline_too_long),
        cmocka_unit_test(test_initrd_placed_high_and_aligned),
        cmocka_unit_test(test_initrd_errors),
        cmocka_unit_test(test_e820_256m),
        cmocka_unit_test(test_e820_above_4g),
        cmocka_unit_test(test_zero_page_e820_matches),
        cmocka_unit_test(test_page_tables_identity_map_4g),
        cmocka_unit_test(test_gdt_descriptors),
        cmocka_unit_test(test_bsp_state),
        cmocka_unit_test(test_32bit_boot_protocol),
        cmocka_unit_test(test_boot_protocol_64_forced),
        cmocka_unit_test(test_multiboot_load),
        cmocka_unit_test(test_multiboot_placement_refused),
        cmocka_unit_test(test_ap_reset_state),
        cmocka_unit_test(test_acpi_rsdp_and_checksums),
        cmocka_unit_test(test_acpi_fadt_fields),
        cmocka_unit_test(test_acpi_madt),
        cmocka_unit_test(test_acpi_dsdt_pci_host_bridge),
        cmocka_unit_test(test_aml_pkglength_encoding),
        cmocka_unit_test(test_acpi_dsdt_pvpanic),
        cmocka_unit_test(test_acpi_tables_disassemble_with_iasl),
        cmocka_unit_test(test_mptable),
        cmocka_unit_test(test_max_cpus_fit),
        cmocka_unit_test(test_machine_create_tables_match_devices),
        cmocka_unit_test(test_acpi_table_loader_matches_direct_boot),
        cmocka_unit_test(test_real_debian_kernel),
    };
    return cmocka_run_group_tests_name("boot", tests, setup_tmpdir, remove_tmpdir);
}
