/*
 * test_msg.c - Kafka message decoding (ingest/msg.h): the sink-connector
 * point, Qdrant upsert bodies, every operation envelope, producer
 * versions, tombstone keys in every form, and the errors with their stage.
 * Pure: no Kafka, no storage.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_op.h"
#include "ingest/msg.h"

static void decode_ok(const char *key, const char *value, msg_t *m)
{
    err_t e;
    int stage = -1;
    int rc = msg_decode(key, key ? strlen(key) : 0, value, value ? strlen(value) : 0, m, &stage,
                        &e);
    if (rc != ERR_OK)
        fail_msg("msg_decode(%s, %s): %s", key ? key : "null", value ? value : "null", e.msg);
}

static void decode_fail(const char *key, const char *value, int code, int stage,
                        const char *needle)
{
    msg_t m;
    err_t e;
    int st = -1;
    int rc = msg_decode(key, key ? strlen(key) : 0, value, value ? strlen(value) : 0, &m, &st, &e);
    msg_clear(&m);
    if (rc != code)
        fail_msg("decode of %s / %s: got %d (%s), want %d", key ? key : "null",
                 value ? value : "null", rc, rc ? e.msg : "ok", code);
    assert_int_equal(st, stage);
    if (strstr(e.msg, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", e.msg, needle);
}

static void test_msg_sink_connector_point(void **state)
{
    (void)state;
    msg_t m;

    decode_ok(NULL, "{\"collection_name\": \"c\", \"id\": 7, \"vector\": [1, 2],"
                    " \"payload\": {\"a\": 1}}", &m);
    assert_string_equal(m.collection, "c");
    assert_int_equal(m.op.type, OP_UPSERT);
    assert_int_equal(m.op.mode, OP_MODE_UPSERT);
    assert_null(m.op.filter);
    assert_false(m.op.has_source);
    assert_int_equal(m.op.n_points, 1);
    assert_true(ptid_eq(&m.op.points[0].id, &(ptid_t){ .kind = PTID_NUM, .num = 7 }));
    assert_int_equal(m.op.points[0].n_vecs, 1);
    assert_string_equal(m.op.points[0].vecs[0].name, "");
    assert_int_equal(m.op.points[0].vecs[0].dim, 2);
    assert_string_equal(m.op.points[0].payload, "{\"a\":1}");
    assert_false(m.op.points[0].has_pv);
    msg_clear(&m);

    /* named vectors, a UUID id, no payload, a producer version, no collection */
    decode_ok(NULL, "{\"id\": \"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\", \"version\": 42,"
                    " \"vector\": {\"img\": [1], \"txt\": [2, 3]}}", &m);
    assert_null(m.collection);
    assert_int_equal(m.op.points[0].id.kind, PTID_UUID);
    assert_int_equal(m.op.points[0].n_vecs, 2);
    assert_null(m.op.points[0].payload);
    assert_true(m.op.points[0].has_pv);
    assert_true(m.op.points[0].pv == 42);
    msg_clear(&m);
}

static void test_msg_upsert_bodies(void **state)
{
    (void)state;
    msg_t m;

    decode_ok("ignored key", "{\"collection_name\": \"c\", \"points\": [{\"id\": 1, \"vector\": [1]},"
                             " {\"id\": 2, \"vector\": [2]}], \"version\": 3}", &m);
    assert_int_equal(m.op.type, OP_UPSERT);
    assert_int_equal(m.op.n_points, 2);
    assert_true(m.op.points[1].has_pv && m.op.points[1].pv == 3);
    msg_clear(&m);

    decode_ok(NULL, "{\"collection_name\": \"c\", \"batch\": {\"ids\": [1, 2, 3],"
                    " \"vectors\": [[1], [2], [3]], \"payloads\": [{}, null, {\"x\": 1}]},"
                    " \"update_mode\": \"insert_only\"}", &m);
    assert_int_equal(m.op.n_points, 3);
    assert_int_equal(m.op.mode, OP_MODE_INSERT_ONLY);
    msg_clear(&m);

    decode_ok(NULL, "{\"collection_name\": \"c\", \"points\": [{\"id\": 1, \"vector\": [1]}],"
                    " \"update_filter\": {\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1}}]}}",
              &m);
    assert_non_null(m.op.filter);
    msg_clear(&m);
}

static void test_msg_envelopes(void **state)
{
    (void)state;
    static const struct {
        const char *value;
        int type;
        size_t n_points, n_names;
        bool filter, payload, key;
    } cases[] = {
        {"{\"op\": \"upsert\", \"points\": [{\"id\": 1, \"vector\": [1]}]}", OP_UPSERT, 1, 0, 0, 0, 0},
        {"{\"op\": \"delete\", \"points\": [1, 2]}", OP_DELETE, 2, 0, 0, 0, 0},
        {"{\"op\": \"delete\", \"filter\": {\"must\": []}}", OP_DELETE, 0, 0, 1, 0, 0},
        {"{\"op\": \"set_payload\", \"payload\": {\"a\": 1}, \"points\": [1], \"key\": \"x.y\"}",
         OP_SET_PAYLOAD, 1, 0, 0, 1, 1},
        {"{\"op\": \"overwrite_payload\", \"payload\": {\"a\": 1}, \"filter\": {}}",
         OP_OVERWRITE_PAYLOAD, 0, 0, 1, 1, 0},
        {"{\"op\": \"delete_payload\", \"keys\": [\"a\", \"b\"], \"points\": [3]}",
         OP_DELETE_PAYLOAD, 1, 2, 0, 0, 0},
        {"{\"op\": \"clear_payload\", \"points\": [4, 5, 6]}", OP_CLEAR_PAYLOAD, 3, 0, 0, 0, 0},
        {"{\"op\": \"update_vectors\", \"points\": [{\"id\": 1, \"vector\": {\"v\": [1]}}]}",
         OP_UPDATE_VECTORS, 1, 0, 0, 0, 0},
        {"{\"op\": \"delete_vectors\", \"vector\": [\"v\"], \"points\": [1]}",
         OP_DELETE_VECTORS, 1, 1, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msg_t m;
        char *v;
        /* with a collection_name and a version in front */
        assert_true(asprintf(&v, "{\"collection_name\": \"c\", \"version\": 9, %s", cases[i].value + 1) > 0);
        if (cases[i].filter) {
            free(v);
            v = strdup(cases[i].value);
        }
        decode_ok(NULL, v, &m);
        assert_int_equal(m.op.type, cases[i].type);
        assert_int_equal(m.op.n_points, cases[i].n_points);
        assert_int_equal(m.op.n_names, cases[i].n_names);
        assert_int_equal(m.op.filter != NULL, cases[i].filter);
        assert_int_equal(m.op.payload != NULL, cases[i].payload);
        assert_int_equal(m.op.key != NULL, cases[i].key);
        for (size_t p = 0; p < m.op.n_points; p++)
            assert_true(m.op.points[p].has_pv && m.op.points[p].pv == 9);
        msg_clear(&m);
        free(v);
    }
}

static void test_msg_tombstone_keys(void **state)
{
    (void)state;
    msg_t m;

    decode_ok("42", NULL, &m);
    assert_int_equal(m.op.type, OP_DELETE);
    assert_int_equal(m.op.n_points, 1);
    assert_true(m.op.points[0].id.kind == PTID_NUM && m.op.points[0].id.num == 42);
    assert_null(m.collection);
    msg_clear(&m);

    /* u64 beyond 2^53 is exact from the text */
    decode_ok("18446744073709551615", NULL, &m);
    assert_true(m.op.points[0].id.num == UINT64_MAX);
    msg_clear(&m);

    decode_ok("5c56c793-69f3-4fbf-87e6-c4bf54c28c26", NULL, &m);
    assert_int_equal(m.op.points[0].id.kind, PTID_UUID);
    msg_clear(&m);
    decode_ok("\"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\"", NULL, &m);
    assert_int_equal(m.op.points[0].id.kind, PTID_UUID);
    msg_clear(&m);

    decode_ok("{\"collection_name\": \"c\", \"id\": 5, \"version\": 8}", NULL, &m);
    assert_string_equal(m.collection, "c");
    assert_true(m.op.points[0].id.num == 5);
    assert_true(m.op.points[0].has_pv && m.op.points[0].pv == 8);
    msg_clear(&m);
}

static void test_msg_errors(void **state)
{
    (void)state;
    decode_fail(NULL, "not json", ERR_INVALID, MSG_STAGE_VALUE, "not valid JSON");
    decode_fail(NULL, "{} trailing", ERR_INVALID, MSG_STAGE_VALUE, "not valid JSON");
    decode_fail(NULL, "", ERR_INVALID, MSG_STAGE_VALUE, "not valid JSON");
    decode_fail(NULL, "[1]", ERR_INVALID, MSG_STAGE_VALUE, "must be a JSON object");
    decode_fail(NULL, "{\"collection_name\": \"c\"}", ERR_INVALID, MSG_STAGE_VALUE, "expected a point");
    decode_fail(NULL, "{\"collection_name\": 3, \"id\": 1, \"vector\": [1]}", ERR_INVALID,
                MSG_STAGE_VALUE, "collection_name");
    decode_fail(NULL, "{\"id\": -1, \"vector\": [1]}", ERR_INVALID, MSG_STAGE_VALUE, "point.id");
    decode_fail(NULL, "{\"id\": 1, \"vector\": [1], \"payload\": [1]}", ERR_INVALID,
                MSG_STAGE_VALUE, "payload must be a JSON object");
    decode_fail(NULL, "{\"id\": 1, \"vector\": [1], \"extra\": 1}", ERR_INVALID, MSG_STAGE_VALUE,
                "unknown field \"extra\"");
    decode_fail(NULL, "{\"id\": 1, \"vector\": {\"s\": {\"indices\": [1], \"values\": [1]}}}",
                ERR_UNSUPPORTED, MSG_STAGE_VALUE, "sparse vectors");
    decode_fail(NULL, "{\"id\": 1, \"vector\": [1], \"version\": -2}", ERR_INVALID,
                MSG_STAGE_VALUE, "version");
    decode_fail(NULL, "{\"id\": 1, \"vector\": [1], \"version\": 1.5}", ERR_INVALID,
                MSG_STAGE_VALUE, "version");
    decode_fail(NULL, "{\"op\": \"explode\", \"points\": [1]}", ERR_INVALID, MSG_STAGE_VALUE,
                "op: expected one of");
    decode_fail(NULL, "{\"op\": 3}", ERR_INVALID, MSG_STAGE_VALUE, "op: expected one of");
    decode_fail(NULL, "{\"op\": \"delete\"}", ERR_INVALID, MSG_STAGE_VALUE, "op delete");
    decode_fail(NULL, "{\"op\": \"delete\", \"filter\": {}, \"version\": 1}", ERR_INVALID,
                MSG_STAGE_VALUE, "cannot carry a producer version");
    decode_fail(NULL, "{\"points\": [], \"batch\": {}}", ERR_INVALID, MSG_STAGE_VALUE,
                "exactly one of");
    /* tombstones */
    decode_fail(NULL, NULL, ERR_INVALID, MSG_STAGE_KEY, "key is null too");
    decode_fail("nope", NULL, ERR_INVALID, MSG_STAGE_KEY, "key");
    decode_fail("-3", NULL, ERR_INVALID, MSG_STAGE_KEY, "key");
    decode_fail("[1]", NULL, ERR_INVALID, MSG_STAGE_KEY, "key: expected a point id");
    decode_fail("{\"collection_name\": \"c\"}", NULL, ERR_INVALID, MSG_STAGE_KEY,
                "key: missing field \"id\"");
    decode_fail("{\"id\": 1, \"x\": 2}", NULL, ERR_INVALID, MSG_STAGE_KEY, "unknown field \"x\"");
    msg_t m;
    err_t e;
    int st;
    assert_int_equal(msg_decode("1\0002", 3, NULL, 0, &m, &st, &e), ERR_INVALID);
    assert_int_equal(st, MSG_STAGE_KEY);
    msg_clear(&m);
    /* a zero-length but non-null value is not a tombstone */
    assert_int_equal(msg_decode("1", 1, "", 0, &m, &st, &e), ERR_INVALID);
    assert_int_equal(st, MSG_STAGE_VALUE);
    msg_clear(&m);
    assert_string_equal(msg_stage_name(MSG_STAGE_KEY), "KEY_CONVERTER");
    assert_string_equal(msg_stage_name(MSG_STAGE_VALUE), "VALUE_CONVERTER");
    assert_string_equal(msg_stage_name(MSG_STAGE_APPLY), "TASK_PUT");
}

/* Documents stay pending (store/ does not embed): the sink embeds them per
 * target.  The resolver (embed/embed_op.h) fills them in here. */
static void test_msg_documents(void **state)
{
    (void)state;
    msg_t m;
    embed_reg_t *reg;
    embed_model_t *h;
    err_t e;
    const char *text = "hello kafka";
    float want[128];

    decode_ok(NULL, "{\"collection_name\": \"c\", \"id\": 7, \"vector\": {\"text\": \"hello kafka\","
                    " \"model\": \"veclog/hash-128\"}}", &m);
    assert_int_equal(m.op.points[0].n_vecs, 1);
    op_vec_t *v = &m.op.points[0].vecs[0];
    assert_string_equal(v->name, "");
    assert_int_equal(v->dim, 0);
    assert_null(v->data);
    assert_non_null(v->doc);
    assert_string_equal(v->doc->text, "hello kafka");
    assert_string_equal(v->doc->model, "veclog/hash-128");
    assert_string_equal(v->doc->where, "point.vector");
    /* never logged while pending */
    uint8_t *buf = NULL;
    size_t len;
    assert_int_equal(op_encode(&m.op, &buf, &len, &e), ERR_INVALID);
    assert_int_equal(embed_reg_new(NULL, 0, &reg, &e), ERR_OK);
    assert_int_equal(embed_op_resolve(reg, &m.op, NULL, NULL, 0, &e), ERR_OK);
    assert_null(v->doc);
    assert_int_equal(v->dim, 128);
    assert_int_equal(embed_model_get(reg, "veclog/hash-128", &h, &e), ERR_OK);
    assert_int_equal(embed_texts(h, &text, 1, want, &e), ERR_OK);
    assert_memory_equal(v->data, want, sizeof(want));
    assert_int_equal(op_encode(&m.op, &buf, &len, &e), ERR_OK);
    free(buf);
    msg_clear(&m);
    /* named map of Documents in an upsert body, with a model override */
    decode_ok(NULL, "{\"points\": [{\"id\": 1, \"vector\": {\"a\": {\"text\": \"x\","
                    " \"model\": \"veclog/hash-128\"}, \"b\": [1, 2]}}]}", &m);
    assert_non_null(m.op.points[0].vecs[0].doc);
    assert_null(m.op.points[0].vecs[1].doc);
    assert_int_equal(embed_op_resolve(reg, &m.op, "veclog/hash-512", NULL, 0, &e), ERR_OK);
    assert_int_equal(m.op.points[0].vecs[0].dim, 512);
    msg_clear(&m);
    /* unknown model: invalid (dead letter), naming it */
    decode_ok(NULL, "{\"id\": 1, \"vector\": {\"text\": \"x\", \"model\": \"nope\"}}", &m);
    assert_int_equal(embed_op_resolve(reg, &m.op, NULL, NULL, 0, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "nope"));
    assert_false(e.retriable);
    msg_clear(&m);
    embed_reg_free(reg);
    decode_fail(NULL, "{\"id\": 1, \"vector\": {\"text\": 1, \"model\": \"m\"}}", ERR_INVALID,
                MSG_STAGE_VALUE, "point.vector.text");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_sink_connector_point),
        cmocka_unit_test(test_msg_upsert_bodies),
        cmocka_unit_test(test_msg_envelopes),
        cmocka_unit_test(test_msg_tombstone_keys),
        cmocka_unit_test(test_msg_errors),
        cmocka_unit_test(test_msg_documents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
