/*
 * api_migrate.c - the cut-over of an embedding-model migration:
 *
 *   POST /migrations/verify   compare a source and a target collection:
 *                             point counts, id sets (by hashed id ranges,
 *                             coll_id_digest: never a list of ids), and
 *                             top-k agreement over sample queries;
 *   POST /migrations/cutover  the guarded alias switch: only when the
 *                             backfill into the target is complete, the
 *                             dual-write topics have no lag, and the alias
 *                             still points where the caller says
 *                             (compare-and-set, catalog_alias_switch).
 *                             Rollback is the same call with from and to
 *                             swapped (and no backfill / topics guard).
 *
 * A failed guard answers 409 naming what is not ready, and switches
 * nothing.  Top-k agreement: for each sample point (the first `sample`
 * points of the source in id order), the source is searched with the
 * point's source vector and the target with the point's target vector
 * (each in its own model's space), and the overlap of the two top-`limit`
 * id lists is averaged.  A point missing from the target counts 0.
 */
#include "api_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/catalog.h"
#include "store/req.h"

#define VERIFY_MAX_SAMPLE 1000
#define VERIFY_MAX_LIMIT 100
#define VERIFY_MAX_DIM 65536

static int str_member(const cJSON *body, const char *key, bool required, const char **out,
                      err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);

    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return required ? err_set(err, ERR_INVALID, "%s: required", key) : ERR_OK;
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return err_set(err, ERR_INVALID, "%s: expected a non-empty string", key);
    *out = v->valuestring;
    return ERR_OK;
}

/* Search c with the stored vector `name` of point id; the top-limit ids
 * into out (*n of them).  A point without that vector gives *n = 0. */
static int topk_of(coll_t *c, const ptid_t *id, const char *name, size_t limit, ptid_t *out,
                   size_t *n, err_t *err)
{
    float *v = malloc(VERIFY_MAX_DIM * sizeof(float));
    uint32_t dim = 0;
    cJSON *hits = NULL, *h;
    int rc;

    *n = 0;
    if (v == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    rc = coll_vector_get(c, id, name, v, VERIFY_MAX_DIM, &dim, err);
    if (rc == ERR_NOT_FOUND) {
        free(v);
        return ERR_OK;
    }
    coll_sel_t sel = { .payload = COLL_PAYLOAD_NONE };
    coll_search_req_t q = { .using = name, .vector = v, .dim = dim, .limit = limit, .sel = &sel };
    if (rc == ERR_OK)
        rc = coll_search(c, &q, &hits, err);
    cJSON_ArrayForEach(h, hits) {
        if (rc == ERR_OK && *n < limit &&
            ptid_from_json(cJSON_GetObjectItemCaseSensitive(h, "id"), &out[*n], err) == ERR_OK)
            (*n)++;
    }
    cJSON_Delete(hits);
    free(v);
    return rc;
}

/* Mean overlap@limit over the first `sample` points of src. */
static int topk_agreement(coll_t *src, coll_t *dst, const char *us, const char *ut, size_t sample,
                          size_t limit, double *agree, size_t *used, err_t *err)
{
    coll_sel_t sel = { .payload = COLL_PAYLOAD_NONE };
    coll_scroll_req_t sr = { .limit = sample, .sel = &sel };
    ptid_t *a = calloc(2 * limit, sizeof(ptid_t));
    cJSON *pts = NULL, *next = NULL, *p;
    double sum = 0;
    int rc = a ? coll_scroll(src, &sr, &pts, &next, err) : err_set(err, ERR_NOMEM, "no memory");

    *used = 0;
    cJSON_ArrayForEach(p, pts) {
        ptid_t id;
        size_t na = 0, nb = 0, common = 0;
        if (rc != ERR_OK ||
            (rc = ptid_from_json(cJSON_GetObjectItemCaseSensitive(p, "id"), &id, err)) != ERR_OK ||
            (rc = topk_of(src, &id, us, limit, a, &na, err)) != ERR_OK ||
            (rc = topk_of(dst, &id, ut, limit, a + limit, &nb, err)) != ERR_OK)
            break;
        for (size_t i = 0; i < na; i++)
            for (size_t j = 0; j < nb; j++)
                common += ptid_eq(&a[i], &a[limit + j]);
        sum += na ? (double)common / (double)na : 0;
        (*used)++;
    }
    *agree = *used ? sum / (double)*used : 0;
    cJSON_Delete(pts);
    cJSON_Delete(next);
    free(a);
    return rc;
}

/* The id digests of both collections: how many buckets differ. */
static int digest_compare(coll_t *s, coll_t *t, uint32_t buckets, size_t *differ, err_t *err)
{
    uint64_t *m = calloc(4 * (size_t)buckets, sizeof(uint64_t));
    int rc;

    *differ = 0;
    if (m == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    if ((rc = coll_id_digest(s, buckets, m, m + buckets, err)) == ERR_OK &&
        (rc = coll_id_digest(t, buckets, m + 2 * buckets, m + 3 * buckets, err)) == ERR_OK)
        for (uint32_t b = 0; b < buckets; b++)
            *differ += m[b] != m[2 * buckets + b] || m[buckets + b] != m[3 * buckets + b];
    free(m);
    return rc;
}

typedef struct vreq {
    const char *source, *target, *using_source, *using_target;
    size_t buckets, sample, limit;
} vreq_t;

static int verify_parse(const cJSON *body, vreq_t *q, err_t *err)
{
    static const char *const fields[] = { "source", "target", "using_source", "using_target",
                                          "buckets", "sample", "limit", NULL };
    int rc;

    if (!cJSON_IsObject(body))
        return err_set(err, ERR_INVALID, "body: expected an object");
    if ((rc = req_fields_check(body, fields, "", err)) != ERR_OK ||
        (rc = str_member(body, "source", true, &q->source, err)) != ERR_OK ||
        (rc = str_member(body, "target", true, &q->target, err)) != ERR_OK ||
        (rc = str_member(body, "using_source", false, &q->using_source, err)) != ERR_OK ||
        (rc = str_member(body, "using_target", false, &q->using_target, err)) != ERR_OK ||
        (rc = api_uint_field(body, "buckets", 64, 1, &q->buckets, err)) != ERR_OK ||
        (rc = api_uint_field(body, "sample", 20, 0, &q->sample, err)) != ERR_OK ||
        (rc = api_uint_field(body, "limit", 10, 1, &q->limit, err)) != ERR_OK)
        return rc;
    if (q->buckets > COLL_DIGEST_MAX_BUCKETS || q->sample > VERIFY_MAX_SAMPLE ||
        q->limit > VERIFY_MAX_LIMIT)
        return err_set(err, ERR_INVALID, "buckets <= %d, sample <= %d, limit <= %d",
                       COLL_DIGEST_MAX_BUCKETS, VERIFY_MAX_SAMPLE, VERIFY_MAX_LIMIT);
    return ERR_OK;
}

int api_migrate_verify(api_ctx_t *x, cJSON **result, err_t *err)
{
    catalog_handle_t *hs = NULL, *ht = NULL;
    vreq_t q = { 0 };
    coll_info_t is, it;
    size_t differ = 0, used = 0;
    double agree = 0;
    int rc;

    if ((rc = verify_parse(x->body, &q, err)) != ERR_OK ||
        (rc = catalog_acquire(x->a->cat, q.source, &hs, err)) != ERR_OK ||
        (rc = catalog_acquire(x->a->cat, q.target, &ht, err)) != ERR_OK)
        goto out;
    coll_t *s = catalog_handle_coll(hs), *t = catalog_handle_coll(ht);
    if ((rc = digest_compare(s, t, (uint32_t)q.buckets, &differ, err)) != ERR_OK ||
        (rc = topk_agreement(s, t, q.using_source, q.using_target, q.sample, q.limit, &agree,
                             &used, err)) != ERR_OK)
        goto out;
    coll_info_get(s, &is);
    coll_info_get(t, &it);
    cJSON *r = cJSON_CreateObject(), *tk;
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(r, "source"), "points_count", (double)is.points);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(r, "target"), "points_count", (double)it.points);
    cJSON_AddBoolToObject(r, "counts_equal", is.points == it.points);
    cJSON_AddNumberToObject(r, "buckets", (double)q.buckets);
    cJSON_AddNumberToObject(r, "buckets_differing", (double)differ);
    cJSON_AddBoolToObject(r, "ids_equal", differ == 0);
    tk = cJSON_AddObjectToObject(r, "topk");
    cJSON_AddNumberToObject(tk, "samples", (double)used);
    cJSON_AddNumberToObject(tk, "limit", (double)q.limit);
    cJSON_AddNumberToObject(tk, "agreement", agree);
    *result = r;
out:
    if (hs != NULL)
        catalog_release(hs);
    if (ht != NULL)
        catalog_release(ht);
    return rc;
}

/* The target's cursor of backfill job `id` says it is complete. */
static int backfill_done(api_ctx_t *x, const char *target, const char *job, err_t *err)
{
    catalog_handle_t *h;
    char key[300], *val = NULL;
    int rc = catalog_acquire(x->a->cat, target, &h, err);

    if (rc != ERR_OK)
        return rc;
    snprintf(key, sizeof(key), "backfill/%s", job);
    rc = coll_meta_get(catalog_handle_coll(h), key, &val, err);
    catalog_release(h);
    if (rc == ERR_NOT_FOUND)
        return err_set(err, ERR_EXISTS, "backfill %s has not written to %s: not switching", job,
                       target);
    if (rc != ERR_OK)
        return rc;
    cJSON *cur = cJSON_Parse(val);
    const cJSON *next = cJSON_GetObjectItemCaseSensitive(cur, "next");
    bool done = cur != NULL && (next == NULL || cJSON_IsNull(next));
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(cur, "done");
    if (!done)
        rc = err_set(err, ERR_EXISTS, "backfill %s into %s is not complete (%.0f points copied "
                     "so far): not switching", job, target, cJSON_IsNumber(n) ? n->valuedouble : 0);
    cJSON_Delete(cur);
    free(val);
    return rc;
}

/* Every assigned partition of the listed topics is fully applied. */
static int topics_drained(api_ctx_t *x, const cJSON *topics, err_t *err)
{
    const api_ingest_hooks_t *hk = __atomic_load_n(&x->a->ingest, __ATOMIC_ACQUIRE);
    const cJSON *t, *p;
    int rc = ERR_OK;

    if (hk == NULL)
        return err_set(err, ERR_EXISTS, "topics: Kafka ingest is not running here: cannot "
                       "check the dual-write lag");
    cJSON *st = hk->status(hk->ctx);
    cJSON_ArrayForEach(t, topics) {
        bool seen = false;
        cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(st, "partitions")) {
            const cJSON *pt = cJSON_GetObjectItemCaseSensitive(p, "topic");
            const cJSON *lag = cJSON_GetObjectItemCaseSensitive(p, "lag");
            if (!cJSON_IsString(pt) || strcmp(pt->valuestring, t->valuestring) != 0)
                continue;
            seen = true;
            if (rc == ERR_OK && (!cJSON_IsNumber(lag) || lag->valuedouble != 0))
                rc = err_set(err, ERR_EXISTS, "topic %s partition %d: lag %s: not switching",
                             t->valuestring,
                             cJSON_GetObjectItemCaseSensitive(p, "partition")->valueint,
                             cJSON_IsNumber(lag) ? "not 0" : "unknown");
        }
        if (rc == ERR_OK && !seen)
            rc = err_set(err, ERR_EXISTS, "topic %s: no partition of it is consumed here: "
                         "not switching", t->valuestring);
    }
    cJSON_Delete(st);
    return rc;
}

int api_migrate_cutover(api_ctx_t *x, cJSON **result, err_t *err)
{
    static const char *const fields[] = { "alias", "from", "to", "backfill", "topics", NULL };
    const char *alias, *from, *to, *job;
    const cJSON *topics;
    int rc;

    if (!cJSON_IsObject(x->body))
        return err_set(err, ERR_INVALID, "body: expected an object");
    if ((rc = req_fields_check(x->body, fields, "", err)) != ERR_OK ||
        (rc = str_member(x->body, "alias", true, &alias, err)) != ERR_OK ||
        (rc = str_member(x->body, "from", false, &from, err)) != ERR_OK ||
        (rc = str_member(x->body, "to", true, &to, err)) != ERR_OK ||
        (rc = str_member(x->body, "backfill", false, &job, err)) != ERR_OK)
        return rc;
    topics = cJSON_GetObjectItemCaseSensitive(x->body, "topics");
    if (topics != NULL && !cJSON_IsNull(topics)) {
        const cJSON *t;
        if (!cJSON_IsArray(topics))
            return err_set(err, ERR_INVALID, "topics: expected a list of topic names");
        cJSON_ArrayForEach(t, topics)
            if (!cJSON_IsString(t))
                return err_set(err, ERR_INVALID, "topics: expected a list of topic names");
    }
    if ((job != NULL && (rc = backfill_done(x, to, job, err)) != ERR_OK) ||
        (cJSON_IsArray(topics) && (rc = topics_drained(x, topics, err)) != ERR_OK) ||
        (rc = catalog_alias_switch(x->a->cat, alias, from, to, err)) != ERR_OK)
        return rc;
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "alias", alias);
    if (from != NULL)
        cJSON_AddStringToObject(r, "from", from);
    else
        cJSON_AddNullToObject(r, "from");
    cJSON_AddStringToObject(r, "to", to);
    cJSON_AddBoolToObject(r, "switched", true);
    *result = r;
    return ERR_OK;
}
