/* client: how vmctl's daemon subcommands reach vmd (global --connect options), call a method,
 * and report the answer (a table, or the raw JSON with --json; errors on stderr). */
#ifndef VMD_CLI_CLIENT_H
#define VMD_CLI_CLIENT_H

#include <jansson.h>
#include <stdbool.h>

#include "rpc/rpc_client.h"

#define VMCTL_DEFAULT_SOCKET "unix:/run/vmd/vmd.sock"

struct vmctl_globals {
    const char *connect, *cert, *key, *ca;
    bool json;
};
/* Set once by main() from the options before the subcommand; read by every subcommand. */
extern struct vmctl_globals vmctl_globals;

/* Connect to vmd; prints the reason and returns -1 on failure. */
int vmctl_connect(struct rpc_client *c, const char *cmd);
/* Connect, call, print errors. Returns 0 with *result, else VMCTL_EXIT_FAIL (message printed). */
int vmctl_call(const char *cmd, const char *method, json_t *params, json_t **result);
/* Print an error object as "vmctl CMD: MESSAGE" (plus the field for invalid params). */
void vmctl_print_error(const char *cmd, const json_t *error);
/* Print a result as JSON on stdout. */
void vmctl_print_json(const json_t *j);
/* Seconds as "3d4h", "5m12s"... */
void vmctl_format_duration(long long s, char *buf, size_t len);

#endif
