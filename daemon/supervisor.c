/* supervisor: one vmd-worker process per running VM.
 *
 * Start: a socketpair; the worker gets one end as fd 3 (--control-fd 3) and runs in its own
 * session (setsid) so that it outlives vmd. Re-adoption: a worker found alive at start-up
 * (worker.pid) is reached through its Unix socket, worker.sock, and asked for its status.
 * End: for our children, libuv's exit callback gives the exit status or the signal; for an
 * adopted worker (not our child) its connection closes and its pid is polled until gone.
 * Either way the VM becomes stopped (a clean stop the worker reported) or crashed (with the
 * reason), and no other VM is touched.
 * Confinement (docs/security.md): unless --no-sandbox, the worker is told to drop to the worker
 * user (--sandbox UID:GID) in its own mount namespace (--jail), and its VM's directory (status,
 * console log, socket, snapshots) is handed to that user first; vmd keeps config.json and
 * restore-from and the cloud-init seed (rewritten before every start), and never hands its TLS key
 * to a sandboxed worker.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/vmd.h"
#include "store/cloud_init_seed.h"
#include "vmm/log.h"
#include "vmm/seccomp_filter.h"

static void worker_message(struct rpc_conn *c, const char *msg, size_t len);
static void worker_closed(struct rpc_conn *c);
static const struct rpc_conn_ops worker_ops = {.on_message = worker_message, .on_close = worker_closed};

/* The worker is gone: the VM is crashed with why_if_unknown, or else in the last state the
 * worker reported. */
static void worker_gone(struct vm_record *vm, const char *why_if_unknown)
{
    if (vm->worker) {
        vm->worker->data = NULL;
        rpc_conn_close(vm->worker);
        vm->worker = NULL;
    }
    for (size_t i = 0; i < vm->nviewers; i++) rpc_conn_unref(vm->viewers[i]);
    vm->nviewers = 0;
    vm->started_at = 0;
    json_decref(vm->stats); /* a later worker counts from zero */
    vm->stats = NULL;
    vm->exit_status = !why_if_unknown && vm->final_seen ? vm->final_exit_status : -1;
    if (why_if_unknown) vm_set_state(vm, VM_CRASHED, why_if_unknown);
    else if (vm->final_seen) vm_set_state(vm, vm->final_state, vm->final_reason);
    else vm_set_state(vm, VM_STOPPED, "worker exited");
    vm->final_seen = false;
    vm->final_exit_status = -1;
    vm->adopted = false;
}

static void proc_closed(uv_handle_t *h) { free(h); }

static void worker_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    struct vm_record *vm = p->data;
    uv_close((uv_handle_t *)p, proc_closed);
    if (!vm) return;
    vm->proc = NULL;
    char why[400];
    if (term_signal == SIGSYS) { /* the sandbox's seccomp filter: its handler left the call's number */
        char path[4096], text[128] = "", what[160];
        vm_store_path(path, sizeof(path), vm->d->state_dir, vm->name, SECCOMP_VIOLATION_FILE);
        int fd = vm_store_open_regular(path);
        ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
        if (fd >= 0) close(fd);
        text[n > 0 ? n : 0] = 0;
        seccomp_violation_describe(text, what, sizeof(what));
        snprintf(why, sizeof(why), "worker pid %d killed by the sandbox: %s", (int)vm->pid, what);
        log_warn("%s: %s", vm->name, why);
        vm->final_seen = false;
        worker_gone(vm, why);
    } else if (term_signal) {
        snprintf(why, sizeof(why), "worker pid %d killed by signal %d (%s)", (int)vm->pid, term_signal, strsignal(term_signal));
        vm->final_seen = false; /* a signal overrides whatever it said last */
        worker_gone(vm, why);
    } else if (status != 0) {
        snprintf(why, sizeof(why), "worker pid %d exited with status %d", (int)vm->pid, (int)status);
        if (vm->final_seen && vm->final_state == VM_CRASHED) worker_gone(vm, NULL);
        else {
            vm->final_seen = false;
            worker_gone(vm, why);
        }
    } else {
        if (!vm->final_seen) {
            vm->final_seen = true;
            vm->final_state = VM_STOPPED;
            snprintf(vm->final_reason, sizeof(vm->final_reason), "worker exited");
        }
        worker_gone(vm, NULL);
    }
}

static void apply_worker_state(struct vm_record *vm, json_t *st)
{
    enum vm_state s;
    const char *reason = json_string_value(json_object_get(st, "reason"));
    if (vm_state_parse(json_string_value(json_object_get(st, "state")), &s)) return;
    if (!reason) reason = "";
    json_t *accel = json_object_get(st, "accel");
    if (json_is_string(accel)) snprintf(vm->accel, sizeof(vm->accel), "%s", json_string_value(accel));
    json_t *vnc = json_object_get(st, "vnc");
    snprintf(vm->vnc_address, sizeof(vm->vnc_address), "%s", json_is_string(vnc) ? json_string_value(vnc) : "");
    json_t *started = json_object_get(st, "started_at");
    if (json_is_integer(started)) vm->started_at = (time_t)json_integer_value(started);
    json_t *pid = json_object_get(st, "pid");
    if (json_is_integer(pid)) vm->pid = (pid_t)json_integer_value(pid);
    if (s == VM_STOPPED || s == VM_CRASHED) {
        /* the worker is finishing: the state is applied once its process is gone */
        vm->final_seen = true;
        vm->final_state = s;
        snprintf(vm->final_reason, sizeof(vm->final_reason), "%s", reason);
        json_t *es = json_object_get(st, "exit_status");
        vm->final_exit_status = json_is_integer(es) && json_integer_value(es) >= 0 && json_integer_value(es) <= 255
                                    ? (int)json_integer_value(es)
                                    : -1;
        return;
    }
    if (s == VM_RUNNING && !vm->started_at) vm->started_at = time(NULL);
    vm_set_state(vm, s, reason);
}

static void worker_message(struct rpc_conn *c, const char *msg, size_t len)
{
    struct vm_record *vm = c->data;
    if (!vm) return;
    json_t *j = json_loadb(msg, len, 0, NULL);
    const char *method = json_string_value(json_object_get(j, "method"));
    json_t *params = json_object_get(j, "params");
    if (method && !strcmp(method, "state_changed")) {
        apply_worker_state(vm, params);
    } else if (method && !strcmp(method, "snapshot.progress")) {
        if (vm->op_listener && vm->op_listener->progress) vm->op_listener->progress(vm, params);
    } else if (method && !strcmp(method, "console.output")) {
        json_t *data = json_object_get(params, "data");
        if (json_is_string(data)) {
            json_t *n = json_pack("{s:s, s:O}", "name", vm->name, "data", data);
            for (size_t i = 0; i < vm->nviewers; i++) rpc_conn_notify(vm->viewers[i], "console.output", json_incref(n));
            json_decref(n);
        }
    }
    json_decref(j);
}

static bool pid_alive(pid_t pid)
{
    if (pid <= 1 || (kill(pid, 0) < 0 && errno == ESRCH)) return false;
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');
    return !(rp && rp[1] == ' ' && rp[2] == 'Z'); /* a zombie is gone for our purposes */
}

static void reap_timer_closed(uv_handle_t *h) { free(h); }

static void reap_poll(uv_timer_t *t)
{
    struct vm_record *vm = t->data;
    if (pid_alive(vm->pid)) return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, reap_timer_closed);
    vm->reap_timer = NULL;
    if (!vm->final_seen) {
        /* the worker may have written its last state to status.json before exiting */
        char path[4096];
        vm_store_path(path, sizeof(path), vm->d->state_dir, vm->name, "status.json");
        json_t *st = vm_store_read_json(path);
        enum vm_state s;
        if (st && !vm_state_parse(json_string_value(json_object_get(st, "state")), &s) &&
            (s == VM_STOPPED || s == VM_CRASHED) && json_integer_value(json_object_get(st, "pid")) == vm->pid) {
            vm->final_seen = true;
            vm->final_state = s;
            snprintf(vm->final_reason, sizeof(vm->final_reason), "%s", json_string_value(json_object_get(st, "reason")));
            json_t *es = json_object_get(st, "exit_status");
            vm->final_exit_status = json_is_integer(es) && json_integer_value(es) >= 0 && json_integer_value(es) <= 255
                                        ? (int)json_integer_value(es)
                                        : -1;
        }
        json_decref(st);
    }
    char why[200];
    snprintf(why, sizeof(why), "worker pid %d exited (adopted after a vmd restart, so its exit status is unknown)", (int)vm->pid);
    worker_gone(vm, vm->final_seen ? NULL : why);
}

static void worker_closed(struct rpc_conn *c)
{
    struct vm_record *vm = c->data;
    if (!vm || vm->worker != c) return;
    vm->worker = NULL;
    if (vm->proc) return; /* our child: worker_exit_cb decides */
    if (!vm->reap_timer) {
        vm->reap_timer = malloc(sizeof(*vm->reap_timer));
        if (!vm->reap_timer) return;
        uv_timer_init(vm->d->loop, vm->reap_timer);
        vm->reap_timer->data = vm;
        uv_timer_start(vm->reap_timer, reap_poll, 0, 100);
    }
}

/* chown path (not following a symlink) and, for a directory, what is in it, depth levels down,
 * to the worker user. vmd's own files in the VM's directory stay vmd's. */
static int give_tree(struct vmd *d, const char *path, int depth)
{
    struct stat st;
    if (lstat(path, &st) < 0) return -errno;
    if (lchown(path, d->worker_uid, d->worker_gid) < 0) return -errno;
    if (!S_ISDIR(st.st_mode) || depth == 0) return 0;
    DIR *dh = opendir(path);
    if (!dh) return -errno;
    struct dirent *e;
    int r = 0;
    while (!r && (e = readdir(dh))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, "config.json") ||
            !strcmp(e->d_name, "restore-from") || !strcmp(e->d_name, CLOUD_INIT_SEED_FILE))
            continue;
        char p[4400];
        snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
        r = give_tree(d, p, depth - 1);
    }
    closedir(dh);
    return r;
}

int supervisor_give_to_worker(struct vmd *d, const char *path)
{
    if (!d->sandbox || geteuid() != 0) return 0;
    return give_tree(d, path, 3); /* vms/NAME/snapshots/SNAP/FILE */
}

bool supervisor_has_worker(const struct vm_record *vm) { return vm->proc || vm->worker || vm->reap_timer; }

int supervisor_start(struct vm_record *vm, char *err, size_t errlen)
{
    struct vmd *d = vm->d;
    if (supervisor_has_worker(vm)) { /* the last line of defence against a second worker */
        snprintf(err, errlen, "VM '%s' still has a worker (pid %d)", vm->name, (int)vm->pid);
        return -EBUSY;
    }
    char why[600];
    if (image_paths_check(d, &vm->cfg, false, NULL, why, sizeof(why))) {
        snprintf(err, errlen, "VM '%s' cannot start: %s", vm->name, why);
        return -EPERM;
    }
    /* the seed as the definition says, whatever a previous worker did to the directory */
    if (registry_write_seed(d, vm->name, &vm->cfg, why, sizeof(why))) {
        snprintf(err, errlen, "VM '%s' cannot start: %s", vm->name, why);
        return -EIO;
    }
    char vmdir[4096];
    vm_store_path(vmdir, sizeof(vmdir), d->state_dir, vm->name, NULL);
    int gr = supervisor_give_to_worker(d, vmdir);
    if (gr) {
        snprintf(err, errlen, "VM '%s': handing its directory to the worker user: %s", vm->name, strerror(-gr));
        return gr;
    }
    char stale[4200];
    snprintf(stale, sizeof(stale), "%s/%s", vmdir, SECCOMP_VIOLATION_FILE);
    unlink(stale); /* a previous worker's */
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return -errno;
    }
    /* Unconfined, with certificates, vmd hands them to its workers so their VNC consoles offer
     * TLS too; a sandboxed worker never gets vmd's key (docs/security.md). */
    char *args[20] = {d->worker_path, "--state-dir", d->state_dir, "--name", vm->name, "--control-fd", "3"};
    int na = 7;
    char ids[64];
    if (d->sandbox) {
        snprintf(ids, sizeof(ids), "%u:%u", (unsigned)d->worker_uid, (unsigned)d->worker_gid);
        args[na++] = "--sandbox";
        args[na++] = ids;
        if (d->jail_dir) {
            args[na++] = "--jail";
            args[na++] = d->jail_dir;
        }
    } else if (d->tls_cert && d->tls_key) {
        args[na++] = "--vnc-tls-cert";
        args[na++] = d->tls_cert;
        args[na++] = "--vnc-tls-key";
        args[na++] = d->tls_key;
    }
    if (log_get_level() >= LOG_DEBUG) args[na++] = "--verbose";
    args[na] = NULL;
    uv_stdio_container_t stdio[4] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = 2}, /* worker messages go where vmd's go */
        {.flags = UV_INHERIT_FD, .data.fd = 2},
        {.flags = UV_INHERIT_FD, .data.fd = sv[1]},
    };
    uv_process_options_t o = {
        .exit_cb = worker_exit_cb, .file = d->worker_path, .args = args, .stdio = stdio, .stdio_count = 4,
        .flags = UV_PROCESS_DETACHED, /* own session: survives vmd and its terminal */
    };
    uv_process_t *p = calloc(1, sizeof(*p));
    if (!p) {
        close(sv[0]);
        close(sv[1]);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->data = vm;
    int r = uv_spawn(d->loop, p, &o);
    close(sv[1]);
    if (r < 0) {
        close(sv[0]);
        snprintf(err, errlen, "starting worker '%s': %s", d->worker_path, uv_strerror(r));
        uv_close((uv_handle_t *)p, proc_closed);
        return r;
    }
    vm->proc = p;
    vm->pid = p->pid;
    vm->final_seen = false;
    vm->adopted = false;
    struct rpc_conn *c = rpc_conn_new(d->loop, &worker_ops, vm);
    if (c && rpc_conn_open_fd(c, sv[0]) == 0) {
        snprintf(c->peer, sizeof(c->peer), "worker %s (pid %d)", vm->name, (int)p->pid);
        vm->worker = c;
        rpc_conn_start(c);
    }
    log_info("%s: worker pid %d started", vm->name, (int)p->pid);
    return 0;
}

static void adopt_status(void *opaque, json_t *result, json_t *error)
{
    struct rpc_conn *c = opaque;
    struct vm_record *vm = c->data;
    if (!vm) return;
    if (error) {
        log_warn("%s: re-adopted worker did not answer status: %s", vm->name,
                 json_string_value(json_object_get(error, "message")));
        return;
    }
    apply_worker_state(vm, result);
    log_info("%s: re-adopted worker pid %d (%s)", vm->name, (int)vm->pid, vm_state_name(vm->state));
}

static void adopt_connected(struct rpc_conn *c, int status)
{
    struct vm_record *vm = c->data;
    if (!vm) return;
    if (status < 0) {
        char why[256];
        log_warn("%s: worker pid %d is alive but its socket does not answer: %s", vm->name, (int)vm->pid, uv_strerror(status));
        vm->worker = NULL;
        c->data = NULL;
        snprintf(why, sizeof(why), "worker pid %d unreachable after a vmd restart (%s)", (int)vm->pid, uv_strerror(status));
        vm->final_seen = false;
        worker_gone(vm, why);
        return;
    }
    rpc_conn_start(c);
    rpc_conn_call(c, "status", NULL, adopt_status, c);
}

static void supervisor_adopt(struct vm_record *vm)
{
    char path[4096];
    vm_store_path(path, sizeof(path), vm->d->state_dir, vm->name, "worker.sock");
    struct rpc_conn *c = rpc_conn_new(vm->d->loop, &worker_ops, vm);
    if (!c) return;
    vm->worker = c;
    vm->adopted = true;
    if (vm->state != VM_PAUSED) vm->state = VM_RUNNING; /* until the worker says otherwise */
    rpc_conn_connect_unix(c, path, adopt_connected);
}

void supervisor_adopt_all(struct vmd *d)
{
    for (struct vm_record *vm = d->vms; vm; vm = vm->next)
        if (vm->pid && !vm->worker) supervisor_adopt(vm);
}

static void subscribe_done(void *opaque, json_t *result, json_t *error)
{
    (void)opaque;
    (void)result;
    if (error) log_debug("console.subscribe: %s", json_string_value(json_object_get(error, "message")));
}

void supervisor_console_viewer(struct vm_record *vm, struct rpc_conn *c, bool attach)
{
    size_t before = vm->nviewers;
    for (size_t i = 0; i < vm->nviewers; i++)
        if (vm->viewers[i] == c) {
            rpc_conn_unref(c);
            vm->viewers[i] = vm->viewers[--vm->nviewers];
            break;
        }
    if (attach) {
        struct rpc_conn **v = realloc(vm->viewers, (vm->nviewers + 1) * sizeof(*v));
        if (!v) return;
        vm->viewers = v;
        rpc_conn_ref(c);
        vm->viewers[vm->nviewers++] = c;
    }
    if (vm->worker && (before == 0) != (vm->nviewers == 0))
        rpc_conn_call(vm->worker, "console.subscribe", json_pack("{s:b}", "on", vm->nviewers > 0), subscribe_done, NULL);
}
