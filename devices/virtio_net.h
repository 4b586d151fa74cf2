/* virtio_net: virtio network device with a slirp or tap backend (see virtio_net.c). */
#ifndef VMD_DEVICES_VIRTIO_NET_H
#define VMD_DEVICES_VIRTIO_NET_H

#include <stddef.h>

struct machine;
struct vm_net;

/* Create NIC number `index` on the machine's PCI bus (the registry does this for every --net;
 * public for tests). 0, or -errno with a user-facing message in err. */
int virtio_net_create(struct machine *m, const struct vm_net *spec, unsigned index, char *err, size_t errlen);

#endif
