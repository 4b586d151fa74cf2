/* fuzz_worker_stats: libFuzzer target for the worker's `stats` answer as vmd reads it
 * (daemon/stats.c: vm_stats_json). A worker runs next to the guest, so vmd treats what it says
 * as hostile: any JSON, of any shape, must give a vm.stats result with no more vCPU, disk and NIC
 * entries than the definition has, only non-negative counters, the definition's disk paths, and no
 * crash. The first byte picks the definition's vCPU, disk and NIC counts; the rest is the answer.
 *
 * daemon/ is not a library, so stats.c is compiled into this target; registry_find (which only
 * the asynchronous paths of stats.c use, not vm_stats_json) is a stub here. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/stats.c"

struct vm_record *registry_find(struct vmd *d, const char *name)
{
    (void)d;
    (void)name;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_counters(json_t *o)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (json_is_object(v)) check_counters(v);
        else if (json_is_integer(v) && json_integer_value(v) < 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static struct vm_record vm;
    memset(&vm, 0, sizeof(vm));
    snprintf(vm.name, sizeof(vm.name), "fuzz");
    snprintf(vm.accel, sizeof(vm.accel), "emu");
    vm.state = VM_RUNNING;
    vm.cfg.cpus = 1 + (data[0] & 3);
    vm.cfg.ndisks = (data[0] >> 2) & 3;
    vm.cfg.nnets = (data[0] >> 4) & 3;
    vm.cfg.memory_mib = 64;
    static char path[] = "/images/disk.img";
    for (unsigned i = 0; i < vm.cfg.ndisks; i++) vm.cfg.disks[i].path = path;
    vm.stats = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
    json_t *s = vm_stats_json(&vm);
    if (!s) abort();
    json_t *a = json_object_get(s, "vcpu_stats"), *d = json_object_get(s, "disks"), *n = json_object_get(s, "nets");
    if (vm.stats) {
        if (json_array_size(a) > vm.cfg.cpus || json_array_size(d) > vm.cfg.ndisks || json_array_size(n) > vm.cfg.nnets) abort();
        size_t i;
        json_t *e;
        json_array_foreach(d, i, e) if (strcmp(json_string_value(json_object_get(e, "path")), path)) abort();
        json_array_foreach(a, i, e) check_counters(e);
        json_array_foreach(d, i, e) check_counters(e);
        json_array_foreach(n, i, e) check_counters(e);
    }
    char *text = json_dumps(s, 0);
    free(text);
    json_decref(s);
    json_decref(vm.stats);
    vm.stats = NULL;
    return 0;
}
