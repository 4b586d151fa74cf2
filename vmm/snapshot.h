/* snapshot: vmd's snapshot file format, and the save/restore of a machine into it.
 *
 * A snapshot file is a header followed by named sections, each with its own version, length
 * and CRC-32:
 *
 *   header   "VMDSNAP\0" | u32 format version | u32 section count | u64 creation time (unix s)
 *            | char backend[8] | u32 CRC-32 of the preceding header bytes
 *   section  char name[24] | u32 section version | u32 flags | u64 payload length
 *            | u32 CRC-32 of the payload | u32 reserved | payload
 *
 * All integers little-endian. Sections: "config" (the VM's JSON definition, informational),
 * "cpu.N" (struct cpu_state of vCPU N), "ram" (sparse: a bitmap of non-zero 4 KiB pages, then
 * those pages), and one "dev.<name>" per device that keeps state. Restoring verifies every
 * section's CRC and version before changing anything, so a truncated, corrupted or
 * incompatible file is refused with an error naming the section, and the VM stays as it was.
 */
#ifndef VMD_SNAPSHOT_H
#define VMD_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SNAP_MAGIC "VMDSNAP"
#define SNAP_FORMAT_VERSION 1
#define SNAP_NAME_LEN 24

struct machine;

/* A growable byte buffer that a device serializes its state into. */
struct snap_buf {
    uint8_t *data;
    size_t len, cap;
    bool failed; /* allocation failure: the save fails */
};

void snap_buf_init(struct snap_buf *b);
void snap_buf_free(struct snap_buf *b);
void snap_put(struct snap_buf *b, const void *p, size_t n);
static inline void snap_put_u8(struct snap_buf *b, uint8_t v) { snap_put(b, &v, 1); }
static inline void snap_put_u16(struct snap_buf *b, uint16_t v) { snap_put(b, &v, 2); }
static inline void snap_put_u32(struct snap_buf *b, uint32_t v) { snap_put(b, &v, 4); }
static inline void snap_put_u64(struct snap_buf *b, uint64_t v) { snap_put(b, &v, 8); }

struct snap_file;

/* A cursor over a section's payload for restore. Reads past the end set `short_read`.
 * `file` is the whole snapshot being restored (NULL when a test restores a bare payload):
 * a device whose state depends on other sections (the vCPUs') reads them from it. */
struct snap_reader {
    const uint8_t *data;
    size_t len, pos;
    bool short_read;
    struct snap_file *file;
};

void snap_get(struct snap_reader *r, void *p, size_t n);
uint8_t snap_get_u8(struct snap_reader *r);
uint16_t snap_get_u16(struct snap_reader *r);
uint32_t snap_get_u32(struct snap_reader *r);
uint64_t snap_get_u64(struct snap_reader *r);

/* Progress callback: `done` of `total` bytes of RAM processed. */
typedef void (*snap_progress_fn)(void *opaque, uint64_t done, uint64_t total);

/* ---- file level ---- */

struct snap_writer {
    FILE *f;
    uint32_t nsections;
    long count_offset;
};

int snap_writer_open(struct snap_writer *w, const char *path, const char *backend, char *err, size_t errlen);
int snap_write_section(struct snap_writer *w, const char *name, uint32_t version, const void *payload, uint64_t len);
/* Sections whose payload is produced piecewise (RAM): begin, then write, then end (patches length and CRC). */
int snap_section_begin(struct snap_writer *w, const char *name, uint32_t version, long *hdr_offset);
int snap_section_write(struct snap_writer *w, const void *p, size_t n, uint32_t *crc);
int snap_section_end(struct snap_writer *w, long hdr_offset, uint64_t len, uint32_t crc);
int snap_writer_close(struct snap_writer *w, char *err, size_t errlen);

struct snap_section_info {
    char name[SNAP_NAME_LEN + 1];
    uint32_t version;
    uint64_t length;
    long payload_offset;
};

struct snap_file {
    FILE *f;
    char backend[9];
    uint64_t created;
    unsigned nsections;
    struct snap_section_info *sections;
};

/* Open and verify a snapshot: header, every section's bounds and CRC. On any problem returns
 * -EINVAL (or -errno) with an error naming the file and the section. */
int snap_file_open(struct snap_file *sf, const char *path, char *err, size_t errlen);
void snap_file_close(struct snap_file *sf);
const struct snap_section_info *snap_file_find(const struct snap_file *sf, const char *name);
/* Read a whole (verified) section into a malloc'd buffer. */
int snap_file_read(struct snap_file *sf, const struct snap_section_info *s, uint8_t **out);

/* vCPU i's state (section "cpu.i", version 1 or 2; fields a version lacks are 0). 0, or -EINVAL
 * with the reason in err. */
struct cpu_state;
int snap_file_cpu_state(struct snap_file *sf, unsigned i, struct cpu_state *out, char *err, size_t errlen);

/* Whether a machine of `backend` ("kvm", "emu") can restore snapshot sf: either backend takes
 * the other's snapshots (docs/snapshots.md, "Cross-backend"). 0, or -ENOTSUP with the reason in
 * err for a backend this vmd does not know. Whether the guest needs the APIC platform:
 * irqchip_snapshot_uses_apic (vmm/irqchip.h). */
int snapshot_check_backend(struct snap_file *sf, const char *backend, char *err, size_t errlen);

/* ---- machine level ---- */

/* Save the paused machine m (vCPUs not running) to path, atomically (temp file + rename). */
int snapshot_save(struct machine *m, const char *path, snap_progress_fn progress, void *opaque, char *err, size_t errlen);
/* Restore m (paused, same RAM size and vCPU count) from path. Nothing changes unless the whole
 * file verifies and fits this machine. */
int snapshot_restore(struct machine *m, const char *path, snap_progress_fn progress, void *opaque, char *err,
                     size_t errlen);

#endif
