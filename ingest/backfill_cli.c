/*
 * backfill_cli.c - `veclog backfill ...`: the command line of backfill
 * jobs.  The server holds the storage, so the CLI talks to it over HTTP
 * with a tiny blocking HTTP/1.1 client (one request per connection,
 * Connection: close, read until the server closes).
 *
 *   veclog backfill start --source A --target B [--model M --field F
 *       [--vector V]] [--id ID] [--batch-size N] [--rate-limit N]
 *   veclog backfill status ID [--follow]
 *   veclog backfill pause|resume|cancel|delete ID
 *   veclog backfill list
 *   (every subcommand takes [--url http://127.0.0.1:6333])
 */
#include "backfill.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int url_split(const char *url, char *host, size_t hcap, char *port, size_t pcap,
                     err_t *err)
{
    const char *h = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    if (h == NULL)
        return err_set(err, ERR_INVALID, "url %s: expected http://host[:port]", url);
    size_t n = strcspn(h, ":/");
    if (n == 0 || n >= hcap)
        return err_set(err, ERR_INVALID, "url %s: bad host", url);
    memcpy(host, h, n);
    host[n] = '\0';
    snprintf(port, pcap, "%.*s", h[n] == ':' ? (int)strcspn(h + n + 1, "/") : 4,
             h[n] == ':' ? h + n + 1 : "6333");
    return ERR_OK;
}

static int tcp_connect(const char *host, const char *port, err_t *err)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai, *p;
    int fd = -1, e = 0;

    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -err_setr(err, ERR_BUSY, true, "cannot resolve %s", host);
    for (p = ai; p != NULL && fd < 0; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, p->ai_protocol);
        if (fd >= 0 && connect(fd, p->ai_addr, p->ai_addrlen) != 0) {
            e = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return -err_setr(err, ERR_BUSY, true, "cannot connect to %s:%s: %s", host, port,
                         strerror(e ? e : ECONNREFUSED));
    return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0 && errno != EINTR)
            return -1;
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

int backfill_cli_request(const char *base_url, const char *method, const char *path,
                         const char *body, const char *api_key, int *status, char **resp,
                         err_t *err)
{
    char host[256], port[16], *req = NULL, *in = NULL;
    size_t cap = 0, len = 0;
    int fd = -1, rc = ERR_OK, n;

    *resp = NULL;
    if ((rc = url_split(base_url, host, sizeof(host), port, sizeof(port), err)) != ERR_OK)
        return rc;
    if ((fd = tcp_connect(host, port, err)) < 0)
        return -fd;
    n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n%s%s%s\r\n%s",
                 method, path, host, port, body ? strlen(body) : 0, api_key ? "api-key: " : "",
                 api_key ? api_key : "", api_key ? "\r\n" : "", body ? body : "");
    if (n < 0 || send_all(fd, req, (size_t)n) != 0) {
        rc = n < 0 ? err_set(err, ERR_NOMEM, "no memory")
                   : err_setr(err, ERR_BUSY, true, "send to %s: %s", base_url, strerror(errno));
        goto out;
    }
    for (;;) {
        if (len + 4097 > cap) {
            char *g = realloc(in, cap = cap * 2 + 8192);
            if (g == NULL) {
                rc = err_set(err, ERR_NOMEM, "no memory");
                goto out;
            }
            in = g;
        }
        ssize_t r = recv(fd, in + len, 4096, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    in[len] = '\0';
    char *sep = strstr(in, "\r\n\r\n");
    if (sscanf(in, "HTTP/1.%*d %d", status) != 1 || sep == NULL) {
        rc = err_setr(err, ERR_BUSY, true, "%s: not an HTTP answer", base_url);
        goto out;
    }
    *resp = strdup(sep + 4);
    rc = *resp ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
out:
    if (fd >= 0)
        close(fd);
    free(req);
    free(in);
    return rc;
}

/* 1234567 -> "1,234,567". */
static void thousands(uint64_t v, char *buf, size_t cap)
{
    char raw[32], out[48];
    size_t n = (size_t)snprintf(raw, sizeof(raw), "%llu", (unsigned long long)v), o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = raw[i];
    }
    out[o] = '\0';
    snprintf(buf, cap, "%s", out);
}

void backfill_cli_progress(const cJSON *s, bool tty, char *buf, size_t cap)
{
    const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(s, "state"));
    double done = cJSON_GetNumberValue(cJSON_GetObjectItem(s, "done")) +
                  cJSON_GetNumberValue(cJSON_GetObjectItem(s, "skipped"));
    double total = cJSON_GetNumberValue(cJSON_GetObjectItem(s, "total"));
    double pct = cJSON_GetNumberValue(cJSON_GetObjectItem(s, "percent"));
    double rate = cJSON_GetNumberValue(cJSON_GetObjectItem(s, "rate"));
    const cJSON *eta = cJSON_GetObjectItem(s, "eta_seconds");
    char d[48], t[48], r[48], e[32] = "-", bar[11];
    int filled = isnan(pct) ? 0 : (int)(pct / 10 + 0.5);

    if (cJSON_IsNumber(eta))
        snprintf(e, sizeof(e), "%d:%02d", (int)eta->valuedouble / 60, (int)eta->valuedouble % 60);
    if (!tty) {
        snprintf(buf, cap, "%s %.0f/%.0f %.1f%% %.0f pts/s eta %s", state ? state : "?", done,
                 total, isnan(pct) ? 0 : pct, isnan(rate) ? 0 : rate, e);
        return;
    }
    for (int i = 0; i < 10; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[10] = '\0';
    thousands((uint64_t)done, d, sizeof(d));
    thousands(isnan(total) ? 0 : (uint64_t)total, t, sizeof(t));
    thousands(isnan(rate) ? 0 : (uint64_t)rate, r, sizeof(r));
    snprintf(buf, cap, "[%s] %.0f%% %s/%s %s pts/s ETA %s", bar, isnan(pct) ? 0 : floor(pct), d,
             t, r, e);
}

typedef struct cli_args {
    const char *sub, *id, *url, *source, *target, *model, *field, *vector, *batch, *rate;
    bool follow;
} cli_args_t;

static int cli_parse(int argc, char **argv, cli_args_t *a)
{
    static const char *const names[] = { "--id", "--url", "--source", "--target", "--model",
                                         "--field", "--vector", "--batch-size", "--rate-limit",
                                         NULL };
    const char **slots[] = { &a->id, &a->url, &a->source, &a->target, &a->model, &a->field,
                             &a->vector, &a->batch, &a->rate };
    a->sub = argc > 1 ? argv[1] : "";
    for (int i = 2; i < argc; i++) {
        int k = 0;
        while (names[k] && strcmp(argv[i], names[k]) != 0)
            k++;
        if (names[k] && i + 1 < argc)
            *slots[k] = argv[++i];
        else if (strcmp(argv[i], "--follow") == 0)
            a->follow = true;
        else if (argv[i][0] != '-' && a->id == NULL)
            a->id = argv[i];
        else {
            fprintf(stderr, "veclog backfill: unexpected argument \"%s\"\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

static char *start_body(const cli_args_t *a)
{
    cJSON *o = cJSON_CreateObject();
    if (a->id)
        cJSON_AddStringToObject(o, "id", a->id);
    cJSON_AddStringToObject(o, "source", a->source);
    cJSON_AddStringToObject(o, "target", a->target);
    if (a->model) {
        cJSON_AddStringToObject(o, "mode", "embed");
        cJSON_AddStringToObject(o, "model", a->model);
    }
    if (a->field)
        cJSON_AddStringToObject(o, "field", a->field);
    if (a->vector)
        cJSON_AddStringToObject(o, "vector", a->vector);
    if (a->batch)
        cJSON_AddNumberToObject(o, "batch_size", atof(a->batch));
    if (a->rate)
        cJSON_AddNumberToObject(o, "rate_limit", atof(a->rate));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* One call; prints errors; *result the envelope's result (owned). */
static int cli_call(const char *url, const char *key, const char *method, const char *path,
                    const char *body, cJSON **result)
{
    char *resp = NULL;
    int status = 0;
    err_t err;

    *result = NULL;
    if (backfill_cli_request(url, method, path, body, key, &status, &resp, &err) != ERR_OK) {
        fprintf(stderr, "veclog backfill: %s\n", err.msg);
        return 1;
    }
    cJSON *doc = cJSON_Parse(resp);
    if (status != 200) {
        const char *msg = cJSON_GetStringValue(
            cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "status"), "error"));
        fprintf(stderr, "veclog backfill: HTTP %d: %s\n", status, msg ? msg : resp);
    } else {
        *result = cJSON_DetachItemFromObject(doc, "result");
    }
    cJSON_Delete(doc);
    free(resp);
    return status == 200 ? 0 : 1;
}

static int cli_follow(const char *url, const char *key, const char *path)
{
    bool tty = isatty(STDOUT_FILENO);
    char line[256];

    for (;;) {
        cJSON *r;
        if (cli_call(url, key, "GET", path, NULL, &r) != 0)
            return 1;
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(r, "state"));
        bool end = st == NULL || strcmp(st, "running") != 0;
        backfill_cli_progress(r, tty, line, sizeof(line));
        printf(tty ? "\r%-78s%s" : "%s%s\n", line, tty && end ? "\n" : "");
        if (end && st)
            printf("%s\n", st);
        fflush(stdout);
        cJSON_Delete(r);
        if (end)
            return 0;
        sleep(1);
    }
}

int backfill_cli_main(int argc, char **argv, const char *default_url, const char *api_key)
{
    cli_args_t a = { 0 };
    char path[512];
    cJSON *r = NULL;
    char *body = NULL;
    int rc;

    if (cli_parse(argc, argv, &a) != 0)
        return 2;
    const char *url = a.url ? a.url : default_url;
    bool ctl = strcmp(a.sub, "pause") == 0 || strcmp(a.sub, "resume") == 0 ||
               strcmp(a.sub, "cancel") == 0;
    if (strcmp(a.sub, "start") == 0 && a.source && a.target && (!a.model == !a.field)) {
        body = start_body(&a);
        rc = cli_call(url, api_key, "POST", "/backfill", body, &r);
    } else if (strcmp(a.sub, "list") == 0 && a.id == NULL) {
        rc = cli_call(url, api_key, "GET", "/backfill", NULL, &r);
    } else if ((ctl || strcmp(a.sub, "status") == 0 || strcmp(a.sub, "delete") == 0) && a.id) {
        snprintf(path, sizeof(path), "/backfill/%s%s%s", a.id, ctl ? "/" : "", ctl ? a.sub : "");
        if (a.follow && strcmp(a.sub, "status") == 0)
            return cli_follow(url, api_key, path);
        rc = cli_call(url, api_key, strcmp(a.sub, "delete") == 0 ? "DELETE"
                                    : ctl ? "POST" : "GET", path, NULL, &r);
    } else {
        fprintf(stderr, "usage: veclog backfill start --source A --target B [--model M --field F "
                        "[--vector V]] [--id ID] [--batch-size N] [--rate-limit N]\n"
                        "       veclog backfill status ID [--follow]\n"
                        "       veclog backfill pause|resume|cancel|delete ID\n"
                        "       veclog backfill list\n"
                        "  (each takes [--url http://HOST:PORT] [--config FILE])\n");
        return 2;
    }
    if (r != NULL) {
        char *s = cJSON_Print(r);
        printf("%s\n", s ? s : "null");
        free(s);
    }
    cJSON_Delete(r);
    free(body);
    return rc;
}
