/* fuzz_tasks: libFuzzer target for the emulator's system-descriptor machinery (vmm/emu/task.c):
 * call gates, task switches and virtual-8086 mode, driven by guest-controlled tables. The input
 * is a legacy protected-mode machine (long mode off, no paging) laid out as
 *   [flags] [GDT: 16 entries, 128 bytes] [TSS A: 0x68] [TSS B: 0x68] [IDT 0-31: 256 bytes] [code]
 * flags bit 0: start at CPL3 (else CPL0); bit 1: start in virtual-8086 mode (CS:IP 1000:0010,
 * the code copied there too); bits 4-5: IOPL. TSS A is the running task (TR 0x28, based at
 * F_TSS_A); the GDT and IDT are whatever the input says, so gates, TSS descriptors, back-links,
 * saved segment selectors and I/O bitmap bases are all hostile. The code runs for a bounded
 * instruction budget. Any crash, hang or sanitizer report is a bug. Seeds (tests/fuzz/seeds/
 * tasks/) hold a call gate, a task gate and a v86 IRET built from the unit tests' layout. Build:
 * make fuzzers; run: scripts/run-fuzz.sh [SECONDS] tasks.
 */
#include <stddef.h>
#include <stdint.h>

#include "emu_exec_testbed.h"

#define F_GDT 0x100000ULL
#define F_TSS_A 0x102000ULL
#define F_TSS_B 0x103000ULL
#define F_IDT 0x101000ULL
#define F_CODE 0x130000ULL
#define F_V86_CODE 0x10010ULL
#define F_STACK 0x120000ULL

/* One machine for the whole fuzzing process (libFuzzer calls us repeatedly); state rebuilt per
 * input. */
static struct testbed *tb;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct cpu_segment flat(uint16_t sel, unsigned type, unsigned dpl)
{
    return (struct cpu_segment){.limit = 0xffffffff, .selector = sel, .type = (uint8_t)type, .s = 1,
                                .dpl = (uint8_t)dpl, .present = 1, .db = 1, .g = 1};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t hdr = 1 + 128 + 0x68 + 0x68 + 256;
    if (size < hdr || size > 4096) return 0;
    if (!tb) {
        tb = tb_new();
        if (!tb) return 0;
    }
    uint8_t flags = data[0];
    const uint8_t *p = data + 1;
    struct guest_mem *mem = &tb->m.mem;
    static uint8_t zero[0x40000];
    guest_mem_write(mem, F_GDT, zero, sizeof(zero)); /* tables, TSSs, stack, code */
    guest_mem_write(mem, 0x10000, zero, 0x10000);
    guest_mem_write(mem, F_GDT, p, 128);
    guest_mem_write(mem, F_TSS_A, p + 128, 0x68);
    guest_mem_write(mem, F_TSS_B, p + 128 + 0x68, 0x68);
    guest_mem_write(mem, F_IDT, p + 128 + 2 * 0x68, 256);
    uint8_t code[4096 + 16];
    size_t n = size - hdr;
    memcpy(code, data + hdr, n);
    memset(code + n, 0xf4, 16); /* HLT after the input */
    guest_mem_write(mem, F_CODE, code, n + 16);
    guest_mem_write(mem, F_V86_CODE, code, n + 16 < 0xff00 ? n + 16 : 0xff00);

    struct emu_cpu *cpu = &tb->cpu;
    struct cpu_state *s = &cpu->s;
    memset(s, 0, sizeof(*s));
    unsigned cpl = flags & 1 ? 3 : 0;
    s->rip = F_CODE;
    s->gpr[GPR_RSP] = F_STACK;
    s->rflags = RFLAGS_FIXED | ((uint64_t)((flags >> 4) & 3) << 12);
    s->seg[SEG_CS] = flat((uint16_t)(cpl ? 0x1b : 0x08), 0xb, cpl);
    s->seg[SEG_SS] = s->seg[SEG_DS] = s->seg[SEG_ES] = s->seg[SEG_FS] = s->seg[SEG_GS] =
        flat((uint16_t)(cpl ? 0x23 : 0x10), 0x3, cpl);
    s->seg[SEG_TR] = (struct cpu_segment){.base = F_TSS_A, .limit = 0x67, .selector = 0x28, .type = 0xb, .present = 1};
    s->seg[SEG_LDTR] = (struct cpu_segment){.type = 0x2, .unusable = 1};
    s->gdtr = (struct cpu_dtable){.base = F_GDT, .limit = 127};
    s->idtr = (struct cpu_dtable){.base = F_IDT, .limit = 255};
    s->cr0 = CR0_PE | CR0_ET | CR0_NE;
    s->fx.fcw = 0x37f;
    s->fx.mxcsr = 0x1f80;
    if (flags & 2) {
        s->rflags |= RFLAGS_VM;
        const uint16_t sels[6] = {0x3000, 0x1000, 0x4000, 0x2000, 0, 0};
        for (int i = SEG_ES; i <= SEG_GS; i++)
            s->seg[i] = (struct cpu_segment){.base = (uint64_t)sels[i] << 4, .limit = 0xffff, .selector = sels[i],
                                             .type = 0x3, .s = 1, .dpl = 3, .present = 1};
        s->rip = F_V86_CODE - 0x10000;
        s->gpr[GPR_RSP] = 0x100;
    }
    emu_set_rflags(cpu, s->rflags);
    emu_update_mode(cpu);
    emu_tlb_flush(cpu);
    emu_icache_flush(cpu);
    cpu->triple_fault = 0;
    atomic_store(&cpu->irq_check, 0); /* a triple fault of the previous input set it */
    atomic_store(&tb->m.stop, MACHINE_RUNNING);
    for (int i = 0; i < 8 && !s->halted; i++) {
        if (machine_stop_requested(&tb->m)) break;
        emu_exec(cpu, 500);
    }
    return 0;
}
