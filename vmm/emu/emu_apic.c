/* emu_apic: the emulator's APIC platform as a machine device ("apic").
 *
 * On an emu machine with --irqchip apic it creates the IOAPIC (devices/ioapic.c) and maps its
 * window at 0xFEC00000 (each vCPU's local APIC, vmm/emu/lapic.c, is made by the backend). Its
 * snapshot section holds the IOAPIC and every local APIC. It also takes over the state of a
 * snapshot taken under kvm ("dev.kvm-irqchip": KVM's in-kernel i8259 pair, IOAPIC, PIT and local
 * APICs), which is what lets a guest booted under KVM carry on under the emulator.
 *
 * Section payload: u32 present (1: an emu machine on the APIC platform; 0: anything else, and
 * nothing follows), then the IOAPIC (ioapic_save), u32 vCPU count, each local APIC (lapic_save).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ioapic.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "vmm/device.h"
#include "vmm/emu/emu.h"
#include "vmm/emu/emu_apic.h"
#include "vmm/emu/lapic.h"
#include "vmm/kvm/kvm_irqchip.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

#define APIC_STATE_VERSION 1

struct emu_apic {
    struct machine *m;
    struct ioapic_host host;
    struct ioapic *io;
};

static bool on_emu(const struct machine *m) { return m->backend == &emu_backend_ops; }

static void ioapic_window(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct emu_apic *ea = opaque;
    if (is_write) ioapic_mmio_write(ea->io, (uint32_t)offset, (uint32_t)*data, size);
    else *data = ioapic_mmio_read(ea->io, (uint32_t)offset, size);
}

/* The IOAPIC's message to the local APICs: the emulator runs one vCPU, which takes every fixed
 * and lowest-priority interrupt; SMI/NMI/INIT/ExtINT entries are not used by the guests vmd runs. */
static void ioapic_deliver(void *opaque, const struct ioapic_msg *msg)
{
    struct emu_apic *ea = opaque;
    struct lapic *a = ea->m->ncpus ? emu_vcpu_lapic(&ea->m->vcpus[0]) : NULL;
    if (!a) return;
    if (msg->delivery_mode > 1) {
        log_debug("ioapic: delivery mode %u (vector 0x%x) not modelled; dropped", msg->delivery_mode, msg->vector);
        return;
    }
    lapic_set_irq(a, msg->vector, msg->level);
}

static uint64_t ioapic_clock(void *opaque)
{
    (void)opaque;
    return clock_now_ns();
}

static struct emu_apic *apic_of(struct machine *m)
{
    const struct bus_range *r = m->ioapic ? bus_find(&m->mmio, IOAPIC_BASE) : NULL;
    return r ? r->opaque : NULL;
}

static int apic_init(struct machine *m, char *err, size_t errlen)
{
    if (m->backend->has_kernel_irqchip || !m->apic || !on_emu(m)) return 0;
    struct emu_apic *ea = calloc(1, sizeof(*ea));
    if (!ea) return -ENOMEM;
    ea->m = m;
    ea->host = (struct ioapic_host){
        .opaque = ea, .deliver = ioapic_deliver, .clock_ns = ioapic_clock, .timers = &m->timers};
    ea->io = ioapic_create(&ea->host);
    if (!ea->io) {
        free(ea);
        return -ENOMEM;
    }
    int r = bus_register(&m->mmio, IOAPIC_BASE, IOAPIC_SIZE, ioapic_window, ea, "ioapic");
    if (r) {
        snprintf(err, errlen, "ioapic: MMIO window at 0x%llx: %s", (unsigned long long)IOAPIC_BASE, strerror(-r));
        ioapic_destroy(ea->io);
        free(ea);
        return r;
    }
    m->ioapic = ea->io;
    return 0;
}

static void apic_destroy(struct machine *m)
{
    struct emu_apic *ea = apic_of(m);
    if (!ea) return;
    bus_unregister(&m->mmio, IOAPIC_BASE);
    m->ioapic = NULL;
    ioapic_destroy(ea->io);
    free(ea);
}

static int apic_save(struct machine *m, struct snap_buf *b)
{
    struct emu_apic *ea = apic_of(m);
    snap_put_u32(b, ea != NULL);
    if (!ea) return 0;
    ioapic_save(ea->io, b);
    snap_put_u32(b, m->ncpus);
    for (unsigned i = 0; i < m->ncpus; i++) {
        struct lapic *a = emu_vcpu_lapic(&m->vcpus[i]);
        if (!a) return -ENODEV;
        lapic_save(a, b);
    }
    return 0;
}

/* Control-register features a guest may have switched on elsewhere that this emulator does not
 * implement: it would fault on its next XSAVE, RDFSBASE, STAC... so such a state is refused. */
static int check_cpu_features(const struct cpu_state *s, unsigned i, char *err, size_t errlen)
{
    static const struct {
        uint64_t bit;
        const char *what;
    } cr4[] = {
        {1ULL << 11, "UMIP"}, {1ULL << 12, "5-level paging"}, {1ULL << 16, "FSGSBASE"}, {1ULL << 17, "PCID"},
        {1ULL << 18, "XSAVE"}, {1ULL << 20, "SMEP"},         {1ULL << 21, "SMAP"},     {1ULL << 22, "protection keys"},
    };
    for (size_t k = 0; k < sizeof(cr4) / sizeof(cr4[0]); k++) {
        if (s->cr4 & cr4[k].bit) {
            snprintf(err, errlen,
                     "snapshot: vCPU %u's guest enabled %s (CR4 0x%llx), which the emulator does not implement; "
                     "restore it under kvm, or take it from a guest started on a host CPU without that feature",
                     i, cr4[k].what, (unsigned long long)s->cr4);
            return -EINVAL;
        }
    }
    return 0;
}

/* A snapshot taken under kvm: its in-kernel irqchip becomes this platform's models. */
static int import_kvm(struct machine *m, struct emu_apic *ea, const struct kvm_irqchip_saved *k,
                      struct snap_file *sf, bool apply, char *err, size_t errlen)
{
    if (k->ncpus != m->ncpus) {
        snprintf(err, errlen, "snapshot has %u local APICs, this VM %u vCPUs", k->ncpus, m->ncpus);
        return -EINVAL;
    }
    struct cpu_state *cpus = calloc(m->ncpus, sizeof(*cpus));
    if (!cpus) return -ENOMEM;
    int r = 0;
    for (unsigned i = 0; !r && i < m->ncpus; i++) r = snap_file_cpu_state(sf, i, &cpus[i], err, errlen);
    /* Validate everything, then (apply) load everything: no model is half changed on an error. */
    for (int pass = 0; pass < (apply ? 2 : 1) && !r; pass++) {
        bool load = pass == 1;
        r = ioapic_import_kvm(ea->io, &k->chips[2].chip.ioapic, sizeof(k->chips[2].chip.ioapic), load, err, errlen);
        if (!r && m->pic)
            r = pic_import_kvm(m->pic, &k->chips[0].chip.pic, &k->chips[1].chip.pic, sizeof(k->chips[0].chip.pic),
                               load, err, errlen);
        if (!r && m->pit) r = pit_import_kvm(m->pit, &k->pit, sizeof(k->pit), k->save_host_ns, load, err, errlen);
        for (unsigned i = 0; !r && i < m->ncpus; i++) {
            struct lapic *a = emu_vcpu_lapic(&m->vcpus[i]);
            if (!a) r = -ENODEV;
            else r = lapic_import_kvm(a, (const uint8_t *)k->lapics[i].regs, cpus[i].apic_base, cpus[i].tsc_deadline,
                                      load, err, errlen);
        }
    }
    free(cpus);
    return r;
}

static int apic_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                        size_t errlen)
{
    if (version != APIC_STATE_VERSION) {
        snprintf(err, errlen, "apic: state version %u, this vmd reads %u", version, APIC_STATE_VERSION);
        return -EINVAL;
    }
    bool present = snap_get_u32(r) != 0;
    if (r->short_read) return 0; /* reported by the caller */
    struct emu_apic *ea = apic_of(m);
    if (!on_emu(m)) {
        /* Taken on this platform and restored under kvm: the kvm-irqchip device loads this
         * state into KVM's in-kernel IOAPIC and local APICs (vmm/kvm/kvm_xsnap.c). Checked
         * here too, so that a malformed section is refused whichever device restores first. */
        if (!present) return 0;
        if (!m->backend->has_kernel_irqchip) {
            snprintf(err, errlen,
                     "snapshot was taken on the emulator's APIC platform (--irqchip apic); the %s backend has no "
                     "local APIC to restore it into",
                     m->backend->name);
            return -ENOTSUP;
        }
        struct snap_reader whole = *r;
        whole.pos = 0;
        whole.short_read = false;
        struct emu_apic_kvm_state k;
        int rc = emu_apic_decode_for_kvm(&whole, version, &k, err, errlen);
        if (!rc && k.ncpus != m->ncpus) {
            snprintf(err, errlen, "apic: snapshot has %u local APICs, this VM %u vCPUs", k.ncpus, m->ncpus);
            rc = -EINVAL;
        }
        emu_apic_kvm_state_free(&k);
        r->pos = whole.pos; /* consumed */
        return rc;
    }
    /* Every vCPU's state must be one the emulator can run (checked in the validation pass). */
    if (r->file && !apply) {
        for (unsigned i = 0; i < m->ncpus; i++) {
            struct cpu_state s;
            int rc = snap_file_cpu_state(r->file, i, &s, err, errlen);
            if (rc) return rc;
            if ((rc = check_cpu_features(&s, i, err, errlen))) return rc;
        }
    }
    if (present) {
        if (!ea) {
            snprintf(err, errlen,
                     "snapshot's guest uses the local APIC and IOAPIC (taken with --irqchip apic); this VM runs "
                     "the PIC platform (--irqchip pic)");
            return -EINVAL;
        }
        int rc = ioapic_restore(ea->io, r, false, err, errlen);
        uint32_t n = rc ? 0 : snap_get_u32(r);
        if (!rc && n != m->ncpus) {
            snprintf(err, errlen, "apic: snapshot has %u local APICs, this VM %u vCPUs", n, m->ncpus);
            rc = -EINVAL;
        }
        size_t lapics_at = r->pos;
        for (unsigned i = 0; !rc && i < m->ncpus; i++) {
            struct lapic *a = emu_vcpu_lapic(&m->vcpus[i]);
            rc = a ? lapic_restore(a, r, false, err, errlen) : -ENODEV;
        }
        if (rc || !apply) return rc;
        /* validated: now load, from the same bytes */
        struct snap_reader again = *r;
        again.pos = 4;
        again.short_read = false;
        rc = ioapic_restore(ea->io, &again, true, err, errlen);
        again.pos = lapics_at;
        for (unsigned i = 0; !rc && i < m->ncpus; i++) rc = lapic_restore(emu_vcpu_lapic(&m->vcpus[i]), &again, true, err, errlen);
        return rc;
    }
    /* Not taken on this platform: under kvm (take its in-kernel irqchip over) or on the PIC platform. */
    const struct snap_section_info *ks = r->file ? snap_file_find(r->file, "dev.kvm-irqchip") : NULL;
    struct kvm_irqchip_saved k = {0};
    if (ks) {
        uint8_t *data;
        int rc = snap_file_read(r->file, ks, &data);
        if (rc) {
            snprintf(err, errlen, "snapshot: reading section 'dev.kvm-irqchip' failed");
            return rc;
        }
        struct snap_reader kr = {.data = data, .len = ks->length, .file = r->file};
        rc = kvm_irqchip_decode(&kr, ks->version, &k, err, errlen);
        free(data);
        if (rc) return rc;
    }
    int rc = 0;
    if (k.present && !ea) {
        snprintf(err, errlen,
                 "snapshot was taken under kvm, whose guest uses the local APIC and IOAPIC; this VM runs the "
                 "emulator's PIC platform. A VM started from the snapshot gets the APIC platform by itself "
                 "(vmctl run --restore, or vm.restore of the stopped VM); or define it with irqchip apic");
        rc = -EINVAL;
    } else if (k.present) {
        rc = import_kvm(m, ea, &k, r->file, apply, err, errlen);
    } else if (ea) {
        snprintf(err, errlen,
                 "snapshot's guest ran on the emulator's PIC platform; this VM has the APIC platform (--irqchip apic)");
        rc = -EINVAL;
    }
    kvm_irqchip_saved_free(&k);
    return rc;
}

void emu_apic_kvm_state_free(struct emu_apic_kvm_state *s)
{
    free(s->lapics);
    free(s->apic_bases);
    s->lapics = NULL;
    s->apic_bases = NULL;
}

int emu_apic_decode_for_kvm(struct snap_reader *r, uint32_t version, struct emu_apic_kvm_state *out, char *err,
                            size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (version != APIC_STATE_VERSION) {
        snprintf(err, errlen, "apic: state version %u, this vmd reads %u", version, APIC_STATE_VERSION);
        return -EINVAL;
    }
    out->present = snap_get_u32(r) != 0;
    if (r->short_read) {
        snprintf(err, errlen, "apic: section is empty");
        return -EINVAL;
    }
    if (!out->present) return 0;
    int rc = ioapic_saved_to_kvm(r, &out->ioapic, sizeof(out->ioapic), err, errlen);
    if (rc) return rc;
    out->ncpus = snap_get_u32(r);
    if (r->short_read || out->ncpus == 0 || out->ncpus > MACHINE_MAX_CPUS) {
        snprintf(err, errlen, "apic: %u local APICs in the snapshot (1 to %u expected)", out->ncpus, MACHINE_MAX_CPUS);
        return -EINVAL;
    }
    out->lapics = calloc(out->ncpus, sizeof(*out->lapics));
    out->apic_bases = calloc(out->ncpus, sizeof(*out->apic_bases));
    if (!out->lapics || !out->apic_bases) {
        emu_apic_kvm_state_free(out);
        return -ENOMEM;
    }
    /* vCPU i's local APIC has APIC ID i (emu backend), which lapic_save recorded. */
    for (unsigned i = 0; !rc && i < out->ncpus; i++)
        rc = lapic_saved_to_kvm(r, i, (uint8_t *)out->lapics[i].regs, &out->apic_bases[i], err, errlen);
    if (!rc && r->pos != r->len) {
        snprintf(err, errlen, "apic: %zu unexpected bytes after the local APICs", r->len - r->pos);
        rc = -EINVAL;
    }
    if (rc) emu_apic_kvm_state_free(out);
    return rc;
}

static const struct device_desc apic_desc = {
    .name = "apic",
    .level = DEVICE_LEVEL_CORE,
    .init = apic_init,
    .destroy = apic_destroy,
    .state_version = APIC_STATE_VERSION,
    .save = apic_save,
    .restore = apic_restore,
};
DEVICE_REGISTER(apic_desc)
