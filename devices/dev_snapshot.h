/* dev_snapshot: small helpers shared by the legacy devices' snapshot hooks (see
 * vmm/snapshot.h): a bool codec and the "state invalid" message every restore reports. */
#ifndef VMD_DEVICES_DEV_SNAPSHOT_H
#define VMD_DEVICES_DEV_SNAPSHOT_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "vmm/snapshot.h"

static inline void snap_put_bool(struct snap_buf *b, bool v) { snap_put_u8(b, v ? 1 : 0); }

/* Reads a 0/1 byte; anything else marks the reader as bad (reported as invalid state). */
static inline bool snap_get_bool(struct snap_reader *r, bool *bad)
{
    uint8_t v = snap_get_u8(r);
    if (v > 1) *bad = true;
    return v == 1;
}

/* The common refusal: names the device and what was wrong. */
static inline int dev_snapshot_invalid(const char *dev, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "snapshot: %s state is invalid (%s)", dev, what);
    return -EINVAL;
}

#endif
