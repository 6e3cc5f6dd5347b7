/*
 * dlq.h - the dead-letter queue: Kafka messages that veclog cannot apply
 * are produced to a dead-letter topic, never dropped.
 *
 * Each dead letter is the original message - key, value, headers and
 * timestamp unchanged - plus Kafka Connect's error headers, so the tools
 * that read Connect's dead-letter queues read veclog's too (values are
 * UTF-8 text):
 *
 *   __connect.errors.topic                  source topic
 *   __connect.errors.partition              source partition, decimal
 *   __connect.errors.offset                 source offset, decimal
 *   __connect.errors.stage                  KEY_CONVERTER, VALUE_CONVERTER or TASK_PUT
 *   __connect.errors.exception.class.name   veclog.error.<code>, e.g. veclog.error.invalid
 *   __connect.errors.exception.message      the error, naming the field or collection
 *   __veclog.redrive.count                  how many times this message was dead-lettered
 *                                           before: 0 the first time; a message redriven
 *                                           with its headers counts up, so redrive tools
 *                                           can stop a loop
 *
 * Headers of the original message named __connect.errors.* or __veclog.*
 * (from an earlier dead-lettering) are replaced, not repeated.  If the
 * brokers refuse the record as too large, it is sent again without its
 * value and with the header __veclog.value.omitted (the value's size in
 * bytes): the dead letter then still says which message, where and why.
 *
 * The producer is idempotent with acks=all, so an acknowledged dead
 * letter is on every in-sync replica, and retries inside librdkafka do not
 * duplicate it.  Delivery is confirmed in rounds: dlq_send queues records,
 * dlq_wait waits until each is acknowledged or has failed, and
 * dlq_delivered tells which.  The caller must not move its consumer past
 * a message whose dead letter was not delivered (ingest.c pauses the
 * partition and tries again).
 *
 * LOCAL STORE
 * With dlq_opts_t.local_dir, a record the dead-letter topic did not take
 * (refused, or not acknowledged within timeout_ms, or not even queued) is
 * appended durably to the local dead-letter store (dlqlocal.h) and counts
 * as delivered (dlq_delivered true, dlq_stats_t.local): the partition
 * moves on.  Only when the local store fails too is the record
 * undelivered.  A record given up on may still reach the topic later, so
 * it can be in both (at-least-once).  Locally stored records are
 * forwarded to the topic by dlq_forward_local - the ingest thread calls
 * it on every loop; it acts when local records exist and either a round
 * of dead letters just reached the topic (it is writable again), the
 * dlq_t was just opened (files of an earlier run), or a minute passed
 * since the last attempt.  Forwarding closes the current local file, and
 * sends each closed file's records (with the same headers a direct dead
 * letter would have had) through a producer of its own; a file is
 * deleted once every record of it is acknowledged, else kept whole for
 * the next attempt.  Across a crash, or a forward that failed half-way,
 * a dead letter may be written twice (at-least-once), never zero times.
 *
 * A dead letter need not come from a consumed message: dlq_send_parts
 * takes its fields one by one (a backfill job dead-letters a point it
 * cannot embed as topic "backfill/<job id>", partition -1, offset its
 * ordinal in the job); the record, its headers and the local store are
 * the same as for dlq_send.
 *
 * Threads: a dlq_t is used by one thread at a time (the ingest consumer;
 * the backfill manager serializes its jobs' calls with a mutex).
 */
#ifndef VECLOG_DLQ_H
#define VECLOG_DLQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "dlq/dlqlocal.h"
#include "store/err.h"

typedef struct dlq dlq_t;

typedef struct dlq_opts {
    const char *brokers;            /* bootstrap.servers; required */
    const char *topic;              /* the dead-letter topic; required */
    const char *const *properties;  /* NULL, or "name", "value", ..., NULL: the operator's
                                     * librdkafka properties (kafka.properties) */
    int timeout_ms;                 /* longest wait for one record (message.timeout.ms);
                                     * 0 = 10000 */
    const char *local_dir;          /* NULL, or the local dead-letter store's directory
                                     * (dlqlocal.h), e.g. <storage_path>/dlq */
} dlq_opts_t;

/* Create the producer.  Strings in o are copied.  *out owned by the
 * caller (dlq_close).  ERR_INVALID names a property librdkafka rejects. */
int dlq_open(const dlq_opts_t *o, dlq_t **out, err_t *err);

/* Wait (up to the timeout) for records still in flight, then free. */
void dlq_close(dlq_t *d);

/* Queue the dead letter of msg (a consumed message: borrowed, and must
 * stay valid until the next dlq_wait returns).  stage is the Connect
 * stage name, why the error (code and message).  *ticket identifies the
 * record for dlq_delivered in this round.  An error here (ERR_BUSY: the
 * producer's queue is full even after waiting; ERR_NOMEM) means the record
 * was not queued; it is retriable. */
int dlq_send(dlq_t *d, const rd_kafka_message_t *msg, const char *stage, const err_t *why,
             size_t *ticket, err_t *err);

/* The source of a dead letter given field by field (dlq_send_parts): what
 * dlq_send takes from a consumed message.  All pointers borrowed. */
typedef struct dlq_parts {
    const char *topic;              /* __connect.errors.topic; required */
    int32_t partition;              /* -1 when it never was a partition's */
    int64_t offset;
    const void *key;                /* NULL = Kafka null key */
    size_t key_len;
    const void *value;              /* NULL = Kafka null value */
    size_t value_len;
    int64_t timestamp;              /* ms; -1 = none (the broker stamps it) */
    const dlqlocal_hdr_t *headers;  /* the source's own headers, NULL when n_headers 0 */
    size_t n_headers;
} dlq_parts_t;

/* Queue the dead letter of p, exactly as dlq_send does for a message (same
 * headers, local store, too-large retry and errors).  p and everything it
 * points to are borrowed and must stay valid until the next dlq_wait
 * returns; stage and why are copied.  ERR_INVALID when p has no topic. */
int dlq_send_parts(dlq_t *d, const dlq_parts_t *p, const char *stage, const err_t *why,
                   size_t *ticket, err_t *err);

/* Wait until every record queued since the previous dlq_wait is
 * acknowledged or failed (at most the timeout plus a margin).  ERR_OK when
 * all were delivered; otherwise ERR_BUSY (retriable) naming the first
 * failure.  Ends the round: tickets are valid until the next dlq_send. */
int dlq_wait(dlq_t *d, err_t *err);

/* Whether the record of ticket (this round) was acknowledged. */
bool dlq_delivered(const dlq_t *d, size_t ticket);

/* Forward the local store's records to the topic (LOCAL STORE above)
 * when due, or now if force.  *forwarded = records acknowledged.  An
 * error (ERR_BUSY: the topic refused or did not answer; ERR_IO) is
 * retriable and logged; the records stay local and are tried again a
 * minute later.  Blocks up to the producer timeout per file.  Same thread
 * as dlq_send. */
int dlq_forward_local(dlq_t *d, bool force, size_t *forwarded, err_t *err);

/* Counters since dlq_open (any thread may read them; approximate). */
typedef struct dlq_stats {
    unsigned long long delivered, failed, value_omitted;
    unsigned long long local;       /* stored in the local dead-letter store */
    unsigned long long forwarded;   /* local records forwarded to the topic since */
} dlq_stats_t;

void dlq_stats_get(const dlq_t *d, dlq_stats_t *st);

#endif
