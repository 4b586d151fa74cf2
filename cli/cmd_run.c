/* vmctl run: one VM in the foreground, serial console on stdin/stdout.
 * Exits 0 when the guest powers off (or resets, with --no-reboot); with --device isa-debug-exit,
 * (V<<1)|1 when the guest writes V to port 0xf4, 70 when its kernel panicked and the panic policy
 * stopped it (docs/operations.md "vmctl run's exit status").
 * Run by root, it confines itself as vmd's workers do (vmm/sandbox.h, docs/security.md) before
 * any guest code runs: what the VM needs is opened first, then it drops to an unprivileged user
 * with no capabilities, no_new_privs and the seccomp filter (no mount namespace: the snapshot
 * paths it is given are anywhere). --no-sandbox keeps root (debugging only). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/vm_options.h"
#include "cli/tty.h"
#include "vmm/cpu_backend.h"
#include "vmm/block/block.h"
#include "vmm/host_files.h"
#include "vmm/log.h"
#include "store/cloud_init_seed.h"
#include "vmm/sandbox.h"
#include "vmm/vm_run.h"

static void run_usage(FILE *f)
{
    fprintf(f,
            "usage: vmctl run --kernel KERNEL [options]\n"
            "       vmctl run --firmware ROM [options]\n"
            "  --accel auto|kvm|emu   CPU backend (auto: kvm where the host has vmx/svm, else emu)\n"
            "  --irqchip auto|pic|apic  interrupt controllers: i8259 only, or local APIC + IOAPIC + MSI-X\n"
            "                         (auto: apic, or what --restore's snapshot used; pic only under emu)\n"
            "  --memory MIB           guest RAM (default 256)\n"
            "  --cpus N               vCPUs (default 1)\n"
            "  --kernel KERNEL        Linux kernel (bzImage, boot protocol >= 2.06), or a multiboot v1\n"
            "                         image (ELF32 or a.out kludge, as QEMU's -kernel)\n"
            "  --initrd FILE          initial ramdisk (multiboot: the one module)\n"
            "  --cmdline STRING       kernel command line (default \"console=ttyS0\")\n"
            "  --firmware ROM         boot a ROM image (a multiple of 64 KiB, at most 16 MiB) from the\n"
            "                         reset vector instead of a kernel (emulator only; docs/boot.md)\n"
            "  --boot-protocol auto|32|64  bzImage entry: 64-bit (long mode) or 32-bit (code32_start,\n"
            "                         flat protected mode; a 64-bit kernel switches to long mode itself)\n"
            "                         (auto: 64 when the kernel has a 64-bit entry point, else 32)\n"
            "  --disk PATH[,readonly][,format=raw|qcow2]  virtio-blk disk (repeatable; the format is\n"
            "                         read from the image's first bytes when not given)\n"
            "  --net slirp[,hostfwd=tcp:ADDR:HPORT-:GPORT] | tap:BRIDGE  (repeatable)\n"
            "  --vnc ADDR:PORT        VNC console\n"
            VM_CLOUD_INIT_USAGE
            "  --device isa-debug-exit  port 0xf4: a guest write of V ends the VM, vmctl exits (V<<1)|1\n"
            "  --on-panic auto|stop|reboot|ignore  on a guest kernel panic (pvpanic): stop the VM (exit 70),\n"
            "                         reset it, or only log it (auto: ignore with panic=N != 0 in --cmdline,\n"
            "                         which reboots the guest itself, else stop)\n"
            "  --no-reboot            exit when the guest resets instead of rebooting it\n"
            "  --snapshot-on-signal PATH  on SIGUSR2: pause the VM, save a snapshot to PATH, resume\n"
            "                         (a snapshot file; into PATH when it is an existing, empty directory)\n"
            "  --restore PATH         start from the snapshot PATH (same --memory/--cpus; taken under\n"
            "                         either backend, see docs/snapshots.md) instead of booting: a\n"
            "                         snapshot file, or a snapshot directory as vmd keeps them\n"
            "  --sandbox-user USER    as root, run the VM as USER (default vmd, else nobody), with no\n"
            "                         capabilities and the seccomp filter (docs/security.md)\n"
            "  --no-sandbox           as root, keep root and every capability (debugging only)\n"
            "  -v, --verbose          debug logging\n"
            "The serial console is on stdin/stdout; on a terminal, Ctrl-A x quits.\n");
}

static void console_to_stdout(void *opaque, const uint8_t *buf, size_t len)
{
    (void)opaque;
    while (len > 0) {
        ssize_t w = write(STDOUT_FILENO, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* stdout gone: drop output, keep the guest running */
        }
        buf += w;
        len -= (size_t)w;
    }
}

/* Set by the signal handler, read by the poll loop. */
static volatile sig_atomic_t g_signalled;
static void on_signal(int sig) { g_signalled = sig; }
/* Set by SIGUSR2 with --snapshot-on-signal, read by the poll loop. */
static volatile sig_atomic_t g_snapshot_requested;
static void on_snapshot_signal(int sig) { (void)sig; g_snapshot_requested = 1; }

/* Pause the running machine, save it to path, resume it. Returns the stop reason if the
 * machine stopped for another reason meanwhile (it is then not resumed), else RUNNING. */
static enum machine_stop snapshot_running(struct vm_run *run, const char *path)
{
    enum machine_stop why = vm_run_pause(run);
    if (why != MACHINE_STOP_PAUSE) return why;
    char err[512];
    if (vm_run_save(run, path, "running", NULL, err, sizeof(err))) log_error("%s", err);
    else log_info("snapshot saved to %s", path);
    if (machine_resume(&run->m)) {
        log_error("vmctl run: resuming after the snapshot failed");
        return MACHINE_STOP_ERROR;
    }
    return MACHINE_RUNNING;
}

/* Pump stdin into the console until the machine stops. Returns the stop reason. */
static enum machine_stop run_console(struct vm_run *run, const char *snapshot_path)
{
    struct machine *m = &run->m;
    bool stdin_open = true, escape = false, raw = tty_is_raw();
    for (;;) {
        if (g_signalled) machine_request_stop(m, MACHINE_STOP_KILL);
        if (g_snapshot_requested && snapshot_path) {
            g_snapshot_requested = 0;
            enum machine_stop why = snapshot_running(run, snapshot_path);
            if (why != MACHINE_RUNNING) return why;
        }
        struct pollfd p[2] = {{.fd = m->stop_fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
        int n = poll(p, stdin_open ? 2 : 1, machine_timer_poll_ms(m, 1000));
        if (n < 0 && errno != EINTR) break;
        if (n <= 0) continue;
        if (p[0].revents) break;
        if (!(p[1].revents & (POLLIN | POLLHUP))) continue;
        uint8_t buf[256];
        ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
        if (r <= 0) {
            stdin_open = false;
            continue;
        }
        size_t out = 0;
        for (ssize_t i = 0; i < r; i++) {
            if (raw && escape) {
                escape = false;
                if (buf[i] == 'x') {
                    machine_request_stop(m, MACHINE_STOP_KILL);
                    break;
                }
                if (buf[i] != 1) continue;
            } else if (raw && buf[i] == 1) { /* Ctrl-A */
                escape = true;
                continue;
            }
            buf[out++] = buf[i];
        }
        if (out) machine_console_input(m, buf, out);
    }
    return machine_join(m);
}

/* vmctl run runs with its user's own rights and follows symlinks and relative paths as the user
 * gave them; the machine opens image files without following links (for vmd's workers), so hand
 * it the resolved paths. A path that does not resolve is kept, for the open to name it. */
static void resolve_paths(struct vm_config *cfg)
{
    char **paths[3 + VM_MAX_DISKS] = {&cfg->kernel, &cfg->initrd, &cfg->firmware};
    unsigned n = 3;
    for (unsigned i = 0; i < cfg->ndisks; i++) paths[n++] = &cfg->disks[i].path;
    for (unsigned i = 0; i < n; i++) {
        char *r = *paths[i] ? realpath(*paths[i], NULL) : NULL;
        if (!r) continue;
        free(*paths[i]);
        *paths[i] = r;
    }
}

/* As root: open what the VM needs (and the snapshot to restore), then drop to user (the vmd
 * user, or nobody if there is none) with no capabilities, no_new_privs and seccomp. */
static int confine(struct vm_run *run, const char *user, const char *restore_path, const char *snapshot_path,
                   char *seed_dir, char *err, size_t errlen)
{
    uid_t uid = 65534;
    gid_t gid = 65534;
    struct passwd *pw = getpwnam(user ? user : "vmd");
    if (pw) {
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    } else if (user) {
        snprintf(err, errlen, "--sandbox-user '%s': no such user", user);
        return -ENOENT;
    } else {
        log_info("sandbox: no user 'vmd' here: running the VM as nobody (65534)");
    }
    int r = sandbox_preopen(run->cfg, run->backend->name, err, errlen);
    if (!r && restore_path) {
        struct stat st;
        if (stat(restore_path, &st) == 0 && S_ISDIR(st.st_mode)) { /* a snapshot directory */
            char p[4200];
            snprintf(p, sizeof(p), "%s/vm.snap", restore_path);
            r = host_files_preopen(p, O_RDONLY);
            for (unsigned i = 0; !r && i < run->cfg->ndisks; i++) {
                snprintf(p, sizeof(p), "%s/disk%u.img", restore_path, i);
                if (access(p, F_OK) == 0) r = host_files_preopen(p, O_RDONLY | O_NOFOLLOW);
            }
        } else {
            r = host_files_preopen(restore_path, O_RDONLY);
        }
        if (r) snprintf(err, errlen, "--restore '%s': %s", restore_path, strerror(-r));
    }
    if (r) return r;
    if (seed_dir[0]) {
        /* --cloud-init's seed is open now and reached through that fd (vmm/host_files.h); the
         * confined process could not remove root's directory at exit, so it goes here */
        unlink(run->cfg->cloud_init_seed);
        rmdir(seed_dir);
        seed_dir[0] = 0;
    }
    struct sandbox_opts o = {.uid = uid, .gid = gid, .seccomp = true};
    r = sandbox_enter(&o, err, errlen);
    if (r) return r;
    if (snapshot_path) { /* written later, by the unprivileged user: say so now rather than then */
        struct stat st;
        char buf[4096];
        snprintf(buf, sizeof(buf), "%s", snapshot_path);
        const char *where = stat(snapshot_path, &st) == 0 && S_ISDIR(st.st_mode) ? snapshot_path : dirname(buf);
        if (access(where, W_OK | X_OK) < 0) {
            snprintf(err, errlen,
                     "--snapshot-on-signal: '%s' is not writable by uid %u, which the VM runs as: make it so, or "
                     "pass --no-sandbox",
                     where, (unsigned)uid);
            return -EACCES;
        }
    }
    return 0;
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        VM_CONFIG_LONG_OPTIONS,
        {"no-reboot", no_argument, 0, 'R'},  {"verbose", no_argument, 0, 'v'},
        {"snapshot-on-signal", required_argument, 0, 0}, {"restore", required_argument, 0, 0},
        {"no-sandbox", no_argument, 0, 0},   {"sandbox-user", required_argument, 0, 0},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0},
    };
    struct vm_config cfg;
    vm_config_init(&cfg);
    bool no_reboot = false;
    const char *snapshot_path = NULL, *restore_path = NULL, *sandbox_user = NULL;
    bool no_sandbox = false;
    char err[512];
    char seed_dir[4096] = ""; /* --cloud-init's, removed at exit */
    int idx, c, rc = VMCTL_EXIT_USAGE;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "vh", opts, &idx)) != -1) {
        switch (c) {
        case 0:
            if (!strcmp(opts[idx].name, "snapshot-on-signal")) {
                snapshot_path = optarg;
                break;
            }
            if (!strcmp(opts[idx].name, "restore")) {
                restore_path = optarg;
                break;
            }
            if (!strcmp(opts[idx].name, "no-sandbox")) {
                no_sandbox = true;
                break;
            }
            if (!strcmp(opts[idx].name, "sandbox-user")) {
                sandbox_user = optarg;
                break;
            }
            if (vm_option_apply(&cfg, opts[idx].name, optarg, err, sizeof(err))) {
                fprintf(stderr, "vmctl run: %s\n", err);
                goto out;
            }
            break;
        case 'R': no_reboot = true; break;
        case 'v': log_set_level(LOG_DEBUG); break;
        case 'h': run_usage(stdout); rc = VMCTL_EXIT_OK; goto out;
        default:
            if (optopt) fprintf(stderr, "vmctl run: option -%c: unknown or missing its value\n", optopt);
            else fprintf(stderr, "vmctl run: option '%s': unknown or missing its value\n", argv[optind - 1]);
            run_usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vmctl run: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    if (!cfg.cmdline && vm_config_set(&cfg, "cmdline", "console=ttyS0", err, sizeof(err))) goto out;
    if (vm_config_validate(&cfg, err, sizeof(err))) {
        fprintf(stderr, "vmctl run: %s\n", err);
        goto out;
    }
    resolve_paths(&cfg);
    /* `vmctl run` defines the VM as it starts it: a disk given without a format gets the one its
     * first bytes say, once, here (vmd does the same at vm.create) */
    for (unsigned i = 0; i < cfg.ndisks; i++) {
        enum block_format f;
        if (cfg.disks[i].format != DISK_FORMAT_UNSET) continue;
        if (block_probe(cfg.disks[i].path, &f, err, sizeof(err))) {
            fprintf(stderr, "vmctl run: %s\n", err);
            goto out;
        }
        cfg.disks[i].format = f == BLOCK_FORMAT_QCOW2 ? DISK_FORMAT_QCOW2 : DISK_FORMAT_RAW;
    }
    /* --cloud-init: the seed is built here, in a directory of our own removed at exit */
    if (cfg.cloud_init.user_data) {
        const char *tmp = getenv("TMPDIR");
        snprintf(seed_dir, sizeof(seed_dir), "%s/vmctl-cidata-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(seed_dir)) {
            fprintf(stderr, "vmctl run: --cloud-init: creating '%s': %s\n", seed_dir, strerror(errno));
            seed_dir[0] = 0;
            goto out;
        }
        if (asprintf(&cfg.cloud_init_seed, "%s/" CLOUD_INIT_SEED_FILE, seed_dir) < 0) {
            cfg.cloud_init_seed = NULL;
            goto out;
        }
        /* stamped with the epoch: the same files give the same image, so a guest restored with
         * --restore finds the seed it had read */
        if (cloud_init_seed_write(&cfg.cloud_init, cfg.name ? cfg.name : "vmctl-run", cfg.cloud_init_seed, 0, err,
                                  sizeof(err))) {
            fprintf(stderr, "vmctl run: --cloud-init: %s\n", err);
            goto out;
        }
    }

    static struct vm_run run; /* holds the machine: large; one per process */
    vm_run_init(&run, &cfg);
    run.console_out = console_to_stdout;
    if (restore_path && vm_run_restore_next(&run, restore_path, err, sizeof(err))) {
        fprintf(stderr, "vmctl run: %s\n", err);
        goto out;
    }
    if (geteuid() == 0 && !no_sandbox && confine(&run, sandbox_user, restore_path, snapshot_path, seed_dir, err, sizeof(err))) {
        fprintf(stderr, "vmctl run: %s\n", err);
        goto out;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (snapshot_path) {
        struct sigaction su = {.sa_handler = on_snapshot_signal};
        sigaction(SIGUSR2, &su, NULL);
    }
    tty_raw_begin(true);

    rc = VMCTL_EXIT_FAIL;
    for (;;) {
        log_info("%s: %llu MiB, %u vCPU(s), backend %s", cfg.kernel, (unsigned long long)cfg.memory_mib, cfg.cpus,
                 run.backend->name);
        enum machine_stop why;
        if (vm_run_bringup(&run, err, sizeof(err))) {
            fprintf(stderr, "vmctl run: %s\n", err);
            why = MACHINE_STOP_ERROR;
        } else {
            why = run_console(&run, snapshot_path);
        }
        int guest_status = run.live ? run.m.guest_exit_status : 0;
        vm_run_teardown(&run);
        if (vm_run_reboots(why, no_reboot)) {
            log_info("guest reset: rebooting");
            continue;
        }
        switch (why) {
        case MACHINE_STOP_POWEROFF:
        case MACHINE_STOP_RESET: rc = VMCTL_EXIT_OK; break;
        case MACHINE_STOP_GUEST_EXIT: rc = guest_status; break;
        case MACHINE_STOP_PANIC:
            fprintf(stderr, "vmctl run: guest kernel panicked: VM stopped (exit status %d)\n", VMCTL_EXIT_GUEST_PANIC);
            rc = VMCTL_EXIT_GUEST_PANIC;
            break;
        case MACHINE_STOP_KILL: rc = 128 + (g_signalled ? g_signalled : SIGTERM); break;
        default: rc = VMCTL_EXIT_FAIL; break;
        }
        break;
    }
out:
    if (seed_dir[0]) {
        if (cfg.cloud_init_seed) unlink(cfg.cloud_init_seed);
        rmdir(seed_dir);
    }
    vm_config_free(&cfg);
    return rc;
}
