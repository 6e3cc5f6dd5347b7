/*
 * sink.h - the store side of Kafka ingest: a batch of consumed messages
 * applied to collections exactly once, dead letters for what cannot be
 * applied, and where a partition must resume.
 *
 * EXACTLY ONCE
 * Every op written carries the (topic, partition, offset) of its messages,
 * and the collection stores the highest offset per (topic, partition) in
 * the same RocksDB batch as the data (coll.c), or recovers both from its
 * WAL.  A message is skipped for a collection whose stored offset for its
 * partition is >= the message's offset: whatever position Kafka resumes
 * from, nothing is applied twice.  Within a partition, messages are
 * applied in offset order to each collection (ops of one collection are
 * written in message order, and once a write to a collection fails
 * transiently, nothing later in the batch is written to it), so a stored
 * offset means every earlier message of that partition is in the
 * collection: the stored offsets are a safe place to resume from.
 *
 * RESUMING (sink_resume_offset)
 * A partition resumes at the minimum, over every collection of the
 * catalog, of that collection's stored offset + 1 - or, for a collection
 * with no stored offset for the partition, of `dflt`: the consumer
 * group's committed offset, or auto.offset.reset when the group has none.
 * Why this rule: a collection that never received a message of the
 * partition has nothing of it applied, and the committed offset (written
 * only after a whole batch is applied or dead-lettered) bounds what it
 * still needs; a collection with a stored offset needs exactly what
 * follows it.  With no collections at all, dflt.  The stores win over the
 * group's commits: a lost or reset commit never skips or repeats a write.
 * sink_watermark moves the stored offsets of collections that stopped
 * receiving messages of a partition, so they do not hold the resume point
 * back (ingest.c calls it when partitions are revoked, at shutdown, and
 * every minute, which bounds what a crash makes it read again).
 *
 * BATCHING
 * Within a batch, consecutive plain upserts (update_mode upsert, no
 * update_filter) for one collection are merged into one op, which carries
 * one source per (topic, partition) (op.h): one WAL record and one RocksDB
 * batch for many messages, still atomic with their offsets.  Every
 * message's op is validated on its own first, so one bad message is
 * dead-lettered alone and the rest of the batch is applied.  Other ops
 * (deletes, payload and vector updates, conditional upserts) are written
 * one per message, in order.
 *
 * ERRORS
 * Permanent errors are the message's fault - invalid JSON or shape,
 * wrong dimension, bad id, unknown collection, unsupported feature,
 * message too large - and the message goes to the dead-letter queue.
 * Anything else (disk full, busy, a collection refusing writes until
 * restarted, no memory, a dead letter that neither the dead-letter topic
 * nor the local dead-letter store took - dlq.h) is never the
 * message's fault: the message is reported SINK_RETRY, and ingest.c
 * re-reads the partition from there after a backoff.
 *
 * AUTO-CREATE (opt-in: kafka.auto_create_collections)
 * A message whose target collection does not exist, and which carries
 * vectors (an upsert: the first point with vectors decides), creates it
 * before it is applied: catalog_create with {"vectors": {"size": dim,
 * "distance": D}} for an unnamed dense vector, or {"vectors": {name:
 * {"size": dim, "distance": D}, ...}} for named ones, D being
 * auto_create_distance.  A create that loses a race (ERR_EXISTS) is fine:
 * the collection is then acquired.  A message without vectors (delete,
 * payload ops, vector deletes) for an unknown collection is dead-lettered
 * as without auto-create.  Without auto-create, unknown collections are
 * dead-lettered.
 *
 * ROUTES
 * A topic with a route is applied to every collection of the route (dual
 * writes); a collection_name in such a message must be one of them.  A
 * message on a topic without a route goes to the collection it names
 * (value, or key of a tombstone), and is dead-lettered if it names none.
 * A route's collection may carry a model override, "coll1,coll2:model":
 * every Document of the message is embedded with that model for coll2,
 * and with the model the Document names for coll1 (dual writes during a
 * model migration).  An override naming an unknown model fails sink_new.
 *
 * DOCUMENTS
 * A vector may be a Qdrant Document {"text", "model"} (msg.h).  Each
 * target embeds the message's Documents (embed/embed_op.h, one call per
 * model) before its op is validated, so only floats reach the WAL.  An
 * unknown model or a model whose dim is not the collection's is the
 * message's fault: dead letter (ERR_INVALID, TASK_PUT).  A timeout or
 * repeated 5xx of the embedder is not: SINK_RETRY.  Auto-create takes a
 * Document's dim from its model.
 *
 * Threads: a sink_t is used by one thread (the ingest consumer);
 * sink_stats_get may be called from any thread; sink_reapply see below.
 */
#ifndef VECLOG_SINK_H
#define VECLOG_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "dlq/dlq.h"
#include "embed/embed.h"
#include "store/catalog.h"
#include "store/err.h"

typedef struct sink sink_t;

typedef struct sink_opts {
    const char *const *routes;   /* NULL, or "topic", "coll1,coll2", ..., NULL */
    size_t max_message_bytes;    /* key + value larger than this are dead-lettered; 0 = 32 MiB */
    bool auto_create;            /* AUTO-CREATE above; false = unknown collections are dead */
    const char *auto_create_distance; /* Cosine, Dot, Euclid or Manhattan; NULL = Cosine */
    const embed_reg_t *embed;    /* models for Documents (borrowed, outlives the sink);
                                  * NULL: every Document's model is unknown */
} sink_opts_t;

enum sink_outcome {
    SINK_APPLIED = 0,            /* written to at least one collection */
    SINK_SKIPPED,                /* already in every target collection */
    SINK_DEAD,                   /* in the dead-letter topic (for at least one target) */
    SINK_RETRY                   /* not done: read it again later */
};

/* cat and dlq are borrowed and must outlive the sink; routes are copied.
 * ERR_INVALID for a route naming an invalid collection name or an unknown
 * model, or an unknown auto_create_distance. */
int sink_new(catalog_t *cat, dlq_t *dlq, const sink_opts_t *o, sink_t **out, err_t *err);
void sink_free(sink_t *s);

/* Apply msgs[0..n) (consumed messages, in the consumer's order; borrowed)
 * and wait for their dead letters.  outcome[i] (enum sink_outcome) for
 * each; why gets the first retriable error, if any. */
void sink_apply(sink_t *s, const rd_kafka_message_t *const *msgs, size_t n, uint8_t *outcome,
                err_t *why);

/* Where (topic, partition) must resume, by the rule above.  dflt is an
 * offset >= 0 or RD_KAFKA_OFFSET_BEGINNING / RD_KAFKA_OFFSET_END; so is
 * the result. */
int64_t sink_resume_offset(sink_t *s, const char *topic, int32_t partition, int64_t dflt);

typedef struct sink_pos {
    const char *topic;
    int32_t partition;
    int64_t next;                /* every message before this one is done */
} sink_pos_t;

/* For each collection that has a stored offset for one of the partitions
 * below next - 1, store next - 1 (one op per collection, carrying all of
 * them).  Only correct when everything before next is applied or
 * dead-lettered for every collection: the caller knows. */
int sink_watermark(sink_t *s, const sink_pos_t *pos, size_t n, err_t *err);

/* Apply one message (a dead letter's original key and value, borrowed)
 * now, outside the consumer: routed as a message of topic (NULL = no
 * route) would be, decoded and validated the same way, and written as a
 * plain mutation to each target in turn - without a source offset, since
 * the partition has long moved past it.  The write lands after anything
 * applied since (a producer "version" still decides between them).
 * *applied = targets written; on an error the targets before it keep
 * their write, and err names the collection.  Thread: uses only the
 * sink's fixed settings and the catalog, so any one thread at a time per
 * sink_t (the dead-letter tool's), concurrently with sink_apply. */
int sink_reapply(sink_t *s, const char *topic, const void *key, size_t key_len,
                 const void *value, size_t value_len, size_t *applied, err_t *err);

#define SINK_REASONS 16          /* err codes (store/err.h) fit below this */

typedef struct sink_stats {
    uint64_t messages;           /* messages seen */
    uint64_t applied, skipped, dead, retried;   /* per message, by outcome */
    uint64_t dead_by[SINK_REASONS]; /* dead letters written, by err code (err_code_name) */
    uint64_t ops;                /* ops written (WAL records), watermarks excluded */
    uint64_t watermarks;         /* watermark ops written */
} sink_stats_t;

void sink_stats_get(sink_t *s, sink_stats_t *st);

#endif
