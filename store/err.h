/*
 * err.h - error reporting shared by every veclog module.
 *
 * Design: a function that can fail returns an int code (ERR_OK == 0) and,
 * when the caller passes a non-NULL err_t, fills it with the same code, a
 * human-readable message and whether retrying may succeed.  The retriable
 * flag is what ingest uses to decide retry-with-backoff versus dead-letter:
 * invalid input is never retriable, a full disk or a busy store is.
 *
 * The message buffer is fixed-size so that filling an error never
 * allocates (an out-of-memory error must be reportable too).
 */
#ifndef VECLOG_ERR_H
#define VECLOG_ERR_H

#include <stdbool.h>

enum err_code {
    ERR_OK = 0,
    ERR_INVALID,      /* bad input: malformed JSON, wrong dimension, ...  (HTTP 400) */
    ERR_NOT_FOUND,    /* collection, alias or point missing               (HTTP 404) */
    ERR_EXISTS,       /* collection or alias already exists               (HTTP 409) */
    ERR_UNSUPPORTED,  /* valid request for a feature veclog lacks         (HTTP 501) */
    ERR_IO,           /* filesystem or RocksDB failure                    (HTTP 500) */
    ERR_CORRUPT,      /* on-disk data failed a checksum or format check   (HTTP 500) */
    ERR_NOMEM,        /* allocation failed                                (HTTP 500) */
    ERR_FULL,         /* disk full or quota: retriable                    (HTTP 507/500) */
    ERR_BUSY,         /* resource temporarily unavailable: retriable      (HTTP 503) */
    ERR_TOO_LARGE,    /* request or message too large                     (HTTP 413) */
    ERR_CLOSED,       /* the object is shutting down                      (HTTP 503) */
    ERR_FORBIDDEN,    /* api key missing or wrong                         (HTTP 403) */
    ERR_TIMEOUT       /* a wait ran out of time: retriable                (HTTP 408/503) */
};

#define ERR_MSG_MAX 512

typedef struct err {
    int code;
    bool retriable;
    char msg[ERR_MSG_MAX];
} err_t;

/* Fill *e (if non-NULL) and return code.  Thread-safe: touches only *e. */
int err_set(err_t *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like err_set, with an explicit retriable flag (err_set derives it from
 * the code: ERR_FULL, ERR_BUSY and ERR_TIMEOUT are retriable). */
int err_setr(err_t *e, int code, bool retriable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Map an errno value (captured once by the caller) to a code: ENOSPC and
 * EDQUOT give ERR_FULL, ENOMEM gives ERR_NOMEM, EAGAIN/EBUSY give ERR_BUSY,
 * everything else ERR_IO.  The message is "<what>: <strerror(errnum)>". */
int err_errno(err_t *e, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix the existing message with more context ("open collection x: ..."). */
int err_wrap(err_t *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void err_clear(err_t *e);

/* Stable short name of a code ("invalid", "not_found", ...), for logs and
 * metrics labels.  Returns a static string. */
const char *err_code_name(int code);

#endif
