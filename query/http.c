/*
 * http.c - see http.h.
 *
 * Job lifecycle: created on the loop thread (request copied out of
 * libevent), handled on a worker, answered and freed on the loop thread.
 * If the client goes away meanwhile, libevent frees the request and calls
 * the connection's close callback, which marks the job cancelled so the
 * answer is dropped instead of written to a freed request.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "store/log.h"

typedef struct job {
    struct job *next;
    struct evhttp_request *req;
    struct evhttp_connection *conn;
    bool cancelled;
    api_req_t ar;
    char *path, *query, *body, *key;
    api_resp_t resp;
    double t0;
} job_t;

typedef struct jobq {
    job_t *head, *tail;
} jobq_t;

struct http {
    api_t *api;
    http_opts_t opts;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    struct event *done_ev;
    uint16_t port;
    pthread_t loop;
    pthread_t *workers;
    int n_workers;
    pthread_mutex_t mu;       /* guards work, done, quit */
    pthread_cond_t cv;
    jobq_t work, done;
    bool quit;
    int inflight;             /* loop thread only */
    bool stopping;            /* loop thread only */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void q_push(jobq_t *q, job_t *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static job_t *q_pop(jobq_t *q)
{
    job_t *j = q->head;
    if (j) {
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
    }
    return j;
}

static void job_free(job_t *j)
{
    free(j->path);
    free(j->query);
    free(j->body);
    free(j->key);
    free(j->resp.body);
    free(j);
}

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return status >= 500 ? "Internal Server Error" : "Error";
    }
}

static void maybe_exit(http_t *h)
{
    if (h->stopping && h->inflight == 0)
        event_base_loopexit(h->base, NULL);
}

static void cors_headers(http_t *h, struct evkeyvalq *out)
{
    if (!h->opts.cors)
        return;
    evhttp_add_header(out, "Access-Control-Allow-Origin", "*");
    evhttp_add_header(out, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS");
    evhttp_add_header(out, "Access-Control-Allow-Headers", "*");
}

/* Loop thread: answer finished jobs. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    http_t *h = arg;
    job_t *j;
    (void)fd;
    (void)what;

    for (;;) {
        pthread_mutex_lock(&h->mu);
        j = q_pop(&h->done);
        pthread_mutex_unlock(&h->mu);
        if (j == NULL)
            break;
        if (!j->cancelled) {
            struct evbuffer *buf = evbuffer_new();
            struct evkeyvalq *out = evhttp_request_get_output_headers(j->req);
            evhttp_connection_set_closecb(j->conn, NULL, NULL);
            evhttp_add_header(out, "Content-Type", j->resp.content_type);
            cors_headers(h, out);
            if (j->ar.method != API_HEAD)
                evbuffer_add(buf, j->resp.body, j->resp.body_len);
            evhttp_send_reply(j->req, j->resp.status, reason(j->resp.status), buf);
            evbuffer_free(buf);
        }
        api_observe(h->api, j->resp.route, j->ar.method, j->resp.status, now_s() - j->t0);
        job_free(j);
        h->inflight--;
    }
    maybe_exit(h);
}

static void on_conn_close(struct evhttp_connection *conn, void *arg)
{
    job_t *j = arg;
    (void)conn;
    j->cancelled = true;
}

static void *worker_main(void *arg)
{
    http_t *h = arg;

    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (h->work.head == NULL && !h->quit)
            pthread_cond_wait(&h->cv, &h->mu);
        job_t *j = q_pop(&h->work);
        pthread_mutex_unlock(&h->mu);
        if (j == NULL)
            return NULL;
        api_handle(h->api, &j->ar, &j->resp);
        pthread_mutex_lock(&h->mu);
        q_push(&h->done, j);
        pthread_mutex_unlock(&h->mu);
        event_active(h->done_ev, EV_READ, 0);
    }
}

static int method_of(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return API_GET;
    case EVHTTP_REQ_POST: return API_POST;
    case EVHTTP_REQ_PUT: return API_PUT;
    case EVHTTP_REQ_PATCH: return API_PATCH;
    case EVHTTP_REQ_DELETE: return API_DELETE;
    case EVHTTP_REQ_HEAD: return API_HEAD;
    default: return API_OTHER;
    }
}

/* Copy what the worker needs out of libevent's request. */
static job_t *job_new(struct evhttp_request *req)
{
    job_t *j = calloc(1, sizeof(*j));
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    struct evkeyvalq *hdr = evhttp_request_get_input_headers(req);
    size_t len = evbuffer_get_length(in);

    if (j == NULL)
        return NULL;
    j->t0 = now_s();
    j->req = req;
    j->conn = evhttp_request_get_connection(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    j->path = evhttp_uridecode(path && *path ? path : "/", 0, NULL);
    j->query = query ? strdup(query) : NULL;
    j->body = malloc(len + 1);
    if (j->path == NULL || j->body == NULL) {
        job_free(j);
        return NULL;
    }
    evbuffer_remove(in, j->body, len);
    j->body[len] = '\0';
    const char *key = evhttp_find_header(hdr, "api-key");
    const char *auth = evhttp_find_header(hdr, "Authorization");
    if (key == NULL && auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
        key = auth + 7;
    j->key = key ? strdup(key) : NULL;
    j->ar = (api_req_t){ .method = method_of(evhttp_request_get_command(req)), .path = j->path,
                         .query = j->query, .body = len ? j->body : NULL, .body_len = len,
                         .api_key = j->key };
    return j;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    http_t *h = arg;

    if (evhttp_request_get_command(req) == EVHTTP_REQ_OPTIONS) {
        cors_headers(h, evhttp_request_get_output_headers(req));
        evhttp_send_reply(req, 204, "No Content", NULL);
        return;
    }
    job_t *j = job_new(req);
    if (j == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evhttp_connection_set_closecb(j->conn, on_conn_close, j);
    h->inflight++;
    pthread_mutex_lock(&h->mu);
    q_push(&h->work, j);
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void *loop_main(void *arg)
{
    http_t *h = arg;
    event_base_loop(h->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    http_t *h = arg;
    (void)fd;
    (void)what;
    if (h->sock != NULL) {
        evhttp_del_accept_socket(h->http, h->sock);
        h->sock = NULL;
    }
    h->stopping = true;
    maybe_exit(h);
}

static int bind_listener(http_t *h, err_t *err)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    h->sock = evhttp_bind_socket_with_handle(h->http, h->opts.host, h->opts.port);
    if (h->sock == NULL)
        return err_errno(err, errno ? errno : EADDRINUSE, "listen on %s:%u", h->opts.host,
                         h->opts.port);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(h->sock);
    /* Accepted sockets inherit TCP_NODELAY on Linux: without it a response
     * larger than one segment on a keep-alive connection waits ~40 ms for
     * the client's delayed ACK (Nagle). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return ERR_OK;
}

int http_start(api_t *api, const http_opts_t *opts, http_t **out, err_t *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    http_t *h = calloc(1, sizeof(*h));
    int rc;

    *out = NULL;
    if (h == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    pthread_once(&once, (void (*)(void))evthread_use_pthreads);
    h->api = api;
    h->opts = *opts;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->n_workers = opts->workers > 0 ? opts->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (h->n_workers < 1)
        h->n_workers = 1;
    h->base = event_base_new();
    h->http = h->base ? evhttp_new(h->base) : NULL;
    h->done_ev = h->base ? event_new(h->base, -1, EV_READ, on_done, h) : NULL;
    h->workers = calloc((size_t)h->n_workers, sizeof(pthread_t));
    if (h->http == NULL || h->done_ev == NULL || h->workers == NULL) {
        rc = err_set(err, ERR_NOMEM, "cannot create the HTTP server");
        goto fail;
    }
    evhttp_set_max_body_size(h->http, (ev_ssize_t)opts->max_body);
    evhttp_set_timeout(h->http, opts->timeout_sec > 0 ? opts->timeout_sec : 30);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS);
    evhttp_set_gencb(h->http, on_request, h);
    if ((rc = bind_listener(h, err)) != ERR_OK)
        goto fail;
    for (int i = 0; i < h->n_workers; i++)
        pthread_create(&h->workers[i], NULL, worker_main, h);
    pthread_create(&h->loop, NULL, loop_main, h);
    log_info("http", "listening on %s:%u with %d worker threads", opts->host, h->port, h->n_workers);
    *out = h;
    return ERR_OK;
fail:
    if (h->done_ev)
        event_free(h->done_ev);
    if (h->http)
        evhttp_free(h->http);
    if (h->base)
        event_base_free(h->base);
    free(h->workers);
    free(h);
    return rc;
}

uint16_t http_port(const http_t *h)
{
    return h->port;
}

void http_stop(http_t *h)
{
    if (h == NULL)
        return;
    event_base_once(h->base, -1, EV_TIMEOUT, on_stop, h, NULL);
    pthread_join(h->loop, NULL);
    pthread_mutex_lock(&h->mu);
    h->quit = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    for (int i = 0; i < h->n_workers; i++)
        pthread_join(h->workers[i], NULL);
    event_free(h->done_ev);
    evhttp_free(h->http);
    event_base_free(h->base);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h->workers);
    free(h);
}
