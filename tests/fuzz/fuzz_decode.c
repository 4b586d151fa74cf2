/* fuzz_decode: libFuzzer target for the emulator's decoder and instruction handlers.
 * The input's first byte picks the mode (bit 0: CPL3; bit 1: compatibility mode at CPL3, with
 * bit 2 a 16-bit code segment, else a 32-bit one; bit 3 with bit 1: legacy protected mode, long
 * mode off, where the testbed's 64-bit IDT reads as garbage gates; there bit 4 keeps paging on,
 * reading the 4-level tables as PAE tables, or with bit 5 as 32-bit ones; bit 6: real mode at
 * 1000:0000, events through whatever the IVT at 0 holds, with bit 7 unreal: 4 GiB data-segment
 * limits and a 32-bit CS cache), the rest is placed as instruction bytes at the
 * entry point of a flat 64-bit test machine (emu_exec_testbed.h) and run for a bounded
 * instruction budget. The same bytes are also decoded back to back in the 64-, 32- and 16-bit
 * decoder modes. Any crash, hang or sanitizer report is a bug: hostile guest code must never
 * hurt the host. Build: make fuzzers; run: scripts/run-fuzz.sh [SECONDS].
 */
#include <stddef.h>
#include <stdint.h>

#include "emu_exec_testbed.h"
#include "vmm/emu/exec.h"

/* One machine for the whole fuzzing process (libFuzzer calls us repeatedly); rebuilt state
 * per input. */
static struct testbed *tb;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096) return 0;
    if (!tb) {
        tb = tb_new();
        if (!tb) return 0;
    }
    /* fresh page tables/GDT/IDT (CPL0 input may have rewritten them) and a fresh machine state */
    guest_build_long_mode(&tb->m.mem);
    uint8_t code[4096 + 16];
    memcpy(code, data + 1, size - 1);
    memset(code + size - 1, 0xf4, 16); /* HLT after the input */
    /* the decoder alone, in every mode */
    for (unsigned mode = 2; mode <= 8; mode *= 2) {
        struct insn in;
        for (size_t off = 0; off < size - 1;) {
            int n = emu_decode(code + off, (unsigned)(size - 1 + 16 - off), mode, &in);
            if (n <= 0 || n > 15 || !in.fn) abort();
            off += (size_t)n;
        }
    }
    bool compat = data[0] & 2;
    tb_start(tb, code, size - 1 + 16, (compat || (data[0] & 1)) ? 3 : 0);
    if (compat && tb_enter_compat(tb) < 0) return 0;
    if (compat && (data[0] & 4)) {
        tb->cpu.s.seg[SEG_CS].db = 0;
        emu_update_mode(&tb->cpu);
    }
    if (compat && (data[0] & 8)) {
        tb->cpu.s.efer = 0;
        if (!(data[0] & 0x10)) tb->cpu.s.cr0 &= ~CR0_PG;
        if (data[0] & 0x20) tb->cpu.s.cr4 = (tb->cpu.s.cr4 & ~CR4_PAE) | CR4_PSE;
        emu_update_mode(&tb->cpu);
        emu_tlb_flush(&tb->cpu);
    }
    if (data[0] & 0x40) {
        struct cpu_state *s = &tb->cpu.s;
        bool big = data[0] & 0x80;
        s->cr0 = CR0_ET;
        s->cr4 = 0;
        s->efer = 0;
        s->seg[SEG_CS] = (struct cpu_segment){.base = GB_CODE, .limit = 0xffff, .selector = GB_CODE >> 4,
                                              .type = 0xb, .s = 1, .present = 1, .db = big};
        const struct cpu_segment data_seg = {.base = GB_DATA, .limit = big ? 0xffffffff : 0xffff,
                                             .selector = GB_DATA >> 4, .type = 0x3, .s = 1, .present = 1,
                                             .g = big};
        s->seg[SEG_DS] = s->seg[SEG_ES] = s->seg[SEG_FS] = s->seg[SEG_GS] = data_seg;
        s->seg[SEG_SS] = (struct cpu_segment){.base = GB_STACK_TOP - 0x10000, .limit = 0xffff,
                                              .selector = (GB_STACK_TOP - 0x10000) >> 4, .type = 0x3, .s = 1,
                                              .present = 1};
        s->gpr[GPR_RSP] = 0xfff0;
        s->rip = 0;
        s->idtr = (struct cpu_dtable){.base = 0, .limit = 0x3ff};
        emu_update_mode(&tb->cpu);
        emu_tlb_flush(&tb->cpu);
    }
    emu_icache_flush(&tb->cpu);
    atomic_store(&tb->m.stop, MACHINE_RUNNING);
    tb->cpu.triple_fault = 0;
    atomic_store(&tb->cpu.irq_check, 0); /* a triple fault of the previous input set it */
    for (int i = 0; i < GPR_COUNT; i++)
        if (i != GPR_RSP) tb->cpu.s.gpr[i] = (data[0] & 0x40 ? 0 : GB_DATA) + 0x100 * (uint64_t)i;
    for (int i = 0; i < 8 && !tb->cpu.s.halted; i++) {
        if (machine_stop_requested(&tb->m)) break;
        emu_exec(&tb->cpu, 500);
    }
    return 0;
}
