/*
 * test_filter.c - tests for store/filter*.c: Qdrant filter parsing and
 * matching.
 *
 * Three layers:
 *  - hand-written cases for every condition kind and its edge cases, each
 *    a (filter JSON, payload JSON, expected) row so a failure prints the
 *    exact inputs;
 *  - malformed filters, each checked for its code and the field named in
 *    the message;
 *  - a randomised comparison of filter_match against nv_*, a deliberately
 *    naive evaluator written here from Qdrant's semantics that re-reads the
 *    filter JSON and walks the payload with string operations every time.
 *    Seeded through tu_seed, so a failure replays with VECLOG_TEST_SEED.
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

#include "store/filter.h"
#include "tests/testutil.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */

struct row {
    const char *filter;
    const char *payload; /* NULL: no payload */
    bool expect;
};

/* has_vector callback for hand-written cases: ctx is a comma-separated
 * list of the point's vector names. */
static bool has_vec_list(void *ctx, const char *name)
{
    const char *p = ctx;
    size_t n = strlen(name);

    while (p != NULL && *p != '\0') {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

static filter_t *compile(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    filter_t *f = NULL;
    err_t err = { 0 };

    if (j == NULL)
        fail_msg("test bug: bad JSON %s", text);
    if (filter_parse(j, &f, &err) != ERR_OK)
        fail_msg("filter_parse(%s) failed: %s", text, err.msg);
    cJSON_Delete(j);
    return f;
}

static bool match_full(const char *filter, const char *payload, const ptid_t *id,
                       const char *vectors)
{
    filter_t *f = compile(filter);
    cJSON *p = payload ? cJSON_Parse(payload) : NULL;
    filter_point_t pt = { id, p, vectors ? has_vec_list : NULL, (void *)vectors };
    bool r;

    if (payload != NULL && p == NULL)
        fail_msg("test bug: bad payload JSON %s", payload);
    r = filter_match(f, &pt);
    cJSON_Delete(p);
    filter_free(f);
    return r;
}

static void check_rows(const struct row *rows, size_t n)
{
    ptid_t id = ptid_num(1);

    for (size_t i = 0; i < n; i++) {
        bool got = match_full(rows[i].filter, rows[i].payload, &id, NULL);
        if (got != rows[i].expect)
            fail_msg("row %zu: filter %s on payload %s: expected %s, got %s", i,
                     rows[i].filter, rows[i].payload ? rows[i].payload : "(none)",
                     rows[i].expect ? "match" : "no match", got ? "match" : "no match");
    }
}

#define CHECK_ROWS(rows) check_rows(rows, sizeof(rows) / sizeof(rows[0]))

/* ------------------------------------------------------------------ */
/* structure                                                           */

static void test_filter_empty_filter_matches_everything(void **state)
{
    static const char all_null[] =
        "{\"must\": null, \"should\": null, \"must_not\": null, \"min_should\": null}";
    static const char *const empties[] = { "{}", "{\"must\": []}", "{\"must_not\": []}",
                                           all_null };
    filter_t *f = NULL;
    cJSON *null_json = cJSON_CreateNull();
    filter_point_t pt = { NULL, NULL, NULL, NULL };
    (void)state;

    assert_int_equal(filter_parse(NULL, &f, NULL), ERR_OK);
    assert_true(filter_is_empty(f));
    assert_true(filter_match(f, &pt));
    filter_free(f);
    assert_int_equal(filter_parse(null_json, &f, NULL), ERR_OK);
    assert_true(filter_is_empty(f));
    filter_free(f);
    cJSON_Delete(null_json);
    for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
        f = compile(empties[i]);
        assert_true(filter_is_empty(f));
        assert_true(filter_match(f, &pt));
        filter_free(f);
    }
    f = compile("{\"should\": []}");
    assert_false(filter_is_empty(f));
    assert_false(filter_match(f, &pt)); /* Qdrant: any() over nothing */
    filter_free(f);
    assert_true(filter_match(NULL, &pt));
    assert_true(filter_is_empty(NULL));
    filter_free(NULL);
}

static void test_filter_boolean_clauses(void **state)
{
    static const struct row rows[] = {
        { "{\"must\": [{\"key\": \"c\", \"match\": {\"value\": \"London\"}},"
          "{\"key\": \"k\", \"match\": {\"value\": \"red\"}}]}",
          "{\"c\": \"London\", \"k\": \"red\"}", true },
        { "{\"must\": [{\"key\": \"c\", \"match\": {\"value\": \"London\"}},"
          "{\"key\": \"k\", \"match\": {\"value\": \"red\"}}]}",
          "{\"c\": \"London\", \"k\": \"blue\"}", false },
        /* single condition instead of an array */
        { "{\"must\": {\"key\": \"c\", \"match\": {\"value\": \"London\"}}}",
          "{\"c\": \"London\"}", true },
        { "{\"should\": {\"key\": \"c\", \"match\": {\"value\": \"Paris\"}}}",
          "{\"c\": \"London\"}", false },
        { "{\"should\": [{\"key\": \"c\", \"match\": {\"value\": \"Paris\"}},"
          "{\"key\": \"k\", \"match\": {\"value\": \"red\"}}]}",
          "{\"c\": \"London\", \"k\": \"red\"}", true },
        { "{\"must_not\": {\"key\": \"c\", \"match\": {\"value\": \"London\"}}}",
          "{\"c\": \"London\"}", false },
        /* must_not on a missing field: the condition is false, so it passes */
        { "{\"must_not\": [{\"key\": \"c\", \"match\": {\"value\": \"London\"}}]}",
          "{\"k\": 1}", true },
        { "{\"must_not\": [{\"key\": \"c\", \"match\": {\"value\": \"London\"}}]}", NULL,
          true },
        /* sub-filter as a condition: NOT (London AND red) */
        { "{\"must_not\": [{\"must\": [{\"key\": \"c\", \"match\": {\"value\": \"London\"}},"
          "{\"key\": \"k\", \"match\": {\"value\": \"red\"}}]}]}",
          "{\"c\": \"London\", \"k\": \"green\"}", true },
        { "{\"must_not\": [{\"must\": [{\"key\": \"c\", \"match\": {\"value\": \"London\"}},"
          "{\"key\": \"k\", \"match\": {\"value\": \"red\"}}]}]}",
          "{\"c\": \"London\", \"k\": \"red\"}", false },
        /* {} as a condition is the match-all sub-filter */
        { "{\"must\": [{}]}", "{}", true },
        { "{\"must_not\": [{}]}", "{}", false },
        /* all clauses together */
        { "{\"should\": [{\"key\": \"a\", \"match\": {\"value\": 1}}],"
          "\"must\": [{\"key\": \"b\", \"match\": {\"value\": 2}}],"
          "\"must_not\": [{\"key\": \"c\", \"match\": {\"value\": 3}}]}",
          "{\"a\": 1, \"b\": 2, \"c\": 4}", true },
        { "{\"should\": [{\"key\": \"a\", \"match\": {\"value\": 1}}],"
          "\"must\": [{\"key\": \"b\", \"match\": {\"value\": 2}}],"
          "\"must_not\": [{\"key\": \"c\", \"match\": {\"value\": 3}}]}",
          "{\"a\": 0, \"b\": 2, \"c\": 4}", false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

static void test_filter_min_should(void **state)
{
    static const char two_of_three[] =
        "{\"min_should\": {\"min_count\": 2, \"conditions\": ["
        "{\"key\": \"a\", \"match\": {\"value\": 1}},"
        "{\"key\": \"b\", \"match\": {\"value\": 1}},"
        "{\"must\": [{\"key\": \"c\", \"match\": {\"value\": 1}}]}]}}";
    const struct row rows[] = {
        { two_of_three, "{\"a\": 1, \"b\": 1}", true },
        { two_of_three, "{\"a\": 1, \"c\": 1}", true },
        { two_of_three, "{\"a\": 1, \"b\": 1, \"c\": 1}", true },
        { two_of_three, "{\"a\": 1, \"b\": 2, \"c\": 2}", false },
        { two_of_three, "{}", false },
        /* more required than given, and the empty list (Qdrant issue #9369) */
        { "{\"min_should\": {\"min_count\": 2, \"conditions\": [{}]}}", "{}", false },
        { "{\"min_should\": {\"min_count\": 1, \"conditions\": []}}", "{}", false },
        /* combined with must */
        { "{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1}}],"
          "\"min_should\": {\"min_count\": 1, \"conditions\": ["
          "{\"key\": \"b\", \"match\": {\"value\": 1}}]}}",
          "{\"a\": 1, \"b\": 1}", true },
        { "{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1}}],"
          "\"min_should\": {\"min_count\": 1, \"conditions\": ["
          "{\"key\": \"b\", \"match\": {\"value\": 1}}]}}",
          "{\"a\": 2, \"b\": 1}", false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

/* ------------------------------------------------------------------ */
/* match                                                               */

static void test_filter_match_value(void **state)
{
    static const struct row rows[] = {
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"red\"}}}", "{\"k\": \"red\"}", true },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"red\"}}}", "{\"k\": \"Red\"}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"red\"}}}", "{\"K\": \"red\"}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"\"}}}", "{\"k\": \"\"}", true },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"1\"}}}", "{\"k\": 1}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": 1}}}", "{\"k\": 1}", true },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": 1}}}", "{\"k\": \"1\"}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": 1}}}", "{\"k\": 1.5}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": 1}}}", "{\"k\": true}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": -7}}}", "{\"k\": [3, -7]}", true },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": true}}}", "{\"k\": true}", true },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": true}}}", "{\"k\": false}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": false}}}", "{\"k\": false}", true },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": true}}}", "{\"k\": 1}", false },
        /* arrays: any element; nested arrays are not flattened */
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"b\"}}}", "{\"k\": [\"a\", \"b\"]}", true },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"b\"}}}", "{\"k\": [[\"b\"]]}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"b\"}}}", "{\"k\": []}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"b\"}}}", "{\"k\": null}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"b\"}}}", "{\"k\": {\"b\": 1}}", false },
        { "{\"must\": {\"key\": \"k\", \"match\": {\"value\": \"b\"}}}", NULL, false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

static void test_filter_match_any_on_array(void **state)
{
    static const struct row rows[] = {
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": [\"black\", \"yellow\"]}}}",
          "{\"c\": \"black\"}", true },
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": [\"black\", \"yellow\"]}}}",
          "{\"c\": [\"black\", \"green\"]}", true },
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": [\"black\", \"yellow\"]}}}",
          "{\"c\": [\"white\", \"green\"]}", false },
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": [\"black\", \"yellow\"]}}}",
          "{\"c\": []}", false },
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": [1, 2, 3]}}}", "{\"c\": [9, 2]}", true },
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": [1, 2, 3]}}}", "{\"c\": \"2\"}", false },
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": [\"2\"]}}}", "{\"c\": 2}", false },
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": []}}}", "{\"c\": \"x\"}", false },
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": []}}}", "{\"c\": 1}", false },
        /* many values: the sorted list is binary-searched */
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": [\"q\",\"w\",\"e\",\"r\",\"t\","
          "\"y\",\"u\",\"i\",\"o\",\"p\",\"a\",\"s\",\"d\",\"f\",\"g\",\"h\"]}}}",
          "{\"c\": \"g\"}", true },
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": [50, -3, 17, 8, 99, 1000, 4, 5, "
          "6, 7, 11, 12, 13, 14]}}}", "{\"c\": -3}", true },
        { "{\"must\": {\"key\": \"c\", \"match\": {\"any\": [50, -3, 17, 8, 99, 1000, 4, 5, "
          "6, 7, 11, 12, 13, 14]}}}", "{\"c\": 9}", false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

static void test_filter_match_except(void **state)
{
    static const char ex_str[] =
        "{\"must\": {\"key\": \"c\", \"match\": {\"except\": [\"black\", \"yellow\"]}}}";
    static const char ex_int[] = "{\"must\": {\"key\": \"n\", \"match\": {\"except\": [1]}}}";
    const struct row rows[] = {
        { ex_str, "{\"c\": \"green\"}", true },
        { ex_str, "{\"c\": \"black\"}", false },
        { ex_str, "{\"c\": [\"black\", \"green\"]}", true },
        { ex_str, "{\"c\": [\"black\", \"yellow\"]}", false },
        { ex_str, "{\"c\": []}", false },
        /* a missing field or null does not pass except */
        { ex_str, "{}", false },
        { ex_str, NULL, false },
        { ex_str, "{\"c\": null}", false },
        { ex_str, "{\"c\": [null]}", false },
        /* other types pass */
        { ex_str, "{\"c\": 5}", true },
        { ex_str, "{\"c\": true}", true },
        { ex_str, "{\"c\": {\"x\": 1}}", true },
        { ex_str, "{\"c\": [[\"black\"]]}", true },
        { ex_int, "{\"n\": 1}", false },
        { ex_int, "{\"n\": 5}", true },
        { ex_int, "{\"n\": [1, null]}", false },
        { ex_int, "{\"n\": 1.5}", true },
        { ex_int, "{\"n\": \"1\"}", true },
        { ex_int, "{\"n\": null}", false },
        /* must_not except: only points whose values are all in the list */
        { "{\"must_not\": {\"key\": \"n\", \"match\": {\"except\": [1]}}}", "{\"n\": [1, 1]}", true },
        { "{\"must_not\": {\"key\": \"n\", \"match\": {\"except\": [1]}}}", "{\"n\": [1, 2]}", false },
        /* the empty list counts as a string list */
        { "{\"must\": {\"key\": \"n\", \"match\": {\"except\": []}}}", "{\"n\": 3}", true },
        { "{\"must\": {\"key\": \"n\", \"match\": {\"except\": []}}}", "{\"n\": \"x\"}", true },
    };
    (void)state;
    CHECK_ROWS(rows);
}

static void test_filter_match_text(void **state)
{
    static const struct row rows[] = {
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text\": \"good cheap\"}}}",
          "{\"d\": \"a good cheap phone\"}", true },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text\": \"good cheap\"}}}",
          "{\"d\": \"cheap and good\"}", false },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text\": \"ood\"}}}", "{\"d\": \"goodness\"}", true },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text\": \"Good\"}}}", "{\"d\": \"goodness\"}", false },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text\": \"\"}}}", "{\"d\": \"\"}", true },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text\": \"1\"}}}", "{\"d\": 1}", false },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text\": \"b\"}}}", "{\"d\": [\"a\", \"abc\"]}", true },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"phrase\": \"good cheap\"}}}",
          "{\"d\": \"very good cheap\"}", true },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"phrase\": \"good cheap\"}}}",
          "{\"d\": \"good, cheap\"}", false },
        /* text_any: any token is a substring (no index, so "good" hits "goodness") */
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text_any\": \"good cheap\"}}}",
          "{\"d\": \"cheap hardware\"}", true },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text_any\": \"good cheap\"}}}",
          "{\"d\": \"goodness only\"}", true },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text_any\": \"good cheap\"}}}",
          "{\"d\": \"neutral text\"}", false },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text_any\": \"  \\t \"}}}",
          "{\"d\": \"anything\"}", false },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"text_any\": \"x\\u3000good\"}}}",
          "{\"d\": \"good\"}", true },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"prefix\": \"go\"}}}", "{\"d\": \"good\"}", true },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"prefix\": \"go\"}}}", "{\"d\": \"ago\"}", false },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"prefix\": \"go\"}}}", "{\"d\": \"g\"}", false },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"prefix\": \"\"}}}", "{\"d\": \"g\"}", true },
        { "{\"must\": {\"key\": \"d\", \"match\": {\"prefix\": \"\"}}}", "{\"d\": 1}", false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

/* ------------------------------------------------------------------ */
/* range, values_count, is_empty, is_null                              */

static void test_filter_range_numbers(void **state)
{
    static const struct row rows[] = {
        { "{\"must\": {\"key\": \"p\", \"range\": {\"gte\": 100, \"lte\": 450}}}", "{\"p\": 100}", true },
        { "{\"must\": {\"key\": \"p\", \"range\": {\"gte\": 100, \"lte\": 450}}}", "{\"p\": 450.0}", true },
        { "{\"must\": {\"key\": \"p\", \"range\": {\"gt\": 100, \"lt\": 450}}}", "{\"p\": 100}", false },
        { "{\"must\": {\"key\": \"p\", \"range\": {\"gt\": 100, \"lt\": 450}}}", "{\"p\": 449.99}", true },
        { "{\"must\": {\"key\": \"p\", \"range\": {\"gt\": null, \"lt\": 0.5}}}", "{\"p\": -1e300}", true },
        { "{\"must\": {\"key\": \"p\", \"range\": {\"lt\": 5}}}", "{\"p\": \"1\"}", false },
        { "{\"must\": {\"key\": \"p\", \"range\": {\"lt\": 5}}}", "{\"p\": true}", false },
        { "{\"must\": {\"key\": \"p\", \"range\": {\"lt\": 5}}}", "{\"p\": null}", false },
        { "{\"must\": {\"key\": \"p\", \"range\": {\"lt\": 5}}}", "{}", false },
        { "{\"must\": {\"key\": \"p\", \"range\": {\"lt\": 5}}}", "{\"p\": [9, 8, 4]}", true },
        { "{\"must\": {\"key\": \"p\", \"range\": {\"lt\": 5}}}", "{\"p\": [[4]]}", false },
        /* no bounds: any number */
        { "{\"must\": {\"key\": \"p\", \"range\": {}}}", "{\"p\": 3}", true },
        { "{\"must\": {\"key\": \"p\", \"range\": {}}}", "{\"p\": \"3\"}", false },
        /* Qdrant doc example: any city with population >= 9.0 */
        { "{\"should\": [{\"key\": \"country.cities[].population\", \"range\": {\"gte\": 9.0}}]}",
          "{\"country\": {\"name\": \"Japan\", \"cities\": [{\"name\": \"Tokyo\", "
          "\"population\": 9.3}, {\"name\": \"Osaka\", \"population\": 2.7}]}}", true },
        { "{\"should\": [{\"key\": \"country.cities[].population\", \"range\": {\"gte\": 9.0}}]}",
          "{\"country\": {\"name\": \"Germany\", \"cities\": [{\"name\": \"Berlin\", "
          "\"population\": 3.7}]}}", false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

static void test_filter_datetime_range_with_offsets(void **state)
{
    static const char feb[] = "{\"must\": {\"key\": \"t\", \"range\": "
                              "{\"gte\": \"2020-02-01T00:00:00Z\", \"lt\": \"2020-03-01\"}}}";
    static const char noon[] = "{\"must\": {\"key\": \"t\", \"range\": "
                               "{\"gte\": \"2023-02-08T12:00:00+02:00\"}}}";
    const struct row rows[] = {
        { feb, "{\"t\": \"2020-02-15T00:00:00Z\"}", true },
        { feb, "{\"t\": \"2020-03-01T00:00:00Z\"}", false },
        { feb, "{\"t\": \"2020-02-29 23:59:59.999999\"}", true },
        { feb, "{\"t\": \"2020-03-01T00:30:00+01:00\"}", true },   /* 23:30Z the day before */
        { feb, "{\"t\": \"2020-01-31T23:30:00-01:00\"}", true },   /* 00:30Z on Feb 1 */
        { feb, "{\"t\": \"2020-01-31T23:30:00-0030\"}", true },
        { feb, "{\"t\": \"2020-01-31T23:30:00\"}", false },
        { feb, "{\"t\": \"2020-02-10\"}", true },
        { feb, "{\"t\": \"2020-02-10T08:15\"}", true },
        { feb, "{\"t\": [\"1999-01-01\", \"2020-02-10\"]}", true },
        { feb, "{\"t\": \"not a date\"}", false },
        { feb, "{\"t\": 1581724800}", false },
        { feb, "{}", false },
        /* the bound carries an offset: 12:00+02:00 is 10:00Z */
        { noon, "{\"t\": \"2023-02-08T10:00:00Z\"}", true },
        { noon, "{\"t\": \"2023-02-08T09:59:59.999999999Z\"}", false },
        { noon, "{\"t\": \"2023-02-08 10:49:00\"}", true },
        /* equal instants in different spellings are equal */
        { "{\"must\": {\"key\": \"t\", \"range\": {\"lte\": \"2023-02-08T12:00:00+02:00\"}}}",
          "{\"t\": \"2023-02-08 10:00:00.000Z\"}", true },
        { "{\"must\": {\"key\": \"t\", \"range\": {\"lt\": \"2023-02-08T12:00:00+02:00\"}}}",
          "{\"t\": \"2023-02-08T10:00Z\"}", false },
        { "{\"must\": {\"key\": \"t\", \"range\": {\"gte\": \"2023-02-08\", "
          "\"lte\": \"2023-02-08\"}}}", "{\"t\": \"2023-02-07T19:00:00-05:00\"}", true },
        /* sub-second and sub-microsecond precision */
        { "{\"must\": {\"key\": \"t\", \"range\": {\"gt\": \"2023-01-01T00:00:00.5Z\"}}}",
          "{\"t\": \"2023-01-01T00:00:00.500000001Z\"}", true },
        { "{\"must\": {\"key\": \"t\", \"range\": {\"gt\": \"2023-01-01T00:00:00.5Z\"}}}",
          "{\"t\": \"2023-01-01T00:00:00.5000Z\"}", false },
        /* one string bound makes it a datetime range; nulls are ignored */
        { "{\"must\": {\"key\": \"t\", \"range\": {\"lt\": \"2023-01-01\", \"gt\": null}}}",
          "{\"t\": \"2022-12-31T23:59:59Z\"}", true },
    };
    (void)state;
    CHECK_ROWS(rows);
}

struct dt_case {
    const char *s;
    bool ok;
    int64_t sec;
    int32_t nsec;
};

static void test_filter_datetime_parse_forms(void **state)
{
    static const struct dt_case cases[] = {
        { "2023-02-08T10:49:00Z", true, 1675853340, 0 },
        { "2023-02-08t10:49:00z", true, 1675853340, 0 },
        { "2023-02-08T10:49:00+01:00", true, 1675849740, 0 },
        { "2023-02-08T10:49:00-0530", true, 1675873140, 0 },
        { "2023-02-08T10:49:00+05", true, 1675835340, 0 },
        { "2023-02-08T10:49:00 UTC", true, 1675853340, 0 },
        { "2023-02-08 10:49:00+01:00", true, 1675849740, 0 },
        { "2023-02-08 10:49:00", true, 1675853340, 0 },
        { "2023-02-08T10:49:00", true, 1675853340, 0 },
        { "2023-02-08T10:49", true, 1675853340, 0 },
        { "2023-02-08 10:49", true, 1675853340, 0 },
        { "2023-02-08", true, 1675814400, 0 },
        { "2023-2-8", true, 1675814400, 0 },
        { "2023-02-08T10:49:00.123456789Z", true, 1675853340, 123456789 },
        { "2023-02-08T10:49:00.1234567891234Z", true, 1675853340, 123456789 },
        { "2023-02-08T10:49:00.5", true, 1675853340, 500000000 },
        { "2016-12-31T23:59:60Z", true, 1483228799, 1000000000 },
        { "1969-12-31T23:59:59Z", true, -1, 0 },
        { "0001-01-01T00:00:00Z", true, -62135596800, 0 },
        { "2024-02-29", true, 1709164800, 0 },
        { "2023-02-29", false, 0, 0 },
        { "2023-13-01", false, 0, 0 },
        { "2023-00-10", false, 0, 0 },
        { "2023-02-08T24:00:00Z", false, 0, 0 },
        { "2023-02-08T10:60:00Z", false, 0, 0 },
        { "2023-02-08T10:49Z", false, 0, 0 },
        { "2023-02-08T10:49:00+24:00", false, 0, 0 },
        { "2023-02-08T10:49:00+01:60", false, 0, 0 },
        { "2023-02-08T10:49:00.Z", false, 0, 0 },
        { "2023-02-08X10:49:00", false, 0, 0 },
        { "2023-02-08T10:49:00Zjunk", false, 0, 0 },
        { "20230-02-08", false, 0, 0 },
        { "", false, 0, 0 },
        { "garbage", false, 0, 0 },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t sec = 0;
        int32_t ns = 0;
        bool ok = filter_datetime_parse(cases[i].s, &sec, &ns);
        if (ok != cases[i].ok)
            fail_msg("\"%s\": expected %s", cases[i].s, cases[i].ok ? "accepted" : "rejected");
        if (ok && (sec != cases[i].sec || ns != cases[i].nsec))
            fail_msg("\"%s\": got %" PRId64 ".%09d, expected %" PRId64 ".%09d", cases[i].s,
                     sec, (int)ns, cases[i].sec, (int)cases[i].nsec);
    }
    assert_false(filter_datetime_parse(NULL, NULL, NULL));
}

static void test_filter_values_count(void **state)
{
    static const struct row rows[] = {
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"lt\": 5}}}", "{\"r\": [3, 7, 9, 9]}", true },
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"gte\": 10}}}", "{\"r\": [3, 7, 9, 9]}", false },
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"gt\": 1}}}",
          "{\"r\": [{\"country\": \"Germany\"}, {\"country\": \"France\"}]}", true },
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"gt\": 2}}}",
          "{\"r\": [{\"country\": \"Germany\"}, {\"country\": \"France\"}]}", false },
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"gte\": 2}}}",
          "{\"r\": [{\"country\": \"Germany\"}, {\"country\": \"France\"}]}", true },
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"lte\": 1, \"gte\": 1}}}", "{\"r\": \"x\"}", true },
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"lte\": 1, \"gte\": 1}}}", "{\"r\": {}}", true },
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"lt\": 1}}}", "{\"r\": null}", true },
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"lt\": 1}}}", "{\"r\": []}", true },
        /* a missing field counts 0 (Qdrant issue #9586) */
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"lte\": 0}}}", "{}", true },
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"gte\": 1}}}", "{}", false },
        { "{\"must\": {\"key\": \"r\", \"values_count\": {\"lt\": 1}}}", NULL, true },
        /* several values at the path: any of them */
        { "{\"must\": {\"key\": \"a[].r\", \"values_count\": {\"gte\": 2}}}",
          "{\"a\": [{\"r\": [1]}, {\"r\": [1, 2]}]}", true },
        { "{\"must\": {\"key\": \"a[].r\", \"values_count\": {\"gte\": 3}}}",
          "{\"a\": [{\"r\": [1]}, {\"r\": [1, 2]}]}", false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

static void test_filter_is_empty_and_is_null(void **state)
{
    static const char ie[] = "{\"must\": {\"is_empty\": {\"key\": \"f\"}}}";
    static const char in[] = "{\"must\": {\"is_null\": {\"key\": \"f\"}}}";
    const struct row rows[] = {
        { ie, "{\"f\": 1}", false },        { ie, "{}", true },
        { ie, NULL, true },                 { ie, "{\"f\": []}", true },
        { ie, "{\"f\": null}", true },      { ie, "{\"f\": [null]}", false },
        { ie, "{\"f\": \"\"}", false },     { ie, "{\"f\": {}}", false },
        { in, "{\"f\": null}", true },      { in, "{\"f\": 1}", false },
        { in, "{\"f\": []}", false },       { in, "{}", false },
        { in, "{\"f\": [null]}", false },   /* an array holding null is not null */
        /* multi-valued paths: is_empty needs every value empty, is_null any null */
        { "{\"must\": {\"is_empty\": {\"key\": \"a[].b\"}}}",
          "{\"a\": [{\"b\": 1}, {\"b\": 2}, {\"b\": null}, {\"d\": []}]}", false },
        { "{\"must\": {\"is_empty\": {\"key\": \"a[].c\"}}}", "{\"a\": [{\"b\": 1}]}", true },
        { "{\"must\": {\"is_empty\": {\"key\": \"a[].d\"}}}", "{\"a\": [{\"d\": []}, {\"d\": null}]}", true },
        { "{\"must\": {\"is_null\": {\"key\": \"a[].b\"}}}", "{\"a\": [{\"b\": 1}, {\"b\": null}]}", true },
        { "{\"must\": {\"is_null\": {\"key\": \"a[].b\"}}}", "{\"a\": [{\"b\": 1}, {\"b\": 2}]}", false },
        /* the field-condition forms (values checked one by one) */
        { "{\"must\": {\"key\": \"f\", \"is_empty\": true}}", "{}", true },
        { "{\"must\": {\"key\": \"f\", \"is_empty\": true}}", "{\"f\": []}", true },
        { "{\"must\": {\"key\": \"f\", \"is_empty\": true}}", "{\"f\": [null]}", false },
        { "{\"must\": {\"key\": \"f\", \"is_empty\": false}}", "{\"f\": [null]}", true },
        { "{\"must\": {\"key\": \"f\", \"is_empty\": false}}", "{}", false },
        { "{\"must\": {\"key\": \"f\", \"is_empty\": false}}", "{\"f\": null}", false },
        { "{\"must\": {\"key\": \"a[].b\", \"is_empty\": true}}", "{\"a\": [{\"b\": 1}, {\"b\": []}]}", true },
        { "{\"must\": {\"key\": \"f\", \"is_null\": true}}", "{\"f\": [1, null]}", true },
        { "{\"must\": {\"key\": \"f\", \"is_null\": true}}", "{\"f\": [1]}", false },
        { "{\"must\": {\"key\": \"f\", \"is_null\": true}}", "{}", false },
        { "{\"must\": {\"key\": \"f\", \"is_null\": false}}", "{}", true },
        { "{\"must\": {\"key\": \"f\", \"is_null\": false}}", "{\"f\": []}", true },
        { "{\"must\": {\"key\": \"f\", \"is_null\": false}}", "{\"f\": null}", false },
        { "{\"must_not\": {\"key\": \"f\", \"is_empty\": true}}", "{\"f\": 3}", true },
    };
    (void)state;
    CHECK_ROWS(rows);
}

static void test_filter_field_condition_parts_or_and_precedence(void **state)
{
    static const struct row rows[] = {
        /* several conditions in one field condition are ORed (Qdrant check_match) */
        { "{\"must\": {\"key\": \"v\", \"match\": {\"value\": \"x\"}, \"range\": {\"gt\": 5}}}",
          "{\"v\": \"x\"}", true },
        { "{\"must\": {\"key\": \"v\", \"match\": {\"value\": \"x\"}, \"range\": {\"gt\": 5}}}",
          "{\"v\": 6}", true },
        { "{\"must\": {\"key\": \"v\", \"match\": {\"value\": \"x\"}, \"range\": {\"gt\": 5}}}",
          "{\"v\": 4}", false },
        /* values_count, then is_empty, then is_null take over the whole check */
        { "{\"must\": {\"key\": \"v\", \"match\": {\"value\": \"x\"}, \"values_count\": {\"gt\": 1}}}",
          "{\"v\": \"x\"}", false },
        { "{\"must\": {\"key\": \"v\", \"match\": {\"value\": \"x\"}, \"is_empty\": false}}",
          "{\"v\": \"y\"}", true },
        { "{\"must\": {\"key\": \"v\", \"is_empty\": true, \"is_null\": true}}", "{\"v\": [null]}",
          false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

/* ------------------------------------------------------------------ */
/* paths                                                               */

static void test_filter_paths_and_projection(void **state)
{
    static const char doc[] =
        "{\"a\": {\"b\": [{\"c\": 1}, {\"c\": 2}, {\"d\": {\"e\": 3}}]},"
        " \"g\": [\"g0\", \"g1\", \"g2\"],"
        " \"arr1\": [{\"arr2\": [{\"a\": 1}, {\"a\": 2}]}, {\"arr2\": [{\"a\": 3}]}],"
        " \"m\": [[1, 2], [3]], \"odd.key\": {\"x y\": 7}, \"k\": [{\"b\": 5}]}";
    static const struct { const char *path; size_t n; } cases[] = {
        { "a.b", 1 },        { "a.b[]", 3 },     { "a.b[].c", 2 },   { "a.b[].d", 1 },
        { "a.b[].d.e", 1 },  { "a.b[0]", 1 },    { "a.b[1].c", 1 },  { "a.b[3]", 0 },
        { "g[2]", 1 },       { "g[]", 3 },       { "g", 1 },         { "arr1[].arr2[].a", 3 },
        { "arr1[1].arr2[0].a", 1 },              { "m[][]", 3 },     { "m[]", 2 },
        { "\"odd.key\".\"x y\"", 1 },            { "odd.key", 0 },   { "k.b", 0 },
        { "k[].b", 1 },      { "a.c", 0 },       { "zz", 0 },        { "a.b.c", 0 },
        { "a[0]", 0 },       { "g.x", 0 },       { "g[0].x", 0 },
    };
    static const char *const invalid[] = { "", "a..b", ".a", "a.", "a[", "a[x]", "a[1",
                                           "[0]", "a b", "\"a", "a\"b\"",
                                           "a[99999999999999999999999]", "a.\"b\\\"\"" };
    cJSON *p = cJSON_Parse(doc);
    const cJSON *out[2];
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = filter_path_values(p, cases[i].path, out, 2);
        if (n != cases[i].n)
            fail_msg("path %s: %zu values, expected %zu", cases[i].path, n, cases[i].n);
        assert_true(filter_path_is_valid(cases[i].path));
    }
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        if (filter_path_is_valid(invalid[i]))
            fail_msg("path %s should be invalid", invalid[i]);
        assert_int_equal(filter_path_values(p, invalid[i], out, 2), 0);
    }
    assert_int_equal(filter_path_values(p, "a.b[].c", out, 2), 2);
    assert_int_equal(out[0]->valueint, 1);
    assert_int_equal(out[1]->valueint, 2);
    assert_int_equal(filter_path_values(p, "arr1[].arr2[].a", out, 0), 3); /* truncated */
    assert_int_equal(filter_path_values(p, "arr1[].arr2[].a", NULL, 5), 3);
    assert_int_equal(filter_path_values(NULL, "a", out, 2), 0);
    assert_true(filter_path_is_valid("Ünïcode_ke-y[0][]"));
    assert_true(filter_path_is_valid("\"\""));
    cJSON_Delete(p);
}

static void test_filter_path_values_deep_path(void **state)
{
    char path[400] = "a";
    cJSON *root = cJSON_CreateObject(), *cur = root;
    const cJSON *out[1];
    (void)state;

    /* 60 levels: more segments than filter_path_values keeps on its stack */
    for (int i = 0; i < 60; i++) {
        cJSON *next = cJSON_CreateObject();
        cJSON_AddItemToObject(cur, "a", next);
        cur = next;
        if (i > 0)
            strcat(path, ".a");
    }
    cJSON_AddNumberToObject(cur, "leaf", 42);
    strcat(path, ".leaf");
    assert_int_equal(filter_path_values(root, path, out, 1), 1);
    assert_int_equal(out[0]->valueint, 42);
    cJSON_Delete(root);
}

static void test_filter_key_on_nested_arrays(void **state)
{
    static const struct row rows[] = {
        { "{\"must\": {\"key\": \"country.name\", \"match\": {\"value\": \"Germany\"}}}",
          "{\"country\": {\"name\": \"Germany\"}}", true },
        /* "a.b" does not descend into arrays: "a[].b" does */
        { "{\"must\": {\"key\": \"d.food\", \"match\": {\"value\": \"meat\"}}}",
          "{\"d\": [{\"food\": \"meat\"}]}", false },
        { "{\"must\": {\"key\": \"d[].food\", \"match\": {\"value\": \"meat\"}}}",
          "{\"d\": [{\"food\": \"meat\"}]}", true },
        { "{\"must\": {\"key\": \"d[1].food\", \"match\": {\"value\": \"meat\"}}}",
          "{\"d\": [{\"food\": \"meat\"}, {\"food\": \"fish\"}]}", false },
        { "{\"must\": {\"key\": \"d[0].food\", \"match\": {\"value\": \"meat\"}}}",
          "{\"d\": [{\"food\": \"meat\"}, {\"food\": \"fish\"}]}", true },
        /* leaf array under a projection: one level of array per value */
        { "{\"should\": {\"key\": \"c.cities[].sights\", \"match\": {\"value\": \"Osaka Castle\"}}}",
          "{\"c\": {\"cities\": [{\"sights\": [\"Tokyo Tower\"]}, "
          "{\"sights\": [\"Osaka Castle\", \"USJ\"]}]}}", true },
        { "{\"must\": {\"key\": \"m[]\", \"match\": {\"value\": 3}}}", "{\"m\": [[1, 2], [3]]}", true },
        { "{\"must\": {\"key\": \"m\", \"match\": {\"value\": 3}}}", "{\"m\": [[1, 2], [3]]}", false },
        { "{\"must\": {\"key\": \"\\\"a.b\\\"\", \"match\": {\"value\": 1}}}", "{\"a.b\": 1}", true },
        { "{\"must\": {\"key\": \"\\\"a.b\\\"\", \"match\": {\"value\": 1}}}", "{\"a\": {\"b\": 1}}", false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

/* ------------------------------------------------------------------ */
/* geo                                                                 */

static void test_filter_geo_bounding_box(void **state)
{
    static const char berlin[] =
        "{\"must\": {\"key\": \"loc\", \"geo_bounding_box\": {"
        "\"top_left\": {\"lon\": 13.08835, \"lat\": 52.67551},"
        "\"bottom_right\": {\"lon\": 13.76116, \"lat\": 52.33826}}}}";
    static const char anti[] = /* across the antimeridian */
        "{\"must\": {\"key\": \"loc\", \"geo_bounding_box\": {"
        "\"top_left\": {\"lon\": 170, \"lat\": 10}, \"bottom_right\": {\"lon\": -170, \"lat\": -10}}}}";
    const struct row rows[] = {
        { berlin, "{\"loc\": {\"lon\": 13.404954, \"lat\": 52.520008}}", true },
        { berlin, "{\"loc\": {\"lon\": 37.6, \"lat\": 55.7}}", false },
        { berlin, "{\"loc\": [{\"lon\": 37.6, \"lat\": 55.7}, {\"lon\": 13.4, \"lat\": 52.5}]}", true },
        { berlin, "{\"loc\": {\"lon\": 13.08835, \"lat\": 52.5}}", false }, /* on the edge */
        { berlin, "{\"loc\": {\"lon\": \"13.4\", \"lat\": 52.5}}", false },
        { berlin, "{\"loc\": {\"lat\": 52.5}}", false },
        { berlin, "{\"loc\": [13.4, 52.5]}", false },
        { berlin, "{\"loc\": {\"lon\": 13.4, \"lat\": 52.5, \"name\": \"x\"}}", true },
        { anti, "{\"loc\": {\"lon\": 175, \"lat\": 0}}", true },
        { anti, "{\"loc\": {\"lon\": -175, \"lat\": 0}}", true },
        { anti, "{\"loc\": {\"lon\": 0, \"lat\": 0}}", false },
        { anti, "{\"loc\": {\"lon\": 175, \"lat\": 11}}", false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

static void test_filter_geo_radius(void **state)
{
    static const char both[] = "{\"loc\": [{\"lat\": 52.52197645, \"lon\": 13.413637435864272},"
                               "{\"lat\": 55.7536283, \"lon\": 37.62137960067377}]}";
    const struct row rows[] = {
        { "{\"must\": {\"key\": \"loc\", \"geo_radius\": {\"center\": {\"lon\": 13.413637, "
          "\"lat\": 52.521976}, \"radius\": 2000.0}}}", both, true },
        { "{\"must\": {\"key\": \"loc\", \"geo_radius\": {\"center\": {\"lon\": 20.423637, "
          "\"lat\": 52.511}, \"radius\": 2000.0}}}", both, false },
        /* Berlin - Moscow is about 1609 km */
        { "{\"must\": {\"key\": \"loc\", \"geo_radius\": {\"center\": {\"lon\": 13.413637, "
          "\"lat\": 52.521976}, \"radius\": 1610000}}}", "{\"loc\": {\"lat\": 55.7536283, "
          "\"lon\": 37.62137960067377}}", true },
        { "{\"must\": {\"key\": \"loc\", \"geo_radius\": {\"center\": {\"lon\": 13.413637, "
          "\"lat\": 52.521976}, \"radius\": 1600000}}}", "{\"loc\": {\"lat\": 55.7536283, "
          "\"lon\": 37.62137960067377}}", false },
        /* strictly less than the radius: the center with radius 0 misses */
        { "{\"must\": {\"key\": \"loc\", \"geo_radius\": {\"center\": {\"lon\": 1, \"lat\": 1}, "
          "\"radius\": 0}}}", "{\"loc\": {\"lon\": 1, \"lat\": 1}}", false },
        /* across the antimeridian */
        { "{\"must\": {\"key\": \"loc\", \"geo_radius\": {\"center\": {\"lon\": 179.9, \"lat\": 0}, "
          "\"radius\": 50000}}}", "{\"loc\": {\"lon\": -179.9, \"lat\": 0}}", true },
    };
    (void)state;
    CHECK_ROWS(rows);
}

static void test_filter_geo_polygon_with_hole(void **state)
{
    static const char poly[] =
        "{\"must\": {\"key\": \"loc\", \"geo_polygon\": {"
        "\"exterior\": {\"points\": [{\"lon\": 0, \"lat\": 0}, {\"lon\": 10, \"lat\": 0},"
        "{\"lon\": 10, \"lat\": 10}, {\"lon\": 0, \"lat\": 10}, {\"lon\": 0, \"lat\": 0}]},"
        "\"interiors\": [{\"points\": [{\"lon\": 4, \"lat\": 4}, {\"lon\": 6, \"lat\": 4},"
        "{\"lon\": 6, \"lat\": 6}, {\"lon\": 4, \"lat\": 6}, {\"lon\": 4, \"lat\": 4}]}]}}}";
    static const char concave[] = /* a U shape, clockwise */
        "{\"must\": {\"key\": \"loc\", \"geo_polygon\": {"
        "\"exterior\": {\"points\": [{\"lon\": 0, \"lat\": 0}, {\"lon\": 0, \"lat\": 3},"
        "{\"lon\": 1, \"lat\": 3}, {\"lon\": 1, \"lat\": 1}, {\"lon\": 2, \"lat\": 1},"
        "{\"lon\": 2, \"lat\": 3}, {\"lon\": 3, \"lat\": 3}, {\"lon\": 3, \"lat\": 0},"
        "{\"lon\": 0, \"lat\": 0}]}, \"interiors\": null}}}";
    static const char notch[] = /* a box with a notch whose tip (1.5, 0) points right */
        "{\"must\": {\"key\": \"loc\", \"geo_polygon\": {\"exterior\": {\"points\": ["
        "{\"lon\": -2, \"lat\": 1}, {\"lon\": -2, \"lat\": 2}, {\"lon\": 3, \"lat\": 2},"
        "{\"lon\": 3, \"lat\": -2}, {\"lon\": -2, \"lat\": -2}, {\"lon\": -2, \"lat\": -1},"
        "{\"lon\": 1, \"lat\": -1}, {\"lon\": 1.5, \"lat\": 0}, {\"lon\": 1, \"lat\": 1},"
        "{\"lon\": -2, \"lat\": 1}]}}}}";
    const struct row rows[] = {
        { poly, "{\"loc\": {\"lon\": 2, \"lat\": 2}}", true },
        { poly, "{\"loc\": {\"lon\": 5, \"lat\": 5}}", false },  /* in the hole */
        { poly, "{\"loc\": {\"lon\": 4, \"lat\": 5}}", false },  /* on the hole's edge */
        { poly, "{\"loc\": {\"lon\": 0, \"lat\": 5}}", false },  /* on the exterior */
        { poly, "{\"loc\": {\"lon\": 10, \"lat\": 10}}", false }, /* a vertex */
        { poly, "{\"loc\": {\"lon\": 11, \"lat\": 5}}", false },
        { poly, "{\"loc\": {\"lon\": 9.999, \"lat\": 0.001}}", true },
        { poly, "{\"loc\": [{\"lon\": 5, \"lat\": 5}, {\"lon\": 7, \"lat\": 7}]}", true },
        { concave, "{\"loc\": {\"lon\": 1.5, \"lat\": 2}}", false },
        { concave, "{\"loc\": {\"lon\": 0.5, \"lat\": 2}}", true },
        { concave, "{\"loc\": {\"lon\": 1.5, \"lat\": 0.5}}", true },
        /* a ray through the notch's tip vertex must not count it twice */
        { notch, "{\"loc\": {\"lon\": 0, \"lat\": 0}}", false },
        { notch, "{\"loc\": {\"lon\": 2, \"lat\": 0}}", true },
        { notch, "{\"loc\": {\"lon\": -1, \"lat\": 1.5}}", true },
        { notch, "{\"loc\": {\"lon\": 1.5, \"lat\": 0}}", false },
    };
    (void)state;
    CHECK_ROWS(rows);
}

/* ------------------------------------------------------------------ */
/* ids, vectors, slices, nested                                        */

static void test_filter_has_id_uuid_forms(void **state)
{
    static const char f[] = "{\"must\": {\"has_id\": [1, 7, \"550E8400-E29B-41D4-A716-446655440000\","
                            " \"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}\", 7]}}";
    ptid_t ids[5];
    bool expect[] = { true, true, true, true, false };
    const char *texts[] = { "1", "550e8400e29b41d4a716446655440000",
                            "urn:uuid:550e8400-e29b-41d4-a716-446655440000",
                            "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "2" };
    (void)state;

    for (int i = 0; i < 5; i++) {
        assert_int_equal(ptid_from_str(texts[i], &ids[i], NULL), ERR_OK);
        if (match_full(f, "{}", &ids[i], NULL) != expect[i])
            fail_msg("has_id with %s: expected %d", texts[i], expect[i]);
    }
    assert_false(match_full(f, "{}", NULL, NULL));
    assert_false(match_full("{\"must_not\": {\"has_id\": [1, 2]}}", NULL, &ids[4], NULL));
    assert_true(match_full("{\"must_not\": {\"has_id\": [1, 2]}}", NULL, &ids[3], NULL));
    assert_false(match_full("{\"must\": {\"has_id\": []}}", "{}", &ids[0], NULL));
}

static void test_filter_has_vector(void **state)
{
    ptid_t id = ptid_num(3);
    (void)state;

    assert_true(match_full("{\"must\": {\"has_vector\": \"image\"}}", "{}", &id, "text,image"));
    assert_false(match_full("{\"must\": {\"has_vector\": \"audio\"}}", "{}", &id, "text,image"));
    /* "" is the default (unnamed) vector; the list ",image" holds "" and "image" */
    assert_true(match_full("{\"must\": {\"has_vector\": \"\"}}", "{}", &id, ",image"));
    assert_false(match_full("{\"must\": {\"has_vector\": \"\"}}", "{}", &id, "image"));
    /* no callback: false */
    assert_false(match_full("{\"must\": {\"has_vector\": \"image\"}}", "{}", &id, NULL));
    assert_true(match_full("{\"must_not\": {\"has_vector\": \"image\"}}", "{}", &id, NULL));
}

static void test_filter_slice(void **state)
{
    ptid_t uuid, id;
    char buf[128];
    int hits[5] = { 0 };
    (void)state;

    /* Qdrant's frozen contract vectors (types.rs) */
    id = ptid_num(0);
    assert_true(filter_slice_hash(&id) == 0xe849e8bb6ffe2567ULL);
    id = ptid_num(42);
    assert_true(filter_slice_hash(&id) == 0x0fc2553f07619dd3ULL);
    assert_int_equal(ptid_from_str("550e8400-e29b-41d4-a716-446655440000", &uuid, NULL), ERR_OK);
    assert_true(filter_slice_hash(&uuid) == 0xf5d0ca21ba34d504ULL);
    /* every id is in exactly one slice of a given total */
    for (uint64_t n = 0; n < 200; n++) {
        int count = 0;
        id = ptid_num(n * 7919);
        for (int i = 0; i < 5; i++) {
            snprintf(buf, sizeof(buf), "{\"must\": {\"slice\": {\"total\": 5, \"index\": %d}}}", i);
            if (match_full(buf, NULL, &id, NULL)) {
                count++;
                hits[i]++;
            }
        }
        assert_int_equal(count, 1);
    }
    for (int i = 0; i < 5; i++)
        assert_true(hits[i] > 0);
    assert_true(match_full("{\"must\": {\"slice\": {\"total\": 1, \"index\": 0}}}", NULL, &uuid, NULL));
    assert_false(match_full("{\"must\": {\"slice\": {\"total\": 1, \"index\": 0}}}", NULL, NULL, NULL));
}

static void test_filter_nested_whole_filter_per_element(void **state)
{
    static const char trex[] = "{\"dino\": \"t-rex\", \"diet\": [{\"food\": \"leaves\", "
                               "\"likes\": false}, {\"food\": \"meat\", \"likes\": true}]}";
    static const char diplo[] = "{\"dino\": \"diplodocus\", \"diet\": [{\"food\": \"leaves\", "
                                "\"likes\": true}, {\"food\": \"meat\", \"likes\": false}]}";
    static const char flat[] = "{\"must\": [{\"key\": \"diet[].food\", \"match\": {\"value\": "
                               "\"meat\"}}, {\"key\": \"diet[].likes\", \"match\": {\"value\": true}}]}";
    static const char nested[] =
        "{\"must\": [{\"nested\": {\"key\": \"diet\", \"filter\": {\"must\": ["
        "{\"key\": \"food\", \"match\": {\"value\": \"meat\"}},"
        "{\"key\": \"likes\", \"match\": {\"value\": true}}]}}}]}";
    static const char nested_br[] =
        "{\"must\": {\"nested\": {\"key\": \"diet[]\", \"filter\": {\"must\": "
        "{\"key\": \"food\", \"match\": {\"value\": \"meat\"}}, \"must_not\": "
        "{\"key\": \"likes\", \"match\": {\"value\": true}}}}}}";
    const struct row rows[] = {
        { flat, trex, true },    { flat, diplo, true },
        { nested, trex, true },  { nested, diplo, false },
        { nested_br, trex, false }, { nested_br, diplo, true },
        /* non-objects in the array are skipped; a missing array never matches */
        { nested, "{\"diet\": [1, \"meat\", null, {\"food\": \"meat\", \"likes\": true}]}", true },
        { nested, "{\"diet\": {\"food\": \"meat\", \"likes\": true}}", false },
        { nested, "{}", false },
        { "{\"must_not\": {\"nested\": {\"key\": \"diet\", \"filter\": {}}}}", "{\"diet\": []}", true },
        { "{\"must\": {\"nested\": {\"key\": \"diet\", \"filter\": {}}}}", "{\"diet\": [{}]}", true },
        /* nested inside nested */
        { "{\"must\": {\"nested\": {\"key\": \"a\", \"filter\": {\"must\": {\"nested\": {"
          "\"key\": \"b\", \"filter\": {\"must\": [{\"key\": \"x\", \"match\": {\"value\": 1}},"
          "{\"key\": \"y\", \"match\": {\"value\": 2}}]}}}}}}}",
          "{\"a\": [{\"b\": [{\"x\": 1, \"y\": 1}]}, {\"b\": [{\"x\": 1, \"y\": 2}]}]}", true },
        { "{\"must\": {\"nested\": {\"key\": \"a\", \"filter\": {\"must\": {\"nested\": {"
          "\"key\": \"b\", \"filter\": {\"must\": [{\"key\": \"x\", \"match\": {\"value\": 1}},"
          "{\"key\": \"y\", \"match\": {\"value\": 2}}]}}}}}}}",
          "{\"a\": [{\"b\": [{\"x\": 1, \"y\": 1}, {\"x\": 2, \"y\": 2}]}]}", false },
        /* has_id / has_vector / slice are false inside nested (Qdrant) */
        { "{\"must\": {\"nested\": {\"key\": \"diet\", \"filter\": {\"must\": {\"has_id\": [1]}}}}}",
          trex, false },
        { "{\"must\": {\"nested\": {\"key\": \"diet\", \"filter\": {\"must_not\": "
          "{\"has_id\": [1]}}}}}", trex, true },
        { "{\"must\": {\"nested\": {\"key\": \"diet\", \"filter\": {\"must\": {\"slice\": "
          "{\"total\": 1, \"index\": 0}}}}}}", trex, false },
    };
    ptid_t id = ptid_num(1);
    (void)state;

    CHECK_ROWS(rows);
    assert_false(match_full("{\"must\": {\"nested\": {\"key\": \"diet\", \"filter\": {\"must\": "
                            "{\"has_vector\": \"v\"}}}}}", trex, &id, "v"));
    assert_true(match_full("{\"must\": {\"has_vector\": \"v\"}}", trex, &id, "v"));
}

/* Qdrant's own test_condition_checker (query_checker.rs), ported. */
static void test_filter_qdrant_condition_checker_port(void **state)
{
    static const char p[] =
        "{\"location\": {\"lon\": 13.404954, \"lat\": 52.520008}, \"price\": 499.90,"
        " \"amount\": 10, \"rating\": [3, 7, 9, 9], \"color\": \"red\", \"has_delivery\": true,"
        " \"shipped_at\": \"2020-02-15T00:00:00Z\", \"parts\": [], \"packaging\": null,"
        " \"not_null\": [null]}";
#define RED "{\"key\": \"color\", \"match\": {\"value\": \"red\"}}"
#define BLUE "{\"key\": \"color\", \"match\": {\"value\": \"blue\"}}"
#define DELIVERY "{\"key\": \"has_delivery\", \"match\": {\"value\": true}}"
#define IN_BERLIN "{\"key\": \"location\", \"geo_bounding_box\": {\"top_left\": {\"lon\": 13.08835," \
    " \"lat\": 52.67551}, \"bottom_right\": {\"lon\": 13.76116, \"lat\": 52.33826}}}"
#define IN_MOSCOW "{\"key\": \"location\", \"geo_bounding_box\": {\"top_left\": {\"lon\": 37.0366," \
    " \"lat\": 56.1859}, \"bottom_right\": {\"lon\": 38.2532, \"lat\": 55.317}}}"
    const struct row rows[] = {
        { "{\"must\": {\"is_empty\": {\"key\": \"price\"}}}", p, false },
        { "{\"must\": {\"is_empty\": {\"key\": \"something_new\"}}}", p, true },
        { "{\"must\": {\"is_empty\": {\"key\": \"parts\"}}}", p, true },
        { "{\"must\": {\"is_empty\": {\"key\": \"not_null\"}}}", p, false },
        { "{\"must\": {\"is_null\": {\"key\": \"amount\"}}}", p, false },
        { "{\"must\": {\"is_null\": {\"key\": \"parts\"}}}", p, false },
        { "{\"must\": {\"is_null\": {\"key\": \"something_else\"}}}", p, false },
        { "{\"must\": {\"is_null\": {\"key\": \"packaging\"}}}", p, true },
        { "{\"must\": {\"is_null\": {\"key\": \"not_null\"}}}", p, false },
        { "{\"must\": " RED "}", p, true },
        { "{\"must\": " BLUE "}", p, false },
        { "{\"must_not\": " BLUE "}", p, true },
        { "{\"must_not\": " RED "}", p, false },
        { "{\"should\": [" RED ", " BLUE "], \"must\": [" DELIVERY ", " IN_BERLIN "]}", p, true },
        { "{\"should\": [" RED ", " BLUE "], \"must\": [" DELIVERY ", " IN_MOSCOW "]}", p, false },
        { "{\"should\": [{\"must\": [" RED ", " IN_MOSCOW "]}, {\"must\": [" BLUE ", " IN_BERLIN
          "]}]}", p, false },
        { "{\"should\": [{\"must\": [" BLUE ", " IN_MOSCOW "]}, {\"must\": [" RED ", " IN_BERLIN
          "]}]}", p, true },
        { "{\"must_not\": {\"key\": \"rating\", \"range\": {\"lte\": 5}}}", p, false },
        { "{\"min_should\": {\"conditions\": [" BLUE ", " IN_MOSCOW "], \"min_count\": 1}}", p, false },
        { "{\"min_should\": {\"conditions\": [" RED ", " IN_BERLIN ", " IN_MOSCOW
          "], \"min_count\": 2}}", p, true },
        { "{\"must\": {\"key\": \"rating\", \"values_count\": {\"gte\": 10}}}", p, false },
        { "{\"must\": {\"key\": \"rating\", \"values_count\": {\"lt\": 5}}}", p, true },
        { "{\"must\": {\"key\": \"shipped_at\", \"range\": {\"gte\": \"2020-02-01T00:00:00Z\","
          " \"lt\": \"2020-03-01T00:00:00Z\"}}}", p, true },
        { "{\"must\": {\"key\": \"shipped_at\", \"range\": {\"gte\": \"2020-03-01T00:00:00Z\","
          " \"lt\": \"2020-04-01T00:00:00Z\"}}}", p, false },
    };
#undef RED
#undef BLUE
#undef DELIVERY
#undef IN_BERLIN
#undef IN_MOSCOW
    (void)state;
    CHECK_ROWS(rows);
}

/* ------------------------------------------------------------------ */
/* errors                                                              */

struct err_case {
    const char *filter;
    int code;
    const char *msg; /* expected substring */
};

static void expect_error(const struct err_case *e)
{
    cJSON *j = cJSON_Parse(e->filter);
    filter_t *f = (filter_t *)(uintptr_t)1;
    err_t err = { 0 };
    int rc;

    if (j == NULL)
        fail_msg("test bug: bad JSON %s", e->filter);
    rc = filter_parse(j, &f, &err);
    cJSON_Delete(j);
    if (rc != e->code)
        fail_msg("%s: code %d (%s), expected %d", e->filter, rc, err.msg, e->code);
    if (f != NULL)
        fail_msg("%s: *out not NULL on error", e->filter);
    if (err.code != e->code || strstr(err.msg, e->msg) == NULL)
        fail_msg("%s:\n  message \"%s\"\n  lacks   \"%s\"", e->filter, err.msg, e->msg);
}

/* Malformed filters: code and a substring naming the field. */
static const struct err_case error_cases[] = {
    { "[1]", ERR_INVALID, "filter: must be an object" },
    { "{\"foo\": 1}", ERR_INVALID, "filter: unknown field \"foo\"" },
    { "{\"must\": 5}", ERR_INVALID, "filter: \"must\" must be a condition or an array" },
    { "{\"must\": [1]}", ERR_INVALID, "filter.must[0]: a condition must be an object" },
    { "{\"must\": [{}, {}, {\"key\": \"a\", \"range\": {\"gt\": true}}]}", ERR_INVALID,
      "filter.must[2].range: \"gt\" must be a number" },
    { "{\"must\": [{\"key\": 1, \"match\": {\"value\": 1}}]}", ERR_INVALID,
      "filter.must[0]: \"key\" must be a string" },
    { "{\"must\": [{\"key\": \"a..b\", \"match\": {\"value\": 1}}]}", ERR_INVALID,
      "filter.must[0]: \"key\" is not a valid key path: \"a..b\"" },
    { "{\"must\": [{\"key\": \"a\"}]}", ERR_INVALID,
      "filter.must[0]: at least one field condition must be specified" },
    { "{\"must\": [{\"key\": \"a\", \"match\": null, \"range\": null}]}", ERR_INVALID,
      "at least one field condition" },
    { "{\"must\": [{\"key\": \"a\", \"mach\": {\"value\": 1}}]}", ERR_INVALID,
      "filter.must[0]: unknown field \"mach\"" },
    { "{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1.5}}]}", ERR_INVALID,
      "filter.must[0].match: \"value\" must be a string, an integer or a bool" },
    { "{\"must\": [{\"key\": \"a\", \"match\": {\"value\": null}}]}", ERR_INVALID,
      "filter.must[0].match: \"value\" must be" },
    { "{\"must\": [{\"key\": \"a\", \"match\": {\"value\": 1, \"any\": [1]}}]}", ERR_INVALID,
      "filter.must[0].match: must be an object with exactly one of" },
    { "{\"must\": [{\"key\": \"a\", \"match\": {\"valu\": 1}}]}", ERR_INVALID,
      "filter.must[0].match: unknown field \"valu\"" },
    { "{\"must\": [{\"key\": \"a\", \"match\": 3}]}", ERR_INVALID,
      "filter.must[0]: \"match\" must be an object" },
    { "{\"must\": [{\"key\": \"a\", \"match\": {\"any\": [1, \"x\"]}}]}", ERR_INVALID,
      "filter.must[0].match: \"any\" must be an array of strings or of integers" },
    { "{\"must\": [{\"key\": \"a\", \"match\": {\"except\": [1.5]}}]}", ERR_INVALID,
      "\"except\" must be an array of strings or of integers" },
    { "{\"must\": [{\"key\": \"a\", \"match\": {\"any\": \"x\"}}]}", ERR_INVALID,
      "\"any\" must be an array" },
    { "{\"should\": {\"key\": \"a\", \"match\": {\"text\": 5}}}", ERR_INVALID,
      "filter.should.match: \"text\" must be a string" },
    { "{\"must\": {\"key\": \"a\", \"range\": {\"gt\": 1, \"lt\": \"2020-01-01\"}}}", ERR_INVALID,
      "filter.must.range: \"gt\" must be a datetime string" },
    { "{\"must\": {\"key\": \"a\", \"range\": {\"gt\": \"yesterday\"}}}", ERR_INVALID,
      "filter.must.range: \"gt\": 'yesterday' does not match accepted datetime format" },
    { "{\"must\": {\"key\": \"a\", \"range\": {\"gte\": 1, \"eq\": 2}}}", ERR_INVALID,
      "filter.must.range: unknown field \"eq\"" },
    { "{\"must\": {\"key\": \"a\", \"range\": {\"lt\": 1e999}}}", ERR_INVALID,
      "\"lt\" must be a number" },
    { "{\"must\": {\"key\": \"a\", \"values_count\": {\"lt\": -1}}}", ERR_INVALID,
      "filter.must.values_count: \"lt\" must be a non-negative integer" },
    { "{\"must\": {\"key\": \"a\", \"values_count\": {\"lt\": 1.5}}}", ERR_INVALID,
      "\"lt\" must be a non-negative integer" },
    { "{\"must\": {\"key\": \"a\", \"is_empty\": \"yes\"}}", ERR_INVALID,
      "filter.must: \"is_empty\" must be a bool" },
    { "{\"must\": {\"key\": \"a\", \"geo_radius\": {\"center\": {\"lon\": 1, \"lat\": 91}, "
      "\"radius\": 5}}}", ERR_INVALID,
      "filter.must.geo_radius.center: expected \"lat\" = 91 within [-90;90]" },
    { "{\"must\": {\"key\": \"a\", \"geo_radius\": {\"center\": {\"lon\": 1, \"lat\": 1}}}}",
      ERR_INVALID, "filter.must.geo_radius: \"radius\" must be a number" },
    { "{\"must\": {\"key\": \"a\", \"geo_radius\": {\"center\": {\"lon\": 1}, \"radius\": 1}}}",
      ERR_INVALID, "filter.must.geo_radius.center: \"lat\" must be a number" },
    { "{\"must\": {\"key\": \"a\", \"geo_radius\": {\"center\": {\"lon\": 1, \"lat\": 1, "
      "\"alt\": 3}, \"radius\": 1}}}", ERR_INVALID,
      "filter.must.geo_radius.center: unknown field \"alt\"" },
    { "{\"must\": {\"key\": \"a\", \"geo_bounding_box\": {\"top_left\": {\"lon\": 1, \"lat\": 1}}}}",
      ERR_INVALID, "filter.must.geo_bounding_box: \"bottom_right\" must be an object" },
    { "{\"must\": {\"key\": \"a\", \"geo_polygon\": {\"exterior\": {\"points\": ["
      "{\"lon\": 0, \"lat\": 0}, {\"lon\": 1, \"lat\": 0}, {\"lon\": 0, \"lat\": 0}]}}}}",
      ERR_INVALID,
      "filter.must.geo_polygon.exterior: polygon invalid, the size must be at least 4, got 3" },
    { "{\"must\": {\"key\": \"a\", \"geo_polygon\": {\"exterior\": {\"points\": ["
      "{\"lon\": 0, \"lat\": 0}, {\"lon\": 1, \"lat\": 0}, {\"lon\": 1, \"lat\": 1}, "
      "{\"lon\": 0, \"lat\": 1}]}}}}", ERR_INVALID,
      "filter.must.geo_polygon.exterior: polygon invalid, the first and the last points" },
    { "{\"must\": {\"key\": \"a\", \"geo_polygon\": {\"exterior\": {\"points\": ["
      "{\"lon\": 0, \"lat\": 0}, {\"lon\": 1, \"lat\": 0}, {\"lon\": 1, \"lat\": 1}, "
      "{\"lon\": 0, \"lat\": 0}]}, \"interiors\": [{\"points\": [{\"lon\": 0, \"lat\": 0}, "
      "{\"lon\": 200, \"lat\": 0}]}]}}}", ERR_INVALID,
      "filter.must.geo_polygon.interiors[0]: polygon invalid, the size must be at least 4" },
    { "{\"must\": {\"key\": \"a\", \"geo_polygon\": {\"exterior\": {\"points\": ["
      "{\"lon\": 0, \"lat\": 0}, {\"lon\": 1, \"lat\": 0}, {\"lon\": 1, \"lat\": 1}, "
      "{\"lon\": 0, \"lat\": 0}]}, \"interiors\": [{\"points\": [{\"lon\": 0, \"lat\": 0}, "
      "{\"lon\": 200, \"lat\": 0}, {\"lon\": 0, \"lat\": 1}, {\"lon\": 0, \"lat\": 0}]}]}}}",
      ERR_INVALID, "filter.must.geo_polygon.interiors[0].points[1]: expected" },
    { "{\"must\": {\"key\": \"a\", \"geo_polygon\": {}}}", ERR_INVALID,
      "filter.must.geo_polygon.exterior: must be an object with \"points\"" },
    { "{\"must\": {\"has_id\": 5}}", ERR_INVALID, "filter.must: \"has_id\" must be an array" },
    { "{\"must\": {\"has_id\": [1, \"nope\"]}}", ERR_INVALID,
      "filter.must.has_id[1]: point id \"nope\" is not a valid UUID" },
    { "{\"must\": {\"has_id\": [-1]}}", ERR_INVALID, "filter.must.has_id[0]: point id -1" },
    { "{\"must\": {\"has_vector\": 5}}", ERR_INVALID, "filter.must: \"has_vector\" must be a string" },
    { "{\"must\": {\"slice\": {\"total\": 0, \"index\": 0}}}", ERR_INVALID,
      "filter.must.slice: \"total\" must be at least 1" },
    { "{\"must\": {\"slice\": {\"total\": 4, \"index\": 4}}}", ERR_INVALID,
      "filter.must.slice: slice index must be less than the total" },
    { "{\"must\": {\"slice\": {\"total\": 4}}}", ERR_INVALID,
      "filter.must.slice: \"index\" must be a non-negative integer" },
    { "{\"must\": {\"slice\": {\"total\": 4294967296, \"index\": 0}}}", ERR_INVALID,
      "filter.must.slice: \"total\" must be at most 4294967295" },
    { "{\"must\": {\"is_empty\": \"a\"}}", ERR_INVALID,
      "filter.must: \"is_empty\" must be an object like {\"key\": \"field\"}" },
    { "{\"must\": {\"is_null\": {\"key\": \"a\", \"x\": 1}}}", ERR_INVALID,
      "filter.must.is_null: unknown field \"x\"" },
    { "{\"must\": {\"is_null\": {}}}", ERR_INVALID, "filter.must.is_null: \"key\" must be a string" },
    { "{\"must\": {\"has_id\": [1], \"is_null\": {\"key\": \"a\"}}}", ERR_INVALID,
      "filter.must: unexpected field \"is_null\" next to \"has_id\"" },
    { "{\"must\": {\"nested\": {\"key\": \"d\"}}}", ERR_INVALID,
      "filter.must.nested: \"filter\" must be an object" },
    { "{\"must\": {\"nested\": {\"key\": \"d\", \"filter\": {\"must\": [{\"key\": \"x\", "
      "\"match\": {\"value\": []}}]}}}}", ERR_INVALID,
      "filter.must.nested.filter.must[0].match: \"value\" must be" },
    { "{\"must\": {\"nested\": {\"key\": \"d[\", \"filter\": {}}}}", ERR_INVALID,
      "filter.must.nested: \"key\" is not a valid key path" },
    { "{\"min_should\": {\"conditions\": [], \"min_count\": 0}}", ERR_INVALID,
      "filter.min_should: \"min_count\" must be greater than 0" },
    { "{\"min_should\": {\"conditions\": {}, \"min_count\": 1}}", ERR_INVALID,
      "filter.min_should: \"conditions\" must be an array of conditions" },
    { "{\"min_should\": {\"conditions\": [{\"key\": \"a\"}], \"min_count\": 1}}", ERR_INVALID,
      "filter.min_should.conditions[0]: at least one field condition" },
    { "{\"min_should\": [1]}", ERR_INVALID,
      "filter.min_should: must be an object with \"conditions\" and \"min_count\"" },
    { "{\"should\": [{\"must\": [{\"must_not\": {\"foo\": 1}}]}]}", ERR_INVALID,
      "filter.should[0].must[0].must_not: unknown field \"foo\"" },
};

static void test_filter_errors_name_the_field(void **state)
{
    (void)state;

    for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++)
        expect_error(&error_cases[i]);
}

static void test_filter_errors_depth_and_names(void **state)
{
    char *deep = malloc(200 * 12 + 16);
    size_t len = 0;
    cJSON *j;
    filter_t *f = NULL;
    err_t err = { 0 };
    (void)state;

    /* {"must": {"must": ... {}}} nested 200 deep: too deep, rejected */
    for (int i = 0; i < 200; i++)
        len += (size_t)sprintf(deep + len, "{\"must\": ");
    len += (size_t)sprintf(deep + len, "{}");
    for (int i = 0; i < 200; i++)
        deep[len++] = '}';
    deep[len] = '\0';
    j = cJSON_Parse(deep);
    assert_non_null(j);
    assert_int_equal(filter_parse(j, &f, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "nested deeper than"));
    assert_null(f);
    cJSON_Delete(j);
    free(deep);

    j = cJSON_Parse("{\"must\": {\"key\": \"a\", \"range\": {\"gt\": \"x\"}}}");
    assert_int_equal(filter_parse_named(j, "prefetch[1].filter", &f, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "prefetch[1].filter.must.range: \"gt\""));
    /* a NULL err is allowed */
    assert_int_equal(filter_parse(j, &f, NULL), ERR_INVALID);
    cJSON_Delete(j);
}

/* ------------------------------------------------------------------ */
/* the naive evaluator                                                 */
/*                                                                     */
/* Written from the semantics, not from filter.c: it re-reads the      */
/* filter JSON every time, resolves paths by scanning the path string, */
/* uses linear searches, sscanf + timegm for datetimes and even-odd    */
/* ray casting for polygons (the generator only makes simple ones).    */

#define NV_MAX 512

struct nv_vals {
    const cJSON *v[NV_MAX];
    size_t n;
};

/* Resolve path p (rest of a key path) from value v into out. */
static void nv_get(const cJSON *v, const char *p, struct nv_vals *out)
{
    char key[128];
    size_t k = 0;

    if (*p == '\0') {
        if (out->n < NV_MAX)
            out->v[out->n++] = v;
        return;
    }
    if (*p == '.')
        p++;
    if (p[0] == '[' && p[1] == ']') {
        const cJSON *c;
        if (cJSON_IsArray(v))
            cJSON_ArrayForEach(c, v) nv_get(c, p + 2, out);
        return;
    }
    if (*p == '[') {
        int idx = atoi(p + 1);
        const cJSON *c = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, idx) : NULL;
        if (c != NULL)
            nv_get(c, strchr(p, ']') + 1, out);
        return;
    }
    while (*p != '\0' && *p != '.' && *p != '[' && k < sizeof(key) - 1)
        key[k++] = *p++;
    key[k] = '\0';
    if (cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, key) != NULL)
        nv_get(cJSON_GetObjectItemCaseSensitive(v, key), p, out);
}

static bool nv_is_int(const cJSON *v, long long *out)
{
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
        fabs(v->valuedouble) > 9e18)
        return false;
    *out = (long long)v->valuedouble;
    return true;
}

/* Only the forms the generator writes: date, date + time with 'T' or ' ',
 * optional fraction, optional Z or +HH:MM. */
static bool nv_datetime(const char *s, double *secs, long *nanos)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, oh = 0, om = 0;
    char sep;
    long ns = 0;
    long off = 0;

    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        return false;
    s += n;
    if (*s != '\0') {
        if (sscanf(s, "%c%2d:%2d:%2d%n", &sep, &h, &mi, &sec, &n) != 4 || (sep != 'T' && sep != ' '))
            return false;
        s += n;
        if (*s == '.') {
            int digits = 0;
            for (s++; *s >= '0' && *s <= '9'; s++, digits++)
                ns = ns * 10 + (*s - '0');
            for (; digits < 9; digits++)
                ns *= 10;
        }
        if (*s == 'Z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            if (sscanf(s + 1, "%2d:%2d", &oh, &om) != 2)
                return false;
            off = (oh * 3600L + om * 60L) * (*s == '-' ? -1 : 1);
            s += 6;
        }
        if (*s != '\0')
            return false;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *secs = (double)(timegm(&tm) - off);
    *nanos = ns;
    return true;
}

/* -1, 0, 1 comparing two datetime strings (both valid). */
static int nv_dt_cmp(const char *a, const char *b)
{
    double sa, sb;
    long na, nb;

    nv_datetime(a, &sa, &na);
    nv_datetime(b, &sb, &nb);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    return na < nb ? -1 : (na > nb ? 1 : 0);
}

static bool nv_in_list(const cJSON *list, const cJSON *v)
{
    const cJSON *e;
    long long a, b;

    cJSON_ArrayForEach(e, list) {
        if (cJSON_IsString(e) && cJSON_IsString(v) && strcmp(e->valuestring, v->valuestring) == 0)
            return true;
        if (nv_is_int(e, &a) && nv_is_int(v, &b) && a == b)
            return true;
    }
    return false;
}

static bool nv_except(const cJSON *list, const cJSON *v)
{
    bool int_list = cJSON_GetArraySize(list) > 0 && cJSON_IsNumber(list->child);
    long long x;

    if (cJSON_IsNull(v))
        return false;
    if (cJSON_IsString(v))
        return int_list || !nv_in_list(list, v);
    if (cJSON_IsNumber(v))
        return !int_list || !nv_is_int(v, &x) || !nv_in_list(list, v);
    return true;
}

static bool nv_text_any(const char *query, const char *s)
{
    char buf[256];
    char *save = NULL, *tok;

    snprintf(buf, sizeof(buf), "%s", query);
    for (tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save))
        if (strstr(s, tok) != NULL)
            return true;
    return false;
}

static bool nv_match(const cJSON *m, const cJSON *v)
{
    const cJSON *x;
    long long a, b;
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;

    if ((x = cJSON_GetObjectItemCaseSensitive(m, "value")) != NULL) {
        if (cJSON_IsString(x))
            return s != NULL && strcmp(s, x->valuestring) == 0;
        if (cJSON_IsBool(x))
            return cJSON_IsBool(v) && cJSON_IsTrue(v) == cJSON_IsTrue(x);
        return nv_is_int(x, &a) && nv_is_int(v, &b) && a == b;
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(m, "any")) != NULL)
        return nv_in_list(x, v);
    if ((x = cJSON_GetObjectItemCaseSensitive(m, "except")) != NULL)
        return nv_except(x, v);
    if ((x = cJSON_GetObjectItemCaseSensitive(m, "text_any")) != NULL)
        return s != NULL && nv_text_any(x->valuestring, s);
    if ((x = cJSON_GetObjectItemCaseSensitive(m, "prefix")) != NULL)
        return s != NULL && strncmp(s, x->valuestring, strlen(x->valuestring)) == 0;
    x = cJSON_GetObjectItemCaseSensitive(m, "text");
    if (x == NULL)
        x = cJSON_GetObjectItemCaseSensitive(m, "phrase");
    return s != NULL && strstr(s, x->valuestring) != NULL;
}

static bool nv_range(const cJSON *r, const cJSON *v)
{
    static const char *const names[] = { "lt", "gt", "lte", "gte" };
    bool dt = false;

    for (int i = 0; i < 4; i++)
        dt = dt || cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r, names[i]));
    if (dt) {
        double s;
        long n;
        if (!cJSON_IsString(v) || !nv_datetime(v->valuestring, &s, &n))
            return false;
    } else if (!cJSON_IsNumber(v)) {
        return false;
    }
    for (int i = 0; i < 4; i++) {
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(r, names[i]);
        int c;
        if (b == NULL || cJSON_IsNull(b))
            continue;
        c = dt ? nv_dt_cmp(v->valuestring, b->valuestring)
               : (v->valuedouble < b->valuedouble ? -1 : v->valuedouble > b->valuedouble);
        if ((i == 0 && !(c < 0)) || (i == 1 && !(c > 0)) || (i == 2 && !(c <= 0)) ||
            (i == 3 && !(c >= 0)))
            return false;
    }
    return true;
}

static double nv_num(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k)->valuedouble;
}

/* even-odd ray casting; the generator's rings are simple polygons */
static bool nv_in_ring(const cJSON *ring, double x, double y)
{
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(ring, "points");
    int n = cJSON_GetArraySize(pts);
    bool in = false;

    for (int i = 0, j = n - 1; i < n; j = i++) {
        const cJSON *a = cJSON_GetArrayItem(pts, i), *b = cJSON_GetArrayItem(pts, j);
        double xi = nv_num(a, "lon"), yi = nv_num(a, "lat");
        double xj = nv_num(b, "lon"), yj = nv_num(b, "lat");
        if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi)
            in = !in;
    }
    return in;
}

static bool nv_geo(const cJSON *fc, const cJSON *v)
{
    const cJSON *lon = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "lon") : NULL;
    const cJSON *lat = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "lat") : NULL;
    const cJSON *g;
    double x, y;

    if (!cJSON_IsNumber(lon) || !cJSON_IsNumber(lat))
        return false;
    x = lon->valuedouble;
    y = lat->valuedouble;
    if ((g = cJSON_GetObjectItemCaseSensitive(fc, "geo_radius")) != NULL) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(g, "center");
        double r = M_PI / 180, lat1 = nv_num(c, "lat"), lon1 = nv_num(c, "lon");
        double h = pow(sin((y - lat1) * r / 2), 2) +
                   cos(lat1 * r) * cos(y * r) * pow(sin((x - lon1) * r / 2), 2);
        if (6371008.8 * 2 * asin(sqrt(fmin(h, 1))) < nv_num(g, "radius"))
            return true;
    }
    if ((g = cJSON_GetObjectItemCaseSensitive(fc, "geo_bounding_box")) != NULL) {
        const cJSON *tl = cJSON_GetObjectItemCaseSensitive(g, "top_left");
        const cJSON *br = cJSON_GetObjectItemCaseSensitive(g, "bottom_right");
        double l = nv_num(tl, "lon"), rr = nv_num(br, "lon");
        bool lon_ok = l > rr ? (x > l || x < rr) : (x > l && x < rr);
        if (lon_ok && y > nv_num(br, "lat") && y < nv_num(tl, "lat"))
            return true;
    }
    if ((g = cJSON_GetObjectItemCaseSensitive(fc, "geo_polygon")) != NULL) {
        const cJSON *holes = cJSON_GetObjectItemCaseSensitive(g, "interiors"), *h;
        bool in = nv_in_ring(cJSON_GetObjectItemCaseSensitive(g, "exterior"), x, y);
        cJSON_ArrayForEach(h, holes) in = in && !nv_in_ring(h, x, y);
        if (in)
            return true;
    }
    return false;
}

/* One value of a field condition: Qdrant's FieldCondition::check. */
static bool nv_field_value(const cJSON *fc, const cJSON *v)
{
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(fc, "values_count");
    const cJSON *ie = cJSON_GetObjectItemCaseSensitive(fc, "is_empty");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(fc, "is_null");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(fc, "match");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(fc, "range");
    const cJSON *e;

    if (vc != NULL) {
        double n = cJSON_IsNull(v) ? 0 : cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
        const cJSON *b;
        return (!(b = cJSON_GetObjectItem(vc, "lt")) || n < b->valuedouble) &&
               (!(b = cJSON_GetObjectItem(vc, "gt")) || n > b->valuedouble) &&
               (!(b = cJSON_GetObjectItem(vc, "lte")) || n <= b->valuedouble) &&
               (!(b = cJSON_GetObjectItem(vc, "gte")) || n >= b->valuedouble);
    }
    if (ie != NULL)
        return cJSON_IsNull(v) ? cJSON_IsTrue(ie)
               : cJSON_IsArray(v) ? (cJSON_GetArraySize(v) == 0) == cJSON_IsTrue(ie)
                                  : !cJSON_IsTrue(ie);
    if (in != NULL) {
        bool has_null = false;
        if (cJSON_IsArray(v))
            cJSON_ArrayForEach(e, v) has_null = has_null || cJSON_IsNull(e);
        return cJSON_IsNull(v) ? cJSON_IsTrue(in)
               : cJSON_IsArray(v) ? has_null == (bool)cJSON_IsTrue(in) : !cJSON_IsTrue(in);
    }
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(e, v) {
            if ((m && nv_match(m, e)) || (r && nv_range(r, e)) || nv_geo(fc, e))
                return true;
        }
        return false;
    }
    return (m && nv_match(m, v)) || (r && nv_range(r, v)) || nv_geo(fc, v);
}

static bool nv_field(const cJSON *fc, const cJSON *payload)
{
    struct nv_vals vals = { .n = 0 };
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(fc, "values_count");
    const cJSON *ie = cJSON_GetObjectItemCaseSensitive(fc, "is_empty");
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(fc, "is_null");

    if (payload != NULL)
        nv_get(payload, cJSON_GetObjectItemCaseSensitive(fc, "key")->valuestring, &vals);
    if (vals.n == 0) {
        if (vc != NULL) {
            const cJSON *b;
            return (!(b = cJSON_GetObjectItem(vc, "lt")) || 0 < b->valuedouble) &&
                   (!(b = cJSON_GetObjectItem(vc, "gt")) || 0 > b->valuedouble) &&
                   (!(b = cJSON_GetObjectItem(vc, "lte")) || 0 <= b->valuedouble) &&
                   (!(b = cJSON_GetObjectItem(vc, "gte")) || 0 >= b->valuedouble);
        }
        if (ie != NULL)
            return cJSON_IsTrue(ie);
        return in != NULL && !cJSON_IsTrue(in);
    }
    for (size_t i = 0; i < vals.n; i++)
        if (nv_field_value(fc, vals.v[i]))
            return true;
    return false;
}

struct nv_point {
    const ptid_t *id;
    bool (*has_vector)(void *ctx, const char *name);
    void *ctx;
};

static bool nv_filter(const cJSON *f, const cJSON *payload, const struct nv_point *p,
                      bool nested);

static bool nv_cond(const cJSON *c, const cJSON *payload, const struct nv_point *p, bool nested)
{
    const cJSON *x;
    struct nv_vals vals = { .n = 0 };

    if (cJSON_GetObjectItemCaseSensitive(c, "key") != NULL)
        return nv_field(c, payload);
    if ((x = cJSON_GetObjectItemCaseSensitive(c, "is_empty")) != NULL ||
        (x = cJSON_GetObjectItemCaseSensitive(c, "is_null")) != NULL) {
        bool is_empty = cJSON_GetObjectItemCaseSensitive(c, "is_empty") != NULL;
        bool all_empty = true, any_null = false;
        if (payload != NULL)
            nv_get(payload, cJSON_GetObjectItemCaseSensitive(x, "key")->valuestring, &vals);
        for (size_t i = 0; i < vals.n; i++) {
            any_null = any_null || cJSON_IsNull(vals.v[i]);
            all_empty = all_empty && (cJSON_IsNull(vals.v[i]) ||
                                      (cJSON_IsArray(vals.v[i]) && !cJSON_GetArraySize(vals.v[i])));
        }
        return is_empty ? all_empty : any_null;
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(c, "has_id")) != NULL) {
        const cJSON *e;
        ptid_t id;
        if (nested || p->id == NULL)
            return false;
        cJSON_ArrayForEach(e, x) if (ptid_from_json(e, &id, NULL) == ERR_OK && ptid_eq(&id, p->id))
            return true;
        return false;
    }
    if ((x = cJSON_GetObjectItemCaseSensitive(c, "has_vector")) != NULL)
        return !nested && p->has_vector != NULL && p->has_vector(p->ctx, x->valuestring);
    if ((x = cJSON_GetObjectItemCaseSensitive(c, "slice")) != NULL)
        return !nested && p->id != NULL &&
               filter_slice_hash(p->id) % (uint64_t)nv_num(x, "total") == (uint64_t)nv_num(x, "index");
    if ((x = cJSON_GetObjectItemCaseSensitive(c, "nested")) != NULL) {
        char key[256];
        const char *k = cJSON_GetObjectItemCaseSensitive(x, "key")->valuestring;
        size_t kl = strlen(k);
        snprintf(key, sizeof(key), "%s%s", k, kl >= 2 && strcmp(k + kl - 2, "[]") == 0 ? "" : "[]");
        if (payload != NULL)
            nv_get(payload, key, &vals);
        for (size_t i = 0; i < vals.n; i++)
            if (cJSON_IsObject(vals.v[i]) &&
                nv_filter(cJSON_GetObjectItemCaseSensitive(x, "filter"), vals.v[i], p, true))
                return true;
        return false;
    }
    return nv_filter(c, payload, p, nested);
}

/* The i-th condition of a clause that is an object or an array. */
static const cJSON *nv_item(const cJSON *clause, int i)
{
    return cJSON_IsObject(clause) ? (i == 0 ? clause : NULL) : cJSON_GetArrayItem(clause, i);
}

static bool nv_filter(const cJSON *f, const cJSON *payload, const struct nv_point *p, bool nested)
{
    const cJSON *should = cJSON_GetObjectItemCaseSensitive(f, "should");
    const cJSON *must = cJSON_GetObjectItemCaseSensitive(f, "must");
    const cJSON *must_not = cJSON_GetObjectItemCaseSensitive(f, "must_not");
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(f, "min_should");
    const cJSON *c;
    bool any = false;
    int hits = 0;

    for (int i = 0; must && (c = nv_item(must, i)) != NULL; i++)
        if (!nv_cond(c, payload, p, nested))
            return false;
    for (int i = 0; must_not && (c = nv_item(must_not, i)) != NULL; i++)
        if (nv_cond(c, payload, p, nested))
            return false;
    for (int i = 0; should && (c = nv_item(should, i)) != NULL; i++)
        any = any || nv_cond(c, payload, p, nested);
    if (should != NULL && !any)
        return false;
    if (ms != NULL) {
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(ms, "conditions"))
            hits += nv_cond(c, payload, p, nested);
        if (hits < nv_num(ms, "min_count"))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* random payloads and filters                                         */
/*                                                                     */
/* Payload keys lean towards a type ("s" strings, "n" numbers, "t"     */
/* datetimes, "loc" geo points, "arr" arrays of objects, "obj" an      */
/* object) and conditions pick paths that lean towards fitting types,  */
/* so that every condition kind meets values it can match; "a", "b"    */
/* and a share of off-type picks keep the type mix-ups covered.        */

static const char *const vocab_words[] = { "red", "green", "blue", "good cheap", "goodness",
                                           "", "red green", "Red", "go", "cheap" };
static const char *const vocab_keys[] = { "a", "b", "s", "n", "t", "loc", "arr", "obj" };
static const char *const any_paths[] = {
    "a", "b", "s", "n", "t", "loc", "arr", "obj", "a.b", "a[].b", "a[0]", "a[]", "arr[]",
    "arr[].n", "arr[1].n", "obj.s", "obj.n", "obj.a", "arr[].s", "obj.arr[].t", "arr[].loc",
    "obj.loc", "arr[][]", "a.b.c", "s[]", "n[1]", "obj.arr", "obj.arr[]",
};
static const char *const str_paths[] = { "s", "arr[].s", "obj.s", "obj.arr[].s", "s[0]", "a", "b" };
static const char *const num_paths[] = { "n", "arr[].n", "obj.n", "obj.arr[].n", "arr[0].n", "a", "b" };
static const char *const dt_paths[] = { "t", "arr[].t", "obj.t", "obj.arr[].t", "a" };
static const char *const geo_paths[] = { "loc", "arr[].loc", "obj.loc", "obj.arr[].loc", "a" };
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rnd(uint64_t *s, uint64_t n)
{
    return tu_rand(s) % n;
}

static const char *pick(uint64_t *s, const char *const *arr, size_t n)
{
    return arr[rnd(s, n)];
}

/* Few distinct instants written in several forms, so equal instants in
 * different spellings (offsets, separators, fractions) are common. */
static void rand_datetime(uint64_t *s, char *buf, size_t cap)
{
    static const char *const offs[] = { "Z", "+01:00", "-05:30", "", "+00:00" };
    static const int hours[] = { 0, 5, 6, 11, 12, 23 };
    char frac[16] = "";
    int d = 1 + (int)rnd(s, 3);

    if (rnd(s, 6) == 0) {
        snprintf(buf, cap, "2021-03-%02d", d);
        return;
    }
    if (rnd(s, 4) == 0)
        snprintf(frac, sizeof(frac), rnd(s, 2) ? ".%03d" : ".%09d", (int)rnd(s, 2) * 500);
    snprintf(buf, cap, "2021-03-%02d%c%02d:%02d:00%s%s", d, rnd(s, 2) ? 'T' : ' ',
             hours[rnd(s, NELEM(hours))], rnd(s, 2) ? 30 : 0, frac, pick(s, offs, NELEM(offs)));
}

static cJSON *rand_geo_point(uint64_t *s)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "lon", 10 + tu_randf(s) * 10);
    cJSON_AddNumberToObject(o, "lat", 40 + tu_randf(s) * 10);
    return o;
}

/* kind: 0 number, 1 string, 2 datetime, 3 geo, anything else: any scalar */
static cJSON *rand_scalar(uint64_t *s, int kind)
{
    char buf[64];

    switch (kind < 0 || kind > 3 ? (int)rnd(s, 8) : kind) {
    case 0: return cJSON_CreateNumber((double)((int)rnd(s, 11) - 5) + (rnd(s, 3) ? 0 : 0.5));
    case 1: return cJSON_CreateString(pick(s, vocab_words, NELEM(vocab_words)));
    case 2: rand_datetime(s, buf, sizeof(buf)); return cJSON_CreateString(buf);
    case 3: return rand_geo_point(s);
    case 4: return cJSON_CreateBool(rnd(s, 2));
    case 5: return cJSON_CreateNull();
    default: return cJSON_CreateNumber((double)rnd(s, 4));
    }
}

static cJSON *rand_object(uint64_t *s, int depth);

/* A value leaning to kind: usually a scalar of it, sometimes an array of
 * them (with strays), sometimes anything at all. */
static cJSON *rand_value(uint64_t *s, int kind, int depth)
{
    uint64_t k = rnd(s, 10);
    cJSON *v;

    if (k < 5)
        return rand_scalar(s, kind);
    if (k < 8) {
        v = cJSON_CreateArray();
        for (int i = (int)rnd(s, 4); i > 0; i--)
            cJSON_AddItemToArray(v, rnd(s, 5) ? rand_scalar(s, kind)
                                              : rand_value(s, -1, depth - 1));
        return v;
    }
    if (k == 8 || depth <= 0)
        return rand_scalar(s, -1);
    return rand_object(s, depth - 1);
}

static int key_kind(const char *key)
{
    return strcmp(key, "n") == 0 ? 0 : strcmp(key, "s") == 0 ? 1 : strcmp(key, "t") == 0 ? 2
         : strcmp(key, "loc") == 0 ? 3 : -1;
}

static cJSON *rand_keyed(uint64_t *s, const char *key, int depth)
{
    if (depth > 0 && strcmp(key, "arr") == 0 && rnd(s, 5)) {
        cJSON *a = cJSON_CreateArray();
        for (int i = (int)rnd(s, 4); i > 0; i--)
            cJSON_AddItemToArray(a, rnd(s, 8) ? rand_object(s, depth - 1) : rand_scalar(s, -1));
        return a;
    }
    if (depth > 0 && strcmp(key, "obj") == 0 && rnd(s, 5))
        return rand_object(s, depth - 1);
    return rand_value(s, key_kind(key), depth);
}

static cJSON *rand_object(uint64_t *s, int depth)
{
    cJSON *o = cJSON_CreateObject();

    for (size_t i = 0; i < NELEM(vocab_keys); i++)
        if (rnd(s, 5) < 2)
            cJSON_AddItemToObject(o, vocab_keys[i], rand_keyed(s, vocab_keys[i], depth));
    return o;
}

static cJSON *rand_payload(uint64_t *s)
{
    return rand_object(s, 3);
}

static cJSON *rand_list(uint64_t *s, bool ints)
{
    cJSON *a = cJSON_CreateArray();

    for (int i = (int)rnd(s, 4); i > 0; i--)
        cJSON_AddItemToArray(a, ints ? cJSON_CreateNumber((double)((int)rnd(s, 11) - 5))
                                     : cJSON_CreateString(pick(s, vocab_words, NELEM(vocab_words))));
    return a;
}

/* A match object; *kind gets the value type it is about (0 num, 1 str). */
static cJSON *rand_match(uint64_t *s, int *kind)
{
    cJSON *m = cJSON_CreateObject();
    const char *w = pick(s, vocab_words, NELEM(vocab_words));
    bool ints = rnd(s, 2);

    *kind = 1;
    switch (rnd(s, 9)) {
    case 0: cJSON_AddStringToObject(m, "value", w); break;
    case 1: cJSON_AddNumberToObject(m, "value", (double)((int)rnd(s, 11) - 5)); *kind = 0; break;
    case 2: cJSON_AddBoolToObject(m, "value", rnd(s, 2)); *kind = -1; break;
    case 3: cJSON_AddStringToObject(m, rnd(s, 2) ? "text" : "phrase", w); break;
    case 4: cJSON_AddStringToObject(m, "text_any", w); break;
    case 5: cJSON_AddStringToObject(m, "prefix", w); break;
    case 6: cJSON_AddItemToObject(m, "any", rand_list(s, ints)); *kind = ints ? 0 : 1; break;
    default: cJSON_AddItemToObject(m, "except", rand_list(s, ints)); *kind = ints ? 0 : 1; break;
    }
    return m;
}

static cJSON *rand_range(uint64_t *s, bool dt)
{
    static const char *const names[] = { "lt", "gt", "lte", "gte" };
    cJSON *r = cJSON_CreateObject();
    char buf[64];

    for (int i = 0; i < 4; i++) {
        if (rnd(s, 2))
            continue;
        if (dt) {
            rand_datetime(s, buf, sizeof(buf));
            cJSON_AddStringToObject(r, names[i], buf);
        } else {
            cJSON_AddNumberToObject(r, names[i], ((int)rnd(s, 13) - 6) * 0.75);
        }
    }
    return r;
}

static cJSON *rand_count(uint64_t *s)
{
    static const char *const names[] = { "lt", "gt", "lte", "gte" };
    cJSON *r = cJSON_CreateObject();

    for (int i = 0; i < 4; i++)
        if (rnd(s, 2))
            cJSON_AddNumberToObject(r, names[i], (double)rnd(s, 4));
    return r;
}

static cJSON *geo_pt(double lon, double lat)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "lon", lon);
    cJSON_AddNumberToObject(o, "lat", lat);
    return o;
}

/* A simple ring around (cx, cy): vertices sorted by angle with gaps under
 * 180 degrees, so it is star-shaped and even-odd equals nonzero winding. */
static cJSON *rand_ring(uint64_t *s, double cx, double cy, double rmax)
{
    cJSON *ring = cJSON_CreateObject(), *pts = cJSON_CreateArray();
    int n = 4 + (int)rnd(s, 4);
    double x0 = 0, y0 = 0;

    for (int i = 0; i < n; i++) {
        double ang = 2 * M_PI * (i + 0.5 * tu_randf(s)) / n, r = rmax * (0.3 + 0.7 * tu_randf(s));
        double x = cx + r * cos(ang), y = cy + r * sin(ang);
        if (i == 0) {
            x0 = x;
            y0 = y;
        }
        cJSON_AddItemToArray(pts, geo_pt(x, y));
    }
    cJSON_AddItemToArray(pts, geo_pt(x0, y0));
    cJSON_AddItemToObject(ring, "points", pts);
    return ring;
}

static void add_geo(uint64_t *s, cJSON *fc)
{
    double cx = 10 + tu_randf(s) * 10, cy = 40 + tu_randf(s) * 10;
    cJSON *g = cJSON_CreateObject();

    switch (rnd(s, 3)) {
    case 0:
        cJSON_AddItemToObject(g, "center", geo_pt(cx, cy));
        cJSON_AddNumberToObject(g, "radius", 50000 + tu_randf(s) * 500000);
        cJSON_AddItemToObject(fc, "geo_radius", g);
        break;
    case 1:
        cJSON_AddItemToObject(g, "top_left", geo_pt(cx - tu_randf(s) * 5, cy + tu_randf(s) * 5));
        cJSON_AddItemToObject(g, "bottom_right", geo_pt(cx + tu_randf(s) * 5, cy - tu_randf(s) * 5));
        cJSON_AddItemToObject(fc, "geo_bounding_box", g);
        break;
    default:
        cJSON_AddItemToObject(g, "exterior", rand_ring(s, cx, cy, 6));
        if (rnd(s, 2)) {
            cJSON *holes = cJSON_CreateArray();
            cJSON_AddItemToArray(holes, rand_ring(s, cx, cy, 1.5));
            cJSON_AddItemToObject(g, "interiors", holes);
        }
        cJSON_AddItemToObject(fc, "geo_polygon", g);
        break;
    }
}

/* A path for values of kind (see rand_scalar), or any path 1 time in 5. */
static const char *rand_path(uint64_t *s, int kind)
{
    if (rnd(s, 5) == 0 || kind < 0 || kind > 3)
        return pick(s, any_paths, NELEM(any_paths));
    if (kind == 0)
        return pick(s, num_paths, NELEM(num_paths));
    if (kind == 1)
        return pick(s, str_paths, NELEM(str_paths));
    if (kind == 2)
        return pick(s, dt_paths, NELEM(dt_paths));
    return pick(s, geo_paths, NELEM(geo_paths));
}

static cJSON *rand_field(uint64_t *s)
{
    cJSON *fc = cJSON_CreateObject();
    uint64_t k = rnd(s, 8);
    int kind = -1;

    if (k <= 1 || rnd(s, 8) == 0)
        cJSON_AddItemToObject(fc, "match", rand_match(s, &kind));
    if (k == 2 || k == 3 || rnd(s, 8) == 0) {
        bool dt = k == 3 || rnd(s, 3) == 0;
        cJSON_AddItemToObject(fc, "range", rand_range(s, dt));
        kind = dt ? 2 : 0;
    }
    if (k == 4 || rnd(s, 10) == 0) {
        add_geo(s, fc);
        kind = 3;
    }
    if (k == 5 || rnd(s, 10) == 0)
        cJSON_AddItemToObject(fc, "values_count", rand_count(s));
    if (k == 6 || rnd(s, 10) == 0)
        cJSON_AddBoolToObject(fc, "is_empty", rnd(s, 2));
    if (k == 7 || rnd(s, 10) == 0)
        cJSON_AddBoolToObject(fc, "is_null", rnd(s, 2));
    cJSON_AddStringToObject(fc, "key", rand_path(s, kind));
    return fc;
}

static cJSON *rand_filter(uint64_t *s, int depth);

static cJSON *rand_cond(uint64_t *s, int depth)
{
    cJSON *c = cJSON_CreateObject(), *x;
    char buf[64];
    uint64_t k = rnd(s, depth > 0 ? 10 : 8);

    if (k < 3) {
        cJSON_Delete(c);
        return rand_field(s);
    }
    switch (k) {
    case 3:
    case 4:
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "key", rand_path(s, -1));
        cJSON_AddItemToObject(c, k == 3 ? "is_empty" : "is_null", x);
        break;
    case 5:
        x = cJSON_CreateArray();
        for (int i = (int)rnd(s, 4); i > 0; i--)
            cJSON_AddItemToArray(x, cJSON_CreateNumber((double)rnd(s, 20)));
        if (rnd(s, 3) == 0) {
            snprintf(buf, sizeof(buf), "00000000-0000-0000-0000-%012llx", (unsigned long long)rnd(s, 20));
            cJSON_AddItemToArray(x, cJSON_CreateString(buf));
        }
        cJSON_AddItemToObject(c, "has_id", x);
        break;
    case 6:
        cJSON_AddStringToObject(c, "has_vector", rnd(s, 2) ? "img" : "txt");
        break;
    case 7:
        x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "total", 3);
        cJSON_AddNumberToObject(x, "index", (double)rnd(s, 3));
        cJSON_AddItemToObject(c, "slice", x);
        break;
    case 8:
        x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "key", rnd(s, 2) ? "arr" : (rnd(s, 2) ? "a[]" : "obj.arr"));
        cJSON_AddItemToObject(x, "filter", rand_filter(s, depth - 1));
        cJSON_AddItemToObject(c, "nested", x);
        break;
    default:
        cJSON_Delete(c);
        return rand_filter(s, depth - 1);
    }
    return c;
}

/* A clause: one condition object or an array of 0-3. */
static cJSON *rand_clause(uint64_t *s, int depth)
{
    cJSON *a;

    if (rnd(s, 4) == 0)
        return rand_cond(s, depth);
    a = cJSON_CreateArray();
    for (int i = (int)rnd(s, 4); i > 0; i--)
        cJSON_AddItemToArray(a, rand_cond(s, depth));
    return a;
}

static cJSON *rand_filter(uint64_t *s, int depth)
{
    cJSON *f = cJSON_CreateObject();

    if (rnd(s, 2))
        cJSON_AddItemToObject(f, "must", rand_clause(s, depth));
    if (rnd(s, 3) == 0)
        cJSON_AddItemToObject(f, "should", rand_clause(s, depth));
    if (rnd(s, 3) == 0)
        cJSON_AddItemToObject(f, "must_not", rand_clause(s, depth));
    if (rnd(s, 5) == 0) {
        cJSON *ms = cJSON_CreateObject(), *conds = cJSON_CreateArray();
        int n = (int)rnd(s, 4);
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(conds, rand_cond(s, depth));
        cJSON_AddItemToObject(ms, "conditions", conds);
        cJSON_AddNumberToObject(ms, "min_count", 1 + (double)rnd(s, 3));
        cJSON_AddItemToObject(f, "min_should", ms);
    }
    return f;
}

/* has_vector for random points: a fixed function of id and name. */
static bool rand_has_vector(void *ctx, const char *name)
{
    const ptid_t *id = ctx;

    return ((id->num + (uint64_t)name[0]) % 3) != 0;
}

#define N_PAYLOADS 3000
#define N_FILTERS 400

static void compare_one(const filter_t *f, const cJSON *fj, const cJSON *payload,
                        const ptid_t *id, uint64_t *counts)
{
    filter_point_t pt = { id, payload, rand_has_vector, (void *)(uintptr_t)id };
    struct nv_point np = { id, rand_has_vector, (void *)(uintptr_t)id };
    bool got = filter_match(f, &pt);
    bool want = nv_filter(fj, payload, &np, false);

    if (got != want) {
        char *a = cJSON_PrintUnformatted(fj), *b = cJSON_PrintUnformatted(payload);
        fail_msg("mismatch (filter_match %d, naive %d), id %" PRIu64 "\nfilter:  %s\npayload: %s",
                 got, want, id->num, a, b ? b : "(none)");
    }
    counts[got]++;
}

static void test_filter_random_against_naive(void **state)
{
    uint64_t seed = tu_seed(0x5eed0f11e7ULL), s = seed;
    cJSON **payloads = calloc(N_PAYLOADS, sizeof(*payloads));
    uint64_t counts[2] = { 0, 0 };
    (void)state;

    for (int i = 0; i < N_PAYLOADS; i++)
        payloads[i] = i % 50 == 49 ? NULL : rand_payload(&s);
    for (int fi = 0; fi < N_FILTERS; fi++) {
        cJSON *fj = rand_filter(&s, 3);
        filter_t *f = NULL;
        err_t err = { 0 };
        if (filter_parse(fj, &f, &err) != ERR_OK) {
            char *t = cJSON_PrintUnformatted(fj);
            fail_msg("generated filter rejected: %s\n%s", err.msg, t);
        }
        for (int i = 0; i < N_PAYLOADS; i++) {
            ptid_t id = ptid_num((uint64_t)i % 23);
            compare_one(f, fj, payloads[i], &id, counts);
        }
        filter_free(f);
        cJSON_Delete(fj);
    }
    for (int i = 0; i < N_PAYLOADS; i++)
        cJSON_Delete(payloads[i]);
    free(payloads);
    /* the generator must exercise both outcomes substantially */
    fprintf(stderr, "random: %llu matches, %llu non-matches\n", (unsigned long long)counts[1],
            (unsigned long long)counts[0]);
    assert_true(counts[0] > N_PAYLOADS * N_FILTERS / 20);
    assert_true(counts[1] > N_PAYLOADS * N_FILTERS / 20);
}

/* Every condition kind, alone, must sometimes match and sometimes not on
 * random payloads: guards against a generator that only makes trivia. */
static void test_filter_random_conditions_are_selective(void **state)
{
    uint64_t s = tu_seed(0xc0ffeeULL);
    int selective = 0, total = 0;
    (void)state;

    for (int fi = 0; fi < 200; fi++) {
        cJSON *fj = cJSON_CreateObject();
        filter_t *f;
        int hit = 0;
        cJSON_AddItemToObject(fj, "must", rand_field(&s));
        assert_int_equal(filter_parse(fj, &f, NULL), ERR_OK);
        for (int i = 0; i < 300; i++) {
            cJSON *p = rand_payload(&s);
            filter_point_t pt = { NULL, p, NULL, NULL };
            hit += filter_match(f, &pt);
            cJSON_Delete(p);
        }
        selective += hit > 0 && hit < 300;
        total++;
        filter_free(f);
        cJSON_Delete(fj);
    }
    fprintf(stderr, "selective field conditions: %d of %d\n", selective, total);
    assert_true(selective > total / 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_empty_filter_matches_everything),
        cmocka_unit_test(test_filter_boolean_clauses),
        cmocka_unit_test(test_filter_min_should),
        cmocka_unit_test(test_filter_match_value),
        cmocka_unit_test(test_filter_match_any_on_array),
        cmocka_unit_test(test_filter_match_except),
        cmocka_unit_test(test_filter_match_text),
        cmocka_unit_test(test_filter_range_numbers),
        cmocka_unit_test(test_filter_datetime_range_with_offsets),
        cmocka_unit_test(test_filter_datetime_parse_forms),
        cmocka_unit_test(test_filter_values_count),
        cmocka_unit_test(test_filter_is_empty_and_is_null),
        cmocka_unit_test(test_filter_field_condition_parts_or_and_precedence),
        cmocka_unit_test(test_filter_paths_and_projection),
        cmocka_unit_test(test_filter_path_values_deep_path),
        cmocka_unit_test(test_filter_key_on_nested_arrays),
        cmocka_unit_test(test_filter_geo_bounding_box),
        cmocka_unit_test(test_filter_geo_radius),
        cmocka_unit_test(test_filter_geo_polygon_with_hole),
        cmocka_unit_test(test_filter_has_id_uuid_forms),
        cmocka_unit_test(test_filter_has_vector),
        cmocka_unit_test(test_filter_slice),
        cmocka_unit_test(test_filter_nested_whole_filter_per_element),
        cmocka_unit_test(test_filter_qdrant_condition_checker_port),
        cmocka_unit_test(test_filter_errors_name_the_field),
        cmocka_unit_test(test_filter_errors_depth_and_names),
        cmocka_unit_test(test_filter_random_against_naive),
        cmocka_unit_test(test_filter_random_conditions_are_selective),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
