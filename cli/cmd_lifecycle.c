/* vmctl start|stop|pause|resume|reboot|delete NAME: one lifecycle method each; vmctl autostart
 * NAME on|off (vm.autostart). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"

/* Call method with {name} and report "VM 'x' <done>". */
static int simple(int argc, char **argv, const char *method, const char *done)
{
    const char *cmd = argv[0];
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: vmctl %s NAME\n", cmd);
        return (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) ? VMCTL_EXIT_OK : VMCTL_EXIT_USAGE;
    }
    json_t *result;
    int rc = vmctl_call(cmd, method, json_pack("{s:s}", "name", argv[1]), &result);
    if (rc) return rc;
    if (vmctl_globals.json) vmctl_print_json(result);
    else printf("VM '%s' %s\n", argv[1], done);
    json_decref(result);
    return VMCTL_EXIT_OK;
}

int cmd_start(int argc, char **argv)
{
    static const struct option opts[] = {{"if-not-running", no_argument, 0, 'i'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    static const char usage[] = "usage: vmctl start NAME [--if-not-running]\n";
    bool if_not_running = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': if_not_running = true; break;
        case 'h':
            printf("%sStarts a defined, stopped or crashed VM. --if-not-running: a running VM is success too\n"
                   "(for scripts that retry).\n", usage);
            return VMCTL_EXIT_OK;
        default: fprintf(stderr, "%s", usage); return VMCTL_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "%s", usage);
        return VMCTL_EXIT_USAGE;
    }
    const char *name = argv[optind];
    json_t *params = json_pack("{s:s}", "name", name), *result;
    if (if_not_running) json_object_set_new(params, "if_not_running", json_true());
    int rc = vmctl_call("start", "vm.start", params, &result);
    if (rc) return rc;
    if (vmctl_globals.json) vmctl_print_json(result);
    else printf("VM '%s' %s\n", name, if_not_running ? "is running" : "started");
    json_decref(result);
    return VMCTL_EXIT_OK;
}
int cmd_pause(int argc, char **argv) { return simple(argc, argv, "vm.pause", "paused"); }
int cmd_resume(int argc, char **argv) { return simple(argc, argv, "vm.resume", "resumed"); }
int cmd_reboot(int argc, char **argv) { return simple(argc, argv, "vm.reboot", "rebooting"); }
int cmd_delete(int argc, char **argv) { return simple(argc, argv, "vm.delete", "deleted"); }

int cmd_stop(int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, 0, 'f'}, {"timeout", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    bool force = false;
    long timeout = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "ft:h", opts, NULL)) != -1) {
        switch (c) {
        case 'f': force = true; break;
        case 't': {
            char *end;
            timeout = strtol(optarg, &end, 10);
            if (*end || timeout < 1 || timeout > 3600) {
                fprintf(stderr, "vmctl stop: --timeout '%s': expected seconds between 1 and 3600\n", optarg);
                return VMCTL_EXIT_USAGE;
            }
            break;
        }
        case 'h':
            printf("usage: vmctl stop NAME [--force] [--timeout SECONDS]\n"
                   "Asks the guest to shut down (Ctrl-Alt-Del, ACPI power button); forces it off after the\n"
                   "timeout (default 30 s). --force stops it at once.\n");
            return VMCTL_EXIT_OK;
        default: fprintf(stderr, "usage: vmctl stop NAME [--force] [--timeout SECONDS]\n"); return VMCTL_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: vmctl stop NAME [--force] [--timeout SECONDS]\n");
        return VMCTL_EXIT_USAGE;
    }
    const char *name = argv[optind];
    json_t *params = json_pack("{s:s, s:b}", "name", name, "force", force), *result;
    if (timeout) json_object_set_new(params, "timeout", json_integer(timeout));
    int rc = vmctl_call("stop", "vm.stop", params, &result);
    if (rc) return rc;
    if (vmctl_globals.json) vmctl_print_json(result);
    else printf("VM '%s' stopped (%s)\n", name, json_string_value(json_object_get(result, "reason")));
    json_decref(result);
    return VMCTL_EXIT_OK;
}

int cmd_autostart(int argc, char **argv)
{
    static const char usage[] = "usage: vmctl autostart NAME on|off\n";
    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("%sWith autostart on, vmd starts the VM whenever vmd starts (e.g. after a host reboot).\n", usage);
        return VMCTL_EXIT_OK;
    }
    if (argc != 3 || argv[1][0] == '-' || (strcmp(argv[2], "on") && strcmp(argv[2], "off"))) {
        fprintf(stderr, "%s", usage);
        return VMCTL_EXIT_USAGE;
    }
    bool on = !strcmp(argv[2], "on");
    json_t *result;
    int rc = vmctl_call("autostart", "vm.autostart", json_pack("{s:s, s:b}", "name", argv[1], "autostart", on), &result);
    if (rc) return rc;
    if (vmctl_globals.json) vmctl_print_json(result);
    else printf("VM '%s': autostart %s\n", argv[1], on ? "on" : "off");
    json_decref(result);
    return VMCTL_EXIT_OK;
}
