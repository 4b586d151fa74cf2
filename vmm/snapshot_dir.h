/* snapshot_dir: a paused machine saved into, or restored from, a snapshot directory
 * (layout in store/snap_store.h): vm.snap through vmm/snapshot, the writable disks copied
 * (reflink where the filesystem can, else a sparse copy), then meta.json. */
#ifndef VMD_SNAPSHOT_DIR_H
#define VMD_SNAPSHOT_DIR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vmm/snapshot.h"

struct machine;
struct vm_config;

/* Save m (paused: no vCPU thread running) into dir, which must exist and be empty.
 * vm_state is recorded in meta.json ("running" or "paused"). Returns 0 with *meta (the meta.json
 * object, caller decrefs), or -errno with a message in err; on failure dir is left empty. */
int snapshot_dir_save(struct machine *m, const struct vm_config *cfg, const char *dir, const char *vm_state,
                         snap_progress_fn progress, void *opaque, json_t **meta, char *err, size_t errlen);

/* Check that dir holds a complete snapshot that fits cfg and the CPU backend named `backend`
 * (meta.json, vm.snap header and every section CRC, the disk copies present, taken under the
 * a backend that can take it over: snapshot_check_backend). If uses_apic is not NULL it is set to
 * whether the snapshot's guest needs the APIC platform (irqchip_snapshot_check, vmm/irqchip.h). Nothing is changed. 0 or -errno with err. */
int snapshot_dir_check(const struct vm_config *cfg, const char *backend, const char *dir, bool *uses_apic,
                          char *err, size_t errlen);


/* Copy the snapshot's disk images back over cfg's disks. Call after snapshot_dir_check,
 * with the machine paused or not yet created. */
int snapshot_dir_restore_disks(const struct vm_config *cfg, const char *dir, char *err, size_t errlen);

/* Restore m's RAM, vCPUs and devices from dir/vm.snap (m paused or not yet started). */
int snapshot_dir_restore_machine(struct machine *m, const char *dir, snap_progress_fn progress, void *opaque,
                                    char *err, size_t errlen);

/* Copy file src to dst (created or truncated): FICLONE when possible, else a sparse copy. */
int snapshot_dir_copy_file(const char *src, const char *dst, char *err, size_t errlen);

#endif
