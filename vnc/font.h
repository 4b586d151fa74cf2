/* font: the 8x16 glyphs that render the VGA text console, loaded from a Debian console font
 * (PSF, from the console-setup-linux package) and indexed by code page 437, the VGA's own
 * character set. */
#ifndef VMD_VNC_FONT_H
#define VMD_VNC_FONT_H

#include <stddef.h>
#include <stdint.h>

#define FONT_WIDTH 8
#define FONT_HEIGHT 16
#define VMD_DEFAULT_FONT "/usr/share/consolefonts/Lat15-VGA16.psf.gz"

struct vga_font {
    uint8_t glyph[256][FONT_HEIGHT]; /* by CP437 code; bit 7 is the leftmost pixel */
};

/* Load a PSF1 or PSF2 8x16 font (optionally gzip-compressed) and map it to CP437 through its
 * Unicode table; characters the font lacks render as a box. 0 or -errno with a message. */
int font_load(struct vga_font *f, const char *path, char *err, size_t errlen);

/* The Unicode code point of CP437 character c. */
uint16_t cp437_to_unicode(uint8_t c);

#endif
