/*
 * log.h - leveled logging to stderr, shared by every module.
 *
 * One line per message: "2026-11-21T05:01:25.123Z WARN  wal: message".
 * The level is process-wide (set once at start-up from log_level) and read
 * without a lock: a torn read of an int is impossible on our platforms and a
 * stale level for a moment is harmless.
 */
#ifndef VECLOG_LOG_H
#define VECLOG_LOG_H

enum log_level { LOG_TRACE = 0, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Parse "TRACE".."ERROR"/"OFF" (any case); -1 when unknown. */
int log_level_parse(const char *name);
void log_level_set(int level);
int log_level_get(void);

/* Thread-safe: each line is written with one write(2). */
void log_msg(int level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(sub, ...) log_msg(LOG_ERROR, sub, __VA_ARGS__)
#define log_warn(sub, ...)  log_msg(LOG_WARN, sub, __VA_ARGS__)
#define log_info(sub, ...)  log_msg(LOG_INFO, sub, __VA_ARGS__)
#define log_debug(sub, ...) log_msg(LOG_DEBUG, sub, __VA_ARGS__)

#endif
