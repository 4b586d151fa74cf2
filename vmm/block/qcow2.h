/* qcow2: the qcow2 format driver (versions 2 and 3) and image creation; see qcow2.c and
 * docs/devices.md "qcow2 disks". */
#ifndef VMD_VMM_BLOCK_QCOW2_H
#define VMD_VMM_BLOCK_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/block/block.h"

#define QCOW2_DEFAULT_CLUSTER_BITS 16

bool qcow2_magic_ok(const uint8_t magic[4]);

/* The backing files under an open qcow2 image, top first (see block_backing_chain). */
int qcow2_chain_paths(struct block *b, char ***paths, unsigned *n);

struct qcow2_create_opts {
    uint64_t size;           /* guest bytes; 0 with a backing file: the backing file's size */
    const char *backing;     /* stored as given; relative names are relative to the new image's directory */
    unsigned cluster_bits;   /* 0: QCOW2_DEFAULT_CLUSTER_BITS (64 KiB) */
};

/* Make a new version 3 image at `path` (refused if the file exists). A backing file is opened
 * (its chain checked) and its format recorded in the header, so it is never probed again. */
int qcow2_create(const char *path, const struct qcow2_create_opts *o, char *err, size_t errlen);

#endif
