/* exec_string: string instructions (exec part): MOVS STOS LODS SCAS CMPS INS OUTS with
 * REP/REPE/REPNE. A REP instruction runs at most REP_CHUNK iterations per execution; if RCX
 * is not yet zero it leaves RIP at itself with RCX/RSI/RDI updated, so interrupts are taken
 * between chunks (REP string instructions end their block). Forward REP MOVS/STOS copy whole
 * page spans through host pointers.
 * The source segment is DS (overridable), the destination ES (not overridable).
 */
#include "vmm/emu/exec.h"

#define REP_CHUNK 4096 /* iterations per execution of a REP instruction */

/* RSI, RDI and RCX as the address size has them: 64, 32 (zero-extended on write) or 16 bits
 * (the upper bits kept). */
static inline uint64_t areg(const struct emu_cpu *cpu, unsigned r, unsigned asz)
{
    return asz == 8 ? cpu->s.gpr[r] : asz == 4 ? (uint32_t)cpu->s.gpr[r] : (uint16_t)cpu->s.gpr[r];
}
static inline void aset(struct emu_cpu *cpu, unsigned r, uint64_t v, unsigned asz)
{
    if (asz == 2) cpu->s.gpr[r] = (cpu->s.gpr[r] & ~0xffffULL) | (uint16_t)v;
    else cpu->s.gpr[r] = asz == 8 ? v : (uint32_t)v;
}
static inline int64_t step(const struct emu_cpu *cpu, unsigned sz) { return (cpu->s.rflags & RFLAGS_DF) ? -(int64_t)sz : (int64_t)sz; }

/* Host pointer for [la, la+len) inside one page, or NULL (MMIO). A write to a page holding
 * cached code drops the decoded code first. */
static void *span(struct emu_cpu *cpu, uint64_t la, unsigned len, enum emu_access acc)
{
    uint64_t gpa = 0;
    void *p = emu_translate(cpu, la, len, acc, &gpa);
    if (p && acc == ACC_WRITE) {
        uint64_t pg = gpa >> 12;
        if (pg < cpu->code_bitmap_pages && (cpu->code_bitmap[pg >> 3] & (1u << (pg & 7)))) cpu->code_written(cpu, gpa);
    }
    return p;
}

static inline uint64_t page_left(uint64_t la) { return 4096 - (la & 0xfff); }

/* The bulk (page-at-a-time) paths below need no per-element address wrap or limit check: 64-bit
 * addressing, or 32-bit addressing with flat (4 GiB) segments when `off` (ESI or EDI) does not
 * wrap within the next page's worth of bytes. */
static inline bool bulk_ok(const struct emu_cpu *cpu, unsigned asz, unsigned seg, uint64_t off)
{
    if (asz == 8) return true;
    if (asz != 4 || off > 0xffffffffULL - 4096) return false;
    return cpu->long64 || cpu->s.seg[seg].limit == 0xffffffffULL;
}

/* Returns true when the REP instruction must run again (chunk exhausted). */
static inline bool rep_more(struct emu_cpu *cpu, unsigned n)
{
    if (n >= REP_CHUNK) {
        cpu->s.rip = cpu->insn_rip;
        /* a chunk costs about as much as REP_CHUNK / 4 instructions (slow path: a read and a
         * write per iteration): charge it, or a budget of N instructions could mean N chunks */
        EXEC_HOT(cpu)->extra += REP_CHUNK / 4;
        return true;
    }
    return false;
}

/* The element loop LODS, INS and OUTS share (one element without a REP prefix): RCX elements,
 * RCX written back after each, and a stop after REP_CHUNK of them (rep_more: the instruction
 * runs again). The body handles one element; `asz` is the address size. */
#define FOR_EACH_ELEMENT(cpu, in, asz)                                                             \
    for (uint64_t cnt_ = (in)->rep ? areg(cpu, GPR_RCX, asz) : 1, n_ = 0;                           \
         cnt_ && !((in)->rep && rep_more(cpu, (unsigned)n_));                                       \
         n_++, cnt_--, (in)->rep ? aset(cpu, GPR_RCX, cnt_, asz) : (void)0)

HANDLER(h_movs)
{
    unsigned sz = in->osz, asz = in->asz;
    int64_t d = step(cpu, sz);
    if (!in->rep) {
        uint64_t si = areg(cpu, GPR_RSI, asz), di = areg(cpu, GPR_RDI, asz);
        uint64_t v = mread(cpu, lin_seg(cpu, in->seg, si), sz);
        mwrite(cpu, lin_seg(cpu, SEG_ES, di), v, sz);
        aset(cpu, GPR_RSI, si + (uint64_t)d, asz);
        aset(cpu, GPR_RDI, di + (uint64_t)d, asz);
        return;
    }
    uint64_t cnt = areg(cpu, GPR_RCX, asz);
    for (unsigned n = 0; cnt; n++) {
        if (rep_more(cpu, n)) return;
        uint64_t si = areg(cpu, GPR_RSI, asz), di = areg(cpu, GPR_RDI, asz);
        uint64_t sla = lin_seg(cpu, in->seg, si), dla = lin_seg(cpu, SEG_ES, di);
        if (d > 0 && bulk_ok(cpu, asz, in->seg, si) && bulk_ok(cpu, asz, SEG_ES, di)) {
            uint64_t bytes = cnt * sz;
            if (cnt > (1ULL << 40)) bytes = 1ULL << 40;
            uint64_t l = page_left(sla) < page_left(dla) ? page_left(sla) : page_left(dla);
            if (bytes > l) bytes = l;
            bytes -= bytes % sz;
            /* forward element copy differs from memmove when the destination overlaps ahead */
            if (bytes >= sz && !(dla > sla && dla < sla + bytes)) {
                void *sp = span(cpu, sla, (unsigned)bytes, ACC_READ);
                void *dp = sp ? span(cpu, dla, (unsigned)bytes, ACC_WRITE) : NULL;
                if (sp && dp) {
                    memmove(dp, sp, bytes);
                    uint64_t k = bytes / sz;
                    cnt -= k;
                    cpu->s.gpr[GPR_RSI] = si + bytes;
                    cpu->s.gpr[GPR_RDI] = di + bytes;
                    cpu->s.gpr[GPR_RCX] = cnt;
                    n += (unsigned)(k / 64);
                    continue;
                }
            }
        }
        uint64_t v = mread(cpu, sla, sz);
        mwrite(cpu, dla, v, sz);
        aset(cpu, GPR_RSI, si + (uint64_t)d, asz);
        aset(cpu, GPR_RDI, di + (uint64_t)d, asz);
        aset(cpu, GPR_RCX, --cnt, asz);
    }
}

HANDLER(h_stos)
{
    unsigned sz = in->osz, asz = in->asz;
    int64_t d = step(cpu, sz);
    uint64_t v = rreg(cpu, GPR_RAX, sz);
    if (!in->rep) {
        uint64_t di = areg(cpu, GPR_RDI, asz);
        mwrite(cpu, lin_seg(cpu, SEG_ES, di), v, sz);
        aset(cpu, GPR_RDI, di + (uint64_t)d, asz);
        return;
    }
    uint64_t cnt = areg(cpu, GPR_RCX, asz);
    for (unsigned n = 0; cnt; n++) {
        if (rep_more(cpu, n)) return;
        uint64_t di = areg(cpu, GPR_RDI, asz);
        uint64_t dla = lin_seg(cpu, SEG_ES, di);
        if (d > 0 && bulk_ok(cpu, asz, SEG_ES, di)) {
            uint64_t bytes = cnt * sz;
            if (cnt > (1ULL << 40)) bytes = 1ULL << 40;
            if (bytes > page_left(dla)) bytes = page_left(dla);
            bytes -= bytes % sz;
            if (bytes >= sz) {
                uint8_t *dp = span(cpu, dla, (unsigned)bytes, ACC_WRITE);
                if (dp) {
                    if (sz == 1) {
                        memset(dp, (int)v, bytes);
                    } else {
                        for (uint64_t o = 0; o < bytes; o += sz) memcpy(dp + o, &v, sz);
                    }
                    uint64_t k = bytes / sz;
                    cnt -= k;
                    cpu->s.gpr[GPR_RDI] = di + bytes;
                    cpu->s.gpr[GPR_RCX] = cnt;
                    n += (unsigned)(k / 64);
                    continue;
                }
            }
        }
        mwrite(cpu, dla, v, sz);
        aset(cpu, GPR_RDI, di + (uint64_t)d, asz);
        aset(cpu, GPR_RCX, --cnt, asz);
    }
}

HANDLER(h_lods)
{
    unsigned sz = in->osz, asz = in->asz;
    int64_t d = step(cpu, sz);
    FOR_EACH_ELEMENT(cpu, in, asz) {
        uint64_t si = areg(cpu, GPR_RSI, asz);
        uint64_t v = mread(cpu, lin_seg(cpu, in->seg, si), sz);
        wreg(cpu, GPR_RAX, v, sz);
        aset(cpu, GPR_RSI, si + (uint64_t)d, asz);
    }
}

/* SCAS/CMPS: REPE (F3) stops when ZF=0, REPNE (F2) when ZF=1. */
HANDLER(h_scas)
{
    unsigned sz = in->osz, asz = in->asz;
    int64_t d = step(cpu, sz);
    uint64_t a = rreg(cpu, GPR_RAX, sz);
    uint64_t cnt = in->rep ? areg(cpu, GPR_RCX, asz) : 1;
    for (unsigned n = 0; cnt; n++) {
        if (in->rep && rep_more(cpu, n)) return;
        uint64_t di = areg(cpu, GPR_RDI, asz);
        uint64_t v = mread(cpu, lin_seg(cpu, SEG_ES, di), sz);
        aset(cpu, GPR_RDI, di + (uint64_t)d, asz);
        setf(cpu, LF_SUB, sz, (a - v) & szmask(sz), a, v);
        cnt--;
        if (!in->rep) return;
        aset(cpu, GPR_RCX, cnt, asz);
        if ((in->rep == 0xf3) != (a == v)) return;
    }
}

HANDLER(h_cmps)
{
    unsigned sz = in->osz, asz = in->asz;
    int64_t d = step(cpu, sz);
    uint64_t cnt = in->rep ? areg(cpu, GPR_RCX, asz) : 1;
    for (unsigned n = 0; cnt; n++) {
        if (in->rep && rep_more(cpu, n)) return;
        uint64_t si = areg(cpu, GPR_RSI, asz), di = areg(cpu, GPR_RDI, asz);
        uint64_t a = mread(cpu, lin_seg(cpu, in->seg, si), sz);
        uint64_t b = mread(cpu, lin_seg(cpu, SEG_ES, di), sz);
        aset(cpu, GPR_RSI, si + (uint64_t)d, asz);
        aset(cpu, GPR_RDI, di + (uint64_t)d, asz);
        setf(cpu, LF_SUB, sz, (a - b) & szmask(sz), a, b);
        cnt--;
        if (!in->rep) return;
        aset(cpu, GPR_RCX, cnt, asz);
        if ((in->rep == 0xf3) != (a == b)) return;
    }
}

void h_ins(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz, asz = in->asz;
    int64_t d = step(cpu, sz);
    uint16_t port = (uint16_t)cpu->s.gpr[GPR_RDX];
    FOR_EACH_ELEMENT(cpu, in, asz) {
        uint64_t di = areg(cpu, GPR_RDI, asz);
        uint64_t la = lin_seg(cpu, SEG_ES, di);
        (void)emu_translate(cpu, la, 1, ACC_WRITE, &(uint64_t){0}); /* fault before the port read */
        uint64_t v = 0;
        emu_sys_in(cpu, port, sz, &v);
        mwrite(cpu, la, v, sz);
        aset(cpu, GPR_RDI, di + (uint64_t)d, asz);
    }
}

void h_outs(struct emu_cpu *cpu, const struct insn *in)
{
    unsigned sz = in->osz, asz = in->asz;
    int64_t d = step(cpu, sz);
    uint16_t port = (uint16_t)cpu->s.gpr[GPR_RDX];
    FOR_EACH_ELEMENT(cpu, in, asz) {
        uint64_t si = areg(cpu, GPR_RSI, asz);
        uint64_t v = mread(cpu, lin_seg(cpu, in->seg, si), sz);
        emu_sys_out(cpu, port, sz, v);
        aset(cpu, GPR_RSI, si + (uint64_t)d, asz);
    }
}
