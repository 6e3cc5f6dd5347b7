/*
 * coll_textidx.c - the full-text (inverted) index of one text field: token
 * -> set of slots.  Part of the coll module (coll_internal.h); coll_index.c
 * owns one per text index, feeds it every string value of the field and
 * asks it for candidates.
 *
 * DESIGN
 * Tokens come from filter_tokenize with the index's params, the very
 * function the filter evaluator uses, so "slot s is in token T's set"
 * holds exactly when the evaluator would find T among s's tokens; the
 * candidates are therefore a superset of the matches (the full filter is
 * still evaluated on each).  For the prefix tokenizer a document's tokens
 * are all the prefixes Qdrant indexes, so a query token (a word cut to
 * max_token_len) is looked up as is.  A token's slots are a coll_sset_t,
 * so adding or removing a point costs O(tokens it holds).  Removing a
 * value removes its slot from each of the value's tokens: coll_index.c
 * always removes a point's whole old payload before adding the new one,
 * so a token shared by two strings of one point is never removed early.
 *
 * CANDIDATES (Qdrant's filter / estimate_cardinality for the query kinds)
 *   text (all tokens): the smallest token set, kept where every other
 *     query token's set has the slot; a missing token or no token: none.
 *   text_any: the union of the sets of the tokens present.
 *   phrase: as text with the phrase tokenized as a document, but none at
 *     all without phrase_matching (Qdrant then matches nothing).
 */
#include "coll_internal.h"

#include <stdlib.h>
#include <string.h>

#define QTOK_MAX 64           /* query tokens looked at (more: still correct) */

typedef struct tpost {
    struct tpost *next;
    uint64_t hash;
    coll_sset_t slots;
    size_t len;
    char tok[];
} tpost_t;

struct coll_textidx {
    filter_text_params_t tp;
    tpost_t **b;
    size_t nb, n;             /* nb: 0 or a power of two */
};

static uint64_t tok_hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ULL;
    return h;
}

coll_textidx_t *coll_textidx_new(const filter_text_params_t *tp)
{
    coll_textidx_t *x = calloc(1, sizeof(*x));

    if (x != NULL)
        x->tp = *tp;
    return x;
}

void coll_textidx_clear(coll_textidx_t *x)
{
    for (size_t i = 0; i < x->nb; i++) {
        tpost_t *p = x->b[i], *next;
        for (; p != NULL; p = next) {
            next = p->next;
            free(p->slots.t);
            free(p);
        }
    }
    free(x->b);
    x->b = NULL;
    x->nb = x->n = 0;
}

void coll_textidx_free(coll_textidx_t *x)
{
    if (x == NULL)
        return;
    coll_textidx_clear(x);
    free(x);
}

const filter_text_params_t *coll_textidx_params(const coll_textidx_t *x)
{
    return &x->tp;
}

static tpost_t *tpost_find(const coll_textidx_t *x, const char *tok, size_t len, uint64_t h)
{
    if (x->nb == 0)
        return NULL;
    for (tpost_t *p = x->b[h & (x->nb - 1)]; p != NULL; p = p->next)
        if (p->hash == h && p->len == len && memcmp(p->tok, tok, len) == 0)
            return p;
    return NULL;
}

static int tpost_grow(coll_textidx_t *x)
{
    size_t nb = x->nb ? x->nb * 2 : 64;
    tpost_t **b = calloc(nb, sizeof(*b));

    if (b == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < x->nb; i++) {
        tpost_t *p = x->b[i], *next;
        for (; p != NULL; p = next) {
            next = p->next;
            p->next = b[p->hash & (nb - 1)];
            b[p->hash & (nb - 1)] = p;
        }
    }
    free(x->b);
    x->b = b;
    x->nb = nb;
    return ERR_OK;
}

typedef struct tadd {
    coll_textidx_t *x;
    uint32_t slot;
    int rc;
} tadd_t;

static bool add_tok(void *arg, const char *tok, size_t len)
{
    tadd_t *a = arg;
    coll_textidx_t *x = a->x;
    uint64_t h = tok_hash(tok, len);
    tpost_t *p = tpost_find(x, tok, len, h);

    if (p == NULL) {
        if ((x->n + 1 > x->nb && tpost_grow(x) != ERR_OK) ||
            (p = calloc(1, sizeof(*p) + len + 1)) == NULL) {
            a->rc = ERR_NOMEM;
            return false;
        }
        p->hash = h;
        p->len = len;
        memcpy(p->tok, tok, len);
        p->next = x->b[h & (x->nb - 1)];
        x->b[h & (x->nb - 1)] = p;
        x->n++;
    }
    a->rc = coll_sset_add(&p->slots, a->slot);
    return a->rc == ERR_OK;
}

int coll_textidx_add(coll_textidx_t *x, uint32_t slot, const char *s)
{
    tadd_t a = { x, slot, ERR_OK };

    filter_tokenize(&x->tp, s, true, add_tok, &a);
    return a.rc;
}

static bool del_tok(void *arg, const char *tok, size_t len)
{
    tadd_t *a = arg;
    coll_textidx_t *x = a->x;
    uint64_t h = tok_hash(tok, len);

    if (x->nb == 0)
        return false;
    for (tpost_t **pp = &x->b[h & (x->nb - 1)]; *pp != NULL; pp = &(*pp)->next) {
        tpost_t *p = *pp;
        if (p->hash != h || p->len != len || memcmp(p->tok, tok, len) != 0)
            continue;
        coll_sset_del(&p->slots, a->slot);
        if (p->slots.n == 0) { /* no point holds the token any more */
            *pp = p->next;
            free(p->slots.t);
            free(p);
            x->n--;
        }
        break;
    }
    return true;
}

void coll_textidx_del(coll_textidx_t *x, uint32_t slot, const char *s)
{
    tadd_t a = { x, slot, ERR_OK };

    filter_tokenize(&x->tp, s, true, del_tok, &a);
}

/* ---- candidates --------------------------------------------------------- */

/* The query's tokens, looked up: sets[i] NULL for a token no point has. */
typedef struct tq {
    const coll_textidx_t *x;
    const coll_sset_t *sets[QTOK_MAX];
    size_t n, total;          /* total: tokens, also beyond QTOK_MAX */
    bool missing;             /* some token has no set */
    bool overflow;            /* a token's set is not in sets (> QTOK_MAX) */
} tq_t;

static bool look_tok(void *arg, const char *tok, size_t len)
{
    tq_t *q = arg;
    const tpost_t *p = tpost_find(q->x, tok, len, tok_hash(tok, len));

    q->total++;
    if (p == NULL)
        q->missing = true;
    else if (q->n < QTOK_MAX)
        q->sets[q->n++] = &p->slots;
    else
        q->overflow = true; /* fine for text (a superset), not for text_any */
    return true;
}

static void tq_parse(const coll_textidx_t *x, const filter_text_t *t, tq_t *q)
{
    memset(q, 0, sizeof(*q));
    q->x = x;
    if (t->op == FILTER_TEXT_PHRASE && !x->tp.phrase_matching)
        return; /* matches nothing */
    filter_tokenize(&x->tp, t->query, t->op == FILTER_TEXT_PHRASE, look_tok, q);
}

/* Index in q->sets of the smallest set. */
static size_t tq_smallest(const tq_t *q)
{
    size_t best = 0;
    for (size_t i = 1; i < q->n; i++)
        if (q->sets[i]->n < q->sets[best]->n)
            best = i;
    return best;
}

size_t coll_textidx_estimate(const coll_textidx_t *x, const filter_text_t *t)
{
    tq_t q;
    size_t n = 0;

    tq_parse(x, t, &q);
    if (t->op == FILTER_TEXT_ANY) {
        if (q.overflow)
            return SIZE_MAX;
        for (size_t i = 0; i < q.n; i++)
            n += q.sets[i]->n;
        return n;
    }
    if (q.missing || q.n == 0)
        return 0;
    return q.sets[tq_smallest(&q)]->n;
}

size_t coll_textidx_collect(const coll_textidx_t *x, const filter_text_t *t, uint32_t *out)
{
    tq_t q;
    size_t w = 0;

    tq_parse(x, t, &q);
    if (t->op == FILTER_TEXT_ANY) {
        for (size_t i = 0; i < q.n; i++)
            for (uint32_t k = 0; k < q.sets[i]->cap; k++)
                if (q.sets[i]->t[k] != 0)
                    out[w++] = q.sets[i]->t[k] - 1;
        return w;
    }
    if (q.missing || q.n == 0)
        return 0;
    size_t s = tq_smallest(&q);
    const coll_sset_t *base = q.sets[s];
    for (uint32_t k = 0; k < base->cap; k++) {
        uint32_t slot;
        size_t i;
        if (base->t[k] == 0)
            continue;
        slot = base->t[k] - 1;
        for (i = 0; i < q.n && (i == s || coll_sset_has(q.sets[i], slot)); i++)
            ;
        if (i == q.n)
            out[w++] = slot;
    }
    return w;
}
