/* vmctl log NAME | console NAME: a VM's serial console, as recorded so far (vm.log) or live
 * (console.attach; Ctrl-] detaches, as in virsh). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/tty.h"
#include "rpc/jsonrpc.h"

#define CONSOLE_ESCAPE 0x1d /* Ctrl-] */

int cmd_log(int argc, char **argv)
{
    static const struct option opts[] = {{"bytes", required_argument, 0, 'b'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    long bytes = 65536;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "b:h", opts, NULL)) != -1) {
        if (c == 'b') bytes = strtol(optarg, NULL, 10);
        else {
            fprintf(c == 'h' ? stdout : stderr, "usage: vmctl log NAME [--bytes N]   (the last N bytes, default 65536)\n");
            return c == 'h' ? VMCTL_EXIT_OK : VMCTL_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "usage: vmctl log NAME [--bytes N]\n");
        return VMCTL_EXIT_USAGE;
    }
    json_t *r;
    int rc = vmctl_call("log", "vm.log", json_pack("{s:s, s:i}", "name", argv[optind], "bytes", (int)bytes), &r);
    if (rc) return rc;
    if (vmctl_globals.json) {
        vmctl_print_json(r);
    } else {
        size_t len = 0;
        const char *b64 = json_string_value(json_object_get(r, "data"));
        void *data = b64 ? rpc_base64_decode(b64, &len) : NULL;
        if (data) fwrite(data, 1, len, stdout);
        free(data);
    }
    json_decref(r);
    return VMCTL_EXIT_OK;
}


struct console_ctx {
    const char *name;
    bool ended;
};

static void on_note(void *opaque, const char *method, json_t *params)
{
    struct console_ctx *cx = opaque;
    const char *name = json_string_value(json_object_get(params, "name"));
    if (!name || strcmp(name, cx->name)) return;
    if (!strcmp(method, "console.output")) {
        size_t len;
        const char *b64 = json_string_value(json_object_get(params, "data"));
        void *data = b64 ? rpc_base64_decode(b64, &len) : NULL;
        if (data) {
            ssize_t w = write(STDOUT_FILENO, data, len);
            (void)w;
        }
        free(data);
    } else if (!strcmp(method, "vm.state_changed")) {
        const char *st = json_string_value(json_object_get(params, "state"));
        if (st && (!strcmp(st, "stopped") || !strcmp(st, "crashed") || !strcmp(st, "deleted"))) {
            fprintf(stderr, "\r\n[VM '%s' %s: %s]\r\n", cx->name, st, json_string_value(json_object_get(params, "reason")));
            cx->ended = true;
        }
    }
}

int cmd_console(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: vmctl console NAME   (Ctrl-] detaches)\n");
        return VMCTL_EXIT_USAGE;
    }
    struct console_ctx cx = {.name = argv[1]};
    struct rpc_client c;
    if (vmctl_connect(&c, "console")) return VMCTL_EXIT_FAIL;
    c.on_notification = on_note;
    c.opaque = &cx;
    json_t *result, *error;
    char err[512];
    int r = rpc_client_call(&c, "events.subscribe", NULL, &result, &error, err, sizeof(err));
    if (r == 0) {
        json_decref(result);
        r = rpc_client_call(&c, "console.attach", json_pack("{s:s}", "name", cx.name), &result, &error, err, sizeof(err));
    }
    if (r != 0) {
        if (r < 0) fprintf(stderr, "vmctl console: %s\n", err);
        else vmctl_print_error("console", error);
        json_decref(error);
        rpc_client_close(&c);
        return VMCTL_EXIT_FAIL;
    }
    json_decref(result);
    tty_raw_begin(false);
    fprintf(stderr, "Connected to VM '%s' (escape character is ^])\r\n", cx.name);
    bool stdin_open = true;
    int rc = VMCTL_EXIT_OK;
    while (!cx.ended) {
        json_t *m;
        while ((r = rpc_client_read(&c, &m, 0)) == 1) { /* everything already received */
            json_t *method = json_object_get(m, "method");
            if (json_is_string(method)) on_note(&cx, json_string_value(method), json_object_get(m, "params"));
            json_decref(m);
        }
        if (r < 0) {
            fprintf(stderr, "\r\nvmctl console: connection to vmd lost\r\n");
            rc = VMCTL_EXIT_FAIL;
            break;
        }
        if (cx.ended) break;
        struct pollfd p[2] = {{.fd = c.fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
        if (poll(p, stdin_open ? 2 : 1, 1000) < 0 && errno != EINTR) break;
        if (stdin_open && (p[1].revents & (POLLIN | POLLHUP))) {
            unsigned char buf[512];
            ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
            if (n <= 0) {
                stdin_open = false;
                continue;
            }
            ssize_t keep = n;
            bool detach = false;
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] == CONSOLE_ESCAPE) {
                    keep = i;
                    detach = true;
                    break;
                }
            if (keep > 0) {
                char *b64 = rpc_base64_encode(buf, (size_t)keep);
                rpc_client_notify(&c, "console.input", json_pack("{s:s, s:s}", "name", cx.name, "data", b64));
                free(b64);
            }
            if (detach) {
                rpc_client_notify(&c, "console.detach", json_pack("{s:s}", "name", cx.name));
                fprintf(stderr, "\r\n[detached from VM '%s']\r\n", cx.name);
                break;
            }
        }
    }
    tty_raw_end();
    rpc_client_close(&c);
    return rc;
}
