/*
 * hnsw_bench.c - veclog's side of the HNSW benchmark (bench/hnsw_bench.sh
 * runs it and bench/hnsw_peer.py on the same files).
 *
 *   hnsw_bench gen DIR N DIM NQ SEED
 *       writes DIR/base.fbin and DIR/query.fbin (uint32 rows, uint32 dim,
 *       then float32 rows: the big-ann-benchmarks .fbin layout), seeded
 *       clustered data (100 Gaussian centres with sd 3 per coordinate,
 *       unit Gaussian noise); DIR/gt.ibin (uint32 nq, uint32 k, then nq x k
 *       uint32 ids: exact L2 top-10), and for each filter selectivity P in
 *       1, 10, 50 percent DIR/mask_P.u8 (one byte per base row, 1 = passes)
 *       and DIR/gt_P.ibin (exact top-10 among passing rows).
 *   hnsw_bench run DIR THREADS EFS...
 *       builds veclog's index (M 16, ef_construct 100, Euclid) with THREADS
 *       threads and prints one JSON object per line: build, ef sweep
 *       (single thread), filtered search, memory, save and open.
 *
 * Exact search (the ground truth) uses dist_l2sq, all cores, once.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/dist.h"
#include "store/hnsw.h"

#define K 10
#define CENTRES 100
#define M 16
#define EF_CONSTRUCT 100

static const int k_filter_pct[] = { 1, 10, 50 };
#define NFILTERS 3

typedef struct mat {
    uint32_t n, d;
    float *v;
} mat_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "hnsw_bench: %s: %s\n", what, errno ? strerror(errno) : "failed");
    exit(1);
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float gauss(uint64_t *s)
{
    double u = ((double)(rnd(s) >> 11) + 0.5) * 0x1.0p-53;
    double v = (double)(rnd(s) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static void write_file(const char *dir, const char *name, const void *hdr, size_t hlen,
                       const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(hdr, 1, hlen, f) != hlen || fwrite(data, 1, len, f) != len ||
        fclose(f) != 0)
        die(path);
}

static mat_t read_fbin(const char *dir, const char *name)
{
    char path[4096];
    mat_t m;
    uint32_t h[2];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL || fread(h, 4, 2, f) != 2)
        die(path);
    m.n = h[0];
    m.d = h[1];
    m.v = malloc((size_t)m.n * m.d * sizeof(float));
    if (m.v == NULL || fread(m.v, sizeof(float), (size_t)m.n * m.d, f) != (size_t)m.n * m.d)
        die(path);
    fclose(f);
    return m;
}

static void *read_raw(const char *dir, const char *name, size_t skip, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    void *b = malloc(len ? len : 1);
    if (f == NULL || b == NULL || fseek(f, (long)skip, SEEK_SET) != 0 || fread(b, 1, len, f) != len)
        die(path);
    fclose(f);
    return b;
}

/* ---- gen: data and exact ground truth --------------------------------- */

typedef struct gt_job {
    const mat_t *base, *q;
    const uint8_t *mask; /* NULL: all rows */
    uint32_t *out;       /* nq x K */
    uint32_t from, to;
} gt_job_t;

static void *gt_worker(void *arg)
{
    gt_job_t *j = arg;
    uint32_t d = j->base->d;
    for (uint32_t qi = j->from; qi < j->to; qi++) {
        const float *q = j->q->v + (size_t)qi * d;
        float best[K];
        uint32_t *ids = j->out + (size_t)qi * K;
        size_t n = 0;
        for (uint32_t i = 0; i < j->base->n; i++) {
            if (j->mask != NULL && !j->mask[i])
                continue;
            float s = dist_l2sq(q, j->base->v + (size_t)i * d, d);
            if (n == K && s >= best[K - 1])
                continue;
            size_t at = n < K ? n++ : K - 1;
            while (at > 0 && s < best[at - 1]) {
                best[at] = best[at - 1];
                ids[at] = ids[at - 1];
                at--;
            }
            best[at] = s;
            ids[at] = i;
        }
        for (; n < K; n++)
            ids[n] = UINT32_MAX;
    }
    return NULL;
}

static void ground_truth(const char *dir, const char *name, const mat_t *base, const mat_t *q,
                         const uint8_t *mask)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = ncpu < 1 ? 1 : ncpu > 32 ? 32 : (int)ncpu;
    pthread_t t[32];
    gt_job_t jobs[32];
    uint32_t *out = malloc((size_t)q->n * K * sizeof(uint32_t));
    if (out == NULL)
        die("malloc");
    for (int i = 0; i < nt; i++) {
        jobs[i] = (gt_job_t){ base, q, mask, out, (uint32_t)((uint64_t)q->n * i / nt),
                              (uint32_t)((uint64_t)q->n * (i + 1) / nt) };
        if (pthread_create(&t[i], NULL, gt_worker, &jobs[i]) != 0)
            die("pthread_create");
    }
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    uint32_t hdr[2] = { q->n, K };
    write_file(dir, name, hdr, sizeof(hdr), out, (size_t)q->n * K * sizeof(uint32_t));
    free(out);
}

static mat_t gen_rows(uint32_t n, uint32_t d, const float *centres, uint64_t *st)
{
    mat_t m = { n, d, malloc((size_t)n * d * sizeof(float)) };
    if (m.v == NULL)
        die("malloc");
    for (uint32_t i = 0; i < n; i++) {
        const float *c = centres + (rnd(st) % CENTRES) * d;
        for (uint32_t j = 0; j < d; j++)
            m.v[(size_t)i * d + j] = c[j] + gauss(st);
    }
    return m;
}

static uint32_t mask_hash(uint32_t i)
{
    uint32_t x = i * 2654435761u;
    return (x ^ (x >> 16)) % 1000;
}

static int cmd_gen(const char *dir, uint32_t n, uint32_t d, uint32_t nq, uint64_t seed)
{
    uint64_t st = seed;
    float *centres = malloc((size_t)CENTRES * d * sizeof(float));
    uint8_t *mask = malloc(n);
    if (centres == NULL || mask == NULL)
        die("malloc");
    for (size_t i = 0; i < (size_t)CENTRES * d; i++)
        centres[i] = 3.0f * gauss(&st);
    mat_t base = gen_rows(n, d, centres, &st), q = gen_rows(nq, d, centres, &st);
    uint32_t hb[2] = { n, d }, hq[2] = { nq, d };
    write_file(dir, "base.fbin", hb, sizeof(hb), base.v, (size_t)n * d * 4);
    write_file(dir, "query.fbin", hq, sizeof(hq), q.v, (size_t)nq * d * 4);
    ground_truth(dir, "gt.ibin", &base, &q, NULL);
    for (int f = 0; f < NFILTERS; f++) {
        char name[64];
        for (uint32_t i = 0; i < n; i++)
            mask[i] = mask_hash(i) < (uint32_t)k_filter_pct[f] * 10;
        snprintf(name, sizeof(name), "mask_%d.u8", k_filter_pct[f]);
        write_file(dir, name, "", 0, mask, n);
        snprintf(name, sizeof(name), "gt_%d.ibin", k_filter_pct[f]);
        ground_truth(dir, name, &base, &q, mask);
    }
    free(centres);
    free(mask);
    free(base.v);
    free(q.v);
    return 0;
}

/* ---- run: veclog's index ----------------------------------------------- */

static size_t rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static double recall_of(const uint32_t *got, const size_t *ngot, const uint32_t *gt, uint32_t nq)
{
    size_t hits = 0, total = 0;
    for (uint32_t qi = 0; qi < nq; qi++) {
        const uint32_t *want = gt + (size_t)qi * K;
        for (size_t j = 0; j < K; j++) {
            if (want[j] == UINT32_MAX)
                continue;
            total++;
            for (size_t i = 0; i < ngot[qi]; i++)
                hits += got[(size_t)qi * K + i] == want[j];
        }
    }
    return total ? (double)hits / (double)total : 1.0;
}

typedef struct sweep {
    const hnsw_t *h;
    const mat_t *q;
    const uint8_t *mask;
    uint32_t *got;
    size_t *ngot;
} sweep_t;

static bool mask_accept(void *ctx, uint32_t id)
{
    return ((const uint8_t *)ctx)[id] != 0;
}

/* All queries, single thread, repeated until at least 0.3 s; returns QPS. */
static double run_queries(const sweep_t *s, size_t ef)
{
    size_t done = 0;
    err_t err;
    double t0 = now(), el;
    do {
        for (uint32_t qi = 0; qi < s->q->n; qi++) {
            if (hnsw_search(s->h, s->q->v + (size_t)qi * s->q->d, K, ef,
                            s->mask ? mask_accept : NULL, (void *)s->mask, s->got + (size_t)qi * K,
                            NULL, &s->ngot[qi], &err) != ERR_OK)
                die(err.msg);
        }
        done += s->q->n;
        el = now() - t0;
    } while (el < 0.3);
    return (double)done / el;
}

static hnsw_t *run_build(const mat_t *base, int threads)
{
    hnsw_t *h = NULL;
    err_t err;
    size_t rss0 = rss_bytes();
    double t0 = now();
    if (hnsw_create(base->d, DIST_EUCLID, M, EF_CONSTRUCT, 42, base->n, &h, &err) != ERR_OK ||
        hnsw_build(h, base->v, base->n, threads, &err) != ERR_OK)
        die(err.msg);
    double el = now() - t0;
    printf("{\"engine\":\"veclog\",\"what\":\"build\",\"threads\":%d,\"seconds\":%.3f,"
           "\"points_per_s\":%.1f,\"mem_bytes_per_point\":%.1f,\"rss_bytes_per_point\":%.1f}\n",
           threads, el, base->n / el, (double)hnsw_memory_bytes(h) / base->n,
           (double)(rss_bytes() - rss0) / base->n);
    return h;
}

static void run_persist(const hnsw_t *h, const char *dir, const sweep_t *sw)
{
    char path[4096];
    err_t err;
    hnsw_t *o = NULL;
    snprintf(path, sizeof(path), "%s/veclog.hnsw", dir);
    double t0 = now();
    if (hnsw_save(h, path, 1, &err) != ERR_OK)
        die(err.msg);
    double save = now() - t0;
    double open[2];
    for (int mode = 0; mode < 2; mode++) {
        t0 = now();
        if (hnsw_open(path, mode == 1, &o, NULL, &err) != ERR_OK)
            die(err.msg);
        open[mode] = now() - t0;
        sweep_t s2 = *sw;
        s2.h = o;
        run_queries(&s2, 64); /* the reopened index answers */
        hnsw_free(o);
    }
    printf("{\"engine\":\"veclog\",\"what\":\"persist\",\"save_s\":%.3f,\"open_s\":%.3f,"
           "\"open_mmap_s\":%.3f}\n", save, open[0], open[1]);
    unlink(path);
}

static int cmd_run(const char *dir, int threads, int nef, char **efs)
{
    mat_t base = read_fbin(dir, "base.fbin"), q = read_fbin(dir, "query.fbin");
    uint32_t *gt = read_raw(dir, "gt.ibin", 8, (size_t)q.n * K * 4);
    sweep_t sw = { NULL, &q, NULL, malloc((size_t)q.n * K * 4), malloc(q.n * sizeof(size_t)) };
    if (sw.got == NULL || sw.ngot == NULL)
        die("malloc");
    hnsw_t *h = run_build(&base, threads);
    sw.h = h;
    for (int i = 0; i < nef; i++) {
        size_t ef = (size_t)atoi(efs[i]);
        double qps = run_queries(&sw, ef);
        printf("{\"engine\":\"veclog\",\"what\":\"search\",\"ef\":%zu,\"recall\":%.4f,\"qps\":%.1f}\n",
               ef, recall_of(sw.got, sw.ngot, gt, q.n), qps);
    }
    for (int f = 0; f < NFILTERS; f++) {
        char name[64];
        snprintf(name, sizeof(name), "mask_%d.u8", k_filter_pct[f]);
        uint8_t *mask = read_raw(dir, name, 0, base.n);
        snprintf(name, sizeof(name), "gt_%d.ibin", k_filter_pct[f]);
        uint32_t *fgt = read_raw(dir, name, 8, (size_t)q.n * K * 4);
        sweep_t fs = sw;
        fs.mask = mask;
        double qps = run_queries(&fs, 64);
        printf("{\"engine\":\"veclog\",\"what\":\"filter\",\"pct\":%d,\"ef\":64,\"recall\":%.4f,"
               "\"qps\":%.1f}\n", k_filter_pct[f], recall_of(fs.got, fs.ngot, fgt, q.n), qps);
        free(mask);
        free(fgt);
    }
    run_persist(h, dir, &sw);
    fflush(stdout);
    hnsw_free(h);
    free(sw.got);
    free(sw.ngot);
    free(gt);
    free(base.v);
    free(q.v);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && strcmp(argv[1], "gen") == 0)
        return cmd_gen(argv[2], (uint32_t)atol(argv[3]), (uint32_t)atol(argv[4]),
                       (uint32_t)atol(argv[5]), strtoull(argv[6], NULL, 10));
    if (argc >= 5 && strcmp(argv[1], "run") == 0)
        return cmd_run(argv[2], atoi(argv[3]), argc - 4, argv + 4);
    fprintf(stderr, "usage: hnsw_bench gen DIR N DIM NQ SEED | run DIR THREADS EF...\n");
    return 2;
}
