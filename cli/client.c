/* client: vmctl's connection to vmd and the common output of daemon subcommands. */
#include "cli/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

struct vmctl_globals vmctl_globals;

int vmctl_connect(struct rpc_client *c, const char *cmd)
{
    struct rpc_client_opts o = {
        .target = vmctl_globals.connect, .cert = vmctl_globals.cert, .key = vmctl_globals.key, .ca = vmctl_globals.ca};
    char err[512];
    if (rpc_client_connect(c, &o, err, sizeof(err)) < 0) {
        fprintf(stderr, "vmctl %s: %s\n", cmd, err);
        return -1;
    }
    return 0;
}

void vmctl_print_error(const char *cmd, const json_t *error)
{
    const char *msg = json_string_value(json_object_get(error, "message"));
    long long code = json_integer_value(json_object_get(error, "code"));
    if (vmctl_globals.json) {
        char *s = json_dumps(error, JSON_COMPACT);
        fprintf(stderr, "%s\n", s ? s : "{}");
        free(s);
        return;
    }
    fprintf(stderr, "vmctl %s: %s (error %lld)\n", cmd, msg ? msg : "error", code);
}

void vmctl_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_SORT_KEYS);
    printf("%s\n", s ? s : "null");
    free(s);
}

int vmctl_call(const char *cmd, const char *method, json_t *params, json_t **result)
{
    struct rpc_client c;
    if (vmctl_connect(&c, cmd)) {
        json_decref(params);
        return VMCTL_EXIT_FAIL;
    }
    json_t *error;
    char err[512];
    int r = rpc_client_call(&c, method, params, result, &error, err, sizeof(err));
    rpc_client_close(&c);
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

void vmctl_format_duration(long long s, char *buf, size_t len)
{
    if (s < 0) snprintf(buf, len, "-");
    else if (s < 60) snprintf(buf, len, "%llds", s);
    else if (s < 3600) snprintf(buf, len, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400) snprintf(buf, len, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else snprintf(buf, len, "%lldd%02lldh", s / 86400, s / 3600 % 24);
}
