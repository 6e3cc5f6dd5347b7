/*
 * catalog.c - collections, their stored configuration, aliases; the
 * layout and crash-safety rules are in catalog.h.
 *
 * Locking: cat->mu guards the entry list, the alias table and every
 * handle's refs/dropped fields.  It is never held across a collection open
 * or close (those can take seconds), except at catalog_open/close, which
 * run single-threaded.  Creating a collection reserves its name with a
 * placeholder entry (coll == NULL) so two creates of one name cannot race.
 */
#include "catalog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dist.h"
#include "log.h"

#include "catalog_internal.h"

/* ---- files ------------------------------------------------------------ */

static int fsync_path(const char *path, err_t *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return err_errno(err, errno, "open %s", path);
    int rc = fsync(fd) == 0 ? ERR_OK : err_errno(err, errno, "fsync %s", path);
    close(fd);
    return rc;
}

/* Write text to path atomically: temp file, fsync, rename, fsync dir. */
static int write_atomic(const char *dir, const char *name, const char *text, err_t *err)
{
    char tmp[4096], path[4096];
    size_t len = strlen(text);
    int fd, rc = ERR_OK;

    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_errno(err, errno, "create %s", tmp);
    if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
        rc = err_errno(err, errno ? errno : EIO, "write %s", tmp);
    close(fd);
    if (rc == ERR_OK && rename(tmp, path) != 0)
        rc = err_errno(err, errno, "rename %s", tmp);
    if (rc == ERR_OK)
        rc = fsync_path(dir, err);
    if (rc != ERR_OK)
        unlink(tmp);
    return rc;
}

static cJSON *read_json(const char *path, err_t *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long len;
    cJSON *j = NULL;

    if (f == NULL) {
        err_errno(err, errno, "open %s", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)len + 1)) != NULL && fread(buf, 1, (size_t)len, f) == (size_t)len) {
        buf[len] = '\0';
        j = cJSON_Parse(buf);
        if (j == NULL)
            err_set(err, ERR_CORRUPT, "%s is not valid JSON", path);
    } else {
        err_set(err, ERR_IO, "cannot read %s", path);
    }
    free(buf);
    fclose(f);
    return j;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(p) != 0)
        log_warn("catalog", "cannot remove %s: %s", p, strerror(errno));
    return 0;
}

static void rm_tree(const char *path)
{
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Remove a collection directory so that a crash part-way leaves something
 * the next open removes (no config.json = interrupted create), never a
 * half-deleted collection that still has its config.json. */
static void coll_dir_remove(const char *dir)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/" CONFIG_FILE, dir);
    if (unlink(path) == 0)
        fsync_path(dir, NULL);
    rm_tree(dir);
}

/* ---- names and entries ------------------------------------------------ */

int catalog_name_check(const char *name, const char *what, err_t *err)
{
    size_t len = name ? strlen(name) : 0;

    if (len == 0 || len > 255)
        return err_set(err, ERR_INVALID, "%s name must be 1..255 bytes", what);
    if (name[0] == '.' || strpbrk(name, "/\\:*?\"<>|") != NULL)
        return err_set(err, ERR_INVALID,
                       "%s name \"%s\" must not start with '.' or contain / \\ : * ? \" < > |",
                       what, name);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20)
            return err_set(err, ERR_INVALID, "%s name must not contain control characters", what);
    return ERR_OK;
}

static catalog_handle_t *ent_find(catalog_t *cat, const char *name)
{
    for (size_t i = 0; i < cat->n_ents; i++)
        if (strcmp(cat->ents[i]->name, name) == 0)
            return cat->ents[i];
    return NULL;
}

static alias_t *alias_find(alias_t *a, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(a[i].alias, name) == 0)
            return &a[i];
    return NULL;
}

static void ent_remove(catalog_t *cat, catalog_handle_t *h);

static void handle_free(catalog_handle_t *h)
{
    if (h == NULL)
        return;
    coll_close(h->coll);
    if (h->dropped) {
        if (h->dir != NULL)
            coll_dir_remove(h->dir);
        /* only now may a new collection take the name (and the directory) */
        pthread_mutex_lock(&h->cat->mu);
        ent_remove(h->cat, h);
        pthread_mutex_unlock(&h->cat->mu);
    }
    cJSON_Delete(h->config);
    cJSON_Delete(h->schema);
    free(h->name);
    free(h->dir);
    free(h);
}

static int ent_add(catalog_t *cat, catalog_handle_t *h)
{
    catalog_handle_t **n = realloc(cat->ents, (cat->n_ents + 1) * sizeof(*n));
    if (n == NULL)
        return ERR_NOMEM;
    cat->ents = n;
    n[cat->n_ents++] = h;
    return ERR_OK;
}

static void ent_remove(catalog_t *cat, catalog_handle_t *h)
{
    for (size_t i = 0; i < cat->n_ents; i++) {
        if (cat->ents[i] == h) {
            cat->ents[i] = cat->ents[--cat->n_ents];
            return;
        }
    }
}

static catalog_handle_t *handle_new(catalog_t *cat, const char *name)
{
    catalog_handle_t *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->cat = cat;
    h->refs = 1;
    h->name = strdup(name);
    if (h->name == NULL || asprintf(&h->dir, "%s/collections/%s", cat->root, name) < 0) {
        h->dir = NULL;
        handle_free(h);
        return NULL;
    }
    return h;
}

/* ---- collection configuration ----------------------------------------- */

enum ftype { F_UINT, F_NUM, F_BOOL, F_UINT_OR_NULL, F_STR,
             F_UINT_OR_AUTO,  /* MaxOptimizationThreads: "auto" (reported as null) or a uint */
             F_MEMORY };      /* Memory: "cold", "cached" or "pinned" */

typedef struct field {
    const char *name;
    enum ftype type;
} field_t;

static const field_t hnsw_fields[] = {
    { "m", F_UINT }, { "ef_construct", F_UINT }, { "full_scan_threshold", F_UINT },
    { "max_indexing_threads", F_UINT }, { "on_disk", F_BOOL }, { "payload_m", F_UINT_OR_NULL },
    { "inline_storage", F_BOOL }, { "memory", F_MEMORY }, { NULL, F_UINT },
};
static const field_t opt_fields[] = {
    { "deleted_threshold", F_NUM }, { "vacuum_min_vector_number", F_UINT },
    { "default_segment_number", F_UINT }, { "max_segment_size", F_UINT_OR_NULL },
    { "memmap_threshold", F_UINT_OR_NULL }, { "indexing_threshold", F_UINT_OR_NULL },
    { "flush_interval_sec", F_UINT }, { "max_optimization_threads", F_UINT_OR_AUTO },
    { "prevent_unoptimized", F_BOOL }, { NULL, F_UINT },
};
static const field_t wal_fields[] = {
    { "wal_capacity_mb", F_UINT }, { "wal_segments_ahead", F_UINT },
    { "wal_retain_closed", F_UINT }, { NULL, F_UINT },
};

static bool field_ok(enum ftype t, const cJSON *v)
{
    switch (t) {
    case F_BOOL: return cJSON_IsBool(v);
    case F_STR: return cJSON_IsString(v);
    case F_NUM: return cJSON_IsNumber(v);
    case F_MEMORY:
        return cJSON_IsString(v) && (strcmp(v->valuestring, "cold") == 0 ||
                                     strcmp(v->valuestring, "cached") == 0 ||
                                     strcmp(v->valuestring, "pinned") == 0);
    case F_UINT_OR_AUTO:
        if (cJSON_IsString(v))
            return strcmp(v->valuestring, "auto") == 0;
        /* fall through */
    case F_UINT_OR_NULL:
        if (cJSON_IsNull(v))
            return true;
        /* fall through */
    case F_UINT:
        return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9.0e15 &&
               v->valuedouble == (double)(uint64_t)v->valuedouble;
    }
    return false;
}

/* Apply a Qdrant *ConfigDiff object onto dst (an object of known fields). */
static int diff_apply(cJSON *dst, const cJSON *diff, const field_t *fields, const char *where,
                      err_t *err)
{
    const cJSON *it;

    if (diff == NULL || cJSON_IsNull(diff))
        return ERR_OK;
    if (!cJSON_IsObject(diff))
        return err_set(err, ERR_INVALID, "%s: expected an object", where);
    cJSON_ArrayForEach(it, diff) {
        const field_t *f = fields;
        while (f->name && strcmp(f->name, it->string) != 0)
            f++;
        if (f->name == NULL)
            return err_set(err, ERR_INVALID, "%s: unknown field \"%s\"", where, it->string);
        if (cJSON_IsNull(it)) /* as Qdrant merges diffs: null leaves it unchanged */
            continue;
        if (!field_ok(f->type, it))
            return err_set(err, ERR_INVALID, "%s.%s: expected %s", where, it->string,
                           f->type == F_BOOL ? "a boolean" : f->type == F_NUM ? "a number"
                           : f->type == F_STR ? "a string"
                           : f->type == F_MEMORY ? "one of \"cold\", \"cached\", \"pinned\""
                           : f->type == F_UINT_OR_AUTO ? "an unsigned integer or \"auto\""
                                                       : "an unsigned integer");
        /* "auto" threads are reported as null, as Qdrant's OptimizersConfig does */
        cJSON *copy = cJSON_IsString(it) && f->type == F_UINT_OR_AUTO ? cJSON_CreateNull()
                                                                       : cJSON_Duplicate(it, 1);
        if (copy == NULL)
            return err_set(err, ERR_NOMEM, "no memory");
        if (cJSON_HasObjectItem(dst, it->string))
            cJSON_ReplaceItemInObjectCaseSensitive(dst, it->string, copy);
        else
            cJSON_AddItemToObject(dst, it->string, copy);
    }
    return ERR_OK;
}

static void add_opt_uint(cJSON *o, const char *k, uint64_t v)
{
    if (v == 0)
        cJSON_AddNullToObject(o, k);
    else
        cJSON_AddNumberToObject(o, k, (double)v);
}

/* The default CollectionConfig sections from the server configuration. */
static cJSON *config_defaults(const catalog_opts_t *o)
{
    cJSON *cfg = cJSON_CreateObject();
    cJSON *params = cJSON_AddObjectToObject(cfg, "params");
    cJSON *h = cJSON_AddObjectToObject(cfg, "hnsw_config");
    cJSON *op = cJSON_AddObjectToObject(cfg, "optimizer_config");
    cJSON *w = cJSON_AddObjectToObject(cfg, "wal_config");

    if (params == NULL || h == NULL || op == NULL || w == NULL) {
        cJSON_Delete(cfg);
        return NULL;
    }
    cJSON_AddNumberToObject(params, "shard_number", 1);
    cJSON_AddStringToObject(params, "sharding_method", "auto");
    cJSON_AddNumberToObject(params, "replication_factor", 1);
    cJSON_AddNumberToObject(params, "write_consistency_factor", 1);
    cJSON_AddBoolToObject(params, "on_disk_payload", o->on_disk_payload);
    cJSON_AddNumberToObject(h, "m", o->hnsw_m);
    cJSON_AddNumberToObject(h, "ef_construct", o->hnsw_ef_construct);
    cJSON_AddNumberToObject(h, "full_scan_threshold", (double)o->hnsw_full_scan_threshold_kb);
    cJSON_AddNumberToObject(h, "max_indexing_threads", o->hnsw_max_indexing_threads);
    cJSON_AddBoolToObject(h, "on_disk", o->hnsw_on_disk);
    if (o->hnsw_payload_m)
        cJSON_AddNumberToObject(h, "payload_m", o->hnsw_payload_m);
    cJSON_AddNumberToObject(op, "deleted_threshold", o->opt_deleted_threshold);
    cJSON_AddNumberToObject(op, "vacuum_min_vector_number", (double)o->opt_vacuum_min_vector_number);
    cJSON_AddNumberToObject(op, "default_segment_number", o->opt_default_segment_number);
    add_opt_uint(op, "max_segment_size", o->opt_max_segment_size_kb);
    add_opt_uint(op, "memmap_threshold", o->opt_memmap_threshold_kb);
    add_opt_uint(op, "indexing_threshold", o->opt_indexing_threshold_kb);
    cJSON_AddNumberToObject(op, "flush_interval_sec", o->opt_flush_interval_sec);
    add_opt_uint(op, "max_optimization_threads", o->opt_max_optimization_threads);
    cJSON_AddNumberToObject(w, "wal_capacity_mb", o->wal_capacity_mb);
    cJSON_AddNumberToObject(w, "wal_segments_ahead", o->wal_segments_ahead);
    cJSON_AddNullToObject(cfg, "quantization_config");
    return cfg;
}

static int params_field(cJSON *params, const cJSON *it, err_t *err)
{
    const char *k = it->string;
    cJSON *copy;

    if (strcmp(k, "shard_number") == 0 || strcmp(k, "replication_factor") == 0 ||
        strcmp(k, "write_consistency_factor") == 0) {
        if (!cJSON_IsNull(it) && (!field_ok(F_UINT, it) || it->valuedouble < 1))
            return err_set(err, ERR_INVALID, "%s: expected a positive integer", k);
    } else if (strcmp(k, "on_disk_payload") == 0) {
        if (!cJSON_IsNull(it) && !cJSON_IsBool(it))
            return err_set(err, ERR_INVALID, "on_disk_payload: expected a boolean");
    } else if (strcmp(k, "sharding_method") == 0) {
        if (!cJSON_IsNull(it) && !(cJSON_IsString(it) && strcmp(it->valuestring, "auto") == 0))
            return err_set(err, ERR_UNSUPPORTED, "sharding_method: only \"auto\" is supported");
    } else {
        return ERR_NOT_FOUND;
    }
    if (cJSON_IsNull(it))
        return ERR_OK;
    copy = cJSON_Duplicate(it, 1);
    if (copy == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_DeleteItemFromObjectCaseSensitive(params, k);
    cJSON_AddItemToObject(params, k, copy);
    return ERR_OK;
}

static int unsupported_field(const cJSON *it, err_t *err)
{
    const char *k = it->string;

    if (strcmp(k, "sparse_vectors") == 0 && !cJSON_IsNull(it) &&
        !(cJSON_IsObject(it) && it->child == NULL))
        return err_set(err, ERR_UNSUPPORTED, "sparse_vectors: sparse vectors are not supported");
    if (strcmp(k, "strict_mode_config") == 0 && !cJSON_IsNull(it) &&
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "enabled")))
        return err_set(err, ERR_UNSUPPORTED, "strict_mode_config: strict mode is not supported");
    if (strcmp(k, "payload") == 0 && !cJSON_IsNull(it))
        return err_set(err, ERR_UNSUPPORTED, "payload: collection payload schema is not supported");
    return ERR_OK;
}

/* Build the stored CollectionConfig from a CreateCollection body. */
/* Qdrant's lower (and veclog's upper) bounds on the stored sections. */
static int config_bounds(const cJSON *cfg, err_t *err)
{
    static const struct {
        const char *section, *field, *where;
        double min, max;
    } b[] = {
        { "wal_config", "wal_capacity_mb", "wal_config.wal_capacity_mb", 1, 4095 },
        { "hnsw_config", "ef_construct", "hnsw_config.ef_construct", 4, 1e9 },
        { "hnsw_config", "m", "hnsw_config.m", 0, 1e6 },
        { "hnsw_config", "full_scan_threshold", "hnsw_config.full_scan_threshold", 10, 1e15 },
        { "optimizer_config", "deleted_threshold", "optimizers_config.deleted_threshold", 0, 1 },
        { "optimizer_config", "vacuum_min_vector_number", "optimizers_config.vacuum_min_vector_number", 100, 1e15 },
    };
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cfg, b[i].section), b[i].field);
        if (cJSON_IsNumber(v) && (v->valuedouble < b[i].min || v->valuedouble > b[i].max))
            return err_set(err, ERR_INVALID, "%s: must be between %g and %g", b[i].where,
                           b[i].min, b[i].max);
    }
    return ERR_OK;
}

static int config_build(const catalog_opts_t *o, const cJSON *body, cJSON **out, err_t *err)
{
    cJSON *cfg = config_defaults(o);
    cJSON *params = cJSON_GetObjectItemCaseSensitive(cfg, "params");
    const cJSON *it;
    int rc = cfg ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");

    if (rc == ERR_OK && body != NULL && !cJSON_IsObject(body))
        rc = err_set(err, ERR_INVALID, "request body must be a JSON object");
    for (it = body ? body->child : NULL; it != NULL && rc == ERR_OK; it = it->next) {
        const char *k = it->string;
        if ((rc = unsupported_field(it, err)) != ERR_OK)
            break;
        if ((rc = params_field(params, it, err)) != ERR_NOT_FOUND)
            continue;
        rc = ERR_OK;
        if (strcmp(k, "vectors") == 0) {
            if (!cJSON_IsObject(it))
                rc = err_set(err, ERR_INVALID,
                             "vectors: expected an object (vector params or named vector params)");
            else
                cJSON_AddItemToObject(params, "vectors", cJSON_Duplicate(it, 1));
        } else if (strcmp(k, "hnsw_config") == 0) {
            rc = diff_apply(cJSON_GetObjectItemCaseSensitive(cfg, k), it, hnsw_fields, k, err);
        } else if (strcmp(k, "optimizers_config") == 0) {
            rc = diff_apply(cJSON_GetObjectItemCaseSensitive(cfg, "optimizer_config"), it,
                            opt_fields, k, err);
        } else if (strcmp(k, "wal_config") == 0) {
            rc = diff_apply(cJSON_GetObjectItemCaseSensitive(cfg, k), it, wal_fields, k, err);
        } else if (strcmp(k, "quantization_config") == 0 || strcmp(k, "metadata") == 0 ||
                   strcmp(k, "strict_mode_config") == 0) {
            if (!cJSON_IsNull(it) && !cJSON_IsObject(it))
                rc = err_set(err, ERR_INVALID, "%s: expected an object", k);
            else if (strcmp(k, "quantization_config") == 0 && !cJSON_IsNull(it))
                rc = err_set(err, ERR_UNSUPPORTED, "quantization_config: quantization is not supported yet");
            else if (!cJSON_IsNull(it))
                cJSON_AddItemToObject(cfg, k, cJSON_Duplicate(it, 1));
        } else if (strcmp(k, "sparse_vectors") != 0 && strcmp(k, "payload") != 0 &&
                   strcmp(k, "init_from") != 0) {
            rc = err_set(err, ERR_INVALID, "unknown field \"%s\"", k);
        } else if (strcmp(k, "init_from") == 0 && !cJSON_IsNull(it)) {
            rc = err_set(err, ERR_UNSUPPORTED, "init_from is not supported");
        }
    }
    if (rc == ERR_OK)
        rc = config_bounds(cfg, err);
    if (rc == ERR_OK && !cJSON_HasObjectItem(params, "vectors"))
        cJSON_AddItemToObject(params, "vectors", cJSON_CreateObject());
    if (rc != ERR_OK) {
        cJSON_Delete(cfg);
        cfg = NULL;
    }
    *out = cfg;
    return rc;
}

static uint64_t json_u64(const cJSON *o, const char *k, uint64_t dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) && v->valuedouble >= 0 ? (uint64_t)v->valuedouble : dflt;
}

/* The effective vector index settings: the collection's hnsw_config and
 * optimizer_config over the server defaults.  Read at open only, so a PATCH
 * of these settings applies at the next open of the collection. */
static void index_opts(const catalog_opts_t *o, const cJSON *config, coll_opts_t *co)
{
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(config, "hnsw_config");
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(config, "optimizer_config");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(op, "deleted_threshold");
    const cJSON *disk = cJSON_GetObjectItemCaseSensitive(h, "on_disk");

    co->hnsw_m = (uint32_t)json_u64(h, "m", o->hnsw_m);
    co->hnsw_ef_construct = (uint32_t)json_u64(h, "ef_construct", o->hnsw_ef_construct);
    co->hnsw_payload_m = (uint32_t)json_u64(h, "payload_m", o->hnsw_payload_m);
    co->full_scan_threshold_kb = json_u64(h, "full_scan_threshold", o->hnsw_full_scan_threshold_kb);
    co->max_indexing_threads = (uint32_t)json_u64(h, "max_indexing_threads",
                                                  o->hnsw_max_indexing_threads);
    co->hnsw_on_disk = cJSON_IsBool(disk) ? cJSON_IsTrue(disk) : o->hnsw_on_disk;
    /* null (or absent): the server default, which may itself be 0 = never */
    co->indexing_threshold_kb = json_u64(op, "indexing_threshold", o->opt_indexing_threshold_kb);
    co->deleted_threshold = cJSON_IsNumber(v) ? v->valuedouble : o->opt_deleted_threshold;
    co->vacuum_min_vector_number = json_u64(op, "vacuum_min_vector_number",
                                            o->opt_vacuum_min_vector_number);
    co->default_segment_number = (uint32_t)json_u64(op, "default_segment_number",
                                                    o->opt_default_segment_number);
}

/* Open the collection described by h->config. */
static int handle_open(catalog_t *cat, catalog_handle_t *h, err_t *err)
{
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(h->config, "params");
    const cJSON *vectors = cJSON_GetObjectItemCaseSensitive(params, "vectors");
    const cJSON *walc = cJSON_GetObjectItemCaseSensitive(h->config, "wal_config");
    coll_opts_t co = { 0 };
    coll_vector_def_t *defs = NULL;
    uint32_t n = 0;
    int rc = ERR_OK;

    if (cJSON_IsObject(vectors) && vectors->child != NULL)
        rc = coll_vector_defs_parse(vectors, &defs, &n, err);
    if (rc != ERR_OK)
        return rc;
    co.vectors = defs;
    co.n_vectors = n;
    co.wal.segment_bytes = json_u64(walc, "wal_capacity_mb", cat->opts.wal_capacity_mb) << 20;
    co.wal.sync_mode = cat->opts.wal_sync_mode;
    co.wal.sync_interval_ms = cat->opts.wal_sync_interval_ms;
    /* keep the WAL near two segments: flush the store and truncate past it */
    co.checkpoint_bytes = 2 * co.wal.segment_bytes;
    index_opts(&cat->opts, h->config, &co);
    rc = coll_open(h->dir, &co, &h->coll, err);
    coll_vector_defs_free(defs, n);
    if (rc == ERR_OK)
        catalog_index_apply(h);
    return rc;
}

/* ---- create, drop, update --------------------------------------------- */

static int json_merge_top(cJSON *dst, const cJSON *src, err_t *err)
{
    const cJSON *it;

    if (dst == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(it, src) {
        cJSON_DeleteItemFromObjectCaseSensitive(dst, it->string);
        if (cJSON_IsNull(it)) /* Qdrant: a null value removes the key */
            continue;
        cJSON *copy = cJSON_Duplicate(it, 1);
        if (copy == NULL)
            return err_set(err, ERR_NOMEM, "no memory");
        cJSON_AddItemToObject(dst, it->string, copy);
    }
    return ERR_OK;
}

int catalog_config_write(const catalog_handle_t *h, err_t *err)
{
    cJSON *doc = cJSON_Duplicate(h->config, 1);
    char *text;
    int rc;

    if (doc == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cJSON_AddNumberToObject(doc, "veclog_format", FORMAT_VERSION);
    if (h->schema != NULL && h->schema->child != NULL) {
        cJSON *s = cJSON_Duplicate(h->schema, 1);
        if (s == NULL || !cJSON_AddItemToObject(doc, SCHEMA_KEY, s)) {
            cJSON_Delete(s);
            cJSON_Delete(doc);
            return err_set(err, ERR_NOMEM, "no memory");
        }
    }
    text = cJSON_Print(doc);
    cJSON_Delete(doc);
    if (text == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    rc = write_atomic(h->dir, CONFIG_FILE, text, err);
    free(text);
    return rc;
}

/* Reserve name under cat->mu: fails if a collection or alias has it. */
static int name_reserve(catalog_t *cat, catalog_handle_t *h, err_t *err)
{
    int rc = ERR_OK;

    pthread_mutex_lock(&cat->mu);
    const catalog_handle_t *old = ent_find(cat, h->name);
    if (old != NULL && old->dropped)
        rc = err_set(err, ERR_BUSY, "Collection `%s` is still being dropped; retry later", h->name);
    else if (old != NULL)
        rc = err_set(err, ERR_EXISTS, "Wrong input: Collection `%s` already exists!", h->name);
    else if (alias_find(cat->aliases, cat->n_aliases, h->name) != NULL)
        rc = err_set(err, ERR_EXISTS, "Wrong input: Alias `%s` already exists!", h->name);
    else if (ent_add(cat, h) != ERR_OK)
        rc = err_set(err, ERR_NOMEM, "no memory");
    pthread_mutex_unlock(&cat->mu);
    return rc;
}

int catalog_create(catalog_t *cat, const char *name, const cJSON *body, err_t *err)
{
    catalog_handle_t *h = NULL;
    bool reserved = false;
    int rc = catalog_name_check(name, "collection", err);

    if (rc != ERR_OK)
        return rc;
    h = handle_new(cat, name);
    if (h == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    rc = config_build(&cat->opts, body, &h->config, err);
    if (rc == ERR_OK) {
        const cJSON *vectors = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(h->config, "params"), "vectors");
        coll_vector_def_t *defs = NULL;
        uint32_t n = 0;
        if (vectors->child != NULL)
            rc = coll_vector_defs_parse(vectors, &defs, &n, err);
        coll_vector_defs_free(defs, n);
    }
    if (rc == ERR_OK && (rc = name_reserve(cat, h, err)) == ERR_OK)
        reserved = true;
    if (rc != ERR_OK)
        goto fail;
    rm_tree(h->dir); /* leftovers of an interrupted create */
    rc = handle_open(cat, h, err);
    if (rc == ERR_OK)
        rc = catalog_config_write(h, err);
    if (rc == ERR_OK) {
        char parent[4096];
        snprintf(parent, sizeof(parent), "%s/collections", cat->root);
        rc = fsync_path(parent, err);
    }
    if (rc != ERR_OK)
        goto fail;
    pthread_mutex_lock(&cat->mu);
    h->ready = true;
    pthread_mutex_unlock(&cat->mu);
    log_info("catalog", "created collection %s", name);
    return ERR_OK;
fail:
    /* a reserved name is released by handle_free after the leftovers of
     * this attempt are removed */
    h->dropped = reserved;
    handle_free(h);
    return rc;
}

static int aliases_save(catalog_t *cat, const alias_t *a, size_t n, err_t *err)
{
    cJSON *o = cJSON_CreateObject();
    char *text;
    int rc;

    for (size_t i = 0; o && i < n; i++)
        cJSON_AddStringToObject(o, a[i].alias, a[i].collection);
    text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (text == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    rc = write_atomic(cat->root, "aliases.json", text, err);
    free(text);
    return rc;
}

static void aliases_free(alias_t *a, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(a[i].alias);
        free(a[i].collection);
    }
    free(a);
}

int catalog_drop(catalog_t *cat, const char *name, err_t *err)
{
    catalog_handle_t *h;
    char marker[4096];
    int rc = ERR_OK, fd;

    pthread_mutex_lock(&cat->mu);
    h = ent_find(cat, name);
    if (h == NULL || !h->ready) {
        pthread_mutex_unlock(&cat->mu);
        return err_set(err, ERR_NOT_FOUND, "Collection `%s` doesn't exist!", name);
    }
    snprintf(marker, sizeof(marker), "%s/%s", h->dir, DROPPED_FILE);
    fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || fsync(fd) != 0) {
        rc = err_errno(err, errno, "mark %s dropped", name);
        if (fd >= 0)
            close(fd);
        pthread_mutex_unlock(&cat->mu);
        return rc;
    }
    close(fd);
    if ((rc = fsync_path(h->dir, err)) != ERR_OK) {
        unlink(marker);
        pthread_mutex_unlock(&cat->mu);
        return rc;
    }
    size_t w = 0;
    for (size_t i = 0; i < cat->n_aliases; i++) {
        if (strcmp(cat->aliases[i].collection, name) == 0) {
            free(cat->aliases[i].alias);
            free(cat->aliases[i].collection);
        } else {
            cat->aliases[w++] = cat->aliases[i];
        }
    }
    if (w != cat->n_aliases) {
        cat->n_aliases = w;
        if (aliases_save(cat, cat->aliases, w, err) != ERR_OK)
            log_warn("catalog", "dropping %s: aliases not saved: %s", name, err->msg);
    }
    /* the entry stays (not ready, so invisible) until handle_free has
     * removed the files: the name cannot be reused before that */
    h->ready = false;
    h->dropped = true;
    bool last = --h->refs == 0;
    pthread_mutex_unlock(&cat->mu);
    if (last)
        handle_free(h);
    log_info("catalog", "dropped collection %s", name);
    return ERR_OK;
}

int catalog_update(catalog_t *cat, const char *name, const cJSON *body, err_t *err)
{
    catalog_handle_t *h;
    cJSON *cfg = NULL;
    const cJSON *it;
    int rc;

    if (!cJSON_IsObject(body))
        return err_set(err, ERR_INVALID, "request body must be a JSON object");
    rc = catalog_acquire(cat, name, &h, err);
    if (rc != ERR_OK)
        return rc;
    pthread_mutex_lock(&cat->mu);
    cfg = cJSON_Duplicate(h->config, 1);
    for (it = body->child; it != NULL && rc == ERR_OK && cfg != NULL; it = it->next) {
        const char *k = it->string;
        if (strcmp(k, "hnsw_config") == 0)
            rc = diff_apply(cJSON_GetObjectItemCaseSensitive(cfg, k), it, hnsw_fields, k, err);
        else if (strcmp(k, "optimizers_config") == 0)
            rc = diff_apply(cJSON_GetObjectItemCaseSensitive(cfg, "optimizer_config"), it,
                            opt_fields, k, err);
        else if ((strcmp(k, "params") == 0 || strcmp(k, "metadata") == 0) && cJSON_IsNull(it))
            ; /* unchanged */
        else if ((strcmp(k, "params") == 0 || strcmp(k, "metadata") == 0) && !cJSON_IsObject(it))
            rc = err_set(err, ERR_INVALID, "%s: expected an object", k);
        else if (strcmp(k, "params") == 0) {
            const cJSON *p;
            cJSON_ArrayForEach(p, it) {
                /* fixed at creation (not in Qdrant's CollectionParamsDiff) */
                if (strcmp(p->string, "shard_number") == 0 ||
                    strcmp(p->string, "sharding_method") == 0) {
                    rc = err_set(err, ERR_INVALID, "params: cannot update \"%s\"", p->string);
                    break;
                }
                rc = params_field(cJSON_GetObjectItemCaseSensitive(cfg, "params"), p, err);
                if (rc == ERR_NOT_FOUND)
                    rc = err_set(err, ERR_INVALID, "params: cannot update \"%s\"", p->string);
                if (rc != ERR_OK)
                    break;
            }
        } else if (strcmp(k, "metadata") == 0) {
            cJSON *md = cJSON_GetObjectItemCaseSensitive(cfg, "metadata");
            if (md == NULL)
                md = cJSON_AddObjectToObject(cfg, "metadata");
            rc = json_merge_top(md, it, err);
        } else if (strcmp(k, "vectors") == 0 || strcmp(k, "quantization_config") == 0 ||
                   strcmp(k, "sparse_vectors") == 0 || strcmp(k, "strict_mode_config") == 0) {
            if (!cJSON_IsNull(it))
                rc = err_set(err, ERR_UNSUPPORTED, "updating %s is not supported", k);
        } else {
            rc = err_set(err, ERR_INVALID, "unknown field \"%s\"", k);
        }
    }
    if (rc == ERR_OK && cfg != NULL)
        rc = config_bounds(cfg, err);
    if (cfg == NULL)
        rc = err_set(err, ERR_NOMEM, "no memory");
    if (rc == ERR_OK) {
        cJSON *old = h->config;
        h->config = cfg;
        rc = catalog_config_write(h, err);
        if (rc == ERR_OK) {
            cJSON_Delete(old);
            cfg = NULL;
        } else {
            h->config = old;
        }
    }
    pthread_mutex_unlock(&cat->mu);
    cJSON_Delete(cfg);
    catalog_release(h);
    return rc;
}

/* ---- handles ---------------------------------------------------------- */

int catalog_acquire(catalog_t *cat, const char *name, catalog_handle_t **out, err_t *err)
{
    catalog_handle_t *h;

    pthread_mutex_lock(&cat->mu);
    h = ent_find(cat, name);
    if (h == NULL) {
        alias_t *a = alias_find(cat->aliases, cat->n_aliases, name);
        if (a != NULL)
            h = ent_find(cat, a->collection);
    }
    if (h != NULL && h->ready)
        h->refs++;
    else
        h = NULL;
    pthread_mutex_unlock(&cat->mu);
    *out = h;
    if (h == NULL)
        return err_set(err, ERR_NOT_FOUND, "Collection `%s` doesn't exist!", name);
    return ERR_OK;
}

void catalog_release(catalog_handle_t *h)
{
    if (h == NULL)
        return;
    catalog_t *cat = h->cat;
    pthread_mutex_lock(&cat->mu);
    bool last = --h->refs == 0;
    pthread_mutex_unlock(&cat->mu);
    if (last)
        handle_free(h);
}

coll_t *catalog_handle_coll(catalog_handle_t *h)
{
    return h->coll;
}

const char *catalog_handle_name(catalog_handle_t *h)
{
    return h->name;
}

bool catalog_exists(catalog_t *cat, const char *name)
{
    pthread_mutex_lock(&cat->mu);
    catalog_handle_t *h = ent_find(cat, name);
    bool ok = h != NULL && h->ready;
    pthread_mutex_unlock(&cat->mu);
    return ok;
}

/* ---- JSON views ------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

cJSON *catalog_list_json(catalog_t *cat)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "collections");
    char **names;
    size_t n = 0;

    pthread_mutex_lock(&cat->mu);
    names = calloc(cat->n_ents + 1, sizeof(char *));
    for (size_t i = 0; names && i < cat->n_ents; i++)
        if (cat->ents[i]->ready)
            names[n++] = strdup(cat->ents[i]->name);
    pthread_mutex_unlock(&cat->mu);
    if (names == NULL || arr == NULL) {
        free(names);
        cJSON_Delete(o);
        return NULL;
    }
    qsort(names, n, sizeof(char *), name_cmp);
    for (size_t i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", names[i] ? names[i] : "");
        cJSON_AddItemToArray(arr, e);
        free(names[i]);
    }
    free(names);
    return o;
}

cJSON *catalog_info_json(catalog_t *cat, catalog_handle_t *h)
{
    coll_info_t info;
    cJSON *o = cJSON_CreateObject();

    coll_info_get(h->coll, &info);
    /* Qdrant: yellow while optimizations run; segments_count counts the
     * appendable segment too */
    cJSON_AddStringToObject(o, "status", info.failed ? "red" : info.optimizing ? "yellow" : "green");
    cJSON_AddStringToObject(o, "optimizer_status", "ok");
    cJSON_AddNumberToObject(o, "indexed_vectors_count", (double)info.indexed_vectors);
    cJSON_AddNumberToObject(o, "points_count", (double)info.points);
    cJSON_AddNumberToObject(o, "segments_count", (double)info.segments + 1);
    pthread_mutex_lock(&cat->mu);
    cJSON_AddItemToObject(o, "config", cJSON_Duplicate(h->config, 1));
    cJSON *schema = cJSON_Duplicate(h->schema, 1);
    pthread_mutex_unlock(&cat->mu);
    /* the counts scan the collection: not under cat->mu */
    cJSON_AddItemToObject(o, "payload_schema", catalog_index_info_json(h->coll, schema));
    cJSON_Delete(schema);
    return o;
}

cJSON *catalog_aliases_json(catalog_t *cat, const char *collection)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "aliases");

    pthread_mutex_lock(&cat->mu);
    for (size_t i = 0; arr && i < cat->n_aliases; i++) {
        if (collection != NULL && strcmp(cat->aliases[i].collection, collection) != 0)
            continue;
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "alias_name", cat->aliases[i].alias);
        cJSON_AddStringToObject(e, "collection_name", cat->aliases[i].collection);
        cJSON_AddItemToArray(arr, e);
    }
    pthread_mutex_unlock(&cat->mu);
    return o;
}

/* ---- aliases ---------------------------------------------------------- */

typedef struct atable {
    alias_t *a;
    size_t n, cap;
} atable_t;

static const char *str_field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int atable_set(atable_t *t, const char *alias, const char *coll)
{
    alias_t *a = alias_find(t->a, t->n, alias);
    char *c = strdup(coll);

    if (c == NULL)
        return ERR_NOMEM;
    if (a != NULL) {
        free(a->collection);
        a->collection = c;
        return ERR_OK;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        alias_t *na = realloc(t->a, cap * sizeof(*na));
        if (na == NULL) {
            free(c);
            return ERR_NOMEM;
        }
        t->a = na;
        t->cap = cap;
    }
    t->a[t->n].alias = strdup(alias);
    t->a[t->n].collection = c;
    if (t->a[t->n].alias == NULL) {
        free(c);
        return ERR_NOMEM;
    }
    t->n++;
    return ERR_OK;
}

static void atable_del(atable_t *t, alias_t *a)
{
    free(a->alias);
    free(a->collection);
    *a = t->a[--t->n];
}

/* One action against the working table t.  cat->mu held. */
static int alias_action(catalog_t *cat, atable_t *t, const cJSON *act, size_t i, err_t *err)
{
    const cJSON *b;

    if ((b = cJSON_GetObjectItemCaseSensitive(act, "create_alias")) != NULL) {
        const char *coll = str_field(b, "collection_name"), *alias = str_field(b, "alias_name");
        if (coll == NULL || alias == NULL)
            return err_set(err, ERR_INVALID,
                           "actions[%zu].create_alias: collection_name and alias_name are required", i);
        if (catalog_name_check(alias, "alias", err) != ERR_OK)
            return ERR_INVALID;
        catalog_handle_t *h = ent_find(cat, coll);
        if (h == NULL || !h->ready)
            return err_set(err, ERR_NOT_FOUND, "Collection `%s` doesn't exist!", coll);
        if (ent_find(cat, alias) != NULL)
            return err_set(err, ERR_EXISTS, "Collection `%s` already exists!", alias);
        return atable_set(t, alias, coll) == ERR_OK ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
    }
    if ((b = cJSON_GetObjectItemCaseSensitive(act, "delete_alias")) != NULL) {
        const char *alias = str_field(b, "alias_name");
        alias_t *a = alias ? alias_find(t->a, t->n, alias) : NULL;
        if (alias == NULL)
            return err_set(err, ERR_INVALID, "actions[%zu].delete_alias: alias_name is required", i);
        if (a == NULL)
            return err_set(err, ERR_NOT_FOUND, "Alias `%s` doesn't exist!", alias);
        atable_del(t, a);
        return ERR_OK;
    }
    if ((b = cJSON_GetObjectItemCaseSensitive(act, "rename_alias")) != NULL) {
        const char *from = str_field(b, "old_alias_name"), *to = str_field(b, "new_alias_name");
        alias_t *a = from ? alias_find(t->a, t->n, from) : NULL;
        if (from == NULL || to == NULL)
            return err_set(err, ERR_INVALID,
                           "actions[%zu].rename_alias: old_alias_name and new_alias_name are required", i);
        if (a == NULL)
            return err_set(err, ERR_NOT_FOUND, "Alias `%s` doesn't exist!", from);
        if (catalog_name_check(to, "alias", err) != ERR_OK)
            return ERR_INVALID;
        if (ent_find(cat, to) != NULL)
            return err_set(err, ERR_EXISTS, "Collection `%s` already exists!", to);
        char *coll = strdup(a->collection);
        int rc = coll ? ERR_OK : ERR_NOMEM;
        atable_del(t, a);
        if (rc == ERR_OK)
            rc = atable_set(t, to, coll);
        free(coll);
        return rc == ERR_OK ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
    }
    return err_set(err, ERR_INVALID,
                   "actions[%zu]: expected create_alias, delete_alias or rename_alias", i);
}

int catalog_aliases_update(catalog_t *cat, const cJSON *body, err_t *err)
{
    const cJSON *actions = cJSON_GetObjectItemCaseSensitive(body, "actions");
    const cJSON *act;
    atable_t t = { 0 };
    size_t i = 0;
    int rc = ERR_OK;

    if (!cJSON_IsArray(actions))
        return err_set(err, ERR_INVALID, "actions: expected a list of alias operations");
    pthread_mutex_lock(&cat->mu);
    for (size_t k = 0; k < cat->n_aliases && rc == ERR_OK; k++)
        rc = atable_set(&t, cat->aliases[k].alias, cat->aliases[k].collection);
    if (rc != ERR_OK)
        rc = err_set(err, ERR_NOMEM, "no memory");
    cJSON_ArrayForEach(act, actions) {
        if (rc != ERR_OK)
            break;
        rc = alias_action(cat, &t, act, i++, err);
    }
    if (rc == ERR_OK)
        rc = aliases_save(cat, t.a, t.n, err);
    if (rc == ERR_OK) {
        aliases_free(cat->aliases, cat->n_aliases);
        cat->aliases = t.a;
        cat->n_aliases = t.n;
    } else {
        aliases_free(t.a, t.n);
    }
    pthread_mutex_unlock(&cat->mu);
    return rc;
}

int catalog_alias_switch(catalog_t *cat, const char *alias, const char *expect, const char *to,
                         err_t *err)
{
    atable_t t = { 0 };
    int rc = ERR_OK;

    pthread_mutex_lock(&cat->mu);
    for (size_t k = 0; k < cat->n_aliases && rc == ERR_OK; k++)
        rc = atable_set(&t, cat->aliases[k].alias, cat->aliases[k].collection);
    if (rc != ERR_OK) {
        rc = err_set(err, ERR_NOMEM, "no memory");
        goto out;
    }
    alias_t *a = alias_find(t.a, t.n, alias);
    const char *cur = a ? a->collection : NULL;
    if ((expect == NULL) != (cur == NULL) || (cur != NULL && strcmp(cur, expect) != 0)) {
        rc = err_set(err, ERR_EXISTS, "alias `%s` points to %s%s%s, not to %s%s%s: nothing switched",
                     alias, cur ? "`" : "", cur ? cur : "no collection", cur ? "`" : "",
                     expect ? "`" : "", expect ? expect : "nothing", expect ? "`" : "");
        goto out;
    }
    catalog_handle_t *h = ent_find(cat, to);
    if (h == NULL || !h->ready) {
        rc = err_set(err, ERR_NOT_FOUND, "Collection `%s` doesn't exist!", to);
        goto out;
    }
    if (a == NULL && ent_find(cat, alias) != NULL) {
        rc = err_set(err, ERR_EXISTS, "Collection `%s` already exists!", alias);
        goto out;
    }
    if (a == NULL && (rc = catalog_name_check(alias, "alias", err)) != ERR_OK)
        goto out;
    if ((rc = atable_set(&t, alias, to)) != ERR_OK)
        rc = err_set(err, ERR_NOMEM, "no memory");
    else
        rc = aliases_save(cat, t.a, t.n, err);
out:
    if (rc == ERR_OK) {
        aliases_free(cat->aliases, cat->n_aliases);
        cat->aliases = t.a;
        cat->n_aliases = t.n;
    } else {
        aliases_free(t.a, t.n);
    }
    pthread_mutex_unlock(&cat->mu);
    return rc;
}

/* ---- open and close --------------------------------------------------- */

void catalog_opts_default(catalog_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->storage_path = "./storage";
    o->wal_sync_mode = WAL_SYNC_ALWAYS;
    o->wal_sync_interval_ms = 100;
    o->wal_capacity_mb = 32;
    o->on_disk_payload = true;
    o->hnsw_m = 16;
    o->hnsw_ef_construct = 100;
    o->hnsw_full_scan_threshold_kb = 10000;
    o->opt_deleted_threshold = 0.2;
    o->opt_vacuum_min_vector_number = 1000;
    o->opt_flush_interval_sec = 5;
    o->opt_indexing_threshold_kb = 10000;
}

static int load_aliases(catalog_t *cat, err_t *err)
{
    char path[4096];
    cJSON *j, *it;
    atable_t t = { 0 };

    snprintf(path, sizeof(path), "%s/aliases.json", cat->root);
    if (access(path, F_OK) != 0)
        return ERR_OK;
    j = read_json(path, err);
    if (j == NULL)
        return err->code;
    bool stale = false;
    cJSON_ArrayForEach(it, j) {
        if (!cJSON_IsString(it))
            continue;
        catalog_handle_t *h = ent_find(cat, it->valuestring);
        if (h == NULL) {
            log_warn("catalog", "alias %s points to missing collection %s; dropped",
                     it->string, it->valuestring);
            stale = true;
            continue;
        }
        if (atable_set(&t, it->string, it->valuestring) != ERR_OK) {
            cJSON_Delete(j);
            aliases_free(t.a, t.n);
            return err_set(err, ERR_NOMEM, "no memory");
        }
    }
    cJSON_Delete(j);
    cat->aliases = t.a;
    cat->n_aliases = t.n;
    /* forget them on disk too, or a new collection of that name would get
     * them back at the next open */
    if (stale && aliases_save(cat, t.a, t.n, err) != ERR_OK)
        log_warn("catalog", "stale aliases not removed from disk: %s", err->msg);
    return ERR_OK;
}

/* Open one collection directory found at start-up. */
static int load_one(catalog_t *cat, const char *name, err_t *err)
{
    catalog_handle_t *h = handle_new(cat, name);
    char path[4096];
    int rc;

    if (h == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    snprintf(path, sizeof(path), "%s/%s", h->dir, DROPPED_FILE);
    if (access(path, F_OK) == 0) {
        log_info("catalog", "finishing the interrupted drop of %s", name);
        coll_dir_remove(h->dir);
        handle_free(h);
        return ERR_OK;
    }
    snprintf(path, sizeof(path), "%s/%s", h->dir, CONFIG_FILE);
    if (access(path, F_OK) != 0) {
        log_warn("catalog", "removing %s: interrupted create (no %s)", h->dir, CONFIG_FILE);
        rm_tree(h->dir);
        handle_free(h);
        return ERR_OK;
    }
    h->config = read_json(path, err);
    rc = h->config ? ERR_OK : err->code;
    if (rc == ERR_OK) {
        cJSON_DeleteItemFromObjectCaseSensitive(h->config, "veclog_format");
        catalog_index_schema_load(h);
        rc = handle_open(cat, h, err);
    }
    h->ready = true;
    if (rc == ERR_OK && ent_add(cat, h) != ERR_OK)
        rc = err_set(err, ERR_NOMEM, "no memory");
    if (rc != ERR_OK) {
        handle_free(h);
        return rc;
    }
    return ERR_OK;
}

static int load_collections(catalog_t *cat, err_t *err)
{
    char path[4096];
    DIR *d;
    struct dirent *de;
    int rc = ERR_OK;

    snprintf(path, sizeof(path), "%s/collections", cat->root);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return err_errno(err, errno, "create %s", path);
    d = opendir(path);
    if (d == NULL)
        return err_errno(err, errno, "open %s", path);
    while ((de = readdir(d)) != NULL && rc == ERR_OK) {
        if (de->d_name[0] == '.')
            continue;
        rc = load_one(cat, de->d_name, err);
    }
    closedir(d);
    return rc;
}

int catalog_open(const catalog_opts_t *opts, catalog_t **out, err_t *err)
{
    catalog_t *cat = calloc(1, sizeof(*cat));
    char path[4096];
    int rc = ERR_OK;

    *out = NULL;
    if (cat == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    cat->opts = *opts;
    cat->lock_fd = -1;
    pthread_mutex_init(&cat->mu, NULL);
    cat->root = strdup(opts->storage_path);
    cat->opts.storage_path = cat->root;
    if (cat->root == NULL) {
        rc = err_set(err, ERR_NOMEM, "no memory");
        goto fail;
    }
    if (mkdir(cat->root, 0755) != 0 && errno != EEXIST) {
        rc = err_errno(err, errno, "create storage path %s", cat->root);
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/.lock", cat->root);
    cat->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (cat->lock_fd < 0 || flock(cat->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rc = err_setr(err, ERR_BUSY, false, "storage path %s is in use by another process",
                      cat->root);
        goto fail;
    }
    rc = load_collections(cat, err);
    if (rc == ERR_OK)
        rc = load_aliases(cat, err);
    if (rc != ERR_OK)
        goto fail;
    log_info("catalog", "storage %s: %zu collection(s), %zu alias(es)", cat->root, cat->n_ents,
             cat->n_aliases);
    *out = cat;
    return ERR_OK;
fail:
    catalog_close(cat);
    return rc;
}

void catalog_close(catalog_t *cat)
{
    catalog_handle_t **ents;
    size_t n;

    if (cat == NULL)
        return;
    ents = cat->ents;
    n = cat->n_ents;
    cat->ents = NULL;
    cat->n_ents = 0;
    for (size_t i = 0; i < n; i++)
        handle_free(ents[i]);
    free(ents);
    aliases_free(cat->aliases, cat->n_aliases);
    if (cat->lock_fd >= 0)
        close(cat->lock_fd);
    pthread_mutex_destroy(&cat->mu);
    free(cat->root);
    free(cat);
}
