/*
 * filter_parse.c - compile a Qdrant Filter JSON object into the tree of
 * filter_internal.h; see filter.h.
 *
 * Design
 * ------
 * One recursive-descent pass over the cJSON tree validates everything and
 * builds the compiled form in the filter's arena, copying every string it
 * keeps, so the caller may free its JSON as soon as filter_parse returns.
 * On any error the arena is dropped as a whole.
 *
 * Error messages carry the JSON path of the offending object, built in a
 * fixed buffer while descending ("filter.must[2].range") and followed by
 * what is wrong with which key ('"gt" must be a number').  Parsing follows
 * the serde rules of Qdrant 1.19's types.rs:
 *  - must / should / must_not accept one condition object, an array of
 *    them, or null; min_should is {conditions: [...], min_count >= 1};
 *  - a condition object with "key" is a field condition; otherwise the one
 *    of is_empty / is_null / has_id / has_vector / slice / nested it holds
 *    decides; otherwise it is a sub-filter ({} is the match-all filter);
 *  - a field condition needs at least one non-null condition;
 *  - match is exactly one of value / text / text_any / phrase / prefix /
 *    any / except; any/except lists are all strings or all integers;
 *  - a range with at least one string bound is a datetime range and all
 *    its bounds must then be datetimes;
 *  - geo points need lon in [-180, 180] and lat in [-90, 90]; polygon
 *    rings need 4+ points and must be closed;
 *  - slice needs total >= 1 and index < total.
 * Unlike serde (which skips unknown fields of most of these structs), an
 * unknown key is an error: a misspelt condition silently matching
 * everything is the worse failure.
 */
#include "filter_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper sub-filter nesting is rejected: evaluation recurses per level and
 * real filters are a handful of levels deep. */
#define MAX_DEPTH 128
#define PATH_MAX_LEN 200

struct pctx {
    struct filter *f;
    err_t *err;
    char path[PATH_MAX_LEN + 4];
    size_t len;
    int depth;
    bool in_nested; /* has_id / has_vector / slice compile to FC_FALSE */
};

/* ------------------------------------------------------------------ */
/* helpers                                                             */

/* Append to the error path; returns the mark to restore with path_pop.
 * An over-long path is cut and ends in "..." (the message stays useful). */
static size_t path_push(struct pctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static size_t path_push(struct pctx *c, const char *fmt, ...)
{
    size_t mark = c->len;
    va_list ap;
    int n;

    if (c->len >= PATH_MAX_LEN)
        return mark;
    va_start(ap, fmt);
    n = vsnprintf(c->path + c->len, PATH_MAX_LEN + 1 - c->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    c->len += (size_t)n;
    if (c->len >= PATH_MAX_LEN) {
        c->len = PATH_MAX_LEN;
        memcpy(c->path + PATH_MAX_LEN, "...", 4);
    }
    return mark;
}

static void path_pop(struct pctx *c, size_t mark)
{
    c->len = mark;
    c->path[mark] = '\0';
}

static int perr(struct pctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int perr(struct pctx *c, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return err_set(c->err, ERR_INVALID, "%s: %s", c->path, msg);
}

static int pnomem(struct pctx *c)
{
    return err_set(c->err, ERR_NOMEM, "%s: out of memory compiling filter", c->path);
}

static void *palloc(struct pctx *c, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return filter_arena_alloc(c->f, n * size);
}

static char *pstrdup(struct pctx *c, const char *s, size_t len)
{
    char *d = palloc(c, len + 1, 1);

    if (d != NULL) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* Reject keys outside allowed (a NULL-terminated list). */
static int check_keys(struct pctx *c, const cJSON *obj, const char *const *allowed)
{
    const cJSON *k;

    for (k = obj->child; k != NULL; k = k->next) {
        const char *const *a;
        for (a = allowed; *a != NULL; a++)
            if (strcmp(k->string, *a) == 0)
                break;
        if (*a == NULL)
            return perr(c, "unknown field \"%.64s\"", k->string);
    }
    return ERR_OK;
}

/* Member of obj, or NULL if absent or JSON null (serde's Option::None). */
static const cJSON *member(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsNull(v) ? NULL : v;
}

static int need_object(struct pctx *c, const cJSON *v, const char *name)
{
    if (!cJSON_IsObject(v))
        return perr(c, "\"%s\" must be an object", name);
    return ERR_OK;
}

/* A finite number (cJSON turns 1e999 into infinity; serde rejects it). */
static int get_number(struct pctx *c, const cJSON *v, const char *name, double *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return perr(c, "\"%s\" must be a number", name);
    *out = v->valuedouble;
    return ERR_OK;
}

/* A non-negative integer no larger than max (and exact in a double). */
static int get_uint(struct pctx *c, const cJSON *v, const char *name,
                    uint64_t max, uint64_t *out)
{
    double d;

    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) ||
        v->valuedouble > 9007199254740992.0 || v->valuedouble != floor(v->valuedouble))
        return perr(c, "\"%s\" must be a non-negative integer", name);
    d = v->valuedouble;
    if ((uint64_t)d > max)
        return perr(c, "\"%s\" must be at most %llu", name, (unsigned long long)max);
    *out = (uint64_t)d;
    return ERR_OK;
}

/* An i64 (ValueVariants::Integer, AnyVariants::Integers). */
static bool json_i64(const cJSON *v, int64_t *out)
{
    double d;

    if (!cJSON_IsNumber(v))
        return false;
    d = v->valuedouble;
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != floor(d))
        return false;
    *out = (int64_t)d;
    return true;
}

static int parse_key_path(struct pctx *c, const cJSON *v, const char *name,
                          bool array_key, struct fpath *out)
{
    struct fseg *segs;
    size_t n, i;

    if (!cJSON_IsString(v))
        return perr(c, "\"%s\" must be a string", name);
    n = filter_path_split(v->valuestring, NULL, 0);
    if (n == 0)
        return perr(c, "\"%s\" is not a valid key path: \"%.100s\"", name, v->valuestring);
    if ((segs = palloc(c, n + 1, sizeof(*segs))) == NULL)
        return pnomem(c);
    filter_path_split(v->valuestring, segs, n);
    for (i = 0; i < n; i++)
        if (segs[i].kind == FSEG_KEY &&
            (segs[i].key = pstrdup(c, segs[i].key, segs[i].len)) == NULL)
            return pnomem(c);
    /* nested keys address an array of objects: Qdrant's array_key() */
    if (array_key && segs[n - 1].kind != FSEG_ALL) {
        memset(&segs[n], 0, sizeof(segs[n]));
        segs[n++].kind = FSEG_ALL;
    }
    out->segs = segs;
    out->n = n;
    return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* match                                                               */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : (x > y ? 1 : 0);
}

/* AnyVariants: all strings (also []) or all integers; sorted for bsearch. */
static int parse_any_list(struct pctx *c, const cJSON *v, const char *name,
                          struct fmatch *m, bool is_except)
{
    size_t n, i = 0;
    const cJSON *e;

    if (!cJSON_IsArray(v))
        return perr(c, "\"%s\" must be an array of strings or of integers", name);
    n = (size_t)cJSON_GetArraySize(v);
    if (n > 0 && cJSON_IsNumber(v->child)) {
        int64_t *a = palloc(c, n, sizeof(*a));
        if (a == NULL)
            return pnomem(c);
        cJSON_ArrayForEach(e, v) {
            if (!json_i64(e, &a[i++]))
                return perr(c, "\"%s\" must be an array of strings or of integers", name);
        }
        qsort(a, n, sizeof(*a), cmp_i64);
        m->ints = a;
        m->nints = n;
        m->kind = is_except ? FM_EXCEPT_INT : FM_ANY_INT;
        return ERR_OK;
    }
    if ((m->strs = palloc(c, n, sizeof(*m->strs))) == NULL)
        return pnomem(c);
    cJSON_ArrayForEach(e, v) {
        if (!cJSON_IsString(e))
            return perr(c, "\"%s\" must be an array of strings or of integers", name);
        if ((m->strs[i++] = pstrdup(c, e->valuestring, strlen(e->valuestring))) == NULL)
            return pnomem(c);
    }
    qsort(m->strs, n, sizeof(*m->strs), cmp_str);
    m->nstrs = n;
    m->kind = is_except ? FM_EXCEPT_STR : FM_ANY_STR;
    return ERR_OK;
}

/* Length of the Unicode White_Space character at p (Rust's
 * char::is_whitespace, which split_whitespace uses), 0 if none. */
static size_t ws_len(const unsigned char *p)
{
    if ((*p >= 0x09 && *p <= 0x0d) || *p == 0x20)
        return 1;
    if (p[0] == 0xc2 && (p[1] == 0x85 || p[1] == 0xa0))
        return 2;
    if (p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80)
        return 3;
    if (p[0] == 0xe2 && p[1] == 0x80 &&
        ((p[2] >= 0x80 && p[2] <= 0x8a) || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
        return 3;
    if (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f)
        return 3;
    if (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
        return 3;
    return 0;
}

/* text_any: split the query into tokens once, here. */
static int parse_text_any(struct pctx *c, const char *s, struct fmatch *m)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0, max = strlen(s) / 2 + 1;

    if ((m->strs = palloc(c, max, sizeof(*m->strs))) == NULL)
        return pnomem(c);
    while (*p != '\0') {
        const unsigned char *start;
        size_t w;
        while ((w = ws_len(p)) > 0)
            p += w;
        if (*p == '\0')
            break;
        for (start = p; *p != '\0' && ws_len(p) == 0; p++)
            ;
        m->strs[n] = pstrdup(c, (const char *)start, (size_t)(p - start));
        if (m->strs[n++] == NULL)
            return pnomem(c);
    }
    m->nstrs = n;
    m->kind = FM_TEXT_ANY;
    /* the whole query too: a text index tokenizes it its own way */
    m->slen = strlen(s);
    return (m->s = pstrdup(c, s, m->slen)) ? ERR_OK : pnomem(c);
}

static int parse_match_value(struct pctx *c, const cJSON *v, struct fmatch *m)
{
    if (cJSON_IsString(v)) {
        m->kind = FM_STR;
        m->slen = strlen(v->valuestring);
        return (m->s = pstrdup(c, v->valuestring, m->slen)) ? ERR_OK : pnomem(c);
    }
    if (cJSON_IsBool(v)) {
        m->kind = FM_BOOL;
        m->b = cJSON_IsTrue(v) != 0;
        return ERR_OK;
    }
    if (json_i64(v, &m->i)) {
        m->kind = FM_INT;
        return ERR_OK;
    }
    return perr(c, "\"value\" must be a string, an integer or a bool");
}

static int parse_match(struct pctx *c, const cJSON *v, struct fmatch *m)
{
    static const char *const kinds[] = { "value", "text", "text_any", "phrase",
                                         "prefix", "any", "except", NULL };
    const cJSON *k;
    int rc;

    if (!cJSON_IsObject(v) || (k = v->child) == NULL || k->next != NULL)
        return perr(c, "must be an object with exactly one of \"value\", \"text\", "
                       "\"text_any\", \"phrase\", \"prefix\", \"any\", \"except\"");
    if ((rc = check_keys(c, v, kinds)) != ERR_OK)
        return rc;
    if (strcmp(k->string, "value") == 0)
        return parse_match_value(c, k, m);
    if (strcmp(k->string, "any") == 0 || strcmp(k->string, "except") == 0)
        return parse_any_list(c, k, k->string, m, k->string[0] == 'e');
    if (!cJSON_IsString(k))
        return perr(c, "\"%s\" must be a string", k->string);
    if (strcmp(k->string, "text_any") == 0)
        return parse_text_any(c, k->valuestring, m);
    m->kind = strcmp(k->string, "prefix") == 0   ? FM_PREFIX
              : strcmp(k->string, "phrase") == 0 ? FM_PHRASE
                                                 : FM_TEXT;
    m->slen = strlen(k->valuestring);
    return (m->s = pstrdup(c, k->valuestring, m->slen)) ? ERR_OK : pnomem(c);
}

/* ------------------------------------------------------------------ */
/* range, values_count                                                 */

static const char *const bound_names[] = { "lt", "gt", "lte", "gte", NULL };
static const uint8_t bound_bits[] = { FB_LT, FB_GT, FB_LTE, FB_GTE };

static int parse_range(struct pctx *c, const cJSON *v, struct frange *r)
{
    double *fl[] = { &r->lt, &r->gt, &r->lte, &r->gte };
    struct fdt *dt[] = { &r->dlt, &r->dgt, &r->dlte, &r->dgte };
    bool is_dt = false;
    int rc, i;

    if ((rc = check_keys(c, v, bound_names)) != ERR_OK)
        return rc;
    for (i = 0; i < 4; i++)
        if (cJSON_IsString(member(v, bound_names[i])))
            is_dt = true; /* Qdrant: any string bound makes it a datetime range */
    r->kind = is_dt ? FR_DATETIME : FR_FLOAT;
    for (i = 0; i < 4; i++) {
        const cJSON *b = member(v, bound_names[i]);
        if (b == NULL)
            continue;
        r->has |= bound_bits[i];
        if (!is_dt) {
            if ((rc = get_number(c, b, bound_names[i], fl[i])) != ERR_OK)
                return rc;
        } else if (!cJSON_IsString(b)) {
            return perr(c, "\"%s\" must be a datetime string like the other bounds",
                        bound_names[i]);
        } else if (!filter_datetime_parse(b->valuestring, &dt[i]->sec, &dt[i]->nsec)) {
            return perr(c, "\"%s\": '%.64s' does not match accepted datetime format "
                           "(RFC3339). Example: 2014-01-01T00:00:00Z",
                        bound_names[i], b->valuestring);
        }
    }
    return ERR_OK;
}

static int parse_count(struct pctx *c, const cJSON *v, struct fcount *vc)
{
    uint64_t *dst[] = { &vc->lt, &vc->gt, &vc->lte, &vc->gte };
    int rc, i;

    if ((rc = check_keys(c, v, bound_names)) != ERR_OK)
        return rc;
    for (i = 0; i < 4; i++) {
        const cJSON *b = member(v, bound_names[i]);
        if (b == NULL)
            continue;
        vc->has |= bound_bits[i];
        if ((rc = get_uint(c, b, bound_names[i], UINT64_MAX, dst[i])) != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* geo                                                                 */

static int parse_geo_point(struct pctx *c, const cJSON *v, const char *name,
                           double *lon, double *lat)
{
    static const char *const keys[] = { "lon", "lat", NULL };
    size_t mark = path_push(c, ".%s", name);
    int rc;

    if (!cJSON_IsObject(v)) {
        path_pop(c, mark);
        return perr(c, "\"%s\" must be an object with \"lon\" and \"lat\"", name);
    }
    if ((rc = check_keys(c, v, keys)) == ERR_OK &&
        (rc = get_number(c, cJSON_GetObjectItemCaseSensitive(v, "lon"), "lon", lon)) == ERR_OK &&
        (rc = get_number(c, cJSON_GetObjectItemCaseSensitive(v, "lat"), "lat", lat)) == ERR_OK &&
        (*lon < -180 || *lon > 180 || *lat < -90 || *lat > 90))
        rc = perr(c, "expected \"lat\" = %g within [-90;90] and \"lon\" = %g within "
                     "[-180;180]", *lat, *lon);
    path_pop(c, mark);
    return rc;
}

static int parse_geo_box(struct pctx *c, const cJSON *v, struct ffield *fc)
{
    static const char *const keys[] = { "top_left", "bottom_right", NULL };
    struct fgeo_box *b = palloc(c, 1, sizeof(*b));
    int rc;

    if (b == NULL)
        return pnomem(c);
    if ((rc = check_keys(c, v, keys)) != ERR_OK ||
        (rc = parse_geo_point(c, cJSON_GetObjectItemCaseSensitive(v, "top_left"),
                              "top_left", &b->tl_lon, &b->tl_lat)) != ERR_OK ||
        (rc = parse_geo_point(c, cJSON_GetObjectItemCaseSensitive(v, "bottom_right"),
                              "bottom_right", &b->br_lon, &b->br_lat)) != ERR_OK)
        return rc;
    fc->box = b;
    return ERR_OK;
}

static int parse_geo_radius(struct pctx *c, const cJSON *v, struct ffield *fc)
{
    static const char *const keys[] = { "center", "radius", NULL };
    struct fgeo_radius *g = palloc(c, 1, sizeof(*g));
    int rc;

    if (g == NULL)
        return pnomem(c);
    if ((rc = check_keys(c, v, keys)) != ERR_OK ||
        (rc = parse_geo_point(c, cJSON_GetObjectItemCaseSensitive(v, "center"),
                              "center", &g->lon, &g->lat)) != ERR_OK ||
        (rc = get_number(c, cJSON_GetObjectItemCaseSensitive(v, "radius"), "radius",
                         &g->radius)) != ERR_OK)
        return rc;
    fc->radius = g;
    return ERR_OK;
}

/* A GeoLineString: {"points": [>= 4 points, first == last]}. */
static int parse_ring(struct pctx *c, const cJSON *v, struct fring *r)
{
    static const char *const keys[] = { "points", NULL };
    const cJSON *pts, *e;
    double *xy;
    size_t n, i = 0;
    int rc;

    if (!cJSON_IsObject(v))
        return perr(c, "must be an object with \"points\"");
    if ((rc = check_keys(c, v, keys)) != ERR_OK)
        return rc;
    pts = cJSON_GetObjectItemCaseSensitive(v, "points");
    if (!cJSON_IsArray(pts))
        return perr(c, "\"points\" must be an array of geo points");
    n = (size_t)cJSON_GetArraySize(pts);
    if (n <= 3)
        return perr(c, "polygon invalid, the size must be at least 4, got %zu", n);
    if ((xy = palloc(c, 2 * (n + 1), sizeof(*xy))) == NULL)
        return pnomem(c);
    cJSON_ArrayForEach(e, pts) {
        char name[32];
        snprintf(name, sizeof(name), "points[%zu]", i);
        if ((rc = parse_geo_point(c, e, name, &xy[2 * i], &xy[2 * i + 1])) != ERR_OK)
            return rc;
        i++;
    }
    if (fabs(xy[0] - xy[2 * n - 2]) > 2.220446049250313e-16 ||
        fabs(xy[1] - xy[2 * n - 1]) > 2.220446049250313e-16)
        return perr(c, "polygon invalid, the first and the last points should be the "
                       "same to form a closed line");
    if (xy[0] != xy[2 * n - 2] || xy[1] != xy[2 * n - 1]) {
        /* within epsilon but not equal: the geo crate closes the ring */
        xy[2 * n] = xy[0];
        xy[2 * n + 1] = xy[1];
        n++;
    }
    r->xy = xy;
    r->n = n;
    r->minx = r->maxx = xy[0];
    r->miny = r->maxy = xy[1];
    for (i = 1; i < n; i++) {
        r->minx = fmin(r->minx, xy[2 * i]);
        r->maxx = fmax(r->maxx, xy[2 * i]);
        r->miny = fmin(r->miny, xy[2 * i + 1]);
        r->maxy = fmax(r->maxy, xy[2 * i + 1]);
    }
    return ERR_OK;
}

static int parse_geo_polygon(struct pctx *c, const cJSON *v, struct ffield *fc)
{
    static const char *const keys[] = { "exterior", "interiors", NULL };
    struct fgeo_poly *g = palloc(c, 1, sizeof(*g));
    const cJSON *in, *e;
    struct fring *holes = NULL;
    size_t mark, i = 0;
    int rc;

    if (g == NULL)
        return pnomem(c);
    if ((rc = check_keys(c, v, keys)) != ERR_OK)
        return rc;
    mark = path_push(c, ".exterior");
    rc = parse_ring(c, cJSON_GetObjectItemCaseSensitive(v, "exterior"), &g->ext);
    path_pop(c, mark);
    if (rc != ERR_OK)
        return rc;
    in = member(v, "interiors");
    if (in != NULL && !cJSON_IsArray(in))
        return perr(c, "\"interiors\" must be an array");
    g->nholes = in == NULL ? 0 : (size_t)cJSON_GetArraySize(in);
    if (g->nholes > 0 && (holes = palloc(c, g->nholes, sizeof(*holes))) == NULL)
        return pnomem(c);
    cJSON_ArrayForEach(e, in) {
        mark = path_push(c, ".interiors[%zu]", i);
        rc = parse_ring(c, e, &holes[i++]);
        path_pop(c, mark);
        if (rc != ERR_OK)
            return rc;
    }
    g->holes = holes;
    fc->poly = g;
    return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* field conditions                                                    */

static int parse_tristate(struct pctx *c, const cJSON *obj, const char *name, int8_t *out)
{
    const cJSON *v = member(obj, name);

    *out = -1;
    if (v == NULL)
        return ERR_OK;
    if (!cJSON_IsBool(v))
        return perr(c, "\"%s\" must be a bool", name);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return ERR_OK;
}

/* One optional object-valued part of a field condition ("match", "range",
 * ...): absent or null is fine, anything else goes to fn under its name. */
typedef int (*part_fn)(struct pctx *c, const cJSON *v, struct ffield *fc);

static int field_part(struct pctx *c, const cJSON *obj, const char *name,
                      part_fn fn, struct ffield *fc, bool *any)
{
    const cJSON *v = member(obj, name);
    size_t mark;
    int rc;

    if (v == NULL)
        return ERR_OK;
    *any = true;
    if ((rc = need_object(c, v, name)) != ERR_OK)
        return rc;
    mark = path_push(c, ".%s", name);
    rc = fn(c, v, fc);
    path_pop(c, mark);
    return rc;
}

static int part_match(struct pctx *c, const cJSON *v, struct ffield *fc)
{
    return parse_match(c, v, &fc->m);
}

static int part_range(struct pctx *c, const cJSON *v, struct ffield *fc)
{
    return parse_range(c, v, &fc->r);
}

static int part_count(struct pctx *c, const cJSON *v, struct ffield *fc)
{
    fc->has_count = true;
    return parse_count(c, v, &fc->count);
}

static int parse_field(struct pctx *c, const cJSON *v, struct fcond *out)
{
    static const char *const keys[] = { "key", "match", "range", "geo_bounding_box",
                                        "geo_radius", "geo_polygon", "values_count",
                                        "is_empty", "is_null", NULL };
    struct ffield *fc = palloc(c, 1, sizeof(*fc));
    bool any = false;
    int rc;

    if (fc == NULL)
        return pnomem(c);
    memset(fc, 0, sizeof(*fc));
    if ((rc = check_keys(c, v, keys)) != ERR_OK ||
        (rc = parse_key_path(c, cJSON_GetObjectItemCaseSensitive(v, "key"), "key", false,
                             &fc->path)) != ERR_OK ||
        (rc = field_part(c, v, "match", part_match, fc, &any)) != ERR_OK ||
        (rc = field_part(c, v, "range", part_range, fc, &any)) != ERR_OK ||
        (rc = field_part(c, v, "geo_bounding_box", parse_geo_box, fc, &any)) != ERR_OK ||
        (rc = field_part(c, v, "geo_radius", parse_geo_radius, fc, &any)) != ERR_OK ||
        (rc = field_part(c, v, "geo_polygon", parse_geo_polygon, fc, &any)) != ERR_OK ||
        (rc = field_part(c, v, "values_count", part_count, fc, &any)) != ERR_OK ||
        (rc = parse_tristate(c, v, "is_empty", &fc->is_empty)) != ERR_OK ||
        (rc = parse_tristate(c, v, "is_null", &fc->is_null)) != ERR_OK)
        return rc;
    if (!any && fc->is_empty < 0 && fc->is_null < 0)
        return perr(c, "at least one field condition must be specified for key \"%.64s\"",
                    cJSON_GetObjectItemCaseSensitive(v, "key")->valuestring);
    const char *key = cJSON_GetObjectItemCaseSensitive(v, "key")->valuestring;
    if ((fc->key = pstrdup(c, key, strlen(key))) == NULL)
        return pnomem(c);
    out->kind = FC_FIELD;
    out->field = fc;
    return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* other conditions                                                    */

/* is_empty / is_null: {"<name>": {"key": "<path>"}} */
static int parse_payload_field(struct pctx *c, const cJSON *v, const char *name,
                               struct fcond *out)
{
    static const char *const keys[] = { "key", NULL };
    size_t mark = path_push(c, ".%s", name);
    int rc;

    if (!cJSON_IsObject(v)) {
        path_pop(c, mark);
        return perr(c, "\"%s\" must be an object like {\"key\": \"field\"}", name);
    }
    if ((rc = check_keys(c, v, keys)) == ERR_OK)
        rc = parse_key_path(c, cJSON_GetObjectItemCaseSensitive(v, "key"), "key", false,
                            &out->path);
    path_pop(c, mark);
    out->kind = name[3] == 'e' ? FC_IS_EMPTY : FC_IS_NULL;
    return rc;
}

static int cmp_ptid(const void *a, const void *b)
{
    return ptid_cmp(a, b);
}

static int parse_has_id(struct pctx *c, const cJSON *v, struct fcond *out)
{
    ptid_t *ids;
    const cJSON *e;
    size_t n, i = 0, u = 0;
    err_t id_err;

    if (!cJSON_IsArray(v))
        return perr(c, "\"has_id\" must be an array of point ids");
    n = (size_t)cJSON_GetArraySize(v);
    if ((ids = palloc(c, n, sizeof(*ids))) == NULL)
        return pnomem(c);
    cJSON_ArrayForEach(e, v) {
        if (ptid_from_json(e, &ids[i], &id_err) != ERR_OK) {
            path_push(c, ".has_id[%zu]", i);
            return perr(c, "%s", id_err.msg);
        }
        i++;
    }
    qsort(ids, n, sizeof(*ids), cmp_ptid);
    for (i = 0; i < n; i++)
        if (u == 0 || !ptid_eq(&ids[u - 1], &ids[i]))
            ids[u++] = ids[i];
    out->kind = c->in_nested ? FC_FALSE : FC_HAS_ID;
    out->ids = ids;
    out->nids = u;
    return ERR_OK;
}

static int parse_slice(struct pctx *c, const cJSON *v, struct fcond *out)
{
    static const char *const keys[] = { "total", "index", NULL };
    uint64_t total = 1, index = 0;
    size_t mark = path_push(c, ".slice");
    int rc;

    if (!cJSON_IsObject(v)) {
        path_pop(c, mark);
        return perr(c, "\"slice\" must be an object with \"total\" and \"index\"");
    }
    if ((rc = check_keys(c, v, keys)) == ERR_OK &&
        (rc = get_uint(c, cJSON_GetObjectItemCaseSensitive(v, "total"), "total",
                       UINT32_MAX, &total)) == ERR_OK &&
        (rc = get_uint(c, cJSON_GetObjectItemCaseSensitive(v, "index"), "index",
                       UINT32_MAX, &index)) == ERR_OK) {
        if (total == 0)
            rc = perr(c, "\"total\" must be at least 1");
        else if (index >= total)
            rc = perr(c, "slice index must be less than the total number of slices");
    }
    path_pop(c, mark);
    out->kind = c->in_nested ? FC_FALSE : FC_SLICE;
    out->total = (uint32_t)total;
    out->index = (uint32_t)index;
    return rc;
}

static int parse_node(struct pctx *c, const cJSON *v, const struct fnode **out);

static int parse_nested(struct pctx *c, const cJSON *v, struct fcond *out)
{
    static const char *const keys[] = { "key", "filter", NULL };
    const cJSON *flt;
    size_t mark = path_push(c, ".nested");
    bool was = c->in_nested;
    int rc;

    if (!cJSON_IsObject(v)) {
        path_pop(c, mark);
        return perr(c, "\"nested\" must be an object with \"key\" and \"filter\"");
    }
    if ((rc = check_keys(c, v, keys)) == ERR_OK &&
        (rc = parse_key_path(c, cJSON_GetObjectItemCaseSensitive(v, "key"), "key", true,
                             &out->path)) == ERR_OK) {
        flt = cJSON_GetObjectItemCaseSensitive(v, "filter");
        if (!cJSON_IsObject(flt)) {
            rc = perr(c, "\"filter\" must be an object");
        } else {
            size_t m2 = path_push(c, ".filter");
            c->in_nested = true;
            rc = parse_node(c, flt, &out->filter);
            c->in_nested = was;
            path_pop(c, m2);
        }
    }
    path_pop(c, mark);
    out->kind = FC_NESTED;
    return rc;
}

static const char *const cond_keys[] = { "is_empty", "is_null", "has_id", "has_vector",
                                         "slice", "nested", NULL };

/* The condition kinds other than field conditions and sub-filters. */
static int parse_special(struct pctx *c, const cJSON *k, struct fcond *out)
{
    const char *name = k->string;

    if (strcmp(name, "is_empty") == 0 || strcmp(name, "is_null") == 0)
        return parse_payload_field(c, k, name, out);
    if (strcmp(name, "has_id") == 0)
        return parse_has_id(c, k, out);
    if (strcmp(name, "slice") == 0)
        return parse_slice(c, k, out);
    if (strcmp(name, "nested") == 0)
        return parse_nested(c, k, out);
    if (!cJSON_IsString(k))
        return perr(c, "\"has_vector\" must be a string");
    out->kind = c->in_nested ? FC_FALSE : FC_HAS_VECTOR;
    out->vector = pstrdup(c, k->valuestring, strlen(k->valuestring));
    return out->vector != NULL ? ERR_OK : pnomem(c);
}

static int parse_cond(struct pctx *c, const cJSON *v, struct fcond *out)
{
    const cJSON *k, *found = NULL;
    const char *const *a;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(v))
        return perr(c, "a condition must be an object");
    if (cJSON_GetObjectItemCaseSensitive(v, "key") != NULL)
        return parse_field(c, v, out);
    for (k = v->child; k != NULL && found == NULL; k = k->next)
        for (a = cond_keys; *a != NULL && found == NULL; a++)
            if (strcmp(k->string, *a) == 0)
                found = k;
    if (found == NULL) {
        out->kind = FC_FILTER;
        return parse_node(c, v, &out->filter);
    }
    for (k = v->child; k != NULL; k = k->next)
        if (k != found)
            return perr(c, "unexpected field \"%.64s\" next to \"%s\"", k->string,
                        found->string);
    return parse_special(c, found, out);
}

/* An array of conditions, each reported as ".<name>[i]". */
static int parse_cond_array(struct pctx *c, const cJSON *arr, const char *name,
                            struct fclause *out)
{
    struct fcond *items;
    const cJSON *e;
    size_t n = (size_t)cJSON_GetArraySize(arr), i = 0;

    if ((items = palloc(c, n, sizeof(*items))) == NULL)
        return pnomem(c);
    cJSON_ArrayForEach(e, arr) {
        size_t mark = path_push(c, ".%s[%zu]", name, i);
        int rc = parse_cond(c, e, &items[i++]);
        path_pop(c, mark);
        if (rc != ERR_OK)
            return rc;
    }
    out->items = items;
    out->n = n;
    return ERR_OK;
}

/* must / should / must_not: one condition, an array of them, or null. */
static int parse_clause(struct pctx *c, const cJSON *obj, const char *name,
                        struct fclause *out, bool *present)
{
    const cJSON *v = member(obj, name);
    struct fcond *item;
    size_t mark;
    int rc;

    *present = v != NULL;
    if (v == NULL)
        return ERR_OK;
    if (cJSON_IsArray(v))
        return parse_cond_array(c, v, name, out);
    if (!cJSON_IsObject(v))
        return perr(c, "\"%s\" must be a condition or an array of conditions", name);
    if ((item = palloc(c, 1, sizeof(*item))) == NULL)
        return pnomem(c);
    mark = path_push(c, ".%s", name);
    rc = parse_cond(c, v, item);
    path_pop(c, mark);
    out->items = item;
    out->n = 1;
    return rc;
}

static int parse_min_should(struct pctx *c, const cJSON *obj, struct fnode *n)
{
    static const char *const keys[] = { "conditions", "min_count", NULL };
    const cJSON *v = member(obj, "min_should"), *conds;
    size_t mark;
    int rc;

    if (v == NULL)
        return ERR_OK;
    mark = path_push(c, ".min_should");
    if (!cJSON_IsObject(v)) {
        rc = perr(c, "must be an object with \"conditions\" and \"min_count\"");
    } else if ((rc = check_keys(c, v, keys)) == ERR_OK) {
        conds = cJSON_GetObjectItemCaseSensitive(v, "conditions");
        if (!cJSON_IsArray(conds))
            rc = perr(c, "\"conditions\" must be an array of conditions");
        else if ((rc = parse_cond_array(c, conds, "conditions", &n->min_should)) == ERR_OK &&
                 (rc = get_uint(c, cJSON_GetObjectItemCaseSensitive(v, "min_count"),
                                "min_count", UINT64_MAX, &n->min_count)) == ERR_OK &&
                 n->min_count == 0)
            rc = perr(c, "\"min_count\" must be greater than 0");
    }
    path_pop(c, mark);
    n->has_min_should = true;
    return rc;
}

static int parse_node(struct pctx *c, const cJSON *v, const struct fnode **out)
{
    static const char *const keys[] = { "should", "min_should", "must", "must_not", NULL };
    struct fnode *n;
    bool must, must_not;
    int rc;

    if (++c->depth > MAX_DEPTH) {
        rc = perr(c, "filters nested deeper than %d levels", MAX_DEPTH);
        goto done;
    }
    if ((n = palloc(c, 1, sizeof(*n))) == NULL) {
        rc = pnomem(c);
        goto done;
    }
    memset(n, 0, sizeof(*n));
    if ((rc = check_keys(c, v, keys)) != ERR_OK ||
        (rc = parse_clause(c, v, "should", &n->should, &n->has_should)) != ERR_OK ||
        (rc = parse_min_should(c, v, n)) != ERR_OK ||
        (rc = parse_clause(c, v, "must", &n->must, &must)) != ERR_OK ||
        (rc = parse_clause(c, v, "must_not", &n->must_not, &must_not)) != ERR_OK)
        goto done;
    *out = n;
done:
    c->depth--;
    return rc;
}

/* ------------------------------------------------------------------ */
/* public                                                              */

int filter_parse_named(const cJSON *json, const char *name, filter_t **out,
                       err_t *err)
{
    struct pctx c;
    filter_t *f;
    int rc;

    *out = NULL;
    if ((f = calloc(1, sizeof(*f))) == NULL)
        return err_set(err, ERR_NOMEM, "out of memory compiling filter");
    memset(&c, 0, sizeof(c));
    c.f = f;
    c.err = err;
    path_push(&c, "%s", name != NULL ? name : "filter");
    if (json == NULL || cJSON_IsNull(json)) {
        f->match_all = true;
        *out = f;
        return ERR_OK;
    }
    if (!cJSON_IsObject(json)) {
        rc = perr(&c, "must be an object");
        goto fail;
    }
    if ((rc = parse_node(&c, json, &f->root)) != ERR_OK)
        goto fail;
    f->match_all = !f->root->has_should && !f->root->has_min_should &&
                   f->root->must.n == 0 && f->root->must_not.n == 0;
    *out = f;
    return ERR_OK;
fail:
    filter_free(f);
    return rc;
}

int filter_parse(const cJSON *json, filter_t **out, err_t *err)
{
    return filter_parse_named(json, "filter", out, err);
}
