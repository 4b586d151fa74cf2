/* emu: internal interface of vmd's software x86-64 emulator (the "emu" CPU backend).
 *
 * The emulator is split in three parts that meet only through this header:
 *
 *   exec   (decode.c, exec_*.c, flags.c, icache.c)  decoding, the integer instruction set,
 *          lazy flags, the decoded-instruction cache and the dispatch loop (emu_exec).
 *   system (mmu.c, except.c, sys.c, backend.c)      linear->physical translation with a
 *          software TLB, segment loads, exceptions and interrupt delivery, control registers,
 *          MSRs, CPUID, system instructions, and the cpu_backend glue (vcpu_run, HLT, IRQs).
 *   fpu    (fpu_sse.c / fpu_sse.h)                  x87, MMX, SSE/SSE2(+), FXSAVE/FXRSTOR.
 *
 * Faults: any exception raised while an instruction executes calls emu_raise(), which
 * never returns: it records the exception and longjmps to cpu->fault_jmp, set by emu_exec
 * around each instruction (or block). emu_exec then resets RIP to cpu->insn_rip and
 * delivers the exception. Instruction handlers must therefore write architectural state
 * only after every access that can fault has succeeded (do the stores last).
 */
#ifndef VMD_EMU_H
#define VMD_EMU_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/cpu_state.h"

struct machine;
struct emu_icache;

/* Exception vectors */
enum {
    EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5, EXC_UD = 6, EXC_NM = 7,
    EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12, EXC_GP = 13, EXC_PF = 14, EXC_MF = 16,
    EXC_AC = 17, EXC_MC = 18, EXC_XM = 19,
};

/* Page-fault error code bits */
#define PFEC_P (1u << 0)
#define PFEC_W (1u << 1)
#define PFEC_U (1u << 2)
#define PFEC_RSVD (1u << 3)
#define PFEC_I (1u << 4)

/* Access kinds for translation */
enum emu_access { ACC_READ = 0, ACC_WRITE = 1, ACC_FETCH = 2 };

/* Software TLB: direct-mapped, one entry per 4 KiB virtual page, separate tags per access
 * kind so that a page can be readable but not (yet) writable through the fast path
 * (write-protected because it holds cached code, or a clean PTE whose D bit must be set).
 * A tag is the virtual page number | 1 (valid) ; host_addend + vaddr = host pointer. */
#define EMU_TLB_BITS 8
#define EMU_TLB_SIZE (1u << EMU_TLB_BITS)
struct emu_tlb_entry {
    uint64_t tag_read, tag_write, tag_fetch; /* (vaddr >> 12) << 1 | 1, or 0 if invalid */
    uintptr_t host_addend;                   /* host pointer = host_addend + vaddr */
    uint64_t gpa_page;                       /* guest-physical address of the page; bits 11:0
                                                are system-part flags: mask them off */
};

/* Lazy flags: the last flag-setting operation is recorded and flags are computed on demand.
 * exec owns the encoding of lf_op; system code uses only emu_get_rflags/emu_set_rflags. */
struct emu_lazy_flags {
    uint64_t res, src1, src2;
    uint32_t op;   /* exec-private operation code */
    uint32_t size; /* operand size in bytes */
};

struct emu_cpu {
    /* Architectural state. rflags holds every flag except the six arithmetic ones
     * (CF PF AF ZF SF OF) while lazy flags are live; use emu_get_rflags(). */
    struct cpu_state s;
    struct emu_lazy_flags lf;

    /* Mode cache, recomputed by emu_update_mode() after CR0/CR4/EFER/CS changes */
    uint8_t cpl;       /* current privilege level (CS.dpl in protected mode) */
    uint8_t long64;    /* CS.L=1 and EFER.LMA: 64-bit mode */
    uint8_t code32;    /* default operand size 32 (CS.D) when not long64 */
    uint8_t paging;    /* CR0.PG */

    /* Instruction being executed */
    uint64_t insn_rip; /* RIP of the first byte of the current instruction */
    jmp_buf fault_jmp;

    /* Pending exception recorded by emu_raise */
    int exc_vector;    /* -1 if none */
    uint32_t exc_error;
    bool exc_has_error;

    /* Software TLB (system part) */
    struct emu_tlb_entry tlb[EMU_TLB_SIZE];

    /* Decoded-instruction cache (exec part) and per-guest-physical-page "holds cached code"
     * bitmap: a write to such a page must go through emu_code_written(). */
    struct emu_icache *icache;
    uint8_t *code_bitmap;  /* 1 bit per 4 KiB page of guest-physical address space below ram_top */
    uint64_t code_bitmap_pages;

    /* Links to the machine */
    struct machine *m;
    struct vcpu *vcpu;
    /* This vCPU's local APIC on the APIC platform (machine->apic), else NULL. Accessed with the
     * machine's dev_lock held. */
    struct lapic *lapic;

    /* Interrupts: set by another thread (device lock held) to make emu_exec return to the
     * run loop at the next instruction boundary. */
    _Atomic int irq_check;
    /* Virtual time: guest TSC = tsc_offset + host ns * tsc_khz / 1e6 */
    uint64_t tsc_khz;
    int64_t tsc_offset;

    /* Statistics */
    uint64_t insn_count;

    /* System-part private flags */
    uint8_t trace;        /* VMD_EMU_TRACE=1: log delivered exceptions at debug level */
    uint8_t triple_fault; /* the guest triple-faulted; the run loop reports VCPU_EXIT_SHUTDOWN */
    uint8_t tlb_has_1g;   /* some TLB entry comes from a 1 GiB page (INVLPG then flushes all) */
};

/* The local APIC of vCPU v on the APIC platform (emu backend), else NULL. */
struct lapic *emu_vcpu_lapic(struct vcpu *v);

/* ---- exec part -------------------------------------------------------------------- */

int emu_exec_init(struct emu_cpu *cpu);
void emu_exec_destroy(struct emu_cpu *cpu);
/* Execute instructions until `budget` instructions ran, cpu->irq_check became non-zero,
 * or an instruction needs the run loop (HLT, a stop request). Exceptions raised inside are
 * delivered (emu_deliver_exception) before returning or continuing. Returns how many ran. */
uint64_t emu_exec(struct emu_cpu *cpu, uint64_t budget);
/* Materialize / load RFLAGS (arithmetic flags from the lazy state). */
uint64_t emu_get_rflags(const struct emu_cpu *cpu);
void emu_set_rflags(struct emu_cpu *cpu, uint64_t rflags);
/* A guest-physical page that held cached code was written: drop its decoded instructions. */
void emu_code_written(struct emu_cpu *cpu, uint64_t gpa);
/* Drop the whole decoded-instruction cache (e.g. after a snapshot restore). */
void emu_icache_flush(struct emu_cpu *cpu);

/* ---- system part ------------------------------------------------------------------ */

/* Raise exception `vector` (with an error code if has_error). Never returns. */
__attribute__((noreturn)) void emu_raise(struct emu_cpu *cpu, int vector, uint32_t error, bool has_error);
static inline __attribute__((noreturn)) void emu_raise_ud(struct emu_cpu *cpu) { emu_raise(cpu, EXC_UD, 0, false); }
static inline __attribute__((noreturn)) void emu_raise_gp0(struct emu_cpu *cpu) { emu_raise(cpu, EXC_GP, 0, true); }

/* Deliver the pending exception (cpu->exc_vector) through the IDT, handling #DF and triple
 * fault (which requests a machine reset). Called by emu_exec after a longjmp. */
void emu_deliver_exception(struct emu_cpu *cpu);
/* Deliver external interrupt `vector` (IF was checked by the caller). */
void emu_deliver_interrupt(struct emu_cpu *cpu, uint8_t vector);

/* Linear-address translation. Returns the host pointer for [la, la+len) within one page
 * (len <= 4096 - (la & 0xfff)), or NULL for MMIO (then *gpa is set); raises #PF on a fault. */
void *emu_translate(struct emu_cpu *cpu, uint64_t la, unsigned len, enum emu_access acc, uint64_t *gpa);
/* Slow-path accessors: handle page-crossing accesses and MMIO. Raise on fault. */
uint64_t emu_read_slow(struct emu_cpu *cpu, uint64_t la, unsigned size, enum emu_access acc);
void emu_write_slow(struct emu_cpu *cpu, uint64_t la, uint64_t val, unsigned size);
void emu_read_bytes(struct emu_cpu *cpu, uint64_t la, void *dst, unsigned len);
void emu_write_bytes(struct emu_cpu *cpu, uint64_t la, const void *src, unsigned len);
void emu_tlb_flush(struct emu_cpu *cpu);
void emu_tlb_flush_page(struct emu_cpu *cpu, uint64_t la);
/* Remove fast-path write access to every TLB entry mapping guest-physical page gpa. */
void emu_tlb_protect_code(struct emu_cpu *cpu, uint64_t gpa);

/* Linear address of seg:offset (adds the segment base in legacy modes and for FS/GS in
 * 64-bit mode; checks canonical form in 64-bit mode and limits otherwise). */
uint64_t emu_seg_linear(struct emu_cpu *cpu, int seg, uint64_t offset, unsigned size, enum emu_access acc);

/* Fast paths: the TLB hit case inline, everything else in the slow path. `la` is linear. */
static inline uint64_t emu_tlb_tag(uint64_t la) { return ((la >> 12) << 1) | 1; }
static inline struct emu_tlb_entry *emu_tlb_slot(struct emu_cpu *cpu, uint64_t la)
{
    return &cpu->tlb[(la >> 12) & (EMU_TLB_SIZE - 1)];
}
#define EMU_DEFINE_ACCESS(bits)                                                                   \
    static inline uint##bits##_t emu_read##bits(struct emu_cpu *cpu, uint64_t la)                 \
    {                                                                                             \
        struct emu_tlb_entry *e = emu_tlb_slot(cpu, la);                                          \
        if (__builtin_expect(e->tag_read == emu_tlb_tag(la) && ((la & 0xfff) <= 4096 - bits / 8), 1)) { \
            uint##bits##_t v;                                                                     \
            __builtin_memcpy(&v, (void *)(e->host_addend + la), sizeof(v));                       \
            return v;                                                                             \
        }                                                                                         \
        return (uint##bits##_t)emu_read_slow(cpu, la, bits / 8, ACC_READ);                        \
    }                                                                                             \
    static inline void emu_write##bits(struct emu_cpu *cpu, uint64_t la, uint##bits##_t v)        \
    {                                                                                             \
        struct emu_tlb_entry *e = emu_tlb_slot(cpu, la);                                          \
        if (__builtin_expect(e->tag_write == emu_tlb_tag(la) && ((la & 0xfff) <= 4096 - bits / 8), 1)) { \
            __builtin_memcpy((void *)(e->host_addend + la), &v, sizeof(v));                       \
            return;                                                                               \
        }                                                                                         \
        emu_write_slow(cpu, la, v, bits / 8);                                                     \
    }
EMU_DEFINE_ACCESS(8)
EMU_DEFINE_ACCESS(16)
EMU_DEFINE_ACCESS(32)
EMU_DEFINE_ACCESS(64)
#undef EMU_DEFINE_ACCESS

/* Re-derive cpl/long64/code32/paging after a change of CR0, CR4, EFER or CS. */
void emu_update_mode(struct emu_cpu *cpu);

/* System instructions, decoded by exec and carried out by the system part. Each validates
 * privilege and operands and raises as the SDM says. `opsize` is 2, 4 or 8. */
void emu_sys_mov_to_cr(struct emu_cpu *cpu, int cr, uint64_t val);
uint64_t emu_sys_mov_from_cr(struct emu_cpu *cpu, int cr);
void emu_sys_mov_to_dr(struct emu_cpu *cpu, int dr, uint64_t val);
uint64_t emu_sys_mov_from_dr(struct emu_cpu *cpu, int dr);
void emu_sys_load_seg(struct emu_cpu *cpu, int seg, uint16_t selector); /* MOV Sreg, POP Sreg */
void emu_sys_lgdt_lidt(struct emu_cpu *cpu, bool idt, uint64_t la);     /* la: pseudo-descriptor */
void emu_sys_sgdt_sidt(struct emu_cpu *cpu, bool idt, uint64_t la);
void emu_sys_lldt(struct emu_cpu *cpu, uint16_t sel);
void emu_sys_ltr(struct emu_cpu *cpu, uint16_t sel);
void emu_sys_invlpg(struct emu_cpu *cpu, uint64_t la);
void emu_sys_rdmsr(struct emu_cpu *cpu);  /* ECX -> EDX:EAX */
void emu_sys_wrmsr(struct emu_cpu *cpu);
void emu_sys_cpuid(struct emu_cpu *cpu);
uint64_t emu_sys_rdtsc(struct emu_cpu *cpu); /* checks CR4.TSD */
void emu_sys_in(struct emu_cpu *cpu, uint16_t port, unsigned size, uint64_t *val);  /* checks IOPL */
void emu_sys_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint64_t val);
void emu_sys_hlt(struct emu_cpu *cpu);     /* CPL0 check; sets s.halted, emu_exec returns */
void emu_sys_cli(struct emu_cpu *cpu);
void emu_sys_sti(struct emu_cpu *cpu);     /* sets the one-instruction interrupt shadow */
void emu_sys_int(struct emu_cpu *cpu, uint8_t vector, bool software_int3_or_into); /* INT n / INT3 / INTO */
void emu_sys_iret(struct emu_cpu *cpu, unsigned opsize);
void emu_sys_syscall(struct emu_cpu *cpu);
void emu_sys_sysret(struct emu_cpu *cpu, unsigned opsize);
void emu_sys_swapgs(struct emu_cpu *cpu);
void emu_sys_far_jmp_call(struct emu_cpu *cpu, uint16_t sel, uint64_t offset, bool call, unsigned opsize);
void emu_sys_far_ret(struct emu_cpu *cpu, unsigned opsize, uint16_t pop_bytes); /* RETF / RETF imm16 */
void emu_sys_clts(struct emu_cpu *cpu);
void emu_sys_wbinvd(struct emu_cpu *cpu);
uint64_t emu_sys_xgetbv(struct emu_cpu *cpu);
void emu_sys_xsetbv(struct emu_cpu *cpu);
uint16_t emu_sys_smsw(struct emu_cpu *cpu);
void emu_sys_lmsw(struct emu_cpu *cpu, uint16_t val);
/* Stack helpers honouring SS/stack-size rules for the current mode. */
void emu_push(struct emu_cpu *cpu, uint64_t val, unsigned size);
uint64_t emu_pop(struct emu_cpu *cpu, unsigned size);

/* Standalone use (tests, differential harness): a CPU over a flat RAM buffer with no machine. */
int emu_cpu_init(struct emu_cpu *cpu, struct machine *m);
void emu_cpu_destroy(struct emu_cpu *cpu);

#endif
