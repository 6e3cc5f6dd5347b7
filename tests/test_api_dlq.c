/*
 * test_api_dlq.c - the /dlq routes (query/api_dlq.c) through api_handle
 * with fake hooks: 404 before api_set_dlq, request validation (400
 * naming the field), and what reaches the hooks.  The tool itself is
 * tested in test_dlq_tool.c.  No catalog: these routes never touch it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query/api.h"

typedef struct seen {
    int calls;
    api_dlq_ref_t ref;
    bool ref_null, all, dry_run, force, apply;
    size_t n_refs;
    int max;
} seen_t;

static seen_t S;

static int f_list(void *ctx, cJSON **out, err_t *err)
{
    (void)ctx; (void)err;
    S.calls++;
    *out = cJSON_Parse("{\"total\":0,\"dead_letters\":[],\"counts\":{}}");
    return ERR_OK;
}

static int f_show(void *ctx, const api_dlq_ref_t *ref, cJSON **out, err_t *err)
{
    (void)ctx;
    S.calls++;
    S.ref = *ref;
    if (ref->offset == 99)
        return err_set(err, ERR_NOT_FOUND, "dead letter 0:99 is not in dlq");
    *out = cJSON_CreateObject();
    return ERR_OK;
}

static int f_redrive(void *ctx, const api_dlq_redrive_t *q, cJSON **out, err_t *err)
{
    (void)ctx; (void)err;
    S.calls++;
    S.all = q->all; S.dry_run = q->dry_run; S.force = q->force; S.apply = q->apply;
    S.n_refs = q->n_refs; S.max = q->max_redrives;
    if (q->n_refs > 0)
        S.ref = q->refs[q->n_refs - 1];
    *out = cJSON_CreateObject();
    return ERR_OK;
}

static int f_purge(void *ctx, const api_dlq_ref_t *until, cJSON **out, err_t *err)
{
    (void)ctx; (void)err;
    S.calls++;
    S.ref_null = until == NULL;
    if (until)
        S.ref = *until;
    *out = cJSON_CreateObject();
    return ERR_OK;
}

static int call(api_t *a, int method, const char *path, const char *body, char *msg, size_t cap)
{
    api_req_t rq = { .method = method, .path = path, .body = body,
                     .body_len = body ? strlen(body) : 0 };
    api_resp_t rs;
    api_handle(a, &rq, &rs);
    cJSON *doc = cJSON_Parse(rs.body);
    const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "status"), "error");
    snprintf(msg, cap, "%s", cJSON_IsString(e) ? e->valuestring : "");
    if (rs.status == 200)
        assert_non_null(cJSON_GetObjectItem(doc, "result"));
    cJSON_Delete(doc);
    free(rs.body);
    return rs.status;
}

static void test_api_dlq_routes(void **state)
{
    api_t *a;
    char m[600];
    err_t e;

    (void)state;
    assert_int_equal(api_new(NULL, NULL, &a, &e), ERR_OK);
    api_set_ready(a, true);
    assert_int_equal(call(a, API_GET, "/dlq", NULL, m, sizeof(m)), 404);
    assert_non_null(strstr(m, "ingest is not running"));
    assert_int_equal(call(a, API_POST, "/dlq/purge", "{\"all\":true}", m, sizeof(m)), 404);
    api_dlq_hooks_t h = { NULL, f_list, f_show, f_redrive, f_purge };
    api_set_dlq(a, &h);

    assert_int_equal(call(a, API_GET, "/dlq", NULL, m, sizeof(m)), 200);
    assert_int_equal(call(a, API_GET, "/dlq/1/42", NULL, m, sizeof(m)), 200);
    assert_int_equal(S.ref.partition, 1);
    assert_int_equal(S.ref.offset, 42);
    assert_int_equal(call(a, API_GET, "/dlq/0/99", NULL, m, sizeof(m)), 404);
    assert_int_equal(call(a, API_GET, "/dlq/x/1", NULL, m, sizeof(m)), 400);
    assert_non_null(strstr(m, "partition"));

    assert_int_equal(call(a, API_POST, "/dlq/redrive",
                          "{\"records\":[\"0:1\",\"2:7\"],\"dry_run\":true,\"max_redrives\":5}",
                          m, sizeof(m)), 200);
    assert_true(S.dry_run && !S.all && !S.force);
    assert_int_equal(S.n_refs, 2);
    assert_int_equal(S.ref.partition, 2);
    assert_int_equal(S.ref.offset, 7);
    assert_int_equal(S.max, 5);
    assert_int_equal(call(a, API_POST, "/dlq/redrive", "{\"all\":true,\"force\":true}", m,
                          sizeof(m)), 200);
    assert_true(S.all && S.force && !S.dry_run && !S.apply);
    assert_int_equal(S.max, 0);
    assert_int_equal(call(a, API_POST, "/dlq/redrive", "{\"all\":true,\"mode\":\"apply\"}", m,
                          sizeof(m)), 200);
    assert_true(S.all && S.apply);
    assert_int_equal(call(a, API_POST, "/dlq/redrive", "{\"all\":true,\"mode\":\"produce\"}",
                          m, sizeof(m)), 200);
    assert_false(S.apply);
    int before = S.calls;
    static const struct { const char *body, *field; } bad[] = {
        { "{}", "records" },
        { "{\"all\":true,\"records\":[\"0:1\"]}", "records" },
        { "{\"records\":[\"0-1\"]}", "records[0]" },
        { "{\"records\":\"0:1\"}", "records" },
        { "{\"all\":1}", "all" },
        { "{\"all\":true,\"dry_run\":\"yes\"}", "dry_run" },
        { "{\"all\":true,\"max_redrives\":0}", "max_redrives" },
        { "{\"all\":true,\"bogus\":1}", "bogus" },
        { "{\"all\":true,\"mode\":\"replay\"}", "mode" },
        { "{\"all\":true,\"mode\":1}", "mode" },
        { "[1]", "body" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(call(a, API_POST, "/dlq/redrive", bad[i].body, m, sizeof(m)), 400);
        if (strstr(m, bad[i].field) == NULL)
            fail_msg("%s: \"%s\" does not name %s", bad[i].body, m, bad[i].field);
    }
    assert_int_equal(call(a, API_POST, "/dlq/redrive", NULL, m, sizeof(m)), 400);

    assert_int_equal(call(a, API_POST, "/dlq/purge", "{\"all\":true}", m, sizeof(m)), 200);
    assert_true(S.ref_null);
    assert_int_equal(call(a, API_POST, "/dlq/purge", "{\"until\":\"3:9\"}", m, sizeof(m)), 200);
    assert_false(S.ref_null);
    assert_int_equal(S.ref.partition, 3);
    assert_int_equal(S.ref.offset, 9);
    assert_int_equal(call(a, API_POST, "/dlq/purge", "{\"until\":\"x\"}", m, sizeof(m)), 400);
    assert_non_null(strstr(m, "until"));
    assert_int_equal(call(a, API_POST, "/dlq/purge", "{}", m, sizeof(m)), 400);
    assert_int_equal(call(a, API_POST, "/dlq/purge", "{\"all\":false}", m, sizeof(m)), 400);
    assert_int_equal(S.calls, before + 2);
    assert_int_equal(call(a, API_GET, "/dlq/purge", NULL, m, sizeof(m)), 405);
    api_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_api_dlq_routes) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
