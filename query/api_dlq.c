/*
 * api_dlq.c - the dead-letter endpoints: GET /dlq, GET
 * /dlq/{partition}/{offset}, POST /dlq/redrive, POST /dlq/purge.
 *
 * query/ does not include dlq/: the work is done through the hooks main
 * wires (api_set_dlq); this file only validates requests (400 naming the
 * field) and answers 404 when the hooks are not set (ingest not running).
 */
#include "api_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/req.h"

#define MAX_REFS 10000

static const api_dlq_hooks_t *dlq_hooks(const api_t *a, err_t *err)
{
    const api_dlq_hooks_t *hk = __atomic_load_n(&a->dlq, __ATOMIC_ACQUIRE);
    if (hk == NULL)
        err_set(err, ERR_NOT_FOUND, "Kafka ingest is not running on this node");
    return hk;
}

/* "P:O" (non-negative decimals). */
static bool ref_parse(const char *s, api_dlq_ref_t *ref)
{
    char *end1, *end2;
    const char *colon = strchr(s, ':');

    if (colon == NULL || colon == s || colon[1] == '\0' || s[0] == '-' || colon[1] == '-')
        return false;
    long p = strtol(s, &end1, 10);
    long long o = strtoll(colon + 1, &end2, 10);
    if (end1 != colon || *end2 != '\0' || p < 0 || p > INT32_MAX || o < 0)
        return false;
    ref->partition = (int32_t)p;
    ref->offset = (int64_t)o;
    return true;
}

static int bool_field(const cJSON *body, const char *key, bool *out, err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (v == NULL || cJSON_IsNull(v))
        return ERR_OK;
    if (!cJSON_IsBool(v))
        return err_set(err, ERR_INVALID, "%s: expected true or false", key);
    *out = cJSON_IsTrue(v);
    return ERR_OK;
}

int api_dlq_list(api_ctx_t *x, cJSON **result, err_t *err)
{
    const api_dlq_hooks_t *hk = dlq_hooks(x->a, err);
    return hk ? hk->list(hk->ctx, result, err) : ERR_NOT_FOUND;
}

int api_dlq_show(api_ctx_t *x, cJSON **result, err_t *err)
{
    const api_dlq_hooks_t *hk = dlq_hooks(x->a, err);
    char buf[1100];
    api_dlq_ref_t ref;

    if (hk == NULL)
        return ERR_NOT_FOUND;
    snprintf(buf, sizeof(buf), "%s:%s", x->args[0], x->args[1]);
    if (!ref_parse(buf, &ref))
        return err_set(err, ERR_INVALID, "partition, offset: expected non-negative integers");
    return hk->show(hk->ctx, &ref, result, err);
}

static int refs_field(const cJSON *body, api_dlq_ref_t **refs, size_t *n, err_t *err)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "records"), *it;
    size_t i = 0;

    *refs = NULL;
    *n = 0;
    if (arr == NULL || cJSON_IsNull(arr))
        return ERR_OK;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0 ||
        cJSON_GetArraySize(arr) > MAX_REFS)
        return err_set(err, ERR_INVALID, "records: expected 1..%d strings \"PARTITION:OFFSET\"",
                       MAX_REFS);
    if ((*refs = calloc((size_t)cJSON_GetArraySize(arr), sizeof(**refs))) == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsString(it) || !ref_parse(it->valuestring, &(*refs)[i])) {
            free(*refs);
            *refs = NULL;
            return err_set(err, ERR_INVALID, "records[%zu]: expected \"PARTITION:OFFSET\"", i);
        }
        i++;
    }
    *n = i;
    return ERR_OK;
}

/* "mode": "produce" (the default) or "apply". */
static int mode_field(const cJSON *body, bool *apply, err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "mode");

    if (v == NULL || cJSON_IsNull(v))
        return ERR_OK;
    if (!cJSON_IsString(v) ||
        (strcmp(v->valuestring, "produce") != 0 && strcmp(v->valuestring, "apply") != 0))
        return err_set(err, ERR_INVALID, "mode: expected \"produce\" or \"apply\"");
    *apply = strcmp(v->valuestring, "apply") == 0;
    return ERR_OK;
}

int api_dlq_redrive(api_ctx_t *x, cJSON **result, err_t *err)
{
    static const char *const fields[] = { "records", "all", "dry_run", "max_redrives", "force",
                                          "mode", NULL };
    const api_dlq_hooks_t *hk = dlq_hooks(x->a, err);
    api_dlq_redrive_t q = { 0 };
    api_dlq_ref_t *refs = NULL;
    size_t max = 0;
    int rc;

    if (hk == NULL)
        return ERR_NOT_FOUND;
    if (!cJSON_IsObject(x->body))
        return err_set(err, ERR_INVALID, "body: expected an object");
    if ((rc = req_fields_check(x->body, fields, "", err)) != ERR_OK ||
        (rc = bool_field(x->body, "all", &q.all, err)) != ERR_OK ||
        (rc = bool_field(x->body, "dry_run", &q.dry_run, err)) != ERR_OK ||
        (rc = bool_field(x->body, "force", &q.force, err)) != ERR_OK ||
        (rc = api_uint_field(x->body, "max_redrives", 0, 1, &max, err)) != ERR_OK ||
        (rc = mode_field(x->body, &q.apply, err)) != ERR_OK ||
        (rc = refs_field(x->body, &refs, &q.n_refs, err)) != ERR_OK)
        return rc;
    if (max > 1000000) {
        free(refs);
        return err_set(err, ERR_INVALID, "max_redrives: expected an integer 1..1000000");
    }
    if (q.all == (q.n_refs > 0)) {
        free(refs);
        return err_set(err, ERR_INVALID, "records, all: give either \"records\" or \"all\": true");
    }
    q.refs = refs;
    q.max_redrives = (int)max;
    rc = hk->redrive(hk->ctx, &q, result, err);
    free(refs);
    return rc;
}

int api_dlq_purge(api_ctx_t *x, cJSON **result, err_t *err)
{
    static const char *const fields[] = { "all", "until", NULL };
    const api_dlq_hooks_t *hk = dlq_hooks(x->a, err);
    const cJSON *until;
    api_dlq_ref_t ref;
    bool all = false;
    int rc;

    if (hk == NULL)
        return ERR_NOT_FOUND;
    if (!cJSON_IsObject(x->body))
        return err_set(err, ERR_INVALID, "body: expected an object");
    if ((rc = req_fields_check(x->body, fields, "", err)) != ERR_OK ||
        (rc = bool_field(x->body, "all", &all, err)) != ERR_OK)
        return rc;
    until = cJSON_GetObjectItemCaseSensitive(x->body, "until");
    if (until != NULL && (!cJSON_IsString(until) || !ref_parse(until->valuestring, &ref)))
        return err_set(err, ERR_INVALID, "until: expected \"PARTITION:OFFSET\"");
    if (all == (until != NULL))
        return err_set(err, ERR_INVALID, "all, until: give either \"all\": true or \"until\"");
    return hk->purge(hk->ctx, all ? NULL : &ref, result, err);
}
