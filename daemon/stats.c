/* stats: one VM's figures, as vm.stats answers them and the metrics endpoint (metrics.c) exposes
 * them: vmd's own view (state, uptime, guest memory, the worker's resident memory from /proc)
 * joined with the counters the worker reports (its `stats` method, docs/worker-protocol.md):
 * vCPU time, instructions (emu) or exits (kvm), disk and network I/O.
 *
 * The worker's last answer is kept in vm->stats (refreshed by vm.stats and by the metrics
 * endpoint's poll), and dropped when the worker is gone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/vmd.h"
#include "vmm/log.h"

uint64_t worker_rss_bytes(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = pid > 1 ? fopen(path, "r") : NULL;
    if (!f) return 0;
    unsigned long long kib = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %llu kB", &kib) == 1) break;
    fclose(f);
    return (uint64_t)kib * 1024;
}

static json_int_t ival(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? json_integer_value(v) : 0;
}

json_t *vm_stats_json(const struct vm_record *vm)
{
    bool live = vm->state == VM_RUNNING || vm->state == VM_PAUSED;
    const json_t *ws = live ? vm->stats : NULL;
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:i}", "name", vm->name, "state", vm_state_name(vm->state), "accel",
                          vm->accel, "memory_bytes", (json_int_t)vm->cfg.memory_mib << 20, "vcpus", (int)vm->cfg.cpus);
    json_object_set_new(j, "uptime_s", live && vm->started_at ? json_integer((json_int_t)(time(NULL) - vm->started_at)) : json_null());
    json_object_set_new(j, "worker_pid", live && vm->pid ? json_integer(vm->pid) : json_null());
    json_object_set_new(j, "worker_rss_bytes", live && vm->pid ? json_integer((json_int_t)worker_rss_bytes(vm->pid)) : json_null());
    if (!ws) {
        json_object_set_new(j, "vcpu_stats", json_null());
        json_object_set_new(j, "disks", json_null());
        json_object_set_new(j, "nets", json_null());
        return j;
    }
    /* Only what the worker reported, checked and renamed for the API. A worker is vmd's own code
     * but runs next to the guest, so its answer is parsed as hostile: no more entries than the
     * definition has vCPUs, disks and NICs, only the known fields, non-negative integers. */
    json_t *vcpus = json_array(), *disks = json_array(), *nets = json_array(), *e;
    size_t i;
    json_array_foreach(json_object_get(ws, "vcpus"), i, e) {
        if (i >= vm->cfg.cpus) break;
        json_t *ex = json_object_get(e, "exits");
        json_array_append_new(vcpus, json_pack("{s:i, s:f, s:I, s:{s:I, s:I, s:I, s:I}}", "vcpu", (int)i, "cpu_seconds",
                                               (double)ival(e, "cpu_ns") / 1e9, "instructions", ival(e, "instructions"),
                                               "exits", "io", ival(ex, "io"), "mmio", ival(ex, "mmio"), "intr",
                                               ival(ex, "intr"), "other", ival(ex, "other")));
    }
    json_array_foreach(json_object_get(ws, "disks"), i, e) {
        if (i >= vm->cfg.ndisks) break;
        const char *path = vm->cfg.disks[i].path; /* the definition's, not the worker's word */
        json_array_append_new(disks, json_pack("{s:i, s:s, s:I, s:I, s:I, s:I, s:I}", "disk", (int)i, "path", path ? path : "",
                                               "read_bytes", ival(e, "read_bytes"), "write_bytes", ival(e, "write_bytes"),
                                               "read_ops", ival(e, "read_ops"), "write_ops", ival(e, "write_ops"),
                                               "flush_ops", ival(e, "flush_ops")));
    }
    json_array_foreach(json_object_get(ws, "nets"), i, e) {
        if (i >= vm->cfg.nnets) break;
        json_array_append_new(nets, json_pack("{s:i, s:I, s:I, s:I, s:I, s:I}", "nic", (int)i, "rx_bytes", ival(e, "rx_bytes"),
                                              "tx_bytes", ival(e, "tx_bytes"), "rx_packets", ival(e, "rx_packets"),
                                              "tx_packets", ival(e, "tx_packets"), "rx_dropped", ival(e, "rx_dropped")));
    }
    json_object_set_new(j, "vcpu_stats", vcpus);
    json_object_set_new(j, "disks", disks);
    json_object_set_new(j, "nets", nets);
    return j;
}

/* A stats request in flight: by name, since the VM may be deleted before the worker answers. */
struct stats_req {
    struct vmd *d;
    char name[64];
    struct rpc_call *call; /* vm.stats to answer, or NULL (the metrics poll) */
};

static void stats_done(void *opaque, json_t *result, json_t *error)
{
    struct stats_req *r = opaque;
    struct vm_record *vm = registry_find(r->d, r->name);
    if (vm) {
        if (!r->call) vm->stats_pending = false;
        if (!error && json_is_object(result)) {
            json_decref(vm->stats);
            vm->stats = json_incref(result);
        }
    }
    if (r->call) {
        if (!vm) rpc_call_errorf(r->call, RPC_ERR_NO_SUCH_VM, "no VM named '%s'", r->name);
        else if (error && (vm->state == VM_RUNNING || vm->state == VM_PAUSED))
            rpc_call_errorf(r->call, RPC_ERR_WORKER, "VM '%s': its worker did not give its counters: %s", vm->name,
                            json_string_value(json_object_get(error, "message")));
        else rpc_call_result(r->call, vm_stats_json(vm)); /* a VM that stopped meanwhile: no counters */
    }
    free(r);
}

/* Ask vm's worker for its counters; call (may be NULL) is answered with vm_stats_json. Returns
 * false if there is no worker to ask (call not answered). */
static bool stats_request(struct vm_record *vm, struct rpc_call *call)
{
    if (!vm->worker || vm->worker->closing || (vm->state != VM_RUNNING && vm->state != VM_PAUSED)) return false;
    struct stats_req *r = calloc(1, sizeof(*r));
    if (!r) return false;
    r->d = vm->d;
    r->call = call;
    snprintf(r->name, sizeof(r->name), "%s", vm->name);
    if (!call) vm->stats_pending = true;
    rpc_conn_call(vm->worker, "stats", NULL, stats_done, r);
    return true;
}

void stats_vm(struct vm_record *vm, struct rpc_call *call)
{
    if (!stats_request(vm, call)) rpc_call_result(call, vm_stats_json(vm));
}

void stats_refresh_all(struct vmd *d)
{
    for (struct vm_record *vm = d->vms; vm; vm = vm->next)
        if (!vm->stats_pending) stats_request(vm, NULL);
}
