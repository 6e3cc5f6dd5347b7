/*
 * search_inproc.c - in-process exact k-NN search rate, the ceiling the
 * HTTP query node is measured against (bench/http_bench.sh).
 *
 *   search_inproc -S STORAGE_DIR -Q QUERIES [-t THREADS,...] [-s SECONDS]
 *                 [-d DIM] BATCH.json...
 *
 * Creates a collection "bench" (DIM, Cosine) in a fresh catalog at
 * STORAGE_DIR, loads the upsert bodies BATCH.json (bench/gen_points
 * points) through the same path as PUT /collections/{c}/points
 * (req_upsert_parse, coll_write), then for each thread count runs
 * coll_search (limit taken from each query body, no payload, no vector,
 * as POST .../points/query does by default) in a loop on that many
 * threads for SECONDS, each thread drawing queries at random from
 * QUERIES (one {"query": [...], "limit": L} body per line).  Prints one
 * line per thread count:
 *
 *   INPROC threads=T queries=N seconds=S qps=Q p50_us=.. p99_us=..
 *          cpu_self=C cpu_machine=M
 *
 * cpu_self is this process's CPU time over the run, cpu_machine every
 * CPU's busy time (/proc/stat, steal included), both in cores: what is
 * left (M - C) was taken by something else and makes the rate noisy.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "store/catalog.h"
#include "store/coll.h"
#include "store/op.h"
#include "store/req.h"

#define MAX_THREADS 64

typedef struct query {
    float *vec;
    uint32_t dim;
    size_t limit;
} query_t;

typedef struct worker {
    pthread_t tid;
    int id;
    coll_t *coll;
    const query_t *queries;
    size_t n_queries;
    double seconds;
    atomic_int *go;
    /* results */
    size_t done;
    uint32_t *lat_us;         /* one per query run */
    size_t n_lat, cap_lat;
    int failed;
} worker_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds: this process (getrusage), and the whole machine busy
 * (/proc/stat: all but idle and iowait; 0 if unreadable) */
static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double cpu_machine(void)
{
    unsigned long long v[8] = { 0 };
    FILE *f = fopen("/proc/stat", "r");
    int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                       &v[3], &v[4], &v[5], &v[6], &v[7])
              : 0;
    if (f)
        fclose(f);
    if (n < 4)
        return 0;
    /* user nice system idle iowait irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static void die(const char *what, const err_t *err)
{
    fprintf(stderr, "search_inproc: %s: %s\n", what, err ? err->msg : strerror(errno));
    exit(1);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

static query_t *queries_load(const char *path, size_t *n_out)
{
    char *text = slurp(path, NULL);
    query_t *qs = NULL;
    size_t n = 0, cap = 0;

    if (text == NULL)
        die(path, NULL);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *b = cJSON_Parse(line);
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(b, "query");
        const cJSON *lim = cJSON_GetObjectItemCaseSensitive(b, "limit");
        const cJSON *x;
        if (!cJSON_IsArray(q)) {
            fprintf(stderr, "search_inproc: %s: line %zu: no \"query\" list\n", path, n + 1);
            exit(1);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            qs = realloc(qs, cap * sizeof(*qs));
            if (qs == NULL)
                die("queries", NULL);
        }
        qs[n].dim = (uint32_t)cJSON_GetArraySize(q);
        qs[n].vec = malloc(qs[n].dim * sizeof(float) + 1);
        qs[n].limit = cJSON_IsNumber(lim) ? (size_t)lim->valuedouble : 10;
        if (qs[n].vec == NULL)
            die("queries", NULL);
        uint32_t j = 0;
        cJSON_ArrayForEach(x, q) qs[n].vec[j++] = (float)x->valuedouble;
        cJSON_Delete(b);
        n++;
    }
    free(text);
    if (n == 0) {
        fprintf(stderr, "search_inproc: %s: no queries\n", path);
        exit(1);
    }
    *n_out = n;
    return qs;
}

static void load_batch(coll_t *c, const char *path)
{
    size_t len;
    char *text = slurp(path, &len);
    op_t op;
    err_t err;

    if (text == NULL)
        die(path, NULL);
    cJSON *body = cJSON_ParseWithLength(text, len);
    free(text);
    if (body == NULL) {
        fprintf(stderr, "search_inproc: %s: not JSON\n", path);
        exit(1);
    }
    memset(&op, 0, sizeof(op));
    if (req_upsert_parse(body, &op, &err) != ERR_OK || coll_write(c, &op, NULL, &err) != ERR_OK)
        die(path, &err);
    op_clear(&op);
    cJSON_Delete(body);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(w->id + 1);
    coll_sel_t sel;
    err_t err;

    if (coll_sel_parse(NULL, false, NULL, false, &sel, &err) != ERR_OK) {
        w->failed = 1;
        return NULL;
    }
    while (!atomic_load(w->go))
        ;
    double t0 = now_s(), end = t0 + w->seconds, t = t0;
    while (t < end) {
        const query_t *q = &w->queries[xorshift(&rng) % w->n_queries];
        coll_search_req_t req = { .vector = q->vec, .dim = q->dim, .limit = q->limit,
                                  .sel = &sel };
        cJSON *out = NULL;
        if (coll_search(w->coll, &req, &out, &err) != ERR_OK) {
            fprintf(stderr, "search_inproc: coll_search: %s\n", err.msg);
            w->failed = 1;
            break;
        }
        cJSON_Delete(out);
        double t1 = now_s();
        if (w->n_lat == w->cap_lat) {
            w->cap_lat = w->cap_lat ? w->cap_lat * 2 : 65536;
            uint32_t *nl = realloc(w->lat_us, w->cap_lat * sizeof(uint32_t));
            if (nl == NULL) {
                w->failed = 1;
                break;
            }
            w->lat_us = nl;
        }
        w->lat_us[w->n_lat++] = (uint32_t)((t1 - t) * 1e6 + 0.5);
        w->done++;
        t = t1;
    }
    coll_sel_clear(&sel);
    return NULL;
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void run(coll_t *c, const query_t *qs, size_t nq, int threads, double seconds)
{
    worker_t w[MAX_THREADS];
    atomic_int go = 0;

    memset(w, 0, sizeof(w));
    for (int i = 0; i < threads; i++) {
        w[i] = (worker_t){ .id = i, .coll = c, .queries = qs, .n_queries = nq,
                           .seconds = seconds, .go = &go };
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
            die("pthread_create", NULL);
    }
    double t0 = now_s(), c0 = cpu_self(), m0 = cpu_machine();
    atomic_store(&go, 1);
    size_t total = 0, n_lat = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].tid, NULL);
        if (w[i].failed)
            exit(1);
        total += w[i].done;
        n_lat += w[i].n_lat;
    }
    double elapsed = now_s() - t0, c1 = cpu_self(), m1 = cpu_machine();
    uint32_t *all = malloc((n_lat ? n_lat : 1) * sizeof(uint32_t));
    if (all == NULL)
        die("latencies", NULL);
    size_t k = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + k, w[i].lat_us, w[i].n_lat * sizeof(uint32_t));
        k += w[i].n_lat;
        free(w[i].lat_us);
    }
    qsort(all, n_lat, sizeof(uint32_t), u32_cmp);
    uint32_t p50 = n_lat ? all[(n_lat - 1) * 50 / 100] : 0;
    uint32_t p99 = n_lat ? all[(n_lat - 1) * 99 / 100] : 0;
    printf("INPROC threads=%d queries=%zu seconds=%.3f qps=%.1f p50_us=%u p99_us=%u "
           "cpu_self=%.2f cpu_machine=%.2f\n",
           threads, total, elapsed, total / elapsed, p50, p99, (c1 - c0) / elapsed,
           (m1 - m0) / elapsed);
    fflush(stdout);
    free(all);
}

static void usage(void)
{
    fprintf(stderr, "usage: search_inproc -S STORAGE_DIR -Q QUERIES [-t THREADS,...] "
                    "[-s SECONDS] [-d DIM] BATCH.json...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *storage = NULL, *qpath = NULL, *tlist = "1,2";
    double seconds = 10;
    unsigned dim = 128;
    int opt;
    err_t err;

    while ((opt = getopt(argc, argv, "S:Q:t:s:d:")) != -1) {
        switch (opt) {
        case 'S': storage = optarg; break;
        case 'Q': qpath = optarg; break;
        case 't': tlist = optarg; break;
        case 's': seconds = atof(optarg); break;
        case 'd': dim = (unsigned)atoi(optarg); break;
        default: usage();
        }
    }
    if (storage == NULL || qpath == NULL || optind >= argc || seconds <= 0 || dim == 0)
        usage();

    catalog_opts_t copts;
    catalog_t *cat;
    catalog_handle_t *h;
    catalog_opts_default(&copts);
    copts.storage_path = storage;
    if (catalog_open(&copts, &cat, &err) != ERR_OK)
        die("catalog_open", &err);
    char body[128];
    snprintf(body, sizeof(body), "{\"vectors\": {\"size\": %u, \"distance\": \"Cosine\"}}", dim);
    cJSON *cb = cJSON_Parse(body);
    if (catalog_create(cat, "bench", cb, &err) != ERR_OK)
        die("catalog_create", &err);
    cJSON_Delete(cb);
    if (catalog_acquire(cat, "bench", &h, &err) != ERR_OK)
        die("catalog_acquire", &err);
    coll_t *c = catalog_handle_coll(h);

    double t0 = now_s();
    for (int i = optind; i < argc; i++)
        load_batch(c, argv[i]);
    coll_info_t info;
    coll_info_get(c, &info);
    fprintf(stderr, "search_inproc: loaded %llu points from %d files in %.1f s\n",
            (unsigned long long)info.points, argc - optind, now_s() - t0);

    size_t nq;
    query_t *qs = queries_load(qpath, &nq);
    for (const char *p = tlist; *p;) {
        char *end;
        long t = strtol(p, &end, 10);
        if (end == p || t < 1 || t > MAX_THREADS)
            usage();
        run(c, qs, nq, (int)t, seconds);
        p = *end == ',' ? end + 1 : end;
    }

    for (size_t i = 0; i < nq; i++)
        free(qs[i].vec);
    free(qs);
    catalog_release(h);
    catalog_close(cat);
    return 0;
}
