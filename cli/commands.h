/* commands: vmctl's subcommands, one file per family (cmd_run.c, cmd_create.c, cmd_lifecycle.c,
 * cmd_list.c, cmd_console.c, cmd_events.c, cmd_stats.c, cmd_snapshot.c, cmd_disk.c). */
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
/* vmctl run: the guest kernel panicked (pvpanic) and the VM was stopped. EX_SOFTWARE from
 * sysexits.h; even, so never an isa-debug-exit status ((V<<1)|1 is odd). */
#define VMCTL_EXIT_GUEST_PANIC 70

int cmd_run(int argc, char **argv);
int cmd_create(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_pause(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_reboot(int argc, char **argv);
int cmd_delete(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_host(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_snapshots(int argc, char **argv);
int cmd_snapshot_delete(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_autostart(int argc, char **argv);
int cmd_disk(int argc, char **argv);

#endif
