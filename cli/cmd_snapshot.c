/* vmctl snapshot|restore NAME SNAP, snapshots NAME, snapshot-delete NAME SNAP: vm.snapshot,
 * vm.restore, vm.snapshots and vm.snapshot.delete. Saves and restores show the worker's
 * progress (vm.snapshot_progress): a bar on a terminal, a line per 10 % otherwise. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"

struct progress {
    bool tty, drawn;
    int last;
};

static void draw_progress(void *opaque, const char *method, json_t *params)
{
    struct progress *pr = opaque;
    if (strcmp(method, "vm.snapshot_progress")) return;
    int pct = (int)json_integer_value(json_object_get(params, "percent"));
    const char *op = json_string_value(json_object_get(params, "op"));
    if (pct < 0) pct = 0;
    if (pct > 100) pct = 100;
    if (pr->tty) {
        char bar[41];
        int fill = pct * 40 / 100;
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(40 - fill));
        bar[40] = 0;
        fprintf(stderr, "\r%-8s [%s] %3d%%", op ? op : "", bar, pct);
        pr->drawn = true;
    } else if (pct / 10 != pr->last / 10 || pr->last < 0) {
        fprintf(stderr, "%s: %d%%\n", op ? op : "progress", pct);
    }
    fflush(stderr);
    pr->last = pct;
}

/* Call with progress display. Returns 0 with *result, or VMCTL_EXIT_FAIL (message printed). */
static int call_with_progress(const char *cmd, const char *method, json_t *params, json_t **result)
{
    struct rpc_client c;
    if (vmctl_connect(&c, cmd)) {
        json_decref(params);
        return VMCTL_EXIT_FAIL;
    }
    struct progress pr = {.tty = isatty(2) && !vmctl_globals.json, .last = -1};
    c.on_notification = draw_progress;
    c.opaque = &pr;
    json_t *error;
    char err[512];
    int r = rpc_client_call(&c, method, params, result, &error, err, sizeof(err));
    rpc_client_close(&c);
    if (pr.drawn) fprintf(stderr, "\n");
    if (r < 0) {
        fprintf(stderr, "vmctl %s: %s\n", cmd, err);
        return VMCTL_EXIT_FAIL;
    }
    if (r == 1) {
        vmctl_print_error(cmd, error);
        json_decref(error);
        return VMCTL_EXIT_FAIL;
    }
    return 0;
}

static int usage2(int argc, char **argv, const char *args)
{
    bool help = argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
    fprintf(help ? stdout : stderr, "usage: vmctl %s %s\n", argv[0], args);
    return help ? VMCTL_EXIT_OK : VMCTL_EXIT_USAGE;
}

static bool bad_args(int argc, char **argv, int want)
{
    if (argc != want) return true;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-') return true;
    return false;
}

int cmd_snapshot(int argc, char **argv)
{
    if (bad_args(argc, argv, 3)) return usage2(argc, argv, "NAME SNAPSHOT");
    json_t *result;
    int rc = call_with_progress("snapshot", "vm.snapshot", json_pack("{s:s, s:s}", "name", argv[1], "snapshot", argv[2]),
                                &result);
    if (rc) return rc;
    if (vmctl_globals.json) {
        vmctl_print_json(result);
    } else {
        double mib = (double)json_integer_value(json_object_get(result, "file_bytes")) / (1024.0 * 1024.0);
        printf("VM '%s': snapshot '%s' saved (%.1f MiB state, %.2f s)\n", argv[1], argv[2], mib,
               json_real_value(json_object_get(result, "save_seconds")));
    }
    json_decref(result);
    return VMCTL_EXIT_OK;
}

int cmd_restore(int argc, char **argv)
{
    if (bad_args(argc, argv, 3)) return usage2(argc, argv, "NAME SNAPSHOT");
    json_t *result;
    int rc = call_with_progress("restore", "vm.restore", json_pack("{s:s, s:s}", "name", argv[1], "snapshot", argv[2]),
                                &result);
    if (rc) return rc;
    if (vmctl_globals.json) vmctl_print_json(result);
    else
        printf("VM '%s' restored from snapshot '%s' (%s)\n", argv[1], argv[2],
               json_string_value(json_object_get(result, "state")) ?: "running");
    json_decref(result);
    return VMCTL_EXIT_OK;
}

int cmd_snapshot_delete(int argc, char **argv)
{
    if (bad_args(argc, argv, 3)) return usage2(argc, argv, "NAME SNAPSHOT");
    json_t *result;
    int rc = vmctl_call("snapshot-delete", "vm.snapshot.delete",
                        json_pack("{s:s, s:s}", "name", argv[1], "snapshot", argv[2]), &result);
    if (rc) return rc;
    if (vmctl_globals.json) vmctl_print_json(result);
    else printf("VM '%s': snapshot '%s' deleted\n", argv[1], argv[2]);
    json_decref(result);
    return VMCTL_EXIT_OK;
}

int cmd_snapshots(int argc, char **argv)
{
    if (bad_args(argc, argv, 2)) return usage2(argc, argv, "NAME");
    json_t *result;
    int rc = vmctl_call("snapshots", "vm.snapshots", json_pack("{s:s}", "name", argv[1]), &result);
    if (rc) return rc;
    if (vmctl_globals.json) {
        vmctl_print_json(result);
        json_decref(result);
        return VMCTL_EXIT_OK;
    }
    json_t *list = json_object_get(result, "snapshots");
    printf("%-24s %-20s %-8s %-8s %10s %6s\n", "SNAPSHOT", "CREATED", "BACKEND", "STATE", "SIZE(MiB)", "DISKS");
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s)
    {
        time_t t = (time_t)json_integer_value(json_object_get(s, "created"));
        struct tm tm;
        char when[32] = "-";
        if (gmtime_r(&t, &tm)) strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", &tm);
        printf("%-24s %-20s %-8s %-8s %10.1f %6zu\n", json_string_value(json_object_get(s, "snapshot")), when,
               json_string_value(json_object_get(s, "backend")) ?: "?", json_string_value(json_object_get(s, "vm_state")) ?: "?",
               (double)json_integer_value(json_object_get(s, "file_bytes")) / (1024.0 * 1024.0),
               json_array_size(json_object_get(s, "disks")));
    }
    json_decref(result);
    return VMCTL_EXIT_OK;
}
