/*
 * dlq.c - the dead-letter producer; what a dead letter holds and the
 * delivery contract are in dlq.h.
 *
 * Rounds: records of the current round live in d->recs; each produced
 * record carries (round << 32 | index) as its opaque, so a delivery
 * report that arrives after its round was given up (dlq_wait timed out)
 * cannot mark a record of a later round.  A record not queued (dlq_send)
 * or failed at the end of its round (dlq_wait) goes to the local store
 * when there is one (store_local; dlq.h LOCAL STORE).  A record holds its
 * source as dlq_parts_t whether it came from a consumed message (dlq_send
 * copies the message's header list into an array of its own) or from
 * parts (dlq_send_parts), so producing, the headers, the local store and
 * the too-large retry are one code path; the same headers_build serves
 * records forwarded from the local store.  The producer is recreated after
 * a fatal error (an idempotent producer can raise one, e.g. when the
 * brokers lose its state), so one bad moment does not wedge the DLQ.
 */
#include "dlq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dlq/dlqlocal.h"
#include "ingest/kconf.h"
#include "store/log.h"

_Static_assert(sizeof(uintptr_t) >= 8, "record tags need 64-bit pointers");

#define DEFAULT_TIMEOUT_MS 10000
#define WAIT_MARGIN_MS 5000
#define H_REDRIVE "__veclog.redrive.count"
#define H_OMITTED "__veclog.value.omitted"
#define FORWARD_RETRY_MS 60000   /* local store: next forwarding attempt after a failure */

enum { REC_PENDING, REC_OK, REC_FAILED, REC_LOCAL };

/* One dead letter of the current round: the source record's fields (from
 * a consumed message in dlq_send, from the caller's parts in
 * dlq_send_parts), all borrowed until dlq_wait returns, so that produce,
 * headers_build and store_local have one code path for both. */
typedef struct rec {
    dlq_parts_t src;
    dlqlocal_hdr_t *own_hdrs;        /* dlq_send: src.headers, the message's (array owned,
                                      * names and values borrowed from it) */
    char stage[24];
    err_t why;
    int state;
    rd_kafka_resp_err_t err;         /* when REC_FAILED */
    bool omit_value;
} rec_t;

struct dlq {
    rd_kafka_t *rk;
    char *brokers, *topic;
    char **props;                    /* NULL-terminated name, value pairs */
    int timeout_ms;
    bool fatal;                      /* recreate the producer before the next send */
    rec_t *recs;
    size_t n, cap;
    uint32_t round;
    bool round_done;                 /* dlq_wait ended the round: the next send starts one */
    dlqlocal_t *local;               /* NULL without a local store */
    bool local_pending;              /* closed local files may wait to be forwarded */
    int64_t forward_at;              /* next forwarding attempt (monotonic ms) */
    atomic_ullong delivered, failed, omitted, stored_local, forwarded;
};

static void recs_release(dlq_t *d);

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    dlq_t *d = opaque;
    uintptr_t tag = (uintptr_t)m->_private;
    uint32_t round = (uint32_t)(tag >> 32);
    size_t idx = (size_t)(tag & 0xffffffffu);

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        atomic_fetch_add(&d->delivered, 1);
    else
        atomic_fetch_add(&d->failed, 1);
    if (round != d->round || d->round_done || idx >= d->n)
        return; /* a round already given up */
    d->recs[idx].state = m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? REC_OK : REC_FAILED;
    d->recs[idx].err = m->err;
}

/* An idempotent acks=all producer to the dead-letter brokers whose
 * delivery reports go to dr(opaque). */
static int client_new(const dlq_t *d, const char *client_id,
                      void (*dr)(rd_kafka_t *, const rd_kafka_message_t *, void *), void *opaque,
                      rd_kafka_t **out, err_t *err)
{
    rd_kafka_conf_t *conf;
    char errstr[512], tmo[16];
    int rc = kconf_new(d->brokers, &conf, err);

    if (rc != ERR_OK)
        return rc;
    snprintf(tmo, sizeof(tmo), "%d", d->timeout_ms);
    if ((rc = kconf_set(conf, "client.id", client_id, err)) == ERR_OK &&
        (rc = kconf_set(conf, "linger.ms", "5", err)) == ERR_OK &&
        (rc = kconf_apply(conf, (const char *const *)d->props, err)) == ERR_OK &&
        (rc = kconf_set(conf, "enable.idempotence", "true", err)) == ERR_OK &&
        (rc = kconf_set(conf, "acks", "all", err)) == ERR_OK)
        rc = kconf_set(conf, "message.timeout.ms", tmo, err);
    if (rc != ERR_OK) {
        rd_kafka_conf_destroy(conf);
        return err_wrap(err, "dead-letter producer");
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr);
    rd_kafka_conf_set_opaque(conf, opaque);
    if ((*out = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) == NULL) {
        rd_kafka_conf_destroy(conf);
        return err_set(err, ERR_INVALID, "dead-letter producer: %s", errstr);
    }
    return ERR_OK;
}

static int producer_new(dlq_t *d, err_t *err)
{
    int rc = client_new(d, "veclog-dlq", on_delivery, d, &d->rk, err);
    if (rc == ERR_OK)
        d->fatal = false;
    return rc;
}

void dlq_close(dlq_t *d)
{
    if (d == NULL)
        return;
    if (d->rk != NULL) {
        if (rd_kafka_flush(d->rk, d->timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
            log_warn("dlq", "closing with %d dead letters still in flight",
                     rd_kafka_outq_len(d->rk));
        rd_kafka_destroy(d->rk);
    }
    dlqlocal_close(d->local);
    kconf_props_free(d->props);
    recs_release(d);
    free(d->recs);
    free(d->brokers);
    free(d->topic);
    free(d);
}

int dlq_open(const dlq_opts_t *o, dlq_t **out, err_t *err)
{
    dlq_t *d = calloc(1, sizeof(*d));
    int rc;

    *out = NULL;
    if (d == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    if (o->brokers == NULL || o->topic == NULL || o->topic[0] == '\0') {
        free(d);
        return err_set(err, ERR_INVALID, "dead-letter queue: brokers and topic are required");
    }
    d->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    d->brokers = strdup(o->brokers);
    d->topic = strdup(o->topic);
    d->props = kconf_props_copy(o->properties);
    d->round_done = true;
    if (d->brokers == NULL || d->topic == NULL || d->props == NULL) {
        dlq_close(d);
        return err_set(err, ERR_NOMEM, "no memory");
    }
    if ((o->local_dir != NULL && (rc = dlqlocal_open(o->local_dir, &d->local, err)) != ERR_OK) ||
        (rc = producer_new(d, err)) != ERR_OK) {
        dlq_close(d);
        return rc;
    }
    d->local_pending = d->local != NULL; /* files of an earlier run: try at the first tick */
    d->forward_at = now_ms();
    *out = d;
    return ERR_OK;
}

/* ---- one record ------------------------------------------------------- */

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* The redrive count among the source's headers (the last H_REDRIVE, as
 * redrive.c sets it when it sends a dead letter back to its topic), or -1
 * when there is none or it is not a count. */
static long long redrive_count(const dlqlocal_hdr_t *hs, size_t n)
{
    long long count = -1;

    for (size_t i = 0; i < n; i++) {
        const dlqlocal_hdr_t *x = &hs[i];
        char buf[24], *end;
        if (strcmp(x->name, H_REDRIVE) != 0)
            continue;
        count = -1; /* the last one counts, readable or not */
        if (x->value == NULL || x->len == 0 || x->len >= sizeof(buf))
            continue;
        memcpy(buf, x->value, x->len);
        buf[x->len] = '\0';
        long long v = strtoll(buf, &end, 10);
        count = *end == '\0' && v >= 0 ? v : -1;
    }
    return count;
}

static void hdr_str(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_add(h, name, -1, value, -1);
}

/* The Connect error headers and the redrive count (dlq.h) onto h.  How
 * often the message was redriven already: redrive (redrive.c) raises the
 * count on the copy it re-produces; a first failure (redrives < 0) is 0. */
static void connect_headers(rd_kafka_headers_t *h, const dlqlocal_rec_t *r, long long redrives)
{
    char num[32];

    hdr_str(h, "__connect.errors.topic", r->topic);
    snprintf(num, sizeof(num), "%" PRId32, r->partition);
    hdr_str(h, "__connect.errors.partition", num);
    snprintf(num, sizeof(num), "%" PRId64, r->offset);
    hdr_str(h, "__connect.errors.offset", num);
    hdr_str(h, "__connect.errors.stage", r->stage);
    hdr_str(h, "__connect.errors.exception.class.name", r->class_name);
    hdr_str(h, "__connect.errors.exception.message", r->message);
    snprintf(num, sizeof(num), "%lld", redrives < 0 ? 0 : redrives);
    hdr_str(h, H_REDRIVE, num);
}

/* The headers of a dead letter, whether sent directly (produce) or
 * forwarded from the local store (forward_cb): the source's own headers
 * minus those of an earlier dead-lettering, then the Connect headers from
 * r's fields, then H_OMITTED when omitted >= 0 (the dropped value's size). */
static rd_kafka_headers_t *headers_build(const dlqlocal_rec_t *r, long long omitted)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(r->n_headers + 9);
    char num[32];

    for (size_t i = 0; i < r->n_headers; i++) {
        const dlqlocal_hdr_t *x = &r->headers[i];
        if (!has_prefix(x->name, "__connect.errors.") && !has_prefix(x->name, "__veclog."))
            rd_kafka_header_add(h, x->name, -1, x->value, x->value ? (ssize_t)x->len : -1);
    }
    connect_headers(h, r, redrive_count(r->headers, r->n_headers));
    if (omitted >= 0) {
        snprintf(num, sizeof(num), "%lld", omitted);
        hdr_str(h, H_OMITTED, num);
    }
    return h;
}

/* Record r as the local store's record type (cls: its class name buffer),
 * the one view of a record that headers_build and dlqlocal_append take. */
static void rec_view(const rec_t *r, char *cls, size_t cap, dlqlocal_rec_t *out)
{
    const dlq_parts_t *s = &r->src;

    snprintf(cls, cap, "veclog.error.%s", err_code_name(r->why.code));
    *out = (dlqlocal_rec_t){
        .topic = s->topic, .partition = s->partition, .offset = s->offset,
        .timestamp = s->timestamp, .key = s->key, .key_len = s->key_len, .value = s->value,
        .value_len = s->value_len, .headers = s->headers, .n_headers = s->n_headers,
        .stage = r->stage, .class_name = cls, .message = r->why.msg,
    };
}

/* Hand record idx to librdkafka, waiting while its queue is full. */
static rd_kafka_resp_err_t produce(dlq_t *d, size_t idx)
{
    rec_t *r = &d->recs[idx];
    const dlq_parts_t *s = &r->src;
    uintptr_t tag = (uintptr_t)d->round << 32 | (uintptr_t)idx;
    int64_t ts = s->timestamp < 0 ? 0 : s->timestamp; /* 0: librdkafka stamps it now */
    int64_t deadline = now_ms() + d->timeout_ms;
    dlqlocal_rec_t lr;
    char cls[64];
    rd_kafka_resp_err_t e;

    for (;;) {
        rec_view(r, cls, sizeof(cls), &lr);
        rd_kafka_headers_t *h = headers_build(&lr, r->omit_value ? (long long)s->value_len : -1);
        bool omit = r->omit_value || s->value == NULL;
        e = rd_kafka_producev(d->rk, RD_KAFKA_V_TOPIC(d->topic),
                              RD_KAFKA_V_KEY(s->key, s->key_len),
                              RD_KAFKA_V_VALUE(omit ? NULL : (void *)s->value,
                                               omit ? 0 : s->value_len),
                              RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_TIMESTAMP(ts),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_OPAQUE((void *)tag), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return e;
        rd_kafka_headers_destroy(h); /* not taken on failure */
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && !r->omit_value && s->value != NULL) {
            r->omit_value = true;
            atomic_fetch_add(&d->omitted, 1);
            continue;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || now_ms() >= deadline)
            return e;
        rd_kafka_poll(d->rk, 50);
    }
}

/* Append record r to the local store; ERR_OK makes it REC_LOCAL. */
static int store_local(dlq_t *d, rec_t *r, err_t *err)
{
    dlqlocal_rec_t lr;
    char cls[64];
    int rc;

    rec_view(r, cls, sizeof(cls), &lr);
    rc = dlqlocal_append(d->local, &lr, err);
    if (rc == ERR_OK) {
        r->state = REC_LOCAL;
        d->local_pending = true;
        if (d->forward_at < now_ms() + FORWARD_RETRY_MS)
            d->forward_at = now_ms() + FORWARD_RETRY_MS;
        atomic_fetch_add(&d->stored_local, 1);
        log_warn("dlq", "%s[%" PRId32 "]@%" PRId64 ": dead-letter topic %s not written; "
                 "stored in %s", lr.topic, lr.partition, lr.offset, d->topic,
                 dlqlocal_path(d->local));
    }
    return rc;
}

/* Free the header arrays dlq_send copied: the records they borrow from
 * are the caller's only until the round ends. */
static void recs_release(dlq_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->recs[i].own_hdrs);
        d->recs[i].own_hdrs = NULL;
    }
}

/* Start a round if the last one ended, and recreate the producer after a
 * fatal error. */
static int round_prepare(dlq_t *d, err_t *err)
{
    int rc;

    if (d->round_done) {
        recs_release(d);
        d->round++;
        d->n = 0;
        d->round_done = false;
    }
    if (d->fatal) {
        rd_kafka_purge(d->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_destroy(d->rk);
        d->rk = NULL;
        err_t e2;
        if ((rc = producer_new(d, &e2)) != ERR_OK) {
            d->fatal = true;
            return err_setr(err, rc, true, "%s", e2.msg);
        }
        log_info("dlq", "dead-letter producer recreated after a fatal error");
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        rec_t *nr = realloc(d->recs, cap * sizeof(*nr));
        if (nr == NULL)
            return err_setr(err, ERR_NOMEM, true, "no memory for a dead letter");
        d->recs = nr;
        d->cap = cap;
    }
    return ERR_OK;
}

/* Queue the dead letter of src (dlq_send, dlq_send_parts).  own, the
 * header array dlq_send made, is taken (freed at the end of the round, or
 * here when the record is not queued). */
static int rec_add(dlq_t *d, const dlq_parts_t *src, dlqlocal_hdr_t *own, const char *stage,
                   const err_t *why, size_t *ticket, err_t *err)
{
    rd_kafka_resp_err_t e;
    int rc;

    if ((rc = round_prepare(d, err)) != ERR_OK) {
        free(own);
        return rc;
    }
    rec_t *r = &d->recs[d->n];
    memset(r, 0, sizeof(*r));
    r->src = *src;
    r->own_hdrs = own;
    snprintf(r->stage, sizeof(r->stage), "%s", stage);
    r->why = *why;
    r->state = REC_PENDING;
    d->n++;
    e = produce(d, d->n - 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (e == RD_KAFKA_RESP_ERR__FATAL)
            d->fatal = true;
        err_setr(err, ERR_BUSY, true, "dead-letter topic %s: %s", d->topic, rd_kafka_err2str(e));
        if (d->local == NULL || store_local(d, r, err) != ERR_OK) {
            free(r->own_hdrs);
            r->own_hdrs = NULL;
            d->n--;
            return err->code;
        }
    }
    *ticket = d->n - 1;
    return ERR_OK;
}

int dlq_send(dlq_t *d, const rd_kafka_message_t *msg, const char *stage, const err_t *why,
             size_t *ticket, err_t *err)
{
    rd_kafka_headers_t *orig = NULL;
    rd_kafka_timestamp_type_t tst;
    int64_t ts = rd_kafka_message_timestamp(msg, &tst);
    dlqlocal_hdr_t *h = NULL;
    size_t n_h = 0;

    if (rd_kafka_message_headers(msg, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR && orig != NULL &&
        (n_h = rd_kafka_header_cnt(orig)) > 0 && (h = calloc(n_h, sizeof(*h))) == NULL)
        return err_setr(err, ERR_NOMEM, true, "no memory for a dead letter");
    for (size_t i = 0; i < n_h; i++)
        if (rd_kafka_header_get_all(orig, i, &h[i].name, &h[i].value, &h[i].len) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            n_h = i;
            break;
        }
    dlq_parts_t p = {
        .topic = rd_kafka_topic_name(msg->rkt), .partition = msg->partition,
        .offset = msg->offset, .key = msg->key, .key_len = msg->key_len,
        .value = msg->payload, .value_len = msg->len,
        .timestamp = tst == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts,
        .headers = h, .n_headers = n_h,
    };
    return rec_add(d, &p, h, stage, why, ticket, err);
}

int dlq_send_parts(dlq_t *d, const dlq_parts_t *p, const char *stage, const err_t *why,
                   size_t *ticket, err_t *err)
{
    if (p->topic == NULL || (p->n_headers > 0 && p->headers == NULL))
        return err_set(err, ERR_INVALID, "dead letter: a topic is required, and headers when "
                       "n_headers > 0");
    return rec_add(d, p, NULL, stage, why, ticket, err);
}

/* Records refused as too large are sent again without their value. */
static void resend_too_large(dlq_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        rec_t *r = &d->recs[i];
        if (r->state != REC_FAILED || r->omit_value || r->src.value == NULL ||
            (r->err != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE &&
             r->err != RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE))
            continue;
        r->omit_value = true;
        r->state = REC_PENDING;
        atomic_fetch_add(&d->omitted, 1);
        rd_kafka_resp_err_t e = produce(d, i);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            r->state = REC_FAILED;
            r->err = e;
        }
    }
}

static size_t pending(const dlq_t *d)
{
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += d->recs[i].state == REC_PENDING;
    return n;
}

static bool reached_topic(const dlq_t *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->recs[i].state != REC_OK)
            return false;
    return true;
}

int dlq_wait(dlq_t *d, err_t *err)
{
    int64_t deadline = now_ms() + d->timeout_ms + WAIT_MARGIN_MS;
    char fatal[256];
    int rc = ERR_OK;

    while (pending(d) > 0 && now_ms() < deadline) {
        rd_kafka_poll(d->rk, 20);
        resend_too_large(d);
        if (rd_kafka_fatal_error(d->rk, fatal, sizeof(fatal)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            log_error("dlq", "dead-letter producer: fatal error: %s", fatal);
            d->fatal = true;
            break;
        }
    }
    for (size_t i = 0; i < d->n; i++) {
        rec_t *r = &d->recs[i];
        if (r->state == REC_PENDING) {
            r->state = REC_FAILED;
            r->err = RD_KAFKA_RESP_ERR__TIMED_OUT;
        }
        if (r->state != REC_FAILED)
            continue;
        err_t le;
        if (d->local != NULL && store_local(d, r, &le) == ERR_OK)
            continue;
        if (rc == ERR_OK && d->local != NULL)
            rc = err_setr(err, ERR_BUSY, true, "dead-letter topic %s: %s; %s", d->topic,
                          rd_kafka_err2str(r->err), le.msg);
        else if (rc == ERR_OK)
            rc = err_setr(err, ERR_BUSY, true, "dead-letter topic %s: %s", d->topic,
                          rd_kafka_err2str(r->err));
    }
    recs_release(d); /* the sources are the caller's again */
    d->round_done = true;
    if (rc == ERR_OK && d->n > 0 && d->local_pending && reached_topic(d))
        d->forward_at = now_ms(); /* the topic takes records again */
    return rc;
}

bool dlq_delivered(const dlq_t *d, size_t ticket)
{
    return ticket < d->n && (d->recs[ticket].state == REC_OK || d->recs[ticket].state == REC_LOCAL);
}

void dlq_stats_get(const dlq_t *d, dlq_stats_t *st)
{
    st->delivered = atomic_load(&d->delivered);
    st->failed = atomic_load(&d->failed);
    st->value_omitted = atomic_load(&d->omitted);
    st->local = atomic_load(&d->stored_local);
    st->forwarded = atomic_load(&d->forwarded);
}

/* ---- forwarding the local store (dlq.h LOCAL STORE) --------------------- */

typedef struct fwd {
    dlq_t *d;
    rd_kafka_t *rk;
    size_t queued, acked, refused;
    rd_kafka_resp_err_t last;        /* a refusal, for the error message */
} fwd_t;

static void on_forwarded(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    fwd_t *f = opaque;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        f->acked++;
    } else {
        f->refused++;
        f->last = m->err;
    }
}

static int forward_cb(const dlqlocal_rec_t *r, void *arg)
{
    fwd_t *f = arg;
    rd_kafka_headers_t *h = headers_build(r, -1);
    int64_t deadline = now_ms() + f->d->timeout_ms;
    rd_kafka_resp_err_t e;

    for (;;) {
        e = rd_kafka_producev(f->rk, RD_KAFKA_V_TOPIC(f->d->topic),
                              RD_KAFKA_V_KEY(r->key, r->key_len),
                              RD_KAFKA_V_VALUE((void *)r->value, r->value_len),
                              RD_KAFKA_V_HEADERS(h),
                              RD_KAFKA_V_TIMESTAMP(r->timestamp < 0 ? 0 : r->timestamp),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL || now_ms() >= deadline)
            break;
        rd_kafka_poll(f->rk, 50);
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(h);
        f->last = e;
        return ERR_BUSY; /* stops the read: the file stays for the next attempt */
    }
    f->queued++;
    return 0;
}

/* Forward the records of one closed file through f->rk (whose delivery
 * reports count into f), then delete it - or, when its tail failed the
 * CRC, keep it as <path>.corrupt for an operator. */
static int forward_file(fwd_t *f, const char *path, size_t *count, err_t *err)
{
    dlq_t *d = f->d;
    size_t n = 0;
    bool torn = false;
    err_t re;
    int rc = dlqlocal_read(path, forward_cb, f, &n, &torn, &re);

    *count = 0;
    if (rc == ERR_BUSY)
        return err_setr(err, ERR_BUSY, true, "forwarding %s: %s", path, rd_kafka_err2str(f->last));
    if (rc != ERR_OK && rc != ERR_CORRUPT)
        return err_setr(err, rc, true, "forwarding %s: %s", path, re.msg);
    (void)rd_kafka_flush(f->rk, d->timeout_ms + WAIT_MARGIN_MS);
    if (f->acked != f->queued)
        return err_setr(err, ERR_BUSY, true, "forwarding %s: %zu of %zu dead letters not "
                        "acknowledged (%s)", path, f->queued - f->acked, f->queued,
                        rd_kafka_err2str(f->refused ? f->last : RD_KAFKA_RESP_ERR__TIMED_OUT));
    *count = f->acked;
    atomic_fetch_add(&d->forwarded, f->acked);
    if (rc == ERR_CORRUPT) {
        char bad[4200];
        snprintf(bad, sizeof(bad), "%s.corrupt", path);
        log_error("dlq", "%s: %s; its %zu good dead letters were forwarded to %s, the file is "
                  "kept as %s", path, re.msg, f->acked, d->topic, bad);
        return rename(path, bad) == 0 ? ERR_OK : err_errno(err, errno, "rename %s", path);
    }
    log_info("dlq", "forwarded %zu dead letters from %s to %s%s", f->acked, path, d->topic,
             torn ? " (a torn tail, an append cut by a crash, was skipped)" : "");
    return unlink(path) == 0 ? ERR_OK : err_errno(err, errno, "unlink %s", path);
}

int dlq_forward_local(dlq_t *d, bool force, size_t *forwarded, err_t *err)
{
    char **paths = NULL;
    size_t n = 0;
    err_t own;
    int rc;

    if (err == NULL)
        err = &own;

    *forwarded = 0;
    if (d->local == NULL || (!force && (!d->local_pending || now_ms() < d->forward_at)))
        return ERR_OK;
    dlqlocal_rotate(d->local);
    rc = dlqlocal_closed(d->local, &paths, &n, err);
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        fwd_t f = { .d = d };
        size_t cnt;
        if ((rc = client_new(d, "veclog-dlq-forward", on_forwarded, &f, &f.rk, err)) != ERR_OK)
            break;
        rc = forward_file(&f, paths[i], &cnt, err);
        rd_kafka_destroy(f.rk); /* after the flush: no report can reach f later */
        *forwarded += cnt;
    }
    for (size_t k = 0; k < n; k++)
        free(paths[k]);
    free(paths);
    d->local_pending = rc != ERR_OK;
    d->forward_at = now_ms() + FORWARD_RETRY_MS;
    if (rc != ERR_OK)
        log_warn("dlq", "local dead letters stay local for now: %s", err->msg);
    return rc;
}
