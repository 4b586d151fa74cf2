/* fuzz_apic: libFuzzer target for the emulator's APIC platform state that arrives from files:
 * the local APIC's and the IOAPIC's own snapshot formats (lapic_restore, ioapic_restore) and the
 * KVM structures a kvm snapshot carries (lapic_import_kvm, ioapic_import_kvm, pic_import_kvm,
 * pit_import_kvm), the APIC platform's "dev.apic" decoded for KVM (emu_apic_decode_for_kvm),
 * then a guest's register accesses and the passage of time on what was loaded. At the end, both
 * models exported for KVM (lapic_export_kvm, ioapic_export_kvm) must import again.
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
#include "vmm/emu/emu_apic.h"
#include "vmm/emu/lapic.h"
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
        if (lapic_import_kvm(s.lapic, payload, base, deadline, false, err, sizeof(err)) == 0)
            r = lapic_import_kvm(s.lapic, payload, base, deadline, true, err, sizeof(err));
    } else if (which == 3) {
        if (ioapic_import_kvm(s.io, payload, n, false, err, sizeof(err)) == 0)
            r = ioapic_import_kvm(s.io, payload, n, true, err, sizeof(err));
    } else if (which == 6) {
        struct snap_reader rd = {.data = payload, .len = n};
        struct emu_apic_kvm_state k;
        if (emu_apic_decode_for_kvm(&rd, 1, &k, err, sizeof(err)) == 0) {
            /* what the decoder accepts, the emulator's models take back */
            if (k.present && ioapic_import_kvm(s.io, &k.ioapic, sizeof(k.ioapic), true, err, sizeof(err))) abort();
            if (k.present && lapic_import_kvm(s.lapic, (const uint8_t *)k.lapics[0].regs, k.apic_bases[0], 0, true,
                                              err, sizeof(err)))
                abort();
            emu_apic_kvm_state_free(&k);
        }
    } else if (which == 4 || which == 5) {
        /* the i8259 pair and the i8254 of a machine with every device */
        struct fuzz_machine fm;
        if (fuzz_machine_init(&fm, 2u << 20, true) < 0) abort();
        struct machine *m = &fm.m;
        pthread_mutex_lock(&m->dev_lock);
        if (which == 4 && m->pic && n >= 2) {
            size_t half = n / 2;
            if (pic_import_kvm(m->pic, payload, payload + half, half, false, err, sizeof(err)) == 0)
                pic_import_kvm(m->pic, payload, payload + half, half, true, err, sizeof(err));
        } else if (which == 5 && m->pit && n >= 8) {
            int64_t at;
            memcpy(&at, payload, 8);
            if (pit_import_kvm(m->pit, payload + 8, n - 8, at, false, err, sizeof(err)) == 0)
                pit_import_kvm(m->pit, payload + 8, n - 8, at, true, err, sizeof(err));
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
    /* whatever state the models reached, their KVM form imports again */
    uint8_t page[1024];
    if (lapic_export_kvm(s.lapic, page)) abort();
    uint64_t dl = 0;
    lapic_msr_read(s.lapic, MSR_IA32_TSC_DEADLINE, &dl);
    if (lapic_import_kvm(s.lapic, page, lapic_get_base(s.lapic), dl, false, err, sizeof(err))) abort();
    struct kvm_ioapic_state kio;
    if (ioapic_export_kvm(s.io, &kio, sizeof(kio))) abort();
    if (ioapic_import_kvm(s.io, &kio, sizeof(kio), false, err, sizeof(err))) abort();
    lapic_destroy(s.lapic);
    ioapic_destroy(s.io);
    return 0;
}
