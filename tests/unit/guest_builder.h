/* guest_builder: tiny 64-bit test guests for backend tests (kvm, emu, differential).
 *
 * Lays out in guest RAM an identity map of the first 4 GiB (2 MiB user-accessible,
 * writable pages), a GDT with 64-bit kernel and user segments and a TSS, and an IDT
 * whose handlers push RAX and RDX, report the exception vector with a 32-bit OUT to
 * GB_EXC_PORT and then spin. guest_cpl3_state() gives the register state that starts
 * executing user code at CPL3 in long mode with IOPL=3 (IN/OUT allowed at CPL3 on real
 * hardware; kvm_pvm ignores IOPL, see docs/kvm-pvm.md); guest_cpl0_state() the same at CPL0.
 *
 * Guest-physical layout (all identity-mapped; needs at least GB_MIN_RAM bytes of RAM):
 *   0x1000 PML4, 0x2000 PDPT, 0x3000-0x6fff four page directories,
 *   0x7000 GDT, 0x7100 TSS, 0x8000 IDT, 0x9000 exception stubs, kernel stack below 0xf000,
 *   GB_CODE user code, GB_DATA user data, user stack below GB_STACK_TOP.
 */
#ifndef VMD_TESTS_GUEST_BUILDER_H
#define VMD_TESTS_GUEST_BUILDER_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/cpu_state.h"
#include "vmm/guest_mem.h"

#define GB_PML4 0x1000ULL
#define GB_GDT 0x7000ULL
#define GB_TSS 0x7100ULL
#define GB_IDT 0x8000ULL
#define GB_EXC_STUBS 0x9000ULL
#define GB_KSTACK_TOP 0xf000ULL
#define GB_CODE 0x10000ULL
#define GB_CODE_SIZE 0x10000ULL
#define GB_DATA 0x20000ULL
#define GB_DATA_SIZE 0x20000ULL
#define GB_STACK_TOP 0x50000ULL
#define GB_MIN_RAM 0x200000ULL

#define GB_SEL_KCODE 0x08
#define GB_SEL_KDATA 0x10
#define GB_SEL_UDATA 0x1b
#define GB_SEL_UCODE 0x23
#define GB_SEL_TSS 0x28

/* Port the exception stubs write the vector to (32-bit OUT). */
#define GB_EXC_PORT 0xf5
/* The kernel-stack frame of an exception taken at CPL3: SS, RSP, RFLAGS, CS, RIP from the
 * top of the kernel stack down, then the error code (if the vector has one), then the RAX
 * and RDX the stub pushed. */
#define GB_FRAME_SS (GB_KSTACK_TOP - 8)
#define GB_FRAME_RSP (GB_KSTACK_TOP - 16)
#define GB_FRAME_RFLAGS (GB_KSTACK_TOP - 24)
#define GB_FRAME_CS (GB_KSTACK_TOP - 32)
#define GB_FRAME_RIP (GB_KSTACK_TOP - 40)
#define GB_FRAME_ERROR (GB_KSTACK_TOP - 48)
#define GB_FRAME_RAX(has_error) (GB_KSTACK_TOP - ((has_error) ? 56 : 48))
#define GB_FRAME_RDX(has_error) (GB_FRAME_RAX(has_error) - 8)
/* Whether exception `vector` pushes an error code. */
#define GB_VECTOR_HAS_ERROR(v) ((v) == 8 || ((v) >= 10 && (v) <= 14) || (v) == 17 || (v) == 21)

/* Write page tables, GDT, TSS, IDT and exception stubs into mem. Returns 0 or -EFAULT. */
int guest_build_long_mode(struct guest_mem *mem);

/* Point IDT entry `vector` (0-255) at a CPL0 handler (64-bit interrupt gate, DPL 0 except for
 * vector 3, which INT3 may reach from CPL3). Callers using
 * vectors >= 32 must raise the IDT limit in the state (idtr.limit = 256 * 16 - 1). */
int guest_set_gate(struct guest_mem *mem, unsigned vector, uint64_t handler);

/* Copy `len` bytes of user code to GB_CODE. Returns 0 or -EFAULT / -E2BIG. */
int guest_load_code(struct guest_mem *mem, const void *code, size_t len);

/* State that runs at `rip` at CPL3 in 64-bit mode: user segments, RSP = GB_STACK_TOP,
 * RFLAGS = IOPL3 | fixed bit, CR0 = PE|MP|ET|NE|WP|PG, CR4 = PAE|OSFXSR|OSXMMEXCPT,
 * EFER = LME|LMA|SCE, FCW 0x37f, MXCSR 0x1f80, PAT at its reset value. */
void guest_cpl3_state(struct cpu_state *s, uint64_t rip);
/* The same in the kernel code segment (CPL0), RSP = GB_KSTACK_TOP - 0x1000. */
void guest_cpl0_state(struct cpu_state *s, uint64_t rip);

#endif
