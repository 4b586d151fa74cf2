/* cpuid: what the emulated CPU reports, which is exactly what the emulator implements.
 *
 * Vendor: "AuthenticAMD", family 0Fh model 6Bh (the identity of QEMU's default qemu64 CPU).
 * Why: it is the configuration Linux is known to boot with under QEMU TCG, the speed
 * reference vmd is measured against, so the guest takes the same code paths in both; and
 * the Intel path reads MISC_ENABLE from verify_cpu before any IDT exists and the microcode
 * revision MSR without a fault handler, expects CPUID leaves 4/0xB/0x15, and applies model
 * quirks, none of which the AMD K8 path does.
 *
 * APIC, X2APIC and TSC-deadline on the APIC platform (the default: vmm/emu/lapic.c); the PIC
 * platform (--irqchip pic) has none.
 * Not reported because not implemented: MTRR, MCE/MCA, VME, DE (debug extensions), PSE36, SEP (SYSENTER), XSAVE/AVX,
 * PCID, FSGSBASE, SMEP/SMAP, RDTSCP.
 */
#include <string.h>

#include "vmm/emu/fpu_sse.h"
#include "vmm/emu/sys.h"

/* leaf 1 EDX */
#define F1D_FPU (1u << 0)
#define F1D_PSE (1u << 3)
#define F1D_TSC (1u << 4)
#define F1D_MSR (1u << 5)
#define F1D_PAE (1u << 6)
#define F1D_CX8 (1u << 8)
#define F1D_APIC (1u << 9)
#define F1D_PGE (1u << 13)
#define F1D_CMOV (1u << 15)
#define F1D_PAT (1u << 16)
#define F1D_CLFLUSH (1u << 19)
#define F1D_MMX (1u << 23)
#define F1D_FXSR (1u << 24)
#define F1D_SSE (1u << 25)
#define F1D_SSE2 (1u << 26)
/* leaf 1 ECX */
#define F1C_CX16 (1u << 13)
#define F1C_X2APIC (1u << 21)
#define F1C_POPCNT (1u << 23)
#define F1C_TSC_DEADLINE (1u << 24)
#define F1C_HYPERVISOR (1u << 31)
/* leaf 0x80000001 */
#define F81D_SYSCALL (1u << 11)
#define F81D_NX (1u << 20)
#define F81D_PAGE1GB (1u << 26)
#define F81D_LM (1u << 29)
#define F81C_LAHF_LM (1u << 0)
#define F81C_ABM (1u << 5) /* LZCNT (and POPCNT) */

/* Integer-instruction features implemented by the exec part (see vmm/emu/exec_*.c). */
#define F1C_MOVBE (1u << 22)
#define EXEC_LEAF1_ECX (F1C_CX16 | F1C_POPCNT | F1C_MOVBE)

#define CPU_SIGNATURE EMU_CPU_SIGNATURE /* family 0Fh, model 6Bh, stepping 1 (cpu.h) */

static void put_str(uint32_t *regs, const char *s12)
{
    memcpy(regs, s12, 12);
}

void emu_sys_cpuid(struct emu_cpu *cpu)
{
    uint32_t leaf = (uint32_t)cpu->s.gpr[GPR_RAX];
    uint32_t sub = (uint32_t)cpu->s.gpr[GPR_RCX];
    uint32_t a = 0, b = 0, c = 0, d = 0;
    (void)sub;
    uint32_t fpu_ecx = 0, fpu_edx = 0;
    fpu_sse_cpuid(&fpu_ecx, &fpu_edx);
    uint32_t leaf1_edx = F1D_FPU | F1D_PSE | F1D_TSC | F1D_MSR | F1D_PAE | F1D_CX8 | F1D_PGE | F1D_CMOV | F1D_PAT |
                         F1D_CLFLUSH | fpu_edx;
    uint32_t leaf1_ecx = EXEC_LEAF1_ECX | F1C_HYPERVISOR | fpu_ecx;
    if (cpu->lapic) { /* the APIC platform (vmm/emu/lapic.c) */
        leaf1_edx |= F1D_APIC;
        leaf1_ecx |= F1C_X2APIC | F1C_TSC_DEADLINE;
    }
    switch (leaf) {
    case 0: {
        uint32_t v[3];
        a = 7;
        put_str(v, "AuthenticAMD"); /* EBX EDX ECX order */
        b = v[0];
        d = v[1];
        c = v[2];
        break;
    }
    case 1:
        a = CPU_SIGNATURE;
        b = (8u << 8) | (1u << 16); /* CLFLUSH line 64 bytes, 1 logical CPU, APIC ID 0 */
        c = leaf1_ecx;
        d = leaf1_edx;
        break;
    case 0x80000000: {
        uint32_t v[3];
        a = 0x80000008;
        put_str(v, "AuthenticAMD");
        b = v[0];
        d = v[1];
        c = v[2];
        break;
    }
    case 0x80000001:
        a = CPU_SIGNATURE;
        c = F81C_LAHF_LM | F81C_ABM;
        /* AMD mirrors the leaf-1 EDX bits here */
        d = (leaf1_edx & 0x0183f3ffu) | F81D_SYSCALL | F81D_NX | F81D_PAGE1GB | F81D_LM;
        break;
    case 0x80000002:
    case 0x80000003:
    case 0x80000004: {
        char brand[48] = "vmd x86-64 emulator";
        uint32_t v[4];
        memcpy(v, brand + 16 * (leaf - 0x80000002), 16);
        a = v[0];
        b = v[1];
        c = v[2];
        d = v[3];
        break;
    }
    case 0x80000005: /* L1 caches: 64 KiB 2-way, 64-byte lines (data and instruction) */
        c = (64u << 24) | (2u << 16) | (1u << 8) | 64u;
        d = c;
        break;
    case 0x80000006: /* L2: 512 KiB 16-way, 64-byte lines */
        c = (512u << 16) | (0x8u << 12) | (1u << 8) | 64u;
        break;
    case 0x80000007:
        d = 1u << 8; /* invariant TSC: the guest TSC runs at a constant rate from the host clock */
        break;
    case 0x80000008:
        a = (48u << 8) | EMU_MAXPHYADDR;
        /* XSaveErPtr: FXSAVE/FXRSTOR always save and restore FIP/FDP/FOP (ours copy the whole
         * register file), so Linux needs no FXSAVE-leak workaround (an FILD before FXRSTOR) */
        b = 1u << 2;
        break;
    default:
        break; /* unknown and intermediate leaves (2..7) read as zero */
    }
    cpu->s.gpr[GPR_RAX] = a;
    cpu->s.gpr[GPR_RBX] = b;
    cpu->s.gpr[GPR_RCX] = c;
    cpu->s.gpr[GPR_RDX] = d;
}
