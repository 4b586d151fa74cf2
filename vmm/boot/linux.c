/* linux: direct Linux boot. Validates and loads the bzImage, initrd and command
 * line, writes the zero page (boot_params), the platform tables and the long-mode
 * structures, and gives each vCPU its initial state. Layout: vmm/boot/layout.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asm/bootparam.h>

#include "vmm/host_files.h"
#include "vmm/boot/acpi.h"
#include "vmm/boot/boot.h"
#include "vmm/boot/bzimage.h"
#include "vmm/boot/e820.h"
#include "vmm/boot/firmware.h"
#include "vmm/boot/image_file.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/longmode.h"
#include "vmm/boot/mptable.h"
#include "vmm/boot/multiboot.h"
#include "vmm/emu/cpu.h"
#include "vmm/log.h"
#include "vmm/machine.h"

#define MIB (1024ULL * 1024ULL)

static void fill_screen_info(struct screen_info *si)
{
    /* An 80x25 colour text mode on a VGA, as the real-mode setup code would report it:
     * vgacon needs non-zero cols/lines, a text mode, EGA/VGA memory info (ega_bx low
     * byte != 0x10) and isVGA set to pick the VGA colour path at 0xB8000. */
    memset(si, 0, sizeof(*si));
    si->orig_video_mode = 3;
    si->orig_video_cols = 80;
    si->orig_video_lines = 25;
    si->orig_video_ega_bx = 0x0003; /* BH 0: colour, BL 3: 256 KiB */
    si->orig_video_isVGA = 1;
    si->orig_video_points = 16;
    si->orig_video_page = 0;
}

int boot_linux_load(struct machine *m, char *err, size_t errlen)
{
    const struct vm_config *cfg = m->cfg;
    if (!cfg->kernel) {
        snprintf(err, errlen, "no kernel given (--kernel)");
        return -EINVAL;
    }
    uint64_t low_end = m->mem.nregions ? m->mem.regions[0].size : 0;
    if (low_end < 2 * MIB) {
        snprintf(err, errlen, "guest memory too small for Linux (%llu KiB)", (unsigned long long)(low_end >> 10));
        return -EINVAL;
    }

    /* Kernel */
    uint64_t ksize;
    int fd = boot_open_image("kernel", cfg->kernel, &ksize, err, errlen);
    if (fd < 0) return fd;
    uint8_t head[MULTIBOOT_SEARCH];
    uint64_t head_len = ksize < sizeof(head) ? ksize : sizeof(head);
    int r = boot_pread_full(fd, head, head_len, 0);
    if (r < 0) {
        snprintf(err, errlen, "kernel '%s': %s", cfg->kernel, strerror(-r));
        close(fd);
        return r;
    }
    struct bzimage bz;
    char why[200];
    /* A multiboot image (as QEMU's -kernel takes it): a multiboot header in the first 8 KiB and no
     * bzImage header (a bzImage wins, as in QEMU). */
    if (head_len < 0x206 || memcmp(head + 0x202, "HdrS", 4) != 0) {
        uint32_t mb_off;
        r = multiboot_find(head, (size_t)head_len, &mb_off, why, sizeof(why));
        if (r != 0) {
            if (r > 0) r = multiboot_load(m, fd, ksize, err, errlen);
            else snprintf(err, errlen, "kernel '%s': %s", cfg->kernel, why);
            close(fd);
            return r;
        }
    }
    r = bzimage_parse(head, (size_t)(head_len < BZIMAGE_HEAD_BYTES ? head_len : BZIMAGE_HEAD_BYTES), ksize, &bz, why,
                      sizeof(why));
    if (r < 0) {
        snprintf(err, errlen, "kernel '%s': %s", cfg->kernel, why);
        close(fd);
        return r;
    }
    /* --boot-protocol: 32 enters even a 64-bit kernel at code32_start (its startup_32 then
     * builds its own page tables and switches to long mode); 64 needs the 64-bit entry. */
    if (cfg->boot_protocol == BOOT_PROTOCOL_64 && !bz.has_entry64) {
        snprintf(err, errlen, "kernel '%s': --boot-protocol 64: the kernel has no 64-bit entry point (a 32-bit kernel)",
                 cfg->kernel);
        close(fd);
        return -ENOEXEC;
    }
    bool entry64 = bz.has_entry64 && cfg->boot_protocol != BOOT_PROTOCOL_32;
    uint64_t kernel_end = bzimage_footprint_end(&bz, BOOT_KERNEL_ADDR);
    if (kernel_end > low_end) {
        snprintf(err, errlen, "kernel '%s': does not fit in RAM (needs %llu MiB below 3 GiB, the VM has %llu MiB there)",
                 cfg->kernel, (unsigned long long)((kernel_end + MIB - 1) / MIB), (unsigned long long)(low_end / MIB));
        close(fd);
        return -ENOMEM;
    }
    r = boot_pread_full(fd, guest_mem_ptr(&m->mem, BOOT_KERNEL_ADDR, bz.kernel_size), bz.kernel_size, bz.kernel_offset);
    close(fd);
    if (r < 0) {
        snprintf(err, errlen, "kernel '%s': %s", cfg->kernel, strerror(-r));
        return r;
    }

    struct boot_params bp;
    memset(&bp, 0, sizeof(bp));
    memcpy(&bp.hdr, &bz.hdr, bz.hdr_len);

    /* Command line */
    const char *cmdline = cfg->cmdline ? cfg->cmdline : "";
    size_t clen = strlen(cmdline);
    uint64_t cmax = bz.cmdline_size < BOOT_CMDLINE_MAX - 1 ? bz.cmdline_size : BOOT_CMDLINE_MAX - 1;
    if (clen > cmax) {
        snprintf(err, errlen, "command line is %zu bytes, the kernel accepts at most %llu", clen,
                 (unsigned long long)cmax);
        return -E2BIG;
    }
    if (guest_mem_write(&m->mem, BOOT_CMDLINE_ADDR, cmdline, clen + 1) < 0) {
        snprintf(err, errlen, "command line: outside guest RAM");
        return -EFAULT;
    }
    bp.hdr.cmd_line_ptr = (uint32_t)BOOT_CMDLINE_ADDR;
    bp.ext_cmd_line_ptr = 0;

    /* Initrd: as high as allowed, page-aligned, clear of the kernel's footprint. */
    if (cfg->initrd) {
        uint64_t isize;
        fd = boot_open_image("initrd", cfg->initrd, &isize, err, errlen);
        if (fd < 0) return fd;
        uint64_t top = low_end;
        if (bz.initrd_addr_max + 1 < top) top = bz.initrd_addr_max + 1;
        uint64_t addr = isize <= top ? (top - isize) & ~0xFFFULL : 0;
        if (isize > top || addr < kernel_end) {
            snprintf(err, errlen,
                     "initrd '%s': does not fit in RAM (%llu MiB initrd above a kernel that needs %llu MiB; "
                     "the VM has %llu MiB below 3 GiB)",
                     cfg->initrd, (unsigned long long)((isize + MIB - 1) / MIB),
                     (unsigned long long)((kernel_end + MIB - 1) / MIB), (unsigned long long)(low_end / MIB));
            close(fd);
            return -ENOMEM;
        }
        r = isize ? boot_pread_full(fd, guest_mem_ptr(&m->mem, addr, isize), isize, 0) : 0;
        close(fd);
        if (r < 0) {
            snprintf(err, errlen, "initrd '%s': %s", cfg->initrd, strerror(-r));
            return r;
        }
        bp.hdr.ramdisk_image = (uint32_t)addr;
        bp.hdr.ramdisk_size = (uint32_t)isize;
        bp.ext_ramdisk_image = (uint32_t)(addr >> 32);
        bp.ext_ramdisk_size = (uint32_t)(isize >> 32);
        log_debug("boot: initrd at 0x%llx, %llu bytes", (unsigned long long)addr, (unsigned long long)isize);
    }

    /* Zero page */
    bp.hdr.type_of_loader = 0xFF; /* undefined loader */
    bp.hdr.loadflags |= LOADED_HIGH | CAN_USE_HEAP;
    bp.hdr.loadflags &= (uint8_t)~QUIET_FLAG;
    bp.hdr.heap_end_ptr = 0xFE00;
    bp.hdr.code32_start = (uint32_t)BOOT_KERNEL_ADDR;
    bp.hdr.vid_mode = 0xFFFF; /* "normal" */
    bp.hdr.setup_data = 0;    /* no setup_data list, whatever the file says */
    fill_screen_info(&bp.screen_info);
    r = e820_build(&m->mem, bp.e820_table, E820_MAX_ENTRIES_ZEROPAGE);
    if (r < 0) {
        snprintf(err, errlen, "e820 map: %s", strerror(-r));
        return r;
    }
    bp.e820_entries = (uint8_t)r;

    uint64_t rsdp = 0;
    r = boot_platform_tables(m, &rsdp, err, errlen);
    if (r < 0) return r;
    bp.acpi_rsdp_addr = rsdp;

    r |= guest_mem_write(&m->mem, BOOT_PARAMS_ADDR, &bp, sizeof(bp));
    r |= entry64 ? longmode_write_tables(&m->mem) : protmode_write_tables(&m->mem);
    if (entry64) r |= longmode_write_pagetables(&m->mem);
    if (r < 0) {
        snprintf(err, errlen, "boot structures: outside guest RAM");
        return -EFAULT;
    }
    m->kernel_entry32 = !entry64;
    m->kernel_entry = BOOT_KERNEL_ADDR + (entry64 ? BOOT_KERNEL_ENTRY64_OFFSET : 0);
    m->boot_params_gpa = BOOT_PARAMS_ADDR;
    log_debug("boot: protocol %u.%02u, %s entry, kernel %llu bytes at 0x%llx (footprint to 0x%llx), entry 0x%llx",
              bz.version >> 8, bz.version & 0xFF, entry64 ? "64-bit" : "32-bit", (unsigned long long)bz.kernel_size,
              (unsigned long long)BOOT_KERNEL_ADDR, (unsigned long long)kernel_end,
              (unsigned long long)m->kernel_entry);
    return 0;
}

/* State common to every vCPU at power-on (Intel SDM vol. 3 table 9-1). */
static void reset_common(struct cpu_state *s)
{
    s->rflags = RFLAGS_FIXED;
    s->fx.fcw = 0x37F;
    s->fx.mxcsr = 0x1F80;
    s->fx.ftw = 0; /* abridged tag word: all registers empty */
    s->pat = 0x0007040600070406ULL;
    s->xcr0 = 1;
    s->dr[6] = 0xFFFF0FF0;
    s->dr[7] = 0x400;
}

void boot_cpu_state(const struct machine *m, unsigned index, struct cpu_state *s)
{
    memset(s, 0, sizeof(*s));
    reset_common(s);
    if (index == 0 && m->firmware) { /* firmware boot: the reset vector (only the emulator runs it) */
        boot_reset_state(s, EMU_CPU_SIGNATURE);
        s->apic_base = BOOT_LAPIC_ADDR | (1ULL << 11) | (1ULL << 8); /* enabled, BSP */
        return;
    }
    if (index == 0) {
        if (m->kernel_entry32) protmode_cpu_state(s); /* EBX EBP EDI stay 0, as the protocol asks */
        else longmode_cpu_state(s);
        s->rip = m->kernel_entry;
        s->gpr[GPR_RSI] = m->boot_params_gpa;
        if (m->multiboot) { /* the multiboot entry: magic in EAX, the info in EBX */
            s->gpr[GPR_RAX] = MULTIBOOT_BOOTLOADER_MAGIC;
            s->gpr[GPR_RBX] = m->multiboot_info;
            s->gpr[GPR_RSI] = 0;
        }
        s->gpr[GPR_RSP] = BOOT_STACK_TOP;
        s->apic_base = BOOT_LAPIC_ADDR | (1ULL << 11) | (1ULL << 8); /* enabled, BSP */
        return;
    }
    /* Application processors: architectural reset state; the BSP wakes them with INIT/SIPI. */
    boot_reset_state(s, 0x600); /* processor signature: family 6 */
    s->apic_base = BOOT_LAPIC_ADDR | (1ULL << 11);
}
