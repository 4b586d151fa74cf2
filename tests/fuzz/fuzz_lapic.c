/* fuzz_lapic: libFuzzer target for the local APIC model (devices/lapic.c): its
 * snapshot restore and KVM-state import (both read files someone hands the daemon) and the
 * guest-driven register, MSR, interrupt and timer paths.
 *
 * Input byte 0 picks the start:
 *   0xAA: the next 1024 bytes are a KVM register page, then IA32_APIC_BASE and
 *         IA32_TSC_DEADLINE (u64 each): lapic_from_page (validate, then apply);
 *   0xBB: bytes 1-2 a payload length, then that payload: lapic_restore (apply=false, then true);
 *   else: a power-on APIC.
 * The rest is an operation script of 10-byte steps (op, u32, u64 overlapping) run against the
 * APIC with a fake clock. Invariants checked (abort on violation): a refused restore/import and
 * any apply=false leave the state unchanged, and every live state saves and restores again into
 * a fresh APIC. With FUZZ_SEED_DIR set, the first run writes valid seeds there: KVM pages
 * (xAPIC one-shot, x2APIC TSC-deadline) and a saved state with a running periodic timer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/lapic.h"
#include "irqchip_test_helpers.h"
#include "vmm/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

struct fuzz_host {
    struct timer_list timers;
    uint64_t now_ns;
};

static void fz_kick(void *o) { (void)o; }
static void fz_eoi(void *o, uint8_t v) { (void)o, (void)v; }
static uint64_t fz_clock(void *o) { return ((struct fuzz_host *)o)->now_ns; }
static uint64_t fz_tsc(void *o) { return ((struct fuzz_host *)o)->now_ns * 3; }

static struct lapic *fz_create(struct fuzz_host *h)
{
    struct lapic_host host = {.opaque = h,
                              .kick = fz_kick,
                              .eoi_broadcast = fz_eoi,
                              .tsc_now = fz_tsc,
                              .tsc_khz = 3000000,
                              .clock_ns = fz_clock,
                              .timers = &h->timers};
    struct lapic *a = lapic_create(&host, 0);
    if (!a) abort();
    return a;
}

static struct snap_buf fz_save(const struct lapic *a)
{
    struct snap_buf b;
    snap_buf_init(&b);
    lapic_save(a, &b);
    if (b.failed) abort();
    return b;
}

static void fz_same(const struct lapic *a, const struct snap_buf *before, const char *what)
{
    struct snap_buf now = fz_save(a);
    if (now.len != before->len || memcmp(now.data, before->data, now.len)) {
        fprintf(stderr, "fuzz_lapic: %s changed the state\n", what);
        abort();
    }
    snap_buf_free(&now);
}

static void fz_roundtrip(const struct lapic *a, uint64_t now_ns)
{
    struct snap_buf b = fz_save(a);
    struct fuzz_host h2 = {.now_ns = now_ns + 12345};
    struct lapic *c = fz_create(&h2);
    struct snap_reader r = {.data = b.data, .len = b.len};
    char err[200];
    if (lapic_restore(c, &r, true, err, sizeof(err))) {
        fprintf(stderr, "fuzz_lapic: a live state does not restore: %s\n", err);
        abort();
    }
    lapic_destroy(c);
    if (h2.timers.head) abort();
    snap_buf_free(&b);
}

static void write_seed(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(p, 1, n, f);
    fclose(f);
}

static void put32(uint8_t *page, uint32_t off, uint32_t v) { memcpy(page + off, &v, 4); }

/* A short operation script: software-enable, TPR, timer and ICR writes, time passing, acks. */
static const uint8_t seed_ops[] = {
    0, 0xf0, 0x00, 0x00, 0x00, 0xff, 0x01, 0, 0, 0, /* mmio SVR 0x1ff */
    0, 0x20, 0x03, 0x00, 0x00, 0x40, 0x00, 2, 0, 0, /* mmio LVT timer periodic 0x40 */
    0, 0x80, 0x03, 0x00, 0x00, 0x00, 0x10, 0, 0, 0, /* mmio initial count */
    7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 1, 0, 0, /* time passes */
    6, 0, 0, 0, 0, 0, 0, 0, 0, 0,                   /* ack */
    9, 0x40, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0,       /* ICR */
    8, 0, 0, 0, 0, 0, 0, 0, 0, 0,                   /* round trip */
};

static void write_seeds(const char *dir)
{
    uint8_t buf[1 + 1024 + 16 + sizeof(seed_ops)];
    uint8_t *page = buf + 1;
    memset(buf, 0, sizeof(buf));
    buf[0] = 0xAA;
    put32(page, 0xd0, 0x01000000);
    put32(page, 0xe0, 0xffffffff);
    put32(page, 0xf0, 0x1ff);
    put32(page, 0x320, 0x20030);
    put32(page, 0x350, 0x700);
    put32(page, 0x380, 100000);
    put32(page, 0x390, 2500);
    put32(page, 0x3e0, 3);
    put32(page, 0x110, 1u << 16);
    put32(page, 0x190, 1u << 16);
    put32(page, 0x210, 1u << 17);
    uint64_t base = LAPIC_DEFAULT_BASE | APIC_BASE_ENABLE | APIC_BASE_BSP, deadline = 0;
    memcpy(buf + 1025, &base, 8);
    memcpy(buf + 1033, &deadline, 8);
    memcpy(buf + 1041, seed_ops, sizeof(seed_ops));
    write_seed(dir, "seed-import-xapic", buf, sizeof(buf));
    put32(page, 0x320, 0x400ec);
    base |= APIC_BASE_EXTD;
    deadline = 50000;
    memcpy(buf + 1025, &base, 8);
    memcpy(buf + 1033, &deadline, 8);
    write_seed(dir, "seed-import-x2apic", buf, sizeof(buf));

    struct fuzz_host h = {.now_ns = 1000};
    struct lapic *a = fz_create(&h);
    char err[200];
    if (lapic_from_page(a, page, LAPIC_DEFAULT_BASE | APIC_BASE_ENABLE, 0, true, err, sizeof(err)) == 0) {
        struct snap_buf b = fz_save(a);
        uint8_t *s = malloc(3 + b.len + sizeof(seed_ops));
        if (s) {
            s[0] = 0xBB;
            s[1] = (uint8_t)b.len;
            s[2] = (uint8_t)(b.len >> 8);
            memcpy(s + 3, b.data, b.len);
            memcpy(s + 3 + b.len, seed_ops, sizeof(seed_ops));
            write_seed(dir, "seed-restore", s, 3 + b.len + sizeof(seed_ops));
            free(s);
        }
        snap_buf_free(&b);
    }
    lapic_destroy(a);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("FUZZ_SEED_DIR");
    if (dir && *dir) write_seeds(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    struct fuzz_host h = {.now_ns = 1000};
    struct lapic *a = fz_create(&h);
    struct snap_buf fresh = fz_save(a);
    char err[200];
    size_t i = n ? 1 : 0;
    if (n >= 1 + 1024 + 16 && d[0] == 0xAA) {
        uint64_t base, deadline;
        memcpy(&base, d + 1025, 8);
        memcpy(&deadline, d + 1033, 8);
        int rc = lapic_from_page(a, d + 1, base, deadline, false, err, sizeof(err));
        fz_same(a, &fresh, "import_kvm(apply=false)");
        if (lapic_from_page(a, d + 1, base, deadline, true, err, sizeof(err)) != rc) abort();
        if (rc) fz_same(a, &fresh, "a refused import_kvm");
        i = 1 + 1024 + 16;
    } else if (n >= 3 && d[0] == 0xBB) {
        size_t len = (size_t)d[1] | (size_t)d[2] << 8;
        if (len > n - 3) len = n - 3;
        struct snap_reader r = {.data = d + 3, .len = len};
        int rc = lapic_restore(a, &r, false, err, sizeof(err));
        fz_same(a, &fresh, "restore(apply=false)");
        r = (struct snap_reader){.data = d + 3, .len = len};
        if (lapic_restore(a, &r, true, err, sizeof(err)) != rc) abort();
        if (rc) fz_same(a, &fresh, "a refused restore");
        i = 3 + len;
    }
    snap_buf_free(&fresh);
    fz_roundtrip(a, h.now_ns);
    for (; i + 10 <= n; i += 10) {
        uint8_t op = d[i];
        uint32_t x;
        uint64_t y, v;
        memcpy(&x, d + i + 1, 4);
        memcpy(&y, d + i + 2, 8);
        uint32_t msr = (x & 1) ? MSR_IA32_TSC_DEADLINE : MSR_X2APIC_FIRST + ((x >> 8) & 0xff);
        switch (op % 10) {
        case 0: lapic_mmio_write(a, x & 0x1ff0, &y, 4); break;
        case 1: lapic_mmio_read(a, x & 0x1fff, &v, 1 + (x >> 16) % 8); break;
        case 2: (void)lapic_msr_write(a, msr, y); break;
        case 3: (void)lapic_msr_read(a, msr, &v); break;
        case 4: (void)lapic_set_base(a, (x & 1) ? y : LAPIC_DEFAULT_BASE | ((y & 3) << 10)); break;
        case 5: lapic_set_irq(a, (uint8_t)x, x & 0x100); break;
        case 6: (void)lapic_ack(a); break;
        case 7:
            h.now_ns += y % 100000000;
            timers_run(&h.timers, h.now_ns);
            break;
        case 8: fz_roundtrip(a, h.now_ns); break;
        default: lapic_mmio_write(a, 0x300 + (x & 0xf0), &x, 4); break;
        }
    }
    fz_roundtrip(a, h.now_ns);
    lapic_destroy(a);
    if (h.timers.head) abort(); /* destroy left a timer armed */
    return 0;
}
