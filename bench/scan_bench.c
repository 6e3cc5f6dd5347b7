/*
 * scan_bench.c - exact-search scan rate beside the machine's measured
 * memory-read bandwidth (bench/scan_bench.sh runs it for `make bench`).
 *
 *   scan_bench [-n N] [-d DIM] [-t THREADS] [-r REPEATS]
 *
 * Exact search reads every stored vector once per query, so on data far
 * larger than the caches its ceiling is the memory-read bandwidth.  Both
 * are measured here on the same buffer size with the same thread counts:
 *
 *   bandwidth  each thread sums its share of the buffer with 32-byte
 *              vector loads into four independent accumulators (nothing
 *              but loads and adds),
 *   scan       each thread scores its share of the vectors against one
 *              query with dist_score (the kernels coll_read.c uses), the
 *              best-of-REPEATS wall time,
 *
 * and the table prints vectors/s, GB/s and scan / bandwidth.  A ratio near
 * 1 means the kernels are memory-bound, as they should be; well below 1
 * means compute (or a scalar kernel set) limits the scan.  One JSON line
 * per measurement on stdout; a table on stderr.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/dist.h"

typedef struct job {
    const float *vecs;
    const float *q;
    size_t from, to, dim;
    int what;                 /* 0 bandwidth, 1 scan */
    double sink;
} job_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 32-byte loads into four independent vector accumulators: as close to
 * pure reading as C gets (GNU vector extensions; AVX2 when the CPU has it,
 * like the distance kernels). */
typedef float v8f __attribute__((vector_size(32)));

#define READ_BODY                                                                \
    v8f a = { 0 }, b = { 0 }, c = { 0 }, d = { 0 };                              \
    for (size_t i = 0; i + 32 <= n; i += 32) {                                   \
        v8f x, y, z, w;                                                          \
        memcpy(&x, p + i, sizeof(x));                                            \
        memcpy(&y, p + i + 8, sizeof(y));                                        \
        memcpy(&z, p + i + 16, sizeof(z));                                       \
        memcpy(&w, p + i + 24, sizeof(w));                                       \
        a += x;                                                                  \
        b += y;                                                                  \
        c += z;                                                                  \
        d += w;                                                                  \
    }                                                                            \
    a += b + c + d;                                                              \
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];

__attribute__((target("avx2"))) static float read_avx2(const float *p, size_t n)
{
    READ_BODY
}

static float read_portable(const float *p, size_t n)
{
    READ_BODY
}

static void *work(void *arg)
{
    job_t *j = arg;

    if (j->what == 0) {
        const float *p = j->vecs + j->from * j->dim;
        size_t n = (j->to - j->from) * j->dim;
        j->sink = __builtin_cpu_supports("avx2") ? read_avx2(p, n) : read_portable(p, n);
    } else {
        float best = -1e30f;
        for (size_t i = j->from; i < j->to; i++) {
            float s = dist_score(DIST_DOT, j->q, j->vecs + i * j->dim, j->dim);
            if (s > best)
                best = s;
        }
        j->sink = best;
    }
    return NULL;
}

/* Best wall time of `repeats` runs of `what` over all n vectors. */
static double timed(const float *vecs, const float *q, size_t n, size_t dim, int threads,
                    int what, int repeats)
{
    double best = 1e30;
    pthread_t th[64];
    job_t jobs[64];

    for (int r = 0; r < repeats; r++) {
        double t0 = now_s();
        for (int t = 0; t < threads; t++) {
            jobs[t] = (job_t){ vecs, q, n * (size_t)t / (size_t)threads,
                               n * (size_t)(t + 1) / (size_t)threads, dim, what, 0 };
            pthread_create(&th[t], NULL, work, &jobs[t]);
        }
        for (int t = 0; t < threads; t++)
            pthread_join(th[t], NULL);
        double el = now_s() - t0;
        if (el < best)
            best = el;
    }
    return best;
}

int main(int argc, char **argv)
{
    size_t n = 1000000, dim = 128;
    int max_threads = 2, repeats = 5, opt;

    while ((opt = getopt(argc, argv, "n:d:t:r:")) != -1) {
        if (opt == 'n')
            n = strtoul(optarg, NULL, 10);
        else if (opt == 'd')
            dim = strtoul(optarg, NULL, 10);
        else if (opt == 't')
            max_threads = atoi(optarg);
        else if (opt == 'r')
            repeats = atoi(optarg);
        else
            return 2;
    }
    if (n == 0 || dim == 0 ||  max_threads < 1 || max_threads > 64 ||
        repeats < 1) {
        fprintf(stderr, "usage: scan_bench [-n N] [-d DIM] [-t 1..64] [-r REPEATS]\n");
        return 2;
    }
    size_t bytes = n * dim * sizeof(float);
    float *vecs = aligned_alloc(64, (bytes + 63) / 64 * 64);
    float *q = malloc(dim * sizeof(float));
    if (vecs == NULL || q == NULL) {
        fprintf(stderr, "scan_bench: no memory for %zu bytes\n", bytes);
        return 1;
    }
    uint64_t s = 42;
    for (size_t i = 0; i < n * dim; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        vecs[i] = (float)((s >> 40) & 0xffff) / 65536.0f - 0.5f;
    }
    for (size_t i = 0; i < dim; i++)
        q[i] = vecs[i];
    fprintf(stderr, "| threads | bandwidth GB/s | scan vectors/s | scan GB/s | scan / bandwidth |\n"
                    "| ---: | ---: | ---: | ---: | ---: |\n");
    for (int t = 1; t <= max_threads; t++) {
        double bw = timed(vecs, q, n, dim, t, 0, repeats);
        double sc = timed(vecs, q, n, dim, t, 1, repeats);
        double bw_gbs = (double)bytes / bw / 1e9, sc_gbs = (double)bytes / sc / 1e9;
        printf("{\"threads\":%d,\"n\":%zu,\"d\":%zu,\"kernels\":\"%s\",\"bandwidth_gbs\":%.3f,"
               "\"scan_vectors_per_s\":%.0f,\"scan_gbs\":%.3f}\n",
               t, n, dim, dist_impl_name(), bw_gbs, (double)n / sc, sc_gbs);
        fprintf(stderr, "| %d | %.2f | %.0f | %.2f | %.2f |\n", t, bw_gbs, (double)n / sc, sc_gbs,
                sc_gbs / bw_gbs);
    }
    free(vecs);
    free(q);
    return 0;
}
