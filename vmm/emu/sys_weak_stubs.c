/* sys_weak_stubs: weak stand-ins for the functions the system part calls in the emulator's
 * exec and fpu parts and in the PIC model, so the system part builds and its unit tests run
 * before those parts land. Each real definition overrides its stub at link time; delete this
 * file once all of them are on main. The stubs execute nothing: emu_exec reports that no
 * instruction ran.
 */
#include <string.h>

#include "devices/pic.h"
#include "vmm/emu/emu.h"
#include "vmm/emu/fpu_sse.h"

__attribute__((weak)) int emu_exec_init(struct emu_cpu *cpu) { (void)cpu; return 0; }
__attribute__((weak)) void emu_exec_destroy(struct emu_cpu *cpu) { (void)cpu; }
__attribute__((weak)) uint64_t emu_exec(struct emu_cpu *cpu, uint64_t budget)
{
    (void)budget;
    cpu->s.halted = 1;
    return 0;
}
__attribute__((weak)) uint64_t emu_get_rflags(const struct emu_cpu *cpu) { return cpu->s.rflags; }
__attribute__((weak)) void emu_set_rflags(struct emu_cpu *cpu, uint64_t rflags) { cpu->s.rflags = rflags | 2; }
__attribute__((weak)) void emu_code_written(struct emu_cpu *cpu, uint64_t gpa)
{
    uint64_t pfn = gpa >> 12;
    if (pfn < cpu->code_bitmap_pages) cpu->code_bitmap[pfn >> 3] &= (uint8_t)~(1u << (pfn & 7));
}
__attribute__((weak)) void emu_icache_flush(struct emu_cpu *cpu) { (void)cpu; }

__attribute__((weak)) void fpu_sse_cpuid(uint32_t *leaf1_ecx, uint32_t *leaf1_edx)
{
    *leaf1_ecx |= 0;
    *leaf1_edx |= (1u << 0) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26); /* FPU MMX FXSR SSE SSE2 */
}
__attribute__((weak)) void fpu_reset(struct cpu_fxsave *fx)
{
    memset(fx, 0, sizeof(*fx));
    fx->fcw = 0x37f;
    fx->mxcsr = 0x1f80;
}

__attribute__((weak)) void pic_set_irq(struct pic *pic, unsigned irq, int level) { (void)pic; (void)irq; (void)level; }
__attribute__((weak)) bool pic_has_irq(const struct pic *pic) { (void)pic; return false; }
__attribute__((weak)) int pic_read_irq(struct pic *pic) { (void)pic; return -1; }
