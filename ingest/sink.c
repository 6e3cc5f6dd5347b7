/*
 * sink.c - a consumed batch into the collections; the rules (exactly once,
 * resume offsets, merging, error classes, routes) are in sink.h.
 *
 * One batch goes through three phases:
 *
 *   1. decode and route (decode_one): each message becomes one item per
 *      target collection: skipped (already stored), dead (with the stage
 *      and error for its dead letter), retry, or pending with its op
 *      validated against the collection;
 *   2. write (write_coll), collection by collection in order of first
 *      appearance: pending items in message order, consecutive plain
 *      upserts merged into one multi-source op.  The first transient
 *      failure stops writes to that collection for the rest of the batch,
 *      which keeps every partition's messages in offset order per
 *      collection (a later message must never be stored before an earlier
 *      one that will be retried: its stored offset would skip it);
 *   3. dead letters (send_dead): sent only for messages before their
 *      partition's first retry (those after it will be read again), then
 *      waited for; an undelivered dead letter makes its message a retry.
 *
 * Items live in one array in message order; collections are found by
 * coll_t pointer, so a name and an alias of the same collection are one
 * collection, and a message that names it twice is applied once.
 */
#include "sink.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_op.h"
#include "ingest/msg.h"
#include "store/log.h"

#define DEFAULT_MAX_MESSAGE (32u << 20)
#define MERGE_MAX_POINTS 8192
#define MERGE_MAX_BYTES (32u << 20)
#define NO_TGT SIZE_MAX

typedef struct route {
    char *topic;
    char **colls;
    char **models;            /* per collection: the model override ("c:model"), or NULL */
    size_t n;
} route_t;

/* A collection acquired for this batch, under the name asked. */
typedef struct target {
    char *name;
    catalog_handle_t *h;
    coll_t *c;
} target_t;

enum { IT_PENDING, IT_SKIPPED, IT_APPLIED, IT_DEAD, IT_RETRY };

/* One message for one collection. */
typedef struct item {
    size_t msg;               /* index in the batch */
    size_t tgt;               /* index in tgts, or NO_TGT */
    const char *model;        /* the route's model override for this target, or NULL;
                               * borrowed from the sink's routes */
    op_t op;                  /* validated op while IT_PENDING and not merged away */
    int state;
    int stage;                /* enum msg_stage, for IT_DEAD */
    err_t why;                /* IT_DEAD and IT_RETRY */
    bool sent;                /* dead letter queued this batch */
    size_t ticket;
} item_t;

/* First retry offset of one partition in this batch. */
typedef struct rewind {
    const char *topic;        /* borrowed from the messages */
    int32_t partition;
    int64_t offset;
} rewind_t;

struct sink {
    catalog_t *cat;
    dlq_t *dlq;
    route_t *routes;
    size_t n_routes;
    size_t max_message;
    bool auto_create;
    const char *distance;     /* auto-create: one of distances[] */
    const embed_reg_t *embed; /* models for Documents; borrowed, may be NULL */

    /* per batch */
    const rd_kafka_message_t *const *msgs;
    target_t *tgts;
    size_t n_tgts, cap_tgts;
    item_t *items;
    size_t n_items, cap_items;
    rewind_t *rw;
    size_t n_rw, cap_rw;
    bool oom;                 /* a message could not be tracked: retry the whole batch */

    atomic_uint_least64_t messages, applied, skipped, dead, retried, ops, watermarks;
    atomic_uint_least64_t dead_by[SINK_REASONS];  /* dead letters by err code */
};

/* ---- set-up ------------------------------------------------------------ */

/* A route's model override must exist: a typo is a configuration error at
 * start, not a dead letter per message. */
static int route_model_check(const sink_t *s, const char *model, err_t *err)
{
    embed_model_t *m;
    if (*model == '\0')
        return err_set(err, ERR_INVALID, "empty model name after ':'");
    return embed_op_model(s->embed, model, "model", &m, err);
}

static int route_parse(const sink_t *s, route_t *r, const char *topic, const char *list,
                       err_t *err)
{
    char *copy = strdup(list), *save = NULL, *tok;
    int rc = ERR_OK;

    r->topic = strdup(topic);
    if (copy == NULL || r->topic == NULL) {
        free(copy);
        return err_set(err, ERR_NOMEM, "no memory");
    }
    for (tok = strtok_r(copy, ",", &save); tok != NULL && rc == ERR_OK;
         tok = strtok_r(NULL, ",", &save)) {
        char *model = strchr(tok, ':'); /* "coll:model": a per-target model override */
        if (model != NULL)
            *model++ = '\0';
        char **nc = realloc(r->colls, (r->n + 1) * sizeof(char *));
        if (nc != NULL)
            r->colls = nc;
        char **nm = nc ? realloc(r->models, (r->n + 1) * sizeof(char *)) : NULL;
        if (nm != NULL)
            r->models = nm;
        if (nc == NULL || nm == NULL || (nc[r->n] = strdup(tok)) == NULL) {
            rc = err_set(err, ERR_NOMEM, "no memory");
            break;
        }
        nm[r->n] = model ? strdup(model) : NULL;
        r->n++;
        if (model != NULL && nm[r->n - 1] == NULL)
            rc = err_set(err, ERR_NOMEM, "no memory");
        else if (catalog_name_check(tok, "collection", err) != ERR_OK)
            rc = err_wrap(err, "kafka.routes.%s", topic);
        else if (model != NULL && route_model_check(s, model, err) != ERR_OK)
            rc = err_wrap(err, "kafka.routes.%s: %s", topic, tok);
    }
    if (rc == ERR_OK && r->n == 0)
        rc = err_set(err, ERR_INVALID, "kafka.routes.%s: no collection", topic);
    free(copy);
    return rc;
}

void sink_free(sink_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n_routes; i++) {
        for (size_t k = 0; k < s->routes[i].n; k++) {
            free(s->routes[i].colls[k]);
            free(s->routes[i].models[k]);
        }
        free(s->routes[i].colls);
        free(s->routes[i].models);
        free(s->routes[i].topic);
    }
    free(s->routes);
    free(s->tgts);
    free(s->items);
    free(s->rw);
    free(s);
}

static const char *const distances[] = { "Cosine", "Dot", "Euclid", "Manhattan", NULL };

int sink_new(catalog_t *cat, dlq_t *dlq, const sink_opts_t *o, sink_t **out, err_t *err)
{
    sink_t *s = calloc(1, sizeof(*s));
    size_t n = 0;
    int rc = ERR_OK;

    *out = NULL;
    if (s == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    s->cat = cat;
    s->dlq = dlq;
    s->max_message = o->max_message_bytes ? o->max_message_bytes : DEFAULT_MAX_MESSAGE;
    s->auto_create = o->auto_create;
    s->embed = o->embed;
    s->distance = distances[0];
    for (size_t i = 0; o->auto_create_distance != NULL && s->distance != NULL; i++)
        if ((s->distance = distances[i]) != NULL && strcmp(s->distance, o->auto_create_distance) == 0)
            break;
    if (s->distance == NULL)
        rc = err_set(err, ERR_INVALID, "kafka.auto_create_distance: %s is not Cosine, Dot, "
                     "Euclid or Manhattan", o->auto_create_distance);
    while (o->routes != NULL && o->routes[n] != NULL && o->routes[n + 1] != NULL)
        n += 2;
    if (rc == ERR_OK && n > 0 && (s->routes = calloc(n / 2, sizeof(route_t))) == NULL)
        rc = err_set(err, ERR_NOMEM, "no memory");
    for (size_t i = 0; i < n && rc == ERR_OK; i += 2) {
        rc = route_parse(s, &s->routes[i / 2], o->routes[i], o->routes[i + 1], err);
        s->n_routes++;
    }
    if (rc != ERR_OK) {
        sink_free(s);
        return rc;
    }
    *out = s;
    return ERR_OK;
}

/* ---- phase 1: decode and route ---------------------------------------- */

static const route_t *route_find(const sink_t *s, const char *topic)
{
    for (size_t i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].topic, topic) == 0)
            return &s->routes[i];
    return NULL;
}

static item_t *item_new(sink_t *s, size_t msg, size_t tgt)
{
    if (s->n_items == s->cap_items) {
        size_t cap = s->cap_items ? s->cap_items * 2 : 256;
        item_t *ni = realloc(s->items, cap * sizeof(*ni));
        if (ni == NULL)
            return NULL;
        s->items = ni;
        s->cap_items = cap;
    }
    item_t *it = &s->items[s->n_items++];
    memset(it, 0, sizeof(*it));
    it->msg = msg;
    it->tgt = tgt;
    it->state = IT_PENDING;
    return it;
}

/* Add a finished item (skipped, dead or retry) for message i.  Without
 * memory for it the message cannot be tracked, and the whole batch is
 * reported for retry (s->oom). */
static void item_end(sink_t *s, size_t i, size_t tgt, int state, int stage, const err_t *why)
{
    item_t *it = item_new(s, i, tgt);
    if (it == NULL) {
        s->oom = true;
        return;
    }
    it->state = state;
    it->stage = stage;
    it->why = *why;
}

static bool permanent(const err_t *e)
{
    return !e->retriable && (e->code == ERR_INVALID || e->code == ERR_NOT_FOUND ||
                             e->code == ERR_UNSUPPORTED || e->code == ERR_TOO_LARGE ||
                             e->code == ERR_EXISTS);
}

/* The target for name, acquired once per batch. */
static int tgt_get(sink_t *s, const char *name, size_t *idx, err_t *err)
{
    catalog_handle_t *h;
    int rc;

    for (size_t i = 0; i < s->n_tgts; i++)
        if (strcmp(s->tgts[i].name, name) == 0) {
            *idx = i;
            return ERR_OK;
        }
    if (s->n_tgts == s->cap_tgts) {
        size_t cap = s->cap_tgts ? s->cap_tgts * 2 : 8;
        target_t *nt = realloc(s->tgts, cap * sizeof(*nt));
        if (nt == NULL)
            return err_set(err, ERR_NOMEM, "no memory");
        s->tgts = nt;
        s->cap_tgts = cap;
    }
    if ((rc = catalog_acquire(s->cat, name, &h, err)) != ERR_OK)
        return rc;
    target_t *t = &s->tgts[s->n_tgts];
    t->name = strdup(name);
    if (t->name == NULL) {
        catalog_release(h);
        return err_set(err, ERR_NOMEM, "no memory");
    }
    t->h = h;
    t->c = catalog_handle_coll(h);
    *idx = s->n_tgts++;
    return ERR_OK;
}

/* The op of message i again (after its first decode was used). */
static int redecode(sink_t *s, size_t i, op_t *op, err_t *err)
{
    const rd_kafka_message_t *m = s->msgs[i];
    msg_t mm;
    int rc = msg_decode(m->key, m->key_len, m->payload, m->len, &mm, NULL, err);

    if (rc == ERR_OK) {
        *op = mm.op;
        memset(&mm.op, 0, sizeof(mm.op));
    }
    msg_clear(&mm);
    return rc;
}

/* Embed op's Documents for collection c, with the target's model
 * override (sink.h ROUTES): before validation, so the op validated and
 * written holds only floats. */
static int resolve(const sink_t *s, coll_t *c, op_t *op, const char *model, err_t *err)
{
    uint32_t n;
    const coll_vector_def_t *defs = coll_vectors(c, &n);
    return embed_op_resolve(s->embed, op, model, defs, n, err);
}

/* A vector's dim for auto-create: a Document's is its model's (0 when the
 * model is unknown: no collection is created, the message is dead). */
static uint32_t auto_dim(const sink_t *s, const op_vec_t *v, const char *model)
{
    return v->doc ? embed_op_doc_dim(s->embed, v->doc, model) : v->dim;
}

/* The CreateCollection body for op's vectors (sink.h AUTO-CREATE), or
 * NULL when it has none (or mixes the unnamed vector with named ones).
 * model: the target's model override, for Documents. */
static cJSON *auto_body(const sink_t *s, const op_t *op, const char *model)
{
    const op_point_t *p = NULL;
    cJSON *body, *vecs;

    for (size_t i = 0; op->type == OP_UPSERT && i < op->n_points && p == NULL; i++)
        if (op->points[i].n_vecs > 0)
            p = &op->points[i];
    if (p == NULL || (body = cJSON_CreateObject()) == NULL)
        return NULL;
    bool unnamed = p->n_vecs == 1 && p->vecs[0].name[0] == '\0';
    vecs = cJSON_AddObjectToObject(body, "vectors");
    for (uint32_t k = 0; k < p->n_vecs && vecs != NULL; k++) {
        cJSON *v = unnamed ? vecs : cJSON_AddObjectToObject(vecs, p->vecs[k].name);
        uint32_t dim = auto_dim(s, &p->vecs[k], model);
        if (v == NULL || (!unnamed && p->vecs[k].name[0] == '\0') || dim == 0 ||
            cJSON_AddNumberToObject(v, "size", dim) == NULL ||
            cJSON_AddStringToObject(v, "distance", s->distance) == NULL)
            vecs = NULL;
    }
    if (vecs == NULL) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

/* tgt_get, creating the collection first when it does not exist and
 * auto-create is on and the message has vectors.  op is message i's
 * decoded op, or of type 0 once a target took it: then it is decoded
 * again, since the taker's Documents were embedded with its own model. */
static int tgt_get_or_create(sink_t *s, const char *name, size_t i, const op_t *op,
                             const char *model, size_t *idx, err_t *err)
{
    int rc = tgt_get(s, name, idx, err);
    op_t again = { 0 };
    cJSON *body = NULL;
    err_t ce;

    if (rc != ERR_NOT_FOUND || !s->auto_create)
        return rc;
    if (op->type == 0 && redecode(s, i, &again, &ce) == ERR_OK)
        op = &again;
    body = op->type != 0 ? auto_body(s, op, model) : NULL;
    op_clear(&again);
    if (body == NULL)
        return rc;
    rc = catalog_create(s->cat, name, body, &ce);
    cJSON_Delete(body);
    if (rc != ERR_OK && rc != ERR_EXISTS) {
        *err = ce;
        return err_wrap(err, "auto-create");
    }
    if (rc == ERR_OK)
        log_info("ingest", "collection %s auto-created (vectors of the message, %s)", name,
                 s->distance);
    return tgt_get(s, name, idx, err);
}

/* One target of message i: skip, embed and validate, or fail.  model:
 * the route's override for this target, or NULL. */
static void route_one(sink_t *s, size_t i, const char *name, const char *model, msg_t *mm,
                      size_t first_item)
{
    const rd_kafka_message_t *m = s->msgs[i];
    const char *topic = rd_kafka_topic_name(m->rkt);
    size_t t = 0;
    err_t e;
    int rc;

    err_clear(&e);
    rc = tgt_get_or_create(s, name, i, &mm->op, model, &t, &e);
    if (rc != ERR_OK) {
        err_wrap(&e, "collection %s", name);
        item_end(s, i, NO_TGT, permanent(&e) ? IT_DEAD : IT_RETRY, MSG_STAGE_APPLY, &e);
        return;
    }
    for (size_t k = first_item; k < s->n_items; k++)
        if (s->items[k].tgt != NO_TGT && s->tgts[s->items[k].tgt].c == s->tgts[t].c)
            return; /* the same collection under another name */
    if (m->offset <= coll_source_offset(s->tgts[t].c, topic, m->partition)) {
        item_end(s, i, t, IT_SKIPPED, MSG_STAGE_APPLY, &e);
        return;
    }
    item_t *it = item_new(s, i, t);
    if (it == NULL) {
        s->oom = true;
        return;
    }
    it->model = model;
    if (mm->op.type != 0) {
        it->op = mm->op; /* the first target takes the decoded op */
        memset(&mm->op, 0, sizeof(mm->op));
    } else if ((rc = redecode(s, i, &it->op, &e)) != ERR_OK) {
        it->state = IT_RETRY; /* it decoded a moment ago: only memory can fail */
        it->why = e;
        return;
    }
    /* Documents: embedded per target (each may have its own model); an
     * unknown model or a dim mismatch is dead, a struggling embedder a retry */
    if ((rc = resolve(s, s->tgts[t].c, &it->op, model, &e)) != ERR_OK ||
        (rc = coll_op_validate(s->tgts[t].c, &it->op, &e)) != ERR_OK) {
        err_wrap(&e, "collection %s", name);
        it->state = permanent(&e) ? IT_DEAD : IT_RETRY;
        it->stage = MSG_STAGE_APPLY;
        it->why = e;
        op_clear(&it->op);
    }
}

static void decode_one(sink_t *s, size_t i)
{
    const rd_kafka_message_t *m = s->msgs[i];
    const char *topic = rd_kafka_topic_name(m->rkt);
    const route_t *r = route_find(s, topic);
    size_t first = s->n_items;
    msg_t mm;
    int stage;
    err_t e;

    if (m->key_len + m->len > s->max_message) {
        err_set(&e, ERR_TOO_LARGE, "message of %zu bytes is larger than the limit of %zu",
                m->key_len + m->len, s->max_message);
        item_end(s, i, NO_TGT, IT_DEAD, MSG_STAGE_VALUE, &e);
        return;
    }
    if (msg_decode(m->key, m->key_len, m->payload, m->len, &mm, &stage, &e) != ERR_OK) {
        item_end(s, i, NO_TGT, permanent(&e) ? IT_DEAD : IT_RETRY, stage, &e);
    } else if (r == NULL && mm.collection == NULL) {
        err_set(&e, ERR_INVALID, "the message names no collection_name and topic %s has no "
                "route (kafka.routes)", topic);
        item_end(s, i, NO_TGT, IT_DEAD, m->payload ? MSG_STAGE_VALUE : MSG_STAGE_KEY, &e);
    } else if (r == NULL) {
        route_one(s, i, mm.collection, NULL, &mm, first);
    } else {
        bool named_ok = mm.collection == NULL;
        for (size_t k = 0; k < r->n && !named_ok; k++)
            named_ok = strcmp(r->colls[k], mm.collection) == 0;
        if (!named_ok) {
            err_set(&e, ERR_INVALID, "collection_name \"%s\" is not routed from topic %s",
                    mm.collection, topic);
            item_end(s, i, NO_TGT, IT_DEAD, MSG_STAGE_APPLY, &e);
        }
        for (size_t k = 0; k < r->n && named_ok; k++)
            route_one(s, i, r->colls[k], r->models[k], &mm, first);
    }
    msg_clear(&mm);
}

/* ---- phase 2: writes --------------------------------------------------- */

static bool mergeable(const op_t *op)
{
    return op->type == OP_UPSERT && op->mode == OP_MODE_UPSERT && op->filter == NULL;
}

static int add_source(sink_t *s, op_t *op, size_t msg)
{
    const rd_kafka_message_t *m = s->msgs[msg];
    return op_source_add(op, rd_kafka_topic_name(m->rkt), m->partition, m->offset);
}

/* Move src's points to the end of dst. */
static int absorb(op_t *dst, op_t *src)
{
    for (size_t i = 0; i < src->n_points; i++) {
        op_point_t *p = op_point_add(dst);
        if (p == NULL) {
            /* the points moved so far belong to dst; the rest stay in src */
            memmove(src->points, src->points + i, (src->n_points - i) * sizeof(op_point_t));
            src->n_points -= i;
            return ERR_NOMEM;
        }
        *p = src->points[i];
    }
    free(src->points);
    src->points = NULL;
    src->n_points = 0;
    return ERR_OK;
}

static void item_result(item_t *it, int rc, const err_t *e)
{
    op_clear(&it->op);
    if (rc == ERR_OK) {
        it->state = IT_APPLIED;
        return;
    }
    it->state = permanent(e) ? IT_DEAD : IT_RETRY;
    it->stage = MSG_STAGE_APPLY;
    it->why = *e;
}

/* Write one item on its own (its op, or decoded again when it was merged
 * away).  false, with *fail, when the collection must take no more
 * writes in this batch. */
static bool write_single(sink_t *s, coll_t *c, item_t *it, err_t *fail)
{
    err_t e;
    int rc = ERR_OK;

    if (it->op.type == 0 && (rc = redecode(s, it->msg, &it->op, &e)) == ERR_OK)
        rc = resolve(s, c, &it->op, it->model, &e);
    if (rc == ERR_OK && add_source(s, &it->op, it->msg) != ERR_OK)
        rc = err_set(&e, ERR_NOMEM, "no memory");
    if (rc == ERR_OK)
        rc = coll_write(c, &it->op, NULL, &e);
    if (rc != ERR_OK)
        err_wrap(&e, "collection %s", s->tgts[it->tgt].name);
    item_result(it, rc, &e);
    atomic_fetch_add(&s->ops, rc == ERR_OK);
    if (it->state == IT_RETRY)
        *fail = it->why;
    return it->state != IT_RETRY;
}

/* Write the merged op of items idx[0..n) (their ops were moved into it).
 * false, with *fail: stop this collection. */
static bool write_merged(sink_t *s, coll_t *c, op_t *merged, const size_t *idx, size_t n,
                         err_t *fail)
{
    err_t e;
    int rc = coll_write(c, merged, NULL, &e);

    op_clear(merged);
    atomic_fetch_add(&s->ops, rc == ERR_OK);
    if (rc == ERR_OK || !permanent(&e)) {
        if (rc != ERR_OK) {
            err_wrap(&e, "collection %s", s->tgts[s->items[idx[0]].tgt].name);
            *fail = e;
        }
        for (size_t k = 0; k < n; k++)
            item_result(&s->items[idx[k]], rc, &e);
        return rc == ERR_OK;
    }
    /* Each op passed validation alone, yet the merge did not (a limit of
     * the log format): write them one by one. */
    if (n > 1)
        log_warn("ingest", "merged upsert of %zu messages refused (%s): writing them one by one",
                 n, e.msg);
    for (size_t k = 0; k < n; k++)
        if (!write_single(s, c, &s->items[idx[k]], fail))
            return false;
    return true;
}

/* After a transient failure the collection's pending items wait for the
 * retry (the caller's position onwards, and what a failed merge left). */
static void stop_coll(sink_t *s, coll_t *c, const err_t *why)
{
    for (size_t k = 0; k < s->n_items; k++) {
        item_t *it = &s->items[k];
        if (it->state == IT_PENDING && s->tgts[it->tgt].c == c) {
            op_clear(&it->op);
            it->state = IT_RETRY;
            it->why = *why;
        }
    }
}

/* Move item it's op into merged; false (nothing written) without memory. */
static bool merge_in(sink_t *s, op_t *merged, item_t *it)
{
    merged->type = OP_UPSERT;
    if (absorb(merged, &it->op) != ERR_OK || add_source(s, merged, it->msg) != ERR_OK)
        return false;
    op_clear(&it->op); /* moved: type 0 says "decode again if needed" */
    return true;
}

static void write_coll(sink_t *s, coll_t *c, size_t *idx)
{
    op_t merged = { 0 };
    size_t n = 0, bytes = 0;
    err_t fail;

    for (size_t k = 0; k < s->n_items; k++) {
        item_t *it = &s->items[k];
        if (it->state != IT_PENDING || it->tgt == NO_TGT || s->tgts[it->tgt].c != c)
            continue;
        bool merge = mergeable(&it->op);
        size_t len = s->msgs[it->msg]->len;
        if (n > 0 && (!merge || merged.n_points + it->op.n_points > MERGE_MAX_POINTS ||
                      bytes + len > MERGE_MAX_BYTES)) {
            bool ok = write_merged(s, c, &merged, idx, n, &fail);
            n = bytes = 0;
            if (!ok) {
                stop_coll(s, c, &fail);
                return;
            }
        }
        if (!merge) {
            if (!write_single(s, c, it, &fail)) {
                stop_coll(s, c, &fail);
                return;
            }
            continue;
        }
        if (!merge_in(s, &merged, it)) {
            err_set(&fail, ERR_NOMEM, "no memory merging upserts");
            op_clear(&merged);
            stop_coll(s, c, &fail);
            return;
        }
        idx[n++] = k;
        bytes += len;
    }
    if (n > 0 && !write_merged(s, c, &merged, idx, n, &fail))
        stop_coll(s, c, &fail);
}

/* ---- phase 3: dead letters and outcomes -------------------------------- */

static rewind_t *rewind_find(sink_t *s, const rd_kafka_message_t *m)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    for (size_t i = 0; i < s->n_rw; i++)
        if (s->rw[i].partition == m->partition && strcmp(s->rw[i].topic, topic) == 0)
            return &s->rw[i];
    return NULL;
}

/* Lower (or set) the partition's retry point to m's offset. */
static void rewind_add(sink_t *s, const rd_kafka_message_t *m)
{
    rewind_t *r = rewind_find(s, m);
    if (r != NULL) {
        if (m->offset < r->offset)
            r->offset = m->offset;
        return;
    }
    if (s->n_rw == s->cap_rw) {
        size_t cap = s->cap_rw ? s->cap_rw * 2 : 16;
        rewind_t *nr = realloc(s->rw, cap * sizeof(*nr));
        if (nr == NULL)
            return; /* the message's outcome still says retry */
        s->rw = nr;
        s->cap_rw = cap;
    }
    s->rw[s->n_rw++] = (rewind_t){ rd_kafka_topic_name(m->rkt), m->partition, m->offset };
}

static bool before_rewind(sink_t *s, const rd_kafka_message_t *m)
{
    const rewind_t *r = rewind_find(s, m);
    return r == NULL || m->offset < r->offset;
}

static void send_dead(sink_t *s)
{
    bool any = false;
    err_t e;

    for (size_t k = 0; k < s->n_items; k++)
        if (s->items[k].state == IT_RETRY)
            rewind_add(s, s->msgs[s->items[k].msg]);
    for (size_t k = 0; k < s->n_items; k++) {
        item_t *it = &s->items[k];
        const rd_kafka_message_t *m = s->msgs[it->msg];
        if (it->state != IT_DEAD || !before_rewind(s, m))
            continue;
        if (dlq_send(s->dlq, m, msg_stage_name(it->stage), &it->why, &it->ticket, &e) != ERR_OK) {
            it->state = IT_RETRY;
            it->why = e;
            rewind_add(s, m);
            continue;
        }
        it->sent = any = true;
        log_warn("ingest", "%s[%" PRId32 "]@%" PRId64 " dead-lettered (%s): %s",
                 rd_kafka_topic_name(m->rkt), m->partition, m->offset,
                 msg_stage_name(it->stage), it->why.msg);
    }
    if (!any)
        return;
    bool all = dlq_wait(s->dlq, &e) == ERR_OK;
    for (size_t k = 0; k < s->n_items; k++) {
        item_t *it = &s->items[k];
        if (!it->sent)
            continue;
        if (all || dlq_delivered(s->dlq, it->ticket)) {
            int code = it->why.code;
            atomic_fetch_add(&s->dead_by[code > 0 && code < SINK_REASONS ? code : 0], 1);
        } else {
            it->state = IT_RETRY;
            it->why = e;
            rewind_add(s, s->msgs[it->msg]);
        }
    }
}

static void outcomes(sink_t *s, size_t n, uint8_t *outcome, err_t *why)
{
    bool have_why = false;

    for (size_t i = 0; i < n; i++)
        outcome[i] = SINK_SKIPPED;
    for (size_t k = 0; k < s->n_items; k++) {
        item_t *it = &s->items[k];
        uint8_t *o = &outcome[it->msg];
        bool retry = it->state == IT_RETRY || (it->state == IT_DEAD && !it->sent);
        if (retry && !have_why && it->state == IT_RETRY) {
            *why = it->why;
            have_why = true;
        }
        if (retry)
            *o = SINK_RETRY;
        else if (it->state == IT_DEAD && *o != SINK_RETRY)
            *o = SINK_DEAD;
        else if (it->state == IT_APPLIED && *o == SINK_SKIPPED)
            *o = SINK_APPLIED;
    }
    if (s->oom && !have_why)
        err_set(why, ERR_NOMEM, "no memory to track the batch");
    for (size_t i = 0; i < n; i++) {
        if (s->oom || !before_rewind(s, s->msgs[i]))
            outcome[i] = SINK_RETRY; /* read again from the partition's retry point */
        atomic_uint_least64_t *c = outcome[i] == SINK_APPLIED ? &s->applied
                                 : outcome[i] == SINK_SKIPPED ? &s->skipped
                                 : outcome[i] == SINK_DEAD ? &s->dead : &s->retried;
        atomic_fetch_add(c, 1);
    }
}

void sink_apply(sink_t *s, const rd_kafka_message_t *const *msgs, size_t n, uint8_t *outcome,
                err_t *why)
{
    size_t *idx;

    s->msgs = msgs;
    s->n_items = s->n_tgts = s->n_rw = 0;
    s->oom = false;
    atomic_fetch_add(&s->messages, n);
    for (size_t i = 0; i < n; i++)
        decode_one(s, i);
    idx = malloc((s->n_items + 1) * sizeof(size_t));
    for (size_t t = 0; t < s->n_tgts && idx != NULL; t++) {
        bool seen = false;
        for (size_t u = 0; u < t && !seen; u++)
            seen = s->tgts[u].c == s->tgts[t].c;
        if (!seen)
            write_coll(s, s->tgts[t].c, idx);
    }
    if (idx == NULL) {
        err_t e;
        err_set(&e, ERR_NOMEM, "no memory for the batch");
        for (size_t t = 0; t < s->n_tgts; t++)
            stop_coll(s, s->tgts[t].c, &e);
    }
    free(idx);
    send_dead(s);
    outcomes(s, n, outcome, why);
    for (size_t k = 0; k < s->n_items; k++)
        op_clear(&s->items[k].op);
    for (size_t t = 0; t < s->n_tgts; t++) {
        catalog_release(s->tgts[t].h);
        free(s->tgts[t].name);
    }
    s->n_items = s->n_tgts = 0;
    s->msgs = NULL;
}

/* ---- resume offsets and watermarks ------------------------------------- */

int64_t sink_resume_offset(sink_t *s, const char *topic, int32_t partition, int64_t dflt)
{
    cJSON *list = catalog_list_json(s->cat), *it;
    int64_t best = INT64_MAX;
    bool any = false;

    if (list == NULL)
        return RD_KAFKA_OFFSET_BEGINNING; /* cannot tell: re-read, the skip rule holds */
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "collections")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        catalog_handle_t *h;
        if (!cJSON_IsString(name) || catalog_acquire(s->cat, name->valuestring, &h, NULL) != ERR_OK)
            continue; /* dropped meanwhile */
        int64_t stored = coll_source_offset(catalog_handle_coll(h), topic, partition);
        catalog_release(h);
        int64_t cand = stored >= 0 ? stored + 1 : dflt;
        any = true;
        if (cand == RD_KAFKA_OFFSET_BEGINNING) {
            best = cand;
            break;
        }
        if (cand != RD_KAFKA_OFFSET_END && cand < best)
            best = cand;
    }
    cJSON_Delete(list);
    return !any || best == INT64_MAX ? dflt : best;
}

int sink_watermark(sink_t *s, const sink_pos_t *pos, size_t n, err_t *err)
{
    cJSON *list = catalog_list_json(s->cat), *it;
    int rc = ERR_OK;

    if (list == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list, "collections")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        catalog_handle_t *h;
        op_t op = { .type = OP_UPSERT };
        if (!cJSON_IsString(name) || catalog_acquire(s->cat, name->valuestring, &h, NULL) != ERR_OK)
            continue;
        coll_t *c = catalog_handle_coll(h);
        for (size_t i = 0; i < n && rc == ERR_OK; i++) {
            int64_t stored = coll_source_offset(c, pos[i].topic, pos[i].partition);
            if (stored >= 0 && stored < pos[i].next - 1 &&
                op_source_add(&op, pos[i].topic, pos[i].partition, pos[i].next - 1) != ERR_OK)
                rc = err_set(err, ERR_NOMEM, "no memory");
        }
        if (rc == ERR_OK && op.has_source) {
            rc = coll_write(c, &op, NULL, err);
            if (rc == ERR_OK)
                atomic_fetch_add(&s->watermarks, 1);
            else
                err_wrap(err, "watermark of collection %s", name->valuestring);
        }
        op_clear(&op);
        catalog_release(h);
        if (rc != ERR_OK)
            break;
    }
    cJSON_Delete(list);
    return rc;
}

void sink_stats_get(sink_t *s, sink_stats_t *st)
{
    st->messages = atomic_load(&s->messages);
    st->applied = atomic_load(&s->applied);
    st->skipped = atomic_load(&s->skipped);
    st->dead = atomic_load(&s->dead);
    for (int i = 0; i < SINK_REASONS; i++)
        st->dead_by[i] = atomic_load(&s->dead_by[i]);
    st->retried = atomic_load(&s->retried);
    st->ops = atomic_load(&s->ops);
    st->watermarks = atomic_load(&s->watermarks);
}

/* ---- re-apply (dead-letter redrive) ------------------------------------- */

/* Apply message (key, value) to collection name as a plain write. */
static int reapply_one(sink_t *s, const char *name, const char *model, const void *key,
                       size_t key_len, const void *value, size_t value_len, err_t *err)
{
    catalog_handle_t *h = NULL;
    msg_t mm;
    cJSON *body = NULL;
    int rc = msg_decode(key, key_len, value, value_len, &mm, NULL, err);

    if (rc != ERR_OK)
        goto out;
    rc = catalog_acquire(s->cat, name, &h, err);
    if (rc == ERR_NOT_FOUND && s->auto_create && (body = auto_body(s, &mm.op, model)) != NULL) {
        rc = catalog_create(s->cat, name, body, err);
        if (rc == ERR_OK || rc == ERR_EXISTS)
            rc = catalog_acquire(s->cat, name, &h, err);
    }
    if (rc == ERR_OK)
        rc = resolve(s, catalog_handle_coll(h), &mm.op, model, err);
    if (rc == ERR_OK && (rc = coll_op_validate(catalog_handle_coll(h), &mm.op, err)) == ERR_OK)
        rc = coll_write(catalog_handle_coll(h), &mm.op, NULL, err);
    if (rc == ERR_OK)
        atomic_fetch_add(&s->ops, 1);
out:
    if (rc != ERR_OK)
        err_wrap(err, "collection %s", name);
    cJSON_Delete(body);
    if (h != NULL)
        catalog_release(h);
    msg_clear(&mm);
    return rc;
}

int sink_reapply(sink_t *s, const char *topic, const void *key, size_t key_len,
                 const void *value, size_t value_len, size_t *applied, err_t *err)
{
    const route_t *r = topic ? route_find(s, topic) : NULL;
    msg_t mm;
    int rc;

    *applied = 0;
    if (key_len + value_len > s->max_message)
        return err_set(err, ERR_TOO_LARGE, "message of %zu bytes is larger than the limit of %zu",
                       key_len + value_len, s->max_message);
    if ((rc = msg_decode(key, key_len, value, value_len, &mm, NULL, err)) != ERR_OK)
        goto out;
    if (r == NULL && mm.collection == NULL) {
        rc = err_set(err, ERR_INVALID, "the message names no collection_name and topic %s has "
                     "no route (kafka.routes)", topic ? topic : "(none)");
        goto out;
    }
    bool named_ok = r == NULL || mm.collection == NULL;
    for (size_t k = 0; r != NULL && k < r->n && !named_ok; k++)
        named_ok = strcmp(r->colls[k], mm.collection) == 0;
    if (!named_ok) {
        rc = err_set(err, ERR_INVALID, "collection_name \"%s\" is not routed from topic %s",
                     mm.collection, topic);
        goto out;
    }
    /* each target on its own: one collection's refusal does not undo another's write */
    for (size_t k = 0; k < (r ? r->n : 1) && rc == ERR_OK; k++) {
        rc = reapply_one(s, r ? r->colls[k] : mm.collection, r ? r->models[k] : NULL, key,
                         key_len, value, value_len, err);
        *applied += rc == ERR_OK;
    }
out:
    msg_clear(&mm);
    return rc;
}
