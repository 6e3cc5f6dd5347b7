/*
 * hnsw_io.c - the HNSW index file: hnsw_save and hnsw_open (see hnsw.h).
 *
 * FORMAT (version 2; version 1 files still open, see below)
 * All integers little-endian (veclog runs on little-endian hosts only;
 * the build refuses others), floats IEEE-754 binary32.  A 128-byte header,
 * then six sections in this order, each starting at a multiple of 64
 * bytes and zero-padded to the next multiple of 64 (the padding is part
 * of the section's checksum), with nothing after the last one:
 *
 *   offset size header field
 *        0    8 magic "VLHNSW\r\n" (the CR LF catches text-mode damage)
 *        8    4 format version = 2
 *       12    4 header size = 128
 *       16    4 dim
 *       20    4 metric (enum dist_metric: 0 Cosine, 1 Dot, 2 Euclid, 3 Manhattan)
 *       24    4 m (0: no main links, group links only)
 *       28    4 m0 (= 2 * m)
 *       32    4 ef_construct
 *       36    4 stride: floats per stored row, dim rounded up to 8
 *       40    8 n: number of nodes (ids 0 .. n-1)
 *       48    8 number of deleted nodes (= bits set in the bitmap)
 *       56    8 wal_seq (opaque to the index; for the caller's log replay)
 *       64    8 seed (levels of nodes added after reopening)
 *       72    4 entry point id (0xFFFFFFFF when n = 0)
 *       76    4 max level (level of the entry point)
 *       80    8 U: total 32-bit words of the upper-layer section
 *       88   24 CRC-32C of the six sections (with padding), in order
 *      112    8 G: total 32-bit words of the group-link section
 *      120    4 zero
 *      124    4 CRC-32C of header bytes 0..123
 *
 *   vectors  n rows of stride floats (row i = node i; padding floats 0);
 *            starts at 128, so every row is 32-byte aligned in a mapping
 *   levels   n bytes: top layer of node i (0 .. max level <= 31)
 *   links0   n blocks of m0 + 2 words: 0 (lock word), count <= m0, then
 *            m0 neighbour ids (unused slots 0)
 *   upper    for each node i with level L > 0, in id order, L lists
 *            (layers 1..L) of m + 1 words: count <= m, then m ids
 *   deleted  ceil(n / 64) 64-bit words, bit (i % 64) of word i / 64 set
 *            when node i is deleted; bits >= n are 0
 *   glinks   empty (G = 0) if no group was linked (hnsw_group_link), else
 *            E, then E group entry ids, then for each node i in id order
 *            its group-link count c_i followed by c_i ids (G = 1 + E + n +
 *            sum of c_i)
 *
 * Version 1 (before group links) is the same without the glinks section:
 * bytes 88..107 hold the five checksums and 108..123 are zero.  It is
 * still read (as an index without group links); saving always writes
 * version 2.
 *
 * The sections are exactly the in-memory layout of hnsw.c's chunks
 * concatenated, so an index opened with use_mmap points its chunks
 * straight into the mapping and opening costs one checksum pass plus a
 * validation pass, never a rebuild.  Validation checks every value a
 * search dereferences (counts, ids < n, a layer-l link pointing to a node
 * of level >= l, lock words 0), so a file with valid checksums but wrong
 * contents still cannot make a search read out of bounds or spin.
 *
 * hnsw_open always maps the file (also for use_mmap = false, where the
 * sections are then copied into freshly allocated chunks and the mapping
 * dropped): one code path validates both modes.
 */
#include "hnsw_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "hnsw_io.c writes native integers: little-endian hosts only"
#endif

#define MAGIC "VLHNSW\r\n"
#define VERSION 2
#define VERSION_NO_GLINKS 1
#define HDR_SIZE 128
#define ALIGN 64

enum { S_VECS, S_LEVELS, S_LINKS0, S_UPPER, S_DELETED, S_GLINKS, S_COUNT };

static const char *const k_sect_names[S_COUNT] = { "vectors", "levels", "links0", "upper",
                                                   "deleted", "glinks" };

typedef struct hdr {
    uint32_t version, hdr_size, dim, metric, m, m0, ef_construct, stride;
    uint64_t n, ndeleted, wal_seq, seed;
    uint32_t entry, max_level;
    uint64_t upper_words;
    uint64_t glink_words;
    uint32_t crc[S_COUNT];
} hdr_t;

/* Sections present in a file of version v. */
static int sections_of(uint32_t v)
{
    return v == VERSION_NO_GLINKS ? S_GLINKS : S_COUNT;
}

typedef struct layout {
    uint64_t off[S_COUNT], len[S_COUNT]; /* len includes padding */
    uint64_t total;
} layout_t;

static uint64_t pad64(uint64_t x)
{
    return (x + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
}

/* Section offsets; false if the sizes overflow (a corrupt header). */
static bool layout_of(const hdr_t *hd, layout_t *lo)
{
    uint64_t n = hd->n;
    if (n > HNSW_MAX_NODES || hd->upper_words > (uint64_t)1 << 60 ||
        hd->glink_words > (uint64_t)1 << 60)
        return false;
    uint64_t raw[S_COUNT] = {
        n * hd->stride * 4, n, n * (hd->m0 + 2) * 4, hd->upper_words * 4, (n + 63) / 64 * 8,
        hd->glink_words * 4,
    };
    uint64_t at = HDR_SIZE;
    for (int i = 0; i < S_COUNT; i++) {
        lo->off[i] = at;
        lo->len[i] = pad64(raw[i]);
        at += lo->len[i];
    }
    lo->total = at;
    return true;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void hdr_encode(const hdr_t *hd, uint8_t *b)
{
    memset(b, 0, HDR_SIZE);
    memcpy(b, MAGIC, 8);
    const uint32_t w32[] = { hd->version, hd->hdr_size, hd->dim, hd->metric,
                             hd->m,       hd->m0,       hd->ef_construct, hd->stride };
    for (int i = 0; i < 8; i++)
        put32(b + 8 + 4 * i, w32[i]);
    put64(b + 40, hd->n);
    put64(b + 48, hd->ndeleted);
    put64(b + 56, hd->wal_seq);
    put64(b + 64, hd->seed);
    put32(b + 72, hd->entry);
    put32(b + 76, hd->max_level);
    put64(b + 80, hd->upper_words);
    for (int i = 0; i < S_COUNT; i++)
        put32(b + 88 + 4 * i, hd->crc[i]);
    put64(b + 112, hd->glink_words);
    put32(b + 124, crc32c_value(b, 124));
}

static void hdr_decode(const uint8_t *b, hdr_t *hd)
{
    uint32_t *w32[] = { &hd->version, &hd->hdr_size, &hd->dim, &hd->metric,
                        &hd->m,       &hd->m0,       &hd->ef_construct, &hd->stride };
    for (int i = 0; i < 8; i++)
        *w32[i] = get32(b + 8 + 4 * i);
    hd->n = get64(b + 40);
    hd->ndeleted = get64(b + 48);
    hd->wal_seq = get64(b + 56);
    hd->seed = get64(b + 64);
    hd->entry = get32(b + 72);
    hd->max_level = get32(b + 76);
    hd->upper_words = get64(b + 80);
    for (int i = 0; i < sections_of(hd->version); i++)
        hd->crc[i] = get32(b + 88 + 4 * i);
    hd->glink_words = hd->version == VERSION_NO_GLINKS ? 0 : get64(b + 112);
}

/* ---- save ------------------------------------------------------------- */

/* Buffered writer that checksums the current section. */
typedef struct wr {
    int fd;
    uint8_t *buf;
    size_t len, cap;
    uint64_t sect_bytes;
    uint32_t crc;
    int err; /* errno of the first failure, 0 if none */
} wr_t;

static void wr_flush(wr_t *w)
{
    size_t at = 0;
    while (w->err == 0 && at < w->len) {
        ssize_t k = write(w->fd, w->buf + at, w->len - at);
        if (k < 0 && errno != EINTR)
            w->err = errno;
        else if (k > 0)
            at += (size_t)k;
    }
    w->len = 0;
}

static void wr_put(wr_t *w, const void *p, size_t n)
{
    const uint8_t *b = p;
    w->crc = crc32c_extend(w->crc, p, n);
    w->sect_bytes += n;
    while (n > 0) {
        if (w->len == w->cap)
            wr_flush(w);
        size_t k = w->cap - w->len < n ? w->cap - w->len : n;
        memcpy(w->buf + w->len, b, k);
        w->len += k;
        b += k;
        n -= k;
    }
}

/* Pad the section to 64 bytes and return its checksum. */
static uint32_t wr_end_section(wr_t *w)
{
    static const uint8_t zeros[ALIGN];
    wr_put(w, zeros, (size_t)(pad64(w->sect_bytes) - w->sect_bytes));
    uint32_t crc = w->crc;
    w->crc = 0;
    w->sect_bytes = 0;
    return crc;
}

/* A node's list at layer lv as stored: count, then cap ids (zero-filled). */
static void put_list(wr_t *w, const hnsw_t *h, const hnsw_dir_t *d, uint32_t id, unsigned lv,
                     uint32_t *buf, uint32_t cap)
{
    uint32_t n = hnsw_links_copy(h, d, id, lv, buf + 1);
    memset(buf + 1 + n, 0, (cap - n) * sizeof(*buf));
    buf[0] = n;
    wr_put(w, buf, (cap + 1) * sizeof(*buf));
}

/* The glinks section (nothing when no group was linked). */
static void write_glinks(wr_t *w, const hnsw_t *h, const hnsw_dir_t *d, const hdr_t *hd)
{
    static const uint32_t zero;
    if (hd->glink_words == 0)
        return;
    uint32_t e = (uint32_t)h->n_gentry;
    wr_put(w, &e, sizeof(e));
    wr_put(w, h->gentry, h->n_gentry * sizeof(*h->gentry));
    for (uint32_t i = 0; i < hd->n; i++) {
        const uint32_t *g = hnsw_node_glinks(d, i);
        if (g == NULL)
            wr_put(w, &zero, sizeof(zero));
        else
            wr_put(w, g, (1 + (size_t)g[0]) * sizeof(*g));
    }
}

static void write_sections(wr_t *w, const hnsw_t *h, const hnsw_dir_t *d, hdr_t *hd, uint32_t *buf)
{
    size_t n = hd->n;
    for (size_t c = 0; c * HNSW_CHUNK < n; c++) {
        size_t rows = n - c * HNSW_CHUNK < HNSW_CHUNK ? n - c * HNSW_CHUNK : HNSW_CHUNK;
        wr_put(w, d->chunks[c].vecs, rows * h->stride * sizeof(float));
    }
    hd->crc[S_VECS] = wr_end_section(w);
    for (size_t c = 0; c * HNSW_CHUNK < n; c++) {
        size_t rows = n - c * HNSW_CHUNK < HNSW_CHUNK ? n - c * HNSW_CHUNK : HNSW_CHUNK;
        wr_put(w, d->chunks[c].levels, rows);
    }
    hd->crc[S_LEVELS] = wr_end_section(w);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t lock = 0;
        wr_put(w, &lock, sizeof(lock));
        put_list(w, h, d, i, 0, buf, h->m0);
    }
    hd->crc[S_LINKS0] = wr_end_section(w);
    for (uint32_t i = 0; i < n; i++) {
        for (unsigned lv = 1; lv <= hnsw_node_level(d, i); lv++)
            put_list(w, h, d, i, lv, buf, h->m);
    }
    hd->crc[S_UPPER] = wr_end_section(w);
    hd->ndeleted = 0;
    for (size_t i = 0; i < (n + 63) / 64; i++) {
        uint64_t word = atomic_load(&d->chunks[i / (HNSW_CHUNK / 64)].deleted[i % (HNSW_CHUNK / 64)]);
        if (i == n / 64)
            word &= ((uint64_t)1 << (n % 64)) - 1;
        hd->ndeleted += (uint64_t)__builtin_popcountll(word);
        wr_put(w, &word, sizeof(word));
    }
    hd->crc[S_DELETED] = wr_end_section(w);
    write_glinks(w, h, d, hd);
    hd->crc[S_GLINKS] = wr_end_section(w);
}

static void hdr_from_index(const hnsw_t *h, const hnsw_dir_t *d, uint64_t wal_seq, hdr_t *hd)
{
    memset(hd, 0, sizeof(*hd));
    uint64_t e = atomic_load_explicit(&h->entry, memory_order_acquire);
    *hd = (hdr_t){ .version = VERSION, .hdr_size = HDR_SIZE, .dim = h->dim,
                   .metric = (uint32_t)h->metric, .m = h->m, .m0 = h->m0,
                   .ef_construct = h->ef_construct, .stride = h->stride,
                   .n = atomic_load_explicit(&h->count, memory_order_acquire),
                   .wal_seq = wal_seq, .seed = h->seed, .entry = (uint32_t)(e >> 32),
                   .max_level = (uint32_t)(e & 0xff) };
    if (hd->entry == HNSW_NONE)
        hd->max_level = 0;
    for (uint32_t i = 0; i < hd->n; i++)
        hd->upper_words += hnsw_upper_words(h, hnsw_node_level(d, i));
    if (h->n_gentry > 0 || h->glink_ids > 0)
        hd->glink_words = 1 + h->n_gentry + hd->n + h->glink_ids;
}

static int fsync_dir_of(const char *path, err_t *err)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(err, errno, "hnsw_save: open directory %s", dir);
    int rc = ERR_OK;
    if (fsync(fd) != 0)
        rc = err_errno(err, errno, "hnsw_save: fsync directory %s", dir);
    close(fd);
    return rc;
}

int hnsw_save(const hnsw_t *h, const char *path, uint64_t wal_seq, err_t *err)
{
    char tmp[4096];
    uint8_t hb[HDR_SIZE];
    hdr_t hd = { 0 };
    wr_t w = { .fd = -1, .cap = 1 << 20 };
    uint32_t *buf = NULL;
    int rc = ERR_OK;

    if (h == NULL || path == NULL)
        return err_set(err, ERR_INVALID, "hnsw_save: NULL argument");
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return err_set(err, ERR_INVALID, "hnsw_save: path too long");
    const hnsw_dir_t *d = atomic_load_explicit(&h->dir, memory_order_acquire);
    hdr_from_index(h, d, wal_seq, &hd);
    w.buf = malloc(w.cap);
    buf = malloc((h->m0 + 1) * sizeof(*buf));
    if (w.buf == NULL || buf == NULL) {
        rc = err_set(err, ERR_NOMEM, "hnsw_save: out of memory");
        goto out;
    }
    if ((w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        rc = err_errno(err, errno, "hnsw_save: create %s", tmp);
        goto out;
    }
    hdr_encode(&hd, hb); /* placeholder: the checksums are known at the end */
    wr_put(&w, hb, HDR_SIZE);
    w.crc = 0;
    w.sect_bytes = 0;
    write_sections(&w, h, d, &hd, buf);
    wr_flush(&w);
    hdr_encode(&hd, hb);
    if (w.err == 0 && pwrite(w.fd, hb, HDR_SIZE, 0) != HDR_SIZE)
        w.err = errno ? errno : EIO;
    if (w.err == 0 && fsync(w.fd) != 0)
        w.err = errno;
    if (w.err != 0) {
        rc = err_errno(err, w.err, "hnsw_save: write %s", tmp);
        goto out;
    }
    if (close(w.fd) != 0) {
        w.fd = -1;
        rc = err_errno(err, errno, "hnsw_save: close %s", tmp);
        goto out;
    }
    w.fd = -1;
    if (rename(tmp, path) != 0) {
        rc = err_errno(err, errno, "hnsw_save: rename %s", tmp);
        goto out;
    }
    rc = fsync_dir_of(path, err);
out:
    if (w.fd >= 0)
        close(w.fd);
    if (rc != ERR_OK)
        unlink(tmp);
    free(w.buf);
    free(buf);
    return rc;
}

/* ---- open: validation ------------------------------------------------- */

static int corrupt(err_t *err, const char *path, const char *what)
{
    return err_set(err, ERR_CORRUPT, "hnsw_open %s: %s", path, what);
}

static int check_header(const uint8_t *b, size_t size, const char *path, hdr_t *hd, layout_t *lo,
                        err_t *err)
{
    char msg[160];
    if (size < HDR_SIZE || memcmp(b, MAGIC, 8) != 0)
        return corrupt(err, path, size < HDR_SIZE ? "truncated header" : "bad magic: not an HNSW index");
    if (get32(b + 124) != crc32c_value(b, 124))
        return corrupt(err, path, "header checksum mismatch");
    hdr_decode(b, hd);
    if ((hd->version != VERSION && hd->version != VERSION_NO_GLINKS) || hd->hdr_size != HDR_SIZE)
        return corrupt(err, path, "unsupported format version");
    if (hd->m0 != 2 * hd->m || hd->stride != ((hd->dim + 7) & ~7u) || hd->max_level > HNSW_MAX_LEVEL ||
        (hd->n == 0) != (hd->entry == HNSW_NONE) || (hd->n > 0 && hd->entry >= hd->n) ||
        hd->ndeleted > hd->n || !layout_of(hd, lo))
        return corrupt(err, path, "inconsistent header fields");
    if (size != lo->total) {
        snprintf(msg, sizeof(msg), "%s: %zu bytes, expected %llu",
                 size < lo->total ? "truncated" : "trailing bytes", size,
                 (unsigned long long)lo->total);
        return corrupt(err, path, msg);
    }
    for (int i = 0; i < sections_of(hd->version); i++) {
        uint32_t c = crc32c_value(b + lo->off[i], (size_t)lo->len[i]);
        if (c != hd->crc[i]) {
            snprintf(msg, sizeof(msg), "checksum mismatch in section %s (stored %08x, computed %08x)",
                     k_sect_names[i], hd->crc[i], c);
            return corrupt(err, path, msg);
        }
    }
    return ERR_OK;
}

/* A stored list: count <= cap, ids < n, targets of level >= lv. */
static bool list_ok(const uint32_t *ll, uint32_t cap, const hdr_t *hd, const uint8_t *levels,
                    unsigned lv)
{
    if (ll[0] > cap)
        return false;
    for (uint32_t i = 0; i < ll[0]; i++) {
        if (ll[1 + i] >= hd->n || levels[ll[1 + i]] < lv)
            return false;
    }
    return true;
}

/* The glinks section: every count within the section, every id < n, and
 * the lists ending exactly at G words. */
static int check_glinks(const uint8_t *b, const char *path, const hdr_t *hd, const layout_t *lo,
                        err_t *err)
{
    const uint32_t *g = (const uint32_t *)(b + lo->off[S_GLINKS]);
    uint64_t words = hd->glink_words, at;

    if (words == 0)
        return ERR_OK;
    if ((uint64_t)g[0] + 1 > words)
        return corrupt(err, path, "invalid group entry list");
    for (at = 1; at < 1 + (uint64_t)g[0]; at++) {
        if (g[at] >= hd->n)
            return corrupt(err, path, "invalid group entry list");
    }
    for (uint64_t i = 0; i < hd->n; i++) {
        if (at >= words || words - at - 1 < g[at])
            return corrupt(err, path, "invalid group link list");
        uint64_t end = at + 1 + g[at];
        for (at++; at < end; at++) {
            if (g[at] >= hd->n)
                return corrupt(err, path, "invalid group link list");
        }
    }
    if (at != words)
        return corrupt(err, path, "group link section size disagrees with the header");
    return ERR_OK;
}

static int check_graph(const uint8_t *b, const char *path, const hdr_t *hd, const layout_t *lo,
                       err_t *err)
{
    const uint8_t *levels = b + lo->off[S_LEVELS];
    const uint32_t *l0 = (const uint32_t *)(b + lo->off[S_LINKS0]);
    const uint32_t *up = (const uint32_t *)(b + lo->off[S_UPPER]);
    const uint64_t *del = (const uint64_t *)(b + lo->off[S_DELETED]);
    uint64_t words = 0, ndel = 0;

    for (uint64_t i = 0; i < hd->n; i++) {
        if (levels[i] > hd->max_level)
            return corrupt(err, path, "node level above the maximum");
        words += (uint64_t)levels[i] * (hd->m + 1);
    }
    if (words != hd->upper_words || (hd->n > 0 && levels[hd->entry] != hd->max_level))
        return corrupt(err, path, "levels disagree with the header");
    for (uint64_t i = 0; i < hd->n; i++) {
        const uint32_t *blk = l0 + i * (hd->m0 + 2);
        if (blk[0] != 0 || !list_ok(blk + 1, hd->m0, hd, levels, 0))
            return corrupt(err, path, "invalid layer-0 link list");
        for (unsigned lv = 1; lv <= levels[i]; lv++, up += hd->m + 1) {
            if (!list_ok(up, hd->m, hd, levels, lv))
                return corrupt(err, path, "invalid upper-layer link list");
        }
    }
    for (uint64_t i = 0; i < (hd->n + 63) / 64; i++) {
        if (i == hd->n / 64 && (del[i] >> (hd->n % 64)) != 0)
            return corrupt(err, path, "deleted bits beyond the last node");
        ndel += (uint64_t)__builtin_popcountll(del[i]);
    }
    if (ndel != hd->ndeleted)
        return corrupt(err, path, "deleted count disagrees with the bitmap");
    return check_glinks(b, path, hd, lo, err);
}

/* ---- open: building the index ----------------------------------------- */

/* Point (mapped) or copy (RAM) the validated glinks section into h's
 * chunks; the entry list is always copied (it is small). */
static int attach_glinks(hnsw_t *h, const uint8_t *b, const hdr_t *hd, const layout_t *lo)
{
    const uint32_t *g = (const uint32_t *)(b + lo->off[S_GLINKS]);
    hnsw_dir_t *d = atomic_load(&h->dir);

    if (hd->glink_words == 0)
        return ERR_OK;
    h->n_gentry = h->gentry_cap = g[0];
    if ((h->gentry = malloc((g[0] ? g[0] : 1) * sizeof(*g))) == NULL)
        return ERR_NOMEM;
    memcpy(h->gentry, g + 1, g[0] * sizeof(*g));
    h->glink_bytes = g[0] * sizeof(*g);
    g += 1 + g[0];
    for (size_t i = 0; i < hd->n; g += 1 + g[0], i++) {
        hnsw_chunk_t *c = &d->chunks[i >> HNSW_CHUNK_SHIFT];
        if (g[0] == 0)
            continue;
        if (c->glinks == NULL) {
            if ((c->glinks = calloc(HNSW_CHUNK, sizeof(*c->glinks))) == NULL)
                return ERR_NOMEM;
            h->glink_bytes += HNSW_CHUNK * sizeof(*c->glinks);
        }
        uint32_t **slot = &c->glinks[i & HNSW_CHUNK_MASK];
        h->glink_ids += g[0];
        if (h->map != NULL) {
            *slot = (uint32_t *)(uintptr_t)g;
            continue;
        }
        if ((*slot = malloc((1 + (size_t)g[0]) * sizeof(*g))) == NULL)
            return ERR_NOMEM;
        memcpy(*slot, g, (1 + (size_t)g[0]) * sizeof(*g));
        h->glink_bytes += (1 + (size_t)g[0]) * sizeof(*g);
    }
    return ERR_OK;
}

/* Point (mapped) or copy (RAM) the sections into h's chunks. */
static int attach_sections(hnsw_t *h, const uint8_t *b, const hdr_t *hd, const layout_t *lo,
                           err_t *err)
{
    bool mapped = h->map != NULL;
    size_t n = hd->n;
    int rc = hnsw_chunks_ensure(h, n ? n : 1, !mapped, err);
    if (rc != ERR_OK)
        return rc;
    hnsw_dir_t *d = atomic_load(&h->dir);
    const float *vecs = (const float *)(b + lo->off[S_VECS]);
    const uint8_t *levels = b + lo->off[S_LEVELS];
    const uint32_t *l0 = (const uint32_t *)(b + lo->off[S_LINKS0]);
    const uint32_t *up = (const uint32_t *)(b + lo->off[S_UPPER]);
    const uint64_t *del = (const uint64_t *)(b + lo->off[S_DELETED]);

    for (size_t c = 0; c * HNSW_CHUNK < n; c++) {
        hnsw_chunk_t *ch = &d->chunks[c];
        size_t first = c * HNSW_CHUNK, rows = n - first < HNSW_CHUNK ? n - first : HNSW_CHUNK;
        if (mapped) {
            ch->vecs = (float *)(uintptr_t)(vecs + first * h->stride);
            ch->l0 = (_Atomic uint32_t *)(uintptr_t)(l0 + first * h->l0_words);
            ch->levels = (uint8_t *)(uintptr_t)(levels + first);
        } else {
            memcpy(ch->vecs, vecs + first * h->stride, rows * h->stride * sizeof(float));
            memcpy((void *)ch->l0, l0 + first * h->l0_words, rows * h->l0_words * 4);
            memcpy(ch->levels, levels + first, rows);
        }
        memcpy((void *)ch->deleted, del + first / 64, (rows + 63) / 64 * 8);
        for (size_t i = 0; i < rows; i++) {
            size_t words = hnsw_upper_words(h, levels[first + i]);
            if (words == 0)
                continue;
            if (mapped) {
                ch->upper[i] = (_Atomic uint32_t *)(uintptr_t)up;
            } else {
                if ((ch->upper[i] = malloc(words * 4)) == NULL)
                    return err_set(err, ERR_NOMEM, "hnsw_open: out of memory");
                memcpy((void *)ch->upper[i], up, words * 4);
                atomic_fetch_add(&h->upper_bytes, words * 4);
            }
            up += words;
        }
    }
    if ((rc = attach_glinks(h, b, hd, lo)) != ERR_OK)
        return err_set(err, rc, "hnsw_open: out of memory");
    atomic_store(&h->count, n);
    atomic_store(&h->ndeleted, hd->ndeleted);
    atomic_store(&h->entry, (uint64_t)hd->entry << 32 | (n ? hd->max_level : 0));
    return ERR_OK;
}

static int map_file(const char *path, void **map, size_t *len, err_t *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = ERR_OK;
    if (fd < 0)
        return err_errno(err, errno, "hnsw_open: open %s", path);
    if (fstat(fd, &st) != 0) {
        rc = err_errno(err, errno, "hnsw_open: stat %s", path);
        goto out;
    }
    *len = (size_t)st.st_size;
    *map = NULL;
    if (*len == 0)
        goto out;
    *map = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
    if (*map == MAP_FAILED) {
        *map = NULL;
        rc = err_errno(err, errno, "hnsw_open: mmap %s", path);
    }
out:
    close(fd);
    return rc;
}

int hnsw_open(const char *path, bool use_mmap, hnsw_t **out, uint64_t *wal_seq_out, err_t *err)
{
    void *map = NULL;
    size_t len = 0;
    hdr_t hd = { 0 };
    layout_t lo = { 0 };
    hnsw_t *h = NULL;
    int rc;

    if (path == NULL || out == NULL)
        return err_set(err, ERR_INVALID, "hnsw_open: NULL argument");
    *out = NULL;
    if ((rc = map_file(path, &map, &len, err)) != ERR_OK)
        return rc;
    const uint8_t *b = map;
    if ((rc = check_header(b, len, path, &hd, &lo, err)) != ERR_OK ||
        (rc = check_graph(b, path, &hd, &lo, err)) != ERR_OK)
        goto out;
    rc = hnsw_alloc(hd.dim, (enum dist_metric)hd.metric, hd.m, hd.ef_construct, hd.seed, &h, err);
    if (rc != ERR_OK) {
        rc = err_set(err, ERR_CORRUPT, "hnsw_open %s: invalid parameters in header", path);
        goto out;
    }
    if (use_mmap) {
        h->map = map;
        h->map_len = len;
        h->sealed = true;
        map = NULL;
    }
    if ((rc = attach_sections(h, b, &hd, &lo, err)) != ERR_OK)
        goto out;
    if (wal_seq_out != NULL)
        *wal_seq_out = hd.wal_seq;
    *out = h;
    h = NULL;
out:
    hnsw_free(h);
    if (map != NULL)
        munmap(map, len);
    return rc;
}
