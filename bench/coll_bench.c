/*
 * coll_bench.c - the collection-level benchmark (bench/coll_bench.sh runs
 * it, then bench/hnsw_peer.py for hnswlib on the same files).
 *
 *   coll_bench DIR N DIM NQ SEED EXACT_QUERIES INDEXING_THRESHOLD_KB EF...
 *
 * Unlike bench/hnsw_bench.c, which times store/hnsw.c alone, this goes
 * through everything a request does: a catalog (catalog_open) at
 * DIR/storage with the server's defaults (WAL sync mode "always"), one
 * collection created from a Qdrant CreateCollection body, upserts through
 * coll_write (WAL + RocksDB), HNSW segments built by the collection's
 * background optimizer, and coll_search (planner, filters, exact scan of
 * the points no segment serves, re-scoring, JSON results).
 *
 * It writes DIR/base.fbin, query.fbin, gt.ibin, mask_P.u8 and gt_P.ibin
 * (P = 1, 10, 50) in bench/hnsw_bench.c's formats so hnsw_peer.py can
 * read them, and prints one JSON object per line on stdout: gen, load,
 * memory, disk, restart, search (per ef, and "exact"), filter (per
 * selectivity, without and with a payload index).  Progress goes to
 * stderr.  Exits 1 on any failure, including a graph rebuilt at reopen.
 *
 * Point i has id i, vector row i and payload {"g": i % 100, "t":
 * "tenant-<i % 10>"}, so the filter g < P passes exactly P% of the points
 * and ground truth can be computed without the store (brute force here,
 * independent of the code under test).
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "store/catalog.h"
#include "store/coll.h"
#include "store/dist.h"
#include "store/filter.h"
#include "store/op.h"

#define K 10
#define CENTRES 100
#define BATCH 1000
#define NFILTERS 3
#define MAX_EFS 32
#define MAX_THREADS 32
#define COLL_NAME "bench"
/* Merges stop once a name has at most this many segments (coll_vindex.c's
 * MAX_SEGMENTS): with no deletes, the optimizer is then idle. */
#define OPT_MAX_SEGMENTS 2 /* optimizers_config.default_segment_number: searches visit each */

static const int k_pct[NFILTERS] = { 1, 10, 50 };

typedef struct bench {
    const char *dir;
    uint32_t n, d, nq, n_exact;
    uint64_t seed, threshold_kb;
    size_t filter_ef;         /* ef of the filtered runs (see filtered) */
    size_t efs[MAX_EFS];
    int n_efs;
    float *base, *q;
    uint32_t *gt[NFILTERS + 1];  /* [0]: unfiltered, [1 + f]: g < k_pct[f]; nq x K ids */
    uint32_t *got;               /* nq x K ids of the last run */
    size_t *ngot;
    catalog_t *cat;
    catalog_handle_t *h;
    coll_t *c;
    bool failed;                 /* a check failed: exit 1 after reporting */
} bench_t;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "coll_bench: %s: %s\n", what, why ? why : errno ? strerror(errno) : "failed");
    exit(1);
}

static void say(const char *what)
{
    fprintf(stderr, "coll_bench: %s\n", what);
}

/* ---- data --------------------------------------------------------------- */

/* splitmix64: a seeded, platform-independent stream, so every run and the
 * Python peer see the same data. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Standard normal by Box-Muller (one of the pair; simplicity over speed). */
static float normal(uint64_t *s)
{
    double u1 = ((double)(next_u64(s) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = (double)(next_u64(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

/* rows x d points, each a random centre plus unit Gaussian noise. */
static float *clustered(uint32_t rows, uint32_t d, const float *centres, uint64_t *s)
{
    float *v = malloc((size_t)rows * d * sizeof(float));
    if (v == NULL)
        die("malloc", NULL);
    for (size_t i = 0; i < rows; i++) {
        const float *c = centres + (size_t)(next_u64(s) % CENTRES) * d;
        for (uint32_t j = 0; j < d; j++)
            v[i * d + j] = c[j] + normal(s);
    }
    return v;
}

static bool passes(uint32_t i, int pct)
{
    return (int)(i % 100) < pct;
}

typedef struct gt_job {
    const bench_t *b;
    int pct;                     /* 100: no filter */
    uint32_t *out, from, to;
} gt_job_t;

static void *gt_worker(void *arg)
{
    const gt_job_t *j = arg;
    const bench_t *b = j->b;
    for (uint32_t qi = j->from; qi < j->to; qi++) {
        float best[K];
        uint32_t *ids = j->out + (size_t)qi * K;
        size_t have = 0;
        for (uint32_t i = 0; i < b->n; i++) {
            if (!passes(i, j->pct))
                continue;
            float s = dist_l2sq(b->q + (size_t)qi * b->d, b->base + (size_t)i * b->d, b->d);
            if (have == K && s >= best[K - 1])
                continue;
            size_t at = have < K ? have++ : K - 1;
            for (; at > 0 && s < best[at - 1]; at--) {
                best[at] = best[at - 1];
                ids[at] = ids[at - 1];
            }
            best[at] = s;
            ids[at] = i;
        }
        for (; have < K; have++)
            ids[have] = UINT32_MAX;
    }
    return NULL;
}

/* Exact top-K of every query among the points passing g < pct, by brute
 * force on all cores: the reference the collection is measured against. */
static uint32_t *ground_truth(const bench_t *b, int pct)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = ncpu < 1 ? 1 : ncpu > MAX_THREADS ? MAX_THREADS : (int)ncpu;
    pthread_t t[MAX_THREADS];
    gt_job_t jobs[MAX_THREADS];
    uint32_t *out = malloc((size_t)b->nq * K * sizeof(uint32_t));
    if (out == NULL)
        die("malloc", NULL);
    for (int i = 0; i < nt; i++) {
        jobs[i] = (gt_job_t){ b, pct, out, (uint32_t)((uint64_t)b->nq * i / nt),
                              (uint32_t)((uint64_t)b->nq * (i + 1) / nt) };
        if (pthread_create(&t[i], NULL, gt_worker, &jobs[i]) != 0)
            die("pthread_create", NULL);
    }
    for (int i = 0; i < nt; i++)
        pthread_join(t[i], NULL);
    return out;
}

static void write_file(const bench_t *b, const char *name, const void *hdr, size_t hlen,
                       const void *data, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", b->dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(hdr, 1, hlen, f) != hlen || fwrite(data, 1, len, f) != len ||
        fclose(f) != 0)
        die(path, NULL);
}

/* The files hnsw_peer.py reads (hnsw_bench.c's formats). */
static void write_peer_files(const bench_t *b)
{
    uint32_t hb[2] = { b->n, b->d }, hq[2] = { b->nq, b->d }, hg[2] = { b->nq, K };
    uint8_t *mask = malloc(b->n);
    char name[64];
    if (mask == NULL)
        die("malloc", NULL);
    write_file(b, "base.fbin", hb, sizeof(hb), b->base, (size_t)b->n * b->d * sizeof(float));
    write_file(b, "query.fbin", hq, sizeof(hq), b->q, (size_t)b->nq * b->d * sizeof(float));
    write_file(b, "gt.ibin", hg, sizeof(hg), b->gt[0], (size_t)b->nq * K * sizeof(uint32_t));
    for (int f = 0; f < NFILTERS; f++) {
        for (uint32_t i = 0; i < b->n; i++)
            mask[i] = passes(i, k_pct[f]);
        snprintf(name, sizeof(name), "mask_%d.u8", k_pct[f]);
        write_file(b, name, "", 0, mask, b->n);
        snprintf(name, sizeof(name), "gt_%d.ibin", k_pct[f]);
        write_file(b, name, hg, sizeof(hg), b->gt[1 + f], (size_t)b->nq * K * sizeof(uint32_t));
    }
    free(mask);
}

static void gen(bench_t *b)
{
    uint64_t s = b->seed;
    double t0 = now();
    float *centres = malloc((size_t)CENTRES * b->d * sizeof(float));
    if (centres == NULL)
        die("malloc", NULL);
    for (size_t i = 0; i < (size_t)CENTRES * b->d; i++)
        centres[i] = 3.0f * normal(&s);
    b->base = clustered(b->n, b->d, centres, &s);
    b->q = clustered(b->nq, b->d, centres, &s);
    free(centres);
    b->gt[0] = ground_truth(b, 100);
    for (int f = 0; f < NFILTERS; f++)
        b->gt[1 + f] = ground_truth(b, k_pct[f]);
    write_peer_files(b);
    printf("{\"what\":\"gen\",\"seconds\":%.2f}\n", now() - t0);
}

/* ---- process and disk accounting ------------------------------------------ */

/* VmRSS in bytes (/proc/self/status). */
static uint64_t rss_bytes(void)
{
    char line[256];
    uint64_t kb = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %" SCNu64, &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

/* CPU time of this process and busy time of the whole machine, in
 * seconds.  The machine may be shared (other builds and tests): their
 * difference over a run, divided by its wall time, is how many cores
 * something else kept busy meanwhile, printed beside each rate so a
 * slow figure can be told from a busy machine. */
typedef struct cpu_mark {
    double wall, self, machine;
} cpu_mark_t;

static cpu_mark_t cpu_mark(void)
{
    cpu_mark_t m = { now(), 0, 0 };
    struct rusage ru;
    unsigned long long v[8] = { 0 };
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        m.self = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
    FILE *f = fopen("/proc/stat", "r");
    if (f != NULL && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                            &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
        m.machine = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
                    (double)sysconf(_SC_CLK_TCK); /* all but idle and iowait */
    if (f != NULL)
        fclose(f);
    return m;
}

/* Cores busy with other processes between a and now (>= 0). */
static double other_cores(const cpu_mark_t *a)
{
    cpu_mark_t z = cpu_mark();
    double o = z.wall > a->wall ? ((z.machine - a->machine) - (z.self - a->self)) /
                                      (z.wall - a->wall) : 0;
    return o > 0 ? o : 0;
}

/* nftw has no context argument: the walk's totals live here (one walk at
 * a time, main thread only). */
static uint64_t g_du[4];         /* wal, db, segments, other */

static int du_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F)
        return 0;
    int part = strstr(path, "/wal/") ? 0 : strstr(path, "/db/") ? 1
               : strstr(path, "/segments/") ? 2 : 3;
    g_du[part] += (uint64_t)st->st_blocks * 512; /* allocated, not apparent, size */
    return 0;
}

static void report_disk(const bench_t *b, const char *when)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/storage", b->dir);
    memset(g_du, 0, sizeof(g_du));
    if (nftw(path, du_entry, 32, FTW_PHYS) != 0)
        die("nftw", NULL);
    uint64_t total = g_du[0] + g_du[1] + g_du[2] + g_du[3];
    printf("{\"what\":\"disk\",\"when\":\"%s\",\"bytes_per_point\":%.1f,\"wal\":%.1f,\"db\":%.1f,"
           "\"segments\":%.1f,\"other\":%.1f}\n", when, (double)total / b->n,
           (double)g_du[0] / b->n, (double)g_du[1] / b->n, (double)g_du[2] / b->n,
           (double)g_du[3] / b->n);
}

/* ---- catalog ---------------------------------------------------------------- */

static void cat_open(bench_t *b)
{
    static char path[4096];
    catalog_opts_t o;
    err_t err;
    catalog_opts_default(&o);  /* the server defaults: WAL sync "always" */
    snprintf(path, sizeof(path), "%s/storage", b->dir);
    o.storage_path = path;
    if (catalog_open(&o, &b->cat, &err) != ERR_OK)
        die("catalog_open", err.msg);
}

static void coll_acquire(bench_t *b)
{
    err_t err;
    if (catalog_acquire(b->cat, COLL_NAME, &b->h, &err) != ERR_OK)
        die("catalog_acquire", err.msg);
    b->c = catalog_handle_coll(b->h);
}

static void coll_create(bench_t *b)
{
    char body[512];
    err_t err;
    snprintf(body, sizeof(body),
             "{\"vectors\": {\"size\": %u, \"distance\": \"Euclid\"},"
             " \"hnsw_config\": {\"m\": 16, \"ef_construct\": 100},"
             " \"optimizers_config\": {\"indexing_threshold\": %" PRIu64 ","
             " \"default_segment_number\": %d}}",
             b->d, b->threshold_kb, OPT_MAX_SEGMENTS);
    cJSON *j = cJSON_Parse(body);
    if (j == NULL || catalog_create(b->cat, COLL_NAME, j, &err) != ERR_OK)
        die("catalog_create", j ? err.msg : "bad body");
    cJSON_Delete(j);
    coll_acquire(b);
}

static void cat_close(bench_t *b)
{
    catalog_release(b->h);
    b->h = NULL;
    b->c = NULL;
    catalog_close(b->cat);
    b->cat = NULL;
}

/* ---- load and index ----------------------------------------------------------- */

static void write_batch(bench_t *b, uint32_t from, uint32_t to)
{
    op_t op = { 0 };
    err_t err;
    char payload[64];
    op.type = OP_UPSERT;
    for (uint32_t i = from; i < to; i++) {
        op_point_t *p = op_point_add(&op);
        snprintf(payload, sizeof(payload), "{\"g\": %u, \"t\": \"tenant-%u\"}", i % 100, i % 10);
        if (p == NULL || (p->payload = strdup(payload)) == NULL ||
            op_vec_add(p, "", b->base + (size_t)i * b->d, b->d) != ERR_OK)
            die("building an upsert", "no memory");
        p->id = ptid_num(i);
    }
    int rc;
    /* ERR_FULL / ERR_BUSY are retriable by contract; anything else is fatal */
    while ((rc = coll_write(b->c, &op, NULL, &err)) == ERR_FULL || rc == ERR_BUSY)
        usleep(1000);
    if (rc != ERR_OK)
        die("coll_write", err.msg);
    op_clear(&op);
}

/* Wait until every point is served by a segment and the optimizer has
 * nothing left (no merge pending).  Returns the time indexed_vectors first
 * reached n in *t_indexed, and the quiescent time. */
static double wait_indexed(bench_t *b, double t_start, double timeout, double *t_indexed)
{
    coll_info_t in;
    *t_indexed = 0;
    for (;;) {
        coll_info_get(b->c, &in);
        double t = now();
        if (in.indexed_vectors >= b->n && *t_indexed == 0)
            *t_indexed = t;
        if (in.indexed_vectors >= b->n && in.segments <= OPT_MAX_SEGMENTS && !in.optimizing)
            return t;
        if (t - t_start > timeout) {
            fprintf(stderr, "coll_bench: not indexed after %.0f s: %" PRIu64 " of %u vectors, "
                    "%u segments\n", timeout, in.indexed_vectors, b->n, in.segments);
            b->failed = true;
            return t;
        }
        usleep(20000);
    }
}

static void load(bench_t *b, double timeout)
{
    coll_info_t in;
    uint64_t rss0 = rss_bytes();
    cpu_mark_t mk = cpu_mark();
    double t0 = now(), t_idx;
    for (uint32_t i = 0; i < b->n; i += BATCH)
        write_batch(b, i, i + BATCH < b->n ? i + BATCH : b->n);
    double t1 = now();
    say("loaded; waiting for the optimizer");
    double t2 = wait_indexed(b, t0, timeout, &t_idx);
    double ti = t_idx ? t_idx : t2;  /* never reached n (timeout): report what it got */
    coll_info_get(b->c, &in);
    uint64_t rss1 = rss_bytes();
    printf("{\"what\":\"load\",\"ingest_s\":%.3f,\"ingest_points_per_s\":%.1f,"
           "\"indexed_after_load_s\":%.3f,\"indexed_total_s\":%.3f,\"quiescent_total_s\":%.3f,"
           "\"build_points_per_s\":%.1f,\"index_builds\":%" PRIu64 ",\"segments\":%u,"
           "\"index_nodes\":%" PRIu64 ",\"indexed\":%" PRIu64 ",\"other_cores\":%.2f}\n",
           t1 - t0, b->n / (t1 - t0), ti - t1, ti - t0, t2 - t0, b->n / (ti - t0),
           in.index_builds, in.segments,
           in.index_nodes, in.indexed_vectors, other_cores(&mk));
    printf("{\"what\":\"memory\",\"rss_bytes_per_point\":%.1f,\"rss_before_mb\":%.1f,"
           "\"rss_after_mb\":%.1f}\n", (double)(rss1 - rss0) / b->n, rss0 / 1048576.0,
           rss1 / 1048576.0);
}

/* ---- search --------------------------------------------------------------------- */

typedef struct run {
    const filter_t *filter;
    size_t ef;
    bool exact;
    uint32_t nq;                 /* queries to use (a prefix of the set) */
    double min_s;                /* repeat the set until this long */
} run_t;

static void one_query(bench_t *b, const run_t *r, uint32_t qi)
{
    coll_sel_t sel = { 0 };      /* no payload, no vector: ids and scores only */
    coll_search_req_t req = { .vector = b->q + (size_t)qi * b->d, .dim = b->d,
                              .filter = r->filter, .limit = K, .sel = &sel,
                              .exact = r->exact, .hnsw_ef = r->ef };
    cJSON *out = NULL, *it;
    err_t err;
    if (coll_search(b->c, &req, &out, &err) != ERR_OK)
        die("coll_search", err.msg);
    size_t n = 0;
    cJSON_ArrayForEach(it, out) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (n < K && cJSON_IsNumber(id))
            b->got[(size_t)qi * K + n++] = (uint32_t)id->valuedouble;
    }
    b->ngot[qi] = n;
    cJSON_Delete(out);
}

/* Single thread; returns queries per second, *done the queries run. */
static double run_queries(bench_t *b, const run_t *r, size_t *done_out)
{
    size_t done = 0;
    double t0 = now(), el;
    do {
        for (uint32_t qi = 0; qi < r->nq; qi++)
            one_query(b, r, qi);
        done += r->nq;
        el = now() - t0;
    } while (el < r->min_s);
    *done_out = done;
    return (double)done / el;
}

static double recall(const bench_t *b, const uint32_t *gt, uint32_t nq)
{
    size_t hits = 0, total = 0;
    for (size_t qi = 0; qi < nq; qi++) {
        for (size_t j = 0; j < K; j++) {
            uint32_t want = gt[qi * K + j];
            if (want == UINT32_MAX)
                continue;
            total++;
            for (size_t i = 0; i < b->ngot[qi]; i++)
                hits += b->got[qi * K + i] == want;
        }
    }
    return total ? (double)hits / (double)total : 1.0;
}

/* Which way the planner went for a run: graph searches per query, and
 * whether a payload index supplied the candidates. */
static void print_path(const coll_info_t *a, const coll_info_t *z, double queries)
{
    printf(",\"graph_per_query\":%.2f,\"index_reads_per_query\":%.2f",
           (double)(z->graph_searches - a->graph_searches) / queries,
           (double)(z->index_reads - a->index_reads) / queries);
}

static double measure(bench_t *b, const run_t *r, const uint32_t *gt, const char *what,
                      const char *extra)
{
    coll_info_t a, z;
    size_t done;
    coll_info_get(b->c, &a);
    cpu_mark_t mk = cpu_mark();
    double qps = run_queries(b, r, &done);
    double other = other_cores(&mk);
    coll_info_get(b->c, &z);
    double rec = recall(b, gt, r->nq);
    printf("{\"what\":\"%s\"%s,\"ef\":%zu,\"exact\":%s,\"queries\":%u,\"recall\":%.4f,"
           "\"qps\":%.1f", what, extra, r->ef, r->exact ? "true" : "false", r->nq, rec, qps);
    print_path(&a, &z, (double)done);
    printf(",\"other_cores\":%.2f}\n", other);
    fflush(stdout);
    return rec;
}

static void sweep(bench_t *b)
{
    b->filter_ef = 0;
    for (int i = 0; i < b->n_efs; i++) {
        run_t r = { NULL, b->efs[i], false, b->nq, 0.3 };
        double rec = measure(b, &r, b->gt[0], "search", "");
        if (b->filter_ef == 0 && (rec >= 0.95 || i == b->n_efs - 1))
            b->filter_ef = b->efs[i];
    }
    run_t ex = { NULL, 0, true, b->n_exact, 0 };
    measure(b, &ex, b->gt[0], "search", "");
}

static filter_t *range_filter(int pct)
{
    char json[128];
    filter_t *f = NULL;
    err_t err;
    snprintf(json, sizeof(json), "{\"must\": [{\"key\": \"g\", \"range\": {\"lt\": %d}}]}", pct);
    cJSON *j = cJSON_Parse(json);
    if (j == NULL || filter_parse(j, &f, &err) != ERR_OK)
        die("filter_parse", j ? err.msg : json);
    cJSON_Delete(j);
    return f;
}

/* Filtered searches at the smallest swept ef whose unfiltered recall
 * reached 0.95 (so filtered and unfiltered recall are comparable at any n)
 * and exactly, for each selectivity, with the payload index state given. */
static void filtered(bench_t *b, bool indexed)
{
    for (int f = 0; f < NFILTERS; f++) {
        char extra[96];
        filter_t *flt = range_filter(k_pct[f]);
        snprintf(extra, sizeof(extra), ",\"pct\":%d,\"payload_index\":%s", k_pct[f],
                 indexed ? "true" : "false");
        run_t r = { flt, b->filter_ef, false, b->nq, 0.3 };
        measure(b, &r, b->gt[1 + f], "filter", extra);
        run_t ex = { flt, 0, true, b->n_exact, 0 };
        measure(b, &ex, b->gt[1 + f], "filter", extra);
        filter_free(flt);
    }
}

static void index_g(bench_t *b)
{
    err_t err;
    cJSON *j = cJSON_Parse("{\"field_name\": \"g\", \"field_schema\": \"integer\"}");
    double t0 = now();
    if (j == NULL || catalog_index_create(b->cat, b->h, j, &err) != ERR_OK)
        die("catalog_index_create", j ? err.msg : "bad body");
    printf("{\"what\":\"payload_index\",\"seconds\":%.3f}\n", now() - t0);
    cJSON_Delete(j);
}

/* ---- restart ------------------------------------------------------------------- */

/* Close (checkpoint) and reopen; ready = the first search has returned. */
static void restart(bench_t *b)
{
    coll_info_t in;
    double t0 = now();
    cat_close(b);
    double t1 = now();
    report_disk(b, "closed");
    double t2 = now();
    cat_open(b);
    coll_acquire(b);
    double t3 = now();
    run_t r = { NULL, 0, false, 1, 0 };
    one_query(b, &r, 0);
    double t4 = now();
    coll_info_get(b->c, &in);
    bool ok = in.index_builds == 0 && in.indexed_vectors >= b->n;
    printf("{\"what\":\"restart\",\"close_s\":%.3f,\"open_s\":%.3f,\"ready_s\":%.3f,"
           "\"index_builds_after_open\":%" PRIu64 ",\"indexed_after_open\":%" PRIu64 ","
           "\"segments\":%u,\"ok\":%s}\n", t1 - t0, t3 - t2, t4 - t2, in.index_builds,
           in.indexed_vectors, in.segments, ok ? "true" : "false");
    if (!ok) {
        say("FAIL: the reopened collection rebuilt a graph or lost indexed vectors");
        b->failed = true;
    }
}

static void parse_args(bench_t *b, int argc, char **argv)
{
    if (argc < 9) {
        fprintf(stderr, "usage: coll_bench DIR N DIM NQ SEED EXACT_QUERIES "
                        "INDEXING_THRESHOLD_KB EF...\n");
        exit(2);
    }
    b->dir = argv[1];
    b->n = (uint32_t)strtoul(argv[2], NULL, 10);
    b->d = (uint32_t)strtoul(argv[3], NULL, 10);
    b->nq = (uint32_t)strtoul(argv[4], NULL, 10);
    b->seed = strtoull(argv[5], NULL, 10);
    b->n_exact = (uint32_t)strtoul(argv[6], NULL, 10);
    b->threshold_kb = strtoull(argv[7], NULL, 10);
    for (int i = 8; i < argc && b->n_efs < MAX_EFS; i++)
        b->efs[b->n_efs++] = strtoul(argv[i], NULL, 10);
    if (b->n == 0 || b->d == 0 || b->nq == 0)
        die("arguments", "N, DIM and NQ must be positive");
    if (b->n_exact == 0 || b->n_exact > b->nq)
        b->n_exact = b->nq;
}

int main(int argc, char **argv)
{
    bench_t b = { 0 };
    const char *to = getenv("BENCH_INDEX_TIMEOUT");
    parse_args(&b, argc, argv);
    b.got = malloc((size_t)b.nq * K * sizeof(uint32_t));
    b.ngot = calloc(b.nq, sizeof(size_t));
    if (b.got == NULL || b.ngot == NULL)
        die("malloc", NULL);
    say("data and brute-force ground truth");
    gen(&b);
    cat_open(&b);
    coll_create(&b);
    say("loading through coll_write");
    load(&b, to ? atof(to) : 3600);
    report_disk(&b, "indexed");
    say("restart");
    restart(&b);
    say("searches");
    sweep(&b);
    filtered(&b, false);
    index_g(&b);
    filtered(&b, true);
    cat_close(&b);
    for (int i = 0; i <= NFILTERS; i++)
        free(b.gt[i]);
    free(b.base);
    free(b.q);
    free(b.got);
    free(b.ngot);
    fflush(stdout);
    return b.failed ? 1 : 0;
}
