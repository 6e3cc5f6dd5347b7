/*
 * op.c - op construction helpers and the WAL payload codec (format in
 * op.h).  The decoder trusts nothing: every length is checked against the
 * bytes left, because a record that passed its CRC may still come from a
 * newer or buggy writer.
 */
#include "op.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "the WAL format stores floats little-endian as in memory");

enum { F_SOURCE = 1, F_FILTER = 2, F_PAYLOAD = 4, F_KEY = 8, F_MORE_SOURCES = 16, F_META = 32 };
enum { PF_PV = 1, PF_PAYLOAD = 2 };

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
    bool too_large;     /* a length or count does not fit its prefix */
} wbuf_t;

static void wb_put(wbuf_t *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void wb_u8(wbuf_t *b, uint8_t v) { wb_put(b, &v, 1); }
static void wb_u16(wbuf_t *b, uint16_t v) { wb_put(b, &v, 2); }
static void wb_u32(wbuf_t *b, uint32_t v) { wb_put(b, &v, 4); }
static void wb_u64(wbuf_t *b, uint64_t v) { wb_put(b, &v, 8); }

static void wb_str16(wbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT16_MAX)
        b->too_large = true;
    wb_u16(b, (uint16_t)n);
    wb_put(b, s, n);
}

static void wb_str32(wbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT32_MAX)
        b->too_large = true;
    wb_u32(b, (uint32_t)n);
    wb_put(b, s, n);
}

static void encode_point(wbuf_t *b, const op_point_t *p)
{
    uint8_t key[PTID_KEY_MAX];
    size_t klen = ptid_encode(&p->id, key);

    wb_u8(b, (uint8_t)klen);
    wb_put(b, key, klen);
    wb_u8(b, (uint8_t)((p->has_pv ? PF_PV : 0) | (p->payload ? PF_PAYLOAD : 0)));
    if (p->has_pv)
        wb_u64(b, p->pv);
    if (p->payload)
        wb_str32(b, p->payload);
    if (p->n_vecs > UINT16_MAX)
        b->too_large = true;
    wb_u16(b, (uint16_t)p->n_vecs);
    for (uint32_t i = 0; i < p->n_vecs; i++) {
        wb_str16(b, p->vecs[i].name);
        wb_u32(b, p->vecs[i].dim);
        wb_put(b, p->vecs[i].data, (size_t)p->vecs[i].dim * sizeof(float));
    }
}

static void encode_source(wbuf_t *b, const op_source_t *s)
{
    wb_str16(b, s->topic);
    wb_u32(b, (uint32_t)s->partition);
    wb_u64(b, (uint64_t)s->offset);
}

int op_encode(const op_t *op, uint8_t **buf, size_t *len, err_t *err)
{
    wbuf_t b = { 0 };
    bool more = op->has_source && op->n_more_sources > 0;
    bool meta = op->meta_key != NULL;
    uint8_t flags = (uint8_t)((op->has_source ? F_SOURCE : 0) | (op->filter ? F_FILTER : 0) |
                              (op->payload ? F_PAYLOAD : 0) | (op->key ? F_KEY : 0) |
                              (more ? F_MORE_SOURCES : 0) | (meta ? F_META : 0));

    /* only embedded floats are ever logged (op_doc_t) */
    for (size_t i = 0; i < op->n_points; i++)
        for (uint32_t k = 0; k < op->points[i].n_vecs; k++)
            if (op->points[i].vecs[k].doc != NULL)
                return err_set(err, ERR_INVALID, "%s: document not embedded",
                               op->points[i].vecs[k].doc->where);
    wb_u8(&b, meta ? 3 : more ? 2 : 1);
    wb_u8(&b, op->type);
    wb_u8(&b, op->mode);
    wb_u8(&b, flags);
    if (op->has_source)
        encode_source(&b, &op->source);
    if (more) {
        wb_u32(&b, op->n_more_sources);
        for (uint32_t i = 0; i < op->n_more_sources; i++)
            encode_source(&b, &op->more_sources[i]);
    }
    if (op->filter)
        wb_str32(&b, op->filter);
    if (op->payload)
        wb_str32(&b, op->payload);
    if (op->key)
        wb_str16(&b, op->key);
    if (meta) {
        wb_str16(&b, op->meta_key);
        wb_str32(&b, op->meta_val ? op->meta_val : "");
    }
    wb_u32(&b, op->n_names);
    for (uint32_t i = 0; i < op->n_names; i++)
        wb_str16(&b, op->names[i]);
    if (op->n_points > UINT32_MAX)
        b.too_large = true;
    wb_u32(&b, (uint32_t)op->n_points);
    for (size_t i = 0; i < op->n_points && !b.too_large; i++)
        encode_point(&b, &op->points[i]);
    if (b.too_large) {
        free(b.p);
        return err_set(err, ERR_TOO_LARGE, "%s: a name, key or text is too long to log",
                       op_type_name(op->type));
    }
    if (b.oom) {
        free(b.p);
        return err_set(err, ERR_NOMEM, "no memory to encode %s", op_type_name(op->type));
    }
    *buf = b.p;
    *len = b.len;
    return ERR_OK;
}

/* ---- decoding --------------------------------------------------------- */

typedef struct rbuf {
    const uint8_t *p;
    size_t left;
    bool bad;
} rbuf_t;

static const void *rb_take(rbuf_t *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const void *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

#define RB_GET(r, T)                                                                  \
    static T rb_##T(rbuf_t *r)                                                        \
    {                                                                                 \
        T v = 0;                                                                      \
        const void *p = rb_take(r, sizeof(T));                                        \
        if (p)                                                                        \
            memcpy(&v, p, sizeof(T));                                                 \
        return v;                                                                     \
    }
RB_GET(r, uint8_t)
RB_GET(r, uint16_t)
RB_GET(r, uint32_t)
RB_GET(r, uint64_t)

static char *rb_str(rbuf_t *r, size_t n)
{
    const void *p = rb_take(r, n);
    char *s;

    if (p == NULL)
        return NULL;
    if (memchr(p, '\0', n) != NULL) { /* the encoder writes C strings */
        r->bad = true;
        return NULL;
    }
    s = malloc(n + 1);
    if (s == NULL) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static char *rb_str16(rbuf_t *r) { return rb_str(r, rb_uint16_t(r)); }
static char *rb_str32(rbuf_t *r) { return rb_str(r, rb_uint32_t(r)); }

static void decode_vec(rbuf_t *r, op_vec_t *v)
{
    v->name = rb_str16(r);
    v->dim = rb_uint32_t(r);
    if (r->bad || (size_t)v->dim * sizeof(float) > r->left) {
        r->bad = true;
        return;
    }
    v->data = malloc((size_t)v->dim * sizeof(float) + 1);
    if (v->data == NULL) {
        r->bad = true;
        return;
    }
    memcpy(v->data, rb_take(r, (size_t)v->dim * sizeof(float)), (size_t)v->dim * sizeof(float));
}

static void decode_point(rbuf_t *r, op_point_t *p)
{
    uint8_t klen = rb_uint8_t(r);
    const uint8_t *key = rb_take(r, klen);
    uint8_t flags;
    uint16_t nv;

    if (key == NULL || klen == 0 || ptid_decode(key, klen, &p->id) != klen) {
        r->bad = true;
        return;
    }
    flags = rb_uint8_t(r);
    if (flags & ~(PF_PV | PF_PAYLOAD)) {
        r->bad = true;
        return;
    }
    if (flags & PF_PV) {
        p->has_pv = true;
        p->pv = rb_uint64_t(r);
    }
    if (flags & PF_PAYLOAD)
        p->payload = rb_str32(r);
    nv = rb_uint16_t(r);
    if (r->bad || nv == 0)
        return;
    p->vecs = calloc(nv, sizeof(*p->vecs));
    if (p->vecs == NULL) {
        r->bad = true;
        return;
    }
    p->n_vecs = nv;
    for (uint16_t i = 0; i < nv && !r->bad; i++)
        decode_vec(r, &p->vecs[i]);
}

static void decode_source(rbuf_t *r, op_source_t *s)
{
    s->topic = rb_str16(r);
    s->partition = (int32_t)rb_uint32_t(r);
    s->offset = (int64_t)rb_uint64_t(r);
}

/* Version 2's further sources: each at least 14 bytes, each (topic,
 * partition) once, as op_source_add builds them. */
static void decode_more_sources(rbuf_t *r, op_t *op)
{
    uint32_t n = rb_uint32_t(r);

    if (r->bad || n == 0 || n > r->left / 14) {
        r->bad = true;
        return;
    }
    op->more_sources = calloc(n, sizeof(op_source_t));
    r->bad = op->more_sources == NULL;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        op_source_t *s = &op->more_sources[i];
        op->n_more_sources = i + 1; /* so op_clear frees a half-decoded topic */
        decode_source(r, s);
        for (size_t k = 0; k <= i && !r->bad; k++) {
            const op_source_t *o = op_source_at(op, k);
            if (o->partition == s->partition && strcmp(o->topic, s->topic) == 0)
                r->bad = true;
        }
    }
}

static void decode_head(rbuf_t *r, op_t *op)
{
    uint8_t version = rb_uint8_t(r), flags;
    uint8_t known = F_SOURCE | F_FILTER | F_PAYLOAD | F_KEY |
                    (version >= 2 ? F_MORE_SOURCES : 0) | (version == 3 ? F_META : 0);

    op->type = rb_uint8_t(r);
    op->mode = rb_uint8_t(r);
    flags = rb_uint8_t(r);
    if (version < 1 || version > 3 || op->type == 0 || op->type >= OP_TYPE_MAX ||
        op->mode > OP_MODE_UPDATE_ONLY || (flags & ~known) ||
        /* canonical: version 3 exactly with meta, else 2 exactly with more sources */
        (version == 3) != ((flags & F_META) != 0) ||
        (version == 2 && !(flags & F_MORE_SOURCES)) ||
        (version == 1 && (flags & F_MORE_SOURCES)) ||
        ((flags & F_MORE_SOURCES) && !(flags & F_SOURCE))) {
        r->bad = true;
        return;
    }
    if (flags & F_SOURCE) {
        op->has_source = true;
        decode_source(r, &op->source);
    }
    if (flags & F_MORE_SOURCES)
        decode_more_sources(r, op);
    if (flags & F_FILTER)
        op->filter = rb_str32(r);
    if (flags & F_PAYLOAD)
        op->payload = rb_str32(r);
    if (flags & F_KEY)
        op->key = rb_str16(r);
    if (flags & F_META) {
        op->meta_key = rb_str16(r);
        op->meta_val = rb_str32(r);
    }
}

int op_decode(const uint8_t *buf, size_t len, op_t *op, err_t *err)
{
    rbuf_t r = { .p = buf, .left = len, .bad = false };
    uint32_t n;

    memset(op, 0, sizeof(*op));
    decode_head(&r, op);
    n = rb_uint32_t(&r);
    if (!r.bad && n > r.left / 2)
        r.bad = true;
    if (!r.bad && n > 0) {
        op->names = calloc(n, sizeof(char *));
        r.bad = op->names == NULL;
        for (uint32_t i = 0; i < n && !r.bad; i++, op->n_names++)
            op->names[i] = rb_str16(&r);
    }
    n = rb_uint32_t(&r);
    if (!r.bad && n > r.left / 11)
        r.bad = true;
    if (!r.bad && n > 0) {
        /* capacity rounded up to a power of two, as op_point_add assumes */
        size_t cap = 1;
        while (cap < n)
            cap *= 2;
        op->points = calloc(cap, sizeof(op_point_t));
        r.bad = op->points == NULL;
        for (uint32_t i = 0; i < n && !r.bad; i++, op->n_points++)
            decode_point(&r, &op->points[i]);
    }
    if (r.bad || r.left != 0) {
        op_clear(op);
        return err_set(err, ERR_CORRUPT, "WAL record is not a valid operation encoding");
    }
    return ERR_OK;
}

/* ---- construction ----------------------------------------------------- */

void op_clear(op_t *op)
{
    free(op->source.topic);
    for (uint32_t i = 0; i < op->n_more_sources; i++)
        free(op->more_sources[i].topic);
    free(op->more_sources);
    free(op->meta_key);
    free(op->meta_val);
    free(op->filter);
    free(op->payload);
    free(op->key);
    for (uint32_t i = 0; i < op->n_names; i++)
        free(op->names[i]);
    free(op->names);
    for (size_t i = 0; i < op->n_points; i++) {
        op_point_t *p = &op->points[i];
        free(p->payload);
        for (uint32_t k = 0; k < p->n_vecs; k++) {
            free(p->vecs[k].name);
            free(p->vecs[k].data);
            op_doc_free(&p->vecs[k]);
        }
        free(p->vecs);
    }
    free(op->points);
    memset(op, 0, sizeof(*op));
}

op_point_t *op_point_add(op_t *op)
{
    /* grow geometrically: capacity is the next power of two >= n */
    size_t n = op->n_points;
    if ((n & (n - 1)) == 0) {
        size_t cap = n ? n * 2 : 1;
        op_point_t *np = realloc(op->points, cap * sizeof(*np));
        if (np == NULL)
            return NULL;
        op->points = np;
    }
    memset(&op->points[n], 0, sizeof(op_point_t));
    op->n_points++;
    return &op->points[n];
}

int op_vec_add(op_point_t *p, const char *name, const float *data, uint32_t dim)
{
    op_vec_t *nv = realloc(p->vecs, (p->n_vecs + 1) * sizeof(*nv));
    if (nv == NULL)
        return ERR_NOMEM;
    p->vecs = nv;
    op_vec_t *v = &p->vecs[p->n_vecs];
    v->name = strdup(name);
    v->data = malloc((size_t)dim * sizeof(float) + 1);
    v->dim = dim;
    v->doc = NULL;
    if (v->name == NULL || v->data == NULL) {
        free(v->name);
        free(v->data);
        return ERR_NOMEM;
    }
    memcpy(v->data, data, (size_t)dim * sizeof(float));
    p->n_vecs++;
    return ERR_OK;
}

void op_doc_free(op_vec_t *v)
{
    if (v == NULL || v->doc == NULL)
        return;
    free(v->doc->text);
    free(v->doc->model);
    free(v->doc->where);
    free(v->doc);
    v->doc = NULL;
}

int op_doc_add(op_point_t *p, const char *name, const char *text, const char *model,
               const char *where)
{
    op_vec_t *nv = realloc(p->vecs, (p->n_vecs + 1) * sizeof(*nv));
    if (nv == NULL)
        return ERR_NOMEM;
    p->vecs = nv;
    op_vec_t *v = &p->vecs[p->n_vecs];
    memset(v, 0, sizeof(*v));
    v->name = strdup(name);
    v->doc = calloc(1, sizeof(*v->doc));
    if (v->name == NULL || v->doc == NULL || (v->doc->text = strdup(text)) == NULL ||
        (v->doc->model = strdup(model)) == NULL || (v->doc->where = strdup(where)) == NULL) {
        free(v->name);
        op_doc_free(v);
        return ERR_NOMEM;
    }
    p->n_vecs++;
    return ERR_OK;
}

int op_source_set(op_t *op, const char *topic, int32_t partition, int64_t offset)
{
    char *t = strdup(topic);
    if (t == NULL)
        return ERR_NOMEM;
    free(op->source.topic);
    op->source.topic = t;
    op->source.partition = partition;
    op->source.offset = offset;
    op->has_source = true;
    return ERR_OK;
}

int op_source_add(op_t *op, const char *topic, int32_t partition, int64_t offset)
{
    size_t n = op_source_count(op);

    if (!op->has_source)
        return op_source_set(op, topic, partition, offset);
    for (size_t i = 0; i < n; i++) {
        op_source_t *s = i == 0 ? &op->source : &op->more_sources[i - 1];
        if (s->partition == partition && strcmp(s->topic, topic) == 0) {
            if (offset > s->offset)
                s->offset = offset;
            return ERR_OK;
        }
    }
    if (op->n_more_sources == UINT32_MAX)
        return ERR_NOMEM;
    op_source_t *ns = realloc(op->more_sources, (op->n_more_sources + 1) * sizeof(*ns));
    if (ns == NULL)
        return ERR_NOMEM;
    op->more_sources = ns;
    ns[op->n_more_sources].topic = strdup(topic);
    if (ns[op->n_more_sources].topic == NULL)
        return ERR_NOMEM;
    ns[op->n_more_sources].partition = partition;
    ns[op->n_more_sources].offset = offset;
    op->n_more_sources++;
    return ERR_OK;
}

size_t op_source_count(const op_t *op)
{
    return op->has_source ? 1 + (size_t)op->n_more_sources : 0;
}

const op_source_t *op_source_at(const op_t *op, size_t i)
{
    return i == 0 ? &op->source : &op->more_sources[i - 1];
}

int op_name_add(op_t *op, const char *name)
{
    char **nn = realloc(op->names, (op->n_names + 1) * sizeof(char *));
    if (nn == NULL)
        return ERR_NOMEM;
    op->names = nn;
    nn[op->n_names] = strdup(name);
    if (nn[op->n_names] == NULL)
        return ERR_NOMEM;
    op->n_names++;
    return ERR_OK;
}

const char *op_type_name(int type)
{
    static const char *const names[] = {
        "?", "upsert", "delete", "set_payload", "overwrite_payload",
        "delete_payload", "clear_payload", "update_vectors", "delete_vectors",
    };
    if (type <= 0 || type >= OP_TYPE_MAX)
        return "unknown";
    return names[type];
}

int op_meta_set(op_t *op, const char *key, const char *value)
{
    char *k = strdup(key), *v = strdup(value);

    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return ERR_NOMEM;
    }
    free(op->meta_key);
    free(op->meta_val);
    op->meta_key = k;
    op->meta_val = v;
    return ERR_OK;
}
