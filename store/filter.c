/*
 * filter.c - evaluation of compiled Qdrant filters; see filter.h.
 * filter_parse.c turns JSON into the tree of filter_internal.h, this file
 * walks that tree for one point at a time.
 *
 * Design
 * ------
 * filter_match is on the hot path of every scan, so it never allocates and
 * never re-parses the filter: key paths are pre-split into segments,
 * datetime bounds are instants, id and value lists are sorted for binary
 * search.  Values are found by walking the payload along a path and handing
 * each value to a visitor that can stop the walk, so "any value matches"
 * conditions exit at the first hit and nothing is collected into a buffer.
 *
 * Semantics (Qdrant 1.19, unindexed fields; lib/segment/src/json_path,
 * payload_storage/query_checker.rs, payload_storage/condition_checker.rs,
 * common/utils.rs, types.rs)
 * ----------------------------------------------------------------------
 * Paths.  "a.b" descends into objects only: if `a` is an array, "a.b"
 * finds nothing (use "a[].b").  "a[]" yields every element of an array,
 * "a[3]" one element; either on a non-array finds nothing.  A path yields
 * zero or more values; a value may itself be an array.
 *
 * Field condition ({"key": ..., <condition>}).  No value at the path: the
 * result is that of "check_empty": values_count bounds are checked against
 * a count of 0, is_empty:X gives X, is_null:X gives !X, every other
 * condition is false (so match.except on a missing field is false).
 * Otherwise the point matches if ANY value passes:
 *   - values_count: count = 0 for null, the length for an array, else 1;
 *   - is_empty:X: null -> X, array -> (len == 0) == X, other -> !X;
 *   - is_null:X: null -> X, array -> (contains null) == X, other -> !X;
 *   - anything else: an array value passes if any of its elements passes
 *     (one level only), a scalar or object is tested directly; when several
 *     of match / range / geo_* are given in one condition they are ORed.
 *   (values_count, then is_empty, then is_null take precedence, as in
 *   Qdrant's FieldCondition::check.)
 * match.value: string == string, bool == bool, integer == number that is an
 * integer.  match.any / match.except: the list is strings or integers (an
 * empty list counts as strings); `except` passes every non-null value that
 * is not in the list, including values of the other type, bools, objects
 * and nested arrays; null never passes.  match.text and match.phrase are
 * substring tests, match.text_any passes if any whitespace-separated token
 * of the query is a substring, match.prefix is a byte-wise prefix test
 * (what Qdrant does when no full-text index exists).  With a full-text
 * index on the key (filter_match_text; the caller says which keys have
 * one and with which tokenizer params) text / text_any / phrase compare
 * tokens instead: see "full-text tokenizers" below.
 * range: numbers only (bools are not numbers).  A range whose bounds are
 * strings is a datetime range: payload strings are parsed as datetimes and
 * compared as instants with nanosecond precision.
 * geo_*: the value must be an object with numeric "lon" and "lat".  Box:
 * strict inequalities, and top_left.lon > bottom_right.lon means the box
 * crosses the antimeridian.  Radius: haversine distance on a sphere of
 * 6371008.8 m (geo crate) strictly less than the radius.  Polygon:
 * strictly inside the exterior ring (nonzero winding, the boundary is
 * outside) and neither inside nor on any interior ring.
 * is_empty condition: true if every value is null or [] (so also when the
 * path finds nothing).  is_null condition: true if some value is null (an
 * array holding null is not null).
 * has_id: the point id is in the list.  has_vector: the point has that
 * named vector.  slice: SipHash-2-4(id) % total == index.
 * nested {key, filter}: "[]" is appended to key unless it ends in "[]";
 * the point matches if some element that is an object passes the whole
 * inner filter on its own.  Inside nested, has_id / has_vector / slice are
 * false (Qdrant passes no id tracker or vector storage down).
 * Filter: should = at least one (an empty should list matches NOTHING,
 * Qdrant issue #554), min_should = at least min_count conditions, must =
 * all, must_not = none; absent clauses are true.
 *
 * Deliberate differences, forced by cJSON: a JSON number keeps no memory of
 * being written "1" or "1.0", so an integral float in a payload matches an
 * integer (Qdrant: only integers do), and integers beyond 2^53 lose
 * precision.  Duplicate object keys: the first wins (serde_json keeps the
 * last).  Unicode letters outside ASCII in unquoted path keys are all
 * accepted (Qdrant checks char::is_alphanumeric).
 */
#include "filter_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* arena                                                               */

struct farena_chunk {
    struct farena_chunk *next;
    size_t cap;
    size_t used;
    max_align_t data[];
};

/* Most filters are a few hundred bytes: one chunk of this size holds them.
 * Larger requests (long id lists) get a chunk of their own. */
#define ARENA_CHUNK 2048

void *filter_arena_alloc(struct filter *f, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    struct farena_chunk *c = f->chunks;
    void *p;

    if (size > SIZE_MAX - sizeof(*c) - align)
        return NULL;
    size = size == 0 ? align : (size + align - 1) & ~(align - 1);
    if (c == NULL || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        struct farena_chunk *n = malloc(sizeof(*n) + cap);
        if (n == NULL)
            return NULL;
        n->cap = cap;
        n->used = 0;
        if (c != NULL && size > ARENA_CHUNK / 4) {
            /* keep the current chunk at the head: it still has room */
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            f->chunks = n;
        }
        c = n;
    }
    p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

void filter_arena_free(struct filter *f)
{
    struct farena_chunk *c = f->chunks;

    while (c != NULL) {
        struct farena_chunk *next = c->next;
        free(c);
        c = next;
    }
    f->chunks = NULL;
}

void filter_free(filter_t *f)
{
    if (f == NULL)
        return;
    filter_arena_free(f);
    free(f);
}

bool filter_is_empty(const filter_t *f)
{
    return f == NULL || f->match_all;
}

/* ------------------------------------------------------------------ */
/* key paths                                                           */

/* Qdrant's raw key characters are char::is_alphanumeric, '_' and '-'.
 * Bytes of multi-byte UTF-8 sequences are accepted wholesale: checking
 * Unicode categories here would need tables for no practical gain. */
static bool raw_key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c >= 0x80;
}

/* One key at *pp: raw characters, or "..." without '"' or '\\' inside. */
static bool split_key(const char **pp, struct fseg *seg)
{
    const char *p = *pp;
    const char *q;

    if (*p == '"') {
        for (q = p + 1; *q != '\0' && *q != '"' && *q != '\\'; q++)
            ;
        if (*q != '"')
            return false;
        seg->key = p + 1;
        seg->len = (size_t)(q - (p + 1));
        *pp = q + 1;
    } else {
        for (q = p; raw_key_char((unsigned char)*q); q++)
            ;
        if (q == p)
            return false;
        seg->key = p;
        seg->len = (size_t)(q - p);
        *pp = q;
    }
    seg->kind = FSEG_KEY;
    seg->index = 0;
    return true;
}

/* "[digits]" at *pp (the '[' already checked). */
static bool split_index(const char **pp, struct fseg *seg)
{
    const char *p = *pp + 1;
    size_t v = 0;

    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++) {
        size_t d = (size_t)(*p - '0');
        if (v > (SIZE_MAX - d) / 10)
            return false; /* Qdrant: usize parse fails */
        v = v * 10 + d;
    }
    if (*p != ']')
        return false;
    seg->kind = FSEG_INDEX;
    seg->key = NULL;
    seg->len = 0;
    seg->index = v;
    *pp = p + 1;
    return true;
}

size_t filter_path_split(const char *path, struct fseg *segs, size_t cap)
{
    const char *p = path;
    struct fseg seg;
    size_t n = 0;

    if (path == NULL || !split_key(&p, &seg))
        return 0;
    for (;;) {
        if (n < cap)
            segs[n] = seg;
        n++;
        if (*p == '\0')
            return n;
        if (*p == '.') {
            p++;
            if (!split_key(&p, &seg))
                return 0;
        } else if (p[0] == '[' && p[1] == ']') {
            seg.kind = FSEG_ALL;
            seg.key = NULL;
            seg.len = 0;
            seg.index = 0;
            p += 2;
        } else if (*p == '[') {
            if (!split_index(&p, &seg))
                return 0;
        } else {
            return 0;
        }
    }
}

bool filter_path_is_valid(const char *path)
{
    return filter_path_split(path, NULL, 0) > 0;
}

/* A visitor gets each value found at a path; returning true stops the
 * walk (the caller has its answer). */
typedef bool (*visit_fn)(const cJSON *v, const void *ctx);

struct walk {
    visit_fn fn;
    const void *ctx;
    size_t seen;
};

static const cJSON *obj_get(const cJSON *obj, const char *key, size_t len)
{
    const cJSON *c;

    for (c = obj->child; c != NULL; c = c->next)
        if (c->string != NULL && strncmp(c->string, key, len) == 0 &&
            c->string[len] == '\0')
            return c;
    return NULL;
}

static const cJSON *arr_get(const cJSON *arr, size_t index)
{
    const cJSON *c = arr->child;

    while (c != NULL && index-- > 0)
        c = c->next;
    return c;
}

/* Visit the values under v along segs; true if the visitor stopped it.
 * Recursion happens only at "[]" segments, so depth is bounded by the
 * path, not by the payload. */
static bool walk(const struct fseg *s, size_t n, const cJSON *v, struct walk *w)
{
    for (; n > 0; s++, n--) {
        if (s->kind == FSEG_KEY) {
            if (!cJSON_IsObject(v) || (v = obj_get(v, s->key, s->len)) == NULL)
                return false;
        } else if (s->kind == FSEG_INDEX) {
            if (!cJSON_IsArray(v) || (v = arr_get(v, s->index)) == NULL)
                return false;
        } else {
            const cJSON *c;
            if (!cJSON_IsArray(v))
                return false;
            for (c = v->child; c != NULL; c = c->next)
                if (walk(s + 1, n - 1, c, w))
                    return true;
            return false;
        }
    }
    w->seen++;
    return w->fn(v, w->ctx);
}

static bool walk_path(const struct fpath *path, const cJSON *payload,
                      visit_fn fn, const void *ctx, size_t *seen)
{
    struct walk w = { fn, ctx, 0 };
    bool stopped = payload != NULL && walk(path->segs, path->n, payload, &w);

    if (seen != NULL)
        *seen = w.seen;
    return stopped;
}

struct collect {
    const cJSON **out;
    size_t cap;
    size_t n;
};

static bool collect_visit(const cJSON *v, const void *ctx)
{
    struct collect *c = (struct collect *)(uintptr_t)ctx;

    if (c->n < c->cap)
        c->out[c->n] = v;
    c->n++;
    return false;
}

size_t filter_path_values(const cJSON *payload, const char *path,
                          const cJSON **out, size_t cap)
{
    struct fseg local[32];
    struct fseg *segs = local;
    struct collect c = { out, out == NULL ? 0 : cap, 0 };
    struct fpath fp;
    size_t n = filter_path_split(path, local, 32);

    if (n == 0 || payload == NULL)
        return 0;
    if (n > 32) {
        /* absurdly deep path: not the hot case, a heap copy is fine */
        segs = malloc(n * sizeof(*segs));
        if (segs == NULL)
            return 0;
        filter_path_split(path, segs, n);
    }
    fp.segs = segs;
    fp.n = n;
    walk_path(&fp, payload, collect_visit, &c, NULL);
    if (segs != local)
        free(segs);
    return c.n;
}

/* ------------------------------------------------------------------ */
/* datetimes                                                           */

/* min..max decimal digits at p; NULL if fewer than min. */
static const char *dt_num(const char *p, int min, int max, int *out)
{
    int v = 0, n = 0;

    while (n < max && p[n] >= '0' && p[n] <= '9') {
        v = v * 10 + (p[n] - '0');
        n++;
    }
    if (n < min)
        return NULL;
    *out = v;
    return p + n;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Offset after the time: Z, UTC, +HH, +HHMM, +HH:MM (seconds east). */
static const char *dt_offset(const char *p, int32_t *off)
{
    int h, m = 0;
    int sign;

    if (*p == 'Z' || *p == 'z') {
        *off = 0;
        return p + 1;
    }
    if ((p[0] == 'U' || p[0] == 'u') && (p[1] == 'T' || p[1] == 't') &&
        (p[2] == 'C' || p[2] == 'c')) {
        *off = 0;
        return p + 3;
    }
    if (*p != '+' && *p != '-')
        return NULL;
    sign = *p == '-' ? -1 : 1;
    if ((p = dt_num(p + 1, 2, 2, &h)) == NULL)
        return NULL;
    if (*p == ':')
        p++;
    if (p[0] >= '0' && p[0] <= '9' && (p = dt_num(p, 2, 2, &m)) == NULL)
        return NULL;
    if (h > 23 || m > 59)
        return NULL;
    *off = sign * (h * 3600 + m * 60);
    return p;
}

/* "HH:MM[:SS[.frac]]" into seconds of day and nanoseconds; *has_sec tells
 * whether seconds were given (an offset is only allowed after them). */
static const char *dt_time(const char *p, int32_t *secs, int32_t *nsec,
                           bool *has_sec)
{
    int h, mi, s = 0;
    int32_t ns = 0;

    if ((p = dt_num(p, 1, 2, &h)) == NULL || *p != ':' ||
        (p = dt_num(p + 1, 1, 2, &mi)) == NULL)
        return NULL;
    *has_sec = *p == ':';
    if (*has_sec && (p = dt_num(p + 1, 1, 2, &s)) == NULL)
        return NULL;
    if (*has_sec && *p == '.') {
        int digits = 0;
        if (p[1] < '0' || p[1] > '9')
            return NULL;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 9)
                ns = ns * 10 + (*p - '0');
        for (; digits < 9; digits++)
            ns *= 10;
    }
    if (h > 23 || mi > 59 || s > 60)
        return NULL;
    if (s == 60) {
        /* chrono's leap second: 59 s plus a second's worth of nanos */
        s = 59;
        ns += 1000000000;
    }
    *secs = h * 3600 + mi * 60 + s;
    *nsec = ns;
    return p;
}

bool filter_datetime_parse(const char *s, int64_t *sec, int32_t *nsec)
{
    int y, mo, d;
    int32_t secs = 0, ns = 0, off = 0;
    bool has_sec = false;
    const char *p = s;

    if (p == NULL)
        return false;
    while (is_space(*p))
        p++;
    if ((p = dt_num(p, 1, 4, &y)) == NULL || *p != '-' ||
        (p = dt_num(p + 1, 1, 2, &mo)) == NULL || *p != '-' ||
        (p = dt_num(p + 1, 1, 2, &d)) == NULL)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return false;
    if (*p == 'T' || *p == 't' || (*p == ' ' && p[1] >= '0' && p[1] <= '9')) {
        if ((p = dt_time(p + 1, &secs, &ns, &has_sec)) == NULL)
            return false;
        while (is_space(*p))
            p++;
        if (has_sec && *p != '\0' && (p = dt_offset(p, &off)) == NULL)
            return false;
    }
    while (is_space(*p))
        p++;
    if (*p != '\0')
        return false;
    *sec = days_from_civil(y, mo, d) * 86400 + secs - off;
    *nsec = ns;
    return true;
}

static int dt_cmp(int64_t sa, int32_t na, const struct fdt *b)
{
    if (sa != b->sec)
        return sa < b->sec ? -1 : 1;
    return na < b->nsec ? -1 : (na > b->nsec ? 1 : 0);
}

/* ------------------------------------------------------------------ */
/* slice hash: SipHash-2-4, zero key                                   */

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND(v0, v1, v2, v3)                                          \
    do {                                                                  \
        v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32);     \
        v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                          \
        v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                          \
        v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32);     \
    } while (0)

static uint64_t load_le64(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    while (n-- > 0)
        v = (v << 8) | p[n];
    return v;
}

static uint64_t siphash24_zero_key(const uint8_t *in, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL, v1 = 0x646f72616e646f6dULL;
    uint64_t v2 = 0x6c7967656e657261ULL, v3 = 0x7465646279746573ULL;
    size_t i, full = len & ~(size_t)7;
    uint64_t m;

    for (i = 0; i < full; i += 8) {
        m = load_le64(in + i, 8);
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    m = ((uint64_t)len << 56) | load_le64(in + full, len - full);
    v3 ^= m;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= m;
    v2 ^= 0xff;
    for (i = 0; i < 4; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t filter_slice_hash(const ptid_t *id)
{
    uint8_t buf[8];

    if (id->kind == PTID_UUID)
        return siphash24_zero_key(id->uuid, 16);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(id->num >> (8 * i));
    return siphash24_zero_key(buf, 8);
}

/* ------------------------------------------------------------------ */
/* geo                                                                 */

static bool geo_point_of(const cJSON *v, double *lon, double *lat)
{
    const cJSON *x, *y;

    if (!cJSON_IsObject(v))
        return false;
    x = cJSON_GetObjectItemCaseSensitive(v, "lon");
    y = cJSON_GetObjectItemCaseSensitive(v, "lat");
    if (!cJSON_IsNumber(x) || !cJSON_IsNumber(y))
        return false;
    *lon = x->valuedouble;
    *lat = y->valuedouble;
    return true;
}

static bool geo_box_has(const struct fgeo_box *b, double lon, double lat)
{
    bool lon_ok = b->tl_lon > b->br_lon
                      ? (lon > b->tl_lon || lon < b->br_lon) /* antimeridian */
                      : (b->tl_lon < lon && lon < b->br_lon);

    return lon_ok && b->br_lat < lat && lat < b->tl_lat;
}

/* The geo crate's Haversine with its GRS80 mean radius. */
static double haversine_m(double lon1, double lat1, double lon2, double lat2)
{
    const double r = 6371008.8, rad = M_PI / 180.0;
    double s1 = sin((lat2 - lat1) * rad / 2.0);
    double s2 = sin((lon2 - lon1) * rad / 2.0);
    double a = s1 * s1 + cos(lat1 * rad) * cos(lat2 * rad) * s2 * s2;

    return r * 2.0 * asin(sqrt(a < 1.0 ? a : 1.0));
}

enum ring_pos { RING_OUTSIDE, RING_BOUNDARY, RING_INSIDE };

/* Winding number with an on-boundary short cut, edge rules as in the geo
 * crate's coord_pos_relative_to_ring.  The orientation test is plain
 * double arithmetic where geo uses robust predicates, so the two can only
 * disagree for points within rounding error of an edge. */
static enum ring_pos ring_pos(const struct fring *r, double x, double y)
{
    int wn = 0;

    if (x < r->minx || x > r->maxx || y < r->miny || y > r->maxy)
        return RING_OUTSIDE;
    for (size_t i = 0; i + 1 < r->n; i++) {
        double ax = r->xy[2 * i], ay = r->xy[2 * i + 1];
        double bx = r->xy[2 * i + 2], by = r->xy[2 * i + 3];
        double o = (bx - ax) * (y - ay) - (by - ay) * (x - ax);
        bool between = ax < bx ? (x >= ax && x <= bx) : (x >= bx && x <= ax);

        if (ay <= y) {
            if (by >= y) {
                if (o > 0 && by != y)
                    wn++;
                else if (o == 0 && between)
                    return RING_BOUNDARY;
            }
        } else if (by <= y) {
            if (o < 0)
                wn--;
            else if (o == 0 && between)
                return RING_BOUNDARY;
        }
    }
    return wn != 0 ? RING_INSIDE : RING_OUTSIDE;
}

static bool geo_poly_has(const struct fgeo_poly *g, double lon, double lat)
{
    if (ring_pos(&g->ext, lon, lat) != RING_INSIDE)
        return false;
    for (size_t i = 0; i < g->nholes; i++)
        if (ring_pos(&g->holes[i], lon, lat) != RING_OUTSIDE)
            return false;
    return true;
}

/* ---- evaluation with a text index (Qdrant's FullTextIndex) ---- */

/*
 * With a full-text index Qdrant checks a condition against the point's
 * indexed document (check_match): the tokens of every string at the key
 * (array elements included) together.  text: every query token is among
 * them; text_any: some query token is; phrase (only with phrase_matching,
 * else nothing matches): the phrase's tokens (tokenized as a document)
 * appear consecutively within one string (Qdrant puts a boundary token
 * between array elements).  A query without tokens matches nothing.
 */
struct tx_q {
    const filter_text_params_t *tp;
    const char *tok;          /* text / text_any: the query token */
    size_t len;
    const char *phrase;       /* phrase: the phrase */
};

static bool str_has_token(const struct tx_q *q, const char *s)
{
    struct filter_tok d;

    filter_tok_init(&d, q->tp, s, true);
    while (filter_tok_next(&d))
        if (d.len == q->len && memcmp(d.buf, q->tok, q->len) == 0)
            return true;
    return false;
}

/* Do the phrase's tokens start at the current token of a? */
static bool phrase_at(const struct tx_q *q, struct filter_tok *a)
{
    struct filter_tok ph;
    bool first = true;

    filter_tok_init(&ph, q->tp, q->phrase, true);
    while (filter_tok_next(&ph)) {
        if (!first && !filter_tok_next(a))
            return false;
        if (a->len != ph.len || memcmp(a->buf, ph.buf, ph.len) != 0)
            return false;
        first = false;
    }
    return !first;
}

static bool str_has_phrase(const struct tx_q *q, const char *s)
{
    struct filter_tok d, a;

    filter_tok_init(&d, q->tp, s, true);
    while (filter_tok_next(&d)) {
        filter_tok_fork(&a, &d);
        if (phrase_at(q, &a))
            return true;
    }
    return false;
}

static bool tx_str(const struct tx_q *q, const cJSON *v)
{
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return false;
    return q->phrase != NULL ? str_has_phrase(q, v->valuestring)
                             : str_has_token(q, v->valuestring);
}

static bool tx_visit(const cJSON *v, const void *ctx)
{
    const cJSON *c;

    if (!cJSON_IsArray(v))
        return tx_str(ctx, v);
    for (c = v->child; c != NULL; c = c->next)
        if (tx_str(ctx, c))
            return true;
    return false;
}

/* match.text (all) or text_any (!all) on an indexed field. */
static bool tx_tokens(const struct ffield *f, const filter_text_params_t *tp,
                      const cJSON *payload, bool all)
{
    struct filter_tok qt;
    struct tx_q q = { tp, NULL, 0, NULL };
    size_t n = 0;

    filter_tok_init(&qt, tp, f->m.s, false);
    while (filter_tok_next(&qt)) {
        q.tok = qt.buf;
        q.len = qt.len;
        n++;
        bool found = walk_path(&f->path, payload, tx_visit, &q, NULL);
        if (found != all)
            return found;
    }
    return all && n > 0;
}

static bool tx_field(const struct ffield *f, const filter_text_params_t *tp,
                     const cJSON *payload)
{
    struct tx_q q = { tp, NULL, 0, f->m.s };

    switch (f->m.kind) {
    case FM_TEXT:
        return tx_tokens(f, tp, payload, true);
    case FM_TEXT_ANY:
        return tx_tokens(f, tp, payload, false);
    default: /* FM_PHRASE */
        return tp->phrase_matching && walk_path(&f->path, payload, tx_visit, &q, NULL);
    }
}

/* The text index params that apply to field condition f, or NULL: only a
 * pure full-text condition (nothing else ORed into it) on an indexed key
 * is evaluated by the index. */
static const filter_text_params_t *tx_params(const struct ffield *f, const filter_text_ctx_t *tx)
{
    if (tx == NULL || tx->lookup == NULL || f->key == NULL ||
        (f->m.kind != FM_TEXT && f->m.kind != FM_TEXT_ANY && f->m.kind != FM_PHRASE) ||
        f->r.kind != FR_NONE || f->box != NULL || f->radius != NULL || f->poly != NULL ||
        f->has_count || f->is_empty >= 0 || f->is_null >= 0)
        return NULL;
    return tx->lookup(tx->ctx, f->key);
}

/* ------------------------------------------------------------------ */
/* field conditions                                                    */

/* serde_json's as_i64, as near as cJSON allows: the number is integral
 * and fits an i64. */
static bool as_i64(const cJSON *v, int64_t *out)
{
    double d = v->valuedouble;

    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return false;
    if ((double)(int64_t)d != d)
        return false;
    *out = (int64_t)d;
    return true;
}

static bool ints_has(const int64_t *a, size_t n, int64_t x)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] == x)
            return true;
        if (a[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static bool strs_has(const char *const *a, size_t n, const char *x)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(a[mid], x);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static bool text_any_has(const struct fmatch *m, const char *s)
{
    for (size_t i = 0; i < m->nstrs; i++)
        if (strstr(s, m->strs[i]) != NULL)
            return true;
    return false;
}

/* match.except: every non-null value outside the list passes. */
static bool match_except(const struct fmatch *m, const cJSON *v)
{
    int64_t i;

    if (cJSON_IsNull(v))
        return false;
    if (m->kind == FM_EXCEPT_STR && cJSON_IsString(v))
        return !strs_has((const char *const *)m->strs, m->nstrs, v->valuestring);
    if (m->kind == FM_EXCEPT_INT && cJSON_IsNumber(v))
        return !as_i64(v, &i) || !ints_has(m->ints, m->nints, i);
    return true;
}

static bool match_one(const struct fmatch *m, const cJSON *v)
{
    int64_t i;
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;

    switch (m->kind) {
    case FM_STR:
        return s != NULL && strcmp(s, m->s) == 0;
    case FM_INT:
        return cJSON_IsNumber(v) && as_i64(v, &i) && i == m->i;
    case FM_BOOL:
        return cJSON_IsBool(v) && (cJSON_IsTrue(v) != 0) == m->b;
    case FM_TEXT:
    case FM_PHRASE:
        return s != NULL && strstr(s, m->s) != NULL;
    case FM_TEXT_ANY:
        return s != NULL && text_any_has(m, s);
    case FM_PREFIX:
        return s != NULL && strncmp(s, m->s, m->slen) == 0;
    case FM_ANY_STR:
        return s != NULL && strs_has((const char *const *)m->strs, m->nstrs, s);
    case FM_ANY_INT:
        return cJSON_IsNumber(v) && as_i64(v, &i) && ints_has(m->ints, m->nints, i);
    case FM_EXCEPT_STR:
    case FM_EXCEPT_INT:
        return match_except(m, v);
    default:
        return false;
    }
}

static bool range_one(const struct frange *r, const cJSON *v)
{
    if (r->kind == FR_FLOAT) {
        double x;
        if (!cJSON_IsNumber(v))
            return false;
        x = v->valuedouble;
        return (!(r->has & FB_LT) || x < r->lt) && (!(r->has & FB_GT) || x > r->gt) &&
               (!(r->has & FB_LTE) || x <= r->lte) && (!(r->has & FB_GTE) || x >= r->gte);
    } else {
        int64_t sec;
        int32_t ns;
        if (!cJSON_IsString(v) || !filter_datetime_parse(v->valuestring, &sec, &ns))
            return false;
        return (!(r->has & FB_LT) || dt_cmp(sec, ns, &r->dlt) < 0) &&
               (!(r->has & FB_GT) || dt_cmp(sec, ns, &r->dgt) > 0) &&
               (!(r->has & FB_LTE) || dt_cmp(sec, ns, &r->dlte) <= 0) &&
               (!(r->has & FB_GTE) || dt_cmp(sec, ns, &r->dgte) >= 0);
    }
}

static bool count_ok(const struct fcount *c, uint64_t n)
{
    return (!(c->has & FB_LT) || n < c->lt) && (!(c->has & FB_GT) || n > c->gt) &&
           (!(c->has & FB_LTE) || n <= c->lte) && (!(c->has & FB_GTE) || n >= c->gte);
}

static uint64_t count_of(const cJSON *v)
{
    if (cJSON_IsNull(v))
        return 0;
    if (cJSON_IsArray(v))
        return (uint64_t)cJSON_GetArraySize(v);
    return 1;
}

/* Qdrant's FieldCondition::check_match on one non-array value: the given
 * conditions are ORed. */
static bool field_check_match(const struct ffield *f, const cJSON *v)
{
    double lon, lat;

    if (f->m.kind != FM_NONE && match_one(&f->m, v))
        return true;
    if (f->r.kind != FR_NONE && range_one(&f->r, v))
        return true;
    if ((f->radius != NULL || f->box != NULL || f->poly != NULL) &&
        geo_point_of(v, &lon, &lat)) {
        if (f->radius != NULL &&
            haversine_m(f->radius->lon, f->radius->lat, lon, lat) < f->radius->radius)
            return true;
        if (f->box != NULL && geo_box_has(f->box, lon, lat))
            return true;
        if (f->poly != NULL && geo_poly_has(f->poly, lon, lat))
            return true;
    }
    return false;
}

static bool has_null_elem(const cJSON *arr)
{
    const cJSON *c;

    for (c = arr->child; c != NULL; c = c->next)
        if (cJSON_IsNull(c))
            return true;
    return false;
}

/* Qdrant's FieldCondition::check on one value found at the path. */
static bool field_check(const struct ffield *f, const cJSON *v)
{
    const cJSON *c;

    if (f->has_count)
        return count_ok(&f->count, count_of(v));
    if (f->is_empty >= 0) {
        if (cJSON_IsNull(v))
            return f->is_empty;
        if (cJSON_IsArray(v))
            return (v->child == NULL) == (f->is_empty != 0);
        return !f->is_empty;
    }
    if (f->is_null >= 0) {
        if (cJSON_IsNull(v))
            return f->is_null;
        if (cJSON_IsArray(v))
            return has_null_elem(v) == (f->is_null != 0);
        return !f->is_null;
    }
    if (!cJSON_IsArray(v))
        return field_check_match(f, v);
    for (c = v->child; c != NULL; c = c->next)
        if (field_check_match(f, c))
            return true;
    return false;
}

/* Qdrant's FieldCondition::check_empty: the path found no value. */
static bool field_check_empty(const struct ffield *f)
{
    if (f->has_count)
        return count_ok(&f->count, 0);
    if (f->is_empty >= 0)
        return f->is_empty;
    if (f->is_null >= 0)
        return !f->is_null;
    return false;
}

static bool field_visit(const cJSON *v, const void *ctx)
{
    return field_check(ctx, v);
}

static bool field_eval(const struct ffield *f, const cJSON *payload, const filter_text_ctx_t *tx)
{
    const filter_text_params_t *tp = tx_params(f, tx);
    size_t seen;

    if (tp != NULL)
        return tx_field(f, tp, payload);

    if (walk_path(&f->path, payload, field_visit, f, &seen))
        return true;
    return seen == 0 && field_check_empty(f);
}

/* ------------------------------------------------------------------ */
/* conditions and filters                                              */

static bool node_match(const struct fnode *n, const cJSON *payload,
                       const filter_point_t *p, const filter_text_ctx_t *tx);

/* is_empty condition: stop at the first value that is neither null nor []. */
static bool not_empty_visit(const cJSON *v, const void *ctx)
{
    (void)ctx;
    return !cJSON_IsNull(v) && !(cJSON_IsArray(v) && v->child == NULL);
}

static bool null_visit(const cJSON *v, const void *ctx)
{
    (void)ctx;
    return cJSON_IsNull(v);
}

struct nested_ctx {
    const struct fnode *filter;
    const filter_point_t *p;
};

static bool nested_visit(const cJSON *v, const void *ctx)
{
    const struct nested_ctx *n = ctx;

    /* inner keys are relative to the nested array: no index applies */
    return cJSON_IsObject(v) && node_match(n->filter, v, n->p, NULL);
}

static bool ids_has(const ptid_t *ids, size_t n, const ptid_t *id)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = ptid_cmp(&ids[mid], id);
        if (c == 0)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static bool cond_match(const struct fcond *c, const cJSON *payload,
                       const filter_point_t *p, const filter_text_ctx_t *tx)
{
    struct nested_ctx nc;

    switch (c->kind) {
    case FC_FIELD:
        return field_eval(c->field, payload, tx);
    case FC_IS_EMPTY:
        return !walk_path(&c->path, payload, not_empty_visit, NULL, NULL);
    case FC_IS_NULL:
        return walk_path(&c->path, payload, null_visit, NULL, NULL);
    case FC_HAS_ID:
        return p->id != NULL && ids_has(c->ids, c->nids, p->id);
    case FC_HAS_VECTOR:
        return p->has_vector != NULL && p->has_vector(p->ctx, c->vector);
    case FC_SLICE:
        return p->id != NULL && filter_slice_hash(p->id) % c->total == c->index;
    case FC_NESTED:
        nc.filter = c->filter;
        nc.p = p;
        return walk_path(&c->path, payload, nested_visit, &nc, NULL);
    case FC_FILTER:
        return node_match(c->filter, payload, p, tx);
    default:
        return false;
    }
}

static bool node_match(const struct fnode *n, const cJSON *payload,
                       const filter_point_t *p, const filter_text_ctx_t *tx)
{
    size_t i;

    for (i = 0; i < n->must.n; i++)
        if (!cond_match(&n->must.items[i], payload, p, tx))
            return false;
    for (i = 0; i < n->must_not.n; i++)
        if (cond_match(&n->must_not.items[i], payload, p, tx))
            return false;
    if (n->has_should) {
        for (i = 0; i < n->should.n; i++)
            if (cond_match(&n->should.items[i], payload, p, tx))
                break;
        if (i == n->should.n)
            return false; /* also for an empty should: Qdrant's any() */
    }
    if (n->has_min_should) {
        uint64_t hits = 0;
        for (i = 0; i < n->min_should.n && hits < n->min_count; i++)
            if (cond_match(&n->min_should.items[i], payload, p, tx))
                hits++;
        if (hits < n->min_count)
            return false;
    }
    return true;
}

bool filter_match(const filter_t *f, const filter_point_t *p)
{
    return filter_match_text(f, p, NULL);
}

bool filter_match_text(const filter_t *f, const filter_point_t *p, const filter_text_ctx_t *tx)
{
    if (f == NULL || f->match_all)
        return true;
    return node_match(f->root, p->payload, p, tx);
}

/* ------------------------------------------------------------------ */
/* equality conditions                                                 */

/* The pure equality condition of a field, if it is one. */
static bool field_eq(const struct ffield *fd, filter_eq_t *e)
{
    const struct fmatch *m = &fd->m;

    if (fd->r.kind != FR_NONE || fd->box != NULL || fd->radius != NULL || fd->poly != NULL ||
        fd->has_count || fd->is_empty >= 0 || fd->is_null >= 0 || fd->key == NULL)
        return false;
    memset(e, 0, sizeof(*e));
    e->key = fd->key;
    switch (m->kind) {
    case FM_STR:
        e->type = FILTER_EQ_STR;
        e->strs = &m->s;
        e->n = 1;
        return true;
    case FM_INT:
        e->type = FILTER_EQ_INT;
        e->ints = &m->i;
        e->n = 1;
        return true;
    case FM_BOOL:
        e->type = FILTER_EQ_BOOL;
        e->b = m->b;
        e->n = 1;
        return true;
    case FM_ANY_STR:
        e->type = FILTER_EQ_STR;
        e->strs = (const char *const *)m->strs;
        e->n = m->nstrs;
        return true;
    case FM_ANY_INT:
        e->type = FILTER_EQ_INT;
        e->ints = m->ints;
        e->n = m->nints;
        return true;
    default:
        return false;
    }
}

static size_t node_must_eq(const struct fnode *n, filter_eq_t *out, size_t cap, size_t got,
                           int depth)
{
    for (size_t i = 0; n != NULL && i < n->must.n; i++) {
        const struct fcond *c = &n->must.items[i];
        filter_eq_t e;
        if (c->kind == FC_FIELD && field_eq(c->field, &e)) {
            if (got < cap)
                out[got] = e;
            got++;
        } else if (c->kind == FC_FILTER && depth < 8) {
            got = node_must_eq(c->filter, out, cap, got, depth + 1);
        }
    }
    return got;
}

size_t filter_must_eq(const filter_t *f, filter_eq_t *out, size_t cap)
{
    if (f == NULL || f->match_all)
        return 0;
    return node_must_eq(f->root, out, cap, 0, 0);
}

/* ------------------------------------------------------------------ */
/* range conditions                                                    */

static void bound_set(filter_bound_t *b, const struct frange *r, int bit, double num,
                      const struct fdt *dt)
{
    memset(b, 0, sizeof(*b));
    if (!(r->has & bit))
        return;
    b->set = true;
    if (r->kind == FR_DATETIME) {
        b->sec = dt->sec;
        b->nsec = dt->nsec;
    } else {
        b->num = num;
    }
}

/* The pure range condition of a field, if it is one. */
static bool field_range(const struct ffield *fd, filter_range_t *o)
{
    const struct frange *r = &fd->r;

    if (r->kind == FR_NONE || fd->m.kind != FM_NONE || fd->box != NULL || fd->radius != NULL ||
        fd->poly != NULL || fd->has_count || fd->is_empty >= 0 || fd->is_null >= 0 ||
        fd->key == NULL)
        return false;
    o->key = fd->key;
    o->datetime = r->kind == FR_DATETIME;
    bound_set(&o->gt, r, FB_GT, r->gt, &r->dgt);
    bound_set(&o->gte, r, FB_GTE, r->gte, &r->dgte);
    bound_set(&o->lt, r, FB_LT, r->lt, &r->dlt);
    bound_set(&o->lte, r, FB_LTE, r->lte, &r->dlte);
    return true;
}

static size_t node_must_range(const struct fnode *n, filter_range_t *out, size_t cap, size_t got,
                              int depth)
{
    for (size_t i = 0; n != NULL && i < n->must.n; i++) {
        const struct fcond *c = &n->must.items[i];
        filter_range_t r;
        if (c->kind == FC_FIELD && field_range(c->field, &r)) {
            if (got < cap)
                out[got] = r;
            got++;
        } else if (c->kind == FC_FILTER && depth < 8) {
            got = node_must_range(c->filter, out, cap, got, depth + 1);
        }
    }
    return got;
}

size_t filter_must_range(const filter_t *f, filter_range_t *out, size_t cap)
{
    if (f == NULL || f->match_all)
        return 0;
    return node_must_range(f->root, out, cap, 0, 0);
}

bool filter_path_same(const char *a, const char *b)
{
    struct fseg sa[32], sb[32];
    size_t na = filter_path_split(a, sa, 32), nb = filter_path_split(b, sb, 32);

    if (na == 0 || na != nb)
        return false;
    if (na > 32)
        return strcmp(a, b) == 0;
    for (size_t i = 0; i < na; i++) {
        if (sa[i].kind != sb[i].kind || sa[i].index != sb[i].index || sa[i].len != sb[i].len)
            return false;
        if (sa[i].kind == FSEG_KEY && memcmp(sa[i].key, sb[i].key, sa[i].len) != 0)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* full-text and geo conditions (for planners)                         */

/* Does fd consist of nothing but its match (resp. geo) part? */
static bool field_only_match(const struct ffield *fd)
{
    return fd->r.kind == FR_NONE && fd->box == NULL && fd->radius == NULL && fd->poly == NULL &&
           !fd->has_count && fd->is_empty < 0 && fd->is_null < 0 && fd->key != NULL;
}

static bool field_text(const struct ffield *fd, filter_text_t *t)
{
    static const int ops[] = { [FM_TEXT] = FILTER_TEXT_ALL, [FM_TEXT_ANY] = FILTER_TEXT_ANY,
                               [FM_PHRASE] = FILTER_TEXT_PHRASE };

    if (!field_only_match(fd) ||
        (fd->m.kind != FM_TEXT && fd->m.kind != FM_TEXT_ANY && fd->m.kind != FM_PHRASE))
        return false;
    t->key = fd->key;
    t->op = ops[fd->m.kind];
    t->query = fd->m.s;
    return true;
}

static void geo_lon(filter_geo_t *g, double lo, double hi)
{
    g->lon_lo[g->n_lon] = lo;
    g->lon_hi[g->n_lon] = hi;
    g->n_lon++;
}

/* The region of a radius: a latitude band, and the longitudes within the
 * angular radius d of the centre where it does not reach a pole.  A
 * margin covers rounding: the exact check runs on every candidate. */
static void geo_radius_region(const struct fgeo_radius *r, filter_geo_t *g)
{
    const double rad = M_PI / 180.0, eps = 1e-6;
    double d = r->radius / 6371008.8; /* haversine_m's sphere */

    if (!(d > 0))
        return; /* distance < radius <= 0: nothing */
    double dd = d / rad + eps;
    g->lat_lo = r->lat - dd < -90 ? -90 : r->lat - dd;
    g->lat_hi = r->lat + dd > 90 ? 90 : r->lat + dd;
    double s = d < M_PI / 2 ? sin(d) / cos(r->lat * rad) : 2;
    if (g->lat_lo <= -90 || g->lat_hi >= 90 || !(s < 1)) {
        geo_lon(g, -180, 180); /* around a pole, or wider than a hemisphere */
        return;
    }
    double dl = asin(s) / rad + eps;
    double lo = r->lon - dl, hi = r->lon + dl;
    if (dl >= 180) {
        geo_lon(g, -180, 180);
    } else if (lo < -180) {
        geo_lon(g, lo + 360, 180);
        geo_lon(g, -180, hi);
    } else if (hi > 180) {
        geo_lon(g, lo, 180);
        geo_lon(g, -180, hi - 360);
    } else {
        geo_lon(g, lo, hi);
    }
}

static bool field_geo(const struct ffield *fd, filter_geo_t *g)
{
    int n = (fd->box != NULL) + (fd->radius != NULL) + (fd->poly != NULL);

    if (n != 1 || fd->m.kind != FM_NONE || fd->r.kind != FR_NONE || fd->has_count ||
        fd->is_empty >= 0 || fd->is_null >= 0 || fd->key == NULL)
        return false;
    memset(g, 0, sizeof(*g));
    g->key = fd->key;
    if (fd->box != NULL) { /* geo_box_has: strict, may cross the antimeridian */
        const struct fgeo_box *b = fd->box;
        g->lat_lo = b->br_lat;
        g->lat_hi = b->tl_lat;
        if (b->tl_lon > b->br_lon) {
            geo_lon(g, b->tl_lon, 180);
            geo_lon(g, -180, b->br_lon);
        } else {
            geo_lon(g, b->tl_lon, b->br_lon);
        }
    } else if (fd->poly != NULL) { /* ring_pos: nothing outside the ring's box */
        const struct fring *r = &fd->poly->ext;
        g->lat_lo = r->miny;
        g->lat_hi = r->maxy;
        geo_lon(g, r->minx, r->maxx);
    } else {
        geo_radius_region(fd->radius, g);
    }
    for (size_t i = 0; i < g->n_lon; i++) { /* the world box */
        g->lon_lo[i] = g->lon_lo[i] < -180 ? -180 : g->lon_lo[i];
        g->lon_hi[i] = g->lon_hi[i] > 180 ? 180 : g->lon_hi[i];
    }
    g->lat_lo = g->lat_lo < -90 ? -90 : g->lat_lo;
    g->lat_hi = g->lat_hi > 90 ? 90 : g->lat_hi;
    return true;
}

/* Shared walk of the conjunctive conditions (as node_must_eq). */
typedef bool (*field_pick_fn)(const struct ffield *fd, void *out1);

static size_t node_must_pick(const struct fnode *n, field_pick_fn pick, char *out, size_t size,
                             size_t cap, size_t got, int depth)
{
    for (size_t i = 0; n != NULL && i < n->must.n; i++) {
        const struct fcond *c = &n->must.items[i];
        if (c->kind == FC_FIELD) {
            if (got < cap ? pick(c->field, out + got * size) : pick(c->field, NULL))
                got++;
        } else if (c->kind == FC_FILTER && depth < 8) {
            got = node_must_pick(c->filter, pick, out, size, cap, got, depth + 1);
        }
    }
    return got;
}

static bool pick_text(const struct ffield *fd, void *out1)
{
    filter_text_t t;
    if (!field_text(fd, &t))
        return false;
    if (out1 != NULL)
        memcpy(out1, &t, sizeof(t));
    return true;
}

static bool pick_geo(const struct ffield *fd, void *out1)
{
    filter_geo_t g;
    if (!field_geo(fd, &g))
        return false;
    if (out1 != NULL)
        memcpy(out1, &g, sizeof(g));
    return true;
}

size_t filter_must_text(const filter_t *f, filter_text_t *out, size_t cap)
{
    if (f == NULL || f->match_all)
        return 0;
    return node_must_pick(f->root, pick_text, (char *)out, sizeof(*out), cap, 0, 0);
}

size_t filter_must_geo(const filter_t *f, filter_geo_t *out, size_t cap)
{
    if (f == NULL || f->match_all)
        return 0;
    return node_must_pick(f->root, pick_geo, (char *)out, sizeof(*out), cap, 0, 0);
}
