/* log: leveled messages to stderr, one line each, written with a single write(). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
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

void log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"error", "warning", "info", "debug"};
    if (level > g_level) return;
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "%s: %s: ", g_prefix, names[level]);
    if (n < 0) return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    size_t len = strnlen(buf, sizeof(buf) - 2);
    buf[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
}
