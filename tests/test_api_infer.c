/*
 * test_api_infer.c - Qdrant Documents ({"text", "model"}) over the REST
 * API (query/api_infer.c, embed/embed_op.c, store/req.c): upserts in the
 * points and batch forms, named vectors, vector updates, queries (plain,
 * nearest, prefetch) and every error class, against a real catalog and
 * the built-in hash models plus an http model whose server is down.
 *
 * JSON is written with single quotes; call() turns them into double.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "embed/embed.h"
#include "query/api.h"
#include "store/catalog.h"
#include "store/wal.h"
#include "tests/testutil.h"

typedef struct fx {
    char *dir;
    catalog_t *cat;
    api_t *api;
    embed_reg_t *reg;
    cJSON *keep;
} fx_t;

static fx_t *G;

static char *sq(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static cJSON *call(int method, const char *url, const char *body, int want)
{
    char *b = body ? sq(body) : NULL, path[256];
    const char *q = strchr(url, '?');
    api_resp_t rs;

    snprintf(path, sizeof(path), "%.*s", q ? (int)(q - url) : (int)strlen(url), url);
    api_req_t rq = { .method = method, .path = path, .query = q ? q + 1 : NULL, .body = b,
                     .body_len = b ? strlen(b) : 0 };

    api_handle(G->api, &rq, &rs);
    if (rs.status != want)
        fail_msg("%s %s: status %d, want %d: %s", path, b ? b : "", rs.status, want, rs.body);
    cJSON *doc = cJSON_Parse(rs.body);
    assert_non_null(doc);
    cJSON_AddItemToArray(G->keep, doc);
    free(rs.body);
    free(b);
    return doc;
}

static cJSON *ok(int method, const char *path, const char *body)
{
    return cJSON_GetObjectItemCaseSensitive(call(method, path, body, 200), "result");
}

/* A failing call whose message contains frag and frag2 (may be NULL). */
static void fail_with(int method, const char *path, const char *body, int want, const char *frag,
                      const char *frag2)
{
    cJSON *doc = call(method, path, body, want);
    const char *msg = cJSON_GetObjectItemCaseSensitive(
                          cJSON_GetObjectItemCaseSensitive(doc, "status"), "error")->valuestring;
    if (strstr(msg, frag) == NULL || (frag2 && strstr(msg, frag2) == NULL))
        fail_msg("%s: message \"%s\" lacks \"%s\" / \"%s\"", body, msg, frag, frag2 ? frag2 : "");
}

/* A TCP port nothing listens on: bound, then closed. */
static unsigned closed_port(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    catalog_opts_t o;
    embed_conf_t down;
    char url[64];
    err_t e;

    f->dir = tu_tmpdir("api_infer");
    catalog_opts_default(&o);
    o.storage_path = f->dir;
    o.wal_sync_mode = WAL_SYNC_NONE;
    o.wal_capacity_mb = 1;
    if (catalog_open(&o, &f->cat, &e) != ERR_OK)
        fail_msg("catalog_open: %s", e.msg);
    api_opts_t ao = { .version = "9.9.9-test" };
    assert_int_equal(api_new(f->cat, &ao, &f->api, &e), ERR_OK);
    embed_conf_init(&down);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/embed", closed_port());
    down.name = "down";
    down.type = "http";
    down.api = "tei";
    down.url = url;
    down.dim = 256;
    down.timeout_ms = 500;
    down.max_retries = 0;
    if (embed_reg_new(&down, 1, &f->reg, &e) != ERR_OK)
        fail_msg("embed_reg_new: %s", e.msg);
    api_set_embed(f->api, f->reg);
    api_set_ready(f->api, true);
    f->keep = cJSON_CreateArray();
    G = f;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    api_free(f->api);
    embed_reg_free(f->reg);
    catalog_close(f->cat);
    cJSON_Delete(f->keep);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    G = NULL;
    return 0;
}

/* The embedding of text by model, as the server computes it. */
static float *embed_of(const char *model, const char *text, uint32_t *dim)
{
    embed_model_t *m;
    err_t e;

    assert_int_equal(embed_model_get(G->reg, model, &m, &e), ERR_OK);
    *dim = embed_model_dim(m);
    float *v = malloc(*dim * sizeof(float));
    assert_int_equal(embed_texts(m, &text, 1, v, &e), ERR_OK);
    return v;
}

/* Point id's stored vector (name NULL: the unnamed one) equals the
 * embedding of text (hash vectors are unit length: Cosine keeps them). */
static void assert_stored(const char *coll, int id, const char *name, const char *model,
                          const char *text)
{
    char path[128], body[64];
    uint32_t dim;
    float *want = embed_of(model, text, &dim);

    snprintf(path, sizeof(path), "/collections/%s/points", coll);
    snprintf(body, sizeof(body), "{'ids': [%d], 'with_vector': true}", id);
    cJSON *pt = cJSON_GetArrayItem(ok(API_POST, path, body), 0);
    cJSON *v = cJSON_GetObjectItemCaseSensitive(pt, "vector");
    if (name != NULL)
        v = cJSON_GetObjectItemCaseSensitive(v, name);
    assert_int_equal(cJSON_GetArraySize(v), (int)dim);
    double norm = 0;
    for (uint32_t i = 0; i < dim; i++) {
        double got = cJSON_GetArrayItem(v, (int)i)->valuedouble;
        assert_true(fabs(got - want[i]) < 1e-5);
        norm += got * got;
    }
    assert_true(fabs(norm - 1.0) < 1e-4); /* not a zero vector: the test can fail */
    free(want);
}

static int first_id(const cJSON *points)
{
    return (int)cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(points, 0), "id")->valuedouble;
}

static double count_of(const char *coll)
{
    char path[128];
    snprintf(path, sizeof(path), "/collections/%s/points/count", coll);
    return cJSON_GetObjectItemCaseSensitive(ok(API_POST, path, "{'exact': true}"), "count")
        ->valuedouble;
}

#define H256 "'model': 'veclog/hash-256'"

static void seed_unnamed(void)
{
    ok(API_PUT, "/collections/c", "{'vectors': {'size': 256, 'distance': 'Cosine'}}");
    ok(API_PUT, "/collections/c/points?wait=true",
       "{'points': [{'id': 1, 'vector': {'text': 'the quick brown fox jumps over the lazy dog', " H256 "},"
       " 'payload': {'k': 'fox'}},"
       " {'id': 2, 'vector': {'text': 'lorem ipsum dolor sit amet consectetur', " H256 ", 'options': {}}},"
       " {'id': 3, 'vector': {'text': 'vector databases store embeddings for search', " H256 ", 'options': null}}]}");
    /* the batch form: a list of Documents */
    ok(API_PUT, "/collections/c/points?wait=true",
       "{'batch': {'ids': [4, 5], 'vectors': [{'text': 'kafka topics and partitions', " H256 "},"
       " {'text': 'a recipe for tomato soup with basil', " H256 "}]}}");
}

static void test_infer_upsert_and_query(void **state)
{
    (void)state;
    seed_unnamed();
    assert_true(count_of("c") == 5);
    assert_stored("c", 1, NULL, "veclog/hash-256", "the quick brown fox jumps over the lazy dog");
    assert_stored("c", 5, NULL, "veclog/hash-256", "a recipe for tomato soup with basil");
    /* a near-duplicate text finds its original first, in each query form */
    cJSON *r = ok(API_POST, "/collections/c/points/query",
                  "{'query': {'text': 'the quick brown fox jumped over a lazy dog', " H256 "}}");
    assert_int_equal(first_id(cJSON_GetObjectItem(r, "points")), 1);
    r = ok(API_POST, "/collections/c/points/query",
           "{'query': {'nearest': {'text': 'tomato soup recipe with fresh basil', " H256 "}}}");
    assert_int_equal(first_id(cJSON_GetObjectItem(r, "points")), 5);
    r = ok(API_POST, "/collections/c/points/query",
           "{'prefetch': [{'query': {'text': 'kafka partitions and topics', " H256 "}, 'limit': 3}],"
           " 'query': {'text': 'topics of kafka', " H256 "}, 'limit': 1}");
    assert_int_equal(first_id(cJSON_GetObjectItem(r, "points")), 4);
    r = ok(API_POST, "/collections/c/points/query/batch",
           "{'searches': [{'query': {'text': 'lorem ipsum dolor sit', " H256 "}, 'limit': 1}]}");
    assert_int_equal(first_id(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 0), "points")), 2);
    r = ok(API_POST, "/collections/c/points/query/groups",
           "{'query': {'text': 'quick brown fox', " H256 "}, 'group_by': 'k', 'limit': 1}");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "groups"), 0),
                                            "id")->valuestring, "fox");
    /* the legacy search takes no Document (Qdrant's NamedVectorStruct) */
    fail_with(API_POST, "/collections/c/points/search",
              "{'vector': {'text': 'fox', " H256 "}, 'limit': 1}", 400, "/points/query", NULL);
}

static void test_infer_named_and_update(void **state)
{
    (void)state;
    ok(API_PUT, "/collections/n", "{'vectors': {'a': {'size': 128, 'distance': 'Cosine'},"
                                  " 'b': {'size': 512, 'distance': 'Dot'}}}");
    ok(API_PUT, "/collections/n/points?wait=true",
       "{'points': [{'id': 1, 'vector': {'a': {'text': 'red apples', 'model': 'veclog/hash-128'},"
       " 'b': {'text': 'green pears', 'model': 'veclog/hash-512'}}}]}");
    ok(API_PUT, "/collections/n/points?wait=true",
       "{'batch': {'ids': [2, 3], 'vectors': {'a': [{'text': 'blue sky', 'model': 'veclog/hash-128'},"
       " {'text': 'grey clouds', 'model': 'veclog/hash-128'}],"
       " 'b': [{'text': 'deep sea', 'model': 'veclog/hash-512'},"
       " {'text': 'high mountains', 'model': 'veclog/hash-512'}]}}}");
    assert_stored("n", 1, "a", "veclog/hash-128", "red apples");
    assert_stored("n", 1, "b", "veclog/hash-512", "green pears");
    assert_stored("n", 3, "b", "veclog/hash-512", "high mountains");
    cJSON *r = ok(API_POST, "/collections/n/points/query",
                  "{'query': {'text': 'grey clouds today', 'model': 'veclog/hash-128'}, 'using': 'a'}");
    assert_int_equal(first_id(cJSON_GetObjectItem(r, "points")), 3);
    /* POST .../points/vectors (update vectors) and points/batch take Documents too */
    ok(API_PUT, "/collections/n/points/vectors?wait=true",
       "{'points': [{'id': 2, 'vector': {'a': {'text': 'yellow sun', 'model': 'veclog/hash-128'}}}]}");
    assert_stored("n", 2, "a", "veclog/hash-128", "yellow sun");
    ok(API_POST, "/collections/n/points/batch?wait=true",
       "{'operations': [{'upsert': {'points': [{'id': 4, 'vector': {"
       "'a': {'text': 'four', 'model': 'veclog/hash-128'}, 'b': {'text': 'vier', 'model': 'veclog/hash-512'}}}]}}]}");
    assert_stored("n", 4, "b", "veclog/hash-512", "vier");
    /* a query Document for a vector of another dim */
    fail_with(API_POST, "/collections/n/points/query",
              "{'query': {'text': 'x', 'model': 'veclog/hash-128'}, 'using': 'b'}", 400, "128", "512");
}

static void test_infer_errors(void **state)
{
    (void)state;
    ok(API_PUT, "/collections/c", "{'vectors': {'size': 256, 'distance': 'Cosine'}}");
    /* unknown model: the request's fault (400), naming it and the known ones */
    fail_with(API_PUT, "/collections/c/points",
              "{'points': [{'id': 1, 'vector': {'text': 'x', 'model': 'no/such'}}]}", 400,
              "no/such", "veclog/hash-256");
    fail_with(API_POST, "/collections/c/points/query",
              "{'query': {'text': 'x', 'model': 'no/such'}}", 400, "no/such", "veclog/hash-128");
    /* dim mismatch names the field and both dims */
    fail_with(API_PUT, "/collections/c/points",
              "{'points': [{'id': 1, 'vector': {'text': 'x', 'model': 'veclog/hash-256'}},"
              " {'id': 2, 'vector': {'text': 'x', 'model': 'veclog/hash-128'}}]}",
              400, "points[1].vector", "dim 128");
    fail_with(API_PUT, "/collections/c/points",
              "{'batch': {'ids': [1], 'vectors': [{'text': 'x', 'model': 'veclog/hash-512'}]}}", 400,
              "batch.vectors[0]", "256");
    /* shape errors */
    fail_with(API_PUT, "/collections/c/points",
              "{'points': [{'id': 1, 'vector': {'text': 7, 'model': 'veclog/hash-256'}}]}", 400,
              "points[0].vector.text", "string");
    fail_with(API_POST, "/collections/c/points/query",
              "{'query': {'text': ['a'], 'model': 'veclog/hash-256'}}", 400, "query.text", NULL);
    fail_with(API_PUT, "/collections/c/points",
              "{'points': [{'id': 1, 'vector': {'text': 'x', 'model': 'veclog/hash-256', 'extra': 1}}]}",
              400, "extra", NULL);
    /* the embedding server is down: retriable, 503, and nothing written */
    fail_with(API_PUT, "/collections/c/points",
              "{'points': [{'id': 1, 'vector': [0.5]}, {'id': 9, 'vector': {'text': 'x', 'model': 'down'}}]}",
              400, "dim", NULL); /* checks come before any embedding call */
    fail_with(API_PUT, "/collections/c/points",
              "{'points': [{'id': 1, 'vector': {'text': 'x', 'model': 'veclog/hash-256'}},"
              " {'id': 9, 'vector': {'text': 'y', 'model': 'down'}}]}", 503, "down", NULL);
    fail_with(API_POST, "/collections/c/points/query",
              "{'query': {'text': 'y', 'model': 'down'}}", 503, "down", NULL);
    assert_true(count_of("c") == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_infer_upsert_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_infer_named_and_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_infer_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
