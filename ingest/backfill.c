/*
 * backfill.c - backfill jobs (backfill.h): copy a source collection into a
 * target one, re-embedding a payload text field or copying vectors.
 *
 * DESIGN
 * One worker thread per running job reads the source in id order (scroll
 * pages of batch_size points starting at the cursor) and writes each page
 * to the target as ONE OP_UPSERT op in mode OP_MODE_INSERT_ONLY.
 *
 * Cursor atomicity.  The op carries a META pair (op.h)
 *   "backfill/<id>" -> {"next": <id of the next point to read | null when
 *                       done>, "done": n, "skipped": n,
 *                       "run": <created timestamp of the job>}
 * which the store keeps in the same atomic write as the op's points.  So
 * after a crash the cursor in the TARGET covers exactly the points that
 * reached it: a restart resumes at "next" (coll_meta_get), never copies a
 * page twice into the counters and never leaves a hole.  "run" tells a
 * cursor of this job from one left by an older job of the same id.
 *
 * Insert-only.  A page only inserts points that the target does not know:
 * a point that live traffic (dual writes) already wrote is newer than the
 * source copy and is kept (outcome skipped), so running a job again from
 * the start changes nothing.  The store also refuses to insert over a
 * TOMBSTONE: a delete that reached the target before the backfill copied
 * that point sticks, instead of being undone by the stale copy.
 *
 * Embed mode.  Texts of a page are embedded with embed_texts in one call.
 * A point without a string at "field", or whose text the model refuses
 * permanently (ERR_INVALID), is skipped and reported as an error of the
 * job (its id and the reason) and, with a dead-letter queue, sent to it
 * before the page is written (backfill.h, backfill_page.c); a retriable
 * embedder, dead-letter or store error (the model server is down, the
 * dead-letter topic and local store refuse, the disk is full) is
 * recorded and the same page is retried with exponential backoff while the job stays running.  Any
 * other error fails the job (resume retries it).
 *
 * Control.  pause / resume / cancel change the state under the job's
 * mutex and wake the worker, which checks it between pages (a page in
 * flight completes).  Control calls are serialized by the manager's ctl
 * mutex; the job list by its mu; a worker takes its job's mutex, and the
 * manager's dlq_mu (never while holding the job's) for its dead letters.
 *
 * JOBS FILE  <storage_path>/jobs/<id>.json, replaced atomically (temp
 * file, fsync, rename, fsync directory) on every state change:
 *   {"format": 1, "job": {definition as given to POST /backfill, with
 *    defaults filled}, "state": "running" | "paused" | "completed" |
 *    "cancelled" | "failed", "created": s, "started": s, "updated": s,
 *    "reason": "why it failed" (failed only)}
 * At open, running jobs restart from their target's cursor; others stay.
 */
#include "backfill.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backfill_internal.h"
#include "store/log.h"
#include "store/req.h"

static const char *const state_names[] = { "running", "paused", "completed", "cancelled",
                                           "failed" };

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- definitions ------------------------------------------------------- */

static void def_clear(bf_def_t *d)
{
    free(d->source);
    free(d->target);
    free(d->field);
    free(d->model);
    free(d->vector);
    memset(d, 0, sizeof(*d));
}

static bool id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > BACKFILL_ID_MAX || s[0] == '.')
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return true;
}

/* Optional string field (NULL when absent); ERR_INVALID when not a string. */
static int str_field(const cJSON *o, const char *key, char **out, err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = NULL;
    if (v == NULL || cJSON_IsNull(v))
        return ERR_OK;
    if (!cJSON_IsString(v))
        return err_set(err, ERR_INVALID, "%s: expected a string", key);
    if ((*out = strdup(v->valuestring)) == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    return ERR_OK;
}

static int num_field(const cJSON *o, const char *key, double dflt, double min, double max,
                     bool integer, double *out, err_t *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    *out = dflt;
    if (v == NULL || cJSON_IsNull(v))
        return ERR_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > max ||
        (integer && v->valuedouble != floor(v->valuedouble)))
        return err_set(err, ERR_INVALID, "%s: expected %s %g..%g", key,
                       integer ? "an integer" : "a number", min, max);
    *out = v->valuedouble;
    return ERR_OK;
}

static int def_modes(const cJSON *o, bf_def_t *d, err_t *err)
{
    char *mode = NULL;
    int rc = str_field(o, "mode", &mode, err);

    if (rc != ERR_OK)
        return rc;
    if (mode != NULL && strcmp(mode, "copy") != 0 && strcmp(mode, "embed") != 0)
        rc = err_set(err, ERR_INVALID, "mode: expected \"copy\" or \"embed\"");
    d->embed = mode ? strcmp(mode, "embed") == 0 : d->model != NULL;
    free(mode);
    if (rc != ERR_OK)
        return rc;
    if (d->embed && (d->field == NULL || d->field[0] == '\0'))
        return err_set(err, ERR_INVALID, "field: required in embed mode (the payload key of "
                                         "the text)");
    if (d->embed && (d->model == NULL || d->model[0] == '\0'))
        return err_set(err, ERR_INVALID, "model: required in embed mode");
    if (!d->embed && (d->field || d->model || d->vector))
        return err_set(err, ERR_INVALID, "%s: only in embed mode",
                       d->field ? "field" : d->model ? "model" : "vector");
    if (d->embed && d->vector == NULL && (d->vector = strdup("")) == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    return ERR_OK;
}

/* Parse and check a definition (no collection lookups). */
static int def_parse(const cJSON *o, bf_def_t *d, err_t *err)
{
    static const char *const fields[] = { "id", "source", "target", "mode", "field", "model",
                                          "vector", "batch_size", "rate_limit", NULL };
    char *id = NULL;
    double batch = 0;
    int rc;

    memset(d, 0, sizeof(*d));
    if (!cJSON_IsObject(o))
        return err_set(err, ERR_INVALID, "body: expected an object");
    if ((rc = req_fields_check(o, fields, "", err)) != ERR_OK ||
        (rc = str_field(o, "id", &id, err)) != ERR_OK ||
        (rc = str_field(o, "source", &d->source, err)) != ERR_OK ||
        (rc = str_field(o, "target", &d->target, err)) != ERR_OK ||
        (rc = str_field(o, "field", &d->field, err)) != ERR_OK ||
        (rc = str_field(o, "model", &d->model, err)) != ERR_OK ||
        (rc = str_field(o, "vector", &d->vector, err)) != ERR_OK ||
        (rc = num_field(o, "batch_size", BACKFILL_BATCH_DEFAULT, 1, BACKFILL_BATCH_MAX, true,
                        &batch, err)) != ERR_OK ||
        (rc = num_field(o, "rate_limit", 0, 0, 1e9, false, &d->rate, err)) != ERR_OK)
        goto out;
    d->batch = (uint32_t)batch;
    if (d->source == NULL || d->source[0] == '\0' || d->target == NULL || d->target[0] == '\0') {
        rc = err_set(err, ERR_INVALID, "%s: required", d->source ? "target" : "source");
        goto out;
    }
    if (strcmp(d->source, d->target) == 0) {
        rc = err_set(err, ERR_INVALID, "target: must differ from source");
        goto out;
    }
    if (!id_ok(id ? id : d->target)) {
        rc = err_set(err, ERR_INVALID, "id: expected 1..%d characters of [A-Za-z0-9_.-], not "
                     "starting with '.'", BACKFILL_ID_MAX);
        goto out;
    }
    snprintf(d->id, sizeof(d->id), "%s", id ? id : d->target);
    rc = def_modes(o, d, err);
out:
    free(id);
    if (rc != ERR_OK)
        def_clear(d);
    return rc;
}

static cJSON *def_json(const bf_def_t *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", d->id);
    cJSON_AddStringToObject(o, "source", d->source);
    cJSON_AddStringToObject(o, "target", d->target);
    cJSON_AddStringToObject(o, "mode", d->embed ? "embed" : "copy");
    if (d->embed) {
        cJSON_AddStringToObject(o, "field", d->field);
        cJSON_AddStringToObject(o, "model", d->model);
        cJSON_AddStringToObject(o, "vector", d->vector);
    }
    cJSON_AddNumberToObject(o, "batch_size", d->batch);
    cJSON_AddNumberToObject(o, "rate_limit", d->rate);
    return o;
}

static const coll_vector_def_t *vdef_find(const coll_vector_def_t *defs, uint32_t n,
                                          const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

/* The checks that need the collections and the model. */
static int def_check_colls(backfill_mgr_t *m, const bf_def_t *d, err_t *err)
{
    catalog_handle_t *hs = NULL, *ht = NULL;
    const coll_vector_def_t *sd, *td, *v;
    uint32_t ns, nt;
    int rc;

    if ((rc = catalog_acquire(m->cat, d->source, &hs, err)) != ERR_OK ||
        (rc = catalog_acquire(m->cat, d->target, &ht, err)) != ERR_OK)
        goto out;
    sd = coll_vectors(catalog_handle_coll(hs), &ns);
    td = coll_vectors(catalog_handle_coll(ht), &nt);
    if (d->embed) {
        embed_model_t *model;
        if (m->reg == NULL)
            rc = err_set(err, ERR_NOT_FOUND, "model: no embedding models on this node");
        else if ((rc = embed_model_get(m->reg, d->model, &model, err)) != ERR_OK)
            err_wrap(err, "model");
        else if ((v = vdef_find(td, nt, d->vector)) == NULL)
            rc = err_set(err, ERR_INVALID, "vector: target collection %s has no vector \"%s\"",
                         d->target, d->vector);
        else if (v->dim != embed_model_dim(model))
            rc = err_set(err, ERR_INVALID, "model: %s gives %u dimensions, target vector \"%s\" "
                         "has %u", d->model, embed_model_dim(model), d->vector, v->dim);
        goto out;
    }
    for (uint32_t i = 0; i < nt; i++)
        if ((v = vdef_find(sd, ns, td[i].name)) != NULL && v->dim != td[i].dim) {
            rc = err_set(err, ERR_INVALID, "target: vector \"%s\" has %u dimensions in %s and "
                         "%u in %s", td[i].name, td[i].dim, d->target, v->dim, d->source);
            goto out;
        }
out:
    if (hs)
        catalog_release(hs);
    if (ht)
        catalog_release(ht);
    return rc;
}

/* ---- status ------------------------------------------------------------ */

/* Record an error (job mutex held). */
void backfill_job_error_add(bf_job_t *j, const char *id, const char *reason, bool retriable,
                            bool dead_lettered)
{
    bf_error_t *e = &j->last[j->n_last % BACKFILL_ERRORS_KEPT];
    snprintf(e->id, sizeof(e->id), "%s", id ? id : "");
    snprintf(e->reason, sizeof(e->reason), "%.290s", reason);
    e->retriable = retriable;
    e->dead_lettered = dead_lettered;
    e->time = wall_s();
    j->n_last++;
    j->errors++;
}

/* Points/s over the last RATE_WINDOW seconds (job mutex held). */
static double job_rate(const bf_job_t *j)
{
    double now = mono_s();
    size_t n = j->n_samp < RATE_SAMPLES ? j->n_samp : RATE_SAMPLES;
    if (n < 2 || j->state != ST_RUNNING)
        return 0;
    size_t newest = (j->n_samp - 1) % RATE_SAMPLES, oldest = newest;
    for (size_t k = 1; k < n; k++) {
        size_t i = (j->n_samp - 1 - k) % RATE_SAMPLES;
        if (now - j->samp_t[i] > RATE_WINDOW)
            break;
        oldest = i;
    }
    double dt = now - j->samp_t[oldest];
    if (oldest == newest || dt <= 0 || now - j->samp_t[newest] > RATE_WINDOW)
        return 0;
    return (double)(j->samp_n[newest] - j->samp_n[oldest]) / dt;
}

void backfill_job_sample(bf_job_t *j)
{
    size_t i = j->n_samp % RATE_SAMPLES;
    j->samp_t[i] = mono_s();
    j->samp_n[i] = j->done + j->skipped;
    j->n_samp++;
}

static cJSON *errors_json(const bf_job_t *j)
{
    cJSON *o = cJSON_CreateObject(), *last = cJSON_AddArrayToObject(o, "last");
    size_t n = j->n_last < BACKFILL_ERRORS_KEPT ? j->n_last : BACKFILL_ERRORS_KEPT;

    cJSON_AddNumberToObject(o, "count", (double)j->errors);
    for (size_t k = 0; k < n; k++) { /* newest first */
        const bf_error_t *e = &j->last[(j->n_last - 1 - k) % BACKFILL_ERRORS_KEPT];
        cJSON *x = cJSON_CreateObject();
        if (e->id[0])
            cJSON_AddStringToObject(x, "id", e->id);
        else
            cJSON_AddNullToObject(x, "id");
        cJSON_AddStringToObject(x, "reason", e->reason);
        cJSON_AddBoolToObject(x, "retriable", e->retriable);
        cJSON_AddBoolToObject(x, "dead_lettered", e->dead_lettered);
        cJSON_AddNumberToObject(x, "time", e->time);
        cJSON_AddItemToArray(last, x);
    }
    return o;
}

/* The status document (job mutex held). */
static cJSON *job_status_json(const bf_job_t *j)
{
    cJSON *o = def_json(&j->d);
    uint64_t seen = j->done + j->skipped;
    uint64_t total = j->total > seen ? j->total : seen;
    double rate = job_rate(j);
    double pct = j->state == ST_COMPLETED ? 100 : total ? 100.0 * (double)seen / (double)total : 0;

    cJSON_AddStringToObject(o, "state", state_names[j->state]);
    if (j->state == ST_FAILED)
        cJSON_AddStringToObject(o, "reason", j->reason);
    cJSON_AddNumberToObject(o, "done", (double)j->done);
    cJSON_AddNumberToObject(o, "skipped", (double)j->skipped);
    cJSON_AddNumberToObject(o, "inserted", (double)j->inserted);
    cJSON_AddNumberToObject(o, "total", (double)(j->state == ST_COMPLETED ? seen : total));
    cJSON_AddNumberToObject(o, "percent", floor(pct * 10) / 10);
    cJSON_AddNumberToObject(o, "rate", floor(rate * 10) / 10);
    if (j->state == ST_RUNNING && rate > 0)
        cJSON_AddNumberToObject(o, "eta_seconds", ceil((double)(total - seen) / rate));
    else
        cJSON_AddNullToObject(o, "eta_seconds");
    if (j->at_end || !j->has_next)
        cJSON_AddNullToObject(o, "next");
    else
        cJSON_AddItemToObject(o, "next", ptid_to_json(&j->next));
    cJSON_AddItemToObject(o, "errors", errors_json(j));
    cJSON_AddNumberToObject(o, "created", j->created);
    cJSON_AddNumberToObject(o, "started", j->started);
    cJSON_AddNumberToObject(o, "updated", j->updated);
    return o;
}

/* ---- the jobs file ----------------------------------------------------- */

static int write_atomic(const char *dir, const char *name, const char *text, err_t *err)
{
    char path[4096], tmp[4200];
    int fd = -1, rc = ERR_OK, e;
    size_t len = strlen(text);

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        rc = err_errno(err, errno, "create %s", tmp);
        goto out;
    }
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
        e = errno;
        rc = err_errno(err, e ? e : EIO, "write %s", tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = err_errno(err, errno, "rename %s", tmp);
        goto out;
    }
    close(fd);
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
        fsync(fd);
out:
    if (fd >= 0)
        close(fd);
    if (rc != ERR_OK)
        unlink(tmp);
    return rc;
}

/* Persist the job's definition and state (job mutex held). */
static int job_save(bf_job_t *j, err_t *err)
{
    cJSON *o = cJSON_CreateObject();
    char name[BACKFILL_ID_MAX + 8], *text = NULL;
    int rc;

    j->updated = wall_s();
    cJSON_AddNumberToObject(o, "format", 1);
    cJSON_AddItemToObject(o, "job", def_json(&j->d));
    cJSON_AddStringToObject(o, "state", state_names[j->state]);
    cJSON_AddNumberToObject(o, "created", j->created);
    cJSON_AddNumberToObject(o, "started", j->started);
    cJSON_AddNumberToObject(o, "updated", j->updated);
    if (j->state == ST_FAILED)
        cJSON_AddStringToObject(o, "reason", j->reason);
    if ((text = cJSON_Print(o)) == NULL) {
        rc = err_set(err, ERR_NOMEM, "no memory");
        goto out;
    }
    snprintf(name, sizeof(name), "%s.json", j->d.id);
    rc = write_atomic(j->m->dir, name, text, err);
out:
    free(text);
    cJSON_Delete(o);
    return rc;
}

/* Save, logging a failure (the in-memory state stays authoritative). */
static void job_save_log(bf_job_t *j)
{
    err_t err;
    if (job_save(j, &err) != ERR_OK)
        log_error("backfill", "job %s: saving state: %s", j->d.id, err.msg);
}

static bf_job_t *job_new(backfill_mgr_t *m, bf_def_t *d)
{
    bf_job_t *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return NULL;
    j->d = *d; /* takes the strings */
    memset(d, 0, sizeof(*d));
    j->m = m;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->created = j->started = j->updated = wall_s();
    return j;
}

static void job_free(bf_job_t *j)
{
    if (j == NULL)
        return;
    def_clear(&j->d);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* ---- cursor ------------------------------------------------------------ */

/* Load the cursor this job left in its target, if any (no lock needed:
 * called before the worker starts). */
static void cursor_load(bf_job_t *j)
{
    catalog_handle_t *h;
    char key[BACKFILL_ID_MAX + 16], *val = NULL;
    cJSON *o = NULL;
    const cJSON *run, *next;

    if (catalog_acquire(j->m->cat, j->d.target, &h, NULL) != ERR_OK)
        return;
    snprintf(key, sizeof(key), "backfill/%s", j->d.id);
    if (coll_meta_get(catalog_handle_coll(h), key, &val, NULL) == ERR_OK &&
        (o = cJSON_Parse(val)) != NULL && cJSON_IsNumber(run = cJSON_GetObjectItem(o, "run")) &&
        run->valuedouble == j->created) {
        next = cJSON_GetObjectItem(o, "next");
        j->at_end = cJSON_IsNull(next);
        j->has_next = !j->at_end && ptid_from_json(next, &j->next, NULL) == ERR_OK;
        j->done = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "done"));
        j->skipped = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "skipped"));
    }
    cJSON_Delete(o);
    free(val);
    catalog_release(h);
}

/* ---- the worker -------------------------------------------------------- */

/* Sleep up to ms, waking early on stop or a state change (job mutex
 * held). */
static void job_sleep_locked(bf_job_t *j, double ms)
{
    struct timespec ts;
    int state = j->state;

    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = ts.tv_nsec + (long long)(ms * 1e6);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    while (!j->stop && j->state == state)
        if (pthread_cond_timedwait(&j->cv, &j->mu, &ts) != 0)
            break;
}

/* Wait while paused; false when the worker must exit (job mutex held). */
static bool job_wait_running(bf_job_t *j, double *rl_t0, uint64_t *rl_n)
{
    bool was_paused = false;
    while (j->state == ST_PAUSED && !j->stop) {
        was_paused = true;
        pthread_cond_wait(&j->cv, &j->mu);
    }
    if (was_paused) { /* the rate limit restarts after a pause */
        *rl_t0 = mono_s();
        *rl_n = 0;
    }
    return !j->stop && j->state == ST_RUNNING;
}

/* After a page: finish, or sleep for the rate limit (job mutex held). */
static bool job_after_page(bf_job_t *j, bool finished, double rl_t0, uint64_t rl_n)
{
    if (finished) {
        if (j->state == ST_RUNNING) {
            j->state = ST_COMPLETED;
            job_save_log(j);
            log_info("backfill", "job %s completed: %llu copied, %llu skipped", j->d.id,
                     (unsigned long long)j->done, (unsigned long long)j->skipped);
        }
        pthread_cond_broadcast(&j->cv);
        return false;
    }
    if (j->d.rate > 0) {
        double ahead = (double)rl_n / j->d.rate - (mono_s() - rl_t0);
        if (ahead > 0)
            job_sleep_locked(j, ahead * 1000);
    }
    return true;
}

/* A failed page: retry a retriable error after a backoff, else fail the
 * job (job mutex held).  Returns false when the worker must exit. */
static bool job_page_failed(bf_job_t *j, const err_t *err, double *backoff_ms)
{
    backfill_job_error_add(j, NULL, err->msg, err->retriable, false);
    if (err->retriable) {
        log_warn("backfill", "job %s: %s (retrying in %.0f ms)", j->d.id, err->msg, *backoff_ms);
        job_sleep_locked(j, *backoff_ms);
        *backoff_ms = fmin(*backoff_ms * 2, (double)j->m->retry_max);
        return true;
    }
    if (j->state == ST_RUNNING && !j->stop) {
        j->state = ST_FAILED;
        snprintf(j->reason, sizeof(j->reason), "%.290s", err->msg);
        job_save_log(j);
        log_error("backfill", "job %s failed: %s", j->d.id, err->msg);
        pthread_cond_broadcast(&j->cv);
    }
    return false;
}

/* The source's point count, before the first page (job mutex held). */
static void job_total_refresh(bf_job_t *j)
{
    catalog_handle_t *h;
    coll_info_t info;

    if (catalog_acquire(j->m->cat, j->d.source, &h, NULL) != ERR_OK)
        return;
    coll_info_get(catalog_handle_coll(h), &info);
    catalog_release(h);
    j->total = info.points;
}

static void *job_worker(void *arg)
{
    bf_job_t *j = arg;
    double backoff = j->m->retry_min, rl_t0 = mono_s();
    uint64_t rl_n = 0;
    bool go = true;

    pthread_mutex_lock(&j->mu);
    backfill_job_sample(j);
    while (go && job_wait_running(j, &rl_t0, &rl_n)) {
        bool finished = false;
        size_t n = 0;
        err_t err;
        pthread_mutex_unlock(&j->mu);
        err_clear(&err);
        int rc = backfill_page_run(j, &finished, &n, &err);
        pthread_mutex_lock(&j->mu);
        if (rc == ERR_OK) {
            backoff = j->m->retry_min;
            rl_n += n;
            go = job_after_page(j, finished, rl_t0, rl_n);
        } else {
            go = job_page_failed(j, &err, &backoff);
        }
    }
    j->th_exited = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* Start the worker (ctl held; no worker alive). */
static int job_start(bf_job_t *j, err_t *err)
{
    int e;
    if (j->th_started) {
        pthread_join(j->th, NULL);
        j->th_started = false;
    }
    pthread_mutex_lock(&j->mu);
    job_total_refresh(j);
    j->th_exited = false;
    j->stop = false;
    pthread_mutex_unlock(&j->mu);
    if ((e = pthread_create(&j->th, NULL, job_worker, j)) != 0)
        return err_errno(err, e, "backfill %s: start worker", j->d.id);
    j->th_started = true;
    return ERR_OK;
}

/* Stop and join the worker (ctl held; job mutex not held). */
static void job_join(bf_job_t *j)
{
    if (!j->th_started)
        return;
    pthread_mutex_lock(&j->mu);
    j->stop = true;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->th, NULL);
    j->th_started = false;
}

/* ---- the manager ------------------------------------------------------- */

static bf_job_t *job_find_locked(backfill_mgr_t *m, const char *id)
{
    for (size_t i = 0; i < m->n_jobs; i++)
        if (strcmp(m->jobs[i]->d.id, id) == 0)
            return m->jobs[i];
    return NULL;
}

static int job_add(backfill_mgr_t *m, bf_job_t *j, err_t *err)
{
    pthread_mutex_lock(&m->mu);
    bf_job_t **nj = realloc(m->jobs, (m->n_jobs + 1) * sizeof(*nj));
    if (nj != NULL) {
        m->jobs = nj;
        nj[m->n_jobs++] = j;
    }
    pthread_mutex_unlock(&m->mu);
    return nj ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

static void job_remove(backfill_mgr_t *m, bf_job_t *j)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_jobs; i++)
        if (m->jobs[i] == j) {
            memmove(&m->jobs[i], &m->jobs[i + 1], (m->n_jobs - i - 1) * sizeof(*m->jobs));
            m->n_jobs--;
            break;
        }
    pthread_mutex_unlock(&m->mu);
}

static int state_parse(const char *s)
{
    for (int i = 0; i <= ST_FAILED; i++)
        if (s != NULL && strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

/* Load one jobs file and start it if it was running. */
static int job_load(backfill_mgr_t *m, const char *path, err_t *err)
{
    FILE *f = fopen(path, "r");
    char *text = NULL;
    size_t cap = 0;
    cJSON *o = NULL;
    bf_def_t d;
    bf_job_t *j = NULL;
    int rc, st;

    if (f == NULL)
        return err_errno(err, errno, "open %s", path);
    ssize_t n = getdelim(&text, &cap, '\0', f);
    fclose(f);
    if (n <= 0 || (o = cJSON_Parse(text)) == NULL) {
        rc = err_set(err, ERR_CORRUPT, "%s: not JSON", path);
        goto out;
    }
    if ((rc = def_parse(cJSON_GetObjectItem(o, "job"), &d, err)) != ERR_OK)
        goto out;
    if ((st = state_parse(cJSON_GetStringValue(cJSON_GetObjectItem(o, "state")))) < 0 ||
        (j = job_new(m, &d)) == NULL) {
        def_clear(&d);
        rc = err_set(err, st < 0 ? ERR_CORRUPT : ERR_NOMEM, "%s: bad state", path);
        goto out;
    }
    j->state = st;
    j->created = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "created"));
    j->started = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "started"));
    j->updated = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "updated"));
    snprintf(j->reason, sizeof(j->reason), "%s",
             cJSON_GetStringValue(cJSON_GetObjectItem(o, "reason")) ?: "");
    cursor_load(j);
    if ((rc = job_add(m, j, err)) != ERR_OK) {
        job_free(j);
        goto out;
    }
    if (st == ST_RUNNING) {
        log_info("backfill", "job %s: resuming at %llu points", j->d.id,
                 (unsigned long long)(j->done + j->skipped));
        j->started = wall_s();
        rc = job_start(j, err);
    }
out:
    cJSON_Delete(o);
    free(text);
    return rc;
}

static void jobs_load(backfill_mgr_t *m)
{
    DIR *dir = opendir(m->dir);
    struct dirent *de;
    char path[4400];
    err_t err;

    while (dir != NULL && (de = readdir(dir)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0 || de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", m->dir, de->d_name);
        if (job_load(m, path, &err) != ERR_OK)
            log_error("backfill", "job file %s skipped: %s", path, err.msg);
    }
    if (dir != NULL)
        closedir(dir);
}

int backfill_mgr_open(const backfill_opts_t *opts, backfill_mgr_t **out, err_t *err)
{
    backfill_mgr_t *m = calloc(1, sizeof(*m));
    int rc = ERR_OK;

    *out = NULL;
    if (m == NULL || asprintf(&m->dir, "%s/jobs", opts->storage_path) < 0) {
        free(m);
        return err_set(err, ERR_NOMEM, "no memory");
    }
    m->cat = opts->cat;
    m->reg = opts->reg;
    m->dlq = opts->dlq;
    m->retry_min = opts->retry_min_ms ? opts->retry_min_ms : 200;
    m->retry_max = opts->retry_max_ms ? opts->retry_max_ms : 10000;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->ctl, NULL);
    pthread_mutex_init(&m->dlq_mu, NULL);
    if (mkdir(m->dir, 0755) != 0 && errno != EEXIST) {
        rc = err_errno(err, errno, "create %s", m->dir);
        backfill_mgr_close(m);
        return rc;
    }
    pthread_mutex_lock(&m->ctl);
    jobs_load(m);
    pthread_mutex_unlock(&m->ctl);
    *out = m;
    return ERR_OK;
}

void backfill_mgr_close(backfill_mgr_t *m)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->ctl);
    for (size_t i = 0; i < m->n_jobs; i++)
        job_join(m->jobs[i]);
    for (size_t i = 0; i < m->n_jobs; i++)
        job_free(m->jobs[i]);
    pthread_mutex_unlock(&m->ctl);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->ctl);
    pthread_mutex_destroy(&m->dlq_mu);
    free(m->jobs);
    free(m->dir);
    free(m);
}

int backfill_job_create(backfill_mgr_t *m, const cJSON *def, cJSON **out, err_t *err)
{
    bf_def_t d;
    bf_job_t *j = NULL;
    int rc;

    *out = NULL;
    if ((rc = def_parse(def, &d, err)) != ERR_OK)
        return rc;
    pthread_mutex_lock(&m->ctl);
    pthread_mutex_lock(&m->mu);
    bool taken = job_find_locked(m, d.id) != NULL;
    pthread_mutex_unlock(&m->mu);
    if (taken)
        rc = err_set(err, ERR_EXISTS, "backfill job %s already exists", d.id);
    else if ((rc = def_check_colls(m, &d, err)) == ERR_OK && (j = job_new(m, &d)) == NULL)
        rc = err_set(err, ERR_NOMEM, "no memory");
    if (rc != ERR_OK)
        goto out;
    pthread_mutex_lock(&j->mu);
    rc = job_save(j, err);
    pthread_mutex_unlock(&j->mu);
    if (rc != ERR_OK || (rc = job_add(m, j, err)) != ERR_OK) {
        job_free(j);
        goto out;
    }
    log_info("backfill", "job %s created: %s -> %s (%s)", j->d.id, j->d.source, j->d.target,
             j->d.embed ? j->d.model : "copy");
    if ((rc = job_start(j, err)) != ERR_OK) {
        pthread_mutex_lock(&j->mu);
        j->state = ST_FAILED;
        snprintf(j->reason, sizeof(j->reason), "%.290s", err->msg);
        job_save_log(j);
        pthread_mutex_unlock(&j->mu);
        goto out;
    }
    pthread_mutex_lock(&j->mu);
    *out = job_status_json(j);
    pthread_mutex_unlock(&j->mu);
out:
    pthread_mutex_unlock(&m->ctl);
    def_clear(&d);
    return rc;
}

int backfill_job_status(backfill_mgr_t *m, const char *id, cJSON **out, err_t *err)
{
    bf_job_t *j;

    pthread_mutex_lock(&m->mu);
    if ((j = job_find_locked(m, id)) != NULL) {
        pthread_mutex_lock(&j->mu);
        *out = job_status_json(j);
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&m->mu);
    if (j == NULL)
        return err_set(err, ERR_NOT_FOUND, "backfill job %s does not exist", id);
    return *out ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

int backfill_job_list(backfill_mgr_t *m, cJSON **out, err_t *err)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "jobs");

    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; arr && i < m->n_jobs; i++) {
        pthread_mutex_lock(&m->jobs[i]->mu);
        cJSON_AddItemToArray(arr, job_status_json(m->jobs[i]));
        pthread_mutex_unlock(&m->jobs[i]->mu);
    }
    pthread_mutex_unlock(&m->mu);
    *out = o;
    return arr ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

/* pause / resume / cancel (ctl held). */
static int job_set_state(bf_job_t *j, const char *action, err_t *err)
{
    bool pause = strcmp(action, "pause") == 0, resume = strcmp(action, "resume") == 0;
    int rc = ERR_OK, from, to = pause ? ST_PAUSED : resume ? ST_RUNNING : ST_CANCELLED;

    pthread_mutex_lock(&j->mu);
    from = j->state;
    bool ok = pause ? from == ST_RUNNING
              : resume ? from == ST_PAUSED || from == ST_FAILED
                       : from == ST_RUNNING || from == ST_PAUSED;
    if (!ok) {
        pthread_mutex_unlock(&j->mu);
        return err_set(err, ERR_EXISTS, "backfill job %s is %s: cannot %s it", j->d.id,
                       state_names[from], action);
    }
    j->state = to;
    if (resume)
        j->started = wall_s();
    rc = job_save(j, err);
    if (rc != ERR_OK)
        j->state = from;
    bool start = rc == ERR_OK && resume && (!j->th_started || j->th_exited);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    if (rc == ERR_OK)
        log_info("backfill", "job %s: %s", j->d.id, state_names[to]);
    return start ? job_start(j, err) : rc;
}

int backfill_job_control(backfill_mgr_t *m, const char *id, const char *action, cJSON **out,
                         err_t *err)
{
    bf_job_t *j;
    char path[4400];
    int rc = ERR_OK;

    *out = NULL;
    if (strcmp(action, "pause") != 0 && strcmp(action, "resume") != 0 &&
        strcmp(action, "cancel") != 0 && strcmp(action, "delete") != 0)
        return err_set(err, ERR_INVALID, "action: expected pause, resume, cancel or delete");
    pthread_mutex_lock(&m->ctl);
    pthread_mutex_lock(&m->mu);
    j = job_find_locked(m, id);
    pthread_mutex_unlock(&m->mu);
    if (j == NULL) {
        rc = err_set(err, ERR_NOT_FOUND, "backfill job %s does not exist", id);
    } else if (strcmp(action, "delete") != 0) {
        if ((rc = job_set_state(j, action, err)) == ERR_OK) {
            pthread_mutex_lock(&j->mu);
            *out = job_status_json(j);
            pthread_mutex_unlock(&j->mu);
        }
    } else if (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) == ST_RUNNING) {
        rc = err_set(err, ERR_EXISTS, "backfill job %s is running: pause or cancel it first", id);
    } else {
        job_join(j); /* a paused worker waits: stop it */
        job_remove(m, j);
        snprintf(path, sizeof(path), "%s/%s.json", m->dir, j->d.id);
        if (unlink(path) != 0 && errno != ENOENT)
            log_warn("backfill", "remove %s: %s", path, strerror(errno));
        job_free(j);
        *out = cJSON_CreateObject();
        cJSON_AddBoolToObject(*out, "deleted", true);
    }
    pthread_mutex_unlock(&m->ctl);
    return rc;
}

int backfill_job_wait(backfill_mgr_t *m, const char *id, int timeout_ms, err_t *err)
{
    double end = mono_s() + timeout_ms / 1000.0;

    for (;;) {
        bf_job_t *j;
        int st = -1;
        pthread_mutex_lock(&m->mu);
        if ((j = job_find_locked(m, id)) != NULL) {
            pthread_mutex_lock(&j->mu);
            st = j->state;
            pthread_mutex_unlock(&j->mu);
        }
        pthread_mutex_unlock(&m->mu);
        if (j == NULL)
            return err_set(err, ERR_NOT_FOUND, "backfill job %s does not exist", id);
        if (st != ST_RUNNING)
            return ERR_OK;
        if (mono_s() >= end)
            return err_set(err, ERR_TIMEOUT, "backfill job %s still running", id);
        usleep(10000);
    }
}

char *backfill_mgr_metrics_text(backfill_mgr_t *m)
{
    static const char *const heads =
        "# HELP veclog_backfill_points_total Points a backfill job has copied (its cursor)\n"
        "# TYPE veclog_backfill_points_total counter\n"
        "# HELP veclog_backfill_errors_total Errors of a backfill job (skipped points, retries)\n"
        "# TYPE veclog_backfill_errors_total counter\n"
        "# HELP veclog_backfill_total_points Points of the job's source collection\n"
        "# TYPE veclog_backfill_total_points gauge\n"
        "# HELP veclog_backfill_running 1 while the backfill job is running\n"
        "# TYPE veclog_backfill_running gauge\n";
    char *buf = NULL;
    size_t cap = 0;
    FILE *f = open_memstream(&buf, &cap);

    if (f == NULL)
        return NULL;
    fputs(heads, f);
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_jobs; i++) {
        bf_job_t *j = m->jobs[i];
        pthread_mutex_lock(&j->mu);
        fprintf(f,
                "veclog_backfill_points_total{job=\"%s\"} %llu\n"
                "veclog_backfill_errors_total{job=\"%s\"} %llu\n"
                "veclog_backfill_total_points{job=\"%s\"} %llu\n"
                "veclog_backfill_running{job=\"%s\"} %d\n",
                j->d.id, (unsigned long long)j->done, j->d.id, (unsigned long long)j->errors,
                j->d.id, (unsigned long long)j->total, j->d.id, j->state == ST_RUNNING);
        pthread_mutex_unlock(&j->mu);
    }
    pthread_mutex_unlock(&m->mu);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
