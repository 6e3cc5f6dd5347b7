/*
 * ingest.h - Kafka ingest: a consumer group member that applies messages
 * to the catalog's collections exactly once, in order per partition, and
 * dead-letters what cannot be applied.
 *
 * One consumer thread polls in batches (batch_size messages or
 * batch_timeout_ms after the first, whichever comes first) and hands each
 * batch to the sink (sink.h: message formats, routing, merging, the
 * exactly-once and resume rules, error classes).  After a batch, offsets
 * are committed to the group asynchronously - for lag tools and as the
 * resume point of collections that never saw a partition; the stores'
 * own offsets decide where a partition resumes and what is skipped.
 *
 * Consumer settings: partition.assignment.strategy=cooperative-sticky
 * (unless kafka.properties says otherwise; eager protocols work too),
 * enable.auto.commit=false and enable.auto.offset.store=false (always:
 * veclog commits what it has applied, nothing else), plus the operator's
 * kafka.properties passed through.  Topics are names or "^regex"
 * subscription patterns.
 *
 * Rebalances: on assignment each partition is positioned by
 * sink_resume_offset (committed offset fetched from the group) and one log
 * line lists the partitions and their starting offsets; on revocation the
 * messages already taken are applied first, offsets committed
 * synchronously, and the collections' stored offsets brought up to date
 * (sink_watermark), then the partitions are released (one log line).
 * A lost assignment (session timed out) applies nothing more of those
 * partitions and commits nothing.  The stored offsets are also brought up
 * to date every minute, so after a crash a partition is re-read from at
 * most about a minute back for collections that stopped receiving it.
 *
 * Retries: when a batch leaves messages to retry (a transient store error,
 * a dead letter neither in the dead-letter topic nor in the local store
 * of dlq_local_dir), their partition is paused, and after a
 * backoff (100 ms doubling up to retry_max_ms) the consumer seeks back to
 * the first such message and resumes.  Other partitions go on meanwhile.
 * A partition never moves past a message that is neither applied nor
 * stored as a dead letter (in the topic, or in the local store).
 *
 * Threads: ingest_start and ingest_stop are called from one thread (the
 * main thread); ingest_stats_get from any.
 */
#ifndef VECLOG_INGEST_H
#define VECLOG_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "ingest/sink.h"
#include "store/catalog.h"
#include "store/err.h"

typedef struct ingest ingest_t;

typedef struct ingest_opts {
    const char *brokers;            /* bootstrap.servers; required */
    const char *group_id;           /* required */
    const char *const *topics;      /* names or ^patterns */
    size_t n_topics;                /* >= 1 */
    const char *auto_offset_reset;  /* "earliest" or "latest"; NULL = earliest */
    uint32_t batch_size;            /* 0 = 1000 */
    uint32_t batch_timeout_ms;
    const char *const *routes;      /* NULL, or "topic", "c1,c2", ..., NULL (sink.h) */
    const char *const *properties;  /* NULL, or "name", "value", ..., NULL: librdkafka
                                     * properties for the consumer and the DLQ producer */
    const char *dlq_topic;          /* required */
    size_t max_message_bytes;       /* 0 = 32 MiB */
    uint32_t dlq_timeout_ms;        /* 0 = 10000 */
    uint32_t retry_max_ms;          /* backoff cap; 0 = 30000 */
    const char *dlq_local_dir;      /* NULL, or the local dead-letter store (dlq.h) for
                                     * dead letters the DLQ topic does not take */
    bool auto_create_collections;   /* sink.h AUTO-CREATE; false = dead-letter */
    const char *auto_create_distance; /* Cosine, Dot, Euclid, Manhattan; NULL = Cosine */
    const embed_reg_t *embed;       /* models for Documents (sink.h); borrowed, must stay
                                     * until ingest_stop returns; NULL = none */
} ingest_opts_t;

/* Create the consumer and the dead-letter producer, subscribe, start the
 * consumer thread.  cat is borrowed and must stay open until ingest_stop
 * returns; o's strings are copied.  ERR_INVALID names a bad option or
 * property. *out owned by the caller (ingest_stop). */
int ingest_start(catalog_t *cat, const ingest_opts_t *o, ingest_t **out, err_t *err);

/* Stop: finish the batch in hand, commit, bring stored offsets up to date,
 * leave the group, flush dead letters, join the thread, free.  NULL is
 * fine.  Takes up to about a second plus any dead-letter wait. */
void ingest_stop(ingest_t *in);

typedef struct ingest_stats {
    sink_stats_t sink;              /* messages, outcomes, ops written */
    uint64_t batches;
    uint64_t commits;               /* offset commits requested */
    uint64_t pauses;                /* partitions paused for a retry */
    uint64_t assigned;              /* partitions currently assigned */
} ingest_stats_t;

void ingest_stats_get(ingest_t *in, ingest_stats_t *st);

/* Per assigned partition: consumed (one past the last message taken),
 * applied (every message before it is applied or dead-lettered),
 * high_watermark (librdkafka's last known, -1 unknown) and lag.  New JSON
 * {"partitions": [...]} owned by the caller.  Any thread. */
cJSON *ingest_status_json(ingest_t *in);

/* Block until the message at offset of topic/partition is applied (or
 * dead-lettered) on this node, or timeout_ms passes (ERR_TIMEOUT).  Any
 * thread but the consumer's: read-your-writes for producers. */
int ingest_wait_applied(ingest_t *in, const char *topic, int32_t partition, int64_t offset,
                        int timeout_ms, err_t *err);

/* Prometheus text of the ingest figures (malloc'd; caller frees; NULL on
 * allocation failure).  Any thread. */
char *ingest_metrics_text(ingest_t *in);

#endif
