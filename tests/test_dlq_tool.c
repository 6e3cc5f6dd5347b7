/*
 * test_dlq_tool.c - dlq/redrive.c against the embedded broker over TCP:
 * dead letters are produced with Connect's error headers to the
 * dead-letter topic, then listed (with counts by reason), shown,
 * redriven (one, all, dry run, loop guard, force) - the original topic is
 * read back to check key, value, headers and the incremented redrive
 * count - re-applied straight to a RocksDB store through the ingest sink
 * (routes, statuses, refusals), and purged (all, and up to an offset).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "dlq/redrive.h"
#include "ingest/broker.h"
#include "ingest/sink.h"
#include "store/catalog.h"
#include "store/log.h"
#include "testutil.h"

typedef struct fx {
    broker_t *b;
    rd_kafka_t *prod;
    redrive_t *r;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    err_t e;

    log_level_set(LOG_WARN);
    if (broker_start(1, &f->b, &e) != ERR_OK ||
        broker_topic_create(f->b, "in", 1, &e) != ERR_OK ||
        broker_topic_create(f->b, "dlq", 1, &e) != ERR_OK)
        fail_msg("broker: %s", e.msg);
    rd_kafka_conf_set(conf, "bootstrap.servers", broker_bootstraps(f->b), NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "0", NULL, 0);
    f->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(f->prod);
    redrive_opts_t o = { .brokers = broker_bootstraps(f->b), .topic = "dlq", .group_id = "g" };
    if (redrive_open(&o, &f->r, &e) != ERR_OK)
        fail_msg("redrive_open: %s", e.msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    redrive_close(f->r);
    rd_kafka_destroy(f->prod);
    broker_stop(f->b);
    free(f);
    return 0;
}

/* A dead letter of "in"[0]@orig_off with class cls and redrive count n. */
static void dead(fx_t *f, const char *key, const char *value, int64_t orig_off, const char *cls,
                 int n)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    char num[32];

    rd_kafka_header_add(h, "trace", -1, "t-1", -1);
    rd_kafka_header_add(h, "__connect.errors.topic", -1, "in", -1);
    rd_kafka_header_add(h, "__connect.errors.partition", -1, "0", -1);
    snprintf(num, sizeof(num), "%" PRId64, orig_off);
    rd_kafka_header_add(h, "__connect.errors.offset", -1, num, -1);
    rd_kafka_header_add(h, "__connect.errors.stage", -1, "VALUE_CONVERTER", -1);
    rd_kafka_header_add(h, "__connect.errors.exception.class.name", -1, cls, -1);
    rd_kafka_header_add(h, "__connect.errors.exception.message", -1, "bad thing", -1);
    snprintf(num, sizeof(num), "%d", n);
    rd_kafka_header_add(h, "__veclog.redrive.count", -1, num, -1);
    rd_kafka_resp_err_t e = rd_kafka_producev(
        f->prod, RD_KAFKA_V_TOPIC("dlq"), RD_KAFKA_V_PARTITION(0),
        RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)value, strlen(value)),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_TIMESTAMP(1700000000000LL),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(f->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Offsets 0..3: two invalid (one at the loop guard's limit), one
 * not_found, one invalid. */
static void seed(fx_t *f)
{
    dead(f, "k0", "{v0", 10, "veclog.error.invalid", 0);
    dead(f, "k1", "{v1", 11, "veclog.error.not_found", 1);
    dead(f, "k2", "{v2", 12, "veclog.error.invalid", 3);
    dead(f, "k3", "{v3", 13, "veclog.error.invalid", 0);
}

static cJSON *list(fx_t *f)
{
    cJSON *doc;
    err_t e;
    if (redrive_list(f->r, &doc, &e) != ERR_OK)
        fail_msg("list: %s", e.msg);
    return doc;
}

static int count_of(const cJSON *doc, const char *cls)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(doc, "counts"), cls);
    return c ? c->valueint : 0;
}

/* The messages of "in" partition 0 from offset 0 (n of them). */
static size_t read_in(fx_t *f, rd_kafka_message_t **out, size_t n, rd_kafka_t **rk)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    size_t got = 0;

    rd_kafka_conf_set(conf, "bootstrap.servers", broker_bootstraps(f->b), NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "reader", NULL, 0);
    *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(*rk);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "in", 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(*rk, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    for (time_t end = time(NULL) + 10; got < n && time(NULL) < end;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(*rk, 100);
        if (m != NULL && m->err == 0)
            out[got++] = m;
        else if (m != NULL)
            rd_kafka_message_destroy(m);
    }
    return got;
}

static void test_dlq_tool_list_and_show(void **state)
{
    fx_t *f = *state;
    cJSON *doc, *one;
    err_t e;

    doc = list(f);
    assert_int_equal(cJSON_GetObjectItem(doc, "total")->valueint, 0);
    cJSON_Delete(doc);
    seed(f);
    doc = list(f);
    assert_int_equal(cJSON_GetObjectItem(doc, "total")->valueint, 4);
    assert_int_equal(count_of(doc, "veclog.error.invalid"), 3);
    assert_int_equal(count_of(doc, "veclog.error.not_found"), 1);
    cJSON *d1 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "dead_letters"), 1);
    assert_int_equal(cJSON_GetObjectItem(d1, "offset")->valueint, 1);
    assert_string_equal(cJSON_GetObjectItem(d1, "key")->valuestring, "k1");
    assert_string_equal(cJSON_GetObjectItem(d1, "stage")->valuestring, "VALUE_CONVERTER");
    assert_string_equal(cJSON_GetObjectItem(d1, "message")->valuestring, "bad thing");
    assert_int_equal(cJSON_GetObjectItem(d1, "redrive_count")->valueint, 1);
    assert_true(cJSON_GetObjectItem(d1, "timestamp")->valuedouble == 1700000000000.0);
    cJSON *orig = cJSON_GetObjectItem(d1, "original");
    assert_string_equal(cJSON_GetObjectItem(orig, "topic")->valuestring, "in");
    assert_int_equal(cJSON_GetObjectItem(orig, "offset")->valueint, 11);
    cJSON_Delete(doc);

    assert_int_equal(redrive_show(f->r, &(redrive_ref_t){ 0, 2 }, &one, &e), ERR_OK);
    assert_string_equal(cJSON_GetObjectItem(one, "value")->valuestring, "{v2");
    assert_string_equal(cJSON_GetObjectItem(one, "key")->valuestring, "k2");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(one, "headers")), 8);
    cJSON_Delete(one);
    assert_int_equal(redrive_show(f->r, &(redrive_ref_t){ 0, 99 }, &one, &e), ERR_NOT_FOUND);
    assert_int_equal(redrive_show(f->r, &(redrive_ref_t){ 5, 0 }, &one, &e), ERR_NOT_FOUND);

    redrive_ref_t ref;
    assert_int_equal(redrive_ref_parse("3:17", &ref, &e), ERR_OK);
    assert_int_equal(ref.partition, 3);
    assert_int_equal(ref.offset, 17);
    assert_int_equal(redrive_ref_parse("3", &ref, &e), ERR_INVALID);
    assert_int_equal(redrive_ref_parse("-1:2", &ref, &e), ERR_INVALID);
    assert_int_equal(redrive_ref_parse("1:x", &ref, &e), ERR_INVALID);
}

static void test_dlq_tool_redrive(void **state)
{
    fx_t *f = *state;
    rd_kafka_message_t *m[8];
    rd_kafka_t *rk;
    cJSON *doc;
    char buf[64];
    err_t e;

    seed(f);
    /* dry run: reports, sends nothing */
    redrive_req_t q = { .all = true, .dry_run = true };
    assert_int_equal(redrive_run(f->r, &q, &doc, &e), ERR_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "redriven")), 3);
    cJSON *sk = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "skipped"), 0);
    assert_int_equal(cJSON_GetObjectItem(sk, "offset")->valueint, 2);
    assert_non_null(strstr(cJSON_GetObjectItem(sk, "reason")->valuestring, "loop guard"));
    cJSON_Delete(doc);
    size_t n = read_in(f, m, 1, &rk);
    tu_read_done(rk, m, n);
    assert_int_equal(n, 0);

    /* one record */
    redrive_ref_t one = { 0, 1 };
    q = (redrive_req_t){ .refs = &one, .n_refs = 1 };
    assert_int_equal(redrive_run(f->r, &q, &doc, &e), ERR_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "redriven")), 1);
    cJSON *st = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "redriven"), 0),
                                    "status");
    assert_string_equal(st->valuestring, "delivered");
    cJSON_Delete(doc);
    redrive_ref_t missing = { 0, 40 };
    q = (redrive_req_t){ .refs = &missing, .n_refs = 1 };
    assert_int_equal(redrive_run(f->r, &q, &doc, &e), ERR_NOT_FOUND);
    assert_null(doc);

    /* all: the loop guard skips offset 2 (count 3 >= 3) */
    q = (redrive_req_t){ .all = true };
    assert_int_equal(redrive_run(f->r, &q, &doc, &e), ERR_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "redriven")), 3);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "skipped")), 1);
    cJSON_Delete(doc);
    /* force passes the guard; a higher max too */
    redrive_ref_t two = { 0, 2 };
    q = (redrive_req_t){ .refs = &two, .n_refs = 1, .max_redrives = 4 };
    assert_int_equal(redrive_run(f->r, &q, &doc, &e), ERR_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "redriven")), 1);
    cJSON_Delete(doc);

    n = read_in(f, m, 5, &rk);
    assert_int_equal(n, 5);
    const char *want_key[] = { "k1", "k0", "k1", "k3", "k2" };
    const char *want_cnt[] = { "2", "1", "2", "1", "4" };
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(m[i]->key_len, 2);
        assert_memory_equal(m[i]->key, want_key[i], 2);
        assert_int_equal(m[i]->len, 3);
        char val[4] = { '{', 'v', want_key[i][1], '\0' };
        assert_memory_equal(m[i]->payload, val, 3);
        assert_string_equal(tu_hdr(m[i], "__veclog.redrive.count", buf, sizeof(buf)), want_cnt[i]);
        assert_string_equal(tu_hdr(m[i], "trace", buf, sizeof(buf)), "t-1");
        assert_null(tu_hdr(m[i], "__connect.errors.topic", buf, sizeof(buf)));
        rd_kafka_timestamp_type_t tst;
        assert_true(rd_kafka_message_timestamp(m[i], &tst) == 1700000000000LL);
    }
    tu_read_done(rk, m, n);
}

/* redrive_opts_t.apply over the ingest sink, as main wires it. */
static int apply_fn(void *ctx, const char *topic, const void *key, size_t key_len,
                    const void *value, size_t value_len, err_t *err)
{
    size_t n;
    return sink_reapply(ctx, topic, key, key_len, value, value_len, &n, err);
}

static uint64_t points_of(catalog_t *cat, const char *name)
{
    catalog_handle_t *h;
    coll_info_t info;
    if (catalog_acquire(cat, name, &h, NULL) != ERR_OK)
        return UINT64_MAX;
    coll_info_get(catalog_handle_coll(h), &info);
    catalog_release(h);
    return info.points;
}

static void mkcoll(catalog_t *cat, const char *name)
{
    cJSON *body = cJSON_Parse("{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    err_t e;
    if (catalog_create(cat, name, body, &e) != ERR_OK)
        fail_msg("create %s: %s", name, e.msg);
    cJSON_Delete(body);
}

/* Re-apply: dead letters written for a collection that did not exist yet
 * are applied once it does (to both collections of a dual-write route);
 * one still invalid is reported failed and nothing else is lost; a dry
 * run and a tool without a store apply nothing. */
static void test_dlq_tool_redrive_apply(void **state)
{
    fx_t *f = *state;
    char *dir = tu_tmpdir("dlqapply");
    catalog_opts_t co;
    catalog_t *cat;
    sink_t *sink;
    redrive_t *r;
    cJSON *doc;
    err_t e;

    catalog_opts_default(&co);
    co.storage_path = dir;
    assert_int_equal(catalog_open(&co, &cat, &e), ERR_OK);
    const char *routes[] = { "in", "a,b", NULL };
    sink_opts_t so = { .routes = routes };
    assert_int_equal(sink_new(cat, NULL, &so, &sink, &e), ERR_OK);
    redrive_opts_t o = { .brokers = broker_bootstraps(f->b), .topic = "dlq", .group_id = "g",
                         .apply = apply_fn, .apply_ctx = sink };
    assert_int_equal(redrive_open(&o, &r, &e), ERR_OK);

    dead(f, "k0", "{\"id\": 1, \"vector\": [1, 2], \"payload\": {\"x\": 1}}", 20,
         "veclog.error.not_found", 0);
    dead(f, "k1", "{\"id\": 2, \"vector\": [1, 2, 3]}", 21, "veclog.error.invalid", 3);
    dead(f, "k2", "{\"id\": 3, \"vector\": [3, 4]}", 22, "veclog.error.not_found", 0);

    /* the collections are missing: each fails, naming why */
    redrive_req_t q = { .all = true, .mode = REDRIVE_APPLY };
    assert_int_equal(redrive_run(r, &q, &doc, &e), ERR_OK);
    assert_int_equal(cJSON_GetObjectItem(doc, "failed")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItem(doc, "mode")->valuestring, "apply");
    cJSON *st = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "redriven"), 0),
                                    "status");
    assert_non_null(strstr(st->valuestring, "collection a"));
    cJSON_Delete(doc);

    mkcoll(cat, "a");
    mkcoll(cat, "b");
    q.dry_run = true;
    assert_int_equal(redrive_run(r, &q, &doc, &e), ERR_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "redriven")), 3);
    cJSON_Delete(doc);
    assert_int_equal(points_of(cat, "a"), 0);

    /* the loop guard does not hold back a re-apply (count 3 at offset 1) */
    q.dry_run = false;
    assert_int_equal(redrive_run(r, &q, &doc, &e), ERR_OK);
    assert_int_equal(cJSON_GetObjectItem(doc, "failed")->valueint, 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(doc, "skipped")), 0);
    const char *want[] = { "applied", "dimension", "applied" };
    for (int i = 0; i < 3; i++) {
        cJSON *it = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "redriven"), i);
        const char *s = cJSON_GetObjectItem(it, "status")->valuestring;
        if (strstr(s, want[i]) == NULL)
            fail_msg("record %d: status \"%s\", expected \"%s\"", i, s, want[i]);
    }
    cJSON_Delete(doc);
    assert_int_equal(points_of(cat, "a"), 2);
    assert_int_equal(points_of(cat, "b"), 2);

    /* the broker was not written: nothing new in the original topic */
    rd_kafka_message_t *m[2];
    rd_kafka_t *rk;
    size_t n = read_in(f, m, 1, &rk);
    tu_read_done(rk, m, n);
    assert_int_equal(n, 0);
    redrive_close(r);

    /* without a store, apply is refused (a dry run still reports) */
    o.apply = NULL;
    assert_int_equal(redrive_open(&o, &r, &e), ERR_OK);
    assert_int_equal(redrive_run(r, &q, &doc, &e), ERR_UNSUPPORTED);
    assert_null(doc);
    q.dry_run = true;
    assert_int_equal(redrive_run(r, &q, &doc, &e), ERR_OK);
    cJSON_Delete(doc);
    redrive_close(r);
    sink_free(sink);
    catalog_close(cat);
    tu_rmrf(dir);
    free(dir);
}

static void test_dlq_tool_purge(void **state)
{
    fx_t *f = *state;
    cJSON *doc;
    err_t e;

    seed(f);
    assert_int_equal(redrive_purge(f->r, &(redrive_ref_t){ 0, 1 }, &doc, &e), ERR_OK);
    assert_int_equal(cJSON_GetObjectItem(doc, "purged")->valueint, 2);
    cJSON_Delete(doc);
    doc = list(f);
    assert_int_equal(cJSON_GetObjectItem(doc, "total")->valueint, 2);
    assert_int_equal(count_of(doc, "veclog.error.not_found"), 0);
    cJSON_Delete(doc);
    assert_int_equal(redrive_purge(f->r, &(redrive_ref_t){ 0, 9 }, &doc, &e), ERR_INVALID);
    /* a purged record can still be shown */
    assert_int_equal(redrive_show(f->r, &(redrive_ref_t){ 0, 0 }, &doc, &e), ERR_OK);
    cJSON_Delete(doc);
    assert_int_equal(redrive_purge(f->r, NULL, &doc, &e), ERR_OK);
    assert_int_equal(cJSON_GetObjectItem(doc, "purged")->valueint, 2);
    cJSON_Delete(doc);
    doc = list(f);
    assert_int_equal(cJSON_GetObjectItem(doc, "total")->valueint, 0);
    cJSON_Delete(doc);
    /* redrive all has nothing left; a new tool instance sees the same position */
    redrive_close(f->r);
    redrive_opts_t o = { .brokers = broker_bootstraps(f->b), .topic = "dlq", .group_id = "g" };
    assert_int_equal(redrive_open(&o, &f->r, &e), ERR_OK);
    dead(f, "k4", "{v4", 14, "veclog.error.invalid", 0);
    doc = list(f);
    assert_int_equal(cJSON_GetObjectItem(doc, "total")->valueint, 1);
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dlq_tool_list_and_show, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_tool_redrive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_tool_redrive_apply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dlq_tool_purge, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
