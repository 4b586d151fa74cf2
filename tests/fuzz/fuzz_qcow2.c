/* fuzz_qcow2: libFuzzer target for the qcow2 driver (vmm/block/qcow2.c) behind the block layer.
 *
 * Each input becomes files in a private directory: a.qcow2 (the image under test), b.qcow2 (a
 * copy of it, so a backing name "b.qcow2" or "a.qcow2" makes chains and loops), and r.raw (a
 * raw backing file). a.qcow2 is opened as qcow2 (read-only or writable), then read, written,
 * discarded and flushed at fuzz-chosen places, closed, and opened again. The driver must open or
 * refuse with a message naming the image, fail bad I/O with an error, never crash (ASan/UBSan),
 * and never change a backing file.
 *
 * Input: byte 0 flags (bit 0 read-only, bit 1 no b.qcow2, bit 2 no r.raw), byte 1 the number of
 * operations (up to 24), 6 bytes per operation (kind; sector, 3 bytes; sectors, 2 bytes), then the
 * image. With FUZZ_SEED_DIR set, valid images (empty, with data, over r.raw, over b.qcow2) are
 * written there as seeds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_machine.h"
#include "vmm/block/block.h"
#include "vmm/block/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define OP_BYTES 6
#define MAX_OPS 24
#define RAW_SIZE (64u << 10)

/* The directory this process's inputs are written to (one per fuzzing process, made once). */
static char dir[256];
static char pa[300], pb[300], pr[300];
static uint8_t raw_content[RAW_SIZE];
static uint8_t iobuf[256 << 10];

static int put_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    ssize_t n = len ? write(fd, buf, len) : 0;
    close(fd);
    return n == (ssize_t)len ? 0 : -1;
}

static uint8_t *get_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    fstat(fd, &st);
    uint8_t *b = malloc((size_t)st.st_size + 1);
    *len = (size_t)st.st_size;
    if (b && pread(fd, b, *len, 0) != (ssize_t)*len) {
        free(b);
        b = NULL;
    }
    close(fd);
    return b;
}

/* A seed: flags, a few operations, and an image made by qcow2_create (512-byte clusters keep it
 * small), optionally written to first. */
static void seed(const char *seed_dir, const char *name, const char *backing, int writes, uint64_t size)
{
    char err[256];
    unlink(pa);
    struct qcow2_create_opts o = {.size = size, .backing = backing, .cluster_bits = 9};
    if (qcow2_create(pa, &o, err, sizeof(err))) return;
    if (writes) {
        struct block *b;
        if (block_open(&b, pa, BLOCK_FORMAT_QCOW2, 0, err, sizeof(err))) return;
        memset(iobuf, 0x5a, 4096);
        for (int i = 0; i < writes; i++) block_write(b, (uint64_t)(i * 7919 % 2000) * 512, iobuf, 1024);
        block_close(b);
    }
    size_t len;
    uint8_t *img = get_file(pa, &len);
    if (!img) return;
    uint8_t *in = malloc(2 + 4 * OP_BYTES + len);
    if (in) {
        uint8_t ops[4 * OP_BYTES] = {0, 1, 0, 0, 8, 0, /* read 8 sectors at 1 */
                                     1, 3, 0, 0, 9, 0, /* write 9 at 3 */
                                     2, 0, 0, 0, 4, 0, /* discard 4 at 0 */
                                     3, 0, 0, 0, 0, 0}; /* flush */
        in[0] = 0;
        in[1] = 4;
        memcpy(in + 2, ops, sizeof(ops));
        memcpy(in + 2 + sizeof(ops), img, len);
        fuzz_write_seed(seed_dir, name, in, 2 + sizeof(ops) + len);
        free(in);
    }
    free(img);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/fuzz_qcow2.XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) abort();
    snprintf(pa, sizeof(pa), "%s/a.qcow2", dir);
    snprintf(pb, sizeof(pb), "%s/b.qcow2", dir);
    snprintf(pr, sizeof(pr), "%s/r.raw", dir);
    for (size_t i = 0; i < sizeof(raw_content); i++) raw_content[i] = (uint8_t)(i * 31 + (i >> 9));
    if (put_file(pr, raw_content, sizeof(raw_content))) abort();
    const char *seed_dir = getenv("FUZZ_SEED_DIR");
    if (seed_dir && *seed_dir) {
        seed(seed_dir, "seed-qcow2-empty", NULL, 0, 1 << 20);
        seed(seed_dir, "seed-qcow2-data", NULL, 6, 1 << 20);
        seed(seed_dir, "seed-qcow2-over-raw", "r.raw", 3, 0);
        /* an overlay of b.qcow2: with b.qcow2 a copy of the input, a chain that loops */
        char err[256];
        struct qcow2_create_opts o = {.size = 1 << 20, .cluster_bits = 9};
        unlink(pb);
        if (!qcow2_create(pb, &o, err, sizeof(err))) seed(seed_dir, "seed-qcow2-over-b", "b.qcow2", 2, 0);
        unlink(pa);
        unlink(pb);
    }
    return 0;
}

static void check_refusal(int r, const char *err)
{
    if (r < 0 && (!err[0] || !strstr(err, "disk '"))) abort(); /* refused without naming the image */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > (1u << 20)) return 0;
    struct fuzz_input in = {data, size};
    unsigned flags = (unsigned)fuzz_take(&in, 1);
    unsigned nops = (unsigned)fuzz_take(&in, 1) % (MAX_OPS + 1);
    const uint8_t *ops = in.p;
    size_t ops_len = (size_t)nops * OP_BYTES < in.len ? (size_t)nops * OP_BYTES : in.len;
    nops = (unsigned)(ops_len / OP_BYTES);
    const uint8_t *img = in.p + ops_len;
    size_t img_len = in.len - ops_len;

    if (put_file(pa, img, img_len)) abort();
    if (flags & 2) unlink(pb);
    else if (put_file(pb, img, img_len)) abort();
    if (flags & 4) unlink(pr);
    else if (put_file(pr, raw_content, sizeof(raw_content))) abort();

    for (int round = 0; round < 2; round++) {
        struct block *b = NULL;
        char err[600] = "";
        int r = block_open(&b, pa, BLOCK_FORMAT_QCOW2, (flags & 1) ? BLOCK_RDONLY : 0, err, sizeof(err));
        check_refusal(r, err);
        if (r) break;
        uint64_t sectors = block_size(b) / 512;
        for (unsigned i = 0; i < nops && sectors; i++) {
            const uint8_t *op = ops + i * OP_BYTES;
            uint64_t at = ((uint64_t)op[1] | (uint64_t)op[2] << 8 | (uint64_t)op[3] << 16) % sectors;
            uint64_t n = 1 + (((uint64_t)op[4] | (uint64_t)op[5] << 8) % 512);
            if (n > sectors - at) n = sectors - at;
            switch (op[0] % 4) {
            case 0: block_read(b, at * 512, iobuf, n * 512); break;
            case 1:
                memset(iobuf, op[1] ^ op[4], n * 512);
                block_write(b, at * 512, iobuf, n * 512);
                break;
            case 2: block_discard(b, at * 512, n * 512); break;
            default: block_flush(b); break;
            }
        }
        block_close(b);
    }
    /* the backing files are never written */
    size_t len;
    uint8_t *raw = (flags & 4) ? NULL : get_file(pr, &len);
    if (raw && (len != sizeof(raw_content) || memcmp(raw, raw_content, len))) abort();
    free(raw);
    if (!(flags & 2)) {
        uint8_t *bb = get_file(pb, &len);
        if (bb && (len != img_len || memcmp(bb, img, len))) abort();
        free(bb);
    }
    return 0;
}
