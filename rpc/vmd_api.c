/* vmd_api: method, parameter and role table (keep in step with rpc/openrpc.json). */
#include "vmd_api.h"

#include <string.h>

#define NAME_PARAM {"name", RPC_T_STRING, true, 1, 63}
#define NOCHECK 1, 0
#define SNAPSHOT_PARAM {"snapshot", RPC_T_STRING, true, 1, 63}
#define ADMIN .read_only = false    /* "x-role": "admin" */
#define READ_ONLY .read_only = true /* "x-role": "read-only" */

const struct vmd_api_method vmd_api_methods[] = {
    {"vm.create", 18, {
        NAME_PARAM,
        {"memory_mib", RPC_T_INTEGER, false, 16, 1048576},
        {"vcpus", RPC_T_INTEGER, false, 1, 64},
        {"kernel", RPC_T_STRING, false, 1, 4095},
        {"initrd", RPC_T_STRING, false, 1, 4095},
        {"cmdline", RPC_T_STRING, false, 0, 2047},
        {"accel", RPC_T_STRING, false, 3, 4},
        {"irqchip", RPC_T_STRING, false, 3, 4},
        {"disks", RPC_T_ARRAY, false, 0, 8},
        {"nets", RPC_T_ARRAY, false, 0, 4},
        {"vnc", RPC_T_STRING, false, 3, 127},
        {"request_id", RPC_T_STRING, false, 1, 128},
        {"autostart", RPC_T_BOOLEAN, false, NOCHECK},
        {"cloud_init", RPC_T_OBJECT, false, NOCHECK}, /* its fields: vm_config_from_json */
        {"firmware", RPC_T_STRING, false, 1, 4095},
        {"devices", RPC_T_ARRAY, false, 0, 8},
        {"on_panic", RPC_T_STRING, false, 4, 6},
        {"boot_protocol", RPC_T_INTEGER, false, 32, 64},
    }, ADMIN},
    {"vm.start", 2, {NAME_PARAM, {"if_not_running", RPC_T_BOOLEAN, false, NOCHECK}}, ADMIN},
    {"vm.stop", 3, {NAME_PARAM, {"force", RPC_T_BOOLEAN, false, NOCHECK}, {"timeout", RPC_T_INTEGER, false, 1, 3600}}, ADMIN},
    {"vm.pause", 1, {NAME_PARAM}, ADMIN},
    {"vm.resume", 1, {NAME_PARAM}, ADMIN},
    {"vm.reboot", 1, {NAME_PARAM}, ADMIN},
    {"vm.delete", 1, {NAME_PARAM}, ADMIN},
    {"vm.list", 0, {{0}}, READ_ONLY},
    {"vm.info", 1, {NAME_PARAM}, READ_ONLY},
    {"vm.log", 4, {NAME_PARAM, {"bytes", RPC_T_INTEGER, false, 1, 524288}, {"offset", RPC_T_INTEGER, false, 0, 9007199254740991LL},
                   {"max_bytes", RPC_T_INTEGER, false, 1, 1048576}}, READ_ONLY},
    {"host.info", 0, {{0}}, READ_ONLY},
    {"events.subscribe", 0, {{0}}, READ_ONLY},
    {"events.unsubscribe", 0, {{0}}, READ_ONLY},
    {"console.attach", 1, {NAME_PARAM}, ADMIN},
    {"console.detach", 1, {NAME_PARAM}, ADMIN},
    {"console.input", 2, {NAME_PARAM, {"data", RPC_T_STRING, true, 0, 65536}}, ADMIN},
    {"vm.snapshot", 2, {NAME_PARAM, SNAPSHOT_PARAM}, ADMIN},
    {"vm.restore", 2, {NAME_PARAM, SNAPSHOT_PARAM}, ADMIN},
    {"vm.snapshots", 1, {NAME_PARAM}, READ_ONLY},
    {"vm.snapshot.delete", 2, {NAME_PARAM, SNAPSHOT_PARAM}, ADMIN},
    {"vm.stats", 1, {NAME_PARAM}, READ_ONLY},
    {"vm.autostart", 2, {NAME_PARAM, {"autostart", RPC_T_BOOLEAN, true, NOCHECK}}, ADMIN},
};

const size_t vmd_api_nmethods = sizeof(vmd_api_methods) / sizeof(vmd_api_methods[0]);

const struct vmd_api_method *vmd_api_find(const char *name)
{
    for (size_t i = 0; i < vmd_api_nmethods; i++)
        if (!strcmp(vmd_api_methods[i].name, name)) return &vmd_api_methods[i];
    return NULL;
}
