/* Unit tests for vmm/vm_config_json: a definition survives JSON and back; bad fields are named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vm_config_json.h"

static void test_round_trip(void **state)
{
    (void)state;
    struct vm_config a, b;
    char err[256];
    vm_config_init(&a);
    const char *opts[][2] = {
        {"name", "web1"},        {"memory", "512"},         {"cpus", "1"},
        {"accel", "emu"},        {"kernel", "/k/vmlinuz"},  {"initrd", "/k/initrd.img"},
        {"cmdline", "console=ttyS0 quiet"}, {"disk", "/d/root.img"}, {"disk", "/d/ro.img,readonly"},
        {"disk", "/d/ov.qcow2,format=qcow2"}, {"disk", "/d/b.img,format=raw,readonly"},
        {"net", "slirp,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:5353-:53"}, {"net", "tap:br0"},
        {"vnc", "127.0.0.1:5901"}, {"device", "isa-debug-exit"},
        {"on-panic", "reboot"}, {"boot-protocol", "32"},
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        assert_int_equal(vm_config_set(&a, opts[i][0], opts[i][1], err, sizeof(err)), 0);
    json_t *j = vm_config_to_json(&a);
    char *text = json_dumps(j, JSON_SORT_KEYS);
    json_decref(j);
    json_t *j2 = json_loads(text, 0, NULL);
    vm_config_init(&b);
    const char *field = NULL;
    assert_int_equal(vm_config_from_json(&b, j2, err, sizeof(err), &field), 0);
    json_decref(j2);
    assert_string_equal(b.name, "web1");
    assert_int_equal(b.memory_mib, 512);
    assert_int_equal(b.accel, ACCEL_EMU);
    assert_string_equal(b.kernel, "/k/vmlinuz");
    assert_string_equal(b.initrd, "/k/initrd.img");
    assert_string_equal(b.cmdline, "console=ttyS0 quiet");
    assert_int_equal(b.ndisks, 4);
    assert_false(b.disks[0].readonly);
    assert_true(b.disks[1].readonly);
    assert_string_equal(b.disks[1].path, "/d/ro.img");
    /* a format given is kept; none given stays unset (vm.create fixes it from the image) */
    assert_int_equal(b.disks[0].format, DISK_FORMAT_UNSET);
    assert_int_equal(b.disks[2].format, DISK_FORMAT_QCOW2);
    assert_string_equal(b.disks[2].path, "/d/ov.qcow2");
    assert_int_equal(b.disks[3].format, DISK_FORMAT_RAW);
    assert_true(b.disks[3].readonly);
    assert_int_equal(b.nnets, 2);
    assert_int_equal(b.nets[0].kind, NET_SLIRP);
    assert_int_equal(b.nets[0].nhostfwd, 2);
    assert_true(b.nets[0].hostfwd[1].udp);
    assert_string_equal(b.nets[0].hostfwd[1].host_addr, "127.0.0.1");
    assert_int_equal(b.nets[0].hostfwd[1].host_port, 5353);
    assert_int_equal(b.nets[0].hostfwd[1].guest_port, 53);
    assert_int_equal(b.nets[1].kind, NET_TAP);
    assert_string_equal(b.nets[1].bridge, "br0");
    assert_string_equal(b.vnc, "127.0.0.1:5901");
    assert_int_equal(b.devices, VM_DEVICE_ISA_DEBUG_EXIT);
    assert_int_equal(b.on_panic, ON_PANIC_REBOOT);
    assert_int_equal(b.boot_protocol, BOOT_PROTOCOL_32);
    /* and the second serialisation is identical to the first */
    j = vm_config_to_json(&b);
    char *text2 = json_dumps(j, JSON_SORT_KEYS);
    json_decref(j);
    assert_string_equal(text, text2);
    free(text);
    free(text2);
    vm_config_free(&a);
    vm_config_free(&b);
}

static void test_bad_fields_are_named(void **state)
{
    (void)state;
    struct {
        const char *json, *field;
    } cases[] = {
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"memory_mib\":\"lots\"}", "memory_mib"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"memory_mib\":4}", "memory_mib"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"vcpus\":0}", "vcpus"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"accel\":\"xen\"}", "accel"},
        {"{\"name\":\"a/b\",\"kernel\":\"/k\"}", "name"},
        {"{\"name\":\"\",\"kernel\":\"/k\"}", "name"},
        {"{\"name\":\"a\"}", "kernel"},
        {"{\"name\":\"a\",\"kernel\":5}", "kernel"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":[{\"readonly\":true}]}", "disks"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":[{\"path\":\"/d\",\"format\":\"vmdk\"}]}", "disks"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":[{\"path\":\"/d\",\"format\":1}]}", "disks"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"disks\":[\"/d,format=vmdk\"]}", "disks"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"nets\":[{\"type\":\"vde\"}]}", "nets"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"nets\":[{\"type\":\"slirp\",\"hostfwd\":[\"tcp::x-:22\"]}]}", "nets"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"vnc\":\"nocolon\"}", "vnc"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"colour\":\"red\"}", "colour"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"accel\":\"emu\",\"vcpus\":2}", "vcpus"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"devices\":[\"pvpanic2\"]}", "devices"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"devices\":\"isa-debug-exit\"}", "devices"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"devices\":[7]}", "devices"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"on_panic\":\"pause\"}", "on_panic"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"boot_protocol\":16}", "boot_protocol"},
        {"{\"name\":\"a\",\"kernel\":\"/k\",\"boot_protocol\":\"32\"}", "boot_protocol"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = json_loads(cases[i].json, 0, NULL);
        assert_non_null(j);
        struct vm_config c;
        vm_config_init(&c);
        char err[256] = "";
        const char *field = NULL;
        assert_int_equal(vm_config_from_json(&c, j, err, sizeof(err), &field), -EINVAL);
        assert_non_null(field);
        assert_string_equal(field, cases[i].field);
        assert_true(strlen(err) > 0);
        vm_config_free(&c);
        json_decref(j);
    }
}

/* cloud_init: kept in the definition as given; every bad form is refused naming the field. */
static void test_cloud_init(void **state)
{
    (void)state;
    struct vm_config c;
    char err[256];
    const char *field;
    json_t *j = json_pack("{s:s, s:s, s:{s:s, s:s}}", "name", "ci", "kernel", "/k", "cloud_init", "user_data",
                          "#cloud-config\nhostname: ci\n", "network_config", "version: 2\n");
    vm_config_init(&c);
    assert_int_equal(vm_config_from_json(&c, j, err, sizeof(err), &field), 0);
    json_decref(j);
    assert_string_equal(c.cloud_init.user_data, "#cloud-config\nhostname: ci\n");
    assert_null(c.cloud_init.meta_data);
    assert_string_equal(c.cloud_init.network_config, "version: 2\n");
    assert_null(c.cloud_init_seed); /* never from JSON */
    j = vm_config_to_json(&c);
    json_t *ci = json_object_get(j, "cloud_init");
    assert_string_equal(json_string_value(json_object_get(ci, "user_data")), "#cloud-config\nhostname: ci\n");
    assert_null(json_object_get(ci, "meta_data"));
    assert_string_equal(json_string_value(json_object_get(ci, "network_config")), "version: 2\n");
    json_decref(j);
    vm_config_free(&c);

    /* without cloud_init there is no cloud_init in the JSON */
    vm_config_init(&c);
    vm_config_set(&c, "kernel", "/k", err, sizeof(err));
    j = vm_config_to_json(&c);
    assert_null(json_object_get(j, "cloud_init"));
    json_decref(j);
    vm_config_free(&c);

    char *big = malloc(VM_CLOUD_INIT_MAX_BYTES + 2);
    memset(big, 'y', VM_CLOUD_INIT_MAX_BYTES + 1);
    big[VM_CLOUD_INIT_MAX_BYTES + 1] = 0;
    struct {
        json_t *ci;
        const char *field, *msg;
    } bad[] = {
        {json_string("#cloud-config"), "cloud_init", "cloud_init: must be an object"},
        {json_pack("{}"), "cloud_init.user_data", "cloud_init.user_data: required"},
        {json_pack("{s:s}", "meta_data", "x"), "cloud_init.user_data", "cloud_init.user_data: required"},
        {json_pack("{s:i}", "user_data", 5), "cloud_init.user_data", "cloud_init.user_data: must be a string"},
        {json_pack("{s:s, s:[]}", "user_data", "", "meta_data"), "cloud_init.meta_data", "cloud_init.meta_data: must be a string"},
        {json_pack("{s:s, s:b}", "user_data", "", "network_config", 1), "cloud_init.network_config", "must be a string"},
        {json_pack("{s:s, s:s}", "user_data", "", "vendor_data", ""), "cloud_init", "cloud_init.vendor_data: unknown field"},
        {json_pack("{s:s}", "user_data", big), "cloud_init.user_data", "65537 bytes, more than the 65536 allowed"},
        {json_pack("{s:s, s:s%}", "user_data", "", "meta_data", "a\0b", (size_t)3), "cloud_init.meta_data", "contains a NUL byte"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_non_null(bad[i].ci);
        j = json_pack("{s:s, s:s, s:o}", "name", "ci", "kernel", "/k", "cloud_init", bad[i].ci);
        vm_config_init(&c);
        field = NULL;
        assert_int_equal(vm_config_from_json(&c, j, err, sizeof(err), &field), -EINVAL);
        assert_non_null(field);
        assert_string_equal(field, bad[i].field);
        if (!strstr(err, bad[i].msg)) fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].msg);
        vm_config_free(&c);
        json_decref(j);
    }
    big[VM_CLOUD_INIT_MAX_BYTES] = 0; /* exactly the limit is fine */
    j = json_pack("{s:s, s:s, s:{s:s}}", "name", "ci", "kernel", "/k", "cloud_init", "user_data", big);
    vm_config_init(&c);
    assert_int_equal(vm_config_from_json(&c, j, err, sizeof(err), &field), 0);
    vm_config_free(&c);
    json_decref(j);
    free(big);
}

static void test_names(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(vm_name_check("web-1.test_x", err, sizeof(err)), 0);
    assert_int_equal(vm_name_check("-x", err, sizeof(err)), -EINVAL);
    assert_int_equal(vm_name_check("..", err, sizeof(err)), -EINVAL);
    assert_int_equal(vm_name_check("a b", err, sizeof(err)), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_bad_fields_are_named),
        cmocka_unit_test(test_cloud_init),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
