/* vm_run: the one VM runner (see vm_run.h). */
#include "vmm/vm_run.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vmm/cpu_backend.h"
#include "vmm/irqchip.h"
#include "vmm/log.h"
#include "vmm/snapshot_dir.h"

void vm_run_init(struct vm_run *r, struct vm_config *cfg)
{
    memset(r, 0, sizeof(*r));
    r->cfg = cfg;
    /* firmware boot runs only under the emulator (vmm/boot/firmware.h): auto picks it */
    r->backend = cpu_backend_for_accel(cfg->firmware && cfg->accel == ACCEL_AUTO ? ACCEL_EMU : cfg->accel);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int vm_run_check_snapshot(struct vm_run *r, const char *path, bool *apic, char *err, size_t errlen)
{
    if (is_dir(path)) return snapshot_dir_check(r->cfg, r->backend->name, path, apic, err, errlen);
    struct snap_file sf;
    int rc = snap_file_open(&sf, path, err, errlen); /* header and every section's CRC */
    if (rc) return rc;
    rc = irqchip_snapshot_check(&sf, r->backend->name, apic, err, errlen);
    snap_file_close(&sf);
    return rc;
}

int vm_run_restore_next(struct vm_run *r, const char *path, char *err, size_t errlen)
{
    if (strlen(path) >= sizeof(r->restore_path)) {
        snprintf(err, errlen, "snapshot path is too long");
        return -ENAMETOOLONG;
    }
    bool apic = false;
    int rc = vm_run_check_snapshot(r, path, &apic, err, errlen);
    if (rc) return rc;
    if (r->cfg->irqchip == IRQCHIP_AUTO) r->cfg->irqchip = apic ? IRQCHIP_APIC : IRQCHIP_PIC;
    snprintf(r->restore_path, sizeof(r->restore_path), "%s", path);
    r->restore_is_dir = is_dir(path); /* now: a sandboxed bringup may not reach the path any more */
    return 0;
}

/* The machine's disks (a snapshot directory's copies), then RAM, vCPUs and devices. */
static int restore_disks(struct vm_run *r, const char *path, bool dir, char *err, size_t errlen)
{
    return dir ? snapshot_dir_restore_disks(r->cfg, path, err, errlen) : 0;
}

static int restore_machine(struct vm_run *r, const char *path, bool dir, char *err, size_t errlen)
{
    return dir ? snapshot_dir_restore_machine(&r->m, path, r->progress, r->progress_opaque, err, errlen)
               : snapshot_restore(&r->m, path, r->progress, r->progress_opaque, err, errlen);
}

int vm_run_bringup(struct vm_run *r, char *err, size_t errlen)
{
    char restore[sizeof(r->restore_path)];
    snprintf(restore, sizeof(restore), "%s", r->restore_path);
    r->restore_path[0] = 0; /* consumed: a guest reset later boots afresh */
    bool dir = restore[0] && r->restore_is_dir;
    int rc = restore[0] ? restore_disks(r, restore, dir, err, errlen) : 0; /* the devices open them */
    if (rc) return rc;
    rc = machine_create(&r->m, r->cfg, r->backend, err, errlen);
    if (rc) return rc;
    r->live = true;
    r->m.console_out = r->console_out;
    r->m.console_opaque = r->console_opaque;
    if (restore[0]) { /* before any vCPU runs */
        rc = restore_machine(r, restore, dir, err, errlen);
        if (rc) return rc;
        log_info("restored %s", restore);
    }
    rc = machine_start(&r->m);
    if (rc) {
        machine_join(&r->m);
        snprintf(err, errlen, "starting vCPU threads: %s", strerror(-rc));
        return rc;
    }
    return 0;
}

void vm_run_teardown(struct vm_run *r)
{
    if (!r->live) return;
    machine_destroy(&r->m);
    r->live = false;
}

enum machine_stop vm_run_pause(struct vm_run *r)
{
    machine_request_stop(&r->m, MACHINE_STOP_PAUSE);
    return machine_join(&r->m);
}

int vm_run_save(struct vm_run *r, const char *path, const char *vm_state, json_t **meta, char *err, size_t errlen)
{
    if (is_dir(path)) {
        json_t *m = NULL;
        int rc = snapshot_dir_save(&r->m, r->cfg, path, vm_state, r->progress, r->progress_opaque, &m, err, errlen);
        if (!rc && meta) *meta = m;
        else json_decref(m);
        return rc;
    }
    return snapshot_save(&r->m, path, r->progress, r->progress_opaque, err, errlen);
}

int vm_run_restore_now(struct vm_run *r, const char *path, char *err, size_t errlen)
{
    bool dir = is_dir(path);
    int rc = restore_disks(r, path, dir, err, errlen);
    return rc ? rc : restore_machine(r, path, dir, err, errlen);
}
