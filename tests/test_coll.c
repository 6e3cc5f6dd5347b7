/*
 * test_coll.c - the collection write path: versions, update modes,
 * producer versions, tombstones, payload and vector ops, source offsets,
 * WAL replay idempotence and restart recovery, on real RocksDB in a
 * temporary directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/coll.h"
#include "store/dist.h"
#include "tests/testutil.h"

typedef struct fx {
    char *dir;
    coll_t *c;
    coll_vector_def_t defs[2];
    uint32_t n_defs;
} fx_t;

static coll_t *fx_open(fx_t *f)
{
    coll_opts_t o = { .vectors = f->defs, .n_vectors = f->n_defs };
    err_t e;
    coll_t *c = NULL;
    int rc = coll_open(f->dir, &o, &c, &e);
    if (rc != ERR_OK)
        fail_msg("coll_open: %s", e.msg);
    return c;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    f->dir = tu_tmpdir("coll");
    f->defs[0] = (coll_vector_def_t){ .name = "", .dim = 3, .metric = DIST_DOT };
    f->n_defs = 1;
    f->c = fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    coll_close(f->c);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void reopen(fx_t *f)
{
    coll_close(f->c);
    f->c = fx_open(f);
}

/* Upsert one point id with vector (x, 0, 0) and payload text. */
static int upsert(coll_t *c, uint64_t id, float x, const char *payload, int mode, int64_t pv,
                  coll_write_result_t *res)
{
    op_t op = { .type = OP_UPSERT, .mode = (uint8_t)mode };
    op_point_t *p = op_point_add(&op);
    float v[3] = { x, 0, 0 };
    err_t e;

    p->id = ptid_num(id);
    if (pv >= 0) {
        p->has_pv = true;
        p->pv = (uint64_t)pv;
    }
    p->payload = payload ? strdup(payload) : NULL;
    op_vec_add(p, "", v, 3);
    int rc = coll_write(c, &op, res, &e);
    op_clear(&op);
    return rc;
}

static int delete_id(coll_t *c, uint64_t id, int64_t pv)
{
    op_t op = { .type = OP_DELETE };
    op_point_t *p = op_point_add(&op);
    err_t e;
    p->id = ptid_num(id);
    if (pv >= 0) {
        p->has_pv = true;
        p->pv = (uint64_t)pv;
    }
    int rc = coll_write(c, &op, NULL, &e);
    op_clear(&op);
    return rc;
}

/* The payload of id as JSON text (caller frees), or NULL if absent. */
static char *payload_of(coll_t *c, uint64_t id)
{
    coll_sel_t sel = { .payload = COLL_PAYLOAD_ALL };
    ptid_t pid = ptid_num(id);
    cJSON *arr = NULL;
    err_t e;
    char *s = NULL;

    assert_int_equal(coll_retrieve(c, &pid, 1, &sel, &arr, &e), ERR_OK);
    if (cJSON_GetArraySize(arr) == 1)
        s = cJSON_PrintUnformatted(cJSON_GetObjectItem(cJSON_GetArrayItem(arr, 0), "payload"));
    cJSON_Delete(arr);
    return s;
}

static void assert_payload(coll_t *c, uint64_t id, const char *want)
{
    char *got = payload_of(c, id);
    if (want == NULL) {
        if (got != NULL)
            fail_msg("point %llu: expected absent, got %s", (unsigned long long)id, got);
        return;
    }
    if (got == NULL)
        fail_msg("point %llu: expected %s, got nothing", (unsigned long long)id, want);
    assert_string_equal(got, want);
    free(got);
}

static void test_coll_upsert_outcomes(void **state)
{
    fx_t *f = *state;
    coll_write_result_t r;

    assert_int_equal(upsert(f->c, 1, 1, "{\"a\":1}", OP_MODE_UPSERT, -1, &r), ERR_OK);
    assert_int_equal(r.inserted, 1);
    assert_int_equal(r.outcomes[0], COLL_INSERTED);
    coll_write_result_clear(&r);
    assert_int_equal(upsert(f->c, 1, 2, "{\"a\":2}", OP_MODE_UPSERT, -1, &r), ERR_OK);
    assert_int_equal(r.updated, 1);
    coll_write_result_clear(&r);
    assert_payload(f->c, 1, "{\"a\":2}");
    coll_info_t info;
    coll_info_get(f->c, &info);
    assert_int_equal(info.points, 1);
}

static void test_coll_insert_only_never_overwrites(void **state)
{
    fx_t *f = *state;
    coll_write_result_t r;

    assert_int_equal(upsert(f->c, 7, 1, "{\"v\":\"first\"}", OP_MODE_INSERT_ONLY, -1, &r), ERR_OK);
    assert_int_equal(r.inserted, 1);
    coll_write_result_clear(&r);
    assert_int_equal(upsert(f->c, 7, 2, "{\"v\":\"second\"}", OP_MODE_INSERT_ONLY, -1, &r), ERR_OK);
    assert_int_equal(r.skipped, 1);
    assert_int_equal(r.outcomes[0], COLL_SKIPPED);
    coll_write_result_clear(&r);
    assert_payload(f->c, 7, "{\"v\":\"first\"}");
}

static void test_coll_update_only_skips_missing(void **state)
{
    fx_t *f = *state;
    coll_write_result_t r;

    assert_int_equal(upsert(f->c, 3, 1, "{}", OP_MODE_UPDATE_ONLY, -1, &r), ERR_OK);
    assert_int_equal(r.skipped, 1);
    coll_write_result_clear(&r);
    assert_payload(f->c, 3, NULL);
    upsert(f->c, 3, 1, "{\"x\":1}", OP_MODE_UPSERT, -1, NULL);
    assert_int_equal(upsert(f->c, 3, 1, "{\"x\":2}", OP_MODE_UPDATE_ONLY, -1, &r), ERR_OK);
    assert_int_equal(r.updated, 1);
    coll_write_result_clear(&r);
    assert_payload(f->c, 3, "{\"x\":2}");
}

static void test_coll_tombstone_blocks_stale_insert(void **state)
{
    fx_t *f = *state;
    coll_write_result_t r;

    /* The delete overtakes the insert it cancels (as in a backfill). */
    assert_int_equal(delete_id(f->c, 42, -1), ERR_OK);
    assert_int_equal(upsert(f->c, 42, 1, "{\"old\":true}", OP_MODE_INSERT_ONLY, -1, &r), ERR_OK);
    assert_int_equal(r.skipped, 1);
    coll_write_result_clear(&r);
    assert_payload(f->c, 42, NULL);
    /* Survives a restart. */
    reopen(f);
    assert_int_equal(upsert(f->c, 42, 1, "{\"old\":true}", OP_MODE_INSERT_ONLY, -1, &r), ERR_OK);
    assert_int_equal(r.skipped, 1);
    coll_write_result_clear(&r);
    /* With producer versions, only a newer insert passes the tombstone. */
    assert_int_equal(delete_id(f->c, 43, 10), ERR_OK);
    upsert(f->c, 43, 1, "{\"pv\":9}", OP_MODE_INSERT_ONLY, 9, &r);
    assert_int_equal(r.skipped, 1);
    coll_write_result_clear(&r);
    upsert(f->c, 43, 1, "{\"pv\":11}", OP_MODE_INSERT_ONLY, 11, &r);
    assert_int_equal(r.inserted, 1);
    coll_write_result_clear(&r);
    assert_payload(f->c, 43, "{\"pv\":11}");
    /* A plain upsert resurrects a deleted id. */
    upsert(f->c, 42, 1, "{\"new\":true}", OP_MODE_UPSERT, -1, &r);
    assert_int_equal(r.inserted, 1);
    coll_write_result_clear(&r);
    assert_payload(f->c, 42, "{\"new\":true}");
}

static void test_coll_producer_version_any_order(void **state)
{
    fx_t *f = *state;
    uint64_t seed = tu_seed(7);
    int order[20];

    for (int i = 0; i < 20; i++)
        order[i] = i + 1;
    for (int i = 19; i > 0; i--) {
        int j = (int)(tu_rand(&seed) % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < 20; i++) {
        char p[32];
        snprintf(p, sizeof(p), "{\"pv\":%d}", order[i]);
        assert_int_equal(upsert(f->c, 5, (float)order[i], p, OP_MODE_UPSERT, order[i], NULL), ERR_OK);
    }
    assert_payload(f->c, 5, "{\"pv\":20}");
    /* An older delete loses too. */
    assert_int_equal(delete_id(f->c, 5, 19), ERR_OK);
    assert_payload(f->c, 5, "{\"pv\":20}");
    assert_int_equal(delete_id(f->c, 5, 21), ERR_OK);
    assert_payload(f->c, 5, NULL);
}

static void test_coll_duplicate_ids_in_one_op_last_wins(void **state)
{
    fx_t *f = *state;
    op_t op = { .type = OP_UPSERT };
    float v[3] = { 1, 2, 3 };
    coll_write_result_t r;
    err_t e;

    for (int i = 0; i < 3; i++) {
        op_point_t *p = op_point_add(&op);
        p->id = ptid_num(9);
        p->payload = strdup(i == 0 ? "{\"n\":0}" : i == 1 ? "{\"n\":1}" : "{\"n\":2}");
        op_vec_add(p, "", v, 3);
    }
    assert_int_equal(coll_write(f->c, &op, &r, &e), ERR_OK);
    assert_int_equal(r.inserted, 1);
    assert_int_equal(r.updated, 2);
    coll_write_result_clear(&r);
    op_clear(&op);
    assert_payload(f->c, 9, "{\"n\":2}");
    reopen(f);
    assert_payload(f->c, 9, "{\"n\":2}");
}

static int payload_op(coll_t *c, int type, uint64_t id, const char *payload, const char *key,
                      const char *name, const char *filter)
{
    op_t op = { .type = (uint8_t)type };
    err_t e;
    if (filter)
        op.filter = strdup(filter);
    else
        op_point_add(&op)->id = ptid_num(id);
    if (payload)
        op.payload = strdup(payload);
    if (key)
        op.key = strdup(key);
    if (name)
        op_name_add(&op, name);
    int rc = coll_write(c, &op, NULL, &e);
    op_clear(&op);
    return rc;
}

static void test_coll_payload_ops(void **state)
{
    fx_t *f = *state;

    upsert(f->c, 1, 1, "{\"a\":1,\"b\":{\"c\":2,\"d\":3}}", OP_MODE_UPSERT, -1, NULL);
    assert_int_equal(payload_op(f->c, OP_SET_PAYLOAD, 1, "{\"e\":5,\"a\":9}", NULL, NULL, NULL), ERR_OK);
    assert_payload(f->c, 1, "{\"a\":9,\"b\":{\"c\":2,\"d\":3},\"e\":5}");
    assert_int_equal(payload_op(f->c, OP_SET_PAYLOAD, 1, "{\"z\":1}", "b.n", NULL, NULL), ERR_OK);
    assert_payload(f->c, 1, "{\"a\":9,\"b\":{\"c\":2,\"d\":3,\"n\":{\"z\":1}},\"e\":5}");
    assert_int_equal(payload_op(f->c, OP_DELETE_PAYLOAD, 1, NULL, NULL, "b.c", NULL), ERR_OK);
    assert_payload(f->c, 1, "{\"a\":9,\"b\":{\"d\":3,\"n\":{\"z\":1}},\"e\":5}");
    assert_int_equal(payload_op(f->c, OP_OVERWRITE_PAYLOAD, 1, "{\"only\":1}", NULL, NULL, NULL), ERR_OK);
    assert_payload(f->c, 1, "{\"only\":1}");
    assert_int_equal(payload_op(f->c, OP_CLEAR_PAYLOAD, 1, NULL, NULL, NULL, NULL), ERR_OK);
    assert_payload(f->c, 1, "{}");
    /* By filter. */
    upsert(f->c, 2, 1, "{\"color\":\"red\"}", OP_MODE_UPSERT, -1, NULL);
    upsert(f->c, 3, 1, "{\"color\":\"blue\"}", OP_MODE_UPSERT, -1, NULL);
    assert_int_equal(payload_op(f->c, OP_SET_PAYLOAD, 0, "{\"hot\":true}", NULL, NULL,
                                "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}"), ERR_OK);
    assert_payload(f->c, 2, "{\"color\":\"red\",\"hot\":true}");
    assert_payload(f->c, 3, "{\"color\":\"blue\"}");
    assert_int_equal(payload_op(f->c, OP_DELETE, 0, NULL, NULL, NULL,
                                "{\"must\":[{\"key\":\"hot\",\"match\":{\"value\":true}}]}"), ERR_OK);
    assert_payload(f->c, 2, NULL);
    assert_payload(f->c, 3, "{\"color\":\"blue\"}");
    /* A payload op on a missing point is skipped, not an error. */
    assert_int_equal(payload_op(f->c, OP_SET_PAYLOAD, 99, "{\"x\":1}", NULL, NULL, NULL), ERR_OK);
    assert_payload(f->c, 99, NULL);
    reopen(f);
    assert_payload(f->c, 1, "{}");
    assert_payload(f->c, 3, "{\"color\":\"blue\"}");
}

static void test_coll_validation_errors(void **state)
{
    fx_t *f = *state;
    op_t op = { .type = OP_UPSERT };
    op_point_t *p = op_point_add(&op);
    float v[4] = { 1, 2, 3, 4 };
    err_t e;

    p->id = ptid_num(1);
    op_vec_add(p, "", v, 4);
    assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "expected 3, got 4"));
    op_clear(&op);
    op.type = OP_UPSERT;
    p = op_point_add(&op);
    p->id = ptid_num(1);
    op_vec_add(p, "nope", v, 3);
    assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_INVALID);
    op_clear(&op);
    op.type = OP_UPSERT;
    p = op_point_add(&op);
    p->id = ptid_num(1);
    p->payload = strdup("[1,2]");
    op_vec_add(p, "", v, 3);
    assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_INVALID);
    if (strstr(e.msg, "payload") == NULL)
        fail_msg("unexpected error: %s", e.msg);
    op_clear(&op);
    /* Nothing invalid reached the WAL. */
    coll_info_t info;
    coll_info_get(f->c, &info);
    assert_int_equal(info.wal.last_seq, 0);
}

static void test_coll_source_offsets_persist(void **state)
{
    fx_t *f = *state;
    float v[3] = { 1, 0, 0 };
    err_t e;

    assert_int_equal(coll_source_offset(f->c, "t", 0), -1);
    for (int off = 0; off < 5; off++) {
        op_t op = { .type = OP_UPSERT };
        op_point_t *p = op_point_add(&op);
        p->id = ptid_num((uint64_t)off);
        op_vec_add(p, "", v, 3);
        op_source_set(&op, "t", off % 2, off);
        assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_OK);
        op_clear(&op);
    }
    assert_int_equal(coll_source_offset(f->c, "t", 0), 4);
    assert_int_equal(coll_source_offset(f->c, "t", 1), 3);
    /* Highest offset wins even when an older one is applied later. */
    op_t op = { .type = OP_DELETE };
    op_point_add(&op)->id = ptid_num(100);
    op_source_set(&op, "t", 0, 2);
    assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_OK);
    op_clear(&op);
    assert_int_equal(coll_source_offset(f->c, "t", 0), 4);
    reopen(f);
    assert_int_equal(coll_source_offset(f->c, "t", 0), 4);
    assert_int_equal(coll_source_offset(f->c, "t", 1), 3);
    assert_int_equal(coll_source_offset(f->c, "other", 0), -1);
}

/* An op merged from several Kafka messages carries one source per (topic,
 * partition); the store keeps each, never lowers one, and gets them back
 * from the WAL alone when the process dies before RocksDB's memtable is
 * flushed (RocksDB's own WAL is off). */
static void test_coll_multi_source_op(void **state)
{
    fx_t *f = *state;
    float v[3] = { 1, 0, 0 };
    err_t e;
    op_t op = { .type = OP_UPSERT };

    for (int i = 0; i < 3; i++) {
        op_point_t *p = op_point_add(&op);
        p->id = ptid_num((uint64_t)i);
        op_vec_add(p, "", v, 3);
    }
    op_source_add(&op, "t", 0, 7);
    op_source_add(&op, "t", 1, 4);
    op_source_add(&op, "u", 0, 9);
    op_source_add(&op, "t", 0, 8);
    assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_OK);
    op_clear(&op);
    assert_int_equal(coll_source_offset(f->c, "t", 0), 8);
    assert_int_equal(coll_source_offset(f->c, "t", 1), 4);
    assert_int_equal(coll_source_offset(f->c, "u", 0), 9);

    /* an older multi-source op lowers nothing, and an empty op with
     * sources (a watermark) only moves offsets */
    op = (op_t){ .type = OP_UPSERT };
    op_source_add(&op, "t", 0, 2);
    op_source_add(&op, "t", 1, 6);
    assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_OK);
    op_clear(&op);
    assert_int_equal(coll_source_offset(f->c, "t", 0), 8);
    assert_int_equal(coll_source_offset(f->c, "t", 1), 6);
    reopen(f);
    assert_int_equal(coll_source_offset(f->c, "t", 0), 8);
    assert_int_equal(coll_source_offset(f->c, "t", 1), 6);
    assert_int_equal(coll_source_offset(f->c, "u", 0), 9);
    coll_info_t info;
    coll_info_get(f->c, &info);
    assert_int_equal(info.points, 3);

    /* a child writes one more multi-source op and dies without closing */
    coll_close(f->c);
    f->c = NULL;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        coll_t *c = fx_open(f);
        op_t o = { .type = OP_DELETE };
        op_point_add(&o)->id = ptid_num(0);
        op_source_add(&o, "t", 1, 20);
        op_source_add(&o, "v", 5, 1);
        _exit(coll_write(c, &o, NULL, NULL) == ERR_OK ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    f->c = fx_open(f);
    assert_int_equal(coll_source_offset(f->c, "t", 0), 8);
    assert_int_equal(coll_source_offset(f->c, "t", 1), 20);
    assert_int_equal(coll_source_offset(f->c, "v", 5), 1);
    coll_info_get(f->c, &info);
    assert_int_equal(info.points, 2);
}

/* Every point as one JSON text, for whole-state comparisons. */
static char *dump(coll_t *c)
{
    coll_sel_t sel = { .payload = COLL_PAYLOAD_ALL, .vector = COLL_VECTOR_ALL };
    coll_scroll_req_t req = { .limit = 1000000, .sel = &sel };
    cJSON *pts, *next;
    err_t e;
    assert_int_equal(coll_scroll(c, &req, &pts, &next, &e), ERR_OK);
    char *s = cJSON_PrintUnformatted(pts);
    cJSON_Delete(pts);
    cJSON_Delete(next);
    return s;
}

static void random_ops(coll_t *c, uint64_t *seed, int n)
{
    for (int i = 0; i < n; i++) {
        uint64_t id = tu_rand(seed) % 50;
        char p[64];
        snprintf(p, sizeof(p), "{\"i\":%d,\"g\":%d}", i, (int)(tu_rand(seed) % 3));
        switch (tu_rand(seed) % 6) {
        case 0: delete_id(c, id, -1); break;
        case 1: upsert(c, id, (float)i, p, OP_MODE_INSERT_ONLY, -1, NULL); break;
        case 2: payload_op(c, OP_SET_PAYLOAD, id, "{\"s\":1}", NULL, NULL, NULL); break;
        case 3: payload_op(c, OP_DELETE, 0, NULL, NULL, NULL,
                           "{\"must\":[{\"key\":\"g\",\"match\":{\"value\":1}}]}"); break;
        default: upsert(c, id, (float)i, p, OP_MODE_UPSERT, -1, NULL); break;
        }
    }
}

static void test_coll_replay_whole_wal_twice_same_state(void **state)
{
    fx_t *f = *state;
    uint64_t seed = tu_seed(11);
    err_t e;

    random_ops(f->c, &seed, 400);
    char *before = dump(f->c);
    assert_int_equal(coll_wal_replay(f->c, 1, &e), ERR_OK);
    char *once = dump(f->c);
    assert_int_equal(coll_wal_replay(f->c, 1, &e), ERR_OK);
    char *twice = dump(f->c);
    assert_string_equal(before, once);
    assert_string_equal(before, twice);
    reopen(f);
    char *after = dump(f->c);
    assert_string_equal(before, after);
    free(before);
    free(once);
    free(twice);
    free(after);
}

static void test_coll_restart_after_checkpoint(void **state)
{
    fx_t *f = *state;
    uint64_t seed = tu_seed(12);
    err_t e;

    random_ops(f->c, &seed, 200);
    assert_int_equal(coll_checkpoint(f->c, &e), ERR_OK);
    random_ops(f->c, &seed, 100);
    char *before = dump(f->c);
    coll_info_t info;
    coll_info_get(f->c, &info);
    uint64_t last = info.applied_seq;
    reopen(f);
    char *after = dump(f->c);
    assert_string_equal(before, after);
    coll_info_get(f->c, &info);
    assert_int_equal(info.applied_seq, last);
    /* Numbering continues after the truncated WAL. */
    coll_write_result_t r;
    upsert(f->c, 1000, 1, NULL, OP_MODE_UPSERT, -1, &r);
    assert_int_equal(r.seq, last + 1);
    coll_write_result_clear(&r);
    free(before);
    free(after);
}

static void test_coll_vectors_ops_named(void **state)
{
    fx_t *f = *state;
    err_t e;

    coll_close(f->c);
    tu_rmrf(f->dir);
    f->defs[0] = (coll_vector_def_t){ .name = "a", .dim = 2, .metric = DIST_COSINE };
    f->defs[1] = (coll_vector_def_t){ .name = "b", .dim = 2, .metric = DIST_EUCLID };
    f->n_defs = 2;
    f->c = fx_open(f);
    op_t op = { .type = OP_UPSERT };
    op_point_t *p = op_point_add(&op);
    float va[2] = { 3, 4 }, vb[2] = { 1, 1 };
    p->id = ptid_num(1);
    op_vec_add(p, "a", va, 2);
    assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_OK);
    op_clear(&op);
    float buf[2];
    uint32_t dim;
    assert_int_equal(coll_vector_get(f->c, &(ptid_t){ .kind = PTID_NUM, .num = 1 }, "a", buf, 2, &dim, &e), ERR_OK);
    assert_float_equal(buf[0], 0.6, 1e-6); /* Cosine normalises at insert */
    assert_int_equal(coll_vector_get(f->c, &(ptid_t){ .kind = PTID_NUM, .num = 1 }, "b", buf, 2, &dim, &e), ERR_NOT_FOUND);
    op = (op_t){ .type = OP_UPDATE_VECTORS };
    p = op_point_add(&op);
    p->id = ptid_num(1);
    op_vec_add(p, "b", vb, 2);
    assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_OK);
    op_clear(&op);
    reopen(f);
    assert_int_equal(coll_vector_get(f->c, &(ptid_t){ .kind = PTID_NUM, .num = 1 }, "b", buf, 2, &dim, &e), ERR_OK);
    assert_float_equal(buf[1], 1.0, 1e-6);
    assert_int_equal(coll_vector_get(f->c, &(ptid_t){ .kind = PTID_NUM, .num = 1 }, "a", buf, 2, &dim, &e), ERR_OK);
    op = (op_t){ .type = OP_DELETE_VECTORS };
    op_point_add(&op)->id = ptid_num(1);
    op_name_add(&op, "a");
    assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_OK);
    op_clear(&op);
    assert_int_equal(coll_vector_get(f->c, &(ptid_t){ .kind = PTID_NUM, .num = 1 }, "a", buf, 2, &dim, &e), ERR_NOT_FOUND);
    coll_info_t info;
    coll_info_get(f->c, &info);
    assert_int_equal(info.points, 1);
    assert_int_equal(info.vectors, 1);
}

static void test_coll_tombstones_purge(void **state)
{
    fx_t *f = *state;
    coll_write_result_t r;
    size_t n;
    err_t e;

    upsert(f->c, 1, 1, NULL, OP_MODE_UPSERT, -1, NULL);
    delete_id(f->c, 1, -1);
    delete_id(f->c, 2, -1);
    upsert(f->c, 3, 1, "{\"keep\":1}", OP_MODE_UPSERT, -1, NULL);
    coll_info_t info;
    coll_info_get(f->c, &info);
    assert_int_equal(info.tombstones, 2);
    assert_int_equal(coll_tombstones_purge(f->c, info.applied_seq, &n, &e), ERR_OK);
    assert_int_equal(n, 2);
    upsert(f->c, 1, 1, NULL, OP_MODE_INSERT_ONLY, -1, &r);
    assert_int_equal(r.inserted, 1);
    coll_write_result_clear(&r);
    reopen(f);
    coll_info_get(f->c, &info);
    assert_int_equal(info.tombstones, 0);
    assert_int_equal(info.points, 2);
    assert_payload(f->c, 3, "{\"keep\":1}");
}

/* META: stored with its op, the latest wins, replaying old records does
 * not roll it back, and it survives a reopen. */
static void test_coll_meta_with_op(void **state)
{
    fx_t *f = *state;
    float v[3] = { 1, 0, 0 };
    char *val;
    err_t e;

    assert_int_equal(coll_meta_get(f->c, "cursor", &val, &e), ERR_NOT_FOUND);
    for (int i = 0; i < 3; i++) {
        op_t op = { .type = OP_UPSERT, .mode = OP_MODE_INSERT_ONLY };
        op_point_t *p = op_point_add(&op);
        char cur[16];
        p->id = ptid_num((uint64_t)i);
        op_vec_add(p, "", v, 3);
        snprintf(cur, sizeof(cur), "c%d", i);
        assert_int_equal(op_meta_set(&op, "cursor", cur), ERR_OK);
        assert_int_equal(coll_write(f->c, &op, NULL, &e), ERR_OK);
        op_clear(&op);
    }
    assert_int_equal(coll_meta_get(f->c, "cursor", &val, &e), ERR_OK);
    assert_string_equal(val, "c2");
    free(val);
    assert_int_equal(coll_wal_replay(f->c, 1, &e), ERR_OK);
    assert_int_equal(coll_meta_get(f->c, "cursor", &val, &e), ERR_OK);
    assert_string_equal(val, "c2");
    free(val);
    reopen(f);
    assert_int_equal(coll_meta_get(f->c, "cursor", &val, &e), ERR_OK);
    assert_string_equal(val, "c2");
    free(val);
    assert_int_equal(coll_meta_get(f->c, "other", &val, &e), ERR_NOT_FOUND);
    op_t bad = { .type = OP_CLEAR_PAYLOAD };
    op_point_add(&bad)->id = ptid_num(0);
    assert_int_equal(op_meta_set(&bad, "", "x"), ERR_OK);
    assert_int_equal(coll_write(f->c, &bad, NULL, &e), ERR_INVALID);
    op_clear(&bad);
}

/* A Kafka payload update (op with a source) for a never-seen id. */
static void kafka_set_payload(coll_t *c, uint64_t id, const char *payload, int64_t off)
{
    op_t op = { .type = OP_SET_PAYLOAD, .payload = strdup(payload) };
    coll_write_result_t res = { 0 };
    err_t e;

    op_point_add(&op)->id = ptid_num(id);
    op_source_set(&op, "t", 0, off);
    assert_int_equal(coll_write(c, &op, &res, &e), ERR_OK);
    coll_write_result_clear(&res);
    op_clear(&op);
}

/* A backfill copy: insert-only with the job's cursor as META. */
static int backfill_copy(coll_t *c, uint64_t id, float x, const char *payload)
{
    op_t op = { .type = OP_UPSERT, .mode = OP_MODE_INSERT_ONLY };
    op_point_t *p = op_point_add(&op);
    float v[3] = { x, 0, 0 };
    err_t e;

    p->id = ptid_num(id);
    p->payload = strdup(payload);
    op_vec_add(p, "", v, 3);
    op_meta_set(&op, "backfill/j", "{}");
    int rc = coll_write(c, &op, NULL, &e);
    op_clear(&op);
    return rc;
}

/* PENDING (coll.c): updates that overtake the backfill copy of a point are
 * applied on top of the copy, in order, across a restart; a plain upsert
 * or a delete makes them moot; updates without a Kafka source are not
 * kept; a delete before the copy still wins. */
static void test_coll_pending_updates_meet_backfill_copy(void **state)
{
    fx_t *f = *state;
    float v[3] = { 5, 0, 0 }, got[3];
    uint32_t dim;
    size_t purged;
    err_t e;

    kafka_set_payload(f->c, 7, "{\"a\":1}", 1);
    kafka_set_payload(f->c, 7, "{\"a\":2,\"b\":1}", 2);
    assert_payload(f->c, 7, NULL);              /* nothing visible yet */
    op_t uv = { .type = OP_UPDATE_VECTORS };
    op_point_t *p = op_point_add(&uv);
    p->id = ptid_num(7);
    op_vec_add(p, "", v, 3);
    op_source_set(&uv, "t", 0, 3);
    assert_int_equal(coll_write(f->c, &uv, NULL, &e), ERR_OK);
    op_clear(&uv);
    reopen(f);                                   /* kept in the store */
    assert_int_equal(backfill_copy(f->c, 7, 1, "{\"a\":0,\"c\":3}"), ERR_OK);
    assert_payload(f->c, 7, "{\"a\":2,\"c\":3,\"b\":1}");
    ptid_t id7 = ptid_num(7);
    assert_int_equal(coll_vector_get(f->c, &id7, "", got, 3, &dim, &e), ERR_OK);
    assert_true(got[0] == 5.0f);

    /* a plain upsert drops them: after delete + purge, a copy gets only its own */
    kafka_set_payload(f->c, 9, "{\"p\":1}", 4);
    assert_int_equal(upsert(f->c, 9, 1, "{\"b\":2}", OP_MODE_UPSERT, -1, NULL), ERR_OK);
    assert_int_equal(delete_id(f->c, 9, -1), ERR_OK);
    assert_int_equal(coll_tombstones_purge(f->c, UINT64_MAX, &purged, &e), ERR_OK);
    assert_int_equal(backfill_copy(f->c, 9, 1, "{\"c\":3}"), ERR_OK);
    assert_payload(f->c, 9, "{\"c\":3}");

    /* without a Kafka source (an HTTP write) nothing is kept */
    op_t hs = { .type = OP_SET_PAYLOAD, .payload = strdup("{\"h\":1}") };
    op_point_add(&hs)->id = ptid_num(11);
    assert_int_equal(coll_write(f->c, &hs, NULL, &e), ERR_OK);
    op_clear(&hs);
    assert_int_equal(backfill_copy(f->c, 11, 1, "{\"c\":3}"), ERR_OK);
    assert_payload(f->c, 11, "{\"c\":3}");

    /* a delete that reached the collection first still wins over the copy */
    kafka_set_payload(f->c, 12, "{\"x\":1}", 5);
    assert_int_equal(delete_id(f->c, 12, -1), ERR_OK);
    assert_int_equal(backfill_copy(f->c, 12, 1, "{\"c\":3}"), ERR_OK);
    assert_payload(f->c, 12, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_coll_upsert_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_insert_only_never_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_update_only_skips_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_tombstone_blocks_stale_insert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_producer_version_any_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_duplicate_ids_in_one_op_last_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_payload_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_validation_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_source_offsets_persist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_multi_source_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_replay_whole_wal_twice_same_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_restart_after_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_vectors_ops_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_tombstones_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_meta_with_op, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_pending_updates_meet_backfill_copy, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
