/* vmd: the VM daemon. Options, the config file, the listeners and the API clients.
 *
 *   vmd [--config FILE] [--state-dir DIR] [--socket PATH] [--socket-group GROUP]
 *       [--listen ADDR:PORT --tls-cert F --tls-key F --tls-ca F] [--max-clients N]
 *       [--image-dir DIR]... [--worker PATH] [--verbose]
 *
 * Runs in the foreground and logs to stderr (journald under systemd). SIGTERM/SIGINT end vmd
 * but not the VMs: their workers keep running and a restarted vmd re-adopts them.
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
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/vmd.h"
#include "vmm/log.h"

#define DEFAULT_CONFIG "/etc/vmd/vmd.json"
#define DEFAULT_STATE_DIR "/var/lib/vmd"
#define DEFAULT_SOCKET "/run/vmd/vmd.sock"
#define DEFAULT_MAX_CLIENTS 128

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
            "  --max-clients N        simultaneous API clients (default %d)\n"
            "  --image-dir DIR        where VM kernels, initrds and disks must be (repeatable;\n"
            "                         default STATE_DIR/images)\n"
            "  --worker PATH          the vmd-worker binary (default: next to vmd)\n"
            "  -v, --verbose          debug logging\n",
            DEFAULT_MAX_CLIENTS);
}

/* ---- clients ---- */

static void client_message(struct rpc_conn *c, const char *msg, size_t len)
{
    struct client *cl = c->data;
    if (!cl) return;
    rpc_handle_message(msg, len, methods_dispatch, cl, &c->sink);
}

static void client_closed(struct rpc_conn *c)
{
    struct client *cl = c->data;
    if (!cl) return; /* refused before it became a client */
    struct vmd *d = cl->d;
    for (struct vm_record *vm = d->vms; vm; vm = vm->next) {
        for (size_t i = 0; i < vm->nviewers; i++)
            if (vm->viewers[i] == c) {
                supervisor_console_viewer(vm, c, false);
                break;
            }
    }
    for (struct client **pp = &d->clients; *pp; pp = &(*pp)->next)
        if (*pp == cl) {
            *pp = cl->next;
            break;
        }
    d->nclients--;
    log_debug("%s: disconnected", c->peer);
    free(cl);
}

static const struct rpc_conn_ops client_ops = {.on_message = client_message, .on_close = client_closed};

static bool uid_in_group(uid_t uid, gid_t gid)
{
    struct passwd *pw = getpwuid(uid);
    if (!pw) return false;
    if (pw->pw_gid == gid) return true;
    gid_t groups[256];
    int n = 256;
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0) return false;
    for (int i = 0; i < n; i++)
        if (groups[i] == gid) return true;
    return false;
}

static bool on_accept(struct rpc_listener *l, struct rpc_conn *c)
{
    struct vmd *d = l->data;
    if (!l->is_tcp && c->has_cred) {
        /* The socket's mode (0660) already limits who can connect; check again from the peer's
         * credentials: root, vmd's own user, or a member of the socket's group. */
        bool ok = c->uid == 0 || c->uid == geteuid() || c->gid == d->socket_gid || uid_in_group(c->uid, d->socket_gid);
        if (!ok) {
            log_warn("%s: refused: not root, not uid %u, not in group %u", c->peer, (unsigned)geteuid(), (unsigned)d->socket_gid);
            return false;
        }
    }
    struct client *cl = calloc(1, sizeof(*cl));
    if (!cl) return false;
    cl->d = d;
    cl->conn = c;
    c->data = cl;
    cl->next = d->clients;
    d->clients = cl;
    d->nclients++;
    log_debug("%s: connected", c->peer);
    return true;
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

static int load_config(struct vmd *d, const char *path, bool required, unsigned *max_clients, bool *verbose)
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
                                       "tls_ca", "max_clients", "worker", "verbose", "image_dirs"};
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
    json_t *mc = json_object_get(j, "max_clients");
    if (json_is_integer(mc) && !*max_clients) *max_clients = (unsigned)json_integer_value(mc);
    if (json_is_true(json_object_get(j, "verbose"))) *verbose = true;
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

/* ---- signals ---- */

static void on_signal(uv_signal_t *s, int sig)
{
    struct vmd *d = s->data;
    log_info("%s: vmd exits; running VMs keep running", strsignal(sig));
    sd_notify_send("STOPPING=1");
    uv_stop(d->loop);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},   {"state-dir", required_argument, 0, 's'},
        {"socket", required_argument, 0, 'S'},   {"socket-group", required_argument, 0, 'g'},
        {"listen", required_argument, 0, 'l'},   {"tls-cert", required_argument, 0, 'C'},
        {"tls-key", required_argument, 0, 'K'},  {"tls-ca", required_argument, 0, 'A'},
        {"max-clients", required_argument, 0, 'm'}, {"worker", required_argument, 0, 'w'},
        {"verbose", no_argument, 0, 'v'},        {"help", no_argument, 0, 'h'},
        {"image-dir", required_argument, 0, 'i'},
        {0, 0, 0, 0},
    };
    /* The daemon's state: one per process, reachable from libuv callbacks through handle data. */
    static struct vmd d;
    d.socket_gid = (gid_t)-1;
    const char *config = NULL;
    unsigned max_clients = 0;
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
        case 'm': max_clients = (unsigned)atoi(optarg); break;
        case 'w': d.worker_path = strdup(optarg); break;
        case 'i': add_image_dir(&d, optarg); break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vmd: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (load_config(&d, config ? config : DEFAULT_CONFIG, config != NULL, &max_clients, &verbose)) return 2;
    if (verbose) log_set_level(LOG_DEBUG);
    opt_dup(&d.state_dir, DEFAULT_STATE_DIR);
    opt_dup(&d.socket_path, DEFAULT_SOCKET);
    d.max_clients = max_clients ? max_clients : DEFAULT_MAX_CLIENTS;
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
    if (image_dirs_init(&d, perr, sizeof(perr))) {
        log_error("%s", perr);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    d.loop = uv_default_loop();
    d.started = time(NULL);
    if (registry_load(&d)) return 1;

    char err[512], sockdir[PATH_MAX];
    snprintf(sockdir, sizeof(sockdir), "%s", d.socket_path);
    vm_store_mkdirs(dirname(sockdir), 0755);
    d.unix_listener.ops = &client_ops;
    d.unix_listener.data = &d;
    d.unix_listener.on_accept = on_accept;
    d.unix_listener.nclients = &d.nclients;
    d.unix_listener.max_clients = d.max_clients;
    if (rpc_listen_unix(&d.unix_listener, d.loop, d.socket_path, 0660, err, sizeof(err))) {
        log_error("%s", err);
        return 1;
    }
    if (chown(d.socket_path, (uid_t)-1, d.socket_gid) < 0)
        log_warn("socket '%s': chown to group %u: %s", d.socket_path, (unsigned)d.socket_gid, strerror(errno));
    log_info("listening on %s", d.socket_path);

    if (d.listen) {
        d.tls = rpc_tls_server_ctx(d.tls_cert, d.tls_key, d.tls_ca, err, sizeof(err));
        if (!d.tls) {
            log_error("%s", err);
            return 1;
        }
        d.tls_listener.tls = d.tls;
        d.tls_listener.ops = &client_ops;
        d.tls_listener.data = &d;
        d.tls_listener.on_accept = on_accept;
        d.tls_listener.nclients = &d.nclients;
        d.tls_listener.max_clients = d.max_clients;
        if (rpc_listen_tcp(&d.tls_listener, d.loop, d.listen, err, sizeof(err))) {
            log_error("%s", err);
            return 1;
        }
        log_info("listening on %s (TLS, client certificates signed by %s required)", d.listen, d.tls_ca);
    } else if (d.tls_cert || d.tls_key || d.tls_ca) {
        log_warn("--tls-* given without --listen: no TLS listener");
    }

    uv_signal_t sigterm, sigint;
    uv_signal_init(d.loop, &sigterm);
    uv_signal_init(d.loop, &sigint);
    sigterm.data = sigint.data = &d;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);

    log_info("vmd %s ready: state dir %s, worker %s", VMD_VERSION, d.state_dir, d.worker_path);
    sd_notify_send("READY=1\nSTATUS=serving JSON-RPC");
    uv_run(d.loop, UV_RUN_DEFAULT);
    unlink(d.socket_path);
    return 0;
}
