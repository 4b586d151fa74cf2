/* vm_options: applying the VM options `vmctl run` and `vmctl create` share (see vm_options.h). */
#include "cli/vm_options.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read at most max + 1 bytes of path into a malloc'd, NUL-terminated buffer (so that a file
 * over max is seen to be). 0 or -errno. */
static int read_text(const char *path, size_t max, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char *buf = malloc(max + 2);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t n = 0;
    while (n < max + 1) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = -errno;
            free(buf);
            close(fd);
            return e;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static int cloud_init_file(char **field, const char *opt, const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    int r = read_text(path, VM_CLOUD_INIT_MAX_BYTES, &text, &len);
    if (r) {
        snprintf(err, errlen, "--%s '%s': %s", opt, path, strerror(-r));
        return r;
    }
    char what[4200];
    snprintf(what, sizeof(what), "--%s '%s'", opt, path);
    if (len > VM_CLOUD_INIT_MAX_BYTES) {
        snprintf(err, errlen, "%s: larger than the %u bytes allowed", what, (unsigned)VM_CLOUD_INIT_MAX_BYTES);
        free(text);
        return -EINVAL;
    }
    json_t *utf8 = memchr(text, 0, len) ? NULL : json_stringn(text, len); /* jansson refuses bad UTF-8 */
    if (!utf8 && !memchr(text, 0, len)) {
        snprintf(err, errlen, "%s: not UTF-8 text (vmd takes cloud-init data as text; compressed user-data is not supported)", what);
        r = -EINVAL;
    } else {
        r = vm_cloud_init_set(field, what, text, len, err, errlen);
    }
    json_decref(utf8);
    free(text);
    return r;
}

int vm_option_apply(struct vm_config *cfg, const char *name, const char *value, char *err, size_t errlen)
{
    if (!strcmp(name, "cloud-init")) return cloud_init_file(&cfg->cloud_init.user_data, name, value, err, errlen);
    if (!strcmp(name, "cloud-init-meta")) return cloud_init_file(&cfg->cloud_init.meta_data, name, value, err, errlen);
    if (!strcmp(name, "cloud-init-network"))
        return cloud_init_file(&cfg->cloud_init.network_config, name, value, err, errlen);
    return vm_config_set(cfg, name, value, err, errlen);
}
