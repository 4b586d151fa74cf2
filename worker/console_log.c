/* console_log: rotated serial log file plus a bounded queue for live console viewers. */
#include "console_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/log.h"

int console_log_open(struct console_log *l, const char *path, size_t max_bytes)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->lock, NULL);
    l->max = max_bytes ? max_bytes : CONSOLE_LOG_MAX_DEFAULT;
    l->path = strdup(path);
    if (!l->path || asprintf(&l->path_old, "%s.1", path) < 0) return -ENOMEM;
    l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (l->fd < 0) return -errno;
    struct stat st;
    if (fstat(l->fd, &st) == 0) l->size = (size_t)st.st_size;
    return 0;
}

void console_log_close(struct console_log *l)
{
    if (l->fd >= 0) close(l->fd);
    free(l->path);
    free(l->path_old);
    free(l->live);
    pthread_mutex_destroy(&l->lock);
    memset(l, 0, sizeof(*l));
    l->fd = -1;
}

static void rotate(struct console_log *l)
{
    if (rename(l->path, l->path_old) < 0) log_warn("console log '%s': rotate: %s", l->path, strerror(errno));
    int fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_warn("console log '%s': %s", l->path, strerror(errno));
        return;
    }
    close(l->fd);
    l->fd = fd;
    l->size = 0;
}

void console_log_write(struct console_log *l, const uint8_t *buf, size_t len)
{
    bool wake = false;
    pthread_mutex_lock(&l->lock);
    if (l->fd >= 0) {
        if (l->size + len > l->max && l->size > 0) rotate(l);
        ssize_t w = write(l->fd, buf, len);
        if (w > 0) l->size += (size_t)w;
    }
    if (l->watching) {
        if (len > CONSOLE_LIVE_MAX) {
            buf += len - CONSOLE_LIVE_MAX;
            len = CONSOLE_LIVE_MAX;
        }
        if (l->live_len + len > CONSOLE_LIVE_MAX) { /* viewer too slow: drop the oldest bytes */
            size_t drop = l->live_len + len - CONSOLE_LIVE_MAX;
            memmove(l->live, l->live + drop, l->live_len - drop);
            l->live_len -= drop;
        }
        if (!l->live) l->live = malloc(CONSOLE_LIVE_MAX);
        if (l->live) {
            memcpy(l->live + l->live_len, buf, len);
            wake = l->live_len == 0;
            l->live_len += len;
        }
    }
    pthread_mutex_unlock(&l->lock);
    if (wake && l->wake) l->wake(l->wake_opaque);
}

uint8_t *console_log_take_live(struct console_log *l, size_t *len)
{
    pthread_mutex_lock(&l->lock);
    uint8_t *out = NULL;
    if (l->live_len) {
        out = malloc(l->live_len);
        if (out) {
            memcpy(out, l->live, l->live_len);
            *len = l->live_len;
        }
        l->live_len = 0;
    }
    pthread_mutex_unlock(&l->lock);
    return out;
}

void console_log_set_watching(struct console_log *l, int watching)
{
    pthread_mutex_lock(&l->lock);
    l->watching = watching;
    if (!watching) l->live_len = 0;
    pthread_mutex_unlock(&l->lock);
}
