/*
 * test_ingest.c - Kafka ingest end to end: a librdkafka producer in the
 * test, the embedded broker (real Kafka protocol over TCP), the ingest
 * consumer group, real collections on RocksDB in a temporary directory.
 *
 *   - the resume rule and watermarks (sink_resume_offset, no Kafka);
 *   - every message format and operation kind, tombstones, producer
 *     versions, routes (dual writes), pattern subscriptions, partitions;
 *   - dead letters: bad messages mixed with good ones, each read back from
 *     the dead-letter topic with its key, value, headers and timestamp;
 *   - restarts: same group, new group, storage reopened, a replay from the
 *     beginning: nothing is applied twice and consumption resumes after
 *     the stored offsets; merged batches write few WAL records;
 *   - an unwritable dead-letter topic: with the local dead-letter store
 *     (dlq_local_dir) the dead letter is stored in its file with its
 *     fields and the partition moves on without a pause; without it the
 *     partition pauses and retries, and nothing moves past the bad
 *     message until its dead letter is in.
 *
 * A consumer group join takes about 3 s on the embedded broker (its
 * initial rebalance delay), so the tests start ingest as few times as
 * they can.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "dlq/dlqlocal.h"
#include "embed/embed.h"
#include "dlq/redrive.h"
#include "ingest/broker.h"
#include "ingest/ingest.h"
#include "ingest/sink.h"
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

/* The collection's stored offset, or -1 (also while the collection does
 * not exist yet: auto-creation makes it appear). */
static int64_t stored(fx_t *f, const char *coll, const char *t, int32_t part)
{
    catalog_handle_t *h;
    if (catalog_acquire(f->cat, coll, &h, NULL) != ERR_OK)
        return -1;
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

static void wait_assigned(fx_t *f, uint64_t n)
{
    int64_t end = now_ms() + WAIT_MS;
    ingest_stats_t st;
    for (ingest_stats_get(f->in, &st); st.assigned < n; ingest_stats_get(f->in, &st)) {
        if (now_ms() > end)
            fail_msg("%" PRIu64 " partitions assigned, waited for %" PRIu64, st.assigned, n);
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

/* The record of point id (JSON text "{...}"), or NULL when absent. */
static char *point(fx_t *f, const char *coll, uint64_t id)
{
    coll_sel_t sel = { .payload = COLL_PAYLOAD_ALL, .vector = COLL_VECTOR_ALL };
    catalog_handle_t *h;
    ptid_t pid = ptid_num(id);
    cJSON *out = NULL;
    char *text = NULL;

    assert_int_equal(catalog_acquire(f->cat, coll, &h, NULL), ERR_OK);
    assert_int_equal(coll_retrieve(catalog_handle_coll(h), &pid, 1, &sel, &out, NULL), ERR_OK);
    if (cJSON_GetArraySize(out) == 1)
        text = cJSON_PrintUnformatted(cJSON_GetArrayItem(out, 0));
    cJSON_Delete(out);
    catalog_release(h);
    return text;
}

static void expect_point(fx_t *f, const char *coll, uint64_t id, const char *want)
{
    char *got = point(f, coll, id);
    if (want == NULL && got != NULL)
        fail_msg("%s/%" PRIu64 ": expected absent, got %s", coll, id, got);
    if (want != NULL && (got == NULL || strcmp(got, want) != 0))
        fail_msg("%s/%" PRIu64 ": expected %s, got %s", coll, id, want, got ? got : "(absent)");
    free(got);
}

/* Read n messages of topic t partition 0 from the beginning.  The
 * messages keep *rk alive: destroy them, then tu_read_done(*rk). */
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

static size_t header_count(const rd_kafka_message_t *m, const char *name)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t len, n = 0;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    while (rd_kafka_header_get(h, n, name, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR)
        n++;
    return n;
}

/* ---- the resume rule, without Kafka ------------------------------------ */

static void write_source(fx_t *f, const char *coll, const char *t, int32_t part, int64_t off)
{
    catalog_handle_t *h;
    op_t op = { .type = OP_UPSERT };
    err_t e;
    assert_int_equal(catalog_acquire(f->cat, coll, &h, NULL), ERR_OK);
    op_source_add(&op, t, part, off);
    if (coll_write(catalog_handle_coll(h), &op, NULL, &e) != ERR_OK)
        fail_msg("coll_write: %s", e.msg);
    op_clear(&op);
    catalog_release(h);
}

static void test_ingest_resume_rule_and_watermarks(void **state)
{
    fx_t *f = *state;
    sink_opts_t so = { 0 };
    sink_t *s;
    err_t e;

    assert_int_equal(sink_new(f->cat, NULL, &so, &s, &e), ERR_OK);
    /* no collections: the group's position */
    assert_int_equal(sink_resume_offset(s, "t", 0, 7), 7);
    assert_int_equal(sink_resume_offset(s, "t", 0, RD_KAFKA_OFFSET_END), RD_KAFKA_OFFSET_END);
    create(f, "a", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    create(f, "b", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    write_source(f, "a", "t", 0, 5);
    /* b never saw t[0]: it needs what the group has not committed */
    assert_int_equal(sink_resume_offset(s, "t", 0, 3), 3);
    assert_int_equal(sink_resume_offset(s, "t", 0, 10), 6);
    assert_int_equal(sink_resume_offset(s, "t", 0, RD_KAFKA_OFFSET_BEGINNING),
                     RD_KAFKA_OFFSET_BEGINNING);
    assert_int_equal(sink_resume_offset(s, "t", 0, RD_KAFKA_OFFSET_END), 6);
    /* both stored: the stores decide, whatever the group says */
    write_source(f, "b", "t", 0, 8);
    assert_int_equal(sink_resume_offset(s, "t", 0, 3), 6);
    assert_int_equal(sink_resume_offset(s, "t", 0, 100), 6);
    assert_int_equal(sink_resume_offset(s, "t", 0, RD_KAFKA_OFFSET_BEGINNING), 6);
    assert_int_equal(sink_resume_offset(s, "t", 1, 4), 4);
    /* watermarks raise lagging stored offsets only */
    uint64_t seq_a = info(f, "a").applied_seq, seq_b = info(f, "b").applied_seq;
    sink_pos_t pos[] = { { "t", 0, 9 }, { "t", 1, 50 } };
    assert_int_equal(sink_watermark(s, pos, 2, &e), ERR_OK);
    assert_int_equal(stored(f, "a", "t", 0), 8);
    assert_int_equal(stored(f, "b", "t", 0), 8);
    assert_int_equal(stored(f, "a", "t", 1), -1);
    assert_int_equal(info(f, "a").applied_seq, seq_a + 1);
    assert_int_equal(info(f, "b").applied_seq, seq_b); /* already there: nothing written */
    assert_int_equal(sink_resume_offset(s, "t", 0, 3), 9);
    sink_stats_t st;
    sink_stats_get(s, &st);
    assert_int_equal(st.watermarks, 1);
    sink_free(s);
}

/* ---- every kind of message --------------------------------------------- */

static void produce_every_kind(fx_t *f)
{
    static const char *const in0[] = {
        "{\"collection_name\":\"c\",\"id\":1,\"vector\":[1,0],\"payload\":{\"k\":\"v1\"}}",
        "{\"collection_name\":\"c\",\"id\":2,\"vector\":[0,1]}",
        "{\"collection_name\":\"c\",\"points\":[{\"id\":3,\"vector\":[1,1]},"
        "{\"id\":4,\"vector\":[2,2],\"payload\":{\"x\":1,\"y\":2}}]}",
        "{\"collection_name\":\"c\",\"batch\":{\"ids\":[5,6],\"vectors\":[[1,2],[3,4]],"
        "\"payloads\":[{\"p\":5},{\"p\":6}]}}",
        NULL, /* tombstone {"collection_name":"c","id":2} */
        "{\"collection_name\":\"c\",\"op\":\"set_payload\",\"payload\":{\"s\":1},\"points\":[1]}",
        "{\"collection_name\":\"c\",\"op\":\"overwrite_payload\",\"payload\":{\"o\":1},\"points\":[3]}",
        "{\"collection_name\":\"c\",\"op\":\"delete_payload\",\"keys\":[\"x\"],\"points\":[4]}",
        "{\"collection_name\":\"c\",\"op\":\"clear_payload\",\"points\":[5]}",
        "{\"collection_name\":\"c\",\"op\":\"delete\",\"filter\":{\"must\":[{\"key\":\"o\","
        "\"match\":{\"value\":1}}]}}",
        NULL, /* tombstone {"collection_name":"c","id":4} */
        "{\"collection_name\":\"c\",\"id\":10,\"vector\":[1,0],\"payload\":{\"v\":5},\"version\":5}",
        "{\"collection_name\":\"c\",\"id\":10,\"vector\":[0,1],\"payload\":{\"v\":3},\"version\":3}",
        "{\"collection_name\":\"c\",\"op\":\"upsert\",\"points\":[{\"id\":11,\"vector\":[1,1]}],"
        "\"update_mode\":\"insert_only\"}",
    };
    for (size_t i = 0; i < sizeof(in0) / sizeof(in0[0]); i++) {
        const char *key = i == 4 ? "{\"collection_name\":\"c\",\"id\":2}"
                        : i == 10 ? "{\"id\":4,\"collection_name\":\"c\",\"version\":1}" : NULL;
        produce(f, "in", 0, key, in0[i]);
    }
    produce(f, "in", 1, NULL, "{\"collection_name\":\"n\",\"id\":1,\"vector\":{\"a\":[1,0],\"b\":[0,1]}}");
    produce(f, "in", 1, NULL, "{\"collection_name\":\"n\",\"op\":\"update_vectors\","
                              "\"points\":[{\"id\":1,\"vector\":{\"a\":[5,5]}}]}");
    produce(f, "in", 1, NULL, "{\"collection_name\":\"n\",\"op\":\"delete_vectors\","
                              "\"vector\":[\"b\"],\"points\":[1]}");
    produce(f, "in", 1, NULL, "{\"collection_name\":\"n\",\"id\":2,\"vector\":{\"a\":[1,1]}}");
    produce(f, "in", 1, "{\"collection_name\":\"n\",\"id\":2}", NULL);
    produce(f, "routed", 0, NULL, "{\"id\":100,\"vector\":[1,1]}");
    produce(f, "routed", 0, NULL, "{\"collection_name\":\"c2\",\"id\":101,\"vector\":[1,1]}");
    produce(f, "routed", 0, "100", NULL);
    produce(f, "pat.one", 0, NULL, "{\"collection_name\":\"c\",\"id\":200,\"vector\":[2,2]}");
    flush(f);
}

static void test_ingest_applies_every_kind(void **state)
{
    fx_t *f = *state;
    static const char *const topics[] = { "in", "routed", "^pat\\..*" };
    static const char *const routes[] = { "routed", "c,c2", NULL };

    create(f, "c", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    create(f, "c2", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    create(f, "n", "{\"vectors\": {\"a\": {\"size\": 2, \"distance\": \"Dot\"},"
                   " \"b\": {\"size\": 2, \"distance\": \"Dot\"}}}");
    topic(f, "in", 2);
    topic(f, "routed", 1);
    topic(f, "pat.one", 1);
    topic(f, "dlq", 1);
    produce_every_kind(f);
    ingest_opts_t o = opts(f, "g-kinds", topics, 3);
    o.routes = routes;
    start(f, &o);
    wait_stored(f, "c", "in", 0, 13);
    wait_stored(f, "n", "in", 1, 4);
    wait_stored(f, "c", "routed", 0, 2);
    wait_stored(f, "c2", "routed", 0, 2);
    wait_stored(f, "c", "pat.one", 0, 0);

    expect_point(f, "c", 1, "{\"id\":1,\"payload\":{\"k\":\"v1\",\"s\":1},\"vector\":[1,0]}");
    expect_point(f, "c", 2, NULL);                     /* tombstone, object key */
    expect_point(f, "c", 3, NULL);                     /* overwritten, then deleted by filter */
    expect_point(f, "c", 4, NULL);                     /* tombstone, object key + version */
    expect_point(f, "c", 5, "{\"id\":5,\"payload\":{},\"vector\":[1,2]}");
    expect_point(f, "c", 6, "{\"id\":6,\"payload\":{\"p\":6},\"vector\":[3,4]}");
    expect_point(f, "c", 10, "{\"id\":10,\"payload\":{\"v\":5},\"vector\":[1,0]}"); /* v3 older */
    expect_point(f, "c", 11, "{\"id\":11,\"payload\":{},\"vector\":[1,1]}");
    expect_point(f, "c", 100, NULL);                   /* routed to both, id key deletes in both */
    expect_point(f, "c2", 100, NULL);
    expect_point(f, "c", 101, "{\"id\":101,\"payload\":{},\"vector\":[1,1]}");
    expect_point(f, "c2", 101, "{\"id\":101,\"payload\":{},\"vector\":[1,1]}");
    expect_point(f, "c", 200, "{\"id\":200,\"payload\":{},\"vector\":[2,2]}");
    expect_point(f, "n", 1, "{\"id\":1,\"payload\":{},\"vector\":{\"a\":[5,5]}}");
    expect_point(f, "n", 2, NULL);
    ingest_stats_t st;
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.dead, 0);
    assert_int_equal(st.sink.retried, 0);
    assert_int_equal(st.sink.messages, 23);
    /* read-your-writes: the status, and waits for applied / future offsets */
    err_t e;
    assert_int_equal(ingest_wait_applied(f->in, "in", 0, 13, 5000, &e), ERR_OK);
    assert_int_equal(ingest_wait_applied(f->in, "routed", 0, 2, 5000, &e), ERR_OK);
    assert_int_equal(ingest_wait_applied(f->in, "in", 0, 1000, 50, &e), ERR_TIMEOUT);
    assert_int_equal(ingest_wait_applied(f->in, "nope", 0, 0, 50, &e), ERR_TIMEOUT);
    assert_non_null(strstr(e.msg, "not assigned"));
    cJSON *status = ingest_status_json(f->in);
    cJSON *p, *in0 = NULL;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(status, "partitions"))
        if (strcmp(cJSON_GetObjectItem(p, "topic")->valuestring, "in") == 0 &&
            cJSON_GetObjectItem(p, "partition")->valuedouble == 0)
            in0 = p;
    assert_non_null(in0);
    assert_int_equal((int)cJSON_GetObjectItem(in0, "applied")->valuedouble, 14);
    assert_int_equal((int)cJSON_GetObjectItem(in0, "consumed")->valuedouble, 14);
    cJSON_Delete(status);
    char *m = ingest_metrics_text(f->in);
    assert_non_null(strstr(m, "veclog_ingest_messages_total{outcome=\"applied\"}"));
    free(m);
    stop(f);
}

/* ---- dead letters ------------------------------------------------------ */

static const struct {
    const char *topic;
    int64_t offset;
    const char *stage, *cls, *needle;
} dead[] = {
    { "in", 1, "VALUE_CONVERTER", "veclog.error.invalid", "not valid JSON" },
    { "in", 2, "TASK_PUT", "veclog.error.invalid", "wrong vector dimension" },
    { "in", 4, "TASK_PUT", "veclog.error.not_found", "nope" },
    { "in", 5, "VALUE_CONVERTER", "veclog.error.invalid", "point.id" },
    { "in", 6, "VALUE_CONVERTER", "veclog.error.invalid", "payload must be a JSON object" },
    { "in", 7, "VALUE_CONVERTER", "veclog.error.unsupported", "sparse" },
    { "in", 8, "VALUE_CONVERTER", "veclog.error.too_large", "larger than the limit" },
    { "in", 9, "KEY_CONVERTER", "veclog.error.invalid", "key is null too" },
    { "in", 10, "VALUE_CONVERTER", "veclog.error.invalid", "not valid JSON" },
    { "routed", 0, "TASK_PUT", "veclog.error.invalid", "not routed" },
    { "huge", 0, "VALUE_CONVERTER", "veclog.error.too_large", "larger than the limit" },
};

#define HUGE_LEN 1500000 /* above the dead-letter producer's message.max.bytes */

static void produce_mixed(fx_t *f)
{
    char *big = malloc(5001);
    rd_kafka_headers_t *h = rd_kafka_headers_new(2);

    memset(big, ' ', 5000);
    big[5000] = '\0';
    big[0] = '{';
    big[4999] = '}';
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":1,\"vector\":[1,1]}");
    rd_kafka_header_add(h, "trace", -1, "abc", -1);
    produce_h(f, "in", 0, "k1", "not json", h, 1600000000000);
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":2,\"vector\":[1,2,3]}");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":3,\"vector\":[3,3]}");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"nope\",\"id\":4,\"vector\":[1,1]}");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":-5,\"vector\":[1,1]}");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":6,\"vector\":[1,1],\"payload\":[1]}");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":7,\"vector\":{\"s\":"
                              "{\"indices\":[1],\"values\":[1]}}}");
    produce(f, "in", 0, NULL, big);
    produce(f, "in", 0, NULL, NULL); /* tombstone without a key */
    h = rd_kafka_headers_new(2);
    rd_kafka_header_add(h, "__veclog.redrive.count", -1, "2", -1);
    rd_kafka_header_add(h, "__connect.errors.stage", -1, "OLD", -1);
    produce_h(f, "in", 0, NULL, "{redriven", h, 0);
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":11,\"vector\":[4,4]}");
    produce(f, "routed", 0, NULL, "{\"collection_name\":\"other\",\"id\":12,\"vector\":[4,4]}");
    char *huge = malloc(HUGE_LEN + 1);
    memset(huge, 'x', HUGE_LEN);
    huge[HUGE_LEN] = '\0';
    produce(f, "huge", 0, "hk", huge);
    flush(f);
    free(huge);
    free(big);
}

static void check_dead_letter(const rd_kafka_message_t *m, size_t i)
{
    char buf[600], off[32];

    snprintf(off, sizeof(off), "%" PRId64, dead[i].offset);
    assert_string_equal(tu_hdr(m, "__connect.errors.topic", buf, sizeof(buf)), dead[i].topic);
    assert_string_equal(tu_hdr(m, "__connect.errors.partition", buf, sizeof(buf)), "0");
    assert_string_equal(tu_hdr(m, "__connect.errors.offset", buf, sizeof(buf)), off);
    assert_string_equal(tu_hdr(m, "__connect.errors.stage", buf, sizeof(buf)), dead[i].stage);
    assert_string_equal(tu_hdr(m, "__connect.errors.exception.class.name", buf, sizeof(buf)),
                        dead[i].cls);
    const char *msg = tu_hdr(m, "__connect.errors.exception.message", buf, sizeof(buf));
    if (msg == NULL || strstr(msg, dead[i].needle) == NULL)
        fail_msg("offset %" PRId64 ": message \"%s\" lacks \"%s\"", dead[i].offset,
                 msg ? msg : "(none)", dead[i].needle);
    assert_string_equal(tu_hdr(m, "__veclog.redrive.count", buf, sizeof(buf)),
                        dead[i].offset == 10 ? "2" : "0");
    if (dead[i].offset == 9 && strcmp(dead[i].topic, "in") == 0)
        assert_null(m->payload); /* the tombstone stays a tombstone */
    if (strcmp(dead[i].topic, "huge") == 0) {
        /* too large for the dead-letter topic: sent without its value */
        assert_null(m->payload);
        assert_int_equal(m->key_len, 2);
        snprintf(off, sizeof(off), "%d", HUGE_LEN);
        assert_string_equal(tu_hdr(m, "__veclog.value.omitted", buf, sizeof(buf)), off);
    } else {
        assert_null(tu_hdr(m, "__veclog.value.omitted", buf, sizeof(buf)));
    }
    assert_int_equal(header_count(m, "__connect.errors.stage"), 1);
    assert_int_equal(header_count(m, "__veclog.redrive.count"), 1);
}

static void test_ingest_dead_letters(void **state)
{
    fx_t *f = *state;
    static const char *const topics[] = { "in", "routed", "huge" };
    static const char *const routes[] = { "routed", "c", NULL };
    rd_kafka_message_t *got[16];
    char buf[64];
    size_t n_dead = sizeof(dead) / sizeof(dead[0]);

    create(f, "c", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    topic(f, "in", 1);
    topic(f, "routed", 1);
    topic(f, "huge", 1);
    topic(f, "dlq", 1);
    produce_mixed(f);
    ingest_opts_t o = opts(f, "g-dead", topics, 3);
    o.max_message_bytes = 4096;
    o.routes = routes;
    start(f, &o);
    wait_stored(f, "c", "in", 0, 11);
    rd_kafka_t *reader;
    assert_int_equal(read_topic(f, "dlq", got, n_dead, &reader), n_dead);
    for (size_t i = 0; i < n_dead; i++) {
        size_t k;
        for (k = 0; k < n_dead; k++)
            if (atoll(tu_hdr(got[k], "__connect.errors.offset", buf, sizeof(buf))) == dead[i].offset &&
                strcmp(tu_hdr(got[k], "__connect.errors.topic", buf, sizeof(buf)), dead[i].topic) == 0)
                break;
        if (k == n_dead)
            fail_msg("no dead letter for %s@%" PRId64, dead[i].topic, dead[i].offset);
        check_dead_letter(got[k], i);
    }
    /* the original key, value, headers and timestamp */
    for (size_t k = 0; k < n_dead; k++) {
        if (strcmp(tu_hdr(got[k], "__connect.errors.offset", buf, sizeof(buf)), "1") != 0)
            continue;
        rd_kafka_timestamp_type_t tst;
        assert_int_equal(got[k]->key_len, 2);
        assert_memory_equal(got[k]->key, "k1", 2);
        assert_int_equal(got[k]->len, 8);
        assert_memory_equal(got[k]->payload, "not json", 8);
        assert_string_equal(tu_hdr(got[k], "trace", buf, sizeof(buf)), "abc");
        assert_true(rd_kafka_message_timestamp(got[k], &tst) == 1600000000000);
    }
    tu_read_done(reader, got, n_dead);
    expect_point(f, "c", 1, "{\"id\":1,\"payload\":{},\"vector\":[1,1]}");
    expect_point(f, "c", 3, "{\"id\":3,\"payload\":{},\"vector\":[3,3]}");
    expect_point(f, "c", 11, "{\"id\":11,\"payload\":{},\"vector\":[4,4]}");
    assert_int_equal(info(f, "c").points, 3);
    ingest_stats_t st;
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.dead, n_dead);
    assert_int_equal(st.sink.retried, 0);
    /* dead letters by reason: each table row's class name is
     * veclog.error.<err_code_name> */
    uint64_t by_total = 0;
    for (int c = 0; c < SINK_REASONS; c++) {
        uint64_t want = 0;
        char cls[64];
        snprintf(cls, sizeof(cls), "veclog.error.%s", err_code_name(c));
        for (size_t i = 0; i < n_dead; i++)
            want += strcmp(dead[i].cls, cls) == 0;
        assert_int_equal(st.sink.dead_by[c], want);
        by_total += st.sink.dead_by[c];
    }
    assert_int_equal(by_total, n_dead);
    char *m = ingest_metrics_text(f->in);
    assert_non_null(strstr(m, "veclog_dlq_records_total{reason=\"invalid\"}"));
    free(m);
    stop(f);
}

/* ---- restarts: exactly once -------------------------------------------- */

static void produce_points(fx_t *f, int from, int to)
{
    char v[128];
    for (int i = from; i < to; i++) {
        snprintf(v, sizeof(v), "{\"collection_name\":\"c\",\"id\":%d,\"vector\":[%d,1]}", i, i);
        produce(f, "in", i % 2, NULL, v);
    }
    flush(f);
}

static void test_ingest_restart_exactly_once(void **state)
{
    fx_t *f = *state;
    static const char *const topics[] = { "in" };
    ingest_opts_t o = opts(f, "g1", topics, 1);
    ingest_stats_t st;

    create(f, "c", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    topic(f, "in", 2);
    topic(f, "dlq", 1);
    produce_points(f, 0, 600);
    start(f, &o);
    wait_stored(f, "c", "in", 0, 299);
    wait_stored(f, "c", "in", 1, 299);
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.applied, 600);
    /* merged: far fewer WAL records than messages */
    print_message("600 upserts in %" PRIu64 " ops over %" PRIu64 " batches\n", st.sink.ops,
                  st.batches);
    assert_true(st.sink.ops <= st.batches * 2);
    assert_true(st.sink.ops < 60);
    stop(f);
    coll_info_t i1 = info(f, "c");
    assert_int_equal(i1.points, 600);

    /* same group, nothing new: nothing read, nothing written */
    start(f, &o);
    wait_assigned(f, 2);
    usleep(500000);
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.messages, 0);
    assert_int_equal(info(f, "c").applied_seq, i1.applied_seq);
    produce_points(f, 600, 610);
    wait_stored(f, "c", "in", 0, 304);
    wait_stored(f, "c", "in", 1, 304);
    stop(f);
    coll_info_t i2 = info(f, "c");
    assert_int_equal(i2.points, 610);
    assert_true(i2.applied_seq > i1.applied_seq && i2.applied_seq <= i1.applied_seq + 4);

    /* storage reopened, a new group with no commits: the stores' offsets */
    catalog_close(f->cat);
    cat_open(f);
    o.group_id = "g2";
    start(f, &o);
    wait_assigned(f, 2);
    usleep(500000);
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.messages, 0);
    stop(f);
    assert_int_equal(info(f, "c").applied_seq, i2.applied_seq);

    /* a collection that never saw the topic makes a new group read from
     * the beginning: every message is skipped for c */
    create(f, "d", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    o.group_id = "g3";
    start(f, &o);
    for (int64_t end = now_ms() + WAIT_MS;; usleep(20000)) {
        ingest_stats_get(f->in, &st);
        if (st.sink.messages >= 610 || now_ms() > end)
            break;
    }
    assert_int_equal(st.sink.messages, 610);
    assert_int_equal(st.sink.skipped, 610);
    assert_int_equal(st.sink.applied, 0);
    stop(f);
    assert_int_equal(info(f, "c").applied_seq, i2.applied_seq);
    assert_int_equal(info(f, "c").points, 610);
}

/* ---- an unwritable dead-letter topic, no local store: pause -------------- */

static void test_ingest_dlq_outage_pauses(void **state)
{
    fx_t *f = *state;
    static const char *const topics[] = { "in" };
    ingest_opts_t o = opts(f, "g-outage", topics, 1);
    rd_kafka_message_t *got[4];
    ingest_stats_t st;
    err_t e;

    create(f, "c", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    topic(f, "in", 1);
    topic(f, "dlq", 1);
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":1,\"vector\":[1,1]}");
    produce(f, "in", 0, NULL, "bad");
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":2,\"vector\":[2,2]}");
    flush(f);
    /* the next produce requests (the dead letter's) are refused */
    assert_int_equal(broker_push_errors(f->b, 0, 3, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                        &e), ERR_OK);
    start(f, &o);
    wait_stored(f, "c", "in", 0, 2);
    /* the good messages are in, the dead letter is retried until written */
    rd_kafka_t *reader;
    assert_int_equal(read_topic(f, "dlq", got, 1, &reader), 1);
    assert_memory_equal(got[0]->payload, "bad", 3);
    tu_read_done(reader, got, 1);
    for (int64_t end = now_ms() + WAIT_MS;; usleep(20000)) {
        ingest_stats_get(f->in, &st);
        if (st.sink.dead >= 1 || now_ms() > end)
            break;
    }
    assert_true(st.pauses >= 1);
    assert_int_equal(st.sink.dead, 1);
    assert_true(st.sink.retried >= 1);
    assert_int_equal(info(f, "c").points, 2);
    uint64_t seq = info(f, "c").applied_seq;
    stop(f);
    /* restarting reads nothing again: the group's commit passed the bad
     * message only once its dead letter was written */
    start(f, &o);
    wait_assigned(f, 1);
    usleep(500000);
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.messages, 0);
    stop(f);
    assert_true(info(f, "c").applied_seq <= seq + 1); /* at most the revocation watermark */
}

/* ---- an unwritable dead-letter topic: the local store ------------------- */

typedef struct got_local {
    size_t n;
    char topic[16], value[16], stage[32], cls[64], hdr[16];
    int32_t partition;
    int64_t offset, timestamp;
    bool key_null;
} got_local_t;

static int got_local_cb(const dlqlocal_rec_t *r, void *arg)
{
    got_local_t *g = arg;
    g->n++;
    snprintf(g->topic, sizeof(g->topic), "%s", r->topic);
    snprintf(g->value, sizeof(g->value), "%.*s", (int)r->value_len, (const char *)r->value);
    snprintf(g->stage, sizeof(g->stage), "%s", r->stage);
    snprintf(g->cls, sizeof(g->cls), "%s", r->class_name);
    g->hdr[0] = '\0';
    if (r->n_headers == 1 && strcmp(r->headers[0].name, "h") == 0)
        snprintf(g->hdr, sizeof(g->hdr), "%.*s", (int)r->headers[0].len,
                 (const char *)r->headers[0].value);
    g->partition = r->partition;
    g->offset = r->offset;
    g->timestamp = r->timestamp;
    g->key_null = r->key == NULL;
    return 0;
}

static void test_ingest_dlq_outage_stores_locally(void **state)
{
    fx_t *f = *state;
    static const char *const topics[] = { "in" };
    ingest_opts_t o = opts(f, "g-outage", topics, 1);
    char local[512], path[600];
    ingest_stats_t st;
    err_t e;

    snprintf(local, sizeof(local), "%s/dlq", f->dir);
    o.dlq_local_dir = local;
    create(f, "c", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    topic(f, "in", 1);
    topic(f, "dlq", 1);
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":1,\"vector\":[1,1]}");
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    rd_kafka_header_add(h, "h", -1, "hv", -1);
    produce_h(f, "in", 0, NULL, "bad", h, 1700000000000);
    produce(f, "in", 0, NULL, "{\"collection_name\":\"c\",\"id\":2,\"vector\":[2,2]}");
    flush(f);
    /* the dead letter's produce requests are refused */
    assert_int_equal(broker_push_errors(f->b, 0, 3, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                        &e), ERR_OK);
    start(f, &o);
    wait_stored(f, "c", "in", 0, 2);
    for (int64_t end = now_ms() + WAIT_MS;; usleep(20000)) {
        ingest_stats_get(f->in, &st);
        if (st.sink.dead >= 1 || now_ms() > end)
            break;
    }
    /* stored locally: dead, no pause, no retry, the partition moved on */
    assert_int_equal(st.sink.dead, 1);
    assert_int_equal(st.pauses, 0);
    assert_int_equal(st.sink.retried, 0);
    assert_int_equal(info(f, "c").points, 2);
    snprintf(path, sizeof(path), "%s/local-0.log", local);
    got_local_t g = { 0 };
    size_t n;
    bool torn;
    assert_int_equal(dlqlocal_read(path, got_local_cb, &g, &n, &torn, &e), ERR_OK);
    assert_int_equal(n, 1);
    assert_false(torn);
    assert_string_equal(g.topic, "in");
    assert_int_equal(g.partition, 0);
    assert_int_equal(g.offset, 1);
    assert_int_equal(g.timestamp, 1700000000000);
    assert_true(g.key_null);
    assert_string_equal(g.value, "bad");
    assert_string_equal(g.hdr, "hv");
    assert_string_equal(g.stage, "VALUE_CONVERTER");
    assert_string_equal(g.cls, "veclog.error.invalid");
    uint64_t seq = info(f, "c").applied_seq;
    stop(f);
    /* restarting reads nothing again: the commit passed the bad message;
     * the topic takes records again, so the local one is forwarded with
     * the headers a direct dead letter has, and its file deleted */
    broker_clear_errors(f->b, 0);
    start(f, &o);
    wait_assigned(f, 1);
    rd_kafka_message_t *got[2];
    rd_kafka_t *reader;
    assert_int_equal(read_topic(f, "dlq", got, 1, &reader), 1);
    char buf[64];
    assert_memory_equal(got[0]->payload, "bad", 3);
    assert_null(got[0]->key);
    assert_string_equal(tu_hdr(got[0], "h", buf, sizeof(buf)), "hv");
    assert_string_equal(tu_hdr(got[0], "__connect.errors.topic", buf, sizeof(buf)), "in");
    assert_string_equal(tu_hdr(got[0], "__connect.errors.offset", buf, sizeof(buf)), "1");
    assert_string_equal(tu_hdr(got[0], "__connect.errors.stage", buf, sizeof(buf)),
                        "VALUE_CONVERTER");
    assert_string_equal(tu_hdr(got[0], "__connect.errors.exception.class.name", buf,
                               sizeof(buf)), "veclog.error.invalid");
    assert_string_equal(tu_hdr(got[0], "__veclog.redrive.count", buf, sizeof(buf)), "0");
    rd_kafka_timestamp_type_t tst;
    assert_true(rd_kafka_message_timestamp(got[0], &tst) == 1700000000000);
    tu_read_done(reader, got, 1);
    for (int64_t end = now_ms() + WAIT_MS; access(path, F_OK) == 0 && now_ms() < end;)
        usleep(20000);
    assert_int_not_equal(access(path, F_OK), 0);
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.messages, 0);
    stop(f);
    assert_true(info(f, "c").applied_seq <= seq + 1); /* at most the revocation watermark */
}

/* ---- opt-in auto-creation of collections (kafka.auto_create_collections) */

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
    const char *msg = tu_hdr(got[0], "__connect.errors.exception.message", buf, sizeof(buf));
    if (msg == NULL || strstr(msg, want_msg) == NULL)
        fail_msg("dead letter: %s, expected %s", msg ? msg : "(none)", want_msg);
    tu_read_done(reader, got, 1);
}

static void test_ingest_autocreate_off_dead_letters(void **state)
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

static void test_ingest_autocreate_on(void **state)
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

/* The cause of a dead letter is fixed (the collection created), then
 * redrive re-produces it to its topic and ingest applies it. */
static void test_ingest_redrive_after_fix_applies(void **state)
{
    fx_t *f = *state;
    static const char *const topics[] = { "in" };
    ingest_opts_t o = opts(f, "g-redrive", topics, 1);
    redrive_opts_t ro = { .brokers = broker_bootstraps(f->b), .topic = "dlq",
                          .group_id = "g-redrive", .properties = props };
    redrive_t *r;
    cJSON *res = NULL;
    err_t e;

    topic(f, "in", 1);
    topic(f, "dlq", 1);
    produce(f, "in", 0, "k1", "{\"collection_name\":\"later\",\"id\":5,\"vector\":[1,2],"
                              "\"payload\":{\"fixed\":true}}");
    flush(f);
    start(f, &o);
    expect_dead(f, "later");
    create(f, "later", "{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    assert_int_equal(redrive_open(&ro, &r, &e), ERR_OK);
    redrive_req_t q = { .all = true };
    if (redrive_run(r, &q, &res, &e) != ERR_OK)
        fail_msg("redrive: %s", e.msg);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "redriven")), 1);
    cJSON_Delete(res);
    redrive_close(r);
    wait_stored(f, "later", "in", 0, 1); /* the redriven copy is offset 1 of "in" */
    expect_point(f, "later", 5, "{\"id\":5,\"payload\":{\"fixed\":true},\"vector\":[1,2]}");
    stop(f);
}

/* Point id's vector (name NULL: the unnamed one) in coll equals model's
 * embedding of text. */
static void expect_embedded(fx_t *f, const char *coll, uint64_t id, const char *model,
                            const char *text, const embed_reg_t *reg)
{
    embed_model_t *m;
    float want[512];
    err_t e;
    char *got = point(f, coll, id);

    if (got == NULL)
        fail_msg("%s/%" PRIu64 ": absent", coll, id);
    cJSON *j = cJSON_Parse(got), *v = cJSON_GetObjectItem(j, "vector");
    assert_int_equal(embed_model_get(reg, model, &m, &e), ERR_OK);
    assert_int_equal(embed_texts(m, &text, 1, want, &e), ERR_OK);
    assert_int_equal(cJSON_GetArraySize(v), (int)embed_model_dim(m));
    for (uint32_t i = 0; i < embed_model_dim(m); i++)
        if (fabs(cJSON_GetArrayItem(v, (int)i)->valuedouble - want[i]) > 1e-5)
            fail_msg("%s/%" PRIu64 ": component %u differs from %s(\"%s\")", coll, id, i, model, text);
    cJSON_Delete(j);
    free(got);
}

/* Documents in messages: embedded per target, a route's model override
 * for one target and the message's model for the other; an unknown model
 * is dead-lettered; an embedder that is down is retried, never dead. */
static void test_ingest_documents(void **state)
{
    fx_t *f = *state;
    static const char *const topics[] = { "in", "slow" };
    static const char *const routes[] = { "in", "c,c2:veclog/hash-512", NULL };
    ingest_opts_t o = opts(f, "g-doc", topics, 2);
    embed_conf_t down;
    embed_reg_t *reg;
    ingest_stats_t st;
    err_t e;

    embed_conf_init(&down);
    down.name = "down";
    down.type = "http";
    down.api = "tei";
    down.url = "http://127.0.0.1:9/embed"; /* discard port: nothing listens */
    down.dim = 256;
    down.timeout_ms = 200;
    down.max_retries = 0;
    assert_int_equal(embed_reg_new(&down, 1, &reg, &e), ERR_OK);
    o.routes = routes;
    o.embed = reg;
    topic(f, "in", 1);
    topic(f, "slow", 1);
    topic(f, "dlq", 1);
    create(f, "c", "{\"vectors\": {\"size\": 256, \"distance\": \"Cosine\"}}");
    create(f, "c2", "{\"vectors\": {\"size\": 512, \"distance\": \"Cosine\"}}");
    produce(f, "in", 0, NULL, "{\"id\":1,\"vector\":{\"text\":\"hello kafka\","
                              "\"model\":\"veclog/hash-256\"}}");
    produce(f, "in", 0, NULL, "{\"id\":2,\"vector\":{\"text\":\"x\",\"model\":\"no/such\"}}");
    produce(f, "in", 0, NULL, "{\"points\":[{\"id\":3,\"vector\":{\"text\":\"third one\","
                              "\"model\":\"veclog/hash-256\"}}]}");
    produce(f, "slow", 0, NULL, "{\"collection_name\":\"c\",\"id\":5,"
                                "\"vector\":{\"text\":\"y\",\"model\":\"down\"}}");
    flush(f);
    start(f, &o);
    wait_stored(f, "c", "in", 0, 2);
    wait_stored(f, "c2", "in", 0, 2);
    int64_t end = now_ms() + WAIT_MS;
    for (ingest_stats_get(f->in, &st); st.sink.retried < 2; ingest_stats_get(f->in, &st)) {
        if (now_ms() > end)
            fail_msg("the message for the model that is down was not retried");
        usleep(20000);
    }
    expect_dead(f, "no/such");
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.dead, 1);
    stop(f);
    expect_embedded(f, "c", 1, "veclog/hash-256", "hello kafka", reg);
    expect_embedded(f, "c2", 1, "veclog/hash-512", "hello kafka", reg);
    expect_embedded(f, "c", 3, "veclog/hash-256", "third one", reg);
    expect_embedded(f, "c2", 3, "veclog/hash-512", "third one", reg);
    expect_point(f, "c", 2, NULL);
    expect_embedded(f, "c2", 2, "veclog/hash-512", "x", reg); /* the override knows its model */
    expect_point(f, "c", 5, NULL);
    assert_int_equal(stored(f, "c", "slow", 0), -1);
    embed_reg_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ingest_resume_rule_and_watermarks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_applies_every_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_dead_letters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_restart_exactly_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_dlq_outage_pauses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_dlq_outage_stores_locally, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_autocreate_off_dead_letters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_autocreate_on, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_redrive_after_fix_applies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_documents, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
