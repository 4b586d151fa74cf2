/* vm_config_json: conversion between struct vm_config and its JSON form, with field checks. */
#include "vm_config_json.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int vm_name_check(const char *name, char *err, size_t errlen)
{
    size_t n = strlen(name);
    if (n == 0 || n > 63) {
        snprintf(err, errlen, "name: must be 1 to 63 characters long");
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ((ch == '.' || ch == '-' || ch == '_') && i > 0);
        if (!ok) {
            snprintf(err, errlen, "name: '%s' may only contain letters, digits, '.', '-' and '_' (not first)", name);
            return -EINVAL;
        }
    }
    return 0;
}

static void format_hostfwd(const struct vm_hostfwd *f, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%s:%u-:%u", f->udp ? "udp" : "tcp", f->host_addr, f->host_port, f->guest_port);
}

json_t *vm_config_to_json(const struct vm_config *c)
{
    json_t *j = json_object();
    if (c->name) json_object_set_new(j, "name", json_string(c->name));
    json_object_set_new(j, "memory_mib", json_integer((json_int_t)c->memory_mib));
    json_object_set_new(j, "vcpus", json_integer(c->cpus));
    json_object_set_new(j, "accel", json_string(vm_accel_name(c->accel)));
    if (c->irqchip != IRQCHIP_AUTO) json_object_set_new(j, "irqchip", json_string(vm_irqchip_name(c->irqchip)));
    if (c->boot_protocol != BOOT_PROTOCOL_AUTO)
        json_object_set_new(j, "boot_protocol", json_integer(c->boot_protocol == BOOT_PROTOCOL_32 ? 32 : 64));
    if (c->on_panic != ON_PANIC_AUTO) json_object_set_new(j, "on_panic", json_string(vm_on_panic_name(c->on_panic)));
    if (c->kernel) json_object_set_new(j, "kernel", json_string(c->kernel));
    if (c->initrd) json_object_set_new(j, "initrd", json_string(c->initrd));
    if (c->firmware) json_object_set_new(j, "firmware", json_string(c->firmware));
    if (c->cmdline) json_object_set_new(j, "cmdline", json_string(c->cmdline));
    json_t *disks = json_array();
    for (unsigned i = 0; i < c->ndisks; i++) {
        json_t *d = json_pack("{s:s, s:b}", "path", c->disks[i].path, "readonly", c->disks[i].readonly);
        if (vm_disk_format_name(c->disks[i].format))
            json_object_set_new(d, "format", json_string(vm_disk_format_name(c->disks[i].format)));
        json_array_append_new(disks, d);
    }
    json_object_set_new(j, "disks", disks);
    json_t *nets = json_array();
    for (unsigned i = 0; i < c->nnets; i++) {
        const struct vm_net *n = &c->nets[i];
        if (n->kind == NET_TAP) {
            json_array_append_new(nets, json_pack("{s:s, s:s}", "type", "tap", "bridge", n->bridge));
        } else {
            json_t *fwd = json_array();
            for (unsigned k = 0; k < n->nhostfwd; k++) {
                char buf[128];
                format_hostfwd(&n->hostfwd[k], buf, sizeof(buf));
                json_array_append_new(fwd, json_string(buf));
            }
            json_array_append_new(nets, json_pack("{s:s, s:o}", "type", "slirp", "hostfwd", fwd));
        }
    }
    json_object_set_new(j, "nets", nets);
    if (c->vnc) json_object_set_new(j, "vnc", json_string(c->vnc));
    if (c->cloud_init.user_data) {
        json_t *ci = json_pack("{s:s}", "user_data", c->cloud_init.user_data);
        if (c->cloud_init.meta_data) json_object_set_new(ci, "meta_data", json_string(c->cloud_init.meta_data));
        if (c->cloud_init.network_config)
            json_object_set_new(ci, "network_config", json_string(c->cloud_init.network_config));
        json_object_set_new(j, "cloud_init", ci);
    }
    if (c->devices) {
        json_t *devs = json_array();
        for (unsigned bit = 1; bit; bit <<= 1)
            if ((c->devices & bit) && vm_device_name(bit)) json_array_append_new(devs, json_string(vm_device_name(bit)));
        json_object_set_new(j, "devices", devs);
    }
    return j;
}

#define FIELD_FAIL(f, ...)                  \
    do {                                    \
        snprintf(err, errlen, __VA_ARGS__); \
        *field = (f);                       \
        return -EINVAL;                     \
    } while (0)

/* Apply a string field through vm_config_set so the checks are the command line's. */
static int set_string(struct vm_config *c, const json_t *j, const char *key, const char *option, char *err,
                      size_t errlen, const char **field)
{
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) FIELD_FAIL(key, "%s: must be a string", key);
    if (vm_config_set(c, option, json_string_value(v), err, errlen)) {
        *field = key;
        return -EINVAL;
    }
    return 0;
}

static int set_integer(struct vm_config *c, const json_t *j, const char *key, const char *option, char *err,
                       size_t errlen, const char **field)
{
    json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) FIELD_FAIL(key, "%s: must be an integer", key);
    char num[32];
    snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
    if (vm_config_set(c, option, num, err, errlen)) {
        *field = key;
        return -EINVAL;
    }
    return 0;
}

static int set_disks(struct vm_config *c, const json_t *disks, char *err, size_t errlen, const char **field)
{
    if (!disks || json_is_null(disks)) return 0;
    if (!json_is_array(disks)) FIELD_FAIL("disks", "disks: must be an array");
    if (json_array_size(disks) > VM_MAX_DISKS) FIELD_FAIL("disks", "disks: at most %d disks", VM_MAX_DISKS);
    size_t i;
    json_t *d;
    json_array_foreach(disks, i, d) {
        json_t *path = json_is_object(d) ? json_object_get(d, "path") : d;
        json_t *ro = json_is_object(d) ? json_object_get(d, "readonly") : NULL;
        json_t *fmt = json_is_object(d) ? json_object_get(d, "format") : NULL;
        if (!json_is_string(path) || !json_string_length(path))
            FIELD_FAIL("disks", "disks[%zu]: expected {\"path\": STRING, \"readonly\": BOOL, \"format\": \"raw\"|\"qcow2\"}", i);
        if (ro && !json_is_boolean(ro)) FIELD_FAIL("disks", "disks[%zu].readonly: must be a boolean", i);
        if (fmt && !json_is_null(fmt) &&
            (!json_is_string(fmt) || (strcmp(json_string_value(fmt), "raw") && strcmp(json_string_value(fmt), "qcow2"))))
            FIELD_FAIL("disks", "disks[%zu].format: must be \"raw\" or \"qcow2\"", i);
        if (strchr(json_string_value(path), ','))
            FIELD_FAIL("disks", "disks[%zu].path: must not contain ','", i);
        char spec[4200];
        snprintf(spec, sizeof(spec), "%s%s%s%s", json_string_value(path), json_is_true(ro) ? ",readonly" : "",
                 json_is_string(fmt) ? ",format=" : "", json_is_string(fmt) ? json_string_value(fmt) : "");
        if (vm_config_set(c, "disk", spec, err, errlen)) {
            *field = "disks";
            return -EINVAL;
        }
    }
    return 0;
}

static int set_nets(struct vm_config *c, const json_t *nets, char *err, size_t errlen, const char **field)
{
    if (!nets || json_is_null(nets)) return 0;
    if (!json_is_array(nets)) FIELD_FAIL("nets", "nets: must be an array");
    if (json_array_size(nets) > VM_MAX_NETS) FIELD_FAIL("nets", "nets: at most %d interfaces", VM_MAX_NETS);
    size_t i;
    json_t *n;
    json_array_foreach(nets, i, n) {
        char spec[1200];
        if (json_is_string(n)) { /* the command line's spelling is accepted too */
            snprintf(spec, sizeof(spec), "%s", json_string_value(n));
        } else {
            const char *type = json_string_value(json_object_get(n, "type"));
            if (!json_is_object(n) || !type) FIELD_FAIL("nets", "nets[%zu]: expected {\"type\": \"slirp\"|\"tap\", ...}", i);
            if (!strcmp(type, "tap")) {
                const char *br = json_string_value(json_object_get(n, "bridge"));
                if (!br) FIELD_FAIL("nets", "nets[%zu].bridge: required for type tap", i);
                snprintf(spec, sizeof(spec), "tap:%s", br);
            } else if (!strcmp(type, "slirp")) {
                size_t off = (size_t)snprintf(spec, sizeof(spec), "slirp");
                json_t *fwd = json_object_get(n, "hostfwd");
                if (fwd && !json_is_array(fwd)) FIELD_FAIL("nets", "nets[%zu].hostfwd: must be an array of strings", i);
                size_t k;
                json_t *f;
                json_array_foreach(fwd, k, f) {
                    if (!json_is_string(f)) FIELD_FAIL("nets", "nets[%zu].hostfwd[%zu]: must be a string", i, k);
                    if (off + json_string_length(f) + 10 >= sizeof(spec))
                        FIELD_FAIL("nets", "nets[%zu].hostfwd: too long", i);
                    off += (size_t)snprintf(spec + off, sizeof(spec) - off, ",hostfwd=%s", json_string_value(f));
                }
            } else {
                FIELD_FAIL("nets", "nets[%zu].type: '%s' is not slirp or tap", i, type);
            }
        }
        if (vm_config_set(c, "net", spec, err, errlen)) {
            *field = "nets";
            return -EINVAL;
        }
    }
    return 0;
}

/* cloud_init: {user_data, meta_data, network_config}, strings (null: absent), user_data required. */
static int set_cloud_init(struct vm_config *c, const json_t *ci, char *err, size_t errlen, const char **field)
{
    static const struct {
        const char *key, *field;
    } keys[] = {{"user_data", "cloud_init.user_data"},
                {"meta_data", "cloud_init.meta_data"},
                {"network_config", "cloud_init.network_config"}};
    if (!ci || json_is_null(ci)) return 0;
    if (!json_is_object(ci))
        FIELD_FAIL("cloud_init", "cloud_init: must be an object {\"user_data\": STRING, \"meta_data\": STRING, "
                                 "\"network_config\": STRING}");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)ci, key, v) {
        size_t i;
        for (i = 0; i < 3 && strcmp(keys[i].key, key); i++) {
        }
        if (i == 3) FIELD_FAIL("cloud_init", "cloud_init.%.64s: unknown field (expected user_data, meta_data, network_config)", key);
    }
    char **dst[3] = {&c->cloud_init.user_data, &c->cloud_init.meta_data, &c->cloud_init.network_config};
    for (size_t i = 0; i < 3; i++) {
        v = json_object_get(ci, keys[i].key);
        if (!v || json_is_null(v)) continue;
        if (!json_is_string(v)) FIELD_FAIL(keys[i].field, "%s: must be a string", keys[i].field);
        int r = vm_cloud_init_set(dst[i], keys[i].field, json_string_value(v), json_string_length(v), err, errlen);
        if (r) {
            *field = keys[i].field;
            return r;
        }
    }
    if (!c->cloud_init.user_data) FIELD_FAIL("cloud_init.user_data", "cloud_init.user_data: required");
    return 0;
}

static int set_devices(struct vm_config *c, const json_t *devs, char *err, size_t errlen, const char **field)
{
    if (!devs || json_is_null(devs)) return 0;
    if (!json_is_array(devs)) FIELD_FAIL("devices", "devices: must be an array of device names");
    if (json_array_size(devs) > 8) FIELD_FAIL("devices", "devices: at most 8 entries");
    size_t i;
    json_t *d;
    json_array_foreach(devs, i, d) {
        if (!json_is_string(d)) FIELD_FAIL("devices", "devices[%zu]: must be a string (e.g. \"isa-debug-exit\")", i);
        if (vm_config_set(c, "device", json_string_value(d), err, errlen)) {
            *field = "devices";
            return -EINVAL;
        }
    }
    return 0;
}

int vm_config_from_json(struct vm_config *c, const json_t *j, char *err, size_t errlen, const char **field)
{
    static const char *const known[] = {"name", "memory_mib", "vcpus", "accel", "irqchip", "kernel", "initrd",
                                        "cmdline", "firmware", "disks", "nets", "vnc", "cloud_init", "devices",
                                        "on_panic", "boot_protocol"};
    const char *dummy;
    if (!field) field = &dummy;
    *field = NULL;
    if (!json_is_object(j)) FIELD_FAIL(NULL, "a VM definition must be a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v) {
        size_t i;
        for (i = 0; i < sizeof(known) / sizeof(known[0]) && strcmp(known[i], key); i++) {
        }
        if (i == sizeof(known) / sizeof(known[0])) FIELD_FAIL(key, "%s: unknown field", key);
    }
    json_t *name = json_object_get(j, "name");
    if (name) {
        if (!json_is_string(name)) FIELD_FAIL("name", "name: must be a string");
        if (vm_name_check(json_string_value(name), err, errlen)) {
            *field = "name";
            return -EINVAL;
        }
    }
    int r;
    if ((r = set_string(c, j, "name", "name", err, errlen, field)) ||
        (r = set_integer(c, j, "memory_mib", "memory", err, errlen, field)) ||
        (r = set_integer(c, j, "vcpus", "cpus", err, errlen, field)) ||
        (r = set_string(c, j, "accel", "accel", err, errlen, field)) ||
        (r = set_string(c, j, "irqchip", "irqchip", err, errlen, field)) ||
        (r = set_string(c, j, "kernel", "kernel", err, errlen, field)) ||
        (r = set_string(c, j, "initrd", "initrd", err, errlen, field)) ||
        (r = set_string(c, j, "firmware", "firmware", err, errlen, field)) ||
        (r = set_string(c, j, "cmdline", "cmdline", err, errlen, field)) ||
        (r = set_string(c, j, "vnc", "vnc", err, errlen, field)) ||
        (r = set_string(c, j, "on_panic", "on-panic", err, errlen, field)) ||
        (r = set_integer(c, j, "boot_protocol", "boot-protocol", err, errlen, field)) ||
        (r = set_disks(c, json_object_get(j, "disks"), err, errlen, field)) ||
        (r = set_nets(c, json_object_get(j, "nets"), err, errlen, field)) ||
        (r = set_cloud_init(c, json_object_get(j, "cloud_init"), err, errlen, field)) ||
        (r = set_devices(c, json_object_get(j, "devices"), err, errlen, field)))
        return r;
    if (vm_config_validate(c, err, errlen)) {
        /* vm_config_validate's messages start with the option as on the command line; map it
         * back to the JSON field. */
        static const char *const map[][2] = {{"--kernel:", "kernel"}, {"--firmware:", "firmware"},
                                             {"--initrd:", "initrd"}, {"--cpus:", "vcpus"},
                                             {"--irqchip:", "irqchip"}};
        *field = NULL;
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (!strncmp(err, map[i][0], strlen(map[i][0]))) *field = map[i][1];
        return -EINVAL;
    }
    return 0;
}
