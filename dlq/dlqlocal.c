/*
 * dlqlocal.c - the local dead-letter store; why, the files and their byte
 * format are in dlqlocal.h.
 *
 * A record is encoded into one buffer and written with one write() at the
 * end of the file, then fsync'd; a failed or short write is cut off again
 * (ftruncate to the old size) so the file never holds a torn record that
 * later appends would follow.  The file and its directory entry are
 * fsync'd when the file is created.
 */
#include "dlqlocal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/crc32c.h"

#define MAGIC "VLDLQ\0\0\1"
#define MAGIC_LEN 8
#define VERSION 1
#define MAX_BODY (1u << 30)

struct dlqlocal {
    char *dir;
    char *path;
    int fd;                      /* -1 until the first append */
    off_t size;
};

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
    bool oom;
} buf_t;

/* ---- encoding ----------------------------------------------------------- */

static void put(buf_t *b, const void *d, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n)
            cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_u32(buf_t *b, uint32_t v)
{
    unsigned char x[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    put(b, x, 4);
}

static void put_u64(buf_t *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(buf_t *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_u32(b, (uint32_t)n);
    put(b, s, n);
}

static void put_bytes(buf_t *b, const void *d, size_t n)
{
    put_u32(b, d == NULL ? UINT32_MAX : (uint32_t)n);
    if (d != NULL)
        put(b, d, n);
}

static void encode(buf_t *b, const dlqlocal_rec_t *r)
{
    unsigned char v = VERSION;

    put_u32(b, 0); /* body_len, filled in below */
    put_u32(b, 0); /* crc */
    put(b, &v, 1);
    put_u32(b, (uint32_t)r->partition);
    put_u64(b, (uint64_t)r->offset);
    put_u64(b, (uint64_t)r->timestamp);
    put_str(b, r->topic);
    put_bytes(b, r->key, r->key_len);
    put_bytes(b, r->value, r->value_len);
    put_u32(b, (uint32_t)r->n_headers);
    for (size_t i = 0; i < r->n_headers; i++) {
        put_str(b, r->headers[i].name);
        put_bytes(b, r->headers[i].value, r->headers[i].len);
    }
    put_str(b, r->stage);
    put_str(b, r->class_name);
    put_str(b, r->message);
    if (b->oom)
        return;
    uint32_t len = (uint32_t)(b->n - 8), crc = crc32c_value(b->p + 8, len);
    for (int i = 0; i < 4; i++) {
        b->p[i] = (unsigned char)(len >> (8 * i));
        b->p[4 + i] = (unsigned char)(crc >> (8 * i));
    }
}

/* ---- the store ---------------------------------------------------------- */

static int mkdirs(const char *dir, err_t *err)
{
    char *p = strdup(dir);
    int rc = ERR_OK;

    if (p == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    for (char *s = p + 1; rc == ERR_OK; s++) {
        bool end = *s == '\0';
        if (*s != '/' && !end)
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            rc = err_errno(err, errno, "local dead-letter store: mkdir %s", p);
        if (end)
            break;
        *s = '/';
    }
    free(p);
    return rc;
}

/* n of a name "local-<n>.log", or -1. */
static long file_number(const char *name)
{
    char *end;

    if (strncmp(name, "local-", 6) != 0 || name[6] < '0' || name[6] > '9')
        return -1;
    long n = strtol(name + 6, &end, 10);
    return strcmp(end, ".log") == 0 && n >= 0 ? n : -1;
}

/* One above the highest n of dir/local-<n>.log, or 0. */
static long next_file(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    long next = 0;

    while (d != NULL && (de = readdir(d)) != NULL) {
        long n = file_number(de->d_name);
        if (n >= next)
            next = n + 1;
    }
    if (d != NULL)
        closedir(d);
    return next;
}

void dlqlocal_close(dlqlocal_t *l)
{
    if (l == NULL)
        return;
    if (l->fd >= 0)
        close(l->fd);
    free(l->dir);
    free(l->path);
    free(l);
}

int dlqlocal_open(const char *dir, dlqlocal_t **out, err_t *err)
{
    dlqlocal_t *l = calloc(1, sizeof(*l));
    int rc;

    *out = NULL;
    if (l == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    l->fd = -1;
    if ((rc = mkdirs(dir, err)) != ERR_OK) {
        free(l);
        return rc;
    }
    l->dir = strdup(dir);
    if (l->dir == NULL || asprintf(&l->path, "%s/local-%ld.log", dir, next_file(dir)) < 0) {
        l->path = NULL;
        dlqlocal_close(l);
        return err_set(err, ERR_NOMEM, "no memory");
    }
    *out = l;
    return ERR_OK;
}

const char *dlqlocal_path(const dlqlocal_t *l)
{
    return l->path;
}

void dlqlocal_rotate(dlqlocal_t *l)
{
    char *path;

    if (l->fd < 0)
        return; /* nothing written to the current file: it does not exist */
    if (asprintf(&path, "%s/local-%ld.log", l->dir, next_file(l->dir)) < 0)
        return; /* keep appending to the current file */
    close(l->fd);
    l->fd = -1;
    free(l->path);
    l->path = path;
}

static int long_cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* Numbers of the closed files of l's directory, sorted; *nums malloc'd. */
static int closed_numbers(const dlqlocal_t *l, long **nums, size_t *n)
{
    DIR *d = opendir(l->dir);
    struct dirent *de;
    size_t cap = 0;
    char cur[300];

    *nums = NULL;
    *n = 0;
    snprintf(cur, sizeof(cur), "%s", strrchr(l->path, '/') + 1);
    while (d != NULL && (de = readdir(d)) != NULL) {
        long k = file_number(de->d_name);
        if (k < 0 || strcmp(de->d_name, cur) == 0)
            continue;
        if (*n == cap) {
            long *nn = realloc(*nums, (cap = cap ? cap * 2 : 8) * sizeof(long));
            if (nn == NULL) {
                closedir(d);
                return ERR_NOMEM;
            }
            *nums = nn;
        }
        (*nums)[(*n)++] = k;
    }
    if (d != NULL)
        closedir(d);
    if (*n > 1)
        qsort(*nums, *n, sizeof(long), long_cmp);
    return ERR_OK;
}

int dlqlocal_closed(const dlqlocal_t *l, char ***paths, size_t *n, err_t *err)
{
    long *nums;
    size_t k;
    int rc = closed_numbers(l, &nums, &k);

    *paths = NULL;
    *n = 0;
    if (rc == ERR_OK && k > 0 && (*paths = calloc(k, sizeof(char *))) == NULL)
        rc = ERR_NOMEM;
    for (size_t i = 0; rc == ERR_OK && i < k; i++) {
        if (asprintf(&(*paths)[i], "%s/local-%ld.log", l->dir, nums[i]) < 0) {
            (*paths)[i] = NULL;
            rc = ERR_NOMEM;
        }
        *n = i + 1;
    }
    free(nums);
    if (rc != ERR_OK) {
        for (size_t i = 0; i < *n; i++)
            free((*paths)[i]);
        free(*paths);
        *paths = NULL;
        *n = 0;
        return err_set(err, ERR_NOMEM, "no memory");
    }
    return ERR_OK;
}

/* Create the file with its magic, durably (file and directory entry). */
static int create_file(dlqlocal_t *l, err_t *err)
{
    int fd = open(l->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644), dfd;

    if (fd < 0)
        return err_errno(err, errno, "local dead-letter store: create %s", l->path);
    if (write(fd, MAGIC, MAGIC_LEN) != MAGIC_LEN || fsync(fd) != 0) {
        int rc = err_errno(err, errno ? errno : EIO, "local dead-letter store: write %s", l->path);
        close(fd);
        unlink(l->path);
        return rc;
    }
    if ((dfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    l->fd = fd;
    l->size = MAGIC_LEN;
    return ERR_OK;
}

int dlqlocal_append(dlqlocal_t *l, const dlqlocal_rec_t *r, err_t *err)
{
    buf_t b = { 0 };
    int rc = ERR_OK;

    if (l->fd < 0 && (rc = create_file(l, err)) != ERR_OK) {
        err->retriable = true;
        return rc;
    }
    encode(&b, r);
    if (b.oom || b.n - 8 > MAX_BODY) {
        free(b.p);
        return err_setr(err, b.oom ? ERR_NOMEM : ERR_IO, true,
                        "local dead-letter store: record %s", b.oom ? "no memory" : "too large");
    }
    errno = 0;
    ssize_t w = pwrite(l->fd, b.p, b.n, l->size);
    if (w != (ssize_t)b.n || fsync(l->fd) != 0) {
        rc = err_errno(err, errno ? errno : EIO, "local dead-letter store: write %s", l->path);
        err->retriable = true;
        if (ftruncate(l->fd, l->size) != 0)
            (void)0; /* the reader stops at the torn record; the next append overwrites it */
    } else {
        l->size += (off_t)b.n;
    }
    free(b.p);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

typedef struct rd {
    unsigned char *p;
    size_t n, at;
    bool bad;
} rd_t;

static uint32_t get_u32(rd_t *r)
{
    if (r->bad || r->n - r->at < 4) {
        r->bad = true;
        return 0;
    }
    const unsigned char *x = r->p + r->at;
    r->at += 4;
    return (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
}

static uint64_t get_u64(rd_t *r)
{
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}

/* len bytes in place, NUL-terminated by moving them one byte left over
 * their length prefix (which is read already) - the buffer is ours. */
static const void *get_bytes(rd_t *r, uint32_t len, bool null)
{
    if (null || r->bad)
        return NULL;
    if (r->n - r->at < len) {
        r->bad = true;
        return NULL;
    }
    unsigned char *d = r->p + r->at - 1;
    memmove(d, d + 1, len);
    d[len] = '\0';
    r->at += len;
    return d;
}

static const char *get_str(rd_t *r)
{
    uint32_t len = get_u32(r);
    const char *s = get_bytes(r, len, false);
    return s ? s : "";
}

static const void *get_nbytes(rd_t *r, size_t *len)
{
    uint32_t l = get_u32(r);
    *len = l == UINT32_MAX ? 0 : l;
    return get_bytes(r, (uint32_t)*len, l == UINT32_MAX);
}

/* Decode one body (in place) and hand it to cb. */
static int decode(unsigned char *p, size_t n, dlqlocal_cb cb, void *arg, err_t *err)
{
    rd_t r = { p, n, 1, false };
    dlqlocal_rec_t rec;
    dlqlocal_hdr_t *h = NULL;
    int rc;

    if (n < 1 || p[0] != VERSION)
        return err_set(err, ERR_CORRUPT, "local dead-letter store: unknown record version");
    rec.partition = (int32_t)get_u32(&r);
    rec.offset = (int64_t)get_u64(&r);
    rec.timestamp = (int64_t)get_u64(&r);
    rec.topic = get_str(&r);
    rec.key = get_nbytes(&r, &rec.key_len);
    rec.value = get_nbytes(&r, &rec.value_len);
    rec.n_headers = get_u32(&r);
    if (!r.bad && rec.n_headers > (n - r.at) / 8)
        r.bad = true;
    if (!r.bad && rec.n_headers > 0 && (h = calloc(rec.n_headers, sizeof(*h))) == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    for (size_t i = 0; i < rec.n_headers && !r.bad; i++) {
        h[i].name = get_str(&r);
        h[i].value = get_nbytes(&r, &h[i].len);
    }
    rec.headers = h;
    rec.stage = get_str(&r);
    rec.class_name = get_str(&r);
    rec.message = get_str(&r);
    if (r.bad || r.at != n)
        rc = err_set(err, ERR_CORRUPT, "local dead-letter store: malformed record");
    else
        rc = cb(&rec, arg);
    free(h);
    return rc;
}

static int read_all(const char *path, unsigned char **p, size_t *n, err_t *err)
{
    FILE *f = fopen(path, "rb");
    struct stat st;

    if (f == NULL)
        return err_errno(err, errno, "local dead-letter store: open %s", path);
    if (fstat(fileno(f), &st) != 0 || (*p = malloc((size_t)st.st_size + 1)) == NULL) {
        fclose(f);
        return err_set(err, ERR_NOMEM, "no memory for %s", path);
    }
    *n = fread(*p, 1, (size_t)st.st_size, f);
    fclose(f);
    return ERR_OK;
}

int dlqlocal_read(const char *path, dlqlocal_cb cb, void *arg, size_t *n, bool *torn,
                  err_t *err)
{
    unsigned char *p = NULL;
    size_t len = 0, at = MAGIC_LEN;
    int rc;

    *n = 0;
    *torn = false;
    if ((rc = read_all(path, &p, &len, err)) != ERR_OK)
        return rc;
    if (len < MAGIC_LEN || memcmp(p, MAGIC, MAGIC_LEN) != 0) {
        *torn = len < MAGIC_LEN && memcmp(p, MAGIC, len) == 0;
        free(p);
        return *torn ? ERR_OK : err_set(err, ERR_CORRUPT, "%s: not a dead-letter file", path);
    }
    while (rc == ERR_OK && at < len) {
        rd_t h = { p, len, at, false };
        uint32_t blen = get_u32(&h), crc = get_u32(&h);
        if (h.bad || len - h.at < blen) {
            *torn = true;
            break;
        }
        if (crc32c_value(p + h.at, blen) != crc) {
            rc = err_set(err, ERR_CORRUPT, "%s: bad CRC at byte %zu", path, at);
            break;
        }
        rc = decode(p + h.at, blen, cb, arg, err);
        if (rc == ERR_OK)
            (*n)++;
        at = h.at + blen;
    }
    free(p);
    return rc < 0 ? ERR_OK : rc;
}

/* ---- listing ------------------------------------------------------------ */

typedef struct list_ctx {
    cJSON *arr;
    const char *file;
} list_ctx_t;

static int list_cb(const dlqlocal_rec_t *r, void *arg)
{
    list_ctx_t *c = arg;
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || !cJSON_AddItemToArray(c->arr, o))
        return ERR_NOMEM;
    cJSON_AddStringToObject(o, "file", c->file);
    cJSON_AddStringToObject(o, "topic", r->topic);
    cJSON_AddNumberToObject(o, "partition", r->partition);
    cJSON_AddNumberToObject(o, "offset", (double)r->offset);
    cJSON_AddNumberToObject(o, "timestamp", (double)r->timestamp);
    cJSON_AddStringToObject(o, "stage", r->stage);
    cJSON_AddStringToObject(o, "class_name", r->class_name);
    cJSON_AddStringToObject(o, "message", r->message);
    cJSON_AddNumberToObject(o, "value_bytes", (double)r->value_len);
    return ERR_OK;
}

cJSON *dlqlocal_list_json(const char *dir)
{
    cJSON *arr = cJSON_CreateArray();
    DIR *d = opendir(dir);
    struct dirent *de;

    while (arr != NULL && d != NULL && (de = readdir(d)) != NULL) {
        char *path = NULL;
        size_t n;
        bool torn;
        err_t e;
        if (strncmp(de->d_name, "local-", 6) != 0 || strstr(de->d_name, ".log") == NULL ||
            asprintf(&path, "%s/%s", dir, de->d_name) < 0)
            continue;
        list_ctx_t c = { arr, path };
        int rc = dlqlocal_read(path, list_cb, &c, &n, &torn, &e);
        if (rc != ERR_OK || torn) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "file", path);
            cJSON_AddStringToObject(o, "error", rc != ERR_OK ? e.msg : "torn record at the end");
            cJSON_AddItemToArray(arr, o);
        }
        free(path);
    }
    if (d != NULL)
        closedir(d);
    return arr;
}
