/* cpu: the bottom layer of vmd's software x86-64 emulator: the vCPU's state (struct emu_cpu),
 * the architectural constants every part uses (exception vectors, RFLAGS, CR and page-fault
 * error-code bits), raising an exception, and the operand-size helpers. It calls nothing: every
 * other file of vmm/emu builds on it.
 *
 * The emulator's layers, bottom up (each file uses only the ones below it):
 *   cpu.h                 state, constants, emu_raise
 *   flags.h, flags.c      lazy arithmetic flags, condition codes, RFLAGS
 *   mmu.h, mmu.c          linear->physical translation, software TLB, memory accessors, segments
 *   seg.h, seg.c          descriptors, the segment caches the system part builds, the mode cache
 *   realmode.h/.c, task.c real mode (IVT, IRET, far transfers, segment loads); call gates, task
 *                         switches, virtual-8086 mode, the TSS I/O bitmap
 *   except.h, except.c    segment loads, exception and interrupt delivery, INT/IRET,
 *                         SYSCALL/SYSRET, far transfers, the stack helpers; hands real mode and
 *                         system descriptors to the two above
 *   sys.h, sys.c, msr.c, cpuid.c   system instructions, MSRs, CPUID
 *   exec.h                the decoded instruction, operand and memory helpers for handlers
 *   decode.c, exec_*.c    decoder and instruction handlers (decode.c picks handlers: the one
 *                         circle left, decode <-> execute)
 *   icache.h, icache.c    decoded-block cache and the dispatch loop emu_exec
 *   emu.h, backend.c      the emulator's face to vmd: the cpu_backend glue
 * fpu_sse.h / fpu_x87.c / fpu_sse.c (x87, MMX, SSE) stand beside exec on their own state.
 *
 * Faults: any exception raised while an instruction executes calls emu_raise(), which
 * never returns: it records the exception and longjmps to cpu->fault_jmp, set by emu_exec
 * around each instruction (or block). emu_exec then resets RIP to cpu->insn_rip and
 * delivers the exception. Instruction handlers must therefore write architectural state
 * only after every access that can fault has succeeded (do the stores last).
 */
#ifndef VMD_EMU_CPU_H
#define VMD_EMU_CPU_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/cpu_state.h"

struct machine;
struct emu_icache;

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

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

/* RFLAGS bits beyond cpu_state.h */
#define RFLAGS_IOPL (3ULL << 12)
#define RFLAGS_NT (1ULL << 14)
#define RFLAGS_RF (1ULL << 16)
#define RFLAGS_VM (1ULL << 17)
#define RFLAGS_AC (1ULL << 18)
#define RFLAGS_VIF (1ULL << 19)
#define RFLAGS_VIP (1ULL << 20)
#define RFLAGS_ID (1ULL << 21)
/* the six arithmetic flags, which the lazy-flags state holds while it is live */
#define ARITH_FLAGS (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

/* Control-register bits beyond cpu_state.h */
#define CR4_TSD (1ULL << 2)
#define CR4_DE (1ULL << 3)
#define CR0_NW (1ULL << 29)
#define CR0_CD (1ULL << 30)

/* The processor signature CPUID leaf 1 reports in EAX (family 0Fh, model 6Bh, stepping 1: QEMU's
 * qemu64), which is also EDX after reset (vmm/boot/firmware.c). */
#define EMU_CPU_SIGNATURE 0x00060fb1u

/* Physical address width reported in CPUID 0x80000008 and enforced in page-table entries. */
#define EMU_MAXPHYADDR 40
#define EMU_PHYS_MASK ((1ULL << EMU_MAXPHYADDR) - 1)

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
                                                are mmu.c's flags: mask them off */
};

/* Lazy flags: the last flag-setting operation is recorded and flags are computed on demand
 * (flags.h owns the encoding of op; others use emu_get_rflags/emu_set_rflags). */
struct emu_lazy_flags {
    uint64_t res, src1, src2;
    uint32_t op;   /* enum lf_op (flags.h) */
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

    /* Software TLB (mmu.c) */
    struct emu_tlb_entry tlb[EMU_TLB_SIZE];

    /* Decoded-instruction cache (icache.c) and per-guest-physical-page "holds cached code"
     * bitmap: a write that the MMU sees to such a page calls code_written (set by the cache
     * that owns the bitmap: the MMU sits below it and reports up through this hook). */
    struct emu_icache *icache;
    uint8_t *code_bitmap;  /* 1 bit per 4 KiB page of guest-physical address space below ram_top */
    uint64_t code_bitmap_pages;
    void (*code_written)(struct emu_cpu *cpu, uint64_t gpa);

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
    /* The A20 gate as this CPU applies it: the physical-address bits it clears (bit 20 while the
     * gate is off, else 0) and the machine's a20_gen when that was read (emu_a20_sync). */
    uint64_t a20_clear;
    unsigned a20_gen;
};

/* Raise exception `vector` (with an error code if has_error): record it and unwind to the
 * dispatch loop. Never returns. */
static inline __attribute__((noreturn)) void emu_raise(struct emu_cpu *cpu, int vector, uint32_t error, bool has_error)
{
    cpu->exc_vector = vector;
    cpu->exc_error = error;
    cpu->exc_has_error = has_error;
    longjmp(cpu->fault_jmp, 1);
}
static inline __attribute__((noreturn)) void emu_raise_ud(struct emu_cpu *cpu) { emu_raise(cpu, EXC_UD, 0, false); }
static inline __attribute__((noreturn)) void emu_raise_gp0(struct emu_cpu *cpu) { emu_raise(cpu, EXC_GP, 0, true); }

/* A 64-bit linear address is canonical: bits 63:47 all equal. */
static inline bool emu_canonical(uint64_t la) { return (uint64_t)(((int64_t)(la << 16)) >> 16) == la; }

/* Operand-size helpers: the mask of a `size`-byte operand, sign extension from it, its MSB. */
static inline uint64_t szmask(unsigned size) { return size >= 8 ? ~0ULL : (1ULL << (size * 8)) - 1; }
static inline uint64_t sext(uint64_t v, unsigned size)
{
    switch (size) {
    case 1: return (uint64_t)(int64_t)(int8_t)v;
    case 2: return (uint64_t)(int64_t)(int16_t)v;
    case 4: return (uint64_t)(int64_t)(int32_t)v;
    default: return v;
    }
}
static inline uint64_t msb(uint64_t v, unsigned size) { return (v >> (size * 8 - 1)) & 1; }

#endif
