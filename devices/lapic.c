/* lapic: the local APIC of one emulated vCPU (see lapic.h): its register file, interrupt
 * acceptance and priority (IRR/ISR/TMR, TPR/PPR), the timer in its three modes, IA32_APIC_BASE
 * transitions, its own snapshot format and the import of KVM's in-kernel APIC state.
 *
 * Facts follow the Intel SDM vol. 3 ch. 11 ("Advanced Programmable Interrupt Controller") and,
 * where the SDM leaves room, what KVM's in-kernel APIC does (so a guest moved from KVM sees the
 * same machine): fixed interrupts are dropped while the APIC is software-disabled, the timer
 * counts a 1 GHz bus clock (KVM's APIC_BUS_CYCLE_NS = 1), switching into or out of TSC-deadline
 * mode stops the timer, and a periodic timer's period is clamped to LAPIC_MIN_PERIOD_NS.
 *
 * Not modelled: NMI, SMI, INIT, SIPI and ExtINT delivery through the ICR or an LVT (a single
 * vCPU has nobody to start, and the i8259's INTR reaches the CPU through
 * lapic_accepts_pic_intr), other CPUs (every IPI not addressed to us is dropped), directed-EOI
 * suppression, the "illegal register address" ESR bit, and the APR (reads 0).
 */
#include "devices/lapic.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/snapshot.h"

/* Register offsets of the xAPIC page; x2APIC MSR = 0x800 + (offset >> 4). */
enum {
    REG_ID = 0x20,
    REG_VERSION = 0x30,
    REG_TPR = 0x80,
    REG_APR = 0x90,
    REG_PPR = 0xa0,
    REG_EOI = 0xb0,
    REG_RRD = 0xc0,
    REG_LDR = 0xd0,
    REG_DFR = 0xe0,
    REG_SVR = 0xf0,
    REG_ISR = 0x100,
    REG_TMR = 0x180,
    REG_IRR = 0x200,
    REG_ESR = 0x280,
    REG_LVT_CMCI = 0x2f0,
    REG_ICR_LO = 0x300,
    REG_ICR_HI = 0x310,
    REG_LVT_TIMER = 0x320,
    REG_LVT_THERMAL = 0x330,
    REG_LVT_PERF = 0x340,
    REG_LVT_LINT0 = 0x350,
    REG_LVT_LINT1 = 0x360,
    REG_LVT_ERROR = 0x370,
    REG_TIMER_INITIAL = 0x380,
    REG_TIMER_CURRENT = 0x390,
    REG_TIMER_DIVIDE = 0x3e0,
    REG_SELF_IPI = 0x3f0, /* x2APIC only */
};

/* Version 0x14 (integrated APIC), max LVT entry 5, no directed-EOI suppression (bit 24). */
#define LAPIC_VERSION 0x00050014u

/* The bus clock the timer counts: 1 tick per ns before the divider, as KVM. */
#define LAPIC_BUS_CYCLE_NS 1
/* Shortest period a periodic timer runs at, so a guest cannot make the host spin (KVM's
 * min_timer_period_us is of the same order). */
#define LAPIC_MIN_PERIOD_NS 100000ULL
/* The emulator's CPUID 0x80000008 physical address width (EMU_MAXPHYADDR): IA32_APIC_BASE bits
 * above it are reserved. */
#define LAPIC_MAXPHYADDR 40
#define APIC_BASE_ADDR_MASK (((1ULL << LAPIC_MAXPHYADDR) - 1) & ~0xfffULL)
#define APIC_BASE_RESERVED (~(APIC_BASE_ADDR_MASK | APIC_BASE_BSP | APIC_BASE_EXTD | APIC_BASE_ENABLE))

#define SVR_ENABLE (1u << 8)
#define SVR_WRITABLE 0x3ffu /* vector, enable, focus-check disable; no EOI suppression */
#define LVT_MASKED (1u << 16)
#define LVT_DELIVERY_STATUS (1u << 12)
#define LVT_REMOTE_IRR (1u << 14)
#define LVT_LEVEL (1u << 15)
#define LVT_DM(v) (((v) >> 8) & 7u)
#define DM_FIXED 0
#define DM_LOWEST 1
#define DM_EXTINT 7
#define TIMER_MODE(v) (((v) >> 17) & 3u)
#define TIMER_ONESHOT 0
#define TIMER_PERIODIC 1
#define TIMER_TSC_DEADLINE 2
#define DCR_WRITABLE 0xbu

#define ESR_SEND_ILLEGAL (1u << 5)
#define ESR_RECV_ILLEGAL (1u << 6)
#define ESR_KNOWN 0xefu /* bits the SDM defines (bit 4: redirectable IPI) */

#define ICR_DELIVERY_STATUS (1u << 12)
#define ICR_LOGICAL (1u << 11)
#define ICR_LEVEL (1u << 15)
#define ICR_SHORTHAND(v) (((v) >> 18) & 3u)
#define ICR_XAPIC_WRITABLE 0x000ccfffu  /* vector, delivery/dest mode, level, trigger, shorthand */
#define X2APIC_ICR_RESERVED 0xfff32000u /* bits 31:20, 17:16, 13 (as the SDM and KVM) */

/* LVT slots, in register order after CMCI. */
enum { LVT_CMCI, LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_COUNT };

/* Bits each LVT has (everything else is reserved); delivery status and remote IRR are
 * read-only among them. */
static const uint32_t lvt_bits[LVT_COUNT] = {
    [LVT_CMCI] = 0x117ffu,    [LVT_TIMER] = 0x710ffu, [LVT_THERMAL] = 0x117ffu,
    [LVT_PERF] = 0x117ffu,    [LVT_LINT0] = 0x1f7ffu,          [LVT_LINT1] = 0x1f7ffu,
    [LVT_ERROR] = 0x110ffu,
};

struct lapic {
    struct lapic_host host;
    uint32_t initial_id; /* the hardware ID: xAPIC ID at reset, the x2APIC ID */
    uint64_t base;       /* IA32_APIC_BASE */
    uint32_t id;         /* xAPIC: the 8-bit ID (writable); x2APIC: initial_id */
    uint32_t tpr, ldr, dfr, svr;
    uint32_t esr, esr_pending; /* visible ESR; errors since the last ESR write */
    uint32_t icr_lo, icr_hi;   /* icr_hi: xAPIC bits 31:24, x2APIC the 32-bit destination */
    uint32_t lvt[LVT_COUNT];
    uint32_t timer_initial, dcr;
    uint32_t irr[8], isr[8], tmr[8];

    /* One-shot/periodic: counting, and when the current period ends (host clock ns). */
    bool timer_running;
    uint64_t timer_end_ns;
    /* TSC-deadline mode: the armed IA32_TSC_DEADLINE, 0 when disarmed. */
    uint64_t tsc_deadline;
    struct vm_timer timer;
};

/* ---- helpers ---- */

static uint64_t now_ns(const struct lapic *a)
{
    return a->host.clock_ns ? a->host.clock_ns(a->host.opaque) : clock_now_ns();
}

static uint64_t tsc_khz(const struct lapic *a) { return a->host.tsc_khz ? a->host.tsc_khz : 1000000; }

static uint64_t tsc_now(const struct lapic *a)
{
    if (a->host.tsc_now) return a->host.tsc_now(a->host.opaque);
    return (uint64_t)((unsigned __int128)now_ns(a) * tsc_khz(a) / 1000000);
}

static bool x2apic_mode(const struct lapic *a)
{
    return (a->base & (APIC_BASE_ENABLE | APIC_BASE_EXTD)) == (APIC_BASE_ENABLE | APIC_BASE_EXTD);
}

static bool hw_enabled(const struct lapic *a) { return (a->base & APIC_BASE_ENABLE) != 0; }
static bool sw_enabled(const struct lapic *a) { return (a->svr & SVR_ENABLE) != 0; }

static void bit_set(uint32_t *bm, unsigned v) { bm[v >> 5] |= 1u << (v & 31); }
static void bit_clear(uint32_t *bm, unsigned v) { bm[v >> 5] &= ~(1u << (v & 31)); }
static bool bit_test(const uint32_t *bm, unsigned v) { return (bm[v >> 5] >> (v & 31)) & 1u; }

static int highest_bit(const uint32_t *bm)
{
    for (int i = 7; i >= 0; i--)
        if (bm[i]) return i * 32 + 31 - __builtin_clz(bm[i]);
    return -1;
}

static uint32_t x2apic_ldr(uint32_t id) { return (id >> 4) << 16 | 1u << (id & 0xf); }

static uint32_t ppr(const struct lapic *a)
{
    int isrv = highest_bit(a->isr);
    uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
    return (a->tpr & 0xf0) >= isr_class ? a->tpr & 0xff : isr_class;
}

static unsigned timer_divisor(uint32_t dcr)
{
    unsigned v = (dcr & 3) | ((dcr & 8) >> 1);
    return v == 7 ? 1 : 2u << v;
}

static unsigned timer_mode(const struct lapic *a) { return TIMER_MODE(a->lvt[LVT_TIMER]); }

/* Length in ns of one one-shot/periodic period as the registers say. */
static uint64_t timer_period_ns(const struct lapic *a)
{
    uint64_t ns = (uint64_t)a->timer_initial * timer_divisor(a->dcr) * LAPIC_BUS_CYCLE_NS;
    if (timer_mode(a) == TIMER_PERIODIC && ns && ns < LAPIC_MIN_PERIOD_NS) ns = LAPIC_MIN_PERIOD_NS;
    return ns;
}

/* ns until the running one-shot/periodic timer's current period ends (0 if not running). */
static uint64_t timer_remaining_ns(const struct lapic *a, uint64_t now)
{
    if (!a->timer_running) return 0;
    if (a->timer_end_ns > now) return a->timer_end_ns - now;
    if (timer_mode(a) == TIMER_PERIODIC) { /* overdue: the callback has not run yet */
        uint64_t period = timer_period_ns(a);
        return period ? period - (now - a->timer_end_ns) % period : 0;
    }
    return 0;
}

static uint32_t timer_current_count(const struct lapic *a)
{
    if (timer_mode(a) == TIMER_TSC_DEADLINE) return 0;
    uint64_t ticks = timer_remaining_ns(a, now_ns(a)) / (timer_divisor(a->dcr) * LAPIC_BUS_CYCLE_NS);
    return ticks > a->timer_initial ? a->timer_initial : (uint32_t)ticks;
}

static void timer_stop(struct lapic *a)
{
    if (a->host.timers) timer_del(a->host.timers, &a->timer);
    a->timer_running = false;
    a->tsc_deadline = 0;
}

/* (Re)start the one-shot/periodic timer with `remaining` ns left in its current period. */
static void timer_start_remaining(struct lapic *a, uint64_t now, uint64_t remaining)
{
    a->timer_running = true;
    a->timer_end_ns = remaining > TIMER_NEVER - 1 - now ? TIMER_NEVER - 1 : now + remaining;
    if (a->host.timers) timer_mod(a->host.timers, &a->timer, a->timer_end_ns);
}

static void deliver_lvt(struct lapic *a, unsigned lvt);

/* An error the ESR records; the error LVT interrupts when unmasked. */
static void signal_error(struct lapic *a, uint32_t bits)
{
    a->esr_pending |= bits;
    deliver_lvt(a, LVT_ERROR);
}

static void accept_fixed(struct lapic *a, uint8_t vector, bool level)
{
    /* KVM drops fixed interrupts while the APIC is hardware- or software-disabled. */
    if (!hw_enabled(a) || !sw_enabled(a)) return;
    if (vector < 16) {
        /* The error LVT vector is itself checked here; an illegal one is not re-signalled. */
        if (!(a->esr_pending & ESR_RECV_ILLEGAL)) signal_error(a, ESR_RECV_ILLEGAL);
        return;
    }
    bit_set(a->irr, vector);
    if (level)
        bit_set(a->tmr, vector);
    else
        bit_clear(a->tmr, vector);
    if (a->host.kick) a->host.kick(a->host.opaque);
}

/* A local interrupt source (LVT entry) fires. Only fixed delivery is modelled: NMI/SMI/INIT/
 * ExtINT LVT entries are ignored (ExtINT on LINT0 is the PIC path, see lapic_accepts_pic_intr). */
static void deliver_lvt(struct lapic *a, unsigned lvt)
{
    uint32_t v = a->lvt[lvt];
    if (v & LVT_MASKED) return;
    bool has_dm = lvt != LVT_TIMER && lvt != LVT_ERROR;
    if (has_dm && LVT_DM(v) != DM_FIXED) return;
    bool level = (lvt == LVT_LINT0 || lvt == LVT_LINT1) && (v & LVT_LEVEL);
    accept_fixed(a, (uint8_t)v, level);
}

static void timer_fired(void *opaque, uint64_t now)
{
    struct lapic *a = opaque;
    if (timer_mode(a) == TIMER_TSC_DEADLINE) {
        if (!a->tsc_deadline) return;
        a->tsc_deadline = 0;
        deliver_lvt(a, LVT_TIMER);
        return;
    }
    if (!a->timer_running) return;
    deliver_lvt(a, LVT_TIMER);
    uint64_t period = timer_period_ns(a);
    if (timer_mode(a) == TIMER_PERIODIC && period) {
        /* Next period from the end of this one; when the host fell behind by a whole period
         * or more, the missed expiries are coalesced into this one. */
        uint64_t next = a->timer_end_ns + period;
        if (next <= now) next = now + period;
        timer_start_remaining(a, now, next - now);
    } else {
        a->timer_running = false;
    }
}

/* Arm the TSC-deadline timer at `deadline` (TSC units; 0 disarms). Already passed: fires now. */
static void tsc_deadline_arm(struct lapic *a, uint64_t deadline)
{
    timer_stop(a);
    if (!deadline) return;
    a->tsc_deadline = deadline;
    uint64_t tsc = tsc_now(a);
    if (deadline <= tsc) {
        timer_fired(a, now_ns(a));
        return;
    }
    /* ns = ticks * 1e6 / kHz, rounded up so it never fires before the TSC gets there. */
    unsigned __int128 ns = ((unsigned __int128)(deadline - tsc) * 1000000 + tsc_khz(a) - 1) / tsc_khz(a);
    uint64_t now = now_ns(a);
    uint64_t when = ns > (unsigned __int128)(TIMER_NEVER - 1 - now) ? TIMER_NEVER - 1 : now + (uint64_t)ns;
    if (a->host.timers) timer_mod(a->host.timers, &a->timer, when);
}

/* ---- registers ---- */

static void set_svr(struct lapic *a, uint32_t v)
{
    a->svr = v & SVR_WRITABLE;
    if (!sw_enabled(a))
        for (unsigned i = 0; i < LVT_COUNT; i++) a->lvt[i] |= LVT_MASKED;
}

static void set_lvt(struct lapic *a, unsigned lvt, uint32_t v)
{
    uint32_t keep = a->lvt[lvt] & LVT_REMOTE_IRR;
    v &= lvt_bits[lvt] & ~(LVT_DELIVERY_STATUS | LVT_REMOTE_IRR);
    if (!sw_enabled(a)) v |= LVT_MASKED;
    if (lvt == LVT_TIMER) {
        unsigned old_mode = timer_mode(a), new_mode = TIMER_MODE(v);
        if ((old_mode == TIMER_TSC_DEADLINE) != (new_mode == TIMER_TSC_DEADLINE)) {
            /* Into or out of TSC-deadline mode: the timer stops, the initial count clears. */
            timer_stop(a);
            a->timer_initial = 0;
        }
    }
    a->lvt[lvt] = v | (lvt == LVT_LINT0 || lvt == LVT_LINT1 ? keep : 0);
}

static void set_timer_initial(struct lapic *a, uint32_t v)
{
    if (timer_mode(a) == TIMER_TSC_DEADLINE) return; /* ignored in TSC-deadline mode */
    timer_stop(a);
    a->timer_initial = v;
    if (v) timer_start_remaining(a, now_ns(a), timer_period_ns(a));
}

static void set_dcr(struct lapic *a, uint32_t v)
{
    uint64_t now = now_ns(a);
    uint64_t left_ticks = a->timer_running ? timer_current_count(a) : 0;
    a->dcr = v & DCR_WRITABLE;
    /* A running count carries on at the new rate (within the new period). */
    if (a->timer_running) {
        uint64_t left = left_ticks * timer_divisor(a->dcr) * LAPIC_BUS_CYCLE_NS, period = timer_period_ns(a);
        timer_start_remaining(a, now, left < period ? left : period);
    }
}

static void do_eoi(struct lapic *a)
{
    int v = highest_bit(a->isr);
    if (v < 0) return;
    bit_clear(a->isr, (unsigned)v);
    if (bit_test(a->tmr, (unsigned)v) && a->host.eoi_broadcast) a->host.eoi_broadcast(a->host.opaque, (uint8_t)v);
    /* A lower vector that was blocked by the one in service may now be deliverable. */
    if (lapic_pending_vector(a) >= 0 && a->host.kick) a->host.kick(a->host.opaque);
}

static bool dest_matches(const struct lapic *a, uint32_t dest, bool logical)
{
    if (x2apic_mode(a)) {
        if (dest == 0xffffffffu) return true;
        if (!logical) return dest == a->id;
        return (dest >> 16) == (a->ldr >> 16) && (dest & a->ldr & 0xffff) != 0;
    }
    dest &= 0xff;
    if (dest == 0xff) return true;
    if (!logical) return dest == (a->id & 0xff);
    uint32_t ldr = a->ldr >> 24;
    if ((a->dfr >> 28) == 0xf) return (dest & ldr) != 0;               /* flat model */
    return (dest >> 4) == (ldr >> 4) && (dest & ldr & 0xf) != 0; /* cluster model (and undefined ones) */
}

/* An IPI from the ICR. Fixed and lowest-priority delivery reach us when addressed to us (a
 * single vCPU: every other destination is dropped). NMI, SMI, INIT and SIPI are not modelled
 * (there is no other CPU to start, and nothing of ours takes them): ignored. */
static void send_ipi(struct lapic *a, uint32_t lo, uint32_t dest)
{
    unsigned dm = LVT_DM(lo);
    if (dm != DM_FIXED && dm != DM_LOWEST) return;
    uint8_t vector = (uint8_t)lo;
    if (vector < 16) signal_error(a, ESR_SEND_ILLEGAL);
    bool to_us;
    switch (ICR_SHORTHAND(lo)) {
    case 1: /* self */
    case 2: /* all including self */
        to_us = true;
        break;
    case 3: /* all excluding self */
        to_us = false;
        break;
    default:
        to_us = dest_matches(a, dest, lo & ICR_LOGICAL);
        break;
    }
    if (to_us) accept_fixed(a, vector, lo & ICR_LEVEL);
}

/* The 32-bit value of register `reg` (16-byte aligned offset) as a read sees it, false for
 * offsets with nothing readable. */
static bool reg_read(struct lapic *a, uint32_t reg, uint32_t *out)
{
    uint32_t v;
    switch (reg) {
    case REG_ID: v = x2apic_mode(a) ? a->id : a->id << 24; break;
    case REG_VERSION: v = LAPIC_VERSION; break;
    case REG_TPR: v = a->tpr; break;
    case REG_PPR: v = ppr(a); break;
    case REG_LDR: v = a->ldr; break;
    case REG_DFR: v = a->dfr; break;
    case REG_SVR: v = a->svr; break;
    case REG_ESR: v = a->esr; break;
    case REG_LVT_CMCI: v = a->lvt[LVT_CMCI]; break;
    case REG_ICR_LO: v = a->icr_lo; break;
    case REG_ICR_HI: v = a->icr_hi; break;
    case REG_LVT_TIMER: v = a->lvt[LVT_TIMER]; break;
    case REG_LVT_THERMAL: v = a->lvt[LVT_THERMAL]; break;
    case REG_LVT_PERF: v = a->lvt[LVT_PERF]; break;
    case REG_LVT_LINT0: v = a->lvt[LVT_LINT0]; break;
    case REG_LVT_LINT1: v = a->lvt[LVT_LINT1]; break;
    case REG_LVT_ERROR: v = a->lvt[LVT_ERROR]; break;
    case REG_TIMER_INITIAL: v = a->timer_initial; break;
    case REG_TIMER_CURRENT: v = timer_current_count(a); break;
    case REG_TIMER_DIVIDE: v = a->dcr; break;
    case REG_APR: /* arbitration priority: not modelled (single CPU) */
    case REG_RRD: /* remote read: obsolete */
        v = 0;
        break;
    default:
        if (reg >= REG_ISR && reg < REG_ISR + 0x80)
            v = a->isr[(reg - REG_ISR) >> 4];
        else if (reg >= REG_TMR && reg < REG_TMR + 0x80)
            v = a->tmr[(reg - REG_TMR) >> 4];
        else if (reg >= REG_IRR && reg < REG_IRR + 0x80)
            v = a->irr[(reg - REG_IRR) >> 4];
        else
            return false;
        break;
    }
    *out = v;
    return true;
}

/* Write `v` to writable register `reg`. In x2APIC mode the caller has checked reserved bits. */
static void reg_write(struct lapic *a, uint32_t reg, uint32_t v)
{
    switch (reg) {
    case REG_ID:
        if (!x2apic_mode(a)) a->id = v >> 24; /* the xAPIC ID is writable (KVM too) */
        break;
    case REG_TPR:
        a->tpr = v & 0xff;
        if (lapic_pending_vector(a) >= 0 && a->host.kick) a->host.kick(a->host.opaque);
        break;
    case REG_EOI: do_eoi(a); break;
    case REG_LDR:
        if (!x2apic_mode(a)) a->ldr = v & 0xff000000u;
        break;
    case REG_DFR:
        if (!x2apic_mode(a)) a->dfr = (v & 0xf0000000u) | 0x0fffffffu;
        break;
    case REG_SVR: set_svr(a, v); break;
    case REG_ESR: /* write-then-read: latch the errors since the last write */
        a->esr = a->esr_pending;
        a->esr_pending = 0;
        break;
    case REG_LVT_CMCI: set_lvt(a, LVT_CMCI, v); break;
    case REG_ICR_LO:
        a->icr_lo = v & ICR_XAPIC_WRITABLE;
        send_ipi(a, a->icr_lo, a->icr_hi >> 24);
        break;
    case REG_ICR_HI: a->icr_hi = v & 0xff000000u; break;
    case REG_LVT_TIMER: set_lvt(a, LVT_TIMER, v); break;
    case REG_LVT_THERMAL: set_lvt(a, LVT_THERMAL, v); break;
    case REG_LVT_PERF: set_lvt(a, LVT_PERF, v); break;
    case REG_LVT_LINT0: set_lvt(a, LVT_LINT0, v); break;
    case REG_LVT_LINT1: set_lvt(a, LVT_LINT1, v); break;
    case REG_LVT_ERROR: set_lvt(a, LVT_ERROR, v); break;
    case REG_TIMER_INITIAL: set_timer_initial(a, v); break;
    case REG_TIMER_DIVIDE: set_dcr(a, v); break;
    default: break; /* read-only or unimplemented: ignored */
    }
}

/* ---- lifecycle ---- */

/* Registers to their power-on values (SDM 11.4.7.1), the timer stopped; base and id untouched. */
static void reset_registers(struct lapic *a)
{
    timer_stop(a);
    a->id = a->initial_id;
    a->tpr = 0;
    a->ldr = x2apic_mode(a) ? x2apic_ldr(a->id) : 0;
    a->dfr = 0xffffffffu;
    a->svr = 0xff;
    a->esr = a->esr_pending = 0;
    a->icr_lo = a->icr_hi = 0;
    for (unsigned i = 0; i < LVT_COUNT; i++) a->lvt[i] = LVT_MASKED;
    a->timer_initial = 0;
    a->dcr = 0;
    memset(a->irr, 0, sizeof(a->irr));
    memset(a->isr, 0, sizeof(a->isr));
    memset(a->tmr, 0, sizeof(a->tmr));
}

struct lapic *lapic_create(const struct lapic_host *host, uint32_t id)
{
    struct lapic *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->host = *host;
    a->initial_id = id;
    timer_init(&a->timer, timer_fired, a);
    lapic_reset(a);
    return a;
}

void lapic_destroy(struct lapic *a)
{
    if (!a) return;
    timer_stop(a);
    free(a);
}

void lapic_reset(struct lapic *a)
{
    a->base = LAPIC_DEFAULT_BASE | APIC_BASE_ENABLE | (a->initial_id == 0 ? APIC_BASE_BSP : 0);
    reset_registers(a);
    /* The BSP comes up in virtual-wire mode, as firmware leaves it (and KVM resets it): LINT0 passes
     * the i8259's INTR, so a kernel that has not set up its APIC yet still gets PIC interrupts. */
    if (a->initial_id == 0) a->lvt[LVT_LINT0] = DM_EXTINT << 8;
}

void lapic_set_tsc_khz(struct lapic *a, uint64_t khz)
{
    if (a->host.tsc_khz == khz) return;
    a->host.tsc_khz = khz;
    uint64_t deadline = a->tsc_deadline;
    if (deadline && timer_mode(a) == TIMER_TSC_DEADLINE) {
        timer_stop(a);
        tsc_deadline_arm(a, deadline);
    }
}

/* ---- IA32_APIC_BASE ---- */

uint64_t lapic_get_base(const struct lapic *a) { return a->base; }

static bool base_valid(uint64_t v)
{
    return !(v & APIC_BASE_RESERVED) && (v & (APIC_BASE_ENABLE | APIC_BASE_EXTD)) != APIC_BASE_EXTD;
}

bool lapic_set_base(struct lapic *a, uint64_t value)
{
    if (!base_valid(value)) return false;
    bool was_on = hw_enabled(a), was_x2 = x2apic_mode(a);
    bool on = value & APIC_BASE_ENABLE, x2 = on && (value & APIC_BASE_EXTD);
    if (was_x2 && on && !x2) return false;      /* x2APIC -> xAPIC: disable first */
    if (!was_on && x2) return false;            /* disabled -> x2APIC: through xAPIC */
    a->base = value;
    if (was_on && !on) {
        reset_registers(a); /* SDM: disabling loses the state, as after power-up */
    } else if (!was_x2 && x2) {
        /* xAPIC -> x2APIC: the ID becomes the x2APIC ID, the LDR derives from it. */
        a->id = a->initial_id;
        a->ldr = x2apic_ldr(a->id);
    }
    return true;
}

void lapic_load_base(struct lapic *a, uint64_t value) { a->base = value; }

uint32_t lapic_get_tpr(const struct lapic *a) { return a->tpr; }

bool lapic_enabled(const struct lapic *a) { return hw_enabled(a); }

bool lapic_mmio_claims(const struct lapic *a, uint64_t gpa)
{
    return hw_enabled(a) && !(a->base & APIC_BASE_EXTD) && (gpa & ~0xfffULL) == (a->base & APIC_BASE_ADDR_MASK);
}

/* ---- xAPIC MMIO ---- */

void lapic_mmio_read(struct lapic *a, uint32_t offset, void *data, unsigned size)
{
    if (size > 8) size = 8;
    memset(data, 0, size);
    if (offset >= 0x1000) return;
    /* Registers are 32 bits at 16-byte boundaries; a narrower read inside the first 4 bytes
     * sees its part (as KVM), the rest reads 0. */
    uint32_t reg = offset & ~0xfu, at = offset & 0xf, v;
    if (at >= 4 || x2apic_mode(a) || !reg_read(a, reg, &v)) return; /* EOI is write-only */
    uint8_t bytes[4];
    memcpy(bytes, &v, 4);
    unsigned n = 4 - at < size ? 4 - at : size;
    memcpy(data, bytes + at, n);
}

void lapic_mmio_write(struct lapic *a, uint32_t offset, const void *data, unsigned size)
{
    /* Only aligned 32-bit writes do anything (KVM ignores the others too). */
    if (size != 4 || (offset & 0xf) || offset >= 0x1000 || x2apic_mode(a)) return;
    uint32_t v;
    memcpy(&v, data, 4);
    reg_write(a, offset, v);
}

/* ---- x2APIC MSRs ---- */

bool lapic_msr_read(struct lapic *a, uint32_t msr, uint64_t *value)
{
    if (msr == MSR_IA32_TSC_DEADLINE) {
        /* Reads 0 outside TSC-deadline mode or once fired (KVM). */
        *value = hw_enabled(a) && timer_mode(a) == TIMER_TSC_DEADLINE ? a->tsc_deadline : 0;
        return true;
    }
    if (msr < MSR_X2APIC_FIRST || msr > MSR_X2APIC_LAST || !x2apic_mode(a)) return false;
    uint32_t reg = (msr - MSR_X2APIC_FIRST) << 4, v;
    switch (reg) {
    case REG_APR: case REG_EOI: case REG_RRD: case REG_DFR: case REG_ICR_HI: case REG_SELF_IPI:
        return false; /* absent in x2APIC mode, or write-only */
    default: break;
    }
    if (!reg_read(a, reg, &v)) return false;
    *value = reg == REG_ICR_LO ? (uint64_t)a->icr_hi << 32 | v : v;
    return true;
}

/* Whether x2APIC register `reg` takes `v`: writable and no reserved bit set (SDM: #GP). */
static bool x2apic_write_ok(uint32_t reg, uint64_t v)
{
    if (reg == REG_ICR_LO) return !((uint32_t)v & X2APIC_ICR_RESERVED);
    if (v >> 32) return false; /* bits 63:32 are reserved in every other register */
    switch (reg) {
    case REG_TPR: return v <= 0xff;
    case REG_EOI: return v == 0;
    case REG_ESR: return v == 0;
    case REG_SVR: return !(v & ~(uint64_t)SVR_WRITABLE);
    case REG_LVT_CMCI: return !(v & ~(uint64_t)lvt_bits[LVT_CMCI]);
    case REG_LVT_TIMER: return !(v & ~(uint64_t)lvt_bits[LVT_TIMER]) && TIMER_MODE(v) != 3;
    case REG_LVT_THERMAL: return !(v & ~(uint64_t)lvt_bits[LVT_THERMAL]);
    case REG_LVT_PERF: return !(v & ~(uint64_t)lvt_bits[LVT_PERF]);
    case REG_LVT_LINT0: return !(v & ~(uint64_t)lvt_bits[LVT_LINT0]);
    case REG_LVT_LINT1: return !(v & ~(uint64_t)lvt_bits[LVT_LINT1]);
    case REG_LVT_ERROR: return !(v & ~(uint64_t)lvt_bits[LVT_ERROR]);
    case REG_TIMER_INITIAL: return true;
    case REG_TIMER_DIVIDE: return !(v & ~(uint64_t)DCR_WRITABLE);
    case REG_SELF_IPI: return v <= 0xff;
    default: return false; /* read-only (ID, version, PPR, LDR, ISR/TMR/IRR, current count) or absent */
    }
}

bool lapic_msr_write(struct lapic *a, uint32_t msr, uint64_t value)
{
    if (msr == MSR_IA32_TSC_DEADLINE) {
        /* Ignored unless the APIC is on and the timer in TSC-deadline mode (KVM). */
        if (hw_enabled(a) && timer_mode(a) == TIMER_TSC_DEADLINE) tsc_deadline_arm(a, value);
        return true;
    }
    if (msr < MSR_X2APIC_FIRST || msr > MSR_X2APIC_LAST || !x2apic_mode(a)) return false;
    uint32_t reg = (msr - MSR_X2APIC_FIRST) << 4;
    if (!x2apic_write_ok(reg, value)) return false;
    if (reg == REG_ICR_LO) {
        a->icr_lo = (uint32_t)value & ~ICR_DELIVERY_STATUS;
        a->icr_hi = (uint32_t)(value >> 32);
        send_ipi(a, a->icr_lo, a->icr_hi);
    } else if (reg == REG_SELF_IPI) {
        accept_fixed(a, (uint8_t)value, false);
    } else {
        reg_write(a, reg, (uint32_t)value);
    }
    return true;
}

/* ---- interrupts ---- */

void lapic_set_irq(struct lapic *a, uint8_t vector, bool level) { accept_fixed(a, vector, level); }

bool lapic_accepts_pic_intr(const struct lapic *a)
{
    uint32_t lvt0 = a->lvt[LVT_LINT0];
    return !hw_enabled(a) || (!(lvt0 & LVT_MASKED) && LVT_DM(lvt0) == DM_EXTINT);
}

int lapic_pending_vector(const struct lapic *a)
{
    if (!hw_enabled(a)) return -1;
    int v = highest_bit(a->irr);
    if (v < 0 || ((uint32_t)v & 0xf0) <= (ppr(a) & 0xf0)) return -1;
    return v;
}

int lapic_ack(struct lapic *a)
{
    int v = lapic_pending_vector(a);
    if (v < 0) return -1;
    bit_clear(a->irr, (unsigned)v);
    bit_set(a->isr, (unsigned)v);
    return v;
}

/* ---- snapshots ---- */

/* The parsed, validated state a restore or import applies. */
#define LAPIC_SAVE_FORMAT 1
#define IMG_TIMER_RUNNING 0x01
_Static_assert(LVT_COUNT == IRQCHIP_LAPIC_LVTS, "irqchip_lapic's LVTs are this model's");

void lapic_get_state(const struct lapic *a, struct irqchip_lapic *s)
{
    memset(s, 0, sizeof(*s));
    s->initial_id = a->initial_id;
    s->base = a->base;
    s->id = a->id;
    s->tpr = a->tpr;
    s->ldr = a->ldr;
    s->dfr = a->dfr;
    s->svr = a->svr;
    s->esr = a->esr;
    s->esr_pending = a->esr_pending;
    s->icr_lo = a->icr_lo;
    s->icr_hi = a->icr_hi;
    memcpy(s->lvt, a->lvt, sizeof(s->lvt));
    s->timer_initial = a->timer_initial;
    s->dcr = a->dcr;
    memcpy(s->irr, a->irr, sizeof(s->irr));
    memcpy(s->isr, a->isr, sizeof(s->isr));
    memcpy(s->tmr, a->tmr, sizeof(s->tmr));
    s->timer_running = a->timer_running;
    s->timer_remaining_ns = timer_remaining_ns(a, now_ns(a));
    s->tsc_deadline = timer_mode(a) == TIMER_TSC_DEADLINE ? a->tsc_deadline : 0;
}

void lapic_state_encode(struct snap_buf *b, const struct irqchip_lapic *s)
{
    snap_put_u8(b, LAPIC_SAVE_FORMAT);
    snap_put_u64(b, s->base);
    snap_put_u32(b, s->initial_id);
    snap_put_u32(b, s->id);
    snap_put_u32(b, s->tpr);
    snap_put_u32(b, s->ldr);
    snap_put_u32(b, s->dfr);
    snap_put_u32(b, s->svr);
    snap_put_u32(b, s->esr);
    snap_put_u32(b, s->esr_pending);
    snap_put_u32(b, s->icr_lo);
    snap_put_u32(b, s->icr_hi);
    for (unsigned i = 0; i < LVT_COUNT; i++) snap_put_u32(b, s->lvt[i]);
    snap_put_u32(b, s->timer_initial);
    snap_put_u32(b, s->dcr);
    for (unsigned i = 0; i < 8; i++) snap_put_u32(b, s->irr[i]);
    for (unsigned i = 0; i < 8; i++) snap_put_u32(b, s->isr[i]);
    for (unsigned i = 0; i < 8; i++) snap_put_u32(b, s->tmr[i]);
    snap_put_u8(b, s->timer_running ? IMG_TIMER_RUNNING : 0);
    snap_put_u64(b, s->timer_remaining_ns);
    snap_put_u64(b, s->tsc_deadline);
}

static int bad(char *err, size_t errlen, const char *what)
{
    snprintf(err, errlen, "local APIC state is invalid: %s", what);
    return -EINVAL;
}

static uint64_t image_period_ns(const struct irqchip_lapic *im)
{
    uint64_t ns = (uint64_t)im->timer_initial * timer_divisor(im->dcr) * LAPIC_BUS_CYCLE_NS;
    if (TIMER_MODE(im->lvt[LVT_TIMER]) == TIMER_PERIODIC && ns && ns < LAPIC_MIN_PERIOD_NS) ns = LAPIC_MIN_PERIOD_NS;
    return ns;
}

/* Checks every invariant the model keeps, so that an applied image behaves like a live APIC. */
int lapic_state_check(const struct irqchip_lapic *im, char *err, size_t errlen)
{
    char why[96];
    if (!base_valid(im->base)) {
        snprintf(why, sizeof(why), "IA32_APIC_BASE 0x%llx has reserved bits or EXTD without enable",
                 (unsigned long long)im->base);
        return bad(err, errlen, why);
    }
    bool x2 = (im->base & (APIC_BASE_ENABLE | APIC_BASE_EXTD)) == (APIC_BASE_ENABLE | APIC_BASE_EXTD);
    if (!x2 && im->id > 0xff) return bad(err, errlen, "xAPIC ID above 255");
    if (x2 && im->ldr != x2apic_ldr(im->id)) return bad(err, errlen, "x2APIC LDR does not match the ID");
    if (!x2 && (im->ldr & 0x00ffffffu)) return bad(err, errlen, "LDR reserved bits set");
    /* Any model nibble (a guest may write one the SDM does not define: treated as cluster). */
    if ((im->dfr & 0x0fffffffu) != 0x0fffffffu) return bad(err, errlen, "DFR reserved bits clear");
    if (im->tpr > 0xff) return bad(err, errlen, "TPR above 255");
    if (im->svr & ~SVR_WRITABLE) return bad(err, errlen, "SVR reserved bits set");
    if ((im->esr | im->esr_pending) & ~ESR_KNOWN) return bad(err, errlen, "ESR reserved bits set");
    if (im->icr_lo & ~ICR_XAPIC_WRITABLE) return bad(err, errlen, "ICR reserved bits set");
    for (unsigned i = 0; i < LVT_COUNT; i++) {
        /* An unmasked LVT while software-disabled is legal: the BSP's LINT0 at reset (virtual
         * wire); fixed deliveries are dropped then anyway. */
        if (im->lvt[i] & ~lvt_bits[i] & ~LVT_DELIVERY_STATUS) return bad(err, errlen, "LVT reserved bits set");
    }
    if (im->dcr & ~DCR_WRITABLE) return bad(err, errlen, "timer divide configuration reserved bits set");
    if ((im->irr[0] | im->isr[0] | im->tmr[0]) & 0xffff) return bad(err, errlen, "vectors 0-15 pending or in service");
    unsigned mode = TIMER_MODE(im->lvt[LVT_TIMER]);
    if (im->timer_running) {
        if (mode == TIMER_TSC_DEADLINE || !im->timer_initial)
            return bad(err, errlen, "timer counting without an initial count");
        /* A periodic timer switched to one-shot keeps the rest of its clamped period. */
        uint64_t period = image_period_ns(im);
        if (im->timer_remaining_ns > (period > LAPIC_MIN_PERIOD_NS ? period : LAPIC_MIN_PERIOD_NS))
            return bad(err, errlen, "timer remaining time beyond its period");
    } else if (im->timer_remaining_ns) {
        return bad(err, errlen, "remaining time of a stopped timer");
    }
    if (im->tsc_deadline && mode != TIMER_TSC_DEADLINE) return bad(err, errlen, "TSC deadline outside TSC-deadline mode");
    return 0;
}

void lapic_set_state(struct lapic *a, const struct irqchip_lapic *im)
{
    timer_stop(a);
    a->base = im->base;
    a->id = im->id;
    a->tpr = im->tpr;
    a->ldr = im->ldr;
    a->dfr = im->dfr;
    a->svr = im->svr;
    a->esr = im->esr;
    a->esr_pending = im->esr_pending;
    a->icr_lo = im->icr_lo;
    a->icr_hi = im->icr_hi;
    memcpy(a->lvt, im->lvt, sizeof(a->lvt));
    a->timer_initial = im->timer_initial;
    a->dcr = im->dcr;
    memcpy(a->irr, im->irr, sizeof(a->irr));
    memcpy(a->isr, im->isr, sizeof(a->isr));
    memcpy(a->tmr, im->tmr, sizeof(a->tmr));
    if (im->timer_running) timer_start_remaining(a, now_ns(a), im->timer_remaining_ns);
    if (im->tsc_deadline) tsc_deadline_arm(a, im->tsc_deadline);
    if (lapic_pending_vector(a) >= 0 && a->host.kick) a->host.kick(a->host.opaque);
}


int lapic_state_decode(struct snap_reader *r, struct irqchip_lapic *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    uint8_t format = snap_get_u8(r);
    if (r->short_read) return bad(err, errlen, "empty");
    if (format != LAPIC_SAVE_FORMAT) {
        char why[64];
        snprintf(why, sizeof(why), "unknown format %u", format);
        return bad(err, errlen, why);
    }
    s->base = snap_get_u64(r);
    s->initial_id = snap_get_u32(r);
    s->id = snap_get_u32(r);
    s->tpr = snap_get_u32(r);
    s->ldr = snap_get_u32(r);
    s->dfr = snap_get_u32(r);
    s->svr = snap_get_u32(r);
    s->esr = snap_get_u32(r);
    s->esr_pending = snap_get_u32(r);
    s->icr_lo = snap_get_u32(r);
    s->icr_hi = snap_get_u32(r);
    for (unsigned i = 0; i < LVT_COUNT; i++) s->lvt[i] = snap_get_u32(r);
    s->timer_initial = snap_get_u32(r);
    s->dcr = snap_get_u32(r);
    for (unsigned i = 0; i < 8; i++) s->irr[i] = snap_get_u32(r);
    for (unsigned i = 0; i < 8; i++) s->isr[i] = snap_get_u32(r);
    for (unsigned i = 0; i < 8; i++) s->tmr[i] = snap_get_u32(r);
    uint8_t flags = snap_get_u8(r);
    s->timer_remaining_ns = snap_get_u64(r);
    s->tsc_deadline = snap_get_u64(r);
    if (r->short_read) return bad(err, errlen, "truncated");
    if (flags & ~IMG_TIMER_RUNNING) return bad(err, errlen, "unknown timer flags");
    s->timer_running = flags & IMG_TIMER_RUNNING;
    return lapic_state_check(s, err, errlen);
}

static uint32_t page_reg(const uint8_t regs[1024], uint32_t off)
{
    uint32_t v;
    memcpy(&v, regs + off, 4);
    return v;
}

int lapic_state_from_page(struct irqchip_lapic *out, uint32_t initial_id, const uint8_t regs[1024],
                          uint64_t apic_base, uint64_t tsc_deadline, char *err, size_t errlen)
{
    if (!base_valid(apic_base)) {
        snprintf(err, errlen,
                 "local APIC state is invalid: IA32_APIC_BASE 0x%llx has reserved bits or EXTD without enable",
                 (unsigned long long)apic_base);
        return -EINVAL;
    }
    struct irqchip_lapic im = {0};
    bool x2 = (apic_base & (APIC_BASE_ENABLE | APIC_BASE_EXTD)) == (APIC_BASE_ENABLE | APIC_BASE_EXTD);
    im.initial_id = initial_id;
    im.base = apic_base;
    /* Without KVM_CAP_X2APIC_API the ID sits in bits 31:24 in both modes. */
    im.id = page_reg(regs, REG_ID) >> 24;
    im.tpr = page_reg(regs, REG_TPR) & 0xff;
    im.ldr = x2 ? x2apic_ldr(im.id) : page_reg(regs, REG_LDR) & 0xff000000u;
    im.dfr = x2 ? 0xffffffffu : (page_reg(regs, REG_DFR) & 0xf0000000u) | 0x0fffffffu;
    im.svr = page_reg(regs, REG_SVR) & SVR_WRITABLE;
    im.esr = page_reg(regs, REG_ESR) & ESR_KNOWN;
    im.icr_lo = page_reg(regs, REG_ICR_LO) & ICR_XAPIC_WRITABLE;
    im.icr_hi = x2 ? page_reg(regs, REG_ICR_HI) : page_reg(regs, REG_ICR_HI) & 0xff000000u;
    static const uint32_t lvt_reg[LVT_COUNT] = {REG_LVT_CMCI,  REG_LVT_TIMER, REG_LVT_THERMAL, REG_LVT_PERF,
                                                REG_LVT_LINT0, REG_LVT_LINT1, REG_LVT_ERROR};
    /* As KVM had them: a BSP reset by KVM has LINT0 unmasked (ExtINT) while software-disabled. */
    for (unsigned i = 0; i < LVT_COUNT; i++) im.lvt[i] = page_reg(regs, lvt_reg[i]) & lvt_bits[i] & ~LVT_DELIVERY_STATUS;
    im.timer_initial = page_reg(regs, REG_TIMER_INITIAL);
    im.dcr = page_reg(regs, REG_TIMER_DIVIDE) & DCR_WRITABLE;
    for (unsigned i = 0; i < 8; i++) {
        im.isr[i] = page_reg(regs, REG_ISR + i * 16);
        im.tmr[i] = page_reg(regs, REG_TMR + i * 16);
        im.irr[i] = page_reg(regs, REG_IRR + i * 16);
    }
    /* Vectors 0-15 cannot be accepted; KVM never sets them. */
    im.isr[0] &= ~0xffffu;
    im.tmr[0] &= ~0xffffu;
    im.irr[0] &= ~0xffffu;

    unsigned mode = TIMER_MODE(im.lvt[LVT_TIMER]);
    if (mode == TIMER_TSC_DEADLINE) {
        im.timer_initial = 0;
        im.tsc_deadline = tsc_deadline;
    } else if (im.timer_initial) {
        /* 0x390 holds the count left at save time: that many divided ticks from now. */
        uint64_t left = (uint64_t)page_reg(regs, REG_TIMER_CURRENT) * timer_divisor(im.dcr) * LAPIC_BUS_CYCLE_NS;
        uint64_t period = image_period_ns(&im);
        if (mode == TIMER_PERIODIC) {
            im.timer_running = true;
            im.timer_remaining_ns = left && left < period ? left : period;
        } else if (left) {
            im.timer_running = true;
            im.timer_remaining_ns = left < period ? left : period;
        }
    }
    int rc = lapic_state_check(&im, err, errlen);
    if (rc) {
        /* image_check names the model; say where the state came from. */
        char why[200];
        snprintf(why, sizeof(why), "%s (in the register page)", err);
        snprintf(err, errlen, "%s", why);
        return rc;
    }
    *out = im;
    return 0;
}

static void page_set(uint8_t regs[1024], uint32_t off, uint32_t v) { memcpy(regs + off, &v, 4); }

void lapic_state_to_page(const struct irqchip_lapic *a, uint8_t regs[1024])
{
    memset(regs, 0, 1024);
    bool x2 = (a->base & (APIC_BASE_ENABLE | APIC_BASE_EXTD)) == (APIC_BASE_ENABLE | APIC_BASE_EXTD);
    /* The ID sits in bits 31:24 in both modes (an in-kernel APIC then takes the x2APIC ID as
     * the vCPU's own and derives the LDR from it). */
    page_set(regs, REG_ID, a->id << 24);
    page_set(regs, REG_VERSION, LAPIC_VERSION);
    page_set(regs, REG_TPR, a->tpr);
    int isrv = highest_bit(a->isr);
    uint32_t isr_class = isrv < 0 ? 0 : (uint32_t)isrv & 0xf0;
    page_set(regs, REG_PPR, (a->tpr & 0xf0) >= isr_class ? a->tpr & 0xff : isr_class);
    page_set(regs, REG_LDR, a->ldr);
    page_set(regs, REG_DFR, a->dfr);
    page_set(regs, REG_SVR, a->svr);
    for (unsigned i = 0; i < 8; i++) {
        page_set(regs, REG_ISR + i * 16, a->isr[i]);
        page_set(regs, REG_TMR + i * 16, a->tmr[i]);
        page_set(regs, REG_IRR + i * 16, a->irr[i]);
    }
    page_set(regs, REG_ESR, a->esr);
    page_set(regs, REG_ICR_LO, a->icr_lo);
    /* x2APIC: ICR and ICR2 form one 64-bit ICR, so ICR2 holds the whole destination. */
    page_set(regs, REG_ICR_HI, x2 ? a->icr_hi : a->icr_hi & 0xff000000u);
    static const uint32_t lvt_reg[LVT_COUNT] = {REG_LVT_CMCI,  REG_LVT_TIMER, REG_LVT_THERMAL, REG_LVT_PERF,
                                                REG_LVT_LINT0, REG_LVT_LINT1, REG_LVT_ERROR};
    for (unsigned i = 0; i < LVT_COUNT; i++) page_set(regs, lvt_reg[i], a->lvt[i]);
    page_set(regs, REG_TIMER_DIVIDE, a->dcr);
    if (TIMER_MODE(a->lvt[LVT_TIMER]) != TIMER_TSC_DEADLINE && a->timer_running) {
        /* A page's current count restarts a one-shot/periodic timer with TMCCT * divisor ns left
         * (a periodic one with a whole period if TMCCT is 0): round up so it never fires early. */
        uint64_t tick = (uint64_t)timer_divisor(a->dcr) * LAPIC_BUS_CYCLE_NS;
        uint64_t left = (a->timer_remaining_ns + tick - 1) / tick;
        if (left == 0) left = 1;
        if (left > a->timer_initial) left = a->timer_initial;
        page_set(regs, REG_TIMER_INITIAL, a->timer_initial);
        page_set(regs, REG_TIMER_CURRENT, (uint32_t)left);
    }
    /* A stopped timer (a one-shot that expired, one switched to periodic after expiring) has
     * TMICT 0 in the page: its taker would restart it, a one-shot from TMCCT 0, i.e. fire it at
     * once. TSC-deadline mode has no count (IA32_TSC_DEADLINE carries the deadline). */
}
