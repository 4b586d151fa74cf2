/* host_files: fds opened before the privilege drop, by path (see host_files.h). */
#include "vmm/host_files.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HOST_FILES_MAX 64

/* One table per process, because a process is one VM and what it opened before dropping its
 * privileges is a property of the process (filled on the main thread before any vCPU thread
 * exists; the lock covers later lookups from device threads). */
static struct {
    pthread_mutex_t lock;
    unsigned n;
    struct host_file {
        char *key;
        int fd;
    } files[HOST_FILES_MAX];
} T = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct host_file *find(const char *key)
{
    for (unsigned i = 0; i < T.n; i++)
        if (!strcmp(T.files[i].key, key)) return &T.files[i];
    return NULL;
}

int host_files_add(const char *key, int fd)
{
    pthread_mutex_lock(&T.lock);
    struct host_file *f = find(key);
    int r = 0;
    if (f) {
        close(f->fd);
        f->fd = fd;
    } else if (T.n == HOST_FILES_MAX) {
        r = -ENOSPC;
    } else if (!(T.files[T.n].key = strdup(key))) {
        r = -ENOMEM;
    } else {
        T.files[T.n++].fd = fd;
    }
    pthread_mutex_unlock(&T.lock);
    if (r) close(fd);
    return r;
}

int host_files_preopen(const char *path, int flags)
{
    pthread_mutex_lock(&T.lock);
    bool have = find(path) != NULL;
    pthread_mutex_unlock(&T.lock);
    if (have) return 0;
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) return -errno;
    return host_files_add(path, fd);
}

static bool covers(int have, int want)
{
    int h = have & O_ACCMODE, w = want & O_ACCMODE;
    return h == O_RDWR || h == w;
}

static int dup_entry(struct host_file *f, int flags)
{
    if (flags >= 0 && !covers(fcntl(f->fd, F_GETFL), flags)) {
        errno = EACCES;
        return -1;
    }
    int fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
    if (fd >= 0) lseek(fd, 0, SEEK_SET); /* a duplicate shares the offset: start where open would */
    return fd;
}

int host_files_open(const char *path, int flags, mode_t mode)
{
    pthread_mutex_lock(&T.lock);
    struct host_file *f = find(path);
    int fd = f ? dup_entry(f, flags) : -2;
    int e = errno;
    pthread_mutex_unlock(&T.lock);
    if (fd != -2) {
        errno = e;
        return fd;
    }
    return open(path, flags, mode);
}

int host_files_dup(const char *key)
{
    pthread_mutex_lock(&T.lock);
    struct host_file *f = find(key);
    int fd = f ? dup_entry(f, -1) : -1;
    int e = f ? errno : ENOENT;
    pthread_mutex_unlock(&T.lock);
    errno = e;
    return fd;
}

void host_files_clear(void)
{
    pthread_mutex_lock(&T.lock);
    for (unsigned i = 0; i < T.n; i++) {
        close(T.files[i].fd);
        free(T.files[i].key);
    }
    T.n = 0;
    pthread_mutex_unlock(&T.lock);
}
