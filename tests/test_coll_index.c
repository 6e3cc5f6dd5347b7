/*
 * test_coll_index.c - payload equality indexes (coll_index_set) and the
 * planner that uses them: every read and filter op must give exactly what
 * a full scan gives.
 *
 * The reference is a twin collection without indexes that receives the
 * very same ops (copied through op_encode / op_decode): search, count,
 * scroll by id (every page, next_page_offset included), scroll with
 * order_by and delete / set_payload by filter must produce identical JSON
 * in both, for random payloads (scalars, arrays, wrong types, nested
 * paths) and random filters mixing indexed equality conditions with other
 * conditions, through upserts, payload set / overwrite / delete / clear,
 * deletes, deletes by filter and tombstone purges.  coll_info's
 * index_reads / index_candidates prove that the index path was taken and
 * examined fewer points than a scan.  Range and datetime range conditions
 * on ordered indexes (float "f", datetime "dt", integer-with-range "n")
 * are mixed in the same way; index_range_reads proves the range path.  The catalog test checks that index
 * definitions build indexes on create, after a restart, and drop them on
 * delete, and that a text definition's params reach the evaluator
 * (full-text and geo indexes themselves: test_coll_textidx.c).  Timing tests print count() with a selective equality (resp.
 * range) filter, scan vs index (VECLOG_INDEX_BENCH_N points, default
 * 20000).
 *
 * Seeds are printed; VECLOG_TEST_SEED replays a failure.
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

#include "store/catalog.h"
#include "store/coll.h"
#include "store/filter.h"
#include "store/log.h"
#include "tests/testutil.h"

#define DIM 4

static const coll_vector_def_t k_def = { .name = (char *)"", .dim = DIM, .metric = 1 };

typedef struct twin {
    char *dir;
    coll_t *a;                /* indexed */
    coll_t *b;                /* reference: no index */
    uint64_t s;
} twin_t;

static coll_t *open_coll(const char *dir)
{
    coll_opts_t o = { .vectors = &k_def, .n_vectors = 1 };
    coll_t *c = NULL;
    err_t e;

    o.wal.sync_mode = WAL_SYNC_NONE;
    if (coll_open(dir, &o, &c, &e) != ERR_OK)
        fail_msg("coll_open: %s", e.msg);
    return c;
}

static int setup(void **state)
{
    twin_t *t = calloc(1, sizeof(*t));
    char p[4096];

    log_level_set(LOG_ERROR);
    t->dir = tu_tmpdir("coll_index");
    snprintf(p, sizeof(p), "%s/a", t->dir);
    t->a = open_coll(p);
    snprintf(p, sizeof(p), "%s/b", t->dir);
    t->b = open_coll(p);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    twin_t *t = *state;
    coll_close(t->a);
    coll_close(t->b);
    tu_rmrf(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

static cJSON *J(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL)
        fail_msg("bad JSON in test: %s", text);
    return j;
}

static filter_t *F(const char *text)
{
    cJSON *j = J(text);
    filter_t *f = NULL;
    err_t e;
    if (filter_parse(j, &f, &e) != ERR_OK)
        fail_msg("filter %s: %s", text, e.msg);
    cJSON_Delete(j);
    return f;
}

/* Write op to both collections (a copy to b). */
static void write_both(twin_t *t, op_t *op)
{
    uint8_t *buf;
    size_t len;
    op_t copy;
    err_t e;

    assert_int_equal(op_encode(op, &buf, &len, &e), ERR_OK);
    assert_int_equal(op_decode(buf, len, &copy, &e), ERR_OK);
    free(buf);
    if (coll_write(t->a, op, NULL, &e) != ERR_OK)
        fail_msg("write a (%s): %s", op_type_name(op->type), e.msg);
    if (coll_write(t->b, &copy, NULL, &e) != ERR_OK)
        fail_msg("write b (%s): %s", op_type_name(copy.type), e.msg);
    op_clear(op);
    op_clear(&copy);
}

/* ---- random data ------------------------------------------------------- */

static const char *const k_kw[] = { "a", "b", "c", "d", "e", "f", "g", "h" };
static const char *const k_uu[] = { "5f0c7b1e-0000-4000-8000-000000000001",
                                    "5f0c7b1e-0000-4000-8000-000000000002",
                                    "5f0c7b1e-0000-4000-8000-000000000003" };
#define NKW 8
#define NUU 3

static const double k_fl[] = { -1.5, -0.0, 0, 0.5, 1, 2.25, 3, 7.75, 1e300, -1e300 };
#define NFL 10
/* datetimes in the forms Qdrant accepts; some are the same instant */
static const char *const k_dt[] = {
    "2023-02-08T10:49:00Z", "2023-02-08 10:49:00", "2023-02-08T12:49:00+02:00",
    "2023-02-08", "2023-02-08T10:49:00.5Z", "2024-01-01T00:00:00Z", "2022-12-31T23:59:59.999Z",
    "2023-02-08T10:49", "1970-01-01T00:00:00Z", "2100-06-30T12:00:00-0530",
};
#define NDT 10

static ptid_t rand_id(uint64_t *s, uint64_t n)
{
    uint64_t r = tu_rand(s) % n;
    if (r % 5 == 0) {
        ptid_t id = { .kind = PTID_UUID };
        id.uuid[0] = (uint8_t)(r >> 8);
        id.uuid[15] = (uint8_t)r;
        id.uuid[6] = 0x40;
        return id;
    }
    return ptid_num(r);
}

static void add_kw(cJSON *o, const char *key, uint64_t *s)
{
    uint64_t r = tu_rand(s) % 10;
    if (r < 5) {
        cJSON_AddStringToObject(o, key, k_kw[tu_rand(s) % NKW]);
    } else if (r < 7) {
        cJSON *a = cJSON_AddArrayToObject(o, key);
        for (uint64_t i = tu_rand(s) % 4; i > 0; i--)
            cJSON_AddItemToArray(a, cJSON_CreateString(k_kw[tu_rand(s) % NKW]));
    } else if (r == 7) {
        cJSON_AddNumberToObject(o, key, 3);
    } else if (r == 8) {
        cJSON_AddNullToObject(o, key);
    }
}

static void add_int(cJSON *o, const char *key, uint64_t *s)
{
    uint64_t r = tu_rand(s) % 10;
    if (r < 5) {
        cJSON_AddNumberToObject(o, key, (double)(tu_rand(s) % 10));
    } else if (r < 7) {
        cJSON *a = cJSON_AddArrayToObject(o, key);
        for (uint64_t i = tu_rand(s) % 4; i > 0; i--)
            cJSON_AddItemToArray(a, cJSON_CreateNumber((double)(tu_rand(s) % 10)));
    } else if (r == 7) {
        cJSON_AddNumberToObject(o, key, 2.5);
    } else if (r == 8) {
        cJSON_AddStringToObject(o, key, "3");
    }
}

static void add_float(cJSON *o, const char *key, uint64_t *s)
{
    uint64_t r = tu_rand(s) % 10;
    if (r < 5) {
        cJSON_AddNumberToObject(o, key, k_fl[tu_rand(s) % NFL]);
    } else if (r < 7) {
        cJSON *a = cJSON_AddArrayToObject(o, key);
        for (uint64_t i = tu_rand(s) % 4; i > 0; i--)
            cJSON_AddItemToArray(a, tu_rand(s) % 5 ? cJSON_CreateNumber(k_fl[tu_rand(s) % NFL])
                                                   : cJSON_CreateString("3"));
    } else if (r == 7) {
        cJSON_AddStringToObject(o, key, "2.25");
    } else if (r == 8) {
        cJSON_AddNullToObject(o, key);
    } /* else absent */
}

static void add_dt(cJSON *o, const char *key, uint64_t *s)
{
    uint64_t r = tu_rand(s) % 10;
    if (r < 5) {
        cJSON_AddStringToObject(o, key, k_dt[tu_rand(s) % NDT]);
    } else if (r < 7) {
        cJSON *a = cJSON_AddArrayToObject(o, key);
        for (uint64_t i = tu_rand(s) % 4; i > 0; i--)
            cJSON_AddItemToArray(a, tu_rand(s) % 5 ? cJSON_CreateString(k_dt[tu_rand(s) % NDT])
                                                   : cJSON_CreateNull());
    } else if (r == 7) {
        cJSON_AddNumberToObject(o, key, 1675853340);
    } else if (r == 8) {
        cJSON_AddStringToObject(o, key, tu_rand(s) & 1 ? "not a date" : "2023-02-30");
    } else if (tu_rand(s) & 1) {
        cJSON_AddNullToObject(o, key);
    }
}

static cJSON *rand_payload(uint64_t *s)
{
    cJSON *o = cJSON_CreateObject();
    uint64_t r;

    add_kw(o, "kw", s);
    add_int(o, "n", s);
    r = tu_rand(s) % 6;
    if (r < 2)
        cJSON_AddBoolToObject(o, "flag", r == 1);
    else if (r == 2)
        cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "flag"), cJSON_CreateBool(tu_rand(s) & 1));
    else if (r == 3)
        cJSON_AddStringToObject(o, "flag", "true");
    if (tu_rand(s) % 3 != 0)
        cJSON_AddStringToObject(o, "u", k_uu[tu_rand(s) % NUU]);
    if (tu_rand(s) % 2)
        add_kw(cJSON_AddObjectToObject(o, "obj"), "kw", s);
    if (tu_rand(s) % 2) {
        cJSON *a = cJSON_AddArrayToObject(o, "arr");
        for (uint64_t i = tu_rand(s) % 3; i > 0; i--) {
            cJSON *e = cJSON_CreateObject();
            add_kw(e, "k", s);
            cJSON_AddItemToArray(a, e);
        }
    }
    cJSON_AddNumberToObject(o, "other", (double)(tu_rand(s) % 100));
    add_float(o, "f", s);
    add_dt(o, "dt", s);
    return o;
}

static void upsert_rand(twin_t *t, size_t n, uint64_t id_space)
{
    op_t op = { .type = OP_UPSERT };
    for (size_t i = 0; i < n; i++) {
        op_point_t *p = op_point_add(&op);
        float v[DIM];
        p->id = rand_id(&t->s, id_space);
        cJSON *pl = rand_payload(&t->s);
        p->payload = cJSON_PrintUnformatted(pl);
        cJSON_Delete(pl);
        for (int d = 0; d < DIM; d++)
            v[d] = (float)(tu_rand(&t->s) % 7) - 3.0f;
        assert_int_equal(op_vec_add(p, "", v, DIM), ERR_OK);
        /* an id twice in one op would leave outcomes order-dependent: fine,
         * both collections see the same op */
    }
    write_both(t, &op);
}

static const char *const k_ops[] = { "gt", "gte", "lt", "lte" };

/* A random range condition on an ordered index (or of the wrong type). */
static void rand_range(uint64_t *s, char *buf, size_t cap)
{
    const char *o1 = k_ops[tu_rand(s) % 4], *o2 = k_ops[tu_rand(s) % 4];
    double a = k_fl[tu_rand(s) % NFL], b = k_fl[tu_rand(s) % NFL];
    const char *d1 = k_dt[tu_rand(s) % NDT], *d2 = k_dt[tu_rand(s) % NDT];

    switch (tu_rand(s) % 9) {
    case 0: snprintf(buf, cap, "{\"key\":\"f\",\"range\":{\"%s\":%.17g}}", o1, a); break;
    case 1: snprintf(buf, cap, "{\"key\":\"f\",\"range\":{\"%s\":%.17g,\"%s\":%.17g}}", o1, a,
                     o2, b); break;
    case 2: snprintf(buf, cap, "{\"key\":\"n\",\"range\":{\"%s\":%d,\"%s\":%.17g}}", o1,
                     (int)(tu_rand(s) % 10), o2, a); break;
    case 3: snprintf(buf, cap, "{\"key\":\"dt\",\"range\":{\"%s\":\"%s\"}}", o1, d1); break;
    case 4: snprintf(buf, cap, "{\"key\":\"dt\",\"range\":{\"%s\":\"%s\",\"%s\":\"%s\"}}", o1,
                     d1, o2, d2); break;
    case 5: snprintf(buf, cap, "{\"key\":\"dt\",\"range\":{\"%s\":%.17g}}", o1, a); break;
    case 6: snprintf(buf, cap, "{\"key\":\"f\",\"range\":{\"%s\":\"%s\"}}", o1, d1); break;
    case 7: snprintf(buf, cap, "{\"key\":\"f\",\"range\":{}}"); break;
    default: snprintf(buf, cap, "{\"key\":\"n\",\"range\":{\"gte\":%d}}", (int)(tu_rand(s) % 12));
        break;
    }
}

/* One random condition; indexed equality or range ones most of the time. */
static void rand_cond(uint64_t *s, char *buf, size_t cap)
{
    const char *kw = k_kw[tu_rand(s) % NKW], *kw2 = k_kw[tu_rand(s) % NKW];
    if (tu_rand(s) % 3 == 0) {
        rand_range(s, buf, cap);
        return;
    }
    switch (tu_rand(s) % 16) {
    case 0: case 1: snprintf(buf, cap, "{\"key\":\"kw\",\"match\":{\"value\":\"%s\"}}", kw); break;
    case 2: snprintf(buf, cap, "{\"key\":\"kw\",\"match\":{\"any\":[\"%s\",\"%s\"]}}", kw, kw2); break;
    case 3: snprintf(buf, cap, "{\"key\":\"n\",\"match\":{\"value\":%d}}", (int)(tu_rand(s) % 10)); break;
    case 4: snprintf(buf, cap, "{\"key\":\"n\",\"match\":{\"any\":[%d,%d,3]}}", (int)(tu_rand(s) % 10),
                     (int)(tu_rand(s) % 10)); break;
    case 5: snprintf(buf, cap, "{\"key\":\"flag\",\"match\":{\"value\":%s}}",
                     tu_rand(s) & 1 ? "true" : "false"); break;
    case 6: snprintf(buf, cap, "{\"key\":\"u\",\"match\":{\"value\":\"%s\"}}", k_uu[tu_rand(s) % NUU]); break;
    case 7: snprintf(buf, cap, "{\"key\":\"obj.kw\",\"match\":{\"value\":\"%s\"}}", kw); break;
    case 8: snprintf(buf, cap, "{\"key\":\"arr[].k\",\"match\":{\"value\":\"%s\"}}", kw); break;
    case 9: snprintf(buf, cap, "{\"key\":\"other\",\"range\":{\"lt\":%d}}", (int)(tu_rand(s) % 100)); break;
    case 10: snprintf(buf, cap, "{\"key\":\"\\\"kw\\\"\",\"match\":{\"value\":\"%s\"}}", kw); break;
    case 11: snprintf(buf, cap, "{\"must\":[{\"key\":\"n\",\"match\":{\"value\":%d}}]}",
                      (int)(tu_rand(s) % 10)); break;
    case 12: snprintf(buf, cap, "{\"key\":\"kw\",\"match\":{\"except\":[\"%s\"]}}", kw); break;
    case 13: snprintf(buf, cap, "{\"key\":\"n\",\"match\":{\"value\":3},\"range\":{\"gt\":7}}"); break;
    case 14: snprintf(buf, cap, "{\"key\":\"kw\",\"match\":{\"any\":[]}}"); break;
    default: snprintf(buf, cap, "{\"is_empty\":{\"key\":\"kw\"}}"); break;
    }
}

static char *rand_filter(uint64_t *s)
{
    char *out = malloc(4096), c[512];
    size_t len = 0;
    uint64_t n = 1 + tu_rand(s) % 3, shape = tu_rand(s) % 4;

    if (shape == 0) { /* must as a single condition */
        rand_cond(s, c, sizeof(c));
        snprintf(out, 4096, "{\"must\":%s}", c);
        return out;
    }
    len += (size_t)snprintf(out + len, 4096 - len, "{\"must\":[");
    for (uint64_t i = 0; i < n; i++) {
        rand_cond(s, c, sizeof(c));
        len += (size_t)snprintf(out + len, 4096 - len, "%s%s", i ? "," : "", c);
    }
    len += (size_t)snprintf(out + len, 4096 - len, "]");
    if (shape == 2) {
        rand_cond(s, c, sizeof(c));
        len += (size_t)snprintf(out + len, 4096 - len, ",\"must_not\":[%s]", c);
    } else if (shape == 3) {
        rand_cond(s, c, sizeof(c));
        len += (size_t)snprintf(out + len, 4096 - len, ",\"should\":[%s", c);
        rand_cond(s, c, sizeof(c));
        len += (size_t)snprintf(out + len, 4096 - len, ",%s]", c);
    }
    snprintf(out + len, 4096 - len, "}");
    return out;
}

/* ---- comparing the twins ----------------------------------------------- */

static void assert_same_json(const cJSON *x, const cJSON *y, const char *what, const char *ftext)
{
    char *a = cJSON_PrintUnformatted(x), *b = cJSON_PrintUnformatted(y);
    if (strcmp(a, b) != 0)
        fail_msg("%s differs for filter %s:\nindexed: %.600s\nscan:    %.600s", what, ftext, a, b);
    free(a);
    free(b);
}

static void compare_scroll(twin_t *t, const filter_t *f, const char *ftext, const coll_sel_t *sel)
{
    coll_scroll_req_t r = { .filter = f, .limit = 1 + tu_rand(&t->s) % 40, .sel = sel };
    err_t e;

    for (int page = 0; page < 1000; page++) {
        cJSON *pa, *na, *pb, *nb;
        assert_int_equal(coll_scroll(t->a, &r, &pa, &na, &e), ERR_OK);
        assert_int_equal(coll_scroll(t->b, &r, &pb, &nb, &e), ERR_OK);
        assert_same_json(pa, pb, "scroll page", ftext);
        assert_same_json(na, nb, "next_page_offset", ftext);
        cJSON_Delete(pa);
        cJSON_Delete(pb);
        cJSON_Delete(nb);
        if (cJSON_IsNull(na)) {
            cJSON_Delete(na);
            return;
        }
        r.has_offset = true;
        assert_int_equal(ptid_from_json(na, &r.offset, &e), ERR_OK);
        cJSON_Delete(na);
    }
    fail_msg("scroll did not end");
}

static void compare_reads(twin_t *t, const char *ftext)
{
    filter_t *f = F(ftext);
    coll_sel_t sel = { .payload = COLL_PAYLOAD_ALL, .vector = COLL_VECTOR_NONE };
    size_t ca, cb;
    cJSON *xa, *xb, *na, *nb;
    err_t e;

    assert_int_equal(coll_count(t->a, f, &ca, &e), ERR_OK);
    assert_int_equal(coll_count(t->b, f, &cb, &e), ERR_OK);
    if (ca != cb)
        fail_msg("count %zu vs %zu for %s", ca, cb, ftext);
    compare_scroll(t, f, ftext, &sel);
    /* an offset id that may or may not exist */
    coll_scroll_req_t r = { .filter = f, .limit = 7, .sel = &sel, .has_offset = true,
                            .offset = rand_id(&t->s, 400) };
    assert_int_equal(coll_scroll(t->a, &r, &xa, &na, &e), ERR_OK);
    assert_int_equal(coll_scroll(t->b, &r, &xb, &nb, &e), ERR_OK);
    assert_same_json(xa, xb, "scroll from offset", ftext);
    assert_same_json(na, nb, "next from offset", ftext);
    cJSON_Delete(xa), cJSON_Delete(xb), cJSON_Delete(na), cJSON_Delete(nb);
    r = (coll_scroll_req_t){ .filter = f, .limit = 15, .sel = &sel, .order_by = "other",
                             .order_desc = tu_rand(&t->s) & 1 };
    assert_int_equal(coll_scroll(t->a, &r, &xa, &na, &e), ERR_OK);
    assert_int_equal(coll_scroll(t->b, &r, &xb, &nb, &e), ERR_OK);
    assert_same_json(xa, xb, "scroll order_by", ftext);
    cJSON_Delete(xa), cJSON_Delete(xb), cJSON_Delete(na), cJSON_Delete(nb);
    float q[DIM];
    for (int d = 0; d < DIM; d++)
        q[d] = (float)(tu_rand(&t->s) % 5) - 2.0f;
    coll_search_req_t sr = { .vector = q, .dim = DIM, .filter = f, .limit = 10,
                             .offset = tu_rand(&t->s) % 3, .sel = &sel };
    assert_int_equal(coll_search(t->a, &sr, &xa, &e), ERR_OK);
    assert_int_equal(coll_search(t->b, &sr, &xb, &e), ERR_OK);
    assert_same_json(xa, xb, "search", ftext);
    cJSON_Delete(xa), cJSON_Delete(xb);
    filter_free(f);
}

static void index_all(coll_t *c)
{
    static const struct { const char *field; int kind; } defs[] = {
        { "kw", COLL_INDEX_KEYWORD }, { "n", COLL_INDEX_INTEGER }, { "flag", COLL_INDEX_BOOL },
        { "u", COLL_INDEX_UUID }, { "obj.kw", COLL_INDEX_KEYWORD },
        { "arr[].k", COLL_INDEX_KEYWORD }, { "other", COLL_INDEX_KEYWORD } /* wrong type */,
        { "n", COLL_INDEX_INTEGER | COLL_INDEX_RANGE } /* replaces "n" */,
        { "f", COLL_INDEX_FLOAT }, { "dt", COLL_INDEX_DATETIME },
    };
    err_t e;
    for (size_t i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
        if (coll_index_set(c, defs[i].field, defs[i].kind, &e) != ERR_OK)
            fail_msg("coll_index_set %s: %s", defs[i].field, e.msg);
}

/* A random payload / delete op on both collections. */
static void mutate(twin_t *t)
{
    op_t op = { 0 };
    char *ft = NULL;
    uint64_t r = tu_rand(&t->s) % 9;
    cJSON *pl = rand_payload(&t->s);

    if (r == 0) {
        upsert_rand(t, 20, 400);
        cJSON_Delete(pl);
        return;
    }
    op.type = r == 1 ? OP_SET_PAYLOAD : r == 2 ? OP_OVERWRITE_PAYLOAD : r == 3 ? OP_DELETE_PAYLOAD
            : r == 4 ? OP_CLEAR_PAYLOAD : OP_DELETE;
    if (op.type == OP_SET_PAYLOAD || op.type == OP_OVERWRITE_PAYLOAD)
        op.payload = cJSON_PrintUnformatted(pl);
    if (op.type == OP_DELETE_PAYLOAD) {
        op_name_add(&op, tu_rand(&t->s) & 1 ? "kw" : "n");
        op_name_add(&op, "flag");
    }
    if (r >= 6) { /* by filter */
        ft = rand_filter(&t->s);
        op.filter = ft;
        op.type = r == 6 ? OP_DELETE : r == 7 ? OP_SET_PAYLOAD : OP_CLEAR_PAYLOAD;
        if (op.type == OP_SET_PAYLOAD && op.payload == NULL)
            op.payload = cJSON_PrintUnformatted(pl);
    } else {
        for (int i = 0; i < 8; i++)
            op_point_add(&op)->id = rand_id(&t->s, 400);
    }
    cJSON_Delete(pl);
    write_both(t, &op);
}

static void test_index_reads_equal_scan(void **state)
{
    twin_t *t = *state;
    coll_info_t before, after;
    uint64_t seed = tu_seed(0x1d51);

    t->s = seed;
    upsert_rand(t, 150, 400);
    index_all(t->a);            /* built from memory */
    upsert_rand(t, 150, 400);   /* maintained by the applier */
    coll_info_get(t->a, &before);
    assert_int_equal(before.indexes, 9);
    for (int round = 0; round < 60; round++) {
        for (int k = 0; k < 4; k++) {
            char *ft = rand_filter(&t->s);
            compare_reads(t, ft);
            free(ft);
        }
        mutate(t);
        if (round % 20 == 19) {
            size_t pa, pb;
            err_t e;
            coll_info_t ia;
            coll_info_get(t->a, &ia);
            assert_int_equal(coll_tombstones_purge(t->a, ia.applied_seq, &pa, &e), ERR_OK);
            coll_info_get(t->b, &ia);
            assert_int_equal(coll_tombstones_purge(t->b, ia.applied_seq, &pb, &e), ERR_OK);
        }
    }
    coll_info_get(t->a, &after);
    assert_true(after.index_reads > before.index_reads + 50);
    assert_true(after.index_range_reads > before.index_range_reads + 20);
    coll_info_get(t->b, &after);
    assert_int_equal(after.index_reads, 0);
}

/* The index path is taken, examines only candidates, and drop goes back
 * to scanning. */
static void test_index_path_taken(void **state)
{
    twin_t *t = *state;
    coll_info_t i0, i1;
    size_t n, want;
    err_t e;

    t->s = tu_seed(77);
    upsert_rand(t, 300, 100000);
    assert_int_equal(coll_index_set(t->a, "u", COLL_INDEX_UUID, &e), ERR_OK);
    assert_int_equal(coll_index_set(t->a, "kw", COLL_INDEX_KEYWORD, &e), ERR_OK);
    filter_t *f = F("{\"must\":[{\"key\":\"u\",\"match\":{\"value\":\"5f0c7b1e-0000-4000-8000-000000000001\"}},"
                    "{\"key\":\"kw\",\"match\":{\"value\":\"a\"}}]}");
    coll_info_get(t->a, &i0);
    assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    assert_int_equal(coll_count(t->b, f, &want, &e), ERR_OK);
    coll_info_get(t->a, &i1);
    assert_int_equal(n, want);
    assert_int_equal(i1.index_reads, i0.index_reads + 1);
    /* kw = "a" (about 1 in 14 points) is smaller than u = ... (1 in 4.5) */
    assert_true(i1.index_candidates - i0.index_candidates < i1.points / 4);
    assert_true(i1.index_candidates - i0.index_candidates >= n);
    /* wrong type for the index: not used */
    filter_t *g = F("{\"must\":[{\"key\":\"kw\",\"match\":{\"value\":3}}]}");
    assert_int_equal(coll_count(t->a, g, &n, &e), ERR_OK);
    coll_info_get(t->a, &i0);
    assert_int_equal(i0.index_reads, i1.index_reads);
    filter_free(g);
    coll_index_drop(t->a, "kw");
    coll_index_drop(t->a, "u");
    coll_index_drop(t->a, "nope");
    coll_info_get(t->a, &i0);
    assert_int_equal(i0.indexes, 0);
    assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    coll_info_get(t->a, &i1);
    assert_int_equal(i1.index_reads, i0.index_reads);
    assert_int_equal(n, want);
    assert_int_equal(coll_index_set(t->a, "bad..path", COLL_INDEX_KEYWORD, &e), ERR_INVALID);
    assert_int_equal(coll_index_set(t->a, "kw", 99, &e), ERR_INVALID);
    filter_free(f);
}

/* Range conditions take the ordered index; the smaller of an equality and
 * a range candidate set is used. */
static void test_range_path_taken(void **state)
{
    twin_t *t = *state;
    coll_info_t i0, i1;
    size_t n, want;
    err_t e;

    t->s = tu_seed(78);
    upsert_rand(t, 400, 100000);
    assert_int_equal(coll_index_set(t->a, "other", COLL_INDEX_FLOAT, &e), ERR_OK);
    assert_int_equal(coll_index_set(t->a, "dt", COLL_INDEX_DATETIME, &e), ERR_OK);
    assert_int_equal(coll_index_set(t->a, "kw", COLL_INDEX_KEYWORD, &e), ERR_OK);
    assert_int_equal(coll_index_set(t->a, "kw", COLL_INDEX_KEYWORD | COLL_INDEX_RANGE, &e),
                     ERR_INVALID);
    static const struct { const char *f; bool range; } cases[] = {
        /* other in [0, 100): 2 in 100 vs kw = "a" about 1 in 14: range */
        { "{\"must\":[{\"key\":\"kw\",\"match\":{\"value\":\"a\"}},"
          "{\"key\":\"other\",\"range\":{\"gt\":97.5}}]}", true },
        /* other < 90 is most points: equality */
        { "{\"must\":[{\"key\":\"kw\",\"match\":{\"value\":\"a\"}},"
          "{\"key\":\"other\",\"range\":{\"lt\":90}}]}", false },
        { "{\"must\":{\"key\":\"dt\",\"range\":{\"gt\":\"2023-02-08T10:49:00Z\","
          "\"lte\":\"2023-02-08T10:49:00.5Z\"}}}", true },
        { "{\"must\":{\"must\":{\"key\":\"dt\",\"range\":{\"lt\":\"2000-01-01\"}}}}", true },
        { "{\"must\":{\"key\":\"other\",\"range\":{\"gte\":50,\"lt\":10}}}", true },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        filter_t *f = F(cases[i].f);
        coll_info_get(t->a, &i0);
        assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
        coll_info_get(t->a, &i1);
        assert_int_equal(coll_count(t->b, f, &want, &e), ERR_OK);
        if (n != want)
            fail_msg("count %zu vs %zu for %s", n, want, cases[i].f);
        assert_int_equal(i1.index_reads, i0.index_reads + 1);
        assert_int_equal(i1.index_range_reads, i0.index_range_reads + (cases[i].range ? 1 : 0));
        assert_true(i1.index_candidates - i0.index_candidates < i1.points / 4);
        compare_reads(t, cases[i].f);
        filter_free(f);
    }
    /* wrong type of range for the index, or not a pure range: scan */
    static const char *const scans[] = {
        "{\"must\":{\"key\":\"dt\",\"range\":{\"gt\":5}}}",
        "{\"must\":{\"key\":\"other\",\"range\":{\"gt\":\"2023-01-01\"}}}",
        "{\"must\":{\"key\":\"other\",\"range\":{\"gt\":98},\"match\":{\"value\":3}}}",
        "{\"should\":{\"key\":\"other\",\"range\":{\"gt\":98}}}",
        "{\"must_not\":{\"key\":\"other\",\"range\":{\"gt\":98}}}",
    };
    for (size_t i = 0; i < sizeof(scans) / sizeof(scans[0]); i++) {
        filter_t *f = F(scans[i]);
        coll_info_get(t->a, &i0);
        assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
        coll_info_get(t->a, &i1);
        assert_int_equal(coll_count(t->b, f, &want, &e), ERR_OK);
        assert_int_equal(n, want);
        assert_int_equal(i1.index_reads, i0.index_reads);
        filter_free(f);
    }
}

static void test_filter_must_range(void **state)
{
    (void)state;
    filter_range_t r[8];
    filter_t *f = F("{\"must\":[{\"key\":\"a\",\"range\":{\"gt\":1.5,\"lte\":3}},"
                    "{\"key\":\"d\",\"range\":{\"gte\":\"2023-02-08T12:49:00+02:00\"}},"
                    "{\"key\":\"x\",\"range\":{\"gt\":1},\"match\":{\"value\":1}},"
                    "{\"key\":\"y\",\"match\":{\"value\":1}},"
                    "{\"must\":{\"key\":\"e\",\"range\":{}}}],"
                    "\"should\":[{\"key\":\"z\",\"range\":{\"lt\":1}}]}");
    assert_int_equal(filter_must_range(f, r, 8), 3);
    assert_string_equal(r[0].key, "a");
    assert_false(r[0].datetime);
    assert_true(r[0].gt.set && r[0].lte.set && !r[0].gte.set && !r[0].lt.set);
    assert_true(r[0].gt.num == 1.5 && r[0].lte.num == 3);
    assert_string_equal(r[1].key, "d");
    assert_true(r[1].datetime && r[1].gte.set);
    assert_int_equal(r[1].gte.sec, 1675853340);
    assert_int_equal(r[1].gte.nsec, 0);
    assert_string_equal(r[2].key, "e");
    assert_false(r[2].gt.set || r[2].gte.set || r[2].lt.set || r[2].lte.set);
    assert_int_equal(filter_must_range(f, r, 1), 3);
    filter_free(f);
    assert_int_equal(filter_must_range(NULL, r, 8), 0);
}

static void test_filter_must_eq(void **state)
{
    (void)state;
    filter_eq_t eq[8];
    filter_t *f = F("{\"must\":[{\"key\":\"a\",\"match\":{\"value\":\"x\"}},"
                    "{\"key\":\"b\",\"match\":{\"any\":[3,1]}},"
                    "{\"key\":\"c\",\"match\":{\"value\":true}},"
                    "{\"key\":\"d\",\"match\":{\"value\":1},\"range\":{\"gt\":5}},"
                    "{\"key\":\"e\",\"match\":{\"text\":\"x\"}},"
                    "{\"must\":{\"key\":\"f.g\",\"match\":{\"any\":[\"p\",\"q\"]}}}],"
                    "\"should\":[{\"key\":\"z\",\"match\":{\"value\":\"s\"}}],"
                    "\"must_not\":[{\"key\":\"y\",\"match\":{\"value\":\"s\"}}]}");
    assert_int_equal(filter_must_eq(f, eq, 8), 4);
    assert_string_equal(eq[0].key, "a");
    assert_int_equal(eq[0].type, FILTER_EQ_STR);
    assert_int_equal(eq[0].n, 1);
    assert_string_equal(eq[0].strs[0], "x");
    assert_string_equal(eq[1].key, "b");
    assert_int_equal(eq[1].type, FILTER_EQ_INT);
    assert_int_equal(eq[1].n, 2);
    assert_int_equal(eq[1].ints[0], 1);
    assert_int_equal(eq[1].ints[1], 3);
    assert_int_equal(eq[2].type, FILTER_EQ_BOOL);
    assert_true(eq[2].b);
    assert_string_equal(eq[3].key, "f.g");
    assert_int_equal(eq[3].n, 2);
    assert_int_equal(filter_must_eq(f, eq, 1), 4);
    filter_free(f);
    f = F("{\"should\":[{\"key\":\"a\",\"match\":{\"value\":\"x\"}}]}");
    assert_int_equal(filter_must_eq(f, eq, 8), 0);
    filter_free(f);
    f = F("{}");
    assert_int_equal(filter_must_eq(f, eq, 8), 0);
    filter_free(f);
    assert_int_equal(filter_must_eq(NULL, eq, 8), 0);
    assert_true(filter_path_same("a.b", "\"a\".b"));
    assert_true(filter_path_same("a[].b", "a[].b"));
    assert_false(filter_path_same("a[].b", "a.b"));
    assert_false(filter_path_same("a", "ab"));
    assert_false(filter_path_same("a..", "a.."));
}

/* ---- catalog: definitions build indexes, also after a restart ---------- */

static catalog_t *cat_open(const char *dir)
{
    catalog_opts_t o;
    catalog_t *cat = NULL;
    err_t e;

    catalog_opts_default(&o);
    o.storage_path = dir;
    o.wal_sync_mode = WAL_SYNC_NONE;
    if (catalog_open(&o, &cat, &e) != ERR_OK)
        fail_msg("catalog_open: %s", e.msg);
    return cat;
}

static void index_def(catalog_t *cat, catalog_handle_t *h, const char *body)
{
    cJSON *b = J(body);
    err_t e;
    if (catalog_index_create(cat, h, b, &e) != ERR_OK)
        fail_msg("index create %s: %s", body, e.msg);
    cJSON_Delete(b);
}

/* count through the index equals the scan reference; returns index_reads
 * (range: index_range_reads) taken by it (0 or 1). */
static uint64_t count_check2(coll_t *c, twin_t *ref, const char *ftext, bool range)
{
    filter_t *f = F(ftext);
    coll_info_t i0, i1;
    size_t n, want;
    err_t e;

    coll_info_get(c, &i0);
    assert_int_equal(coll_count(c, f, &n, &e), ERR_OK);
    coll_info_get(c, &i1);
    assert_int_equal(coll_count(ref->b, f, &want, &e), ERR_OK);
    if (n != want)
        fail_msg("catalog count %zu, scan %zu for %s", n, want, ftext);
    filter_free(f);
    return range ? i1.index_range_reads - i0.index_range_reads : i1.index_reads - i0.index_reads;
}

static uint64_t count_check(coll_t *c, twin_t *ref, const char *ftext)
{
    return count_check2(c, ref, ftext, false);
}

static uint64_t range_check(coll_t *c, twin_t *ref, const char *ftext)
{
    return count_check2(c, ref, ftext, true);
}

static const char *const fo = "{\"must\":{\"key\":\"other\",\"range\":{\"gte\":95}}}";
static const char *const fd = "{\"must\":[{\"key\":\"dt\",\"range\":{"
                              "\"gte\":\"2023-02-08T10:49:00Z\",\"lt\":\"2024-01-01\"}}]}";
static const char *const ff = "{\"must\":{\"key\":\"f\",\"range\":{\"gt\":0}}}";
static const char *const fi = "{\"must\":{\"key\":\"n\",\"range\":{\"gt\":7.5}}}";

/* The catalog's float, datetime and integer definitions serve ranges; an
 * integer one with "range": false does not. */
static void catalog_ranges_check(coll_t *c, twin_t *t)
{
    assert_int_equal(range_check(c, t, fo), 1);
    assert_int_equal(range_check(c, t, fd), 1);
    assert_int_equal(range_check(c, t, fi), 1);
    assert_int_equal(count_check(c, t, ff), 0);
}

/* The text index params of a catalog definition reach the evaluator: with
 * lowercasing, match.text "B" is token "b" (as match.value "b" on the
 * reference); without, "B" is no token of any value; deleting the
 * definition brings back substrings. */
static void catalog_text_check(catalog_t *cat, catalog_handle_t *h, coll_t *c, twin_t *t)
{
    filter_t *ft = F("{\"must\":{\"key\":\"kw\",\"match\":{\"text\":\"B\"}}}");
    filter_t *fv = F("{\"must\":{\"key\":\"kw\",\"match\":{\"value\":\"b\"}}}");
    size_t n, want;
    err_t e;

    index_def(cat, h, "{\"field_name\":\"kw\",\"field_schema\":{\"type\":\"text\","
                      "\"tokenizer\":\"prefix\",\"min_token_len\":1}}");
    assert_int_equal(coll_count(c, ft, &n, &e), ERR_OK);
    assert_int_equal(coll_count(t->b, fv, &want, &e), ERR_OK);
    assert_true(want > 0);
    assert_int_equal(n, want);
    index_def(cat, h, "{\"field_name\":\"kw\",\"field_schema\":{\"type\":\"text\","
                      "\"lowercase\":false}}");
    assert_int_equal(coll_count(c, ft, &n, &e), ERR_OK);
    assert_int_equal(n, 0);
    filter_free(fv);
    filter_free(ft);
}

static void test_catalog_indexes_survive_restart(void **state)
{
    twin_t *t = *state;
    char dir[4096];
    catalog_handle_t *h;
    coll_info_t info;
    err_t e;
    const char *fk = "{\"must\":{\"key\":\"kw\",\"match\":{\"value\":\"b\"}}}";
    const char *fn = "{\"must\":[{\"key\":\"n\",\"match\":{\"any\":[2,4]}},"
                     "{\"key\":\"other\",\"range\":{\"gte\":30}}]}";

    snprintf(dir, sizeof(dir), "%s/cat", t->dir);
    catalog_t *cat = cat_open(dir);
    cJSON *body = J("{\"vectors\":{\"size\":4,\"distance\":\"Dot\"}}");
    assert_int_equal(catalog_create(cat, "c", body, &e), ERR_OK);
    cJSON_Delete(body);
    assert_int_equal(catalog_acquire(cat, "c", &h, &e), ERR_OK);
    /* the catalog collection gets the same ops as the twin b */
    coll_t *c = catalog_handle_coll(h);
    coll_t *a_saved = t->a;
    t->a = c;
    t->s = tu_seed(99);
    upsert_rand(t, 200, 100000);
    index_def(cat, h, "{\"field_name\":\"kw\",\"field_schema\":\"keyword\"}");
    index_def(cat, h, "{\"field_name\":\"n\",\"field_schema\":{\"type\":\"integer\",\"lookup\":true}}");
    index_def(cat, h, "{\"field_name\":\"other\",\"field_schema\":\"float\"}");
    index_def(cat, h, "{\"field_name\":\"dt\",\"field_schema\":{\"type\":\"datetime\"}}");
    /* integer without range: equality only */
    index_def(cat, h, "{\"field_name\":\"f\",\"field_schema\":{\"type\":\"integer\",\"range\":false}}");
    coll_info_get(c, &info);
    assert_int_equal(info.indexes, 5);
    assert_int_equal(count_check(c, t, fk), 1);
    assert_int_equal(count_check(c, t, fn), 1);
    catalog_ranges_check(c, t);
    upsert_rand(t, 50, 100000);
    for (int i = 0; i < 10; i++)
        mutate(t);
    catalog_release(h);
    t->a = a_saved;
    catalog_close(cat);

    cat = cat_open(dir);
    assert_int_equal(catalog_acquire(cat, "c", &h, &e), ERR_OK);
    c = catalog_handle_coll(h);
    coll_info_get(c, &info);
    assert_int_equal(info.indexes, 5);
    assert_int_equal(count_check(c, t, fk), 1);
    assert_int_equal(count_check(c, t, fn), 1);
    catalog_ranges_check(c, t);
    t->a = c;   /* maintained after the restart too */
    for (int i = 0; i < 10; i++)
        mutate(t);
    t->a = a_saved;
    assert_int_equal(range_check(c, t, fo), 1);
    assert_int_equal(range_check(c, t, fd), 1);
    /* replacing with text: a full-text index, which equality does not use */
    index_def(cat, h, "{\"field_name\":\"kw\",\"field_schema\":\"text\"}");
    assert_int_equal(count_check(c, t, fk), 0);
    catalog_text_check(cat, h, c, t);
    assert_int_equal(catalog_index_delete(cat, h, "n", &e), ERR_OK);
    coll_info_get(c, &info);
    assert_int_equal(info.indexes, 4);
    assert_int_equal(range_check(c, t, fn), 1);  /* now through "other" */
    assert_int_equal(count_check(c, t, fi), 0);
    assert_int_equal(catalog_index_delete(cat, h, "other", &e), ERR_OK);
    assert_int_equal(count_check(c, t, fn), 0);
    assert_int_equal(count_check(c, t, fo), 0);
    index_def(cat, h, "{\"field_name\":\"kw\",\"field_schema\":{\"type\":\"keyword\",\"is_tenant\":true}}");
    assert_int_equal(count_check(c, t, fk), 1);
    catalog_release(h);
    catalog_close(cat);
}

/* ---- timing -------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_index_count_timing(void **state)
{
    twin_t *t = *state;
    const char *env = getenv("VECLOG_INDEX_BENCH_N");
    size_t total = env ? (size_t)strtoull(env, NULL, 10) : 20000, n = 0, m = 0;
    err_t e;

    t->s = tu_seed(5);
    for (size_t done = 0; done < total; done += 1000) {
        op_t op = { .type = OP_UPSERT };
        for (size_t i = 0; i < 1000; i++) {
            op_point_t *p = op_point_add(&op);
            char pl[128];
            float v[DIM] = { 1, 2, 3, 4 };
            p->id = ptid_num(done + i);
            snprintf(pl, sizeof(pl), "{\"tenant\":\"t%zu\",\"n\":%zu,\"other\":%zu}",
                     (done + i) % 1000, (done + i) % 10, (done + i) % 100);
            p->payload = strdup(pl);
            assert_int_equal(op_vec_add(p, "", v, DIM), ERR_OK);
        }
        assert_int_equal(coll_write(t->a, &op, NULL, &e), ERR_OK);
        op_clear(&op);
    }
    filter_t *f = F("{\"must\":[{\"key\":\"tenant\",\"match\":{\"value\":\"t7\"}},"
                    "{\"key\":\"other\",\"range\":{\"gte\":0}}]}");
    int reps = 20;
    double t0 = now_ms();
    for (int i = 0; i < reps; i++)
        assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    double scan = (now_ms() - t0) / reps;
    t0 = now_ms();
    assert_int_equal(coll_index_set(t->a, "tenant", COLL_INDEX_KEYWORD, &e), ERR_OK);
    double build = now_ms() - t0;
    t0 = now_ms();
    for (int i = 0; i < reps; i++)
        assert_int_equal(coll_count(t->a, f, &m, &e), ERR_OK);
    double idx = (now_ms() - t0) / reps;
    assert_int_equal(n, m);
    assert_int_equal(n, (total + 992) / 1000);
    print_message("count over %zu points, 1 in 1000 match: scan %.3f ms, index %.3f ms "
                  "(build %.1f ms)\n", total, scan, idx, build);
    filter_free(f);
}

static void range_bench_upsert(coll_t *c, size_t from, size_t to, size_t mul, size_t total)
{
    err_t e;
    for (size_t done = from; done < to; done += 1000) {
        op_t op = { .type = OP_UPSERT };
        for (size_t i = done; i < done + 1000 && i < to; i++) {
            op_point_t *p = op_point_add(&op);
            char pl[128];
            float v[DIM] = { 1, 2, 3, 4 };
            p->id = ptid_num(i);
            snprintf(pl, sizeof(pl), "{\"x\":%.6f,\"when\":\"2024-01-01T00:00:%02zu.%03zuZ\"}",
                     (double)((i * mul) % total) * 100.0 / (double)total, (i * mul) % 60,
                     (i * mul) % 1000);
            p->payload = strdup(pl);
            assert_int_equal(op_vec_add(p, "", v, DIM), ERR_OK);
        }
        assert_int_equal(coll_write(c, &op, NULL, &e), ERR_OK);
        op_clear(&op);
    }
}

static size_t count_of_filter(coll_t *c, const char *ft)
{
    filter_t *f = F(ft);
    size_t n = 0;
    err_t e;
    assert_int_equal(coll_count(c, f, &n, &e), ERR_OK);
    filter_free(f);
    return n;
}

/* A selective range count (1 in 1000 points), scan vs ordered index; then
 * rewrites and deletes at scale, checked against a scan. */
static void test_range_count_timing(void **state)
{
    twin_t *t = *state;
    const char *env = getenv("VECLOG_INDEX_BENCH_N");
    size_t total = env ? (size_t)strtoull(env, NULL, 10) : 20000, n = 0, m = 0;
    const char *fx = "{\"must\":{\"key\":\"x\",\"range\":{\"gte\":42.0,\"lt\":42.1}}}";
    const char *fw = "{\"must\":{\"key\":\"when\",\"range\":{\"gt\":\"2024-01-01T00:00:07.100Z\","
                     "\"lte\":\"2024-01-01T00:00:07.120Z\"}}}";
    err_t e;

    range_bench_upsert(t->a, 0, total, 1, total);
    filter_t *f = F(fx);
    int reps = 20;
    double t0 = now_ms();
    for (int i = 0; i < reps; i++)
        assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    double scan = (now_ms() - t0) / reps;
    t0 = now_ms();
    assert_int_equal(coll_index_set(t->a, "x", COLL_INDEX_FLOAT, &e), ERR_OK);
    double build = now_ms() - t0;
    assert_int_equal(coll_index_set(t->a, "when", COLL_INDEX_DATETIME, &e), ERR_OK);
    coll_info_t i0, i1;
    coll_info_get(t->a, &i0);
    t0 = now_ms();
    for (int i = 0; i < reps; i++)
        assert_int_equal(coll_count(t->a, f, &m, &e), ERR_OK);
    double idx = (now_ms() - t0) / reps;
    coll_info_get(t->a, &i1);
    assert_int_equal(i1.index_range_reads, i0.index_range_reads + (uint64_t)reps);
    assert_int_equal(n, m);
    assert_true(n > 0 && n <= total / 1000 + 1);
    print_message("range count over %zu points, %zu match: scan %.3f ms, index %.3f ms "
                  "(build %.1f ms)\n", total, n, scan, idx, build);
    filter_free(f);
    /* rewrite a third with other values, delete a slice: index vs scan */
    range_bench_upsert(t->a, 0, total / 3, 7, total);
    op_t del = { .type = OP_DELETE };
    for (size_t i = total / 2; i < total / 2 + total / 10; i++)
        op_point_add(&del)->id = ptid_num(i);
    assert_int_equal(coll_write(t->a, &del, NULL, &e), ERR_OK);
    op_clear(&del);
    size_t ix = count_of_filter(t->a, fx), iw = count_of_filter(t->a, fw);
    coll_info_get(t->a, &i0);
    assert_int_equal(coll_tombstones_purge(t->a, i0.applied_seq, &n, &e), ERR_OK);
    assert_int_equal(count_of_filter(t->a, fx), ix);
    assert_int_equal(count_of_filter(t->a, fw), iw);
    coll_info_get(t->a, &i1);
    assert_int_equal(i1.index_range_reads, i0.index_range_reads + 2);
    coll_index_drop(t->a, "x");
    coll_index_drop(t->a, "when");
    assert_int_equal(count_of_filter(t->a, fx), ix);
    assert_int_equal(count_of_filter(t->a, fw), iw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_must_eq),
        cmocka_unit_test(test_filter_must_range),
        cmocka_unit_test_setup_teardown(test_range_path_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_reads_equal_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_path_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_indexes_survive_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_count_timing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_count_timing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
