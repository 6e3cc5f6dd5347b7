/*
 * test_backfill.c - backfill jobs (ingest/backfill.h) on a real catalog in
 * a temporary directory: copy and embed modes point by point, resume from
 * the target's cursor after a restart, re-runs and deletes that change
 * nothing, pause / resume / cancel, points without text, an unreachable
 * model server, and the /backfill HTTP routes through api_handle.  With
 * an embedded broker: points without text are dead-lettered (read back
 * from the dead-letter topic with their key, value and Connect headers),
 * or stored in <dir>/dlq-backfill when the topic refuses writes and
 * forwarded once it takes them again.
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

#include "dlq/dlq.h"
#include "dlq/dlqlocal.h"
#include "embed/embed.h"
#include "ingest/backfill.h"
#include "ingest/broker.h"
#include "query/api.h"
#include "store/catalog.h"
#include "store/log.h"
#include "tests/testutil.h"

typedef struct fx {
    char *dir;
    catalog_t *cat;
    embed_reg_t *reg;
    backfill_mgr_t *m;
    broker_t *b;                /* dead-letter tests only */
    dlq_t *dlq;
} fx_t;

static void mgr_open(fx_t *f)
{
    backfill_opts_t o = { .cat = f->cat, .storage_path = f->dir, .reg = f->reg,
                          .retry_min_ms = 20, .retry_max_ms = 100, .dlq = f->dlq };
    err_t err;
    if (backfill_mgr_open(&o, &f->m, &err) != ERR_OK)
        fail_msg("backfill_mgr_open: %s", err.msg);
}

static void cat_open(fx_t *f)
{
    catalog_opts_t co;
    err_t err;
    catalog_opts_default(&co);
    co.storage_path = f->dir;
    if (catalog_open(&co, &f->cat, &err) != ERR_OK)
        fail_msg("catalog_open: %s", err.msg);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    embed_conf_t down;
    err_t err;

    log_level_set(LOG_ERROR);
    f->dir = tu_tmpdir("backfill");
    cat_open(f);
    embed_conf_init(&down);
    down.name = "down";
    down.type = "http";
    down.url = "http://127.0.0.1:1/v1/embeddings";
    down.model = "m";
    down.dim = 256;
    down.max_retries = 0;
    down.timeout_ms = 200;
    if (embed_reg_new(&down, 1, &f->reg, &err) != ERR_OK)
        fail_msg("embed_reg_new: %s", err.msg);
    mgr_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    backfill_mgr_close(f->m);
    dlq_close(f->dlq);
    broker_stop(f->b);
    catalog_close(f->cat);
    embed_reg_free(f->reg);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void coll_create(fx_t *f, const char *name, int dim)
{
    char body[128];
    err_t err;
    snprintf(body, sizeof(body), "{\"vectors\": {\"size\": %d, \"distance\": \"Dot\"}}", dim);
    cJSON *b = cJSON_Parse(body);
    if (catalog_create(f->cat, name, b, &err) != ERR_OK)
        fail_msg("create %s: %s", name, err.msg);
    cJSON_Delete(b);
}

static coll_t *coll_get(fx_t *f, const char *name, catalog_handle_t **h)
{
    assert_int_equal(catalog_acquire(f->cat, name, h, NULL), ERR_OK);
    return catalog_handle_coll(*h);
}

/* n points 1..n with random vectors and {"text", "n"}; no text where
 * i % no_text_every == 0 (0: always text). */
static void fill(fx_t *f, const char *name, int n, int dim, int no_text_every)
{
    catalog_handle_t *h;
    coll_t *c = coll_get(f, name, &h);
    uint64_t rs = 42;
    float v[1024];
    err_t err;

    for (int base = 1; base <= n; base += 1000) {
        op_t op = { .type = OP_UPSERT };
        for (int i = base; i < base + 1000 && i <= n; i++) {
            op_point_t *p = op_point_add(&op);
            char pl[128];
            p->id = ptid_num((uint64_t)i);
            for (int k = 0; k < dim; k++)
                v[k] = (float)(tu_randf(&rs) - 0.5);
            assert_int_equal(op_vec_add(p, "", v, (uint32_t)dim), ERR_OK);
            if (no_text_every && i % no_text_every == 0)
                snprintf(pl, sizeof(pl), "{\"n\": %d}", i);
            else
                snprintf(pl, sizeof(pl), "{\"text\": \"document %d about cats and dogs\", \"n\": %d}",
                         i, i);
            p->payload = strdup(pl);
        }
        if (coll_write(c, &op, NULL, &err) != ERR_OK)
            fail_msg("fill: %s", err.msg);
        op_clear(&op);
    }
    catalog_release(h);
}

/* Every point of a collection, ScoredPoint shape (version), with vectors. */
static cJSON *all_points(fx_t *f, const char *name)
{
    catalog_handle_t *h;
    coll_t *c = coll_get(f, name, &h);
    coll_sel_t sel = { .payload = COLL_PAYLOAD_ALL, .vector = COLL_VECTOR_ALL };
    coll_scroll_req_t q = { .limit = 1000000, .sel = &sel, .as_scored = true };
    cJSON *pts = NULL, *next = NULL;
    assert_int_equal(coll_scroll(c, &q, &pts, &next, NULL), ERR_OK);
    cJSON_Delete(next);
    catalog_release(h);
    return pts;
}

static size_t count(fx_t *f, const char *name)
{
    catalog_handle_t *h;
    size_t n = 0;
    assert_int_equal(coll_count(coll_get(f, name, &h), NULL, &n, NULL), ERR_OK);
    catalog_release(h);
    return n;
}

static int job_create(fx_t *f, const char *def, err_t *err)
{
    cJSON *d = cJSON_Parse(def), *out = NULL;
    assert_non_null(d);
    int rc = backfill_job_create(f->m, d, &out, err);
    cJSON_Delete(d);
    cJSON_Delete(out);
    return rc;
}

static void job_start(fx_t *f, const char *def)
{
    err_t err;
    if (job_create(f, def, &err) != ERR_OK)
        fail_msg("create job %s: %s", def, err.msg);
}

static cJSON *status(fx_t *f, const char *id)
{
    cJSON *s = NULL;
    err_t err;
    if (backfill_job_status(f->m, id, &s, &err) != ERR_OK)
        fail_msg("status %s: %s", id, err.msg);
    return s;
}

static double num(const cJSON *o, const char *k)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItem(o, k));
}

static void expect_state(fx_t *f, const char *id, const char *state)
{
    cJSON *s = status(f, id);
    const char *got = cJSON_GetStringValue(cJSON_GetObjectItem(s, "state"));
    if (strcmp(got, state) != 0) {
        char *t = cJSON_Print(s);
        fail_msg("job %s: state %s, expected %s\n%s", id, got, state, t);
    }
    cJSON_Delete(s);
}

static void wait_done(fx_t *f, const char *id)
{
    err_t err;
    if (backfill_job_wait(f->m, id, 60000, &err) != ERR_OK)
        fail_msg("wait %s: %s", id, err.msg);
    expect_state(f, id, "completed");
}

/* Same ids, payloads and vectors. */
static void expect_same(fx_t *f, const char *a, const char *b)
{
    cJSON *pa = all_points(f, a), *pb = all_points(f, b);
    assert_int_equal(cJSON_GetArraySize(pa), cJSON_GetArraySize(pb));
    for (int i = 0; i < cJSON_GetArraySize(pa); i++) {
        cJSON *x = cJSON_GetArrayItem(pa, i), *y = cJSON_GetArrayItem(pb, i);
        const char *keys[] = { "id", "payload", "vector" };
        for (int k = 0; k < 3; k++)
            if (!cJSON_Compare(cJSON_GetObjectItem(x, keys[k]), cJSON_GetObjectItem(y, keys[k]),
                               true))
                fail_msg("point %d differs in %s", i, keys[k]);
    }
    cJSON_Delete(pa);
    cJSON_Delete(pb);
}

static void test_copy(void **state)
{
    fx_t *f = *state;
    coll_create(f, "src", 16);
    coll_create(f, "dst", 16);
    fill(f, "src", 5000, 16, 0);
    job_start(f, "{\"id\": \"c1\", \"source\": \"src\", \"target\": \"dst\", \"batch_size\": 300}");
    wait_done(f, "c1");
    expect_same(f, "src", "dst");
    cJSON *s = status(f, "c1");
    assert_int_equal((int)num(s, "done"), 5000);
    assert_int_equal((int)num(s, "inserted"), 5000);
    assert_int_equal((int)num(s, "total"), 5000);
    assert_true(num(s, "percent") == 100);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(s, "next")));
    cJSON_Delete(s);
}

static void test_embed(void **state)
{
    fx_t *f = *state;
    embed_model_t *model;
    float v[256];
    coll_create(f, "src", 4);
    coll_create(f, "dst", 256);
    fill(f, "src", 700, 4, 0);
    job_start(f, "{\"id\": \"e1\", \"source\": \"src\", \"target\": \"dst\", \"mode\": \"embed\", "
                 "\"field\": \"text\", \"model\": \"veclog/hash-256\", \"batch_size\": 64}");
    wait_done(f, "e1");
    assert_int_equal(embed_model_get(f->reg, "veclog/hash-256", &model, NULL), ERR_OK);
    cJSON *pts = all_points(f, "dst"), *p;
    assert_int_equal(cJSON_GetArraySize(pts), 700);
    cJSON_ArrayForEach(p, pts) {
        const char *text = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(p, "payload"), "text"));
        cJSON *vec = cJSON_GetObjectItem(p, "vector");
        assert_int_equal(embed_texts(model, &text, 1, v, NULL), ERR_OK);
        assert_int_equal(cJSON_GetArraySize(vec), 256);
        for (int k = 0; k < 256; k++)
            if (fabs(cJSON_GetArrayItem(vec, k)->valuedouble - v[k]) > 1e-6)
                fail_msg("point %s: component %d differs", cJSON_PrintUnformatted(
                    cJSON_GetObjectItem(p, "id")), k);
    }
    cJSON_Delete(pts);
}

static double version_of(const cJSON *pts, int i)
{
    return num(cJSON_GetArrayItem(pts, i), "version");
}

static void test_resume(void **state)
{
    fx_t *f = *state;
    catalog_handle_t *h;
    char *cur = NULL;
    coll_create(f, "src", 8);
    coll_create(f, "dst", 8);
    fill(f, "src", 2000, 8, 0);
    job_start(f, "{\"id\": \"r1\", \"source\": \"src\", \"target\": \"dst\", \"batch_size\": 50, "
                 "\"rate_limit\": 1500}");
    usleep(400000);
    backfill_mgr_close(f->m); /* "crash" mid-job: the job stays running on disk */
    f->m = NULL;
    assert_int_equal(coll_meta_get(coll_get(f, "dst", &h), "backfill/r1", &cur, NULL), ERR_OK);
    catalog_release(h);
    cJSON *c = cJSON_Parse(cur);
    double done_before = num(c, "done");
    assert_true(done_before > 0 && done_before < 2000);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(c, "next")));
    assert_int_equal((size_t)done_before, count(f, "dst"));
    cJSON_Delete(c);
    free(cur);
    cJSON *before = all_points(f, "dst");

    catalog_close(f->cat);
    cat_open(f);
    mgr_open(f);
    wait_done(f, "r1");
    cJSON *s = status(f, "r1");
    assert_int_equal((int)num(s, "done"), 2000); /* no page counted twice */
    cJSON_Delete(s);
    assert_int_equal(count(f, "dst"), 2000);
    cJSON *after = all_points(f, "dst");
    for (int i = 0; i < cJSON_GetArraySize(before); i++) /* nothing written twice */
        assert_true(version_of(before, i) == version_of(after, i));
    cJSON_Delete(before);
    cJSON_Delete(after);
    expect_same(f, "src", "dst");
}

static void test_rerun_changes_nothing(void **state)
{
    fx_t *f = *state;
    coll_create(f, "src", 8);
    coll_create(f, "dst", 8);
    fill(f, "src", 1000, 8, 0);
    job_start(f, "{\"id\": \"a\", \"source\": \"src\", \"target\": \"dst\"}");
    wait_done(f, "a");
    cJSON *before = all_points(f, "dst");
    job_start(f, "{\"id\": \"b\", \"source\": \"src\", \"target\": \"dst\", \"batch_size\": 77}");
    wait_done(f, "b");
    cJSON *s = status(f, "b");
    assert_int_equal((int)num(s, "done"), 1000);
    assert_int_equal((int)num(s, "inserted"), 0);
    cJSON_Delete(s);
    cJSON *after = all_points(f, "dst");
    assert_true(cJSON_Compare(before, after, true)); /* versions included */
    cJSON_Delete(before);
    cJSON_Delete(after);
}

static void test_delete_sticks(void **state)
{
    fx_t *f = *state;
    catalog_handle_t *h;
    err_t err;
    coll_create(f, "src", 4);
    coll_create(f, "dst", 4);
    fill(f, "src", 500, 4, 0);
    /* live traffic wrote point 7 into the target, then deleted it */
    fill(f, "dst", 7, 4, 0);
    op_t del = { .type = OP_DELETE };
    op_point_add(&del)->id = ptid_num(7);
    assert_int_equal(coll_write(coll_get(f, "dst", &h), &del, NULL, &err), ERR_OK);
    op_clear(&del);
    catalog_release(h);
    job_start(f, "{\"id\": \"d\", \"source\": \"src\", \"target\": \"dst\", \"batch_size\": 64}");
    wait_done(f, "d");
    assert_int_equal(count(f, "dst"), 499);
    ptid_t id7 = ptid_num(7);
    coll_sel_t sel = { 0 };
    cJSON *got = NULL;
    assert_int_equal(coll_retrieve(coll_get(f, "dst", &h), &id7, 1, &sel, &got, NULL), ERR_OK);
    catalog_release(h);
    assert_int_equal(cJSON_GetArraySize(got), 0);
    cJSON_Delete(got);
}

static int control(fx_t *f, const char *id, const char *action)
{
    cJSON *out = NULL;
    err_t err;
    int rc = backfill_job_control(f->m, id, action, &out, &err);
    cJSON_Delete(out);
    return rc;
}

static void test_pause_resume_cancel(void **state)
{
    fx_t *f = *state;
    err_t err;
    coll_create(f, "src", 4);
    coll_create(f, "dst", 4);
    fill(f, "src", 3000, 4, 0);
    job_start(f, "{\"id\": \"p\", \"source\": \"src\", \"target\": \"dst\", \"batch_size\": 10, "
                 "\"rate_limit\": 500}");
    assert_int_equal(job_create(f, "{\"id\": \"p\", \"source\": \"src\", \"target\": \"dst\"}",
                                &err), ERR_EXISTS);
    usleep(200000);
    assert_int_equal(control(f, "p", "delete"), ERR_EXISTS); /* running */
    assert_int_equal(control(f, "p", "resume"), ERR_EXISTS);
    assert_int_equal(control(f, "p", "pause"), ERR_OK);
    expect_state(f, "p", "paused");
    usleep(100000);
    size_t n1 = count(f, "dst");
    usleep(300000);
    assert_int_equal(count(f, "dst"), n1);
    assert_true(n1 > 0 && n1 < 3000);
    assert_int_equal(control(f, "p", "resume"), ERR_OK);
    expect_state(f, "p", "running");
    usleep(300000);
    assert_true(count(f, "dst") > n1);
    cJSON *s = status(f, "p");
    assert_true(num(s, "rate") > 0);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(s, "eta_seconds")));
    cJSON_Delete(s);
    assert_int_equal(control(f, "p", "cancel"), ERR_OK);
    expect_state(f, "p", "cancelled");
    usleep(100000);
    size_t n2 = count(f, "dst");
    usleep(200000);
    assert_int_equal(count(f, "dst"), n2);
    assert_int_equal(control(f, "p", "pause"), ERR_EXISTS);
    /* the state survives a restart */
    backfill_mgr_close(f->m);
    mgr_open(f);
    expect_state(f, "p", "cancelled");
    assert_int_equal(control(f, "p", "delete"), ERR_OK);
    assert_int_equal(backfill_job_status(f->m, "p", &s, &err), ERR_NOT_FOUND);
    assert_int_equal(control(f, "p", "cancel"), ERR_NOT_FOUND);
}

static void test_paused_survives_restart(void **state)
{
    fx_t *f = *state;
    coll_create(f, "src", 4);
    coll_create(f, "dst", 4);
    fill(f, "src", 2000, 4, 0);
    job_start(f, "{\"id\": \"q\", \"source\": \"src\", \"target\": \"dst\", \"batch_size\": 20, "
                 "\"rate_limit\": 400}");
    usleep(150000);
    assert_int_equal(control(f, "q", "pause"), ERR_OK);
    backfill_mgr_close(f->m);
    size_t n1 = count(f, "dst");
    mgr_open(f);
    expect_state(f, "q", "paused");
    usleep(200000);
    assert_int_equal(count(f, "dst"), n1);
    assert_int_equal(control(f, "q", "resume"), ERR_OK);
    wait_done(f, "q");
    assert_int_equal(count(f, "dst"), 2000);
}

static void test_missing_text(void **state)
{
    fx_t *f = *state;
    coll_create(f, "src", 4);
    coll_create(f, "dst", 128);
    fill(f, "src", 100, 4, 20); /* 20, 40, 60, 80, 100 lack text */
    job_start(f, "{\"id\": \"t\", \"source\": \"src\", \"target\": \"dst\", \"field\": \"text\", "
                 "\"model\": \"veclog/hash-128\", \"batch_size\": 30}");
    wait_done(f, "t");
    assert_int_equal(count(f, "dst"), 95);
    cJSON *s = status(f, "t"), *e;
    assert_int_equal((int)num(s, "skipped"), 5);
    assert_int_equal((int)num(s, "done"), 95);
    cJSON *errs = cJSON_GetObjectItem(s, "errors");
    assert_int_equal((int)num(errs, "count"), 5);
    int seen = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(errs, "last")) {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(e, "id"));
        assert_non_null(id);
        assert_int_equal(atoi(id) % 20, 0);
        assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(e, "reason")), "text"));
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(e, "retriable")));
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(e, "dead_lettered"))); /* no DLQ */
        seen++;
    }
    assert_int_equal(seen, 5);
    cJSON_Delete(s);
}

static void test_model_down_retries(void **state)
{
    fx_t *f = *state;
    coll_create(f, "src", 4);
    coll_create(f, "dst", 256);
    fill(f, "src", 50, 4, 0);
    job_start(f, "{\"id\": \"h\", \"source\": \"src\", \"target\": \"dst\", \"field\": \"text\", "
                 "\"model\": \"down\"}");
    usleep(600000);
    cJSON *s = status(f, "h");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(s, "state")), "running");
    assert_int_equal((int)num(s, "done"), 0);
    assert_int_equal((int)num(s, "skipped"), 0);
    cJSON *errs = cJSON_GetObjectItem(s, "errors");
    assert_true(num(errs, "count") >= 2);
    cJSON *last = cJSON_GetArrayItem(cJSON_GetObjectItem(errs, "last"), 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(last, "retriable")));
    cJSON_Delete(s);
    assert_int_equal(count(f, "dst"), 0);
    assert_int_equal(control(f, "h", "cancel"), ERR_OK);
}

/* ---- dead letters (embedded broker) -------------------------------------- */

#define DLQ_WAIT_MS 30000

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* setup, plus an embedded broker with the topic "dlq" and a manager whose
 * dead letters go there (local store <dir>/dlq-backfill). */
static int setup_dlq(void **state)
{
    fx_t *f;
    char local[512];
    err_t err;

    setup(state);
    f = *state;
    backfill_mgr_close(f->m);
    if (broker_start(1, &f->b, &err) != ERR_OK ||
        broker_topic_create(f->b, "dlq", 1, &err) != ERR_OK)
        fail_msg("broker: %s", err.msg);
    snprintf(local, sizeof(local), "%s/dlq-backfill", f->dir);
    dlq_opts_t o = { .brokers = broker_bootstraps(f->b), .topic = "dlq", .timeout_ms = 2000,
                     .local_dir = local };
    if (dlq_open(&o, &f->dlq, &err) != ERR_OK)
        fail_msg("dlq_open: %s", err.msg);
    mgr_open(f);
    return 0;
}

/* Read n records of topic "dlq" from the beginning, and check that the
 * topic holds no more.  Destroy them, then tu_read_done(*rk). */
static void read_dlq(fx_t *f, rd_kafka_message_t **out, size_t n, rd_kafka_t **rk)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[256];
    size_t got = 0;
    int64_t lo, hi;

    rd_kafka_conf_set(conf, "bootstrap.servers", broker_bootstraps(f->b), NULL, 0);
    rd_kafka_conf_set(conf, "group.id", "test-reader", NULL, 0);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", NULL, 0);
    rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(c);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, "dlq", 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(c, l), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(l);
    for (int64_t end = mono_ms() + DLQ_WAIT_MS; got < n && mono_ms() < end;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL)
            continue;
        if (m->err)
            rd_kafka_message_destroy(m);
        else
            out[got++] = m;
    }
    assert_int_equal(got, n);
    assert_int_equal(rd_kafka_query_watermark_offsets(c, "dlq", 0, &lo, &hi, 5000),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(hi - lo, (int64_t)n); /* one dead letter per point, no more */
    *rk = c;
}

/* m is the dead letter of point id (no text) of job; its ordinal in the
 * job is id - 1 (points 1..n in order). */
static void expect_letter(const rd_kafka_message_t *m, int id, const char *job)
{
    char buf[512], want[64];

    assert_non_null(m->key);
    snprintf(want, sizeof(want), "%d", id);
    assert_int_equal(m->key_len, strlen(want));
    assert_memory_equal(m->key, want, m->key_len);
    cJSON *v = cJSON_ParseWithLength(m->payload, m->len);
    assert_non_null(v);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(v, "collection_name")), "src");
    assert_int_equal((int)num(v, "id"), id);
    assert_int_equal((int)num(cJSON_GetObjectItem(v, "payload"), "n"), id);
    cJSON_Delete(v);
    snprintf(want, sizeof(want), "backfill/%s", job);
    assert_string_equal(tu_hdr(m, "__connect.errors.topic", buf, sizeof(buf)), want);
    assert_string_equal(tu_hdr(m, "__connect.errors.partition", buf, sizeof(buf)), "-1");
    snprintf(want, sizeof(want), "%d", id - 1);
    assert_string_equal(tu_hdr(m, "__connect.errors.offset", buf, sizeof(buf)), want);
    assert_string_equal(tu_hdr(m, "__connect.errors.stage", buf, sizeof(buf)), "TASK_PUT");
    assert_string_equal(tu_hdr(m, "__connect.errors.exception.class.name", buf, sizeof(buf)),
                        "veclog.error.invalid");
    assert_non_null(strstr(tu_hdr(m, "__connect.errors.exception.message", buf, sizeof(buf)),
                           "no text at payload field \"text\""));
    assert_string_equal(tu_hdr(m, "__veclog.redrive.count", buf, sizeof(buf)), "0");
}

/* Job id over src (100 points, 20, 40, ..., 100 without text) into
 * target: completed, 95 copied, 5 skipped, each error dead-lettered. */
static void run_missing_text_job(fx_t *f, const char *id, const char *target)
{
    char def[256];
    cJSON *e;

    snprintf(def, sizeof(def), "{\"id\": \"%s\", \"source\": \"src\", \"target\": \"%s\", "
             "\"field\": \"text\", \"model\": \"veclog/hash-128\", \"batch_size\": 30}", id,
             target);
    job_start(f, def);
    wait_done(f, id);
    assert_int_equal(count(f, target), 95);
    cJSON *s = status(f, id);
    assert_int_equal((int)num(s, "skipped"), 5);
    assert_int_equal((int)num(s, "done"), 95);
    cJSON *errs = cJSON_GetObjectItem(s, "errors");
    assert_int_equal((int)num(errs, "count"), 5);
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(errs, "last"))
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(e, "dead_lettered")));
    cJSON_Delete(s);
}

static void test_missing_text_dead_letters(void **state)
{
    fx_t *f = *state;
    rd_kafka_message_t *got[5];
    rd_kafka_t *rk;

    coll_create(f, "src", 4);
    coll_create(f, "dst", 128);
    fill(f, "src", 100, 4, 20);
    run_missing_text_job(f, "t", "dst");
    read_dlq(f, got, 5, &rk);
    for (int i = 0; i < 5; i++)
        expect_letter(got[i], 20 * (i + 1), "t");
    tu_read_done(rk, got, 5);
}

typedef struct local_recs {
    size_t n;
    int ids[8];
    bool ok;                    /* every record has the expected fields */
} local_recs_t;

static int local_cb(const dlqlocal_rec_t *r, void *arg)
{
    local_recs_t *g = arg;
    char key[32];
    snprintf(key, sizeof(key), "%.*s", (int)r->key_len, (const char *)r->key);
    if (g->n < 8)
        g->ids[g->n] = atoi(key);
    g->n++;
    g->ok = (g->n == 1 || g->ok) && strcmp(r->topic, "backfill/t2") == 0 &&
            r->partition == -1 && r->offset == atoi(key) - 1 && r->value != NULL &&
            strstr(r->value, "\"payload\"") != NULL && strcmp(r->stage, "TASK_PUT") == 0 &&
            strcmp(r->class_name, "veclog.error.invalid") == 0 &&
            strstr(r->message, "no text at payload field") != NULL;
    return 0;
}

static void test_dead_letters_stored_locally(void **state)
{
    fx_t *f = *state;
    char path[600];
    local_recs_t g = { 0 };
    rd_kafka_message_t *got[10];
    rd_kafka_t *rk;
    size_t n;
    bool torn;
    err_t e;

    coll_create(f, "src", 4);
    coll_create(f, "dst", 128);
    coll_create(f, "dst2", 128);
    fill(f, "src", 100, 4, 20);
    /* the dead-letter topic refuses every produce request of the job */
    assert_int_equal(broker_push_errors(f->b, 0, 1000,
                                        RD_KAFKA_RESP_ERR_INVALID_RECORD, &e), ERR_OK);
    run_missing_text_job(f, "t2", "dst");
    snprintf(path, sizeof(path), "%s/dlq-backfill/local-0.log", f->dir);
    assert_int_equal(dlqlocal_read(path, local_cb, &g, &n, &torn, &e), ERR_OK);
    assert_int_equal(n, 5);
    assert_false(torn);
    assert_true(g.ok);
    for (int i = 0; i < 5; i++)
        assert_int_equal(g.ids[i], 20 * (i + 1));
    /* the topic takes writes again: the next job's dead letters reach it,
     * and the worker forwards the local ones, deleting their file */
    broker_clear_errors(f->b, 0);
    run_missing_text_job(f, "t3", "dst2");
    read_dlq(f, got, 10, &rk);
    int direct = 0, forwarded = 0;
    char buf[64];
    for (int i = 0; i < 10; i++) {
        const char *t = tu_hdr(got[i], "__connect.errors.topic", buf, sizeof(buf));
        assert_non_null(t);
        if (strcmp(t, "backfill/t3") == 0)
            expect_letter(got[i], 20 * (++direct), "t3");
        else
            expect_letter(got[i], 20 * (++forwarded), "t2");
    }
    assert_int_equal(direct, 5);
    assert_int_equal(forwarded, 5);
    tu_read_done(rk, got, 10);
    assert_int_not_equal(access(path, F_OK), 0);
}

/* ---- HTTP ---------------------------------------------------------------- */

static int h_create(void *ctx, const cJSON *def, cJSON **out, err_t *err)
{
    return backfill_job_create(ctx, def, out, err);
}

static int h_list(void *ctx, cJSON **out, err_t *err)
{
    return backfill_job_list(ctx, out, err);
}

static int h_status(void *ctx, const char *id, cJSON **out, err_t *err)
{
    return backfill_job_status(ctx, id, out, err);
}

static int h_control(void *ctx, const char *id, const char *action, cJSON **out, err_t *err)
{
    return backfill_job_control(ctx, id, action, out, err);
}

static char *h_metrics(void *ctx)
{
    return backfill_mgr_metrics_text(ctx);
}

static cJSON *http(api_t *api, int method, const char *path, const char *body, int want)
{
    api_req_t req = { .method = method, .path = path, .body = body,
                      .body_len = body ? strlen(body) : 0 };
    api_resp_t resp;
    api_handle(api, &req, &resp);
    if (resp.status != want)
        fail_msg("%s: status %d, expected %d: %s", path, resp.status, want, resp.body);
    cJSON *doc = cJSON_Parse(resp.body);
    if (doc == NULL)
        doc = cJSON_CreateString(resp.body);
    free(resp.body);
    return doc;
}

static void expect_error(api_t *api, int method, const char *path, const char *body, int want,
                         const char *needle)
{
    cJSON *d = http(api, method, path, body, want);
    const char *msg = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(d, "status"), "error"));
    if (msg == NULL || strstr(msg, needle) == NULL)
        fail_msg("%s: error \"%s\" lacks \"%s\"", path, msg ? msg : "(none)", needle);
    cJSON_Delete(d);
}

static void test_http(void **state)
{
    fx_t *f = *state;
    api_t *api;
    coll_create(f, "src", 4);
    coll_create(f, "dst", 4);
    coll_create(f, "big", 256);
    fill(f, "src", 3000, 4, 0);
    assert_int_equal(api_new(f->cat, NULL, &api, NULL), ERR_OK);
    api_set_ready(api, true);
    expect_error(api, API_GET, "/backfill", NULL, 404, "backfill is not available");
    api_backfill_hooks_t hk = { f->m, h_create, h_list, h_status, h_control, h_metrics };
    api_set_backfill(api, &hk);

    const char *def = "{\"id\": \"w\", \"source\": \"src\", \"target\": \"dst\", "
                      "\"batch_size\": 10, \"rate_limit\": 1000}";
    cJSON *d = http(api, API_POST, "/backfill", def, 200);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(d, "status")), "ok");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetObjectItem(d, "result"), "state")), "running");
    cJSON_Delete(d);
    expect_error(api, API_POST, "/backfill", def, 409, "already exists");
    expect_error(api, API_POST, "/backfill", "{\"source\": \"src\", \"target\": \"dst\", "
                 "\"colour\": 1}", 400, "colour");
    expect_error(api, API_POST, "/backfill", "{\"source\": \"nope\", \"target\": \"dst\", "
                 "\"id\": \"x\"}", 404, "nope");
    expect_error(api, API_POST, "/backfill", "{\"source\": \"src\", \"target\": \"big\", "
                 "\"id\": \"x\", \"field\": \"text\", \"model\": \"veclog/hash-128\"}", 400,
                 "dimensions");
    expect_error(api, API_POST, "/backfill", "{\"source\": \"src\", \"target\": \"big\", "
                 "\"id\": \"x\", \"batch_size\": 0}", 400, "batch_size");
    expect_error(api, API_GET, "/backfill/zzz", NULL, 404, "zzz");
    expect_error(api, API_DELETE, "/backfill/w", NULL, 409, "running");

    d = http(api, API_GET, "/backfill/w", NULL, 200);
    cJSON *r = cJSON_GetObjectItem(d, "result");
    const char *keys[] = { "done", "total", "percent", "rate", "eta_seconds", "errors", "state",
                           "started", "updated" };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!cJSON_HasObjectItem(r, keys[i]))
            fail_msg("status lacks %s", keys[i]);
    assert_int_equal((int)num(r, "total"), 3000);
    cJSON_Delete(d);

    cJSON_Delete(http(api, API_POST, "/backfill/w/pause", NULL, 200));
    d = http(api, API_GET, "/backfill", NULL, 200);
    cJSON *j0 = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "result"), "jobs"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j0, "state")), "paused");
    cJSON_Delete(d);
    expect_error(api, API_POST, "/backfill/w/pause", NULL, 409, "paused");
    d = http(api, API_GET, "/metrics", NULL, 200);
    assert_non_null(strstr(d->valuestring, "veclog_backfill_points_total{job=\"w\"}"));
    assert_non_null(strstr(d->valuestring, "veclog_backfill_total_points{job=\"w\"} 3000"));
    assert_non_null(strstr(d->valuestring, "veclog_backfill_running{job=\"w\"} 0"));
    assert_non_null(strstr(d->valuestring, "veclog_backfill_errors_total{job=\"w\"} 0"));
    cJSON_Delete(d);
    cJSON_Delete(http(api, API_POST, "/backfill/w/resume", NULL, 200));
    assert_int_equal(backfill_job_wait(f->m, "w", 60000, NULL), ERR_OK);
    expect_state(f, "w", "completed");
    expect_error(api, API_POST, "/backfill/w/cancel", NULL, 409, "completed");
    d = http(api, API_DELETE, "/backfill/w", NULL, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "result"), "deleted")));
    cJSON_Delete(d);
    expect_error(api, API_GET, "/backfill/w", NULL, 404, "w");
    api_free(api);
}

static void test_progress_line(void **state)
{
    (void)state;
    char buf[256];
    cJSON *s = cJSON_Parse("{\"state\": \"running\", \"done\": 22500, \"skipped\": 0, "
                           "\"total\": 50000, \"percent\": 45, \"rate\": 1234, "
                           "\"eta_seconds\": 22}");
    backfill_cli_progress(s, true, buf, sizeof(buf));
    assert_string_equal(buf, "[#####.....] 45% 22,500/50,000 1,234 pts/s ETA 0:22");
    backfill_cli_progress(s, false, buf, sizeof(buf));
    assert_non_null(strstr(buf, "running"));
    assert_non_null(strstr(buf, "22500/50000"));
    cJSON_Delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rerun_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_sticks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_resume_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paused_survives_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_down_retries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_text_dead_letters, setup_dlq, teardown),
        cmocka_unit_test_setup_teardown(test_dead_letters_stored_locally, setup_dlq, teardown),
        cmocka_unit_test_setup_teardown(test_http, setup, teardown),
        cmocka_unit_test(test_progress_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
