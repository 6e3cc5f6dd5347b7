/*
 * gen_messages.c - seeded Kafka messages for bench/ingest_bench.sh: one
 * sink-connector point per line on stdout, ready for `kcat -P` (newline is
 * the message delimiter, no key).  Needs nothing but libc.
 *
 *   gen_messages [-n N] [-d DIM] [-s SEED] [-c COLLECTION] [-o FIRST_ID]
 *
 *   {"collection_name":"bench","id":1,"vector":[...],"payload":{"i":0}}
 *
 * Coordinates are uniform in [-1, 1] (splitmix64, fixed-format printing:
 * identical output for identical arguments on any machine).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned long num(const char *s)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end) {
        fprintf(stderr, "gen_messages: bad number \"%s\"\n", s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    unsigned long n = 20000, dim = 128, first = 1;
    uint64_t seed = 42;
    const char *coll = "bench";
    int o;
    while ((o = getopt(argc, argv, "n:d:s:c:o:")) != -1) {
        switch (o) {
        case 'n': n = num(optarg); break;
        case 'd': dim = num(optarg); break;
        case 's': seed = num(optarg); break;
        case 'c': coll = optarg; break;
        case 'o': first = num(optarg); break;
        default:
            fprintf(stderr, "usage: gen_messages [-n N] [-d DIM] [-s SEED] [-c COLL] [-o FIRST_ID]\n");
            return 2;
        }
    }
    if (dim == 0) {
        fprintf(stderr, "gen_messages: -d must be >= 1\n");
        return 2;
    }
    for (unsigned long i = 0; i < n; i++) {
        printf("{\"collection_name\":\"%s\",\"id\":%lu,\"vector\":[", coll, first + i);
        for (unsigned long j = 0; j < dim; j++) {
            double v = (double)(rng_next(&seed) >> 11) * 0x1p-52 - 1.0;
            printf(j ? ",%.5f" : "%.5f", v);
        }
        printf("],\"payload\":{\"i\":%lu}}\n", i);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("gen_messages: write");
        return 1;
    }
    return 0;
}
