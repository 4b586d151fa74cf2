/* realmode: the emulator's real mode (CR0.PE clear): events through the interrupt vector
 * table, IRET, far JMP/CALL/RET and segment-register loads. except.c's shared entry points
 * (deliver, emu_sys_iret, emu_sys_far_jmp_call, emu_sys_far_ret, emu_sys_load_seg) hand over to
 * these at their tops when emu_real_mode() holds. Layer: beside except.c (above cpu.h, flags.h
 * and mmu.h).
 *
 * Segment caches: a real-mode segment load (MOV/POP Sreg, LDS/LES, far transfers, IVT vectors)
 * sets the selector and base = selector << 4 and keeps the cached limit and attributes, as the
 * processor does. That is what makes unreal ("big real") mode work: a segment loaded with a
 * 4 GiB limit in protected mode keeps that limit after CR0.PE is cleared, and 32-bit offsets
 * through it reach all of memory. Limits are checked with the cached limit (#GP(0), #SS(0) for
 * SS); the decoder's default operand and address size comes from the cached CS.D bit, as on
 * hardware and in QEMU (so code that leaves protected mode with a 32-bit CS still loaded runs as
 * 32-bit code until CS is reloaded from a 16-bit descriptor).
 */
#ifndef VMD_EMU_REALMODE_H
#define VMD_EMU_REALMODE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/emu/cpu.h"

static inline bool emu_real_mode(const struct emu_cpu *cpu) { return !(cpu->s.cr0 & CR0_PE); }

/* Deliver event `vector` through the IVT at IDTR.base (4-byte entries IP, CS): pushes FLAGS, CS
 * and IP (2 bytes each; no error code), clears IF, TF, AC and RF. A vector beyond IDTR.limit
 * raises #GP(0); a push beyond the stack limit #SS(0). Changes nothing before both succeeded. */
void real_deliver(struct emu_cpu *cpu, unsigned vector);
/* IRET with a 16- or 32-bit operand size. */
void real_iret(struct emu_cpu *cpu, unsigned opsize);
/* JMP/CALL ptr16:16/32 and m16:16/32: CS = sel (base sel << 4), IP = offset (#GP(0) beyond the
 * cached CS limit); CALL pushes CS and IP of the operand size first. */
void real_far_jmp_call(struct emu_cpu *cpu, uint16_t sel, uint64_t offset, bool call, unsigned opsize);
/* RETF / RETF imm16. */
void real_far_ret(struct emu_cpu *cpu, unsigned opsize, uint16_t pop_bytes);
/* MOV/POP Sreg, LDS/LES/LSS/LFS/LGS: selector and base only (see above). */
void real_load_seg(struct emu_cpu *cpu, int seg, uint16_t sel);

#endif
