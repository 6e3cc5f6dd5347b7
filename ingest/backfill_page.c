/*
 * backfill_page.c - one page of a backfill job (backfill.c explains the
 * design): scroll the source at the cursor, build one insert-only upsert
 * (vectors copied, or embedded from the payload text), attach the new
 * cursor as the op's META so both are durable together, write it to the
 * target, and commit the job's counters.  Points skipped for a permanent
 * reason are dead-lettered (backfill.h) before the write: the cursor in
 * the op moves past them, so their dead letters must be in first.
 */
#include "backfill_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The cursor stored under "backfill/<id>" (backfill.c). */
static char *cursor_text(const bf_job_t *j, bool at_end, const ptid_t *next, uint64_t done,
                         uint64_t skipped)
{
    cJSON *o = cJSON_CreateObject();
    char *s;

    cJSON_AddItemToObject(o, "next", at_end ? cJSON_CreateNull() : ptid_to_json(next));
    cJSON_AddNumberToObject(o, "done", (double)done);
    cJSON_AddNumberToObject(o, "skipped", (double)skipped);
    cJSON_AddNumberToObject(o, "run", j->created);
    s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---- one page ---------------------------------------------------------- */

typedef struct bf_page {
    cJSON *points, *next;       /* from coll_scroll */
    op_t op;
    bf_skip_t *skips;
    size_t n_skips;
    size_t n_read;
} bf_page_t;

static void page_clear(bf_page_t *p)
{
    cJSON_Delete(p->points);
    cJSON_Delete(p->next);
    op_clear(&p->op);
    free(p->skips);
    memset(p, 0, sizeof(*p));
}

/* Skip record rec, the ord-th of the page, for the reason fmt(arg). */
static void page_skip(bf_page_t *p, const cJSON *rec, size_t ord, const char *fmt,
                      const char *arg)
{
    const cJSON *id = cJSON_GetObjectItem(rec, "id");
    ptid_t pid;
    bf_skip_t *s = &p->skips[p->n_skips++];
    s->rec = rec;
    s->ord = ord;
    if (ptid_from_json(id, &pid, NULL) == ERR_OK)
        ptid_format(&pid, s->id, sizeof(s->id));
    else
        snprintf(s->id, sizeof(s->id), "?");
    snprintf(s->reason, sizeof(s->reason), fmt, arg);
}

/* A new point of the op with the record's id and payload. */
static op_point_t *page_point(bf_page_t *p, const cJSON *rec, err_t *err)
{
    op_point_t *pt = op_point_add(&p->op);
    const cJSON *payload = cJSON_GetObjectItem(rec, "payload");

    if (pt == NULL) {
        err_set(err, ERR_NOMEM, "no memory");
        return NULL;
    }
    if (ptid_from_json(cJSON_GetObjectItem(rec, "id"), &pt->id, err) != ERR_OK)
        return NULL;
    if (cJSON_IsObject(payload) && (pt->payload = cJSON_PrintUnformatted(payload)) == NULL) {
        err_set(err, ERR_NOMEM, "no memory");
        return NULL;
    }
    return pt;
}

static int vec_from_json(op_point_t *pt, const char *name, const cJSON *arr, uint32_t dim,
                         err_t *err)
{
    float *buf = malloc((size_t)dim * sizeof(float));
    const cJSON *x;
    uint32_t i = 0;
    int rc;

    if (buf == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(x, arr) buf[i++] = (float)x->valuedouble;
    rc = op_vec_add(pt, name, buf, dim);
    free(buf);
    return rc != ERR_OK ? err_set(err, rc, "no memory") : ERR_OK;
}

/* Copy mode: every vector of the target that the source record has. */
static int page_copy(bf_page_t *p, coll_t *tgt, err_t *err)
{
    uint32_t nt;
    const coll_vector_def_t *td = coll_vectors(tgt, &nt);
    const cJSON *rec;
    int rc;

    cJSON_ArrayForEach(rec, p->points) {
        const cJSON *vec = cJSON_GetObjectItem(rec, "vector");
        op_point_t *pt = page_point(p, rec, err);
        if (pt == NULL)
            return err->code;
        for (uint32_t k = 0; k < nt; k++) {
            const cJSON *arr = cJSON_IsArray(vec) ? (td[k].name[0] == '\0' ? vec : NULL)
                                                  : cJSON_GetObjectItem(vec, td[k].name);
            if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
                continue;
            if ((uint32_t)cJSON_GetArraySize(arr) != td[k].dim)
                return err_set(err, ERR_INVALID, "vector \"%s\": source has %d dimensions, "
                               "target %u", td[k].name, cJSON_GetArraySize(arr), td[k].dim);
            if ((rc = vec_from_json(pt, td[k].name, arr, td[k].dim, err)) != ERR_OK)
                return rc;
        }
    }
    return ERR_OK;
}

/* The text at a (dotted) payload path, or NULL. */
static const char *payload_text(const cJSON *payload, const char *path)
{
    char key[256];
    const cJSON *v = payload;

    while (v != NULL && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, key) : NULL;
        path += n + (path[n] == '.');
    }
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Embed texts one by one after the whole batch was refused: permanent
 * refusals become skips (ok[i] false), a retriable error is returned. */
static int embed_each(embed_model_t *model, const char **texts, size_t n, float *out, bool *ok,
                      const char **why, char (*reasons)[REASON_MAX], err_t *err)
{
    uint32_t dim = embed_model_dim(model);
    err_t e;

    for (size_t i = 0; i < n; i++) {
        ok[i] = embed_texts(model, &texts[i], 1, out + i * dim, &e) == ERR_OK;
        if (!ok[i] && e.retriable) {
            *err = e;
            return e.code;
        }
        if (!ok[i]) {
            snprintf(reasons[i], REASON_MAX, "model refused the text: %.250s", e.msg);
            why[i] = reasons[i];
        }
    }
    return ERR_OK;
}

typedef struct bf_embed_tmp {
    const char **texts;
    const cJSON **recs;
    size_t *pos;                /* recs[i] is the pos[i]-th point of the page */
    float *vecs;
    bool *ok;
    const char **why;
    char (*reasons)[REASON_MAX];
} bf_embed_tmp_t;

static void embed_tmp_free(bf_embed_tmp_t *t)
{
    free(t->texts);
    free(t->recs);
    free(t->pos);
    free(t->vecs);
    free(t->ok);
    free(t->why);
    free(t->reasons);
}

/* Embed mode: payload[field] through the model into the target vector. */
static int page_embed(bf_page_t *p, const bf_def_t *d, embed_model_t *model, err_t *err)
{
    size_t n = (size_t)cJSON_GetArraySize(p->points), k = 0, ord = 0;
    uint32_t dim = embed_model_dim(model);
    bf_embed_tmp_t t = { calloc(n + 1, sizeof(char *)), calloc(n + 1, sizeof(cJSON *)),
                         calloc(n + 1, sizeof(size_t)), calloc(n * dim + 1, sizeof(float)),
                         calloc(n + 1, sizeof(bool)), calloc(n + 1, sizeof(char *)),
                         calloc(n + 1, REASON_MAX) };
    const cJSON *rec;
    int rc = ERR_OK;

    if (!t.texts || !t.recs || !t.pos || !t.vecs || !t.ok || !t.why || !t.reasons) {
        rc = err_set(err, ERR_NOMEM, "no memory");
        goto out;
    }
    cJSON_ArrayForEach(rec, p->points) {
        const char *s = payload_text(cJSON_GetObjectItem(rec, "payload"), d->field);
        if (s == NULL)
            page_skip(p, rec, ord, "no text at payload field \"%s\"", d->field);
        else {
            t.recs[k] = rec;
            t.pos[k] = ord;
            t.texts[k++] = s;
        }
        ord++;
    }
    if (embed_texts(model, t.texts, k, t.vecs, err) == ERR_OK) {
        for (size_t i = 0; i < k; i++)
            t.ok[i] = true;
    } else if (err->retriable) {
        rc = err->code;
        goto out;
    } else if ((rc = embed_each(model, t.texts, k, t.vecs, t.ok, t.why, t.reasons, err)) != ERR_OK)
        goto out;
    for (size_t i = 0; i < k; i++) {
        op_point_t *pt;
        if (!t.ok[i]) {
            page_skip(p, t.recs[i], t.pos[i], "%s", t.why[i]);
            continue;
        }
        if ((pt = page_point(p, t.recs[i], err)) == NULL) {
            rc = err->code;
            goto out;
        }
        if ((rc = op_vec_add(pt, d->vector, t.vecs + i * dim, dim)) != ERR_OK) {
            rc = err_set(err, rc, "no memory");
            goto out;
        }
    }
out:
    embed_tmp_free(&t);
    return rc;
}

/* Read the page at the cursor and build its op (no META yet). */
static int page_build(bf_job_t *j, coll_t *src, coll_t *tgt, bf_page_t *p, err_t *err)
{
    coll_sel_t sel = { .payload = COLL_PAYLOAD_ALL,
                       .vector = j->d.embed ? COLL_VECTOR_NONE : COLL_VECTOR_ALL };
    coll_scroll_req_t q = { .limit = j->d.batch, .sel = &sel };
    embed_model_t *model = NULL;
    int rc;

    pthread_mutex_lock(&j->mu);
    q.has_offset = j->has_next;
    q.offset = j->next;
    pthread_mutex_unlock(&j->mu);
    if ((rc = coll_scroll(src, &q, &p->points, &p->next, err)) != ERR_OK)
        return err_wrap(err, "read %s", j->d.source);
    p->n_read = (size_t)cJSON_GetArraySize(p->points);
    if ((p->skips = calloc(p->n_read + 1, sizeof(*p->skips))) == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    p->op.type = OP_UPSERT;
    p->op.mode = OP_MODE_INSERT_ONLY;
    if (!j->d.embed)
        return page_copy(p, tgt, err);
    if (j->m->reg == NULL)
        return err_set(err, ERR_NOT_FOUND, "model %s: no embedding models on this node",
                       j->d.model);
    if ((rc = embed_model_get(j->m->reg, j->d.model, &model, err)) != ERR_OK)
        return rc;
    return page_embed(p, &j->d, model, err);
}

/* ---- dead letters of skipped points (backfill.h) ------------------------ */

static int skip_cmp(const void *a, const void *b)
{
    const bf_skip_t *x = a, *y = b;
    return (x->ord > y->ord) - (x->ord < y->ord);
}

/* The key (the id as JSON text) and value of skipped point s's dead letter:
 * a point message for the source collection, so an operator can fix the
 * text and produce it again to the topic the target consumes.  New
 * strings, NULL on ERR_NOMEM. */
static int letter_text(const bf_job_t *j, const bf_skip_t *s, char **key, char **val,
                       err_t *err)
{
    const cJSON *id = cJSON_GetObjectItem(s->rec, "id");
    const cJSON *pl = cJSON_GetObjectItem(s->rec, "payload");
    cJSON *o = cJSON_CreateObject();
    bool ok = o != NULL && cJSON_AddStringToObject(o, "collection_name", j->d.source) &&
              cJSON_AddItemToObject(o, "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull()) &&
              cJSON_AddItemToObject(o, "payload", pl ? cJSON_Duplicate(pl, true)
                                                     : cJSON_CreateNull());

    *key = ok && id != NULL ? cJSON_PrintUnformatted(id) : NULL;
    *val = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (*key != NULL && *val != NULL)
        return ERR_OK;
    free(*key);
    free(*val);
    *key = *val = NULL;
    return err_set(err, ERR_NOMEM, "no memory for a dead letter");
}

/* One round of the page's dead letters (manager's dlq_mu held): send one
 * per skip (texts[2i], texts[2i+1]: its key and value, borrowed by the
 * DLQ until dlq_wait returns), wait, and mark the delivered ones.  base:
 * points the job read before this page. */
static int letters_round(bf_job_t *j, bf_page_t *p, uint64_t base, char **texts, err_t *err)
{
    dlq_t *d = j->m->dlq;
    char topic[BACKFILL_ID_MAX + 16];
    size_t *tickets = calloc(p->n_skips, sizeof(*tickets)), sent = 0;
    err_t why, we;
    int rc = ERR_OK, wrc;

    if (tickets == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    snprintf(topic, sizeof(topic), "backfill/%s", j->d.id);
    while (sent < p->n_skips && rc == ERR_OK) {
        const bf_skip_t *s = &p->skips[sent];
        dlq_parts_t parts = { .topic = topic, .partition = -1, .offset = (int64_t)(base + s->ord),
                              .key = texts[2 * sent], .key_len = strlen(texts[2 * sent]),
                              .value = texts[2 * sent + 1],
                              .value_len = strlen(texts[2 * sent + 1]), .timestamp = -1 };
        err_setr(&why, ERR_INVALID, false, "%s", s->reason);
        if ((rc = dlq_send_parts(d, &parts, "TASK_PUT", &why, &tickets[sent], err)) == ERR_OK)
            sent++;
    }
    /* end the round even after a failed send: the queued records borrow texts */
    if ((wrc = dlq_wait(d, &we)) != ERR_OK && rc == ERR_OK) {
        *err = we;
        rc = wrc;
    }
    for (size_t i = 0; i < sent; i++)
        p->skips[i].dead_lettered = dlq_delivered(d, tickets[i]);
    free(tickets);
    return rc;
}

/* Dead-letter the page's skipped points before the page (and the cursor
 * past them) is written; a retriable error when any is neither on the
 * topic nor in the local store, so the page is tried again.  Also gives
 * the DLQ's local store its chance to be forwarded (dlq_forward_local
 * acts only when due): no other thread drives this dlq_t. */
static int page_dead_letter(bf_job_t *j, bf_page_t *p, err_t *err)
{
    backfill_mgr_t *m = j->m;
    char **texts = NULL;
    size_t forwarded;
    uint64_t base;
    int rc = ERR_OK;

    if (m->dlq == NULL)
        return ERR_OK;
    qsort(p->skips, p->n_skips, sizeof(*p->skips), skip_cmp); /* dead letters in page order */
    if (p->n_skips > 0 && (texts = calloc(2 * p->n_skips, sizeof(*texts))) == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    for (size_t i = 0; i < p->n_skips && rc == ERR_OK; i++)
        rc = letter_text(j, &p->skips[i], &texts[2 * i], &texts[2 * i + 1], err);
    pthread_mutex_lock(&j->mu);
    base = j->done + j->skipped; /* only this worker changes them */
    pthread_mutex_unlock(&j->mu);
    pthread_mutex_lock(&m->dlq_mu);
    if (rc == ERR_OK && p->n_skips > 0 && (rc = letters_round(j, p, base, texts, err)) != ERR_OK)
        err_wrap(err, "dead letters of job %s", j->d.id);
    (void)dlq_forward_local(m->dlq, false, &forwarded, NULL); /* logs its own failure */
    pthread_mutex_unlock(&m->dlq_mu);
    for (size_t i = 0; texts != NULL && i < 2 * p->n_skips; i++)
        free(texts[i]);
    free(texts);
    return rc;
}

/* Commit a written page to the job's counters and cursor. */
static void page_commit(bf_job_t *j, const bf_page_t *p, bool at_end, const ptid_t *next,
                        size_t inserted, uint64_t total)
{
    pthread_mutex_lock(&j->mu);
    j->done += p->n_read - p->n_skips;
    j->skipped += p->n_skips;
    j->inserted += inserted;
    j->total = total;
    j->at_end = at_end;
    j->has_next = !at_end;
    if (!at_end)
        j->next = *next;
    for (size_t i = 0; i < p->n_skips; i++)
        backfill_job_error_add(j, p->skips[i].id, p->skips[i].reason, false,
                               p->skips[i].dead_lettered);
    backfill_job_sample(j);
    j->updated = wall_s();
    pthread_mutex_unlock(&j->mu);
}

/* Copy one page; *finished when the source has nothing after it. */
int backfill_page_run(bf_job_t *j, bool *finished, size_t *n_read, err_t *err)
{
    catalog_handle_t *hs = NULL, *ht = NULL;
    bf_page_t p = { 0 };
    coll_write_result_t res = { 0 };
    coll_info_t info;
    char key[BACKFILL_ID_MAX + 16], *cur = NULL;
    ptid_t next = { 0 };
    bool at_end;
    int rc;

    if ((rc = catalog_acquire(j->m->cat, j->d.source, &hs, err)) != ERR_OK ||
        (rc = catalog_acquire(j->m->cat, j->d.target, &ht, err)) != ERR_OK)
        goto out;
    if ((rc = page_build(j, catalog_handle_coll(hs), catalog_handle_coll(ht), &p, err)) != ERR_OK ||
        (rc = page_dead_letter(j, &p, err)) != ERR_OK)
        goto out;
    at_end = p.next == NULL || cJSON_IsNull(p.next);
    if (!at_end && (rc = ptid_from_json(p.next, &next, err)) != ERR_OK)
        goto out;
    pthread_mutex_lock(&j->mu);
    cur = cursor_text(j, at_end, &next, j->done + p.n_read - p.n_skips, j->skipped + p.n_skips);
    pthread_mutex_unlock(&j->mu);
    snprintf(key, sizeof(key), "backfill/%s", j->d.id);
    if (cur == NULL || op_meta_set(&p.op, key, cur) != ERR_OK) {
        rc = err_set(err, ERR_NOMEM, "no memory");
        goto out;
    }
    if ((rc = coll_write(catalog_handle_coll(ht), &p.op, &res, err)) != ERR_OK) {
        err_wrap(err, "write %s", j->d.target);
        goto out;
    }
    coll_info_get(catalog_handle_coll(hs), &info);
    page_commit(j, &p, at_end, &next, res.inserted, info.points);
    *finished = at_end;
    *n_read = p.n_read;
out:
    coll_write_result_clear(&res);
    free(cur);
    page_clear(&p);
    if (hs)
        catalog_release(hs);
    if (ht)
        catalog_release(ht);
    return rc;
}

