/* seccomp_filter: the system calls a confined VM process may make (libseccomp), installed as the
 * last step of sandbox_enter (vmm/sandbox.h) and inherited by every thread it starts afterwards
 * (vCPUs, device I/O, slirp, VNC).
 *
 * One allow-list for the whole process: the threads are created after the filter by the same
 * code paths whichever class they belong to, so per-thread lists would differ only in a few
 * entries (docs/security.md says which). ioctl is allowed only for the KVM requests the kvm
 * backend issues and a few file/tap/socket requests; clone only for threads (clone3 reports
 * ENOSYS, so glibc falls back to clone, whose flags a filter can see); socket only for IPv4 and
 * IPv6 (slirp's connections). Anything else raises SIGSYS: a handler writes "forbidden system
 * call N" to stderr and to SECCOMP_VIOLATION_FILE in the process's directory (the VM's, where vmd
 * reads it to report the crash), then the process dies of SIGSYS.
 *
 * Sanitizer builds (ASan/LSan) allow a few more calls the sanitizer runtime makes (LeakSanitizer
 * stops the threads with ptrace from a cloned task at exit): see seccomp_filter.c.
 */
#ifndef VMD_SECCOMP_FILTER_H
#define VMD_SECCOMP_FILTER_H

#include <stddef.h>

#define SECCOMP_VIOLATION_FILE "seccomp-violation"

/* ASan/UBSan builds (BUILD=asan, gcc or clang), whose confinement is a little wider. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_BUILD 1
#endif
#endif

/* Install the filter for the calling process (all its threads: TSYNC). 0, or -errno with the
 * reason in err. */
int seccomp_filter_install(char *err, size_t errlen);

/* "forbidden system call N (NAME)" for what SECCOMP_VIOLATION_FILE holds (vmd's report). */
void seccomp_violation_describe(const char *file_text, char *out, size_t outlen);

#endif
