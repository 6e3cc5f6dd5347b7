/*
 * msg.h - one Kafka message (key, value) to one collection mutation.
 *
 * Kafka ingest accepts, as message values (JSON objects):
 *
 *   1. Qdrant's Kafka sink connector format, one point:
 *        {"collection_name": "c", "id": 1, "vector": [..] | {"name": [..]},
 *         "payload": {..}}
 *   2. Qdrant upsert bodies (PUT /collections/{c}/points):
 *        {"collection_name": "c", "points": [..]}  or  {..., "batch": {..}}
 *      with update_mode and update_filter as over HTTP;
 *   3. an operation envelope: "op" names the operation, the other fields
 *      are the Qdrant request body of that operation:
 *        {"collection_name": "c", "op": "delete", "points": [1, 2]}
 *        {"collection_name": "c", "op": "set_payload", "payload": {..},
 *         "points": [..] | "filter": {..}, "key": "a.b"}
 *      op is one of upsert, delete, set_payload, overwrite_payload,
 *      delete_payload, clear_payload, update_vectors, delete_vectors.
 *
 * In all three, "collection_name" is optional (a routed topic supplies the
 * collections, see ingest.h) and "version", a non-negative integer, is the
 * producer version given to every point the operation names: a point's
 * write is skipped when the stored point has a version at least as high,
 * so producers get last-writer-wins in their own clock whatever the
 * delivery order (coll.c).  An operation selecting points by filter cannot
 * take a version.  Parsing reuses store/req.c, so it is exactly as strict
 * as the HTTP API: an unknown field is an error, never ignored.  A vector
 * may be a Document {"text", "model"}: decoding leaves it pending
 * (op_vec_t.doc) and the sink embeds it per target (sink.h DOCUMENTS).
 *
 * A null value (a Kafka tombstone) deletes one point, named by the key:
 *   - the id as text: 42 or 5c56c793-69f3-4fbf-87e6-c4bf54c28c26 (any UUID
 *     form ptid.h accepts, quoted as a JSON string or not), or
 *   - a JSON object {"id": .., "collection_name": "c", "version": n} where
 *     collection_name and version are optional.
 * The key of a message with a value is not looked at.  An empty (non-null)
 * value is not a tombstone: it is invalid JSON.
 *
 * Errors say which part of the message was at fault (the Kafka Connect
 * stage, for the dead-letter headers) and are permanent: ERR_INVALID or
 * ERR_UNSUPPORTED, except ERR_NOMEM.  Thread-safe; no global state.
 */
#ifndef VECLOG_MSG_H
#define VECLOG_MSG_H

#include <stddef.h>

#include "store/err.h"
#include "store/op.h"

/* Where an ingest error arose; named like Kafka Connect's stages. */
enum msg_stage {
    MSG_STAGE_KEY = 0,   /* KEY_CONVERTER: the key of a tombstone */
    MSG_STAGE_VALUE,     /* VALUE_CONVERTER: the value's JSON or its shape */
    MSG_STAGE_APPLY      /* TASK_PUT: routing, the collection, the store */
};

typedef struct msg {
    char *collection;    /* named by the message (value or key), or NULL; owned */
    op_t op;             /* the mutation, without a source; owned */
} msg_t;

/* Decode one message.  key / value are the raw bytes (NULL = Kafka null),
 * borrowed.  On success m holds the op (free with msg_clear).  On error
 * *stage (may be NULL) tells key from value, and m must still be freed
 * with msg_clear.  m is zeroed first. */
int msg_decode(const void *key, size_t key_len, const void *value, size_t value_len, msg_t *m,
               int *stage, err_t *err);

/* Free what m owns and zero it; a zeroed m is fine. */
void msg_clear(msg_t *m);

/* "KEY_CONVERTER", "VALUE_CONVERTER", "TASK_PUT" (static strings). */
const char *msg_stage_name(int stage);

#endif
