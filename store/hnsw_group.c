/*
 * hnsw_group.c - group links: Qdrant's payload_m (see hnsw_group_link in
 * hnsw.h).
 *
 * WHY
 * A filtered search traverses rejected nodes but returns only accepted
 * ones.  When the filter keeps one small value group (one tenant) whose
 * members are scattered over the vector space, the main graph's links
 * mostly lead out of the group, the beam fills with rejected nodes and
 * recall drops, more so with a sparse graph.  Linking the members of each
 * group among themselves keeps the group a connected subgraph, so a search
 * that reaches one member walks the rest of the group through its own
 * nearest neighbours.
 *
 * HOW
 * As in Qdrant (which builds one additional HNSW per payload block and
 * merges its links into the main graph): a temporary HNSW with
 * m = payload_m is built over copies of the group's vectors (single
 * threaded; it is only as large as the group), and the layer-0 list of
 * each of its nodes (up to 2 * payload_m ids, chosen with the usual
 * heuristic, back links included) is mapped to main ids and appended to
 * the node's group list.  Upper layers of the temporary graph are dropped:
 * the main graph's upper layers lead a search to the right region, and
 * an m == 0 index seeds its searches with the group's entry instead (the
 * temporary graph's entry point, kept in h->gentry).
 *
 * Group lists live apart from the fixed-size layer-0 blocks because their
 * length is not bounded by m0: a node in several groups (several indexed
 * fields, or an array value) gets the links of each.  They are written
 * only while nothing else runs on the index, then read without locks.
 */
#include "hnsw_internal.h"

#include <stdlib.h>
#include <string.h>

/* Append the ids of add[0..na) to id's group list, skipping id itself and
 * ids already present.  Caller has exclusive use of h. */
static int glinks_append(hnsw_t *h, hnsw_dir_t *d, uint32_t id, const uint32_t *add, size_t na)
{
    hnsw_chunk_t *c = &d->chunks[id >> HNSW_CHUNK_SHIFT];
    if (c->glinks == NULL) {
        if ((c->glinks = calloc(HNSW_CHUNK, sizeof(*c->glinks))) == NULL)
            return ERR_NOMEM;
        h->glink_bytes += HNSW_CHUNK * sizeof(*c->glinks);
    }
    uint32_t *old = c->glinks[id & HNSW_CHUNK_MASK];
    size_t n = old ? old[0] : 0;
    uint32_t *l = realloc(old, (1 + n + na) * sizeof(*l));
    if (l == NULL)
        return ERR_NOMEM;
    c->glinks[id & HNSW_CHUNK_MASK] = l;
    if (old == NULL)
        l[0] = 0;
    size_t added = 0;
    for (size_t i = 0; i < na; i++) {
        bool dup = add[i] == id;
        for (size_t j = 0; j < n + added && !dup; j++)
            dup = l[1 + j] == add[i];
        if (!dup)
            l[1 + n + added++] = add[i];
    }
    l[0] = (uint32_t)(n + added);
    h->glink_ids += added;
    h->glink_bytes += (old == NULL ? 1 + na : na) * sizeof(*l);
    return ERR_OK;
}

static int gentry_add(hnsw_t *h, uint32_t id)
{
    if (h->n_gentry == h->gentry_cap) {
        size_t cap = h->gentry_cap ? 2 * h->gentry_cap : 16;
        uint32_t *g = realloc(h->gentry, cap * sizeof(*g));
        if (g == NULL)
            return ERR_NOMEM;
        h->glink_bytes += (cap - h->gentry_cap) * sizeof(*g);
        h->gentry = g;
        h->gentry_cap = cap;
    }
    h->gentry[h->n_gentry++] = id;
    return ERR_OK;
}

/* Copy the temporary graph t's layer-0 lists into h's group lists (t's
 * node i is h's node ids[i]) and record t's entry point as the group's. */
static int merge_group(hnsw_t *h, const hnsw_t *t, const uint32_t *ids, size_t n)
{
    hnsw_dir_t *d = atomic_load(&h->dir);
    const hnsw_dir_t *td = atomic_load(&t->dir);
    uint32_t *buf = malloc(t->m0 * sizeof(*buf));
    int rc = ERR_OK;

    if (buf == NULL)
        return ERR_NOMEM;
    for (size_t i = 0; i < n && rc == ERR_OK; i++) {
        uint32_t k = hnsw_links_copy(t, td, (uint32_t)i, 0, buf);
        for (uint32_t j = 0; j < k; j++)
            buf[j] = ids[buf[j]];
        if (k > 0)
            rc = glinks_append(h, d, ids[i], buf, k);
    }
    free(buf);
    if (rc == ERR_OK)
        rc = gentry_add(h, ids[(uint32_t)(atomic_load(&t->entry) >> 32)]);
    return rc;
}

int hnsw_group_link(hnsw_t *h, const uint32_t *ids, size_t n, size_t payload_m, size_t ef_construct,
                    err_t *err)
{
    hnsw_t *t = NULL;
    int rc;

    if (h == NULL || (ids == NULL && n > 0))
        return err_set(err, ERR_INVALID, "hnsw_group_link: NULL argument");
    if (h->sealed)
        return err_set(err, ERR_INVALID, "hnsw_group_link: index is sealed (opened with mmap)");
    if (payload_m < 2 || payload_m > HNSW_MAX_M)
        return err_set(err, ERR_INVALID, "hnsw_group_link: payload_m %zu out of range 2..%d",
                       payload_m, HNSW_MAX_M);
    size_t count = atomic_load(&h->count);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= count)
            return err_set(err, ERR_INVALID, "hnsw_group_link: no node %u", ids[i]);
    }
    if (n == 0)
        return ERR_OK;
    if (ef_construct < payload_m)
        ef_construct = payload_m;
    if (ef_construct > 65536)
        ef_construct = 65536;
    /* the group's own seed: a group's graph does not depend on the others */
    rc = hnsw_create(h->dim, h->metric, (uint32_t)payload_m, (uint32_t)ef_construct,
                     h->seed ^ (0x9E3779B97F4A7C15ull * (ids[0] + 1ull)), n, &t, err);
    const hnsw_dir_t *d = atomic_load(&h->dir);
    for (size_t i = 0; rc == ERR_OK && i < n; i++)
        rc = hnsw_add(t, hnsw_node_vec(h, d, ids[i]), NULL, err);
    if (rc == ERR_OK && merge_group(h, t, ids, n) != ERR_OK)
        rc = err_set(err, ERR_NOMEM, "hnsw_group_link: out of memory");
    hnsw_free(t);
    return rc;
}

size_t hnsw_group_entries(const hnsw_t *h)
{
    return h ? h->n_gentry : 0;
}
