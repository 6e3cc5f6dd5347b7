/*
 * log.c - see log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int g_level = LOG_INFO;

static const char *const level_names[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF" };

int log_level_parse(const char *name)
{
    for (int i = 0; i <= LOG_OFF; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "WARNING") == 0)
        return LOG_WARN;
    return -1;
}

void log_level_set(int level)
{
    g_level = level;
}

int log_level_get(void)
{
    return g_level;
}

void log_msg(int level, const char *subsystem, const char *fmt, ...)
{
    char line[2048];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    if (level < g_level || level >= LOG_OFF)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s %s: ",
                          ts.tv_nsec / 1000000, level_names[level], subsystem);
    va_start(ap, fmt);
    if (n < sizeof(line))
        n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report a failing stderr */
    }
}
