/* Unit tests for devices/vga: text memory, CRTC cursor/start registers, DAC and attribute
 * palette, the 0x3DA toggling, and the dirty-cell diff the VNC renderer reads. */
#include "tests/unit/device_test_machine.h"

#include "devices/vga.h"

static int setup(void **state)
{
    static struct device_test_machine t;
    dtm_setup(&t, 1 << 20, &dtm_backend, &vga_device);
    *state = &t;
    return 0;
}

static int teardown(void **state)
{
    dtm_teardown(*state, &vga_device);
    return 0;
}

static void crtc_write(struct device_test_machine *t, uint8_t reg, uint8_t v)
{
    dtm_out(t, 0x3D4, (uint64_t)reg | (uint64_t)v << 8, 2); /* vgacon-style outw */
}

static uint8_t crtc_read(struct device_test_machine *t, uint8_t reg)
{
    dtm_outb(t, 0x3D4, reg);
    return dtm_inb(t, 0x3D5);
}

/* What a guest store to 0xB8000 does in either backend: RAM (or the MMIO window). */
static void guest_text_write(struct device_test_machine *t, unsigned cell, char ch, uint8_t attr)
{
    uint8_t b[2] = {(uint8_t)ch, attr};
    assert_int_equal(guest_mem_write(&t->m.mem, VGA_TEXT_BASE + 2 * cell, b, 2), 0);
}

static unsigned dirty_count(uint8_t dirty[VGA_TEXT_MAX_ROWS][VGA_DIRTY_ROW_BYTES], unsigned row, unsigned col)
{
    return (dirty[row][col / 8] >> (col % 8)) & 1u;
}

static void test_text_memory_round_trip(void **state)
{
    struct device_test_machine *t = *state;
    assert_non_null(t->m.vga);
    uint64_t v = 0x0741; /* 'A' light grey */
    assert_true(machine_mmio(&t->m, VGA_TEXT_BASE, &v, 2, true));
    v = 0;
    assert_true(machine_mmio(&t->m, VGA_TEXT_BASE, &v, 2, false));
    assert_int_equal(v, 0x0741);
    guest_text_write(t, 1, 'B', 0x1F);
    const uint8_t *text = vga_text_buffer(t->m.vga);
    assert_int_equal(text[0], 'A');
    assert_int_equal(text[1], 0x07);
    assert_int_equal(text[2], 'B');
    assert_int_equal(text[3], 0x1F);
    v = 0;
    assert_true(machine_mmio(&t->m, VGA_TEXT_BASE + 2, &v, 4, false));
    assert_int_equal(v, 0x1F42);
    /* The last byte of the window is reachable, nothing beyond it is claimed. */
    v = 0x99;
    assert_true(machine_mmio(&t->m, VGA_MEM_BASE + VGA_MEM_SIZE - 1, &v, 1, true));
    assert_false(machine_mmio(&t->m, VGA_MEM_BASE + VGA_MEM_SIZE, &v, 1, false));
}

static void test_crtc_cursor_and_start_registers(void **state)
{
    struct device_test_machine *t = *state;
    unsigned cols, rows;
    vga_text_geometry(t->m.vga, &cols, &rows);
    assert_int_equal(cols, 80);
    assert_int_equal(rows, 25);
    for (uint8_t r = 0; r < VGA_CRTC_REGS; r++) (void)crtc_read(t, r);
    crtc_write(t, 0x0E, 0x01);
    crtc_write(t, 0x0F, 0x2C); /* 300 = row 3, col 60 */
    assert_int_equal(crtc_read(t, 0x0E), 0x01);
    assert_int_equal(crtc_read(t, 0x0F), 0x2C);
    assert_int_equal(vga_cursor_location(t->m.vga), 300);
    struct vga_cursor c;
    vga_cursor(t->m.vga, &c);
    assert_true(c.visible);
    assert_int_equal(c.row, 3);
    assert_int_equal(c.col, 60);
    assert_int_equal(c.start_line, 0x0D);
    assert_int_equal(c.end_line, 0x0E);
    crtc_write(t, 0x0C, 0x00);
    crtc_write(t, 0x0D, 80); /* scrolled by one row */
    assert_int_equal(vga_start_address(t->m.vga), 80);
    vga_cursor(t->m.vga, &c);
    assert_int_equal(c.row, 2);
    crtc_write(t, 0x0A, 0x20); /* cursor off */
    vga_cursor(t->m.vga, &c);
    assert_false(c.visible);
    /* Timing registers 0-7 are write-protected by CRTC 0x11 bit 7. */
    crtc_write(t, 0x01, 0x27);
    assert_int_equal(crtc_read(t, 0x01), 0x4F);
    crtc_write(t, 0x11, 0x0E);
    crtc_write(t, 0x01, 0x27);
    assert_int_equal(crtc_read(t, 0x01), 0x27);
    vga_text_geometry(t->m.vga, &cols, &rows);
    assert_int_equal(cols, 40);
}

static void test_dirty_tracking(void **state)
{
    struct device_test_machine *t = *state;
    static uint8_t dirty[VGA_TEXT_MAX_ROWS][VGA_DIRTY_ROW_BYTES];
    crtc_write(t, 0x0A, 0x20); /* cursor hidden for the first part */
    assert_int_equal(vga_text_collect_dirty(t->m.vga, dirty), 80 * 25); /* first look: everything */
    assert_int_equal(vga_text_collect_dirty(t->m.vga, dirty), 0);
    guest_text_write(t, 0, 'x', 0x07);
    guest_text_write(t, 24 * 80 + 79, 'y', 0x07);
    assert_int_equal(vga_text_collect_dirty(t->m.vga, dirty), 2);
    assert_int_equal(dirty_count(dirty, 0, 0), 1);
    assert_int_equal(dirty_count(dirty, 24, 79), 1);
    assert_int_equal(dirty_count(dirty, 0, 1), 0);
    /* An attribute-only change counts; rewriting the same cell does not. */
    guest_text_write(t, 5, ' ', 0x70);
    guest_text_write(t, 0, 'x', 0x07);
    assert_int_equal(vga_text_collect_dirty(t->m.vga, dirty), 1);
    assert_int_equal(dirty_count(dirty, 0, 5), 1);
    /* Writes outside the visible window are not screen changes. */
    guest_text_write(t, 80 * 25 + 3, 'z', 0x07);
    assert_int_equal(vga_text_collect_dirty(t->m.vga, dirty), 0);
    /* Cursor shown at (1,2), then moved to (1,3): old and new cells. */
    crtc_write(t, 0x0A, 0x0D);
    crtc_write(t, 0x0E, 0);
    crtc_write(t, 0x0F, 82);
    assert_int_equal(vga_text_collect_dirty(t->m.vga, dirty), 1);
    assert_int_equal(dirty_count(dirty, 1, 2), 1);
    crtc_write(t, 0x0F, 83);
    assert_int_equal(vga_text_collect_dirty(t->m.vga, dirty), 2);
    assert_int_equal(dirty_count(dirty, 1, 2), 1);
    assert_int_equal(dirty_count(dirty, 1, 3), 1);
    /* Hardware scrolling (start address) repaints all. */
    crtc_write(t, 0x0D, 80);
    assert_int_equal(vga_text_collect_dirty(t->m.vga, dirty), 80 * 25);
    assert_int_equal(vga_text_buffer(t->m.vga)[2 * (80 * 25 + 3)], 'z'); /* now on the last row */
}

static void test_dac_and_attribute_palette(void **state)
{
    struct device_test_machine *t = *state;
    uint8_t rgb[3];
    vga_text_color_rgb(t->m.vga, 1, rgb); /* blue */
    assert_int_equal(rgb[0], 0);
    assert_int_equal(rgb[1], 0);
    assert_int_equal(rgb[2], 170);
    vga_text_color_rgb(t->m.vga, 6, rgb); /* brown via palette entry 0x14 */
    assert_int_equal(rgb[0], 170);
    assert_int_equal(rgb[1], 85);
    assert_int_equal(rgb[2], 0);
    vga_text_color_rgb(t->m.vga, 15, rgb);
    assert_int_equal(rgb[0], 255);
    /* Program DAC entry 1 and read it back through 0x3C7/0x3C9. */
    dtm_outb(t, 0x3C8, 1);
    dtm_outb(t, 0x3C9, 63);
    dtm_outb(t, 0x3C9, 0);
    dtm_outb(t, 0x3C9, 32);
    assert_int_equal(dtm_inb(t, 0x3C8), 2); /* auto-increment */
    dtm_outb(t, 0x3C7, 1);
    assert_int_equal(dtm_inb(t, 0x3C7), 3);
    assert_int_equal(dtm_inb(t, 0x3C9), 63);
    assert_int_equal(dtm_inb(t, 0x3C9), 0);
    assert_int_equal(dtm_inb(t, 0x3C9), 32);
    vga_text_color_rgb(t->m.vga, 1, rgb);
    assert_int_equal(rgb[0], 255);
    assert_int_equal(rgb[2], 32 * 255 / 63);
    /* Attribute controller: 0x3DA resets the flip-flop, then index, data. */
    (void)dtm_inb(t, 0x3DA);
    dtm_outb(t, 0x3C0, 0x01);
    dtm_outb(t, 0x3C0, 0x04); /* colour 1 -> DAC 4 (red) */
    dtm_outb(t, 0x3C0, 0x20); /* PAS on */
    assert_int_equal(dtm_inb(t, 0x3C0), 0x20);
    (void)dtm_inb(t, 0x3DA); /* the flip-flop is at "data" after the index write */
    dtm_outb(t, 0x3C0, 0x21);
    assert_int_equal(dtm_inb(t, 0x3C1), 0x04);
    vga_text_color_rgb(t->m.vga, 1, rgb);
    assert_int_equal(rgb[0], 170);
    assert_int_equal(rgb[2], 0);
}

static void test_status_register_toggles(void **state)
{
    struct device_test_machine *t = *state;
    /* Polling loops waiting for retrace to start and to end both finish. */
    unsigned n = 0;
    while (!(dtm_inb(t, 0x3DA) & 0x08)) assert_true(++n < 10);
    n = 0;
    while (dtm_inb(t, 0x3DA) & 0x08) assert_true(++n < 10);
    n = 0;
    while (!(dtm_inb(t, 0x3DA) & 0x01)) assert_true(++n < 10);
}

static void test_misc_sequencer_graphics_registers(void **state)
{
    struct device_test_machine *t = *state;
    assert_int_equal(dtm_inb(t, 0x3CC), 0x67);
    dtm_outb(t, 0x3C2, 0x63);
    assert_int_equal(dtm_inb(t, 0x3CC), 0x63);
    dtm_outb(t, 0x3C4, 0x02);
    assert_int_equal(dtm_inb(t, 0x3C5), 0x03);
    dtm_outb(t, 0x3C5, 0x04);
    assert_int_equal(dtm_inb(t, 0x3C5), 0x04);
    dtm_outb(t, 0x3CE, 0x06);
    assert_int_equal(dtm_inb(t, 0x3CF), 0x0E);
    dtm_out(t, 0x3CE, 0x0506, 2);
    assert_int_equal(dtm_inb(t, 0x3CF), 0x05);
}

static void test_snapshot_round_trip(void **state)
{
    struct device_test_machine *t = *state;
    crtc_write(t, 0x0E, 0x01);
    crtc_write(t, 0x0F, 0x2C);
    crtc_write(t, 0x0D, 80);
    dtm_outb(t, 0x3C8, 1);
    dtm_outb(t, 0x3C9, 63);
    dtm_outb(t, 0x3C9, 0);
    dtm_outb(t, 0x3C9, 0);
    struct device_test_machine *u = malloc(sizeof(*u));
    assert_non_null(u);
    dtm_setup(u, 1 << 20, &dtm_backend, &vga_device);
    static uint8_t dirty[VGA_TEXT_MAX_ROWS][VGA_DIRTY_ROW_BYTES];
    (void)vga_text_collect_dirty(u->m.vga, dirty);
    dtm_snapshot_copy(t, u, &vga_device);
    assert_int_equal(vga_cursor_location(u->m.vga), 300);
    assert_int_equal(vga_start_address(u->m.vga), 80);
    uint8_t rgb[3];
    vga_text_color_rgb(u->m.vga, 1, rgb);
    assert_int_equal(rgb[0], 255);
    assert_int_equal(vga_text_collect_dirty(u->m.vga, dirty), 80 * 25); /* the reader repaints */
    dtm_teardown(u, &vga_device);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_text_memory_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crtc_cursor_and_start_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_tracking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dac_and_attribute_palette, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_register_toggles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_misc_sequencer_graphics_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_round_trip, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
