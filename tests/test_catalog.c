/*
 * test_catalog.c - the collections registry: create (bodies, configs,
 * errors), list/exists/info JSON shapes (Qdrant CollectionInfo,
 * CollectionsResponse, CollectionsAliasesResponse), drop (also while a
 * handle is held), aliases as atomic batches, update diffs, persistence
 * across close/open, crash leftovers (interrupted create/drop), the
 * storage lock, concurrent acquire/release against create/drop, and
 * payload index definitions (every schema form, validation, persistence,
 * point counts).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/catalog.h"
#include "store/dist.h"
#include "store/log.h"
#include "tests/testutil.h"

typedef struct fx {
    char *dir;
    catalog_opts_t o;
    catalog_t *cat;
} fx_t;

static catalog_t *fx_open(fx_t *f)
{
    catalog_t *cat = NULL;
    err_t e;
    if (catalog_open(&f->o, &cat, &e) != ERR_OK)
        fail_msg("catalog_open: %s", e.msg);
    return cat;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    log_level_set(LOG_ERROR);
    f->dir = tu_tmpdir("catalog");
    catalog_opts_default(&f->o);
    f->o.storage_path = f->dir;
    f->o.wal_sync_mode = WAL_SYNC_NONE;
    f->cat = fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    catalog_close(f->cat);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void reopen(fx_t *f)
{
    catalog_close(f->cat);
    f->cat = fx_open(f);
}

static cJSON *J(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL)
        fail_msg("bad JSON in test: %s", text);
    return j;
}

/* catalog_create with a body given as JSON text (NULL: no body). */
static int create(fx_t *f, const char *name, const char *body, err_t *e)
{
    cJSON *b = body ? J(body) : NULL;
    memset(e, 0, sizeof(*e));
    int rc = catalog_create(f->cat, name, b, e);
    cJSON_Delete(b);
    return rc;
}

static void create_ok(fx_t *f, const char *name, const char *body)
{
    err_t e;
    if (create(f, name, body, &e) != ERR_OK)
        fail_msg("create %s: %s", name, e.msg);
}

static int aliases(fx_t *f, const char *body, err_t *e)
{
    cJSON *b = J(body);
    memset(e, 0, sizeof(*e));
    int rc = catalog_aliases_update(f->cat, b, e);
    cJSON_Delete(b);
    return rc;
}

static int update(fx_t *f, const char *name, const char *body, err_t *e)
{
    cJSON *b = J(body);
    memset(e, 0, sizeof(*e));
    int rc = catalog_update(f->cat, name, b, e);
    cJSON_Delete(b);
    return rc;
}

static catalog_handle_t *acquire_ok(fx_t *f, const char *name)
{
    catalog_handle_t *h = NULL;
    err_t e;
    if (catalog_acquire(f->cat, name, &h, &e) != ERR_OK)
        fail_msg("acquire %s: %s", name, e.msg);
    assert_non_null(h);
    return h;
}

/* CollectionInfo of a collection or alias; caller deletes. */
static cJSON *info(fx_t *f, const char *name)
{
    catalog_handle_t *h = acquire_ok(f, name);
    cJSON *j = catalog_info_json(f->cat, h);
    catalog_release(h);
    assert_non_null(j);
    return j;
}

/* info(name).config.<section>.<key> (key NULL: the section). */
static const cJSON *cfg_at(const cJSON *inf, const char *section, const char *key)
{
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(inf, "config");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(cfg, section);
    if (s == NULL)
        fail_msg("config.%s missing", section);
    if (key == NULL)
        return s;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);
    if (v == NULL)
        fail_msg("config.%s.%s missing", section, key);
    return v;
}

static double cfg_num(const cJSON *inf, const char *section, const char *key)
{
    const cJSON *v = cfg_at(inf, section, key);
    if (!cJSON_IsNumber(v))
        fail_msg("config.%s.%s is not a number", section, key);
    return v->valuedouble;
}

static char *path_of(fx_t *f, const char *name, const char *file)
{
    char *p;
    if (asprintf(&p, "%s/collections/%s%s%s", f->dir, name, file ? "/" : "", file ? file : "") < 0)
        abort();
    return p;
}

static bool exists_on_disk(fx_t *f, const char *name, const char *file)
{
    char *p = path_of(f, name, file);
    struct stat st;
    bool ok = stat(p, &st) == 0;
    free(p);
    return ok;
}

static void touch(fx_t *f, const char *name, const char *file)
{
    char *p = path_of(f, name, file);
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
    free(p);
}

/* Upsert integer ids [from, from+n) with vector (i, 1, 0, 0) ("" vector). */
static void put_points(coll_t *c, uint64_t from, size_t n, const char *vname, uint32_t dim)
{
    op_t op = { .type = OP_UPSERT };
    float v[8] = { 0 };
    err_t e;
    for (size_t i = 0; i < n; i++) {
        op_point_t *p = op_point_add(&op);
        p->id = ptid_num(from + i);
        p->payload = strdup("{\"k\":1}");
        v[0] = (float)(from + i);
        v[1] = 1;
        op_vec_add(p, vname, v, dim);
    }
    if (coll_write(c, &op, NULL, &e) != ERR_OK)
        fail_msg("coll_write: %s", e.msg);
    op_clear(&op);
}

static size_t count_points(coll_t *c)
{
    size_t n = 0;
    err_t e;
    assert_int_equal(coll_count(c, NULL, &n, &e), ERR_OK);
    return n;
}

/* Names in catalog_list_json, joined by ",". */
static char *list_names(fx_t *f)
{
    cJSON *l = catalog_list_json(f->cat);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(l, "collections"), *it;
    char *s = calloc(1, 4096);
    assert_true(cJSON_IsArray(arr));
    cJSON_ArrayForEach(it, arr) {
        assert_true(cJSON_IsObject(it));
        assert_int_equal(cJSON_GetArraySize(it), 1);
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        assert_true(cJSON_IsString(n));
        if (*s)
            strcat(s, ",");
        strcat(s, n->valuestring);
    }
    cJSON_Delete(l);
    return s;
}

static void assert_list(fx_t *f, const char *want)
{
    char *got = list_names(f);
    assert_string_equal(got, want);
    free(got);
}

/* "alias>collection" pairs of catalog_aliases_json, sorted, joined by ",". */
static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *alias_pairs(fx_t *f, const char *collection)
{
    cJSON *l = catalog_aliases_json(f->cat, collection);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(l, "aliases"), *it;
    char *pairs[64];
    size_t n = 0;
    char *s = calloc(1, 4096);
    assert_true(cJSON_IsArray(arr));
    assert_int_equal(cJSON_GetArraySize(l), 1);
    cJSON_ArrayForEach(it, arr) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(it, "alias_name");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "collection_name");
        assert_true(cJSON_IsString(a));
        assert_true(cJSON_IsString(c));
        assert_int_equal(cJSON_GetArraySize(it), 2);
        assert_true(n < 64);
        if (asprintf(&pairs[n++], "%s>%s", a->valuestring, c->valuestring) < 0)
            abort();
    }
    qsort(pairs, n, sizeof(char *), str_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(s, ",");
        strcat(s, pairs[i]);
        free(pairs[i]);
    }
    cJSON_Delete(l);
    return s;
}

static void assert_aliases(fx_t *f, const char *collection, const char *want)
{
    char *got = alias_pairs(f, collection);
    assert_string_equal(got, want);
    free(got);
}

static void assert_msg_has(const err_t *e, const char *what)
{
    if (strstr(e->msg, what) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", e->msg, what);
}

#define VEC4 "{\"vectors\":{\"size\":4,\"distance\":\"Cosine\"}}"

/* ---- create ------------------------------------------------------------ */

static void test_catalog_create_unnamed_vector_info_shape(void **state)
{
    fx_t *f = *state;
    create_ok(f, "c1", VEC4);
    assert_true(catalog_exists(f->cat, "c1"));

    catalog_handle_t *h = acquire_ok(f, "c1");
    assert_string_equal(catalog_handle_name(h), "c1");
    uint32_t n;
    const coll_vector_def_t *d = coll_vectors(catalog_handle_coll(h), &n);
    assert_int_equal(n, 1);
    assert_string_equal(d[0].name, "");
    assert_int_equal(d[0].dim, 4);
    assert_int_equal(d[0].metric, DIST_COSINE);
    put_points(catalog_handle_coll(h), 1, 3, "", 4);

    /* CollectionInfo: required status, optimizer_status, segments_count,
     * config, payload_schema; points_count */
    cJSON *inf = catalog_info_json(f->cat, h);
    catalog_release(h);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(inf, "status");
    assert_true(cJSON_IsString(v));
    assert_string_equal(v->valuestring, "green");
    v = cJSON_GetObjectItemCaseSensitive(inf, "optimizer_status");
    assert_true(cJSON_IsString(v));
    assert_string_equal(v->valuestring, "ok");
    v = cJSON_GetObjectItemCaseSensitive(inf, "points_count");
    assert_true(cJSON_IsNumber(v));
    assert_int_equal(v->valueint, 3);
    v = cJSON_GetObjectItemCaseSensitive(inf, "segments_count");
    assert_true(cJSON_IsNumber(v) && v->valuedouble >= 0);
    v = cJSON_GetObjectItemCaseSensitive(inf, "indexed_vectors_count");
    assert_true(v == NULL || cJSON_IsNumber(v) || cJSON_IsNull(v));
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(inf, "payload_schema")));
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(inf, "config");
    assert_true(cJSON_IsObject(cfg));
    /* CollectionConfig: params, hnsw_config, optimizer_config required */
    assert_true(cJSON_IsObject(cfg_at(inf, "params", NULL)));
    assert_true(cJSON_IsObject(cfg_at(inf, "hnsw_config", NULL)));
    assert_true(cJSON_IsObject(cfg_at(inf, "optimizer_config", NULL)));
    assert_true(cJSON_IsObject(cfg_at(inf, "wal_config", NULL)));
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cfg, "quantization_config")));
    assert_null(cJSON_GetObjectItemCaseSensitive(cfg, "veclog_format"));
    assert_null(cJSON_GetObjectItemCaseSensitive(cfg, "optimizers_config"));
    /* params.vectors is the VectorParams as given */
    const cJSON *vec = cJSON_GetObjectItemCaseSensitive(cfg_at(inf, "params", NULL), "vectors");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(vec, "size")->valueint, 4);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(vec, "distance")->valuestring, "Cosine");
    assert_int_equal(cfg_num(inf, "params", "shard_number"), 1);
    assert_int_equal(cfg_num(inf, "params", "replication_factor"), 1);
    assert_int_equal(cfg_num(inf, "params", "write_consistency_factor"), 1);
    assert_true(cJSON_IsTrue(cfg_at(inf, "params", "on_disk_payload")));
    /* HnswConfig required: m, ef_construct, full_scan_threshold */
    assert_int_equal(cfg_num(inf, "hnsw_config", "m"), 16);
    assert_int_equal(cfg_num(inf, "hnsw_config", "ef_construct"), 100);
    assert_int_equal(cfg_num(inf, "hnsw_config", "full_scan_threshold"), 10000);
    /* OptimizersConfig required: default_segment_number, flush_interval_sec */
    assert_true(cJSON_IsNumber(cfg_at(inf, "optimizer_config", "default_segment_number")));
    assert_int_equal(cfg_num(inf, "optimizer_config", "flush_interval_sec"), 5);
    assert_float_equal(cfg_num(inf, "optimizer_config", "deleted_threshold"), 0.2, 1e-12);
    assert_true(cJSON_IsNull(cfg_at(inf, "optimizer_config", "max_segment_size")));
    /* WalConfig required: wal_capacity_mb, wal_segments_ahead */
    assert_int_equal(cfg_num(inf, "wal_config", "wal_capacity_mb"), 32);
    assert_int_equal(cfg_num(inf, "wal_config", "wal_segments_ahead"), 0);
    cJSON_Delete(inf);

    /* config.json on disk, with the format marker */
    assert_true(exists_on_disk(f, "c1", "config.json"));
    char *p = path_of(f, "c1", "config.json");
    FILE *fp = fopen(p, "r");
    char buf[8192];
    size_t got = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[got] = '\0';
    fclose(fp);
    free(p);
    cJSON *disk = J(buf);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(disk, "veclog_format")->valueint, 1);
    cJSON_Delete(disk);
}

static void test_catalog_create_named_vectors(void **state)
{
    fx_t *f = *state;
    create_ok(f, "nv", "{\"vectors\":{\"text\":{\"size\":3,\"distance\":\"Dot\"},"
                      "\"image\":{\"size\":5,\"distance\":\"Euclid\",\"on_disk\":true}}}");
    catalog_handle_t *h = acquire_ok(f, "nv");
    uint32_t n;
    const coll_vector_def_t *d = coll_vectors(catalog_handle_coll(h), &n);
    assert_int_equal(n, 2);
    for (uint32_t i = 0; i < n; i++) {
        if (strcmp(d[i].name, "text") == 0) {
            assert_int_equal(d[i].dim, 3);
            assert_int_equal(d[i].metric, DIST_DOT);
        } else {
            assert_string_equal(d[i].name, "image");
            assert_int_equal(d[i].dim, 5);
            assert_int_equal(d[i].metric, DIST_EUCLID);
            assert_true(d[i].on_disk);
        }
    }
    put_points(catalog_handle_coll(h), 10, 2, "text", 3);
    put_points(catalog_handle_coll(h), 20, 2, "image", 5);
    assert_int_equal(count_points(catalog_handle_coll(h)), 4);
    cJSON *inf = catalog_info_json(f->cat, h);
    catalog_release(h);
    const cJSON *vec = cJSON_GetObjectItemCaseSensitive(cfg_at(inf, "params", NULL), "vectors");
    assert_int_equal(cJSON_GetArraySize(vec), 2);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(vec, "image"), "distance")->valuestring,
                        "Euclid");
    cJSON_Delete(inf);

    /* no vectors at all (Qdrant allows it: vectors defaults to {}) */
    create_ok(f, "novec", "{}");
    create_ok(f, "nobody", NULL);
    inf = info(f, "novec");
    vec = cJSON_GetObjectItemCaseSensitive(cfg_at(inf, "params", NULL), "vectors");
    assert_true(cJSON_IsObject(vec));
    assert_int_equal(cJSON_GetArraySize(vec), 0);
    cJSON_Delete(inf);
}

static void test_catalog_create_each_distance(void **state)
{
    fx_t *f = *state;
    static const struct { const char *name; int metric; } ds[] = {
        { "Cosine", DIST_COSINE }, { "Euclid", DIST_EUCLID },
        { "Dot", DIST_DOT }, { "Manhattan", DIST_MANHATTAN },
    };
    for (size_t i = 0; i < 4; i++) {
        char body[128], name[32];
        snprintf(body, sizeof(body), "{\"vectors\":{\"size\":2,\"distance\":\"%s\"}}", ds[i].name);
        snprintf(name, sizeof(name), "d_%s", ds[i].name);
        create_ok(f, name, body);
    }
    reopen(f);
    for (size_t i = 0; i < 4; i++) {
        char name[32];
        snprintf(name, sizeof(name), "d_%s", ds[i].name);
        catalog_handle_t *h = acquire_ok(f, name);
        uint32_t n;
        const coll_vector_def_t *d = coll_vectors(catalog_handle_coll(h), &n);
        assert_int_equal(n, 1);
        assert_int_equal(d[0].metric, ds[i].metric);
        cJSON *inf = catalog_info_json(f->cat, h);
        const cJSON *vec = cJSON_GetObjectItemCaseSensitive(cfg_at(inf, "params", NULL), "vectors");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(vec, "distance")->valuestring,
                            ds[i].name);
        cJSON_Delete(inf);
        catalog_release(h);
    }
}

static void test_catalog_config_diffs_stored_and_reported(void **state)
{
    fx_t *f = *state;
    create_ok(f, "cfg",
              "{\"vectors\":{\"size\":4,\"distance\":\"Dot\"},"
              "\"shard_number\":2,\"replication_factor\":3,\"write_consistency_factor\":2,"
              "\"on_disk_payload\":false,\"sharding_method\":\"auto\","
              "\"hnsw_config\":{\"m\":32,\"ef_construct\":200,\"full_scan_threshold\":5000,"
              "\"max_indexing_threads\":4,\"on_disk\":true,\"payload_m\":8,\"inline_storage\":null,"
              "\"memory\":\"cached\"},"
              "\"optimizers_config\":{\"deleted_threshold\":0.5,\"vacuum_min_vector_number\":500,"
              "\"default_segment_number\":3,\"max_segment_size\":100000,\"memmap_threshold\":null,"
              "\"indexing_threshold\":0,\"flush_interval_sec\":10,\"max_optimization_threads\":2},"
              "\"wal_config\":{\"wal_capacity_mb\":1,\"wal_segments_ahead\":2},"
              "\"quantization_config\":null,\"sparse_vectors\":null,"
              "\"metadata\":{\"owner\":\"me\",\"n\":[1,2]}}");
    for (int pass = 0; pass < 2; pass++) {
        cJSON *inf = info(f, "cfg");
        assert_int_equal(cfg_num(inf, "params", "shard_number"), 2);
        assert_int_equal(cfg_num(inf, "params", "replication_factor"), 3);
        assert_int_equal(cfg_num(inf, "params", "write_consistency_factor"), 2);
        assert_true(cJSON_IsFalse(cfg_at(inf, "params", "on_disk_payload")));
        assert_int_equal(cfg_num(inf, "hnsw_config", "m"), 32);
        assert_int_equal(cfg_num(inf, "hnsw_config", "ef_construct"), 200);
        assert_int_equal(cfg_num(inf, "hnsw_config", "full_scan_threshold"), 5000);
        assert_int_equal(cfg_num(inf, "hnsw_config", "max_indexing_threads"), 4);
        assert_true(cJSON_IsTrue(cfg_at(inf, "hnsw_config", "on_disk")));
        assert_int_equal(cfg_num(inf, "hnsw_config", "payload_m"), 8);
        assert_float_equal(cfg_num(inf, "optimizer_config", "deleted_threshold"), 0.5, 1e-12);
        assert_int_equal(cfg_num(inf, "optimizer_config", "vacuum_min_vector_number"), 500);
        assert_int_equal(cfg_num(inf, "optimizer_config", "default_segment_number"), 3);
        assert_int_equal(cfg_num(inf, "optimizer_config", "max_segment_size"), 100000);
        assert_true(cJSON_IsNull(cfg_at(inf, "optimizer_config", "memmap_threshold")));
        assert_int_equal(cfg_num(inf, "optimizer_config", "indexing_threshold"), 0);
        assert_int_equal(cfg_num(inf, "optimizer_config", "flush_interval_sec"), 10);
        assert_int_equal(cfg_num(inf, "optimizer_config", "max_optimization_threads"), 2);
        assert_string_equal(cfg_at(inf, "hnsw_config", "memory")->valuestring, "cached");
        assert_int_equal(cfg_num(inf, "wal_config", "wal_capacity_mb"), 1);
        assert_int_equal(cfg_num(inf, "wal_config", "wal_segments_ahead"), 2);
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(inf, "config"),
                                                           "metadata");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(md, "owner")->valuestring, "me");
        /* the diff key is optimizers_config, the config key optimizer_config */
        assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(inf, "config"),
                                                     "optimizers_config"));
        cJSON_Delete(inf);
        reopen(f);
    }

    /* null in a diff keeps the default, as Qdrant merges diffs; "auto"
     * optimization threads are reported as null */
    create_ok(f, "nulls", "{\"hnsw_config\":{\"m\":null,\"payload_m\":null},"
                          "\"optimizers_config\":{\"indexing_threshold\":null,"
                          "\"max_optimization_threads\":\"auto\",\"deleted_threshold\":null},"
                          "\"wal_config\":{\"wal_capacity_mb\":null}}");
    cJSON *inf = info(f, "nulls");
    assert_int_equal(cfg_num(inf, "hnsw_config", "m"), 16);
    assert_int_equal(cfg_num(inf, "optimizer_config", "indexing_threshold"), 10000);
    assert_float_equal(cfg_num(inf, "optimizer_config", "deleted_threshold"), 0.2, 1e-12);
    assert_true(cJSON_IsNull(cfg_at(inf, "optimizer_config", "max_optimization_threads")));
    assert_int_equal(cfg_num(inf, "wal_config", "wal_capacity_mb"), 32);
    cJSON_Delete(inf);

    /* server defaults flow into new collections */
    catalog_close(f->cat);
    f->o.hnsw_m = 24;
    f->o.wal_capacity_mb = 2;
    f->o.opt_max_segment_size_kb = 777;
    f->cat = fx_open(f);
    create_ok(f, "dflt", VEC4);
    inf = info(f, "dflt");
    assert_int_equal(cfg_num(inf, "hnsw_config", "m"), 24);
    assert_int_equal(cfg_num(inf, "wal_config", "wal_capacity_mb"), 2);
    assert_int_equal(cfg_num(inf, "optimizer_config", "max_segment_size"), 777);
    cJSON_Delete(inf);
    /* ... but not into existing ones */
    inf = info(f, "cfg");
    assert_int_equal(cfg_num(inf, "hnsw_config", "m"), 32);
    cJSON_Delete(inf);
}

static void test_catalog_list_sorted_and_exists(void **state)
{
    fx_t *f = *state;
    assert_list(f, "");
    create_ok(f, "b", VEC4);
    create_ok(f, "a", VEC4);
    create_ok(f, "c", VEC4);
    create_ok(f, "A", VEC4);
    create_ok(f, "a-1", VEC4);
    assert_list(f, "A,a,a-1,b,c");
    assert_true(catalog_exists(f->cat, "a"));
    assert_false(catalog_exists(f->cat, "d"));
    assert_false(catalog_exists(f->cat, ""));
    err_t e;
    assert_int_equal(aliases(f, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"a\","
                                "\"alias_name\":\"al\"}}]}", &e), ERR_OK);
    assert_false(catalog_exists(f->cat, "al"));  /* aliases are not collections */
    assert_list(f, "A,a,a-1,b,c");
    reopen(f);
    assert_list(f, "A,a,a-1,b,c");
}

static void test_catalog_create_twice_exists(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "dup", VEC4);
    assert_int_equal(create(f, "dup", VEC4, &e), ERR_EXISTS);
    assert_msg_has(&e, "dup");
    assert_int_equal(create(f, "dup", "{\"vectors\":{\"size\":9,\"distance\":\"Dot\"}}", &e), ERR_EXISTS);
    /* the first one is untouched */
    catalog_handle_t *h = acquire_ok(f, "dup");
    uint32_t n;
    assert_int_equal(coll_vectors(catalog_handle_coll(h), &n)[0].dim, 4);
    catalog_release(h);
    reopen(f);
    assert_int_equal(create(f, "dup", VEC4, &e), ERR_EXISTS);
}

static void test_catalog_bad_bodies_invalid(void **state)
{
    fx_t *f = *state;
    static const struct { const char *body; const char *field; } bad[] = {
        { "{\"vectors\":{\"size\":4,\"distance\":\"Cosine\"},\"bogus\":1}", "bogus" },
        { "{\"vector\":{\"size\":4,\"distance\":\"Cosine\"}}", "vector" },
        { "{\"vectors\":{\"size\":0,\"distance\":\"Cosine\"}}", "size" },
        { "{\"vectors\":{\"size\":-4,\"distance\":\"Cosine\"}}", "size" },
        { "{\"vectors\":{\"size\":4.5,\"distance\":\"Cosine\"}}", "size" },
        { "{\"vectors\":{\"size\":\"4\",\"distance\":\"Cosine\"}}", "size" },
        { "{\"vectors\":{\"size\":1e12,\"distance\":\"Cosine\"}}", "size" },
        { "{\"vectors\":{\"distance\":\"Cosine\"}}", "size" },
        { "{\"vectors\":{\"size\":4,\"distance\":\"cosine\"}}", "distance" },
        { "{\"vectors\":{\"size\":4,\"distance\":\"Hamming\"}}", "distance" },
        { "{\"vectors\":{\"size\":4,\"distance\":1}}", "distance" },
        { "{\"vectors\":{\"size\":4}}", "distance" },
        { "{\"vectors\":{\"size\":4,\"distance\":\"Dot\",\"colour\":1}}", "colour" },
        { "{\"vectors\":{\"size\":4,\"distance\":\"Dot\",\"on_disk\":\"yes\"}}", "on_disk" },
        { "{\"vectors\":{\"a\":{\"size\":0,\"distance\":\"Dot\"}}}", "a.size" },
        { "{\"vectors\":{\"a\":{\"size\":2,\"distance\":\"Dot\"},\"b\":{\"size\":2}}}", "b.distance" },
        { "{\"vectors\":{\"a\":5}}", "a" },
        { "{\"vectors\":{\"\":{\"size\":2,\"distance\":\"Dot\"}}}", "vectors" },
        { "{\"vectors\":5}", "vectors" },
        { "{\"vectors\":[{\"size\":4,\"distance\":\"Dot\"}]}", "vectors" },
        { "{\"vectors\":\"x\"}", "vectors" },
        { "{\"hnsw_config\":{\"m\":\"16\"}}", "hnsw_config.m" },
        { "{\"hnsw_config\":{\"m\":-1}}", "hnsw_config.m" },
        { "{\"hnsw_config\":{\"ef_construct\":1.5}}", "hnsw_config.ef_construct" },
        { "{\"hnsw_config\":{\"on_disk\":1}}", "hnsw_config.on_disk" },
        { "{\"hnsw_config\":{\"payload_m\":true}}", "hnsw_config.payload_m" },
        { "{\"hnsw_config\":{\"mm\":16}}", "mm" },
        { "{\"hnsw_config\":{\"memory\":\"warm\"}}", "hnsw_config.memory" },
        { "{\"hnsw_config\":{\"memory\":1}}", "hnsw_config.memory" },
        { "{\"hnsw_config\":16}", "hnsw_config" },
        { "{\"hnsw_config\":[]}", "hnsw_config" },
        { "{\"optimizers_config\":{\"deleted_threshold\":\"0.2\"}}", "deleted_threshold" },
        { "{\"optimizers_config\":{\"indexing_threshold\":-5}}", "indexing_threshold" },
        { "{\"optimizers_config\":{\"flush_interval_sec\":null,\"max_segment_size\":[1]}}",
          "max_segment_size" },
        { "{\"optimizers_config\":{\"max_optimization_threads\":\"many\"}}",
          "max_optimization_threads" },
        { "{\"optimizers_config\":{\"nope\":1}}", "nope" },
        { "{\"optimizer_config\":{\"deleted_threshold\":0.1}}", "optimizer_config" },
        { "{\"wal_config\":{\"wal_capacity_mb\":true}}", "wal_config.wal_capacity_mb" },
        { "{\"wal_config\":{\"wal_segments_ahead\":0.5}}", "wal_segments_ahead" },
        { "{\"wal_config\":{\"capacity\":1}}", "capacity" },
        { "{\"wal_config\":\"big\"}", "wal_config" },
        { "{\"shard_number\":0}", "shard_number" },
        { "{\"shard_number\":\"1\"}", "shard_number" },
        { "{\"replication_factor\":-1}", "replication_factor" },
        { "{\"write_consistency_factor\":1.5}", "write_consistency_factor" },
        { "{\"on_disk_payload\":\"yes\"}", "on_disk_payload" },
        { "{\"metadata\":5}", "metadata" },
        { "{\"quantization_config\":true}", "quantization_config" },
        { "[]", "body" },
        { "5", "body" },
    };
    err_t e;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = create(f, "bad", bad[i].body, &e);
        if (rc != ERR_INVALID)
            fail_msg("%s: got %d (%s), want ERR_INVALID", bad[i].body, rc, e.msg);
        assert_false(e.retriable);
        if (strstr(e.msg, bad[i].field) == NULL)
            fail_msg("%s: error \"%s\" does not name %s", bad[i].body, e.msg, bad[i].field);
        assert_false(catalog_exists(f->cat, "bad"));
        assert_false(exists_on_disk(f, "bad", NULL));
    }
    assert_list(f, "");
    /* the name is still free */
    create_ok(f, "bad", VEC4);
}

static void test_catalog_unsupported_features(void **state)
{
    fx_t *f = *state;
    static const struct { const char *body; const char *what; } uns[] = {
        { "{\"vectors\":{\"size\":4,\"distance\":\"Dot\"},"
          "\"sparse_vectors\":{\"text\":{\"modifier\":\"idf\"}}}", "sparse" },
        { "{\"sparse_vectors\":{\"text\":{}}}", "sparse" },
        { "{\"vectors\":{\"size\":4,\"distance\":\"Dot\"},"
          "\"quantization_config\":{\"scalar\":{\"type\":\"int8\"}}}", "quantization" },
        { "{\"vectors\":{\"size\":4,\"distance\":\"Dot\","
          "\"multivector_config\":{\"comparator\":\"max_sim\"}}}", "multivector" },
        { "{\"vectors\":{\"a\":{\"size\":4,\"distance\":\"Dot\","
          "\"multivector_config\":{\"comparator\":\"max_sim\"}}}}", "multivector" },
        { "{\"vectors\":{\"size\":4,\"distance\":\"Dot\",\"datatype\":\"uint8\"}}", "datatype" },
        { "{\"sharding_method\":\"custom\"}", "sharding_method" },
        { "{\"init_from\":{\"collection\":\"x\"}}", "init_from" },
        { "{\"strict_mode_config\":{\"enabled\":true}}", "strict" },
    };
    err_t e;
    for (size_t i = 0; i < sizeof(uns) / sizeof(uns[0]); i++) {
        int rc = create(f, "u", uns[i].body, &e);
        if (rc != ERR_UNSUPPORTED)
            fail_msg("%s: got %d (%s), want ERR_UNSUPPORTED", uns[i].body, rc, e.msg);
        assert_msg_has(&e, uns[i].what);
        assert_false(catalog_exists(f->cat, "u"));
        assert_false(exists_on_disk(f, "u", NULL));
    }
    /* the neutral spellings of the same fields are fine */
    create_ok(f, "ok1", "{\"vectors\":{\"size\":4,\"distance\":\"Dot\",\"multivector_config\":null,"
                        "\"datatype\":\"float32\"},\"sparse_vectors\":{},\"quantization_config\":null,"
                        "\"strict_mode_config\":{\"enabled\":false},\"init_from\":null}");
}

static void test_catalog_bad_names(void **state)
{
    fx_t *f = *state;
    char n256[257], n255[256];
    memset(n256, 'n', 256);
    n256[256] = '\0';
    memset(n255, 'n', 255);
    n255[255] = '\0';
    const char *bad[] = { "", "a/b", ".x", ".", "..", n256, "a\\b", "a:b", "a*b", "a?b",
                          "a\"b", "a<b", "a>b", "a|b", "a\nb", "a\tb", "/abs" };
    err_t e;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (create(f, bad[i], VEC4, &e) != ERR_INVALID)
            fail_msg("name \"%s\" accepted", bad[i]);
        assert_msg_has(&e, "name");
        assert_int_equal(catalog_name_check(bad[i], "collection", &e), ERR_INVALID);
    }
    assert_int_equal(catalog_name_check(NULL, "alias", &e), ERR_INVALID);
    assert_msg_has(&e, "alias");
    assert_false(exists_on_disk(f, "a", NULL));
    assert_list(f, "");
    /* 255 bytes, UTF-8, spaces, dots inside are fine */
    create_ok(f, n255, VEC4);
    create_ok(f, "caf\xc3\xa9 b.c-d_e", VEC4);
    reopen(f);
    assert_true(catalog_exists(f->cat, n255));
    assert_true(catalog_exists(f->cat, "caf\xc3\xa9 b.c-d_e"));
}

/* ---- drop -------------------------------------------------------------- */

static void test_catalog_drop_removes_files(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "gone", VEC4);
    create_ok(f, "kept", VEC4);
    catalog_handle_t *h = acquire_ok(f, "gone");
    put_points(catalog_handle_coll(h), 1, 5, "", 4);
    catalog_release(h);
    assert_true(exists_on_disk(f, "gone", "config.json"));

    assert_int_equal(catalog_drop(f->cat, "gone", &e), ERR_OK);
    assert_false(catalog_exists(f->cat, "gone"));
    assert_false(exists_on_disk(f, "gone", NULL));
    assert_int_equal(catalog_acquire(f->cat, "gone", &h, &e), ERR_NOT_FOUND);
    assert_null(h);
    assert_msg_has(&e, "gone");
    assert_int_equal(catalog_drop(f->cat, "gone", &e), ERR_NOT_FOUND);
    assert_int_equal(catalog_drop(f->cat, "never", &e), ERR_NOT_FOUND);
    assert_int_equal(update(f, "gone", "{\"hnsw_config\":{\"m\":4}}", &e), ERR_NOT_FOUND);
    assert_list(f, "kept");
    reopen(f);
    assert_list(f, "kept");

    /* the name can be used again, and starts empty */
    create_ok(f, "gone", "{\"vectors\":{\"size\":2,\"distance\":\"Dot\"}}");
    h = acquire_ok(f, "gone");
    assert_int_equal(count_points(catalog_handle_coll(h)), 0);
    catalog_release(h);
}

static void test_catalog_drop_while_handle_held(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "busy", VEC4);
    catalog_handle_t *h = acquire_ok(f, "busy");
    catalog_handle_t *h2 = acquire_ok(f, "busy");  /* a second reference */
    catalog_handle_t *none = (catalog_handle_t *)0x1;
    coll_t *c = catalog_handle_coll(h);
    assert_ptr_equal(h, h2);
    put_points(c, 1, 2, "", 4);

    assert_int_equal(catalog_drop(f->cat, "busy", &e), ERR_OK);
    assert_false(catalog_exists(f->cat, "busy"));
    assert_int_equal(catalog_acquire(f->cat, "busy", &none, &e), ERR_NOT_FOUND);
    assert_null(none);
    assert_list(f, "");
    assert_int_equal(catalog_drop(f->cat, "busy", &e), ERR_NOT_FOUND);

    /* the holders can still use it */
    put_points(c, 3, 2, "", 4);
    assert_int_equal(count_points(c), 4);
    assert_string_equal(catalog_handle_name(h), "busy");
    cJSON *inf = catalog_info_json(f->cat, h);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(inf, "points_count")->valueint, 4);
    cJSON_Delete(inf);
    assert_true(exists_on_disk(f, "busy", NULL));

    catalog_release(h);
    /* one reference left: still there and usable */
    assert_true(exists_on_disk(f, "busy", "config.json"));
    assert_int_equal(count_points(c), 4);
    catalog_release(h2);
    /* the last release removes the files */
    assert_false(exists_on_disk(f, "busy", NULL));
    assert_list(f, "");
    reopen(f);
    assert_list(f, "");
    catalog_release(NULL);
}

/* Re-creating a name whose dropped collection is still held must not let
 * the old collection's last release delete the new collection's files. */
static void test_catalog_recreate_while_dropped_handle_held(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "re", VEC4);
    catalog_handle_t *old = acquire_ok(f, "re");
    put_points(catalog_handle_coll(old), 1, 3, "", 4);
    assert_int_equal(catalog_drop(f->cat, "re", &e), ERR_OK);

    int rc = create(f, "re", "{\"vectors\":{\"size\":2,\"distance\":\"Dot\"}}", &e);
    if (rc == ERR_OK) {
        /* allowed only if the two collections cannot collide on disk */
        catalog_handle_t *nh = acquire_ok(f, "re");
        put_points(catalog_handle_coll(nh), 100, 1, "", 2);
        catalog_release(nh);
    } else {
        /* refused while the old one is still being dropped: retriable */
        assert_int_equal(rc, ERR_BUSY);
        assert_true(e.retriable);
        assert_msg_has(&e, "`re`");
        assert_false(catalog_exists(f->cat, "re"));
    }
    /* the old handle still works */
    assert_int_equal(count_points(catalog_handle_coll(old)), 3);
    catalog_release(old);
    if (rc != ERR_OK) {
        assert_false(exists_on_disk(f, "re", NULL));
        create_ok(f, "re", "{\"vectors\":{\"size\":2,\"distance\":\"Dot\"}}");
        catalog_handle_t *nh = acquire_ok(f, "re");
        put_points(catalog_handle_coll(nh), 100, 1, "", 2);
        catalog_release(nh);
    }
    /* the new collection survives, alone */
    assert_true(catalog_exists(f->cat, "re"));
    assert_true(exists_on_disk(f, "re", "config.json"));
    reopen(f);
    catalog_handle_t *nh = acquire_ok(f, "re");
    uint32_t n;
    assert_int_equal(coll_vectors(catalog_handle_coll(nh), &n)[0].dim, 2);
    assert_int_equal(count_points(catalog_handle_coll(nh)), 1);
    catalog_release(nh);
}

/* ---- persistence and crash leftovers ----------------------------------- */

static void test_catalog_create_persists_across_restart(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "p1", "{\"vectors\":{\"a\":{\"size\":2,\"distance\":\"Manhattan\"},"
                      "\"b\":{\"size\":3,\"distance\":\"Cosine\"}},"
                      "\"hnsw_config\":{\"m\":8},\"optimizers_config\":{\"indexing_threshold\":null},"
                      "\"wal_config\":{\"wal_capacity_mb\":4}}");
    create_ok(f, "p2", VEC4);
    catalog_handle_t *h = acquire_ok(f, "p1");
    put_points(catalog_handle_coll(h), 1, 10, "a", 2);
    put_points(catalog_handle_coll(h), 5, 10, "b", 3);
    cJSON *before = catalog_info_json(f->cat, h);
    catalog_release(h);
    h = acquire_ok(f, "p2");
    put_points(catalog_handle_coll(h), 7, 1, "", 4);
    catalog_release(h);
    assert_int_equal(aliases(f, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"p1\","
                                "\"alias_name\":\"x1\"}},{\"create_alias\":{\"collection_name\":"
                                "\"p2\",\"alias_name\":\"x2\"}}]}", &e), ERR_OK);

    for (int i = 0; i < 2; i++) {
        reopen(f);
        assert_list(f, "p1,p2");
        assert_aliases(f, NULL, "x1>p1,x2>p2");
        h = acquire_ok(f, "x1");
        assert_string_equal(catalog_handle_name(h), "p1");
        assert_int_equal(count_points(catalog_handle_coll(h)), 14);
        cJSON *after = catalog_info_json(f->cat, h);
        assert_true(cJSON_Compare(before, after, true));
        cJSON_Delete(after);
        uint32_t n;
        coll_vectors(catalog_handle_coll(h), &n);
        assert_int_equal(n, 2);
        catalog_release(h);
        h = acquire_ok(f, "p2");
        assert_int_equal(count_points(catalog_handle_coll(h)), 1);
        catalog_release(h);
    }
    cJSON_Delete(before);
}

static void test_catalog_second_open_busy(void **state)
{
    fx_t *f = *state;
    catalog_t *other = (catalog_t *)0x1;
    err_t e;
    create_ok(f, "c", VEC4);
    assert_int_equal(catalog_open(&f->o, &other, &e), ERR_BUSY);
    assert_null(other);
    assert_msg_has(&e, f->dir);
    /* the first one is unaffected */
    assert_true(catalog_exists(f->cat, "c"));
    catalog_close(f->cat);
    f->cat = NULL;
    /* once closed the path can be opened again */
    assert_int_equal(catalog_open(&f->o, &other, &e), ERR_OK);
    assert_true(catalog_exists(other, "c"));
    f->cat = other;
}

static void test_catalog_open_creates_missing_storage(void **state)
{
    fx_t *f = *state;
    catalog_opts_t o = f->o;
    char *p;
    catalog_t *cat;
    err_t e;
    assert_true(asprintf(&p, "%s/nested", f->dir) > 0);
    o.storage_path = p;
    assert_int_equal(catalog_open(&o, &cat, &e), ERR_OK);
    assert_list(&(fx_t){ .cat = cat }, "");
    catalog_close(cat);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    free(p);
}

static void test_catalog_interrupted_create_removed_at_open(void **state)
{
    fx_t *f = *state;
    create_ok(f, "real", VEC4);
    create_ok(f, "half", VEC4);
    catalog_close(f->cat);
    f->cat = NULL;
    /* "half" lost its config.json (create interrupted before the rename) */
    char *p = path_of(f, "half", "config.json");
    assert_int_equal(unlink(p), 0);
    free(p);
    /* "ghost" got no further than its directory and a temp file */
    p = path_of(f, "ghost", NULL);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
    touch(f, "ghost", ".config.json.tmp");
    f->cat = fx_open(f);
    assert_list(f, "real");
    assert_false(exists_on_disk(f, "half", NULL));
    assert_false(exists_on_disk(f, "ghost", NULL));
    /* both names are free again */
    create_ok(f, "half", VEC4);
    create_ok(f, "ghost", VEC4);
    reopen(f);
    assert_list(f, "ghost,half,real");
}

static void test_catalog_interrupted_drop_finished_at_open(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "doomed", VEC4);
    create_ok(f, "other", VEC4);
    assert_int_equal(aliases(f, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"doomed\","
                                "\"alias_name\":\"d1\"}},{\"create_alias\":{\"collection_name\":"
                                "\"other\",\"alias_name\":\"o1\"}}]}", &e), ERR_OK);
    catalog_handle_t *h = acquire_ok(f, "doomed");
    put_points(catalog_handle_coll(h), 1, 3, "", 4);
    catalog_release(h);
    catalog_close(f->cat);
    f->cat = NULL;
    touch(f, "doomed", "DROPPED");  /* crashed right after the marker */
    f->cat = fx_open(f);
    assert_list(f, "other");
    assert_false(exists_on_disk(f, "doomed", NULL));
    assert_aliases(f, NULL, "o1>other");
    assert_int_equal(catalog_acquire(f->cat, "d1", &h, &e), ERR_NOT_FOUND);
    /* a new collection of that name does not inherit the old alias */
    create_ok(f, "doomed", VEC4);
    reopen(f);
    assert_aliases(f, NULL, "o1>other");
    h = acquire_ok(f, "doomed");
    assert_int_equal(count_points(catalog_handle_coll(h)), 0);
    catalog_release(h);
}

/* ---- aliases ----------------------------------------------------------- */

static void test_catalog_aliases_create_delete_rename_in_one_batch(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "c1", VEC4);
    create_ok(f, "c2", VEC4);
    assert_aliases(f, NULL, "");
    assert_int_equal(aliases(f, "{\"actions\":["
        "{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"a1\"}},"
        "{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"a2\"}},"
        "{\"create_alias\":{\"collection_name\":\"c2\",\"alias_name\":\"tmp\"}},"
        "{\"rename_alias\":{\"old_alias_name\":\"tmp\",\"new_alias_name\":\"b1\"}},"
        "{\"create_alias\":{\"collection_name\":\"c2\",\"alias_name\":\"gone\"}},"
        "{\"delete_alias\":{\"alias_name\":\"gone\"}}]}", &e), ERR_OK);
    assert_aliases(f, NULL, "a1>c1,a2>c1,b1>c2");
    assert_aliases(f, "c1", "a1>c1,a2>c1");
    assert_aliases(f, "c2", "b1>c2");
    assert_aliases(f, "nope", "");

    catalog_handle_t *h = acquire_ok(f, "a2");
    assert_string_equal(catalog_handle_name(h), "c1");
    put_points(catalog_handle_coll(h), 1, 1, "", 4);
    catalog_release(h);
    h = acquire_ok(f, "c1");
    assert_int_equal(count_points(catalog_handle_coll(h)), 1);
    catalog_release(h);
    assert_int_equal(catalog_acquire(f->cat, "tmp", &h, &e), ERR_NOT_FOUND);

    /* delete, rename and re-point in a second batch */
    assert_int_equal(aliases(f, "{\"actions\":["
        "{\"delete_alias\":{\"alias_name\":\"a2\"}},"
        "{\"rename_alias\":{\"old_alias_name\":\"a1\",\"new_alias_name\":\"r1\"}},"
        "{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"b1\"}}]}", &e), ERR_OK);
    assert_aliases(f, NULL, "b1>c1,r1>c1");
    h = acquire_ok(f, "b1");
    assert_string_equal(catalog_handle_name(h), "c1");
    catalog_release(h);
    reopen(f);
    assert_aliases(f, NULL, "b1>c1,r1>c1");
    /* an empty batch is fine */
    assert_int_equal(aliases(f, "{\"actions\":[]}", &e), ERR_OK);
    assert_aliases(f, NULL, "b1>c1,r1>c1");
    /* update through an alias changes the collection */
    assert_int_equal(update(f, "r1", "{\"hnsw_config\":{\"m\":6}}", &e), ERR_OK);
    cJSON *inf = info(f, "c1");
    assert_int_equal(cfg_num(inf, "hnsw_config", "m"), 6);
    cJSON_Delete(inf);
}

static void test_catalog_aliases_batch_is_atomic(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "c1", VEC4);
    assert_int_equal(aliases(f, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"c1\","
                                "\"alias_name\":\"keep\"}}]}", &e), ERR_OK);
    static const struct { const char *body; int code; const char *what; } bad[] = {
        /* first valid, second names a missing collection */
        { "{\"actions\":[{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"n1\"}},"
          "{\"create_alias\":{\"collection_name\":\"missing\",\"alias_name\":\"n2\"}}]}",
          ERR_NOT_FOUND, "missing" },
        /* first valid, second deletes a missing alias */
        { "{\"actions\":[{\"delete_alias\":{\"alias_name\":\"keep\"}},"
          "{\"delete_alias\":{\"alias_name\":\"nope\"}}]}", ERR_NOT_FOUND, "nope" },
        /* rename of a missing alias */
        { "{\"actions\":[{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"n1\"}},"
          "{\"rename_alias\":{\"old_alias_name\":\"zz\",\"new_alias_name\":\"yy\"}}]}",
          ERR_NOT_FOUND, "zz" },
        /* alias named like a collection */
        { "{\"actions\":[{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"n1\"}},"
          "{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"c1\"}}]}",
          ERR_EXISTS, "c1" },
        { "{\"actions\":[{\"rename_alias\":{\"old_alias_name\":\"keep\",\"new_alias_name\":\"c1\"}}]}",
          ERR_EXISTS, "c1" },
        /* malformed actions */
        { "{\"actions\":[{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"n1\"}},"
          "{\"create_alias\":{\"collection_name\":\"c1\"}}]}", ERR_INVALID, "alias_name" },
        { "{\"actions\":[{\"delete_alias\":{}}]}", ERR_INVALID, "alias_name" },
        { "{\"actions\":[{\"rename_alias\":{\"old_alias_name\":\"keep\"}}]}", ERR_INVALID,
          "new_alias_name" },
        { "{\"actions\":[{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"n1\"}},"
          "{\"frobnicate\":{}}]}", ERR_INVALID, "actions[1]" },
        { "{\"actions\":[{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"a/b\"}}]}",
          ERR_INVALID, "name" },
        { "{\"actions\":[{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"\"}}]}",
          ERR_INVALID, "name" },
        { "{\"actions\":[{\"rename_alias\":{\"old_alias_name\":\"keep\",\"new_alias_name\":\".x\"}}]}",
          ERR_INVALID, "name" },
        { "{\"actions\":{}}", ERR_INVALID, "actions" },
        { "{}", ERR_INVALID, "actions" },
        { "[]", ERR_INVALID, "actions" },
    };
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            int rc = aliases(f, bad[i].body, &e);
            if (rc != bad[i].code)
                fail_msg("%s: got %d (%s), want %d", bad[i].body, rc, e.msg, bad[i].code);
            assert_msg_has(&e, bad[i].what);
            assert_aliases(f, NULL, "keep>c1");
        }
        catalog_handle_t *h;
        assert_int_equal(catalog_acquire(f->cat, "n1", &h, &e), ERR_NOT_FOUND);
        reopen(f);
        assert_aliases(f, NULL, "keep>c1");
    }
    assert_int_equal(catalog_aliases_update(f->cat, NULL, &e), ERR_INVALID);
}

static void test_catalog_alias_and_collection_names_collide(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "c1", VEC4);
    create_ok(f, "c2", VEC4);
    assert_int_equal(aliases(f, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"c1\","
                                "\"alias_name\":\"c2\"}}]}", &e), ERR_EXISTS);
    assert_msg_has(&e, "c2");
    assert_int_equal(aliases(f, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"c1\","
                                "\"alias_name\":\"al\"}}]}", &e), ERR_OK);
    /* a collection cannot take an alias' name */
    assert_int_equal(create(f, "al", VEC4, &e), ERR_EXISTS);
    assert_msg_has(&e, "al");
    assert_false(exists_on_disk(f, "al", NULL));
    reopen(f);
    assert_int_equal(create(f, "al", VEC4, &e), ERR_EXISTS);
    /* an alias to an alias is not a thing */
    assert_int_equal(aliases(f, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"al\","
                                "\"alias_name\":\"al2\"}}]}", &e), ERR_NOT_FOUND);
}

static void test_catalog_drop_removes_its_aliases(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "c1", VEC4);
    create_ok(f, "c2", VEC4);
    assert_int_equal(aliases(f, "{\"actions\":["
        "{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"a\"}},"
        "{\"create_alias\":{\"collection_name\":\"c2\",\"alias_name\":\"b\"}},"
        "{\"create_alias\":{\"collection_name\":\"c1\",\"alias_name\":\"c\"}}]}", &e), ERR_OK);
    assert_int_equal(catalog_drop(f->cat, "c1", &e), ERR_OK);
    assert_aliases(f, NULL, "b>c2");
    catalog_handle_t *h;
    assert_int_equal(catalog_acquire(f->cat, "a", &h, &e), ERR_NOT_FOUND);
    reopen(f);
    assert_aliases(f, NULL, "b>c2");
    /* the alias names are free, and a new c1 does not get them back */
    create_ok(f, "c1", VEC4);
    assert_aliases(f, "c1", "");
    create_ok(f, "a", VEC4);
    reopen(f);
    assert_aliases(f, NULL, "b>c2");
    assert_list(f, "a,c1,c2");
}

/* ---- update ------------------------------------------------------------ */

static void test_catalog_update_diffs_persist(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "u", "{\"vectors\":{\"size\":4,\"distance\":\"Dot\"},\"metadata\":{\"a\":1,\"b\":2}}");
    assert_int_equal(update(f, "u", "{\"hnsw_config\":{\"m\":48,\"ef_construct\":64},"
                                   "\"optimizers_config\":{\"indexing_threshold\":0,"
                                   "\"max_segment_size\":2048},"
                                   "\"params\":{\"replication_factor\":2,\"on_disk_payload\":false},"
                                   "\"metadata\":{\"b\":3,\"c\":4}}", &e), ERR_OK);
    for (int pass = 0; pass < 2; pass++) {
        cJSON *inf = info(f, "u");
        assert_int_equal(cfg_num(inf, "hnsw_config", "m"), 48);
        assert_int_equal(cfg_num(inf, "hnsw_config", "ef_construct"), 64);
        assert_int_equal(cfg_num(inf, "hnsw_config", "full_scan_threshold"), 10000);
        assert_int_equal(cfg_num(inf, "optimizer_config", "indexing_threshold"), 0);
        assert_int_equal(cfg_num(inf, "optimizer_config", "max_segment_size"), 2048);
        assert_int_equal(cfg_num(inf, "optimizer_config", "flush_interval_sec"), 5);
        assert_int_equal(cfg_num(inf, "params", "replication_factor"), 2);
        assert_true(cJSON_IsFalse(cfg_at(inf, "params", "on_disk_payload")));
        assert_int_equal(cfg_num(inf, "metadata", "a"), 1);
        assert_int_equal(cfg_num(inf, "metadata", "b"), 3);
        assert_int_equal(cfg_num(inf, "metadata", "c"), 4);
        /* vectors unchanged */
        const cJSON *vec = cJSON_GetObjectItemCaseSensitive(cfg_at(inf, "params", NULL), "vectors");
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(vec, "size")->valueint, 4);
        cJSON_Delete(inf);
        reopen(f);
    }
    /* null diffs leave things unchanged (Qdrant: "If none - it is left
     * unchanged"); a null metadata value removes the key */
    assert_int_equal(update(f, "u", "{\"hnsw_config\":null,\"optimizers_config\":{\"max_segment_size\":null},"
                                   "\"params\":null,\"quantization_config\":null,"
                                   "\"metadata\":{\"a\":null}}", &e), ERR_OK);
    cJSON *inf = info(f, "u");
    assert_int_equal(cfg_num(inf, "hnsw_config", "m"), 48);
    assert_int_equal(cfg_num(inf, "optimizer_config", "max_segment_size"), 2048);
    const cJSON *md = cfg_at(inf, "metadata", NULL);
    assert_null(cJSON_GetObjectItemCaseSensitive(md, "a"));
    assert_int_equal(cfg_num(inf, "metadata", "b"), 3);
    cJSON_Delete(inf);
    reopen(f);
    inf = info(f, "u");
    assert_null(cJSON_GetObjectItemCaseSensitive(cfg_at(inf, "metadata", NULL), "a"));
    cJSON *before = inf;

    /* failed updates change nothing, in memory or on disk */
    static const struct { const char *body; int code; const char *what; } bad[] = {
        { "{\"hnsw_config\":{\"m\":1},\"bogus\":1}", ERR_INVALID, "bogus" },
        { "{\"hnsw_config\":{\"m\":\"x\"}}", ERR_INVALID, "hnsw_config.m" },
        { "{\"optimizers_config\":{\"flush_interval_sec\":-1}}", ERR_INVALID, "flush_interval_sec" },
        { "{\"hnsw_config\":{\"m\":2},\"optimizers_config\":{\"zzz\":1}}", ERR_INVALID, "zzz" },
        { "{\"params\":{\"shard_number\":4}}", ERR_INVALID, "shard_number" },
        { "{\"params\":{\"replication_factor\":0}}", ERR_INVALID, "replication_factor" },
        { "{\"params\":7}", ERR_INVALID, "params" },
        { "{\"wal_config\":{\"wal_capacity_mb\":2}}", ERR_INVALID, "wal_config" },
        { "{\"vectors\":{\"\":{\"on_disk\":true}}}", ERR_UNSUPPORTED, "vectors" },
        { "{\"quantization_config\":{\"scalar\":{\"type\":\"int8\"}}}", ERR_UNSUPPORTED, "quantization" },
        { "{\"sparse_vectors\":{\"s\":{}}}", ERR_UNSUPPORTED, "sparse" },
        { "[]", ERR_INVALID, "body" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = update(f, "u", bad[i].body, &e);
        if (rc != bad[i].code)
            fail_msg("%s: got %d (%s), want %d", bad[i].body, rc, e.msg, bad[i].code);
        assert_msg_has(&e, bad[i].what);
        cJSON *now = info(f, "u");
        assert_true(cJSON_Compare(before, now, true));
        cJSON_Delete(now);
    }
    assert_int_equal(update(f, "missing", "{}", &e), ERR_NOT_FOUND);
    reopen(f);
    cJSON *now = info(f, "u");
    assert_true(cJSON_Compare(before, now, true));
    cJSON_Delete(now);
    cJSON_Delete(before);
}

/* ---- concurrency ------------------------------------------------------- */

enum { N_NAMES = 4, N_READERS = 4 };

typedef struct stress {
    fx_t *f;
    atomic_bool stop;
    atomic_long acquired, created, dropped;
} stress_t;

static const char *const stress_names[N_NAMES] = { "s0", "s1", "s2", "s3" };

/* cmocka's asserts longjmp and are not for other threads: abort instead */
#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
            abort();                                                            \
        }                                                                       \
    } while (0)

static int put_point_rc(coll_t *c, uint64_t id)
{
    op_t op = { .type = OP_UPSERT };
    float v[4] = { (float)id, 1, 0, 0 };
    op_point_t *p = op_point_add(&op);
    err_t e;
    p->id = ptid_num(id);
    op_vec_add(p, "", v, 4);
    int rc = coll_write(c, &op, NULL, &e);
    op_clear(&op);
    return rc;
}
static const char *const stress_alias[N_NAMES] = { "sa0", "sa1", "sa2", "sa3" };

static void *reader_main(void *arg)
{
    stress_t *s = arg;
    uint64_t r = (uint64_t)(uintptr_t)arg ^ (uint64_t)pthread_self();
    while (!atomic_load(&s->stop)) {
        size_t k = tu_rand(&r) % N_NAMES;
        const char *name = tu_rand(&r) % 2 ? stress_names[k] : stress_alias[k];
        catalog_handle_t *h = NULL;
        err_t e;
        int rc = catalog_acquire(s->f->cat, name, &h, &e);
        if (rc == ERR_OK) {
            coll_t *c = catalog_handle_coll(h);
            CHECK(c != NULL, "%s", name);
            size_t n;
            CHECK(coll_count(c, NULL, &n, &e) == ERR_OK, "%s", e.msg);
            if (tu_rand(&r) % 4 == 0) {
                rc = put_point_rc(c, tu_rand(&r) % 100);
                CHECK(rc == ERR_OK, "write to %s: %d", name, rc);
            }
            cJSON *inf = catalog_info_json(s->f->cat, h);
            CHECK(cJSON_GetObjectItemCaseSensitive(inf, "config") != NULL, "%s", name);
            cJSON_Delete(inf);
            catalog_release(h);
            atomic_fetch_add(&s->acquired, 1);
        } else {
            CHECK(rc == ERR_NOT_FOUND, "acquire %s: %d %s", name, rc, e.msg);
            CHECK(h == NULL, "%s", name);
        }
        cJSON *l = catalog_list_json(s->f->cat);
        cJSON_Delete(l);
        l = catalog_aliases_json(s->f->cat, tu_rand(&r) % 2 ? NULL : stress_names[k]);
        cJSON_Delete(l);
        (void)catalog_exists(s->f->cat, stress_names[k]);
    }
    return NULL;
}

static void *writer_main(void *arg)
{
    stress_t *s = arg;
    uint64_t r = 0x5eed ^ (uint64_t)pthread_self();
    while (!atomic_load(&s->stop)) {
        size_t k = tu_rand(&r) % N_NAMES;
        err_t e;
        int rc;
        switch (tu_rand(&r) % 4) {
        case 0:
        case 1:
            rc = create(s->f, stress_names[k], VEC4, &e);
            if (rc == ERR_OK)
                atomic_fetch_add(&s->created, 1);
            else if (rc != ERR_EXISTS && rc != ERR_BUSY)
                CHECK(false, "create %s: %d %s", stress_names[k], rc, e.msg);
            break;
        case 2:
            rc = catalog_drop(s->f->cat, stress_names[k], &e);
            if (rc == ERR_OK)
                atomic_fetch_add(&s->dropped, 1);
            else if (rc != ERR_NOT_FOUND)
                CHECK(false, "drop %s: %d %s", stress_names[k], rc, e.msg);
            break;
        default: {
            char body[256];
            snprintf(body, sizeof(body),
                     "{\"actions\":[{\"create_alias\":{\"collection_name\":\"%s\","
                     "\"alias_name\":\"%s\"}}]}", stress_names[k], stress_alias[k]);
            rc = aliases(s->f, body, &e);
            if (rc != ERR_OK && rc != ERR_NOT_FOUND)
                CHECK(false, "alias: %d %s", rc, e.msg);
            rc = update(s->f, stress_names[k], "{\"hnsw_config\":{\"m\":12}}", &e);
            if (rc != ERR_OK && rc != ERR_NOT_FOUND)
                CHECK(false, "update: %d %s", rc, e.msg);
            break;
        }
        }
    }
    return NULL;
}

static void test_catalog_concurrent_acquire_release_with_create_drop(void **state)
{
    fx_t *f = *state;
    stress_t s = { .f = f };
    pthread_t readers[N_READERS], writers[2];

    for (int i = 0; i < N_READERS; i++)
        assert_int_equal(pthread_create(&readers[i], NULL, reader_main, &s), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&writers[i], NULL, writer_main, &s), 0);
    struct timespec ts = { .tv_sec = 3, .tv_nsec = 0 };
    nanosleep(&ts, NULL);
    atomic_store(&s.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(writers[i], NULL);
    for (int i = 0; i < N_READERS; i++)
        pthread_join(readers[i], NULL);
    fprintf(stderr, "stress: %ld acquires, %ld creates, %ld drops\n", atomic_load(&s.acquired),
            atomic_load(&s.created), atomic_load(&s.dropped));
    assert_true(atomic_load(&s.created) > 0);
    assert_true(atomic_load(&s.dropped) > 0);
    assert_true(atomic_load(&s.acquired) > 0);

    /* what the catalog says is what is on disk, and survives a restart */
    char *before = list_names(f);
    for (size_t k = 0; k < N_NAMES; k++)
        assert_int_equal(catalog_exists(f->cat, stress_names[k]),
                         exists_on_disk(f, stress_names[k], "config.json"));
    reopen(f);
    char *after = list_names(f);
    assert_string_equal(before, after);
    for (size_t k = 0; k < N_NAMES; k++)
        if (!catalog_exists(f->cat, stress_names[k]))
            assert_false(exists_on_disk(f, stress_names[k], NULL));
    free(before);
    free(after);
}

/* ---- payload indexes ------------------------------------------------------ */

/* Test JSON is written with single quotes; this turns them into double. */
static cJSON *JQ(const char *text)
{
    char *d = strdup(text);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    cJSON *j = J(d);
    free(d);
    return j;
}

static void json_is(const cJSON *got, const char *want_sq)
{
    cJSON *want = JQ(want_sq);
    if (!cJSON_Compare(got, want, true)) {
        char *g = cJSON_PrintUnformatted(got), *w = cJSON_PrintUnformatted(want);
        fprintf(stderr, "got:  %s\nwant: %s\n", g ? g : "(null)", w);
        free(g);
        free(w);
        cJSON_Delete(want);
        fail_msg("JSON differs");
    }
    cJSON_Delete(want);
}

/* catalog_index_create on a collection or alias with a CreateFieldIndex
 * body in single-quoted JSON. */
static int index_create(fx_t *f, const char *name, const char *body_sq, err_t *e)
{
    catalog_handle_t *h = acquire_ok(f, name);
    cJSON *b = JQ(body_sq);
    memset(e, 0, sizeof(*e));
    int rc = catalog_index_create(f->cat, h, b, e);
    cJSON_Delete(b);
    catalog_release(h);
    return rc;
}

static void index_ok(fx_t *f, const char *name, const char *body_sq)
{
    err_t e;
    if (index_create(f, name, body_sq, &e) != ERR_OK)
        fail_msg("index %s: %s", body_sq, e.msg);
}

static int index_delete(fx_t *f, const char *name, const char *field, err_t *e)
{
    catalog_handle_t *h = acquire_ok(f, name);
    memset(e, 0, sizeof(*e));
    int rc = catalog_index_delete(f->cat, h, field, e);
    catalog_release(h);
    return rc;
}

/* info(name).payload_schema, detached; caller deletes. */
static cJSON *schema_of(fx_t *f, const char *name)
{
    cJSON *inf = info(f, name);
    cJSON *s = cJSON_DetachItemFromObjectCaseSensitive(inf, "payload_schema");
    /* never inside CollectionConfig */
    assert_null(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(inf, "config"),
                                                 "payload_schema"));
    cJSON_Delete(inf);
    assert_true(cJSON_IsObject(s));
    return s;
}

static void schema_is(fx_t *f, const char *name, const char *want_sq)
{
    cJSON *s = schema_of(f, name);
    json_is(s, want_sq);
    cJSON_Delete(s);
}

/* Upsert point id (4-dim vector) with a payload given as JSON text. */
static void put_payload(coll_t *c, uint64_t id, const char *payload_sq)
{
    op_t op = { .type = OP_UPSERT };
    float v[4] = { 1, 0, 0, 0 };
    op_point_t *p = op_point_add(&op);
    cJSON *j = JQ(payload_sq);
    err_t e;
    p->id = ptid_num(id);
    p->payload = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    op_vec_add(p, "", v, 4);
    if (coll_write(c, &op, NULL, &e) != ERR_OK)
        fail_msg("coll_write: %s", e.msg);
    op_clear(&op);
}

static cJSON *config_on_disk(fx_t *f, const char *name)
{
    char *p = path_of(f, name, "config.json");
    FILE *fp = fopen(p, "r");
    static char buf[65536];
    assert_non_null(fp);
    size_t got = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[got] = '\0';
    fclose(fp);
    free(p);
    return J(buf);
}

static void test_catalog_index_every_form_persists(void **state)
{
    fx_t *f = *state;
    create_ok(f, "ix", VEC4);
    schema_is(f, "ix", "{}");
    /* the string form of every PayloadSchemaType */
    static const char *const types[] = { "keyword", "integer", "float", "geo", "text", "bool",
                                         "datetime", "uuid" };
    for (size_t i = 0; i < 8; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{'field_name': 's_%s', 'field_schema': '%s'}", types[i], types[i]);
        index_ok(f, "ix", body);
    }
    /* every *IndexParams with each of its fields set */
    index_ok(f, "ix", "{'field_name': 'kw', 'field_schema': {'type': 'keyword', 'is_tenant': true,"
                      " 'on_disk': false, 'memory': 'cached', 'enable_hnsw': false, 'prefix': true}}");
    index_ok(f, "ix", "{'field_name': 'int', 'field_schema': {'enable_hnsw': true, 'memory': 'cold',"
                      " 'on_disk': true, 'is_principal': true, 'range': false, 'lookup': true,"
                      " 'type': 'integer'}}");
    index_ok(f, "ix", "{'field_name': 'fl', 'field_schema': {'type': 'float', 'is_principal': false,"
                      " 'on_disk': true, 'memory': 'pinned', 'enable_hnsw': true}}");
    index_ok(f, "ix", "{'field_name': 'geo', 'field_schema': {'type': 'geo', 'on_disk': false,"
                      " 'memory': 'cold', 'enable_hnsw': false}}");
    index_ok(f, "ix", "{'field_name': 'txt', 'field_schema': {'type': 'text', 'tokenizer': 'multilingual',"
                      " 'min_token_len': 2, 'max_token_len': 20, 'lowercase': false, 'ascii_folding': true,"
                      " 'phrase_matching': true, 'stopwords': {'custom': ['the', 'a', 'the'],"
                      " 'languages': ['en', 'french', 'english']}, 'on_disk': true, 'memory': 'cached',"
                      " 'stemmer': {'type': 'snowball', 'language': 'de'}, 'enable_hnsw': false}}");
    index_ok(f, "ix", "{'field_name': 'txt2', 'field_schema': {'type': 'text', 'stopwords': 'ru',"
                      " 'stemmer': {'type': 'none'}}}");
    index_ok(f, "ix", "{'field_name': 'b', 'field_schema': {'type': 'bool', 'on_disk': true,"
                      " 'memory': 'cold', 'enable_hnsw': true}}");
    index_ok(f, "ix", "{'field_name': 'dt', 'field_schema': {'type': 'datetime', 'is_principal': true,"
                      " 'on_disk': false, 'memory': 'pinned', 'enable_hnsw': false}}");
    index_ok(f, "ix", "{'field_name': 'u', 'field_schema': {'type': 'uuid', 'is_tenant': false,"
                      " 'on_disk': true, 'memory': 'cached', 'enable_hnsw': true}}");
    /* the bare object of each type: Qdrant reports the fields it always
     * serialises (integer lookup/range/is_principal, float and datetime
     * is_principal: null; text tokenizer: "word"); nulls are absent */
    index_ok(f, "ix", "{'field_name': 'o_kw', 'field_schema': {'type': 'keyword', 'is_tenant': null}}");
    index_ok(f, "ix", "{'field_name': 'o_int', 'field_schema': {'type': 'integer'}}");
    index_ok(f, "ix", "{'field_name': 'o_fl', 'field_schema': {'type': 'float', 'memory': null}}");
    index_ok(f, "ix", "{'field_name': 'o_txt', 'field_schema': {'type': 'text', 'stopwords': null,"
                      " 'stemmer': null, 'min_token_len': null}}");
    index_ok(f, "ix", "{'field_name': 'o_dt', 'field_schema': {'type': 'datetime'}}");
    /* key paths */
    index_ok(f, "ix", "{'field_name': 'meta.tags[]', 'field_schema': 'keyword'}");
    index_ok(f, "ix", "{'field_name': 'a.\\'odd key\\'.b', 'field_schema': 'integer'}");

    const char *want =
        "{'s_keyword': {'data_type': 'keyword', 'points': 0},"
        " 's_integer': {'data_type': 'integer', 'points': 0},"
        " 's_float': {'data_type': 'float', 'points': 0},"
        " 's_geo': {'data_type': 'geo', 'points': 0},"
        " 's_text': {'data_type': 'text', 'points': 0},"
        " 's_bool': {'data_type': 'bool', 'points': 0},"
        " 's_datetime': {'data_type': 'datetime', 'points': 0},"
        " 's_uuid': {'data_type': 'uuid', 'points': 0},"
        " 'kw': {'data_type': 'keyword', 'params': {'type': 'keyword', 'is_tenant': true, 'on_disk': false,"
        "  'memory': 'cached', 'enable_hnsw': false, 'prefix': true}, 'points': 0},"
        " 'int': {'data_type': 'integer', 'params': {'type': 'integer', 'lookup': true, 'range': false,"
        "  'is_principal': true, 'on_disk': true, 'memory': 'cold', 'enable_hnsw': true}, 'points': 0},"
        " 'fl': {'data_type': 'float', 'params': {'type': 'float', 'is_principal': false, 'on_disk': true,"
        "  'memory': 'pinned', 'enable_hnsw': true}, 'points': 0},"
        " 'geo': {'data_type': 'geo', 'params': {'type': 'geo', 'on_disk': false, 'memory': 'cold',"
        "  'enable_hnsw': false}, 'points': 0},"
        " 'txt': {'data_type': 'text', 'params': {'type': 'text', 'tokenizer': 'multilingual',"
        "  'min_token_len': 2, 'max_token_len': 20, 'lowercase': false, 'ascii_folding': true,"
        "  'phrase_matching': true, 'stopwords': {'languages': ['english', 'french'], 'custom': ['a', 'the']},"
        "  'on_disk': true, 'memory': 'cached', 'stemmer': {'type': 'snowball', 'language': 'german'},"
        "  'enable_hnsw': false}, 'points': 0},"
        " 'txt2': {'data_type': 'text', 'params': {'type': 'text', 'tokenizer': 'word', 'stopwords': 'russian',"
        "  'stemmer': {'type': 'none'}}, 'points': 0},"
        " 'b': {'data_type': 'bool', 'params': {'type': 'bool', 'on_disk': true, 'memory': 'cold',"
        "  'enable_hnsw': true}, 'points': 0},"
        " 'dt': {'data_type': 'datetime', 'params': {'type': 'datetime', 'is_principal': true,"
        "  'on_disk': false, 'memory': 'pinned', 'enable_hnsw': false}, 'points': 0},"
        " 'u': {'data_type': 'uuid', 'params': {'type': 'uuid', 'is_tenant': false, 'on_disk': true,"
        "  'memory': 'cached', 'enable_hnsw': true}, 'points': 0},"
        " 'o_kw': {'data_type': 'keyword', 'params': {'type': 'keyword'}, 'points': 0},"
        " 'o_int': {'data_type': 'integer', 'params': {'type': 'integer', 'lookup': null, 'range': null,"
        "  'is_principal': null}, 'points': 0},"
        " 'o_fl': {'data_type': 'float', 'params': {'type': 'float', 'is_principal': null}, 'points': 0},"
        " 'o_txt': {'data_type': 'text', 'params': {'type': 'text', 'tokenizer': 'word'}, 'points': 0},"
        " 'o_dt': {'data_type': 'datetime', 'params': {'type': 'datetime', 'is_principal': null}, 'points': 0},"
        " 'meta.tags[]': {'data_type': 'keyword', 'points': 0},"
        " 'a.\\'odd key\\'.b': {'data_type': 'integer', 'points': 0}}";
    schema_is(f, "ix", want);
    cJSON *before = info(f, "ix");
    /* on disk: its own section of config.json, beside the CollectionConfig */
    cJSON *disk = config_on_disk(f, "ix");
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(disk, "payload_schema");
    assert_true(cJSON_IsObject(sec));
    assert_int_equal(cJSON_GetArraySize(sec), 24);
    json_is(cJSON_GetObjectItemCaseSensitive(sec, "s_geo"), "'geo'");
    json_is(cJSON_GetObjectItemCaseSensitive(sec, "o_kw"), "{'type': 'keyword'}");
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(disk, "params")));
    cJSON_Delete(disk);
    for (int pass = 0; pass < 2; pass++) {
        reopen(f);
        cJSON *after = info(f, "ix");
        assert_true(cJSON_Compare(before, after, true));
        cJSON_Delete(after);
    }
    cJSON_Delete(before);
    /* a config update keeps the indexes (both live in config.json) */
    err_t e;
    assert_int_equal(update(f, "ix", "{\"hnsw_config\":{\"m\":8}}", &e), ERR_OK);
    reopen(f);
    cJSON *s = schema_of(f, "ix");
    assert_int_equal(cJSON_GetArraySize(s), 24);
    cJSON_Delete(s);
}

static void test_catalog_index_replace_delete(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "r", VEC4);
    assert_int_equal(aliases(f, "{\"actions\":[{\"create_alias\":{\"collection_name\":\"r\","
                                "\"alias_name\":\"ra\"}}]}", &e), ERR_OK);
    index_ok(f, "ra", "{'field_name': 'a', 'field_schema': 'keyword'}"); /* through the alias */
    index_ok(f, "r", "{'field_name': 'b', 'field_schema': 'integer'}");
    index_ok(f, "r", "{'field_name': 'c', 'field_schema': {'type': 'bool'}}");
    schema_is(f, "r", "{'a': {'data_type': 'keyword', 'points': 0}, 'b': {'data_type': 'integer', 'points': 0},"
                      " 'c': {'data_type': 'bool', 'params': {'type': 'bool'}, 'points': 0}}");
    /* a new definition replaces the old one, type and all */
    index_ok(f, "r", "{'field_name': 'a', 'field_schema': {'type': 'text', 'lowercase': true}}");
    index_ok(f, "r", "{'field_name': 'c', 'field_schema': 'float'}");
    index_ok(f, "r", "{'field_name': 'c', 'field_schema': 'float'}"); /* same again: no-op */
    const char *want = "{'a': {'data_type': 'text', 'params': {'type': 'text', 'tokenizer': 'word',"
                       " 'lowercase': true}, 'points': 0}, 'b': {'data_type': 'integer', 'points': 0},"
                       " 'c': {'data_type': 'float', 'points': 0}}";
    schema_is(f, "r", want);
    reopen(f);
    schema_is(f, "ra", want);
    /* delete; deleting what is not there succeeds (Qdrant does the same) */
    assert_int_equal(index_delete(f, "ra", "b", &e), ERR_OK);
    assert_int_equal(index_delete(f, "r", "b", &e), ERR_OK);
    assert_int_equal(index_delete(f, "r", "never", &e), ERR_OK);
    schema_is(f, "r", "{'a': {'data_type': 'text', 'params': {'type': 'text', 'tokenizer': 'word',"
                      " 'lowercase': true}, 'points': 0}, 'c': {'data_type': 'float', 'points': 0}}");
    assert_int_equal(index_delete(f, "r", "a", &e), ERR_OK);
    assert_int_equal(index_delete(f, "r", "c", &e), ERR_OK);
    schema_is(f, "r", "{}");
    reopen(f);
    schema_is(f, "r", "{}");
    cJSON *disk = config_on_disk(f, "r");
    assert_null(cJSON_GetObjectItemCaseSensitive(disk, "payload_schema"));
    cJSON_Delete(disk);
    /* an invalid key path cannot name an index */
    assert_int_equal(index_delete(f, "r", "", &e), ERR_INVALID);
    assert_int_equal(index_delete(f, "r", "a..b", &e), ERR_INVALID);
    assert_msg_has(&e, "field_name");

    /* a handle held across the drop of its collection */
    index_ok(f, "r", "{'field_name': 'a', 'field_schema': 'keyword'}");
    catalog_handle_t *h = acquire_ok(f, "r");
    assert_int_equal(catalog_drop(f->cat, "r", &e), ERR_OK);
    cJSON *b = JQ("{'field_name': 'x', 'field_schema': 'keyword'}");
    assert_int_equal(catalog_index_create(f->cat, h, b, &e), ERR_NOT_FOUND);
    assert_msg_has(&e, "`r`");
    assert_int_equal(catalog_index_delete(f->cat, h, "a", &e), ERR_NOT_FOUND);
    cJSON_Delete(b);
    catalog_release(h);
    /* a new collection of that name starts without indexes */
    create_ok(f, "r", VEC4);
    schema_is(f, "r", "{}");
}

static void test_catalog_index_errors(void **state)
{
    fx_t *f = *state;
    static const struct { const char *body, *frag, *frag2; } bad[] = {
        { "[]", "JSON object", NULL },
        { "{}", "field_name", NULL },
        { "{'field_schema': 'keyword'}", "field_name", NULL },
        { "{'field_name': 1, 'field_schema': 'keyword'}", "field_name", "string" },
        { "{'field_name': '', 'field_schema': 'keyword'}", "field_name", "key path" },
        { "{'field_name': 'a[', 'field_schema': 'keyword'}", "field_name", "key path" },
        { "{'field_name': 'a'}", "field_schema", "auto-detect" },
        { "{'field_name': 'a', 'field_schema': null}", "field_schema", "auto-detect" },
        { "{'field_name': 'a', 'field_schema': 'keyword', 'wait': true}", "unknown field", "\"wait\"" },
        { "{'field_name': 'a', 'field_schema': 'Keyword'}", "field_schema", "\"Keyword\"" },
        { "{'field_name': 'a', 'field_schema': 'string'}", "field_schema", "\"string\"" },
        { "{'field_name': 'a', 'field_schema': 7}", "field_schema", "type name" },
        { "{'field_name': 'a', 'field_schema': ['keyword']}", "field_schema", NULL },
        { "{'field_name': 'a', 'field_schema': {}}", "field_schema", "\"type\"" },
        { "{'field_name': 'a', 'field_schema': {'is_tenant': true}}", "field_schema", "\"type\"" },
        { "{'field_name': 'a', 'field_schema': {'type': null}}", "field_schema.type", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'vector'}}", "field_schema.type", "\"vector\"" },
        { "{'field_name': 'a', 'field_schema': {'type': 'keyword', 'bogus': 1}}", "field_schema", "\"bogus\"" },
        /* a field of another type's params */
        { "{'field_name': 'a', 'field_schema': {'type': 'keyword', 'lookup': true}}", "\"lookup\"", "keyword" },
        { "{'field_name': 'a', 'field_schema': {'type': 'integer', 'is_tenant': true}}", "\"is_tenant\"", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'float', 'range': true}}", "\"range\"", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'geo', 'is_principal': true}}", "\"is_principal\"", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'bool', 'prefix': true}}", "\"prefix\"", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'datetime', 'is_tenant': true}}", "\"is_tenant\"", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'uuid', 'is_principal': true}}", "\"is_principal\"", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'keyword', 'tokenizer': 'word'}}", "\"tokenizer\"", NULL },
        /* value types and enums */
        { "{'field_name': 'a', 'field_schema': {'type': 'keyword', 'is_tenant': 1}}", "field_schema.is_tenant", "boolean" },
        { "{'field_name': 'a', 'field_schema': {'type': 'keyword', 'on_disk': 'yes'}}", "field_schema.on_disk", "boolean" },
        { "{'field_name': 'a', 'field_schema': {'type': 'keyword', 'enable_hnsw': 0}}", "field_schema.enable_hnsw", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'keyword', 'memory': 'hot'}}", "field_schema.memory", "cold" },
        { "{'field_name': 'a', 'field_schema': {'type': 'uuid', 'memory': true}}", "field_schema.memory", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'integer', 'lookup': 'true'}}", "field_schema.lookup", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'integer', 'lookup': false, 'range': false}}",
          "field_schema.lookup", "both disabled" },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'tokenizer': 'ngram'}}", "field_schema.tokenizer", "whitespace" },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'tokenizer': null}}", "field_schema.tokenizer", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'min_token_len': -1}}", "field_schema.min_token_len", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'max_token_len': 2.5}}", "field_schema.max_token_len", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'lowercase': 'no'}}", "field_schema.lowercase", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'ascii_folding': 1}}", "field_schema.ascii_folding", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'phrase_matching': []}}", "field_schema.phrase_matching", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stopwords': 'klingon'}}", "field_schema.stopwords", "klingon" },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stopwords': 3}}", "field_schema.stopwords", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stopwords': {'langs': ['en']}}}",
          "field_schema.stopwords", "\"langs\"" },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stopwords': {'languages': 'english'}}}",
          "field_schema.stopwords.languages", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stopwords': {'languages': ['english', 'elvish']}}}",
          "field_schema.stopwords.languages[1]", "elvish" },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stopwords': {'custom': ['a', 1]}}}",
          "field_schema.stopwords.custom[1]", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stemmer': 'english'}}", "field_schema.stemmer", NULL },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stemmer': {'language': 'english'}}}",
          "field_schema.stemmer", "\"type\"" },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stemmer': {'type': 'porter'}}}",
          "field_schema.stemmer.type", "snowball" },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stemmer': {'type': 'snowball'}}}",
          "field_schema.stemmer", "\"language\"" },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stemmer': {'type': 'snowball', 'language': 'chinese'}}}",
          "field_schema.stemmer.language", "chinese" },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stemmer': {'type': 'none', 'language': 'english'}}}",
          "field_schema.stemmer", "\"language\"" },
        { "{'field_name': 'a', 'field_schema': {'type': 'text', 'stemmer': {'type': 'snowball', 'language': 'en', 'x': 1}}}",
          "field_schema.stemmer", "\"x\"" },
    };
    err_t e;
    create_ok(f, "v", VEC4);
    index_ok(f, "v", "{'field_name': 'keep', 'field_schema': 'keyword'}");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (index_create(f, "v", bad[i].body, &e) != ERR_INVALID)
            fail_msg("%s: accepted or not ERR_INVALID (%s)", bad[i].body, e.msg);
        if (strstr(e.msg, bad[i].frag) == NULL || (bad[i].frag2 && strstr(e.msg, bad[i].frag2) == NULL))
            fail_msg("%s: message \"%s\" lacks \"%s\" / \"%s\"", bad[i].body, e.msg, bad[i].frag,
                     bad[i].frag2 ? bad[i].frag2 : "");
    }
    /* nothing changed, on disk either */
    reopen(f);
    schema_is(f, "v", "{'keep': {'data_type': 'keyword', 'points': 0}}");
    /* catalog_index_create on a non-object body pointer */
    catalog_handle_t *h = acquire_ok(f, "v");
    assert_int_equal(catalog_index_create(f->cat, h, NULL, &e), ERR_INVALID);
    catalog_release(h);
}

static void test_catalog_index_points_counted(void **state)
{
    fx_t *f = *state;
    err_t e;
    create_ok(f, "pc", VEC4);
    index_ok(f, "pc", "{'field_name': 'color', 'field_schema': 'keyword'}");
    index_ok(f, "pc", "{'field_name': 'meta.n', 'field_schema': {'type': 'integer', 'range': true}}");
    index_ok(f, "pc", "{'field_name': 'tags[]', 'field_schema': 'keyword'}");
    index_ok(f, "pc", "{'field_name': 'nobody', 'field_schema': 'text'}");
    catalog_handle_t *h = acquire_ok(f, "pc");
    coll_t *c = catalog_handle_coll(h);
    put_payload(c, 1, "{'color': 'red', 'meta': {'n': 1}, 'tags': ['a', 'b']}");
    put_payload(c, 2, "{'color': ['blue', 'green'], 'meta': {'n': null}, 'tags': []}");
    put_payload(c, 3, "{'color': null, 'meta': [{'n': 3}], 'tags': ['c']}");
    put_payload(c, 4, "{'color': [], 'meta': {'m': 1}}");
    put_payload(c, 5, "{'color': 5}");
    put_payload(c, 6, "{}");
    catalog_release(h);
    cJSON *s = schema_of(f, "pc");
    /* color: 1, 2 and 5 have a value there (null and [] are no value);
     * veclog does not look at the value's type, which Qdrant's index does
     * (it would count 2) */
    json_is(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "color"), "points"), "3");
    /* meta.n: only 1 ("meta.n" does not descend into point 3's array; "meta[].n" would) */
    json_is(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "meta.n"), "points"), "1");
    json_is(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "tags[]"), "points"), "2");
    json_is(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "nobody"), "points"), "0");
    cJSON_Delete(s);
    /* counts follow deletes and payload changes, and survive a restart */
    h = acquire_ok(f, "pc");
    op_t op = { .type = OP_DELETE };
    op_point_add(&op)->id = ptid_num(1);
    assert_int_equal(coll_write(catalog_handle_coll(h), &op, NULL, &e), ERR_OK);
    op_clear(&op);
    put_payload(catalog_handle_coll(h), 6, "{'color': 'x', 'tags': ['z'], 'nobody': 'here'}");
    catalog_release(h);
    reopen(f);
    s = schema_of(f, "pc");
    json_is(s, "{'color': {'data_type': 'keyword', 'points': 3},"
               " 'meta.n': {'data_type': 'integer', 'params': {'type': 'integer', 'lookup': null,"
               "  'range': true, 'is_principal': null}, 'points': 0},"
               " 'tags[]': {'data_type': 'keyword', 'points': 2},"
               " 'nobody': {'data_type': 'text', 'points': 1}}");
    cJSON_Delete(s);
}

/* A config.json whose payload_schema holds an entry this version cannot
 * read: the entry is dropped with a warning, the collection opens. */
static void test_catalog_index_bad_entry_on_disk_dropped(void **state)
{
    fx_t *f = *state;
    create_ok(f, "d", VEC4);
    index_ok(f, "d", "{'field_name': 'good', 'field_schema': {'type': 'uuid'}}");
    catalog_close(f->cat);
    f->cat = NULL;
    cJSON *disk = config_on_disk(f, "d");
    cJSON *sec = cJSON_GetObjectItemCaseSensitive(disk, "payload_schema");
    cJSON_AddItemToObject(sec, "bad", JQ("{'type': 'vector'}"));
    cJSON_AddItemToObject(sec, "worse", cJSON_CreateNumber(1));
    cJSON_AddItemToObject(sec, "a..b", cJSON_CreateString("keyword"));
    char *text = cJSON_Print(disk), *p = path_of(f, "d", "config.json");
    FILE *fp = fopen(p, "w");
    fputs(text, fp);
    fclose(fp);
    free(text);
    free(p);
    cJSON_Delete(disk);
    f->cat = fx_open(f);
    schema_is(f, "d", "{'good': {'data_type': 'uuid', 'params': {'type': 'uuid'}, 'points': 0}}");
    /* and a payload_schema section that is not an object */
    catalog_close(f->cat);
    f->cat = NULL;
    disk = config_on_disk(f, "d");
    cJSON_ReplaceItemInObjectCaseSensitive(disk, "payload_schema", cJSON_CreateArray());
    text = cJSON_Print(disk);
    p = path_of(f, "d", "config.json");
    fp = fopen(p, "w");
    fputs(text, fp);
    fclose(fp);
    free(text);
    free(p);
    cJSON_Delete(disk);
    f->cat = fx_open(f);
    schema_is(f, "d", "{}");
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_catalog_create_unnamed_vector_info_shape),
        T(test_catalog_create_named_vectors),
        T(test_catalog_create_each_distance),
        T(test_catalog_config_diffs_stored_and_reported),
        T(test_catalog_list_sorted_and_exists),
        T(test_catalog_create_twice_exists),
        T(test_catalog_bad_bodies_invalid),
        T(test_catalog_unsupported_features),
        T(test_catalog_bad_names),
        T(test_catalog_drop_removes_files),
        T(test_catalog_drop_while_handle_held),
        T(test_catalog_recreate_while_dropped_handle_held),
        T(test_catalog_create_persists_across_restart),
        T(test_catalog_second_open_busy),
        T(test_catalog_open_creates_missing_storage),
        T(test_catalog_interrupted_create_removed_at_open),
        T(test_catalog_interrupted_drop_finished_at_open),
        T(test_catalog_aliases_create_delete_rename_in_one_batch),
        T(test_catalog_aliases_batch_is_atomic),
        T(test_catalog_alias_and_collection_names_collide),
        T(test_catalog_drop_removes_its_aliases),
        T(test_catalog_update_diffs_persist),
        T(test_catalog_concurrent_acquire_release_with_create_drop),
        T(test_catalog_index_every_form_persists),
        T(test_catalog_index_replace_delete),
        T(test_catalog_index_errors),
        T(test_catalog_index_points_counted),
        T(test_catalog_index_bad_entry_on_disk_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
#undef T
}
