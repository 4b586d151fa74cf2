/* except: the emulator's protected-mode machinery: segment-register loads, exception and
 * interrupt delivery through the IDT of long mode or of legacy
 * protected mode (#DF, triple fault), INT n,
 * IRET, SYSCALL/SYSRET, SWAPGS, far JMP/CALL/RET through code-segment descriptors and the
 * stack helpers (except.c); call gates, task switches, virtual-8086 mode and the TSS I/O
 * permission bitmap (task.c); real mode (realmode.h). Layer: above cpu.h, flags.h, mmu.h and
 * seg.h (descriptors, segment caches, the mode cache), which it includes.
 *
 * Convention with the exec part: when an emu_sys_* function runs, s.rip already holds the
 * address of the next instruction and cpu->insn_rip the current one. Every function here
 * performs all memory accesses that can fault before it changes architectural state.
 */
#ifndef VMD_EMU_EXCEPT_H
#define VMD_EMU_EXCEPT_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/emu/cpu.h"
#include "vmm/emu/seg.h"

/* Deliver the pending exception (cpu->exc_vector) through the IDT, handling #DF and triple
 * fault (which requests a machine reset). Called by emu_exec after a longjmp. */
void emu_deliver_exception(struct emu_cpu *cpu);
/* Deliver external interrupt `vector` (IF was checked by the caller). */
void emu_deliver_interrupt(struct emu_cpu *cpu, uint8_t vector);

/* Instructions carried out here (`opsize` is 2, 4 or 8); each validates privilege and operands
 * and raises as the SDM says. */
void emu_sys_load_seg(struct emu_cpu *cpu, int seg, uint16_t selector); /* MOV Sreg, POP Sreg */
void emu_sys_int(struct emu_cpu *cpu, uint8_t vector, bool software_int3_or_into); /* INT n / INT3 / INTO */
void emu_sys_iret(struct emu_cpu *cpu, unsigned opsize);
void emu_sys_syscall(struct emu_cpu *cpu);
void emu_sys_sysret(struct emu_cpu *cpu, unsigned opsize);
void emu_sys_swapgs(struct emu_cpu *cpu);
void emu_sys_far_jmp_call(struct emu_cpu *cpu, uint16_t sel, uint64_t offset, bool call, unsigned opsize);
void emu_sys_far_ret(struct emu_cpu *cpu, unsigned opsize, uint16_t pop_bytes); /* RETF / RETF imm16 */
/* Stack helpers honouring SS/stack-size rules for the current mode. */
void emu_push(struct emu_cpu *cpu, uint64_t val, unsigned size);
uint64_t emu_pop(struct emu_cpu *cpu, unsigned size);

/* task.c: far CALL/JMP to the system descriptor `d` (read for `sel`): a call gate, a TSS or a
 * task gate; #GP(sel) for any other type. */
void emu_far_system(struct emu_cpu *cpu, uint16_t sel, const struct emu_desc *d, bool call);
/* task.c: an event through the task gate `gate` (the 8-byte IDT entry, already checked for its
 * DPL and P): a task switch with nesting, then `error` pushed on the new task's stack. */
void emu_task_gate_event(struct emu_cpu *cpu, uint64_t gate, uint32_t error, bool has_error, uint32_t ext);
/* task.c: the IRETs it carries out (a task return through the back-link when EFLAGS.NT is set
 * outside IA-32e mode); false: an ordinary IRET for emu_sys_iret. */
bool emu_iret_special(struct emu_cpu *cpu, unsigned opsize);
/* task.c, virtual-8086 mode (EFLAGS.VM=1): */
/* an event through an interrupt/trap gate to the CPL0 code segment `cd` (selector `sel`, gate
 * type `gate_type`, already checked for type, DPL and P): the frame GS FS DS ES SS ESP EFLAGS
 * CS EIP [error] on SS0:ESP0, DS ES FS GS nulled; #GP(sel) if `cd` is not a CPL0 segment */
void emu_v86_deliver(struct emu_cpu *cpu, const struct emu_desc *cd, uint16_t sel, uint64_t target,
                     unsigned gate_type, uint32_t error, bool has_error, uint32_t ext);
void emu_v86_load_seg(struct emu_cpu *cpu, int seg, uint16_t sel); /* base sel * 16, limit 0xffff */
void emu_v86_far_jmp_call(struct emu_cpu *cpu, uint16_t sel, uint64_t offset, bool call, unsigned opsize);
void emu_v86_far_ret(struct emu_cpu *cpu, unsigned opsize, uint16_t pop_bytes);
/* true when an IOPL-sensitive instruction (CLI STI PUSHF POPF INT n IRET) must raise #GP(0):
 * virtual-8086 mode with IOPL < 3 */
bool emu_v86_iopl_trap(const struct emu_cpu *cpu);
/* The TSS I/O permission bitmap allows `size` bytes at `port` (false without a 32/64-bit TSS
 * or when the bitmap does not cover them). */
bool emu_io_permitted(struct emu_cpu *cpu, uint16_t port, unsigned size);

#endif
