/*
 * broker.c - see broker.h.  The mock cluster needs a host rd_kafka_t; a
 * producer handle with no bootstrap servers serves that purpose and does
 * nothing else.
 */
#include "broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

struct broker {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char *bootstraps;
};

int broker_start(int n_brokers, broker_t **out, err_t *err)
{
    char errstr[512];
    broker_t *b = calloc(1, sizeof(*b));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    *out = NULL;
    if (b == NULL || conf == NULL) {
        free(b);
        if (conf)
            rd_kafka_conf_destroy(conf);
        return err_set(err, ERR_NOMEM, "no memory for the embedded broker");
    }
    if (n_brokers < 1 || n_brokers > 9) {
        free(b);
        rd_kafka_conf_destroy(conf);
        return err_set(err, ERR_INVALID, "embedded broker: 1..9 brokers, not %d", n_brokers);
    }
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
    b->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (b->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        free(b);
        return err_set(err, ERR_IO, "embedded broker: %s", errstr);
    }
    b->mc = rd_kafka_mock_cluster_new(b->rk, n_brokers);
    if (b->mc == NULL) {
        broker_stop(b);
        return err_set(err, ERR_IO, "embedded broker: cannot start the mock cluster");
    }
    b->bootstraps = strdup(rd_kafka_mock_cluster_bootstraps(b->mc));
    if (b->bootstraps == NULL) {
        broker_stop(b);
        return err_set(err, ERR_NOMEM, "no memory for the embedded broker");
    }
    *out = b;
    return ERR_OK;
}

const char *broker_bootstraps(const broker_t *b)
{
    return b->bootstraps;
}

int broker_topic_create(broker_t *b, const char *topic, int partitions, err_t *err)
{
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(b->mc, topic, partitions, 1);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return err_set(err, ERR_IO, "create topic %s: %s", topic, rd_kafka_err2str(e));
    return ERR_OK;
}

int broker_set_up(broker_t *b, int broker_id, int up, err_t *err)
{
    rd_kafka_resp_err_t e = up ? rd_kafka_mock_broker_set_up(b->mc, broker_id)
                               : rd_kafka_mock_broker_set_down(b->mc, broker_id);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return err_set(err, ERR_INVALID, "broker %d: %s", broker_id, rd_kafka_err2str(e));
    return ERR_OK;
}

int broker_push_errors(broker_t *b, int api_key, int n, int kafka_err, err_t *err)
{
    rd_kafka_resp_err_t *errs;

    if (n < 1 || api_key < 0)
        return err_set(err, ERR_INVALID, "push errors: n >= 1 and a valid api key");
    if ((errs = calloc((size_t)n, sizeof(*errs))) == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    for (int i = 0; i < n; i++)
        errs[i] = (rd_kafka_resp_err_t)kafka_err;
    rd_kafka_mock_push_request_errors_array(b->mc, (int16_t)api_key, (size_t)n, errs);
    free(errs);
    return ERR_OK;
}

void broker_clear_errors(broker_t *b, int api_key)
{
    rd_kafka_mock_clear_request_errors(b->mc, (int16_t)api_key);
}

void broker_stop(broker_t *b)
{
    if (b == NULL)
        return;
    if (b->mc)
        rd_kafka_mock_cluster_destroy(b->mc);
    if (b->rk)
        rd_kafka_destroy(b->rk);
    free(b->bootstraps);
    free(b);
}
