/*
 * metrics.c - see metrics.h.  Series are found by linear search: there are
 * a few dozen routes, and a request costs far more than the scan.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 512
static const double buckets[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                  0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NB (sizeof(buckets) / sizeof(buckets[0]))

typedef struct series {
    char route[64];
    char method[8];
    int status;
    unsigned long long count;
    double sum;
    unsigned long long bucket[NB];
} series_t;

struct metrics {
    pthread_mutex_t mu;
    series_t s[MAX_SERIES];
    size_t n;
};

metrics_t *metrics_new(void)
{
    metrics_t *m = calloc(1, sizeof(*m));
    if (m != NULL)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void metrics_free(metrics_t *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void metrics_observe(metrics_t *m, const char *route, const char *method, int status,
                     double seconds)
{
    series_t *s = NULL;

    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n; i++) {
        if (m->s[i].status == status && strcmp(m->s[i].route, route) == 0 &&
            strcmp(m->s[i].method, method) == 0) {
            s = &m->s[i];
            break;
        }
    }
    if (s == NULL && m->n < MAX_SERIES) {
        s = &m->s[m->n++];
        snprintf(s->route, sizeof(s->route), "%s", route);
        snprintf(s->method, sizeof(s->method), "%s", method);
        s->status = status;
    }
    if (s != NULL) {
        s->count++;
        s->sum += seconds;
        for (size_t b = 0; b < NB; b++)
            if (seconds <= buckets[b])
                s->bucket[b]++;
    }
    pthread_mutex_unlock(&m->mu);
}

int metrics_appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = *cap - *len;
        va_start(ap, fmt);
        int n = *buf ? vsnprintf(*buf + *len, room, fmt, ap) : -2;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            *len += (size_t)n;
            return 0;
        }
        size_t ncap = *cap ? *cap * 2 : 4096;
        while (n >= 0 && ncap - *len <= (size_t)n)
            ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (nb == NULL)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
}

int metrics_render(metrics_t *m, char **buf, size_t *len, size_t *cap)
{
    int rc = 0;

    pthread_mutex_lock(&m->mu);
    rc |= metrics_appendf(buf, len, cap,
                          "# HELP veclog_http_requests_total HTTP requests by route, method and status\n"
                          "# TYPE veclog_http_requests_total counter\n");
    for (size_t i = 0; i < m->n; i++)
        rc |= metrics_appendf(buf, len, cap,
                              "veclog_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                              m->s[i].route, m->s[i].method, m->s[i].status, m->s[i].count);
    rc |= metrics_appendf(buf, len, cap,
                          "# HELP veclog_http_request_duration_seconds HTTP request latency\n"
                          "# TYPE veclog_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m->n; i++) {
        const series_t *s = &m->s[i];
        for (size_t b = 0; b < NB; b++)
            rc |= metrics_appendf(buf, len, cap,
                                  "veclog_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",status=\"%d\",le=\"%g\"} %llu\n",
                                  s->route, s->method, s->status, buckets[b], s->bucket[b]);
        rc |= metrics_appendf(buf, len, cap,
                              "veclog_http_request_duration_seconds_bucket{route=\"%s\",method=\"%s\",status=\"%d\",le=\"+Inf\"} %llu\n"
                              "veclog_http_request_duration_seconds_sum{route=\"%s\",method=\"%s\",status=\"%d\"} %.6f\n"
                              "veclog_http_request_duration_seconds_count{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                              s->route, s->method, s->status, s->count, s->route, s->method,
                              s->status, s->sum, s->route, s->method, s->status, s->count);
    }
    pthread_mutex_unlock(&m->mu);
    return rc ? -1 : 0;
}
