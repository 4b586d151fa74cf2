/* Unit tests for the emulator's system part: page walks (4K/2M/1G, NX, U/S, WP, A/D bits,
 * reserved bits, error codes, CR2), the TLB (INVLPG, CR3 reload, code-page protection),
 * page-crossing and MMIO accesses, hostile page tables, exception delivery frames (same
 * privilege, CPL3->0 with RSP0, IST), #DF and triple fault, INT n DPL checks, SYSCALL/SYSRET,
 * IRETQ to CPL3, MSRs and CPUID. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/emu/emu.h"
#include "vmm/emu/sys.h"
#include "vmm/machine.h"

#define RAM (16ULL << 20)
#define PML4 0x10000ULL
#define PDPT 0x11000ULL
#define PD 0x12000ULL
#define PT 0x13000ULL
#define GDT 0x20000ULL
#define IDT 0x21000ULL
#define TSS 0x22000ULL

#define P 1ULL
#define RW 2ULL
#define US 4ULL
#define PS 0x80ULL
#define A 0x20ULL
#define D 0x40ULL
#define NX (1ULL << 63)

struct fix {
    struct machine m;
    struct emu_cpu cpu;
};

static uint8_t *ram(struct fix *f, uint64_t gpa) { return guest_mem_ptr(&f->m.mem, gpa, 1); }
static uint64_t rd64(struct fix *f, uint64_t gpa)
{
    uint64_t v;
    memcpy(&v, ram(f, gpa), 8);
    return v;
}
static void wr64(struct fix *f, uint64_t gpa, uint64_t v) { memcpy(ram(f, gpa), &v, 8); }

static uint64_t code_desc(unsigned dpl, bool l)
{
    /* base 0, limit 0xfffff, G, P, S, type 0xb (code, read, accessed) */
    return 0x0000ffffULL | (0xbULL << 40) | (1ULL << 44) | ((uint64_t)dpl << 45) | (1ULL << 47) | (0xfULL << 48) |
           ((uint64_t)l << 53) | ((uint64_t)!l << 54) | (1ULL << 55);
}
static uint64_t data_desc(unsigned dpl)
{
    return 0x0000ffffULL | (0x3ULL << 40) | (1ULL << 44) | ((uint64_t)dpl << 45) | (1ULL << 47) | (0xfULL << 48) |
           (1ULL << 54) | (1ULL << 55);
}

static void set_gate(struct fix *f, unsigned vec, uint64_t target, uint16_t sel, unsigned type, unsigned dpl, unsigned ist)
{
    uint64_t lo = (target & 0xffff) | ((uint64_t)sel << 16) | ((uint64_t)ist << 32) | ((uint64_t)type << 40) |
                  ((uint64_t)dpl << 45) | (1ULL << 47) | ((target & 0xffff0000ULL) << 32);
    wr64(f, IDT + vec * 16, lo);
    wr64(f, IDT + vec * 16 + 8, target >> 32);
}

/* Identity-map the first 1 GiB with 2 MiB pages except [0, 2 MiB) which uses 4 KiB pages. */
static void setup_long_mode(struct fix *f)
{
    wr64(f, PML4, PDPT | P | RW | US);
    wr64(f, PDPT, PD | P | RW | US);
    wr64(f, PD, PT | P | RW | US);
    for (uint64_t i = 1; i < 512; i++) wr64(f, PD + i * 8, (i << 21) | P | RW | US | PS);
    for (uint64_t i = 0; i < 512; i++) wr64(f, PT + i * 8, (i << 12) | P | RW | US);
    /* GDT: 0x10 kernel code64, 0x18 kernel data, 0x23 user32 code, 0x2b user data, 0x33 user code64, 0x40 TSS */
    wr64(f, GDT + 0x10, code_desc(0, true));
    wr64(f, GDT + 0x18, data_desc(0));
    wr64(f, GDT + 0x20, code_desc(3, false));
    wr64(f, GDT + 0x28, data_desc(3));
    wr64(f, GDT + 0x30, code_desc(3, true));
    struct cpu_state *s = &f->cpu.s;
    s->cr0 = CR0_PE | CR0_PG | CR0_WP | CR0_ET;
    s->cr4 = CR4_PAE;
    s->cr3 = PML4;
    s->efer = EFER_LME | EFER_LMA | EFER_NXE | EFER_SCE;
    s->gdtr.base = GDT;
    s->gdtr.limit = 0x4f;
    s->idtr.base = IDT;
    s->idtr.limit = 0xfff;
    seg_load_flat_code(&s->seg[SEG_CS], 0x10, 0, true);
    seg_load_flat_data(&s->seg[SEG_SS], 0x18, 0);
    s->seg[SEG_TR] = (struct cpu_segment){.base = TSS, .limit = 0x67, .selector = 0x40, .type = 0xb, .present = 1};
    s->star = (0x23ULL << 48) | (0x10ULL << 32);
    s->lstar = 0x400000;
    s->sfmask = RFLAGS_IF | RFLAGS_TF;
    s->gpr[GPR_RSP] = 0x80000;
    emu_set_rflags(&f->cpu, RFLAGS_FIXED | RFLAGS_IF);
    emu_update_mode(&f->cpu);
    emu_tlb_flush(&f->cpu);
}

static int setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(guest_mem_init(&f->m.mem, RAM), 0);
    bus_init(&f->m.mmio);
    bus_init(&f->m.pio);
    pthread_mutex_init(&f->m.dev_lock, NULL);
    f->m.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    atomic_init(&f->m.stop, MACHINE_RUNNING);
    assert_int_equal(emu_cpu_init(&f->cpu, &f->m), 0);
    setup_long_mode(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    emu_cpu_destroy(&f->cpu);
    bus_free(&f->m.mmio);
    bus_free(&f->m.pio);
    guest_mem_free(&f->m.mem);
    pthread_mutex_destroy(&f->m.dev_lock);
    close(f->m.stop_fd);
    free(f);
    return 0;
}

/* Run an access; return the exception vector it raised, or -1. */
enum op { OP_READ, OP_WRITE, OP_FETCH };
static int try_access(struct emu_cpu *cpu, enum op op, uint64_t la, unsigned size, uint64_t *val)
{
    cpu->exc_vector = -1;
    if (setjmp(cpu->fault_jmp) == 0) {
        if (op == OP_WRITE) emu_write_slow(cpu, la, *val, size);
        else *val = emu_read_slow(cpu, la, size, op == OP_FETCH ? ACC_FETCH : ACC_READ);
        return -1;
    }
    return cpu->exc_vector;
}

static void set_cpl3(struct fix *f)
{
    seg_load_flat_code(&f->cpu.s.seg[SEG_CS], 0x33, 3, true);
    seg_load_flat_data(&f->cpu.s.seg[SEG_SS], 0x2b, 3);
    emu_update_mode(&f->cpu);
}

/* ---- paging ---- */

static void test_walk_4k_sets_accessed_and_dirty(void **state)
{
    struct fix *f = *state;
    wr64(f, PT + 5 * 8, 0x300000 | P | RW); /* la 0x5000 -> gpa 0x300000 */
    wr64(f, 0x300010, 0x1122334455667788ULL);
    uint64_t v = 0;
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x5010, 8, &v), -1);
    assert_int_equal(v, 0x1122334455667788ULL);
    assert_true(rd64(f, PT + 5 * 8) & A);
    assert_false(rd64(f, PT + 5 * 8) & D);
    assert_true(rd64(f, PML4) & A);
    /* the read installed a read tag only: the first write goes to the slow path and sets D */
    assert_int_equal(emu_read32(&f->cpu, 0x5010), 0x55667788u);
    emu_write32(&f->cpu, 0x5014, 0xdeadbeef);
    assert_true(rd64(f, PT + 5 * 8) & D);
    assert_int_equal(rd64(f, 0x300010), 0xdeadbeef55667788ULL);
}

static void test_walk_2m_and_1g_pages(void **state)
{
    struct fix *f = *state;
    /* 2 MiB: la 0x40000000+0x200000*3 via a second PD in PDPT[1] */
    wr64(f, PDPT + 8, (PD + 0x1000) | P | RW);
    wr64(f, PD + 0x1000 + 3 * 8, 0x600000 | P | RW | PS);
    wr64(f, 0x600000 + 0x1234, 0xabcdef);
    uint64_t v = 0;
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x40000000ULL + 3 * 0x200000 + 0x1234, 4, &v), -1);
    assert_int_equal(v, 0xabcdef);
    /* 1 GiB: PDPT[2] maps la 2 GiB.. onto gpa 0 */
    wr64(f, PDPT + 16, 0 | P | RW | PS);
    wr64(f, 0x700008, 0x77);
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x80000000ULL + 0x700008, 8, &v), -1);
    assert_int_equal(v, 0x77);
    assert_true(f->cpu.tlb_has_1g);
}

static void test_not_present_fault_code_and_cr2(void **state)
{
    struct fix *f = *state;
    wr64(f, PT + 7 * 8, 0);
    uint64_t v = 1;
    assert_int_equal(try_access(&f->cpu, OP_WRITE, 0x7008, 4, &v), EXC_PF);
    assert_int_equal(f->cpu.exc_error, PFEC_W);
    assert_true(f->cpu.exc_has_error);
    assert_int_equal(f->cpu.s.cr2, 0x7008);
    /* a PML4 slot that is empty */
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x00007f0000000000ULL, 4, &v), EXC_PF);
    assert_int_equal(f->cpu.exc_error, 0);
}

static void test_user_supervisor_and_wp(void **state)
{
    struct fix *f = *state;
    wr64(f, PT + 8 * 8, 0x8000 | P | RW);      /* supervisor page */
    wr64(f, PT + 9 * 8, 0x9000 | P | US);      /* user read-only page */
    set_cpl3(f);
    uint64_t v = 0;
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x8000, 4, &v), EXC_PF);
    assert_int_equal(f->cpu.exc_error, PFEC_P | PFEC_U);
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x9000, 4, &v), -1);
    assert_int_equal(try_access(&f->cpu, OP_WRITE, 0x9000, 4, &v), EXC_PF);
    assert_int_equal(f->cpu.exc_error, PFEC_P | PFEC_W | PFEC_U);
    /* supervisor: WP=1 faults on the read-only page, WP=0 does not */
    seg_load_flat_code(&f->cpu.s.seg[SEG_CS], 0x10, 0, true);
    emu_update_mode(&f->cpu);
    assert_int_equal(try_access(&f->cpu, OP_WRITE, 0x9000, 4, &v), EXC_PF);
    assert_int_equal(f->cpu.exc_error, PFEC_P | PFEC_W);
    f->cpu.s.cr0 &= ~CR0_WP;
    emu_tlb_flush(&f->cpu);
    v = 0x5a5a;
    assert_int_equal(try_access(&f->cpu, OP_WRITE, 0x9000, 4, &v), -1);
    assert_int_equal(rd64(f, 0x9000) & 0xffffffff, 0x5a5a);
    /* a CPL0 TLB entry must not leak to CPL3 */
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x8000, 4, &v), -1);
    set_cpl3(f);
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x8000, 4, &v), EXC_PF);
}


static void test_entering_cpl3_keeps_user_tlb_entries(void **state)
{
    struct fix *f = *state;
    wr64(f, PT + 8 * 8, 0x8000 | P | RW);      /* supervisor page */
    wr64(f, PT + 9 * 8, 0x9000 | P | RW | US); /* user page */
    emu_tlb_flush(&f->cpu);
    assert_int_equal(emu_read32(&f->cpu, 0x8000), 0);
    assert_int_equal(emu_read32(&f->cpu, 0x9000), 0);
    set_cpl3(f);
    assert_int_equal(emu_tlb_slot(&f->cpu, 0x8000)->tag_read, 0);
    assert_int_equal(emu_tlb_slot(&f->cpu, 0x9000)->tag_read, emu_tlb_tag(0x9000));
    uint64_t v;
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x8000, 4, &v), EXC_PF);
}

static void test_nx_and_reserved_bits(void **state)
{
    struct fix *f = *state;
    wr64(f, PT + 10 * 8, 0xa000 | P | RW | NX);
    uint64_t v = 0;
    assert_int_equal(try_access(&f->cpu, OP_READ, 0xa000, 1, &v), -1);
    assert_int_equal(try_access(&f->cpu, OP_FETCH, 0xa000, 1, &v), EXC_PF);
    assert_int_equal(f->cpu.exc_error, PFEC_P | PFEC_I);
    /* NX is a reserved bit when EFER.NXE=0 */
    f->cpu.s.efer &= ~EFER_NXE;
    emu_tlb_flush(&f->cpu);
    assert_int_equal(try_access(&f->cpu, OP_READ, 0xa000, 1, &v), EXC_PF);
    assert_int_equal(f->cpu.exc_error, PFEC_P | PFEC_RSVD);
    f->cpu.s.efer |= EFER_NXE;
    /* physical-address bits above MAXPHYADDR in a PDE */
    wr64(f, PD + 5 * 8, (5ULL << 21) | (1ULL << 45) | P | RW | PS);
    emu_tlb_flush(&f->cpu);
    assert_int_equal(try_access(&f->cpu, OP_WRITE, 5ULL << 21, 4, &v), EXC_PF);
    assert_int_equal(f->cpu.exc_error, PFEC_P | PFEC_RSVD | PFEC_W);
    /* PS in a PML4E is reserved */
    wr64(f, PML4 + 8, PDPT | P | RW | PS);
    assert_int_equal(try_access(&f->cpu, OP_READ, 1ULL << 39, 4, &v), EXC_PF);
    assert_int_equal(f->cpu.exc_error, PFEC_P | PFEC_RSVD);
}

static void test_non_canonical_is_gp(void **state)
{
    struct fix *f = *state;
    uint64_t v = 0;
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x0000800000000000ULL, 4, &v), EXC_GP);
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_seg_linear(&f->cpu, SEG_SS, 0x0000800000000000ULL, 8, ACC_WRITE);
    assert_int_equal(f->cpu.exc_vector, EXC_SS);
}

static void test_tlb_invlpg_and_cr3_reload(void **state)
{
    struct fix *f = *state;
    wr64(f, PT + 11 * 8, 0x310000 | P | RW);
    wr64(f, 0x310000, 1);
    wr64(f, 0x320000, 2);
    assert_int_equal(emu_read64(&f->cpu, 0xb000), 1);
    wr64(f, PT + 11 * 8, 0x320000 | P | RW);
    assert_int_equal(emu_read64(&f->cpu, 0xb000), 1); /* stale until invalidated, as on hardware */
    emu_sys_invlpg(&f->cpu, 0xb000);
    assert_int_equal(emu_read64(&f->cpu, 0xb000), 2);
    wr64(f, PT + 11 * 8, 0x310000 | P | RW);
    emu_sys_mov_to_cr(&f->cpu, 3, PML4);
    assert_int_equal(emu_read64(&f->cpu, 0xb000), 1);
}

static void test_page_crossing_write_is_all_or_nothing(void **state)
{
    struct fix *f = *state;
    wr64(f, PT + 12 * 8, 0xc000 | P | RW);
    wr64(f, PT + 13 * 8, 0);
    wr64(f, 0xcff8, 0);
    uint64_t v = 0x1122334455667788ULL;
    assert_int_equal(try_access(&f->cpu, OP_WRITE, 0xcffc, 8, &v), EXC_PF);
    assert_int_equal(f->cpu.s.cr2, 0xd000);
    assert_int_equal(rd64(f, 0xcff8), 0);
    wr64(f, PT + 13 * 8, 0xd000 | P | RW);
    emu_tlb_flush_page(&f->cpu, 0xd000);
    assert_int_equal(try_access(&f->cpu, OP_WRITE, 0xcffc, 8, &v), -1);
    assert_int_equal(rd64(f, 0xcff8) >> 32, 0x55667788u);
    assert_int_equal(rd64(f, 0xd000) & 0xffffffff, 0x11223344u);
    uint64_t r = 0;
    assert_int_equal(try_access(&f->cpu, OP_READ, 0xcffc, 8, &r), -1);
    assert_int_equal(r, v);
}

static void test_code_page_not_writable_in_tlb(void **state)
{
    struct fix *f = *state;
    uint64_t pfn = 0x14;
    f->cpu.code_bitmap[pfn >> 3] |= 1u << (pfn & 7);
    uint64_t v = 0;
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x14000, 4, &v), -1);
    struct emu_tlb_entry *e = emu_tlb_slot(&f->cpu, 0x14000);
    assert_int_equal(e->tag_read, emu_tlb_tag(0x14000));
    assert_int_equal(e->tag_write, 0);
    /* a write goes through the slow path (which tells exec) and lands */
    emu_write32(&f->cpu, 0x14000, 0xc0de);
    assert_int_equal(rd64(f, 0x14000) & 0xffffffff, 0xc0de);
    /* protecting a page removes fast-path write access */
    wr64(f, PT + 0x15 * 8, 0x15000 | P | RW | D);
    emu_write32(&f->cpu, 0x15000, 1);
    emu_write32(&f->cpu, 0x15000, 1);
    assert_int_equal(emu_tlb_slot(&f->cpu, 0x15000)->tag_write, emu_tlb_tag(0x15000));
    emu_tlb_protect_code(&f->cpu, 0x15000);
    assert_int_equal(emu_tlb_slot(&f->cpu, 0x15000)->tag_write, 0);
}

struct mmio_dev {
    uint64_t last_off, last_val;
    unsigned writes, reads;
};
static void mmio_handler(void *opaque, uint64_t off, uint64_t *data, unsigned size, bool is_write)
{
    struct mmio_dev *d = opaque;
    (void)size;
    d->last_off = off;
    if (is_write) {
        d->last_val = *data;
        d->writes++;
    } else {
        *data = 0xfeed0000 + off;
        d->reads++;
    }
}

static void test_mmio_through_slow_path(void **state)
{
    struct fix *f = *state;
    struct mmio_dev dev = {0};
    assert_int_equal(bus_register(&f->m.mmio, 0xd0000000ULL, 0x1000, mmio_handler, &dev, "test"), 0);
    wr64(f, PT + 16 * 8, 0xd0000000ULL | P | RW);
    uint64_t v = 0;
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x10010, 4, &v), -1);
    assert_int_equal(v, 0xfeed0010);
    assert_int_equal(dev.reads, 1);
    v = 0x42;
    assert_int_equal(try_access(&f->cpu, OP_WRITE, 0x10020, 4, &v), -1);
    assert_int_equal(dev.writes, 1);
    assert_int_equal(dev.last_off, 0x20);
    assert_int_equal(dev.last_val, 0x42);
    /* never cached in the TLB: the next read reaches the device again */
    assert_int_equal(emu_read32(&f->cpu, 0x10010), 0xfeed0010);
    assert_int_equal(dev.reads, 2);
    /* unclaimed physical addresses read as all-ones */
    wr64(f, PT + 17 * 8, 0xe0000000ULL | P | RW);
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x11000, 2, &v), -1);
    assert_int_equal(v, 0xffff);
}

static void test_hostile_page_tables_stay_in_guest_ram(void **state)
{
    struct fix *f = *state;
    /* page-table pointer far outside RAM (but within MAXPHYADDR): reads as not present */
    wr64(f, PML4 + 2 * 8, 0xff00000000ULL | P | RW);
    uint64_t v = 0;
    assert_int_equal(try_access(&f->cpu, OP_READ, 2ULL << 39, 8, &v), EXC_PF);
    assert_int_equal(f->cpu.exc_error & PFEC_P, 0);
    /* a leaf just below the end of RAM and one beyond it */
    wr64(f, PT + 18 * 8, (RAM - 0x1000) | P | RW);
    wr64(f, PT + 19 * 8, RAM | P | RW);
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x12ffc, 8, &v), -1); /* straddles into MMIO space */
    assert_int_equal(v >> 32, 0xffffffffu);
    v = 0x1234;
    assert_int_equal(try_access(&f->cpu, OP_WRITE, 0x13000, 8, &v), -1); /* dropped */
    assert_int_equal(emu_tlb_slot(&f->cpu, 0x13000)->tag_write, 0);
}

static void test_paging_off_is_identity(void **state)
{
    struct fix *f = *state;
    f->cpu.s.cr0 = CR0_PE | CR0_ET;
    f->cpu.s.efer = 0;
    seg_load_flat_code(&f->cpu.s.seg[SEG_CS], 0x10, 0, false);
    emu_update_mode(&f->cpu);
    emu_tlb_flush(&f->cpu);
    wr64(f, 0x345678, 99);
    uint64_t v = 0;
    assert_int_equal(try_access(&f->cpu, OP_READ, 0x345678, 8, &v), -1);
    assert_int_equal(v, 99);
}

/* ---- exceptions ---- */

static void raise_and_deliver(struct emu_cpu *cpu, int vec, uint32_t err, bool has_err)
{
    if (setjmp(cpu->fault_jmp) == 0) emu_raise(cpu, vec, err, has_err);
    emu_deliver_exception(cpu);
}

static void test_exception_frame_same_privilege(void **state)
{
    struct fix *f = *state;
    set_gate(f, EXC_GP, 0xffffffff81000000ULL, 0x10, 0xe, 0, 0);
    wr64(f, PDPT + 511 * 8, 0); /* (target need not be mapped to deliver) */
    f->cpu.s.rip = 0x1234;
    f->cpu.s.gpr[GPR_RSP] = 0x80008; /* misaligned: the frame starts 16-byte aligned */
    raise_and_deliver(&f->cpu, EXC_GP, 0x18, true);
    assert_int_equal(f->cpu.exc_vector, -1);
    assert_int_equal(f->cpu.s.rip, 0xffffffff81000000ULL);
    assert_int_equal(f->cpu.s.gpr[GPR_RSP], 0x80000 - 48);
    uint64_t fr = 0x80000 - 48;
    assert_int_equal(rd64(f, fr), 0x18);            /* error code */
    assert_int_equal(rd64(f, fr + 8), 0x1234);      /* RIP */
    assert_int_equal(rd64(f, fr + 16), 0x10);       /* CS */
    assert_true(rd64(f, fr + 24) & RFLAGS_IF);      /* RFLAGS */
    assert_int_equal(rd64(f, fr + 32), 0x80008);    /* RSP */
    assert_int_equal(rd64(f, fr + 40), 0x18);       /* SS */
    assert_false(emu_get_rflags(&f->cpu) & RFLAGS_IF); /* interrupt gate */
    assert_int_equal(f->cpu.cpl, 0);
}

static void test_exception_from_cpl3_uses_rsp0_and_ist(void **state)
{
    struct fix *f = *state;
    set_gate(f, EXC_PF, 0x500000, 0x10, 0xf, 0, 0); /* trap gate: IF stays */
    set_gate(f, EXC_NMI, 0x510000, 0x10, 0xe, 0, 2);
    wr64(f, TSS + 4, 0x90000);          /* RSP0 */
    wr64(f, TSS + 0x24 + 8, 0xa0008);   /* IST2 */
    set_cpl3(f);
    f->cpu.s.rip = 0x401000;
    f->cpu.s.gpr[GPR_RSP] = 0x7ff0;
    raise_and_deliver(&f->cpu, EXC_PF, PFEC_U | PFEC_W, true);
    assert_int_equal(f->cpu.cpl, 0);
    assert_int_equal(f->cpu.s.seg[SEG_CS].selector, 0x10);
    assert_int_equal(f->cpu.s.seg[SEG_SS].selector, 0);
    assert_true(f->cpu.s.seg[SEG_SS].unusable);
    assert_int_equal(f->cpu.s.gpr[GPR_RSP], 0x90000 - 48);
    assert_int_equal(rd64(f, 0x90000 - 48), PFEC_U | PFEC_W);
    assert_int_equal(rd64(f, 0x90000 - 40), 0x401000);
    assert_int_equal(rd64(f, 0x90000 - 32), 0x33);
    assert_int_equal(rd64(f, 0x90000 - 16), 0x7ff0);
    assert_int_equal(rd64(f, 0x90000 - 8), 0x2b);
    assert_true(emu_get_rflags(&f->cpu) & RFLAGS_IF);
    /* IST: stack from the TSS, aligned down, even without a privilege change */
    f->cpu.s.rip = 0x777;
    emu_deliver_interrupt(&f->cpu, EXC_NMI);
    assert_int_equal(f->cpu.s.rip, 0x510000);
    assert_int_equal(f->cpu.s.gpr[GPR_RSP], 0xa0000 - 40);
    assert_int_equal(rd64(f, 0xa0000 - 40), 0x777);
}

static void test_double_fault_and_triple_fault(void **state)
{
    struct fix *f = *state;
    /* #GP's gate not present -> #NP while delivering #GP -> #DF */
    set_gate(f, EXC_DF, 0x520000, 0x10, 0xe, 0, 0);
    f->cpu.s.rip = 0x1000;
    raise_and_deliver(&f->cpu, EXC_GP, 0, true);
    assert_int_equal(f->cpu.s.rip, 0x520000);
    assert_int_equal(rd64(f, f->cpu.s.gpr[GPR_RSP]), 0); /* #DF error code 0 */
    assert_int_equal(rd64(f, f->cpu.s.gpr[GPR_RSP] + 8), 0x1000);
    assert_false(f->cpu.triple_fault);
    /* a page fault whose handler stack is unmapped -> #PF during #PF -> #DF; with #DF's
     * gate broken too -> triple fault, machine reset requested */
    set_gate(f, EXC_PF, 0x530000, 0x10, 0xe, 0, 0);
    wr64(f, IDT + EXC_DF * 16, 0);
    f->cpu.s.gpr[GPR_RSP] = 0x00007f0000001000ULL; /* not mapped */
    raise_and_deliver(&f->cpu, EXC_PF, 0, true);
    assert_true(f->cpu.triple_fault);
    assert_int_equal(machine_stop_requested(&f->m), MACHINE_STOP_RESET);
}

static void test_int_n_checks_gate_dpl(void **state)
{
    struct fix *f = *state;
    set_gate(f, 0x80, 0x540000, 0x10, 0xe, 0, 0);
    set_gate(f, 0x81, 0x550000, 0x10, 0xf, 3, 0);
    wr64(f, TSS + 4, 0x90000);
    set_cpl3(f);
    f->cpu.insn_rip = 0x401000;
    f->cpu.s.rip = 0x401002;
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_int(&f->cpu, 0x80, false);
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
    assert_int_equal(f->cpu.exc_error, 0x80 * 8 + 2);
    assert_int_equal(f->cpu.cpl, 3); /* nothing changed */
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_int(&f->cpu, 0x81, false);
    assert_int_equal(f->cpu.exc_vector, -1);
    assert_int_equal(f->cpu.s.rip, 0x550000);
    assert_int_equal(rd64(f, f->cpu.s.gpr[GPR_RSP]), 0x401002); /* return to the next instruction */
}

static void test_syscall_sysret_round_trip(void **state)
{
    struct fix *f = *state;
    set_cpl3(f);
    f->cpu.s.rip = 0x401002;
    emu_set_rflags(&f->cpu, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_CF);
    emu_sys_syscall(&f->cpu);
    assert_int_equal(f->cpu.cpl, 0);
    assert_true(f->cpu.long64);
    assert_int_equal(f->cpu.s.rip, 0x400000);
    assert_int_equal(f->cpu.s.gpr[GPR_RCX], 0x401002);
    assert_int_equal(f->cpu.s.gpr[GPR_R11] & (RFLAGS_IF | RFLAGS_CF), RFLAGS_IF | RFLAGS_CF);
    assert_int_equal(f->cpu.s.seg[SEG_CS].selector, 0x10);
    assert_int_equal(f->cpu.s.seg[SEG_SS].selector, 0x18);
    assert_false(emu_get_rflags(&f->cpu) & RFLAGS_IF);
    emu_sys_sysret(&f->cpu, 8);
    assert_int_equal(f->cpu.cpl, 3);
    assert_true(f->cpu.long64);
    assert_int_equal(f->cpu.s.rip, 0x401002);
    assert_int_equal(f->cpu.s.seg[SEG_CS].selector, 0x33);
    assert_int_equal(f->cpu.s.seg[SEG_SS].selector, 0x2b);
    assert_true(emu_get_rflags(&f->cpu) & RFLAGS_IF);
    /* SYSRET is privileged and checks RCX */
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_sysret(&f->cpu, 8);
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
    emu_sys_syscall(&f->cpu);
    f->cpu.s.gpr[GPR_RCX] = 0x0000800000000000ULL;
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_sysret(&f->cpu, 8);
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
    assert_int_equal(f->cpu.cpl, 0);
    /* SYSRET without REX.W: 32-bit compatibility mode */
    f->cpu.s.gpr[GPR_RCX] = 0x12345678;
    emu_sys_sysret(&f->cpu, 4);
    assert_false(f->cpu.long64);
    assert_int_equal(f->cpu.s.seg[SEG_CS].selector, 0x23);
}

static void test_iretq_to_cpl3(void **state)
{
    struct fix *f = *state;
    uint64_t sp = 0x80000 - 40;
    wr64(f, sp, 0x401000);
    wr64(f, sp + 8, 0x33);
    wr64(f, sp + 16, RFLAGS_FIXED | RFLAGS_IF | RFLAGS_IOPL);
    wr64(f, sp + 24, 0x7fff0);
    wr64(f, sp + 32, 0x2b);
    f->cpu.s.gpr[GPR_RSP] = sp;
    seg_load_flat_data(&f->cpu.s.seg[SEG_DS], 0x18, 0);
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_iret(&f->cpu, 8);
    assert_int_equal(f->cpu.exc_vector, -1);
    assert_int_equal(f->cpu.cpl, 3);
    assert_int_equal(f->cpu.s.rip, 0x401000);
    assert_int_equal(f->cpu.s.gpr[GPR_RSP], 0x7fff0);
    assert_int_equal(f->cpu.s.seg[SEG_SS].selector, 0x2b);
    assert_int_equal(f->cpu.s.seg[SEG_SS].dpl, 3);
    assert_true(f->cpu.s.seg[SEG_DS].unusable); /* kernel DS nulled on return to CPL3 */
    assert_true(emu_get_rflags(&f->cpu) & RFLAGS_IF);
    /* a CPL3 IRET cannot raise IOPL or return to CPL0 */
    wr64(f, 0x7fff0, 0x402000);
    wr64(f, 0x7fff8, 0x10);
    wr64(f, 0x80000, RFLAGS_FIXED);
    wr64(f, 0x80008, 0x7fff0);
    wr64(f, 0x80010, 0x18);
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_iret(&f->cpu, 8);
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
    assert_int_equal(f->cpu.exc_error, 0x10);
}

static void test_segment_loads(void **state)
{
    struct fix *f = *state;
    emu_sys_load_seg(&f->cpu, SEG_DS, 0);
    assert_true(f->cpu.s.seg[SEG_DS].unusable);
    emu_sys_load_seg(&f->cpu, SEG_DS, 0x18);
    assert_false(f->cpu.s.seg[SEG_DS].unusable);
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_load_seg(&f->cpu, SEG_SS, 0x2b); /* DPL3 SS at CPL0 */
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
    assert_int_equal(f->cpu.exc_error, 0x28);
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_load_seg(&f->cpu, SEG_ES, 0x1000); /* beyond the GDT limit */
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
    assert_int_equal(f->cpu.exc_error, 0x1000);
    /* far return to reload CS, as the kernel's early code does with lretq */
    f->cpu.s.gpr[GPR_RSP] = 0x80000 - 16;
    wr64(f, 0x80000 - 16, 0x123456);
    wr64(f, 0x80000 - 8, 0x10);
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_far_ret(&f->cpu, 8, 0);
    assert_int_equal(f->cpu.exc_vector, -1);
    assert_int_equal(f->cpu.s.rip, 0x123456);
    assert_int_equal(f->cpu.s.gpr[GPR_RSP], 0x80000);
}

/* ---- MSRs, CPUID, control registers ---- */

static int try_msr(struct emu_cpu *cpu, bool write, uint32_t msr, uint64_t *v)
{
    cpu->s.gpr[GPR_RCX] = msr;
    cpu->s.gpr[GPR_RAX] = (uint32_t)*v;
    cpu->s.gpr[GPR_RDX] = *v >> 32;
    cpu->exc_vector = -1;
    if (setjmp(cpu->fault_jmp) == 0) {
        if (write) emu_sys_wrmsr(cpu);
        else emu_sys_rdmsr(cpu);
        *v = (cpu->s.gpr[GPR_RDX] << 32) | (uint32_t)cpu->s.gpr[GPR_RAX];
        return -1;
    }
    return cpu->exc_vector;
}

static void test_msrs(void **state)
{
    struct fix *f = *state;
    uint64_t v = 0xffffffff81234560ULL;
    assert_int_equal(try_msr(&f->cpu, true, MSR_LSTAR, &v), -1);
    v = 0;
    assert_int_equal(try_msr(&f->cpu, false, MSR_LSTAR, &v), -1);
    assert_int_equal(v, 0xffffffff81234560ULL);
    v = 0x7f0000001000ULL;
    assert_int_equal(try_msr(&f->cpu, true, MSR_GS_BASE, &v), -1);
    assert_int_equal(f->cpu.s.seg[SEG_GS].base, 0x7f0000001000ULL);
    emu_sys_swapgs(&f->cpu);
    assert_int_equal(f->cpu.s.kernel_gs_base, 0x7f0000001000ULL);
    v = 0;
    assert_int_equal(try_msr(&f->cpu, false, 0x12345678, &v), EXC_GP);
    assert_int_equal(try_msr(&f->cpu, true, 0x12345678, &v), EXC_GP);
    v = 0x0000800000000000ULL;
    assert_int_equal(try_msr(&f->cpu, true, MSR_LSTAR, &v), EXC_GP); /* non-canonical */
    /* EFER: LMA is read-only, reserved bits fault */
    v = f->cpu.s.efer | (1ULL << 20);
    assert_int_equal(try_msr(&f->cpu, true, MSR_EFER, &v), EXC_GP);
    /* TSC: a write sets the offset; reads advance */
    v = 1000000;
    assert_int_equal(try_msr(&f->cpu, true, MSR_IA32_TSC, &v), -1);
    uint64_t t = 0;
    assert_int_equal(try_msr(&f->cpu, false, MSR_IA32_TSC, &t), -1);
    assert_true(t >= 1000000 && t < 1000000 + 2000000000ULL);
    /* CPL3 RDMSR faults */
    set_cpl3(f);
    assert_int_equal(try_msr(&f->cpu, false, MSR_LSTAR, &v), EXC_GP);
}

static void cpuid(struct emu_cpu *cpu, uint32_t leaf, uint32_t r[4])
{
    cpu->s.gpr[GPR_RAX] = leaf;
    cpu->s.gpr[GPR_RCX] = 0;
    emu_sys_cpuid(cpu);
    r[0] = (uint32_t)cpu->s.gpr[GPR_RAX];
    r[1] = (uint32_t)cpu->s.gpr[GPR_RBX];
    r[2] = (uint32_t)cpu->s.gpr[GPR_RCX];
    r[3] = (uint32_t)cpu->s.gpr[GPR_RDX];
}

static void test_cpuid_reports_what_is_implemented(void **state)
{
    struct fix *f = *state;
    uint32_t r[4];
    cpuid(&f->cpu, 0, r);
    assert_true(r[0] >= 1);
    char vendor[13] = {0};
    memcpy(vendor, &r[1], 4);
    memcpy(vendor + 4, &r[3], 4);
    memcpy(vendor + 8, &r[2], 4);
    assert_string_equal(vendor, "AuthenticAMD");
    cpuid(&f->cpu, 1, r);
    uint32_t need = (1u << 0) | (1u << 5) | (1u << 6) | (1u << 8) | (1u << 13) | (1u << 24) | (1u << 15) |
                    (1u << 25) | (1u << 26); /* verify_cpu: FPU MSR PAE CX8 PGE FXSR CMOV SSE SSE2 */
    assert_int_equal(r[3] & need, need);
    assert_false(r[3] & (1u << 9));  /* no local APIC */
    assert_false(r[3] & (1u << 12)); /* no MTRR */
    assert_false(r[3] & (1u << 7));  /* no MCE */
    assert_false(r[2] & (1u << 26)); /* no XSAVE */
    assert_false(r[2] & (1u << 21)); /* no x2APIC */
    cpuid(&f->cpu, 0x80000000, r);
    assert_true(r[0] >= 0x80000008);
    cpuid(&f->cpu, 0x80000001, r);
    assert_true(r[3] & (1u << 29)); /* LM */
    assert_true(r[3] & (1u << 20)); /* NX */
    assert_true(r[3] & (1u << 11)); /* SYSCALL */
    assert_true(r[2] & 1);          /* LAHF_LM */
    cpuid(&f->cpu, 0x80000008, r);
    assert_int_equal(r[0] & 0xff, 40);
    assert_int_equal((r[0] >> 8) & 0xff, 48);
    char brand[49] = {0};
    for (unsigned i = 0; i < 3; i++) {
        cpuid(&f->cpu, 0x80000002 + i, r);
        memcpy(brand + 16 * i, r, 16);
    }
    assert_string_equal(brand, "vmd x86-64 emulator");
}

static int try_cr(struct emu_cpu *cpu, int cr, uint64_t v)
{
    cpu->exc_vector = -1;
    if (setjmp(cpu->fault_jmp) == 0) {
        emu_sys_mov_to_cr(cpu, cr, v);
        return -1;
    }
    return cpu->exc_vector;
}

static void test_control_register_checks(void **state)
{
    struct fix *f = *state;
    assert_int_equal(try_cr(&f->cpu, 4, f->cpu.s.cr4 | (1ULL << 18)), EXC_GP); /* OSXSAVE */
    assert_int_equal(try_cr(&f->cpu, 4, 0), EXC_GP);                         /* PAE off in long mode */
    assert_int_equal(try_cr(&f->cpu, 4, CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT), -1);
    assert_int_equal(try_cr(&f->cpu, 0, CR0_PG | CR0_ET), EXC_GP);           /* PG without PE */
    assert_int_equal(try_cr(&f->cpu, 0, 1ULL << 32), EXC_GP);
    assert_int_equal(try_cr(&f->cpu, 3, 1ULL << 52), EXC_GP);
    assert_int_equal(try_cr(&f->cpu, 8, 0x10), EXC_GP);
    /* entering long mode: PE|PG with EFER.LME and CR4.PAE sets LMA */
    f->cpu.s.cr0 = CR0_PE | CR0_ET;
    f->cpu.s.efer = EFER_LME;
    seg_load_flat_code(&f->cpu.s.seg[SEG_CS], 0x08, 0, false);
    emu_update_mode(&f->cpu);
    assert_int_equal(try_cr(&f->cpu, 0, CR0_PE | CR0_PG | CR0_ET), -1);
    assert_true(f->cpu.s.efer & EFER_LMA);
    assert_true(f->cpu.paging);
    set_cpl3(f);
    assert_int_equal(try_cr(&f->cpu, 3, PML4), EXC_GP);
}

static void test_hlt_cli_sti_and_io_privilege(void **state)
{
    struct fix *f = *state;
    emu_sys_cli(&f->cpu);
    assert_false(f->cpu.s.rflags & RFLAGS_IF);
    emu_sys_sti(&f->cpu);
    assert_true(f->cpu.s.rflags & RFLAGS_IF);
    assert_int_equal(f->cpu.s.interrupt_shadow, 1);
    emu_sys_hlt(&f->cpu);
    assert_int_equal(f->cpu.s.halted, 1);
    uint64_t v = 0;
    emu_sys_in(&f->cpu, 0x80, 1, &v); /* unclaimed port reads all-ones */
    assert_int_equal(v, 0xff);
    set_cpl3(f);
    /* the TSS's I/O bitmap offset lies past its limit, as Linux leaves it without ioperm(): CPL3
     * > IOPL may use no port (test_emu_protected covers a bitmap that allows some) */
    const uint16_t iomap_beyond_limit = 0x68;
    memcpy(ram(f, TSS + 102), &iomap_beyond_limit, 2);
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_out(&f->cpu, 0x80, 1, 0);
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_hlt(&f->cpu);
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_cli(&f->cpu);
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
}


static void test_descriptor_table_instructions(void **state)
{
    struct fix *f = *state;
    /* LTR marks the 16-byte TSS descriptor busy and loads its 64-bit base */
    uint64_t lo = 0x67 | ((TSS & 0xffffff) << 16) | (0x9ULL << 40) | (1ULL << 47) | ((TSS >> 24 & 0xff) << 56);
    wr64(f, GDT + 0x40, lo);
    wr64(f, GDT + 0x48, 0x1234); /* base bits 63:32 */
    f->cpu.s.gdtr.limit = 0x4f;
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_ltr(&f->cpu, 0x40);
    assert_int_equal(f->cpu.exc_vector, -1);
    assert_int_equal((rd64(f, GDT + 0x40) >> 40) & 0xf, 0xb);
    assert_int_equal(f->cpu.s.seg[SEG_TR].base, (0x1234ULL << 32) | TSS);
    /* loading it again faults: it is busy now */
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_ltr(&f->cpu, 0x40);
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
    assert_int_equal(f->cpu.exc_error, 0x40);
    /* SGDT / LGDT round trip through guest memory */
    emu_sys_sgdt_sidt(&f->cpu, false, 0x5000);
    assert_int_equal(rd64(f, 0x5002), GDT);
    wr64(f, 0x6000, 0x0000000002120017ULL); /* limit 0x17, base 0x212 */
    wr64(f, 0x6008, 0);
    emu_sys_lgdt_lidt(&f->cpu, true, 0x6000);
    assert_int_equal(f->cpu.s.idtr.limit, 0x17);
    assert_int_equal(f->cpu.s.idtr.base, 0x212);
    /* LLDT 0 makes LDTR unusable */
    emu_sys_lldt(&f->cpu, 0);
    assert_true(f->cpu.s.seg[SEG_LDTR].unusable);
}

static void test_far_call_and_bytes_across_pages(void **state)
{
    struct fix *f = *state;
    f->cpu.s.rip = 0x1005;
    f->cpu.s.gpr[GPR_RSP] = 0x80000;
    f->cpu.exc_vector = -1;
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_far_jmp_call(&f->cpu, 0x10, 0x2000, true, 8);
    assert_int_equal(f->cpu.exc_vector, -1);
    assert_int_equal(f->cpu.s.rip, 0x2000);
    assert_int_equal(rd64(f, 0x80000 - 8), 0x10);
    assert_int_equal(rd64(f, 0x80000 - 16), 0x1005);
    /* a far call to a data segment is refused, leaving RSP alone */
    if (setjmp(f->cpu.fault_jmp) == 0) emu_sys_far_jmp_call(&f->cpu, 0x18, 0x3000, true, 8);
    assert_int_equal(f->cpu.exc_vector, EXC_GP);
    assert_int_equal(f->cpu.s.gpr[GPR_RSP], 0x80000 - 16);
    /* emu_write_bytes / emu_read_bytes across a page boundary */
    uint8_t buf[64], back[64];
    for (unsigned i = 0; i < sizeof(buf); i++) buf[i] = (uint8_t)(i * 7 + 1);
    emu_write_bytes(&f->cpu, 0x6fe0, buf, sizeof(buf));
    emu_read_bytes(&f->cpu, 0x6fe0, back, sizeof(back));
    assert_memory_equal(buf, back, sizeof(buf));
    assert_int_equal(*ram(f, 0x7000), buf[0x20]);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_walk_4k_sets_accessed_and_dirty),
        T(test_walk_2m_and_1g_pages),
        T(test_not_present_fault_code_and_cr2),
        T(test_user_supervisor_and_wp),
        T(test_entering_cpl3_keeps_user_tlb_entries),
        T(test_nx_and_reserved_bits),
        T(test_non_canonical_is_gp),
        T(test_tlb_invlpg_and_cr3_reload),
        T(test_page_crossing_write_is_all_or_nothing),
        T(test_code_page_not_writable_in_tlb),
        T(test_mmio_through_slow_path),
        T(test_hostile_page_tables_stay_in_guest_ram),
        T(test_paging_off_is_identity),
        T(test_exception_frame_same_privilege),
        T(test_exception_from_cpl3_uses_rsp0_and_ist),
        T(test_double_fault_and_triple_fault),
        T(test_int_n_checks_gate_dpl),
        T(test_syscall_sysret_round_trip),
        T(test_iretq_to_cpl3),
        T(test_segment_loads),
        T(test_msrs),
        T(test_cpuid_reports_what_is_implemented),
        T(test_control_register_checks),
        T(test_hlt_cli_sti_and_io_privilege),
        T(test_descriptor_table_instructions),
        T(test_far_call_and_bytes_across_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
