/* seg: descriptors, the segment-register caches the system part builds, and the mode cache
 * (emu_update_mode) of the emulator. Below except.c, realmode.c and task.c, which all use it;
 * above cpu.h and mmu.h.
 */
#ifndef VMD_EMU_SEG_H
#define VMD_EMU_SEG_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/emu/cpu.h"

/* Re-derive cpl/long64/code32/paging after a change of CR0, CR4, EFER or CS. */
void emu_update_mode(struct emu_cpu *cpu);

/* Descriptors */
struct emu_desc {
    uint32_t lo, hi;   /* the 8-byte descriptor */
    uint64_t base_hi;  /* bits 63:32 of the base for 16-byte system descriptors */
};
/* Read the descriptor for `sel` from the GDT or LDT. Raises #GP(sel & ~3) (plus `ext`) if the
 * selector lies beyond the table limit. `sys16`: read a 16-byte long-mode system descriptor. */
void desc_read(struct emu_cpu *cpu, uint16_t sel, struct emu_desc *d, bool sys16, uint32_t ext);
/* Set the accessed bit of a code/data descriptor in memory if it is clear. */
void desc_set_accessed(struct emu_cpu *cpu, uint16_t sel, struct emu_desc *d);
void desc_to_seg(const struct emu_desc *d, uint16_t sel, struct cpu_segment *seg);
static inline unsigned desc_dpl(const struct emu_desc *d) { return (d->hi >> 13) & 3; }
static inline bool desc_present(const struct emu_desc *d) { return (d->hi >> 15) & 1; }
static inline bool desc_s(const struct emu_desc *d) { return (d->hi >> 12) & 1; }
static inline unsigned desc_type(const struct emu_desc *d) { return (d->hi >> 8) & 15; }
static inline bool desc_is_code(const struct emu_desc *d) { return desc_s(d) && (desc_type(d) & 8); }
static inline bool desc_l(const struct emu_desc *d) { return (d->hi >> 21) & 1; }
static inline bool desc_db(const struct emu_desc *d) { return (d->hi >> 22) & 1; }

/* Segment register values the system part builds directly */
void seg_load_flat_code(struct cpu_segment *s, uint16_t sel, unsigned dpl, bool l);
void seg_load_flat_data(struct cpu_segment *s, uint16_t sel, unsigned dpl);
void seg_load_null(struct cpu_segment *s, uint16_t sel);

/* Load CS from a code-segment descriptor (already checked) and update the mode. */
void sys_set_cs(struct emu_cpu *cpu, const struct emu_desc *d, uint16_t sel, unsigned cpl);

#endif
