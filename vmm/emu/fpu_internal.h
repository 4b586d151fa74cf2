/* fpu_internal: helpers shared by the fpu part's files (fpu_sse.c: SSE/MMX/FXSAVE and the
 * dispatcher; fpu_x87.c: the x87 instruction set). Not for use outside vmm/emu/fpu_*.c.
 */
#ifndef VMD_EMU_FPU_INTERNAL_H
#define VMD_EMU_FPU_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "vmm/emu/fpu_sse.h"

/* FSW bits */
#define FSW_IE 0x0001u
#define FSW_DE 0x0002u
#define FSW_ZE 0x0004u
#define FSW_OE 0x0008u
#define FSW_UE 0x0010u
#define FSW_PE 0x0020u
#define FSW_SF 0x0040u
#define FSW_ES 0x0080u
#define FSW_C0 0x0100u
#define FSW_C1 0x0200u
#define FSW_C2 0x0400u
#define FSW_TOP_SHIFT 11
#define FSW_TOP_MASK 0x3800u
#define FSW_C3 0x4000u
#define FSW_B 0x8000u
#define FSW_CC (FSW_C0 | FSW_C1 | FSW_C2 | FSW_C3)

#define MXCSR_MASK_SUPPORTED 0x0000FFFFu /* FZ, RC, exception masks, DAZ, flags */

static inline unsigned fpu_top(const struct cpu_fxsave *fx) { return (fx->fsw >> FSW_TOP_SHIFT) & 7; }
static inline void fpu_set_top(struct cpu_fxsave *fx, unsigned top)
{
    fx->fsw = (uint16_t)((fx->fsw & ~FSW_TOP_MASK) | ((top & 7) << FSW_TOP_SHIFT));
}

/* FCW as the hardware keeps it: reserved bit 6 reads as 1, bits 7 and 13-15 as 0. */
static inline uint16_t fpu_fcw_canon(uint16_t v) { return (uint16_t)((v & 0x1F3F) | 0x40); }

/* After loading FCW/FSW: ES and B summarize the unmasked pending exceptions. */
static inline void fpu_update_es(struct cpu_fxsave *fx)
{
    if (fx->fsw & 0x3F & ~fx->fcw) fx->fsw |= FSW_ES | FSW_B;
    else fx->fsw &= (uint16_t)~(FSW_ES | FSW_B);
}

/* MMX instructions put the x87 unit in MMX state: TOP=0, every register valid. The register
 * file keeps ST(i) order (FXSAVE layout), so with TOP != 0 the array is rotated first so that
 * st[i] is physical register R(i) = MMi. */
void fpu_mmx_enter(struct cpu_fxsave *fx);

/* x87 escape opcodes D8..DF. */
enum fpu_result fpu_x87_exec(const struct fpu_op *op, struct fpu_env *env);

/* Full 16-bit tag word (FNSTENV/FNSAVE format) from the abridged FXSAVE tag and the registers. */
uint16_t fpu_full_tag_word(const struct cpu_fxsave *fx);
/* Abridged tag from a full tag word. */
uint8_t fpu_abridged_tag(uint16_t ftw);

#endif
