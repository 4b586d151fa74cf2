/* vmctl stats NAME: a VM's figures (vm.stats): the same the metrics endpoint exposes. */
#include <stdio.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"

static long long num(const json_t *o, const char *k) { return (long long)json_integer_value(json_object_get(o, k)); }

int cmd_stats(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: vmctl stats NAME\n");
        return (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) ? VMCTL_EXIT_OK : VMCTL_EXIT_USAGE;
    }
    json_t *s;
    int rc = vmctl_call("stats", "vm.stats", json_pack("{s:s}", "name", argv[1]), &s);
    if (rc) return rc;
    if (vmctl_globals.json) {
        vmctl_print_json(s);
        json_decref(s);
        return VMCTL_EXIT_OK;
    }
    const char *state = json_string_value(json_object_get(s, "state"));
    printf("name:          %s\n", json_string_value(json_object_get(s, "name")));
    printf("state:         %s\n", state ? state : "?");
    printf("accel:         %s\n", json_string_value(json_object_get(s, "accel")));
    printf("memory:        %lld MiB\n", num(s, "memory_bytes") >> 20);
    if (json_is_integer(json_object_get(s, "uptime_s"))) printf("uptime:        %lld s\n", num(s, "uptime_s"));
    if (json_is_integer(json_object_get(s, "worker_rss_bytes")))
        printf("worker:        pid %lld, RSS %lld MiB\n", num(s, "worker_pid"), num(s, "worker_rss_bytes") >> 20);
    json_t *v;
    size_t i;
    bool emu = !strcmp(json_string_value(json_object_get(s, "accel")), "emu");
    json_array_foreach(json_object_get(s, "vcpu_stats"), i, v) {
        json_t *ex = json_object_get(v, "exits");
        printf("vcpu %zu:        %.2f s CPU", i, json_number_value(json_object_get(v, "cpu_seconds")));
        if (emu) printf(", %lld instructions\n", num(v, "instructions"));
        else printf(", exits: %lld io, %lld mmio, %lld intr, %lld other\n", num(ex, "io"), num(ex, "mmio"), num(ex, "intr"), num(ex, "other"));
    }
    json_array_foreach(json_object_get(s, "disks"), i, v)
        printf("disk %zu:        read %lld B in %lld ops, wrote %lld B in %lld ops, %lld flushes (%s)\n", i, num(v, "read_bytes"),
               num(v, "read_ops"), num(v, "write_bytes"), num(v, "write_ops"), num(v, "flush_ops"),
               json_string_value(json_object_get(v, "path")));
    json_array_foreach(json_object_get(s, "nets"), i, v)
        printf("nic %zu:         rx %lld B / %lld frames (%lld dropped), tx %lld B / %lld frames\n", i, num(v, "rx_bytes"),
               num(v, "rx_packets"), num(v, "rx_dropped"), num(v, "tx_bytes"), num(v, "tx_packets"));
    if (!json_is_array(json_object_get(s, "vcpu_stats"))) printf("counters:      none (the VM has no worker)\n");
    json_decref(s);
    return VMCTL_EXIT_OK;
}
