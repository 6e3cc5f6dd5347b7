/*
 * test_ingest_outage.c - Kafka ingest across broker outages: the embedded
 * broker (3 brokers, real Kafka protocol over TCP) is taken down and
 * brought back up (broker_set_up) while a librdkafka producer in the test
 * keeps producing - into its local queue while the brokers are down - and
 * the ingest consumer group applies to a real collection.
 *
 *   - short outages (shorter than the session timeout) and one longer than
 *     it (the member is expelled and re-joins), in the middle of the
 *     stream;
 *   - afterwards: the topic holds exactly the messages produced (the
 *     idempotent producer wrote none twice), ingest applied each exactly
 *     once (sink stats: applied = messages produced, nothing dead), every
 *     point holds the payload of the last message for it, the stored
 *     offsets are the partitions' ends, and a restart reads nothing.
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
#include "ingest/sink.h"
#include "store/catalog.h"
#include "store/log.h"
#include "tests/testutil.h"

#define WAIT_MS 45000
#define N_BROKERS 3
#define PARTS 4
#define IDS 400 /* a multiple of PARTS: point j % IDS lives in partition j % PARTS */

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

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    catalog_opts_t o;
    char errstr[256];
    err_t e;

    log_level_set(getenv("VECLOG_TEST_LOG") ? LOG_INFO : LOG_OFF);
    f->dir = tu_tmpdir("ingest-outage");
    catalog_opts_default(&o);
    o.storage_path = f->dir;
    if (catalog_open(&o, &f->cat, &e) != ERR_OK)
        fail_msg("catalog_open: %s", e.msg);
    if (broker_start(N_BROKERS, &f->b, &e) != ERR_OK)
        fail_msg("broker_start: %s", e.msg);
    rd_kafka_conf_set(conf, "bootstrap.servers", broker_bootstraps(f->b), NULL, 0);
    rd_kafka_conf_set(conf, "linger.ms", "5", NULL, 0);
    if (getenv("VECLOG_TEST_LOG") == NULL)
        rd_kafka_conf_set(conf, "log_level", "0", NULL, 0); /* refused connections expected */
    rd_kafka_conf_set(conf, "enable.idempotence", "true", NULL, 0);
    rd_kafka_conf_set(conf, "message.timeout.ms", "0", NULL, 0); /* never give up */
    rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "500", NULL, 0);
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

static void brokers_up(fx_t *f, int up)
{
    err_t e;
    for (int id = 1; id <= N_BROKERS; id++)
        if (broker_set_up(f->b, id, up, &e) != ERR_OK)
            fail_msg("broker_set_up %d %d: %s", id, up, e.msg);
}

/* Message j: point j % IDS with payload {"j": j}, to partition j % PARTS.
 * Queued locally when the brokers are down. */
static void produce_range(fx_t *f, int from, int to, int pace_us)
{
    char v[160];
    for (int j = from; j < to; j++) {
        snprintf(v, sizeof(v),
                 "{\"collection_name\":\"c\",\"id\":%d,\"vector\":[1,%d],\"payload\":{\"j\":%d}}",
                 j % IDS, j % 7, j);
        rd_kafka_resp_err_t e = rd_kafka_producev(
            f->prod, RD_KAFKA_V_TOPIC("in"), RD_KAFKA_V_PARTITION(j % PARTS),
            RD_KAFKA_V_VALUE(v, strlen(v)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            fail_msg("produce %d: %s", j, rd_kafka_err2str(e));
        rd_kafka_poll(f->prod, 0);
        if (pace_us > 0 && j % 20 == 19)
            usleep((useconds_t)pace_us);
    }
}

static int64_t stored(fx_t *f, int32_t part)
{
    catalog_handle_t *h;
    assert_int_equal(catalog_acquire(f->cat, "c", &h, NULL), ERR_OK);
    int64_t off = coll_source_offset(catalog_handle_coll(h), "in", part);
    catalog_release(h);
    return off;
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

static char *point(fx_t *f, uint64_t id)
{
    coll_sel_t sel = { .payload = COLL_PAYLOAD_ALL };
    catalog_handle_t *h;
    ptid_t pid = ptid_num(id);
    cJSON *out = NULL;
    char *text = NULL;

    assert_int_equal(catalog_acquire(f->cat, "c", &h, NULL), ERR_OK);
    assert_int_equal(coll_retrieve(catalog_handle_coll(h), &pid, 1, &sel, &out, NULL), ERR_OK);
    if (cJSON_GetArraySize(out) == 1)
        text = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(out, 0), "payload"));
    cJSON_Delete(out);
    catalog_release(h);
    return text;
}

static coll_info_t info(fx_t *f)
{
    catalog_handle_t *h;
    coll_info_t i;
    assert_int_equal(catalog_acquire(f->cat, "c", &h, NULL), ERR_OK);
    coll_info_get(catalog_handle_coll(h), &i);
    catalog_release(h);
    return i;
}

static void test_outages_mid_stream_exactly_once(void **state)
{
    fx_t *f = *state;
    static const char *const topics[] = { "in" };
    static const char *const props[] = {
        "session.timeout.ms", "4000", "heartbeat.interval.ms", "1000",
        "reconnect.backoff.max.ms", "500", NULL,
    };
    /* outage lengths: short ones, and one past the session timeout */
    static const int outage_ms[] = { 1500, 5500, 800 };
    const int per = 1000;  /* messages while up, and again while down, per round */
    const int n_rounds = (int)(sizeof(outage_ms) / sizeof(outage_ms[0]));
    const int total = n_rounds * 2 * per + per;
    ingest_opts_t o = {
        .brokers = broker_bootstraps(f->b), .group_id = "g-outage", .topics = topics,
        .n_topics = 1, .batch_size = 200, .batch_timeout_ms = 20, .dlq_topic = "dlq",
        .dlq_timeout_ms = 2000, .retry_max_ms = 400, .properties = props,
    };
    cJSON *body = cJSON_Parse("{\"vectors\": {\"size\": 2, \"distance\": \"Dot\"}}");
    ingest_stats_t st;
    err_t e;
    int j = 0;

    if (catalog_create(f->cat, "c", body, &e) != ERR_OK)
        fail_msg("create: %s", e.msg);
    cJSON_Delete(body);
    assert_int_equal(broker_topic_create(f->b, "in", PARTS, &e), ERR_OK);
    assert_int_equal(broker_topic_create(f->b, "dlq", 1, &e), ERR_OK);
    if (ingest_start(f->cat, &o, &f->in, &e) != ERR_OK)
        fail_msg("ingest_start: %s", e.msg);
    wait_assigned(f, PARTS);

    for (int r = 0; r < n_rounds; r++) {
        /* streaming: the consumer is applying when the brokers go down */
        ingest_stats_get(f->in, &st);
        uint64_t before = st.sink.applied;
        produce_range(f, j, j + per / 2, 30000);
        for (int64_t end = now_ms() + WAIT_MS; st.sink.applied == before; usleep(5000)) {
            if (now_ms() > end)
                fail_msg("round %d: nothing applied while streaming", r);
            ingest_stats_get(f->in, &st);
        }
        produce_range(f, j + per / 2, j + per, 10000);
        j += per;
        brokers_up(f, 0);
        int64_t t0 = now_ms();
        produce_range(f, j, j + per, 0); /* into the producer's local queue */
        j += per;
        int64_t left = outage_ms[r] - (now_ms() - t0);
        if (left > 0)
            usleep((useconds_t)left * 1000);
        ingest_stats_get(f->in, &st);
        print_message("round %d: %d ms down, %" PRIu64 " applied so far\n", r, outage_ms[r],
                      st.sink.applied);
        brokers_up(f, 1);
    }
    produce_range(f, j, j + per, 0);
    j += per;
    assert_int_equal(j, total);
    assert_int_equal(rd_kafka_flush(f->prod, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);

    /* the topic holds each message once: the partitions' ends add up */
    int64_t ends[PARTS], sum = 0;
    for (int p = 0; p < PARTS; p++) {
        int64_t lo, hi;
        assert_int_equal(rd_kafka_query_watermark_offsets(f->prod, "in", p, &lo, &hi, 10000),
                         RD_KAFKA_RESP_ERR_NO_ERROR);
        ends[p] = hi;
        sum += hi;
    }
    assert_int_equal(sum, total);

    /* everything applied: stored offsets reach every partition's end */
    int64_t end = now_ms() + WAIT_MS;
    for (int p = 0; p < PARTS; p++)
        while (stored(f, p) < ends[p] - 1) {
            if (now_ms() > end)
                fail_msg("in[%d]: stored %" PRId64 ", end %" PRId64, p, stored(f, p), ends[p]);
            usleep(20000);
        }
    for (int p = 0; p < PARTS; p++)
        assert_int_equal(stored(f, p), ends[p] - 1);
    ingest_stats_get(f->in, &st);
    print_message("%" PRIu64 " messages seen, %" PRIu64 " applied, %" PRIu64 " skipped, %" PRIu64
                  " dead, %" PRIu64 " retried, %" PRIu64 " pauses\n",
                  st.sink.messages, st.sink.applied, st.sink.skipped, st.sink.dead,
                  st.sink.retried, st.pauses);
    assert_int_equal(st.sink.applied, total);
    assert_int_equal(st.sink.dead, 0);

    /* every point holds its last message's payload */
    assert_int_equal(info(f).points, IDS);
    for (int id = 0; id < IDS; id++) {
        char want[32];
        char *got = point(f, (uint64_t)id);
        snprintf(want, sizeof(want), "{\"j\":%d}", (total - 1 - id) / IDS * IDS + id);
        if (got == NULL || strcmp(got, want) != 0)
            fail_msg("point %d: got %s, want %s", id, got ? got : "(absent)", want);
        free(got);
    }

    /* a restart of ingest (same group) reads nothing more */
    uint64_t seq = info(f).applied_seq;
    ingest_stop(f->in);
    f->in = NULL;
    if (ingest_start(f->cat, &o, &f->in, &e) != ERR_OK)
        fail_msg("ingest_start: %s", e.msg);
    wait_assigned(f, PARTS);
    usleep(500000);
    ingest_stats_get(f->in, &st);
    assert_int_equal(st.sink.applied, 0);
    assert_int_equal(info(f).applied_seq, seq);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outages_mid_stream_exactly_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
