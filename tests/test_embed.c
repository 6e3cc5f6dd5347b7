/*
 * test_embed.c - the embedder (embed/embed.h): hash model properties and
 * pinned outputs, registry errors, HTTP models against a real local server
 * (libevent evhttp in its own thread, emulating OpenAI and TEI), and the
 * models: configuration section.
 *
 * The server's "embedding" of a text is a deterministic function of the
 * text (server_vec), so the client's output can be checked exactly,
 * including order across batches.  Its behaviour is chosen by the path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "cmd/config.h"
#include "embed/embed.h"
#include "tests/testutil.h"

#define SDIM 8 /* dim of the emulated server's vectors */

/* ------------------------------------------------------------ helpers */

static embed_reg_t *reg_ok(const embed_conf_t *c, size_t n)
{
    embed_reg_t *reg = NULL;
    err_t err = {0};

    if (embed_reg_new(c, n, &reg, &err) != ERR_OK)
        fail_msg("embed_reg_new: %s", err.msg);
    return reg;
}

static embed_model_t *model_ok(const embed_reg_t *reg, const char *name)
{
    embed_model_t *m = NULL;
    err_t err = {0};

    if (embed_model_get(reg, name, &m, &err) != ERR_OK)
        fail_msg("embed_model_get %s: %s", name, err.msg);
    return m;
}

static void embed_ok(embed_model_t *m, const char *const *texts, size_t n, float *out)
{
    err_t err = {0};

    if (embed_texts(m, texts, n, out, &err) != ERR_OK)
        fail_msg("embed_texts %s: %s", embed_model_name(m), err.msg);
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;

    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static void assert_contains(const char *s, const char *sub)
{
    if (strstr(s, sub) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", s, sub);
}

/* ------------------------------------------------------------- corpus */

/* Words from syllables: thousands of distinct, pronounceable words. */
static void make_word(uint64_t *rng, char *buf)
{
    static const char *const on[] = {"b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r",
                                     "s", "t", "v", "w", "st", "tr", "pl", "gr", "sh", "ch"};
    static const char *const nu[] = {"a", "e", "i", "o", "u", "ai", "ou", "ea"};
    static const char *const co[] = {"", "", "n", "r", "s", "t", "l", "m", "nd", "rk"};
    size_t syl = 1 + tu_rand(rng) % 3, i;

    buf[0] = '\0';
    for (i = 0; i < syl; i++) {
        strcat(buf, on[tu_rand(rng) % (sizeof(on) / sizeof(*on))]);
        strcat(buf, nu[tu_rand(rng) % (sizeof(nu) / sizeof(*nu))]);
        strcat(buf, co[tu_rand(rng) % (sizeof(co) / sizeof(*co))]);
    }
}

#define VOCAB 1500
#define CORPUS 200

static const char *const stop[] = {"the", "a", "of", "and", "to", "in", "is", "for", "with", "on"};

/* A sentence of 8..14 words, about one in four a stop word. */
static void make_sentence(uint64_t *rng, char (*vocab)[24], char *out)
{
    size_t n = 8 + tu_rand(rng) % 7, i;

    out[0] = '\0';
    for (i = 0; i < n; i++) {
        const char *w = tu_rand(rng) % 4 == 0 ? stop[tu_rand(rng) % 10] : vocab[tu_rand(rng) % VOCAB];
        strcat(out, i ? " " : "");
        strcat(out, w);
    }
}

/* A near-duplicate: one word replaced, a word upper-cased, punctuation. */
static void edit_sentence(uint64_t *rng, char (*vocab)[24], const char *in, char *out)
{
    char words[16][24];
    size_t n = 0, i, pick, up;
    const char *p = in;

    while (*p != '\0' && n < 16) {
        size_t len = strcspn(p, " ");
        snprintf(words[n++], sizeof(words[0]), "%.*s", (int)len, p);
        p += len + (p[len] == ' ');
    }
    pick = tu_rand(rng) % n;
    snprintf(words[pick], sizeof(words[0]), "%s", vocab[tu_rand(rng) % VOCAB]);
    up = tu_rand(rng) % n;
    for (i = 0; words[up][i] != '\0'; i++)
        words[up][i] = (char)(words[up][i] >= 'a' && words[up][i] <= 'z' ? words[up][i] - 32 : words[up][i]);
    out[0] = '\0';
    for (i = 0; i < n; i++) {
        strcat(out, i ? (i == n / 2 ? ", " : " ") : "");
        strcat(out, words[i]);
    }
    strcat(out, "!");
}

struct corpus {
    char (*vocab)[24];
    char (*orig)[256];
    char (*edit)[256];
};

static void corpus_make(struct corpus *c, uint64_t seed)
{
    uint64_t rng = seed;

    c->vocab = calloc(VOCAB, sizeof(*c->vocab));
    c->orig = calloc(CORPUS, sizeof(*c->orig));
    c->edit = calloc(CORPUS, sizeof(*c->edit));
    assert_true(c->vocab && c->orig && c->edit);
    for (size_t i = 0; i < VOCAB; i++)
        make_word(&rng, c->vocab[i]);
    for (size_t i = 0; i < CORPUS; i++) {
        make_sentence(&rng, c->vocab, c->orig[i]);
        edit_sentence(&rng, c->vocab, c->orig[i], c->edit[i]);
    }
}

static void corpus_free(struct corpus *c)
{
    free(c->vocab);
    free(c->orig);
    free(c->edit);
}

/* Embed the corpus with model name, then count near-duplicate hits and the
 * mean |cos| between different originals. */
static void corpus_eval(const char *name, double *hit_rate, double *mean_abs)
{
    struct corpus c;
    embed_reg_t *reg = reg_ok(NULL, 0);
    embed_model_t *m = model_ok(reg, name);
    size_t dim = embed_model_dim(m), i, j, hits = 0, pairs = 0;
    const char *to[CORPUS], *te[CORPUS];
    float *vo = malloc(CORPUS * dim * sizeof(float)), *ve = malloc(CORPUS * dim * sizeof(float));
    double sum = 0;

    corpus_make(&c, tu_seed(42));
    assert_true(vo && ve);
    for (i = 0; i < CORPUS; i++) {
        to[i] = c.orig[i];
        te[i] = c.edit[i];
    }
    embed_ok(m, to, CORPUS, vo);
    embed_ok(m, te, CORPUS, ve);
    for (i = 0; i < CORPUS; i++) {
        size_t best = 0;
        double bs = -2;
        for (j = 0; j < CORPUS; j++) {
            double s = dot(ve + i * dim, vo + j * dim, dim);
            if (s > bs) {
                bs = s;
                best = j;
            }
            if (j > i) {
                sum += fabs(dot(vo + i * dim, vo + j * dim, dim));
                pairs++;
            }
        }
        hits += best == i;
    }
    *hit_rate = (double)hits / CORPUS;
    *mean_abs = sum / (double)pairs;
    print_message("%s: near-duplicate hit rate %.3f, mean |cos| of unrelated %.3f\n", name,
                  *hit_rate, *mean_abs);
    free(vo);
    free(ve);
    corpus_free(&c);
    embed_reg_free(reg);
}

/* -------------------------------------------------------- hash model */

static void test_embed_hash_near_duplicates(void **state)
{
    const char *names[] = {"veclog/hash-256", "veclog/hash-512"};
    double hit, mean;

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        corpus_eval(names[i], &hit, &mean);
        assert_true(hit >= 0.95);
        assert_true(mean < 0.2);
    }
}

/* Checksums of the float bits of a few outputs: the scheme in embed_hash.c
 * is a storage format, so any change to it must show up here. */
static void test_embed_hash_pinned_outputs(void **state)
{
    static const char *const texts[] = {
        "The quick brown fox jumps over the lazy dog.",
        "Grüße aus München: ÄÖÜ äöü ß, 東京 and 42 numbers",
        "a",
        "Vector databases store embeddings; veclog is fed by Kafka!",
    };
    static const struct {
        const char *model;
        uint64_t sum;
    } pins[] = {
        {"veclog/hash-128", 0xcbaa42298e1aa65cull},
        {"veclog/hash-256", 0xc7a011149a8429d4ull},
        {"veclog/hash-512", 0xafe8e6ba3cb09826ull},
        {"veclog/hash-768", 0x9f925894790f59f9ull},
    };
    embed_reg_t *reg = reg_ok(NULL, 0);
    float *v = malloc(4 * 768 * sizeof(float)), *again = malloc(4 * 768 * sizeof(float));
    bool fail = false;

    (void)state;
    for (size_t i = 0; i < sizeof(pins) / sizeof(*pins); i++) {
        embed_model_t *m = model_ok(reg, pins[i].model);
        size_t bytes = 4 * embed_model_dim(m) * sizeof(float);
        uint64_t sum;

        embed_ok(m, texts, 4, v);
        embed_ok(m, texts, 4, again);
        assert_memory_equal(v, again, bytes);
        sum = fnv(v, bytes);
        if (sum != pins[i].sum) {
            print_message("%s: checksum 0x%016llx, pinned 0x%016llx\n", pins[i].model,
                          (unsigned long long)sum, (unsigned long long)pins[i].sum);
            fail = true;
        }
    }
    free(v);
    free(again);
    embed_reg_free(reg);
    if (fail)
        fail_msg("hash model output changed: that is a storage format change");
}

static void test_embed_hash_normalised_and_invariant(void **state)
{
    const char *texts[] = {"Hello, World!", "hello world", "", "  ,.!? ", "hello", "world hello"};
    embed_reg_t *reg = reg_ok(NULL, 0);
    embed_model_t *m = model_ok(reg, "veclog/hash-256");
    float v[6 * 256], zero[256] = {0};

    (void)state;
    embed_ok(m, texts, 6, v);
    assert_true(fabs(dot(v, v, 256) - 1.0) < 1e-5);
    /* case and punctuation do not matter at all */
    assert_memory_equal(v, v + 256, sizeof(zero));
    /* no words: the zero vector */
    assert_memory_equal(v + 2 * 256, zero, sizeof(zero));
    assert_memory_equal(v + 3 * 256, zero, sizeof(zero));
    /* a part shares a lot, and word order is ignored (bag of features) */
    assert_true(dot(v, v + 4 * 256, 256) > 0.5);
    assert_true(fabs(dot(v, v + 5 * 256, 256) - 1.0) < 1e-5);
    embed_reg_free(reg);
}

static void test_embed_hash_dims(void **state)
{
    embed_conf_t c;
    embed_reg_t *reg;
    const char *t[] = {"one text", "another one"};
    static const struct {
        const char *name;
        uint32_t dim;
    } want[] = {{"veclog/hash-128", 128}, {"veclog/hash-256", 256}, {"veclog/hash-512", 512},
                {"veclog/hash-768", 768}, {"tiny", 7}};
    float v[2 * 768];

    (void)state;
    embed_conf_init(&c);
    c.name = "tiny";
    c.type = "hash";
    c.dim = 7;
    reg = reg_ok(&c, 1);
    assert_int_equal(embed_reg_count(reg), 5);
    assert_null(embed_reg_at(reg, 5));
    for (size_t i = 0; i < 5; i++) {
        embed_model_t *m = model_ok(reg, want[i].name);
        assert_int_equal(embed_model_dim(m), want[i].dim);
        assert_string_equal(embed_model_name(m), want[i].name);
        embed_ok(m, t, 2, v);
        assert_true(fabs(dot(v, v, want[i].dim) - 1.0) < 1e-5);
        assert_true(fabs(dot(v + want[i].dim, v + want[i].dim, want[i].dim) - 1.0) < 1e-5);
    }
    /* n == 0 is a no-op, even with NULL arrays */
    assert_int_equal(embed_texts(model_ok(reg, "tiny"), NULL, 0, NULL, NULL), ERR_OK);
    embed_reg_free(reg);
}

/* ------------------------------------------------------------ registry */

static void expect_reg_error(const embed_conf_t *c, size_t n, int code, const char *sub)
{
    embed_reg_t *reg = (embed_reg_t *)&reg; /* must be reset to NULL */
    err_t err = {0};

    assert_int_equal(embed_reg_new(c, n, &reg, &err), code);
    assert_null(reg);
    assert_int_equal(err.code, code);
    assert_false(err.retriable);
    assert_contains(err.msg, sub);
}

static void test_embed_reg_errors(void **state)
{
    embed_conf_t c[2];
    embed_reg_t *reg = reg_ok(NULL, 0);
    embed_model_t *m = (embed_model_t *)&m;
    const char *texts[] = {"a", NULL};
    float v[2 * 256];
    err_t err = {0};

    (void)state;
    assert_int_equal(embed_model_get(reg, "nope", &m, &err), ERR_NOT_FOUND);
    assert_null(m);
    assert_contains(err.msg, "\"nope\"");
    assert_contains(err.msg, "veclog/hash-256");
    assert_contains(err.msg, "veclog/hash-768");
    m = model_ok(reg, "veclog/hash-256");
    assert_int_equal(embed_texts(m, texts, 2, v, &err), ERR_INVALID);
    assert_false(err.retriable);
    assert_contains(err.msg, "text 1 is NULL");
    assert_int_equal(embed_texts(m, texts, 1, NULL, &err), ERR_INVALID);
    embed_reg_free(reg);

#define RESET() do { \
        embed_conf_init(&c[0]); embed_conf_init(&c[1]); \
        c[0].name = "m"; c[0].type = "http"; c[0].url = "http://127.0.0.1:1/e"; \
        c[0].model = "x"; c[0].dim = 4; c[1] = c[0]; c[1].name = "n"; \
    } while (0)
    RESET();
    reg = reg_ok(c, 2); /* the baseline is valid */
    embed_reg_free(reg);
    RESET(); c[1].name = "m";
    expect_reg_error(c, 2, ERR_INVALID, "model \"m\": name: is used twice");
    RESET(); c[0].name = "veclog/hash-256";
    expect_reg_error(c, 1, ERR_INVALID, "is taken by a built-in model");
    RESET(); c[0].name = "";
    expect_reg_error(c, 1, ERR_INVALID, "name: must not be empty");
    RESET(); c[0].type = "grpc";
    expect_reg_error(c, 1, ERR_INVALID, "type: \"grpc\" is not hash or http");
    RESET(); c[0].type = NULL;
    expect_reg_error(c, 1, ERR_INVALID, "type: required");
    RESET(); c[0].dim = 0;
    expect_reg_error(c, 1, ERR_INVALID, "dim: required");
    RESET(); c[0].dim = EMBED_DIM_MAX + 1;
    expect_reg_error(c, 1, ERR_INVALID, "dim: 65537 is out of range");
    RESET(); c[0].url = NULL;
    expect_reg_error(c, 1, ERR_INVALID, "model \"m\": url: required");
    RESET(); c[0].url = "https://api.openai.com/v1/embeddings";
    expect_reg_error(c, 1, ERR_UNSUPPORTED, "model \"m\": url: https:// is not supported");
    RESET(); c[0].url = "ftp://x/y";
    expect_reg_error(c, 1, ERR_INVALID, "url:");
    RESET(); c[0].url = "not a url";
    expect_reg_error(c, 1, ERR_INVALID, "url:");
    RESET(); c[0].model = NULL;
    expect_reg_error(c, 1, ERR_INVALID, "model: required for api openai");
    RESET(); c[0].api = "cohere";
    expect_reg_error(c, 1, ERR_INVALID, "api: \"cohere\" is not openai or tei");
    RESET(); c[0].batch_size = 0;
    expect_reg_error(c, 1, ERR_INVALID, "batch_size: 0 is out of range");
    RESET(); c[0].timeout_ms = 0;
    expect_reg_error(c, 1, ERR_INVALID, "timeout_ms: 0 is out of range");
    RESET(); c[0].max_retries = EMBED_RETRIES_MAX + 1;
    expect_reg_error(c, 1, ERR_INVALID, "max_retries: 21 is out of range");
    RESET(); c[0].api_key = "a\r\nX-Evil: 1";
    expect_reg_error(c, 1, ERR_INVALID, "api_key:");
    RESET(); c[0].type = "hash";
    expect_reg_error(c, 1, ERR_INVALID, "url: only http models have one");
    expect_reg_error(NULL, 1, ERR_INVALID, "NULL");
#undef RESET
}

/* ------------------------------------------------------- HTTP server */

struct server {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    uint16_t port;
    pthread_mutex_t mu;
    unsigned requests;      /* since the last server_reset */
    size_t batches[64];     /* number of texts of each request */
    char auth[128];         /* last Authorization header, "" if none */
    unsigned flaky;         /* requests still to fail with 503 */
};

static struct server srv;

static void server_reset(unsigned flaky)
{
    pthread_mutex_lock(&srv.mu);
    srv.requests = 0;
    srv.auth[0] = '\0';
    srv.flaky = flaky;
    memset(srv.batches, 0, sizeof(srv.batches));
    pthread_mutex_unlock(&srv.mu);
}

static void server_vec(const char *text, float *v, size_t dim)
{
    uint64_t h = fnv(text, strlen(text));

    for (size_t j = 0; j < dim; j++)
        v[j] = (float)((int)((h >> (j * 7 % 57)) & 31) - 15) + 0.5f;
}

static void reply(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *b = evbuffer_new();

    evbuffer_add(b, body, strlen(body));
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
    evbuffer_free(b);
}

static cJSON *vec_json(const char *text, size_t dim)
{
    float v[SDIM + 1];
    cJSON *arr = cJSON_CreateArray();

    server_vec(text, v, dim);
    for (size_t j = 0; j < dim; j++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(v[j]));
    return arr;
}

/* The answer in OpenAI's shape (reversed, with "index") or TEI's;
 * wrongdim / wrongcount spoil it. */
static char *answer(const cJSON *inputs, bool openai, bool wrongdim, bool wrongcount)
{
    int n = cJSON_GetArraySize(inputs) - (wrongcount ? 1 : 0);
    cJSON *root = openai ? cJSON_CreateObject() : cJSON_CreateArray();
    cJSON *data = openai ? cJSON_AddArrayToObject(root, "data") : root;
    char *s;

    for (int i = n - 1; openai && i >= 0; i--) {
        cJSON *item = cJSON_CreateObject();
        cJSON_AddItemToObject(item, "embedding",
                              vec_json(cJSON_GetArrayItem(inputs, i)->valuestring, SDIM));
        cJSON_AddNumberToObject(item, "index", i);
        cJSON_AddItemToArray(data, item);
    }
    for (int i = 0; !openai && i < n; i++)
        cJSON_AddItemToArray(data, vec_json(cJSON_GetArrayItem(inputs, i)->valuestring,
                                            wrongdim ? SDIM - 1 : SDIM));
    s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* Parse the request, record what the tests check, and say whether it is
 * OpenAI's shape ("input") and whether to fail it with 503 (flaky). */
static cJSON *server_record(struct evhttp_request *req, bool *openai, bool *fail503)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    char *body = malloc(len + 1);
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    cJSON *root, *inputs;

    evbuffer_remove(in, body, len);
    body[len] = '\0';
    root = cJSON_Parse(body);
    free(body);
    inputs = cJSON_DetachItemFromObjectCaseSensitive(root, "input");
    *openai = inputs != NULL;
    if (inputs == NULL)
        inputs = cJSON_DetachItemFromObjectCaseSensitive(root, "inputs");
    pthread_mutex_lock(&srv.mu);
    if (srv.requests < 64)
        srv.batches[srv.requests] = (size_t)cJSON_GetArraySize(inputs);
    srv.requests++;
    snprintf(srv.auth, sizeof(srv.auth), "%s", auth ? auth : "");
    *fail503 = srv.flaky > 0;
    srv.flaky -= srv.flaky > 0;
    pthread_mutex_unlock(&srv.mu);
    if (*openai && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "model")))
        inputs = (cJSON_Delete(inputs), NULL); /* the model name is required */
    cJSON_Delete(root);
    return inputs;
}

static void server_handle(struct evhttp_request *req, void *arg)
{
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    bool openai, fail503;
    cJSON *inputs = server_record(req, &openai, &fail503);
    char *body = NULL;

    (void)arg;
    if (strcmp(path, "/hang") == 0)
        ; /* never answer: the client must time out */
    else if (inputs == NULL || !cJSON_IsArray(inputs))
        reply(req, 422, "{\"error\": \"bad request body\", \"error_type\": \"Validation\"}");
    else if (strcmp(path, "/flaky") == 0 && fail503)
        reply(req, 503, "{\"error\": \"model loading\"}");
    else if (strcmp(path, "/500") == 0)
        reply(req, 500, "internal boom");
    else if (strcmp(path, "/400") == 0)
        reply(req, 400, "{\"error\": {\"message\": \"  input too long:\\nmax 8192 tokens  \", "
                        "\"type\": \"invalid_request_error\"}}");
    else if (strcmp(path, "/malformed") == 0)
        reply(req, 200, "{\"data\": [1, 2");
    else if ((body = answer(inputs, openai, strstr(path, "/wrongdim") != NULL,
                            strstr(path, "/wrongcount") != NULL)) != NULL)
        reply(req, 200, body);
    free(body);
    cJSON_Delete(inputs);
}

static void *server_main(void *arg)
{
    (void)arg;
    event_base_dispatch(srv.base);
    return NULL;
}

static int server_start(void **state)
{
    struct evhttp_bound_socket *sock;
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads(); /* event_base_loopbreak from the main thread */
    pthread_mutex_init(&srv.mu, NULL);
    assert_non_null(srv.base = event_base_new());
    assert_non_null(srv.http = evhttp_new(srv.base));
    evhttp_set_gencb(srv.http, server_handle, NULL);
    assert_non_null(sock = evhttp_bind_socket_with_handle(srv.http, "127.0.0.1", 0));
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sa, &sl), 0);
    srv.port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&srv.thread, NULL, server_main, NULL), 0);
    return 0;
}

static int server_stop(void **state)
{
    (void)state;
    event_base_loopbreak(srv.base);
    pthread_join(srv.thread, NULL);
    evhttp_free(srv.http);
    event_base_free(srv.base);
    pthread_mutex_destroy(&srv.mu);
    return 0;
}

/* A registry with one http model "m" on the test server. */
static embed_reg_t *http_reg(const char *api, const char *path, uint32_t batch, uint32_t timeout_ms,
                             uint32_t retries, const char *key)
{
    char url[128];
    embed_conf_t c;

    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)srv.port, path);
    embed_conf_init(&c);
    c.name = "m";
    c.type = "http";
    c.api = api;
    c.url = url;
    c.model = "test-model";
    c.dim = SDIM;
    c.api_key = key;
    c.batch_size = batch;
    c.timeout_ms = timeout_ms;
    c.max_retries = retries;
    return reg_ok(&c, 1);
}

/* n texts "text i", and a check that out holds their normalised vectors. */
static void texts_make(const char **t, char (*buf)[32], size_t n, unsigned salt)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(buf[i], sizeof(buf[i]), "text %zu/%u", i, salt);
        t[i] = buf[i];
    }
}

static bool vectors_match(const char *const *t, size_t n, const float *out)
{
    for (size_t i = 0; i < n; i++) {
        float v[SDIM];
        double norm = 0;
        server_vec(t[i], v, SDIM);
        for (size_t j = 0; j < SDIM; j++)
            norm += (double)v[j] * v[j];
        for (size_t j = 0; j < SDIM; j++)
            if (fabs(v[j] / sqrt(norm) - out[i * SDIM + j]) > 1e-6)
                return false;
    }
    return true;
}

static void test_embed_http_openai_batches(void **state)
{
    embed_reg_t *reg = http_reg("openai", "/openai/v1/embeddings", 4, 2000, 0, "sk-test");
    const char *t[10];
    char buf[10][32];
    float out[10 * SDIM];

    (void)state;
    texts_make(t, buf, 10, 1);
    server_reset(0);
    embed_ok(model_ok(reg, "m"), t, 10, out);
    assert_true(vectors_match(t, 10, out)); /* order kept across batches and "index" */
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.requests, 3);
    assert_int_equal(srv.batches[0], 4);
    assert_int_equal(srv.batches[1], 4);
    assert_int_equal(srv.batches[2], 2);
    assert_string_equal(srv.auth, "Bearer sk-test");
    pthread_mutex_unlock(&srv.mu);
    embed_reg_free(reg);
}

static void test_embed_http_tei(void **state)
{
    embed_reg_t *reg = http_reg("tei", "/tei", 32, 2000, 0, NULL);
    const char *t[5];
    char buf[5][32];
    float out[5 * SDIM];

    (void)state;
    texts_make(t, buf, 5, 2);
    t[4] = ""; /* empty text goes to the server as is */
    server_reset(0);
    embed_ok(model_ok(reg, "m"), t, 5, out);
    assert_true(vectors_match(t, 5, out));
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.requests, 1);
    assert_int_equal(srv.batches[0], 5);
    assert_string_equal(srv.auth, ""); /* no key, no header */
    pthread_mutex_unlock(&srv.mu);
    embed_reg_free(reg);
}

static void test_embed_http_retries_503(void **state)
{
    embed_reg_t *reg = http_reg("tei", "/flaky", 32, 2000, 3, NULL);
    const char *t[3];
    char buf[3][32];
    float out[3 * SDIM];

    (void)state;
    texts_make(t, buf, 3, 3);
    server_reset(2);
    embed_ok(model_ok(reg, "m"), t, 3, out);
    assert_true(vectors_match(t, 3, out));
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.requests, 3);
    pthread_mutex_unlock(&srv.mu);
    embed_reg_free(reg);
}

/* One failing call: code, retriable flag, message, requests seen. */
static void expect_http_error(const char *api, const char *path, uint32_t timeout_ms,
                              uint32_t retries, int code, bool retriable, const char *sub,
                              unsigned requests)
{
    embed_reg_t *reg = http_reg(api, path, 32, timeout_ms, retries, NULL);
    const char *t[2] = {"x", "y"};
    float out[2 * SDIM];
    err_t err = {0};

    server_reset(0);
    assert_int_equal(embed_texts(model_ok(reg, "m"), t, 2, out, &err), code);
    assert_int_equal(err.code, code);
    assert_int_equal(err.retriable, retriable);
    assert_contains(err.msg, sub);
    assert_contains(err.msg, "model \"m\"");
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.requests, requests);
    pthread_mutex_unlock(&srv.mu);
    embed_reg_free(reg);
}

static void test_embed_http_errors(void **state)
{
    (void)state;
    /* always 500: retried, then retriable */
    expect_http_error("tei", "/500", 2000, 2, ERR_BUSY, true, "HTTP 500: internal boom", 3);
    expect_http_error("tei", "/500", 2000, 2, ERR_BUSY, true, "after 3 attempts", 3);
    /* 400: not retried, the server's text trimmed into the message */
    expect_http_error("openai", "/400", 2000, 3, ERR_INVALID, false,
                      "HTTP 400: input too long: max 8192 tokens", 1);
    /* wrong shapes: not retried */
    expect_http_error("tei", "/malformed", 2000, 3, ERR_CORRUPT, false, "not JSON", 1);
    expect_http_error("tei", "/wrongdim", 2000, 3, ERR_CORRUPT, false, "expected an array of 8", 1);
    expect_http_error("tei", "/wrongcount", 2000, 3, ERR_CORRUPT, false, "array of 2 embeddings", 1);
    expect_http_error("openai", "/openai/wrongcount", 2000, 3, ERR_CORRUPT, false,
                      "with 2 embeddings", 1);
}

static void test_embed_http_timeout(void **state)
{
    (void)state;
    expect_http_error("tei", "/hang", 300, 1, ERR_TIMEOUT, true, "no answer within 300 ms", 2);
}

static void test_embed_http_connection_refused(void **state)
{
    embed_conf_t c;
    embed_reg_t *reg;
    const char *t[1] = {"x"};
    float out[SDIM];
    err_t err = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    char url[64];

    (void)state;
    /* a port that was free a moment ago, and nobody listens on */
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/tei", (unsigned)ntohs(sa.sin_port));
    embed_conf_init(&c);
    c.name = "m";
    c.type = "http";
    c.api = "tei";
    c.url = url;
    c.dim = SDIM;
    c.max_retries = 1;
    reg = reg_ok(&c, 1);
    assert_int_equal(embed_texts(model_ok(reg, "m"), t, 1, out, &err), ERR_BUSY);
    assert_true(err.retriable);
    assert_contains(err.msg, "connection failed");
    embed_reg_free(reg);
}

struct worker {
    embed_model_t *m;
    unsigned id;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;

    for (unsigned round = 0; round < 10; round++) {
        const char *t[7];
        char buf[7][32];
        float out[7 * SDIM];
        err_t err = {0};

        texts_make(t, buf, 7, w->id * 100 + round);
        if (embed_texts(w->m, t, 7, out, &err) != ERR_OK || !vectors_match(t, 7, out))
            w->failures++;
    }
    return NULL;
}

static void test_embed_http_concurrent(void **state)
{
    embed_reg_t *reg = http_reg("openai", "/openai", 3, 5000, 0, "k");
    struct worker w[4];
    pthread_t th[4];

    (void)state;
    server_reset(0);
    for (unsigned i = 0; i < 4; i++) {
        w[i] = (struct worker){.m = model_ok(reg, "m"), .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    pthread_mutex_lock(&srv.mu);
    assert_int_equal(srv.requests, 4 * 10 * 3); /* 7 texts in batches of 3 */
    pthread_mutex_unlock(&srv.mu);
    embed_reg_free(reg);
}

/* -------------------------------------------------------------- config */

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/veclog-embed-XXXXXX");
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int load_yaml(const char *yaml, char **envp, config_t *c, err_t *err)
{
    char *path = write_tmp(yaml);
    int rc = config_load(path, envp, c, err);

    unlink(path);
    free(path);
    return rc;
}

static const config_model_t *find_model(const config_t *c, const char *name)
{
    for (size_t i = 0; i < c->n_models; i++)
        if (strcmp(c->models[i].name, name) == 0)
            return &c->models[i];
    fail_msg("model %s not in config", name);
    return NULL;
}

static void expect_config_error(const char *yaml, char **envp, const char *sub)
{
    config_t c;
    err_t err = {0};

    assert_int_equal(load_yaml(yaml, envp, &c, &err), ERR_INVALID);
    assert_contains(err.msg, sub);
}

static const char models_yaml[] =
    "models:\n"
    "  openai-small:\n"
    "    type: http\n"
    "    url: http://127.0.0.1:9/v1/embeddings\n"
    "    model: text-embedding-3-small\n"
    "    dim: 1536\n"
    "    api_key: sk-secret\n"
    "  tiny: {type: hash, dim: 64}\n";

static void test_embed_config_models(void **state)
{
    char *envp[] = {"VECLOG__MODELS__OPENAI_SMALL__TIMEOUT_MS=500",
                    "VECLOG__MODELS__NEWONE__TYPE=hash", "VECLOG__MODELS__NEWONE__DIM=32", NULL};
    const config_model_t *m;
    embed_conf_t conf[3];
    embed_reg_t *reg;
    config_t c, again;
    err_t err = {0};
    char *text = NULL, *path;
    size_t len = 0;
    FILE *f;

    (void)state;
    if (load_yaml(models_yaml, envp, &c, &err) != ERR_OK)
        fail_msg("config_load: %s", err.msg);
    assert_int_equal(c.n_models, 3);
    m = find_model(&c, "openai-small");
    assert_string_equal(m->type, "http");
    assert_string_equal(m->api, "openai");
    assert_int_equal(m->dim, 1536);
    assert_int_equal(m->timeout_ms, 500); /* from the environment */
    assert_int_equal(m->batch_size, 32);
    assert_int_equal(m->max_retries, 3);
    assert_int_equal(find_model(&c, "newone")->dim, 32);
    for (size_t i = 0; i < 3; i++)
        config_model_embed(&c.models[i], &conf[i]);
    reg = reg_ok(conf, 3);
    assert_int_equal(embed_model_dim(model_ok(reg, "tiny")), 64);
    embed_reg_free(reg);

    /* dump: key masked, and it reads back */
    assert_non_null(f = open_memstream(&text, &len));
    assert_int_equal(config_dump(&c, f, &err), ERR_OK);
    fclose(f);
    assert_null(strstr(text, "sk-secret"));
    assert_contains(text, "\nmodels:");
    assert_int_equal(load_yaml(text, NULL, &again, &err), ERR_OK);
    assert_int_equal(again.n_models, 3);
    assert_string_equal(find_model(&again, "openai-small")->api_key, "***");
    assert_int_equal(find_model(&again, "openai-small")->timeout_ms, 500);
    config_free(&again);
    config_free(&c);
    free(text);

    /* none by default; "models: {}" in the documented file */
    path = "configs/veclog.yaml";
    assert_int_equal(config_load(path, NULL, &c, &err), ERR_OK);
    assert_int_equal(c.n_models, 0);
    config_free(&c);
}

static void test_embed_config_models_errors(void **state)
{
    char *env_https[] = {"VECLOG__MODELS__OPENAI_SMALL__URL=https://x/y", NULL};
    char *env_bare[] = {"VECLOG__MODELS__TINY=1", NULL};
    char *env_typo[] = {"VECLOG__MODELS__TINY__DIMS=3", NULL};

    (void)state;
    expect_config_error("models: {m: {type: http, dim: 4}}\n", NULL, "model \"m\": url: required");
    expect_config_error("models: {m: {type: http, dim: 4, url: 'https://a/b', model: x}}\n", NULL,
                        "https:// is not supported");
    expect_config_error("models: {m: {type: hash}}\n", NULL, "dim: required");
    expect_config_error("models: {m: {type: hash, dim: 70000}}\n", NULL, "models.m.dim");
    expect_config_error("models: {m: {type: sparse, dim: 4}}\n", NULL, "models.m.type");
    expect_config_error("models: {m: {type: hash, dim: 4, urll: x}}\n", NULL,
                        "models.m.urll: unknown key");
    expect_config_error("models: {veclog/hash-256: {type: hash, dim: 4}}\n", NULL,
                        "taken by a built-in");
    expect_config_error("models: {m: 3}\n", NULL, "expected a mapping of model keys");
    expect_config_error("models: 3\n", NULL, "expected a mapping");
    expect_config_error(models_yaml, env_https, "https:// is not supported");
    expect_config_error(models_yaml, env_bare, "VECLOG__MODELS__<NAME>__<KEY>");
    expect_config_error(models_yaml, env_typo, "models.tiny.dims: unknown key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embed_hash_near_duplicates),
        cmocka_unit_test(test_embed_hash_pinned_outputs),
        cmocka_unit_test(test_embed_hash_normalised_and_invariant),
        cmocka_unit_test(test_embed_hash_dims),
        cmocka_unit_test(test_embed_reg_errors),
        cmocka_unit_test(test_embed_http_openai_batches),
        cmocka_unit_test(test_embed_http_tei),
        cmocka_unit_test(test_embed_http_retries_503),
        cmocka_unit_test(test_embed_http_errors),
        cmocka_unit_test(test_embed_http_timeout),
        cmocka_unit_test(test_embed_http_connection_refused),
        cmocka_unit_test(test_embed_http_concurrent),
        cmocka_unit_test(test_embed_config_models),
        cmocka_unit_test(test_embed_config_models_errors),
    };

    return cmocka_run_group_tests(tests, server_start, server_stop);
}
