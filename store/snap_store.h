/* snap_store: where a VM's snapshots live in the state directory, shared by vmd and vmd-worker.
 *
 *   STATE_DIR/vms/NAME/snapshots/SNAP/vm.snap     CPU, device and RAM state (vmm/snapshot.h format)
 *   STATE_DIR/vms/NAME/snapshots/SNAP/disk<N>.img copy of the VM's writable disk N at that moment
 *   STATE_DIR/vms/NAME/snapshots/SNAP/meta.json   {snapshot, created, backend, memory_mib, vcpus,
 *                                                  vm_state, ram_bytes, file_bytes, disks: [...]}
 *   STATE_DIR/vms/NAME/restore-from               a snapshot directory the next worker start restores
 *
 * A snapshot directory is complete once meta.json exists (the worker writes it last).
 */
#ifndef VMD_STORE_SNAP_STORE_H
#define VMD_STORE_SNAP_STORE_H

#include <jansson.h>
#include <stddef.h>

#define SNAP_STORE_NAME_MAX 63

/* A snapshot name: 1..63 characters of [A-Za-z0-9._-], not starting with '.' or '-'.
 * Returns 0, or -EINVAL with a user-facing reason in err. */
int snap_name_check(const char *name, char *err, size_t errlen);

/* STATE_DIR/vms/VM/snapshots[/SNAP[/FILE]] into buf (snap and file may be NULL). 0 or -ENAMETOOLONG. */
int snap_store_path(char *buf, size_t len, const char *state_dir, const char *vm, const char *snap, const char *file);

/* The VM's complete snapshots as an array of their meta.json objects, sorted by creation time
 * then name. An absent snapshots directory gives an empty array. */
json_t *snap_store_list(const char *state_dir, const char *vm);

/* rm -r of one snapshot directory (its files, then the directory). 0 or -errno. */
int snap_store_remove(const char *state_dir, const char *vm, const char *snap);

/* Remove every snapshot of the VM and its snapshots directory (vm.delete). 0 or -errno. */
int snap_store_remove_all(const char *state_dir, const char *vm);

#endif
