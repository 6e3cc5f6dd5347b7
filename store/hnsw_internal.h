/*
 * hnsw_internal.h - what hnsw.c (graph, search) and hnsw_io.c (file
 * format) share.  Not for other modules: see hnsw.h.  The layout and the
 * locking protocol are explained in hnsw.c's header comment.
 */
#ifndef VECLOG_HNSW_INTERNAL_H
#define VECLOG_HNSW_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "hnsw.h"

#define HNSW_CHUNK_SHIFT 10
#define HNSW_CHUNK ((size_t)1 << HNSW_CHUNK_SHIFT)
#define HNSW_CHUNK_MASK (HNSW_CHUNK - 1)
#define HNSW_MAX_LEVEL 31
#define HNSW_NONE UINT32_MAX
#define HNSW_MAX_NODES ((size_t)UINT32_MAX) /* ids 0 .. 2^32-2; UINT32_MAX is "none" */

/* Word 0 of a node's layer-0 block: the node's seqlock (odd while a
 * writer holds it); word 1: layer-0 link count; then m0 ids. */
#define HNSW_L0_SEQ 0
#define HNSW_L0_COUNT 1
#define HNSW_L0_IDS 2

/* HNSW_CHUNK consecutive ids.  vecs, l0 and levels are owned by the
 * chunk unless the index is mapped (then they point into the file);
 * upper and deleted are always owned. */
typedef struct hnsw_chunk {
    float *vecs;              /* HNSW_CHUNK rows of h->stride floats, 32-byte aligned */
    _Atomic uint32_t *l0;     /* HNSW_CHUNK blocks of h->l0_words words */
    uint8_t *levels;          /* top layer of each node */
    _Atomic uint32_t **upper; /* per node: layers 1..level, (m+1) words each
                               * (count, then m ids); NULL at level 0 */
    _Atomic uint64_t *deleted; /* HNSW_CHUNK / 64 words */
    uint32_t **glinks;        /* NULL until a group of the chunk is linked
                               * (hnsw_group_link); then per node NULL or
                               * count, then that many layer-0 group ids */
} hnsw_chunk_t;

/* Chunk directory.  Grown by copying into a bigger one; the old ones stay
 * on the `prev` list until hnsw_free because searches may still hold them. */
typedef struct hnsw_dir {
    struct hnsw_dir *prev;
    size_t cap;
    hnsw_chunk_t chunks[];
} hnsw_dir_t;

typedef struct hnsw_scratch hnsw_scratch_t;

struct hnsw {
    uint32_t dim;
    uint32_t stride;   /* floats per stored row: dim rounded up to 8 (32 bytes) */
    enum dist_metric metric;
    uint32_t m, m0, ef_construct;
    uint32_t l0_words; /* 2 + m0 */
    uint64_t seed;
    double ml;         /* 1 / ln(m): level scale */
    bool sealed;       /* opened with use_mmap: no adds */
    void *map;         /* the mapped file, or NULL */
    size_t map_len;

    _Atomic(hnsw_dir_t *) dir;
    _Atomic size_t nchunks;  /* chunks allocated; count <= nchunks * HNSW_CHUNK */
    _Atomic size_t count;    /* ids handed out */
    _Atomic size_t ndeleted;
    _Atomic uint64_t entry;  /* entry point id << 32 | max level; HNSW_NONE id when empty */
    _Atomic size_t upper_bytes;

    pthread_mutex_t grow_mu;  /* chunk allocation */
    pthread_mutex_t entry_mu; /* changes of the entry point / max level */
    pthread_mutex_t pool_mu;  /* the scratch pool */
    hnsw_scratch_t *pool;
    size_t pool_bytes;        /* guarded by pool_mu */

    /* Group links (hnsw_group_link; hnsw_group.c).  Written only while
     * nothing else runs on the index, read-only afterwards. */
    uint32_t *gentry;         /* one entry node per linked group */
    size_t n_gentry, gentry_cap;
    size_t glink_ids;         /* ids in all glinks lists */
    size_t glink_bytes;       /* heap bytes of the lists and arrays */
};

static inline const hnsw_chunk_t *hnsw_chunk_of(const hnsw_dir_t *d, uint32_t id)
{
    return &d->chunks[id >> HNSW_CHUNK_SHIFT];
}

static inline const float *hnsw_node_vec(const hnsw_t *h, const hnsw_dir_t *d, uint32_t id)
{
    return hnsw_chunk_of(d, id)->vecs + (size_t)(id & HNSW_CHUNK_MASK) * h->stride;
}

static inline _Atomic uint32_t *hnsw_node_l0(const hnsw_t *h, const hnsw_dir_t *d, uint32_t id)
{
    return hnsw_chunk_of(d, id)->l0 + (size_t)(id & HNSW_CHUNK_MASK) * h->l0_words;
}

static inline unsigned hnsw_node_level(const hnsw_dir_t *d, uint32_t id)
{
    return hnsw_chunk_of(d, id)->levels[id & HNSW_CHUNK_MASK];
}

/* The link list (count word, then ids) of id at layer lv. */
static inline _Atomic uint32_t *hnsw_node_links(const hnsw_t *h, const hnsw_dir_t *d, uint32_t id,
                                                unsigned lv)
{
    if (lv == 0)
        return hnsw_node_l0(h, d, id) + HNSW_L0_COUNT;
    return hnsw_chunk_of(d, id)->upper[id & HNSW_CHUNK_MASK] + (size_t)(lv - 1) * (h->m + 1);
}

/* id's group-link list (count, then ids), or NULL. */
static inline const uint32_t *hnsw_node_glinks(const hnsw_dir_t *d, uint32_t id)
{
    const hnsw_chunk_t *c = hnsw_chunk_of(d, id);
    return c->glinks != NULL ? c->glinks[id & HNSW_CHUNK_MASK] : NULL;
}

/* Allocate the struct with its parameters checked and no nodes.  The
 * caller owns the result (hnsw_free). */
int hnsw_alloc(uint32_t dim, enum dist_metric metric, uint32_t m, uint32_t ef_construct,
               uint64_t seed, hnsw_t **out, err_t *err);

/* Make room for ids below `nodes`: allocate chunks (all parts when
 * own_data, else only upper and deleted, the caller pointing vecs, l0 and
 * levels into a mapped file) and publish them.  Takes grow_mu. */
int hnsw_chunks_ensure(hnsw_t *h, size_t nodes, bool own_data, err_t *err);

/* Copy the layer-lv links of id into buf (room for m0 ids), consistent
 * under the node's seqlock; returns the count. */
uint32_t hnsw_links_copy(const hnsw_t *h, const hnsw_dir_t *d, uint32_t id, unsigned lv,
                         uint32_t *buf);

/* Words of id's upper block: level * (m + 1). */
static inline size_t hnsw_upper_words(const hnsw_t *h, unsigned level)
{
    return (size_t)level * (h->m + 1);
}

#endif
