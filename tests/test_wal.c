/*
 * test_wal.c - the write-ahead log: round trips, group commit, segment
 * rollover, truncation, recovery from torn and corrupt tails, and the
 * failure paths (full disk, failed fdatasync) through the pwritev_fn and
 * fsync_fn hooks.
 *
 * Record payloads are a pseudo-random stream derived from a per-record
 * salt, and a model (seq -> length, salt) says what every replay must hand
 * back, so contents are checked byte for byte without keeping copies.
 * Files are inspected and damaged through an independent reading of the
 * byte format documented in wal.h, not through wal.c's own helpers.
 *
 * The hooks take no context argument, so their state is global (atomic);
 * every test that installs one resets it first and at the end.  A
 * watchdog alarm turns a hang (a lost wake-up in group commit, a sync that
 * never returns) into a failure instead of a stuck run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/crc32c.h"
#include "store/err.h"
#include "store/log.h"
#include "store/wal.h"
#include "tests/testutil.h"

#define WATCHDOG_SECONDS 120

static uint64_t g_seed;
static uint64_t g_salt_ctr;

/* ---- payloads and the model ------------------------------------------- */

static void fill_payload(uint8_t *p, size_t len, uint64_t salt)
{
    uint64_t s = salt * 0x9e3779b97f4a7c15ULL + 12345, r = 0;
    for (size_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            r = tu_rand(&s);
        p[i] = (uint8_t)(r >> (8 * (i & 7)));
    }
}

static bool payload_ok(const uint8_t *p, size_t len, uint64_t salt)
{
    uint64_t s = salt * 0x9e3779b97f4a7c15ULL + 12345, r = 0;
    for (size_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            r = tu_rand(&s);
        if (p[i] != (uint8_t)(r >> (8 * (i & 7))))
            return false;
    }
    return true;
}

/* What the WAL must hold: for each seq, the payload length and salt. */
typedef struct model {
    size_t cap;
    size_t *lens;
    uint64_t *salts;
} model_t;

static void model_init(model_t *m, size_t cap)
{
    m->cap = cap;
    m->lens = calloc(cap, sizeof(*m->lens));
    m->salts = calloc(cap, sizeof(*m->salts));
    assert_non_null(m->lens);
    assert_non_null(m->salts);
}

static void model_free(model_t *m)
{
    free(m->lens);
    free(m->salts);
    memset(m, 0, sizeof(*m));
}

static void model_set(model_t *m, uint64_t seq, size_t len, uint64_t salt)
{
    assert_true(seq < m->cap);
    m->lens[seq] = len;
    m->salts[seq] = salt;
}

/* Append a record of len pattern bytes, split into random pieces (some of
 * them empty, and no iovec at all for some empty records) when rng is
 * non-NULL.  No cmocka asserts: usable from worker threads. */
static int append_payload(wal_t *w, size_t len, uint64_t salt, uint64_t *rng, uint64_t *seq,
                          err_t *err)
{
    uint8_t *buf = malloc(len ? len : 1);
    struct iovec iov[8];
    int n = 1;
    int rc;

    if (buf == NULL)
        return ERR_NOMEM;
    fill_payload(buf, len, salt);
    iov[0].iov_base = buf;
    iov[0].iov_len = len;
    if (rng != NULL) {
        size_t cuts[8];
        n = 1 + (int)(tu_rand(rng) % 8);
        for (int i = 0; i < n - 1; i++)
            cuts[i] = len ? (size_t)(tu_rand(rng) % (len + 1)) : 0;
        /* insertion sort of the n-1 cut points */
        for (int i = 1; i < n - 1; i++)
            for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
                size_t t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        size_t prev = 0;
        for (int i = 0; i < n; i++) {
            size_t end = i < n - 1 ? cuts[i] : len;
            iov[i].iov_base = buf + prev;
            iov[i].iov_len = end - prev;
            prev = end;
        }
        if (len == 0 && tu_rand(rng) % 2 == 0)
            n = 0;
    }
    rc = wal_append(w, n ? iov : NULL, n, seq, err);
    free(buf);
    return rc;
}

static uint64_t append_ok(wal_t *w, model_t *m, size_t len, uint64_t *rng)
{
    err_t err = { 0 };
    uint64_t seq = 0, salt = ++g_salt_ctr;
    int rc = append_payload(w, len, salt, rng, &seq, &err);
    if (rc != ERR_OK)
        fail_msg("wal_append(%zu bytes): %s (%s)", len, err.msg, err_code_name(rc));
    model_set(m, seq, len, salt);
    return seq;
}

static void sync_ok(wal_t *w, uint64_t seq)
{
    err_t err = { 0 };
    int rc = wal_sync(w, seq, &err);
    if (rc != ERR_OK)
        fail_msg("wal_sync(%" PRIu64 "): %s", seq, err.msg);
}

/* ---- replay checking -------------------------------------------------- */

typedef struct ck {
    const model_t *m;
    uint64_t next;      /* seq the next call must carry */
    uint64_t calls;
    uint64_t fail_at;   /* return an error for this seq (0: never) */
} ck_t;

static int ck_cb(void *ctx, uint64_t seq, const void *data, size_t len, err_t *err)
{
    ck_t *c = ctx;

    c->calls++;
    if (c->fail_at != 0 && seq == c->fail_at)
        return err_set(err, ERR_CORRUPT, "callback refuses seq %" PRIu64, seq);
    if (seq != c->next)
        fail_msg("replay gave seq %" PRIu64 ", expected %" PRIu64, seq, c->next);
    assert_true(seq < c->m->cap);
    if (len != c->m->lens[seq])
        fail_msg("seq %" PRIu64 ": length %zu, expected %zu", seq, len, c->m->lens[seq]);
    if (!payload_ok(data, len, c->m->salts[seq]))
        fail_msg("seq %" PRIu64 ": payload differs", seq);
    c->next++;
    return ERR_OK;
}

/* Replay from `from`; it must give exactly first..last (none if last < first). */
static void expect_replay(wal_t *w, const model_t *m, uint64_t from, uint64_t first, uint64_t last)
{
    ck_t c = { .m = m, .next = first };
    err_t err = { 0 };
    int rc = wal_replay(w, from, ck_cb, &c, &err);

    if (rc != ERR_OK)
        fail_msg("wal_replay(from %" PRIu64 "): %s", from, err.msg);
    if (c.next != last + 1)
        fail_msg("replay from %" PRIu64 " ended before seq %" PRIu64 ", expected up to %" PRIu64,
                 from, c.next, last);
}

/* ---- opening ---------------------------------------------------------- */

static wal_opts_t opts_default(void)
{
    wal_opts_t o;
    memset(&o, 0, sizeof(o));
    return o;
}

static wal_t *open_ok(const char *dir, const wal_opts_t *o)
{
    wal_t *w = NULL;
    err_t err = { 0 };
    int rc = wal_open(dir, o, &w, &err);
    if (rc != ERR_OK)
        fail_msg("wal_open(%s): %s", dir, err.msg);
    assert_non_null(w);
    return w;
}

static wal_stats_t stats(wal_t *w)
{
    wal_stats_t s;
    wal_stats_get(w, &s);
    return s;
}

/* ---- files ------------------------------------------------------------ */

static void seg_file(const char *dir, uint64_t first, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/wal-%020" PRIu64 ".log", dir, first);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* First seqs of the segment files in dir, sorted; asserts nothing else
 * named wal-* is there. */
static size_t list_segs(const char *dir, uint64_t *firsts, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "wal-", 4) != 0)
            continue;
        assert_int_equal(strlen(de->d_name), 28);
        assert_string_equal(de->d_name + 24, ".log");
        assert_true(n < cap);
        firsts[n++] = strtoull(de->d_name + 4, NULL, 10);
    }
    closedir(d);
    qsort(firsts, n, sizeof(*firsts), cmp_u64);
    return n;
}

static uint64_t file_size(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        fail_msg("stat %s: %s", path, strerror(errno));
    return (uint64_t)sb.st_size;
}

static bool file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    uint64_t n = file_size(path);
    uint8_t *buf = malloc(n ? n : 1);
    int fd = open(path, O_RDONLY);

    assert_non_null(buf);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, buf, n, 0), (ssize_t)n);
    close(fd);
    *len = n;
    return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, len, 0), (ssize_t)len);
    close(fd);
}

static void flip_bit(const char *path, uint64_t off, int bit)
{
    int fd = open(path, O_RDWR);
    uint8_t b;

    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= (uint8_t)(1u << bit);
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The record CRC as wal.h defines it: seq bytes, payload, then len bytes. */
static uint32_t rec_crc(const uint8_t *rec, size_t len)
{
    uint32_t c = crc32c_extend(0, rec + 8, 8);
    c = crc32c_extend(c, rec + 16, len);
    return crc32c_extend(c, rec, 4);
}

/* Offsets of the records of a well-formed segment file (walking the len
 * fields); returns how many, and the file size in *size. */
static size_t rec_offsets(const char *path, uint64_t *offs, size_t cap, uint64_t *size)
{
    size_t n = 0, len;
    uint8_t *buf = slurp(path, &len);
    uint64_t off = WAL_HEADER_SIZE;

    while (off + WAL_RECORD_HEADER <= len) {
        assert_true(n < cap);
        offs[n++] = off;
        off += WAL_RECORD_HEADER + le32(buf + off);
    }
    assert_int_equal(off, len);
    free(buf);
    if (size)
        *size = len;
    return n;
}

static uint64_t dir_bytes(const char *dir)
{
    uint64_t firsts[1024], total = 0;
    char p[PATH_MAX];
    size_t n = list_segs(dir, firsts, 1024);
    for (size_t i = 0; i < n; i++) {
        seg_file(dir, firsts[i], p, sizeof(p));
        total += file_size(p);
    }
    return total;
}

/* ---- hooks ------------------------------------------------------------ */

static atomic_int g_fsync_fail;          /* fsync_hook fails with EIO */
static atomic_int g_fsync_sleep_us;      /* fsync_hook sleeps first */
static atomic_uint_fast64_t g_fsync_calls;

/* Gate: the first fsync_hook call after arming blocks until released and
 * then fails (EIO) or succeeds as g_gate_fail says. */
static pthread_mutex_t g_gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_gate_cv = PTHREAD_COND_INITIALIZER;
static bool g_gate_armed, g_gate_entered, g_gate_open;
static bool g_gate_fail;

/* Paths of the files synced through fsync_hook (when recording). */
static atomic_int g_fsync_record;
static char g_synced_paths[64][PATH_MAX];
static int g_nsynced;

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int fsync_hook(int fd)
{
    bool gated = false;

    atomic_fetch_add(&g_fsync_calls, 1);
    pthread_mutex_lock(&g_gate_mu);
    if (g_gate_armed) {
        g_gate_armed = false;
        g_gate_entered = true;
        gated = true;
        pthread_cond_broadcast(&g_gate_cv);
        while (!g_gate_open)
            pthread_cond_wait(&g_gate_cv, &g_gate_mu);
    }
    if (atomic_load(&g_fsync_record) && g_nsynced < 64) {
        char link[64];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t k = readlink(link, g_synced_paths[g_nsynced], PATH_MAX - 1);
        if (k >= 0) {
            g_synced_paths[g_nsynced][k] = '\0';
            g_nsynced++;
        }
    }
    bool fail_gate = gated && g_gate_fail;
    pthread_mutex_unlock(&g_gate_mu);
    if (fail_gate || atomic_load(&g_fsync_fail)) {
        errno = EIO;
        return -1;
    }
    int us = atomic_load(&g_fsync_sleep_us);
    if (us > 0)
        sleep_us(us);
    return fdatasync(fd);
}

static void gate_arm(bool fail)
{
    pthread_mutex_lock(&g_gate_mu);
    g_gate_armed = true;
    g_gate_entered = false;
    g_gate_open = false;
    g_gate_fail = fail;
    pthread_mutex_unlock(&g_gate_mu);
}

static void gate_wait_entered(void)
{
    pthread_mutex_lock(&g_gate_mu);
    while (!g_gate_entered)
        pthread_cond_wait(&g_gate_cv, &g_gate_mu);
    pthread_mutex_unlock(&g_gate_mu);
}

static void gate_release(void)
{
    pthread_mutex_lock(&g_gate_mu);
    g_gate_open = true;
    pthread_cond_broadcast(&g_gate_cv);
    pthread_mutex_unlock(&g_gate_mu);
}

enum { PW_OFF = 0, PW_HALF_THEN_ENOSPC, PW_ENOSPC, PW_ZERO, PW_EIO, PW_EDQUOT };
static atomic_int g_pw_mode;
static atomic_int g_pw_calls_failing;   /* calls made while failing */

static ssize_t pwritev_hook(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    int mode = atomic_load(&g_pw_mode);

    if (mode == PW_OFF)
        return pwritev(fd, iov, iovcnt, off);
    int call = atomic_fetch_add(&g_pw_calls_failing, 1);
    switch (mode) {
    case PW_HALF_THEN_ENOSPC:
        if (call == 0) {
            size_t total = 0, want, done = 0;
            for (int i = 0; i < iovcnt; i++)
                total += iov[i].iov_len;
            want = total / 2;
            for (int i = 0; i < iovcnt && done < want; i++) {
                size_t k = iov[i].iov_len < want - done ? iov[i].iov_len : want - done;
                ssize_t r = pwrite(fd, iov[i].iov_base, k, off + (off_t)done);
                if (r != (ssize_t)k)
                    return -1;
                done += k;
            }
            return (ssize_t)done;
        }
        errno = ENOSPC;
        return -1;
    case PW_ENOSPC:
        errno = ENOSPC;
        return -1;
    case PW_ZERO:
        return 0;
    case PW_EDQUOT:
        errno = EDQUOT;
        return -1;
    default:
        errno = EIO;
        return -1;
    }
}

static void hooks_reset(void)
{
    atomic_store(&g_fsync_fail, 0);
    atomic_store(&g_fsync_sleep_us, 0);
    atomic_store(&g_fsync_calls, 0);
    atomic_store(&g_fsync_record, 0);
    atomic_store(&g_pw_mode, PW_OFF);
    atomic_store(&g_pw_calls_failing, 0);
    pthread_mutex_lock(&g_gate_mu);
    g_gate_armed = g_gate_entered = g_gate_open = g_gate_fail = false;
    g_nsynced = 0;
    pthread_mutex_unlock(&g_gate_mu);
}

static int setup_hooks(void **state)
{
    (void)state;
    hooks_reset();
    return 0;
}

/* ---- round trip and format -------------------------------------------- */

static size_t random_len(uint64_t *rng)
{
    uint64_t r = tu_rand(rng) % 100;
    if (r < 5)
        return 0;
    if (r < 8)
        return 100 * 1024;
    if (r < 35)
        return (size_t)(tu_rand(rng) % 17);
    if (r < 75)
        return (size_t)(tu_rand(rng) % 1025);
    return (size_t)(tu_rand(rng) % (100 * 1024 + 1));
}

static void test_wal_round_trip(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    uint64_t rng = g_seed ^ 1;
    model_t m;
    wal_opts_t o = opts_default();
    const uint64_t n = 400;

    model_init(&m, n + 10);
    o.segment_bytes = 2u << 20;
    wal_t *w = open_ok(dir, &o);
    wal_stats_t s = stats(w);
    assert_int_equal(s.last_seq, 0);
    assert_int_equal(s.first_seq, 0);
    assert_int_equal(s.segments, 1);
    /* replay of an empty WAL calls nothing */
    expect_replay(w, &m, 1, 1, 0);
    for (uint64_t i = 1; i <= n; i++)
        assert_int_equal(append_ok(w, &m, random_len(&rng), &rng), i);
    sync_ok(w, n);
    s = stats(w);
    assert_int_equal(s.appends, n);
    assert_int_equal(s.last_seq, n);
    assert_int_equal(s.synced_seq, n);
    assert_int_equal(s.first_seq, 1);
    wal_close(w);

    w = open_ok(dir, &o);
    s = stats(w);
    assert_int_equal(s.first_seq, 1);
    assert_int_equal(s.last_seq, n);
    assert_int_equal(s.synced_seq, n);
    assert_int_equal(s.truncated_bytes, 0);
    assert_int_equal(s.appends, 0);
    assert_int_equal(s.bytes, dir_bytes(dir));
    assert_true(s.segments > 1);
    expect_replay(w, &m, 0, 1, n);
    expect_replay(w, &m, 1, 1, n);
    expect_replay(w, &m, n / 2, n / 2, n);
    expect_replay(w, &m, n / 2 + 1, n / 2 + 1, n);
    expect_replay(w, &m, n, n, n);
    expect_replay(w, &m, n + 1, n + 1, n);
    expect_replay(w, &m, UINT64_MAX, n + 1, n);
    /* numbering continues after reopen */
    assert_int_equal(append_ok(w, &m, 10, &rng), n + 1);
    wal_close(w);

    w = open_ok(dir, NULL);
    expect_replay(w, &m, 1, 1, n + 1);
    wal_close(w);

    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

static void test_wal_on_disk_format(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX];
    model_t m;
    const size_t lens[] = { 0, 5, 300, 1 };
    size_t flen;

    model_init(&m, 1010);
    wal_t *w = open_ok(dir, NULL);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(append_ok(w, &m, lens[i], NULL), i + 1);
    wal_close(w);

    seg_file(dir, 1, path, sizeof(path));
    uint8_t *b = slurp(path, &flen);
    assert_int_equal(flen, WAL_HEADER_SIZE + 4 * WAL_RECORD_HEADER + 306);
    assert_memory_equal(b, "VLWALSEG", 8);
    assert_int_equal(le32(b + 8), 1);
    assert_int_equal(le32(b + 12), 0);
    assert_int_equal(le64(b + 16), 1);
    assert_int_equal(le32(b + 24), crc32c_value(b, 24));
    assert_int_equal(le32(b + 28), 0);
    size_t off = WAL_HEADER_SIZE;
    for (size_t i = 0; i < 4; i++) {
        const uint8_t *r = b + off;
        assert_int_equal(le32(r), lens[i]);
        assert_int_equal(le64(r + 8), i + 1);
        assert_int_equal(le32(r + 4), rec_crc(r, lens[i]));
        assert_true(payload_ok(r + 16, lens[i], m.salts[i + 1]));
        off += WAL_RECORD_HEADER + lens[i];
    }
    free(b);

    /* a WAL that starts elsewhere names its file and header by first_seq */
    wal_opts_t o = opts_default();
    char *dir2 = tu_tmpdir("wal");
    o.next_seq_min = 1000;
    w = open_ok(dir2, &o);
    assert_int_equal(append_ok(w, &m, 3, NULL), 1000);
    wal_close(w);
    seg_file(dir2, 1000, path, sizeof(path));
    b = slurp(path, &flen);
    assert_int_equal(flen, WAL_HEADER_SIZE + WAL_RECORD_HEADER + 3);
    assert_int_equal(le64(b + 16), 1000);
    assert_int_equal(le32(b + 24), crc32c_value(b, 24));
    assert_int_equal(le64(b + 32 + 8), 1000);
    free(b);
    /* reopening without next_seq_min goes on from the records */
    w = open_ok(dir2, NULL);
    assert_int_equal(append_ok(w, &m, 3, NULL), 1001);
    wal_close(w);

    model_free(&m);
    tu_rmrf(dir2);
    free(dir2);
    tu_rmrf(dir);
    free(dir);
}

/* Files other than segments are left alone and do not disturb recovery. */
static void test_wal_ignores_foreign_files(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX];
    model_t m;
    const char *names[] = { "wal-1.log", "wal-00000000000000000001.log.tmp", "notes.txt",
                            "wal-0000000000000000000x.log" };

    model_init(&m, 10);
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        spit(path, "junk", 4);
    }
    wal_t *w = open_ok(dir, NULL);
    assert_int_equal(append_ok(w, &m, 7, NULL), 1);
    wal_close(w);
    w = open_ok(dir, NULL);
    expect_replay(w, &m, 1, 1, 1);
    assert_int_equal(stats(w).segments, 1);
    wal_close(w);
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        assert_true(file_exists(path));
    }
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

static void test_wal_open_errors(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX];
    static int not_a_wal;
    wal_t *w = (wal_t *)&not_a_wal; /* must be reset to NULL on failure */
    err_t err = { 0 };

    snprintf(path, sizeof(path), "%s/file", dir);
    spit(path, "x", 1);
    assert_int_not_equal(wal_open(path, NULL, &w, &err), ERR_OK);
    assert_null(w);
    assert_true(err.msg[0] != '\0');
    snprintf(path, sizeof(path), "%s/no/such/parent", dir);
    w = (wal_t *)&not_a_wal;
    assert_int_not_equal(wal_open(path, NULL, &w, &err), ERR_OK);
    assert_null(w);
    tu_rmrf(dir);
    free(dir);
}

/* ---- group commit ----------------------------------------------------- */

#define GC_THREADS 8
#define GC_PER_THREAD 500

typedef struct gc_arg {
    wal_t *w;
    int tid;
    int n;
    uint64_t *seqs;
    int failures;
    char msg[ERR_MSG_MAX];
} gc_arg_t;

static size_t gc_len(int tid, int i)
{
    return (size_t)(16 + (tid * 7 + i) % 90);
}

static uint64_t gc_salt(int tid, int i)
{
    return 1000000000ull * (uint64_t)(tid + 1) + (uint64_t)i;
}

static void *gc_worker(void *p)
{
    gc_arg_t *a = p;
    uint64_t rng = g_seed ^ (uint64_t)a->tid;

    for (int i = 0; i < a->n; i++) {
        err_t err = { 0 };
        uint64_t seq = 0;
        int rc = append_payload(a->w, gc_len(a->tid, i), gc_salt(a->tid, i), &rng, &seq, &err);
        if (rc == ERR_OK)
            rc = wal_sync(a->w, seq, &err);
        if (rc != ERR_OK) {
            a->failures++;
            snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
            return NULL;
        }
        a->seqs[i] = seq;
    }
    return NULL;
}

/* Run nthreads x per appenders+syncers, then check numbering and build the
 * model of what was written. */
static void run_group(wal_t *w, int nthreads, int per, model_t *m)
{
    pthread_t th[GC_THREADS];
    gc_arg_t args[GC_THREADS];
    const uint64_t total = (uint64_t)nthreads * (uint64_t)per;
    uint8_t *seen = calloc(total + 1, 1);

    assert_non_null(seen);
    assert_true(nthreads <= GC_THREADS);
    for (int t = 0; t < nthreads; t++) {
        args[t] = (gc_arg_t){ .w = w, .tid = t, .n = per };
        args[t].seqs = calloc((size_t)per, sizeof(uint64_t));
        assert_non_null(args[t].seqs);
        assert_int_equal(pthread_create(&th[t], NULL, gc_worker, &args[t]), 0);
    }
    for (int t = 0; t < nthreads; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < nthreads; t++) {
        if (args[t].failures)
            fail_msg("thread %d: %s", t, args[t].msg);
        for (int i = 0; i < per; i++) {
            uint64_t s = args[t].seqs[i];
            assert_true(s >= 1 && s <= total);
            assert_int_equal(seen[s], 0);
            seen[s] = 1;
            /* one thread's appends are numbered in its order */
            if (i > 0)
                assert_true(s > args[t].seqs[i - 1]);
            model_set(m, s, gc_len(t, i), gc_salt(t, i));
        }
        free(args[t].seqs);
    }
    /* unique and within 1..total, hence contiguous */
    free(seen);
}

static void test_wal_group_commit(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    model_t m;
    wal_opts_t o = opts_default();
    const uint64_t total = GC_THREADS * GC_PER_THREAD;

    model_init(&m, total + 2);
    o.sync_mode = WAL_SYNC_ALWAYS;
    o.fsync_fn = fsync_hook;
    atomic_store(&g_fsync_sleep_us, 1000);
    wal_t *w = open_ok(dir, &o);
    run_group(w, GC_THREADS, GC_PER_THREAD, &m);
    wal_stats_t s = stats(w);
    assert_int_equal(s.appends, total);
    assert_int_equal(s.last_seq, total);
    assert_int_equal(s.synced_seq, total);
    assert_true(s.syncs > 0);
    if (s.syncs >= s.appends)
        fail_msg("no fsync was shared: %" PRIu64 " syncs for %" PRIu64 " appends", s.syncs,
                 s.appends);
    print_message("    group commit: %" PRIu64 " appends, %" PRIu64 " syncs\n", s.appends, s.syncs);
    wal_close(w);

    atomic_store(&g_fsync_sleep_us, 0);
    w = open_ok(dir, NULL);
    expect_replay(w, &m, 1, 1, total);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* The same with segments small enough that appenders roll over while a
 * leader is in fdatasync, and a truncator running alongside. */
typedef struct trunc_arg {
    wal_t *w;
    atomic_int *stop;
    int failures;
    char msg[ERR_MSG_MAX];
} trunc_arg_t;

static void *truncator(void *p)
{
    trunc_arg_t *a = p;
    while (!atomic_load(a->stop)) {
        err_t err = { 0 };
        wal_stats_t s = stats(a->w);
        /* keep the newest 50 records */
        if (s.synced_seq > 50 && wal_truncate(a->w, s.synced_seq - 50, &err) != ERR_OK) {
            a->failures++;
            snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
            return NULL;
        }
        sleep_us(2000);
    }
    return NULL;
}

static void test_wal_group_commit_with_rollover(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    model_t m;
    wal_opts_t o = opts_default();
    const int nth = 4, per = 300;
    const uint64_t total = (uint64_t)nth * (uint64_t)per;
    uint64_t firsts[1024];
    atomic_int stop = 0;
    pthread_t tt;
    trunc_arg_t ta = { .stop = &stop };

    model_init(&m, total + 2);
    o.segment_bytes = 2048;
    o.fsync_fn = fsync_hook;
    atomic_store(&g_fsync_sleep_us, 200);
    wal_t *w = open_ok(dir, &o);
    ta.w = w;
    assert_int_equal(pthread_create(&tt, NULL, truncator, &ta), 0);
    run_group(w, nth, per, &m);
    atomic_store(&stop, 1);
    assert_int_equal(pthread_join(tt, NULL), 0);
    if (ta.failures)
        fail_msg("truncator: %s", ta.msg);
    wal_stats_t s = stats(w);
    assert_int_equal(s.last_seq, total);
    /* the WAL's idea of its segments matches the directory */
    assert_int_equal(s.segments, list_segs(dir, firsts, 1024));
    assert_int_equal(s.bytes, dir_bytes(dir));
    uint64_t keep_from = s.first_seq;
    assert_true(keep_from >= 1 && keep_from <= total - 49);
    wal_close(w);

    atomic_store(&g_fsync_sleep_us, 0);
    w = open_ok(dir, NULL);
    s = stats(w);
    assert_int_equal(s.first_seq, keep_from);
    assert_int_equal(s.truncated_bytes, 0);
    expect_replay(w, &m, 1, keep_from, total);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* ---- segments and truncation ------------------------------------------ */

static void test_wal_segment_rollover(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX];
    uint64_t rng = g_seed ^ 3;
    uint64_t firsts[1024], offs[512];
    model_t m;
    wal_opts_t o = opts_default();
    const uint64_t n = 600;

    model_init(&m, n + 2);
    o.segment_bytes = 4096;
    o.sync_mode = WAL_SYNC_NONE;
    wal_t *w = open_ok(dir, &o);
    for (uint64_t i = 1; i <= n; i++) {
        /* mostly small, a few larger than a whole segment */
        size_t len = i % 97 == 0 ? 10000 : (size_t)(tu_rand(&rng) % 700);
        assert_int_equal(append_ok(w, &m, len, &rng), i);
    }
    wal_stats_t s = stats(w);
    size_t nf = list_segs(dir, firsts, 1024);
    assert_true(nf > 50);
    assert_int_equal(s.segments, nf);
    assert_int_equal(s.bytes, dir_bytes(dir));
    wal_close(w);

    /* every segment is named by its first record, each record follows the
     * previous, and a segment is closed as soon as it passes 4 KiB */
    uint64_t expect = 1;
    for (size_t i = 0; i < nf; i++) {
        uint64_t size;
        size_t lenf;
        seg_file(dir, firsts[i], path, sizeof(path));
        size_t k = rec_offsets(path, offs, 512, &size);
        uint8_t *b = slurp(path, &lenf);
        assert_int_equal(firsts[i], expect);
        assert_int_equal(le64(b + 16), firsts[i]);
        for (size_t r = 0; r < k; r++)
            assert_int_equal(le64(b + offs[r] + 8), expect + r);
        assert_true(k >= 1);
        if (i + 1 < nf) {
            assert_true(size >= 4096);
            assert_true(offs[k - 1] < 4096);
        }
        expect += k;
        free(b);
    }
    assert_int_equal(expect, n + 1);

    w = open_ok(dir, &o);
    s = stats(w);
    assert_int_equal(s.last_seq, n);
    assert_int_equal(s.truncated_bytes, 0);
    expect_replay(w, &m, 1, 1, n);
    expect_replay(w, &m, 333, 333, n);
    assert_int_equal(append_ok(w, &m, 5, NULL), n + 1);
    wal_close(w);
    w = open_ok(dir, &o);
    expect_replay(w, &m, n - 3, n - 3, n + 1);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* segment_bytes below the header size: one record per segment, and an
 * empty segment is reused rather than created again. */
static void test_wal_tiny_segments(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    uint64_t firsts[64];
    model_t m;
    wal_opts_t o = opts_default();
    err_t err = { 0 };

    model_init(&m, 20);
    o.segment_bytes = 1;
    wal_t *w = open_ok(dir, &o);
    for (uint64_t i = 1; i <= 5; i++)
        assert_int_equal(append_ok(w, &m, 10, NULL), i);
    assert_int_equal(list_segs(dir, firsts, 64), 5);
    wal_close(w);
    for (int round = 0; round < 3; round++) {
        w = open_ok(dir, &o);
        assert_int_equal(stats(w).segments, list_segs(dir, firsts, 64));
        wal_close(w);
    }
    assert_int_equal(list_segs(dir, firsts, 64), 6);
    w = open_ok(dir, &o);
    assert_int_equal(append_ok(w, &m, 10, NULL), 6);
    sync_ok(w, 6);
    assert_int_equal(wal_truncate(w, 5, &err), ERR_OK);
    assert_int_equal(stats(w).segments, list_segs(dir, firsts, 64));
    wal_close(w);
    w = open_ok(dir, &o);
    expect_replay(w, &m, 1, 6, 6);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* Build a WAL of n records of len bytes with 4 KiB segments. */
static void build_wal(const char *dir, model_t *m, uint64_t n, size_t len)
{
    wal_opts_t o = opts_default();
    o.segment_bytes = 4096;
    o.sync_mode = WAL_SYNC_NONE;
    wal_t *w = open_ok(dir, &o);
    for (uint64_t i = 1; i <= n; i++)
        assert_int_equal(append_ok(w, m, len, NULL), i);
    wal_close(w);
}

static void test_wal_truncate(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX];
    uint64_t before[256], after[256], offs[64];
    model_t m;
    wal_opts_t o = opts_default();
    err_t err = { 0 };
    const uint64_t n = 300, upto = 150;

    model_init(&m, n + 10);
    build_wal(dir, &m, n, 200);
    size_t nb = list_segs(dir, before, 256);
    assert_true(nb > 10);
    o.segment_bytes = 4096;
    wal_t *w = open_ok(dir, &o);

    /* nothing to drop */
    assert_int_equal(wal_truncate(w, 0, &err), ERR_OK);
    assert_int_equal(list_segs(dir, after, 256), nb);

    assert_int_equal(wal_truncate(w, upto, &err), ERR_OK);
    size_t na = list_segs(dir, after, 256);
    /* exactly the segments whose records are all <= upto are gone */
    size_t gone = 0;
    for (size_t i = 0; i < nb; i++) {
        uint64_t last = (i + 1 < nb ? before[i + 1] : n + 1) - 1;
        seg_file(dir, before[i], path, sizeof(path));
        if (last <= upto) {
            assert_false(file_exists(path));
            gone++;
        } else {
            assert_true(file_exists(path));
        }
    }
    assert_true(gone > 0);
    assert_int_equal(na, nb - gone);
    assert_true(after[0] <= upto + 1);
    wal_stats_t s = stats(w);
    assert_int_equal(s.first_seq, after[0]);
    assert_int_equal(s.segments, na);
    assert_int_equal(s.bytes, dir_bytes(dir));
    /* idempotent */
    assert_int_equal(wal_truncate(w, upto, &err), ERR_OK);
    assert_int_equal(list_segs(dir, after, 256), na);
    wal_close(w);

    w = open_ok(dir, &o);
    expect_replay(w, &m, upto + 1, upto + 1, n);
    expect_replay(w, &m, 1, after[0], n);
    assert_int_equal(stats(w).first_seq, after[0]);
    wal_close(w);

    /* the first remaining segment really holds upto+1 */
    seg_file(dir, after[0], path, sizeof(path));
    size_t k = rec_offsets(path, offs, 64, NULL);
    assert_true(after[0] + k - 1 >= upto + 1);

    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* Truncating everything rolls the active segment over; numbering goes on
 * after reopening with or without next_seq_min. */
static void test_wal_truncate_all(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    uint64_t segs[256];
    model_t m;
    wal_opts_t o = opts_default();
    err_t err = { 0 };
    const uint64_t n = 100;

    model_init(&m, 400);
    build_wal(dir, &m, n, 100);
    o.segment_bytes = 4096;
    wal_t *w = open_ok(dir, &o);
    assert_int_equal(wal_truncate(w, n, &err), ERR_OK);
    assert_int_equal(list_segs(dir, segs, 256), 1);
    assert_int_equal(segs[0], n + 1);
    wal_stats_t s = stats(w);
    assert_int_equal(s.first_seq, 0);
    assert_int_equal(s.last_seq, n);
    assert_int_equal(s.segments, 1);
    assert_int_equal(s.bytes, WAL_HEADER_SIZE);
    wal_close(w);

    /* without next_seq_min: the empty segment carries the numbering */
    w = open_ok(dir, &o);
    expect_replay(w, &m, 1, n + 1, n);
    assert_int_equal(stats(w).last_seq, n);
    wal_close(w);

    /* with next_seq_min = the store's last + 1 */
    o.next_seq_min = n + 1;
    w = open_ok(dir, &o);
    assert_int_equal(append_ok(w, &m, 9, NULL), n + 1);
    sync_ok(w, n + 1);
    assert_int_equal(wal_truncate(w, n + 1, &err), ERR_OK);
    wal_close(w);

    /* everything gone, even the segment files: next_seq_min restarts it */
    tu_rmrf(dir);
    o.next_seq_min = 250;
    w = open_ok(dir, &o);
    assert_int_equal(append_ok(w, &m, 9, NULL), 250);
    wal_close(w);
    o.next_seq_min = 0;
    w = open_ok(dir, &o);
    expect_replay(w, &m, 1, 250, 250);
    assert_int_equal(append_ok(w, &m, 9, NULL), 251);
    wal_close(w);

    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* Truncate part, reopen without next_seq_min: numbering continues after
 * the remaining records. */
static void test_wal_truncate_then_reopen(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    model_t m;
    wal_opts_t o = opts_default();
    err_t err = { 0 };

    model_init(&m, 200);
    build_wal(dir, &m, 100, 150);
    o.segment_bytes = 4096;
    wal_t *w = open_ok(dir, &o);
    assert_int_equal(wal_truncate(w, 60, &err), ERR_OK);
    wal_close(w);
    w = open_ok(dir, &o);
    assert_int_equal(stats(w).last_seq, 100);
    expect_replay(w, &m, 61, 61, 100);
    assert_int_equal(append_ok(w, &m, 3, NULL), 101);
    wal_close(w);
    w = open_ok(dir, &o);
    expect_replay(w, &m, 61, 61, 101);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* The store can be ahead of the WAL (records applied in sync mode none or
 * interval that the WAL lost in a crash): next_seq_min then jumps over a
 * gap, and what is appended after the gap must survive the next reopen. */
static void test_wal_next_seq_min_past_the_end(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    model_t m;
    wal_opts_t o = opts_default();

    model_init(&m, 200);
    build_wal(dir, &m, 20, 100);
    o.next_seq_min = 100;
    wal_t *w = open_ok(dir, &o);
    assert_int_equal(append_ok(w, &m, 11, NULL), 100);
    assert_int_equal(append_ok(w, &m, 12, NULL), 101);
    sync_ok(w, 101);
    wal_close(w);

    for (int with_min = 0; with_min < 2; with_min++) {
        o.next_seq_min = with_min ? 100 : 0;
        w = open_ok(dir, &o);
        wal_stats_t s = stats(w);
        assert_int_equal(s.last_seq, 101);
        expect_replay(w, &m, 100, 100, 101);
        wal_close(w);
    }
    /* below the end it changes nothing */
    o.next_seq_min = 5;
    w = open_ok(dir, &o);
    assert_int_equal(append_ok(w, &m, 1, NULL), 102);
    wal_close(w);
    w = open_ok(dir, NULL);
    expect_replay(w, &m, 100, 100, 102);
    wal_close(w);

    /* the same from an emptied WAL (all truncated) */
    char *dir2 = tu_tmpdir("wal");
    err_t err = { 0 };
    build_wal(dir2, &m, 10, 10);
    w = open_ok(dir2, NULL);
    assert_int_equal(wal_truncate(w, 10, &err), ERR_OK);
    wal_close(w);
    o.next_seq_min = 50;
    w = open_ok(dir2, &o);
    assert_int_equal(append_ok(w, &m, 1, NULL), 50);
    wal_close(w);
    w = open_ok(dir2, NULL);
    expect_replay(w, &m, 50, 50, 50);
    assert_int_equal(stats(w).last_seq, 50);
    wal_close(w);
    tu_rmrf(dir2);
    free(dir2);

    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* ---- torn and corrupt tails ------------------------------------------- */

/* Cut the last segment at every byte inside its last record: the record
 * is dropped, the file cut back, and appending goes on from there. */
static void torn_scenario(size_t recs_in_last_seg)
{
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX];
    uint64_t segs[64], offs[64];
    model_t m;
    wal_opts_t o = opts_default();
    size_t img_len;

    model_init(&m, 200);
    o.segment_bytes = 4096;
    o.sync_mode = WAL_SYNC_NONE;
    wal_t *w = open_ok(dir, &o);
    /* two full segments; the append that starts the third puts one record
     * there, then recs_in_last_seg - 1 more, the last of 50 bytes */
    uint64_t seq = 0;
    while (stats(w).segments < 3)
        seq = append_ok(w, &m, 300, NULL);
    for (size_t i = 1; i < recs_in_last_seg; i++)
        seq = append_ok(w, &m, i + 1 == recs_in_last_seg ? 50 : 120, NULL);
    const uint64_t k = seq; /* the record to tear */
    wal_close(w);

    size_t nseg = list_segs(dir, segs, 64);
    assert_int_equal(nseg, 3);
    seg_file(dir, segs[2], path, sizeof(path));
    assert_int_equal(rec_offsets(path, offs, 64, NULL), recs_in_last_seg);
    uint8_t *img = slurp(path, &img_len);
    const uint64_t rec_off = offs[recs_in_last_seg - 1];
    assert_int_equal(segs[2] + recs_in_last_seg - 1, k);

    for (uint64_t cut = rec_off; cut < img_len; cut++) {
        spit(path, img, cut);
        w = open_ok(dir, &o);
        wal_stats_t s = stats(w);
        if (s.truncated_bytes != cut - rec_off || s.last_seq != k - 1)
            fail_msg("cut at %" PRIu64 ": truncated %" PRIu64 " last %" PRIu64, cut,
                     s.truncated_bytes, s.last_seq);
        if (cut > rec_off)
            assert_true(s.truncated_bytes > 0);
        assert_int_equal(file_size(path), rec_off);
        assert_int_equal(s.segments, 3);
        expect_replay(w, &m, 1, 1, k - 1);
        /* appending continues the sequence where the torn record was */
        assert_int_equal(append_ok(w, &m, 33 + (size_t)(cut % 7), NULL), k);
        sync_ok(w, k);
        wal_close(w);
        w = open_ok(dir, &o);
        s = stats(w);
        assert_int_equal(s.truncated_bytes, 0);
        assert_int_equal(s.last_seq, k);
        expect_replay(w, &m, 1, 1, k);
        wal_close(w);
        assert_int_equal(list_segs(dir, segs, 64), 3);
    }
    free(img);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

static void test_wal_replay_truncated_tail(void **state)
{
    (void)state;
    torn_scenario(6);
}

static void test_wal_replay_truncated_first_record_of_segment(void **state)
{
    (void)state;
    torn_scenario(1);
}

/* A segment torn inside its own header (a crash while it was created). */
static void test_wal_torn_segment_header(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX];
    uint64_t segs[64];
    model_t m;
    wal_opts_t o = opts_default();
    size_t img_len;

    model_init(&m, 200);
    o.segment_bytes = 4096;
    wal_t *w = open_ok(dir, &o);
    uint64_t k = 0;
    while (stats(w).bytes < 4096)
        k = append_ok(w, &m, 400, NULL);
    wal_close(w);
    /* the reopen starts a fresh (empty) segment since the last one is full */
    w = open_ok(dir, &o);
    wal_close(w);
    assert_int_equal(list_segs(dir, segs, 64), 2);
    assert_int_equal(segs[1], k + 1);
    seg_file(dir, segs[1], path, sizeof(path));
    uint8_t *img = slurp(path, &img_len);
    assert_int_equal(img_len, WAL_HEADER_SIZE);

    for (uint64_t cut = 0; cut < WAL_HEADER_SIZE; cut++) {
        spit(path, img, cut);
        w = open_ok(dir, &o);
        wal_stats_t s = stats(w);
        assert_int_equal(s.truncated_bytes, cut);
        assert_int_equal(s.last_seq, k);
        expect_replay(w, &m, 1, 1, k);
        assert_int_equal(file_size(path), WAL_HEADER_SIZE);
        assert_int_equal(append_ok(w, &m, 20, NULL), k + 1);
        wal_close(w);
        w = open_ok(dir, &o);
        expect_replay(w, &m, 1, 1, k + 1);
        wal_close(w);
        spit(path, img, img_len);
    }
    free(img);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* Zeros after the last record (a file extended but never written). */
static void test_wal_zero_filled_tail(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX];
    uint64_t segs[64];
    model_t m;

    model_init(&m, 100);
    build_wal(dir, &m, 30, 100);
    size_t nseg = list_segs(dir, segs, 64);
    seg_file(dir, segs[nseg - 1], path, sizeof(path));
    uint64_t good = file_size(path);
    assert_int_equal(truncate(path, (off_t)good + 100), 0);
    wal_t *w = open_ok(dir, NULL);
    assert_int_equal(stats(w).truncated_bytes, 100);
    assert_int_equal(file_size(path), good);
    expect_replay(w, &m, 1, 1, 30);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

enum { C_REC, C_SEQ_GAP, C_SEG_HDR, C_SEG_GONE };

typedef struct corr {
    const char *name;
    int kind;
    size_t seg;        /* index of the damaged segment */
    size_t rec;        /* record index inside it (C_REC, C_SEQ_GAP) */
    int64_t field;     /* byte offset inside the record or the header; <0: from the payload end */
    int bit;
} corr_t;

#define CORR_RECS 60
#define CORR_LEN 250

static void corrupt_case(const corr_t *c)
{
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX];
    uint64_t segs[16], offs[64], segs_after[16];
    model_t m;

    model_init(&m, 200);
    build_wal(dir, &m, CORR_RECS, CORR_LEN);
    size_t nseg = list_segs(dir, segs, 16);
    assert_int_equal(nseg, 4);
    assert_true(c->seg < nseg);
    seg_file(dir, segs[c->seg], path, sizeof(path));
    size_t nrec = rec_offsets(path, offs, 64, NULL);
    uint64_t bad;              /* first seq that must be lost */
    uint64_t keep_size;        /* size of the damaged segment after open */

    switch (c->kind) {
    case C_REC:
    case C_SEQ_GAP: {
        size_t rec = c->rec < nrec ? c->rec : nrec - 1;
        bad = segs[c->seg] + rec;
        keep_size = offs[rec];
        if (c->kind == C_REC) {
            uint64_t at = offs[rec] + (uint64_t)(c->field >= 0 ? c->field
                                                               : WAL_RECORD_HEADER + CORR_LEN + c->field);
            flip_bit(path, at, c->bit);
        } else {
            /* a record with a valid CRC but the wrong seq */
            size_t len;
            uint8_t *b = slurp(path, &len);
            uint8_t *r = b + offs[rec];
            put_le64(r + 8, le64(r + 8) + 1);
            put_le32(r + 4, rec_crc(r, le32(r)));
            spit(path, b, len);
            free(b);
        }
        break;
    }
    case C_SEG_HDR:
        bad = segs[c->seg];
        keep_size = WAL_HEADER_SIZE;  /* recreated empty */
        flip_bit(path, (uint64_t)c->field, c->bit);
        break;
    default:
        bad = segs[c->seg];
        keep_size = WAL_HEADER_SIZE;
        assert_int_equal(unlink(path), 0);
        break;
    }

    wal_opts_t o = opts_default();
    o.segment_bytes = 4096;
    wal_t *w = open_ok(dir, &o);
    wal_stats_t s = stats(w);
    if (s.last_seq != bad - 1)
        fail_msg("%s: last_seq %" PRIu64 ", expected %" PRIu64, c->name, s.last_seq, bad - 1);
    if (c->kind != C_SEG_GONE && s.truncated_bytes == 0)
        fail_msg("%s: truncated_bytes is 0", c->name);
    expect_replay(w, &m, 1, 1, bad - 1);
    /* earlier segments untouched, the damaged one cut (or recreated
     * empty), later ones removed */
    size_t na = list_segs(dir, segs_after, 16);
    if (na != c->seg + 1)
        fail_msg("%s: %zu segments left, expected %zu", c->name, na, c->seg + 1);
    for (size_t i = 0; i < na; i++)
        assert_int_equal(segs_after[i], segs[i]);
    if (file_size(path) != keep_size)
        fail_msg("%s: damaged segment is %" PRIu64 " bytes, expected %" PRIu64, c->name,
                 file_size(path), keep_size);
    assert_int_equal(s.segments, na);
    assert_int_equal(s.bytes, dir_bytes(dir));
    /* and the WAL goes on from the damaged record */
    assert_int_equal(append_ok(w, &m, 77, NULL), bad);
    sync_ok(w, bad);
    wal_close(w);
    w = open_ok(dir, NULL);
    assert_int_equal(stats(w).truncated_bytes, 0);
    expect_replay(w, &m, 1, 1, bad);
    wal_close(w);

    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

static void test_wal_flipped_bit(void **state)
{
    (void)state;
    static const corr_t cases[] = {
        { "payload bit, middle record of segment 2", C_REC, 1, 5, 16 + 100, 3 },
        { "payload bit, last payload byte", C_REC, 1, 5, -1, 7 },
        { "payload bit, first record of segment 2", C_REC, 1, 0, 16, 0 },
        { "payload bit, last record of segment 1", C_REC, 0, 99, 16 + 7, 1 },
        { "payload bit, first record of all", C_REC, 0, 0, 20, 2 },
        { "payload bit, last record of all", C_REC, 3, 99, 16 + 200, 5 },
        { "length low bit", C_REC, 1, 5, 0, 0 },
        { "length bit, shorter", C_REC, 1, 5, 0, 7 },
        { "length high bit, beyond the max", C_REC, 1, 5, 3, 7 },
        { "length bit, beyond the file", C_REC, 2, 3, 2, 0 },
        { "seq low bit", C_REC, 1, 5, 8, 0 },
        { "seq high bit", C_REC, 1, 5, 15, 6 },
        { "crc low bit", C_REC, 1, 5, 4, 0 },
        { "crc high bit", C_REC, 1, 5, 7, 7 },
        { "valid crc, wrong seq", C_SEQ_GAP, 1, 5, 0, 0 },
        { "valid crc, wrong seq, first of segment", C_SEQ_GAP, 2, 0, 0, 0 },
        { "segment header magic", C_SEG_HDR, 1, 0, 0, 0 },
        { "segment header version", C_SEG_HDR, 1, 0, 8, 1 },
        { "segment header first_seq", C_SEG_HDR, 2, 0, 16, 0 },
        { "segment header crc", C_SEG_HDR, 1, 0, 26, 4 },
        { "first segment's header", C_SEG_HDR, 0, 0, 3, 3 },
        { "middle segment missing", C_SEG_GONE, 2, 0, 0, 0 },
        { "second segment missing", C_SEG_GONE, 1, 0, 0, 0 },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        corrupt_case(&cases[i]);
}

/* ---- failures --------------------------------------------------------- */

static void test_wal_full_disk(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX];
    uint64_t rng = g_seed ^ 7;
    model_t m;
    wal_opts_t o = opts_default();
    static const int modes[] = { PW_HALF_THEN_ENOSPC, PW_ENOSPC, PW_ZERO, PW_EDQUOT };

    model_init(&m, 100);
    o.pwritev_fn = pwritev_hook;
    wal_t *w = open_ok(dir, &o);
    for (int i = 1; i <= 10; i++)
        append_ok(w, &m, 500, &rng);
    sync_ok(w, 10);
    seg_file(dir, 1, path, sizeof(path));
    const uint64_t good = file_size(path);

    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        err_t err = { 0 };
        uint64_t seq = 0;
        atomic_store(&g_pw_calls_failing, 0);
        atomic_store(&g_pw_mode, modes[i]);
        int rc = append_payload(w, 5000, 424242, &rng, &seq, &err);
        atomic_store(&g_pw_mode, PW_OFF);
        if (modes[i] == PW_HALF_THEN_ENOSPC)
            assert_true(atomic_load(&g_pw_calls_failing) >= 2);
        assert_int_equal(rc, ERR_FULL);
        assert_int_equal(err.code, ERR_FULL);
        assert_true(err.retriable);
        assert_int_equal(file_size(path), good);
        wal_stats_t s = stats(w);
        assert_int_equal(s.last_seq, 10);
        assert_int_equal(s.appends, 10);
        assert_int_equal(s.bytes, good);
    }
    wal_close(w);

    /* reopen: no partial record, nothing cut */
    w = open_ok(dir, &o);
    assert_int_equal(stats(w).truncated_bytes, 0);
    expect_replay(w, &m, 1, 1, 10);

    /* fail again, then the retry takes the seq that failed */
    err_t err = { 0 };
    uint64_t seq = 0;
    atomic_store(&g_pw_calls_failing, 0);
    atomic_store(&g_pw_mode, PW_HALF_THEN_ENOSPC);
    assert_int_equal(append_payload(w, 3000, 777, &rng, &seq, &err), ERR_FULL);
    atomic_store(&g_pw_mode, PW_OFF);
    assert_int_equal(append_ok(w, &m, 3000, &rng), 11);
    sync_ok(w, 11);
    assert_int_equal(append_ok(w, &m, 10, &rng), 12);
    wal_close(w);
    w = open_ok(dir, NULL);
    assert_int_equal(stats(w).truncated_bytes, 0);
    expect_replay(w, &m, 1, 1, 12);
    wal_close(w);

    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* A write error other than a full disk is not retriable, but once the
 * partial record is cut off the WAL still works. */
static void test_wal_write_error_is_cut_off(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    model_t m;
    wal_opts_t o = opts_default();
    err_t err = { 0 };
    uint64_t seq = 0;

    model_init(&m, 100);
    o.pwritev_fn = pwritev_hook;
    wal_t *w = open_ok(dir, &o);
    append_ok(w, &m, 100, NULL);
    atomic_store(&g_pw_mode, PW_EIO);
    assert_int_equal(append_payload(w, 100, 1, NULL, &seq, &err), ERR_IO);
    assert_false(err.retriable);
    atomic_store(&g_pw_mode, PW_OFF);
    assert_int_equal(append_ok(w, &m, 100, NULL), 2);
    wal_close(w);
    w = open_ok(dir, NULL);
    assert_int_equal(stats(w).truncated_bytes, 0);
    expect_replay(w, &m, 1, 1, 2);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

static void test_wal_fsync_failure(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    model_t m;
    wal_opts_t o = opts_default();
    err_t err = { 0 };
    uint64_t seq = 0;

    model_init(&m, 100);
    o.fsync_fn = fsync_hook;
    wal_t *w = open_ok(dir, &o);
    for (int i = 1; i <= 5; i++)
        append_ok(w, &m, 64, NULL);
    sync_ok(w, 5);
    atomic_store(&g_fsync_fail, 1);
    assert_int_equal(append_ok(w, &m, 64, NULL), 6);
    assert_int_not_equal(wal_sync(w, 6, &err), ERR_OK);
    assert_int_equal(err.code, ERR_IO);
    assert_int_equal(stats(w).synced_seq, 5);
    /* broken: no more appends, not even when fsync works again */
    assert_int_equal(append_payload(w, 10, 1, NULL, &seq, &err), ERR_IO);
    atomic_store(&g_fsync_fail, 0);
    assert_int_equal(append_payload(w, 10, 1, NULL, &seq, &err), ERR_IO);
    assert_int_not_equal(wal_sync(w, 6, &err), ERR_OK);
    /* what was durable before stays acknowledged */
    assert_int_equal(wal_sync(w, 5, &err), ERR_OK);
    assert_int_equal(stats(w).last_seq, 6);
    wal_close(w);

    w = open_ok(dir, &o);
    expect_replay(w, &m, 1, 1, 6);
    assert_int_equal(append_ok(w, &m, 64, NULL), 7);
    sync_ok(w, 7);
    wal_close(w);
    w = open_ok(dir, NULL);
    expect_replay(w, &m, 1, 1, 7);
    wal_close(w);

    /* an fdatasync failing at rollover breaks the WAL too */
    o.segment_bytes = 1024;
    w = open_ok(dir, &o);
    while (stats(w).bytes < 1024)
        append_ok(w, &m, 200, NULL);
    assert_int_equal(stats(w).segments, 1);
    uint64_t last = stats(w).last_seq;
    atomic_store(&g_fsync_fail, 1);
    assert_int_equal(append_payload(w, 10, 1, NULL, &seq, &err), ERR_IO);
    assert_int_equal(stats(w).segments, 1);
    atomic_store(&g_fsync_fail, 0);
    assert_int_not_equal(wal_sync(w, last, &err), ERR_OK);
    assert_int_equal(append_payload(w, 10, 1, NULL, &seq, &err), ERR_IO);
    wal_close(w);
    w = open_ok(dir, &o);
    expect_replay(w, &m, 1, 1, last);
    assert_int_equal(append_ok(w, &m, 10, NULL), last + 1);
    wal_close(w);

    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* While a leader's fdatasync fails, nobody waiting on it may be told its
 * record is durable, and an appender waiting to roll over may not sync
 * again (the kernel reports a writeback error once) and carry on. */
typedef struct job {
    wal_t *w;
    int kind;          /* 0: sync seq, 1: append (+sync), 2: truncate upto */
    uint64_t seq;
    int rc;
    err_t err;
} job_t;

static void *job_main(void *p)
{
    job_t *j = p;
    uint64_t seq = 0;
    switch (j->kind) {
    case 0:
        j->rc = wal_sync(j->w, j->seq, &j->err);
        break;
    case 1:
        j->rc = append_payload(j->w, 40, 99, NULL, &seq, &j->err);
        if (j->rc == ERR_OK) {
            j->seq = seq;
            j->rc = wal_sync(j->w, seq, &j->err);
        }
        break;
    default:
        j->rc = wal_truncate(j->w, j->seq, &j->err);
        break;
    }
    return NULL;
}

static void test_wal_fsync_failure_while_others_wait(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    model_t m;
    wal_opts_t o = opts_default();
    pthread_t tl, ta, tw;
    job_t jl = { 0 }, ja = { 0 }, jw = { 0 };

    model_init(&m, 200);
    o.segment_bytes = 2048;
    o.fsync_fn = fsync_hook;
    wal_t *w = open_ok(dir, &o);
    /* fill the active segment so that the next append rolls over */
    while (stats(w).bytes < 2048)
        append_ok(w, &m, 100, NULL);
    uint64_t last = stats(w).last_seq;
    assert_int_equal(stats(w).segments, 1);

    gate_arm(true);
    jl = (job_t){ .w = w, .kind = 0, .seq = last };
    assert_int_equal(pthread_create(&tl, NULL, job_main, &jl), 0);
    gate_wait_entered();
    /* the leader is in fdatasync: one thread waits for it, one waits to
     * roll over */
    jw = (job_t){ .w = w, .kind = 0, .seq = last };
    assert_int_equal(pthread_create(&tw, NULL, job_main, &jw), 0);
    ja = (job_t){ .w = w, .kind = 1 };
    assert_int_equal(pthread_create(&ta, NULL, job_main, &ja), 0);
    sleep_us(100 * 1000);
    gate_release();
    pthread_join(tl, NULL);
    pthread_join(tw, NULL);
    pthread_join(ta, NULL);

    assert_int_equal(jl.rc, ERR_IO);
    if (jw.rc == ERR_OK)
        fail_msg("a waiter was told seq %" PRIu64 " is durable after the fdatasync failed", last);
    if (ja.rc == ERR_OK)
        fail_msg("append succeeded on a WAL whose fdatasync failed");
    assert_true(stats(w).synced_seq < last);
    wal_close(w);

    w = open_ok(dir, &o);
    expect_replay(w, &m, 1, 1, last);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* Two callers waiting to roll over (an appender whose write then fails,
 * and a truncator) must not create the same segment twice; a duplicate
 * entry would later make truncation unlink the live segment. */
static void test_wal_concurrent_rollover(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    uint64_t segs[64];
    model_t m;
    wal_opts_t o = opts_default();
    pthread_t tl, ta, tt;
    job_t jl, ja, jt;
    err_t err = { 0 };

    model_init(&m, 200);
    o.segment_bytes = 2048;
    o.fsync_fn = fsync_hook;
    o.pwritev_fn = pwritev_hook;
    wal_t *w = open_ok(dir, &o);
    while (stats(w).bytes < 2048)
        append_ok(w, &m, 100, NULL);
    uint64_t last = stats(w).last_seq;

    gate_arm(false);
    jl = (job_t){ .w = w, .kind = 0, .seq = last };
    assert_int_equal(pthread_create(&tl, NULL, job_main, &jl), 0);
    gate_wait_entered();
    atomic_store(&g_pw_mode, PW_ENOSPC);
    ja = (job_t){ .w = w, .kind = 1 };
    assert_int_equal(pthread_create(&ta, NULL, job_main, &ja), 0);
    jt = (job_t){ .w = w, .kind = 2, .seq = last };
    assert_int_equal(pthread_create(&tt, NULL, job_main, &jt), 0);
    sleep_us(100 * 1000);
    gate_release();
    pthread_join(tl, NULL);
    pthread_join(ta, NULL);
    pthread_join(tt, NULL);
    atomic_store(&g_pw_mode, PW_OFF);

    assert_int_equal(jl.rc, ERR_OK);
    assert_int_equal(ja.rc, ERR_FULL);
    assert_int_equal(jt.rc, ERR_OK);
    assert_int_equal(stats(w).segments, list_segs(dir, segs, 64));
    assert_int_equal(append_ok(w, &m, 10, NULL), last + 1);
    sync_ok(w, last + 1);
    assert_int_equal(wal_truncate(w, last, &err), ERR_OK);
    assert_int_equal(stats(w).segments, list_segs(dir, segs, 64));
    wal_close(w);
    w = open_ok(dir, NULL);
    expect_replay(w, &m, last + 1, last + 1, last + 1);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* ---- sync modes ------------------------------------------------------- */

static void test_wal_sync_mode_none(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    uint64_t rng = g_seed ^ 11;
    model_t m;
    wal_opts_t o = opts_default();

    model_init(&m, 100);
    o.sync_mode = WAL_SYNC_NONE;
    o.fsync_fn = fsync_hook;
    wal_t *w = open_ok(dir, &o);
    atomic_store(&g_fsync_calls, 0);
    for (uint64_t i = 1; i <= 50; i++) {
        assert_int_equal(append_ok(w, &m, (size_t)(tu_rand(&rng) % 2000), &rng), i);
        sync_ok(w, i);
    }
    wal_stats_t s = stats(w);
    assert_int_equal(s.syncs, 0);
    assert_int_equal(atomic_load(&g_fsync_calls), 0);
    wal_close(w);
    /* close syncs */
    assert_int_equal(atomic_load(&g_fsync_calls), 1);
    w = open_ok(dir, &o);
    expect_replay(w, &m, 1, 1, 50);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

static void test_wal_sync_mode_interval(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    uint64_t rng = g_seed ^ 13;
    model_t m;
    wal_opts_t o = opts_default();
    err_t err = { 0 };

    model_init(&m, 100);
    o.sync_mode = WAL_SYNC_INTERVAL;
    o.sync_interval_ms = 20;
    o.fsync_fn = fsync_hook;
    wal_t *w = open_ok(dir, &o);
    /* nothing written: the syncer has nothing to do */
    sleep_us(80 * 1000);
    assert_int_equal(stats(w).syncs, 0);

    for (uint64_t i = 1; i <= 50; i++)
        assert_int_equal(append_ok(w, &m, (size_t)(tu_rand(&rng) % 2000), &rng), i);
    /* wal_sync does not wait in this mode */
    atomic_store(&g_fsync_fail, 0);
    assert_int_equal(wal_sync(w, 50, &err), ERR_OK);
    wal_stats_t s;
    for (int i = 0; i < 100; i++) {
        sleep_us(10 * 1000);
        s = stats(w);
        if (s.synced_seq == 50)
            break;
    }
    assert_true(s.syncs >= 1);
    assert_int_equal(s.synced_seq, 50);
    uint64_t syncs = s.syncs;
    /* idle again: no more syncs */
    sleep_us(80 * 1000);
    assert_int_equal(stats(w).syncs, syncs);
    assert_int_equal(append_ok(w, &m, 10, &rng), 51);
    for (int i = 0; i < 100 && stats(w).synced_seq < 51; i++)
        sleep_us(10 * 1000);
    assert_int_equal(stats(w).synced_seq, 51);
    assert_true(stats(w).syncs > syncs);
    wal_close(w);

    w = open_ok(dir, &o);
    expect_replay(w, &m, 1, 1, 51);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* ---- replay callback and argument errors ------------------------------ */

static void test_wal_replay_callback_error_stops(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    model_t m;

    model_init(&m, 100);
    build_wal(dir, &m, 60, 250); /* 4 segments */
    wal_t *w = open_ok(dir, NULL);
    const uint64_t stops[] = { 1, 7, 16, 17, 60 };
    for (size_t i = 0; i < sizeof(stops) / sizeof(stops[0]); i++) {
        ck_t c = { .m = &m, .next = 1, .fail_at = stops[i] };
        err_t err = { 0 };
        int rc = wal_replay(w, 1, ck_cb, &c, &err);
        assert_int_equal(rc, ERR_CORRUPT);
        assert_int_equal(err.code, ERR_CORRUPT);
        assert_non_null(strstr(err.msg, "callback refuses"));
        assert_int_equal(c.calls, stops[i]);
        assert_int_equal(c.next, stops[i]);
    }
    /* from a middle seq */
    ck_t c = { .m = &m, .next = 30, .fail_at = 35 };
    err_t err = { 0 };
    assert_int_equal(wal_replay(w, 30, ck_cb, &c, &err), ERR_CORRUPT);
    assert_int_equal(c.calls, 6);
    /* a failed replay leaves the WAL usable */
    expect_replay(w, &m, 1, 1, 60);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

static void test_wal_record_too_large(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    model_t m;
    uint8_t small[16] = { 0 };
    err_t err = { 0 };
    uint64_t seq = 12345;

    model_init(&m, 10);
    wal_t *w = open_ok(dir, NULL);
    /* lengths are checked before any byte is read: the buffers are tiny */
    struct iovec one = { small, (size_t)WAL_RECORD_MAX + 1 };
    assert_int_equal(wal_append(w, &one, 1, &seq, &err), ERR_TOO_LARGE);
    assert_int_equal(err.code, ERR_TOO_LARGE);
    assert_false(err.retriable);
    assert_int_equal(seq, 12345);
    struct iovec two[2] = { { small, WAL_RECORD_MAX / 2 + 1 }, { small, WAL_RECORD_MAX / 2 } };
    assert_int_equal(wal_append(w, two, 2, &seq, &err), ERR_TOO_LARGE);
    struct iovec huge = { small, SIZE_MAX };
    assert_int_equal(wal_append(w, &huge, 1, &seq, &err), ERR_TOO_LARGE);
    /* lengths whose sum wraps around */
    struct iovec wrap[2] = { { small, SIZE_MAX }, { small, 2 } };
    assert_int_equal(wal_append(w, wrap, 2, &seq, &err), ERR_TOO_LARGE);
    struct iovec wrap8[8];
    for (int i = 0; i < 8; i++)
        wrap8[i] = (struct iovec){ small, SIZE_MAX / 4 + 1 };
    assert_int_equal(wal_append(w, wrap8, 8, &seq, &err), ERR_TOO_LARGE);
    /* more than 8 pieces, or a negative count */
    struct iovec nine[9];
    for (int i = 0; i < 9; i++)
        nine[i] = (struct iovec){ small, 1 };
    assert_int_equal(wal_append(w, nine, 9, &seq, &err), ERR_INVALID);
    assert_int_equal(wal_append(w, nine, -1, &seq, &err), ERR_INVALID);
    assert_int_equal(seq, 12345);
    /* nothing was consumed */
    wal_stats_t s = stats(w);
    assert_int_equal(s.appends, 0);
    assert_int_equal(s.last_seq, 0);
    assert_int_equal(append_ok(w, &m, 8, NULL), 1);
    /* 8 pieces is fine */
    assert_int_equal(wal_append(w, nine, 8, &seq, &err), ERR_OK);
    assert_int_equal(seq, 2);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* wal_sync of a seq that was never handed out must not spin forever. */
static void test_wal_sync_beyond_last(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    model_t m;
    err_t err = { 0 };

    model_init(&m, 10);
    wal_t *w = open_ok(dir, NULL);
    append_ok(w, &m, 8, NULL);
    assert_int_equal(wal_sync(w, 1, &err), ERR_OK);
    assert_int_equal(wal_sync(w, 0, &err), ERR_OK);
    assert_int_equal(wal_sync(w, 5, &err), ERR_INVALID);
    assert_int_equal(append_ok(w, &m, 8, NULL), 2);
    assert_int_equal(wal_sync(w, 2, &err), ERR_OK);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

/* A process that dies without wal_close leaves its last records in the
 * page cache only.  When the next open starts a new segment after that
 * one, it must sync it first: otherwise a power cut could lose its tail
 * while later, synced segments survive, and recovery would then drop
 * them as not following on. */
static void test_wal_reopen_syncs_previous_segment(void **state)
{
    (void)state;
    char *dir = tu_tmpdir("wal");
    char path[PATH_MAX], real[PATH_MAX];
    model_t m;
    wal_opts_t o = opts_default();

    model_init(&m, 200);
    o.segment_bytes = 2048;
    o.sync_mode = WAL_SYNC_NONE;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        wal_t *cw = NULL;
        uint64_t seq;
        if (wal_open(dir, &o, &cw, NULL) != ERR_OK)
            _exit(2);
        /* 10 x 216 bytes pass 2048: full, but not rolled over yet */
        for (int i = 0; i < 10; i++)
            if (append_payload(cw, 200, (uint64_t)i + 1, NULL, &seq, NULL) != ERR_OK)
                _exit(3);
        _exit(0); /* no wal_close */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    seg_file(dir, 1, path, sizeof(path));
    assert_true(file_size(path) >= 2048);
    uint64_t segs[8];
    assert_int_equal(list_segs(dir, segs, 8), 1);

    o.fsync_fn = fsync_hook;
    atomic_store(&g_fsync_record, 1);
    wal_t *w = open_ok(dir, &o);
    atomic_store(&g_fsync_record, 0);
    assert_non_null(realpath(path, real));
    bool synced = false;
    pthread_mutex_lock(&g_gate_mu);
    for (int i = 0; i < g_nsynced; i++)
        synced |= strcmp(g_synced_paths[i], real) == 0;
    pthread_mutex_unlock(&g_gate_mu);
    for (int i = 0; !synced && i < g_nsynced; i++)
        print_message("synced: %s\n", g_synced_paths[i]);
    if (!synced)
        fail_msg("open started a new segment without syncing %s", real);
    assert_int_equal(stats(w).segments, 2);
    wal_close(w);
    model_free(&m);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_wal_round_trip, setup_hooks),
        cmocka_unit_test_setup(test_wal_on_disk_format, setup_hooks),
        cmocka_unit_test_setup(test_wal_ignores_foreign_files, setup_hooks),
        cmocka_unit_test_setup(test_wal_open_errors, setup_hooks),
        cmocka_unit_test_setup(test_wal_group_commit, setup_hooks),
        cmocka_unit_test_setup(test_wal_group_commit_with_rollover, setup_hooks),
        cmocka_unit_test_setup(test_wal_segment_rollover, setup_hooks),
        cmocka_unit_test_setup(test_wal_tiny_segments, setup_hooks),
        cmocka_unit_test_setup(test_wal_truncate, setup_hooks),
        cmocka_unit_test_setup(test_wal_truncate_all, setup_hooks),
        cmocka_unit_test_setup(test_wal_truncate_then_reopen, setup_hooks),
        cmocka_unit_test_setup(test_wal_next_seq_min_past_the_end, setup_hooks),
        cmocka_unit_test_setup(test_wal_replay_truncated_tail, setup_hooks),
        cmocka_unit_test_setup(test_wal_replay_truncated_first_record_of_segment, setup_hooks),
        cmocka_unit_test_setup(test_wal_torn_segment_header, setup_hooks),
        cmocka_unit_test_setup(test_wal_zero_filled_tail, setup_hooks),
        cmocka_unit_test_setup(test_wal_flipped_bit, setup_hooks),
        cmocka_unit_test_setup(test_wal_full_disk, setup_hooks),
        cmocka_unit_test_setup(test_wal_write_error_is_cut_off, setup_hooks),
        cmocka_unit_test_setup(test_wal_fsync_failure, setup_hooks),
        cmocka_unit_test_setup(test_wal_fsync_failure_while_others_wait, setup_hooks),
        cmocka_unit_test_setup(test_wal_concurrent_rollover, setup_hooks),
        cmocka_unit_test_setup(test_wal_sync_mode_none, setup_hooks),
        cmocka_unit_test_setup(test_wal_sync_mode_interval, setup_hooks),
        cmocka_unit_test_setup(test_wal_replay_callback_error_stops, setup_hooks),
        cmocka_unit_test_setup(test_wal_record_too_large, setup_hooks),
        cmocka_unit_test_setup(test_wal_sync_beyond_last, setup_hooks),
        cmocka_unit_test_setup(test_wal_reopen_syncs_previous_segment, setup_hooks),
    };
    const char *lv = getenv("VECLOG_TEST_LOG");
    log_level_set(lv && *lv ? log_level_parse(lv) : LOG_OFF);
    g_seed = tu_seed(0x5eed0a1);
    alarm(WATCHDOG_SECONDS);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
