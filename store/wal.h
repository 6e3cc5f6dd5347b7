/*
 * wal.h - the per-collection write-ahead log.
 *
 * Every mutation of a collection is appended here, and made durable
 * according to the sync mode, before it is applied to the store.  The WAL
 * knows nothing of what a record means: it stores opaque byte strings under
 * consecutive sequence numbers (1, 2, 3, ...) and gives them back in order.
 *
 * ON-DISK FORMAT (all integers little-endian)
 *
 * A WAL is a directory of segment files named "wal-<first_seq, 20 digits>.log".
 * Each segment starts with a 32-byte header:
 *
 *   offset size  field
 *   0      8     magic "VLWALSEG"
 *   8      4     format version (1)
 *   12     4     reserved, 0
 *   16     8     first_seq: sequence number of the first record in the file
 *   24     4     CRC-32C of bytes 0..23
 *   28     4     reserved, 0
 *
 * followed by records, back to back:
 *
 *   0      4     len: payload length in bytes (at most WAL_RECORD_MAX)
 *   4      4     crc: CRC-32C of bytes 8..15 and of the payload, then of
 *                bytes 0..3 (so a damaged length is caught too)
 *   8      8     seq: sequence number, exactly one more than the previous
 *                record's (the first record's equals first_seq)
 *   16     len   payload
 *
 * Recovery (wal_open) reads every segment in order and stops at the first
 * record that is short, fails its CRC, or breaks the sequence.  What follows
 * that point cannot have been acknowledged (a write is acknowledged only
 * after its bytes and everything before them were synced), so the file is
 * truncated there with a warning and any later segment is removed.
 *
 * DURABILITY AND GROUP COMMIT
 *
 * wal_append writes a record with one pwritev(2) under the WAL mutex and
 * returns its sequence number; wal_sync(seq) then makes it durable.  In
 * sync mode "always", concurrent callers share fdatasync calls: the first
 * becomes the leader and syncs everything written so far, the others wait
 * on a condition variable and return when the leader's sync covers their
 * record.  In "interval" mode a background thread syncs every interval and
 * wal_sync does not wait; in "none" mode only rollover and close sync.
 *
 * A segment is closed (synced, then never written again) when it passes
 * segment_bytes; the next record starts a new file.  wal_truncate removes
 * whole segments whose records are all at or below a sequence number the
 * caller has made durable elsewhere (the store).
 *
 * A failed write is cut back off the file so that no partial record is left
 * in the middle of a segment; if that is impossible, or an fdatasync fails,
 * the WAL is marked broken and refuses appends until reopened (after a
 * failed fsync the kernel may have dropped the dirty pages, so the only safe
 * way on is to recover from what the disk really holds).
 */
#ifndef VECLOG_WAL_H
#define VECLOG_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "err.h"

#define WAL_RECORD_MAX (256u << 20)
#define WAL_HEADER_SIZE 32
#define WAL_RECORD_HEADER 16

enum wal_sync_mode { WAL_SYNC_ALWAYS = 0, WAL_SYNC_INTERVAL, WAL_SYNC_NONE };

typedef struct wal wal_t;

typedef struct wal_opts {
    uint64_t segment_bytes;      /* roll over past this size (default 32 MiB) */
    int sync_mode;               /* enum wal_sync_mode */
    uint32_t sync_interval_ms;   /* for WAL_SYNC_INTERVAL */
    /* The first sequence number to use when the WAL is empty (the store's
     * last applied seq + 1), so numbering continues across truncation. */
    uint64_t next_seq_min;
    /* Fault injection for tests: replaces pwritev(2).  NULL in production. */
    ssize_t (*pwritev_fn)(int fd, const struct iovec *iov, int iovcnt, off_t off);
    /* Fault injection for tests: replaces fdatasync(2). */
    int (*fsync_fn)(int fd);
} wal_opts_t;

typedef struct wal_stats {
    uint64_t first_seq;          /* oldest record kept (0 if empty) */
    uint64_t last_seq;           /* newest record written (0 if none ever) */
    uint64_t synced_seq;         /* newest record known durable */
    uint64_t bytes;              /* bytes in all segments */
    uint32_t segments;
    uint64_t syncs;              /* fdatasync calls made */
    uint64_t sync_ns_total;      /* time spent in them */
    uint64_t appends;
    uint64_t truncated_bytes;    /* cut off a torn/corrupt tail at open */
} wal_stats_t;

/* Called for each record by wal_replay.  data is borrowed for the call
 * only.  Return ERR_OK to continue, anything else stops the replay and is
 * returned by wal_replay. */
typedef int (*wal_replay_fn)(void *ctx, uint64_t seq, const void *data, size_t len, err_t *err);

/* Open (creating if needed) the WAL in dir, recovering from a torn or
 * corrupt tail as described above.  opts may be NULL for defaults.  On
 * success *out is owned by the caller (wal_close).  Single-threaded. */
int wal_open(const char *dir, const wal_opts_t *opts, wal_t **out, err_t *err);

/* Hand every record with seq >= from_seq to fn, in order.  Call before any
 * append, from the opening thread. */
int wal_replay(wal_t *w, uint64_t from_seq, wal_replay_fn fn, void *ctx, err_t *err);

/* Append one record made of the concatenation of iov[0..iovcnt) (at most
 * 8 pieces) and return its sequence number in *seq.  The record is written
 * but not necessarily durable: call wal_sync.  Thread-safe; records are
 * numbered in the order appends take the WAL mutex.  ERR_FULL (retriable)
 * when the disk is full, in which case nothing of the record remains. */
int wal_append(wal_t *w, const struct iovec *iov, int iovcnt, uint64_t *seq, err_t *err);

/* Make every record up to seq durable (mode "always"; returns at once in
 * the other modes).  Thread-safe; concurrent callers share one fdatasync. */
int wal_sync(wal_t *w, uint64_t seq, err_t *err);

/* Remove closed segments all of whose records are <= upto, and roll the
 * active segment over first if it is wholly <= upto.  Thread-safe. */
int wal_truncate(wal_t *w, uint64_t upto, err_t *err);

void wal_stats_get(wal_t *w, wal_stats_t *out);

/* Sync and close; w is freed.  No other call may be running. */
void wal_close(wal_t *w);

#endif
