/*
 * hnsw.h - veclog's HNSW (hierarchical navigable small world) index.
 *
 * A standalone approximate k-NN index over float32 vectors of one
 * dimension and one metric.  Nodes get dense ids 0..n-1 in insertion
 * order; the caller keeps the map from its own point ids to these.  The
 * index stores a copy of every vector (32-byte aligned rows) and scores
 * with the store/dist.h kernels, so scores are exactly what dist_score
 * reports (Euclid as sqrt of the squared L2 distance).
 *
 * Vectors handed to hnsw_add, hnsw_build and hnsw_search must already be
 * prepared with dist_prepare (normalised for Cosine); the index never
 * modifies them.
 *
 * Concurrency summary: hnsw_add, hnsw_build, hnsw_search, hnsw_delete
 * and the counters may all run concurrently from any threads.  hnsw_save
 * may run concurrently with searches and deletes, but not with adds.
 * hnsw_free must not race with anything.  Details in hnsw.c.
 *
 * Deletes only mark: deleted nodes stay in the graph as hops and are
 * never returned, so recall holds; rebuild the index to reclaim space.
 *
 * Filters: hnsw_search takes an accept callback.  Rejected nodes are
 * traversed but not returned.  The search explores about as far as an
 * unfiltered one, but never stops before it holds k accepted nodes (or
 * has run out of candidates), so a filter that accepts very few nodes
 * degrades to visiting most of the graph: slow, not wrong.  Callers
 * should use exact search for very selective filters (below roughly 1%
 * of the points); veclog's planner does.
 *
 * Group links (Qdrant's payload_m): hnsw_group_link adds, after the build,
 * extra layer-0 links among the nodes of one group (the points holding
 * one value of an indexed payload field, e.g. one tenant), so a filtered
 * search that keeps only that group walks a connected subgraph instead of
 * stalling among rejected nodes.  Searches follow them with no change in
 * the call.  An index created with m == 0 has no main links at all, only
 * group links (Qdrant's per-tenant indexing, `m: 0` with `payload_m`):
 * its filtered searches start from the entries of the groups the filter
 * accepts, so they are complete only for filters that keep whole groups
 * (one or several values of the linked field); unfiltered searches, and
 * filters accepting no group entry, are answered by an exact scan.
 * hnsw_search_seeded lets a caller who knows better give the starting
 * nodes.  Details in hnsw_group.c.
 */
#ifndef VECLOG_HNSW_H
#define VECLOG_HNSW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "err.h"

typedef struct hnsw hnsw_t;

/* Accept callback for hnsw_search: true keeps id as a possible result.
 * Called from the searching thread only, possibly many times per id. */
typedef bool (*hnsw_accept_fn)(void *ctx, uint32_t id);

/* Largest supported dimension and per-layer link count. */
#define HNSW_MAX_DIM 65536
#define HNSW_MAX_M 256

/* Create an empty index.  dim: 1..HNSW_MAX_DIM; m: links per node on the
 * upper layers (2..HNSW_MAX_M; layer 0 keeps 2*m), 16 is a good default;
 * m == 0 builds no graph (nodes are only stored; see hnsw_group_link);
 * ef_construct: candidate list size while inserting (>= m and >= 1, 100
 * is a good default); seed: fixes the layer of every id (a node's layer is a hash
 * of seed and id), so a single-threaded build is reproducible;
 * capacity: expected number of nodes (0 is fine; the index grows).
 * On success *out owns the index: free it with hnsw_free.
 * Thread-safe (touches no shared state). */
int hnsw_create(uint32_t dim, enum dist_metric metric, uint32_t m, uint32_t ef_construct,
                uint64_t seed, size_t capacity, hnsw_t **out, err_t *err);

/* Free the index and everything it owns (and unmap its file).  NULL is a
 * no-op.  Must not run concurrently with any other call on h. */
void hnsw_free(hnsw_t *h);

/* Insert one vector of hnsw_dim(h) floats (copied; vec is only borrowed
 * for the call).  On success *id_out (if non-NULL) is its new id.
 * Thread-safe: any number of adds may run concurrently with each other,
 * with searches and with deletes.  Errors: ERR_INVALID on an index opened
 * with use_mmap (sealed), ERR_FULL past 2^32-1 nodes, ERR_NOMEM. */
int hnsw_add(hnsw_t *h, const float *vec, uint32_t *id_out, err_t *err);

/* Insert n rows (row-major, n * hnsw_dim(h) floats, borrowed for the
 * call) using `threads` threads (<= 1: the calling thread only).  Row i
 * gets id hnsw_count(h) + i, counted when the call starts (the ids are
 * reserved in one block, so concurrent hnsw_add calls from other threads
 * take ids before or after the block).  Thread-safe like hnsw_add.  On an
 * error, rows not yet inserted keep their reserved ids as unlinked,
 * unreachable nodes; treat the index as unusable. */
int hnsw_build(hnsw_t *h, const float *vecs, size_t n, int threads, err_t *err);

/* The k nearest accepted, non-deleted nodes to q (hnsw_dim(h) floats,
 * prepared; borrowed).  ef: candidate list size (raised to k if smaller);
 * higher is slower and more accurate.  accept (NULL: everything) is
 * called with ctx to filter.  Writes up to k ids and scores (either array
 * may be NULL; both caller-owned, room for k) best first, and the number
 * written to *n_out (fewer than k when fewer nodes qualify or were
 * reached).  Scores as dist_score reports them.  Thread-safe, also
 * concurrently with hnsw_add (a search sees at least every node whose add
 * returned before the search started). */
int hnsw_search(const hnsw_t *h, const float *q, size_t k, size_t ef, hnsw_accept_fn accept,
                void *ctx, uint32_t *ids_out, float *scores_out, size_t *n_out, err_t *err);

/* hnsw_search, but the layer-0 beam search starts from the n_seeds nodes
 * seeds[] (borrowed; ids >= the count are ignored) instead of descending
 * from the entry point.  seeds == NULL: exactly hnsw_search.  Meant for
 * m == 0 indexes, where the caller knows one node of each group the
 * filter can accept (coll_vindex.c: one per value of an equality
 * condition); no usable seed on an m == 0 index: an exact scan.
 * Thread-safe like hnsw_search. */
int hnsw_search_seeded(const hnsw_t *h, const float *q, size_t k, size_t ef,
                       hnsw_accept_fn accept, void *ctx, const uint32_t *seeds, size_t n_seeds,
                       uint32_t *ids_out, float *scores_out, size_t *n_out, err_t *err);

/* Link the n nodes ids[] (one group: say the points of one tenant) among
 * themselves at layer 0: each gets up to 2 * payload_m group links, found
 * by a temporary HNSW with m = payload_m and ef_construct (raised to
 * payload_m) over the group's vectors, and the group's entry is recorded
 * for m == 0 searches.  payload_m: 2..HNSW_MAX_M; ids < hnsw_count(h)
 * (duplicates within one call are not allowed); a node may be in several
 * groups (calls), its group links then add up.  n == 1 only records the
 * entry.  Cost: a build of an n-node graph, single-threaded.
 * NOT thread-safe: nothing else may run on h meanwhile (call it after
 * hnsw_build, before publishing or saving the index); afterwards the
 * links are read-only and searches, deletes and adds run as usual (nodes
 * added later belong to no group).  ERR_INVALID on a sealed index or bad
 * arguments, ERR_NOMEM (the index then holds the links made so far and
 * stays valid). */
int hnsw_group_link(hnsw_t *h, const uint32_t *ids, size_t n, size_t payload_m,
                    size_t ef_construct, err_t *err);

/* Number of groups linked so far (hnsw_group_link calls with n > 0,
 * saved and reopened with the index).  Thread-safe after the linking. */
size_t hnsw_group_entries(const hnsw_t *h);

/* Mark id deleted: it stays a hop of the graph but is never returned.
 * Deleting twice is a no-op.  ERR_NOT_FOUND if id >= hnsw_count(h).
 * Thread-safe (atomic bitmap), also on an index opened with use_mmap (the
 * bitmap is always in RAM). */
int hnsw_delete(hnsw_t *h, uint32_t id, err_t *err);

/* true if id is marked deleted (false for ids out of range). Thread-safe. */
bool hnsw_is_deleted(const hnsw_t *h, uint32_t id);

/* Number of ids assigned (deleted ones included; ids are 0..count-1),
 * and number of those deleted.  Thread-safe; a snapshot. */
size_t hnsw_count(const hnsw_t *h);
size_t hnsw_deleted_count(const hnsw_t *h);

uint32_t hnsw_dim(const hnsw_t *h);

/* The stored copy of node id's vector (hnsw_dim(h) floats, as given to
 * hnsw_add / hnsw_build), or NULL if id >= hnsw_count(h).  Read-only;
 * valid until hnsw_free.  Thread-safe for ids whose add has returned. */
const float *hnsw_vector(const hnsw_t *h, uint32_t id);
enum dist_metric hnsw_metric(const hnsw_t *h);

/* The m the index was created with (0: group links only). */
uint32_t hnsw_m(const hnsw_t *h);

/* Bytes held by the index: vectors, links, bookkeeping, search scratch,
 * plus the mapped file of an index opened with use_mmap.  Thread-safe;
 * approximate while adds run. */
size_t hnsw_memory_bytes(const hnsw_t *h);

/* Write the index to path atomically (path.tmp, fsync, rename, fsync of
 * the directory), recording wal_seq, the caller's log position the index
 * reflects.  The format is described in hnsw_io.c.  May run concurrently
 * with searches and deletes (a delete racing with the save may or may not
 * be in the file), NOT with adds.  path is borrowed. */
int hnsw_save(const hnsw_t *h, const char *path, uint64_t wal_seq, err_t *err);

/* Open an index written by hnsw_save.  use_mmap: map the file read-only
 * and serve vectors and links from the page cache (fast open, memory
 * shared with the page cache); the index is then sealed: hnsw_add and
 * hnsw_build return ERR_INVALID, hnsw_delete still works (on a copy of
 * the bitmap in RAM).  Otherwise everything is read into RAM and the
 * index accepts adds.  Either way every checksum and every link is
 * verified first (the whole file is read once); any mismatch, truncation
 * or out-of-range value gives ERR_CORRUPT naming what failed.  The graph
 * is never rebuilt.  On success *out is owned by the caller (hnsw_free)
 * and *wal_seq_out (if non-NULL) is the saved wal_seq.  Thread-safe. */
int hnsw_open(const char *path, bool use_mmap, hnsw_t **out, uint64_t *wal_seq_out, err_t *err);

#endif
