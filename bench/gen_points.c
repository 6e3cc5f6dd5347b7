/*
 * gen_points.c - seeded synthetic clustered vectors for the benchmarks.
 * Needs nothing but libc (no libm: the noise is an Irwin-Hall sum).
 *
 *   gen_points points  [opts] OUTDIR   OUTDIR/batch-00000.json, ...: Qdrant
 *                                      upsert bodies {"points": [{"id",
 *                                      "vector", "payload": {"cluster"}}]}
 *   gen_points queries [opts] FILE     one query body per line:
 *                                      {"query": [...], "limit": L}
 *
 *   -n N      how many points / queries (default 20000 / 1000)
 *   -d DIM    dimension (default 128)
 *   -k K      clusters (default 64)
 *   -s SEED   data seed: fixes the cluster centres and the points (default 42)
 *   -q SEED   query seed: which queries are drawn near those centres (default 7)
 *   -b B      points per batch file (default 1000)
 *   -l L      query limit (default 10)
 *
 * Centres are uniform in [-1, 1]^DIM; a point (or query) is a centre, chosen
 * uniformly, plus noise of standard deviation 0.15 on every coordinate.
 * The same -s and -d give the same centres in both modes, so queries land
 * near the data.  Output is identical for identical arguments on any
 * machine (splitmix64, fixed-format printing).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOISE_SD 0.15

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s)   /* [0, 1) */
{
    return (double)(rng_next(s) >> 11) * 0x1p-53;
}

static double rng_normal(uint64_t *s) /* mean 0, sd 1 (approximately normal) */
{
    double sum = rng_unit(s) + rng_unit(s) + rng_unit(s) + rng_unit(s);
    return (sum - 2.0) * 1.7320508075688772;   /* var(sum) = 4/12 */
}

static void usage(void)
{
    fprintf(stderr, "usage: gen_points points|queries [-n N] [-d DIM] [-k K] [-s SEED] "
                    "[-q SEED] [-b BATCH] [-l LIMIT] OUT\n");
    exit(2);
}

static unsigned long num(const char *s, unsigned long min)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v < min) {
        fprintf(stderr, "gen_points: bad number \"%s\"\n", s);
        exit(2);
    }
    return v;
}

/* centre + noise, into vec */
static void sample(const float *centres, unsigned k, unsigned dim, uint64_t *rng, float *vec,
                   unsigned *cluster)
{
    unsigned c = (unsigned)(rng_next(rng) % k);
    for (unsigned j = 0; j < dim; j++)
        vec[j] = centres[(size_t)c * dim + j] + (float)(NOISE_SD * rng_normal(rng));
    *cluster = c;
}

static void put_vector(FILE *f, const float *vec, unsigned dim)
{
    fputc('[', f);
    for (unsigned j = 0; j < dim; j++)
        fprintf(f, j ? ",%.5g" : "%.5g", (double)vec[j]);
    fputc(']', f);
}

static void close_or_die(FILE *f, const char *path)
{
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "gen_points: write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    unsigned long n = 0, dim = 128, k = 64, batch = 1000, limit = 10;
    uint64_t seed = 42, qseed = 7;
    int opt;

    if (argc < 2)
        usage();
    const char *mode = argv[1];
    int queries = strcmp(mode, "queries") == 0;
    if (!queries && strcmp(mode, "points") != 0)
        usage();
    optind = 2;
    while ((opt = getopt(argc, argv, "n:d:k:s:q:b:l:")) != -1) {
        switch (opt) {
        case 'n': n = num(optarg, 1); break;
        case 'd': dim = num(optarg, 1); break;
        case 'k': k = num(optarg, 1); break;
        case 's': seed = num(optarg, 0); break;
        case 'q': qseed = num(optarg, 0); break;
        case 'b': batch = num(optarg, 1); break;
        case 'l': limit = num(optarg, 1); break;
        default: usage();
        }
    }
    if (optind != argc - 1)
        usage();
    if (n == 0)
        n = queries ? 1000 : 20000;
    const char *out = argv[optind];

    float *centres = malloc(k * dim * sizeof(float));
    float *vec = malloc(dim * sizeof(float));
    if (centres == NULL || vec == NULL) {
        fprintf(stderr, "gen_points: no memory\n");
        return 1;
    }
    uint64_t rng = seed;
    for (size_t i = 0; i < k * dim; i++)
        centres[i] = (float)(2.0 * rng_unit(&rng) - 1.0);
    /* points continue the data stream; queries get their own */
    if (queries)
        rng = qseed ^ 0x5DEECE66Dull;

    unsigned cluster;
    if (queries) {
        FILE *f = fopen(out, "w");
        if (f == NULL) {
            fprintf(stderr, "gen_points: %s: %s\n", out, strerror(errno));
            return 1;
        }
        for (unsigned long i = 0; i < n; i++) {
            sample(centres, (unsigned)k, (unsigned)dim, &rng, vec, &cluster);
            fputs("{\"query\":", f);
            put_vector(f, vec, (unsigned)dim);
            fprintf(f, ",\"limit\":%lu}\n", limit);
        }
        close_or_die(f, out);
    } else {
        if (mkdir(out, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "gen_points: mkdir %s: %s\n", out, strerror(errno));
            return 1;
        }
        char path[4096];
        for (unsigned long b = 0; b * batch < n; b++) {
            snprintf(path, sizeof(path), "%s/batch-%05lu.json", out, b);
            FILE *f = fopen(path, "w");
            if (f == NULL) {
                fprintf(stderr, "gen_points: %s: %s\n", path, strerror(errno));
                return 1;
            }
            fputs("{\"points\":[", f);
            for (unsigned long i = b * batch; i < n && i < (b + 1) * batch; i++) {
                sample(centres, (unsigned)k, (unsigned)dim, &rng, vec, &cluster);
                fprintf(f, "%s{\"id\":%lu,\"vector\":", i > b * batch ? "," : "", i + 1);
                put_vector(f, vec, (unsigned)dim);
                fprintf(f, ",\"payload\":{\"cluster\":%u}}", cluster);
            }
            fputs("]}\n", f);
            close_or_die(f, path);
        }
    }
    free(centres);
    free(vec);
    return 0;
}
