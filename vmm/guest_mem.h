/* guest_mem: guest RAM and the guest-physical memory map.
 *
 * RAM is one anonymous mapping. Below 4 GiB it ends at min(size, 3 GiB) so
 * that the 32-bit PCI/IOAPIC/LAPIC hole (0xC0000000..0xFFFFFFFF) stays free;
 * the rest of RAM is mapped from 4 GiB up. Every guest-supplied address must
 * go through guest_mem_ptr(), which bounds-checks before forming a host pointer.
 */
#ifndef VMD_GUEST_MEM_H
#define VMD_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_MEM_HOLE_START 0xC0000000ULL /* 3 GiB: start of the 32-bit MMIO hole */
#define GUEST_MEM_HIGH_START 0x100000000ULL /* 4 GiB: where RAM above the hole resumes */

struct guest_mem_region {
    uint64_t gpa;   /* guest-physical start */
    uint64_t size;  /* bytes */
    uint8_t *hva;   /* host address of gpa */
};

struct guest_mem {
    uint8_t *base;      /* the whole host mapping */
    uint64_t size;      /* total RAM bytes */
    unsigned nregions;  /* 1 or 2 */
    struct guest_mem_region regions[2];
    /* Told about RAM a device wrote behind the CPU's back (DMA), so that a CPU backend caching
     * decoded instructions (emu) drops what that write made stale. Set by the backend; NULL
     * when nobody needs it. Called from device threads. */
    void (*dma_written)(void *opaque, uint64_t gpa, uint64_t len);
    void *dma_opaque;
};

/* Allocate `size` bytes of guest RAM (page multiple). Returns 0 or -errno. */
int guest_mem_init(struct guest_mem *mem, uint64_t size);
void guest_mem_free(struct guest_mem *mem);

/* Host pointer for [gpa, gpa+len) if the whole range is RAM inside one region, else NULL. */
static inline void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < mem->nregions; i++) {
        const struct guest_mem_region *r = &mem->regions[i];
        if (gpa >= r->gpa && len <= r->size && gpa - r->gpa <= r->size - len)
            return r->hva + (gpa - r->gpa);
    }
    return NULL;
}

/* Report that a device wrote [hva, hva+len) of guest RAM (see dma_written). */
void guest_mem_dma_written(const struct guest_mem *mem, const void *hva, uint64_t len);

/* Copy helpers: 0 on success, -EFAULT if any byte lies outside RAM. */
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len);
int guest_mem_write(struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len);

#endif
