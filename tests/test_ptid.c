/*
 * test_ptid.c - point ids: JSON and text parsing (integers, every UUID
 * spelling Qdrant accepts), canonical formatting, the key encoding and its
 * order, and the hash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/ptid.h"
#include "tests/testutil.h"

#define CANON "550e8400-e29b-41d4-a716-446655440000"

/* Parse JSON text holding one id; returns the code, fills *id and *e. */
static int json_id(const char *text, ptid_t *id, err_t *e)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    int rc = ptid_from_json(j, id, e);
    cJSON_Delete(j);
    return rc;
}

/* A JSON string holding s (no escaping needed in these tests). */
static int json_str_id(const char *s, ptid_t *id, err_t *e)
{
    cJSON *j = cJSON_CreateString(s);
    int rc = ptid_from_json(j, id, e);
    cJSON_Delete(j);
    return rc;
}

static void assert_uuid_text(const ptid_t *id, const char *want)
{
    char buf[PTID_STR_MAX];
    assert_int_equal(id->kind, PTID_UUID);
    ptid_format(id, buf, sizeof(buf));
    assert_string_equal(buf, want);
}

static void test_ptid_json_integers(void **state)
{
    (void)state;
    ptid_t id;
    err_t e;

    assert_int_equal(json_id("0", &id, &e), ERR_OK);
    assert_int_equal(id.kind, PTID_NUM);
    assert_int_equal(id.num, 0);
    assert_int_equal(json_id("42", &id, &e), ERR_OK);
    assert_int_equal(id.num, 42);
    assert_int_equal(json_id("-0", &id, &e), ERR_OK);
    assert_int_equal(id.num, 0);
    /* 2^53 - 1 is the largest integer a JSON double carries exactly */
    assert_int_equal(json_id("9007199254740991", &id, &e), ERR_OK);
    assert_int_equal(id.num, 9007199254740991ULL);

    /* 2^53 + 1 parses to the same double as 2^53: accepting 2^53 would
     * silently turn id 9007199254740993 into 9007199254740992 */
    assert_int_equal(json_id("9007199254740992", &id, &e), ERR_INVALID);
    assert_int_equal(json_id("9007199254740993", &id, &e), ERR_INVALID);
    assert_int_equal(json_id("18446744073709551615", &id, &e), ERR_INVALID);
    assert_int_equal(json_id("1e300", &id, &e), ERR_INVALID);
    assert_int_equal(json_id("-1", &id, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "-1"));
    assert_int_equal(json_id("1.5", &id, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "1.5"));
    assert_int_equal(json_id("-0.5", &id, &e), ERR_INVALID);
    assert_int_equal(json_id("true", &id, &e), ERR_INVALID);
    assert_int_equal(json_id("null", &id, &e), ERR_INVALID);
    assert_int_equal(json_id("[1]", &id, &e), ERR_INVALID);
    assert_int_equal(json_id("{\"id\":1}", &id, &e), ERR_INVALID);
    assert_int_equal(ptid_from_json(NULL, &id, &e), ERR_INVALID);
    /* a number in a string is not an id in JSON (Qdrant: u64 | UUID) */
    assert_int_equal(json_id("\"42\"", &id, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "42"));
}

static void test_ptid_json_uuid_forms_normalised(void **state)
{
    (void)state;
    static const char *const forms[] = {
        CANON,
        "550E8400-E29B-41D4-A716-446655440000",
        "550e8400E29b41d4A716446655440000",
        "550e8400e29b41d4a716446655440000",
        "550E8400E29B41D4A716446655440000",
        "{550e8400-e29b-41d4-a716-446655440000}",
        "{550E8400-E29B-41D4-A716-446655440000}",
        "urn:uuid:550e8400-e29b-41d4-a716-446655440000",
        "urn:uuid:550E8400-E29B-41D4-A716-446655440000",
    };
    ptid_t id;
    err_t e;

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        assert_int_equal(json_str_id(forms[i], &id, &e), ERR_OK);
        assert_uuid_text(&id, CANON);
        assert_int_equal(ptid_from_str(forms[i], &id, &e), ERR_OK);
        assert_uuid_text(&id, CANON);
        cJSON *j = ptid_to_json(&id);
        assert_true(cJSON_IsString(j));
        assert_string_equal(j->valuestring, CANON);
        cJSON_Delete(j);
    }
    assert_int_equal(json_str_id("00000000-0000-0000-0000-000000000000", &id, &e), ERR_OK);
    assert_uuid_text(&id, "00000000-0000-0000-0000-000000000000");
    assert_int_equal(json_str_id("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", &id, &e), ERR_OK);
    assert_uuid_text(&id, "ffffffff-ffff-ffff-ffff-ffffffffffff");
}

static void test_ptid_rejects_malformed_uuids(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "x",
        "550e8400-e29b-41d4-a716-44665544000",     /* 35 */
        "550e8400-e29b-41d4-a716-4466554400000",   /* 37 */
        "550e8400e29b41d4a71644665544000",         /* 31 */
        "550e8400e29b41d4a7164466554400000",       /* 33 */
        "550e8400-e29b-41d4-a716446655440000",     /* 35, missing last hyphen */
        "550e840-0e29b-41d4-a716-446655440000",    /* hyphen one early */
        "550e84000-e29b-41d4-a716-44665544000",    /* hyphen one late */
        "550e8400-e29b-41d4-a716-44665544000-",    /* hyphen at the end */
        "-550e8400e29b-41d4-a716-446655440000",
        "550e8400-e29b-41d4-a716_446655440000",
        "550e8400-e29b-41d4-a716-44665544000g",    /* non-hex */
        "g50e8400e29b41d4a716446655440000",
        "550e8400 e29b 41d4 a716 446655440000",
        " 550e8400-e29b-41d4-a716-446655440000",
        "550e8400-e29b-41d4-a716-446655440000 ",
        "+50e8400-e29b-41d4-a716-446655440000",
        "550e8400-e29b-41d4-a716-4466554400\xc3\xa9",
        "{550e8400-e29b-41d4-a716-446655440000",   /* unbalanced braces */
        "550e8400-e29b-41d4-a716-446655440000}",
        "{550e8400-e29b-41d4-a716-44665544000}",
        "{}",
        "{",
        "urn:uuid:",
        "urn:uuid:550e8400-e29b-41d4-a716-44665544000",
        "urn:550e8400-e29b-41d4-a716-446655440000",
        "uuid:550e8400-e29b-41d4-a716-446655440000",
        /* Rust's uuid crate (Qdrant) only accepts braced / URN forms
         * around the hyphenated one */
        "{550e8400e29b41d4a716446655440000}",
        "urn:uuid:550e8400e29b41d4a716446655440000",
        "urn:uuid:{550e8400-e29b-41d4-a716-446655440000}",
        "{urn:uuid:550e8400-e29b-41d4-a716-446655440000}",
        "0x550e8400e29b41d4a716446655440000",
    };
    ptid_t id;
    err_t e;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (json_str_id(bad[i], &id, &e) != ERR_INVALID)
            fail_msg("JSON id \"%s\" was accepted", bad[i]);
        if (ptid_from_str(bad[i], &id, &e) != ERR_INVALID)
            fail_msg("text id \"%s\" was accepted", bad[i]);
    }
    /* the message names the value */
    assert_int_equal(json_str_id("not-a-uuid", &id, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "not-a-uuid"));
    assert_false(e.retriable);
}

static void test_ptid_from_str_integers(void **state)
{
    (void)state;
    ptid_t id;
    err_t e;

    assert_int_equal(ptid_from_str("0", &id, &e), ERR_OK);
    assert_int_equal(id.kind, PTID_NUM);
    assert_int_equal(id.num, 0);
    assert_int_equal(ptid_from_str("9007199254740993", &id, &e), ERR_OK);
    assert_int_equal(id.num, 9007199254740993ULL);
    assert_int_equal(ptid_from_str("18446744073709551615", &id, &e), ERR_OK);
    assert_int_equal(id.num, UINT64_MAX);
    assert_int_equal(ptid_from_str("18446744073709551616", &id, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "18446744073709551616"));
    assert_int_equal(ptid_from_str("99999999999999999999999", &id, &e), ERR_INVALID);
    assert_int_equal(ptid_from_str("-1", &id, &e), ERR_INVALID);
    assert_int_equal(ptid_from_str("+1", &id, &e), ERR_INVALID);
    assert_int_equal(ptid_from_str("1.0", &id, &e), ERR_INVALID);
    assert_int_equal(ptid_from_str("1e3", &id, &e), ERR_INVALID);
    assert_int_equal(ptid_from_str(" 1", &id, &e), ERR_INVALID);
    assert_int_equal(ptid_from_str("1 ", &id, &e), ERR_INVALID);
    assert_int_equal(ptid_from_str("0x10", &id, &e), ERR_INVALID);
    assert_int_equal(ptid_from_str("", &id, &e), ERR_INVALID);
}

/* Text ids are parsed as Qdrant's ExtendedPointId::from_str does: a u64
 * first, then a UUID.  A simple-form UUID made only of decimal digits is
 * too large for a u64, so it is a UUID, not an out-of-range number. */
static void test_ptid_from_str_all_digit_simple_uuid(void **state)
{
    (void)state;
    ptid_t id;
    err_t e;

    assert_int_equal(ptid_from_str("12345678901234567890123456789012", &id, &e), ERR_OK);
    assert_uuid_text(&id, "12345678-9012-3456-7890-123456789012");
    assert_int_equal(ptid_from_str("98765432109876543210987654321098", &id, &e), ERR_OK);
    assert_uuid_text(&id, "98765432-1098-7654-3210-987654321098");
    /* u64 first: with enough leading zeros the same length is a number */
    assert_int_equal(ptid_from_str("00000000000000000000000000000001", &id, &e), ERR_OK);
    assert_int_equal(id.kind, PTID_NUM);
    assert_int_equal(id.num, 1);
    /* ... while in JSON a string is never a number */
    assert_int_equal(json_str_id("00000000000000000000000000000001", &id, &e), ERR_OK);
    assert_uuid_text(&id, "00000000-0000-0000-0000-000000000001");
    assert_int_equal(ptid_from_str("12345678901234567890123456789012", &id, &e), ERR_OK);
    assert_uuid_text(&id, "12345678-9012-3456-7890-123456789012");
    /* 31 and 33 digits are neither */
    assert_int_equal(ptid_from_str("1234567890123456789012345678901", &id, &e), ERR_INVALID);
    assert_int_equal(ptid_from_str("123456789012345678901234567890123", &id, &e), ERR_INVALID);
    assert_non_null(strstr(e.msg, "123456789012345678901234567890123"));
    /* 20 digits with leading zeros are still a number */
    assert_int_equal(ptid_from_str("00000000000000000042", &id, &e), ERR_OK);
    assert_int_equal(id.kind, PTID_NUM);
    assert_int_equal(id.num, 42);
}

static void test_ptid_format_and_to_json(void **state)
{
    (void)state;
    char buf[PTID_STR_MAX];
    ptid_t id = ptid_num(UINT64_MAX);

    ptid_format(&id, buf, sizeof(buf));
    assert_string_equal(buf, "18446744073709551615");
    id = ptid_num(0);
    ptid_format(&id, buf, sizeof(buf));
    assert_string_equal(buf, "0");
    id = ptid_num(9007199254740991ULL);
    cJSON *j = ptid_to_json(&id);
    assert_true(cJSON_IsNumber(j));
    assert_true(j->valuedouble == 9007199254740991.0);
    /* and back */
    ptid_t back;
    err_t e;
    assert_int_equal(ptid_from_json(j, &back, &e), ERR_OK);
    assert_true(ptid_eq(&id, &back));
    cJSON_Delete(j);
    /* a short buffer is truncated, never overrun */
    char small[8];
    memset(small, 'x', sizeof(small));
    assert_int_equal(ptid_from_str(CANON, &id, &e), ERR_OK);
    ptid_format(&id, small, 5);
    assert_string_equal(small, "550e");
    assert_int_equal(small[5], 'x');
}

static ptid_t rand_id(uint64_t *s)
{
    ptid_t id;
    memset(&id, 0, sizeof(id));
    switch (tu_rand(s) % 4) {
    case 0: /* small integers: many ties and neighbours */
        id = ptid_num(tu_rand(s) % 300);
        break;
    case 1: /* wide integers, every byte matters */
        id = ptid_num(tu_rand(s) >> (tu_rand(s) % 64));
        break;
    case 2: { /* UUIDs differing in few bytes */
        id.kind = PTID_UUID;
        id.uuid[tu_rand(s) % 16] = (uint8_t)(tu_rand(s) % 3);
        id.uuid[15] = (uint8_t)(tu_rand(s) % 2 ? 0xff : 0x00);
        break;
    }
    default:
        id.kind = PTID_UUID;
        for (int i = 0; i < 16; i++)
            id.uuid[i] = (uint8_t)tu_rand(s);
        break;
    }
    return id;
}

static int sgn(int v) { return (v > 0) - (v < 0); }

static int key_cmp(const uint8_t *a, size_t la, const uint8_t *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    if (c != 0)
        return c;
    return la < lb ? -1 : (la > lb ? 1 : 0);
}

static void test_ptid_encode_decode_roundtrip(void **state)
{
    (void)state;
    uint64_t s = tu_seed(0x1d1d);
    uint8_t key[PTID_KEY_MAX + 4];
    ptid_t id, back;

    for (int i = 0; i < 20000; i++) {
        id = rand_id(&s);
        size_t n = ptid_encode(&id, key);
        assert_int_equal(n, id.kind == PTID_NUM ? 9 : 17);
        assert_int_equal(key[0], id.kind);
        assert_int_equal(ptid_decode(key, n, &back), n);
        assert_true(ptid_eq(&id, &back));
        assert_int_equal(ptid_cmp(&id, &back), 0);
        /* extra bytes after the key are left alone */
        assert_int_equal(ptid_decode(key, n + 3, &back), n);
        /* every truncation fails */
        for (size_t k = 0; k < n; k++)
            assert_int_equal(ptid_decode(key, k, &back), 0);
    }
    /* integers are big-endian */
    id = ptid_num(0x0102030405060708ULL);
    ptid_encode(&id, key);
    static const uint8_t want[9] = { 0, 1, 2, 3, 4, 5, 6, 7, 8 };
    assert_memory_equal(key, want, 9);
    /* UUIDs in text order */
    err_t e;
    assert_int_equal(ptid_from_str(CANON, &id, &e), ERR_OK);
    ptid_encode(&id, key);
    assert_int_equal(key[0], 1);
    assert_int_equal(key[1], 0x55);
    assert_int_equal(key[16], 0x00);
    assert_int_equal(key[15], 0x00);
    assert_int_equal(key[14], 0x44);
    /* unknown kind byte */
    key[0] = 2;
    assert_int_equal(ptid_decode(key, 17, &back), 0);
    key[0] = 0xff;
    assert_int_equal(ptid_decode(key, 17, &back), 0);
    assert_int_equal(ptid_decode(key, 0, &back), 0);
}

static void test_ptid_order_matches_encoding(void **state)
{
    (void)state;
    uint64_t s = tu_seed(0x0bde);
    uint8_t ka[PTID_KEY_MAX], kb[PTID_KEY_MAX];

    for (int i = 0; i < 50000; i++) {
        ptid_t a = rand_id(&s), b = (i % 7 == 0) ? a : rand_id(&s);
        size_t la = ptid_encode(&a, ka), lb = ptid_encode(&b, kb);
        int c = sgn(ptid_cmp(&a, &b));
        assert_int_equal(c, sgn(key_cmp(ka, la, kb, lb)));
        assert_int_equal(c, -sgn(ptid_cmp(&b, &a)));
        assert_int_equal(ptid_eq(&a, &b), c == 0);
        if (c == 0)
            assert_true(ptid_hash(&a) == ptid_hash(&b));
        if (a.kind != b.kind)
            assert_int_equal(c, a.kind == PTID_NUM ? -1 : 1);
        else if (a.kind == PTID_NUM)
            assert_int_equal(c, a.num < b.num ? -1 : a.num > b.num);
    }
    /* the extremes: every integer sorts before every UUID */
    ptid_t big = ptid_num(UINT64_MAX), nil = { .kind = PTID_UUID };
    assert_true(ptid_cmp(&big, &nil) < 0);
    assert_true(ptid_cmp(&nil, &big) > 0);
    ptid_t one = ptid_num(1), two56 = ptid_num(1ULL << 56), z = ptid_num(0);
    assert_true(ptid_cmp(&one, &two56) < 0);
    assert_true(ptid_cmp(&z, &one) < 0);
    /* UUID order is the canonical text order */
    const char *texts[] = { "00000000-0000-0000-0000-000000000000",
                            "0000000a-0000-0000-0000-000000000000",
                            "09ffffff-ffff-ffff-ffff-ffffffffffff",
                            "a0000000-0000-0000-0000-000000000000",
                            "ffffffff-ffff-ffff-ffff-fffffffffffe",
                            "ffffffff-ffff-ffff-ffff-ffffffffffff" };
    err_t e;
    for (size_t i = 0; i + 1 < sizeof(texts) / sizeof(texts[0]); i++) {
        ptid_t x, y;
        assert_int_equal(ptid_from_str(texts[i], &x, &e), ERR_OK);
        assert_int_equal(ptid_from_str(texts[i + 1], &y, &e), ERR_OK);
        assert_true(ptid_cmp(&x, &y) < 0);
        assert_true(strcmp(texts[i], texts[i + 1]) < 0);
    }
    /* ptid_eq ignores the unused fields */
    ptid_t n1 = ptid_num(5), n2 = ptid_num(5);
    n2.uuid[3] = 9;
    assert_true(ptid_eq(&n1, &n2));
}

/* Bucket counts of sequential ids (integers and UUIDs with a counter in
 * the last bytes) over power-of-two tables stay near the mean. */
static void check_spread(const ptid_t *ids, size_t n, unsigned bits)
{
    size_t nb = (size_t)1 << bits;
    unsigned *lo = calloc(nb, sizeof(unsigned)), *hi = calloc(nb, sizeof(unsigned));
    assert_non_null(lo);
    assert_non_null(hi);
    for (size_t i = 0; i < n; i++) {
        uint64_t h = ptid_hash(&ids[i]);
        lo[h & (nb - 1)]++;
        hi[h >> (64 - bits)]++;
    }
    double mean = (double)n / (double)nb;
    unsigned maxlo = 0, maxhi = 0, emptylo = 0;
    for (size_t b = 0; b < nb; b++) {
        maxlo = lo[b] > maxlo ? lo[b] : maxlo;
        maxhi = hi[b] > maxhi ? hi[b] : maxhi;
        emptylo += lo[b] == 0;
    }
    /* Poisson(16): P(>= 48) is ~1e-9 per bucket */
    assert_true(maxlo < mean * 3);
    assert_true(maxhi < mean * 3);
    assert_true(emptylo < nb / 100);
    free(lo);
    free(hi);
}

static void test_ptid_hash_spreads_sequential_ids(void **state)
{
    (void)state;
    enum { N = 1 << 16, BITS = 12 };
    ptid_t *ids = calloc(N, sizeof(ptid_t));
    assert_non_null(ids);

    for (size_t i = 0; i < N; i++)
        ids[i] = ptid_num(i);
    check_spread(ids, N, BITS);
    for (size_t i = 0; i < N; i++)
        ids[i] = ptid_num(i << 12);   /* strided */
    check_spread(ids, N, BITS);
    for (size_t i = 0; i < N; i++) {
        memset(&ids[i], 0, sizeof(ids[i]));
        ids[i].kind = PTID_UUID;
        ids[i].uuid[14] = (uint8_t)(i >> 8);
        ids[i].uuid[15] = (uint8_t)i;
    }
    check_spread(ids, N, BITS);
    for (size_t i = 0; i < N; i++) {
        memset(&ids[i], 0, sizeof(ids[i]));
        ids[i].kind = PTID_UUID;
        ids[i].uuid[0] = (uint8_t)(i >> 8);   /* time-ordered (v7-like) prefix */
        ids[i].uuid[1] = (uint8_t)i;
    }
    check_spread(ids, N, BITS);
    /* distinct sequential ids: (almost) no full 64-bit collisions */
    for (size_t i = 0; i < N; i++)
        ids[i] = ptid_num(i);
    uint64_t *hs = malloc(N * sizeof(uint64_t));
    assert_non_null(hs);
    for (size_t i = 0; i < N; i++)
        hs[i] = ptid_hash(&ids[i]);
    size_t same = 0;
    for (size_t i = 1; i < N; i++)
        same += hs[i] == hs[i - 1];
    assert_int_equal(same, 0);
    free(hs);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ptid_json_integers),
        cmocka_unit_test(test_ptid_json_uuid_forms_normalised),
        cmocka_unit_test(test_ptid_rejects_malformed_uuids),
        cmocka_unit_test(test_ptid_from_str_integers),
        cmocka_unit_test(test_ptid_from_str_all_digit_simple_uuid),
        cmocka_unit_test(test_ptid_format_and_to_json),
        cmocka_unit_test(test_ptid_encode_decode_roundtrip),
        cmocka_unit_test(test_ptid_order_matches_encoding),
        cmocka_unit_test(test_ptid_hash_spreads_sequential_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
