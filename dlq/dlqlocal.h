/*
 * dlqlocal.h - the local dead-letter store: dead letters that could not be
 * written to the dead-letter topic, appended durably to a file on disk so
 * that the partition can move on.
 *
 * WHY
 * A partition never moves past a message that is neither applied nor
 * stored as a dead letter somewhere.  When the dead-letter topic cannot
 * be written (dlq.c: not delivered within dlq_timeout_ms), the record is
 * appended here (write + fsync) and counts as delivered-locally; only if
 * this store fails too does the partition pause and retry.
 *
 * FILES
 * <dir>/local-<n>.log, n a decimal number.  Each dlqlocal_open picks n one
 * above the highest existing file (0 when none), and the file is created
 * at the first append: records of an earlier run are never appended to
 * (a torn tail there would hide what followed).  dlqlocal_rotate closes
 * the current file, so that the next append starts local-<n+1>.log; a
 * closed file never changes again, and the dead-letter producer forwards
 * closed files to the dead-letter topic once it is writable again and
 * then deletes them (dlq.h LOCAL STORE).  Until then `veclog dlq list`
 * (and GET /dlq) shows their records (dlqlocal_list_json).  A file that
 * fails its CRC is renamed local-<n>.log.corrupt after its good records
 * are forwarded, for an operator to look at.
 *
 * BYTE FORMAT (integers little-endian)
 *   file    = magic "VLDLQ\0\0\1" (8 bytes), then records until end of file
 *   record  = u32 body_len, u32 crc32c(body), body (body_len bytes)
 *   body    = u8 version (1)
 *             i32 partition, i64 offset, i64 timestamp (ms; -1 = none)
 *             str topic
 *             bytes key, bytes value          (len -1 = Kafka null)
 *             u32 n_headers, then n_headers x (str name, bytes value)
 *             str stage                       (KEY_CONVERTER, VALUE_CONVERTER, TASK_PUT)
 *             str class_name                  (veclog.error.<code>)
 *             str message                     (the error)
 *   str     = u32 len, len bytes (no NUL)
 *   bytes   = i32 len (-1 = null), max(len, 0) bytes
 * The headers are the original message's; the Kafka Connect error headers
 * of dlq.h are derived from the other fields.  Reading stops at the first
 * record that is cut short (a torn tail after a crash: the records before
 * it are good) or whose CRC does not match (ERR_CORRUPT).
 *
 * Threads: a dlqlocal_t is used by one thread at a time (the dead-letter
 * producer's); dlqlocal_read is thread-safe.
 */
#ifndef VECLOG_DLQLOCAL_H
#define VECLOG_DLQLOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "store/err.h"

typedef struct dlqlocal dlqlocal_t;

typedef struct dlqlocal_hdr {
    const char *name;            /* NUL-terminated */
    const void *value;           /* NULL = null value */
    size_t len;
} dlqlocal_hdr_t;

/* One record.  All pointers are borrowed (by dlqlocal_append, from the
 * caller; in a dlqlocal_read callback, valid during the call).  key and
 * value NULL = Kafka null.  Strings read back are NUL-terminated. */
typedef struct dlqlocal_rec {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp;           /* -1 = none */
    const void *key, *value;
    size_t key_len, value_len;
    const dlqlocal_hdr_t *headers;
    size_t n_headers;
    const char *stage, *class_name, *message;
} dlqlocal_rec_t;

/* Prepare the store in dir (created if missing, with its parents).  *out
 * owned by the caller (dlqlocal_close).  ERR_IO when dir cannot be made. */
int dlqlocal_open(const char *dir, dlqlocal_t **out, err_t *err);
void dlqlocal_close(dlqlocal_t *l);

/* Append r durably (write + fsync; the file and directory entry too at
 * creation).  On an error (ERR_IO, ERR_FULL, ERR_NOMEM; retriable) the
 * record is not stored, and a partial write is cut off again. */
int dlqlocal_append(dlqlocal_t *l, const dlqlocal_rec_t *r, err_t *err);

/* Path of the current file (created or not); borrowed until the next
 * dlqlocal_rotate or dlqlocal_close. */
const char *dlqlocal_path(const dlqlocal_t *l);

/* Close the current file (if created): the next append creates the next
 * one.  Afterwards every local-<n>.log of the directory is closed. */
void dlqlocal_rotate(dlqlocal_t *l);

/* Closed files of l's directory, oldest first: *paths is a malloc'd
 * array of *n malloc'd paths (free each, then the array).  The current
 * file is never among them.  ERR_NOMEM; a directory that cannot be read
 * gives none. */
int dlqlocal_closed(const dlqlocal_t *l, char ***paths, size_t *n, err_t *err);

/* Call cb for each good record of the file at path, in order; cb returns
 * 0 to go on, -1 to stop (not an error), or an ERR_ code, returned.  *n = records read; *torn = the file ends in a cut
 * record.  ERR_CORRUPT for a bad magic or CRC (records before it were
 * given to cb), ERR_IO, ERR_NOMEM. */
typedef int (*dlqlocal_cb)(const dlqlocal_rec_t *r, void *arg);
int dlqlocal_read(const char *path, dlqlocal_cb cb, void *arg, size_t *n, bool *torn,
                  err_t *err);

/* The records of every local-<n>.log in dir, for `veclog dlq list`: a
 * new array (caller owns) of {"file", "topic", "partition", "offset",
 * "timestamp", "stage", "class_name", "message", "value_bytes"}, plus
 * {"file", "error"} for a file that is torn or unreadable past its good
 * records.  An empty array when dir does not exist; NULL without memory. */
cJSON *dlqlocal_list_json(const char *dir);

#endif
