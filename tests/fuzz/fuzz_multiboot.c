/* fuzz_multiboot: libFuzzer target for multiboot v1 loading (vmm/boot/multiboot.c and
 * multiboot_load.c): multiboot_parse on the raw bytes, then boot_linux_load with them as the
 * kernel file (the loader takes the multiboot path when the bytes have a multiboot header and no
 * bzImage header) and, optionally, an initrd as the module, into a 16 MiB machine. The loader must
 * load or refuse with a message, never crash or write outside guest RAM.
 *
 * Input: byte 0 flags (bit 0: give a module, bit 1: APIC platform), bytes 1-2 the module's length,
 * the module, then the kernel image. With FUZZ_SEED_DIR set, valid a.out-kludge and ELF seeds are
 * written there.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_machine.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/multiboot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_RAM (16u << 20)

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static void write_seeds(const char *dir)
{
    /* flags 1, a 4-byte module, then a 512-byte a.out-kludge image at 1 MiB */
    uint8_t a[3 + 4 + 512];
    memset(a, 0x90, sizeof(a));
    a[0] = 1, a[1] = 4, a[2] = 0;
    memcpy(a + 3, "MOD!", 4);
    uint8_t *k = a + 7;
    const uint32_t flags = MULTIBOOT_AOUT_KLUDGE | MULTIBOOT_MEMORY_INFO;
    const uint32_t h[8] = {MULTIBOOT_HEADER_MAGIC, flags, (uint32_t)-(MULTIBOOT_HEADER_MAGIC + flags), 0x100000,
                           0x100000, 0x100200, 0x101000, 0x100020};
    memcpy(k, h, sizeof(h));
    fuzz_write_seed(dir, "seed-multiboot-aout", a, sizeof(a));

    /* no module; an ELF32 image with one PT_LOAD at 1 MiB and the header at 0x80 */
    uint8_t e[3 + 512];
    memset(e, 0, sizeof(e));
    k = e + 3;
    memcpy(k, "\x7f" "ELF", 4);
    k[4] = 1, k[5] = 1, k[6] = 1;
    put16(k + 16, 2);
    put16(k + 18, 3);
    put32(k + 24, 0x100090);
    put32(k + 28, 52);
    put16(k + 42, 32);
    put16(k + 44, 1);
    const uint32_t ph[8] = {1, 0x80, 0x100000, 0x100000, 0x180, 0x1000, 7, 0x10};
    memcpy(k + 52, ph, sizeof(ph));
    const uint32_t mh[3] = {MULTIBOOT_HEADER_MAGIC, MULTIBOOT_MEMORY_INFO, (uint32_t)-(MULTIBOOT_HEADER_MAGIC + MULTIBOOT_MEMORY_INFO)};
    memcpy(k + 0x80, mh, sizeof(mh));
    fuzz_write_seed(dir, "seed-multiboot-elf", e, sizeof(e));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("FUZZ_SEED_DIR");
    if (dir && *dir) write_seeds(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > (1u << 20)) return 0;
    struct fuzz_input in = {data, size};
    unsigned flags = (unsigned)fuzz_take(&in, 1);
    size_t mlen = (size_t)fuzz_take(&in, 2);
    if (mlen > in.len) mlen = in.len;
    const uint8_t *module = in.p;
    const uint8_t *kernel = in.p + mlen;
    size_t klen = in.len - mlen;

    struct multiboot_image mb;
    char why[256];
    if (multiboot_parse(kernel, klen, &mb, why, sizeof(why)) == 0) {
        if (mb.nsegments == 0 || mb.nsegments > MULTIBOOT_MAX_SEGMENTS || mb.high > (1ULL << 32)) abort();
        for (unsigned i = 0; i < mb.nsegments; i++)
            if (mb.seg[i].file_offset + mb.seg[i].file_size > klen || mb.seg[i].file_size > mb.seg[i].mem_size) abort();
    } else if (!why[0]) {
        abort(); /* refused without a reason */
    }

    struct fuzz_machine fm;
    if (fuzz_machine_init(&fm, FUZZ_RAM, true) < 0) abort();
    fm.m.apic = flags & 2;
    char kpath[64], mpath[64];
    int kfd = fuzz_memfile(kernel, klen, kpath, sizeof(kpath));
    int mfd = (flags & 1) ? fuzz_memfile(module, mlen, mpath, sizeof(mpath)) : -1;
    if (kfd < 0) abort();
    fm.cfg.kernel = strdup(kpath);
    if (mfd >= 0) fm.cfg.initrd = strdup(mpath);
    fm.cfg.cmdline = strdup("console=ttyS0");
    char err[512] = "";
    int r = boot_linux_load(&fm.m, err, sizeof(err));
    if (r < 0 && !err[0]) abort();
    if (r == 0) {
        struct cpu_state s;
        boot_cpu_state(&fm.m, 0, &s);
    }
    close(kfd);
    if (mfd >= 0) close(mfd);
    fuzz_machine_free(&fm);
    return 0;
}
