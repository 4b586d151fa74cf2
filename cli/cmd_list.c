/* vmctl list | info NAME | host: inspection (vm.list, vm.info, host.info). */
#include <stdio.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"

static const char *str_or(const json_t *j, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s && *s ? s : dflt;
}

int cmd_list(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "usage: vmctl list\n");
        return VMCTL_EXIT_USAGE;
    }
    json_t *result;
    int rc = vmctl_call("list", "vm.list", NULL, &result);
    if (rc) return rc;
    if (vmctl_globals.json) {
        vmctl_print_json(result);
    } else {
        printf("%-20s %-8s %-8s %-5s %8s %5s %8s\n", "NAME", "STATE", "PID", "ACCEL", "MEMORY", "VCPUS", "UPTIME");
        size_t i;
        json_t *vm;
        json_array_foreach(result, i, vm) {
            char pid[16] = "-", up[32] = "-";
            if (json_is_integer(json_object_get(vm, "pid"))) snprintf(pid, sizeof(pid), "%lld", (long long)json_integer_value(json_object_get(vm, "pid")));
            if (json_is_integer(json_object_get(vm, "uptime_s"))) vmctl_format_duration(json_integer_value(json_object_get(vm, "uptime_s")), up, sizeof(up));
            printf("%-20s %-8s %-8s %-5s %6lldMi %5lld %8s\n", str_or(vm, "name", "?"), str_or(vm, "state", "?"), pid,
                   str_or(vm, "accel", "-"), (long long)json_integer_value(json_object_get(vm, "memory_mib")),
                   (long long)json_integer_value(json_object_get(vm, "vcpus")), up);
        }
    }
    json_decref(result);
    return VMCTL_EXIT_OK;
}

int cmd_info(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: vmctl info NAME\n");
        return VMCTL_EXIT_USAGE;
    }
    json_t *vm;
    int rc = vmctl_call("info", "vm.info", json_pack("{s:s}", "name", argv[1]), &vm);
    if (rc) return rc;
    if (vmctl_globals.json) {
        vmctl_print_json(vm);
    } else {
        char up[32] = "-";
        if (json_is_integer(json_object_get(vm, "uptime_s"))) vmctl_format_duration(json_integer_value(json_object_get(vm, "uptime_s")), up, sizeof(up));
        json_t *def = json_object_get(vm, "definition");
        printf("name:     %s\n", str_or(vm, "name", "?"));
        printf("state:    %s (%s)\n", str_or(vm, "state", "?"), str_or(vm, "reason", "-"));
        if (json_is_integer(json_object_get(vm, "exit_status")))
            printf("exit status: %lld\n", (long long)json_integer_value(json_object_get(vm, "exit_status")));
        if (json_is_integer(json_object_get(vm, "pid"))) printf("pid:      %lld\n", (long long)json_integer_value(json_object_get(vm, "pid")));
        else printf("pid:      -\n");
        printf("uptime:   %s\n", up);
        printf("accel:    %s\n", str_or(vm, "accel", "-"));
        printf("memory:   %lld MiB\n", (long long)json_integer_value(json_object_get(vm, "memory_mib")));
        printf("vcpus:    %lld\n", (long long)json_integer_value(json_object_get(vm, "vcpus")));
        printf("vnc:      %s\n", str_or(vm, "vnc", "-"));
        printf("autostart: %s\n", json_is_true(json_object_get(vm, "autostart")) ? "on" : "off");
        printf("kernel:   %s\n", str_or(def, "kernel", "-"));
        printf("initrd:   %s\n", str_or(def, "initrd", "-"));
        printf("cmdline:  %s\n", str_or(def, "cmdline", "-"));
        if (json_object_get(def, "firmware")) printf("firmware: %s\n", str_or(def, "firmware", "-"));
        size_t i;
        json_t *disk;
        json_array_foreach(json_object_get(def, "disks"), i, disk) {
            printf("disk%zu:    %s (%s%s)\n", i, str_or(disk, "path", "?"), str_or(disk, "format", "raw"),
                   json_is_true(json_object_get(disk, "readonly")) ? ", readonly" : "");
        }
        json_t *ci = json_object_get(vm, "cloud_init");
        if (json_is_object(ci)) { /* the seed: the files' sizes, never their texts */
            printf("cloud-init: %s (volume %s, read-only disk after the others):", str_or(ci, "seed", "?"),
                   str_or(ci, "volume_id", "?"));
            const char *f;
            json_t *n;
            json_object_foreach(json_object_get(ci, "files"), f, n) printf(" %s %lld B", f, (long long)json_integer_value(n));
            printf("%s\n", json_is_true(json_object_get(ci, "meta_data_default")) ? " (meta-data: vmd's default)" : "");
        }
    }
    json_decref(vm);
    return VMCTL_EXIT_OK;
}

int cmd_host(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: vmctl host\n");
        return VMCTL_EXIT_USAGE;
    }
    json_t *h;
    int rc = vmctl_call("host", "host.info", NULL, &h);
    if (rc) return rc;
    if (vmctl_globals.json) {
        vmctl_print_json(h);
    } else {
        json_t *kvm = json_object_get(h, "kvm"), *vms = json_object_get(h, "vms");
        printf("vmd:      %s on %s\n", str_or(h, "version", "?"), str_or(h, "hostname", "?"));
        printf("cpus:     %lld\n", (long long)json_integer_value(json_object_get(h, "cpus")));
        printf("memory:   %lld MiB\n", (long long)json_integer_value(json_object_get(h, "memory_mib")));
        printf("kvm:      /dev/kvm %s, hardware virtualisation %s\n", json_is_true(json_object_get(kvm, "device")) ? "usable" : "absent",
               json_is_true(json_object_get(kvm, "hw_virt")) ? "yes" : "no");
        printf("vms:      %lld (running %lld, paused %lld, stopped %lld, crashed %lld, defined %lld)\n",
               (long long)json_integer_value(json_object_get(vms, "total")), (long long)json_integer_value(json_object_get(vms, "running")),
               (long long)json_integer_value(json_object_get(vms, "paused")), (long long)json_integer_value(json_object_get(vms, "stopped")),
               (long long)json_integer_value(json_object_get(vms, "crashed")), (long long)json_integer_value(json_object_get(vms, "defined")));
    }
    json_decref(h);
    return VMCTL_EXIT_OK;
}
