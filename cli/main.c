/* vmctl: the command-line client. Dispatches to one subcommand per file. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "vmm/log.h"

static const struct vmctl_command commands[] = {
    {"run", "run a VM in the foreground, without the daemon", cmd_run},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vmctl COMMAND [OPTIONS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'vmctl COMMAND --help' for a command's options.\n");
}

int main(int argc, char **argv)
{
    log_set_prefix("vmctl");
    if (argc < 2) {
        usage(stderr);
        return VMCTL_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return VMCTL_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "vmctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return VMCTL_EXIT_USAGE;
}
