/* log: the one logging module. Levels, to stderr (journald picks stderr up under systemd). */
#ifndef VMD_LOG_H
#define VMD_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Process-wide verbosity; set once at start-up from the command line. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Prefix added to each line (e.g. "vmd", "worker web1"). */
void log_set_prefix(const char *prefix);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                     \
    do {                                                                   \
        if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, __VA_ARGS__); \
    } while (0)

#endif
