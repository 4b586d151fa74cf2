/* except: exceptions and interrupts for the emulator: delivery through the 64-bit IDT (gate
 * checks, RSP0/IST stack switches, the frame, #DF and triple fault) and, outside long mode,
 * through the protected-mode IDT (16/32-bit gates, SSn:ESPn from the TSS), INT n, IRET, SYSCALL/SYSRET,
 * SWAPGS, far JMP/CALL/RET through code-segment descriptors, segment-register loads, the stack
 * helpers (descriptors and the mode cache are seg.c's). In real mode the shared entry points hand over
 * to realmode.c at their tops (the IVT, real-mode IRET, far transfers and segment loads); the
 * #DF / triple-fault logic (deliver_event) is the same for every mode. task.c carries out what
 * these hand it with one dispatching line each: far JMP/CALL through call gates, TSSs and task
 * gates (emu_far_system), IDT task gates (emu_task_gate_event), IRET with NT or to/in
 * virtual-8086 mode (emu_iret_special), events from v86 mode (emu_v86_deliver), and v86 segment
 * loads and far transfers (emu_v86_*). Interface and conventions: except.h.
 */
#include <string.h>

#include "vmm/emu/except.h"
#include "vmm/emu/flags.h"
#include "vmm/emu/mmu.h"
#include "vmm/emu/realmode.h"
#include "vmm/log.h"
#include "vmm/machine.h"

/* ---- the stack -------------------------------------------------------------------- */

static unsigned stack_size(const struct emu_cpu *cpu)
{
    if (cpu->long64) return 8;
    return cpu->s.seg[SEG_SS].db ? 4 : 2;
}

static uint64_t rsp_mask(unsigned ss_size)
{
    return ss_size == 8 ? ~0ULL : ss_size == 4 ? 0xffffffffULL : 0xffffULL;
}

/* Write `val` (size bytes) at SS:rsp-size without changing RSP; returns the new RSP. */
static uint64_t push_at(struct emu_cpu *cpu, uint64_t rsp, uint64_t val, unsigned size)
{
    unsigned ss = stack_size(cpu);
    uint64_t m = rsp_mask(ss);
    uint64_t nrsp = (rsp - size) & m;
    uint64_t la = emu_seg_linear(cpu, SEG_SS, nrsp, size, ACC_WRITE);
    mmu_write(cpu, la, val, size, cpu->cpl == 3);
    return (rsp & ~m) | nrsp;
}

static uint64_t pop_at(struct emu_cpu *cpu, uint64_t *rsp, unsigned size)
{
    unsigned ss = stack_size(cpu);
    uint64_t m = rsp_mask(ss);
    uint64_t off = *rsp & m;
    uint64_t la = emu_seg_linear(cpu, SEG_SS, off, size, ACC_READ);
    uint64_t v = mmu_read(cpu, la, size, ACC_READ, cpu->cpl == 3);
    *rsp = (*rsp & ~m) | ((off + size) & m);
    return v;
}

void emu_push(struct emu_cpu *cpu, uint64_t val, unsigned size)
{
    cpu->s.gpr[GPR_RSP] = push_at(cpu, cpu->s.gpr[GPR_RSP], val, size);
}

uint64_t emu_pop(struct emu_cpu *cpu, unsigned size)
{
    uint64_t rsp = cpu->s.gpr[GPR_RSP];
    uint64_t v = pop_at(cpu, &rsp, size);
    cpu->s.gpr[GPR_RSP] = rsp;
    return v;
}

/* ---- delivering --------------------------------------------------------------------- */

enum event_kind { EV_EXCEPTION, EV_EXTINT, EV_SOFTINT };

static uint64_t tss_read64(struct emu_cpu *cpu, unsigned off, uint32_t ext)
{
    const struct cpu_segment *tr = &cpu->s.seg[SEG_TR];
    if (tr->unusable || !tr->present || off + 7 > tr->limit) emu_raise(cpu, EXC_TS, (tr->selector & ~3u) | ext, true);
    return mmu_read(cpu, tr->base + off, 8, ACC_READ, false);
}

/* One attempt to deliver an event through the 64-bit IDT. Raises (longjmp) on a fault and
 * changes no state before every check and the whole frame write have succeeded. */
static void deliver_long(struct emu_cpu *cpu, unsigned vector, uint32_t error, bool has_error, enum event_kind kind)
{
    uint32_t ext = kind == EV_SOFTINT ? 0 : 1;
    uint32_t idt_err = vector * 8 + 2 + ext;
    if (vector * 16 + 15 > cpu->s.idtr.limit) emu_raise(cpu, EXC_GP, idt_err, true);
    uint64_t gate_lo = mmu_read(cpu, cpu->s.idtr.base + vector * 16, 8, ACC_READ, false);
    uint64_t gate_hi = mmu_read(cpu, cpu->s.idtr.base + vector * 16 + 8, 8, ACC_READ, false);
    unsigned type = (gate_lo >> 40) & 15;
    unsigned gate_dpl = (gate_lo >> 45) & 3;
    if (type != 0xe && type != 0xf) emu_raise(cpu, EXC_GP, idt_err, true);
    if (kind == EV_SOFTINT && gate_dpl < cpu->cpl) emu_raise(cpu, EXC_GP, vector * 8 + 2, true);
    if (!((gate_lo >> 47) & 1)) emu_raise(cpu, EXC_NP, idt_err, true);
    uint16_t sel = (uint16_t)(gate_lo >> 16);
    uint64_t target = (gate_lo & 0xffff) | ((gate_lo >> 32) & 0xffff0000ULL) | ((gate_hi & 0xffffffffULL) << 32);
    unsigned ist = (gate_lo >> 32) & 7;

    if ((sel & ~3u) == 0) emu_raise(cpu, EXC_GP, ext, true);
    struct emu_desc cd;
    desc_read(cpu, sel, &cd, false, ext);
    if (!desc_is_code(&cd) || !desc_l(&cd) || desc_db(&cd) || desc_dpl(&cd) > cpu->cpl)
        emu_raise(cpu, EXC_GP, (sel & ~3u) | ext, true);
    if (!desc_present(&cd)) emu_raise(cpu, EXC_NP, (sel & ~3u) | ext, true);
    bool conforming = desc_type(&cd) & 4;
    unsigned new_cpl = conforming ? cpu->cpl : desc_dpl(&cd);
    if (!emu_canonical(target)) emu_raise(cpu, EXC_GP, ext, true);

    uint64_t old_rsp = cpu->s.gpr[GPR_RSP];
    uint64_t rsp = old_rsp;
    bool stack_switch = new_cpl < cpu->cpl;
    if (stack_switch) rsp = tss_read64(cpu, 4 + 8 * new_cpl, ext);
    if (ist) rsp = tss_read64(cpu, 0x24 + 8 * (ist - 1), ext);
    rsp &= ~0xfULL;
    if (!emu_canonical(rsp) || !emu_canonical(rsp - 48)) emu_raise(cpu, EXC_SS, ext, true);

    uint64_t rflags = emu_get_rflags(cpu);
    uint64_t frame[6];
    unsigned n = 0;
    if (has_error) frame[n++] = error;
    frame[n++] = cpu->s.rip;
    frame[n++] = cpu->s.seg[SEG_CS].selector;
    frame[n++] = rflags;
    frame[n++] = old_rsp;
    frame[n++] = cpu->s.seg[SEG_SS].selector;
    uint64_t new_rsp = rsp - 8 * n;
    /* frame writes are supervisor accesses when the handler runs at CPL0..2 */
    bool user = new_cpl == 3;
    mmu_probe_write(cpu, new_rsp, 8 * n, user);
    for (unsigned i = 0; i < n; i++) mmu_write(cpu, new_rsp + 8 * i, frame[i], 8, user);

    /* commit */
    if (stack_switch) seg_load_null(&cpu->s.seg[SEG_SS], (uint16_t)new_cpl);
    desc_set_accessed(cpu, sel, &cd);
    sys_set_cs(cpu, &cd, sel, new_cpl);
    cpu->s.gpr[GPR_RSP] = new_rsp;
    cpu->s.rip = target;
    rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
    if (type == 0xe) rflags &= ~RFLAGS_IF;
    emu_set_rflags(cpu, rflags);
    cpu->s.interrupt_shadow = 0;
    cpu->s.halted = 0;
}

/* One attempt to deliver an event through the protected-mode IDT (8-byte gates) outside long
 * mode: 16- and 32-bit interrupt and trap gates, the stack switch through the TSS's SSn:ESPn
 * (32- or 16-bit TSS) on a change to an inner level, and the frame [SS ESP] EFLAGS CS EIP
 * [error] of the gate's size; task gates and events from virtual-8086 mode go to task.c. Like
 * deliver_long, changes no state before every check and write has succeeded. */
static void deliver_legacy(struct emu_cpu *cpu, unsigned vector, uint32_t error, bool has_error, enum event_kind kind)
{
    uint32_t ext = kind == EV_SOFTINT ? 0 : 1;
    uint32_t idt_err = vector * 8 + 2 + ext;
    if (vector * 8 + 7 > cpu->s.idtr.limit) emu_raise(cpu, EXC_GP, idt_err, true);
    uint64_t gate = mmu_read(cpu, cpu->s.idtr.base + vector * 8, 8, ACC_READ, false);
    unsigned type = (gate >> 40) & 15, gate_dpl = (gate >> 45) & 3;
    if (type != 5 && type != 6 && type != 7 && type != 0xe && type != 0xf) emu_raise(cpu, EXC_GP, idt_err, true);
    if (kind == EV_SOFTINT && gate_dpl < cpu->cpl) emu_raise(cpu, EXC_GP, vector * 8 + 2, true);
    if (!((gate >> 47) & 1)) emu_raise(cpu, EXC_NP, idt_err, true);
    if (type == 5) {
        emu_task_gate_event(cpu, gate, error, has_error, ext); /* a task gate: task.c */
        return;
    }
    unsigned gsz = type & 8 ? 4 : 2; /* 32- or 16-bit gate: the frame's slot size */
    uint16_t sel = (uint16_t)(gate >> 16);
    uint64_t target = (gate & 0xffff) | (gsz == 4 ? (gate >> 32) & 0xffff0000ULL : 0);

    if ((sel & ~3u) == 0) emu_raise(cpu, EXC_GP, ext, true);
    struct emu_desc cd;
    desc_read(cpu, sel, &cd, false, ext);
    if (!desc_is_code(&cd) || desc_dpl(&cd) > cpu->cpl) emu_raise(cpu, EXC_GP, (sel & ~3u) | ext, true);
    if (!desc_present(&cd)) emu_raise(cpu, EXC_NP, (sel & ~3u) | ext, true);
    if (cpu->s.rflags & RFLAGS_VM) {
        emu_v86_deliver(cpu, &cd, sel, target, type, error, has_error, ext); /* task.c */
        return;
    }
    bool conforming = desc_type(&cd) & 4;
    unsigned new_cpl = conforming ? cpu->cpl : desc_dpl(&cd);
    struct cpu_segment new_cs;
    desc_to_seg(&cd, (uint16_t)((sel & ~3u) | new_cpl), &new_cs);
    if (target > new_cs.limit) emu_raise(cpu, EXC_GP, ext, true);

    /* the stack: the current one, or SSn:ESPn from the TSS for an inner level */
    bool stack_switch = new_cpl < cpu->cpl;
    struct cpu_segment ss = cpu->s.seg[SEG_SS];
    uint64_t esp = cpu->s.gpr[GPR_RSP];
    struct emu_desc sd = {0};
    uint16_t new_ss = ss.selector;
    if (stack_switch) {
        const struct cpu_segment *tr = &cpu->s.seg[SEG_TR];
        bool tss32 = tr->type & 8; /* 9/11: 32-bit TSS; 1/3: 16-bit */
        unsigned off = tss32 ? 4 + 8 * new_cpl : 2 + 4 * new_cpl, w = tss32 ? 4 : 2;
        if (tr->unusable || !tr->present || off + 2 * w - 1 > tr->limit)
            emu_raise(cpu, EXC_TS, (tr->selector & ~3u) | ext, true);
        esp = mmu_read(cpu, tr->base + off, w, ACC_READ, false);
        new_ss = (uint16_t)mmu_read(cpu, tr->base + off + w, 2, ACC_READ, false);
        if ((new_ss & ~3u) == 0) emu_raise(cpu, EXC_TS, ext, true);
        desc_read(cpu, new_ss, &sd, false, ext);
        if ((new_ss & 3) != new_cpl || !desc_s(&sd) || (desc_type(&sd) & 8) || !(desc_type(&sd) & 2) ||
            desc_dpl(&sd) != new_cpl)
            emu_raise(cpu, EXC_TS, (new_ss & ~3u) | ext, true);
        if (!desc_present(&sd)) emu_raise(cpu, EXC_SS, (new_ss & ~3u) | ext, true);
        desc_to_seg(&sd, new_ss, &ss);
    }

    uint64_t rflags = emu_get_rflags(cpu);
    uint32_t frame[6];
    unsigned n = 0;
    if (stack_switch) {
        frame[n++] = cpu->s.seg[SEG_SS].selector;
        frame[n++] = (uint32_t)cpu->s.gpr[GPR_RSP];
    }
    frame[n++] = (uint32_t)rflags;
    frame[n++] = cpu->s.seg[SEG_CS].selector;
    frame[n++] = (uint32_t)cpu->s.rip;
    if (has_error) frame[n++] = error;
    /* the frame, pushed in that order below ESP (SP for a 16-bit stack), must fit the limit */
    uint64_t mask = ss.db ? 0xffffffffULL : 0xffffULL;
    uint64_t top = esp & mask, size = (uint64_t)n * gsz;
    bool expand_down = !(ss.type & 8) && (ss.type & 4);
    if (top < size || (!expand_down && top - 1 > ss.limit) || (expand_down && top - size <= ss.limit))
        emu_raise(cpu, stack_switch ? EXC_TS : EXC_SS, stack_switch ? (new_ss & ~3u) | ext : ext, true);
    uint64_t new_esp = top - size;
    bool user = new_cpl == 3;
    mmu_probe_write(cpu, (ss.base + new_esp) & 0xffffffffULL, (unsigned)size, user);
    for (unsigned i = 0; i < n; i++)
        mmu_write(cpu, (ss.base + top - (uint64_t)(i + 1) * gsz) & 0xffffffffULL, frame[i], gsz, user);

    /* commit */
    if (stack_switch) {
        desc_set_accessed(cpu, new_ss, &sd);
        cpu->s.seg[SEG_SS] = ss;
    }
    desc_set_accessed(cpu, sel, &cd);
    sys_set_cs(cpu, &cd, sel, new_cpl);
    cpu->s.gpr[GPR_RSP] = (esp & ~mask) | new_esp;
    cpu->s.rip = target;
    rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
    if (!(type & 1)) rflags &= ~RFLAGS_IF; /* interrupt gate */
    emu_set_rflags(cpu, rflags);
    cpu->s.interrupt_shadow = 0;
    cpu->s.halted = 0;
}

/* Through the IDT of the current mode (the IVT in real mode: realmode.c). */
static void deliver(struct emu_cpu *cpu, unsigned vector, uint32_t error, bool has_error, enum event_kind kind)
{
    if (emu_real_mode(cpu)) {
        real_deliver(cpu, vector);
        return;
    }
    if (cpu->s.efer & EFER_LMA) deliver_long(cpu, vector, error, has_error, kind);
    else deliver_legacy(cpu, vector, error, has_error, kind);
}

static void shutdown_on_triple_fault(struct emu_cpu *cpu)
{
    log_warn("emu: triple fault at RIP 0x%llx (CR2 0x%llx): resetting the machine",
             (unsigned long long)cpu->s.rip, (unsigned long long)cpu->s.cr2);
    cpu->triple_fault = 1;
    cpu->s.halted = 1;
    atomic_store(&cpu->irq_check, 1);
    if (cpu->m && cpu->m->stop_fd > 0) machine_request_stop(cpu->m, MACHINE_STOP_RESET);
}

enum exc_class { CLASS_BENIGN, CLASS_CONTRIB, CLASS_PF, CLASS_DF };

static enum exc_class exc_class(int v)
{
    switch (v) {
    case EXC_DE: case EXC_TS: case EXC_NP: case EXC_SS: case EXC_GP: return CLASS_CONTRIB;
    case EXC_PF: return CLASS_PF;
    case EXC_DF: return CLASS_DF;
    default: return CLASS_BENIGN;
    }
}

static void deliver_event(struct emu_cpu *cpu, unsigned vector, uint32_t error, bool has_error, enum event_kind kind)
{
    if (cpu->trace)
        log_debug("emu: %s %u err 0x%x at RIP 0x%llx CR2 0x%llx CPL %u", kind == EV_EXTINT ? "irq" : "exception",
                  vector, has_error ? error : 0, (unsigned long long)cpu->s.rip, (unsigned long long)cpu->s.cr2,
                  cpu->cpl);
    jmp_buf saved;
    memcpy(saved, cpu->fault_jmp, sizeof(saved));
    /* the state that changes across setjmp lives in volatile locals */
    volatile unsigned vec = vector;
    volatile uint32_t err = error;
    volatile bool has_err = has_error;
    volatile int k = kind;
    volatile unsigned rounds = 0;
    for (;;) {
        if (setjmp(cpu->fault_jmp) == 0) {
            deliver(cpu, vec, err, has_err, (enum event_kind)k);
            break;
        }
        /* a fault while delivering: combine the two as the SDM's table 6-5 says */
        int nv = cpu->exc_vector;
        enum exc_class first = k == EV_EXCEPTION ? exc_class((int)vec) : CLASS_BENIGN;
        enum exc_class second = exc_class(nv);
        if (cpu->trace) log_debug("emu: exception %d while delivering %u", nv, vec);
        if (first == CLASS_DF || ++rounds > 8) {
            shutdown_on_triple_fault(cpu);
            break;
        }
        if ((first == CLASS_CONTRIB && second == CLASS_CONTRIB) ||
            (first == CLASS_PF && (second == CLASS_CONTRIB || second == CLASS_PF))) {
            vec = EXC_DF;
            err = 0;
            has_err = true;
        } else {
            vec = (unsigned)nv;
            err = cpu->exc_error;
            has_err = cpu->exc_has_error;
        }
        if (k == EV_SOFTINT) cpu->s.rip = cpu->insn_rip; /* INT n faulted: the fault points at it */
        k = EV_EXCEPTION;
    }
    memcpy(cpu->fault_jmp, saved, sizeof(saved));
    cpu->exc_vector = -1;
}

void emu_deliver_exception(struct emu_cpu *cpu)
{
    int v = cpu->exc_vector;
    if (v < 0) return;
    deliver_event(cpu, (unsigned)v, cpu->exc_error, cpu->exc_has_error, EV_EXCEPTION);
}

void emu_deliver_interrupt(struct emu_cpu *cpu, uint8_t vector)
{
    cpu->s.halted = 0;
    deliver_event(cpu, vector, 0, false, EV_EXTINT);
}

void emu_sys_int(struct emu_cpu *cpu, uint8_t vector, bool software_int3_or_into)
{
    /* INT n, INT3 and INTO all check the gate DPL; INT n alone is IOPL-sensitive in v86 mode */
    if (!software_int3_or_into && emu_v86_iopl_trap(cpu)) emu_raise_gp0(cpu);
    /* faults while delivering are ordinary faults of the INT instruction: let emu_exec
     * reset RIP and deliver them (deliver changes no state before it succeeds) */
    if (cpu->trace)
        log_debug("emu: int %u at RIP 0x%llx", vector, (unsigned long long)cpu->insn_rip);
    deliver(cpu, vector, 0, false, EV_SOFTINT);
}

/* ---- returns, calls, SYSCALL ----------------------------------------------------------- */

#define RFLAGS_MODIFIABLE (0x3f7fd5ULL & ~RFLAGS_VM & ~(RFLAGS_VIF | RFLAGS_VIP))

/* Null every data segment register the new (outer) CPL may not use. */
static void null_outer_segments(struct emu_cpu *cpu, unsigned cpl)
{
    static const int segs[] = {SEG_DS, SEG_ES, SEG_FS, SEG_GS};
    for (unsigned i = 0; i < 4; i++) {
        struct cpu_segment *s = &cpu->s.seg[segs[i]];
        if (s->unusable) continue;
        bool conforming_code = (s->type & 8) && (s->type & 4);
        if (s->dpl < cpl && !conforming_code) {
            uint64_t base = s->base;
            seg_load_null(s, 0);
            if (segs[i] == SEG_FS || segs[i] == SEG_GS) s->base = base; /* 64-bit bases stay */
        }
    }
}

/* Check a code-segment selector for IRET / far RET to privilege `rpl`. */
static void check_return_cs(struct emu_cpu *cpu, uint16_t sel, struct emu_desc *d)
{
    if ((sel & ~3u) == 0) emu_raise_gp0(cpu);
    desc_read(cpu, sel, d, false, 0);
    unsigned rpl = sel & 3;
    if (!desc_is_code(d) || rpl < cpu->cpl) emu_raise(cpu, EXC_GP, sel & ~3u, true);
    bool conforming = desc_type(d) & 4;
    if (conforming ? desc_dpl(d) > rpl : desc_dpl(d) != rpl) emu_raise(cpu, EXC_GP, sel & ~3u, true);
    if (!desc_present(d)) emu_raise(cpu, EXC_NP, sel & ~3u, true);
}

static void check_return_ss(struct emu_cpu *cpu, uint16_t ss, unsigned rpl, bool to64, struct emu_desc *d)
{
    if ((ss & ~3u) == 0) {
        /* a null SS is allowed when returning to 64-bit code at CPL 0..2 */
        if (!to64 || rpl == 3 || (ss & 3) != rpl) emu_raise(cpu, EXC_GP, 0, true);
        d->lo = d->hi = 0;
        d->base_hi = 0;
        return;
    }
    desc_read(cpu, ss, d, false, 0);
    if ((ss & 3) != rpl || !desc_s(d) || (desc_type(d) & 8) || !(desc_type(d) & 2) || desc_dpl(d) != rpl)
        emu_raise(cpu, EXC_GP, ss & ~3u, true);
    if (!desc_present(d)) emu_raise(cpu, EXC_SS, ss & ~3u, true);
}

void emu_sys_iret(struct emu_cpu *cpu, unsigned opsize)
{
    if (emu_real_mode(cpu)) {
        real_iret(cpu, opsize);
        return;
    }
    if (emu_iret_special(cpu, opsize)) return; /* task return, to or in virtual-8086 mode: task.c */
    if (cpu->s.rflags & RFLAGS_NT) { /* task return: none in long mode, not implemented outside */
        if (!(cpu->s.efer & EFER_LMA)) log_error("emu: IRET with NT (task return) is not supported");
        emu_raise_gp0(cpu);
    }
    uint64_t rsp = cpu->s.gpr[GPR_RSP];
    uint64_t new_rip = pop_at(cpu, &rsp, opsize);
    uint16_t new_cs = (uint16_t)pop_at(cpu, &rsp, opsize);
    uint64_t new_flags = pop_at(cpu, &rsp, opsize);
    /* 64-bit mode always pops SS:RSP; other modes only on a return to an outer level */
    bool pop_stack = cpu->long64 || (new_cs & 3u) > cpu->cpl;
    uint64_t new_rsp = rsp;
    uint16_t new_ss = cpu->s.seg[SEG_SS].selector;
    if (pop_stack) {
        new_rsp = pop_at(cpu, &rsp, opsize);
        new_ss = (uint16_t)pop_at(cpu, &rsp, opsize);
    }
    if (opsize == 4) {
        new_flags = (cpu->s.rflags & ~0xffffffffULL) | new_flags;
    } else if (opsize == 2) {
        new_flags = (cpu->s.rflags & ~0xffffULL) | new_flags;
    }

    struct emu_desc cd, sd;
    check_return_cs(cpu, new_cs, &cd);
    unsigned rpl = new_cs & 3;
    bool to64 = desc_l(&cd) && (cpu->s.efer & EFER_LMA);
    if (to64 && !emu_canonical(new_rip)) emu_raise_gp0(cpu);
    if (!to64) new_rip &= desc_db(&cd) ? 0xffffffffULL : 0xffffULL;
    if (pop_stack) check_return_ss(cpu, new_ss, rpl, to64, &sd);

    /* commit */
    uint64_t cur = emu_get_rflags(cpu);
    uint64_t mask = RFLAGS_MODIFIABLE;
    if (cpu->cpl > 0) mask &= ~RFLAGS_IOPL;
    if (cpu->cpl > ((cur & RFLAGS_IOPL) >> 12)) mask &= ~RFLAGS_IF;
    if (opsize == 2) mask &= 0xffff;
    uint64_t flags = (cur & ~mask) | (new_flags & mask) | RFLAGS_FIXED;
    unsigned old_cpl = cpu->cpl;
    desc_set_accessed(cpu, new_cs, &cd);
    if (!pop_stack) {
        /* same level, compatibility mode: SS stays, ESP (or SP) moved past the three slots */
    } else if ((new_ss & ~3u) == 0) {
        seg_load_null(&cpu->s.seg[SEG_SS], new_ss);
    } else {
        desc_set_accessed(cpu, new_ss, &sd);
        desc_to_seg(&sd, new_ss, &cpu->s.seg[SEG_SS]);
    }
    sys_set_cs(cpu, &cd, new_cs, rpl);
    if (rpl > old_cpl) null_outer_segments(cpu, rpl);
    emu_set_rflags(cpu, flags);
    cpu->s.rip = new_rip;
    cpu->s.gpr[GPR_RSP] = to64 || !pop_stack ? new_rsp : new_rsp & 0xffffffffULL;
}

void emu_sys_syscall(struct emu_cpu *cpu)
{
    if (!(cpu->s.efer & EFER_SCE) || !(cpu->s.efer & EFER_LMA)) emu_raise_ud(cpu);
    uint64_t rflags = emu_get_rflags(cpu);
    uint16_t sel = (uint16_t)((cpu->s.star >> 32) & 0xffff);
    cpu->s.gpr[GPR_RCX] = cpu->s.rip;
    cpu->s.gpr[GPR_R11] = rflags & ~RFLAGS_RF;
    seg_load_flat_code(&cpu->s.seg[SEG_CS], sel & 0xfffc, 0, true);
    seg_load_flat_data(&cpu->s.seg[SEG_SS], (uint16_t)((sel + 8) & 0xfffc), 0);
    cpu->s.rip = cpu->long64 ? cpu->s.lstar : cpu->s.cstar;
    emu_update_mode(cpu);
    emu_set_rflags(cpu, (rflags & ~cpu->s.sfmask & ~RFLAGS_RF) | RFLAGS_FIXED);
}

void emu_sys_sysret(struct emu_cpu *cpu, unsigned opsize)
{
    if (!(cpu->s.efer & EFER_SCE)) emu_raise_ud(cpu);
    if (!cpu->long64 || cpu->cpl != 0) emu_raise_gp0(cpu);
    uint16_t sel = (uint16_t)((cpu->s.star >> 48) & 0xffff);
    uint64_t rip;
    if (opsize == 8) {
        rip = cpu->s.gpr[GPR_RCX];
        if (!emu_canonical(rip)) emu_raise_gp0(cpu); /* Intel: #GP in ring 0 */
        seg_load_flat_code(&cpu->s.seg[SEG_CS], (uint16_t)((sel + 16) | 3), 3, true);
    } else {
        rip = cpu->s.gpr[GPR_RCX] & 0xffffffffULL;
        seg_load_flat_code(&cpu->s.seg[SEG_CS], (uint16_t)(sel | 3), 3, false);
    }
    seg_load_flat_data(&cpu->s.seg[SEG_SS], (uint16_t)((sel + 8) | 3), 3);
    cpu->s.rip = rip;
    emu_set_rflags(cpu, (cpu->s.gpr[GPR_R11] & 0x3C7FD7ULL) | RFLAGS_FIXED);
    emu_update_mode(cpu);
}

void emu_sys_swapgs(struct emu_cpu *cpu)
{
    if (!cpu->long64) emu_raise_ud(cpu);
    if (cpu->cpl != 0) emu_raise_gp0(cpu);
    uint64_t t = cpu->s.seg[SEG_GS].base;
    cpu->s.seg[SEG_GS].base = cpu->s.kernel_gs_base;
    cpu->s.kernel_gs_base = t;
}

void emu_sys_far_jmp_call(struct emu_cpu *cpu, uint16_t sel, uint64_t offset, bool call, unsigned opsize)
{
    if (emu_real_mode(cpu)) {
        real_far_jmp_call(cpu, sel, offset, call, opsize);
        return;
    }
    if (cpu->s.rflags & RFLAGS_VM) {
        emu_v86_far_jmp_call(cpu, sel, offset, call, opsize); /* task.c */
        return;
    }
    if ((sel & ~3u) == 0) emu_raise_gp0(cpu);
    struct emu_desc d;
    desc_read(cpu, sel, &d, false, 0);
    if (!desc_s(&d)) {
        emu_far_system(cpu, sel, &d, call); /* call gates, TSSs, task gates: task.c */
        return;
    }
    if (!desc_is_code(&d)) emu_raise(cpu, EXC_GP, sel & ~3u, true);
    bool conforming = desc_type(&d) & 4;
    if (conforming ? desc_dpl(&d) > cpu->cpl : ((sel & 3) > cpu->cpl || desc_dpl(&d) != cpu->cpl))
        emu_raise(cpu, EXC_GP, sel & ~3u, true);
    if (!desc_present(&d)) emu_raise(cpu, EXC_NP, sel & ~3u, true);
    bool to64 = desc_l(&d) && (cpu->s.efer & EFER_LMA);
    uint64_t rip = to64 ? offset : offset & (opsize == 2 ? 0xffffULL : 0xffffffffULL);
    if (to64 && !emu_canonical(rip)) emu_raise_gp0(cpu);
    uint64_t rsp = cpu->s.gpr[GPR_RSP];
    if (call) {
        rsp = push_at(cpu, rsp, cpu->s.seg[SEG_CS].selector, opsize);
        rsp = push_at(cpu, rsp, cpu->s.rip, opsize);
    }
    desc_set_accessed(cpu, sel, &d);
    sys_set_cs(cpu, &d, sel, cpu->cpl);
    cpu->s.gpr[GPR_RSP] = rsp;
    cpu->s.rip = rip;
}

void emu_sys_far_ret(struct emu_cpu *cpu, unsigned opsize, uint16_t pop_bytes)
{
    if (emu_real_mode(cpu)) {
        real_far_ret(cpu, opsize, pop_bytes);
        return;
    }
    if (cpu->s.rflags & RFLAGS_VM) {
        emu_v86_far_ret(cpu, opsize, pop_bytes); /* task.c */
        return;
    }
    uint64_t rsp = cpu->s.gpr[GPR_RSP];
    uint64_t rip = pop_at(cpu, &rsp, opsize);
    uint16_t sel = (uint16_t)pop_at(cpu, &rsp, opsize);
    struct emu_desc cd, sd;
    check_return_cs(cpu, sel, &cd);
    unsigned rpl = sel & 3;
    bool to64 = desc_l(&cd) && (cpu->s.efer & EFER_LMA);
    if (to64 && !emu_canonical(rip)) emu_raise_gp0(cpu);
    if (!to64) rip &= opsize == 2 ? 0xffffULL : 0xffffffffULL;
    rsp += pop_bytes;
    uint64_t new_rsp = 0;
    uint16_t new_ss = 0;
    bool outer = rpl > cpu->cpl;
    if (outer) {
        new_rsp = pop_at(cpu, &rsp, opsize);
        new_ss = (uint16_t)pop_at(cpu, &rsp, opsize);
        check_return_ss(cpu, new_ss, rpl, to64, &sd);
        new_rsp += pop_bytes;
    }
    desc_set_accessed(cpu, sel, &cd);
    if (outer) {
        if ((new_ss & ~3u) == 0) seg_load_null(&cpu->s.seg[SEG_SS], new_ss);
        else desc_to_seg(&sd, new_ss, &cpu->s.seg[SEG_SS]);
        sys_set_cs(cpu, &cd, sel, rpl);
        null_outer_segments(cpu, rpl);
        cpu->s.gpr[GPR_RSP] = new_rsp;
    } else {
        sys_set_cs(cpu, &cd, sel, cpu->cpl);
        cpu->s.gpr[GPR_RSP] = rsp;
    }
    cpu->s.rip = rip;
}

/* ---- segment register loads ------------------------------------------------------------- */

void emu_sys_load_seg(struct emu_cpu *cpu, int seg, uint16_t sel)
{
    if (seg == SEG_CS || seg < 0 || seg > SEG_GS) emu_raise_ud(cpu);
    if (emu_real_mode(cpu)) {
        real_load_seg(cpu, seg, sel);
        return;
    }
    if (cpu->s.rflags & RFLAGS_VM) {
        emu_v86_load_seg(cpu, seg, sel); /* task.c */
        return;
    }
    unsigned cpl = cpu->cpl, rpl = sel & 3;
    struct cpu_segment ns;
    if ((sel & ~3u) == 0) {
        if (seg == SEG_SS && (!cpu->long64 || cpl == 3 || rpl != cpl)) emu_raise_gp0(cpu);
        seg_load_null(&ns, sel);
        if (seg == SEG_SS) ns.dpl = (uint8_t)cpl;
    } else {
        struct emu_desc d;
        desc_read(cpu, sel, &d, false, 0);
        unsigned dpl = desc_dpl(&d), type = desc_type(&d);
        if (seg == SEG_SS) {
            if (rpl != cpl || !desc_s(&d) || (type & 8) || !(type & 2) || dpl != cpl)
                emu_raise(cpu, EXC_GP, sel & ~3u, true);
            if (!desc_present(&d)) emu_raise(cpu, EXC_SS, sel & ~3u, true);
        } else {
            if (!desc_s(&d) || ((type & 8) && !(type & 2))) emu_raise(cpu, EXC_GP, sel & ~3u, true);
            bool conforming_code = (type & 8) && (type & 4);
            if (!conforming_code && (rpl > dpl || cpl > dpl)) emu_raise(cpu, EXC_GP, sel & ~3u, true);
            if (!desc_present(&d)) emu_raise(cpu, EXC_NP, sel & ~3u, true);
        }
        desc_set_accessed(cpu, sel, &d);
        desc_to_seg(&d, sel, &ns);
    }
    cpu->s.seg[seg] = ns;
    if (seg == SEG_SS) cpu->s.interrupt_shadow = 1;
}
