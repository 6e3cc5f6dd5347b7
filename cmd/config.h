/*
 * config.h - veclog's start-up configuration.
 *
 * Three layers, each overriding the previous one:
 *   1. built-in defaults (compiled in; configs/veclog.yaml documents the
 *      very same values, and a test keeps the two in step),
 *   2. an optional YAML file whose keys mirror Qdrant's config.yaml where
 *      the concept exists (storage.wal.wal_capacity_mb, service.http_port...),
 *   3. the environment: VECLOG__SECTION__KEY=value, sections joined by a
 *      double underscore, key names case-insensitive, e.g.
 *      VECLOG__SERVICE__HTTP_PORT=7000 or VECLOG__KAFKA__TOPICS=a,b; map
 *      entries as VECLOG__KAFKA__PROPERTIES__<NAME>=v and model keys as
 *      VECLOG__MODELS__<NAME>__<KEY>=v (see configs/veclog.yaml).
 *
 * Anything unknown or malformed stops loading with ERR_INVALID and a message
 * naming the full key and where it came from, so a typo never silently falls
 * back to a default.  The result is a plain struct: every module reads the
 * fields it needs directly; nothing is looked up by name at run time.
 */
#ifndef VECLOG_CONFIG_H
#define VECLOG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/err.h"

enum config_sync_mode {
    CONFIG_SYNC_ALWAYS,   /* fsync before acknowledging (group commit) */
    CONFIG_SYNC_INTERVAL, /* fsync every storage.wal.sync_interval_ms */
    CONFIG_SYNC_NONE      /* leave it to the OS: fastest, loses data on power cut */
};

typedef struct config_kv {
    char *key;
    char *value;
} config_kv_t;

/* One entry of the models: section (embedding models for inference
 * objects), handed to embed_reg_new through config_model_embed.  The
 * per-model checks (type-dependent required keys, url scheme, names taken
 * by the built-in veclog/hash-* models) are embed_reg_new's, run by
 * config_load so that a bad model stops start-up like any bad key. */
typedef struct config_model {
    char *name;                       /* the key under models: */
    char *type;                       /* hash|http, required */
    char *api;                        /* openai|tei, default openai (http only) */
    char *url;                        /* http://host[:port]/path, NULL = none (http: required) */
    char *model;                      /* name sent to an openai server, NULL = none */
    uint32_t dim;                     /* vector size, 1..65536; 0 = unset (an error) */
    char *api_key;                    /* sent as Authorization: Bearer, NULL = none */
    uint32_t batch_size;              /* texts per request, 32 */
    uint32_t timeout_ms;              /* per attempt, 10000 */
    uint32_t max_retries;             /* 3 */
} config_model_t;

typedef struct config {
    char *log_level;                  /* log_level: TRACE|DEBUG|INFO|WARN|ERROR (stored upper-case), default INFO */
    struct {
        char *storage_path;           /* storage.storage_path, default ./storage */
        char *snapshots_path;         /* storage.snapshots_path, default ./snapshots */
        bool on_disk_payload;         /* storage.on_disk_payload, default true */
        struct {
            uint32_t wal_capacity_mb;        /* storage.wal.wal_capacity_mb, default 32, 1..4095 */
            uint32_t wal_segments_ahead;     /* storage.wal.wal_segments_ahead, default 0 */
            enum config_sync_mode sync_mode; /* storage.wal.sync_mode: always|interval|none, default always */
            uint32_t sync_interval_ms;       /* storage.wal.sync_interval_ms, default 100, >= 1 */
        } wal;
        struct {
            uint32_t max_search_threads;     /* storage.performance.max_search_threads, 0 = auto */
        } performance;
        struct {
            double deleted_threshold;          /* 0.2, 0..1 */
            uint64_t vacuum_min_vector_number; /* 1000 */
            uint32_t default_segment_number;   /* 0 = auto */
            uint64_t max_segment_size_kb;      /* 0 = unset (auto) */
            uint64_t memmap_threshold_kb;      /* 0 = unset */
            uint64_t indexing_threshold_kb;    /* 10000 (Qdrant's default); 0 disables indexing */
            uint32_t flush_interval_sec;       /* 5 */
            uint32_t max_optimization_threads; /* 0 = auto (unlike Qdrant, 0 does not disable) */
        } optimizers;
        struct {
            uint32_t m;                        /* 16 */
            uint32_t ef_construct;             /* 100, >= 4 */
            uint64_t full_scan_threshold_kb;   /* 10000 */
            uint32_t max_indexing_threads;     /* 0 = auto */
            bool on_disk;                      /* false */
            uint32_t payload_m;                /* 0 = unset (use m) */
        } hnsw_index;
    } storage;
    struct {
        char *host;                   /* service.host, default 0.0.0.0 */
        uint16_t http_port;           /* service.http_port, default 6333, 1..65535 */
        uint32_t max_request_size_mb; /* 32, 1..4095 */
        uint32_t max_workers;         /* 0 = auto */
        bool enable_cors;             /* true */
        char *api_key;                /* NULL = none */
        char *read_only_api_key;      /* NULL = none */
        uint32_t request_timeout_sec; /* veclog: 30 */
    } service;
    struct {
        char *brokers;                /* NULL = start the embedded development broker */
        char **topics;                /* at least one; legal Kafka topic names, or "^regex"
                                       * subscription patterns (POSIX extended) */
        size_t n_topics;
        char *group_id;               /* veclog */
        char *auto_offset_reset;      /* earliest|latest, default earliest */
        uint32_t batch_size;          /* max messages per poll batch, 1000, >= 1 */
        uint32_t batch_timeout_ms;    /* 100 */
        bool auto_create_collections; /* false: create unknown collections from messages */
        char *auto_create_distance;   /* Cosine|Dot|Euclid|Manhattan, default Cosine */
        config_kv_t *routes;          /* topic name -> "coll1,coll2" (trimmed, no empty item);
                                       * every topic is consumed (in or matched by topics) */
        size_t n_routes;
        config_kv_t *properties;      /* librdkafka properties, passed through unchecked */
        size_t n_properties;
    } kafka;
    struct {
        char *topic;                  /* dlq.topic, default veclog-dlq; must not be in kafka.topics */
    } dlq;
    config_model_t *models;           /* models: name -> model, in file order; default none */
    size_t n_models;
} config_t;

/* Load defaults, then the YAML file at path (NULL = none), then the
 * environment (envp as in main's third argument or `environ`; NULL = none).
 * Only variables starting with VECLOG__ are looked at.  Returns ERR_OK, or
 * ERR_INVALID (unknown key, bad value, malformed YAML), ERR_IO (file cannot
 * be read) or ERR_NOMEM.  On error *cfg is zeroed and holds nothing to free.
 * On success the caller frees it with config_free.  Not thread-safe: meant
 * for start-up. */
int config_load(const char *path, char *const *envp, config_t *cfg, err_t *err);

struct embed_conf;

/* Describe m for embed_reg_new (embed/embed.h): *out borrows m's strings,
 * so it is valid while the config is. */
void config_model_embed(const config_model_t *m, struct embed_conf *out);

/* Free everything config_load allocated and zero *cfg.  NULL and an already
 * freed (zeroed) config are fine. */
void config_free(config_t *cfg);

/* Write the effective configuration as YAML, one commented line per key, in
 * a form config_load reads back.  service.api_key and
 * service.read_only_api_key are written as "***" when set, so the output is
 * safe for logs (and reloading it gives "***" as the key). */
int config_dump(const config_t *cfg, FILE *out, err_t *err);

#endif
