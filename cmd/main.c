/*
 * main.c - the veclog command line.
 *
 *   veclog serve [--config FILE]   ingest + query node in one process
 *   veclog broker [--brokers N]    embedded development Kafka broker
 *   veclog config [--config FILE]  print the effective configuration
 *   veclog dlq list|show|redrive|purge ...  dead-letter tooling (dlq/redrive.h)
 *   veclog version
 *
 * Start-up order for serve: configuration (any error stops here, naming
 * the key), storage recovery (every collection replays its WAL tail), the
 * HTTP node, the embedded broker when no kafka.brokers is set (with the
 * configured topics and the dead-letter topic created on it), Kafka
 * ingest; then it runs until SIGINT or SIGTERM and shuts down in reverse:
 * ingest first (it finishes its batch and commits), then the HTTP node,
 * the broker, and storage last (every collection checkpoints).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/config.h"
#include "dlq/dlq.h"
#include "dlq/redrive.h"
#include "embed/embed.h"
#include "ingest/backfill.h"
#include "ingest/broker.h"
#include "ingest/ingest.h"
#include "ingest/sink.h"
#include "query/api.h"
#include "query/http.h"
#include "store/catalog.h"
#include "store/dist.h"
#include "store/log.h"

#define VECLOG_VERSION "0.1.0"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: veclog <command> [options]\n"
            "\n"
            "commands:\n"
            "  serve [--config FILE]    run the query node and Kafka ingest\n"
            "  broker [--brokers N]     run an embedded development Kafka broker and print\n"
            "                           bootstrap.servers=HOST:PORT\n"
            "  config [--config FILE]   print the effective configuration (file + environment)\n"
            "  dlq list|show P:O|redrive (P:O|--all) [--apply] [--dry-run] [--max-redrives N]\n"
            "      [--force]\n"
            "      |purge (--all|P:O) [--config FILE] [--brokers HOST:PORT]\n"
            "                           list, show, redrive or purge dead letters of dlq.topic\n"
            "  backfill start|status|pause|resume|cancel|delete|list ...  backfill jobs of\n"
            "                           the running server (docs/migration.md)\n"
            "  version                  print the version\n"
            "\n"
            "Every configuration key can be overridden by environment, e.g.\n"
            "VECLOG__SERVICE__HTTP_PORT=7000 or VECLOG__STORAGE__STORAGE_PATH=/data.\n");
}

static const char *opt_value(int argc, char **argv, const char *name)
{
    for (int i = 2; i < argc - 1; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

/* Reject options we do not know, so a typo is not silently ignored. */
static int check_opts(int argc, char **argv, const char *const *known)
{
    for (int i = 2; i < argc; i++) {
        bool ok = false;
        for (const char *const *k = known; *k; k++)
            if (strcmp(argv[i], *k) == 0 && i + 1 < argc) {
                ok = true;
                i++;
                break;
            }
        if (!ok) {
            fprintf(stderr, "veclog %s: unexpected argument \"%s\"\n", argv[1], argv[i]);
            return -1;
        }
    }
    return 0;
}

static int load_config(int argc, char **argv, config_t *cfg)
{
    static const char *const known[] = { "--config", NULL };
    err_t err;

    if (check_opts(argc, argv, known) != 0)
        return -1;
    if (config_load(opt_value(argc, argv, "--config"), environ, cfg, &err) != ERR_OK) {
        fprintf(stderr, "veclog: %s\n", err.msg);
        return -1;
    }
    int level = log_level_parse(cfg->log_level);
    log_level_set(level < 0 ? LOG_INFO : level);
    return 0;
}

static void catalog_opts_from_config(const config_t *cfg, catalog_opts_t *o)
{
    catalog_opts_default(o);
    o->storage_path = cfg->storage.storage_path;
    o->wal_sync_mode = cfg->storage.wal.sync_mode == CONFIG_SYNC_ALWAYS ? WAL_SYNC_ALWAYS
                       : cfg->storage.wal.sync_mode == CONFIG_SYNC_INTERVAL ? WAL_SYNC_INTERVAL
                                                                             : WAL_SYNC_NONE;
    o->wal_sync_interval_ms = cfg->storage.wal.sync_interval_ms;
    o->wal_capacity_mb = cfg->storage.wal.wal_capacity_mb;
    o->wal_segments_ahead = cfg->storage.wal.wal_segments_ahead;
    o->on_disk_payload = cfg->storage.on_disk_payload;
    o->hnsw_m = cfg->storage.hnsw_index.m;
    o->hnsw_ef_construct = cfg->storage.hnsw_index.ef_construct;
    o->hnsw_full_scan_threshold_kb = cfg->storage.hnsw_index.full_scan_threshold_kb;
    o->hnsw_max_indexing_threads = cfg->storage.hnsw_index.max_indexing_threads;
    o->hnsw_on_disk = cfg->storage.hnsw_index.on_disk;
    o->hnsw_payload_m = cfg->storage.hnsw_index.payload_m;
    o->opt_deleted_threshold = cfg->storage.optimizers.deleted_threshold;
    o->opt_vacuum_min_vector_number = cfg->storage.optimizers.vacuum_min_vector_number;
    o->opt_default_segment_number = cfg->storage.optimizers.default_segment_number;
    o->opt_max_segment_size_kb = cfg->storage.optimizers.max_segment_size_kb;
    o->opt_memmap_threshold_kb = cfg->storage.optimizers.memmap_threshold_kb;
    o->opt_indexing_threshold_kb = cfg->storage.optimizers.indexing_threshold_kb;
    o->opt_flush_interval_sec = cfg->storage.optimizers.flush_interval_sec;
    o->opt_max_optimization_threads = cfg->storage.optimizers.max_optimization_threads;
}

/* Block SIGINT/SIGTERM in every thread (threads inherit the mask) and
 * wait for one here: shutdown then runs on the main thread, in order. */
static void signals_block(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int signal_wait(const sigset_t *set)
{
    int sig = 0;
    while (sigwait(set, &sig) != 0)
        ;
    return sig;
}

static int serve_http(const config_t *cfg, catalog_t *cat, api_t **api, http_t **http)
{
    api_opts_t ao = { .api_key = cfg->service.api_key,
                      .read_only_api_key = cfg->service.read_only_api_key,
                      .version = VECLOG_VERSION };
    http_opts_t ho = { .host = cfg->service.host, .port = cfg->service.http_port,
                       .max_body = (uint64_t)cfg->service.max_request_size_mb << 20,
                       .timeout_sec = (int)cfg->service.request_timeout_sec,
                       .workers = (int)cfg->service.max_workers,
                       .cors = cfg->service.enable_cors };
    err_t err;

    if (api_new(cat, &ao, api, &err) != ERR_OK || http_start(*api, &ho, http, &err) != ERR_OK) {
        log_error("veclog", "query node: %s", err.msg);
        return -1;
    }
    return 0;
}

/* config_kv_t pairs as the NULL-terminated "name", "value", ... array
 * the Kafka modules take; the strings stay owned by cfg. */
static const char **kv_pairs(const config_kv_t *kv, size_t n)
{
    const char **a = calloc(2 * n + 2, sizeof(char *));
    for (size_t i = 0; a != NULL && i < n; i++) {
        a[2 * i] = kv[i].key;
        a[2 * i + 1] = kv[i].value;
    }
    return a;
}

/* Topics (not patterns) and the dead-letter topic on the embedded broker. */
static void broker_topics(const config_t *cfg, broker_t *broker)
{
    err_t err;

    for (size_t i = 0; i <= cfg->kafka.n_topics; i++) {
        const char *t = i < cfg->kafka.n_topics ? cfg->kafka.topics[i] : cfg->dlq.topic;
        if (t[0] != '^' && broker_topic_create(broker, t, 1, &err) != ERR_OK)
            log_warn("veclog", "embedded broker: %s", err.msg);
    }
}

/* The embedding models for Qdrant Documents: the built-ins plus the
 * models: section.  -1 (logged) on a bad entry, so a typo stops the start
 * instead of dead-lettering every message that names the model. */
static int serve_models(const config_t *cfg, embed_reg_t **out)
{
    embed_conf_t *confs = calloc(cfg->n_models + 1, sizeof(*confs));
    err_t err;
    int rc = 0;

    *out = NULL;
    if (confs == NULL) {
        log_error("veclog", "models: no memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_models; i++)
        config_model_embed(&cfg->models[i], &confs[i]);
    if (embed_reg_new(confs, cfg->n_models, out, &err) != ERR_OK) {
        log_error("veclog", "models: %s", err.msg);
        rc = -1;
    }
    free(confs);
    return rc;
}

static int serve_ingest(const config_t *cfg, catalog_t *cat, broker_t *broker,
                        const embed_reg_t *models, ingest_t **out)
{
    const char **props = kv_pairs(cfg->kafka.properties, cfg->kafka.n_properties);
    const char **routes = kv_pairs(cfg->kafka.routes, cfg->kafka.n_routes);
    ingest_opts_t o = {
        .brokers = broker ? broker_bootstraps(broker) : cfg->kafka.brokers,
        .group_id = cfg->kafka.group_id,
        .topics = (const char *const *)cfg->kafka.topics,
        .n_topics = cfg->kafka.n_topics,
        .auto_offset_reset = cfg->kafka.auto_offset_reset,
        .batch_size = cfg->kafka.batch_size,
        .batch_timeout_ms = cfg->kafka.batch_timeout_ms,
        .routes = routes,
        .properties = props,
        .dlq_topic = cfg->dlq.topic,
        .max_message_bytes = (size_t)cfg->service.max_request_size_mb << 20,
        .auto_create_collections = cfg->kafka.auto_create_collections,
        .auto_create_distance = cfg->kafka.auto_create_distance,
        .embed = models,
    };
    char *local_dir = NULL;
    err_t err;
    int rc = 0;

    if (asprintf(&local_dir, "%s/dlq", cfg->storage.storage_path) < 0)
        local_dir = NULL;
    o.dlq_local_dir = local_dir;
    if (props == NULL || routes == NULL || local_dir == NULL) {
        log_error("veclog", "kafka ingest: no memory");
        rc = -1;
    } else if (broker != NULL) {
        broker_topics(cfg, broker);
    }
    if (rc == 0 && ingest_start(cat, &o, out, &err) != ERR_OK) {
        log_error("veclog", "%s", err.msg);
        rc = -1;
    }
    free(props);
    free(routes);
    free(local_dir);
    return rc;
}

/* The query node reaches ingest through these (query/ does not include
 * ingest/). */
static cJSON *hook_status(void *ctx)
{
    return ingest_status_json(ctx);
}

static int hook_wait(void *ctx, const char *topic, int32_t partition, int64_t offset,
                     int timeout_ms, err_t *err)
{
    return ingest_wait_applied(ctx, topic, partition, offset, timeout_ms, err);
}

static char *hook_metrics(void *ctx)
{
    return ingest_metrics_text(ctx);
}

/* A sink for re-applying dead letters (redrive mode apply), routed as
 * ingest routes; no dead-letter queue of its own: a refusal is reported
 * to the operator instead.  NULL on failure (logged). */
static sink_t *reapply_sink_new(const config_t *cfg, catalog_t *cat, const embed_reg_t *models)
{
    const char **routes = kv_pairs(cfg->kafka.routes, cfg->kafka.n_routes);
    sink_opts_t so = { .routes = routes,
                       .max_message_bytes = (size_t)cfg->service.max_request_size_mb << 20,
                       .auto_create = cfg->kafka.auto_create_collections,
                       .auto_create_distance = cfg->kafka.auto_create_distance,
                       .embed = models };
    sink_t *s = NULL;
    err_t err;

    if (routes == NULL || sink_new(cat, NULL, &so, &s, &err) != ERR_OK)
        log_error("veclog", "dead-letter re-apply: %s", routes ? err.msg : "no memory");
    free(routes);
    return s;
}

/* redrive_opts_t.apply over a sink (callers serialize: one thread). */
static int reapply(void *ctx, const char *topic, const void *key, size_t key_len,
                   const void *value, size_t value_len, err_t *err)
{
    size_t n;
    return sink_reapply(ctx, topic, key, key_len, value, value_len, &n, err);
}

/* The dead-letter tool behind /dlq: one redrive_t per request (its own
 * clients), requests serialized so purges and redrives do not race. */
typedef struct dlq_ctx {
    redrive_opts_t o;
    pthread_mutex_t mu;
    char local_dir[4096];          /* <storage_path>/dlq: redrive_opts_t.local_dir */
} dlq_ctx_t;

typedef int (*dlq_op_fn)(redrive_t *r, const void *arg, cJSON **out, err_t *err);

static int dlq_call(void *ctx, dlq_op_fn fn, const void *arg, cJSON **out, err_t *err)
{
    dlq_ctx_t *c = ctx;
    redrive_t *r;
    int rc;

    pthread_mutex_lock(&c->mu);
    if ((rc = redrive_open(&c->o, &r, err)) == ERR_OK) {
        rc = fn(r, arg, out, err);
        redrive_close(r);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int op_list(redrive_t *r, const void *arg, cJSON **out, err_t *err)
{
    (void)arg;
    return redrive_list(r, out, err);
}

static int op_show(redrive_t *r, const void *arg, cJSON **out, err_t *err)
{
    const api_dlq_ref_t *a = arg;
    return redrive_show(r, &(redrive_ref_t){ a->partition, a->offset }, out, err);
}

static int op_redrive(redrive_t *r, const void *arg, cJSON **out, err_t *err)
{
    const api_dlq_redrive_t *a = arg;
    redrive_ref_t *refs = calloc(a->n_refs + 1, sizeof(*refs));
    if (refs == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    for (size_t i = 0; i < a->n_refs; i++)
        refs[i] = (redrive_ref_t){ a->refs[i].partition, a->refs[i].offset };
    redrive_req_t q = { .all = a->all, .refs = refs, .n_refs = a->n_refs, .dry_run = a->dry_run,
                        .max_redrives = a->max_redrives, .force = a->force,
                        .mode = a->apply ? REDRIVE_APPLY : REDRIVE_PRODUCE };
    int rc = redrive_run(r, &q, out, err);
    if (rc == ERR_BUSY) { /* partial: the document says which failed */
        cJSON_Delete(*out);
        *out = NULL;
    }
    free(refs);
    return rc;
}

static int op_purge(redrive_t *r, const void *arg, cJSON **out, err_t *err)
{
    const api_dlq_ref_t *a = arg;
    redrive_ref_t u = { a ? a->partition : 0, a ? a->offset : 0 };
    return redrive_purge(r, a ? &u : NULL, out, err);
}

static int hook_dlq_list(void *ctx, cJSON **out, err_t *err)
{
    return dlq_call(ctx, op_list, NULL, out, err);
}

static int hook_dlq_show(void *ctx, const api_dlq_ref_t *ref, cJSON **out, err_t *err)
{
    return dlq_call(ctx, op_show, ref, out, err);
}

static int hook_dlq_redrive(void *ctx, const api_dlq_redrive_t *q, cJSON **out, err_t *err)
{
    return dlq_call(ctx, op_redrive, q, out, err);
}

static int hook_dlq_purge(void *ctx, const api_dlq_ref_t *until, cJSON **out, err_t *err)
{
    return dlq_call(ctx, op_purge, until, out, err);
}

/* ---- backfill jobs (ingest/backfill.h) behind /backfill --------------- */

static int hook_bf_create(void *ctx, const cJSON *def, cJSON **out, err_t *err)
{
    return backfill_job_create(ctx, def, out, err);
}

static int hook_bf_list(void *ctx, cJSON **out, err_t *err)
{
    return backfill_job_list(ctx, out, err);
}

static int hook_bf_status(void *ctx, const char *id, cJSON **out, err_t *err)
{
    return backfill_job_status(ctx, id, out, err);
}

static int hook_bf_control(void *ctx, const char *id, const char *action, cJSON **out,
                           err_t *err)
{
    return backfill_job_control(ctx, id, action, out, err);
}

static char *hook_bf_metrics(void *ctx)
{
    return backfill_mgr_metrics_text(ctx);
}

/* The backfill jobs' dead-letter producer (ingest/backfill.h): ingest's
 * brokers, dlq.topic and kafka.properties, but a dlq_t of its own (ingest's
 * belongs to the consumer thread) with its own local store,
 * <storage_path>/dlq-backfill, so the two stores never mix.  -1 on
 * failure (logged). */
static int serve_backfill_dlq(const config_t *cfg, broker_t *broker, dlq_t **out)
{
    const char **props = kv_pairs(cfg->kafka.properties, cfg->kafka.n_properties);
    char *local_dir = NULL;
    err_t err;
    int rc = 0;

    if (props == NULL ||
        asprintf(&local_dir, "%s/dlq-backfill", cfg->storage.storage_path) < 0) {
        local_dir = NULL;
        log_error("veclog", "backfill dead letters: no memory");
        rc = -1;
    } else {
        dlq_opts_t o = { .brokers = broker ? broker_bootstraps(broker) : cfg->kafka.brokers,
                         .topic = cfg->dlq.topic, .properties = props, .local_dir = local_dir };
        if (dlq_open(&o, out, &err) != ERR_OK) {
            log_error("veclog", "backfill dead letters: %s", err.msg);
            rc = -1;
        }
    }
    free(props);
    free(local_dir);
    return rc;
}

/* Open the backfill manager (resuming running jobs) and give it to the
 * API.  With dead_letters (Kafka ingest runs), its dead-letter producer
 * first: *dlq, for the caller to close after the manager.  NULL on
 * failure (logged). */
static backfill_mgr_t *serve_backfill(const config_t *cfg, catalog_t *cat,
                                      const embed_reg_t *models, broker_t *broker,
                                      bool dead_letters, api_t *api, dlq_t **dlq)
{
    backfill_opts_t o = { .cat = cat, .storage_path = cfg->storage.storage_path, .reg = models };
    backfill_mgr_t *m = NULL;
    err_t err;

    if (dead_letters && serve_backfill_dlq(cfg, broker, dlq) != 0)
        return NULL;
    o.dlq = *dlq;
    if (backfill_mgr_open(&o, &m, &err) != ERR_OK) {
        log_error("veclog", "backfill: %s", err.msg);
        return NULL;
    }
    api_backfill_hooks_t hk = { m, hook_bf_create, hook_bf_list, hook_bf_status,
                                hook_bf_control, hook_bf_metrics };
    api_set_backfill(api, &hk);
    return m;
}

/* veclog backfill ...: an HTTP client of the running server. */
static int cmd_backfill(int argc, char **argv)
{
    const char *path = NULL;
    char url[300], *args[64];
    int n = 0, rc;
    config_t cfg;
    err_t err;

    for (int i = 1; i < argc && n < 63; i++) { /* --config is ours, the rest backfill's */
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            path = argv[++i];
        else
            args[n++] = argv[i];
    }
    if (config_load(path, environ, &cfg, &err) != ERR_OK) {
        fprintf(stderr, "veclog backfill: %s\n", err.msg);
        return 2;
    }
    const char *host = strcmp(cfg.service.host, "0.0.0.0") == 0 ? "127.0.0.1" : cfg.service.host;
    snprintf(url, sizeof(url), "http://%s:%u", host, (unsigned)cfg.service.http_port);
    rc = backfill_cli_main(n, args, url, cfg.service.api_key && *cfg.service.api_key
                                             ? cfg.service.api_key : NULL);
    config_free(&cfg);
    return rc;
}

static int cmd_serve(int argc, char **argv)
{
    config_t cfg;
    catalog_opts_t copts;
    catalog_t *cat = NULL;
    broker_t *broker = NULL;
    ingest_t *ingest = NULL;
    api_t *api = NULL;
    http_t *http = NULL;
    dlq_ctx_t dctx = { .mu = PTHREAD_MUTEX_INITIALIZER };
    sink_t *reapply_sink = NULL;
    embed_reg_t *models = NULL;   /* freed after HTTP and ingest stopped */
    backfill_mgr_t *backfill = NULL;
    dlq_t *bf_dlq = NULL;         /* the backfill jobs' dead letters; closed after them */
    const char **dprops = NULL;
    sigset_t set;
    err_t err;
    int rc = 1;

    if (load_config(argc, argv, &cfg) != 0)
        return 2;
    signals_block(&set);
    log_info("veclog", "veclog %s starting (distance kernels: %s)", VECLOG_VERSION,
             dist_impl_name());
    catalog_opts_from_config(&cfg, &copts);
    if (catalog_open(&copts, &cat, &err) != ERR_OK) {
        log_error("veclog", "storage: %s", err.msg);
        goto out;
    }
    if (serve_models(&cfg, &models) != 0)
        goto out;
    if (serve_http(&cfg, cat, &api, &http) != 0)
        goto out;
    api_set_embed(api, models);
    if (cfg.kafka.brokers == NULL || cfg.kafka.brokers[0] == '\0') {
        if (broker_start(1, &broker, &err) != ERR_OK) {
            log_error("veclog", "%s", err.msg);
            goto out;
        }
        log_info("veclog", "no kafka.brokers configured: embedded development broker at "
                 "bootstrap.servers=%s", broker_bootstraps(broker));
    }
    if (serve_ingest(&cfg, cat, broker, models, &ingest) != 0)
        goto out;
    /* after the brokers are known: jobs resumed at open may dead-letter at once */
    if ((backfill = serve_backfill(&cfg, cat, models, broker, ingest != NULL, api, &bf_dlq)) ==
        NULL)
        goto out;
    if (ingest != NULL) {
        api_ingest_hooks_t hooks = { ingest, hook_status, hook_wait, hook_metrics };
        api_set_ingest(api, &hooks);
        dprops = kv_pairs(cfg.kafka.properties, cfg.kafka.n_properties);
        dctx.o = (redrive_opts_t){ .brokers = broker ? broker_bootstraps(broker) : cfg.kafka.brokers,
                                   .topic = cfg.dlq.topic, .group_id = cfg.kafka.group_id,
                                   .properties = dprops };
        if ((size_t)snprintf(dctx.local_dir, sizeof(dctx.local_dir), "%s/dlq",
                             cfg.storage.storage_path) < sizeof(dctx.local_dir))
            dctx.o.local_dir = dctx.local_dir;
        if ((reapply_sink = reapply_sink_new(&cfg, cat, models)) != NULL) {
            dctx.o.apply = reapply;
            dctx.o.apply_ctx = reapply_sink;
        }
        api_dlq_hooks_t dh = { &dctx, hook_dlq_list, hook_dlq_show, hook_dlq_redrive,
                               hook_dlq_purge };
        if (dprops != NULL)
            api_set_dlq(api, &dh);
    }
    api_set_ready(api, true);
    log_info("veclog", "ready: http://%s:%u, storage %s", cfg.service.host, http_port(http),
             cfg.storage.storage_path);
    int sig = signal_wait(&set);
    log_info("veclog", "%s received: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = 0;
out:
    /* HTTP first: a read may be waiting on ingest progress (wait_offsets) */
    http_stop(http);
    ingest_stop(ingest);
    api_free(api);
    backfill_mgr_close(backfill); /* jobs stay running on disk: resumed at the next start */
    dlq_close(bf_dlq); /* after its jobs, before the embedded broker it writes to */
    broker_stop(broker);
    sink_free(reapply_sink);
    embed_reg_free(models); /* no HTTP worker, consumer or re-apply sink uses it now */
    catalog_close(cat);
    free(dprops);
    config_free(&cfg);
    if (rc == 0)
        log_info("veclog", "stopped cleanly");
    return rc;
}

static int cmd_broker(int argc, char **argv)
{
    static const char *const known[] = { "--brokers", NULL };
    const char *n = opt_value(argc, argv, "--brokers");
    broker_t *b;
    sigset_t set;
    err_t err;

    if (check_opts(argc, argv, known) != 0)
        return 2;
    signals_block(&set);
    if (broker_start(n ? atoi(n) : 1, &b, &err) != ERR_OK) {
        fprintf(stderr, "veclog broker: %s\n", err.msg);
        return 1;
    }
    printf("bootstrap.servers=%s\n", broker_bootstraps(b));
    fflush(stdout);
    signal_wait(&set);
    broker_stop(b);
    return 0;
}

static int cmd_config(int argc, char **argv)
{
    config_t cfg;
    err_t err;
    int rc = 0;

    if (load_config(argc, argv, &cfg) != 0)
        return 2;
    if (config_dump(&cfg, stdout, &err) != ERR_OK) {
        fprintf(stderr, "veclog config: %s\n", err.msg);
        rc = 1;
    }
    config_free(&cfg);
    return rc;
}

/* ---- veclog dlq -------------------------------------------------------- */

typedef struct dlq_args {
    const char *sub, *config, *brokers, *ref;
    bool all, dry_run, force, apply;
    int max_redrives;
} dlq_args_t;

static int dlq_args_parse(int argc, char **argv, dlq_args_t *a)
{
    memset(a, 0, sizeof(*a));
    a->sub = argc > 2 ? argv[2] : "";
    for (int i = 3; i < argc; i++) {
        const char *o = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(o, "--config") == 0 && has)
            a->config = argv[++i];
        else if (strcmp(o, "--brokers") == 0 && has)
            a->brokers = argv[++i];
        else if (strcmp(o, "--max-redrives") == 0 && has && atoi(argv[i + 1]) > 0)
            a->max_redrives = atoi(argv[++i]);
        else if (strcmp(o, "--all") == 0)
            a->all = true;
        else if (strcmp(o, "--dry-run") == 0)
            a->dry_run = true;
        else if (strcmp(o, "--force") == 0)
            a->force = true;
        else if (strcmp(o, "--apply") == 0)
            a->apply = true;
        else if (o[0] != '-' && a->ref == NULL)
            a->ref = o;
        else {
            fprintf(stderr, "veclog dlq: unexpected argument \"%s\"\n", o);
            return -1;
        }
    }
    bool ok = a->apply && strcmp(a->sub, "redrive") != 0 ? false
              : strcmp(a->sub, "list") == 0 ? !a->all && !a->ref
              : strcmp(a->sub, "show") == 0 ? !a->all && a->ref
              : strcmp(a->sub, "redrive") == 0 || strcmp(a->sub, "purge") == 0 ? a->all != (a->ref != NULL)
              : false;
    if (!ok)
        fprintf(stderr, "usage: veclog dlq list|show P:O|redrive (P:O|--all) [--apply] "
                        "[--dry-run] [--max-redrives N] [--force]|purge (--all|P:O) "
                        "[--config FILE] "
                        "[--brokers HOST:PORT]\n");
    return ok ? 0 : -1;
}

static void dlq_print_list(const cJSON *doc)
{
    const cJSON *e, *c;

    printf("%-4s %-8s %-24s %-24s %-16s %-26s %-3s %-12s %s\n", "PART", "OFFSET", "TIMESTAMP",
           "ORIGINAL", "STAGE", "CLASS", "RD", "KEY", "MESSAGE");
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(doc, "dead_letters")) {
        const cJSON *o = cJSON_GetObjectItem(e, "original"), *k = cJSON_GetObjectItem(e, "key");
        const cJSON *ot = cJSON_GetObjectItem(o, "topic"), *ts = cJSON_GetObjectItem(e, "timestamp");
        char orig[300], when[32] = "-";
        time_t t = cJSON_IsNumber(ts) ? (time_t)(ts->valuedouble / 1000) : 0;
        struct tm tm;
        if (cJSON_IsNumber(ts))
            strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
        snprintf(orig, sizeof(orig), "%s[%d]@%.0f", cJSON_IsString(ot) ? ot->valuestring : "?",
                 cJSON_GetObjectItem(o, "partition")->valueint,
                 cJSON_GetObjectItem(o, "offset")->valuedouble);
        printf("%-4d %-8.0f %-24s %-24s %-16s %-26s %-3d %-12.12s %s\n",
               cJSON_GetObjectItem(e, "partition")->valueint,
               cJSON_GetObjectItem(e, "offset")->valuedouble, when, orig,
               cJSON_GetObjectItem(e, "stage")->valuestring,
               cJSON_GetObjectItem(e, "class_name")->valuestring,
               cJSON_GetObjectItem(e, "redrive_count")->valueint,
               cJSON_IsString(k) ? k->valuestring : "-",
               cJSON_GetObjectItem(e, "message")->valuestring);
    }
    printf("\n%d dead letters pending in %s\n", cJSON_GetObjectItem(doc, "total")->valueint,
           cJSON_GetObjectItem(doc, "topic")->valuestring);
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(doc, "counts"))
        printf("  %-40s %d\n", c->string, c->valueint);
}

static void dlq_print_run(const cJSON *doc)
{
    const cJSON *e;
    bool dry = cJSON_IsTrue(cJSON_GetObjectItem(doc, "dry_run"));
    bool apply = strcmp(cJSON_GetObjectItem(doc, "mode")->valuestring, "apply") == 0;

    cJSON_ArrayForEach(e, cJSON_GetObjectItem(doc, "redriven")) {
        const cJSON *o = cJSON_GetObjectItem(e, "original");
        if (apply) {
            printf("%s %d:%.0f (from %s[%d]@%.0f): %s\n", dry ? "would apply" : "apply",
                   cJSON_GetObjectItem(e, "partition")->valueint,
                   cJSON_GetObjectItem(e, "offset")->valuedouble,
                   cJSON_GetObjectItem(o, "topic")->valuestring,
                   cJSON_GetObjectItem(o, "partition")->valueint,
                   cJSON_GetObjectItem(o, "offset")->valuedouble,
                   cJSON_GetObjectItem(e, "status")->valuestring);
            continue;
        }
        printf("%s %d:%.0f -> %s[%d] (redrive count %d -> %d): %s\n",
               dry ? "would redrive" : "redrive", cJSON_GetObjectItem(e, "partition")->valueint,
               cJSON_GetObjectItem(e, "offset")->valuedouble,
               cJSON_GetObjectItem(o, "topic")->valuestring,
               cJSON_GetObjectItem(o, "partition")->valueint,
               cJSON_GetObjectItem(e, "redrive_count")->valueint,
               cJSON_GetObjectItem(e, "redrive_count")->valueint + 1,
               cJSON_GetObjectItem(e, "status")->valuestring);
    }
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(doc, "skipped"))
        printf("skipped %d:%.0f: %s\n", cJSON_GetObjectItem(e, "partition")->valueint,
               cJSON_GetObjectItem(e, "offset")->valuedouble,
               cJSON_GetObjectItem(e, "reason")->valuestring);
    printf("%d %s, %d skipped, %d failed\n",
           cJSON_GetArraySize(cJSON_GetObjectItem(doc, "redriven")),
           dry ? "would be redriven (dry run)" : "redriven",
           cJSON_GetArraySize(cJSON_GetObjectItem(doc, "skipped")),
           cJSON_GetObjectItem(doc, "failed")->valueint);
}

static int dlq_exec(redrive_t *r, const dlq_args_t *a, const redrive_ref_t *ref, err_t *err)
{
    cJSON *doc = NULL;
    int rc;

    if (strcmp(a->sub, "list") == 0) {
        if ((rc = redrive_list(r, &doc, err)) == ERR_OK)
            dlq_print_list(doc);
    } else if (strcmp(a->sub, "show") == 0) {
        if ((rc = redrive_show(r, ref, &doc, err)) == ERR_OK) {
            char *s = cJSON_Print(doc);
            printf("%s\n", s ? s : "null");
            free(s);
        }
    } else if (strcmp(a->sub, "redrive") == 0) {
        redrive_req_t q = { .all = a->all, .refs = ref, .n_refs = a->all ? 0 : 1,
                            .dry_run = a->dry_run, .max_redrives = a->max_redrives,
                            .force = a->force, .mode = a->apply ? REDRIVE_APPLY : REDRIVE_PRODUCE };
        rc = redrive_run(r, &q, &doc, err);
        if (doc != NULL)
            dlq_print_run(doc);
    } else {
        if ((rc = redrive_purge(r, a->all ? NULL : ref, &doc, err)) == ERR_OK)
            printf("purged %.0f dead letters (committed for the group of the dlq tool)\n",
                   cJSON_GetObjectItem(doc, "purged")->valuedouble);
    }
    cJSON_Delete(doc);
    return rc;
}

/* The store for `dlq redrive --apply`: the server must be stopped (it
 * holds the storage lock); on a running server the same is
 * POST /dlq/redrive {"mode": "apply"}. */
static int dlq_store_open(const config_t *cfg, catalog_t **cat, embed_reg_t **models,
                          sink_t **rs)
{
    catalog_opts_t copts;
    err_t err;

    catalog_opts_from_config(cfg, &copts);
    if (catalog_open(&copts, cat, &err) != ERR_OK) {
        fprintf(stderr, "veclog dlq redrive --apply: storage %s: %s\n(is the server running? "
                "then use POST /dlq/redrive with \"mode\": \"apply\" on it)\n",
                cfg->storage.storage_path, err.msg);
        return -1;
    }
    /* Documents in dead letters are embedded as the server would */
    if (serve_models(cfg, models) != 0)
        return -1;
    return (*rs = reapply_sink_new(cfg, *cat, *models)) != NULL ? 0 : -1;
}

/* Open the clients (and for --apply the store) and run the subcommand. */
static int dlq_run(const config_t *cfg, const dlq_args_t *a, const redrive_ref_t *ref)
{
    const char *brokers = a->brokers ? a->brokers : cfg->kafka.brokers;
    const char **props = kv_pairs(cfg->kafka.properties, cfg->kafka.n_properties);
    char *local_dir = NULL;
    catalog_t *cat = NULL;
    embed_reg_t *models = NULL;
    sink_t *rs = NULL;
    redrive_t *r = NULL;
    err_t err;
    int rc = 1;

    if (asprintf(&local_dir, "%s/dlq", cfg->storage.storage_path) < 0)
        local_dir = NULL;
    if (brokers == NULL || brokers[0] == '\0') {
        fprintf(stderr, "veclog dlq: no kafka.brokers configured: pass --brokers HOST:PORT "
                        "(serve logs the embedded broker's address)\n");
        rc = 2;
        goto out;
    }
    if (props == NULL || local_dir == NULL) {
        fprintf(stderr, "veclog dlq: no memory\n");
        goto out;
    }
    if (a->apply && !a->dry_run && dlq_store_open(cfg, &cat, &models, &rs) != 0)
        goto out;
    redrive_opts_t o = { .brokers = brokers, .topic = cfg->dlq.topic,
                         .group_id = cfg->kafka.group_id, .properties = props,
                         .local_dir = local_dir, .apply = rs ? reapply : NULL, .apply_ctx = rs };
    if (redrive_open(&o, &r, &err) != ERR_OK || dlq_exec(r, a, ref, &err) != ERR_OK)
        fprintf(stderr, "veclog dlq %s: %s\n", a->sub, err.msg);
    else
        rc = 0;
out:
    redrive_close(r);
    sink_free(rs);
    embed_reg_free(models);
    catalog_close(cat);
    free(props);
    free(local_dir);
    return rc;
}

static int cmd_dlq(int argc, char **argv)
{
    dlq_args_t a;
    config_t cfg;
    redrive_ref_t ref = { 0, 0 };
    err_t err;

    if (dlq_args_parse(argc, argv, &a) != 0)
        return 2;
    if (a.ref != NULL && redrive_ref_parse(a.ref, &ref, &err) != ERR_OK) {
        fprintf(stderr, "veclog dlq: %s\n", err.msg);
        return 2;
    }
    if (config_load(a.config, environ, &cfg, &err) != ERR_OK) {
        fprintf(stderr, "veclog dlq: %s\n", err.msg);
        return 2;
    }
    log_level_set(LOG_WARN);
    int rc = dlq_run(&cfg, &a, &ref);
    config_free(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(argv[1], "broker") == 0)
        return cmd_broker(argc, argv);
    if (strcmp(argv[1], "config") == 0)
        return cmd_config(argc, argv);
    if (strcmp(argv[1], "dlq") == 0)
        return cmd_dlq(argc, argv);
    if (strcmp(argv[1], "backfill") == 0)
        return cmd_backfill(argc, argv);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("veclog %s\n", VECLOG_VERSION);
        return 0;
    }
    fprintf(stderr, "veclog: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return 2;
}
