/* fw_cfg: the firmware configuration device (see fw_cfg.h). */
#include "fw_cfg.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "dev_snapshot.h"
#include "vmm/machine.h"

struct fw_cfg_item {
    uint8_t *data;
    uint32_t len;
};

struct fw_cfg_file {
    char name[FW_CFG_NAME_MAX];
    struct fw_cfg_item item;
};

struct fw_cfg {
    struct machine *m;
    /* Fixed items, by selector (FW_CFG_SIGNATURE .. FW_CFG_FILE_DIR). */
    struct fw_cfg_item fixed[FW_CFG_FILE_DIR + 1];
    /* Arch-specific items (selector 0x8000 | index) */
    struct fw_cfg_item arch[FW_CFG_ARCH_ITEMS];
    struct fw_cfg_file files[FW_CFG_MAX_FILES];
    unsigned nfiles;
    /* Guest-visible state (snapshotted). */
    uint16_t selector;
    uint32_t offset;
    uint32_t dma_hi; /* the high half of the DMA address, written first */
};

static void put_be16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
static void put_be32(uint8_t *p, uint32_t v) { put_be16(p, (uint16_t)(v >> 16)), put_be16(p + 2, (uint16_t)v); }
static uint32_t get_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t get_be64(const uint8_t *p) { return (uint64_t)get_be32(p) << 32 | get_be32(p + 4); }

static int item_set(struct fw_cfg_item *it, const void *data, size_t len)
{
    if (len > UINT32_MAX) return -EINVAL;
    uint8_t *copy = len ? malloc(len) : NULL;
    if (len && !copy) return -ENOMEM;
    if (len) memcpy(copy, data, len);
    free(it->data);
    it->data = copy;
    it->len = (uint32_t)len;
    return 0;
}

static int item_int(struct fw_cfg_item *it, uint64_t v, size_t bytes)
{
    uint8_t le[8];
    for (unsigned i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
    return item_set(it, le, bytes);
}

static int fixed_u64(struct fw_cfg *f, uint16_t key, uint64_t v, size_t bytes) { return item_int(&f->fixed[key], v, bytes); }

/* The directory: a big-endian count, then per file its size, selector, and name. */
static int rebuild_dir(struct fw_cfg *f)
{
    size_t len = 4 + (size_t)f->nfiles * 64;
    uint8_t *dir = calloc(1, len);
    if (!dir) return -ENOMEM;
    put_be32(dir, f->nfiles);
    for (unsigned i = 0; i < f->nfiles; i++) {
        uint8_t *e = dir + 4 + 64 * i;
        put_be32(e, f->files[i].item.len);
        put_be16(e + 4, (uint16_t)(FW_CFG_FILE_FIRST + i));
        memcpy(e + 8, f->files[i].name, FW_CFG_NAME_MAX);
    }
    int r = item_set(&f->fixed[FW_CFG_FILE_DIR], dir, len);
    free(dir);
    return r;
}

int fw_cfg_add_file(struct fw_cfg *f, const char *name, const void *data, size_t len)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl >= FW_CFG_NAME_MAX) return -EINVAL;
    unsigned i = 0;
    while (i < f->nfiles && strcmp(f->files[i].name, name)) i++;
    if (i == FW_CFG_MAX_FILES) return -ENOSPC;
    int r = item_set(&f->files[i].item, data, len);
    if (r) return r;
    if (i == f->nfiles) {
        memset(f->files[i].name, 0, FW_CFG_NAME_MAX);
        memcpy(f->files[i].name, name, nl);
        f->nfiles++;
    }
    return rebuild_dir(f);
}

static const struct fw_cfg_item *selected(const struct fw_cfg *f)
{
    uint16_t key = f->selector & 0x3fff; /* bit 14: write (refused), bit 15: arch-specific */
    if (f->selector & 0x8000) return key < FW_CFG_ARCH_ITEMS ? &f->arch[key] : NULL;
    if (key <= FW_CFG_FILE_DIR) return &f->fixed[key];
    if (key >= FW_CFG_FILE_FIRST && (unsigned)(key - FW_CFG_FILE_FIRST) < f->nfiles) return &f->files[key - FW_CFG_FILE_FIRST].item;
    return NULL;
}

static void select_item(struct fw_cfg *f, uint16_t sel)
{
    f->selector = sel;
    f->offset = 0;
}

static uint8_t read_byte(struct fw_cfg *f)
{
    const struct fw_cfg_item *it = selected(f);
    if (!it || f->offset >= it->len) return 0;
    return it->data[f->offset++];
}

/* One FWCfgDmaAccess at guest-physical `gpa`: control, length, address (big-endian). The
 * status goes back into its control word: 0 when done, FW_CFG_DMA_ERROR on any failure. */
static void dma_run(struct fw_cfg *f, uint64_t gpa)
{
    struct guest_mem *mem = &f->m->mem;
    uint8_t req[16];
    if (guest_mem_read(mem, gpa, req, sizeof(req))) return; /* nowhere to report: ignored */
    uint32_t control = get_be32(req), len = get_be32(req + 4);
    uint64_t addr = get_be64(req + 8);
    bool error = false;
    if (control & FW_CFG_DMA_SELECT) select_item(f, (uint16_t)(control >> 16));
    const struct fw_cfg_item *it = selected(f);
    if (control & FW_CFG_DMA_WRITE) {
        error = true; /* the items are read-only */
    } else if (control & (FW_CFG_DMA_READ | FW_CFG_DMA_SKIP)) {
        uint32_t avail = it && f->offset < it->len ? it->len - f->offset : 0;
        uint32_t n = len < avail ? len : avail;
        if (control & FW_CFG_DMA_READ) {
            /* bytes of the item, then zeros up to len, as QEMU does */
            uint8_t *dst = guest_mem_ptr(mem, addr, len);
            if (!dst) {
                error = true;
            } else {
                if (n) memcpy(dst, it->data + f->offset, n);
                memset(dst + n, 0, len - n);
                guest_mem_dma_written(mem, dst, len);
            }
        }
        if (!error) f->offset += n;
    }
    uint8_t status[4];
    put_be32(status, error ? FW_CFG_DMA_ERROR : 0);
    guest_mem_write(mem, gpa, status, sizeof(status));
}

static void fw_cfg_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct fw_cfg *f = opaque;
    if (offset == 0) { /* selector; a 1-byte write selects its low byte, as a 16-bit port does */
        if (is_write) select_item(f, (uint16_t)*data);
        else *data = 0;
    } else if (!is_write) { /* data: wider reads return successive bytes, little-endian packed */
        *data = 0;
        for (unsigned i = 0; i < size; i++) *data |= (uint64_t)read_byte(f) << (8 * i);
    }
}

/* The DMA address register, big-endian: the high half at +0, the low half at +4, whose write
 * starts the transfer. Reads return "QEMU CFG", as QEMU's do. */
static void fw_cfg_dma_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct fw_cfg *f = opaque;
    if (!is_write) {
        *data = size == 4 ? __builtin_bswap32(offset < 4 ? 0x51454d55u : 0x20434647u) : 0;
        return;
    }
    if (size != 4 || (offset != 0 && offset != 4)) return;
    uint32_t v = __builtin_bswap32((uint32_t)*data);
    if (offset == 0) {
        f->dma_hi = v;
        return;
    }
    uint64_t gpa = (uint64_t)f->dma_hi << 32 | v;
    f->dma_hi = 0;
    dma_run(f, gpa);
}

static void fw_cfg_free(struct fw_cfg *f)
{
    for (unsigned i = 0; i <= FW_CFG_FILE_DIR; i++) free(f->fixed[i].data);
    for (unsigned i = 0; i < FW_CFG_ARCH_ITEMS; i++) free(f->arch[i].data);
    for (unsigned i = 0; i < f->nfiles; i++) free(f->files[i].item.data);
    free(f);
}

/* etc/e820 as SeaBIOS reads it: packed {le64 address, le64 length, le32 type} per RAM region
 * (firmware adds its own reservations below 1 MiB). */
static int add_e820(struct fw_cfg *f, const struct guest_mem *mem)
{
    uint8_t buf[2 * 20];
    size_t n = 0;
    for (unsigned i = 0; i < mem->nregions && i < 2; i++) {
        uint8_t *e = buf + 20 * n++;
        for (unsigned b = 0; b < 8; b++) {
            e[b] = (uint8_t)(mem->regions[i].gpa >> (8 * b));
            e[8 + b] = (uint8_t)(mem->regions[i].size >> (8 * b));
        }
        e[16] = 1, e[17] = e[18] = e[19] = 0; /* E820 RAM */
    }
    return fw_cfg_add_file(f, "etc/e820", buf, 20 * n);
}

static int fw_cfg_init(struct machine *m, char *err, size_t errlen)
{
    struct fw_cfg *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err, errlen, "fw_cfg: out of memory");
        return -ENOMEM;
    }
    f->m = m;
    const uint32_t boot_fail_wait = 5000; /* ms before SeaBIOS retries a failed boot, as QEMU's default -1 gives */
    uint8_t bfw[4] = {(uint8_t)boot_fail_wait, (uint8_t)(boot_fail_wait >> 8), 0, 0};
    static const uint8_t uuid[16];
    int r = item_set(&f->fixed[FW_CFG_SIGNATURE], "QEMU", 4);
    if (!r) r = fixed_u64(f, FW_CFG_ID, FW_CFG_VERSION | FW_CFG_VERSION_DMA, 4);
    if (!r) r = item_set(&f->fixed[FW_CFG_UUID], uuid, sizeof(uuid));
    if (!r) r = fixed_u64(f, FW_CFG_RAM_SIZE, m->mem.size, 8);
    if (!r) r = fixed_u64(f, FW_CFG_NOGRAPHIC, 0, 2);
    if (!r) r = fixed_u64(f, FW_CFG_NB_CPUS, m->ncpus ? m->ncpus : 1, 2);
    if (!r) r = fixed_u64(f, FW_CFG_MAX_CPUS, m->ncpus ? m->ncpus : 1, 2);
    if (!r) r = rebuild_dir(f);
    if (!r) r = add_e820(f, &m->mem);
    if (!r) r = fw_cfg_add_file(f, "bootorder", "", 0);
    if (!r) r = fw_cfg_add_file(f, "etc/boot-fail-wait", bfw, sizeof(bfw));
    /* vmd is headless: its serial console is the one every VM has, so firmware mirrors its
     * screen (and what boot loaders print through int 10h) to COM1, as QEMU -nographic does */
    static const uint8_t sercon[2] = {0xf8, 0x03};
    if (!r) r = fw_cfg_add_file(f, "etc/sercon-port", sercon, sizeof(sercon));
    /* the MADT and MP table route the PIT's IRQ0 to GSI 2 on the APIC platform */
    if (!r) r = item_int(&f->arch[FW_CFG_IRQ0_OVERRIDE & 0x3fff], m->apic ? 1 : 0, 4);
    if (r) {
        snprintf(err, errlen, "fw_cfg: %s", strerror(-r));
        fw_cfg_free(f);
        return r;
    }
    r = bus_register(&m->pio, FW_CFG_PORT_SEL, 2, fw_cfg_io, f, "fw_cfg");
    if (!r) r = bus_register(&m->pio, FW_CFG_PORT_DMA, 8, fw_cfg_dma_io, f, "fw_cfg-dma");
    if (r) {
        snprintf(err, errlen, "fw_cfg ports 0x510/0x514: %s", strerror(-r));
        bus_release(&m->pio, FW_CFG_PORT_SEL, f);
        fw_cfg_free(f);
        return r;
    }
    return 0;
}

struct fw_cfg *fw_cfg_of(struct machine *m)
{
    const struct bus_range *r = bus_find(&m->pio, FW_CFG_PORT_SEL);
    return r && r->handler == fw_cfg_io ? r->opaque : NULL;
}

static void fw_cfg_destroy(struct machine *m)
{
    struct fw_cfg *f = fw_cfg_of(m);
    if (!f) return;
    bus_release(&m->pio, FW_CFG_PORT_SEL, f);
    bus_release(&m->pio, FW_CFG_PORT_DMA, f);
    fw_cfg_free(f);
}

/* Snapshot: the selector, the read offset and the latched DMA high half. The items are rebuilt
 * from the VM's configuration, not saved. */
#define FW_CFG_STATE_VERSION 1

static int fw_cfg_save(struct machine *m, struct snap_buf *b)
{
    struct fw_cfg *f = fw_cfg_of(m);
    snap_put_bool(b, f != NULL);
    if (!f) return 0;
    snap_put_u16(b, f->selector);
    snap_put_u32(b, f->offset);
    snap_put_u32(b, f->dma_hi);
    return 0;
}

static int fw_cfg_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                          size_t errlen)
{
    if (version != FW_CFG_STATE_VERSION) return dev_snapshot_invalid("fw_cfg", "unknown version", err, errlen);
    bool bad = false;
    bool present = snap_get_bool(r, &bad);
    if (!present) return bad || r->short_read ? dev_snapshot_invalid("fw_cfg", "presence flag", err, errlen) : 0;
    uint16_t sel = snap_get_u16(r);
    uint32_t off = snap_get_u32(r), hi = snap_get_u32(r);
    if (r->short_read) return dev_snapshot_invalid("fw_cfg", "truncated", err, errlen);
    struct fw_cfg *f = fw_cfg_of(m);
    if (!apply || !f) return 0;
    f->selector = sel;
    f->offset = off; /* past the item's end reads zeros, as on the machine that saved it */
    f->dma_hi = hi;
    return 0;
}

/* A snapshot from before fw_cfg existed: the guest never selected an item. */
static int fw_cfg_restore_missing(struct machine *m, struct snap_file *sf, bool apply, char *err, size_t errlen)
{
    (void)sf, (void)err, (void)errlen;
    struct fw_cfg *f = fw_cfg_of(m);
    if (apply && f) select_item(f, 0), f->dma_hi = 0;
    return 0;
}

const struct device_desc fw_cfg_device = {.name = "fw_cfg",
                                          .level = DEVICE_LEVEL_BASE,
                                          .init = fw_cfg_init,
                                          .destroy = fw_cfg_destroy,
                                          .state_version = FW_CFG_STATE_VERSION,
                                          .save = fw_cfg_save,
                                          .restore = fw_cfg_restore,
                                          .restore_missing = fw_cfg_restore_missing};
DEVICE_REGISTER(fw_cfg_device);
