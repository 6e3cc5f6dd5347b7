/*
 * catalog.h - the set of collections under one storage path, their
 * configurations, and aliases.
 *
 * LAYOUT
 *   <storage_path>/collections/<name>/config.json   Qdrant CollectionConfig
 *                                                    plus "veclog_format": 1
 *                                                    and "payload_schema":
 *                                                    {field: index definition}
 *   <storage_path>/collections/<name>/{wal,db}/     the collection (coll.c)
 *   <storage_path>/aliases.json                      {"alias": "collection"}
 *
 * config.json is written last when a collection is created (temp file,
 * fsync, rename, fsync directory), so a directory without it is an
 * interrupted create and is removed at open.  Dropping writes a DROPPED
 * marker first, so an interrupted drop finishes at the next open instead of
 * bringing the collection back.  aliases.json is replaced atomically the
 * same way, which makes a batch of alias actions all-or-nothing.
 *
 * Handles: catalog_acquire returns a counted reference, so a collection
 * dropped while a search runs on it is closed when the last user releases
 * it, not under its feet.  All functions are thread-safe.
 */
#ifndef VECLOG_CATALOG_H
#define VECLOG_CATALOG_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "coll.h"
#include "err.h"

typedef struct catalog catalog_t;
typedef struct catalog_handle catalog_handle_t;

/* Server-wide defaults for new collections (config.yaml's storage.*). */
typedef struct catalog_opts {
    const char *storage_path;
    int wal_sync_mode;            /* enum wal_sync_mode */
    uint32_t wal_sync_interval_ms;
    uint32_t wal_capacity_mb;     /* default 32 */
    uint32_t wal_segments_ahead;
    bool on_disk_payload;
    uint32_t hnsw_m, hnsw_ef_construct, hnsw_max_indexing_threads, hnsw_payload_m;
    uint64_t hnsw_full_scan_threshold_kb;
    bool hnsw_on_disk;
    double opt_deleted_threshold;
    uint64_t opt_vacuum_min_vector_number;
    uint32_t opt_default_segment_number, opt_flush_interval_sec, opt_max_optimization_threads;
    uint64_t opt_max_segment_size_kb, opt_memmap_threshold_kb, opt_indexing_threshold_kb;
} catalog_opts_t;

/* Fill opts with Qdrant's defaults (storage_path "./storage"). */
void catalog_opts_default(catalog_opts_t *opts);

/* Open the storage path (created if missing), recovering every collection.
 * *out owned by the caller (catalog_close).  Fails with ERR_BUSY if
 * another process holds the storage path. */
int catalog_open(const catalog_opts_t *opts, catalog_t **out, err_t *err);

/* Close every collection (each checkpoints). No handle may be held. */
void catalog_close(catalog_t *cat);

/* Create a collection from a Qdrant CreateCollection body.  ERR_EXISTS if
 * the name is taken by a collection or an alias; ERR_INVALID naming the
 * field for a bad body; ERR_UNSUPPORTED for features veclog lacks. */
int catalog_create(catalog_t *cat, const char *name, const cJSON *body, err_t *err);

/* Drop a collection and its aliases.  ERR_NOT_FOUND if it does not exist.
 * The files are removed once the last handle is released. */
int catalog_drop(catalog_t *cat, const char *name, err_t *err);

/* Update a collection's stored config from a Qdrant UpdateCollection body
 * (hnsw_config, optimizers_config, params, ... diffs). */
int catalog_update(catalog_t *cat, const char *name, const cJSON *body, err_t *err);

/* Resolve a collection name or alias and take a reference.  ERR_NOT_FOUND
 * names what was asked for.  Release with catalog_release. */
int catalog_acquire(catalog_t *cat, const char *name_or_alias, catalog_handle_t **h, err_t *err);
void catalog_release(catalog_handle_t *h);

/* Borrowed from the handle; valid until it is released. */
coll_t *catalog_handle_coll(catalog_handle_t *h);
const char *catalog_handle_name(catalog_handle_t *h);

/* True if a collection (not an alias) of that name exists. */
bool catalog_exists(catalog_t *cat, const char *name);

/* Qdrant JSON, new objects owned by the caller:
 *   catalog_list_json:    {"collections": [{"name": ...}, ...]}
 *   catalog_info_json:    CollectionInfo of the handle's collection
 *   catalog_aliases_json: {"aliases": [{"alias_name", "collection_name"}]}
 *                         of one collection, or all when collection is NULL */
cJSON *catalog_list_json(catalog_t *cat);
cJSON *catalog_info_json(catalog_t *cat, catalog_handle_t *h);
cJSON *catalog_aliases_json(catalog_t *cat, const char *collection);

/* Payload indexes (Qdrant's PUT /collections/{c}/index and DELETE
 * /collections/{c}/index/{field}).  veclog filters exactly without them, so
 * a definition changes no result (but see catalog.c on full-text indexes);
 * it is stored with the collection's config, survives restarts, and is
 * reported in catalog_info_json's "payload_schema" as Qdrant's
 * PayloadIndexInfo {data_type, params (object form only), points}, points
 * being the live points with a value at the field, counted at request time.
 *
 * catalog_index_create takes Qdrant's CreateFieldIndex body (borrowed)
 * {"field_name": key path, "field_schema": PayloadFieldSchema}: a type name
 * or a *IndexParams object, validated against Qdrant 1.19 (unknown fields
 * and bad enum values: ERR_INVALID naming the field).  It creates the
 * definition or replaces the field's previous one.  catalog_index_delete
 * removes the field's definition; removing one that does not exist
 * succeeds, as in Qdrant.  Both persist before returning (config.json is
 * replaced atomically) and fail with ERR_NOT_FOUND if the collection was
 * dropped after h was acquired.  h is borrowed (acquire it by name or
 * alias); thread-safe. */
int catalog_index_create(catalog_t *cat, catalog_handle_t *h, const cJSON *body, err_t *err);
int catalog_index_delete(catalog_t *cat, catalog_handle_t *h, const char *field, err_t *err);

/* Apply Qdrant's ChangeAliasesOperation body ({"actions": [...]}) as one
 * atomic batch: every action succeeds, or nothing changes. */
int catalog_aliases_update(catalog_t *cat, const cJSON *body, err_t *err);

/* Compare-and-set of one alias: point alias at collection `to`, only if
 * it now points at `expect` (NULL: only if the alias does not exist).
 * Atomic against every other alias change (the same lock and the same
 * all-or-nothing aliases.json replacement).  ERR_EXISTS (HTTP 409) when
 * the alias points elsewhere, naming where; ERR_NOT_FOUND when `to` does
 * not exist.  Thread-safe.  Rolling back is the same call reversed. */
int catalog_alias_switch(catalog_t *cat, const char *alias, const char *expect, const char *to,
                         err_t *err);

/* Validate a collection or alias name. */
int catalog_name_check(const char *name, const char *what, err_t *err);

#endif
