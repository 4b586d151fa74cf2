/* log: the one logging module. Levels, to stderr (journald picks stderr up under systemd).
 * Messages a peer can provoke at will (refusals, protocol errors) go through a log_limit, so that
 * a flood of them cannot flood the log: at most `burst` lines per second per limiter, then one
 * "N similar messages suppressed" line when the second is over. */
#ifndef VMD_LOG_H
#define VMD_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Process-wide verbosity; set once at start-up from the command line. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Prefix added to each line (e.g. "vmd", "worker web1"). */
void log_set_prefix(const char *prefix);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
#include <stdint.h>

void log_vmsg(enum log_level level, const char *fmt, va_list ap);

/* A rate limiter for one kind of message (one per reason, owned by whoever logs it). */
struct log_limit {
    const char *what;     /* names the kind in the "suppressed" line, e.g. "connection refusals" */
    unsigned burst;       /* lines per second (0: 5) */
    uint64_t window_ms;   /* start of the current one-second window (monotonic ms) */
    unsigned emitted, suppressed;
    enum log_level level; /* of the suppressed messages */
};
#define LOG_LIMIT_INIT(what_, burst_) {.what = (what_), .burst = (burst_)}
/* Log unless the limiter's budget for this second is used up (then count it as suppressed). */
void log_limited(struct log_limit *rl, enum log_level level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Report the suppressed count once its second is over (call periodically: otherwise it is
 * reported with the limiter's next message). now_ms 0 = the current time. */
void log_limit_flush(struct log_limit *rl, uint64_t now_ms);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                     \
    do {                                                                   \
        if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); \
    } while (0)

#endif
