/*
 * test_dist.c - distance kernels and Qdrant-compatible scoring.
 *
 * The kernels are checked against a naive double-precision reference on
 * many lengths (every tail size of both kernel sets, and random ones) and
 * misaligned starts, on the run-time-chosen set and on the forced portable
 * set.  Each vector is placed so that it ends exactly at the end of its
 * heap block, so under AddressSanitizer any over-read by tail handling is
 * caught.  The tolerance is relative to sum |term| rather than to the
 * result, because a dot product of mixed-sign values may cancel to nearly
 * zero while float rounding error stays proportional to the terms.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/dist.h"
#include "tests/testutil.h"

#define REL_TOL 1e-4
#define MAX_N 1100
#define RANDOM_SIZES 200

static uint64_t g_rng;

enum kernel { K_DOT, K_L2SQ, K_L1 };

static const char *const k_kernel_names[] = { "dot", "l2sq", "l1" };

/* Lengths around every block boundary of both kernel sets (8, 16, 32). */
static const size_t k_sizes[] = {
    0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   15,  16,  17,  23,
    24,  25,  31,  32,  33,  39,  40,  47,  48,  63,  64,  65,  127, 128,
    129, 255, 256, 257, 384, 767, 768, 769, 1023, 1024, 1025, 1099, 1100,
};

/* ---- helpers ---------------------------------------------------------- */

static int reset_impl(void **state)
{
    (void)state;
    dist_force_portable(false);
    return 0;
}

static float rand_unit(void)
{
    return (float)(tu_randf(&g_rng) * 2.0 - 1.0);
}

/* A heap block holding off floats of padding then n random floats, so the
 * vector ends exactly where the block does.  Returns the vector start;
 * *block receives what to free. */
static float *vec_alloc(size_t off, size_t n, float scale, void **block)
{
    float *p = malloc((off + n) * sizeof(float) + (off + n == 0));
    assert_non_null(p);
    for (size_t i = 0; i < off + n; i++)
        p[i] = rand_unit() * scale;
    *block = p;
    return p + off;
}

static double naive(enum kernel k, const float *a, const float *b, size_t n,
                    double *abs_sum)
{
    double s = 0.0, abs = 0.0;

    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i], t;
        if (k == K_DOT)
            t = x * y;
        else if (k == K_L2SQ)
            t = (x - y) * (x - y);
        else
            t = fabs(x - y);
        s += t;
        abs += fabs(t);
    }
    *abs_sum = abs;
    return s;
}

static float run_kernel(enum kernel k, const float *a, const float *b, size_t n)
{
    if (k == K_DOT)
        return dist_dot(a, b, n);
    if (k == K_L2SQ)
        return dist_l2sq(a, b, n);
    return dist_l1(a, b, n);
}

static void check_one(enum kernel k, size_t n, size_t offa, size_t offb)
{
    void *ba, *bb;
    float *a = vec_alloc(offa, n, 1.0f, &ba);
    float *b = vec_alloc(offb, n, 1.0f, &bb);
    double abs_sum;
    double ref = naive(k, a, b, n, &abs_sum);
    float got = run_kernel(k, a, b, n);
    double tol = REL_TOL * abs_sum;

    free(ba);
    free(bb);
    if (!(fabs((double)got - ref) <= tol))
        fail_msg("%s (%s) n=%zu offa=%zu offb=%zu: got %.9g want %.9g (tol %.3g)",
                 k_kernel_names[k], dist_impl_name(), n, offa, offb,
                 (double)got, ref, tol);
}

/* Every listed size at every misalignment of a, then random sizes at
 * random misalignments. */
static void check_kernel(enum kernel k)
{
    for (size_t s = 0; s < sizeof(k_sizes) / sizeof(k_sizes[0]); s++)
        for (size_t off = 0; off < 8; off++)
            check_one(k, k_sizes[s], off, (off * 3 + 1) % 8);
    for (int r = 0; r < RANDOM_SIZES; r++) {
        size_t n = (size_t)(tu_rand(&g_rng) % (MAX_N + 1));
        check_one(k, n, (size_t)(tu_rand(&g_rng) % 8), (size_t)(tu_rand(&g_rng) % 8));
    }
}

static void check_kernel_on(enum kernel k, bool portable)
{
    dist_force_portable(portable);
    if (portable)
        assert_string_equal(dist_impl_name(), "portable");
    check_kernel(k);
}

static double naive_norm(const float *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

static bool cpu_has_avx2_fma(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

/* ---- first use from many threads -------------------------------------- */

#define RACE_THREADS 8

static pthread_barrier_t g_barrier;

static void *race_first_use(void *arg)
{
    float a[9] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
    const char **name = arg;

    pthread_barrier_wait(&g_barrier);
    *name = dist_impl_name();
    if (dist_dot(a, a, 9) != 285.0f)
        *name = NULL;
    return NULL;
}

/* Must run first: the kernel set is chosen on first use. */
static void test_dist_first_use_is_thread_safe(void **state)
{
    pthread_t th[RACE_THREADS];
    const char *names[RACE_THREADS];

    (void)state;
    assert_int_equal(pthread_barrier_init(&g_barrier, NULL, RACE_THREADS), 0);
    for (int i = 0; i < RACE_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_first_use, &names[i]), 0);
    for (int i = 0; i < RACE_THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    pthread_barrier_destroy(&g_barrier);
    for (int i = 0; i < RACE_THREADS; i++) {
        assert_non_null(names[i]);
        assert_ptr_equal(names[i], names[0]);
    }
}

/* ---- kernels vs the naive reference ----------------------------------- */

static void test_dist_dot_matches_naive(void **state)
{
    (void)state;
    check_kernel_on(K_DOT, false);
}

static void test_dist_dot_portable_matches_naive(void **state)
{
    (void)state;
    check_kernel_on(K_DOT, true);
}

static void test_dist_l2sq_matches_naive(void **state)
{
    (void)state;
    check_kernel_on(K_L2SQ, false);
}

static void test_dist_l2sq_portable_matches_naive(void **state)
{
    (void)state;
    check_kernel_on(K_L2SQ, true);
}

static void test_dist_l1_matches_naive(void **state)
{
    (void)state;
    check_kernel_on(K_L1, false);
}

static void test_dist_l1_portable_matches_naive(void **state)
{
    (void)state;
    check_kernel_on(K_L1, true);
}

static void test_dist_zero_length_is_zero(void **state)
{
    (void)state;
    for (int p = 0; p < 2; p++) {
        dist_force_portable(p == 1);
        assert_true(dist_dot(NULL, NULL, 0) == 0.0f);
        assert_true(dist_l2sq(NULL, NULL, 0) == 0.0f);
        assert_true(dist_l1(NULL, NULL, 0) == 0.0f);
        dist_normalize(NULL, 0);
        for (int m = 0; m < DIST_METRIC_COUNT; m++) {
            dist_prepare((enum dist_metric)m, NULL, 0);
            assert_true(dist_score((enum dist_metric)m, NULL, NULL, 0) == 0.0f);
        }
    }
}

static void test_dist_impl_name_reflects_cpu(void **state)
{
    const char *chosen;

    (void)state;
    dist_force_portable(false);
    chosen = dist_impl_name();
    assert_string_equal(chosen, cpu_has_avx2_fma() ? "avx2+fma" : "portable");
    dist_force_portable(true);
    assert_string_equal(dist_impl_name(), "portable");
    dist_force_portable(false);
    assert_string_equal(dist_impl_name(), chosen);
}

/* ---- normalisation and preparation ------------------------------------ */

static void check_normalize_sizes(float scale)
{
    for (size_t s = 0; s < sizeof(k_sizes) / sizeof(k_sizes[0]); s++) {
        size_t n = k_sizes[s];
        void *block;
        float *v = vec_alloc(n % 8, n, scale, &block);
        float *orig = malloc(n * sizeof(float) + 1);
        double len;

        assert_non_null(orig);
        memcpy(orig, v, n * sizeof(float));
        len = naive_norm(orig, n);
        dist_normalize(v, n);
        if (n > 0)
            assert_true(fabs(naive_norm(v, n) - 1.0) < 1e-5);
        for (size_t i = 0; i < n; i++)
            assert_true(fabs(v[i] - orig[i] / len) <= 1e-5 * fabs(orig[i] / len) + 1e-7);
        free(orig);
        free(block);
    }
}

static void test_dist_normalize_unit_length(void **state)
{
    (void)state;
    for (int p = 0; p < 2; p++) {
        dist_force_portable(p == 1);
        check_normalize_sizes(1.0f);
        check_normalize_sizes(1000.0f);
        check_normalize_sizes(1e-3f);
    }
}

static void test_dist_normalize_zero_vector(void **state)
{
    static const size_t sizes[] = { 1, 7, 8, 9, 33, 768 };
    float v[768];

    (void)state;
    for (int p = 0; p < 2; p++) {
        dist_force_portable(p == 1);
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            memset(v, 0, sizeof(v));
            dist_normalize(v, sizes[s]);
            for (size_t i = 0; i < sizes[s]; i++)
                assert_true(v[i] == 0.0f && !signbit(v[i]));
        }
    }
}

static void test_dist_normalize_tiny_and_huge(void **state)
{
    float tiny[3] = { 0.0f, 1e-10f, 0.0f };
    float under[2] = { 1e-30f, 0.0f };   /* squared length underflows to 0 */
    float huge[2] = { 1e20f, -1e20f };   /* squared length overflows */

    (void)state;
    dist_normalize(tiny, 3);
    assert_true(tiny[0] == 0.0f && tiny[1] == 1.0f && tiny[2] == 0.0f);
    dist_normalize(under, 2);
    assert_true(under[0] == 1e-30f && under[1] == 0.0f);
    dist_normalize(huge, 2);
    assert_true(huge[0] == 1e20f && huge[1] == -1e20f);
}

static void test_dist_prepare_cosine_normalizes(void **state)
{
    float v[2] = { 3.0f, 4.0f };
    float w[5] = { 0.0f, 0.0f, -2.0f, 0.0f, 0.0f };

    (void)state;
    dist_prepare(DIST_COSINE, v, 2);
    assert_true(v[0] == 0.6f && v[1] == 0.8f);
    dist_prepare(DIST_COSINE, w, 5);
    assert_true(w[2] == -1.0f);
}

/* Qdrant leaves vectors with squared length below FLT_EPSILON alone. */
static void test_dist_prepare_cosine_keeps_near_zero(void **state)
{
    float v[3] = { 1e-4f, 0.0f, 1e-4f };
    float z[4] = { 0 };

    (void)state;
    dist_prepare(DIST_COSINE, v, 3);
    assert_true(v[0] == 1e-4f && v[1] == 0.0f && v[2] == 1e-4f);
    dist_prepare(DIST_COSINE, z, 4);
    for (int i = 0; i < 4; i++)
        assert_true(z[i] == 0.0f);
}

static void test_dist_prepare_cosine_is_idempotent(void **state)
{
    (void)state;
    for (int p = 0; p < 2; p++) {
        dist_force_portable(p == 1);
        for (size_t s = 0; s < sizeof(k_sizes) / sizeof(k_sizes[0]); s++) {
            size_t n = k_sizes[s];
            void *block;
            float *v = vec_alloc(0, n, 2.5f, &block);
            float *once = malloc(n * sizeof(float) + 1);

            assert_non_null(once);
            dist_prepare(DIST_COSINE, v, n);
            memcpy(once, v, n * sizeof(float));
            dist_prepare(DIST_COSINE, v, n);
            assert_memory_equal(once, v, n * sizeof(float));
            free(once);
            free(block);
        }
    }
}

static void test_dist_prepare_other_metrics_unchanged(void **state)
{
    static const enum dist_metric ms[] = { DIST_DOT, DIST_EUCLID, DIST_MANHATTAN,
                                           (enum dist_metric)DIST_METRIC_COUNT };
    float v[5] = { 3.0f, 4.0f, -7.5f, 0.0f, 1e-4f };
    float orig[5];

    (void)state;
    memcpy(orig, v, sizeof(v));
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
        dist_prepare(ms[i], v, 5);
        assert_memory_equal(orig, v, sizeof(v));
    }
}

/* ---- metric names ----------------------------------------------------- */

static void test_dist_metric_parse_round_trip(void **state)
{
    static const char *const names[DIST_METRIC_COUNT] = {
        "Cosine", "Dot", "Euclid", "Manhattan",
    };
    static const enum dist_metric ms[DIST_METRIC_COUNT] = {
        DIST_COSINE, DIST_DOT, DIST_EUCLID, DIST_MANHATTAN,
    };

    (void)state;
    for (int i = 0; i < DIST_METRIC_COUNT; i++) {
        enum dist_metric m = (enum dist_metric)-1;
        err_t err = { 0 };

        assert_int_equal(dist_metric_parse(names[i], &m, &err), ERR_OK);
        assert_int_equal(m, ms[i]);
        assert_int_equal(err.code, ERR_OK);
        assert_string_equal(dist_metric_name(ms[i]), names[i]);
        assert_int_equal(dist_metric_parse(dist_metric_name(m), &m, NULL), ERR_OK);
        assert_int_equal(m, ms[i]);
    }
}

static void check_bad_name(const char *bad)
{
    enum dist_metric m = DIST_EUCLID;
    err_t err = { 0 };
    char quoted[96];

    assert_int_equal(dist_metric_parse(bad, &m, &err), ERR_INVALID);
    assert_int_equal(err.code, ERR_INVALID);
    assert_false(err.retriable);
    assert_int_equal(m, DIST_EUCLID);
    for (int i = 0; i < DIST_METRIC_COUNT; i++) {
        snprintf(quoted, sizeof(quoted), "\"%s\"", dist_metric_name((enum dist_metric)i));
        if (strstr(err.msg, quoted) == NULL)
            fail_msg("message for \"%s\" lacks %s: %s", bad ? bad : "(null)", quoted, err.msg);
    }
    if (bad != NULL && strlen(bad) <= 64) {
        snprintf(quoted, sizeof(quoted), "\"%s\":", bad);
        if (strstr(err.msg, quoted) == NULL)
            fail_msg("message lacks the bad value %s: %s", quoted, err.msg);
    }
}

static void test_dist_metric_parse_rejects_bad_names(void **state)
{
    static const char *const bad[] = {
        "cosine", "COSINE", "dot", "DOT", "euclid", "Euclidean", "L2",
        "manhattan", "Manhatan", " Cosine", "Cosine ", "Cosine\n", "",
        "Cos", "CosineX", "Distance::Cosine", "Cosine\tDot",
    };
    char longname[300];
    err_t err;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        check_bad_name(bad[i]);
    check_bad_name(NULL);
    assert_int_equal(dist_metric_parse("nope", NULL, NULL), ERR_INVALID);

    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    check_bad_name(longname);
    dist_metric_parse(longname, NULL, &err);
    assert_non_null(strstr(err.msg, "...\""));
    assert_non_null(strstr(err.msg, "\"Manhattan\""));
}

static void test_dist_metric_name_out_of_range(void **state)
{
    (void)state;
    assert_null(dist_metric_name((enum dist_metric)DIST_METRIC_COUNT));
    assert_null(dist_metric_name((enum dist_metric)-1));
    assert_null(dist_metric_name((enum dist_metric)1000));
}

/* ---- ordering --------------------------------------------------------- */

static void test_dist_higher_better(void **state)
{
    (void)state;
    assert_true(dist_higher_better(DIST_COSINE));
    assert_true(dist_higher_better(DIST_DOT));
    assert_false(dist_higher_better(DIST_EUCLID));
    assert_false(dist_higher_better(DIST_MANHATTAN));
}

static void test_dist_better_ordering(void **state)
{
    (void)state;
    for (int i = 0; i < DIST_METRIC_COUNT; i++) {
        enum dist_metric m = (enum dist_metric)i;
        bool hi = dist_higher_better(m);

        assert_true(dist_better(m, 0.9f, 0.1f) == hi);
        assert_true(dist_better(m, 0.1f, 0.9f) == !hi);
        assert_true(dist_better(m, -0.1f, -0.2f) == hi);
        assert_true(dist_better(m, INFINITY, 1e30f) == hi);
        assert_false(dist_better(m, 0.5f, 0.5f));
        assert_false(dist_better(m, 0.0f, -0.0f));
        /* NaN ranks last and ties with NaN. */
        assert_true(dist_better(m, 1.0f, NAN));
        assert_true(dist_better(m, -INFINITY, NAN));
        assert_false(dist_better(m, NAN, 1.0f));
        assert_false(dist_better(m, NAN, NAN));
    }
}

/* dist_better as a strict weak order: sorting puts the best first and
 * NaN last for every metric. */
static enum dist_metric g_sort_metric;

static int cmp_scores(const void *pa, const void *pb)
{
    float a = *(const float *)pa, b = *(const float *)pb;

    if (dist_better(g_sort_metric, a, b))
        return -1;
    return dist_better(g_sort_metric, b, a) ? 1 : 0;
}

static void test_dist_better_sorts(void **state)
{
    static const float scores[] = { 0.5f, NAN, -3.0f, 7.25f, 0.5f, NAN, 0.0f, 2.0f };
    enum { N = sizeof(scores) / sizeof(scores[0]) };
    float s[N];

    (void)state;
    for (int i = 0; i < DIST_METRIC_COUNT; i++) {
        g_sort_metric = (enum dist_metric)i;
        memcpy(s, scores, sizeof(s));
        qsort(s, N, sizeof(float), cmp_scores);
        if (dist_higher_better(g_sort_metric))
            assert_true(s[0] == 7.25f && s[5] == -3.0f);
        else
            assert_true(s[0] == -3.0f && s[5] == 7.25f);
        for (int j = 0; j + 1 < N - 2; j++)
            assert_false(dist_better(g_sort_metric, s[j + 1], s[j]));
        assert_true(isnan(s[N - 2]) && isnan(s[N - 1]));
    }
}

/* ---- scores ----------------------------------------------------------- */

static float prepared_score(enum dist_metric m, const float *q0, const float *v0, size_t n)
{
    float q[64], v[64];

    assert_true(n <= 64);
    memcpy(q, q0, n * sizeof(float));
    memcpy(v, v0, n * sizeof(float));
    dist_prepare(m, q, n);
    dist_prepare(m, v, n);
    return dist_score(m, q, v, n);
}

static void check_score_examples(void)
{
    static const float x[2] = { 1, 0 }, y[2] = { 3, 4 };
    static const float p[2] = { 1, 1 }, r[2] = { -1, -1 }, o[2] = { 0, 0 };
    static const float a[3] = { 1, 2, 3 }, b[3] = { 4, -5, 6 }, c[3] = { 4, 6, 3 };
    static const float d[3] = { 4, 0, 3 }, s[2] = { 1, -1 }, t[2] = { -1, 1 };
    float ones[37], twos[37];

    for (int i = 0; i < 37; i++) {
        ones[i] = 1.0f;
        twos[i] = 2.0f;
    }
    assert_float_equal(prepared_score(DIST_COSINE, x, y, 2), 0.6f, 1e-6f);
    assert_float_equal(prepared_score(DIST_COSINE, p, r, 2), -1.0f, 1e-6f);
    assert_float_equal(prepared_score(DIST_COSINE, a, a, 3), 1.0f, 1e-6f);
    assert_float_equal(prepared_score(DIST_COSINE, ones, twos, 37), 1.0f, 1e-6f);
    assert_float_equal(prepared_score(DIST_DOT, a, b, 3), 12.0f, 1e-6f);
    assert_float_equal(prepared_score(DIST_DOT, x, y, 2), 3.0f, 1e-6f);
    assert_float_equal(prepared_score(DIST_DOT, ones, twos, 37), 74.0f, 1e-5f);
    assert_float_equal(prepared_score(DIST_EUCLID, o, y, 2), 5.0f, 1e-6f);
    assert_float_equal(prepared_score(DIST_EUCLID, a, c, 3), 5.0f, 1e-6f);
    assert_float_equal(prepared_score(DIST_EUCLID, ones, twos, 37), sqrtf(37.0f), 1e-6f);
    assert_float_equal(prepared_score(DIST_MANHATTAN, a, d, 3), 5.0f, 1e-6f);
    assert_float_equal(prepared_score(DIST_MANHATTAN, s, t, 2), 4.0f, 1e-6f);
    assert_float_equal(prepared_score(DIST_MANHATTAN, ones, twos, 37), 37.0f, 1e-5f);
    assert_true(isnan(dist_score((enum dist_metric)DIST_METRIC_COUNT, a, b, 3)));
}

static void test_dist_score_per_metric(void **state)
{
    (void)state;
    dist_force_portable(false);
    check_score_examples();
    dist_force_portable(true);
    check_score_examples();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dist_first_use_is_thread_safe),
        cmocka_unit_test_teardown(test_dist_dot_matches_naive, reset_impl),
        cmocka_unit_test_teardown(test_dist_dot_portable_matches_naive, reset_impl),
        cmocka_unit_test_teardown(test_dist_l2sq_matches_naive, reset_impl),
        cmocka_unit_test_teardown(test_dist_l2sq_portable_matches_naive, reset_impl),
        cmocka_unit_test_teardown(test_dist_l1_matches_naive, reset_impl),
        cmocka_unit_test_teardown(test_dist_l1_portable_matches_naive, reset_impl),
        cmocka_unit_test_teardown(test_dist_zero_length_is_zero, reset_impl),
        cmocka_unit_test_teardown(test_dist_impl_name_reflects_cpu, reset_impl),
        cmocka_unit_test_teardown(test_dist_normalize_unit_length, reset_impl),
        cmocka_unit_test_teardown(test_dist_normalize_zero_vector, reset_impl),
        cmocka_unit_test(test_dist_normalize_tiny_and_huge),
        cmocka_unit_test(test_dist_prepare_cosine_normalizes),
        cmocka_unit_test(test_dist_prepare_cosine_keeps_near_zero),
        cmocka_unit_test_teardown(test_dist_prepare_cosine_is_idempotent, reset_impl),
        cmocka_unit_test(test_dist_prepare_other_metrics_unchanged),
        cmocka_unit_test(test_dist_metric_parse_round_trip),
        cmocka_unit_test(test_dist_metric_parse_rejects_bad_names),
        cmocka_unit_test(test_dist_metric_name_out_of_range),
        cmocka_unit_test(test_dist_higher_better),
        cmocka_unit_test(test_dist_better_ordering),
        cmocka_unit_test(test_dist_better_sorts),
        cmocka_unit_test_teardown(test_dist_score_per_metric, reset_impl),
    };

    g_rng = tu_seed(0xd15d15d15ULL);
    return cmocka_run_group_tests_name("dist", tests, NULL, NULL);
}
