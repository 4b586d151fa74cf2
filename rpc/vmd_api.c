/* vmd_api: method and parameter table (keep in step with rpc/openrpc.json). */
#include "vmd_api.h"

#include <string.h>

#define NAME_PARAM {"name", RPC_T_STRING, true, 1, 63}
#define NOCHECK 1, 0
#define SNAPSHOT_PARAM {"snapshot", RPC_T_STRING, true, 1, 63}

const struct vmd_api_method vmd_api_methods[] = {
    {"vm.create", 11, {
        NAME_PARAM,
        {"memory_mib", RPC_T_INTEGER, false, 16, 1048576},
        {"vcpus", RPC_T_INTEGER, false, 1, 64},
        {"kernel", RPC_T_STRING, true, 1, 4095},
        {"initrd", RPC_T_STRING, false, 1, 4095},
        {"cmdline", RPC_T_STRING, false, 0, 2047},
        {"accel", RPC_T_STRING, false, 3, 4},
        {"irqchip", RPC_T_STRING, false, 3, 4},
        {"disks", RPC_T_ARRAY, false, 0, 8},
        {"nets", RPC_T_ARRAY, false, 0, 4},
        {"vnc", RPC_T_STRING, false, 3, 127},
    }},
    {"vm.start", 1, {NAME_PARAM}},
    {"vm.stop", 3, {NAME_PARAM, {"force", RPC_T_BOOLEAN, false, NOCHECK}, {"timeout", RPC_T_INTEGER, false, 1, 3600}}},
    {"vm.pause", 1, {NAME_PARAM}},
    {"vm.resume", 1, {NAME_PARAM}},
    {"vm.reboot", 1, {NAME_PARAM}},
    {"vm.delete", 1, {NAME_PARAM}},
    {"vm.list", 0, {{0}}},
    {"vm.info", 1, {NAME_PARAM}},
    {"vm.log", 2, {NAME_PARAM, {"bytes", RPC_T_INTEGER, false, 1, 524288}}},
    {"host.info", 0, {{0}}},
    {"events.subscribe", 0, {{0}}},
    {"events.unsubscribe", 0, {{0}}},
    {"console.attach", 1, {NAME_PARAM}},
    {"console.detach", 1, {NAME_PARAM}},
    {"console.input", 2, {NAME_PARAM, {"data", RPC_T_STRING, true, 0, 65536}}},
    {"vm.snapshot", 2, {NAME_PARAM, SNAPSHOT_PARAM}},
    {"vm.restore", 2, {NAME_PARAM, SNAPSHOT_PARAM}},
    {"vm.snapshots", 1, {NAME_PARAM}},
    {"vm.snapshot.delete", 2, {NAME_PARAM, SNAPSHOT_PARAM}},
};

const size_t vmd_api_nmethods = sizeof(vmd_api_methods) / sizeof(vmd_api_methods[0]);

const struct vmd_api_method *vmd_api_find(const char *name)
{
    for (size_t i = 0; i < vmd_api_nmethods; i++)
        if (!strcmp(vmd_api_methods[i].name, name)) return &vmd_api_methods[i];
    return NULL;
}
