/* fuzz_seccomp_violation: libFuzzer target for what vmd (root) reads back from a sandboxed
 * worker's directory after the worker died of SIGSYS: STATE_DIR/vms/NAME/seccomp-violation,
 * written by a process that may be compromised, turned into the crash reason by
 * seccomp_violation_describe (vmm/seccomp_filter.c). Any bytes must give a bounded,
 * NUL-terminated reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/seccomp_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 127) size = 127; /* vmd reads at most 127 bytes of the file */
    char text[128];
    memcpy(text, data, size);
    text[size] = 0;
    char out[160];
    memset(out, 'x', sizeof(out));
    seccomp_violation_describe(text, out, sizeof(out));
    if (!memchr(out, 0, sizeof(out))) abort();
    char tiny[8];
    seccomp_violation_describe(text, tiny, sizeof(tiny));
    if (!memchr(tiny, 0, sizeof(tiny))) abort();
    return 0;
}
