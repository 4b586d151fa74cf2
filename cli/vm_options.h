/* vm_options: the command-line options that describe a VM (`vmctl run` and `vmctl create`
 * take the same ones; vm_option_apply() applies each). Spliced into each command's option table. */
#ifndef VMD_CLI_VM_OPTIONS_H
#define VMD_CLI_VM_OPTIONS_H

#include <getopt.h>
#include <stddef.h>

#include "vmm/vm_config.h"

/* getopt_long entries returning 0: the option's name is the vm_config_set() key. */
#define VM_CONFIG_LONG_OPTIONS                                                                         \
    {"accel", required_argument, 0, 0}, {"memory", required_argument, 0, 0},                          \
        {"cpus", required_argument, 0, 0}, {"kernel", required_argument, 0, 0},                        \
        {"initrd", required_argument, 0, 0}, {"cmdline", required_argument, 0, 0},                     \
        {"disk", required_argument, 0, 0}, {"net", required_argument, 0, 0},                           \
        {"vnc", required_argument, 0, 0}, {"name", required_argument, 0, 0},                           \
        {"irqchip", required_argument, 0, 0}, {"cloud-init", required_argument, 0, 0},                 \
        {"cloud-init-meta", required_argument, 0, 0}, {"cloud-init-network", required_argument, 0, 0}, \
        {"firmware", required_argument, 0, 0}, {"device", required_argument, 0, 0},                     \
        {"on-panic", required_argument, 0, 0}, {"boot-protocol", required_argument, 0, 0}

/* The options' help text, for both commands' usage. */
#define VM_CLOUD_INIT_USAGE                                                                            \
    "  --cloud-init FILE      cloud-init user-data: the VM gets a NoCloud seed (volume cidata) as a\n"   \
    "                         read-only virtio disk after its own (docs/operations.md)\n"                \
    "  --cloud-init-meta FILE   its meta-data (default: instance-id and local-hostname = the VM's name)\n" \
    "  --cloud-init-network FILE  its network-config (default: none)\n"

/* Apply one of these options: --cloud-init* read FILE (UTF-8 text, at most 64 KiB), the others
 * go to vm_config_set(). 0, or -errno with a message naming the option in err. */
int vm_option_apply(struct vm_config *cfg, const char *name, const char *value, char *err, size_t errlen);

#endif
