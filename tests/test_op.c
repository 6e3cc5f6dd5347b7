/*
 * test_op.c - the op codec (WAL payload format in op.h): round trips of
 * every op type with every field, the exact layout, rejection of every
 * truncation and of malformed headers, random corruption (run under ASan),
 * and the construction helpers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/op.h"
#include "tests/testutil.h"

static const uint8_t ZERO_OP[sizeof(op_t)];

static void assert_op_zeroed(const op_t *op)
{
    assert_memory_equal(op, ZERO_OP, sizeof(*op));
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

/* Deep equality of two ops, floats compared bit for bit. */
static void assert_op_equal(const op_t *a, const op_t *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->mode, b->mode);
    assert_int_equal(a->has_source, b->has_source);
    if (a->has_source) {
        assert_string_equal(a->source.topic, b->source.topic);
        assert_int_equal(a->source.partition, b->source.partition);
        assert_true(a->source.offset == b->source.offset);
    }
    assert_str_eq_or_null(a->filter, b->filter);
    assert_str_eq_or_null(a->payload, b->payload);
    assert_str_eq_or_null(a->key, b->key);
    assert_int_equal(a->n_names, b->n_names);
    for (uint32_t i = 0; i < a->n_names; i++)
        assert_string_equal(a->names[i], b->names[i]);
    assert_int_equal(a->n_points, b->n_points);
    for (size_t i = 0; i < a->n_points; i++) {
        const op_point_t *p = &a->points[i], *q = &b->points[i];
        assert_true(ptid_eq(&p->id, &q->id));
        assert_int_equal(p->id.kind, q->id.kind);
        assert_int_equal(p->has_pv, q->has_pv);
        if (p->has_pv)
            assert_true(p->pv == q->pv);
        assert_str_eq_or_null(p->payload, q->payload);
        assert_int_equal(p->n_vecs, q->n_vecs);
        for (uint32_t k = 0; k < p->n_vecs; k++) {
            assert_string_equal(p->vecs[k].name, q->vecs[k].name);
            assert_int_equal(p->vecs[k].dim, q->vecs[k].dim);
            if (p->vecs[k].dim > 0)
                assert_memory_equal(p->vecs[k].data, q->vecs[k].data,
                                    (size_t)p->vecs[k].dim * sizeof(float));
        }
    }
}

static void encode_ok(const op_t *op, uint8_t **buf, size_t *len)
{
    err_t e;
    int rc = op_encode(op, buf, len, &e);
    if (rc != ERR_OK)
        fail_msg("op_encode: %s", e.msg);
}

/* Encode, decode, compare, re-encode to the same bytes. */
static void roundtrip(const op_t *op)
{
    uint8_t *buf = NULL, *buf2 = NULL;
    size_t len = 0, len2 = 0;
    op_t back;
    err_t e;

    encode_ok(op, &buf, &len);
    memset(&back, 0xa5, sizeof(back)); /* decode zeroes it first */
    if (op_decode(buf, len, &back, &e) != ERR_OK)
        fail_msg("op_decode: %s", e.msg);
    assert_op_equal(op, &back);
    encode_ok(&back, &buf2, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    op_clear(&back);
    assert_op_zeroed(&back);
    free(buf);
    free(buf2);
}

static ptid_t uuid_id(uint8_t seed)
{
    ptid_t id = { .kind = PTID_UUID };
    for (int i = 0; i < 16; i++)
        id.uuid[i] = (uint8_t)(seed * 31 + i * 7);
    return id;
}

static void fill(float *v, uint32_t dim, float base)
{
    for (uint32_t i = 0; i < dim; i++)
        v[i] = base + (float)i * 0.25f;
}

/* An op of the given type with every optional field set and three points:
 * an integer id with pv, payload and three named vectors (one of dim 0,
 * one of dim big); a UUID id with nothing; a UUID id with the unnamed
 * vector only. */
static void build_full(op_t *op, uint8_t type, uint8_t mode, uint32_t big)
{
    float small[3] = { -0.0f, INFINITY, NAN };
    float *v = malloc(((size_t)big + 1) * sizeof(float));
    op_point_t *p;

    assert_non_null(v);
    fill(v, big, -1.5f);
    memset(op, 0, sizeof(*op));
    op->type = type;
    op->mode = mode;
    assert_int_equal(op_source_set(op, "topic.with-\xc3\xa9", -7, INT64_MIN + 1), ERR_OK);
    op->filter = strdup("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":1}}]}");
    op->payload = strdup("{\"x\":{\"y\":[1,2,\"\\u00e9\"]}}");
    op->key = strdup("x.y");
    assert_int_equal(op_name_add(op, "a"), ERR_OK);
    assert_int_equal(op_name_add(op, ""), ERR_OK);
    assert_int_equal(op_name_add(op, "nested.k[0]"), ERR_OK);

    p = op_point_add(op);
    assert_non_null(p);
    p->id = ptid_num(UINT64_MAX);
    p->has_pv = true;
    p->pv = UINT64_MAX;
    p->payload = strdup("{\"k\":\"v\"}");
    assert_int_equal(op_vec_add(p, "dense", small, 3), ERR_OK);
    assert_int_equal(op_vec_add(p, "empty", small, 0), ERR_OK);
    assert_int_equal(op_vec_add(p, "big", v, big), ERR_OK);

    p = op_point_add(op);
    assert_non_null(p);
    p->id = uuid_id(1);

    p = op_point_add(op);
    assert_non_null(p);
    p->id = uuid_id(2);
    p->has_pv = true;
    p->pv = 0;
    p->payload = strdup("{}");
    assert_int_equal(op_vec_add(p, "", v, big > 8 ? 8 : big), ERR_OK);

    p = op_point_add(op);
    assert_non_null(p);
    p->id = ptid_num(0);
    free(v);
}

static void test_op_roundtrip_every_type_every_field(void **state)
{
    (void)state;
    for (uint8_t t = OP_UPSERT; t < OP_TYPE_MAX; t++) {
        for (uint8_t m = OP_MODE_UPSERT; m <= OP_MODE_UPDATE_ONLY; m++) {
            op_t op;
            build_full(&op, t, m, 1000);
            roundtrip(&op);
            op_clear(&op);
            assert_op_zeroed(&op);
        }
    }
}

static void test_op_roundtrip_large_dims(void **state)
{
    (void)state;
    op_t op;
    /* above COLL_MAX_DIM: the codec itself has no limit but u32 */
    build_full(&op, OP_UPSERT, OP_MODE_UPSERT, 200000);
    roundtrip(&op);
    op_clear(&op);

    /* many points with many vectors */
    memset(&op, 0, sizeof(op));
    op.type = OP_UPDATE_VECTORS;
    float v[16];
    fill(v, 16, 3.0f);
    for (uint32_t i = 0; i < 300; i++) {
        op_point_t *p = op_point_add(&op);
        assert_non_null(p);
        p->id = (i % 2) ? ptid_num(i) : uuid_id((uint8_t)i);
        for (uint32_t k = 0; k < 64; k++) {
            char name[16];
            snprintf(name, sizeof(name), "v%u", k);
            assert_int_equal(op_vec_add(p, name, v, k % 17), ERR_OK);
        }
    }
    roundtrip(&op);
    op_clear(&op);
}

static void test_op_roundtrip_optional_fields_each_alone(void **state)
{
    (void)state;
    for (int f = 0; f < 8; f++) {
        op_t op = { .type = OP_DELETE };
        switch (f) {
        case 0: break;  /* nothing at all */
        case 1: op_source_set(&op, "", 0, 0); break;  /* empty topic */
        case 2: op.filter = strdup("{}"); break;
        case 3: op.payload = strdup(""); break;
        case 4: op.key = strdup(""); break;
        case 5: op_name_add(&op, "only"); break;
        case 6: op_point_add(&op)->id = ptid_num(7); break;
        case 7: {
            op_point_t *p = op_point_add(&op);
            p->id = uuid_id(9);
            p->payload = strdup("");  /* empty payload text is still present */
            break;
        }
        }
        roundtrip(&op);
        op_clear(&op);
    }
}

/* The documented layout, byte for byte, for a small op. */
static void test_op_layout_matches_header(void **state)
{
    (void)state;
    op_t op = { .type = OP_SET_PAYLOAD, .mode = OP_MODE_INSERT_ONLY };
    uint8_t *buf;
    size_t len;

    op_source_set(&op, "t", 2, 3);
    op.filter = strdup("F");
    op.payload = strdup("P");
    op.key = strdup("K");
    op_name_add(&op, "N");
    op_point_t *p = op_point_add(&op);
    p->id = ptid_num(5);
    p->has_pv = true;
    p->pv = 6;
    p->payload = strdup("Q");
    float one = 1.0f;
    op_vec_add(p, "v", &one, 1);
    encode_ok(&op, &buf, &len);

    static const uint8_t want[] = {
        1, OP_SET_PAYLOAD, OP_MODE_INSERT_ONLY, 1 | 2 | 4 | 8,
        1, 0, 't', 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,   /* source */
        1, 0, 0, 0, 'F',                                 /* filter */
        1, 0, 0, 0, 'P',                                 /* payload */
        1, 0, 'K',                                       /* key */
        1, 0, 0, 0, 1, 0, 'N',                           /* names */
        1, 0, 0, 0,                                      /* n_points */
        9, 0, 0, 0, 0, 0, 0, 0, 0, 5,                    /* id */
        1 | 2, 6, 0, 0, 0, 0, 0, 0, 0,                   /* flags, pv */
        1, 0, 0, 0, 'Q',                                 /* payload */
        1, 0, 1, 0, 'v', 1, 0, 0, 0, 0x00, 0x00, 0x80, 0x3f, /* vectors */
    };
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    free(buf);
    op_clear(&op);

    /* the smallest op: header, no names, no points */
    op = (op_t){ .type = OP_CLEAR_PAYLOAD };
    encode_ok(&op, &buf, &len);
    static const uint8_t want2[] = { 1, OP_CLEAR_PAYLOAD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    assert_int_equal(len, sizeof(want2));
    assert_memory_equal(buf, want2, sizeof(want2));
    free(buf);
}

static void expect_corrupt(const uint8_t *buf, size_t len)
{
    op_t op;
    err_t e;
    memset(&op, 0x5a, sizeof(op));
    int rc = op_decode(buf, len, &op, &e);
    if (rc != ERR_CORRUPT)
        fail_msg("decode of %zu bytes returned %d, want ERR_CORRUPT", len, rc);
    assert_int_equal(e.code, ERR_CORRUPT);
    assert_op_zeroed(&op);
}

static void check_truncations(const op_t *op, size_t step)
{
    uint8_t *buf;
    size_t len;

    encode_ok(op, &buf, &len);
    for (size_t n = 0; n < len; n += (n < 64 || len - n < 64) ? 1 : step) {
        /* a copy of exactly n bytes, so ASan sees any read past it */
        uint8_t *cut = malloc(n ? n : 1);
        assert_non_null(cut);
        memcpy(cut, buf, n);
        expect_corrupt(cut, n);
        free(cut);
    }
    /* one trailing byte too many */
    uint8_t *more = malloc(len + 1);
    memcpy(more, buf, len);
    more[len] = 0;
    expect_corrupt(more, len + 1);
    free(more);
    free(buf);
}

static void test_op_decode_rejects_every_truncation(void **state)
{
    (void)state;
    for (uint8_t t = OP_UPSERT; t < OP_TYPE_MAX; t++) {
        op_t op;
        build_full(&op, t, (uint8_t)(t % 3), 40);
        check_truncations(&op, 1);
        op_clear(&op);
    }
    op_t op = { .type = OP_DELETE };
    check_truncations(&op, 1);
    op_point_add(&op)->id = uuid_id(3);
    check_truncations(&op, 1);
    op_clear(&op);
    /* a big one, sampled */
    build_full(&op, OP_UPSERT, 0, 50000);
    check_truncations(&op, 997);
    op_clear(&op);
    expect_corrupt(NULL, 0);
}

static void test_op_decode_rejects_bad_header(void **state)
{
    (void)state;
    op_t op = { .type = OP_DELETE };
    uint8_t *buf;
    size_t len;

    op_point_add(&op)->id = ptid_num(1);
    encode_ok(&op, &buf, &len);
    op_clear(&op);
    uint8_t *b = malloc(len);

    /* version */
    for (int v = 0; v < 256; v++) {
        memcpy(b, buf, len);
        b[0] = (uint8_t)v;
        if (v != 1)
            expect_corrupt(b, len);
    }
    /* type */
    for (int t = 0; t < 256; t++) {
        memcpy(b, buf, len);
        b[1] = (uint8_t)t;
        if (t == 0 || t >= OP_TYPE_MAX)
            expect_corrupt(b, len);
    }
    /* mode */
    for (int m = OP_MODE_UPDATE_ONLY + 1; m < 256; m++) {
        memcpy(b, buf, len);
        b[2] = (uint8_t)m;
        expect_corrupt(b, len);
    }
    /* unknown op flags (no field follows them): not a valid encoding */
    for (int f = 16; f < 256; f <<= 1) {
        memcpy(b, buf, len);
        b[3] = (uint8_t)f;
        expect_corrupt(b, len);
    }
    /* unknown point flags */
    size_t pflags = 4 + 4 + 4 + 1 + 9;
    assert_int_equal(buf[pflags], 0);
    for (int f = 4; f < 256; f <<= 1) {
        memcpy(b, buf, len);
        b[pflags] = (uint8_t)f;
        expect_corrupt(b, len);
    }
    /* id length / kind mismatches */
    size_t klen = 4 + 4 + 4;
    for (int k = 0; k < 256; k++) {
        memcpy(b, buf, len);
        b[klen] = (uint8_t)k;
        if (k != 9)
            expect_corrupt(b, len);
    }
    memcpy(b, buf, len);
    b[klen + 1] = PTID_UUID;  /* 9 bytes cannot be a UUID key */
    expect_corrupt(b, len);
    memcpy(b, buf, len);
    b[klen + 1] = 7;
    expect_corrupt(b, len);
    free(b);
    free(buf);
}

/* Hand-made records with lying counts and lengths. */
static void test_op_decode_rejects_lying_counts(void **state)
{
    (void)state;
    /* n_names huge */
    uint8_t a[] = { 1, OP_DELETE_PAYLOAD, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
    expect_corrupt(a, sizeof(a));
    /* n_points huge */
    uint8_t b[] = { 1, OP_DELETE, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
    expect_corrupt(b, sizeof(b));
    /* filter length beyond the buffer */
    uint8_t c[] = { 1, OP_DELETE, 0, 2, 0xff, 0xff, 0xff, 0x7f, '{', '}', 0, 0, 0, 0, 0, 0, 0, 0 };
    expect_corrupt(c, sizeof(c));
    /* a point whose id length is 0 (must be 9 or 17), then a payload and
     * a vector count: enough bytes to pass the point count sanity check */
    uint8_t d[] = { 1, OP_DELETE, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                    0, 2, 7, 0, 0, 0, '{', '"', 'a', '"', ':', '1', '}', 0, 0 };
    expect_corrupt(d, sizeof(d));
    /* 65535 vectors announced, none present */
    uint8_t e[] = { 1, OP_UPSERT, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                    9, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xff, 0xff };
    expect_corrupt(e, sizeof(e));
    /* a vector whose dim overflows dim * 4 in 32 bits */
    uint8_t f[] = { 1, OP_UPSERT, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                    9, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0,
                    0, 0, 0x00, 0x00, 0x00, 0x40, 0, 0, 0, 0 };
    expect_corrupt(f, sizeof(f));
}

static void test_op_decode_random_corruption_never_crashes(void **state)
{
    (void)state;
    uint64_t s = tu_seed(0x0bad);
    size_t decoded = 0, rejected = 0;

    for (uint8_t t = OP_UPSERT; t < OP_TYPE_MAX; t++) {
        op_t op;
        uint8_t *buf;
        size_t len;
        build_full(&op, t, 0, 24);
        encode_ok(&op, &buf, &len);
        op_clear(&op);
        uint8_t *b = malloc(len);
        for (int it = 0; it < 6000; it++) {
            memcpy(b, buf, len);
            int flips = 1 + (int)(tu_rand(&s) % 4);
            for (int k = 0; k < flips; k++) {
                size_t at = tu_rand(&s) % len;
                /* favour the header, counts and lengths */
                if (k == 0 && tu_rand(&s) % 2)
                    at = tu_rand(&s) % (len < 96 ? len : 96);
                uint8_t x = (uint8_t)(tu_rand(&s) % 255 + 1);
                b[at] ^= x;
            }
            size_t n = tu_rand(&s) % 8 == 0 ? tu_rand(&s) % (len + 1) : len;
            uint8_t *cut = malloc(n ? n : 1);
            memcpy(cut, b, n);
            op_t out;
            err_t e;
            int rc = op_decode(cut, n, &out, &e);
            if (rc == ERR_OK) {
                /* whatever decoded re-encodes to the same bytes */
                uint8_t *again;
                size_t alen;
                encode_ok(&out, &again, &alen);
                assert_int_equal(alen, n);
                assert_memory_equal(again, cut, n);
                free(again);
                op_clear(&out);
                decoded++;
            } else {
                assert_int_equal(rc, ERR_CORRUPT);
                assert_op_zeroed(&out);
                rejected++;
            }
            free(cut);
        }
        free(b);
        free(buf);
    }
    /* pure noise */
    for (int it = 0; it < 20000; it++) {
        uint8_t noise[64];
        size_t n = tu_rand(&s) % sizeof(noise);
        for (size_t i = 0; i < n; i++)
            noise[i] = (uint8_t)tu_rand(&s);
        if (n > 0 && tu_rand(&s) % 2)
            noise[0] = 1;
        if (n > 1 && tu_rand(&s) % 2)
            noise[1] = (uint8_t)(1 + tu_rand(&s) % (OP_TYPE_MAX - 1));
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, noise, n);
        op_t out;
        if (op_decode(cut, n, &out, NULL) == ERR_OK)
            op_clear(&out);
        free(cut);
    }
    fprintf(stderr, "corruption: %zu decoded, %zu rejected\n", decoded, rejected);
    assert_true(rejected > 0);
    assert_true(decoded > 0);
}

static void test_op_clear_zeroed_and_twice(void **state)
{
    (void)state;
    op_t op;
    memset(&op, 0, sizeof(op));
    op_clear(&op);
    assert_op_zeroed(&op);
    op_clear(&op);
    assert_op_zeroed(&op);

    build_full(&op, OP_UPSERT, 0, 5);
    op_clear(&op);
    assert_op_zeroed(&op);
    op_clear(&op);
    assert_op_zeroed(&op);
}

/* op_point_add works on any op, including one op_decode produced with a
 * count that is not a power of two. */
static void test_op_point_add_after_decode(void **state)
{
    (void)state;
    for (uint32_t n = 1; n <= 9; n++) {
        op_t op = { .type = OP_DELETE }, back;
        uint8_t *buf;
        size_t len;
        err_t e;
        for (uint32_t i = 0; i < n; i++)
            op_point_add(&op)->id = ptid_num(i);
        encode_ok(&op, &buf, &len);
        assert_int_equal(op_decode(buf, len, &back, &e), ERR_OK);
        free(buf);
        for (uint32_t i = 0; i < 5; i++) {
            op_point_t *p = op_point_add(&back);
            assert_non_null(p);
            p->id = ptid_num(100 + i);
            op_point_add(&op)->id = ptid_num(100 + i);
        }
        /* the decoded points are intact */
        assert_op_equal(&op, &back);
        op_clear(&op);
        op_clear(&back);
    }
}

static void test_op_helpers(void **state)
{
    (void)state;
    op_t op = { .type = OP_UPSERT };

    /* source replaced, old topic freed (ASan/LSan) */
    assert_int_equal(op_source_set(&op, "first", 1, 10), ERR_OK);
    assert_int_equal(op_source_set(&op, "second", -2, -20), ERR_OK);
    assert_true(op.has_source);
    assert_string_equal(op.source.topic, "second");
    assert_int_equal(op.source.partition, -2);
    assert_true(op.source.offset == -20);

    for (int i = 0; i < 100; i++) {
        char n[16];
        snprintf(n, sizeof(n), "n%d", i);
        assert_int_equal(op_name_add(&op, n), ERR_OK);
    }
    assert_int_equal(op.n_names, 100);
    assert_string_equal(op.names[99], "n99");

    for (size_t i = 0; i < 1000; i++) {
        op_point_t *p = op_point_add(&op);
        assert_non_null(p);
        assert_false(p->has_pv);
        assert_null(p->payload);
        assert_null(p->vecs);
        assert_int_equal(p->n_vecs, 0);
        p->id = ptid_num(i);
    }
    assert_int_equal(op.n_points, 1000);
    for (size_t i = 0; i < 1000; i++)
        assert_int_equal(op.points[i].id.num, i);

    float v[4] = { 1, 2, 3, 4 };
    op_point_t *p = &op.points[0];
    assert_int_equal(op_vec_add(p, "x", v, 4), ERR_OK);
    v[0] = 9;  /* copied */
    assert_true(p->vecs[0].data[0] == 1.0f);
    assert_int_equal(op_vec_add(p, "", v, 0), ERR_OK);
    assert_non_null(p->vecs[1].data);
    assert_int_equal(p->vecs[1].dim, 0);
    roundtrip(&op);
    op_clear(&op);

    assert_string_equal(op_type_name(OP_UPSERT), "upsert");
    assert_string_equal(op_type_name(OP_DELETE), "delete");
    assert_string_equal(op_type_name(OP_SET_PAYLOAD), "set_payload");
    assert_string_equal(op_type_name(OP_OVERWRITE_PAYLOAD), "overwrite_payload");
    assert_string_equal(op_type_name(OP_DELETE_PAYLOAD), "delete_payload");
    assert_string_equal(op_type_name(OP_CLEAR_PAYLOAD), "clear_payload");
    assert_string_equal(op_type_name(OP_UPDATE_VECTORS), "update_vectors");
    assert_string_equal(op_type_name(OP_DELETE_VECTORS), "delete_vectors");
    assert_string_equal(op_type_name(0), "unknown");
    assert_string_equal(op_type_name(OP_TYPE_MAX), "unknown");
    assert_string_equal(op_type_name(-1), "unknown");
}

/* A field longer than its length prefix can say must not be encoded into
 * a record that decodes differently (or not at all) at replay. */
static void test_op_encode_rejects_oversized_fields(void **state)
{
    (void)state;
    size_t n = 70000;
    char *longs = malloc(n + 1);
    memset(longs, 'k', n);
    longs[n] = '\0';
    uint8_t *buf = NULL;
    size_t len = 0;
    err_t e;

    for (int f = 0; f < 4; f++) {
        op_t op = { .type = OP_SET_PAYLOAD };
        op.payload = strdup("{}");
        switch (f) {
        case 0: op.key = strdup(longs); break;
        case 1: op_name_add(&op, longs); break;
        case 2: op_source_set(&op, longs, 0, 0); break;
        case 3: {
            op.type = OP_UPSERT;
            op_point_t *p = op_point_add(&op);
            p->id = ptid_num(1);
            float x = 1;
            op_vec_add(p, longs, &x, 1);
            break;
        }
        }
        int rc = op_encode(&op, &buf, &len, &e);
        if (rc == ERR_OK) {
            /* if it encodes at all, it must decode to the same op */
            op_t back;
            assert_int_equal(op_decode(buf, len, &back, &e), ERR_OK);
            assert_op_equal(&op, &back);
            op_clear(&back);
            free(buf);
        } else {
            assert_int_equal(rc, ERR_TOO_LARGE);
        }
        op_clear(&op);
    }
    /* exactly 65535 bytes is fine */
    longs[65535] = '\0';
    op_t op = { .type = OP_SET_PAYLOAD };
    op.key = strdup(longs);
    roundtrip(&op);
    op_clear(&op);
    free(longs);
}


/* ---- multi-source ops (version 2) ------------------------------------ */

static void assert_sources_equal(const op_t *a, const op_t *b)
{
    assert_int_equal(op_source_count(a), op_source_count(b));
    for (size_t i = 0; i < op_source_count(a); i++) {
        const op_source_t *x = op_source_at(a, i), *y = op_source_at(b, i);
        assert_string_equal(x->topic, y->topic);
        assert_int_equal(x->partition, y->partition);
        assert_true(x->offset == y->offset);
    }
}

static void test_op_source_add_keeps_max_per_partition(void **state)
{
    (void)state;
    op_t op = { .type = OP_UPSERT };

    assert_int_equal(op_source_count(&op), 0);
    assert_int_equal(op_source_add(&op, "a", 0, 10), ERR_OK);
    assert_true(op.has_source);
    assert_int_equal(op.n_more_sources, 0);
    assert_int_equal(op_source_add(&op, "a", 0, 7), ERR_OK);   /* lower: kept 10 */
    assert_int_equal(op_source_add(&op, "a", 1, 3), ERR_OK);   /* new partition */
    assert_int_equal(op_source_add(&op, "b", 0, 5), ERR_OK);   /* new topic */
    assert_int_equal(op_source_add(&op, "a", 1, 9), ERR_OK);   /* higher: 9 */
    assert_int_equal(op_source_add(&op, "a", 0, 12), ERR_OK);  /* higher, first slot */
    assert_int_equal(op_source_count(&op), 3);
    assert_string_equal(op_source_at(&op, 0)->topic, "a");
    assert_true(op_source_at(&op, 0)->offset == 12);
    assert_int_equal(op_source_at(&op, 1)->partition, 1);
    assert_true(op_source_at(&op, 1)->offset == 9);
    assert_string_equal(op_source_at(&op, 2)->topic, "b");
    assert_true(op_source_at(&op, 2)->offset == 5);
    op_clear(&op);
    assert_op_zeroed(&op);
}

/* Version 2 round trips, and only multi-source ops use it. */
static void test_op_multi_source_roundtrip_v2(void **state)
{
    (void)state;
    op_t op, back;
    uint8_t *buf;
    size_t len;
    err_t e;

    build_full(&op, OP_UPSERT, 0, 5);
    encode_ok(&op, &buf, &len);
    assert_int_equal(buf[0], 1);   /* one source: still version 1 */
    free(buf);
    assert_int_equal(op_source_add(&op, "other", 3, 1000), ERR_OK);
    assert_int_equal(op_source_add(&op, "", -1, INT64_MIN), ERR_OK);
    encode_ok(&op, &buf, &len);
    assert_int_equal(buf[0], 2);
    assert_int_equal(buf[3] & 16, 16);
    assert_int_equal(op_decode(buf, len, &back, &e), ERR_OK);
    assert_op_equal(&op, &back);
    assert_sources_equal(&op, &back);
    op_clear(&back);
    free(buf);
    roundtrip(&op);
    check_truncations(&op, 1);
    op_clear(&op);
}

/* The documented layout of the version 2 source section. */
static void test_op_layout_v2(void **state)
{
    (void)state;
    op_t op = { .type = OP_CLEAR_PAYLOAD };
    uint8_t *buf;
    size_t len;

    op_source_add(&op, "t", 2, 3);
    op_source_add(&op, "u", 4, 5);
    encode_ok(&op, &buf, &len);
    static const uint8_t want[] = {
        2, OP_CLEAR_PAYLOAD, 0, 1 | 16,
        1, 0, 't', 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0,   /* source */
        1, 0, 0, 0,                                      /* more sources */
        1, 0, 'u', 4, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,                          /* no names, no points */
    };
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));

    /* non-canonical or inconsistent headers */
    uint8_t *b = malloc(len);
    memcpy(b, buf, len);
    b[0] = 1;                       /* flag 16 in version 1 */
    expect_corrupt(b, len);
    memcpy(b, buf, len);
    b[3] = 16;                      /* more sources without a first */
    expect_corrupt(b, len);
    memcpy(b, buf, len);
    b[19] = 0;                      /* count 0 */
    expect_corrupt(b, len);
    memcpy(b, buf, len);
    b[25] = 't';                    /* duplicate of the first (topic t, but partition 4) */
    b[26] = 2;                      /* ... and partition 2: the same source twice */
    expect_corrupt(b, len);
    memcpy(b, buf, len);
    b[19] = 2;                      /* count larger than what follows */
    expect_corrupt(b, len);
    free(b);
    free(buf);
    op_clear(&op);

    /* a version 1 record relabelled as version 2 */
    op = (op_t){ .type = OP_CLEAR_PAYLOAD };
    op_source_add(&op, "t", 2, 3);
    encode_ok(&op, &buf, &len);
    buf[0] = 2;
    expect_corrupt(buf, len);
    free(buf);
    op_clear(&op);
}

/* META (version 3): round trip with and without sources, the documented
 * layout, truncations, and non-canonical headers. */
static void test_op_meta_roundtrip_v3(void **state)
{
    (void)state;
    op_t op = { .type = OP_UPSERT, .mode = OP_MODE_INSERT_ONLY }, back;
    uint8_t *buf;
    size_t len;
    err_t e;

    assert_int_equal(op_meta_set(&op, "bf/j", "{\"c\":1}"), ERR_OK);
    encode_ok(&op, &buf, &len);
    static const uint8_t want[] = {
        3, OP_UPSERT, OP_MODE_INSERT_ONLY, 32,
        4, 0, 'b', 'f', '/', 'j',                        /* meta key */
        7, 0, 0, 0, '{', '"', 'c', '"', ':', '1', '}',   /* meta value */
        0, 0, 0, 0, 0, 0, 0, 0,                          /* no names, no points */
    };
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    assert_int_equal(op_decode(buf, len, &back, &e), ERR_OK);
    assert_string_equal(back.meta_key, "bf/j");
    assert_string_equal(back.meta_val, "{\"c\":1}");
    op_clear(&back);
    uint8_t *b = malloc(len);
    memcpy(b, buf, len);
    b[0] = 1;                       /* meta in version 1 */
    expect_corrupt(b, len);
    b[0] = 2;                       /* ... or 2 */
    expect_corrupt(b, len);
    memcpy(b, buf, len);
    b[3] = 0;                       /* version 3 without meta */
    expect_corrupt(b, len);
    free(b);
    free(buf);
    op_clear(&op);

    /* with every other field and several sources */
    build_full(&op, OP_UPSERT, 0, 5);
    assert_int_equal(op_source_add(&op, "other", 3, 1000), ERR_OK);
    assert_int_equal(op_meta_set(&op, "k", ""), ERR_OK);
    assert_int_equal(op_meta_set(&op, "cursor", "x"), ERR_OK); /* replaces */
    encode_ok(&op, &buf, &len);
    assert_int_equal(buf[0], 3);
    assert_int_equal(op_decode(buf, len, &back, &e), ERR_OK);
    assert_op_equal(&op, &back);
    assert_sources_equal(&op, &back);
    assert_string_equal(back.meta_key, "cursor");
    assert_string_equal(back.meta_val, "x");
    op_clear(&back);
    free(buf);
    check_truncations(&op, 1);
    op_clear(&op);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_op_roundtrip_every_type_every_field),
        cmocka_unit_test(test_op_roundtrip_large_dims),
        cmocka_unit_test(test_op_roundtrip_optional_fields_each_alone),
        cmocka_unit_test(test_op_layout_matches_header),
        cmocka_unit_test(test_op_decode_rejects_every_truncation),
        cmocka_unit_test(test_op_decode_rejects_bad_header),
        cmocka_unit_test(test_op_decode_rejects_lying_counts),
        cmocka_unit_test(test_op_decode_random_corruption_never_crashes),
        cmocka_unit_test(test_op_clear_zeroed_and_twice),
        cmocka_unit_test(test_op_point_add_after_decode),
        cmocka_unit_test(test_op_helpers),
        cmocka_unit_test(test_op_encode_rejects_oversized_fields),
        cmocka_unit_test(test_op_source_add_keeps_max_per_partition),
        cmocka_unit_test(test_op_multi_source_roundtrip_v2),
        cmocka_unit_test(test_op_layout_v2),
        cmocka_unit_test(test_op_meta_roundtrip_v3),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
