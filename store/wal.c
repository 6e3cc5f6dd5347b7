/*
 * wal.c - write-ahead log segments, recovery and group commit; the design
 * and the byte format are in wal.h.
 *
 * Locking: w->mu guards every field below it in struct wal.  Appends hold
 * it for the pwritev; a sync leader drops it around fdatasync so appends go
 * on meanwhile (they land after the leader's target and wait for the next
 * round).  Rollover waits for an in-flight sync to finish before it closes
 * the file descriptor the leader may be using.
 */
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "log.h"

#define WAL_MAGIC "VLWALSEG"
#define WAL_VERSION 1u
#define WAL_DEFAULT_SEGMENT (32ull << 20)

typedef struct wal_seg {
    uint64_t first_seq;
    uint64_t last_seq;  /* first_seq - 1 when empty */
    uint64_t size;
} wal_seg_t;

struct wal {
    char *dir;
    wal_opts_t opts;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    wal_seg_t *segs;        /* oldest first; the last one is active */
    size_t nsegs, capsegs;
    int fd;                 /* active segment */
    uint64_t next_seq;
    uint64_t synced_seq;
    bool syncing;           /* a leader is in fdatasync */
    bool broken;
    char broken_msg[256];
    bool stopping;
    pthread_t syncer;
    bool has_syncer;
    wal_stats_t st;
};

/* ---- small helpers ---------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void seg_path(const wal_t *w, uint64_t first_seq, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/wal-%020" PRIu64 ".log", w->dir, first_seq);
}

static int fsync_dir(const char *dir, err_t *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return err_errno(err, errno, "open directory %s", dir);
    if (fsync(fd) != 0) {
        int e = errno;
        close(fd);
        return err_errno(err, e, "fsync directory %s", dir);
    }
    close(fd);
    return ERR_OK;
}

static int do_fsync(wal_t *w, int fd)
{
    return w->opts.fsync_fn ? w->opts.fsync_fn(fd) : fdatasync(fd);
}

static uint32_t record_crc(const uint8_t *hdr, const void *payload, size_t len)
{
    uint32_t c = crc32c_extend(0, hdr + 8, 8);
    c = crc32c_extend(c, payload, len);
    return crc32c_extend(c, hdr, 4);
}

static int seg_push(wal_t *w, const wal_seg_t *s)
{
    if (w->nsegs == w->capsegs) {
        size_t cap = w->capsegs ? w->capsegs * 2 : 8;
        wal_seg_t *n = realloc(w->segs, cap * sizeof(*n));
        if (n == NULL)
            return ERR_NOMEM;
        w->segs = n;
        w->capsegs = cap;
    }
    w->segs[w->nsegs++] = *s;
    return ERR_OK;
}

/* ---- reading segments ------------------------------------------------- */

static int read_file(const char *path, uint8_t **buf, uint64_t *size, err_t *err)
{
    int rc = ERR_OK;
    int fd = open(path, O_RDONLY);
    struct stat sb;
    uint64_t off = 0;

    *buf = NULL;
    if (fd < 0)
        return err_errno(err, errno, "open %s", path);
    if (fstat(fd, &sb) != 0) {
        rc = err_errno(err, errno, "stat %s", path);
        goto out;
    }
    *size = (uint64_t)sb.st_size;
    *buf = malloc(*size ? *size : 1);
    if (*buf == NULL) {
        rc = err_set(err, ERR_NOMEM, "no memory to read %s", path);
        goto out;
    }
    while (off < *size) {
        ssize_t n = pread(fd, *buf + off, *size - off, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = err_errno(err, n < 0 ? errno : EIO, "read %s", path);
            goto out;
        }
        off += (uint64_t)n;
    }
out:
    if (rc != ERR_OK) {
        free(*buf);
        *buf = NULL;
    }
    close(fd);
    return rc;
}

typedef struct seg_scan {
    uint64_t good_end;      /* offset just past the last good record */
    uint64_t last_seq;      /* seq of the last good record, first_seq-1 if none */
    bool header_ok;
    const char *why;        /* why the scan stopped early, NULL if clean */
} seg_scan_t;

/* Walk the records of one segment image.  When fn is non-NULL it receives
 * every good record with seq >= from. */
static int seg_walk(const uint8_t *buf, uint64_t size, uint64_t first_seq,
                    uint64_t from, wal_replay_fn fn, void *ctx, seg_scan_t *sc, err_t *err)
{
    uint64_t off = WAL_HEADER_SIZE, expect = first_seq;

    memset(sc, 0, sizeof(*sc));
    sc->last_seq = first_seq - 1;
    if (size < WAL_HEADER_SIZE || memcmp(buf, WAL_MAGIC, 8) != 0 ||
        get_u32(buf + 8) != WAL_VERSION || get_u64(buf + 16) != first_seq ||
        get_u32(buf + 24) != crc32c_value(buf, 24)) {
        sc->why = "bad segment header";
        return ERR_OK;
    }
    sc->header_ok = true;
    sc->good_end = off;
    while (off < size) {
        if (size - off < WAL_RECORD_HEADER) {
            sc->why = "truncated record header";
            break;
        }
        uint32_t len = get_u32(buf + off);
        if (len > WAL_RECORD_MAX || size - off - WAL_RECORD_HEADER < len) {
            sc->why = "truncated record";
            break;
        }
        if (get_u32(buf + off + 4) != record_crc(buf + off, buf + off + 16, len)) {
            sc->why = "checksum mismatch";
            break;
        }
        if (get_u64(buf + off + 8) != expect) {
            sc->why = "sequence gap";
            break;
        }
        if (fn != NULL && expect >= from) {
            int rc = fn(ctx, expect, buf + off + 16, len, err);
            if (rc != ERR_OK)
                return rc;
        }
        off += WAL_RECORD_HEADER + len;
        sc->good_end = off;
        sc->last_seq = expect++;
    }
    return ERR_OK;
}

/* ---- opening ---------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int list_segments(const char *dir, uint64_t **out, size_t *n, err_t *err)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t cap = 0;

    *out = NULL;
    *n = 0;
    if (d == NULL)
        return err_errno(err, errno, "open WAL directory %s", dir);
    while ((de = readdir(d)) != NULL) {
        uint64_t first;
        char tail[8];
        if (sscanf(de->d_name, "wal-%20" SCNu64 ".%7s", &first, tail) != 2 ||
            strcmp(tail, "log") != 0 || strlen(de->d_name) != 28)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(*out, cap * sizeof(uint64_t));
            if (nv == NULL) {
                closedir(d);
                return err_set(err, ERR_NOMEM, "no memory listing %s", dir);
            }
            *out = nv;
        }
        (*out)[(*n)++] = first;
    }
    closedir(d);
    if (*n > 1)  /* *out is NULL for an empty directory: qsort's args must not be */
        qsort(*out, *n, sizeof(uint64_t), cmp_u64);
    return ERR_OK;
}

/* Cut segment file at good_end (after a torn or corrupt tail). */
static int seg_cut(wal_t *w, uint64_t first, uint64_t good_end, err_t *err)
{
    char path[4096];
    int fd, rc = ERR_OK;

    seg_path(w, first, path, sizeof(path));
    fd = open(path, O_WRONLY);
    if (fd < 0)
        return err_errno(err, errno, "open %s", path);
    if (ftruncate(fd, (off_t)good_end) != 0 || fsync(fd) != 0)
        rc = err_errno(err, errno, "truncate %s", path);
    close(fd);
    return rc;
}

static void seg_remove(wal_t *w, uint64_t first)
{
    char path[4096];
    seg_path(w, first, path, sizeof(path));
    if (unlink(path) != 0)
        log_warn("wal", "cannot remove %s: %s", path, strerror(errno));
}

/* Validate one segment during open; returns whether the chain continues. */
static int open_one(wal_t *w, uint64_t first, bool *stop, err_t *err)
{
    char path[4096];
    uint8_t *buf = NULL;
    uint64_t size = 0;
    seg_scan_t sc;
    int rc;

    seg_path(w, first, path, sizeof(path));
    rc = read_file(path, &buf, &size, err);
    if (rc != ERR_OK)
        goto out;
    rc = seg_walk(buf, size, first, 0, NULL, NULL, &sc, err);
    if (rc != ERR_OK)
        goto out;
    if (!sc.header_ok) {
        log_warn("wal", "%s: %s; removing it and any later segment", path, sc.why);
        w->st.truncated_bytes += size;
        seg_remove(w, first);
        *stop = true;
        goto out;
    }
    if (sc.why != NULL) {
        log_warn("wal", "%s: %s at offset %" PRIu64 " after seq %" PRIu64
                 "; cutting %" PRIu64 " bytes of torn or corrupt tail",
                 path, sc.why, sc.good_end, sc.last_seq, size - sc.good_end);
        w->st.truncated_bytes += size - sc.good_end;
        rc = seg_cut(w, first, sc.good_end, err);
        if (rc != ERR_OK)
            goto out;
        *stop = true;
    }
    wal_seg_t s = { .first_seq = first, .last_seq = sc.last_seq, .size = sc.good_end };
    if (seg_push(w, &s) != ERR_OK)
        rc = err_set(err, ERR_NOMEM, "no memory opening WAL");
out:
    free(buf);
    return rc;
}

static int open_segments(wal_t *w, err_t *err)
{
    uint64_t *firsts = NULL;
    size_t n = 0, i;
    bool stop = false;
    int rc = list_segments(w->dir, &firsts, &n, err);

    if (rc != ERR_OK)
        goto out;
    for (i = 0; i < n; i++) {
        if (w->nsegs > 0 && firsts[i] != w->segs[w->nsegs - 1].last_seq + 1) {
            log_warn("wal", "segment %" PRIu64 " does not follow seq %" PRIu64
                     "; removing it and any later segment",
                     firsts[i], w->segs[w->nsegs - 1].last_seq);
            break;
        }
        rc = open_one(w, firsts[i], &stop, err);
        if (rc != ERR_OK)
            goto out;
        if (stop) {
            i++;
            break;
        }
    }
    for (; i < n; i++) {
        log_warn("wal", "removing segment %" PRIu64 " after a broken chain", firsts[i]);
        seg_remove(w, firsts[i]);
    }
    if (stop || i < n)
        rc = fsync_dir(w->dir, err);
out:
    free(firsts);
    return rc;
}

/* Create a new active segment starting at w->next_seq.  Called with w->mu
 * held (or single-threaded at open). */
static int seg_create(wal_t *w, err_t *err)
{
    char path[4096];
    uint8_t hdr[WAL_HEADER_SIZE] = { 0 };
    int fd, rc;

    seg_path(w, w->next_seq, path, sizeof(path));
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_errno(err, errno, "create %s", path);
    memcpy(hdr, WAL_MAGIC, 8);
    put_u32(hdr + 8, WAL_VERSION);
    put_u64(hdr + 16, w->next_seq);
    put_u32(hdr + 24, crc32c_value(hdr, 24));
    if (pwrite(fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr) || do_fsync(w, fd) != 0) {
        int e = errno ? errno : EIO;
        close(fd);
        unlink(path);
        return err_errno(err, e, "write header of %s", path);
    }
    rc = fsync_dir(w->dir, err);
    if (rc != ERR_OK) {
        close(fd);
        return rc;
    }
    wal_seg_t s = { .first_seq = w->next_seq, .last_seq = w->next_seq - 1,
                    .size = WAL_HEADER_SIZE };
    if (seg_push(w, &s) != ERR_OK) {
        close(fd);
        return err_set(err, ERR_NOMEM, "no memory for WAL segment");
    }
    w->fd = fd;
    return ERR_OK;
}

static int open_active(wal_t *w, err_t *err)
{
    char path[4096];
    wal_seg_t *last = w->nsegs ? &w->segs[w->nsegs - 1] : NULL;
    int fd;

    w->next_seq = last ? last->last_seq + 1 : 1;
    if (w->next_seq < w->opts.next_seq_min) {
        w->next_seq = w->opts.next_seq_min;
        /* The store is past the end of the WAL (it applied records this
         * WAL lost, or everything was truncated).  A segment starting at
         * next_seq_min would not follow the old ones and the next open
         * would remove it; the old records are all applied, so drop them. */
        if (last != NULL) {
            log_warn("wal", "%s: next_seq_min %" PRIu64 " is past the last record %" PRIu64
                     "; removing the older segments", w->dir, w->next_seq, last->last_seq);
            for (size_t i = 0; i < w->nsegs; i++)
                seg_remove(w, w->segs[i].first_seq);
            w->nsegs = 0;
            last = NULL;
            int rc = fsync_dir(w->dir, err);
            if (rc != ERR_OK)
                return rc;
        }
    }
    w->synced_seq = w->next_seq - 1;
    if (last) {
        seg_path(w, last->first_seq, path, sizeof(path));
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
            return err_errno(err, errno, "open %s", path);
        /* A process that died without wal_close may have left records in
         * the page cache only: make them durable before synced_seq says so
         * and before a later segment can exist without them. */
        if (do_fsync(w, fd) != 0) {
            int e = errno;
            close(fd);
            return err_errno(err, e, "sync %s", path);
        }
        /* An empty segment is reused even if segment_bytes is tiny: creating
         * it again would list the same file twice. */
        if (last->size < w->opts.segment_bytes || last->last_seq < last->first_seq) {
            w->fd = fd;
            return ERR_OK;
        }
        close(fd);
    }
    return seg_create(w, err);
}

static void *syncer_main(void *arg);

int wal_open(const char *dir, const wal_opts_t *opts, wal_t **out, err_t *err)
{
    wal_t *w = calloc(1, sizeof(*w));
    int rc;

    *out = NULL;
    if (w == NULL)
        return err_set(err, ERR_NOMEM, "no memory for WAL");
    w->fd = -1;
    if (opts)
        w->opts = *opts;
    if (w->opts.segment_bytes == 0)
        w->opts.segment_bytes = WAL_DEFAULT_SEGMENT;
    if (w->opts.sync_interval_ms == 0)
        w->opts.sync_interval_ms = 100;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->dir = strdup(dir);
    if (w->dir == NULL) {
        rc = err_set(err, ERR_NOMEM, "no memory for WAL");
        goto fail;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        rc = err_errno(err, errno, "create WAL directory %s", dir);
        goto fail;
    }
    rc = open_segments(w, err);
    if (rc == ERR_OK)
        rc = open_active(w, err);
    if (rc != ERR_OK)
        goto fail;
    if (w->opts.sync_mode == WAL_SYNC_INTERVAL) {
        if (pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
            rc = err_set(err, ERR_NOMEM, "cannot start WAL sync thread");
            goto fail;
        }
        w->has_syncer = true;
    }
    *out = w;
    return ERR_OK;
fail:
    wal_close(w);
    return rc;
}

int wal_replay(wal_t *w, uint64_t from_seq, wal_replay_fn fn, void *ctx, err_t *err)
{
    for (size_t i = 0; i < w->nsegs; i++) {
        wal_seg_t *s = &w->segs[i];
        char path[4096];
        uint8_t *buf = NULL;
        uint64_t size = 0;
        seg_scan_t sc;
        int rc;

        if (s->last_seq < from_seq || s->last_seq < s->first_seq)
            continue;
        seg_path(w, s->first_seq, path, sizeof(path));
        rc = read_file(path, &buf, &size, err);
        if (rc == ERR_OK)
            rc = seg_walk(buf, s->size < size ? s->size : size, s->first_seq,
                          from_seq, fn, ctx, &sc, err);
        free(buf);
        if (rc != ERR_OK)
            return rc;
        if (sc.last_seq != s->last_seq)
            return err_set(err, ERR_CORRUPT, "WAL segment %s changed during replay", path);
    }
    return ERR_OK;
}

/* ---- writing ---------------------------------------------------------- */

static void mark_broken(wal_t *w, const char *why)
{
    w->broken = true;
    snprintf(w->broken_msg, sizeof(w->broken_msg), "%s", why);
    log_error("wal", "%s: WAL refuses writes until reopened: %s", w->dir, why);
}

/* Close the active segment (synced) and start the next.  w->mu held. */
static int roll_over(wal_t *w, err_t *err)
{
    while (w->syncing)
        pthread_cond_wait(&w->cv, &w->mu);
    /* The wait dropped the mutex.  If the leader's fdatasync failed, its
     * dirty pages may be gone and a second fdatasync would succeed without
     * them: do not sync again and call everything durable. */
    if (w->broken)
        return err_set(err, ERR_IO, "WAL %s is broken: %s", w->dir, w->broken_msg);
    /* Another caller may have rolled over meanwhile; an empty segment has
     * nothing to close (and creating it again would list it twice). */
    if (w->segs[w->nsegs - 1].last_seq < w->segs[w->nsegs - 1].first_seq)
        return ERR_OK;
    if (do_fsync(w, w->fd) != 0) {
        int e = errno;
        mark_broken(w, "fdatasync failed at segment rollover");
        return err_errno(err, e, "sync WAL segment");
    }
    w->synced_seq = w->next_seq - 1;
    close(w->fd);
    w->fd = -1;
    int rc = seg_create(w, err);
    if (rc != ERR_OK)
        mark_broken(w, "cannot create a new segment");
    return rc;
}

static ssize_t do_pwritev(wal_t *w, const struct iovec *iov, int n, off_t off)
{
    return w->opts.pwritev_fn ? w->opts.pwritev_fn(w->fd, iov, n, off)
                              : pwritev(w->fd, iov, n, off);
}

/* Write all of iov at off, or cut the file back to off and fail. */
static int write_all(wal_t *w, struct iovec *iov, int n, uint64_t off, size_t total, err_t *err)
{
    size_t done = 0;

    while (done < total) {
        ssize_t k = do_pwritev(w, iov, n, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = k < 0 ? errno : ENOSPC;
            if (ftruncate(w->fd, (off_t)off) != 0)
                mark_broken(w, "cannot cut a failed append off the segment");
            return err_errno(err, e, "append to WAL %s", w->dir);
        }
        done += (size_t)k;
        while (n > 0 && (size_t)k >= iov->iov_len) {
            k -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + k;
            iov->iov_len -= (size_t)k;
        }
    }
    return ERR_OK;
}

int wal_append(wal_t *w, const struct iovec *iov, int iovcnt, uint64_t *seq, err_t *err)
{
    uint8_t hdr[WAL_RECORD_HEADER];
    struct iovec v[9];
    size_t len = 0;
    uint32_t crc;
    int rc = ERR_OK;

    if (iovcnt < 0 || iovcnt > 8)
        return err_set(err, ERR_INVALID, "WAL append takes at most 8 pieces");
    for (int i = 0; i < iovcnt; i++) {
        /* compared piece by piece so that the sum cannot wrap around */
        if (iov[i].iov_len > WAL_RECORD_MAX - len)
            return err_set(err, ERR_TOO_LARGE, "WAL record exceeds %u bytes", WAL_RECORD_MAX);
        len += iov[i].iov_len;
    }
    pthread_mutex_lock(&w->mu);
    if (w->broken) {
        rc = err_set(err, ERR_IO, "WAL %s is broken: %s", w->dir, w->broken_msg);
        goto out;
    }
    wal_seg_t *s = &w->segs[w->nsegs - 1];
    if (s->size >= w->opts.segment_bytes && s->last_seq >= s->first_seq) {
        rc = roll_over(w, err);
        if (rc != ERR_OK)
            goto out;
        s = &w->segs[w->nsegs - 1];
    }
    put_u32(hdr, (uint32_t)len);
    put_u64(hdr + 8, w->next_seq);
    crc = crc32c_extend(0, hdr + 8, 8);
    for (int i = 0; i < iovcnt; i++)
        crc = crc32c_extend(crc, iov[i].iov_base, iov[i].iov_len);
    put_u32(hdr + 4, crc32c_extend(crc, hdr, 4));
    v[0].iov_base = hdr;
    v[0].iov_len = sizeof(hdr);
    if (iovcnt > 0)  /* an empty record may come with iov == NULL */
        memcpy(v + 1, iov, (size_t)iovcnt * sizeof(*iov));
    rc = write_all(w, v, iovcnt + 1, s->size, sizeof(hdr) + len, err);
    if (rc != ERR_OK)
        goto out;
    s->size += sizeof(hdr) + len;
    s->last_seq = w->next_seq;
    *seq = w->next_seq++;
    w->st.appends++;
out:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Become the leader or wait for one until synced_seq >= seq.  w->mu held. */
static int sync_locked(wal_t *w, uint64_t seq, err_t *err)
{
    while (w->synced_seq < seq) {
        if (w->broken)
            return err_set(err, ERR_IO, "WAL %s is broken: %s", w->dir, w->broken_msg);
        if (w->syncing) {
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        uint64_t target = w->next_seq - 1;
        int fd = w->fd;
        w->syncing = true;
        pthread_mutex_unlock(&w->mu);
        uint64_t t0 = now_ns();
        int r = do_fsync(w, fd);
        int e = errno;
        uint64_t dt = now_ns() - t0;
        pthread_mutex_lock(&w->mu);
        w->syncing = false;
        w->st.syncs++;
        w->st.sync_ns_total += dt;
        if (r != 0)
            mark_broken(w, strerror(e));
        else if (target > w->synced_seq)
            w->synced_seq = target;
        pthread_cond_broadcast(&w->cv);
    }
    return ERR_OK;
}

int wal_sync(wal_t *w, uint64_t seq, err_t *err)
{
    int rc = ERR_OK;

    if (w->opts.sync_mode != WAL_SYNC_ALWAYS)
        return ERR_OK;
    pthread_mutex_lock(&w->mu);
    if (seq >= w->next_seq)  /* never appended: no sync could cover it */
        rc = err_set(err, ERR_INVALID, "WAL sync of seq %" PRIu64 " past the last record %" PRIu64,
                     seq, w->next_seq - 1);
    else
        rc = sync_locked(w, seq, err);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

static void *syncer_main(void *arg)
{
    wal_t *w = arg;
    struct timespec ts;

    pthread_mutex_lock(&w->mu);
    while (!w->stopping) {
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)w->opts.sync_interval_ms * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        if (!w->stopping && !w->broken && w->synced_seq + 1 < w->next_seq)
            sync_locked(w, w->next_seq - 1, NULL);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int wal_truncate(wal_t *w, uint64_t upto, err_t *err)
{
    int rc = ERR_OK;
    size_t drop = 0;

    pthread_mutex_lock(&w->mu);
    wal_seg_t *act = &w->segs[w->nsegs - 1];
    if (!w->broken && act->last_seq >= act->first_seq && act->last_seq <= upto) {
        rc = roll_over(w, err);
        if (rc != ERR_OK)
            goto out;
    }
    while (drop + 1 < w->nsegs && w->segs[drop].last_seq <= upto)
        drop++;
    for (size_t i = 0; i < drop; i++)
        seg_remove(w, w->segs[i].first_seq);
    if (drop > 0) {
        memmove(w->segs, w->segs + drop, (w->nsegs - drop) * sizeof(*w->segs));
        w->nsegs -= drop;
        rc = fsync_dir(w->dir, err);
    }
out:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void wal_stats_get(wal_t *w, wal_stats_t *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->st;
    out->segments = (uint32_t)w->nsegs;
    out->last_seq = w->next_seq - 1;
    out->synced_seq = w->synced_seq;
    out->first_seq = 0;
    for (size_t i = 0; i < w->nsegs; i++) {
        if (w->segs[i].last_seq >= w->segs[i].first_seq) {
            out->first_seq = w->segs[i].first_seq;
            break;
        }
    }
    out->bytes = 0;
    for (size_t i = 0; i < w->nsegs; i++)
        out->bytes += w->segs[i].size;
    pthread_mutex_unlock(&w->mu);
}

void wal_close(wal_t *w)
{
    if (w == NULL)
        return;
    if (w->has_syncer) {
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->syncer, NULL);
    }
    if (w->fd >= 0) {
        if (!w->broken && do_fsync(w, w->fd) != 0)
            log_error("wal", "%s: final sync failed: %s", w->dir, strerror(errno));
        close(w->fd);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->segs);
    free(w->dir);
    free(w);
}
