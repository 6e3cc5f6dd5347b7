/*
 * coll.c - collection open/recovery, the write path and the applier.
 *
 * FILES
 *   <dir>/wal/       the WAL (wal.h)
 *   <dir>/db/        RocksDB, one column family (default)
 *
 * ROCKSDB KEYS (one column family, distinguished by the first byte)
 *   'm' "applied"                 -> u64 LE: seq of the last applied WAL record
 *   'p' <point id key (ptid.h)>   -> point record (below), live or tombstone
 *   's' <topic> 0x00 <u32 BE partition> -> i64 LE: last applied source offset
 *   'q' <point id key> <u64 BE seq> -> an op (op.h encoding): a kept update (PENDING)
 *   'x' <meta key>                -> u64 LE seq of the op that stored it, value
 *                                    bytes (op.h META; coll_meta_get)
 *
 *   point record: u8 format (1), u8 flags (1 live, 2 has producer version),
 *                 u64 version, u64 producer version, u32 payload length,
 *                 payload JSON text, u16 n_vectors, then each: u16 name
 *                 length, name, u32 dim, dim floats (LE)
 *
 * Why one column family: veclog's own WAL is the log, so RocksDB's is
 * disabled.  Without a RocksDB WAL, a crash loses the memtable, and with a
 * single column family what survives is always the state after some prefix
 * of our write batches (memtables are flushed whole and in order).  Every
 * batch carries 'm' applied and the source offsets with the data, so the
 * surviving state names exactly the WAL position to replay from, and the
 * source offsets a Kafka consumer must resume after.  With several column
 * families that guarantee needs atomic_flush; one family is simpler.
 *
 * VERSIONS
 * Each point record, tombstones included, carries the seq of the op that
 * last changed it.  The applier skips a point whose version is >= the op's
 * seq, so replaying a record twice, or replaying from before the stored
 * position, changes nothing.  An optional producer version orders writes by
 * the producer's clock: a write whose producer version is not newer than
 * the stored one is skipped.  Deletes write tombstones (even for ids never
 * seen: a delete may overtake the insert it cancels, e.g. during a
 * backfill); coll_tombstones_purge forgets old ones.
 *
 * PENDING (no hole in a migration)
 * A payload or vector update from Kafka for a point this collection has
 * never seen (no record, not even a tombstone) is not dropped: it is kept
 * under 'q' <id> <u64 BE seq> -> the op narrowed to that point.  During a
 * model migration that is a dual-written update that overtook the
 * backfill's copy of the point.  When a backfill copy (an insert-only
 * upsert whose META key starts "backfill/") creates the point, the kept
 * updates are applied on top of it, in order, in the same op; any other
 * upsert that creates or replaces the point, or a delete, makes them moot
 * and they are dropped.  Collections that never take a backfill keep them
 * until such a write: only updates of never-seen ids pile up there.
 *
 * THE APPLIER
 * Writers append to the WAL concurrently (sharing fsyncs), then apply one at
 * a time in seq order (apply_mu + apply_cv).  Applying computes every
 * point's new state into a change list without touching memory (readers go
 * on), writes the RocksDB batch, and only then takes the writer lock to
 * swap the changes into memory: readers see an op wholly or not at all.
 * The swap also moves each changed slot's entries in the payload indexes
 * (coll_index.c), and filter ops pick their targets through the index
 * planner like reads do.
 */
#include "coll_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dist.h"
#include "log.h"

#define REC_FORMAT 1
#define KEY_APPLIED "mapplied"
#define DEFAULT_CHECKPOINT (64ull << 20)

/* Marks "this vector is unchanged" in a change's vector pointer array. */
static const float vp_keep_marker[1];
#define VP_KEEP (vp_keep_marker)

typedef struct change {
    ptid_t id;
    int64_t slot;             /* existing slot or -1 */
    uint64_t base_version;    /* version before this op */
    uint64_t version, pv;
    uint8_t flags;
    bool exists;              /* a record (live or tombstone) exists */
    bool dirty;
    bool payload_set;         /* payload below replaces the slot's */
    cJSON *payload;           /* owned */
    const float **vp;         /* n_defs: VP_KEEP, NULL (absent) or data */
} change_t;

typedef struct apply {
    coll_t *c;
    uint64_t seq;
    const op_t *op;
    change_t *ch;
    size_t n, cap;
    uint32_t *omap;           /* overlay: id -> change index + 1 */
    uint32_t omap_cap;
    coll_write_result_t *res;
    filter_t *update_filter;  /* upsert/update_vectors: existing points must match */
    size_t *pend_put;         /* PENDING: indexes of op points to keep */
    size_t n_put;
    ptid_t *pend_del;         /* PENDING: ids whose kept updates go */
    size_t n_del;
    op_t *replayed;           /* kept updates applied by a backfill copy (their vectors
                               * are borrowed by the changes until the swap) */
    size_t n_replayed;
} apply_t;

/* ---- id map ----------------------------------------------------------- */

int64_t coll_slot_find(const coll_t *c, const ptid_t *id)
{
    if (c->map_cap == 0)
        return -1;
    uint32_t mask = c->map_cap - 1;
    for (uint32_t i = (uint32_t)ptid_hash(id) & mask;; i = (i + 1) & mask) {
        uint32_t v = c->map[i];
        if (v == 0)
            return -1;
        if (ptid_eq(&c->slots[v - 1].id, id))
            return v - 1;
    }
}

static void map_put(uint32_t *map, uint32_t cap, const ptid_t *id, uint32_t value)
{
    uint32_t mask = cap - 1;
    uint32_t i = (uint32_t)ptid_hash(id) & mask;
    while (map[i] != 0)
        i = (i + 1) & mask;
    map[i] = value;
}

static int map_rebuild(coll_t *c, uint32_t cap)
{
    uint32_t *m = calloc(cap, sizeof(uint32_t));
    if (m == NULL)
        return ERR_NOMEM;
    for (uint32_t s = 0; s < c->n_slots; s++)
        map_put(m, cap, &c->slots[s].id, s + 1);
    free(c->map);
    c->map = m;
    c->map_cap = cap;
    return ERR_OK;
}

int coll_vector_index(const coll_t *c, const char *name)
{
    if (name == NULL)
        name = "";
    for (uint32_t i = 0; i < c->n_defs; i++)
        if (strcmp(c->defs[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Make room for one more slot: grow slot, vector and map arrays. */
static int slots_reserve(coll_t *c)
{
    if (c->n_slots + 1 > c->map_cap / 2) {
        uint32_t cap = c->map_cap ? c->map_cap * 2 : 1024;
        if (map_rebuild(c, cap) != ERR_OK)
            return ERR_NOMEM;
    }
    if (c->n_slots < c->cap_slots)
        return ERR_OK;
    uint32_t cap = c->cap_slots ? c->cap_slots * 2 : 256;
    coll_slot_t *ns = realloc(c->slots, (size_t)cap * sizeof(*ns));
    if (ns == NULL)
        return ERR_NOMEM;
    c->slots = ns;
    for (uint32_t k = 0; k < c->n_defs; k++) {
        float *d = realloc(c->vs[k].data, (size_t)cap * c->defs[k].dim * sizeof(float));
        if (d == NULL)
            return ERR_NOMEM;
        c->vs[k].data = d;
        uint8_t *p = realloc(c->vs[k].present, cap);
        if (p == NULL)
            return ERR_NOMEM;
        memset(p + c->cap_slots, 0, cap - c->cap_slots);
        c->vs[k].present = p;
    }
    if (coll_vindex_reserve(c, c->cap_slots, cap) != ERR_OK)
        return ERR_NOMEM;
    c->cap_slots = cap;
    return ERR_OK;
}

static int64_t slot_new(coll_t *c, const ptid_t *id)
{
    if (slots_reserve(c) != ERR_OK)
        return -1;
    uint32_t s = c->n_slots++;
    memset(&c->slots[s], 0, sizeof(coll_slot_t));
    c->slots[s].id = *id;
    for (uint32_t k = 0; k < c->n_defs; k++)
        c->vs[k].present[s] = 0;
    coll_vindex_slot_new(c, s);
    map_put(c->map, c->map_cap, id, s + 1);
    return s;
}

const coll_vector_def_t *coll_vectors(coll_t *c, uint32_t *n)
{
    *n = c->n_defs;
    return c->defs;
}

/* ---- point records ---------------------------------------------------- */

typedef struct rec {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} rec_t;

static void rec_put(rec_t *r, const void *d, size_t n)
{
    if (r->oom || n == 0)
        return;
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n)
            cap *= 2;
        uint8_t *np = realloc(r->p, cap);
        if (np == NULL) {
            r->oom = true;
            return;
        }
        r->p = np;
        r->cap = cap;
    }
    memcpy(r->p + r->len, d, n);
    r->len += n;
}

/* Serialise a change into r (reused between points). */
static void rec_encode(const coll_t *c, const change_t *ch, rec_t *r)
{
    uint8_t fmt = REC_FORMAT;
    uint16_t nv = 0;
    const cJSON *payload = ch->payload_set ? ch->payload
                                           : (ch->slot >= 0 ? c->slots[ch->slot].payload : NULL);
    char *text = (ch->flags & SLOT_LIVE) && payload ? cJSON_PrintUnformatted(payload) : NULL;
    uint32_t plen = text ? (uint32_t)strlen(text) : 0;
    const float *vecs[COLL_MAX_VECTORS];

    r->len = 0;
    if ((ch->flags & SLOT_LIVE) && payload && text == NULL)
        r->oom = true;
    rec_put(r, &fmt, 1);
    rec_put(r, &ch->flags, 1);
    rec_put(r, &ch->version, 8);
    rec_put(r, &ch->pv, 8);
    rec_put(r, &plen, 4);
    rec_put(r, text, plen);
    free(text);
    for (uint32_t k = 0; k < c->n_defs; k++) {
        const float *v = ch->vp[k];
        if (v == VP_KEEP)
            v = (ch->slot >= 0 && c->vs[k].present[ch->slot])
                    ? c->vs[k].data + (size_t)ch->slot * c->defs[k].dim : NULL;
        vecs[k] = (ch->flags & SLOT_LIVE) ? v : NULL;
        nv += vecs[k] != NULL;
    }
    rec_put(r, &nv, 2);
    for (uint32_t k = 0; k < c->n_defs; k++) {
        if (vecs[k] == NULL)
            continue;
        uint16_t nl = (uint16_t)strlen(c->defs[k].name);
        rec_put(r, &nl, 2);
        rec_put(r, c->defs[k].name, nl);
        rec_put(r, &c->defs[k].dim, 4);
        rec_put(r, vecs[k], (size_t)c->defs[k].dim * sizeof(float));
    }
}

/* Load one stored point record into a new slot (open time). */
static int rec_load(coll_t *c, const ptid_t *id, const uint8_t *v, size_t len, err_t *err)
{
    uint32_t plen;
    uint16_t nv;
    size_t off = 22;
    int64_t s;

    if (len < 22 || v[0] != REC_FORMAT)
        goto bad;
    s = slot_new(c, id);
    if (s < 0)
        return err_set(err, ERR_NOMEM, "no memory loading points");
    coll_slot_t *sl = &c->slots[s];
    sl->flags = v[1];
    memcpy(&sl->version, v + 2, 8);
    memcpy(&sl->pv, v + 10, 8);
    memcpy(&plen, v + 18, 4);
    if (len - off < plen + 2u)
        goto bad;
    if (sl->flags & SLOT_LIVE) {
        sl->payload = plen ? cJSON_ParseWithLength((const char *)v + off, plen) : cJSON_CreateObject();
        if (sl->payload == NULL)
            goto bad;
        c->live++;
    } else {
        c->tombs++;
    }
    off += plen;
    memcpy(&nv, v + off, 2);
    off += 2;
    for (uint16_t i = 0; i < nv; i++) {
        uint16_t nl;
        uint32_t dim;
        char name[COLL_VECTOR_NAME_MAX + 1];
        if (len - off < 2)
            goto bad;
        memcpy(&nl, v + off, 2);
        if (nl > COLL_VECTOR_NAME_MAX || len - off < 6u + nl)
            goto bad;
        memcpy(name, v + off + 2, nl);
        name[nl] = '\0';
        memcpy(&dim, v + off + 2 + nl, 4);
        off += 6u + nl;
        int k = coll_vector_index(c, name);
        if (k < 0 || dim != c->defs[k].dim || len - off < (size_t)dim * 4)
            goto bad;
        memcpy(c->vs[k].data + (size_t)s * dim, v + off, (size_t)dim * 4);
        c->vs[k].present[s] = 1;
        c->vectors++;
        off += (size_t)dim * 4;
    }
    return ERR_OK;
bad:
    return err_set(err, ERR_CORRUPT, "collection %s: malformed point record", c->dir);
}

static void src_key(const char *topic, int32_t partition, char *buf, size_t *len)
{
    size_t tl = strlen(topic);
    uint32_t p = (uint32_t)partition;
    buf[0] = 's';
    memcpy(buf + 1, topic, tl);
    buf[1 + tl] = '\0';
    for (int i = 0; i < 4; i++)
        buf[2 + tl + i] = (char)(p >> (24 - 8 * i));
    *len = 6 + tl;
}

static coll_src_t *src_find(coll_t *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->n_srcs; i++)
        if (c->srcs[i].partition == partition && strcmp(c->srcs[i].topic, topic) == 0)
            return &c->srcs[i];
    return NULL;
}

static int src_set(coll_t *c, const char *topic, int32_t partition, int64_t offset)
{
    coll_src_t *s = src_find(c, topic, partition);
    if (s != NULL) {
        if (offset > s->offset)
            s->offset = offset;
        return ERR_OK;
    }
    coll_src_t *ns = realloc(c->srcs, (c->n_srcs + 1) * sizeof(*ns));
    if (ns == NULL)
        return ERR_NOMEM;
    c->srcs = ns;
    ns[c->n_srcs].topic = strdup(topic);
    if (ns[c->n_srcs].topic == NULL)
        return ERR_NOMEM;
    ns[c->n_srcs].partition = partition;
    ns[c->n_srcs].offset = offset;
    c->n_srcs++;
    return ERR_OK;
}

int coll_meta_get(coll_t *c, const char *key, char **val, err_t *err)
{
    char k[256], *dberr = NULL;
    size_t kl = strlen(key), vl = 0;

    *val = NULL;
    if (kl == 0 || kl >= 250)
        return err_set(err, ERR_INVALID, "meta key: 1..249 bytes");
    k[0] = 'x';
    memcpy(k + 1, key, kl);
    char *v = rocksdb_get(c->db, c->ropts, k, kl + 1, &vl, &dberr);
    if (dberr != NULL) {
        int rc = err_set(err, ERR_IO, "%s: reading meta %s: %s", c->dir, key, dberr);
        free(dberr);
        return rc;
    }
    if (v == NULL || vl < 8) {
        rocksdb_free(v);
        return err_set(err, ERR_NOT_FOUND, "no meta %s", key);
    }
    *val = malloc(vl - 8 + 1);
    if (*val != NULL) {
        memcpy(*val, v + 8, vl - 8);
        (*val)[vl - 8] = '\0';
    }
    rocksdb_free(v);
    return *val ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

int64_t coll_source_offset(coll_t *c, const char *topic, int32_t partition)
{
    int64_t off = -1;
    pthread_rwlock_rdlock(&c->lock);
    coll_src_t *s = src_find(c, topic, partition);
    if (s != NULL)
        off = s->offset;
    pthread_rwlock_unlock(&c->lock);
    return off;
}

/* ---- applying an op ---------------------------------------------------- */

static void apply_free(apply_t *a)
{
    for (size_t i = 0; i < a->n; i++) {
        cJSON_Delete(a->ch[i].payload);
        free(a->ch[i].vp);
    }
    free(a->ch);
    free(a->omap);
    filter_free(a->update_filter);
    free(a->pend_put);
    free(a->pend_del);
    for (size_t i = 0; i < a->n_replayed; i++)
        op_clear(&a->replayed[i]);
    free(a->replayed);
}

static int omap_grow(apply_t *a)
{
    uint32_t cap = a->omap_cap ? a->omap_cap * 2 : 64;
    uint32_t *m = calloc(cap, sizeof(uint32_t));
    if (m == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < a->n; i++)
        map_put(m, cap, &a->ch[i].id, (uint32_t)i + 1);
    free(a->omap);
    a->omap = m;
    a->omap_cap = cap;
    return ERR_OK;
}

static change_t *omap_find(apply_t *a, const ptid_t *id)
{
    if (a->omap_cap == 0)
        return NULL;
    uint32_t mask = a->omap_cap - 1;
    for (uint32_t i = (uint32_t)ptid_hash(id) & mask;; i = (i + 1) & mask) {
        uint32_t v = a->omap[i];
        if (v == 0)
            return NULL;
        if (ptid_eq(&a->ch[v - 1].id, id))
            return &a->ch[v - 1];
    }
}

/* The pending state of id in this op: an existing change, or a new one
 * initialised from memory.  copy_payload duplicates a live payload so a
 * payload op can edit it.  NULL on allocation failure. */
static change_t *change_get(apply_t *a, const ptid_t *id, bool copy_payload)
{
    coll_t *c = a->c;
    change_t *ch = omap_find(a, id);

    if (ch != NULL) {
        if (copy_payload && !ch->payload_set && (ch->flags & SLOT_LIVE) && ch->slot >= 0) {
            ch->payload = cJSON_Duplicate(c->slots[ch->slot].payload, 1);
            ch->payload_set = ch->payload != NULL;
            if (ch->payload == NULL)
                return NULL;
        }
        return ch;
    }
    if ((a->n + 1) * 2 > a->omap_cap && omap_grow(a) != ERR_OK)
        return NULL;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        change_t *nc = realloc(a->ch, cap * sizeof(*nc));
        if (nc == NULL)
            return NULL;
        a->ch = nc;
        a->cap = cap;
    }
    ch = &a->ch[a->n];
    memset(ch, 0, sizeof(*ch));
    ch->vp = calloc(c->n_defs ? c->n_defs : 1, sizeof(float *));
    if (ch->vp == NULL)
        return NULL;
    ch->id = *id;
    ch->slot = coll_slot_find(c, id);
    if (ch->slot >= 0) {
        const coll_slot_t *s = &c->slots[ch->slot];
        ch->exists = true;
        ch->base_version = ch->version = s->version;
        ch->pv = s->pv;
        ch->flags = s->flags;
        for (uint32_t k = 0; k < c->n_defs; k++)
            ch->vp[k] = (s->flags & SLOT_LIVE) ? VP_KEEP : NULL;
        if (copy_payload && (s->flags & SLOT_LIVE)) {
            ch->payload = cJSON_Duplicate(s->payload, 1);
            if (ch->payload == NULL) {
                free(ch->vp);
                return NULL;
            }
            ch->payload_set = true;
        }
    }
    map_put(a->omap, a->omap_cap, id, (uint32_t)a->n + 1);
    a->n++;
    return ch;
}

/* Already applied (replay) or older than the stored producer version. */
static bool change_stale(const change_t *ch, uint64_t seq, const op_point_t *p)
{
    if (ch->base_version >= seq)
        return true;
    return p != NULL && p->has_pv && (ch->flags & SLOT_HAS_PV) && ch->pv >= p->pv;
}

static void change_touch(change_t *ch, uint64_t seq, const op_point_t *p)
{
    ch->version = seq;
    ch->dirty = true;
    if (p != NULL && p->has_pv) {
        ch->pv = p->pv;
        ch->flags |= SLOT_HAS_PV;
    }
}

static void change_payload(change_t *ch, cJSON *payload)
{
    cJSON_Delete(ch->payload);
    ch->payload = payload;
    ch->payload_set = true;
}

static void outcome(apply_t *a, size_t i, int o)
{
    coll_write_result_t *r = a->res;
    if (r == NULL)
        return;
    if (r->outcomes != NULL && i < r->n_outcomes)
        r->outcomes[i] = (uint8_t)o;
    switch (o) {
    case COLL_INSERTED: r->inserted++; break;
    case COLL_UPDATED: r->updated++; break;
    case COLL_DELETED: r->deleted++; break;
    default: r->skipped++; break;
    }
}

/* update_filter: an existing live point is changed only if it matches. */
static bool update_allowed(apply_t *a, const change_t *ch)
{
    if (a->update_filter == NULL || !(ch->flags & SLOT_LIVE))
        return true;
    const cJSON *payload = ch->payload_set ? ch->payload
                                           : (ch->slot >= 0 ? a->c->slots[ch->slot].payload : NULL);
    filter_point_t fp = { &ch->id, payload, NULL, NULL };
    return coll_filter_match(a->c, a->update_filter, &fp);
}

/* ---- PENDING: updates of never-seen points (header) ------------------- */

static int partial_apply(apply_t *a, change_t *ch, const op_t *op, const op_point_t *p);

static bool is_backfill_copy(const op_t *op)
{
    return op->mode == OP_MODE_INSERT_ONLY && op->meta_key != NULL &&
           strncmp(op->meta_key, "backfill/", 9) == 0;
}

static size_t pending_prefix(const ptid_t *id, char *key)
{
    key[0] = 'q';
    return 1 + ptid_encode(id, (uint8_t *)key + 1);
}

static int pending_note(apply_t *a, size_t i)
{
    size_t *np = realloc(a->pend_put, (a->n_put + 1) * sizeof(*np));
    if (np == NULL)
        return ERR_NOMEM;
    a->pend_put = np;
    np[a->n_put++] = i;
    a->c->has_pending = true; /* a hint only the applier reads: may stay true */
    return ERR_OK;
}

static int pending_forget(apply_t *a, const ptid_t *id)
{
    if (!a->c->has_pending)
        return ERR_OK;
    ptid_t *nd = realloc(a->pend_del, (a->n_del + 1) * sizeof(*nd));
    if (nd == NULL)
        return ERR_NOMEM;
    a->pend_del = nd;
    nd[a->n_del++] = *id;
    return ERR_OK;
}

/* Decode the kept update at iterator it into a->replayed (owned there). */
static op_t *pending_load(apply_t *a, rocksdb_iterator_t *it)
{
    size_t vl;
    const char *v = rocksdb_iter_value(it, &vl);
    op_t *no = realloc(a->replayed, (a->n_replayed + 1) * sizeof(*no));
    err_t e;

    if (no == NULL)
        return NULL;
    a->replayed = no;
    if (op_decode((const uint8_t *)v, vl, &no[a->n_replayed], &e) != ERR_OK) {
        log_warn("coll", "%s: a kept update does not decode (%s): dropped", a->c->dir, e.msg);
        return &no[a->n_replayed]; /* zeroed: type 0 applies nothing */
    }
    return &no[a->n_replayed++];
}

/* A backfill copy created ch: apply its kept updates in order. */
static int pending_replay(apply_t *a, change_t *ch)
{
    char key[1 + PTID_KEY_MAX];
    size_t kl;
    int rc = ERR_OK;

    if (!a->c->has_pending)
        return ERR_OK;
    kl = pending_prefix(&ch->id, key);
    rocksdb_iterator_t *it = rocksdb_create_iterator(a->c->db, a->c->ropts);
    for (rocksdb_iter_seek(it, key, kl); rocksdb_iter_valid(it) && rc == ERR_OK;
         rocksdb_iter_next(it)) {
        size_t il;
        const char *ik = rocksdb_iter_key(it, &il);
        if (il != kl + 8 || memcmp(ik, key, kl) != 0)
            break;
        op_t *op = pending_load(a, it);
        if (op == NULL)
            rc = ERR_NOMEM;
        else if (op->type != 0 && op->type != OP_DELETE && op->n_points == 1 &&
                 ptid_eq(&op->points[0].id, &ch->id)) {
            rc = partial_apply(a, ch, op, &op->points[0]);
        }
    }
    rocksdb_iter_destroy(it);
    return rc == ERR_OK ? pending_forget(a, &ch->id) : rc;
}

/* The kept updates of this op into batch b (PENDING). */
static int pending_persist(apply_t *a, rocksdb_writebatch_t *b, err_t *err)
{
    char key[1 + PTID_KEY_MAX + 8], end[1 + PTID_KEY_MAX + 9];

    for (size_t j = 0; j < a->n_del; j++) {
        size_t kl = pending_prefix(&a->pend_del[j], end);
        memset(end + kl, 0xff, 9);
        rocksdb_writebatch_delete_range(b, end, kl, end, kl + 9);
    }
    for (size_t j = 0; j < a->n_put; j++) {
        const op_t *op = a->op;
        op_t one = { .type = op->type, .mode = op->mode, .payload = op->payload,
                     .key = op->key, .names = op->names, .n_names = op->n_names,
                     .points = &op->points[a->pend_put[j]], .n_points = 1 };
        uint8_t *buf;
        size_t len, kl = pending_prefix(&one.points[0].id, key);
        for (int k = 0; k < 8; k++)
            key[kl + (size_t)k] = (char)(a->seq >> (56 - 8 * k));
        if (op_encode(&one, &buf, &len, err) != ERR_OK)
            return err->code;
        rocksdb_writebatch_put(b, key, kl + 8, (const char *)buf, len);
        free(buf);
    }
    return ERR_OK;
}

static int apply_upsert_point(apply_t *a, size_t i)
{
    const op_point_t *p = &a->op->points[i];
    change_t *ch = change_get(a, &p->id, false);
    bool live;

    if (ch == NULL)
        return ERR_NOMEM;
    live = (ch->flags & SLOT_LIVE) != 0;
    if (change_stale(ch, a->seq, p) ||
        (a->op->mode == OP_MODE_INSERT_ONLY &&
         (live || (ch->exists && !(p->has_pv && (ch->flags & SLOT_HAS_PV))))) ||
        (a->op->mode == OP_MODE_UPDATE_ONLY && !live) || !update_allowed(a, ch)) {
        outcome(a, i, COLL_SKIPPED);
        return ERR_OK;
    }
    cJSON *payload = p->payload ? cJSON_Parse(p->payload) : cJSON_CreateObject();
    if (payload == NULL)
        return ERR_NOMEM;
    change_payload(ch, payload);
    for (uint32_t k = 0; k < a->c->n_defs; k++) {
        ch->vp[k] = NULL;
        for (uint32_t v = 0; v < p->n_vecs; v++)
            if (strcmp(p->vecs[v].name, a->c->defs[k].name) == 0)
                ch->vp[k] = p->vecs[v].data;
    }
    ch->flags |= SLOT_LIVE;
    change_touch(ch, a->seq, p);
    outcome(a, i, live ? COLL_UPDATED : COLL_INSERTED);
    return is_backfill_copy(a->op) ? pending_replay(a, ch) : pending_forget(a, &p->id);
}

static void change_tombstone(apply_t *a, change_t *ch, const op_point_t *p)
{
    change_payload(ch, NULL);
    for (uint32_t k = 0; k < a->c->n_defs; k++)
        ch->vp[k] = NULL;
    ch->flags &= (uint8_t)~SLOT_LIVE;
    change_touch(ch, a->seq, p);
}

/* The payload or vector change of partial op `op` (not a delete) on ch; p
 * is the op's point (NULL when the target came from a filter). */
static int partial_apply(apply_t *a, change_t *ch, const op_t *op, const op_point_t *p)
{
    err_t e;

    switch (op->type) {
    case OP_SET_PAYLOAD: {
        cJSON *src = cJSON_Parse(op->payload);
        int rc = src ? coll_payload_merge(ch->payload, src, op->key, &e) : ERR_NOMEM;
        cJSON_Delete(src);
        return rc;
    }
    case OP_OVERWRITE_PAYLOAD:
    case OP_CLEAR_PAYLOAD: {
        cJSON *np = op->type == OP_CLEAR_PAYLOAD ? cJSON_CreateObject() : cJSON_Parse(op->payload);
        if (np == NULL)
            return ERR_NOMEM;
        change_payload(ch, np);
        return ERR_OK;
    }
    case OP_DELETE_PAYLOAD:
        for (uint32_t k = 0; k < op->n_names; k++)
            coll_payload_delete_path(ch->payload, op->names[k]);
        return ERR_OK;
    case OP_UPDATE_VECTORS:
        for (uint32_t v = 0; p != NULL && v < p->n_vecs; v++) {
            int k = coll_vector_index(a->c, p->vecs[v].name);
            if (k >= 0)
                ch->vp[k] = p->vecs[v].data;
        }
        return ERR_OK;
    case OP_DELETE_VECTORS:
        for (uint32_t n = 0; n < op->n_names; n++) {
            int k = coll_vector_index(a->c, op->names[n]);
            if (k >= 0)
                ch->vp[k] = NULL;
        }
        return ERR_OK;
    default:
        return ERR_OK;
    }
}

/* Apply a non-upsert op to one target; p is the op point (NULL when the
 * target came from a filter). */
static int apply_target(apply_t *a, const ptid_t *id, const op_point_t *p, size_t i)
{
    const op_t *op = a->op;
    bool need_payload = op->type == OP_SET_PAYLOAD || op->type == OP_DELETE_PAYLOAD;
    change_t *ch = change_get(a, id, need_payload);

    if (ch == NULL)
        return ERR_NOMEM;
    bool live = (ch->flags & SLOT_LIVE) != 0;
    if (!live && !ch->exists && p != NULL && op->type != OP_DELETE && op->has_source &&
        !change_stale(ch, a->seq, p)) {
        outcome(a, i, COLL_SKIPPED);
        return pending_note(a, i); /* kept for a backfill copy (PENDING above) */
    }
    if (change_stale(ch, a->seq, p) || (!live && op->type != OP_DELETE) ||
        (op->type == OP_UPDATE_VECTORS && !update_allowed(a, ch))) {
        outcome(a, i, COLL_SKIPPED);
        return ERR_OK;
    }
    if (op->type == OP_DELETE) {
        change_tombstone(a, ch, p);
        outcome(a, i, live ? COLL_DELETED : COLL_SKIPPED);
        return pending_forget(a, id);
    }
    int rc = partial_apply(a, ch, op, p);
    if (rc != ERR_OK)
        return rc;
    change_touch(ch, a->seq, p);
    outcome(a, i, COLL_UPDATED);
    return ERR_OK;
}

typedef struct hv_ctx {
    const coll_t *c;
    uint32_t slot;
} hv_ctx_t;

static bool slot_has_vector(void *ctx, const char *name)
{
    const hv_ctx_t *h = ctx;
    int k = coll_vector_index(h->c, name);
    return k >= 0 && h->c->vs[k].present[h->slot];
}

/* Point ids of live points matching the op's filter.  The applier is the
 * only writer of memory, so it may read memory without the lock. */
static int filter_targets(apply_t *a, ptid_t **ids, size_t *n, err_t *err)
{
    coll_t *c = a->c;
    cJSON *fj = cJSON_Parse(a->op->filter);
    filter_t *f = NULL;
    size_t cap = 0;
    int rc;

    *ids = NULL;
    *n = 0;
    rc = fj ? filter_parse(fj, &f, err) : err_set(err, ERR_CORRUPT, "logged filter is not JSON");
    cJSON_Delete(fj);
    if (rc != ERR_OK)
        return rc;
    uint32_t *cand = NULL;
    size_t n_cand = 0;
    bool planned = coll_index_plan(c, f, &cand, &n_cand);
    size_t n_scan = planned ? n_cand : c->n_slots;
    for (size_t i = 0; i < n_scan; i++) {
        uint32_t s = planned ? cand[i] : (uint32_t)i;
        if (!(c->slots[s].flags & SLOT_LIVE))
            continue;
        hv_ctx_t h = { c, s };
        filter_point_t fp = { &c->slots[s].id, c->slots[s].payload, slot_has_vector, &h };
        if (!coll_filter_match(c, f, &fp))
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            ptid_t *ni = realloc(*ids, cap * sizeof(ptid_t));
            if (ni == NULL) {
                rc = err_set(err, ERR_NOMEM, "no memory");
                break;
            }
            *ids = ni;
        }
        (*ids)[(*n)++] = c->slots[s].id;
    }
    free(cand);
    filter_free(f);
    return rc;
}

static int apply_compute(apply_t *a, err_t *err)
{
    const op_t *op = a->op;
    int rc = ERR_OK;

    if (op->filter != NULL && (op->type == OP_UPSERT || op->type == OP_UPDATE_VECTORS)) {
        cJSON *fj = cJSON_Parse(op->filter);
        rc = fj ? filter_parse(fj, &a->update_filter, err)
                : err_set(err, ERR_CORRUPT, "logged filter is not JSON");
        cJSON_Delete(fj);
        if (rc != ERR_OK)
            return rc;
    }
    if (op->type == OP_UPSERT) {
        for (size_t i = 0; i < op->n_points && rc == ERR_OK; i++)
            rc = apply_upsert_point(a, i);
    } else if (op->filter != NULL && op->type != OP_UPDATE_VECTORS) {
        ptid_t *ids;
        size_t n;
        rc = filter_targets(a, &ids, &n, err);
        for (size_t i = 0; i < n && rc == ERR_OK; i++)
            rc = apply_target(a, &ids[i], NULL, SIZE_MAX);
        free(ids);
    } else {
        for (size_t i = 0; i < op->n_points && rc == ERR_OK; i++)
            rc = apply_target(a, &op->points[i].id, &op->points[i], i);
    }
    if (rc == ERR_NOMEM)
        return err_set(err, ERR_NOMEM, "no memory applying %s", op_type_name(op->type));
    return rc;
}

/* The op's META pair into batch b, unless a later op already stored that
 * key (replaying an old record must not roll a cursor back). */
static int meta_put(apply_t *a, rocksdb_writebatch_t *b, err_t *err)
{
    size_t kl = strlen(a->op->meta_key), vl = strlen(a->op->meta_val), ol = 0;
    char key[256], *dberr = NULL, *v, *old;
    uint64_t old_seq = 0;

    if (kl == 0 || kl >= 250)
        return ERR_OK; /* refused by coll_op_validate: only a corrupt log gets here */
    key[0] = 'x';
    memcpy(key + 1, a->op->meta_key, kl);
    old = rocksdb_get(a->c->db, a->c->ropts, key, kl + 1, &ol, &dberr);
    if (dberr != NULL) {
        int rc = err_set(err, ERR_IO, "store read failed: %s", dberr);
        free(dberr);
        return rc;
    }
    if (old != NULL && ol >= 8)
        memcpy(&old_seq, old, 8);
    rocksdb_free(old);
    if (old_seq >= a->seq)
        return ERR_OK;
    if ((v = malloc(8 + vl)) == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    memcpy(v, &a->seq, 8);
    memcpy(v + 8, a->op->meta_val, vl);
    rocksdb_writebatch_put(b, key, kl + 1, v, 8 + vl);
    free(v);
    return ERR_OK;
}

/* Write the changes, the applied seq and the source offsets in one batch
 * (an op has at most one source per (topic, partition): op.h). */
static int apply_persist(apply_t *a, err_t *err)
{
    coll_t *c = a->c;
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    rec_t r = { 0 };
    char *dberr = NULL;
    int rc = ERR_OK;

    for (size_t i = 0; i < a->n; i++) {
        const change_t *ch = &a->ch[i];
        uint8_t key[1 + PTID_KEY_MAX];
        if (!ch->dirty)
            continue;
        key[0] = 'p';
        size_t kl = 1 + ptid_encode(&ch->id, key + 1);
        rec_encode(c, ch, &r);
        if (r.oom) {
            rc = err_set(err, ERR_NOMEM, "no memory encoding points");
            goto out;
        }
        rocksdb_writebatch_put(b, (const char *)key, kl, (const char *)r.p, r.len);
    }
    rocksdb_writebatch_put(b, KEY_APPLIED, strlen(KEY_APPLIED), (const char *)&a->seq, 8);
    if (a->op->meta_key != NULL && (rc = meta_put(a, b, err)) != ERR_OK)
        goto out;
    if ((a->n_put > 0 || a->n_del > 0) && (rc = pending_persist(a, b, err)) != ERR_OK)
        goto out;
    for (size_t i = 0; i < op_source_count(a->op); i++) {
        char key[300];
        size_t kl;
        const op_source_t *src = op_source_at(a->op, i);
        coll_src_t *cur = src_find(c, src->topic, src->partition);
        int64_t off = cur && cur->offset > src->offset ? cur->offset : src->offset;
        if (strlen(src->topic) < 250) {
            src_key(src->topic, src->partition, key, &kl);
            rocksdb_writebatch_put(b, key, kl, (const char *)&off, 8);
        }
    }
    rocksdb_write(c->db, c->wopts, b, &dberr);
    if (dberr != NULL) {
        rc = err_set(err, ERR_IO, "store write failed: %s", dberr);
        free(dberr);
    }
out:
    free(r.p);
    rocksdb_writebatch_destroy(b);
    return rc;
}

/* Swap one change into memory.  Caller holds c->lock exclusively. */
static int apply_swap_one(coll_t *c, change_t *ch)
{
    int64_t s = ch->slot;
    if (s < 0 && (s = slot_new(c, &ch->id)) < 0)
        return ERR_NOMEM;
    coll_slot_t *sl = &c->slots[s];
    bool existed = ch->slot >= 0;
    bool was_live = existed && (sl->flags & SLOT_LIVE) != 0;
    bool live = (ch->flags & SLOT_LIVE) != 0;

    c->live = c->live + live - was_live;
    c->tombs = c->tombs + !live - (existed && !was_live);
    if (c->n_idx > 0) {
        const cJSON *old_p = was_live ? sl->payload : NULL;
        const cJSON *new_p = live ? (ch->payload_set ? ch->payload : sl->payload) : NULL;
        if (old_p != new_p)
            coll_index_update(c, (uint32_t)s, old_p, new_p);
    }
    sl->version = ch->version;
    sl->pv = ch->pv;
    sl->flags = ch->flags;
    if (ch->payload_set) {
        cJSON_Delete(sl->payload);
        sl->payload = ch->payload;
        ch->payload = NULL;
    }
    for (uint32_t k = 0; k < c->n_defs; k++) {
        const float *v = ch->vp[k];
        uint8_t *pr = &c->vs[k].present[s];
        if (v == VP_KEEP)
            continue;
        coll_vindex_unmap(c, k, (uint32_t)s); /* the graph's copy is stale now */
        c->vectors -= *pr;
        *pr = v != NULL;
        c->vectors += *pr;
        if (v != NULL)
            memcpy(c->vs[k].data + (size_t)s * c->defs[k].dim, v, c->defs[k].dim * sizeof(float));
        coll_vindex_track(c, k, (uint32_t)s);
    }
    return ERR_OK;
}

static int apply_swap(apply_t *a, err_t *err)
{
    coll_t *c = a->c;
    int rc = ERR_OK;

    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < a->n && rc == ERR_OK; i++)
        if (a->ch[i].dirty)
            rc = apply_swap_one(c, &a->ch[i]);
    for (size_t i = 0; i < op_source_count(a->op) && rc == ERR_OK; i++) {
        const op_source_t *src = op_source_at(a->op, i);
        rc = src_set(c, src->topic, src->partition, src->offset);
    }
    pthread_rwlock_unlock(&c->lock);
    if (rc != ERR_OK)
        return err_set(err, ERR_NOMEM, "no memory applying %s", op_type_name(a->op->type));
    return ERR_OK;
}

/* Apply a logged op.  Caller is the applier: holds apply_mu, seq is the
 * next in order. */
static int apply_op(coll_t *c, uint64_t seq, const op_t *op, coll_write_result_t *res, err_t *err)
{
    apply_t a = { .c = c, .seq = seq, .op = op, .res = res };
    int rc;

    if (res != NULL) {
        res->seq = seq;
        if (op->filter == NULL && op->n_points > 0) {
            res->outcomes = calloc(op->n_points, 1);
            if (res->outcomes == NULL)
                return err_set(err, ERR_NOMEM, "no memory");
            res->n_outcomes = op->n_points;
        }
    }
    rc = apply_compute(&a, err);
    if (rc == ERR_OK)
        rc = apply_persist(&a, err);
    if (rc == ERR_OK)
        rc = apply_swap(&a, err);
    apply_free(&a);
    return rc;
}

/* ---- validation and the write path ------------------------------------ */

static int validate_vecs(coll_t *c, const op_point_t *p, size_t i, bool need_all, err_t *err)
{
    for (uint32_t v = 0; v < p->n_vecs; v++) {
        const op_vec_t *vec = &p->vecs[v];
        int k = coll_vector_index(c, vec->name);
        if (k < 0)
            return err_set(err, ERR_INVALID, "points[%zu]: %s%s%s", i,
                           *vec->name ? "vector name \"" : "collection has no unnamed vector",
                           *vec->name ? vec->name : "", *vec->name ? "\" does not exist" : "");
        if (vec->dim != c->defs[k].dim)
            return err_set(err, ERR_INVALID,
                           "points[%zu]: wrong vector dimension for \"%s\": expected %u, got %u",
                           i, vec->name, c->defs[k].dim, vec->dim);
        for (uint32_t w = 0; w < v; w++)
            if (strcmp(p->vecs[w].name, vec->name) == 0)
                return err_set(err, ERR_INVALID, "points[%zu]: vector \"%s\" given twice", i,
                               vec->name);
        for (uint32_t d = 0; d < vec->dim; d++)
            if (vec->data[d] != vec->data[d] || vec->data[d] - vec->data[d] != 0)
                return err_set(err, ERR_INVALID, "points[%zu]: vector has a non-finite value", i);
    }
    if (need_all && c->n_defs == 1 && c->defs[0].name[0] == '\0' && p->n_vecs == 0)
        return err_set(err, ERR_INVALID, "points[%zu]: vector is required", i);
    return ERR_OK;
}

static int validate_json_object(const char *text, const char *what, err_t *err)
{
    cJSON *j = cJSON_Parse(text);
    bool ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!ok)
        return err_set(err, ERR_INVALID, "%s: must be a JSON object", what);
    return ERR_OK;
}

static int validate_selector(const op_t *op, err_t *err)
{
    if (op->filter != NULL) {
        cJSON *fj = cJSON_Parse(op->filter);
        filter_t *f = NULL;
        int rc = fj ? filter_parse(fj, &f, err) : err_set(err, ERR_INVALID, "filter: not JSON");
        cJSON_Delete(fj);
        filter_free(f);
        if (rc != ERR_OK)
            return rc;
        if (op->n_points > 0 && op->type != OP_UPSERT && op->type != OP_UPDATE_VECTORS)
            return err_set(err, ERR_INVALID, "give either points or filter, not both");
    }
    return ERR_OK;
}

int coll_op_validate(coll_t *c, const op_t *op, err_t *err)
{
    int rc = ERR_OK;

    if (op->type == 0 || op->type >= OP_TYPE_MAX || op->mode > OP_MODE_UPDATE_ONLY)
        return err_set(err, ERR_INVALID, "unknown operation");
    rc = validate_selector(op, err);
    if (rc == ERR_OK && op->meta_key != NULL &&
        (op->meta_key[0] == '\0' || strlen(op->meta_key) >= 250 || op->meta_val == NULL))
        rc = err_set(err, ERR_INVALID, "meta: a key of 1..249 bytes and a value");
    for (size_t i = 0; i < op->n_points && rc == ERR_OK; i++) {
        const op_point_t *p = &op->points[i];
        if (op->type == OP_UPSERT || op->type == OP_UPDATE_VECTORS)
            rc = validate_vecs(c, p, i, op->type == OP_UPSERT, err);
        if (rc == ERR_OK && op->type == OP_UPDATE_VECTORS && p->n_vecs == 0)
            rc = err_set(err, ERR_INVALID, "points[%zu]: no vectors to update", i);
        if (rc == ERR_OK && p->payload != NULL) {
            char what[64];
            snprintf(what, sizeof(what), "points[%zu].payload", i);
            rc = validate_json_object(p->payload, what, err);
        }
    }
    if (rc == ERR_OK && (op->type == OP_SET_PAYLOAD || op->type == OP_OVERWRITE_PAYLOAD))
        rc = op->payload ? validate_json_object(op->payload, "payload", err)
                         : err_set(err, ERR_INVALID, "payload: missing");
    if (rc == ERR_OK && op->key != NULL)
        rc = coll_payload_path_check(op->key, err);
    for (uint32_t n = 0; n < op->n_names && rc == ERR_OK; n++) {
        if (op->type == OP_DELETE_VECTORS && coll_vector_index(c, op->names[n]) < 0)
            rc = err_set(err, ERR_INVALID, "vector name \"%s\" does not exist", op->names[n]);
        else if (op->type == OP_DELETE_PAYLOAD)
            rc = coll_payload_path_check(op->names[n], err);
    }
    if (rc == ERR_OK && op->type != OP_UPSERT && op->type != OP_UPDATE_VECTORS &&
        op->filter == NULL && op->n_points == 0 && op->type != OP_DELETE)
        rc = err_set(err, ERR_INVALID, "%s: give points or filter", op_type_name(op->type));
    return rc;
}

static void prepare_vectors(coll_t *c, op_t *op)
{
    for (size_t i = 0; i < op->n_points; i++) {
        op_point_t *p = &op->points[i];
        for (uint32_t v = 0; v < p->n_vecs; v++) {
            int k = coll_vector_index(c, p->vecs[v].name);
            if (k >= 0)
                dist_prepare((enum dist_metric)c->defs[k].metric, p->vecs[v].data, p->vecs[v].dim);
        }
    }
}

static void maybe_checkpoint(coll_t *c)
{
    wal_stats_t st;
    err_t e;

    wal_stats_get(c->wal, &st);
    if (st.bytes < c->checkpoint_bytes || pthread_mutex_trylock(&c->ckpt_mu) != 0)
        return;
    pthread_mutex_unlock(&c->ckpt_mu);
    if (coll_checkpoint(c, &e) != ERR_OK)
        log_warn("coll", "%s: checkpoint failed: %s", c->dir, e.msg);
}

/* Wait for seq's turn, apply, pass the turn on. */
static int apply_in_order(coll_t *c, uint64_t seq, int sync_rc, const op_t *op,
                          coll_write_result_t *res, err_t *err)
{
    int rc = sync_rc;

    pthread_mutex_lock(&c->apply_mu);
    while (!c->failed && c->applied_seq + 1 != seq)
        pthread_cond_wait(&c->apply_cv, &c->apply_mu);
    if (c->failed && rc == ERR_OK)
        rc = err_set(err, ERR_IO, "collection %s refuses writes: %s", c->dir, c->failed_msg);
    if (rc == ERR_OK)
        rc = apply_op(c, seq, op, res, err);
    if (rc != ERR_OK && !c->failed) {
        /* Logged but not applied: memory and store can no longer be trusted
         * to match the WAL until recovery replays it. */
        c->failed = true;
        snprintf(c->failed_msg, sizeof(c->failed_msg), "%.200s", err->msg);
        log_error("coll", "%s: op %" PRIu64 " logged but not applied (%s); restart to recover",
                  c->dir, seq, c->failed_msg);
    }
    if (rc == ERR_OK)
        c->applied_seq = seq;
    pthread_cond_broadcast(&c->apply_cv);
    pthread_mutex_unlock(&c->apply_mu);
    return rc;
}

int coll_write(coll_t *c, op_t *op, coll_write_result_t *res, err_t *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t seq;
    err_t local;
    int rc;

    if (err == NULL)
        err = &local;
    if (res != NULL)
        memset(res, 0, sizeof(*res));
    rc = coll_op_validate(c, op, err);
    if (rc != ERR_OK)
        return rc;
    pthread_mutex_lock(&c->apply_mu);
    bool failed = c->failed;
    pthread_mutex_unlock(&c->apply_mu);
    if (failed)
        return err_set(err, ERR_IO, "collection %s refuses writes: %s", c->dir, c->failed_msg);
    prepare_vectors(c, op);
    rc = op_encode(op, &buf, &len, err);
    if (rc != ERR_OK)
        return rc;
    struct iovec iov = { buf, len };
    rc = wal_append(c->wal, &iov, 1, &seq, err);
    free(buf);
    if (rc != ERR_OK)
        return rc;
    rc = apply_in_order(c, seq, wal_sync(c->wal, seq, err), op, res, err);
    if (rc == ERR_OK) {
        maybe_checkpoint(c);
        coll_vindex_kick(c);
    }
    return rc;
}

void coll_write_result_clear(coll_write_result_t *res)
{
    if (res == NULL)
        return;
    free(res->outcomes);
    memset(res, 0, sizeof(*res));
}

/* ---- open, recovery, checkpoint, close -------------------------------- */

static int db_open(coll_t *c, err_t *err)
{
    char path[4096];
    char *dberr = NULL;

    snprintf(path, sizeof(path), "%s/db", c->dir);
    c->dbopts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(c->dbopts, 1);
    rocksdb_options_increase_parallelism(c->dbopts, 2);
    rocksdb_options_set_max_open_files(c->dbopts, 256);
    rocksdb_options_set_write_buffer_size(c->dbopts, 64u << 20);
    rocksdb_options_set_info_log_level(c->dbopts, 3 /* ERROR: keep LOG files small */);
    rocksdb_options_set_keep_log_file_num(c->dbopts, 2);
    c->wopts = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(c->wopts, 1);
    c->ropts = rocksdb_readoptions_create();
    c->fopts = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(c->fopts, 1);
    c->db = rocksdb_open(c->dbopts, path, &dberr);
    if (dberr != NULL) {
        int rc = err_set(err, strstr(dberr, "lock") ? ERR_BUSY : ERR_IO,
                         "open store %s: %s", path, dberr);
        free(dberr);
        return rc;
    }
    return ERR_OK;
}

static int db_load(coll_t *c, uint64_t *applied, err_t *err)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, c->ropts);
    int rc = ERR_OK;

    *applied = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && rc == ERR_OK;
         rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        if (kl == strlen(KEY_APPLIED) && memcmp(k, KEY_APPLIED, kl) == 0 && vl == 8) {
            memcpy(applied, v, 8);
        } else if (kl > 1 && k[0] == 'p') {
            ptid_t id;
            if (ptid_decode((const uint8_t *)k + 1, kl - 1, &id) != kl - 1)
                rc = err_set(err, ERR_CORRUPT, "%s: malformed point key", c->dir);
            else
                rc = rec_load(c, &id, (const uint8_t *)v, vl, err);
        } else if (kl > 1 && k[0] == 'q') {
            c->has_pending = true;
        } else if (kl > 6 && k[0] == 's' && vl == 8 && k[kl - 5] == '\0') {
            int64_t off;
            const uint8_t *pb = (const uint8_t *)k + kl - 4;
            int32_t part = (int32_t)((uint32_t)pb[0] << 24 | (uint32_t)pb[1] << 16 |
                                     (uint32_t)pb[2] << 8 | pb[3]);
            memcpy(&off, v, 8);
            if (src_set(c, k + 1, part, off) != ERR_OK)
                rc = err_set(err, ERR_NOMEM, "no memory");
        }
    }
    if (rc == ERR_OK) {
        char *dberr = NULL;
        rocksdb_iter_get_error(it, &dberr);
        if (dberr != NULL) {
            rc = err_set(err, ERR_IO, "%s: reading store: %s", c->dir, dberr);
            free(dberr);
        }
    }
    rocksdb_iter_destroy(it);
    return rc;
}

static int replay_one(void *ctx, uint64_t seq, const void *data, size_t len, err_t *err)
{
    coll_t *c = ctx;
    op_t op;
    int rc = op_decode(data, len, &op, err);

    if (rc != ERR_OK)
        return err_wrap(err, "WAL record %" PRIu64, seq);
    rc = apply_op(c, seq, &op, NULL, err);
    op_clear(&op);
    if (rc == ERR_OK && seq > c->applied_seq)
        c->applied_seq = seq;
    return rc;
}

static int coll_init(coll_t *c, const char *dir, const coll_opts_t *o, err_t *err)
{
    c->dir = strdup(dir);
    c->checkpoint_bytes = o->checkpoint_bytes ? o->checkpoint_bytes : DEFAULT_CHECKPOINT;
    /* Writer-preferring: with glibc's default (reader-preferring) lock,
     * overlapping searches keep the applier's swap waiting indefinitely,
     * and it holds apply_mu meanwhile, so every write stalls.  No reader
     * takes the lock recursively, which this kind would deadlock. */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&c->lock, &ra);
    pthread_rwlockattr_destroy(&ra);
    pthread_mutex_init(&c->apply_mu, NULL);
    pthread_cond_init(&c->apply_cv, NULL);
    pthread_mutex_init(&c->ckpt_mu, NULL);
    if (o->n_vectors > COLL_MAX_VECTORS)
        return err_set(err, ERR_INVALID, "a collection has at most %d vectors", COLL_MAX_VECTORS);
    c->defs = calloc(o->n_vectors + 1, sizeof(*c->defs));
    c->vs = calloc(o->n_vectors + 1, sizeof(*c->vs));
    if (c->dir == NULL || c->defs == NULL || c->vs == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    for (uint32_t i = 0; i < o->n_vectors; i++) {
        c->defs[i] = o->vectors[i];
        c->defs[i].name = strdup(o->vectors[i].name ? o->vectors[i].name : "");
        c->n_defs++;
        if (c->defs[i].name == NULL)
            return err_set(err, ERR_NOMEM, "no memory");
    }
    int rc = coll_vindex_init(c, o, err);
    if (rc != ERR_OK)
        return rc;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return err_errno(err, errno, "create %s", dir);
    return ERR_OK;
}

int coll_open(const char *dir, const coll_opts_t *o, coll_t **out, err_t *err)
{
    coll_t *c = calloc(1, sizeof(*c));
    char path[4096];
    uint64_t applied = 0;
    wal_opts_t wo = o->wal;
    int rc;

    *out = NULL;
    if (c == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    rc = coll_init(c, dir, o, err);
    if (rc == ERR_OK)
        rc = db_open(c, err);
    if (rc == ERR_OK)
        rc = db_load(c, &applied, err);
    if (rc != ERR_OK)
        goto fail;
    snprintf(path, sizeof(path), "%s/wal", dir);
    wo.next_seq_min = applied + 1;
    rc = wal_open(path, &wo, &c->wal, err);
    if (rc != ERR_OK)
        goto fail;
    c->applied_seq = applied;
    rc = wal_replay(c->wal, applied + 1, replay_one, c, err);
    if (rc != ERR_OK)
        goto fail;
    wal_stats_t st;
    wal_stats_get(c->wal, &st);
    if (st.last_seq > applied)
        log_info("coll", "%s: replayed WAL %" PRIu64 "..%" PRIu64, dir, applied + 1, st.last_seq);
    c->applied_seq = st.last_seq;
    rc = coll_vindex_open(c, err);
    if (rc != ERR_OK)
        goto fail;
    *out = c;
    return ERR_OK;
fail:
    err_wrap(err, "open collection %s", dir);
    coll_close(c);
    return rc;
}

int coll_wal_replay(coll_t *c, uint64_t from_seq, err_t *err)
{
    int rc;

    pthread_mutex_lock(&c->apply_mu);
    uint64_t saved = c->applied_seq;
    rc = wal_replay(c->wal, from_seq, replay_one, c, err);
    c->applied_seq = saved > c->applied_seq ? saved : c->applied_seq;
    pthread_mutex_unlock(&c->apply_mu);
    return rc;
}

int coll_checkpoint(coll_t *c, err_t *err)
{
    char *dberr = NULL;
    int rc = ERR_OK;

    pthread_mutex_lock(&c->ckpt_mu);
    pthread_mutex_lock(&c->apply_mu);
    uint64_t upto = c->applied_seq;
    bool failed = c->failed;
    pthread_mutex_unlock(&c->apply_mu);
    if (failed)
        goto out;
    rocksdb_flush(c->db, c->fopts, &dberr);
    if (dberr != NULL) {
        rc = err_set(err, ERR_IO, "flush %s: %s", c->dir, dberr);
        free(dberr);
        goto out;
    }
    rc = wal_truncate(c->wal, upto, err);
out:
    pthread_mutex_unlock(&c->ckpt_mu);
    return rc;
}

int coll_tombstones_purge(coll_t *c, uint64_t upto_seq, size_t *purged, err_t *err)
{
    rocksdb_writebatch_t *b = rocksdb_writebatch_create();
    char *dberr = NULL;
    int rc = ERR_OK;
    uint32_t w = 0;

    *purged = 0;
    pthread_mutex_lock(&c->apply_mu);
    pthread_rwlock_wrlock(&c->lock);
    for (uint32_t s = 0; s < c->n_slots; s++) {
        coll_slot_t *sl = &c->slots[s];
        if (!(sl->flags & SLOT_LIVE) && sl->version <= upto_seq) {
            uint8_t key[1 + PTID_KEY_MAX];
            key[0] = 'p';
            rocksdb_writebatch_delete(b, (const char *)key, 1 + ptid_encode(&sl->id, key + 1));
            (*purged)++;
            continue;
        }
        if (w != s) {
            c->slots[w] = *sl;
            for (uint32_t k = 0; k < c->n_defs; k++) {
                uint32_t d = c->defs[k].dim;
                c->vs[k].present[w] = c->vs[k].present[s];
                memcpy(c->vs[k].data + (size_t)w * d, c->vs[k].data + (size_t)s * d, d * sizeof(float));
            }
            coll_vindex_move(c, s, w);
        }
        w++;
    }
    rocksdb_write(c->db, c->wopts, b, &dberr);
    if (dberr != NULL) {
        rc = err_set(err, ERR_IO, "purge tombstones: %s", dberr);
        free(dberr);
    }
    c->n_slots = w;
    c->tombs -= *purged;
    if (map_rebuild(c, c->map_cap ? c->map_cap : 1024) != ERR_OK && rc == ERR_OK)
        rc = err_set(err, ERR_NOMEM, "no memory");
    if (*purged > 0) {
        coll_index_rebuild_all(c); /* slots were renumbered */
        coll_vindex_renumbered(c);
    }
    pthread_rwlock_unlock(&c->lock);
    pthread_mutex_unlock(&c->apply_mu);
    rocksdb_writebatch_destroy(b);
    return rc;
}

void coll_info_get(coll_t *c, coll_info_t *info)
{
    memset(info, 0, sizeof(*info));
    pthread_rwlock_rdlock(&c->lock);
    info->points = c->live;
    info->tombstones = c->tombs;
    info->vectors = c->vectors;
    info->indexes = (uint32_t)c->n_idx;
    coll_vindex_info(c, info);
    pthread_rwlock_unlock(&c->lock);
    info->index_reads = __atomic_load_n(&c->st_index_reads, __ATOMIC_RELAXED);
    info->index_candidates = __atomic_load_n(&c->st_index_cands, __ATOMIC_RELAXED);
    info->index_range_reads = __atomic_load_n(&c->st_index_range, __ATOMIC_RELAXED);
    pthread_mutex_lock(&c->apply_mu);
    info->applied_seq = c->applied_seq;
    info->failed = c->failed;
    pthread_mutex_unlock(&c->apply_mu);
    wal_stats_get(c->wal, &info->wal);
}

void coll_close(coll_t *c)
{
    err_t e;

    if (c == NULL)
        return;
    coll_vindex_stop(c); /* before anything the optimizer reads is freed */
    if (c->wal != NULL && c->db != NULL && coll_checkpoint(c, &e) != ERR_OK)
        log_warn("coll", "%s: final checkpoint failed: %s", c->dir, e.msg);
    wal_close(c->wal);
    if (c->db)
        rocksdb_close(c->db);
    if (c->dbopts)
        rocksdb_options_destroy(c->dbopts);
    if (c->wopts)
        rocksdb_writeoptions_destroy(c->wopts);
    if (c->ropts)
        rocksdb_readoptions_destroy(c->ropts);
    if (c->fopts)
        rocksdb_flushoptions_destroy(c->fopts);
    coll_index_free_all(c);
    coll_vindex_free(c);
    for (uint32_t s = 0; s < c->n_slots; s++)
        cJSON_Delete(c->slots[s].payload);
    free(c->slots);
    free(c->map);
    for (uint32_t k = 0; k < c->n_defs && c->vs; k++) {
        free(c->vs[k].data);
        free(c->vs[k].present);
    }
    free(c->vs);
    coll_vector_defs_free(c->defs, c->n_defs);
    for (size_t i = 0; i < c->n_srcs; i++)
        free(c->srcs[i].topic);
    free(c->srcs);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->apply_mu);
    pthread_cond_destroy(&c->apply_cv);
    pthread_mutex_destroy(&c->ckpt_mu);
    free(c->dir);
    free(c);
}
