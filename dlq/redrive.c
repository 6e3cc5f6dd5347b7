/*
 * redrive.c - list, show, redrive and purge dead letters (contract in
 * redrive.h).
 *
 * Design: every operation is "compute spans, then scan".  A span is one
 * partition of the dead-letter topic with [from, to): from is the tool
 * group's committed offset (or the low watermark), to the high watermark
 * at the start of the call.  scan() assigns the spans by hand and hands
 * each message (borrowed) to a callback until every span is read or the
 * timeout passes.  The producer for redrives is created on first use and
 * flushed before redrive_run returns; delivery reports set each result's
 * "status" (they run inside rd_kafka_flush, on the calling thread).
 */
#include "redrive.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "dlq/dlqlocal.h"
#include "ingest/kconf.h"

#define DEFAULT_TIMEOUT_MS 5000
#define H_PREFIX_CONNECT "__connect.errors."
#define H_PREFIX_VECLOG "__veclog."
#define H_REDRIVE "__veclog.redrive.count"

struct redrive {
    rd_kafka_t *cons;
    rd_kafka_t *prod;              /* NULL until the first redrive */
    char *brokers, *topic;
    char *local_dir;               /* NULL = no local store */
    char **props;
    int timeout_ms;
    int failed;                    /* delivery failures of the current redrive */
    int (*apply)(void *, const char *, const void *, size_t, const void *, size_t, err_t *);
    void *apply_ctx;
    bool apply_busy;               /* an apply failed retriably in the current redrive */
};

typedef struct span {
    int32_t partition;
    int64_t from, to;
} span_t;

typedef int (*scan_fn)(redrive_t *r, const rd_kafka_message_t *m, void *ctx, err_t *err);

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- open / close ------------------------------------------------------- */

static int client_new(redrive_t *r, rd_kafka_type_t type, const char *group, rd_kafka_t **out,
                      err_t *err)
{
    rd_kafka_conf_t *conf;
    char errstr[512];
    int rc = kconf_new(r->brokers, &conf, err);

    if (rc != ERR_OK)
        return rc;
    if ((rc = kconf_set(conf, "client.id", "veclog-dlq-tool", err)) == ERR_OK &&
        (rc = kconf_apply(conf, (const char *const *)r->props, err)) == ERR_OK) {
        if (type == RD_KAFKA_CONSUMER) {
            if ((rc = kconf_set(conf, "group.id", group, err)) == ERR_OK &&
                (rc = kconf_set(conf, "enable.auto.commit", "false", err)) == ERR_OK &&
                (rc = kconf_set(conf, "enable.auto.offset.store", "false", err)) == ERR_OK &&
                (rc = kconf_set(conf, "auto.offset.reset", "earliest", err)) == ERR_OK)
                rc = kconf_set(conf, "enable.partition.eof", "true", err);
        } else if ((rc = kconf_set(conf, "enable.idempotence", "true", err)) == ERR_OK) {
            rc = kconf_set(conf, "acks", "all", err);
        }
    }
    if (rc != ERR_OK) {
        rd_kafka_conf_destroy(conf);
        return err_wrap(err, "dead-letter tool");
    }
    if (type == RD_KAFKA_PRODUCER) {
        rd_kafka_conf_set_opaque(conf, r);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    }
    if ((*out = rd_kafka_new(type, conf, errstr, sizeof(errstr))) == NULL) {
        rd_kafka_conf_destroy(conf);
        return err_set(err, ERR_INVALID, "dead-letter tool: %s", errstr);
    }
    return ERR_OK;
}

void redrive_close(redrive_t *r)
{
    if (r == NULL)
        return;
    if (r->prod != NULL) {
        rd_kafka_flush(r->prod, r->timeout_ms);
        rd_kafka_destroy(r->prod);
    }
    if (r->cons != NULL) {
        rd_kafka_consumer_close(r->cons);
        rd_kafka_destroy(r->cons);
    }
    kconf_props_free(r->props);
    free(r->brokers);
    free(r->topic);
    free(r->local_dir);
    free(r);
}

int redrive_open(const redrive_opts_t *o, redrive_t **out, err_t *err)
{
    redrive_t *r = calloc(1, sizeof(*r));
    char group[512];
    int rc;

    *out = NULL;
    if (r == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    if (o->brokers == NULL || o->brokers[0] == '\0' || o->topic == NULL || o->topic[0] == '\0') {
        free(r);
        return err_set(err, ERR_INVALID, "dead-letter tool: brokers and topic are required");
    }
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    r->brokers = strdup(o->brokers);
    r->topic = strdup(o->topic);
    r->props = kconf_props_copy(o->properties);
    r->local_dir = o->local_dir ? strdup(o->local_dir) : NULL;
    r->apply = o->apply;
    r->apply_ctx = o->apply_ctx;
    if (r->brokers == NULL || r->topic == NULL || r->props == NULL ||
        (o->local_dir != NULL && r->local_dir == NULL)) {
        redrive_close(r);
        return err_set(err, ERR_NOMEM, "no memory");
    }
    snprintf(group, sizeof(group), "%s.dlq-tool", o->group_id ? o->group_id : "veclog");
    if ((rc = client_new(r, RD_KAFKA_CONSUMER, group, &r->cons, err)) != ERR_OK) {
        redrive_close(r);
        return rc;
    }
    *out = r;
    return ERR_OK;
}

int redrive_ref_parse(const char *s, redrive_ref_t *ref, err_t *err)
{
    char *end1, *end2;
    const char *colon = s ? strchr(s, ':') : NULL;

    if (colon == NULL || colon == s || colon[1] == '\0' || s[0] == '-' || colon[1] == '-')
        return err_set(err, ERR_INVALID, "expected PARTITION:OFFSET, got \"%s\"", s ? s : "");
    long p = strtol(s, &end1, 10);
    long long off = strtoll(colon + 1, &end2, 10);
    if (end1 != colon || *end2 != '\0' || p < 0 || p > INT32_MAX || off < 0)
        return err_set(err, ERR_INVALID, "expected PARTITION:OFFSET, got \"%s\"", s);
    ref->partition = (int32_t)p;
    ref->offset = (int64_t)off;
    return ERR_OK;
}

/* ---- spans ---------------------------------------------------------------- */

static int kerr(err_t *err, const char *what, rd_kafka_resp_err_t e)
{
    return err_setr(err, ERR_BUSY, true, "dead-letter topic: %s: %s", what, rd_kafka_err2str(e));
}

/* The partition count of the dead-letter topic (0 when it does not exist). */
static int partitions_get(redrive_t *r, int *n, err_t *err)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(r->cons, r->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e;

    if (t == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    e = rd_kafka_metadata(r->cons, 0, t, &md, r->timeout_ms);
    rd_kafka_topic_destroy(t);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return kerr(err, "metadata", e);
    *n = 0;
    if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
        *n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return ERR_OK;
}

/* Pending spans of every partition, *out malloc'd (*n entries). */
static int spans_get(redrive_t *r, span_t **out, int *n, err_t *err)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t e;
    int rc, np = 0;

    *out = NULL;
    *n = 0;
    if ((rc = partitions_get(r, &np, err)) != ERR_OK || np <= 0)
        return rc;
    l = rd_kafka_topic_partition_list_new(np);
    for (int p = 0; p < np; p++)
        rd_kafka_topic_partition_list_add(l, r->topic, p);
    if ((e = rd_kafka_committed(r->cons, l, r->timeout_ms)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(l);
        return kerr(err, "committed offsets", e);
    }
    span_t *s = calloc((size_t)np, sizeof(*s));
    for (int p = 0; s != NULL && p < np; p++) {
        int64_t lo, hi;
        e = rd_kafka_query_watermark_offsets(r->cons, r->topic, p, &lo, &hi, r->timeout_ms);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = kerr(err, "watermarks", e);
            break;
        }
        int64_t c = l->elems[p].offset;
        s[p] = (span_t){ p, c > lo ? c : lo, hi };
    }
    rd_kafka_topic_partition_list_destroy(l);
    if (s == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    if (rc != ERR_OK) {
        free(s);
        return rc;
    }
    *out = s;
    *n = np;
    return ERR_OK;
}

/* ---- scan ------------------------------------------------------------------- */

static int scan_assign(redrive_t *r, const span_t *s, int n, int *left, err_t *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    rd_kafka_resp_err_t e;

    *left = 0;
    for (int i = 0; i < n; i++)
        if (s[i].from < s[i].to) {
            rd_kafka_topic_partition_list_add(l, r->topic, s[i].partition)->offset = s[i].from;
            (*left)++;
        }
    e = *left > 0 ? rd_kafka_assign(r->cons, l) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(l);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR ? ERR_OK : kerr(err, "assign", e);
}

static int span_index(const span_t *s, int n, int32_t partition)
{
    for (int i = 0; i < n; i++)
        if (s[i].partition == partition)
            return i;
    return -1;
}

/* Read every span [from, to); fn sees each message once, in order per
 * partition.  s[i].from is advanced as messages are read. */
static int scan(redrive_t *r, span_t *s, int n, scan_fn fn, void *ctx, err_t *err)
{
    int left, rc = scan_assign(r, s, n, &left, err);
    int64_t deadline = now_ms() + r->timeout_ms;

    while (rc == ERR_OK && left > 0) {
        if (now_ms() >= deadline) {
            rc = err_setr(err, ERR_TIMEOUT, true, "dead-letter topic %s: read timed out",
                          r->topic);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->cons, 100);
        if (m == NULL)
            continue;
        int i = span_index(s, n, m->partition);
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && i >= 0 && m->offset >= s[i].from &&
            m->offset < s[i].to) {
            rc = fn(r, m, ctx, err);
            s[i].from = m->offset + 1;
            left -= s[i].from >= s[i].to;
        } else if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && i >= 0 && s[i].from < s[i].to) {
            s[i].from = s[i].to; /* records below the high watermark are gone */
            left--;
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
                   m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rc = kerr(err, "read", m->err);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(r->cons, NULL);
    return rc;
}

/* ---- records as JSON ------------------------------------------------------ */

/* Bytes as a JSON string (NUL bytes shown as '.'), or null. */
static cJSON *bytes_json(const void *p, size_t len)
{
    if (p == NULL)
        return cJSON_CreateNull();
    char *s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, p, len);
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\0')
            s[i] = '.';
    s[len] = '\0';
    cJSON *j = cJSON_CreateString(s);
    free(s);
    return j;
}

/* Header value as text into buf ("" when absent); false when absent. */
static bool hdr(const rd_kafka_message_t *m, const char *name, char *buf, size_t cap)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t len;

    buf[0] = '\0';
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return false;
    len = v == NULL ? 0 : len < cap ? len : cap - 1;
    if (len > 0)
        memcpy(buf, v, len);
    buf[len] = '\0';
    return true;
}

static long long hdr_num(const rd_kafka_message_t *m, const char *name, long long dflt)
{
    char buf[32], *end;

    if (!hdr(m, name, buf, sizeof(buf)) || buf[0] == '\0')
        return dflt;
    long long v = strtoll(buf, &end, 10);
    return *end == '\0' ? v : dflt;
}

static cJSON *entry_json(const rd_kafka_message_t *m)
{
    cJSON *o = cJSON_CreateObject(), *orig;
    char buf[1024];
    rd_kafka_timestamp_type_t tst;
    int64_t ts = rd_kafka_message_timestamp(m, &tst);

    cJSON_AddNumberToObject(o, "partition", m->partition);
    cJSON_AddNumberToObject(o, "offset", (double)m->offset);
    if (tst == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
        cJSON_AddNullToObject(o, "timestamp");
    else
        cJSON_AddNumberToObject(o, "timestamp", (double)ts);
    orig = cJSON_AddObjectToObject(o, "original");
    if (hdr(m, "__connect.errors.topic", buf, sizeof(buf)))
        cJSON_AddStringToObject(orig, "topic", buf);
    else
        cJSON_AddNullToObject(orig, "topic");
    cJSON_AddNumberToObject(orig, "partition", (double)hdr_num(m, "__connect.errors.partition", -1));
    cJSON_AddNumberToObject(orig, "offset", (double)hdr_num(m, "__connect.errors.offset", -1));
    hdr(m, "__connect.errors.stage", buf, sizeof(buf));
    cJSON_AddStringToObject(o, "stage", buf);
    if (!hdr(m, "__connect.errors.exception.class.name", buf, sizeof(buf)))
        snprintf(buf, sizeof(buf), "unknown");
    cJSON_AddStringToObject(o, "class_name", buf);
    hdr(m, "__connect.errors.exception.message", buf, sizeof(buf));
    cJSON_AddStringToObject(o, "message", buf);
    cJSON_AddNumberToObject(o, "redrive_count", (double)hdr_num(m, H_REDRIVE, 0));
    cJSON_AddItemToObject(o, "key", bytes_json(m->key, m->key_len));
    return o;
}

/* ---- list ------------------------------------------------------------------ */

static int list_cb(redrive_t *r, const rd_kafka_message_t *m, void *ctx, err_t *err)
{
    cJSON *doc = ctx, *e = entry_json(m);
    cJSON *counts = cJSON_GetObjectItem(doc, "counts");
    const char *cls = cJSON_GetObjectItem(e, "class_name")->valuestring;
    cJSON *c = cJSON_GetObjectItemCaseSensitive(counts, cls);

    (void)r;
    (void)err;
    if (c == NULL)
        cJSON_AddNumberToObject(counts, cls, 1);
    else
        cJSON_SetNumberValue(c, c->valuedouble + 1);
    cJSON_AddItemToArray(cJSON_GetObjectItem(doc, "dead_letters"), e);
    return ERR_OK;
}

int redrive_list(redrive_t *r, cJSON **out, err_t *err)
{
    span_t *s;
    int n, rc = spans_get(r, &s, &n, err);
    cJSON *doc;

    *out = NULL;
    if (rc != ERR_OK)
        return rc;
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "topic", r->topic);
    cJSON_AddArrayToObject(doc, "dead_letters");
    cJSON_AddObjectToObject(doc, "counts");
    rc = scan(r, s, n, list_cb, doc, err);
    free(s);
    if (rc != ERR_OK) {
        cJSON_Delete(doc);
        return rc;
    }
    cJSON_AddNumberToObject(doc, "total", cJSON_GetArraySize(cJSON_GetObjectItem(doc, "dead_letters")));
    if (r->local_dir != NULL) {
        cJSON *local = dlqlocal_list_json(r->local_dir);
        if (local == NULL) {
            cJSON_Delete(doc);
            return err_set(err, ERR_NOMEM, "no memory");
        }
        int records = 0;
        cJSON *it;
        cJSON_ArrayForEach(it, local)
            records += cJSON_GetObjectItem(it, "error") == NULL;
        cJSON_AddItemToObject(doc, "local", local);
        cJSON_AddNumberToObject(doc, "local_total", records);
    }
    *out = doc;
    return ERR_OK;
}

/* ---- show --------------------------------------------------------------------- */

static int show_cb(redrive_t *r, const rd_kafka_message_t *m, void *ctx, err_t *err)
{
    cJSON **res = ctx, *hs;
    rd_kafka_headers_t *h;
    const char *name;
    const void *v;
    size_t len;

    (void)r;
    (void)err;
    *res = entry_json(m);
    cJSON_AddItemToObject(*res, "value", bytes_json(m->payload, m->len));
    hs = cJSON_AddArrayToObject(*res, "headers");
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return ERR_OK;
    for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddItemToObject(o, "value", bytes_json(v, len));
        cJSON_AddItemToArray(hs, o);
    }
    return ERR_OK;
}

/* Read the single record ref (purged or not) into fn. */
static int read_one(redrive_t *r, const redrive_ref_t *ref, scan_fn fn, void *ctx, bool *found,
                    err_t *err)
{
    int64_t lo, hi;
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(r->cons, r->topic, ref->partition,
                                                             &lo, &hi, r->timeout_ms);
    *found = false;
    if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF || e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
        e == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION || e == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
        (e == RD_KAFKA_RESP_ERR_NO_ERROR && (ref->offset < lo || ref->offset >= hi)))
        return err_set(err, ERR_NOT_FOUND, "dead letter %" PRId32 ":%" PRId64 " is not in %s",
                       ref->partition, ref->offset, r->topic);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return kerr(err, "watermarks", e);
    span_t s = { ref->partition, ref->offset, ref->offset + 1 };
    int rc = scan(r, &s, 1, fn, ctx, err);
    *found = rc == ERR_OK;
    return rc;
}

int redrive_show(redrive_t *r, const redrive_ref_t *ref, cJSON **out, err_t *err)
{
    bool found;
    *out = NULL;
    int rc = read_one(r, ref, show_cb, out, &found, err);
    if (rc == ERR_OK && *out == NULL) /* compacted away */
        return err_set(err, ERR_NOT_FOUND, "dead letter %" PRId32 ":%" PRId64 " is not in %s",
                       ref->partition, ref->offset, r->topic);
    return rc;
}

/* ---- redrive --------------------------------------------------------------------- */

typedef struct run {
    const redrive_req_t *q;
    cJSON *doc;
} run_t;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    redrive_t *r = opaque;
    cJSON *entry = m->_private;

    (void)rk;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        r->failed++;
    cJSON_ReplaceItemInObject(entry, "status",
                              cJSON_CreateString(m->err ? rd_kafka_err2str(m->err) : "delivered"));
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static rd_kafka_headers_t *redrive_headers(const rd_kafka_message_t *m, long long count)
{
    rd_kafka_headers_t *orig, *h = rd_kafka_headers_new(8);
    const char *name;
    const void *v;
    size_t len;
    char num[32];

    if (rd_kafka_message_headers(m, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR)
        for (size_t i = 0; rd_kafka_header_get_all(orig, i, &name, &v, &len) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR; i++)
            if (!has_prefix(name, H_PREFIX_CONNECT) && !has_prefix(name, H_PREFIX_VECLOG))
                rd_kafka_header_add(h, name, -1, v, (ssize_t)len);
    snprintf(num, sizeof(num), "%lld", count + 1);
    rd_kafka_header_add(h, H_REDRIVE, -1, num, -1);
    return h;
}

/* Why m must not be redriven, or NULL. */
static const char *skip_reason(const run_t *x, const rd_kafka_message_t *m, char *buf, size_t cap)
{
    int max = x->q->max_redrives > 0 ? x->q->max_redrives : REDRIVE_DEFAULT_MAX;
    long long count = hdr_num(m, H_REDRIVE, 0);
    char tmp[8];

    if (!hdr(m, "__connect.errors.topic", buf, cap) || buf[0] == '\0' ||
        hdr_num(m, "__connect.errors.partition", -1) < 0)
        return "no original topic and partition (__connect.errors.topic/partition)";
    if (hdr(m, "__veclog.value.omitted", tmp, sizeof(tmp)))
        return "the value was omitted from the dead letter (too large)";
    if (count >= max && !x->q->force && x->q->mode == REDRIVE_PRODUCE) {
        snprintf(buf, cap, "loop guard: redrive count %lld >= max %d (use force)", count, max);
        return buf;
    }
    return NULL;
}

/* REDRIVE_APPLY of one dead letter: its status is the outcome. */
static int run_apply(redrive_t *r, const rd_kafka_message_t *m, const char *topic, cJSON *e)
{
    err_t ae;
    int rc;

    err_clear(&ae);
    rc = r->apply(r->apply_ctx, topic, m->key, m->key_len, m->payload, m->len, &ae);
    if (rc != ERR_OK) {
        r->failed++;
        r->apply_busy |= ae.retriable;
    }
    cJSON_ReplaceItemInObject(e, "status", cJSON_CreateString(rc == ERR_OK ? "applied" : ae.msg));
    return ERR_OK;
}

static int run_cb(redrive_t *r, const rd_kafka_message_t *m, void *ctx, err_t *err)
{
    run_t *x = ctx;
    char buf[600], topic[600];
    const char *why = skip_reason(x, m, buf, sizeof(buf));
    cJSON *e = entry_json(m);
    rd_kafka_timestamp_type_t tst;
    int64_t ts = rd_kafka_message_timestamp(m, &tst);

    if (why != NULL) {
        cJSON_AddStringToObject(e, "reason", why);
        cJSON_AddItemToArray(cJSON_GetObjectItem(x->doc, "skipped"), e);
        return ERR_OK;
    }
    snprintf(topic, sizeof(topic), "%s", buf);
    cJSON_AddStringToObject(e, "status", x->q->dry_run ? "dry_run" : "queued");
    cJSON_AddItemToArray(cJSON_GetObjectItem(x->doc, "redriven"), e);
    if (x->q->dry_run)
        return ERR_OK;
    if (x->q->mode == REDRIVE_APPLY)
        return run_apply(r, m, topic, e);
    rd_kafka_headers_t *h = redrive_headers(m, hdr_num(m, H_REDRIVE, 0));
    rd_kafka_resp_err_t ke = rd_kafka_producev(
        r->prod, RD_KAFKA_V_TOPIC(topic),
        RD_KAFKA_V_PARTITION((int32_t)hdr_num(m, "__connect.errors.partition", 0)),
        RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_TIMESTAMP(tst == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? 0 : ts),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(e), RD_KAFKA_V_END);
    if (ke != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h);
        r->failed++;
        cJSON_ReplaceItemInObject(e, "status", cJSON_CreateString(rd_kafka_err2str(ke)));
    }
    (void)err;
    return ERR_OK;
}

/* Named refs: all must exist before anything is sent. */
static int run_refs(redrive_t *r, run_t *x, err_t *err)
{
    for (size_t pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < x->q->n_refs; i++) {
            cJSON *probe = NULL;
            bool found;
            int rc = pass == 0 ? redrive_show(r, &x->q->refs[i], &probe, err)
                               : read_one(r, &x->q->refs[i], run_cb, x, &found, err);
            cJSON_Delete(probe);
            if (rc != ERR_OK)
                return rc;
        }
    }
    return ERR_OK;
}

int redrive_run(redrive_t *r, const redrive_req_t *q, cJSON **out, err_t *err)
{
    run_t x = { q, cJSON_CreateObject() };
    int rc = ERR_OK;

    *out = NULL;
    if (q->mode == REDRIVE_APPLY && r->apply == NULL && !q->dry_run)
        rc = err_set(err, ERR_UNSUPPORTED, "redrive mode apply needs the storage: run it on "
                     "the server (POST /dlq/redrive) or with the server stopped");
    else if (q->mode == REDRIVE_PRODUCE && !q->dry_run && r->prod == NULL)
        rc = client_new(r, RD_KAFKA_PRODUCER, NULL, &r->prod, err);
    cJSON_AddStringToObject(x.doc, "mode", q->mode == REDRIVE_APPLY ? "apply" : "produce");
    cJSON_AddBoolToObject(x.doc, "dry_run", q->dry_run);
    cJSON_AddArrayToObject(x.doc, "redriven");
    cJSON_AddArrayToObject(x.doc, "skipped");
    r->failed = 0;
    r->apply_busy = false;
    if (rc == ERR_OK && q->all) {
        span_t *s;
        int n;
        if ((rc = spans_get(r, &s, &n, err)) == ERR_OK)
            rc = scan(r, s, n, run_cb, &x, err);
        free(s);
    } else if (rc == ERR_OK) {
        rc = run_refs(r, &x, err);
    }
    if (r->prod != NULL && rd_kafka_flush(r->prod, r->timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
        r->failed += rd_kafka_outq_len(r->prod);
    cJSON_AddNumberToObject(x.doc, "failed", r->failed);
    if (rc == ERR_OK && r->failed > 0 && (q->mode == REDRIVE_PRODUCE || r->apply_busy))
        rc = err_setr(err, ERR_BUSY, true, "%d dead letters could not be redriven", r->failed);
    if (rc != ERR_OK && rc != ERR_BUSY) {
        cJSON_Delete(x.doc);
        return rc;
    }
    *out = x.doc;
    return rc;
}

/* ---- purge ------------------------------------------------------------------- */

int redrive_purge(redrive_t *r, const redrive_ref_t *until, cJSON **out, err_t *err)
{
    span_t *s;
    int n, rc = spans_get(r, &s, &n, err);
    rd_kafka_topic_partition_list_t *l;
    double total = 0;

    *out = NULL;
    if (rc != ERR_OK)
        return rc;
    int u = until ? span_index(s, n, until->partition) : -1;
    if (until != NULL && (u < 0 || until->offset >= s[u].to)) {
        free(s);
        return err_set(err, ERR_INVALID, "until: %" PRId32 ":%" PRId64 " is past the end of %s",
                       until->partition, until->offset, r->topic);
    }
    cJSON *doc = cJSON_CreateObject(), *parts = cJSON_AddArrayToObject(doc, "partitions");
    l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    for (int i = 0; i < n; i++) {
        int64_t to = until == NULL ? s[i].to : i == u ? until->offset + 1 : s[i].from;
        if (to <= s[i].from)
            continue;
        rd_kafka_topic_partition_list_add(l, r->topic, s[i].partition)->offset = to;
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "partition", s[i].partition);
        cJSON_AddNumberToObject(p, "from", (double)s[i].from);
        cJSON_AddNumberToObject(p, "to", (double)to);
        cJSON_AddItemToArray(parts, p);
        total += (double)(to - s[i].from);
    }
    free(s);
    rd_kafka_resp_err_t e = l->cnt > 0 ? rd_kafka_commit(r->cons, l, 0) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        cJSON_Delete(doc);
        return kerr(err, "commit", e);
    }
    cJSON_AddNumberToObject(doc, "purged", total);
    *out = doc;
    return ERR_OK;
}
