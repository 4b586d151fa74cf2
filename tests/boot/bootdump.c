/* bootdump: runs vmd's boot_linux_load() on a scratch machine and writes the result as
 * files a QEMU `-machine pc` guest can be loaded with (see qemu-crosscheck.sh):
 *   low.bin    guest RAM 0-0xA0000 (zero page, GDT, page tables, command line, EBDA)
 *   bios.bin   0xE0000-0xFFFFF (ACPI + MP tables) with tramp.bin at 0xFF000 and a reset
 *              vector jumping to it; QEMU maps a 128 KiB -bios image exactly there
 *   kernel.bin the protected-mode kernel as placed at 1 MiB
 *   initrd.bin the initrd; its address is printed as "initrd=0x..."
 * A fake PCI device (slot 3, INTA# on IRQ 10) is put on the bus so the _PRT has an entry.
 * Usage: bootdump KERNEL INITRD|- CMDLINE MEMORY_MIB CPUS APIC(0|1) TRAMPOLINE OUTDIR */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asm/bootparam.h>

#include "devices/pci.h"
#include "vmm/boot/boot.h"
#include "vmm/machine.h"

static int dump(const char *dir, const char *name, const void *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "bootdump: %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: bootdump KERNEL INITRD|- CMDLINE MEMORY_MIB CPUS APIC TRAMPOLINE OUTDIR\n");
        return 2;
    }
    static struct machine m;
    static struct vm_config cfg;
    static struct pci_bus pci;
    static struct pci_device fake;
    char err[512];
    cfg.kernel = argv[1];
    cfg.initrd = strcmp(argv[2], "-") ? argv[2] : NULL;
    cfg.cmdline = argv[3];
    cfg.memory_mib = strtoull(argv[4], NULL, 0);
    cfg.cpus = (unsigned)atoi(argv[5]);
    m.cfg = &cfg;
    m.ncpus = cfg.cpus;
    m.apic = atoi(argv[6]) != 0;
    fake.cfg[0x3D] = 1;
    fake.irq = 10;
    pci.slots[3] = &fake;
    m.pci = &pci;
    const char *out = argv[8];
    if (guest_mem_init(&m.mem, cfg.memory_mib << 20) < 0) {
        fprintf(stderr, "bootdump: cannot allocate guest RAM\n");
        return 1;
    }
    if (boot_linux_load(&m, err, sizeof(err)) < 0) {
        fprintf(stderr, "bootdump: %s\n", err);
        return 1;
    }
    const struct boot_params *bp = guest_mem_ptr(&m.mem, m.boot_params_gpa, sizeof(*bp));
    uint8_t *bios = malloc(0x20000);
    memcpy(bios, guest_mem_ptr(&m.mem, 0xE0000, 0x20000), 0x20000);
    FILE *t = fopen(argv[7], "rb");
    if (!t || fread(bios + 0x1F000, 1, 0xFF0, t) == 0) {
        fprintf(stderr, "bootdump: trampoline %s unreadable\n", argv[7]);
        return 1;
    }
    fclose(t);
    static const uint8_t reset[] = {0xEA, 0x00, 0xF0, 0x00, 0xF0}; /* ljmp 0xF000:0xF000 */
    memcpy(bios + 0x1FFF0, reset, sizeof(reset));
    FILE *k = fopen(argv[1], "rb");
    fseek(k, 0, SEEK_END);
    long ksize = ftell(k);
    fclose(k);
    unsigned sects = bp->hdr.setup_sects ? bp->hdr.setup_sects : 4;
    size_t kernel_len = (size_t)ksize - (sects + 1) * 512ULL;
    if (dump(out, "low.bin", guest_mem_ptr(&m.mem, 0, 0xA0000), 0xA0000) ||
        dump(out, "bios.bin", bios, 0x20000) ||
        dump(out, "kernel.bin", guest_mem_ptr(&m.mem, 0x100000, kernel_len), kernel_len))
        return 1;
    if (cfg.initrd) {
        uint64_t addr = bp->hdr.ramdisk_image;
        if (dump(out, "initrd.bin", guest_mem_ptr(&m.mem, addr, bp->hdr.ramdisk_size), bp->hdr.ramdisk_size))
            return 1;
        printf("initrd=0x%llx\n", (unsigned long long)addr);
    }
    free(bios);
    guest_mem_free(&m.mem);
    return 0;
}
