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
    bool failed;
    char failed_msg[256];
    pthread_mutex_t ckpt_mu;

    /* Payload indexes (coll_index.c): changed under lock exclusively,
     * built with apply_mu held. */
    struct coll_index **idx;
    size_t n_idx;
    uint64_t st_index_reads, st_index_cands, st_index_range; /* atomic counters */
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
