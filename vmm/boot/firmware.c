/* firmware: a ROM image mapped at the top of 4 GiB (read-only, on the MMIO bus) with its end
 * copied below 1 MiB, and the reset state the vCPU starts from. Interface: firmware.h. */
#include "vmm/boot/firmware.h"

#include "devices/fw_cfg.h"
#include "vmm/boot/acpi.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/host_files.h"
#include "vmm/log.h"
#include "vmm/machine.h"

struct firmware_rom {
    uint8_t *data;
    uint64_t size;
};

int firmware_check_size(uint64_t size, char *why, size_t whylen)
{
    if (size == 0 || size % FIRMWARE_SIZE_UNIT || size > FIRMWARE_MAX_SIZE) {
        snprintf(why, whylen, "is %llu bytes: a ROM image must be a non-zero multiple of 64 KiB, at most 16 MiB",
                 (unsigned long long)size);
        return -EINVAL;
    }
    return 0;
}

/* Reads of the ROM; writes are ignored, as a flash chip that is not being programmed does. */
static void rom_access(void *opaque, uint64_t off, uint64_t *data, unsigned size, bool is_write)
{
    const struct firmware_rom *rom = opaque;
    if (is_write) return;
    uint64_t v = 0;
    for (unsigned i = 0; i < size && i < 8 && off + i < rom->size; i++) v |= (uint64_t)rom->data[off + i] << (8 * i);
    *data = v;
}

static int read_all(int fd, uint8_t *buf, uint64_t len)
{
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, buf + done, len - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) return -EIO; /* the file shrank under us */
        done += (uint64_t)n;
    }
    return 0;
}

int boot_firmware_load(struct machine *m, char *err, size_t errlen)
{
    const char *path = m->cfg->firmware;
    if (strcmp(m->backend->name, "emu") != 0) {
        snprintf(err, errlen, "firmware '%s': firmware boot runs under the emulator only (--accel emu); the %s backend "
                 "has no read-only ROM mapping yet", path, m->backend->name);
        return -ENOTSUP;
    }
    int fd = host_files_open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "firmware '%s': %s", path,
                 e == ELOOP ? "is a symbolic link (image paths are opened without following links)" : strerror(e));
        return -e;
    }
    struct stat st;
    char why[128];
    int r = 0;
    if (fstat(fd, &st) < 0) {
        r = -errno;
        snprintf(err, errlen, "firmware '%s': %s", path, strerror(-r));
    } else if (!S_ISREG(st.st_mode)) {
        r = -EINVAL;
        snprintf(err, errlen, "firmware '%s': not a regular file", path);
    } else if ((r = firmware_check_size((uint64_t)st.st_size, why, sizeof(why))) < 0) {
        snprintf(err, errlen, "firmware '%s' %s", path, why);
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    uint64_t size = (uint64_t)st.st_size;
    struct firmware_rom *rom = calloc(1, sizeof(*rom));
    if (rom) rom->data = malloc(size);
    if (!rom || !rom->data) {
        free(rom);
        close(fd);
        snprintf(err, errlen, "firmware '%s': out of memory", path);
        return -ENOMEM;
    }
    rom->size = size;
    r = read_all(fd, rom->data, size);
    close(fd);
    if (r < 0) {
        snprintf(err, errlen, "firmware '%s': %s", path, strerror(-r));
        goto fail;
    }
    uint64_t low = size < FIRMWARE_LOW_MAX ? size : FIRMWARE_LOW_MAX;
    if (guest_mem_write(&m->mem, 0x100000 - low, rom->data + size - low, low) < 0) {
        r = -ENOMEM;
        snprintf(err, errlen, "firmware '%s': guest RAM does not reach 1 MiB", path);
        goto fail;
    }
    r = bus_register(&m->mmio, (1ULL << 32) - size, size, rom_access, rom, "firmware-rom");
    if (r < 0) {
        snprintf(err, errlen, "firmware '%s': its %llu KiB below 4 GiB overlap a device", path,
                 (unsigned long long)(size >> 10));
        goto fail;
    }
    m->firmware = rom;
    /* what firmware reads about the machine: vmd's ACPI tables through fw_cfg's table loader */
    struct fw_cfg *f = fw_cfg_of(m);
    if (f && (r = acpi_build_fw_cfg(m, f)) < 0) {
        snprintf(err, errlen, "firmware: ACPI tables for fw_cfg: %s", strerror(-r));
        bus_unregister(&m->mmio, (1ULL << 32) - size);
        m->firmware = NULL;
        goto fail;
    }
    log_debug("firmware: %llu KiB at 0x%llx, the last %llu KiB at 0x%llx", (unsigned long long)(size >> 10),
              (unsigned long long)((1ULL << 32) - size), (unsigned long long)(low >> 10),
              (unsigned long long)(0x100000 - low));
    return 0;
fail:
    free(rom->data);
    free(rom);
    return r;
}

void boot_firmware_free(struct machine *m)
{
    if (!m->firmware) return;
    free(m->firmware->data);
    free(m->firmware);
    m->firmware = NULL;
}

static void reset_segment(struct cpu_segment *seg, uint16_t selector, uint64_t base, uint8_t type, uint8_t s)
{
    *seg = (struct cpu_segment){.base = base, .limit = 0xFFFF, .selector = selector, .type = type, .s = s,
                                .present = 1};
}

void boot_reset_state(struct cpu_state *s, uint32_t signature)
{
    reset_segment(&s->seg[SEG_CS], 0xF000, 0xFFFF0000ULL, 0xB, 1);
    static const enum cpu_seg data_segs[] = {SEG_DS, SEG_ES, SEG_SS, SEG_FS, SEG_GS};
    for (unsigned i = 0; i < sizeof(data_segs) / sizeof(data_segs[0]); i++)
        reset_segment(&s->seg[data_segs[i]], 0, 0, 0x3, 1);
    reset_segment(&s->seg[SEG_TR], 0, 0, 0xB, 0);
    reset_segment(&s->seg[SEG_LDTR], 0, 0, 0x2, 0);
    s->gdtr = (struct cpu_dtable){.base = 0, .limit = 0xFFFF};
    s->idtr = (struct cpu_dtable){.base = 0, .limit = 0xFFFF};
    s->rip = 0xFFF0;
    s->rflags = RFLAGS_FIXED;
    s->cr0 = 0x60000010; /* CD, NW, ET */
    s->cr2 = s->cr3 = s->cr4 = 0;
    s->efer = 0;
    s->gpr[GPR_RDX] = signature;
}
