/*
 * test_crash.c - kill -9 a writer at random moments, recover, and prove
 * that every acknowledged write is present exactly once.
 *
 * A child process opens the collection (small WAL segments, so rollover
 * and checkpoint truncation happen constantly), resumes after the source
 * offset the store holds, and writes a deterministic stream of ops: op i
 * is an upsert, a delete or a set_payload chosen by i, tagged with source
 * ("crash", 0, i).  After each acknowledged write it reports i on a pipe.
 * The parent SIGKILLs it after a random delay (sometimes during recovery
 * itself), then opens the collection and checks:
 *   - the stored source offset L is >= the last acknowledged i (nothing
 *     acknowledged was lost) and <= the last i the child could have
 *     started;
 *   - the whole state equals a model that applies ops 0..L once each, in
 *     order (a lost, repeated or reordered op would show as a difference);
 *   - every point's version is the WAL seq of the last op that changed it
 *     (op i has seq i + 1: each op is one WAL record, numbering continues
 *     across truncation), so no op was applied under a second seq.
 * VECLOG_CRASH_CYCLES overrides the number of cycles (default 120).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/coll.h"
#include "store/dist.h"
#include "store/log.h"
#include "tests/testutil.h"

#define M 64 /* distinct point ids */

typedef struct model {
    bool exists[M];
    int64_t ins[M];   /* "i" of the upsert that created it */
    int64_t set[M];   /* "s" of the last set_payload, -1 none */
    uint64_t ver[M];  /* seq of the last change */
} model_t;

static int op_kind(int64_t i)
{
    return i % 7 == 3 ? 1 : (i % 5 == 2 ? 2 : 0);
}

static uint64_t op_target(int64_t i)
{
    int k = op_kind(i);
    return (uint64_t)(k == 1 ? (i * 13) % M : k == 2 ? (i * 3) % M : i % M);
}

static void model_apply(model_t *m, int64_t i)
{
    uint64_t id = op_target(i);
    switch (op_kind(i)) {
    case 1:
        m->exists[id] = false;
        m->ver[id] = (uint64_t)i + 1;
        break;
    case 2:
        if (m->exists[id]) {
            m->set[id] = i;
            m->ver[id] = (uint64_t)i + 1;
        }
        break;
    default:
        m->exists[id] = true;
        m->ins[id] = i;
        m->set[id] = -1;
        m->ver[id] = (uint64_t)i + 1;
        break;
    }
}

static coll_t *open_coll(const char *dir)
{
    static coll_vector_def_t def = { .name = "", .dim = 3, .metric = DIST_DOT };
    coll_opts_t o = { .vectors = &def, .n_vectors = 1,
                      .wal = { .segment_bytes = 4096, .sync_mode = WAL_SYNC_ALWAYS },
                      .checkpoint_bytes = 16384 };
    coll_t *c = NULL;
    err_t e;
    if (coll_open(dir, &o, &c, &e) != ERR_OK) {
        fprintf(stderr, "open: %s\n", e.msg);
        return NULL;
    }
    return c;
}

static int write_op(coll_t *c, int64_t i)
{
    op_t op = { 0 };
    op_point_t *p;
    char buf[64];
    float v[3] = { (float)i, 1, 0 };
    err_t e;

    switch (op_kind(i)) {
    case 1:
        op.type = OP_DELETE;
        op_point_add(&op)->id = ptid_num(op_target(i));
        break;
    case 2:
        op.type = OP_SET_PAYLOAD;
        op_point_add(&op)->id = ptid_num(op_target(i));
        snprintf(buf, sizeof(buf), "{\"s\":%lld}", (long long)i);
        op.payload = strdup(buf);
        break;
    default:
        op.type = OP_UPSERT;
        p = op_point_add(&op);
        p->id = ptid_num(op_target(i));
        snprintf(buf, sizeof(buf), "{\"i\":%lld}", (long long)i);
        p->payload = strdup(buf);
        op_vec_add(p, "", v, 3);
        break;
    }
    op_source_set(&op, "crash", 0, i);
    int rc = coll_write(c, &op, NULL, &e);
    op_clear(&op);
    return rc;
}

/* What the child writes once recovery is over, before its first write. */
#define READY INT64_MIN

static void child_main(const char *dir, int fd)
{
    coll_t *c = open_coll(dir);
    if (c == NULL)
        _exit(3);
    int64_t ready = READY;
    if (write(fd, &ready, sizeof(ready)) != sizeof(ready))
        _exit(5);
    for (int64_t i = coll_source_offset(c, "crash", 0) + 1;; i++) {
        if (write_op(c, i) != ERR_OK)
            _exit(4);
        if (write(fd, &i, sizeof(i)) != sizeof(i))
            _exit(5);
    }
}

/* Check the recovered state against the model; returns L. */
static int64_t verify(const char *dir, int64_t acked, int64_t started, model_t *m, int64_t *applied)
{
    coll_t *c = open_coll(dir);
    assert_non_null(c);
    int64_t L = coll_source_offset(c, "crash", 0);
    if (L < acked || L > started)
        fail_msg("stored offset %lld outside [acked %lld, started %lld]", (long long)L,
                 (long long)acked, (long long)started);
    for (; *applied < L; (*applied)++)
        model_apply(m, *applied + 1);
    coll_sel_t sel = { .payload = COLL_PAYLOAD_ALL };
    size_t live = 0;
    for (uint64_t id = 0; id < M; id++) {
        ptid_t pid = ptid_num(id);
        cJSON *arr;
        err_t e;
        assert_int_equal(coll_retrieve(c, &pid, 1, &sel, &arr, &e), ERR_OK);
        cJSON *pt = cJSON_GetArrayItem(arr, 0);
        if (!m->exists[id]) {
            if (pt != NULL)
                fail_msg("id %llu exists but the model deleted it", (unsigned long long)id);
        } else {
            char want[96];
            if (m->set[id] >= 0)
                snprintf(want, sizeof(want), "{\"i\":%lld,\"s\":%lld}", (long long)m->ins[id],
                         (long long)m->set[id]);
            else
                snprintf(want, sizeof(want), "{\"i\":%lld}", (long long)m->ins[id]);
            if (pt == NULL)
                fail_msg("id %llu missing, model has %s", (unsigned long long)id, want);
            char *got = cJSON_PrintUnformatted(cJSON_GetObjectItem(pt, "payload"));
            if (strcmp(got, want) != 0)
                fail_msg("id %llu: payload %s, model %s", (unsigned long long)id, got, want);
            free(got);
            /* the version is the seq of the last op that changed the point */
            float q[3] = { 0, 0, 1 };
            filter_t *f;
            char fj[96];
            snprintf(fj, sizeof(fj), "{\"must\":[{\"has_id\":[%llu]}]}", (unsigned long long)id);
            cJSON *fjs = cJSON_Parse(fj);
            assert_int_equal(filter_parse(fjs, &f, &e), ERR_OK);
            cJSON_Delete(fjs);
            coll_search_req_t req = { .vector = q, .dim = 3, .filter = f, .limit = 1, .sel = &sel };
            cJSON *hits;
            assert_int_equal(coll_search(c, &req, &hits, &e), ERR_OK);
            double ver = cJSON_GetObjectItem(cJSON_GetArrayItem(hits, 0), "version")->valuedouble;
            if ((uint64_t)ver != m->ver[id])
                fail_msg("id %llu: version %.0f, model %llu", (unsigned long long)id, ver,
                         (unsigned long long)m->ver[id]);
            cJSON_Delete(hits);
            filter_free(f);
            live++;
        }
        cJSON_Delete(arr);
    }
    size_t count;
    err_t e;
    coll_count(c, NULL, &count, &e);
    assert_int_equal(count, live);
    coll_close(c);
    return L;
}

static void test_crash_kill9_no_loss_no_duplicates(void **state)
{
    (void)state;
    const char *env = getenv("VECLOG_CRASH_CYCLES");
    int cycles = env ? atoi(env) : 120;
    uint64_t seed = tu_seed((uint64_t)time(NULL));
    char *dir = tu_tmpdir("crash");
    model_t m;
    int64_t applied = -1, total_acked = 0;

    memset(&m, 0, sizeof(m));
    for (int cyc = 0; cyc < cycles; cyc++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, fds[1]);
        }
        close(fds[1]);
        /* every other cycle, count the delay from the end of recovery, so
         * that a slow start (a loaded machine, a sanitizer) still leaves
         * writes to kill; the others count it from the fork, and early
         * kills land inside recovery */
        int64_t first = 0;
        if (cyc % 2 == 1 && read(fds[0], &first, sizeof(first)) != sizeof(first))
            fail_msg("writer died during recovery");
        if (cyc % 2 == 1 && first != READY)
            fail_msg("writer wrote %lld before it was ready", (long long)first);
        struct timespec ts = { 0, (long)(tu_rand(&seed) % 40000) * 1000 };
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status))
            fail_msg("writer exited with %d instead of being killed", WEXITSTATUS(status));
        int64_t i, acked = applied;
        ssize_t n;
        while ((n = read(fds[0], &i, sizeof(i))) == sizeof(i)) {
            if (i == READY)
                continue;
            acked = i;
            total_acked++;
        }
        close(fds[0]);
        /* the child may have started (and logged) one op past the last ack */
        int64_t L = verify(dir, acked, acked + 1, &m, &applied);
        assert_int_equal(L, applied);
    }
    fprintf(stderr, "crash: %d cycles, %lld acknowledged writes, final offset %lld\n", cycles,
            (long long)total_acked, (long long)applied);
    assert_true(total_acked > cycles);
    tu_rmrf(dir);
    free(dir);
}

int main(void)
{
    log_level_set(LOG_WARN); /* one "replayed WAL" line per cycle is noise here */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_kill9_no_loss_no_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
