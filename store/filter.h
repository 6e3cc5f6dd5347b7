/*
 * filter.h - Qdrant's payload filter language: compile once, match many.
 *
 * A filter arrives as the JSON object of Qdrant's `Filter` schema
 * (must / should / must_not / min_should over field conditions, is_empty,
 * is_null, has_id, has_vector, slice, nested and sub-filters).  filter_parse
 * validates it completely and compiles it into an immutable tree: key paths
 * are split into segments, datetimes are turned into instants, id and value
 * lists are sorted for binary search, polygons get bounding boxes.
 * filter_match then evaluates that tree against one point's payload without
 * allocating, because it runs once per candidate point of a scan.
 *
 * The semantics are those of Qdrant 1.19 evaluating a filter on a field
 * that has no payload index (lib/segment/src/payload_storage/
 * condition_checker.rs and query_checker.rs); filter.c's header lists them.
 * Errors name the offending field: `filter.must[2].range: "gt" must be a
 * number`.  Parsing is stricter than Qdrant in one way: unknown object keys
 * are rejected (ERR_INVALID) instead of being silently ignored.
 */
#ifndef VECLOG_FILTER_H
#define VECLOG_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "ptid.h"

/* Opaque compiled filter; immutable after parse, safe to share across
 * threads. */
typedef struct filter filter_t;

/* Compile a Qdrant Filter JSON object.  json NULL or JSON null gives a
 * filter that matches everything.  On success *out is owned by the caller
 * (filter_free).  The borrowed json may be freed after return.  Errors:
 * ERR_INVALID naming the field (paths start at "filter"), ERR_NOMEM. */
int filter_parse(const cJSON *json, filter_t **out, err_t *err);

/* Same as filter_parse, but error paths start at `name` instead of
 * "filter" (e.g. "prefetch[1].filter"). */
int filter_parse_named(const cJSON *json, const char *name, filter_t **out,
                       err_t *err);

void filter_free(filter_t *f);

typedef struct filter_point {
    const ptid_t *id;        /* NULL: has_id and slice conditions are false */
    const cJSON *payload;    /* JSON object, or NULL for no payload */
    /* may be NULL: then has_vector conditions are false */
    bool (*has_vector)(void *ctx, const char *name);
    void *ctx;
} filter_point_t;

/* Does the point pass the filter?  A NULL filter passes everything.
 * Allocation-free and thread-safe. */
bool filter_match(const filter_t *f, const filter_point_t *p);

/* true if the filter is the match-everything filter (no clause that could
 * reject a point: {} or only empty must / must_not lists). */
bool filter_is_empty(const filter_t *f);

/* ---- equality conditions (for payload index planners) ---- */

enum filter_eq_type { FILTER_EQ_STR = 1, FILTER_EQ_INT, FILTER_EQ_BOOL };

/* One equality condition every matching point must satisfy: some value at
 * key (an array value: some element) equals one of the n values. */
typedef struct filter_eq {
    const char *key;          /* key path as written in the filter */
    int type;                 /* enum filter_eq_type */
    size_t n;                 /* values (0: the condition matches nothing) */
    const char *const *strs;  /* FILTER_EQ_STR: n strings */
    const int64_t *ints;      /* FILTER_EQ_INT: n integers */
    bool b;                   /* FILTER_EQ_BOOL (n == 1) */
} filter_eq_t;

/* The conjunctive equality conditions of f: the field conditions of its
 * top-level `must` (also when given as a single condition, and those of
 * sub-filters listed in that `must`, recursively) that consist of exactly
 * {key, match: {value}} (string, integer or bool) or {key, match: {any:
 * [...]}} (strings or integers).  A point passes f only if it passes every
 * one of them, so they may narrow candidates; f must still be evaluated in
 * full.  Stores at most cap into out and returns how many exist (may
 * exceed cap).  Everything in out is borrowed from f: valid until
 * filter_free(f).  Thread-safe (f is immutable). */
size_t filter_must_eq(const filter_t *f, filter_eq_t *out, size_t cap);

/* ---- range conditions (for payload index planners) ---- */

/* One bound of a range condition. */
typedef struct filter_bound {
    bool set;
    double num;               /* number range: the bound */
    int64_t sec;              /* datetime range: the instant (as */
    int32_t nsec;             /* filter_datetime_parse gives it) */
} filter_bound_t;

/* One range condition every matching point must satisfy: some value at
 * key (an array value: some element) is a number (datetime: a string that
 * parses as a datetime) within every set bound.  No bound set: any such
 * value passes. */
typedef struct filter_range {
    const char *key;          /* key path as written in the filter */
    bool datetime;            /* bounds were strings: datetime range */
    filter_bound_t gt, gte, lt, lte;
} filter_range_t;

/* The conjunctive range conditions of f, found where filter_must_eq finds
 * equality conditions: field conditions that consist of exactly {key,
 * range: {...}} (numbers or datetimes).  Same contract as filter_must_eq:
 * at most cap stored, the number that exist returned, key borrowed from
 * f, f must still be evaluated in full.  Thread-safe. */
size_t filter_must_range(const filter_t *f, filter_range_t *out, size_t cap);

/* ---- full-text conditions and tokenizers (payload text indexes) ---- */

/* Qdrant's TokenizerType.  FILTER_TOK_MULTILINGUAL is tokenized like
 * FILTER_TOK_WORD (filter.c says why). */
enum filter_tokenizer {
    FILTER_TOK_WORD = 0,
    FILTER_TOK_WHITESPACE,
    FILTER_TOK_PREFIX,
    FILTER_TOK_MULTILINGUAL
};

/* The parameters of a full-text index that change what match.text,
 * match.text_any and match.phrase mean on its field (Qdrant's
 * TextIndexParams; stopwords, stemmer and ascii_folding are not
 * implemented). */
typedef struct filter_text_params {
    int tokenizer;            /* enum filter_tokenizer */
    bool lowercase;           /* Qdrant's default: true */
    bool phrase_matching;     /* false: match.phrase matches nothing */
    size_t min_token_len;     /* characters; 0: no minimum */
    size_t max_token_len;     /* characters; SIZE_MAX: no maximum */
} filter_text_params_t;

/* Which fields have a full-text index: lookup returns the params of the
 * index on key path `key` (as written in the filter), or NULL.  Called
 * during filter_match_text, so it must be thread-safe and cheap. */
typedef struct filter_text_ctx {
    const filter_text_params_t *(*lookup)(const void *ctx, const char *key);
    const void *ctx;
} filter_text_ctx_t;

/* filter_match, with match.text / text_any / phrase on fields that tx
 * knows as text-indexed evaluated as Qdrant does with a full-text index:
 * the query's tokens against the tokens of all strings at the key
 * (filter.c has the details).  tx NULL: same as filter_match. */
bool filter_match_text(const filter_t *f, const filter_point_t *p, const filter_text_ctx_t *tx);

/* Tokens longer than this many bytes (after lowercasing) are cut to it, at
 * a character boundary, by the index and the evaluator alike. */
#define FILTER_TOKEN_CAP 1024

/* Tokenize text as a full-text index with params tp does: doc true for a
 * value being indexed (and for match.phrase queries, which Qdrant parses
 * as documents), false for match.text / text_any queries (different for
 * the prefix tokenizer: documents give every indexed prefix of each word,
 * queries each word cut to max_token_len).  Each token is handed to fn
 * normalised (lowercased when tp->lowercase) as tok[0..len), not
 * NUL-terminated, valid during the call only; fn returns false to stop.
 * Allocation-free. */
void filter_tokenize(const filter_text_params_t *tp, const char *text, bool doc,
                     bool (*fn)(void *arg, const char *tok, size_t len), void *arg);

enum filter_text_op { FILTER_TEXT_ALL = 1, FILTER_TEXT_ANY, FILTER_TEXT_PHRASE };

/* One full-text condition every matching point must satisfy: exactly
 * {key, match: {text | text_any | phrase}}. */
typedef struct filter_text {
    const char *key;          /* key path as written in the filter */
    int op;                   /* enum filter_text_op */
    const char *query;        /* the query string */
} filter_text_t;

/* The conjunctive full-text conditions of f, found where filter_must_eq
 * finds equality conditions; same contract. */
size_t filter_must_text(const filter_t *f, filter_text_t *out, size_t cap);

/* ---- geo conditions (for payload index planners) ---- */

/* A region every point a geo condition accepts lies in: latitudes within
 * [lat_lo, lat_hi] and longitudes within one of the n_lon intervals
 * [lon_lo[i], lon_hi[i]] (two when it crosses the antimeridian), all
 * within [-180, 180] x [-90, 90].  n_lon 0: no point can match.  Points
 * whose coordinates lie outside that world box are not covered: a planner
 * must keep them as candidates. */
typedef struct filter_geo {
    const char *key;          /* key path as written in the filter */
    double lat_lo, lat_hi;
    double lon_lo[2], lon_hi[2];
    size_t n_lon;
} filter_geo_t;

/* The conjunctive geo conditions of f: field conditions that consist of
 * exactly {key, geo_radius | geo_bounding_box | geo_polygon}, found where
 * filter_must_eq finds equality conditions; same contract. */
size_t filter_must_geo(const filter_t *f, filter_geo_t *out, size_t cap);

/* true if a and b are valid key paths naming the same segments ("a.b" and
 * "\"a\".b" are the same path). */
bool filter_path_same(const char *a, const char *b);

/* Collect the values at a Qdrant key path ("a.b", "a[].b", "a[0]",
 * "\"odd key\".x") into out (borrowed pointers into payload), storing at most
 * cap of them.  Returns how many were found, which may exceed cap (meaning
 * truncated).  An invalid path or a non-object payload finds nothing. */
size_t filter_path_values(const cJSON *payload, const char *path,
                          const cJSON **out, size_t cap);

/* true if path is a valid Qdrant key path. */
bool filter_path_is_valid(const char *path);

/* Parse a datetime the way Qdrant does for payload values and
 * datetime_range bounds: RFC 3339 and the relaxed forms Qdrant accepts
 * ("2023-02-08 10:49:00", "2023-02-08T10:49", "2023-02-08", offsets as
 * Z / UTC / +HH:MM / +HHMM / +HH; no offset means UTC).  On success stores
 * the instant as whole seconds since the Unix epoch plus nanoseconds
 * (nsec may reach 1999999999 during a leap second, which keeps the order
 * Qdrant uses).  Comparing (sec, nsec) pairs orders instants. */
bool filter_datetime_parse(const char *s, int64_t *sec, int32_t *nsec);

/* The hash behind the `slice` condition (Qdrant's public contract):
 * SipHash-2-4 with a zero key over 8 little-endian bytes of a numeric id or
 * the 16 bytes of a UUID.  A point is in slice {total, index} iff
 * hash % total == index. */
uint64_t filter_slice_hash(const ptid_t *id);

#endif
