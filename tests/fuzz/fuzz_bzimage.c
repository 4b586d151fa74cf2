/* fuzz_bzimage: libFuzzer target for the direct Linux boot loader (vmm/boot/): bzimage_parse
 * on the raw bytes, then boot_linux_load with the kernel and initrd given as files holding
 * fuzz bytes, into a 16 MiB machine with every device (so the ACPI and MP tables describe a
 * real PCI bus). The loader must load or refuse with a message, never crash or write outside
 * guest RAM.
 *
 * Input: byte 0 flags (bit 0: give an initrd, bit 1: a long command line, bit 2: APIC
 * platform, bits 3-4: vCPU count - 1), bytes 1-2 the initrd length, the initrd, then the
 * kernel image. With FUZZ_SEED_DIR set, a valid synthetic bzImage seed is written there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_machine.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/bzimage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_RAM (16u << 20)

/* A small but valid bzImage: 4 setup sectors and 1 KiB of protected-mode "kernel". */
static void write_seed(const char *dir)
{
    size_t setup = 5 * 512, payload = 1024;
    uint8_t img[3 + 5 * 512 + 1024];
    memset(img, 0, sizeof(img));
    uint8_t *k = img + 3;
    struct setup_header h;
    memset(&h, 0, sizeof(h));
    h.setup_sects = 4;
    h.syssize = (uint32_t)(payload / 16);
    h.boot_flag = 0xAA55;
    h.jump = 0x6AEB;
    memcpy(&h.header, "HdrS", 4);
    h.version = 0x020F;
    h.loadflags = LOADED_HIGH;
    h.code32_start = 0x100000;
    h.initrd_addr_max = 0x7FFFFFFF;
    h.kernel_alignment = 0x200000;
    h.relocatable_kernel = 1;
    h.min_alignment = 21;
    h.xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
    h.cmdline_size = 2047;
    h.pref_address = 0x1000000;
    h.init_size = 4u << 20;
    memcpy(k + 0x1F1, &h, sizeof(h));
    for (size_t i = 0; i < payload; i++) k[setup + i] = (uint8_t)(i * 7);
    img[0] = 1; /* with an initrd of length 0 */
    fuzz_write_seed(dir, "seed-bzimage", img, sizeof(img));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("FUZZ_SEED_DIR");
    if (dir && *dir) write_seed(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > (4u << 20)) return 0;
    struct fuzz_input in = {data, size};
    unsigned flags = (unsigned)fuzz_take(&in, 1);
    size_t ilen = (size_t)fuzz_take(&in, 2);
    if (ilen > in.len) ilen = in.len;
    const uint8_t *initrd = in.p;
    const uint8_t *kernel = in.p + ilen;
    size_t klen = in.len - ilen;

    /* the pure parser, with the true size and with a claimed larger file */
    struct bzimage bz;
    char why[160];
    size_t head = klen < BZIMAGE_HEAD_BYTES ? klen : BZIMAGE_HEAD_BYTES;
    if (bzimage_parse(kernel, head, klen, &bz, why, sizeof(why)) == 0) (void)bzimage_footprint_end(&bz, 0x100000);
    if (bzimage_parse(kernel, head, (uint64_t)klen << 12, &bz, why, sizeof(why)) == 0)
        (void)bzimage_footprint_end(&bz, 0x100000);

    struct fuzz_machine fm;
    if (fuzz_machine_init(&fm, FUZZ_RAM, true) < 0) abort();
    fm.m.apic = flags & 4;
    fm.m.ncpus = 1 + ((flags >> 3) & 3);
    fm.cfg.cpus = fm.m.ncpus;
    char kpath[64], ipath[64];
    int kfd = fuzz_memfile(kernel, klen, kpath, sizeof(kpath));
    int ifd = (flags & 1) ? fuzz_memfile(initrd, ilen, ipath, sizeof(ipath)) : -1;
    if (kfd < 0) abort();
    fm.cfg.kernel = strdup(kpath);
    if (ifd >= 0) fm.cfg.initrd = strdup(ipath);
    if (flags & 2) {
        fm.cfg.cmdline = malloc(3000);
        if (fm.cfg.cmdline) {
            memset(fm.cfg.cmdline, 'x', 2999);
            fm.cfg.cmdline[2999] = '\0';
        }
    } else {
        fm.cfg.cmdline = strdup("console=ttyS0");
    }
    char err[512] = "";
    int r = boot_linux_load(&fm.m, err, sizeof(err));
    if (r < 0 && !err[0]) abort(); /* refused without a reason */
    if (r == 0) {
        for (unsigned i = 0; i < fm.m.ncpus; i++) {
            struct cpu_state s;
            boot_cpu_state(&fm.m, i, &s);
        }
    }
    close(kfd);
    if (ifd >= 0) close(ifd);
    fuzz_machine_free(&fm);
    return 0;
}
