/*
 * dist.c - see dist.h.
 *
 * Why two kernel sets: veclog is built for baseline x86-64 (SSE2) so the
 * same binary runs anywhere, yet nearly every server it runs on has AVX2
 * and FMA, which roughly doubles scoring throughput.  The AVX2 kernels are
 * compiled with a per-function target attribute (no global -mavx2, which
 * would let the compiler put AVX2 instructions in code that runs before
 * the CPU check) and selected at run time.
 *
 * Why four accumulators: a reduction with one accumulator is bound by the
 * latency of the add/FMA (4 cycles), not by throughput.  Four independent
 * 8-float accumulators keep the FMA unit busy while two loads per step are
 * the limit.  The portable kernels get the same effect from 16 independent
 * lanes written as plain C: each lane is its own running sum, so GCC can
 * vectorise them without -ffast-math (no reassociation of a single sum
 * is needed), and the code stays correct on any compiler.
 *
 * Tails: the AVX2 path finishes the last n % 8 elements with masked loads
 * rather than a scalar loop; masked-off lanes read as 0 and never touch
 * memory, so there is no over-read and no alignment requirement.
 *
 * No alignment peeling: starting the main loop at a 32-byte boundary would
 * save the cache-line-split loads of misaligned input, but it would make
 * the summation order, and so the last bits of a score, depend on where a
 * vector happens to sit in memory.  Scores are instead a function of the
 * values alone, so a pair scores identically wherever it is loaded from;
 * callers that want the speed store vectors 32-byte aligned.
 *
 * Dispatch: one atomic pointer to a const table of kernels.  It is NULL
 * until first use, when pthread_once picks the set (so the choice is made
 * once, thread-safely, even if the first calls race or come from another
 * module's constructor).  After that each call costs one relaxed load and
 * an indirect call.  The tables themselves are compile-time constants, so
 * no memory ordering is needed to read them.
 *
 * Normalisation divides by the length instead of multiplying by its
 * reciprocal: division is correctly rounded in both kernel sets, so the
 * scaling step itself gives identical floats on either path and matches
 * Qdrant's `x / length`.
 */
#include "dist.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define DIST_HAVE_AVX2 1
#include <immintrin.h>
#endif

typedef float (*dist_reduce_fn)(const float *a, const float *b, size_t n);

struct dist_kernels {
    const char *name;
    dist_reduce_fn dot;
    dist_reduce_fn l2sq;
    dist_reduce_fn l1;
    void (*scale)(float *v, size_t n, float len); /* v[i] = v[i] / len */
};

/* ---- portable kernels ------------------------------------------------- */

#define PORT_LANES 16

static inline float port_dot_term(float x, float y)
{
    return x * y;
}

static inline float port_l2sq_term(float x, float y)
{
    float d = x - y;
    return d * d;
}

static inline float port_l1_term(float x, float y)
{
    return fabsf(x - y);
}

/* Pairwise sum of the 16 lanes, written with constant widths so that it
 * compiles to a few vector adds (destroys acc). */
static inline float port_lanes_sum(float *acc)
{
    _Static_assert(PORT_LANES == 16, "port_lanes_sum assumes 16 lanes");
    for (size_t j = 0; j < 8; j++)
        acc[j] += acc[j + 8];
    for (size_t j = 0; j < 4; j++)
        acc[j] += acc[j + 4];
    return (acc[0] + acc[2]) + (acc[1] + acc[3]);
}

/* One definition per reduction; `term` combines one pair of elements. */
#define PORT_REDUCE(fname, term)                                    \
    static float fname(const float *a, const float *b, size_t n)    \
    {                                                               \
        float acc[PORT_LANES] = { 0 };                              \
        float tail = 0.0f;                                          \
        size_t i = 0;                                               \
        for (; i + PORT_LANES <= n; i += PORT_LANES)                \
            _Pragma("GCC unroll 16")                                \
            for (size_t j = 0; j < PORT_LANES; j++)                 \
                acc[j] += term(a[i + j], b[i + j]);                 \
        for (; i < n; i++)                                          \
            tail += term(a[i], b[i]);                               \
        return port_lanes_sum(acc) + tail;                          \
    }

PORT_REDUCE(port_dot, port_dot_term)
PORT_REDUCE(port_l2sq, port_l2sq_term)
PORT_REDUCE(port_l1, port_l1_term)

static void port_scale(float *v, size_t n, float len)
{
    for (size_t i = 0; i < n; i++)
        v[i] = v[i] / len;
}

static const struct dist_kernels k_portable = {
    "portable", port_dot, port_l2sq, port_l1, port_scale,
};

/* ---- AVX2 + FMA kernels ----------------------------------------------- */

#ifdef DIST_HAVE_AVX2

#define AVX2_FN __attribute__((target("avx2,fma")))

/* Eight -1 then eight 0: loading 8 ints at offset 8 - rem gives a mask
 * with the first rem lanes set. */
static const int32_t k_tail_mask[16] = {
    -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0,
};

AVX2_FN static inline __m256i avx2_tail_mask(size_t rem)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)(k_tail_mask + 8 - rem));
}

AVX2_FN static inline float avx2_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 sh = _mm_movehdup_ps(s);     /* 1 1 3 3 */
    s = _mm_add_ps(s, sh);              /* 0+1 . 2+3 . */
    sh = _mm_movehl_ps(sh, s);          /* 2+3 */
    return _mm_cvtss_f32(_mm_add_ss(s, sh));
}

AVX2_FN static inline __m256 avx2_dot_step(__m256 acc, __m256 x, __m256 y)
{
    return _mm256_fmadd_ps(x, y, acc);
}

AVX2_FN static inline __m256 avx2_l2sq_step(__m256 acc, __m256 x, __m256 y)
{
    __m256 d = _mm256_sub_ps(x, y);
    return _mm256_fmadd_ps(d, d, acc);
}

AVX2_FN static inline __m256 avx2_l1_step(__m256 acc, __m256 x, __m256 y)
{
    __m256 d = _mm256_sub_ps(x, y);
    return _mm256_add_ps(acc, _mm256_andnot_ps(_mm256_set1_ps(-0.0f), d));
}

#define AVX2_LD(p, k) _mm256_loadu_ps((p) + i + (k))

/* One definition per reduction: 32 floats per iteration into four
 * accumulators, then whole blocks of 8, then one masked block. */
#define AVX2_REDUCE(fname, step)                                            \
    AVX2_FN static float fname(const float *a, const float *b, size_t n)    \
    {                                                                       \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();     \
        __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();     \
        size_t i = 0;                                                       \
        for (; i + 32 <= n; i += 32) {                                      \
            acc0 = step(acc0, AVX2_LD(a, 0), AVX2_LD(b, 0));                \
            acc1 = step(acc1, AVX2_LD(a, 8), AVX2_LD(b, 8));                \
            acc2 = step(acc2, AVX2_LD(a, 16), AVX2_LD(b, 16));              \
            acc3 = step(acc3, AVX2_LD(a, 24), AVX2_LD(b, 24));              \
        }                                                                   \
        for (; i + 8 <= n; i += 8)                                          \
            acc0 = step(acc0, AVX2_LD(a, 0), AVX2_LD(b, 0));                \
        if (i < n) {                                                        \
            __m256i m = avx2_tail_mask(n - i);                              \
            acc1 = step(acc1, _mm256_maskload_ps(a + i, m),                 \
                        _mm256_maskload_ps(b + i, m));                      \
        }                                                                   \
        acc0 = _mm256_add_ps(acc0, acc1);                                   \
        acc2 = _mm256_add_ps(acc2, acc3);                                   \
        return avx2_hsum(_mm256_add_ps(acc0, acc2));                        \
    }

AVX2_REDUCE(avx2_dot, avx2_dot_step)
AVX2_REDUCE(avx2_l2sq, avx2_l2sq_step)
AVX2_REDUCE(avx2_l1, avx2_l1_step)

AVX2_FN static void avx2_scale(float *v, size_t n, float len)
{
    __m256 d = _mm256_set1_ps(len);
    size_t i = 0;

    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(v + i, _mm256_div_ps(_mm256_loadu_ps(v + i), d));
    if (i < n) {
        __m256i m = avx2_tail_mask(n - i);
        _mm256_maskstore_ps(v + i, m, _mm256_div_ps(_mm256_maskload_ps(v + i, m), d));
    }
}

static const struct dist_kernels k_avx2 = {
    "avx2+fma", avx2_dot, avx2_l2sq, avx2_l1, avx2_scale,
};

#endif /* DIST_HAVE_AVX2 */

/* ---- dispatch --------------------------------------------------------- */

static _Atomic(const struct dist_kernels *) g_active; /* NULL until first use */
static const struct dist_kernels *g_chosen;           /* set by pthread_once */
static pthread_once_t g_choose_once = PTHREAD_ONCE_INIT;

static void dist_choose(void)
{
    g_chosen = &k_portable;
#ifdef DIST_HAVE_AVX2
    __builtin_cpu_init(); /* we may run before libgcc's own constructor */
    /* libgcc also checks that the OS saves the YMM state (XGETBV). */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        g_chosen = &k_avx2;
#endif
}

static const struct dist_kernels *dist_chosen(void)
{
    pthread_once(&g_choose_once, dist_choose);
    return g_chosen;
}

static const struct dist_kernels *dist_active(void)
{
    const struct dist_kernels *k = atomic_load_explicit(&g_active, memory_order_relaxed);
    const struct dist_kernels *expected = NULL;

    if (__builtin_expect(k != NULL, 1))
        return k;
    k = dist_chosen();
    /* Do not override a dist_force_portable that won the race. */
    if (!atomic_compare_exchange_strong(&g_active, &expected, k))
        k = expected;
    return k;
}

const char *dist_impl_name(void)
{
    return dist_active()->name;
}

void dist_force_portable(bool on)
{
    atomic_store(&g_active, on ? &k_portable : dist_chosen());
}

/* ---- public kernels and scoring --------------------------------------- */

float dist_dot(const float *a, const float *b, size_t n)
{
    return dist_active()->dot(a, b, n);
}

float dist_l2sq(const float *a, const float *b, size_t n)
{
    return dist_active()->l2sq(a, b, n);
}

float dist_l1(const float *a, const float *b, size_t n)
{
    return dist_active()->l1(a, b, n);
}

/* Scale v to unit length.  With qdrant_rule, also skip vectors Qdrant's
 * cosine preprocessing skips: squared length below FLT_EPSILON, or within
 * 1e-6 of 1 (already normalised; keeps re-preparation stable). */
static void dist_unit(float *v, size_t n, bool qdrant_rule)
{
    const struct dist_kernels *k = dist_active();
    float s = k->dot(v, v, n);

    if (!(s > 0.0f) || isinf(s))
        return;
    if (qdrant_rule && (s < FLT_EPSILON || fabsf(s - 1.0f) <= 1e-6f))
        return;
    k->scale(v, n, sqrtf(s));
}

void dist_normalize(float *v, size_t n)
{
    dist_unit(v, n, false);
}

void dist_prepare(enum dist_metric m, float *v, size_t n)
{
    if (m == DIST_COSINE)
        dist_unit(v, n, true);
}

float dist_score(enum dist_metric m, const float *q, const float *v, size_t n)
{
    switch (m) {
    case DIST_COSINE:
    case DIST_DOT:
        return dist_dot(q, v, n);
    case DIST_EUCLID:
        return sqrtf(dist_l2sq(q, v, n));
    case DIST_MANHATTAN:
        return dist_l1(q, v, n);
    }
    return NAN;
}

bool dist_higher_better(enum dist_metric m)
{
    return m == DIST_COSINE || m == DIST_DOT;
}

bool dist_better(enum dist_metric m, float a, float b)
{
    if (isnan(b))
        return !isnan(a);
    /* a NaN a compares false either way: it never ranks first. */
    return dist_higher_better(m) ? a > b : a < b;
}

/* ---- metric names ----------------------------------------------------- */

static const char *const k_metric_names[DIST_METRIC_COUNT] = {
    [DIST_COSINE] = "Cosine",
    [DIST_DOT] = "Dot",
    [DIST_EUCLID] = "Euclid",
    [DIST_MANHATTAN] = "Manhattan",
};

#define DIST_ALLOWED "\"Cosine\", \"Dot\", \"Euclid\", \"Manhattan\""
#define DIST_NAME_SHOWN 64 /* longest prefix of a bad name quoted back */

_Static_assert(DIST_MANHATTAN + 1 == DIST_METRIC_COUNT, "DIST_METRIC_COUNT out of date");

const char *dist_metric_name(enum dist_metric m)
{
    if ((unsigned)m >= DIST_METRIC_COUNT)
        return NULL;
    return k_metric_names[m];
}

int dist_metric_parse(const char *name, enum dist_metric *out, err_t *err)
{
    if (name == NULL)
        return err_set(err, ERR_INVALID,
                       "distance is missing: expected one of " DIST_ALLOWED);
    for (unsigned m = 0; m < DIST_METRIC_COUNT; m++) {
        if (strcmp(name, k_metric_names[m]) == 0) {
            if (out != NULL)
                *out = (enum dist_metric)m;
            return ERR_OK;
        }
    }
    return err_set(err, ERR_INVALID,
                   "unknown distance \"%.*s%s\": expected one of " DIST_ALLOWED
                   " (case-sensitive)",
                   DIST_NAME_SHOWN, name,
                   strlen(name) > DIST_NAME_SHOWN ? "..." : "");
}
