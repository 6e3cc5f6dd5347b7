/*
 * metrics.h - request counters and latency histograms in Prometheus text
 * format.  A fixed table of series (route x method x status); observing is
 * one mutex-protected increment, cheap next to any request.
 */
#ifndef VECLOG_METRICS_H
#define VECLOG_METRICS_H

#include <stddef.h>

typedef struct metrics metrics_t;

metrics_t *metrics_new(void);
void metrics_free(metrics_t *m);

/* Thread-safe.  route and method are copied. */
void metrics_observe(metrics_t *m, const char *route, const char *method, int status,
                     double seconds);

/* Append the request metrics to *buf (malloc'd, grown as needed; *len is
 * the used length).  Returns 0, or -1 on allocation failure. */
int metrics_render(metrics_t *m, char **buf, size_t *len, size_t *cap);

/* printf-append helper shared with the other /metrics producers. */
int metrics_appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
