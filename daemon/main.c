/* vmd: the VM daemon. Options, the config file, the listeners and the API clients.
 *
 *   vmd [--config FILE] [--state-dir DIR] [--socket PATH] [--socket-group GROUP]
 *       [--listen ADDR:PORT --tls-cert F --tls-key F --tls-ca F] [--max-clients N]
 *       [--max-tls-clients N] [--max-clients-per-address N] [--tls-handshake-timeout S]
 *       [--tls-idle-timeout S] [--access FILE] [--image-dir DIR]... [--worker PATH]
 *       [--metrics ADDR:PORT] [--shutdown-timeout S] [--keep-running-on-exit] [--verbose]
 *
 * Runs in the foreground and logs to stderr (journald under systemd). At start it re-adopts the
 * workers that outlived the last vmd and starts the VMs marked autostart. SIGTERM/SIGINT stop the
 * VMs gracefully (ACPI), within --shutdown-timeout, then vmd; with --keep-running-on-exit only vmd
 * ends, and the next vmd re-adopts the workers (host_lifecycle.c). SIGHUP reloads the access file.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/vmd.h"
#include "vmm/log.h"

#define DEFAULT_CONFIG "/etc/vmd/vmd.json"
#define DEFAULT_STATE_DIR "/var/lib/vmd"
#define DEFAULT_SOCKET "/run/vmd/vmd.sock"

/* Numeric limits: option, config key, default and accepted range. Command line > config > default. */
enum {
    LIM_UNIX, LIM_TLS, LIM_PER_ADDR, LIM_HS, LIM_IDLE, LIM_SHUTDOWN,
    Q_VCPUS_VM, Q_MEM_VM, Q_DISKS_VM, Q_VMS, Q_VCPUS, Q_MEM, /* quotas (0: none) */
    NLIMITS
};
static const struct limit_def {
    const char *option, *key;
    unsigned def, min, max;
} limit_defs[NLIMITS] = {
    [LIM_UNIX] = {"--max-clients", "max_clients", 128, 1, 100000},
    [LIM_TLS] = {"--max-tls-clients", "max_tls_clients", 1024, 1, 100000},
    [LIM_PER_ADDR] = {"--max-clients-per-address", "max_clients_per_address", 32, 0, 100000},
    [LIM_HS] = {"--tls-handshake-timeout", "tls_handshake_timeout", 10, 1, 600},
    [LIM_IDLE] = {"--tls-idle-timeout", "tls_idle_timeout", 300, 0, 86400},
    [LIM_SHUTDOWN] = {"--shutdown-timeout", "shutdown_timeout", 30, 1, 3600},
    [Q_VCPUS_VM] = {"--max-vcpus-per-vm", "max_vcpus_per_vm", 0, 0, 64},
    [Q_MEM_VM] = {"--max-memory-mib-per-vm", "max_memory_mib_per_vm", 0, 0, 1048576},
    [Q_DISKS_VM] = {"--max-disks-per-vm", "max_disks_per_vm", 0, 0, 8},
    [Q_VMS] = {"--max-vms", "max_vms", 0, 0, 100000},
    [Q_VCPUS] = {"--max-total-vcpus", "max_total_vcpus", 0, 0, 1000000},
    [Q_MEM] = {"--max-total-memory-mib", "max_total_memory_mib", 0, 0, 1000000000},
};
struct limits {
    unsigned v[NLIMITS];
    bool set[NLIMITS];
};

static int limit_set(struct limits *lim, int i, long long v, const char *where)
{
    const struct limit_def *ld = &limit_defs[i];
    if (v < ld->min || v > ld->max) {
        log_error("%s %s: %lld is not between %u and %u", where, ld->option, v, ld->min, ld->max);
        return -1;
    }
    lim->v[i] = (unsigned)v;
    lim->set[i] = true;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vmd [options]\n"
            "  --config FILE          JSON config (default " DEFAULT_CONFIG " if it exists); options override it\n"
            "  --state-dir DIR        VM definitions, logs and worker sockets (default " DEFAULT_STATE_DIR ")\n"
            "  --socket PATH          local JSON-RPC socket, mode 0660 (default " DEFAULT_SOCKET ")\n"
            "  --socket-group GROUP   group owning the socket (its members may connect)\n"
            "  --listen ADDR:PORT     also serve JSON-RPC over TLS (needs the three --tls-* options)\n"
            "  --tls-cert FILE        server certificate (PEM)\n"
            "  --tls-key FILE         server private key (PEM)\n"
            "  --tls-ca FILE          CA that signs client certificates; clients without one are refused\n"
            "  --max-clients N        simultaneous clients on the Unix socket (default %u)\n"
            "  --max-tls-clients N    simultaneous TLS clients, handshaking ones included (default %u)\n"
            "  --max-clients-per-address N  TLS connections from one source address (default %u, 0: no limit)\n"
            "  --tls-handshake-timeout S    a TLS client must finish its handshake in S s (default %u)\n"
            "  --tls-idle-timeout S   close a TLS client idle for S s (default %u, 0: never; see docs/operations.md)\n"
            "  --max-vcpus-per-vm N, --max-memory-mib-per-vm N, --max-disks-per-vm N,\n"
            "  --max-vms N, --max-total-vcpus N, --max-total-memory-mib N\n"
            "                         quotas on what vm.create may define (default 0: none; totals count\n"
            "                         every defined VM)\n"
            "  --access FILE          JSON map of TLS certificate subjects to roles (admin, read-only);\n"
            "                         without it every CA-signed client is admin; SIGHUP reloads it\n"
            "  --image-dir DIR        where VM kernels, initrds and disks must be (repeatable;\n"
            "                         default STATE_DIR/images)\n"
            "  --worker PATH          the vmd-worker binary (default: next to vmd)\n"
            "  --shutdown-timeout S   on SIGTERM, give the VMs S s to shut down (ACPI) before forcing them\n"
            "                         off (default 30); vmd exits once they are stopped\n"
            "  --keep-running-on-exit on SIGTERM, leave the VMs running (the next vmd re-adopts them)\n"
            "  --metrics ADDR:PORT    serve Prometheus metrics at http://ADDR:PORT/metrics (plain HTTP, no\n"
            "                         authentication: keep it on 127.0.0.1, the default ADDR; see docs/security.md)\n"
            "  --worker-user USER     the unprivileged user workers run as (default vmd; vmd as root)\n"
            "  --no-sandbox           run workers unconfined: as vmd's user, all capabilities, the host's\n"
            "                         file system (for debugging only; docs/security.md)\n"
            "  -v, --verbose          debug logging\n",
            limit_defs[LIM_UNIX].def, limit_defs[LIM_TLS].def, limit_defs[LIM_PER_ADDR].def, limit_defs[LIM_HS].def,
            limit_defs[LIM_IDLE].def);
}

/* ---- configuration ---- */

static char *opt_dup(char **slot, const char *v)
{
    if (*slot) return *slot; /* the command line wins over the config file */
    *slot = v ? strdup(v) : NULL;
    return *slot;
}

/* Add an image directory (the command line's replace the config file's: see load_config). */
static void add_image_dir(struct vmd *d, const char *dir)
{
    char **v = realloc(d->image_dirs, (d->nimage_dirs + 1) * sizeof(*v));
    if (!v || !(v[d->nimage_dirs] = strdup(dir))) {
        fprintf(stderr, "vmd: out of memory\n");
        exit(1);
    }
    d->image_dirs = v;
    d->nimage_dirs++;
}

static int load_config(struct vmd *d, const char *path, bool required, struct limits *lim, bool *verbose)
{
    if (!required && access(path, F_OK) < 0) return 0;
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j || !json_is_object(j)) {
        log_error("config '%s': %s (line %d)", path, j ? "not a JSON object" : e.text, e.line);
        json_decref(j);
        return -EINVAL;
    }
    static const char *const keys[] = {"state_dir", "socket", "socket_group", "listen", "tls_cert", "tls_key",
                                       "tls_ca", "max_clients", "max_tls_clients", "max_clients_per_address",
                                       "tls_handshake_timeout", "tls_idle_timeout", "access", "worker", "verbose",
                                       "max_vcpus_per_vm", "max_memory_mib_per_vm", "max_disks_per_vm", "max_vms",
                                       "max_total_vcpus", "max_total_memory_mib", "image_dirs", "metrics",
                                       "shutdown_timeout", "keep_running_on_exit", "sandbox",
                                       "worker_user"};
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        size_t i;
        for (i = 0; i < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[i], k); i++) {
        }
        if (i == sizeof(keys) / sizeof(keys[0])) {
            log_error("config '%s': unknown key '%s'", path, k);
            json_decref(j);
            return -EINVAL;
        }
    }
    opt_dup(&d->state_dir, json_string_value(json_object_get(j, "state_dir")));
    opt_dup(&d->socket_path, json_string_value(json_object_get(j, "socket")));
    opt_dup(&d->listen, json_string_value(json_object_get(j, "listen")));
    opt_dup(&d->tls_cert, json_string_value(json_object_get(j, "tls_cert")));
    opt_dup(&d->tls_key, json_string_value(json_object_get(j, "tls_key")));
    opt_dup(&d->tls_ca, json_string_value(json_object_get(j, "tls_ca")));
    opt_dup(&d->worker_path, json_string_value(json_object_get(j, "worker")));
    opt_dup(&d->metrics_listen, json_string_value(json_object_get(j, "metrics")));
    opt_dup(&d->worker_user, json_string_value(json_object_get(j, "worker_user")));
    json_t *sb = json_object_get(j, "sandbox");
    if (sb && !json_is_boolean(sb)) {
        log_error("config '%s': sandbox must be true or false", path);
        json_decref(j);
        return -EINVAL;
    }
    if (json_is_false(sb)) d->sandbox = false;
    json_t *dirs = json_object_get(j, "image_dirs");
    if (dirs && !json_is_array(dirs)) {
        log_error("config '%s': image_dirs must be an array of directory paths", path);
        json_decref(j);
        return -EINVAL;
    }
    size_t given = d->nimage_dirs; /* any --image-dir wins over the whole list */
    for (size_t i = 0; i < json_array_size(dirs); i++) {
        const char *s = json_string_value(json_array_get(dirs, i));
        if (!s) {
            log_error("config '%s': image_dirs[%zu] must be a string", path, i);
            json_decref(j);
            return -EINVAL;
        }
        if (!given) add_image_dir(d, s);
    }
    opt_dup(&d->access_path, json_string_value(json_object_get(j, "access")));
    for (int i = 0; i < NLIMITS; i++) {
        json_t *lv = json_object_get(j, limit_defs[i].key);
        if (!lv || lim->set[i]) continue;
        char where[PATH_MAX + 16];
        snprintf(where, sizeof(where), "config '%s':", path);
        if (!json_is_integer(lv)) {
            log_error("%s %s: not an integer", where, limit_defs[i].key);
            json_decref(j);
            return -EINVAL;
        }
        if (limit_set(lim, i, json_integer_value(lv), where)) {
            json_decref(j);
            return -EINVAL;
        }
    }
    if (json_is_true(json_object_get(j, "verbose"))) *verbose = true;
    if (json_is_true(json_object_get(j, "keep_running_on_exit"))) d->keep_running_on_exit = true;
    const char *grp = json_string_value(json_object_get(j, "socket_group"));
    if (grp && d->socket_gid == (gid_t)-1) {
        struct group *g = getgrnam(grp);
        if (!g) {
            log_error("config '%s': socket_group '%s': no such group", path, grp);
            json_decref(j);
            return -EINVAL;
        }
        d->socket_gid = g->gr_gid;
    }
    json_decref(j);
    return 0;
}

/* Every client is a file descriptor: make room for both listeners' limits, the VMs and some
 * slack by raising the soft RLIMIT_NOFILE towards the hard one. */
static void raise_fd_limit(const struct vmd *d)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rlim_t want = (rlim_t)d->max_clients + (d->listen ? d->max_tls_clients : 0) + 1024;
    if (rl.rlim_cur >= want) return;
    rlim_t old = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
        log_warn("open files limit %llu (hard %llu) is below the %llu the client limits need: connections may fail "
                 "with 'too many open files'",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, (unsigned long long)want);
    else
        log_debug("open files limit raised from %llu to %llu", (unsigned long long)old, (unsigned long long)rl.rlim_cur);
}

/* The workers' confinement (docs/security.md): as root, the user they drop to must exist, and
 * STATE_DIR/jail is the empty directory each worker mounts its private root on. */
static int sandbox_init(struct vmd *d, char *err, size_t errlen)
{
    opt_dup(&d->worker_user, "vmd");
    if (!d->sandbox) {
        log_warn("--no-sandbox: workers run unconfined, as uid %u with vmd's capabilities (for debugging only)",
                 (unsigned)geteuid());
        return 0;
    }
    if (geteuid() != 0) { /* nothing to drop to: workers keep vmd's user, with no_new_privs and seccomp */
        d->worker_uid = geteuid();
        d->worker_gid = getegid();
        return 0;
    }
    struct passwd *pw = getpwnam(d->worker_user);
    if (!pw) {
        snprintf(err, errlen,
                 "worker user '%s' does not exist: create it (useradd --system --no-create-home --shell /usr/sbin/nologin "
                 "%s; `make install` does) or name another with --worker-user",
                 d->worker_user, d->worker_user);
        return -ENOENT;
    }
    if (pw->pw_uid == 0 || pw->pw_gid == 0) {
        snprintf(err, errlen, "worker user '%s' is root (uid %u gid %u): workers must not run as root", d->worker_user,
                 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
        return -EINVAL;
    }
    d->worker_uid = pw->pw_uid;
    d->worker_gid = pw->pw_gid;
    char jail[PATH_MAX];
    snprintf(jail, sizeof(jail), "%s/jail", d->state_dir);
    if (mkdir(jail, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "creating %.400s: %s", jail, strerror(e));
        return -e;
    }
    d->jail_dir = strdup(jail);
    log_info("workers run sandboxed as %s (uid %u gid %u)", d->worker_user, (unsigned)d->worker_uid,
             (unsigned)d->worker_gid);
    return 0;
}

/* ---- signals ---- */

static void on_signal(uv_signal_t *s, int sig) { host_shutdown(s->data, sig); }

static void on_sighup(uv_signal_t *s, int sig)
{
    (void)sig;
    clients_reload_access(s->data);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},   {"state-dir", required_argument, 0, 's'},
        {"socket", required_argument, 0, 'S'},   {"socket-group", required_argument, 0, 'g'},
        {"listen", required_argument, 0, 'l'},   {"tls-cert", required_argument, 0, 'C'},
        {"tls-key", required_argument, 0, 'K'},  {"tls-ca", required_argument, 0, 'A'},
        {"max-clients", required_argument, 0, 'm'}, {"worker", required_argument, 0, 'w'},
        {"max-tls-clients", required_argument, 0, 0x100 + LIM_TLS},
        {"max-clients-per-address", required_argument, 0, 0x100 + LIM_PER_ADDR},
        {"tls-handshake-timeout", required_argument, 0, 0x100 + LIM_HS},
        {"tls-idle-timeout", required_argument, 0, 0x100 + LIM_IDLE},
        {"access", required_argument, 0, 'a'},
        {"max-vcpus-per-vm", required_argument, 0, 0x100 + Q_VCPUS_VM},
        {"max-memory-mib-per-vm", required_argument, 0, 0x100 + Q_MEM_VM},
        {"max-disks-per-vm", required_argument, 0, 0x100 + Q_DISKS_VM},
        {"max-vms", required_argument, 0, 0x100 + Q_VMS},
        {"max-total-vcpus", required_argument, 0, 0x100 + Q_VCPUS},
        {"max-total-memory-mib", required_argument, 0, 0x100 + Q_MEM},
        {"verbose", no_argument, 0, 'v'},        {"help", no_argument, 0, 'h'},
        {"image-dir", required_argument, 0, 'i'},
        {"metrics", required_argument, 0, 'M'},
        {"shutdown-timeout", required_argument, 0, 0x100 + LIM_SHUTDOWN},
        {"keep-running-on-exit", no_argument, 0, 'k'},
        {"no-sandbox", no_argument, 0, 0x200}, {"worker-user", required_argument, 0, 0x201},
        {0, 0, 0, 0},
    };
    /* The daemon's state: one per process, reachable from libuv callbacks through handle data. */
    static struct vmd d;
    d.socket_gid = (gid_t)-1;
    d.sandbox = true;
    const char *config = NULL;
    struct limits lim;
    memset(&lim, 0, sizeof(lim));
    bool verbose = false;
    int c;
    log_set_prefix("vmd");
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 's': d.state_dir = strdup(optarg); break;
        case 'S': d.socket_path = strdup(optarg); break;
        case 'g': {
            struct group *g = getgrnam(optarg);
            if (!g) {
                fprintf(stderr, "vmd: --socket-group '%s': no such group\n", optarg);
                return 2;
            }
            d.socket_gid = g->gr_gid;
            break;
        }
        case 'l': d.listen = strdup(optarg); break;
        case 'C': d.tls_cert = strdup(optarg); break;
        case 'K': d.tls_key = strdup(optarg); break;
        case 'A': d.tls_ca = strdup(optarg); break;
        case 'm':
        case 0x100 + LIM_TLS:
        case 0x100 + LIM_PER_ADDR:
        case 0x100 + LIM_HS:
        case 0x100 + LIM_IDLE:
        case 0x100 + LIM_SHUTDOWN:
        case 0x100 + Q_VCPUS_VM:
        case 0x100 + Q_MEM_VM:
        case 0x100 + Q_DISKS_VM:
        case 0x100 + Q_VMS:
        case 0x100 + Q_VCPUS:
        case 0x100 + Q_MEM: {
            char *end;
            errno = 0;
            long long v = strtoll(optarg, &end, 10);
            int i = c == 'm' ? LIM_UNIX : c - 0x100;
            if (errno || end == optarg || *end) {
                fprintf(stderr, "vmd: %s '%s': not a number\n", limit_defs[i].option, optarg);
                return 2;
            }
            if (limit_set(&lim, i, v, "vmd:")) return 2;
            break;
        }
        case 'w': d.worker_path = strdup(optarg); break;
        case 'i': add_image_dir(&d, optarg); break;
        case 0x200: d.sandbox = false; break;
        case 0x201: d.worker_user = strdup(optarg); break;
        case 'a': d.access_path = strdup(optarg); break;
        case 'M': d.metrics_listen = strdup(optarg); break;
        case 'k': d.keep_running_on_exit = true; break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vmd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (load_config(&d, config ? config : DEFAULT_CONFIG, config != NULL, &lim, &verbose)) return 2;
    if (verbose) log_set_level(LOG_DEBUG);
    opt_dup(&d.state_dir, DEFAULT_STATE_DIR);
    opt_dup(&d.socket_path, DEFAULT_SOCKET);
    for (int i = 0; i < NLIMITS; i++)
        if (!lim.set[i]) lim.v[i] = limit_defs[i].def;
    d.max_clients = lim.v[LIM_UNIX];
    d.max_tls_clients = lim.v[LIM_TLS];
    d.max_per_address = lim.v[LIM_PER_ADDR];
    d.tls_handshake_timeout_s = lim.v[LIM_HS];
    d.tls_idle_timeout_s = lim.v[LIM_IDLE];
    d.shutdown_timeout_s = lim.v[LIM_SHUTDOWN];
    d.quotas = (struct vmd_quotas){.max_vcpus_per_vm = lim.v[Q_VCPUS_VM], .max_memory_mib_per_vm = lim.v[Q_MEM_VM],
                                   .max_disks_per_vm = lim.v[Q_DISKS_VM], .max_vms = lim.v[Q_VMS],
                                   .max_total_vcpus = lim.v[Q_VCPUS], .max_total_memory_mib = lim.v[Q_MEM]};
    if (!d.worker_path) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
            self[n] = 0;
            char wp[PATH_MAX + 16];
            snprintf(wp, sizeof(wp), "%s/vmd-worker", dirname(self));
            d.worker_path = strdup(wp);
        } else {
            d.worker_path = strdup("vmd-worker");
        }
    }
    if (d.socket_gid == (gid_t)-1) d.socket_gid = getegid();
    if (d.state_dir[0] != '/') {
        char *abs = realpath(d.state_dir, NULL);
        if (!abs && vm_store_mkdirs(d.state_dir, 0750) == 0) abs = realpath(d.state_dir, NULL);
        if (!abs) {
            log_error("state dir '%s': %s", d.state_dir, strerror(errno));
            return 1;
        }
        free(d.state_dir);
        d.state_dir = abs;
    }

    /* One vmd per state dir: a second one would steal the socket and the workers. The lock fd is
     * close-on-exec so that workers do not keep holding it after vmd is gone. */
    char lockpath[PATH_MAX];
    snprintf(lockpath, sizeof(lockpath), "%s/vmd.lock", d.state_dir);
    vm_store_mkdirs(d.state_dir, 0750);
    int lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lockfd < 0 || flock(lockfd, LOCK_EX | LOCK_NB) < 0) {
        log_error("state dir '%s': %s", d.state_dir,
                  errno == EWOULDBLOCK ? "another vmd is already using it" : strerror(errno));
        return 1;
    }

    char perr[512];
    if (sandbox_init(&d, perr, sizeof(perr))) {
        log_error("%s", perr);
        return 1;
    }
    if (image_dirs_init(&d, perr, sizeof(perr))) {
        log_error("%s", perr);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(&d);
    d.loop = uv_default_loop();
    d.started = time(NULL);
    if (metrics_init(&d)) {
        log_error("out of memory");
        return 1;
    }
    if (registry_load(&d)) return 1;
    supervisor_adopt_all(&d); /* the workers that outlived the last vmd */

    char err[512], sockdir[PATH_MAX];
    snprintf(sockdir, sizeof(sockdir), "%s", d.socket_path);
    vm_store_mkdirs(dirname(sockdir), 0755);
    d.unix_listener.ops = &client_ops;
    d.unix_listener.data = &d;
    d.unix_listener.on_accept = clients_accept;
    d.unix_listener.kind = "unix socket";
    d.unix_listener.max_clients = d.max_clients;
    if (rpc_listen_unix(&d.unix_listener, d.loop, d.socket_path, 0660, err, sizeof(err))) {
        log_error("%s", err);
        return 1;
    }
    if (chown(d.socket_path, (uid_t)-1, d.socket_gid) < 0)
        log_warn("socket '%s': chown to group %u: %s", d.socket_path, (unsigned)d.socket_gid, strerror(errno));
    log_info("listening on %s", d.socket_path);

    if (d.access_path) {
        char *abs = realpath(d.access_path, NULL); /* SIGHUP reloads the same file whatever the cwd */
        if (abs) {
            free(d.access_path);
            d.access_path = abs;
        }
        if (access_load(d.access_path, &d.access, err, sizeof(err))) {
            log_error("%s", err);
            return 1;
        }
        log_info("access file %s: %zu subject patterns", d.access_path, access_rule_count(d.access));
        if (!d.listen) log_warn("--access without --listen: Unix-socket clients are always admin");
    }
    d.access_log.what = "refused certificate subjects";

    if (d.listen) {
        d.tls = rpc_tls_server_ctx(d.tls_cert, d.tls_key, d.tls_ca, err, sizeof(err));
        if (!d.tls) {
            log_error("%s", err);
            return 1;
        }
        d.tls_listener.tls = d.tls;
        d.tls_listener.ops = &client_ops;
        d.tls_listener.data = &d;
        d.tls_listener.on_accept = clients_accept;
        d.tls_listener.kind = "TLS listener";
        d.tls_listener.max_clients = d.max_tls_clients;
        d.tls_listener.max_per_address = d.max_per_address;
        d.tls_listener.hs_timeout_ms = d.tls_handshake_timeout_s * 1000;
        if (rpc_listen_tcp(&d.tls_listener, d.loop, d.listen, err, sizeof(err))) {
            log_error("%s", err);
            return 1;
        }
        log_info("listening on %s (TLS, client certificates signed by %s required; at most %u clients, %u per address)",
                 d.listen, d.tls_ca, d.max_tls_clients, d.max_per_address);
    } else if (d.tls_cert || d.tls_key || d.tls_ca) {
        log_warn("--tls-* given without --listen: no TLS listener");
    }

    clients_start_sweep(&d);
    if (d.metrics_listen) {
        if (metrics_listen(&d, d.metrics_listen, err, sizeof(err))) {
            log_error("%s", err);
            return 1;
        }
        log_info("metrics on http://%s/metrics (plain HTTP: anyone who can reach it reads every VM's figures)",
                 d.metrics_listen);
    }

    uv_signal_t sigterm, sigint, sighup;
    uv_signal_init(d.loop, &sigterm);
    uv_signal_init(d.loop, &sigint);
    uv_signal_init(d.loop, &sighup);
    sigterm.data = sigint.data = sighup.data = &d;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sighup, on_sighup, SIGHUP);

    host_autostart(&d); /* after the listeners: clients can follow the starts */
    log_info("vmd %s ready: state dir %s, worker %s", VMD_VERSION, d.state_dir, d.worker_path);
    sd_notify_send("READY=1\nSTATUS=serving JSON-RPC");
    uv_run(d.loop, UV_RUN_DEFAULT);
    metrics_stop(&d);
    unlink(d.socket_path);
    return 0;
}
