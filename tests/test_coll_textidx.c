/*
 * test_coll_textidx.c - full-text and geo payload indexes (coll_textidx.c,
 * the geo cells of coll_index.c) and the filter semantics they bring.
 *
 * Text: with a text index on a field, match.text / text_any / phrase use
 * Qdrant's token semantics, so the expected answer is computed here by a
 * separate, deliberately simple reference tokenizer (ASCII only: the
 * random vocabulary is ASCII) and compared with the ids the collection
 * returns, for random documents (strings, arrays of strings, other types)
 * and random queries under random index params (word / whitespace /
 * prefix, lowercase, min / max token length, phrase_matching), through
 * overwrites and deletes.  Dropping the index must bring back substring
 * semantics (the reference computes those too).  filter_tokenize gets
 * hand-written cases (punctuation, case, lengths, prefixes, Unicode).
 *
 * Geo: a twin collection without the index receives the same ops; counts
 * and ids must be identical for random boxes (also across the
 * antimeridian and inverted), radii (around the poles, across the
 * antimeridian, larger than the Earth) and polygons over random points
 * (clustered at the poles and the antimeridian, out-of-range and
 * malformed values, arrays).
 *
 * coll_info's index_reads / index_candidates prove the index was used.
 * Seeds are printed; VECLOG_TEST_SEED replays a failure.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/coll.h"
#include "store/coll_internal.h"
#include "store/filter.h"
#include "store/log.h"
#include "tests/testutil.h"

#define DIM 2
#define NPTS 300

static const coll_vector_def_t k_def = { .name = (char *)"", .dim = DIM, .metric = 1 };

typedef struct env {
    char *dir;
    coll_t *a, *b;            /* b: no index (geo reference) */
    uint64_t s;
} env_t;

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
    env_t *t = calloc(1, sizeof(*t));
    char p[4096];

    log_level_set(LOG_ERROR);
    t->dir = tu_tmpdir("coll_textidx");
    snprintf(p, sizeof(p), "%s/a", t->dir);
    t->a = open_coll(p);
    snprintf(p, sizeof(p), "%s/b", t->dir);
    t->b = open_coll(p);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    env_t *t = *state;
    coll_close(t->a);
    coll_close(t->b);
    tu_rmrf(t->dir);
    free(t->dir);
    free(t);
    return 0;
}

static filter_t *F(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    filter_t *f = NULL;
    err_t e;
    if (j == NULL || filter_parse(j, &f, &e) != ERR_OK)
        fail_msg("filter %s: %s", text, j ? e.msg : "bad JSON");
    cJSON_Delete(j);
    return f;
}

/* Upsert point id with payload (JSON text, NULL: none) into c. */
static void put(coll_t *c, uint64_t id, const char *payload)
{
    op_t op = { .type = OP_UPSERT };
    op_point_t *p = op_point_add(&op);
    float v[DIM] = { 1, (float)id };
    err_t e;

    p->id = (ptid_t){ .kind = PTID_NUM, .num = id };
    p->payload = payload ? strdup(payload) : NULL;
    assert_int_equal(op_vec_add(p, "", v, DIM), ERR_OK);
    if (coll_write(c, &op, NULL, &e) != ERR_OK)
        fail_msg("write: %s", e.msg);
    op_clear(&op);
}

static void del(coll_t *c, uint64_t id)
{
    op_t op = { .type = OP_DELETE };
    err_t e;

    op_point_add(&op)->id = (ptid_t){ .kind = PTID_NUM, .num = id };
    if (coll_write(c, &op, NULL, &e) != ERR_OK)
        fail_msg("delete: %s", e.msg);
    op_clear(&op);
}

/* The ids matching f, as a bitmap over [0, NPTS). */
static void match_ids(coll_t *c, const filter_t *f, bool *out)
{
    coll_sel_t sel = { .payload = COLL_PAYLOAD_NONE, .vector = COLL_VECTOR_NONE };
    coll_scroll_req_t r = { .filter = f, .limit = NPTS + 10, .sel = &sel };
    cJSON *pts, *next, *it;
    err_t e;
    size_t n;

    memset(out, 0, NPTS);
    assert_int_equal(coll_scroll(c, &r, &pts, &next, &e), ERR_OK);
    cJSON_ArrayForEach(it, pts) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        assert_true(cJSON_IsNumber(id) && id->valuedouble < NPTS);
        out[(int)id->valuedouble] = true;
    }
    n = (size_t)cJSON_GetArraySize(pts);
    cJSON_Delete(pts);
    cJSON_Delete(next);
    size_t cnt;
    assert_int_equal(coll_count(c, f, &cnt, &e), ERR_OK);
    assert_int_equal(cnt, n);
}

/* ---- the reference tokenizer (ASCII) ------------------------------------ */

#define RTOK 64
#define RMAX 48

typedef struct rtoks {
    char t[RMAX][RTOK];
    size_t n;
} rtoks_t;

static void rpush(rtoks_t *r, const char *w, size_t len)
{
    if (r->n < RMAX) {
        memcpy(r->t[r->n], w, len);
        r->t[r->n][len] = '\0';
        r->n++;
    }
}

/* What Qdrant's tokenizers make of ASCII text, written from its docs. */
static void rtokenize(const filter_text_params_t *tp, const char *s, bool doc, rtoks_t *r)
{
    char w[RTOK];

    r->n = 0;
    while (*s) {
        size_t len = 0;
        bool ws = tp->tokenizer == FILTER_TOK_WHITESPACE;
        while (*s && (ws ? isspace((unsigned char)*s) : !isalnum((unsigned char)*s)))
            s++;
        while (*s && !(ws ? isspace((unsigned char)*s) : !isalnum((unsigned char)*s)) &&
               len < RTOK - 1)
            w[len++] = tp->lowercase ? (char)tolower((unsigned char)*s++) : *s++;
        if (len == 0 || len < tp->min_token_len)
            continue;
        if (tp->tokenizer != FILTER_TOK_PREFIX) {
            if (len <= tp->max_token_len)
                rpush(r, w, len);
        } else if (!doc) {
            rpush(r, w, len < tp->max_token_len ? len : tp->max_token_len);
        } else {
            for (size_t k = tp->min_token_len ? tp->min_token_len : 1;
                 k <= len && k <= tp->max_token_len; k++)
                rpush(r, w, k);
        }
    }
}

static bool rhas(const rtoks_t *r, const char *tok)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->t[i], tok) == 0)
            return true;
    return false;
}

/* The strings of a payload's field "t": a string, or the strings of an
 * array. */
static size_t strs_of(const cJSON *payload, const char **out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(payload, "t"), *el;
    size_t n = 0;

    if (cJSON_IsString(v))
        out[n++] = v->valuestring;
    else if (cJSON_IsArray(v))
        cJSON_ArrayForEach(el, v)
            if (cJSON_IsString(el) && n < cap)
                out[n++] = el->valuestring;
    return n;
}

static bool ref_phrase(const filter_text_params_t *tp, const char *s, const rtoks_t *ph)
{
    rtoks_t d;

    rtokenize(tp, s, true, &d);
    for (size_t i = 0; ph->n > 0 && i + ph->n <= d.n; i++) {
        size_t k = 0;
        while (k < ph->n && strcmp(d.t[i + k], ph->t[k]) == 0)
            k++;
        if (k == ph->n)
            return true;
    }
    return false;
}

/* op: 0 text, 1 text_any, 2 phrase.  tp NULL: no index (substrings). */
static bool ref_match(const filter_text_params_t *tp, int op, const char *q, const cJSON *payload)
{
    const char *strs[16];
    size_t ns = strs_of(payload, strs, 16);
    rtoks_t qt, d;

    if (tp == NULL) {
        for (size_t i = 0; i < ns; i++) {
            if (op != 1 && strstr(strs[i], q) != NULL)
                return true;
            if (op == 1) { /* any whitespace token of the query */
                filter_text_params_t w = { FILTER_TOK_WHITESPACE, false, false, 0, SIZE_MAX };
                rtokenize(&w, q, false, &qt);
                for (size_t k = 0; k < qt.n; k++)
                    if (strstr(strs[i], qt.t[k]) != NULL)
                        return true;
            }
        }
        return false;
    }
    if (op == 2) {
        rtokenize(tp, q, true, &qt);
        for (size_t i = 0; tp->phrase_matching && i < ns; i++)
            if (ref_phrase(tp, strs[i], &qt))
                return true;
        return false;
    }
    rtokenize(tp, q, false, &qt);
    if (qt.n == 0)
        return false;
    for (size_t k = 0; k < qt.n; k++) {
        bool found = false;
        for (size_t i = 0; i < ns && !found; i++) {
            rtokenize(tp, strs[i], true, &d);
            found = rhas(&d, qt.t[k]);
        }
        if (found != (op == 0))
            return found;
    }
    return op == 0;
}

/* ---- tokenizer cases ----------------------------------------------------- */

typedef struct tokbuf {
    char s[512];
    size_t n;
} tokbuf_t;

static bool tok_cat(void *arg, const char *tok, size_t len)
{
    tokbuf_t *b = arg;
    if (b->n + len + 2 < sizeof(b->s)) {
        memcpy(b->s + b->n, tok, len);
        b->n += len;
        b->s[b->n++] = '|';
        b->s[b->n] = '\0';
    }
    return true;
}

static void expect_toks(int tok, bool lower, size_t min, size_t max, bool doc, const char *text,
                        const char *want)
{
    filter_text_params_t tp = { tok, lower, false, min, max };
    tokbuf_t b = { "", 0 };

    filter_tokenize(&tp, text, doc, tok_cat, &b);
    if (strcmp(b.s, want) != 0)
        fail_msg("tokenize(%d, \"%s\"): \"%s\", want \"%s\"", tok, text, b.s, want);
}

static void test_coll_index_tokenizer(void **state)
{
    (void)state;
    const size_t X = SIZE_MAX;
    expect_toks(FILTER_TOK_WORD, true, 0, X, true, "Hello, World! foo-bar_baz 42x",
                "hello|world|foo|bar|baz|42x|");
    expect_toks(FILTER_TOK_WORD, false, 0, X, true, "Hello, World!", "Hello|World|");
    expect_toks(FILTER_TOK_WHITESPACE, true, 0, X, true, " Hello,  World!\tx ",
                "hello,|world!|x|");
    expect_toks(FILTER_TOK_WORD, true, 2, 4, true, "a bb ccc dddd eeeee", "bb|ccc|dddd|");
    /* Qdrant's test_prefix_tokenizer / test_prefix_query_tokenizer */
    expect_toks(FILTER_TOK_PREFIX, true, 1, 4, true, "hello, мир!",
                "h|he|hel|hell|м|ми|мир|");
    expect_toks(FILTER_TOK_PREFIX, true, 0, 4, false, "hello, мир!", "hell|мир|");
    expect_toks(FILTER_TOK_PREFIX, true, 3, X, true, "Hi, ABCD", "abc|abcd|");
    expect_toks(FILTER_TOK_PREFIX, true, 3, X, false, "Hi, ABCD", "abcd|");
    /* Unicode letters, case and punctuation; length in characters */
    expect_toks(FILTER_TOK_WORD, true, 0, X, true, "Привет, мир! ÉCOLE «x» Ωμέγα",
                "привет|мир|école|x|ωμέγα|");
    expect_toks(FILTER_TOK_WORD, true, 0, 3, true, "мир миру", "мир|");
    expect_toks(FILTER_TOK_WORD, true, 0, X, true, "ΟΔΟΣ", "οδος|");
    expect_toks(FILTER_TOK_WORD, true, 0, X, true, "", "");
    expect_toks(FILTER_TOK_MULTILINGUAL, true, 0, X, true, "Hello world", "hello|world|");
}

/* ---- text: random documents and queries --------------------------------- */

static const char *const k_words[] = {
    "apple", "Apple", "APPLES", "app", "banana", "ban", "b", "cherry", "pie", "cherry-pie",
    "x1", "the", "a.b", "zebra", "Zebras", "it's",
};
#define NWORDS (sizeof(k_words) / sizeof(k_words[0]))
static const char *const k_seps[] = { " ", ", ", "-", "  ", "! ", "\t" };

static void rand_text(uint64_t *s, char *buf, size_t cap)
{
    size_t n = 1 + tu_rand(s) % 5, w = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            w += (size_t)snprintf(buf + w, cap - w, "%s", k_seps[tu_rand(s) % 6]);
        w += (size_t)snprintf(buf + w, cap - w, "%s", k_words[tu_rand(s) % NWORDS]);
    }
}

static char *rand_doc(uint64_t *s)
{
    char a[128], b[128], out[512];
    uint64_t r = tu_rand(s) % 10;

    rand_text(s, a, sizeof(a));
    rand_text(s, b, sizeof(b));
    if (r < 6)
        snprintf(out, sizeof(out), "{\"t\":\"%s\"}", a);
    else if (r < 8)
        snprintf(out, sizeof(out), "{\"t\":[\"%s\",3,\"%s\"]}", a, b);
    else if (r < 9)
        snprintf(out, sizeof(out), "{\"t\":7,\"u\":\"%s\"}", a);
    else
        snprintf(out, sizeof(out), "{\"u\":1}");
    return strdup(out);
}

typedef struct tdocs {
    char *doc[NPTS];          /* NULL: deleted */
    cJSON *json[NPTS];
} tdocs_t;

static void tdoc_set(env_t *t, tdocs_t *d, size_t i, char *doc)
{
    free(d->doc[i]);
    cJSON_Delete(d->json[i]);
    d->doc[i] = doc;
    d->json[i] = doc ? cJSON_Parse(doc) : NULL;
    if (doc)
        put(t->a, i, doc);
    else
        del(t->a, i);
}

static size_t g_text_hits; /* matches seen: the random test is not vacuous */

static void text_check(env_t *t, const tdocs_t *d, const filter_text_params_t *tp, int op,
                       const char *q)
{
    static const char *const ops[] = { "text", "text_any", "phrase" };
    char ftext[256];
    bool got[NPTS];

    snprintf(ftext, sizeof(ftext), "{\"must\":[{\"key\":\"t\",\"match\":{\"%s\":\"%s\"}}]}",
             ops[op], q);
    filter_t *f = F(ftext);
    match_ids(t->a, f, got);
    for (size_t i = 0; i < NPTS; i++) {
        bool want = d->json[i] != NULL && ref_match(tp, op, q, d->json[i]);
        g_text_hits += want;
        if (got[i] != want)
            fail_msg("%s: point %zu (%s) got %d want %d (tokenizer %d lower %d min %zu max %zu "
                     "phrase %d)", ftext, i, d->doc[i], got[i], want, tp ? tp->tokenizer : -1,
                     tp ? tp->lowercase : 0, tp ? tp->min_token_len : 0,
                     tp ? tp->max_token_len : 0, tp ? tp->phrase_matching : 0);
    }
    filter_free(f);
}

static void rand_query(uint64_t *s, char *q, size_t cap)
{
    if (tu_rand(s) % 4 == 0) { /* a prefix of a word */
        const char *w = k_words[tu_rand(s) % NWORDS];
        snprintf(q, cap, "%.*s", (int)(1 + tu_rand(s) % strlen(w)), w);
    } else {
        rand_text(s, q, cap);
    }
}

static void test_coll_index_text_random(void **state)
{
    env_t *t = *state;
    tdocs_t d = { { 0 }, { 0 } };
    uint64_t seed = tu_seed(0x7e47);
    coll_info_t i0, i1;
    err_t e;

    t->s = seed;
    g_text_hits = 0;
    for (size_t i = 0; i < NPTS; i++)
        tdoc_set(t, &d, i, rand_doc(&t->s));
    for (int round = 0; round < 24; round++) {
        filter_text_params_t tp = {
            .tokenizer = (int)(tu_rand(&t->s) % 3), .lowercase = tu_rand(&t->s) % 3 != 0,
            .phrase_matching = tu_rand(&t->s) & 1, .min_token_len = tu_rand(&t->s) % 3,
            .max_token_len = tu_rand(&t->s) % 2 ? SIZE_MAX : 3 + tu_rand(&t->s) % 4,
        };
        assert_int_equal(coll_index_set_text(t->a, "t", &tp, &e), ERR_OK);
        coll_info_get(t->a, &i0);
        for (int k = 0; k < 30; k++) {
            char q[128];
            rand_query(&t->s, q, sizeof(q));
            text_check(t, &d, &tp, (int)(tu_rand(&t->s) % 3), q);
            if (k % 5 == 4) /* overwrite or delete: the index follows */
                tdoc_set(t, &d, tu_rand(&t->s) % NPTS,
                         tu_rand(&t->s) % 4 ? rand_doc(&t->s) : NULL);
        }
        coll_info_get(t->a, &i1);
        /* scroll and count each plan: every query above took the index */
        assert_int_equal(i1.index_reads - i0.index_reads, 60);
    }
    assert_true(g_text_hits > 24 * 30 * 10);
    /* no index: substring semantics again */
    coll_index_drop(t->a, "t");
    coll_info_get(t->a, &i0);
    for (int k = 0; k < 60; k++) {
        char q[128];
        rand_query(&t->s, q, sizeof(q));
        text_check(t, &d, NULL, (int)(tu_rand(&t->s) % 3), q);
    }
    coll_info_get(t->a, &i1);
    assert_int_equal(i1.index_reads, i0.index_reads);
    fprintf(stderr, "text matches checked: %zu\n", g_text_hits);
    for (size_t i = 0; i < NPTS; i++)
        tdoc_set(t, &d, i, NULL);
}

/* Hand-picked semantics: token vs substring, arrays, phrases, selectivity. */
static void test_coll_index_text_semantics(void **state)
{
    env_t *t = *state;
    filter_text_params_t tp = { FILTER_TOK_WORD, true, true, 0, SIZE_MAX };
    coll_info_t i0, i1;
    size_t n;
    err_t e;

    put(t->a, 1, "{\"t\":\"The quick brown fox\"}");
    put(t->a, 2, "{\"t\":[\"quick\",\"brown fox\"]}");
    put(t->a, 3, "{\"t\":\"tokens everywhere\"}");
    for (uint64_t i = 10; i < 200; i++)
        put(t->a, i, "{\"t\":\"filler words only\"}");
    static const struct { const char *f; size_t no_index, word; } cases[] = {
        { "{\"key\":\"t\",\"match\":{\"text\":\"tok\"}}", 1, 0 },
        { "{\"key\":\"t\",\"match\":{\"text\":\"TOKENS\"}}", 0, 1 },
        { "{\"key\":\"t\",\"match\":{\"text\":\"fox quick\"}}", 0, 2 },
        { "{\"key\":\"t\",\"match\":{\"text\":\"\"}}", 193, 0 },
        { "{\"key\":\"t\",\"match\":{\"text\":\"!!\"}}", 0, 0 },
        { "{\"key\":\"t\",\"match\":{\"text_any\":\"cat fox\"}}", 2, 2 },
        { "{\"key\":\"t\",\"match\":{\"phrase\":\"quick brown\"}}", 1, 1 },
        { "{\"key\":\"t\",\"match\":{\"phrase\":\"brown fox\"}}", 2, 2 },
        { "{\"key\":\"t\",\"match\":{\"phrase\":\"Quick, Brown!\"}}", 0, 1 },
        { "{\"key\":\"t\",\"match\":{\"phrase\":\"fox brown\"}}", 0, 0 },
    };
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            char ft[256];
            snprintf(ft, sizeof(ft), "{\"must\":%s}", cases[i].f);
            filter_t *f = F(ft);
            assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
            if (n != (pass ? cases[i].word : cases[i].no_index))
                fail_msg("%s (%s): %zu", ft, pass ? "index" : "no index", n);
            filter_free(f);
        }
        assert_int_equal(coll_index_set_text(t->a, "t", &tp, &e), ERR_OK);
    }
    /* the posting lists are the candidates: 1 for "tokens", not 193 */
    filter_t *f = F("{\"must\":{\"key\":\"t\",\"match\":{\"text\":\"tokens\"}}}");
    coll_info_get(t->a, &i0);
    assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    coll_info_get(t->a, &i1);
    assert_int_equal(i1.index_reads, i0.index_reads + 1);
    assert_int_equal(i1.index_candidates - i0.index_candidates, 1);
    filter_free(f);
    /* phrase without phrase_matching matches nothing (Qdrant's check_match) */
    tp.phrase_matching = false;
    assert_int_equal(coll_index_set_text(t->a, "t", &tp, &e), ERR_OK);
    f = F("{\"must\":{\"key\":\"t\",\"match\":{\"phrase\":\"brown fox\"}}}");
    assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    assert_int_equal(n, 0);
    filter_free(f);
    /* in must_not / should the token semantics hold too */
    f = F("{\"must_not\":{\"key\":\"t\",\"match\":{\"text\":\"tok\"}}}");
    assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    assert_int_equal(n, 193);
    filter_free(f);
    /* updates and deletes */
    put(t->a, 3, "{\"t\":\"nothing here\"}");
    put(t->a, 4, "{\"t\":\"tokens again\"}");
    del(t->a, 1);
    f = F("{\"must\":{\"key\":\"t\",\"match\":{\"text\":\"tokens\"}}}");
    assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    assert_int_equal(n, 1);
    filter_free(f);
    f = F("{\"must\":{\"key\":\"t\",\"match\":{\"text\":\"quick\"}}}");
    assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    assert_int_equal(n, 1);
    filter_free(f);
}

/* ---- geo ------------------------------------------------------------------ */

static double rand_lat(uint64_t *s)
{
    switch (tu_rand(s) % 6) {
    case 0: return 90 - tu_randf(s) * 0.5;
    case 1: return -90 + tu_randf(s) * 0.5;
    case 2: return (double)((int)(tu_rand(s) % 5) - 2) * 45; /* on cell edges */
    default: return tu_randf(s) * 180 - 90;
    }
}

static double rand_lon(uint64_t *s)
{
    switch (tu_rand(s) % 6) {
    case 0: return 180 - tu_randf(s) * 0.5;
    case 1: return -180 + tu_randf(s) * 0.5;
    case 2: return (double)((int)(tu_rand(s) % 9) - 4) * 45;
    default: return tu_randf(s) * 360 - 180;
    }
}

static char *rand_geo_doc(uint64_t *s)
{
    char out[256];
    uint64_t r = tu_rand(s) % 12;

    if (r < 7)
        snprintf(out, sizeof(out), "{\"g\":{\"lon\":%.9g,\"lat\":%.9g}}", rand_lon(s), rand_lat(s));
    else if (r < 9)
        snprintf(out, sizeof(out), "{\"g\":[{\"lon\":%.9g,\"lat\":%.9g},{\"lon\":%.9g,\"lat\":%.9g}]}",
                 rand_lon(s), rand_lat(s), rand_lon(s), rand_lat(s));
    else if (r < 10) /* outside the world box: still a point to the evaluator */
        snprintf(out, sizeof(out), "{\"g\":{\"lon\":%.9g,\"lat\":95}}", rand_lon(s));
    else if (r < 11)
        snprintf(out, sizeof(out), "{\"g\":{\"lon\":\"x\",\"lat\":1}}");
    else
        snprintf(out, sizeof(out), "{\"h\":1}");
    return strdup(out);
}

static void rand_geo_cond(uint64_t *s, char *buf, size_t cap)
{
    static const double radii[] = { 10, 1000, 1e5, 1e6, 5e6, 2.1e7 };
    uint64_t r = tu_rand(s) % 3;

    if (r == 0) {
        double a = rand_lat(s), b = rand_lat(s);
        if (tu_rand(s) % 5) { /* mostly top above bottom */
            double x = a > b ? a : b;
            b = a > b ? b : a;
            a = x;
        }
        snprintf(buf, cap, "\"geo_bounding_box\":{\"top_left\":{\"lon\":%.9g,\"lat\":%.9g},"
                 "\"bottom_right\":{\"lon\":%.9g,\"lat\":%.9g}}", rand_lon(s), a, rand_lon(s), b);
    } else if (r == 1) {
        snprintf(buf, cap, "\"geo_radius\":{\"center\":{\"lon\":%.9g,\"lat\":%.9g},\"radius\":%g}",
                 rand_lon(s), rand_lat(s), radii[tu_rand(s) % 6] * (0.5 + tu_randf(s)));
    } else {
        double lon = rand_lon(s) * 0.9, lat = rand_lat(s) * 0.9, w = 0.01 + tu_randf(s) * 15;
        double x0 = lon - w < -180 ? -180 : lon - w, x1 = lon + w > 180 ? 180 : lon + w;
        double y0 = lat - w < -90 ? -90 : lat - w, y1 = lat + w > 90 ? 90 : lat + w;
        snprintf(buf, cap, "\"geo_polygon\":{\"exterior\":{\"points\":[{\"lon\":%.9g,\"lat\":%.9g},"
                 "{\"lon\":%.9g,\"lat\":%.9g},{\"lon\":%.9g,\"lat\":%.9g},{\"lon\":%.9g,\"lat\":%.9g}]}}",
                 x0, y0, x1, y0, (x0 + x1) / 2, y1, x0, y0);
    }
}

static void geo_put_both(env_t *t, uint64_t id, bool delete)
{
    if (delete) {
        del(t->a, id);
        del(t->b, id);
        return;
    }
    char *doc = rand_geo_doc(&t->s);
    put(t->a, id, doc);
    put(t->b, id, doc);
    free(doc);
}

static void test_coll_index_geo_random(void **state)
{
    env_t *t = *state;
    coll_info_t i0, i1;
    bool ga[NPTS], gb[NPTS];
    err_t e;

    t->s = tu_seed(0x6e0);
    for (uint64_t i = 0; i < NPTS / 2; i++)
        geo_put_both(t, i, false);
    assert_int_equal(coll_index_set(t->a, "g", COLL_INDEX_GEO, &e), ERR_OK); /* from memory */
    for (uint64_t i = NPTS / 2; i < NPTS; i++)
        geo_put_both(t, i, false); /* by the applier */
    coll_info_get(t->a, &i0);
    int reads = 0;
    size_t hits = 0;
    for (int k = 0; k < 400; k++) {
        char cond[512], ft[700];
        rand_geo_cond(&t->s, cond, sizeof(cond));
        snprintf(ft, sizeof(ft), "{\"must\":[{\"key\":\"g\",%s}]}", cond);
        filter_t *f = F(ft);
        match_ids(t->a, f, ga);
        match_ids(t->b, f, gb);
        reads += 2;
        for (size_t i = 0; i < NPTS; i++) {
            if (ga[i] != gb[i])
                fail_msg("%s: point %zu: index %d, scan %d", ft, i, ga[i], gb[i]);
            hits += ga[i];
        }
        filter_free(f);
        if (k % 4 == 3)
            geo_put_both(t, tu_rand(&t->s) % NPTS, tu_rand(&t->s) % 5 == 0);
    }
    coll_info_get(t->a, &i1);
    assert_int_equal(i1.index_reads - i0.index_reads, (uint64_t)reads);
    fprintf(stderr, "geo matches: %zu, candidates examined: %" PRIu64 "\n", hits,
            i1.index_candidates - i0.index_candidates);
    assert_true(hits > 400);
    coll_info_get(t->b, &i1);
    assert_int_equal(i1.index_reads, 0);
}

/* A small region examines few candidates; geo inside should is not planned. */
static void test_coll_index_geo_path_taken(void **state)
{
    env_t *t = *state;
    coll_info_t i0, i1;
    size_t n, want;
    err_t e;

    for (uint64_t i = 0; i < NPTS; i++) {
        char doc[128];
        snprintf(doc, sizeof(doc), "{\"g\":{\"lon\":%g,\"lat\":%g}}", (double)(i % 100) - 50.0,
                 (double)(i / 100) * 10);
        put(t->a, i, doc);
        put(t->b, i, doc);
    }
    assert_int_equal(coll_index_set(t->a, "g", COLL_INDEX_GEO, &e), ERR_OK);
    filter_t *f = F("{\"must\":{\"key\":\"g\",\"geo_radius\":{\"center\":{\"lon\":0,\"lat\":10},"
                    "\"radius\":200000}}}");
    coll_info_get(t->a, &i0);
    assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    coll_info_get(t->a, &i1);
    assert_int_equal(coll_count(t->b, f, &want, &e), ERR_OK);
    assert_int_equal(n, want);
    assert_true(n >= 3);
    assert_int_equal(i1.index_reads, i0.index_reads + 1);
    assert_true(i1.index_candidates - i0.index_candidates < 20);
    filter_free(f);
    f = F("{\"should\":{\"key\":\"g\",\"geo_radius\":{\"center\":{\"lon\":0,\"lat\":10},"
          "\"radius\":200000}}}");
    assert_int_equal(coll_count(t->a, f, &n, &e), ERR_OK);
    coll_info_get(t->a, &i0);
    assert_int_equal(i0.index_reads, i1.index_reads);
    assert_int_equal(n, want);
    filter_free(f);
}

static void test_coll_index_filter_must_text_geo(void **state)
{
    (void)state;
    filter_text_t tx[4];
    filter_geo_t g[4];
    filter_t *f = F("{\"must\":[{\"key\":\"a\",\"match\":{\"text\":\"x y\"}},"
                    "{\"key\":\"b\",\"match\":{\"phrase\":\"p\"}},"
                    "{\"must\":{\"key\":\"c\",\"match\":{\"text_any\":\"q\"}}},"
                    "{\"key\":\"d\",\"match\":{\"text\":\"x\"},\"range\":{\"gt\":1}},"
                    "{\"key\":\"g\",\"geo_bounding_box\":{\"top_left\":{\"lon\":170,\"lat\":10},"
                    "\"bottom_right\":{\"lon\":-170,\"lat\":-10}}},"
                    "{\"key\":\"h\",\"geo_radius\":{\"center\":{\"lon\":0,\"lat\":89.9},"
                    "\"radius\":100000}}],"
                    "\"should\":{\"key\":\"e\",\"match\":{\"text\":\"z\"}}}");

    assert_int_equal(filter_must_text(f, tx, 4), 3);
    assert_string_equal(tx[0].key, "a");
    assert_int_equal(tx[0].op, FILTER_TEXT_ALL);
    assert_string_equal(tx[0].query, "x y");
    assert_int_equal(tx[1].op, FILTER_TEXT_PHRASE);
    assert_int_equal(tx[2].op, FILTER_TEXT_ANY);
    assert_string_equal(tx[2].query, "q");
    assert_int_equal(filter_must_geo(f, g, 4), 2);
    assert_int_equal(g[0].n_lon, 2); /* across the antimeridian */
    assert_true(g[0].lon_lo[0] == 170 && g[0].lon_hi[0] == 180);
    assert_true(g[0].lon_lo[1] == -180 && g[0].lon_hi[1] == -170);
    assert_int_equal(g[1].n_lon, 1); /* around the pole: every longitude */
    assert_true(g[1].lon_lo[0] == -180 && g[1].lon_hi[0] == 180 && g[1].lat_hi == 90);
    filter_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coll_index_tokenizer),
        cmocka_unit_test(test_coll_index_filter_must_text_geo),
        cmocka_unit_test_setup_teardown(test_coll_index_text_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_index_text_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_index_geo_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coll_index_geo_path_taken, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
