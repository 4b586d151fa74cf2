/* jsonrpc: the JSON-RPC 2.0 codec shared by vmd, vmd-worker, vmctl and the tests.
 *
 * Framing: one JSON text per line (newline-delimited JSON). A message is the
 * bytes before a '\n'; JSON texts never contain a raw newline, so this is
 * unambiguous. Messages may arrive split across reads or several per read;
 * rpc_framer reassembles them and enforces a size limit.
 *
 * Requests: rpc_handle_message() parses one message (a request, a notification
 * or a batch), validates it exactly as the specification says, and hands each
 * valid call to a dispatch function. A call is answered, now or later, with
 * rpc_call_result() or rpc_call_error(); when every call of the message has
 * been answered the response (one object, or an array for a batch) is sent
 * through the rpc_sink. Notifications are dispatched but never answered. A batch of more than
 * RPC_MAX_BATCH requests is refused as a whole (one -32600 error, id null), so the work one
 * message can ask for is bounded.
 */
#ifndef VMD_RPC_JSONRPC_H
#define VMD_RPC_JSONRPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Standard errors (JSON-RPC 2.0 section 5.1). */
#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_INTERNAL_ERROR -32603

/* vmd's application errors (documented in rpc/openrpc.json and docs/jsonrpc.md). */
#define RPC_ERR_NO_SUCH_VM -32001     /* no VM has that name */
#define RPC_ERR_WRONG_STATE -32002    /* the VM's state does not allow the operation */
#define RPC_ERR_EXISTS -32003         /* a VM with that name already exists */
#define RPC_ERR_WORKER -32004         /* the VM's worker process failed or did not answer */
#define RPC_ERR_STORAGE -32005        /* the state directory could not be read or written */
#define RPC_ERR_TIMEOUT -32006        /* the operation did not finish in time */
#define RPC_ERR_NO_SUCH_SNAPSHOT -32007 /* the VM has no snapshot of that name */
#define RPC_ERR_SNAPSHOT_INVALID -32008 /* the snapshot is corrupted, truncated, of another version or does not fit the VM */
#define RPC_ERR_FORBIDDEN -32010        /* the client's role does not allow the method (or its certificate matches no role) */
#define RPC_ERR_QUOTA -32011            /* the VMs defined would exceed one of vmd's totals (VMs, vCPUs, memory) */
#define RPC_ERR_REQUEST_CONFLICT -32012 /* vm.create's request_id was used before with different params */

#define RPC_MAX_MESSAGE_DEFAULT (1u << 20) /* 1 MiB */
#define RPC_MAX_BATCH 128 /* requests in one batch; a longer batch gets one -32600 error and nothing runs */

const char *rpc_error_name(int code); /* standard message for a code ("Parse error", ...) */

/* ---- framing ---- */
struct rpc_framer {
    char *buf;
    size_t len, cap, max;
};
typedef void (*rpc_message_fn)(void *opaque, const char *msg, size_t len);
void rpc_framer_init(struct rpc_framer *f, size_t max_message);
void rpc_framer_free(struct rpc_framer *f);
/* Feed received bytes; on_message is called for each complete line (without the '\n';
 * empty lines and a trailing '\r' are skipped). Returns 0, or -EMSGSIZE once a message
 * exceeds the limit (the connection should answer with rpc_oversize_response and close). */
int rpc_framer_feed(struct rpc_framer *f, const char *data, size_t len, rpc_message_fn on_message, void *opaque);

/* ---- sending ---- */
/* Where responses go. ref/unref keep the sink alive while calls are pending (may be NULL). */
struct rpc_sink {
    void (*send)(struct rpc_sink *s, const char *text, size_t len); /* text ends with '\n' */
    void (*ref)(struct rpc_sink *s);
    void (*unref)(struct rpc_sink *s);
};

/* Serialize a JSON value as one framed message (compact, '\n' appended). Caller frees. */
char *rpc_encode(const json_t *msg, size_t *len);
json_t *rpc_make_error(json_t *id, int code, const char *message, json_t *data); /* steals data */
json_t *rpc_make_request(const char *method, json_t *params, json_t *id);     /* steals params, id; id NULL = notification */
/* Send a notification to a sink. Steals params. */
void rpc_notify(struct rpc_sink *s, const char *method, json_t *params);
/* The response to an oversize message: -32600 with id null. */
char *rpc_oversize_response(size_t limit, size_t *len);

/* ---- receiving ---- */
struct rpc_batch;
struct rpc_call {
    struct rpc_batch *batch;
    size_t index;      /* slot in the batch */
    json_t *id;        /* NULL for a notification */
    const char *method;
    json_t *params;    /* object or array, or NULL when absent */
    json_t *request;   /* the whole request object (owns method/params/id) */
    void *user;        /* free for the dispatcher's use */
    /* Told of the answer just before it is sent (code 0: a result); the dispatcher may set it
     * (vmd counts calls for its metrics) with what it needs in the three fields after it. */
    void (*on_answer)(struct rpc_call *c, int code);
    void *answer_opaque;
    size_t answer_index;
    uint64_t started_ns;
};
/* Called once per valid call; must eventually call rpc_call_result or rpc_call_error (also for
 * notifications, whose answers are discarded). */
typedef void (*rpc_dispatch_fn)(void *ctx, struct rpc_call *call);

void rpc_handle_message(const char *msg, size_t len, rpc_dispatch_fn dispatch, void *ctx, struct rpc_sink *sink);
bool rpc_call_is_notification(const struct rpc_call *c);
/* Answer a call (steals result / data). The call is freed. */
void rpc_call_result(struct rpc_call *c, json_t *result);
void rpc_call_error(struct rpc_call *c, int code, const char *message, json_t *data);
void rpc_call_errorf(struct rpc_call *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- parameter checking ---- */
enum rpc_param_type { RPC_T_STRING, RPC_T_INTEGER, RPC_T_BOOLEAN, RPC_T_ARRAY, RPC_T_OBJECT };
struct rpc_param_spec {
    const char *name;
    enum rpc_param_type type;
    bool required;
    long long min, max; /* integers: inclusive range (min > max: unchecked); strings: length range */
};
/* Check params against a spec (by name, or by position in spec order). On success *out is a
 * new object keyed by name; on failure returns -EINVAL with a message naming the field in
 * msg and the field in *field. Unknown names are rejected, and so is any string, at any depth,
 * that contains a NUL character (JSON "\u0000"): every string parameter is used as a C string. */
int rpc_check_params(json_t *params, const struct rpc_param_spec *spec, size_t nspec, json_t **out, char *msg,
                     size_t msglen, const char **field);

/* ---- base64 (console bytes travel base64-encoded; JSON strings must be UTF-8) ---- */
char *rpc_base64_encode(const void *data, size_t len);
/* Returns a malloc'd buffer and its length, or NULL if the input is not base64. */
void *rpc_base64_decode(const char *text, size_t *len);

#endif
