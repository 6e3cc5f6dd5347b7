/*
 * produce_latency.c - produce-to-visible latency for bench/ingest_bench.sh.
 *
 *   produce_latency -b BROKERS -t TOPIC -p HTTP_PORT [-c COLL] [-d DIM]
 *                   [-r RATE] [-s SECONDS] [-w READERS] [-i FIRST_ID]
 *
 * Produces RATE messages/s for SECONDS seconds (open loop: message i is
 * handed to librdkafka at start + i / RATE, whatever happened to earlier
 * ones) to partition 0 of TOPIC, each a sink-connector point
 * {"collection_name": COLL, "id": FIRST_ID + i, "vector": [DIM floats]}.
 * When its delivery report gives the offset, one of READERS threads sends
 *
 *   GET /collections/COLL/points/ID?wait_offsets=TOPIC:0:OFFSET&wait_timeout_ms=10000
 *
 * over a fresh HTTP/1.1 connection to 127.0.0.1:HTTP_PORT and checks that
 * the answer is 200 and carries the point.  Latency of a message = the
 * time that read returns - the time the message was handed to the
 * producer (rd_kafka_producev).  Prints one line:
 *
 *   LATENCY n=.. ok=.. failed=.. rate=.. ack_p50_ms=.. p50_ms=.. p90_ms=.. p99_ms=.. max_ms=..
 *
 * (ack = delivery report, acks=all, linger.ms=0).  Exit 1 if any message
 * failed.  Links librdkafka and pthreads only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *topic = NULL, *coll = "bench";
static int http_port = 0;
static unsigned long first_id = 1000000000ul;

static double *t_sent, *t_ack, *t_done;
static int64_t *offs;
static int *failed;

/* queue of message indexes whose offset is known */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static size_t *queue, q_head, q_tail, n_total, n_reported;
static int q_closed;

static void push(size_t i)
{
    pthread_mutex_lock(&mu);
    queue[q_tail++] = i;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk, (void)opaque;
    size_t i = (size_t)(uintptr_t)m->_private;
    t_ack[i] = now();
    if (m->err) {
        fprintf(stderr, "produce_latency: message %zu: %s\n", i, rd_kafka_err2str(m->err));
        failed[i] = 1;
        t_done[i] = t_ack[i];
        pthread_mutex_lock(&mu);
        n_reported++;
        pthread_mutex_unlock(&mu);
        return;
    }
    offs[i] = m->offset;
    pthread_mutex_lock(&mu);
    n_reported++;
    pthread_mutex_unlock(&mu);
    push(i);
}

/* One GET over a fresh connection; 0 if 200 and the body names the id. */
static int http_get(const char *path, unsigned long id)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
    for (int w = 0; w < n;) {
        ssize_t k = write(fd, req + w, (size_t)(n - w));
        if (k <= 0) {
            close(fd);
            return -1;
        }
        w += (int)k;
    }
    static __thread char buf[1 << 20];
    size_t len = 0;
    for (;;) {
        ssize_t k = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len >= sizeof(buf) - 1)
            break;
    }
    close(fd);
    buf[len] = 0;
    char want[64];
    snprintf(want, sizeof(want), "\"id\":%lu", id);
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || strstr(buf, want) == NULL) {
        fprintf(stderr, "produce_latency: id %lu: %.300s\n", id, buf);
        return -1;
    }
    return 0;
}

static void *reader(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&mu);
        while (q_head == q_tail && !q_closed)
            pthread_cond_wait(&cv, &mu);
        if (q_head == q_tail) {
            pthread_mutex_unlock(&mu);
            return NULL;
        }
        size_t i = queue[q_head++];
        pthread_mutex_unlock(&mu);
        char path[512];
        snprintf(path, sizeof(path),
                 "/collections/%s/points/%lu?wait_offsets=%s:0:%lld&wait_timeout_ms=10000", coll,
                 first_id + i, topic, (long long)offs[i]);
        if (http_get(path, first_id + i) != 0)
            failed[i] = 1;
        t_done[i] = now();
    }
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p) /* nearest rank */
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

int main(int argc, char **argv)
{
    const char *brokers = NULL;
    unsigned long dim = 128, readers = 32;
    double rate = 100, secs = 10;
    int o;
    while ((o = getopt(argc, argv, "b:t:p:c:d:r:s:w:i:")) != -1) {
        switch (o) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'p': http_port = atoi(optarg); break;
        case 'c': coll = optarg; break;
        case 'd': dim = strtoul(optarg, NULL, 10); break;
        case 'r': rate = atof(optarg); break;
        case 's': secs = atof(optarg); break;
        case 'w': readers = strtoul(optarg, NULL, 10); break;
        case 'i': first_id = strtoul(optarg, NULL, 10); break;
        default: goto usage;
        }
    }
    if (!brokers || !topic || http_port <= 0 || dim == 0 || rate <= 0 || secs <= 0 || readers == 0) {
    usage:
        fprintf(stderr, "usage: produce_latency -b BROKERS -t TOPIC -p HTTP_PORT [-c COLL] "
                        "[-d DIM] [-r RATE] [-s SECONDS] [-w READERS] [-i FIRST_ID]\n");
        return 2;
    }
    n_total = (size_t)(rate * secs + 0.5);
    t_sent = calloc(n_total, sizeof(double));
    t_ack = calloc(n_total, sizeof(double));
    t_done = calloc(n_total, sizeof(double));
    offs = calloc(n_total, sizeof(int64_t));
    failed = calloc(n_total, sizeof(int));
    queue = calloc(n_total, sizeof(size_t));
    size_t cap = 128 + dim * 12;
    char *val = malloc(cap);
    if (!t_sent || !t_ack || !t_done || !offs || !failed || !queue || !val)
        return 1;

    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof(err)) ||
        rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err))) {
        fprintf(stderr, "produce_latency: %s\n", err);
        return 2;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "produce_latency: %s\n", err);
        return 1;
    }
    pthread_t *th = calloc(readers, sizeof(pthread_t));
    for (unsigned long r = 0; r < readers; r++)
        pthread_create(&th[r], NULL, reader, NULL);

    uint64_t seed = 7;
    double start = now() + 0.2;
    for (size_t i = 0; i < n_total; i++) {
        double due = start + (double)i / rate;
        for (;;) {
            double left = due - now();
            if (left <= 0)
                break;
            rd_kafka_poll(rk, left > 0.001 ? (int)(left * 1000) : 0);
            if (left < 0.001) {
                struct timespec ts = {0, (long)(left * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        size_t len = (size_t)snprintf(val, cap, "{\"collection_name\":\"%s\",\"id\":%lu,\"vector\":[",
                                      coll, first_id + i);
        for (unsigned long j = 0; j < dim; j++) {
            uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            len += (size_t)snprintf(val + len, cap - len, j ? ",%.5f" : "%.5f",
                                    (double)(z >> 11) * 0x1p-52 - 1.0);
        }
        len += (size_t)snprintf(val + len, cap - len, "]}");
        t_sent[i] = now();
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE(val, len),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)i), RD_KAFKA_V_END);
        if (e) {
            fprintf(stderr, "produce_latency: produce %zu: %s\n", i, rd_kafka_err2str(e));
            failed[i] = 1;
            t_ack[i] = t_done[i] = t_sent[i];
            pthread_mutex_lock(&mu);
            n_reported++;
            pthread_mutex_unlock(&mu);
        }
        rd_kafka_poll(rk, 0);
    }
    double end_send = now();
    rd_kafka_flush(rk, 15000);
    pthread_mutex_lock(&mu);
    q_closed = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (unsigned long r = 0; r < readers; r++)
        pthread_join(th[r], NULL);
    rd_kafka_destroy(rk);

    double *lat = malloc(n_total * sizeof(double)), *ack = malloc(n_total * sizeof(double));
    size_t ok = 0, nf = 0;
    for (size_t i = 0; i < n_total; i++) {
        if (failed[i] || t_done[i] == 0) {
            nf++;
            continue;
        }
        lat[ok] = (t_done[i] - t_sent[i]) * 1000;
        ack[ok] = (t_ack[i] - t_sent[i]) * 1000;
        ok++;
    }
    qsort(lat, ok, sizeof(double), cmp);
    qsort(ack, ok, sizeof(double), cmp);
    printf("LATENCY n=%zu ok=%zu failed=%zu rate=%.1f ack_p50_ms=%.2f p50_ms=%.2f p90_ms=%.2f "
           "p99_ms=%.2f max_ms=%.2f\n",
           n_total, ok, nf, n_total > 1 ? (double)(n_total - 1) / (end_send - start) : rate,
           pct(ack, ok, 50), pct(lat, ok, 50), pct(lat, ok, 90), pct(lat, ok, 99),
           ok ? lat[ok - 1] : 0.0);
    return nf ? 1 : 0;
}
