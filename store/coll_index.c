/*
 * coll_index.c - in-memory payload indexes (equality, ordered, geo and
 * full-text) of a collection and the planner that uses them.  Part of the
 * coll module (coll.h, coll_internal.h).
 *
 * STRUCTURE
 * One index per indexed key path: a chained hash table from value to the
 * set of slots whose payload holds that value at the path.  Values are
 * typed by the index kind: strings (keyword, uuid), integers (numbers that
 * are integral and fit an i64, as match.value compares them) or bools.  A
 * value found at the path that is an array contributes each element (one
 * level), exactly as a field condition tests it; values of other types are
 * not indexed (no equality condition of the index's type can match them).
 * A slot set is an open-addressing table of slot + 1 with linear probing
 * and backward-shift deletion, so adding or removing a point costs
 * O(values it holds), whatever the cardinality of the values.
 *
 * ORDERED (range) indexes: float, datetime and integer with
 * COLL_INDEX_RANGE keep a set of (key, slot) entries in sorted chunks of
 * at most OCHUNK entries (a one-level B+tree: a directory of chunk
 * pointers, binary-searched on each chunk's last entry).  The key of a
 * number is its double mapped to an int64 of the same order (-0 as 0), of
 * a datetime its instant (seconds, nanoseconds).  Every number (resp.
 * datetime string) at the path is an entry, also non-integral ones in an
 * integer index, because range compares any number.  Inserting or
 * removing an entry costs a binary search and a memmove within one chunk
 * (a full chunk splits in two, an empty one leaves the directory).
 *
 * GEO indexes use the value table with grid cells as keys (see "geo
 * cells" below): a point is in one cell per grid level, a query region
 * (filter_must_geo: the bounding box of a box, radius or polygon, split
 * at the antimeridian, widened to every longitude around a pole) maps to
 * the cells it overlaps on the finest grid where they are few.
 *
 * TEXT indexes hold a coll_textidx_t (coll_textidx.c): token -> slots,
 * fed with the field's strings.  A text index also changes what
 * match.text / text_any / phrase mean on its field (token semantics, as
 * in Qdrant), so every filter of the collection is evaluated through
 * coll_filter_match, which tells filter_match_text the params of the
 * text index of each key (a broken index too: it is incomplete, not
 * absent).
 *
 * CONSISTENCY
 * The applier calls coll_index_update for every slot whose payload or
 * liveness changes, inside the swap (lock held exclusively), so readers
 * see index and slots change together.  coll_index_set builds with
 * apply_mu held (memory cannot change, readers go on) and installs under
 * the writer lock.  Purging tombstones renumbers slots: it rebuilds.  An
 * allocation failure while updating marks that index broken; the planner
 * ignores broken indexes (full scan) until coll_index_set rebuilds it, so
 * results never depend on an index being complete.
 *
 * PLANNING
 * filter_must_eq lists the equality conditions every match must satisfy.
 * Each one on an indexed path whose value type fits the index kind gives a
 * candidate set (the union over its values), and so does each condition
 * of filter_must_range on a path with an ordered index of its type
 * (number or datetime): the entries between the two positions its bounds
 * give, whose difference estimates the set's size (an array holding two
 * values in range counts twice).  The smallest is taken, sorted ascending
 * (the order of a full scan) and deduplicated.  Full-text conditions
 * (filter_must_text) on a text-indexed path offer the intersection of
 * their tokens' slot sets (text_any: the union), estimated by the
 * smallest set (the sum); geo conditions the slots of their cells, plus
 * those of points outside the world box.  Callers evaluate the full
 * filter on each candidate, so results equal a full scan's.
 */
#include "coll_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "log.h"

#define PLAN_EQ_MAX 16
#define OCHUNK 256

/* One entry of an ordered index; entries are ordered by (hi, lo, slot). */
typedef struct oent {
    int64_t hi;               /* number: ordered double bits; datetime: seconds */
    int32_t lo;               /* datetime: nanoseconds */
    uint32_t slot;
} oent_t;

typedef struct ochunk {
    uint32_t n;
    oent_t e[OCHUNK];
} ochunk_t;

typedef struct oidx {
    ochunk_t **ch;
    size_t nch, cap;
} oidx_t;

/* A position in an ordered index: entry i of chunk c (c == nch: the end). */
typedef struct opos {
    size_t c;
    uint32_t i;
} opos_t;

typedef struct ival {
    struct ival *next;
    uint64_t hash;
    int64_t i;                /* integer, or bool as 0 / 1 */
    coll_sset_t slots;
    char s[];                 /* string kinds */
} ival_t;

typedef struct coll_index {
    char *field;
    int kind;                 /* enum coll_index_kind */
    bool ordered;             /* keeps ord (range conditions) */
    bool tenant;              /* COLL_INDEX_TENANT: segments are laid out by its values */
    bool broken;
    oidx_t ord;
    coll_textidx_t *text;     /* COLL_INDEX_TEXT */
    ival_t **buckets;
    size_t nb, nvals;         /* nb: 0 or a power of two */
} coll_index_t;

/* A value as the index keys it. */
typedef struct ikey {
    const char *s;            /* string kinds */
    int64_t i;
    uint64_t hash;
} ikey_t;

/* ---- slot sets --------------------------------------------------------- */

static uint32_t mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static void sset_put(uint32_t *t, uint32_t cap, uint32_t v)
{
    uint32_t mask = cap - 1;
    uint32_t i = mix32(v) & mask;
    while (t[i] != 0)
        i = (i + 1) & mask;
    t[i] = v;
}

int coll_sset_add(coll_sset_t *s, uint32_t slot)
{
    uint32_t v = slot + 1;

    if ((s->n + 1) * 4 > s->cap * 3) {
        uint32_t cap = s->cap ? s->cap * 2 : 4;
        uint32_t *t = calloc(cap, sizeof(uint32_t));
        if (t == NULL)
            return ERR_NOMEM;
        for (uint32_t i = 0; i < s->cap; i++)
            if (s->t[i] != 0)
                sset_put(t, cap, s->t[i]);
        free(s->t);
        s->t = t;
        s->cap = cap;
    }
    uint32_t mask = s->cap - 1;
    for (uint32_t i = mix32(v) & mask;; i = (i + 1) & mask) {
        if (s->t[i] == v)
            return ERR_OK;
        if (s->t[i] == 0) {
            s->t[i] = v;
            s->n++;
            return ERR_OK;
        }
    }
}

void coll_sset_del(coll_sset_t *s, uint32_t slot)
{
    uint32_t v = slot + 1, mask = s->cap - 1, i;

    if (s->cap == 0)
        return;
    for (i = mix32(v) & mask; s->t[i] != v; i = (i + 1) & mask)
        if (s->t[i] == 0)
            return;
    /* backward-shift: move later entries of the run into the hole */
    for (uint32_t j = (i + 1) & mask; s->t[j] != 0; j = (j + 1) & mask) {
        uint32_t home = mix32(s->t[j]) & mask;
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            s->t[i] = s->t[j];
            i = j;
        }
    }
    s->t[i] = 0;
    s->n--;
}

bool coll_sset_has(const coll_sset_t *s, uint32_t slot)
{
    uint32_t v = slot + 1, mask = s->cap - 1;

    if (s->cap == 0)
        return false;
    for (uint32_t i = mix32(v) & mask; s->t[i] != 0; i = (i + 1) & mask)
        if (s->t[i] == v)
            return true;
    return false;
}

/* ---- ordered indexes ---------------------------------------------------- */

static int oent_cmp(const oent_t *a, const oent_t *b)
{
    if (a->hi != b->hi)
        return a->hi < b->hi ? -1 : 1;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return (a->slot > b->slot) - (a->slot < b->slot);
}

/* Does entry e come after key (hi, lo) (strict), resp. not before it? */
static bool oent_after(const oent_t *e, int64_t hi, int32_t lo, bool strict)
{
    if (e->hi != hi)
        return e->hi > hi;
    return strict ? e->lo > lo : e->lo >= lo;
}

/* A double as an int64 of the same order (-0 as 0; NaNs beyond the
 * infinities, never inside a bounded range). */
static int64_t dbl_key(double d)
{
    uint64_t u;

    if (d == 0)
        d = 0.0;
    memcpy(&u, &d, sizeof(u));
    u = (u >> 63) ? ~u : u | (1ULL << 63);
    return (int64_t)(u ^ (1ULL << 63));
}

/* The ordered key of payload value v, or false if the index holds none. */
static bool okey_of(const coll_index_t *ix, const cJSON *v, oent_t *e)
{
    if (ix->kind == COLL_INDEX_DATETIME) {
        int64_t sec;
        int32_t ns;
        if (!cJSON_IsString(v) || v->valuestring == NULL ||
            !filter_datetime_parse(v->valuestring, &sec, &ns))
            return false;
        e->hi = sec;
        e->lo = ns;
        return true;
    }
    if (!cJSON_IsNumber(v))
        return false;
    e->hi = dbl_key(v->valuedouble);
    e->lo = 0;
    return true;
}

/* First chunk whose last entry is >= e (nch - 1 if none); nch > 0. */
static size_t ochunk_for(const oidx_t *o, const oent_t *e)
{
    size_t lo = 0, hi = o->nch - 1;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const ochunk_t *c = o->ch[mid];
        if (oent_cmp(&c->e[c->n - 1], e) >= 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* First index in chunk c of an entry >= e. */
static uint32_t ochunk_lower(const ochunk_t *c, const oent_t *e)
{
    uint32_t lo = 0, hi = c->n;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (oent_cmp(&c->e[mid], e) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int odir_insert(oidx_t *o, size_t at, ochunk_t *c)
{
    if (o->nch == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 8;
        ochunk_t **ch = realloc(o->ch, cap * sizeof(*ch));
        if (ch == NULL)
            return ERR_NOMEM;
        o->ch = ch;
        o->cap = cap;
    }
    memmove(&o->ch[at + 1], &o->ch[at], (o->nch - at) * sizeof(*o->ch));
    o->ch[at] = c;
    o->nch++;
    return ERR_OK;
}

/* Split full chunk k in two halves. */
static int ochunk_split(oidx_t *o, size_t k)
{
    ochunk_t *a = o->ch[k], *b = malloc(sizeof(*b));

    if (b == NULL || odir_insert(o, k + 1, b) != ERR_OK) {
        free(b);
        return ERR_NOMEM;
    }
    b->n = a->n / 2;
    a->n -= b->n;
    memcpy(b->e, &a->e[a->n], b->n * sizeof(oent_t));
    return ERR_OK;
}

static int ord_insert(oidx_t *o, const oent_t *e)
{
    size_t k;
    ochunk_t *c;

    if (o->nch == 0) {
        c = malloc(sizeof(*c));
        if (c == NULL || odir_insert(o, 0, c) != ERR_OK) {
            free(c);
            return ERR_NOMEM;
        }
        c->n = 0;
    }
    k = ochunk_for(o, e);
    c = o->ch[k];
    uint32_t i = ochunk_lower(c, e);
    if (i < c->n && oent_cmp(&c->e[i], e) == 0)
        return ERR_OK;        /* a value twice in one payload */
    if (c->n == OCHUNK) {
        if (ochunk_split(o, k) != ERR_OK)
            return ERR_NOMEM;
        if (i > c->n) {
            i -= c->n;
            c = o->ch[k + 1];
        }
    }
    memmove(&c->e[i + 1], &c->e[i], (c->n - i) * sizeof(oent_t));
    c->e[i] = *e;
    c->n++;
    return ERR_OK;
}

static void ord_remove(oidx_t *o, const oent_t *e)
{
    if (o->nch == 0)
        return;
    size_t k = ochunk_for(o, e);
    ochunk_t *c = o->ch[k];
    uint32_t i = ochunk_lower(c, e);
    if (i >= c->n || oent_cmp(&c->e[i], e) != 0)
        return;
    memmove(&c->e[i], &c->e[i + 1], (c->n - i - 1) * sizeof(oent_t));
    if (--c->n == 0) {
        free(c);
        memmove(&o->ch[k], &o->ch[k + 1], (o->nch - k - 1) * sizeof(*o->ch));
        o->nch--;
    }
}

static void ord_clear(oidx_t *o)
{
    for (size_t k = 0; k < o->nch; k++)
        free(o->ch[k]);
    free(o->ch);
    memset(o, 0, sizeof(*o));
}

/* Position of the first entry after (strict) / not before key (hi, lo). */
static opos_t ord_seek(const oidx_t *o, int64_t hi, int32_t lo, bool strict)
{
    size_t a = 0, b = o->nch;
    opos_t p;

    while (a < b) { /* first chunk whose last entry qualifies */
        size_t mid = a + (b - a) / 2;
        const ochunk_t *c = o->ch[mid];
        if (oent_after(&c->e[c->n - 1], hi, lo, strict))
            b = mid;
        else
            a = mid + 1;
    }
    p.c = a;
    p.i = 0;
    if (a == o->nch)
        return p;
    const ochunk_t *c = o->ch[a];
    uint32_t x = 0, y = c->n;
    while (x < y) {
        uint32_t mid = x + (y - x) / 2;
        if (oent_after(&c->e[mid], hi, lo, strict))
            y = mid;
        else
            x = mid + 1;
    }
    p.i = x;
    return p;
}

static int opos_cmp(opos_t a, opos_t b)
{
    if (a.c != b.c)
        return a.c < b.c ? -1 : 1;
    return (a.i > b.i) - (a.i < b.i);
}

/* Entries from a (included) to b (excluded). */
static size_t ord_between(const oidx_t *o, opos_t a, opos_t b)
{
    size_t n = 0;

    if (opos_cmp(a, b) >= 0)
        return 0;
    if (a.c == b.c)
        return b.i - a.i;
    n = o->ch[a.c]->n - a.i;
    for (size_t k = a.c + 1; k < b.c; k++)
        n += o->ch[k]->n;
    return n + b.i;
}

/* ---- value tables ------------------------------------------------------ */

static uint64_t hash_bytes(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static uint64_t hash_int(int64_t i)
{
    uint64_t z = (uint64_t)i + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static bool kind_is_str(int kind)
{
    return kind == COLL_INDEX_KEYWORD || kind == COLL_INDEX_UUID;
}

/* serde_json's as_i64 as filter.c applies it to match.value integers. */
static bool as_i64(const cJSON *v, int64_t *out)
{
    double d = v->valuedouble;

    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || (double)(int64_t)d != d)
        return false;
    *out = (int64_t)d;
    return true;
}

/* The key of payload value v in an index of kind, or false if not indexed. */
static bool key_of(int kind, const cJSON *v, ikey_t *k)
{
    k->s = NULL;
    k->i = 0;
    if (kind_is_str(kind)) {
        if (!cJSON_IsString(v) || v->valuestring == NULL)
            return false;
        k->s = v->valuestring;
        k->hash = hash_bytes(k->s);
        return true;
    }
    if (kind != COLL_INDEX_INTEGER && kind != COLL_INDEX_BOOL)
        return false;         /* float, datetime: ordered only */
    if (kind == COLL_INDEX_INTEGER && !(cJSON_IsNumber(v) && as_i64(v, &k->i)))
        return false;
    if (kind == COLL_INDEX_BOOL) {
        if (!cJSON_IsBool(v))
            return false;
        k->i = cJSON_IsTrue(v) != 0;
    }
    k->hash = hash_int(k->i);
    return true;
}

static ival_t *ival_find(const coll_index_t *ix, const ikey_t *k)
{
    if (ix->nb == 0)
        return NULL;
    for (ival_t *v = ix->buckets[k->hash & (ix->nb - 1)]; v != NULL; v = v->next)
        if (v->hash == k->hash && (k->s ? strcmp(v->s, k->s) == 0 : v->i == k->i))
            return v;
    return NULL;
}

static int buckets_grow(coll_index_t *ix)
{
    size_t nb = ix->nb ? ix->nb * 2 : 64;
    ival_t **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < ix->nb; i++) {
        ival_t *v = ix->buckets[i], *next;
        for (; v != NULL; v = next) {
            next = v->next;
            v->next = b[v->hash & (nb - 1)];
            b[v->hash & (nb - 1)] = v;
        }
    }
    free(ix->buckets);
    ix->buckets = b;
    ix->nb = nb;
    return ERR_OK;
}

static ival_t *ival_get(coll_index_t *ix, const ikey_t *k)
{
    ival_t *v = ival_find(ix, k);
    size_t sl = k->s ? strlen(k->s) : 0;

    if (v != NULL)
        return v;
    if (ix->nvals + 1 > ix->nb && buckets_grow(ix) != ERR_OK)
        return NULL;
    v = calloc(1, sizeof(*v) + sl + 1);
    if (v == NULL)
        return NULL;
    v->hash = k->hash;
    v->i = k->i;
    if (k->s)
        memcpy(v->s, k->s, sl + 1);
    v->next = ix->buckets[k->hash & (ix->nb - 1)];
    ix->buckets[k->hash & (ix->nb - 1)] = v;
    ix->nvals++;
    return v;
}

/* Remove slot from value k; drop the value when no slot holds it. */
static void ival_remove_slot(coll_index_t *ix, const ikey_t *k, uint32_t slot)
{
    if (ix->nb == 0)
        return;
    ival_t **pp = &ix->buckets[k->hash & (ix->nb - 1)];
    for (; *pp != NULL; pp = &(*pp)->next) {
        ival_t *v = *pp;
        if (v->hash != k->hash || (k->s ? strcmp(v->s, k->s) != 0 : v->i != k->i))
            continue;
        coll_sset_del(&v->slots, slot);
        if (v->slots.n == 0) {
            *pp = v->next;
            free(v->slots.t);
            free(v);
            ix->nvals--;
        }
        return;
    }
}

static void index_clear(coll_index_t *ix)
{
    for (size_t i = 0; i < ix->nb; i++) {
        ival_t *v = ix->buckets[i], *next;
        for (; v != NULL; v = next) {
            next = v->next;
            free(v->slots.t);
            free(v);
        }
    }
    free(ix->buckets);
    ix->buckets = NULL;
    ix->nb = ix->nvals = 0;
    ord_clear(&ix->ord);
    if (ix->text != NULL)
        coll_textidx_clear(ix->text);
}

static void index_free(coll_index_t *ix)
{
    if (ix == NULL)
        return;
    index_clear(ix);
    coll_textidx_free(ix->text);
    free(ix->field);
    free(ix);
}

/* ---- geo cells --------------------------------------------------------- */

/* A geo index keys its value table by grid cells: every point is in one
 * cell of each of GEO_LEVELS grids (8, 1, 1/8 and 1/64 degree squares;
 * powers of two, so cell numbers are exact), a query takes the finest
 * grid on which the region filter_must_geo gives covers at most
 * GEO_CELLS_MAX cells.  Cell numbers grow with the coordinate, so a point
 * inside the region is in a cell between those of the region's corners.
 * Points outside the world box (or with non-finite coordinates) share one
 * cell that every query includes. */
#define GEO_LEVELS 4
#define GEO_CELLS_MAX 64
#define GEO_OUTSIDE ((int64_t)0x7f << 56)

static const double geo_size[GEO_LEVELS] = { 8, 1, 0.125, 0.015625 };

/* Cell number of coordinate x (origin: 90 for latitudes, 180 for
 * longitudes) on grid l. */
static uint32_t geo_idx(double x, double origin, int l)
{
    uint32_t n = (uint32_t)(2 * origin / geo_size[l]);
    double k = floor((x + origin) / geo_size[l]);

    if (!(k > 0))
        return 0;
    return k >= n ? n - 1 : (uint32_t)k;
}

static int64_t geo_key(int l, uint32_t lat, uint32_t lon)
{
    return ((int64_t)(l + 1) << 56) | ((int64_t)lat << 28) | (int64_t)lon;
}

/* The cells of payload value v (filter.c's geo_point_of: an object with
 * numeric "lon" and "lat"); returns how many (0: not a geo point). */
static size_t geo_keys_of(const cJSON *v, int64_t keys[GEO_LEVELS])
{
    const cJSON *x, *y;

    if (!cJSON_IsObject(v))
        return 0;
    x = cJSON_GetObjectItemCaseSensitive(v, "lon");
    y = cJSON_GetObjectItemCaseSensitive(v, "lat");
    if (!cJSON_IsNumber(x) || !cJSON_IsNumber(y))
        return 0;
    double lon = x->valuedouble, lat = y->valuedouble;
    if (!(lon >= -180 && lon <= 180 && lat >= -90 && lat <= 90)) {
        keys[0] = GEO_OUTSIDE;
        return 1;
    }
    for (int l = 0; l < GEO_LEVELS; l++)
        keys[l] = geo_key(l, geo_idx(lat, 90, l), geo_idx(lon, 180, l));
    return GEO_LEVELS;
}

static bool geo_empty(const filter_geo_t *g)
{
    return g->n_lon == 0 || !(g->lat_lo <= g->lat_hi);
}

/* Cells of region g on grid l. */
static size_t geo_ncells(const filter_geo_t *g, int l)
{
    size_t n = 0;

    if (geo_empty(g))
        return 0;
    size_t rows = geo_idx(g->lat_hi, 90, l) - geo_idx(g->lat_lo, 90, l) + 1;
    for (size_t i = 0; i < g->n_lon; i++)
        if (g->lon_lo[i] <= g->lon_hi[i])
            n += rows * (geo_idx(g->lon_hi[i], 180, l) - geo_idx(g->lon_lo[i], 180, l) + 1);
    return n;
}

static int geo_level(const filter_geo_t *g)
{
    for (int l = GEO_LEVELS - 1; l > 0; l--)
        if (geo_ncells(g, l) <= GEO_CELLS_MAX)
            return l;
    return 0;
}

/* The slots of cell key into out (NULL: count them); returns how many. */
static size_t geo_cell_slots(const coll_index_t *ix, int64_t key, uint32_t *out)
{
    ikey_t k = { NULL, key, hash_int(key) };
    const ival_t *v = ival_find(ix, &k);
    size_t w = 0;

    if (v == NULL)
        return 0;
    if (out == NULL)
        return v->slots.n;
    for (uint32_t t = 0; t < v->slots.cap; t++)
        if (v->slots.t[t] != 0)
            out[w++] = v->slots.t[t] - 1;
    return w;
}

/* The slots of every cell of g on grid l, plus those outside the world
 * box, into out (NULL: count them). */
static size_t geo_slots(const coll_index_t *ix, const filter_geo_t *g, int l, uint32_t *out)
{
    size_t w = geo_cell_slots(ix, GEO_OUTSIDE, out);

    if (geo_empty(g))
        return w;
    uint32_t la0 = geo_idx(g->lat_lo, 90, l), la1 = geo_idx(g->lat_hi, 90, l);
    for (size_t i = 0; i < g->n_lon; i++) {
        if (!(g->lon_lo[i] <= g->lon_hi[i]))
            continue;
        uint32_t lo0 = geo_idx(g->lon_lo[i], 180, l), lo1 = geo_idx(g->lon_hi[i], 180, l);
        for (uint32_t la = la0; la <= la1; la++)
            for (uint32_t lo = lo0; lo <= lo1; lo++)
                w += geo_cell_slots(ix, geo_key(l, la, lo), out ? out + w : NULL);
    }
    return w;
}

/* ---- maintenance ------------------------------------------------------- */

/* Add (remove) slot under key k of the value table. */
static int ival_slot(coll_index_t *ix, const ikey_t *k, uint32_t slot, bool add)
{
    if (!add) {
        ival_remove_slot(ix, k, slot);
        return ERR_OK;
    }
    ival_t *iv = ival_get(ix, k);
    return iv != NULL ? coll_sset_add(&iv->slots, slot) : ERR_NOMEM;
}

/* Text and geo indexes: one value (an array element, or not an array). */
static int index_one_special(coll_index_t *ix, uint32_t slot, const cJSON *v, bool add)
{
    int64_t keys[GEO_LEVELS];
    int rc = ERR_OK;

    if (ix->kind == COLL_INDEX_TEXT) {
        if (!cJSON_IsString(v) || v->valuestring == NULL)
            return ERR_OK;
        if (!add) {
            coll_textidx_del(ix->text, slot, v->valuestring);
            return ERR_OK;
        }
        return coll_textidx_add(ix->text, slot, v->valuestring);
    }
    size_t n = geo_keys_of(v, keys);
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        ikey_t k = { NULL, keys[i], hash_int(keys[i]) };
        rc = ival_slot(ix, &k, slot, add);
    }
    return rc;
}

static int index_one(coll_index_t *ix, uint32_t slot, const cJSON *v, bool add)
{
    ikey_t k;
    oent_t e;

    if (ix->kind == COLL_INDEX_TEXT || ix->kind == COLL_INDEX_GEO)
        return index_one_special(ix, slot, v, add);
    if (ix->ordered && okey_of(ix, v, &e)) {
        e.slot = slot;
        if (!add)
            ord_remove(&ix->ord, &e);
        else if (ord_insert(&ix->ord, &e) != ERR_OK)
            return ERR_NOMEM;
    }
    if (!key_of(ix->kind, v, &k))
        return ERR_OK;
    return ival_slot(ix, &k, slot, add);
}

/* Add (or remove) slot under every value payload holds at the path. */
static int index_payload(coll_index_t *ix, uint32_t slot, const cJSON *payload, bool add)
{
    const cJSON *local[16], **vals = local;
    size_t n = filter_path_values(payload, ix->field, vals, 16);
    int rc = ERR_OK;

    if (n > 16) {
        vals = malloc(n * sizeof(*vals));
        if (vals == NULL)
            return ERR_NOMEM;
        n = filter_path_values(payload, ix->field, vals, n);
    }
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        const cJSON *el;
        if (!cJSON_IsArray(vals[i])) {
            rc = index_one(ix, slot, vals[i], add);
            continue;
        }
        cJSON_ArrayForEach(el, vals[i])
            if (rc == ERR_OK)
                rc = index_one(ix, slot, el, add);
    }
    if (vals != local)
        free(vals);
    return rc;
}

static int index_build(const coll_t *c, coll_index_t *ix)
{
    index_clear(ix);
    ix->broken = false;
    for (uint32_t s = 0; s < c->n_slots; s++) {
        if (!(c->slots[s].flags & SLOT_LIVE) || c->slots[s].payload == NULL)
            continue;
        if (index_payload(ix, s, c->slots[s].payload, true) != ERR_OK) {
            index_clear(ix);
            ix->broken = true;
            return ERR_NOMEM;
        }
    }
    return ERR_OK;
}

void coll_index_update(coll_t *c, uint32_t slot, const cJSON *old_payload,
                       const cJSON *new_payload)
{
    for (size_t i = 0; i < c->n_idx; i++) {
        coll_index_t *ix = c->idx[i];
        if (ix->broken)
            continue;
        if (old_payload != NULL)
            index_payload(ix, slot, old_payload, false);
        if (new_payload != NULL && index_payload(ix, slot, new_payload, true) != ERR_OK) {
            ix->broken = true;
            index_clear(ix);
            log_warn("coll", "%s: payload index on \"%s\" disabled: no memory", c->dir,
                     ix->field);
        }
    }
}

void coll_index_rebuild_all(coll_t *c)
{
    for (size_t i = 0; i < c->n_idx; i++)
        if (index_build(c, c->idx[i]) != ERR_OK)
            log_warn("coll", "%s: payload index on \"%s\" disabled: no memory", c->dir,
                     c->idx[i]->field);
}

void coll_index_free_all(coll_t *c)
{
    for (size_t i = 0; i < c->n_idx; i++)
        index_free(c->idx[i]);
    free(c->idx);
    c->idx = NULL;
    c->n_idx = 0;
}

static ssize_t index_pos(const coll_t *c, const char *field)
{
    for (size_t i = 0; i < c->n_idx; i++)
        if (strcmp(c->idx[i]->field, field) == 0)
            return (ssize_t)i;
    return -1;
}

/* A new, empty index on field (tp: a text index with these params). */
static int index_new(const char *field, int base, const filter_text_params_t *tp,
                     coll_index_t **out, err_t *err)
{
    coll_index_t *ix;

    *out = NULL;
    if (field == NULL || !filter_path_is_valid(field))
        return err_set(err, ERR_INVALID, "index: \"%s\" is not a valid key path",
                       field ? field : "");
    ix = calloc(1, sizeof(*ix));
    if (ix == NULL || (ix->field = strdup(field)) == NULL ||
        (tp != NULL && (ix->text = coll_textidx_new(tp)) == NULL)) {
        index_free(ix);
        return err_set(err, ERR_NOMEM, "no memory");
    }
    ix->kind = base;
    *out = ix;
    return ERR_OK;
}

/* Build ix from memory and install it in place of field's index. */
static int index_install(coll_t *c, coll_index_t *ix, err_t *err)
{
    coll_index_t *old = NULL;
    int rc;

    pthread_mutex_lock(&c->apply_mu);
    rc = index_build(c, ix);
    if (rc == ERR_OK) {
        pthread_rwlock_wrlock(&c->lock);
        ssize_t p = index_pos(c, ix->field);
        if (p >= 0) {
            old = c->idx[p];
            c->idx[p] = ix;
        } else {
            coll_index_t **ni = realloc(c->idx, (c->n_idx + 1) * sizeof(*ni));
            if (ni == NULL) {
                rc = ERR_NOMEM;
            } else {
                c->idx = ni;
                c->idx[c->n_idx++] = ix;
            }
        }
        pthread_rwlock_unlock(&c->lock);
    }
    pthread_mutex_unlock(&c->apply_mu);
    if (rc != ERR_OK) {
        rc = err_set(err, ERR_NOMEM, "no memory building the index on \"%s\"", ix->field);
        index_free(ix);
        return rc;
    }
    index_free(old);
    return ERR_OK;
}

int coll_index_set(coll_t *c, const char *field, int kind, err_t *err)
{
    coll_index_t *ix;
    int rc, base = kind & ~(COLL_INDEX_RANGE | COLL_INDEX_TENANT);

    if ((base < COLL_INDEX_KEYWORD || base > COLL_INDEX_GEO ||
         ((kind & COLL_INDEX_RANGE) && base != COLL_INDEX_INTEGER) ||
         ((kind & COLL_INDEX_TENANT) && base != COLL_INDEX_KEYWORD)) &&
        filter_path_is_valid(field ? field : ""))
        return err_set(err, ERR_INVALID, "index: unknown kind %d", kind);
    if ((rc = index_new(field, base, NULL, &ix, err)) != ERR_OK)
        return rc;
    ix->ordered = (kind & COLL_INDEX_RANGE) || base == COLL_INDEX_FLOAT ||
                  base == COLL_INDEX_DATETIME;
    ix->tenant = (kind & COLL_INDEX_TENANT) != 0;
    return index_install(c, ix, err);
}

int coll_index_set_text(coll_t *c, const char *field, const filter_text_params_t *tp,
                        err_t *err)
{
    coll_index_t *ix;
    int rc;

    if (tp == NULL || tp->tokenizer < FILTER_TOK_WORD || tp->tokenizer > FILTER_TOK_MULTILINGUAL)
        return err_set(err, ERR_INVALID, "index: bad text index params");
    if ((rc = index_new(field, COLL_INDEX_TEXT, tp, &ix, err)) != ERR_OK)
        return rc;
    return index_install(c, ix, err);
}

void coll_index_drop(coll_t *c, const char *field)
{
    coll_index_t *old = NULL;

    if (field == NULL)
        return;
    pthread_mutex_lock(&c->apply_mu);
    pthread_rwlock_wrlock(&c->lock);
    ssize_t p = index_pos(c, field);
    if (p >= 0) {
        old = c->idx[p];
        c->idx[p] = c->idx[--c->n_idx];
    }
    pthread_rwlock_unlock(&c->lock);
    pthread_mutex_unlock(&c->apply_mu);
    index_free(old);
}

/* ---- planning ---------------------------------------------------------- */

static bool kind_fits(int kind, int eq_type)
{
    return (eq_type == FILTER_EQ_STR && kind_is_str(kind)) ||
           (eq_type == FILTER_EQ_INT && kind == COLL_INDEX_INTEGER) ||
           (eq_type == FILTER_EQ_BOOL && kind == COLL_INDEX_BOOL);
}

/* The posting of value j of e, or NULL if no point holds it. */
static const ival_t *eq_value(const coll_index_t *ix, const filter_eq_t *e, size_t j)
{
    ikey_t k = { 0 };

    if (e->type == FILTER_EQ_STR) {
        k.s = e->strs[j];
        k.hash = hash_bytes(k.s);
    } else {
        k.i = e->type == FILTER_EQ_BOOL ? (int64_t)e->b : e->ints[j];
        k.hash = hash_int(k.i);
    }
    return ival_find(ix, &k);
}

static size_t eq_size(const coll_index_t *ix, const filter_eq_t *e)
{
    size_t n = 0;
    for (size_t j = 0; j < e->n; j++) {
        const ival_t *v = eq_value(ix, e, j);
        n += v ? v->slots.n : 0;
    }
    return n;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

enum plan_src { SRC_EQ = 1, SRC_RANGE, SRC_TEXT, SRC_GEO };

/* The chosen candidate source: an equality condition, the entries of an
 * ordered index from `from` to `to`, a full-text condition or the cells of
 * a geo region on grid `level`. */
typedef struct plan {
    int src;                  /* enum plan_src; 0: none found */
    const coll_index_t *ix;
    const filter_eq_t *eq;
    opos_t from, to;
    const filter_text_t *text;
    const filter_geo_t *geo;
    int level;
    size_t n;                 /* estimated (an upper bound of) candidates */
} plan_t;

static void plan_offer(plan_t *p, const plan_t *cand)
{
    if (p->src == 0 || cand->n < p->n)
        *p = *cand;
}

static void plan_eqs(const coll_t *c, const filter_eq_t *eqs, size_t n_eq, plan_t *best)
{
    for (size_t i = 0; i < n_eq; i++) {
        for (size_t k = 0; k < c->n_idx; k++) {
            const coll_index_t *ix = c->idx[k];
            if (ix->broken || !kind_fits(ix->kind, eqs[i].type) ||
                !filter_path_same(ix->field, eqs[i].key))
                continue;
            plan_t p = { .src = SRC_EQ, .ix = ix, .eq = &eqs[i], .n = eq_size(ix, &eqs[i]) };
            plan_offer(best, &p);
        }
    }
}

/* The key of a range bound in an index of r's type. */
static void bound_key(const filter_range_t *r, const filter_bound_t *b, int64_t *hi, int32_t *lo)
{
    *hi = r->datetime ? b->sec : dbl_key(b->num);
    *lo = r->datetime ? b->nsec : 0;
}

/* Positions of the entries of ix within every bound of r. */
static void range_span(const coll_index_t *ix, const filter_range_t *r, opos_t *from, opos_t *to)
{
    const struct { const filter_bound_t *b; bool lower, strict; } bs[] = {
        { &r->gt, true, true }, { &r->gte, true, false },
        { &r->lt, false, false }, { &r->lte, false, true },
    };

    *from = (opos_t){ 0, 0 };
    *to = (opos_t){ ix->ord.nch, 0 };
    for (size_t i = 0; i < 4; i++) {
        int64_t hi;
        int32_t lo;
        if (!bs[i].b->set)
            continue;
        bound_key(r, bs[i].b, &hi, &lo);
        opos_t p = ord_seek(&ix->ord, hi, lo, bs[i].strict);
        if (bs[i].lower && opos_cmp(p, *from) > 0)
            *from = p;
        if (!bs[i].lower && opos_cmp(p, *to) < 0)
            *to = p;
    }
}

static void plan_ranges(const coll_t *c, const filter_range_t *rs, size_t n_r, plan_t *best)
{
    for (size_t i = 0; i < n_r; i++) {
        for (size_t k = 0; k < c->n_idx; k++) {
            const coll_index_t *ix = c->idx[k];
            if (ix->broken || !ix->ordered ||
                rs[i].datetime != (ix->kind == COLL_INDEX_DATETIME) ||
                !filter_path_same(ix->field, rs[i].key))
                continue;
            plan_t p = { .src = SRC_RANGE, .ix = ix };
            range_span(ix, &rs[i], &p.from, &p.to);
            p.n = ord_between(&ix->ord, p.from, p.to);
            plan_offer(best, &p);
        }
    }
}

/* Full-text conditions on text-indexed fields. */
static void plan_texts(const coll_t *c, const filter_text_t *ts, size_t n_t, plan_t *best)
{
    for (size_t i = 0; i < n_t; i++) {
        for (size_t k = 0; k < c->n_idx; k++) {
            const coll_index_t *ix = c->idx[k];
            if (ix->broken || ix->kind != COLL_INDEX_TEXT || !filter_path_same(ix->field, ts[i].key))
                continue;
            plan_t p = { .src = SRC_TEXT, .ix = ix, .text = &ts[i] };
            p.n = coll_textidx_estimate(ix->text, &ts[i]);
            if (p.n != SIZE_MAX)
                plan_offer(best, &p);
        }
    }
}

/* Geo conditions on geo-indexed fields. */
static void plan_geos(const coll_t *c, const filter_geo_t *gs, size_t n_g, plan_t *best)
{
    for (size_t i = 0; i < n_g; i++) {
        for (size_t k = 0; k < c->n_idx; k++) {
            const coll_index_t *ix = c->idx[k];
            if (ix->broken || ix->kind != COLL_INDEX_GEO || !filter_path_same(ix->field, gs[i].key))
                continue;
            plan_t p = { .src = SRC_GEO, .ix = ix, .geo = &gs[i], .level = geo_level(&gs[i]) };
            p.n = geo_slots(ix, &gs[i], p.level, NULL);
            plan_offer(best, &p);
        }
    }
}

/* The slots of the chosen source into out (room for p->n). */
static size_t plan_collect(const plan_t *p, uint32_t *out)
{
    const coll_index_t *ix = p->ix;
    size_t w = 0;

    if (p->src == SRC_TEXT)
        return coll_textidx_collect(ix->text, p->text, out);
    if (p->src == SRC_GEO)
        return geo_slots(ix, p->geo, p->level, out);
    if (p->src == SRC_EQ) {
        for (size_t j = 0; j < p->eq->n; j++) {
            const ival_t *v = eq_value(ix, p->eq, j);
            for (uint32_t t = 0; v != NULL && t < v->slots.cap; t++)
                if (v->slots.t[t] != 0)
                    out[w++] = v->slots.t[t] - 1;
        }
        return w;
    }
    for (opos_t q = p->from; opos_cmp(q, p->to) < 0;) {
        const ochunk_t *ch = ix->ord.ch[q.c];
        uint32_t end = q.c == p->to.c ? p->to.i : ch->n;
        for (uint32_t i = q.i; i < end; i++)
            out[w++] = ch->e[i].slot;
        q.c++;
        q.i = 0;
    }
    return w;
}

#define MIN_CAP(n) ((n) < PLAN_EQ_MAX ? (n) : PLAN_EQ_MAX)

/* The conjunctive conditions of a filter; plans point into them. */
typedef struct conds {
    filter_eq_t eqs[PLAN_EQ_MAX];
    filter_range_t rs[PLAN_EQ_MAX];
    filter_text_t ts[PLAN_EQ_MAX];
    filter_geo_t gs[PLAN_EQ_MAX];
} conds_t;

/* The most selective source among f's conjunctive conditions. */
static void plan_choose(const coll_t *c, const filter_t *f, conds_t *k, plan_t *best)
{
    size_t n;

    n = filter_must_eq(f, k->eqs, PLAN_EQ_MAX);
    plan_eqs(c, k->eqs, MIN_CAP(n), best);
    n = filter_must_range(f, k->rs, PLAN_EQ_MAX);
    plan_ranges(c, k->rs, MIN_CAP(n), best);
    n = filter_must_text(f, k->ts, PLAN_EQ_MAX);
    plan_texts(c, k->ts, MIN_CAP(n), best);
    n = filter_must_geo(f, k->gs, PLAN_EQ_MAX);
    plan_geos(c, k->gs, MIN_CAP(n), best);
}

bool coll_index_estimate(coll_t *c, const filter_t *f, size_t *n)
{
    plan_t best = { .src = 0 };
    conds_t k;

    *n = 0;
    if (c->n_idx == 0 || f == NULL)
        return false;
    plan_choose(c, f, &k, &best);
    *n = best.n;
    return best.src != 0;
}

bool coll_index_plan(coll_t *c, const filter_t *f, uint32_t **slots, size_t *n)
{
    plan_t best = { .src = 0 };
    conds_t k;
    size_t w;

    *slots = NULL;
    *n = 0;
    if (c->n_idx == 0 || f == NULL)
        return false;
    plan_choose(c, f, &k, &best);
    if (best.src == 0)
        return false;
    uint32_t *out = malloc((best.n ? best.n : 1) * sizeof(uint32_t));
    if (out == NULL)
        return false;
    w = plan_collect(&best, out);
    qsort(out, w, sizeof(uint32_t), u32_cmp);
    size_t u = 0;
    for (size_t i = 0; i < w; i++)
        if (u == 0 || out[u - 1] != out[i])
            out[u++] = out[i];
    __atomic_fetch_add(&c->st_index_reads, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->st_index_cands, (uint64_t)u, __ATOMIC_RELAXED);
    if (best.src == SRC_RANGE)
        __atomic_fetch_add(&c->st_index_range, 1, __ATOMIC_RELAXED);
    *slots = out;
    *n = u;
    return true;
}

/* ---- evaluation with text indexes ------------------------------------- */

static const filter_text_params_t *text_lookup(const void *ctx, const char *key)
{
    const coll_t *c = ctx;

    for (size_t i = 0; i < c->n_idx; i++) {
        const coll_index_t *ix = c->idx[i];
        /* a broken index still defines the semantics (it is only
         * incomplete), so it counts here */
        if (ix->kind == COLL_INDEX_TEXT &&
            (strcmp(ix->field, key) == 0 || filter_path_same(ix->field, key)))
            return coll_textidx_params(ix->text);
    }
    return NULL;
}

bool coll_filter_match(const coll_t *c, const filter_t *f, const filter_point_t *p)
{
    filter_text_ctx_t tx = { text_lookup, c };

    return filter_match_text(f, p, c->n_idx > 0 ? &tx : NULL);
}

/* ---- value groups (read accessors for the vector index's payload_m) --- */

/* Keyword and integer equality indexes: the fields whose value groups
 * get HNSW group links (as in Qdrant, which links the blocks of indexed
 * keyword and integer fields). */
static bool groups_kind(const coll_index_t *ix)
{
    return !ix->broken && (ix->kind == COLL_INDEX_KEYWORD || ix->kind == COLL_INDEX_INTEGER);
}

int coll_index_each_group(const coll_t *c, int (*fn)(void *ctx, const coll_sset_t *slots),
                          void *ctx)
{
    for (size_t k = 0; k < c->n_idx; k++) {
        const coll_index_t *ix = c->idx[k];
        for (size_t b = 0; groups_kind(ix) && b < ix->nb; b++) {
            for (const ival_t *v = ix->buckets[b]; v != NULL; v = v->next) {
                int rc = fn(ctx, &v->slots);
                if (rc != ERR_OK)
                    return rc;
            }
        }
    }
    return ERR_OK;
}

int coll_index_each_tenant(const coll_t *c, int (*fn)(void *ctx, const coll_sset_t *slots),
                           void *ctx)
{
    for (size_t k = 0; k < c->n_idx; k++) {
        const coll_index_t *ix = c->idx[k];
        if (!ix->tenant || !groups_kind(ix))
            continue;
        for (size_t b = 0; b < ix->nb; b++)
            for (const ival_t *v = ix->buckets[b]; v != NULL; v = v->next) {
                int rc = fn(ctx, &v->slots);
                if (rc != ERR_OK)
                    return rc;
            }
        return ERR_OK; /* the first tenant index decides the layout */
    }
    return ERR_OK;
}

bool coll_index_filter_groups(const coll_t *c, const filter_t *f,
                              void (*fn)(void *ctx, const coll_sset_t *slots), void *ctx)
{
    filter_eq_t eqs[PLAN_EQ_MAX];
    size_t n_eq = f ? filter_must_eq(f, eqs, PLAN_EQ_MAX) : 0;

    if (n_eq > PLAN_EQ_MAX)
        n_eq = PLAN_EQ_MAX;
    for (size_t i = 0; i < n_eq; i++) {
        for (size_t k = 0; k < c->n_idx; k++) {
            const coll_index_t *ix = c->idx[k];
            if (!groups_kind(ix) || !kind_fits(ix->kind, eqs[i].type) ||
                !filter_path_same(ix->field, eqs[i].key))
                continue;
            for (size_t j = 0; j < eqs[i].n; j++) {
                const ival_t *v = eq_value(ix, &eqs[i], j);
                if (v != NULL)
                    fn(ctx, &v->slots);
            }
            return true;
        }
    }
    return false;
}
