/*
 * req.h - Qdrant request bodies for point mutations, turned into ops.
 *
 * The HTTP node (PUT /collections/{c}/points, .../payload, ...) and Kafka
 * ingest (Qdrant's sink-connector messages and upsert bodies) accept the
 * same JSON, so the translation lives here, next to the op it produces.
 * Parsing is strict: an unknown field, a wrong type or an unsupported
 * feature (sparse or multi vectors, image/object inference, shard keys)
 * is an error naming the field, never silently ignored.  Parsing does not
 * look at the collection; coll_op_validate checks names and dimensions.
 *
 * DOCUMENTS: wherever a vector goes, Qdrant's Document {"text": "...",
 * "model": "...", "options": null|{}} is accepted and becomes a pending
 * vector (op_vec_t.doc, dim 0): store/ does not embed, so the caller
 * (query/ or ingest/, through embed/embed_op.h) fills in the floats
 * before coll_op_validate, which rejects what is still pending.
 *
 * All functions fill a caller-provided op_t (zero it first; on error the
 * caller still frees it with op_clear).  Thread-safe; borrowed JSON.
 */
#ifndef VECLOG_REQ_H
#define VECLOG_REQ_H

#include <cjson/cJSON.h>

#include "err.h"
#include "op.h"

/* ERR_INVALID unless obj is an object whose keys are all in the
 * NULL-terminated list allowed; the message names where and the key. */
int req_fields_check(const cJSON *obj, const char *const *allowed, const char *where, err_t *err);

/* PointInsertOperations: {"points": [PointStruct]} or {"batch": {ids,
 * vectors, payloads}}, with update_mode and update_filter. */
int req_upsert_parse(const cJSON *body, op_t *op, err_t *err);

/* One PointStruct ({"id", "vector", "payload"}) appended to op.  where
 * prefixes error messages ("points[3]"). */
int req_point_parse(const cJSON *pt, op_t *op, const char *where, err_t *err);

/* VectorStruct (a list of floats, a Document, or a map name -> either)
 * into p. */
int req_vector_parse(const cJSON *v, op_point_t *p, const char *where, err_t *err);

/* Is o a Document (an object with "text" and a string "model")? */
bool req_is_document(const cJSON *o);

/* Check a Document ({"text", "model", "options"}); *text and *model are
 * borrowed from o.  ERR_INVALID names where and the field; non-empty
 * options are ERR_UNSUPPORTED (no model here takes any). */
int req_document_parse(const cJSON *o, const char **text, const char **model, const char *where,
                       err_t *err);

/* PointsSelector: {"points": [ids]} or {"filter": {...}} (delete, clear
 * payload). */
int req_delete_parse(const cJSON *body, op_t *op, err_t *err);
int req_clear_payload_parse(const cJSON *body, op_t *op, err_t *err);

/* SetPayload (overwrite=false) / overwrite payload (overwrite=true). */
int req_set_payload_parse(const cJSON *body, bool overwrite, op_t *op, err_t *err);

/* DeletePayload: {"keys": [...], points | filter}. */
int req_delete_payload_parse(const cJSON *body, op_t *op, err_t *err);

/* UpdateVectors: {"points": [{"id", "vector"}], "update_filter"}. */
int req_update_vectors_parse(const cJSON *body, op_t *op, err_t *err);

/* DeleteVectors: {"vector": [names], points | filter}. */
int req_delete_vectors_parse(const cJSON *body, op_t *op, err_t *err);

#endif
