/* Unit tests for vmm/block/qcow2: images made by qcow2_create read as zeros; read-after-write
 * across cluster boundaries survives a reopen; allocation keeps every refcount equal to the
 * references (checked by an independent walk of the file, this test's own, after each close);
 * the refcount table grows; backing files (relative names, raw or qcow2) show through where the
 * overlay has nothing and are never written; compressed clusters read, and a write to one moves
 * it; malformed images (header fields, tables and entries outside the file, backing loops, over-
 * deep chains) are refused with a clear error or an I/O error, never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "vmm/block/block.h"
#include "vmm/block/qcow2.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/test_qcow2.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *p(const char *name)
{
    static char buf[4][300];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
    return buf[k];
}

static uint64_t rbe64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | b[i];
    return v;
}
static uint32_t rbe32(const uint8_t *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }
static void wbe64(uint8_t *b, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) b[i] = (uint8_t)v;
}
static void wbe32(uint8_t *b, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8) b[i] = (uint8_t)v;
}

static void file_pwrite(const char *path, uint64_t off, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void file_pread(const char *path, uint64_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
    close(fd);
}

static void pattern(uint8_t *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static void create(const char *path, uint64_t size, const char *backing, unsigned cluster_bits)
{
    char err[512] = "";
    struct qcow2_create_opts o = {.size = size, .backing = backing, .cluster_bits = cluster_bits};
    int r = qcow2_create(path, &o, err, sizeof(err));
    if (r) fprintf(stderr, "qcow2_create: %s\n", err);
    assert_int_equal(r, 0);
}

static struct block *open_img(const char *path, unsigned flags)
{
    struct block *b = NULL;
    char err[512] = "";
    int r = block_open(&b, path, BLOCK_FORMAT_QCOW2, flags, err, sizeof(err));
    if (r) fprintf(stderr, "block_open: %s\n", err);
    assert_int_equal(r, 0);
    return b;
}

/* This test's own consistency check of a closed image (what `qemu-img check` does): every
 * cluster's refcount equals the references to it from the header, L1, L2, refcount structures.
 * Returns the number of mismatches. */
static int check_image(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    uint64_t fsize = (uint64_t)st.st_size;
    uint8_t *f = malloc(fsize + 1);
    file_pread(path, 0, f, fsize);
    unsigned cb = rbe32(f + 20), order = rbe32(f + 4) == 3 ? rbe32(f + 96) : 4;
    uint64_t cs = 1ULL << cb, ncl = (fsize + cs - 1) / cs + 1;
    uint32_t *refs = calloc(ncl + 1024, sizeof(uint32_t));
    refs[0]++;
    uint64_t l1_off = rbe64(f + 40), rt_off = rbe64(f + 48);
    uint32_t l1_size = rbe32(f + 36), rt_clusters = rbe32(f + 56);
    for (uint64_t c = l1_off / cs; c < (l1_off + l1_size * 8ULL + cs - 1) / cs; c++) refs[c]++;
    for (uint64_t c = rt_off / cs; c < rt_off / cs + rt_clusters; c++) refs[c]++;
    for (uint64_t i = 0; i < rt_clusters * cs / 8; i++) {
        uint64_t b = rbe64(f + rt_off + i * 8);
        if (b) refs[b / cs]++;
    }
    for (uint32_t i = 0; i < l1_size; i++) {
        uint64_t l2 = rbe64(f + l1_off + i * 8) & 0x00fffffffffffe00ULL;
        if (!l2) continue;
        refs[l2 / cs]++;
        for (uint64_t j = 0; j < cs / 8; j++) {
            uint64_t e = rbe64(f + l2 + j * 8);
            if (e & (1ULL << 62)) {
                unsigned x = 62 - (cb - 8);
                uint64_t off = (e & ((1ULL << x) - 1)) & ~511ULL, n = ((e >> x) & ((1ULL << (cb - 8)) - 1)) + 1;
                for (uint64_t c = off / cs; c <= (off + n * 512 - 1) / cs; c++) refs[c]++;
            } else if (e & 0x00fffffffffffe00ULL) {
                refs[(e & 0x00fffffffffffe00ULL) / cs]++;
            }
        }
    }
    int bad = 0;
    uint64_t per = (cs * 8) >> order;
    for (uint64_t c = 0; c < ncl + 1024; c++) {
        uint64_t bi = c / per, v = 0;
        if (bi < rt_clusters * cs / 8) {
            uint64_t b = rbe64(f + rt_off + bi * 8);
            if (b && b + cs <= fsize) {
                unsigned bits = 1u << order;
                uint64_t i = c % per;
                if (bits >= 8)
                    for (unsigned k = 0; k < bits / 8; k++) v = v << 8 | f[b + i * (bits / 8) + k];
                else
                    v = (f[b + i / (8 / bits)] >> ((i % (8 / bits)) * bits)) & ((1u << bits) - 1);
            }
        }
        if (v != refs[c]) {
            if (bad < 5) fprintf(stderr, "cluster %llu: refcount %llu, references %u\n", (unsigned long long)c,
                                 (unsigned long long)v, refs[c]);
            bad++;
        }
    }
    free(refs);
    free(f);
    return bad;
}

static void test_create_reads_zeros(void **state)
{
    (void)state;
    create(p("z.qcow2"), 16 << 20, NULL, 0);
    struct block *b = open_img(p("z.qcow2"), 0);
    assert_int_equal(block_size(b), 16 << 20);
    uint8_t buf[8192];
    memset(buf, 0xaa, sizeof(buf));
    assert_int_equal(block_read(b, (16 << 20) - sizeof(buf), buf, sizeof(buf)), 0);
    for (size_t i = 0; i < sizeof(buf); i++) assert_int_equal(buf[i], 0);
    assert_int_equal(block_read(b, 16 << 20, buf, 512), -EIO); /* past the end */
    block_close(b);
    assert_int_equal(check_image(p("z.qcow2")), 0);
    char err[256];
    struct qcow2_create_opts o = {.size = 1 << 20};
    assert_int_equal(qcow2_create(p("z.qcow2"), &o, err, sizeof(err)), -EEXIST); /* never over a file */
}

static void test_read_after_write_and_reopen(void **state)
{
    (void)state;
    create(p("rw.qcow2"), 64 << 20, NULL, 0);
    struct block *b = open_img(p("rw.qcow2"), 0);
    static uint8_t w[3 << 20], r[3 << 20];
    struct {
        uint64_t off;
        size_t len;
    } cases[] = {{0, 512}, {65536 - 512, 1024}, {1 << 20, 3 << 20}, {(64 << 20) - 4096, 4096}, {777 * 512, 70000 & ~511}};
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pattern(w, cases[i].len, i + 1);
        assert_int_equal(block_write(b, cases[i].off, w, cases[i].len), 0);
        assert_int_equal(block_read(b, cases[i].off, r, cases[i].len), 0);
        assert_memory_equal(w, r, cases[i].len);
    }
    /* a vectored write split over clusters */
    uint8_t a[3000], c[70000];
    pattern(a, sizeof(a), 9);
    pattern(c, sizeof(c), 10);
    struct iovec v[2] = {{a, sizeof(a)}, {c, sizeof(c) - (sizeof(a) + sizeof(c)) % 512}};
    assert_int_equal(block_writev(b, 40 << 20, v, 2), 0);
    assert_int_equal(block_flush(b), 0);
    block_close(b);
    assert_int_equal(check_image(p("rw.qcow2")), 0);

    b = open_img(p("rw.qcow2"), BLOCK_RDONLY);
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pattern(w, cases[i].len, i + 1);
        assert_int_equal(block_read(b, cases[i].off, r, cases[i].len), 0); /* the cases do not overlap */
        assert_memory_equal(w, r, cases[i].len);
    }
    assert_int_equal(block_read(b, 40 << 20, r, sizeof(a)), 0);
    assert_memory_equal(r, a, sizeof(a));
    assert_int_equal(block_read(b, (40 << 20) + sizeof(a), r, v[1].iov_len), 0);
    assert_memory_equal(r, c, v[1].iov_len);
    assert_int_equal(block_write(b, 0, w, 512), -EROFS);
    block_close(b);

    /* discard: whole clusters read as zeros afterwards and their host clusters are freed (v3:
     * "reads as zeros" entries); a partial cluster at either end keeps its data */
    b = open_img(p("rw.qcow2"), 0);
    assert_int_equal(block_discard(b, (1 << 20) + 512, (2 << 20) - 1024), 0);
    assert_int_equal(block_read(b, 1 << 20, r, 3 << 20), 0);
    pattern(w, 3 << 20, 3);
    assert_memory_equal(r, w, 65536); /* the first cluster is only partly covered: kept */
    for (size_t i = 65536; i < (2 << 20) - 65536; i++) assert_int_equal(r[i], 0);
    assert_memory_equal(r + (2 << 20) - 65536, w + (2 << 20) - 65536, (1 << 20) + 65536); /* the last, partly */
    block_close(b);
    assert_int_equal(check_image(p("rw.qcow2")), 0);
    b = open_img(p("rw.qcow2"), 0); /* the freed clusters are used again */
    struct stat st0, st1;
    stat(p("rw.qcow2"), &st0);
    assert_int_equal(block_write(b, 60 << 20, w, 1 << 20), 0);
    block_close(b);
    stat(p("rw.qcow2"), &st1);
    assert_true(st1.st_size <= st0.st_size + 65536); /* (at most an L2 table more) */
    assert_int_equal(check_image(p("rw.qcow2")), 0);
}

static void test_allocation_reuses_and_counts(void **state)
{
    (void)state;
    create(p("al.qcow2"), 256 << 20, NULL, 0);
    struct stat st0, st1, st2;
    stat(p("al.qcow2"), &st0);
    struct block *b = open_img(p("al.qcow2"), 0);
    uint8_t w[4096];
    pattern(w, sizeof(w), 3);
    /* 4 KiB into each of 10 clusters in two L2 ranges (512 MiB apart is beyond; 128 MiB apart is one L2 here) */
    for (int i = 0; i < 10; i++) assert_int_equal(block_write(b, (uint64_t)i * 65536 * 3, w, sizeof(w)), 0);
    /* rewriting the same place allocates nothing */
    for (int i = 0; i < 10; i++) assert_int_equal(block_write(b, (uint64_t)i * 65536 * 3 + 4096, w, sizeof(w)), 0);
    block_close(b);
    stat(p("al.qcow2"), &st1);
    /* 10 data clusters + 1 L2 table (the last cluster is written only as far as its data: the file
     * ends there, and the rest of it reads as zeros) */
#define CLUSTERS(st) (((uint64_t)(st).st_size + 65535) / 65536)
    assert_int_equal(CLUSTERS(st1) - CLUSTERS(st0), 11);
    assert_int_equal(check_image(p("al.qcow2")), 0);
    b = open_img(p("al.qcow2"), 0);
    assert_int_equal(block_write(b, 200 << 20, w, sizeof(w)), 0);
    block_close(b);
    stat(p("al.qcow2"), &st2);
    /* the same L2 table; the next cluster after the last used (the reservation was given back) */
    assert_int_equal(CLUSTERS(st2) - CLUSTERS(st1), 1);
    assert_int_equal(check_image(p("al.qcow2")), 0);
}

static void test_refcount_table_grows(void **state)
{
    (void)state;
    create(p("g.qcow2"), 24 << 20, NULL, 9); /* 512-byte clusters: one table cluster covers 8 MiB */
    struct block *b = open_img(p("g.qcow2"), 0);
    static uint8_t w[1 << 20], r[1 << 20];
    for (unsigned i = 0; i < 20; i++) {
        pattern(w, sizeof(w), i);
        assert_int_equal(block_write(b, (uint64_t)i << 20, w, sizeof(w)), 0);
    }
    for (unsigned i = 0; i < 20; i++) {
        pattern(w, sizeof(w), i);
        assert_int_equal(block_read(b, (uint64_t)i << 20, r, sizeof(r)), 0);
        assert_memory_equal(w, r, sizeof(r));
    }
    block_close(b);
    uint8_t h[64];
    file_pread(p("g.qcow2"), 0, h, sizeof(h));
    assert_true(rbe32(h + 56) > 1); /* the table grew */
    assert_int_equal(check_image(p("g.qcow2")), 0);
    b = open_img(p("g.qcow2"), BLOCK_RDONLY);
    pattern(w, sizeof(w), 19);
    assert_int_equal(block_read(b, 19ULL << 20, r, sizeof(r)), 0);
    assert_memory_equal(w, r, sizeof(r));
    block_close(b);
}

static void test_backing_fall_through(void **state)
{
    (void)state;
    /* raw base, qcow2 middle, qcow2 top; relative names resolve against the overlay's directory */
    static uint8_t base[4 << 20], r[4 << 20];
    pattern(base, sizeof(base), 42);
    int fd = open(p("base.raw"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(write(fd, base, sizeof(base)), (ssize_t)sizeof(base));
    close(fd);
    create(p("mid.qcow2"), 0, "base.raw", 0); /* size taken from the backing file */
    struct block *b = open_img(p("mid.qcow2"), 0);
    assert_int_equal(block_size(b), sizeof(base));
    uint8_t w[1000 & ~511];
    memset(w, 0x5a, sizeof(w));
    assert_int_equal(block_write(b, 100000 & ~511, w, sizeof(w)), 0); /* inside a cluster: the rest is copied up */
    block_close(b);
    mkdir(p("sub"), 0755);
    create(p("sub/top.qcow2"), 0, "../mid.qcow2", 0);
    b = open_img(p("sub/top.qcow2"), 0);
    char **chain;
    unsigned n;
    char err[512];
    assert_int_equal(block_backing_chain(p("sub/top.qcow2"), BLOCK_FORMAT_QCOW2, &chain, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(chain[0], p("sub/../mid.qcow2"));
    assert_string_equal(chain[1], p("sub/../base.raw"));
    block_chain_free(chain, n);
    assert_int_equal(block_read(b, 0, r, sizeof(r)), 0);
    memcpy(base + (100000 & ~511), w, sizeof(w));
    assert_memory_equal(r, base, sizeof(base));
    uint8_t t[512];
    memset(t, 0x77, sizeof(t));
    assert_int_equal(block_write(b, 3 << 20, t, sizeof(t)), 0);
    assert_int_equal(block_read(b, 0, r, sizeof(r)), 0);
    memcpy(base + (3 << 20), t, sizeof(t));
    assert_memory_equal(r, base, sizeof(base));
    block_close(b);
    /* the base is untouched */
    file_pread(p("base.raw"), 3 << 20, r, 512);
    pattern(base, sizeof(base), 42);
    assert_memory_equal(r, base + (3 << 20), 512);
    assert_int_equal(check_image(p("sub/top.qcow2")), 0);
    assert_int_equal(check_image(p("mid.qcow2")), 0);
}

static void test_backing_loops_and_depth_refused(void **state)
{
    (void)state;
    create(p("b.qcow2"), 1 << 20, NULL, 0);
    create(p("a.qcow2"), 0, "b.qcow2", 0);
    /* point b back at a: b's header gets a backing name */
    uint8_t h[112];
    file_pread(p("b.qcow2"), 0, h, sizeof(h));
    wbe64(h + 8, 512);
    wbe32(h + 16, 7);
    file_pwrite(p("b.qcow2"), 0, h, sizeof(h));
    file_pwrite(p("b.qcow2"), 512, "a.qcow2", 7);
    struct block *b = NULL;
    char err[512] = "";
    assert_int_equal(block_open(&b, p("a.qcow2"), BLOCK_FORMAT_QCOW2, 0, err, sizeof(err)), -ELOOP);
    assert_null(b);
    assert_non_null(strstr(err, "loops"));
    /* a self-reference */
    file_pwrite(p("b.qcow2"), 512, "b.qcow2", 7);
    assert_int_equal(block_open(&b, p("b.qcow2"), BLOCK_FORMAT_QCOW2, BLOCK_RDONLY, err, sizeof(err)), -ELOOP);
    /* a chain of 17 images is one too deep */
    create(p("c0.qcow2"), 1 << 20, NULL, 0);
    char name[32], prev[32];
    for (int i = 1; i <= BLOCK_MAX_CHAIN; i++) {
        snprintf(name, sizeof(name), "c%d.qcow2", i);
        snprintf(prev, sizeof(prev), "c%d.qcow2", i - 1);
        create(p(name), 0, prev, 0);
    }
    assert_int_equal(block_open(&b, p(name), BLOCK_FORMAT_QCOW2, BLOCK_RDONLY, err, sizeof(err)), -ELOOP);
    assert_non_null(strstr(err, "deeper"));
    snprintf(name, sizeof(name), "c%d.qcow2", BLOCK_MAX_CHAIN - 1);
    assert_int_equal(block_open(&b, p(name), BLOCK_FORMAT_QCOW2, BLOCK_RDONLY, err, sizeof(err)), 0);
    block_close(b);
}

static void test_compressed_read_and_rewrite(void **state)
{
    (void)state;
    create(p("cz.qcow2"), 1 << 20, NULL, 0);
    struct block *b = open_img(p("cz.qcow2"), 0);
    uint8_t w[512];
    memset(w, 1, sizeof(w));
    assert_int_equal(block_write(b, 0, w, sizeof(w)), 0); /* makes the L2 table for cluster 1 too */
    block_close(b);
    /* deflate a cluster (raw deflate, window 4 KiB, as QEMU writes it) after the end of the file */
    static uint8_t clus[65536], z[70000];
    for (size_t i = 0; i < sizeof(clus); i++) clus[i] = (uint8_t)("compressed cluster "[i % 19]);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = clus;
    zs.avail_in = sizeof(clus);
    zs.next_out = z;
    zs.avail_out = sizeof(z);
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t zlen = zs.total_out;
    deflateEnd(&zs);
    struct stat st;
    stat(p("cz.qcow2"), &st);
    /* after the last cluster; compressed data starts anywhere (bit 0 is the offset's) */
    uint64_t coff = ((uint64_t)st.st_size + 65535) / 65536 * 65536 + 137;
    file_pwrite(p("cz.qcow2"), coff, z, zlen);
    uint8_t h[64];
    file_pread(p("cz.qcow2"), 0, h, sizeof(h));
    uint64_t l1 = rbe64(h + 40);
    uint8_t e[8];
    file_pread(p("cz.qcow2"), l1, e, 8);
    uint64_t l2 = rbe64(e) & 0x00fffffffffffe00ULL;
    uint64_t nsec = ((coff + zlen - 1) >> 9) - (coff >> 9) + 1; /* sectors touched; x = 62 - (16 - 8) = 54 */
    wbe64(e, (1ULL << 62) | ((nsec - 1) << 54) | coff);
    file_pwrite(p("cz.qcow2"), l2 + 8, e, 8); /* guest cluster 1 */
    uint8_t one[2] = {0, 1};                   /* and its refcount (16-bit, block at cluster 2) */
    file_pwrite(p("cz.qcow2"), 2 * 65536 + (coff / 65536) * 2, one, 2);
    assert_int_equal(check_image(p("cz.qcow2")), 0);

    b = open_img(p("cz.qcow2"), 0);
    static uint8_t r[65536];
    assert_int_equal(block_read(b, 65536, r, sizeof(r)), 0);
    assert_memory_equal(r, clus, sizeof(clus));
    /* a partial write moves the cluster to a normal one: the rest keeps the decompressed data */
    memset(w, 2, sizeof(w));
    assert_int_equal(block_write(b, 65536 + 1024, w, sizeof(w)), 0);
    assert_int_equal(block_read(b, 65536, r, sizeof(r)), 0);
    memcpy(clus + 1024, w, sizeof(w));
    assert_memory_equal(r, clus, sizeof(clus));
    block_close(b);
    assert_int_equal(check_image(p("cz.qcow2")), 0);
    file_pread(p("cz.qcow2"), l2 + 8, e, 8);
    assert_false(rbe64(e) & (1ULL << 62));

    /* garbage where the compressed data should be: an I/O error, not a crash */
    create(p("cz2.qcow2"), 1 << 20, NULL, 0);
    b = open_img(p("cz2.qcow2"), 0);
    assert_int_equal(block_write(b, 0, w, sizeof(w)), 0);
    block_close(b);
    file_pread(p("cz2.qcow2"), l1, e, 8);
    l2 = rbe64(e) & 0x00fffffffffffe00ULL;
    wbe64(e, (1ULL << 62) | (3ULL << 54) | 4096);
    file_pwrite(p("cz2.qcow2"), l2 + 8, e, 8);
    b = open_img(p("cz2.qcow2"), BLOCK_RDONLY);
    assert_int_equal(block_read(b, 65536, r, 4096), -EIO);
    block_close(b);
}

static void test_version2(void **state)
{
    (void)state;
    create(p("v2.qcow2"), 4 << 20, NULL, 0);
    uint8_t h[8];
    file_pread(p("v2.qcow2"), 0, h, 8);
    wbe32(h + 4, 2); /* the v3 fields after byte 72 are zero: a v2 reader sees the end extension */
    file_pwrite(p("v2.qcow2"), 0, h, 8);
    struct block *b = open_img(p("v2.qcow2"), 0);
    uint8_t w[4096], r[4096];
    pattern(w, sizeof(w), 5);
    assert_int_equal(block_write(b, 1234 * 512, w, sizeof(w)), 0);
    assert_int_equal(block_read(b, 1234 * 512, r, sizeof(r)), 0);
    assert_memory_equal(w, r, sizeof(w));
    assert_int_equal(block_discard(b, 0, 4 << 20), 0); /* v2 without backing: clusters emptied */
    assert_int_equal(block_read(b, 1234 * 512, r, sizeof(r)), 0);
    for (size_t i = 0; i < sizeof(r); i++) assert_int_equal(r[i], 0);
    block_close(b);
    assert_int_equal(check_image(p("v2.qcow2")), 0);
}

/* Open a copy of a good image with `len` bytes at `off` replaced; expect the error to mention `want`. */
static void expect_refused(const char *what, uint64_t off, const void *bytes, size_t len, unsigned flags, const char *want)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p("good.qcow2"), p("bad.qcow2"));
    assert_int_equal(system(cmd), 0);
    file_pwrite(p("bad.qcow2"), off, bytes, len);
    struct block *b = NULL;
    char err[512] = "";
    int r = block_open(&b, p("bad.qcow2"), BLOCK_FORMAT_QCOW2, flags, err, sizeof(err));
    if (r == 0 || !strstr(err, want)) fprintf(stderr, "%s: r=%d err='%s' (wanted '%s')\n", what, r, err, want);
    assert_true(r < 0);
    assert_null(b);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, p("bad.qcow2")));
}

static void test_malformed_images_refused(void **state)
{
    (void)state;
    create(p("good.qcow2"), 8 << 20, NULL, 0);
    uint8_t v[8];
    expect_refused("magic", 0, "QFI\0", 4, 0, "not a qcow2 image");
    wbe32(v, 4);
    expect_refused("version", 4, v, 4, 0, "version 4");
    wbe32(v, 31);
    expect_refused("cluster_bits", 20, v, 4, 0, "cluster_bits");
    wbe32(v, 1);
    expect_refused("encryption", 32, v, 4, 0, "encrypted");
    wbe64(v, 1ULL << 40);
    expect_refused("l1 offset", 40, v, 8, 0, "L1 table offset");
    wbe64(v, 3 * 65536 + 8);
    expect_refused("l1 unaligned", 40, v, 8, 0, "L1 table offset");
    wbe32(v, 0);
    expect_refused("l1 too small", 36, v, 4, 0, "too small");
    wbe32(v, 0x10000000);
    expect_refused("l1 too large", 36, v, 4, 0, "too large");
    wbe64(v, 1ULL << 40);
    expect_refused("refcount table offset", 48, v, 8, 0, "refcount table offset");
    wbe32(v, 100000);
    expect_refused("refcount table size", 56, v, 4, 0, "refcount table");
    wbe64(v, 1ULL << 63);
    expect_refused("virtual size", 24, v, 8, 0, "too large");
    wbe64(v, 1);
    expect_refused("dirty, writable", 72, v, 8, 0, "dirty");
    wbe64(v, 1ULL << 2);
    expect_refused("external data file", 72, v, 8, 0, "external data file");
    wbe64(v, 1ULL << 40);
    expect_refused("unknown feature", 72, v, 8, 0, "incompatible features");
    wbe32(v, 50);
    expect_refused("header length", 100, v, 4, 0, "header length");
    wbe32(v, 7);
    expect_refused("refcount order", 96, v, 4, 0, "refcount_order");
    uint8_t bk[12];
    wbe64(bk, 65530);
    wbe32(bk + 8, 100);
    expect_refused("backing name past cluster 0", 8, bk, 12, BLOCK_RDONLY, "backing file name");
    wbe64(bk, 4096);
    wbe32(bk + 8, 9);
    expect_refused("backing name with a NUL", 8, bk, 12, BLOCK_RDONLY, "NUL");
    file_pwrite(p("bad.qcow2"), 4096, "nope.img", 9); /* now a name, of a file that is not there */
    file_pwrite(p("bad.qcow2"), 4096 + 8, "2", 1);
    {
        struct block *nb = NULL;
        char e2[512];
        assert_int_equal(block_open(&nb, p("bad.qcow2"), BLOCK_FORMAT_QCOW2, BLOCK_RDONLY, e2, sizeof(e2)), -ENOENT);
        assert_non_null(strstr(e2, "backing file"));
        assert_non_null(strstr(e2, "nope.img2"));
    }
    uint8_t ext[8];
    wbe32(ext, 0x12345678);
    wbe32(ext + 4, 0x7fffffff);
    expect_refused("extension past cluster 0", 104, ext, 8, 0, "extension");
    /* dirty opens read-only */
    struct block *b = NULL;
    char err[256];
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p("good.qcow2"), p("bad.qcow2"));
    assert_int_equal(system(cmd), 0);
    wbe64(v, 1);
    file_pwrite(p("bad.qcow2"), 72, v, 8);
    assert_int_equal(block_open(&b, p("bad.qcow2"), BLOCK_FORMAT_QCOW2, BLOCK_RDONLY, err, sizeof(err)), 0);
    block_close(b);
    /* a raw file opened as qcow2 */
    int fd = open(p("plain.raw"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(ftruncate(fd, 1 << 20), 0);
    close(fd);
    assert_int_equal(block_open(&b, p("plain.raw"), BLOCK_FORMAT_QCOW2, 0, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a qcow2 image"));
    /* a tiny file */
    fd = open(p("tiny"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(write(fd, "QFI\xfb", 4), 4);
    close(fd);
    assert_int_equal(block_open(&b, p("tiny"), BLOCK_FORMAT_QCOW2, 0, err, sizeof(err)), -EINVAL);
}

static void test_bad_entries_are_io_errors(void **state)
{
    (void)state;
    create(p("e.qcow2"), 8 << 20, NULL, 0);
    struct block *b = open_img(p("e.qcow2"), 0);
    uint8_t w[512] = {1};
    assert_int_equal(block_write(b, 0, w, sizeof(w)), 0);
    block_close(b);
    uint8_t h[64], e[8];
    file_pread(p("e.qcow2"), 0, h, sizeof(h));
    uint64_t l1 = rbe64(h + 40);
    file_pread(p("e.qcow2"), l1, e, 8);
    uint64_t l2 = rbe64(e) & 0x00fffffffffffe00ULL;
    uint8_t r[512];
    struct {
        uint64_t where, value, read_at;
    } cases[] = {
        {l2 + 8, (1ULL << 63) | (1ULL << 45), 65536},  /* data cluster far outside the file */
        {l2 + 8, (1ULL << 63) | (65536 * 3 + 512), 65536}, /* unaligned data cluster */
        {l2 + 8, (1ULL << 63) | 65536 * 3 | 2, 65536},   /* reserved bits */
        {l1, (1ULL << 63) | (65536 * 5 + 4096), 0},      /* unaligned L2 table */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char cmd[700];
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p("e.qcow2"), p("e2.qcow2"));
        assert_int_equal(system(cmd), 0);
        wbe64(e, cases[i].value);
        file_pwrite(p("e2.qcow2"), cases[i].where, e, 8);
        b = open_img(p("e2.qcow2"), 0);
        assert_int_equal(block_read(b, cases[i].read_at, r, sizeof(r)), -EIO);
        assert_int_equal(block_write(b, cases[i].read_at, w, sizeof(w)), -EIO);
        block_close(b);
    }
    /* L1 entry 0 pointing past the end of the file */
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p("e.qcow2"), p("e2.qcow2"));
    assert_int_equal(system(cmd), 0);
    wbe64(e, (1ULL << 63) | (1ULL << 44));
    file_pwrite(p("e2.qcow2"), l1, e, 8);
    b = open_img(p("e2.qcow2"), 0);
    assert_int_equal(block_read(b, 0, r, sizeof(r)), -EIO);
    assert_int_equal(block_write(b, 0, w, sizeof(w)), -EIO);
    block_close(b);
}

static void test_probe_and_quiesce_reload(void **state)
{
    (void)state;
    create(p("q.qcow2"), 4 << 20, NULL, 0);
    enum block_format f;
    char err[256];
    assert_int_equal(block_probe(p("q.qcow2"), &f, err, sizeof(err)), 0);
    assert_int_equal(f, BLOCK_FORMAT_QCOW2);
    int fd = open(p("r.raw"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(ftruncate(fd, 4096), 0);
    close(fd);
    assert_int_equal(block_probe(p("r.raw"), &f, err, sizeof(err)), 0);
    assert_int_equal(f, BLOCK_FORMAT_RAW);
    /* quiesce leaves a consistent file to copy; reload reads a file replaced under the open image */
    struct block *b = open_img(p("q.qcow2"), 0);
    uint8_t w[4096], r[4096];
    pattern(w, sizeof(w), 1);
    assert_int_equal(block_write(b, 0, w, sizeof(w)), 0);
    assert_int_equal(block_quiesce(b), 0);
    assert_int_equal(check_image(p("q.qcow2")), 0);
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", p("q.qcow2"), p("q.copy"));
    assert_int_equal(system(cmd), 0);
    pattern(w, sizeof(w), 2);
    assert_int_equal(block_write(b, 0, w, sizeof(w)), 0);
    assert_int_equal(block_write(b, 1 << 20, w, sizeof(w)), 0);
    snprintf(cmd, sizeof(cmd), "cat '%s' > '%s'", p("q.copy"), p("q.qcow2")); /* same inode, as a restore does */
    assert_int_equal(system(cmd), 0);
    assert_int_equal(block_reload(b, err, sizeof(err)), 0);
    assert_int_equal(block_read(b, 0, r, sizeof(r)), 0);
    pattern(w, sizeof(w), 1);
    assert_memory_equal(r, w, sizeof(w));
    assert_int_equal(block_read(b, 1 << 20, r, sizeof(r)), 0);
    for (size_t i = 0; i < sizeof(r); i++) assert_int_equal(r[i], 0);
    block_close(b);
    /* the copied image may be larger than its content (the file was longer): still consistent */
    assert_int_equal(check_image(p("q.qcow2")), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_reads_zeros),
        cmocka_unit_test(test_read_after_write_and_reopen),
        cmocka_unit_test(test_allocation_reuses_and_counts),
        cmocka_unit_test(test_refcount_table_grows),
        cmocka_unit_test(test_backing_fall_through),
        cmocka_unit_test(test_backing_loops_and_depth_refused),
        cmocka_unit_test(test_compressed_read_and_rewrite),
        cmocka_unit_test(test_version2),
        cmocka_unit_test(test_malformed_images_refused),
        cmocka_unit_test(test_bad_entries_are_io_errors),
        cmocka_unit_test(test_probe_and_quiesce_reload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
