/* fuzz_jsonrpc: libFuzzer target for the JSON-RPC 2.0 codec (rpc/jsonrpc.c) and the parameter
 * checks a daemon applies before acting on a call (rpc/vmd_api.c, vmm/vm_config_json.c).
 *
 * The first input byte seeds how the rest is cut into chunks for rpc_framer_feed (so messages
 * arrive split at arbitrary points and several per chunk); the framer's limit is small so the
 * oversize path is reached. Each framed message goes through rpc_handle_message with a
 * dispatcher that checks params against the method table (and, for vm.create, builds a
 * vm_config from them), answering some calls at once and the rest after the message was
 * handled, as the daemon does for calls that wait on a worker. Every response sent must be
 * one line of valid JSON; a crash, leak or sanitizer report is a bug.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/jsonrpc.h"
#include "rpc/vmd_api.h"
#include "vmm/vm_config.h"
#include "vmm/vm_config_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DEFERRED 64

struct fuzz_rpc {
    struct rpc_call *deferred[MAX_DEFERRED];
    unsigned ndeferred;
    unsigned counter;
};

static void sink_send(struct rpc_sink *s, const char *text, size_t len)
{
    (void)s;
    if (len == 0 || text[len - 1] != '\n' || memchr(text, '\n', len - 1)) abort(); /* one framed line */
    json_error_t e;
    json_t *j = json_loadb(text, len - 1, 0, &e);
    if (!j) abort(); /* the codec produced invalid JSON */
    json_decref(j);
}

static struct rpc_sink sink = {.send = sink_send};

static void check_vm_create(json_t *params, struct rpc_call *call)
{
    struct vm_config c;
    vm_config_init(&c);
    char err[600];
    const char *field = NULL;
    if (vm_config_from_json(&c, params, err, sizeof(err), &field) == 0) {
        json_t *back = vm_config_to_json(&c);
        if (!back) abort();
        /* what was accepted round-trips */
        struct vm_config c2;
        vm_config_init(&c2);
        if (vm_config_from_json(&c2, back, err, sizeof(err), &field) != 0) abort();
        vm_config_free(&c2);
        json_decref(back);
        rpc_call_result(call, json_true());
    } else {
        rpc_call_error(call, RPC_INVALID_PARAMS, err, field ? json_pack("{s:s}", "field", field) : NULL);
    }
    vm_config_free(&c);
}

static void dispatch(void *ctx, struct rpc_call *call)
{
    struct fuzz_rpc *fr = ctx;
    fr->counter++;
    const struct vmd_api_method *api = vmd_api_find(call->method);
    if (!api) {
        rpc_call_errorf(call, RPC_METHOD_NOT_FOUND, "Method not found: %s", call->method);
        return;
    }
    json_t *checked = NULL;
    char msg[256];
    const char *field = NULL;
    if (rpc_check_params(call->params, api->params, api->nparams, &checked, msg, sizeof(msg), &field) < 0) {
        rpc_call_error(call, RPC_INVALID_PARAMS, msg, field ? json_pack("{s:s}", "field", field) : NULL);
        return;
    }
    if (!strcmp(api->name, "vm.create")) {
        check_vm_create(checked, call);
        json_decref(checked);
        return;
    }
    if (!strcmp(api->name, "console.input")) {
        size_t n;
        void *bytes = rpc_base64_decode(json_string_value(json_object_get(checked, "data")), &n);
        free(bytes);
    }
    json_decref(checked);
    if ((fr->counter & 1) && fr->ndeferred < MAX_DEFERRED)
        fr->deferred[fr->ndeferred++] = call; /* answered later, like a call waiting on a worker */
    else
        rpc_call_result(call, json_string(api->name));
}

static void on_message(void *opaque, const char *msg, size_t len)
{
    struct fuzz_rpc *fr = opaque;
    rpc_handle_message(msg, len, dispatch, fr, &sink);
    /* answer the deferred calls, newest first (the order responses arrive need not match) */
    while (fr->ndeferred) {
        struct rpc_call *c = fr->deferred[--fr->ndeferred];
        if (fr->ndeferred & 1)
            rpc_call_error(c, RPC_ERR_WORKER, "worker went away", NULL);
        else
            rpc_call_result(c, json_pack("{s:i}", "n", (int)fr->ndeferred));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536) return 0;
    unsigned seed = data[0];
    data++, size--;

    struct fuzz_rpc fr = {0};
    struct rpc_framer f;
    rpc_framer_init(&f, 4096);
    size_t off = 0;
    while (off < size) {
        seed = seed * 1103515245u + 12345u;
        size_t chunk = 1 + (seed >> 16) % 97;
        if (chunk > size - off) chunk = size - off;
        if (rpc_framer_feed(&f, (const char *)data + off, chunk, on_message, &fr) == -EMSGSIZE) {
            size_t len;
            char *resp = rpc_oversize_response(f.max, &len);
            if (!resp) abort();
            sink_send(&sink, resp, len);
            free(resp);
            break; /* the connection closes */
        }
        off += chunk;
    }
    rpc_framer_free(&f);

    /* The whole input as one message too (no framing), and as base64 text. */
    rpc_handle_message((const char *)data, size, dispatch, &fr, &sink);
    on_message(&fr, "", 0);
    char *text = strndup((const char *)data, size);
    if (text) {
        size_t n;
        void *bytes = rpc_base64_decode(text, &n);
        if (bytes) {
            char *again = rpc_base64_encode(bytes, n);
            free(again);
            free(bytes);
        }
        free(text);
    }
    return 0;
}
