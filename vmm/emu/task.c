/* task: the emulator's protected-mode control transfers through system descriptors (Intel SDM
 * vol. 3 ch. 5.8, 7 and 20; AMD APM vol. 2 ch. 4.11, 12 and 8): far CALL/JMP through 16/32-bit
 * call gates in legacy protected mode and 64-bit call gates in IA-32e mode (compatibility and
 * 64-bit mode), with the stack switch to the TSS's SSn:ESPn (RSPn) and the parameter copy.
 * except.c's emu_sys_far_jmp_call hands every system descriptor here. Interface: except.h.
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

void emu_far_system(struct emu_cpu *cpu, uint16_t sel, const struct emu_desc *d, bool call)
{
    switch (desc_type(d)) {
    case 4:
    case 0xc:
        call_gate(cpu, sel, d, call);
        return;
    default:
        emu_raise(cpu, EXC_GP, sel & ~3u, true);
    }
}
