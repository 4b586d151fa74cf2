/* virtio_blk: virtio block device on a raw image (see virtio_blk.c). */
#ifndef VMD_DEVICES_VIRTIO_BLK_H
#define VMD_DEVICES_VIRTIO_BLK_H

#include <stddef.h>

struct machine;
struct vm_disk;

/* Create disk number `index` on the machine's PCI bus (the device registry does this for every
 * --disk, and for the cloud-init seed with index VM_SEED_DISK_INDEX; public for tests). 0, or -errno with "disk 'PATH': reason" in err. */
int virtio_blk_create(struct machine *m, const struct vm_disk *disk, unsigned index, char *err, size_t errlen);

#endif
