/* irqchip: the "dev.irqchip" snapshot section and its device, over the backend-neutral state of
 * vmm/irqchip.h. Saving asks the backend for the state (m->backend->irqchip_get), restoring
 * hands it to the backend (irqchip_set): the emulator sets its models, kvm converts it to its
 * in-kernel irqchip. See irqchip.h for the format and for snapshots of older vmd versions.
 */
#include "irqchip.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ioapic.h"
#include "devices/lapic.h"
#include "devices/pic.h"
#include "devices/pit.h"
#include "vmm/cpu_backend.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/snapshot.h"

_Static_assert(IRQCHIP_MAX_CPUS == MACHINE_MAX_CPUS, "one local APIC per vCPU");

/* The APIC part: u32 present, the IOAPIC, u32 vCPU count, each local APIC. */
static void encode_apic(struct snap_buf *b, const struct irqchip_state *s)
{
    snap_put_u32(b, s->has_apic);
    if (!s->has_apic) return;
    ioapic_state_encode(b, &s->ioapic);
    snap_put_u32(b, s->ncpus);
    for (unsigned i = 0; i < s->ncpus; i++) lapic_state_encode(b, &s->lapic[i]);
}

static int decode_apic(struct snap_reader *r, struct irqchip_state *s, char *err, size_t errlen)
{
    s->has_apic = snap_get_u32(r) != 0;
    if (r->short_read) {
        snprintf(err, errlen, "apic: state is truncated");
        return -EINVAL;
    }
    if (!s->has_apic) return 0;
    int rc = ioapic_state_decode(r, &s->ioapic, err, errlen);
    if (rc) return rc;
    s->ncpus = snap_get_u32(r);
    if (r->short_read || s->ncpus == 0 || s->ncpus > IRQCHIP_MAX_CPUS) {
        snprintf(err, errlen, "apic: %u local APICs in the snapshot (1 to %u expected)", s->ncpus, IRQCHIP_MAX_CPUS);
        return -EINVAL;
    }
    for (unsigned i = 0; i < s->ncpus; i++) {
        if ((rc = lapic_state_decode(r, &s->lapic[i], err, errlen))) return rc;
        /* vCPU i's local APIC has APIC ID i, under either backend */
        if (s->lapic[i].initial_id != i) {
            snprintf(err, errlen, "local APIC state is invalid: saved for APIC ID %u, this vCPU's is %u",
                     s->lapic[i].initial_id, i);
            return -EINVAL;
        }
    }
    return 0;
}

void irqchip_state_encode(struct snap_buf *b, const struct irqchip_state *s)
{
    pic_state_encode(b, s->has_pic ? &s->pic : NULL);
    pit_state_encode(b, s->has_pit ? &s->pit : NULL);
    encode_apic(b, s);
}

static int check_end(const struct snap_reader *r, const char *what, char *err, size_t errlen)
{
    if (r->pos == r->len) return 0;
    snprintf(err, errlen, "%s: %zu unexpected bytes after the state", what, r->len - r->pos);
    return -EINVAL;
}

int irqchip_state_decode(struct snap_reader *r, uint32_t version, struct irqchip_state *s, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    if (version != IRQCHIP_STATE_VERSION) {
        snprintf(err, errlen, "irqchip: state version %u, this vmd reads %u", version, IRQCHIP_STATE_VERSION);
        return -EINVAL;
    }
    int rc = pic_state_decode(r, &s->has_pic, &s->pic, err, errlen);
    if (!rc) rc = pit_state_decode(r, &s->has_pit, &s->pit, err, errlen);
    if (!rc) rc = decode_apic(r, s, err, errlen);
    if (!rc) rc = check_end(r, "irqchip", err, errlen);
    return rc;
}

/* Decode one of an older vmd's sections ("dev.pic", "dev.pit", "dev.apic", each of version 1)
 * with `part`. 0 if the file does not have it. */
static int decode_old_section(struct snap_file *sf, const char *name,
                              int (*part)(struct snap_reader *, struct irqchip_state *, char *, size_t),
                              struct irqchip_state *s, char *err, size_t errlen)
{
    const struct snap_section_info *si = snap_file_find(sf, name);
    if (!si) return 0;
    if (si->version != 1) {
        snprintf(err, errlen, "snapshot: section '%s' has version %u; this vmd reads version 1 there", name,
                 si->version);
        return -EINVAL;
    }
    uint8_t *data;
    int rc = snap_file_read(sf, si, &data);
    if (rc) {
        snprintf(err, errlen, "snapshot: reading section '%s' failed", name);
        return rc;
    }
    struct snap_reader r = {.data = data, .len = si->length, .file = sf};
    rc = part(&r, s, err, errlen);
    if (!rc) rc = check_end(&r, name, err, errlen);
    free(data);
    return rc;
}

static int old_pic(struct snap_reader *r, struct irqchip_state *s, char *err, size_t errlen)
{
    return pic_state_decode(r, &s->has_pic, &s->pic, err, errlen);
}

static int old_pit(struct snap_reader *r, struct irqchip_state *s, char *err, size_t errlen)
{
    return pit_state_decode(r, &s->has_pit, &s->pit, err, errlen);
}

int irqchip_snapshot_state(struct snap_file *sf, struct irqchip_state *s, bool *found, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    *found = false;
    const struct snap_section_info *si = snap_file_find(sf, "dev.irqchip");
    if (si) {
        uint8_t *data;
        int rc = snap_file_read(sf, si, &data);
        if (rc) {
            snprintf(err, errlen, "snapshot: reading section 'dev.irqchip' failed");
            return rc;
        }
        struct snap_reader r = {.data = data, .len = si->length, .file = sf};
        rc = irqchip_state_decode(&r, si->version, s, err, errlen);
        free(data);
        *found = rc == 0;
        return rc;
    }
    /* An older vmd: the emulator's models had a section each (the same bytes as the parts). */
    int rc = decode_old_section(sf, "dev.pic", old_pic, s, err, errlen);
    if (!rc) rc = decode_old_section(sf, "dev.pit", old_pit, s, err, errlen);
    if (!rc) rc = decode_old_section(sf, "dev.apic", decode_apic, s, err, errlen);
    if (rc) return rc;
    *found = s->has_pic || s->has_pit || s->has_apic;
    return 0;
}

/* Under kvm every controller exists: a file that says otherwise was not written by it. */
static int check_kvm_label(struct snap_file *sf, const struct irqchip_state *s, char *err, size_t errlen)
{
    if (!sf || strcmp(sf->backend, "kvm") || (s->has_pic && s->has_pit && s->has_apic)) return 0;
    snprintf(err, errlen,
             "snapshot says it was taken under kvm but holds no in-kernel interrupt controller state "
             "(local APIC and IOAPIC)");
    return -EINVAL;
}

int irqchip_snapshot_check(struct snap_file *sf, const char *backend, bool *uses_apic, char *err, size_t errlen)
{
    int rc = snapshot_check_backend(sf, backend, err, errlen);
    if (rc) return rc;
    struct irqchip_state *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    bool found = false;
    rc = irqchip_snapshot_state(sf, s, &found, err, errlen);
    if (!rc && found) rc = check_kvm_label(sf, s, err, errlen);
    if (!rc && !found && !snap_file_find(sf, "dev.kvm-irqchip")) {
        snprintf(err, errlen, "snapshot: it holds no interrupt-controller state (section 'dev.irqchip' is missing)");
        rc = -EINVAL;
    }
    /* without the section: a kvm snapshot of an older vmd (always the local APIC and IOAPIC) */
    if (!rc && uses_apic) *uses_apic = found ? s->has_apic : !strcmp(sf->backend, "kvm");
    free(s);
    return rc;
}

int irqchip_restore_state(struct machine *m, const struct irqchip_state *s, struct snap_file *sf, bool apply,
                          char *err, size_t errlen)
{
    int rc = check_kvm_label(sf, s, err, errlen);
    if (rc) return rc;
    if (s->has_apic && s->ncpus != m->ncpus) {
        snprintf(err, errlen, "apic: snapshot has %u local APICs, this VM %u vCPUs", s->ncpus, m->ncpus);
        return -EINVAL;
    }
    if (!m->backend->irqchip_set) {
        if (!s->has_pic && !s->has_pit && !s->has_apic) return 0;
        snprintf(err, errlen, "snapshot: the %s backend cannot take interrupt-controller state", m->backend->name);
        return -ENOTSUP;
    }
    return m->backend->irqchip_set(m, s, sf, apply, err, errlen);
}

static int irqchip_save(struct machine *m, struct snap_buf *b)
{
    struct irqchip_state *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    int rc = m->backend->irqchip_get ? m->backend->irqchip_get(m, s) : 0;
    if (!rc) irqchip_state_encode(b, s);
    free(s);
    return rc;
}

static int irqchip_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                           size_t errlen)
{
    struct irqchip_state *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    int rc = irqchip_state_decode(r, version, s, err, errlen);
    if (!rc) rc = irqchip_restore_state(m, s, r->file, apply, err, errlen);
    free(s);
    return rc;
}

/* A snapshot of an older vmd: its emulated models' sections, if it has them (a kvm one's state
 * is taken over by vmm/kvm/kvm_irqchip.c). */
static int irqchip_restore_missing(struct machine *m, struct snap_file *sf, bool apply, char *err, size_t errlen)
{
    struct irqchip_state *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    bool found;
    int rc = irqchip_snapshot_state(sf, s, &found, err, errlen);
    if (!rc && found) rc = irqchip_restore_state(m, s, sf, apply, err, errlen);
    if (!rc && !found && !snap_file_find(sf, "dev.kvm-irqchip")) {
        snprintf(err, errlen, "snapshot: it holds no interrupt-controller state (section 'dev.irqchip' is missing)");
        rc = -EINVAL;
    }
    free(s);
    return rc;
}

static const struct device_desc irqchip_desc = {
    .name = "irqchip",
    .level = DEVICE_LEVEL_CORE,
    .state_version = IRQCHIP_STATE_VERSION,
    .save = irqchip_save,
    .restore = irqchip_restore,
    .restore_missing = irqchip_restore_missing,
};
DEVICE_REGISTER(irqchip_desc)
