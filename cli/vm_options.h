/* vm_options: the command-line options that describe a VM (`vmctl run` and `vmctl create`
 * take the same ones; vm_config_set() parses each). Spliced into each command's option table. */
#ifndef VMD_CLI_VM_OPTIONS_H
#define VMD_CLI_VM_OPTIONS_H

#include <getopt.h>

/* getopt_long entries returning 0: the option's name is the vm_config_set() key. */
#define VM_CONFIG_LONG_OPTIONS                                                                         \
    {"accel", required_argument, 0, 0}, {"memory", required_argument, 0, 0},                          \
        {"cpus", required_argument, 0, 0}, {"kernel", required_argument, 0, 0},                        \
        {"initrd", required_argument, 0, 0}, {"cmdline", required_argument, 0, 0},                     \
        {"disk", required_argument, 0, 0}, {"net", required_argument, 0, 0},                           \
        {"vnc", required_argument, 0, 0}, {"name", required_argument, 0, 0},                           \
        {"irqchip", required_argument, 0, 0}, {"device", required_argument, 0, 0},                      \
        {"on-panic", required_argument, 0, 0}, {"boot-protocol", required_argument, 0, 0}

#endif
