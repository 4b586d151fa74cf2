/* image_parse: what the kernel-image parsers (bzimage.c, multiboot.c) share: little-endian
 * fields of an untrusted header, and the refusal that says why. */
#ifndef VMD_BOOT_IMAGE_PARSE_H
#define VMD_BOOT_IMAGE_PARSE_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

static inline uint16_t img_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static inline uint32_t img_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Format the reason into why and return -ENOEXEC (not a loadable image). */
static inline __attribute__((format(printf, 3, 4))) int img_reject(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -ENOEXEC;
}

#endif
