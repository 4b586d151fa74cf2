/* vmctl create NAME [the run options]: define a VM in vmd (vm.create). Paths are made absolute
 * here, since vmd resolves nothing relative to the client's directory. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/vm_options.h"
#include "vmm/vm_config_json.h"

static void create_usage(FILE *f)
{
    fprintf(f, "usage: vmctl create NAME --kernel KERNEL [--initrd FILE] [--cmdline S] [--memory MIB] [--cpus N]\n"
               "       vmctl create NAME --firmware ROM [options]\n"
               "                   [--accel auto|kvm|emu] [--irqchip auto|pic|apic] [--disk PATH[,readonly][,format=raw|qcow2]]... [--net SPEC]... [--vnc ADDR:PORT]\n"
               "                   [--device isa-debug-exit] [--on-panic auto|stop|reboot|ignore] [--boot-protocol auto|32|64]\n"
               "                   [--cloud-init USER-DATA [--cloud-init-meta FILE] [--cloud-init-network FILE]]\n"
               "                   [--request-id ID] [--autostart]\n"
               "Options are those of 'vmctl run' (see vmctl run --help). --request-id makes the call safe to retry:\n"
               "the same ID with the same options answers the VM it created instead of failing. --autostart:\n"
               "vmd starts the VM whenever vmd starts (see vmctl autostart).\n"
               "--cloud-init* read their files here and send the texts in vm.create's cloud_init; vmd makes the\n"
               "seed image (docs/operations.md).\n");
}

static char *absolute(const char *path)
{
    char *r = realpath(path, NULL);
    if (r) return r;
    if (path[0] == '/') return strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof(cwd))) return strdup(path);
    char *out;
    if (asprintf(&out, "%s/%s", cwd, path) < 0) return NULL;
    return out;
}

int cmd_create(int argc, char **argv)
{
    static const struct option opts[] = {
        VM_CONFIG_LONG_OPTIONS,
        {"request-id", required_argument, 0, 'r'},
        {"autostart", no_argument, 0, 'a'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct vm_config cfg;
    vm_config_init(&cfg);
    char err[512];
    int idx, c, rc = VMCTL_EXIT_USAGE;
    const char *request_id = NULL;
    bool autostart = false;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        if (c == 'h') {
            create_usage(stdout);
            rc = VMCTL_EXIT_OK;
            goto out;
        }
        if (c == 'r') {
            request_id = optarg;
            continue;
        }
        if (c == 'a') {
            autostart = true;
            continue;
        }
        if (c != 0) {
            fprintf(stderr, "vmctl create: option '%s': unknown or missing its value\n", argv[optind - 1]);
            create_usage(stderr);
            goto out;
        }
        const char *v = optarg;
        char *abs = NULL;
        if (!strcmp(opts[idx].name, "kernel") || !strcmp(opts[idx].name, "initrd") ||
            !strcmp(opts[idx].name, "firmware"))
            v = abs = absolute(optarg);
        else if (!strcmp(opts[idx].name, "disk")) {
            char *comma = strchr(optarg, ',');
            char *p = strndup(optarg, comma ? (size_t)(comma - optarg) : strlen(optarg));
            char *a = absolute(p);
            if (asprintf(&abs, "%s%s", a, comma ? comma : "") < 0) abs = NULL;
            free(p);
            free(a);
            v = abs;
        }
        int r = vm_option_apply(&cfg, opts[idx].name, v ? v : optarg, err, sizeof(err));
        free(abs);
        if (r) {
            fprintf(stderr, "vmctl create: %s\n", err);
            goto out;
        }
    }
    if (optind < argc && !cfg.name) vm_config_set(&cfg, "name", argv[optind++], err, sizeof(err));
    if (optind < argc) {
        fprintf(stderr, "vmctl create: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    if (!cfg.name) {
        fprintf(stderr, "vmctl create: a VM NAME is required\n");
        create_usage(stderr);
        goto out;
    }
    if (!cfg.cloud_init.user_data && (cfg.cloud_init.meta_data || cfg.cloud_init.network_config)) {
        fprintf(stderr, "vmctl create: --cloud-init-meta and --cloud-init-network need --cloud-init USER-DATA\n");
        goto out;
    }
    json_t *params = vm_config_to_json(&cfg), *result;
    if (request_id) json_object_set_new(params, "request_id", json_string(request_id));
    if (autostart) json_object_set_new(params, "autostart", json_true());
    rc = vmctl_call("create", "vm.create", params, &result);
    if (rc == 0) {
        if (vmctl_globals.json) vmctl_print_json(result);
        else printf("VM '%s' defined\n", cfg.name);
        json_decref(result);
    }
out:
    vm_config_free(&cfg);
    return rc;
}
