/*
 * test_config.c - cmd/config: defaults, the YAML file, the environment,
 * their precedence, every kind of rejection, and dump/reload.
 *
 * Runs from the repository root (configs/veclog.yaml is read by path).
 * Environment overrides are tested with envp arrays built here; the real
 * environment is never read or changed.  Every expected failure also checks
 * that config_load left the output zeroed (nothing to free).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <yaml.h>

#include "cmd/config.h"
#include "tests/testutil.h"

#define DEFAULT_FILE "configs/veclog.yaml"

static char *tmpdir;

static int group_setup(void **state)
{
    (void)state;
    tmpdir = tu_tmpdir("config");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rmrf(tmpdir);
    free(tmpdir);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static char *tmp_path(void)
{
    static unsigned counter;
    char *path;

    if (asprintf(&path, "%s/cfg%u.yaml", tmpdir, counter++) < 0)
        abort();
    return path;
}

static char *write_yaml(const char *text)
{
    char *path = tmp_path();
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

static void load_ok(const char *path, char *const *envp, config_t *cfg)
{
    err_t err = {0};

    if (config_load(path, envp, cfg, &err) != ERR_OK)
        fail_msg("config_load: %s", err.msg);
}

/* Load yaml (NULL = no file) and envp; text may be NULL. */
static void load_yaml_ok(const char *yaml, char *const *envp, config_t *cfg)
{
    char *path = yaml != NULL ? write_yaml(yaml) : NULL;

    load_ok(path, envp, cfg);
    free(path);
}

/* Expect failure with `code`; the message is left in err. */
static void load_yaml_fail(const char *yaml, char *const *envp, int code, err_t *err)
{
    static const config_t zero;
    char *path = yaml != NULL ? write_yaml(yaml) : NULL;
    config_t cfg;
    int rc;

    memset(&cfg, 0xa5, sizeof(cfg)); /* must come back zeroed */
    rc = config_load(path, envp, &cfg, err);
    if (rc != code)
        fail_msg("config_load returned %d, want %d (%s)", rc, code, rc ? err->msg : "ok");
    assert_memory_equal(&cfg, &zero, sizeof(cfg));
    assert_int_equal(err->code, code);
    free(path);
}

static void expect_invalid(const char *yaml, char *const *envp, const char *needle)
{
    err_t err = {0};

    load_yaml_fail(yaml, envp, ERR_INVALID, &err);
    assert_contains(err.msg, needle);
}

static const char *prop(const config_t *c, const char *key)
{
    size_t i;

    for (i = 0; i < c->kafka.n_properties; i++)
        if (strcmp(c->kafka.properties[i].key, key) == 0)
            return c->kafka.properties[i].value;
    return NULL;
}

static void eq_str(const char *a, const char *b, const char *what)
{
    if ((a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0))
        fail_msg("%s: \"%s\" != \"%s\"", what, a ? a : "(null)", b ? b : "(null)");
}

#define EQ_STR(f) eq_str(a->f, b->f, #f)
#define EQ_NUM(f)                                                                     \
    do {                                                                              \
        if (a->f != b->f)                                                             \
            fail_msg("%s: %llu != %llu", #f, (unsigned long long)a->f,                \
                     (unsigned long long)b->f);                                       \
    } while (0)

/* Field by field, independent of config.c's table, so a wrong offset in the
 * table shows up here. */
static void assert_config_equal(const config_t *a, const config_t *b)
{
    size_t i;

    EQ_STR(log_level);
    EQ_STR(storage.storage_path);
    EQ_STR(storage.snapshots_path);
    EQ_NUM(storage.on_disk_payload);
    EQ_NUM(storage.wal.wal_capacity_mb);
    EQ_NUM(storage.wal.wal_segments_ahead);
    EQ_NUM(storage.wal.sync_mode);
    EQ_NUM(storage.wal.sync_interval_ms);
    EQ_NUM(storage.performance.max_search_threads);
    if (a->storage.optimizers.deleted_threshold != b->storage.optimizers.deleted_threshold)
        fail_msg("deleted_threshold: %.17g != %.17g", a->storage.optimizers.deleted_threshold,
                 b->storage.optimizers.deleted_threshold);
    EQ_NUM(storage.optimizers.vacuum_min_vector_number);
    EQ_NUM(storage.optimizers.default_segment_number);
    EQ_NUM(storage.optimizers.max_segment_size_kb);
    EQ_NUM(storage.optimizers.memmap_threshold_kb);
    EQ_NUM(storage.optimizers.indexing_threshold_kb);
    EQ_NUM(storage.optimizers.flush_interval_sec);
    EQ_NUM(storage.optimizers.max_optimization_threads);
    EQ_NUM(storage.hnsw_index.m);
    EQ_NUM(storage.hnsw_index.ef_construct);
    EQ_NUM(storage.hnsw_index.full_scan_threshold_kb);
    EQ_NUM(storage.hnsw_index.max_indexing_threads);
    EQ_NUM(storage.hnsw_index.on_disk);
    EQ_NUM(storage.hnsw_index.payload_m);
    EQ_STR(service.host);
    EQ_NUM(service.http_port);
    EQ_NUM(service.max_request_size_mb);
    EQ_NUM(service.max_workers);
    EQ_NUM(service.enable_cors);
    EQ_STR(service.api_key);
    EQ_STR(service.read_only_api_key);
    EQ_NUM(service.request_timeout_sec);
    EQ_STR(kafka.brokers);
    EQ_NUM(kafka.n_topics);
    for (i = 0; i < a->kafka.n_topics; i++)
        EQ_STR(kafka.topics[i]);
    EQ_STR(kafka.group_id);
    EQ_STR(kafka.auto_offset_reset);
    EQ_NUM(kafka.batch_size);
    EQ_NUM(kafka.batch_timeout_ms);
    EQ_NUM(kafka.n_properties);
    for (i = 0; i < a->kafka.n_properties; i++) {
        EQ_STR(kafka.properties[i].key);
        EQ_STR(kafka.properties[i].value);
    }
    EQ_STR(dlq.topic);
}

static char *dump_to_file(const config_t *cfg)
{
    char *path = tmp_path();
    FILE *f = fopen(path, "w");
    err_t err = {0};

    assert_non_null(f);
    if (config_dump(cfg, f, &err) != ERR_OK)
        fail_msg("config_dump: %s", err.msg);
    assert_int_equal(fclose(f), 0);
    return path;
}

static char *dump_to_string(const config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    err_t err = {0};

    assert_non_null(f);
    if (config_dump(cfg, f, &err) != ERR_OK)
        fail_msg("config_dump: %s", err.msg);
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* ------------------------------------------------------------ defaults */

static void test_config_defaults(void **state)
{
    config_t c;

    (void)state;
    load_ok(NULL, NULL, &c);
    assert_string_equal(c.log_level, "INFO");
    assert_string_equal(c.storage.storage_path, "./storage");
    assert_string_equal(c.storage.snapshots_path, "./snapshots");
    assert_true(c.storage.on_disk_payload);
    assert_int_equal(c.storage.wal.wal_capacity_mb, 32);
    assert_int_equal(c.storage.wal.wal_segments_ahead, 0);
    assert_int_equal(c.storage.wal.sync_mode, CONFIG_SYNC_ALWAYS);
    assert_int_equal(c.storage.wal.sync_interval_ms, 100);
    assert_int_equal(c.storage.performance.max_search_threads, 0);
    assert_true(c.storage.optimizers.deleted_threshold == 0.2);
    assert_int_equal(c.storage.optimizers.vacuum_min_vector_number, 1000);
    assert_int_equal(c.storage.optimizers.default_segment_number, 0);
    assert_int_equal(c.storage.optimizers.max_segment_size_kb, 0);
    assert_int_equal(c.storage.optimizers.memmap_threshold_kb, 0);
    assert_int_equal(c.storage.optimizers.indexing_threshold_kb, 10000);
    assert_int_equal(c.storage.optimizers.flush_interval_sec, 5);
    assert_int_equal(c.storage.optimizers.max_optimization_threads, 0);
    assert_int_equal(c.storage.hnsw_index.m, 16);
    assert_int_equal(c.storage.hnsw_index.ef_construct, 100);
    assert_int_equal(c.storage.hnsw_index.full_scan_threshold_kb, 10000);
    assert_int_equal(c.storage.hnsw_index.max_indexing_threads, 0);
    assert_false(c.storage.hnsw_index.on_disk);
    assert_int_equal(c.storage.hnsw_index.payload_m, 0);
    assert_string_equal(c.service.host, "0.0.0.0");
    assert_int_equal(c.service.http_port, 6333);
    assert_int_equal(c.service.max_request_size_mb, 32);
    assert_int_equal(c.service.max_workers, 0);
    assert_true(c.service.enable_cors);
    assert_null(c.service.api_key);
    assert_null(c.service.read_only_api_key);
    assert_int_equal(c.service.request_timeout_sec, 30);
    assert_null(c.kafka.brokers);
    assert_int_equal(c.kafka.n_topics, 1);
    assert_string_equal(c.kafka.topics[0], "veclog");
    assert_string_equal(c.kafka.group_id, "veclog");
    assert_string_equal(c.kafka.auto_offset_reset, "earliest");
    assert_int_equal(c.kafka.batch_size, 1000);
    assert_int_equal(c.kafka.batch_timeout_ms, 100);
    assert_int_equal(c.kafka.n_properties, 0);
    assert_null(c.kafka.properties);
    assert_string_equal(c.dlq.topic, "veclog-dlq");
    config_free(&c);
}

static void test_config_default_file_matches_builtin(void **state)
{
    config_t builtin, file;

    (void)state;
    load_ok(NULL, NULL, &builtin);
    load_ok(DEFAULT_FILE, NULL, &file);
    assert_config_equal(&file, &builtin);
    config_free(&builtin);
    config_free(&file);
}

/* Every key path in a YAML file, with its line; leaves are keys whose value
 * is not a non-empty mapping. */
struct yaml_keys {
    char *path[128];
    size_t line[128];
    bool is_leaf[128];
    size_t n;
};

static void collect_keys(yaml_document_t *doc, yaml_node_t *map, const char *prefix,
                         struct yaml_keys *out)
{
    yaml_node_pair_t *pair;

    for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *k = yaml_document_get_node(doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(doc, pair->value);
        bool section = v->type == YAML_MAPPING_NODE &&
                       v->data.mapping.pairs.top > v->data.mapping.pairs.start;
        char *path;

        assert_true(out->n < 128);
        if (asprintf(&path, "%s%s%s", prefix, *prefix ? "." : "", (char *)k->data.scalar.value) < 0)
            abort();
        out->path[out->n] = path;
        out->line[out->n] = k->start_mark.line;
        out->is_leaf[out->n++] = !section;
        if (section)
            collect_keys(doc, v, path, out);
    }
}

static void read_keys(const char *file, struct yaml_keys *out)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    FILE *f = fopen(file, "rb");

    assert_non_null(f);
    assert_true(yaml_parser_initialize(&parser));
    yaml_parser_set_input_file(&parser, f);
    assert_true(yaml_parser_load(&parser, &doc));
    memset(out, 0, sizeof(*out));
    collect_keys(&doc, yaml_document_get_root_node(&doc), "", out);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
}

static void free_keys(struct yaml_keys *k)
{
    size_t i;

    for (i = 0; i < k->n; i++)
        free(k->path[i]);
}

static bool has_leaf(const struct yaml_keys *k, const char *path)
{
    size_t i;

    for (i = 0; i < k->n; i++)
        if (k->is_leaf[i] && strcmp(k->path[i], path) == 0)
            return true;
    return false;
}

/* configs/veclog.yaml names every key config_dump knows (the full schema),
 * nothing else, and each key (and section) has a comment line above it. */
static void test_config_default_file_documents_every_key(void **state)
{
    struct yaml_keys file, schema;
    char *lines[512], buf[512], *dumped;
    size_t n_lines = 0, i, j;
    config_t c;
    FILE *f;

    (void)state;
    load_ok(NULL, NULL, &c);
    dumped = dump_to_file(&c);
    read_keys(DEFAULT_FILE, &file);
    read_keys(dumped, &schema);
    for (i = 0; i < schema.n; i++)
        if (schema.is_leaf[i] && !has_leaf(&file, schema.path[i]))
            fail_msg("%s is not in %s", schema.path[i], DEFAULT_FILE);
    for (i = 0; i < file.n; i++)
        if (file.is_leaf[i] && !has_leaf(&schema, file.path[i]))
            fail_msg("%s in %s is not a key", file.path[i], DEFAULT_FILE);

    assert_non_null(f = fopen(DEFAULT_FILE, "r"));
    while (n_lines < 512 && fgets(buf, sizeof(buf), f) != NULL)
        lines[n_lines++] = strdup(buf);
    fclose(f);
    for (i = 0; i < file.n; i++) {
        for (j = file.line[i]; j > 0 && lines[j - 1][strspn(lines[j - 1], " ")] == '\n'; j--)
            ;
        if (j == 0 || lines[j - 1][strspn(lines[j - 1], " ")] != '#')
            fail_msg("%s (line %zu) has no comment above it", file.path[i], file.line[i] + 1);
    }
    for (i = 0; i < n_lines; i++)
        free(lines[i]);
    free_keys(&file);
    free_keys(&schema);
    free(dumped);
    config_free(&c);
}

static void test_config_empty_file_gives_defaults(void **state)
{
    config_t builtin, c;

    (void)state;
    load_ok(NULL, NULL, &builtin);
    load_yaml_ok("", NULL, &c);
    assert_config_equal(&c, &builtin);
    config_free(&c);
    load_yaml_ok("# only a comment\n", NULL, &c);
    assert_config_equal(&c, &builtin);
    config_free(&c);
    load_yaml_ok("storage:\nservice:\nkafka: ~\n", NULL, &c); /* empty sections */
    assert_config_equal(&c, &builtin);
    config_free(&c);
    config_free(&builtin);
}

/* ------------------------------------------------------------ overrides */

static void test_config_file_overrides(void **state)
{
    config_t c;

    (void)state;
    load_yaml_ok("log_level: debug\n"
                 "storage:\n"
                 "  storage_path: /data/veclog\n"
                 "  on_disk_payload: no\n"
                 "  wal:\n"
                 "    wal_capacity_mb: 64\n"
                 "    sync_mode: Interval\n"
                 "    sync_interval_ms: \"250\"\n"
                 "  optimizers:\n"
                 "    deleted_threshold: 0.35\n"
                 "    max_segment_size_kb: 200000\n"
                 "  hnsw_index:\n"
                 "    m: 32\n"
                 "    on_disk: true\n"
                 "service:\n"
                 "  http_port: 7000\n"
                 "  api_key: s3cret\n"
                 "kafka:\n"
                 "  brokers: k1:9092,k2:9092\n"
                 "  auto_offset_reset: LATEST\n"
                 "dlq:\n"
                 "  topic: dead\n",
                 NULL, &c);
    assert_string_equal(c.log_level, "DEBUG"); /* canonical spelling */
    assert_string_equal(c.storage.storage_path, "/data/veclog");
    assert_false(c.storage.on_disk_payload);
    assert_int_equal(c.storage.wal.wal_capacity_mb, 64);
    assert_int_equal(c.storage.wal.sync_mode, CONFIG_SYNC_INTERVAL);
    assert_int_equal(c.storage.wal.sync_interval_ms, 250);
    assert_true(c.storage.optimizers.deleted_threshold == 0.35);
    assert_int_equal(c.storage.optimizers.max_segment_size_kb, 200000);
    assert_int_equal(c.storage.hnsw_index.m, 32);
    assert_true(c.storage.hnsw_index.on_disk);
    assert_int_equal(c.service.http_port, 7000);
    assert_string_equal(c.service.api_key, "s3cret");
    assert_string_equal(c.kafka.brokers, "k1:9092,k2:9092");
    assert_string_equal(c.kafka.auto_offset_reset, "latest");
    assert_string_equal(c.dlq.topic, "dead");
    /* untouched keys keep their defaults */
    assert_string_equal(c.storage.snapshots_path, "./snapshots");
    assert_int_equal(c.storage.hnsw_index.ef_construct, 100);
    assert_int_equal(c.service.max_request_size_mb, 32);
    assert_null(c.service.read_only_api_key);
    config_free(&c);
}

static void test_config_env_overrides(void **state)
{
    char *envp[] = {
        "PATH=/usr/bin",
        "VECLOG__SERVICE__HTTP_PORT=7001",
        "VECLOG__LOG_LEVEL=warn",
        "VECLOG__STORAGE__WAL__SYNC_MODE=none",
        "VECLOG__STORAGE__OPTIMIZERS__DELETED_THRESHOLD=0.5",
        "VECLOG__STORAGE__HNSW_INDEX__ON_DISK=true",
        "VECLOG__SERVICE__API_KEY=k",
        "VECLOG__STORAGE__OPTIMIZERS__VACUUM_MIN_VECTOR_NUMBER=18446744073709551615",
        NULL,
    };
    config_t c;

    (void)state;
    load_ok(NULL, envp, &c);
    assert_int_equal(c.service.http_port, 7001);
    assert_string_equal(c.log_level, "WARN");
    assert_int_equal(c.storage.wal.sync_mode, CONFIG_SYNC_NONE);
    assert_true(c.storage.optimizers.deleted_threshold == 0.5);
    assert_true(c.storage.hnsw_index.on_disk);
    assert_string_equal(c.service.api_key, "k");
    assert_true(c.storage.optimizers.vacuum_min_vector_number == UINT64_MAX);
    config_free(&c);
}

static void test_config_env_case_insensitive(void **state)
{
    char *envp[] = {"veclog__service__http_port=7002", "Veclog__Storage__Wal__Wal_Capacity_MB=9", NULL};
    config_t c;

    (void)state;
    load_ok(NULL, envp, &c);
    assert_int_equal(c.service.http_port, 7002);
    assert_int_equal(c.storage.wal.wal_capacity_mb, 9);
    config_free(&c);
}

static void test_config_env_overrides_file(void **state)
{
    char *envp[] = {"VECLOG__SERVICE__HTTP_PORT=7003", "VECLOG__STORAGE__STORAGE_PATH=/env", NULL};
    config_t c;

    (void)state;
    load_yaml_ok("service:\n  http_port: 7000\n  host: 127.0.0.1\n"
                 "storage:\n  storage_path: /file\n",
                 envp, &c);
    assert_int_equal(c.service.http_port, 7003);
    assert_string_equal(c.storage.storage_path, "/env");
    assert_string_equal(c.service.host, "127.0.0.1"); /* file, not overridden */
    config_free(&c);
}

/* Only VECLOG__ (two underscores) is ours; a later duplicate wins. */
static void test_config_env_ignores_unrelated(void **state)
{
    char *envp[] = {
        "VECLOG_TEST_SEED=42", "VECLOG=1", "VECLOG__SERVICE__HTTP_PORT", /* no '=' */
        "HOME=/root", "VECLOG__SERVICE__HTTP_PORT=1", "VECLOG__SERVICE__HTTP_PORT=2", NULL,
    };
    config_t c;

    (void)state;
    load_ok(NULL, envp, &c);
    assert_int_equal(c.service.http_port, 2);
    config_free(&c);
}

/* Empty env value unsets an optional key; a required one rejects it. */
static void test_config_env_empty_unsets(void **state)
{
    char *envp[] = {"VECLOG__SERVICE__API_KEY=", "VECLOG__KAFKA__BROKERS=",
                    "VECLOG__STORAGE__OPTIMIZERS__INDEXING_THRESHOLD_KB=", NULL};
    char *bad_env[] = {"VECLOG__SERVICE__HTTP_PORT=", NULL};
    config_t c;

    (void)state;
    load_yaml_ok("service:\n  api_key: secret\nkafka:\n  brokers: b:9092\n"
                 "storage:\n  optimizers:\n    indexing_threshold_kb: 5\n",
                 envp, &c);
    assert_null(c.service.api_key);
    assert_null(c.kafka.brokers);
    assert_int_equal(c.storage.optimizers.indexing_threshold_kb, 10000);
    config_free(&c);
    expect_invalid(NULL, bad_env, "config: service.http_port: \"\" is not an unsigned integer "
                                  "(VECLOG__SERVICE__HTTP_PORT)");
}

static void test_config_null_values(void **state)
{
    config_t c;

    (void)state;
    load_yaml_ok("storage:\n"
                 "  optimizers:\n"
                 "    indexing_threshold_kb: null\n"
                 "    max_segment_size_kb: ~\n"
                 "  hnsw_index:\n"
                 "    payload_m:\n"
                 "service:\n"
                 "  api_key: \"null\"\n"
                 "  read_only_api_key: NULL\n"
                 "kafka:\n"
                 "  brokers: null\n"
                 "  properties: ~\n"
                 "dlq:\n",
                 NULL, &c);
    assert_int_equal(c.storage.optimizers.indexing_threshold_kb, 10000);
    assert_int_equal(c.storage.optimizers.max_segment_size_kb, 0);
    assert_int_equal(c.storage.hnsw_index.payload_m, 0);
    assert_string_equal(c.service.api_key, "null"); /* quoted: a string */
    assert_null(c.service.read_only_api_key);
    assert_null(c.kafka.brokers);
    assert_int_equal(c.kafka.n_properties, 0);
    assert_string_equal(c.dlq.topic, "veclog-dlq");
    config_free(&c);
    expect_invalid("service:\n  http_port: ~\n",
                   NULL, "config: service.http_port: null is not allowed here");
    expect_invalid("kafka:\n  topics: null\n", NULL, "config: kafka.topics: null is not allowed");
}

/* ---------------------------------------------------- topics, properties */

static void test_config_topics_list_and_comma(void **state)
{
    char *envp[] = {"VECLOG__KAFKA__TOPICS= one, two ,three", NULL};
    config_t c;

    (void)state;
    load_yaml_ok("kafka:\n  topics:\n    - a\n    - b.c\n    - d-e_f\n", NULL, &c);
    assert_int_equal(c.kafka.n_topics, 3);
    assert_string_equal(c.kafka.topics[0], "a");
    assert_string_equal(c.kafka.topics[1], "b.c");
    assert_string_equal(c.kafka.topics[2], "d-e_f");
    config_free(&c);

    load_yaml_ok("kafka:\n  topics: single\n", NULL, &c);
    assert_int_equal(c.kafka.n_topics, 1);
    assert_string_equal(c.kafka.topics[0], "single");
    config_free(&c);

    load_yaml_ok("kafka:\n  topics: \"x,y\"\n", NULL, &c);
    assert_int_equal(c.kafka.n_topics, 2);
    assert_string_equal(c.kafka.topics[1], "y");
    config_free(&c);

    /* env replaces the file's whole list */
    load_yaml_ok("kafka:\n  topics: [a, b]\n", envp, &c);
    assert_int_equal(c.kafka.n_topics, 3);
    assert_string_equal(c.kafka.topics[0], "one");
    assert_string_equal(c.kafka.topics[1], "two");
    assert_string_equal(c.kafka.topics[2], "three");
    config_free(&c);
}

static void test_config_properties_map_and_env(void **state)
{
    char *envp[] = {
        "VECLOG__KAFKA__PROPERTIES__SECURITY_PROTOCOL=SSL",   /* replaces */
        "VECLOG__KAFKA__PROPERTIES__SASL__MECHANISMS=PLAIN",  /* adds */
        "VECLOG__KAFKA__PROPERTIES__FETCH_MAX_BYTES=",        /* removes */
        NULL,
    };
    char *whole[] = {"VECLOG__KAFKA__PROPERTIES=a=b", NULL};
    config_t c;

    (void)state;
    load_yaml_ok("kafka:\n"
                 "  properties:\n"
                 "    security.protocol: SASL_SSL\n"
                 "    enable.auto.commit: false\n"
                 "    fetch.max.bytes: 1048576\n"
                 "    sasl.username: ~\n",
                 NULL, &c);
    assert_int_equal(c.kafka.n_properties, 3);
    assert_string_equal(c.kafka.properties[0].key, "security.protocol");
    assert_string_equal(prop(&c, "security.protocol"), "SASL_SSL");
    assert_string_equal(prop(&c, "enable.auto.commit"), "false");
    assert_string_equal(prop(&c, "fetch.max.bytes"), "1048576");
    assert_null(prop(&c, "sasl.username"));
    config_free(&c);

    load_yaml_ok("kafka:\n  properties:\n    security.protocol: SASL_SSL\n"
                 "    enable.auto.commit: false\n    fetch.max.bytes: 1048576\n",
                 envp, &c);
    assert_int_equal(c.kafka.n_properties, 3);
    assert_string_equal(prop(&c, "security.protocol"), "SSL");
    assert_string_equal(prop(&c, "enable.auto.commit"), "false");
    assert_string_equal(prop(&c, "sasl.mechanisms"), "PLAIN");
    assert_null(prop(&c, "fetch.max.bytes"));
    config_free(&c);

    load_ok(NULL, envp, &c); /* env alone, no file */
    assert_int_equal(c.kafka.n_properties, 2);
    assert_string_equal(prop(&c, "security.protocol"), "SSL");
    config_free(&c);

    expect_invalid(NULL, whole, "config: kafka.properties: is a mapping");
    expect_invalid("kafka:\n  properties:\n    a.b: 1\n    a.b: 2\n", NULL,
                   "duplicate key \"a.b\" (first at line 3)");
}

/* ------------------------------------------------------------ rejections */

static void test_config_unknown_key_in_file(void **state)
{
    err_t err = {0};

    (void)state;
    load_yaml_fail("service:\n  host: 1.2.3.4\n  http_prot: 7000\n", NULL, ERR_INVALID, &err);
    assert_contains(err.msg, "config: service.http_prot: unknown key (");
    assert_contains(err.msg, "line 3, column 3)");
    assert_contains(err.msg, "did you mean service.http_port?");
    expect_invalid("telemetry_disabled: true\n", NULL, "config: telemetry_disabled: unknown key");
    expect_invalid("storage:\n  wal:\n    wal_capacity_mb: 1\n    recover: true\n", NULL,
                   "config: storage.wal.recover: unknown key");
    /* a dotted key is not a path: nesting is the only spelling */
    expect_invalid("service.http_port: 7000\n", NULL,
                   "config: service.http_port: a key cannot contain '.'; nest it under its section (");
    /* a known leaf in the wrong section is suggested */
    expect_invalid("service:\n  wal_capacity_mb: 1\n", NULL,
                   "did you mean storage.wal.wal_capacity_mb?");
}

static void test_config_unknown_key_in_env(void **state)
{
    char *envp[] = {"VECLOG__SERVICE__HTTP_PORT=1", "VECLOG__SERVICE__HTTP_PROT=7000", NULL};
    char *section[] = {"VECLOG__STORAGE__WAL=1", NULL};
    char *far[] = {"VECLOG__NOPE=1", NULL};
    err_t err = {0};

    (void)state;
    load_yaml_fail(NULL, envp, ERR_INVALID, &err);
    assert_string_equal(err.msg, "config: service.http_prot: unknown key "
                                 "(VECLOG__SERVICE__HTTP_PROT); did you mean service.http_port?");
    load_yaml_fail(NULL, far, ERR_INVALID, &err);
    assert_string_equal(err.msg, "config: nope: unknown key (VECLOG__NOPE)");
    expect_invalid(NULL, section, "config: storage.wal: is a section, not a value");
}

static void test_config_wrong_types(void **state)
{
    static const struct {
        const char *yaml, *msg;
    } cases[] = {
        {"storage:\n  wal:\n    wal_capacity_mb: abc\n",
         "config: storage.wal.wal_capacity_mb: \"abc\" is not an unsigned integer ("},
        {"storage:\n  wal:\n    wal_capacity_mb: -1\n", "\"-1\" is not an unsigned integer"},
        {"storage:\n  wal:\n    wal_capacity_mb: 0x20\n", "\"0x20\" is not an unsigned integer"},
        {"storage:\n  wal:\n    wal_capacity_mb: 3.5\n", "\"3.5\" is not an unsigned integer"},
        {"storage:\n  on_disk_payload: maybe\n",
         "config: storage.on_disk_payload: \"maybe\" is not a boolean"},
        {"storage:\n  optimizers:\n    deleted_threshold: lots\n",
         "config: storage.optimizers.deleted_threshold: \"lots\" is not a number"},
        {"storage:\n  optimizers:\n    deleted_threshold: nan\n", "\"nan\" is not a number"},
        {"service:\n  http_port: [1, 2]\n",
         "config: service.http_port: expected an unsigned integer, got a list"},
        {"service:\n  host: {a: b}\n", "config: service.host: expected a string, got a mapping"},
        {"service: 5\n", "config: service: is a section: expected a mapping, got a scalar"},
        {"storage:\n  wal: [1]\n", "config: storage.wal: is a section: expected a mapping, got a list"},
        {"kafka:\n  properties: x\n", "config: kafka.properties: expected a mapping, got a scalar"},
        {"kafka:\n  properties:\n    a: {b: c}\n",
         "config: kafka.properties.a: expected a scalar value, got a mapping"},
        {"kafka:\n  topics: [a, [b]]\n", "config: kafka.topics: item 2 must be a string, got a list"},
        {"kafka:\n  topics: [a, ~]\n", "config: kafka.topics: item 2 must be a string, got null"},
        {"kafka:\n  topics: []\n", "config: kafka.topics: must list at least one item"},
        {"kafka:\n  topics: 'a,,b'\n", "config: kafka.topics: item 2 is empty"},
        {"kafka:\n  topics: [\"bad topic\"]\n", "\"bad topic\" is not a valid Kafka topic name"},
        {"dlq:\n  topic: ..\n", "config: dlq.topic: \"..\" is not a valid Kafka topic name"},
        {"storage:\n  storage_path: ''\n", "config: storage.storage_path: must not be empty"},
        {"service:\n  host: \"a\\0b\"\n", "config: service.host: contains a NUL character"},
        {"? [a]\n: 1\n", "keys must be scalars, got a list"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_invalid(cases[i].yaml, NULL, cases[i].msg);
}

static void test_config_out_of_range(void **state)
{
    char *env_port[] = {"VECLOG__SERVICE__HTTP_PORT=70000", NULL};
    char *env_utf8[] = {"VECLOG__SERVICE__HOST=\xff\xfe", NULL};

    (void)state;
    expect_invalid("service:\n  http_port: 0\n",
                   NULL, "config: service.http_port: \"0\" is out of range (1..65535)");
    expect_invalid("service:\n  http_port: 65536\n", NULL, "\"65536\" is out of range (1..65535)");
    expect_invalid(NULL, env_port, "config: service.http_port: \"70000\" is out of range (1..65535) "
                                   "(VECLOG__SERVICE__HTTP_PORT)");
    expect_invalid("storage:\n  wal:\n    wal_capacity_mb: 0\n",
                   NULL, "config: storage.wal.wal_capacity_mb: \"0\" is out of range (1..4095)");
    expect_invalid("storage:\n  optimizers:\n    deleted_threshold: 1.5\n",
                   NULL, "config: storage.optimizers.deleted_threshold: \"1.5\" is out of range (0..1)");
    expect_invalid("storage:\n  optimizers:\n    vacuum_min_vector_number: 18446744073709551616\n",
                   NULL, "\"18446744073709551616\" is out of range");
    expect_invalid("storage:\n  hnsw_index:\n    ef_construct: 3\n",
                   NULL, "config: storage.hnsw_index.ef_construct: \"3\" is out of range (4..");
    expect_invalid(NULL, env_utf8, "config: service.host: is not valid UTF-8 (VECLOG__SERVICE__HOST)");
}

static void test_config_bad_enum(void **state)
{
    char *envp[] = {"VECLOG__LOG_LEVEL=loud", NULL};

    (void)state;
    expect_invalid("storage:\n  wal:\n    sync_mode: sometimes\n", NULL,
                   "config: storage.wal.sync_mode: \"sometimes\" is not one of always, interval, none (");
    expect_invalid("log_level: verbose\n", NULL,
                   "config: log_level: \"verbose\" is not one of TRACE, DEBUG, INFO, WARN, ERROR");
    expect_invalid("kafka:\n  auto_offset_reset: smallest\n", NULL,
                   "config: kafka.auto_offset_reset: \"smallest\" is not one of earliest, latest");
    expect_invalid(NULL, envp, "config: log_level: \"loud\" is not one of TRACE, DEBUG, INFO, WARN, "
                               "ERROR (VECLOG__LOG_LEVEL)");
}

static void test_config_duplicate_key(void **state)
{
    (void)state;
    expect_invalid("service:\n  http_port: 1\n  http_port: 2\n", NULL,
                   "config: service: duplicate key \"http_port\" (first at line 2)");
    expect_invalid("service:\n  http_port: 1\nservice:\n  host: x\n", NULL,
                   "config: (top level): duplicate key \"service\"");
    expect_invalid("service:\n  http_port: 1\n  HTTP_PORT: 2\n", NULL, "duplicate key \"HTTP_PORT\"");
}

static void test_config_top_level_not_mapping(void **state)
{
    (void)state;
    expect_invalid("- a\n- b\n", NULL, "the top level must be a mapping, got a list");
    expect_invalid("just text\n", NULL, "the top level must be a mapping, got a scalar");
    expect_invalid("log_level: INFO\n---\nlog_level: DEBUG\n", NULL, "line 2: more than one YAML document");
}

static void test_config_malformed_yaml(void **state)
{
    err_t err = {0};

    (void)state;
    load_yaml_fail("service:\n  http_port: 1\n  host: [a, b\n", NULL, ERR_INVALID, &err);
    assert_contains(err.msg, "config: ");
    assert_contains(err.msg, "line 4");
    load_yaml_fail("service:\n  http_port: 1\n host: x\n", NULL, ERR_INVALID, &err);
    assert_contains(err.msg, "line 3, column 2: did not find expected key");
    load_yaml_fail("log_level: \"unterminated\n", NULL, ERR_INVALID, &err);
    assert_contains(err.msg, "line 2");
}

static void test_config_missing_file(void **state)
{
    char *path;
    err_t err = {0};
    config_t c;

    (void)state;
    if (asprintf(&path, "%s/no-such.yaml", tmpdir) < 0)
        abort();
    memset(&c, 0xa5, sizeof(c));
    assert_int_equal(config_load(path, NULL, &c, &err), ERR_IO);
    assert_contains(err.msg, "config: open ");
    assert_contains(err.msg, "no-such.yaml: No such file or directory");
    assert_null(c.log_level);
    config_free(&c); /* zeroed: harmless */
    assert_int_equal(config_load(tmpdir, NULL, &c, &err), ERR_IO); /* a directory */
    assert_contains(err.msg, "Is a directory");
    free(path);
}

static void test_config_dlq_topic_not_consumed(void **state)
{
    char *envp[] = {"VECLOG__DLQ__TOPIC=veclog", NULL};

    (void)state;
    expect_invalid("kafka:\n  topics: [a, dead]\ndlq:\n  topic: dead\n", NULL,
                   "config: dlq.topic: \"dead\" is also in kafka.topics");
    expect_invalid(NULL, envp, "config: dlq.topic: \"veclog\" is also in kafka.topics");
}

/* kafka.topics takes ^regex patterns (checked with regcomp), and a DLQ
 * topic they match is refused. */
static void test_config_topic_patterns(void **state)
{
    config_t c;

    (void)state;
    load_yaml_ok("kafka:\n  topics: [\"^events\\\\..*\", plain]\n", NULL, &c);
    assert_int_equal(c.kafka.n_topics, 2);
    assert_string_equal(c.kafka.topics[0], "^events\\..*");
    config_free(&c);
    expect_invalid("kafka:\n  topics: [\"^(\"]\n", NULL, "is not a valid regular expression");
    expect_invalid("kafka:\n  topics: [\"^v.*\"]\ndlq:\n  topic: veclog-dlq\n", NULL,
                   "config: dlq.topic: \"veclog-dlq\" is matched by kafka.topics pattern \"^v.*\"");
    /* only kafka.topics takes patterns */
    expect_invalid("dlq:\n  topic: \"^x\"\n", NULL, "is not a valid Kafka topic name");
}

static const char *route(const config_t *c, const char *topic)
{
    for (size_t i = 0; i < c->kafka.n_routes; i++)
        if (strcmp(c->kafka.routes[i].key, topic) == 0)
            return c->kafka.routes[i].value;
    return NULL;
}

/* kafka.routes: scalar, comma list or YAML list values, normalised to
 * "a,b"; environment entries keep underscores; topics must be consumed. */
static void test_config_routes(void **state)
{
    char *envp[] = {"VECLOG__KAFKA__ROUTES__MY_TOPIC=x", NULL};
    config_t c, back;

    (void)state;
    assert_int_equal(config_load(NULL, NULL, &c, NULL), ERR_OK);
    assert_int_equal(c.kafka.n_routes, 0);
    config_free(&c);
    load_yaml_ok("kafka:\n  topics: [\"^ev.*\", one, my_topic]\n"
                 "  routes:\n    one: cities\n    events: \" a , b \"\n    ev2: [c, d]\n",
                 envp, &c);
    assert_int_equal(c.kafka.n_routes, 4);
    assert_string_equal(route(&c, "one"), "cities");
    assert_string_equal(route(&c, "events"), "a,b");
    assert_string_equal(route(&c, "ev2"), "c,d");
    assert_string_equal(route(&c, "my_topic"), "x");
    char *path = dump_to_file(&c);
    load_ok(path, NULL, &back);
    assert_int_equal(back.kafka.n_routes, 4);
    for (size_t i = 0; i < c.kafka.n_routes; i++)
        assert_string_equal(route(&back, c.kafka.routes[i].key), c.kafka.routes[i].value);
    free(path);
    config_free(&back);
    config_free(&c);

    expect_invalid("kafka:\n  routes:\n    other: a\n", NULL,
                   "config: kafka.routes: topic \"other\" is not in (or matched by) kafka.topics");
    expect_invalid("kafka:\n  routes:\n    \"bad topic\": a\n", NULL, "is not a valid Kafka topic name");
    expect_invalid("kafka:\n  routes:\n    veclog: \"a,,b\"\n", NULL, "veclog: collection 2 is empty");
    expect_invalid("kafka:\n  routes:\n    veclog: []\n", NULL, "must list at least one collection");
    expect_invalid("kafka:\n  routes:\n    veclog: [a, [b]]\n", NULL, "item 2 must be a collection name");
    expect_invalid("kafka:\n  routes:\n    veclog: {a: b}\n", NULL, "expected a scalar value");
}

/* ------------------------------------------------------------------ dump */

static void test_config_dump_reload(void **state)
{
    char *envp[] = {
        "VECLOG__STORAGE__SNAPSHOTS_PATH=tab\there\nnewline \"q\" \\ back",
        "VECLOG__KAFKA__PROPERTIES__CLIENT_ID=id: #not-a-comment",
        NULL,
    };
    config_t builtin, c, again;
    char *path;

    (void)state;
    /* defaults survive the round trip */
    load_ok(NULL, NULL, &builtin);
    path = dump_to_file(&builtin);
    load_ok(path, NULL, &again);
    assert_config_equal(&again, &builtin);
    config_free(&again);
    free(path);
    config_free(&builtin);

    /* and so does a config that differs everywhere it can */
    load_yaml_ok("log_level: trace\n"
                 "storage:\n  storage_path: \"./d\\u00e4t\\u00e4 'x'\"\n  on_disk_payload: false\n"
                 "  wal: {wal_capacity_mb: 7, wal_segments_ahead: 2, sync_mode: interval, "
                 "sync_interval_ms: 9}\n"
                 "  performance: {max_search_threads: 3}\n"
                 "  optimizers: {deleted_threshold: 0.1, vacuum_min_vector_number: 18446744073709551615, "
                 "default_segment_number: 4, max_segment_size_kb: 5, memmap_threshold_kb: 6, "
                 "indexing_threshold_kb: 0, flush_interval_sec: 8, max_optimization_threads: 9}\n"
                 "  hnsw_index: {m: 0, ef_construct: 64, full_scan_threshold_kb: 1, "
                 "max_indexing_threads: 2, on_disk: true, payload_m: 8}\n"
                 "service: {host: '::1', http_port: 65535, max_request_size_mb: 1, max_workers: 5, "
                 "enable_cors: false, request_timeout_sec: 1}\n"
                 "kafka:\n  brokers: 'b1:9092,b2:9092'\n  topics: [t1, t.2, t-3]\n  group_id: g\n"
                 "  auto_offset_reset: latest\n  batch_size: 1\n  batch_timeout_ms: 0\n"
                 "  properties: {security.protocol: SSL, 'odd \"key\"': 'v\\al'}\n"
                 "dlq: {topic: d}\n",
                 envp, &c);
    assert_string_equal(c.storage.snapshots_path, "tab\there\nnewline \"q\" \\ back");
    assert_string_equal(prop(&c, "client.id"), "id: #not-a-comment");
    path = dump_to_file(&c);
    load_ok(path, NULL, &again);
    assert_config_equal(&again, &c);
    config_free(&again);
    config_free(&c);
    free(path);
}

static void test_config_dump_masks_api_keys(void **state)
{
    char *envp[] = {"VECLOG__SERVICE__API_KEY=topsecret", "VECLOG__SERVICE__READ_ONLY_API_KEY=ro-secret",
                    NULL};
    config_t c, again;
    char *text, *path;

    (void)state;
    load_ok(NULL, envp, &c);
    text = dump_to_string(&c);
    assert_null(strstr(text, "secret"));
    assert_contains(text, "  api_key: \"***\"");
    assert_contains(text, "  read_only_api_key: \"***\"");
    assert_contains(text, "\nservice:\n");
    assert_contains(text, "    wal_capacity_mb: 32  # ");
    path = dump_to_file(&c);
    load_ok(path, NULL, &again);
    assert_string_equal(again.service.api_key, "***");
    config_free(&again);
    config_free(&c);
    free(text);
    free(path);
}

static void test_config_free_is_idempotent(void **state)
{
    config_t c;

    (void)state;
    config_free(NULL);
    load_ok(DEFAULT_FILE, NULL, &c);
    config_free(&c);
    assert_null(c.log_level);
    config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_default_file_matches_builtin),
        cmocka_unit_test(test_config_default_file_documents_every_key),
        cmocka_unit_test(test_config_empty_file_gives_defaults),
        cmocka_unit_test(test_config_file_overrides),
        cmocka_unit_test(test_config_env_overrides),
        cmocka_unit_test(test_config_env_case_insensitive),
        cmocka_unit_test(test_config_env_overrides_file),
        cmocka_unit_test(test_config_env_ignores_unrelated),
        cmocka_unit_test(test_config_env_empty_unsets),
        cmocka_unit_test(test_config_null_values),
        cmocka_unit_test(test_config_topics_list_and_comma),
        cmocka_unit_test(test_config_properties_map_and_env),
        cmocka_unit_test(test_config_unknown_key_in_file),
        cmocka_unit_test(test_config_unknown_key_in_env),
        cmocka_unit_test(test_config_wrong_types),
        cmocka_unit_test(test_config_out_of_range),
        cmocka_unit_test(test_config_bad_enum),
        cmocka_unit_test(test_config_duplicate_key),
        cmocka_unit_test(test_config_top_level_not_mapping),
        cmocka_unit_test(test_config_malformed_yaml),
        cmocka_unit_test(test_config_missing_file),
        cmocka_unit_test(test_config_dlq_topic_not_consumed),
        cmocka_unit_test(test_config_topic_patterns),
        cmocka_unit_test(test_config_routes),
        cmocka_unit_test(test_config_dump_reload),
        cmocka_unit_test(test_config_dump_masks_api_keys),
        cmocka_unit_test(test_config_free_is_idempotent),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
