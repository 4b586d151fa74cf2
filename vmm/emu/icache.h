/* icache: the decoded-block cache and the dispatch loop emu_exec, the top of the emulator's
 * exec part (see icache.c). Layer: above exec.h.
 */
#ifndef VMD_EMU_ICACHE_H
#define VMD_EMU_ICACHE_H

#include <stdint.h>

#include "vmm/emu/cpu.h"

/* Allocate the cache (and the code bitmap if the CPU has none) and install the
 * cpu->code_written hook through which the MMU reports writes to cached code. */
int emu_exec_init(struct emu_cpu *cpu);
void emu_exec_destroy(struct emu_cpu *cpu);
/* Execute instructions until `budget` instructions ran, cpu->irq_check became non-zero,
 * or an instruction needs the run loop (HLT, a stop request). Exceptions raised inside are
 * delivered (emu_deliver_exception) before returning or continuing. Returns how many ran. */
uint64_t emu_exec(struct emu_cpu *cpu, uint64_t budget);
/* A guest-physical page that held cached code was written: drop its decoded instructions. */
void emu_code_written(struct emu_cpu *cpu, uint64_t gpa);
/* Drop the whole decoded-instruction cache (e.g. after a snapshot restore). */
void emu_icache_flush(struct emu_cpu *cpu);

#endif
