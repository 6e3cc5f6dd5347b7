/*
 * testutil.c - see testutil.h.
 */
#include "testutil.h"

#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char *path;

    if (base == NULL || *base == '\0')
        base = "/tmp";
    if (asprintf(&path, "%s/veclog-%s-XXXXXX", base, tag) < 0)
        abort();
    if (mkdtemp(path) == NULL)
        abort();
    return path;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

void tu_rmrf(const char *path)
{
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

uint64_t tu_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

double tu_randf(uint64_t *s)
{
    return (double)(tu_rand(s) >> 11) / 9007199254740992.0;
}

uint64_t tu_seed(uint64_t dflt)
{
    const char *e = getenv("VECLOG_TEST_SEED");
    uint64_t seed = (e && *e) ? strtoull(e, NULL, 0) : dflt;
    fprintf(stderr, "seed=%" PRIu64 " (set VECLOG_TEST_SEED to replay)\n", seed);
    return seed;
}

const char *tu_hdr(const rd_kafka_message_t *m, const char *name, char *buf, size_t cap)
{
    rd_kafka_headers_t *h;
    const void *v;
    size_t len;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, name, &v, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    snprintf(buf, cap, "%.*s", (int)len, (const char *)v);
    return buf;
}

void tu_read_done(rd_kafka_t *c, rd_kafka_message_t **msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rd_kafka_message_destroy(msgs[i]);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}
