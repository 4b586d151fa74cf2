/* sandbox: confining a process that runs one VM (vmd-worker, `vmctl run` as root), in the manner
 * of Firecracker's jailer. docs/security.md describes the layers and why each is there.
 *
 *   sandbox_preopen  opens what the VM needs while the process still may (kernel, initrd, disks,
 *                    read-only disks O_RDONLY, /dev/kvm, tap devices, the VNC font and password
 *                    file) and registers the fds with host_files (vmm/host_files.h), through which
 *                    the machine opens them for its whole life, guest resets included.
 *   sandbox_enter    the one-way step, before any guest code runs: (as root) a new mount namespace
 *                    whose root is an empty directory holding only the VM's own directory, new
 *                    IPC and UTS namespaces; then the privilege drop to an unprivileged uid/gid
 *                    (no supplementary groups, empty capability sets including the bounding and
 *                    ambient ones), no_new_privs, and the seccomp filter
 *                    (vmm/seccomp_filter.h).
 */
#ifndef VMD_SANDBOX_H
#define VMD_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct vm_config;

struct sandbox_opts {
    uid_t uid; /* the user and group to drop to (root only; unprivileged callers keep theirs) */
    gid_t gid;
    /* The directory the process keeps (its cwd afterwards, "." relative paths reach it): with a
     * mount namespace, the only host directory visible in the new root, as /vm. NULL: the cwd. */
    const char *keep_dir;
    /* An empty directory for the new root's mount point (created if missing). NULL: no mount
     * namespace (pivot_root) step. */
    const char *jail_dir;
    bool seccomp; /* install the seccomp filter (last) */
};

/* Open and register everything cfg's machine opens (see above). backend is the CPU backend's
 * name ("kvm" opens /dev/kvm). 0, or -errno with the reason (naming the file) in err. */
int sandbox_preopen(const struct vm_config *cfg, const char *backend, char *err, size_t errlen);

/* Confine the calling process (see above); it must still be single-threaded. 0, or -errno with
 * the reason in err: the caller must then not run the VM. */
int sandbox_enter(const struct sandbox_opts *o, char *err, size_t errlen);

/* Whether the drop is possible and meaningful here: the process runs as root. */
bool sandbox_can_drop(void);

#endif
