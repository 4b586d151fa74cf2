/* sys: the emulator's system instructions (sys.c: control and debug registers, descriptor-table
 * registers, INVLPG, CLTS, WBINVD, XGETBV/XSETBV, SMSW/LMSW, RDTSC, IN/OUT, HLT, CLI/STI; msr.c:
 * RDMSR/WRMSR and kvmclock; cpuid.c: CPUID), decoded by exec and carried out here. Each
 * validates privilege and operands and raises as the SDM says. Layer: above except.h.
 */
#ifndef VMD_EMU_SYS_H
#define VMD_EMU_SYS_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/emu/cpu.h"

void emu_sys_mov_to_cr(struct emu_cpu *cpu, int cr, uint64_t val);
uint64_t emu_sys_mov_from_cr(struct emu_cpu *cpu, int cr);
void emu_sys_mov_to_dr(struct emu_cpu *cpu, int dr, uint64_t val);
uint64_t emu_sys_mov_from_dr(struct emu_cpu *cpu, int dr);
void emu_sys_lgdt_lidt(struct emu_cpu *cpu, bool idt, uint64_t la);     /* la: pseudo-descriptor */
void emu_sys_sgdt_sidt(struct emu_cpu *cpu, bool idt, uint64_t la);
void emu_sys_lldt(struct emu_cpu *cpu, uint16_t sel);
void emu_sys_ltr(struct emu_cpu *cpu, uint16_t sel);
void emu_sys_invlpg(struct emu_cpu *cpu, uint64_t la);
uint64_t emu_sys_rdtsc(struct emu_cpu *cpu); /* checks CR4.TSD */
void emu_sys_in(struct emu_cpu *cpu, uint16_t port, unsigned size, uint64_t *val);  /* checks IOPL */
void emu_sys_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint64_t val);
void emu_sys_hlt(struct emu_cpu *cpu);     /* CPL0 check; sets s.halted, emu_exec returns */
void emu_sys_cli(struct emu_cpu *cpu);
void emu_sys_sti(struct emu_cpu *cpu);     /* sets the one-instruction interrupt shadow */
void emu_sys_clts(struct emu_cpu *cpu);
void emu_sys_wbinvd(struct emu_cpu *cpu);
uint64_t emu_sys_xgetbv(struct emu_cpu *cpu);
void emu_sys_xsetbv(struct emu_cpu *cpu);
uint16_t emu_sys_smsw(struct emu_cpu *cpu);
void emu_sys_lmsw(struct emu_cpu *cpu, uint16_t val);
/* Guest TSC now. */
uint64_t sys_tsc_now(const struct emu_cpu *cpu);

/* msr.c */
void emu_sys_rdmsr(struct emu_cpu *cpu);  /* ECX -> EDX:EAX */
void emu_sys_wrmsr(struct emu_cpu *cpu);
/* kvmclock, for a guest that booted under kvm and was restored on the emulator: (re)write the
 * pvclock page registered in cpu->s.kvm_system_time so the guest's clock carries on at this
 * TSC rate, and the wall-clock structure at cpu->s.kvm_wall_clock. */
void emu_kvmclock_update(struct emu_cpu *cpu);
void emu_kvmclock_wall(struct emu_cpu *cpu);
/* pvclock scaling: ns = ((delta << shift, or >> -shift) * mul) >> 32 for a TSC of tsc_khz. */
void emu_pvclock_scale(uint64_t tsc_khz, uint32_t *mul, int8_t *shift);
uint64_t emu_pvclock_ns(uint64_t delta, uint32_t mul, int8_t shift);

/* cpuid.c */
void emu_sys_cpuid(struct emu_cpu *cpu);

#endif
