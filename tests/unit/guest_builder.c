/* guest_builder: page tables, descriptor tables and CPL3 entry state for test guests. */
#include "guest_builder.h"

#include <errno.h>
#include <string.h>

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2)
#define PTE_PS (1ULL << 7)

#define RFLAGS_IOPL3 (3ULL << 12)

static int put64(struct guest_mem *mem, uint64_t gpa, uint64_t v) { return guest_mem_write(mem, gpa, &v, 8); }

/* An IDT gate: 64-bit interrupt gate to `handler` in the kernel code segment; DPL 3 for
 * vector 3 (so INT3 works from CPL3, as under Linux), DPL 0 otherwise. */
int guest_set_gate(struct guest_mem *mem, unsigned vector, uint64_t handler)
{
    uint8_t g[16] = {0};
    g[0] = handler & 0xff;
    g[1] = (handler >> 8) & 0xff;
    g[2] = GB_SEL_KCODE;
    g[5] = vector == 3 ? 0xee : 0x8e; /* P, DPL, type 0xE */
    g[6] = (handler >> 16) & 0xff;
    g[7] = (handler >> 24) & 0xff;
    for (int i = 0; i < 4; i++) g[8 + i] = (handler >> (32 + 8 * i)) & 0xff;
    return guest_mem_write(mem, GB_IDT + 16ULL * vector, g, sizeof(g));
}

int guest_build_long_mode(struct guest_mem *mem)
{
    int r = 0;
    /* PML4[0] -> PDPT, PDPT[0..3] -> four page directories of 2 MiB pages: 0..4 GiB. */
    r |= put64(mem, GB_PML4, (GB_PML4 + 0x1000) | PTE_P | PTE_RW | PTE_US);
    for (uint64_t i = 0; i < 4; i++) {
        uint64_t pd = GB_PML4 + 0x2000 + i * 0x1000;
        r |= put64(mem, GB_PML4 + 0x1000 + 8 * i, pd | PTE_P | PTE_RW | PTE_US);
        for (uint64_t j = 0; j < 512; j++)
            r |= put64(mem, pd + 8 * j, ((i << 30) | (j << 21)) | PTE_P | PTE_RW | PTE_US | PTE_PS);
    }
    /* GDT: null, kernel code64, kernel data, user data, user code64, 64-bit TSS (busy). */
    uint64_t tss_lo = 0x67 | ((GB_TSS & 0xffffff) << 16) | (0x8bULL << 40) | (((GB_TSS >> 24) & 0xff) << 56);
    const uint64_t gdt[7] = {0, 0x00af9b000000ffffULL, 0x00cf93000000ffffULL, 0x00cff3000000ffffULL,
                             0x00affb000000ffffULL, tss_lo, GB_TSS >> 32};
    r |= guest_mem_write(mem, GB_GDT, gdt, sizeof(gdt));
    /* TSS: RSP0 = kernel stack, I/O bitmap offset beyond the limit (no bitmap). */
    uint8_t tss[0x68] = {0};
    uint64_t rsp0 = GB_KSTACK_TOP;
    memcpy(tss + 4, &rsp0, 8);
    tss[0x66] = 0x68;
    r |= guest_mem_write(mem, GB_TSS, tss, sizeof(tss));
    /* Exception stubs: push rax; push rdx; mov eax, vector; mov dx, GB_EXC_PORT; out dx, eax; jmp $ */
    for (unsigned v = 0; v < 32; v++) {
        uint8_t stub[16] = {0x50, 0x52, 0xb8, (uint8_t)v, 0, 0, 0, 0x66, 0xba, GB_EXC_PORT & 0xff, GB_EXC_PORT >> 8,
                            0xef, 0xeb, 0xfe, 0x90, 0x90};
        r |= guest_mem_write(mem, GB_EXC_STUBS + 16ULL * v, stub, sizeof(stub));
        r |= guest_set_gate(mem, v, GB_EXC_STUBS + 16ULL * v);
    }
    return r ? -EFAULT : 0;
}

int guest_load_code(struct guest_mem *mem, const void *code, size_t len)
{
    if (len > GB_CODE_SIZE) return -E2BIG;
    return guest_mem_write(mem, GB_CODE, code, len);
}

static struct cpu_segment flat_seg(uint16_t sel, uint8_t type, uint8_t dpl, uint8_t l, uint8_t db)
{
    return (struct cpu_segment){.base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .s = 1,
                                .dpl = dpl, .present = 1, .l = l, .db = db, .g = 1};
}

void guest_cpl3_state(struct cpu_state *s, uint64_t rip)
{
    memset(s, 0, sizeof(*s));
    s->rip = rip;
    s->gpr[GPR_RSP] = GB_STACK_TOP;
    s->rflags = RFLAGS_FIXED | RFLAGS_IOPL3;
    s->seg[SEG_CS] = flat_seg(GB_SEL_UCODE, 0xb, 3, 1, 0);
    struct cpu_segment data = flat_seg(GB_SEL_UDATA, 0x3, 3, 0, 1);
    s->seg[SEG_SS] = data;
    s->seg[SEG_DS] = data;
    s->seg[SEG_ES] = data;
    s->seg[SEG_FS] = data;
    s->seg[SEG_GS] = data;
    s->seg[SEG_TR] = (struct cpu_segment){
        .base = GB_TSS, .limit = 0x67, .selector = GB_SEL_TSS, .type = 0xb, .present = 1};
    s->seg[SEG_LDTR] = (struct cpu_segment){.type = 0x2, .unusable = 1};
    s->gdtr = (struct cpu_dtable){.base = GB_GDT, .limit = 7 * 8 - 1};
    s->idtr = (struct cpu_dtable){.base = GB_IDT, .limit = 32 * 16 - 1};
    s->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    s->cr3 = GB_PML4;
    s->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
    s->efer = EFER_LME | EFER_LMA | EFER_SCE;
    s->pat = 0x0007040600070406ULL;
    s->xcr0 = 1;
    s->fx.fcw = 0x37f;
    s->fx.mxcsr = 0x1f80;
}

void guest_cpl0_state(struct cpu_state *s, uint64_t rip)
{
    guest_cpl3_state(s, rip);
    s->gpr[GPR_RSP] = GB_KSTACK_TOP - 0x1000;
    s->seg[SEG_CS] = flat_seg(GB_SEL_KCODE, 0xb, 0, 1, 0);
    struct cpu_segment data = flat_seg(GB_SEL_KDATA, 0x3, 0, 0, 1);
    s->seg[SEG_SS] = data;
    s->seg[SEG_DS] = data;
    s->seg[SEG_ES] = data;
    s->seg[SEG_FS] = data;
    s->seg[SEG_GS] = data;
}
