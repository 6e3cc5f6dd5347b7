/*
 * backfill.h - backfill jobs: copy a source collection into a target one,
 * insert-only, copying vectors or re-embedding a payload text field with a
 * model, resumable across restarts, observable and controllable (pause,
 * resume, cancel).  The zero-downtime embedding-model migration tool (see
 * docs/migration.md); backfill.c explains the design.
 *
 * A manager (backfill_mgr_t) owns the jobs of one storage path
 * (<storage_path>/jobs/<id>.json) and one worker thread per running job.
 * Job documents are Qdrant-style JSON:
 *
 *   {"id", "source", "target", "mode": "copy" | "embed",
 *    "field", "model", "vector" (embed only), "batch_size", "rate_limit"}
 *
 * Errors follow store/err.h: ERR_INVALID (400) for a bad definition,
 * naming the field; ERR_NOT_FOUND (404) for a missing job, collection or
 * model; ERR_EXISTS (409) for a job id taken or an action the job's state
 * forbids; ERR_IO / ERR_NOMEM.
 *
 * Dead letters.  With backfill_opts_t.dlq, every point a job skips for a
 * permanent reason (no text at the field, the model refuses the text) is
 * also sent to the dead-letter queue (dlq.h) before the job's cursor
 * moves past it: topic "backfill/<job id>" (it never was a Kafka
 * message), partition -1, offset the point's ordinal in the job (points
 * read before it: done + skipped), key the point id as JSON text, value
 * {"collection_name": <source>, "id": <id>, "payload": <payload>}, stage
 * TASK_PUT, class veclog.error.invalid, message the reason.  A page whose
 * dead letters are neither acknowledged nor stored locally is retried
 * (retriable error), so no point is passed that is neither copied nor
 * dead-lettered; a retried page may dead-letter a point twice
 * (at-least-once, like the DLQ itself).  The dlq_t is single-threaded and
 * jobs run one thread each: the manager serializes every use of it (one
 * page's send-and-wait round, forwarding its local store) with a mutex
 * of its own rather than opening one producer per job, so a node with
 * many jobs keeps one dead-letter connection and one local store.  The
 * workers also drive the forwarding of that local store (after each
 * page, when due): records of an earlier run wait for the next running
 * job.
 *
 * Threads: every backfill_mgr_* and backfill_job_* function is
 * thread-safe, except backfill_mgr_open and backfill_mgr_close (one
 * thread, no concurrent call).  Results are new JSON documents owned by
 * the caller.
 */
#ifndef VECLOG_BACKFILL_H
#define VECLOG_BACKFILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dlq/dlq.h"
#include "embed/embed.h"
#include "store/catalog.h"
#include "store/err.h"

#define BACKFILL_ID_MAX 64
#define BACKFILL_BATCH_DEFAULT 256u
#define BACKFILL_BATCH_MAX 10000u
#define BACKFILL_ERRORS_KEPT 8

typedef struct backfill_mgr backfill_mgr_t;

typedef struct backfill_opts {
    catalog_t *cat;             /* borrowed; must outlive the manager */
    const char *storage_path;   /* jobs live in <storage_path>/jobs; copied */
    const embed_reg_t *reg;     /* borrowed, may be NULL (then embed jobs: 404 model) */
    uint32_t retry_min_ms;      /* backoff after a retriable error: 0 = 200 */
    uint32_t retry_max_ms;      /* its cap: 0 = 10000 */
    dlq_t *dlq;                 /* borrowed, may be NULL (no dead letters: skips are only
                                 * counted and listed); must outlive the manager, used by
                                 * no one else (its local_dir apart from ingest's, e.g.
                                 * <storage_path>/dlq-backfill) */
} backfill_opts_t;

/* Load every job of <storage_path>/jobs (created if missing) and resume
 * the running ones from the cursor their target holds (coll_meta_get);
 * paused and finished jobs stay as they are.  A job file that cannot be
 * read is logged and skipped.  *out owned by the caller
 * (backfill_mgr_close).  Main thread, once. */
int backfill_mgr_open(const backfill_opts_t *opts, backfill_mgr_t **out, err_t *err);

/* Stop every worker (each finishes or abandons its batch: the cursor in
 * the target is always consistent) and free.  Job states are left as
 * persisted, so running jobs resume at the next open.  Call before the
 * catalog closes.  NULL is fine.  Main thread; no other call may race. */
void backfill_mgr_close(backfill_mgr_t *m);

/* Create a job from its definition (borrowed) and start it; *out is its
 * status.  Checks: unknown fields, types, the id ([A-Za-z0-9_.-], 1..64
 * characters, not starting with '.'), both collections exist (404), copy:
 * vectors sharing a name have the same dim (400), embed: the model exists
 * and its dim equals the target vector's (400).  The job file is durable
 * before this returns. */
int backfill_job_create(backfill_mgr_t *m, const cJSON *def, cJSON **out, err_t *err);

/* Status of one job: the definition plus state, done, skipped, inserted
 * (by this process since the job started or resumed: not durable), total, percent, rate (points/s over the last ~10 s), eta_seconds, the
 * cursor ("next"), errors {count, last: [{id, reason, retriable,
 * dead_lettered (the skipped point's dead letter is written), time}]},
 * started, updated (Unix seconds). */
int backfill_job_status(backfill_mgr_t *m, const char *id, cJSON **out, err_t *err);

/* {"jobs": [status, ...]} in creation order. */
int backfill_job_list(backfill_mgr_t *m, cJSON **out, err_t *err);

/* Control: action is "pause" (running -> paused), "resume" (paused or
 * failed -> running), "cancel" (running or paused -> cancelled) or
 * "delete" (any state but running: forgets the job and its file; the
 * target keeps what was copied).  *out is the new status ({"deleted":
 * true} for delete).  ERR_EXISTS when the state forbids the action. */
int backfill_job_control(backfill_mgr_t *m, const char *id, const char *action, cJSON **out,
                         err_t *err);

/* Wait until the job is no longer running (completed, failed, cancelled,
 * paused) or timeout_ms passes (ERR_TIMEOUT).  For tests and the CLI. */
int backfill_job_wait(backfill_mgr_t *m, const char *id, int timeout_ms, err_t *err);

/* Prometheus text: veclog_backfill_points_total, _errors_total,
 * _total_points and _running, labelled {job="id"}.  New string (caller
 * frees), NULL on allocation failure. */
char *backfill_mgr_metrics_text(backfill_mgr_t *m);

/* ---- the command line (backfill_cli.c) -------------------------------- */

/* One blocking HTTP/1.1 request (Connection: close) to base_url
 * ("http://host[:port]"), api_key sent as the api-key header when not
 * NULL.  *status is the HTTP status, *body the response body (new string,
 * caller frees).  ERR_BUSY (retriable) when the server cannot be reached,
 * ERR_INVALID for a bad url.  Any thread. */
int backfill_cli_request(const char *base_url, const char *method, const char *path,
                         const char *body, const char *api_key, int *status, char **resp,
                         err_t *err);

/* One progress line for a status document into buf: on a TTY
 * "[#####.....] 45% 22,500/50,000 1,234 pts/s ETA 0:22", else a plain
 * "state done/total percent rate eta" line.  Any thread. */
void backfill_cli_progress(const cJSON *status, bool tty, char *buf, size_t cap);

/* `veclog backfill start|status|pause|resume|cancel|list ...`: argv[0] is
 * "backfill".  default_url from the configuration (service.host and
 * http_port), api_key NULL for none.  Returns the process exit code.  Main
 * thread. */
int backfill_cli_main(int argc, char **argv, const char *default_url, const char *api_key);

#endif
