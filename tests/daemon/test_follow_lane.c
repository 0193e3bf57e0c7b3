/* The follow lane (src/daemon/follow_lane.c) on a real SQLite store, written through a second
 * handle as a leader would: following hands over every change once, in order; a full read comes
 * as one item at the store's revision and the lane follows from it; a new request drops what
 * the old one queued (also a delivery waiting for room in a full queue); a compacted start and
 * a broken stream come back as errors. Waits are on the lane's fd with a deadline. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/follow_lane.h"

typedef struct {
    char dir[64];
    shardz_store *w; /* the writer's handle */
    szd_fl *fl;
} fixture;

static int read_everything(shardz_store *st, shardz_range ***pages)
{
    shardz_range **p = calloc(2, sizeof *p);
    if (!p) {
        return SHARDZ_ENOMEM;
    }
    int rc = shardz_store_range(st, NULL, 0, NULL, 0, 0, &p[0]);
    if (rc) {
        free(p);
        return rc;
    }
    *pages = p;
    return 0;
}

static void free_everything(shardz_range **pages)
{
    for (size_t i = 0; pages && pages[i]; i++) {
        shardz_range_free(pages[i]);
    }
    free(pages);
}

static void start(fixture *f, size_t limit, size_t max_bytes)
{
    shardz_store *lane = NULL;
    snprintf(f->dir, sizeof f->dir, "/tmp/shardz-fl-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    shardz_store_options so = {.sync = SHARDZ_STORE_SYNC_NORMAL};
    assert_int_equal(shardz_store_open_sqlite(f->dir, &so, &f->w), 0);
    assert_int_equal(shardz_store_open_sqlite(f->dir, &so, &lane), 0);
    assert_int_equal(szd_fl_start(lane, read_everything, free_everything, limit, max_bytes, &f->fl),
                     0);
}

static void finish(fixture *f)
{
    szd_fl_stop(f->fl);
    shardz_store_close(f->w);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
}

static void put(fixture *f, int i)
{
    char key[32], value[32];
    snprintf(key, sizeof key, "k%03d", i);
    snprintf(value, sizeof value, "v%d", i);
    assert_int_equal(shardz_store_put(f->w, key, strlen(key), value, strlen(value), NULL), 0);
}

/* The next item, waiting on the lane's fd for at most 10 s. */
static void take(fixture *f, szd_fl_item *it)
{
    for (int rounds = 0; rounds < 1000; rounds++) {
        if (szd_fl_take(f->fl, it)) {
            return;
        }
        struct pollfd p = {szd_fl_fd(f->fl), POLLIN, 0};
        (void)poll(&p, 1, 10);
    }
    fail_msg("no item from the follow lane within 10 s");
}

static void test_follows_in_order(void **state)
{
    (void)state;
    fixture f;
    start(&f, 4, 1 << 20);
    for (int i = 1; i <= 10; i++) {
        put(&f, i);
    }
    szd_fl_follow(f.fl, 0);
    int64_t next = 1, rev = 0;
    while (rev < 15) {
        szd_fl_item it;
        take(&f, &it);
        assert_int_equal(it.kind, SZD_FL_CHANGES);
        for (size_t i = 0; i < it.changes->count; i++) {
            assert_int_equal(it.changes->events[i].kv.mod_revision, next);
            next++;
        }
        assert_true(it.changes->revision > rev);
        rev = it.changes->revision;
        shardz_changes_free(it.changes);
        if (rev == 10) { /* what is written while it follows comes too */
            for (int i = 11; i <= 15; i++) {
                put(&f, i);
            }
        }
    }
    assert_int_equal(next, 16);
    finish(&f);
}

static void test_load_then_follow(void **state)
{
    (void)state;
    fixture f;
    start(&f, 256, 1 << 20);
    for (int i = 1; i <= 7; i++) {
        put(&f, i);
    }
    szd_fl_load(f.fl);
    szd_fl_item it;
    take(&f, &it);
    assert_int_equal(it.kind, SZD_FL_PAGES);
    assert_int_equal(it.revision, 7);
    assert_int_equal(it.pages[0]->count, 7);
    free_everything(it.pages);
    put(&f, 8);
    take(&f, &it);
    assert_int_equal(it.kind, SZD_FL_CHANGES);
    assert_int_equal(it.changes->count, 1);
    assert_int_equal(it.changes->events[0].kv.mod_revision, 8);
    shardz_changes_free(it.changes);
    finish(&f);
}

/* A queue of one byte: the first item waits to be taken and the stream waits behind it. A new
 * request drops both: what comes next starts where the new request says. */
static void test_request_drops_the_old(void **state)
{
    (void)state;
    fixture f;
    start(&f, 1, 1);
    for (int i = 1; i <= 20; i++) {
        put(&f, i);
    }
    szd_fl_follow(f.fl, 0);
    /* the first item is queued (seen through the fd), the stream then waits for room */
    struct pollfd p = {szd_fl_fd(f.fl), POLLIN, 0};
    assert_int_equal(poll(&p, 1, 10000), 1);
    assert_true(szd_fl_queued_bytes(f.fl) > 0);
    szd_fl_follow(f.fl, 15);
    szd_fl_item it;
    take(&f, &it);
    assert_int_equal(it.kind, SZD_FL_CHANGES);
    assert_int_equal(it.changes->events[0].kv.mod_revision, 16);
    shardz_changes_free(it.changes);
    finish(&f);
}

static void test_errors(void **state)
{
    (void)state;
    fixture f;
    start(&f, 256, 1 << 20);
    for (int i = 1; i <= 10; i++) {
        put(&f, i);
    }
    assert_int_equal(shardz_store_compact(f.w, 6), 0);
    szd_fl_follow(f.fl, 2);
    szd_fl_item it;
    take(&f, &it);
    assert_int_equal(it.kind, SZD_FL_ERROR);
    assert_int_equal(it.rc, SHARDZ_STORE_ECOMPACTED);
    assert_true(it.err[0] != '\0');
    /* the lane idles after an error: asked again, it follows from where it is told */
    szd_fl_follow(f.fl, 8);
    take(&f, &it);
    assert_int_equal(it.kind, SZD_FL_CHANGES);
    assert_int_equal(it.changes->events[0].kv.mod_revision, 9);
    shardz_changes_free(it.changes);
    finish(&f);
}

/* A stream broken (the test hook, set before the lane's thread reads it) is an error. */
static void test_stream_broken(void **state)
{
    (void)state;
    char hook[] = "/tmp/shardz-fl-hook-XXXXXX";
    int fd = mkstemp(hook);
    assert_true(fd >= 0);
    close(fd);
    setenv("SHARDZ_TEST_CHANGES_FAIL", hook, 1);
    fixture f;
    start(&f, 256, 1 << 20);
    put(&f, 1);
    szd_fl_follow(f.fl, 0);
    szd_fl_item it;
    take(&f, &it);
    assert_int_equal(it.kind, SZD_FL_ERROR);
    assert_int_equal(it.rc, SHARDZ_EIO);
    finish(&f);
    unsetenv("SHARDZ_TEST_CHANGES_FAIL");
    unlink(hook);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follows_in_order),      cmocka_unit_test(test_load_then_follow),
        cmocka_unit_test(test_request_drops_the_old), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_stream_broken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
