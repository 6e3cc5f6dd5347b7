/*
 * backfill_internal.h - shared by backfill.c (manager, worker, control,
 * jobs file) and backfill_page.c (reading a page of the source and writing
 * it to the target with its cursor).  Not a public interface.
 */
#ifndef VECLOG_BACKFILL_INTERNAL_H
#define VECLOG_BACKFILL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "backfill.h"
#include "store/ptid.h"

enum { ST_RUNNING, ST_PAUSED, ST_COMPLETED, ST_CANCELLED, ST_FAILED };

#define RATE_SAMPLES 64
#define RATE_WINDOW 10.0
#define REASON_MAX 300

typedef struct bf_def {
    char id[BACKFILL_ID_MAX + 1];
    char *source, *target, *field, *model, *vector;
    bool embed;
    uint32_t batch;
    double rate;                /* points/s, 0 = unlimited */
} bf_def_t;

typedef struct bf_error {
    char id[PTID_STR_MAX];
    char reason[REASON_MAX];
    bool retriable;
    bool dead_lettered;         /* a skipped point whose dead letter is written */
    double time;
} bf_error_t;

typedef struct bf_job {
    bf_def_t d;
    backfill_mgr_t *m;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* state changes, stop */
    int state;
    bool stop;                  /* manager closing or job deleted */
    bool th_started, th_exited;
    pthread_t th;
    char reason[REASON_MAX];    /* why it failed */
    bool at_end, has_next;      /* cursor */
    ptid_t next;
    uint64_t done, skipped, inserted, total, errors;
    bf_error_t last[BACKFILL_ERRORS_KEPT];
    size_t n_last;              /* ring: next slot is n_last % KEPT */
    double created, started, updated;
    double samp_t[RATE_SAMPLES];
    uint64_t samp_n[RATE_SAMPLES];
    size_t n_samp;
} bf_job_t;

struct backfill_mgr {
    catalog_t *cat;
    char *dir;                  /* <storage_path>/jobs */
    const embed_reg_t *reg;
    uint32_t retry_min, retry_max;
    pthread_mutex_t mu;         /* jobs[] */
    pthread_mutex_t ctl;        /* serializes create / control / close */
    bf_job_t **jobs;
    size_t n_jobs;
    dlq_t *dlq;                 /* borrowed, NULL = no dead letters */
    pthread_mutex_t dlq_mu;     /* dlq_t is single-threaded: one job's round at a time */
};

/* A point skipped in a page, dead-lettered before the page is written and
 * reported once it is durable. */
typedef struct bf_skip {
    char id[PTID_STR_MAX];
    char reason[REASON_MAX];
    const cJSON *rec;           /* the source record (borrowed from the page) */
    size_t ord;                 /* its index in the page */
    bool dead_lettered;
} bf_skip_t;

/* Record an error of the job (its mutex held): id NULL for a page-level
 * error; dead_lettered for a skipped point whose dead letter is written. */
void backfill_job_error_add(bf_job_t *j, const char *id, const char *reason, bool retriable,
                            bool dead_lettered);

/* Add a progress sample for the rate (job mutex held). */
void backfill_job_sample(bf_job_t *j);

/* Read the page at the job's cursor, write it to the target with the new
 * cursor as the op's META, and commit the counters.  *finished when the
 * source had nothing after the page; *n_read points read.  Worker thread
 * of j only; takes j's mutex briefly. */
int backfill_page_run(bf_job_t *j, bool *finished, size_t *n_read, err_t *err);

#endif
