/* seccomp_filter: the confined VM process's system call allow-list (see seccomp_filter.h). */
#include "vmm/seccomp_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

/* Allowed without looking at arguments. */
static const int plain_calls[] = {
    /* memory */
    SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap), SCMP_SYS(brk), SCMP_SYS(madvise),
    /* files and fds (the VM's directory: status, console log, snapshots; the preopened images) */
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64), SCMP_SYS(pwrite64),
    SCMP_SYS(preadv), SCMP_SYS(pwritev), SCMP_SYS(preadv2), SCMP_SYS(pwritev2), SCMP_SYS(lseek), SCMP_SYS(close),
    SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(stat), SCMP_SYS(lstat), SCMP_SYS(openat),
    SCMP_SYS(open), SCMP_SYS(rename), SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(unlink), SCMP_SYS(unlinkat),
    SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(sync_file_range), SCMP_SYS(ftruncate), SCMP_SYS(fallocate), SCMP_SYS(flock), SCMP_SYS(fcntl),
    SCMP_SYS(dup), SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(getdents64), SCMP_SYS(access), SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2), SCMP_SYS(readlink), SCMP_SYS(getcwd), SCMP_SYS(pipe2), SCMP_SYS(eventfd2),
    SCMP_SYS(timerfd_create), SCMP_SYS(timerfd_settime), SCMP_SYS(timerfd_gettime), SCMP_SYS(umask),
    /* waiting */
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(select), SCMP_SYS(pselect6), SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2), SCMP_SYS(futex),
    SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep), SCMP_SYS(sched_yield), SCMP_SYS(restart_syscall),
    /* sockets: the worker's Unix socket, vmd's socketpair, VNC viewers, slirp's connections */
    SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(connect), SCMP_SYS(shutdown),
    SCMP_SYS(sendto), SCMP_SYS(recvfrom), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendmmsg),
    SCMP_SYS(recvmmsg), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt), SCMP_SYS(getsockname), SCMP_SYS(getpeername),
    /* threads, signals, time, identity */
    SCMP_SYS(set_robust_list), SCMP_SYS(get_robust_list), SCMP_SYS(rseq), SCMP_SYS(set_tid_address),
    SCMP_SYS(exit), SCMP_SYS(exit_group), SCMP_SYS(gettid), SCMP_SYS(getpid), SCMP_SYS(getppid),
    SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack),
    SCMP_SYS(sched_getaffinity), SCMP_SYS(sched_setaffinity), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
    SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(getrandom), SCMP_SYS(getuid), SCMP_SYS(geteuid),
    SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(getresuid), SCMP_SYS(getresgid), SCMP_SYS(uname),
    SCMP_SYS(getrlimit), SCMP_SYS(prlimit64), SCMP_SYS(getrusage), SCMP_SYS(sysinfo), SCMP_SYS(membarrier),
};

/* ioctl requests: the kvm backend's (vmm/kvm), tap (net/tap.c, after the drop only TUNGETIFF),
 * reflinked snapshot disk copies (FICLONE), libuv's FIONBIO/FIOCLEX, stdio's TCGETS and the
 * terminal modes `vmctl run` sets back (TCSETS*). */
static const unsigned long ioctls[] = {
    KVM_GET_API_VERSION, KVM_CREATE_VM, KVM_CHECK_EXTENSION, KVM_GET_VCPU_MMAP_SIZE, KVM_GET_SUPPORTED_CPUID,
    KVM_CREATE_VCPU, KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_SET_USER_MEMORY_REGION, KVM_SET_TSS_ADDR,
    KVM_SET_IDENTITY_MAP_ADDR, KVM_SET_GSI_ROUTING, KVM_IRQ_LINE, KVM_SIGNAL_MSI, KVM_RUN, KVM_GET_REGS,
    KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_FPU, KVM_SET_FPU, KVM_GET_MSRS, KVM_SET_MSRS,
    KVM_SET_CPUID2, KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, KVM_GET_PIT2, KVM_SET_PIT2,
    KVM_GET_CLOCK, KVM_SET_CLOCK, KVM_GET_MP_STATE, KVM_SET_MP_STATE, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS,
    KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, KVM_GET_XSAVE, KVM_SET_XSAVE, KVM_GET_XCRS, KVM_SET_XCRS,
    KVM_GET_TSC_KHZ, KVM_SET_TSC_KHZ, TUNGETIFF, FICLONE, FIONREAD, FIONBIO, FIOCLEX, TCGETS,
    TCSETS, TCSETSW, TCSETSF, /* `vmctl run` puts its terminal back at exit */
};

/* The process's only SIGSYS handler: async-signal-safe calls only. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char msg[96], num[16];
    int n = 0, v = si->si_syscall;
    if (v < 0) v = 0;
    do num[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < (int)sizeof(num));
    size_t len = 0;
    static const char head[] = "forbidden system call ";
    memcpy(msg, head, sizeof(head) - 1);
    len = sizeof(head) - 1;
    while (n) msg[len++] = num[--n];
    msg[len++] = '\n';
    static const char who[] = "sandbox: seccomp: ";
    ssize_t w = write(2, who, sizeof(who) - 1);
    w = write(2, msg, len);
    int fd = open(SECCOMP_VIOLATION_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        w = write(fd, msg, len);
        close(fd);
    }
    (void)w;
    /* die of SIGSYS as SECCOMP_RET_KILL_PROCESS would: the default action, delivered once the
     * handler returns (SIGSYS is blocked while it runs) */
    signal(sig, SIG_DFL);
    raise(sig);
}

void seccomp_violation_describe(const char *text, char *out, size_t outlen)
{
    int nr = -1;
    if (text) sscanf(text, "forbidden system call %d", &nr);
    char *name = nr >= 0 ? seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr) : NULL;
    if (nr < 0) snprintf(out, outlen, "a forbidden system call (seccomp)");
    else snprintf(out, outlen, "forbidden system call %d (%s) (seccomp)", nr, name ? name : "unknown");
    free(name);
}

int seccomp_filter_install(char *err, size_t errlen)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0) {
        int e = errno;
        snprintf(err, errlen, "sandbox: seccomp: SIGSYS handler: %s", strerror(e));
        return -e;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
    if (!ctx) {
        snprintf(err, errlen, "sandbox: seccomp: seccomp_init failed");
        return -ENOMEM;
    }
    int r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    const char *what = "TSYNC";
    for (size_t i = 0; !r && i < sizeof(plain_calls) / sizeof(plain_calls[0]); i++) {
        what = "allow-list";
        if (plain_calls[i] < 0) continue; /* not on this architecture */
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, plain_calls[i], 0);
    }
    for (size_t i = 0; !r && i < sizeof(ioctls) / sizeof(ioctls[0]); i++) {
        what = "ioctl";
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)ioctls[i], 0));
    }
    if (!r) { /* threads only; clone3's flags sit in memory a filter cannot read */
        what = "clone";
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    }
    if (!r) r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (!r) { /* signals to its own threads only (raise, pthread_kill): not to the other workers,
               * which run as the same user */
        what = "tgkill";
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0));
    }
    for (int fam = 0; !r && fam < 2; fam++) { /* slirp's connections to the outside */
        what = "socket";
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                             SCMP_A0(SCMP_CMP_EQ, fam ? AF_INET6 : AF_INET, 0));
    }
#ifndef SANITIZER_BUILD
    if (!r) { /* thread names */
        what = "prctl";
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, PR_SET_NAME, 0));
    }
#else
    /* LeakSanitizer at exit: a task cloned without CLONE_THREAD stops the threads with ptrace and
     * lists /proc/self/task with getdents (found running the daemon tests with SCMP_ACT_LOG: audit
     * type 1326 in the kernel log); the sanitizer runtime also calls prctl(PR_SET_PTRACER, ...) and
     * sched_getparam. Release builds never allow these. */
    static const int sanitizer_calls[] = {SCMP_SYS(ptrace),         SCMP_SYS(wait4),
                                          SCMP_SYS(waitid),         SCMP_SYS(kill),
                                          SCMP_SYS(getdents),       SCMP_SYS(sched_getparam),
                                          SCMP_SYS(sched_getscheduler)};
    for (size_t i = 0; !r && i < sizeof(sanitizer_calls) / sizeof(sanitizer_calls[0]); i++) {
        what = "sanitizer";
        r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, sanitizer_calls[i], 0);
    }
    if (!r) r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
    if (!r) r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 0); /* PR_SET_NAME and the above */
#endif
    if (!r) {
        what = "loading the filter";
        r = seccomp_load(ctx);
    }
    seccomp_release(ctx);
    if (r) {
        snprintf(err, errlen, "sandbox: seccomp: %s: %s", what, strerror(-r));
        return r;
    }
    return 0;
}
