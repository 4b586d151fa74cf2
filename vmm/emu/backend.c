/* backend: the "emu" CPU backend (struct cpu_backend_ops) around the software emulator:
 * CPU set-up (emu_cpu_init), the vCPU run loop (device timers, interrupts, HLT sleeping,
 * instruction budgets), interrupt lines, MSIs, kicks and state get/set.
 *
 * Two platforms (vm_config.irqchip): PIC (default: the i8259 pair interrupts the CPU directly)
 * and APIC (a local APIC per vCPU, vmm/emu/lapic.c, and the IOAPIC, devices/ioapic.c, set up by
 * vmm/emu/emu_apic.c; the i8259 reaches the CPU through LINT0 in ExtINT mode; MSIs).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pic.h"
#include "vmm/cpu_backend.h"
#include "vmm/emu/emu.h"
#include "vmm/emu/emu_apic.h"
#include "vmm/emu/fpu_sse.h"
#include "vmm/log.h"
#include "vmm/machine.h"

/* Instructions per emu_exec call: small enough that device timers (PIT at HZ=250..1000,
 * UART) fire within ~0.1-0.5 ms of their deadline at tens of MIPS. */
#define EMU_BUDGET 20000
/* Upper bound of one HLT sleep: timers armed by other threads do not wake us. */
#define EMU_MAX_SLEEP_NS 10000000ULL
#define EMU_TSC_KHZ 2000000ULL

int emu_cpu_init(struct emu_cpu *cpu, struct machine *m)
{
    memset(cpu, 0, sizeof(*cpu));
    cpu->m = m;
    cpu->exc_vector = -1;
    cpu->tsc_khz = EMU_TSC_KHZ;
    const char *tr = getenv("VMD_EMU_TRACE");
    cpu->trace = tr && tr[0] == '1';

    uint64_t top = 0;
    for (unsigned i = 0; i < m->mem.nregions; i++) {
        uint64_t end = m->mem.regions[i].gpa + m->mem.regions[i].size;
        if (end > top) top = end;
    }
    cpu->code_bitmap_pages = top >> 12;
    cpu->code_bitmap = calloc((cpu->code_bitmap_pages + 7) / 8 + 1, 1);
    if (!cpu->code_bitmap) return -ENOMEM;

    /* power-on state (a boot loader replaces it through set_state) */
    struct cpu_state *s = &cpu->s;
    s->cr0 = CR0_ET;
    s->rflags = RFLAGS_FIXED;
    for (int i = 0; i < SEG_COUNT; i++) {
        s->seg[i].limit = 0xffff;
        s->seg[i].present = 1;
        s->seg[i].s = i != SEG_TR && i != SEG_LDTR;
        s->seg[i].type = i == SEG_CS ? 0xb : i == SEG_TR ? 0xb : i == SEG_LDTR ? 2 : 3;
    }
    s->gdtr.limit = s->idtr.limit = 0xffff;
    s->dr[6] = 0xffff0ff0;
    s->dr[7] = 0x400;
    s->pat = 0x0007040600070406ULL;
    fpu_reset(&s->fx);
    emu_update_mode(cpu);
    cpu->tsc_offset = -(int64_t)sys_tsc_now(cpu);

    int r = emu_exec_init(cpu);
    if (r < 0) {
        free(cpu->code_bitmap);
        cpu->code_bitmap = NULL;
        return r;
    }
    return 0;
}

void emu_cpu_destroy(struct emu_cpu *cpu)
{
    emu_exec_destroy(cpu);
    free(cpu->code_bitmap);
    cpu->code_bitmap = NULL;
}

/* ---- the backend ---------------------------------------------------------------------- */

struct emu_vcpu {
    struct emu_cpu cpu;
    pthread_mutex_t wait_lock; /* guards wake; taken after dev_lock when both are held */
    pthread_cond_t wait_cond;
    bool wake;
    uint64_t halted_ns; /* statistics: time spent sleeping in HLT */
    /* Code pages a device overwrote (DMA), set by device threads, consumed by the vCPU before
     * it executes anything else: one bit per page, as code_bitmap. */
    uint8_t *dma_dirty;
    _Atomic bool dma_pending;
    struct lapic_host lapic_host; /* the APIC platform's view of this vCPU */
};

static struct emu_vcpu *vcpu_of(struct vcpu *v) { return v->backend; }

/* guest_mem.dma_written: a device wrote guest RAM. Pages that hold decoded code are queued for
 * invalidation and the vCPU is made to leave its current block, so it drops them before it can
 * run the new contents (the guest only jumps there after seeing the completion, which the
 * device publishes after this call). */
static void emu_dma_written(void *opaque, uint64_t gpa, uint64_t len)
{
    struct emu_vcpu *ev = opaque;
    struct emu_cpu *cpu = &ev->cpu;
    bool any = false;
    for (uint64_t page = gpa >> 12; page <= (gpa + len - 1) >> 12 && page < cpu->code_bitmap_pages; page++) {
        if (__atomic_load_n(&cpu->code_bitmap[page / 8], __ATOMIC_RELAXED) & (1u << (page % 8))) {
            __atomic_fetch_or(&ev->dma_dirty[page / 8], (uint8_t)(1u << (page % 8)), __ATOMIC_RELAXED);
            any = true;
        }
    }
    if (any) {
        atomic_store(&ev->dma_pending, true);
        atomic_store(&cpu->irq_check, 1);
    }
}

static void emu_drop_dma_dirty_code(struct emu_vcpu *ev)
{
    if (!atomic_exchange(&ev->dma_pending, false)) return;
    struct emu_cpu *cpu = &ev->cpu;
    for (uint64_t i = 0; i < (cpu->code_bitmap_pages + 7) / 8; i++) {
        uint8_t bits = __atomic_exchange_n(&ev->dma_dirty[i], 0, __ATOMIC_RELAXED);
        for (unsigned b = 0; bits && b < 8; b++)
            if (bits & (1u << b)) emu_code_written(cpu, (i * 8 + b) << 12);
    }
}

static void wake_vcpu(struct emu_vcpu *ev);

static void lapic_kick(void *opaque) { wake_vcpu(opaque); }
static void lapic_eoi(void *opaque, uint8_t vector)
{
    struct emu_vcpu *ev = opaque;
    if (ev->cpu.m->ioapic) ioapic_eoi(ev->cpu.m->ioapic, vector);
}
static uint64_t lapic_tsc(void *opaque) { return sys_tsc_now(&((struct emu_vcpu *)opaque)->cpu); }
static uint64_t lapic_clock(void *opaque)
{
    (void)opaque;
    return clock_now_ns();
}

struct lapic *emu_vcpu_lapic(struct vcpu *v)
{
    return v->m && v->m->backend == &emu_backend_ops && v->backend ? vcpu_of(v)->cpu.lapic : NULL;
}

static int emu_init(struct machine *m)
{
    /* the APIC platform unless the VM asks for the PIC one (or has no config: unit tests) */
    m->apic = m->cfg && m->cfg->irqchip != IRQCHIP_PIC;
    m->backend_data = NULL;
    return 0;
}

static void emu_destroy(struct machine *m) { (void)m; }

static int emu_vcpu_init(struct vcpu *v)
{
    if (v->index != 0) {
        log_error("emu backend: only one vCPU is supported");
        return -EINVAL;
    }
    struct emu_vcpu *ev = aligned_alloc(64, (sizeof(*ev) + 63) & ~(size_t)63);
    if (!ev) return -ENOMEM;
    memset(ev, 0, sizeof(*ev));
    int r = emu_cpu_init(&ev->cpu, v->m);
    if (r < 0) {
        free(ev);
        return r;
    }
    ev->cpu.vcpu = v;
    ev->dma_dirty = calloc((ev->cpu.code_bitmap_pages + 7) / 8 + 1, 1);
    if (v->m->apic && ev->dma_dirty) {
        ev->lapic_host = (struct lapic_host){.opaque = ev,
                                             .kick = lapic_kick,
                                             .eoi_broadcast = lapic_eoi,
                                             .tsc_now = lapic_tsc,
                                             .tsc_khz = ev->cpu.tsc_khz,
                                             .clock_ns = lapic_clock,
                                             .timers = &v->m->timers};
        ev->cpu.lapic = lapic_create(&ev->lapic_host, v->index);
        if (!ev->cpu.lapic) {
            free(ev->dma_dirty);
            ev->dma_dirty = NULL;
        }
    }
    if (!ev->dma_dirty) {
        emu_cpu_destroy(&ev->cpu);
        free(ev);
        return -ENOMEM;
    }
    pthread_mutex_init(&ev->wait_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ev->wait_cond, &ca);
    pthread_condattr_destroy(&ca);
    v->backend = ev;
    v->m->backend_data = ev;
    v->m->mem.dma_opaque = ev;
    v->m->mem.dma_written = emu_dma_written;
    return 0;
}

static void emu_vcpu_destroy(struct vcpu *v)
{
    struct emu_vcpu *ev = vcpu_of(v);
    if (!ev) return;
    if (v->m->mem.dma_opaque == ev) {
        v->m->mem.dma_written = NULL;
        v->m->mem.dma_opaque = NULL;
    }
    if (ev->cpu.lapic) {
        pthread_mutex_lock(&v->m->dev_lock);
        lapic_destroy(ev->cpu.lapic);
        pthread_mutex_unlock(&v->m->dev_lock);
        ev->cpu.lapic = NULL;
    }
    emu_cpu_destroy(&ev->cpu);
    free(ev->dma_dirty);
    pthread_mutex_destroy(&ev->wait_lock);
    pthread_cond_destroy(&ev->wait_cond);
    if (v->m->backend_data == ev) v->m->backend_data = NULL;
    free(ev);
    v->backend = NULL;
}

static void wake_vcpu(struct emu_vcpu *ev)
{
    atomic_store(&ev->cpu.irq_check, 1);
    pthread_mutex_lock(&ev->wait_lock);
    ev->wake = true;
    pthread_cond_signal(&ev->wait_cond);
    pthread_mutex_unlock(&ev->wait_lock);
}

/* Sleep until `deadline` (CLOCK_MONOTONIC ns) or a wake-up. */
static void sleep_until(struct emu_vcpu *ev, uint64_t deadline)
{
    uint64_t now = clock_now_ns();
    if (deadline > now + EMU_MAX_SLEEP_NS) deadline = now + EMU_MAX_SLEEP_NS;
    struct timespec ts = {.tv_sec = (time_t)(deadline / 1000000000ULL), .tv_nsec = (long)(deadline % 1000000000ULL)};
    pthread_mutex_lock(&ev->wait_lock);
    while (!ev->wake && clock_now_ns() < deadline) {
        if (pthread_cond_timedwait(&ev->wait_cond, &ev->wait_lock, &ts) == ETIMEDOUT) break;
    }
    ev->wake = false;
    pthread_mutex_unlock(&ev->wait_lock);
}

static enum vcpu_exit emu_vcpu_run(struct vcpu *v)
{
    struct emu_vcpu *ev = vcpu_of(v);
    struct emu_cpu *cpu = &ev->cpu;
    struct machine *m = v->m;
    uint64_t start_ns = clock_now_ns(), start_insn = cpu->insn_count, start_halted = ev->halted_ns;
    enum vcpu_exit why = VCPU_EXIT_STOP;
    while (machine_stop_requested(m) == MACHINE_RUNNING) {
        if (cpu->triple_fault) break;
        atomic_store(&cpu->irq_check, 0);
        emu_drop_dma_dirty_code(ev);
        emu_a20_sync(cpu);

        int vec = -1;
        bool can_intr = (cpu->s.rflags & RFLAGS_IF) && !cpu->s.interrupt_shadow;
        pthread_mutex_lock(&m->dev_lock);
        timers_run(&m->timers, clock_now_ns());
        uint64_t deadline = timers_next_deadline(&m->timers);
        if (can_intr) {
            /* ExtINT first, as a local APIC does: the i8259 passes through LINT0 when the APIC
             * lets it (or on the PIC platform, where there is no APIC). */
            if (m->pic && (!cpu->lapic || lapic_accepts_pic_intr(cpu->lapic)) && pic_has_irq(m->pic))
                vec = pic_read_irq(m->pic);
            else if (cpu->lapic)
                vec = lapic_ack(cpu->lapic);
        }
        pthread_mutex_unlock(&m->dev_lock);

        if (vec >= 0) emu_deliver_interrupt(cpu, (uint8_t)vec);
        if (cpu->triple_fault) break;

        if (cpu->s.halted) {
            cpu->s.interrupt_shadow = 0; /* the HLT after STI completed: the shadow is over */
            if (!(cpu->s.rflags & RFLAGS_IF) && cpu->trace)
                log_debug("emu: HLT with interrupts disabled at RIP 0x%llx", (unsigned long long)cpu->s.rip);
            uint64_t t0 = clock_now_ns();
            sleep_until(ev, deadline);
            ev->halted_ns += clock_now_ns() - t0;
            continue;
        }
        uint64_t before = cpu->insn_count;
        emu_exec(cpu, EMU_BUDGET);
        machine_count(&v->stats.instructions, cpu->insn_count - before);
    }
    if (cpu->triple_fault) why = VCPU_EXIT_SHUTDOWN;
    double secs = (double)(clock_now_ns() - start_ns) / 1e9;
    uint64_t insns = cpu->insn_count - start_insn;
    log_debug("emu: %llu instructions in %.2f s (%.1f MIPS while running), %.2f s halted",
              (unsigned long long)insns, secs,
              insns / 1e6 / (secs - (double)(ev->halted_ns - start_halted) / 1e9 + 1e-9),
              (double)(ev->halted_ns - start_halted) / 1e9);
    return why;
}

static int emu_get_state(struct vcpu *v, struct cpu_state *s)
{
    struct emu_cpu *cpu = &vcpu_of(v)->cpu;
    *s = cpu->s;
    s->rflags = emu_get_rflags(cpu);
    s->tsc = sys_tsc_now(cpu);
    s->tsc_khz = (uint32_t)cpu->tsc_khz;
    s->apic_base = 0;
    s->tsc_deadline = 0;
    if (cpu->lapic) {
        pthread_mutex_lock(&v->m->dev_lock);
        s->apic_base = lapic_get_base(cpu->lapic);
        if (!lapic_msr_read(cpu->lapic, MSR_IA32_TSC_DEADLINE, &s->tsc_deadline)) s->tsc_deadline = 0;
        /* CR8 is the TPR's priority class (a restore under kvm sets the TPR from it) */
        s->cr8 = lapic_get_tpr(cpu->lapic) >> 4;
        pthread_mutex_unlock(&v->m->dev_lock);
    }
    return 0;
}

static int emu_set_state(struct vcpu *v, const struct cpu_state *s)
{
    struct emu_vcpu *ev = vcpu_of(v);
    struct emu_cpu *cpu = &ev->cpu;
    cpu->s = *s;
    emu_set_rflags(cpu, s->rflags);
    /* The guest's TSC keeps the rate it had where the state was taken (the rate it calibrated). */
    if (s->tsc_khz >= 1000 && s->tsc_khz <= 100000000) cpu->tsc_khz = s->tsc_khz;
    ev->lapic_host.tsc_khz = cpu->tsc_khz;
    cpu->tsc_offset = 0;
    cpu->tsc_offset = (int64_t)(s->tsc - sys_tsc_now(cpu));
    cpu->cpl = 0;
    emu_update_mode(cpu);
    emu_tlb_flush(cpu);
    emu_icache_flush(cpu);
    cpu->triple_fault = 0;
    if (cpu->lapic) {
        pthread_mutex_lock(&v->m->dev_lock);
        if (s->apic_base) lapic_load_base(cpu->lapic, s->apic_base);
        lapic_set_tsc_khz(cpu->lapic, cpu->tsc_khz);
        if (s->tsc_deadline) lapic_msr_write(cpu->lapic, MSR_IA32_TSC_DEADLINE, s->tsc_deadline);
        pthread_mutex_unlock(&v->m->dev_lock);
        emu_kvmclock_update(cpu);
    }
    return 0;
}

static void emu_kick(struct vcpu *v)
{
    struct emu_vcpu *ev = vcpu_of(v);
    if (ev) wake_vcpu(ev);
}

/* A GSI reaches the i8259 pair (ISA IRQs 0-15) and, on the APIC platform, the IOAPIC on the pin
 * vmd's MADT and MP table give it (ISA IRQ 0, the PIT, on pin 2), as kvm's routing does. */
static void emu_set_irq(struct machine *m, unsigned gsi, int level)
{
    if (m->ioapic) ioapic_set_irq(m->ioapic, gsi == 0 ? 2 : gsi, level);
    if (!m->pic || gsi >= 16) return;
    pic_set_irq(m->pic, gsi, level);
    struct emu_vcpu *ev = m->backend_data;
    if (ev && pic_has_irq(m->pic)) wake_vcpu(ev);
}

/* An MSI (dev_lock held): fixed or lowest-priority delivery to the one vCPU's local APIC. */
static int emu_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
    struct emu_vcpu *ev = m->backend_data;
    if (!ev || !ev->cpu.lapic) return -ENODEV;
    unsigned mode = (data >> 8) & 7;
    if (mode != 0 && mode != 1) {
        log_debug("emu: MSI with delivery mode %u to 0x%llx dropped", mode, (unsigned long long)addr);
        return 0;
    }
    lapic_set_irq(ev->cpu.lapic, (uint8_t)data, false);
    return 0;
}

const struct cpu_backend_ops emu_backend_ops = {
    .name = "emu",
    .init = emu_init,
    .destroy = emu_destroy,
    .vcpu_init = emu_vcpu_init,
    .vcpu_destroy = emu_vcpu_destroy,
    .vcpu_run = emu_vcpu_run,
    .get_state = emu_get_state,
    .set_state = emu_set_state,
    .kick = emu_kick,
    .set_irq = emu_set_irq,
    .send_msi = emu_send_msi,
    .irqchip_get = emu_irqchip_get,
    .irqchip_set = emu_irqchip_set,
    .has_kernel_irqchip = false,
    .runs_device_timers = true,
};
