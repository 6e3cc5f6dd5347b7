/*
 * test_coll_vindex.c - HNSW segments of a collection (store/coll_vindex.c):
 * the optimizer indexes, searches go through the graphs plus the
 * appendable part, updates and deletes never leak stale copies, segments
 * survive a restart without a rebuild, filtered searches follow Qdrant's
 * planner, vacuum reclaims deleted nodes, and a corrupt segment file only
 * costs a re-index.
 *
 * Quality is measured against the exact answer of the same collection
 * (coll_search_req_t.exact): recall@10 over clustered d=32 data.
 * Thresholds are small (1000 vectors of d=32 = 125 KB) so a few thousand
 * points are indexed in well under a second.  Seeds are printed;
 * VECLOG_TEST_SEED replays a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/coll.h"
#include "store/dist.h"
#include "store/filter.h"
#include "store/log.h"
#include "tests/testutil.h"

#define DIM 32
#define N 5000
#define NCLUST 16
#define K 10
#define NQ 40
#define THRESH_KB 125 /* 1000 vectors of DIM floats */

typedef struct fx {
    char *dir;
    coll_t *c;
    int metric;
    uint64_t fst_kb;          /* full_scan_threshold */
    bool on_disk;             /* segments opened with mmap */
    uint64_t rng;
    float centers[NCLUST][DIM];
} fx_t;

static coll_t *fx_open(fx_t *f)
{
    coll_vector_def_t def = { .name = (char *)"", .dim = DIM, .metric = f->metric };
    coll_opts_t o = { .vectors = &def, .n_vectors = 1, .indexing_threshold_kb = THRESH_KB,
                      .full_scan_threshold_kb = f->fst_kb, .vacuum_min_vector_number = 100,
                      .deleted_threshold = 0.2, .hnsw_on_disk = f->on_disk,
                      .default_segment_number = 4 };
    coll_t *c = NULL;
    err_t e;

    o.wal.sync_mode = WAL_SYNC_NONE;
    if (coll_open(f->dir, &o, &c, &e) != ERR_OK)
        fail_msg("coll_open: %s", e.msg);
    return c;
}

static void fx_init(fx_t *f, int metric, uint64_t fst_kb)
{
    memset(f, 0, sizeof(*f));
    f->dir = tu_tmpdir("coll_vindex");
    f->metric = metric;
    f->fst_kb = fst_kb;
    f->rng = tu_seed(0x5eed + (uint64_t)metric);
    for (int i = 0; i < NCLUST; i++)
        for (int d = 0; d < DIM; d++)
            f->centers[i][d] = (float)(tu_randf(&f->rng) * 2 - 1);
    f->c = fx_open(f);
}

static void fx_done(fx_t *f)
{
    coll_close(f->c);
    tu_rmrf(f->dir);
    free(f->dir);
}

static void point_vec(fx_t *f, float *v)
{
    int cl = (int)(tu_rand(&f->rng) % NCLUST);
    for (int d = 0; d < DIM; d++)
        v[d] = f->centers[cl][d] + (float)(tu_randf(&f->rng) - 0.5) * 0.4f;
}

/* Upsert ids [from, to) with clustered vectors and payload {"r": id % 100}. */
static void insert(fx_t *f, uint64_t from, uint64_t to)
{
    op_t op = { .type = OP_UPSERT };
    err_t e;

    for (uint64_t id = from; id < to; id++) {
        op_point_t *p = op_point_add(&op);
        float v[DIM];
        char pl[64];
        point_vec(f, v);
        p->id = ptid_num(id);
        snprintf(pl, sizeof(pl), "{\"r\":%llu}", (unsigned long long)(id % 100));
        p->payload = strdup(pl);
        op_vec_add(p, "", v, DIM);
    }
    if (coll_write(f->c, &op, NULL, &e) != ERR_OK)
        fail_msg("upsert: %s", e.msg);
    op_clear(&op);
}

static void delete_ids(coll_t *c, const uint64_t *ids, size_t n)
{
    op_t op = { .type = OP_DELETE };
    err_t e;
    for (size_t i = 0; i < n; i++)
        op_point_add(&op)->id = ptid_num(ids[i]);
    if (coll_write(c, &op, NULL, &e) != ERR_OK)
        fail_msg("delete: %s", e.msg);
    op_clear(&op);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Poll until the optimizer is idle with `want` indexed vectors (and
 * pred on the info, if given). */
static void wait_indexed(coll_t *c, uint64_t want, coll_info_t *out)
{
    double end = now_s() + 120;
    coll_info_t in;

    for (;;) {
        coll_info_get(c, &in);
        if (in.indexed_vectors == want && !in.optimizing && in.segments <= 4 &&
            (in.index_nodes == 0 || in.index_deleted * 5 <= in.index_nodes))
            break;
        if (now_s() > end)
            fail_msg("timed out: indexed %llu of %llu", (unsigned long long)in.indexed_vectors,
                     (unsigned long long)want);
        usleep(5000);
    }
    if (out != NULL)
        *out = in;
}

/* Search: ids and scores (room for limit) best first; returns the count. */
static size_t search(coll_t *c, const float *q, size_t limit, const filter_t *flt, bool exact,
                     uint64_t *ids, float *scores)
{
    coll_sel_t sel = { 0 };
    coll_search_req_t req = { .vector = q, .dim = DIM, .filter = flt, .limit = limit,
                              .sel = &sel, .exact = exact };
    cJSON *arr = NULL, *it;
    size_t n = 0;
    err_t e;

    if (coll_search(c, &req, &arr, &e) != ERR_OK)
        fail_msg("search: %s", e.msg);
    cJSON_ArrayForEach(it, arr) {
        ids[n] = (uint64_t)cJSON_GetObjectItem(it, "id")->valuedouble;
        if (scores != NULL)
            scores[n] = (float)cJSON_GetObjectItem(it, "score")->valuedouble;
        n++;
    }
    cJSON_Delete(arr);
    return n;
}

/* recall@K of graph searches vs exact ones over NQ queries. */
static double recall(fx_t *f, const filter_t *flt)
{
    size_t hit = 0, total = 0;

    for (int qi = 0; qi < NQ; qi++) {
        float q[DIM];
        uint64_t a[K], b[K];
        point_vec(f, q);
        size_t na = search(f->c, q, K, flt, false, a, NULL);
        size_t nb = search(f->c, q, K, flt, true, b, NULL);
        for (size_t i = 0; i < nb; i++)
            for (size_t j = 0; j < na; j++)
                hit += a[j] == b[i];
        total += nb;
    }
    return total ? (double)hit / (double)total : 1.0;
}

static filter_t *F(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    filter_t *flt = NULL;
    err_t e;
    if (j == NULL || filter_parse(j, &flt, &e) != ERR_OK)
        fail_msg("filter %s", text);
    cJSON_Delete(j);
    return flt;
}

/* (a) indexed in batches, every metric: recall >= 0.95. */
static void test_coll_vindex_recall(void **state)
{
    (void)state;
    for (int m = 0; m < DIST_METRIC_COUNT; m++) {
        fx_t f;
        coll_info_t in;
        fx_init(&f, m, 0);
        for (uint64_t b = 0; b < N; b += 1000)
            insert(&f, b, b + 1000);
        wait_indexed(f.c, N, &in);
        assert_true(in.segments >= 1);
        assert_true(in.index_builds >= 1);
        double r = recall(&f, NULL);
        uint64_t graph = in.graph_searches;
        coll_info_get(f.c, &in);
        assert_int_equal(in.graph_searches, graph + NQ); /* exact ones do not count */
        printf("metric %s: recall@10 %.3f, segments %u, builds %llu\n",
               dist_metric_name((enum dist_metric)m), r, in.segments,
               (unsigned long long)in.index_builds);
        assert_true(r >= 0.95);
        fx_done(&f);
    }
}

/* ---- (b) updates and deletes while searching --------------------------- */

typedef struct race {
    fx_t *f;
    uint8_t deleted[N];       /* set (atomically) after the delete returned */
    int done;                 /* atomic */
    uint64_t checked;
    char fail[600];
} race_t;

static void *race_writer(void *arg)
{
    race_t *r = arg;
    fx_t *f = r->f;
    uint64_t rng = 77;

    for (int round = 0; round < 300; round++) {
        uint64_t id = tu_rand(&rng) % N;
        if (round % 3 == 0) {
            delete_ids(f->c, &id, 1);
            __atomic_store_n(&r->deleted[id], 1, __ATOMIC_RELEASE);
            continue;
        }
        op_t op = { .type = OP_UPSERT };
        for (int i = 0; i < 8; i++) {
            uint64_t uid = tu_rand(&rng) % N;
            if (__atomic_load_n(&r->deleted[uid], __ATOMIC_ACQUIRE))
                continue;
            op_point_t *p = op_point_add(&op);
            float v[DIM];
            for (int d = 0; d < DIM; d++)
                v[d] = (float)(tu_randf(&rng) * 2 - 1);
            p->id = ptid_num(uid);
            op_vec_add(p, "", v, DIM);
        }
        err_t e;
        if (op.n_points > 0 && coll_write(f->c, &op, NULL, &e) != ERR_OK)
            snprintf(r->fail, sizeof(r->fail), "update: %s", e.msg);
        op_clear(&op);
    }
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Check one search: nothing deleted before it started, and every score
 * is the distance to the vector the point holds. */
static void race_check(race_t *r, const float *q)
{
    uint8_t before[N];
    coll_sel_t sel = { .vector = COLL_VECTOR_ALL };
    coll_search_req_t req = { .vector = q, .dim = DIM, .limit = K, .sel = &sel };
    float qp[DIM];
    cJSON *arr = NULL, *it;
    err_t e;

    for (int i = 0; i < N; i++)
        before[i] = __atomic_load_n(&r->deleted[i], __ATOMIC_ACQUIRE);
    memcpy(qp, q, sizeof(qp));
    dist_prepare((enum dist_metric)r->f->metric, qp, DIM);
    if (coll_search(r->f->c, &req, &arr, &e) != ERR_OK) {
        snprintf(r->fail, sizeof(r->fail), "search: %s", e.msg);
        return;
    }
    cJSON_ArrayForEach(it, arr) {
        uint64_t id = (uint64_t)cJSON_GetObjectItem(it, "id")->valuedouble;
        float score = (float)cJSON_GetObjectItem(it, "score")->valuedouble, v[DIM];
        const cJSON *vj = cJSON_GetObjectItem(it, "vector");
        for (int d = 0; d < DIM; d++)
            v[d] = (float)cJSON_GetArrayItem(vj, d)->valuedouble;
        float want = dist_score((enum dist_metric)r->f->metric, qp, v, DIM);
        if (id < N && before[id])
            snprintf(r->fail, sizeof(r->fail), "deleted point %llu returned",
                     (unsigned long long)id);
        if (fabsf(score - want) > 1e-5f * (1 + fabsf(want)))
            snprintf(r->fail, sizeof(r->fail), "point %llu: score %g, its vector gives %g",
                     (unsigned long long)id, score, want);
        r->checked++;
    }
    cJSON_Delete(arr);
}

static void test_coll_vindex_updates_deletes(void **state)
{
    (void)state;
    fx_t f;
    race_t *r = calloc(1, sizeof(*r));
    pthread_t w;

    fx_init(&f, DIST_EUCLID, 0);
    insert(&f, 0, N);
    wait_indexed(f.c, N, NULL);
    r->f = &f;
    pthread_create(&w, NULL, race_writer, r);
    uint64_t rng = 99;
    while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE) && r->fail[0] == '\0') {
        float q[DIM];
        for (int d = 0; d < DIM; d++)
            q[d] = (float)(tu_randf(&rng) * 2 - 1);
        race_check(r, q);
    }
    pthread_join(w, NULL);
    if (r->fail[0])
        fail_msg("%s", r->fail);
    assert_true(r->checked > 0);
    /* every live point is found by its own vector (updated ones too);
     * graph search is approximate: allow 1% misses */
    size_t tried = 0, missed = 0;
    for (uint64_t id = 0; id < N; id += 7) {
        float v[DIM];
        uint32_t dim;
        ptid_t pid = ptid_num(id);
        uint64_t got[1];
        err_t e;
        if (coll_vector_get(f.c, &pid, "", v, DIM, &dim, &e) != ERR_OK) {
            assert_true(r->deleted[id]);
            continue;
        }
        assert_false(r->deleted[id]);
        size_t m = search(f.c, v, 1, NULL, false, got, NULL);
        tried++;
        missed += m != 1 || got[0] != id;
    }
    printf("self queries: %zu of %zu missed\n", missed, tried);
    assert_true(missed * 100 <= tried);
    free(r);
    fx_done(&f);
}

/* ---- (c) restart --------------------------------------------------------- */

static char *results_text(fx_t *f, uint64_t seed)
{
    coll_sel_t sel = { .payload = COLL_PAYLOAD_ALL };
    cJSON *all = cJSON_CreateArray();
    uint64_t rng = seed;
    err_t e;

    for (int qi = 0; qi < NQ; qi++) {
        float q[DIM];
        for (int d = 0; d < DIM; d++)
            q[d] = (float)(tu_randf(&rng) * 2 - 1);
        coll_search_req_t req = { .vector = q, .dim = DIM, .limit = K, .sel = &sel };
        cJSON *arr = NULL;
        if (coll_search(f->c, &req, &arr, &e) != ERR_OK)
            fail_msg("search: %s", e.msg);
        cJSON_AddItemToArray(all, arr);
    }
    char *s = cJSON_PrintUnformatted(all);
    cJSON_Delete(all);
    return s;
}

static void restart_once(bool disk)
{
    fx_t f;
    coll_info_t in;

    fx_init(&f, DIST_COSINE, 0);
    f.on_disk = disk; /* reopened with mmap'ed segments */
    insert(&f, 0, N);
    wait_indexed(f.c, N, NULL);
    uint64_t late[3] = { 1, 2, 3 };
    delete_ids(f.c, late, 3); /* deleted after indexing: must stay deleted */
    insert(&f, N, N + 10);    /* below the threshold: stays appendable */
    char *before = results_text(&f, 5);
    coll_close(f.c);
    f.c = fx_open(&f);
    coll_info_get(f.c, &in);
    assert_int_equal(in.index_builds, 0);
    assert_int_equal(in.indexed_vectors, N - 3);
    char *after = results_text(&f, 5);
    assert_string_equal(before, after);
    usleep(300000); /* the optimizer has nothing to do either */
    coll_info_get(f.c, &in);
    assert_int_equal(in.index_builds, 0);
    free(before);
    free(after);
    fx_done(&f);
}

/* (c) close and reopen, segments in RAM and then mmap'ed */
static void test_coll_vindex_restart(void **state)
{
    (void)state;
    restart_once(false);
    restart_once(true);
}

/* ---- (d) filtered search ------------------------------------------------- */

static void filtered_recall(fx_t *f, const char *tag)
{
    static const char *const filters[3] = {
        "{\"must\":[{\"key\":\"r\",\"match\":{\"value\":7}}]}",      /* 1% */
        "{\"must\":[{\"key\":\"r\",\"range\":{\"lt\":10}}]}",         /* 10% */
        "{\"must\":[{\"key\":\"r\",\"range\":{\"gte\":50}}]}",        /* 50% */
    };
    for (int i = 0; i < 3; i++) {
        filter_t *flt = F(filters[i]);
        coll_info_t a, b;
        coll_info_get(f->c, &a);
        double r = recall(f, flt);
        coll_info_get(f->c, &b);
        assert_int_equal(b.graph_searches, a.graph_searches + NQ);
        printf("%s, filter %s: recall@10 %.3f\n", tag, filters[i], r);
        assert_true(r >= 0.95);
        filter_free(flt);
    }
}

static void test_coll_vindex_filtered(void **state)
{
    (void)state;
    fx_t f;
    err_t e;

    /* full_scan_threshold 2 KB = 16 vectors: every filter goes to the graph */
    fx_init(&f, DIST_EUCLID, 2);
    insert(&f, 0, N);
    wait_indexed(f.c, N, NULL);
    filtered_recall(&f, "no payload index");
    assert_int_equal(coll_index_set(f.c, "r", COLL_INDEX_INTEGER | COLL_INDEX_RANGE, &e), ERR_OK);
    filtered_recall(&f, "payload index");

    /* the default full_scan_threshold (10000 KB = 80000 vectors here):
     * filtered searches are exact, by the index's candidates or by the
     * sampling estimate; unfiltered ones still use the graph */
    coll_close(f.c);
    f.fst_kb = 0;
    f.c = fx_open(&f);
    wait_indexed(f.c, N, NULL);
    for (int pass = 0; pass < 2; pass++) {
        coll_info_t a, b;
        filter_t *flt = F("{\"must\":[{\"key\":\"r\",\"range\":{\"gte\":50}}]}");
        float q[DIM];
        uint64_t ids[K];
        point_vec(&f, q);
        coll_info_get(f.c, &a);
        assert_int_equal(search(f.c, q, K, flt, false, ids, NULL), K);
        coll_info_get(f.c, &b);
        assert_int_equal(b.graph_searches, a.graph_searches);
        assert_int_equal(search(f.c, q, K, NULL, false, ids, NULL), K);
        coll_info_get(f.c, &a);
        assert_int_equal(a.graph_searches, b.graph_searches + 1);
        filter_free(flt);
        if (pass == 0) /* indexes are not persistent: set it again */
            assert_int_equal(coll_index_set(f.c, "r", COLL_INDEX_INTEGER | COLL_INDEX_RANGE, &e),
                             ERR_OK);
    }
    fx_done(&f);
}

/* ---- (e) vacuum ---------------------------------------------------------- */

static void test_coll_vindex_vacuum(void **state)
{
    (void)state;
    fx_t f;
    coll_info_t before, after;
    uint64_t *ids = malloc(N / 2 * sizeof(uint64_t));
    size_t purged;
    err_t e;

    fx_init(&f, DIST_COSINE, 0);
    insert(&f, 0, N);
    wait_indexed(f.c, N, &before);
    assert_int_equal(before.index_deleted, 0);
    for (size_t i = 0; i < N / 2; i++)
        ids[i] = 2 * i;
    delete_ids(f.c, ids, N / 2);
    wait_indexed(f.c, N / 2, &after);
    assert_true(after.index_builds > before.index_builds);
    assert_true(after.index_deleted * 5 <= after.index_nodes);
    assert_true(after.index_nodes <= N / 2 + N / 10);
    assert_true(recall(&f, NULL) >= 0.95);
    /* no deleted point comes back, also after a purge renumbers slots */
    assert_int_equal(coll_tombstones_purge(f.c, after.applied_seq, &purged, &e), ERR_OK);
    assert_int_equal(purged, N / 2);
    coll_info_get(f.c, &after);
    assert_int_equal(after.indexed_vectors, N / 2);
    for (int qi = 0; qi < NQ; qi++) {
        float q[DIM];
        uint64_t got[K];
        point_vec(&f, q);
        size_t n = search(f.c, q, K, NULL, false, got, NULL);
        assert_int_equal(n, K);
        for (size_t i = 0; i < n; i++)
            assert_true(got[i] % 2 == 1);
    }
    assert_true(recall(&f, NULL) >= 0.95);
    free(ids);
    fx_done(&f);
}

/* ---- (f) corrupt segment file -------------------------------------------- */

/* Path of the first file in dir/segments ending with ext, or "" if none. */
static void seg_file(const char *dir, const char *ext, char *out, size_t cap)
{
    char sd[4096];
    DIR *d;
    struct dirent *de;

    out[0] = '\0';
    snprintf(sd, sizeof(sd), "%s/segments", dir);
    d = opendir(sd);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), el = strlen(ext);
        if (l > el && strcmp(de->d_name + l - el, ext) == 0) {
            snprintf(out, cap, "%s/%s", sd, de->d_name);
            break;
        }
    }
    closedir(d);
}

static void test_coll_vindex_corrupt(void **state)
{
    (void)state;
    fx_t f;
    coll_info_t in;
    char path[4300], junk[4300];
    struct stat st;

    fx_init(&f, DIST_EUCLID, 0);
    insert(&f, 0, 2000);
    wait_indexed(f.c, 2000, NULL);
    coll_close(f.c);
    seg_file(f.dir, ".hnsw", path, sizeof(path));
    assert_true(path[0] != '\0');
    assert_int_equal(stat(path, &st), 0);
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, st.st_size / 2, SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, st.st_size / 2, SEEK_SET);
    fputc(ch ^ 0x5a, fp);
    fclose(fp);
    /* leftovers of a crash mid-save are ignored and cleaned */
    snprintf(junk, sizeof(junk), "%s/segments/0-999.hnsw.tmp", f.dir);
    fclose(fopen(junk, "wb"));
    f.c = fx_open(&f);
    coll_info_get(f.c, &in);
    if (in.index_builds == 0) /* else the re-index already ran */
        assert_int_equal(in.indexed_vectors, 0);
    seg_file(f.dir, ".corrupt", path, sizeof(path));
    assert_true(path[0] != '\0');
    assert_int_not_equal(access(junk, F_OK), 0);
    wait_indexed(f.c, 2000, &in);
    assert_true(in.index_builds >= 1);
    assert_true(recall(&f, NULL) >= 0.95);
    fx_done(&f);
}

/* ---- merge ----------------------------------------------------------------- */

static size_t count_files(const char *dir, const char *ext)
{
    char sd[4096];
    DIR *d;
    struct dirent *de;
    size_t n = 0;

    snprintf(sd, sizeof(sd), "%s/segments", dir);
    d = opendir(sd);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name), el = strlen(ext);
        n += l > el && strcmp(de->d_name + l - el, ext) == 0;
    }
    closedir(d);
    return n;
}

/* one segment per batch; past 4 segments the two smallest are merged and
 * their files removed */
static void test_coll_vindex_merge(void **state)
{
    (void)state;
    fx_t f;
    coll_info_t in;

    fx_init(&f, DIST_DOT, 0);
    for (uint64_t b = 0; b < 6; b++) {
        insert(&f, b * 1000, b * 1000 + 1000);
        wait_indexed(f.c, b * 1000 + 1000, &in);
    }
    assert_int_equal(in.segments, 4);
    assert_int_equal(in.index_builds, 8);   /* 6 batches + 2 merges */
    assert_int_equal(in.index_nodes, 6000);
    assert_int_equal(count_files(f.dir, ".hnsw"), 4);
    assert_int_equal(count_files(f.dir, ".ids"), 4);
    assert_true(recall(&f, NULL) >= 0.95);
    coll_close(f.c);
    f.c = fx_open(&f);
    coll_info_get(f.c, &in);
    assert_int_equal(in.indexed_vectors, 6000);
    assert_int_equal(in.segments, 4);
    assert_int_equal(in.index_builds, 0);
    fx_done(&f);
}


/* ---- payload_m: per-tenant links ----------------------------------------- */

#define TENANTS 50

static coll_t *tenant_open(fx_t *f, uint32_t m)
{
    coll_vector_def_t def = { .name = (char *)"", .dim = DIM, .metric = f->metric };
    coll_opts_t o = { .vectors = &def, .n_vectors = 1, .indexing_threshold_kb = THRESH_KB,
                      .full_scan_threshold_kb = f->fst_kb, .hnsw_m = m, .hnsw_payload_m = 16 };
    coll_t *c = NULL;
    err_t e;

    o.wal.sync_mode = WAL_SYNC_NONE;
    if (coll_open(f->dir, &o, &c, &e) != ERR_OK)
        fail_msg("coll_open: %s", e.msg);
    /* payload indexes live in memory: set before the optimizer builds */
    if (coll_index_set(c, "tenant", COLL_INDEX_KEYWORD, &e) != ERR_OK)
        fail_msg("index: %s", e.msg);
    return c;
}

/* Upsert ids [0, N): tenant "t<id % TENANTS>", not aligned with clusters. */
static void insert_tenants(fx_t *f)
{
    op_t op = { .type = OP_UPSERT };
    err_t e;

    for (uint64_t id = 0; id < N; id++) {
        op_point_t *p = op_point_add(&op);
        float v[DIM];
        char pl[64];
        point_vec(f, v);
        p->id = ptid_num(id);
        snprintf(pl, sizeof(pl), "{\"tenant\":\"t%llu\"}", (unsigned long long)(id % TENANTS));
        p->payload = strdup(pl);
        op_vec_add(p, "", v, DIM);
    }
    if (coll_write(f->c, &op, NULL, &e) != ERR_OK)
        fail_msg("upsert: %s", e.msg);
    op_clear(&op);
}

static void tenant_recall(fx_t *f, uint32_t m, const char *when)
{
    char text[128];
    double worst = 1.0;
    for (int t = 0; t < TENANTS; t += 7) {
        snprintf(text, sizeof(text), "{\"must\":[{\"key\":\"tenant\",\"match\":{\"value\":\"t%d\"}}]}", t);
        filter_t *flt = F(text);
        coll_info_t a, b;
        coll_info_get(f->c, &a);
        double r = recall(f, flt);
        coll_info_get(f->c, &b);
        assert_int_equal(b.graph_searches, a.graph_searches + NQ); /* the graph path */
        worst = r < worst ? r : worst;
        filter_free(flt);
    }
    printf("payload_m 16, m %u (%s): worst per-tenant recall@10 %.3f\n", m, when, worst);
    assert_true(worst >= 0.95);
}

/* A keyword index on "tenant" and payload_m 16: filtered searches on one
 * tenant (2% of the points) go to the graph and keep recall, with the
 * main graph (m 16) and without it (m 0: per-tenant graphs only), also
 * after a restart (the links are in the segment files).  With m 0,
 * searches that do not name a tenant are exact. */
static void test_coll_vindex_payload_m_tenant(void **state)
{
    (void)state;
    for (uint32_t m = 0; m <= 16; m += 16) {
        fx_t f;
        fx_init(&f, DIST_COSINE, 2); /* 16 vectors: a tenant (100) uses the graph */
        coll_close(f.c);
        f.c = tenant_open(&f, m);
        insert_tenants(&f);
        wait_indexed(f.c, N, NULL);
        tenant_recall(&f, m, "built");
        coll_close(f.c);
        f.c = tenant_open(&f, m);
        coll_info_t in;
        wait_indexed(f.c, N, &in);
        assert_int_equal(in.index_builds, 0);
        tenant_recall(&f, m, "reopened");
        if (m == 0) {
            double r = recall(&f, NULL);
            filter_t *flt = F("{\"must_not\":[{\"key\":\"tenant\",\"match\":{\"value\":\"t3\"}}]}");
            double r2 = recall(&f, flt);
            printf("m 0: unfiltered recall %.3f, must_not recall %.3f (exact scans)\n", r, r2);
            assert_true(r == 1.0 && r2 == 1.0);
            filter_free(flt);
        }
        fx_done(&f);
    }
}

/* Tenant changes along the node order of every segment of f (read from
 * the .ids files: coll_vindex.c documents their byte format). */
static size_t tenant_runs(const fx_t *f, size_t *nodes)
{
    char dir[600];
    DIR *d;
    struct dirent *de;
    size_t changes = 0;

    *nodes = 0;
    snprintf(dir, sizeof(dir), "%s/segments", f->dir);
    assert_non_null(d = opendir(dir));
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 4, ".ids") != 0)
            continue;
        char path[1200];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *fp = fopen(path, "rb");
        uint8_t buf[1 << 16];
        size_t n = fp ? fread(buf, 1, sizeof(buf), fp) : 0, off = 16;
        if (fp)
            fclose(fp);
        assert_true(n > 20);
        uint32_t count = (uint32_t)buf[12] | (uint32_t)buf[13] << 8 | (uint32_t)buf[14] << 16 |
                         (uint32_t)buf[15] << 24;
        long prev = -1;
        for (uint32_t i = 0; i < count; i++) {
            ptid_t id;
            assert_int_equal(ptid_decode(buf + off + 1, buf[off], &id), buf[off]);
            off += 1 + buf[off];
            long t = (long)(id.num % TENANTS);
            changes += prev >= 0 && t != prev;
            prev = t;
        }
        *nodes += count;
    }
    closedir(d);
    return changes;
}

/* is_tenant (COLL_INDEX_TENANT): a new segment holds each tenant's nodes
 * together, where without it the nodes follow the slots (tenants
 * interleaved); search results are the same either way. */
static void test_coll_vindex_tenant_layout(void **state)
{
    (void)state;
    for (int tenant = 0; tenant <= 1; tenant++) {
        fx_t f;
        coll_info_t in;
        size_t nodes;
        err_t e;
        fx_init(&f, DIST_COSINE, 2);
        if (coll_index_set(f.c, "tenant",
                           COLL_INDEX_KEYWORD | (tenant ? COLL_INDEX_TENANT : 0), &e) != ERR_OK)
            fail_msg("index: %s", e.msg);
        insert_tenants(&f);
        wait_indexed(f.c, N, &in);
        size_t runs = tenant_runs(&f, &nodes);
        printf("is_tenant %d: %zu nodes, %zu tenant changes along the node order\n", tenant,
               nodes, runs);
        assert_int_equal(nodes, N);
        if (tenant)
            assert_true(runs <= TENANTS); /* one run per tenant (per segment) */
        else
            assert_true(runs > N / 2);
        fx_done(&f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coll_vindex_recall),
        cmocka_unit_test(test_coll_vindex_updates_deletes),
        cmocka_unit_test(test_coll_vindex_restart),
        cmocka_unit_test(test_coll_vindex_filtered),
        cmocka_unit_test(test_coll_vindex_vacuum),
        cmocka_unit_test(test_coll_vindex_corrupt),
        cmocka_unit_test(test_coll_vindex_merge),
        cmocka_unit_test(test_coll_vindex_payload_m_tenant),
        cmocka_unit_test(test_coll_vindex_tenant_layout),
    };
    log_level_set(LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
