/*
 * api.c - routing, the Qdrant response envelope, authentication, and the
 * service, collection, alias and payload index endpoints.  Point endpoints
 * are in api_points.c.
 *
 * Error statuses follow Qdrant: 400 bad input ("Wrong input: ..."), 404
 * missing collection/point ("Not found: ..."), 409 existing name, 403 bad
 * or missing api key, 413 too large (the transport), 500 internal, 501 a
 * part of Qdrant's API that veclog does not implement, 503 not ready.
 */
#include "api_internal.h"

#include "store/req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/log.h"

enum { R_READ = 1, R_BODY = 2 };

typedef struct route {
    int method;
    const char *pattern;
    api_handler_fn fn;
    int flags;
} route_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int api_status_of(int code)
{
    switch (code) {
    case ERR_OK: return 200;
    case ERR_INVALID: return 400;
    case ERR_NOT_FOUND: return 404;
    case ERR_EXISTS: return 409;
    case ERR_UNSUPPORTED: return 501;
    case ERR_TOO_LARGE: return 413;
    case ERR_FORBIDDEN: return 403;
    case ERR_BUSY: case ERR_CLOSED: return 503;
    case ERR_TIMEOUT: return 408;
    case ERR_FULL: return 507;
    default: return 500;
    }
}

int api_uint_field(const cJSON *obj, const char *key, size_t dflt, size_t min, size_t *out,
                   err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (v == NULL || cJSON_IsNull(v)) {
        *out = dflt;
        return ERR_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)min || v->valuedouble > 1e12 ||
        v->valuedouble != (double)(size_t)v->valuedouble)
        return err_set(err, ERR_INVALID, "%s: expected an integer >= %zu", key, min);
    *out = (size_t)v->valuedouble;
    return ERR_OK;
}

/* ---- service endpoints ------------------------------------------------ */

static int h_root(api_ctx_t *x, cJSON **result, err_t *err)
{
    (void)err;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "title", "veclog - vector database fed by Kafka (Qdrant API)");
    cJSON_AddStringToObject(o, "version", "1.19.0");
    cJSON_AddStringToObject(o, "veclog_version", x->a->version);
    *result = o;
    return ERR_OK;
}

static int h_collections_list(api_ctx_t *x, cJSON **result, err_t *err)
{
    *result = catalog_list_json(x->a->cat);
    return *result ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

static int h_collection_get(api_ctx_t *x, cJSON **result, err_t *err)
{
    catalog_handle_t *h;
    int rc = catalog_acquire(x->a->cat, x->args[0], &h, err);
    if (rc != ERR_OK)
        return rc;
    *result = catalog_info_json(x->a->cat, h);
    catalog_release(h);
    return *result ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

static int h_collection_create(api_ctx_t *x, cJSON **result, err_t *err)
{
    int rc = catalog_create(x->a->cat, x->args[0], x->body, err);
    if (rc == ERR_OK)
        *result = cJSON_CreateTrue();
    return rc;
}

static int h_collection_update(api_ctx_t *x, cJSON **result, err_t *err)
{
    int rc = catalog_update(x->a->cat, x->args[0], x->body, err);
    if (rc == ERR_OK)
        *result = cJSON_CreateTrue();
    return rc;
}

static int h_collection_delete(api_ctx_t *x, cJSON **result, err_t *err)
{
    int rc = catalog_drop(x->a->cat, x->args[0], err);
    if (rc == ERR_NOT_FOUND) {
        *result = cJSON_CreateFalse();
        return ERR_OK;
    }
    if (rc == ERR_OK)
        *result = cJSON_CreateTrue();
    return rc;
}

/* Like GET /collections/{name}, an alias counts (Qdrant resolves it). */
static int h_collection_exists(api_ctx_t *x, cJSON **result, err_t *err)
{
    catalog_handle_t *h = NULL;
    bool exists = catalog_acquire(x->a->cat, x->args[0], &h, NULL) == ERR_OK;

    (void)err;
    catalog_release(h);
    *result = cJSON_CreateObject();
    cJSON_AddBoolToObject(*result, "exists", exists);
    return ERR_OK;
}

static int h_aliases_update(api_ctx_t *x, cJSON **result, err_t *err)
{
    static const char *const fields[] = { "actions", NULL };
    int rc = req_fields_check(x->body, fields, "", err);
    if (rc == ERR_OK)
        rc = catalog_aliases_update(x->a->cat, x->body, err);
    if (rc == ERR_OK)
        *result = cJSON_CreateTrue();
    return rc;
}

static int h_aliases_all(api_ctx_t *x, cJSON **result, err_t *err)
{
    (void)err;
    *result = catalog_aliases_json(x->a->cat, NULL);
    return ERR_OK;
}

static int h_aliases_of(api_ctx_t *x, cJSON **result, err_t *err)
{
    if (!catalog_exists(x->a->cat, x->args[0]))
        return err_set(err, ERR_NOT_FOUND, "Collection `%s` doesn't exist!", x->args[0]);
    *result = catalog_aliases_json(x->a->cat, x->args[0]);
    return ERR_OK;
}

/* ---- payload indexes ---------------------------------------------------- */

/* UpdateResult of an index operation.  The definition is persisted in the
 * collection's config, not logged in its WAL, so it has no sequence number
 * of its own: operation_id is the collection's last applied operation (the
 * one the definition follows).  The status follows ?wait like point
 * updates, though the operation is always complete on return. */
static cJSON *index_result(catalog_handle_t *h, bool wait)
{
    coll_info_t info;
    cJSON *o = cJSON_CreateObject();

    coll_info_get(catalog_handle_coll(h), &info);
    cJSON_AddNumberToObject(o, "operation_id", (double)info.applied_seq);
    cJSON_AddStringToObject(o, "status", wait ? "completed" : "acknowledged");
    return o;
}

static int h_index_create(api_ctx_t *x, cJSON **result, err_t *err)
{
    catalog_handle_t *h;
    int rc = catalog_acquire(x->a->cat, x->args[0], &h, err);

    if (rc != ERR_OK)
        return rc;
    rc = catalog_index_create(x->a->cat, h, x->body, err);
    if (rc == ERR_OK)
        *result = index_result(h, x->wait);
    catalog_release(h);
    return rc;
}

static int h_index_delete(api_ctx_t *x, cJSON **result, err_t *err)
{
    catalog_handle_t *h;
    int rc = catalog_acquire(x->a->cat, x->args[0], &h, err);

    if (rc != ERR_OK)
        return rc;
    rc = catalog_index_delete(x->a->cat, h, x->args[1], err);
    if (rc == ERR_OK)
        *result = index_result(h, x->wait);
    catalog_release(h);
    return rc;
}

static int h_telemetry(api_ctx_t *x, cJSON **result, err_t *err)
{
    (void)err;
    cJSON *o = cJSON_CreateObject();
    double up = now_s() - x->a->started;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    time_t start = (time_t)((double)wall.tv_sec + wall.tv_nsec / 1e9 - up + 0.5);
    char id[64], startup[32];
    struct tm tm;

    /* TelemetryData requires "id", AppBuildTelemetry "startup" (date-time) */
    snprintf(id, sizeof(id), "veclog-%lld", (long long)start);
    strftime(startup, sizeof(startup), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&start, &tm));
    cJSON_AddStringToObject(o, "id", id);
    cJSON *app = cJSON_AddObjectToObject(o, "app");
    cJSON_AddStringToObject(app, "name", "veclog");
    cJSON_AddStringToObject(app, "version", x->a->version);
    cJSON_AddStringToObject(app, "startup", startup);
    cJSON_AddNumberToObject(app, "uptime_seconds", up);
    cJSON *list = catalog_list_json(x->a->cat);
    cJSON *colls = cJSON_AddObjectToObject(o, "collections");
    cJSON_AddNumberToObject(colls, "number_of_collections",
                            cJSON_GetArraySize(cJSON_GetObjectItem(list, "collections")));
    cJSON_Delete(list);
    *result = o;
    return ERR_OK;
}

static const api_ingest_hooks_t *ingest_hooks(const api_t *a)
{
    return __atomic_load_n(&a->ingest, __ATOMIC_ACQUIRE);
}

static int h_ingest_partitions(api_ctx_t *x, cJSON **result, err_t *err)
{
    const api_ingest_hooks_t *hk = ingest_hooks(x->a);
    if (hk == NULL)
        return err_set(err, ERR_NOT_FOUND, "Kafka ingest is not running on this node");
    *result = hk->status(hk->ctx);
    return *result ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

static int h_unimplemented(api_ctx_t *x, cJSON **result, err_t *err)
{
    (void)result;
    return err_set(err, ERR_UNSUPPORTED, "%s is not implemented by veclog", x->req->path);
}

/* ---- routing ---------------------------------------------------------- */

#define C "/collections/{collection_name}"
static const route_t routes[] = {
    { API_GET, "/", h_root, R_READ },
    { API_GET, "/telemetry", h_telemetry, R_READ },
    { API_GET, "/collections", h_collections_list, R_READ },
    { API_POST, "/collections/aliases", h_aliases_update, R_BODY },
    { API_GET, C, h_collection_get, R_READ },
    { API_PUT, C, h_collection_create, 0 },
    { API_PATCH, C, h_collection_update, R_BODY },
    { API_DELETE, C, h_collection_delete, 0 },
    { API_GET, C "/exists", h_collection_exists, R_READ },
    { API_GET, C "/aliases", h_aliases_of, R_READ },
    { API_GET, "/aliases", h_aliases_all, R_READ },
    { API_GET, "/ingest/partitions", h_ingest_partitions, R_READ },
    { API_GET, "/dlq", api_dlq_list, R_READ },
    { API_GET, "/dlq/{partition}/{offset}", api_dlq_show, R_READ },
    { API_POST, "/dlq/redrive", api_dlq_redrive, R_BODY },
    { API_POST, "/dlq/purge", api_dlq_purge, R_BODY },
    { API_POST, "/migrations/verify", api_migrate_verify, R_BODY | R_READ },
    { API_POST, "/migrations/cutover", api_migrate_cutover, R_BODY },
    { API_POST, "/backfill", api_jobs_create, R_BODY },
    { API_GET, "/backfill", api_jobs_list, R_READ },
    { API_GET, "/backfill/{id}", api_jobs_get, R_READ },
    { API_DELETE, "/backfill/{id}", api_jobs_delete, 0 },
    { API_POST, "/backfill/{id}/pause", api_jobs_pause, 0 },
    { API_POST, "/backfill/{id}/resume", api_jobs_resume, 0 },
    { API_POST, "/backfill/{id}/cancel", api_jobs_cancel, 0 },
    { API_PUT, C "/points", api_points_upsert, R_BODY },
    { API_POST, C "/points", api_points_retrieve, R_BODY | R_READ },
    { API_GET, C "/points/{id}", api_points_get, R_READ },
    { API_POST, C "/points/delete", api_points_delete, R_BODY },
    { API_POST, C "/points/payload", api_points_set_payload, R_BODY },
    { API_PUT, C "/points/payload", api_points_overwrite_payload, R_BODY },
    { API_POST, C "/points/payload/delete", api_points_delete_payload, R_BODY },
    { API_POST, C "/points/payload/clear", api_points_clear_payload, R_BODY },
    { API_PUT, C "/points/vectors", api_points_update_vectors, R_BODY },
    { API_POST, C "/points/vectors/delete", api_points_delete_vectors, R_BODY },
    { API_POST, C "/points/batch", api_points_batch, R_BODY },
    { API_POST, C "/points/scroll", api_points_scroll, R_READ },
    { API_POST, C "/points/count", api_points_count, R_READ },
    { API_POST, C "/points/search", api_points_search, R_BODY | R_READ },
    { API_POST, C "/points/search/batch", api_points_search_batch, R_BODY | R_READ },
    { API_POST, C "/points/query", api_points_query, R_READ },
    { API_POST, C "/points/query/batch", api_points_query_batch, R_BODY | R_READ },
    { API_PUT, C "/index", h_index_create, R_BODY },
    { API_DELETE, C "/index/{field_name}", h_index_delete, 0 },
    /* Qdrant API that veclog does not implement: 501 naming the path */
    { API_POST, C "/points/query/groups", api_points_query_groups, R_BODY | R_READ },
    { API_OTHER, C "/points/search/groups", h_unimplemented, R_READ },
    { API_OTHER, C "/points/search/matrix/pairs", h_unimplemented, R_READ },
    { API_OTHER, C "/points/search/matrix/offsets", h_unimplemented, R_READ },
    { API_OTHER, C "/points/recommend", h_unimplemented, R_READ },
    { API_OTHER, C "/points/recommend/batch", h_unimplemented, R_READ },
    { API_OTHER, C "/points/recommend/groups", h_unimplemented, R_READ },
    { API_OTHER, C "/points/discover", h_unimplemented, R_READ },
    { API_OTHER, C "/points/discover/batch", h_unimplemented, R_READ },
    { API_OTHER, C "/facet", h_unimplemented, R_READ },
    { API_OTHER, C "/vectors/{vector_name}", h_unimplemented, 0 },
    { API_OTHER, C "/shards", h_unimplemented, 0 },
    { API_OTHER, C "/shards/delete", h_unimplemented, 0 },
    { API_OTHER, C "/cluster", h_unimplemented, 0 },
    { API_OTHER, C "/optimizations", h_unimplemented, R_READ },
    { API_OTHER, C "/snapshots", h_unimplemented, 0 },
    { API_OTHER, C "/snapshots/upload", h_unimplemented, 0 },
    { API_OTHER, C "/snapshots/recover", h_unimplemented, 0 },
    { API_OTHER, C "/snapshots/{snapshot_name}", h_unimplemented, 0 },
    { API_OTHER, C "/shards/{shard_id}/snapshot", h_unimplemented, 0 },
    { API_OTHER, C "/shards/{shard_id}/snapshots", h_unimplemented, 0 },
    { API_OTHER, C "/shards/{shard_id}/snapshots/upload", h_unimplemented, 0 },
    { API_OTHER, C "/shards/{shard_id}/snapshots/recover", h_unimplemented, 0 },
    { API_OTHER, C "/shards/{shard_id}/snapshots/{snapshot_name}", h_unimplemented, 0 },
    { API_OTHER, "/snapshots", h_unimplemented, 0 },
    { API_OTHER, "/snapshots/{snapshot_name}", h_unimplemented, 0 },
    { API_OTHER, "/cluster", h_unimplemented, R_READ },
    { API_OTHER, "/cluster/telemetry", h_unimplemented, R_READ },
    { API_OTHER, "/cluster/recover", h_unimplemented, 0 },
    { API_OTHER, "/cluster/peer/{peer_id}", h_unimplemented, 0 },
    { API_OTHER, "/issues", h_unimplemented, R_READ },
    { API_OTHER, "/quotas", h_unimplemented, R_READ },
};
#undef C

/* Match path against pattern; "{...}" segments capture one segment. */
static bool route_match(const char *pattern, const char *path, api_ctx_t *x)
{
    const char *p = pattern, *s = path;
    int n = 0;

    while (*p && *s) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            size_t len = strcspn(s, "/");
            if (len == 0 || len >= sizeof(x->argbuf[0]) || n == API_MAX_ARGS)
                return false;
            memcpy(x->argbuf[n], s, len);
            x->argbuf[n][len] = '\0';
            x->args[n] = x->argbuf[n];
            n++;
            p = pe + 1;
            s += len;
            continue;
        }
        if (*p != *s)
            return false;
        p++;
        s++;
    }
    if (*s == '/' && s[1] == '\0' && *p == '\0')
        s++;
    if (*p != '\0' || *s != '\0')
        return false;
    x->nargs = n;
    return true;
}

static const char *method_name(int m)
{
    static const char *const names[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OTHER" };
    return m >= 0 && m <= API_OTHER ? names[m] : "OTHER";
}

/* Find the route; *path_known tells 405 from 404. */
static const route_t *route_find(const api_req_t *req, api_ctx_t *x, bool *path_known)
{
    const route_t *other = NULL;

    *path_known = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (!route_match(routes[i].pattern, req->path, x))
            continue;
        *path_known = true;
        int m = req->method == API_HEAD ? API_GET : req->method;
        if (routes[i].method == m)
            return &routes[i];
        if (routes[i].method == API_OTHER)
            other = &routes[i];
    }
    if (other != NULL)
        route_match(other->pattern, req->path, x);
    return other;
}

static bool query_flag(const char *query, const char *name)
{
    size_t nl = strlen(name);
    for (const char *q = query; q && *q;) {
        if (strncmp(q, name, nl) == 0 && q[nl] == '=')
            return strncasecmp(q + nl + 1, "true", 4) == 0 || q[nl + 1] == '1';
        q = strchr(q, '&');
        if (q)
            q++;
    }
    return false;
}

/* The percent-decoded value of name in the query string, or false. */
static bool query_value(const char *query, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name), n = 0;
    for (const char *q = query; q && *q; q = strchr(q, '&') ? strchr(q, '&') + 1 : NULL) {
        if (strncmp(q, name, nl) != 0 || q[nl] != '=')
            continue;
        for (const char *v = q + nl + 1; *v && *v != '&' && n + 1 < cap; v++) {
            unsigned int c;
            if (*v == '%' && sscanf(v + 1, "%2x", &c) == 1) {
                buf[n++] = (char)c;
                v += 2;
            } else {
                buf[n++] = *v == '+' ? ' ' : *v;
            }
        }
        buf[n] = '\0';
        return true;
    }
    return false;
}

/* Read-your-writes: ?wait_offsets=topic:partition:offset[,...] makes a
 * read wait (up to ?wait_timeout_ms, default 5000) until this node's Kafka
 * ingest has applied those messages. */
static int wait_offsets(api_t *a, const char *query, err_t *err)
{
    char list[2048], tbuf[32];
    long timeout = 5000;

    if (!query_value(query, "wait_offsets", list, sizeof(list)))
        return ERR_OK;
    const api_ingest_hooks_t *hk = ingest_hooks(a);
    if (hk == NULL)
        return err_set(err, ERR_INVALID, "wait_offsets: Kafka ingest is not running on this node");
    if (query_value(query, "wait_timeout_ms", tbuf, sizeof(tbuf))) {
        char *end;
        timeout = strtol(tbuf, &end, 10);
        if (*end != '\0' || timeout < 0 || timeout > 600000)
            return err_set(err, ERR_INVALID, "wait_timeout_ms: expected 0..600000");
    }
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *c2 = strrchr(tok, ':'), *c1;
        char *end1, *end2;
        if (c2 == NULL || (*c2 = '\0', c1 = strrchr(tok, ':')) == NULL)
            return err_set(err, ERR_INVALID, "wait_offsets: expected topic:partition:offset");
        *c1 = '\0';
        long part = strtol(c1 + 1, &end1, 10);
        long long off = strtoll(c2 + 1, &end2, 10);
        if (*tok == '\0' || *end1 || *end2 || c1[1] == '\0' || c2[1] == '\0' || part < 0 || off < 0)
            return err_set(err, ERR_INVALID, "wait_offsets: expected topic:partition:offset");
        err_t werr;
        int rc = hk->wait(hk->ctx, tok, (int32_t)part, (int64_t)off, (int)timeout, &werr);
        if (rc == ERR_TIMEOUT) /* 503: retriable, the write is not visible yet */
            return err_setr(err, ERR_BUSY, true, "wait_offsets: %.400s", werr.msg);
        if (rc != ERR_OK)
            return err_set(err, rc, "%.450s", werr.msg);
    }
    return ERR_OK;
}

static int check_auth(api_t *a, const api_req_t *req, const route_t *r, err_t *err)
{
    if (a->api_key == NULL && a->ro_key == NULL)
        return ERR_OK;
    if (req->api_key != NULL && a->api_key != NULL && strcmp(req->api_key, a->api_key) == 0)
        return ERR_OK;
    if (req->api_key != NULL && a->ro_key != NULL && strcmp(req->api_key, a->ro_key) == 0) {
        if (r != NULL && (r->flags & R_READ))
            return ERR_OK;
        return err_set(err, ERR_FORBIDDEN, "Forbidden: read-only api key cannot perform this operation");
    }
    return err_set(err, ERR_FORBIDDEN, "Must provide a valid API key or an Authorization bearer token");
}

static void respond_json(api_resp_t *resp, int status, cJSON *doc)
{
    resp->status = status;
    resp->body = cJSON_PrintUnformatted(doc);
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    resp->content_type = "application/json";
    if (resp->body == NULL) {
        resp->status = 500;
        resp->body = strdup("{\"status\":{\"error\":\"out of memory\"},\"time\":0}");
        resp->body_len = resp->body ? strlen(resp->body) : 0;
    }
}

static void respond_text(api_resp_t *resp, int status, const char *text)
{
    resp->status = status;
    resp->body = strdup(text);
    resp->body_len = resp->body ? strlen(resp->body) : 0;
    resp->content_type = "text/plain; charset=utf-8";
}

static void respond_error(api_resp_t *resp, int code, const char *msg, double t0)
{
    char full[ERR_MSG_MAX + 32];
    const char *prefix = code == ERR_INVALID ? "Wrong input: " : code == ERR_NOT_FOUND ? "Not found: " : "";
    cJSON *doc = cJSON_CreateObject(), *st = cJSON_AddObjectToObject(doc, "status");

    if (strncmp(msg, prefix, strlen(prefix)) == 0)
        prefix = "";
    snprintf(full, sizeof(full), "%s%s", prefix, msg);
    cJSON_AddStringToObject(st, "error", full);
    cJSON_AddNumberToObject(doc, "time", now_s() - t0);
    respond_json(resp, api_status_of(code), doc);
    cJSON_Delete(doc);
}

static bool service_endpoint(api_t *a, const api_req_t *req, api_resp_t *resp);

void api_handle(api_t *a, const api_req_t *req, api_resp_t *resp)
{
    double t0 = now_s();
    api_ctx_t x = { .a = a, .req = req };
    cJSON *result = NULL;
    bool known;
    err_t err;
    int rc;

    memset(resp, 0, sizeof(*resp));
    snprintf(resp->route, sizeof(resp->route), "%s", "unmatched");
    if (service_endpoint(a, req, resp))
        return;
    const route_t *r = route_find(req, &x, &known);
    if (r != NULL)
        snprintf(resp->route, sizeof(resp->route), "%s", r->pattern);
    if ((rc = check_auth(a, req, r, &err)) != ERR_OK) {
        respond_error(resp, rc, err.msg, t0);
        return;
    }
    if (r == NULL) {
        respond_error(resp, known ? ERR_INVALID : ERR_NOT_FOUND,
                      known ? "method not allowed for this path" : "no such path", t0);
        if (known)
            resp->status = 405;
        return;
    }
    if (!a->ready) {
        respond_error(resp, ERR_BUSY, "Service is starting up: recovery in progress", t0);
        return;
    }
    if (req->body != NULL && req->body_len > 0) {
        /* the whole body must be one JSON value: cJSON stops after the
         * first one and would ignore trailing text ("{} x", "{}{}") */
        const char *end = NULL;
        x.body = cJSON_ParseWithLengthOpts(req->body, req->body_len, &end, false);
        while (x.body != NULL && end < req->body + req->body_len &&
               (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
        if (x.body != NULL && end != req->body + req->body_len) {
            cJSON_Delete(x.body);
            x.body = NULL;
        }
        if (x.body == NULL) {
            respond_error(resp, ERR_INVALID, "Json deserialize error: request body is not valid JSON", t0);
            return;
        }
    } else if (r->flags & R_BODY) {
        respond_error(resp, ERR_INVALID, "request body is required", t0);
        return;
    }
    x.wait = query_flag(req->query, "wait");
    err_clear(&err);
    rc = (r->flags & R_READ) ? wait_offsets(a, req->query, &err) : ERR_OK;
    if (rc == ERR_OK)
        rc = r->fn(&x, &result, &err);
    if (rc != ERR_OK) {
        respond_error(resp, rc, err.msg, t0);
    } else {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "result", result ? result : cJSON_CreateNull());
        cJSON_AddStringToObject(doc, "status", "ok");
        cJSON_AddNumberToObject(doc, "time", now_s() - t0);
        respond_json(resp, 200, doc);
        cJSON_Delete(doc);
    }
    cJSON_Delete(x.body);
}

/* ---- health and metrics (plain text, no envelope) ---------------------- */

static void metrics_collections(api_t *a, char **buf, size_t *len, size_t *cap)
{
    cJSON *list = catalog_list_json(a->cat), *it;

    metrics_appendf(buf, len, cap,
                    "# HELP veclog_collection_points Live points per collection\n"
                    "# TYPE veclog_collection_points gauge\n"
                    "# HELP veclog_wal_bytes Bytes held in the collection's WAL segments\n"
                    "# TYPE veclog_wal_bytes gauge\n"
                    "# HELP veclog_wal_fsyncs_total WAL fdatasync calls\n"
                    "# TYPE veclog_wal_fsyncs_total counter\n"
                    "# HELP veclog_wal_fsync_seconds_total Time spent in WAL fdatasync\n"
                    "# TYPE veclog_wal_fsync_seconds_total counter\n"
                    "# HELP veclog_wal_appends_total WAL records appended since start\n"
                    "# TYPE veclog_wal_appends_total counter\n");
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(list, "collections")) {
        const char *name = cJSON_GetObjectItem(it, "name")->valuestring;
        catalog_handle_t *h;
        coll_info_t info;
        if (catalog_acquire(a->cat, name, &h, NULL) != ERR_OK)
            continue;
        coll_info_get(catalog_handle_coll(h), &info);
        catalog_release(h);
        metrics_appendf(buf, len, cap,
                        "veclog_collection_points{collection=\"%s\"} %llu\n"
                        "veclog_wal_bytes{collection=\"%s\"} %llu\n"
                        "veclog_wal_fsyncs_total{collection=\"%s\"} %llu\n"
                        "veclog_wal_fsync_seconds_total{collection=\"%s\"} %.6f\n"
                        "veclog_wal_appends_total{collection=\"%s\"} %llu\n",
                        name, (unsigned long long)info.points, name,
                        (unsigned long long)info.wal.bytes, name,
                        (unsigned long long)info.wal.syncs, name, info.wal.sync_ns_total / 1e9,
                        name, (unsigned long long)info.wal.appends);
    }
    cJSON_Delete(list);
}

static bool service_endpoint(api_t *a, const api_req_t *req, api_resp_t *resp)
{
    const char *p = req->path;

    if (req->method != API_GET && req->method != API_HEAD)
        return false;
    if (strcmp(p, "/healthz") == 0 || strcmp(p, "/livez") == 0) {
        snprintf(resp->route, sizeof(resp->route), "%s", p);
        respond_text(resp, 200, p[1] == 'h' ? "healthz check passed" : "livez check passed");
        return true;
    }
    if (strcmp(p, "/readyz") == 0) {
        snprintf(resp->route, sizeof(resp->route), "%s", p);
        if (a->ready)
            respond_text(resp, 200, "all shards are ready");
        else
            respond_text(resp, 503, "recovery in progress");
        return true;
    }
    if (strcmp(p, "/metrics") == 0) {
        char *buf = NULL;
        size_t len = 0, cap = 0;
        err_t err;
        snprintf(resp->route, sizeof(resp->route), "%s", p);
        if (check_auth(a, req, &(route_t){ .flags = R_READ }, &err) != ERR_OK) {
            respond_error(resp, ERR_FORBIDDEN, err.msg, now_s());
            return true;
        }
        metrics_render(a->metrics, &buf, &len, &cap);
        metrics_collections(a, &buf, &len, &cap);
        const api_ingest_hooks_t *hk = ingest_hooks(a);
        char *im = hk ? hk->metrics(hk->ctx) : NULL;
        if (im != NULL)
            metrics_appendf(&buf, &len, &cap, "%s", im);
        free(im);
        if ((im = api_jobs_metrics(a)) != NULL)
            metrics_appendf(&buf, &len, &cap, "%s", im);
        free(im);
        resp->status = buf ? 200 : 500;
        resp->body = buf ? buf : strdup("out of memory");
        resp->body_len = buf ? len : strlen(resp->body);
        resp->content_type = "text/plain; version=0.0.4";
        return true;
    }
    return false;
}

void api_observe(api_t *a, const char *route, int method, int status, double seconds)
{
    metrics_observe(a->metrics, route, method_name(method), status, seconds);
}

int api_new(catalog_t *cat, const api_opts_t *opts, api_t **out, err_t *err)
{
    api_t *a = calloc(1, sizeof(*a));

    *out = NULL;
    if (a == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    a->cat = cat;
    a->metrics = metrics_new();
    a->version = strdup(opts && opts->version ? opts->version : "0");
    a->api_key = opts && opts->api_key && *opts->api_key ? strdup(opts->api_key) : NULL;
    a->ro_key = opts && opts->read_only_api_key && *opts->read_only_api_key
                    ? strdup(opts->read_only_api_key) : NULL;
    a->started = now_s();
    if (a->metrics == NULL || a->version == NULL) {
        api_free(a);
        return err_set(err, ERR_NOMEM, "no memory");
    }
    *out = a;
    return ERR_OK;
}

void api_set_ingest(api_t *a, const api_ingest_hooks_t *hooks)
{
    api_ingest_hooks_t *copy = malloc(sizeof(*copy));
    if (copy == NULL)
        return;
    *copy = *hooks;
    __atomic_store_n(&a->ingest, copy, __ATOMIC_RELEASE);
}

void api_set_dlq(api_t *a, const api_dlq_hooks_t *hooks)
{
    api_dlq_hooks_t *copy = malloc(sizeof(*copy));
    if (copy == NULL)
        return;
    *copy = *hooks;
    __atomic_store_n(&a->dlq, copy, __ATOMIC_RELEASE);
}

void api_set_ready(api_t *a, bool ready)
{
    __atomic_store_n(&a->ready, ready ? 1 : 0, __ATOMIC_RELEASE);
}

void api_free(api_t *a)
{
    if (a == NULL)
        return;
    metrics_free(a->metrics);
    free(a->ingest);
    free(a->dlq);
    api_jobs_free(a);
    free(a->api_key);
    free(a->ro_key);
    free(a->version);
    free(a);
}
