/* fuzz_apic: libFuzzer target for the interrupt-controller state that arrives from files and
 * from KVM: the local APIC's and the IOAPIC's snapshot codecs (lapic_state_decode,
 * ioapic_state_decode), the whole "dev.irqchip" section (irqchip_state_decode), and the KVM
 * structures the kvm backend converts (lapic_state_from_page, kvm_irqchip_ioapic_from,
 * kvm_irqchip_pic_from, kvm_irqchip_pit_from), then a guest's register accesses and the passage
 * of time on what was loaded into the emulator's models. What a decoder accepts, the models take
 * and KVM's form of it converts back; at the end, both models' state in KVM's form converts
 * back again.
 *
 * Byte 0 picks the parser; bytes 1-2 the length of its payload; the payload follows; the rest
 * is an access script (6-byte ops: kind, 3-byte offset/MSR selector, 2-byte value). Each parser
 * runs with apply=false and, if it accepts, apply=true; a model must then behave: no access,
 * timer or interrupt may leave its buffers, and it must save a state that restores again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ioapic.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "fuzz_machine.h"
#include "irqchip_test_helpers.h"
#include "devices/lapic.h"
#include "vmm/irqchip.h"
#include "vmm/kvm/kvm_irqchip.h"
#include "vmm/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sim {
    struct timer_list timers;
    uint64_t now, tsc;
    struct lapic *lapic;
    struct ioapic *io;
    unsigned delivered;
};

static uint64_t sim_clock(void *o) { return ((struct sim *)o)->now; }
static uint64_t sim_tsc(void *o) { return ((struct sim *)o)->tsc; }
static void sim_kick(void *o) { (void)o; }
static void sim_eoi(void *o, uint8_t v)
{
    struct sim *s = o;
    ioapic_eoi(s->io, v);
}
static void sim_deliver(void *o, const struct ioapic_msg *msg)
{
    struct sim *s = o;
    s->delivered++;
    if (msg->delivery_mode <= 1) lapic_set_irq(s->lapic, msg->vector, msg->level);
}

static void run_script(struct sim *s, struct fuzz_input *in)
{
    while (in->len >= 6) {
        uint8_t op = (uint8_t)fuzz_take(in, 1);
        uint32_t sel = (uint32_t)fuzz_take(in, 3);
        uint64_t v = fuzz_take(in, 2);
        v |= v << 16 | v << 32 | v << 48;
        switch (op & 7) {
        case 0: lapic_mmio_write(s->lapic, sel & 0xfff, &v, 4); break;
        case 1: lapic_mmio_read(s->lapic, sel & 0xfff, &v, 4); break;
        case 2: lapic_msr_write(s->lapic, 0x800 + (sel & 0xff), v); break;
        case 3: lapic_msr_read(s->lapic, (sel & 0x100) ? MSR_IA32_TSC_DEADLINE : 0x800 + (sel & 0xff), &v); break;
        case 4: ioapic_mmio_write(s->io, sel & 0x7f, (uint32_t)v, 4); break;
        case 5: ioapic_set_irq(s->io, sel % 26, (int)(v & 1)); break;
        case 6: lapic_ack(s->lapic); break;
        case 7:
            s->now += (uint64_t)(sel & 0xffff) * 1000;
            s->tsc += (uint64_t)(sel & 0xffff) * 2000;
            timers_run(&s->timers, s->now);
            break;
        }
    }
}

static int ioapic_from_kvm(struct ioapic *io, const struct kvm_ioapic_state *k, bool apply, char *err, size_t errlen)
{
    struct irqchip_ioapic st;
    int rc = kvm_irqchip_ioapic_from(k, &st, err, errlen);
    if (!rc && ioapic_state_check(&st, err, errlen)) abort(); /* the conversion gives only valid state */
    if (!rc && apply) ioapic_set_state(io, &st);
    return rc;
}

/* What irqchip_state_decode accepted: the models take it, and its KVM form converts back. */
static void take_state(struct sim *s, struct machine *m, const struct irqchip_state *st)
{
    char err[256];
    if (st->has_pic && m->pic) pic_set_state(m->pic, &st->pic);
    if (st->has_pit && m->pit) pit_set_state(m->pit, &st->pit);
    if (st->has_apic) {
        ioapic_set_state(s->io, &st->ioapic);
        lapic_set_state(s->lapic, &st->lapic[0]);
    }
    if (!st->has_pic || !st->has_pit || !st->has_apic) return;
    struct kvm_irqchip_raw *k = calloc(1, sizeof(*k));
    struct irqchip_state *back = calloc(1, sizeof(*back));
    if (!k || !back) abort();
    kvm_irqchip_to_kvm(st, k);
    if (kvm_irqchip_from_kvm(k, back, err, sizeof(err))) abort();
    free(k);
    free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > 16384) return 0;
    struct sim s = {.now = 1000000000ULL, .tsc = 5000000000ULL};
    struct lapic_host lh = {.opaque = &s, .kick = sim_kick, .eoi_broadcast = sim_eoi, .tsc_now = sim_tsc,
                            .tsc_khz = 2000000, .clock_ns = sim_clock, .timers = &s.timers};
    struct ioapic_host ih = {.opaque = &s, .deliver = sim_deliver, .clock_ns = sim_clock, .timers = &s.timers};
    s.lapic = lapic_create(&lh, 0);
    s.io = ioapic_create(&ih);
    if (!s.lapic || !s.io) abort();
    struct fuzz_input in = {data, size};
    unsigned which = (unsigned)fuzz_take(&in, 1) % 7;
    size_t n = (size_t)fuzz_take(&in, 2);
    if (n > in.len) n = in.len;
    const uint8_t *payload = in.p;
    in.p += n;
    in.len -= n;
    char err[256];
    int r = -1;
    if (which == 0 || which == 1) {
        struct snap_reader rd = {.data = payload, .len = n};
        r = which == 0 ? lapic_restore(s.lapic, &rd, false, err, sizeof(err))
                       : ioapic_restore(s.io, &rd, false, err, sizeof(err));
        if (r == 0 && !rd.short_read) {
            rd = (struct snap_reader){.data = payload, .len = n};
            r = which == 0 ? lapic_restore(s.lapic, &rd, true, err, sizeof(err))
                           : ioapic_restore(s.io, &rd, true, err, sizeof(err));
        }
    } else if (which == 2 && n >= 1024 + 16) {
        uint64_t base, deadline;
        memcpy(&base, payload + 1024, 8);
        memcpy(&deadline, payload + 1032, 8);
        if (lapic_from_page(s.lapic, payload, base, deadline, false, err, sizeof(err)) == 0)
            r = lapic_from_page(s.lapic, payload, base, deadline, true, err, sizeof(err));
    } else if (which == 3 && n == sizeof(struct kvm_ioapic_state)) {
        struct kvm_ioapic_state k;
        memcpy(&k, payload, sizeof(k));
        if (ioapic_from_kvm(s.io, &k, false, err, sizeof(err)) == 0) r = ioapic_from_kvm(s.io, &k, true, err, sizeof(err));
    } else if (which == 6) {
        struct snap_reader rd = {.data = payload, .len = n};
        struct irqchip_state *st = calloc(1, sizeof(*st));
        struct fuzz_machine fm;
        if (!st || fuzz_machine_init(&fm, 2u << 20, true) < 0) abort();
        if (irqchip_state_decode(&rd, IRQCHIP_STATE_VERSION, st, err, sizeof(err)) == 0 &&
            (!st->has_apic || st->ncpus == 1)) {
            pthread_mutex_lock(&fm.m.dev_lock);
            take_state(&s, &fm.m, st);
            pthread_mutex_unlock(&fm.m.dev_lock);
        }
        fuzz_machine_free(&fm);
        free(st);
    } else if (which == 4 || which == 5) {
        /* the i8259 pair and the i8254 of a machine with every device */
        struct fuzz_machine fm;
        if (fuzz_machine_init(&fm, 2u << 20, true) < 0) abort();
        struct machine *m = &fm.m;
        pthread_mutex_lock(&m->dev_lock);
        if (which == 4 && m->pic && n == 2 * sizeof(struct kvm_pic_state)) {
            struct kvm_pic_state k[2];
            memcpy(k, payload, sizeof(k));
            struct irqchip_pic st;
            if (kvm_irqchip_pic_from(&k[0], 0, &st.chip[0], err, sizeof(err)) == 0 &&
                kvm_irqchip_pic_from(&k[1], 1, &st.chip[1], err, sizeof(err)) == 0) {
                if (pic_state_check(&st, err, sizeof(err))) abort(); /* valid by construction */
                pic_set_state(m->pic, &st);
            }
        } else if (which == 5 && m->pit && n == 8 + sizeof(struct kvm_pit_state2)) {
            int64_t at;
            memcpy(&at, payload, 8);
            struct kvm_pit_state2 k;
            memcpy(&k, payload + 8, sizeof(k));
            struct irqchip_pit st;
            if (kvm_irqchip_pit_from(&k, at, &st, err, sizeof(err)) == 0) {
                if (pit_state_check(&st, err, sizeof(err))) abort();
                pit_set_state(m->pit, &st);
            }
        }
        pthread_mutex_unlock(&m->dev_lock);
        uint64_t now_ns = 1000000000ULL;
        fuzz_poke_devices(&fm, &in, &now_ns);
        fuzz_machine_free(&fm);
    }
    if (r == 0) {
        /* what was loaded must save a state that loads again */
        struct snap_buf b;
        snap_buf_init(&b);
        if (which == 1 || which == 3) ioapic_save(s.io, &b);
        else lapic_save(s.lapic, &b);
        struct snap_reader rd = {.data = b.data, .len = b.len};
        int again = which == 1 || which == 3 ? ioapic_restore(s.io, &rd, false, err, sizeof(err))
                                             : lapic_restore(s.lapic, &rd, false, err, sizeof(err));
        if (again != 0) abort();
        snap_buf_free(&b);
    }
    run_script(&s, &in);
    /* whatever state the models reached, their KVM form converts back */
    struct irqchip_lapic ls;
    lapic_get_state(s.lapic, &ls);
    uint8_t page[1024];
    lapic_state_to_page(&ls, page);
    if (lapic_from_page(s.lapic, page, ls.base, ls.tsc_deadline, false, err, sizeof(err))) abort();
    struct irqchip_ioapic is;
    ioapic_get_state(s.io, &is);
    struct kvm_ioapic_state kio;
    kvm_irqchip_ioapic_to(&is, &kio);
    if (ioapic_from_kvm(s.io, &kio, false, err, sizeof(err))) abort();
    lapic_destroy(s.lapic);
    ioapic_destroy(s.io);
    return 0;
}
