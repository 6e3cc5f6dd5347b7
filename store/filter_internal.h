/*
 * filter_internal.h - the compiled form of a filter, shared by
 * filter_parse.c (which builds it) and filter.c (which evaluates it).
 * Not for use outside store/filter*.c.
 *
 * Every node, string and array of a compiled filter lives in one arena
 * owned by the filter_t, so a half-built filter is released with a single
 * call on any parse error and filter_free is one walk over the chunk list.
 * Pointers in these structs are const because nothing changes after
 * filter_parse returns; that is what makes sharing across threads safe.
 */
#ifndef VECLOG_FILTER_INTERNAL_H
#define VECLOG_FILTER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "filter.h"

/* ---- key paths ---- */

enum fseg_kind {
    FSEG_KEY = 0,   /* .name or "quoted name" */
    FSEG_INDEX = 1, /* [3] */
    FSEG_ALL = 2    /* [] */
};

struct fseg {
    uint8_t kind;
    size_t len;       /* FSEG_KEY: bytes in key (key need not be NUL-ended) */
    const char *key;  /* FSEG_KEY */
    size_t index;     /* FSEG_INDEX */
};

struct fpath {
    const struct fseg *segs; /* segs[0] is always a FSEG_KEY */
    size_t n;
};

/* Split path into segments.  Stores up to cap segments into segs (keys
 * point into path) and returns the number of segments, which may exceed cap;
 * returns 0 if the path is invalid. */
size_t filter_path_split(const char *path, struct fseg *segs, size_t cap);

/* ---- instants ---- */

struct fdt {
    int64_t sec;
    int32_t nsec;
};

/* ---- field conditions ---- */

enum fmatch_kind {
    FM_NONE = 0,
    FM_STR,        /* match.value: string */
    FM_INT,        /* match.value: integer */
    FM_BOOL,       /* match.value: bool */
    FM_TEXT,       /* match.text: substring (text index: all tokens) */
    FM_TEXT_ANY,   /* match.text_any: any whitespace token is a substring
                    * (text index: any token); s is the whole query */
    FM_PREFIX,     /* match.prefix */
    FM_ANY_STR,    /* match.any: strings (also the empty list) */
    FM_ANY_INT,    /* match.any: integers */
    FM_EXCEPT_STR, /* match.except: strings (also the empty list) */
    FM_EXCEPT_INT, /* match.except: integers */
    FM_PHRASE      /* match.phrase: substring (text index: token sequence) */
};

struct fmatch {
    uint8_t kind;
    bool b;
    int64_t i;
    const char *s;        /* FM_STR, FM_TEXT, FM_TEXT_ANY, FM_PHRASE, FM_PREFIX */
    size_t slen;
    const char **strs;    /* sorted (strcmp): ANY/EXCEPT_STR; tokens: TEXT_ANY */
    size_t nstrs;
    const int64_t *ints;  /* sorted: ANY/EXCEPT_INT */
    size_t nints;
};

enum { FB_LT = 1, FB_GT = 2, FB_LTE = 4, FB_GTE = 8 };

enum frange_kind { FR_NONE = 0, FR_FLOAT, FR_DATETIME };

struct frange {
    uint8_t kind;
    uint8_t has;                  /* FB_* bits */
    double lt, gt, lte, gte;      /* FR_FLOAT */
    struct fdt dlt, dgt, dlte, dgte; /* FR_DATETIME */
};

struct fcount {
    uint8_t has;                  /* FB_* bits */
    uint64_t lt, gt, lte, gte;
};

struct fgeo_box {
    double tl_lon, tl_lat, br_lon, br_lat;
};

struct fgeo_radius {
    double lon, lat, radius;
};

struct fring {
    const double *xy;   /* lon, lat pairs; closed (first == last) */
    size_t n;           /* points */
    double minx, miny, maxx, maxy;
};

struct fgeo_poly {
    struct fring ext;
    const struct fring *holes;
    size_t nholes;
};

struct ffield {
    struct fpath path;
    const char *key;   /* the key path as written (for filter_must_eq) */
    struct fmatch m;
    struct frange r;
    const struct fgeo_box *box;
    const struct fgeo_radius *radius;
    const struct fgeo_poly *poly;
    bool has_count;
    struct fcount count;
    int8_t is_empty; /* -1 unset, 0 false, 1 true */
    int8_t is_null;  /* -1 unset, 0 false, 1 true */
};

/* ---- conditions and filters ---- */

enum fcond_kind {
    FC_FIELD = 0,
    FC_IS_EMPTY,
    FC_IS_NULL,
    FC_HAS_ID,
    FC_HAS_VECTOR,
    FC_SLICE,
    FC_NESTED,
    FC_FILTER,
    FC_FALSE  /* has_id / has_vector / slice inside nested: Qdrant says false */
};

struct fnode;

struct fcond {
    uint8_t kind;
    const struct ffield *field;   /* FC_FIELD */
    struct fpath path;            /* FC_IS_EMPTY, FC_IS_NULL, FC_NESTED (with []) */
    const ptid_t *ids;            /* FC_HAS_ID: sorted by ptid_cmp */
    size_t nids;
    const char *vector;           /* FC_HAS_VECTOR */
    uint32_t total, index;        /* FC_SLICE */
    const struct fnode *filter;   /* FC_NESTED, FC_FILTER */
};

struct fclause {
    const struct fcond *items;
    size_t n;
};

struct fnode {
    bool has_should;       /* should given (an empty should matches nothing) */
    bool has_min_should;
    struct fclause should, min_should, must, must_not;
    uint64_t min_count;
};

/* ---- arena ---- */

struct farena_chunk;

struct filter {
    struct farena_chunk *chunks;
    const struct fnode *root;
    bool match_all;
};

void *filter_arena_alloc(struct filter *f, size_t size);
void filter_arena_free(struct filter *f);

/* ---- filter_text.c: the full-text token scanner ---------------------- */

/* A token scanner: raw tokens of the text, normalised into buf. */
struct filter_tok {
    const filter_text_params_t *tp;
    const unsigned char *p;   /* where scanning goes on */
    bool doc;
    char buf[FILTER_TOKEN_CAP + 8];
    size_t len;               /* the current token: buf[0..len) */
    size_t wlen, wchars, n;   /* prefix documents: word in buf, next prefix (0: none) */
};

/* Start scanning s (borrowed while scanning) as a document (doc: prefix
 * tokenizers yield every prefix) or a query. */
void filter_tok_init(struct filter_tok *t, const filter_text_params_t *tp, const char *s, bool doc);

/* The next token into t->buf[0..t->len); false at the end. */
bool filter_tok_next(struct filter_tok *t);

/* dst continues from src's position (phrase matching tries each start). */
void filter_tok_fork(struct filter_tok *dst, const struct filter_tok *src);

#endif
