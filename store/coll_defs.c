/*
 * coll_defs.c - Qdrant's VectorsConfig (one unnamed vector, or a map of
 * named ones) parsed into coll_vector_def_t (coll.h).  Kept apart from
 * coll.c: it is pure parsing, shared by catalog.c at create time and by
 * coll_open through the stored config.
 */
#include "coll_internal.h"

#include <stdlib.h>
#include <string.h>

#include "dist.h"

void coll_vector_defs_free(coll_vector_def_t *defs, uint32_t n)
{
    if (defs == NULL)
        return;
    for (uint32_t i = 0; i < n; i++)
        free(defs[i].name);
    free(defs);
}

static int vector_def_parse(const cJSON *j, const char *name, coll_vector_def_t *d, err_t *err)
{
    const char *where = *name ? name : "vectors";
    const cJSON *it;

    if (!cJSON_IsObject(j))
        return err_set(err, ERR_INVALID, "%s: expected an object with size and distance", where);
    cJSON_ArrayForEach(it, j) {
        const char *k = it->string;
        if (strcmp(k, "size") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 1 || it->valuedouble > COLL_MAX_DIM ||
                it->valuedouble != (double)(uint32_t)it->valuedouble)
                return err_set(err, ERR_INVALID, "%s.size: must be an integer in 1..%d", where,
                               COLL_MAX_DIM);
            d->dim = (uint32_t)it->valuedouble;
        } else if (strcmp(k, "distance") == 0) {
            enum dist_metric m;
            if (!cJSON_IsString(it) || dist_metric_parse(it->valuestring, &m, err) != ERR_OK)
                return err_set(err, ERR_INVALID,
                               "%s.distance: expected one of Cosine, Euclid, Dot, Manhattan", where);
            d->metric = (int)m;
        } else if (strcmp(k, "on_disk") == 0) {
            if (!cJSON_IsBool(it) && !cJSON_IsNull(it))
                return err_set(err, ERR_INVALID, "%s.on_disk: must be a boolean", where);
            d->on_disk = cJSON_IsTrue(it);
        } else if (strcmp(k, "datatype") == 0) {
            if (!cJSON_IsNull(it) && !(cJSON_IsString(it) && strcmp(it->valuestring, "float32") == 0))
                return err_set(err, ERR_UNSUPPORTED, "%s.datatype: only float32 is supported", where);
        } else if (strcmp(k, "hnsw_config") == 0 || strcmp(k, "quantization_config") == 0) {
            if (!cJSON_IsNull(it) && !cJSON_IsObject(it))
                return err_set(err, ERR_INVALID, "%s.%s: must be an object", where, k);
        } else if (strcmp(k, "multivector_config") == 0) {
            if (!cJSON_IsNull(it))
                return err_set(err, ERR_UNSUPPORTED, "%s.multivector_config: multivectors are not supported", where);
        } else {
            return err_set(err, ERR_INVALID, "%s: unknown field \"%s\"", where, k);
        }
    }
    if (d->dim == 0)
        return err_set(err, ERR_INVALID, "%s.size: missing", where);
    if (!cJSON_HasObjectItem(j, "distance"))
        return err_set(err, ERR_INVALID, "%s.distance: missing", where);
    return ERR_OK;
}

int coll_vector_defs_parse(const cJSON *vectors, coll_vector_def_t **defs, uint32_t *n, err_t *err)
{
    coll_vector_def_t *d = NULL;
    uint32_t cnt = 0;
    int rc = ERR_OK;
    const cJSON *it;

    *defs = NULL;
    *n = 0;
    if (!cJSON_IsObject(vectors))
        return err_set(err, ERR_INVALID, "vectors: expected an object");
    bool single = cJSON_HasObjectItem(vectors, "size") || cJSON_HasObjectItem(vectors, "distance");
    size_t total = single ? 1 : (size_t)cJSON_GetArraySize(vectors);
    if (total > COLL_MAX_VECTORS)
        return err_set(err, ERR_INVALID, "vectors: at most %d named vectors", COLL_MAX_VECTORS);
    d = calloc(total ? total : 1, sizeof(*d));
    if (d == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    if (single) {
        d[0].name = strdup("");
        cnt = 1;
        rc = d[0].name ? vector_def_parse(vectors, "", &d[0], err) : ERR_NOMEM;
        goto out;
    }
    cJSON_ArrayForEach(it, vectors) {
        if (it->string[0] == '\0' || strlen(it->string) > COLL_VECTOR_NAME_MAX) {
            rc = err_set(err, ERR_INVALID, "vectors: vector names must be 1..%d bytes",
                         COLL_VECTOR_NAME_MAX);
            goto out;
        }
        d[cnt].name = strdup(it->string);
        cnt++;
        if (d[cnt - 1].name == NULL) {
            rc = err_set(err, ERR_NOMEM, "no memory");
            goto out;
        }
        rc = vector_def_parse(it, it->string, &d[cnt - 1], err);
        if (rc != ERR_OK)
            goto out;
    }
out:
    if (rc != ERR_OK) {
        coll_vector_defs_free(d, cnt);
        return rc;
    }
    *defs = d;
    *n = cnt;
    return ERR_OK;
}

