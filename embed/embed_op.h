/*
 * embed_op.h - the pending Documents of an op (op_vec_t.doc, left by
 * store/req.c) turned into vectors, for the HTTP API and Kafka ingest
 * alike, so both embed, check and report errors the same way.
 *
 * All Documents of one op are embedded with one embed_texts call per
 * model (in order of first appearance), after every model is looked up
 * and every dimension checked, so a request that is going to fail does
 * not reach an embedding server first.
 *
 * Errors (for the caller to map to HTTP statuses or sink outcomes):
 *   ERR_INVALID  unknown model (the message lists the known ones), a
 *                model whose dim differs from the collection's vector
 *                (both named), a vector name the collection lacks, or the
 *                embedder refused the input for good (4xx, bad answer);
 *   ERR_BUSY     retriable embedder failure (timeout, unreachable, 5xx
 *                after its retries): retriable, the message says why;
 *   ERR_NOMEM.
 * On error the op may hold some embedded vectors and some pending ones:
 * the caller drops it.
 */
#ifndef VECLOG_EMBED_OP_H
#define VECLOG_EMBED_OP_H

#include "embed/embed.h"
#include "store/coll.h"
#include "store/op.h"

/* Embed every pending Document of op with reg.  model_override, when not
 * NULL, replaces the model every Document names (a route's per-target
 * model, sink.h).  defs[0..n_defs) are the target collection's vectors:
 * each Document's model must produce its vector's dim; defs NULL skips
 * that check (a collection about to be auto-created).  reg NULL: every
 * Document is an unknown model.  No Document: ERR_OK at once. */
int embed_op_resolve(const embed_reg_t *reg, op_t *op, const char *model_override,
                     const coll_vector_def_t *defs, uint32_t n_defs, err_t *err);

/* Does op hold a pending Document? */
bool embed_op_pending(const op_t *op);

/* The dim a Document of model (or model_override) would have, 0 when the
 * model is unknown. */
uint32_t embed_op_doc_dim(const embed_reg_t *reg, const op_doc_t *doc, const char *model_override);

/* Look a model up for a Document: ERR_INVALID (not ERR_NOT_FOUND: the
 * request names it) with where and the known models when unknown. */
int embed_op_model(const embed_reg_t *reg, const char *name, const char *where,
                   embed_model_t **out, err_t *err);

/* An embed_texts error as the API and the sink need it: retriable ones
 * ERR_BUSY (retriable), ERR_NOMEM as is, everything else ERR_INVALID;
 * the message prefixed with where and the model. */
int embed_op_error(err_t *err, int rc, const char *where, const char *model);

#endif
