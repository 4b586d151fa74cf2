/* Unit tests for rpc/jsonrpc: framing (split, several per read, oversize), every standard
 * error code, ids, notifications, batches (including the empty batch), parameter checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/jsonrpc.h"

/* ---- framing ---- */

struct lines {
    char got[8][256];
    int n;
};

static void collect_line(void *opaque, const char *msg, size_t len)
{
    struct lines *l = opaque;
    assert_true(l->n < 8);
    assert_true(len < 256);
    memcpy(l->got[l->n], msg, len);
    l->got[l->n][len] = 0;
    l->n++;
}

static void collect_line_bounded(void *opaque, const char *msg, size_t len)
{
    (void)msg;
    struct lines *l = opaque;
    assert_true(len <= 200);
    l->n++;
}

static void test_framer_split_and_multiple(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct lines l = {0};
    rpc_framer_init(&f, 64);
    const char *stream = "{\"a\":1}\n{\"b\":2}\r\n\n{\"c\"";
    assert_int_equal(rpc_framer_feed(&f, stream, strlen(stream), collect_line, &l), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.got[0], "{\"a\":1}");
    assert_string_equal(l.got[1], "{\"b\":2}");
    /* the rest of the third message arrives one byte at a time */
    const char *rest = ":3}\n";
    for (size_t i = 0; i < strlen(rest); i++) assert_int_equal(rpc_framer_feed(&f, rest + i, 1, collect_line, &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.got[2], "{\"c\":3}");
    rpc_framer_free(&f);
}

static void test_framer_oversize(void **state)
{
    (void)state;
    struct rpc_framer f;
    struct lines l = {0};
    rpc_framer_init(&f, 16);
    char big[40];
    memset(big, 'x', sizeof(big));
    assert_int_equal(rpc_framer_feed(&f, big, 10, collect_line, &l), 0);
    assert_int_equal(rpc_framer_feed(&f, big, 10, collect_line, &l), -EMSGSIZE);
    assert_int_equal(l.n, 0);
    /* exactly at the limit is accepted */
    rpc_framer_free(&f);
    rpc_framer_init(&f, 16);
    char ok[17];
    memset(ok, 'y', 16);
    ok[16] = '\n';
    assert_int_equal(rpc_framer_feed(&f, ok, 17, collect_line, &l), 0);
    assert_int_equal(l.n, 1);
    rpc_framer_free(&f);

    size_t len;
    char *resp = rpc_oversize_response(16, &len);
    json_t *r = json_loadb(resp, len, 0, NULL);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "error"), "code")), RPC_INVALID_REQUEST);
    assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);
    free(resp);
}

/* ---- request handling ---- */

struct capture {
    struct rpc_sink sink;
    char *last;
    int sends;
    int refs;
};

static void cap_send(struct rpc_sink *s, const char *text, size_t len)
{
    struct capture *c = (struct capture *)s;
    assert_true(len > 0 && text[len - 1] == '\n');
    free(c->last);
    c->last = strndup(text, len);
    c->sends++;
}
static void cap_ref(struct rpc_sink *s) { ((struct capture *)s)->refs++; }
static void cap_unref(struct rpc_sink *s) { ((struct capture *)s)->refs--; }

static struct rpc_call *g_deferred; /* the test dispatcher parks a call here for "slow" */
static int g_dispatched;

/* Methods: "echo" returns params, "fail" gives an application error, "slow" is answered later,
 * "sum" checks its params with a spec. */
static void dispatch(void *ctx, struct rpc_call *c)
{
    (void)ctx;
    g_dispatched++;
    if (!strcmp(c->method, "echo")) {
        rpc_call_result(c, json_incref(c->params ? c->params : json_null()));
    } else if (!strcmp(c->method, "fail")) {
        rpc_call_error(c, RPC_ERR_NO_SUCH_VM, "no VM named 'x'", NULL);
    } else if (!strcmp(c->method, "slow")) {
        g_deferred = c;
    } else if (!strcmp(c->method, "sum")) {
        static const struct rpc_param_spec spec[] = {
            {"a", RPC_T_INTEGER, true, 0, 100},
            {"b", RPC_T_INTEGER, false, 1, 0},
            {"name", RPC_T_STRING, false, 1, 8},
        };
        json_t *p;
        char msg[200];
        const char *field;
        if (rpc_check_params(c->params, spec, 3, &p, msg, sizeof(msg), &field)) {
            rpc_call_error(c, RPC_INVALID_PARAMS, msg, field ? json_pack("{s:s}", "field", field) : NULL);
            return;
        }
        json_int_t s = json_integer_value(json_object_get(p, "a")) + json_integer_value(json_object_get(p, "b"));
        json_decref(p);
        rpc_call_result(c, json_integer(s));
    } else if (!strcmp(c->method, "crash")) {
        rpc_call_error(c, RPC_INTERNAL_ERROR, NULL, NULL);
    } else {
        rpc_call_errorf(c, RPC_METHOD_NOT_FOUND, "Method not found: '%s'", c->method);
    }
}

/* Feed one message; return the parsed response (NULL if none was sent). */
static json_t *roundtrip(struct capture *cap, const char *msg)
{
    int before = cap->sends;
    rpc_handle_message(msg, strlen(msg), dispatch, NULL, &cap->sink);
    if (cap->sends == before) return NULL;
    assert_int_equal(cap->sends, before + 1);
    json_t *r = json_loads(cap->last, JSON_DECODE_ANY, NULL);
    assert_non_null(r);
    return r;
}

static struct capture new_capture(void)
{
    return (struct capture){.sink = {.send = cap_send, .ref = cap_ref, .unref = cap_unref}};
}

static int error_code(json_t *r)
{
    json_t *e = json_object_get(r, "error");
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
    assert_non_null(json_object_get(e, "message"));
    return (int)json_integer_value(json_object_get(e, "code"));
}

static void test_ids_round_trip(void **state)
{
    (void)state;
    struct capture cap = new_capture();
    json_t *r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1],\"id\":\"abc\"}");
    assert_string_equal(json_string_value(json_object_get(r, "id")), "abc");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(r, "result"), 0)), 1);
    assert_null(json_object_get(r, "error"));
    json_decref(r);
    r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":42}");
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 42);
    json_decref(r);
    r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":null}");
    assert_true(json_is_null(json_object_get(r, "id")));
    assert_non_null(json_object_get(r, "result"));
    json_decref(r);
    assert_int_equal(cap.refs, 0);
    free(cap.last);
}

static void test_standard_errors(void **state)
{
    (void)state;
    struct capture cap = new_capture();
    json_t *r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1,2");
    assert_int_equal(error_code(r), RPC_PARSE_ERROR);
    assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);

    r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":1,\"params\":\"bar\"}");
    assert_int_equal(error_code(r), RPC_INVALID_REQUEST);
    assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);

    r = roundtrip(&cap, "{\"jsonrpc\":\"1.0\",\"method\":\"echo\",\"id\":7}");
    assert_int_equal(error_code(r), RPC_INVALID_REQUEST);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
    json_decref(r);

    r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":5,\"id\":8}");
    assert_int_equal(error_code(r), RPC_INVALID_REQUEST);
    json_decref(r);

    r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":{\"x\":1}}");
    assert_int_equal(error_code(r), RPC_INVALID_REQUEST);
    assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);

    r = roundtrip(&cap, "\"just a string\"");
    assert_int_equal(error_code(r), RPC_INVALID_REQUEST);
    json_decref(r);

    r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":\"m\"}");
    assert_int_equal(error_code(r), RPC_METHOD_NOT_FOUND);
    json_decref(r);

    r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"a\":\"x\"},\"id\":1}");
    assert_int_equal(error_code(r), RPC_INVALID_PARAMS);
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(r, "error"), "data"), "field")), "a");
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")), "'a'"));
    json_decref(r);

    r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"crash\",\"id\":2}");
    assert_int_equal(error_code(r), RPC_INTERNAL_ERROR);
    json_decref(r);

    r = roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"fail\",\"id\":3}");
    assert_int_equal(error_code(r), RPC_ERR_NO_SUCH_VM);
    json_decref(r);
    free(cap.last);
}

static void test_notifications_get_no_response(void **state)
{
    (void)state;
    struct capture cap = new_capture();
    g_dispatched = 0;
    assert_null(roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1]}"));
    assert_null(roundtrip(&cap, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}")); /* even errors */
    assert_int_equal(g_dispatched, 2);
    assert_int_equal(cap.sends, 0);
    free(cap.last);
}

static void test_batches(void **state)
{
    (void)state;
    struct capture cap = new_capture();
    json_t *r = roundtrip(&cap, "[]");
    assert_true(json_is_object(r)); /* a single error, not an array */
    assert_int_equal(error_code(r), RPC_INVALID_REQUEST);
    json_decref(r);

    r = roundtrip(&cap, "[1,2,3]");
    assert_true(json_is_array(r));
    assert_int_equal(json_array_size(r), 3);
    for (size_t i = 0; i < 3; i++) assert_int_equal(error_code(json_array_get(r, i)), RPC_INVALID_REQUEST);
    json_decref(r);

    r = roundtrip(&cap, "[{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":[1,2],\"id\":\"1\"},"
                        "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[7]},"
                        "{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":[42,23],\"id\":\"2\"},"
                        "{\"foo\":\"boo\"},"
                        "{\"jsonrpc\":\"2.0\",\"method\":\"foo.get\",\"params\":{\"name\":\"myself\"},\"id\":\"5\"}]");
    assert_true(json_is_array(r));
    assert_int_equal(json_array_size(r), 4); /* the notification is not answered */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "result")), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 1), "result")), 65);
    json_decref(r);

    /* RPC_MAX_BATCH requests are run; one more and the whole batch is one -32600, nothing runs */
    for (int n = RPC_MAX_BATCH; n <= RPC_MAX_BATCH + 1; n++) {
        json_t *big = json_array();
        for (int i = 0; i < n; i++)
            json_array_append_new(big, json_pack("{s:s, s:s, s:[i], s:i}", "jsonrpc", "2.0", "method", "echo", "params", i, "id", i));
        char *text = json_dumps(big, JSON_COMPACT);
        json_decref(big);
        g_dispatched = 0;
        r = roundtrip(&cap, text);
        free(text);
        if (n == RPC_MAX_BATCH) {
            assert_true(json_is_array(r));
            assert_int_equal(json_array_size(r), RPC_MAX_BATCH);
            assert_int_equal(g_dispatched, RPC_MAX_BATCH);
        } else {
            assert_true(json_is_object(r));
            assert_int_equal(error_code(r), RPC_INVALID_REQUEST);
            assert_true(json_is_null(json_object_get(r, "id")));
            assert_non_null(strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")), "at most 128 per batch"));
            assert_int_equal(g_dispatched, 0);
        }
        json_decref(r);
    }

    /* a batch of notifications only: nothing at all is sent */
    assert_null(roundtrip(&cap, "[{\"jsonrpc\":\"2.0\",\"method\":\"echo\"},{\"jsonrpc\":\"2.0\",\"method\":\"echo\"}]"));

    /* the response to a batch waits for its slowest call */
    g_deferred = NULL;
    assert_null(roundtrip(&cap, "[{\"jsonrpc\":\"2.0\",\"method\":\"slow\",\"id\":1},"
                                "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":2}]"));
    assert_non_null(g_deferred);
    assert_int_equal(cap.refs, 1); /* the sink is held while a call is pending */
    int before = cap.sends;
    rpc_call_result(g_deferred, json_string("late"));
    assert_int_equal(cap.sends, before + 1);
    r = json_loads(cap.last, 0, NULL);
    assert_int_equal(json_array_size(r), 2);
    json_decref(r);
    assert_int_equal(cap.refs, 0);
    free(cap.last);
}

static void test_param_checks(void **state)
{
    (void)state;
    static const struct rpc_param_spec spec[] = {
        {"name", RPC_T_STRING, true, 1, 8},
        {"force", RPC_T_BOOLEAN, false, 1, 0},
        {"timeout", RPC_T_INTEGER, false, 1, 600},
    };
    char msg[200];
    const char *field;
    json_t *out = NULL;
    json_t *p = json_pack("{s:s, s:b}", "name", "vm1", "force", 1);
    assert_int_equal(rpc_check_params(p, spec, 3, &out, msg, sizeof(msg), &field), 0);
    assert_true(json_is_true(json_object_get(out, "force")));
    json_decref(out);
    json_decref(p);

    p = json_pack("[s, b, i]", "vm1", 0, 30); /* by position */
    assert_int_equal(rpc_check_params(p, spec, 3, &out, msg, sizeof(msg), &field), 0);
    assert_int_equal(json_integer_value(json_object_get(out, "timeout")), 30);
    json_decref(out);
    json_decref(p);

    struct {
        const char *json, *field;
    } bad[] = {
        {"{}", "name"},
        {"{\"name\":\"\"}", "name"},
        {"{\"name\":\"waytoolongname\"}", "name"},
        {"{\"name\":\"a\",\"force\":\"yes\"}", "force"},
        {"{\"name\":\"a\",\"timeout\":0}", "timeout"},
        {"{\"name\":\"a\",\"timeout\":1.5}", "timeout"},
        {"{\"name\":\"a\",\"colour\":1}", "colour"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = json_loads(bad[i].json, 0, NULL);
        assert_int_equal(rpc_check_params(p, spec, 3, &out, msg, sizeof(msg), &field), -EINVAL);
        assert_non_null(field);
        assert_string_equal(field, bad[i].field);
        assert_non_null(strstr(msg, bad[i].field));
        json_decref(p);
    }
    p = json_loads("[\"a\",true,5,\"extra\"]", 0, NULL);
    assert_int_equal(rpc_check_params(p, spec, 3, &out, msg, sizeof(msg), &field), -EINVAL);
    json_decref(p);

    /* "\u0000" inside a string, at the top or nested, is refused naming the parameter (the codec
     * parses with JSON_ALLOW_NUL, so the string arrives whole, longer than its C string) */
    static const struct rpc_param_spec nspec[] = {
        {"name", RPC_T_STRING, true, 1, 64},
        {"disks", RPC_T_ARRAY, false, 1, 0},
    };
    const char *nul[] = {
        "{\"name\":\"vm\\u0000/../../etc\"}",
        "{\"name\":\"\\u0000\"}",
        "{\"name\":\"ok\",\"disks\":[{\"path\":\"/img/a\\u0000b\"}]}",
        "[\"a\\u0000\"]",
    };
    const char *nul_field[] = {"name", "name", "disks", "name"};
    for (size_t i = 0; i < sizeof(nul) / sizeof(nul[0]); i++) {
        p = json_loads(nul[i], JSON_ALLOW_NUL, NULL);
        assert_non_null(p);
        out = NULL;
        assert_int_equal(rpc_check_params(p, nspec, 2, &out, msg, sizeof(msg), &field), -EINVAL);
        assert_null(out);
        assert_string_equal(field, nul_field[i]);
        assert_non_null(strstr(msg, "NUL"));
        json_decref(p);
    }
    p = json_loads("{\"name\":\"ok\",\"disks\":[{\"path\":\"/img/a\"}]}", JSON_ALLOW_NUL, NULL);
    assert_int_equal(rpc_check_params(p, nspec, 2, &out, msg, sizeof(msg), &field), 0);
    json_decref(out);
    json_decref(p);
}

static void test_base64(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0, 0xff, 'a', '\n', 0x80};
    for (size_t n = 0; n <= sizeof(bytes); n++) {
        char *t = rpc_base64_encode(bytes, n);
        size_t m = 99;
        uint8_t *d = rpc_base64_decode(t, &m);
        assert_non_null(d);
        assert_int_equal(m, n);
        assert_memory_equal(d, bytes, n);
        free(d);
        free(t);
    }
    size_t m;
    assert_null(rpc_base64_decode("abc", &m));
    assert_null(rpc_base64_decode("a!c=", &m));
}

/* Hostile input: mutated requests and random bytes, split at random points, never crash the
 * codec (this suite runs under ASan/UBSan) and every answer is a valid JSON-RPC response. */
static void test_hostile_input(void **state)
{
    (void)state;
    static const char *seeds[] = {
        "{\"jsonrpc\":\"2.0\",\"method\":\"sum\",\"params\":{\"a\":1,\"b\":2,\"name\":\"x\"},\"id\":1}",
        "[{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1,{\"k\":[true,null]}],\"id\":\"z\"},{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}]",
        "{\"jsonrpc\":\"2.0\",\"method\":\"slow\",\"id\":9}",
    };
    struct capture cap = new_capture();
    unsigned seed = 12345;
    char buf[512];
    for (int iter = 0; iter < 20000; iter++) {
        const char *src = seeds[iter % 3];
        size_t n = strlen(src);
        memcpy(buf, src, n);
        int muts = 1 + (int)(rand_r(&seed) % 4);
        for (int k = 0; k < muts && n > 0; k++) {
            size_t at = (size_t)rand_r(&seed) % n;
            switch (rand_r(&seed) % 3) {
            case 0: buf[at] = (char)(rand_r(&seed) & 0xff); break;            /* flip a byte */
            case 1: n = at; break;                                             /* truncate */
            default: if (n + 1 < sizeof(buf)) { memmove(buf + at + 1, buf + at, n - at); buf[at] = "{}[]\",:0\\"[rand_r(&seed) % 10]; n++; }
            }
        }
        g_deferred = NULL;
        int before = cap.sends;
        rpc_handle_message(buf, n, dispatch, NULL, &cap.sink);
        if (g_deferred) rpc_call_result(g_deferred, json_true());
        if (cap.sends > before) {
            json_t *r = json_loads(cap.last, JSON_DECODE_ANY, NULL);
            assert_non_null(r);
            json_t *one = json_is_array(r) ? json_array_get(r, 0) : r;
            assert_non_null(one);
            assert_string_equal(json_string_value(json_object_get(one, "jsonrpc")), "2.0");
            assert_true(json_object_get(one, "result") != NULL || json_object_get(one, "error") != NULL);
            json_decref(r);
        }
    }
    assert_int_equal(cap.refs, 0);
    free(cap.last);
    /* and the framer with random splits of a stream of such messages */
    struct rpc_framer f;
    struct lines l = {0};
    rpc_framer_init(&f, 200);
    for (int iter = 0; iter < 2000; iter++) {
        for (size_t i = 0; i < 32; i++) buf[i] = (char)(rand_r(&seed) % 4 == 0 ? '\n' : 'a' + rand_r(&seed) % 26);
        l.n = 0;
        int r = rpc_framer_feed(&f, buf, 32, collect_line_bounded, &l);
        assert_true(r == 0 || r == -EMSGSIZE);
    }
    rpc_framer_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framer_split_and_multiple),
        cmocka_unit_test(test_framer_oversize),
        cmocka_unit_test(test_ids_round_trip),
        cmocka_unit_test(test_standard_errors),
        cmocka_unit_test(test_notifications_get_no_response),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_param_checks),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_hostile_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
