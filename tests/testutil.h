/*
 * testutil.h - small helpers shared by the cmocka test binaries.
 * Not part of libveclog; linked into every tests/test_* binary.
 */
#ifndef VECLOG_TESTUTIL_H
#define VECLOG_TESTUTIL_H

#include <stdint.h>

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

#endif
