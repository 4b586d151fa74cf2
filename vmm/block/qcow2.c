/* qcow2: the qcow2 image format (versions 2 and 3), read and write, with backing files.
 *
 * Layout (QEMU's docs/interop/qcow2.txt): a header in cluster 0; a guest offset splits into an
 * L1 index, an L2 index and an offset in the cluster; L1 entries point to L2 tables (one cluster
 * each), L2 entries to data clusters (or say "compressed", "reads as zeros", or nothing: then the
 * backing file, or zeros). Every host cluster in use has a reference count, kept in refcount
 * blocks listed by the refcount table.
 *
 * Every offset read from the image is checked before use: tables must be cluster aligned and
 * lie inside the file, data clusters must start inside it; a malformed header or table entry
 * gives a clear error (open) or an I/O error with a log line naming the image (I/O), never a
 * read or write outside the file.
 *
 * Crash consistency (docs/devices.md "qcow2 disks"): metadata is written through (pwrite at
 * once, cached copies kept in step), in the order refcount -> data -> L2 entry -> L1 entry, so a
 * process killed at any point leaves at worst clusters counted but unused (leaks, which
 * `qemu-img check` reports and tolerates), never a reference to a cluster counted as free. For
 * power loss the same order holds across an fdatasync between a refcount increase and the first
 * table entry that points at the new cluster; to keep that off the common path, clusters are
 * counted in runs (up to 32 MiB) ahead of use (a reservation) and given back at the guest's
 * next flush, or when the image is closed or quiesced. Freeing (a rewritten compressed cluster,
 * discard) writes the table entry, syncs, then lowers the refcount.
 *
 * Not supported (refused at open with a message): encryption, external data files, extended L2
 * entries, zstd compression; internal snapshots and images marked dirty or corrupt open
 * read-only only. Compressed clusters are read (zlib); a write to one moves it to a normal cluster.
 */
#include "vmm/block/qcow2.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "vmm/log.h"

#define QCOW2_MAGIC 0x514649fbu
#define L1E_OFFSET_MASK 0x00fffffffffffe00ULL
#define L2E_OFFSET_MASK 0x00fffffffffffe00ULL
#define RTE_OFFSET_MASK 0xfffffffffffffe00ULL
#define OFLAG_COPIED (1ULL << 63)
#define OFLAG_COMPRESSED (1ULL << 62)
#define OFLAG_ZERO 1ULL
#define L1E_RESERVED 0x7f000000000001feULL
#define L2E_RESERVED 0x3f000000000001feULL

#define INCOMPAT_DIRTY (1ULL << 0)
#define INCOMPAT_CORRUPT (1ULL << 1)
#define INCOMPAT_DATA_FILE (1ULL << 2)
#define INCOMPAT_COMPRESSION (1ULL << 3)
#define INCOMPAT_EXTL2 (1ULL << 4)

#define EXT_END 0
#define EXT_BACKING_FORMAT 0xe2792acau

#define HDR_V2_LEN 72
#define HDR_V3_LEN 104
#define MAX_L1_BYTES (32u << 20)      /* as QEMU */
#define MAX_RT_BYTES (64u << 20)
#define MAX_BACKING_NAME 1023
#define MAX_HOST_OFFSET (1ULL << 56)
#define CACHE_SLOTS 16
#define CACHE_BYTES (4u << 20)        /* per cache: at least 2 slots, at most CACHE_SLOTS */
#define RESERVE_BYTES (32u << 20)     /* clusters counted ahead of use per fdatasync */
#define RESERVE_MAX 512u              /* ... and at most this many */
#define VMD_QCOW2_IOV_MAX 1024        /* segments of one request (IOV_MAX) */
#define MAX_SCAN (1u << 24)           /* clusters past the file's looked at for a free one */

struct mcache {
    unsigned n;
    uint64_t off[CACHE_SLOTS];
    uint8_t *data[CACHE_SLOTS];
    uint64_t used[CACHE_SLOTS];
};

struct qcow2 {
    struct block *b;
    uint32_t version, cluster_bits, l2_bits, refcount_order;
    uint64_t cs, l2_entries, rb_entries; /* cluster size; entries per L2 table and per refcount block */
    uint64_t incompat, autoclear;
    uint32_t nb_snapshots;
    uint64_t l1_offset;
    uint32_t l1_size;
    uint64_t *l1; /* host order, as on disk otherwise */
    uint64_t rt_offset;
    uint32_t rt_clusters;
    uint64_t rt_entries;
    uint64_t *rt;
    uint64_t file_size;
    struct mcache l2c, rbc;
    uint64_t tick;          /* LRU clock of both caches */
    uint8_t *cbuf;          /* one cluster: copy-on-write */
    uint8_t *zbuf;          /* compressed input: up to 2 clusters */
    uint8_t *dbuf;          /* the last decompressed cluster */
    uint64_t dbuf_entry;    /* its L2 entry, 0 for none */
    uint64_t free_hint;     /* no free cluster below this index */
    uint64_t resv_start, resv_count;
    bool refs_unsynced;     /* refcount increases not yet fdatasync'd */
    struct block *backing;
    char *backing_name;     /* as in the header */
};

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}
static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

bool qcow2_magic_ok(const uint8_t magic[4]) { return be32(magic) == QCOW2_MAGIC; }

/* ---- file I/O ---------------------------------------------------------------------------- */

static int rd(struct qcow2 *s, uint64_t off, void *buf, size_t len, size_t *got)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(s->b->fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) break;
        done += (size_t)r;
    }
    if (got) *got = done;
    else if (done < len) memset((uint8_t *)buf + done, 0, len - done);
    return 0;
}

static int wr(struct qcow2 *s, uint64_t off, const void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pwrite(s->b->fd, (const uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? -errno : -EIO;
        done += (size_t)r;
    }
    if (off + len > s->file_size) s->file_size = off + len;
    return 0;
}

static int wrv(struct qcow2 *s, uint64_t off, const struct iovec *iov_in, int n)
{
    struct iovec iov[VMD_QCOW2_IOV_MAX];
    if (n > VMD_QCOW2_IOV_MAX) return -EINVAL;
    memcpy(iov, iov_in, sizeof(iov[0]) * (size_t)n);
    size_t len = iov_total(iov, n);
    int i = 0;
    uint64_t at = off;
    while (i < n) {
        ssize_t r = pwritev(s->b->fd, &iov[i], n - i, (off_t)at);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? -errno : -EIO;
        at += (uint64_t)r;
        while (i < n && (size_t)r >= iov[i].iov_len) r -= (ssize_t)iov[i++].iov_len;
        if (i < n) {
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + r;
            iov[i].iov_len -= (size_t)r;
        }
    }
    if (off + len > s->file_size) s->file_size = off + len;
    return 0;
}

static int rdv(struct qcow2 *s, uint64_t off, const struct iovec *iov_in, int n)
{
    struct iovec iov[VMD_QCOW2_IOV_MAX];
    if (n > VMD_QCOW2_IOV_MAX) return -EINVAL;
    memcpy(iov, iov_in, sizeof(iov[0]) * (size_t)n);
    int i = 0;
    while (i < n) {
        ssize_t r = preadv(s->b->fd, &iov[i], n - i, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) { /* a data cluster the file ends inside: the rest reads as zeros */
            iov_zero(&iov[i], n - i);
            return 0;
        }
        off += (uint64_t)r;
        while (i < n && (size_t)r >= iov[i].iov_len) r -= (ssize_t)iov[i++].iov_len;
        if (i < n) {
            iov[i].iov_base = (uint8_t *)iov[i].iov_base + r;
            iov[i].iov_len -= (size_t)r;
        }
    }
    return 0;
}

static int sync_file(struct qcow2 *s) { return fdatasync(s->b->fd) < 0 ? -errno : 0; }

/* Refcount increases reach the disk before any table entry that points at what they count. */
static int barrier(struct qcow2 *s)
{
    if (!s->refs_unsynced) return 0;
    int r = sync_file(s);
    if (!r) s->refs_unsynced = false;
    return r;
}

#define CORRUPT(s, ...)                                                          \
    do {                                                                         \
        char why_[200];                                                          \
        snprintf(why_, sizeof(why_), __VA_ARGS__);                               \
        log_warn("disk '%s': qcow2 image is corrupt: %s", (s)->b->path, why_);   \
        return -EIO;                                                             \
    } while (0)

/* ---- metadata caches (L2 tables, refcount blocks) ---------------------------------------- */

static void cache_init(struct qcow2 *s, struct mcache *c)
{
    uint64_t n = CACHE_BYTES / s->cs;
    c->n = n < 2 ? 2 : n > CACHE_SLOTS ? CACHE_SLOTS : (unsigned)n;
}

static void cache_free(struct mcache *c)
{
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
        free(c->data[i]);
        c->data[i] = NULL;
        c->off[i] = 0;
    }
}

static unsigned cache_victim(struct mcache *c)
{
    unsigned v = 0;
    for (unsigned i = 0; i < c->n; i++) {
        if (!c->off[i]) return i;
        if (c->used[i] < c->used[v]) v = i;
    }
    return v;
}

/* The table at host offset off (what: "L2 table" / "refcount block", for messages). */
static int cache_get(struct qcow2 *s, struct mcache *c, uint64_t off, const char *what, uint8_t **out)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (c->off[i] == off && off) {
            c->used[i] = ++s->tick;
            *out = c->data[i];
            return 0;
        }
    }
    if (!off || (off & (s->cs - 1)) || off >= MAX_HOST_OFFSET)
        CORRUPT(s, "%s at offset %#" PRIx64 " is not cluster aligned", what, off);
    if (off > s->file_size || s->cs > s->file_size - off)
        CORRUPT(s, "%s at offset %#" PRIx64 " lies outside the file (%" PRIu64 " bytes)", what, off, s->file_size);
    unsigned v = cache_victim(c);
    if (!c->data[v] && !(c->data[v] = malloc(s->cs))) return -ENOMEM;
    c->off[v] = 0;
    int r = rd(s, off, c->data[v], s->cs, NULL);
    if (r) return r;
    c->off[v] = off;
    c->used[v] = ++s->tick;
    *out = c->data[v];
    return 0;
}

/* A table just written at off (its content in data): keep it cached. */
static int cache_install(struct qcow2 *s, struct mcache *c, uint64_t off, const uint8_t *data)
{
    unsigned v = c->n;
    for (unsigned i = 0; i < c->n; i++)
        if (c->off[i] == off) v = i;
    if (v == c->n) v = cache_victim(c);
    if (!c->data[v] && !(c->data[v] = malloc(s->cs))) return -ENOMEM;
    memcpy(c->data[v], data, s->cs);
    c->off[v] = off;
    c->used[v] = ++s->tick;
    return 0;
}

static void cache_drop(struct mcache *c, uint64_t off)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->off[i] == off) c->off[i] = 0;
}

/* ---- refcounts --------------------------------------------------------------------------- */

static uint64_t rc_entry(const struct qcow2 *s, const uint8_t *blk, uint64_t i)
{
    unsigned bits = 1u << s->refcount_order;
    if (bits >= 8) {
        unsigned bytes = bits / 8;
        uint64_t v = 0;
        for (unsigned k = 0; k < bytes; k++) v = v << 8 | blk[i * bytes + k];
        return v;
    }
    unsigned per = 8 / bits;
    return (uint64_t)(blk[i / per] >> ((i % per) * bits)) & ((1u << bits) - 1);
}

/* Set entry i; [*lo, *hi) grows to cover the bytes changed. */
static void rc_set_entry(const struct qcow2 *s, uint8_t *blk, uint64_t i, uint64_t v, uint64_t *lo, uint64_t *hi)
{
    unsigned bits = 1u << s->refcount_order;
    uint64_t first, last;
    if (bits >= 8) {
        unsigned bytes = bits / 8;
        for (unsigned k = 0; k < bytes; k++) blk[i * bytes + k] = (uint8_t)(v >> (8 * (bytes - 1 - k)));
        first = i * bytes;
        last = first + bytes;
    } else {
        unsigned per = 8 / bits, sh = (unsigned)(i % per) * bits;
        uint8_t mask = (uint8_t)(((1u << bits) - 1) << sh);
        blk[i / per] = (uint8_t)((blk[i / per] & ~mask) | ((v << sh) & mask));
        first = i / per;
        last = first + 1;
    }
    if (first < *lo) *lo = first;
    if (last > *hi) *hi = last;
}

/* The refcount block covering cluster idx: *blk NULL (and 0) when there is none. */
static int rc_block(struct qcow2 *s, uint64_t idx, uint8_t **blk, uint64_t *blk_off)
{
    uint64_t bi = idx / s->rb_entries;
    *blk = NULL;
    *blk_off = 0;
    if (bi >= s->rt_entries || !(s->rt[bi] & RTE_OFFSET_MASK)) return 0;
    if (s->rt[bi] & ~RTE_OFFSET_MASK) CORRUPT(s, "refcount table entry %" PRIu64 " has reserved bits set", bi);
    *blk_off = s->rt[bi];
    return cache_get(s, &s->rbc, s->rt[bi], "refcount block", blk);
}

static int rc_get(struct qcow2 *s, uint64_t idx, uint64_t *v)
{
    uint8_t *blk;
    uint64_t off;
    int r = rc_block(s, idx, &blk, &off);
    if (r) return r;
    *v = blk ? rc_entry(s, blk, idx % s->rb_entries) : 0;
    return 0;
}

/* Set the refcounts of clusters [idx, idx + n), all in one existing refcount block, to v. */
static int rc_set_run(struct qcow2 *s, uint64_t idx, uint64_t n, uint64_t v)
{
    uint8_t *blk;
    uint64_t off;
    int r = rc_block(s, idx, &blk, &off);
    if (r) return r;
    if (!blk) CORRUPT(s, "cluster %" PRIu64 " has no refcount block", idx);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (uint64_t k = 0; k < n; k++) rc_set_entry(s, blk, (idx + k) % s->rb_entries, v, &lo, &hi);
    return wr(s, off + lo, blk + lo, hi - lo);
}

/* Clusters that hold the header, the L1 table or the refcount table are never handed out, even
 * when a damaged image counts them as free. */
static bool fixed_metadata(const struct qcow2 *s, uint64_t idx)
{
    uint64_t off = idx * s->cs;
    if (idx == 0) return true;
    uint64_t l1_end = s->l1_offset + (uint64_t)s->l1_size * 8;
    if (s->l1_size && off + s->cs > s->l1_offset && off < l1_end) return true;
    uint64_t rt_end = s->rt_offset + (uint64_t)s->rt_clusters * s->cs;
    return off + s->cs > s->rt_offset && off < rt_end;
}

static int grow_refcount_table(struct qcow2 *s, uint64_t need_bi);

/* Cluster idx is free but has no refcount block: make one, in idx itself (it then counts
 * itself), or grow the refcount table when it has no room for the block's entry. */
static int new_refblock(struct qcow2 *s, uint64_t idx)
{
    uint64_t bi = idx / s->rb_entries;
    if (bi >= s->rt_entries) return grow_refcount_table(s, bi);
    uint8_t *blk = calloc(1, s->cs);
    if (!blk) return -ENOMEM;
    uint64_t lo = UINT64_MAX, hi = 0, off = idx * s->cs;
    rc_set_entry(s, blk, idx % s->rb_entries, 1, &lo, &hi);
    int r = wr(s, off, blk, s->cs);
    if (!r) r = sync_file(s); /* the block's content before the table entry that points at it */
    if (!r) {
        uint8_t e[8];
        put_be64(e, off);
        r = wr(s, s->rt_offset + bi * 8, e, 8);
    }
    if (!r) {
        s->rt[bi] = off;
        s->refs_unsynced = true;
        r = cache_install(s, &s->rbc, off, blk);
    }
    free(blk);
    return r;
}

/* The refcount table has no entry for refcount block need_bi: write a bigger one after the end
 * of the file, with new refcount blocks (placed just before it) for every cluster of that new
 * area without one; switch the header to it; then free the old table. */
static int grow_refcount_table(struct qcow2 *s, uint64_t need_bi)
{
    uint64_t end = (s->file_size + s->cs - 1) / s->cs;
    if (s->resv_start + s->resv_count > end) end = s->resv_start + s->resv_count;
    uint64_t entries = s->rt_entries * 2 > need_bi + 1 ? s->rt_entries * 2 : need_bi + 1;
    uint64_t nt = 0, nb = 0;
    for (int iter = 0; iter < 64; iter++) {
        nt = (entries * 8 + s->cs - 1) / s->cs;
        uint64_t nb2 = 0, area_end = end + nb + nt;
        for (uint64_t bi = end / s->rb_entries; bi <= (area_end - 1) / s->rb_entries; bi++)
            if (bi >= s->rt_entries || !s->rt[bi]) nb2++;
        if ((area_end - 1) / s->rb_entries >= entries) {
            entries = (area_end - 1) / s->rb_entries + 1;
            continue;
        }
        if (nb2 == nb) break;
        nb = nb2;
    }
    if (nt * s->cs > MAX_RT_BYTES || (end + nb + nt) * s->cs >= MAX_HOST_OFFSET) return -ENOSPC;
    uint64_t area_end = end + nb + nt;
    entries = nt * s->cs / 8;
    uint64_t *rt = calloc(entries, sizeof(uint64_t));
    uint8_t *buf = calloc(1, nt * s->cs > s->cs ? nt * s->cs : s->cs);
    if (!rt || !buf) {
        free(rt);
        free(buf);
        return -ENOMEM;
    }
    memcpy(rt, s->rt, s->rt_entries * sizeof(uint64_t));
    int r = 0;
    uint64_t k = 0;
    for (uint64_t bi = end / s->rb_entries; !r && bi <= (area_end - 1) / s->rb_entries; bi++) {
        uint64_t first = bi * s->rb_entries > end ? bi * s->rb_entries : end;
        uint64_t last = (bi + 1) * s->rb_entries < area_end ? (bi + 1) * s->rb_entries : area_end;
        if (bi < s->rt_entries && s->rt[bi]) { /* an existing block counts part of the area */
            r = rc_set_run(s, first, last - first, 1);
            continue;
        }
        rt[bi] = (end + k++) * s->cs;
        memset(buf, 0, s->cs);
        uint64_t lo = UINT64_MAX, hi = 0;
        for (uint64_t c = first; c < last; c++) rc_set_entry(s, buf, c % s->rb_entries, 1, &lo, &hi);
        r = wr(s, rt[bi], buf, s->cs);
    }
    uint64_t rt_off = (end + nb) * s->cs;
    if (!r) {
        memset(buf, 0, nt * s->cs);
        for (uint64_t i = 0; i < entries; i++) put_be64(buf + i * 8, rt[i]);
        r = wr(s, rt_off, buf, nt * s->cs);
    }
    if (!r) r = sync_file(s);
    if (!r) {
        uint8_t h[12];
        put_be64(h, rt_off);
        put_be32(h + 8, (uint32_t)nt);
        r = wr(s, 48, h, 12);
    }
    if (!r) r = sync_file(s);
    free(buf);
    if (r) {
        free(rt);
        return r;
    }
    uint64_t old_off = s->rt_offset, old_n = s->rt_clusters;
    free(s->rt);
    s->rt = rt;
    s->rt_entries = entries;
    s->rt_offset = rt_off;
    s->rt_clusters = (uint32_t)nt;
    for (uint64_t c = old_off / s->cs; !r && c < old_off / s->cs + old_n; c++) r = rc_set_run(s, c, 1, 0);
    if (old_off / s->cs < s->free_hint) s->free_hint = old_off / s->cs;
    return r;
}

static uint64_t reserve_max(const struct qcow2 *s)
{
    uint64_t n = RESERVE_BYTES / s->cs;
    return n < 1 ? 1 : n > RESERVE_MAX ? RESERVE_MAX : n;
}

/* Count a run of free clusters as used, ahead of their use. */
static int reserve(struct qcow2 *s)
{
    uint64_t scanned = 0;
    for (uint64_t idx = s->free_hint;; idx++) {
        if (idx >= MAX_HOST_OFFSET / s->cs) return -ENOSPC;
        /* refcount blocks that count everything as used (several table entries naming one block
         * full of ones) would make this scan run for hours: beyond the file's own clusters (and
         * a margin for leaks past its end), such refcounts are corrupt */
        if (++scanned > MAX_SCAN + s->file_size / s->cs + 4 * s->rb_entries)
            CORRUPT(s, "no free cluster in the %" PRIu64 " clusters after %" PRIu64 " (refcounts count everything as used)",
                    scanned - 1, s->free_hint);
        if (fixed_metadata(s, idx)) continue;
        uint8_t *blk;
        uint64_t boff;
        int r = rc_block(s, idx, &blk, &boff);
        if (r) return r;
        if (!blk) {
            r = new_refblock(s, idx);
            if (r) return r;
            idx--; /* look at idx again: the new block (or table) may be there now */
            continue;
        }
        if (rc_entry(s, blk, idx % s->rb_entries)) continue;
        uint64_t n = 1, bi = idx / s->rb_entries;
        while (n < reserve_max(s) && (idx + n) / s->rb_entries == bi && !fixed_metadata(s, idx + n) &&
               !rc_entry(s, blk, (idx + n) % s->rb_entries))
            n++;
        r = rc_set_run(s, idx, n, 1);
        if (r) return r;
        s->resv_start = idx;
        s->resv_count = n;
        s->free_hint = idx + n;
        s->refs_unsynced = true;
        return 0;
    }
}

static int alloc_cluster(struct qcow2 *s, uint64_t *off)
{
    if (!s->resv_count) {
        int r = reserve(s);
        if (r) return r;
    }
    *off = s->resv_start * s->cs;
    s->resv_start++;
    s->resv_count--;
    return 0;
}

/* Give the clusters reserved and not used back (their refcounts to 0). */
static int unreserve(struct qcow2 *s)
{
    if (!s->resv_count) return 0;
    int r = rc_set_run(s, s->resv_start, s->resv_count, 0);
    if (!r && s->resv_start < s->free_hint) s->free_hint = s->resv_start;
    s->resv_count = 0;
    return r;
}

/* One reference fewer to host bytes [off, off + len) (whole clusters). The caller has synced the
 * table entry that held the reference to disk first. */
static int rc_release(struct qcow2 *s, uint64_t off, uint64_t len)
{
    int r = 0;
    for (uint64_t c = off / s->cs; !r && c <= (off + len - 1) / s->cs; c++) {
        uint64_t v;
        r = rc_get(s, c, &v);
        if (r) return r;
        if (!v) CORRUPT(s, "freeing cluster %" PRIu64 " whose refcount is already 0", c);
        r = rc_set_run(s, c, 1, v - 1);
        if (!r && v == 1) {
            cache_drop(&s->l2c, c * s->cs);
            cache_drop(&s->rbc, c * s->cs);
            if (c < s->free_hint) s->free_hint = c;
        }
    }
    s->dbuf_entry = 0;
    return r;
}

/* ---- lookups ----------------------------------------------------------------------------- */

static void l2_index(const struct qcow2 *s, uint64_t voff, uint64_t *l1i, uint64_t *l2i)
{
    *l1i = voff >> (s->cluster_bits + s->l2_bits);
    *l2i = (voff >> s->cluster_bits) & (s->l2_entries - 1);
}

/* The L2 entry of guest offset voff (0 when its L1 entry is empty). */
static int l2_entry(struct qcow2 *s, uint64_t voff, uint64_t *entry)
{
    uint64_t l1i, l2i;
    l2_index(s, voff, &l1i, &l2i);
    *entry = 0;
    if (l1i >= s->l1_size) CORRUPT(s, "guest offset %" PRIu64 " is beyond the L1 table", voff);
    uint64_t l1e = s->l1[l1i];
    if (l1e & L1E_RESERVED) CORRUPT(s, "L1 entry %" PRIu64 " has reserved bits set", l1i);
    uint64_t off = l1e & L1E_OFFSET_MASK;
    if (!off) return 0;
    uint8_t *t;
    int r = cache_get(s, &s->l2c, off, "L2 table", &t);
    if (r) return r;
    *entry = be64(t + l2i * 8);
    if (!(*entry & OFLAG_COMPRESSED) && (*entry & L2E_RESERVED))
        CORRUPT(s, "L2 entry for guest offset %" PRIu64 " has reserved bits set", voff);
    return 0;
}

static int read_backing(struct qcow2 *s, uint64_t voff, const struct iovec *iov, int n, size_t len)
{
    if (!s->backing || voff >= s->backing->size) {
        iov_zero(iov, n);
        return 0;
    }
    size_t have = s->backing->size - voff < len ? (size_t)(s->backing->size - voff) : len;
    struct iovec part[VMD_QCOW2_IOV_MAX];
    int pn = iov_slice(iov, n, 0, have, part, VMD_QCOW2_IOV_MAX);
    int r = block_readv(s->backing, voff, part, pn);
    if (r || have == len) return r;
    pn = iov_slice(iov, n, have, len - have, part, VMD_QCOW2_IOV_MAX);
    iov_zero(part, pn);
    return 0;
}

/* Inflate the compressed cluster of L2 entry e into s->dbuf. */
static int decompress(struct qcow2 *s, uint64_t e)
{
    if (s->dbuf_entry == e) return 0;
    unsigned x = 62 - (s->cluster_bits - 8);
    uint64_t coff = e & ((1ULL << x) - 1);
    uint64_t nsec = ((e >> x) & ((1ULL << (s->cluster_bits - 8)) - 1)) + 1;
    uint64_t csize = nsec * 512 - (coff & 511);
    if (coff >= s->file_size) CORRUPT(s, "compressed cluster at %#" PRIx64 " lies outside the file", coff);
    if (csize > s->file_size - coff) csize = s->file_size - coff;
    size_t got;
    int r = rd(s, coff, s->zbuf, csize, &got);
    if (r) return r;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -12) != Z_OK) return -ENOMEM;
    z.next_in = s->zbuf;
    z.avail_in = (uInt)got;
    z.next_out = s->dbuf;
    z.avail_out = (uInt)s->cs;
    int zr = inflate(&z, Z_FINISH);
    uint64_t out = z.total_out;
    inflateEnd(&z);
    if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR) || out != s->cs)
        CORRUPT(s, "compressed cluster at %#" PRIx64 " does not inflate to one cluster", coff);
    s->dbuf_entry = e;
    return 0;
}

/* Guest bytes [voff, voff+len) inside one cluster whose L2 entry is e. */
static int read_in_cluster(struct qcow2 *s, uint64_t voff, uint64_t e, const struct iovec *iov, int n, size_t len)
{
    uint64_t in = voff & (s->cs - 1);
    if (e & OFLAG_COMPRESSED) {
        int r = decompress(s, e);
        if (r) return r;
        size_t at = 0;
        for (int i = 0; i < n; i++) {
            memcpy(iov[i].iov_base, s->dbuf + in + at, iov[i].iov_len);
            at += iov[i].iov_len;
        }
        return 0;
    }
    uint64_t host = e & L2E_OFFSET_MASK;
    if (e & OFLAG_ZERO) {
        if (s->version < 3) CORRUPT(s, "version 2 image has a zero cluster flag at guest offset %" PRIu64, voff);
        iov_zero(iov, n);
        return 0;
    }
    if (!host) return read_backing(s, voff, iov, n, len);
    if (host & (s->cs - 1)) CORRUPT(s, "data cluster at %#" PRIx64 " is not cluster aligned", host);
    if (host >= s->file_size) CORRUPT(s, "data cluster at %#" PRIx64 " lies outside the file", host);
    return rdv(s, host + in, iov, n);
}

static int read_whole_cluster(struct qcow2 *s, uint64_t vclust, uint64_t e, uint8_t *buf)
{
    struct iovec v = {buf, s->cs};
    if (vclust + s->cs > s->b->size) { /* the last, partial cluster: zeros past the disk's end */
        memset(buf, 0, s->cs);
        v.iov_len = s->b->size - vclust;
    }
    return read_in_cluster(s, vclust, e, &v, 1, v.iov_len);
}

static int qcow2_readv(struct block *b, uint64_t off, const struct iovec *iov, int n)
{
    struct qcow2 *s = b->opaque;
    size_t len = iov_total(iov, n), done = 0;
    while (done < len) {
        uint64_t voff = off + done;
        size_t chunk = s->cs - (voff & (s->cs - 1));
        if (chunk > len - done) chunk = len - done;
        uint64_t e;
        int r = l2_entry(s, voff, &e);
        if (r) return r;
        /* data clusters that follow each other in the file: one read for all of them */
        uint64_t host = e & L2E_OFFSET_MASK;
        if (!(e & (OFLAG_COMPRESSED | OFLAG_ZERO)) && host && !(host & (s->cs - 1)) && host < s->file_size) {
            uint64_t e2;
            while (done + chunk < len && host + (voff & (s->cs - 1)) + chunk < s->file_size &&
                   !(r = l2_entry(s, voff + chunk, &e2)) && !(e2 & (OFLAG_COMPRESSED | OFLAG_ZERO)) &&
                   (e2 & L2E_OFFSET_MASK) == host + (voff & (s->cs - 1)) + chunk - ((voff + chunk) & (s->cs - 1)))
                chunk += len - done - chunk < s->cs ? len - done - chunk : s->cs;
            if (r) return r;
        }
        struct iovec part[VMD_QCOW2_IOV_MAX];
        int pn = iov_slice(iov, n, done, chunk, part, VMD_QCOW2_IOV_MAX);
        r = read_in_cluster(s, voff, e, part, pn, chunk);
        if (r) return r;
        done += chunk;
    }
    return 0;
}

/* ---- writes ------------------------------------------------------------------------------ */

static int l1_set(struct qcow2 *s, uint64_t l1i, uint64_t v)
{
    uint8_t e[8];
    put_be64(e, v);
    int r = wr(s, s->l1_offset + l1i * 8, e, 8);
    if (!r) s->l1[l1i] = v;
    return r;
}

/* The L2 table for L1 index l1i, made (or made this image's own) when needed. */
static int l2_table_for_write(struct qcow2 *s, uint64_t l1i, uint64_t *l2_off)
{
    if (l1i >= s->l1_size) CORRUPT(s, "L1 index %" PRIu64 " is beyond the L1 table", l1i);
    uint64_t l1e = s->l1[l1i];
    if (l1e & L1E_RESERVED) CORRUPT(s, "L1 entry %" PRIu64 " has reserved bits set", l1i);
    uint64_t off = l1e & L1E_OFFSET_MASK;
    uint8_t *t;
    int r;
    if (off && !(l1e & OFLAG_COPIED)) { /* not marked as ours alone: only a refcount of 1 lets us write it */
        uint64_t v;
        if ((r = rc_get(s, off / s->cs, &v))) return r;
        if (v != 1) CORRUPT(s, "L2 table at %#" PRIx64 " is shared (refcount %" PRIu64 ")", off, v);
        if ((r = l1_set(s, l1i, off | OFLAG_COPIED))) return r;
    }
    if (off) {
        *l2_off = off;
        return cache_get(s, &s->l2c, off, "L2 table", &t);
    }
    uint64_t nt;
    if ((r = alloc_cluster(s, &nt))) return r;
    memset(s->cbuf, 0, s->cs);
    if ((r = wr(s, nt, s->cbuf, s->cs))) return r;
    if ((r = cache_install(s, &s->l2c, nt, s->cbuf))) return r;
    if ((r = barrier(s))) return r;
    if ((r = l1_set(s, l1i, nt | OFLAG_COPIED))) return r;
    *l2_off = nt;
    return 0;
}

static int l2_set(struct qcow2 *s, uint64_t l2_off, uint64_t l2i, uint64_t v)
{
    uint8_t *t;
    int r = cache_get(s, &s->l2c, l2_off, "L2 table", &t);
    if (r) return r;
    put_be64(t + l2i * 8, v);
    return wr(s, l2_off + l2i * 8, t + l2i * 8, 8);
}

/* What an L2 entry references, to release once it no longer does: host bytes, len 0 for none. */
static void entry_extent(const struct qcow2 *s, uint64_t e, uint64_t *off, uint64_t *len)
{
    *len = 0;
    if (e & OFLAG_COMPRESSED) {
        unsigned x = 62 - (s->cluster_bits - 8);
        uint64_t nsec = ((e >> x) & ((1ULL << (s->cluster_bits - 8)) - 1)) + 1;
        *off = (e & ((1ULL << x) - 1)) & ~511ULL;
        *len = nsec * 512;
    } else if (e & L2E_OFFSET_MASK) {
        *off = e & L2E_OFFSET_MASK;
        *len = s->cs;
    }
}

static int write_in_cluster(struct qcow2 *s, uint64_t voff, const struct iovec *iov, int n, size_t len)
{
    uint64_t l1i, l2i, l2_off, in = voff & (s->cs - 1);
    l2_index(s, voff, &l1i, &l2i);
    int r = l2_table_for_write(s, l1i, &l2_off);
    if (r) return r;
    uint8_t *t;
    if ((r = cache_get(s, &s->l2c, l2_off, "L2 table", &t))) return r;
    uint64_t e = be64(t + l2i * 8);
    if (!(e & OFLAG_COMPRESSED) && (e & L2E_RESERVED))
        CORRUPT(s, "L2 entry for guest offset %" PRIu64 " has reserved bits set", voff);
    uint64_t host = e & L2E_OFFSET_MASK;
    bool compressed = e & OFLAG_COMPRESSED;
    if (!compressed && host && (host & (s->cs - 1))) CORRUPT(s, "data cluster at %#" PRIx64 " is not cluster aligned", host);
    if (!compressed && host && host >= s->file_size) CORRUPT(s, "data cluster at %#" PRIx64 " lies outside the file", host);
    if (!compressed && host && (e & OFLAG_COPIED) && !(e & OFLAG_ZERO)) /* ours: in place */
        return wrv(s, host + in, iov, n);

    /* A new cluster (or a preallocated zero cluster of ours) gets the whole cluster's content. */
    bool reuse = !compressed && host && (e & OFLAG_COPIED) && (e & OFLAG_ZERO);
    uint64_t dst = host;
    if (!reuse && (r = alloc_cluster(s, &dst))) return r;
    bool was_zero = !compressed && ((e & OFLAG_ZERO) || (!host && (!s->backing || voff - in >= s->backing->size)));
    if (len == s->cs) {
        r = wrv(s, dst, iov, n);
    } else if (was_zero && dst >= s->file_size) {
        /* the whole new cluster lies past the end of the file, where it reads as zeros: only the
         * data needs writing (reads of the rest find the hole, or the end of the file: zeros) */
        r = wrv(s, dst + in, iov, n);
    } else {
        if (!compressed && (e & OFLAG_ZERO)) { /* (in a compressed entry bit 0 is part of the offset) */
            if (s->version < 3) CORRUPT(s, "version 2 image has a zero cluster flag at guest offset %" PRIu64, voff);
            memset(s->cbuf, 0, s->cs);
        } else if ((r = read_whole_cluster(s, voff - in, e, s->cbuf))) {
            return r;
        }
        size_t at = in;
        for (int i = 0; i < n; i++) {
            memcpy(s->cbuf + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
        r = wr(s, dst, s->cbuf, s->cs);
    }
    if (!r) r = barrier(s);
    if (!r) r = l2_set(s, l2_off, l2i, dst | OFLAG_COPIED);
    if (r || reuse) return r;
    uint64_t rel_off, rel_len;
    entry_extent(s, e, &rel_off, &rel_len);
    if (!rel_len) return 0;
    r = sync_file(s); /* the L2 entry that no longer points there, before the refcount drops */
    return r ? r : rc_release(s, rel_off, rel_len);
}

#define RUN_MAX 256u /* clusters written with one pwritev and one L2 write */

/* Whole clusters from voff (cluster aligned) that hold nothing yet (no host cluster, nothing to
 * release: unallocated or "reads as zeros" without one), all in one L2 table: given new clusters
 * that follow each other in the file, their data goes out in one write and their L2 entries in
 * another. Returns the number of bytes written this way (0: not applicable, the caller goes
 * cluster by cluster), or -errno. */
static int64_t write_fresh_run(struct qcow2 *s, uint64_t voff, const struct iovec *iov, int n, size_t skip, size_t left)
{
    if ((voff & (s->cs - 1)) || left < 2 * s->cs) return 0;
    uint64_t l1i, l2i, l2_off;
    l2_index(s, voff, &l1i, &l2i);
    int r = l2_table_for_write(s, l1i, &l2_off);
    if (r) return r;
    uint8_t *t;
    if ((r = cache_get(s, &s->l2c, l2_off, "L2 table", &t))) return r;
    uint64_t k = 0;
    while (k < RUN_MAX && (k + 1) * s->cs <= left && l2i + k < s->l2_entries) {
        uint64_t e = be64(t + (l2i + k) * 8);
        if ((e & OFLAG_COMPRESSED) || (e & L2E_OFFSET_MASK) || (e & L2E_RESERVED)) break;
        if ((e & OFLAG_ZERO) && s->version < 3) break;
        k++;
    }
    if (k < 2) return 0;
    /* new clusters, one after the other in the file */
    if (!s->resv_count && (r = reserve(s))) return r;
    if (k > s->resv_count) k = s->resv_count;
    if (k < 2) return 0;
    uint64_t dst = s->resv_start * s->cs;
    s->resv_start += k;
    s->resv_count -= k;
    struct iovec part[VMD_QCOW2_IOV_MAX];
    int pn = iov_slice(iov, n, skip, k * s->cs, part, VMD_QCOW2_IOV_MAX);
    if ((r = wrv(s, dst, part, pn))) return r;
    if ((r = barrier(s))) return r;
    if ((r = cache_get(s, &s->l2c, l2_off, "L2 table", &t))) return r;
    for (uint64_t i = 0; i < k; i++) put_be64(t + (l2i + i) * 8, (dst + i * s->cs) | OFLAG_COPIED);
    if ((r = wr(s, l2_off + l2i * 8, t + l2i * 8, k * 8))) return r;
    return (int64_t)(k * s->cs);
}

static int qcow2_writev(struct block *b, uint64_t off, const struct iovec *iov, int n)
{
    struct qcow2 *s = b->opaque;
    size_t len = iov_total(iov, n), done = 0;
    while (done < len) {
        uint64_t voff = off + done;
        int64_t ran = write_fresh_run(s, voff, iov, n, done, len - done);
        if (ran < 0) return (int)ran;
        if (ran > 0) {
            done += (size_t)ran;
            continue;
        }
        size_t chunk = s->cs - (voff & (s->cs - 1));
        if (chunk > len - done) chunk = len - done;
        struct iovec part[VMD_QCOW2_IOV_MAX];
        int pn = iov_slice(iov, n, done, chunk, part, VMD_QCOW2_IOV_MAX);
        int r = write_in_cluster(s, voff, part, pn, chunk);
        if (r) return r;
        done += chunk;
    }
    return 0;
}

/* After a large write (the device calls this off the guest's path): start the write-out of what
 * is dirty in the file, as the raw driver does for its range, so that the next barrier or flush
 * finds most of it on its way. The host offsets of the guest range are scattered: the whole file. */
static void qcow2_write_behind(struct block *b, uint64_t off, uint64_t len)
{
    sync_file_range(b->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

/* A flush also gives back the clusters counted ahead: after the guest's flush the file holds no
 * leak even if the process dies before the next write. */
static int qcow2_flush(struct block *b)
{
    struct qcow2 *s = b->opaque;
    int r = unreserve(s);
    if (!r) r = sync_file(s);
    if (r) log_warn("disk '%s': flush: %s", b->path, strerror(-r));
    else s->refs_unsynced = false;
    return r;
}

/* Whole clusters in [off, off+len) stop holding data: v3 marks them "reads as zeros", v2
 * without a backing file empties them (v2 over a backing file keeps them: discard is advisory). */
static int qcow2_discard(struct block *b, uint64_t off, uint64_t len)
{
    struct qcow2 *s = b->opaque;
    if (s->version < 3 && s->backing) return 0;
    uint64_t first = (off + s->cs - 1) & ~(s->cs - 1), end = (off + len) & ~(s->cs - 1);
    struct {
        uint64_t off, len;
    } rel[64];
    unsigned nrel = 0;
    int r = 0;
    for (uint64_t v = first; !r && v + s->cs <= end && v < s->b->size; v += s->cs) {
        uint64_t l1i, l2i, e;
        l2_index(s, v, &l1i, &l2i);
        if ((r = l2_entry(s, v, &e))) break;
        uint64_t rel_off, rel_len;
        entry_extent(s, e, &rel_off, &rel_len);
        uint64_t l2_off = s->l1[l1i] & L1E_OFFSET_MASK;
        if (!rel_len || !l2_off || !(s->l1[l1i] & OFLAG_COPIED)) continue; /* nothing held, or a shared table */
        if ((r = l2_set(s, l2_off, l2i, s->version >= 3 ? OFLAG_ZERO : 0))) break;
        rel[nrel].off = rel_off;
        rel[nrel++].len = rel_len;
        if (nrel == sizeof(rel) / sizeof(rel[0])) { /* the entries on disk, then the refcounts */
            r = sync_file(s);
            for (unsigned i = 0; !r && i < nrel; i++) r = rc_release(s, rel[i].off, rel[i].len);
            nrel = 0;
        }
    }
    if (nrel) {
        int r2 = sync_file(s);
        for (unsigned i = 0; !r2 && i < nrel; i++) r2 = rc_release(s, rel[i].off, rel[i].len);
        if (!r) r = r2;
    }
    return r;
}

/* ---- open / close ------------------------------------------------------------------------ */

static void free_state(struct qcow2 *s)
{
    cache_free(&s->l2c);
    cache_free(&s->rbc);
    free(s->l1);
    free(s->rt);
    free(s->cbuf);
    free(s->zbuf);
    free(s->dbuf);
    free(s->backing_name);
    block_close(s->backing);
    s->l1 = s->rt = NULL;
    s->cbuf = s->zbuf = s->dbuf = NULL;
    s->backing_name = NULL;
    s->backing = NULL;
}

#define OPEN_FAIL(...)                                        \
    do {                                                      \
        char why_[300];                                       \
        snprintf(why_, sizeof(why_), __VA_ARGS__);            \
        snprintf(err, errlen, "disk '%s': %s", b->path, why_); \
        return -EINVAL;                                       \
    } while (0)

/* Resolve a backing file name as QEMU does: absolute, or relative to the overlay's directory. */
static char *backing_path(const char *overlay, const char *name)
{
    if (name[0] == '/') return strdup(name);
    const char *slash = strrchr(overlay, '/');
    char *out;
    if (!slash) return strdup(name);
    if (asprintf(&out, "%.*s/%s", (int)(slash - overlay), overlay, name) < 0) return NULL;
    return out;
}

static int parse(struct qcow2 *s, const struct block_chain *self, char *err, size_t errlen)
{
    struct block *b = s->b;
    struct stat st;
    if (fstat(b->fd, &st) < 0) OPEN_FAIL("%s", strerror(errno));
    s->file_size = (uint64_t)st.st_size;
    uint8_t h[HDR_V3_LEN + 8];
    memset(h, 0, sizeof(h));
    size_t got;
    int r = rd(s, 0, h, sizeof(h), &got);
    if (r) OPEN_FAIL("reading the qcow2 header: %s", strerror(-r));
    if (got < HDR_V2_LEN || be32(h) != QCOW2_MAGIC) OPEN_FAIL("not a qcow2 image (no qcow2 header)");
    s->version = be32(h + 4);
    if (s->version != 2 && s->version != 3) OPEN_FAIL("qcow2 version %u is not supported (2 and 3 are)", s->version);
    uint64_t backing_off = be64(h + 8);
    uint32_t backing_len = be32(h + 16);
    s->cluster_bits = be32(h + 20);
    uint64_t size = be64(h + 24);
    uint32_t crypt = be32(h + 32);
    s->l1_size = be32(h + 36);
    s->l1_offset = be64(h + 40);
    s->rt_offset = be64(h + 48);
    s->rt_clusters = be32(h + 56);
    s->nb_snapshots = be32(h + 60);
    uint32_t hdr_len = HDR_V2_LEN;
    s->refcount_order = 4;
    s->incompat = s->autoclear = 0;
    if (s->cluster_bits < 9 || s->cluster_bits > 21) OPEN_FAIL("qcow2 cluster_bits %u is out of range (9..21)", s->cluster_bits);
    s->cs = 1ULL << s->cluster_bits;
    if (s->version == 3) {
        if (got < HDR_V3_LEN) OPEN_FAIL("qcow2 v3 header is truncated");
        s->incompat = be64(h + 72);
        s->autoclear = be64(h + 88);
        s->refcount_order = be32(h + 96);
        hdr_len = be32(h + 100);
        if (hdr_len < HDR_V3_LEN || hdr_len > s->cs || (hdr_len & 7))
            OPEN_FAIL("qcow2 header length %u is invalid", hdr_len);
    }
    if (s->refcount_order > 6) OPEN_FAIL("qcow2 refcount_order %u is out of range (0..6)", s->refcount_order);
    if (crypt) OPEN_FAIL("encrypted qcow2 images are not supported");
    uint64_t known = INCOMPAT_DIRTY | INCOMPAT_CORRUPT | INCOMPAT_COMPRESSION;
    if (s->incompat & ~known)
        OPEN_FAIL("qcow2 incompatible features %#" PRIx64 " are not supported%s", s->incompat & ~known,
                  s->incompat & INCOMPAT_DATA_FILE ? " (external data file)"
                  : s->incompat & INCOMPAT_EXTL2   ? " (extended L2 entries)"
                                                   : "");
    if (s->incompat & INCOMPAT_COMPRESSION) {
        if (hdr_len < HDR_V3_LEN + 1 || got < HDR_V3_LEN + 1) OPEN_FAIL("qcow2 header lacks its compression type");
        if (h[104] != 0) OPEN_FAIL("qcow2 compression type %u is not supported (only zlib)", h[104]);
    }
    if (!b->readonly) {
        if (s->incompat & INCOMPAT_DIRTY)
            OPEN_FAIL("qcow2 image is marked dirty (refcounts may be stale); repair it with 'qemu-img check -r all' or open it readonly");
        if (s->incompat & INCOMPAT_CORRUPT) OPEN_FAIL("qcow2 image is marked corrupt; it opens readonly only");
        if (s->nb_snapshots) OPEN_FAIL("qcow2 image has %u internal snapshots; it opens readonly only", s->nb_snapshots);
    }
    s->l2_bits = s->cluster_bits - 3;
    s->l2_entries = 1ULL << s->l2_bits;
    s->rb_entries = (s->cs * 8) >> s->refcount_order;
    if (size > (1ULL << 62)) OPEN_FAIL("qcow2 virtual size %" PRIu64 " is too large", size);
    uint64_t span = s->cs * s->l2_entries;
    uint64_t need_l1 = (size + span - 1) / span;
    if ((uint64_t)s->l1_size * 8 > MAX_L1_BYTES) OPEN_FAIL("qcow2 L1 table of %u entries is too large", s->l1_size);
    if (s->l1_size < need_l1) OPEN_FAIL("qcow2 L1 table (%u entries) is too small for the disk size", s->l1_size);
    if (s->l1_size && ((s->l1_offset & (s->cs - 1)) || s->l1_offset > s->file_size ||
                       (uint64_t)s->l1_size * 8 > s->file_size - s->l1_offset))
        OPEN_FAIL("qcow2 L1 table offset %#" PRIx64 " is unaligned or outside the file", s->l1_offset);
    if (!s->rt_clusters || (uint64_t)s->rt_clusters * s->cs > MAX_RT_BYTES)
        OPEN_FAIL("qcow2 refcount table size (%u clusters) is invalid", s->rt_clusters);
    if ((s->rt_offset & (s->cs - 1)) || s->rt_offset > s->file_size ||
        (uint64_t)s->rt_clusters * s->cs > s->file_size - s->rt_offset)
        OPEN_FAIL("qcow2 refcount table offset %#" PRIx64 " is unaligned or outside the file", s->rt_offset);
    b->size = size;

    /* header extensions: only the backing file's format matters here */
    char backing_fmt[17] = "";
    uint64_t ext = hdr_len, ext_end = s->cs < s->file_size ? s->cs : s->file_size;
    while (ext + 8 <= ext_end) {
        uint8_t eh[8];
        if ((r = rd(s, ext, eh, 8, NULL))) OPEN_FAIL("reading qcow2 header extensions: %s", strerror(-r));
        uint32_t type = be32(eh), len = be32(eh + 4);
        if (type == EXT_END) break;
        if (len > ext_end - ext - 8) OPEN_FAIL("qcow2 header extension %#x runs past the first cluster", type);
        if (type == EXT_BACKING_FORMAT) {
            if (len == 0 || len >= sizeof(backing_fmt)) OPEN_FAIL("qcow2 backing format name is invalid");
            if ((r = rd(s, ext + 8, backing_fmt, len, NULL))) OPEN_FAIL("%s", strerror(-r));
            backing_fmt[len] = 0;
        }
        ext += 8 + (((uint64_t)len + 7) & ~7ULL);
    }

    s->l1 = calloc(s->l1_size ? s->l1_size : 1, sizeof(uint64_t));
    s->rt_entries = (uint64_t)s->rt_clusters * s->cs / 8;
    s->rt = calloc(s->rt_entries, sizeof(uint64_t));
    s->cbuf = malloc(s->cs);
    s->zbuf = malloc(2 * s->cs);
    s->dbuf = malloc(s->cs);
    uint64_t raw_len = (uint64_t)s->l1_size * 8 > s->rt_entries * 8 ? (uint64_t)s->l1_size * 8 : s->rt_entries * 8;
    uint8_t *raw = malloc(raw_len + 8);
    if (!s->l1 || !s->rt || !s->cbuf || !s->zbuf || !s->dbuf || !raw) {
        free(raw);
        OPEN_FAIL("out of memory");
    }
    if ((r = rd(s, s->l1_offset, raw, (size_t)s->l1_size * 8, NULL))) {
        free(raw);
        OPEN_FAIL("reading the L1 table: %s", strerror(-r));
    }
    for (uint32_t i = 0; i < s->l1_size; i++) s->l1[i] = be64(raw + i * 8);
    if ((r = rd(s, s->rt_offset, raw, s->rt_entries * 8, NULL))) {
        free(raw);
        OPEN_FAIL("reading the refcount table: %s", strerror(-r));
    }
    for (uint64_t i = 0; i < s->rt_entries; i++) s->rt[i] = be64(raw + i * 8);
    free(raw);
    cache_init(s, &s->l2c);
    cache_init(s, &s->rbc);
    s->free_hint = 0;
    s->resv_count = 0;
    s->dbuf_entry = 0;

    if (backing_off) {
        if (backing_len == 0 || backing_len > MAX_BACKING_NAME || backing_off >= s->cs || backing_len > s->cs - backing_off ||
            backing_off + backing_len > s->file_size)
            OPEN_FAIL("qcow2 backing file name (offset %" PRIu64 ", %u bytes) is invalid", backing_off, backing_len);
        if (!(s->backing_name = calloc(1, backing_len + 1))) OPEN_FAIL("out of memory");
        if ((r = rd(s, backing_off, s->backing_name, backing_len, NULL))) OPEN_FAIL("%s", strerror(-r));
        if (strlen(s->backing_name) != backing_len) OPEN_FAIL("qcow2 backing file name contains a NUL byte");
        char *path = backing_path(b->path, s->backing_name);
        if (!path) OPEN_FAIL("out of memory");
        enum block_format fmt = BLOCK_FORMAT_RAW;
        char sub[400] = "";
        if (backing_fmt[0] && block_format_parse(backing_fmt, &fmt)) {
            snprintf(sub, sizeof(sub), "format '%s' is not supported (raw and qcow2 are)", backing_fmt);
            r = -EINVAL;
        } else if (!backing_fmt[0]) { /* an image without the format extension: what the file says */
            r = block_probe(path, &fmt, sub, sizeof(sub));
        }
        if (!r) r = block_open_backing(&s->backing, path, fmt, BLOCK_RDONLY | (b->flags & BLOCK_NOLOCK), self, sub, sizeof(sub));
        free(path);
        if (r) { /* the innermost image's reason, named once from the top of the chain */
            if (self->depth == 0) snprintf(err, errlen, "disk '%s': backing file: %s", b->path, sub);
            else snprintf(err, errlen, "%s", sub);
            return r;
        }
    }
    /* v3: autoclear features we do not maintain are cleared when we write the image */
    if (!b->readonly && s->version == 3 && s->autoclear) {
        uint8_t z[8] = {0};
        if ((r = wr(s, 88, z, 8))) OPEN_FAIL("clearing autoclear features: %s", strerror(-r));
        s->autoclear = 0;
    }
    return 0;
}

static int qcow2_open(struct block *b, const struct block_chain *self, char *err, size_t errlen)
{
    struct qcow2 *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "disk '%s': out of memory", b->path);
        return -ENOMEM;
    }
    s->b = b;
    int r = parse(s, self, err, errlen);
    if (r) {
        free_state(s);
        free(s);
        return r;
    }
    b->opaque = s;
    return 0;
}

static int qcow2_quiesce(struct block *b)
{
    struct qcow2 *s = b->opaque;
    int r = b->readonly ? 0 : unreserve(s);
    if (!r && !b->readonly) r = sync_file(s);
    return r;
}

static void qcow2_close(struct block *b)
{
    struct qcow2 *s = b->opaque;
    if (!s) return;
    if (!b->readonly) {
        int r = unreserve(s);
        if (!r) r = sync_file(s);
        if (r) log_warn("disk '%s': closing: %s", b->path, strerror(-r));
    }
    free_state(s);
    free(s);
    b->opaque = NULL;
}

/* The file was replaced under us (a snapshot's copy written over it): read it afresh. */
static int qcow2_reload(struct block *b, char *err, size_t errlen)
{
    struct qcow2 *s = b->opaque;
    free_state(s);
    struct stat st;
    if (fstat(b->fd, &st) < 0) {
        snprintf(err, errlen, "disk '%s': %s", b->path, strerror(errno));
        return -errno;
    }
    struct block_chain self = {(unsigned long long)st.st_dev, (unsigned long long)st.st_ino, 0, NULL};
    uint64_t size = b->size;
    int r = parse(s, &self, err, errlen);
    if (!r && b->size != size) {
        snprintf(err, errlen, "disk '%s': the restored image's size differs", b->path);
        r = -EINVAL;
    }
    return r;
}

int qcow2_chain_paths(struct block *b, char ***paths, unsigned *n)
{
    *paths = NULL;
    *n = 0;
    char **out = calloc(BLOCK_MAX_CHAIN + 1, sizeof(char *));
    if (!out) return -ENOMEM;
    unsigned k = 0;
    for (struct block *c = b; c && c->drv == &block_qcow2_driver && ((struct qcow2 *)c->opaque)->backing;
         c = ((struct qcow2 *)c->opaque)->backing) {
        struct block *bk = ((struct qcow2 *)c->opaque)->backing;
        if (k == BLOCK_MAX_CHAIN || !(out[k] = strdup(bk->path))) {
            block_chain_free(out, k);
            return -ENOMEM;
        }
        k++;
    }
    *paths = out;
    *n = k;
    return 0;
}

const struct block_driver block_qcow2_driver = {
    .name = "qcow2",
    .open = qcow2_open,
    .readv = qcow2_readv,
    .writev = qcow2_writev,
    .flush = qcow2_flush,
    .discard = qcow2_discard,
    .write_behind = qcow2_write_behind,
    .quiesce = qcow2_quiesce,
    .reload = qcow2_reload,
    .close = qcow2_close,
};

/* ---- creating images --------------------------------------------------------------------- */

int qcow2_create(const char *path, const struct qcow2_create_opts *o, char *err, size_t errlen)
{
    unsigned cb = o->cluster_bits ? o->cluster_bits : QCOW2_DEFAULT_CLUSTER_BITS;
    if (cb < 9 || cb > 21) {
        snprintf(err, errlen, "cluster size must be 512 bytes .. 2 MiB");
        return -EINVAL;
    }
    uint64_t cs = 1ULL << cb, size = o->size;
    const char *backing_fmt = NULL;
    if (o->backing) {
        if (!*o->backing || strlen(o->backing) > MAX_BACKING_NAME) {
            snprintf(err, errlen, "backing file name must be 1..%d bytes", MAX_BACKING_NAME);
            return -EINVAL;
        }
        char *bp = backing_path(path, o->backing);
        if (!bp) return -ENOMEM;
        enum block_format fmt;
        struct block *bb = NULL;
        int r = block_probe(bp, &fmt, err, errlen);
        if (!r) r = block_open(&bb, bp, fmt, BLOCK_RDONLY | BLOCK_NOLOCK, err, errlen);
        free(bp);
        if (r) return r;
        if (!size) size = bb->size;
        backing_fmt = block_format_name(fmt);
        block_close(bb);
    }
    if (size > (1ULL << 56)) {
        snprintf(err, errlen, "size %" PRIu64 " is too large", size);
        return -EINVAL;
    }
    uint64_t span = cs * (cs / 8);
    uint64_t l1_size = (size + span - 1) / span;
    if (!l1_size) l1_size = 1;
    uint64_t l1_clusters = (l1_size * 8 + cs - 1) / cs;
    uint64_t nclusters = 3 + l1_clusters;
    if (nclusters > cs * 8 / 16 || l1_size * 8 > MAX_L1_BYTES) {
        snprintf(err, errlen, "size %" PRIu64 " is too large for %" PRIu64 "-byte clusters", size, cs);
        return -EINVAL;
    }
    uint8_t *img = calloc(3, cs);
    if (!img) return -ENOMEM;
    uint8_t *h = img;
    put_be32(h, QCOW2_MAGIC);
    put_be32(h + 4, 3);
    put_be32(h + 20, cb);
    put_be64(h + 24, size);
    put_be32(h + 36, (uint32_t)l1_size);
    put_be64(h + 40, 3 * cs);
    put_be64(h + 48, cs);
    put_be32(h + 56, 1);
    put_be32(h + 96, 4);
    put_be32(h + 100, HDR_V3_LEN);
    size_t at = HDR_V3_LEN;
    if (backing_fmt) {
        size_t fl = strlen(backing_fmt);
        put_be32(h + at, EXT_BACKING_FORMAT);
        put_be32(h + at + 4, (uint32_t)fl);
        memcpy(h + at + 8, backing_fmt, fl);
        at += 8 + ((fl + 7) & ~(size_t)7);
    }
    at += 8; /* the end extension: zeros */
    if (o->backing) {
        size_t bl = strlen(o->backing);
        if (at + bl > cs) {
            free(img);
            snprintf(err, errlen, "backing file name does not fit in the first cluster");
            return -EINVAL;
        }
        put_be64(h + 8, at);
        put_be32(h + 16, (uint32_t)bl);
        memcpy(h + at, o->backing, bl);
    }
    put_be64(img + cs, 2 * cs); /* refcount table -> the one refcount block */
    for (uint64_t c = 0; c < nclusters; c++) img[2 * cs + c * 2 + 1] = 1; /* 16-bit refcounts of 1 */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        int e = errno;
        free(img);
        snprintf(err, errlen, "'%s': %s", path, strerror(e));
        return -e;
    }
    int r = 0;
    for (size_t done = 0; done < 3 * cs && !r;) {
        ssize_t w = pwrite(fd, img + done, 3 * cs - done, (off_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) r = w < 0 ? -errno : -EIO;
        else done += (size_t)w;
    }
    free(img);
    if (!r && ftruncate(fd, (off_t)(nclusters * cs)) < 0) r = -errno;
    if (!r && fsync(fd) < 0) r = -errno;
    close(fd);
    if (r) {
        unlink(path);
        snprintf(err, errlen, "'%s': %s", path, strerror(-r));
    }
    return r;
}
