/*
 * coll_internal.h - what coll.c (open, write, apply), coll_read.c (the
 * read path) and coll_payload.c (payload paths and selectors) share.
 * Nothing outside store/coll*.c includes this.
 */
#ifndef VECLOG_COLL_INTERNAL_H
#define VECLOG_COLL_INTERNAL_H

#include <pthread.h>
#include <rocksdb/c.h>

#include "coll.h"

enum { SLOT_LIVE = 1, SLOT_HAS_PV = 2 };

/* One point (live or tombstone) in memory.  Index = slot number. */
typedef struct coll_slot {
    ptid_t id;
    uint64_t version;       /* WAL seq of the last change */
    uint64_t pv;            /* producer version when SLOT_HAS_PV */
    uint8_t flags;
    cJSON *payload;         /* object for live points, NULL for tombstones */
} coll_slot_t;

/* The vectors of one name, dense by slot: data[slot * dim]. */
typedef struct coll_vstore {
    float *data;
    uint8_t *present;       /* 1 if the slot has this vector */
} coll_vstore_t;

/* ---- vector index (coll_vindex.c) ------------------------------------ */

struct hnsw;

/* One immutable indexed segment of one vector name: an HNSW graph whose
 * node n stands for slot slot_of_node[n] while that slot maps back to it
 * (coll_vidx_t below); anything else about node n is stale. */
typedef struct coll_seg {
    uint32_t id;              /* > 0, unique within the collection */
    struct hnsw *g;
    uint32_t *slot_of_node;   /* hnsw_count(g) entries; UINT32_MAX: none */
    char *path;               /* <dir>/segments/<vecidx>-<id> (no extension) */
} coll_seg_t;

/* The segments of one vector name and the slot -> node mapping.  Changed
 * under lock exclusively (applier, optimizer's publish, purge); read under
 * lock shared.  Slot s is indexed iff seg_of_slot[s] != 0. */
typedef struct coll_vidx {
    coll_seg_t **segs;
    size_t n_segs;
    uint32_t *seg_of_slot;    /* cap_slots entries; 0: not indexed */
    uint32_t *node_of_slot;   /* cap_slots entries */
    uint64_t indexed;         /* slots with seg_of_slot != 0 */
    struct coll_sset *tail;   /* the appendable part: live slots with this vector that no
                               * segment serves, so a graph search scans only them;
                               * NULL when it could not be kept (then every slot is looked at) */
} coll_vidx_t;

/* Effective index settings (coll_opts_t with defaults filled in). */
typedef struct coll_vopts {
    uint64_t indexing_threshold_kb, full_scan_threshold_kb, vacuum_min;
    uint32_t m, ef_construct, threads;
    uint32_t payload_m;       /* 0: no group links; with m == 0: groups only */
    bool on_disk;
    double deleted_threshold;
    uint32_t max_segments;    /* merge down to this many segments per name */
} coll_vopts_t;

typedef struct coll_src {
    char *topic;
    int32_t partition;
    int64_t offset;
} coll_src_t;

struct coll {
    char *dir;
    coll_vector_def_t *defs;
    uint32_t n_defs;
    uint64_t checkpoint_bytes;

    /* The in-memory image.  Readers hold lock shared; the applier holds it
     * exclusively only while it swaps an op's changes in. */
    pthread_rwlock_t lock;
    coll_vstore_t *vs;      /* n_defs stores */
    coll_slot_t *slots;
    uint32_t n_slots, cap_slots;
    uint32_t *map;          /* open addressing: slot + 1, 0 = empty */
    uint32_t map_cap;       /* power of two */
    uint64_t live, tombs, vectors;
    coll_src_t *srcs;
    size_t n_srcs;

    rocksdb_t *db;
    rocksdb_options_t *dbopts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    rocksdb_flushoptions_t *fopts;

    /* Write ordering: ops are applied in WAL order, one at a time. */
    wal_t *wal;
    pthread_mutex_t apply_mu;
    pthread_cond_t apply_cv;
    uint64_t applied_seq;   /* guarded by apply_mu; read under lock by readers */
    bool has_pending;       /* kept updates may exist (coll.c PENDING); the applier's */
    bool failed;
    char failed_msg[256];
    pthread_mutex_t ckpt_mu;

    /* Payload indexes (coll_index.c): changed under lock exclusively,
     * built with apply_mu held. */
    struct coll_index **idx;
    size_t n_idx;
    uint64_t st_index_reads, st_index_cands, st_index_range; /* atomic counters */

    /* Vector index (coll_vindex.c). */
    coll_vidx_t *vx;          /* n_defs */
    coll_vopts_t vopts;
    uint32_t next_seg_id;     /* optimizer thread only (after open) */
    pthread_t opt_thread;
    bool opt_started;
    pthread_mutex_t opt_mu;   /* guards opt_stop, opt_kick */
    pthread_cond_t opt_cv;
    bool opt_stop, opt_kick;
    bool optimizing;          /* atomic */
    uint64_t index_builds;    /* atomic */
    uint64_t st_graph_searches; /* atomic */
};

/* Slot of id, or -1.  Caller holds lock (either mode) or is the applier. */
int64_t coll_slot_find(const coll_t *c, const ptid_t *id);

/* Index of a vector name ("" / NULL = unnamed), or -1. */
int coll_vector_index(const coll_t *c, const char *name);

/* ---- coll_index.c ----------------------------------------------------- */

/* Move slot's index entries from old_payload to new_payload (either NULL:
 * not live).  Caller holds lock exclusively.  On allocation failure the
 * index concerned is marked unusable (planning skips it) until rebuilt. */
void coll_index_update(coll_t *c, uint32_t slot, const cJSON *old_payload,
                       const cJSON *new_payload);

/* Rebuild every index from memory (after slots were renumbered).  Caller
 * holds lock exclusively. */
void coll_index_rebuild_all(coll_t *c);

/* Free every index (coll_close). */
void coll_index_free_all(coll_t *c);

/* Plan a filtered read: if f has an equality or range condition on an
 * indexed field, *slots gets a new (caller frees) ascending,
 * duplicate-free array of the candidate slots (a superset of the matching
 * live slots) and true is returned; false: scan every slot.  Caller holds
 * lock (either mode) or is the applier. */
bool coll_index_plan(coll_t *c, const filter_t *f, uint32_t **slots, size_t *n);

/* The candidate count coll_index_plan would give (an upper bound of the
 * matches: duplicates not removed), without collecting them; false when
 * no index applies.  Same locking as coll_index_plan. */
bool coll_index_estimate(coll_t *c, const filter_t *f, size_t *n);

struct coll_sset;

/* Call fn with the slot set of each value of the first is_tenant keyword
 * index (COLL_INDEX_TENANT), if any.  Caller holds lock (either mode). */
int coll_index_each_tenant(const coll_t *c, int (*fn)(void *ctx, const struct coll_sset *slots),
                           void *ctx);

/* Call fn with the slot set of every value of every usable keyword and
 * integer index (the groups the vector index links, see coll_vindex.c);
 * stops at and returns fn's first error.  Caller holds lock (either
 * mode). */
int coll_index_each_group(const coll_t *c, int (*fn)(void *ctx, const struct coll_sset *slots),
                          void *ctx);

/* If f has a top-level equality condition (filter_must_eq) on a usable
 * keyword or integer index, call fn with the slot set of each of its
 * values that some point holds and return true (every point f matches is
 * in one of those sets); else false.  Caller holds lock (either mode). */
bool coll_index_filter_groups(const coll_t *c, const filter_t *f,
                              void (*fn)(void *ctx, const struct coll_sset *slots), void *ctx);

/* Index kinds beyond coll.h's enum coll_index_kind: geo (coll_index_set)
 * and full-text (coll_index_set_text, which takes the tokenizer params).
 * catalog_index.c includes this header for them. */
enum { COLL_INDEX_GEO = COLL_INDEX_DATETIME + 1, COLL_INDEX_TEXT };

/* Create or replace the full-text index on field (see coll_index_set). */
int coll_index_set_text(coll_t *c, const char *field, const filter_text_params_t *tp,
                        err_t *err);

/* filter_match with the collection's full-text indexes applied: match.text
 * / text_any / phrase on a text-indexed field use token semantics, as in
 * Qdrant.  Every read and filter op of the collection evaluates filters
 * through this.  Caller holds lock (either mode) or is the applier. */
bool coll_filter_match(const coll_t *c, const filter_t *f, const filter_point_t *p);

/* ---- slot sets (coll_index.c), shared with coll_textidx.c ------------ */

/* A set of slots: open addressing of slot + 1 (0 = empty). */
typedef struct coll_sset {
    uint32_t *t;
    uint32_t cap, n;          /* cap: 0 or a power of two */
} coll_sset_t;

int coll_sset_add(coll_sset_t *s, uint32_t slot);   /* ERR_NOMEM */
void coll_sset_del(coll_sset_t *s, uint32_t slot);
bool coll_sset_has(const coll_sset_t *s, uint32_t slot);

/* ---- coll_textidx.c: the inverted index of one text field ------------ */

typedef struct coll_textidx coll_textidx_t;

coll_textidx_t *coll_textidx_new(const filter_text_params_t *tp); /* NULL: no memory */
void coll_textidx_free(coll_textidx_t *x);
void coll_textidx_clear(coll_textidx_t *x);
const filter_text_params_t *coll_textidx_params(const coll_textidx_t *x);

/* Add (remove) slot under every token of string s.  ERR_NOMEM. */
int coll_textidx_add(coll_textidx_t *x, uint32_t slot, const char *s);
void coll_textidx_del(coll_textidx_t *x, uint32_t slot, const char *s);

/* An upper bound of the candidates of condition t (0: none can match;
 * SIZE_MAX: the index cannot give them, scan). */
size_t coll_textidx_estimate(const coll_textidx_t *x, const filter_text_t *t);

/* The candidates of t into out (room for coll_textidx_estimate's count),
 * possibly with duplicates; returns how many. */
size_t coll_textidx_collect(const coll_textidx_t *x, const filter_text_t *t, uint32_t *out);

/* ---- coll_vindex.c: HNSW segments and the optimizer ----------------- */

/* Fill c->vopts from o and allocate c->vx (coll_init). */
int coll_vindex_init(coll_t *c, const coll_opts_t *o, err_t *err);

/* Grow the per-slot arrays from old_cap to new_cap slots (new ones not
 * indexed).  Caller holds lock exclusively or is opening.  ERR_NOMEM. */
int coll_vindex_reserve(coll_t *c, uint32_t old_cap, uint32_t new_cap);

/* Slot s was just (re)allocated: not indexed under any name. */
void coll_vindex_slot_new(coll_t *c, uint32_t s);

/* Slot s's vector k changes or goes away: if indexed, mark its node
 * deleted and make the slot unindexed.  Caller holds lock exclusively. */
void coll_vindex_unmap(coll_t *c, uint32_t k, uint32_t s);

/* Tombstone purge moves slot from -> to (to < from); afterwards
 * coll_vindex_renumbered(c) fixes the segments' node -> slot maps.
 * Caller holds lock exclusively. */
void coll_vindex_move(coll_t *c, uint32_t from, uint32_t to);
void coll_vindex_renumbered(coll_t *c);

/* Load the segment files (after WAL replay) and start the optimizer.
 * Unreadable segments are logged and renamed *.corrupt; never fails for
 * them.  ERR_NOMEM / ERR_IO (creating the directory, starting the thread). */
int coll_vindex_open(coll_t *c, err_t *err);

/* Stop and join the optimizer (first thing coll_close does); idempotent. */
void coll_vindex_stop(coll_t *c);

/* Free segments and mappings (coll_close, after coll_vindex_stop). */
void coll_vindex_free(coll_t *c);

/* full_scan_threshold of vector k in vectors, and the default search ef
 * (Qdrant: the collection's ef_construct). */
uint64_t coll_vindex_full_scan_vectors(const coll_t *c, uint32_t k);
size_t coll_vindex_default_ef(const coll_t *c);

/* Fill the index fields of info.  Caller holds lock shared. */
void coll_vindex_info(coll_t *c, coll_info_t *info);

/* Wake the optimizer after a write. */
void coll_vindex_kick(coll_t *c);

/* True if vector k of slot s is served by a segment.  Caller holds lock. */
static inline bool coll_vindex_indexed(const coll_t *c, uint32_t k, uint32_t s)
{
    return c->vx[k].seg_of_slot[s] != 0;
}

/* Keep slot s in or out of vector k's appendable part (coll_vidx_t.tail)
 * after its vector or liveness changed.  Caller holds lock exclusively. */
void coll_vindex_track(coll_t *c, uint32_t k, uint32_t s);

/* The appendable part of vector k as an open-addressing table of slot + 1
 * (0 = empty) of *cap entries, or NULL when not kept (look at every
 * slot).  Borrowed while the caller holds the lock (either mode). */
const uint32_t *coll_vindex_tail(const coll_t *c, uint32_t k, uint32_t *cap);

/* Number of segments of vector k.  Caller holds lock. */
static inline size_t coll_vindex_segments(const coll_t *c, uint32_t k)
{
    return c->vx[k].n_segs;
}

/* Search every segment of vector k for the kk best accepted nodes
 * (valid, live, vector present, matching f) with candidate list ef, and
 * call hit(ctx, slot) for each; the caller scores them itself.  Caller
 * holds lock shared.  ERR_NOMEM. */
int coll_vindex_search(coll_t *c, uint32_t k, const float *q, size_t kk, size_t ef,
                       const filter_t *f, void (*hit)(void *ctx, uint32_t slot), void *ctx,
                       err_t *err);

/* ---- coll_payload.c --------------------------------------------------- */

/* Merge src's keys into dst (an object); with key, merge into the object
 * at that dotted path, creating it.  ERR_NOMEM / ERR_INVALID. */
int coll_payload_merge(cJSON *dst, const cJSON *src, const char *key, err_t *err);

/* Remove the value(s) at a key path ("a.b", "a[].b", "a[1]") from obj. */
void coll_payload_delete_path(cJSON *obj, const char *path);

/* Validate a key path for set/delete payload. */
int coll_payload_path_check(const char *path, err_t *err);

/* New JSON of the payload as the selector asks (object), or JSON null for
 * COLL_PAYLOAD_NONE.  NULL on allocation failure. */
cJSON *coll_payload_select(const cJSON *payload, const coll_sel_t *sel);

#endif
