/* longmode: GDT, TSS, IDT and identity page tables for entering Linux in 64-bit mode, and the
 * flat 32-bit protected-mode variant of the 32-bit boot protocol. */
#include "vmm/boot/longmode.h"

#include <errno.h>
#include <string.h>

#include "vmm/boot/layout.h"

#define PTE_PRESENT 0x1ULL
#define PTE_WRITE 0x2ULL
#define PTE_LARGE 0x80ULL /* PS: 2 MiB page in a page directory */

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
    return ((uint64_t)(base & 0xFF000000u) << 32) | ((uint64_t)(flags & 0xF0FFu) << 40) |
           ((uint64_t)(limit & 0xF0000u) << 32) | ((uint64_t)(base & 0x00FFFFFFu) << 16) | (limit & 0xFFFFu);
}

void segment_from_gdt(struct cpu_segment *seg, uint16_t selector, uint64_t desc)
{
    uint32_t limit = (uint32_t)((desc & 0xFFFF) | ((desc >> 32) & 0xF0000));
    uint8_t g = (desc >> 55) & 1;
    memset(seg, 0, sizeof(*seg));
    seg->selector = selector;
    seg->base = ((desc >> 16) & 0xFFFFFF) | ((desc >> 32) & 0xFF000000);
    seg->limit = g ? (limit << 12) | 0xFFF : limit;
    seg->type = (desc >> 40) & 0xF;
    seg->s = (desc >> 44) & 1;
    seg->dpl = (desc >> 45) & 3;
    seg->present = (desc >> 47) & 1;
    seg->avl = (desc >> 52) & 1;
    seg->l = (desc >> 53) & 1;
    seg->db = (desc >> 54) & 1;
    seg->g = g;
    seg->unusable = !seg->present;
}

static void boot_gdt(uint64_t gdt[BOOT_GDT_ENTRIES], bool bits64)
{
    memset(gdt, 0, sizeof(uint64_t) * BOOT_GDT_ENTRIES);
    gdt[BOOT_SEL_CODE / 8] = gdt_entry(bits64 ? GDT_FLAGS_CODE64 : GDT_FLAGS_CODE32, 0, 0xFFFFF);
    gdt[BOOT_SEL_DATA / 8] = gdt_entry(GDT_FLAGS_DATA, 0, 0xFFFFF);
    gdt[BOOT_SEL_TSS / 8] = gdt_entry(bits64 ? GDT_FLAGS_TSS64 : GDT_FLAGS_TSS32, (uint32_t)BOOT_TSS_ADDR, BOOT_TSS_LIMIT);
    if (bits64) gdt[BOOT_SEL_TSS / 8 + 1] = BOOT_TSS_ADDR >> 32; /* upper half of the 16-byte system descriptor */
}

static int write_tables(struct guest_mem *mem, bool bits64)
{
    uint64_t gdt[BOOT_GDT_ENTRIES];
    boot_gdt(gdt, bits64);
    if (guest_mem_write(mem, BOOT_GDT_ADDR, gdt, sizeof(gdt)) < 0) return -EFAULT;
    uint8_t tss[BOOT_TSS_LIMIT + 1];
    memset(tss, 0, sizeof(tss));
    uint16_t iomap_base = sizeof(tss); /* no I/O permission bitmap */
    memcpy(tss + 0x66, &iomap_base, 2);
    if (guest_mem_write(mem, BOOT_TSS_ADDR, tss, sizeof(tss)) < 0) return -EFAULT;
    uint64_t idt_zero[2] = {0, 0};
    if (guest_mem_write(mem, BOOT_IDT_ADDR, idt_zero, sizeof(idt_zero)) < 0) return -EFAULT;
    return 0;
}

int longmode_write_tables(struct guest_mem *mem) { return write_tables(mem, true); }
int protmode_write_tables(struct guest_mem *mem) { return write_tables(mem, false); }

int longmode_write_pagetables(struct guest_mem *mem)
{
    uint64_t table[512];
    memset(table, 0, sizeof(table));
    table[0] = BOOT_PDPT_ADDR | PTE_PRESENT | PTE_WRITE;
    if (guest_mem_write(mem, BOOT_PML4_ADDR, table, sizeof(table)) < 0) return -EFAULT;
    memset(table, 0, sizeof(table));
    for (unsigned i = 0; i < BOOT_PD_COUNT; i++) table[i] = (BOOT_PD_ADDR + i * 0x1000ULL) | PTE_PRESENT | PTE_WRITE;
    if (guest_mem_write(mem, BOOT_PDPT_ADDR, table, sizeof(table)) < 0) return -EFAULT;
    for (unsigned d = 0; d < BOOT_PD_COUNT; d++) {
        for (unsigned i = 0; i < 512; i++)
            table[i] = (((uint64_t)d << 30) + ((uint64_t)i << 21)) | PTE_PRESENT | PTE_WRITE | PTE_LARGE;
        if (guest_mem_write(mem, BOOT_PD_ADDR + d * 0x1000ULL, table, sizeof(table)) < 0) return -EFAULT;
    }
    return 0;
}

static void segments_state(struct cpu_state *s, bool bits64)
{
    uint64_t gdt[BOOT_GDT_ENTRIES];
    boot_gdt(gdt, bits64);
    segment_from_gdt(&s->seg[SEG_CS], BOOT_SEL_CODE, gdt[BOOT_SEL_CODE / 8]);
    static const enum cpu_seg data_segs[] = {SEG_DS, SEG_ES, SEG_SS, SEG_FS, SEG_GS};
    for (unsigned i = 0; i < sizeof(data_segs) / sizeof(data_segs[0]); i++)
        segment_from_gdt(&s->seg[data_segs[i]], BOOT_SEL_DATA, gdt[BOOT_SEL_DATA / 8]);
    segment_from_gdt(&s->seg[SEG_TR], BOOT_SEL_TSS, gdt[BOOT_SEL_TSS / 8]);
    memset(&s->seg[SEG_LDTR], 0, sizeof(s->seg[SEG_LDTR]));
    s->seg[SEG_LDTR].type = 2; /* LDT, for backends that insist on a type */
    s->seg[SEG_LDTR].unusable = 1;
    s->gdtr = (struct cpu_dtable){.base = BOOT_GDT_ADDR, .limit = BOOT_GDT_ENTRIES * 8 - 1};
    s->idtr = (struct cpu_dtable){.base = BOOT_IDT_ADDR, .limit = 0};
}

void protmode_cpu_state(struct cpu_state *s)
{
    segments_state(s, false);
    s->cr0 = CR0_PE | CR0_ET | CR0_NE;
    s->cr3 = 0;
    s->cr4 = 0;
    s->efer = 0;
}

void longmode_cpu_state(struct cpu_state *s)
{
    segments_state(s, true);
    s->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG;
    s->cr3 = BOOT_PML4_ADDR;
    s->cr4 = CR4_PAE;
    s->efer = EFER_LME | EFER_LMA;
}
