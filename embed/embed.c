/*
 * embed.c - see embed.h: the model registry and the dispatch of
 * embed_texts to the hash or http implementation.
 *
 * Design: the registry is a plain array of models in registration order
 * (built-ins first).  It holds a handful of models and is looked up once
 * per request, so a linear scan with strcmp beats any index in both speed
 * and simplicity.  Validation of the shared fields (name, type, dim)
 * happens here; embed_http_new checks the http-only ones.  Everything is
 * checked before anything is exposed, so a registry either exists whole or
 * not at all.
 */
#include "embed/embed_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct embed_reg {
    embed_model_t **models;
    size_t n;
};

/* The built-in hash models: cheap, offline, always present. */
static const struct {
    const char *name;
    uint32_t dim;
} builtins[] = {
    {"veclog/hash-128", 128},
    {"veclog/hash-256", 256},
    {"veclog/hash-512", 512},
    {"veclog/hash-768", 768},
};

#define N_BUILTINS (sizeof(builtins) / sizeof(builtins[0]))

void embed_conf_init(embed_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->batch_size = 32;
    c->timeout_ms = 10000;
    c->max_retries = 3;
}

static void model_free(embed_model_t *m)
{
    if (m == NULL)
        return;
    embed_http_free(m->http);
    free(m->name);
    free(m);
}

void embed_reg_free(embed_reg_t *reg)
{
    size_t i;

    if (reg == NULL)
        return;
    for (i = 0; i < reg->n; i++)
        model_free(reg->models[i]);
    free(reg->models);
    free(reg);
}

static embed_model_t *find(const embed_reg_t *reg, const char *name)
{
    size_t i;

    for (i = 0; i < reg->n; i++)
        if (strcmp(reg->models[i]->name, name) == 0)
            return reg->models[i];
    return NULL;
}

/* The checks that do not depend on the model's kind. */
static int check_common(const embed_reg_t *reg, const embed_conf_t *c, size_t i, err_t *err)
{
    size_t j;

    if (c->name == NULL || c->name[0] == '\0')
        return err_set(err, ERR_INVALID, "embed: model %zu: name: must not be empty", i + 1);
    for (j = 0; j < reg->n; j++)
        if (strcmp(reg->models[j]->name, c->name) == 0)
            return err_set(err, ERR_INVALID, "embed: model \"%s\": name: %s", c->name,
                           j < N_BUILTINS ? "is taken by a built-in model" : "is used twice");
    if (c->type == NULL)
        return err_set(err, ERR_INVALID, "embed: model \"%s\": type: required (hash or http)",
                       c->name);
    if (strcmp(c->type, "hash") != 0 && strcmp(c->type, "http") != 0)
        return err_set(err, ERR_INVALID, "embed: model \"%s\": type: \"%.100s\" is not hash or "
                       "http", c->name, c->type);
    if (c->dim == 0)
        return err_set(err, ERR_INVALID, "embed: model \"%s\": dim: required (1..%u)", c->name,
                       EMBED_DIM_MAX);
    if (c->dim > EMBED_DIM_MAX)
        return err_set(err, ERR_INVALID, "embed: model \"%s\": dim: %u is out of range (1..%u)",
                       c->name, (unsigned)c->dim, EMBED_DIM_MAX);
    if (strcmp(c->type, "hash") == 0 && c->url != NULL)
        return err_set(err, ERR_INVALID, "embed: model \"%s\": url: only http models have one "
                       "(type is hash)", c->name);
    return ERR_OK;
}

/* Build one model and append it; reg->models has room for it. */
static int add_model(embed_reg_t *reg, const embed_conf_t *c, size_t i, err_t *err)
{
    embed_model_t *m = NULL;
    int rc;

    if ((rc = check_common(reg, c, i, err)) != ERR_OK)
        return rc;
    if ((m = calloc(1, sizeof(*m))) == NULL || (m->name = strdup(c->name)) == NULL) {
        rc = err_set(err, ERR_NOMEM, "embed: out of memory");
        goto out;
    }
    m->dim = c->dim;
    m->kind = strcmp(c->type, "http") == 0 ? EMBED_HTTP : EMBED_HASH;
    if (m->kind == EMBED_HTTP && (rc = embed_http_new(c, &m->http, err)) != ERR_OK) {
        err_wrap(err, "embed: model \"%s\"", c->name);
        goto out;
    }
    reg->models[reg->n++] = m;
    m = NULL;
out:
    model_free(m);
    return rc;
}

int embed_reg_new(const embed_conf_t *models, size_t n, embed_reg_t **out, err_t *err)
{
    embed_reg_t *reg = NULL;
    embed_conf_t c;
    size_t i;
    int rc = ERR_OK;

    *out = NULL;
    if (models == NULL && n > 0)
        return err_set(err, ERR_INVALID, "embed: %zu models given as NULL", n);
    if ((reg = calloc(1, sizeof(*reg))) == NULL ||
        (reg->models = calloc(N_BUILTINS + n, sizeof(*reg->models))) == NULL) {
        rc = err_set(err, ERR_NOMEM, "embed: out of memory");
        goto out;
    }
    for (i = 0; i < N_BUILTINS && rc == ERR_OK; i++) {
        embed_conf_init(&c);
        c.name = builtins[i].name;
        c.type = "hash";
        c.dim = builtins[i].dim;
        rc = add_model(reg, &c, i, err);
    }
    for (i = 0; i < n && rc == ERR_OK; i++)
        rc = add_model(reg, &models[i], i, err);
    if (rc == ERR_OK) {
        *out = reg;
        reg = NULL;
    }
out:
    embed_reg_free(reg);
    return rc;
}

size_t embed_reg_count(const embed_reg_t *reg)
{
    return reg->n;
}

embed_model_t *embed_reg_at(const embed_reg_t *reg, size_t i)
{
    return i < reg->n ? reg->models[i] : NULL;
}

/* "a, b, c" into buf, cut with "..." when it does not fit. */
static void list_names(const embed_reg_t *reg, char *buf, size_t cap)
{
    size_t i, o = 0;

    buf[0] = '\0';
    for (i = 0; i < reg->n; i++) {
        size_t need = strlen(reg->models[i]->name) + 2;
        if (o + need + 4 >= cap) {
            snprintf(buf + o, cap - o, "...");
            return;
        }
        o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", reg->models[i]->name);
    }
}

int embed_model_get(const embed_reg_t *reg, const char *name, embed_model_t **out, err_t *err)
{
    char known[ERR_MSG_MAX / 2];

    *out = NULL;
    if (name == NULL)
        return err_set(err, ERR_INVALID, "embed: no model name given");
    if ((*out = find(reg, name)) != NULL)
        return ERR_OK;
    list_names(reg, known, sizeof(known));
    return err_set(err, ERR_NOT_FOUND, "embed: unknown model \"%.100s\"; known models: %s", name,
                   known);
}

uint32_t embed_model_dim(const embed_model_t *m)
{
    return m->dim;
}

const char *embed_model_name(const embed_model_t *m)
{
    return m->name;
}

int embed_texts(embed_model_t *m, const char *const *texts, size_t n, float *out, err_t *err)
{
    size_t i;

    if (n == 0)
        return ERR_OK;
    if (texts == NULL || out == NULL)
        return err_set(err, ERR_INVALID, "embed: %s is NULL", texts == NULL ? "texts" : "out");
    for (i = 0; i < n; i++)
        if (texts[i] == NULL)
            return err_set(err, ERR_INVALID, "embed: text %zu is NULL", i);
    if (m->kind == EMBED_HASH)
        return embed_hash_texts(m, texts, n, out, err);
    return embed_http_texts(m, texts, n, out, err);
}
