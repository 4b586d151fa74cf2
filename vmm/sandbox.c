/* sandbox: open first, then confine (see sandbox.h). */
#include "vmm/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "net/net.h"
#include "vmm/block/block.h"
#include "vmm/host_files.h"
#include "vmm/log.h"
#include "vmm/seccomp_filter.h"
#include "vmm/vm_config.h"
#include "vnc/vnc.h"

bool sandbox_can_drop(void) { return geteuid() == 0; }

static int preopen_image(const char *what, const char *path, int flags, char *err, size_t errlen)
{
    int r = host_files_preopen(path, flags | O_NOFOLLOW);
    if (r)
        snprintf(err, errlen, "%s '%s': %s", what, path,
                 r == -ELOOP ? "is a symbolic link (image paths are opened without following links)" : strerror(-r));
    return r;
}

int sandbox_preopen(const struct vm_config *cfg, const char *backend, char *err, size_t errlen)
{
    int r = 0;
    if (cfg->kernel) r = preopen_image("kernel", cfg->kernel, O_RDONLY, err, errlen);
    if (!r && cfg->initrd) r = preopen_image("initrd", cfg->initrd, O_RDONLY, err, errlen);
    if (!r && cfg->firmware) r = preopen_image("firmware", cfg->firmware, O_RDONLY, err, errlen);
    for (unsigned i = 0; !r && i < cfg->ndisks; i++) {
        const struct vm_disk *d = &cfg->disks[i];
        r = preopen_image("disk", d->path, d->readonly ? O_RDONLY : O_RDWR, err, errlen);
        if (r || d->format != DISK_FORMAT_QCOW2) continue;
        /* a qcow2 disk's backing files, read-only, as the block layer will open them */
        char **chain;
        unsigned n;
        r = block_backing_chain(d->path, BLOCK_FORMAT_QCOW2, &chain, &n, err, errlen);
        for (unsigned k = 0; !r && k < n; k++) r = preopen_image("backing file", chain[k], O_RDONLY, err, errlen);
        if (chain) block_chain_free(chain, n);
    }
    if (!r && cfg->cloud_init_seed) r = preopen_image("cloud-init seed", cfg->cloud_init_seed, O_RDONLY, err, errlen);
    if (!r && backend && !strcmp(backend, "kvm")) {
        r = host_files_preopen("/dev/kvm", O_RDWR);
        if (r) snprintf(err, errlen, "/dev/kvm: %s", strerror(-r));
    }
    for (unsigned i = 0; !r && i < cfg->nnets; i++) {
        if (cfg->nets[i].kind != NET_TAP) continue;
        char ifname[16], key[32];
        int fd = net_tap_open(&cfg->nets[i], i, ifname, err, errlen);
        if (fd < 0) return -EPERM;
        net_tap_key(key, sizeof(key), i);
        r = host_files_add(key, fd);
        if (r) snprintf(err, errlen, "tap %s: %s", ifname, strerror(-r));
    }
    if (!r && cfg->vnc) r = vnc_console_preopen(cfg->vnc, err, errlen);
    return r;
}

/* A new mount namespace whose root is a small tmpfs on jail_dir holding only keep_dir, as /vm
 * (nosuid, nodev, noexec), read-only at the top; the host's tree is detached. */
static int enter_jail(const struct sandbox_opts *o, char *err, size_t errlen)
{
#define FAIL(what)                                                                                                     \
    do {                                                                                                               \
        int e_ = errno;                                                                                                \
        snprintf(err, errlen, "sandbox: %s: %s", what, strerror(e_));                                                  \
        return -e_;                                                                                                    \
    } while (0)
    if (unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) < 0) FAIL("unshare(mount, ipc, uts namespaces)");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) FAIL("making the mounts private");
    if (mkdir(o->jail_dir, 0700) < 0 && errno != EEXIST) FAIL(o->jail_dir);
    if (mount("vmd-jail", o->jail_dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,nr_inodes=16,mode=0755") < 0)
        FAIL("mounting the jail's tmpfs");
    char vm[4200];
    snprintf(vm, sizeof(vm), "%s/vm", o->jail_dir);
    if (mkdir(vm, 0755) < 0) FAIL("creating /vm in the jail");
    const char *keep = o->keep_dir ? o->keep_dir : ".";
    if (mount(keep, vm, NULL, MS_BIND, NULL) < 0) FAIL("binding the VM's directory into the jail");
    if (mount(NULL, vm, NULL, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        FAIL("remounting /vm nosuid,nodev,noexec");
#ifdef SANITIZER_BUILD
    /* LeakSanitizer reads /proc/self (its maps, its threads) at exit: sanitizer builds only */
    char proc[4200];
    snprintf(proc, sizeof(proc), "%s/proc", o->jail_dir);
    if (mkdir(proc, 0555) < 0) FAIL("creating /proc in the jail (sanitizer build)");
    if (mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) FAIL("mounting /proc (sanitizer build)");
#endif
    if (chdir(o->jail_dir) < 0) FAIL("entering the jail");
    /* pivot_root(".", "."): the old root ends up stacked on the new one, then is detached */
    if (syscall(SYS_pivot_root, ".", ".") < 0) FAIL("pivot_root");
    if (umount2(".", MNT_DETACH) < 0) FAIL("detaching the host's root");
    if (chdir("/vm") < 0) FAIL("chdir /vm");
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        FAIL("remounting the jail's root read-only");
    if (sethostname("vmd-worker", 10) < 0) FAIL("sethostname");
    return 0;
}

/* Root -> uid/gid with no groups and no capabilities in any set. */
static int drop_privileges(uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0) FAIL("PR_SET_KEEPCAPS");
    if (setgroups(0, NULL) < 0) FAIL("clearing the supplementary groups");
    if (setresgid(gid, gid, gid) < 0) FAIL("setresgid");
    /* the bounding set needs CAP_SETPCAP, so before the uid changes */
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL) break; /* past the kernel's last capability */
            FAIL("dropping the capability bounding set");
        }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) FAIL("clearing the ambient capabilities");
    if (setresuid(uid, uid, uid) < 0) FAIL("setresuid");
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof(data));
    if (syscall(SYS_capset, &h, data) < 0) FAIL("capset");
    /* check: no way back */
    if (uid != 0 && (setuid(0) == 0 || setgid(0) == 0)) {
        snprintf(err, errlen, "sandbox: could regain root after dropping to uid %u", (unsigned)uid);
        return -EPERM;
    }
    return 0;
}

int sandbox_enter(const struct sandbox_opts *o, char *err, size_t errlen)
{
    bool root = sandbox_can_drop();
    if (root && o->jail_dir) {
        int r = enter_jail(o, err, errlen);
        if (r) return r;
    } else if (o->keep_dir && chdir(o->keep_dir) < 0) {
        FAIL(o->keep_dir);
    }
    if (root) {
        if (o->uid == 0 || o->gid == 0) {
            snprintf(err, errlen, "sandbox: refusing to run the VM as uid %u gid %u (root)", (unsigned)o->uid,
                     (unsigned)o->gid);
            return -EPERM;
        }
        int r = drop_privileges(o->uid, o->gid, err, errlen);
        if (r) return r;
#ifdef SANITIZER_BUILD
        /* LeakSanitizer's tracer task ptraces this process's threads at exit, which a process that
         * changed its uid (not dumpable) refuses: sanitizer builds only */
        if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0) FAIL("PR_SET_DUMPABLE (sanitizer build)");
#endif
    } else if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
        FAIL("clearing the ambient capabilities");
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) FAIL("PR_SET_NO_NEW_PRIVS");
    if (o->seccomp) {
        int r = seccomp_filter_install(err, errlen);
        if (r) return r;
    }
    char who[64];
    if (root) snprintf(who, sizeof(who), "uid %u gid %u", (unsigned)o->uid, (unsigned)o->gid);
    else snprintf(who, sizeof(who), "unprivileged caller (uid %u)", (unsigned)getuid());
    log_info("sandbox: %s, no capabilities, no_new_privs%s%s", who,
             root && o->jail_dir ? ", own mount/ipc/uts namespaces" : "", o->seccomp ? ", seccomp" : "");
    return 0;
#undef FAIL
}
