/* cloud_init_seed: the NoCloud seed image cloud-init reads, built with Debian's libisofs.
 *
 * An ISO 9660 image with Rock Ridge and Joliet whose volume id is "cidata" and whose root holds
 * `user-data`, `meta-data` and, when given, `network-config` (cloud-init's NoCloud layout, as
 * `genisoimage -volid cidata -joliet -rock` makes it). vmd keeps it as STATE_DIR/vms/NAME/
 * CLOUD_INIT_SEED_FILE and the worker attaches it as a read-only virtio-blk disk; `vmctl run
 * --cloud-init` builds one in a temporary directory.
 *
 * vmd only writes these images; it never reads one back (nothing here parses ISO 9660), so
 * there is no parser of hostile input here to fuzz.
 */
#ifndef VMD_STORE_CLOUD_INIT_SEED_H
#define VMD_STORE_CLOUD_INIT_SEED_H

#include <stddef.h>
#include <time.h>

#include "vmm/vm_config.h"

#define CLOUD_INIT_SEED_FILE "cidata.iso"
#define CLOUD_INIT_VOLUME_ID "cidata"

/* The meta-data vmd writes when none was given: instance-id and local-hostname, both the VM's
 * name (a valid VM name needs no YAML escaping; it is quoted so that e.g. "1e3" stays a string).
 * malloc'd, NULL when out of memory. */
char *cloud_init_default_meta_data(const char *vm_name);

/* Build the seed for ci (ci->user_data must be set; ci->meta_data NULL: the default for
 * vm_name) and write it to path: a temporary file beside it (mode 0600), fsync, rename over path,
 * fsync of the directory, so path is either the old image or the whole new one. Every timestamp
 * in the image is `when` (UTC), so the same data and `when` give the same bytes: regenerating the
 * seed of a VM changes nothing a running or restored guest has read. 0, or -errno with a
 * message naming path in err. */
int cloud_init_seed_write(const struct vm_cloud_init *ci, const char *vm_name, const char *path, time_t when,
                          char *err, size_t errlen);

#endif
