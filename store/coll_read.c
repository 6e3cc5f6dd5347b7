/*
 * coll_read.c - the read path: retrieve, scroll, count, search (exact, or
 * through coll_vindex.c's HNSW segments).
 *
 * Every read holds the collection's reader lock for its whole duration,
 * so it sees the state between two ops, never the middle of one.  Results
 * are built as Qdrant-shaped JSON (Record, ScoredPoint) while the lock is
 * held, because payloads are borrowed from memory.
 *
 * Scroll walks the RocksDB point keys (ordered like Qdrant's ids: integers,
 * then UUIDs) and takes each point's state from memory; a key that RocksDB
 * has but memory does not yet (an op between its store write and its
 * memory swap) is treated as absent, which is the state before that op.
 *
 * Filtered reads (count, search, both scrolls) ask the index planner
 * (coll_index.c) first: when the filter has an equality condition on an
 * indexed field, only its candidate slots are evaluated, with the full
 * filter, so the results are those of a scan.  Scroll by id then sorts the
 * matching candidates by id (ptid_cmp is the store's key order) instead of
 * walking RocksDB, giving the same page and next offset.
 */
#include "coll_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist.h"

/* JSON number for a float that prints as the float's shortest form
 * (0.9, not 0.8999999761581421), as Qdrant's f32 serialisation does. */
static cJSON *f32_json(float f)
{
    char buf[32];

    if (!isfinite(f))
        return cJSON_CreateNull();
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
        if ((float)strtod(buf, NULL) == f)
            break;
    }
    return cJSON_CreateNumber(strtod(buf, NULL));
}

static cJSON *vec_json(const float *v, uint32_t dim)
{
    cJSON *arr = cJSON_CreateArray();
    for (uint32_t i = 0; arr && i < dim; i++) {
        cJSON *n = f32_json(v[i]);
        if (n == NULL || !cJSON_AddItemToArray(arr, n)) {
            cJSON_Delete(n);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

static bool sel_wants(const coll_sel_t *sel, const char *name)
{
    if (sel->vector == COLL_VECTOR_ALL)
        return true;
    for (size_t i = 0; i < sel->n_names; i++)
        if (strcmp(sel->names[i], name) == 0)
            return true;
    return false;
}

static cJSON *vectors_json(const coll_t *c, uint32_t s, const coll_sel_t *sel)
{
    if (sel->vector == COLL_VECTOR_NONE)
        return cJSON_CreateNull();
    if (c->n_defs == 1 && c->defs[0].name[0] == '\0') {
        if (!c->vs[0].present[s] || (sel->vector == COLL_VECTOR_LIST && !sel_wants(sel, "")))
            return sel->vector == COLL_VECTOR_ALL ? cJSON_CreateArray() : cJSON_CreateNull();
        return vec_json(c->vs[0].data + (size_t)s * c->defs[0].dim, c->defs[0].dim);
    }
    cJSON *obj = cJSON_CreateObject();
    for (uint32_t k = 0; obj && k < c->n_defs; k++) {
        if (!c->vs[k].present[s] || !sel_wants(sel, c->defs[k].name))
            continue;
        cJSON *v = vec_json(c->vs[k].data + (size_t)s * c->defs[k].dim, c->defs[k].dim);
        if (v == NULL || !cJSON_AddItemToObject(obj, c->defs[k].name, v)) {
            cJSON_Delete(v);
            cJSON_Delete(obj);
            return NULL;
        }
    }
    return obj;
}

/* Qdrant's Record / ScoredPoint for slot s.  score NAN: a Record. */
static cJSON *point_json(const coll_t *c, uint32_t s, const coll_sel_t *sel, float score,
                         const cJSON *order_value)
{
    const coll_slot_t *sl = &c->slots[s];
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL;

    ok = ok && cJSON_AddItemToObject(o, "id", ptid_to_json(&sl->id));
    if (ok && !isnan(score)) {
        ok = cJSON_AddNumberToObject(o, "version", (double)sl->version) != NULL;
        ok = ok && cJSON_AddItemToObject(o, "score", f32_json(score));
    }
    ok = ok && cJSON_AddItemToObject(o, "payload", coll_payload_select(sl->payload, sel));
    ok = ok && cJSON_AddItemToObject(o, "vector", vectors_json(c, s, sel));
    if (ok && order_value != NULL)
        ok = cJSON_AddItemToObject(o, "order_value", cJSON_Duplicate(order_value, 1));
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int add_point(cJSON *arr, const coll_t *c, uint32_t s, const coll_sel_t *sel, float score,
                     const cJSON *order_value, err_t *err)
{
    cJSON *p = point_json(c, s, sel, score, order_value);
    if (p == NULL || !cJSON_AddItemToArray(arr, p)) {
        cJSON_Delete(p);
        return err_set(err, ERR_NOMEM, "no memory building results");
    }
    return ERR_OK;
}

typedef struct hv {
    const coll_t *c;
    uint32_t slot;
} hv_t;

static bool has_vector(void *ctx, const char *name)
{
    const hv_t *h = ctx;
    int k = coll_vector_index(h->c, name);
    return k >= 0 && h->c->vs[k].present[h->slot];
}

static bool slot_matches(const coll_t *c, uint32_t s, const filter_t *f)
{
    if (!(c->slots[s].flags & SLOT_LIVE))
        return false;
    if (f == NULL)
        return true;
    hv_t h = { c, s };
    filter_point_t fp = { &c->slots[s].id, c->slots[s].payload, has_vector, &h };
    return coll_filter_match(c, f, &fp);
}

/* The slots a filtered read examines: the index planner's candidates, or
 * every slot.  Caller holds lock. */
typedef struct scan {
    uint32_t *cand;           /* NULL: every slot */
    size_t n;
} scan_t;

static void scan_begin(coll_t *c, const filter_t *f, scan_t *sc)
{
    if (f == NULL || !coll_index_plan(c, f, &sc->cand, &sc->n)) {
        sc->cand = NULL;
        sc->n = c->n_slots;
    }
}

static uint32_t scan_slot(const scan_t *sc, size_t i)
{
    return sc->cand ? sc->cand[i] : (uint32_t)i;
}

static void scan_end(scan_t *sc)
{
    free(sc->cand);
    sc->cand = NULL;
}

typedef struct idpos {
    const ptid_t *id;
    size_t pos;
} idpos_t;

static int idpos_cmp(const void *a, const void *b)
{
    const idpos_t *x = a, *y = b;
    int c = ptid_cmp(x->id, y->id);
    return c != 0 ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

/* keep[i]: ids[i] is the first occurrence of its id (Qdrant's retrieve
 * returns each point once, at the first place it was asked for). */
static bool *first_occurrences(const ptid_t *ids, size_t n)
{
    bool *keep = malloc(n ? n : 1);
    idpos_t *o = malloc((n ? n : 1) * sizeof(*o));

    if (keep == NULL || o == NULL) {
        free(keep);
        free(o);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        o[i] = (idpos_t){ &ids[i], i };
    qsort(o, n, sizeof(*o), idpos_cmp);
    for (size_t i = 0; i < n; i++)
        keep[o[i].pos] = i == 0 || !ptid_eq(o[i - 1].id, o[i].id);
    free(o);
    return keep;
}

int coll_retrieve(coll_t *c, const ptid_t *ids, size_t n, const coll_sel_t *sel, cJSON **out,
                  err_t *err)
{
    cJSON *arr = cJSON_CreateArray();
    bool *keep = first_occurrences(ids, n);
    int rc = arr && keep ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");

    pthread_rwlock_rdlock(&c->lock);
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        if (!keep[i])
            continue;
        int64_t s = coll_slot_find(c, &ids[i]);
        if (s >= 0 && (c->slots[s].flags & SLOT_LIVE))
            rc = add_point(arr, c, (uint32_t)s, sel, NAN, NULL, err);
    }
    pthread_rwlock_unlock(&c->lock);
    free(keep);
    if (rc != ERR_OK) {
        cJSON_Delete(arr);
        arr = NULL;
    }
    *out = arr;
    return rc;
}

int coll_count(coll_t *c, const filter_t *filter, size_t *count, err_t *err)
{
    size_t n = 0;

    (void)err;
    pthread_rwlock_rdlock(&c->lock);
    if (filter == NULL || filter_is_empty(filter)) {
        n = c->live;
    } else {
        scan_t sc;
        scan_begin(c, filter, &sc);
        for (size_t i = 0; i < sc.n; i++)
            n += slot_matches(c, scan_slot(&sc, i), filter);
        scan_end(&sc);
    }
    pthread_rwlock_unlock(&c->lock);
    *count = n;
    return ERR_OK;
}

int coll_id_digest(coll_t *c, uint32_t buckets, uint64_t *sums, uint64_t *counts, err_t *err)
{
    if (buckets == 0 || buckets > COLL_DIGEST_MAX_BUCKETS)
        return err_set(err, ERR_INVALID, "buckets: 1..%d", COLL_DIGEST_MAX_BUCKETS);
    memset(sums, 0, buckets * sizeof(*sums));
    memset(counts, 0, buckets * sizeof(*counts));
    pthread_rwlock_rdlock(&c->lock);
    for (uint32_t s = 0; s < c->n_slots; s++) {
        if (!(c->slots[s].flags & SLOT_LIVE))
            continue;
        /* filter_slice_hash: a keyed hash of the id, the same in every
         * collection, so equal id sets give equal sums bucket by bucket */
        uint64_t h = filter_slice_hash(&c->slots[s].id);
        uint32_t b = (uint32_t)((h >> 32) % buckets);
        sums[b] += h * 0x9E3779B97F4A7C15ull + (h >> 29);
        counts[b]++;
    }
    pthread_rwlock_unlock(&c->lock);
    return ERR_OK;
}

/* ---- scroll ----------------------------------------------------------- */

static int scroll_by_id_iter(coll_t *c, const coll_scroll_req_t *req, cJSON *arr, cJSON **next,
                             err_t *err)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, c->ropts);
    uint8_t key[1 + PTID_KEY_MAX] = { 'p' };
    size_t kl = 1, got = 0;
    int rc = ERR_OK;

    if (req->has_offset)
        kl += ptid_encode(&req->offset, key + 1);
    for (rocksdb_iter_seek(it, (const char *)key, kl); rocksdb_iter_valid(it) && rc == ERR_OK;
         rocksdb_iter_next(it)) {
        size_t l;
        const char *k = rocksdb_iter_key(it, &l);
        ptid_t id;
        if (l < 2 || k[0] != 'p')
            break;
        if (ptid_decode((const uint8_t *)k + 1, l - 1, &id) != l - 1)
            continue;
        int64_t s = coll_slot_find(c, &id);
        if (s < 0 || !slot_matches(c, (uint32_t)s, req->filter))
            continue;
        if (got == req->limit) {
            *next = ptid_to_json(&id);
            break;
        }
        rc = add_point(arr, c, (uint32_t)s, req->sel, req->as_scored ? 0.0f : NAN, NULL, err);
        got++;
    }
    rocksdb_iter_destroy(it);
    return rc;
}

typedef struct idslot {
    const ptid_t *id;
    uint32_t slot;
} idslot_t;

static int idslot_cmp(const void *a, const void *b)
{
    return ptid_cmp(((const idslot_t *)a)->id, ((const idslot_t *)b)->id);
}

/* scroll_by_id over index candidates: the matching points at or after the
 * offset, sorted by id (the store's key order), give the same page. */
static int scroll_by_id_planned(coll_t *c, const coll_scroll_req_t *req, const scan_t *sc,
                                cJSON *arr, cJSON **next, err_t *err)
{
    idslot_t *m = malloc((sc->n ? sc->n : 1) * sizeof(*m));
    size_t k = 0;
    int rc = ERR_OK;

    if (m == NULL)
        return err_set(err, ERR_NOMEM, "no memory for scroll");
    for (size_t i = 0; i < sc->n; i++) {
        uint32_t s = scan_slot(sc, i);
        if (!slot_matches(c, s, req->filter) ||
            (req->has_offset && ptid_cmp(&c->slots[s].id, &req->offset) < 0))
            continue;
        m[k++] = (idslot_t){ &c->slots[s].id, s };
    }
    qsort(m, k, sizeof(*m), idslot_cmp);
    for (size_t i = 0; i < k && rc == ERR_OK; i++) {
        if (i == req->limit) {
            *next = ptid_to_json(m[i].id);
            break;
        }
        rc = add_point(arr, c, m[i].slot, req->sel, req->as_scored ? 0.0f : NAN, NULL, err);
    }
    free(m);
    return rc;
}

static int scroll_by_id(coll_t *c, const coll_scroll_req_t *req, cJSON *arr, cJSON **next,
                        err_t *err)
{
    scan_t sc;

    scan_begin(c, req->filter, &sc);
    if (sc.cand != NULL) {
        int rc = scroll_by_id_planned(c, req, &sc, arr, next, err);
        scan_end(&sc);
        return rc;
    }
    return scroll_by_id_iter(c, req, arr, next, err);
}

typedef struct ordered {
    double value;
    const cJSON *json;
    const ptid_t *id;
    uint32_t slot;
} ordered_t;

/* Ascending (value, id): Qdrant's order; descending is its reverse. */
static int ordered_cmp(const void *a, const void *b)
{
    const ordered_t *x = a, *y = b;
    if (x->value != y->value)
        return x->value < y->value ? -1 : 1;
    return ptid_cmp(x->id, y->id);
}

/* A value usable for ordering: a number, or a datetime string as seconds
 * since the epoch. */
static bool order_number(const cJSON *j, double *v)
{
    int64_t sec;
    int32_t nsec;

    if (cJSON_IsNumber(j)) {
        *v = j->valuedouble;
        return true;
    }
    if (cJSON_IsString(j) && filter_datetime_parse(j->valuestring, &sec, &nsec)) {
        *v = (double)sec + nsec / 1e9;
        return true;
    }
    return false;
}

/* Keep el as the point's order value if it is usable, passes start_from
 * and beats the one found so far. */
static void order_consider(const coll_scroll_req_t *req, const cJSON *el, bool *found, double *v,
                           const cJSON **json)
{
    double x;

    if (!order_number(el, &x))
        return;
    if (req->has_start_from && (req->order_desc ? x > req->start_from : x < req->start_from))
        return;
    if (!*found || (req->order_desc ? x > *v : x < *v)) {
        *v = x;
        *json = el;
        *found = true;
    }
}

/* The order value of a point as Qdrant picks it (segment order_by.rs):
 * every value at the key counts, array elements one by one (as a payload
 * index holds them); of those passing start_from, the smallest ascending,
 * the largest descending.  false: the point is not listed. */
static bool order_value(const cJSON *payload, const coll_scroll_req_t *req, double *v,
                        const cJSON **json)
{
    const cJSON *local[16], **vals = local;
    size_t n = filter_path_values(payload, req->order_by, vals, 16);
    bool found = false;

    if (n > 16) {
        vals = malloc(n * sizeof(*vals));
        if (vals == NULL)
            return false;
        n = filter_path_values(payload, req->order_by, vals, n);
    }
    for (size_t i = 0; i < n; i++) {
        const cJSON *el;
        if (!cJSON_IsArray(vals[i])) {
            order_consider(req, vals[i], &found, v, json);
            continue;
        }
        cJSON_ArrayForEach(el, vals[i])
            order_consider(req, el, &found, v, json);
    }
    if (vals != local)
        free(vals);
    return found;
}

static int scroll_ordered(coll_t *c, const coll_scroll_req_t *req, cJSON *arr, err_t *err)
{
    ordered_t *o = malloc((c->n_slots ? c->n_slots : 1) * sizeof(*o));
    size_t n = 0, got = 0;
    int rc = ERR_OK;

    scan_t sc;

    if (o == NULL)
        return err_set(err, ERR_NOMEM, "no memory for order_by");
    scan_begin(c, req->filter, &sc);
    for (size_t i = 0; i < sc.n; i++) {
        uint32_t s = scan_slot(&sc, i);
        double v;
        const cJSON *j;
        if (!slot_matches(c, s, req->filter) || !order_value(c->slots[s].payload, req, &v, &j))
            continue;
        o[n++] = (ordered_t){ v, j, &c->slots[s].id, s };
    }
    scan_end(&sc);
    qsort(o, n, sizeof(*o), ordered_cmp);
    for (size_t i = 0; i < n && got < req->limit && rc == ERR_OK; i++, got++) {
        const ordered_t *e = &o[req->order_desc ? n - 1 - i : i];
        rc = add_point(arr, c, e->slot, req->sel, NAN, e->json, err);
    }
    free(o);
    return rc;
}

int coll_scroll(coll_t *c, const coll_scroll_req_t *req, cJSON **points, cJSON **next, err_t *err)
{
    cJSON *arr = cJSON_CreateArray();
    int rc;

    *points = NULL;
    *next = NULL;
    if (arr == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    pthread_rwlock_rdlock(&c->lock);
    if (req->order_by != NULL)
        rc = scroll_ordered(c, req, arr, err);
    else
        rc = scroll_by_id(c, req, arr, next, err);
    pthread_rwlock_unlock(&c->lock);
    if (rc != ERR_OK) {
        cJSON_Delete(arr);
        cJSON_Delete(*next);
        *next = NULL;
        return rc;
    }
    if (*next == NULL)
        *next = cJSON_CreateNull();
    *points = arr;
    return ERR_OK;
}

/* ---- exact search ----------------------------------------------------- */

typedef struct hit {
    float score;
    uint32_t slot;
} hit_t;

typedef struct topk {
    hit_t *h;                 /* binary heap, worst hit at the root */
    size_t n, k;
    int metric;
    bool higher;              /* higher scores are better (Cosine, Dot) */
    const coll_t *c;
} topk_t;

/* a ranks before b: better score, ties broken by smaller id. */
static bool hit_before(const topk_t *t, const hit_t *a, const hit_t *b)
{
    if (a->score != b->score)
        return dist_better((enum dist_metric)t->metric, a->score, b->score);
    return ptid_cmp(&t->c->slots[a->slot].id, &t->c->slots[b->slot].id) < 0;
}

static void heap_sift_down(topk_t *t, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < t->n && hit_before(t, &t->h[w], &t->h[l]))
            w = l;
        if (r < t->n && hit_before(t, &t->h[w], &t->h[r]))
            w = r;
        if (w == i)
            return;
        hit_t tmp = t->h[i];
        t->h[i] = t->h[w];
        t->h[w] = tmp;
        i = w;
    }
}

static void topk_push(topk_t *t, float score, uint32_t slot)
{
    hit_t h = { score, slot };

    if (t->n < t->k) {
        size_t i = t->n++;
        t->h[i] = h;
        while (i > 0 && hit_before(t, &t->h[(i - 1) / 2], &t->h[i])) {
            hit_t tmp = t->h[i];
            t->h[i] = t->h[(i - 1) / 2];
            t->h[(i - 1) / 2] = tmp;
            i = (i - 1) / 2;
        }
        return;
    }
    if (t->k == 0 || !hit_before(t, &h, &t->h[0]))
        return;
    t->h[0] = h;
    heap_sift_down(t, 0);
}

static __thread const topk_t *tl_sort_topk;

static int hit_cmp(const void *a, const void *b)
{
    return hit_before(tl_sort_topk, a, b) ? -1 : (hit_before(tl_sort_topk, b, a) ? 1 : 0);
}

static void search_one(coll_t *c, const coll_search_req_t *req, int k, const float *q, topk_t *t,
                       uint32_t s)
{
    uint32_t dim = c->defs[k].dim;
    enum dist_metric m = (enum dist_metric)c->defs[k].metric;

    if (!c->vs[k].present[s] || !slot_matches(c, s, req->filter))
        return;
    float score = dist_score(m, q, c->vs[k].data + (size_t)s * dim, dim);
    /* most points lose to the current worst hit: reject them without the
     * comparator calls (ties and NaNs take the full path) */
    if (t->n == t->k && t->k > 0) {
        float w = t->h[0].score;
        if (t->higher ? score < w : score > w)
            return;
    }
    if (req->has_threshold && dist_better(m, req->score_threshold, score))
        return;
    topk_push(t, score, s);
}

/* ---- search through the HNSW segments ---------------------------------- */

typedef struct graph_ctx {
    coll_t *c;
    const coll_search_req_t *req;
    int k;
    const float *q;
    topk_t *t;
} graph_ctx_t;

/* A graph hit goes through search_one like a scanned slot: scored from
 * memory (the graph's copy is byte-identical), filter and threshold
 * applied, so both paths give the same scores and tie-breaking. */
static void graph_hit(void *ctx, uint32_t slot)
{
    graph_ctx_t *g = ctx;
    search_one(g->c, g->req, g->k, g->q, g->t, slot);
}

/* Matches of f among up to 512 sampled slots, scaled to the whole
 * collection: Qdrant's sampling estimate of a filter's cardinality when
 * no payload index can tell.  The sample is scattered by a multiplicative
 * hash, not strided, so payloads that follow insertion order (id % 100)
 * do not alias with it; it is fixed, so plans are reproducible. */
static uint64_t filter_estimate(const coll_t *c, const filter_t *f)
{
    uint32_t n = c->n_slots < 512 ? c->n_slots : 512, hits = 0;

    for (uint32_t i = 0; i < n; i++)
        hits += slot_matches(c, (uint32_t)((i * 2654435761ull) % c->n_slots), f);
    return n ? (uint64_t)hits * c->n_slots / n : 0;
}

/* Qdrant's planner: a filter that leaves few points (at most
 * full_scan_threshold, by the payload index's count or by sampling) is
 * answered exactly; so is an exact request or a name with no segments.
 * Decided before any candidate is collected: a broad filter goes to the
 * graph without materialising (and sorting) hundreds of thousands of
 * index candidates it would not use. */
static bool use_graph(coll_t *c, const coll_search_req_t *req, int k)
{
    size_t n;

    if (req->exact || coll_vindex_segments(c, (uint32_t)k) == 0)
        return false;
    if (req->filter == NULL)
        return true;
    uint64_t est = coll_index_estimate(c, req->filter, &n) ? n : filter_estimate(c, req->filter);
    return est > coll_vindex_full_scan_vectors(c, (uint32_t)k);
}

static int search_graph(coll_t *c, const coll_search_req_t *req, int k, const float *q, topk_t *t,
                        err_t *err)
{
    graph_ctx_t g = { c, req, k, q, t };
    size_t ef = req->hnsw_ef ? req->hnsw_ef : coll_vindex_default_ef(c);
    int rc = coll_vindex_search(c, (uint32_t)k, q, t->k, ef, req->filter, graph_hit, &g, err);

    __atomic_add_fetch(&c->st_graph_searches, 1, __ATOMIC_RELAXED);

    /* the appendable part: every slot no segment serves (kept as a set, so
     * a search of a fully indexed collection does not walk every slot) */
    uint32_t cap;
    const uint32_t *tail = coll_vindex_tail(c, (uint32_t)k, &cap);
    for (uint32_t i = 0; rc == ERR_OK && tail != NULL && i < cap; i++)
        if (tail[i] != 0 && !coll_vindex_indexed(c, (uint32_t)k, tail[i] - 1))
            search_one(c, req, k, q, t, tail[i] - 1);
    for (uint32_t s = 0; rc == ERR_OK && tail == NULL && s < c->n_slots; s++)
        if (!coll_vindex_indexed(c, (uint32_t)k, s))
            search_one(c, req, k, q, t, s);
    return rc;
}

static int search_scan(coll_t *c, const coll_search_req_t *req, int k, const float *q, topk_t *t,
                       err_t *err)
{
    if (req->only_ids == NULL) {
        if (use_graph(c, req, k))
            return search_graph(c, req, k, q, t, err);
        scan_t sc;
        scan_begin(c, req->filter, &sc);
        for (size_t i = 0; i < sc.n; i++)
            search_one(c, req, k, q, t, scan_slot(&sc, i));
        scan_end(&sc);
        return ERR_OK;
    }
    /* candidates may repeat (several prefetches): score each slot once */
    uint8_t *seen = calloc(c->n_slots ? c->n_slots : 1, 1);
    for (size_t i = 0; i < req->n_only_ids; i++) {
        int64_t s = coll_slot_find(c, &req->only_ids[i]);
        if (s < 0 || (seen && seen[s]))
            continue;
        if (seen)
            seen[s] = 1;
        search_one(c, req, k, q, t, (uint32_t)s);
    }
    free(seen);
    return ERR_OK;
}

int coll_points_scored(coll_t *c, const ptid_t *ids, const float *scores, size_t n,
                       const coll_sel_t *sel, cJSON **out, err_t *err)
{
    cJSON *arr = cJSON_CreateArray();
    int rc = arr ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");

    pthread_rwlock_rdlock(&c->lock);
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        int64_t s = coll_slot_find(c, &ids[i]);
        if (s >= 0 && (c->slots[s].flags & SLOT_LIVE))
            rc = add_point(arr, c, (uint32_t)s, sel, scores[i], NULL, err);
    }
    pthread_rwlock_unlock(&c->lock);
    if (rc != ERR_OK) {
        cJSON_Delete(arr);
        arr = NULL;
    }
    *out = arr;
    return rc;
}

int coll_search(coll_t *c, const coll_search_req_t *req, cJSON **out, err_t *err)
{
    int k = coll_vector_index(c, req->using);
    topk_t t = { 0 };
    float *q = NULL;
    cJSON *arr = NULL;
    int rc = ERR_OK;

    *out = NULL;
    if (k < 0)
        return err_set(err, ERR_INVALID, "vector name \"%s\" does not exist",
                       req->using ? req->using : "");
    if (req->dim != c->defs[k].dim)
        return err_set(err, ERR_INVALID, "wrong query vector dimension: expected %u, got %u",
                       c->defs[k].dim, req->dim);
    q = malloc(req->dim * sizeof(float) + 1);
    t.k = req->limit + req->offset;
    t.h = malloc((t.k ? t.k : 1) * sizeof(hit_t));
    arr = cJSON_CreateArray();
    if (q == NULL || t.h == NULL || arr == NULL) {
        rc = err_set(err, ERR_NOMEM, "no memory for search");
        goto out;
    }
    memcpy(q, req->vector, req->dim * sizeof(float));
    dist_prepare((enum dist_metric)c->defs[k].metric, q, req->dim);
    t.metric = c->defs[k].metric;
    t.higher = dist_higher_better((enum dist_metric)t.metric);
    t.c = c;
    pthread_rwlock_rdlock(&c->lock);
    rc = search_scan(c, req, k, q, &t, err);
    tl_sort_topk = &t;
    qsort(t.h, t.n, sizeof(hit_t), hit_cmp);
    for (size_t i = req->offset; i < t.n && rc == ERR_OK; i++)
        rc = add_point(arr, c, t.h[i].slot, req->sel, t.h[i].score, NULL, err);
    pthread_rwlock_unlock(&c->lock);
out:
    free(q);
    free(t.h);
    if (rc != ERR_OK) {
        cJSON_Delete(arr);
        return rc;
    }
    *out = arr;
    return ERR_OK;
}

int coll_vector_get(coll_t *c, const ptid_t *id, const char *name, float *buf, uint32_t cap,
                    uint32_t *dim, err_t *err)
{
    int k = coll_vector_index(c, name);
    int rc = ERR_OK;

    if (k < 0)
        return err_set(err, ERR_INVALID, "vector name \"%s\" does not exist", name ? name : "");
    pthread_rwlock_rdlock(&c->lock);
    int64_t s = coll_slot_find(c, id);
    if (s < 0 || !(c->slots[s].flags & SLOT_LIVE) || !c->vs[k].present[s]) {
        char ids[PTID_STR_MAX];
        ptid_format(id, ids, sizeof(ids));
        rc = err_set(err, ERR_NOT_FOUND, "no point with id %s%s", ids,
                     s >= 0 && (c->slots[s].flags & SLOT_LIVE) ? " has that vector" : " found");
    } else {
        *dim = c->defs[k].dim;
        memcpy(buf, c->vs[k].data + (size_t)s * *dim, (cap < *dim ? cap : *dim) * sizeof(float));
    }
    pthread_rwlock_unlock(&c->lock);
    return rc;
}
