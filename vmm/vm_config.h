/* vm_config: what a VM is made of (memory, CPUs, kernel, disks, NICs, VNC).
 *
 * One struct for `vmctl run`, `vmctl create` and the daemon's vm.create; it is
 * parsed from command-line options or from JSON and validated in one place.
 */
#ifndef VMD_VM_CONFIG_H
#define VMD_VM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VM_MAX_DISKS 8
#define VM_MAX_NETS 4
#define VM_MAX_HOSTFWD 8

enum vm_accel { ACCEL_AUTO, ACCEL_KVM, ACCEL_EMU };
/* The guest's interrupt controllers: the i8259 pair only, or local APIC + IOAPIC (with MSI-X).
 * auto is apic under both backends (kvm: its in-kernel irqchip; emu: vmm/emu/lapic.c and
 * devices/ioapic.c); pic is the emulator's i8259-only platform. */
enum vm_irqchip { IRQCHIP_AUTO, IRQCHIP_PIC, IRQCHIP_APIC };

/* A disk's image format is fixed when the VM is defined: given (--disk PATH,format=F) or read
 * from the image's first bytes at vm.create / `vmctl run`, then stored; never probed again, so a
 * guest writing a qcow2 header into a raw disk changes nothing. UNSET only in a definition written
 * before formats existed: raw (all disks were). */
enum vm_disk_format { DISK_FORMAT_UNSET, DISK_FORMAT_RAW, DISK_FORMAT_QCOW2 };

struct vm_disk {
    char *path;
    bool readonly;
    enum vm_disk_format format;
};

struct vm_hostfwd {
    bool udp;
    char host_addr[64]; /* empty means any */
    uint16_t host_port, guest_port;
};

enum vm_net_kind { NET_SLIRP, NET_TAP };

/* Optional devices a VM may add (--device NAME, the definition's "devices" list): bits. */
#define VM_DEVICE_ISA_DEBUG_EXIT 0x1u /* port 0xf4: a guest write of V ends the VM with status (V<<1)|1 */

struct vm_net {
    enum vm_net_kind kind;
    char bridge[32];                 /* NET_TAP */
    unsigned nhostfwd;               /* NET_SLIRP */
    struct vm_hostfwd hostfwd[VM_MAX_HOSTFWD];
};

/* cloud-init's NoCloud data (docs/operations.md "cloud-init"): the texts of the seed's files.
 * user_data NULL means the VM has no seed; meta_data NULL means vmd's default (instance-id and
 * local-hostname: the VM's name); network_config NULL means no network-config file. Each is UTF-8
 * text without NUL of at most VM_CLOUD_INIT_MAX_BYTES. */
#define VM_CLOUD_INIT_MAX_BYTES 65536
struct vm_cloud_init {
    char *user_data, *meta_data, *network_config;
};

/* Which bzImage entry the direct boot uses: auto (64-bit when the kernel has one, else 32-bit),
 * or forced. 32 enters code32_start in flat 32-bit protected mode even for a 64-bit kernel. */
enum vm_boot_protocol { BOOT_PROTOCOL_AUTO, BOOT_PROTOCOL_32, BOOT_PROTOCOL_64 };

/* What a guest kernel panic reported through pvpanic does (devices/pvpanic.h). */
enum vm_on_panic { ON_PANIC_AUTO, ON_PANIC_STOP, ON_PANIC_REBOOT, ON_PANIC_IGNORE };

struct vm_config {
    char *name;
    uint64_t memory_mib;
    unsigned cpus;
    enum vm_accel accel;
    enum vm_irqchip irqchip;
    char *kernel, *initrd, *cmdline;
    char *firmware; /* a ROM image booted from the reset vector when there is no kernel (emu only) */
    unsigned ndisks;
    struct vm_disk disks[VM_MAX_DISKS];
    unsigned nnets;
    struct vm_net nets[VM_MAX_NETS];
    char *vnc; /* "ADDR:PORT" or NULL */
    struct vm_cloud_init cloud_init;
    /* The seed image built from cloud_init (store/cloud_init_seed.h), attached as a read-only raw
     * virtio-blk disk after `disks`, with serial "vmd-cidata". Set by whoever built it (vmd-worker:
     * the file vmd keeps in the VM's directory; `vmctl run`: a temporary file), never from JSON. */
    char *cloud_init_seed;
    unsigned devices; /* VM_DEVICE_* */
    enum vm_on_panic on_panic;
    enum vm_boot_protocol boot_protocol;
};

/* The seed disk's slot in the per-disk I/O counters (vmm/machine.h), after the VM's own disks. */
#define VM_SEED_DISK_INDEX VM_MAX_DISKS

void vm_config_init(struct vm_config *c); /* defaults: 256 MiB, 1 CPU, accel auto */
void vm_config_free(struct vm_config *c);

/* Apply one option (long name without dashes, e.g. "memory", and its value).
 * Returns 0, or -EINVAL with a message naming the option in err. */
int vm_config_set(struct vm_config *c, const char *option, const char *value, char *err, size_t errlen);
/* Check the whole config (kernel present, sizes in range). 0 or -EINVAL with err. */
int vm_config_validate(const struct vm_config *c, char *err, size_t errlen);

const char *vm_accel_name(enum vm_accel a);
const char *vm_irqchip_name(enum vm_irqchip i);
const char *vm_on_panic_name(enum vm_on_panic p);
const char *vm_disk_format_name(enum vm_disk_format f); /* "raw", "qcow2", NULL for unset */
/* The name of one VM_DEVICE_* bit ("isa-debug-exit"), NULL for an unknown one. */
const char *vm_device_name(unsigned bit);
int vm_net_parse(struct vm_net *n, const char *spec, char *err, size_t errlen);

/* Check one cloud-init text of len bytes (what: its name in messages, e.g. "cloud_init.user_data"):
 * no NUL, at most VM_CLOUD_INIT_MAX_BYTES. 0 or -EINVAL with err. */
int vm_cloud_init_check(const char *what, const char *text, size_t len, char *err, size_t errlen);
/* Replace *field (a vm_cloud_init member) with a copy of text after vm_cloud_init_check. */
int vm_cloud_init_set(char **field, const char *what, const char *text, size_t len, char *err, size_t errlen);

#endif
