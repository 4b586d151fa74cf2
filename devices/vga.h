/* vga: a VGA adapter in 80x25 colour text mode (mode 3), enough for Linux's vgacon and for
 * the VNC renderer: the 128 KiB window at 0xA0000 (text buffer at 0xB8000), the register
 * ports 0x3C0-0x3CF and 0x3D4/0x3D5/0x3DA (CRTC, sequencer, graphics, attribute, DAC and
 * misc output, all stored and read back; no graphics modes are rendered).
 *
 * Guest RAM covers 0xA0000-0xBFFFF in both backends, so guest writes to the text buffer
 * usually never exit: the device's video memory *is* that RAM when it exists (and its own
 * buffer otherwise, reached through the MMIO registration). Readers therefore find changes
 * by comparison: vga_text_collect_dirty() diffs the visible screen against what the
 * previous call saw. All functions here expect the machine's dev_lock to be held.
 */
#ifndef VMD_DEVICES_VGA_H
#define VMD_DEVICES_VGA_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/device.h"

#define VGA_MEM_BASE 0xA0000
#define VGA_MEM_SIZE 0x20000
#define VGA_TEXT_BASE 0xB8000
#define VGA_TEXT_SIZE 0x8000 /* 16384 cells of (character, attribute) */
#define VGA_TEXT_CELLS (VGA_TEXT_SIZE / 2)
#define VGA_TEXT_MAX_COLS 132
#define VGA_TEXT_MAX_ROWS 60
#define VGA_DIRTY_ROW_BYTES ((VGA_TEXT_MAX_COLS + 7) / 8)

#define VGA_CRTC_REGS 0x19
#define VGA_SEQ_REGS 5
#define VGA_GFX_REGS 9
#define VGA_ATTR_REGS 0x15

struct machine;

struct vga {
    struct machine *m;
    uint8_t *vram;     /* the 128 KiB window: guest RAM at 0xA0000, or own_vram */
    uint8_t *own_vram;

    uint8_t misc_output;
    uint8_t crtc_index, crtc[VGA_CRTC_REGS];
    uint8_t seq_index, seq[VGA_SEQ_REGS];
    uint8_t gfx_index, gfx[VGA_GFX_REGS];
    uint8_t attr_index, attr[VGA_ATTR_REGS];
    bool attr_flipflop_data; /* next 0x3C0 write is data (true) or index (false) */
    uint8_t dac_mask, dac_read_index, dac_write_index, dac_component;
    bool dac_reading;
    uint8_t dac[256][3]; /* 6-bit R, G, B */
    uint8_t feature_control;
    unsigned status_reads; /* drives the retrace/display-enable toggling of 0x3DA */

    /* What the last vga_text_collect_dirty() saw */
    uint8_t shadow[VGA_TEXT_MAX_ROWS * VGA_TEXT_MAX_COLS * 2];
    unsigned shadow_cols, shadow_rows;
    uint16_t shadow_start;
    int shadow_cursor; /* cell index on screen, -1 when hidden or off screen */
    bool shadow_valid;
};

struct vga_cursor {
    bool visible;          /* CRTC 0x0A bit 5 clear and on screen */
    unsigned row, col;     /* on the visible screen */
    uint8_t start_line, end_line; /* scan lines within the character cell */
};

/* The registered device (tests call .init/.destroy directly). */
extern const struct device_desc vga_device;

/* The 32 KiB text buffer (VGA_TEXT_CELLS cells: character byte, attribute byte). */
const uint8_t *vga_text_buffer(const struct vga *v);
/* Visible geometry from the CRTC (80x25 in mode 3), clamped to the maxima above. */
void vga_text_geometry(const struct vga *v, unsigned *cols, unsigned *rows);
/* Start address (CRTC 0x0C/0x0D): the cell shown at the top left. */
uint16_t vga_start_address(const struct vga *v);
/* Cursor location register (CRTC 0x0E/0x0F), in cells from the start of the buffer. */
uint16_t vga_cursor_location(const struct vga *v);
void vga_cursor(const struct vga *v, struct vga_cursor *c);
/* The 8-bit RGB of text colour 0-15 (through the attribute palette and the DAC). */
void vga_text_color_rgb(const struct vga *v, unsigned color, uint8_t rgb[3]);

/* Mark in `dirty` (bit c%8 of dirty[r][c/8]) every visible cell whose character or
 * attribute changed since the previous call, or which the cursor entered or left; all
 * cells after a geometry or start-address change (and on the first call). Returns the
 * number of dirty cells. */
unsigned vga_text_collect_dirty(struct vga *v, uint8_t dirty[VGA_TEXT_MAX_ROWS][VGA_DIRTY_ROW_BYTES]);

#endif
