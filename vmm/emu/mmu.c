/* mmu: the emulator's linear->physical translation: 4-level long-mode paging (4 KiB, 2 MiB and
 * 1 GiB pages, NX, U/S, R/W with CR0.WP, accessed/dirty bits, reserved-bit checks), legacy
 * 32-bit paging (4 KiB and 4 MiB pages) and PAE paging (4 KiB and 2 MiB pages, NX), the
 * software TLB the inline fast paths in mmu.h consult, the slow-path accessors (page-crossing
 * accesses, MMIO through the machine's bus) and the code-page write protection that keeps the
 * decoded-instruction cache coherent.
 *
 * TLB privilege rule: an entry is installed only by an access whose privilege matches the
 * current CPL, so entries filled at CPL3 are valid for user accesses and (no SMEP/SMAP) also
 * for supervisor ones; entries filled at CPL0 that allow what CPL3 may not are marked
 * EMU_TLB_PRIVILEGED and dropped whenever the CPU enters CPL3 from a more privileged level
 * (emu_update_mode), so user pages stay cached across system calls and interrupts.
 */
#include <string.h>

#include "devices/lapic.h"
#include "vmm/emu/mmu.h"
#include "vmm/log.h"
#include "vmm/machine.h"

#define PTE_P (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_US (1ULL << 2)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_NX (1ULL << 63)
#define PTE_ADDR (EMU_PHYS_MASK & ~0xfffULL)
/* bits MAXPHYADDR..51 are reserved in every paging-structure entry */
#define PTE_RSVD_HIGH (((1ULL << 52) - 1) & ~EMU_PHYS_MASK)

struct walk {
    uint64_t gpa;      /* guest-physical address of la */
    bool user_ok;      /* U/S=1 at every level */
    bool write_ok;     /* R/W=1 at every level */
    bool nx;           /* XD at some level (with EFER.NXE) */
    bool dirty;        /* leaf D bit (after this access) */
    bool large_1g;
};

static __attribute__((noreturn)) void page_fault(struct emu_cpu *cpu, uint64_t la, uint32_t pfec)
{
    cpu->s.cr2 = la;
    emu_raise(cpu, EXC_PF, pfec, true);
}

static uint32_t pfec_for(const struct emu_cpu *cpu, enum emu_access acc, bool user)
{
    uint32_t e = 0;
    if (acc == ACC_WRITE) e |= PFEC_W;
    if (user) e |= PFEC_U;
    if (acc == ACC_FETCH && (cpu->s.efer & EFER_NXE)) e |= PFEC_I;
    return e;
}

/* The end of every walk: the access against the combined permissions (#PF with P set), then
 * the leaf's dirty bit for a write (an `esz`-byte entry at leaf_p). */
static void walk_finish(struct emu_cpu *cpu, uint64_t la, enum emu_access acc, bool user, struct walk *w,
                        void *leaf_p, uint64_t leaf, unsigned esz)
{
    bool fault = false;
    if (user && !w->user_ok) fault = true;
    if (acc == ACC_WRITE && !w->write_ok && (user || (cpu->s.cr0 & CR0_WP))) fault = true;
    if (acc == ACC_FETCH && w->nx) fault = true;
    if (fault) page_fault(cpu, la, pfec_for(cpu, acc, user) | PFEC_P);
    if (acc == ACC_WRITE && !(leaf & PTE_D)) {
        leaf |= PTE_D;
        memcpy(leaf_p, &leaf, esz);
    }
    w->dirty = leaf & PTE_D;
}

/* Outside long mode: 32-bit paging (two levels of 4-byte entries, 4 MiB pages with CR4.PSE, no
 * NX) or PAE paging (CR3 -> four PDPTEs -> 8-byte PDEs and PTEs as in long mode, 2 MiB pages, NX
 * with EFER.NXE; the PDPTEs are read at each walk rather than cached at the CR3 load). Entries
 * outside guest RAM read as not present. A/D bits are written in the entry's own size. */
static void walk_legacy(struct emu_cpu *cpu, uint64_t la, enum emu_access acc, bool user, struct walk *w)
{
    const bool pae = cpu->s.cr4 & CR4_PAE, nxe = pae && (cpu->s.efer & EFER_NXE);
    const unsigned esz = pae ? 8 : 4;
    uint64_t table;
    int level;
    w->gpa = 0;
    w->user_ok = w->write_ok = true;
    w->nx = false;
    w->large_1g = false;
    la &= 0xffffffffULL;
    if (pae) {
        uint64_t pdpte_gpa = (cpu->s.cr3 & 0xffffffe0ULL) + ((la >> 30) & 3) * 8;
        uint64_t pdpte = 0;
        const void *p = guest_mem_ptr(&cpu->m->mem, pdpte_gpa, 8);
        if (p) memcpy(&pdpte, p, 8);
        if (!(pdpte & PTE_P)) page_fault(cpu, la, pfec_for(cpu, acc, user));
        if (pdpte & (PTE_RSVD_HIGH | PTE_NX | 0x1e6ULL)) page_fault(cpu, la, pfec_for(cpu, acc, user) | PFEC_P | PFEC_RSVD);
        table = pdpte & PTE_ADDR;
        level = 2;
    } else {
        table = cpu->s.cr3 & 0xfffff000ULL;
        level = 2;
    }
    uint8_t *leaf_p = NULL;
    uint64_t leaf = 0;
    for (; level >= 1; level--) {
        unsigned shift = pae ? 12 + 9 * (unsigned)(level - 1) : 12 + 10 * (unsigned)(level - 1);
        unsigned idx = pae ? (unsigned)((la >> shift) & 511) : (unsigned)((la >> shift) & 1023);
        uint8_t *p = guest_mem_ptr(&cpu->m->mem, table + (uint64_t)idx * esz, esz);
        uint64_t pte = 0;
        if (p) memcpy(&pte, p, esz);
        if (!(pte & PTE_P)) page_fault(cpu, la, pfec_for(cpu, acc, user));
        bool is_leaf = level == 1;
        uint64_t rsvd = 0, addr_mask = pae ? PTE_ADDR : 0xfffff000ULL;
        if (pae) rsvd = PTE_RSVD_HIGH | (nxe ? 0 : PTE_NX);
        if (level == 2 && (pte & PTE_PS) && (pae || (cpu->s.cr4 & CR4_PSE))) {
            is_leaf = true;
            /* 2 MiB: bits 20:13 reserved; 4 MiB: bits 21:13 (no PSE-36 advertised) */
            rsvd |= pae ? 0x1fe000ULL : 0x3fe000ULL;
            addr_mask = pae ? PTE_ADDR : 0xffc00000ULL;
        }
        if (pte & rsvd) page_fault(cpu, la, pfec_for(cpu, acc, user) | PFEC_P | PFEC_RSVD);
        if (!(pte & PTE_RW)) w->write_ok = false;
        if (!(pte & PTE_US)) w->user_ok = false;
        if (nxe && (pte & PTE_NX)) w->nx = true;
        if (!(pte & PTE_A)) {
            pte |= PTE_A;
            memcpy(p, &pte, esz);
        }
        if (is_leaf) {
            uint64_t page_mask = (1ULL << shift) - 1;
            w->gpa = ((pte & addr_mask) & ~page_mask) | (la & page_mask);
            w->large_1g = shift > 21; /* a 4 MiB page: INVLPG flushes everything */
            leaf_p = p;
            leaf = pte;
            break;
        }
        table = pte & addr_mask;
    }
    walk_finish(cpu, la, acc, user, w, leaf_p, leaf, esz);
}

/* The 4-level walk. Page-table entries outside guest RAM read as not present: a hostile page
 * table never makes us read host memory outside the guest mapping. */
static void walk_long(struct emu_cpu *cpu, uint64_t la, enum emu_access acc, bool user, struct walk *w)
{
    const bool nxe = cpu->s.efer & EFER_NXE;
    uint64_t table = cpu->s.cr3 & PTE_ADDR;
    uint64_t *leaf_p = NULL;
    uint64_t leaf = 0;
    w->gpa = 0;
    w->user_ok = w->write_ok = true;
    w->nx = false;
    w->large_1g = false;
    for (int level = 4; level >= 1; level--) {
        unsigned shift = 12 + 9 * (unsigned)(level - 1);
        uint64_t pte_gpa = table + ((la >> shift) & 511) * 8;
        uint64_t *p = guest_mem_ptr(&cpu->m->mem, pte_gpa, 8);
        uint64_t pte = 0;
        if (p) memcpy(&pte, p, 8);
        if (!(pte & PTE_P)) page_fault(cpu, la, pfec_for(cpu, acc, user));
        uint64_t rsvd = PTE_RSVD_HIGH | (nxe ? 0 : PTE_NX);
        bool is_leaf = level == 1;
        if (pte & PTE_PS) {
            if (level == 4) rsvd |= PTE_PS;
            else if (level == 3) { rsvd |= 0x3FFFE000ULL; is_leaf = true; }
            else if (level == 2) { rsvd |= 0x1FE000ULL; is_leaf = true; }
        }
        if (pte & rsvd) page_fault(cpu, la, pfec_for(cpu, acc, user) | PFEC_P | PFEC_RSVD);
        if (!(pte & PTE_RW)) w->write_ok = false;
        if (!(pte & PTE_US)) w->user_ok = false;
        if (nxe && (pte & PTE_NX)) w->nx = true;
        if (!(pte & PTE_A)) {
            pte |= PTE_A;
            memcpy(p, &pte, 8);
        }
        if (is_leaf) {
            uint64_t page_mask = (1ULL << shift) - 1;
            w->gpa = ((pte & PTE_ADDR) & ~page_mask) | (la & page_mask);
            w->large_1g = level == 3;
            leaf_p = p;
            leaf = pte;
            break;
        }
        table = pte & PTE_ADDR;
    }
    walk_finish(cpu, la, acc, user, w, leaf_p, leaf, 8);
}

static bool code_page(const struct emu_cpu *cpu, uint64_t gpa)
{
    uint64_t pfn = gpa >> 12;
    return cpu->code_bitmap && pfn < cpu->code_bitmap_pages && (cpu->code_bitmap[pfn >> 3] >> (pfn & 7)) & 1;
}

void *mmu_lookup(struct emu_cpu *cpu, uint64_t la, enum emu_access acc, bool user, uint64_t *gpa)
{
    struct emu_tlb_entry *e = emu_tlb_slot(cpu, la);
    uint64_t tag = emu_tlb_tag(la);
    uint64_t hit = acc == ACC_READ ? e->tag_read : acc == ACC_WRITE ? e->tag_write : e->tag_fetch;
    if (hit == tag) {
        *gpa = (e->gpa_page & ~0xfffULL) | (la & 0xfff);
        return (void *)(e->host_addend + la);
    }

    struct walk w;
    if (cpu->paging && (cpu->s.efer & EFER_LMA)) {
        if (!emu_canonical(la)) emu_raise_gp0(cpu);
        walk_long(cpu, la, acc, user, &w);
    } else if (cpu->paging) {
        walk_legacy(cpu, la, acc, user, &w);
    } else {
        w.gpa = la;
        w.user_ok = w.write_ok = w.dirty = true;
        w.nx = w.large_1g = false;
    }
    w.gpa &= ~cpu->a20_clear;
    *gpa = w.gpa;
    uint64_t page = w.gpa & ~0xfffULL;
    uint8_t *host = guest_mem_ptr(&cpu->m->mem, page, 4096);
    if (!host) return NULL; /* MMIO (or nothing): never cached in the TLB */

    if (acc == ACC_WRITE && code_page(cpu, page)) cpu->code_written(cpu, page);

    if (user == (cpu->cpl == 3)) {
        bool may_read = !user || w.user_ok;
        bool may_write = may_read && (w.write_ok || (!user && !(cpu->s.cr0 & CR0_WP)));
        e->tag_read = may_read ? tag : 0;
        e->tag_write = may_write && w.dirty && !code_page(cpu, page) ? tag : 0;
        e->tag_fetch = may_read && !w.nx ? tag : 0;
        e->host_addend = (uintptr_t)host - (uintptr_t)(la & ~0xfffULL);
        /* an entry filled at CPL0..2 that grants more than CPL3 may use is marked in the
         * low bits of gpa_page; entering CPL3 drops only those (emu_tlb_drop_privileged) */
        bool privileged = !user && (!w.user_ok || (e->tag_write && !w.write_ok));
        e->gpa_page = page | (privileged ? EMU_TLB_PRIVILEGED : 0);
        if (w.large_1g) cpu->tlb_has_1g = 1;
    }
    return host + (la & 0xfff);
}

void *emu_translate(struct emu_cpu *cpu, uint64_t la, unsigned len, enum emu_access acc, uint64_t *gpa)
{
    (void)len;
    uint64_t g;
    void *p = mmu_lookup(cpu, la, acc, cpu->cpl == 3, &g);
    if (gpa) *gpa = g;
    return p;
}

/* The local APIC's xAPIC page is per vCPU, so it is not on the machine's MMIO bus. Whether it
 * claims gpa depends only on IA32_APIC_BASE, which only this vCPU's thread changes (WRMSR, or
 * set_state while paused): checked without the lock, so other MMIO pays no extra lock round. */
static bool lapic_mmio(struct emu_cpu *cpu, uint64_t gpa, uint64_t *v, unsigned size, bool is_write)
{
    if (!cpu->lapic || !lapic_mmio_claims(cpu->lapic, gpa)) return false;
    pthread_mutex_lock(&cpu->m->dev_lock);
    if (is_write) lapic_mmio_write(cpu->lapic, (uint32_t)(gpa & 0xfff), v, size);
    else lapic_mmio_read(cpu->lapic, (uint32_t)(gpa & 0xfff), v, size);
    pthread_mutex_unlock(&cpu->m->dev_lock);
    return true;
}

static uint64_t mmio_read(struct emu_cpu *cpu, uint64_t gpa, unsigned size)
{
    uint64_t v = 0;
    if (lapic_mmio(cpu, gpa, &v, size, false)) return size >= 8 ? v : v & ((1ULL << (size * 8)) - 1);
    if (!machine_mmio(cpu->m, gpa, &v, size, false)) {
        log_debug("emu: unclaimed MMIO read 0x%llx size %u", (unsigned long long)gpa, size);
        v = ~0ULL;
    }
    return size >= 8 ? v : v & ((1ULL << (size * 8)) - 1);
}

static void mmio_write(struct emu_cpu *cpu, uint64_t gpa, uint64_t val, unsigned size)
{
    if (lapic_mmio(cpu, gpa, &val, size, true)) return;
    if (!machine_mmio(cpu->m, gpa, &val, size, true))
        log_debug("emu: unclaimed MMIO write 0x%llx size %u", (unsigned long long)gpa, size);
}

/* Read `n` bytes (within one page) given the lookup result. */
static void read_part(struct emu_cpu *cpu, void *host, uint64_t gpa, uint8_t *dst, unsigned n)
{
    if (host) {
        memcpy(dst, host, n);
    } else if (n == 1 || n == 2 || n == 4 || n == 8) {
        uint64_t v = mmio_read(cpu, gpa, n);
        memcpy(dst, &v, n); /* little-endian host */
    } else {
        for (unsigned i = 0; i < n; i++) dst[i] = (uint8_t)mmio_read(cpu, gpa + i, 1);
    }
}

static void write_part(struct emu_cpu *cpu, void *host, uint64_t gpa, const uint8_t *src, unsigned n)
{
    if (host) {
        memcpy(host, src, n);
    } else if (n == 1 || n == 2 || n == 4 || n == 8) {
        uint64_t v = 0;
        memcpy(&v, src, n);
        mmio_write(cpu, gpa, v, n);
    } else {
        for (unsigned i = 0; i < n; i++) mmio_write(cpu, gpa + i, src[i], 1);
    }
}

uint64_t mmu_read(struct emu_cpu *cpu, uint64_t la, unsigned size, enum emu_access acc, bool user)
{
    uint8_t buf[8] = {0};
    unsigned off = la & 0xfff;
    uint64_t gpa;
    if (off + size <= 4096) {
        void *host = mmu_lookup(cpu, la, acc, user, &gpa);
        read_part(cpu, host, gpa, buf, size);
    } else {
        unsigned n1 = 4096 - off;
        uint64_t gpa2;
        void *h1 = mmu_lookup(cpu, la, acc, user, &gpa);
        void *h2 = mmu_lookup(cpu, la + n1, acc, user, &gpa2);
        read_part(cpu, h1, gpa, buf, n1);
        read_part(cpu, h2, gpa2, buf + n1, size - n1);
    }
    uint64_t v;
    memcpy(&v, buf, 8);
    return v;
}

void mmu_write(struct emu_cpu *cpu, uint64_t la, uint64_t val, unsigned size, bool user)
{
    uint8_t buf[8];
    memcpy(buf, &val, 8);
    unsigned off = la & 0xfff;
    uint64_t gpa;
    if (off + size <= 4096) {
        void *host = mmu_lookup(cpu, la, ACC_WRITE, user, &gpa);
        write_part(cpu, host, gpa, buf, size);
    } else {
        /* translate both pages before writing anything: a fault on the second page must
         * leave the first unmodified */
        unsigned n1 = 4096 - off;
        uint64_t gpa2;
        mmu_lookup(cpu, la, ACC_WRITE, user, &gpa);
        void *h2 = mmu_lookup(cpu, la + n1, ACC_WRITE, user, &gpa2);
        void *h1 = mmu_lookup(cpu, la, ACC_WRITE, user, &gpa); /* may have been evicted */
        write_part(cpu, h1, gpa, buf, n1);
        write_part(cpu, h2, gpa2, buf + n1, size - n1);
    }
}

void mmu_probe_write(struct emu_cpu *cpu, uint64_t la, unsigned len, bool user)
{
    if (len == 0) return;
    uint64_t gpa, last = la + len - 1;
    for (uint64_t p = la & ~0xfffULL;; p += 4096) {
        mmu_lookup(cpu, p < la ? la : p, ACC_WRITE, user, &gpa);
        if (p >= (last & ~0xfffULL)) break;
    }
}

uint64_t emu_read_slow(struct emu_cpu *cpu, uint64_t la, unsigned size, enum emu_access acc)
{
    return mmu_read(cpu, la, size, acc, cpu->cpl == 3);
}

void emu_write_slow(struct emu_cpu *cpu, uint64_t la, uint64_t val, unsigned size)
{
    mmu_write(cpu, la, val, size, cpu->cpl == 3);
}

void emu_read_bytes(struct emu_cpu *cpu, uint64_t la, void *dst, unsigned len)
{
    uint8_t *d = dst;
    bool user = cpu->cpl == 3;
    while (len > 0) {
        unsigned n = 4096 - (la & 0xfff);
        if (n > len) n = len;
        uint64_t gpa;
        void *host = mmu_lookup(cpu, la, ACC_READ, user, &gpa);
        read_part(cpu, host, gpa, d, n);
        d += n;
        la += n;
        len -= n;
    }
}

void emu_write_bytes(struct emu_cpu *cpu, uint64_t la, const void *src, unsigned len)
{
    const uint8_t *s = src;
    bool user = cpu->cpl == 3;
    mmu_probe_write(cpu, la, len, user);
    while (len > 0) {
        unsigned n = 4096 - (la & 0xfff);
        if (n > len) n = len;
        uint64_t gpa;
        void *host = mmu_lookup(cpu, la, ACC_WRITE, user, &gpa);
        write_part(cpu, host, gpa, s, n);
        s += n;
        la += n;
        len -= n;
    }
}

void emu_a20_sync(struct emu_cpu *cpu)
{
    unsigned gen = atomic_load(&cpu->m->a20_gen);
    if (gen == cpu->a20_gen) return;
    cpu->a20_gen = gen;
    uint64_t clear = machine_a20_enabled(cpu->m) ? 0 : 1ULL << 20;
    if (clear == cpu->a20_clear) return;
    cpu->a20_clear = clear;
    emu_tlb_flush(cpu); /* entries and cached blocks were found through the old mapping */
}

void emu_tlb_flush(struct emu_cpu *cpu)
{
    memset(cpu->tlb, 0, sizeof(cpu->tlb));
    cpu->tlb_has_1g = 0;
}

void emu_tlb_flush_page(struct emu_cpu *cpu, uint64_t la)
{
    if (cpu->tlb_has_1g) {
        emu_tlb_flush(cpu);
        return;
    }
    /* The TLB holds 4 KiB pieces of large pages in separate slots: drop every entry of the
     * 2 MiB region around la (covers both 4 KiB and 2 MiB pages). */
    uint64_t region = la >> 21;
    for (unsigned i = 0; i < EMU_TLB_SIZE; i++) {
        struct emu_tlb_entry *e = &cpu->tlb[i];
        uint64_t t = e->tag_read | e->tag_write | e->tag_fetch;
        if (!t) continue;
        uint64_t tag = e->tag_read ? e->tag_read : e->tag_write ? e->tag_write : e->tag_fetch;
        if ((tag >> 10) == region) memset(e, 0, sizeof(*e));
    }
}

void emu_tlb_protect_code(struct emu_cpu *cpu, uint64_t gpa)
{
    uint64_t page = gpa & ~0xfffULL;
    for (unsigned i = 0; i < EMU_TLB_SIZE; i++)
        if ((cpu->tlb[i].gpa_page & ~0xfffULL) == page) cpu->tlb[i].tag_write = 0;
}

void emu_tlb_drop_privileged(struct emu_cpu *cpu)
{
    for (unsigned i = 0; i < EMU_TLB_SIZE; i++)
        if (cpu->tlb[i].gpa_page & EMU_TLB_PRIVILEGED) memset(&cpu->tlb[i], 0, sizeof(cpu->tlb[i]));
}

uint64_t emu_seg_linear_checked(struct emu_cpu *cpu, int seg, uint64_t offset, unsigned size, enum emu_access acc)
{
    if (cpu->long64) {
        uint64_t la = offset;
        if (seg == SEG_FS || seg == SEG_GS) la += cpu->s.seg[seg].base;
        if (!emu_canonical(la) || !emu_canonical(la + (size ? size - 1 : 0))) {
            if (seg == SEG_SS) emu_raise(cpu, EXC_SS, 0, true);
            emu_raise_gp0(cpu);
        }
        return la;
    }
    /* legacy protected / compatibility mode: limit and type checks, 32-bit linear address */
    const struct cpu_segment *s = &cpu->s.seg[seg];
    int vec = seg == SEG_SS ? EXC_SS : EXC_GP;
    if ((cpu->s.cr0 & CR0_PE) && s->unusable) emu_raise(cpu, vec, 0, true);
    if (cpu->s.cr0 & CR0_PE) {
        if (acc == ACC_WRITE && (!s->s || (s->type & 8) || !(s->type & 2))) emu_raise(cpu, vec, 0, true);
        if (acc == ACC_READ && s->s && (s->type & 8) && !(s->type & 2)) emu_raise(cpu, vec, 0, true);
    }
    uint64_t last = offset + (size ? size - 1 : 0);
    bool expand_down = s->s && !(s->type & 8) && (s->type & 4);
    if (expand_down) {
        uint64_t upper = s->db ? 0xffffffffULL : 0xffffULL;
        if (offset <= s->limit || last > upper) emu_raise(cpu, vec, 0, true);
    } else if (last > s->limit) {
        emu_raise(cpu, vec, 0, true);
    }
    return (s->base + offset) & 0xffffffffULL;
}
