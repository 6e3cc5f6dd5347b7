/*
 * msg.c - Kafka message values and keys to ops; the accepted formats are
 * in msg.h.
 *
 * Design: the value is parsed once into a cJSON tree that this module
 * owns, so the fields that belong to the message rather than to Qdrant's
 * body ("collection_name", "version", "op") can be detached from it; what
 * is left is exactly a Qdrant request body and goes to the store/req.c
 * parser that the HTTP API uses, with its strictness and error messages.
 * The format is told by its fields: "op" is an envelope, "points" or
 * "batch" an upsert body, "id" a sink-connector point.
 */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "store/ptid.h"
#include "store/req.h"

#define VERSION_MAX 9007199254740992.0 /* 2^53: larger is not exact in a double */

void msg_clear(msg_t *m)
{
    free(m->collection);
    op_clear(&m->op);
    memset(m, 0, sizeof(*m));
}

const char *msg_stage_name(int stage)
{
    switch (stage) {
    case MSG_STAGE_KEY: return "KEY_CONVERTER";
    case MSG_STAGE_VALUE: return "VALUE_CONVERTER";
    default: return "TASK_PUT";
    }
}

/* The whole text must be one JSON value (cJSON alone stops after the
 * first and would ignore "{} x"). */
static cJSON *json_parse(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);

    while (j != NULL && end < text + len &&
           (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (j != NULL && end != text + len) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j;
}

/* Detach "collection_name" from obj into m->collection. */
static int take_collection(cJSON *obj, msg_t *m, err_t *err)
{
    cJSON *c = cJSON_DetachItemFromObjectCaseSensitive(obj, "collection_name");
    int rc = ERR_OK;

    if (c == NULL || cJSON_IsNull(c)) {
        cJSON_Delete(c);
        return ERR_OK;
    }
    if (!cJSON_IsString(c) || c->valuestring[0] == '\0')
        rc = err_set(err, ERR_INVALID, "collection_name: expected a non-empty string");
    else if ((m->collection = strdup(c->valuestring)) == NULL)
        rc = err_set(err, ERR_NOMEM, "no memory");
    cJSON_Delete(c);
    return rc;
}

/* Detach "version" from obj: a non-negative integer below 2^53. */
static int take_version(cJSON *obj, bool *has, uint64_t *v, err_t *err)
{
    cJSON *j = cJSON_DetachItemFromObjectCaseSensitive(obj, "version");
    int rc = ERR_OK;

    *has = false;
    if (j == NULL || cJSON_IsNull(j)) {
        cJSON_Delete(j);
        return ERR_OK;
    }
    if (!cJSON_IsNumber(j) || j->valuedouble < 0 || j->valuedouble >= VERSION_MAX ||
        j->valuedouble != (double)(uint64_t)j->valuedouble) {
        rc = err_set(err, ERR_INVALID, "version: expected a non-negative integer below 2^53");
    } else {
        *has = true;
        *v = (uint64_t)j->valuedouble;
    }
    cJSON_Delete(j);
    return rc;
}

static int version_apply(op_t *op, bool has, uint64_t v, err_t *err)
{
    if (!has)
        return ERR_OK;
    if (op->filter != NULL && op->type != OP_UPSERT && op->type != OP_UPDATE_VECTORS)
        return err_set(err, ERR_INVALID, "version: an operation selecting points by filter "
                       "cannot carry a producer version");
    for (size_t i = 0; i < op->n_points; i++) {
        op->points[i].has_pv = true;
        op->points[i].pv = v;
    }
    return ERR_OK;
}

/* The envelope's "op": the Qdrant body parser for that operation. */
static int envelope_parse(cJSON *obj, op_t *op, err_t *err)
{
    cJSON *name = cJSON_DetachItemFromObjectCaseSensitive(obj, "op");
    const char *n = cJSON_IsString(name) ? name->valuestring : "";
    bool known = true;
    int rc = ERR_OK;

    if (strcmp(n, "upsert") == 0)
        rc = req_upsert_parse(obj, op, err);
    else if (strcmp(n, "delete") == 0)
        rc = req_delete_parse(obj, op, err);
    else if (strcmp(n, "set_payload") == 0)
        rc = req_set_payload_parse(obj, false, op, err);
    else if (strcmp(n, "overwrite_payload") == 0)
        rc = req_set_payload_parse(obj, true, op, err);
    else if (strcmp(n, "delete_payload") == 0)
        rc = req_delete_payload_parse(obj, op, err);
    else if (strcmp(n, "clear_payload") == 0)
        rc = req_clear_payload_parse(obj, op, err);
    else if (strcmp(n, "update_vectors") == 0)
        rc = req_update_vectors_parse(obj, op, err);
    else if (strcmp(n, "delete_vectors") == 0)
        rc = req_delete_vectors_parse(obj, op, err);
    else
        known = false;
    cJSON_Delete(name);
    if (!known)
        return err_set(err, ERR_INVALID, "op: expected one of upsert, delete, set_payload, "
                       "overwrite_payload, delete_payload, clear_payload, update_vectors, "
                       "delete_vectors");
    if (rc != ERR_OK && rc != ERR_NOMEM)
        err_wrap(err, "op %s", op_type_name(op->type));
    return rc;
}

static int value_decode(const char *text, size_t len, msg_t *m, err_t *err)
{
    cJSON *obj = json_parse(text, len);
    bool has_v = false;
    uint64_t v = 0;
    int rc;

    if (obj == NULL)
        return err_set(err, ERR_INVALID, "value is not valid JSON");
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return err_set(err, ERR_INVALID, "value must be a JSON object");
    }
    rc = take_collection(obj, m, err);
    if (rc == ERR_OK)
        rc = take_version(obj, &has_v, &v, err);
    if (rc != ERR_OK) {
        /* nothing */
    } else if (cJSON_HasObjectItem(obj, "op")) {
        rc = envelope_parse(obj, &m->op, err);
    } else if (cJSON_HasObjectItem(obj, "points") || cJSON_HasObjectItem(obj, "batch")) {
        rc = req_upsert_parse(obj, &m->op, err);
    } else if (cJSON_HasObjectItem(obj, "id")) {
        m->op.type = OP_UPSERT;
        rc = req_point_parse(obj, &m->op, "point", err);
    } else {
        rc = err_set(err, ERR_INVALID, "value: expected a point {collection_name, id, vector, "
                     "payload}, an upsert body (points or batch) or an operation envelope (op)");
    }
    if (rc == ERR_OK)
        rc = version_apply(&m->op, has_v, v, err);
    cJSON_Delete(obj);
    return rc;
}

/* {"id", "collection_name", "version"} of a tombstone's key. */
static int key_object(cJSON *obj, msg_t *m, op_point_t *p, err_t *err)
{
    const cJSON *it;
    int rc = take_collection(obj, m, err);

    if (rc == ERR_OK)
        rc = take_version(obj, &p->has_pv, &p->pv, err);
    if (rc != ERR_OK)
        return rc;
    cJSON_ArrayForEach(it, obj) {
        if (strcmp(it->string, "id") != 0)
            return err_set(err, ERR_INVALID, "key: unknown field \"%s\" (expected id, "
                           "collection_name, version)", it->string);
    }
    it = cJSON_GetObjectItemCaseSensitive(obj, "id");
    if (it == NULL)
        return err_set(err, ERR_INVALID, "key: missing field \"id\"");
    rc = ptid_from_json(it, &p->id, err);
    return rc == ERR_OK ? ERR_OK : err_wrap(err, "key.id");
}

static int key_decode(const char *key, size_t len, msg_t *m, err_t *err)
{
    op_point_t *p;
    char *text;
    cJSON *j;
    int rc;

    m->op.type = OP_DELETE;
    if (key == NULL)
        return err_set(err, ERR_INVALID, "a null value deletes the point named by the key, "
                       "but the key is null too");
    if ((p = op_point_add(&m->op)) == NULL || (text = strndup(key, len)) == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    j = json_parse(key, len);
    if (strlen(text) != len)
        rc = err_set(err, ERR_INVALID, "key: contains a NUL byte");
    else if (cJSON_IsObject(j))
        rc = key_object(j, m, p, err);
    else if (cJSON_IsString(j))
        rc = ptid_from_str(j->valuestring, &p->id, err);
    else if (cJSON_IsNumber(j) && strspn(text, "0123456789") != len)
        rc = ptid_from_json(j, &p->id, err); /* -1, 1.5, 1e3: its error message */
    else if (j != NULL && !cJSON_IsNumber(j))
        rc = err_set(err, ERR_INVALID, "key: expected a point id or {\"id\", \"collection_name\"}");
    else
        rc = ptid_from_str(text, &p->id, err); /* digits exactly (beyond 2^53 too), or a UUID */
    cJSON_Delete(j);
    free(text);
    if (rc != ERR_OK && rc != ERR_NOMEM && strncmp(err->msg, "key", 3) != 0)
        err_wrap(err, "key");
    return rc;
}

int msg_decode(const void *key, size_t key_len, const void *value, size_t value_len, msg_t *m,
               int *stage, err_t *err)
{
    err_t local;
    int st, rc;

    if (err == NULL)
        err = &local;
    memset(m, 0, sizeof(*m));
    if (value == NULL) {
        st = MSG_STAGE_KEY;
        rc = key_decode(key, key_len, m, err);
    } else {
        st = MSG_STAGE_VALUE;
        rc = value_decode(value, value_len, m, err);
    }
    if (stage != NULL)
        *stage = st;
    return rc;
}
