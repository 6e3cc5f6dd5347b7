/*
 * coll.h - one collection: its WAL, its RocksDB store, and the in-memory
 * image that searches read.
 *
 * A collection is opened from its directory (see coll.c for the layout of
 * files, RocksDB keys and the recovery procedure).  Mutations arrive as ops
 * (op.h): coll_write validates, logs (WAL, group commit), then applies in
 * WAL order.  Reads run concurrently with writes under a reader lock and
 * see each op entirely or not at all.
 *
 * Threads: every function here is thread-safe unless it says otherwise.
 * coll_close must not race with any other call on the same collection; the
 * catalog's reference counts guarantee that.
 */
#ifndef VECLOG_COLL_H
#define VECLOG_COLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "filter.h"
#include "op.h"
#include "ptid.h"
#include "wal.h"

#define COLL_VECTOR_NAME_MAX 255
#define COLL_MAX_VECTORS 64
#define COLL_MAX_DIM 65536

typedef struct coll coll_t;

typedef struct coll_vector_def {
    char *name;          /* "" for the single unnamed vector; owned by whoever built the array */
    uint32_t dim;
    int metric;          /* enum dist_metric */
    bool on_disk;
} coll_vector_def_t;

typedef struct coll_opts {
    const coll_vector_def_t *vectors;   /* borrowed during coll_open (copied) */
    uint32_t n_vectors;
    wal_opts_t wal;
    /* Flush the store and truncate the WAL when it holds more than this
     * many bytes (0: 64 MiB). */
    uint64_t checkpoint_bytes;
    /* Vector index (HNSW segments built in the background; see
     * coll_vindex.c).  Qdrant's units: thresholds in KB of vectors (kb *
     * 1024 / (dim * 4) vectors).  0 means the default given, except for
     * indexing_threshold_kb where 0 means "never index" (as in Qdrant), so a
     * zeroed coll_opts_t keeps every search exact. */
    uint64_t indexing_threshold_kb;
    uint64_t full_scan_threshold_kb;      /* 0: 10000 */
    uint32_t hnsw_m;                      /* 0: 16, or none if hnsw_payload_m > 0 */
    /* Qdrant's payload_m: extra links inside each value group of keyword
     * and integer payload indexes (0: none).  With hnsw_m 0 the segments
     * have only these per-group graphs (per-tenant indexing). */
    uint32_t hnsw_payload_m;
    uint32_t hnsw_ef_construct;           /* 0: 100 */
    uint32_t max_indexing_threads;        /* 0: 2 */
    bool hnsw_on_disk;                    /* map every segment (also per vector: on_disk) */
    double deleted_threshold;             /* <= 0: 0.2 */
    uint64_t vacuum_min_vector_number;    /* 0: 1000 */
    /* Segments per vector name the optimizer merges down to (every search
     * visits each one); 0: the number of CPUs, at least 2, as Qdrant. */
    uint32_t default_segment_number;
} coll_opts_t;

/* Parse Qdrant's VectorsConfig (`{"size", "distance", "on_disk"}` for one
 * unnamed vector, or a map name -> that object).  On success *defs is a
 * new array (free with coll_vector_defs_free).  ERR_INVALID names the
 * field; sparse or multi vectors, datatype other than float32:
 * ERR_UNSUPPORTED. */
int coll_vector_defs_parse(const cJSON *vectors, coll_vector_def_t **defs, uint32_t *n,
                           err_t *err);
void coll_vector_defs_free(coll_vector_def_t *defs, uint32_t n);

/* Open or create the collection stored in dir: load the store, replay the
 * WAL tail.  *out owned by the caller (coll_close). */
int coll_open(const char *dir, const coll_opts_t *opts, coll_t **out, err_t *err);

/* Checkpoint (flush the store, truncate the WAL) and free. */
void coll_close(coll_t *c);

/* ---- writes ----------------------------------------------------------- */

enum coll_outcome { COLL_SKIPPED = 0, COLL_INSERTED, COLL_UPDATED, COLL_DELETED };

typedef struct coll_write_result {
    uint64_t seq;             /* WAL sequence number of the op */
    uint8_t *outcomes;        /* per op point (enum coll_outcome), NULL for filter ops; owned */
    size_t n_outcomes;
    size_t inserted, updated, deleted, skipped;
} coll_write_result_t;

/* Check op against the collection's schema without logging it: vector
 * names and dimensions, payloads are JSON objects, filters parse, names
 * and key paths are sane.  ERR_INVALID with a message naming the point
 * and field. */
int coll_op_validate(coll_t *c, const op_t *op, err_t *err);

/* Validate, log and apply op.  Cosine vectors in op are normalised in
 * place.  On ERR_OK the op is durable per the WAL sync mode and applied;
 * res (may be NULL) gets per-point outcomes (free with
 * coll_write_result_clear).  Errors before logging leave no trace;
 * ERR_FULL and ERR_BUSY are retriable. */
int coll_write(coll_t *c, op_t *op, coll_write_result_t *res, err_t *err);
void coll_write_result_clear(coll_write_result_t *res);

/* Last applied source offset for (topic, partition), or -1 if none. */
int64_t coll_source_offset(coll_t *c, const char *topic, int32_t partition);

/* The value an applied op stored under META key (op.h), as a new
 * NUL-terminated string (*val; caller frees).  ERR_NOT_FOUND when no op
 * stored one; ERR_IO.  It reflects exactly the applied ops: the value and
 * the data of its op are durable together.  Any thread. */
int coll_meta_get(coll_t *c, const char *key, char **val, err_t *err);

/* Re-apply every WAL record with seq >= from_seq through the normal apply
 * path (versions make this a no-op for what is already applied).  For
 * recovery tools and tests. */
int coll_wal_replay(coll_t *c, uint64_t from_seq, err_t *err);

/* Flush the store and truncate the WAL up to what the store holds. */
int coll_checkpoint(coll_t *c, err_t *err);

/* Forget tombstones whose version is <= upto_seq (after which an
 * insert_only write of those ids is accepted again).  Returns how many. */
int coll_tombstones_purge(coll_t *c, uint64_t upto_seq, size_t *purged, err_t *err);

/* ---- payload indexes -------------------------------------------------- */

/* Kinds of in-memory index (Qdrant schema types).  keyword, integer, bool
 * and uuid keep an equality index (a uuid index holds strings, as
 * match.value compares them).  float and datetime keep an ordered index
 * for range conditions (every number, resp. every string that parses as a
 * datetime, ordered by value, resp. instant); so does integer when
 * COLL_INDEX_RANGE is or'ed into the kind (Qdrant's integer "range"
 * param); such an ordered index holds every number, as range compares
 * them, not only integers. */
enum coll_index_kind { COLL_INDEX_KEYWORD = 1, COLL_INDEX_INTEGER, COLL_INDEX_BOOL,
                       COLL_INDEX_UUID, COLL_INDEX_FLOAT, COLL_INDEX_DATETIME };
#define COLL_INDEX_RANGE 0x100
/* Or'ed into COLL_INDEX_KEYWORD (Qdrant's is_tenant): the optimizer lays
 * out each new segment tenant by tenant, so one tenant's vectors are
 * contiguous in the segment file (and its mmap) and a tenant-filtered
 * search touches few pages. */
#define COLL_INDEX_TENANT 0x200

/* Build (or rebuild, replacing one of another kind) the equality index on
 * a payload key path from the current memory, and keep it up to date from
 * then on.  Filters with {key, match: {value | any}} conditions on that
 * path (filter_must_eq), and {key, range} conditions on a path with an
 * ordered index (filter_must_range), then evaluate only the points the
 * index names (the smallest candidate set among the usable conditions);
 * results are the same as without it.  Not persistent: whoever defines
 * indexes (the catalog) sets them again after every coll_open.  Blocks
 * writes while building; readers are held only for the swap.  field is
 * borrowed.  ERR_INVALID (bad path or kind), ERR_NOMEM. */
int coll_index_set(coll_t *c, const char *field, int kind, err_t *err);

/* Forget the index on field (no-op if there is none).  Waits for the op
 * being applied; readers are held only for the swap.  Thread-safe. */
void coll_index_drop(coll_t *c, const char *field);

/* ---- reads ------------------------------------------------------------ */

enum coll_sel_payload { COLL_PAYLOAD_NONE = 0, COLL_PAYLOAD_ALL, COLL_PAYLOAD_INCLUDE,
                        COLL_PAYLOAD_EXCLUDE };
enum coll_sel_vector { COLL_VECTOR_NONE = 0, COLL_VECTOR_ALL, COLL_VECTOR_LIST };

/* What to return of each point (Qdrant's with_payload / with_vector). */
typedef struct coll_sel {
    int payload;              /* enum coll_sel_payload */
    char **keys;              /* include / exclude key paths; owned */
    size_t n_keys;
    int vector;               /* enum coll_sel_vector */
    char **names;             /* vector names for COLL_VECTOR_LIST; owned */
    size_t n_names;
} coll_sel_t;

/* Parse with_payload (bool | [keys] | {"include": k} | {"exclude": k}) and
 * with_vector (bool | [names]); NULL means the default given. */
int coll_sel_parse(const cJSON *with_payload, bool payload_default, const cJSON *with_vector,
                   bool vector_default, coll_sel_t *sel, err_t *err);
void coll_sel_clear(coll_sel_t *sel);

/* Records (Qdrant's Record: id, payload, vector) of the ids that exist,
 * in the order asked.  *out is a new JSON array owned by the caller. */
int coll_retrieve(coll_t *c, const ptid_t *ids, size_t n, const coll_sel_t *sel, cJSON **out,
                  err_t *err);

typedef struct coll_scroll_req {
    const filter_t *filter;   /* NULL: all */
    size_t limit;
    bool has_offset;
    ptid_t offset;            /* first id to return (inclusive) */
    const coll_sel_t *sel;
    const char *order_by;     /* payload key, or NULL for id order */
    bool order_desc;
    bool has_start_from;
    double start_from;
    bool as_scored;           /* ScoredPoint shape (version, score 0) for query without a query */
} coll_scroll_req_t;

/* One page.  *points: JSON array of Records; *next: the next page's offset
 * id, or JSON null (always null with order_by, as Qdrant does). */
int coll_scroll(coll_t *c, const coll_scroll_req_t *req, cJSON **points, cJSON **next,
                err_t *err);

#define COLL_DIGEST_MAX_BUCKETS 65536

/* A digest of the live point ids for comparing two collections without
 * listing ids: every id hashes into one of `buckets` ranges, and
 * sums[b] / counts[b] are the (wrapping) sum of a mix of the id hashes and
 * the count in range b.  Equal id sets give equal arrays; a range that
 * differs narrows where they differ.  O(points) under the read lock; no
 * allocation.  ERR_INVALID for buckets outside 1..COLL_DIGEST_MAX_BUCKETS. */
int coll_id_digest(coll_t *c, uint32_t buckets, uint64_t *sums, uint64_t *counts, err_t *err);

/* Exact number of live points matching filter (NULL: all). */
int coll_count(coll_t *c, const filter_t *filter, size_t *count, err_t *err);

typedef struct coll_search_req {
    const char *using;        /* vector name; NULL or "" for the unnamed one */
    const float *vector;      /* query; copied and prepared (normalised for Cosine) */
    uint32_t dim;
    const filter_t *filter;
    size_t limit;
    size_t offset;
    bool has_threshold;
    float score_threshold;
    const coll_sel_t *sel;
    /* When set, score only these points (rescoring prefetch candidates);
     * ids that do not exist or lack the vector are skipped. */
    const ptid_t *only_ids;
    size_t n_only_ids;
    /* Qdrant's search params: exact forces a full scan; hnsw_ef is the
     * graph's candidate list size (0: the collection's ef_construct). */
    bool exact;
    size_t hnsw_ef;
} coll_search_req_t;

/* k-NN: through the HNSW segments plus an exact scan of the vectors not
 * yet indexed (coll_vindex.c), or an exact scan (req->exact, only_ids, no
 * segments, or a filter the planner finds selective enough).  *out: JSON array of ScoredPoint (id, version, score,
 * payload, vector), best first. */
int coll_search(coll_t *c, const coll_search_req_t *req, cJSON **out, err_t *err);

/* ScoredPoints for the given ids and scores, in the given order (fusion
 * results); ids that no longer exist are skipped.  *out: JSON array. */
int coll_points_scored(coll_t *c, const ptid_t *ids, const float *scores, size_t n,
                       const coll_sel_t *sel, cJSON **out, err_t *err);

/* The stored vector of a point (for recommend / query by id): copies up to
 * cap floats into buf, returns the dimension in *dim.  ERR_NOT_FOUND if the
 * point or the vector is missing. */
int coll_vector_get(coll_t *c, const ptid_t *id, const char *name, float *buf, uint32_t cap,
                    uint32_t *dim, err_t *err);

typedef struct coll_info {
    uint64_t points;          /* live points */
    uint64_t tombstones;
    uint64_t applied_seq;
    uint64_t vectors;         /* stored vectors over all names */
    wal_stats_t wal;
    bool failed;              /* a write failed after logging: restart needed */
    uint32_t indexes;         /* payload indexes in use */
    uint64_t index_reads;     /* reads / filter ops whose candidates came from an index */
    uint64_t index_candidates;/* candidate points those examined */
    uint64_t index_range_reads; /* those of index_reads that used a range */
    uint64_t indexed_vectors; /* vectors served by HNSW segments, over all names */
    uint32_t segments;        /* HNSW segments over all names */
    bool optimizing;          /* the optimizer is building a segment */
    uint64_t index_builds;    /* graphs built since coll_open (never at open) */
    uint64_t index_deleted;   /* nodes marked deleted over all segments (vacuum reclaims) */
    uint64_t index_nodes;     /* nodes over all segments, deleted included */
    uint64_t graph_searches;  /* searches answered through the segments */
} coll_info_t;

void coll_info_get(coll_t *c, coll_info_t *info);

/* The collection's vector definitions (borrowed; valid until coll_close). */
const coll_vector_def_t *coll_vectors(coll_t *c, uint32_t *n);

#endif
