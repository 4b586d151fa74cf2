/* blk_tool: drive vmd's block layer (vmm/block/) from a test script, so images can be checked
 * against qemu-img and qemu-io without booting a guest.
 *   blk_tool write FORMAT IMAGE SEED COUNT   COUNT pseudo-random writes (512 B .. 256 KiB, sector
 *                                            aligned; the same SEED gives the same writes on any format)
 *   blk_tool dump FORMAT IMAGE OUT           the guest-visible content as a raw file
 *   blk_tool create IMAGE SIZE [BACKING]     qcow2_create (SIZE in bytes, 0: the backing file's)
 * Exit 0, or 1 with the error on stderr. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/block/block.h"
#include "vmm/block/qcow2.h"

static uint64_t rng_state;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int open_fmt(const char *fmt, const char *path, unsigned flags, struct block **b)
{
    enum block_format f;
    char err[600];
    if (block_format_parse(fmt, &f)) {
        fprintf(stderr, "blk_tool: format '%s'?\n", fmt);
        return 1;
    }
    if (block_open(b, path, f, flags, err, sizeof(err))) {
        fprintf(stderr, "blk_tool: %s\n", err);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && !strcmp(argv[1], "write")) {
        struct block *b;
        if (open_fmt(argv[2], argv[3], 0, &b)) return 1;
        rng_state = strtoull(argv[4], NULL, 0) * 2654435761u + 1;
        unsigned long n = strtoul(argv[5], NULL, 0);
        uint64_t sectors = block_size(b) / 512;
        static uint8_t buf[256 << 10];
        for (unsigned long i = 0; i < n; i++) {
            uint64_t len = (rng() % 512 + 1) * 512;
            if (len > sectors * 512) len = sectors * 512;
            uint64_t at = rng() % (sectors - len / 512 + 1) * 512;
            uint8_t v = (uint8_t)rng();
            for (uint64_t k = 0; k < len; k++) buf[k] = (uint8_t)(v + k * 13 + (k >> 9));
            int r = block_write(b, at, buf, len);
            if (r) {
                fprintf(stderr, "blk_tool: write %llu+%llu: %s\n", (unsigned long long)at, (unsigned long long)len, strerror(-r));
                block_close(b);
                return 1;
            }
        }
        int r = block_flush(b);
        block_close(b);
        return r ? 1 : 0;
    }
    if (argc == 5 && !strcmp(argv[1], "dump")) {
        struct block *b;
        if (open_fmt(argv[2], argv[3], BLOCK_RDONLY, &b)) return 1;
        FILE *f = fopen(argv[4], "wb");
        static uint8_t buf[1 << 20];
        int rc = f ? 0 : 1;
        for (uint64_t at = 0; !rc && at < block_size(b); at += sizeof(buf)) {
            size_t len = block_size(b) - at < sizeof(buf) ? (size_t)(block_size(b) - at) : sizeof(buf);
            int r = block_read(b, at, buf, len);
            if (r || fwrite(buf, 1, len, f) != len) {
                fprintf(stderr, "blk_tool: read at %llu: %s\n", (unsigned long long)at, r ? strerror(-r) : "write failed");
                rc = 1;
            }
        }
        if (f && fclose(f)) rc = 1;
        block_close(b);
        return rc;
    }
    if ((argc == 4 || argc == 5) && !strcmp(argv[1], "create")) {
        char err[600];
        struct qcow2_create_opts o = {.size = strtoull(argv[3], NULL, 0), .backing = argc == 5 ? argv[4] : NULL};
        if (qcow2_create(argv[2], &o, err, sizeof(err))) {
            fprintf(stderr, "blk_tool: %s\n", err);
            return 1;
        }
        return 0;
    }
    fprintf(stderr, "usage: blk_tool write FORMAT IMAGE SEED COUNT | dump FORMAT IMAGE OUT | create IMAGE SIZE [BACKING]\n");
    return 2;
}
