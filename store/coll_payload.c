/*
 * coll_payload.c - payload edits (set at a key, delete paths) and the
 * with_payload / with_vector selectors.
 *
 * Key paths follow Qdrant's JSON path syntax as filter.c parses it:
 * "a.b" walks objects, "a[]" every element of an array, "a[2]" one
 * element.  set_payload's key creates missing intermediate objects, as
 * Qdrant does; it must not contain array steps.
 */
#include "coll_internal.h"

#include <stdlib.h>
#include <string.h>

#define SEG_MAX 32

typedef struct seg {
    char name[256];
    int index;      /* -1 none, -2 "[]", >= 0 "[n]" */
} seg_t;

/* Split a path into segments; returns the count, or -1 if unsupported
 * (quoted keys, too deep). */
static int path_split(const char *path, seg_t *segs)
{
    int n = 0;
    const char *p = path;

    while (*p) {
        if (n == SEG_MAX)
            return -1;
        size_t len = strcspn(p, ".[");
        if (len == 0 || len >= sizeof(segs[n].name) || *p == '"')
            return -1;
        memcpy(segs[n].name, p, len);
        segs[n].name[len] = '\0';
        segs[n].index = -1;
        p += len;
        if (*p == '[') {
            char *end;
            if (p[1] == ']') {
                segs[n].index = -2;
                p += 2;
            } else {
                long v = strtol(p + 1, &end, 10);
                if (end == p + 1 || *end != ']' || v < 0)
                    return -1;
                segs[n].index = (int)v;
                p = end + 1;
            }
        }
        n++;
        if (*p == '.')
            p++;
        else if (*p != '\0')
            return -1;
    }
    return n;
}

int coll_payload_path_check(const char *path, err_t *err)
{
    seg_t segs[SEG_MAX];
    if (path == NULL || *path == '\0' || path_split(path, segs) <= 0)
        return err_set(err, ERR_INVALID, "invalid payload key path \"%.200s\"",
                       path ? path : "");
    return ERR_OK;
}

static cJSON *object_at(cJSON *dst, const seg_t *segs, int n, err_t *err)
{
    for (int i = 0; i < n; i++) {
        if (segs[i].index != -1) {
            err_set(err, ERR_UNSUPPORTED, "set_payload key with array steps is not supported");
            return NULL;
        }
        cJSON *next = cJSON_GetObjectItemCaseSensitive(dst, segs[i].name);
        if (!cJSON_IsObject(next)) {
            cJSON *obj = cJSON_CreateObject();
            if (obj == NULL)
                return NULL;
            if (next != NULL)
                cJSON_ReplaceItemInObjectCaseSensitive(dst, segs[i].name, obj);
            else
                cJSON_AddItemToObject(dst, segs[i].name, obj);
            next = obj;
        }
        dst = next;
    }
    return dst;
}

int coll_payload_merge(cJSON *dst, const cJSON *src, const char *key, err_t *err)
{
    seg_t segs[SEG_MAX];
    const cJSON *it;

    if (key != NULL) {
        int n = path_split(key, segs);
        if (n <= 0)
            return err_set(err, ERR_INVALID, "invalid payload key \"%.200s\"", key);
        dst = object_at(dst, segs, n, err);
        if (dst == NULL)
            return err && err->code ? err->code : ERR_NOMEM;
    }
    cJSON_ArrayForEach(it, src) {
        /* Qdrant's set_payload merge: a null value removes the key */
        if (cJSON_IsNull(it)) {
            cJSON_DeleteItemFromObjectCaseSensitive(dst, it->string);
            continue;
        }
        cJSON *copy = cJSON_Duplicate(it, 1);
        if (copy == NULL)
            return ERR_NOMEM;
        if (cJSON_HasObjectItem(dst, it->string))
            cJSON_ReplaceItemInObjectCaseSensitive(dst, it->string, copy);
        else
            cJSON_AddItemToObject(dst, it->string, copy);
    }
    return ERR_OK;
}

static void delete_at(cJSON *node, const seg_t *segs, int n)
{
    if (!cJSON_IsObject(node))
        return;
    if (n == 1 && segs[0].index == -1) {
        cJSON_DeleteItemFromObjectCaseSensitive(node, segs[0].name);
        return;
    }
    cJSON *child = cJSON_GetObjectItemCaseSensitive(node, segs[0].name);
    if (child == NULL)
        return;
    if (segs[0].index == -1) {
        delete_at(child, segs + 1, n - 1);
        return;
    }
    if (!cJSON_IsArray(child))
        return;
    if (segs[0].index >= 0) {
        if (n == 1)
            cJSON_DeleteItemFromArray(child, segs[0].index);
        else
            delete_at(cJSON_GetArrayItem(child, segs[0].index), segs + 1, n - 1);
        return;
    }
    if (n == 1) {
        cJSON_DeleteItemFromObjectCaseSensitive(node, segs[0].name);
        return;
    }
    cJSON *el;
    cJSON_ArrayForEach(el, child)
        delete_at(el, segs + 1, n - 1);
}

void coll_payload_delete_path(cJSON *obj, const char *path)
{
    seg_t segs[SEG_MAX];
    int n = path_split(path, segs);
    if (n > 0)
        delete_at(obj, segs, n);
}

/* Copy the value(s) at segs from src into dst (both objects). */
static int include_at(const cJSON *src, cJSON *dst, const seg_t *segs, int n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, segs[0].name);
    cJSON *out;

    if (v == NULL)
        return ERR_OK;
    if (n == 1 && segs[0].index == -1) {
        if (cJSON_HasObjectItem(dst, segs[0].name))
            cJSON_DeleteItemFromObjectCaseSensitive(dst, segs[0].name);
        out = cJSON_Duplicate(v, 1);
        return out && cJSON_AddItemToObject(dst, segs[0].name, out) ? ERR_OK : ERR_NOMEM;
    }
    if (segs[0].index == -1) {
        if (!cJSON_IsObject(v))
            return ERR_OK;
        out = cJSON_GetObjectItemCaseSensitive(dst, segs[0].name);
        if (out == NULL && ((out = cJSON_CreateObject()) == NULL ||
                            !cJSON_AddItemToObject(dst, segs[0].name, out)))
            return ERR_NOMEM;
        return include_at(v, out, segs + 1, n - 1);
    }
    /* array steps: keep the whole array value (a projection of arrays
     * cannot be merged with other include paths meaningfully) */
    if (!cJSON_IsArray(v) || cJSON_HasObjectItem(dst, segs[0].name))
        return ERR_OK;
    out = cJSON_Duplicate(v, 1);
    return out && cJSON_AddItemToObject(dst, segs[0].name, out) ? ERR_OK : ERR_NOMEM;
}

cJSON *coll_payload_select(const cJSON *payload, const coll_sel_t *sel)
{
    cJSON *out;

    switch (sel->payload) {
    case COLL_PAYLOAD_NONE:
        return cJSON_CreateNull();
    case COLL_PAYLOAD_ALL:
        return payload ? cJSON_Duplicate(payload, 1) : cJSON_CreateObject();
    case COLL_PAYLOAD_EXCLUDE:
        out = payload ? cJSON_Duplicate(payload, 1) : cJSON_CreateObject();
        for (size_t i = 0; out && i < sel->n_keys; i++)
            coll_payload_delete_path(out, sel->keys[i]);
        return out;
    default:
        out = cJSON_CreateObject();
        for (size_t i = 0; out && payload && i < sel->n_keys; i++) {
            seg_t segs[SEG_MAX];
            int n = path_split(sel->keys[i], segs);
            if (n > 0 && include_at(payload, out, segs, n) != ERR_OK) {
                cJSON_Delete(out);
                return NULL;
            }
        }
        return out;
    }
}

/* ---- selectors -------------------------------------------------------- */

static int string_list(const cJSON *arr, const char *what, char ***out, size_t *n, err_t *err)
{
    const cJSON *it;
    size_t cnt = 0, total;

    if (cJSON_IsString(arr))
        total = 1;
    else if (cJSON_IsArray(arr))
        total = (size_t)cJSON_GetArraySize(arr);
    else
        return err_set(err, ERR_INVALID, "%s: expected a list of strings", what);
    *out = calloc(total ? total : 1, sizeof(char *));
    if (*out == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    if (cJSON_IsString(arr)) {
        (*out)[0] = strdup(arr->valuestring);
        *n = 1;
        return (*out)[0] ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
    }
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it)) {
            *n = cnt;
            return err_set(err, ERR_INVALID, "%s[%zu]: expected a string", what, cnt);
        }
        (*out)[cnt] = strdup(it->valuestring);
        if ((*out)[cnt++] == NULL) {
            *n = cnt;
            return err_set(err, ERR_NOMEM, "no memory");
        }
    }
    *n = cnt;
    return ERR_OK;
}

static int sel_payload(const cJSON *wp, coll_sel_t *sel, err_t *err)
{
    const cJSON *inc, *exc;

    if (cJSON_IsBool(wp)) {
        sel->payload = cJSON_IsTrue(wp) ? COLL_PAYLOAD_ALL : COLL_PAYLOAD_NONE;
        return ERR_OK;
    }
    if (cJSON_IsArray(wp)) {
        sel->payload = COLL_PAYLOAD_INCLUDE;
        return string_list(wp, "with_payload", &sel->keys, &sel->n_keys, err);
    }
    if (!cJSON_IsObject(wp) || cJSON_GetArraySize(wp) != 1)
        return err_set(err, ERR_INVALID,
                       "with_payload: expected true, false, a list of keys, {\"include\": ...} or {\"exclude\": ...}");
    inc = cJSON_GetObjectItemCaseSensitive(wp, "include");
    exc = cJSON_GetObjectItemCaseSensitive(wp, "exclude");
    if (inc != NULL) {
        sel->payload = COLL_PAYLOAD_INCLUDE;
        return string_list(inc, "with_payload.include", &sel->keys, &sel->n_keys, err);
    }
    if (exc != NULL) {
        sel->payload = COLL_PAYLOAD_EXCLUDE;
        return string_list(exc, "with_payload.exclude", &sel->keys, &sel->n_keys, err);
    }
    return err_set(err, ERR_INVALID, "with_payload: unknown field \"%s\"", wp->child->string);
}

int coll_sel_parse(const cJSON *with_payload, bool payload_default, const cJSON *with_vector,
                   bool vector_default, coll_sel_t *sel, err_t *err)
{
    int rc = ERR_OK;

    memset(sel, 0, sizeof(*sel));
    sel->payload = payload_default ? COLL_PAYLOAD_ALL : COLL_PAYLOAD_NONE;
    sel->vector = vector_default ? COLL_VECTOR_ALL : COLL_VECTOR_NONE;
    if (with_payload != NULL && !cJSON_IsNull(with_payload))
        rc = sel_payload(with_payload, sel, err);
    if (rc == ERR_OK && with_vector != NULL && !cJSON_IsNull(with_vector)) {
        if (cJSON_IsBool(with_vector)) {
            sel->vector = cJSON_IsTrue(with_vector) ? COLL_VECTOR_ALL : COLL_VECTOR_NONE;
        } else {
            sel->vector = COLL_VECTOR_LIST;
            rc = string_list(with_vector, "with_vector", &sel->names, &sel->n_names, err);
        }
    }
    if (rc != ERR_OK)
        coll_sel_clear(sel);
    return rc;
}

void coll_sel_clear(coll_sel_t *sel)
{
    for (size_t i = 0; i < sel->n_keys; i++)
        free(sel->keys[i]);
    free(sel->keys);
    for (size_t i = 0; i < sel->n_names; i++)
        free(sel->names[i]);
    free(sel->names);
    memset(sel, 0, sizeof(*sel));
}
