/* quota: the operator's bounds on what vm.create may define (vmd's config, docs/operations.md).
 * Per-VM limits (vCPUs, memory, disks) make a definition invalid: -32602 naming the field and the
 * limit. Totals count every defined VM, whatever its state (so starting a defined VM can never
 * go over a quota): number of VMs, vCPUs, memory; going over one is -32011 Quota exceeded. */
#include <stdio.h>

#include "daemon/vmd.h"

static void quota_error(struct rpc_call *call, const char *quota, const char *what, unsigned long long limit,
                        unsigned long long used, unsigned long long requested)
{
    char msg[300];
    snprintf(msg, sizeof(msg), "Quota exceeded: %llu %s defined, %llu more requested; the limit is %llu (%s)", used, what,
             requested, limit, quota);
    rpc_call_error(call, RPC_ERR_QUOTA, msg,
                   json_pack("{s:s, s:I, s:I, s:I}", "quota", quota, "limit", (json_int_t)limit, "used", (json_int_t)used,
                             "requested", (json_int_t)requested));
}

static void per_vm_error(struct rpc_call *call, const char *field, const char *what, unsigned long long value,
                         unsigned long long limit, const char *key)
{
    char msg[300];
    snprintf(msg, sizeof(msg), "Invalid params: %s: %llu %s is over this host's limit of %llu per VM (%s)", field, value, what,
             limit, key);
    rpc_call_error(call, RPC_INVALID_PARAMS, msg, json_pack("{s:s, s:s, s:I}", "field", field, "limit_name", key, "limit", (json_int_t)limit));
}

bool quota_admit_create(struct vmd *d, const struct vm_config *c, struct rpc_call *call)
{
    const struct vmd_quotas *q = &d->quotas;
    if (q->max_vcpus_per_vm && c->cpus > q->max_vcpus_per_vm) {
        per_vm_error(call, "vcpus", "vCPUs", c->cpus, q->max_vcpus_per_vm, "max_vcpus_per_vm");
        return false;
    }
    if (q->max_memory_mib_per_vm && c->memory_mib > q->max_memory_mib_per_vm) {
        per_vm_error(call, "memory_mib", "MiB", c->memory_mib, q->max_memory_mib_per_vm, "max_memory_mib_per_vm");
        return false;
    }
    if (q->max_disks_per_vm && c->ndisks > q->max_disks_per_vm) {
        per_vm_error(call, "disks", "disks", c->ndisks, q->max_disks_per_vm, "max_disks_per_vm");
        return false;
    }
    unsigned long long nvms = 0, vcpus = 0, mem = 0;
    for (struct vm_record *vm = d->vms; vm; vm = vm->next) {
        nvms++;
        vcpus += vm->cfg.cpus;
        mem += vm->cfg.memory_mib;
    }
    if (q->max_vms && nvms + 1 > q->max_vms) {
        quota_error(call, "max_vms", "VMs", q->max_vms, nvms, 1);
        return false;
    }
    if (q->max_total_vcpus && vcpus + c->cpus > q->max_total_vcpus) {
        quota_error(call, "max_total_vcpus", "vCPUs", q->max_total_vcpus, vcpus, c->cpus);
        return false;
    }
    if (q->max_total_memory_mib && mem + c->memory_mib > q->max_total_memory_mib) {
        quota_error(call, "max_total_memory_mib", "MiB of memory", q->max_total_memory_mib, mem, c->memory_mib);
        return false;
    }
    return true;
}
