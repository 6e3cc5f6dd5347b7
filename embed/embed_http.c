/*
 * embed_http.c - models served by a remote embedding server: the OpenAI
 * embeddings API or Hugging Face text-embeddings-inference (TEI).
 *
 * Design: embed_texts is called from worker threads that may block, so the
 * client is synchronous: each attempt creates a private event_base and
 * connection, runs the loop until the answer (or the deadline) and frees
 * both.  Nothing is shared between calls, hence no locks and no
 * evthread setup; the price is one TCP connect per batch, negligible next
 * to computing the embeddings.  A pool of kept-alive connections is the
 * obvious next step if that ever shows.
 *
 * Wire formats:
 *   openai  POST url {"model": m, "input": [t0, t1, ...]}
 *           -> {"data": [{"embedding": [...], "index": i}, ...]}, items in
 *           any order (placed by "index"; by position when it is absent).
 *   tei     POST url {"inputs": [t0, t1, ...]} -> [[...], [...], ...].
 * The texts are split into batches of batch_size, sent one after the other,
 * and the answers must hold exactly one vector of exactly dim finite
 * numbers per text (ERR_CORRUPT otherwise).  Vectors are L2-normalised
 * here, since not every server does it.
 *
 * Failures: a timeout (timeout_ms per attempt, the whole exchange), a
 * connection failure, a 5xx, 408 or 429 is retried up to max_retries times
 * with exponential backoff (100 ms doubling, at most 10 s, no jitter: the
 * callers are few, and deterministic waits keep tests predictable), and
 * then reported as ERR_TIMEOUT (last attempt timed out) or ERR_BUSY, both
 * retriable.  Any other 4xx is ERR_INVALID, not retriable: the same request
 * would fail again.  Its message carries the status and the server's error
 * text ({"error": {"message"}}, {"error": "..."} or the raw body, trimmed).
 *
 * No TLS: https:// urls are refused when the model is configured.
 */
#include "embed/embed_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "store/dist.h"

#define BACKOFF_FIRST_MS 100u
#define BACKOFF_MAX_MS 10000u
#define BODY_MAX (64u << 20) /* an answer larger than this is not embeddings */
#define SERVER_TEXT_MAX 200  /* of the server's error text kept in a message */

enum api { API_OPENAI, API_TEI };

struct embed_http {
    enum api api;
    char *url;         /* as configured, for messages */
    char *host;        /* for connecting (IPv6 without brackets) */
    uint16_t port;
    char *path;        /* path and query, at least "/" */
    char *host_header; /* "host[:port]", IPv6 in brackets */
    char *model;       /* openai: "model" of the request */
    char *auth;        /* "Bearer <key>", or NULL */
    uint32_t batch_size, timeout_ms, max_retries;
};

/* What one HTTP exchange gave. */
struct answer {
    struct event_base *base;
    bool done;         /* the request callback ran */
    bool have_error;   /* libevent reported an error (error is set) */
    enum evhttp_request_error error;
    int status;        /* 0 = no HTTP answer */
    char *body;        /* malloc'd, NUL-terminated */
    size_t len;
    bool nomem;
};

/* ------------------------------------------------------------ config */

void embed_http_free(struct embed_http *h)
{
    if (h == NULL)
        return;
    free(h->url);
    free(h->host);
    free(h->path);
    free(h->host_header);
    free(h->model);
    free(h->auth);
    free(h);
}

/* Fill host, port, path and host_header from url. */
static int parse_url(struct embed_http *h, const char *url, err_t *err)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *scheme, *host, *path, *query;
    int port, rc = ERR_OK;
    size_t need;

    if (u == NULL || (scheme = evhttp_uri_get_scheme(u)) == NULL ||
        (host = evhttp_uri_get_host(u)) == NULL || *host == '\0') {
        rc = err_set(err, ERR_INVALID, "url: \"%.200s\" is not an http://host[:port]/path url", url);
        goto out;
    }
    if (strcasecmp(scheme, "https") == 0) {
        rc = err_set(err, ERR_UNSUPPORTED, "url: https:// is not supported (veclog has no TLS "
                     "client); use http://, e.g. through a local TLS proxy");
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 || evhttp_uri_get_userinfo(u) != NULL) {
        rc = err_set(err, ERR_INVALID, "url: \"%.200s\": only http://host[:port]/path urls, "
                     "without user info, are supported", url);
        goto out;
    }
    port = evhttp_uri_get_port(u);
    h->port = (uint16_t)(port > 0 ? port : 80);
    path = evhttp_uri_get_path(u);
    query = evhttp_uri_get_query(u);
    path = path != NULL && *path != '\0' ? path : "/";
    need = strlen(path) + (query ? strlen(query) + 1 : 0) + 1;
    if ((h->path = malloc(need)) == NULL || (h->host = strdup(host)) == NULL ||
        asprintf(&h->host_header, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
                 (unsigned)h->port) < 0) {
        h->host_header = NULL; /* asprintf leaves it undefined on failure */
        rc = err_set(err, ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(h->path, need, "%s%s%s", path, query ? "?" : "", query ? query : "");
    if (h->port == 80) /* the default port is left out of Host, as browsers do */
        *strrchr(h->host_header, ':') = '\0';
out:
    if (u != NULL)
        evhttp_uri_free(u);
    return rc;
}

static int check_limits(const embed_conf_t *c, err_t *err)
{
    if (c->batch_size < 1 || c->batch_size > EMBED_BATCH_MAX)
        return err_set(err, ERR_INVALID, "batch_size: %u is out of range (1..%u)",
                       (unsigned)c->batch_size, EMBED_BATCH_MAX);
    if (c->timeout_ms < 1 || c->timeout_ms > EMBED_TIMEOUT_MAX)
        return err_set(err, ERR_INVALID, "timeout_ms: %u is out of range (1..%u)",
                       (unsigned)c->timeout_ms, EMBED_TIMEOUT_MAX);
    if (c->max_retries > EMBED_RETRIES_MAX)
        return err_set(err, ERR_INVALID, "max_retries: %u is out of range (0..%u)",
                       (unsigned)c->max_retries, EMBED_RETRIES_MAX);
    /* A CR or LF would let the key forge headers. */
    if (c->api_key != NULL && (*c->api_key == '\0' || strpbrk(c->api_key, "\r\n") != NULL))
        return err_set(err, ERR_INVALID, "api_key: must be non-empty and on one line");
    return ERR_OK;
}

int embed_http_new(const embed_conf_t *c, struct embed_http **out, err_t *err)
{
    struct embed_http *h = NULL;
    const char *api = c->api != NULL ? c->api : "openai";
    int rc;

    *out = NULL;
    if (strcmp(api, "openai") != 0 && strcmp(api, "tei") != 0)
        return err_set(err, ERR_INVALID, "api: \"%.100s\" is not openai or tei", api);
    if (c->url == NULL || *c->url == '\0')
        return err_set(err, ERR_INVALID, "url: required for http models");
    if (strcmp(api, "openai") == 0 && (c->model == NULL || *c->model == '\0'))
        return err_set(err, ERR_INVALID, "model: required for api openai (the name sent to "
                       "the server)");
    if ((rc = check_limits(c, err)) != ERR_OK)
        return rc;
    if ((h = calloc(1, sizeof(*h))) == NULL)
        return err_set(err, ERR_NOMEM, "out of memory");
    h->api = strcmp(api, "tei") == 0 ? API_TEI : API_OPENAI;
    h->batch_size = c->batch_size;
    h->timeout_ms = c->timeout_ms;
    h->max_retries = c->max_retries;
    if ((rc = parse_url(h, c->url, err)) != ERR_OK)
        goto out;
    if ((h->url = strdup(c->url)) == NULL ||
        (c->model != NULL && (h->model = strdup(c->model)) == NULL) ||
        (c->api_key != NULL && asprintf(&h->auth, "Bearer %s", c->api_key) < 0)) {
        h->auth = NULL; /* asprintf leaves it undefined on failure */
        rc = err_set(err, ERR_NOMEM, "out of memory");
        goto out;
    }
    *out = h;
    h = NULL;
out:
    embed_http_free(h);
    return rc;
}

/* ---------------------------------------------------------- exchange */

static void on_error(enum evhttp_request_error e, void *arg)
{
    struct answer *a = arg;

    a->have_error = true;
    a->error = e;
}

/* Runs once per request, with req NULL when it failed. */
static void on_done(struct evhttp_request *req, void *arg)
{
    struct answer *a = arg;
    struct evbuffer *in;

    a->done = true;
    if (req != NULL && (a->status = evhttp_request_get_response_code(req)) > 0) {
        in = evhttp_request_get_input_buffer(req);
        a->len = evbuffer_get_length(in);
        if ((a->body = malloc(a->len + 1)) == NULL)
            a->nomem = true;
        else
            a->body[evbuffer_remove(in, a->body, a->len) < 0 ? 0 : a->len] = '\0';
    }
    /* The connection would keep the loop alive watching for close. */
    event_base_loopbreak(a->base);
}

static int add_headers(const struct embed_http *h, struct evhttp_request *req)
{
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);

    if (evhttp_add_header(hd, "Host", h->host_header) != 0 ||
        evhttp_add_header(hd, "Content-Type", "application/json") != 0 ||
        evhttp_add_header(hd, "Accept", "application/json") != 0 ||
        evhttp_add_header(hd, "Connection", "close") != 0 ||
        (h->auth != NULL && evhttp_add_header(hd, "Authorization", h->auth) != 0))
        return -1;
    return 0;
}

/* One POST of body.  ERR_OK means an HTTP answer is in *a (any status);
 * otherwise ERR_TIMEOUT, ERR_BUSY (could not talk to the server), or
 * ERR_NOMEM / ERR_CORRUPT (not retriable). */
static int post_once(const struct embed_http *h, const char *body, size_t len, struct answer *a,
                     err_t *err)
{
    struct evhttp_connection *conn = NULL;
    struct evhttp_request *req = NULL;
    struct timeval tv = {.tv_sec = h->timeout_ms / 1000, .tv_usec = (h->timeout_ms % 1000) * 1000};
    int rc = ERR_OK;

    memset(a, 0, sizeof(*a));
    if ((a->base = event_base_new()) == NULL ||
        (conn = evhttp_connection_base_new(a->base, NULL, h->host, h->port)) == NULL ||
        (req = evhttp_request_new(on_done, a)) == NULL) {
        rc = err_set(err, ERR_NOMEM, "cannot set up an HTTP request");
        goto out;
    }
    evhttp_connection_set_timeout_tv(conn, &tv);
    evhttp_connection_set_retries(conn, 0); /* we retry, with backoff */
    evhttp_connection_set_max_body_size(conn, BODY_MAX);
    evhttp_request_set_error_cb(req, on_error);
    if (add_headers(h, req) != 0 || evbuffer_add(evhttp_request_get_output_buffer(req), body, len)) {
        evhttp_request_free(req);
        rc = err_set(err, ERR_NOMEM, "cannot set up an HTTP request");
        goto out;
    }
    /* On failure libevent 2.1 has freed the request on some paths (out of
     * memory) and dropped it on others (no socket): not freeing it risks a
     * small leak, freeing it a double free. */
    if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, h->path) != 0) {
        rc = err_set(err, ERR_BUSY, "%s: cannot open a connection", h->url);
        goto out;
    }
    /* A hard deadline: evhttp's timeout is per read/write, so a server
     * trickling bytes could otherwise hold us forever. */
    event_base_loopexit(a->base, &tv);
    event_base_dispatch(a->base);
    if (a->nomem)
        rc = err_set(err, ERR_NOMEM, "out of memory for a %zu-byte answer", a->len);
    else if (!a->done || (a->have_error && a->error == EVREQ_HTTP_TIMEOUT))
        rc = err_set(err, ERR_TIMEOUT, "%s: no answer within %u ms", h->url, (unsigned)h->timeout_ms);
    else if (a->have_error && a->error == EVREQ_HTTP_DATA_TOO_LONG)
        rc = err_setr(err, ERR_CORRUPT, false, "%s: answer larger than %u bytes", h->url, BODY_MAX);
    else if (a->status <= 0)
        rc = err_set(err, ERR_BUSY, "%s: connection failed or closed without an answer", h->url);
out:
    if (conn != NULL)
        evhttp_connection_free(conn); /* frees a request still queued, without callbacks */
    if (a->base != NULL)
        event_base_free(a->base);
    a->base = NULL;
    return rc;
}

/* The server's own words from an error body, cleaned for a log line. */
static void server_text(const struct answer *a, char *buf, size_t cap)
{
    cJSON *root = cJSON_ParseWithLength(a->body, a->len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const char *text = a->body;
    size_t i, o = 0;

    if (cJSON_IsObject(e))
        e = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (!cJSON_IsString(e))
        e = cJSON_GetObjectItemCaseSensitive(root, "message");
    if (cJSON_IsString(e))
        text = e->valuestring;
    while (isspace((unsigned char)*text))
        text++;
    for (i = 0; text[i] != '\0' && o + 4 < cap && o < SERVER_TEXT_MAX; i++)
        buf[o++] = (unsigned char)text[i] < 0x20 ? ' ' : text[i];
    while (o > 0 && buf[o - 1] == ' ')
        o--;
    if (text[i] != '\0' && o + 4 <= cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    cJSON_Delete(root);
}

/* Map a non-2xx answer to an error. */
static int status_error(const struct embed_http *h, const struct answer *a, err_t *err)
{
    char text[SERVER_TEXT_MAX + 8];

    server_text(a, text, sizeof(text));
    if (a->status >= 500 || a->status == 408 || a->status == 429)
        return err_set(err, ERR_BUSY, "%s: HTTP %d: %s", h->url, a->status, text);
    return err_setr(err, ERR_INVALID, false, "%s: HTTP %d: %s", h->url, a->status, text);
}

static void sleep_ms(uint32_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* POST with retries.  On ERR_OK *a holds a 2xx answer; the caller frees
 * a->body. */
static int post(const struct embed_http *h, const char *body, size_t len, struct answer *a,
                err_t *err)
{
    uint32_t attempt, wait = BACKOFF_FIRST_MS;
    int rc = ERR_OK;

    for (attempt = 0; attempt <= h->max_retries; attempt++) {
        if (attempt > 0) {
            sleep_ms(wait);
            wait = wait * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : wait * 2;
        }
        if ((rc = post_once(h, body, len, a, err)) == ERR_OK) {
            if (a->status >= 200 && a->status < 300)
                return ERR_OK;
            rc = status_error(h, a, err);
            free(a->body);
            a->body = NULL;
        }
        if (rc != ERR_TIMEOUT && rc != ERR_BUSY) /* the only retriable codes used here */
            return rc;
    }
    if (h->max_retries > 0)
        err_wrap(err, "after %u attempts", (unsigned)h->max_retries + 1);
    return rc;
}

/* ------------------------------------------------------------- JSON */

static char *request_body(const struct embed_http *h, const char *const *texts, size_t n)
{
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    char *body = NULL;
    size_t i;
    bool ok = root != NULL && arr != NULL;

    /* References: the texts are not copied, and not freed with the tree. */
    for (i = 0; ok && i < n; i++)
        ok = cJSON_AddItemToArray(arr, cJSON_CreateStringReference(texts[i]));
    if (ok && h->api == API_OPENAI)
        ok = cJSON_AddStringToObject(root, "model", h->model) != NULL;
    if (ok) {
        ok = cJSON_AddItemToObject(root, h->api == API_OPENAI ? "input" : "inputs", arr);
        arr = ok ? NULL : arr;
    }
    if (ok)
        body = cJSON_PrintUnformatted(root);
    cJSON_Delete(arr);
    cJSON_Delete(root);
    return body;
}

/* One vector: an array of exactly dim finite numbers, stored normalised. */
static int take_vector(const struct embed_http *h, const cJSON *arr, uint32_t dim, size_t i,
                       float *dst, err_t *err)
{
    const cJSON *x;
    size_t j = 0;

    if (!cJSON_IsArray(arr) || (size_t)cJSON_GetArraySize(arr) != dim)
        return err_setr(err, ERR_CORRUPT, false, "%s: vector %zu: expected an array of %u "
                        "numbers, got %s%d", h->url, i, (unsigned)dim,
                        cJSON_IsArray(arr) ? "" : "no array, size ",
                        cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0);
    cJSON_ArrayForEach(x, arr) {
        float f = (float)x->valuedouble;
        if (!cJSON_IsNumber(x) || f != f || f - f != 0.0f) /* NaN, inf, or out of float range */
            return err_setr(err, ERR_CORRUPT, false, "%s: vector %zu: item %zu is not a "
                            "finite number", h->url, i, j);
        dst[j++] = f;
    }
    dist_normalize(dst, dim);
    return ERR_OK;
}

static int parse_openai(const struct embed_http *h, const cJSON *root, size_t n, uint32_t dim,
                        float *out, err_t *err)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data"), *item;
    bool seen[EMBED_BATCH_MAX] = {false};
    size_t pos = 0;
    int rc;

    if (!cJSON_IsArray(data) || (size_t)cJSON_GetArraySize(data) != n)
        return err_setr(err, ERR_CORRUPT, false, "%s: expected {\"data\": [...]} with %zu "
                        "embeddings", h->url, n);
    cJSON_ArrayForEach(item, data) {
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(item, "index");
        size_t at = pos++;
        if (idx != NULL) {
            if (!cJSON_IsNumber(idx) || idx->valuedouble < 0 || idx->valuedouble >= (double)n ||
                idx->valuedouble != (double)(size_t)idx->valuedouble)
                return err_setr(err, ERR_CORRUPT, false, "%s: data item %zu: index is not an "
                                "integer in 0..%zu", h->url, at, n - 1);
            at = (size_t)idx->valuedouble;
        }
        if (seen[at])
            return err_setr(err, ERR_CORRUPT, false, "%s: index %zu appears twice", h->url, at);
        seen[at] = true;
        rc = take_vector(h, cJSON_GetObjectItemCaseSensitive(item, "embedding"), dim, at,
                         out + at * dim, err);
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

static int parse_tei(const struct embed_http *h, const cJSON *root, size_t n, uint32_t dim,
                     float *out, err_t *err)
{
    const cJSON *item;
    size_t i = 0;
    int rc;

    if (!cJSON_IsArray(root) || (size_t)cJSON_GetArraySize(root) != n)
        return err_setr(err, ERR_CORRUPT, false, "%s: expected an array of %zu embeddings",
                        h->url, n);
    cJSON_ArrayForEach(item, root) {
        if ((rc = take_vector(h, item, dim, i, out + i * dim, err)) != ERR_OK)
            return rc;
        i++;
    }
    return ERR_OK;
}

/* ------------------------------------------------------------- batch */

static int embed_batch(const embed_model_t *m, const char *const *texts, size_t n, float *out,
                       err_t *err)
{
    const struct embed_http *h = m->http;
    struct answer a = {0};
    cJSON *root = NULL;
    char *body = request_body(h, texts, n);
    int rc;

    if (body == NULL) {
        rc = err_set(err, ERR_NOMEM, "out of memory for the request");
        goto out;
    }
    if ((rc = post(h, body, strlen(body), &a, err)) != ERR_OK)
        goto out;
    if ((root = cJSON_ParseWithLength(a.body, a.len)) == NULL) {
        rc = err_setr(err, ERR_CORRUPT, false, "%s: the answer is not JSON", h->url);
        goto out;
    }
    rc = h->api == API_OPENAI ? parse_openai(h, root, n, m->dim, out, err)
                              : parse_tei(h, root, n, m->dim, out, err);
out:
    cJSON_Delete(root);
    free(a.body);
    free(body);
    return rc;
}

int embed_http_texts(const embed_model_t *m, const char *const *texts, size_t n, float *out,
                     err_t *err)
{
    size_t i, b = m->http->batch_size;
    int rc = ERR_OK;

    for (i = 0; i < n && rc == ERR_OK; i += b) {
        size_t k = n - i < b ? n - i : b;
        if ((rc = embed_batch(m, texts + i, k, out + i * m->dim, err)) != ERR_OK)
            err_wrap(err, "embed: model \"%s\": texts %zu..%zu", m->name, i, i + k - 1);
    }
    return rc;
}
