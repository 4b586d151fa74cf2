/* image_file: opening and reading kernel and initrd images, and the platform tables every
 * direct boot writes (see image_file.h). */
#include "vmm/boot/image_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/boot/acpi.h"
#include "vmm/boot/layout.h"
#include "vmm/boot/mptable.h"
#include "vmm/host_files.h"
#include "vmm/machine.h"

int boot_pread_full(int fd, void *buf, uint64_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        size_t chunk = len > (1U << 30) ? (1U << 30) : (size_t)len;
        ssize_t n = pread(fd, p, chunk, (off_t)off);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) return -EIO;
        p += n;
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    return 0;
}

int boot_open_image(const char *what, const char *path, uint64_t *size, char *err, size_t errlen)
{
    int fd = host_files_open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s '%s': %s", what, path,
                 e == ELOOP ? "is a symbolic link (image paths are opened without following links)" : strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s '%s': %s", what, path, strerror(e));
        close(fd);
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s '%s': not a regular file", what, path);
        close(fd);
        return -EINVAL;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

int boot_platform_tables(struct machine *m, uint64_t *rsdp, char *err, size_t errlen)
{
    /* BIOS data area: EBDA segment and base memory, as a BIOS leaves them. */
    uint16_t ebda_seg = (uint16_t)(BOOT_EBDA_ADDR >> 4), base_kb = (uint16_t)(BOOT_EBDA_ADDR >> 10);
    int r = guest_mem_write(&m->mem, BDA_EBDA_SEGMENT, &ebda_seg, 2);
    r |= guest_mem_write(&m->mem, BDA_BASE_MEM_KB, &base_kb, 2);
    if (r < 0) {
        snprintf(err, errlen, "BIOS data area: outside guest RAM");
        return -EFAULT;
    }
    /* Platform tables in the BIOS area and EBDA */
    int t = acpi_build(m, rsdp);
    if (t < 0) {
        snprintf(err, errlen, "ACPI tables: %s", strerror(-t));
        return t;
    }
    if (m->apic) {
        t = mptable_build(m);
        if (t < 0) {
            snprintf(err, errlen, "MP table: %s", strerror(-t));
            return t;
        }
    }
    return 0;
}
