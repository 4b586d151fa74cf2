/* fuzz_vm_config: libFuzzer target for VM definitions: vm_config_from_json (the form vm.create
 * takes and the daemon stores, vmm/vm_config_json.c) and vm_config_set (the command-line
 * options, vmm/vm_config.c: --memory, --disk PATH[,readonly], --net slirp,hostfwd=...|tap,...,
 * --vnc ADDR:PORT, ...), cloud_init {user_data, meta_data, network_config} included.
 *
 * First byte even: the rest is a JSON document. Odd: the rest is lines "option=value" applied
 * in order. Whatever is accepted must validate or be refused with a message, and must survive
 * a round trip through JSON unchanged in meaning (to_json(from_json(to_json(c))) is stable).
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vm_config.h"
#include "vmm/vm_config_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* strict: c came from JSON, so its own JSON must be accepted again. */
static void round_trip(const struct vm_config *c, bool strict)
{
    char err[600];
    const char *field = NULL;
    json_t *j1 = vm_config_to_json(c);
    if (!j1) abort();
    struct vm_config c2;
    vm_config_init(&c2);
    int r = vm_config_from_json(&c2, j1, err, sizeof(err), &field);
    if (r == 0) {
        json_t *j2 = vm_config_to_json(&c2);
        if (!j2 || !json_equal(j1, j2)) abort(); /* the round trip changed the definition */
        json_decref(j2);
    } else if (strict) {
        abort(); /* a config accepted from JSON was refused in its own JSON form */
    }
    vm_config_free(&c2);
    json_decref(j1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384) return 0;
    char *text = strndup((const char *)data + 1, size - 1);
    if (!text) return 0;
    char err[600] = "";
    struct vm_config c;
    vm_config_init(&c);

    if ((data[0] & 1) == 0) {
        json_error_t je;
        json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
        if (j) {
            const char *field = NULL;
            if (vm_config_from_json(&c, j, err, sizeof(err), &field) == 0) {
                round_trip(&c, true);
            } else if (!err[0]) {
                abort(); /* refused without saying why */
            }
            json_decref(j);
        }
    } else {
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char *eq = strchr(line, '=');
            if (!eq) continue;
            *eq = '\0';
            err[0] = '\0';
            if (vm_config_set(&c, line, eq + 1, err, sizeof(err)) < 0 && !err[0]) abort();
        }
        err[0] = '\0';
        if (vm_config_validate(&c, err, sizeof(err)) == 0)
            round_trip(&c, false);
        else if (!err[0])
            abort();
        struct vm_net n;
        memset(&n, 0, sizeof(n));
        vm_net_parse(&n, text, err, sizeof(err));
    }
    vm_config_free(&c);
    free(text);
    return 0;
}
