/* console_log: the serial console of a daemon-managed VM, written to a bounded, rotated log
 * file (console.log, and console.log.1 for the previous part) and queued for live viewers.
 * console_log_write is called from vCPU threads; the rest from the worker's loop thread. */
#ifndef VMD_WORKER_CONSOLE_LOG_H
#define VMD_WORKER_CONSOLE_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONSOLE_LOG_MAX_DEFAULT (1u << 20)  /* bytes per file before rotation */
#define CONSOLE_LIVE_MAX (256u << 10)       /* bytes queued for live viewers before the oldest are dropped */

struct console_log {
    pthread_mutex_t lock;
    char *path, *path_old;
    int fd;
    size_t size, max;
    /* Output not yet handed to live viewers (only kept while someone is watching). */
    uint8_t *live;
    size_t live_len;
    int watching;
    void (*wake)(void *opaque); /* called (any thread) when live output is waiting */
    void *wake_opaque;
};

int console_log_open(struct console_log *l, const char *path, size_t max_bytes);
void console_log_close(struct console_log *l);
void console_log_write(struct console_log *l, const uint8_t *buf, size_t len);
/* Take the queued live output (caller frees); NULL if none. */
uint8_t *console_log_take_live(struct console_log *l, size_t *len);
void console_log_set_watching(struct console_log *l, int watching);

#endif
