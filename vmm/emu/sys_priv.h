/* sys_priv: helpers shared by the emulator's system part (mmu.c, except.c, sys.c, cpuid.c,
 * msr.c, backend.c) and nobody else: memory accesses with an explicit privilege (implicit
 * supervisor accesses to descriptor tables, the TSS and the IDT), descriptor parsing and the
 * mode bookkeeping that the exception and system-instruction code share.
 */
#ifndef VMD_EMU_SYS_PRIV_H
#define VMD_EMU_SYS_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/emu/emu.h"

/* Physical address width reported in CPUID 0x80000008 and enforced in page-table entries. */
#define EMU_MAXPHYADDR 40
#define EMU_PHYS_MASK ((1ULL << EMU_MAXPHYADDR) - 1)

/* RFLAGS bits the system part needs beyond cpu_state.h */
#define RFLAGS_IOPL (3ULL << 12)
#define RFLAGS_NT (1ULL << 14)
#define RFLAGS_RF (1ULL << 16)
#define RFLAGS_VM (1ULL << 17)
#define RFLAGS_AC (1ULL << 18)
#define RFLAGS_VIF (1ULL << 19)
#define RFLAGS_VIP (1ULL << 20)
#define RFLAGS_ID (1ULL << 21)

#define CR4_TSD (1ULL << 2)
#define CR4_DE (1ULL << 3)
#define CR0_NW (1ULL << 29)
#define CR0_CD (1ULL << 30)

static inline bool emu_canonical(uint64_t la) { return (uint64_t)(((int64_t)(la << 16)) >> 16) == la; }

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
void emu_tlb_drop_privileged(struct emu_cpu *cpu);

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

/* Guest TSC now. */
uint64_t sys_tsc_now(const struct emu_cpu *cpu);

/* kvmclock (msr.c), for a guest that booted under kvm and was restored on the emulator:
 * (re)write the pvclock page registered in cpu->s.kvm_system_time so the guest's clock carries
 * on at this TSC rate, and the wall-clock structure at cpu->s.kvm_wall_clock. */
void emu_kvmclock_update(struct emu_cpu *cpu);
void emu_kvmclock_wall(struct emu_cpu *cpu);
/* pvclock scaling: ns = ((delta << shift, or >> -shift) * mul) >> 32 for a TSC of tsc_khz. */
void emu_pvclock_scale(uint64_t tsc_khz, uint32_t *mul, int8_t *shift);
uint64_t emu_pvclock_ns(uint64_t delta, uint32_t mul, int8_t shift);

#endif
