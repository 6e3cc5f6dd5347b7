/*
 * test_dlqlocal.c - the local dead-letter store's file format (dlqlocal.h):
 * records written and read back with every field (null key, empty value,
 * headers with a null value), a new file per open, a torn tail (the
 * records before it are read, the tail reported), a bad CRC (ERR_CORRUPT
 * after the good records), a file that is not a dead-letter file, and
 * the listing for `veclog dlq list` (dlqlocal_list_json).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dlq/dlqlocal.h"
#include "tests/testutil.h"

typedef struct seen {
    size_t n;
    int64_t offsets[8];
    char last_value[32], last_msg[64], last_topic[16];
    size_t n_headers;
    bool key_null, hdr1_null;
    char hdr0[16];
} seen_t;

static int cb(const dlqlocal_rec_t *r, void *arg)
{
    seen_t *s = arg;
    s->offsets[s->n++] = r->offset;
    snprintf(s->last_value, sizeof(s->last_value), "%.*s", (int)r->value_len,
             r->value ? (const char *)r->value : "");
    snprintf(s->last_msg, sizeof(s->last_msg), "%s|%s|%s", r->stage, r->class_name, r->message);
    snprintf(s->last_topic, sizeof(s->last_topic), "%s", r->topic);
    s->n_headers = r->n_headers;
    s->key_null = r->key == NULL;
    if (r->n_headers == 2) {
        snprintf(s->hdr0, sizeof(s->hdr0), "%s=%.*s", r->headers[0].name,
                 (int)r->headers[0].len, (const char *)r->headers[0].value);
        s->hdr1_null = r->headers[1].value == NULL;
    }
    return 0;
}

static void append(dlqlocal_t *l, int64_t offset, const char *value)
{
    dlqlocal_hdr_t h[2] = { { "trace", "abc", 3 }, { "nothing", NULL, 0 } };
    dlqlocal_rec_t r = {
        .topic = "events", .partition = 3, .offset = offset, .timestamp = 1234,
        .key = offset % 2 ? "k" : NULL, .key_len = offset % 2 ? 1 : 0,
        .value = value, .value_len = value ? strlen(value) : 0,
        .headers = h, .n_headers = 2, .stage = "TASK_PUT",
        .class_name = "veclog.error.not_found", .message = "Collection `x` doesn't exist!",
    };
    err_t e;
    if (dlqlocal_append(l, &r, &e) != ERR_OK)
        fail_msg("append: %s", e.msg);
}

static char *write_three(const char *dir)
{
    dlqlocal_t *l;
    err_t e;

    assert_int_equal(dlqlocal_open(dir, &l, &e), ERR_OK);
    append(l, 10, "{\"a\":1}");
    append(l, 11, "");
    append(l, 12, "last");
    char *path = strdup(dlqlocal_path(l));
    dlqlocal_close(l);
    return path;
}

static off_t size_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static void test_round_trip_and_new_file_per_open(void **state)
{
    char *root = tu_tmpdir("dlqlocal"), dir[512];
    seen_t s = { 0 };
    size_t n;
    bool torn;
    err_t e;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/a/dlq", root);
    char *path = write_three(dir);
    assert_non_null(strstr(path, "/local-0.log"));
    assert_int_equal(dlqlocal_read(path, cb, &s, &n, &torn, &e), ERR_OK);
    assert_int_equal(n, 3);
    assert_false(torn);
    assert_int_equal(s.offsets[0], 10);
    assert_int_equal(s.offsets[2], 12);
    assert_string_equal(s.last_value, "last");
    assert_string_equal(s.last_topic, "events");
    assert_string_equal(s.last_msg, "TASK_PUT|veclog.error.not_found|Collection `x` doesn't exist!");
    assert_int_equal(s.n_headers, 2);
    assert_string_equal(s.hdr0, "trace=abc");
    assert_true(s.hdr1_null);
    assert_true(s.key_null);
    char *path2 = write_three(dir);
    assert_non_null(strstr(path2, "/local-1.log"));
    free(path2);
    free(path);
    tu_rmrf(root);
    free(root);
}

static void test_torn_tail(void **state)
{
    char *root = tu_tmpdir("dlqlocal");
    seen_t s = { 0 };
    size_t n;
    bool torn;
    err_t e;

    (void)state;
    char *path = write_three(root);
    assert_int_equal(truncate(path, size_of(path) - 3), 0);
    assert_int_equal(dlqlocal_read(path, cb, &s, &n, &torn, &e), ERR_OK);
    assert_int_equal(n, 2);
    assert_true(torn);
    assert_int_equal(s.offsets[1], 11);
    /* cut inside a length prefix */
    memset(&s, 0, sizeof(s));
    assert_int_equal(truncate(path, 8 + 2), 0);
    assert_int_equal(dlqlocal_read(path, cb, &s, &n, &torn, &e), ERR_OK);
    assert_int_equal(n, 0);
    assert_true(torn);
    free(path);
    tu_rmrf(root);
    free(root);
}

static void test_bad_crc_and_bad_magic(void **state)
{
    char *root = tu_tmpdir("dlqlocal");
    seen_t s = { 0 };
    size_t n;
    bool torn;
    err_t e;

    (void)state;
    char *path = write_three(root);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    off_t at = size_of(path) - 2; /* inside the last record's body */
    assert_int_equal(pwrite(fd, "X", 1, at), 1);
    assert_int_equal(dlqlocal_read(path, cb, &s, &n, &torn, &e), ERR_CORRUPT);
    assert_int_equal(n, 2);
    assert_non_null(strstr(e.msg, "bad CRC"));
    assert_int_equal(pwrite(fd, "Z", 1, 0), 1);
    assert_int_equal(dlqlocal_read(path, cb, &s, &n, &torn, &e), ERR_CORRUPT);
    assert_int_equal(n, 0);
    close(fd);
    free(path);
    tu_rmrf(root);
    free(root);
}

static void test_list_json(void **state)
{
    char *root = tu_tmpdir("dlqlocal"), missing[512];

    (void)state;
    char *p0 = write_three(root), *p1 = write_three(root);
    assert_int_equal(truncate(p1, size_of(p1) - 1), 0);
    cJSON *l = dlqlocal_list_json(root);
    assert_non_null(l);
    int records = 0, errors = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, l) {
        if (cJSON_GetObjectItem(it, "error") != NULL) {
            errors++;
            assert_string_equal(cJSON_GetObjectItem(it, "file")->valuestring, p1);
            continue;
        }
        records++;
        assert_string_equal(cJSON_GetObjectItem(it, "topic")->valuestring, "events");
        assert_string_equal(cJSON_GetObjectItem(it, "class_name")->valuestring,
                            "veclog.error.not_found");
    }
    assert_int_equal(records, 5);
    assert_int_equal(errors, 1);
    cJSON_Delete(l);
    snprintf(missing, sizeof(missing), "%s/none", root);
    l = dlqlocal_list_json(missing);
    assert_int_equal(cJSON_GetArraySize(l), 0);
    cJSON_Delete(l);
    free(p0);
    free(p1);
    tu_rmrf(root);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_new_file_per_open),
        cmocka_unit_test(test_torn_tail),
        cmocka_unit_test(test_bad_crc_and_bad_magic),
        cmocka_unit_test(test_list_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
