/*
 * catalog_internal.h - what catalog.c (collections, aliases, files) and
 * catalog_index.c (payload index definitions) share.  Nothing outside
 * store/catalog*.c includes this.
 */
#ifndef VECLOG_CATALOG_INTERNAL_H
#define VECLOG_CATALOG_INTERNAL_H

#include <pthread.h>

#include "catalog.h"

#define CONFIG_FILE "config.json"
#define DROPPED_FILE "DROPPED"
#define FORMAT_VERSION 1
/* config.json's section of payload index definitions (not CollectionConfig) */
#define SCHEMA_KEY "payload_schema"

struct catalog_handle {
    catalog_t *cat;
    char *name;
    char *dir;
    coll_t *coll;
    bool ready;               /* false while being created; guarded by mu */
    cJSON *config;            /* CollectionConfig */
    cJSON *schema;            /* payload indexes: field -> stored PayloadFieldSchema
                               * (index_schema_parse's form); NULL when none */
    int refs;                 /* the catalog's own reference counts as one */
    bool dropped;
};

typedef struct alias {
    char *alias;
    char *collection;
} alias_t;

struct catalog {
    catalog_opts_t opts;
    char *root;
    int lock_fd;
    pthread_mutex_t mu;
    catalog_handle_t **ents;
    size_t n_ents;
    alias_t *aliases;
    size_t n_aliases;
};

/* Write h->config (and h->schema) to config.json atomically.  cat->mu
 * held by the caller when other threads can reach h. */
int catalog_config_write(const catalog_handle_t *h, err_t *err);

/* Take h->schema from h->config's payload_schema section at load,
 * dropping invalid entries with a warning. */
void catalog_index_schema_load(catalog_handle_t *h);

/* Build the in-memory index (coll_index_set) of every stored
 * definition that has one (keyword, integer, bool, uuid, float,
 * datetime), after h->coll was opened.  Failures are logged: filters then
 * scan, with the same results. */
void catalog_index_apply(catalog_handle_t *h);

/* CollectionInfo.payload_schema for a stored schema (counts points). */
cJSON *catalog_index_info_json(coll_t *c, const cJSON *schema);

#endif
