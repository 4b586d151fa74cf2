/* commands: vmctl's subcommands, one file each (cmd_<name>.c). */
#ifndef VMD_CLI_COMMANDS_H
#define VMD_CLI_COMMANDS_H

struct vmctl_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
};

/* Exit codes shared by all subcommands. */
#define VMCTL_EXIT_OK 0
#define VMCTL_EXIT_FAIL 1
#define VMCTL_EXIT_USAGE 2

int cmd_run(int argc, char **argv);

#endif
