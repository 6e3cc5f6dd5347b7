/*
 * api_points.c - point endpoints: upsert, retrieve, delete, payload and
 * vector updates, batch, scroll and count (search and query: api_query.c).
 *
 * Writes are parsed (store/req.c) and validated completely before they
 * reach the WAL, so an acknowledged write never fails later.  Operations
 * that name existing points (payload and vector updates) first check that
 * every id exists and answer 404 otherwise, as Qdrant does.
 */
#include "api_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/req.h"

typedef int (*parse_fn)(const cJSON *body, op_t *op, err_t *err);

int api_coll_acquire(api_ctx_t *x, catalog_handle_t **h, err_t *err)
{
    return catalog_acquire(x->a->cat, x->args[0], h, err);
}

static cJSON *update_result(uint64_t seq, bool wait)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "operation_id", (double)seq);
    cJSON_AddStringToObject(o, "status", wait ? "completed" : "acknowledged");
    return o;
}

/* Ops that name existing points by id: payload and vector updates.
 * update_vectors always does (its filter is an update_filter: Qdrant
 * drops the existing points that do not match it, and a missing id is
 * still "No point with id ... found"). */
static bool needs_ids(const op_t *op)
{
    return op->type == OP_UPDATE_VECTORS ||
           (op->filter == NULL && op->type != OP_UPSERT && op->type != OP_DELETE);
}

/* Does id exist when ops[k] runs?  The latest earlier op of the batch
 * that names it by id decides (an upsert creates it, a delete removes
 * it); otherwise the collection's current state. */
static int id_exists(coll_t *c, const op_t *ops, size_t k, const ptid_t *id, bool *found,
                     err_t *err)
{
    coll_sel_t sel = { 0 };
    cJSON *arr = NULL;

    for (size_t j = k; j-- > 0;) {
        const op_t *o = &ops[j];
        bool creates = o->type == OP_UPSERT && o->mode != OP_MODE_UPDATE_ONLY;
        if (!creates && !(o->type == OP_DELETE && o->filter == NULL))
            continue;
        for (size_t i = 0; i < o->n_points; i++) {
            if (ptid_eq(&o->points[i].id, id)) {
                *found = creates;
                return ERR_OK;
            }
        }
    }
    int rc = coll_retrieve(c, id, 1, &sel, &arr, err);
    *found = cJSON_GetArraySize(arr) == 1;
    cJSON_Delete(arr);
    return rc;
}

/* 404 unless every id of ops[k] exists when it runs (after ops[0..k)). */
static int ids_exist(coll_t *c, const op_t *ops, size_t k, err_t *err)
{
    const op_t *op = &ops[k];

    if (!needs_ids(op))
        return ERR_OK;
    for (size_t i = 0; i < op->n_points; i++) {
        bool found;
        int rc = id_exists(c, ops, k, &op->points[i].id, &found, err);
        if (rc != ERR_OK)
            return rc;
        if (!found) {
            char id[PTID_STR_MAX];
            ptid_format(&op->points[i].id, id, sizeof(id));
            return err_set(err, ERR_NOT_FOUND, "No point with id %s found", id);
        }
    }
    return ERR_OK;
}

/* Run one parsed op against coll; *result gets an UpdateResult. */
static int run_op(api_ctx_t *x, coll_t *c, op_t *op, cJSON **result, err_t *err)
{
    coll_write_result_t res;
    int rc = ids_exist(c, op, 0, err);

    if (rc == ERR_OK)
        rc = coll_write(c, op, &res, err);
    if (rc != ERR_OK)
        return rc;
    *result = update_result(res.seq, x->wait);
    coll_write_result_clear(&res);
    return ERR_OK;
}

static int write_with(api_ctx_t *x, parse_fn parse, cJSON **result, err_t *err)
{
    catalog_handle_t *h;
    op_t op = { 0 };
    int rc = api_coll_acquire(x, &h, err);

    if (rc != ERR_OK)
        return rc;
    rc = parse(x->body, &op, err);
    if (rc == ERR_OK) /* Documents become vectors before anything is logged */
        rc = api_infer_op(x->a, catalog_handle_coll(h), &op, err);
    if (rc == ERR_OK)
        rc = run_op(x, catalog_handle_coll(h), &op, result, err);
    op_clear(&op);
    catalog_release(h);
    return rc;
}

static int parse_set(const cJSON *b, op_t *op, err_t *err) { return req_set_payload_parse(b, false, op, err); }
static int parse_overwrite(const cJSON *b, op_t *op, err_t *err) { return req_set_payload_parse(b, true, op, err); }

int api_points_upsert(api_ctx_t *x, cJSON **r, err_t *e) { return write_with(x, req_upsert_parse, r, e); }
int api_points_delete(api_ctx_t *x, cJSON **r, err_t *e) { return write_with(x, req_delete_parse, r, e); }
int api_points_set_payload(api_ctx_t *x, cJSON **r, err_t *e) { return write_with(x, parse_set, r, e); }
int api_points_overwrite_payload(api_ctx_t *x, cJSON **r, err_t *e) { return write_with(x, parse_overwrite, r, e); }
int api_points_delete_payload(api_ctx_t *x, cJSON **r, err_t *e) { return write_with(x, req_delete_payload_parse, r, e); }
int api_points_clear_payload(api_ctx_t *x, cJSON **r, err_t *e) { return write_with(x, req_clear_payload_parse, r, e); }
int api_points_update_vectors(api_ctx_t *x, cJSON **r, err_t *e) { return write_with(x, req_update_vectors_parse, r, e); }
int api_points_delete_vectors(api_ctx_t *x, cJSON **r, err_t *e) { return write_with(x, req_delete_vectors_parse, r, e); }

static const struct {
    const char *name;
    parse_fn parse;
} batch_ops[] = {
    { "upsert", req_upsert_parse }, { "delete", req_delete_parse },
    { "set_payload", parse_set }, { "overwrite_payload", parse_overwrite },
    { "delete_payload", req_delete_payload_parse }, { "clear_payload", req_clear_payload_parse },
    { "update_vectors", req_update_vectors_parse }, { "delete_vectors", req_delete_vectors_parse },
};

/* POST /points/batch: every operation is parsed and validated before the
 * first is logged, so a bad one rejects the whole batch. */
int api_points_batch(api_ctx_t *x, cJSON **result, err_t *err)
{
    static const char *const fields[] = { "operations", NULL };
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(x->body, "operations"), *it;
    catalog_handle_t *h;
    op_t *parsed = NULL;
    size_t n = 0, total;
    int rc = req_fields_check(x->body, fields, "", err);

    if (rc != ERR_OK)
        return rc;
    if (!cJSON_IsArray(ops))
        return err_set(err, ERR_INVALID, "operations: expected a list");
    if ((rc = api_coll_acquire(x, &h, err)) != ERR_OK)
        return rc;
    total = (size_t)cJSON_GetArraySize(ops);
    parsed = calloc(total + 1, sizeof(op_t));
    cJSON_ArrayForEach(it, ops) {
        size_t k = 0, nk = sizeof(batch_ops) / sizeof(batch_ops[0]);
        if (parsed == NULL || !cJSON_IsObject(it) || it->child == NULL || it->child->next != NULL) {
            rc = parsed ? err_set(err, ERR_INVALID, "operations[%zu]: expected one operation", n)
                        : err_set(err, ERR_NOMEM, "no memory");
            break;
        }
        while (k < nk && strcmp(batch_ops[k].name, it->child->string) != 0)
            k++;
        if (k == nk) {
            rc = err_set(err, ERR_INVALID, "operations[%zu]: unknown operation \"%s\"", n, it->child->string);
            break;
        }
        rc = batch_ops[k].parse(it->child, &parsed[n++], err);
        if (rc == ERR_OK)
            rc = api_infer_op(x->a, catalog_handle_coll(h), &parsed[n - 1], err);
        if (rc == ERR_OK)
            rc = coll_op_validate(catalog_handle_coll(h), &parsed[n - 1], err);
        if (rc != ERR_OK) {
            err_wrap(err, "operations[%zu].%s", n - 1, it->child->string);
            break;
        }
    }
    /* ids that must exist are checked up front too, so a 404 rejects the
     * whole batch (run_op checks again against the state it runs on) */
    for (size_t i = 0; i < n && rc == ERR_OK; i++)
        if ((rc = ids_exist(catalog_handle_coll(h), parsed, i, err)) != ERR_OK)
            err_wrap(err, "operations[%zu].%s", i, op_type_name(parsed[i].type));
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        cJSON *one = NULL;
        rc = run_op(x, catalog_handle_coll(h), &parsed[i], &one, err);
        if (rc == ERR_OK)
            cJSON_AddItemToArray(arr, one);
    }
    for (size_t i = 0; i < n; i++)
        op_clear(&parsed[i]);
    free(parsed);
    catalog_release(h);
    if (rc != ERR_OK) {
        cJSON_Delete(arr);
        return rc;
    }
    *result = arr;
    return ERR_OK;
}

/* ---- reads -------------------------------------------------------------- */

static int ids_parse(const cJSON *arr, ptid_t **ids, size_t *n, const char *where, err_t *err)
{
    const cJSON *it;
    size_t i = 0;

    if (!cJSON_IsArray(arr))
        return err_set(err, ERR_INVALID, "%s: expected a list of point ids", where);
    *ids = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(ptid_t));
    if (*ids == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(it, arr) {
        if (ptid_from_json(it, &(*ids)[i], err) != ERR_OK)
            return err_wrap(err, "%s[%zu]", where, i);
        i++;
    }
    *n = i;
    return ERR_OK;
}

int api_points_retrieve(api_ctx_t *x, cJSON **result, err_t *err)
{
    static const char *const fields[] = { "ids", "with_payload", "with_vector", "shard_key", NULL };
    catalog_handle_t *h;
    coll_sel_t sel;
    ptid_t *ids = NULL;
    size_t n = 0;
    int rc = req_fields_check(x->body, fields, "", err);

    if (rc == ERR_OK)
        rc = ids_parse(cJSON_GetObjectItemCaseSensitive(x->body, "ids"), &ids, &n, "ids", err);
    if (rc == ERR_OK)
        rc = coll_sel_parse(cJSON_GetObjectItemCaseSensitive(x->body, "with_payload"), true,
                            cJSON_GetObjectItemCaseSensitive(x->body, "with_vector"), false, &sel, err);
    if (rc != ERR_OK) {
        free(ids);
        return rc;
    }
    if ((rc = api_coll_acquire(x, &h, err)) == ERR_OK) {
        rc = coll_retrieve(catalog_handle_coll(h), ids, n, &sel, result, err);
        catalog_release(h);
    }
    coll_sel_clear(&sel);
    free(ids);
    return rc;
}

int api_points_get(api_ctx_t *x, cJSON **result, err_t *err)
{
    catalog_handle_t *h;
    coll_sel_t sel = { .payload = COLL_PAYLOAD_ALL, .vector = COLL_VECTOR_ALL };
    ptid_t id;
    cJSON *arr = NULL;
    int rc = ptid_from_str(x->args[1], &id, err);

    if (rc != ERR_OK || (rc = api_coll_acquire(x, &h, err)) != ERR_OK)
        return rc;
    rc = coll_retrieve(catalog_handle_coll(h), &id, 1, &sel, &arr, err);
    catalog_release(h);
    if (rc != ERR_OK)
        return rc;
    if (cJSON_GetArraySize(arr) != 1) {
        char ids[PTID_STR_MAX];
        ptid_format(&id, ids, sizeof(ids));
        cJSON_Delete(arr);
        return err_set(err, ERR_NOT_FOUND, "No point with id %s found", ids);
    }
    *result = cJSON_DetachItemFromArray(arr, 0);
    cJSON_Delete(arr);
    return ERR_OK;
}

int api_filter_field(const cJSON *body, filter_t **f, err_t *err)
{
    *f = NULL;
    const cJSON *fj = cJSON_GetObjectItemCaseSensitive(body, "filter");
    if (fj == NULL || cJSON_IsNull(fj))
        return ERR_OK;
    return filter_parse(fj, f, err);
}

static int order_by_parse(const cJSON *ob, coll_scroll_req_t *req, err_t *err)
{
    static const char *const fields[] = { "key", "direction", "start_from", NULL };
    if (ob == NULL || cJSON_IsNull(ob))
        return ERR_OK;
    if (cJSON_IsString(ob)) {
        req->order_by = ob->valuestring;
        return ERR_OK;
    }
    int rc = req_fields_check(ob, fields, "order_by", err);
    if (rc != ERR_OK)
        return rc;
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(ob, "key");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(ob, "direction");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(ob, "start_from");
    if (!cJSON_IsString(k))
        return err_set(err, ERR_INVALID, "order_by.key: expected a string");
    req->order_by = k->valuestring;
    if (d != NULL && !cJSON_IsNull(d)) {
        if (!cJSON_IsString(d) || (strcmp(d->valuestring, "asc") && strcmp(d->valuestring, "desc")))
            return err_set(err, ERR_INVALID, "order_by.direction: expected \"asc\" or \"desc\"");
        req->order_desc = strcmp(d->valuestring, "desc") == 0;
    }
    if (s != NULL && !cJSON_IsNull(s)) {
        int64_t sec;
        int32_t nsec;
        if (cJSON_IsNumber(s))
            req->start_from = s->valuedouble;
        else if (cJSON_IsString(s) && filter_datetime_parse(s->valuestring, &sec, &nsec))
            req->start_from = (double)sec + nsec / 1e9;
        else
            return err_set(err, ERR_INVALID, "order_by.start_from: expected a number or a datetime");
        req->has_start_from = true;
    }
    return ERR_OK;
}

int api_points_scroll(api_ctx_t *x, cJSON **result, err_t *err)
{
    static const char *const fields[] = { "offset", "limit", "filter", "with_payload", "with_vector",
                                          "order_by", "shard_key", NULL };
    static const cJSON empty = { .type = cJSON_Object };
    const cJSON *body = x->body ? x->body : &empty;
    coll_scroll_req_t req = { 0 };
    catalog_handle_t *h;
    coll_sel_t sel = { 0 };
    filter_t *f = NULL;
    cJSON *pts = NULL, *next = NULL;
    int rc = req_fields_check(body, fields, "", err);

    if (rc == ERR_OK)
        rc = api_uint_field(body, "limit", 10, 1, &req.limit, err);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(body, "offset");
    if (rc == ERR_OK && off != NULL && !cJSON_IsNull(off)) {
        if ((rc = ptid_from_json(off, &req.offset, err)) != ERR_OK)
            err_wrap(err, "offset");
        req.has_offset = true;
    }
    if (rc == ERR_OK)
        rc = order_by_parse(cJSON_GetObjectItemCaseSensitive(body, "order_by"), &req, err);
    if (rc == ERR_OK)
        rc = api_filter_field(body, &f, err);
    if (rc == ERR_OK)
        rc = coll_sel_parse(cJSON_GetObjectItemCaseSensitive(body, "with_payload"), true,
                            cJSON_GetObjectItemCaseSensitive(body, "with_vector"), false, &sel, err);
    if (rc == ERR_OK && (rc = api_coll_acquire(x, &h, err)) == ERR_OK) {
        req.filter = f;
        req.sel = &sel;
        rc = coll_scroll(catalog_handle_coll(h), &req, &pts, &next, err);
        catalog_release(h);
    }
    if (rc == ERR_OK) {
        *result = cJSON_CreateObject();
        cJSON_AddItemToObject(*result, "points", pts);
        cJSON_AddItemToObject(*result, "next_page_offset", next);
    }
    coll_sel_clear(&sel);
    filter_free(f);
    return rc;
}

int api_points_count(api_ctx_t *x, cJSON **result, err_t *err)
{
    static const char *const fields[] = { "filter", "exact", "shard_key", NULL };
    static const cJSON empty = { .type = cJSON_Object };
    const cJSON *body = x->body ? x->body : &empty;
    catalog_handle_t *h;
    filter_t *f = NULL;
    size_t n = 0;
    int rc = req_fields_check(body, fields, "", err);

    const cJSON *exact = cJSON_GetObjectItemCaseSensitive(body, "exact");
    if (rc == ERR_OK && exact != NULL && !cJSON_IsBool(exact) && !cJSON_IsNull(exact))
        rc = err_set(err, ERR_INVALID, "exact: expected a boolean");
    if (rc == ERR_OK)
        rc = api_filter_field(body, &f, err);
    if (rc == ERR_OK && (rc = api_coll_acquire(x, &h, err)) == ERR_OK) {
        rc = coll_count(catalog_handle_coll(h), f, &n, err);
        catalog_release(h);
    }
    filter_free(f);
    if (rc == ERR_OK) {
        *result = cJSON_CreateObject();
        cJSON_AddNumberToObject(*result, "count", (double)n);
    }
    return rc;
}
