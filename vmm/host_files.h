/* host_files: the host files a sandboxed VM process opened before it gave up its privileges.
 *
 * vmd-worker (and `vmctl run` as root) open everything a VM needs while they still can (kernel,
 * initrd, disks, /dev/kvm, tap devices, the VNC font and password file), register each fd here
 * under its path (or a key such as "tap:0"), then drop to an unprivileged user inside an empty
 * mount namespace (vmm/sandbox.h). Every place that opens one of these files goes through
 * host_files_open, which hands out a duplicate of the registered fd, so the machine can be
 * rebuilt after a guest reset and a snapshot's disk copies can be written back into the disks
 * without reaching the host's file system again. Paths that were not registered are opened
 * normally (which, confined, fails for anything outside the VM's directory).
 */
#ifndef VMD_HOST_FILES_H
#define VMD_HOST_FILES_H

#include <sys/types.h>

/* Register fd (ownership passes to the table) under key. A key registered twice keeps the
 * newer fd. 0, or -errno (-ENOMEM, -ENOSPC when the table is full). */
int host_files_add(const char *key, int fd);

/* Open path with open(2)'s flags, registered or not; then register the fd under path. A
 * registered path keeps its fd. Returns 0 or -errno. */
int host_files_preopen(const char *path, int flags);

/* An fd for path: a duplicate (close-on-exec, offset at 0) of the registered fd if there is one
 * and its access mode covers flags' (O_RDONLY covers only O_RDONLY; errno EACCES otherwise), else
 * open(path, flags, mode). -1 with errno on failure, as open(2). */
int host_files_open(const char *path, int flags, mode_t mode);

/* A duplicate of the fd registered under key, or -1 (errno ENOENT) when there is none. */
int host_files_dup(const char *key);

/* Close every registered fd and empty the table (tests; a process exiting needs not). */
void host_files_clear(void);

#endif
