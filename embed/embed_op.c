/*
 * embed_op.c - pending Documents of an op into vectors; see embed_op.h.
 */
#include "embed/embed_op.h"

#include <stdlib.h>
#include <string.h>

int embed_op_model(const embed_reg_t *reg, const char *name, const char *where,
                   embed_model_t **out, err_t *err)
{
    if (reg == NULL)
        return err_set(err, ERR_INVALID, "%s: unknown model \"%.100s\": no embedding models "
                       "are available here", where, name);
    if (embed_model_get(reg, name, out, err) == ERR_OK)
        return ERR_OK;
    /* the request named it: its fault (400), not a missing resource (404) */
    err->code = ERR_INVALID;
    err->retriable = false;
    return err_wrap(err, "%s", where);
}

int embed_op_error(err_t *err, int rc, const char *where, const char *model)
{
    if (rc == ERR_NOMEM)
        return err_wrap(err, "%s: embedding with model \"%s\"", where, model);
    err->code = err->retriable ? ERR_BUSY : ERR_INVALID;
    return err_wrap(err, "%s: embedding with model \"%s\"", where, model);
}

bool embed_op_pending(const op_t *op)
{
    for (size_t i = 0; i < op->n_points; i++)
        for (uint32_t k = 0; k < op->points[i].n_vecs; k++)
            if (op->points[i].vecs[k].doc != NULL)
                return true;
    return false;
}

uint32_t embed_op_doc_dim(const embed_reg_t *reg, const op_doc_t *doc, const char *model_override)
{
    embed_model_t *m = NULL;

    if (reg == NULL ||
        embed_model_get(reg, model_override ? model_override : doc->model, &m, NULL) != ERR_OK)
        return 0;
    return embed_model_dim(m);
}

/* Look up v's model and check its dim against the collection's vector. */
static int check_vec(const embed_reg_t *reg, const op_vec_t *v, const char *override,
                     const coll_vector_def_t *defs, uint32_t n_defs, embed_model_t **m,
                     err_t *err)
{
    const char *name = override ? override : v->doc->model;
    int rc = embed_op_model(reg, name, v->doc->where, m, err);

    if (rc != ERR_OK || defs == NULL)
        return rc;
    for (uint32_t i = 0; i < n_defs; i++) {
        if (strcmp(defs[i].name, v->name) != 0)
            continue;
        if (defs[i].dim == embed_model_dim(*m))
            return ERR_OK;
        return err_set(err, ERR_INVALID, "%s: model \"%s\" makes vectors of dim %u but the "
                       "collection's vector \"%s\" has dim %u", v->doc->where, name,
                       embed_model_dim(*m), v->name, defs[i].dim);
    }
    return err_set(err, ERR_INVALID, "%s: %s%s%s", v->doc->where,
                   *v->name ? "vector name \"" : "collection has no unnamed vector",
                   v->name, *v->name ? "\" does not exist" : "");
}

/* Embed the pending vectors all[i] whose models[i] is m: one embed_texts
 * call. */
static int embed_model_docs(op_vec_t **all, embed_model_t **models, size_t n_docs,
                            embed_model_t *m, const char *override, err_t *err)
{
    uint32_t dim = embed_model_dim(m);
    const char **texts = malloc((n_docs + 1) * sizeof(*texts));
    op_vec_t **slots = malloc((n_docs + 1) * sizeof(*slots));
    float *out = NULL;
    size_t n = 0;
    int rc = ERR_OK;

    for (size_t i = 0; texts && slots && i < n_docs; i++)
        if (models[i] == m) {
            texts[n] = all[i]->doc->text;
            slots[n++] = all[i];
        }
    if (texts == NULL || slots == NULL || (out = malloc(n * dim * sizeof(float) + 1)) == NULL)
        rc = err_set(err, ERR_NOMEM, "no memory");
    if (rc == ERR_OK && (rc = embed_texts(m, texts, n, out, err)) != ERR_OK)
        rc = embed_op_error(err, rc, slots[0]->doc->where,
                            override ? override : slots[0]->doc->model);
    for (size_t i = 0; rc == ERR_OK && i < n; i++) {
        op_vec_t *v = slots[i];
        if ((v->data = malloc((size_t)dim * sizeof(float) + 1)) == NULL) {
            rc = err_set(err, ERR_NOMEM, "no memory");
            break;
        }
        memcpy(v->data, out + i * dim, (size_t)dim * sizeof(float));
        v->dim = dim;
    }
    free(out);
    free(slots);
    free(texts);
    return rc;
}

/* The plain vectors' dims, checked as coll_op_validate would: a request
 * that will be refused anyway must not cost an embedding call. */
static int check_plain(const op_t *op, const coll_vector_def_t *defs, uint32_t n_defs,
                       err_t *err)
{
    for (size_t i = 0; defs != NULL && i < op->n_points; i++)
        for (uint32_t k = 0; k < op->points[i].n_vecs; k++) {
            const op_vec_t *v = &op->points[i].vecs[k];
            for (uint32_t d = 0; v->doc == NULL && d < n_defs; d++)
                if (strcmp(defs[d].name, v->name) == 0 && defs[d].dim != v->dim)
                    return err_set(err, ERR_INVALID, "points[%zu]: wrong vector dimension for "
                                   "\"%s\": expected %u, got %u", i, v->name, defs[d].dim, v->dim);
        }
    return ERR_OK;
}

int embed_op_resolve(const embed_reg_t *reg, op_t *op, const char *model_override,
                     const coll_vector_def_t *defs, uint32_t n_defs, err_t *err)
{
    size_t n_docs = 0, j = 0;
    embed_model_t **models;
    op_vec_t **all;
    int rc = ERR_OK;

    for (size_t i = 0; i < op->n_points; i++)
        for (uint32_t k = 0; k < op->points[i].n_vecs; k++)
            n_docs += op->points[i].vecs[k].doc != NULL;
    if (n_docs == 0)
        return ERR_OK;
    /* all[j] is the j-th pending vector in op order, models[j] its model */
    models = calloc(n_docs, sizeof(*models));
    all = calloc(n_docs, sizeof(*all));
    if (models == NULL || all == NULL)
        rc = err_set(err, ERR_NOMEM, "no memory");
    else
        rc = check_plain(op, defs, n_defs, err);
    for (size_t i = 0; i < op->n_points && rc == ERR_OK; i++)
        for (uint32_t k = 0; k < op->points[i].n_vecs && rc == ERR_OK; k++)
            if (op->points[i].vecs[k].doc != NULL) {
                all[j] = &op->points[i].vecs[k];
                rc = check_vec(reg, all[j], model_override, defs, n_defs, &models[j], err);
                j++;
            }
    for (size_t a = 0; a < n_docs && rc == ERR_OK; a++) {
        bool first = true;
        for (size_t b = 0; b < a && first; b++)
            first = models[b] != models[a];
        if (first)
            rc = embed_model_docs(all, models, n_docs, models[a], model_override, err);
    }
    /* only now: a failure above leaves every Document pending (never half) */
    for (size_t i = 0; i < n_docs && rc == ERR_OK; i++)
        op_doc_free(all[i]);
    free(all);
    free(models);
    return rc;
}
