/*
 * dist.h - distance kernels and Qdrant-compatible scoring.
 *
 * Design: scoring is the innermost loop of every search, so the three
 * reductions (dot, squared L2, L1) come in two kernel sets: AVX2+FMA,
 * compiled for that target only and used when the running CPU has it, and
 * portable C for everything else.  The set is chosen once, at first use,
 * and reached through one atomic pointer load, so callers never think about
 * the CPU and the binary still runs on machines without AVX2.
 *
 * Scores are what Qdrant reports, so that clients switching between the two
 * see the same numbers and thresholds:
 *   Cosine    dot product of vectors normalised at insert and at query
 *             time (dist_prepare), higher is better;
 *   Dot       plain dot product, higher is better;
 *   Euclid    sqrt of the squared L2 distance, lower is better;
 *   Manhattan L1 distance, lower is better.
 * Everything is float32 arithmetic like Qdrant's, so results agree with it
 * to float rounding, not bit for bit (summation order differs).
 *
 * The kernels accept any length, including 0 (a and b may then be NULL),
 * and pointers with no alignment beyond that of float.  A result depends
 * only on the values, n and the kernel set, never on addresses.  Vectors
 * stored 32-byte aligned score faster (misaligned input costs up to ~1.5x
 * at n=768 from cache-line-split loads).  The kernels are pure and
 * thread-safe; only dist_force_portable changes shared state.
 */
#ifndef VECLOG_DIST_H
#define VECLOG_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum dist_metric { DIST_COSINE = 0, DIST_DOT, DIST_EUCLID, DIST_MANHATTAN };

/* Number of metrics; valid values are 0 .. DIST_METRIC_COUNT-1. */
#define DIST_METRIC_COUNT 4

/* Parse Qdrant's distance names "Cosine", "Dot", "Euclid", "Manhattan"
 * (exact, case-sensitive).  On failure *out is untouched and the error is
 * ERR_INVALID, naming the bad value and the allowed ones. */
int dist_metric_parse(const char *name, enum dist_metric *out, err_t *err);

/* Qdrant's name of m (a static string), or NULL if m is out of range. */
const char *dist_metric_name(enum dist_metric m);

/* Raw reductions over n floats, accumulated in float. */
float dist_dot(const float *a, const float *b, size_t n);
float dist_l2sq(const float *a, const float *b, size_t n);
float dist_l1(const float *a, const float *b, size_t n);

/* Scale v in place to unit L2 length.  A vector whose squared length is 0
 * (or not finite, e.g. overflowed) is left unchanged. */
void dist_normalize(float *v, size_t n);

/* Prepare a vector for storage or for use as a query.  Cosine normalises
 * as Qdrant does: vectors whose squared length is below FLT_EPSILON (zero
 * or nearly so) or already within 1e-6 of 1 are left as they are, which
 * also makes preparing twice a no-op.  (Unlike Qdrant, a vector whose
 * squared length overflows to infinity is left unchanged rather than
 * turned into zeros and NaNs.)  Other metrics leave v unchanged. */
void dist_prepare(enum dist_metric m, float *v, size_t n);

/* Score of stored vector v against query q, both already prepared, as
 * Qdrant reports it (see the header comment).  NaN for an invalid m. */
float dist_score(enum dist_metric m, const float *q, const float *v, size_t n);

/* true for Cosine and Dot (similarities), false for Euclid and Manhattan
 * (distances) and for an invalid m. */
bool dist_higher_better(enum dist_metric m);

/* true if score a ranks strictly before score b for metric m.  NaN ranks
 * after every number, and two NaNs tie, so this is a strict weak order
 * safe for sorting and heaps. */
bool dist_better(enum dist_metric m, float a, float b);

/* Name of the kernel set in use: "avx2+fma" or "portable". */
const char *dist_impl_name(void);

/* For tests and benchmarks: force the portable kernels (true) or return to
 * the run-time choice (false).  Not thread-safe against concurrent
 * scoring: a search running meanwhile may mix both kernel sets. */
void dist_force_portable(bool on);

#endif
