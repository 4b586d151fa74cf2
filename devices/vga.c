/* vga: text-mode VGA registers, video memory window and the dirty-cell diff (see vga.h). */
#include "vga.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_claim.h"
#include "dev_snapshot.h"
#include "vmm/machine.h"

#define VGA_PORT_ATTR 0x3C0 /* 0x3C0-0x3CF */
#define VGA_PORT_CRTC 0x3D4 /* 0x3D4-0x3D5 */
#define VGA_PORT_STATUS1 0x3DA
#define VGA_TEXT_OFFSET (VGA_TEXT_BASE - VGA_MEM_BASE)

#define CRTC_H_DISPLAY_END 0x01
#define CRTC_OVERFLOW 0x07
#define CRTC_MAX_SCAN_LINE 0x09
#define CRTC_CURSOR_START 0x0A
#define CRTC_CURSOR_END 0x0B
#define CRTC_START_HI 0x0C
#define CRTC_START_LO 0x0D
#define CRTC_CURSOR_HI 0x0E
#define CRTC_CURSOR_LO 0x0F
#define CRTC_V_RETRACE_END 0x11
#define CRTC_V_DISPLAY_END 0x12
#define CRTC_OFFSET 0x13
#define CRTC_CURSOR_DISABLE 0x20
#define CRTC_PROTECT 0x80
#define ATTR_MODE_CONTROL 0x10
#define ATTR_COLOR_SELECT 0x14
#define ATTR_P54S 0x80
#define STATUS1_DISPLAY_DISABLED 0x01
#define STATUS1_VRETRACE 0x08

/* Register contents of BIOS mode 3 (80x25 16-colour text), from the VGA reference tables. */
static const uint8_t mode3_crtc[VGA_CRTC_REGS] = {0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F, 0x00,
                                                  0x4F, 0x0D, 0x0E, 0x00, 0x00, 0x00, 0x00, 0x9C, 0x8E,
                                                  0x8F, 0x28, 0x1F, 0x96, 0xB9, 0xA3, 0xFF};
static const uint8_t mode3_seq[VGA_SEQ_REGS] = {0x03, 0x00, 0x03, 0x00, 0x02};
static const uint8_t mode3_gfx[VGA_GFX_REGS] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x0E, 0x00, 0xFF};
static const uint8_t mode3_attr[VGA_ATTR_REGS] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x14, 0x07, 0x38, 0x39, 0x3A,
                                                  0x3B, 0x3C, 0x3D, 0x3E, 0x3F, 0x0C, 0x00, 0x0F, 0x08, 0x00};
#define MODE3_MISC_OUTPUT 0x67

const uint8_t *vga_text_buffer(const struct vga *v) { return v->vram + VGA_TEXT_OFFSET; }

uint16_t vga_start_address(const struct vga *v) { return (uint16_t)(v->crtc[CRTC_START_HI] << 8 | v->crtc[CRTC_START_LO]); }

uint16_t vga_cursor_location(const struct vga *v)
{
    return (uint16_t)(v->crtc[CRTC_CURSOR_HI] << 8 | v->crtc[CRTC_CURSOR_LO]);
}

void vga_text_geometry(const struct vga *v, unsigned *cols, unsigned *rows)
{
    unsigned c = v->crtc[CRTC_H_DISPLAY_END] + 1u;
    unsigned lines = v->crtc[CRTC_V_DISPLAY_END] | ((v->crtc[CRTC_OVERFLOW] >> 1) & 1u) << 8 |
                     ((v->crtc[CRTC_OVERFLOW] >> 6) & 1u) << 9;
    unsigned r = (lines + 1) / ((v->crtc[CRTC_MAX_SCAN_LINE] & 0x1F) + 1u);
    *cols = c > VGA_TEXT_MAX_COLS ? VGA_TEXT_MAX_COLS : c;
    *rows = r == 0 ? 1 : r > VGA_TEXT_MAX_ROWS ? VGA_TEXT_MAX_ROWS : r;
}

/* Cells from one row to the next (CRTC offset register, in words times two). */
static unsigned vga_row_pitch(const struct vga *v, unsigned cols)
{
    unsigned pitch = v->crtc[CRTC_OFFSET] * 2u;
    return pitch ? pitch : cols;
}

static unsigned vga_cell_index(const struct vga *v, unsigned row, unsigned col, unsigned pitch)
{
    return (vga_start_address(v) + row * pitch + col) % VGA_TEXT_CELLS;
}

void vga_cursor(const struct vga *v, struct vga_cursor *c)
{
    unsigned cols, rows;
    vga_text_geometry(v, &cols, &rows);
    unsigned pitch = vga_row_pitch(v, cols);
    unsigned pos = (vga_cursor_location(v) + VGA_TEXT_CELLS - vga_start_address(v) % VGA_TEXT_CELLS) % VGA_TEXT_CELLS;
    c->row = pos / pitch;
    c->col = pos % pitch;
    c->start_line = v->crtc[CRTC_CURSOR_START] & 0x1F;
    c->end_line = v->crtc[CRTC_CURSOR_END] & 0x1F;
    c->visible = !(v->crtc[CRTC_CURSOR_START] & CRTC_CURSOR_DISABLE) && c->row < rows && c->col < cols;
}

void vga_text_color_rgb(const struct vga *v, unsigned color, uint8_t rgb[3])
{
    uint8_t pal = v->attr[color & 0x0F] & 0x3F;
    uint8_t sel = v->attr[ATTR_COLOR_SELECT];
    unsigned idx = pal | (sel & 0x0Cu) << 4;
    if (v->attr[ATTR_MODE_CONTROL] & ATTR_P54S) idx = (idx & 0xCF) | (sel & 0x03u) << 4;
    idx &= v->dac_mask;
    for (unsigned i = 0; i < 3; i++) rgb[i] = (uint8_t)(v->dac[idx][i] * 255u / 63u);
}

unsigned vga_text_collect_dirty(struct vga *v, uint8_t dirty[VGA_TEXT_MAX_ROWS][VGA_DIRTY_ROW_BYTES])
{
    unsigned cols, rows;
    vga_text_geometry(v, &cols, &rows);
    unsigned pitch = vga_row_pitch(v, cols);
    const uint8_t *text = vga_text_buffer(v);
    bool all = !v->shadow_valid || cols != v->shadow_cols || rows != v->shadow_rows ||
               vga_start_address(v) != v->shadow_start;
    struct vga_cursor cur;
    vga_cursor(v, &cur);
    int cursor = cur.visible ? (int)(cur.row * cols + cur.col) : -1;

    memset(dirty, 0, VGA_TEXT_MAX_ROWS * VGA_DIRTY_ROW_BYTES);
    unsigned count = 0;
    for (unsigned r = 0; r < rows; r++) {
        for (unsigned c = 0; c < cols; c++) {
            const uint8_t *cell = text + 2 * vga_cell_index(v, r, c, pitch);
            uint8_t *seen = v->shadow + 2 * (r * cols + c);
            int here = (int)(r * cols + c);
            bool changed = all || seen[0] != cell[0] || seen[1] != cell[1] ||
                           (cursor != v->shadow_cursor && (here == cursor || here == v->shadow_cursor));
            seen[0] = cell[0];
            seen[1] = cell[1];
            if (changed) {
                dirty[r][c / 8] |= (uint8_t)(1u << (c % 8));
                count++;
            }
        }
    }
    v->shadow_valid = true;
    v->shadow_cols = cols;
    v->shadow_rows = rows;
    v->shadow_start = vga_start_address(v);
    v->shadow_cursor = cursor;
    return count;
}

static void vga_mem_io(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct vga *v = opaque;
    for (unsigned i = 0; i < size && offset + i < VGA_MEM_SIZE; i++) {
        if (is_write) v->vram[offset + i] = (uint8_t)(*data >> (8 * i));
        else *data |= (uint64_t)v->vram[offset + i] << (8 * i);
    }
}

static uint8_t vga_port_read(struct vga *v, uint16_t port)
{
    switch (port) {
    case 0x3C0:
        return v->attr_index;
    case 0x3C1:
        return (v->attr_index & 0x1F) < VGA_ATTR_REGS ? v->attr[v->attr_index & 0x1F] : 0;
    case 0x3C2:
        return 0x00; /* input status 0 */
    case 0x3C4:
        return v->seq_index;
    case 0x3C5:
        return v->seq_index < VGA_SEQ_REGS ? v->seq[v->seq_index] : 0;
    case 0x3C6:
        return v->dac_mask;
    case 0x3C7:
        return v->dac_reading ? 0x03 : 0x00;
    case 0x3C8:
        return v->dac_write_index;
    case 0x3C9: {
        uint8_t val = v->dac[v->dac_read_index][v->dac_component];
        if (++v->dac_component == 3) {
            v->dac_component = 0;
            v->dac_read_index++;
        }
        return val;
    }
    case 0x3CA:
        return v->feature_control;
    case 0x3CC:
        return v->misc_output;
    case 0x3CE:
        return v->gfx_index;
    case 0x3CF:
        return v->gfx_index < VGA_GFX_REGS ? v->gfx[v->gfx_index] : 0;
    case 0x3D4:
        return v->crtc_index;
    case 0x3D5:
        return v->crtc_index < VGA_CRTC_REGS ? v->crtc[v->crtc_index] : 0;
    case VGA_PORT_STATUS1: {
        /* Alternate display-enable and retrace so that code waiting for either edge ends. */
        unsigned n = v->status_reads++;
        v->attr_flipflop_data = false;
        return (uint8_t)(((n & 1) ? STATUS1_DISPLAY_DISABLED : 0) | ((n & 2) ? STATUS1_VRETRACE : 0));
    }
    default:
        return 0xFF;
    }
}

static void vga_port_write(struct vga *v, uint16_t port, uint8_t val)
{
    switch (port) {
    case 0x3C0:
        if (!v->attr_flipflop_data) {
            v->attr_index = val & 0x3F;
        } else if ((v->attr_index & 0x1F) < VGA_ATTR_REGS) {
            v->attr[v->attr_index & 0x1F] = val;
        }
        v->attr_flipflop_data = !v->attr_flipflop_data;
        break;
    case 0x3C2:
        v->misc_output = val;
        break;
    case 0x3C4:
        v->seq_index = val & 0x07;
        break;
    case 0x3C5:
        if (v->seq_index < VGA_SEQ_REGS) v->seq[v->seq_index] = val;
        break;
    case 0x3C6:
        v->dac_mask = val;
        break;
    case 0x3C7:
        v->dac_read_index = val;
        v->dac_component = 0;
        v->dac_reading = true;
        break;
    case 0x3C8:
        v->dac_write_index = val;
        v->dac_component = 0;
        v->dac_reading = false;
        break;
    case 0x3C9:
        v->dac[v->dac_write_index][v->dac_component] = val & 0x3F;
        if (++v->dac_component == 3) {
            v->dac_component = 0;
            v->dac_write_index++;
        }
        break;
    case 0x3CE:
        v->gfx_index = val & 0x0F;
        break;
    case 0x3CF:
        if (v->gfx_index < VGA_GFX_REGS) v->gfx[v->gfx_index] = val;
        break;
    case 0x3D4:
        v->crtc_index = val & 0x3F;
        break;
    case 0x3D5:
        if (v->crtc_index >= VGA_CRTC_REGS) break;
        /* CRTC 0x11 bit 7 write-protects the horizontal/vertical timing registers 0-7. */
        if ((v->crtc[CRTC_V_RETRACE_END] & CRTC_PROTECT) && v->crtc_index <= CRTC_OVERFLOW) break;
        v->crtc[v->crtc_index] = val;
        break;
    case VGA_PORT_STATUS1:
        v->feature_control = val;
        break;
    default:
        break;
    }
}

static void vga_port_io(struct vga *v, uint16_t base, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    /* outw(0x3D4, index | data << 8) and friends: one byte per consecutive port. */
    for (unsigned i = 0; i < size; i++) {
        uint16_t port = (uint16_t)(base + offset + i);
        if (is_write) vga_port_write(v, port, (uint8_t)(*data >> (8 * i)));
        else *data |= (uint64_t)vga_port_read(v, port) << (8 * i);
    }
}

static void vga_io_3c0(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    vga_port_io(opaque, VGA_PORT_ATTR, offset, data, size, is_write);
}

static void vga_io_3d4(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    vga_port_io(opaque, VGA_PORT_CRTC, offset, data, size, is_write);
}

static void vga_io_3da(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    vga_port_io(opaque, VGA_PORT_STATUS1, offset, data, size > 1 ? 1 : size, is_write);
}

/* The EGA-compatible 64-entry palette in the 6-bit rgbRGB encoding the BIOS loads. */
static void vga_default_dac(struct vga *v)
{
    for (unsigned i = 0; i < 64; i++) {
        v->dac[i][0] = (uint8_t)((((i >> 2) & 1) * 2 + ((i >> 5) & 1)) * 21);
        v->dac[i][1] = (uint8_t)((((i >> 1) & 1) * 2 + ((i >> 4) & 1)) * 21);
        v->dac[i][2] = (uint8_t)(((i & 1) * 2 + ((i >> 3) & 1)) * 21);
    }
}

static void vga_destroy(struct machine *m);

static int vga_init(struct machine *m, char *err, size_t errlen)
{
    struct vga *v = calloc(1, sizeof(*v));
    if (!v) {
        snprintf(err, errlen, "vga: out of memory");
        return -ENOMEM;
    }
    v->m = m;
    v->vram = guest_mem_ptr(&m->mem, VGA_MEM_BASE, VGA_MEM_SIZE);
    if (!v->vram) {
        v->own_vram = calloc(1, VGA_MEM_SIZE);
        if (!v->own_vram) {
            free(v);
            snprintf(err, errlen, "vga: out of memory for video RAM");
            return -ENOMEM;
        }
        v->vram = v->own_vram;
    }
    memcpy(v->crtc, mode3_crtc, sizeof(v->crtc));
    memcpy(v->seq, mode3_seq, sizeof(v->seq));
    memcpy(v->gfx, mode3_gfx, sizeof(v->gfx));
    memcpy(v->attr, mode3_attr, sizeof(v->attr));
    v->misc_output = MODE3_MISC_OUTPUT;
    v->dac_mask = 0xFF;
    v->shadow_cursor = -1;
    vga_default_dac(v);
    m->vga = v;
    int r = bus_register(&m->mmio, VGA_MEM_BASE, VGA_MEM_SIZE, vga_mem_io, v, "vga-mem");
    if (r == 0) r = bus_register(&m->pio, VGA_PORT_ATTR, 16, vga_io_3c0, v, "vga");
    if (r == 0) r = bus_register(&m->pio, VGA_PORT_CRTC, 2, vga_io_3d4, v, "vga-crtc");
    if (r == 0) r = bus_register(&m->pio, VGA_PORT_STATUS1, 1, vga_io_3da, v, "vga-status");
    if (r < 0) {
        snprintf(err, errlen, "vga ports/memory: %s", strerror(-r));
        vga_destroy(m);
        return r;
    }
    return 0;
}

static void vga_destroy(struct machine *m)
{
    struct vga *v = m->vga;
    if (!v) return;
    bus_release(&m->mmio, VGA_MEM_BASE, v);
    bus_release(&m->pio, VGA_PORT_ATTR, v);
    bus_release(&m->pio, VGA_PORT_CRTC, v);
    bus_release(&m->pio, VGA_PORT_STATUS1, v);
    m->vga = NULL;
    free(v->own_vram);
    free(v);
}

/* Snapshot: every register and the DAC; the video memory itself is guest RAM (saved with it),
 * unless the device had to use its own buffer, which is then saved here. */
#define VGA_STATE_VERSION 1

static int vga_save(struct machine *m, struct snap_buf *b)
{
    struct vga *v = m->vga;
    snap_put_bool(b, v != NULL);
    if (!v) return 0;
    const uint8_t idx[] = {v->misc_output,  v->crtc_index,      v->seq_index,       v->gfx_index,
                           v->attr_index,   v->attr_flipflop_data, v->dac_mask,     v->dac_read_index,
                           v->dac_write_index, v->dac_component, v->dac_reading,    v->feature_control};
    snap_put(b, idx, sizeof(idx));
    snap_put(b, v->crtc, sizeof(v->crtc));
    snap_put(b, v->seq, sizeof(v->seq));
    snap_put(b, v->gfx, sizeof(v->gfx));
    snap_put(b, v->attr, sizeof(v->attr));
    snap_put(b, v->dac, sizeof(v->dac));
    snap_put_bool(b, v->own_vram != NULL);
    if (v->own_vram) snap_put(b, v->own_vram, VGA_MEM_SIZE);
    return 0;
}

static int vga_restore(struct machine *m, struct snap_reader *r, uint32_t version, bool apply, char *err,
                       size_t errlen)
{
    if (version != VGA_STATE_VERSION) return dev_snapshot_invalid("vga", "unknown version", err, errlen);
    bool bad = false;
    bool present = snap_get_bool(r, &bad);
    if (!present) return bad || r->short_read ? dev_snapshot_invalid("vga", "presence flag", err, errlen) : 0;
    uint8_t idx[12], crtc[VGA_CRTC_REGS], seq[VGA_SEQ_REGS], gfx[VGA_GFX_REGS], attr[VGA_ATTR_REGS], dac[256][3];
    snap_get(r, idx, sizeof(idx));
    snap_get(r, crtc, sizeof(crtc));
    snap_get(r, seq, sizeof(seq));
    snap_get(r, gfx, sizeof(gfx));
    snap_get(r, attr, sizeof(attr));
    snap_get(r, dac, sizeof(dac));
    bool has_vram = snap_get_bool(r, &bad);
    size_t vram_pos = r->pos;
    if (has_vram) {
        if (r->len - r->pos < VGA_MEM_SIZE) r->short_read = true;
        else r->pos += VGA_MEM_SIZE;
    }
    if (r->short_read || bad) return dev_snapshot_invalid("vga", "truncated or malformed", err, errlen);
    if (idx[5] > 1 || idx[9] > 2 || idx[10] > 1) return dev_snapshot_invalid("vga", "register out of range", err, errlen);
    struct vga *v = m->vga;
    if (!apply || !v) return 0;
    v->misc_output = idx[0];
    v->crtc_index = idx[1] & 0x3F;
    v->seq_index = idx[2] & 0x07;
    v->gfx_index = idx[3] & 0x0F;
    v->attr_index = idx[4] & 0x3F;
    v->attr_flipflop_data = idx[5];
    v->dac_mask = idx[6];
    v->dac_read_index = idx[7];
    v->dac_write_index = idx[8];
    v->dac_component = idx[9];
    v->dac_reading = idx[10];
    v->feature_control = idx[11];
    memcpy(v->crtc, crtc, sizeof(crtc));
    memcpy(v->seq, seq, sizeof(seq));
    memcpy(v->gfx, gfx, sizeof(gfx));
    memcpy(v->attr, attr, sizeof(attr));
    for (unsigned i = 0; i < 256; i++)
        for (unsigned c = 0; c < 3; c++) v->dac[i][c] = dac[i][c] & 0x3F;
    if (has_vram && v->own_vram) memcpy(v->own_vram, r->data + vram_pos, VGA_MEM_SIZE);
    v->shadow_valid = false; /* the next reader repaints everything */
    return 0;
}

const struct device_desc vga_device = {.name = "vga",
                                       .level = DEVICE_LEVEL_BASE,
                                       .init = vga_init,
                                       .destroy = vga_destroy,
                                       .state_version = VGA_STATE_VERSION,
                                       .save = vga_save,
                                       .restore = vga_restore};
DEVICE_REGISTER(vga_device);
