/* font: PSF1/PSF2 parsing and the CP437 mapping. */
#include "vnc/font.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vmm/host_files.h"

static const uint16_t cp437[256] = {
    0x0000, 0x263a, 0x263b, 0x2665, 0x2666, 0x2663, 0x2660, 0x2022,
    0x25d8, 0x25cb, 0x25d9, 0x2642, 0x2640, 0x266a, 0x266b, 0x263c,
    0x25ba, 0x25c4, 0x2195, 0x203c, 0x00b6, 0x00a7, 0x25ac, 0x21a8,
    0x2191, 0x2193, 0x2192, 0x2190, 0x221f, 0x2194, 0x25b2, 0x25bc,
    0x0020, 0x0021, 0x0022, 0x0023, 0x0024, 0x0025, 0x0026, 0x0027,
    0x0028, 0x0029, 0x002a, 0x002b, 0x002c, 0x002d, 0x002e, 0x002f,
    0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x0035, 0x0036, 0x0037,
    0x0038, 0x0039, 0x003a, 0x003b, 0x003c, 0x003d, 0x003e, 0x003f,
    0x0040, 0x0041, 0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047,
    0x0048, 0x0049, 0x004a, 0x004b, 0x004c, 0x004d, 0x004e, 0x004f,
    0x0050, 0x0051, 0x0052, 0x0053, 0x0054, 0x0055, 0x0056, 0x0057,
    0x0058, 0x0059, 0x005a, 0x005b, 0x005c, 0x005d, 0x005e, 0x005f,
    0x0060, 0x0061, 0x0062, 0x0063, 0x0064, 0x0065, 0x0066, 0x0067,
    0x0068, 0x0069, 0x006a, 0x006b, 0x006c, 0x006d, 0x006e, 0x006f,
    0x0070, 0x0071, 0x0072, 0x0073, 0x0074, 0x0075, 0x0076, 0x0077,
    0x0078, 0x0079, 0x007a, 0x007b, 0x007c, 0x007d, 0x007e, 0x2302,
    0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7,
    0x00ea, 0x00eb, 0x00e8, 0x00ef, 0x00ee, 0x00ec, 0x00c4, 0x00c5,
    0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9,
    0x00ff, 0x00d6, 0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192,
    0x00e1, 0x00ed, 0x00f3, 0x00fa, 0x00f1, 0x00d1, 0x00aa, 0x00ba,
    0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb,
    0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556,
    0x2555, 0x2563, 0x2551, 0x2557, 0x255d, 0x255c, 0x255b, 0x2510,
    0x2514, 0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f,
    0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256c, 0x2567,
    0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256b,
    0x256a, 0x2518, 0x250c, 0x2588, 0x2584, 0x258c, 0x2590, 0x2580,
    0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4,
    0x03a6, 0x0398, 0x03a9, 0x03b4, 0x221e, 0x03c6, 0x03b5, 0x2229,
    0x2261, 0x00b1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00f7, 0x2248,
    0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0,
};

uint16_t cp437_to_unicode(uint8_t c) { return cp437[c]; }

#define PSF1_MAGIC0 0x36
#define PSF1_MAGIC1 0x04
#define PSF1_MODE512 0x01
#define PSF1_MODEHASTAB 0x02
#define PSF1_SEPARATOR 0xFFFF
#define PSF1_STARTSEQ 0xFFFE
#define PSF2_MAGIC 0x864ab572u
#define PSF2_HAS_UNICODE_TABLE 0x01

/* Read a whole (possibly gzip-compressed) file; at most 4 MiB. */
static uint8_t *slurp(const char *path, size_t *len)
{
    int fd = host_files_open(path, O_RDONLY | O_CLOEXEC, 0); /* sandboxed: opened before the drop */
    gzFile gz = fd >= 0 ? gzdopen(fd, "rb") : NULL;
    if (!gz) {
        if (fd >= 0) close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= (4u << 20)) break;
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        int r = gzread(gz, buf + n, (unsigned)(cap - n));
        if (r <= 0) break;
        n += (size_t)r;
    }
    gzclose(gz);
    *len = n;
    return buf;
}

/* Decode one UTF-8 code point from [*p, end); returns -1 at a 0xFF terminator or on error. */
static int utf8_next(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *s = *p;
    if (s >= end) return -1;
    uint8_t c = *s;
    int cp, extra;
    if (c == 0xFF) return -1;
    if (c < 0x80) cp = c, extra = 0;
    else if ((c & 0xE0) == 0xC0) cp = c & 0x1F, extra = 1;
    else if ((c & 0xF0) == 0xE0) cp = c & 0x0F, extra = 2;
    else if ((c & 0xF8) == 0xF0) cp = c & 0x07, extra = 3;
    else return -2;
    if (end - s < 1 + extra) return -1;
    for (int i = 1; i <= extra; i++) cp = (cp << 6) | (s[i] & 0x3F);
    *p = s + 1 + extra;
    return cp;
}

int font_load(struct vga_font *f, const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    uint8_t *data = slurp(path, &len);
    if (!data) {
        snprintf(err, errlen, "font '%s': %s", path, strerror(errno ? errno : EIO));
        return -EIO;
    }
    unsigned nglyphs = 0, charsize = 0, hdr = 0;
    bool has_table = false, psf2 = false;
    if (len >= 4 && data[0] == PSF1_MAGIC0 && data[1] == PSF1_MAGIC1) {
        nglyphs = (data[2] & PSF1_MODE512) ? 512 : 256;
        has_table = data[2] & (PSF1_MODEHASTAB | 0x04);
        charsize = data[3];
        hdr = 4;
    } else if (len >= 32 && (data[0] | data[1] << 8 | data[2] << 16 | (uint32_t)data[3] << 24) == PSF2_MAGIC) {
        uint32_t h[8];
        memcpy(h, data, sizeof(h));
        hdr = h[2];
        has_table = h[3] & PSF2_HAS_UNICODE_TABLE;
        nglyphs = h[4];
        charsize = h[5];
        if (h[7] != FONT_WIDTH) charsize = 0; /* only 8-pixel-wide fonts */
        psf2 = true;
    }
    if (charsize != FONT_HEIGHT || nglyphs == 0 || nglyphs > 4096 || hdr > len ||
        (size_t)nglyphs * charsize > len - hdr) {
        snprintf(err, errlen, "font '%s': not an 8x16 PSF font", path);
        free(data);
        return -EINVAL;
    }
    const uint8_t *glyphs = data + hdr;
    /* glyph index of each CP437 character, from the Unicode table (or identity without one) */
    int index[256];
    for (int c = 0; c < 256; c++) index[c] = has_table ? -1 : c;
    if (has_table) {
        const uint8_t *p = glyphs + (size_t)nglyphs * charsize, *end = data + len;
        for (unsigned g = 0; g < nglyphs && p < end; g++) {
            if (psf2) {
                for (;;) {
                    if (p >= end) break;
                    if (*p == 0xFF) { p++; break; }
                    if (*p == 0xFE) { p++; continue; } /* sequences: skip their members too */
                    int cp = utf8_next(&p, end);
                    if (cp < 0) { p++; continue; }
                    for (int c = 0; c < 256; c++)
                        if (index[c] < 0 && cp437[c] == cp) index[c] = (int)g;
                }
            } else {
                while (p + 2 <= end) {
                    uint16_t u = (uint16_t)(p[0] | p[1] << 8);
                    p += 2;
                    if (u == PSF1_SEPARATOR) break;
                    if (u == PSF1_STARTSEQ) continue;
                    for (int c = 0; c < 256; c++)
                        if (index[c] < 0 && cp437[c] == u) index[c] = (int)g;
                }
            }
        }
    }
    for (int c = 0; c < 256; c++) {
        if (index[c] >= 0 && (unsigned)index[c] < nglyphs) {
            memcpy(f->glyph[c], glyphs + (size_t)index[c] * charsize, FONT_HEIGHT);
        } else if (c == 0 || c == 0x20) {
            memset(f->glyph[c], 0, FONT_HEIGHT);
        } else { /* a hollow box for characters the font lacks */
            memset(f->glyph[c], 0, FONT_HEIGHT);
            f->glyph[c][2] = f->glyph[c][13] = 0x7E;
            for (int y = 3; y < 13; y++) f->glyph[c][y] = 0x42;
        }
    }
    free(data);
    return 0;
}
