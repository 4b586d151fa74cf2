/* methods: vmd's JSON-RPC methods (see rpc/openrpc.json) and their parameter checks; the calls
 * that wait for a VM state wait through the registry (waiter_add). Every transition
 * (start, stop, pause, resume, reboot, delete; snapshots.c: snapshot, restore) first checks that
 * the VM has none in flight (vm_busy_refuse), then its state, then enters the operation
 * (vm_op_begin) before any side effect; the operation ends with the waiter or forward that
 * learns its outcome. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "daemon/vmd.h"
#include "rpc/vmd_api.h"
#include "vmm/cpu_backend.h"
#include "vmm/log.h"
#include "vmm/vm_config_json.h"

#define STATE_BIT(s) (1u << (s))

/* A request forwarded to a worker; its answer is matched back to the waiter by id (the
 * waiter may already be answered by a state change, or the VM deleted). */
struct forward {
    struct vmd *d;
    char name[64];
    unsigned long waiter_id;
    unsigned long op_id;   /* with call: the VM's operation that ends with the answer */
    struct rpc_call *call; /* answered directly with the worker's result when no waiter */
};

static void forward_done(void *opaque, json_t *result, json_t *error)
{
    struct forward *f = opaque;
    if (f->call) {
        struct vm_record *vm = f->op_id ? registry_find(f->d, f->name) : NULL;
        /* a reboot the worker accepted is under way until the worker reports the VM's state */
        if (vm && !error && vm->op_id == f->op_id) vm->op_ends_on_state = true;
        else if (vm) vm_op_end(vm, f->op_id);
        if (error) rpc_call_error(f->call, RPC_ERR_WORKER, json_string_value(json_object_get(error, "message")), NULL);
        else rpc_call_result(f->call, json_incref(result));
    } else if (error) {
        struct vm_record *vm = registry_find(f->d, f->name);
        /* The worker's connection closed before it answered (a forced stop exits at once): the
         * worker's end decides the state and answers the waiter (or its timeout does). */
        if (vm && (!vm->worker || vm->worker->closing)) vm = NULL;
        json_t *code = json_object_get(error, "code");
        if (vm)
            waiter_fail(vm, f->waiter_id,
                        json_is_integer(code) && json_integer_value(code) == RPC_ERR_WRONG_STATE ? RPC_ERR_WRONG_STATE
                                                                                                : RPC_ERR_WORKER,
                        json_string_value(json_object_get(error, "message")));
    }
    free(f);
}

/* Enter operation op, send method to vm's worker and let call wait for `want`; the wait's end
 * ends the operation. */
static void forward_and_wait(struct vm_record *vm, struct rpc_call *call, enum vm_op op, const char *method,
                             json_t *params, unsigned done_mask, enum vm_state want, unsigned timeout_s)
{
    if (!vm->worker) {
        json_decref(params);
        rpc_call_errorf(call, RPC_ERR_WORKER, "VM '%s': no connection to its worker", vm->name);
        return;
    }
    struct forward *f = calloc(1, sizeof(*f));
    if (!f) {
        json_decref(params);
        rpc_call_error(call, RPC_INTERNAL_ERROR, NULL, NULL);
        return;
    }
    f->waiter_id = waiter_add(vm, call, done_mask, want, timeout_s, vm_op_begin(vm, op));
    if (!f->waiter_id) { /* the call has been answered already (and the operation ended) */
        free(f);
        json_decref(params);
        return;
    }
    f->d = vm->d;
    snprintf(f->name, sizeof(f->name), "%s", vm->name);
    rpc_conn_call(vm->worker, method, params, forward_done, f);
}

/* Send method to vm's worker and answer call with its answer; with op != VM_OP_NONE, the VM is
 * in that operation until the answer comes. */
static void forward_direct(struct vm_record *vm, struct rpc_call *call, enum vm_op op, const char *method,
                           json_t *params)
{
    struct forward *f = calloc(1, sizeof(*f));
    if (!f || !vm->worker) {
        free(f);
        json_decref(params);
        rpc_call_errorf(call, RPC_ERR_WORKER, "VM '%s': no connection to its worker", vm->name);
        return;
    }
    f->call = call;
    f->d = vm->d;
    snprintf(f->name, sizeof(f->name), "%s", vm->name);
    if (op != VM_OP_NONE) f->op_id = vm_op_begin(vm, op);
    rpc_conn_call(vm->worker, method, params, forward_done, f);
}

/* ---- methods ---- */

struct ctx {
    struct vmd *d;
    struct client *cl;
    struct rpc_call *call;
    json_t *p; /* checked params, keyed by name */
};

static void invalid(struct rpc_call *c, const char *field, const char *fmt, const char *detail)
{
    char msg[700];
    snprintf(msg, sizeof(msg), fmt, detail);
    rpc_call_error(c, RPC_INVALID_PARAMS, msg, field ? json_pack("{s:s}", "field", field) : NULL);
}

static const char *pstr(struct ctx *x, const char *k) { return json_string_value(json_object_get(x->p, k)); }

static struct vm_record *find_vm(struct ctx *x)
{
    struct vm_record *vm = registry_find(x->d, pstr(x, "name"));
    if (!vm) {
        char msg[128];
        snprintf(msg, sizeof(msg), "no VM named '%s'", pstr(x, "name"));
        rpc_call_error(x->call, RPC_ERR_NO_SUCH_VM, msg, json_pack("{s:s}", "name", pstr(x, "name")));
    }
    return vm;
}

/* The params of a vm.create as kept in options.json to recognise its retries: all but request_id. */
static json_t *create_request(const json_t *p)
{
    json_t *req = json_deep_copy(p);
    json_object_del(req, "request_id");
    return req;
}

/* A vm.create whose request_id created a VM before: the same request answers that VM (true), a
 * different one -32012 (true); false when the id is new. */
static bool create_retried(struct ctx *x, const char *rid, const json_t *req)
{
    struct vm_record *vm = registry_find_request(x->d, rid);
    if (!vm) return false;
    if (json_equal(json_object_get(vm->options, "request"), (json_t *)req)) {
        log_info("%s: vm.create retried (request_id '%s'): answering the VM it created", vm->name, rid);
        rpc_call_result(x->call, vm_info_json(vm, true));
        return true;
    }
    char msg[400];
    snprintf(msg, sizeof(msg),
             "request_id '%s' was already used to create VM '%s' with different params: retry with the same params, "
             "or use a new request_id",
             rid, vm->name);
    rpc_call_error(x->call, RPC_ERR_REQUEST_CONFLICT, msg, json_pack("{s:s, s:s}", "request_id", rid, "name", vm->name));
    return true;
}

static void m_vm_create(struct ctx *x)
{
    const char *rid = pstr(x, "request_id");
    json_t *req = create_request(x->p);
    json_t *options = NULL, *def = NULL;
    struct vm_config c;
    vm_config_init(&c);
    if (rid && create_retried(x, rid, req)) goto out;
    /* the machine's definition: the params without vmd's own options */
    json_t *machine = json_deep_copy(req);
    json_object_del(machine, "autostart");
    char err[600];
    const char *field = NULL;
    int bad = vm_config_from_json(&c, machine, err, sizeof(err), &field);
    json_decref(machine);
    if (bad) {
        char msg[700];
        bool named = field && !strncmp(err, field, strlen(field)); /* the message may already start with it */
        snprintf(msg, sizeof(msg), "Invalid params: %s%s%s", field && !named ? field : "", field && !named ? ": " : "", err);
        rpc_call_error(x->call, RPC_INVALID_PARAMS, msg, field ? json_pack("{s:s}", "field", field) : NULL);
        goto out;
    }
    if (!quota_admit_create(x->d, &c, x->call)) goto out; /* over a per-VM limit or a total (docs/operations.md) */
    /* The image path policy: every file resolves inside an image dir; the definition keeps the
     * resolved path (image_paths.c). */
    if (image_paths_check(x->d, &c, true, &field, err, sizeof(err))) {
        invalid(x->call, field, "Invalid params: %s", err);
        goto out;
    }
    if (registry_find(x->d, c.name)) {
        rpc_call_errorf(x->call, RPC_ERR_EXISTS, "a VM named '%s' already exists", c.name);
        goto out;
    }
    /* options.json: autostart, and the request (to answer its retries, across vmd restarts too) */
    bool autostart = json_is_true(json_object_get(x->p, "autostart"));
    if (rid || autostart) options = json_pack("{s:b}", "autostart", autostart);
    if (rid) {
        json_object_set_new(options, "request_id", json_string(rid));
        json_object_set(options, "request", req);
    }
    def = vm_config_to_json(&c);
    struct vm_record *vm;
    if (registry_create(x->d, def, options, &c, &vm, err, sizeof(err))) {
        rpc_call_error(x->call, RPC_ERR_STORAGE, err, NULL);
        goto out;
    }
    log_info("%s: defined", vm->name);
    events_emit(x->d, "vm.state_changed", json_pack("{s:s, s:s, s:s}", "name", vm->name, "state", "defined", "reason", "created"));
    rpc_call_result(x->call, vm_info_json(vm, true));
out:
    json_decref(def);
    json_decref(options);
    json_decref(req);
    vm_config_free(&c);
}

static void m_vm_start(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm) return;
    if (json_is_true(json_object_get(x->p, "if_not_running"))) {
        /* idempotent start: already running is success; a start in flight answers with its outcome */
        if (vm->op == VM_OP_NONE && vm->state == VM_RUNNING) {
            rpc_call_result(x->call, vm_info_json(vm, false));
            return;
        }
        if (vm->op == VM_OP_START) {
            waiter_add(vm, x->call, STATE_BIT(VM_RUNNING) | STATE_BIT(VM_STOPPED) | STATE_BIT(VM_CRASHED), VM_RUNNING, 60, 0);
            return;
        }
    }
    if (vm_busy_refuse(vm, x->call) || vm_broken_refuse(vm, x->call)) return;
    if (!(STATE_BIT(vm->state) & (STATE_BIT(VM_DEFINED) | STATE_BIT(VM_STOPPED) | STATE_BIT(VM_CRASHED)))) {
        rpc_call_errorf(x->call, RPC_ERR_WRONG_STATE, "VM '%s' is %s", vm->name, vm_state_name(vm->state));
        return;
    }
    char err[512];
    unsigned long op = vm_op_begin(vm, VM_OP_START);
    int r = supervisor_start(vm, err, sizeof(err));
    if (r) {
        vm_op_end(vm, op);
        rpc_call_error(x->call, r == -EBUSY || r == -EPERM ? RPC_ERR_WRONG_STATE : RPC_ERR_WORKER, err, NULL);
        return;
    }
    waiter_add(vm, x->call, STATE_BIT(VM_RUNNING) | STATE_BIT(VM_STOPPED) | STATE_BIT(VM_CRASHED), VM_RUNNING, 60, op);
}

static void m_vm_stop(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm || vm_busy_refuse(vm, x->call) || vm_broken_refuse(vm, x->call)) return;
    if (!(STATE_BIT(vm->state) & (STATE_BIT(VM_RUNNING) | STATE_BIT(VM_PAUSED)))) {
        rpc_call_errorf(x->call, RPC_ERR_WRONG_STATE, "VM '%s' is %s, not running", vm->name, vm_state_name(vm->state));
        return;
    }
    bool force = json_is_true(json_object_get(x->p, "force"));
    json_t *t = json_object_get(x->p, "timeout");
    int timeout = json_is_integer(t) ? (int)json_integer_value(t) : 30;
    forward_and_wait(vm, x->call, VM_OP_STOP, "stop", json_pack("{s:b, s:i}", "force", force, "timeout", timeout),
                     STATE_BIT(VM_STOPPED) | STATE_BIT(VM_CRASHED), VM_STOPPED, (unsigned)timeout + 15);
}

static void m_vm_pause(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm || vm_busy_refuse(vm, x->call) || vm_broken_refuse(vm, x->call)) return;
    if (vm->state != VM_RUNNING) {
        rpc_call_errorf(x->call, RPC_ERR_WRONG_STATE, "VM '%s' is %s, not running", vm->name, vm_state_name(vm->state));
        return;
    }
    forward_and_wait(vm, x->call, VM_OP_PAUSE, "pause", NULL, STATE_BIT(VM_PAUSED) | STATE_BIT(VM_STOPPED) | STATE_BIT(VM_CRASHED),
                     VM_PAUSED, 15);
}

static void m_vm_resume(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm || vm_busy_refuse(vm, x->call) || vm_broken_refuse(vm, x->call)) return;
    if (vm->state != VM_PAUSED) {
        rpc_call_errorf(x->call, RPC_ERR_WRONG_STATE, "VM '%s' is %s, not paused", vm->name, vm_state_name(vm->state));
        return;
    }
    forward_and_wait(vm, x->call, VM_OP_RESUME, "resume", NULL, STATE_BIT(VM_RUNNING) | STATE_BIT(VM_STOPPED) | STATE_BIT(VM_CRASHED),
                     VM_RUNNING, 15);
}

static void m_vm_reboot(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm || vm_busy_refuse(vm, x->call) || vm_broken_refuse(vm, x->call)) return;
    if (vm->state != VM_RUNNING) {
        rpc_call_errorf(x->call, RPC_ERR_WRONG_STATE, "VM '%s' is %s, not running", vm->name, vm_state_name(vm->state));
        return;
    }
    forward_direct(vm, x->call, VM_OP_REBOOT, "reboot", NULL);
}

static void m_vm_delete(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm || vm_busy_refuse(vm, x->call)) return;
    if (vm->state == VM_RUNNING || vm->state == VM_PAUSED || supervisor_has_worker(vm)) {
        rpc_call_errorf(x->call, RPC_ERR_WRONG_STATE, "VM '%s' is %s: stop it first", vm->name, vm_state_name(vm->state));
        return;
    }
    char err[512];
    char name[64];
    snprintf(name, sizeof(name), "%s", vm->name);
    if (registry_delete(x->d, vm, err, sizeof(err))) {
        rpc_call_error(x->call, RPC_ERR_STORAGE, err, NULL);
        return;
    }
    log_info("%s: deleted", name);
    rpc_call_result(x->call, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
}

static void m_vm_list(struct ctx *x)
{
    json_t *a = json_array();
    for (struct vm_record *vm = x->d->vms; vm; vm = vm->next) json_array_append_new(a, vm_info_json(vm, false));
    rpc_call_result(x->call, a);
}

static void m_vm_info(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (vm) rpc_call_result(x->call, vm_info_json(vm, true));
}

/* vm.log: a window on the VM's kept serial log, console.log.1 followed by console.log, as one
 * byte stream of `total` bytes. With an offset, up to max_bytes from there; without one, the last
 * max_bytes. The files are opened once, so a rotation during the call cannot mix them up. */
static size_t read_at(int fd, char *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)(off + got));
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

static void m_vm_log(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm) return;
    json_t *b = json_object_get(x->p, "bytes"), *mb = json_object_get(x->p, "max_bytes"),
           *off = json_object_get(x->p, "offset");
    if (b && mb) {
        invalid(x->call, "bytes", "Invalid params: %s: give max_bytes (or the older bytes), not both", "bytes");
        return;
    }
    size_t want = mb ? (size_t)json_integer_value(mb) : b ? (size_t)json_integer_value(b) : VM_LOG_DEFAULT_BYTES;
    if (want > x->cl->log_budget) want = x->cl->log_budget; /* what is left of this message's budget */
    char cur[4096], old[4096];
    vm_store_path(cur, sizeof(cur), x->d->state_dir, vm->name, "console.log");
    vm_store_path(old, sizeof(old), x->d->state_dir, vm->name, "console.log.1");
    /* the worker's files (it may be compromised): no symlinks followed, only regular files */
    int fds[2] = {vm_store_open_regular(old), vm_store_open_regular(cur)};
    uint64_t sizes[2] = {0, 0};
    struct stat st;
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0 && fstat(fds[i], &st) == 0) sizes[i] = (uint64_t)st.st_size;
    uint64_t total = sizes[0] + sizes[1];
    uint64_t start = off ? (uint64_t)json_integer_value(off) : total > want ? total - want : 0;
    char *buf = NULL;
    size_t got = 0;
    if (start > total) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Invalid params: offset %llu is past the end of the log (%llu bytes kept)",
                 (unsigned long long)start, (unsigned long long)total);
        rpc_call_error(x->call, RPC_INVALID_PARAMS, msg, json_pack("{s:s, s:I}", "field", "offset", "total", (json_int_t)total));
        goto out;
    }
    size_t n = total - start < want ? (size_t)(total - start) : want;
    buf = malloc(n + 1);
    if (!buf) {
        rpc_call_error(x->call, RPC_INTERNAL_ERROR, NULL, NULL);
        goto out;
    }
    if (start < sizes[0]) {
        size_t k = sizes[0] - start < n ? (size_t)(sizes[0] - start) : n;
        got = read_at(fds[0], buf, k, start);
        if (got < k) n = got; /* the file shrank: stop at what is there */
    }
    if (got < n) got += read_at(fds[1], buf + got, n - got, start + got - sizes[0]);
    x->cl->log_budget -= got;
    char *b64 = rpc_base64_encode(buf, got);
    rpc_call_result(x->call, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I}", "name", vm->name, "data", b64 ? b64 : "",
                                       "bytes", (json_int_t)got, "offset", (json_int_t)start, "next_offset",
                                       (json_int_t)(start + got), "total", (json_int_t)total, "available", (json_int_t)total));
    free(b64);
out:
    free(buf);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) close(fds[i]);
}

static void m_host_info(struct ctx *x)
{
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    struct sysinfo si;
    sysinfo(&si);
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    bool kvm_dev = fd >= 0;
    if (fd >= 0) close(fd);
    unsigned counts[VM_STATE_COUNT] = {0}, total = 0;
    for (struct vm_record *vm = x->d->vms; vm; vm = vm->next) {
        counts[vm->state]++;
        total++;
    }
    json_t *vms = json_pack("{s:i}", "total", total);
    for (int s = VM_DEFINED; s < VM_STATE_COUNT; s++) json_object_set_new(vms, vm_state_name((enum vm_state)s), json_integer(counts[s]));
    rpc_call_result(x->call,
                    json_pack("{s:s, s:s, s:i, s:I, s:{s:b, s:b}, s:o, s:I, s:s}", "version", VMD_VERSION, "hostname", host,
                              "cpus", (int)sysconf(_SC_NPROCESSORS_ONLN), "memory_mib",
                              (json_int_t)((uint64_t)si.totalram * si.mem_unit >> 20), "kvm", "device", kvm_dev,
                              "hw_virt", kvm_host_has_hw_virt(), "vms", vms, "uptime_s",
                              (json_int_t)(time(NULL) - x->d->started), "state_dir", x->d->state_dir));
}

static void m_events_subscribe(struct ctx *x)
{
    x->cl->events = true;
    rpc_call_result(x->call, json_pack("{s:b}", "subscribed", 1));
}

static void m_events_unsubscribe(struct ctx *x)
{
    x->cl->events = false;
    rpc_call_result(x->call, json_pack("{s:b}", "subscribed", 0));
}

static void m_console_attach(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm) return;
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
        rpc_call_errorf(x->call, RPC_ERR_WRONG_STATE, "VM '%s' is %s, not running", vm->name, vm_state_name(vm->state));
        return;
    }
    supervisor_console_viewer(vm, x->cl->conn, true);
    rpc_call_result(x->call, json_pack("{s:s, s:b}", "name", vm->name, "attached", 1));
}

static void m_console_detach(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm) return;
    supervisor_console_viewer(vm, x->cl->conn, false);
    rpc_call_result(x->call, json_pack("{s:s, s:b}", "name", vm->name, "attached", 0));
}

static void m_console_input(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm) return;
    size_t len;
    void *data = rpc_base64_decode(pstr(x, "data"), &len);
    if (!data) {
        invalid(x->call, "data", "Invalid params: %s: must be base64", "data");
        return;
    }
    free(data);
    if (vm->state != VM_RUNNING && vm->state != VM_PAUSED) {
        rpc_call_errorf(x->call, RPC_ERR_WRONG_STATE, "VM '%s' is %s, not running", vm->name, vm_state_name(vm->state));
        return;
    }
    forward_direct(vm, x->call, VM_OP_NONE, "console.input", json_pack("{s:s}", "data", pstr(x, "data")));
}

static void m_vm_autostart(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (!vm || vm_broken_refuse(vm, x->call)) return;
    json_t *options = json_deep_copy(vm->options);
    if (!options) options = json_object();
    bool on = json_is_true(json_object_get(x->p, "autostart"));
    json_object_set_new(options, "autostart", json_boolean(on));
    char err[4200];
    if (registry_set_options(x->d, vm, options, err, sizeof(err))) {
        rpc_call_error(x->call, RPC_ERR_STORAGE, err, NULL);
        return;
    }
    log_info("%s: autostart %s", vm->name, on ? "on" : "off");
    rpc_call_result(x->call, vm_info_json(vm, false));
}

static void m_vm_stats(struct ctx *x)
{
    struct vm_record *vm = find_vm(x);
    if (vm) stats_vm(vm, x->call);
}

static void m_vm_snapshot(struct ctx *x) { snapshots_take(x->d, x->cl, x->call, x->p); }
static void m_vm_restore(struct ctx *x) { snapshots_restore(x->d, x->cl, x->call, x->p); }
static void m_vm_snapshots(struct ctx *x) { snapshots_list(x->d, x->cl, x->call, x->p); }
static void m_vm_snapshot_delete(struct ctx *x) { snapshots_delete(x->d, x->cl, x->call, x->p); }

static const struct {
    const char *name;
    void (*fn)(struct ctx *x);
} handlers[] = {
    {"vm.create", m_vm_create},
    {"vm.start", m_vm_start},
    {"vm.stop", m_vm_stop},
    {"vm.pause", m_vm_pause},
    {"vm.resume", m_vm_resume},
    {"vm.reboot", m_vm_reboot},
    {"vm.delete", m_vm_delete},
    {"vm.list", m_vm_list},
    {"vm.info", m_vm_info},
    {"vm.log", m_vm_log},
    {"host.info", m_host_info},
    {"events.subscribe", m_events_subscribe},
    {"events.unsubscribe", m_events_unsubscribe},
    {"console.attach", m_console_attach},
    {"console.detach", m_console_detach},
    {"console.input", m_console_input},
    {"vm.snapshot", m_vm_snapshot},
    {"vm.restore", m_vm_restore},
    {"vm.snapshots", m_vm_snapshots},
    {"vm.snapshot.delete", m_vm_snapshot_delete},
    {"vm.stats", m_vm_stats},
    {"vm.autostart", m_vm_autostart},
};

void methods_dispatch(void *ctx, struct rpc_call *call)
{
    struct client *cl = ctx;
    metrics_count_call(cl->d, call, call->method);
    const struct vmd_api_method *spec = vmd_api_find(call->method);
    if (!spec) {
        rpc_call_errorf(call, RPC_METHOD_NOT_FOUND, "Method not found: '%s'", call->method);
        return;
    }
    if (cl->role < ROLE_ADMIN && !spec->read_only) { /* roles: see rpc/openrpc.json's x-role */
        char m[160];
        snprintf(m, sizeof(m), "Forbidden: role %s may not call %s", vmd_role_name(cl->role), spec->name);
        rpc_call_error(call, RPC_ERR_FORBIDDEN, m, json_pack("{s:s, s:s}", "role", vmd_role_name(cl->role), "method", spec->name));
        return;
    }
    if (cl->d->shutting_down && !spec->read_only) { /* host_lifecycle.c: nothing may start again */
        rpc_call_errorf(call, RPC_ERR_WRONG_STATE, "vmd is shutting down: it is stopping its VMs; %s is refused", spec->name);
        return;
    }
    struct ctx x = {.d = cl->d, .cl = cl, .call = call};
    char msg[512];
    const char *field;
    if (rpc_check_params(call->params, spec->params, spec->nparams, &x.p, msg, sizeof(msg), &field)) {
        rpc_call_error(call, RPC_INVALID_PARAMS, msg, field ? json_pack("{s:s}", "field", field) : NULL);
        return;
    }
    if (json_object_get(x.p, "name") && strcmp(call->method, "vm.create")) {
        char err[256];
        if (vm_name_check(pstr(&x, "name"), err, sizeof(err))) {
            invalid(call, "name", "Invalid params: %s", err);
            json_decref(x.p);
            return;
        }
    }
    log_debug("%s: %s", cl->conn->peer, call->method);
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (!strcmp(handlers[i].name, spec->name)) {
            handlers[i].fn(&x);
            json_decref(x.p);
            return;
        }
    json_decref(x.p);
    rpc_call_errorf(call, RPC_INTERNAL_ERROR, "Internal error: '%s' has no handler", call->method);
}
