/* jsonrpc: JSON-RPC 2.0 framing, request validation, batching, responses, parameter checks. */
#include "jsonrpc.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *rpc_error_name(int code)
{
    switch (code) {
    case RPC_PARSE_ERROR: return "Parse error";
    case RPC_INVALID_REQUEST: return "Invalid Request";
    case RPC_METHOD_NOT_FOUND: return "Method not found";
    case RPC_INVALID_PARAMS: return "Invalid params";
    case RPC_INTERNAL_ERROR: return "Internal error";
    case RPC_ERR_NO_SUCH_VM: return "No such VM";
    case RPC_ERR_WRONG_STATE: return "Wrong state";
    case RPC_ERR_EXISTS: return "Already exists";
    case RPC_ERR_WORKER: return "Worker failed";
    case RPC_ERR_STORAGE: return "Storage error";
    case RPC_ERR_TIMEOUT: return "Timed out";
    case RPC_ERR_FORBIDDEN: return "Forbidden";
    case RPC_ERR_QUOTA: return "Quota exceeded";
    case RPC_ERR_REQUEST_CONFLICT: return "Request conflict";
    default: return "Server error";
    }
}

/* ---- framing ---- */

void rpc_framer_init(struct rpc_framer *f, size_t max_message)
{
    memset(f, 0, sizeof(*f));
    f->max = max_message ? max_message : RPC_MAX_MESSAGE_DEFAULT;
}

void rpc_framer_free(struct rpc_framer *f)
{
    free(f->buf);
    f->buf = NULL;
    f->len = f->cap = 0;
}

static void emit_line(const char *p, size_t n, rpc_message_fn on_message, void *opaque)
{
    if (n && p[n - 1] == '\r') n--;
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
    if (i == n) return; /* blank line: keep-alive, ignored */
    on_message(opaque, p, n);
}

int rpc_framer_feed(struct rpc_framer *f, const char *data, size_t len, rpc_message_fn on_message, void *opaque)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        if (f->len + take > f->max) {
            f->len = 0;
            return -EMSGSIZE;
        }
        if (nl && f->len == 0) {
            emit_line(data, take, on_message, opaque); /* whole message in this read: no copy */
        } else {
            if (f->len + take + 1 > f->cap) {
                size_t cap = f->cap ? f->cap : 4096;
                while (cap < f->len + take + 1) cap *= 2;
                char *b = realloc(f->buf, cap);
                if (!b) return -ENOMEM;
                f->buf = b;
                f->cap = cap;
            }
            memcpy(f->buf + f->len, data, take);
            f->len += take;
            if (nl) {
                f->buf[f->len] = 0;
                size_t n = f->len;
                f->len = 0;
                emit_line(f->buf, n, on_message, opaque);
            }
        }
        if (!nl) break;
        data += take + 1;
        len -= take + 1;
    }
    return 0;
}

/* ---- encoding ---- */

char *rpc_encode(const json_t *msg, size_t *len)
{
    char *s = json_dumps(msg, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) return NULL;
    size_t n = strlen(s);
    char *out = realloc(s, n + 2);
    if (!out) {
        free(s);
        return NULL;
    }
    out[n] = '\n';
    out[n + 1] = 0;
    if (len) *len = n + 1;
    return out;
}

json_t *rpc_make_error(json_t *id, int code, const char *message, json_t *data)
{
    json_t *err = json_pack("{s:i, s:s}", "code", code, "message", message ? message : rpc_error_name(code));
    if (data) json_object_set_new(err, "data", data);
    return json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "error", err, "id", id ? id : json_null());
}

json_t *rpc_make_request(const char *method, json_t *params, json_t *id)
{
    json_t *r = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (params) json_object_set_new(r, "params", params);
    if (id) json_object_set_new(r, "id", id);
    return r;
}

void rpc_notify(struct rpc_sink *s, const char *method, json_t *params)
{
    json_t *n = rpc_make_request(method, params, NULL);
    size_t len;
    char *text = rpc_encode(n, &len);
    json_decref(n);
    if (text) s->send(s, text, len);
    free(text);
}

char *rpc_oversize_response(size_t limit, size_t *len)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "Invalid Request: message longer than %zu bytes", limit);
    json_t *e = rpc_make_error(NULL, RPC_INVALID_REQUEST, msg, NULL);
    char *text = rpc_encode(e, len);
    json_decref(e);
    return text;
}

/* ---- requests and batches ---- */

struct rpc_batch {
    struct rpc_sink *sink;
    bool is_batch;
    size_t pending; /* unanswered calls, +1 while the message is being split up */
    json_t *responses;
};

static void batch_put(struct rpc_batch *b, json_t *response)
{
    if (response) json_array_append_new(b->responses, response);
}

static void batch_done(struct rpc_batch *b)
{
    if (--b->pending > 0) return;
    size_t n = json_array_size(b->responses);
    if (n > 0 && b->sink) {
        size_t len;
        char *text = rpc_encode(b->is_batch ? b->responses : json_array_get(b->responses, 0), &len);
        if (text) b->sink->send(b->sink, text, len);
        free(text);
    }
    if (b->sink && b->sink->unref) b->sink->unref(b->sink);
    json_decref(b->responses);
    free(b);
}

bool rpc_call_is_notification(const struct rpc_call *c) { return c->id == NULL; }

static void call_finish(struct rpc_call *c, json_t *response)
{
    struct rpc_batch *b = c->batch;
    if (c->id) batch_put(b, response);
    else json_decref(response);
    json_decref(c->request);
    free(c);
    batch_done(b);
}

void rpc_call_result(struct rpc_call *c, json_t *result)
{
    if (c->on_answer) c->on_answer(c, 0);
    json_t *r = json_pack("{s:s, s:o, s:O}", "jsonrpc", "2.0", "result", result ? result : json_null(), "id",
                          c->id ? c->id : json_null());
    call_finish(c, r);
}

void rpc_call_error(struct rpc_call *c, int code, const char *message, json_t *data)
{
    if (c->on_answer) c->on_answer(c, code);
    call_finish(c, rpc_make_error(c->id, code, message, data));
}

void rpc_call_errorf(struct rpc_call *c, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rpc_call_error(c, code, msg, NULL);
}

/* Validate one request object; dispatch it or record an Invalid Request error. */
static void handle_one(struct rpc_batch *b, json_t *req, rpc_dispatch_fn dispatch, void *ctx)
{
    const char *why = NULL;
    json_t *id = json_is_object(req) ? json_object_get(req, "id") : NULL;
    json_t *version = json_is_object(req) ? json_object_get(req, "jsonrpc") : NULL;
    json_t *method = json_is_object(req) ? json_object_get(req, "method") : NULL;
    json_t *params = json_is_object(req) ? json_object_get(req, "params") : NULL;
    if (!json_is_object(req)) why = "a request must be a JSON object";
    else if (id && !json_is_string(id) && !json_is_number(id) && !json_is_null(id))
        why = "\"id\" must be a string, a number or null";
    else if (!json_is_string(version) || strcmp(json_string_value(version), "2.0"))
        why = "\"jsonrpc\" must be exactly \"2.0\"";
    else if (!json_is_string(method)) why = "\"method\" must be a string";
    else if (params && !json_is_object(params) && !json_is_array(params))
        why = "\"params\" must be an object or an array";
    if (why) {
        /* An invalid request is always answered (its id may be unusable, then null). */
        json_t *rid = (id && (json_is_string(id) || json_is_number(id))) ? id : NULL;
        char msg[160];
        snprintf(msg, sizeof(msg), "Invalid Request: %s", why);
        batch_put(b, rpc_make_error(rid, RPC_INVALID_REQUEST, msg, NULL));
        return;
    }
    struct rpc_call *c = calloc(1, sizeof(*c));
    if (!c) {
        if (id) batch_put(b, rpc_make_error(id, RPC_INTERNAL_ERROR, "Internal error: out of memory", NULL));
        return;
    }
    c->batch = b;
    c->request = json_incref(req);
    c->id = id;
    c->method = json_string_value(method);
    c->params = params;
    b->pending++;
    dispatch(ctx, c);
}

void rpc_handle_message(const char *msg, size_t len, rpc_dispatch_fn dispatch, void *ctx, struct rpc_sink *sink)
{
    struct rpc_batch *b = calloc(1, sizeof(*b));
    if (!b) return;
    b->sink = sink;
    b->pending = 1;
    b->responses = json_array();
    if (sink && sink->ref) sink->ref(sink);

    json_error_t jerr;
    json_t *root = json_loadb(msg, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!root) {
        char m[256];
        snprintf(m, sizeof(m), "Parse error: %s at line %d column %d", jerr.text, jerr.line, jerr.column);
        batch_put(b, rpc_make_error(NULL, RPC_PARSE_ERROR, m, NULL));
    } else if (json_is_array(root)) {
        if (json_array_size(root) == 0) {
            batch_put(b, rpc_make_error(NULL, RPC_INVALID_REQUEST, "Invalid Request: empty batch", NULL));
        } else if (json_array_size(root) > RPC_MAX_BATCH) {
            char m[128];
            snprintf(m, sizeof(m), "Invalid Request: batch of %zu requests; at most %d per batch", json_array_size(root),
                     RPC_MAX_BATCH);
            batch_put(b, rpc_make_error(NULL, RPC_INVALID_REQUEST, m, json_pack("{s:i}", "max_batch", RPC_MAX_BATCH)));
        } else {
            b->is_batch = true;
            size_t i;
            json_t *req;
            json_array_foreach(root, i, req) handle_one(b, req, dispatch, ctx);
        }
    } else {
        handle_one(b, root, dispatch, ctx);
    }
    json_decref(root);
    batch_done(b);
}

/* ---- parameters ---- */

static const char *type_name(enum rpc_param_type t)
{
    switch (t) {
    case RPC_T_STRING: return "a string";
    case RPC_T_INTEGER: return "an integer";
    case RPC_T_BOOLEAN: return "a boolean";
    case RPC_T_ARRAY: return "an array";
    default: return "an object";
    }
}

static bool type_matches(const json_t *v, enum rpc_param_type t)
{
    switch (t) {
    case RPC_T_STRING: return json_is_string(v);
    case RPC_T_INTEGER: return json_is_integer(v);
    case RPC_T_BOOLEAN: return json_is_boolean(v);
    case RPC_T_ARRAY: return json_is_array(v);
    default: return json_is_object(v);
    }
}

#define PFAIL(f, ...)                          \
    do {                                       \
        snprintf(msg, msglen, __VA_ARGS__);    \
        if (field) *field = (f);               \
        json_decref(obj);                      \
        return -EINVAL;                        \
    } while (0)

/* Whether v holds, at any depth, a string with an embedded NUL (a "\u0000" escape): such a
 * string would be cut short wherever it is used as a C string (names, paths). */
static bool has_embedded_nul(const json_t *v)
{
    if (json_is_string(v)) return json_string_length(v) != strlen(json_string_value(v));
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (has_embedded_nul(json_array_get(v, i))) return true;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) if (has_embedded_nul(x)) return true;
    }
    return false;
}

int rpc_check_params(json_t *params, const struct rpc_param_spec *spec, size_t nspec, json_t **out, char *msg,
                     size_t msglen, const char **field)
{
    json_t *obj = json_object();
    if (field) *field = NULL;
    if (json_is_array(params)) {
        if (json_array_size(params) > nspec)
            PFAIL(NULL, "Invalid params: at most %zu positional parameters", nspec);
        for (size_t i = 0; i < json_array_size(params); i++)
            json_object_set(obj, spec[i].name, json_array_get(params, i));
    } else if (json_is_object(params)) {
        const char *key;
        json_t *v;
        json_object_foreach(params, key, v) {
            size_t i;
            for (i = 0; i < nspec && strcmp(spec[i].name, key); i++) {
            }
            if (i == nspec) {
                snprintf(msg, msglen, "Invalid params: unknown parameter '%s'", key);
                if (field) *field = key;
                json_decref(obj);
                return -EINVAL;
            }
            json_object_set(obj, key, v);
        }
    } else if (params) {
        PFAIL(NULL, "Invalid params: params must be an object or an array");
    }
    for (size_t i = 0; i < nspec; i++) {
        const struct rpc_param_spec *s = &spec[i];
        json_t *v = json_object_get(obj, s->name);
        if (!v) {
            if (s->required) PFAIL(s->name, "Invalid params: '%s' is required", s->name);
            continue;
        }
        if (!type_matches(v, s->type)) PFAIL(s->name, "Invalid params: '%s' must be %s", s->name, type_name(s->type));
        if (has_embedded_nul(v))
            PFAIL(s->name, "Invalid params: '%s' contains a NUL character (\\u0000), which no name, path or text vmd takes may hold",
                  s->name);
        if (s->min <= s->max) {
            if (s->type == RPC_T_INTEGER) {
                long long n = json_integer_value(v);
                if (n < s->min || n > s->max)
                    PFAIL(s->name, "Invalid params: '%s' must be between %lld and %lld (got %lld)", s->name, s->min,
                          s->max, n);
            } else if (s->type == RPC_T_STRING) {
                long long n = (long long)json_string_length(v);
                if (n < s->min || n > s->max)
                    PFAIL(s->name, "Invalid params: '%s' must be %lld to %lld characters long", s->name, s->min,
                          s->max);
            } else if (s->type == RPC_T_ARRAY) {
                long long n = (long long)json_array_size(v);
                if (n < s->min || n > s->max)
                    PFAIL(s->name, "Invalid params: '%s' must have %lld to %lld elements", s->name, s->min, s->max);
            }
        }
    }
    *out = obj;
    return 0;
}

/* ---- base64 ---- */

char *rpc_base64_encode(const void *data, size_t len)
{
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out) return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

void *rpc_base64_decode(const char *text, size_t *len)
{
    size_t n = strlen(text);
    if (n % 4) return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 1);
    if (!out) return NULL;
    int r = n ? EVP_DecodeBlock(out, (const unsigned char *)text, (int)n) : 0;
    if (r < 0) {
        free(out);
        return NULL;
    }
    size_t m = (size_t)r;
    if (n >= 1 && text[n - 1] == '=') m--;
    if (n >= 2 && text[n - 2] == '=') m--;
    *len = m;
    return out;
}
