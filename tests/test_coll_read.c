/*
 * test_coll_read.c - the collection read path against naive references:
 * exact search for every metric (ids, scores as Qdrant reports them,
 * tie-breaking, limit / offset, score_threshold), filters as applied by
 * search / count / scroll after deletes and payload updates, with_payload
 * and with_vector selectors, scroll paging and order_by, retrieve, readers
 * racing a writer (never a half-applied op), and restart equality.
 *
 * The references are deliberately dumb: a model of every point kept by the
 * test, scanned linearly, scored in double precision from the vectors as
 * given (normalised here for Cosine), and filtered with filter_match (the
 * filter module has its own brute-force tests; what is tested here is that
 * the read path applies it to exactly the right points).
 *
 * Seeds are printed; VECLOG_TEST_SEED replays a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "store/coll.h"
#include "store/dist.h"
#include "store/filter.h"
#include "tests/testutil.h"

#define MAXV 4
#define TOL_REL 1e-4

/* ---- fixture ----------------------------------------------------------- */

typedef struct fx {
    char *dir;
    coll_t *c;
    coll_vector_def_t defs[MAXV];
    uint32_t n_defs;
    uint64_t checkpoint_bytes;
} fx_t;

static coll_t *fx_open(fx_t *f)
{
    coll_opts_t o = { .vectors = f->defs, .n_vectors = f->n_defs,
                      .checkpoint_bytes = f->checkpoint_bytes };
    err_t e;
    coll_t *c = NULL;

    o.wal.sync_mode = WAL_SYNC_NONE;
    if (coll_open(f->dir, &o, &c, &e) != ERR_OK)
        fail_msg("coll_open: %s", e.msg);
    return c;
}

/* A fresh, empty collection with these vectors (names are borrowed). */
static void fx_create(fx_t *f, const coll_vector_def_t *defs, uint32_t n)
{
    coll_close(f->c);
    f->c = NULL;
    tu_rmrf(f->dir);
    memcpy(f->defs, defs, n * sizeof(*defs));
    f->n_defs = n;
    f->c = fx_open(f);
}

static void fx_reopen(fx_t *f)
{
    coll_close(f->c);
    f->c = fx_open(f);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir("collread");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    coll_close(f->c);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- ids ------------------------------------------------------------- */

/* The order scroll must follow, written independently of ptid_cmp:
 * integers before UUIDs, integers numerically, UUIDs bytewise (which is
 * the order of their canonical lower-case text). */
static int id_cmp(const ptid_t *a, const ptid_t *b)
{
    if (a->kind != b->kind)
        return a->kind == PTID_NUM ? -1 : 1;
    if (a->kind == PTID_NUM)
        return a->num < b->num ? -1 : a->num > b->num;
    return memcmp(a->uuid, b->uuid, 16);
}

static bool id_eq(const ptid_t *a, const ptid_t *b)
{
    return id_cmp(a, b) == 0;
}

static ptid_t uuid_id(uint64_t hi, uint64_t lo)
{
    ptid_t id = { .kind = PTID_UUID };
    for (int i = 0; i < 8; i++) {
        id.uuid[i] = (uint8_t)(hi >> (56 - 8 * i));
        id.uuid[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
    }
    return id;
}

static ptid_t rand_id(uint64_t *s)
{
    uint64_t r = tu_rand(s) % 100;
    if (r < 15)
        return uuid_id(tu_rand(s), tu_rand(s));
    if (r < 60)
        return ptid_num(tu_rand(s) % 100000);
    if (r < 85)
        return ptid_num(tu_rand(s) % (1ull << 32));
    return ptid_num(tu_rand(s) % (1ull << 53));
}

static const char *idstr(const ptid_t *id, char *buf)
{
    ptid_format(id, buf, PTID_STR_MAX);
    return buf;
}

static ptid_t json_id(const cJSON *point)
{
    ptid_t id;
    err_t e;
    if (ptid_from_json(cJSON_GetObjectItemCaseSensitive(point, "id"), &id, &e) != ERR_OK)
        fail_msg("result has a bad id: %s", e.msg);
    return id;
}

/* ---- the model --------------------------------------------------------- */

typedef struct mpt {
    ptid_t id;
    bool live;
    cJSON *payload;           /* object; owned */
    float *vec[MAXV];         /* as given (not normalised); NULL = absent */
} mpt_t;

/* Every id the test will ever use, sorted by id_cmp: index order is scroll
 * order. */
typedef struct model {
    mpt_t *p;
    size_t n;
    const coll_vector_def_t *defs;
    uint32_t n_defs;
} model_t;

static int mpt_cmp(const void *a, const void *b)
{
    return id_cmp(&((const mpt_t *)a)->id, &((const mpt_t *)b)->id);
}

static void model_init(model_t *m, size_t n, const coll_vector_def_t *defs, uint32_t n_defs,
                       uint64_t *s)
{
    m->p = calloc(n, sizeof(*m->p));
    m->n = n;
    m->defs = defs;
    m->n_defs = n_defs;
    for (size_t i = 0; i < n; i++)
        m->p[i].id = rand_id(s);
    for (;;) {
        bool dup = false;
        qsort(m->p, n, sizeof(*m->p), mpt_cmp);
        for (size_t i = 1; i < n; i++)
            if (id_eq(&m->p[i].id, &m->p[i - 1].id)) {
                m->p[i].id = rand_id(s);
                dup = true;
            }
        if (!dup)
            break;
    }
}

static void model_free(model_t *m)
{
    for (size_t i = 0; i < m->n; i++) {
        cJSON_Delete(m->p[i].payload);
        for (int k = 0; k < MAXV; k++)
            free(m->p[i].vec[k]);
    }
    free(m->p);
    memset(m, 0, sizeof(*m));
}

static ssize_t model_find(const model_t *m, const ptid_t *id)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = id_cmp(&m->p[mid].id, id);
        if (c == 0)
            return (ssize_t)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static size_t model_idx(const model_t *m, const cJSON *point)
{
    ptid_t id = json_id(point);
    ssize_t i = model_find(m, &id);
    char b[PTID_STR_MAX];
    if (i < 0)
        fail_msg("result id %s was never written", idstr(&id, b));
    return (size_t)i;
}

typedef struct mhv {
    const model_t *m;
    size_t i;
} mhv_t;

static bool model_has_vector(void *ctx, const char *name)
{
    const mhv_t *h = ctx;
    for (uint32_t k = 0; k < h->m->n_defs; k++)
        if (strcmp(h->m->defs[k].name, name) == 0)
            return h->m->p[h->i].vec[k] != NULL;
    return false;
}

static bool model_match(const model_t *m, size_t i, const filter_t *f)
{
    if (!m->p[i].live)
        return false;
    if (f == NULL)
        return true;
    mhv_t h = { m, i };
    filter_point_t fp = { &m->p[i].id, m->p[i].payload, model_has_vector, &h };
    return filter_match(f, &fp);
}

static size_t model_count(const model_t *m, const filter_t *f)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += model_match(m, i, f);
    return n;
}

/* ---- writing --------------------------------------------------------- */

static void write_op(coll_t *c, op_t *op)
{
    err_t e;
    int rc = coll_write(c, op, NULL, &e);
    const char *what = op_type_name(op->type);
    op_clear(op);
    if (rc != ERR_OK)
        fail_msg("coll_write(%s): %s", what, e.msg);
}

static void op_add_model_point(op_t *op, const model_t *m, size_t i)
{
    op_point_t *p = op_point_add(op);
    p->id = m->p[i].id;
    p->payload = m->p[i].payload ? cJSON_PrintUnformatted(m->p[i].payload) : NULL;
    for (uint32_t k = 0; k < m->n_defs; k++)
        if (m->p[i].vec[k] != NULL)
            assert_int_equal(op_vec_add(p, m->defs[k].name, m->p[i].vec[k], m->defs[k].dim),
                             ERR_OK);
}

static void shuffle(size_t *a, size_t n, uint64_t *s)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(tu_rand(s) % i), t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static size_t *perm(size_t n, uint64_t *s)
{
    size_t *a = malloc((n ? n : 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        a[i] = i;
    shuffle(a, n, s);
    return a;
}

/* Upsert the model points whose live flag is set, in random order (so slot
 * order differs from id order), batch points per op. */
static void upsert_live(coll_t *c, const model_t *m, size_t batch, uint64_t *s)
{
    size_t *order = perm(m->n, s);
    op_t op = { .type = OP_UPSERT };
    for (size_t j = 0; j < m->n; j++) {
        if (!m->p[order[j]].live)
            continue;
        op_add_model_point(&op, m, order[j]);
        if (op.n_points == batch) {
            write_op(c, &op);
            op = (op_t){ .type = OP_UPSERT };
        }
    }
    if (op.n_points > 0)
        write_op(c, &op);
    op_clear(&op);
    free(order);
}

static void delete_ids(coll_t *c, model_t *m, const size_t *idx, size_t n)
{
    op_t op = { .type = OP_DELETE };
    for (size_t j = 0; j < n; j++) {
        op_point_add(&op)->id = m->p[idx[j]].id;
        m->p[idx[j]].live = false;
        cJSON_Delete(m->p[idx[j]].payload);
        m->p[idx[j]].payload = NULL;
        for (int k = 0; k < MAXV; k++) {
            free(m->p[idx[j]].vec[k]);
            m->p[idx[j]].vec[k] = NULL;
        }
    }
    write_op(c, &op);
}

static filter_t *parse_filter(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    filter_t *f = NULL;
    err_t e;
    if (j == NULL)
        fail_msg("test filter is not JSON: %s", text);
    if (filter_parse(j, &f, &e) != ERR_OK)
        fail_msg("test filter %s: %s", text, e.msg);
    cJSON_Delete(j);
    return f;
}

static void delete_by_filter(coll_t *c, model_t *m, const char *ftext)
{
    filter_t *f = parse_filter(ftext);
    op_t op = { .type = OP_DELETE, .filter = strdup(ftext) };
    size_t hit = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (!model_match(m, i, f))
            continue;
        hit++;
        m->p[i].live = false;
        cJSON_Delete(m->p[i].payload);
        m->p[i].payload = NULL;
        for (int k = 0; k < MAXV; k++) {
            free(m->p[i].vec[k]);
            m->p[i].vec[k] = NULL;
        }
    }
    assert_true(hit > 0);
    write_op(c, &op);
    filter_free(f);
}

/* Top-level merge, as set_payload without key does. */
static void json_merge(cJSON *dst, const cJSON *src)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, src) {
        cJSON *copy = cJSON_Duplicate(it, 1);
        if (cJSON_HasObjectItem(dst, it->string))
            cJSON_ReplaceItemInObjectCaseSensitive(dst, it->string, copy);
        else
            cJSON_AddItemToObject(dst, it->string, copy);
    }
}

/* ---- random data ----------------------------------------------------- */

static float *rand_vec(uint64_t *s, uint32_t dim, bool ints)
{
    float *v = malloc(dim * sizeof(float));
    bool zero = tu_rand(s) % 100 == 0;
    for (uint32_t d = 0; d < dim; d++) {
        if (zero)
            v[d] = 0;
        else if (ints)
            v[d] = (float)((int)(tu_rand(s) % 5) - 2);
        else
            v[d] = (float)(tu_randf(s) * 2 - 1);
    }
    if (dim == 1 && !ints && !zero && fabsf(v[0]) < 0.01f)
        v[0] = 0.5f;
    return v;
}

static float *vec_dup(const float *v, uint32_t dim)
{
    float *d = malloc(dim * sizeof(float));
    memcpy(d, v, dim * sizeof(float));
    return d;
}

static const char *const k_colors[] = { "red", "green", "blue", "Red", "" };
static const char *const k_tags[] = { "t1", "t2", "t3", "t4" };

static void fmt_datetime(int64_t t, int style, char *buf, size_t cap)
{
    time_t tt = (time_t)(t + (style == 2 ? 7200 : 0));
    struct tm tm;
    gmtime_r(&tt, &tm);
    switch (style) {
    case 0: strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm); break;
    case 1: strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm); break;
    default: strftime(buf, cap, "%Y-%m-%dT%H:%M:%S+02:00", &tm); break;
    }
}

static cJSON *rand_payload(uint64_t *s)
{
    cJSON *p = cJSON_CreateObject();
    uint64_t r;

    if (tu_rand(s) % 10 != 0)
        cJSON_AddNumberToObject(p, "i", (double)(tu_rand(s) % 20));
    if (tu_rand(s) % 5 != 0)
        cJSON_AddNumberToObject(p, "f", (double)(tu_rand(s) % 1000) / 1000.0);
    r = tu_rand(s) % 20;
    if (r < 17)
        cJSON_AddStringToObject(p, "s", k_colors[tu_rand(s) % 5]);
    else if (r == 17)
        cJSON_AddNumberToObject(p, "s", 3);
    if (tu_rand(s) % 10 < 7) {
        cJSON *a = cJSON_AddArrayToObject(p, "tags");
        for (uint64_t n = tu_rand(s) % 4; n > 0; n--)
            cJSON_AddItemToArray(a, cJSON_CreateString(k_tags[tu_rand(s) % 4]));
    }
    if (tu_rand(s) % 10 < 6) {
        cJSON *a = cJSON_AddArrayToObject(p, "nums");
        for (uint64_t n = tu_rand(s) % 4; n > 0; n--)
            cJSON_AddItemToArray(a, cJSON_CreateNumber((double)(tu_rand(s) % 6)));
    }
    r = tu_rand(s) % 20;
    if (r < 14) {
        cJSON *o = cJSON_AddObjectToObject(p, "obj");
        cJSON_AddNumberToObject(o, "a", (double)(tu_rand(s) % 5));
        cJSON *b = cJSON_AddObjectToObject(o, "b");
        cJSON_AddStringToObject(b, "c", tu_rand(s) % 2 ? "x" : "y");
    } else if (r == 14) {
        cJSON_AddNumberToObject(p, "obj", 1);
    }
    if (tu_rand(s) % 10 < 6) {
        cJSON *a = cJSON_AddArrayToObject(p, "arr");
        for (uint64_t n = tu_rand(s) % 4; n > 0; n--) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "x", (double)(tu_rand(s) % 10));
            cJSON_AddStringToObject(o, "y", tu_rand(s) % 2 ? "p" : "q");
            cJSON_AddItemToArray(a, o);
        }
    }
    r = tu_rand(s) % 5;
    if (r == 0)
        cJSON_AddNullToObject(p, "n");
    else if (r == 1)
        cJSON_AddNumberToObject(p, "n", 1);
    if (tu_rand(s) % 10 < 7) {
        char buf[64];
        int64_t t = 1640995200 + (int64_t)(tu_rand(s) % (3 * 365 * 86400ull));
        fmt_datetime(t, (int)(tu_rand(s) % 3), buf, sizeof(buf));
        cJSON_AddStringToObject(p, "dt", buf);
    }
    return p;
}

/* ---- JSON checks ------------------------------------------------------- */

static void assert_json_eq(const cJSON *got, const cJSON *want, const char *label)
{
    if (!cJSON_Compare(got, want, 1)) {
        char *g = got ? cJSON_PrintUnformatted(got) : strdup("(missing)");
        char *w = cJSON_PrintUnformatted(want);
        fail_msg("%s: got %s, want %s", label, g, w);
    }
}

static void assert_json_text(const cJSON *got, const char *want, const char *label)
{
    cJSON *w = cJSON_Parse(want);
    assert_non_null(w);
    assert_json_eq(got, w, label);
    cJSON_Delete(w);
}

/* An object has exactly these keys (NULL-terminated). */
static void assert_keys(const cJSON *o, const char *const *keys, const char *label)
{
    size_t n = 0;
    assert_true(cJSON_IsObject(o));
    for (; keys[n] != NULL; n++)
        if (!cJSON_HasObjectItem(o, keys[n]))
            fail_msg("%s: no \"%s\" in %s", label, keys[n], cJSON_PrintUnformatted(o));
    if ((size_t)cJSON_GetArraySize(o) != n)
        fail_msg("%s: unexpected keys in %s", label, cJSON_PrintUnformatted(o));
}

/* ---- search reference ------------------------------------------------ */

static double tol_of(double x)
{
    return TOL_REL * fmax(1.0, fabs(x));
}

/* The score Qdrant reports, in double precision from the vectors as given:
 * Cosine normalises both sides (leaving near-zero vectors alone, as Qdrant
 * does), Euclid is the square root of the squared L2 distance. */
static double ref_score(int metric, const float *q, const float *v, uint32_t dim)
{
    double s = 0, qq = 0, vv = 0;
    for (uint32_t d = 0; d < dim; d++) {
        double a = q[d], b = v[d];
        switch (metric) {
        case DIST_COSINE:
        case DIST_DOT:
            s += a * b;
            qq += a * a;
            vv += b * b;
            break;
        case DIST_EUCLID:
            s += (a - b) * (a - b);
            break;
        default:
            s += fabs(a - b);
            break;
        }
    }
    if (metric == DIST_COSINE) {
        double qn = qq < FLT_EPSILON ? 1.0 : sqrt(qq);
        double vn = vv < FLT_EPSILON ? 1.0 : sqrt(vv);
        return s / (qn * vn);
    }
    return metric == DIST_EUCLID ? sqrt(s) : s;
}

typedef struct cand {
    double score;
    size_t idx;
} cand_t;

static const model_t *g_sort_model;
static bool g_sort_higher;

static int cand_cmp(const void *a, const void *b)
{
    const cand_t *x = a, *y = b;
    if (x->score != y->score)
        return (g_sort_higher ? x->score > y->score : x->score < y->score) ? -1 : 1;
    return id_cmp(&g_sort_model->p[x->idx].id, &g_sort_model->p[y->idx].id);
}

typedef struct sq {
    uint32_t k;               /* vector index */
    const filter_t *filter;
    const float *q;
    size_t limit, offset;
    bool has_thr;
    float thr;
    const coll_sel_t *sel;    /* NULL: no payload, no vector */
} sq_t;

/* Run one search and check it against the naive reference:
 *  - every hit is a live point that passes the filter and has the vector,
 *    its score is the reference score (1e-4 relative), once per page;
 *  - hits are sorted by score, ties by smaller id;
 *  - hit i has the reference score of rank offset + i, and its id unless
 *    the two are tied within the tolerance;
 *  - the page length is what the reference gives (the threshold's edge is
 *    fuzzy by the tolerance);
 *  - payload / vector are as the selector asks.
 * Returns the number of hits. */
static size_t check_search(coll_t *c, const model_t *m, const sq_t *sq, const char *label)
{
    const coll_vector_def_t *def = &m->defs[sq->k];
    bool higher = dist_higher_better((enum dist_metric)def->metric);
    cand_t *cands = malloc((m->n ? m->n : 1) * sizeof(*cands));
    double *score_of = malloc((m->n ? m->n : 1) * sizeof(double));
    bool *seen = calloc(m->n ? m->n : 1, 1);
    coll_sel_t none = { 0 };
    size_t nc = 0, lo_n, hi_n;
    cJSON *out = NULL, *it;
    err_t e;
    char b1[PTID_STR_MAX], b2[PTID_STR_MAX];

    for (size_t i = 0; i < m->n; i++) {
        score_of[i] = NAN;
        if (!model_match(m, i, sq->filter) || m->p[i].vec[sq->k] == NULL)
            continue;
        score_of[i] = ref_score(def->metric, sq->q, m->p[i].vec[sq->k], def->dim);
        cands[nc++] = (cand_t){ score_of[i], i };
    }
    g_sort_model = m;
    g_sort_higher = higher;
    qsort(cands, nc, sizeof(*cands), cand_cmp);
    lo_n = hi_n = nc;
    if (sq->has_thr) {
        double t = tol_of(sq->thr);
        lo_n = hi_n = 0;
        for (size_t j = 0; j < nc; j++) {
            double sc = cands[j].score;
            lo_n += higher ? sc > sq->thr + t : sc < sq->thr - t;
            hi_n += higher ? sc >= sq->thr - t : sc <= sq->thr + t;
        }
    }
    lo_n = lo_n > sq->offset ? lo_n - sq->offset : 0;
    hi_n = hi_n > sq->offset ? hi_n - sq->offset : 0;
    if (lo_n > sq->limit)
        lo_n = sq->limit;
    if (hi_n > sq->limit)
        hi_n = sq->limit;

    coll_search_req_t req = {
        .using = def->name, .vector = sq->q, .dim = def->dim, .filter = sq->filter,
        .limit = sq->limit, .offset = sq->offset, .has_threshold = sq->has_thr,
        .score_threshold = sq->thr, .sel = sq->sel ? sq->sel : &none,
    };
    if (coll_search(c, &req, &out, &e) != ERR_OK)
        fail_msg("%s: coll_search: %s", label, e.msg);
    size_t ne = (size_t)cJSON_GetArraySize(out);
    if (ne < lo_n || ne > hi_n)
        fail_msg("%s: %zu hits, expected %zu..%zu (limit %zu offset %zu, %zu candidates)", label,
                 ne, lo_n, hi_n, sq->limit, sq->offset, nc);

    size_t pos = 0;
    double prev = 0;
    size_t prev_idx = 0;
    cJSON_ArrayForEach(it, out) {
        static const char *const keys[] = { "id", "version", "score", "payload", "vector", NULL };
        assert_keys(it, keys, label);
        size_t idx = model_idx(m, it);
        const cJSON *sj = cJSON_GetObjectItemCaseSensitive(it, "score");
        if (!cJSON_IsNumber(sj) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(it, "version")))
            fail_msg("%s: score / version not numbers", label);
        double es = sj->valuedouble;
        if (isnan(score_of[idx]))
            fail_msg("%s: hit %s is not a candidate (deleted, filtered out or no vector)", label,
                     idstr(&m->p[idx].id, b1));
        if (seen[idx])
            fail_msg("%s: hit %s returned twice", label, idstr(&m->p[idx].id, b1));
        seen[idx] = true;
        if (fabs(es - score_of[idx]) > tol_of(score_of[idx]))
            fail_msg("%s: hit %s scored %.9g, reference %.9g", label, idstr(&m->p[idx].id, b1), es,
                     score_of[idx]);
        if (sq->has_thr && (higher ? (float)es < sq->thr : (float)es > sq->thr))
            fail_msg("%s: hit %s (%.9g) beyond score_threshold %.9g", label,
                     idstr(&m->p[idx].id, b1), es, (double)sq->thr);
        const cand_t *want = &cands[sq->offset + pos];
        if (fabs(es - want->score) > tol_of(want->score) ||
            (idx != want->idx && fabs(score_of[idx] - want->score) > tol_of(want->score)))
            fail_msg("%s: rank %zu is %s (%.9g), reference %s (%.9g)", label, sq->offset + pos,
                     idstr(&m->p[idx].id, b1), es, idstr(&m->p[want->idx].id, b2), want->score);
        if (pos > 0) {
            if (es == prev) {
                if (id_cmp(&m->p[prev_idx].id, &m->p[idx].id) >= 0)
                    fail_msg("%s: tied score %.9g: %s before %s (ties go to the smaller id)", label,
                             es, idstr(&m->p[prev_idx].id, b1), idstr(&m->p[idx].id, b2));
            } else if (higher ? es > prev : es < prev) {
                fail_msg("%s: hits not sorted at rank %zu", label, pos);
            }
        }
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(it, "payload");
        const cJSON *vj = cJSON_GetObjectItemCaseSensitive(it, "vector");
        if (sq->sel == NULL || sq->sel->payload == COLL_PAYLOAD_NONE)
            assert_true(cJSON_IsNull(pl));
        else if (sq->sel->payload == COLL_PAYLOAD_ALL)
            assert_json_eq(pl, m->p[idx].payload, label);
        if (sq->sel == NULL || sq->sel->vector == COLL_VECTOR_NONE)
            assert_true(cJSON_IsNull(vj));
        prev = es;
        prev_idx = idx;
        pos++;
    }
    cJSON_Delete(out);
    free(cands);
    free(score_of);
    free(seen);
    return ne;
}

/* The engine's own score at a rank of an unthresholded, unfiltered search
 * (so thresholds can sit exactly on a stored score), or NAN. */
static float engine_score_at(coll_t *c, const model_t *m, uint32_t k, const float *q, size_t rank)
{
    coll_sel_t none = { 0 };
    coll_search_req_t req = { .using = m->defs[k].name, .vector = q, .dim = m->defs[k].dim,
                              .limit = 1, .offset = rank, .sel = &none };
    cJSON *out;
    err_t e;
    float r = NAN;
    assert_int_equal(coll_search(c, &req, &out, &e), ERR_OK);
    if (cJSON_GetArraySize(out) == 1)
        r = (float)cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(out, 0), "score")->valuedouble;
    cJSON_Delete(out);
    return r;
}
