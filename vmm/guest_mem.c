/* guest_mem: allocation of guest RAM and bounds-checked copies in and out of it. */
#include "guest_mem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int guest_mem_init(struct guest_mem *mem, uint64_t size)
{
    memset(mem, 0, sizeof(*mem));
    if (size == 0 || (size & 0xfff)) return -EINVAL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return -errno;
    madvise(p, size, MADV_MERGEABLE);
    mem->base = p;
    mem->size = size;
    uint64_t low = size < GUEST_MEM_HOLE_START ? size : GUEST_MEM_HOLE_START;
    mem->regions[0] = (struct guest_mem_region){.gpa = 0, .size = low, .hva = mem->base};
    mem->nregions = 1;
    if (size > low) {
        mem->regions[1] = (struct guest_mem_region){
            .gpa = GUEST_MEM_HIGH_START, .size = size - low, .hva = mem->base + low};
        mem->nregions = 2;
    }
    return 0;
}

void guest_mem_free(struct guest_mem *mem)
{
    if (mem->base) munmap(mem->base, mem->size);
    memset(mem, 0, sizeof(*mem));
}

void guest_mem_dma_written(const struct guest_mem *mem, const void *hva, uint64_t len)
{
    if (!mem->dma_written || len == 0) return;
    const uint8_t *p = hva;
    for (unsigned i = 0; i < mem->nregions; i++) {
        const struct guest_mem_region *r = &mem->regions[i];
        if (p >= r->hva && p < r->hva + r->size) {
            uint64_t off = (uint64_t)(p - r->hva);
            mem->dma_written(mem->dma_opaque, r->gpa + off, len < r->size - off ? len : r->size - off);
            return;
        }
    }
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, uint64_t len)
{
    void *p = guest_mem_ptr(mem, gpa, len);
    if (!p) return -EFAULT;
    memcpy(dst, p, len);
    return 0;
}

int guest_mem_write(struct guest_mem *mem, uint64_t gpa, const void *src, uint64_t len)
{
    void *p = guest_mem_ptr(mem, gpa, len);
    if (!p) return -EFAULT;
    memcpy(p, src, len);
    return 0;
}
