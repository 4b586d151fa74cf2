/* vmctl: the command-line client. Global options select the daemon; each subcommand is in its
 * own file. `vmctl run` needs no daemon; the others speak JSON-RPC to vmd. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "vmm/log.h"

static const struct vmctl_command commands[] = {
    {"run", "run a VM in the foreground, without the daemon", cmd_run},
    {"create", "define a VM in vmd (NAME and the run options)", cmd_create},
    {"start", "start a defined VM", cmd_start},
    {"stop", "stop a VM (graceful, then forced after --timeout; --force at once)", cmd_stop},
    {"pause", "pause a running VM", cmd_pause},
    {"resume", "resume a paused VM", cmd_resume},
    {"reboot", "reset a running VM", cmd_reboot},
    {"delete", "delete a stopped VM's definition and logs", cmd_delete},
    {"autostart", "start a VM whenever vmd starts, or not (NAME on|off)", cmd_autostart},
    {"list", "list VMs", cmd_list},
    {"info", "show one VM", cmd_info},
    {"stats", "show a VM's figures: CPU, memory, instructions or exits, disk and network I/O", cmd_stats},
    {"host", "show the host vmd runs on", cmd_host},
    {"log", "print a VM's serial output so far", cmd_log},
    {"console", "attach to a VM's serial console (Ctrl-] detaches)", cmd_console},
    {"events", "print VM state changes as they happen", cmd_events},
    {"snapshot", "save a running or paused VM's state and disks (NAME SNAPSHOT)", cmd_snapshot},
    {"restore", "bring a VM back to a snapshot (NAME SNAPSHOT); a stopped VM starts from it", cmd_restore},
    {"snapshots", "list a VM's snapshots", cmd_snapshots},
    {"snapshot-delete", "delete a VM's snapshot (NAME SNAPSHOT)", cmd_snapshot_delete},
    {"disk", "make a qcow2 disk image or overlay, locally (disk create [--backing BASE] [--size N] IMAGE)", cmd_disk},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vmctl [--connect unix:PATH | tls://HOST:PORT --cert F --key F --ca F] [--json] COMMAND [OPTIONS]\n\n"
               "  --connect TARGET  vmd to talk to (default $VMD_SOCKET as unix:PATH, else " VMCTL_DEFAULT_SOCKET ")\n"
               "  --cert/--key/--ca client certificate, its key, and the CA that signed vmd's certificate (TLS)\n"
               "  --json            print results as JSON (for scripts)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'vmctl COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    log_set_prefix("vmctl");
    static char default_target[4200];
    const char *env = getenv("VMD_SOCKET");
    if (env && *env) {
        snprintf(default_target, sizeof(default_target), "%s%s", strncmp(env, "unix:", 5) && strncmp(env, "tls://", 6) ? "unix:" : "", env);
        vmctl_globals.connect = default_target;
    } else {
        vmctl_globals.connect = VMCTL_DEFAULT_SOCKET;
    }
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--connect") ? &vmctl_globals.connect
                            : !strcmp(a, "--cert")  ? &vmctl_globals.cert
                            : !strcmp(a, "--key")   ? &vmctl_globals.key
                            : !strcmp(a, "--ca")    ? &vmctl_globals.ca
                                                    : NULL;
        if (slot) {
            if (i + 1 >= argc) {
                fprintf(stderr, "vmctl: %s needs a value\n", a);
                return VMCTL_EXIT_USAGE;
            }
            *slot = argv[++i];
        } else if (!strcmp(a, "--json")) {
            vmctl_globals.json = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return VMCTL_EXIT_OK;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            log_set_level(LOG_DEBUG);
        } else {
            fprintf(stderr, "vmctl: unknown option '%s'\n", a);
            usage(stderr);
            return VMCTL_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return VMCTL_EXIT_USAGE;
    }
    if (!strcmp(argv[i], "help")) {
        usage(stdout);
        return VMCTL_EXIT_OK;
    }
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (!strcmp(argv[i], commands[k].name)) return commands[k].run(argc - i, argv + i);
    fprintf(stderr, "vmctl: unknown command '%s'\n", argv[i]);
    usage(stderr);
    return VMCTL_EXIT_USAGE;
}
