/*
 * ptid.h - point identifiers: unsigned 64-bit integers or UUIDs.
 *
 * Qdrant accepts a point id as a JSON number (u64) or a JSON string holding
 * a UUID in any of the forms of Rust's uuid crate: hyphenated
 * ("550e8400-e29b-41d4-a716-446655440000"), simple (32 hex digits), braced
 * ("{...}") and URN ("urn:uuid:..."), any case.  veclog normalises every
 * UUID to the canonical lower-case hyphenated form when it formats one.
 *
 * Key encoding (used as RocksDB keys and WAL bytes; order matters because
 * scroll walks keys in order):
 *   integer id : 0x00, 8 bytes big-endian value            (9 bytes)
 *   uuid id    : 0x01, 16 bytes of the UUID in text order  (17 bytes)
 * so every integer id sorts before every UUID, integers numerically and
 * UUIDs by their canonical text, which is Qdrant's order for scroll.
 */
#ifndef VECLOG_PTID_H
#define VECLOG_PTID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "err.h"

#define PTID_KEY_MAX 17
#define PTID_STR_MAX 37 /* 36 characters of a hyphenated UUID + NUL */

enum ptid_kind { PTID_NUM = 0, PTID_UUID = 1 };

typedef struct ptid {
    uint8_t kind;       /* enum ptid_kind */
    uint64_t num;       /* when kind == PTID_NUM */
    uint8_t uuid[16];   /* when kind == PTID_UUID */
} ptid_t;

/* Parse a JSON id (number or UUID string).  Rejects negative numbers,
 * fractions, numbers above 2^53 that cJSON cannot carry exactly, and any
 * string that is not a UUID; fills err with a message naming the value. */
int ptid_from_json(const cJSON *j, ptid_t *out, err_t *err);

/* Parse a UUID or decimal integer from text (path segments, CLI args). */
int ptid_from_str(const char *s, ptid_t *out, err_t *err);

/* New JSON value for the id: a number or a canonical UUID string.
 * Caller owns the result (cJSON_Delete).  NULL on allocation failure. */
cJSON *ptid_to_json(const ptid_t *id);

/* Text form into buf (>= PTID_STR_MAX bytes): decimal or canonical UUID. */
void ptid_format(const ptid_t *id, char *buf, size_t cap);

/* Key encoding described above; returns its length. */
size_t ptid_encode(const ptid_t *id, uint8_t *buf);

/* Decode a key; returns bytes consumed, or 0 if malformed. */
size_t ptid_decode(const uint8_t *buf, size_t len, ptid_t *out);

/* Total order consistent with the key encoding (<0, 0, >0). */
int ptid_cmp(const ptid_t *a, const ptid_t *b);

bool ptid_eq(const ptid_t *a, const ptid_t *b);

/* 64-bit hash for hash tables. */
uint64_t ptid_hash(const ptid_t *id);

static inline ptid_t ptid_num(uint64_t n)
{
    ptid_t id = { .kind = PTID_NUM, .num = n, .uuid = { 0 } };
    return id;
}

#endif
