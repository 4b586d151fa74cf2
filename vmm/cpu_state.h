/* cpu_state: the backend-neutral architectural state of one x86-64 vCPU.
 *
 * Both CPU backends (kvm, emu) load and store exactly this struct, so a
 * snapshot taken under one restores under the other. Plain data only: no
 * pointers, fixed-size fields, little-endian as on the host.
 */
#ifndef VMD_CPU_STATE_H
#define VMD_CPU_STATE_H

#include <stddef.h>
#include <stdint.h>

enum cpu_gpr {
    GPR_RAX, GPR_RCX, GPR_RDX, GPR_RBX, GPR_RSP, GPR_RBP, GPR_RSI, GPR_RDI,
    GPR_R8, GPR_R9, GPR_R10, GPR_R11, GPR_R12, GPR_R13, GPR_R14, GPR_R15,
    GPR_COUNT
};

enum cpu_seg { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_TR, SEG_LDTR, SEG_COUNT };

/* A segment register with its hidden descriptor cache, in KVM's unpacked layout. */
struct cpu_segment {
    uint64_t base;
    uint32_t limit; /* byte-granular (already scaled when G=1) */
    uint16_t selector;
    uint8_t type;   /* 4-bit descriptor type */
    uint8_t s, dpl, present, avl, l, db, g;
    uint8_t unusable;
};

struct cpu_dtable {
    uint64_t base;
    uint16_t limit;
};

/* FXSAVE-format x87/SSE area (512 bytes, Intel SDM vol. 1 table 10-2). */
struct cpu_fxsave {
    uint16_t fcw, fsw;
    uint8_t ftw, rsvd1;     /* abridged tag word */
    uint16_t fop;
    uint64_t fip, fdp;
    uint32_t mxcsr, mxcsr_mask;
    uint8_t st[8][16];      /* ST0..ST7, 10 bytes used each */
    uint8_t xmm[16][16];
    uint8_t rsvd2[96];
} __attribute__((aligned(16)));

/* The MSRs vmd models, by architectural number. */
#define MSR_IA32_TSC 0x10
#define MSR_IA32_APIC_BASE 0x1b
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_IA32_PAT 0x277
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX 0xc0000103
#define MSR_IA32_TSC_DEADLINE 0x6e0
/* KVM's paravirtual MSRs ("KVM" in ASCII), Documentation/virt/kvm/x86/msr.rst */
#define MSR_KVM_WALL_CLOCK_NEW 0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define MSR_KVM_ASYNC_PF_EN 0x4b564d02
#define MSR_KVM_STEAL_TIME 0x4b564d03
#define MSR_KVM_PV_EOI_EN 0x4b564d04

#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)

#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_EM (1ULL << 2)
#define CR0_TS (1ULL << 3)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_AM (1ULL << 18)
#define CR0_PG (1ULL << 31)

#define CR4_PSE (1ULL << 4)
#define CR4_PAE (1ULL << 5)
#define CR4_PGE (1ULL << 7)
#define CR4_OSFXSR (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)

#define RFLAGS_CF (1ULL << 0)
#define RFLAGS_PF (1ULL << 2)
#define RFLAGS_AF (1ULL << 4)
#define RFLAGS_ZF (1ULL << 6)
#define RFLAGS_SF (1ULL << 7)
#define RFLAGS_TF (1ULL << 8)
#define RFLAGS_IF (1ULL << 9)
#define RFLAGS_DF (1ULL << 10)
#define RFLAGS_OF (1ULL << 11)
#define RFLAGS_FIXED (1ULL << 1)

struct cpu_state {
    uint64_t gpr[GPR_COUNT];
    uint64_t rip;
    uint64_t rflags;
    struct cpu_segment seg[SEG_COUNT];
    struct cpu_dtable gdtr, idtr;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t efer;
    uint64_t apic_base;
    /* MSRs */
    uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t pat, misc_enable, tsc, tsc_aux;
    uint64_t dr[8];
    uint64_t xcr0;
    struct cpu_fxsave fx;
    /* Event state */
    uint8_t halted;          /* executed HLT, waiting for an interrupt */
    uint8_t interrupt_shadow; /* after STI / MOV SS */
    uint8_t nmi_pending;
    uint8_t rsvd[5];
    /* Since snapshot cpu section version 2 (version 1 ends above; restoring it zero-fills). */
    uint64_t tsc_deadline;    /* IA32_TSC_DEADLINE (local APIC timer in TSC-deadline mode) */
    uint64_t kvm_system_time; /* kvmclock: GPA of the vCPU's pvclock page | enable bit */
    uint64_t kvm_wall_clock;  /* kvmclock: GPA of the wall-clock structure, as last written */
    uint64_t kvm_steal_time, kvm_async_pf_en, kvm_pv_eoi_en; /* other PV areas the guest registered */
    uint32_t tsc_khz;         /* rate the guest's TSC runs at (0: unknown) */
    uint32_t rsvd3;
};
/* The size of a version-1 cpu section: struct cpu_state up to rsvd[]. */
#define CPU_STATE_V1_SIZE (offsetof(struct cpu_state, rsvd) + 5)

#endif
