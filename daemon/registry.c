/* registry: VM definitions and states, loaded from and persisted to STATE_DIR/vms/NAME/.
 * Loading is fault-tolerant: a VM whose config.json is truncated, not JSON or not a valid
 * definition is listed as "broken" with the reason (only vm.delete applies to it), the others
 * load; entries of vms/ that are not VM directories, and VM directories without config.json, are
 * logged and ignored. */
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/vmd.h"
#include "store/cloud_init_seed.h"
#include "store/snap_store.h"
#include "vmm/log.h"
#include "vmm/vm_config_json.h"

#define STATE_BIT(s) (1u << (s))

struct vm_record *registry_find(struct vmd *d, const char *name)
{
    for (struct vm_record *vm = d->vms; vm; vm = vm->next)
        if (!strcmp(vm->name, name)) return vm;
    return NULL;
}

static struct vm_record *record_new(struct vmd *d, const char *name)
{
    struct vm_record *vm = calloc(1, sizeof(*vm));
    if (!vm) return NULL;
    vm->d = d;
    snprintf(vm->name, sizeof(vm->name), "%s", name);
    vm->since = time(NULL);
    vm->exit_status = vm->final_exit_status = -1;
    /* keep the list sorted by name so vm.list is stable */
    struct vm_record **pp = &d->vms;
    while (*pp && strcmp((*pp)->name, name) < 0) pp = &(*pp)->next;
    vm->next = *pp;
    *pp = vm;
    return vm;
}

static void record_free(struct vmd *d, struct vm_record *vm)
{
    /* Nothing may keep pointing at a freed record: its waiters are answered (none are left when
     * the VM was idle, as vm.delete requires), forwards and snapshot operations go by name. */
    waiters_cancel(vm, RPC_ERR_NO_SUCH_VM, "the VM was deleted");
    for (struct vm_record **pp = &d->vms; *pp; pp = &(*pp)->next)
        if (*pp == vm) {
            *pp = vm->next;
            break;
        }
    json_decref(vm->def);
    json_decref(vm->options);
    json_decref(vm->stats);
    vm_config_free(&vm->cfg);
    free(vm->viewers);
    free(vm);
}

static bool pid_file_alive(const char *path, pid_t *pid)
{
    int fd = vm_store_open_regular(path); /* the worker's file: no symlink, no FIFO */
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        return false;
    }
    int p = 0;
    bool ok = fscanf(f, "%d", &p) == 1 && p > 1;
    fclose(f);
    if (!ok) return false;
    *pid = p;
    if (kill(p, 0) < 0 && errno == ESRCH) return false;
    char proc[64], cmd[256] = "";
    snprintf(proc, sizeof(proc), "/proc/%d/cmdline", p);
    f = fopen(proc, "r");
    if (!f) return false;
    size_t n = fread(cmd, 1, sizeof(cmd) - 1, f);
    fclose(f);
    cmd[n] = 0;
    return strstr(cmd, "vmd-worker") != NULL; /* not a recycled pid */
}

int registry_load(struct vmd *d)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/vms", d->state_dir);
    int r = vm_store_mkdirs(path, 0750);
    if (r) {
        log_error("state dir '%s': %s", path, strerror(-r));
        return r;
    }
    DIR *dir = opendir(path);
    if (!dir) {
        log_error("state dir '%s': %s", path, strerror(errno));
        return -errno;
    }
    struct dirent *e;
    while ((e = readdir(dir))) {
        char err[512];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char entry[4096];
        vm_store_path(entry, sizeof(entry), d->state_dir, e->d_name, NULL);
        struct stat est;
        if (e->d_name[0] == '.' || vm_name_check(e->d_name, err, sizeof(err)) || lstat(entry, &est) < 0 ||
            !S_ISDIR(est.st_mode)) {
            log_warn("state dir: ignoring '%s': not a VM directory", entry);
            continue;
        }
        char cfgpath[4096];
        vm_store_path(cfgpath, sizeof(cfgpath), d->state_dir, e->d_name, "config.json");
        json_error_t jerr;
        json_t *def = json_load_file(cfgpath, 0, &jerr);
        if (!def && access(cfgpath, F_OK) < 0) {
            log_warn("state dir: ignoring '%s': no config.json", entry);
            continue;
        }
        struct vm_config c;
        vm_config_init(&c);
        const char *field;
        char broken[sizeof(((struct vm_record *)0)->reason)] = "";
        char opath[4096];
        vm_store_path(opath, sizeof(opath), d->state_dir, e->d_name, "options.json");
        json_error_t oerr;
        json_t *options = access(opath, F_OK) == 0 ? json_load_file(opath, 0, &oerr) : json_object();
        if (!def) snprintf(broken, sizeof(broken), "config.json: %.400s (line %d)", jerr.text, jerr.line);
        else if (!json_is_object(options))
            snprintf(broken, sizeof(broken), "options.json: %.400s", options ? "not a JSON object" : oerr.text);
        else if (vm_config_from_json(&c, def, err, sizeof(err), &field))
            snprintf(broken, sizeof(broken), "config.json: %.480s", err);
        else if (c.name && strcmp(c.name, e->d_name))
            snprintf(broken, sizeof(broken), "config.json: its name '%.64s' is not its directory's", c.name);
        struct vm_record *vm = record_new(d, e->d_name);
        if (!vm) {
            vm_config_free(&c);
            json_decref(def);
            json_decref(options);
            continue;
        }
        vm->options = options;
        if (broken[0]) {
            /* Listed, so the operator sees it and can delete it; nothing else applies. A worker
             * still running for it is left alone (and not adopted). */
            json_decref(def);
            vm_config_free(&c);
            vm_config_init(&c);
            vm->cfg = c;
            vm->state = VM_BROKEN;
            snprintf(vm->reason, sizeof(vm->reason), "%s", broken);
            snprintf(vm->accel, sizeof(vm->accel), "-");
            log_warn("%s: broken: %s", vm->name, broken);
            continue;
        }
        vm->def = def;
        vm->cfg = c;
        snprintf(vm->accel, sizeof(vm->accel), "%s", vm_accel_name(c.accel));

        char spath[4096];
        vm_store_path(spath, sizeof(spath), d->state_dir, vm->name, "status.json");
        json_t *st = vm_store_read_json(spath);
        enum vm_state s = VM_DEFINED;
        if (st) vm_state_parse(json_string_value(json_object_get(st, "state")), &s);
        if (s == VM_BROKEN) s = VM_DEFINED; /* never persisted by vmd; the definition loaded */
        const char *reason = st ? json_string_value(json_object_get(st, "reason")) : NULL;
        snprintf(vm->reason, sizeof(vm->reason), "%s", reason ? reason : "");
        vm->state = s;
        json_t *es = st ? json_object_get(st, "exit_status") : NULL;
        if (json_is_integer(es) && json_integer_value(es) >= 0 && json_integer_value(es) <= 255)
            vm->exit_status = (int)json_integer_value(es);
        if (st && json_is_integer(json_object_get(st, "since"))) vm->since = (time_t)json_integer_value(json_object_get(st, "since"));
        json_decref(st);

        char ppath[4096];
        vm_store_path(ppath, sizeof(ppath), d->state_dir, vm->name, "worker.pid");
        pid_t pid;
        if (pid_file_alive(ppath, &pid)) {
            vm->pid = pid;
            log_info("%s: worker pid %d is alive: to be re-adopted", vm->name, (int)pid);
        } else if (s == VM_RUNNING || s == VM_PAUSED) {
            vm_set_state(vm, VM_CRASHED, "the worker was gone when vmd started");
        }
        log_info("%s: %s", vm->name, vm_state_name(vm->state));
    }
    closedir(dir);
    return 0;
}

int registry_set_options(struct vmd *d, struct vm_record *vm, json_t *options, char *err, size_t errlen)
{
    char path[4096];
    vm_store_path(path, sizeof(path), d->state_dir, vm->name, "options.json");
    int r = vm_store_write_json(path, options);
    if (r) {
        snprintf(err, errlen, "writing '%s': %s", path, strerror(-r));
        json_decref(options);
        return r;
    }
    json_decref(vm->options);
    vm->options = options;
    return 0;
}

bool vm_autostart(const struct vm_record *vm) { return json_is_true(json_object_get(vm->options, "autostart")); }

struct vm_record *registry_find_request(struct vmd *d, const char *request_id)
{
    for (struct vm_record *vm = d->vms; vm; vm = vm->next) {
        const char *rid = json_string_value(json_object_get(vm->options, "request_id"));
        if (rid && !strcmp(rid, request_id)) return vm;
    }
    return NULL;
}

int registry_write_seed(struct vmd *d, const char *name, const struct vm_config *c, char *err, size_t errlen)
{
    if (!c->cloud_init.user_data) return 0;
    char cfg[4096], seed[4096];
    vm_store_path(cfg, sizeof(cfg), d->state_dir, name, "config.json");
    if (vm_store_path(seed, sizeof(seed), d->state_dir, name, CLOUD_INIT_SEED_FILE)) {
        snprintf(err, errlen, "VM '%s': its directory's path is too long", name);
        return -ENAMETOOLONG;
    }
    /* every timestamp in the image is the definition's: the same definition, the same bytes */
    struct stat st;
    time_t when = stat(cfg, &st) == 0 ? st.st_mtime : 0;
    return cloud_init_seed_write(&c->cloud_init, name, seed, when, err, errlen);
}

int registry_create(struct vmd *d, const json_t *def, const json_t *options, struct vm_config *c,
                    struct vm_record **out, char *err, size_t errlen)
{
    char dir[4096], path[4096], opath[4096];
    vm_store_path(dir, sizeof(dir), d->state_dir, c->name, NULL);
    struct stat st;
    bool existed = stat(dir, &st) == 0; /* an orphan directory (no config.json) is reused */
    int r = vm_store_mkdirs(dir, 0700);
    vm_store_path(path, sizeof(path), d->state_dir, c->name, "config.json");
    vm_store_path(opath, sizeof(opath), d->state_dir, c->name, "options.json");
    /* options.json first: a config.json never exists without the options it was created with */
    if (!r && options) r = vm_store_write_json(opath, options);
    else if (!r) unlink(opath); /* an orphan directory's */
    if (!r) r = vm_store_write_json(path, def);
    if (!r) r = vm_store_write_status(d->state_dir, c->name, VM_DEFINED, "created", 0, -1);
    char seed_err[600] = "";
    if (!r) r = registry_write_seed(d, c->name, c, seed_err, sizeof(seed_err));
    if (r) {
        /* nothing half-created stays behind (ENOSPC, EIO...): no config.json, no new directory */
        if (seed_err[0]) snprintf(err, errlen, "%s", seed_err);
        else snprintf(err, errlen, "writing the definition under '%s': %s", dir, strerror(-r));
        char p[4096];
        vm_store_path(p, sizeof(p), d->state_dir, c->name, "status.json");
        unlink(p);
        unlink(path);
        unlink(opath);
        if (!existed) rmdir(dir);
        return r;
    }
    struct vm_record *vm = record_new(d, c->name);
    if (!vm) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    vm->def = json_deep_copy(def);
    vm->options = options ? json_deep_copy(options) : json_object();
    vm->cfg = *c;
    memset(c, 0, sizeof(*c));
    vm->state = VM_DEFINED;
    snprintf(vm->reason, sizeof(vm->reason), "created");
    snprintf(vm->accel, sizeof(vm->accel), "%s", vm_accel_name(vm->cfg.accel));
    *out = vm;
    return 0;
}

int registry_delete(struct vmd *d, struct vm_record *vm, char *err, size_t errlen)
{
    char dir[4096];
    vm_store_path(dir, sizeof(dir), d->state_dir, vm->name, NULL);
    int sr = snap_store_remove_all(d->state_dir, vm->name); /* the VM's snapshots go with it */
    if (sr) log_warn("%s: removing its snapshots: %s", vm->name, strerror(-sr));
    DIR *dh = opendir(dir);
    if (dh) {
        struct dirent *e;
        while ((e = readdir(dh))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char p[4400];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            if (unlink(p) < 0) log_warn("%s: %s", p, strerror(errno));
        }
        closedir(dh);
    }
    if (rmdir(dir) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "removing '%s': %s", dir, strerror(errno));
        return -errno;
    }
    events_emit(d, "vm.state_changed", json_pack("{s:s, s:s, s:s}", "name", vm->name, "state", "deleted", "reason", "deleted by request"));
    record_free(d, vm);
    return 0;
}

void vm_set_state(struct vm_record *vm, enum vm_state s, const char *reason)
{
    bool changed = vm->state != s || strcmp(vm->reason, reason);
    vm->state = s;
    vm->since = time(NULL);
    snprintf(vm->reason, sizeof(vm->reason), "%s", reason);
    if (s != VM_RUNNING && s != VM_PAUSED) vm->pid = 0;
    if (s == VM_RUNNING || s == VM_PAUSED) vm->exit_status = -1; /* a new run has none yet */
    int r = vm_store_write_status(vm->d->state_dir, vm->name, s, reason, vm->pid, vm->exit_status);
    if (r) log_warn("%s: writing status.json: %s", vm->name, strerror(-r));
    if (vm->op_ends_on_state) vm_op_end(vm, vm->op_id); /* e.g. running again after a reboot */
    if (changed) {
        log_info("%s: %s (%s)", vm->name, vm_state_name(s), reason);
        events_emit(vm->d, "vm.state_changed",
                    json_pack("{s:s, s:s, s:s}", "name", vm->name, "state", vm_state_name(s), "reason", reason));
    }
    waiters_complete(vm);
}

/* vm.info's cloud_init: where the seed is and the sizes of its files (not their texts). */
static json_t *cloud_init_info_json(const struct vm_record *vm)
{
    const struct vm_cloud_init *ci = &vm->cfg.cloud_init;
    if (vm->state == VM_BROKEN || !ci->user_data) return json_null();
    char seed[4096];
    vm_store_path(seed, sizeof(seed), vm->d->state_dir, vm->name, CLOUD_INIT_SEED_FILE);
    char *meta = ci->meta_data ? NULL : cloud_init_default_meta_data(vm->name);
    json_t *files = json_pack("{s:I, s:I}", "user-data", (json_int_t)strlen(ci->user_data), "meta-data",
                              (json_int_t)strlen(ci->meta_data ? ci->meta_data : meta ? meta : ""));
    free(meta);
    if (ci->network_config) json_object_set_new(files, "network-config", json_integer((json_int_t)strlen(ci->network_config)));
    return json_pack("{s:s, s:s, s:o, s:b}", "seed", seed, "volume_id", CLOUD_INIT_VOLUME_ID, "files", files,
                     "meta_data_default", ci->meta_data == NULL);
}

json_t *vm_info_json(const struct vm_record *vm, bool full)
{
    bool live = vm->state == VM_RUNNING || vm->state == VM_PAUSED, broken = vm->state == VM_BROKEN;
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:i, s:s}", "name", vm->name, "state", vm_state_name(vm->state),
                          "reason", vm->reason, "memory_mib", broken ? (json_int_t)0 : (json_int_t)vm->cfg.memory_mib,
                          "vcpus", broken ? 0 : (int)vm->cfg.cpus, "accel", vm->accel);
    json_object_set_new(j, "pid", live && vm->pid ? json_integer(vm->pid) : json_null());
    json_object_set_new(j, "autostart", json_boolean(vm_autostart(vm)));
    json_object_set_new(j, "exit_status", vm->exit_status >= 0 ? json_integer(vm->exit_status) : json_null());
    json_object_set_new(j, "uptime_s", live && vm->started_at ? json_integer((json_int_t)(time(NULL) - vm->started_at)) : json_null());
    /* The address the worker listens on (PORT 0 in the definition means "pick one"). */
    const char *vnc = vm->vnc_address[0] ? vm->vnc_address : vm->cfg.vnc;
    json_object_set_new(j, "vnc", vnc && live ? json_string(vnc) : json_null());
    if (full) {
        json_t *def = vm->def ? json_deep_copy(vm->def) : json_null();
        json_object_del(def, "cloud_init"); /* its texts may hold secrets: only their sizes, below */
        json_object_set_new(j, "definition", def);
        json_object_set_new(j, "cloud_init", cloud_init_info_json(vm));
        json_t *rid = json_object_get(vm->options, "request_id");
        json_object_set_new(j, "request_id", json_is_string(rid) ? json_incref(rid) : json_null());
    }
    return j;
}

/* ---- the per-VM transition guard (see enum vm_op in vmd.h) ---- */

const char *vm_op_name(enum vm_op op)
{
    static const char *const names[] = {"none", "start", "stop", "pause", "resume", "reboot", "snapshot", "restore"};
    return (unsigned)op < sizeof(names) / sizeof(names[0]) ? names[op] : "operation";
}

bool vm_busy_refuse(struct vm_record *vm, struct rpc_call *call)
{
    if (vm->op == VM_OP_NONE) return false;
    char msg[160];
    snprintf(msg, sizeof(msg), "VM '%s' is busy: %s in progress", vm->name, vm_op_name(vm->op));
    rpc_call_error(call, RPC_ERR_WRONG_STATE, msg,
                   json_pack("{s:s, s:s, s:s}", "name", vm->name, "state", vm_state_name(vm->state), "operation",
                             vm_op_name(vm->op)));
    return true;
}

bool vm_broken_refuse(struct vm_record *vm, struct rpc_call *call)
{
    if (vm->state != VM_BROKEN) return false;
    char msg[700];
    snprintf(msg, sizeof(msg), "VM '%s' is broken (%s): only vm.delete applies; or repair config.json and restart vmd",
             vm->name, vm->reason);
    rpc_call_error(call, RPC_ERR_WRONG_STATE, msg, json_pack("{s:s, s:s}", "name", vm->name, "state", "broken"));
    return true;
}

unsigned long vm_op_begin(struct vm_record *vm, enum vm_op op)
{
    vm->op = op;
    vm->op_id = ++vm->d->next_op_id;
    log_debug("%s: %s begins (operation %lu)", vm->name, vm_op_name(op), vm->op_id);
    return vm->op_id;
}

void vm_op_end(struct vm_record *vm, unsigned long id)
{
    if (!id || vm->op_id != id) return;
    log_debug("%s: %s ends (operation %lu, %s)", vm->name, vm_op_name(vm->op), id, vm_state_name(vm->state));
    vm->op = VM_OP_NONE;
    vm->op_id = 0;
    vm->op_ends_on_state = false;
    const struct vm_op_listener *l = vm->op_listener;
    vm->op_listener = NULL;
    if (l && l->ended) l->ended(vm);
}

void vm_op_end_by_name(struct vmd *d, const char *name, unsigned long id)
{
    struct vm_record *vm = registry_find(d, name);
    if (vm) vm_op_end(vm, id);
}

/* ---- events: state changes to subscribed clients ---- */

void events_emit(struct vmd *d, const char *method, json_t *params)
{
    for (struct client *cl = d->clients; cl; cl = cl->next)
        if (cl->events) rpc_conn_notify(cl->conn, method, json_incref(params));
    json_decref(params);
}

/* ---- calls waiting for a VM state (vm.start waits for running, vm.stop for stopped...) ---- */

static void waiter_timer_closed(uv_handle_t *h) { free(h); }

static void waiter_free(struct vm_waiter *w)
{
    if (w->op_id) vm_op_end(w->vm, w->op_id);
    for (struct vm_waiter **pp = &w->vm->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    if (w->timer) {
        uv_timer_stop(w->timer);
        uv_close((uv_handle_t *)w->timer, waiter_timer_closed);
    }
    free(w);
}

static void waiter_timeout(uv_timer_t *t)
{
    struct vm_waiter *w = t->data;
    rpc_call_errorf(w->call, RPC_ERR_TIMEOUT, "VM '%s' did not become %s in time (it is %s)", w->vm->name,
                    vm_state_name(w->want), vm_state_name(w->vm->state));
    waiter_free(w);
}

unsigned long waiter_add(struct vm_record *vm, struct rpc_call *call, unsigned done_mask, enum vm_state want,
                         unsigned timeout_s, unsigned long op_id)
{
    struct vm_waiter *w = calloc(1, sizeof(*w));
    if (!w) {
        vm_op_end(vm, op_id);
        rpc_call_error(call, RPC_INTERNAL_ERROR, "Internal error: out of memory", NULL);
        return 0;
    }
    w->op_id = op_id;
    w->vm = vm;
    w->call = call;
    w->done_mask = done_mask;
    w->want = want;
    w->id = ++vm->d->next_waiter_id;
    w->timer = malloc(sizeof(*w->timer));
    if (w->timer) {
        uv_timer_init(vm->d->loop, w->timer);
        w->timer->data = w;
        uv_timer_start(w->timer, waiter_timeout, (uint64_t)timeout_s * 1000, 0);
    }
    w->next = vm->waiters;
    vm->waiters = w;
    return w->id;
}

void waiters_cancel(struct vm_record *vm, int code, const char *message)
{
    while (vm->waiters) {
        struct vm_waiter *w = vm->waiters;
        rpc_call_error(w->call, code, message, json_pack("{s:s}", "name", vm->name));
        waiter_free(w);
    }
}

void waiters_complete(struct vm_record *vm)
{
    struct vm_waiter *w = vm->waiters;
    while (w) {
        struct vm_waiter *next = w->next;
        if (w->done_mask & STATE_BIT(vm->state)) {
            if (vm->state == w->want)
                rpc_call_result(w->call, vm_info_json(vm, false));
            else
                rpc_call_error(w->call, vm->state == VM_CRASHED ? RPC_ERR_WORKER : RPC_ERR_WRONG_STATE, vm->reason,
                               json_pack("{s:s, s:s}", "name", vm->name, "state", vm_state_name(vm->state)));
            waiter_free(w);
        }
        w = next;
    }
}

void waiter_fail(struct vm_record *vm, unsigned long id, int code, const char *message)
{
    for (struct vm_waiter *w = vm->waiters; w; w = w->next)
        if (w->id == id) {
            rpc_call_error(w->call, code, message, NULL);
            waiter_free(w);
            return;
        }
}
