/* snapshot: the file format (sections + CRC-32) and machine save/restore. See snapshot.h. */
#include "vmm/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "vmm/device.h"
#include "vmm/host_files.h"
#include "vmm/log.h"
#include "vmm/machine.h"

#define HEADER_SIZE (8 + 4 + 4 + 8 + 8 + 4)
#define SECTION_HDR_SIZE (SNAP_NAME_LEN + 4 + 4 + 8 + 4 + 4)
#define RAM_SECTION_VERSION 1
#define CPU_SECTION_VERSION 2
#define PAGE 4096
#define MAX_SECTIONS 256

/* ---- buffers ---- */

void snap_buf_init(struct snap_buf *b) { memset(b, 0, sizeof(*b)); }

void snap_buf_free(struct snap_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void snap_put(struct snap_buf *b, const void *p, size_t n)
{
    if (b->failed || n == 0) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void snap_get(struct snap_reader *r, void *p, size_t n)
{
    if (r->short_read || n > r->len - r->pos) {
        r->short_read = true;
        memset(p, 0, n);
        return;
    }
    memcpy(p, r->data + r->pos, n);
    r->pos += n;
}

#define GETTER(bits)                                        \
    uint##bits##_t snap_get_u##bits(struct snap_reader *r) \
    {                                                       \
        uint##bits##_t v;                                   \
        snap_get(r, &v, sizeof(v));                         \
        return v;                                           \
    }
GETTER(8)
GETTER(16)
GETTER(32)
GETTER(64)
#undef GETTER

/* ---- writer ---- */

static int fwrite_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -EIO; }

int snap_writer_open(struct snap_writer *w, const char *path, const char *backend, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    /* 0600: a snapshot holds the guest's whole memory */
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    w->f = fd >= 0 ? fdopen(fd, "w+b") : NULL;
    if (!w->f) {
        int e = errno;
        if (fd >= 0) close(fd);
        snprintf(err, errlen, "snapshot '%s': %s", path, strerror(e));
        return -e;
    }
    uint8_t h[HEADER_SIZE] = {0};
    memcpy(h, SNAP_MAGIC, 8);
    uint32_t ver = SNAP_FORMAT_VERSION;
    memcpy(h + 8, &ver, 4);
    uint64_t now = (uint64_t)time(NULL);
    memcpy(h + 16, &now, 8);
    strncpy((char *)h + 24, backend ? backend : "", 8);
    w->count_offset = 12;
    return fwrite_all(w->f, h, sizeof(h));
}

static void section_header(uint8_t h[SECTION_HDR_SIZE], const char *name, uint32_t version, uint64_t len, uint32_t crc)
{
    memset(h, 0, SECTION_HDR_SIZE);
    strncpy((char *)h, name, SNAP_NAME_LEN);
    memcpy(h + SNAP_NAME_LEN, &version, 4);
    memcpy(h + SNAP_NAME_LEN + 8, &len, 8);
    memcpy(h + SNAP_NAME_LEN + 16, &crc, 4);
}

int snap_write_section(struct snap_writer *w, const char *name, uint32_t version, const void *payload, uint64_t len)
{
    uint8_t h[SECTION_HDR_SIZE];
    uint32_t crc = (uint32_t)crc32(0L, payload, (uInt)len);
    section_header(h, name, version, len, crc);
    w->nsections++;
    int r = fwrite_all(w->f, h, sizeof(h));
    return r ? r : fwrite_all(w->f, payload, len);
}

int snap_section_begin(struct snap_writer *w, const char *name, uint32_t version, long *hdr_offset)
{
    uint8_t h[SECTION_HDR_SIZE];
    section_header(h, name, version, 0, 0);
    *hdr_offset = ftell(w->f);
    w->nsections++;
    return fwrite_all(w->f, h, sizeof(h));
}

int snap_section_write(struct snap_writer *w, const void *p, size_t n, uint32_t *crc)
{
    *crc = (uint32_t)crc32(*crc, p, (uInt)n);
    return fwrite_all(w->f, p, n);
}

int snap_section_end(struct snap_writer *w, long hdr_offset, uint64_t len, uint32_t crc)
{
    long end = ftell(w->f);
    if (fseek(w->f, hdr_offset + SNAP_NAME_LEN + 8, SEEK_SET)) return -errno;
    int r = fwrite_all(w->f, &len, 8);
    if (!r && fseek(w->f, hdr_offset + SNAP_NAME_LEN + 16, SEEK_SET)) r = -errno;
    if (!r) r = fwrite_all(w->f, &crc, 4);
    if (!r && fseek(w->f, end, SEEK_SET)) r = -errno;
    return r;
}

int snap_writer_close(struct snap_writer *w, char *err, size_t errlen)
{
    uint8_t h[HEADER_SIZE];
    int r = 0;
    if (fflush(w->f) || fseek(w->f, 0, SEEK_SET) || fread(h, 1, sizeof(h), w->f) != sizeof(h)) r = -EIO;
    if (!r) {
        memcpy(h + 12, &w->nsections, 4);
        uint32_t crc = (uint32_t)crc32(0L, h, HEADER_SIZE - 4);
        memcpy(h + HEADER_SIZE - 4, &crc, 4);
        if (fseek(w->f, 0, SEEK_SET) || fwrite_all(w->f, h, sizeof(h)) || fflush(w->f) || fsync(fileno(w->f))) r = -EIO;
    }
    if (fclose(w->f) && !r) r = -EIO;
    w->f = NULL;
    if (r) snprintf(err, errlen, "snapshot: writing failed: %s", strerror(-r));
    return r;
}

/* ---- reader ---- */

void snap_file_close(struct snap_file *sf)
{
    if (sf->f) fclose(sf->f);
    free(sf->sections);
    memset(sf, 0, sizeof(*sf));
}

int snap_file_open(struct snap_file *sf, const char *path, char *err, size_t errlen)
{
    memset(sf, 0, sizeof(*sf));
    int fd = host_files_open(path, O_RDONLY | O_CLOEXEC, 0); /* `vmctl run --restore` opens it before its sandbox */
    sf->f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!sf->f) {
        int e = errno;
        if (fd >= 0) close(fd);
        snprintf(err, errlen, "snapshot '%s': %s", path, strerror(e));
        return -e;
    }
    uint8_t h[HEADER_SIZE];
    if (fread(h, 1, sizeof(h), sf->f) != sizeof(h) || memcmp(h, SNAP_MAGIC, 8)) {
        snprintf(err, errlen, "snapshot '%s': not a vmd snapshot (bad header)", path);
        goto bad;
    }
    uint32_t ver, count, hcrc;
    memcpy(&ver, h + 8, 4);
    memcpy(&count, h + 12, 4);
    memcpy(&sf->created, h + 16, 8);
    memcpy(sf->backend, h + 24, 8);
    memcpy(&hcrc, h + HEADER_SIZE - 4, 4);
    if (hcrc != (uint32_t)crc32(0L, h, HEADER_SIZE - 4)) {
        snprintf(err, errlen, "snapshot '%s': header checksum mismatch", path);
        goto bad;
    }
    if (ver != SNAP_FORMAT_VERSION) {
        snprintf(err, errlen, "snapshot '%s': format version %u, this vmd reads version %u", path, ver,
                 SNAP_FORMAT_VERSION);
        goto bad;
    }
    if (count > MAX_SECTIONS) {
        snprintf(err, errlen, "snapshot '%s': %u sections is more than a snapshot has", path, count);
        goto bad;
    }
    sf->sections = calloc(count ? count : 1, sizeof(*sf->sections));
    if (!sf->sections) goto bad;
    uint8_t *buf = malloc(1 << 20);
    if (!buf) goto bad;
    for (unsigned i = 0; i < count; i++) {
        uint8_t sh[SECTION_HDR_SIZE];
        struct snap_section_info *s = &sf->sections[i];
        if (fread(sh, 1, sizeof(sh), sf->f) != sizeof(sh)) {
            snprintf(err, errlen, "snapshot '%s': truncated at section %u of %u", path, i + 1, count);
            free(buf);
            goto bad;
        }
        memcpy(s->name, sh, SNAP_NAME_LEN);
        s->name[SNAP_NAME_LEN] = 0;
        uint32_t crc;
        memcpy(&s->version, sh + SNAP_NAME_LEN, 4);
        memcpy(&s->length, sh + SNAP_NAME_LEN + 8, 8);
        memcpy(&crc, sh + SNAP_NAME_LEN + 16, 4);
        s->payload_offset = ftell(sf->f);
        uint32_t got = 0;
        uint64_t left = s->length;
        while (left > 0) {
            size_t chunk = left < (1 << 20) ? (size_t)left : (1 << 20);
            if (fread(buf, 1, chunk, sf->f) != chunk) {
                snprintf(err, errlen, "snapshot '%s': section '%s' is truncated", path, s->name);
                free(buf);
                goto bad;
            }
            got = (uint32_t)crc32(got, buf, (uInt)chunk);
            left -= chunk;
        }
        if (got != crc) {
            snprintf(err, errlen, "snapshot '%s': section '%s' is corrupted (checksum mismatch)", path, s->name);
            free(buf);
            goto bad;
        }
        sf->nsections++;
    }
    free(buf);
    return 0;
bad:
    snap_file_close(sf);
    return -EINVAL;
}

const struct snap_section_info *snap_file_find(const struct snap_file *sf, const char *name)
{
    for (unsigned i = 0; i < sf->nsections; i++)
        if (!strcmp(sf->sections[i].name, name)) return &sf->sections[i];
    return NULL;
}

int snap_file_read(struct snap_file *sf, const struct snap_section_info *s, uint8_t **out)
{
    *out = malloc(s->length ? s->length : 1);
    if (!*out) return -ENOMEM;
    if (fseek(sf->f, s->payload_offset, SEEK_SET) || fread(*out, 1, s->length, sf->f) != s->length) {
        free(*out);
        *out = NULL;
        return -EIO;
    }
    return 0;
}

/* ---- machine level ---- */

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    for (unsigned i = 0; i < PAGE / 8; i++)
        if (q[i]) return false;
    return true;
}

static int save_ram(struct machine *m, struct snap_writer *w, snap_progress_fn progress, void *opaque)
{
    uint64_t pages = m->mem.size / PAGE;
    size_t bmlen = (size_t)((pages + 7) / 8);
    uint8_t *bitmap = calloc(1, bmlen);
    if (!bitmap) return -ENOMEM;
    for (uint64_t i = 0; i < pages; i++)
        if (!page_is_zero(m->mem.base + i * PAGE)) bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
    long hdr;
    uint32_t crc = 0;
    uint64_t len = 0, size = m->mem.size;
    int r = snap_section_begin(w, "ram", RAM_SECTION_VERSION, &hdr);
    if (!r) r = snap_section_write(w, &size, 8, &crc);
    if (!r) r = snap_section_write(w, bitmap, bmlen, &crc);
    len = 8 + bmlen;
    for (uint64_t i = 0; !r && i < pages; i++) {
        if (bitmap[i / 8] & (1u << (i % 8))) {
            r = snap_section_write(w, m->mem.base + i * PAGE, PAGE, &crc);
            len += PAGE;
        }
        if (progress && (i % 4096 == 0 || i + 1 == pages)) progress(opaque, (i + 1) * PAGE, size);
    }
    if (!r) r = snap_section_end(w, hdr, len, crc);
    free(bitmap);
    return r;
}

int snapshot_save(struct machine *m, const char *path, snap_progress_fn progress, void *opaque, char *err, size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    struct snap_writer w;
    int r = snap_writer_open(&w, tmp, m->backend->name, err, errlen);
    if (r) return r;
    for (unsigned i = 0; !r && i < m->ncpus; i++) {
        struct cpu_state s;
        r = m->backend->get_state(&m->vcpus[i], &s);
        char name[SNAP_NAME_LEN];
        snprintf(name, sizeof(name), "cpu.%u", i);
        if (!r) r = snap_write_section(&w, name, CPU_SECTION_VERSION, &s, sizeof(s));
    }
    pthread_mutex_lock(&m->dev_lock);
    for (unsigned i = 0; !r && i < devices_count(); i++) {
        const struct device_desc *d = device_at(i);
        if (!d->save) continue;
        struct snap_buf b;
        snap_buf_init(&b);
        r = d->save(m, &b);
        if (!r && b.failed) r = -ENOMEM;
        char name[SNAP_NAME_LEN + 8];
        snprintf(name, sizeof(name), "dev.%s", d->name);
        if (!r) r = snap_write_section(&w, name, d->state_version, b.data, b.len);
        snap_buf_free(&b);
    }
    pthread_mutex_unlock(&m->dev_lock);
    if (!r) r = save_ram(m, &w, progress, opaque);
    if (r) {
        snprintf(err, errlen, "snapshot '%s': %s", path, strerror(-r));
        fclose(w.f);
        unlink(tmp);
        return r;
    }
    r = snap_writer_close(&w, err, errlen);
    if (!r && rename(tmp, path)) {
        r = -errno;
        snprintf(err, errlen, "snapshot '%s': %s", path, strerror(-r));
    }
    if (r) unlink(tmp);
    return r;
}

/* Check (apply=false) or load (apply=true) the RAM section. */
static int restore_ram(struct machine *m, struct snap_file *sf, bool apply, snap_progress_fn progress, void *opaque,
                       char *err, size_t errlen)
{
    const struct snap_section_info *s = snap_file_find(sf, "ram");
    if (!s) {
        snprintf(err, errlen, "snapshot: section 'ram' is missing");
        return -EINVAL;
    }
    if (s->version != RAM_SECTION_VERSION) {
        snprintf(err, errlen, "snapshot: section 'ram' has version %u, this vmd reads %u", s->version, RAM_SECTION_VERSION);
        return -EINVAL;
    }
    uint64_t size, pages = m->mem.size / PAGE;
    size_t bmlen = (size_t)((pages + 7) / 8);
    if (fseek(sf->f, s->payload_offset, SEEK_SET) || fread(&size, 1, 8, sf->f) != 8) return -EIO;
    if (size != m->mem.size) {
        snprintf(err, errlen, "snapshot: section 'ram' holds %llu MiB, this VM has %llu MiB",
                 (unsigned long long)(size >> 20), (unsigned long long)(m->mem.size >> 20));
        return -EINVAL;
    }
    uint8_t *bitmap = malloc(bmlen);
    if (!bitmap) return -ENOMEM;
    int r = 0;
    if (fread(bitmap, 1, bmlen, sf->f) != bmlen) r = -EIO;
    uint64_t npages = 0;
    for (uint64_t i = 0; !r && i < pages; i++) npages += (bitmap[i / 8] >> (i % 8)) & 1;
    if (!r && s->length != 8 + bmlen + npages * PAGE) {
        snprintf(err, errlen, "snapshot: section 'ram' has a length that does not match its page map");
        r = -EINVAL;
    }
    for (uint64_t i = 0; !r && apply && i < pages; i++) {
        uint8_t *p = m->mem.base + i * PAGE;
        if (bitmap[i / 8] & (1u << (i % 8))) {
            if (fread(p, 1, PAGE, sf->f) != PAGE) r = -EIO;
        } else if (!page_is_zero(p)) {
            memset(p, 0, PAGE);
        }
        if (progress && (i % 4096 == 0 || i + 1 == pages)) progress(opaque, (i + 1) * PAGE, size);
    }
    free(bitmap);
    if (r == -EIO) snprintf(err, errlen, "snapshot: reading section 'ram' failed");
    return r;
}

static int restore_devices(struct machine *m, struct snap_file *sf, bool apply, char *err, size_t errlen)
{
    for (unsigned i = 0; i < devices_count(); i++) {
        const struct device_desc *d = device_at(i);
        if (!d->restore) continue;
        char name[SNAP_NAME_LEN + 8];
        snprintf(name, sizeof(name), "dev.%s", d->name);
        const struct snap_section_info *s = snap_file_find(sf, name);
        if (!s && d->restore_missing) {
            int r = d->restore_missing(m, sf, apply, err, errlen);
            if (r) return r;
            continue;
        }
        if (!s) {
            snprintf(err, errlen, "snapshot: section '%s' is missing", name);
            return -EINVAL;
        }
        uint8_t *data;
        int r = snap_file_read(sf, s, &data);
        if (r) {
            snprintf(err, errlen, "snapshot: reading section '%s' failed", name);
            return r;
        }
        struct snap_reader rd = {.data = data, .len = s->length, .file = sf};
        r = d->restore(m, &rd, s->version, apply, err, errlen);
        if (!r && rd.short_read) {
            snprintf(err, errlen, "snapshot: section '%s' is shorter than its device state", name);
            r = -EINVAL;
        }
        free(data);
        if (r) return r;
    }
    return 0;
}

int snapshot_check_backend(struct snap_file *sf, const char *backend, char *err, size_t errlen)
{
    /* Interrupt controllers travel in backend-neutral form (vmm/irqchip.h) and CPU state is
     * common: either backend takes over a snapshot of the other. */
    if (!strcmp(sf->backend, "kvm") || !strcmp(sf->backend, "emu")) return 0;
    snprintf(err, errlen, "snapshot was taken under the '%s' backend, which this vmd does not know", sf->backend);
    (void)backend;
    return -ENOTSUP;
}

int snap_file_cpu_state(struct snap_file *sf, unsigned i, struct cpu_state *out, char *err, size_t errlen)
{
    char name[SNAP_NAME_LEN];
    snprintf(name, sizeof(name), "cpu.%u", i);
    const struct snap_section_info *s = snap_file_find(sf, name);
    /* version 1 is a prefix of version 2 (which added TSC-deadline, kvmclock and TSC rate) */
    if (!s || !((s->version == CPU_SECTION_VERSION && s->length == sizeof(struct cpu_state)) ||
                (s->version == 1 && s->length == CPU_STATE_V1_SIZE))) {
        snprintf(err, errlen, "snapshot: section '%s' is %s", name, s ? "of another version or size" : "missing");
        return -EINVAL;
    }
    uint8_t *data;
    int r = snap_file_read(sf, s, &data);
    if (r) {
        snprintf(err, errlen, "snapshot: reading section '%s' failed", name);
        return r;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out, data, s->length);
    free(data);
    return 0;
}

int snapshot_restore(struct machine *m, const char *path, snap_progress_fn progress, void *opaque, char *err,
                     size_t errlen)
{
    struct snap_file sf;
    int r = snap_file_open(&sf, path, err, errlen);
    if (r) return r;
    struct cpu_state *cpus = calloc(m->ncpus, sizeof(*cpus));
    if (!cpus) {
        snap_file_close(&sf);
        return -ENOMEM;
    }
    /* Pass 1: everything must be present, of a known version, and fit this machine. */
    for (unsigned i = 0; !r && i < m->ncpus; i++) r = snap_file_cpu_state(&sf, i, &cpus[i], err, errlen);
    char extra[SNAP_NAME_LEN];
    snprintf(extra, sizeof(extra), "cpu.%u", m->ncpus);
    if (!r && snap_file_find(&sf, extra)) {
        snprintf(err, errlen, "snapshot: it has more vCPUs than this VM (%u)", m->ncpus);
        r = -EINVAL;
    }
    pthread_mutex_lock(&m->dev_lock);
    if (!r) r = restore_devices(m, &sf, false, err, errlen);
    pthread_mutex_unlock(&m->dev_lock);
    if (!r) r = restore_ram(m, &sf, false, NULL, NULL, err, errlen);
    /* Pass 2: apply. */
    if (!r) r = restore_ram(m, &sf, true, progress, opaque, err, errlen);
    if (!r) {
        pthread_mutex_lock(&m->dev_lock);
        r = restore_devices(m, &sf, true, err, errlen);
        pthread_mutex_unlock(&m->dev_lock);
    }
    for (unsigned i = 0; !r && i < m->ncpus; i++) {
        r = m->backend->set_state(&m->vcpus[i], &cpus[i]);
        if (r) snprintf(err, errlen, "snapshot: loading vCPU %u: %s", i, strerror(-r));
    }
    free(cpus);
    snap_file_close(&sf);
    return r;
}
