/*
 * test_ingest_autocreate.c - opt-in auto-creation of collections by Kafka
 * ingest (sink.h AUTO-CREATE), end to end on the embedded broker:
 *
 *   - off (the default): a message naming an unknown collection is
 *     dead-lettered and nothing is created;
 *   - on (distance Dot): an unnamed vector creates {"size": dim,
 *     "distance": "Dot"} and the points are applied; named vectors create
 *     a map of them; a delete for an unknown collection (no vectors) is
 *     still dead-lettered, naming the missing collection.
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
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "ingest/broker.h"
#include "ingest/ingest.h"
#include "store/catalog.h"
#include "store/log.h"
#include "tests/testutil.h"

#define WAIT_MS 30000

typedef struct fx {
    broker_t *b;
    char *dir;
    catalog_t *cat;
    rd_kafka_t *prod;
    ingest_t *in;
} fx_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cat_open(fx_t *f)
{
    catalog_opts_t o;
    err_t e;

    catalog_opts_default(&o);
    o.storage_path = f->dir;
    if (catalog_open(&o, &f->cat, &e) != ERR_OK)
        fail_msg("catalog_open: %s", e.msg);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    err_t e;

    log_level_set(LOG_WARN);
    f->dir = tu_tmpdir("ingest");
    cat_open(f);
    if (broker_start(1, &f->b, &e) != ERR_OK)
        fail_msg("broker_start: %s", e.msg);
    rd_kafka_conf_set(conf, "bootstrap.servers", broker_bootstraps(f->b), NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "0", NULL, 0);
    rd_kafka_conf_set(conf, "message.max.bytes", "4000000", NULL, 0);
    f->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(f->prod);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    ingest_stop(f->in);
    rd_kafka_destroy(f->prod);
    catalog_close(f->cat);
    broker_stop(f->b);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void create(fx_t *f, const char *name, const char *body)
{
    cJSON *j = cJSON_Parse(body);
    err_t e;
    if (catalog_create(f->cat, name, j, &e) != ERR_OK)
        fail_msg("create %s: %s", name, e.msg);
    cJSON_Delete(j);
}

static void topic(fx_t *f, const char *name, int partitions)
{
    err_t e;
    if (broker_topic_create(f->b, name, partitions, &e) != ERR_OK)
        fail_msg("%s", e.msg);
}

/* Produce one message (value NULL = tombstone) and wait for it. h is
 * taken (may be NULL); ts 0 = now. */
static void produce_h(fx_t *f, const char *t, int32_t part, const char *key, const char *value,
                      rd_kafka_headers_t *h, int64_t ts)
{
    rd_kafka_resp_err_t e = rd_kafka_producev(
        f->prod, RD_KAFKA_V_TOPIC(t), RD_KAFKA_V_PARTITION(part),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
        RD_KAFKA_V_HEADERS(h ? h : rd_kafka_headers_new(0)), RD_KAFKA_V_TIMESTAMP(ts),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("produce: %s", rd_kafka_err2str(e));
}

static void produce(fx_t *f, const char *t, int32_t part, const char *key, const char *value)
{
    produce_h(f, t, part, key, value, NULL, 0);
}

static void flush(fx_t *f)
{
    assert_int_equal(rd_kafka_flush(f->prod, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* The embedded broker answers a group re-join after a LeaveGroup only
 * when session.timeout.ms - 1 s has passed (a real broker at once): a
 * short session keeps restarts quick.  Passed through as kafka.properties. */
static const char *const props[] = {
    "session.timeout.ms", "4000", "heartbeat.interval.ms", "1000", NULL,
};

static ingest_opts_t opts(fx_t *f, const char *group, const char *const *topics, size_t n)
{
    ingest_opts_t o = {
        .brokers = broker_bootstraps(f->b), .group_id = group, .topics = topics,
        .n_topics = n, .batch_size = 500, .batch_timeout_ms = 50, .dlq_topic = "dlq",
        .dlq_timeout_ms = 2000, .retry_max_ms = 400, .properties = props,
    };
    return o;
}

static void start(fx_t *f, const ingest_opts_t *o)
{
    err_t e;
    if (ingest_start(f->cat, o, &f->in, &e) != ERR_OK)
        fail_msg("ingest_start: %s", e.msg);
}

static void stop(fx_t *f)
{
    ingest_stop(f->in);
    f->in = NULL;
}

static int64_t stored(fx_t *f, const char *coll, const char *t, int32_t part)
{
    catalog_handle_t *h;
    if (catalog_acquire(f->cat, coll, &h, NULL) != ERR_OK)
        return -1; /* not created yet */
    int64_t off = coll_source_offset(catalog_handle_coll(h), t, part);
    catalog_release(h);
    return off;
}

static void wait_stored(fx_t *f, const char *coll, const char *t, int32_t part, int64_t off)
{
    int64_t end = now_ms() + WAIT_MS;
    while (stored(f, coll, t, part) < off) {
        if (now_ms() > end)
            fail_msg("%s: %s[%d] stored %" PRId64 ", waited for %" PRId64, coll, t, part,
                     stored(f, coll, t, part), off);
        usleep(20000);
    }
}

static coll_info_t info(fx_t *f, const char *coll)
{
    catalog_handle_t *h;
    coll_info_t i;
    assert_int_equal(catalog_acquire(f->cat, coll, &h, NULL), ERR_OK);
    coll_info_get(catalog_handle_coll(h), &i);
    catalog_release(h);
    return i;
}

/* Read n messages of topic t partition 0 from the beginning.  The
 * messages keep *rk alive: destroy them, then read_done(*rk). */
static size_t read_topic(fx_t *f, const char *t, rd_kafka_message_t **out, size_t n,
                         rd_kafka_t **rk)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    size_t got = 0;

    rd_kafka_conf_set(conf, "bootstrap.servers", broker_bootstraps(f->b), NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "test-reader", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, t, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    for (int64_t end = now_ms() + WAIT_MS; got < n && now_ms() < end;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL)
            continue;
        if (m->err)
            rd_kafka_message_destroy(m);
        else
            out[got++] = m;
    }
    *rk = c;
    return got;
}

static void read_done(rd_kafka_t *c, rd_kafka_message_t **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rd_kafka_message_destroy(msgs[i]);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

static const char *header(const rd_kafka_message_t *m, const char *name, char *buf, size_t cap)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t len;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    snprintf(buf, cap, "%.*s", (int)len, (const char *)v);
    return buf;
}

/* The collection's info (catalog_info_json) as compact JSON (caller frees). */
static char *vectors_of(fx_t *f, const char *coll)
{
    catalog_handle_t *h;
    assert_int_equal(catalog_acquire(f->cat, coll, &h, NULL), ERR_OK);
    cJSON *j = catalog_info_json(f->cat, h);
    catalog_release(h);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

static void expect_dead(fx_t *f, const char *want_msg)
{
    rd_kafka_message_t *got[1] = { NULL };
    rd_kafka_t *reader;
    char buf[512];

    assert_int_equal(read_topic(f, "dlq", got, 1, &reader), 1);
    const char *msg = header(got[0], "__connect.errors.exception.message", buf, sizeof(buf));
    if (msg == NULL || strstr(msg, want_msg) == NULL)
        fail_msg("dead letter: %s, expected %s", msg ? msg : "(none)", want_msg);
    read_done(reader, got, 1);
}

static void test_autocreate_off_dead_letters(void **state)
{
    fx_t *f = *state;
    static const char *const topics[] = { "in" };
    ingest_opts_t o = opts(f, "g-off", topics, 1);
    catalog_handle_t *h;
    ingest_stats_t st;

    topic(f, "in", 1);
    topic(f, "dlq", 1);
    create(f, "c", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"nope\",\"id\":1,\"vector\":[1,2]}");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":1,\"vector\":[1,2]}");
    flush(f);
    start(f, &o);
    wait_stored(f, "c", "in", 0, 1);
    expect_dead(f, "nope");
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.dead, 1);
    stop(f);
    assert_int_equal(catalog_acquire(f->cat, "nope", &h, NULL), ERR_NOT_FOUND);
}

static void test_autocreate_on(void **state)
{
    fx_t *f = *state;
    static const char *const topics[] = { "in" };
    ingest_opts_t o = opts(f, "g-on", topics, 1);
    catalog_handle_t *h;
    ingest_stats_t st;

    o.auto_create_collections = true;
    o.auto_create_distance = "Dot";
    topic(f, "in", 1);
    topic(f, "dlq", 1);
    produce(f, "in", 0, NULL, "{\"collection_name\":\"gone\",\"op\":\"delete\",\"points\":[1]}");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"a\",\"id\":1,\"vector\":[1,2,3],"
                              "\"payload\":{\"k\":1}}");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"b\",\"id\":7,"
                              "\"vector\":{\"img\":[1,2],\"txt\":[1,2,3,4]}}");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"a\",\"points\":[{\"id\":2,"
                              "\"vector\":[4,5,6]}]}");
    flush(f);
    start(f, &o);
    wait_stored(f, "a", "in", 0, 3);
    wait_stored(f, "b", "in", 0, 2);
    expect_dead(f, "gone");
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.dead, 1);
    assert_int_equal(st.sink.retried, 0);
    stop(f);
    assert_int_equal(info(f, "a").points, 2);
    assert_int_equal(info(f, "b").points, 1);
    char *va = vectors_of(f, "a"), *vb = vectors_of(f, "b");
    if (strstr(va, "\"vectors\":{\"size\":3,\"distance\":\"Dot\"") == NULL)
        fail_msg("a: %s", va);
    if (strstr(vb, "\"img\":{\"size\":2,\"distance\":\"Dot\"") == NULL ||
        strstr(vb, "\"txt\":{\"size\":4,\"distance\":\"Dot\"") == NULL)
        fail_msg("b: %s", vb);
    free(va);
    free(vb);
    assert_int_equal(catalog_acquire(f->cat, "gone", &h, NULL), ERR_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_autocreate_off_dead_letters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autocreate_on, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
