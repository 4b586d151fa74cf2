/* vm_run: the one VM runner, shared by `vmctl run` (cli/cmd_run.c) and vmd-worker
 * (worker/worker.c). It owns one VM's machine across its life: picks the CPU backend for the
 * configuration, checks a snapshot to start from (and the interrupt-controller platform its guest
 * needs), builds and starts the machine (RAM, vCPUs, devices, serial, VNC and network come with
 * machine_create), pauses and resumes it, saves and restores snapshots while it exists, rebuilds
 * it on a guest reset, and tears it down.
 *
 * What stays with the callers is only how they are driven: vmctl run waits on the machine's
 * stop_fd and the terminal with poll(); the worker waits on it in its libuv loop and serves vmd's
 * JSON-RPC (docs/worker-protocol.md).
 *
 * Snapshots come in two forms, both accepted wherever a snapshot is named: a snapshot file
 * (vm.snap, vmm/snapshot.h), or a snapshot directory (vm.snap, the writable disks' copies and
 * meta.json, vmm/snapshot_dir.h), which is what vmd keeps.
 */
#ifndef VMD_VM_RUN_H
#define VMD_VM_RUN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/machine.h"
#include "vmm/snapshot.h"
#include "vmm/vm_config.h"

struct vm_run {
    struct vm_config *cfg; /* the caller's; the runner may settle cfg->irqchip for a snapshot */
    const struct cpu_backend_ops *backend;
    struct machine m;
    bool live; /* m exists (created, not yet destroyed) */
    /* Where the guest's serial output goes (set before vm_run_bringup). */
    void (*console_out)(void *opaque, const uint8_t *buf, size_t len);
    void *console_opaque;
    /* Progress of snapshot saves and restores (optional). */
    snap_progress_fn progress;
    void *progress_opaque;
    /* The snapshot the next bringup starts from, consumed by it ("" for a fresh boot). */
    char restore_path[4096];
    bool restore_is_dir; /* restore_path is a snapshot directory (decided by vm_run_restore_next) */
};

/* Prepare r to run cfg (no machine yet): the backend cfg->accel names. */
void vm_run_init(struct vm_run *r, struct vm_config *cfg);

/* Check the snapshot at path (a file or a directory) before anything changes: complete, every
 * section's CRC, fits cfg (memory, vCPUs, disks), a backend this one can take over. *apic: whether
 * its guest needs the APIC platform. 0, or -errno with the reason in err. */
int vm_run_check_snapshot(struct vm_run *r, const char *path, bool *apic, char *err, size_t errlen);

/* Make the next bringup start from the snapshot at path (a file or a directory), after checking
 * that it is complete, verifies, fits cfg (memory, vCPUs, disks) and is one this backend can take;
 * with cfg->irqchip auto, the platform becomes the one the snapshot's guest uses. Nothing changes on
 * failure: 0, or -errno with the reason in err. */
int vm_run_restore_next(struct vm_run *r, const char *path, char *err, size_t errlen);

/* Build the machine (from the pending snapshot, if any: disks, then RAM, vCPUs and devices before
 * any vCPU runs) and start its vCPUs. On failure the machine may still exist: call
 * vm_run_teardown. 0, or -errno with the reason in err. */
int vm_run_bringup(struct vm_run *r, char *err, size_t errlen);

/* Destroy the machine if it exists (its vCPU threads must have stopped: after machine_join). */
void vm_run_teardown(struct vm_run *r);

/* Whether a machine that stopped for `why` is rebuilt: a guest reset reboots unless a stop was
 * asked for (or the caller does not reboot). */
static inline bool vm_run_reboots(enum machine_stop why, bool stop_requested)
{
    return why == MACHINE_STOP_RESET && !stop_requested;
}

/* Stop the vCPUs and wait for them: MACHINE_STOP_PAUSE, or the reason the machine stopped for
 * meanwhile (it is then not paused but stopped, and the caller handles that stop). */
enum machine_stop vm_run_pause(struct vm_run *r);

/* Save the paused machine to path: into it if path is an existing directory (a snapshot
 * directory; vm_state "running" or "paused" goes into its meta.json, returned in *meta when meta is
 * not NULL), else as a snapshot file. 0, or -errno with the reason in err (nothing left behind). */
int vm_run_save(struct vm_run *r, const char *path, const char *vm_state, json_t **meta, char *err, size_t errlen);

/* Replace the paused machine's disks, RAM, vCPUs and devices with the snapshot at path, which
 * vm_run_check_snapshot accepted (the restore verifies the file again before changing the machine).
 * 0, or -errno with the reason in err. */
int vm_run_restore_now(struct vm_run *r, const char *path, char *err, size_t errlen);

#endif
