/*
 * testutil.h - small helpers shared by the cmocka test binaries.
 * Not part of libveclog; linked into every tests/test_* binary.
 */
#ifndef VECLOG_TESTUTIL_H
#define VECLOG_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/* A fresh directory under $TMPDIR (or /tmp); caller frees the string and
 * removes the tree with tu_rmrf. */
char *tu_tmpdir(const char *tag);

/* rm -rf path (ignores errors). */
void tu_rmrf(const char *path);

/* Deterministic PRNG (splitmix64); seed the state with any value. */
uint64_t tu_rand(uint64_t *state);

/* Uniform double in [0,1). */
double tu_randf(uint64_t *state);

/* Seed from $VECLOG_TEST_SEED or the given default; prints the seed so a
 * failure can be replayed. */
uint64_t tu_seed(uint64_t dflt);

/* Kafka tests: the last value of header `name` of m as text in buf, or
 * NULL when m has no such header. */
const char *tu_hdr(const rd_kafka_message_t *m, const char *name, char *buf, size_t cap);

/* Destroy msgs[0..n) and close and destroy consumer c. */
void tu_read_done(rd_kafka_t *c, rd_kafka_message_t **msgs, size_t n);

#endif
