/* e820: builds the memory map handed to Linux in the zero page. */
#include "vmm/boot/e820.h"

#include <errno.h>

#include "vmm/boot/layout.h"

static int add(struct boot_e820_entry *table, unsigned max, unsigned *n, uint64_t addr, uint64_t size,
               uint32_t type)
{
    if (size == 0) return 0;
    if (*n >= max) return -ENOSPC;
    table[*n] = (struct boot_e820_entry){.addr = addr, .size = size, .type = type};
    (*n)++;
    return 0;
}

int e820_build(const struct guest_mem *mem, struct boot_e820_entry *table, unsigned max)
{
    if (mem->nregions < 1 || mem->regions[0].gpa != 0 || mem->regions[0].size <= BOOT_BIOS_AREA_END)
        return -EINVAL;
    uint64_t low_end = mem->regions[0].size;
    unsigned n = 0;
    int r = 0;
    r |= add(table, max, &n, 0, BOOT_EBDA_ADDR, E820_TYPE_RAM);
    r |= add(table, max, &n, BOOT_EBDA_ADDR, BOOT_LOW_RAM_END - BOOT_EBDA_ADDR, E820_TYPE_RESERVED);
    /* 0xA0000-0xDFFFF: VGA memory and option ROM space, left out of the map (a hole). */
    r |= add(table, max, &n, BOOT_BIOS_AREA, BOOT_BIOS_AREA_END - BOOT_BIOS_AREA, E820_TYPE_RESERVED);
    r |= add(table, max, &n, BOOT_BIOS_AREA_END, low_end - BOOT_BIOS_AREA_END, E820_TYPE_RAM);
    for (unsigned i = 1; i < mem->nregions; i++)
        r |= add(table, max, &n, mem->regions[i].gpa, mem->regions[i].size, E820_TYPE_RAM);
    return r < 0 ? -ENOSPC : (int)n;
}
