/* vm_store: the state directory layout shared by vmd and vmd-worker, and atomic JSON files.
 *
 *   STATE_DIR/vms/NAME/config.json   the VM definition (written by vmd)
 *   STATE_DIR/vms/NAME/options.json  vmd's own options for the VM, not the machine's: autostart,
 *                                    the vm.create request_id and its params (vmd; optional)
 *   STATE_DIR/vms/NAME/status.json   last known state {state, reason, pid, since} (vmd and the worker)
 *   STATE_DIR/vms/NAME/worker.pid    pid of the running worker (the worker)
 *   STATE_DIR/vms/NAME/worker.sock   the running worker's JSON-RPC endpoint (the worker)
 *   STATE_DIR/vms/NAME/console.log   serial output, rotated to console.log.1 (the worker)
 *
 * Every JSON file is replaced atomically: temp file, fsync, rename, fsync of the directory, and
 * is created 0600; vmd creates the per-VM directories 0700.
 */
#ifndef VMD_STORE_VM_STORE_H
#define VMD_STORE_VM_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

/* VM_BROKEN: vmd could not load the definition (config.json truncated, not JSON, invalid); only
 * vm.delete applies to it. vmd never writes it to status.json. */
enum vm_state { VM_DEFINED, VM_RUNNING, VM_PAUSED, VM_STOPPED, VM_CRASHED, VM_BROKEN, VM_STATE_COUNT };

const char *vm_state_name(enum vm_state s);
int vm_state_parse(const char *name, enum vm_state *out); /* 0 or -EINVAL */

/* STATE_DIR/vms/NAME[/FILE] into buf. Returns 0 or -ENAMETOOLONG. */
int vm_store_path(char *buf, size_t len, const char *state_dir, const char *name, const char *file);

int vm_store_write_json(const char *path, const json_t *j);
/* fsync the directory holding path, so that a rename into it is durable (best effort). */
void vm_store_sync_dir_of(const char *path);
/* Open path for reading if it is a regular file, not following a symlink in its last component
 * and not blocking on a FIFO: the files of a VM's directory belong to its (sandboxed, possibly
 * compromised) worker, which vmd reads as root. An fd, or -errno (-EINVAL: not a regular file). */
int vm_store_open_regular(const char *path);
json_t *vm_store_read_json(const char *path); /* NULL if absent or unreadable */

/* exit_status: the guest's own exit status (isa-debug-exit), written only when >= 0. */
int vm_store_write_status(const char *state_dir, const char *name, enum vm_state s, const char *reason, pid_t pid,
                          int exit_status);

/* mkdir -p with mode. */
int vm_store_mkdirs(const char *path, mode_t mode);

#endif
