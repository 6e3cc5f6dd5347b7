/*
 * kconf.h - librdkafka configuration objects built the same way for every
 * veclog client (the ingest consumer, the dead-letter producer).
 *
 * Order of precedence, lowest first: the caller's defaults (kconf_set
 * before kconf_apply), the operator's kafka.properties (kconf_apply),
 * then what the caller must force for correctness (kconf_set after).  A
 * property librdkafka rejects is an ERR_INVALID naming it, at start-up.
 * librdkafka's own log lines are forwarded to veclog's log (store/log.h)
 * under the subsystem "kafka", at the matching level.
 */
#ifndef VECLOG_KCONF_H
#define VECLOG_KCONF_H

#include <librdkafka/rdkafka.h>

#include "store/err.h"

/* A new configuration with the log forwarding installed and
 * bootstrap.servers set (brokers may be NULL: set later or not at all).
 * *out owned by the caller (rd_kafka_new takes it, or
 * rd_kafka_conf_destroy). */
int kconf_new(const char *brokers, rd_kafka_conf_t **out, err_t *err);

/* Set one property; ERR_INVALID names it and librdkafka's reason. */
int kconf_set(rd_kafka_conf_t *conf, const char *name, const char *value, err_t *err);

/* Set every pair of props: NULL, or "name", "value", ..., NULL. */
int kconf_apply(rd_kafka_conf_t *conf, const char *const *props, err_t *err);

/* Copy a "name", "value", ..., NULL property list (NULL gives an empty
 * list; a trailing name without a value is dropped).  Caller frees with
 * kconf_props_free; NULL on allocation failure. */
char **kconf_props_copy(const char *const *p);
void kconf_props_free(char **props);

#endif
