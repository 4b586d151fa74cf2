/* vm_config_json: a VM definition (struct vm_config) to and from JSON, the form the daemon
 * stores under its state dir and vm.create takes as params (see rpc/openrpc.json). */
#ifndef VMD_VM_CONFIG_JSON_H
#define VMD_VM_CONFIG_JSON_H

#include <jansson.h>

#include "vm_config.h"

/* The definition as a JSON object: name, memory_mib, vcpus, accel, kernel, initrd, cmdline,
 * disks [{path, readonly}], nets [{type: "slirp", hostfwd: ["tcp::2222-:22"]} | {type: "tap", bridge}],
 * vnc, cloud_init {user_data, meta_data, network_config}. Absent optional fields are omitted. */
json_t *vm_config_to_json(const struct vm_config *c);

/* Fill c (initialised with vm_config_init) from a JSON object, checking every field and then
 * the whole config. Returns 0, or -EINVAL with a message in err and the offending field's
 * name in *field (a static string; "disks[1].path" style names for nested fields). */
int vm_config_from_json(struct vm_config *c, const json_t *j, char *err, size_t errlen, const char **field);

/* A VM name is 1-63 characters of [A-Za-z0-9._-], not starting with '.' or '-'. */
int vm_name_check(const char *name, char *err, size_t errlen);

#endif
