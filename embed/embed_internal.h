/*
 * embed_internal.h - what embed.c (registry, dispatch), embed_hash.c and
 * embed_http.c share.  Not part of the public API.
 *
 * A model is immutable once embed_reg_new has returned, which is what makes
 * every embedding call thread-safe without a lock.
 */
#ifndef VECLOG_EMBED_INTERNAL_H
#define VECLOG_EMBED_INTERNAL_H

#include "embed/embed.h"

enum embed_kind { EMBED_HASH, EMBED_HTTP };

struct embed_http; /* embed_http.c */

struct embed_model {
    char *name;
    uint32_t dim;
    enum embed_kind kind;
    struct embed_http *http; /* EMBED_HTTP only */
};

/* Hash models (embed_hash.c).  texts are non-NULL, out holds n*dim. */
int embed_hash_texts(const embed_model_t *m, const char *const *texts, size_t n, float *out,
                     err_t *err);

/* HTTP models (embed_http.c).  embed_http_new checks the http fields of c
 * (api, url, model, batch_size, timeout_ms, max_retries; dim is checked by
 * the caller) and copies them; errors name only the field, the caller adds
 * the model.  embed_http_free(NULL) is fine. */
int embed_http_new(const embed_conf_t *c, struct embed_http **out, err_t *err);
void embed_http_free(struct embed_http *h);
int embed_http_texts(const embed_model_t *m, const char *const *texts, size_t n, float *out,
                     err_t *err);

#endif
