/*
 * kconf.c - see kconf.h.  librdkafka logs with syslog levels (0 emergency
 * .. 7 debug); they map onto veclog's levels below.
 */
#include "kconf.h"

#include <stdlib.h>
#include <string.h>

#include "store/log.h"

static void log_forward(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    int lv = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;

    /* kafka.properties go to the consumer and the dead-letter producer
     * alike, so each ignores the other's properties: expected, not news */
    if (strcmp(fac, "CONFWARN") == 0 && (strstr(buf, "is a consumer property") != NULL ||
                                         strstr(buf, "is a producer property") != NULL))
        lv = LOG_DEBUG;

    log_msg(lv, "kafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

int kconf_set(rd_kafka_conf_t *conf, const char *name, const char *value, err_t *err)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return err_set(err, ERR_INVALID, "kafka property %s: %s", name, errstr);
    return ERR_OK;
}

int kconf_apply(rd_kafka_conf_t *conf, const char *const *props, err_t *err)
{
    for (size_t i = 0; props != NULL && props[i] != NULL && props[i + 1] != NULL; i += 2) {
        int rc = kconf_set(conf, props[i], props[i + 1], err);
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

int kconf_new(const char *brokers, rd_kafka_conf_t **out, err_t *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = ERR_OK;

    *out = NULL;
    if (conf == NULL)
        return err_set(err, ERR_NOMEM, "no memory for a Kafka configuration");
    rd_kafka_conf_set_log_cb(conf, log_forward);
    if (brokers != NULL)
        rc = kconf_set(conf, "bootstrap.servers", brokers, err);
    if (rc != ERR_OK) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    *out = conf;
    return ERR_OK;
}

char **kconf_props_copy(const char *const *p)
{
    size_t n = 0;
    char **c;

    while (p != NULL && p[n] != NULL && p[n + 1] != NULL)
        n += 2;
    if ((c = calloc(n + 1, sizeof(char *))) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if ((c[i] = strdup(p[i])) == NULL) {
            kconf_props_free(c);
            return NULL;
        }
    }
    return c;
}

void kconf_props_free(char **props)
{
    for (size_t i = 0; props != NULL && props[i] != NULL; i++)
        free(props[i]);
    free(props);
}
