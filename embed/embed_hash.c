/*
 * embed_hash.c - the built-in, offline hash models ("veclog/hash-256" ...).
 *
 * Design: feature hashing ("the hashing trick") of words and character
 * n-grams into a signed random projection.  It knows no language, needs no
 * model file and costs a few hundred nanoseconds per word, yet texts that
 * share words and word pieces get close vectors: near-duplicates (a changed
 * word, changed case, added punctuation) stay nearest neighbours, and
 * unrelated texts come out nearly orthogonal.
 *
 * THE SCHEME BELOW IS A STORAGE FORMAT.  Vectors computed with it are stored
 * in collections and compared with vectors computed later, possibly by
 * another build on another machine, so every step is pinned (and
 * tests/test_embed.c pins checksums of outputs).  Changing any step means
 * a new model name, never an edit of this one.
 *
 *  1. Lower-casing: bytes 'A'..'Z' become 'a'..'z'; every other byte is
 *     kept as is (UTF-8 passes through; no Unicode case folding).
 *  2. Words: maximal runs of word bytes, which are 'a'..'z', '0'..'9' and
 *     every byte >= 0x80 (so UTF-8 letters join words; so do non-ASCII
 *     punctuation marks, a known simplification).  All other bytes separate
 *     words.  A text without words gives the zero vector.
 *  3. Features, per word w:
 *       - the word itself: tag byte 0x01 followed by w's bytes;
 *       - the 3-grams and 4-grams of "<" w ">", counted in characters, a
 *         character being a UTF-8 lead byte plus the continuation bytes
 *         (0x80..0xbf) that follow it inside the word ('<' and '>' count as
 *         one character each): tag byte 0x02 followed by the gram's bytes.
 *         "<a>" has one 3-gram and no 4-gram; "<cat>" has "<ca", "cat",
 *         "at>", "<cat", "cat>".
 *  4. Feature hash: h = FNV-1a-64 (offset basis 0xcbf29ce484222325, prime
 *     0x100000001b3) over the tagged bytes, then the MurmurHash3 fmix64
 *     finaliser.  Bit 0 of the stored feature is then replaced by the kind
 *     (1 = word, 0 = n-gram): f = (h & ~1) | is_word.
 *  5. Term frequency: the features of the whole text are sorted as
 *     unsigned 64-bit numbers and equal ones counted (tf).  Weight:
 *     (1.0 for a word, 0.5 for an n-gram) * sqrt(tf), computed in double
 *     and rounded to float.  sqrt and not 1 + ln(tf) because IEEE 754
 *     rounds sqrt exactly, while log differs across libm versions.
 *  6. Projection: in ascending order of f, for j = 1..4:
 *       x = fmix64(f + j * 0x9e3779b97f4a7c15)  (mod 2^64),
 *       index = ((x >> 32) * dim) >> 32,  sign = x & 1 ? -1 : +1,
 *       v[index] += sign * weight  (float addition, in this order).
 *  7. Normalisation: s = sum of v[i]^2 in double, i ascending; if s > 0,
 *     v[i] = (float)((double)v[i] / sqrt(s)).
 *
 * Floating point is plain IEEE binary32/64 without contraction (the build
 * is -std=c11, which implies -ffp-contract=off with GCC), and no SIMD
 * kernel with a CPU-dependent summation order is used, so the output is
 * bit-identical across runs and x86-64 / arm64 machines.
 *
 * Memory: one buffer of 8 bytes per feature (about 3 features per byte of
 * text) for the longest text of the call, allocated once per call;
 * nothing per token.  Thread-safe: no shared state.
 */
#include "embed/embed_internal.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull
#define GOLDEN 0x9e3779b97f4a7c15ull
#define TAG_WORD 0x01
#define TAG_GRAM 0x02
#define PROBES 4
#define WORD_WEIGHT 1.0
#define GRAM_WEIGHT 0.5

static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

static uint64_t fnv_byte(uint64_t h, unsigned char b)
{
    return (h ^ b) * FNV_PRIME;
}

static unsigned char lower(unsigned char b)
{
    return b >= 'A' && b <= 'Z' ? (unsigned char)(b - 'A' + 'a') : b;
}

static bool word_byte(unsigned char b)
{
    return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b >= 0x80;
}

/* One character ("unit") of "<word>": its bytes. */
struct unit {
    const unsigned char *p;
    size_t len;
};

static uint64_t feature(uint64_t h, bool is_word)
{
    h = fmix64(h);
    return (h & ~(uint64_t)1) | (is_word ? 1u : 0u);
}

/* Hash of the n units ending at ring[(e) % 4], tagged as an n-gram. */
static uint64_t gram_hash(const struct unit *ring, size_t e, size_t n)
{
    uint64_t h = fnv_byte(FNV_OFFSET, TAG_GRAM);
    size_t u, b;

    for (u = e + 4 - (n - 1); u <= e + 4; u++) {
        const struct unit *x = &ring[u % 4];
        for (b = 0; b < x->len; b++)
            h = fnv_byte(h, lower(x->p[b]));
    }
    return h;
}

/* Features of one word w[0..len) (step 3); written to out when non-NULL.
 * Returns how many there are. */
static size_t word_features(const unsigned char *w, size_t len, uint64_t *out)
{
    static const unsigned char lt = '<', gt = '>';
    struct unit ring[4];
    uint64_t h = fnv_byte(FNV_OFFSET, TAG_WORD);
    size_t i, e = 0, n = 0;

    for (i = 0; i < len; i++)
        h = fnv_byte(h, lower(w[i]));
    if (out != NULL)
        out[n] = feature(h, true);
    n++;
    /* Walk the units of "<word>", keeping the last four in a ring; every
     * unit ending a window of 3 (or 4) emits that gram. */
    for (i = 0;; e++) {
        struct unit *x = &ring[e % 4];
        if (e == 0) {
            x->p = &lt;
            x->len = 1;
        } else if (i < len) {
            x->p = w + i;
            for (x->len = 1; i + x->len < len && (w[i + x->len] & 0xc0) == 0x80; x->len++)
                ;
            i += x->len;
        } else {
            x->p = &gt;
            x->len = 1;
        }
        for (size_t g = 3; g <= 4; g++) {
            if (e + 1 >= g) {
                if (out != NULL)
                    out[n] = feature(gram_hash(ring, e, g), false);
                n++;
            }
        }
        if (x->p == &gt)
            break;
    }
    return n;
}

/* Features of a whole text (steps 1-3); out may be NULL to count them. */
static size_t text_features(const char *text, uint64_t *out)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t n = 0;

    while (*p != '\0') {
        const unsigned char *start;
        if (!word_byte(lower(*p))) {
            p++;
            continue;
        }
        for (start = p; *p != '\0' && word_byte(lower(*p)); p++)
            ;
        n += word_features(start, (size_t)(p - start), out != NULL ? out + n : NULL);
    }
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Steps 5-7 for one text whose n features are in f (sorted here). */
static void project(uint64_t *f, size_t n, float *v, uint32_t dim)
{
    size_t i, j, run;
    double ss = 0.0;

    memset(v, 0, (size_t)dim * sizeof(*v));
    qsort(f, n, sizeof(*f), cmp_u64);
    for (i = 0; i < n; i += run) {
        float w;
        for (run = 1; i + run < n && f[i + run] == f[i]; run++)
            ;
        w = (float)(((f[i] & 1) ? WORD_WEIGHT : GRAM_WEIGHT) * sqrt((double)run));
        for (j = 1; j <= PROBES; j++) {
            uint64_t x = fmix64(f[i] + j * GOLDEN);
            size_t idx = (size_t)(((x >> 32) * (uint64_t)dim) >> 32);
            v[idx] += (x & 1) ? -w : w;
        }
    }
    for (i = 0; i < dim; i++)
        ss += (double)v[i] * (double)v[i];
    if (ss > 0.0) {
        double norm = sqrt(ss);
        for (i = 0; i < dim; i++)
            v[i] = (float)((double)v[i] / norm);
    }
}

int embed_hash_texts(const embed_model_t *m, const char *const *texts, size_t n, float *out,
                     err_t *err)
{
    uint64_t *f = NULL;
    size_t i, most = 0;
    int rc = ERR_OK;

    for (i = 0; i < n; i++) {
        size_t c = text_features(texts[i], NULL);
        most = c > most ? c : most;
    }
    if (most > 0 && (f = malloc(most * sizeof(*f))) == NULL) {
        rc = err_set(err, ERR_NOMEM, "embed: %s: out of memory for %zu features", m->name, most);
        goto out;
    }
    for (i = 0; i < n; i++) {
        size_t c = text_features(texts[i], f);
        project(f, c, out + i * m->dim, m->dim);
    }
out:
    free(f);
    return rc;
}
