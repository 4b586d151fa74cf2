/* Unit tests for rpc/vmd_api: the C parameter table that vmd checks requests against says
 * exactly what rpc/openrpc.json (the API document) says: same methods, same parameters in the
 * same order, same types, required flags and bounds, same role (x-role). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "rpc/vmd_api.h"

static json_t *load_spec(void)
{
    const char *paths[] = {"rpc/openrpc.json", "../rpc/openrpc.json", "../../rpc/openrpc.json"};
    for (size_t i = 0; i < 3; i++) {
        json_t *j = json_load_file(paths[i], 0, NULL);
        if (j) return j;
    }
    fail_msg("rpc/openrpc.json not found or not JSON (run the tests from the repository root)");
    return NULL;
}

static const char *spec_type(enum rpc_param_type t)
{
    switch (t) {
    case RPC_T_STRING: return "string";
    case RPC_T_INTEGER: return "integer";
    case RPC_T_BOOLEAN: return "boolean";
    case RPC_T_ARRAY: return "array";
    default: return "object";
    }
}

static void test_table_matches_openrpc(void **state)
{
    (void)state;
    json_t *doc = load_spec();
    json_t *methods = json_object_get(doc, "methods");
    assert_true(json_is_array(methods));
    assert_int_equal(json_array_size(methods), vmd_api_nmethods);
    size_t i;
    json_t *m;
    json_array_foreach(methods, i, m) {
        const char *name = json_string_value(json_object_get(m, "name"));
        const struct vmd_api_method *c = vmd_api_find(name);
        if (!c) fail_msg("%s is in openrpc.json but not in rpc/vmd_api.c", name);
        json_t *params = json_object_get(m, "params");
        if (json_array_size(params) != c->nparams)
            fail_msg("%s: %zu params in openrpc.json, %zu in vmd_api.c", name, json_array_size(params), c->nparams);
        for (size_t k = 0; k < c->nparams; k++) {
            json_t *p = json_array_get(params, k), *schema = json_object_get(p, "schema");
            const struct rpc_param_spec *s = &c->params[k];
            if (strcmp(json_string_value(json_object_get(p, "name")), s->name))
                fail_msg("%s param %zu: '%s' vs '%s'", name, k, json_string_value(json_object_get(p, "name")), s->name);
            if (json_is_true(json_object_get(p, "required")) != s->required) fail_msg("%s.%s: required differs", name, s->name);
            if (strcmp(json_string_value(json_object_get(schema, "type")), spec_type(s->type)))
                fail_msg("%s.%s: type differs", name, s->name);
            const char *lo = s->type == RPC_T_INTEGER ? "minimum" : s->type == RPC_T_STRING ? "minLength" : "minItems";
            const char *hi = s->type == RPC_T_INTEGER ? "maximum" : s->type == RPC_T_STRING ? "maxLength" : "maxItems";
            json_t *jlo = json_object_get(schema, lo), *jhi = json_object_get(schema, hi);
            if (s->min <= s->max) {
                if (!json_is_integer(jlo) || !json_is_integer(jhi) || json_integer_value(jlo) != s->min ||
                    json_integer_value(jhi) != s->max)
                    fail_msg("%s.%s: bounds %lld..%lld in vmd_api.c differ from openrpc.json", name, s->name, s->min, s->max);
            } else if (jlo || jhi) {
                fail_msg("%s.%s: openrpc.json has bounds that vmd_api.c does not check", name, s->name);
            }
        }
        const char *role = json_string_value(json_object_get(m, "x-role"));
        if (!role || (strcmp(role, "admin") && strcmp(role, "read-only")))
            fail_msg("%s: x-role must be \"admin\" or \"read-only\" in openrpc.json", name);
        if (!strcmp(role, "read-only") != c->read_only)
            fail_msg("%s: x-role is %s in openrpc.json but read_only is %d in vmd_api.c", name, role, c->read_only);
        if (!json_is_array(json_object_get(m, "examples")) || !json_array_size(json_object_get(m, "examples")))
            fail_msg("%s: no example in openrpc.json", name);
    }
    json_decref(doc);
}

static void test_error_codes_documented(void **state)
{
    (void)state;
    json_t *doc = load_spec();
    json_t *errors = json_object_get(json_object_get(doc, "components"), "errors");
    const int codes[] = {RPC_PARSE_ERROR, RPC_INVALID_REQUEST, RPC_METHOD_NOT_FOUND, RPC_INVALID_PARAMS,
                         RPC_INTERNAL_ERROR, RPC_ERR_NO_SUCH_VM, RPC_ERR_WRONG_STATE, RPC_ERR_EXISTS,
                         RPC_ERR_WORKER, RPC_ERR_STORAGE, RPC_ERR_TIMEOUT, RPC_ERR_FORBIDDEN,
                         RPC_ERR_QUOTA, RPC_ERR_REQUEST_CONFLICT};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        bool found = false;
        const char *k;
        json_t *e;
        json_object_foreach(errors, k, e) {
            if (json_integer_value(json_object_get(e, "code")) == codes[i]) {
                found = true;
                assert_string_equal(json_string_value(json_object_get(e, "message")), rpc_error_name(codes[i]));
            }
        }
        if (!found) fail_msg("error code %d is not documented in openrpc.json", codes[i]);
    }
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_openrpc),
        cmocka_unit_test(test_error_codes_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
