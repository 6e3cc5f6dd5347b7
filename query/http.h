/*
 * http.h - the HTTP transport of the query node: libevent's evhttp on one
 * event-loop thread, request handling on a pool of worker threads.
 *
 * The loop thread parses requests and sends replies (evhttp is not
 * thread-safe); workers run api_handle, which is CPU work for searches,
 * so N workers use N cores and a slow search never stalls the loop or the
 * other connections.  A finished job goes back to the loop through a
 * queue and an event activated from the worker (libevent's pthreads
 * locking makes that one call thread-safe).
 *
 * Shutdown (http_stop) is graceful: the listener closes first, requests
 * already received are finished and answered, then the loop exits.
 */
#ifndef VECLOG_HTTP_H
#define VECLOG_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "query/api.h"

typedef struct http http_t;

typedef struct http_opts {
    const char *host;         /* listen address, e.g. "0.0.0.0" */
    uint16_t port;            /* 0: any free port (see http_port) */
    uint64_t max_body;        /* bytes; larger requests get 413 */
    int timeout_sec;          /* read/write timeout per connection */
    int workers;              /* 0: one per core */
    bool cors;                /* answer CORS preflights, add allow-origin */
} http_opts_t;

/* Bind and start serving.  api is borrowed and must outlive the server.
 * *out owned by the caller (http_stop).  Any thread. */
int http_start(api_t *api, const http_opts_t *opts, http_t **out, err_t *err);

/* The bound port. */
uint16_t http_port(const http_t *h);

/* Stop accepting, finish in-flight requests, free.  Not from a worker. */
void http_stop(http_t *h);

#endif
