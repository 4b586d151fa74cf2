/* linux: PLACEHOLDER until the direct-boot loader lands. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/boot/boot.h"

int boot_linux_load(struct machine *m, char *err, size_t errlen)
{
    (void)m;
    snprintf(err, errlen, "direct Linux boot is not built yet");
    return -ENOSYS;
}

void boot_cpu_state(const struct machine *m, unsigned index, struct cpu_state *s)
{
    (void)m;
    (void)index;
    memset(s, 0, sizeof(*s));
}
