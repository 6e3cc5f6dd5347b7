/*
 * broker.h - the embedded development Kafka broker.
 *
 * librdkafka ships a mock cluster: real brokers speaking the Kafka protocol
 * on loopback TCP ports, with topics, partitions, consumer groups and
 * offsets kept in memory.  veclog uses it for `veclog broker`, for `serve`
 * when no kafka.brokers is configured, and for tests, so that every Kafka
 * path is exercised over the real protocol without a JVM.  Data lives only
 * as long as the process: it is a development broker, not a deployment.
 */
#ifndef VECLOG_BROKER_H
#define VECLOG_BROKER_H

#include "store/err.h"

typedef struct broker broker_t;

/* Start a mock cluster of n_brokers brokers (1..9) on 127.0.0.1.  *out
 * owned by the caller (broker_stop). */
int broker_start(int n_brokers, broker_t **out, err_t *err);

/* "127.0.0.1:port[,...]": borrowed, valid until broker_stop. */
const char *broker_bootstraps(const broker_t *b);

/* Create a topic with the given partition count (replication 1). */
int broker_topic_create(broker_t *b, const char *topic, int partitions, err_t *err);

/* Take broker id (1..n) down or up: connections are closed and refused
 * while down.  For outage tests. */
int broker_set_up(broker_t *b, int broker_id, int up, err_t *err);

/* Make the next n requests of Kafka API api_key (0 = Produce, 1 = Fetch,
 * ...) fail with the Kafka error code kafka_err, whichever client sends
 * them.  For outage tests. */
int broker_push_errors(broker_t *b, int api_key, int n, int kafka_err, err_t *err);

/* Drop the errors pushed for api_key that no request has taken yet. */
void broker_clear_errors(broker_t *b, int api_key);

void broker_stop(broker_t *b);

#endif
