/* mmu: the emulator's memory: linear->physical translation with the software TLB, the inline
 * fast-path accessors (a TLB hit) and the slow paths behind them (page walks, page-crossing
 * accesses, MMIO), accesses with an explicit privilege for the system part, TLB maintenance and
 * segmentation (seg:offset -> linear). Layer: above cpu.h only; faults are raised with
 * emu_raise, and a write to a page that holds decoded code is reported through
 * cpu->code_written.
 */
#ifndef VMD_EMU_MMU_H
#define VMD_EMU_MMU_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/emu/cpu.h"

/* Linear-address translation. Returns the host pointer for [la, la+len) within one page
 * (len <= 4096 - (la & 0xfff)), or NULL for MMIO (then *gpa is set); raises #PF on a fault. */
void *emu_translate(struct emu_cpu *cpu, uint64_t la, unsigned len, enum emu_access acc, uint64_t *gpa);
/* Slow-path accessors: handle page-crossing accesses and MMIO. Raise on fault. */
uint64_t emu_read_slow(struct emu_cpu *cpu, uint64_t la, unsigned size, enum emu_access acc);
void emu_write_slow(struct emu_cpu *cpu, uint64_t la, uint64_t val, unsigned size);
void emu_read_bytes(struct emu_cpu *cpu, uint64_t la, void *dst, unsigned len);
void emu_write_bytes(struct emu_cpu *cpu, uint64_t la, const void *src, unsigned len);
/* Take up a change of the machine's A20 gate (cheap when there is none): physical addresses then
 * have bit 20 cleared while the gate is off, and the TLB is flushed when that changes. */
void emu_a20_sync(struct emu_cpu *cpu);
void emu_tlb_flush(struct emu_cpu *cpu);
void emu_tlb_flush_page(struct emu_cpu *cpu, uint64_t la);
/* Remove fast-path write access to every TLB entry mapping guest-physical page gpa. */
void emu_tlb_protect_code(struct emu_cpu *cpu, uint64_t gpa);

/* Linear address of seg:offset (adds the segment base in legacy modes and for FS/GS in
 * 64-bit mode; checks canonical form in 64-bit mode and limits otherwise). */
uint64_t emu_seg_linear_checked(struct emu_cpu *cpu, int seg, uint64_t offset, unsigned size, enum emu_access acc);

/* A flat segment (base 0, 4 GiB limit, usable, and of a type that permits `acc`: readable code
 * or expand-up data, writable data for a write) needs no checks outside 64-bit mode: what every
 * 32-bit OS loads into its code, data and stack segments. */
static inline bool emu_seg_flat(const struct cpu_segment *s, enum emu_access acc)
{
    if (s->base || s->limit != 0xffffffffu || s->unusable || !s->s) return false;
    if (acc == ACC_WRITE) return (s->type & 0xE) == 0x2;    /* data, expand-up, writable */
    return (s->type & 0xA) != 0x8 && (s->type & 0xC) != 0x4; /* not execute-only, not expand-down */
}

/* The linear address of seg:offset for an access of `size` bytes (emu_seg_linear_checked: the
 * limit and type checks), with flat segments outside 64-bit mode taken inline. */
static inline uint64_t emu_seg_linear(struct emu_cpu *cpu, int seg, uint64_t offset, unsigned size, enum emu_access acc)
{
    if (!cpu->long64 && emu_seg_flat(&cpu->s.seg[seg], acc) && offset + (size ? size - 1 : 0) <= 0xffffffffu)
        return offset;
    return emu_seg_linear_checked(cpu, seg, offset, size, acc);
}

/* Translate one page for an access at the given privilege (user = the access is a CPL3
 * user-mode access; implicit descriptor/TSS/IDT accesses pass false). Installs a TLB entry
 * only when `user` matches the current CPL. Returns the host pointer of la, or NULL for
 * MMIO with *gpa set. Raises #PF / #GP on a fault. */
void *mmu_lookup(struct emu_cpu *cpu, uint64_t la, enum emu_access acc, bool user, uint64_t *gpa);
uint64_t mmu_read(struct emu_cpu *cpu, uint64_t la, unsigned size, enum emu_access acc, bool user);
void mmu_write(struct emu_cpu *cpu, uint64_t la, uint64_t val, unsigned size, bool user);
/* Raise now any fault a write of [la, la+len) would raise (so later writes cannot fail). */
void mmu_probe_write(struct emu_cpu *cpu, uint64_t la, unsigned len, bool user);

/* Flag in the low bits of emu_tlb_entry.gpa_page: the entry was filled at CPL0..2 and grants
 * access CPL3 does not have. */
#define EMU_TLB_PRIVILEGED 1ULL
/* Drop those entries: called when the CPU enters CPL3 from a more privileged level. */
void emu_tlb_drop_privileged(struct emu_cpu *cpu);

/* Fast paths: the TLB hit case inline, everything else in the slow path. `la` is linear. */
static inline uint64_t emu_tlb_tag(uint64_t la) { return ((la >> 12) << 1) | 1; }
static inline struct emu_tlb_entry *emu_tlb_slot(struct emu_cpu *cpu, uint64_t la)
{
    return &cpu->tlb[(la >> 12) & (EMU_TLB_SIZE - 1)];
}
#define EMU_DEFINE_ACCESS(bits)                                                                   \
    static inline uint##bits##_t emu_read##bits(struct emu_cpu *cpu, uint64_t la)                 \
    {                                                                                             \
        struct emu_tlb_entry *e = emu_tlb_slot(cpu, la);                                          \
        if (__builtin_expect(e->tag_read == emu_tlb_tag(la) && ((la & 0xfff) <= 4096 - bits / 8), 1)) { \
            uint##bits##_t v;                                                                     \
            __builtin_memcpy(&v, (void *)(e->host_addend + la), sizeof(v));                       \
            return v;                                                                             \
        }                                                                                         \
        return (uint##bits##_t)emu_read_slow(cpu, la, bits / 8, ACC_READ);                        \
    }                                                                                             \
    static inline void emu_write##bits(struct emu_cpu *cpu, uint64_t la, uint##bits##_t v)        \
    {                                                                                             \
        struct emu_tlb_entry *e = emu_tlb_slot(cpu, la);                                          \
        if (__builtin_expect(e->tag_write == emu_tlb_tag(la) && ((la & 0xfff) <= 4096 - bits / 8), 1)) { \
            __builtin_memcpy((void *)(e->host_addend + la), &v, sizeof(v));                       \
            return;                                                                               \
        }                                                                                         \
        emu_write_slow(cpu, la, v, bits / 8);                                                     \
    }
EMU_DEFINE_ACCESS(8)
EMU_DEFINE_ACCESS(16)
EMU_DEFINE_ACCESS(32)
EMU_DEFINE_ACCESS(64)
#undef EMU_DEFINE_ACCESS

#endif
