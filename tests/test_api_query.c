/*
 * test_api_query.c - /points/query with prefetch: rescoring, RRF and DBSF
 * fusion, filter propagation, nesting and errors, each checked against a
 * naive computation in the test (double precision, the formulas of
 * Qdrant's reciprocal_rank_fusion.rs and score_fusion.rs).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/api.h"
#include "store/catalog.h"
#include "store/log.h"
#include "tests/testutil.h"

#define N 300

typedef struct fx {
    char *dir;
    catalog_t *cat;
    api_t *api;
    float a[N][3], b[N][3];
    int group[N];
} fx_t;

static fx_t *G;

/* POST/PUT body (JSON) to path; returns the parsed document, asserting
 * the status. */
static cJSON *call(int method, const char *path, const char *body, int want)
{
    api_req_t rq = { .method = method, .path = path, .body = body,
                     .body_len = body ? strlen(body) : 0 };
    api_resp_t rs;
    api_handle(G->api, &rq, &rs);
    if (rs.status != want)
        fail_msg("%s %s: status %d, want %d: %s", path, body ? body : "", rs.status, want, rs.body);
    cJSON *doc = cJSON_Parse(rs.body);
    free(rs.body);
    assert_non_null(doc);
    return doc;
}

static int setup(void **state)
{
    static fx_t f;
    catalog_opts_t o;
    err_t e;
    uint64_t seed = tu_seed(5);
    char *buf = malloc(1 << 20);
    size_t n = 0;

    memset(&f, 0, sizeof(f));
    G = &f;
    f.dir = tu_tmpdir("apiq");
    catalog_opts_default(&o);
    o.storage_path = f.dir;
    assert_int_equal(catalog_open(&o, &f.cat, &e), ERR_OK);
    assert_int_equal(api_new(f.cat, &(api_opts_t){ .version = "t" }, &f.api, &e), ERR_OK);
    api_set_ready(f.api, true);
    cJSON_Delete(call(API_PUT, "/collections/q",
                      "{\"vectors\":{\"a\":{\"size\":3,\"distance\":\"Dot\"},"
                      "\"b\":{\"size\":3,\"distance\":\"Euclid\"}}}", 200));
    n += (size_t)sprintf(buf + n, "{\"points\":[");
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < 3; d++) {
            f.a[i][d] = (float)(tu_randf(&seed) * 2 - 1);
            f.b[i][d] = (float)(tu_randf(&seed) * 2 - 1);
        }
        f.group[i] = (int)(tu_rand(&seed) % 3);
        n += (size_t)sprintf(buf + n, "%s{\"id\":%d,\"vector\":{\"a\":[%.9g,%.9g,%.9g],\"b\":[%.9g,%.9g,%.9g]},"
                             "\"payload\":{\"g\":%d}}", i ? "," : "", i, f.a[i][0], f.a[i][1],
                             f.a[i][2], f.b[i][0], f.b[i][1], f.b[i][2], f.group[i]);
    }
    sprintf(buf + n, "]}");
    cJSON_Delete(call(API_PUT, "/collections/q/points", buf, 200));
    free(buf);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    api_free(f->api);
    catalog_close(f->cat);
    tu_rmrf(f->dir);
    free(f->dir);
    return 0;
}

typedef struct hit {
    int id;
    double score;
} hit_t;

static int by_score_desc(const void *x, const void *y)
{
    const hit_t *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->id - b->id;
}

/* Naive top-k for vector name 'a' (dot, higher better) or 'b' (L2,
 * lower better: stored negated so one sort serves both). group < 0: all. */
static size_t naive(char name, const float *q, int group, size_t k, hit_t *out)
{
    hit_t all[N];
    size_t n = 0;
    for (int i = 0; i < N; i++) {
        if (group >= 0 && G->group[i] != group)
            continue;
        double s = 0;
        for (int d = 0; d < 3; d++) {
            double v = name == 'a' ? G->a[i][d] : G->b[i][d];
            s += name == 'a' ? v * q[d] : (v - q[d]) * (v - q[d]);
        }
        all[n++] = (hit_t){ i, name == 'a' ? s : -sqrt(s) };
    }
    qsort(all, n, sizeof(hit_t), by_score_desc);
    if (n > k)
        n = k;
    memcpy(out, all, n * sizeof(hit_t));
    return n;
}

static void fuse_add(hit_t *acc, size_t *n, int id, double s)
{
    for (size_t i = 0; i < *n; i++)
        if (acc[i].id == id) {
            acc[i].score += s;
            return;
        }
    acc[(*n)++] = (hit_t){ id, s };
}

static void assert_points(cJSON *doc, const hit_t *want, size_t n, double tol)
{
    cJSON *pts = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "result"), "points");
    if ((size_t)cJSON_GetArraySize(pts) != n)
        fail_msg("got %d points, want %zu: %s", cJSON_GetArraySize(pts), n, cJSON_PrintUnformatted(pts));
    for (size_t i = 0; i < n; i++) {
        cJSON *p = cJSON_GetArrayItem(pts, (int)i);
        int id = (int)cJSON_GetObjectItem(p, "id")->valuedouble;
        double s = cJSON_GetObjectItem(p, "score")->valuedouble;
        if (id != want[i].id || fabs(s - fabs(want[i].score)) > tol * (1 + fabs(s)))
            fail_msg("rank %zu: got id %d score %g, want id %d score %g", i, id, s, want[i].id,
                     fabs(want[i].score));
    }
}

static const float QA[3] = { 0.3f, -0.5f, 0.8f }, QB[3] = { 0.1f, 0.2f, -0.4f };

static void test_api_query_rrf_matches_naive(void **state)
{
    (void)state;
    hit_t la[20], lb[20], acc[40];
    size_t na = naive('a', QA, -1, 20, la), nb = naive('b', QB, -1, 20, lb), n = 0;
    for (size_t p = 0; p < na; p++)
        fuse_add(acc, &n, la[p].id, 1.0 / ((double)(p + 1) + 2 - 1));
    for (size_t p = 0; p < nb; p++)
        fuse_add(acc, &n, lb[p].id, 1.0 / ((double)(p + 1) + 2 - 1));
    qsort(acc, n, sizeof(hit_t), by_score_desc);
    cJSON *doc = call(API_POST, "/collections/q/points/query",
                      "{\"prefetch\":[{\"query\":[0.3,-0.5,0.8],\"using\":\"a\",\"limit\":20},"
                      "{\"query\":[0.1,0.2,-0.4],\"using\":\"b\",\"limit\":20}],"
                      "\"query\":{\"fusion\":\"rrf\"},\"limit\":10}", 200);
    assert_points(doc, acc, 10, 1e-5);
    cJSON_Delete(doc);
    /* rrf with k and weights: 1 / ((pos + 1) / w + k - 1) */
    n = 0;
    for (size_t p = 0; p < na; p++)
        fuse_add(acc, &n, la[p].id, 1.0 / ((double)(p + 1) / 3.0 + 60 - 1));
    for (size_t p = 0; p < nb; p++)
        fuse_add(acc, &n, lb[p].id, 1.0 / ((double)(p + 1) / 1.0 + 60 - 1));
    qsort(acc, n, sizeof(hit_t), by_score_desc);
    doc = call(API_POST, "/collections/q/points/query",
               "{\"prefetch\":[{\"query\":[0.3,-0.5,0.8],\"using\":\"a\",\"limit\":20},"
               "{\"query\":[0.1,0.2,-0.4],\"using\":\"b\",\"limit\":20}],"
               "\"query\":{\"rrf\":{\"k\":60,\"weights\":[3,1]}},\"limit\":7,\"offset\":3}", 200);
    assert_points(doc, acc + 3, 7, 1e-5);
    cJSON_Delete(doc);
}

static void dbsf_add(hit_t *acc, size_t *n, const hit_t *l, size_t nl)
{
    double mean = 0, m2 = 0;
    for (size_t i = 0; i < nl; i++) {
        double d = l[i].score - mean;
        mean += d / (double)(i + 1);
        m2 += d * (l[i].score - mean);
    }
    double sd = sqrt(m2 / (double)(nl - 1)), lo = mean - 3 * sd, hi = mean + 3 * sd;
    for (size_t i = 0; i < nl; i++)
        fuse_add(acc, n, l[i].id, (l[i].score - lo) / (hi - lo));
}

static void test_api_query_dbsf_matches_naive(void **state)
{
    (void)state;
    hit_t la[15], lb[15], acc[30];
    size_t na = naive('a', QA, -1, 15, la), nb = naive('b', QB, -1, 15, lb), n = 0;
    dbsf_add(acc, &n, la, na);
    dbsf_add(acc, &n, lb, nb); /* distances negated: higher is better */
    qsort(acc, n, sizeof(hit_t), by_score_desc);
    cJSON *doc = call(API_POST, "/collections/q/points/query",
                      "{\"prefetch\":[{\"query\":[0.3,-0.5,0.8],\"using\":\"a\",\"limit\":15},"
                      "{\"query\":[0.1,0.2,-0.4],\"using\":\"b\",\"limit\":15}],"
                      "\"query\":{\"fusion\":\"dbsf\"},\"limit\":10}", 200);
    assert_points(doc, acc, 10, 1e-4);
    cJSON_Delete(doc);
}

static void test_api_query_rescore_prefetch_candidates(void **state)
{
    (void)state;
    hit_t la[50], want[5];
    size_t na = naive('a', QA, -1, 50, la), n = 0;
    /* best 5 by distance on b among a's top 50 */
    hit_t re[50];
    for (size_t i = 0; i < na; i++) {
        double s = 0;
        for (int d = 0; d < 3; d++)
            s += (G->b[la[i].id][d] - QB[d]) * (G->b[la[i].id][d] - QB[d]);
        re[n++] = (hit_t){ la[i].id, -sqrt(s) };
    }
    qsort(re, n, sizeof(hit_t), by_score_desc);
    memcpy(want, re, sizeof(want));
    cJSON *doc = call(API_POST, "/collections/q/points/query",
                      "{\"prefetch\":{\"query\":[0.3,-0.5,0.8],\"using\":\"a\",\"limit\":50},"
                      "\"query\":[0.1,0.2,-0.4],\"using\":\"b\",\"limit\":5,\"with_payload\":true}", 200);
    assert_points(doc, want, 5, 1e-4);
    cJSON *p0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "result"), "points"), 0);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(p0, "payload")));
    cJSON_Delete(doc);
    /* nested: prefetch of a prefetch */
    doc = call(API_POST, "/collections/q/points/query",
               "{\"prefetch\":{\"prefetch\":{\"query\":[0.3,-0.5,0.8],\"using\":\"a\",\"limit\":50},"
               "\"query\":[0.1,0.2,-0.4],\"using\":\"b\",\"limit\":20},"
               "\"query\":[0.1,0.2,-0.4],\"using\":\"b\",\"limit\":5}", 200);
    assert_points(doc, want, 5, 1e-4);
    cJSON_Delete(doc);
}

static void test_api_query_filter_reaches_prefetches(void **state)
{
    (void)state;
    hit_t la[20], lb[20], acc[40];
    size_t na = naive('a', QA, 1, 20, la), nb = naive('b', QB, 1, 20, lb), n = 0;
    for (size_t p = 0; p < na; p++)
        fuse_add(acc, &n, la[p].id, 1.0 / ((double)p + 2));
    for (size_t p = 0; p < nb; p++)
        fuse_add(acc, &n, lb[p].id, 1.0 / ((double)p + 2));
    qsort(acc, n, sizeof(hit_t), by_score_desc);
    cJSON *doc = call(API_POST, "/collections/q/points/query",
                      "{\"prefetch\":[{\"query\":[0.3,-0.5,0.8],\"using\":\"a\",\"limit\":20},"
                      "{\"query\":[0.1,0.2,-0.4],\"using\":\"b\",\"limit\":20}],"
                      "\"query\":{\"fusion\":\"rrf\"},\"limit\":10,"
                      "\"filter\":{\"must\":[{\"key\":\"g\",\"match\":{\"value\":1}}]}}", 200);
    assert_points(doc, acc, 10, 1e-5);
    cJSON_Delete(doc);
    /* a prefetch's own filter ANDs with the parent's */
    na = naive('a', QA, 1, 5, la);
    doc = call(API_POST, "/collections/q/points/query",
               "{\"prefetch\":{\"query\":[0.3,-0.5,0.8],\"using\":\"a\",\"limit\":5,"
               "\"filter\":{\"must_not\":[{\"key\":\"g\",\"match\":{\"value\":0}}]}},"
               "\"query\":[0.3,-0.5,0.8],\"using\":\"a\",\"limit\":5,"
               "\"filter\":{\"must_not\":[{\"key\":\"g\",\"match\":{\"value\":2}}]}}", 200);
    assert_points(doc, la, na, 1e-4);
    cJSON_Delete(doc);
}

static void test_api_query_prefetch_errors(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int status;
        const char *frag;
    } cases[] = {
        { "{\"query\":{\"fusion\":\"rrf\"}}", 400, "fusion needs prefetch" },
        { "{\"prefetch\":{\"query\":[1,0,0],\"using\":\"a\"},\"query\":{\"fusion\":\"xx\"}}", 400, "query.fusion" },
        { "{\"prefetch\":{\"query\":[1,0,0],\"using\":\"a\"},\"query\":{\"rrf\":{\"weights\":[1,2]}}}", 400, "weights" },
        { "{\"prefetch\":{\"query\":[1,0,0],\"using\":\"a\"}}", 501, "with prefetch" },
        { "{\"prefetch\":{\"query\":[1,0,0],\"using\":\"a\",\"bogus\":1},\"query\":{\"fusion\":\"rrf\"}}", 400, "prefetch[0]" },
        { "{\"prefetch\":{\"query\":[1,0],\"using\":\"a\"},\"query\":{\"fusion\":\"rrf\"}}", 400, "dimension" },
        { "{\"prefetch\":{\"query\":[1,0,0],\"using\":\"a\",\"lookup_from\":{\"collection\":\"x\"}},\"query\":{\"fusion\":\"rrf\"}}", 501, "lookup_from" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *doc = call(API_POST, "/collections/q/points/query", cases[i].body, cases[i].status);
        const char *msg = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "status"), "error")->valuestring;
        if (strstr(msg, cases[i].frag) == NULL)
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, msg, cases[i].frag);
        cJSON_Delete(doc);
    }
    /* nesting deeper than the limit */
    char body[4096] = "", tail[512] = "";
    for (int i = 0; i < 10; i++)
        strcat(body, "{\"prefetch\":");
    strcat(body, "{\"query\":[1,0,0],\"using\":\"a\"}");
    for (int i = 0; i < 10; i++)
        strcat(tail, ",\"query\":[1,0,0],\"using\":\"a\"}");
    strcat(body, tail);
    cJSON_Delete(call(API_POST, "/collections/q/points/query", body, 400));
}

static void test_api_query_groups_match_naive(void **state)
{
    (void)state;
    hit_t all[N];
    size_t n = naive('a', QA, -1, N, all);
    int first[3] = { -1, -1, -1 }, order[3], ng = 0;
    hit_t want[3][2];
    int cnt[3] = { 0, 0, 0 };
    for (size_t i = 0; i < n; i++) {
        int g = G->group[all[i].id];
        if (first[g] < 0) {
            first[g] = ng;
            order[ng++] = g;
        }
        if (cnt[g] < 2)
            want[g][cnt[g]++] = all[i];
    }
    cJSON *doc = call(API_POST, "/collections/q/points/query/groups",
                      "{\"query\":[0.3,-0.5,0.8],\"using\":\"a\",\"group_by\":\"g\","
                      "\"group_size\":2,\"limit\":3,\"with_payload\":[\"g\"]}", 200);
    cJSON *groups = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "result"), "groups");
    assert_int_equal(cJSON_GetArraySize(groups), 3);
    for (int k = 0; k < 3; k++) {
        cJSON *gr = cJSON_GetArrayItem(groups, k);
        int g = order[k];
        assert_int_equal((int)cJSON_GetObjectItem(gr, "id")->valuedouble, g);
        cJSON *hits = cJSON_GetObjectItem(gr, "hits");
        assert_int_equal(cJSON_GetArraySize(hits), 2);
        for (int j = 0; j < 2; j++) {
            cJSON *h = cJSON_GetArrayItem(hits, j);
            assert_int_equal((int)cJSON_GetObjectItem(h, "id")->valuedouble, want[g][j].id);
            assert_float_equal(cJSON_GetObjectItem(h, "score")->valuedouble, want[g][j].score, 1e-4);
            assert_int_equal((int)cJSON_GetObjectItem(cJSON_GetObjectItem(h, "payload"), "g")->valuedouble, g);
        }
    }
    cJSON_Delete(doc);
    doc = call(API_POST, "/collections/q/points/query/groups", "{\"query\":[1,0,0],\"using\":\"a\"}", 400);
    cJSON_Delete(doc);
}

int main(void)
{
    log_level_set(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_query_rrf_matches_naive),
        cmocka_unit_test(test_api_query_dbsf_matches_naive),
        cmocka_unit_test(test_api_query_rescore_prefetch_candidates),
        cmocka_unit_test(test_api_query_filter_reaches_prefetches),
        cmocka_unit_test(test_api_query_prefetch_errors),
        cmocka_unit_test(test_api_query_groups_match_naive),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
