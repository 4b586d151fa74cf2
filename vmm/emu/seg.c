/* seg: descriptors, segment caches and the mode cache (see seg.h). */
#include "vmm/emu/seg.h"

#include "vmm/emu/mmu.h"

void emu_update_mode(struct emu_cpu *cpu)
{
    uint8_t old_cpl = cpu->cpl;
    const struct cpu_segment *cs = &cpu->s.seg[SEG_CS];
    bool pe = cpu->s.cr0 & CR0_PE;
    cpu->paging = (cpu->s.cr0 & CR0_PG) && pe;
    cpu->long64 = (cpu->s.efer & EFER_LMA) && cs->l;
    cpu->code32 = !cpu->long64 && cs->db;
    if (!pe) cpu->cpl = 0;
    else cpu->cpl = cs->dpl & 3;
    /* entries filled at CPL0 may permit what CPL3 may not (see mmu.c) */
    if (cpu->cpl == 3 && old_cpl != 3) emu_tlb_drop_privileged(cpu);
}

void seg_load_flat_code(struct cpu_segment *s, uint16_t sel, unsigned dpl, bool l)
{
    *s = (struct cpu_segment){.base = 0, .limit = 0xffffffff, .selector = sel, .type = 0xb, .s = 1,
                              .dpl = (uint8_t)dpl, .present = 1, .l = l, .db = !l, .g = 1};
}

void seg_load_flat_data(struct cpu_segment *s, uint16_t sel, unsigned dpl)
{
    *s = (struct cpu_segment){.base = 0, .limit = 0xffffffff, .selector = sel, .type = 0x3, .s = 1,
                              .dpl = (uint8_t)dpl, .present = 1, .db = 1, .g = 1};
}

void seg_load_null(struct cpu_segment *s, uint16_t sel)
{
    *s = (struct cpu_segment){.selector = sel, .unusable = 1, .dpl = (uint8_t)(sel & 3)};
}

void desc_read(struct emu_cpu *cpu, uint16_t sel, struct emu_desc *d, bool sys16, uint32_t ext)
{
    uint64_t base, limit;
    if (sel & 4) {
        const struct cpu_segment *ldt = &cpu->s.seg[SEG_LDTR];
        if (ldt->unusable || !ldt->present) emu_raise(cpu, EXC_GP, (sel & ~3u) | ext, true);
        base = ldt->base;
        limit = ldt->limit;
    } else {
        base = cpu->s.gdtr.base;
        limit = cpu->s.gdtr.limit;
    }
    uint64_t off = sel & ~7u;
    if (off + (sys16 ? 15 : 7) > limit) emu_raise(cpu, EXC_GP, (sel & ~3u) | ext, true);
    uint64_t v = mmu_read(cpu, base + off, 8, ACC_READ, false);
    d->lo = (uint32_t)v;
    d->hi = (uint32_t)(v >> 32);
    d->base_hi = sys16 ? (uint32_t)mmu_read(cpu, base + off + 8, 4, ACC_READ, false) : 0;
}

void desc_set_accessed(struct emu_cpu *cpu, uint16_t sel, struct emu_desc *d)
{
    if (!desc_s(d) || (d->hi & (1u << 8))) return;
    uint64_t base = (sel & 4) ? cpu->s.seg[SEG_LDTR].base : cpu->s.gdtr.base;
    d->hi |= 1u << 8;
    mmu_write(cpu, base + (sel & ~7u) + 5, (uint8_t)(d->hi >> 8), 1, false);
}

void desc_to_seg(const struct emu_desc *d, uint16_t sel, struct cpu_segment *s)
{
    uint32_t limit = (d->lo & 0xffff) | (d->hi & 0xf0000);
    bool g = (d->hi >> 23) & 1;
    if (g) limit = (limit << 12) | 0xfff;
    *s = (struct cpu_segment){
        .base = ((d->lo >> 16) | ((d->hi & 0xff) << 16) | (d->hi & 0xff000000u)) | (d->base_hi << 32),
        .limit = limit,
        .selector = sel,
        .type = (uint8_t)desc_type(d),
        .s = desc_s(d),
        .dpl = (uint8_t)desc_dpl(d),
        .present = desc_present(d),
        .avl = (d->hi >> 20) & 1,
        .l = desc_l(d),
        .db = desc_db(d),
        .g = g,
    };
}

void sys_set_cs(struct emu_cpu *cpu, const struct emu_desc *d, uint16_t sel, unsigned cpl)
{
    struct cpu_segment cs;
    desc_to_seg(d, (uint16_t)((sel & ~3u) | cpl), &cs);
    cs.dpl = (uint8_t)cpl; /* conforming segments run at the caller's CPL */
    cpu->s.seg[SEG_CS] = cs;
    emu_update_mode(cpu);
}

