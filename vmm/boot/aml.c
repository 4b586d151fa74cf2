/* aml: minimal AML byte-code emitter (ACPI 6.x section 20.2). */
#include "vmm/boot/aml.h"

#include <string.h>

#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME 0x08
#define AML_BYTE 0x0A
#define AML_WORD 0x0B
#define AML_DWORD 0x0C
#define AML_QWORD 0x0E
#define AML_SCOPE 0x10
#define AML_BUFFER 0x11
#define AML_PACKAGE 0x12
#define AML_EXT 0x5B
#define AML_EXT_DEVICE 0x82
#define AML_ROOT '\\'

#define PKG_RESERVE 4 /* bytes reserved for a PkgLength until its size is known */

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
    a->buf = buf;
    a->len = 0;
    a->cap = cap;
    a->overflow = false;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
    if (a->overflow || n > a->cap - a->len) {
        a->overflow = true;
        return;
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
    aml_bytes(a, &b, 1);
}

static void put_le(struct aml *a, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) aml_byte(a, (uint8_t)(v >> (8 * i)));
}

void aml_int(struct aml *a, uint64_t v)
{
    if (v == 0) {
        aml_byte(a, AML_ZERO);
    } else if (v == 1) {
        aml_byte(a, AML_ONE);
    } else if (v <= 0xFF) {
        aml_byte(a, AML_BYTE);
        put_le(a, v, 1);
    } else if (v <= 0xFFFF) {
        aml_byte(a, AML_WORD);
        put_le(a, v, 2);
    } else if (v <= 0xFFFFFFFFULL) {
        aml_byte(a, AML_DWORD);
        put_le(a, v, 4);
    } else {
        aml_byte(a, AML_QWORD);
        put_le(a, v, 8);
    }
}

void aml_string(struct aml *a, const char *s)
{
    aml_byte(a, 0x0D); /* StringPrefix */
    aml_bytes(a, s, strlen(s) + 1);
}

void aml_name(struct aml *a, const char *name)
{
    if (*name == AML_ROOT) {
        aml_byte(a, AML_ROOT);
        name++;
    }
    char seg[4] = {'_', '_', '_', '_'};
    size_t n = strlen(name);
    memcpy(seg, name, n < 4 ? n : 4);
    aml_bytes(a, seg, 4);
}

unsigned aml_pkglen_size(size_t content)
{
    if (content + 1 < 0x40) return 1;
    if (content + 2 < 0x1000) return 2;
    if (content + 3 < 0x100000) return 3;
    if (content + 4 < 0x10000000) return 4;
    return 0;
}

size_t aml_pkg_begin(struct aml *a)
{
    size_t token = a->len;
    static const uint8_t zeros[PKG_RESERVE] = {0};
    aml_bytes(a, zeros, PKG_RESERVE);
    return token;
}

void aml_pkg_end(struct aml *a, size_t token)
{
    if (a->overflow) return;
    size_t content = a->len - token - PKG_RESERVE;
    unsigned n = aml_pkglen_size(content);
    if (n == 0) {
        a->overflow = true;
        return;
    }
    size_t total = content + n;
    uint8_t *p = a->buf + token;
    memmove(p + n, p + PKG_RESERVE, content);
    a->len = token + n + content;
    if (n == 1) {
        p[0] = (uint8_t)total;
        return;
    }
    p[0] = (uint8_t)(((n - 1) << 6) | (total & 0xF));
    for (unsigned i = 1; i < n; i++) p[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
}

size_t aml_scope(struct aml *a, const char *name)
{
    aml_byte(a, AML_SCOPE);
    size_t t = aml_pkg_begin(a);
    aml_name(a, name);
    return t;
}

size_t aml_device(struct aml *a, const char *name)
{
    aml_byte(a, AML_EXT);
    aml_byte(a, AML_EXT_DEVICE);
    size_t t = aml_pkg_begin(a);
    aml_name(a, name);
    return t;
}

size_t aml_package(struct aml *a, uint8_t num_elements)
{
    aml_byte(a, AML_PACKAGE);
    size_t t = aml_pkg_begin(a);
    aml_byte(a, num_elements);
    return t;
}

size_t aml_buffer(struct aml *a, size_t size)
{
    aml_byte(a, AML_BUFFER);
    size_t t = aml_pkg_begin(a);
    aml_int(a, size);
    return t;
}

void aml_name_decl(struct aml *a, const char *name)
{
    aml_byte(a, AML_NAME);
    aml_name(a, name);
}
