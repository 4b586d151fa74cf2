/* x86_undefined: the table of architecturally undefined flags and results (see the header).
 *
 * Sources: Intel 64 and IA-32 Architectures Software Developer's Manual, Volume 2 (the
 * instruction's "Flags Affected" and "Operation" sections), and AMD64 Architecture
 * Programmer's Manual, Volume 3 (the instruction's "rFLAGS Affected" table, where U marks an
 * undefined flag). Where the two differ, the union is undefined.
 */
#include "x86_undefined.h"

#include <cpuid.h>
#include <string.h>

#include "vmm/cpu_state.h"

#define OF RFLAGS_OF
#define SF RFLAGS_SF
#define ZF RFLAGS_ZF
#define AF RFLAGS_AF
#define PF RFLAGS_PF
#define CF RFLAGS_CF
#define ALL6 (OF | SF | ZF | AF | PF | CF)

const struct x86_undef_row x86_undef_table[] = {
    /* family       condition         undefined        emulator = AMD  result */
    {XF_SHL_SHR, XC_COUNT_NONZERO, AF, 0, false, false,
     "SDM Vol. 2B SAL/SAR/SHL/SHR, Flags Affected: \"For a non-zero count, the AF flag is undefined\"; APM Vol. 3 SHL/SHR: AF U"},
    {XF_SHL_SHR, XC_COUNT_ABOVE_1, OF, OF, false, false,
     "SDM Vol. 2B SAL/SAR/SHL/SHR: \"The OF flag is affected only for 1-bit shifts; otherwise, it is undefined\"; APM Vol. 3 SHL/SHR: OF undefined for counts > 1"},
    {XF_SHL_SHR, XC_COUNT_GE_SIZE, CF, CF, false, false,
     "SDM Vol. 2B SAL/SAR/SHL/SHR: CF \"is undefined for SHL and SHR instructions where the count is greater than or equal to the size (in bits) of the destination operand\""},
    {XF_SAR, XC_COUNT_NONZERO, AF, 0, false, false,
     "SDM Vol. 2B SAL/SAR/SHL/SHR: \"For a non-zero count, the AF flag is undefined\"; APM Vol. 3 SAR: AF U"},
    {XF_SAR, XC_COUNT_ABOVE_1, OF, OF, false, false,
     "SDM Vol. 2B SAL/SAR/SHL/SHR: OF undefined for counts other than 1; APM Vol. 3 SAR: \"When the shift count is greater than 1, the OF flag is undefined\""},
    {XF_ROTATE, XC_COUNT_ABOVE_1, OF, OF, false, false,
     "SDM Vol. 2B RCL/RCR/ROL/ROR, Flags Affected: \"If the masked count is 1, then the OF flag is affected, otherwise (masked count is greater than 1) the OF flag is undefined\"; APM Vol. 3 ROL/ROR: OF U"},
    {XF_ROTATE_C, XC_COUNT_ABOVE_1, OF, OF, false, false,
     "SDM Vol. 2B RCL/RCR/ROL/ROR (as ROL/ROR); APM Vol. 3 RCL/RCR: OF undefined for counts other than 1"},
    {XF_SHXD, XC_COUNT_NONZERO, AF, 0, false, false,
     "SDM Vol. 2B SHLD/SHRD, Flags Affected: \"If a shift occurs, the AF flag is undefined\"; APM Vol. 3 SHLD/SHRD: AF U"},
    {XF_SHXD, XC_COUNT_ABOVE_1, OF, OF, false, false,
     "SDM Vol. 2B SHLD/SHRD: \"For shifts greater than 1 bit, the OF flag is undefined\""},
    {XF_SHXD, XC_COUNT_GE_SIZE, OF, 0, false, false,
     "SDM Vol. 2B SHLD/SHRD (as above: OF undefined for counts > 1); the emulator's OF matches AMD's only below the operand size (16-bit counts of 16)"},
    {XF_SHXD, XC_COUNT_GT_SIZE, ALL6, 0, true, false,
     "SDM Vol. 2B SHLD/SHRD, Operation: \"IF COUNT > SIZE THEN DEST is undefined; CF, OF, SF, ZF, AF, PF are undefined\" (16-bit operands only)"},
    {XF_MUL, XC_ALWAYS, SF | ZF | AF | PF, 0, false, false,
     "SDM Vol. 2A MUL and IMUL, Flags Affected: \"The SF, ZF, AF, and PF flags are undefined\"; APM Vol. 3 MUL/IMUL: SF ZF AF PF U"},
    {XF_DIV, XC_ALWAYS, ALL6, 0, false, false,
     "SDM Vol. 2A DIV and IDIV, Flags Affected: \"The CF, OF, SF, ZF, AF, and PF flags are undefined\""},
    {XF_BT, XC_ALWAYS, OF | SF | AF | PF, OF | SF | AF | PF, false, false,
     "SDM Vol. 2A BT/BTC/BTR/BTS, Flags Affected: \"The ZF flag is unaffected. The OF, SF, AF, and PF flags are undefined\"; APM Vol. 3 BT*: OF SF AF PF U"},
    {XF_BSF_BSR, XC_ALWAYS, CF | OF | SF | AF | PF, CF | OF | SF | AF, false, false,
     "SDM Vol. 2A BSF and BSR, Flags Affected: \"The CF, OF, SF, AF, and PF flags are undefined\""},
    {XF_BSF_BSR, XC_SRC_ZERO, 0, 0, true, true,
     "SDM Vol. 2A BSF/BSR: \"If the content of the source operand is 0, the content of the destination operand is undefined\"; APM Vol. 3 BSF/BSR documents the destination as unchanged"},
    {XF_TZ_LZCNT, XC_ALWAYS, OF | SF | AF | PF, SF | AF | PF, false, false,
     "SDM Vol. 2A LZCNT and TZCNT, Flags Affected: \"OF, SF, PF and AF flags are undefined\""},
    {XF_AAA_AAS, XC_ALWAYS, OF | SF | ZF | PF, 0, false, false,
     "SDM Vol. 2A AAA and AAS, Flags Affected: \"The OF, SF, ZF, and PF flags are undefined\""},
    {XF_DAA_DAS, XC_ALWAYS, OF, 0, false, false,
     "SDM Vol. 2A DAA and DAS, Flags Affected: \"The OF flag is undefined\""},
    {XF_AAM_AAD, XC_ALWAYS, OF | AF | CF, 0, false, false,
     "SDM Vol. 2A AAM and AAD, Flags Affected: \"The OF, AF, and CF flags are undefined\""},
};
const unsigned x86_undef_table_len = sizeof(x86_undef_table) / sizeof(x86_undef_table[0]);

static bool condition_holds(const struct x86_undef_row *r, const struct x86_operands *o)
{
    unsigned bits = o->size * 8;
    switch (r->when) {
    case XC_ALWAYS: return true;
    case XC_COUNT_NONZERO: return o->count != 0;
    case XC_COUNT_ABOVE_1: return o->count > 1;
    case XC_COUNT_GE_SIZE: return o->count >= bits;
    case XC_COUNT_GT_SIZE: return o->count > bits;
    case XC_SRC_ZERO: return o->src_zero;
    }
    return false;
}

struct x86_undef x86_undefined(enum x86_family f, const struct x86_operands *o)
{
    /* A bit is computed as AMD does only if every row that leaves it undefined says so. */
    struct x86_undef u = {0};
    uint64_t not_amd = 0;
    bool result_not_amd = false;
    for (unsigned i = 0; i < x86_undef_table_len; i++) {
        const struct x86_undef_row *r = &x86_undef_table[i];
        if (r->family != f || !condition_holds(r, o)) continue;
        u.flags |= r->flags;
        not_amd |= r->flags & ~r->amd_flags;
        u.result |= r->result;
        result_not_amd |= r->result && !r->amd_result;
    }
    u.amd_flags = u.flags & ~not_amd;
    u.amd_result = u.result && !result_not_amd;
    return u;
}

uint64_t x86_defined_flags(const struct x86_undef *u, bool reference_is_amd)
{
    uint64_t undefined = u->flags & ~(reference_is_amd ? u->amd_flags : 0);
    return ALL6 & ~undefined;
}

bool x86_result_defined(const struct x86_undef *u, bool reference_is_amd)
{
    return !u->result || (reference_is_amd && u->amd_result);
}

enum x86_vendor x86_host_vendor(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return X86_VENDOR_OTHER;
    char v[13];
    memcpy(v, &b, 4);
    memcpy(v + 4, &d, 4);
    memcpy(v + 8, &c, 4);
    v[12] = 0;
    if (!strcmp(v, "AuthenticAMD")) return X86_VENDOR_AMD;
    if (!strcmp(v, "GenuineIntel")) return X86_VENDOR_INTEL;
    return X86_VENDOR_OTHER;
}

const char *x86_vendor_name(enum x86_vendor v)
{
    return v == X86_VENDOR_AMD ? "AMD" : v == X86_VENDOR_INTEL ? "Intel" : "other";
}
