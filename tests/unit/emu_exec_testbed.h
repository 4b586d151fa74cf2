/* emu_exec_testbed: a flat 64-bit test machine for the emulator's exec part (unit tests and
 * the decoder fuzzer): guest RAM with guest_builder's identity map, GDT, TSS and IDT whose
 * exception stubs OUT the vector to GB_EXC_PORT (captured here), and helpers to load code
 * and enter it at CPL0 or CPL3. Header-only so that both users can include it.
 */
#ifndef VMD_TESTS_EMU_EXEC_TESTBED_H
#define VMD_TESTS_EMU_EXEC_TESTBED_H

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "guest_builder.h"
#include "vmm/emu/emu.h"
#include "vmm/machine.h"

#define TB_RAM (4ULL << 20)

struct testbed {
    struct machine m;
    struct emu_cpu cpu;
    int exc_vector; /* last vector reported by an exception stub, -1 if none */
    unsigned exc_count;
};

static void tb_exc_port(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct testbed *tb = opaque;
    (void)offset;
    (void)size;
    if (is_write) {
        tb->exc_vector = (int)*data;
        tb->exc_count++;
    } else {
        *data = 0;
    }
}

static inline struct testbed *tb_new(void)
{
    struct testbed *tb = calloc(1, sizeof(*tb));
    if (!tb) return NULL;
    if (guest_mem_init(&tb->m.mem, TB_RAM) < 0) {
        free(tb);
        return NULL;
    }
    bus_init(&tb->m.mmio);
    bus_init(&tb->m.pio);
    pthread_mutex_init(&tb->m.dev_lock, NULL);
    tb->m.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    atomic_init(&tb->m.stop, MACHINE_RUNNING);
    bus_register(&tb->m.pio, GB_EXC_PORT, 4, tb_exc_port, tb, "test-exc");
    tb->exc_vector = -1;
    if (emu_cpu_init(&tb->cpu, &tb->m) < 0 || guest_build_long_mode(&tb->m.mem) < 0) {
        guest_mem_free(&tb->m.mem);
        free(tb);
        return NULL;
    }
    return tb;
}

static inline void tb_free(struct testbed *tb)
{
    emu_cpu_destroy(&tb->cpu);
    bus_free(&tb->m.mmio);
    bus_free(&tb->m.pio);
    guest_mem_free(&tb->m.mem);
    pthread_mutex_destroy(&tb->m.dev_lock);
    close(tb->m.stop_fd);
    free(tb);
}

/* Load `code` at GB_CODE (dropping decoded code of that page) and enter it at `cpl`. */
static inline void tb_start(struct testbed *tb, const void *code, size_t len, unsigned cpl)
{
    for (uint64_t p = GB_CODE; p < GB_CODE + len + 16; p += 4096) emu_code_written(&tb->cpu, p);
    guest_load_code(&tb->m.mem, code, len);
    struct cpu_state s;
    if (cpl == 3) guest_cpl3_state(&s, GB_CODE);
    else guest_cpl0_state(&s, GB_CODE);
    tb->cpu.s = s;
    emu_set_rflags(&tb->cpu, s.rflags);
    emu_update_mode(&tb->cpu);
    emu_tlb_flush(&tb->cpu);
    tb->exc_vector = -1;
    tb->exc_count = 0;
}

static inline void *tb_ram(struct testbed *tb, uint64_t gpa, size_t len) { return guest_mem_ptr(&tb->m.mem, gpa, len); }

/* Compatibility mode: GDT entries after guest_builder's seven, 32-bit user code and data, and a
 * user data segment based at GB_DATA (for segment-relative accesses). */
#define TB_SEL_UCODE32 0x3b
#define TB_SEL_UDATA32 0x43
#define TB_SEL_DATA_AT_GB_DATA 0x4b

/* After tb_start(tb, ..., 3): write those entries and switch CS, SS, DS and ES to them, so the
 * code at RIP runs as 32-bit code at CPL3 under the 64-bit kernel state. */
static inline int tb_enter_compat(struct testbed *tb)
{
    const uint64_t gdt[3] = {0x00cffb000000ffffULL, 0x00cff3000000ffffULL,
                             0x00cff2000000ffffULL | ((uint64_t)(GB_DATA & 0xffffff) << 16)};
    if (guest_mem_write(&tb->m.mem, GB_GDT + 7 * 8, gdt, sizeof(gdt)) < 0) return -1;
    struct emu_cpu *cpu = &tb->cpu;
    cpu->s.seg[SEG_CS] = (struct cpu_segment){.limit = 0xffffffff, .selector = TB_SEL_UCODE32, .type = 0xb, .s = 1,
                                              .dpl = 3, .present = 1, .db = 1, .g = 1};
    struct cpu_segment data = {.limit = 0xffffffff, .selector = TB_SEL_UDATA32, .type = 0x3, .s = 1,
                               .dpl = 3, .present = 1, .db = 1, .g = 1};
    cpu->s.seg[SEG_SS] = cpu->s.seg[SEG_DS] = cpu->s.seg[SEG_ES] = data;
    cpu->s.gdtr.limit = 10 * 8 - 1;
    emu_update_mode(cpu);
    return 0;
}

#endif
