/*
 * filter_text.c - the full-text tokenizers, shared by the filter evaluator
 * (filter.c: match.text / text_any / phrase on a text-indexed field) and
 * the text index (coll_textidx.c), so both cut text into exactly the same
 * tokens.  Scanner in filter_internal.h (struct filter_tok).
 */
#include "filter_internal.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* full-text tokenizers (Qdrant's full_text_index/tokenizers)          */

/*
 * A full-text index changes match.text / text_any / phrase on its field
 * from substring tests to token tests, so the evaluator tokenizes exactly
 * as the index does (coll_textidx.c calls filter_tokenize).  Qdrant:
 *   word:       split where !char::is_alphanumeric;
 *   whitespace: split on Unicode White_Space (str::split_whitespace);
 *   prefix:     words as "word"; a document indexes every prefix of each
 *               word from min_token_len (at least 1) up to max_token_len
 *               characters (the whole word once it is reached); a query
 *               word is cut to max_token_len characters, never dropped
 *               for being long;
 *   multilingual: Qdrant segments CJK / Japanese text with dictionaries
 *               (charabia, vaporetto); that is out of reach here, so it is
 *               tokenized as "word", which agrees for space-separated
 *               scripts.
 * Each token is lowercased (when lowercase, the default), then dropped if
 * shorter than min_token_len or (not for prefix) longer than
 * max_token_len characters, counted after lowercasing.
 * is_alphanumeric and to_lowercase are approximated with tables that are
 * exact for ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic and
 * Armenian and treat every other non-punctuation code point as a letter
 * without case.  Stopwords, stemming and ascii_folding are not done.
 */

/* Decode one UTF-8 character at p (NUL-terminated); an invalid byte is
 * taken as a character of its own (U+FFFD). */
static uint32_t utf8_dec(const unsigned char *p, size_t *adv)
{
    uint32_t c = p[0];
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;

    if (n == 1 || n == 0) {
        *adv = 1;
        return n == 1 ? c : 0xfffd;
    }
    c &= 0x7fU >> n;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *adv = 1;
            return 0xfffd;
        }
        c = (c << 6) | (p[i] & 0x3f);
    }
    *adv = n;
    return c;
}

static size_t utf8_enc(uint32_t c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xc0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xe0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

/* Unicode White_Space (what str::split_whitespace splits on). */
static bool uc_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

/* char::is_alphanumeric, approximately (see above). */
static bool uc_alnum(uint32_t c)
{
    static const uint32_t non[][2] = { /* non-alphanumeric ranges above Latin-1 */
        { 0x02c2, 0x02c5 }, { 0x02d2, 0x02df }, { 0x0300, 0x036f }, { 0x037e, 0x037e },
        { 0x0387, 0x0387 }, { 0x055a, 0x055f }, { 0x0589, 0x058a }, { 0x05be, 0x05be },
        { 0x060c, 0x060d }, { 0x061b, 0x061f }, { 0x066a, 0x066d }, { 0x06d4, 0x06d4 },
        { 0x0964, 0x0965 }, { 0x0e4f, 0x0e4f }, { 0x0e5a, 0x0e5b }, { 0x1680, 0x1680 },
        { 0x2000, 0x206f }, { 0x20a0, 0x20ff }, { 0x2190, 0x23ff }, { 0x2500, 0x27bf },
        { 0x2e00, 0x2e7f }, { 0x3000, 0x3004 }, { 0x3008, 0x3020 }, { 0x3030, 0x3030 },
        { 0xfe30, 0xfe4f }, { 0xfeff, 0xfeff }, { 0xff01, 0xff0f }, { 0xff1a, 0xff20 },
        { 0xff3b, 0xff40 }, { 0xff5b, 0xff65 }, { 0xfffd, 0xfffd }, { 0x1f000, 0x1faff },
    };

    if (c < 0x80)
        return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    if (c < 0x100)
        return c == 0xaa || c == 0xb2 || c == 0xb3 || c == 0xb5 || c == 0xb9 || c == 0xba ||
               (c >= 0xbc && c <= 0xbe) || (c >= 0xc0 && c != 0xd7 && c != 0xf7);
    for (size_t i = 0; i < sizeof(non) / sizeof(non[0]); i++)
        if (c >= non[i][0] && c <= non[i][1])
            return false;
    return true;
}

/* Simple lowercase mapping (one code point to one). */
static uint32_t uc_lower(uint32_t c)
{
    if (c < 0x80)
        return c >= 'A' && c <= 'Z' ? c + 0x20 : c;
    if ((c >= 0xc0 && c <= 0xde && c != 0xd7) || (c >= 0x391 && c <= 0x3ab && c != 0x3a2) ||
        (c >= 0x410 && c <= 0x42f) || (c >= 0xff21 && c <= 0xff3a))
        return c + 0x20;
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14a && c <= 0x177) || (c >= 0x460 && c <= 0x481) ||
        (c >= 0x48a && c <= 0x4bf) || (c >= 0x4d0 && c <= 0x52f) || (c >= 0x1e00 && c <= 0x1eff))
        return (c & 1) ? c : c + 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e))
        return (c & 1) ? c + 1 : c;
    if (c >= 0x400 && c <= 0x40f)
        return c + 0x50;
    if (c >= 0x531 && c <= 0x556)
        return c + 0x30;
    switch (c) {
    case 0x178: return 0xff;
    case 0x386: return 0x3ac;
    case 0x388: case 0x389: case 0x38a: return c + 0x25;
    case 0x38c: return 0x3cc;
    case 0x38e: case 0x38f: return c + 0x3f;
    case 0x4c0: return 0x4cf;
    default: return c;
    }
}


void filter_tok_init(struct filter_tok *t, const filter_text_params_t *tp, const char *s, bool doc)
{
    t->tp = tp;
    t->p = (const unsigned char *)s;
    t->doc = doc;
    t->len = t->wlen = t->wchars = t->n = 0;
}

static bool ftok_sep(const struct filter_tok *t, uint32_t c)
{
    return t->tp->tokenizer == FILTER_TOK_WHITESPACE ? uc_space(c) : !uc_alnum(c);
}

/* Append c to the token (dropped beyond FILTER_TOKEN_CAP); returns 1,
 * the characters it counts for. */
static size_t ftok_put(struct filter_tok *t, uint32_t c)
{
    char enc[4];
    size_t n = utf8_enc(c, enc);

    if (t->len + n <= FILTER_TOKEN_CAP) {
        memcpy(t->buf + t->len, enc, n);
        t->len += n;
    }
    return 1;
}

/* Next raw token, lowercased into buf; returns its length in characters,
 * 0 at the end of the text. */
static size_t ftok_raw(struct filter_tok *t)
{
    size_t adv, chars = 0;
    uint32_t c;

    while (*t->p != '\0' && ftok_sep(t, utf8_dec(t->p, &adv)))
        t->p += adv;
    t->len = 0;
    while (*t->p != '\0' && !ftok_sep(t, c = utf8_dec(t->p, &adv))) {
        t->p += adv;
        if (t->tp->lowercase) {
            /* str::to_lowercase: a final sigma (not followed by a letter)
             * is ς; capital I with dot is "i" + combining dot above */
            size_t nadv;
            bool last = *t->p == '\0' || !uc_alnum(utf8_dec(t->p, &nadv));
            if (c == 0x3a3 && chars > 0 && last)
                c = 0x3c2;
            else if (c == 0x130)
                chars += ftok_put(t, 'i'), c = 0x307;
            else
                c = uc_lower(c);
        }
        chars += ftok_put(t, c);
    }
    return chars;
}

/* Bytes of the first n characters of buf[0..len). */
static size_t ftok_prefix_bytes(const struct filter_tok *t, size_t len, size_t n)
{
    size_t b = 0;

    for (size_t k = 0; k < n && b < len; k++) {
        b++;
        while (b < len && ((unsigned char)t->buf[b] & 0xc0) == 0x80)
            b++;
    }
    return b;
}

/* The next prefix of the pending word of a prefix document. */
static bool ftok_prefix_next(struct filter_tok *t)
{
    if (t->n > t->tp->max_token_len) {
        t->n = 0;
        return false;
    }
    if (t->n < t->wchars) {
        t->len = ftok_prefix_bytes(t, t->wlen, t->n);
        t->n++;
    } else {
        t->len = t->wlen;
        t->n = 0;
    }
    return true;
}

/* Advance to the next token (buf[0..len)); false at the end. */
bool filter_tok_next(struct filter_tok *t)
{
    const filter_text_params_t *tp = t->tp;
    size_t chars;

    if (t->n > 0 && ftok_prefix_next(t))
        return true;
    while ((chars = ftok_raw(t)) > 0) {
        if (chars < tp->min_token_len)
            continue;
        if (tp->tokenizer != FILTER_TOK_PREFIX) {
            if (chars > tp->max_token_len)
                continue;
            return true;
        }
        if (!t->doc) { /* a query word: cut to max_token_len */
            if (chars > tp->max_token_len)
                t->len = ftok_prefix_bytes(t, t->len, tp->max_token_len);
            return true;
        }
        /* Qdrant starts at min_token_len even when it is 0 (an empty
         * prefix no query can ask for): start at 1 */
        t->wlen = t->len;
        t->wchars = chars;
        t->n = tp->min_token_len > 0 ? tp->min_token_len : 1;
        if (ftok_prefix_next(t))
            return true;
    }
    return false;
}

/* A copy of t that goes on from where t is (its own buffer). */
void filter_tok_fork(struct filter_tok *dst, const struct filter_tok *src)
{
    size_t keep = src->wlen > src->len ? src->wlen : src->len;

    dst->tp = src->tp;
    dst->p = src->p;
    dst->doc = src->doc;
    dst->len = src->len;
    dst->wlen = src->wlen;
    dst->wchars = src->wchars;
    dst->n = src->n;
    memcpy(dst->buf, src->buf, keep);
}

void filter_tokenize(const filter_text_params_t *tp, const char *text, bool doc,
                     bool (*fn)(void *arg, const char *tok, size_t len), void *arg)
{
    struct filter_tok t;

    if (text == NULL)
        return;
    filter_tok_init(&t, tp, text, doc);
    while (filter_tok_next(&t))
        if (!fn(arg, t.buf, t.len))
            return;
}
