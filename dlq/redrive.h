/*
 * redrive.h - operator tooling for the dead-letter topic (dlq.h):
 * list, show, redrive and purge dead letters.  `veclog dlq ...` and the
 * HTTP endpoints /dlq... are thin layers over these functions.
 *
 * Position.  Kafka cannot delete single records, so "purged" means
 * "handled": the tool keeps its own position per partition of the
 * dead-letter topic as the committed offsets of the consumer group
 * "<group_id>.dlq-tool" (never the ingest group).  A dead letter is
 * pending when its offset is at or after that position (or after the low
 * watermark when nothing was committed).  redrive_purge moves the
 * position; retention deletes the records themselves.
 *
 * Reading.  The consumer is assigned partitions by hand (no subscribe, no
 * rebalance): it reads from the position up to the high watermark
 * measured at the start of the call, with a timeout, so a call always
 * ends.  Results are cJSON documents (the same for the CLI and HTTP).
 *
 * Redrive has two modes.  REDRIVE_PRODUCE re-produces a dead letter's
 * key, value, timestamp and headers (without __connect.errors.* and
 * __veclog.*) to its original topic and partition, with
 * __veclog.redrive.count = the dead letter's count + 1; ingest then
 * applies it like any message (or dead-letters it again, counted).  The
 * loop guard skips records whose count is >= max_redrives unless force.
 * REDRIVE_APPLY hands the original topic, key and value to the caller's
 * apply function (redrive_opts_t.apply: the server's or the CLI's store),
 * which writes it at once; a record it refuses is reported "failed" with
 * the reason and stays pending - nothing is produced, so no loop can
 * arise and the guard does not apply.  Either way redriving does not
 * purge: purge afterwards.
 *
 * Dead letters the topic did not take are in the local store (dlqlocal.h):
 * redrive_list lists them under "local" ("local_total"); show, redrive
 * and purge do not reach them.
 *
 * Ownership: every returned cJSON is owned by the caller.
 * Threads: a redrive_t is used by one thread at a time; separate
 * redrive_t objects are independent (each has its own clients).
 */
#ifndef VECLOG_REDRIVE_H
#define VECLOG_REDRIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store/err.h"

typedef struct redrive redrive_t;

#define REDRIVE_DEFAULT_MAX 3

typedef struct redrive_opts {
    const char *brokers;            /* bootstrap.servers; required */
    const char *topic;              /* the dead-letter topic; required */
    const char *group_id;           /* kafka.group_id; the tool uses "<group_id>.dlq-tool" */
    const char *const *properties;  /* NULL or "name", "value", ..., NULL (kafka.properties) */
    int timeout_ms;                 /* per Kafka request and per read; 0 = 5000 */
    const char *local_dir;          /* NULL, or the local dead-letter store (dlqlocal.h),
                                     * listed by redrive_list */
    /* REDRIVE_APPLY: write one dead letter's original message (borrowed
     * for the call) to the store; ERR_OK or an error naming the cause.
     * NULL = this tool cannot apply (ERR_UNSUPPORTED for that mode). */
    int (*apply)(void *ctx, const char *topic, const void *key, size_t key_len,
                 const void *value, size_t value_len, err_t *err);
    void *apply_ctx;
} redrive_opts_t;

enum redrive_mode { REDRIVE_PRODUCE = 0, REDRIVE_APPLY };

/* One dead letter by its place in the dead-letter topic. */
typedef struct redrive_ref {
    int32_t partition;
    int64_t offset;
} redrive_ref_t;

typedef struct redrive_req {
    bool all;                       /* every pending dead letter; else refs */
    const redrive_ref_t *refs;
    size_t n_refs;
    bool dry_run;                   /* report only */
    int max_redrives;               /* loop guard; <= 0 = REDRIVE_DEFAULT_MAX */
    bool force;                     /* ignore the loop guard */
    int mode;                       /* enum redrive_mode */
} redrive_req_t;

/* Strings in o are copied.  *out owned by the caller (redrive_close). */
int redrive_open(const redrive_opts_t *o, redrive_t **out, err_t *err);
void redrive_close(redrive_t *r);

/* Parse "P:O" (both non-negative decimals).  ERR_INVALID otherwise. */
int redrive_ref_parse(const char *s, redrive_ref_t *ref, err_t *err);

/* Pending dead letters: {"topic", "dead_letters": [{"partition",
 * "offset", "timestamp", "original": {"topic", "partition", "offset"},
 * "stage", "class_name", "message", "redrive_count", "key"}], "total",
 * "counts": {class_name: n}}. */
int redrive_list(redrive_t *r, cJSON **out, err_t *err);

/* One dead letter, purged or not: the list entry plus "value" and
 * "headers": [{"name", "value"}].  ERR_NOT_FOUND when the offset is not
 * in the topic. */
int redrive_show(redrive_t *r, const redrive_ref_t *ref, cJSON **out, err_t *err);

/* Redrive: {"mode": "produce" | "apply", "dry_run", "redriven": [entry +
 * "status"], "skipped": [entry + "reason"], "failed": n}.  Named refs
 * must exist (ERR_NOT_FOUND otherwise, nothing sent).  Produce: ERR_BUSY
 * when a record could not be produced (*out still filled: see each
 * "status").  Apply: "status" is "applied" or the error; a record the
 * store refuses counts in "failed" and is not an error of the call,
 * except a retriable one (disk full, busy: ERR_BUSY, *out filled). */
int redrive_run(redrive_t *r, const redrive_req_t *q, cJSON **out, err_t *err);

/* Mark dead letters handled: all pending ones (until == NULL), or those
 * of until->partition up to and including until->offset.
 * {"partitions": [{"partition", "from", "to"}], "purged": n}. */
int redrive_purge(redrive_t *r, const redrive_ref_t *until, cJSON **out, err_t *err);

#endif
