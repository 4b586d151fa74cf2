/* x86_undefined: what the architecture leaves undefined after an integer instruction, for the
 * differential tests (test_emu_exec against the host CPU, test_emu_diff against KVM).
 *
 * One table (x86_undefined.c) lists, per instruction family, the arithmetic flags and the
 * destination results that the Intel SDM or the AMD APM leave undefined, each row citing its
 * source. A differential test compares only what is defined, with one exception: the emulator
 * claims to be an AMD CPU (vmm/emu/cpuid.c), and where it reproduces what AMD processors do
 * with an undefined bit, the row says so ("amd"); those bits are compared too when the
 * reference is an AMD CPU (the host's vendor, or the vectors recorded on one).
 */
#ifndef VMD_TESTS_X86_UNDEFINED_H
#define VMD_TESTS_X86_UNDEFINED_H

#include <stdbool.h>
#include <stdint.h>

/* Instruction families with undefined results (64-bit mode; the BCD ones are for 16/32-bit). */
enum x86_family {
    XF_SHL_SHR,  /* SHL/SAL, SHR (group 2 /4 /5 /6) */
    XF_SAR,      /* SAR (group 2 /7) */
    XF_ROTATE,   /* ROL, ROR (group 2 /0 /1) */
    XF_ROTATE_C, /* RCL, RCR (group 2 /2 /3) */
    XF_SHXD,     /* SHLD, SHRD */
    XF_MUL,      /* MUL, IMUL (one, two and three operands) */
    XF_DIV,      /* DIV, IDIV */
    XF_BT,       /* BT, BTS, BTR, BTC */
    XF_BSF_BSR,  /* BSF, BSR */
    XF_TZ_LZCNT, /* TZCNT, LZCNT */
    XF_AAA_AAS,  /* AAA, AAS */
    XF_DAA_DAS,  /* DAA, DAS */
    XF_AAM_AAD,  /* AAM, AAD */
    XF_COUNT
};

/* The operand facts the table's conditions read. */
struct x86_operands {
    unsigned size;   /* operand size in bytes: 1, 2, 4, 8 */
    unsigned count;  /* shifts and rotates: the count after masking to 5 (6 with REX.W) bits */
    bool src_zero;   /* bit scans: the source operand is zero */
};

/* What one instruction leaves undefined. */
struct x86_undef {
    uint64_t flags;     /* arithmetic flags (RFLAGS bits) the manuals leave undefined */
    uint64_t amd_flags; /* the subset the emulator computes as AMD CPUs do */
    bool result;        /* the destination is undefined */
    bool amd_result;    /* ... and the emulator leaves it as AMD CPUs do */
};

struct x86_undef x86_undefined(enum x86_family f, const struct x86_operands *o);

/* The arithmetic flags (OF SF ZF AF PF CF) a test compares after the instruction, given
 * whether the reference it is compared with is an AMD CPU. */
uint64_t x86_defined_flags(const struct x86_undef *u, bool reference_is_amd);
/* Whether the destination is compared. */
bool x86_result_defined(const struct x86_undef *u, bool reference_is_amd);

enum x86_vendor { X86_VENDOR_OTHER, X86_VENDOR_AMD, X86_VENDOR_INTEL };
enum x86_vendor x86_host_vendor(void);
const char *x86_vendor_name(enum x86_vendor v);

/* The table itself, for tests that print or check it. */
struct x86_undef_row {
    enum x86_family family;
    enum {
        XC_ALWAYS,         /* whenever the instruction executes */
        XC_COUNT_NONZERO,  /* masked count != 0 */
        XC_COUNT_ABOVE_1,  /* masked count > 1 */
        XC_COUNT_GE_SIZE,  /* masked count >= operand size in bits */
        XC_COUNT_GT_SIZE,  /* masked count > operand size in bits */
        XC_SRC_ZERO,       /* source operand is zero */
    } when;
    uint64_t flags;     /* undefined flags under that condition */
    uint64_t amd_flags; /* of which the emulator follows AMD */
    bool result, amd_result;
    const char *source; /* where the manuals say so */
};
extern const struct x86_undef_row x86_undef_table[];
extern const unsigned x86_undef_table_len;

#endif
