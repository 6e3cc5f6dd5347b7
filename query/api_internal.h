/*
 * api_internal.h - shared by api.c (routing, envelope, service and
 * collection endpoints) and api_points.c (points, search and query).
 */
#ifndef VECLOG_API_INTERNAL_H
#define VECLOG_API_INTERNAL_H

#include <cjson/cJSON.h>

#include "api.h"
#include "embed/embed.h"
#include "metrics.h"
#include "store/coll.h"

struct api {
    catalog_t *cat;
    char *api_key;
    char *ro_key;
    char *version;
    metrics_t *metrics;
    volatile int ready;
    api_ingest_hooks_t *ingest;   /* NULL until api_set_ingest; set once */
    api_dlq_hooks_t *dlq;         /* NULL until api_set_dlq; set once */
    embed_reg_t *embed;           /* NULL until api_set_embed (borrowed); set once */
    api_backfill_hooks_t *backfill; /* NULL until api_set_backfill; set once (api_jobs.c) */
    double started;
};

#define API_MAX_ARGS 4

typedef struct api_ctx {
    api_t *a;
    const api_req_t *req;
    cJSON *body;              /* parsed body; NULL when none was sent */
    const char *args[API_MAX_ARGS];
    char argbuf[API_MAX_ARGS][512];
    int nargs;
    bool wait;                /* ?wait=true */
} api_ctx_t;

/* A handler fills *result (owned JSON, the "result" of the envelope) or
 * returns an error code with err filled. */
typedef int (*api_handler_fn)(api_ctx_t *x, cJSON **result, err_t *err);

/* api_dlq.c handlers */
int api_dlq_list(api_ctx_t *x, cJSON **result, err_t *err);
int api_dlq_show(api_ctx_t *x, cJSON **result, err_t *err);
int api_dlq_redrive(api_ctx_t *x, cJSON **result, err_t *err);
int api_dlq_purge(api_ctx_t *x, cJSON **result, err_t *err);

/* api_migrate.c handlers */
int api_migrate_verify(api_ctx_t *x, cJSON **result, err_t *err);
int api_migrate_cutover(api_ctx_t *x, cJSON **result, err_t *err);

/* api_jobs.c handlers (backfill jobs) and their /metrics text (new
 * string or NULL) */
int api_jobs_create(api_ctx_t *x, cJSON **result, err_t *err);
int api_jobs_list(api_ctx_t *x, cJSON **result, err_t *err);
int api_jobs_get(api_ctx_t *x, cJSON **result, err_t *err);
int api_jobs_delete(api_ctx_t *x, cJSON **result, err_t *err);
int api_jobs_pause(api_ctx_t *x, cJSON **result, err_t *err);
int api_jobs_resume(api_ctx_t *x, cJSON **result, err_t *err);
int api_jobs_cancel(api_ctx_t *x, cJSON **result, err_t *err);
char *api_jobs_metrics(api_t *a);
void api_jobs_free(api_t *a);

/* api_points.c handlers */
int api_points_upsert(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_retrieve(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_get(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_delete(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_set_payload(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_overwrite_payload(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_delete_payload(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_clear_payload(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_update_vectors(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_delete_vectors(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_batch(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_scroll(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_count(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_search(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_search_batch(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_query(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_query_batch(api_ctx_t *x, cJSON **result, err_t *err);
int api_points_query_groups(api_ctx_t *x, cJSON **result, err_t *err);

/* api_infer.c: Qdrant Documents embedded with the api's registry.
 * Embed op's pending Documents for collection c (dims checked): 400 for
 * an unknown model, a dim mismatch or a refused text, 503 (ERR_BUSY) for
 * a retriable embedder failure. */
int api_infer_op(api_t *a, coll_t *c, op_t *op, err_t *err);
/* Embed one query text for vector `using` (NULL = unnamed) of c into a new
 * *vec of *dim floats (caller frees); errors as api_infer_op. */
int api_infer_query(api_t *a, coll_t *c, const char *using, const char *text,
                    const char *model, const char *where, float **vec, uint32_t *dim, err_t *err);

/* Take a reference on the collection named by the path (alias-aware). */
int api_coll_acquire(api_ctx_t *x, catalog_handle_t **h, err_t *err);

/* Compile body's optional "filter" (NULL when absent). */
int api_filter_field(const cJSON *body, filter_t **f, err_t *err);


/* Optional unsigned integer field with a default. */
int api_uint_field(const cJSON *obj, const char *key, size_t dflt, size_t min, size_t *out,
                   err_t *err);

#endif
