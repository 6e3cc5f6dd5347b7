/*
 * ptid.c - point id parsing, formatting and key encoding; see ptid.h.
 */
#include "ptid.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Parse exactly 32 hex digits, allowing hyphens only at the canonical
 * positions when hyphenated is true. */
static bool uuid_parse_body(const char *s, size_t len, uint8_t out[16])
{
    static const size_t dash_at[] = { 8, 13, 18, 23 };
    size_t i, d = 0, n = 0;
    bool hyphenated = (len == 36);

    if (len != 32 && len != 36)
        return false;
    for (i = 0; i < len; i++) {
        if (hyphenated && d < 4 && i == dash_at[d]) {
            if (s[i] != '-')
                return false;
            d++;
            continue;
        }
        int v = hexval((unsigned char)s[i]);
        if (v < 0)
            return false;
        if (n % 2 == 0)
            out[n / 2] = (uint8_t)(v << 4);
        else
            out[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 32;
}

/* As Rust's uuid crate (Qdrant) parses: simple (32), hyphenated (36), and
 * only the hyphenated form inside braces (38) or after "urn:uuid:" (45). */
static bool uuid_parse(const char *s, uint8_t out[16])
{
    size_t len = strlen(s);

    if (len == 45 && strncmp(s, "urn:uuid:", 9) == 0)
        return uuid_parse_body(s + 9, 36, out);
    if (len == 38 && s[0] == '{' && s[len - 1] == '}')
        return uuid_parse_body(s + 1, 36, out);
    return uuid_parse_body(s, len, out);
}

int ptid_from_json(const cJSON *j, ptid_t *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (cJSON_IsNumber(j)) {
        double v = j->valuedouble;
        /* 2^53 itself is refused: 2^53 + 1 parses to the same double */
        if (v < 0 || v != floor(v) || v >= 9007199254740992.0)
            return err_set(err, ERR_INVALID,
                           "point id %.16g is not an unsigned integer below 2^53", v);
        out->kind = PTID_NUM;
        out->num = (uint64_t)v;
        return ERR_OK;
    }
    if (cJSON_IsString(j)) {
        if (!uuid_parse(j->valuestring, out->uuid))
            return err_set(err, ERR_INVALID,
                           "point id \"%.64s\" is not a valid UUID", j->valuestring);
        out->kind = PTID_UUID;
        return ERR_OK;
    }
    return err_set(err, ERR_INVALID, "point id must be an unsigned integer or a UUID string");
}

int ptid_from_str(const char *s, ptid_t *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (*s != '\0' && strspn(s, "0123456789") == strlen(s)) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno == 0 && *end == '\0') {
            out->kind = PTID_NUM;
            out->num = (uint64_t)v;
            return ERR_OK;
        }
        /* too large for a u64: 32 decimal digits are a simple-form UUID */
        if (!uuid_parse(s, out->uuid))
            return err_set(err, ERR_INVALID, "point id %.64s is out of range", s);
        out->kind = PTID_UUID;
        return ERR_OK;
    }
    if (!uuid_parse(s, out->uuid))
        return err_set(err, ERR_INVALID,
                       "point id \"%.64s\" is neither an unsigned integer nor a UUID", s);
    out->kind = PTID_UUID;
    return ERR_OK;
}

void ptid_format(const ptid_t *id, char *buf, size_t cap)
{
    if (id->kind == PTID_NUM) {
        snprintf(buf, cap, "%" PRIu64, id->num);
        return;
    }
    const uint8_t *u = id->uuid;
    snprintf(buf, cap,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10],
             u[11], u[12], u[13], u[14], u[15]);
}

cJSON *ptid_to_json(const ptid_t *id)
{
    char buf[PTID_STR_MAX];

    if (id->kind == PTID_NUM)
        return cJSON_CreateNumber((double)id->num);
    ptid_format(id, buf, sizeof(buf));
    return cJSON_CreateString(buf);
}

size_t ptid_encode(const ptid_t *id, uint8_t *buf)
{
    if (id->kind == PTID_NUM) {
        buf[0] = PTID_NUM;
        for (int i = 0; i < 8; i++)
            buf[1 + i] = (uint8_t)(id->num >> (56 - 8 * i));
        return 9;
    }
    buf[0] = PTID_UUID;
    memcpy(buf + 1, id->uuid, 16);
    return 17;
}

size_t ptid_decode(const uint8_t *buf, size_t len, ptid_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len >= 9 && buf[0] == PTID_NUM) {
        out->kind = PTID_NUM;
        for (int i = 0; i < 8; i++)
            out->num = (out->num << 8) | buf[1 + i];
        return 9;
    }
    if (len >= 17 && buf[0] == PTID_UUID) {
        out->kind = PTID_UUID;
        memcpy(out->uuid, buf + 1, 16);
        return 17;
    }
    return 0;
}

int ptid_cmp(const ptid_t *a, const ptid_t *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if (a->kind == PTID_NUM)
        return a->num < b->num ? -1 : (a->num > b->num ? 1 : 0);
    return memcmp(a->uuid, b->uuid, 16);
}

bool ptid_eq(const ptid_t *a, const ptid_t *b)
{
    return ptid_cmp(a, b) == 0;
}

uint64_t ptid_hash(const ptid_t *id)
{
    uint64_t h;

    if (id->kind == PTID_NUM) {
        h = id->num;
    } else {
        uint64_t lo, hi;
        memcpy(&lo, id->uuid, 8);
        memcpy(&hi, id->uuid + 8, 8);
        h = lo ^ (hi * 0x9e3779b97f4a7c15ULL) ^ 0x5bd1e995ULL;
    }
    /* splitmix64 finaliser: sequential integer ids spread over buckets */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}
