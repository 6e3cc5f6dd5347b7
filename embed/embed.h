/*
 * embed.h - text -> vector: the models behind Qdrant inference objects
 * ({"text": "...", "model": "..."}) and the re-embedding backfill job.
 *
 * Design: a registry (embed_reg_t) maps model names to models
 * (embed_model_t).  It is built once from the configuration and is
 * immutable afterwards, so lookups and embedding calls need no locks.  Two
 * kinds of model exist:
 *
 *   hash  offline and deterministic feature hashing of words and character
 *         n-grams (embed_hash.c documents the exact scheme; vectors stored
 *         with it depend on it, so changing it is a format change).  Always
 *         present: "veclog/hash-128", "veclog/hash-256", "veclog/hash-512"
 *         and "veclog/hash-768".  More can be configured with any dim.
 *   http  a remote embedding server speaking the OpenAI embeddings API
 *         (POST {"model", "input": [...]}) or Hugging Face
 *         text-embeddings-inference (POST {"inputs": [...]}).  Plain
 *         http:// only: there is no TLS client here, an https:// url is
 *         rejected with ERR_UNSUPPORTED (put a local TLS proxy in front).
 *
 * Every vector produced is L2-normalised (a zero vector stays zero), so it
 * can be stored in a Cosine or Dot collection as is.
 *
 * Errors follow store/err.h: ERR_INVALID for bad input or configuration and
 * for a 4xx answer (not retriable), ERR_TIMEOUT / ERR_BUSY (retriable) when
 * the server timed out, could not be reached or kept answering 5xx after
 * max_retries retries, ERR_CORRUPT for an answer of the wrong shape.
 */
#ifndef VECLOG_EMBED_H
#define VECLOG_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "store/err.h"

/* Largest vector any model may produce; bigger is a typo. */
#define EMBED_DIM_MAX 65536u
/* Largest batch_size: one request body stays a few MiB. */
#define EMBED_BATCH_MAX 4096u
/* Largest max_retries: with the exponential backoff (capped at 10 s per
 * wait) more would keep a caller blocked for minutes. */
#define EMBED_RETRIES_MAX 20u
/* Largest timeout_ms (one hour). */
#define EMBED_TIMEOUT_MAX 3600000u

/* One configured model.  Strings are borrowed: embed_reg_new copies what
 * it keeps, so the caller may free them afterwards.  Start from
 * embed_conf_init, which sets the defaults below. */
typedef struct embed_conf {
    const char *name;       /* unique, non-empty; the "model" of inference objects */
    const char *type;       /* "hash" or "http" */
    const char *api;        /* http: "openai" or "tei", NULL = "openai"; ignored for hash */
    const char *url;        /* http: "http://host[:port]/path[?query]"; must be NULL for hash */
    const char *model;      /* openai: name sent as "model" in the request; else ignored */
    uint32_t dim;           /* vector size, 1..EMBED_DIM_MAX; required */
    const char *api_key;    /* http: sent as "Authorization: Bearer <key>"; NULL = none */
    uint32_t batch_size;    /* http: texts per request, 1..EMBED_BATCH_MAX, default 32 */
    uint32_t timeout_ms;    /* http: per attempt, 1..EMBED_TIMEOUT_MAX, default 10000 */
    uint32_t max_retries;   /* http: retries after the first attempt, 0..EMBED_RETRIES_MAX,
                             * default 3 */
} embed_conf_t;

typedef struct embed_reg embed_reg_t;     /* opaque */
typedef struct embed_model embed_model_t; /* opaque; owned by its registry */

/* Zero *c and set the defaults: batch_size 32, timeout_ms 10000,
 * max_retries 3. */
void embed_conf_init(embed_conf_t *c);

/* Build a registry of the built-in hash models plus models[0..n) (models
 * may be NULL when n is 0).  Every configuration value is checked here:
 * ERR_INVALID names the model and the field ("model \"x\": url: ..."),
 * including a name used twice or taken by a built-in; ERR_UNSUPPORTED for
 * an https:// url; ERR_NOMEM.  No network access happens here.  On success
 * the caller owns *out and frees it with embed_reg_free; on error *out is
 * NULL. */
int embed_reg_new(const embed_conf_t *models, size_t n, embed_reg_t **out, err_t *err);

/* Free the registry and its models.  NULL is fine.  No call on the registry
 * or on one of its models may be running or start afterwards. */
void embed_reg_free(embed_reg_t *reg);

/* Number of models, and the i-th (0 <= i < count) in registration order
 * (built-ins first), for listing them. */
size_t embed_reg_count(const embed_reg_t *reg);
embed_model_t *embed_reg_at(const embed_reg_t *reg, size_t i);

/* Look a model up by its exact (case-sensitive) name.  ERR_NOT_FOUND, with
 * a message listing the known models, when there is none.  The model
 * belongs to reg and lives as long as it.  Thread-safe. */
int embed_model_get(const embed_reg_t *reg, const char *name, embed_model_t **out, err_t *err);

/* The model's vector size and name (owned by the model).  Thread-safe. */
uint32_t embed_model_dim(const embed_model_t *m);
const char *embed_model_name(const embed_model_t *m);

/* Embed texts[0..n) into out[0..n*dim): row i is the L2-normalised vector
 * of texts[i].  Texts are UTF-8 (not checked); an empty text is allowed: a
 * hash model gives the zero vector, an http model whatever the server
 * answers (OpenAI itself rejects empty input with 400).  n == 0 succeeds
 * without doing anything.  ERR_INVALID for a NULL text or NULL out.
 *
 * http models send ceil(n / batch_size) requests, one after the other, and
 * retry a failed request (timeout, connection failure, 5xx, 408, 429) up to
 * max_retries times, waiting 100 ms, 200 ms, 400 ms ... (at most 10 s)
 * between attempts.  The call blocks for all of that: use it from worker
 * threads, never from an event loop.  On error out holds garbage.
 *
 * Thread-safe: any number of threads may embed with the same model at
 * once (each call uses its own connection and event base).  The process
 * must ignore SIGPIPE (bin/veclog does), as for every socket writer. */
int embed_texts(embed_model_t *m, const char *const *texts, size_t n, float *out, err_t *err);

#endif
