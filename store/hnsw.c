/*
 * hnsw.c - the HNSW graph: insertion, search, deletes (see hnsw.h; the
 * file format is in hnsw_io.c).
 *
 * ALGORITHM
 * Malkov & Yashunin's HNSW.  A node's top layer is floor(-ln(u) * mL)
 * with mL = 1/ln(M), u drawn from a hash of (seed, id) rather than a
 * shared generator, so threads need no shared RNG state and a
 * single-threaded build is reproducible.  Layers >= 1 keep up to M links
 * per node, layer 0 up to M0 = 2*M.  An insert descends greedily to the
 * node's top layer, then on each layer runs a beam search with
 * ef_construct and keeps M neighbours chosen by the paper's heuristic
 * (a candidate is kept only if it is closer to the new node than to every
 * neighbour already kept), which keeps links spread across clusters.
 * Each chosen neighbour gets a back link; when its list is full the list
 * plus the new node is pruned with the same heuristic.
 *
 * Internally every metric is a distance, lower is better: -dot for Cosine
 * and Dot, squared L2 for Euclid, L1 for Manhattan.  Scores are converted
 * to dist_score's convention only when results are returned.
 *
 * LAYOUT
 * Nodes live in chunks of HNSW_CHUNK (1024) consecutive ids.  A chunk
 * holds the vectors (contiguous rows of `stride` floats, dim rounded up to
 * 8 so that every row is 32-byte aligned for the AVX2 kernels, padding
 * zero), the layer-0 blocks (seqlock word, count, M0 ids: fixed size, so
 * no pointer chasing on layer 0 where searches spend nearly all their
 * time), the level bytes, a pointer per node to its upper-layer lists
 * (allocated only for the ~1/M of nodes above layer 0), and the deleted
 * bitmap.  Chunks are reached through a directory (an array of chunk
 * descriptors).  Why chunks: the index grows while searches run, and a
 * realloc of one big array would move memory under readers; chunks never
 * move.  A grown directory is a copy; the old one is kept until hnsw_free
 * because a search may still be reading it (they are tiny).
 *
 * LOCKING
 * - Ids are reserved with a CAS on `count` that only succeeds when the
 *   chunks cover the new ids (allocating them under grow_mu first), so
 *   any id below a loaded `count` is covered by the directory loaded
 *   after it.
 * - Each node's link lists (all layers) are guarded by one 32-bit word,
 *   used as a spinlock by writers and as a seqlock by readers: a writer
 *   CASes it from even to odd, writes, and stores the next even value;
 *   a reader copies the list with relaxed loads and retries if the word
 *   was odd or changed.  So searches take no lock at all and never see a
 *   torn list, and the lock costs 4 bytes per node.  The seqlock also
 *   publishes new nodes: an id appears in a list only after its vector
 *   was written, and the unlock (release) / read (acquire) pair makes the
 *   vector visible to whoever reads the id.
 * - The entry point and the top layer are one atomic word (read without a
 *   lock); inserts change them under entry_mu.  As in hnswlib, an insert
 *   whose level tops the current maximum holds entry_mu for its whole
 *   insertion, so that inserts never descend from a half-linked top.
 * - A search loads the entry point, then `count`, then the directory, so
 *   each covers what the one before can name; ids >= that `count` (nodes
 *   added since) are skipped, which bounds the visited set.  An insert
 *   does the same, and links its layers bottom-up (connect_layers), so a
 *   node is never reachable on an upper layer before it has layer-0
 *   links.
 *
 * FILTERS AND DELETES
 * Deletes are an atomic bitmap.  Deleted nodes are still traversed (they
 * keep the graph connected, so recall does not collapse) but never enter
 * the result set; the same holds for nodes the caller's accept callback
 * rejects.  Unfiltered, the beam search stops, as in the paper, when the
 * closest candidate is farther than the worst of the ef best.  Filtered
 * (a callback, or anything deleted), three heaps: the ef best accepted
 * (the results), the k best accepted (`near`) and the ef best visited,
 * accepted or not (`beam`).  The exploration radius is the larger of the
 * k-th accepted and the ef-th visited distance, and is infinite until k
 * nodes were accepted.  Why: bounding by the ef-th *accepted* node (what
 * hnswlib does) makes a 10% filter cost ~10x an unfiltered search, since
 * the radius must then hold ~10*ef nodes; bounding by the beam alone
 * (faiss) is fast but loses the k-th result under selective filters
 * (recall 0.2 at 1%).  The k-th-accepted radius guarantees the answer's
 * neighbourhood was covered, so recall stays >= 0.95 at 1-50%
 * selectivity at about the unfiltered cost, and a filter matching almost
 * nothing degrades to visiting the whole reachable graph (until k are
 * found) rather than returning too few.
 *
 * GROUP LINKS AND m == 0
 * hnsw_group_link (hnsw_group.c) gives nodes extra layer-0 links inside
 * value groups; layer_run follows a node's group list right after its
 * layer-0 list, so filtered searches need no other change.  An m == 0
 * index has no main links: its searches start at layer 0 from seeds (the
 * caller's, or the group entries the filter accepts) and follow group
 * links only; with no seed at all they scan exactly (search_seeds).
 *
 * SCRATCH
 * A search needs a visited set and up to four heaps.  They come from a pool of
 * scratch objects (mutex-guarded free list), reused across searches and
 * threads.  The visited set is a uint16 epoch tag per node: a new search
 * bumps the epoch instead of clearing the array (cleared once every
 * 65535 searches).
 */
#include "hnsw_internal.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct pair {
    float d;
    uint32_t id;
} pair_t;

struct hnsw_scratch {
    hnsw_scratch_t *next;
    uint16_t *tags;
    size_t tags_cap;
    uint16_t epoch;
    pair_t *cand; /* min-heap on d: candidates to expand */
    size_t ncand, cand_cap;
    pair_t *res;  /* min-heap on -d: the ef best accepted so far, worst on top */
    size_t nres, res_cap;
    pair_t *beam; /* filtered searches: the ef best visited, accepted or not */
    size_t nbeam, beam_cap;
    pair_t *near; /* filtered searches: the `need` best accepted */
    size_t nnear, near_cap;
    pair_t *sel;  /* sorted results */
    size_t sel_cap;
    pair_t *tmp;  /* m0 + 1: pruning a neighbour's list */
    pair_t *plan; /* an insert's chosen neighbours, m per layer */
    size_t plan_cap;
    uint32_t *nbuf; /* m0 (at least 1): a copied link list */
};

/* A search's filter.  NULL (inserts) or inactive (no callback, nothing
 * deleted): plain HNSW. */
typedef struct filt {
    hnsw_accept_fn accept;
    void *ctx;
    bool active;
    size_t need; /* k: keep exploring until this many are accepted */
} filt_t;

/* ---- heaps (min-heaps on d; the result heap stores -d) ---------------- */

static void heap_up(pair_t *a, size_t i)
{
    pair_t x = a[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!(x.d < a[p].d))
            break;
        a[i] = a[p];
        i = p;
    }
    a[i] = x;
}

static void heap_pop(pair_t *a, size_t *n)
{
    size_t len = --*n, i = 0;
    if (len == 0)
        return;
    pair_t x = a[len];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= len)
            break;
        if (c + 1 < len && a[c + 1].d < a[c].d)
            c++;
        if (!(a[c].d < x.d))
            break;
        a[i] = a[c];
        i = c;
    }
    a[i] = x;
}

static int grow_pairs(pair_t **a, size_t *cap, size_t need)
{
    if (need <= *cap)
        return ERR_OK;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    pair_t *p = realloc(*a, nc * sizeof(*p));
    if (p == NULL)
        return ERR_NOMEM;
    *a = p;
    *cap = nc;
    return ERR_OK;
}

static int heap_push(pair_t **a, size_t *n, size_t *cap, float d, uint32_t id)
{
    if (*n == *cap && grow_pairs(a, cap, *n + 1) != ERR_OK)
        return ERR_NOMEM;
    (*a)[*n].d = d;
    (*a)[*n].id = id;
    heap_up(*a, (*n)++);
    return ERR_OK;
}

/* ---- scratch pool ----------------------------------------------------- */

static void scratch_free(hnsw_scratch_t *s)
{
    if (s == NULL)
        return;
    free(s->tags);
    free(s->cand);
    free(s->res);
    free(s->beam);
    free(s->near);
    free(s->sel);
    free(s->tmp);
    free(s->plan);
    free(s->nbuf);
    free(s);
}

static hnsw_scratch_t *scratch_get(hnsw_t *h)
{
    pthread_mutex_lock(&h->pool_mu);
    hnsw_scratch_t *s = h->pool;
    if (s != NULL)
        h->pool = s->next;
    pthread_mutex_unlock(&h->pool_mu);
    if (s != NULL)
        return s;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t nb = h->m0 ? h->m0 : 1; /* m == 0: no main links, still valid buffers */
    s->tmp = malloc((h->m0 + 1) * sizeof(*s->tmp));
    s->nbuf = malloc(nb * sizeof(*s->nbuf));
    if (s->tmp == NULL || s->nbuf == NULL) {
        scratch_free(s);
        return NULL;
    }
    pthread_mutex_lock(&h->pool_mu);
    h->pool_bytes += sizeof(*s) + (h->m0 + 1) * sizeof(pair_t) + nb * 4;
    pthread_mutex_unlock(&h->pool_mu);
    return s;
}

static void scratch_put(hnsw_t *h, hnsw_scratch_t *s)
{
    pthread_mutex_lock(&h->pool_mu);
    s->next = h->pool;
    h->pool = s;
    pthread_mutex_unlock(&h->pool_mu);
}

/* Make the visited set cover ids below n and start a new epoch. */
static int scratch_begin(hnsw_t *h, hnsw_scratch_t *s, size_t n)
{
    if (n > s->tags_cap) {
        size_t nc = n + n / 2 + 64;
        uint16_t *t = realloc(s->tags, nc * sizeof(*t));
        if (t == NULL)
            return ERR_NOMEM;
        memset(t + s->tags_cap, 0, (nc - s->tags_cap) * sizeof(*t));
        pthread_mutex_lock(&h->pool_mu);
        h->pool_bytes += (nc - s->tags_cap) * sizeof(*t);
        pthread_mutex_unlock(&h->pool_mu);
        s->tags = t;
        s->tags_cap = nc;
    }
    if (++s->epoch == 0) {
        memset(s->tags, 0, s->tags_cap * sizeof(*s->tags));
        s->epoch = 1;
    }
    s->ncand = 0;
    s->nres = 0;
    s->nbeam = 0;
    s->nnear = 0;
    return ERR_OK;
}

/* ---- creation, growth, destruction ------------------------------------ */

int hnsw_alloc(uint32_t dim, enum dist_metric metric, uint32_t m, uint32_t ef_construct,
               uint64_t seed, hnsw_t **out, err_t *err)
{
    if (out == NULL)
        return err_set(err, ERR_INVALID, "hnsw: out is NULL");
    *out = NULL;
    if (dim == 0 || dim > HNSW_MAX_DIM)
        return err_set(err, ERR_INVALID, "hnsw: dim %u out of range 1..%d", dim, HNSW_MAX_DIM);
    if ((unsigned)metric >= DIST_METRIC_COUNT)
        return err_set(err, ERR_INVALID, "hnsw: invalid metric %d", (int)metric);
    /* m == 0: no main graph, only group links (Qdrant's m: 0 with payload_m) */
    if (m == 1 || m > HNSW_MAX_M)
        return err_set(err, ERR_INVALID, "hnsw: m %u not 0 or in 2..%d", m, HNSW_MAX_M);
    if (ef_construct < m || ef_construct == 0 || ef_construct > 65536)
        return err_set(err, ERR_INVALID, "hnsw: ef_construct %u out of range %u..65536",
                       ef_construct, m ? m : 1);
    hnsw_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return err_set(err, ERR_NOMEM, "hnsw: out of memory");
    h->dim = dim;
    h->stride = (dim + 7) & ~7u;
    h->metric = metric;
    h->m = m;
    h->m0 = 2 * m;
    h->ef_construct = ef_construct;
    h->l0_words = 2 + h->m0;
    h->seed = seed;
    h->ml = m ? 1.0 / log((double)m) : 0.0; /* m == 0: every node on layer 0 */
    atomic_init(&h->entry, (uint64_t)HNSW_NONE << 32);
    pthread_mutex_init(&h->grow_mu, NULL);
    pthread_mutex_init(&h->entry_mu, NULL);
    pthread_mutex_init(&h->pool_mu, NULL);
    *out = h;
    return ERR_OK;
}

static int chunk_alloc(const hnsw_t *h, hnsw_chunk_t *c, bool own_data)
{
    memset(c, 0, sizeof(*c));
    c->upper = calloc(HNSW_CHUNK, sizeof(*c->upper));
    c->deleted = calloc(HNSW_CHUNK / 64, sizeof(*c->deleted));
    if (c->upper == NULL || c->deleted == NULL)
        return ERR_NOMEM;
    if (!own_data)
        return ERR_OK;
    size_t vbytes = HNSW_CHUNK * h->stride * sizeof(float);
    c->vecs = aligned_alloc(64, vbytes);
    c->l0 = calloc(HNSW_CHUNK * h->l0_words, sizeof(*c->l0));
    c->levels = calloc(HNSW_CHUNK, 1);
    if (c->vecs == NULL || c->l0 == NULL || c->levels == NULL)
        return ERR_NOMEM;
    /* zero padding, so that saved files are a function of the vectors */
    memset(c->vecs, 0, vbytes);
    return ERR_OK;
}

static void chunk_release(const hnsw_t *h, hnsw_chunk_t *c)
{
    if (c->upper != NULL && h->map == NULL) {
        for (size_t i = 0; i < HNSW_CHUNK; i++)
            free((void *)c->upper[i]);
    }
    free(c->upper);
    if (c->glinks != NULL && h->map == NULL) {
        for (size_t i = 0; i < HNSW_CHUNK; i++)
            free(c->glinks[i]);
    }
    free(c->glinks);
    free(c->deleted);
    if (h->map == NULL) {
        free(c->vecs);
        free((void *)c->l0);
        free(c->levels);
    }
}

static hnsw_dir_t *dir_grow(hnsw_t *h, hnsw_dir_t *old, size_t have, size_t need)
{
    size_t cap = old ? old->cap * 2 : 4;
    if (cap < need)
        cap = need;
    hnsw_dir_t *d = calloc(1, sizeof(*d) + cap * sizeof(d->chunks[0]));
    if (d == NULL)
        return NULL;
    d->cap = cap;
    d->prev = old;
    if (have > 0)
        memcpy(d->chunks, old->chunks, have * sizeof(d->chunks[0]));
    atomic_store_explicit(&h->dir, d, memory_order_release);
    return d;
}

int hnsw_chunks_ensure(hnsw_t *h, size_t nodes, bool own_data, err_t *err)
{
    int rc = ERR_OK;
    size_t need = (nodes + HNSW_CHUNK - 1) >> HNSW_CHUNK_SHIFT;

    pthread_mutex_lock(&h->grow_mu);
    size_t have = atomic_load_explicit(&h->nchunks, memory_order_relaxed);
    hnsw_dir_t *d = atomic_load_explicit(&h->dir, memory_order_relaxed);
    if (need > have && (d == NULL || need > d->cap) && (d = dir_grow(h, d, have, need)) == NULL) {
        rc = err_set(err, ERR_NOMEM, "hnsw: out of memory growing to %zu nodes", nodes);
        goto out;
    }
    for (; have < need; have++) {
        if (chunk_alloc(h, &d->chunks[have], own_data) != ERR_OK) {
            chunk_release(h, &d->chunks[have]);
            memset(&d->chunks[have], 0, sizeof(d->chunks[have]));
            rc = err_set(err, ERR_NOMEM, "hnsw: out of memory growing to %zu nodes", nodes);
            break;
        }
        atomic_store_explicit(&h->nchunks, have + 1, memory_order_release);
    }
out:
    pthread_mutex_unlock(&h->grow_mu);
    return rc;
}

int hnsw_create(uint32_t dim, enum dist_metric metric, uint32_t m, uint32_t ef_construct,
                uint64_t seed, size_t capacity, hnsw_t **out, err_t *err)
{
    hnsw_t *h = NULL;
    int rc = hnsw_alloc(dim, metric, m, ef_construct, seed, &h, err);
    if (rc != ERR_OK)
        return rc;
    if (capacity > HNSW_MAX_NODES)
        capacity = HNSW_MAX_NODES;
    rc = hnsw_chunks_ensure(h, capacity ? capacity : 1, true, err);
    if (rc != ERR_OK) {
        hnsw_free(h);
        return rc;
    }
    *out = h;
    return ERR_OK;
}

void hnsw_free(hnsw_t *h)
{
    if (h == NULL)
        return;
    hnsw_dir_t *d = atomic_load(&h->dir);
    size_t nch = atomic_load(&h->nchunks);
    for (size_t c = 0; d != NULL && c < nch; c++)
        chunk_release(h, &d->chunks[c]);
    while (d != NULL) {
        hnsw_dir_t *p = d->prev;
        free(d);
        d = p;
    }
    while (h->pool != NULL) {
        hnsw_scratch_t *s = h->pool;
        h->pool = s->next;
        scratch_free(s);
    }
    if (h->map != NULL)
        munmap(h->map, h->map_len);
    pthread_mutex_destroy(&h->grow_mu);
    pthread_mutex_destroy(&h->entry_mu);
    pthread_mutex_destroy(&h->pool_mu);
    free(h->gentry);
    free(h);
}

/* ---- scoring and levels ----------------------------------------------- */

static inline float node_dist(const hnsw_t *h, const float *a, const float *b)
{
    switch (h->metric) {
    case DIST_EUCLID:
        return dist_l2sq(a, b, h->dim);
    case DIST_MANHATTAN:
        return dist_l1(a, b, h->dim);
    default:
        return -dist_dot(a, b, h->dim);
    }
}

static float to_score(const hnsw_t *h, float d)
{
    switch (h->metric) {
    case DIST_EUCLID:
        return sqrtf(d);
    case DIST_MANHATTAN:
        return d;
    default:
        return -d;
    }
}

static unsigned node_level_for(const hnsw_t *h, uint32_t id)
{
    /* splitmix64 at position id of the stream seeded by h->seed */
    uint64_t z = h->seed + ((uint64_t)id + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    double u = ((double)(z >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double l = -log(u) * h->ml;
    return l >= HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : (unsigned)l;
}

/* ---- per-node seqlock ------------------------------------------------- */

static void cpu_relax(unsigned *spins)
{
    if (++*spins % 64 == 0)
        sched_yield();
#if defined(__x86_64__) || defined(__i386__)
    else
        __builtin_ia32_pause();
#endif
}

static void node_lock(const hnsw_t *h, const hnsw_dir_t *d, uint32_t id)
{
    _Atomic uint32_t *seq = hnsw_node_l0(h, d, id) + HNSW_L0_SEQ;
    unsigned spins = 0;
    for (;;) {
        uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);
        if ((s & 1) == 0 && atomic_compare_exchange_weak_explicit(
                                seq, &s, s + 1, memory_order_acquire, memory_order_relaxed))
            break;
        cpu_relax(&spins);
    }
    /* orders the odd value before the list stores that follow (seqlock) */
    atomic_thread_fence(memory_order_release);
}

static void node_unlock(const hnsw_t *h, const hnsw_dir_t *d, uint32_t id)
{
    _Atomic uint32_t *seq = hnsw_node_l0(h, d, id) + HNSW_L0_SEQ;
    uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);
    atomic_store_explicit(seq, s + 1, memory_order_release);
}

uint32_t hnsw_links_copy(const hnsw_t *h, const hnsw_dir_t *d, uint32_t id, unsigned lv,
                         uint32_t *buf)
{
    _Atomic uint32_t *seq = hnsw_node_l0(h, d, id) + HNSW_L0_SEQ;
    _Atomic uint32_t *ll = hnsw_node_links(h, d, id, lv);
    uint32_t cap = lv == 0 ? h->m0 : h->m;
    unsigned spins = 0;
    for (;;) {
        uint32_t s1 = atomic_load_explicit(seq, memory_order_acquire);
        if (s1 & 1) {
            cpu_relax(&spins);
            continue;
        }
        uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
        if (n > cap)
            n = cap;
        for (uint32_t i = 0; i < n; i++)
            buf[i] = atomic_load_explicit(&ll[1 + i], memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(seq, memory_order_relaxed) == s1)
            return n;
    }
}

/* Replace the list of a node whose lock the caller holds. */
static void links_store(_Atomic uint32_t *ll, const pair_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&ll[1 + i], p[i].id, memory_order_relaxed);
    atomic_store_explicit(&ll[0], (uint32_t)n, memory_order_relaxed);
}

static inline bool bit_deleted(const hnsw_dir_t *d, uint32_t id)
{
    const hnsw_chunk_t *c = hnsw_chunk_of(d, id);
    uint32_t i = id & HNSW_CHUNK_MASK;
    return (atomic_load_explicit(&c->deleted[i >> 6], memory_order_relaxed) >> (i & 63)) & 1;
}

/* ---- search ----------------------------------------------------------- */

/* Greedy walk on layers top..1: move to the closest neighbour while that
 * improves.  Ids >= lim (added after the caller loaded d) are skipped.
 * Returns the final node and its distance in *cur_d. */
static uint32_t descend(const hnsw_t *h, const hnsw_dir_t *d, hnsw_scratch_t *s, const float *q,
                        uint32_t cur, unsigned top, unsigned bottom, size_t lim, float *cur_d)
{
    float best = node_dist(h, q, hnsw_node_vec(h, d, cur));
    for (unsigned lv = top; lv > bottom; lv--) {
        bool changed = true;
        while (changed) {
            changed = false;
            uint32_t n = hnsw_links_copy(h, d, cur, lv, s->nbuf);
            for (uint32_t i = 0; i < n; i++) {
                if (s->nbuf[i] >= lim)
                    continue;
                float dd = node_dist(h, q, hnsw_node_vec(h, d, s->nbuf[i]));
                if (dd < best) {
                    best = dd;
                    cur = s->nbuf[i];
                    changed = true;
                }
            }
        }
    }
    *cur_d = best;
    return cur;
}

static bool accepted(const hnsw_dir_t *d, const filt_t *f, uint32_t id)
{
    if (f == NULL || !f->active)
        return true;
    if (bit_deleted(d, id))
        return false;
    return f->accept == NULL || f->accept(f->ctx, id);
}

/* Offer a node at distance dd to the heaps and update the exploration
 * bound (see FILTERS AND DELETES in the header comment). */
static int offer(hnsw_scratch_t *s, const hnsw_dir_t *d, const filt_t *f, size_t ef, float dd,
                 uint32_t id, float *bound)
{
    bool filtered = f != NULL && f->active;
    if (heap_push(&s->cand, &s->ncand, &s->cand_cap, dd, id) != ERR_OK)
        return ERR_NOMEM;
    if (filtered) {
        if (heap_push(&s->beam, &s->nbeam, &s->beam_cap, -dd, id) != ERR_OK)
            return ERR_NOMEM;
        if (s->nbeam > ef)
            heap_pop(s->beam, &s->nbeam);
    }
    if (accepted(d, f, id)) {
        if (heap_push(&s->res, &s->nres, &s->res_cap, -dd, id) != ERR_OK)
            return ERR_NOMEM;
        if (s->nres > ef)
            heap_pop(s->res, &s->nres);
        if (filtered) {
            if (heap_push(&s->near, &s->nnear, &s->near_cap, -dd, id) != ERR_OK)
                return ERR_NOMEM;
            if (s->nnear > f->need)
                heap_pop(s->near, &s->nnear);
        }
    }
    if (!filtered) {
        *bound = s->nres >= ef ? -s->res[0].d : INFINITY;
    } else if (s->nnear >= f->need && s->nbeam >= ef) {
        float a = -s->near[0].d, b = -s->beam[0].d;
        *bound = a > b ? a : b;
    } else {
        *bound = INFINITY;
    }
    return ERR_OK;
}

/* Visit the n ids of list nb (neighbours of an expanded node): offer
 * the unvisited ones closer than *bound.  Ids >= lim are ignored. */
static int visit_list(const hnsw_t *h, const hnsw_dir_t *d, hnsw_scratch_t *s, const float *q,
                      const uint32_t *nb, uint32_t n, size_t ef, const filt_t *f, size_t lim,
                      float *bound)
{
    const uint16_t epoch = s->epoch;
    uint16_t *tags = s->tags;

    for (uint32_t i = 0; i < n; i++)
        __builtin_prefetch(&tags[nb[i] < lim ? nb[i] : 0]);
    if (n > 0 && nb[0] < lim)
        __builtin_prefetch(hnsw_node_vec(h, d, nb[0]));
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id = nb[i];
        if (i + 1 < n && nb[i + 1] < lim) {
            const char *pv = (const char *)hnsw_node_vec(h, d, nb[i + 1]);
            __builtin_prefetch(pv);
            __builtin_prefetch(pv + 64);
        }
        if (id >= lim || tags[id] == epoch)
            continue;
        tags[id] = epoch;
        float dd = node_dist(h, q, hnsw_node_vec(h, d, id));
        if (dd < *bound && offer(s, d, f, ef, dd, id, bound) != ERR_OK)
            return ERR_NOMEM;
    }
    return ERR_OK;
}

/* Expand the candidates of s (already seeded; bound as the seeding left
 * it) on layer lv until the closest is beyond the bound.  On layer 0 a
 * node's group links (hnsw_group_link) are followed with its links. */
static int layer_run(const hnsw_t *h, const hnsw_dir_t *d, hnsw_scratch_t *s, const float *q,
                     unsigned lv, size_t ef, const filt_t *f, size_t lim, float bound)
{
    while (s->ncand > 0) {
        pair_t c = s->cand[0];
        if (c.d > bound)
            break;
        heap_pop(s->cand, &s->ncand);
        uint32_t n = hnsw_links_copy(h, d, c.id, lv, s->nbuf);
        if (visit_list(h, d, s, q, s->nbuf, n, ef, f, lim, &bound) != ERR_OK)
            return ERR_NOMEM;
        const uint32_t *g = lv == 0 ? hnsw_node_glinks(d, c.id) : NULL;
        if (g != NULL && visit_list(h, d, s, q, g + 1, g[0], ef, f, lim, &bound) != ERR_OK)
            return ERR_NOMEM;
    }
    return ERR_OK;
}

/* Beam search of layer lv from ep (distance ep_d) with width ef.  Nodes
 * failing f are expanded but not kept; ids >= lim are ignored.  The ef
 * best kept nodes end in s->res.  Caller ran scratch_begin(lim). */
static int layer_search(const hnsw_t *h, const hnsw_dir_t *d, hnsw_scratch_t *s, const float *q,
                        uint32_t ep, float ep_d, unsigned lv, size_t ef, const filt_t *f,
                        size_t lim)
{
    float bound = INFINITY;

    s->tags[ep] = s->epoch;
    if (offer(s, d, f, ef, ep_d, ep, &bound) != ERR_OK)
        return ERR_NOMEM;
    return layer_run(h, d, s, q, lv, ef, f, lim, bound);
}

/* Move s->res into s->sel sorted by distance, closest first. */
static int results_sorted(hnsw_scratch_t *s, size_t *n_out)
{
    size_t n = s->nres;
    if (grow_pairs(&s->sel, &s->sel_cap, n) != ERR_OK)
        return ERR_NOMEM;
    for (size_t i = n; i > 0; i--) {
        s->sel[i - 1].d = -s->res[0].d;
        s->sel[i - 1].id = s->res[0].id;
        heap_pop(s->res, &s->nres);
    }
    *n_out = n;
    return ERR_OK;
}

/* Exact answer: every id below lim that f accepts, the ef best kept. */
static int scan_exact(const hnsw_t *h, const hnsw_dir_t *d, hnsw_scratch_t *s, const float *q,
                      size_t ef, const filt_t *f, size_t lim)
{
    for (size_t id = 0; id < lim; id++) {
        if (!accepted(d, f, (uint32_t)id))
            continue;
        float dd = node_dist(h, q, hnsw_node_vec(h, d, (uint32_t)id));
        if (s->nres >= ef && !(dd < -s->res[0].d))
            continue;
        if (heap_push(&s->res, &s->nres, &s->res_cap, -dd, (uint32_t)id) != ERR_OK)
            return ERR_NOMEM;
        if (s->nres > ef)
            heap_pop(s->res, &s->nres);
    }
    return ERR_OK;
}

/* Layer-0 search from explicit seeds (hnsw_search_seeded), or, on an
 * m == 0 index without seeds, from the group entries the filter accepts
 * (hnsw_search).  m == 0 has no graph over all nodes, so without a filter,
 * or with no seed at all, the answer is an exact scan (Qdrant also scans
 * then): slow but right. */
static int search_seeds(const hnsw_t *h, const hnsw_dir_t *d, hnsw_scratch_t *s, const float *q,
                        size_t ef, const filt_t *f, size_t lim, const uint32_t *seeds,
                        size_t n_seeds)
{
    float bound = INFINITY;
    size_t used = 0;
    bool entries = seeds == NULL;

    if (scratch_begin((hnsw_t *)h, s, lim) != ERR_OK)
        return ERR_NOMEM;
    if (entries) {
        seeds = h->gentry;
        n_seeds = f->accept != NULL ? h->n_gentry : 0;
    }
    for (size_t i = 0; i < n_seeds; i++) {
        uint32_t id = seeds[i];
        if (id >= lim || s->tags[id] == s->epoch || (entries && !accepted(d, f, id)))
            continue;
        s->tags[id] = s->epoch;
        used++;
        if (offer(s, d, f, ef, node_dist(h, q, hnsw_node_vec(h, d, id)), id, &bound) != ERR_OK)
            return ERR_NOMEM;
    }
    if (used == 0)
        return scan_exact(h, d, s, q, ef, f, lim);
    return layer_run(h, d, s, q, 0, ef, f, lim, bound);
}

/* seeds: NULL for the normal descent from the entry point (m > 0), else
 * search_seeds. */
static int search_run(const hnsw_t *h, hnsw_scratch_t *s, const float *q, size_t ef,
                      const filt_t *f, const uint32_t *seeds, size_t n_seeds, size_t *nsel)
{
    /* entry, then count, then directory: each covers what the one before
     * can name (see LOCKING) */
    uint64_t e = atomic_load_explicit(&h->entry, memory_order_acquire);
    uint32_t ep = (uint32_t)(e >> 32);
    *nsel = 0;
    if (ep == HNSW_NONE)
        return ERR_OK;
    size_t lim = atomic_load_explicit(&h->count, memory_order_acquire);
    const hnsw_dir_t *d = atomic_load_explicit(&h->dir, memory_order_acquire);
    if (h->m == 0 || seeds != NULL) {
        if (search_seeds(h, d, s, q, ef, f, lim, seeds, n_seeds) != ERR_OK)
            return ERR_NOMEM;
        return results_sorted(s, nsel);
    }
    float ep_d;
    ep = descend(h, d, s, q, ep, (unsigned)(e & 0xff), 0, lim, &ep_d);
    if (scratch_begin((hnsw_t *)h, s, lim) != ERR_OK)
        return ERR_NOMEM;
    if (layer_search(h, d, s, q, ep, ep_d, 0, ef, f, lim) != ERR_OK)
        return ERR_NOMEM;
    return results_sorted(s, nsel);
}

int hnsw_search(const hnsw_t *h, const float *q, size_t k, size_t ef, hnsw_accept_fn accept,
                void *ctx, uint32_t *ids_out, float *scores_out, size_t *n_out, err_t *err)
{
    return hnsw_search_seeded(h, q, k, ef, accept, ctx, NULL, 0, ids_out, scores_out, n_out, err);
}

int hnsw_search_seeded(const hnsw_t *h, const float *q, size_t k, size_t ef,
                       hnsw_accept_fn accept, void *ctx, const uint32_t *seeds, size_t n_seeds,
                       uint32_t *ids_out, float *scores_out, size_t *n_out, err_t *err)
{
    size_t nsel = 0;
    int rc = ERR_OK;
    hnsw_t *hm = (hnsw_t *)h; /* the scratch pool is internal mutable state */
    hnsw_scratch_t *s = NULL;

    if (n_out != NULL)
        *n_out = 0;
    if (h == NULL || q == NULL || n_out == NULL)
        return err_set(err, ERR_INVALID, "hnsw_search: NULL argument");
    if (k == 0)
        return ERR_OK;
    if (ef < k)
        ef = k;
    if ((s = scratch_get(hm)) == NULL)
        return err_set(err, ERR_NOMEM, "hnsw_search: out of memory");
    filt_t f = { accept, ctx, accept != NULL || atomic_load(&h->ndeleted) > 0, k };
    if (search_run(h, s, q, ef, &f, seeds, n_seeds, &nsel) != ERR_OK) {
        rc = err_set(err, ERR_NOMEM, "hnsw_search: out of memory");
        goto out;
    }
    if (nsel > k)
        nsel = k;
    for (size_t i = 0; i < nsel; i++) {
        if (ids_out != NULL)
            ids_out[i] = s->sel[i].id;
        if (scores_out != NULL)
            scores_out[i] = to_score(h, s->sel[i].d);
    }
    *n_out = nsel;
out:
    scratch_put(hm, s);
    return rc;
}

/* ---- insertion -------------------------------------------------------- */

/* The paper's heuristic, in place on p[0..n) sorted closest first by
 * distance to the base node: keep a candidate only if it is closer to the
 * base than to every candidate already kept.  Returns how many are kept
 * (at most mmax). */
static size_t select_heuristic(const hnsw_t *h, const hnsw_dir_t *d, pair_t *p, size_t n,
                               size_t mmax)
{
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < mmax; i++) {
        const float *v = hnsw_node_vec(h, d, p[i].id);
        bool good = true;
        for (size_t j = 0; j < kept; j++) {
            if (node_dist(h, v, hnsw_node_vec(h, d, p[j].id)) < p[i].d) {
                good = false;
                break;
            }
        }
        if (good)
            p[kept++] = p[i];
    }
    return kept;
}

static int pair_cmp(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* Add a link nb -> id at layer lv (dist: their distance), pruning nb's
 * list with the heuristic when full. */
static void link_back(const hnsw_t *h, hnsw_scratch_t *s, uint32_t nb, uint32_t id, float dist,
                      unsigned lv)
{
    uint32_t cap = lv == 0 ? h->m0 : h->m;
    /* nb's list may name ids newer than the caller's directory; loaded
     * after taking nb's lock, the directory covers all of them */
    const hnsw_dir_t *d = atomic_load_explicit(&h->dir, memory_order_acquire);
    node_lock(h, d, nb);
    d = atomic_load_explicit(&h->dir, memory_order_acquire);
    _Atomic uint32_t *ll = hnsw_node_links(h, d, nb, lv);
    uint32_t n = atomic_load_explicit(&ll[0], memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        if (atomic_load_explicit(&ll[1 + i], memory_order_relaxed) == id)
            goto out;
    }
    if (n < cap) {
        atomic_store_explicit(&ll[1 + n], id, memory_order_relaxed);
        atomic_store_explicit(&ll[0], n + 1, memory_order_relaxed);
        goto out;
    }
    const float *bv = hnsw_node_vec(h, d, nb);
    for (uint32_t i = 0; i < n; i++) {
        s->tmp[i].id = atomic_load_explicit(&ll[1 + i], memory_order_relaxed);
        s->tmp[i].d = node_dist(h, bv, hnsw_node_vec(h, d, s->tmp[i].id));
    }
    s->tmp[n].id = id;
    s->tmp[n].d = dist;
    qsort(s->tmp, n + 1, sizeof(*s->tmp), pair_cmp);
    links_store(ll, s->tmp, select_heuristic(h, d, s->tmp, n + 1, cap));
out:
    node_unlock(h, d, nb);
}

/* Connect id on layers from..0, starting from ep; ids >= lim (newer than
 * d) are ignored.  All layers are planned first (top-down searches, no
 * writes) and linked bottom-up: a node becomes reachable on an upper
 * layer only once its layer-0 links exist, so a search descending through
 * it never lands on a node with an empty layer-0 list. */
static int connect_layers(const hnsw_t *h, const hnsw_dir_t *d, hnsw_scratch_t *s, uint32_t id,
                          const float *v, uint32_t ep, float ep_d, unsigned from, size_t lim)
{
    size_t nplan[HNSW_MAX_LEVEL + 1] = { 0 };
    if (grow_pairs(&s->plan, &s->plan_cap, (size_t)(from + 1) * h->m) != ERR_OK)
        return ERR_NOMEM;
    for (unsigned lv = from + 1; lv-- > 0;) {
        size_t n = 0, w = 0;
        if (scratch_begin((hnsw_t *)h, s, lim) != ERR_OK)
            return ERR_NOMEM;
        s->tags[id] = s->epoch; /* never link to itself */
        if (layer_search(h, d, s, v, ep, ep_d, lv, h->ef_construct, NULL, lim) != ERR_OK ||
            results_sorted(s, &n) != ERR_OK)
            return ERR_NOMEM;
        for (size_t i = 0; i < n; i++) {
            if (s->sel[i].id != id)
                s->sel[w++] = s->sel[i];
        }
        if (w == 0)
            continue;
        ep = s->sel[0].id;
        ep_d = s->sel[0].d;
        nplan[lv] = select_heuristic(h, d, s->sel, w, h->m);
        memcpy(s->plan + (size_t)lv * h->m, s->sel, nplan[lv] * sizeof(*s->sel));
    }
    for (unsigned lv = 0; lv <= from; lv++) {
        const pair_t *p = s->plan + (size_t)lv * h->m;
        node_lock(h, d, id);
        links_store(hnsw_node_links(h, d, id, lv), p, nplan[lv]);
        node_unlock(h, d, id);
        for (size_t i = 0; i < nplan[lv]; i++)
            link_back(h, s, p[i].id, id, p[i].d, lv);
    }
    return ERR_OK;
}

/* Write node id (reserved) and link it into the graph. */
static int insert_node(hnsw_t *h, hnsw_scratch_t *s, uint32_t id, const float *vec)
{
    /* the reservation of id happened before: this directory covers it */
    const hnsw_dir_t *d = atomic_load_explicit(&h->dir, memory_order_acquire);
    const hnsw_chunk_t *c = hnsw_chunk_of(d, id);
    uint32_t slot = id & HNSW_CHUNK_MASK;
    unsigned level = node_level_for(h, id);
    int rc = ERR_OK;

    memcpy(c->vecs + (size_t)slot * h->stride, vec, h->dim * sizeof(float));
    if (level > 0) {
        size_t words = hnsw_upper_words(h, level);
        c->upper[slot] = calloc(words, sizeof(uint32_t));
        if (c->upper[slot] == NULL)
            return ERR_NOMEM;
        atomic_fetch_add_explicit(&h->upper_bytes, words * 4, memory_order_relaxed);
    }
    c->levels[slot] = (uint8_t)level;

    pthread_mutex_lock(&h->entry_mu);
    uint64_t e = atomic_load_explicit(&h->entry, memory_order_relaxed);
    uint32_t ep = (uint32_t)(e >> 32);
    unsigned top = (unsigned)(e & 0xff);
    if (ep == HNSW_NONE) {
        atomic_store_explicit(&h->entry, (uint64_t)id << 32 | level, memory_order_release);
        pthread_mutex_unlock(&h->entry_mu);
        return ERR_OK;
    }
    bool hold = level > top;
    if (!hold)
        pthread_mutex_unlock(&h->entry_mu);
    if (h->m == 0)
        return ERR_OK; /* no main links: hnsw_group_link adds the only ones */
    size_t lim = atomic_load_explicit(&h->count, memory_order_acquire);
    d = atomic_load_explicit(&h->dir, memory_order_acquire);
    const float *v = hnsw_node_vec(h, d, id);
    float ep_d;
    ep = descend(h, d, s, v, ep, top, level, lim, &ep_d);
    rc = connect_layers(h, d, s, id, v, ep, ep_d, level < top ? level : top, lim);
    if (hold) {
        if (rc == ERR_OK)
            atomic_store_explicit(&h->entry, (uint64_t)id << 32 | level, memory_order_release);
        pthread_mutex_unlock(&h->entry_mu);
    }
    return rc;
}

/* Reserve k consecutive ids, allocating chunks first so that any id below
 * a published count is covered by the directory. */
static int reserve_ids(hnsw_t *h, size_t k, uint32_t *first, err_t *err)
{
    for (;;) {
        size_t n = atomic_load_explicit(&h->count, memory_order_relaxed);
        if (k > HNSW_MAX_NODES - n)
            return err_set(err, ERR_FULL, "hnsw: index full (%zu nodes)", n);
        size_t have = atomic_load_explicit(&h->nchunks, memory_order_acquire) * HNSW_CHUNK;
        if (n + k > have) {
            int rc = hnsw_chunks_ensure(h, n + k, true, err);
            if (rc != ERR_OK)
                return rc;
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&h->count, &n, n + k, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            *first = (uint32_t)n;
            return ERR_OK;
        }
    }
}

int hnsw_add(hnsw_t *h, const float *vec, uint32_t *id_out, err_t *err)
{
    uint32_t id = 0;
    int rc;
    hnsw_scratch_t *s = NULL;

    if (h == NULL || vec == NULL)
        return err_set(err, ERR_INVALID, "hnsw_add: NULL argument");
    if (h->sealed)
        return err_set(err, ERR_INVALID, "hnsw_add: index is sealed (opened with mmap)");
    if ((rc = reserve_ids(h, 1, &id, err)) != ERR_OK)
        return rc;
    if ((s = scratch_get(h)) == NULL)
        return err_set(err, ERR_NOMEM, "hnsw_add: out of memory");
    rc = insert_node(h, s, id, vec);
    scratch_put(h, s);
    if (rc != ERR_OK)
        return err_set(err, rc, "hnsw_add: out of memory inserting node %u", id);
    if (id_out != NULL)
        *id_out = id;
    return ERR_OK;
}

typedef struct build_job {
    hnsw_t *h;
    const float *vecs;
    size_t n;
    uint32_t first;
    _Atomic size_t next;
    _Atomic int rc;
} build_job_t;

#define BUILD_BATCH 16

static void *build_worker(void *arg)
{
    build_job_t *j = arg;
    hnsw_scratch_t *s = scratch_get(j->h);
    if (s == NULL) {
        atomic_store(&j->rc, ERR_NOMEM);
        return NULL;
    }
    while (atomic_load_explicit(&j->rc, memory_order_relaxed) == ERR_OK) {
        size_t i = atomic_fetch_add(&j->next, BUILD_BATCH);
        if (i >= j->n)
            break;
        size_t end = i + BUILD_BATCH < j->n ? i + BUILD_BATCH : j->n;
        for (; i < end; i++) {
            int rc = insert_node(j->h, s, j->first + (uint32_t)i, j->vecs + i * j->h->dim);
            if (rc != ERR_OK) {
                atomic_store(&j->rc, rc);
                break;
            }
        }
    }
    scratch_put(j->h, s);
    return NULL;
}

int hnsw_build(hnsw_t *h, const float *vecs, size_t n, int threads, err_t *err)
{
    build_job_t j = { .h = h, .vecs = vecs, .n = n };
    pthread_t tids[64];
    int started = 0, rc;

    if (h == NULL || (vecs == NULL && n > 0))
        return err_set(err, ERR_INVALID, "hnsw_build: NULL argument");
    if (h->sealed)
        return err_set(err, ERR_INVALID, "hnsw_build: index is sealed (opened with mmap)");
    if (n == 0)
        return ERR_OK;
    if ((rc = reserve_ids(h, n, &j.first, err)) != ERR_OK)
        return rc;
    atomic_init(&j.next, 0);
    atomic_init(&j.rc, ERR_OK);
    if (threads > 64)
        threads = 64;
    /* a failed pthread_create just means fewer helpers */
    for (int t = 1; t < threads; t++) {
        if (pthread_create(&tids[started], NULL, build_worker, &j) == 0)
            started++;
    }
    build_worker(&j);
    for (int t = 0; t < started; t++)
        pthread_join(tids[t], NULL);
    rc = atomic_load(&j.rc);
    if (rc != ERR_OK)
        return err_set(err, rc, "hnsw_build: out of memory");
    return ERR_OK;
}

/* ---- deletes and counters --------------------------------------------- */

int hnsw_delete(hnsw_t *h, uint32_t id, err_t *err)
{
    if (h == NULL)
        return err_set(err, ERR_INVALID, "hnsw_delete: NULL index");
    if (id >= atomic_load_explicit(&h->count, memory_order_acquire))
        return err_set(err, ERR_NOT_FOUND, "hnsw_delete: no node %u", id);
    const hnsw_dir_t *d = atomic_load_explicit(&h->dir, memory_order_acquire);
    const hnsw_chunk_t *c = hnsw_chunk_of(d, id);
    uint32_t i = id & HNSW_CHUNK_MASK;
    uint64_t bit = (uint64_t)1 << (i & 63);
    if ((atomic_fetch_or(&c->deleted[i >> 6], bit) & bit) == 0)
        atomic_fetch_add(&h->ndeleted, 1);
    return ERR_OK;
}

bool hnsw_is_deleted(const hnsw_t *h, uint32_t id)
{
    if (h == NULL || id >= atomic_load_explicit(&h->count, memory_order_acquire))
        return false;
    return bit_deleted(atomic_load_explicit(&h->dir, memory_order_acquire), id);
}

size_t hnsw_count(const hnsw_t *h)
{
    return h ? atomic_load(&h->count) : 0;
}

size_t hnsw_deleted_count(const hnsw_t *h)
{
    return h ? atomic_load(&h->ndeleted) : 0;
}

uint32_t hnsw_dim(const hnsw_t *h)
{
    return h ? h->dim : 0;
}

const float *hnsw_vector(const hnsw_t *h, uint32_t id)
{
    if (h == NULL || id >= atomic_load(&h->count))
        return NULL;
    return hnsw_node_vec(h, atomic_load(&h->dir), id);
}

uint32_t hnsw_m(const hnsw_t *h)
{
    return h ? h->m : 0;
}

enum dist_metric hnsw_metric(const hnsw_t *h)
{
    return h ? h->metric : DIST_COSINE;
}

size_t hnsw_memory_bytes(const hnsw_t *h)
{
    if (h == NULL)
        return 0;
    hnsw_t *hm = (hnsw_t *)h;
    size_t nch = atomic_load(&h->nchunks);
    size_t per = HNSW_CHUNK * sizeof(void *) + HNSW_CHUNK / 8;
    if (h->map == NULL)
        per += HNSW_CHUNK * (h->stride * sizeof(float) + h->l0_words * 4 + 1);
    size_t bytes = sizeof(*h) + nch * per + atomic_load(&h->upper_bytes) + h->map_len +
                   h->glink_bytes;
    pthread_mutex_lock(&hm->pool_mu);
    bytes += h->pool_bytes;
    pthread_mutex_unlock(&hm->pool_mu);
    for (const hnsw_dir_t *d = atomic_load(&h->dir); d != NULL; d = d->prev)
        bytes += sizeof(*d) + d->cap * sizeof(d->chunks[0]);
    return bytes;
}
