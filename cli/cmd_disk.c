/* vmctl disk create [--backing BASE] [--size N[K|M|G|T]] [--cluster-size N[K|M]] IMAGE: make a
 * qcow2 image (version 3) locally, without the daemon: an empty disk of --size, or an overlay on
 * BASE (raw or qcow2; its size unless --size is given). BASE is stored as given: a relative name
 * is relative to IMAGE's directory, as QEMU resolves it, so keep base and overlays side by side in
 * an image directory. The base's format is recorded in the overlay and never probed again. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "vmm/block/qcow2.h"

static void disk_usage(FILE *f)
{
    fprintf(f, "usage: vmctl disk create [--backing BASE] [--size N[K|M|G|T]] [--cluster-size N[K|M]] IMAGE\n"
               "  Make a qcow2 image: an empty disk of --size, or an overlay whose unwritten clusters read\n"
               "  from BASE (raw or qcow2; a relative BASE is relative to IMAGE's directory). The size\n"
               "  defaults to BASE's. An existing IMAGE is never overwritten.\n");
}

/* "10G" -> bytes; -EINVAL for anything else. */
static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-') return -EINVAL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -EINVAL;
    unsigned shift = 0;
    if (*end) {
        const char *units = "KMGT";
        const char *u = strchr(units, *end == 'k' ? 'K' : *end);
        if (!u || !*u || (end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))) return -EINVAL;
        shift = 10 * (unsigned)(u - units + 1);
    }
    if (shift && v > (UINT64_MAX >> shift)) return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

int cmd_disk(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "create")) {
        bool help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"));
        disk_usage(help ? stdout : stderr);
        return help ? VMCTL_EXIT_OK : VMCTL_EXIT_USAGE;
    }
    static const struct option opts[] = {
        {"backing", required_argument, 0, 'b'},
        {"size", required_argument, 0, 's'},
        {"cluster-size", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct qcow2_create_opts o = {0};
    int c;
    optind = 1;
    opterr = 0;
    argc--;
    argv++; /* past "disk": argv[0] is "create" */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        uint64_t v;
        switch (c) {
        case 'b': o.backing = optarg; break;
        case 's':
            if (parse_size(optarg, &o.size) || !o.size) {
                fprintf(stderr, "vmctl disk create: --size '%s': expected a positive size such as 10G\n", optarg);
                return VMCTL_EXIT_USAGE;
            }
            break;
        case 'c':
            if (parse_size(optarg, &v) || v < 512 || v > (2u << 20) || (v & (v - 1))) {
                fprintf(stderr, "vmctl disk create: --cluster-size '%s': a power of two from 512 to 2M\n", optarg);
                return VMCTL_EXIT_USAGE;
            }
            o.cluster_bits = (unsigned)__builtin_ctzll(v);
            break;
        case 'h': disk_usage(stdout); return VMCTL_EXIT_OK;
        default:
            fprintf(stderr, "vmctl disk create: option '%s': unknown or missing its value\n", argv[optind - 1]);
            disk_usage(stderr);
            return VMCTL_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "vmctl disk create: exactly one IMAGE is needed\n");
        disk_usage(stderr);
        return VMCTL_EXIT_USAGE;
    }
    if (!o.backing && !o.size) {
        fprintf(stderr, "vmctl disk create: --size is needed without --backing\n");
        return VMCTL_EXIT_USAGE;
    }
    char err[700];
    if (qcow2_create(argv[optind], &o, err, sizeof(err))) {
        fprintf(stderr, "vmctl disk create: %s\n", err);
        return VMCTL_EXIT_FAIL;
    }
    printf("created %s\n", argv[optind]);
    return VMCTL_EXIT_OK;
}
