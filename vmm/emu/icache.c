/* icache: the decoded-block cache and the dispatch loop emu_exec (the top of the exec part).
 *
 * A block is a run of decoded instructions starting at a guest-physical address and ending at
 * a control transfer, a system instruction, the end of its page or BLOCK_MAX_INSNS. Blocks
 * are keyed by (guest-physical address, mode) and listed per guest-physical page; the page's
 * bit in cpu->code_bitmap is set and its fast-path TLB write access removed, so the first
 * write to it reaches emu_code_written(), which drops the page's blocks. Blocks are found through
 * the linear address of RIP (CS.base + EIP outside 64-bit mode). An instruction that crosses a
 * page boundary, or code outside RAM (a ROM), is decoded and executed uncached each time.
 *
 * Blocks remember up to two successors (chaining). Following a link still checks that the
 * successor is valid, has the current mode, and that the fetch TLB maps its virtual page to
 * the block's physical page (a CR3 switch or remap falls back to a full lookup).
 *
 * Blocks live in one arena; invalidated blocks stay there (links may still point at them,
 * guarded by `valid`) until the arena fills, when everything is flushed between blocks.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "vmm/emu/exec.h"
#include "vmm/emu/icache.h"
#include "vmm/log.h"
#include "vmm/machine.h"

#define BLOCK_MAX_INSNS 64
#define ARENA_SIZE (48u << 20)
#define BLOCK_HASH_BITS 16
#define PAGE_HASH_BITS 12

struct block {
    struct block *hash_next;
    struct block *page_next;
    struct block *succ[2];
    uint64_t succ_rip[2];
    uint64_t gpa;
    uint32_t mode;
    uint16_t ninsn;
    uint8_t valid;
    uint8_t succ_next;
    struct insn insns[];
};

struct code_page {
    uint64_t gpa_page;
    struct block *blocks;
    struct code_page *next;
};

struct emu_icache {
    struct exec_hot hot; /* first member: exec.h reaches it through cpu->icache */
    uint8_t *arena;
    size_t arena_used;
    uint32_t gen; /* bumped by every full flush */
    int flush_pending;
    bool running;
    bool own_bitmap;
    int trace; /* VMD_EMU_TRACE: 1 = log new blocks, 2 = log every block executed */
    struct block *hash[1u << BLOCK_HASH_BITS];
    struct code_page *pages[1u << PAGE_HASH_BITS];
    struct insn tmp[BLOCK_MAX_INSNS];
    struct block *scratch; /* one uncached instruction */
};

/* Fault bookkeeping shared between emu_exec and its loop (see emu_exec). */
struct exec_state {
    uint64_t done;
    struct block *cur;
    uint64_t cur_rip;
};

static inline uint32_t cur_mode(const struct emu_cpu *cpu) { return cpu->long64 | (cpu->code32 << 1); }
static inline unsigned block_hash(uint64_t gpa, uint32_t mode)
{
    return (unsigned)(((gpa * 0x9E3779B97F4A7C15ULL) >> 40) ^ mode) & ((1u << BLOCK_HASH_BITS) - 1);
}
static inline unsigned page_hash(uint64_t pg) { return (unsigned)((pg * 0x9E3779B97F4A7C15ULL) >> 52) & ((1u << PAGE_HASH_BITS) - 1); }

static void *arena_alloc(struct emu_icache *ic, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (ic->arena_used + n > ARENA_SIZE) return NULL;
    void *p = ic->arena + ic->arena_used;
    ic->arena_used += n;
    return p;
}

static void flush_all(struct emu_cpu *cpu)
{
    struct emu_icache *ic = cpu->icache;
    memset(ic->hash, 0, sizeof(ic->hash));
    memset(ic->pages, 0, sizeof(ic->pages));
    ic->arena_used = 0;
    ic->gen++;
    ic->flush_pending = 0;
    if (cpu->code_bitmap) memset(cpu->code_bitmap, 0, (cpu->code_bitmap_pages + 7) / 8);
}

int emu_exec_init(struct emu_cpu *cpu)
{
    struct emu_icache *ic = calloc(1, sizeof(*ic));
    if (!ic) return -12;
    ic->arena = malloc(ARENA_SIZE);
    ic->scratch = calloc(1, sizeof(struct block) + sizeof(struct insn));
    if (!ic->arena || !ic->scratch) {
        free(ic->arena);
        free(ic->scratch);
        free(ic);
        return -12;
    }
    ic->scratch->ninsn = 1;
    const char *t = getenv("VMD_EMU_TRACE");
    ic->trace = t ? atoi(t) : 0;
    if (!cpu->code_bitmap && cpu->m) {
        uint64_t top = 0;
        for (unsigned i = 0; i < cpu->m->mem.nregions; i++) {
            uint64_t end = cpu->m->mem.regions[i].gpa + cpu->m->mem.regions[i].size;
            if (end > top) top = end;
        }
        cpu->code_bitmap_pages = top >> 12;
        cpu->code_bitmap = calloc(1, (cpu->code_bitmap_pages + 7) / 8 + 1);
        if (!cpu->code_bitmap) {
            free(ic->arena);
            free(ic->scratch);
            free(ic);
            return -12;
        }
        ic->own_bitmap = true;
    }
    cpu->icache = ic;
    cpu->code_written = emu_code_written;
    return 0;
}

void emu_exec_destroy(struct emu_cpu *cpu)
{
    struct emu_icache *ic = cpu->icache;
    if (!ic) return;
    log_debug("emu: %llu instructions executed, %zu KiB of decoded blocks in use",
              (unsigned long long)cpu->insn_count, ic->arena_used / 1024);
    if (ic->own_bitmap) {
        free(cpu->code_bitmap);
        cpu->code_bitmap = NULL;
        cpu->code_bitmap_pages = 0;
    }
    free(ic->arena);
    free(ic->scratch);
    free(ic);
    cpu->icache = NULL;
}

void emu_icache_flush(struct emu_cpu *cpu)
{
    struct emu_icache *ic = cpu->icache;
    if (!ic) return;
    if (ic->running) {
        ic->flush_pending = 1;
        ic->hot.abort = 1;
        ic->hot.left = 0;
    } else {
        flush_all(cpu);
    }
}

void emu_code_written(struct emu_cpu *cpu, uint64_t gpa)
{
    struct emu_icache *ic = cpu->icache;
    uint64_t pg = gpa >> 12;
    if (pg < cpu->code_bitmap_pages) cpu->code_bitmap[pg >> 3] &= (uint8_t)~(1u << (pg & 7));
    if (!ic) return;
    struct code_page **pp = &ic->pages[page_hash(pg)];
    while (*pp && (*pp)->gpa_page != pg) pp = &(*pp)->next;
    struct code_page *cp = *pp;
    if (!cp) return;
    *pp = cp->next;
    for (struct block *b = cp->blocks; b; b = b->page_next) {
        b->valid = 0;
        struct block **hp = &ic->hash[block_hash(b->gpa, b->mode)];
        while (*hp && *hp != b) hp = &(*hp)->hash_next;
        if (*hp) *hp = b->hash_next;
    }
    /* the running block may be one of them: leave it after this instruction */
    ic->hot.abort = 1;
    ic->hot.left = 0;
}

/* The linear address of the code at rip: rip in 64-bit mode, CS.base + EIP (IP) wrapping at
 * 4 GiB elsewhere (real mode's CS base is selector << 4). Blocks are found through it. */
static inline uint64_t code_linear(const struct emu_cpu *cpu, uint64_t rip)
{
    return cpu->long64 ? rip : (uint32_t)(cpu->s.seg[SEG_CS].base + rip);
}

/* Fetch instruction bytes one at a time through the slow path (page-crossing or MMIO). */
static struct block *decode_uncached(struct emu_cpu *cpu, uint64_t rip)
{
    struct emu_icache *ic = cpu->icache;
    uint8_t buf[16];
    uint64_t la = code_linear(cpu, rip);
    unsigned have = 0, want = (unsigned)(4096 - (la & 0xfff));
    if (want > 15) want = 15;
    for (;;) {
        while (have < want) {
            uint64_t a = la + have;
            if (!cpu->long64) a = (uint32_t)a;
            buf[have] = (uint8_t)emu_read_slow(cpu, a, 1, ACC_FETCH);
            have++;
        }
        int r = emu_decode(buf, have, emu_decode_mode(cpu), &ic->scratch->insns[0]);
        if (r != DECODE_NEED_MORE) break;
        want = 15;
    }
    ic->scratch->valid = 0;
    return ic->scratch;
}

static void link_page(struct emu_cpu *cpu, struct emu_icache *ic, struct block *b)
{
    uint64_t pg = b->gpa >> 12;
    struct code_page **pp = &ic->pages[page_hash(pg)];
    struct code_page *cp = *pp;
    while (cp && cp->gpa_page != pg) cp = cp->next;
    if (!cp) {
        cp = arena_alloc(ic, sizeof(*cp));
        cp->gpa_page = pg;
        cp->blocks = NULL;
        cp->next = *pp;
        *pp = cp;
        cpu->code_bitmap[pg >> 3] |= (uint8_t)(1u << (pg & 7));
        emu_tlb_protect_code(cpu, pg << 12);
    }
    b->page_next = cp->blocks;
    cp->blocks = b;
}

/* Find or build the block at rip. May raise #PF (instruction fetch). */
static struct block *lookup(struct emu_cpu *cpu, struct emu_icache *ic, uint64_t rip)
{
    /* blocks are found through the linear address of rip (code_linear: CS.base + EIP outside
     * 64-bit mode, so real-mode code with its CS = selector << 4 is cached too) and keyed by
     * its guest-physical address and the mode; mode 0 decodes as #UD */
    unsigned dmode = emu_decode_mode(cpu);
    if (!cpu->long64) {
        /* EIP/IP past CS.limit (sequential execution off the end of the segment): #GP(0) */
        if (dmode != 0 && rip > cpu->s.seg[SEG_CS].limit) emu_raise_gp0(cpu);
        if (dmode == 0) return decode_uncached(cpu, rip);
    }
    uint64_t la = code_linear(cpu, rip);
    struct emu_tlb_entry *e = emu_tlb_slot(cpu, la);
    const uint8_t *host;
    uint64_t gpa;
    if (e->tag_fetch == emu_tlb_tag(la)) {
        host = (const uint8_t *)(e->host_addend + la);
        gpa = (e->gpa_page & ~0xfffULL) | (la & 0xfff);
    } else {
        gpa = 0;
        host = emu_translate(cpu, la, 1, ACC_FETCH, &gpa);
        if (host) {
            e = emu_tlb_slot(cpu, la);
            if (e->tag_fetch == emu_tlb_tag(la)) gpa = (e->gpa_page & ~0xfffULL) | (la & 0xfff);
        }
    }
    if (!host || (gpa >> 12) >= cpu->code_bitmap_pages) return decode_uncached(cpu, rip);
    uint32_t mode = cur_mode(cpu);
    unsigned h = block_hash(gpa, mode);
    for (struct block *b = ic->hash[h]; b; b = b->hash_next)
        if (b->gpa == gpa && b->mode == mode) return b;

    /* decode a new block from the page; outside 64-bit mode it ends at CS.limit, so that
     * running on past the limit comes back here and raises #GP (rip <= limit was checked) */
    unsigned off = (unsigned)(la & 0xfff), pos = 0, n = 0;
    uint64_t room = cpu->long64 ? ~0ULL : cpu->s.seg[SEG_CS].limit - rip + 1;
    while (n < BLOCK_MAX_INSNS) {
        unsigned left = 4096 - off - pos;
        if (left == 0 || pos >= room) break;
        int r = emu_decode(host + pos, left < 15 ? left : 15, dmode, &ic->tmp[n]);
        if (r == DECODE_NEED_MORE) break;
        pos += (unsigned)r;
        n++;
        if (ic->tmp[n - 1].flags & IF_END_BLOCK) break;
    }
    if (n == 0) return decode_uncached(cpu, rip);
    size_t need = sizeof(struct block) + n * sizeof(struct insn) + sizeof(struct code_page) + 32;
    if (ic->arena_used + need > ARENA_SIZE) flush_all(cpu);
    struct block *b = arena_alloc(ic, sizeof(struct block) + n * sizeof(struct insn));
    if (!b) return decode_uncached(cpu, rip);
    memset(b, 0, sizeof(*b));
    memcpy((uint8_t *)b + sizeof(struct block), ic->tmp, n * sizeof(struct insn));
    b->gpa = gpa;
    b->mode = mode;
    b->ninsn = (uint16_t)n;
    b->valid = 1;
    b->hash_next = ic->hash[h];
    ic->hash[h] = b;
    link_page(cpu, ic, b);
    if (ic->trace) log_info("emu: block at rip %#llx gpa %#llx, %u insns", (unsigned long long)rip, (unsigned long long)gpa, n);
    return b;
}

static inline struct block *follow_link(struct emu_cpu *cpu, struct block *prev, uint64_t rip, uint32_t mode)
{
    for (int i = 0; i < 2; i++) {
        struct block *s = prev->succ[i];
        if (s && prev->succ_rip[i] == rip && s->valid && s->mode == mode) {
            /* the same rip under another CS base (real mode) may be another address */
            uint64_t la = code_linear(cpu, rip);
            struct emu_tlb_entry *e = emu_tlb_slot(cpu, la);
            if (e->tag_fetch == emu_tlb_tag(la) && ((e->gpa_page & ~0xfffULL) | (la & 0xfff)) == s->gpa) return s;
            return NULL;
        }
    }
    return NULL;
}

static __attribute__((noinline)) void run_loop(struct emu_cpu *cpu, uint64_t budget, struct exec_state *st)
{
    struct emu_icache *ic = cpu->icache;
    struct block *prev = NULL;
    while (st->done < budget) {
        if (atomic_load_explicit(&cpu->irq_check, memory_order_relaxed) || cpu->s.halted ||
            (cpu->m && machine_stop_requested(cpu->m)))
            break;
        if (unlikely(ic->flush_pending)) {
            flush_all(cpu);
            prev = NULL;
        }
        uint64_t rip = cpu->s.rip;
        uint32_t mode = cur_mode(cpu);
        struct block *b = prev ? follow_link(cpu, prev, rip, mode) : NULL;
        if (!b) {
            cpu->insn_rip = rip;
            st->cur = NULL;
            uint32_t gen = ic->gen;
            b = lookup(cpu, ic, rip);
            if (gen != ic->gen) prev = NULL;
            if (prev && b->valid) {
                unsigned slot = prev->succ_next;
                prev->succ[slot] = b;
                prev->succ_rip[slot] = rip;
                prev->succ_next = slot ^ 1;
            }
        }
        if (unlikely(ic->trace >= 2)) log_info("emu: exec rip %#llx", (unsigned long long)rip);
        uint64_t limit = budget - st->done;
        bool shadow = cpu->s.interrupt_shadow;
        if (shadow) limit = 1;
        unsigned n = b->ninsn < limit ? b->ninsn : (unsigned)limit;
        st->cur = b;
        st->cur_rip = rip;
        struct exec_hot *h = &ic->hot;
        h->abort = 0;
        h->pos = b->insns;
        h->left = n;
        while (h->left) {
            const struct insn *in = h->pos;
            h->left--;
            h->pos = in + 1;
            cpu->insn_rip = cpu->s.rip;
            cpu->s.rip += in->len;
            in->fn(cpu, in); /* may run further instructions itself (chain_next) */
        }
        unsigned k = (unsigned)(h->pos - b->insns);
        st->done += k + h->extra;
        h->extra = 0;
        st->cur = NULL;
        if (shadow) cpu->s.interrupt_shadow = 0;
        prev = (k == b->ninsn && !h->abort && b->valid) ? b : NULL;
    }
}

uint64_t emu_exec(struct emu_cpu *cpu, uint64_t budget)
{
    struct emu_icache *ic = cpu->icache;
    struct exec_state st = {0};
    struct exec_state *volatile stp = &st;
    volatile unsigned nested = 0;
    ic->running = true;
    if (setjmp(cpu->fault_jmp)) {
        /* An instruction faulted: count the ones of its block that completed, plus the faulting
         * one (so a fault loop still makes progress), then deliver the exception. */
        struct exec_state *s = stp;
        uint64_t n = 1;
        struct block *b = s->cur;
        if (b) {
            uint64_t r = s->cur_rip;
            for (unsigned k = 0; k < b->ninsn && r != cpu->insn_rip; k++) {
                r += b->insns[k].len;
                n++;
            }
        }
        s->done += n;
        s->cur = NULL;
        cpu->s.rip = cpu->insn_rip;
        cpu->s.interrupt_shadow = 0;
        s->done += ic->hot.extra;
        ic->hot.abort = 0;
        ic->hot.left = 0;
        ic->hot.extra = 0;
        if (ic->trace) log_info("emu: exception %d at rip %#llx", cpu->exc_vector, (unsigned long long)cpu->insn_rip);
        if (++nested > 64) {
            /* delivery keeps faulting without the system part resolving it: give up */
            log_error("emu: exception delivery loops at rip %#llx", (unsigned long long)cpu->insn_rip);
            if (cpu->m) machine_request_stop(cpu->m, MACHINE_STOP_ERROR);
            ic->running = false;
            return s->done;
        }
        emu_deliver_exception(cpu);
        nested = 0;
    }
    run_loop(cpu, budget, stp);
    ic->running = false;
    cpu->insn_count += stp->done;
    return stp->done;
}
