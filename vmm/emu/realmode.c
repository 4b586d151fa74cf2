/* realmode: real mode (CR0.PE clear) for the emulator: delivery through the interrupt vector
 * table, IRET, far JMP/CALL/RET and segment-register loads, which keep the cached limit and
 * attributes (unreal mode). Interface and the choices made: realmode.h.
 *
 * Everything here runs at CPL 0 without paging: linear addresses are physical, wrapped at
 * 4 GiB (the A20 gate is not modelled: always enabled). Stack accesses use SP or ESP by the
 * cached SS.B bit, as every other stack operation does; every check (stack and CS limits)
 * happens before any state changes, so a fault leaves the instruction restartable.
 */
#include "vmm/emu/realmode.h"

#include "vmm/emu/seg.h"
#include "vmm/emu/flags.h"
#include "vmm/emu/mmu.h"

/* FLAGS bits IRET restores (the six arithmetic flags, TF IF DF, IOPL and NT); with a 32-bit
 * operand size also RF, AC and ID, while VM, VIF and VIP keep their values. */
#define REAL_IRET_FLAGS16 0x7fd5ULL
#define REAL_IRET_FLAGS32 0x257fd5ULL
#define REAL_IRET_KEEP32 0x1a0000ULL

static uint64_t sp_mask(const struct emu_cpu *cpu) { return cpu->s.seg[SEG_SS].db ? 0xffffffffULL : 0xffffULL; }

/* CS = sel, base sel << 4; the cached limit and attributes (CS.D among them) stay. */
static void real_set_cs(struct emu_cpu *cpu, uint16_t sel)
{
    struct cpu_segment *cs = &cpu->s.seg[SEG_CS];
    cs->selector = sel;
    cs->base = (uint64_t)sel << 4;
    cs->unusable = 0;
    emu_update_mode(cpu);
}

/* The linear address of the next `size`-byte push below *sp (updated; within the stack size),
 * checked against SS's cached limit (#SS(0)). */
static uint64_t push_slot(struct emu_cpu *cpu, uint64_t *sp, unsigned size)
{
    *sp = (*sp - size) & sp_mask(cpu);
    return emu_seg_linear(cpu, SEG_SS, *sp, size, ACC_WRITE);
}

/* Read the next `size`-byte slot at *sp (advanced). */
static uint64_t pop_slot(struct emu_cpu *cpu, uint64_t *sp, unsigned size)
{
    uint64_t la = emu_seg_linear(cpu, SEG_SS, *sp, size, ACC_READ);
    uint64_t v = mmu_read(cpu, la, size, ACC_READ, false);
    *sp = (*sp + size) & sp_mask(cpu);
    return v;
}

static void set_sp(struct emu_cpu *cpu, uint64_t sp)
{
    uint64_t m = sp_mask(cpu);
    cpu->s.gpr[GPR_RSP] = (cpu->s.gpr[GPR_RSP] & ~m) | (sp & m);
}

void real_deliver(struct emu_cpu *cpu, unsigned vector)
{
    if ((uint64_t)vector * 4 + 3 > cpu->s.idtr.limit) emu_raise(cpu, EXC_GP, vector * 8 + 2, true);
    uint32_t entry = (uint32_t)mmu_read(cpu, (cpu->s.idtr.base + vector * 4) & 0xffffffffULL, 4, ACC_READ, false);
    uint64_t flags = emu_get_rflags(cpu);
    const uint16_t frame[3] = {(uint16_t)flags, cpu->s.seg[SEG_CS].selector, (uint16_t)cpu->s.rip};
    uint64_t sp = cpu->s.gpr[GPR_RSP] & sp_mask(cpu), la[3];
    for (unsigned i = 0; i < 3; i++) la[i] = push_slot(cpu, &sp, 2);
    for (unsigned i = 0; i < 3; i++) mmu_write(cpu, la[i], frame[i], 2, false);

    real_set_cs(cpu, (uint16_t)(entry >> 16));
    cpu->s.rip = entry & 0xffff;
    set_sp(cpu, sp);
    emu_set_rflags(cpu, flags & ~(RFLAGS_IF | RFLAGS_TF | RFLAGS_AC | RFLAGS_RF));
    cpu->s.interrupt_shadow = 0;
    cpu->s.halted = 0;
}

void real_iret(struct emu_cpu *cpu, unsigned opsize)
{
    uint64_t sp = cpu->s.gpr[GPR_RSP] & sp_mask(cpu);
    uint64_t ip = pop_slot(cpu, &sp, opsize);
    uint16_t cs = (uint16_t)pop_slot(cpu, &sp, opsize);
    uint64_t popped = pop_slot(cpu, &sp, opsize);
    if (ip > cpu->s.seg[SEG_CS].limit) emu_raise_gp0(cpu);
    uint64_t cur = emu_get_rflags(cpu), flags;
    if (opsize == 4)
        flags = (popped & REAL_IRET_FLAGS32) | (cur & REAL_IRET_KEEP32);
    else
        flags = (cur & ~REAL_IRET_FLAGS16) | (popped & REAL_IRET_FLAGS16);
    real_set_cs(cpu, cs);
    cpu->s.rip = ip;
    set_sp(cpu, sp);
    emu_set_rflags(cpu, flags | RFLAGS_FIXED);
}

void real_far_jmp_call(struct emu_cpu *cpu, uint16_t sel, uint64_t offset, bool call, unsigned opsize)
{
    uint64_t ip = offset & (opsize == 2 ? 0xffffULL : 0xffffffffULL);
    if (ip > cpu->s.seg[SEG_CS].limit) emu_raise_gp0(cpu);
    uint64_t sp = cpu->s.gpr[GPR_RSP] & sp_mask(cpu);
    if (call) {
        uint64_t la_cs = push_slot(cpu, &sp, opsize);
        uint64_t la_ip = push_slot(cpu, &sp, opsize);
        mmu_write(cpu, la_cs, cpu->s.seg[SEG_CS].selector, opsize, false);
        mmu_write(cpu, la_ip, cpu->s.rip & (opsize == 2 ? 0xffffULL : 0xffffffffULL), opsize, false);
        set_sp(cpu, sp);
    }
    real_set_cs(cpu, sel);
    cpu->s.rip = ip;
}

void real_far_ret(struct emu_cpu *cpu, unsigned opsize, uint16_t pop_bytes)
{
    uint64_t sp = cpu->s.gpr[GPR_RSP] & sp_mask(cpu);
    uint64_t ip = pop_slot(cpu, &sp, opsize);
    uint16_t cs = (uint16_t)pop_slot(cpu, &sp, opsize);
    if (ip > cpu->s.seg[SEG_CS].limit) emu_raise_gp0(cpu);
    real_set_cs(cpu, cs);
    cpu->s.rip = ip;
    set_sp(cpu, sp + pop_bytes);
}

void real_load_seg(struct emu_cpu *cpu, int seg, uint16_t sel)
{
    struct cpu_segment *s = &cpu->s.seg[seg];
    s->selector = sel;
    s->base = (uint64_t)sel << 4;
    s->unusable = 0; /* a null selector loaded in protected mode is usable again */
    if (seg == SEG_SS) cpu->s.interrupt_shadow = 1;
}
