/*
 * api_infer.c - Qdrant Documents ({"text": ..., "model": ...}) over HTTP,
 * embedded on the server with the configured models (embed/embed.h).
 *
 * Writes: store/req.c leaves each Document as a pending vector; here they
 * are embedded (embed/embed_op.h: one call per model per request) before
 * coll_op_validate and the WAL, so an acknowledged write never depends on
 * an embedder afterwards and only floats are ever logged.  Queries: the
 * query text is embedded and the search runs as with a vector.
 *
 * Status codes: the request names the model, so an unknown one is 400
 * (not 404), as is a model whose dim differs from the collection's vector;
 * an embedder that timed out or kept failing with 5xx is 503 (try again),
 * one that refused the text for good is 400.
 */
#include "api_internal.h"

#include <stdlib.h>
#include <string.h>

#include "embed/embed_op.h"

void api_set_embed(api_t *a, struct embed_reg *reg)
{
    a->embed = reg;
}

int api_infer_op(api_t *a, coll_t *c, op_t *op, err_t *err)
{
    uint32_t n_defs;
    const coll_vector_def_t *defs;

    if (!embed_op_pending(op))
        return ERR_OK;
    defs = coll_vectors(c, &n_defs);
    return embed_op_resolve(a->embed, op, NULL, defs, n_defs, err);
}

int api_infer_query(api_t *a, coll_t *c, const char *using, const char *text,
                    const char *model, const char *where, float **vec, uint32_t *dim, err_t *err)
{
    uint32_t n_defs;
    const coll_vector_def_t *defs = coll_vectors(c, &n_defs);
    const char *name = using ? using : "";
    embed_model_t *m;
    int rc = embed_op_model(a->embed, model, where, &m, err);

    if (rc != ERR_OK)
        return rc;
    for (uint32_t i = 0; i < n_defs; i++) {
        if (strcmp(defs[i].name, name) != 0)
            continue;
        if (defs[i].dim != embed_model_dim(m))
            return err_set(err, ERR_INVALID, "%s: model \"%s\" makes vectors of dim %u but the "
                           "collection's vector \"%s\" has dim %u", where, model,
                           embed_model_dim(m), name, defs[i].dim);
        *dim = embed_model_dim(m);
        *vec = malloc((size_t)*dim * sizeof(float) + 1);
        if (*vec == NULL)
            return err_set(err, ERR_NOMEM, "no memory");
        rc = embed_texts(m, &text, 1, *vec, err);
        return rc == ERR_OK ? ERR_OK : embed_op_error(err, rc, where, model);
    }
    return err_set(err, ERR_INVALID, "Vector with name `%s` is not configured in this collection",
                   name);
}
