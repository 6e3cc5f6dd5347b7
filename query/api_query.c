/*
 * api_query.c - search and query: the legacy /points/search endpoints and
 * the universal /points/query, with prefetch, rescoring and fusion.
 *
 * A query is a tree: each level has its own query, filter, using, limit
 * and score_threshold, and may have prefetches.  A level without
 * prefetches searches the collection; a level with prefetches works on
 * the union of its prefetches' results: a vector (or point id) query
 * rescores those candidates, a fusion query (rrf, dbsf) merges their
 * rankings.  A level's filter also applies to every level below it, as in
 * Qdrant, by AND-ing the filters' JSON at parse time.
 */
#include "api_internal.h"

#include "store/req.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/dist.h"

/* ---- search and query --------------------------------------------------- */

enum { FUSION_NONE = 0, FUSION_RRF, FUSION_DBSF };
#define RRF_DEFAULT_K 2 /* Qdrant's DEFAULT_RRF_K */
#define MAX_PREFETCH_DEPTH 8

typedef struct qspec {
    char *using;              /* owned */
    float *vec;               /* owned; NULL: no vector query */
    uint32_t dim;
    char *doc_text;           /* query Document, embedded into vec before running; owned */
    char *doc_model;          /* its model; owned */
    bool by_id;
    ptid_t id;
    int fusion;               /* FUSION_*: merge the prefetches' rankings */
    uint32_t rrf_k;
    float *weights;           /* rrf weights per prefetch, or NULL */
    size_t n_weights;
    cJSON *fjson;             /* effective filter: own AND every ancestor's; owned */
    filter_t *filter;         /* compiled fjson */
    size_t limit, offset;
    bool has_threshold;
    float threshold;
    coll_sel_t sel;
    bool exact;               /* params.exact */
    size_t hnsw_ef;           /* params.hnsw_ef, 0: the collection's default */
    struct qspec *pf;         /* prefetches; owned */
    size_t n_pf;
} qspec_t;

static void qspec_clear(qspec_t *q)
{
    free(q->using);
    free(q->vec);
    free(q->doc_text);
    free(q->doc_model);
    free(q->weights);
    cJSON_Delete(q->fjson);
    filter_free(q->filter);
    coll_sel_clear(&q->sel);
    for (size_t i = 0; i < q->n_pf; i++)
        qspec_clear(&q->pf[i]);
    free(q->pf);
    memset(q, 0, sizeof(*q));
}

static int floats_parse(const cJSON *arr, qspec_t *q, const char *where, err_t *err)
{
    int n = cJSON_GetArraySize(arr), i = 0;
    const cJSON *it;

    q->vec = malloc((size_t)n * sizeof(float) + 1);
    if (q->vec == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(it, arr) {
        if (cJSON_IsArray(it))
            return err_set(err, ERR_UNSUPPORTED, "%s: multivector queries are not supported", where);
        if (!cJSON_IsNumber(it))
            return err_set(err, ERR_INVALID, "%s[%d]: expected a number", where, i);
        q->vec[i++] = (float)it->valuedouble;
    }
    q->dim = (uint32_t)n;
    return ERR_OK;
}

static int params_parse(const cJSON *p, qspec_t *q, err_t *err)
{
    static const char *const fields[] = { "hnsw_ef", "exact", "quantization", "indexed_only",
                                          "acorn", "idf", NULL };
    if (p == NULL || cJSON_IsNull(p))
        return ERR_OK;
    int rc = req_fields_check(p, fields, "params", err);
    const cJSON *ef = cJSON_GetObjectItemCaseSensitive(p, "hnsw_ef");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(p, "exact");
    if (rc == ERR_OK && ef && !cJSON_IsNull(ef) && (!cJSON_IsNumber(ef) || ef->valuedouble < 1))
        rc = err_set(err, ERR_INVALID, "params.hnsw_ef: expected a positive integer");
    if (rc == ERR_OK && ex && !cJSON_IsBool(ex) && !cJSON_IsNull(ex))
        rc = err_set(err, ERR_INVALID, "params.exact: expected a boolean");
    if (rc == ERR_OK) {
        q->exact = cJSON_IsTrue(ex);
        q->hnsw_ef = ef && cJSON_IsNumber(ef) ? (size_t)ef->valuedouble : 0;
    }
    return rc;
}

/* The effective filter of a level: its own AND its parent's. */
static int filter_inherit(const cJSON *b, const cJSON *parent, qspec_t *q, err_t *err)
{
    const cJSON *own = cJSON_GetObjectItemCaseSensitive(b, "filter");

    if (own != NULL && cJSON_IsNull(own))
        own = NULL;
    if (own == NULL && parent == NULL)
        return ERR_OK;
    if (own != NULL && parent != NULL) {
        q->fjson = cJSON_CreateObject();
        cJSON *must = cJSON_AddArrayToObject(q->fjson, "must");
        cJSON_AddItemToArray(must, cJSON_Duplicate(parent, 1));
        cJSON_AddItemToArray(must, cJSON_Duplicate(own, 1));
    } else {
        q->fjson = cJSON_Duplicate(own ? own : parent, 1);
    }
    if (q->fjson == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    /* parse the caller's own filter first so errors name its fields */
    if (own != NULL && parent != NULL) {
        filter_t *f = NULL;
        int rc = filter_parse(own, &f, err);
        filter_free(f);
        if (rc != ERR_OK)
            return rc;
    }
    return filter_parse(q->fjson, &q->filter, err);
}

/* Fields shared by search and query requests. */
static int common_parse(const cJSON *b, qspec_t *q, size_t dflt_limit, const cJSON *parent,
                        err_t *err)
{
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(b, "score_threshold");
    int rc = api_uint_field(b, "limit", dflt_limit, 1, &q->limit, err);

    if (rc == ERR_OK)
        rc = api_uint_field(b, "offset", 0, 0, &q->offset, err);
    if (rc == ERR_OK && th != NULL && !cJSON_IsNull(th)) {
        if (!cJSON_IsNumber(th))
            return err_set(err, ERR_INVALID, "score_threshold: expected a number");
        q->has_threshold = true;
        q->threshold = (float)th->valuedouble;
    }
    if (rc == ERR_OK)
        rc = params_parse(cJSON_GetObjectItemCaseSensitive(b, "params"), q, err);
    if (rc == ERR_OK)
        rc = filter_inherit(b, parent, q, err);
    if (rc == ERR_OK)
        rc = coll_sel_parse(cJSON_GetObjectItemCaseSensitive(b, "with_payload"), false,
                            cJSON_GetObjectItemCaseSensitive(b, "with_vector"), false, &q->sel, err);
    const cJSON *sk = cJSON_GetObjectItemCaseSensitive(b, "shard_key");
    if (rc == ERR_OK && sk != NULL && !cJSON_IsNull(sk))
        rc = err_set(err, ERR_UNSUPPORTED, "shard_key: custom sharding is not supported");
    return rc;
}

/* SearchRequest: {"vector": [..] | {"name", "vector"}, ...}. */
static int search_parse(const cJSON *b, qspec_t *q, err_t *err)
{
    static const char *const fields[] = { "vector", "filter", "params", "limit", "offset",
                                          "with_payload", "with_vector", "score_threshold",
                                          "shard_key", NULL };
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, "vector");
    int rc = req_fields_check(b, fields, "", err);

    if (rc != ERR_OK)
        return rc;
    if (!cJSON_HasObjectItem(b, "limit"))
        return err_set(err, ERR_INVALID, "limit: missing");
    /* Qdrant's search request takes no Document (NamedVectorStruct): say where to go */
    if (req_is_document(v))
        return err_set(err, ERR_INVALID, "vector: /points/search takes no Document; use "
                       "/points/query with \"query\": {\"text\", \"model\"}");
    if (cJSON_IsObject(v)) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
        if (cJSON_HasObjectItem(v, "indices") || cJSON_IsObject(cJSON_GetObjectItem(v, "vector")))
            return err_set(err, ERR_UNSUPPORTED, "vector: sparse vectors are not supported");
        if (!cJSON_IsString(name) || !cJSON_IsArray(cJSON_GetObjectItem(v, "vector")))
            return err_set(err, ERR_INVALID, "vector: expected a list of numbers or {\"name\", \"vector\"}");
        q->using = strdup(name->valuestring);
        v = cJSON_GetObjectItem(v, "vector");
    }
    if (!cJSON_IsArray(v))
        return err_set(err, ERR_INVALID, "vector: expected a list of numbers");
    rc = floats_parse(v, q, "vector", err);
    return rc == ERR_OK ? common_parse(b, q, 10, NULL, err) : rc;
}

/* {"fusion": "rrf" | "dbsf"} or {"rrf": {"k", "weights"}}. */
static int fusion_parse(const cJSON *in, qspec_t *q, err_t *err)
{
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(in, "fusion");
    const cJSON *rrf = cJSON_GetObjectItemCaseSensitive(in, "rrf");

    q->rrf_k = RRF_DEFAULT_K;
    if (f != NULL) {
        if (cJSON_IsString(f) && strcmp(f->valuestring, "rrf") == 0)
            q->fusion = FUSION_RRF;
        else if (cJSON_IsString(f) && strcmp(f->valuestring, "dbsf") == 0)
            q->fusion = FUSION_DBSF;
        else
            return err_set(err, ERR_INVALID, "query.fusion: expected \"rrf\" or \"dbsf\"");
        return ERR_OK;
    }
    static const char *const fields[] = { "k", "weights", NULL };
    q->fusion = FUSION_RRF;
    if (cJSON_IsNull(rrf))
        return ERR_OK;
    int rc = req_fields_check(rrf, fields, "query.rrf", err);
    size_t k;
    if (rc == ERR_OK)
        rc = api_uint_field(rrf, "k", RRF_DEFAULT_K, 1, &k, err);
    if (rc != ERR_OK)
        return rc;
    q->rrf_k = (uint32_t)k;
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(rrf, "weights"), *it;
    if (w == NULL || cJSON_IsNull(w))
        return ERR_OK;
    if (!cJSON_IsArray(w))
        return err_set(err, ERR_INVALID, "query.rrf.weights: expected a list of numbers");
    q->weights = calloc((size_t)cJSON_GetArraySize(w) + 1, sizeof(float));
    if (q->weights == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(it, w) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0)
            return err_set(err, ERR_INVALID, "query.rrf.weights[%zu]: expected a number >= 0",
                           q->n_weights);
        q->weights[q->n_weights++] = (float)it->valuedouble;
    }
    return ERR_OK;
}

/* A query Document: kept as text until qspec_embed, which needs the api's
 * models and the collection (parsing has neither). */
static int query_doc(const cJSON *in, qspec_t *q, const char *where, err_t *err)
{
    const char *text, *model;
    int rc = req_document_parse(in, &text, &model, where, err);

    if (rc != ERR_OK)
        return rc;
    q->doc_text = strdup(text);
    q->doc_model = strdup(model);
    return q->doc_text && q->doc_model ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

/* Embed the Documents of q and its prefetches into their vectors. */
static int qspec_embed(api_t *a, coll_t *c, qspec_t *q, const char *where, err_t *err)
{
    int rc = ERR_OK;

    if (q->doc_text != NULL && q->vec == NULL)
        rc = api_infer_query(a, c, q->using, q->doc_text, q->doc_model, where, &q->vec,
                             &q->dim, err);
    for (size_t i = 0; i < q->n_pf && rc == ERR_OK; i++) {
        char w[64];
        snprintf(w, sizeof(w), "prefetch[%zu].query", i);
        rc = qspec_embed(a, c, &q->pf[i], w, err);
    }
    return rc;
}

/* QueryInterface: a vector, a point id, a Document, or {"nearest": ...}. */
static int query_input(const cJSON *in, qspec_t *q, err_t *err)
{
    if (in == NULL || cJSON_IsNull(in))
        return ERR_OK;
    if (cJSON_IsArray(in))
        return floats_parse(in, q, "query", err);
    if (cJSON_IsNumber(in) || cJSON_IsString(in)) {
        q->by_id = true;
        int rc = ptid_from_json(in, &q->id, err);
        if (rc != ERR_OK)
            err_wrap(err, "query");
        return rc;
    }
    if (!cJSON_IsObject(in))
        return err_set(err, ERR_INVALID, "query: expected a vector, a point id or a query object");
    const cJSON *nearest = cJSON_GetObjectItemCaseSensitive(in, "nearest");
    if (nearest != NULL) {
        const cJSON *mmr = cJSON_GetObjectItemCaseSensitive(in, "mmr");
        if (mmr != NULL && !cJSON_IsNull(mmr))
            return err_set(err, ERR_UNSUPPORTED, "query.mmr: MMR reranking is not supported");
        if (cJSON_HasObjectItem(nearest, "indices"))
            return err_set(err, ERR_UNSUPPORTED, "query.nearest: sparse vectors are not supported");
        if (req_is_document(nearest))
            return query_doc(nearest, q, "query.nearest", err);
        if (cJSON_HasObjectItem(nearest, "text") || cJSON_HasObjectItem(nearest, "image") ||
            cJSON_HasObjectItem(nearest, "object"))
            return err_set(err, ERR_UNSUPPORTED,
                           "query.nearest: image and object inference are not supported");
        if (cJSON_IsObject(nearest))
            return err_set(err, ERR_UNSUPPORTED,
                           "query.nearest: only dense vectors and point ids are supported");
        return query_input(nearest, q, err);
    }
    if (cJSON_HasObjectItem(in, "fusion") || cJSON_HasObjectItem(in, "rrf"))
        return fusion_parse(in, q, err);
    if (cJSON_HasObjectItem(in, "indices"))
        return err_set(err, ERR_UNSUPPORTED, "query: sparse vectors are not supported");
    if (req_is_document(in))
        return query_doc(in, q, "query", err);
    if (cJSON_HasObjectItem(in, "text") || cJSON_HasObjectItem(in, "image") ||
        cJSON_HasObjectItem(in, "object"))
        return err_set(err, ERR_UNSUPPORTED, "query: image and object inference are not supported");
    return err_set(err, ERR_UNSUPPORTED, "query.%s is not supported by veclog",
                   in->child ? in->child->string : "{}");
}

static int query_parse_level(const cJSON *b, qspec_t *q, const cJSON *parent, int depth,
                             err_t *err);

static int prefetch_parse(const cJSON *pf, qspec_t *q, int depth, err_t *err)
{
    static const char *const fields[] = { "prefetch", "query", "using", "filter", "params",
                                          "score_threshold", "limit", "lookup_from", NULL };
    size_t n = cJSON_IsArray(pf) ? (size_t)cJSON_GetArraySize(pf) : 1;
    const cJSON *it = cJSON_IsArray(pf) ? pf->child : pf;

    if (depth >= MAX_PREFETCH_DEPTH)
        return err_set(err, ERR_INVALID, "prefetch: nested more than %d levels", MAX_PREFETCH_DEPTH);
    q->pf = calloc(n + 1, sizeof(qspec_t));
    if (q->pf == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    for (size_t i = 0; i < n && it != NULL; i++, it = it->next) {
        char where[32];
        snprintf(where, sizeof(where), "prefetch[%zu]", i);
        int rc = req_fields_check(it, fields, where, err);
        q->n_pf++;
        if (rc == ERR_OK)
            rc = query_parse_level(it, &q->pf[i], q->fjson, depth + 1, err);
        if (rc != ERR_OK)
            return strncmp(err->msg, "prefetch", 8) == 0 ? rc : err_wrap(err, "%s", where);
    }
    return ERR_OK;
}

static int query_parse_level(const cJSON *b, qspec_t *q, const cJSON *parent, int depth,
                             err_t *err)
{
    const cJSON *pf = cJSON_GetObjectItemCaseSensitive(b, "prefetch");
    const cJSON *lf = cJSON_GetObjectItemCaseSensitive(b, "lookup_from");
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(b, "using");
    int rc;

    if (lf != NULL && !cJSON_IsNull(lf))
        return err_set(err, ERR_UNSUPPORTED, "lookup_from is not supported yet");
    if (u != NULL && !cJSON_IsNull(u)) {
        if (!cJSON_IsString(u))
            return err_set(err, ERR_INVALID, "using: expected a string");
        q->using = strdup(u->valuestring);
    }
    rc = query_input(cJSON_GetObjectItemCaseSensitive(b, "query"), q, err);
    if (rc == ERR_OK)
        rc = common_parse(b, q, 10, parent, err);
    if (rc == ERR_OK && pf != NULL && !cJSON_IsNull(pf))
        rc = prefetch_parse(pf, q, depth, err);
    if (rc != ERR_OK)
        return rc;
    if (q->fusion != FUSION_NONE && q->n_pf == 0)
        return err_set(err, ERR_INVALID, "query: fusion needs prefetch");
    if (q->n_pf > 0 && q->fusion == FUSION_NONE && q->vec == NULL && !q->by_id &&
        q->doc_text == NULL)
        return err_set(err, ERR_UNSUPPORTED,
                       "query: with prefetch, give a vector, a point id or a fusion query");
    if (q->weights != NULL && q->n_weights != q->n_pf)
        return err_set(err, ERR_INVALID,
                       "query.rrf.weights: %zu weights for %zu prefetches", q->n_weights, q->n_pf);
    return ERR_OK;
}

static int query_parse(const cJSON *b, qspec_t *q, err_t *err)
{
    static const char *const fields[] = { "shard_key", "prefetch", "query", "using", "filter",
                                          "params", "score_threshold", "limit", "offset",
                                          "with_vector", "with_payload", "lookup_from", NULL };
    int rc = req_fields_check(b, fields, "", err);
    return rc == ERR_OK ? query_parse_level(b, q, NULL, 0, err) : rc;
}

/* Run a parsed search; *out is a JSON array of ScoredPoint.  With only
 * (prefetch candidates), score just those points. */
static int qspec_run(coll_t *c, qspec_t *q, const ptid_t *only, size_t n_only, cJSON **out,
                     err_t *err)
{
    uint32_t n_defs;
    const coll_vector_def_t *defs = coll_vectors(c, &n_defs);
    int k = -1;

    for (uint32_t i = 0; i < n_defs; i++)
        if (strcmp(defs[i].name, q->using ? q->using : "") == 0)
            k = (int)i;
    if (q->vec == NULL && !q->by_id) {
        coll_scroll_req_t req = { .filter = q->filter, .limit = q->limit + q->offset,
                                  .sel = &q->sel, .as_scored = true };
        cJSON *next = NULL;
        int rc = coll_scroll(c, &req, out, &next, err);
        cJSON_Delete(next);
        for (size_t i = 0; rc == ERR_OK && i < q->offset && cJSON_GetArraySize(*out) > 0; i++)
            cJSON_DeleteItemFromArray(*out, 0);
        return rc;
    }
    if (k < 0)
        return err_set(err, ERR_INVALID, "Vector with name `%s` is not configured in this collection",
                       q->using ? q->using : "");
    if (q->by_id) {
        q->vec = malloc(defs[k].dim * sizeof(float) + 1);
        if (q->vec == NULL)
            return err_set(err, ERR_NOMEM, "no memory");
        int rc = coll_vector_get(c, &q->id, q->using, q->vec, defs[k].dim, &q->dim, err);
        if (rc != ERR_OK)
            return rc;
    }
    /* never more hits than points: coll_search allocates limit entries up
     * front, and limit and offset may each be up to 1e12 (the slack covers
     * points inserted meanwhile) */
    coll_info_t info;
    size_t want = q->limit + q->offset + (q->by_id ? 1 : 0);
    coll_info_get(c, &info);
    if (want > info.points + 1024)
        want = (size_t)info.points + 1024;
    coll_search_req_t req = { .using = q->using, .vector = q->vec, .dim = q->dim,
                              .filter = q->filter, .limit = want,
                              .has_threshold = q->has_threshold, .score_threshold = q->threshold,
                              .sel = &q->sel, .only_ids = only, .n_only_ids = n_only,
                              .exact = q->exact, .hnsw_ef = q->hnsw_ef };
    int rc = coll_search(c, &req, out, err);
    if (rc != ERR_OK)
        return rc;
    /* query by id: the point itself is not a result */
    for (int i = 0; q->by_id && i < cJSON_GetArraySize(*out); i++) {
        ptid_t got;
        if (ptid_from_json(cJSON_GetObjectItem(cJSON_GetArrayItem(*out, i), "id"), &got, NULL) == ERR_OK &&
            ptid_eq(&got, &q->id)) {
            cJSON_DeleteItemFromArray(*out, i);
            break;
        }
    }
    for (size_t i = 0; i < q->offset && cJSON_GetArraySize(*out) > 0; i++)
        cJSON_DeleteItemFromArray(*out, 0);
    while ((size_t)cJSON_GetArraySize(*out) > q->limit)
        cJSON_DeleteItemFromArray(*out, cJSON_GetArraySize(*out) - 1);
    return ERR_OK;
}

/* ---- prefetch and fusion ----------------------------------------------- */

typedef struct cands {
    ptid_t *ids;
    float *scores;
    size_t n;
    bool lower_better;        /* distances (Euclid, Manhattan) */
} cands_t;

static void cands_free(cands_t *c)
{
    free(c->ids);
    free(c->scores);
    memset(c, 0, sizeof(*c));
}

static int cands_from_json(const cJSON *arr, cands_t *c, err_t *err)
{
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;
    const cJSON *it;

    c->ids = calloc(n + 1, sizeof(ptid_t));
    c->scores = calloc(n + 1, sizeof(float));
    if (c->ids == NULL || c->scores == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(it, arr) {
        if (ptid_from_json(cJSON_GetObjectItem(it, "id"), &c->ids[i], NULL) != ERR_OK)
            continue;
        c->scores[i++] = (float)cJSON_GetObjectItem(it, "score")->valuedouble;
    }
    c->n = i;
    return ERR_OK;
}

static bool metric_lower_better(coll_t *c, const qspec_t *q)
{
    uint32_t n;
    const coll_vector_def_t *defs = coll_vectors(c, &n);
    if (q->fusion != FUSION_NONE || (q->vec == NULL && !q->by_id))
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(defs[i].name, q->using ? q->using : "") == 0)
            return !dist_higher_better((enum dist_metric)defs[i].metric);
    return false;
}

typedef struct fused {
    ptid_t id;
    float score;
} fused_t;

static int fused_cmp(const void *a, const void *b)
{
    const fused_t *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return ptid_cmp(&x->id, &y->id);
}

/* Distribution-based normalisation (Qdrant's dbsf): mean +- 3 sample
 * standard deviations map to 0..1; distances are negated first so that
 * higher is better in every list. */
static void dbsf_norm(const cands_t *l, float *out)
{
    double mean = 0, m2 = 0;
    for (size_t i = 0; i < l->n; i++) {
        double s = l->lower_better ? -l->scores[i] : l->scores[i], d = s - mean;
        mean += d / (double)(i + 1);
        m2 += d * (s - mean);
    }
    double sd = l->n > 1 ? sqrt(m2 / (double)(l->n - 1)) : 0, lo = mean - 3 * sd, hi = mean + 3 * sd;
    for (size_t i = 0; i < l->n; i++) {
        double s = l->lower_better ? -l->scores[i] : l->scores[i];
        out[i] = (l->n < 2 || hi == lo) ? 0.5f : (float)((s - lo) / (hi - lo));
    }
}

/* Merge the prefetch lists into one ranking, best first. */
static int fuse(const qspec_t *q, const cands_t *lists, size_t n_lists, fused_t **out, size_t *n_out,
                err_t *err)
{
    size_t total = 0, n = 0;
    for (size_t l = 0; l < n_lists; l++)
        total += lists[l].n;
    fused_t *f = calloc(total + 1, sizeof(*f));
    float *norm = calloc(total + 1, sizeof(float));
    if (f == NULL || norm == NULL) {
        free(f);
        free(norm);
        return err_set(err, ERR_NOMEM, "no memory");
    }
    for (size_t l = 0; l < n_lists; l++) {
        float w = q->weights ? q->weights[l] : 1.0f;
        if (q->fusion == FUSION_DBSF)
            dbsf_norm(&lists[l], norm);
        for (size_t p = 0; p < lists[l].n; p++) {
            float s = q->fusion == FUSION_DBSF
                          ? norm[p]
                          : (w <= 0 ? 0.0f : 1.0f / ((float)(p + 1) / w + (float)q->rrf_k - 1.0f));
            size_t j = 0;
            while (j < n && !ptid_eq(&f[j].id, &lists[l].ids[p]))
                j++;
            if (j == n)
                f[n++] = (fused_t){ lists[l].ids[p], 0 };
            f[j].score += s;
        }
    }
    free(norm);
    qsort(f, n, sizeof(*f), fused_cmp);
    *out = f;
    *n_out = n;
    return ERR_OK;
}

static int level_run(coll_t *c, qspec_t *q, cJSON **out, err_t *err);

/* Fusion level: merge, threshold, offset, limit, then build ScoredPoints. */
static int fusion_run(coll_t *c, qspec_t *q, const cands_t *lists, cJSON **out, err_t *err)
{
    fused_t *f = NULL;
    size_t n = 0, k = 0;
    int rc = fuse(q, lists, q->n_pf, &f, &n, err);

    if (rc != ERR_OK)
        return rc;
    ptid_t *ids = calloc(n + 1, sizeof(ptid_t));
    float *scores = calloc(n + 1, sizeof(float));
    for (size_t i = 0; ids && scores && i < n && k < q->offset + q->limit; i++) {
        if (q->has_threshold && f[i].score < q->threshold)
            break;
        ids[k] = f[i].id;
        scores[k++] = f[i].score;
    }
    if (ids == NULL || scores == NULL)
        rc = err_set(err, ERR_NOMEM, "no memory");
    else {
        size_t skip = q->offset < k ? q->offset : k;
        rc = coll_points_scored(c, ids + skip, scores + skip, k - skip, &q->sel, out, err);
    }
    free(ids);
    free(scores);
    free(f);
    return rc;
}

static int level_run(coll_t *c, qspec_t *q, cJSON **out, err_t *err)
{
    cands_t *lists;
    int rc = ERR_OK;

    if (q->n_pf == 0)
        return qspec_run(c, q, NULL, 0, out, err);
    lists = calloc(q->n_pf, sizeof(cands_t));
    if (lists == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    size_t total = 0;
    for (size_t i = 0; i < q->n_pf && rc == ERR_OK; i++) {
        cJSON *j = NULL;
        rc = level_run(c, &q->pf[i], &j, err);
        if (rc == ERR_OK)
            rc = cands_from_json(j, &lists[i], err);
        lists[i].lower_better = metric_lower_better(c, &q->pf[i]);
        total += lists[i].n;
        cJSON_Delete(j);
    }
    if (rc == ERR_OK && q->fusion != FUSION_NONE) {
        rc = fusion_run(c, q, lists, out, err);
    } else if (rc == ERR_OK) {
        ptid_t *all = calloc(total + 1, sizeof(ptid_t));
        size_t n = 0;
        for (size_t i = 0; all && i < q->n_pf; i++)
            for (size_t p = 0; p < lists[i].n; p++)
                all[n++] = lists[i].ids[p];
        rc = all ? qspec_run(c, q, all, n, out, err) : err_set(err, ERR_NOMEM, "no memory");
        free(all);
    }
    for (size_t i = 0; i < q->n_pf; i++)
        cands_free(&lists[i]);
    free(lists);
    return rc;
}

typedef int (*qparse_fn)(const cJSON *b, qspec_t *q, err_t *err);

static int run_one(api_ctx_t *x, coll_t *c, const cJSON *b, qparse_fn parse, cJSON **out, err_t *err)
{
    static const cJSON empty = { .type = cJSON_Object };
    qspec_t q = { 0 };
    int rc = parse(b ? b : &empty, &q, err);
    if (rc == ERR_OK)
        rc = qspec_embed(x->a, c, &q, "query", err);
    if (rc == ERR_OK)
        rc = level_run(c, &q, out, err);
    qspec_clear(&q);
    return rc;
}

static int search_like(api_ctx_t *x, qparse_fn parse, bool batch, bool wrap, cJSON **result,
                       err_t *err)
{
    catalog_handle_t *h;
    int rc = api_coll_acquire(x, &h, err);
    coll_t *c;

    if (rc != ERR_OK)
        return rc;
    c = catalog_handle_coll(h);
    if (!batch) {
        cJSON *pts = NULL;
        rc = run_one(x, c, x->body, parse, &pts, err);
        if (rc == ERR_OK && wrap) {
            *result = cJSON_CreateObject();
            cJSON_AddItemToObject(*result, "points", pts);
        } else if (rc == ERR_OK) {
            *result = pts;
        }
        catalog_release(h);
        return rc;
    }
    const cJSON *searches = cJSON_GetObjectItemCaseSensitive(x->body, "searches"), *it;
    static const char *const fields[] = { "searches", NULL };
    if ((rc = req_fields_check(x->body, fields, "", err)) != ERR_OK || !cJSON_IsArray(searches)) {
        catalog_release(h);
        return rc != ERR_OK ? rc : err_set(err, ERR_INVALID, "searches: expected a list");
    }
    cJSON *arr = cJSON_CreateArray();
    int i = 0;
    cJSON_ArrayForEach(it, searches) {
        cJSON *pts = NULL;
        if ((rc = run_one(x, c, it, parse, &pts, err)) != ERR_OK) {
            err_wrap(err, "searches[%d]", i);
            break;
        }
        if (wrap) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, "points", pts);
            pts = o;
        }
        cJSON_AddItemToArray(arr, pts);
        i++;
    }
    catalog_release(h);
    if (rc != ERR_OK) {
        cJSON_Delete(arr);
        return rc;
    }
    *result = arr;
    return ERR_OK;
}

int api_points_search(api_ctx_t *x, cJSON **r, err_t *e) { return search_like(x, search_parse, false, false, r, e); }
int api_points_search_batch(api_ctx_t *x, cJSON **r, err_t *e) { return search_like(x, search_parse, true, false, r, e); }
int api_points_query(api_ctx_t *x, cJSON **r, err_t *e) { return search_like(x, query_parse, false, true, r, e); }
int api_points_query_batch(api_ctx_t *x, cJSON **r, err_t *e) { return search_like(x, query_parse, true, true, r, e); }

/* ---- groups --------------------------------------------------------------- */

typedef struct group {
    cJSON *id;                /* group value (string or integer); owned */
    ptid_t *ids;
    float *scores;
    size_t n;
} group_t;

/* Group ids are the string and integer values at the key (Qdrant skips
 * other types); an array puts the point into the group of each element. */
static size_t group_values(const cJSON *payload, const char *key, const cJSON **vals, size_t cap)
{
    const cJSON *raw[64];
    size_t n = filter_path_values(payload, key, raw, 64), k = 0;
    for (size_t i = 0; i < n && i < 64 && k < cap; i++) {
        const cJSON *v = raw[i];
        if (cJSON_IsString(v) || (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble)))
            vals[k++] = v;
    }
    return k;
}

static group_t *group_find(group_t *g, size_t n, const cJSON *v)
{
    for (size_t i = 0; i < n; i++)
        if (cJSON_Compare(g[i].id, v, true))
            return &g[i];
    return NULL;
}

/* Bucket the ranked hits (ids, scores, payloads in rank order). */
static size_t groups_fill(const cJSON *ranked, const cJSON *payloads, const char *key,
                          size_t limit, size_t size, group_t *g)
{
    size_t ng = 0;
    const cJSON *hit, *pl = payloads ? payloads->child : NULL;

    cJSON_ArrayForEach(hit, ranked) {
        const cJSON *vals[16];
        /* payloads come in rank order but skip points deleted since */
        if (pl == NULL || !cJSON_Compare(cJSON_GetObjectItem(pl, "id"), cJSON_GetObjectItem(hit, "id"), true))
            continue;
        size_t nv = group_values(cJSON_GetObjectItem(pl, "payload"), key, vals, 16);
        pl = pl->next;
        for (size_t i = 0; i < nv; i++) {
            group_t *gr = group_find(g, ng, vals[i]);
            if (gr == NULL && ng < limit) {
                gr = &g[ng++];
                gr->id = cJSON_Duplicate(vals[i], 1);
                gr->ids = calloc(size, sizeof(ptid_t));
                gr->scores = calloc(size, sizeof(float));
            }
            if (gr == NULL || gr->ids == NULL || gr->scores == NULL || gr->n == size)
                continue;
            ptid_from_json(cJSON_GetObjectItem(hit, "id"), &gr->ids[gr->n], NULL);
            gr->scores[gr->n++] = (float)cJSON_GetObjectItem(hit, "score")->valuedouble;
        }
    }
    return ng;
}

static int groups_parse(const cJSON *b, qspec_t *q, char **key, size_t *size, err_t *err)
{
    static const char *const fields[] = { "shard_key", "prefetch", "query", "using", "filter",
                                          "params", "score_threshold", "with_vector",
                                          "with_payload", "lookup_from", "group_by",
                                          "group_size", "limit", "with_lookup", NULL };
    const cJSON *gb = cJSON_GetObjectItemCaseSensitive(b, "group_by");
    const cJSON *wl = cJSON_GetObjectItemCaseSensitive(b, "with_lookup");
    int rc = req_fields_check(b, fields, "", err);

    if (rc != ERR_OK)
        return rc;
    if (!cJSON_IsString(gb) || !filter_path_is_valid(gb->valuestring))
        return err_set(err, ERR_INVALID, "group_by: expected a payload key");
    if (wl != NULL && !cJSON_IsNull(wl))
        return err_set(err, ERR_UNSUPPORTED, "with_lookup is not supported yet");
    if ((rc = api_uint_field(b, "group_size", 3, 1, size, err)) != ERR_OK)
        return rc;
    if ((rc = query_parse_level(b, q, NULL, 0, err)) != ERR_OK)
        return rc;
    *key = strdup(gb->valuestring);
    return *key ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

/* Rank every matching point (ids and scores only), then fetch the group
 * key of each and bucket. */
static int groups_run(coll_t *c, qspec_t *q, const char *key, size_t size, cJSON **out, err_t *err)
{
    coll_sel_t user = q->sel, none = { 0 };
    coll_sel_t keysel = { .payload = COLL_PAYLOAD_INCLUDE, .keys = (char **)&key, .n_keys = 1 };
    coll_info_t info;
    size_t limit = q->limit;
    cJSON *ranked = NULL, *payloads = NULL;
    int rc;

    coll_info_get(c, &info);
    q->sel = none;
    q->limit = (size_t)info.points + 1;
    rc = level_run(c, q, &ranked, err);
    q->sel = user;
    size_t n = (size_t)cJSON_GetArraySize(ranked);
    ptid_t *ids = calloc(n + 1, sizeof(ptid_t));
    group_t *g = calloc(limit + 1, sizeof(group_t));
    for (size_t i = 0; rc == ERR_OK && ids && i < n; i++)
        ptid_from_json(cJSON_GetObjectItem(cJSON_GetArrayItem(ranked, (int)i), "id"), &ids[i], NULL);
    if (rc == ERR_OK && (ids == NULL || g == NULL))
        rc = err_set(err, ERR_NOMEM, "no memory");
    /* retrieve returns each id once, in the order asked: ranks line up */
    if (rc == ERR_OK)
        rc = coll_retrieve(c, ids, n, &keysel, &payloads, err);
    size_t ng = rc == ERR_OK ? groups_fill(ranked, payloads, key, limit, size, g) : 0;
    cJSON *arr = cJSON_CreateObject(), *groups = cJSON_AddArrayToObject(arr, "groups");
    for (size_t i = 0; i < ng && rc == ERR_OK; i++) {
        cJSON *hits = NULL, *o = cJSON_CreateObject();
        rc = coll_points_scored(c, g[i].ids, g[i].scores, g[i].n, &user, &hits, err);
        cJSON_AddItemToObject(o, "hits", hits ? hits : cJSON_CreateArray());
        cJSON_AddItemToObject(o, "id", g[i].id);
        g[i].id = NULL;
        cJSON_AddItemToArray(groups, o);
    }
    for (size_t i = 0; g && i < limit; i++) {
        cJSON_Delete(g[i].id);
        free(g[i].ids);
        free(g[i].scores);
    }
    free(g);
    free(ids);
    cJSON_Delete(ranked);
    cJSON_Delete(payloads);
    if (rc != ERR_OK) {
        cJSON_Delete(arr);
        return rc;
    }
    *out = arr;
    return ERR_OK;
}

int api_points_query_groups(api_ctx_t *x, cJSON **result, err_t *err)
{
    catalog_handle_t *h;
    qspec_t q = { 0 };
    char *key = NULL;
    size_t size = 3;
    int rc = groups_parse(x->body, &q, &key, &size, err);

    if (rc == ERR_OK && (rc = api_coll_acquire(x, &h, err)) == ERR_OK) {
        rc = qspec_embed(x->a, catalog_handle_coll(h), &q, "query", err);
        if (rc == ERR_OK)
            rc = groups_run(catalog_handle_coll(h), &q, key, size, result, err);
        catalog_release(h);
    }
    free(key);
    qspec_clear(&q);
    return rc;
}
