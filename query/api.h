/*
 * api.h - the Qdrant REST API, independent of the transport.
 *
 * api_handle takes a parsed HTTP request (method, path, query string,
 * body) and produces the status code and the JSON body Qdrant would send:
 * {"result": ..., "status": "ok", "time": s} or {"status": {"error": msg},
 * "time": s}.  http.c is the libevent transport around it; tests call it
 * directly.  Routing is a table (api.c) from method + path pattern to a
 * handler; paths of Qdrant's spec that veclog does not implement answer
 * 501 with an error naming the path, never a wrong success.
 *
 * Threads: api_handle is thread-safe (the catalog and collections are);
 * the HTTP node calls it from its worker threads.
 */
#ifndef VECLOG_API_H
#define VECLOG_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store/catalog.h"

typedef struct api api_t;

enum api_method { API_GET, API_POST, API_PUT, API_PATCH, API_DELETE, API_HEAD, API_OTHER };

typedef struct api_req {
    int method;               /* enum api_method */
    const char *path;         /* decoded path, without the query string */
    const char *query;        /* raw query string or NULL */
    const char *body;         /* may be NULL */
    size_t body_len;
    const char *api_key;      /* "api-key" header or bearer token, NULL if none */
} api_req_t;

typedef struct api_resp {
    int status;               /* HTTP status */
    char *body;               /* malloc'd; caller frees */
    size_t body_len;
    const char *content_type; /* static string */
    char route[64];           /* route label for metrics ("/collections/{name}/points/query") */
} api_resp_t;

/* What the query node may ask of Kafka ingest, which lives in another
 * module: main wires these to ingest_status_json / ingest_wait_applied /
 * ingest_metrics_text.  Functions are called from worker threads. */
typedef struct api_ingest_hooks {
    void *ctx;
    cJSON *(*status)(void *ctx);
    int (*wait)(void *ctx, const char *topic, int32_t partition, int64_t offset, int timeout_ms,
                err_t *err);
    char *(*metrics)(void *ctx);
} api_ingest_hooks_t;

/* What the query node may ask of the dead-letter tool (dlq/redrive.h),
 * wired by main when ingest runs.  Results are owned JSON documents; an
 * error code with err filled otherwise.  Called from worker threads: the
 * implementation serializes as it needs. */
typedef struct api_dlq_ref {
    int32_t partition;
    int64_t offset;
} api_dlq_ref_t;

typedef struct api_dlq_redrive {
    bool all;
    const api_dlq_ref_t *refs;      /* when !all */
    size_t n_refs;
    bool dry_run;
    int max_redrives;               /* 0 = the default (3) */
    bool force;
    bool apply;                     /* "mode": "apply" (write to the store), else
                                     * "produce" (back to the original topic) */
} api_dlq_redrive_t;

typedef struct api_dlq_hooks {
    void *ctx;
    int (*list)(void *ctx, cJSON **out, err_t *err);
    int (*show)(void *ctx, const api_dlq_ref_t *ref, cJSON **out, err_t *err);
    int (*redrive)(void *ctx, const api_dlq_redrive_t *req, cJSON **out, err_t *err);
    int (*purge)(void *ctx, const api_dlq_ref_t *until, cJSON **out, err_t *err); /* NULL = all */
} api_dlq_hooks_t;

typedef struct api_opts {
    const char *api_key;            /* NULL: no authentication */
    const char *read_only_api_key;  /* NULL: none */
    const char *version;            /* veclog version string */
} api_opts_t;

/* cat is borrowed and must outlive the api.  *out owned by the caller. */
int api_new(catalog_t *cat, const api_opts_t *opts, api_t **out, err_t *err);
void api_free(api_t *a);

/* Mark the node ready (recovery done): /readyz answers 200 from then on. */
void api_set_ready(api_t *a, bool ready);

/* Connect Kafka ingest (hooks copied).  Call before api_set_ready; the
 * hooks' ctx must outlive the api. */
void api_set_ingest(api_t *a, const api_ingest_hooks_t *hooks);

/* Connect the dead-letter tool (hooks copied; ctx must outlive the api):
 * GET /dlq, GET /dlq/{partition}/{offset}, POST /dlq/redrive and POST
 * /dlq/purge answer 404 until then. */
void api_set_dlq(api_t *a, const api_dlq_hooks_t *hooks);

/* What the query node may ask of the backfill jobs (ingest/backfill.h),
 * wired by main: POST/GET /backfill, GET/DELETE /backfill/{id}, POST
 * /backfill/{id}/pause|resume|cancel.  action: "pause", "resume",
 * "cancel" or "delete".  Results are owned JSON documents.  Called from
 * worker threads. */
typedef struct api_backfill_hooks {
    void *ctx;
    int (*create)(void *ctx, const cJSON *def, cJSON **out, err_t *err);
    int (*list)(void *ctx, cJSON **out, err_t *err);
    int (*status)(void *ctx, const char *id, cJSON **out, err_t *err);
    int (*control)(void *ctx, const char *id, const char *action, cJSON **out, err_t *err);
    char *(*metrics)(void *ctx);    /* Prometheus text, new string or NULL */
} api_backfill_hooks_t;

/* Connect the backfill jobs (hooks copied; ctx must outlive the api); the
 * /backfill routes answer 404 until then.  Defined in api_jobs.c. */
void api_set_backfill(api_t *a, const api_backfill_hooks_t *hooks);

/* Connect the embedding models (embed/embed.h; borrowed, must outlive the
 * api) for Qdrant Documents ({"text", "model"}) in upserts, vector
 * updates and queries.  Call before api_set_ready.  Until then a
 * Document answers 400: its model is unknown.  Defined in api_infer.c. */
struct embed_reg;
void api_set_embed(api_t *a, struct embed_reg *reg);

/* Handle one request; resp is filled (always, even on errors). */
void api_handle(api_t *a, const api_req_t *req, api_resp_t *resp);

/* Record one finished request in the metrics (route, status, seconds). */
void api_observe(api_t *a, const char *route, int method, int status, double seconds);

/* HTTP status for an err code. */
int api_status_of(int code);

#endif
