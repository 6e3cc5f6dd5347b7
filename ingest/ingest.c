/*
 * ingest.c - the Kafka consumer: polling in batches, rebalances, commits,
 * pauses and retries.  What happens to a batch is sink.c's business; the
 * behaviour is described in ingest.h.
 *
 * Everything here runs on the consumer thread: librdkafka calls the
 * rebalance and commit callbacks from inside rd_kafka_consumer_poll (and
 * rd_kafka_consumer_close), so the batch buffer and the partition table
 * need no lock.  Only the stop flag and the statistics are shared.
 *
 * The partition table holds, for each assigned partition, `next`: every
 * message before it is applied or dead-lettered (the value committed, and
 * the watermark stored at revocation), and the retry state.  A batch
 * moves `next` to the first message left to retry, or past its last
 * message.  A paused partition's stray messages (fetched before the pause)
 * are dropped: the partition is re-read from `next` anyway.
 */
#include "ingest.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlq/dlq.h"
#include "ingest/kconf.h"
#include "store/log.h"

#define DEFAULT_BATCH 1000
#define DEFAULT_RETRY_MAX_MS 30000
#define RETRY_MIN_MS 100
#define POLL_MS 100              /* stop-flag latency while idle */
#define COORD_TIMEOUT_MS 10000   /* committed-offset fetch, sync commits, seeks */
#define ERR_LOG_EVERY_MS 10000
#define WATERMARK_EVERY_MS 60000 /* bound on the re-reading after a crash */

typedef struct part {
    char *topic;
    int32_t partition;
    int64_t next;                /* see above; -1 until known */
    int64_t committed;           /* last next committed, -1 none */
    bool paused;
    int64_t retry_at;            /* monotonic ms */
    uint32_t backoff_ms;
    bool touched;                /* in the current batch */
    int64_t batch_retry;         /* first retry offset this batch, -1 none */
    int64_t batch_last;          /* last offset this batch */
    int64_t consumed;            /* one past the last message taken, -1 none */
} part_t;

/* What the other threads may see of a partition (read-your-writes). */
typedef struct prog {
    char *topic;
    int32_t partition;
    int64_t consumed;
    int64_t applied;             /* every message before it is applied or dead-lettered */
    bool paused;
} prog_t;

struct ingest {
    catalog_t *cat;
    rd_kafka_t *rk;
    dlq_t *dlq;
    sink_t *sink;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    bool latest;                 /* auto.offset.reset=latest */
    uint32_t batch_size, batch_timeout_ms, retry_max_ms;

    rd_kafka_message_t **batch;
    size_t n_batch;
    uint8_t *outcome;
    part_t *parts;
    size_t n_parts, cap_parts;
    int last_err;
    int64_t last_err_at;
    int64_t watermark_at;        /* next periodic watermark, monotonic ms */

    atomic_uint_least64_t batches, commits, pauses, assigned;
    atomic_uint_least64_t batch_msgs, apply_ns;

    /* Published copy of the partition table, for status and waits from
     * other threads: prog_mu guards it, prog_cv announces progress. */
    pthread_mutex_t prog_mu;
    pthread_cond_t prog_cv;
    prog_t *prog;
    size_t n_prog;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- partition table --------------------------------------------------- */

static void prog_clear(prog_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i].topic);
    free(p);
}

/* Copy the partition table for the other threads and wake waiters.
 * Consumer thread; called after every change of next or of assignment. */
static void progress_publish(ingest_t *in)
{
    prog_t *np = calloc(in->n_parts + 1, sizeof(*np));
    size_t n = 0;

    for (size_t i = 0; np != NULL && i < in->n_parts; i++) {
        const part_t *p = &in->parts[i];
        np[n] = (prog_t){ strdup(p->topic), p->partition, p->consumed, p->next, p->paused };
        if (np[n].topic != NULL)
            n++;
    }
    pthread_mutex_lock(&in->prog_mu);
    if (np != NULL) {
        prog_clear(in->prog, in->n_prog);
        in->prog = np;
        in->n_prog = n;
    }
    pthread_cond_broadcast(&in->prog_cv);
    pthread_mutex_unlock(&in->prog_mu);
}

static part_t *part_find(ingest_t *in, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < in->n_parts; i++)
        if (in->parts[i].partition == partition && strcmp(in->parts[i].topic, topic) == 0)
            return &in->parts[i];
    return NULL;
}

static part_t *part_add(ingest_t *in, const char *topic, int32_t partition)
{
    part_t *p = part_find(in, topic, partition);

    if (p != NULL)
        return p;
    if (in->n_parts == in->cap_parts) {
        size_t cap = in->cap_parts ? in->cap_parts * 2 : 16;
        part_t *np = realloc(in->parts, cap * sizeof(*np));
        if (np == NULL)
            return NULL;
        in->parts = np;
        in->cap_parts = cap;
    }
    p = &in->parts[in->n_parts];
    memset(p, 0, sizeof(*p));
    if ((p->topic = strdup(topic)) == NULL)
        return NULL;
    p->partition = partition;
    p->next = p->committed = p->batch_retry = -1;
    p->backoff_ms = RETRY_MIN_MS;
    in->n_parts++;
    return p;
}

static void part_remove(ingest_t *in, const char *topic, int32_t partition)
{
    part_t *p = part_find(in, topic, partition);

    if (p == NULL)
        return;
    free(p->topic);
    *p = in->parts[--in->n_parts];
}

static rd_kafka_topic_partition_list_t *one_partition(const part_t *p, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = offset;
    return l;
}

/* ---- commits ----------------------------------------------------------- */

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *l,
                      void *opaque)
{
    (void)rk;
    (void)l;
    (void)opaque;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        log_warn("ingest", "offset commit failed: %s (the stores' offsets still decide where "
                 "partitions resume)", rd_kafka_err2str(e));
}

/* Commit `next` of the partitions that moved (only those in filter, when
 * given).  async: fire and forget; otherwise wait. */
static void commit(ingest_t *in, const rd_kafka_topic_partition_list_t *filter, bool async)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)in->n_parts + 1);
    rd_kafka_resp_err_t e;

    for (size_t i = 0; i < in->n_parts; i++) {
        part_t *p = &in->parts[i];
        if (p->next < 0 || p->next == p->committed ||
            (filter && !rd_kafka_topic_partition_list_find(filter, p->topic, p->partition)))
            continue;
        rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->next;
        p->committed = p->next;
    }
    if (l->cnt > 0) {
        atomic_fetch_add(&in->commits, 1);
        e = rd_kafka_commit(in->rk, l, async ? 1 : 0);
        if (!async && e != RD_KAFKA_RESP_ERR_NO_ERROR)
            log_warn("ingest", "offset commit failed: %s", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* ---- batches ----------------------------------------------------------- */

static void batch_drop(ingest_t *in)
{
    for (size_t i = 0; i < in->n_batch; i++)
        rd_kafka_message_destroy(in->batch[i]);
    in->n_batch = 0;
}

static void pause_part(ingest_t *in, part_t *p, const err_t *why)
{
    rd_kafka_topic_partition_list_t *l = one_partition(p, RD_KAFKA_OFFSET_INVALID);

    rd_kafka_pause_partitions(in->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    p->paused = true;
    p->retry_at = now_ms() + p->backoff_ms;
    atomic_fetch_add(&in->pauses, 1);
    log_warn("ingest", "%s[%" PRId32 "] paused at offset %" PRId64 ", retry in %" PRIu32
             " ms: %s", p->topic, p->partition, p->next, p->backoff_ms, why->msg);
    p->backoff_ms = p->backoff_ms * 2 > in->retry_max_ms ? in->retry_max_ms : p->backoff_ms * 2;
}

/* Apply the batch in hand, move each partition's next, pause the ones
 * left with retries, commit. */
static void batch_process(ingest_t *in)
{
    err_t why;

    if (in->n_batch == 0)
        return;
    err_clear(&why);
    int64_t t0 = now_ns();
    sink_apply(in->sink, (const rd_kafka_message_t *const *)in->batch, in->n_batch, in->outcome,
               &why);
    atomic_fetch_add(&in->apply_ns, (uint64_t)(now_ns() - t0));
    atomic_fetch_add(&in->batch_msgs, in->n_batch);
    atomic_fetch_add(&in->batches, 1);
    for (size_t i = 0; i < in->n_batch; i++) {
        const rd_kafka_message_t *m = in->batch[i];
        part_t *p = part_find(in, rd_kafka_topic_name(m->rkt), m->partition);
        if (p == NULL)
            continue;
        if (!p->touched) {
            p->touched = true;
            p->batch_retry = -1;
        }
        p->batch_last = m->offset;
        if (in->outcome[i] == SINK_RETRY && p->batch_retry < 0)
            p->batch_retry = m->offset;
    }
    for (size_t i = 0; i < in->n_parts; i++) {
        part_t *p = &in->parts[i];
        if (!p->touched)
            continue;
        p->touched = false;
        if (p->batch_retry >= 0) {
            p->next = p->batch_retry;
            pause_part(in, p, &why);
        } else {
            p->next = p->batch_last + 1;
            p->backoff_ms = RETRY_MIN_MS;
        }
    }
    batch_drop(in);
    commit(in, NULL, true);
    progress_publish(in);
}

static void poll_error(ingest_t *in, const rd_kafka_message_t *m)
{
    int64_t now = now_ms();

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    if ((int)m->err == in->last_err && now - in->last_err_at < ERR_LOG_EVERY_MS)
        return;
    in->last_err = (int)m->err;
    in->last_err_at = now;
    log_warn("ingest", "consumer: %s%s%s", rd_kafka_message_errstr(m), m->rkt ? ": topic " : "",
             m->rkt ? rd_kafka_topic_name(m->rkt) : "");
}

/* Take m into the batch, or drop it (errors, revoked or paused partitions). */
static void take(ingest_t *in, rd_kafka_message_t *m)
{
    part_t *p;

    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        poll_error(in, m);
        rd_kafka_message_destroy(m);
        return;
    }
    p = part_find(in, rd_kafka_topic_name(m->rkt), m->partition);
    if (p == NULL || p->paused || (p->next >= 0 && m->offset < p->next)) {
        log_debug("ingest", "%s[%" PRId32 "]@%" PRId64 ": dropped (%s)",
                  rd_kafka_topic_name(m->rkt), m->partition, m->offset,
                  p == NULL ? "not assigned" : p->paused ? "paused" : "before the position");
        rd_kafka_message_destroy(m);
        return;
    }
    if (m->offset + 1 > p->consumed)
        p->consumed = m->offset + 1;
    in->batch[in->n_batch++] = m;
}

/* Poll until batch_size messages or batch_timeout_ms after the first. */
static void batch_collect(ingest_t *in)
{
    rd_kafka_message_t *m = rd_kafka_consumer_poll(in->rk, POLL_MS);
    int64_t deadline;

    if (m == NULL)
        return;
    take(in, m);
    deadline = now_ms() + in->batch_timeout_ms;
    while (in->n_batch < in->batch_size && !atomic_load(&in->stop)) {
        int64_t left = deadline - now_ms();
        if (left < 0)
            left = 0;
        m = rd_kafka_consumer_poll(in->rk, (int)left);
        if (m == NULL)
            break;
        take(in, m);
    }
}

/* Seek paused partitions whose backoff is over back to their retry point
 * and resume them. */
static void retry_due(ingest_t *in)
{
    int64_t now = now_ms();

    for (size_t i = 0; i < in->n_parts; i++) {
        part_t *p = &in->parts[i];
        if (!p->paused || p->retry_at > now)
            continue;
        rd_kafka_topic_partition_list_t *l = one_partition(p, p->next);
        rd_kafka_error_t *e = rd_kafka_seek_partitions(in->rk, l, COORD_TIMEOUT_MS);
        if (e == NULL && l->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
            e = rd_kafka_error_new(l->elems[0].err, "%s", rd_kafka_err2str(l->elems[0].err));
        if (e != NULL) {
            log_warn("ingest", "%s[%" PRId32 "]: seek to %" PRId64 " failed: %s", p->topic,
                     p->partition, p->next, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            p->retry_at = now + p->backoff_ms;
        } else {
            rd_kafka_resume_partitions(in->rk, l);
            p->paused = false;
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
}

/* ---- rebalances -------------------------------------------------------- */

static void offset_text(int64_t off, char *buf, size_t n)
{
    if (off == RD_KAFKA_OFFSET_BEGINNING)
        snprintf(buf, n, "beginning");
    else if (off == RD_KAFKA_OFFSET_END)
        snprintf(buf, n, "end");
    else
        snprintf(buf, n, "%" PRId64, off);
}

/* One log line for an assignment or revocation. */
static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *l,
                           bool offsets)
{
    char line[1024], off[32];
    size_t len = 0;

    line[0] = '\0';
    for (int i = 0; i < l->cnt && len < sizeof(line) - 64; i++) {
        const rd_kafka_topic_partition_t *tp = &l->elems[i];
        offset_text(tp->offset, off, sizeof(off));
        int w = snprintf(line + len, sizeof(line) - len, "%s%s[%" PRId32 "]%s%s", i ? ", " : "",
                         tp->topic, tp->partition, offsets ? "@" : "", offsets ? off : "");
        len += w > 0 ? (size_t)w : 0;
        if (len >= sizeof(line) - 64 && i + 1 < l->cnt)
            snprintf(line + len, sizeof(line) - len, ", ... (%d in all)", l->cnt);
    }
    log_info("ingest", "%s %d partition(s): %s", what, l->cnt, line);
}

/* Position each newly assigned partition (sink_resume_offset). */
static void on_assign(ingest_t *in, rd_kafka_topic_partition_list_t *l)
{
    rd_kafka_topic_partition_list_t *c = rd_kafka_topic_partition_list_copy(l);
    rd_kafka_resp_err_t e = rd_kafka_committed(in->rk, c, COORD_TIMEOUT_MS);

    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("ingest", "cannot fetch the group's committed offsets (%s): partitions that "
                 "no collection has stored offsets for start from the beginning",
                 rd_kafka_err2str(e));
    for (int i = 0; i < l->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &l->elems[i];
        const rd_kafka_topic_partition_t *ct = &c->elems[i];
        int64_t dflt = in->latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR || ct->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            dflt = RD_KAFKA_OFFSET_BEGINNING;
        else if (ct->offset >= 0)
            dflt = ct->offset;
        tp->offset = sink_resume_offset(in->sink, tp->topic, tp->partition, dflt);
        part_t *p = part_add(in, tp->topic, tp->partition);
        if (p == NULL) {
            log_error("ingest", "no memory for partition state: %s[%" PRId32 "] is not consumed",
                      tp->topic, tp->partition);
            tp->offset = RD_KAFKA_OFFSET_INVALID;
            continue;
        }
        p->next = tp->offset >= 0 ? tp->offset : -1;
        p->committed = ct->offset >= 0 ? ct->offset : -1;
        p->consumed = -1;
    }
    rd_kafka_topic_partition_list_destroy(c);
    log_partitions("assigned", l, true);
    progress_publish(in);
}

/* Bring the stored offsets of collections that lag behind the
 * partitions' positions up to them (sink_watermark): the partitions in l,
 * or all assigned ones. */
static void watermark(ingest_t *in, const rd_kafka_topic_partition_list_t *l)
{
    sink_pos_t *pos = calloc(in->n_parts + 1, sizeof(*pos));
    size_t n = 0;
    err_t e;

    for (size_t i = 0; i < in->n_parts && pos != NULL; i++) {
        part_t *p = &in->parts[i];
        if (p->next >= 0 && (l == NULL || rd_kafka_topic_partition_list_find(l, p->topic,
                                                                            p->partition)))
            pos[n++] = (sink_pos_t){ p->topic, p->partition, p->next };
    }
    if (n > 0 && sink_watermark(in->sink, pos, n, &e) != ERR_OK)
        log_warn("ingest", "storing offsets: %s", e.msg);
    free(pos);
}

/* Finish what was taken of the partitions, commit them, store
 * watermarks, forget them.  lost: apply and commit nothing of them. */
static void on_revoke(ingest_t *in, rd_kafka_topic_partition_list_t *l, bool lost)
{
    if (lost) {
        size_t w = 0;
        for (size_t i = 0; i < in->n_batch; i++) {
            rd_kafka_message_t *m = in->batch[i];
            if (rd_kafka_topic_partition_list_find(l, rd_kafka_topic_name(m->rkt), m->partition))
                rd_kafka_message_destroy(m);
            else
                in->batch[w++] = m;
        }
        in->n_batch = w;
    }
    batch_process(in);
    if (!lost) {
        commit(in, l, false);
        watermark(in, l);
    }
    for (int i = 0; i < l->cnt; i++)
        part_remove(in, l->elems[i].topic, l->elems[i].partition);
    log_partitions(lost ? "lost" : "revoked", l, false);
    progress_publish(in);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *l, void *opaque)
{
    ingest_t *in = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(in, l);
        if (coop)
            e = rd_kafka_incremental_assign(rk, l);
        else
            rd_kafka_assign(rk, l);
    } else {
        if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
            log_error("ingest", "rebalance error: %s", rd_kafka_err2str(err));
        on_revoke(in, l, rd_kafka_assignment_lost(rk) != 0);
        if (coop)
            e = rd_kafka_incremental_unassign(rk, l);
        else
            rd_kafka_assign(rk, NULL);
    }
    if (e != NULL) {
        log_error("ingest", "rebalance: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
    atomic_store(&in->assigned, in->n_parts);
}

/* ---- the thread and the lifecycle -------------------------------------- */

static void *run(void *arg)
{
    ingest_t *in = arg;
    rd_kafka_resp_err_t e;

    in->watermark_at = now_ms() + WATERMARK_EVERY_MS;
    while (!atomic_load(&in->stop)) {
        retry_due(in);
        batch_collect(in);
        batch_process(in);
        if (now_ms() >= in->watermark_at) {
            watermark(in, NULL);
            in->watermark_at = now_ms() + WATERMARK_EVERY_MS;
        }
        size_t fwd;
        (void)dlq_forward_local(in->dlq, false, &fwd, NULL); /* logs its own failure */
    }
    /* Closing revokes every partition through on_rebalance: the batch in
     * hand is applied and committed there. */
    e = rd_kafka_consumer_close(in->rk);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        log_warn("ingest", "closing the consumer: %s", rd_kafka_err2str(e));
    batch_drop(in); /* a lost assignment at close leaves messages here */
    return NULL;
}

static int consumer_conf(const ingest_opts_t *o, ingest_t *in, rd_kafka_conf_t **out, err_t *err)
{
    rd_kafka_conf_t *conf;
    int rc = kconf_new(o->brokers, &conf, err);

    if (rc != ERR_OK)
        return rc;
    if ((rc = kconf_set(conf, "client.id", "veclog", err)) == ERR_OK &&
        (rc = kconf_set(conf, "partition.assignment.strategy", "cooperative-sticky", err)) == ERR_OK &&
        (rc = kconf_set(conf, "auto.offset.reset", in->latest ? "latest" : "earliest", err)) == ERR_OK &&
        /* librdkafka waits up to 500 ms for a fetch to fill: most of the
         * produce-to-visible latency (bench/ingest_bench.sh); kafka.properties
         * can set it back */
        (rc = kconf_set(conf, "fetch.wait.max.ms", "50", err)) == ERR_OK &&
        (rc = kconf_apply(conf, o->properties, err)) == ERR_OK &&
        (rc = kconf_set(conf, "group.id", o->group_id, err)) == ERR_OK &&
        (rc = kconf_set(conf, "enable.auto.commit", "false", err)) == ERR_OK &&
        (rc = kconf_set(conf, "enable.auto.offset.store", "false", err)) == ERR_OK)
        rc = kconf_set(conf, "enable.partition.eof", "false", err);
    if (rc != ERR_OK) {
        rd_kafka_conf_destroy(conf);
        return err_wrap(err, "kafka consumer");
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    rd_kafka_conf_set_opaque(conf, in);
    *out = conf;
    return ERR_OK;
}

static int consumer_start(const ingest_opts_t *o, ingest_t *in, err_t *err)
{
    rd_kafka_conf_t *conf = NULL;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t e;
    char errstr[512];
    int rc = consumer_conf(o, in, &conf, err);

    if (rc != ERR_OK)
        return rc;
    in->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (in->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return err_set(err, ERR_INVALID, "kafka consumer: %s", errstr);
    }
    rd_kafka_poll_set_consumer(in->rk);
    topics = rd_kafka_topic_partition_list_new((int)o->n_topics);
    for (size_t i = 0; i < o->n_topics; i++)
        rd_kafka_topic_partition_list_add(topics, o->topics[i], RD_KAFKA_PARTITION_UA);
    e = rd_kafka_subscribe(in->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return err_set(err, ERR_INVALID, "kafka subscribe: %s", rd_kafka_err2str(e));
    return ERR_OK;
}

static void ingest_free(ingest_t *in)
{
    batch_drop(in);
    if (in->rk != NULL)
        rd_kafka_destroy(in->rk);
    sink_free(in->sink);
    dlq_close(in->dlq);
    for (size_t i = 0; i < in->n_parts; i++)
        free(in->parts[i].topic);
    free(in->parts);
    free(in->batch);
    free(in->outcome);
    prog_clear(in->prog, in->n_prog);
    pthread_mutex_destroy(&in->prog_mu);
    pthread_cond_destroy(&in->prog_cv);
    free(in);
}

static int check_opts(const ingest_opts_t *o, err_t *err)
{
    if (o->brokers == NULL || o->group_id == NULL || o->dlq_topic == NULL || o->n_topics == 0)
        return err_set(err, ERR_INVALID, "kafka ingest: brokers, group id, topics and the "
                       "dead-letter topic are required");
    if (o->auto_offset_reset != NULL && strcmp(o->auto_offset_reset, "earliest") != 0 &&
        strcmp(o->auto_offset_reset, "latest") != 0)
        return err_set(err, ERR_INVALID, "kafka ingest: auto_offset_reset: earliest or latest");
    return ERR_OK;
}

int ingest_start(catalog_t *cat, const ingest_opts_t *o, ingest_t **out, err_t *err)
{
    ingest_t *in;
    dlq_opts_t dopts = { .brokers = o->brokers, .topic = o->dlq_topic,
                         .properties = o->properties, .timeout_ms = (int)o->dlq_timeout_ms,
                         .local_dir = o->dlq_local_dir };
    sink_opts_t sopts = { .routes = o->routes, .max_message_bytes = o->max_message_bytes,
                          .auto_create = o->auto_create_collections,
                          .auto_create_distance = o->auto_create_distance,
                          .embed = o->embed };
    int rc;

    *out = NULL;
    if ((rc = check_opts(o, err)) != ERR_OK)
        return rc;
    if ((in = calloc(1, sizeof(*in))) == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    in->cat = cat;
    pthread_mutex_init(&in->prog_mu, NULL);
    pthread_cond_init(&in->prog_cv, NULL);
    in->latest = o->auto_offset_reset != NULL && strcmp(o->auto_offset_reset, "latest") == 0;
    in->batch_size = o->batch_size ? o->batch_size : DEFAULT_BATCH;
    in->batch_timeout_ms = o->batch_timeout_ms;
    in->retry_max_ms = o->retry_max_ms ? o->retry_max_ms : DEFAULT_RETRY_MAX_MS;
    in->batch = calloc(in->batch_size, sizeof(*in->batch));
    in->outcome = calloc(in->batch_size, 1);
    if (in->batch == NULL || in->outcome == NULL)
        rc = err_set(err, ERR_NOMEM, "no memory for a batch of %" PRIu32, in->batch_size);
    if (rc == ERR_OK)
        rc = dlq_open(&dopts, &in->dlq, err);
    if (rc == ERR_OK)
        rc = sink_new(cat, in->dlq, &sopts, &in->sink, err);
    if (rc == ERR_OK)
        rc = consumer_start(o, in, err);
    if (rc == ERR_OK && pthread_create(&in->thread, NULL, run, in) != 0)
        rc = err_set(err, ERR_NOMEM, "cannot start the ingest thread");
    if (rc != ERR_OK) {
        ingest_free(in);
        return rc;
    }
    in->running = true;
    log_info("ingest", "consuming as group %s (batches of %" PRIu32 ", dead letters to %s)",
             o->group_id, in->batch_size, o->dlq_topic);
    *out = in;
    return ERR_OK;
}

void ingest_stop(ingest_t *in)
{
    if (in == NULL)
        return;
    atomic_store(&in->stop, true);
    if (in->running)
        pthread_join(in->thread, NULL);
    ingest_free(in);
}

void ingest_stats_get(ingest_t *in, ingest_stats_t *st)
{
    sink_stats_get(in->sink, &st->sink);
    st->batches = atomic_load(&in->batches);
    st->commits = atomic_load(&in->commits);
    st->pauses = atomic_load(&in->pauses);
    st->assigned = atomic_load(&in->assigned);
}

/* ---- read-your-writes and metrics --------------------------------------- */

/* librdkafka's last known high watermark (non-blocking), or -1. */
static int64_t high_watermark(ingest_t *in, const char *topic, int32_t partition)
{
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(in->rk, topic, partition, &lo, &hi) !=
        RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    return hi;
}

cJSON *ingest_status_json(ingest_t *in)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "partitions");

    pthread_mutex_lock(&in->prog_mu);
    for (size_t i = 0; arr != NULL && i < in->n_prog; i++) {
        const prog_t *p = &in->prog[i];
        int64_t hwm = high_watermark(in, p->topic, p->partition);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "topic", p->topic);
        cJSON_AddNumberToObject(e, "partition", p->partition);
        cJSON_AddNumberToObject(e, "consumed", (double)p->consumed);
        cJSON_AddNumberToObject(e, "applied", (double)p->applied);
        cJSON_AddNumberToObject(e, "high_watermark", (double)hwm);
        if (hwm >= 0 && p->applied >= 0)
            cJSON_AddNumberToObject(e, "lag", (double)(hwm > p->applied ? hwm - p->applied : 0));
        else
            cJSON_AddNullToObject(e, "lag");
        cJSON_AddBoolToObject(e, "paused", p->paused);
        cJSON_AddItemToArray(arr, e);
    }
    pthread_mutex_unlock(&in->prog_mu);
    return o;
}

static const prog_t *prog_find(const ingest_t *in, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < in->n_prog; i++)
        if (in->prog[i].partition == partition && strcmp(in->prog[i].topic, topic) == 0)
            return &in->prog[i];
    return NULL;
}

int ingest_wait_applied(ingest_t *in, const char *topic, int32_t partition, int64_t offset,
                        int timeout_ms, err_t *err)
{
    struct timespec dl;
    int rc = ERR_OK;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&in->prog_mu);
    for (;;) {
        const prog_t *p = prog_find(in, topic, partition);
        if (p != NULL && p->applied > offset)
            break;
        if (pthread_cond_timedwait(&in->prog_cv, &in->prog_mu, &dl) != 0) {
            p = prog_find(in, topic, partition);
            if (p != NULL && p->applied > offset)
                break;
            rc = err_set(err, ERR_TIMEOUT, "%s[%" PRId32 "]@%" PRId64 " not applied within %d ms%s",
                         topic, partition, offset, timeout_ms,
                         p == NULL ? " (partition not assigned to this node)" : "");
            break;
        }
    }
    pthread_mutex_unlock(&in->prog_mu);
    return rc;
}

char *ingest_metrics_text(ingest_t *in)
{
    ingest_stats_t st;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (f == NULL)
        return NULL;
    ingest_stats_get(in, &st);
    fprintf(f, "# HELP veclog_ingest_consumed_total Kafka messages taken from the topics\n"
               "# TYPE veclog_ingest_consumed_total counter\n"
               "veclog_ingest_consumed_total %" PRIu64 "\n", st.sink.messages);
    fprintf(f, "# HELP veclog_ingest_messages_total Kafka messages by outcome\n"
               "# TYPE veclog_ingest_messages_total counter\n"
               "veclog_ingest_messages_total{outcome=\"applied\"} %" PRIu64 "\n"
               "veclog_ingest_messages_total{outcome=\"skipped\"} %" PRIu64 "\n"
               "veclog_ingest_messages_total{outcome=\"dead_lettered\"} %" PRIu64 "\n"
               "veclog_ingest_messages_total{outcome=\"retried\"} %" PRIu64 "\n"
               "# HELP veclog_ingest_batches_total Poll batches applied\n"
               "# TYPE veclog_ingest_batches_total counter\n"
               "veclog_ingest_batches_total %" PRIu64 "\n"
               "# HELP veclog_ingest_batch_messages_total Messages in those batches (mean batch size = this / batches)\n"
               "# TYPE veclog_ingest_batch_messages_total counter\n"
               "veclog_ingest_batch_messages_total %" PRIu64 "\n"
               "# HELP veclog_ingest_apply_seconds_total Time spent applying batches\n"
               "# TYPE veclog_ingest_apply_seconds_total counter\n"
               "veclog_ingest_apply_seconds_total %.6f\n"
               "# HELP veclog_ingest_wal_records_total WAL records written by ingest\n"
               "# TYPE veclog_ingest_wal_records_total counter\n"
               "veclog_ingest_wal_records_total %" PRIu64 "\n"
               "# HELP veclog_ingest_pauses_total Partitions paused for a retry\n"
               "# TYPE veclog_ingest_pauses_total counter\n"
               "veclog_ingest_pauses_total %" PRIu64 "\n"
               "# HELP veclog_ingest_assigned_partitions Partitions assigned to this node\n"
               "# TYPE veclog_ingest_assigned_partitions gauge\n"
               "veclog_ingest_assigned_partitions %" PRIu64 "\n",
            st.sink.applied, st.sink.skipped, st.sink.dead, st.sink.retried, st.batches,
            (uint64_t)atomic_load(&in->batch_msgs), (double)atomic_load(&in->apply_ns) / 1e9,
            st.sink.ops, st.pauses, st.assigned);
    fprintf(f, "# HELP veclog_dlq_records_total Dead letters written, by reason\n"
               "# TYPE veclog_dlq_records_total counter\n");
    for (int i = 0; i < SINK_REASONS; i++)
        if (st.sink.dead_by[i] > 0)
            fprintf(f, "veclog_dlq_records_total{reason=\"%s\"} %" PRIu64 "\n", err_code_name(i),
                    st.sink.dead_by[i]);
    dlq_stats_t ds;
    dlq_stats_get(in->dlq, &ds);
    fprintf(f, "# HELP veclog_dlq_local_records_total Dead letters the topic did not take, "
               "stored in the local dead-letter store\n"
               "# TYPE veclog_dlq_local_records_total counter\n"
               "veclog_dlq_local_records_total %llu\n"
               "# HELP veclog_dlq_forwarded_records_total Local dead letters forwarded to the "
               "topic since\n"
               "# TYPE veclog_dlq_forwarded_records_total counter\n"
               "veclog_dlq_forwarded_records_total %llu\n", ds.local, ds.forwarded);
    fprintf(f, "# HELP veclog_ingest_lag Messages behind the high watermark, per partition\n"
               "# TYPE veclog_ingest_lag gauge\n");
    pthread_mutex_lock(&in->prog_mu);
    for (size_t i = 0; i < in->n_prog; i++) {
        const prog_t *p = &in->prog[i];
        int64_t hwm = high_watermark(in, p->topic, p->partition);
        if (hwm >= 0 && p->applied >= 0)
            fprintf(f, "veclog_ingest_lag{topic=\"%s\",partition=\"%" PRId32 "\"} %" PRId64 "\n",
                    p->topic, p->partition, hwm > p->applied ? hwm - p->applied : 0);
    }
    pthread_mutex_unlock(&in->prog_mu);
    fclose(f);
    return buf;
}
