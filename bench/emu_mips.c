/* emu_mips: instructions per second of the software emulator on CPU-bound 64-bit loops
 * (register ALU, loads/stores, calls, and a byte-summing loop like a checksum), run through
 * emu_exec at CPL3 on a flat test machine. Built and run by bench/emu-mips.sh.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tests/unit/emu_exec_testbed.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the host is shared */
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void bench(struct testbed *tb, const char *name, const uint8_t *code, size_t len)
{
    tb_start(tb, code, len, 3);
    tb->cpu.s.gpr[GPR_RDI] = GB_DATA;
    tb->cpu.s.gpr[GPR_RSI] = GB_DATA;
    uint64_t total = 0;
    double t0 = now(), t;
    do {
        total += emu_exec(&tb->cpu, 1000000);
        t = now();
    } while (t - t0 < 1.0);
    printf("%-10s %8.1f MIPS (%llu instructions in %.2f s of CPU)\n", name, total / (t - t0) / 1e6, (unsigned long long)total, t - t0);
}

int main(void)
{
    struct testbed *tb = tb_new();
    if (!tb) return 1;
    /* L: add rax,rbx; xor rdx,rax; lea rbx,[rbx+rdx*2+1]; shr rdx,3; sub rcx,rdx; cmp rax,rcx; jne L; jmp L
     * (an endless loop; the budget ends it) */
    static const uint8_t alu[] = {0x48, 0x01, 0xd8, 0x48, 0x31, 0xc2, 0x48, 0x8d, 0x5c, 0x53, 0x01, 0x48, 0xc1, 0xea,
                                  0x03, 0x48, 0x29, 0xd1, 0x48, 0x39, 0xc8, 0x75, 0xe9, 0xeb, 0xe7};
    bench(tb, "alu", alu, sizeof(alu));
    /* L: mov rax,[rdi]; add rax,rcx; mov [rdi+8],rax; inc ecx; and ecx,0x3ff; lea rdi,[rsi+rcx*8]; call F; jmp L;
     * F: push rbx; pop rbx; ret */
    static const uint8_t mem[] = {0x48, 0x8b, 0x07, 0x48, 0x01, 0xc8, 0x48, 0x89, 0x47, 0x08, 0xff, 0xc1, 0x81, 0xe1,
                                  0xff, 0x03, 0, 0, 0x48, 0x8d, 0x3c, 0xce, 0xe8, 0x02, 0, 0, 0, 0xeb, 0xe3,
                                  0x53, 0x5b, 0xc3};
    bench(tb, "mem+call", mem, sizeof(mem));
    /* checksum: L: movzx eax, byte [rsi+rcx]; add edx, eax; rol edx, 5; inc ecx; and ecx, 0xffff; jmp L */
    static const uint8_t sum[] = {0x0f, 0xb6, 0x04, 0x0e, 0x01, 0xc2, 0xc1, 0xc2, 0x05, 0xff, 0xc1, 0x81, 0xe1,
                                  0xff, 0xff, 0, 0, 0xeb, 0xee};
    bench(tb, "bytesum", sum, sizeof(sum));
    tb_free(tb);
    return 0;
}
