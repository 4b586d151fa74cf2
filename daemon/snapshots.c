/* snapshots: vmd's snapshot methods (vm.snapshot, vm.restore, vm.snapshots, vm.snapshot.delete).
 * The worker does the work (vmm/snapshot_dir.c) in STATE_DIR/vms/NAME/snapshots/SNAP/
 * (store/snap_store.h); vmd checks names and states, creates and removes the directories, starts a
 * stopped VM from a snapshot, and forwards the worker's progress to the client that asked. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/vmd.h"
#include "store/snap_store.h"
#include "vmm/cpu_backend.h"
#include "vmm/irqchip.h"
#include "vmm/log.h"
#include "vmm/snapshot.h"

#define STATE_BIT(s) (1u << (s))
#define MAX_OPS 64

/* Snapshot operations under way, one per VM at most (the VM's operation, vm_op_begin, keeps it
 * so): whom to send progress to, and whether a worker call is outstanding (busy). A table
 * because the daemon is one loop and the operations are few; entries are keyed by VM name so a
 * deleted VM leaves nothing dangling, and freed when the VM's operation ends. */
static struct snap_op {
    bool used, busy;
    struct vmd *d;
    char vm[64], snap[SNAP_STORE_NAME_MAX + 1], op[16];
    unsigned long op_id;   /* the VM's operation (vm_op_begin) */
    struct rpc_conn *conn; /* the requesting client's connection (a reference: progress stops when it closes) */
    struct rpc_call *call;
} ops[MAX_OPS];

static void op_release(struct snap_op *o)
{
    if (o->conn) rpc_conn_unref(o->conn);
    memset(o, 0, sizeof(*o));
}

static struct snap_op *op_find(const char *vm)
{
    for (int i = 0; i < MAX_OPS; i++)
        if (ops[i].used && !strcmp(ops[i].vm, vm)) return &ops[i];
    return NULL;
}

static struct snap_op *op_start(struct vmd *d, struct client *cl, struct rpc_call *call, const char *vm,
                                const char *snap, const char *op)
{
    struct snap_op *o = op_find(vm);
    for (int i = 0; !o && i < MAX_OPS; i++)
        if (!ops[i].used) o = &ops[i];
    if (!o) return NULL;
    op_release(o);
    o->used = true;
    o->d = d;
    o->conn = cl->conn;
    rpc_conn_ref(o->conn);
    o->call = call;
    snprintf(o->vm, sizeof(o->vm), "%s", vm);
    snprintf(o->snap, sizeof(o->snap), "%s", snap);
    snprintf(o->op, sizeof(o->op), "%s", op);
    return o;
}

/* The VM's listener while a snapshot operation is its transition (vm_op_listener, vmd.h). */
static void op_progress(struct vm_record *vm, json_t *params)
{
    struct snap_op *o = op_find(vm->name);
    if (!o || !o->conn || o->conn->closing) return;
    json_t *pct = json_object_get(params, "percent");
    rpc_conn_notify(o->conn, "vm.snapshot_progress",
                    json_pack("{s:s, s:s, s:s, s:I}", "name", vm->name, "snapshot", o->snap, "op", o->op, "percent",
                              json_integer_value(pct)));
}

static void op_ended(struct vm_record *vm)
{
    struct snap_op *o = op_find(vm->name);
    if (o && !o->busy) op_release(o); /* a busy one is released when the worker answers */
}

static const struct vm_op_listener op_listener = {.progress = op_progress, .ended = op_ended};

static const char *pstr(json_t *p, const char *k) { return json_string_value(json_object_get(p, k)); }

/* Common checks: the VM exists, the snapshot name is valid. Answers the call and returns NULL if not. */
static struct vm_record *lookup(struct vmd *d, struct rpc_call *call, json_t *p)
{
    struct vm_record *vm = registry_find(d, pstr(p, "name"));
    if (!vm) {
        rpc_call_errorf(call, RPC_ERR_NO_SUCH_VM, "no VM named '%s'", pstr(p, "name"));
        return NULL;
    }
    const char *snap = pstr(p, "snapshot");
    char err[256];
    if (snap && snap_name_check(snap, err, sizeof(err))) {
        char msg[300];
        snprintf(msg, sizeof(msg), "Invalid params: %s", err);
        rpc_call_error(call, RPC_INVALID_PARAMS, msg, json_pack("{s:s}", "field", "snapshot"));
        return NULL;
    }
    return vm;
}

/* Whether the snapshot is complete (has meta.json). */
static bool snapshot_exists(struct vmd *d, const char *vm, const char *snap)
{
    char meta[4096];
    snap_store_path(meta, sizeof(meta), d->state_dir, vm, snap, "meta.json");
    return access(meta, F_OK) == 0;
}

static void not_found(struct rpc_call *call, const char *vm, const char *snap)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "VM '%s' has no snapshot named '%s'", vm, snap);
    rpc_call_error(call, RPC_ERR_NO_SUCH_SNAPSHOT, msg, json_pack("{s:s, s:s}", "name", vm, "snapshot", snap));
}

static void worker_done(void *opaque, json_t *result, json_t *error)
{
    struct snap_op *o = opaque;
    bool save = !strcmp(o->op, "snapshot");
    if (error) {
        json_t *code = json_object_get(error, "code");
        const char *msg = json_string_value(json_object_get(error, "message"));
        if (save) {
            int r = snap_store_remove(o->d->state_dir, o->vm, o->snap);
            if (r && r != -ENOENT) log_warn("%s: removing the failed snapshot '%s': %s", o->vm, o->snap, strerror(-r));
        }
        rpc_call_error(o->call, json_is_integer(code) ? (int)json_integer_value(code) : RPC_ERR_WORKER,
                       msg ? msg : "the worker failed", json_pack("{s:s, s:s}", "name", o->vm, "snapshot", o->snap));
        log_warn("%s: %s '%s' failed: %s", o->vm, o->op, o->snap, msg ? msg : "?");
    } else {
        json_t *r = json_deep_copy(result);
        if (!json_is_object(r)) {
            json_decref(r);
            r = json_object();
        }
        json_object_set_new(r, "name", json_string(o->vm));
        json_object_set_new(r, "snapshot", json_string(o->snap));
        json_object_del(r, "dir");
        log_info("%s: %s '%s' done", o->vm, save ? "snapshot" : "restore from", o->snap);
        rpc_call_result(o->call, r);
    }
    o->busy = false;
    vm_op_end_by_name(o->d, o->vm, o->op_id); /* releases o */
    if (o->used) op_release(o);               /* the VM is gone, or a newer operation holds it */
}

void snapshots_take(struct vmd *d, struct client *cl, struct rpc_call *call, json_t *p)
{
    struct vm_record *vm = lookup(d, call, p);
    if (!vm || vm_busy_refuse(vm, call) || vm_broken_refuse(vm, call)) return;
    const char *snap = pstr(p, "snapshot");
    if (!(STATE_BIT(vm->state) & (STATE_BIT(VM_RUNNING) | STATE_BIT(VM_PAUSED))) || !vm->worker) {
        rpc_call_errorf(call, RPC_ERR_WRONG_STATE, "VM '%s' is %s: a snapshot needs a running or paused VM", vm->name,
                        vm_state_name(vm->state));
        return;
    }
    char dir[4096];
    snap_store_path(dir, sizeof(dir), d->state_dir, vm->name, snap, NULL);
    if (mkdir(dir, 0700) < 0) {
        int e = errno;
        if (e == ENOENT) { /* first snapshot of this VM */
            char parent[4096];
            snap_store_path(parent, sizeof(parent), d->state_dir, vm->name, NULL, NULL);
            e = vm_store_mkdirs(parent, 0700) == 0 && mkdir(dir, 0700) == 0 ? 0 : errno;
        }
        if (e == EEXIST) {
            rpc_call_errorf(call, RPC_ERR_EXISTS, "VM '%s' already has a snapshot named '%s'", vm->name, snap);
            return;
        }
        if (e) {
            rpc_call_errorf(call, RPC_ERR_STORAGE, "creating '%s': %s", dir, strerror(e));
            return;
        }
    }
    int gr = supervisor_give_to_worker(d, dir); /* its confined worker writes the snapshot there */
    if (!gr) {
        char parent[4096];
        snap_store_path(parent, sizeof(parent), d->state_dir, vm->name, NULL, NULL);
        gr = lchown(parent, d->sandbox && geteuid() == 0 ? d->worker_uid : (uid_t)-1,
                    d->sandbox && geteuid() == 0 ? d->worker_gid : (gid_t)-1) < 0 ? -errno : 0;
    }
    if (gr) {
        rmdir(dir);
        rpc_call_errorf(call, RPC_ERR_STORAGE, "handing '%s' to the worker user: %s", dir, strerror(-gr));
        return;
    }
    struct snap_op *o = op_start(d, cl, call, vm->name, snap, "snapshot");
    if (!o) {
        rmdir(dir);
        rpc_call_errorf(call, RPC_ERR_WRONG_STATE, "too many snapshot operations under way");
        return;
    }
    o->busy = true;
    o->op_id = vm_op_begin(vm, VM_OP_SNAPSHOT);
    vm->op_listener = &op_listener;
    log_info("%s: snapshot '%s'", vm->name, snap);
    rpc_conn_call(vm->worker, "snapshot", json_pack("{s:s}", "dir", dir), worker_done, o);
}

void snapshots_restore(struct vmd *d, struct client *cl, struct rpc_call *call, json_t *p)
{
    struct vm_record *vm = lookup(d, call, p);
    if (!vm || vm_busy_refuse(vm, call) || vm_broken_refuse(vm, call)) return;
    const char *snap = pstr(p, "snapshot");
    if (!snapshot_exists(d, vm->name, snap)) {
        not_found(call, vm->name, snap);
        return;
    }
    char dir[4096];
    snap_store_path(dir, sizeof(dir), d->state_dir, vm->name, snap, NULL);
    if ((STATE_BIT(vm->state) & (STATE_BIT(VM_RUNNING) | STATE_BIT(VM_PAUSED))) && vm->worker) {
        struct snap_op *o = op_start(d, cl, call, vm->name, snap, "restore");
        if (!o) {
            rpc_call_errorf(call, RPC_ERR_WRONG_STATE, "too many snapshot operations under way");
            return;
        }
        o->busy = true;
        o->op_id = vm_op_begin(vm, VM_OP_RESTORE);
        vm->op_listener = &op_listener;
        log_info("%s: restore from '%s'", vm->name, snap);
        rpc_conn_call(vm->worker, "restore", json_pack("{s:s}", "dir", dir), worker_done, o);
        return;
    }
    if (!(STATE_BIT(vm->state) & (STATE_BIT(VM_DEFINED) | STATE_BIT(VM_STOPPED) | STATE_BIT(VM_CRASHED)))) {
        rpc_call_errorf(call, RPC_ERR_WRONG_STATE, "VM '%s' is %s", vm->name, vm_state_name(vm->state));
        return;
    }
    /* A stopped VM starts from the snapshot. Check the file here so that a bad snapshot leaves
     * the VM stopped with a clear error (the worker checks again, and the disks, before use). */
    char path[4200], err[1024];
    snap_store_path(path, sizeof(path), d->state_dir, vm->name, snap, "vm.snap");
    struct snap_file sf;
    /* written by the VM's (sandboxed, perhaps compromised) worker: vmd follows no symlink of its */
    int plain = vm_store_open_regular(path);
    if (plain < 0) snprintf(err, sizeof(err), "snapshot '%.900s': %s", path, plain == -EINVAL ? "not a regular file" : strerror(-plain));
    else close(plain);
    if (plain < 0 || snap_file_open(&sf, path, err, sizeof(err))) {
        rpc_call_error(call, RPC_ERR_SNAPSHOT_INVALID, err, json_pack("{s:s, s:s}", "name", vm->name, "snapshot", snap));
        return;
    }
    /* the backend the worker will pick (worker.c pick_backend) must be the one that took it */
    const char *backend = vm->cfg.accel == ACCEL_KVM ? "kvm" : vm->cfg.accel == ACCEL_EMU ? "emu"
                          : kvm_host_has_hw_virt()    ? "kvm" : "emu";
    if (irqchip_snapshot_check(&sf, backend, NULL, err, sizeof(err))) {
        snap_file_close(&sf);
        rpc_call_error(call, RPC_ERR_SNAPSHOT_INVALID, err, json_pack("{s:s, s:s}", "name", vm->name, "snapshot", snap));
        return;
    }
    snap_file_close(&sf);
    snap_store_path(path, sizeof(path), d->state_dir, vm->name, snap, "meta.json");
    json_t *meta = vm_store_read_json(path);
    if (!json_is_object(meta)) {
        json_decref(meta);
        rpc_call_errorf(call, RPC_ERR_SNAPSHOT_INVALID, "snapshot '%s' of VM '%s': meta.json is missing or not JSON", snap,
                        vm->name);
        return;
    }
    /* the worker needs the copy of every writable disk: check here, so that a snapshot without
     * them is refused with the VM left stopped rather than a worker failing to start */
    for (unsigned i = 0; i < vm->cfg.ndisks; i++) {
        if (vm->cfg.disks[i].readonly) continue;
        char name[32], copy[4200];
        snprintf(name, sizeof(name), "disk%u.img", i);
        snap_store_path(copy, sizeof(copy), d->state_dir, vm->name, snap, name);
        struct stat st;
        if (stat(copy, &st) < 0 || !S_ISREG(st.st_mode)) {
            json_decref(meta);
            rpc_call_errorf(call, RPC_ERR_SNAPSHOT_INVALID, "snapshot '%s' of VM '%s': its copy of disk %u (%s) is missing",
                            snap, vm->name, i, name);
            return;
        }
    }
    json_int_t mib = json_integer_value(json_object_get(meta, "memory_mib"));
    json_int_t cpus = json_integer_value(json_object_get(meta, "vcpus"));
    size_t ndisks = json_array_size(json_object_get(meta, "disks"));
    json_decref(meta);
    if ((uint64_t)mib != vm->cfg.memory_mib || (unsigned)cpus != vm->cfg.cpus || ndisks != vm->cfg.ndisks) {
        rpc_call_errorf(call, RPC_ERR_SNAPSHOT_INVALID,
                        "snapshot '%s' was taken with %lld MiB, %lld vCPU(s) and %zu disk(s); VM '%s' has %llu MiB, %u "
                        "and %u", snap, (long long)mib, (long long)cpus, ndisks, vm->name,
                        (unsigned long long)vm->cfg.memory_mib, vm->cfg.cpus, vm->cfg.ndisks);
        return;
    }
    vm_store_path(path, sizeof(path), d->state_dir, vm->name, "restore-from");
    unlink(path); /* the VM's directory belongs to its worker: nothing it left there is followed */
    int rfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    FILE *f = rfd >= 0 ? fdopen(rfd, "w") : NULL;
    if (!f && rfd >= 0) close(rfd);
    bool wrote = f && fprintf(f, "%s\n", dir) >= 0;
    if (f && fclose(f)) wrote = false;
    if (!wrote) {
        rpc_call_errorf(call, RPC_ERR_STORAGE, "writing '%s': %s", path, strerror(errno));
        return;
    }
    unsigned long op_id = vm_op_begin(vm, VM_OP_RESTORE);
    int r = supervisor_start(vm, err, sizeof(err));
    if (r) {
        vm_op_end(vm, op_id);
        unlink(path);
        rpc_call_error(call, r == -EBUSY || r == -EPERM ? RPC_ERR_WRONG_STATE : RPC_ERR_WORKER, err, NULL);
        return;
    }
    struct snap_op *o = op_start(d, cl, call, vm->name, snap, "restore"); /* progress only: the waiter answers */
    if (o) {
        o->op_id = op_id;
        vm->op_listener = &op_listener;
    }
    log_info("%s: starting from snapshot '%s'", vm->name, snap);
    waiter_add(vm, call, STATE_BIT(VM_RUNNING) | STATE_BIT(VM_STOPPED) | STATE_BIT(VM_CRASHED), VM_RUNNING, 180, op_id);
}

void snapshots_list(struct vmd *d, struct client *cl, struct rpc_call *call, json_t *p)
{
    (void)cl;
    struct vm_record *vm = lookup(d, call, p);
    if (!vm) return;
    json_t *list = snap_store_list(d->state_dir, vm->name);
    rpc_call_result(call, json_pack("{s:s, s:o}", "name", vm->name, "snapshots", list));
}

void snapshots_delete(struct vmd *d, struct client *cl, struct rpc_call *call, json_t *p)
{
    (void)cl;
    struct vm_record *vm = lookup(d, call, p);
    if (!vm) return;
    const char *snap = pstr(p, "snapshot");
    /* not the snapshot a snapshot or restore of this VM is using (a stopped VM's restore reads it
     * until its worker reports running) */
    struct snap_op *busy = op_find(vm->name);
    if (busy && !strcmp(busy->snap, snap)) {
        rpc_call_errorf(call, RPC_ERR_WRONG_STATE, "VM '%s' is busy: %s of '%s' in progress", vm->name, busy->op, snap);
        return;
    }
    char dir[4096];
    snap_store_path(dir, sizeof(dir), d->state_dir, vm->name, snap, NULL);
    struct stat st;
    if (stat(dir, &st) < 0) {
        not_found(call, vm->name, snap);
        return;
    }
    int r = snap_store_remove(d->state_dir, vm->name, snap);
    if (r) {
        rpc_call_errorf(call, RPC_ERR_STORAGE, "removing '%s': %s", dir, strerror(-r));
        return;
    }
    log_info("%s: snapshot '%s' deleted", vm->name, snap);
    rpc_call_result(call, json_pack("{s:s, s:s, s:b}", "name", vm->name, "snapshot", snap, "deleted", 1));
}
