/* longmode: the x86 structures the 64-bit boot entry needs in guest memory (GDT,
 * TSS, empty IDT, identity page tables) and the matching segment-register caches. */
#ifndef VMD_BOOT_LONGMODE_H
#define VMD_BOOT_LONGMODE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/cpu_state.h"
#include "vmm/guest_mem.h"

/* Descriptor flag words (bits 8-15: P DPL S type, bits 20-23 of the high half: G D/B L AVL). */
#define GDT_FLAGS_CODE64 0xA09B /* G, L, present, code execute/read accessed */
#define GDT_FLAGS_DATA 0xC093   /* G, D/B, present, data read/write accessed */
#define GDT_FLAGS_TSS64 0x008B  /* present, system, 64-bit TSS busy */

/* One legacy 8-byte descriptor. */
uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);

/* The segment cache a CPU holds after loading `selector` with descriptor `desc`. */
void segment_from_gdt(struct cpu_segment *seg, uint16_t selector, uint64_t desc);

/* Write the GDT (null, null, code64, data, TSS), the TSS and the empty IDT. 0 or -EFAULT. */
int longmode_write_tables(struct guest_mem *mem);

/* Write PML4/PDPT/PDs identity-mapping the first 4 GiB with 2 MiB pages. 0 or -EFAULT. */
int longmode_write_pagetables(struct guest_mem *mem);

/* Long-mode register state with the tables above: CR0/CR3/CR4/EFER, CS/DS/.../TR/LDTR, GDTR, IDTR. */
void longmode_cpu_state(struct cpu_state *s);

/* The 32-bit boot protocol's entry: the same GDT layout with a flat 32-bit __BOOT_CS, __BOOT_DS,
 * a 32-bit TSS and an empty IDT; paging off, interrupts off. */
#define GDT_FLAGS_CODE32 0xC09B /* G, D/B, present, code execute/read accessed */
#define GDT_FLAGS_TSS32 0x008B  /* present, system, 32-bit TSS busy */
int protmode_write_tables(struct guest_mem *mem);
void protmode_cpu_state(struct cpu_state *s);

#endif
