/* task: the emulator's protected-mode control transfers through system descriptors (Intel SDM
 * vol. 3 ch. 5.8, 7 and 20; AMD APM vol. 2 ch. 4.11, 12 and 8): far CALL/JMP through 16/32-bit
 * call gates in legacy protected mode and 64-bit call gates in IA-32e mode (compatibility and
 * 64-bit mode), with the stack switch to the TSS's SSn:ESPn (RSPn) and the parameter copy.
 * except.c's emu_sys_far_jmp_call hands every system descriptor here. Task switches (32- and
 * 16-bit TSSs): JMP/CALL to a TSS or task gate, events through a task gate in the IDT, IRET with
 * EFLAGS.NT. Virtual-8086 mode: entered by IRET at CPL0 or a task switch with EFLAGS.VM=1,
 * segments based at selector * 16, the IOPL-sensitive instructions, IRET inside it, events
 * leaving it through a 32/16-bit gate to a CPL0 handler; CR4.VME/PVI are not implemented (nor
 * advertised). The TSS I/O permission bitmap (IN/OUT when CPL > IOPL, and in virtual-8086 mode).
 * Interface: except.h.
 *
 * Like except.c, every function here performs all accesses that can fault before it changes
 * architectural state.
 */
#include "vmm/emu/except.h"
#include "vmm/emu/flags.h"
#include "vmm/emu/mmu.h"
#include "vmm/log.h"

/* ---- helpers --------------------------------------------------------------------------- */

/* SSn:ESPn for privilege level `dpl` from the current 32- or 16-bit TSS, checked as the SDM's
 * CALL and INT pseudo-code say (#TS with the TSS or SS selector, #SS if SS is not present);
 * fills *ss with the loaded segment. */
static void tss_inner_stack(struct emu_cpu *cpu, unsigned dpl, uint32_t ext, uint16_t *ss_sel, uint32_t *esp,
                            struct emu_desc *sd, struct cpu_segment *ss)
{
    const struct cpu_segment *tr = &cpu->s.seg[SEG_TR];
    bool tss32 = tr->type & 8; /* 9/11: 32-bit TSS; 1/3: 16-bit */
    unsigned off = tss32 ? 4 + 8 * dpl : 2 + 4 * dpl, w = tss32 ? 4 : 2;
    if (tr->unusable || !tr->present || off + 2 * w - 1 > tr->limit)
        emu_raise(cpu, EXC_TS, (tr->selector & ~3u) | ext, true);
    *esp = (uint32_t)mmu_read(cpu, tr->base + off, w, ACC_READ, false);
    uint16_t sel = (uint16_t)mmu_read(cpu, tr->base + off + w, 2, ACC_READ, false);
    if ((sel & ~3u) == 0) emu_raise(cpu, EXC_TS, ext, true);
    desc_read(cpu, sel, sd, false, ext);
    if ((sel & 3) != dpl || !desc_s(sd) || (desc_type(sd) & 8) || !(desc_type(sd) & 2) || desc_dpl(sd) != dpl)
        emu_raise(cpu, EXC_TS, (sel & ~3u) | ext, true);
    if (!desc_present(sd)) emu_raise(cpu, EXC_SS, (sel & ~3u) | ext, true);
    desc_to_seg(sd, sel, ss);
    *ss_sel = sel;
}

/* Write `n` slots of `w` bytes (frame[0] pushed first) below offset `top` of stack segment
 * `ss` (SS.B: 32-bit offsets, else 16-bit); #SS(err_sel) if they do not fit its limit, and
 * any page fault before the first write. Returns the new stack offset. */
static uint64_t write_frame(struct emu_cpu *cpu, const struct cpu_segment *ss, uint64_t top, const uint64_t *frame,
                            unsigned n, unsigned w, bool user, uint32_t err)
{
    uint64_t mask = ss->db ? 0xffffffffULL : 0xffffULL;
    top &= mask;
    uint64_t size = (uint64_t)n * w;
    bool expand_down = !(ss->type & 8) && (ss->type & 4);
    if (!top && !expand_down) top = mask + 1; /* a 0 top wraps to the segment's end */
    if (top < size || (!expand_down && top - 1 > ss->limit) || (expand_down && top - size <= ss->limit))
        emu_raise(cpu, EXC_SS, err, true);
    uint64_t new_off = top - size;
    mmu_probe_write(cpu, (ss->base + new_off) & 0xffffffffULL, (unsigned)size, user);
    for (unsigned i = 0; i < n; i++)
        mmu_write(cpu, (ss->base + top - (uint64_t)(i + 1) * w) & 0xffffffffULL, frame[i], w, user);
    return new_off & mask;
}

/* The same for a 64-bit stack (base 0, canonical addresses: #SS(0) otherwise). */
static uint64_t write_frame64(struct emu_cpu *cpu, uint64_t rsp, const uint64_t *frame, unsigned n, bool user)
{
    uint64_t new_rsp = rsp - 8ULL * n;
    if (!emu_canonical(rsp - 1) || !emu_canonical(new_rsp)) emu_raise(cpu, EXC_SS, 0, true);
    mmu_probe_write(cpu, new_rsp, 8 * n, user);
    for (unsigned i = 0; i < n; i++) mmu_write(cpu, rsp - 8ULL * (i + 1), frame[i], 8, user);
    return new_rsp;
}

/* ---- call gates --------------------------------------------------------------------------- */

/* Far CALL/JMP through the call gate `gsel` (descriptor `g`, already read). Legacy protected
 * mode: 16-bit (type 4) and 32-bit (type 12) gates, a CALL to a more privileged non-conforming
 * segment switching to SSn:ESPn and copying `count` parameters. IA-32e mode: only the 16-byte
 * 64-bit gate (type 12), to a 64-bit code segment; a CALL to an inner level loads RSPn and a
 * null SS, and copies no parameters. */
static void call_gate(struct emu_cpu *cpu, uint16_t gsel, const struct emu_desc *g, bool call)
{
    bool lm = cpu->s.efer & EFER_LMA;
    unsigned cpl = cpu->cpl, type = desc_type(g);
    uint32_t gerr = gsel & ~3u;
    if (lm && type != 0xc) emu_raise(cpu, EXC_GP, gerr, true);
    if (desc_dpl(g) < cpl || (gsel & 3u) > desc_dpl(g)) emu_raise(cpu, EXC_GP, gerr, true);
    if (!desc_present(g)) emu_raise(cpu, EXC_NP, gerr, true);
    uint64_t target = (g->lo & 0xffff) | (type & 8 ? g->hi & 0xffff0000u : 0);
    if (lm) {
        /* the upper half: offset 63:32, then a type field that must be 0 */
        struct emu_desc g16;
        desc_read(cpu, gsel, &g16, true, 0);
        uint64_t table = (gsel & 4) ? cpu->s.seg[SEG_LDTR].base : cpu->s.gdtr.base;
        uint32_t upper = (uint32_t)mmu_read(cpu, table + (gsel & ~7u) + 12, 4, ACC_READ, false);
        if ((upper >> 8) & 0x1f) emu_raise(cpu, EXC_GP, gerr, true);
        target |= (uint64_t)(uint32_t)g16.base_hi << 32;
    }
    unsigned gsz = lm ? 8 : type & 8 ? 4 : 2; /* the gate's size: the pushed slots */
    unsigned count = g->hi & 0x1f;
    uint16_t csel = (uint16_t)(g->lo >> 16);

    if ((csel & ~3u) == 0) emu_raise_gp0(cpu);
    struct emu_desc cd;
    desc_read(cpu, csel, &cd, false, 0);
    uint32_t cerr = csel & ~3u;
    bool conforming = desc_type(&cd) & 4;
    if (!desc_is_code(&cd) || desc_dpl(&cd) > cpl) emu_raise(cpu, EXC_GP, cerr, true);
    if (lm && (!desc_l(&cd) || desc_db(&cd))) emu_raise(cpu, EXC_GP, cerr, true);
    if (!call && !conforming && desc_dpl(&cd) != cpl) emu_raise(cpu, EXC_GP, cerr, true);
    if (!desc_present(&cd)) emu_raise(cpu, EXC_NP, cerr, true);
    bool inner = call && !conforming && desc_dpl(&cd) < cpl;
    unsigned new_cpl = inner ? desc_dpl(&cd) : cpl;
    struct cpu_segment cs_new;
    desc_to_seg(&cd, csel, &cs_new);
    if (lm ? !emu_canonical(target) : target > cs_new.limit) emu_raise_gp0(cpu);

    uint64_t old_cs = cpu->s.seg[SEG_CS].selector, old_rip = cpu->s.rip;
    uint64_t rsp = cpu->s.gpr[GPR_RSP];
    uint64_t new_rsp = rsp;
    struct cpu_segment new_ss = cpu->s.seg[SEG_SS];
    struct emu_desc sd = {0};
    uint16_t ss_sel = 0;
    if (inner && lm) {
        /* RSPn from the 64-bit TSS, SS := null with RPL = new CPL */
        const struct cpu_segment *tr = &cpu->s.seg[SEG_TR];
        unsigned off = 4 + 8 * new_cpl;
        if (tr->unusable || !tr->present || off + 7 > tr->limit) emu_raise(cpu, EXC_TS, tr->selector & ~3u, true);
        uint64_t nrsp = mmu_read(cpu, tr->base + off, 8, ACC_READ, false);
        if (!emu_canonical(nrsp)) emu_raise(cpu, EXC_SS, 0, true);
        uint64_t frame[4] = {cpu->s.seg[SEG_SS].selector, rsp, old_cs, old_rip};
        new_rsp = write_frame64(cpu, nrsp, frame, 4, false);
        seg_load_null(&new_ss, (uint16_t)new_cpl);
        ss_sel = (uint16_t)new_cpl;
    } else if (inner) {
        uint32_t esp;
        tss_inner_stack(cpu, new_cpl, 0, &ss_sel, &esp, &sd, &new_ss);
        /* SS ESP, the parameters (the deepest first, so they keep their order), CS EIP */
        uint64_t frame[4 + 31];
        unsigned n = 0;
        frame[n++] = cpu->s.seg[SEG_SS].selector;
        frame[n++] = cpu->s.seg[SEG_SS].db ? (uint32_t)rsp : (uint16_t)rsp;
        uint64_t smask = cpu->s.seg[SEG_SS].db ? 0xffffffffULL : 0xffffULL;
        for (unsigned i = count; i-- > 0;) {
            uint64_t off = (rsp + (uint64_t)i * gsz) & smask;
            uint64_t la = emu_seg_linear(cpu, SEG_SS, off, gsz, ACC_READ);
            frame[n++] = mmu_read(cpu, la, gsz, ACC_READ, cpl == 3);
        }
        frame[n++] = old_cs;
        frame[n++] = old_rip;
        uint64_t off = write_frame(cpu, &new_ss, esp, frame, n, gsz, false, ss_sel & ~3u);
        new_rsp = new_ss.db ? off : (esp & ~0xffffULL) | off;
    } else if (call && lm) {
        /* same level through a 64-bit gate: 8-byte slots on the current stack */
        uint64_t frame[2] = {old_cs, old_rip};
        new_rsp = write_frame64(cpu, cpu->long64 ? rsp : (uint32_t)rsp, frame, 2, cpl == 3);
    } else if (call) {
        uint64_t frame[2] = {old_cs, old_rip};
        const struct cpu_segment *ss = &cpu->s.seg[SEG_SS];
        if (ss->unusable) emu_raise(cpu, EXC_SS, 0, true);
        uint64_t off = write_frame(cpu, ss, rsp, frame, 2, gsz, cpl == 3, 0);
        new_rsp = ss->db ? off : (rsp & ~0xffffULL) | off;
    }

    /* commit */
    if (inner) {
        if (!lm) desc_set_accessed(cpu, ss_sel, &sd);
        cpu->s.seg[SEG_SS] = new_ss;
    }
    desc_set_accessed(cpu, csel, &cd);
    sys_set_cs(cpu, &cd, csel, new_cpl);
    cpu->s.gpr[GPR_RSP] = new_rsp;
    cpu->s.rip = target;
}

/* ---- task switches (SDM vol. 3 ch. 7.3) ------------------------------------------------------ */

enum task_reason { TASK_JMP, TASK_CALL, TASK_IRET }; /* CALL: also INT n, exceptions, interrupts */

/* TSS field offsets: [0] 32-bit TSS, [1] 16-bit TSS */
struct tss_layout {
    unsigned min_limit, eip, eflags, regs, segs, ldt, w; /* w: register slot width */
    unsigned nsegs;                                       /* ES CS SS DS [FS GS] */
};
static const struct tss_layout tss_layouts[2] = {
    {0x67, 0x20, 0x24, 0x28, 0x48, 0x60, 4, 6},
    {0x2b, 0x0e, 0x10, 0x12, 0x22, 0x2a, 2, 4},
};

/* Set or clear the busy bit (type bit 1) of the TSS descriptor `sel` in the GDT. */
static void tss_set_busy(struct emu_cpu *cpu, uint16_t sel, bool busy)
{
    uint64_t la = cpu->s.gdtr.base + (sel & ~7u) + 5;
    uint8_t access = (uint8_t)mmu_read(cpu, la, 1, ACC_READ, false);
    access = busy ? access | 2 : access & ~2;
    mmu_write(cpu, la, access, 1, false);
}

/* Read the descriptor of `sel` for a load during a task switch: #TS(sel) if it lies beyond its
 * table (or the LDT is unusable). */
static void task_desc(struct emu_cpu *cpu, uint16_t sel, struct emu_desc *d, uint32_t ext)
{
    const struct cpu_segment *ldt = &cpu->s.seg[SEG_LDTR];
    uint64_t base = (sel & 4) ? ldt->base : cpu->s.gdtr.base;
    uint64_t limit = (sel & 4) ? ldt->limit : cpu->s.gdtr.limit;
    if (((sel & 4) && (ldt->unusable || !ldt->present)) || (sel & ~7u) + 7ULL > limit)
        emu_raise(cpu, EXC_TS, (sel & ~3u) | ext, true);
    uint64_t v = mmu_read(cpu, base + (sel & ~7u), 8, ACC_READ, false);
    d->lo = (uint32_t)v;
    d->hi = (uint32_t)(v >> 32);
    d->base_hi = 0;
}

/* A segment register in virtual-8086 mode: base selector * 16, limit 0xffff, a read/write data
 * segment at DPL 3 (CS too: as under VMX, every v86 segment has access rights 0xf3). */
static void v86_seg(struct cpu_segment *s, uint16_t sel)
{
    *s = (struct cpu_segment){.base = (uint64_t)sel << 4, .limit = 0xffff, .selector = sel,
                              .type = 0x3, .s = 1, .dpl = 3, .present = 1};
}

/* Load the new task's segment registers from the selectors now in cpu->s.seg[], with the checks
 * of SDM table 7-1; faults here belong to the new task. */
static void task_load_segments(struct emu_cpu *cpu, uint32_t ext)
{
    struct cpu_segment *seg = cpu->s.seg;
    /* LDTR first: the other selectors may point into it */
    uint16_t ldt = seg[SEG_LDTR].selector;
    if ((ldt & ~3u) == 0) {
        seg_load_null(&seg[SEG_LDTR], ldt);
    } else {
        if (ldt & 4) emu_raise(cpu, EXC_TS, (ldt & ~3u) | ext, true);
        struct emu_desc d;
        task_desc(cpu, ldt, &d, ext);
        if (desc_s(&d) || desc_type(&d) != 2 || !desc_present(&d)) emu_raise(cpu, EXC_TS, (ldt & ~3u) | ext, true);
        desc_to_seg(&d, ldt, &seg[SEG_LDTR]);
    }
    if (cpu->s.rflags & RFLAGS_VM) {
        for (int i = SEG_ES; i <= SEG_GS; i++) v86_seg(&seg[i], seg[i].selector);
        emu_update_mode(cpu);
        return;
    }
    /* CS: a present code segment; its RPL is the new CPL */
    uint16_t cs = seg[SEG_CS].selector;
    unsigned cpl = cs & 3;
    struct emu_desc cd;
    if ((cs & ~3u) == 0) emu_raise(cpu, EXC_TS, ext, true);
    task_desc(cpu, cs, &cd, ext);
    bool conforming = desc_type(&cd) & 4;
    if (!desc_is_code(&cd) || (conforming ? desc_dpl(&cd) > cpl : desc_dpl(&cd) != cpl))
        emu_raise(cpu, EXC_TS, (cs & ~3u) | ext, true);
    if (!desc_present(&cd)) emu_raise(cpu, EXC_NP, (cs & ~3u) | ext, true);
    /* SS: a writable data segment at the new CPL */
    uint16_t ss = seg[SEG_SS].selector;
    struct emu_desc sd;
    if ((ss & ~3u) == 0) emu_raise(cpu, EXC_TS, ext, true);
    task_desc(cpu, ss, &sd, ext);
    if ((ss & 3) != cpl || !desc_s(&sd) || (desc_type(&sd) & 8) || !(desc_type(&sd) & 2) || desc_dpl(&sd) != cpl)
        emu_raise(cpu, EXC_TS, (ss & ~3u) | ext, true);
    if (!desc_present(&sd)) emu_raise(cpu, EXC_SS, (ss & ~3u) | ext, true);
    desc_set_accessed(cpu, cs, &cd);
    sys_set_cs(cpu, &cd, cs, cpl);
    desc_set_accessed(cpu, ss, &sd);
    desc_to_seg(&sd, ss, &seg[SEG_SS]);
    /* DS ES FS GS: null, or data / readable code the new CPL may use */
    static const int data_segs[] = {SEG_ES, SEG_DS, SEG_FS, SEG_GS};
    for (unsigned i = 0; i < 4; i++) {
        struct cpu_segment *s = &seg[data_segs[i]];
        uint16_t sel = s->selector;
        if ((sel & ~3u) == 0) {
            seg_load_null(s, sel);
            continue;
        }
        struct emu_desc d;
        task_desc(cpu, sel, &d, ext);
        unsigned type = desc_type(&d);
        bool conf_code = (type & 8) && (type & 4);
        if (!desc_s(&d) || ((type & 8) && !(type & 2)) ||
            (!conf_code && (desc_dpl(&d) < cpl || desc_dpl(&d) < (sel & 3u))))
            emu_raise(cpu, EXC_TS, (sel & ~3u) | ext, true);
        if (!desc_present(&d)) emu_raise(cpu, EXC_NP, (sel & ~3u) | ext, true);
        desc_set_accessed(cpu, sel, &d);
        desc_to_seg(&d, sel, s);
    }
}

/* Switch to the task of TSS descriptor `nd` (selector `sel`, in the GDT), as SDM 7.3 describes.
 * The caller has made the reason's privilege and busy checks. Saves the outgoing state at
 * cpu->s.rip into the current TSS, clears (JMP, IRET) or keeps (CALL) the old busy bit, sets
 * the new one and the back-link and NT (CALL), loads TR, CR3 (with paging, 32-bit TSS), LDTR,
 * the registers and EFLAGS, sets CR0.TS, and then loads the segments, whose faults are the new
 * task's. With `has_error`, pushes `error` on the new task's stack. */
static void task_switch(struct emu_cpu *cpu, uint16_t sel, const struct emu_desc *nd, enum task_reason reason,
                        uint32_t ext, bool has_error, uint32_t error)
{
    uint32_t terr = (sel & ~3u) | ext;
    if (cpu->s.efer & EFER_LMA) emu_raise(cpu, EXC_GP, terr, true); /* no task switches in IA-32e mode */
    struct cpu_segment ntr;
    desc_to_seg(nd, sel, &ntr);
    const struct tss_layout *nl = &tss_layouts[(ntr.type & 8) ? 0 : 1];
    if (ntr.limit < nl->min_limit) emu_raise(cpu, EXC_TS, terr, true);
    struct cpu_segment *otr = &cpu->s.seg[SEG_TR];
    const struct tss_layout *ol = &tss_layouts[(otr->type & 8) ? 0 : 1];
    if (otr->unusable || !otr->present || otr->limit < ol->min_limit)
        emu_raise(cpu, EXC_TS, (otr->selector & ~3u) | ext, true);

    /* read the new task's state */
    uint64_t nb = ntr.base;
    uint32_t cr3 = nl->w == 4 ? (uint32_t)mmu_read(cpu, nb + 0x1c, 4, ACC_READ, false) : 0;
    uint32_t eip = (uint32_t)mmu_read(cpu, nb + nl->eip, nl->w, ACC_READ, false);
    uint32_t eflags = (uint32_t)mmu_read(cpu, nb + nl->eflags, nl->w, ACC_READ, false);
    uint32_t regs[8];
    for (unsigned i = 0; i < 8; i++) regs[i] = (uint32_t)mmu_read(cpu, nb + nl->regs + nl->w * i, nl->w, ACC_READ, false);
    uint16_t segs[6] = {0};
    for (unsigned i = 0; i < nl->nsegs; i++) segs[i] = (uint16_t)mmu_read(cpu, nb + nl->segs + nl->w * i, 2, ACC_READ, false);
    uint16_t ldt = (uint16_t)mmu_read(cpu, nb + nl->ldt, 2, ACC_READ, false);
    /* every write below must succeed once the first one is made */
    uint64_t ob = otr->base;
    mmu_probe_write(cpu, ob + ol->eip, ol->segs + ol->w * ol->nsegs - ol->eip, false);
    if (reason == TASK_CALL) mmu_probe_write(cpu, nb, 2, false);
    mmu_probe_write(cpu, cpu->s.gdtr.base + (otr->selector & ~7u) + 5, 1, false);
    mmu_probe_write(cpu, cpu->s.gdtr.base + (sel & ~7u) + 5, 1, false);

    /* save the outgoing task */
    uint64_t oflags = emu_get_rflags(cpu);
    if (reason == TASK_IRET) oflags &= ~RFLAGS_NT;
    mmu_write(cpu, ob + ol->eip, cpu->s.rip, ol->w, false);
    mmu_write(cpu, ob + ol->eflags, oflags, ol->w, false);
    for (unsigned i = 0; i < 8; i++) mmu_write(cpu, ob + ol->regs + ol->w * i, cpu->s.gpr[i], ol->w, false);
    for (unsigned i = 0; i < ol->nsegs; i++) mmu_write(cpu, ob + ol->segs + ol->w * i, cpu->s.seg[i].selector, 2, false);
    if (reason != TASK_CALL) tss_set_busy(cpu, otr->selector, false);
    if (reason == TASK_CALL) {
        mmu_write(cpu, nb, otr->selector, 2, false);
        eflags |= (uint32_t)RFLAGS_NT;
    }
    if (reason != TASK_IRET) tss_set_busy(cpu, sel, true);

    /* load the new one: from here on, faults are the new task's */
    ntr.type |= 2;
    *otr = ntr;
    cpu->s.cr0 |= CR0_TS;
    if (nl->w == 4 && (cpu->s.cr0 & CR0_PG)) {
        cpu->s.cr3 = cr3;
        emu_tlb_flush(cpu);
    }
    uint64_t keep = nl->w == 4 ? 0 : ~0xffffULL; /* a 16-bit TSS loads the low halves only */
    for (unsigned i = 0; i < 8; i++) cpu->s.gpr[i] = (cpu->s.gpr[i] & keep) | regs[i];
    cpu->s.rip = eip;
    cpu->insn_rip = eip;
    emu_set_rflags(cpu, ((nl->w == 4 ? eflags : (uint16_t)eflags) & 0x3f7fd5u) | RFLAGS_FIXED); /* defined bits */
    cpu->s.interrupt_shadow = 0;
    cpu->s.halted = 0;
    for (unsigned i = 0; i < 6; i++) {
        uint16_t v = i < nl->nsegs ? segs[i] : 0;
        seg_load_null(&cpu->s.seg[i], v);
    }
    seg_load_null(&cpu->s.seg[SEG_LDTR], ldt);
    task_load_segments(cpu, ext);

    if (has_error) {
        /* the error code of the exception that caused the switch, on the new task's stack */
        const struct cpu_segment *ss = &cpu->s.seg[SEG_SS];
        uint64_t frame[1] = {error};
        uint64_t rsp = cpu->s.gpr[GPR_RSP];
        uint64_t off = write_frame(cpu, ss, rsp, frame, 1, nl->w, cpu->cpl == 3, ext);
        cpu->s.gpr[GPR_RSP] = ss->db ? off : (rsp & ~0xffffULL) | off;
    }
    if (cpu->s.rip > cpu->s.seg[SEG_CS].limit) emu_raise(cpu, EXC_GP, ext, true);
}

/* The TSS selector of a task gate (descriptor or IDT entry `gate_lo`): it must name an available
 * TSS in the GDT (#GP(TSS selector), #NP if not present). */
static uint16_t task_gate_target(struct emu_cpu *cpu, uint32_t gate_lo, struct emu_desc *td, uint32_t ext)
{
    uint16_t tsel = (uint16_t)(gate_lo >> 16);
    uint32_t err = (tsel & ~3u) | ext;
    if ((tsel & 4) || (tsel & ~7u) + 7ULL > cpu->s.gdtr.limit) emu_raise(cpu, EXC_GP, err, true);
    desc_read(cpu, tsel, td, false, ext);
    unsigned type = desc_type(td);
    if (desc_s(td) || (type != 1 && type != 9)) emu_raise(cpu, EXC_GP, err, true);
    if (!desc_present(td)) emu_raise(cpu, EXC_NP, err, true);
    return tsel;
}

void emu_task_gate_event(struct emu_cpu *cpu, uint64_t gate, uint32_t error, bool has_error, uint32_t ext)
{
    struct emu_desc td;
    uint16_t tsel = task_gate_target(cpu, (uint32_t)gate, &td, ext);
    task_switch(cpu, tsel, &td, TASK_CALL, ext, has_error, error);
}

/* IRET with EFLAGS.NT (outside IA-32e mode): back to the task in the back-link. */
static void task_return(struct emu_cpu *cpu)
{
    const struct cpu_segment *tr = &cpu->s.seg[SEG_TR];
    if (tr->unusable || !tr->present || tr->limit < 1) emu_raise(cpu, EXC_TS, tr->selector & ~3u, true);
    uint16_t link = (uint16_t)mmu_read(cpu, tr->base, 2, ACC_READ, false);
    if ((link & 4) || (link & ~7u) + 7ULL > cpu->s.gdtr.limit || (link & ~3u) == 0)
        emu_raise(cpu, EXC_TS, link & ~3u, true);
    struct emu_desc d;
    desc_read(cpu, link, &d, false, 0);
    if (desc_s(&d) || (desc_type(&d) != 3 && desc_type(&d) != 0xb)) emu_raise(cpu, EXC_TS, link & ~3u, true);
    if (!desc_present(&d)) emu_raise(cpu, EXC_NP, link & ~3u, true);
    task_switch(cpu, link, &d, TASK_IRET, 0, false, 0);
}

/* ---- virtual-8086 mode (SDM vol. 3 ch. 20; without CR4.VME/PVI) --------------------------------- */

static bool iopl3(const struct emu_cpu *cpu) { return (cpu->s.rflags & RFLAGS_IOPL) == RFLAGS_IOPL; }

/* Pop `size` bytes at SS:*sp (SP or ESP by SS.B), advancing *sp; the access is the CPL's. */
static uint64_t stack_pop(struct emu_cpu *cpu, uint64_t *sp, unsigned size)
{
    uint64_t mask = cpu->s.seg[SEG_SS].db ? 0xffffffffULL : 0xffffULL;
    uint64_t off = *sp & mask;
    uint64_t la = emu_seg_linear(cpu, SEG_SS, off, size, ACC_READ);
    uint64_t v = mmu_read(cpu, la, size, ACC_READ, cpu->cpl == 3);
    *sp = (*sp & ~mask) | ((off + size) & mask);
    return v;
}

void emu_v86_load_seg(struct emu_cpu *cpu, int seg, uint16_t sel)
{
    v86_seg(&cpu->s.seg[seg], sel);
    if (seg == SEG_SS) cpu->s.interrupt_shadow = 1;
}

void emu_v86_far_jmp_call(struct emu_cpu *cpu, uint16_t sel, uint64_t offset, bool call, unsigned opsize)
{
    uint64_t ip = offset & (opsize == 2 ? 0xffffULL : 0xffffffffULL);
    if (ip > 0xffff) emu_raise_gp0(cpu);
    uint64_t rsp = cpu->s.gpr[GPR_RSP];
    if (call) {
        const uint64_t frame[2] = {cpu->s.seg[SEG_CS].selector, cpu->s.rip};
        const struct cpu_segment *ss = &cpu->s.seg[SEG_SS];
        uint64_t off = write_frame(cpu, ss, rsp, frame, 2, opsize, true, 0);
        rsp = ss->db ? off : (rsp & ~0xffffULL) | off;
    }
    v86_seg(&cpu->s.seg[SEG_CS], sel);
    cpu->s.gpr[GPR_RSP] = rsp;
    cpu->s.rip = ip;
}

void emu_v86_far_ret(struct emu_cpu *cpu, unsigned opsize, uint16_t pop_bytes)
{
    uint64_t sp = cpu->s.gpr[GPR_RSP];
    uint64_t ip = stack_pop(cpu, &sp, opsize);
    uint16_t cs = (uint16_t)stack_pop(cpu, &sp, opsize);
    if (ip > 0xffff) emu_raise_gp0(cpu);
    uint64_t mask = cpu->s.seg[SEG_SS].db ? 0xffffffffULL : 0xffffULL;
    sp = (sp & ~mask) | ((sp + pop_bytes) & mask);
    v86_seg(&cpu->s.seg[SEG_CS], cs);
    cpu->s.gpr[GPR_RSP] = sp;
    cpu->s.rip = ip;
}

/* IRET in virtual-8086 mode: #GP(0) unless IOPL is 3; then as in real mode, without changing
 * IOPL (or VM, VIF, VIP). */
static void v86_iret(struct emu_cpu *cpu, unsigned opsize)
{
    if (!iopl3(cpu)) emu_raise_gp0(cpu);
    uint64_t sp = cpu->s.gpr[GPR_RSP];
    uint64_t ip = stack_pop(cpu, &sp, opsize);
    uint16_t cs = (uint16_t)stack_pop(cpu, &sp, opsize);
    uint64_t fl = stack_pop(cpu, &sp, opsize);
    if (ip > 0xffff) emu_raise_gp0(cpu);
    uint64_t mask = (0x3f7fd5ULL & ~(RFLAGS_VM | RFLAGS_VIF | RFLAGS_VIP | RFLAGS_IOPL)) & szmask(opsize);
    uint64_t cur = emu_get_rflags(cpu);
    emu_set_rflags(cpu, (cur & ~mask) | (fl & mask) | RFLAGS_FIXED);
    v86_seg(&cpu->s.seg[SEG_CS], cs);
    cpu->s.gpr[GPR_RSP] = sp;
    cpu->s.rip = ip;
}

/* IRET at CPL0 (32-bit operand size) popping EFLAGS.VM=1: EIP CS EFLAGS ESP SS ES DS FS GS, and
 * the segments loaded as in virtual-8086 mode (SDM: RETURN-TO-VIRTUAL-8086-MODE). */
static void iret_to_v86(struct emu_cpu *cpu)
{
    uint64_t sp = cpu->s.gpr[GPR_RSP];
    uint32_t v[9];
    for (unsigned i = 0; i < 9; i++) v[i] = (uint32_t)stack_pop(cpu, &sp, 4);
    emu_set_rflags(cpu, (v[2] & 0x3f7fd5u) | RFLAGS_FIXED);
    v86_seg(&cpu->s.seg[SEG_CS], (uint16_t)v[1]);
    v86_seg(&cpu->s.seg[SEG_SS], (uint16_t)v[4]);
    v86_seg(&cpu->s.seg[SEG_ES], (uint16_t)v[5]);
    v86_seg(&cpu->s.seg[SEG_DS], (uint16_t)v[6]);
    v86_seg(&cpu->s.seg[SEG_FS], (uint16_t)v[7]);
    v86_seg(&cpu->s.seg[SEG_GS], (uint16_t)v[8]);
    cpu->s.gpr[GPR_RSP] = v[3];
    cpu->s.rip = v[0] & 0xffff;
    emu_update_mode(cpu);
}

void emu_v86_deliver(struct emu_cpu *cpu, const struct emu_desc *cd, uint16_t sel, uint64_t target,
                     unsigned gate_type, uint32_t error, bool has_error, uint32_t ext)
{
    if ((desc_type(cd) & 4) || desc_dpl(cd) != 0) emu_raise(cpu, EXC_GP, (sel & ~3u) | ext, true);
    uint16_t ss_sel;
    uint32_t esp;
    struct emu_desc sd;
    struct cpu_segment ss;
    tss_inner_stack(cpu, 0, ext, &ss_sel, &esp, &sd, &ss);
    unsigned gsz = gate_type & 8 ? 4 : 2;
    uint64_t rflags = emu_get_rflags(cpu);
    const struct cpu_segment *seg = cpu->s.seg;
    uint64_t frame[10] = {seg[SEG_GS].selector, seg[SEG_FS].selector, seg[SEG_DS].selector,
                          seg[SEG_ES].selector, seg[SEG_SS].selector, (uint32_t)cpu->s.gpr[GPR_RSP],
                          rflags,               seg[SEG_CS].selector, cpu->s.rip,
                          error};
    uint64_t off = write_frame(cpu, &ss, esp, frame, has_error ? 10 : 9, gsz, false, (ss_sel & ~3u) | ext);

    /* commit */
    desc_set_accessed(cpu, ss_sel, &sd);
    cpu->s.seg[SEG_SS] = ss;
    seg_load_null(&cpu->s.seg[SEG_ES], 0);
    seg_load_null(&cpu->s.seg[SEG_DS], 0);
    seg_load_null(&cpu->s.seg[SEG_FS], 0);
    seg_load_null(&cpu->s.seg[SEG_GS], 0);
    rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
    if (!(gate_type & 1)) rflags &= ~RFLAGS_IF; /* interrupt gate */
    emu_set_rflags(cpu, rflags);
    struct emu_desc code = *cd;
    desc_set_accessed(cpu, sel, &code);
    sys_set_cs(cpu, &code, sel, 0);
    cpu->s.gpr[GPR_RSP] = ss.db ? off : (esp & ~0xffffULL) | off;
    cpu->s.rip = target;
    cpu->s.interrupt_shadow = 0;
    cpu->s.halted = 0;
}

bool emu_v86_iopl_trap(const struct emu_cpu *cpu) { return (cpu->s.rflags & RFLAGS_VM) && !iopl3(cpu); }

bool emu_io_permitted(struct emu_cpu *cpu, uint16_t port, unsigned size)
{
    const struct cpu_segment *tr = &cpu->s.seg[SEG_TR];
    /* only a 32-bit (or 64-bit) TSS has the bitmap; its base is the word at 0x66 */
    if (tr->unusable || !tr->present || (tr->type != 9 && tr->type != 0xb) || tr->limit < 0x67) return false;
    uint32_t map = (uint32_t)mmu_read(cpu, tr->base + 0x66, 2, ACC_READ, false);
    uint32_t off = map + port / 8;
    if (off + 1 > tr->limit) return false; /* the processor always reads two bytes */
    uint32_t bits = (uint32_t)mmu_read(cpu, tr->base + off, 2, ACC_READ, false);
    uint32_t want = ((1u << size) - 1) << (port & 7);
    return !(bits & want);
}

void emu_far_system(struct emu_cpu *cpu, uint16_t sel, const struct emu_desc *d, bool call)
{
    switch (desc_type(d)) {
    case 4:
    case 0xc:
        call_gate(cpu, sel, d, call);
        return;
    case 1:
    case 9: /* an available TSS */
        if (desc_dpl(d) < cpu->cpl || desc_dpl(d) < (sel & 3u)) emu_raise(cpu, EXC_GP, sel & ~3u, true);
        if (!desc_present(d)) emu_raise(cpu, EXC_NP, sel & ~3u, true);
        task_switch(cpu, sel, d, call ? TASK_CALL : TASK_JMP, 0, false, 0);
        return;
    case 5: { /* a task gate */
        if (cpu->s.efer & EFER_LMA) emu_raise(cpu, EXC_GP, sel & ~3u, true);
        if (desc_dpl(d) < cpu->cpl || desc_dpl(d) < (sel & 3u)) emu_raise(cpu, EXC_GP, sel & ~3u, true);
        if (!desc_present(d)) emu_raise(cpu, EXC_NP, sel & ~3u, true);
        struct emu_desc td;
        uint16_t tsel = task_gate_target(cpu, d->lo, &td, 0);
        task_switch(cpu, tsel, &td, call ? TASK_CALL : TASK_JMP, 0, false, 0);
        return;
    }
    default: /* busy TSSs, LDTs, interrupt and trap gates */
        emu_raise(cpu, EXC_GP, sel & ~3u, true);
    }
}

bool emu_iret_special(struct emu_cpu *cpu, unsigned opsize)
{
    if (!(cpu->s.cr0 & CR0_PE)) return false;
    if (cpu->s.rflags & RFLAGS_VM) {
        v86_iret(cpu, opsize);
        return true;
    }
    if (cpu->s.efer & EFER_LMA) return false;
    if (cpu->s.rflags & RFLAGS_NT) {
        task_return(cpu);
        return true;
    }
    if (cpu->cpl == 0 && opsize == 4) {
        /* a look at the EFLAGS image: VM=1 returns to virtual-8086 mode */
        uint64_t sp = cpu->s.gpr[GPR_RSP];
        uint64_t off = (sp + 8) & (cpu->s.seg[SEG_SS].db ? 0xffffffffULL : 0xffffULL);
        uint64_t la = emu_seg_linear(cpu, SEG_SS, off, 4, ACC_READ);
        if (mmu_read(cpu, la, 4, ACC_READ, false) & RFLAGS_VM) {
            iret_to_v86(cpu);
            return true;
        }
    }
    return false;
}
