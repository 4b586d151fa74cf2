/* emu_apic: the emulator's interrupt-controller platforms.
 *
 * The device "apic": on an emu machine with --irqchip apic it creates the IOAPIC
 * (devices/ioapic.c) and maps its window at 0xFEC00000 (each vCPU's local APIC,
 * devices/lapic.c, is made by the backend).
 *
 * The backend's irqchip_get/irqchip_set (vmm/irqchip.h): the state of the i8259 pair, the PIT
 * and, on the APIC platform, the IOAPIC and local APICs, taken from and given to these models,
 * whichever backend the state was saved under (a guest booted under KVM carries on here).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "vmm/device.h"
#include "vmm/emu/emu.h"
#include "vmm/emu/emu_apic.h"
#include "vmm/irqchip.h"
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

int emu_irqchip_get(struct machine *m, struct irqchip_state *s)
{
    memset(s, 0, sizeof(*s));
    struct emu_apic *ea = apic_of(m);
    if ((s->has_pic = m->pic != NULL)) pic_get_state(m->pic, &s->pic);
    if ((s->has_pit = m->pit != NULL)) pit_get_state(m->pit, &s->pit);
    if (!(s->has_apic = ea != NULL)) return 0;
    ioapic_get_state(ea->io, &s->ioapic);
    s->ncpus = m->ncpus;
    for (unsigned i = 0; i < m->ncpus; i++) {
        struct lapic *a = emu_vcpu_lapic(&m->vcpus[i]);
        if (!a) return -ENODEV;
        lapic_get_state(a, &s->lapic[i]);
    }
    return 0;
}

/* Whether s fits this machine's platform, and every part is one its model takes. */
static int check_state(struct machine *m, const struct emu_apic *ea, const struct irqchip_state *s,
                       struct snap_file *sf, char *err, size_t errlen)
{
    bool from_kvm = sf && !strcmp(sf->backend, "kvm");
    if (s->has_apic && !ea) {
        if (from_kvm)
            snprintf(err, errlen,
                     "snapshot was taken under kvm, whose guest uses the local APIC and IOAPIC; this VM runs the "
                     "emulator's PIC platform. A VM started from the snapshot gets the APIC platform by itself "
                     "(vmctl run --restore, or vm.restore of the stopped VM); or define it with irqchip apic");
        else
            snprintf(err, errlen,
                     "snapshot's guest uses the local APIC and IOAPIC (taken with --irqchip apic); this VM runs "
                     "the PIC platform (--irqchip pic)");
        return -EINVAL;
    }
    if (!s->has_apic && ea) {
        snprintf(err, errlen,
                 "snapshot's guest ran on the emulator's PIC platform; this VM has the APIC platform (--irqchip apic)");
        return -EINVAL;
    }
    int rc = 0;
    if (s->has_pic && m->pic) rc = pic_state_check(&s->pic, err, errlen);
    if (!rc && s->has_pit && m->pit) rc = pit_state_check(&s->pit, err, errlen);
    if (!rc && s->has_apic) rc = ioapic_state_check(&s->ioapic, err, errlen);
    for (unsigned i = 0; !rc && s->has_apic && i < s->ncpus; i++) {
        if (!emu_vcpu_lapic(&m->vcpus[i])) return -ENODEV;
        rc = lapic_state_check(&s->lapic[i], err, errlen);
        if (!rc && s->lapic[i].initial_id != i) {
            snprintf(err, errlen, "local APIC state is invalid: saved for APIC ID %u, this vCPU's is %u",
                     s->lapic[i].initial_id, i);
            rc = -EINVAL;
        }
    }
    /* Every vCPU's state must be one the emulator can run. */
    for (unsigned i = 0; !rc && sf && i < m->ncpus; i++) {
        struct cpu_state cs;
        rc = snap_file_cpu_state(sf, i, &cs, err, errlen);
        if (!rc) rc = check_cpu_features(&cs, i, err, errlen);
    }
    return rc;
}

int emu_irqchip_set(struct machine *m, const struct irqchip_state *s, struct snap_file *sf, bool apply, char *err,
                    size_t errlen)
{
    struct emu_apic *ea = apic_of(m);
    if (!apply) return check_state(m, ea, s, sf, err, errlen);
    if (s->has_pic && m->pic) pic_set_state(m->pic, &s->pic);
    if (s->has_pit && m->pit) pit_set_state(m->pit, &s->pit);
    if (!s->has_apic) return 0;
    ioapic_set_state(ea->io, &s->ioapic);
    for (unsigned i = 0; i < s->ncpus; i++) lapic_set_state(emu_vcpu_lapic(&m->vcpus[i]), &s->lapic[i]);
    return 0;
}

static const struct device_desc apic_desc = {
    .name = "apic",
    .level = DEVICE_LEVEL_CORE,
    .init = apic_init,
    .destroy = apic_destroy,
};
DEVICE_REGISTER(apic_desc)
