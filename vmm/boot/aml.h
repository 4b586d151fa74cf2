/* aml: a tiny ACPI Machine Language emitter for the few DSDT objects vmd needs
 * (Name, Scope, Device, Package, Buffer, integers). ACPI 6.x chapter 20.
 * Writes into a caller-supplied buffer; overflow is sticky and reported at the end. */
#ifndef VMD_BOOT_AML_H
#define VMD_BOOT_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct aml {
    uint8_t *buf;
    size_t len, cap;
    bool overflow;
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);
/* Integer with the shortest encoding (ZeroOp, OneOp, Byte/Word/DWord/QWordPrefix). */
void aml_int(struct aml *a, uint64_t v);
/* A 4-character NameSeg, or a rooted path like "\\_SB_" (NameSegs only, no dual/multi). */
void aml_name(struct aml *a, const char *name);
/* A String (StringPrefix, the ASCII characters, NUL), e.g. a _HID like "QEMU0001". */
void aml_string(struct aml *a, const char *s);

/* Open a PkgLength-prefixed construct after its opcode has been emitted; returns a
 * token for aml_pkg_end, which back-fills the length. */
size_t aml_pkg_begin(struct aml *a);
void aml_pkg_end(struct aml *a, size_t token);

/* Convenience openers; each needs a matching aml_pkg_end (Package/Buffer count their own). */
size_t aml_scope(struct aml *a, const char *name);
size_t aml_device(struct aml *a, const char *name);
size_t aml_package(struct aml *a, uint8_t num_elements);
size_t aml_buffer(struct aml *a, size_t size); /* the content bytes follow via aml_bytes */
void aml_name_decl(struct aml *a, const char *name); /* NameOp + name; the value follows */

/* Encoded length of a PkgLength for `content` bytes of payload (1-4), or 0 if too large. */
unsigned aml_pkglen_size(size_t content);

#endif
