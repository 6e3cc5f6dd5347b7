/*
 * req.c - Qdrant point-mutation bodies to ops; see req.h.
 *
 * Filters are only checked for being JSON objects here and stored as
 * text in the op; coll_op_validate compiles them (one parse per write,
 * with the error naming the field).
 */
#include "req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptid.h"

int req_fields_check(const cJSON *obj, const char *const *allowed, const char *where, err_t *err)
{
    const cJSON *it;

    if (!cJSON_IsObject(obj))
        return err_set(err, ERR_INVALID, "%s: expected a JSON object", *where ? where : "body");
    cJSON_ArrayForEach(it, obj) {
        const char *const *a = allowed;
        while (*a && strcmp(*a, it->string) != 0)
            a++;
        if (*a == NULL)
            return err_set(err, ERR_INVALID, "%s%sunknown field \"%s\"", where, *where ? ": " : "",
                           it->string);
    }
    return ERR_OK;
}

static int no_shard_key(const cJSON *body, err_t *err)
{
    const cJSON *sk = cJSON_GetObjectItemCaseSensitive(body, "shard_key");
    if (sk != NULL && !cJSON_IsNull(sk))
        return err_set(err, ERR_UNSUPPORTED, "shard_key: custom sharding is not supported");
    return ERR_OK;
}

static int dense_parse(const cJSON *arr, float **out, uint32_t *dim, const char *where, err_t *err)
{
    int n = cJSON_GetArraySize(arr);
    const cJSON *it;
    int i = 0;

    if (n > 65536)
        return err_set(err, ERR_INVALID, "%s: vector too long (%d)", where, n);
    *out = malloc((size_t)n * sizeof(float) + 1);
    if (*out == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(it, arr) {
        if (cJSON_IsArray(it)) {
            free(*out);
            return err_set(err, ERR_UNSUPPORTED, "%s: multivectors are not supported", where);
        }
        if (!cJSON_IsNumber(it)) {
            free(*out);
            return err_set(err, ERR_INVALID, "%s[%d]: expected a number", where, i);
        }
        (*out)[i++] = (float)it->valuedouble;
    }
    *dim = (uint32_t)n;
    return ERR_OK;
}

/* Qdrant's Document / Image / InferenceObject: {"text"|"image"|"object",
 * "model", ...}.  "model" is required there, which tells them apart from
 * a map of named vectors that happens to use "text" or "image" as names. */
static bool is_inference(const cJSON *o)
{
    return cJSON_IsObject(o) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "model")) &&
           (cJSON_HasObjectItem(o, "text") || cJSON_HasObjectItem(o, "image") ||
            cJSON_HasObjectItem(o, "object"));
}

bool req_is_document(const cJSON *o)
{
    return is_inference(o) && cJSON_HasObjectItem(o, "text");
}

int req_document_parse(const cJSON *o, const char **text, const char **model, const char *where,
                       err_t *err)
{
    static const char *const fields[] = { "text", "model", "options", NULL };
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "model");
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(o, "options");
    int rc = req_fields_check(o, fields, where, err);

    if (rc != ERR_OK)
        return rc;
    if (!cJSON_IsString(t))
        return err_set(err, ERR_INVALID, "%s.text: expected a string", where);
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0')
        return err_set(err, ERR_INVALID, "%s.model: expected a non-empty string", where);
    /* Qdrant passes options to the inference service as-is; veclog's
     * embedders take none, and ignoring them would change results silently */
    if (opt != NULL && !cJSON_IsNull(opt) && !cJSON_IsObject(opt))
        return err_set(err, ERR_INVALID, "%s.options: expected an object", where);
    if (opt != NULL && cJSON_IsObject(opt) && opt->child != NULL)
        return err_set(err, ERR_UNSUPPORTED, "%s.options.%s: veclog's models take no options",
                       where, opt->child->string);
    *text = t->valuestring;
    *model = m->valuestring;
    return ERR_OK;
}

/* A Document into a pending vector of p (embedded by the caller). */
static int doc_add(op_point_t *p, const char *name, const cJSON *o, const char *where, err_t *err)
{
    const char *text, *model;
    int rc = req_document_parse(o, &text, &model, where, err);

    if (rc != ERR_OK)
        return rc;
    return op_doc_add(p, name, text, model, where) == ERR_OK ? ERR_OK
                                                             : err_set(err, ERR_NOMEM, "no memory");
}

static int vec_add(op_point_t *p, const char *name, const cJSON *arr, const char *where,
                   err_t *err)
{
    float *data = NULL;
    uint32_t dim = 0;
    int rc;

    if (cJSON_IsObject(arr)) {
        if (cJSON_HasObjectItem(arr, "indices"))
            return err_set(err, ERR_UNSUPPORTED, "%s: sparse vectors are not supported", where);
        if (req_is_document(arr))
            return doc_add(p, name, arr, where, err);
        if (is_inference(arr))
            return err_set(err, ERR_UNSUPPORTED,
                           "%s: image and object inference are not supported (only text "
                           "documents)", where);
    }
    if (!cJSON_IsArray(arr))
        return err_set(err, ERR_INVALID, "%s: expected a list of numbers", where);
    rc = dense_parse(arr, &data, &dim, where, err);
    if (rc != ERR_OK)
        return rc;
    rc = op_vec_add(p, name, data, dim) == ERR_OK ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
    free(data);
    return rc;
}

int req_vector_parse(const cJSON *v, op_point_t *p, const char *where, err_t *err)
{
    char w[300];
    const cJSON *it;

    if (cJSON_IsArray(v))
        return vec_add(p, "", v, where, err);
    if (!cJSON_IsObject(v))
        return err_set(err, ERR_INVALID, "%s: expected a list of numbers or a map of named vectors",
                       where);
    if (is_inference(v))
        return vec_add(p, "", v, where, err);
    cJSON_ArrayForEach(it, v) {
        snprintf(w, sizeof(w), "%s.%s", where, it->string);
        int rc = vec_add(p, it->string, it, w, err);
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

static int payload_text(const cJSON *pl, char **out, const char *where, err_t *err)
{
    *out = NULL;
    if (pl == NULL || cJSON_IsNull(pl))
        return ERR_OK;
    if (!cJSON_IsObject(pl))
        return err_set(err, ERR_INVALID, "%s: payload must be a JSON object", where);
    *out = cJSON_PrintUnformatted(pl);
    return *out ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

int req_point_parse(const cJSON *pt, op_t *op, const char *where, err_t *err)
{
    static const char *const fields[] = { "id", "vector", "payload", NULL };
    char w[300];
    op_point_t *p;
    int rc;

    if (!cJSON_IsObject(pt))
        return err_set(err, ERR_INVALID, "%s: expected a point object", where);
    rc = req_fields_check(pt, fields, where, err);
    if (rc != ERR_OK)
        return rc;
    p = op_point_add(op);
    if (p == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(pt, "id");
    if (id == NULL)
        return err_set(err, ERR_INVALID, "%s: missing field \"id\"", where);
    rc = ptid_from_json(id, &p->id, err);
    if (rc != ERR_OK)
        return err_wrap(err, "%s.id", where);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(pt, "vector");
    if (v == NULL)
        return err_set(err, ERR_INVALID, "%s: missing field \"vector\"", where);
    snprintf(w, sizeof(w), "%s.vector", where);
    rc = req_vector_parse(v, p, w, err);
    if (rc != ERR_OK)
        return rc;
    snprintf(w, sizeof(w), "%s.payload", where);
    return payload_text(cJSON_GetObjectItemCaseSensitive(pt, "payload"), &p->payload, w, err);
}

static int update_mode(const cJSON *m, op_t *op, err_t *err)
{
    if (m == NULL || cJSON_IsNull(m))
        return ERR_OK;
    if (cJSON_IsString(m) && strcmp(m->valuestring, "upsert") == 0)
        op->mode = OP_MODE_UPSERT;
    else if (cJSON_IsString(m) && strcmp(m->valuestring, "insert_only") == 0)
        op->mode = OP_MODE_INSERT_ONLY;
    else if (cJSON_IsString(m) && strcmp(m->valuestring, "update_only") == 0)
        op->mode = OP_MODE_UPDATE_ONLY;
    else
        return err_set(err, ERR_INVALID,
                       "update_mode: expected one of upsert, insert_only, update_only");
    return ERR_OK;
}

static int filter_text(const cJSON *f, op_t *op, const char *where, err_t *err)
{
    if (f == NULL || cJSON_IsNull(f))
        return ERR_OK;
    if (!cJSON_IsObject(f))
        return err_set(err, ERR_INVALID, "%s: expected a filter object", where);
    op->filter = cJSON_PrintUnformatted(f);
    return op->filter ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

static int batch_parse(const cJSON *b, op_t *op, err_t *err)
{
    static const char *const fields[] = { "ids", "vectors", "payloads", NULL };
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(b, "ids");
    const cJSON *vecs = cJSON_GetObjectItemCaseSensitive(b, "vectors");
    const cJSON *pls = cJSON_GetObjectItemCaseSensitive(b, "payloads");
    int n = cJSON_GetArraySize(ids), rc;
    char w[300];

    if (!cJSON_IsObject(b))
        return err_set(err, ERR_INVALID, "batch: expected an object");
    if ((rc = req_fields_check(b, fields, "batch", err)) != ERR_OK)
        return rc;
    if (!cJSON_IsArray(ids))
        return err_set(err, ERR_INVALID, "batch.ids: expected a list of point ids");
    if (pls != NULL && !cJSON_IsNull(pls) && (!cJSON_IsArray(pls) || cJSON_GetArraySize(pls) != n))
        return err_set(err, ERR_INVALID, "batch.payloads: expected a list as long as batch.ids");
    if (cJSON_IsArray(vecs) ? cJSON_GetArraySize(vecs) != n : !cJSON_IsObject(vecs))
        return err_set(err, ERR_INVALID, "batch.vectors: expected a list as long as batch.ids or a map of such lists");
    for (int i = 0; i < n; i++) {
        op_point_t *p = op_point_add(op);
        if (p == NULL)
            return err_set(err, ERR_NOMEM, "no memory");
        if ((rc = ptid_from_json(cJSON_GetArrayItem(ids, i), &p->id, err)) != ERR_OK)
            return err_wrap(err, "batch.ids[%d]", i);
        if (cJSON_IsArray(vecs)) {
            snprintf(w, sizeof(w), "batch.vectors[%d]", i);
            rc = vec_add(p, "", cJSON_GetArrayItem(vecs, i), w, err);
        } else {
            const cJSON *named;
            cJSON_ArrayForEach(named, vecs) {
                snprintf(w, sizeof(w), "batch.vectors.%s", named->string);
                if (!cJSON_IsArray(named) || cJSON_GetArraySize(named) != n)
                    return err_set(err, ERR_INVALID, "%s: expected a list as long as batch.ids", w);
                snprintf(w, sizeof(w), "batch.vectors.%s[%d]", named->string, i);
                if ((rc = vec_add(p, named->string, cJSON_GetArrayItem(named, i), w, err)) != ERR_OK)
                    break;
            }
        }
        if (rc != ERR_OK)
            return rc;
        snprintf(w, sizeof(w), "batch.payloads[%d]", i);
        if (pls != NULL && (rc = payload_text(cJSON_GetArrayItem(pls, i), &p->payload, w, err)) != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

int req_upsert_parse(const cJSON *body, op_t *op, err_t *err)
{
    static const char *const fields[] = { "points", "batch", "shard_key", "update_filter",
                                          "update_mode", NULL };
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(body, "points");
    const cJSON *batch = cJSON_GetObjectItemCaseSensitive(body, "batch");
    char w[64];
    int rc;

    op->type = OP_UPSERT;
    if (!cJSON_IsObject(body))
        return err_set(err, ERR_INVALID, "request body must be a JSON object");
    if ((rc = req_fields_check(body, fields, "", err)) != ERR_OK || (rc = no_shard_key(body, err)) != ERR_OK)
        return rc;
    if ((pts != NULL) == (batch != NULL))
        return err_set(err, ERR_INVALID, "expected exactly one of \"points\" or \"batch\"");
    if ((rc = update_mode(cJSON_GetObjectItemCaseSensitive(body, "update_mode"), op, err)) != ERR_OK)
        return rc;
    rc = filter_text(cJSON_GetObjectItemCaseSensitive(body, "update_filter"), op, "update_filter", err);
    if (rc != ERR_OK)
        return rc;
    if (batch != NULL)
        return batch_parse(batch, op, err);
    if (!cJSON_IsArray(pts))
        return err_set(err, ERR_INVALID, "points: expected a list of points");
    int i = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, pts) {
        snprintf(w, sizeof(w), "points[%d]", i++);
        if ((rc = req_point_parse(pt, op, w, err)) != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

/* "points": [ids] and/or "filter": {...} of a selector body. */
static int selector(const cJSON *body, op_t *op, bool required, err_t *err)
{
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(body, "points");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(body, "filter");
    const cJSON *it;
    int i = 0, rc;

    if (pts != NULL && !cJSON_IsNull(pts)) {
        if (!cJSON_IsArray(pts))
            return err_set(err, ERR_INVALID, "points: expected a list of point ids");
        cJSON_ArrayForEach(it, pts) {
            op_point_t *p = op_point_add(op);
            if (p == NULL)
                return err_set(err, ERR_NOMEM, "no memory");
            if ((rc = ptid_from_json(it, &p->id, err)) != ERR_OK)
                return err_wrap(err, "points[%d]", i);
            i++;
        }
    }
    if ((rc = filter_text(f, op, "filter", err)) != ERR_OK)
        return rc;
    if (op->filter != NULL && pts != NULL && !cJSON_IsNull(pts))
        return err_set(err, ERR_INVALID, "give either \"points\" or \"filter\", not both");
    if (required && op->filter == NULL && (pts == NULL || cJSON_IsNull(pts)))
        return err_set(err, ERR_INVALID, "expected \"points\" (a list of ids) or \"filter\"");
    return no_shard_key(body, err);
}

static int selector_body(const cJSON *body, int type, op_t *op, err_t *err)
{
    static const char *const fields[] = { "points", "filter", "shard_key", NULL };
    int rc;

    op->type = (uint8_t)type;
    if (!cJSON_IsObject(body))
        return err_set(err, ERR_INVALID, "request body must be a JSON object");
    if ((rc = req_fields_check(body, fields, "", err)) != ERR_OK)
        return rc;
    return selector(body, op, true, err);
}

int req_delete_parse(const cJSON *body, op_t *op, err_t *err)
{
    return selector_body(body, OP_DELETE, op, err);
}

int req_clear_payload_parse(const cJSON *body, op_t *op, err_t *err)
{
    return selector_body(body, OP_CLEAR_PAYLOAD, op, err);
}

int req_set_payload_parse(const cJSON *body, bool overwrite, op_t *op, err_t *err)
{
    static const char *const fields[] = { "payload", "points", "filter", "shard_key", "key", NULL };
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(body, "key");
    int rc;

    op->type = overwrite ? OP_OVERWRITE_PAYLOAD : OP_SET_PAYLOAD;
    if (!cJSON_IsObject(body))
        return err_set(err, ERR_INVALID, "request body must be a JSON object");
    if ((rc = req_fields_check(body, fields, "", err)) != ERR_OK)
        return rc;
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(body, "payload");
    if (pl == NULL || cJSON_IsNull(pl))
        return err_set(err, ERR_INVALID, "payload: missing");
    if ((rc = payload_text(pl, &op->payload, "payload", err)) != ERR_OK)
        return rc;
    if (key != NULL && !cJSON_IsNull(key)) {
        if (!cJSON_IsString(key))
            return err_set(err, ERR_INVALID, "key: expected a string");
        if (overwrite)
            return err_set(err, ERR_INVALID, "key: not allowed when overwriting the payload");
        op->key = strdup(key->valuestring);
        if (op->key == NULL)
            return err_set(err, ERR_NOMEM, "no memory");
    }
    return selector(body, op, true, err);
}

static int names(const cJSON *arr, op_t *op, const char *where, err_t *err)
{
    const cJSON *it;
    int i = 0;

    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return err_set(err, ERR_INVALID, "%s: expected a non-empty list of strings", where);
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it))
            return err_set(err, ERR_INVALID, "%s[%d]: expected a string", where, i);
        if (op_name_add(op, it->valuestring) != ERR_OK)
            return err_set(err, ERR_NOMEM, "no memory");
        i++;
    }
    return ERR_OK;
}

int req_delete_payload_parse(const cJSON *body, op_t *op, err_t *err)
{
    static const char *const fields[] = { "keys", "points", "filter", "shard_key", NULL };
    int rc;

    op->type = OP_DELETE_PAYLOAD;
    if (!cJSON_IsObject(body))
        return err_set(err, ERR_INVALID, "request body must be a JSON object");
    if ((rc = req_fields_check(body, fields, "", err)) != ERR_OK)
        return rc;
    if ((rc = names(cJSON_GetObjectItemCaseSensitive(body, "keys"), op, "keys", err)) != ERR_OK)
        return rc;
    return selector(body, op, true, err);
}

int req_update_vectors_parse(const cJSON *body, op_t *op, err_t *err)
{
    static const char *const fields[] = { "points", "shard_key", "update_filter", NULL };
    static const char *const pfields[] = { "id", "vector", NULL };
    const cJSON *pts = cJSON_GetObjectItemCaseSensitive(body, "points"), *pt;
    char w[64];
    int i = 0, rc;

    op->type = OP_UPDATE_VECTORS;
    if (!cJSON_IsObject(body))
        return err_set(err, ERR_INVALID, "request body must be a JSON object");
    if ((rc = req_fields_check(body, fields, "", err)) != ERR_OK || (rc = no_shard_key(body, err)) != ERR_OK)
        return rc;
    if (!cJSON_IsArray(pts) || cJSON_GetArraySize(pts) == 0)
        return err_set(err, ERR_INVALID, "points: expected a non-empty list of {id, vector}");
    rc = filter_text(cJSON_GetObjectItemCaseSensitive(body, "update_filter"), op, "update_filter", err);
    cJSON_ArrayForEach(pt, pts) {
        snprintf(w, sizeof(w), "points[%d]", i++);
        if (rc != ERR_OK)
            return rc;
        /* check_fields walks members by name: an array would crash it */
        if (!cJSON_IsObject(pt))
            return err_set(err, ERR_INVALID, "%s: expected {\"id\", \"vector\"}", w);
        if ((rc = req_fields_check(pt, pfields, w, err)) != ERR_OK)
            return rc;
        op_point_t *p = op_point_add(op);
        if (p == NULL)
            return err_set(err, ERR_NOMEM, "no memory");
        if ((rc = ptid_from_json(cJSON_GetObjectItemCaseSensitive(pt, "id"), &p->id, err)) != ERR_OK)
            return err_wrap(err, "%s.id", w);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(pt, "vector");
        if (v == NULL)
            return err_set(err, ERR_INVALID, "%s: missing field \"vector\"", w);
        snprintf(w, sizeof(w), "points[%d].vector", i - 1);
        rc = req_vector_parse(v, p, w, err);
    }
    return rc;
}

int req_delete_vectors_parse(const cJSON *body, op_t *op, err_t *err)
{
    static const char *const fields[] = { "vector", "points", "filter", "shard_key", NULL };
    int rc;

    op->type = OP_DELETE_VECTORS;
    if (!cJSON_IsObject(body))
        return err_set(err, ERR_INVALID, "request body must be a JSON object");
    if ((rc = req_fields_check(body, fields, "", err)) != ERR_OK)
        return rc;
    if ((rc = names(cJSON_GetObjectItemCaseSensitive(body, "vector"), op, "vector", err)) != ERR_OK)
        return rc;
    return selector(body, op, true, err);
}
