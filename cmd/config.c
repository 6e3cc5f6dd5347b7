/*
 * config.c - see config.h.
 *
 * Design: one schema table, keys[], describes every key: its dotted path,
 * its type, where it lives in config_t, its default as text, its limits and
 * a one-line doc.  Everything else is generic code driven by that table:
 *
 *  - defaults are applied by parsing each key's default text with the very
 *    function that parses environment values, so a default can never be a
 *    value the loader would reject, and config_load(NULL, NULL) is simply
 *    "no file, no environment";
 *  - the YAML walker turns nested mappings into dotted paths and looks each
 *    path up in the table; a "section" is nothing but a path prefix of some
 *    key, so there is no separate section list to keep in step;
 *  - VECLOG__A__B=v becomes the path "a.b" and goes through the same setter;
 *  - config_free and config_dump iterate the table.
 *
 * The models: section is a map of name -> model whose keys are described
 * by a second table, model_keys[], with offsets into config_model_t and
 * the same setters.  Its environment form is VECLOG__MODELS__<NAME>__<KEY>;
 * as '-', '/' and '.' cannot appear in a variable name, <NAME> matches the
 * existing model whose name, with every character other than a letter or
 * digit replaced by '_', is equal to it case-insensitively; when none does,
 * a model named <NAME> (lower-cased) is added.  The cross-key checks of a
 * model are embed_reg_new's own, run once everything is loaded.
 *
 * Adding a key therefore means: the struct field, one table row, and its
 * documentation in configs/veclog.yaml (tests/test_config.c checks that the
 * file lists every key with the built-in default).
 *
 * The table rows are built by macros that check the C type of the field at
 * compile time (_Generic): a row pointing a "uint" at a char * would
 * otherwise corrupt memory silently.
 *
 * YAML is read with libyaml's document API (a node tree that keeps line and
 * column), so every error can point at its place in the file.  Scalars are
 * converted here, not by libyaml's tags, so a quoted "6333" is accepted for a
 * port exactly as the environment's 6333 is; only a plain null/~/empty
 * scalar means null.  Loading builds a private config_t and hands it over
 * only on success, which is what makes "on error nothing to free" true.
 */
#include "config.h"

#include "embed/embed.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#define ENV_PREFIX "VECLOG__"
#define PATH_LEN 256  /* longest dotted path we look up; longer is unknown */
#define SHOW_LEN 72   /* buffer for a value quoted in an error message */

/* Limits that are not Qdrant's but protect the code reading the value. */
#define MB_MAX 4095u               /* mb << 20 still fits in 32 bits */
#define MS_MAX ((uint64_t)INT32_MAX) /* librdkafka and poll() take int ms */
#define SEC_MAX ((uint64_t)INT32_MAX / 1000) /* still an int once in ms */
#define THREADS_MAX 4096u          /* more is a typo, not a machine */
#define BATCH_MAX 1048576u         /* the batch array is allocated up front */
#define TOPIC_MAX 249              /* Kafka's limit on a topic name */

enum ktype { KT_STR, KT_BOOL, KT_UINT, KT_DOUBLE, KT_ENUM, KT_LIST, KT_MAP, KT_MODELS };

#define F_NULLABLE 0x1u /* null (YAML) or empty (env) means "use the default" */
#define F_SECRET   0x2u /* never echoed: masked by dump, not quoted in errors */
#define F_TOPIC    0x4u /* value(s) must be legal Kafka topic names */
#define F_PATTERN  0x8u /* with F_TOPIC: "^..." is a regular expression instead */
#define F_ROUTES   0x10u /* map: topic name -> comma-separated collection names */

struct key {
    const char *path;
    enum ktype type;
    unsigned flags;
    size_t off;                /* of the field in config_t */
    size_t noff;               /* KT_LIST / KT_MAP: of the size_t count */
    size_t size;               /* KT_UINT: sizeof the field (2, 4 or 8) */
    const char *dflt;          /* as an env value would spell it; NULL = unset */
    uint64_t umin, umax;       /* KT_UINT */
    double dmin, dmax;         /* KT_DOUBLE */
    const char *const *enums;  /* KT_ENUM, or KT_STR restricted to a set */
    const char *doc;
};

static const char *const log_levels[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", NULL};
/* Same order as enum config_sync_mode: the index is the enum value. */
static const char *const sync_modes[] = {"always", "interval", "none", NULL};
static const char *const offset_resets[] = {"earliest", "latest", NULL};
static const char *const distances[] = {"Cosine", "Dot", "Euclid", "Manhattan", NULL};
static const char *const model_types[] = {"hash", "http", NULL};
static const char *const model_apis[] = {"openai", "tei", NULL};

/* Compile-time type check: sizeof(char[-1]) fails to compile when the field
 * f of config_t does not have one of the expected types. */
#define FLD(f) (((config_t *)0)->f)
#define IS(f, T) _Generic(FLD(f), T: 1, default: -1)
#define IS_UINT(f) _Generic(FLD(f), uint16_t: 1, uint32_t: 1, uint64_t: 1, default: -1)
#define OFF(f, ok) (offsetof(config_t, f) + 0 * sizeof(char[ok]))
#define FITS(f, hi) (0 * sizeof(char[(uint64_t)(hi) <= (UINT64_MAX >> (64 - 8 * sizeof(FLD(f)))) ? 1 : -1]))

#define K_STR(p, f, fl, d, dc) \
    {.path = p, .type = KT_STR, .flags = fl, .off = OFF(f, IS(f, char *)), .dflt = d, .doc = dc}
#define K_SENUM(p, f, d, ev, dc) \
    {.path = p, .type = KT_STR, .off = OFF(f, IS(f, char *)), .dflt = d, .enums = ev, .doc = dc}
#define K_BOOL(p, f, d, dc) \
    {.path = p, .type = KT_BOOL, .off = OFF(f, IS(f, bool)), .dflt = d, .doc = dc}
#define K_UINT(p, f, fl, d, lo, hi, dc) \
    {.path = p, .type = KT_UINT, .flags = fl, .off = OFF(f, IS_UINT(f)), \
     .size = sizeof(FLD(f)) + FITS(f, hi), .dflt = d, .umin = lo, .umax = hi, .doc = dc}
#define K_DOUBLE(p, f, d, lo, hi, dc) \
    {.path = p, .type = KT_DOUBLE, .off = OFF(f, IS(f, double)), .dflt = d, \
     .dmin = lo, .dmax = hi, .doc = dc}
#define K_ENUM(p, f, d, ev, dc) \
    {.path = p, .type = KT_ENUM, .off = OFF(f, IS(f, enum config_sync_mode)), .dflt = d, \
     .enums = ev, .doc = dc}
#define K_LIST(p, f, n, fl, d, dc) \
    {.path = p, .type = KT_LIST, .flags = fl, .off = OFF(f, IS(f, char **)), \
     .noff = OFF(n, IS(n, size_t)), .dflt = d, .doc = dc}
#define K_MODELS(p, f, n, dc) \
    {.path = p, .type = KT_MODELS, .flags = F_NULLABLE, .off = OFF(f, IS(f, config_model_t *)), \
     .noff = OFF(n, IS(n, size_t)), .doc = dc}
#define K_MAP(p, f, n, fl, dc) \
    {.path = p, .type = KT_MAP, .flags = F_NULLABLE | (fl), .off = OFF(f, IS(f, config_kv_t *)), \
     .noff = OFF(n, IS(n, size_t)), .doc = dc}

/* Keys of one section must be contiguous: config_dump opens each section
 * once, in table order. */
static const struct key keys[] = {
    K_SENUM("log_level", log_level, "INFO", log_levels, "TRACE, DEBUG, INFO, WARN or ERROR"),

    K_STR("storage.storage_path", storage.storage_path, 0, "./storage", "where collections live"),
    K_STR("storage.snapshots_path", storage.snapshots_path, 0, "./snapshots", "where snapshots are written"),
    K_BOOL("storage.on_disk_payload", storage.on_disk_payload, "true", "keep payloads on disk, not in RAM"),
    K_UINT("storage.wal.wal_capacity_mb", storage.wal.wal_capacity_mb, 0, "32", 1, MB_MAX,
           "size of one WAL segment, MiB"),
    K_UINT("storage.wal.wal_segments_ahead", storage.wal.wal_segments_ahead, 0, "0", 0, UINT32_MAX,
           "WAL segments created ahead of need"),
    K_ENUM("storage.wal.sync_mode", storage.wal.sync_mode, "always", sync_modes,
           "when appends are fsynced: always, interval or none"),
    K_UINT("storage.wal.sync_interval_ms", storage.wal.sync_interval_ms, 0, "100", 1, MS_MAX,
           "fsync period for sync_mode interval, ms"),
    K_UINT("storage.performance.max_search_threads", storage.performance.max_search_threads,
           F_NULLABLE, "0", 0, THREADS_MAX, "search threads, 0 = auto"),
    K_DOUBLE("storage.optimizers.deleted_threshold", storage.optimizers.deleted_threshold, "0.2",
             0.0, 1.0, "fraction of deleted vectors that triggers a vacuum"),
    K_UINT("storage.optimizers.vacuum_min_vector_number", storage.optimizers.vacuum_min_vector_number,
           0, "1000", 0, UINT64_MAX, "smallest segment worth vacuuming, vectors"),
    K_UINT("storage.optimizers.default_segment_number", storage.optimizers.default_segment_number,
           F_NULLABLE, "0", 0, UINT32_MAX, "target number of segments, 0 = auto"),
    K_UINT("storage.optimizers.max_segment_size_kb", storage.optimizers.max_segment_size_kb,
           F_NULLABLE, "0", 0, UINT64_MAX, "largest segment, KiB, 0 = auto"),
    K_UINT("storage.optimizers.memmap_threshold_kb", storage.optimizers.memmap_threshold_kb,
           F_NULLABLE, "0", 0, UINT64_MAX, "segments above this are memory-mapped, KiB, 0 = unset"),
    K_UINT("storage.optimizers.indexing_threshold_kb", storage.optimizers.indexing_threshold_kb,
           F_NULLABLE, "10000", 0, UINT64_MAX, "segments above this get an HNSW index, KiB, 0 = never"),
    K_UINT("storage.optimizers.flush_interval_sec", storage.optimizers.flush_interval_sec, 0, "5", 1,
           SEC_MAX, "interval between forced flushes, s"),
    K_UINT("storage.optimizers.max_optimization_threads", storage.optimizers.max_optimization_threads,
           F_NULLABLE, "0", 0, THREADS_MAX, "optimization jobs per shard, 0 = auto"),
    K_UINT("storage.hnsw_index.m", storage.hnsw_index.m, 0, "16", 0, UINT32_MAX,
           "edges per node in the HNSW graph"),
    K_UINT("storage.hnsw_index.ef_construct", storage.hnsw_index.ef_construct, 0, "100", 4, UINT32_MAX,
           "candidates considered while building the graph"),
    K_UINT("storage.hnsw_index.full_scan_threshold_kb", storage.hnsw_index.full_scan_threshold_kb, 0,
           "10000", 0, UINT64_MAX, "below this a filtered search scans instead, KiB"),
    K_UINT("storage.hnsw_index.max_indexing_threads", storage.hnsw_index.max_indexing_threads,
           F_NULLABLE, "0", 0, THREADS_MAX, "index build threads, 0 = auto"),
    K_BOOL("storage.hnsw_index.on_disk", storage.hnsw_index.on_disk, "false",
           "keep the HNSW graph on disk"),
    K_UINT("storage.hnsw_index.payload_m", storage.hnsw_index.payload_m, F_NULLABLE, "0", 0,
           UINT32_MAX, "m for payload-index graphs, 0 = use m"),

    K_STR("service.host", service.host, 0, "0.0.0.0", "address the REST API binds to"),
    K_UINT("service.http_port", service.http_port, 0, "6333", 1, 65535, "REST API port"),
    K_UINT("service.max_request_size_mb", service.max_request_size_mb, 0, "32", 1, MB_MAX,
           "largest request body, MiB"),
    K_UINT("service.max_workers", service.max_workers, F_NULLABLE, "0", 0, THREADS_MAX,
           "HTTP worker threads, 0 = auto"),
    K_BOOL("service.enable_cors", service.enable_cors, "true", "send CORS headers"),
    K_STR("service.api_key", service.api_key, F_NULLABLE | F_SECRET, NULL,
          "api-key header required for every request, null = none"),
    K_STR("service.read_only_api_key", service.read_only_api_key, F_NULLABLE | F_SECRET, NULL,
          "api-key granting read-only access, null = none"),
    K_UINT("service.request_timeout_sec", service.request_timeout_sec, 0, "30", 1, SEC_MAX,
           "longest a request may run, s"),

    K_STR("kafka.brokers", kafka.brokers, F_NULLABLE, NULL,
          "host:port,...; null = embedded development broker"),
    K_LIST("kafka.topics", kafka.topics, kafka.n_topics, F_TOPIC | F_PATTERN, "veclog",
           "topics consumed (names, or ^regex patterns); a list or one comma-separated string"),
    K_STR("kafka.group_id", kafka.group_id, 0, "veclog", "consumer group"),
    K_SENUM("kafka.auto_offset_reset", kafka.auto_offset_reset, "earliest", offset_resets,
            "where a new group starts: earliest or latest"),
    K_UINT("kafka.batch_size", kafka.batch_size, 0, "1000", 1, BATCH_MAX, "max messages per poll batch"),
    K_UINT("kafka.batch_timeout_ms", kafka.batch_timeout_ms, 0, "100", 0, MS_MAX,
           "longest wait to fill a batch, ms"),
    K_BOOL("kafka.auto_create_collections", kafka.auto_create_collections, "false",
           "create a collection a message names but which does not exist, from its vectors"),
    K_SENUM("kafka.auto_create_distance", kafka.auto_create_distance, "Cosine", distances,
            "distance of auto-created collections: Cosine, Dot, Euclid or Manhattan"),
    K_MAP("kafka.routes", kafka.routes, kafka.n_routes, F_ROUTES,
          "topic -> collections its messages are applied to (comma-separated)"),
    K_MAP("kafka.properties", kafka.properties, kafka.n_properties, 0,
          "librdkafka properties, passed through as strings"),

    K_STR("dlq.topic", dlq.topic, F_TOPIC, "veclog-dlq", "dead-letter topic for unusable messages"),

    K_MODELS("models", models, n_models, "embedding models for inference objects: name -> model"),
};

#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

/* The keys of one model; paths are relative to "models.<name>" and offsets
 * to config_model_t.  Limits are embed.h's, so the two cannot disagree. */
#define MFLD(f) (((config_model_t *)0)->f)
#define MOFF(f, T) (offsetof(config_model_t, f) + 0 * sizeof(char[_Generic(MFLD(f), T: 1, default: -1)]))
#define M_STR(p, fl, d, ev, dc) \
    {.path = #p, .type = KT_STR, .flags = fl, .off = MOFF(p, char *), .dflt = d, .enums = ev, .doc = dc}
#define M_UINT(p, fl, d, lo, hi, dc) \
    {.path = #p, .type = KT_UINT, .flags = fl, .off = MOFF(p, uint32_t), .size = sizeof(uint32_t), \
     .dflt = d, .umin = lo, .umax = hi, .doc = dc}

static const struct key model_keys[] = {
    M_STR(type, F_NULLABLE, NULL, model_types, "hash or http (required)"),
    M_STR(api, 0, "openai", model_apis, "http: openai or tei"),
    M_STR(url, F_NULLABLE, NULL, NULL, "http: http://host[:port]/path (no https)"),
    M_STR(model, F_NULLABLE, NULL, NULL, "openai: model name sent to the server"),
    M_UINT(dim, F_NULLABLE, "0", 0, EMBED_DIM_MAX, "vector size (required)"),
    M_STR(api_key, F_NULLABLE | F_SECRET, NULL, NULL, "http: Authorization: Bearer key, null = none"),
    M_UINT(batch_size, 0, "32", 1, EMBED_BATCH_MAX, "http: texts per request"),
    M_UINT(timeout_ms, 0, "10000", 1, EMBED_TIMEOUT_MAX, "http: per attempt, ms"),
    M_UINT(max_retries, 0, "3", 0, EMBED_RETRIES_MAX, "http: retries of timeouts and 5xx"),
};

#define N_MODEL_KEYS (sizeof(model_keys) / sizeof(model_keys[0]))

/* Where a value came from, for error messages. */
struct src {
    const char *file;   /* YAML file, or NULL */
    size_t line, col;   /* 1-based position in file */
    const char *env;    /* "NAME=value" environment entry, or NULL */
};

static const struct src builtin_src = {0};

/* ---------------------------------------------------------------- errors */

static void src_describe(const struct src *s, char *buf, size_t n)
{
    if (s->file != NULL)
        snprintf(buf, n, " (%s line %zu, column %zu)", s->file, s->line, s->col);
    else if (s->env != NULL)
        snprintf(buf, n, " (%.*s)", (int)strcspn(s->env, "="), s->env);
    else
        snprintf(buf, n, " (built-in default)");
}

/* "config: <path>: <what> (<where>)", always ERR_INVALID. */
__attribute__((format(printf, 4, 5)))
static int bad(err_t *err, const struct src *s, const char *path, const char *fmt, ...)
{
    char what[ERR_MSG_MAX / 2], where[ERR_MSG_MAX / 2];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    src_describe(s, where, sizeof(where));
    return err_set(err, ERR_INVALID, "config: %s: %s%s", path, what, where);
}

static int nomem(err_t *err)
{
    return err_set(err, ERR_NOMEM, "config: out of memory");
}

/* A value quoted for a message: cut when long, control characters hidden
 * so that a stray newline cannot forge a log line. */
static const char *show(const char *v, char buf[SHOW_LEN])
{
    size_t i, o = 0;

    buf[o++] = '"';
    for (i = 0; v[i] != '\0' && o + 5 < SHOW_LEN; i++)
        buf[o++] = ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) ? '?' : v[i];
    if (v[i] != '\0') {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* Case-insensitive edit distance, for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t row[PATH_LEN + 1], i, j, la = strlen(a), lb = strlen(b);

    if (la > PATH_LEN || lb > PATH_LEN)
        return SIZE_MAX;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t sub = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *leaf(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot != NULL ? dot + 1 : path;
}

/* The key a typo most likely meant: a close spelling, or the same leaf name
 * in another section; NULL when nothing is close. */
static const char *suggest(const char *path)
{
    const char *best = NULL;
    size_t best_d = 3, i;

    for (i = 0; i < N_KEYS; i++) {
        size_t d = edit_distance(path, keys[i].path);
        if (d > 2 && strcasecmp(leaf(path), leaf(keys[i].path)) == 0)
            d = 2;
        if (d < best_d) {
            best_d = d;
            best = keys[i].path;
        }
    }
    return best;
}

static int unknown_key(err_t *err, const struct src *s, const char *path)
{
    char where[ERR_MSG_MAX / 2];
    const char *hint = suggest(path);

    src_describe(s, where, sizeof(where));
    return err_set(err, ERR_INVALID, "config: %s: unknown key%s%s%s%s", path, where,
                   hint ? "; did you mean " : "", hint ? hint : "", hint ? "?" : "");
}

static const char *type_name(const struct key *k)
{
    switch (k->type) {
    case KT_BOOL: return "a boolean (true or false)";
    case KT_UINT: return "an unsigned integer";
    case KT_DOUBLE: return "a number";
    case KT_LIST: return "a list";
    case KT_MAP: case KT_MODELS: return "a mapping";
    default: return "a string";
    }
}

/* ------------------------------------------------------------- parsing */

enum { NUM_OK, NUM_SYNTAX, NUM_RANGE };

/* Plain decimal only: no sign, no 0x, no spaces, so "-1" is an error and
 * not a huge number. */
static int parse_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    bool overflow = false;

    if (*s == '\0')
        return NUM_SYNTAX;
    for (; *s != '\0'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (*s < '0' || *s > '9')
            return NUM_SYNTAX;
        if (v > (UINT64_MAX - d) / 10)
            overflow = true;
        v = v * 10 + d;
    }
    *out = v;
    return overflow ? NUM_RANGE : NUM_OK;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
    size_t i;

    for (i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0 || strcasecmp(s, no[i]) == 0) {
            *out = strcasecmp(s, yes[i]) == 0;
            return true;
        }
    }
    return false;
}

/* strtod, minus what it accepts that is no config value: leading space,
 * hex floats, inf/nan, out-of-range.  Start-up runs in the "C" locale. */
static bool parse_double(const char *s, double *out)
{
    char *end;
    double d;

    if (*s == '\0' || isspace((unsigned char)*s) || strpbrk(s, "xX") != NULL)
        return false;
    errno = 0;
    d = strtod(s, &end);
    if (*end != '\0' || errno == ERANGE || !isfinite(d))
        return false;
    *out = d;
    return true;
}

static int enum_index(const char *const *values, const char *s)
{
    int i;

    for (i = 0; values[i] != NULL; i++)
        if (strcasecmp(values[i], s) == 0)
            return i;
    return -1;
}

static int bad_enum(err_t *err, const struct src *s, const struct key *k, const char *text)
{
    char list[128] = "", shown[SHOW_LEN];
    size_t i, o = 0;

    for (i = 0; k->enums[i] != NULL && o < sizeof(list); i++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", k->enums[i]);
    return bad(err, s, k->path, "%s is not one of %s", show(text, shown), list);
}

/* libyaml hands us valid UTF-8; the environment may not, and config_dump
 * must be able to write every value back as YAML. */
static bool utf8_valid(const unsigned char *s)
{
    while (*s != '\0') {
        uint32_t cp, min;
        size_t n, i;

        if (*s < 0x80) {
            s++;
            continue;
        }
        if ((*s & 0xe0) == 0xc0) { n = 1; cp = *s & 0x1f; min = 0x80; }
        else if ((*s & 0xf0) == 0xe0) { n = 2; cp = *s & 0x0f; min = 0x800; }
        else if ((*s & 0xf8) == 0xf0) { n = 3; cp = *s & 0x07; min = 0x10000; }
        else return false;
        for (i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
                return false;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        s += n + 1;
    }
    return true;
}

/* Kafka's own rule; checked here so a typo fails at start-up, not at the
 * first produce to the DLQ. */
static bool topic_valid(const char *t)
{
    size_t n = strlen(t);

    if (n == 0 || n > TOPIC_MAX || strcmp(t, ".") == 0 || strcmp(t, "..") == 0)
        return false;
    return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* A subscription pattern as librdkafka takes it: "^" then a POSIX
 * extended regular expression. */
static bool pattern_valid(const char *t)
{
    regex_t re;

    if (t[0] != '^' || regcomp(&re, t, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    regfree(&re);
    return true;
}

static bool pattern_match(const char *pattern, const char *topic)
{
    regex_t re;
    bool m;

    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    m = regexec(&re, topic, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

static int check_str(const struct key *k, const char *v, const struct src *s, err_t *err)
{
    char shown[SHOW_LEN];

    if (!utf8_valid((const unsigned char *)v))
        return bad(err, s, k->path, "is not valid UTF-8");
    if (*v == '\0')
        return bad(err, s, k->path, "must not be empty");
    if ((k->flags & F_PATTERN) && v[0] == '^') {
        if (!pattern_valid(v))
            return bad(err, s, k->path, "%s is not a valid regular expression (POSIX extended)",
                       show(v, shown));
        return ERR_OK;
    }
    if ((k->flags & F_TOPIC) && !topic_valid(v))
        return bad(err, s, k->path, "%s is not a valid Kafka topic name "
                   "(1..249 of a-z A-Z 0-9 . _ -)", show(v, shown));
    return ERR_OK;
}

/* ------------------------------------------------------------- setters */

/* c is a config_t, or a config_model_t for model_keys. */
static void *field(void *c, size_t off)
{
    return (char *)c + off;
}

static const void *cfield(const void *c, size_t off)
{
    return (const char *)c + off;
}

static void free_list(char **items, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

static void free_map(config_kv_t *kv, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

/* The strings of one model (not the model itself). */
static void model_clear(config_model_t *m)
{
    size_t j;

    free(m->name);
    for (j = 0; j < N_MODEL_KEYS; j++)
        if (model_keys[j].type == KT_STR)
            free(*(char **)field(m, model_keys[j].off));
}

static void free_models(config_model_t *m, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        model_clear(&m[i]);
    free(m);
}

/* text NULL = unset.  An empty string also means unset for a nullable key,
 * because an empty environment variable is how one unsets from there. */
static int set_str(void *c, const struct key *k, const char *text, const struct src *s,
                   err_t *err)
{
    char **slot = field(c, k->off);
    char *copy = NULL;
    int rc, idx;

    if (text != NULL && *text == '\0' && (k->flags & F_NULLABLE))
        text = NULL;
    if (text != NULL && k->enums != NULL) {
        if ((idx = enum_index(k->enums, text)) < 0)
            return bad_enum(err, s, k, text);
        text = k->enums[idx]; /* store the canonical spelling */
    } else if (text != NULL && (rc = check_str(k, text, s, err)) != ERR_OK) {
        return rc;
    }
    if (text != NULL && (copy = strdup(text)) == NULL)
        return nomem(err);
    free(*slot);
    *slot = copy;
    return ERR_OK;
}

static int set_uint(void *c, const struct key *k, const char *text, const struct src *s,
                    err_t *err)
{
    char shown[SHOW_LEN];
    void *p = field(c, k->off);
    uint64_t v = 0;
    int r = parse_uint(text, &v);

    if (r == NUM_SYNTAX)
        return bad(err, s, k->path, "%s is not an unsigned integer", show(text, shown));
    if (r == NUM_RANGE || v < k->umin || v > k->umax)
        return bad(err, s, k->path, "%s is out of range (%" PRIu64 "..%" PRIu64 ")",
                   show(text, shown), k->umin, k->umax);
    if (k->size == sizeof(uint16_t))
        *(uint16_t *)p = (uint16_t)v;
    else if (k->size == sizeof(uint32_t))
        *(uint32_t *)p = (uint32_t)v;
    else
        *(uint64_t *)p = v;
    return ERR_OK;
}

static int set_scalar(void *c, const struct key *k, const char *text, const struct src *s,
                      err_t *err)
{
    char shown[SHOW_LEN];
    double d;
    int idx;

    switch (k->type) {
    case KT_BOOL:
        if (!parse_bool(text, field(c, k->off)))
            return bad(err, s, k->path, "%s is not a boolean (true or false)", show(text, shown));
        return ERR_OK;
    case KT_DOUBLE:
        if (!parse_double(text, &d))
            return bad(err, s, k->path, "%s is not a number", show(text, shown));
        if (d < k->dmin || d > k->dmax)
            return bad(err, s, k->path, "%s is out of range (%g..%g)", show(text, shown),
                       k->dmin, k->dmax);
        *(double *)field(c, k->off) = d;
        return ERR_OK;
    case KT_ENUM:
        if ((idx = enum_index(k->enums, text)) < 0)
            return bad_enum(err, s, k, text);
        *(enum config_sync_mode *)field(c, k->off) = (enum config_sync_mode)idx;
        return ERR_OK;
    default:
        return set_uint(c, k, text, s, err);
    }
}

/* Replace the list with copies of items[0..n), after checking all of them,
 * so a bad item leaves the previous value in place. */
static int set_list(config_t *c, const struct key *k, const char *const *items, size_t n,
                    const struct src *s, err_t *err)
{
    char ***slot = field(c, k->off), **copy = NULL;
    size_t *count = field(c, k->noff), i;
    int rc = ERR_OK;

    if (n == 0)
        return bad(err, s, k->path, "must list at least one item");
    for (i = 0; i < n && rc == ERR_OK; i++) {
        if (*items[i] == '\0') /* "a,,b" or "a," is a typo, not a topic */
            return bad(err, s, k->path, "item %zu is empty", i + 1);
        rc = check_str(k, items[i], s, err);
    }
    if (rc != ERR_OK)
        return rc;
    if ((copy = calloc(n, sizeof(*copy))) == NULL)
        return nomem(err);
    for (i = 0; i < n; i++) {
        if ((copy[i] = strdup(items[i])) == NULL) {
            free_list(copy, i);
            return nomem(err);
        }
    }
    free_list(*slot, *count);
    *slot = copy;
    *count = n;
    return ERR_OK;
}

/* "a, b,c" -> {"a", "b", "c"}; blanks around items are dropped, an empty
 * item is kept so that set_list can reject it. */
static int set_list_csv(config_t *c, const struct key *k, const char *text, const struct src *s,
                        err_t *err)
{
    char *buf = strdup(text), *p, *end;
    const char **items = NULL;
    size_t n = 1, i = 0;
    int rc;

    for (p = buf; p != NULL && *p != '\0'; p++)
        n += *p == ',';
    if (buf == NULL || (items = calloc(n, sizeof(*items))) == NULL) {
        rc = nomem(err);
        goto out;
    }
    for (p = buf; i < n; i++) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        while (isspace((unsigned char)*p))
            p++;
        for (end = p + strlen(p); end > p && isspace((unsigned char)end[-1]); end--)
            end[-1] = '\0';
        items[i] = p;
        p = comma != NULL ? comma + 1 : p + strlen(p);
    }
    rc = set_list(c, k, items, n, s, err);
out:
    free(items);
    free(buf);
    return rc;
}

/* A route's value, "a, b" -> "a,b" in *out (malloc'd): every item
 * non-empty, blanks around items dropped. */
static int route_value(const struct key *k, const char *name, const char *value,
                       const struct src *s, char **out, err_t *err)
{
    char *buf = malloc(strlen(value) + 1), *o = buf;
    const char *p = value;

    if (buf == NULL)
        return nomem(err);
    for (size_t item = 1;; item++) {
        const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
        while (p < end && isspace((unsigned char)*p))
            p++;
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        if (end == p) {
            free(buf);
            return bad(err, s, k->path, "%s: collection %zu is empty (give a comma-separated "
                       "list of collection names)", name, item);
        }
        memcpy(o, p, (size_t)(end - p));
        o += end - p;
        if (comma == NULL)
            break;
        *o++ = ',';
        p = comma + 1;
    }
    *o = '\0';
    *out = buf;
    return ERR_OK;
}

/* Insert, replace or (value NULL) remove one entry, keeping file order. */
static int map_put(config_t *c, const struct key *k, const char *name, const char *value,
                   const struct src *s, err_t *err)
{
    config_kv_t **slot = field(c, k->off), *kv;
    size_t *count = field(c, k->noff), i;
    char *kcopy = NULL, *vcopy = NULL, shown[SHOW_LEN];

    if (*name == '\0' || !utf8_valid((const unsigned char *)name))
        return bad(err, s, k->path, "property names must be non-empty UTF-8");
    if (value != NULL && !utf8_valid((const unsigned char *)value))
        return bad(err, s, k->path, "value of %s is not valid UTF-8", name);
    if ((k->flags & F_ROUTES) && !topic_valid(name))
        return bad(err, s, k->path, "%s is not a valid Kafka topic name "
                   "(1..249 of a-z A-Z 0-9 . _ -)", show(name, shown));
    for (i = 0; i < *count && strcmp((*slot)[i].key, name) != 0; i++)
        ;
    if (value != NULL && (k->flags & F_ROUTES)) {
        int rc = route_value(k, name, value, s, &vcopy, err);
        if (rc != ERR_OK)
            return rc;
    } else if (value != NULL && (vcopy = strdup(value)) == NULL) {
        return nomem(err);
    }
    if (i < *count) {
        free((*slot)[i].value);
        if (vcopy != NULL) {
            (*slot)[i].value = vcopy;
            return ERR_OK;
        }
        free((*slot)[i].key);
        memmove(*slot + i, *slot + i + 1, (*count - i - 1) * sizeof(**slot));
        --*count;
        return ERR_OK;
    }
    if (vcopy == NULL)
        return ERR_OK; /* removing an absent entry */
    if ((kcopy = strdup(name)) == NULL ||
        (kv = realloc(*slot, (*count + 1) * sizeof(*kv))) == NULL) {
        free(kcopy);
        free(vcopy);
        return nomem(err);
    }
    kv[*count].key = kcopy;
    kv[*count].value = vcopy;
    *slot = kv;
    ++*count;
    return ERR_OK;
}

/* The one entry point for textual values: defaults, environment and YAML
 * scalars.  text NULL = the key's "unset" state. */
static int set_text(config_t *c, const struct key *k, const char *text, const struct src *s,
                    err_t *err)
{
    switch (k->type) {
    case KT_STR:
        return set_str(c, k, text, s, err);
    case KT_LIST:
        if (text == NULL) {
            free_list(*(char ***)field(c, k->off), *(size_t *)field(c, k->noff));
            *(char ***)field(c, k->off) = NULL;
            *(size_t *)field(c, k->noff) = 0;
            return ERR_OK;
        }
        return set_list_csv(c, k, text, s, err);
    case KT_MODELS:
        if (text != NULL)
            return bad(err, s, k->path, "is a mapping: give a YAML mapping, or one "
                       "VECLOG__MODELS__<NAME>__<KEY> variable per model key");
        free_models(c->models, c->n_models);
        c->models = NULL;
        c->n_models = 0;
        return ERR_OK;
    case KT_MAP:
        if (text != NULL)
            return bad(err, s, k->path, "is a mapping: give a YAML mapping, or one "
                       "VECLOG__KAFKA__PROPERTIES__<NAME> variable per entry");
        free_map(*(config_kv_t **)field(c, k->off), *(size_t *)field(c, k->noff));
        *(config_kv_t **)field(c, k->off) = NULL;
        *(size_t *)field(c, k->noff) = 0;
        return ERR_OK;
    default:
        return set_scalar(c, k, text, s, err);
    }
}

/* -------------------------------------------------------------- models */

static void model_remove(config_t *c, const char *name)
{
    size_t i;

    for (i = 0; i < c->n_models && strcmp(c->models[i].name, name) != 0; i++)
        ;
    if (i == c->n_models)
        return;
    model_clear(&c->models[i]);
    memmove(c->models + i, c->models + i + 1, (c->n_models - i - 1) * sizeof(*c->models));
    c->n_models--;
}

/* Set key k (a model_keys row) of model m; text NULL = default. */
static int model_set_key(config_model_t *m, const struct key *k, const char *text,
                         const struct src *s, err_t *err)
{
    struct key full = *k;
    char path[PATH_LEN];

    snprintf(path, sizeof(path), "models.%s.%s", m->name, k->path);
    full.path = path; /* errors name the whole path */
    if (text == NULL || (*text == '\0' && (full.flags & F_NULLABLE)))
        text = full.dflt;
    return full.type == KT_STR ? set_str(m, &full, text, s, err) : set_scalar(m, &full, text, s, err);
}

/* Set the key called key (any case) of model m; text NULL = default. */
static int model_set(config_model_t *m, const char *key, const char *text, const struct src *s,
                     err_t *err)
{
    char path[PATH_LEN];
    size_t i;

    for (i = 0; i < N_MODEL_KEYS; i++)
        if (strcasecmp(model_keys[i].path, key) == 0)
            return model_set_key(m, &model_keys[i], text, s, err);
    snprintf(path, sizeof(path), "models.%s.%s", m->name, key);
    return bad(err, s, path, "unknown key (a model has type, api, url, model, dim, api_key, "
               "batch_size, timeout_ms, max_retries)");
}

/* The model called name, added with every key at its default if new. */
static int model_get(config_t *c, const char *name, const struct src *s, config_model_t **out,
                     err_t *err)
{
    config_model_t *m;
    size_t i;
    int rc = ERR_OK;

    for (i = 0; i < c->n_models; i++) {
        if (strcmp(c->models[i].name, name) == 0) {
            *out = &c->models[i];
            return ERR_OK;
        }
    }
    if (*name == '\0' || !utf8_valid((const unsigned char *)name))
        return bad(err, s, "models", "model names must be non-empty UTF-8");
    if ((m = realloc(c->models, (c->n_models + 1) * sizeof(*m))) == NULL)
        return nomem(err);
    c->models = m;
    m = &c->models[c->n_models];
    memset(m, 0, sizeof(*m));
    if ((m->name = strdup(name)) == NULL)
        return nomem(err);
    c->n_models++;
    for (i = 0; i < N_MODEL_KEYS && rc == ERR_OK; i++)
        rc = model_set_key(m, &model_keys[i], NULL, &builtin_src, err);
    *out = m;
    return rc;
}

void config_model_embed(const config_model_t *m, struct embed_conf *out)
{
    embed_conf_init(out);
    out->name = m->name;
    out->type = m->type;
    out->api = m->api;
    out->url = m->url;
    out->model = m->model;
    out->dim = m->dim;
    out->api_key = m->api_key;
    out->batch_size = m->batch_size;
    out->timeout_ms = m->timeout_ms;
    out->max_retries = m->max_retries;
}

/* embed_reg_new is the one judge of a model: run it now so that a bad
 * model stops start-up with the usual ERR_INVALID. */
static int check_models(const config_t *c, err_t *err)
{
    embed_conf_t *conf = calloc(c->n_models ? c->n_models : 1, sizeof(*conf));
    embed_reg_t *reg = NULL;
    err_t e = {0};
    size_t i;
    int rc;

    if (conf == NULL)
        return nomem(err);
    for (i = 0; i < c->n_models; i++)
        config_model_embed(&c->models[i], &conf[i]);
    rc = embed_reg_new(conf, c->n_models, &reg, &e);
    if (rc == ERR_NOMEM)
        rc = nomem(err);
    else if (rc != ERR_OK)
        rc = err_set(err, ERR_INVALID, "config: models: %s",
                     e.msg + (strncmp(e.msg, "embed: ", 7) == 0 ? 7 : 0));
    embed_reg_free(reg);
    free(conf);
    return rc;
}

/* -------------------------------------------------------------- lookup */

enum { LK_UNKNOWN, LK_KEY, LK_SECTION, LK_MAP_ENTRY };

/* Case-insensitive.  LK_MAP_ENTRY: path is "<map key>.<rest>" (*rest set). */
static int lookup(const char *path, const struct key **out, const char **rest)
{
    size_t i, len = strlen(path);
    bool section = false;

    for (i = 0; i < N_KEYS; i++) {
        size_t kl = strlen(keys[i].path);
        *out = &keys[i];
        if (strcasecmp(path, keys[i].path) == 0)
            return LK_KEY;
        if ((keys[i].type == KT_MAP || keys[i].type == KT_MODELS) && len > kl && path[kl] == '.' &&
            strncasecmp(path, keys[i].path, kl) == 0) {
            *rest = path + kl + 1;
            return LK_MAP_ENTRY;
        }
        if (kl > len && keys[i].path[len] == '.' && strncasecmp(path, keys[i].path, len) == 0)
            section = true;
    }
    *out = NULL;
    return section ? LK_SECTION : LK_UNKNOWN;
}

/* ---------------------------------------------------------------- YAML */

struct walk {
    config_t *cfg;
    yaml_document_t *doc;
    const char *file;
    err_t *err;
};

static struct src node_src(const struct walk *w, const yaml_node_t *n)
{
    struct src s = {.file = w->file, .line = n->start_mark.line + 1, .col = n->start_mark.column + 1};
    return s;
}

/* Only a plain null/~/empty is null: "null" in quotes is a string. */
static bool node_is_null(const yaml_node_t *n)
{
    const char *v;

    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    v = (const char *)n->data.scalar.value;
    return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static const char *node_kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE ? "a mapping" :
           n->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar";
}

/* The scalar's text; a \0 escape inside would silently cut it short. */
static int scalar_text(const struct walk *w, const yaml_node_t *n, const char *path,
                       const char **out)
{
    struct src s = node_src(w, n);

    *out = (const char *)n->data.scalar.value;
    if (strlen(*out) != n->data.scalar.length)
        return bad(w->err, &s, path, "contains a NUL character");
    return ERR_OK;
}

/* Map key of `pair` as text, rejecting non-scalar keys and a key already
 * used earlier in the same mapping (libyaml keeps duplicates). */
static int pair_key(const struct walk *w, const yaml_node_t *map, const yaml_node_pair_t *pair,
                    const char *prefix, bool nocase, const char **out)
{
    const yaml_node_t *kn = yaml_document_get_node(w->doc, pair->key), *other;
    const yaml_node_pair_t *p;
    struct src s = node_src(w, kn);
    int rc;

    if (kn->type != YAML_SCALAR_NODE)
        return bad(w->err, &s, *prefix ? prefix : "(top level)", "keys must be scalars, got %s",
                   node_kind(kn));
    if ((rc = scalar_text(w, kn, prefix, out)) != ERR_OK)
        return rc;
    for (p = map->data.mapping.pairs.start; p < pair; p++) {
        other = yaml_document_get_node(w->doc, p->key);
        if (other->type == YAML_SCALAR_NODE &&
            (nocase ? strcasecmp : strcmp)((const char *)other->data.scalar.value, *out) == 0)
            return bad(w->err, &s, *prefix ? prefix : "(top level)",
                       "duplicate key \"%s\" (first at line %zu)", *out, other->start_mark.line + 1);
    }
    return ERR_OK;
}

static int apply_seq(const struct walk *w, const struct key *k, yaml_node_t *seq)
{
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start), i;
    const char **items = calloc(n ? n : 1, sizeof(*items));
    struct src s = node_src(w, seq);
    int rc = ERR_OK;

    if (items == NULL)
        return nomem(w->err);
    for (i = 0; i < n && rc == ERR_OK; i++) {
        yaml_node_t *item = yaml_document_get_node(w->doc, seq->data.sequence.items.start[i]);
        s = node_src(w, item);
        if (item->type != YAML_SCALAR_NODE || node_is_null(item))
            rc = bad(w->err, &s, k->path, "item %zu must be a string, got %s", i + 1,
                     node_is_null(item) ? "null" : node_kind(item));
        else
            rc = scalar_text(w, item, k->path, &items[i]);
    }
    if (rc == ERR_OK)
        rc = set_list(w->cfg, k, items, n, &s, w->err);
    free(items);
    return rc;
}

/* A route given as a YAML list of collections: joined with commas. */
static int apply_route_seq(const struct walk *w, const struct key *k, const char *name,
                           yaml_node_t *seq)
{
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start), i, len = 1;
    struct src s = node_src(w, seq);
    char *joined;
    int rc = ERR_OK;

    for (i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(w->doc, seq->data.sequence.items.start[i]);
        if (item->type != YAML_SCALAR_NODE || node_is_null(item)) {
            s = node_src(w, item);
            return bad(w->err, &s, k->path, "%s: item %zu must be a collection name, got %s", name,
                       i + 1, node_is_null(item) ? "null" : node_kind(item));
        }
        len += item->data.scalar.length + 1;
    }
    if (n == 0)
        return bad(w->err, &s, k->path, "%s: must list at least one collection", name);
    if ((joined = calloc(1, len)) == NULL)
        return nomem(w->err);
    for (i = 0; i < n && rc == ERR_OK; i++) {
        yaml_node_t *item = yaml_document_get_node(w->doc, seq->data.sequence.items.start[i]);
        const char *text;
        if ((rc = scalar_text(w, item, k->path, &text)) == ERR_OK) {
            if (strchr(text, ',') != NULL || *text == '\0')
                rc = bad(w->err, &s, k->path, "%s: item %zu is not a collection name", name, i + 1);
            strcat(joined, i ? "," : "");
            strcat(joined, text);
        }
    }
    if (rc == ERR_OK)
        rc = map_put(w->cfg, k, name, joined, &s, w->err);
    free(joined);
    return rc;
}

/* Entries of a pass-through map: scalar values kept as written (so
 * `enable.auto.commit: false` gives "false"), null removes an entry. */
static int apply_map(const struct walk *w, const struct key *k, yaml_node_t *map)
{
    yaml_node_pair_t *pair;
    char path[PATH_LEN];
    int rc = ERR_OK;

    for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top && !rc; pair++) {
        yaml_node_t *vn = yaml_document_get_node(w->doc, pair->value);
        struct src s = node_src(w, vn);
        const char *name, *value = NULL;

        if ((rc = pair_key(w, map, pair, k->path, false, &name)) != ERR_OK)
            break;
        snprintf(path, sizeof(path), "%s.%s", k->path, name);
        if (vn->type == YAML_SEQUENCE_NODE && (k->flags & F_ROUTES))
            rc = apply_route_seq(w, k, name, vn);
        else if (vn->type != YAML_SCALAR_NODE)
            rc = bad(w->err, &s, path, "expected a scalar value, got %s", node_kind(vn));
        else if (node_is_null(vn) || (rc = scalar_text(w, vn, path, &value)) == ERR_OK)
            rc = map_put(w->cfg, k, name, value, &s, w->err);
    }
    return rc;
}

/* One model: a mapping of model_keys, scalar values; null = default. */
static int apply_model(const struct walk *w, config_model_t *m, yaml_node_t *map)
{
    yaml_node_pair_t *pair;
    char path[PATH_LEN];
    int rc = ERR_OK;

    snprintf(path, sizeof(path), "models.%s", m->name);
    for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top && !rc; pair++) {
        yaml_node_t *vn = yaml_document_get_node(w->doc, pair->value);
        struct src s = node_src(w, vn);
        const char *name, *value = NULL;

        if ((rc = pair_key(w, map, pair, path, true, &name)) != ERR_OK)
            break;
        if (vn->type != YAML_SCALAR_NODE)
            rc = bad(w->err, &s, path, "%s: expected a scalar value, got %s", name, node_kind(vn));
        else if (node_is_null(vn) || (rc = scalar_text(w, vn, path, &value)) == ERR_OK)
            rc = model_set(m, name, value, &s, w->err);
    }
    return rc;
}

/* models: name -> mapping of model keys; null removes the model. */
static int apply_models(const struct walk *w, yaml_node_t *map)
{
    yaml_node_pair_t *pair;
    int rc = ERR_OK;

    for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top && !rc; pair++) {
        yaml_node_t *vn = yaml_document_get_node(w->doc, pair->value);
        struct src s = node_src(w, vn);
        config_model_t *m;
        const char *name;

        if ((rc = pair_key(w, map, pair, "models", false, &name)) != ERR_OK)
            break;
        if (node_is_null(vn))
            model_remove(w->cfg, name);
        else if (vn->type != YAML_MAPPING_NODE)
            rc = bad(w->err, &s, "models", "%s: expected a mapping of model keys, got %s", name,
                     node_kind(vn));
        else if ((rc = model_get(w->cfg, name, &s, &m, w->err)) == ERR_OK)
            rc = apply_model(w, m, vn);
    }
    return rc;
}

static int apply_node(const struct walk *w, const struct key *k, yaml_node_t *vn)
{
    struct src s = node_src(w, vn);
    const char *text;
    int rc;

    if (node_is_null(vn)) {
        if (!(k->flags & F_NULLABLE))
            return bad(w->err, &s, k->path, "null is not allowed here: give %s", type_name(k));
        return set_text(w->cfg, k, k->dflt, &s, w->err);
    }
    if (vn->type == YAML_SEQUENCE_NODE && k->type == KT_LIST)
        return apply_seq(w, k, vn);
    if (vn->type == YAML_MAPPING_NODE && k->type == KT_MAP)
        return apply_map(w, k, vn);
    if (vn->type == YAML_MAPPING_NODE && k->type == KT_MODELS)
        return apply_models(w, vn);
    if (vn->type != YAML_SCALAR_NODE || k->type == KT_MAP || k->type == KT_MODELS)
        return bad(w->err, &s, k->path, "expected %s, got %s", type_name(k), node_kind(vn));
    if ((rc = scalar_text(w, vn, k->path, &text)) != ERR_OK)
        return rc;
    return set_text(w->cfg, k, text, &s, w->err);
}

static int walk_mapping(const struct walk *w, yaml_node_t *map, const char *prefix);

/* A section may be null ("kafka:" with every key commented out). */
static int walk_section(const struct walk *w, yaml_node_t *vn, const char *path)
{
    struct src s = node_src(w, vn);

    if (node_is_null(vn))
        return ERR_OK;
    if (vn->type != YAML_MAPPING_NODE)
        return bad(w->err, &s, path, "is a section: expected a mapping, got %s", node_kind(vn));
    return walk_mapping(w, vn, path);
}

/* Recursion depth is bounded by the schema (a path must stay a known
 * section prefix), so alias cycles cannot loop. */
static int walk_mapping(const struct walk *w, yaml_node_t *map, const char *prefix)
{
    yaml_node_pair_t *pair;
    int rc = ERR_OK;

    for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top && !rc; pair++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, pair->key);
        yaml_node_t *vn = yaml_document_get_node(w->doc, pair->value);
        struct src s = node_src(w, kn);
        const struct key *k;
        const char *name, *rest;
        char path[PATH_LEN];

        if ((rc = pair_key(w, map, pair, prefix, true, &name)) != ERR_OK)
            break;
        snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name);
        /* "service.http_port: 1" would dodge duplicate detection against
         * "service: {http_port: 2}": nesting is the only way to spell a path. */
        if (strchr(name, '.') != NULL) {
            rc = bad(w->err, &s, path, "a key cannot contain '.'; nest it under its section");
            break;
        }
        switch (lookup(path, &k, &rest)) {
        case LK_KEY:
            rc = apply_node(w, k, vn);
            break;
        case LK_SECTION:
            rc = walk_section(w, vn, path);
            break;
        default:
            rc = unknown_key(w->err, &s, path);
            break;
        }
    }
    return rc;
}

static int parse_error(const yaml_parser_t *p, const char *file, err_t *err)
{
    const char *problem = p->problem != NULL ? p->problem : "cannot parse";

    if (p->error == YAML_MEMORY_ERROR)
        return nomem(err);
    if (p->error == YAML_READER_ERROR)
        return err_set(err, p->problem_value == -1 ? ERR_IO : ERR_INVALID,
                       "config: %s: byte %zu: %s", file, p->problem_offset, problem);
    if (p->context != NULL)
        return err_set(err, ERR_INVALID, "config: %s line %zu, column %zu: %s (%s at line %zu)",
                       file, p->problem_mark.line + 1, p->problem_mark.column + 1, problem,
                       p->context, p->context_mark.line + 1);
    return err_set(err, ERR_INVALID, "config: %s line %zu, column %zu: %s", file,
                   p->problem_mark.line + 1, p->problem_mark.column + 1, problem);
}

static int load_root(config_t *c, yaml_document_t *doc, const char *file, err_t *err)
{
    struct walk w = {.cfg = c, .doc = doc, .file = file, .err = err};
    yaml_node_t *root = yaml_document_get_root_node(doc);

    if (root == NULL || node_is_null(root))
        return ERR_OK; /* empty file, or only comments: all defaults */
    if (root->type != YAML_MAPPING_NODE)
        return err_set(err, ERR_INVALID, "config: %s line %zu: the top level must be a mapping, got %s",
                       file, root->start_mark.line + 1, node_kind(root));
    return walk_mapping(&w, root, "");
}

/* A second document would be ignored silently otherwise. */
static int expect_end(yaml_parser_t *parser, const char *file, err_t *err)
{
    yaml_document_t doc;
    yaml_node_t *root;
    int rc = ERR_OK;

    if (!yaml_parser_load(parser, &doc))
        return parse_error(parser, file, err);
    if ((root = yaml_document_get_root_node(&doc)) != NULL)
        rc = err_set(err, ERR_INVALID, "config: %s line %zu: more than one YAML document",
                     file, doc.start_mark.line + 1);
    yaml_document_delete(&doc);
    return rc;
}

static int load_file(config_t *c, const char *file, err_t *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    bool have_parser = false, have_doc = false;
    struct stat st;
    FILE *f = fopen(file, "rb");
    int rc = ERR_OK;

    if (f == NULL)
        return err_errno(err, errno, "config: open %s", file);
    if (fstat(fileno(f), &st) != 0) {
        rc = err_errno(err, errno, "config: stat %s", file);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) { /* fopen accepts a directory; reading it fails obscurely */
        rc = err_errno(err, EISDIR, "config: open %s", file);
        goto out;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = nomem(err);
        goto out;
    }
    have_parser = true;
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = parse_error(&parser, file, err);
        goto out;
    }
    have_doc = true;
    rc = load_root(c, &doc, file, err);
    if (rc == ERR_OK)
        rc = expect_end(&parser, file, err);
out:
    if (have_doc)
        yaml_document_delete(&doc);
    if (have_parser)
        yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

/* --------------------------------------------------------- environment */

/* "SERVICE__HTTP_PORT" (up to '=') -> "service.http_port". */
static void env_path(const char *name, const char *eq, char *out, size_t n)
{
    size_t o = 0;

    while (name < eq && o + 1 < n) {
        if (name + 1 < eq && name[0] == '_' && name[1] == '_') {
            out[o++] = '.';
            name += 2;
        } else {
            out[o++] = (char)tolower((unsigned char)*name++);
        }
    }
    out[o] = '\0';
}

/* VECLOG__KAFKA__PROPERTIES__SECURITY_PROTOCOL -> "security.protocol":
 * librdkafka names are lower-case and dotted, and '.' cannot appear in an
 * environment variable name.  An empty value removes the entry. */
static int env_map_entry(config_t *c, const struct key *k, const char *rest, const char *value,
                         const struct src *s, err_t *err)
{
    char name[PATH_LEN], *p;

    snprintf(name, sizeof(name), "%s", rest);
    for (p = name; *p != '\0' && !(k->flags & F_ROUTES); p++)
        if (*p == '_')
            *p = '.';
    return map_put(c, k, name, *value ? value : NULL, s, err);
}

/* Does the model name spell env (lower-case, '_' for every character that
 * is not a letter or digit) as a variable name would? */
static bool env_names(const char *name, const char *env, size_t len)
{
    size_t i;

    for (i = 0; i < len && name[i] != '\0'; i++)
        if ((isalnum((unsigned char)name[i]) ? tolower((unsigned char)name[i]) : '_') != env[i])
            return false;
    return i == len && name[i] == '\0';
}

/* VECLOG__MODELS__<NAME>__<KEY>=value; rest is "<name>.<key>". */
static int env_model_entry(config_t *c, const char *rest, const char *value, const struct src *s,
                           err_t *err)
{
    const char *dot = strchr(rest, '.');
    config_model_t *m = NULL;
    char name[PATH_LEN];
    size_t i, len;

    if (dot == NULL || dot == rest || strchr(dot + 1, '.') != NULL || dot[1] == '\0')
        return bad(err, s, "models", "set one model key per variable: "
                   "VECLOG__MODELS__<NAME>__<KEY>=value");
    len = (size_t)(dot - rest);
    for (i = 0; i < c->n_models; i++) {
        if (!env_names(c->models[i].name, rest, len))
            continue;
        if (m != NULL)
            return bad(err, s, "models", "%.*s matches both \"%s\" and \"%s\"; rename one "
                       "or set it in the file", (int)len, rest, m->name, c->models[i].name);
        m = &c->models[i];
    }
    snprintf(name, sizeof(name), "%.*s", (int)len, rest);
    if (m == NULL) {
        int rc = model_get(c, name, s, &m, err);
        if (rc != ERR_OK)
            return rc;
    }
    return model_set(m, dot + 1, value, s, err);
}

static int apply_env(config_t *c, const char *entry, err_t *err)
{
    const char *eq = strchr(entry, '='), *value = eq + 1, *rest = NULL;
    struct src s = {.env = entry};
    const struct key *k;
    char path[PATH_LEN];

    env_path(entry + strlen(ENV_PREFIX), eq, path, sizeof(path));
    switch (lookup(path, &k, &rest)) {
    case LK_KEY:
        if (*value == '\0' && (k->flags & F_NULLABLE))
            value = k->dflt; /* empty = unset, like null in YAML */
        return set_text(c, k, value, &s, err);
    case LK_MAP_ENTRY:
        if (k->type == KT_MODELS)
            return env_model_entry(c, rest, value, &s, err);
        return env_map_entry(c, k, rest, value, &s, err);
    case LK_SECTION:
        return bad(err, &s, path, "is a section, not a value: set its keys one by one");
    default:
        return unknown_key(err, &s, path);
    }
}

/* Later entries win; only VECLOG__ (double underscore) is ours, so
 * VECLOG_TEST_SEED and friends are left alone. */
static int load_env(config_t *c, char *const *envp, err_t *err)
{
    size_t plen = strlen(ENV_PREFIX);
    int rc = ERR_OK;

    for (; *envp != NULL && rc == ERR_OK; envp++) {
        if (strncasecmp(*envp, ENV_PREFIX, plen) == 0 && strchr(*envp, '=') != NULL)
            rc = apply_env(c, *envp, err);
    }
    return rc;
}

/* --------------------------------------------------------------- load */

/* Checks that span keys, after all layers are applied. */
/* The entry of kafka.topics that names or matches topic, or NULL. */
static const char *topic_consumed(const config_t *c, const char *topic)
{
    for (size_t i = 0; i < c->kafka.n_topics; i++) {
        const char *t = c->kafka.topics[i];
        if (t[0] == '^' ? pattern_match(t, topic) : strcmp(t, topic) == 0)
            return t;
    }
    return NULL;
}

static int check_whole(const config_t *c, err_t *err)
{
    const char *by = topic_consumed(c, c->dlq.topic);
    size_t i;

    if (by != NULL && by[0] == '^')
        return err_set(err, ERR_INVALID, "config: dlq.topic: \"%s\" is matched by kafka.topics "
                       "pattern \"%s\"; veclog would consume its own dead letters",
                       c->dlq.topic, by);
    if (by != NULL)
        return err_set(err, ERR_INVALID, "config: dlq.topic: \"%s\" is also in kafka.topics; "
                       "veclog would consume its own dead letters", c->dlq.topic);
    for (i = 0; i < c->kafka.n_routes; i++) {
        if (topic_consumed(c, c->kafka.routes[i].key) == NULL)
            return err_set(err, ERR_INVALID, "config: kafka.routes: topic \"%s\" is not in (or "
                           "matched by) kafka.topics", c->kafka.routes[i].key);
    }
    return ERR_OK;
}

int config_load(const char *path, char *const *envp, config_t *cfg, err_t *err)
{
    config_t c;
    size_t i;
    int rc = ERR_OK;

    memset(&c, 0, sizeof(c));
    for (i = 0; i < N_KEYS && rc == ERR_OK; i++)
        rc = set_text(&c, &keys[i], keys[i].dflt, &builtin_src, err);
    if (rc == ERR_OK && path != NULL)
        rc = load_file(&c, path, err);
    if (rc == ERR_OK && envp != NULL)
        rc = load_env(&c, envp, err);
    if (rc == ERR_OK)
        rc = check_whole(&c, err);
    if (rc == ERR_OK)
        rc = check_models(&c, err);
    if (rc != ERR_OK) {
        config_free(&c);
        memset(cfg, 0, sizeof(*cfg));
        return rc;
    }
    *cfg = c;
    return ERR_OK;
}

void config_free(config_t *cfg)
{
    size_t i;

    if (cfg == NULL)
        return;
    for (i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];
        if (k->type == KT_STR)
            free(*(char **)field(cfg, k->off));
        else if (k->type == KT_LIST)
            free_list(*(char ***)field(cfg, k->off), *(size_t *)field(cfg, k->noff));
        else if (k->type == KT_MAP)
            free_map(*(config_kv_t **)field(cfg, k->off), *(size_t *)field(cfg, k->noff));
        else if (k->type == KT_MODELS)
            free_models(cfg->models, cfg->n_models);
    }
    memset(cfg, 0, sizeof(*cfg));
}

/* ---------------------------------------------------------------- dump */

/* Double-quoted YAML scalar: the one style that can carry any string. */
static void put_quoted(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            fprintf(out, "\\x%02x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

/* Shortest text that reads back as the same double. */
static void put_double(FILE *out, double v)
{
    char buf[40];
    int prec;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    fputs(buf, out);
}

static uint64_t get_uint(const void *c, const struct key *k)
{
    const void *p = cfield(c, k->off);

    if (k->size == sizeof(uint16_t))
        return *(const uint16_t *)p;
    if (k->size == sizeof(uint32_t))
        return *(const uint32_t *)p;
    return *(const uint64_t *)p;
}

static void put_value(FILE *out, const void *c, const struct key *k)
{
    const void *p = cfield(c, k->off);
    size_t i, n = k->type == KT_LIST ? *(const size_t *)cfield(c, k->noff) : 0;

    switch (k->type) {
    case KT_STR:
        if (*(char *const *)p == NULL)
            fputs("null", out);
        else
            put_quoted(out, (k->flags & F_SECRET) ? "***" : *(char *const *)p);
        break;
    case KT_BOOL: fputs(*(const bool *)p ? "true" : "false", out); break;
    case KT_UINT: fprintf(out, "%" PRIu64, get_uint(c, k)); break;
    case KT_DOUBLE: put_double(out, *(const double *)p); break;
    case KT_ENUM: fputs(k->enums[*(const enum config_sync_mode *)p], out); break;
    case KT_LIST:
        fputc('[', out);
        for (i = 0; i < n; i++) {
            fputs(i ? ", " : "", out);
            put_quoted(out, (*(char **const *)p)[i]);
        }
        fputc(']', out);
        break;
    case KT_MAP: /* only called when empty; config_dump writes the entries */
    case KT_MODELS:
        fputs("{}", out);
        break;
    }
}

/* Write "name:" headers for the sections of path that prev is not in;
 * returns the nesting depth of path's key. */
static int open_sections(FILE *out, const char *prev, const char *path)
{
    const char *dot, *q = prev;
    bool same = true;
    int depth = 0;

    for (; (dot = strchr(path, '.')) != NULL; path = dot + 1, depth++) {
        size_t len = (size_t)(dot - path);
        if (same && strncmp(q, path, len) == 0 && q[len] == '.') {
            q += len + 1;
            continue;
        }
        if (same && depth == 0)
            fputc('\n', out);
        same = false;
        fprintf(out, "%*s%.*s:\n", 2 * depth, "", (int)len, path);
    }
    return depth;
}

/* Every model as a nested mapping, one commented line per key. */
static void dump_models(FILE *out, const config_t *cfg, int indent)
{
    size_t i, j;

    for (i = 0; i < cfg->n_models; i++) {
        fprintf(out, "%*s", indent, "");
        put_quoted(out, cfg->models[i].name);
        fputs(":\n", out);
        for (j = 0; j < N_MODEL_KEYS; j++) {
            fprintf(out, "%*s%s: ", indent + 2, "", model_keys[j].path);
            put_value(out, &cfg->models[i], &model_keys[j]);
            fprintf(out, "  # %s\n", model_keys[j].doc);
        }
    }
}

int config_dump(const config_t *cfg, FILE *out, err_t *err)
{
    const char *prev = "";
    size_t i, j;

    errno = 0;
    fputs("# veclog effective configuration: built-in defaults, then the file, then\n"
          "# VECLOG__* environment variables.  API keys are shown as \"***\".\n", out);
    for (i = 0; i < N_KEYS; i++) {
        const struct key *k = &keys[i];
        int depth = open_sections(out, prev, k->path);

        fprintf(out, "%*s%s:", 2 * depth, "", leaf(k->path));
        if ((k->type != KT_MAP && k->type != KT_MODELS) || *(const size_t *)cfield(cfg, k->noff) == 0) {
            fputc(' ', out); /* a non-empty map's entries follow on their own lines */
            put_value(out, cfg, k);
        }
        fprintf(out, "  # %s\n", k->doc);
        for (j = 0; k->type == KT_MAP && j < *(const size_t *)cfield(cfg, k->noff); j++) {
            const config_kv_t *kv = &(*(config_kv_t *const *)cfield(cfg, k->off))[j];
            fprintf(out, "%*s", 2 * depth + 2, "");
            put_quoted(out, kv->key);
            fputs(": ", out);
            put_quoted(out, kv->value);
            fputc('\n', out);
        }
        if (k->type == KT_MODELS)
            dump_models(out, cfg, 2 * depth + 2);
        prev = k->path;
    }
    if (fflush(out) != 0 || ferror(out))
        return err_errno(err, errno != 0 ? errno : EIO, "config: write configuration");
    return ERR_OK;
}
