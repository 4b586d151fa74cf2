/* log: leveled messages to stderr, one line each, written with a single write(). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Global by design: verbosity and prefix are process-wide settings fixed at start-up. */
static enum log_level g_level = LOG_INFO;
static char g_prefix[64] = "vmd";

void log_set_level(enum log_level level) { g_level = level; }
enum log_level log_get_level(void) { return g_level; }

void log_set_prefix(const char *prefix)
{
    snprintf(g_prefix, sizeof(g_prefix), "%s", prefix);
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (level > g_level) return;
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s: %s: ", g_prefix, names[level]);
    if (n < 0) return;
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    if (m < 0) return;
    size_t len = strnlen(buf, sizeof(buf) - 2);
    buf[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void log_limit_flush(struct log_limit *rl, uint64_t now)
{
    if (!now) now = now_ms();
    if (now - rl->window_ms < 1000) return;
    if (rl->suppressed)
        log_msg(rl->level, "%u similar messages suppressed (%s: at most %u a second)", rl->suppressed,
                rl->what ? rl->what : "repeated messages", rl->burst ? rl->burst : 5);
    rl->window_ms = now;
    rl->emitted = rl->suppressed = 0;
}

void log_limited(struct log_limit *rl, enum log_level level, const char *fmt, ...)
{
    if (level > g_level) return;
    log_limit_flush(rl, now_ms());
    if (rl->emitted >= (rl->burst ? rl->burst : 5)) {
        rl->suppressed++;
        rl->level = level;
        return;
    }
    rl->emitted++;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, fmt, ap);
    va_end(ap);
}
