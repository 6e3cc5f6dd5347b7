/*
 * test_api.c - the Qdrant REST API (query/api*.c) called directly through
 * api_handle, on a real catalog in a temporary directory: every route of
 * the routing table, the response envelope and result shapes of Qdrant's
 * OpenAPI spec (v1.19), every error status, authentication, readiness,
 * health and metrics.
 *
 * JSON in this file is written with single quotes ('id') to stay readable;
 * call() and json_eq() turn them into double quotes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/api.h"
#include "store/catalog.h"
#include "store/log.h"
#include "store/wal.h"
#include "tests/testutil.h"

enum { GET = API_GET, POST = API_POST, PUT = API_PUT, PATCH = API_PATCH, DEL = API_DELETE,
       HEAD = API_HEAD };

typedef struct fx {
    char *dir;
    catalog_t *cat;
    api_t *api;
    cJSON *keep;              /* every response of the test, freed at teardown */
    const char *key;          /* api key sent with each request */
    char ctype[64];           /* content type of the last response */
} fx_t;

static fx_t *G;

/* ---- fixture ------------------------------------------------------------- */

static char *sq(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

static void check_envelope(const cJSON *doc, int status, const char *raw)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "status");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "time");

    if (!cJSON_IsObject(doc) || !cJSON_IsNumber(t) || t->valuedouble < 0)
        fail_msg("bad envelope (time): %s", raw);
    if (status == 200) {
        if (!cJSON_IsString(st) || strcmp(st->valuestring, "ok") != 0 ||
            !cJSON_HasObjectItem(doc, "result") || cJSON_GetArraySize(doc) != 3)
            fail_msg("bad success envelope: %s", raw);
        return;
    }
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(st, "error");
    if (!cJSON_IsObject(st) || cJSON_GetArraySize(st) != 1 || !cJSON_IsString(e) ||
        e->valuestring[0] == '\0' || cJSON_GetArraySize(doc) != 2)
        fail_msg("bad error envelope: %s", raw);
}

/* One request; asserts the status and the envelope.  Returns the parsed
 * JSON document (or, for text responses, a JSON string holding the text),
 * owned by the fixture. */
static cJSON *call(int method, const char *url, const char *body, int want)
{
    char path[1024];
    const char *q = strchr(url, '?');
    size_t pl = q ? (size_t)(q - url) : strlen(url);
    char *b = body ? sq(body) : NULL;
    api_resp_t rs;
    cJSON *doc;

    assert_true(pl < sizeof(path));
    memcpy(path, url, pl);
    path[pl] = '\0';
    api_req_t rq = { .method = method, .path = path, .query = q ? q + 1 : NULL, .body = b,
                     .body_len = b ? strlen(b) : 0, .api_key = G->key };
    api_handle(G->api, &rq, &rs);
    api_observe(G->api, rs.route, method, rs.status, 0.001);
    assert_non_null(rs.body);
    assert_non_null(rs.content_type);
    assert_int_equal(strlen(rs.body), rs.body_len);
    snprintf(G->ctype, sizeof(G->ctype), "%s", rs.content_type);
    if (rs.status != want)
        fail_msg("%s %s: status %d, want %d: %s", url, b ? b : "", rs.status, want, rs.body);
    if (strcmp(rs.content_type, "application/json") == 0) {
        doc = cJSON_Parse(rs.body);
        if (doc == NULL)
            fail_msg("%s: response is not JSON: %s", url, rs.body);
        check_envelope(doc, rs.status, rs.body);
    } else {
        doc = cJSON_CreateString(rs.body);
    }
    cJSON_AddItemToArray(G->keep, doc);
    free(rs.body);
    free(b);
    return doc;
}

/* A 200 call; returns its "result". */
static cJSON *ok(int method, const char *url, const char *body)
{
    return cJSON_GetObjectItemCaseSensitive(call(method, url, body, 200), "result");
}

/* A failing call; returns the error message. */
static const char *err_of(int method, const char *url, const char *body, int want)
{
    cJSON *doc = call(method, url, body, want);
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "status"), "error")
        ->valuestring;
}

/* A failing call whose message must contain every given fragment. */
static void fail_with(int method, const char *url, const char *body, int want, const char *frag,
                      const char *frag2)
{
    const char *msg = err_of(method, url, body, want);
    if (strstr(msg, frag) == NULL || (frag2 && strstr(msg, frag2) == NULL))
        fail_msg("%s %s: message \"%s\" lacks \"%s\"%s%s", url, body ? body : "", msg, frag,
                 frag2 ? " / " : "", frag2 ? frag2 : "");
}

static void json_eq(const cJSON *got, const char *want_sq)
{
    char *w = sq(want_sq);
    cJSON *want = cJSON_Parse(w);
    if (want == NULL)
        fail_msg("bad expected JSON: %s", w);
    if (!cJSON_Compare(got, want, 1)) {
        char *g = cJSON_PrintUnformatted(got);
        fprintf(stderr, "got:  %s\nwant: %s\n", g ? g : "(null)", w);
        free(g);
        cJSON_Delete(want);
        free(w);
        fail_msg("JSON differs");
    }
    cJSON_Delete(want);
    free(w);
}

static int setup_bare(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    catalog_opts_t o;
    err_t e;

    f->dir = tu_tmpdir("api");
    catalog_opts_default(&o);
    o.storage_path = f->dir;
    o.wal_sync_mode = WAL_SYNC_NONE;
    o.wal_capacity_mb = 1;
    if (catalog_open(&o, &f->cat, &e) != ERR_OK)
        fail_msg("catalog_open: %s", e.msg);
    api_opts_t ao = { .version = "9.9.9-test" };
    assert_int_equal(api_new(f->cat, &ao, &f->api, &e), ERR_OK);
    api_set_ready(f->api, true);
    f->keep = cJSON_CreateArray();
    G = f;
    *state = f;
    return 0;
}

/* A fresh catalog with collection "c" (4 dims, Dot). */
static int setup(void **state)
{
    setup_bare(state);
    json_eq(ok(PUT, "/collections/c", "{'vectors': {'size': 4, 'distance': 'Dot'}}"), "true");
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    api_free(f->api);
    catalog_close(f->cat);
    cJSON_Delete(f->keep);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    G = NULL;
    return 0;
}

static void update_result(const cJSON *r, const char *status);

/* Six points in "c"; query [1,0,0,0] ranks them 1, 5, 3, then 2, 4, 6 (0). */
static void seed(void)
{
    update_result(ok(PUT, "/collections/c/points?wait=true",
               "{'points': ["
               "{'id': 1, 'vector': [1,0,0,0], 'payload': {'color': 'red', 'n': 1}},"
               "{'id': 2, 'vector': [0,1,0,0], 'payload': {'color': 'blue', 'n': 2}},"
               "{'id': 3, 'vector': [0.5,0.5,0,0], 'payload': {'color': 'red', 'n': 3}},"
               "{'id': 4, 'vector': [0,0,1,0], 'payload': {'color': 'green', 'n': 4}},"
               "{'id': 5, 'vector': [0.9,0,0,0.1], 'payload': {'n': 5}},"
               "{'id': 6, 'vector': [0,0,0,1], 'payload': {'color': 'blue', 'n': 6}}]}"),
                  "completed");
}

/* ---- shape helpers --------------------------------------------------------- */

static void keys_within(const cJSON *o, const char *const *allowed, const char *what)
{
    const cJSON *it;
    if (!cJSON_IsObject(o))
        fail_msg("%s: not an object", what);
    cJSON_ArrayForEach(it, o) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, it->string) != 0)
            a++;
        if (*a == NULL)
            fail_msg("%s: unexpected key \"%s\"", what, it->string);
    }
}

static void keys_required(const cJSON *o, const char *const *req, const char *what)
{
    for (; *req; req++)
        if (!cJSON_HasObjectItem(o, *req))
            fail_msg("%s: missing key \"%s\"", what, *req);
}

#define KEYS_WITHIN(o, ...) keys_within(o, (const char *const[]){ __VA_ARGS__, NULL }, #o)
#define KEYS_REQUIRED(o, ...) keys_required(o, (const char *const[]){ __VA_ARGS__, NULL }, #o)

static bool is_uint(const cJSON *v)
{
    return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble == floor(v->valuedouble);
}

static bool is_point_id(const cJSON *v)
{
    return is_uint(v) || (cJSON_IsString(v) && strlen(v->valuestring) == 36);
}

/* UpdateResult: {"operation_id": uint, "status": enum}. */
static void update_result(const cJSON *r, const char *status)
{
    KEYS_WITHIN(r, "operation_id", "status");
    KEYS_REQUIRED(r, "status");
    assert_true(is_uint(cJSON_GetObjectItem(r, "operation_id")));
    assert_string_equal(cJSON_GetObjectItem(r, "status")->valuestring, status);
}

static void record_shape(const cJSON *p)
{
    KEYS_WITHIN(p, "id", "payload", "vector", "shard_key", "order_value");
    KEYS_REQUIRED(p, "id");
    assert_true(is_point_id(cJSON_GetObjectItem(p, "id")));
    const cJSON *pl = cJSON_GetObjectItem(p, "payload");
    assert_true(pl == NULL || cJSON_IsNull(pl) || cJSON_IsObject(pl));
}

static void scored_shape(const cJSON *p)
{
    KEYS_WITHIN(p, "id", "version", "score", "payload", "vector", "shard_key", "order_value");
    KEYS_REQUIRED(p, "id", "version", "score");
    assert_true(is_point_id(cJSON_GetObjectItem(p, "id")));
    assert_true(is_uint(cJSON_GetObjectItem(p, "version")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(p, "score")));
}

static void scored_list(const cJSON *arr)
{
    const cJSON *it;
    assert_true(cJSON_IsArray(arr));
    cJSON_ArrayForEach(it, arr)
        scored_shape(it);
}

static void record_list(const cJSON *arr)
{
    const cJSON *it;
    assert_true(cJSON_IsArray(arr));
    cJSON_ArrayForEach(it, arr)
        record_shape(it);
}

/* The ids of a list of points as compact JSON, e.g. "[1,5,3]". */
static void ids_eq(const cJSON *arr, const char *want)
{
    cJSON *ids = cJSON_CreateArray();
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
        cJSON_AddItemToArray(ids, cJSON_Duplicate(cJSON_GetObjectItem(it, "id"), 1));
    cJSON_AddItemToArray(G->keep, ids);
    json_eq(ids, want);
}

static double count_of(const char *coll, const char *body)
{
    char url[256];
    snprintf(url, sizeof(url), "/collections/%s/points/count", coll);
    cJSON *r = ok(POST, url, body);
    KEYS_WITHIN(r, "count");
    assert_true(is_uint(cJSON_GetObjectItem(r, "count")));
    return cJSON_GetObjectItem(r, "count")->valuedouble;
}

/* The payload of point id in "c" (JSON, borrowed), NULL if it is missing. */
static const cJSON *payload_of(const char *id)
{
    char body[128];
    snprintf(body, sizeof(body), "{'ids': [%s]}", id);
    cJSON *r = ok(POST, "/collections/c/points", body);
    return cJSON_GetArraySize(r) ? cJSON_GetObjectItem(cJSON_GetArrayItem(r, 0), "payload") : NULL;
}

/* ---- service and collections ------------------------------------------------ */

static void test_api_root_version_info(void **state)
{
    (void)state;
    cJSON *r = ok(GET, "/", NULL);
    KEYS_WITHIN(r, "title", "version", "commit", "veclog_version");
    KEYS_REQUIRED(r, "title", "version");
    assert_string_equal(cJSON_GetObjectItem(r, "veclog_version")->valuestring, "9.9.9-test");
    /* the JS client checks major.minor against its own */
    assert_int_equal(strncmp(cJSON_GetObjectItem(r, "version")->valuestring, "1.", 2), 0);
    /* HEAD is answered like GET */
    call(HEAD, "/", NULL, 200);
}

static void test_api_telemetry(void **state)
{
    (void)state;
    cJSON *r = ok(GET, "/telemetry", NULL);
    KEYS_REQUIRED(r, "id", "collections");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(r, "id")));
    cJSON *app = cJSON_GetObjectItem(r, "app");
    KEYS_REQUIRED(app, "name", "version", "startup");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(app, "startup")));
    json_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "collections"), "number_of_collections"), "1");
}

static void test_api_collection_create_get_list(void **state)
{
    (void)state;
    json_eq(ok(PUT, "/collections/n",
               "{'vectors': {'a': {'size': 2, 'distance': 'Cosine'},"
               "             'b': {'size': 3, 'distance': 'Euclid'}},"
               " 'hnsw_config': {'m': 8}, 'metadata': {'team': 'x'}}"),
            "true");
    json_eq(ok(GET, "/collections", NULL), "{'collections': [{'name': 'c'}, {'name': 'n'}]}");
    cJSON *info = ok(GET, "/collections/n", NULL);
    KEYS_REQUIRED(info, "status", "optimizer_status", "segments_count", "config", "payload_schema");
    KEYS_WITHIN(info, "status", "optimizer_status", "warnings", "indexed_vectors_count",
                "points_count", "segments_count", "config", "payload_schema", "update_queue");
    json_eq(cJSON_GetObjectItem(info, "status"), "'green'");
    json_eq(cJSON_GetObjectItem(info, "optimizer_status"), "'ok'");
    json_eq(cJSON_GetObjectItem(info, "points_count"), "0");
    assert_true(is_uint(cJSON_GetObjectItem(info, "segments_count")));
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(info, "payload_schema")));
    cJSON *cfg = cJSON_GetObjectItem(info, "config");
    KEYS_REQUIRED(cfg, "params", "hnsw_config", "optimizer_config");
    KEYS_WITHIN(cfg, "params", "hnsw_config", "optimizer_config", "wal_config",
                "quantization_config", "strict_mode_config", "metadata");
    json_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "params"), "vectors"),
            "{'a': {'size': 2, 'distance': 'Cosine'}, 'b': {'size': 3, 'distance': 'Euclid'}}");
    json_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "hnsw_config"), "m"), "8");
    KEYS_REQUIRED(cJSON_GetObjectItem(cfg, "hnsw_config"), "m", "ef_construct", "full_scan_threshold");
    KEYS_REQUIRED(cJSON_GetObjectItem(cfg, "optimizer_config"), "default_segment_number",
                  "flush_interval_sec");
    KEYS_REQUIRED(cJSON_GetObjectItem(cfg, "wal_config"), "wal_capacity_mb", "wal_segments_ahead");
    json_eq(cJSON_GetObjectItem(cfg, "metadata"), "{'team': 'x'}");
    /* a trailing slash is the same path */
    json_eq(ok(GET, "/collections/", NULL), "{'collections': [{'name': 'c'}, {'name': 'n'}]}");
}

static void test_api_collection_exists_update_delete(void **state)
{
    (void)state;
    json_eq(ok(GET, "/collections/c/exists", NULL), "{'exists': true}");
    json_eq(ok(GET, "/collections/nope/exists", NULL), "{'exists': false}");
    json_eq(ok(PATCH, "/collections/c",
               "{'optimizers_config': {'indexing_threshold': 0}, 'hnsw_config': {'ef_construct': 64},"
               " 'params': {'replication_factor': 1}}"),
            "true");
    cJSON *cfg = cJSON_GetObjectItem(ok(GET, "/collections/c", NULL), "config");
    json_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "hnsw_config"), "ef_construct"), "64");
    json_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(cfg, "optimizer_config"), "indexing_threshold"), "0");
    fail_with(PATCH, "/collections/c", "{'optimizers_config': {'bogus': 1}}", 400, "bogus", NULL);
    fail_with(PATCH, "/collections/c", "{'vectors': {'size': 8}}", 501, "vectors", NULL);
    fail_with(PATCH, "/collections/nope", "{}", 404, "nope", NULL);
    fail_with(PATCH, "/collections/c", NULL, 400, "body", NULL);
    json_eq(ok(DEL, "/collections/c", NULL), "true");
    json_eq(ok(DEL, "/collections/c", NULL), "false");
    json_eq(ok(GET, "/collections/c/exists", NULL), "{'exists': false}");
    fail_with(GET, "/collections/c", NULL, 404, "Not found: Collection `c` doesn't exist!", NULL);
    json_eq(ok(GET, "/collections", NULL), "{'collections': []}");
    /* the name is free again */
    json_eq(ok(PUT, "/collections/c", "{'vectors': {'size': 2, 'distance': 'Euclid'}}"), "true");
    json_eq(ok(GET, "/collections/c/exists", NULL), "{'exists': true}");
}

static void test_api_collection_create_errors(void **state)
{
    (void)state;
    fail_with(PUT, "/collections/c", "{'vectors': {'size': 4, 'distance': 'Dot'}}", 409,
              "Collection `c` already exists", NULL);
    fail_with(PUT, "/collections/x", "{'vectors': {'size': 4, 'distance': 'Dot'}, 'bogus': 1}", 400,
              "bogus", NULL);
    fail_with(PUT, "/collections/x", "{'vectors': {'size': 'four', 'distance': 'Dot'}}", 400, "size",
              NULL);
    fail_with(PUT, "/collections/x", "{'vectors': {'size': 4, 'distance': 'Hamming'}}", 400,
              "distance", NULL);
    fail_with(PUT, "/collections/x", "{'vectors': {'size': 4, 'distance': 'Dot'},"
                                     " 'sparse_vectors': {'s': {}}}", 501, "sparse", NULL);
    fail_with(PUT, "/collections/x", "{'vectors': {'size': 4, 'distance': 'Dot'},"
                                     " 'quantization_config': {'scalar': {'type': 'int8'}}}", 501,
              "quantization", NULL);
    fail_with(PUT, "/collections/x", "{'vectors': ", 400, "JSON", NULL);
    fail_with(PUT, "/collections/.hidden", "{'vectors': {'size': 4, 'distance': 'Dot'}}", 400,
              "name", NULL);
    json_eq(ok(GET, "/collections", NULL), "{'collections': [{'name': 'c'}]}");
}

static void test_api_aliases(void **state)
{
    (void)state;
    json_eq(ok(PUT, "/collections/d", "{'vectors': {'size': 4, 'distance': 'Dot'}}"), "true");
    json_eq(ok(POST, "/collections/aliases",
               "{'actions': [{'create_alias': {'collection_name': 'c', 'alias_name': 'a1'}},"
               "             {'create_alias': {'collection_name': 'd', 'alias_name': 'a2'}}]}"),
            "true");
    cJSON *all = ok(GET, "/aliases", NULL);
    KEYS_WITHIN(all, "aliases");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(all, "aliases")), 2);
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(all, "aliases")) {
        KEYS_WITHIN(it, "alias_name", "collection_name");
        KEYS_REQUIRED(it, "alias_name", "collection_name");
    }
    json_eq(ok(GET, "/collections/c/aliases", NULL),
            "{'aliases': [{'alias_name': 'a1', 'collection_name': 'c'}]}");
    json_eq(ok(POST, "/collections/aliases",
               "{'actions': [{'rename_alias': {'old_alias_name': 'a1', 'new_alias_name': 'b1'}}]}"),
            "true");
    json_eq(ok(GET, "/collections/c/aliases", NULL),
            "{'aliases': [{'alias_name': 'b1', 'collection_name': 'c'}]}");
    json_eq(ok(GET, "/collections/b1/exists", NULL), "{'exists': true}"); /* resolved like GET /collections/{name} */
    json_eq(cJSON_GetObjectItem(ok(GET, "/collections/b1", NULL), "status"), "'green'");
    /* re-pointing an alias with create_alias moves it */
    json_eq(ok(POST, "/collections/aliases",
               "{'actions': [{'delete_alias': {'alias_name': 'a2'}},"
               "             {'create_alias': {'collection_name': 'c', 'alias_name': 'a2'}}]}"),
            "true");
    json_eq(ok(GET, "/collections/d/aliases", NULL), "{'aliases': []}");
    /* a failing action rolls back the whole batch */
    fail_with(POST, "/collections/aliases",
              "{'actions': [{'delete_alias': {'alias_name': 'b1'}},"
              "             {'create_alias': {'collection_name': 'nope', 'alias_name': 'x'}}]}",
              404, "nope", NULL);
    json_eq(ok(GET, "/collections/c/aliases", NULL),
            "{'aliases': [{'alias_name': 'b1', 'collection_name': 'c'}, "
            "{'alias_name': 'a2', 'collection_name': 'c'}]}");
    fail_with(POST, "/collections/aliases",
              "{'actions': [{'create_alias': {'collection_name': 'c', 'alias_name': 'd'}}]}", 409,
              "`d` already exists", NULL);
    fail_with(PUT, "/collections/b1", "{'vectors': {'size': 4, 'distance': 'Dot'}}", 409,
              "`b1` already exists", NULL);
    fail_with(POST, "/collections/aliases",
              "{'actions': [{'delete_alias': {'alias_name': 'zz'}}]}", 404, "zz", NULL);
    fail_with(POST, "/collections/aliases", "{'actions': [{'explode': {}}]}", 400, "actions[0]", NULL);
    fail_with(POST, "/collections/aliases", "{'actions': [], 'extra': 1}", 400, "extra", NULL);
    fail_with(POST, "/collections/aliases", "{'actions': 3}", 400, "actions", NULL);
    fail_with(GET, "/collections/nope/aliases", NULL, 404, "nope", NULL);
    /* dropping a collection drops its aliases */
    json_eq(ok(DEL, "/collections/c", NULL), "true");
    json_eq(ok(GET, "/aliases", NULL), "{'aliases': []}");
}

/* Every points route works through an alias. */
static void test_api_alias_resolves_points_routes(void **state)
{
    (void)state;
    json_eq(ok(POST, "/collections/aliases",
               "{'actions': [{'create_alias': {'collection_name': 'c', 'alias_name': 'al'}}]}"),
            "true");
    update_result(ok(PUT, "/collections/al/points?wait=true",
                     "{'points': [{'id': 1, 'vector': [1,0,0,0], 'payload': {'k': 1}},"
                     "            {'id': 2, 'vector': [0,1,0,0]}]}"), "completed");
    record_list(ok(POST, "/collections/al/points", "{'ids': [1]}"));
    record_shape(ok(GET, "/collections/al/points/1", NULL));
    update_result(ok(POST, "/collections/al/points/payload?wait=true",
                     "{'payload': {'x': 1}, 'points': [1]}"), "completed");
    update_result(ok(PUT, "/collections/al/points/payload?wait=true",
                     "{'payload': {'y': 1}, 'points': [1]}"), "completed");
    update_result(ok(POST, "/collections/al/points/payload/delete?wait=true",
                     "{'keys': ['y'], 'points': [1]}"), "completed");
    update_result(ok(POST, "/collections/al/points/payload/clear?wait=true", "{'points': [1]}"),
                  "completed");
    update_result(ok(PUT, "/collections/al/points/vectors?wait=true",
                     "{'points': [{'id': 1, 'vector': [0,0,1,0]}]}"), "completed");
    update_result(ok(POST, "/collections/al/points/vectors/delete?wait=true",
                     "{'vector': [''], 'points': [2]}"), "completed");
    cJSON *b = ok(POST, "/collections/al/points/batch?wait=true",
                  "{'operations': [{'set_payload': {'payload': {'z': 1}, 'points': [1]}}]}");
    assert_int_equal(cJSON_GetArraySize(b), 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ok(POST, "/collections/al/points/scroll", "{}"),
                                                            "points")), 2);
    assert_true(count_of("al", "{}") == 2);
    scored_list(ok(POST, "/collections/al/points/search", "{'vector': [0,0,1,0], 'limit': 1}"));
    assert_int_equal(cJSON_GetArraySize(ok(POST, "/collections/al/points/search/batch",
                                           "{'searches': [{'vector': [0,0,1,0], 'limit': 1}]}")), 1);
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/al/points/query", "{'query': [0,0,1,0], 'limit': 1}"),
                               "points"), "[1]");
    assert_int_equal(cJSON_GetArraySize(ok(POST, "/collections/al/points/query/batch",
                                           "{'searches': [{}, {}]}")), 2);
    update_result(ok(POST, "/collections/al/points/delete?wait=true", "{'points': [1, 2]}"), "completed");
    assert_true(count_of("c", "{}") == 0);
    json_eq(ok(PATCH, "/collections/al", "{'hnsw_config': {'m': 4}}"), "true");
}

/* ---- upsert ------------------------------------------------------------------ */

static void test_api_upsert_points_form(void **state)
{
    (void)state;
    cJSON *r = ok(PUT, "/collections/c/points?wait=true",
                  "{'points': [{'id': 7, 'vector': [1,2,3,4], 'payload': {'a': {'b': [1, 'x']}}},"
                  "            {'id': 8, 'vector': [0.25,0,0,0]},"
                  "            {'id': 9, 'vector': [0,0,0,1], 'payload': null}]}");
    update_result(r, "completed");
    json_eq(ok(GET, "/collections/c/points/7", NULL),
            "{'id': 7, 'payload': {'a': {'b': [1, 'x']}}, 'vector': [1,2,3,4]}");
    json_eq(ok(GET, "/collections/c/points/8", NULL), "{'id': 8, 'payload': {}, 'vector': [0.25,0,0,0]}");
    assert_true(count_of("c", "{}") == 3);
    /* an upsert replaces the payload and the vector */
    ok(PUT, "/collections/c/points?wait=true", "{'points': [{'id': 7, 'vector': [0,0,0,2]}]}");
    json_eq(ok(GET, "/collections/c/points/7", NULL), "{'id': 7, 'payload': {}, 'vector': [0,0,0,2]}");
    json_eq(cJSON_GetObjectItem(ok(GET, "/collections/c", NULL), "points_count"), "3");
    /* an empty list is a valid no-op */
    update_result(ok(PUT, "/collections/c/points?wait=true", "{'points': []}"), "completed");
}

static void test_api_upsert_batch_form(void **state)
{
    (void)state;
    update_result(ok(PUT, "/collections/c/points?wait=true",
                     "{'batch': {'ids': [1, 2, 3], 'vectors': [[1,0,0,0],[0,1,0,0],[0,0,1,0]],"
                     "           'payloads': [{'k': 'a'}, null, {'k': 'c'}]}}"), "completed");
    json_eq(ok(POST, "/collections/c/points", "{'ids': [1, 2, 3], 'with_vector': true}"),
            "[{'id': 1, 'payload': {'k': 'a'}, 'vector': [1,0,0,0]},"
            " {'id': 2, 'payload': {}, 'vector': [0,1,0,0]},"
            " {'id': 3, 'payload': {'k': 'c'}, 'vector': [0,0,1,0]}]");
    /* without payloads */
    update_result(ok(PUT, "/collections/c/points?wait=true",
                     "{'batch': {'ids': [4], 'vectors': [[0,0,0,1]]}}"), "completed");
    assert_true(count_of("c", "{}") == 4);
    /* named vectors in the batch form: a map name -> list of vectors */
    ok(PUT, "/collections/n", "{'vectors': {'a': {'size': 2, 'distance': 'Dot'},"
                              "             'b': {'size': 1, 'distance': 'Dot'}}}");
    update_result(ok(PUT, "/collections/n/points?wait=true",
                     "{'batch': {'ids': [1, 2], 'vectors': {'a': [[1,0],[0,1]], 'b': [[5],[6]]}}}"),
                  "completed");
    json_eq(ok(GET, "/collections/n/points/2", NULL),
            "{'id': 2, 'payload': {}, 'vector': {'a': [0,1], 'b': [6]}}");
    /* lengths must agree */
    fail_with(PUT, "/collections/c/points", "{'batch': {'ids': [1, 2], 'vectors': [[1,0,0,0]]}}", 400,
              "batch.vectors", NULL);
    fail_with(PUT, "/collections/c/points",
              "{'batch': {'ids': [1], 'vectors': [[1,0,0,0]], 'payloads': [{}, {}]}}", 400,
              "batch.payloads", NULL);
    fail_with(PUT, "/collections/n/points", "{'batch': {'ids': [1], 'vectors': {'a': [[1,0], [0,1]]}}}",
              400, "batch.vectors.a", NULL);
    fail_with(PUT, "/collections/c/points", "{'batch': {'ids': ['x'], 'vectors': [[1,0,0,0]]}}", 400,
              "batch.ids[0]", NULL);
    fail_with(PUT, "/collections/c/points", "{'batch': {'ids': [9], 'vectors': [[1,0,0]]}}", 400,
              "dimension", NULL);
    fail_with(PUT, "/collections/c/points",
              "{'batch': {'ids': [9], 'vectors': [[1,0,0,0]]}, 'points': []}", 400, "points", "batch");
}

static void test_api_upsert_named_vectors(void **state)
{
    (void)state;
    ok(PUT, "/collections/n", "{'vectors': {'a': {'size': 2, 'distance': 'Cosine'},"
                              "             'b': {'size': 3, 'distance': 'Euclid'}}}");
    update_result(ok(PUT, "/collections/n/points?wait=true",
                     "{'points': [{'id': 1, 'vector': {'a': [3,4], 'b': [1,2,3]}},"
                     "            {'id': 2, 'vector': {'b': [0,0,1]}},"
                     "            {'id': 3, 'vector': {}}]}"), "completed");
    /* Cosine vectors are stored normalised, as Qdrant does */
    json_eq(ok(GET, "/collections/n/points/1", NULL),
            "{'id': 1, 'payload': {}, 'vector': {'a': [0.6,0.8], 'b': [1,2,3]}}");
    json_eq(ok(GET, "/collections/n/points/2", NULL), "{'id': 2, 'payload': {}, 'vector': {'b': [0,0,1]}}");
    json_eq(ok(GET, "/collections/n/points/3", NULL), "{'id': 3, 'payload': {}, 'vector': {}}");
    json_eq(ok(POST, "/collections/n/points", "{'ids': [1], 'with_vector': ['b'], 'with_payload': false}"),
            "[{'id': 1, 'payload': null, 'vector': {'b': [1,2,3]}}]");
    fail_with(PUT, "/collections/n/points", "{'points': [{'id': 1, 'vector': {'zz': [1,2]}}]}", 400,
              "zz", NULL);
    fail_with(PUT, "/collections/n/points", "{'points': [{'id': 1, 'vector': [1,2]}]}", 400,
              "points[0]", "unnamed");
    fail_with(PUT, "/collections/n/points", "{'points': [{'id': 1, 'vector': {'a': [1,2,3]}}]}", 400,
              "dimension", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': {'a': [1,2,3,4]}}]}", 400,
              "\"a\"", NULL);
}

static void test_api_upsert_uuid_forms(void **state)
{
    (void)state;
    const char *canon = "550e8400-e29b-41d4-a716-446655440000";
    update_result(ok(PUT, "/collections/c/points?wait=true",
                     "{'points': [{'id': '550e8400-e29b-41d4-a716-446655440000', 'vector': [1,0,0,0],"
                     "             'payload': {'v': 1}}]}"), "completed");
    /* simple, braced, URN and upper-case forms all name the same point */
    ok(PUT, "/collections/c/points?wait=true",
       "{'points': [{'id': '550e8400e29b41d4a716446655440000', 'vector': [1,0,0,0], 'payload': {'v': 2}}]}");
    ok(PUT, "/collections/c/points?wait=true",
       "{'points': [{'id': '{550e8400-e29b-41d4-a716-446655440000}', 'vector': [1,0,0,0], 'payload': {'v': 3}}]}");
    ok(PUT, "/collections/c/points?wait=true",
       "{'points': [{'id': 'urn:uuid:550e8400-e29b-41d4-a716-446655440000', 'vector': [1,0,0,0],"
       " 'payload': {'v': 4}}]}");
    ok(PUT, "/collections/c/points?wait=true",
       "{'batch': {'ids': ['550E8400-E29B-41D4-A716-446655440000'], 'vectors': [[1,0,0,0]],"
       " 'payloads': [{'v': 5}]}}");
    assert_true(count_of("c", "{}") == 1);
    cJSON *r = ok(POST, "/collections/c/points",
                  "{'ids': ['urn:uuid:550E8400-E29B-41D4-A716-446655440000']}");
    json_eq(r, "[{'id': '550e8400-e29b-41d4-a716-446655440000', 'payload': {'v': 5}, 'vector': null}]");
    /* path ids in every form, answered with the canonical form */
    const char *paths[] = { "/collections/c/points/550e8400-e29b-41d4-a716-446655440000",
                            "/collections/c/points/550e8400e29b41d4a716446655440000",
                            "/collections/c/points/{550e8400-e29b-41d4-a716-446655440000}",
                            "/collections/c/points/urn:uuid:550e8400-e29b-41d4-a716-446655440000",
                            "/collections/c/points/550E8400-E29B-41D4-A716-446655440000" };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
        assert_string_equal(cJSON_GetObjectItem(ok(GET, paths[i], NULL), "id")->valuestring, canon);
    /* other endpoints normalise too */
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/scroll", "{}"), "points"),
           "['550e8400-e29b-41d4-a716-446655440000']");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query",
                                  "{'query': '550E8400E29B41D4A716446655440000'}"), "points"), "[]");
    update_result(ok(POST, "/collections/c/points/payload?wait=true",
                     "{'payload': {'w': 1}, 'points': ['{550E8400-E29B-41D4-A716-446655440000}']}"),
                  "completed");
    json_eq(payload_of("'550e8400e29b41d4a716446655440000'"), "{'v': 5, 'w': 1}");
    /* a missing UUID is reported in canonical form */
    fail_with(POST, "/collections/c/points/payload",
              "{'payload': {'w': 1}, 'points': ['660E8400E29B41D4A716446655440000']}", 404,
              "660e8400-e29b-41d4-a716-446655440000", NULL);
    update_result(ok(POST, "/collections/c/points/delete?wait=true",
                     "{'points': ['urn:uuid:550e8400-e29b-41d4-a716-446655440000']}"), "completed");
    assert_true(count_of("c", "{}") == 0);
    /* not UUIDs */
    fail_with(PUT, "/collections/c/points",
              "{'points': [{'id': '550e8400-e29b-41d4-a716-44665544000', 'vector': [1,0,0,0]}]}", 400,
              "points[0].id", NULL);
    fail_with(PUT, "/collections/c/points",
              "{'points': [{'id': '{550e8400e29b41d4a716446655440000}', 'vector': [1,0,0,0]}]}", 400,
              "points[0].id", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': -1, 'vector': [1,0,0,0]}]}", 400,
              "points[0].id", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': 1.5, 'vector': [1,0,0,0]}]}", 400,
              "points[0].id", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': true, 'vector': [1,0,0,0]}]}", 400,
              "points[0].id", NULL);
    fail_with(GET, "/collections/c/points/not-a-uuid", NULL, 400, "not-a-uuid", NULL);
}

static void test_api_upsert_update_mode(void **state)
{
    (void)state;
    seed();
    /* insert_only: 1 exists and is kept, 10 is new */
    update_result(ok(PUT, "/collections/c/points?wait=true",
                     "{'update_mode': 'insert_only', 'points': ["
                     "{'id': 1, 'vector': [0,0,0,1], 'payload': {'new': true}},"
                     "{'id': 10, 'vector': [0,0,0,1], 'payload': {'new': true}}]}"), "completed");
    json_eq(payload_of("1"), "{'color': 'red', 'n': 1}");
    json_eq(payload_of("10"), "{'new': true}");
    /* update_only: 2 exists and changes, 11 is not created */
    update_result(ok(PUT, "/collections/c/points?wait=true",
                     "{'update_mode': 'update_only', 'batch': {'ids': [2, 11],"
                     " 'vectors': [[0,0,0,1],[0,0,0,1]], 'payloads': [{'u': 1}, {'u': 1}]}}"),
                  "completed");
    json_eq(payload_of("2"), "{'u': 1}");
    assert_null(payload_of("11"));
    /* upsert, explicitly */
    ok(PUT, "/collections/c/points?wait=true",
       "{'update_mode': 'upsert', 'points': [{'id': 11, 'vector': [0,0,0,1]}]}");
    assert_true(count_of("c", "{}") == 8);
    fail_with(PUT, "/collections/c/points",
              "{'update_mode': 'replace', 'points': [{'id': 1, 'vector': [0,0,0,1]}]}", 400,
              "update_mode", NULL);
    fail_with(PUT, "/collections/c/points",
              "{'update_mode': 1, 'points': [{'id': 1, 'vector': [0,0,0,1]}]}", 400, "update_mode", NULL);
}

static void test_api_upsert_update_filter(void **state)
{
    (void)state;
    seed();
    /* existing points change only if they match; new points are inserted */
    update_result(ok(PUT, "/collections/c/points?wait=true",
                     "{'update_filter': {'must': [{'key': 'color', 'match': {'value': 'red'}}]},"
                     " 'points': [{'id': 1, 'vector': [0,0,0,1], 'payload': {'x': 1}},"
                     "            {'id': 2, 'vector': [0,0,0,1], 'payload': {'x': 2}},"
                     "            {'id': 20, 'vector': [0,0,0,1], 'payload': {'x': 20}}]}"),
                  "completed");
    json_eq(payload_of("1"), "{'x': 1}");
    json_eq(payload_of("2"), "{'color': 'blue', 'n': 2}");
    json_eq(payload_of("20"), "{'x': 20}");
    /* the batch form too */
    ok(PUT, "/collections/c/points?wait=true",
       "{'update_filter': {'must': [{'key': 'n', 'range': {'gte': 6}}]},"
       " 'batch': {'ids': [5, 6], 'vectors': [[0,0,0,1],[0,0,0,1]], 'payloads': [{'y': 5}, {'y': 6}]}}");
    json_eq(payload_of("5"), "{'n': 5}");
    json_eq(payload_of("6"), "{'y': 6}");
    fail_with(PUT, "/collections/c/points",
              "{'update_filter': {'must': [{'key': 'n', 'range': {'gt': 'x'}}]},"
              " 'points': [{'id': 1, 'vector': [0,0,0,1]}]}", 400, "range", NULL);
    fail_with(PUT, "/collections/c/points",
              "{'update_filter': 5, 'points': [{'id': 1, 'vector': [0,0,0,1]}]}", 400, "update_filter", NULL);
}

static void test_api_wait_completed_vs_acknowledged(void **state)
{
    (void)state;
    const char *body = "{'points': [{'id': 1, 'vector': [1,0,0,0]}]}";
    cJSON *a = ok(PUT, "/collections/c/points", body);
    update_result(a, "acknowledged");
    update_result(ok(PUT, "/collections/c/points?wait=false", body), "acknowledged");
    update_result(ok(PUT, "/collections/c/points?wait=true", body), "completed");
    update_result(ok(PUT, "/collections/c/points?timeout=5&wait=true", body), "completed");
    cJSON *last = ok(PUT, "/collections/c/points?wait=true&ordering=weak", body);
    update_result(last, "completed");
    /* operation ids grow */
    assert_true(cJSON_GetObjectItem(last, "operation_id")->valuedouble >
                cJSON_GetObjectItem(a, "operation_id")->valuedouble);
    /* every write endpoint honours it */
    update_result(ok(POST, "/collections/c/points/payload", "{'payload': {'a': 1}, 'points': [1]}"),
                  "acknowledged");
    update_result(ok(POST, "/collections/c/points/delete?wait=true", "{'points': [1]}"), "completed");
    cJSON *b = ok(POST, "/collections/c/points/batch",
                  "{'operations': [{'upsert': {'points': [{'id': 1, 'vector': [1,0,0,0]}]}}]}");
    update_result(cJSON_GetArrayItem(b, 0), "acknowledged");
}

/* ---- reads by id ---------------------------------------------------------------- */

static void test_api_retrieve_and_get_point(void **state)
{
    (void)state;
    seed();
    cJSON *r = ok(POST, "/collections/c/points", "{'ids': [3, 99, 1]}");
    record_list(r);
    json_eq(r, "[{'id': 3, 'payload': {'color': 'red', 'n': 3}, 'vector': null},"
               " {'id': 1, 'payload': {'color': 'red', 'n': 1}, 'vector': null}]");
    json_eq(ok(POST, "/collections/c/points",
               "{'ids': [1], 'with_payload': ['n'], 'with_vector': true}"),
            "[{'id': 1, 'payload': {'n': 1}, 'vector': [1,0,0,0]}]");
    json_eq(ok(POST, "/collections/c/points",
               "{'ids': [1], 'with_payload': {'exclude': ['n']}, 'with_vector': false}"),
            "[{'id': 1, 'payload': {'color': 'red'}, 'vector': null}]");
    json_eq(ok(POST, "/collections/c/points", "{'ids': [1], 'with_payload': false}"),
            "[{'id': 1, 'payload': null, 'vector': null}]");
    json_eq(ok(POST, "/collections/c/points", "{'ids': []}"), "[]");
    cJSON *p = ok(GET, "/collections/c/points/5", NULL);
    record_shape(p);
    json_eq(p, "{'id': 5, 'payload': {'n': 5}, 'vector': [0.9,0,0,0.1]}");
    fail_with(GET, "/collections/c/points/99", NULL, 404, "Not found: No point with id 99 found", NULL);
    fail_with(GET, "/collections/nope/points/1", NULL, 404, "Collection `nope` doesn't exist", NULL);
    fail_with(POST, "/collections/c/points", "{'ids': [1], 'bogus': 1}", 400, "bogus", NULL);
    fail_with(POST, "/collections/c/points", "{'ids': 1}", 400, "ids", NULL);
    fail_with(POST, "/collections/c/points", "{'ids': [1, 'x']}", 400, "ids[1]", NULL);
    fail_with(POST, "/collections/c/points", "{'ids': [1], 'with_payload': 3}", 400, "with_payload", NULL);
    fail_with(POST, "/collections/c/points", "{'ids': [1], 'with_vector': 5}", 400, "with_vector", NULL);
    fail_with(POST, "/collections/c/points", NULL, 400, "body", NULL);
}

/* ---- deletes and payload / vector updates ---------------------------------------- */

static void test_api_delete_by_ids_and_filter(void **state)
{
    (void)state;
    seed();
    update_result(ok(POST, "/collections/c/points/delete?wait=true", "{'points': [1, 2, 99]}"),
                  "completed");
    assert_true(count_of("c", "{}") == 4);
    update_result(ok(POST, "/collections/c/points/delete?wait=true",
                     "{'filter': {'must': [{'key': 'color', 'match': {'any': ['red', 'green']}}]}}"),
                  "completed");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/scroll", "{}"), "points"), "[5, 6]");
    json_eq(cJSON_GetObjectItem(ok(GET, "/collections/c", NULL), "points_count"), "2");
    fail_with(POST, "/collections/c/points/delete", "{}", 400, "points", "filter");
    fail_with(POST, "/collections/c/points/delete", "{'points': [1], 'filter': {}}", 400, "points",
              "filter");
    fail_with(POST, "/collections/c/points/delete", "{'points': [1], 'bogus': 1}", 400, "bogus", NULL);
    fail_with(POST, "/collections/c/points/delete", "{'points': ['zz']}", 400, "points[0]", NULL);
    fail_with(POST, "/collections/c/points/delete", "{'filter': {'must': [{'key': 'n'}]}}", 400,
              "filter.must[0]", NULL);
    fail_with(POST, "/collections/c/points/delete", "{'filter': []}", 400, "filter", NULL);
    fail_with(POST, "/collections/nope/points/delete", "{'points': [1]}", 404, "nope", NULL);
}

static void test_api_payload_set_overwrite_delete_clear(void **state)
{
    (void)state;
    seed();
    /* set merges */
    update_result(ok(POST, "/collections/c/points/payload?wait=true",
                     "{'payload': {'n': 10, 'extra': [1]}, 'points': [1, 2]}"), "completed");
    json_eq(payload_of("1"), "{'color': 'red', 'n': 10, 'extra': [1]}");
    json_eq(payload_of("2"), "{'color': 'blue', 'n': 10, 'extra': [1]}");
    /* set at a key */
    ok(POST, "/collections/c/points/payload?wait=true", "{'payload': {'b': 1}, 'key': 'nested', 'points': [1]}");
    json_eq(payload_of("1"), "{'color': 'red', 'n': 10, 'extra': [1], 'nested': {'b': 1}}");
    /* set by filter */
    ok(POST, "/collections/c/points/payload?wait=true",
       "{'payload': {'tag': 'r'}, 'filter': {'must': [{'key': 'color', 'match': {'value': 'red'}}]}}");
    assert_true(count_of("c", "{'filter': {'must': [{'key': 'tag', 'match': {'value': 'r'}}]}}") == 2);
    /* overwrite replaces */
    update_result(ok(PUT, "/collections/c/points/payload?wait=true", "{'payload': {'only': 1}, 'points': [1]}"),
                  "completed");
    json_eq(payload_of("1"), "{'only': 1}");
    ok(PUT, "/collections/c/points/payload?wait=true",
       "{'payload': {'blue': true}, 'filter': {'must': [{'key': 'color', 'match': {'value': 'blue'}}]}}");
    json_eq(payload_of("6"), "{'blue': true}");
    /* delete keys */
    update_result(ok(POST, "/collections/c/points/payload/delete?wait=true",
                     "{'keys': ['n', 'color'], 'points': [3]}"), "completed");
    json_eq(payload_of("3"), "{'tag': 'r'}");
    ok(POST, "/collections/c/points/payload/delete?wait=true",
       "{'keys': ['n'], 'filter': {'must': [{'key': 'color', 'match': {'value': 'green'}}]}}");
    json_eq(payload_of("4"), "{'color': 'green'}");
    /* clear */
    update_result(ok(POST, "/collections/c/points/payload/clear?wait=true", "{'points': [3]}"), "completed");
    json_eq(payload_of("3"), "{}");
    ok(POST, "/collections/c/points/payload/clear?wait=true",
       "{'filter': {'must': [{'key': 'n', 'match': {'value': 5}}]}}");
    json_eq(payload_of("5"), "{}");
    /* 404 when an id does not exist; nothing changes */
    fail_with(POST, "/collections/c/points/payload", "{'payload': {'z': 1}, 'points': [1, 99]}", 404,
              "No point with id 99 found", NULL);
    json_eq(payload_of("1"), "{'only': 1}");
    fail_with(PUT, "/collections/c/points/payload", "{'payload': {'z': 1}, 'points': [99]}", 404, "99", NULL);
    fail_with(POST, "/collections/c/points/payload/delete", "{'keys': ['a'], 'points': [99]}", 404, "99",
              NULL);
    fail_with(POST, "/collections/c/points/payload/clear", "{'points': [99]}", 404, "99", NULL);
    /* 400s */
    fail_with(POST, "/collections/c/points/payload", "{'points': [1]}", 400, "payload", NULL);
    fail_with(POST, "/collections/c/points/payload", "{'payload': [1], 'points': [1]}", 400, "payload", NULL);
    fail_with(POST, "/collections/c/points/payload", "{'payload': {}, 'points': [1], 'keys': []}", 400,
              "keys", NULL);
    fail_with(PUT, "/collections/c/points/payload", "{'payload': {}, 'points': [1], 'key': 'a'}", 400,
              "key", NULL);
    fail_with(POST, "/collections/c/points/payload", "{'payload': {}}", 400, "points", "filter");
    fail_with(POST, "/collections/c/points/payload/delete", "{'keys': 'n', 'points': [1]}", 400, "keys", NULL);
    fail_with(POST, "/collections/c/points/payload/delete", "{'keys': [1], 'points': [1]}", 400, "keys[0]",
              NULL);
    fail_with(POST, "/collections/c/points/payload/clear", "{'points': [1], 'keys': ['a']}", 400, "keys",
              NULL);
}

static void test_api_vectors_update_delete(void **state)
{
    (void)state;
    ok(PUT, "/collections/n", "{'vectors': {'a': {'size': 2, 'distance': 'Dot'},"
                              "             'b': {'size': 3, 'distance': 'Dot'}}}");
    ok(PUT, "/collections/n/points?wait=true",
       "{'points': [{'id': 1, 'vector': {'a': [1,0]}, 'payload': {'k': 1}},"
       "            {'id': 2, 'vector': {'a': [0,1], 'b': [1,1,1]}, 'payload': {'k': 2}}]}");
    update_result(ok(PUT, "/collections/n/points/vectors?wait=true",
                     "{'points': [{'id': 1, 'vector': {'b': [2,2,2]}}]}"), "completed");
    json_eq(ok(GET, "/collections/n/points/1", NULL),
            "{'id': 1, 'payload': {'k': 1}, 'vector': {'a': [1,0], 'b': [2,2,2]}}");
    /* update_filter: 2 does not match, so it keeps its vectors */
    ok(PUT, "/collections/n/points/vectors?wait=true",
       "{'update_filter': {'must': [{'key': 'k', 'match': {'value': 1}}]},"
       " 'points': [{'id': 1, 'vector': {'a': [5,5]}}, {'id': 2, 'vector': {'a': [5,5]}}]}");
    json_eq(cJSON_GetObjectItem(ok(GET, "/collections/n/points/1", NULL), "vector"),
            "{'a': [5,5], 'b': [2,2,2]}");
    json_eq(cJSON_GetObjectItem(ok(GET, "/collections/n/points/2", NULL), "vector"),
            "{'a': [0,1], 'b': [1,1,1]}");
    update_result(ok(POST, "/collections/n/points/vectors/delete?wait=true",
                     "{'vector': ['b'], 'points': [1]}"), "completed");
    json_eq(cJSON_GetObjectItem(ok(GET, "/collections/n/points/1", NULL), "vector"), "{'a': [5,5]}");
    ok(POST, "/collections/n/points/vectors/delete?wait=true",
       "{'vector': ['a'], 'filter': {'must': [{'key': 'k', 'match': {'value': 2}}]}}");
    json_eq(cJSON_GetObjectItem(ok(GET, "/collections/n/points/2", NULL), "vector"), "{'b': [1,1,1]}");
    /* errors */
    fail_with(PUT, "/collections/n/points/vectors", "{'points': [{'id': 99, 'vector': {'a': [1,1]}}]}", 404,
              "No point with id 99 found", NULL);
    fail_with(PUT, "/collections/n/points/vectors",
              "{'update_filter': {'must': [{'key': 'k', 'match': {'value': 1}}]},"
              " 'points': [{'id': 99, 'vector': {'a': [1,1]}}]}", 404, "99", NULL);
    fail_with(POST, "/collections/n/points/vectors/delete", "{'vector': ['a'], 'points': [99]}", 404, "99",
              NULL);
    fail_with(PUT, "/collections/n/points/vectors", "{'points': [{'id': 1, 'vector': {'a': [1,1,1]}}]}", 400,
              "dimension", NULL);
    fail_with(PUT, "/collections/n/points/vectors", "{'points': [{'id': 1, 'vector': {'q': [1,1]}}]}", 400,
              "q", NULL);
    fail_with(PUT, "/collections/n/points/vectors", "{'points': []}", 400, "points", NULL);
    fail_with(PUT, "/collections/n/points/vectors", "{'points': [{'id': 1}]}", 400, "points[0]", "vector");
    fail_with(PUT, "/collections/n/points/vectors", "{'points': [[1, 2]]}", 400, "points[0]", NULL);
    fail_with(PUT, "/collections/n/points/vectors", "{'points': [7]}", 400, "points[0]", NULL);
    fail_with(POST, "/collections/n/points/batch", "{'operations': [{'update_vectors': {'points': [['a']]}}]}",
              400, "operations[0].update_vectors", "points[0]");
    fail_with(PUT, "/collections/n/points/vectors", "{'points': [{'id': 1, 'vector': {'a': [1,1]}, 'p': 1}]}",
              400, "points[0]", "\"p\"");
    fail_with(POST, "/collections/n/points/vectors/delete", "{'vector': ['zz'], 'points': [1]}", 400, "zz",
              NULL);
    fail_with(POST, "/collections/n/points/vectors/delete", "{'vector': [], 'points': [1]}", 400, "vector",
              NULL);
    fail_with(POST, "/collections/n/points/vectors/delete", "{'points': [1]}", 400, "vector", NULL);
}

/* ---- batch ------------------------------------------------------------------------- */

static void test_api_points_batch(void **state)
{
    (void)state;
    cJSON *r = ok(POST, "/collections/c/points/batch?wait=true",
                  "{'operations': ["
                  "{'upsert': {'points': [{'id': 1, 'vector': [1,0,0,0]}, {'id': 2, 'vector': [0,1,0,0]}]}},"
                  "{'upsert': {'batch': {'ids': [3], 'vectors': [[0,0,1,0]]}}},"
                  "{'set_payload': {'payload': {'a': 1}, 'points': [1, 3]}},"
                  "{'overwrite_payload': {'payload': {'b': 2}, 'points': [2]}},"
                  "{'delete_payload': {'keys': ['a'], 'points': [3]}},"
                  "{'clear_payload': {'points': [2]}},"
                  "{'update_vectors': {'points': [{'id': 3, 'vector': [0,0,0,1]}]}},"
                  "{'delete_vectors': {'vector': [''], 'points': [2]}},"
                  "{'delete': {'points': [2]}}]}");
    assert_int_equal(cJSON_GetArraySize(r), 9);
    double prev = -1;
    cJSON *it;
    cJSON_ArrayForEach(it, r) {
        update_result(it, "completed");
        assert_true(cJSON_GetObjectItem(it, "operation_id")->valuedouble > prev);
        prev = cJSON_GetObjectItem(it, "operation_id")->valuedouble;
    }
    json_eq(ok(POST, "/collections/c/points", "{'ids': [1, 2, 3], 'with_vector': true}"),
            "[{'id': 1, 'payload': {'a': 1}, 'vector': [1,0,0,0]},"
            " {'id': 3, 'payload': {}, 'vector': [0,0,0,1]}]");
    json_eq(ok(POST, "/collections/c/points/batch", "{'operations': []}"), "[]");
}

static void test_api_points_batch_bad_operation_rejects_all(void **state)
{
    (void)state;
    seed();
    const char *bad[] = {
        /* parse error in the second operation */
        "{'operations': [{'delete': {'points': [1]}}, {'set_payload': {'points': [2]}}]}",
        /* validation error (dimension) in the second */
        "{'operations': [{'delete': {'points': [1]}},"
        " {'upsert': {'points': [{'id': 9, 'vector': [1,0,0]}]}}]}",
        /* unknown operation */
        "{'operations': [{'delete': {'points': [1]}}, {'explode': {}}]}",
        /* two operations in one object */
        "{'operations': [{'delete': {'points': [1]}, 'clear_payload': {'points': [2]}}]}",
        /* bad filter */
        "{'operations': [{'delete': {'points': [1]}},"
        " {'delete': {'filter': {'must': [{'key': 'n', 'range': {'lt': 'x'}}]}}}]}",
        /* a point that does not exist */
        "{'operations': [{'delete': {'points': [1]}},"
        " {'set_payload': {'payload': {'x': 1}, 'points': [99]}}]}",
    };
    const char *frag[] = { "operations[1].set_payload", "operations[1].upsert", "explode",
                           "operations[0]", "operations[1].delete", "99" };
    int want[] = { 400, 400, 400, 400, 400, 404 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fail_with(POST, "/collections/c/points/batch?wait=true", bad[i], want[i], frag[i], NULL);
        assert_true(count_of("c", "{}") == 6);
        json_eq(payload_of("1"), "{'color': 'red', 'n': 1}");
    }
    /* an operation may rely on the points an earlier one upserts */
    ok(POST, "/collections/c/points/batch?wait=true",
       "{'operations': [{'upsert': {'points': [{'id': 50, 'vector': [1,0,0,0]}]}},"
       " {'set_payload': {'payload': {'x': 50}, 'points': [50]}}]}");
    json_eq(payload_of("50"), "{'x': 50}");
    fail_with(POST, "/collections/c/points/batch", "{'operations': {}}", 400, "operations", NULL);
    fail_with(POST, "/collections/c/points/batch", "{'ops': []}", 400, "ops", NULL);
    fail_with(POST, "/collections/c/points/batch", "{'operations': [5]}", 400, "operations[0]", NULL);
    fail_with(POST, "/collections/nope/points/batch", "{'operations': []}", 404, "nope", NULL);
}

/* ---- scroll and count -------------------------------------------------------------- */

static void test_api_scroll(void **state)
{
    (void)state;
    seed();
    cJSON *r = ok(POST, "/collections/c/points/scroll", "{'limit': 2}");
    KEYS_WITHIN(r, "points", "next_page_offset");
    KEYS_REQUIRED(r, "points", "next_page_offset");
    record_list(cJSON_GetObjectItem(r, "points"));
    json_eq(r, "{'points': [{'id': 1, 'payload': {'color': 'red', 'n': 1}, 'vector': null},"
               "            {'id': 2, 'payload': {'color': 'blue', 'n': 2}, 'vector': null}],"
               " 'next_page_offset': 3}");
    r = ok(POST, "/collections/c/points/scroll", "{'limit': 2, 'offset': 3, 'with_payload': false,"
                                                 " 'with_vector': true}");
    json_eq(r, "{'points': [{'id': 3, 'payload': null, 'vector': [0.5,0.5,0,0]},"
               "            {'id': 4, 'payload': null, 'vector': [0,0,1,0]}],"
               " 'next_page_offset': 5}");
    r = ok(POST, "/collections/c/points/scroll", "{'offset': 5}");
    ids_eq(cJSON_GetObjectItem(r, "points"), "[5, 6]");
    json_eq(cJSON_GetObjectItem(r, "next_page_offset"), "null");
    /* no body: defaults (limit 10, payload, no vector) */
    r = ok(POST, "/collections/c/points/scroll", NULL);
    ids_eq(cJSON_GetObjectItem(r, "points"), "[1, 2, 3, 4, 5, 6]");
    json_eq(cJSON_GetObjectItem(r, "next_page_offset"), "null");
    /* filter, paged */
    r = ok(POST, "/collections/c/points/scroll",
           "{'limit': 1, 'filter': {'should': [{'key': 'color', 'match': {'value': 'red'}},"
           "                                    {'has_id': [6]}]}, 'with_payload': ['n']}");
    json_eq(r, "{'points': [{'id': 1, 'payload': {'n': 1}, 'vector': null}], 'next_page_offset': 3}");
    r = ok(POST, "/collections/c/points/scroll",
           "{'limit': 5, 'offset': 2, 'filter': {'should': [{'key': 'color', 'match': {'value': 'red'}},"
           "                                    {'has_id': [6]}]}}");
    ids_eq(cJSON_GetObjectItem(r, "points"), "[3, 6]");
    /* order_by: a key, or {key, direction, start_from}; order_value is returned */
    r = ok(POST, "/collections/c/points/scroll", "{'limit': 2, 'order_by': 'n', 'with_payload': false}");
    json_eq(r, "{'points': [{'id': 1, 'payload': null, 'vector': null, 'order_value': 1},"
               "            {'id': 2, 'payload': null, 'vector': null, 'order_value': 2}],"
               " 'next_page_offset': null}");
    r = ok(POST, "/collections/c/points/scroll", "{'limit': 3, 'order_by': {'key': 'n', 'direction': 'desc'}}");
    ids_eq(cJSON_GetObjectItem(r, "points"), "[6, 5, 4]");
    record_list(cJSON_GetObjectItem(r, "points"));
    r = ok(POST, "/collections/c/points/scroll",
           "{'limit': 3, 'order_by': {'key': 'n', 'direction': 'desc', 'start_from': 4}}");
    ids_eq(cJSON_GetObjectItem(r, "points"), "[4, 3, 2]");
    r = ok(POST, "/collections/c/points/scroll",
           "{'order_by': {'key': 'n', 'start_from': 4.5}, 'filter': {'must_not': [{'has_id': [6]}]}}");
    ids_eq(cJSON_GetObjectItem(r, "points"), "[5]");
    /* errors */
    fail_with(POST, "/collections/c/points/scroll", "{'limit': 0}", 400, "limit", NULL);
    fail_with(POST, "/collections/c/points/scroll", "{'limit': 'ten'}", 400, "limit", NULL);
    fail_with(POST, "/collections/c/points/scroll", "{'limit': 2.5}", 400, "limit", NULL);
    fail_with(POST, "/collections/c/points/scroll", "{'offset': 'x'}", 400, "offset", NULL);
    fail_with(POST, "/collections/c/points/scroll", "{'order_by': {'key': 'n', 'direction': 'up'}}", 400,
              "order_by.direction", NULL);
    fail_with(POST, "/collections/c/points/scroll", "{'order_by': {'direction': 'asc'}}", 400,
              "order_by.key", NULL);
    fail_with(POST, "/collections/c/points/scroll", "{'order_by': {'key': 'n', 'start_from': true}}", 400,
              "order_by.start_from", NULL);
    fail_with(POST, "/collections/c/points/scroll", "{'order_by': {'key': 'n', 'x': 1}}", 400, "order_by",
              "\"x\"");
    fail_with(POST, "/collections/c/points/scroll", "{'filter': {'must': {'key': 'n'}}}", 400, "filter",
              NULL);
    fail_with(POST, "/collections/c/points/scroll", "{'filters': {}}", 400, "filters", NULL);
    fail_with(POST, "/collections/c/points/scroll", "[1]", 400, "object", NULL);
    fail_with(POST, "/collections/nope/points/scroll", "{}", 404, "nope", NULL);
}

static void test_api_count(void **state)
{
    (void)state;
    assert_true(count_of("c", NULL) == 0);
    seed();
    json_eq(ok(POST, "/collections/c/points/count", "{}"), "{'count': 6}");
    json_eq(ok(POST, "/collections/c/points/count", NULL), "{'count': 6}");
    json_eq(ok(POST, "/collections/c/points/count",
               "{'exact': true, 'filter': {'must': [{'key': 'color', 'match': {'value': 'blue'}}]}}"),
            "{'count': 2}");
    json_eq(ok(POST, "/collections/c/points/count",
               "{'exact': false, 'filter': {'must': [{'key': 'n', 'range': {'gt': 2, 'lte': 5}}]}}"),
            "{'count': 3}");
    json_eq(ok(POST, "/collections/c/points/count", "{'filter': {'must': [{'is_empty': {'key': 'color'}}]}}"),
            "{'count': 1}");
    fail_with(POST, "/collections/c/points/count", "{'exact': true, 'limit': 3}", 400, "limit", NULL);
    fail_with(POST, "/collections/c/points/count", "{'exact': 'yes'}", 400, "exact", NULL);
    fail_with(POST, "/collections/c/points/count", "{'filter': {'must': [{'key': 'n', 'match': {}}]}}", 400,
              "filter.must[0]", NULL);
    fail_with(POST, "/collections/nope/points/count", "{}", 404, "nope", NULL);
}

/* ---- search (legacy) and query ------------------------------------------------------ */

static void test_api_search_legacy(void **state)
{
    (void)state;
    seed();
    cJSON *r = ok(POST, "/collections/c/points/search", "{'vector': [1,0,0,0], 'limit': 3}");
    scored_list(r);
    ids_eq(r, "[1, 5, 3]");
    json_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 0), "score"), "1");
    json_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 1), "score"), "0.9");
    /* by default neither payload nor vector */
    json_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 0), "payload"), "null");
    json_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 0), "vector"), "null");
    r = ok(POST, "/collections/c/points/search",
           "{'vector': [1,0,0,0], 'limit': 10, 'offset': 1, 'score_threshold': 0.4,"
           " 'with_payload': true, 'with_vector': true, 'params': {'hnsw_ef': 64, 'exact': true}}");
    ids_eq(r, "[5, 3]");
    json_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 1), "payload"), "{'color': 'red', 'n': 3}");
    json_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 1), "vector"), "[0.5,0.5,0,0]");
    r = ok(POST, "/collections/c/points/search",
           "{'vector': [1,0,0,0], 'limit': 5, 'filter': {'must': [{'key': 'color', 'match': {'value': 'blue'}}]}}");
    ids_eq(r, "[2, 6]");
    /* named vector form */
    ok(PUT, "/collections/n", "{'vectors': {'a': {'size': 2, 'distance': 'Euclid'}}}");
    ok(PUT, "/collections/n/points?wait=true",
       "{'points': [{'id': 1, 'vector': {'a': [0,0]}}, {'id': 2, 'vector': {'a': [3,4]}}]}");
    r = ok(POST, "/collections/n/points/search", "{'vector': {'name': 'a', 'vector': [3,3]}, 'limit': 2}");
    ids_eq(r, "[2, 1]");
    json_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 0), "score"), "1");
    /* batch */
    r = ok(POST, "/collections/c/points/search/batch",
           "{'searches': [{'vector': [0,1,0,0], 'limit': 1}, {'vector': [0,0,0,1], 'limit': 2}]}");
    assert_int_equal(cJSON_GetArraySize(r), 2);
    scored_list(cJSON_GetArrayItem(r, 0));
    ids_eq(cJSON_GetArrayItem(r, 0), "[2]");
    ids_eq(cJSON_GetArrayItem(r, 1), "[6, 5]");
    json_eq(ok(POST, "/collections/c/points/search/batch", "{'searches': []}"), "[]");
    /* errors */
    fail_with(POST, "/collections/c/points/search", "{'vector': [1,0,0,0]}", 400, "limit", NULL);
    fail_with(POST, "/collections/c/points/search", "{'vector': [1,0,0,0], 'limit': 0}", 400, "limit", NULL);
    ids_eq(ok(POST, "/collections/c/points/search", "{'vector': [0,0,0,1], 'limit': 1000000000000}"),
           "[6, 5, 1, 2, 3, 4]");
    fail_with(POST, "/collections/c/points/search", "{'vector': [1,0,0], 'limit': 1}", 400, "dimension", NULL);
    fail_with(POST, "/collections/c/points/search", "{'vector': [1,0,0,'x'], 'limit': 1}", 400, "vector[3]",
              NULL);
    fail_with(POST, "/collections/c/points/search", "{'limit': 1}", 400, "vector", NULL);
    fail_with(POST, "/collections/c/points/search", "{'vector': [1,0,0,0], 'limit': 1, 'with': 1}", 400,
              "with", NULL);
    fail_with(POST, "/collections/c/points/search", "{'vector': [1,0,0,0], 'limit': 1, 'score_threshold': 'x'}",
              400, "score_threshold", NULL);
    fail_with(POST, "/collections/c/points/search", "{'vector': [1,0,0,0], 'limit': 1, 'params': {'ef': 1}}",
              400, "params", "ef");
    fail_with(POST, "/collections/n/points/search", "{'vector': {'name': 'zz', 'vector': [1,1]}, 'limit': 1}",
              400, "zz", NULL);
    fail_with(POST, "/collections/c/points/search/batch", "{'searches': [{'vector': [1,0,0,0], 'limit': 1},"
                                                          " {'vector': [1], 'limit': 1}]}",
              400, "searches[1]", NULL);
    fail_with(POST, "/collections/c/points/search/batch", "{'searches': {}}", 400, "searches", NULL);
    fail_with(POST, "/collections/c/points/search", NULL, 400, "body", NULL);
}

static void test_api_query(void **state)
{
    (void)state;
    seed();
    /* a plain vector */
    cJSON *r = ok(POST, "/collections/c/points/query", "{'query': [1,0,0,0], 'limit': 3}");
    KEYS_WITHIN(r, "points");
    scored_list(cJSON_GetObjectItem(r, "points"));
    ids_eq(cJSON_GetObjectItem(r, "points"), "[1, 5, 3]");
    /* default limit 10 */
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query", "{'query': [1,0,0,0]}"), "points"),
           "[1, 5, 3, 2, 4, 6]");
    /* nearest */
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query",
                                  "{'query': {'nearest': [0,1,0,0]}, 'limit': 2}"), "points"), "[2, 3]");
    /* by id: the point itself is not a result */
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query", "{'query': 1, 'limit': 3}"), "points"),
           "[5, 3, 2]");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query",
                                  "{'query': {'nearest': 1}, 'limit': 2, 'offset': 1}"), "points"), "[3, 2]");
    fail_with(POST, "/collections/c/points/query", "{'query': 99}", 404, "99", NULL);
    /* offset, score_threshold, filter */
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query",
                                  "{'query': [1,0,0,0], 'limit': 2, 'offset': 1}"), "points"), "[5, 3]");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query",
                                  "{'query': [1,0,0,0], 'score_threshold': 0.6}"), "points"), "[1, 5]");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query",
                                  "{'query': [1,0,0,0], 'filter': {'must_not': [{'key': 'color',"
                                  " 'match': {'value': 'red'}}]}}"), "points"), "[5, 2, 4, 6]");
    /* with_payload / with_vector */
    r = ok(POST, "/collections/c/points/query",
           "{'query': [0,0,1,0], 'limit': 1, 'with_payload': ['color'], 'with_vector': true}");
    cJSON *p = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "points"), 0);
    scored_shape(p);
    json_eq(cJSON_GetObjectItem(p, "payload"), "{'color': 'green'}");
    json_eq(cJSON_GetObjectItem(p, "vector"), "[0,0,1,0]");
    json_eq(cJSON_GetObjectItem(p, "score"), "1");
    r = ok(POST, "/collections/c/points/query", "{'query': [0,0,1,0], 'limit': 1}");
    p = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "points"), 0);
    json_eq(cJSON_GetObjectItem(p, "payload"), "null");
    json_eq(cJSON_GetObjectItem(p, "vector"), "null");
    /* no query: id order */
    r = ok(POST, "/collections/c/points/query", "{'limit': 3}");
    scored_list(cJSON_GetObjectItem(r, "points"));
    ids_eq(cJSON_GetObjectItem(r, "points"), "[1, 2, 3]");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query",
                                  "{'limit': 2, 'offset': 3, 'filter': {'must_not': [{'has_id': [5]}]}}"),
                               "points"), "[4, 6]");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query", NULL), "points"), "[1, 2, 3, 4, 5, 6]");
    /* using */
    ok(PUT, "/collections/n", "{'vectors': {'a': {'size': 2, 'distance': 'Dot'},"
                              "             'b': {'size': 2, 'distance': 'Dot'}}}");
    ok(PUT, "/collections/n/points?wait=true",
       "{'points': [{'id': 1, 'vector': {'a': [1,0], 'b': [0,1]}}, {'id': 2, 'vector': {'a': [0,1], 'b': [1,0]}}]}");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/n/points/query", "{'query': [1,0], 'using': 'a'}"),
                               "points"), "[1, 2]");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/n/points/query", "{'query': [1,0], 'using': 'b'}"),
                               "points"), "[2, 1]");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/n/points/query", "{'query': 1, 'using': 'b', 'limit': 1}"),
                               "points"), "[2]");
    fail_with(POST, "/collections/n/points/query", "{'query': [1,0]}", 400, "not configured", NULL);
    fail_with(POST, "/collections/n/points/query", "{'query': [1,0], 'using': 'zz'}", 400, "zz", NULL);
    fail_with(POST, "/collections/n/points/query", "{'query': [1,0], 'using': 5}", 400, "using", NULL);
    /* other errors */
    fail_with(POST, "/collections/c/points/query", "{'query': [1,0]}", 400, "dimension", NULL);
    fail_with(POST, "/collections/c/points/query", "{'query': [1,0,0,'x']}", 400, "query[3]", NULL);
    fail_with(POST, "/collections/c/points/query", "{'query': 'nope'}", 400, "query", "nope");
    fail_with(POST, "/collections/c/points/query", "{'query': {'nearest': -3}}", 400, "query", NULL);
    fail_with(POST, "/collections/c/points/query", "{'query': true}", 400, "query", NULL);
    fail_with(POST, "/collections/c/points/query", "{'query': [1,0,0,0], 'top': 3}", 400, "top", NULL);
    fail_with(POST, "/collections/c/points/query", "{'query': [1,0,0,0], 'limit': -1}", 400, "limit", NULL);
    fail_with(POST, "/collections/c/points/query", "{'query': [1,0,0,0], 'limit': 0}", 400, "limit", NULL);
    /* a huge limit or offset is no huge allocation */
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query",
                                  "{'query': [1,0,0,0], 'limit': 1000000000000, 'offset': 1000000000000}"),
                               "points"), "[]");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query",
                                  "{'query': 1, 'limit': 1000000000000}"), "points"), "[5, 3, 2, 4, 6]");
    ids_eq(cJSON_GetObjectItem(ok(POST, "/collections/c/points/query", "{'limit': 1000000000000, 'offset': 4}"),
                               "points"), "[5, 6]");
    fail_with(POST, "/collections/c/points/query", "{'query': [1,0,0,0], 'offset': 'x'}", 400, "offset", NULL);
    fail_with(POST, "/collections/c/points/query", "{'filter': {'must': [{'key': 'n', 'range': []}]}}", 400,
              "filter.must[0]", NULL);
    fail_with(POST, "/collections/c/points/query", "{'with_payload': 7}", 400, "with_payload", NULL);
    fail_with(POST, "/collections/nope/points/query", "{}", 404, "nope", NULL);
}

static void test_api_query_batch(void **state)
{
    (void)state;
    seed();
    cJSON *r = ok(POST, "/collections/c/points/query/batch",
                  "{'searches': [{'query': [1,0,0,0], 'limit': 2}, {'query': 4, 'limit': 1},"
                  "              {'limit': 1, 'with_payload': true}]}");
    assert_int_equal(cJSON_GetArraySize(r), 3);
    cJSON *it;
    cJSON_ArrayForEach(it, r) {
        KEYS_WITHIN(it, "points");
        scored_list(cJSON_GetObjectItem(it, "points"));
    }
    ids_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 0), "points"), "[1, 5]");
    ids_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 1), "points"), "[1]");
    json_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetArrayItem(r, 2), "points"), 0),
                                "payload"), "{'color': 'red', 'n': 1}");
    json_eq(ok(POST, "/collections/c/points/query/batch", "{'searches': []}"), "[]");
    fail_with(POST, "/collections/c/points/query/batch", "{'searches': [{}, {'query': [1]}]}", 400,
              "searches[1]", NULL);
    fail_with(POST, "/collections/c/points/query/batch", "{'searches': [{}, {'prefetch': {}}]}", 501,
              "searches[1]", "prefetch");
    fail_with(POST, "/collections/c/points/query/batch", "{'searches': [], 'x': 1}", 400, "\"x\"", NULL);
    fail_with(POST, "/collections/c/points/query/batch", "{}", 400, "searches", NULL);
    fail_with(POST, "/collections/c/points/query/batch", NULL, 400, "body", NULL);
}

/* ---- error statuses ------------------------------------------------------------- */

static void test_api_error_400_malformed_and_types(void **state)
{
    (void)state;
    const char *malformed[] = { "{", "{'points': [}", "not json", "{'a': 1} trailing", "{'a': 1}{'b': 2}",
                                "[1, 2,]", "   " };
    for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
        fail_with(PUT, "/collections/c/points", malformed[i], 400, "JSON", NULL);
    /* trailing white space is fine */
    update_result(ok(PUT, "/collections/c/points?wait=true",
                     "{'points': [{'id': 1, 'vector': [1,0,0,0]}]} \n\t "), "completed");
    /* unknown fields, everywhere */
    fail_with(PUT, "/collections/c/points", "{'points': [], 'pints': 1}", 400, "unknown field \"pints\"", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': [1,0,0,0], 'payloads': {}}]}",
              400, "points[0]", "payloads");
    fail_with(PUT, "/collections/c/points", "{'batch': {'ids': [], 'vectors': [], 'extra': 1}}", 400,
              "batch", "extra");
    /* wrong types */
    fail_with(PUT, "/collections/c/points", "{'points': {}}", 400, "points", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': [5]}", 400, "points[0]", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': 'v'}]}", 400, "points[0].vector",
              NULL);
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': [1,0,0,'a']}]}", 400,
              "points[0].vector[3]", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': [1,0,0,0], 'payload': [1]}]}", 400,
              "points[0].payload", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': [{'vector': [1,0,0,0]}]}", 400, "points[0]", "id");
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': 1}]}", 400, "points[0]", "vector");
    fail_with(PUT, "/collections/c/points", "{}", 400, "points", "batch");
    fail_with(PUT, "/collections/c/points", "[]", 400, "object", NULL);
    fail_with(PUT, "/collections/c/points", NULL, 400, "body", NULL);
    /* wrong dimension */
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': [1,0,0,0]}, {'id': 2, 'vector': [1]}]}",
              400, "points[1]", "dimension");
    fail_with(PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': [1e39,0,0,0]}]}", 400, "points[0]",
              NULL);
    /* nothing of the rejected writes was applied */
    assert_true(count_of("c", "{}") == 1);
    /* bad filters name the path */
    fail_with(POST, "/collections/c/points/scroll", "{'filter': {'must': [{'key': 'n', 'range': {'gt': 'x'}}]}}",
              400, "filter.must[0].range", NULL);
    fail_with(POST, "/collections/c/points/count", "{'filter': {'mist': []}}", 400, "mist", NULL);
    fail_with(POST, "/collections/c/points/delete", "{'filter': {'must': [{'has_id': ['x']}]}}", 400,
              "has_id", NULL);
    /* the message carries Qdrant's prefix */
    const char *m = err_of(PUT, "/collections/c/points", "{'points': 1}", 400);
    assert_int_equal(strncmp(m, "Wrong input: ", 13), 0);
}

static void test_api_error_404(void **state)
{
    (void)state;
    const struct { int m; const char *path; const char *body; } r[] = {
        { GET, "/collections/nope", NULL },
        { GET, "/collections/nope/aliases", NULL },
        { PUT, "/collections/nope/points", "{'points': []}" },
        { POST, "/collections/nope/points", "{'ids': []}" },
        { GET, "/collections/nope/points/1", NULL },
        { POST, "/collections/nope/points/delete", "{'points': [1]}" },
        { POST, "/collections/nope/points/payload", "{'payload': {}, 'points': [1]}" },
        { PUT, "/collections/nope/points/payload", "{'payload': {}, 'points': [1]}" },
        { POST, "/collections/nope/points/payload/delete", "{'keys': ['a'], 'points': [1]}" },
        { POST, "/collections/nope/points/payload/clear", "{'points': [1]}" },
        { PUT, "/collections/nope/points/vectors", "{'points': [{'id': 1, 'vector': [1]}]}" },
        { POST, "/collections/nope/points/vectors/delete", "{'vector': ['a'], 'points': [1]}" },
        { POST, "/collections/nope/points/batch", "{'operations': []}" },
        { POST, "/collections/nope/points/scroll", "{}" },
        { POST, "/collections/nope/points/count", "{}" },
        { POST, "/collections/nope/points/search", "{'vector': [1], 'limit': 1}" },
        { POST, "/collections/nope/points/search/batch", "{'searches': []}" },
        { POST, "/collections/nope/points/query", "{}" },
        { POST, "/collections/nope/points/query/batch", "{'searches': []}" },
        { PATCH, "/collections/nope", "{}" },
        { PUT, "/collections/nope/index", "{'field_name': 'a', 'field_schema': 'keyword'}" },
        { DEL, "/collections/nope/index/a", NULL },
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
        fail_with(r[i].m, r[i].path, r[i].body, 404, "Not found: Collection `nope` doesn't exist!", NULL);
    seed();
    fail_with(GET, "/collections/c/points/42", NULL, 404, "No point with id 42 found", NULL);
    fail_with(GET, "/nope", NULL, 404, "Not found", NULL);
    fail_with(GET, "/collections/c/points/1/extra", NULL, 404, "Not found", NULL);
    fail_with(POST, "/collections/c/pointz/scroll", "{}", 404, "Not found", NULL);
    fail_with(GET, "/collections//points", NULL, 404, "Not found", NULL);
    fail_with(GET, "", NULL, 404, "Not found", NULL);
}

static void test_api_error_405(void **state)
{
    (void)state;
    const struct { int m; const char *path; } r[] = {
        { POST, "/" }, { DEL, "/collections" }, { POST, "/collections" }, { POST, "/collections/c" },
        { DEL, "/collections/c/points" },
        { PUT, "/collections/c/points/scroll" }, { GET, "/collections/c/points/query/batch" },
        { POST, "/collections/c/exists" }, { DEL, "/aliases" }, { PUT, "/telemetry" },
        { PATCH, "/collections/c/points/payload" }, { API_OTHER, "/collections/c" },
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        cJSON *doc = call(r[i].m, r[i].path, "{}", 405);
        (void)doc;
    }
}

static void test_api_error_409(void **state)
{
    (void)state;
    fail_with(PUT, "/collections/c", "{'vectors': {'size': 2, 'distance': 'Dot'}}", 409,
              "Wrong input: Collection `c` already exists!", NULL);
    ok(POST, "/collections/aliases", "{'actions': [{'create_alias': {'collection_name': 'c', 'alias_name': 'a'}}]}");
    fail_with(PUT, "/collections/a", "{'vectors': {'size': 2, 'distance': 'Dot'}}", 409, "`a` already exists",
              NULL);
}

static void test_api_auth_403(void **state)
{
    fx_t *f = *state;
    api_t *open_api = f->api, *keyed;
    api_opts_t ao = { .api_key = "secret", .read_only_api_key = "reader", .version = "t" };
    err_t e;

    assert_int_equal(api_new(f->cat, &ao, &keyed, &e), ERR_OK);
    api_set_ready(keyed, true);
    f->api = keyed;
    /* missing and wrong keys */
    f->key = NULL;
    fail_with(GET, "/collections", NULL, 403, "API key", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': []}", 403, "API key", NULL);
    fail_with(GET, "/nope", NULL, 403, "API key", NULL);
    call(GET, "/metrics", NULL, 403);
    f->key = "wrong";
    fail_with(GET, "/collections", NULL, 403, "API key", NULL);
    f->key = "";
    fail_with(GET, "/collections", NULL, 403, "API key", NULL);
    /* health checks need no key */
    f->key = NULL;
    call(GET, "/healthz", NULL, 200);
    call(GET, "/livez", NULL, 200);
    call(GET, "/readyz", NULL, 200);
    /* the full key does everything */
    f->key = "secret";
    json_eq(ok(GET, "/collections", NULL), "{'collections': [{'name': 'c'}]}");
    update_result(ok(PUT, "/collections/c/points?wait=true", "{'points': [{'id': 1, 'vector': [1,0,0,0]}]}"),
                  "completed");
    json_eq(ok(PUT, "/collections/w", "{'vectors': {'size': 2, 'distance': 'Dot'}}"), "true");
    call(GET, "/metrics", NULL, 200);
    /* the read-only key reads ... */
    f->key = "reader";
    json_eq(ok(GET, "/collections", NULL), "{'collections': [{'name': 'c'}, {'name': 'w'}]}");
    ok(GET, "/", NULL);
    ok(GET, "/collections/c", NULL);
    ok(GET, "/collections/c/exists", NULL);
    ok(GET, "/aliases", NULL);
    ok(GET, "/collections/c/aliases", NULL);
    ok(GET, "/telemetry", NULL);
    ok(GET, "/collections/c/points/1", NULL);
    ok(POST, "/collections/c/points", "{'ids': [1]}");
    ok(POST, "/collections/c/points/scroll", "{}");
    ok(POST, "/collections/c/points/count", "{}");
    ok(POST, "/collections/c/points/search", "{'vector': [1,0,0,0], 'limit': 1}");
    ok(POST, "/collections/c/points/search/batch", "{'searches': []}");
    ok(POST, "/collections/c/points/query", "{}");
    ok(POST, "/collections/c/points/query/batch", "{'searches': []}");
    call(GET, "/metrics", NULL, 200);
    /* ... and writes nothing */
    const struct { int m; const char *path; const char *body; } w[] = {
        { PUT, "/collections/x", "{'vectors': {'size': 2, 'distance': 'Dot'}}" },
        { PATCH, "/collections/c", "{}" },
        { DEL, "/collections/w", NULL },
        { POST, "/collections/aliases", "{'actions': []}" },
        { PUT, "/collections/c/points", "{'points': [{'id': 2, 'vector': [1,0,0,0]}]}" },
        { POST, "/collections/c/points/delete", "{'points': [1]}" },
        { POST, "/collections/c/points/payload", "{'payload': {}, 'points': [1]}" },
        { PUT, "/collections/c/points/payload", "{'payload': {}, 'points': [1]}" },
        { POST, "/collections/c/points/payload/delete", "{'keys': ['a'], 'points': [1]}" },
        { POST, "/collections/c/points/payload/clear", "{'points': [1]}" },
        { PUT, "/collections/c/points/vectors", "{'points': [{'id': 1, 'vector': [1,0,0,0]}]}" },
        { POST, "/collections/c/points/vectors/delete", "{'vector': [''], 'points': [1]}" },
        { POST, "/collections/c/points/batch", "{'operations': []}" },
        { PUT, "/collections/c/index", "{'field_name': 'a', 'field_schema': 'keyword'}" },
        { DEL, "/collections/c/index/a", NULL },
    };
    for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
        fail_with(w[i].m, w[i].path, w[i].body, 403, "read-only", NULL);
    assert_true(count_of("c", "{}") == 1);
    json_eq(ok(GET, "/collections/w/exists", NULL), "{'exists': true}");
    f->key = NULL;
    f->api = open_api;
    api_free(keyed);

    /* only a read-only key configured: it still cannot write */
    api_opts_t ro = { .read_only_api_key = "reader" };
    assert_int_equal(api_new(f->cat, &ro, &keyed, &e), ERR_OK);
    api_set_ready(keyed, true);
    f->api = keyed;
    fail_with(GET, "/collections", NULL, 403, "API key", NULL);
    f->key = "reader";
    ok(GET, "/collections", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': []}", 403, "read-only", NULL);
    f->key = NULL;
    f->api = open_api;
    api_free(keyed);
}

static void test_api_unimplemented_501(void **state)
{
    (void)state;
    const struct { int m; const char *path; } r[] = {
        { POST, "/collections/c/points/search/groups" },
        { POST, "/collections/c/points/search/matrix/pairs" },
        { POST, "/collections/c/points/search/matrix/offsets" },
        { POST, "/collections/c/points/recommend" },
        { POST, "/collections/c/points/recommend/batch" },
        { POST, "/collections/c/points/recommend/groups" },
        { POST, "/collections/c/points/discover" },
        { POST, "/collections/c/points/discover/batch" },
        { POST, "/collections/c/facet" },
        { PUT, "/collections/c/vectors/extra" },
        { DEL, "/collections/c/vectors/extra" },
        { GET, "/collections/c/shards" },
        { PUT, "/collections/c/shards" },
        { POST, "/collections/c/shards/delete" },
        { GET, "/collections/c/cluster" },
        { POST, "/collections/c/cluster" },
        { GET, "/collections/c/optimizations" },
        { GET, "/collections/c/snapshots" },
        { POST, "/collections/c/snapshots" },
        { POST, "/collections/c/snapshots/upload" },
        { PUT, "/collections/c/snapshots/recover" },
        { GET, "/collections/c/snapshots/s1" },
        { DEL, "/collections/c/snapshots/s1" },
        { GET, "/collections/c/shards/0/snapshot" },
        { GET, "/collections/c/shards/0/snapshots" },
        { POST, "/collections/c/shards/0/snapshots" },
        { POST, "/collections/c/shards/0/snapshots/upload" },
        { PUT, "/collections/c/shards/0/snapshots/recover" },
        { GET, "/collections/c/shards/0/snapshots/s1" },
        { DEL, "/collections/c/shards/0/snapshots/s1" },
        { GET, "/snapshots" },
        { POST, "/snapshots" },
        { GET, "/snapshots/s1" },
        { DEL, "/snapshots/s1" },
        { GET, "/cluster" },
        { GET, "/cluster/telemetry" },
        { POST, "/cluster/recover" },
        { DEL, "/cluster/peer/1" },
        { GET, "/issues" },
        { DEL, "/issues" },
        { GET, "/quotas" },
        { PUT, "/quotas" },
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
        fail_with(r[i].m, r[i].path, "{}", 501, r[i].path, "not implemented");
    /* unsupported features inside implemented routes name the feature */
    const struct { int m; const char *path; const char *body; const char *what; } f[] = {
        { POST, "/collections/c/points/query", "{'prefetch': [{'query': [1,0,0,0]}]}", "prefetch" },
        { POST, "/collections/c/points/query", "{'query': [1,0,0,0], 'lookup_from': {'collection': 'd'}}",
          "lookup_from" },
        { POST, "/collections/c/points/query", "{'query': {'indices': [1], 'values': [1.0]}}", "sparse" },
        { POST, "/collections/c/points/query", "{'query': {'nearest': {'indices': [1], 'values': [1.0]}}}",
          "sparse" },
        { POST, "/collections/c/points/query", "{'query': {'image': 'http://x/y.png', 'model': 'clip'}}",
          "inference" },
        { POST, "/collections/c/points/query", "{'query': {'object': {}, 'model': 'm'}}", "inference" },
        { POST, "/collections/c/points/query", "{'query': {'nearest': {'image': 'x.png', 'model': 'clip'}}}",
          "inference" },
        { POST, "/collections/c/points/query", "{'query': [[1,0,0,0],[0,1,0,0]]}", "multivector" },
        { POST, "/collections/c/points/query", "{'query': {'nearest': [1,0,0,0], 'mmr': {'diversity': 0.5}}}",
          "mmr" },
        { POST, "/collections/c/points/query", "{'query': {'recommend': {'positive': [1]}}}", "recommend" },
        { POST, "/collections/c/points/query", "{'query': {'order_by': 'n'}}", "order_by" },
        { POST, "/collections/c/points/query", "{'query': {'sample': 'random'}}", "sample" },
        { POST, "/collections/c/points/query", "{'query': [1,0,0,0], 'shard_key': 'a'}", "shard_key" },
        { POST, "/collections/c/points/search", "{'vector': {'name': 's', 'vector': {'indices': [1], 'values': [1]}},"
                                                " 'limit': 1}", "sparse" },
        { PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': {'s': {'indices': [1], 'values': [1]}}}]}",
          "sparse" },
        { PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': {'image': 'x.png', 'model': 'm'}}]}",
          "inference" },
        { PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': {'v': {'object': {}, 'model': 'm'}}}]}",
          "inference" },
        { PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': [[1,0,0,0]]}]}", "multivector" },
        { PUT, "/collections/c/points", "{'shard_key': 'a', 'points': []}", "shard_key" },
        { PUT, "/collections/x", "{'vectors': {'size': 2, 'distance': 'Dot', 'multivector_config':"
                                 " {'comparator': 'max_sim'}}}", "multivector" },
        { PUT, "/collections/x", "{'sparse_vectors': {'s': {}}}", "sparse" },
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        fail_with(f[i].m, f[i].path, f[i].body, 501, f[i].what, NULL);
    assert_true(count_of("c", "{}") == 0);
}

/* ---- payload indexes ------------------------------------------------------------- */

/* CollectionInfo.payload_schema: field -> PayloadIndexInfo {"data_type":
 * PayloadSchemaType, "params"?: PayloadSchemaParams of that type, "points": uint}. */
static const cJSON *payload_schema_of(const char *coll)
{
    static const char *const types[] = { "keyword", "integer", "float", "geo", "text", "bool",
                                         "datetime", "uuid", NULL };
    char url[256];
    const cJSON *it;

    snprintf(url, sizeof(url), "/collections/%s", coll);
    const cJSON *schema = cJSON_GetObjectItem(ok(GET, url, NULL), "payload_schema");
    assert_true(cJSON_IsObject(schema));
    cJSON_ArrayForEach(it, schema) {
        KEYS_WITHIN(it, "data_type", "params", "points");
        KEYS_REQUIRED(it, "data_type", "points");
        const cJSON *t = cJSON_GetObjectItem(it, "data_type"), *p = cJSON_GetObjectItem(it, "params");
        const char *const *k = types;
        assert_true(cJSON_IsString(t));
        while (*k && strcmp(*k, t->valuestring) != 0)
            k++;
        assert_non_null(*k);
        assert_true(is_uint(cJSON_GetObjectItem(it, "points")));
        if (p != NULL) {
            assert_true(cJSON_IsObject(p));
            assert_true(cJSON_IsString(cJSON_GetObjectItem(p, "type")));
            assert_string_equal(cJSON_GetObjectItem(p, "type")->valuestring, t->valuestring);
        }
    }
    return schema;
}

static void test_api_payload_index_create_delete(void **state)
{
    (void)state;
    seed(); /* color on 1, 2, 3, 4, 6; n on all six */
    json_eq(payload_schema_of("c"), "{}");
    cJSON *a = ok(PUT, "/collections/c/index", "{'field_name': 'color', 'field_schema': 'keyword'}");
    update_result(a, "acknowledged");
    update_result(ok(PUT, "/collections/c/index?wait=true",
                     "{'field_name': 'n', 'field_schema': {'type': 'integer', 'range': true, 'lookup': false}}"),
                  "completed");
    update_result(ok(PUT, "/collections/c/index?wait=true&ordering=strong&timeout=3",
                     "{'field_name': 'title', 'field_schema': {'type': 'text', 'tokenizer': 'word',"
                     " 'lowercase': true, 'stopwords': 'english', 'stemmer': {'type': 'snowball', 'language': 'english'}}}"),
                  "completed");
    json_eq(payload_schema_of("c"),
            "{'color': {'data_type': 'keyword', 'points': 5},"
            " 'n': {'data_type': 'integer', 'params': {'type': 'integer', 'lookup': false, 'range': true,"
            "  'is_principal': null}, 'points': 6},"
            " 'title': {'data_type': 'text', 'params': {'type': 'text', 'tokenizer': 'word', 'lowercase': true,"
            "  'stopwords': 'english', 'stemmer': {'type': 'snowball', 'language': 'english'}}, 'points': 0}}");
    /* counts are live: payload changes and deletes show at the next GET */
    update_result(ok(POST, "/collections/c/points/payload?wait=true",
                     "{'payload': {'title': 'A title'}, 'points': [1, 2]}"), "completed");
    update_result(ok(POST, "/collections/c/points/delete?wait=true", "{'points': [6]}"), "completed");
    const cJSON *s = payload_schema_of("c");
    json_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "color"), "points"), "4");
    json_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "n"), "points"), "5");
    json_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "title"), "points"), "2");
    /* a text index makes match.text a token match, as in Qdrant */
    assert_true(count_of("c", "{'filter': {'must': [{'key': 'title', 'match': {'text': 'itl'}}]}}") == 0);
    assert_true(count_of("c", "{'filter': {'must': [{'key': 'title', 'match': {'text': 'TITLE'}}]}}") == 2);
    /* replace a definition; through an alias */
    ok(POST, "/collections/aliases", "{'actions': [{'create_alias': {'collection_name': 'c', 'alias_name': 'al'}}]}");
    update_result(ok(PUT, "/collections/al/index?wait=true", "{'field_name': 'color', 'field_schema': 'uuid'}"),
                  "completed");
    json_eq(cJSON_GetObjectItem(payload_schema_of("al"), "color"), "{'data_type': 'uuid', 'points': 4}");
    /* delete: ok, and ok again when it is gone (as Qdrant) */
    update_result(ok(DEL, "/collections/c/index/n?wait=true", NULL), "completed");
    update_result(ok(DEL, "/collections/al/index/n", NULL), "acknowledged");
    update_result(ok(DEL, "/collections/c/index/never.defined", NULL), "acknowledged");
    json_eq(payload_schema_of("c"),
            "{'color': {'data_type': 'uuid', 'points': 4},"
            " 'title': {'data_type': 'text', 'params': {'type': 'text', 'tokenizer': 'word', 'lowercase': true,"
            "  'stopwords': 'english', 'stemmer': {'type': 'snowball', 'language': 'english'}}, 'points': 2}}");
    /* key paths with brackets and dots in the URL */
    ok(PUT, "/collections/c/index", "{'field_name': 'meta.tags[]', 'field_schema': 'keyword'}");
    assert_non_null(cJSON_GetObjectItem(payload_schema_of("c"), "meta.tags[]"));
    ok(DEL, "/collections/c/index/meta.tags[]", NULL);
    assert_null(cJSON_GetObjectItem(payload_schema_of("c"), "meta.tags[]"));
    /* the config section is untouched */
    cJSON *cfg = cJSON_GetObjectItem(ok(GET, "/collections/c", NULL), "config");
    KEYS_WITHIN(cfg, "params", "hnsw_config", "optimizer_config", "wal_config", "quantization_config",
                "strict_mode_config", "metadata");
}

static void test_api_payload_index_errors(void **state)
{
    (void)state;
    const struct { const char *body, *frag, *frag2; } bad[] = {
        { "{}", "field_name", NULL },
        { "[]", "JSON object", NULL },
        { "'color'", "JSON object", NULL },
        { "{'field_name': 'color'}", "field_schema", "auto-detect" },
        { "{'field_name': 7, 'field_schema': 'keyword'}", "field_name", NULL },
        { "{'field_name': 'a[', 'field_schema': 'keyword'}", "field_name", "key path" },
        { "{'field_name': 'color', 'field_schema': 'keyword', 'extra': 1}", "unknown field", "\"extra\"" },
        { "{'field_name': 'color', 'field_schema': 'keywords'}", "field_schema", "\"keywords\"" },
        { "{'field_name': 'color', 'field_schema': {'type': 'keywords'}}", "field_schema.type", "\"keywords\"" },
        { "{'field_name': 'color', 'field_schema': {'tokenizer': 'word'}}", "field_schema", "\"type\"" },
        { "{'field_name': 'color', 'field_schema': {'type': 'keyword', 'lowercase': true}}", "field_schema",
          "\"lowercase\"" },
        { "{'field_name': 'color', 'field_schema': {'type': 'keyword', 'memory': 'warm'}}", "field_schema.memory",
          NULL },
        { "{'field_name': 'color', 'field_schema': {'type': 'integer', 'lookup': false, 'range': false}}",
          "lookup", "range" },
        { "{'field_name': 't', 'field_schema': {'type': 'text', 'tokenizer': 'bpe'}}", "field_schema.tokenizer",
          NULL },
        { "{'field_name': 't', 'field_schema': {'type': 'text', 'stopwords': {'languages': ['xx']}}}",
          "field_schema.stopwords.languages[0]", "xx" },
        { "{'field_name': 't', 'field_schema': {'type': 'text', 'stemmer': {'type': 'snowball', 'language': 'klingon'}}}",
          "field_schema.stemmer.language", NULL },
        { "{'field_name': 't', 'field_schema': {'type': 'text', 'max_token_len': 'long'}}",
          "field_schema.max_token_len", NULL },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        fail_with(PUT, "/collections/c/index", bad[i].body, 400, bad[i].frag, bad[i].frag2);
    fail_with(PUT, "/collections/c/index", NULL, 400, "body", NULL);
    fail_with(PUT, "/collections/c/index", "{'field_name': ", 400, "JSON", NULL);
    fail_with(DEL, "/collections/c/index/a..b", NULL, 400, "field_name", NULL);
    json_eq(payload_schema_of("c"), "{}");
    /* a missing collection */
    fail_with(PUT, "/collections/nope/index", "{'field_name': 'a', 'field_schema': 'keyword'}", 404,
              "Not found: Collection `nope` doesn't exist!", NULL);
    fail_with(DEL, "/collections/nope/index/a", NULL, 404, "Not found: Collection `nope` doesn't exist!", NULL);
    /* other methods on these paths */
    call(GET, "/collections/c/index", NULL, 405);
    call(POST, "/collections/c/index", "{}", 405);
    call(DEL, "/collections/c/index", NULL, 405);
    call(PUT, "/collections/c/index/a", "{}", 405);
    call(GET, "/collections/c/index/a", NULL, 405);
}

/* ---- readiness, health, metrics -------------------------------------------------- */

static void test_api_not_ready_503(void **state)
{
    fx_t *f = *state;
    api_t *ready = f->api, *starting;
    err_t e;

    assert_int_equal(api_new(f->cat, NULL, &starting, &e), ERR_OK);
    f->api = starting;
    fail_with(GET, "/collections", NULL, 503, "recovery", NULL);
    fail_with(PUT, "/collections/c/points", "{'points': []}", 503, "recovery", NULL);
    fail_with(POST, "/collections/c/points/query", NULL, 503, "recovery", NULL);
    fail_with(GET, "/", NULL, 503, "recovery", NULL);
    cJSON *t = call(GET, "/readyz", NULL, 503);
    assert_string_equal(t->valuestring, "recovery in progress");
    assert_int_equal(strncmp(f->ctype, "text/plain", 10), 0);
    assert_string_equal(call(GET, "/healthz", NULL, 200)->valuestring, "healthz check passed");
    assert_string_equal(call(GET, "/livez", NULL, 200)->valuestring, "livez check passed");
    assert_non_null(strstr(call(GET, "/metrics", NULL, 200)->valuestring, "veclog_http_requests_total"));
    /* unknown paths are still 404, known paths with a wrong method 405 */
    call(GET, "/nope", NULL, 404);
    call(DEL, "/collections", NULL, 405);
    api_set_ready(starting, true);
    assert_string_equal(call(GET, "/readyz", NULL, 200)->valuestring, "all shards are ready");
    json_eq(ok(GET, "/collections", NULL), "{'collections': [{'name': 'c'}]}");
    api_set_ready(starting, false);
    call(GET, "/readyz", NULL, 503);
    f->api = ready;
    api_free(starting);
}

static void test_api_health_texts(void **state)
{
    (void)state;
    assert_string_equal(call(GET, "/healthz", NULL, 200)->valuestring, "healthz check passed");
    assert_int_equal(strncmp(G->ctype, "text/plain", 10), 0);
    assert_string_equal(call(GET, "/livez", NULL, 200)->valuestring, "livez check passed");
    assert_string_equal(call(GET, "/readyz", NULL, 200)->valuestring, "all shards are ready");
    assert_string_equal(call(HEAD, "/healthz", NULL, 200)->valuestring, "healthz check passed");
    /* only GET and HEAD */
    call(POST, "/healthz", NULL, 404);
}

/* ---- Kafka ingest hooks: status, read-your-writes, metrics --------------- */

typedef struct fake_ingest {
    int64_t applied;          /* every offset below is applied */
    int waits;
} fake_ingest_t;

static cJSON *fake_status(void *ctx)
{
    fake_ingest_t *f = ctx;
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "partitions");
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "topic", "t");
    cJSON_AddNumberToObject(p, "applied", (double)f->applied);
    cJSON_AddItemToArray(arr, p);
    return o;
}

static int fake_wait(void *ctx, const char *topic, int32_t partition, int64_t offset, int timeout_ms,
                     err_t *err)
{
    fake_ingest_t *f = ctx;
    f->waits++;
    assert_string_equal(topic, "my.topic");
    assert_int_equal(partition, 3);
    assert_true(timeout_ms >= 0);
    if (offset < f->applied)
        return ERR_OK;
    return err_set(err, ERR_TIMEOUT, "my.topic[3]@%lld not applied within %d ms", (long long)offset,
                   timeout_ms);
}

static char *fake_metrics(void *ctx)
{
    (void)ctx;
    return strdup("veclog_ingest_batches_total 7\n");
}

static void test_api_ingest_hooks(void **state)
{
    (void)state;
    static fake_ingest_t f = { .applied = 10 };
    fail_with(GET, "/ingest/partitions", NULL, 404, "not running", NULL);
    fail_with(POST, "/collections/c/points/count?wait_offsets=my.topic:3:1", "{}", 400, "wait_offsets",
              "not running");
    api_ingest_hooks_t hooks = { &f, fake_status, fake_wait, fake_metrics };
    api_set_ingest(G->api, &hooks);
    json_eq(ok(GET, "/ingest/partitions", NULL), "{'partitions': [{'topic': 't', 'applied': 10}]}");
    /* applied: the read runs; percent-encoded separators are decoded */
    ok(POST, "/collections/c/points/count?wait_offsets=my.topic%3A3%3A9&wait_timeout_ms=10", "{}");
    ok(POST, "/collections/c/points/scroll?wait_offsets=my.topic:3:1,my.topic:3:2", "{}");
    assert_int_equal(f.waits, 3);
    /* not applied in time: 503, naming the offset */
    fail_with(POST, "/collections/c/points/count?wait_offsets=my.topic:3:10&wait_timeout_ms=5", "{}", 503,
              "wait_offsets", "my.topic[3]@10");
    /* malformed lists */
    static const char *const bad[] = { "x", "t:1", "t:a:1", ":1:2", "t:1:", "t:-1:3",
                                       "my.topic:3:1&wait_timeout_ms=-1",
                                       "my.topic:3:1&wait_timeout_ms=9999999" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char url[256];
        snprintf(url, sizeof(url), "/collections/c/points/count?wait_offsets=%s", bad[i]);
        fail_with(POST, url, "{}", 400, "wait", NULL);
    }
    /* writes ignore it (reads only) */
    ok(PUT, "/collections/c/points?wait_offsets=zzz", "{'points': [{'id': 1, 'vector': [1,0,0,0]}]}");
    /* ingest figures join /metrics */
    cJSON *m = call(GET, "/metrics", NULL, 200);
    assert_non_null(strstr(m->valuestring, "veclog_ingest_batches_total 7"));
}

static void test_api_metrics(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        ok(PUT, "/collections/c/points?wait=true", "{'points': [{'id': 1, 'vector': [1,0,0,0]}]}");
    ok(PUT, "/collections/c/points?wait=true", "{'points': [{'id': 2, 'vector': [1,0,0,0]}]}");
    call(GET, "/collections/nope", NULL, 404);
    call(GET, "/collections/nope", NULL, 404);
    call(GET, "/no/such/path", NULL, 404);
    ok(POST, "/collections/c/points/query", "{}");
    json_eq(ok(PUT, "/collections/d", "{'vectors': {'size': 2, 'distance': 'Dot'}}"), "true");
    cJSON *m = call(GET, "/metrics", NULL, 200);
    const char *t = m->valuestring;
    assert_int_equal(strncmp(G->ctype, "text/plain", 10), 0);
    const char *want[] = {
        "# TYPE veclog_http_requests_total counter\n",
        "veclog_http_requests_total{route=\"/collections/{collection_name}/points\",method=\"PUT\",status=\"200\"} 4\n",
        "veclog_http_requests_total{route=\"/collections/{collection_name}\",method=\"GET\",status=\"404\"} 2\n",
        "veclog_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1\n",
        "veclog_http_requests_total{route=\"/collections/{collection_name}/points/query\",method=\"POST\",status=\"200\"} 1\n",
        "veclog_http_request_duration_seconds_count{route=\"/collections/{collection_name}/points\",method=\"PUT\",status=\"200\"} 4\n",
        "# TYPE veclog_collection_points gauge\n",
        "veclog_collection_points{collection=\"c\"} 2\n",
        "veclog_collection_points{collection=\"d\"} 0\n",
        "veclog_wal_appends_total{collection=\"c\"} ",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(t, want[i]) == NULL)
            fail_msg("/metrics lacks %s\n%s", want[i], t);
    /* the metrics request itself is counted once observed */
    t = call(GET, "/metrics", NULL, 200)->valuestring;
    assert_non_null(strstr(t, "veclog_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"200\"} 1\n"));
}

/* ---- type confusion: no request crashes or answers 500 ------------------------------ */

/* The k-th node (pre-order, root excluded) of doc, with its parent. */
static cJSON *nth_node(cJSON *n, int *k, cJSON **parent)
{
    for (cJSON *c = n->child; c != NULL; c = c->next) {
        if ((*k)-- == 0) {
            *parent = n;
            return c;
        }
        cJSON *r = nth_node(c, k, parent);
        if (r != NULL)
            return r;
    }
    return NULL;
}

/* Replace every node of every body, in turn, by values of other JSON types
 * (or drop it): each answer must be a well-formed 200, 400, 404, 409 or 501. */
static void test_api_fuzz_type_confusion(void **state)
{
    (void)state;
    static const struct { int m; const char *path; const char *body; } r[] = {
        { PUT, "/collections/c/points", "{'points': [{'id': 1, 'vector': [1,0,0,0], 'payload': {'a': {'b': 1}}}],"
                                        " 'update_filter': {'must': [{'key': 'a', 'match': {'value': 1}}]},"
                                        " 'update_mode': 'upsert'}" },
        { PUT, "/collections/c/points", "{'batch': {'ids': [2], 'vectors': [[0,1,0,0]], 'payloads': [{'x': 1}]}}" },
        { PUT, "/collections/n/points", "{'batch': {'ids': [2], 'vectors': {'a': [[0,1]]}}}" },
        { PUT, "/collections/n/points", "{'points': [{'id': 1, 'vector': {'a': [1,0]}}]}" },
        { POST, "/collections/c/points", "{'ids': [1, 2], 'with_payload': {'include': ['a']}, 'with_vector': ['']}" },
        { POST, "/collections/c/points/delete", "{'filter': {'must': [{'key': 'zz', 'match': {'any': [1]}}]}}" },
        { POST, "/collections/c/points/payload", "{'payload': {'q': 1}, 'points': [1], 'key': 'k'}" },
        { PUT, "/collections/c/points/payload", "{'payload': {'q': 1}, 'filter': {'should': [{'has_id': [1]}]}}" },
        { POST, "/collections/c/points/payload/delete", "{'keys': ['q'], 'points': [1]}" },
        { POST, "/collections/c/points/payload/clear", "{'filter': {'must_not': [{'is_empty': {'key': 'a'}}]}}" },
        { PUT, "/collections/n/points/vectors", "{'points': [{'id': 1, 'vector': {'a': [1,1]}}],"
                                               " 'update_filter': {'must': [{'has_id': [1]}]}}" },
        { POST, "/collections/n/points/vectors/delete", "{'vector': ['a'], 'points': [1]}" },
        { POST, "/collections/c/points/batch", "{'operations': [{'upsert': {'points': [{'id': 3, 'vector': [1,0,0,0]}]}},"
                                               " {'set_payload': {'payload': {'r': 1}, 'points': [3]}},"
                                               " {'delete': {'points': [3]}}]}" },
        { POST, "/collections/c/points/scroll", "{'limit': 2, 'offset': 1, 'with_payload': ['a'], 'with_vector': true,"
                                                " 'order_by': {'key': 'a.b', 'direction': 'desc', 'start_from': 1},"
                                                " 'filter': {'must': [{'key': 'a.b', 'range': {'gte': 0}}]}}" },
        { POST, "/collections/c/points/count", "{'exact': true, 'filter': {'min_should': {'conditions':"
                                               " [{'has_id': [1]}], 'min_count': 1}}}" },
        { POST, "/collections/c/points/search", "{'vector': [1,0,0,0], 'limit': 2, 'offset': 0, 'score_threshold': 0,"
                                                " 'params': {'hnsw_ef': 8, 'exact': false}, 'with_payload': true,"
                                                " 'filter': {'must': [{'key': 'a', 'is_null': {'key': 'a'}}]}}" },
        { POST, "/collections/n/points/search", "{'vector': {'name': 'a', 'vector': [1,0]}, 'limit': 1}" },
        { POST, "/collections/c/points/search/batch", "{'searches': [{'vector': [1,0,0,0], 'limit': 1}]}" },
        { POST, "/collections/c/points/query", "{'query': {'nearest': [1,0,0,0]}, 'limit': 2, 'offset': 1,"
                                               " 'with_vector': [''], 'with_payload': {'exclude': ['a']},"
                                               " 'filter': {'must': [{'key': 'a', 'values_count': {'gt': 0}}]}}" },
        { POST, "/collections/n/points/query", "{'query': 1, 'using': 'a'}" },
        { POST, "/collections/c/points/query/batch", "{'searches': [{'query': [1,0,0,0]}, {'limit': 1}]}" },
        { POST, "/collections/aliases", "{'actions': [{'create_alias': {'collection_name': 'c', 'alias_name': 'x'}},"
                                        " {'rename_alias': {'old_alias_name': 'x', 'new_alias_name': 'y'}},"
                                        " {'delete_alias': {'alias_name': 'y'}}]}" },
        { PATCH, "/collections/c", "{'optimizers_config': {'indexing_threshold': 0}, 'hnsw_config': {'m': 4},"
                                   " 'params': {'on_disk_payload': true}, 'metadata': {'k': 'v'}}" },
        { PUT, "/collections/c/index", "{'field_name': 'a.b', 'field_schema': {'type': 'text', 'tokenizer': 'word',"
                                       " 'min_token_len': 2, 'lowercase': true, 'memory': 'cold',"
                                       " 'stopwords': {'languages': ['en'], 'custom': ['x']},"
                                       " 'stemmer': {'type': 'snowball', 'language': 'english'}}}" },
        { PUT, "/collections/c/index", "{'field_name': 'n', 'field_schema': {'type': 'integer', 'lookup': true,"
                                       " 'range': false, 'is_principal': true, 'on_disk': true}}" },
        { PUT, "/collections/c/index", "{'field_name': 'k', 'field_schema': 'keyword'}" },
        { PUT, "/collections/f", "{'vectors': {'v': {'size': 2, 'distance': 'Dot', 'on_disk': true}},"
                                 " 'hnsw_config': {'m': 4}, 'wal_config': {'wal_capacity_mb': 1},"
                                 " 'optimizers_config': {'deleted_threshold': 0.5}, 'shard_number': 1}" },
    };
    static const char *const other[] = { "[[1]]", "[{}]", "{'x': [1]}", "'s'", "-1", "null", "true", "{}", "[]",
                                         "1e300", "0.5", "'550e8400e29b41d4a716446655440000'", "" };
    size_t sent = 0;

    ok(PUT, "/collections/n", "{'vectors': {'a': {'size': 2, 'distance': 'Dot'}}}");
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        char *b = sq(r[i].body);
        cJSON *doc = cJSON_Parse(b);
        free(b);
        assert_non_null(doc);
        for (int k = 0;; k++) {
            int kk = k;
            cJSON *parent = NULL;
            cJSON *copy = cJSON_Duplicate(doc, 1);
            if (nth_node(copy, &kk, &parent) == NULL) {
                cJSON_Delete(copy);
                break;
            }
            for (size_t v = 0; v < sizeof(other) / sizeof(other[0]); v++) {
                cJSON *c2 = cJSON_Duplicate(doc, 1), *par = NULL;
                int k2 = k;
                cJSON *node = nth_node(c2, &k2, &par);
                if (*other[v] == '\0') {
                    cJSON_Delete(cJSON_DetachItemViaPointer(par, node)); /* "": drop the node */
                } else {
                    char *ov = sq(other[v]);
                    cJSON_ReplaceItemViaPointer(par, node, cJSON_Parse(ov));
                    free(ov);
                }
                char *text = cJSON_PrintUnformatted(c2);
                api_req_t rq = { .method = r[i].m, .path = r[i].path, .body = text,
                                 .body_len = strlen(text) };
                api_resp_t rs;
                api_handle(G->api, &rq, &rs);
                cJSON *out = cJSON_Parse(rs.body);
                if (out == NULL || (rs.status != 200 && rs.status != 400 && rs.status != 404 &&
                                    rs.status != 409 && rs.status != 501))
                    fail_msg("%s %s: %d %s", r[i].path, text, rs.status, rs.body);
                check_envelope(out, rs.status, rs.body);
                cJSON_Delete(out);
                free(rs.body);
                free(text);
                cJSON_Delete(c2);
                sent++;
            }
            cJSON_Delete(copy);
        }
        cJSON_Delete(doc);
        /* a collection created by a mutated body must not block the next */
        catalog_drop(G->cat, "f", NULL);
    }
    assert_true(sent > 500);
}

/* ---- threads and status mapping ---------------------------------------------------- */

typedef struct worker {
    api_t *api;
    int id;
    int bad;                  /* requests that did not answer 200 */
} worker_t;

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    char body[256];

    for (int j = 0; j < 50; j++) {
        const struct { int m; const char *path; const char *query; } r[] = {
            { PUT, "/collections/c/points", "wait=true" },
            { POST, "/collections/c/points/query", NULL },
            { POST, "/collections/c/points/scroll", NULL },
            { POST, "/collections/c/points/count", NULL },
            { GET, "/metrics", NULL },
        };
        for (size_t k = 0; k < sizeof(r) / sizeof(r[0]); k++) {
            if (k == 0)
                snprintf(body, sizeof(body), "{\"points\": [{\"id\": %d, \"vector\": [1,%d,0,0]}]}",
                         w->id * 1000 + j, j);
            else if (k == 1)
                snprintf(body, sizeof(body), "{\"query\": [0,1,0,0], \"limit\": 3}");
            else
                snprintf(body, sizeof(body), "{}");
            api_req_t rq = { .method = r[k].m, .path = r[k].path, .query = r[k].query, .body = body,
                             .body_len = strlen(body) };
            api_resp_t rs;
            api_handle(w->api, &rq, &rs);
            api_observe(w->api, rs.route, r[k].m, rs.status, 0.0001);
            w->bad += rs.status != 200;
            free(rs.body);
        }
    }
    return NULL;
}

/* api_handle and api_observe from several threads at once. */
static void test_api_concurrent_requests(void **state)
{
    (void)state;
    pthread_t t[4];
    worker_t w[4];

    for (int i = 0; i < 4; i++) {
        w[i] = (worker_t){ .api = G->api, .id = i };
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    assert_true(count_of("c", "{}") == 200);
    const char *m = call(GET, "/metrics", NULL, 200)->valuestring;
    assert_non_null(strstr(m, "veclog_http_requests_total{route=\"/collections/{collection_name}/points\","
                              "method=\"PUT\",status=\"200\"} 200\n"));
    assert_non_null(strstr(m, "veclog_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"200\"} 200\n"));
    assert_non_null(strstr(m, "veclog_collection_points{collection=\"c\"} 200\n"));
}

static void test_api_status_of(void **state)
{
    (void)state;
    assert_int_equal(api_status_of(ERR_OK), 200);
    assert_int_equal(api_status_of(ERR_INVALID), 400);
    assert_int_equal(api_status_of(ERR_FORBIDDEN), 403);
    assert_int_equal(api_status_of(ERR_NOT_FOUND), 404);
    assert_int_equal(api_status_of(ERR_TIMEOUT), 408);
    assert_int_equal(api_status_of(ERR_EXISTS), 409);
    assert_int_equal(api_status_of(ERR_TOO_LARGE), 413);
    assert_int_equal(api_status_of(ERR_IO), 500);
    assert_int_equal(api_status_of(ERR_CORRUPT), 500);
    assert_int_equal(api_status_of(ERR_NOMEM), 500);
    assert_int_equal(api_status_of(ERR_UNSUPPORTED), 501);
    assert_int_equal(api_status_of(ERR_BUSY), 503);
    assert_int_equal(api_status_of(ERR_CLOSED), 503);
    assert_int_equal(api_status_of(ERR_FULL), 507);
}

int main(void)
{
    log_level_set(LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_api_root_version_info, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_telemetry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_collection_create_get_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_collection_exists_update_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_collection_create_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_alias_resolves_points_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_upsert_points_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_upsert_batch_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_upsert_named_vectors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_upsert_uuid_forms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_upsert_update_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_upsert_update_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_wait_completed_vs_acknowledged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_retrieve_and_get_point, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_delete_by_ids_and_filter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_payload_set_overwrite_delete_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_vectors_update_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_points_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_points_batch_bad_operation_rejects_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_scroll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_search_legacy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_query_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_error_400_malformed_and_types, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_error_404, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_error_405, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_error_409, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_auth_403, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_payload_index_create_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_payload_index_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_unimplemented_501, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_not_ready_503, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_health_texts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_ingest_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_fuzz_type_confusion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_api_concurrent_requests, setup, teardown),
        cmocka_unit_test(test_api_status_of),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
