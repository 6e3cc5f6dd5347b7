/*
 * coll_vindex.c - the vector index of a collection: immutable HNSW
 * segments built by a background optimizer, Qdrant-style.
 *
 * SEGMENTS
 * Per vector name, the collection's points are split into indexed
 * segments and the "appendable segment".  An indexed segment is an HNSW
 * graph (hnsw.h) built once over a snapshot of some points and never
 * added to; its node n stands for slot slot_of_node[n].  Per name and per
 * slot, seg_of_slot[s] (0: not indexed) and node_of_slot[s] say which node
 * serves the slot.  Node n of segment S is valid iff, for s =
 * slot_of_node[n], seg_of_slot[s] == S.id and node_of_slot[s] == n.  The
 * appendable segment is every live slot with the vector and seg_of_slot 0;
 * searches scan it exactly.
 *
 * Whenever the applier changes or removes a slot's vector (update, delete,
 * delete of the point) it marks the node deleted in its graph and sets
 * seg_of_slot to 0 (coll_vindex_unmap), so an updated point moves to the
 * appendable part and a stale graph copy is never returned.  Tombstone
 * purge renumbers slots: the mapping moves with them (coll_vindex_move,
 * coll_vindex_renumbered).
 *
 * THE OPTIMIZER
 * One thread per collection, woken after writes and every second.  Each
 * round does at most one job for one name:
 *   index  : the unindexed live vectors of a name reach indexing_threshold
 *            (KB of vectors; 0: never): build a segment of them;
 *   vacuum : a segment of >= vacuum_min nodes has more than
 *            deleted_threshold of them deleted, or none valid: rebuild it
 *            from its valid nodes (or drop it);
 *   merge  : a name has more than max_segments segments (optimizers_config.
 *            default_segment_number; 0: the CPU count, at least 2): rebuild the two
 *            smallest into one.
 * A job copies ids and vectors under the shared lock, builds the graph
 * with no lock held, saves it, then takes the exclusive lock to publish:
 * each new node is mapped only if its slot still holds the same id, a
 * byte-identical vector, and is unindexed or served by a segment the job
 * replaces; otherwise the node is marked deleted.  Replaced segments leave
 * the list in the same critical section (readers hold the lock for a whole
 * search, so none can still be inside them) and their files are unlinked
 * afterwards.
 *
 * FILES (<coll dir>/segments/)
 *   <vecidx>-<segid>.hnsw   the graph (hnsw_save; atomic tmp + rename)
 *   <vecidx>-<segid>.ids    the point id of each node, written first (tmp +
 *                           fsync + rename) so a .hnsw never exists without
 *                           its .ids; an .ids alone is a crash leftover
 *   .ids byte format, little-endian:
 *     u32 magic 0x53444956 ("VIDS"), u32 version (1), u32 dim, u32 count,
 *     then count times: u8 key length L (9 or 17), L bytes of ptid.h's key
 *     encoding; then u32 CRC-32C (crc32c.h) of every preceding byte.
 * Segment files are only an acceleration: the WAL and RocksDB are the
 * truth.  At open every node is checked against memory (same id live with
 * a byte-identical vector, not already served by another segment); the
 * rest are marked deleted and their points re-indexed later.  A file that
 * fails to load is logged and renamed *.corrupt.  No graph is built at
 * open (index_builds counts builds; tests assert it stays 0).
 *
 * LOCKING
 * c->vx (segment lists and slot maps) changes only under c->lock held
 * exclusively (applier swap, optimizer publish, purge, or during open);
 * readers hold it shared.  Only the optimizer thread adds or removes
 * segments, so it may read the lists without the lock.  hnsw_delete and
 * hnsw_search are thread-safe on their own.
 *
 * PAYLOAD_M (Qdrant's per-tenant indexing)
 * With hnsw_payload_m > 0 a job also copies, under the same shared lock
 * as the vectors, the groups of its nodes by value of every keyword and
 * integer payload index (coll_index_each_group; a node can be in several
 * groups; groups of fewer than two nodes are skipped), and after
 * hnsw_build links each group (hnsw_group_link) before saving.  Without
 * such an index payload_m does nothing, as in Qdrant.  Filtered searches
 * follow the group links as they are.  hnsw_m 0 with payload_m builds
 * graphs of group links only; such a segment (hnsw_m(g) == 0, whatever
 * the current settings) is searched from a few seed nodes per value of
 * the filter's equality condition on a grouped field (every match is in
 * those groups), or, for any other filter or none, by reporting every
 * accepted node (an exact scan of the segment).  Group membership is
 * fixed at build: a point whose payload changes later keeps its old
 * group's links until its segment is rebuilt.
 *
 * SETTINGS come from coll_opts_t at open; the catalog passes the
 * collection's hnsw_config / optimizers_config, so a PATCH of those applies
 * at the next open only.
 */
#include "coll_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "dist.h"
#include "hnsw.h"
#include "log.h"

#define IDS_MAGIC 0x53444956u
#define IDS_VERSION 1u
#define NO_SLOT UINT32_MAX
#define MIN_ROUND_GAP_NS 100000000L /* at most ~10 optimizer rounds a second */

/* ---- settings ------------------------------------------------------------ */

int coll_vindex_init(coll_t *c, const coll_opts_t *o, err_t *err)
{
    coll_vopts_t *v = &c->vopts;

    v->indexing_threshold_kb = o->indexing_threshold_kb;
    v->full_scan_threshold_kb = o->full_scan_threshold_kb ? o->full_scan_threshold_kb : 10000;
    v->payload_m = o->hnsw_payload_m;
    if (v->payload_m == 1)
        v->payload_m = 2;
    if (v->payload_m > HNSW_MAX_M)
        v->payload_m = HNSW_MAX_M;
    /* m 0 with payload_m: per-group graphs only (Qdrant's per-tenant indexing) */
    v->m = o->hnsw_m ? o->hnsw_m : v->payload_m ? 0 : 16;
    if (v->m == 1)
        v->m = 2;
    if (v->m > HNSW_MAX_M)
        v->m = HNSW_MAX_M;
    v->ef_construct = o->hnsw_ef_construct ? o->hnsw_ef_construct : 100;
    if (v->ef_construct < v->m)
        v->ef_construct = v->m;
    v->threads = o->max_indexing_threads ? o->max_indexing_threads : 2;
    v->on_disk = o->hnsw_on_disk;
    v->deleted_threshold = o->deleted_threshold > 0 ? o->deleted_threshold : 0.2;
    v->vacuum_min = o->vacuum_min_vector_number ? o->vacuum_min_vector_number : 1000;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    v->max_segments = o->default_segment_number ? o->default_segment_number
                      : cpus > 2 ? (uint32_t)(cpus < 16 ? cpus : 16) : 2;
    c->next_seg_id = 1;
    pthread_mutex_init(&c->opt_mu, NULL);
    pthread_cond_init(&c->opt_cv, NULL);
    c->vx = calloc(c->n_defs + 1, sizeof(*c->vx));
    if (c->vx == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    return ERR_OK;
}

/* Qdrant's KB thresholds in vectors of dimension dim (at least 1). */
static uint64_t kb_vectors(uint64_t kb, uint32_t dim)
{
    uint64_t n = kb * 1024 / ((uint64_t)dim * sizeof(float));
    return n ? n : 1;
}

uint64_t coll_vindex_full_scan_vectors(const coll_t *c, uint32_t k)
{
    return kb_vectors(c->vopts.full_scan_threshold_kb, c->defs[k].dim);
}

size_t coll_vindex_default_ef(const coll_t *c)
{
    return c->vopts.ef_construct;
}

/* ---- slot maps ------------------------------------------------------------ */

int coll_vindex_reserve(coll_t *c, uint32_t old_cap, uint32_t new_cap)
{
    for (uint32_t k = 0; k < c->n_defs; k++) {
        coll_vidx_t *x = &c->vx[k];
        uint32_t *a = realloc(x->seg_of_slot, (size_t)new_cap * sizeof(uint32_t));
        if (a == NULL)
            return ERR_NOMEM;
        x->seg_of_slot = a;
        uint32_t *b = realloc(x->node_of_slot, (size_t)new_cap * sizeof(uint32_t));
        if (b == NULL)
            return ERR_NOMEM;
        x->node_of_slot = b;
        memset(a + old_cap, 0, (size_t)(new_cap - old_cap) * sizeof(uint32_t));
    }
    return ERR_OK;
}

void coll_vindex_slot_new(coll_t *c, uint32_t s)
{
    for (uint32_t k = 0; k < c->n_defs; k++)
        c->vx[k].seg_of_slot[s] = 0;
}

/* ---- the appendable part (coll_vidx_t.tail) ------------------------------ */

static bool tail_member(const coll_t *c, uint32_t k, uint32_t s)
{
    return s < c->n_slots && (c->slots[s].flags & SLOT_LIVE) && c->vs[k].present[s] &&
           c->vx[k].seg_of_slot[s] == 0;
}

/* Without memory the set is dropped and searches look at every slot. */
static void tail_lost(coll_vidx_t *x)
{
    if (x->tail != NULL) {
        free(x->tail->t);
        free(x->tail);
        x->tail = NULL;
    }
}

void coll_vindex_track(coll_t *c, uint32_t k, uint32_t s)
{
    coll_vidx_t *x = &c->vx[k];

    if (x->tail == NULL)
        return;
    if (!tail_member(c, k, s))
        coll_sset_del(x->tail, s);
    else if (!coll_sset_has(x->tail, s) && coll_sset_add(x->tail, s) != ERR_OK)
        tail_lost(x);
}

/* Recompute vector k's appendable part from scratch (open, publish,
 * renumbering): O(slots), once per such event, never per query. */
static void tail_rebuild(coll_t *c, uint32_t k)
{
    coll_vidx_t *x = &c->vx[k];

    tail_lost(x);
    if ((x->tail = calloc(1, sizeof(*x->tail))) == NULL)
        return;
    for (uint32_t s = 0; s < c->n_slots; s++)
        if (tail_member(c, k, s) && coll_sset_add(x->tail, s) != ERR_OK) {
            tail_lost(x);
            return;
        }
}

const uint32_t *coll_vindex_tail(const coll_t *c, uint32_t k, uint32_t *cap)
{
    const coll_vidx_t *x = &c->vx[k];
    *cap = x->tail ? x->tail->cap : 0;
    return x->tail ? x->tail->t : NULL;
}

static coll_seg_t *seg_by_id(const coll_vidx_t *x, uint32_t id)
{
    for (size_t i = 0; i < x->n_segs; i++)
        if (x->segs[i]->id == id)
            return x->segs[i];
    return NULL;
}

void coll_vindex_unmap(coll_t *c, uint32_t k, uint32_t s)
{
    coll_vidx_t *x = &c->vx[k];
    uint32_t sid = x->seg_of_slot[s];

    if (sid == 0)
        return;
    coll_seg_t *seg = seg_by_id(x, sid);
    if (seg != NULL)
        (void)hnsw_delete(seg->g, x->node_of_slot[s], NULL);
    x->seg_of_slot[s] = 0;
    x->indexed--;
}

void coll_vindex_move(coll_t *c, uint32_t from, uint32_t to)
{
    for (uint32_t k = 0; k < c->n_defs; k++) {
        coll_vidx_t *x = &c->vx[k];
        x->seg_of_slot[to] = x->seg_of_slot[from];
        x->node_of_slot[to] = x->node_of_slot[from];
        x->seg_of_slot[from] = 0;
    }
}

void coll_vindex_renumbered(coll_t *c)
{
    for (uint32_t k = 0; k < c->n_defs; k++) {
        coll_vidx_t *x = &c->vx[k];
        for (uint32_t s = c->n_slots; s < c->cap_slots; s++)
            x->seg_of_slot[s] = 0;
        for (size_t i = 0; i < x->n_segs; i++) {
            coll_seg_t *seg = x->segs[i];
            size_t n = hnsw_count(seg->g);
            for (size_t j = 0; j < n; j++)
                seg->slot_of_node[j] = NO_SLOT;
        }
        for (uint32_t s = 0; s < c->n_slots; s++) {
            coll_seg_t *seg = x->seg_of_slot[s] ? seg_by_id(x, x->seg_of_slot[s]) : NULL;
            if (seg != NULL)
                seg->slot_of_node[x->node_of_slot[s]] = s;
        }
        tail_rebuild(c, k);
    }
}

static bool node_valid(const coll_vidx_t *x, const coll_seg_t *seg, uint32_t n)
{
    uint32_t s = seg->slot_of_node[n];
    return s != NO_SLOT && x->seg_of_slot[s] == seg->id && x->node_of_slot[s] == n;
}

/* ---- segment objects and files ----------------------------------------- */

static void seg_free(coll_seg_t *seg)
{
    if (seg == NULL)
        return;
    hnsw_free(seg->g);
    free(seg->slot_of_node);
    free(seg->path);
    free(seg);
}

static void seg_unlink(const char *base)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s.hnsw", base);
    unlink(p);
    snprintf(p, sizeof(p), "%s.ids", base);
    unlink(p);
}

static char *seg_base(const coll_t *c, uint32_t k, uint32_t id)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/segments/%u-%u", c->dir, k, id);
    return strdup(p);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Write all of buf to fd. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Encode the .ids file of n ids into a new buffer. */
static uint8_t *ids_encode(const ptid_t *ids, size_t n, uint32_t dim, size_t *len)
{
    uint8_t *buf = malloc(16 + n * (1 + PTID_KEY_MAX) + 4);
    size_t off = 16;

    if (buf == NULL)
        return NULL;
    put32(buf, IDS_MAGIC);
    put32(buf + 4, IDS_VERSION);
    put32(buf + 8, dim);
    put32(buf + 12, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        size_t kl = ptid_encode(&ids[i], buf + off + 1);
        buf[off] = (uint8_t)kl;
        off += 1 + kl;
    }
    put32(buf + off, crc32c_value(buf, off));
    *len = off + 4;
    return buf;
}

/* Write base.ids durably: .tmp, fsync, rename (the directory is synced by
 * the hnsw_save that follows). */
static int ids_write(const char *base, const ptid_t *ids, size_t n, uint32_t dim, err_t *err)
{
    char tmp[4200], path[4200];
    size_t len;
    uint8_t *buf = ids_encode(ids, n, dim, &len);
    int fd = -1, rc = ERR_OK;

    snprintf(path, sizeof(path), "%s.ids", base);
    snprintf(tmp, sizeof(tmp), "%s.ids.tmp", base);
    if (buf == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write_all(fd, buf, len) != 0 || fsync(fd) != 0) {
        int e = errno;
        rc = err_errno(err, e, "write %s", tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        rc = err_errno(err, e, "rename %s", tmp);
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != ERR_OK)
        unlink(tmp);
    free(buf);
    return rc;
}

/* Read base.ids: *ids gets a new array of *n ids.  ERR_CORRUPT on any
 * format or checksum mismatch. */
static int ids_read(const char *base, uint32_t dim, ptid_t **ids, size_t *n, err_t *err)
{
    char path[4200];
    uint8_t *buf = NULL;
    struct stat st;
    int fd, rc = ERR_OK;
    size_t off = 16;

    *ids = NULL;
    snprintf(path, sizeof(path), "%s.ids", base);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        rc = err_errno(err, e, "open %s", path);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL || read(fd, buf, (size_t)st.st_size) != st.st_size) {
        rc = err_set(err, ERR_IO, "read %s", path);
        goto out;
    }
    size_t len = (size_t)st.st_size;
    if (len < 20 || get32(buf) != IDS_MAGIC || get32(buf + 4) != IDS_VERSION ||
        get32(buf + 8) != dim || get32(buf + len - 4) != crc32c_value(buf, len - 4)) {
        rc = err_set(err, ERR_CORRUPT, "%s: bad header or checksum", path);
        goto out;
    }
    *n = get32(buf + 12);
    *ids = malloc((*n ? *n : 1) * sizeof(ptid_t));
    if (*ids == NULL) {
        rc = err_set(err, ERR_NOMEM, "no memory");
        goto out;
    }
    for (size_t i = 0; i < *n && rc == ERR_OK; i++) {
        size_t kl = off < len - 4 ? buf[off] : 0;
        if (kl == 0 || off + 1 + kl > len - 4 ||
            ptid_decode(buf + off + 1, kl, &(*ids)[i]) != kl)
            rc = err_set(err, ERR_CORRUPT, "%s: bad id %zu", path, i);
        off += 1 + kl;
    }
    if (rc == ERR_OK && off != len - 4)
        rc = err_set(err, ERR_CORRUPT, "%s: trailing bytes", path);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    if (rc != ERR_OK) {
        free(*ids);
        *ids = NULL;
    }
    return rc;
}

/* ---- loading segments at open ------------------------------------------- */

static int segs_append(coll_vidx_t *x, coll_seg_t *seg)
{
    coll_seg_t **ns = realloc(x->segs, (x->n_segs + 1) * sizeof(*ns));
    if (ns == NULL)
        return ERR_NOMEM;
    x->segs = ns;
    ns[x->n_segs++] = seg;
    return ERR_OK;
}

/* Map every node of a freshly opened segment whose point still holds the
 * same vector (and is not served by another segment); mark the rest
 * deleted.  Returns how many were mapped.  Open time: no other thread. */
static size_t seg_map_at_open(coll_t *c, uint32_t k, coll_seg_t *seg, const ptid_t *ids)
{
    coll_vidx_t *x = &c->vx[k];
    uint32_t dim = c->defs[k].dim;
    size_t n = hnsw_count(seg->g), mapped = 0;

    for (size_t i = 0; i < n; i++) {
        uint32_t node = (uint32_t)i;
        int64_t s = coll_slot_find(c, &ids[i]);
        bool ok = s >= 0 && !hnsw_is_deleted(seg->g, node) &&
                  (c->slots[s].flags & SLOT_LIVE) && c->vs[k].present[s] &&
                  x->seg_of_slot[s] == 0 &&
                  memcmp(hnsw_vector(seg->g, node), c->vs[k].data + (size_t)s * dim,
                         dim * sizeof(float)) == 0;
        seg->slot_of_node[i] = NO_SLOT;
        if (!ok) {
            (void)hnsw_delete(seg->g, node, NULL);
            continue;
        }
        seg->slot_of_node[i] = (uint32_t)s;
        x->seg_of_slot[s] = seg->id;
        x->node_of_slot[s] = node;
        x->indexed++;
        mapped++;
    }
    return mapped;
}

static void seg_quarantine(const char *base, const char *why)
{
    char from[4200], to[4300];
    const char *ext[2] = { ".hnsw", ".ids" };

    log_warn("coll", "segment %s unusable (%s): renamed *.corrupt, its points will be re-indexed",
             base, why);
    for (int i = 0; i < 2; i++) {
        snprintf(from, sizeof(from), "%s%s", base, ext[i]);
        snprintf(to, sizeof(to), "%s.corrupt", from);
        rename(from, to);
    }
}

/* Open segment k-id; a file that fails to load is quarantined. */
static int seg_load(coll_t *c, uint32_t k, uint32_t id, err_t *err)
{
    coll_seg_t *seg = calloc(1, sizeof(*seg));
    char path[4300];
    ptid_t *ids = NULL;
    size_t n_ids = 0;
    err_t e;
    int rc = ERR_OK;

    if (seg == NULL || (seg->path = seg_base(c, k, id)) == NULL) {
        rc = err_set(err, ERR_NOMEM, "no memory");
        goto out;
    }
    seg->id = id;
    snprintf(path, sizeof(path), "%s.hnsw", seg->path);
    bool mmap = c->defs[k].on_disk || c->vopts.on_disk;
    if (hnsw_open(path, mmap, &seg->g, NULL, &e) != ERR_OK ||
        ids_read(seg->path, c->defs[k].dim, &ids, &n_ids, &e) != ERR_OK) {
        seg_quarantine(seg->path, e.msg);
        goto out;
    }
    if (hnsw_dim(seg->g) != c->defs[k].dim || (int)hnsw_metric(seg->g) != c->defs[k].metric ||
        n_ids != hnsw_count(seg->g)) {
        seg_quarantine(seg->path, "dimension, metric or node count do not match");
        goto out;
    }
    seg->slot_of_node = malloc((n_ids ? n_ids : 1) * sizeof(uint32_t));
    if (seg->slot_of_node == NULL) {
        rc = err_set(err, ERR_NOMEM, "no memory");
        goto out;
    }
    if (seg_map_at_open(c, k, seg, ids) == 0) {
        seg_unlink(seg->path); /* nothing valid left: drop it */
        goto out;
    }
    rc = segs_append(&c->vx[k], seg) == ERR_OK ? ERR_OK : err_set(err, ERR_NOMEM, "no memory");
    if (rc == ERR_OK)
        seg = NULL;
out:
    free(ids);
    seg_free(seg);
    return rc;
}

/* One directory entry of segments/: load, clean up, or note its id. */
static int segdir_entry(coll_t *c, const char *dir, const char *name, err_t *err)
{
    unsigned k, id;
    int used = 0;
    char ext[32] = "", path[4600];
    size_t nl = strlen(name);

    if (nl > 4 && strcmp(name + nl - 4, ".tmp") == 0) {
        snprintf(path, sizeof(path), "%s/%s", dir, name); /* an unfinished write */
        unlink(path);
        return ERR_OK;
    }
    if (sscanf(name, "%u-%u%n", &k, &id, &used) != 2 || id == 0)
        return ERR_OK;
    snprintf(ext, sizeof(ext), "%s", name + used);
    if (id >= c->next_seg_id)
        c->next_seg_id = id + 1;
    if (strcmp(ext, ".hnsw") == 0 || strcmp(ext, ".ids") == 0) {
        char other[4600];
        snprintf(other, sizeof(other), "%s/%u-%u%s", dir, k, id,
                 ext[1] == 'h' ? ".ids" : ".hnsw");
        if (access(other, F_OK) != 0) { /* half of a crashed save */
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            unlink(path);
            return ERR_OK;
        }
        if (ext[1] == 'h' && k < c->n_defs)
            return seg_load(c, k, id, err);
    }
    return ERR_OK;
}

static void *optimizer_main(void *arg);

int coll_vindex_open(coll_t *c, err_t *err)
{
    char dir[4200];
    DIR *d;
    struct dirent *de;
    int rc = ERR_OK;

    snprintf(dir, sizeof(dir), "%s/segments", c->dir);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        return err_errno(err, e, "create %s", dir);
    }
    d = opendir(dir);
    if (d == NULL) {
        int e = errno;
        return err_errno(err, e, "open %s", dir);
    }
    while (rc == ERR_OK && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            rc = segdir_entry(c, dir, de->d_name, err);
    closedir(d);
    if (rc != ERR_OK)
        return rc;
    for (uint32_t k = 0; k < c->n_defs; k++)
        tail_rebuild(c, k);
    if (pthread_create(&c->opt_thread, NULL, optimizer_main, c) != 0)
        return err_set(err, ERR_IO, "cannot start the optimizer thread");
    c->opt_started = true;
    return ERR_OK;
}

/* ---- optimizer jobs ------------------------------------------------------ */

/* A segment to build: the ids and vectors of its points (copied under the
 * shared lock) and the segments it replaces. */
typedef struct job {
    uint32_t k;
    ptid_t *ids;
    float *vecs;
    uint32_t *slots;          /* the slot each node was copied from */
    size_t n, cap;
    uint32_t old[2];
    size_t n_old;
    /* payload_m: the nodes of each value group (group g is
     * g_nodes[g_off[g] .. g_off[g + 1])), copied with the vectors */
    uint32_t *g_nodes;
    size_t n_gn, cap_gn;
    size_t *g_off;
    size_t n_groups, cap_groups;
} job_t;

static void job_clear(job_t *j)
{
    free(j->ids);
    free(j->vecs);
    free(j->slots);
    free(j->g_nodes);
    free(j->g_off);
    memset(j, 0, sizeof(*j));
}

/* Append slot s's id and vector k.  Caller holds lock shared. */
static int job_add(job_t *j, const coll_t *c, uint32_t s)
{
    uint32_t dim = c->defs[j->k].dim;

    if (j->n == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 1024;
        ptid_t *ni = realloc(j->ids, cap * sizeof(ptid_t));
        if (ni == NULL)
            return ERR_NOMEM;
        j->ids = ni;
        float *nv = realloc(j->vecs, cap * dim * sizeof(float));
        if (nv == NULL)
            return ERR_NOMEM;
        j->vecs = nv;
        uint32_t *ns = realloc(j->slots, cap * sizeof(uint32_t));
        if (ns == NULL)
            return ERR_NOMEM;
        j->slots = ns;
        j->cap = cap;
    }
    j->slots[j->n] = s;
    j->ids[j->n] = c->slots[s].id;
    memcpy(j->vecs + j->n * dim, c->vs[j->k].data + (size_t)s * dim, dim * sizeof(float));
    j->n++;
    return ERR_OK;
}

static bool slot_has(const coll_t *c, uint32_t k, uint32_t s)
{
    return (c->slots[s].flags & SLOT_LIVE) && c->vs[k].present[s];
}

/* Add the valid nodes of seg to the job and list it as replaced. */
static int job_take_seg(job_t *j, const coll_t *c, const coll_seg_t *seg)
{
    const coll_vidx_t *x = &c->vx[j->k];
    size_t n = hnsw_count(seg->g);

    j->old[j->n_old++] = seg->id;
    for (size_t i = 0; i < n; i++) {
        if (!node_valid(x, seg, (uint32_t)i) || !slot_has(c, j->k, seg->slot_of_node[i]))
            continue;
        if (job_add(j, c, seg->slot_of_node[i]) != ERR_OK)
            return ERR_NOMEM;
    }
    return ERR_OK;
}

static size_t seg_live(const coll_seg_t *seg)
{
    return hnsw_count(seg->g) - hnsw_deleted_count(seg->g);
}

/* Vacuum (or drop) one segment of name k, or merge two: true if a job was
 * set up.  Caller holds lock shared. */
static bool pick_compaction(coll_t *c, job_t *j)
{
    const coll_vidx_t *x = &c->vx[j->k];

    for (size_t i = 0; i < x->n_segs; i++) {
        const coll_seg_t *seg = x->segs[i];
        size_t total = hnsw_count(seg->g), del = hnsw_deleted_count(seg->g);
        if (del == total ||
            (total >= c->vopts.vacuum_min && (double)del > c->vopts.deleted_threshold * (double)total))
            return job_take_seg(j, c, seg) == ERR_OK;
    }
    if (x->n_segs <= c->vopts.max_segments)
        return false;
    size_t a = 0, b = 1;
    if (seg_live(x->segs[b]) < seg_live(x->segs[a])) {
        a = 1;
        b = 0;
    }
    for (size_t i = 2; i < x->n_segs; i++) {
        size_t l = seg_live(x->segs[i]);
        if (l < seg_live(x->segs[a])) {
            b = a;
            a = i;
        } else if (l < seg_live(x->segs[b])) {
            b = i;
        }
    }
    return job_take_seg(j, c, x->segs[a]) == ERR_OK && job_take_seg(j, c, x->segs[b]) == ERR_OK;
}

/* Index the unindexed vectors of name k if there are enough. */
static bool pick_indexing(coll_t *c, job_t *j)
{
    const coll_vidx_t *x = &c->vx[j->k];
    uint64_t unindexed = 0;

    if (c->vopts.indexing_threshold_kb == 0)
        return false;
    for (uint32_t s = 0; s < c->n_slots; s++)
        unindexed += x->seg_of_slot[s] == 0 && slot_has(c, j->k, s);
    if (unindexed < kb_vectors(c->vopts.indexing_threshold_kb, c->defs[j->k].dim))
        return false;
    for (uint32_t s = 0; s < c->n_slots; s++)
        if (x->seg_of_slot[s] == 0 && slot_has(c, j->k, s) && job_add(j, c, s) != ERR_OK)
            return false;
    return true;
}

/* ---- payload_m: value groups of a job ---------------------------------- */

typedef struct grp_ctx {
    job_t *j;
    const uint32_t *node_of; /* slot -> job node, NO_SLOT: not in the job */
} grp_ctx_t;

/* One value's slot set: append its nodes in the job as a group (kept only
 * with at least two: a single node has nothing to link to). */
static int grp_add(void *ctx, const coll_sset_t *set)
{
    grp_ctx_t *g = ctx;
    job_t *j = g->j;
    size_t start = j->n_gn;

    for (uint32_t t = 0; t < set->cap; t++) {
        uint32_t node = set->t[t] ? g->node_of[set->t[t] - 1] : NO_SLOT;
        if (node == NO_SLOT)
            continue;
        if (j->n_gn == j->cap_gn) {
            size_t cap = j->cap_gn ? 2 * j->cap_gn : 1024;
            uint32_t *a = realloc(j->g_nodes, cap * sizeof(*a));
            if (a == NULL)
                return ERR_NOMEM;
            j->g_nodes = a;
            j->cap_gn = cap;
        }
        j->g_nodes[j->n_gn++] = node;
    }
    if (j->n_gn - start < 2) {
        j->n_gn = start;
        return ERR_OK;
    }
    if (j->n_groups + 2 > j->cap_groups) {
        size_t cap = j->cap_groups ? 2 * j->cap_groups : 64;
        size_t *o = realloc(j->g_off, cap * sizeof(*o));
        if (o == NULL)
            return ERR_NOMEM;
        j->g_off = o;
        j->cap_groups = cap;
    }
    j->g_off[j->n_groups++] = start;
    j->g_off[j->n_groups] = j->n_gn;
    return ERR_OK;
}

/* Group the job's nodes by the values of the keyword and integer indexes
 * (Qdrant links the value blocks of indexed fields only; no such index:
 * no groups).  Caller holds lock shared, as for the vectors, so groups
 * and vectors are one snapshot. */
static int job_groups(const coll_t *c, job_t *j)
{
    uint32_t *node_of = malloc((c->n_slots ? c->n_slots : 1) * sizeof(*node_of));
    if (node_of == NULL)
        return ERR_NOMEM;
    for (uint32_t s = 0; s < c->n_slots; s++)
        node_of[s] = NO_SLOT;
    for (size_t i = 0; i < j->n; i++)
        node_of[j->slots[i]] = (uint32_t)i;
    grp_ctx_t g = { j, node_of };
    int rc = coll_index_each_group(c, grp_add, &g);
    free(node_of);
    return rc;
}

/* ---- is_tenant: one tenant's nodes together ---------------------------- */

typedef struct tenant_ctx {
    uint32_t *rank;           /* slot -> tenant number (UINT32_MAX: none) */
    uint32_t next;
} tenant_ctx_t;

static int tenant_rank(void *ctx, const coll_sset_t *set)
{
    tenant_ctx_t *t = ctx;
    for (uint32_t i = 0; i < set->cap; i++)
        if (set->t[i] != 0 && t->rank[set->t[i] - 1] == UINT32_MAX)
            t->rank[set->t[i] - 1] = t->next;
    t->next++;
    return ERR_OK;
}

static __thread const uint32_t *tl_key;

static int node_by_key(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    if (tl_key[x] != tl_key[y])
        return tl_key[x] < tl_key[y] ? -1 : 1;
    return (x > y) - (x < y); /* stable: copy order within a tenant */
}

/* Reorder the job's nodes tenant by tenant (COLL_INDEX_TENANT), so node
 * ids - and the rows of the segment file - of one tenant are contiguous.
 * Caller holds lock shared.  Without memory the order stays: only
 * locality is lost. */
static void job_order_by_tenant(const coll_t *c, job_t *j)
{
    uint32_t dim = c->defs[j->k].dim;
    tenant_ctx_t t = { malloc((c->n_slots ? c->n_slots : 1) * sizeof(uint32_t)), 0 };
    uint32_t *key = malloc((j->n ? j->n : 1) * sizeof(uint32_t));
    uint32_t *perm = malloc((j->n ? j->n : 1) * sizeof(uint32_t));
    float *nv = malloc((j->n ? j->n : 1) * dim * sizeof(float));
    ptid_t *ni = malloc((j->n ? j->n : 1) * sizeof(ptid_t));
    uint32_t *ns = malloc((j->n ? j->n : 1) * sizeof(uint32_t));

    if (t.rank == NULL || key == NULL || perm == NULL || nv == NULL || ni == NULL || ns == NULL)
        goto out;
    memset(t.rank, 0xff, (c->n_slots ? c->n_slots : 1) * sizeof(uint32_t));
    if (coll_index_each_tenant(c, tenant_rank, &t) != ERR_OK || t.next == 0)
        goto out; /* no tenant index: keep slot order */
    for (size_t i = 0; i < j->n; i++) {
        key[i] = t.rank[j->slots[i]];
        perm[i] = (uint32_t)i;
    }
    tl_key = key;
    qsort(perm, j->n, sizeof(uint32_t), node_by_key);
    for (size_t i = 0; i < j->n; i++) {
        ni[i] = j->ids[perm[i]];
        ns[i] = j->slots[perm[i]];
        memcpy(nv + i * dim, j->vecs + (size_t)perm[i] * dim, dim * sizeof(float));
    }
    memcpy(j->ids, ni, j->n * sizeof(ptid_t));
    memcpy(j->slots, ns, j->n * sizeof(uint32_t));
    memcpy(j->vecs, nv, j->n * dim * sizeof(float));
out:
    free(t.rank);
    free(key);
    free(perm);
    free(nv);
    free(ni);
    free(ns);
}

/* The next job, if any.  Caller holds lock shared. */
static bool job_pick(coll_t *c, job_t *j)
{
    for (uint32_t k = 0; k < c->n_defs; k++) {
        job_clear(j);
        j->k = k;
        if (pick_compaction(c, j) || (job_clear(j), j->k = k, pick_indexing(c, j))) {
            if (j->n > 1)
                job_order_by_tenant(c, j);
            if (c->vopts.payload_m > 0 && j->n > 0 && job_groups(c, j) != ERR_OK)
                break; /* out of memory: retry next round */
            return true;
        }
    }
    job_clear(j);
    return false;
}

/* Link each value group of the job in the new graph (no lock held). */
static int job_link_groups(const coll_t *c, const job_t *j, hnsw_t *g, err_t *err)
{
    for (size_t i = 0; i < j->n_groups; i++) {
        int rc = hnsw_group_link(g, j->g_nodes + j->g_off[i], j->g_off[i + 1] - j->g_off[i],
                                 c->vopts.payload_m, c->vopts.ef_construct, err);
        if (rc != ERR_OK)
            return rc;
    }
    return ERR_OK;
}

/* Build and save the job's segment (no lock held).  *out stays NULL for
 * a job with no points (a segment being dropped). */
static int job_build(coll_t *c, const job_t *j, coll_seg_t **out, err_t *err)
{
    const coll_vector_def_t *d = &c->defs[j->k];
    coll_seg_t *seg = NULL;
    char path[4300];
    int rc = ERR_OK;

    *out = NULL;
    if (j->n == 0)
        return ERR_OK;
    seg = calloc(1, sizeof(*seg));
    if (seg == NULL)
        return err_set(err, ERR_NOMEM, "no memory");
    seg->id = c->next_seg_id++;
    seg->path = seg_base(c, j->k, seg->id);
    seg->slot_of_node = malloc(j->n * sizeof(uint32_t));
    if (seg->path == NULL || seg->slot_of_node == NULL) {
        rc = err_set(err, ERR_NOMEM, "no memory");
        goto out;
    }
    for (size_t i = 0; i < j->n; i++)
        seg->slot_of_node[i] = NO_SLOT;
    rc = hnsw_create(d->dim, (enum dist_metric)d->metric, c->vopts.m, c->vopts.ef_construct,
                     seg->id, j->n, &seg->g, err);
    if (rc == ERR_OK)
        rc = hnsw_build(seg->g, j->vecs, j->n, (int)c->vopts.threads, err);
    if (rc == ERR_OK)
        rc = job_link_groups(c, j, seg->g, err);
    __atomic_add_fetch(&c->index_builds, 1, __ATOMIC_RELAXED);
    if (rc == ERR_OK)
        rc = ids_write(seg->path, j->ids, j->n, d->dim, err);
    snprintf(path, sizeof(path), "%s.hnsw", seg->path);
    if (rc == ERR_OK)
        rc = hnsw_save(seg->g, path, 0, err);
out:
    if (rc != ERR_OK) {
        if (seg->path != NULL)
            seg_unlink(seg->path);
        seg_free(seg);
        return rc;
    }
    *out = seg;
    return ERR_OK;
}

/* Map the new segment's nodes, retire the replaced segments (returned in
 * dropped, out of the list).  Caller holds lock exclusively; the list has
 * room for seg. */
static void job_publish(coll_t *c, const job_t *j, coll_seg_t *seg, coll_seg_t **dropped)
{
    coll_vidx_t *x = &c->vx[j->k];
    uint32_t dim = c->defs[j->k].dim;

    for (size_t i = 0; seg != NULL && i < j->n; i++) {
        int64_t s = coll_slot_find(c, &j->ids[i]);
        uint32_t cur = s >= 0 ? x->seg_of_slot[s] : 0;
        bool ok = s >= 0 && slot_has(c, j->k, (uint32_t)s) &&
                  (cur == 0 || (j->n_old > 0 && cur == j->old[0]) ||
                   (j->n_old > 1 && cur == j->old[1])) &&
                  memcmp(j->vecs + i * dim, c->vs[j->k].data + (size_t)s * dim,
                         dim * sizeof(float)) == 0;
        if (!ok) {
            (void)hnsw_delete(seg->g, (uint32_t)i, NULL);
            continue;
        }
        x->indexed += cur == 0;
        x->seg_of_slot[s] = seg->id;
        x->node_of_slot[s] = (uint32_t)i;
        seg->slot_of_node[i] = (uint32_t)s;
    }
    for (size_t o = 0; o < j->n_old; o++) {
        coll_seg_t *old = NULL;
        for (size_t i = 0; i < x->n_segs; i++) {
            if (x->segs[i]->id != j->old[o])
                continue;
            old = x->segs[i];
            x->segs[i] = x->segs[--x->n_segs];
            break;
        }
        size_t n = old ? hnsw_count(old->g) : 0;
        for (size_t i = 0; i < n; i++) {
            if (!node_valid(x, old, (uint32_t)i))
                continue;
            x->seg_of_slot[old->slot_of_node[i]] = 0; /* back to the appendable part */
            x->indexed--;
        }
        dropped[o] = old;
    }
    if (seg != NULL)
        x->segs[x->n_segs++] = seg;
    tail_rebuild(c, j->k);
}

static bool stopping(coll_t *c)
{
    pthread_mutex_lock(&c->opt_mu);
    bool stop = c->opt_stop;
    pthread_mutex_unlock(&c->opt_mu);
    return stop;
}

/* Run one job to the end: false if it failed or was abandoned. */
static bool job_run(coll_t *c, job_t *j)
{
    coll_seg_t *seg = NULL, *dropped[2] = { NULL, NULL };
    coll_vidx_t *x = &c->vx[j->k];
    err_t e;

    if (job_build(c, j, &seg, &e) != ERR_OK) {
        log_warn("coll", "%s: building a vector index segment failed: %s", c->dir, e.msg);
        return false;
    }
    /* Room for the new segment first, so publishing cannot fail halfway.
     * A new array, not realloc: readers may be walking the old one until
     * the swap under the exclusive lock.  n_segs cannot change meanwhile
     * (only this thread changes the list). */
    coll_seg_t **ns = malloc((x->n_segs + 1) * sizeof(*ns)), **old_list;
    if (ns == NULL || stopping(c)) {
        if (seg != NULL)
            seg_unlink(seg->path);
        seg_free(seg);
        free(ns);
        return false;
    }
    if (x->n_segs > 0)
        memcpy(ns, x->segs, x->n_segs * sizeof(*ns));
    pthread_rwlock_wrlock(&c->lock);
    old_list = x->segs;
    x->segs = ns;
    job_publish(c, j, seg, dropped);
    pthread_rwlock_unlock(&c->lock);
    free(old_list);
    for (int i = 0; i < 2; i++) {
        if (dropped[i] != NULL)
            seg_unlink(dropped[i]->path);
        seg_free(dropped[i]);
    }
    return true;
}

/* One optimizer round: true if it did a job (a failed one counts as
 * none, so the thread waits before retrying instead of spinning). */
static bool optimize_round(coll_t *c)
{
    job_t j = { 0 };

    pthread_rwlock_rdlock(&c->lock);
    bool found = job_pick(c, &j);
    pthread_rwlock_unlock(&c->lock);
    if (!found)
        return false;
    __atomic_store_n(&c->optimizing, true, __ATOMIC_RELAXED);
    bool done = job_run(c, &j);
    __atomic_store_n(&c->optimizing, false, __ATOMIC_RELAXED);
    job_clear(&j);
    return done;
}

/* Wait on opt_cv until stop, a kick (if wake_on_kick) or ns from now.
 * Caller holds opt_mu. */
static void opt_wait(coll_t *c, long ns, bool wake_on_kick)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ns % 1000000000L;
    ts.tv_sec += ns / 1000000000L + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    while (!c->opt_stop && !(wake_on_kick && c->opt_kick))
        if (pthread_cond_timedwait(&c->opt_cv, &c->opt_mu, &ts) == ETIMEDOUT)
            break;
}

static void *optimizer_main(void *arg)
{
    coll_t *c = arg;

    pthread_mutex_lock(&c->opt_mu);
    while (!c->opt_stop) {
        c->opt_kick = false;
        pthread_mutex_unlock(&c->opt_mu);
        bool worked = optimize_round(c);
        pthread_mutex_lock(&c->opt_mu);
        if (worked)
            continue;
        /* idle: wait for a write or the 1 s timer, and let writes pile up
         * a little so a busy stream does not make every round scan */
        opt_wait(c, 1000000000L, true);
        opt_wait(c, MIN_ROUND_GAP_NS, false);
    }
    pthread_mutex_unlock(&c->opt_mu);
    return NULL;
}

void coll_vindex_kick(coll_t *c)
{
    pthread_mutex_lock(&c->opt_mu);
    c->opt_kick = true;
    pthread_cond_signal(&c->opt_cv);
    pthread_mutex_unlock(&c->opt_mu);
}

void coll_vindex_stop(coll_t *c)
{
    if (c->vx == NULL || !c->opt_started)
        return;
    pthread_mutex_lock(&c->opt_mu);
    c->opt_stop = true;
    pthread_cond_signal(&c->opt_cv);
    pthread_mutex_unlock(&c->opt_mu);
    pthread_join(c->opt_thread, NULL);
    c->opt_started = false;
}

void coll_vindex_free(coll_t *c)
{
    if (c->vx == NULL)
        return;
    for (uint32_t k = 0; k < c->n_defs; k++) {
        coll_vidx_t *x = &c->vx[k];
        for (size_t i = 0; i < x->n_segs; i++)
            seg_free(x->segs[i]);
        free(x->segs);
        free(x->seg_of_slot);
        free(x->node_of_slot);
        tail_lost(x);
    }
    free(c->vx);
    c->vx = NULL;
    pthread_mutex_destroy(&c->opt_mu);
    pthread_cond_destroy(&c->opt_cv);
}

void coll_vindex_info(coll_t *c, coll_info_t *info)
{
    for (uint32_t k = 0; k < c->n_defs; k++) {
        info->indexed_vectors += c->vx[k].indexed;
        info->segments += (uint32_t)c->vx[k].n_segs;
        for (size_t i = 0; i < c->vx[k].n_segs; i++) {
            info->index_nodes += hnsw_count(c->vx[k].segs[i]->g);
            info->index_deleted += hnsw_deleted_count(c->vx[k].segs[i]->g);
        }
    }
    info->optimizing = __atomic_load_n(&c->optimizing, __ATOMIC_RELAXED);
    info->index_builds = __atomic_load_n(&c->index_builds, __ATOMIC_RELAXED);
    info->graph_searches = __atomic_load_n(&c->st_graph_searches, __ATOMIC_RELAXED);
}

/* ---- search --------------------------------------------------------------- */

typedef struct accept_ctx {
    const coll_t *c;
    const coll_seg_t *seg;
    uint32_t k;
    uint32_t slot;            /* for has_vector */
    const filter_t *f;
} accept_ctx_t;

static bool acc_has_vector(void *ctx, const char *name)
{
    const accept_ctx_t *a = ctx;
    int k = coll_vector_index(a->c, name);
    return k >= 0 && a->c->vs[k].present[a->slot];
}

/* A node is a possible result if it is valid (rule in the file header),
 * its point is live with the vector, and it matches the filter. */
static bool accept_node(void *ctx, uint32_t n)
{
    accept_ctx_t *a = ctx;
    const coll_t *c = a->c;

    if (!node_valid(&c->vx[a->k], a->seg, n))
        return false;
    uint32_t s = a->seg->slot_of_node[n];
    if (!slot_has(c, a->k, s))
        return false;
    if (a->f == NULL)
        return true;
    a->slot = s;
    filter_point_t fp = { &c->slots[s].id, c->slots[s].payload, acc_has_vector, a };
    return coll_filter_match(c, a->f, &fp);
}

#define SEEDS_PER_VALUE 4

/* Seeds of an m == 0 segment: a few nodes of the segment per value of the
 * filter's equality condition. */
typedef struct seeds {
    const coll_vidx_t *x;
    const coll_seg_t *seg;
    uint32_t *ids;
    size_t n, cap;
    bool nomem;
} seeds_t;

static void seeds_add(void *ctx, const coll_sset_t *set)
{
    seeds_t *sd = ctx;
    size_t got = 0;

    for (uint32_t t = 0; t < set->cap && got < SEEDS_PER_VALUE && !sd->nomem; t++) {
        uint32_t s = set->t[t] ? set->t[t] - 1 : NO_SLOT;
        if (s == NO_SLOT || sd->x->seg_of_slot[s] != sd->seg->id)
            continue;
        if (sd->n == sd->cap) {
            size_t cap = sd->cap ? 2 * sd->cap : 16;
            uint32_t *a = realloc(sd->ids, cap * sizeof(*a));
            if (a == NULL) {
                sd->nomem = true;
                break;
            }
            sd->ids = a;
            sd->cap = cap;
        }
        sd->ids[sd->n++] = sd->x->node_of_slot[s];
        got++;
    }
}

/* An m == 0 segment (per-group graphs only, no graph over all nodes).  A
 * filter with an equality condition on a grouped field: every match is in
 * the groups of its values, so a search seeded with a few nodes of each
 * group walks them (no seed: no match in this segment).  Any other filter,
 * or none: report every accepted node (an exact scan; the caller scores
 * them), as Qdrant scans then. */
static int search_groups_only(coll_t *c, const coll_seg_t *seg, accept_ctx_t *a, const float *q,
                              size_t kk, size_t ef, uint32_t *ids,
                              void (*hit)(void *ctx, uint32_t slot), void *ctx, err_t *err)
{
    seeds_t sd = { .x = &c->vx[a->k], .seg = seg };
    size_t n = 0;
    int rc = ERR_OK;

    if (a->f == NULL || !coll_index_filter_groups(c, a->f, seeds_add, &sd)) {
        size_t total = hnsw_count(seg->g);
        for (size_t i = 0; i < total; i++)
            if (accept_node(a, (uint32_t)i))
                hit(ctx, seg->slot_of_node[i]);
        return ERR_OK;
    }
    if (sd.nomem)
        rc = err_set(err, ERR_NOMEM, "no memory for search");
    else if (sd.n > 0)
        rc = hnsw_search_seeded(seg->g, q, kk, ef, accept_node, a, sd.ids, sd.n, ids, NULL, &n,
                                err);
    for (size_t r = 0; rc == ERR_OK && r < n; r++)
        hit(ctx, seg->slot_of_node[ids[r]]);
    free(sd.ids);
    return rc;
}

int coll_vindex_search(coll_t *c, uint32_t k, const float *q, size_t kk, size_t ef,
                       const filter_t *f, void (*hit)(void *ctx, uint32_t slot), void *ctx,
                       err_t *err)
{
    const coll_vidx_t *x = &c->vx[k];
    uint32_t *ids = malloc((kk ? kk : 1) * sizeof(uint32_t));
    int rc = ERR_OK;

    if (ids == NULL)
        return err_set(err, ERR_NOMEM, "no memory for search");
    for (size_t i = 0; i < x->n_segs && rc == ERR_OK && kk > 0; i++) {
        accept_ctx_t a = { c, x->segs[i], k, 0, f };
        size_t n = 0;
        if (hnsw_m(x->segs[i]->g) == 0) {
            rc = search_groups_only(c, x->segs[i], &a, q, kk, ef, ids, hit, ctx, err);
            continue;
        }
        /* group links (payload_m), if any, are followed by the search itself.
         * Without a filter no callback is needed: every node that does not
         * serve its slot (stale after an update, deleted, or refused at
         * publish or open) is hnsw_delete'd, which the graph already skips,
         * and each hit is re-checked against memory by `hit` anyway. */
        rc = hnsw_search(x->segs[i]->g, q, kk, ef, f ? accept_node : NULL, &a, ids, NULL, &n,
                         err);
        for (size_t r = 0; rc == ERR_OK && r < n; r++)
            hit(ctx, x->segs[i]->slot_of_node[ids[r]]);
    }
    free(ids);
    return rc;
}
