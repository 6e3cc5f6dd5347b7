/*
 * op.h - a collection mutation, as logged in the WAL and applied to the
 * store.
 *
 * An op is what one request (or one Kafka message, or one ingest batch for
 * one collection) asks of one collection: upsert points, delete points by
 * id or filter, change payloads, change vectors.  It is validated against
 * the collection's config before it is logged (coll_write), so a logged op
 * always applies; outcomes that depend on the stored state (a point that
 * does not exist, an older version) are per-point "skipped", never errors.
 *
 * WAL PAYLOAD FORMAT (little-endian; versions 1, 2 and 3)
 *
 *   u8  version (1, 2 or 3)   u8 type (enum op_type)
 *   u8  mode (enum op_mode)
 *   u8  flags: 1 source, 2 filter, 4 payload, 8 key,
 *              16 more sources (versions 2 and 3; set in every version 2
 *                 op; requires 1),
 *              32 meta (set exactly in version 3)
 *   [source]  u16 topic length, topic bytes, i32 partition, i64 offset
 *   [more sources] u32 count, then each like [source]
 *   [filter]  u32 length, Qdrant filter JSON text
 *   [payload] u32 length, JSON object text (set/overwrite payload)
 *   [key]     u16 length, key path bytes (set_payload "key")
 *   [meta]    u16 key length, key bytes, u32 value length, value bytes
 *   u32 n_names, then each: u16 length, bytes (delete_payload keys,
 *             delete_vectors names)
 *   u32 n_points, then each point:
 *       u8 id length (9 or 17), id key bytes (ptid.h encoding)
 *       u8 flags: 1 producer version, 2 payload
 *       [u64 producer version]
 *       [u32 length, payload JSON object text]
 *       u16 n_vectors, then each: u16 name length, name bytes ("" is the
 *           unnamed vector), u32 dim, dim IEEE-754 binary32 values
 *
 * SOURCES
 * An op built from Kafka messages carries where they came from, and the
 * store records the offsets in the same batch as the data (coll.c), which
 * is what makes Kafka ingest exactly-once.  An op merged from several
 * messages (an ingest batch for one collection) carries one source per
 * (topic, partition) with the highest offset merged, because the store
 * keeps only that: the first in `source`, the others in `more_sources`.
 * The encoder writes version 1 whenever the op has at most one source and
 * no meta, so every op that version 1 can express is encoded exactly as
 * before; version 2 exists only for multi-source ops, version 3 only for
 * ops with meta.  The decoder reads all three.
 *
 * META
 * An op may carry one (key, value) pair that the store keeps under key in
 * the same batch as the op's data (coll_meta_get): a backfill job stores
 * its cursor this way, so the cursor and the points it covers are durable
 * together or not at all.
 */
#ifndef VECLOG_OP_H
#define VECLOG_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ptid.h"

enum op_type {
    OP_UPSERT = 1,          /* points with vectors and payload */
    OP_DELETE,              /* points by id, or filter */
    OP_SET_PAYLOAD,         /* merge payload (optionally at key) into points */
    OP_OVERWRITE_PAYLOAD,   /* replace payload */
    OP_DELETE_PAYLOAD,      /* remove keys (names) */
    OP_CLEAR_PAYLOAD,       /* payload becomes {} */
    OP_UPDATE_VECTORS,      /* points with some vectors: replace those */
    OP_DELETE_VECTORS,      /* remove named vectors (names) */
    OP_TYPE_MAX
};

enum op_mode { OP_MODE_UPSERT = 0, OP_MODE_INSERT_ONLY, OP_MODE_UPDATE_ONLY };

/* A Qdrant Document ({"text", "model"}) given where a vector goes: parsed
 * by store/req.c, which must not depend on the embedders, and turned into
 * floats by the caller (embed/embed_op.h) before validation.  Never
 * logged: op_encode refuses an op that still has one, and
 * coll_op_validate rejects its dim of 0. */
typedef struct op_doc {
    char *text;             /* owned */
    char *model;            /* owned */
    char *where;            /* request field, for errors ("points[2].vector.v"); owned */
} op_doc_t;

typedef struct op_vec {
    char *name;             /* "" for the unnamed vector; owned */
    uint32_t dim;
    float *data;            /* dim floats; owned */
    op_doc_t *doc;          /* pending Document (dim 0, data NULL until embedded), or NULL;
                             * owned; in memory only */
} op_vec_t;

typedef struct op_point {
    ptid_t id;
    bool has_pv;
    uint64_t pv;            /* producer version, when has_pv */
    char *payload;          /* JSON object text or NULL; owned */
    op_vec_t *vecs;         /* owned */
    uint32_t n_vecs;
} op_point_t;

typedef struct op_source {
    char *topic;            /* owned */
    int32_t partition;
    int64_t offset;
} op_source_t;

typedef struct op {
    uint8_t type;           /* enum op_type */
    uint8_t mode;           /* enum op_mode, for OP_UPSERT */
    bool has_source;
    op_source_t source;     /* the first (or only) source, when has_source */
    op_source_t *more_sources; /* further sources, distinct (topic, partition); owned */
    uint32_t n_more_sources;
    char *filter;           /* filter JSON text: selects points instead of ids; owned */
    char *payload;          /* set/overwrite payload JSON object text; owned */
    char *key;              /* set_payload nested key, or NULL; owned */
    char **names;           /* delete_payload keys / delete_vectors names; owned */
    uint32_t n_names;
    op_point_t *points;     /* owned */
    size_t n_points;
    char *meta_key;         /* META: NULL, or a key stored with the op; owned */
    char *meta_val;         /* its value (text); owned */
} op_t;

/* Encode into a new malloc'd buffer (*buf, *len); caller frees. */
int op_encode(const op_t *op, uint8_t **buf, size_t *len, err_t *err);

/* Decode into *op (zeroed first); free with op_clear.  ERR_CORRUPT when
 * the bytes are not a valid encoding. */
int op_decode(const uint8_t *buf, size_t len, op_t *op, err_t *err);

/* Free everything op owns and zero it.  Safe on a zeroed op. */
void op_clear(op_t *op);

/* Grow op->points by one zeroed point; NULL on allocation failure. */
op_point_t *op_point_add(op_t *op);

/* Add a vector (copied) to a point; ERR_NOMEM on failure. */
int op_vec_add(op_point_t *p, const char *name, const float *data, uint32_t dim);

/* Add a pending Document vector (strings copied; dim 0, data NULL) to a
 * point; ERR_NOMEM on failure. */
int op_doc_add(op_point_t *p, const char *name, const char *text, const char *model,
               const char *where);

/* Free a vector's pending Document and clear v->doc.  NULL-safe. */
void op_doc_free(op_vec_t *v);

/* Set op->source (topic copied).  Leaves more_sources alone. */
int op_source_set(op_t *op, const char *topic, int32_t partition, int64_t offset);

/* Record that op includes the message at (topic, partition, offset): the
 * first source goes to op->source, a new (topic, partition) is appended to
 * more_sources, and a known one keeps the higher offset.  Topic copied.
 * ERR_NOMEM on allocation failure (op unchanged).  Not thread-safe. */
int op_source_add(op_t *op, const char *topic, int32_t partition, int64_t offset);

/* Number of sources (0 without has_source) and the i-th (0 = op->source);
 * borrowed from op. */
size_t op_source_count(const op_t *op);
const op_source_t *op_source_at(const op_t *op, size_t i);

/* Append a name to op->names (copied). */
int op_name_add(op_t *op, const char *name);

/* Set op's META pair (both copied, replacing any).  ERR_NOMEM. */
int op_meta_set(op_t *op, const char *key, const char *value);

/* "upsert", "delete", ... for logs and errors. */
const char *op_type_name(int type);

#endif
