/*
 * catalog_index.c - payload index definitions of a collection: validation
 * of Qdrant's PayloadFieldSchema, storage in config.json, and the
 * payload_schema view of CollectionInfo.  Part of the catalog module.
 */
#include "catalog_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll_internal.h" /* COLL_INDEX_GEO / _TEXT, coll_index_set_text */
#include "filter.h"
#include "log.h"

/* ---- payload indexes -------------------------------------------------- */

/*
 * IN-MEMORY INDEXES
 * Definitions of type keyword, integer, bool and uuid (string or object
 * form) also get an in-memory equality index in the collection
 * (coll_index_set), which filters with match.value / match.any conditions
 * on that field use to pick candidates; float, datetime and integer
 * (unless its "range" param is false) get an ordered one, which range
 * conditions use; geo gets grid cells for geo_* conditions; text gets an
 * inverted index (coll_index_set_text with the tokenizer params), which
 * also switches match.text / text_any / phrase on the field to token
 * semantics (below).  Otherwise the results are exactly those of a full
 * scan.  Such an index is not persisted: it is rebuilt from memory
 * whenever the collection is opened (catalog_index_apply) and when a
 * definition is created, replaced or deleted.  Two concurrent requests on
 * the same field may leave the in-memory index of the other request's
 * type until the next open; that changes speed, never results.
 */

/*
 * Qdrant's payload indexes (PUT /collections/{c}/index) only speed up
 * filtering there; Qdrant guarantees the same results with or without them.
 * veclog evaluates every filter exactly on the stored payload (an index
 * only narrows which points are evaluated: IN-MEMORY INDEXES below).  A
 * definition is validated as strictly as Qdrant's
 * PayloadFieldSchema (and stricter: unknown fields are rejected), stored in
 * config.json's "payload_schema" section, and reported in
 * CollectionInfo.payload_schema, so clients that create indexes (or check
 * that they exist) work unchanged.
 *
 * A full-text ("text") index changes results, in Qdrant and here:
 * `match: {"text" | "text_any" | "phrase"}` on that field goes from
 * substring matching to token matching with the index's tokenizer,
 * lowercase, min_token_len, max_token_len and phrase_matching (filter.c,
 * coll_textidx.c).  Its stopwords, stemmer and ascii_folding params are
 * stored but not applied: with them, results can differ from Qdrant's.
 * A "geo" index gives candidates to geo_* conditions (same results).
 *
 * Stored form of one index (what index_schema_parse returns): the type name
 * for the string form of PayloadFieldSchema, or for the object form the
 * params as Qdrant serialises them (PayloadIndexInfo.params): "type" first,
 * then the fields in Qdrant's order, absent optional ones left out except
 * those Qdrant always writes (integer lookup/range/is_principal, float and
 * datetime is_principal as null; text tokenizer as "word"), language
 * aliases ("en") replaced by their names, stopword sets sorted and
 * deduplicated (Qdrant keeps them in BTreeSets).
 */

enum ikind { K_BOOL, K_MEMORY, K_UINT, K_TOKENIZER, K_STOPWORDS, K_STEMMER };

typedef struct ifield {
    const char *name;
    enum ikind kind;
    bool always;              /* reported when absent (null, or the default) */
} ifield_t;

#define IF_ON_DISK { "on_disk", K_BOOL, false }
#define IF_MEMORY { "memory", K_MEMORY, false }
#define IF_HNSW { "enable_hnsw", K_BOOL, false }
#define IF_END { NULL, K_BOOL, false }

/* Fields of each *IndexParams besides "type", in Qdrant's (serde) order. */
static const ifield_t kw_fields[] = {
    { "is_tenant", K_BOOL, false }, IF_ON_DISK, IF_MEMORY, IF_HNSW, { "prefix", K_BOOL, false },
    IF_END,
};
static const ifield_t int_fields[] = {
    { "lookup", K_BOOL, true }, { "range", K_BOOL, true }, { "is_principal", K_BOOL, true },
    IF_ON_DISK, IF_MEMORY, IF_HNSW, IF_END,
};
static const ifield_t principal_fields[] = { /* float, datetime */
    { "is_principal", K_BOOL, true }, IF_ON_DISK, IF_MEMORY, IF_HNSW, IF_END,
};
static const ifield_t plain_fields[] = { IF_ON_DISK, IF_MEMORY, IF_HNSW, IF_END }; /* geo, bool */
static const ifield_t text_fields[] = {
    { "tokenizer", K_TOKENIZER, true }, { "min_token_len", K_UINT, false },
    { "max_token_len", K_UINT, false }, { "lowercase", K_BOOL, false },
    { "ascii_folding", K_BOOL, false }, { "phrase_matching", K_BOOL, false },
    { "stopwords", K_STOPWORDS, false }, IF_ON_DISK, IF_MEMORY, { "stemmer", K_STEMMER, false },
    IF_HNSW, IF_END,
};
static const ifield_t uuid_fields[] = {
    { "is_tenant", K_BOOL, false }, IF_ON_DISK, IF_MEMORY, IF_HNSW, IF_END,
};

/* PayloadSchemaType, in the spec's order */
static const struct itype {
    const char *name;
    const ifield_t *fields;
} itypes[] = {
    { "keyword", kw_fields }, { "integer", int_fields }, { "float", principal_fields },
    { "geo", plain_fields }, { "text", text_fields }, { "bool", plain_fields },
    { "datetime", principal_fields }, { "uuid", uuid_fields },
};
#define N_ITYPES (sizeof(itypes) / sizeof(itypes[0]))
#define ITYPE_LIST "\"keyword\", \"integer\", \"float\", \"geo\", \"text\", \"bool\", \"datetime\", \"uuid\""

/* Qdrant's Language (stopwords) and SnowballLanguage: name and the alias
 * serde also accepts. */
static const char *const stop_langs[][2] = {
    { "arabic", "ar" }, { "azerbaijani", "az" }, { "basque", "eu" }, { "bengali", "bn" },
    { "catalan", "ca" }, { "chinese", "zh" }, { "danish", "da" }, { "dutch", "nl" },
    { "english", "en" }, { "finnish", "fi" }, { "french", "fr" }, { "german", "de" },
    { "greek", "el" }, { "hebrew", "he" }, { "hinglish", "hi-en" }, { "hungarian", "hu" },
    { "indonesian", "id" }, { "italian", "it" }, { "japanese", "jp" }, { "kazakh", "kk" },
    { "nepali", "ne" }, { "norwegian", "no" }, { "portuguese", "pt" }, { "romanian", "ro" },
    { "russian", "ru" }, { "slovene", "sl" }, { "spanish", "es" }, { "swedish", "sv" },
    { "tajik", "tg" }, { "turkish", "tr" }, { NULL, NULL },
};
static const char *const snowball_langs[][2] = {
    { "arabic", "ar" }, { "armenian", "hy" }, { "danish", "da" }, { "dutch", "nl" },
    { "english", "en" }, { "finnish", "fi" }, { "french", "fr" }, { "german", "de" },
    { "greek", "el" }, { "hungarian", "hu" }, { "italian", "it" }, { "norwegian", "no" },
    { "portuguese", "pt" }, { "romanian", "ro" }, { "russian", "ru" }, { "spanish", "es" },
    { "swedish", "sv" }, { "tamil", "ta" }, { "turkish", "tr" }, { NULL, NULL },
};

static const char *lang_name(const char *const (*tab)[2], const cJSON *v)
{
    if (!cJSON_IsString(v))
        return NULL;
    for (; (*tab)[0] != NULL; tab++)
        if (strcmp(v->valuestring, (*tab)[0]) == 0 || strcmp(v->valuestring, (*tab)[1]) == 0)
            return (*tab)[0];
    return NULL;
}

static const struct itype *itype_find(const cJSON *v)
{
    for (size_t i = 0; cJSON_IsString(v) && i < N_ITYPES; i++)
        if (strcmp(v->valuestring, itypes[i].name) == 0)
            return &itypes[i];
    return NULL;
}

static bool str_in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(s, *list) == 0)
            return true;
    return false;
}

static int sorted_str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A sorted, deduplicated JSON array of the strings in v (a JSON array);
 * each item goes through canon (NULL: taken as it is), which returns NULL
 * to reject it. */
static int str_set(const cJSON *v, const char *const (*canon)[2], const char *where,
                   const char *what, cJSON **out, err_t *err)
{
    size_t n = (size_t)cJSON_GetArraySize(v), k = 0;
    const char **s = malloc((n ? n : 1) * sizeof(*s));
    const cJSON *it;
    int rc = ERR_OK;

    *out = NULL;
    if (s == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(it, v) {
        const char *name = canon ? lang_name(canon, it) : cJSON_IsString(it) ? it->valuestring : NULL;
        if (name == NULL) {
            rc = cJSON_IsString(it) ? err_set(err, ERR_INVALID, "%s[%zu]: unknown %s \"%s\"", where, k,
                                              what, it->valuestring)
                                    : err_set(err, ERR_INVALID, "%s[%zu]: expected a string", where, k);
            break;
        }
        s[k++] = name;
    }
    if (rc == ERR_OK) {
        qsort(s, k, sizeof(*s), sorted_str_cmp);
        *out = cJSON_CreateArray();
        for (size_t i = 0; *out != NULL && i < k; i++)
            if (i == 0 || strcmp(s[i], s[i - 1]) != 0)
                cJSON_AddItemToArray(*out, cJSON_CreateString(s[i]));
        if (*out == NULL)
            rc = err_set(err, ERR_NOMEM, "no memory");
    }
    free(s);
    return rc;
}

/* StopwordsInterface: a Language, or {"languages": [Language], "custom": [string]}. */
static int stopwords_parse(const cJSON *v, const char *where, cJSON **out, err_t *err)
{
    static const char *const keys[] = { "languages", "custom", NULL };
    const char *name = lang_name(stop_langs, v);
    const cJSON *it;

    *out = NULL;
    if (name != NULL) {
        *out = cJSON_CreateString(name);
        return *out ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
    }
    if (cJSON_IsString(v))
        return err_set(err, ERR_INVALID, "%s: unknown language \"%s\"", where, v->valuestring);
    if (!cJSON_IsObject(v))
        return err_set(err, ERR_INVALID,
                       "%s: expected a language or an object with \"languages\" and/or \"custom\"",
                       where);
    *out = cJSON_CreateObject();
    if (*out == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(it, v) {
        char sub[512];
        cJSON *set = NULL;
        int rc;
        if (!str_in(it->string, keys)) {
            rc = err_set(err, ERR_INVALID, "%s: unknown field \"%s\"", where, it->string);
        } else if (cJSON_IsNull(it)) {
            continue;
        } else {
            snprintf(sub, sizeof(sub), "%s.%s", where, it->string);
            if (!cJSON_IsArray(it))
                rc = err_set(err, ERR_INVALID, "%s: expected a list of %s", sub,
                             it->string[0] == 'l' ? "languages" : "strings");
            else
                rc = str_set(it, it->string[0] == 'l' ? stop_langs : NULL, sub, "language", &set,
                             err);
        }
        if (rc == ERR_OK && !cJSON_AddItemToObject(*out, it->string, set)) {
            cJSON_Delete(set);
            rc = err_set(err, ERR_NOMEM, "no memory");
        }
        if (rc != ERR_OK) {
            cJSON_Delete(*out);
            *out = NULL;
            return rc;
        }
    }
    /* Qdrant's order: languages, then custom */
    cJSON *custom = cJSON_DetachItemFromObjectCaseSensitive(*out, "custom");
    if (custom != NULL)
        cJSON_AddItemToObject(*out, "custom", custom);
    return ERR_OK;
}

/* StemmingAlgorithm: {"type": "snowball", "language": SnowballLanguage} or
 * {"type": "none"}. */
static int stemmer_parse(const cJSON *v, const char *where, cJSON **out, err_t *err)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
    const cJSON *lang = cJSON_GetObjectItemCaseSensitive(v, "language"), *it;
    bool snowball = cJSON_IsString(type) && strcmp(type->valuestring, "snowball") == 0;
    const char *name;

    *out = NULL;
    if (!cJSON_IsObject(v))
        return err_set(err, ERR_INVALID, "%s: expected an object with \"type\"", where);
    if (type == NULL)
        return err_set(err, ERR_INVALID, "%s: missing field \"type\"", where);
    if (!snowball && !(cJSON_IsString(type) && strcmp(type->valuestring, "none") == 0))
        return err_set(err, ERR_INVALID, "%s.type: expected \"snowball\" or \"none\"", where);
    cJSON_ArrayForEach(it, v)
        if (strcmp(it->string, "type") != 0 && !(snowball && strcmp(it->string, "language") == 0))
            return err_set(err, ERR_INVALID, "%s: unknown field \"%s\"%s", where, it->string,
                           snowball ? "" : " for stemmer type \"none\"");
    if (snowball && lang == NULL)
        return err_set(err, ERR_INVALID, "%s: missing field \"language\"", where);
    if (snowball && (name = lang_name(snowball_langs, lang)) == NULL)
        return cJSON_IsString(lang)
                   ? err_set(err, ERR_INVALID, "%s.language: unknown snowball language \"%s\"",
                             where, lang->valuestring)
                   : err_set(err, ERR_INVALID, "%s.language: expected a string", where);
    *out = cJSON_CreateObject();
    if (*out == NULL || !cJSON_AddStringToObject(*out, "type", snowball ? "snowball" : "none") ||
        (snowball && !cJSON_AddStringToObject(*out, "language", name))) {
        cJSON_Delete(*out);
        *out = NULL;
        return err_set(err, ERR_NOMEM, "no memory");
    }
    return ERR_OK;
}

/* One field of an *IndexParams object (not null): its stored value. */
static int ifield_parse(const ifield_t *f, const cJSON *v, const char *where, cJSON **out,
                        err_t *err)
{
    static const char *const memory[] = { "cold", "cached", "pinned", NULL };
    static const char *const tokenizers[] = { "prefix", "whitespace", "word", "multilingual", NULL };
    char sub[256];

    *out = NULL;
    snprintf(sub, sizeof(sub), "%s.%s", where, f->name);
    switch (f->kind) {
    case K_BOOL:
        if (!cJSON_IsBool(v))
            return err_set(err, ERR_INVALID, "%s: expected a boolean", sub);
        break;
    case K_UINT:
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9.0e15 ||
            v->valuedouble != (double)(uint64_t)v->valuedouble)
            return err_set(err, ERR_INVALID, "%s: expected an unsigned integer", sub);
        break;
    case K_MEMORY:
        if (!cJSON_IsString(v) || !str_in(v->valuestring, memory))
            return err_set(err, ERR_INVALID, "%s: expected one of \"cold\", \"cached\", \"pinned\"", sub);
        break;
    case K_TOKENIZER:
        if (!cJSON_IsString(v) || !str_in(v->valuestring, tokenizers))
            return err_set(err, ERR_INVALID,
                           "%s: expected one of \"prefix\", \"whitespace\", \"word\", \"multilingual\"",
                           sub);
        break;
    case K_STOPWORDS:
        return stopwords_parse(v, sub, out, err);
    case K_STEMMER:
        return stemmer_parse(v, sub, out, err);
    }
    *out = cJSON_Duplicate(v, 1);
    return *out ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
}

/* PayloadSchemaParams object of type t: its stored form in *out. */
static int iparams_parse(const struct itype *t, const cJSON *s, const char *where, cJSON **out,
                         err_t *err)
{
    const cJSON *it;
    const ifield_t *f;
    int rc = ERR_OK;

    cJSON_ArrayForEach(it, s) {
        if (strcmp(it->string, "type") == 0)
            continue;
        for (f = t->fields; f->name && strcmp(f->name, it->string) != 0; f++)
            ;
        if (f->name == NULL)
            return err_set(err, ERR_INVALID, "%s: unknown field \"%s\" for a %s index", where,
                           it->string, t->name);
        /* the tokenizer is not nullable in Qdrant (a plain enum with a default) */
        if (cJSON_IsNull(it) && f->kind == K_TOKENIZER)
            return err_set(err, ERR_INVALID, "%s.%s: expected one of \"prefix\", \"whitespace\","
                           " \"word\", \"multilingual\"", where, it->string);
    }
    *out = cJSON_CreateObject();
    if (*out == NULL || !cJSON_AddStringToObject(*out, "type", t->name))
        rc = err_set(err, ERR_NOMEM, "no memory");
    for (f = t->fields; rc == ERR_OK && f->name; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, f->name);
        cJSON *val = NULL;
        if (v != NULL && !cJSON_IsNull(v))
            rc = ifield_parse(f, v, where, &val, err);
        else if (f->always)
            val = f->kind == K_TOKENIZER ? cJSON_CreateString("word") : cJSON_CreateNull();
        else
            continue;
        if (rc == ERR_OK && (val == NULL || !cJSON_AddItemToObject(*out, f->name, val))) {
            cJSON_Delete(val);
            rc = err_set(err, ERR_NOMEM, "no memory");
        }
    }
    if (rc == ERR_OK && t->fields == int_fields &&
        cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(*out, "lookup")) &&
        cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(*out, "range")))
        rc = err_set(err, ERR_INVALID,
                     "%s.lookup: the 'lookup' and 'range' capabilities can't be both disabled", where);
    if (rc != ERR_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}

/* Validate a PayloadFieldSchema (error paths start at where) and build its
 * stored form (see above); *out owned by the caller. */
static int index_schema_parse(const cJSON *s, const char *where, cJSON **out, err_t *err)
{
    const struct itype *t;

    *out = NULL;
    if (cJSON_IsString(s)) {
        if (itype_find(s) == NULL)
            return err_set(err, ERR_INVALID, "%s: unknown type \"%s\", expected one of " ITYPE_LIST,
                           where, s->valuestring);
        *out = cJSON_CreateString(s->valuestring);
        return *out ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
    }
    if (!cJSON_IsObject(s))
        return err_set(err, ERR_INVALID,
                       "%s: expected a type name (" ITYPE_LIST ") or an object with \"type\"", where);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    if (type == NULL)
        return err_set(err, ERR_INVALID, "%s: missing field \"type\"", where);
    if ((t = itype_find(type)) == NULL)
        return cJSON_IsString(type)
                   ? err_set(err, ERR_INVALID, "%s.type: unknown type \"%s\", expected one of " ITYPE_LIST,
                             where, type->valuestring)
                   : err_set(err, ERR_INVALID, "%s.type: expected one of " ITYPE_LIST, where);
    return iparams_parse(t, s, where, out, err);
}

/* The payload index definitions in a config.json just read: moved from
 * h->config to h->schema.  Entries that do not validate (written by a
 * later veclog?) are dropped with a warning rather than failing the open. */
void catalog_index_schema_load(catalog_handle_t *h)
{
    cJSON *s = cJSON_DetachItemFromObjectCaseSensitive(h->config, SCHEMA_KEY);
    const cJSON *it;
    err_t e;

    if (s == NULL)
        return;
    if (!cJSON_IsObject(s)) {
        log_warn("catalog", "%s: %s in %s is not an object; ignored", h->name, SCHEMA_KEY, CONFIG_FILE);
        cJSON_Delete(s);
        return;
    }
    h->schema = cJSON_CreateObject();
    cJSON_ArrayForEach(it, s) {
        cJSON *norm = NULL;
        int rc = filter_path_is_valid(it->string)
                     ? index_schema_parse(it, "field_schema", &norm, &e)
                     : err_set(&e, ERR_INVALID, "not a valid key path");
        if (rc == ERR_OK && (h->schema == NULL || !cJSON_AddItemToObject(h->schema, it->string, norm)))
            rc = err_set(&e, ERR_NOMEM, "no memory");
        if (rc != ERR_OK) {
            cJSON_Delete(norm);
            log_warn("catalog", "%s: payload index on \"%s\" dropped: %s", h->name, it->string, e.msg);
        }
    }
    cJSON_Delete(s);
}

/* The coll index kind of a stored definition, or 0 if it has none. */
static int schema_kind(const cJSON *schema)
{
    const cJSON *type = cJSON_IsObject(schema) ? cJSON_GetObjectItemCaseSensitive(schema, "type")
                                               : schema;
    static const struct { const char *name; int kind; } kinds[] = {
        { "keyword", COLL_INDEX_KEYWORD }, { "integer", COLL_INDEX_INTEGER },
        { "bool", COLL_INDEX_BOOL }, { "uuid", COLL_INDEX_UUID },
        { "float", COLL_INDEX_FLOAT }, { "datetime", COLL_INDEX_DATETIME },
        { "geo", COLL_INDEX_GEO }, { "text", COLL_INDEX_TEXT },
    };

    for (size_t i = 0; cJSON_IsString(type) && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(type->valuestring, kinds[i].name) != 0)
            continue;
        if (kinds[i].kind == COLL_INDEX_KEYWORD && cJSON_IsObject(schema) &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(schema, "is_tenant")))
            return COLL_INDEX_KEYWORD | COLL_INDEX_TENANT;
        if (kinds[i].kind != COLL_INDEX_INTEGER)
            return kinds[i].kind;
        /* integer: an ordered index too unless "range" is false */
        const cJSON *range = cJSON_IsObject(schema)
                                 ? cJSON_GetObjectItemCaseSensitive(schema, "range") : NULL;
        return cJSON_IsFalse(range) ? COLL_INDEX_INTEGER : COLL_INDEX_INTEGER | COLL_INDEX_RANGE;
    }
    return 0;
}

/* The tokenizer params of a stored text definition (TextIndexParams;
 * absent fields take Qdrant's defaults: word, lowercase, no length
 * limits, no phrase matching). */
static void schema_text_params(const cJSON *schema, filter_text_params_t *tp)
{
    static const char *const toks[] = { "word", "whitespace", "prefix", "multilingual" };
    const cJSON *v;

    *tp = (filter_text_params_t){ .tokenizer = FILTER_TOK_WORD, .lowercase = true,
                                  .max_token_len = SIZE_MAX };
    if (!cJSON_IsObject(schema))
        return;
    v = cJSON_GetObjectItemCaseSensitive(schema, "tokenizer");
    for (int i = 0; cJSON_IsString(v) && i < 4; i++)
        if (strcmp(v->valuestring, toks[i]) == 0)
            tp->tokenizer = i; /* same order as enum filter_tokenizer */
    v = cJSON_GetObjectItemCaseSensitive(schema, "min_token_len");
    if (cJSON_IsNumber(v))
        tp->min_token_len = (size_t)v->valuedouble;
    v = cJSON_GetObjectItemCaseSensitive(schema, "max_token_len");
    if (cJSON_IsNumber(v))
        tp->max_token_len = (size_t)v->valuedouble;
    tp->lowercase = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(schema, "lowercase"));
    tp->phrase_matching =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(schema, "phrase_matching"));
}

/* Make h->coll's in-memory index on field match a definition of kind
 * (0: none); tp: the params of a text definition. */
static void index_sync(catalog_handle_t *h, const char *field, int kind,
                       const filter_text_params_t *tp)
{
    err_t e;
    int rc;

    if (h->coll == NULL)
        return;
    if (kind == 0) {
        coll_index_drop(h->coll, field);
        return;
    }
    rc = kind == COLL_INDEX_TEXT ? coll_index_set_text(h->coll, field, tp, &e)
                                 : coll_index_set(h->coll, field, kind, &e);
    if (rc != ERR_OK) {
        coll_index_drop(h->coll, field);
        log_warn("catalog", "%s: in-memory index on \"%s\" not built: %s", h->name, field, e.msg);
    }
}

void catalog_index_apply(catalog_handle_t *h)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, h->schema) {
        filter_text_params_t tp;
        schema_text_params(it, &tp);
        if (schema_kind(it) != 0)
            index_sync(h, it->string, schema_kind(it), &tp);
    }
}

/* Replace h->schema by schema (owned) and persist; on failure nothing
 * changes and schema is freed.  cat->mu held. */
static int index_schema_commit(catalog_handle_t *h, cJSON *schema, err_t *err)
{
    cJSON *old = h->schema;
    int rc;

    h->schema = schema;
    rc = catalog_config_write(h, err);
    if (rc == ERR_OK) {
        cJSON_Delete(old);
    } else {
        h->schema = old;
        cJSON_Delete(schema);
    }
    return rc;
}

int catalog_index_create(catalog_t *cat, catalog_handle_t *h, const cJSON *body, err_t *err)
{
    static const char *const keys[] = { "field_name", "field_schema", NULL };
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "field_name");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(body, "field_schema"), *it;
    cJSON *norm = NULL, *next;
    int rc;

    if (!cJSON_IsObject(body))
        return err_set(err, ERR_INVALID, "request body must be a JSON object");
    cJSON_ArrayForEach(it, body)
        if (!str_in(it->string, keys))
            return err_set(err, ERR_INVALID, "unknown field \"%s\"", it->string);
    if (name == NULL)
        return err_set(err, ERR_INVALID, "missing field \"field_name\"");
    if (!cJSON_IsString(name))
        return err_set(err, ERR_INVALID, "field_name: expected a string");
    if (!filter_path_is_valid(name->valuestring))
        return err_set(err, ERR_INVALID, "field_name: \"%s\" is not a valid key path",
                       name->valuestring);
    if (schema == NULL || cJSON_IsNull(schema)) /* Qdrant's words */
        return err_set(err, ERR_INVALID,
                       "Can't auto-detect field type, please specify `field_schema` in the request");
    if ((rc = index_schema_parse(schema, "field_schema", &norm, err)) != ERR_OK)
        return rc;
    int kind = schema_kind(norm);
    filter_text_params_t tp;
    schema_text_params(norm, &tp); /* norm belongs to h->schema after the commit */

    pthread_mutex_lock(&cat->mu);
    if (h->dropped || !h->ready) {
        rc = err_set(err, ERR_NOT_FOUND, "Collection `%s` doesn't exist!", h->name);
        cJSON_Delete(norm);
    } else if ((next = h->schema ? cJSON_Duplicate(h->schema, 1) : cJSON_CreateObject()) == NULL) {
        rc = err_set(err, ERR_NOMEM, "no memory");
        cJSON_Delete(norm);
    } else {
        /* a new definition for an indexed field replaces the old one, as in Qdrant */
        bool put = cJSON_GetObjectItemCaseSensitive(next, name->valuestring) != NULL
                       ? cJSON_ReplaceItemInObjectCaseSensitive(next, name->valuestring, norm)
                       : cJSON_AddItemToObject(next, name->valuestring, norm);
        if (put) {
            rc = index_schema_commit(h, next, err);
        } else {
            cJSON_Delete(norm);
            cJSON_Delete(next);
            rc = err_set(err, ERR_NOMEM, "no memory");
        }
    }
    pthread_mutex_unlock(&cat->mu);
    if (rc == ERR_OK) {
        index_sync(h, name->valuestring, kind, &tp);
        log_info("catalog", "%s: payload index on \"%s\" defined", h->name, name->valuestring);
    }
    return rc;
}

int catalog_index_delete(catalog_t *cat, catalog_handle_t *h, const char *field, err_t *err)
{
    cJSON *next;
    int rc = ERR_OK;

    if (field == NULL || !filter_path_is_valid(field))
        return err_set(err, ERR_INVALID, "field_name: \"%s\" is not a valid key path",
                       field ? field : "");
    pthread_mutex_lock(&cat->mu);
    if (h->dropped || !h->ready) {
        rc = err_set(err, ERR_NOT_FOUND, "Collection `%s` doesn't exist!", h->name);
    } else if (h->schema != NULL && cJSON_GetObjectItemCaseSensitive(h->schema, field) != NULL) {
        next = cJSON_Duplicate(h->schema, 1);
        if (next == NULL) {
            rc = err_set(err, ERR_NOMEM, "no memory");
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(next, field);
            rc = index_schema_commit(h, next, err);
        }
        if (rc == ERR_OK)
            log_info("catalog", "%s: payload index on \"%s\" removed", h->name, field);
    }
    /* else: nothing to remove, which Qdrant answers with success too */
    pthread_mutex_unlock(&cat->mu);
    if (rc == ERR_OK)
        index_sync(h, field, 0, NULL);
    return rc;
}

/* Live points with a value at field (Qdrant: points the index holds). */
static size_t index_points(coll_t *c, const char *field)
{
    cJSON *j = cJSON_CreateObject(), *cond = cJSON_CreateObject();
    cJSON *key = cJSON_AddObjectToObject(cond, "is_empty");
    filter_t *f = NULL;
    size_t n = 0;

    cJSON_AddItemToArray(cJSON_AddArrayToObject(j, "must_not"), cond);
    cJSON_AddStringToObject(key, "key", field);
    if (filter_parse(j, &f, NULL) == ERR_OK && coll_count(c, f, &n, NULL) != ERR_OK)
        n = 0;
    filter_free(f);
    cJSON_Delete(j);
    return n;
}

/* CollectionInfo.payload_schema: field -> PayloadIndexInfo {data_type,
 * params (only for the object form, as Qdrant), points}. */
cJSON *catalog_index_info_json(coll_t *c, const cJSON *schema)
{
    cJSON *o = cJSON_CreateObject();
    const cJSON *it;

    cJSON_ArrayForEach(it, schema) {
        cJSON *e = cJSON_CreateObject();
        const cJSON *type = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "type") : it;
        if (e == NULL || o == NULL) {
            cJSON_Delete(e);
            break;
        }
        cJSON_AddStringToObject(e, "data_type", cJSON_IsString(type) ? type->valuestring : "");
        if (cJSON_IsObject(it))
            cJSON_AddItemToObject(e, "params", cJSON_Duplicate(it, 1));
        cJSON_AddNumberToObject(e, "points", (double)index_points(c, it->string));
        cJSON_AddItemToObject(o, it->string, e);
    }
    return o;
}

