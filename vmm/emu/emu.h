/* emu: the face of vmd's software x86-64 emulator (the "emu" CPU backend) to the rest of vmd and
 * to the tests: the whole interface in one include, and the CPU set-up of backend.c.
 *
 * Inside vmm/emu every file includes only the layers it builds on (cpu.h says which, bottom
 * up): cpu -> flags -> mmu -> except -> sys -> exec (decode, exec_*.c) -> icache -> backend.
 * The three parts:
 *   exec   (decode.c, exec_*.c, flags.c, icache.c)  decoding, the integer instruction set,
 *          lazy flags, the decoded-instruction cache and the dispatch loop (emu_exec).
 *   system (mmu.c, except.c, sys.c, msr.c, cpuid.c, backend.c)  linear->physical translation
 *          with a software TLB, segment loads, exceptions and interrupt delivery, control
 *          registers, MSRs, CPUID, system instructions, and the cpu_backend glue (vcpu_run, HLT,
 *          IRQs).
 *   fpu    (fpu_sse.c, fpu_x87.c / fpu_sse.h)       x87, MMX, SSE/SSE2(+), FXSAVE/FXRSTOR.
 */
#ifndef VMD_EMU_H
#define VMD_EMU_H

#include "vmm/emu/cpu.h"
#include "vmm/emu/except.h"
#include "vmm/emu/flags.h"
#include "vmm/emu/icache.h"
#include "vmm/emu/mmu.h"
#include "vmm/emu/sys.h"

/* The local APIC of vCPU v on the APIC platform (emu backend), else NULL. */
struct lapic *emu_vcpu_lapic(struct vcpu *v);

/* Standalone use (tests, differential harness): a CPU over a flat RAM buffer with no machine. */
int emu_cpu_init(struct emu_cpu *cpu, struct machine *m);
void emu_cpu_destroy(struct emu_cpu *cpu);

#endif
