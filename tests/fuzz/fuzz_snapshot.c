/* fuzz_snapshot: libFuzzer target for snapshot files (vmm/snapshot.c) and every device's
 * restore() (vmm/device.h), the code that reads a snapshot file someone hands the daemon.
 *
 * Input byte 0 picks the mode:
 *   even: the rest is a snapshot file; snapshot_restore() into a small machine with every
 *         device (fake backend, no kernel irqchip). It must refuse or restore, never crash.
 *         With bit 1 set the header's and every section's CRC-32 are first recomputed, so
 *         mutations reach the section parsers (RAM bitmap, vCPU state, device states)
 *         instead of stopping at the checksum.
 *   odd:  byte 1 picks a device (device_at), bytes 2-3 a payload length, then the payload is
 *         fed to that device's restore() with apply=false and, if accepted, apply=true; the
 *         device must then save a state that restores again, and the rest of the input is an
 *         access script run against the devices (restored indices must not let a guest
 *         access escape a buffer).
 * The machine is rebuilt for every input so runs are reproducible. With FUZZ_SEED_DIR set,
 * the first run writes valid seeds there: a whole snapshot of a fresh machine and each
 * device's saved state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "fuzz_machine.h"
#include "vmm/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_RAM (2u << 20)

static void write_seeds(const char *dir)
{
    struct fuzz_machine fm;
    if (fuzz_machine_init(&fm, FUZZ_RAM, true) < 0) abort();
    char err[256];
    char path[256];
    snprintf(path, sizeof(path), "%s/.seed-snapshot.tmp", dir);
    if (snapshot_save(&fm.m, path, NULL, NULL, err, sizeof(err)) == 0) {
        FILE *f = fopen(path, "rb");
        if (f) {
            uint8_t *buf = malloc(1u << 20);
            size_t n = buf ? fread(buf + 1, 1, (1u << 20) - 1, f) : 0;
            fclose(f);
            if (buf) {
                buf[0] = 0;
                fuzz_write_seed(dir, "seed-snapshot", buf, n + 1);
                buf[0] = 2;
                fuzz_write_seed(dir, "seed-snapshot-crc-fixed", buf, n + 1);
                free(buf);
            }
        }
        unlink(path);
    }
    for (unsigned i = 0; i < devices_count(); i++) {
        const struct device_desc *d = device_at(i);
        if (!d->save) continue;
        struct snap_buf b;
        snap_buf_init(&b);
        if (d->save(&fm.m, &b) == 0 && !b.failed && b.len <= 0xFFFF) {
            uint8_t *buf = malloc(b.len + 4);
            if (buf) {
                buf[0] = 1, buf[1] = (uint8_t)i, buf[2] = (uint8_t)b.len, buf[3] = (uint8_t)(b.len >> 8);
                memcpy(buf + 4, b.data, b.len);
                char name[64];
                snprintf(name, sizeof(name), "seed-dev-%s", d->name);
                fuzz_write_seed(dir, name, buf, b.len + 4);
                free(buf);
            }
        }
        snap_buf_free(&b);
    }
    fuzz_machine_free(&fm);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("FUZZ_SEED_DIR");
    if (dir && *dir) write_seeds(dir);
    return 0;
}

/* Layout constants of the file format (vmm/snapshot.h). */
#define HDR_SIZE 36
#define SECTION_HDR 48
#define SECTION_CRC_AT (SNAP_NAME_LEN + 16)

/* Recompute the header CRC and each complete section's payload CRC in place. */
static void fix_crcs(uint8_t *f, size_t len)
{
    if (len < HDR_SIZE) return;
    uint32_t crc = (uint32_t)crc32(0L, f, HDR_SIZE - 4), count;
    memcpy(f + HDR_SIZE - 4, &crc, 4);
    memcpy(&count, f + 12, 4);
    size_t off = HDR_SIZE;
    for (uint32_t i = 0; i < count && len - off >= SECTION_HDR; i++) {
        uint64_t plen;
        memcpy(&plen, f + off + SNAP_NAME_LEN + 8, 8);
        if (plen > len - off - SECTION_HDR) return;
        crc = (uint32_t)crc32(0L, f + off + SECTION_HDR, (uInt)plen);
        memcpy(f + off + SECTION_CRC_AT, &crc, 4);
        off += SECTION_HDR + plen;
    }
}

static void fuzz_file(struct fuzz_machine *fm, const uint8_t *data, size_t size, bool fix)
{
    char path[64], err[512] = "";
    uint8_t *copy = NULL;
    if (fix && size) {
        copy = malloc(size);
        if (!copy) return;
        memcpy(copy, data, size);
        fix_crcs(copy, size);
        data = copy;
    }
    int fd = fuzz_memfile(data, size, path, sizeof(path));
    free(copy);
    if (fd < 0) return;
    int r = snapshot_restore(&fm->m, path, NULL, NULL, err, sizeof(err));
    if (r < 0 && !err[0]) abort(); /* refused without a reason */
    close(fd);
}

static void fuzz_device(struct fuzz_machine *fm, const uint8_t *data, size_t size)
{
    struct fuzz_input in = {data, size};
    unsigned n = devices_count();
    if (!n) return;
    const struct device_desc *d = device_at((unsigned)fuzz_take(&in, 1) % n);
    if (!d->restore) return;
    size_t plen = (size_t)fuzz_take(&in, 2);
    if (plen > in.len) plen = in.len;
    const uint8_t *payload = in.p;
    in.p += plen, in.len -= plen;

    struct machine *m = &fm->m;
    char err[512] = "";
    pthread_mutex_lock(&m->dev_lock);
    struct snap_reader r = {.data = payload, .len = plen};
    int rc = d->restore(m, &r, d->state_version, false, err, sizeof(err));
    bool accepted = rc == 0 && !r.short_read;
    if (accepted) {
        struct snap_reader r2 = {.data = payload, .len = plen};
        rc = d->restore(m, &r2, d->state_version, true, err, sizeof(err));
        if (rc < 0) abort(); /* validated state must apply */
        /* what the device now holds must save and be accepted again */
        struct snap_buf b;
        snap_buf_init(&b);
        if (d->save && d->save(m, &b) == 0 && !b.failed) {
            struct snap_reader r3 = {.data = b.data, .len = b.len};
            if (d->restore(m, &r3, d->state_version, false, err, sizeof(err)) < 0 || r3.short_read) {
                fprintf(stderr, "%s: its own saved state is refused: %s\n", d->name, err);
                abort();
            }
        }
        snap_buf_free(&b);
    }
    pthread_mutex_unlock(&m->dev_lock);
    if (accepted) {
        uint64_t now = 1000000000ULL;
        fuzz_poke_devices(fm, &in, &now);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20)) return 0;
    struct fuzz_machine fm;
    if (fuzz_machine_init(&fm, FUZZ_RAM, true) < 0) abort();
    if (data[0] & 1)
        fuzz_device(&fm, data + 1, size - 1);
    else
        fuzz_file(&fm, data + 1, size - 1, data[0] & 2);
    fuzz_machine_free(&fm);
    return 0;
}
