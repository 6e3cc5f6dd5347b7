/*
 * api_jobs.c - the backfill job endpoints (ingest/backfill.h):
 *
 *   POST   /backfill                 create and start a job (409 if the id exists)
 *   GET    /backfill                 {"jobs": [status, ...]}
 *   GET    /backfill/{id}            status with progress
 *   POST   /backfill/{id}/pause|resume|cancel
 *   DELETE /backfill/{id}            only when the job is not running
 *
 * query/ does not include ingest/: the work is done through the hooks main
 * wires (api_set_backfill); this file validates the body (400 naming an
 * unknown field or a wrong type) and answers 404 "backfill is not
 * available" when the hooks are not set.
 */
#include "api_internal.h"

#include <stdlib.h>
#include <string.h>

#include "store/req.h"

static const api_backfill_hooks_t *jobs_hooks(const api_t *a, err_t *err)
{
    const api_backfill_hooks_t *hk = __atomic_load_n(&a->backfill, __ATOMIC_ACQUIRE);
    if (hk == NULL)
        err_set(err, ERR_NOT_FOUND, "backfill is not available");
    return hk;
}

void api_set_backfill(api_t *a, const api_backfill_hooks_t *hooks)
{
    api_backfill_hooks_t *copy = malloc(sizeof(*copy));
    if (copy == NULL)
        return;
    *copy = *hooks;
    __atomic_store_n(&a->backfill, copy, __ATOMIC_RELEASE);
}

void api_jobs_free(api_t *a)
{
    free(a->backfill);
    a->backfill = NULL;
}

char *api_jobs_metrics(api_t *a)
{
    const api_backfill_hooks_t *hk = __atomic_load_n(&a->backfill, __ATOMIC_ACQUIRE);
    return hk && hk->metrics ? hk->metrics(hk->ctx) : NULL;
}

/* Field names and JSON types of a job definition. */
static int def_check(const cJSON *body, err_t *err)
{
    static const char *const fields[] = { "id", "source", "target", "mode", "field", "model",
                                          "vector", "batch_size", "rate_limit", NULL };
    static const char *const strs[] = { "id", "source", "target", "mode", "field", "model",
                                        "vector", NULL };
    int rc;

    if (!cJSON_IsObject(body))
        return err_set(err, ERR_INVALID, "body: expected an object");
    if ((rc = req_fields_check(body, fields, "", err)) != ERR_OK)
        return rc;
    for (const char *const *k = strs; *k; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, *k);
        if (v != NULL && !cJSON_IsNull(v) && !cJSON_IsString(v))
            return err_set(err, ERR_INVALID, "%s: expected a string", *k);
    }
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "source")))
        return err_set(err, ERR_INVALID, "source: required (the collection to copy)");
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "target")))
        return err_set(err, ERR_INVALID, "target: required (the collection to fill)");
    return ERR_OK;
}

int api_jobs_create(api_ctx_t *x, cJSON **result, err_t *err)
{
    const api_backfill_hooks_t *hk = jobs_hooks(x->a, err);
    int rc;

    if (hk == NULL)
        return ERR_NOT_FOUND;
    if ((rc = def_check(x->body, err)) != ERR_OK)
        return rc;
    return hk->create(hk->ctx, x->body, result, err);
}

int api_jobs_list(api_ctx_t *x, cJSON **result, err_t *err)
{
    const api_backfill_hooks_t *hk = jobs_hooks(x->a, err);
    return hk ? hk->list(hk->ctx, result, err) : ERR_NOT_FOUND;
}

int api_jobs_get(api_ctx_t *x, cJSON **result, err_t *err)
{
    const api_backfill_hooks_t *hk = jobs_hooks(x->a, err);
    return hk ? hk->status(hk->ctx, x->args[0], result, err) : ERR_NOT_FOUND;
}

static int control(api_ctx_t *x, const char *action, cJSON **result, err_t *err)
{
    const api_backfill_hooks_t *hk = jobs_hooks(x->a, err);
    return hk ? hk->control(hk->ctx, x->args[0], action, result, err) : ERR_NOT_FOUND;
}

int api_jobs_delete(api_ctx_t *x, cJSON **result, err_t *err)
{
    return control(x, "delete", result, err);
}

int api_jobs_pause(api_ctx_t *x, cJSON **result, err_t *err)
{
    return control(x, "pause", result, err);
}

int api_jobs_resume(api_ctx_t *x, cJSON **result, err_t *err)
{
    return control(x, "resume", result, err);
}

int api_jobs_cancel(api_ctx_t *x, cJSON **result, err_t *err)
{
    return control(x, "cancel", result, err);
}
