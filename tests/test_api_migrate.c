/*
 * test_api_migrate.c - POST /migrations/verify and /migrations/cutover
 * (query/api_migrate.c) in-process against a real catalog on disk:
 * verification of counts, id sets and top-k agreement; the guarded alias
 * switch refusing while a backfill is incomplete, while a topic lags
 * (ingest hooks), or when the alias moved meanwhile (compare-and-set); the
 * switch and its rollback; every bad body.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/api.h"
#include "store/catalog.h"
#include "store/log.h"
#include "store/op.h"
#include "tests/testutil.h"

typedef struct fx {
    char *dir;
    catalog_t *cat;
    api_t *api;
} fx_t;

static double g_lag;               /* what the fake ingest reports */

static cJSON *fake_status(void *ctx)
{
    (void)ctx;
    char buf[300];
    snprintf(buf, sizeof(buf), "{\"partitions\": [{\"topic\": \"events\", \"partition\": 0, "
             "\"lag\": %.0f}]}", g_lag);
    return cJSON_Parse(buf);
}

static int call(fx_t *f, int method, const char *path, const char *body, cJSON **result,
                char *msg, size_t cap)
{
    char pbuf[256];
    const char *q = strchr(path, '?');
    if (q != NULL) {
        snprintf(pbuf, sizeof(pbuf), "%.*s", (int)(q - path), path);
        path = pbuf;
        q++;
    }
    api_req_t rq = { .method = method, .path = path, .query = q, .body = body,
                     .body_len = body ? strlen(body) : 0 };
    api_resp_t rs;
    api_handle(f->api, &rq, &rs);
    cJSON *doc = cJSON_Parse(rs.body);
    const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "status"), "error");
    if (msg != NULL)
        snprintf(msg, cap, "%s", cJSON_IsString(e) ? e->valuestring : "");
    if (result != NULL)
        *result = cJSON_DetachItemFromObject(doc, "result");
    cJSON_Delete(doc);
    free(rs.body);
    return rs.status;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    catalog_opts_t o;
    err_t e;

    log_level_set(LOG_ERROR);
    f->dir = tu_tmpdir("api_migrate");
    catalog_opts_default(&o);
    o.storage_path = f->dir;
    o.wal_sync_mode = WAL_SYNC_NONE;
    if (catalog_open(&o, &f->cat, &e) != ERR_OK)
        fail_msg("catalog_open: %s", e.msg);
    api_opts_t ao = { .version = "test" };
    assert_int_equal(api_new(f->cat, &ao, &f->api, &e), ERR_OK);
    api_set_ready(f->api, true);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    api_free(f->api);
    catalog_close(f->cat);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* n points (ids 1..n) with 4-d vectors; `scale` changes the space but
 * keeps every neighbour order (a "new model" that agrees). */
static void fill(fx_t *f, const char *coll, int n, float scale, int skip_id)
{
    char path[128], *body = malloc(64 * (size_t)n + 64), *p = body;
    int st;

    snprintf(path, sizeof(path), "/collections/%s", coll);
    st = call(f, API_PUT, path, "{\"vectors\": {\"size\": 4, \"distance\": \"Euclid\"}}", NULL,
              NULL, 0);
    assert_int_equal(st, 200);
    p += sprintf(p, "{\"points\": [");
    for (int i = 1; i <= n; i++)
        if (i != skip_id)
            p += sprintf(p, "%s{\"id\": %d, \"vector\": [%g, %g, 0, 1]}", p[-1] == '[' ? "" : ",",
                         i, scale * (float)(i % 17), scale * (float)(i / 17));
    sprintf(p, "]}");
    snprintf(path, sizeof(path), "/collections/%s/points?wait=true", coll);
    assert_int_equal(call(f, API_PUT, path, body, NULL, NULL, 0), 200);
    free(body);
}

static void test_api_migrate_verify(void **state)
{
    fx_t *f = *state;
    cJSON *r;
    char m[600];

    fill(f, "old", 200, 1, 0);
    fill(f, "new", 200, 2, 0);
    fill(f, "holey", 200, 1, 77);
    assert_int_equal(call(f, API_POST, "/migrations/verify",
                          "{\"source\": \"old\", \"target\": \"new\"}", &r, m, sizeof(m)), 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "ids_equal")));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "counts_equal")));
    cJSON *tk = cJSON_GetObjectItem(r, "topk");
    assert_int_equal(cJSON_GetObjectItem(tk, "samples")->valueint, 20);
    assert_true(cJSON_GetObjectItem(tk, "agreement")->valuedouble > 0.95);
    cJSON_Delete(r);

    assert_int_equal(call(f, API_POST, "/migrations/verify",
                          "{\"source\": \"old\", \"target\": \"holey\", \"buckets\": 256}", &r,
                          m, sizeof(m)), 200);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r, "ids_equal")));
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r, "counts_equal")));
    assert_int_equal(cJSON_GetObjectItem(r, "buckets_differing")->valueint, 1);
    cJSON_Delete(r);

    static const struct { const char *body, *frag; int status; } bad[] = {
        { "{\"target\": \"new\"}", "source", 400 },
        { "{\"source\": \"old\", \"target\": \"new\", \"bogus\": 1}", "bogus", 400 },
        { "{\"source\": \"old\", \"target\": \"new\", \"buckets\": 0}", "buckets", 400 },
        { "{\"source\": \"old\", \"target\": \"new\", \"limit\": 1000}", "limit", 400 },
        { "{\"source\": \"old\", \"target\": \"nope\"}", "nope", 404 },
        { "[1]", "body", 400 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(call(f, API_POST, "/migrations/verify", bad[i].body, NULL, m, sizeof(m)),
                         bad[i].status);
        if (strstr(m, bad[i].frag) == NULL)
            fail_msg("%s: \"%s\" does not name %s", bad[i].body, m, bad[i].frag);
    }
}

/* A backfill cursor in the target, as a backfill job writes it. */
static void cursor(fx_t *f, const char *coll, const char *json)
{
    catalog_handle_t *h;
    op_t op = { .type = OP_UPSERT, .mode = OP_MODE_INSERT_ONLY };
    err_t e;

    assert_int_equal(catalog_acquire(f->cat, coll, &h, &e), ERR_OK);
    op_meta_set(&op, "backfill/j1", json);
    assert_int_equal(coll_write(catalog_handle_coll(h), &op, NULL, &e), ERR_OK);
    op_clear(&op);
    catalog_release(h);
}

static void test_api_migrate_cutover_guards(void **state)
{
    fx_t *f = *state;
    cJSON *r;
    char m[600];
    const char *go = "{\"alias\": \"prod\", \"from\": \"old\", \"to\": \"new\", "
                     "\"backfill\": \"j1\", \"topics\": [\"events\"]}";

    fill(f, "old", 50, 1, 0);
    fill(f, "new", 50, 2, 0);
    assert_int_equal(call(f, API_POST, "/migrations/cutover",
                          "{\"alias\": \"prod\", \"to\": \"old\"}", NULL, m, sizeof(m)), 200);
    /* no backfill ran */
    assert_int_equal(call(f, API_POST, "/migrations/cutover", go, NULL, m, sizeof(m)), 409);
    assert_non_null(strstr(m, "has not written"));
    cursor(f, "new", "{\"next\": 31, \"done\": 30}");
    assert_int_equal(call(f, API_POST, "/migrations/cutover", go, NULL, m, sizeof(m)), 409);
    assert_non_null(strstr(m, "not complete"));
    cursor(f, "new", "{\"next\": null, \"done\": 50}");
    /* ingest not running, then lagging */
    assert_int_equal(call(f, API_POST, "/migrations/cutover", go, NULL, m, sizeof(m)), 409);
    assert_non_null(strstr(m, "ingest is not running"));
    api_ingest_hooks_t hk = { NULL, fake_status, NULL, NULL };
    api_set_ingest(f->api, &hk);
    g_lag = 3;
    assert_int_equal(call(f, API_POST, "/migrations/cutover", go, NULL, m, sizeof(m)), 409);
    assert_non_null(strstr(m, "lag"));
    g_lag = 0;
    /* a topic nobody consumes here, then an alias that moved meanwhile
     * (compare-and-set) */
    assert_int_equal(call(f, API_POST, "/migrations/cutover",
                          "{\"alias\": \"prod\", \"from\": \"old\", \"to\": \"new\", "
                          "\"topics\": [\"other\"]}", NULL, m, sizeof(m)), 409);
    assert_non_null(strstr(m, "other"));
    assert_int_equal(call(f, API_POST, "/migrations/cutover",
                          "{\"alias\": \"prod\", \"from\": \"new\", \"to\": \"old\"}", NULL, m,
                          sizeof(m)), 409);
    assert_non_null(strstr(m, "points to `old`"));
    /* every guard passes: switched; queries through the alias see "new" */
    assert_int_equal(call(f, API_POST, "/migrations/cutover", go, &r, m, sizeof(m)), 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "switched")));
    cJSON_Delete(r);
    assert_int_equal(call(f, API_GET, "/collections/prod/aliases", NULL, NULL, m, sizeof(m)), 404);
    assert_int_equal(call(f, API_GET, "/aliases", NULL, &r, m, sizeof(m)), 200);
    char *txt = cJSON_PrintUnformatted(r);
    assert_non_null(strstr(txt, "\"alias_name\":\"prod\",\"collection_name\":\"new\""));
    free(txt);
    cJSON_Delete(r);
    /* rollback: the same switch back */
    assert_int_equal(call(f, API_POST, "/migrations/cutover",
                          "{\"alias\": \"prod\", \"from\": \"new\", \"to\": \"old\"}", NULL, m,
                          sizeof(m)), 200);
    static const struct { const char *body, *frag; int status; } bad[] = {
        { "{\"from\": \"old\", \"to\": \"new\"}", "alias", 400 },
        { "{\"alias\": \"prod\", \"from\": \"old\"}", "to", 400 },
        { "{\"alias\": \"prod\", \"from\": \"old\", \"to\": \"new\", \"topics\": \"events\"}",
          "topics", 400 },
        { "{\"alias\": \"prod\", \"from\": \"old\", \"to\": \"nope\"}", "nope", 404 },
        { "{\"alias\": \"prod\", \"from\": \"old\", \"to\": \"new\", \"x\": 1}", "x", 400 },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(call(f, API_POST, "/migrations/cutover", bad[i].body, NULL, m,
                              sizeof(m)), bad[i].status);
        if (strstr(m, bad[i].frag) == NULL)
            fail_msg("%s: \"%s\" does not name %s", bad[i].body, m, bad[i].frag);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_api_migrate_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_migrate_cutover_guards, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
