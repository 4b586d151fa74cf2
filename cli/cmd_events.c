/* vmctl events: print vm.state_changed notifications as they happen, one line each
 * ("NAME STATE REASON", or the notification's params as JSON with --json), until interrupted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/client.h"
#include "cli/commands.h"

static void print_event(void *opaque, const char *method, json_t *params)
{
    (void)opaque;
    if (strcmp(method, "vm.state_changed")) return;
    if (vmctl_globals.json) {
        char *s = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        printf("%s %s %s\n", json_string_value(json_object_get(params, "name")),
               json_string_value(json_object_get(params, "state")), json_string_value(json_object_get(params, "reason")));
    }
    fflush(stdout);
}

int cmd_events(int argc, char **argv)
{
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: vmctl events   (prints VM state changes until interrupted)\n");
        return VMCTL_EXIT_USAGE;
    }
    struct rpc_client c;
    if (vmctl_connect(&c, "events")) return VMCTL_EXIT_FAIL;
    c.on_notification = print_event;
    json_t *result, *error;
    char err[512];
    int r = rpc_client_call(&c, "events.subscribe", NULL, &result, &error, err, sizeof(err));
    if (r != 0) {
        if (r < 0) fprintf(stderr, "vmctl events: %s\n", err);
        else vmctl_print_error("events", error);
        json_decref(error);
        rpc_client_close(&c);
        return VMCTL_EXIT_FAIL;
    }
    json_decref(result);
    for (;;) {
        json_t *m;
        r = rpc_client_read(&c, &m, -1);
        if (r < 0) break;
        json_t *method = json_object_get(m, "method");
        if (json_is_string(method)) print_event(NULL, json_string_value(method), json_object_get(m, "params"));
        json_decref(m);
    }
    fprintf(stderr, "vmctl events: connection to vmd closed\n");
    rpc_client_close(&c);
    return VMCTL_EXIT_FAIL;
}
