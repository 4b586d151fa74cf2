/* vm_store: state-dir paths, VM state names, atomic JSON files. */
#include "vm_store.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const state_names[VM_STATE_COUNT] = {"defined", "running", "paused", "stopped", "crashed", "broken"};

const char *vm_state_name(enum vm_state s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : "unknown";
}

int vm_state_parse(const char *name, enum vm_state *out)
{
    for (unsigned i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
        if (name && !strcmp(name, state_names[i])) {
            *out = (enum vm_state)i;
            return 0;
        }
    return -EINVAL;
}

int vm_store_path(char *buf, size_t len, const char *state_dir, const char *name, const char *file)
{
    int n = file ? snprintf(buf, len, "%s/vms/%s/%s", state_dir, name, file)
                 : snprintf(buf, len, "%s/vms/%s", state_dir, name);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int vm_store_write_json(const char *path, const json_t *j)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp)) return -ENAMETOOLONG;
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (!text) return -ENOMEM;
    /* definitions name host paths (0600); a VM's directory belongs to its sandboxed worker, so a
     * name it planted (a symlink) is removed, never followed */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int r = 0;
    if (fd < 0) {
        r = -errno;
        free(text);
        return r;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            r = -errno;
            break;
        }
        off += (size_t)w;
    }
    if (!r && write(fd, "\n", 1) != 1) r = -EIO;
    if (!r && fsync(fd) < 0) r = -errno;
    if (close(fd) < 0 && !r) r = -errno;
    free(text);
    if (!r && rename(tmp, path) < 0) r = -errno;
    if (r) {
        unlink(tmp);
        return r;
    }
    vm_store_sync_dir_of(path);
    return 0;
}

void vm_store_sync_dir_of(const char *path)
{
    char dir[4096];
    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) return;
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

int vm_store_open_regular(const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        return S_ISREG(st.st_mode) ? -e : -EINVAL;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

json_t *vm_store_read_json(const char *path)
{
    int fd = vm_store_open_regular(path);
    if (fd < 0) return NULL;
    json_t *j = json_loadfd(fd, 0, NULL);
    close(fd);
    return j;
}

int vm_store_write_status(const char *state_dir, const char *name, enum vm_state s, const char *reason, pid_t pid,
                          int exit_status)
{
    char path[4096];
    int r = vm_store_path(path, sizeof(path), state_dir, name, "status.json");
    if (r) return r;
    json_t *j = json_pack("{s:s, s:s, s:i, s:I}", "state", vm_state_name(s), "reason", reason ? reason : "", "pid",
                          (int)pid, "since", (json_int_t)time(NULL));
    if (!j) return -ENOMEM;
    if (exit_status >= 0) json_object_set_new(j, "exit_status", json_integer(exit_status));
    r = vm_store_write_json(path, j);
    json_decref(j);
    return r;
}

int vm_store_mkdirs(const char *path, mode_t mode)
{
    char buf[4096];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, mode) < 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0 && errno != EEXIST) return -errno;
    return 0;
}
