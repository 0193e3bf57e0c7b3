/* The store lane (src/daemon/store_lane.c) on a real memory store behind the fault wrapper:
 * writes run in order on the lane's thread; a completion proves a batch durable only when its
 * write, and every write the loop queued before it, succeeded; a failed write (also one whose
 * acknowledgement is lost after the commit) hands back no proof, and the batches queued before
 * the loop learned of it are not written at all; synchronous calls wait for what was queued
 * before them; the guard fences writes; stopping finishes what was queued. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/store_lane.h"

/* What a completion saw. */
typedef struct {
    int calls;
    uint64_t seq[16];
    int rc[16];
    bool durable[16];
    uint64_t proof[16];
    void *msgs[16];
} seen_t;

static void on_done(void *arg, const szd_sl_result *r, void *msgs)
{
    seen_t *s = arg;
    int i = s->calls++;
    assert_true(i < 16);
    s->seq[i] = r->seq;
    s->rc[i] = r->rc;
    s->durable[i] = r->durable != NULL;
    s->proof[i] = r->durable ? szd_sl_durable_seq(r->durable) : 0;
    s->msgs[i] = msgs;
}

/* Waits (at most 10 s) for completions and runs them until `want` were seen. */
static void wait_done(szd_sl *sl, seen_t *s, int want)
{
    for (int rounds = 0; s->calls < want && rounds < 1000; rounds++) {
        struct pollfd p = {szd_sl_done_fd(sl), POLLIN, 0};
        (void)poll(&p, 1, 10);
        szd_sl_dispatch(sl);
    }
    assert_int_equal(s->calls, want);
}

static szd_batch *one_put(const char *key, const char *value)
{
    szd_batch *b = szd_batch_new();
    assert_non_null(b);
    assert_int_equal(szd_batch_put(b, strdup(key), strdup(value)), 0);
    return b;
}

static bool has(shardz_store *st, const char *key)
{
    shardz_kv *kv = NULL;
    int rc = shardz_store_get(st, key, strlen(key), &kv, NULL);
    shardz_kv_free(kv);
    return rc == 0;
}

typedef struct {
    shardz_store *inner; /* the memory store */
    shardz_store *st;    /* the fault wrapper around it (owns inner) */
    szd_sl *sl;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(shardz_store_open_memory(NULL, &f->inner), 0);
    assert_int_equal(shardz_store_open_fault(f->inner, &f->st), 0);
    assert_int_equal(szd_sl_start(f->st, NULL, 0, &f->sl), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    szd_sl_stop(f->sl);
    shardz_store_close(f->st);
    free(f);
    return 0;
}

/* Reads run on the lane too (the loop never touches the handle once the lane runs). */
typedef struct {
    const char *key;
    bool found;
} probe;

static int run_probe(shardz_store *st, void *arg)
{
    probe *p = arg;
    p->found = has(st, p->key);
    return 0;
}

static bool lane_has(szd_sl *sl, const char *key)
{
    probe p = {key, false};
    assert_int_equal(szd_sl_call(sl, run_probe, &p), 0);
    return p.found;
}

static void test_in_order_with_proof(void **state)
{
    fixture *f = *state;
    seen_t s = {0};
    int m1, m2, m3;
    uint64_t a = szd_sl_submit(f->sl, one_put("a", "1"), &m1, on_done, &s);
    uint64_t b = szd_sl_submit(f->sl, NULL, &m2, on_done, &s); /* nothing to write */
    uint64_t c = szd_sl_submit(f->sl, one_put("c", "3"), &m3, on_done, &s);
    assert_true(a < b && b < c);
    wait_done(f->sl, &s, 3);
    const uint64_t want[] = {a, b, c};
    void *msgs[] = {&m1, &m2, &m3};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s.seq[i], want[i]);
        assert_int_equal(s.rc[i], 0);
        assert_true(s.durable[i]);
        assert_int_equal(s.proof[i], want[i]);
        assert_ptr_equal(s.msgs[i], msgs[i]);
    }
    assert_true(lane_has(f->sl, "a"));
    assert_true(lane_has(f->sl, "c"));
}

/* A failed write gives no proof; what the loop queued before it learned of the failure is not
 * written (SHARDZ_ESTALE: the loop writes those records again); what it queues afterwards is. */
static void test_failure_withholds_proof(void **state)
{
    fixture *f = *state;
    seen_t s = {0};
    shardz_store_fault fault = {.nth = 1, .err = SHARDZ_EIO};
    assert_int_equal(shardz_store_fault_arm(f->st, &fault), 0);
    szd_sl_submit(f->sl, one_put("x", "1"), NULL, on_done, &s);
    szd_sl_submit(f->sl, one_put("y", "2"), NULL, on_done, &s);
    wait_done(f->sl, &s, 2);
    assert_int_equal(s.rc[0], SHARDZ_EIO);
    assert_false(s.durable[0]);
    /* y was queued before the loop learned of x's failure: not written, no proof */
    assert_int_equal(s.rc[1], SHARDZ_ESTALE);
    assert_false(s.durable[1]);
    assert_false(lane_has(f->sl, "x"));
    assert_false(lane_has(f->sl, "y"));
    /* the loop has learned (the completions ran): the next batch is written and proven */
    szd_sl_submit(f->sl, one_put("z", "3"), NULL, on_done, &s);
    wait_done(f->sl, &s, 3);
    assert_int_equal(s.rc[2], 0);
    assert_true(s.durable[2]);
    assert_true(lane_has(f->sl, "z"));
}

/* An acknowledgement lost after the commit: the data is there, but no proof is given (the
 * pushes are dropped and built again: safe). */
static void test_lost_ack_gives_no_proof(void **state)
{
    fixture *f = *state;
    seen_t s = {0};
    shardz_store_fault fault = {.nth = 1, .err = SHARDZ_EIO, .after = true};
    assert_int_equal(shardz_store_fault_arm(f->st, &fault), 0);
    szd_sl_submit(f->sl, one_put("k", "v"), NULL, on_done, &s);
    wait_done(f->sl, &s, 1);
    assert_int_equal(s.rc[0], SHARDZ_EIO);
    assert_false(s.durable[0]);
    assert_true(lane_has(f->sl, "k"));
}

/* A synchronous write waits for the batches queued before it. */
static void test_sync_after_async(void **state)
{
    fixture *f = *state;
    seen_t s = {0};
    szd_sl_submit(f->sl, one_put("first", "1"), NULL, on_done, &s);
    szd_batch *b = one_put("second", "2");
    char err[64];
    int64_t rev = 0;
    assert_int_equal(szd_sl_write(f->sl, b, err, sizeof err, &rev), 0);
    szd_batch_free(b);
    assert_true(rev >= 2); /* after both commits */
    assert_true(lane_has(f->sl, "first"));
    assert_true(lane_has(f->sl, "second"));
    shardz_store_status st;
    szd_sl_status(f->sl, &st);
    assert_int_equal(st.revision, rev);
    wait_done(f->sl, &s, 1);
    assert_true(s.durable[0]);
}

/* The guard fences every later write: SHARDZ_ENOTLEADER, no proof. */
static void test_guard(void **state)
{
    fixture *f = *state;
    seen_t s = {0};
    shardz_compare g = {SHARDZ_CMP_EXISTS, "leader", 6, 0, NULL, 0};
    assert_int_equal(szd_sl_set_guard(f->sl, &g), 0);
    szd_sl_submit(f->sl, one_put("fenced", "1"), NULL, on_done, &s);
    wait_done(f->sl, &s, 1);
    assert_int_equal(s.rc[0], SHARDZ_ENOTLEADER);
    assert_false(s.durable[0]);
    assert_int_equal(szd_sl_set_guard(f->sl, NULL), 0);
    szd_sl_submit(f->sl, one_put("free", "1"), NULL, on_done, &s);
    wait_done(f->sl, &s, 2);
    assert_true(s.durable[1]);
}

/* Stopping finishes the writes queued and runs their completions. */
static void test_stop_finishes(void **state)
{
    (void)state;
    shardz_store *st;
    szd_sl *sl;
    assert_int_equal(shardz_store_open_memory(NULL, &st), 0);
    assert_int_equal(szd_sl_start(st, NULL, 0, &sl), 0);
    seen_t s = {0};
    for (int i = 0; i < 5; i++) {
        char key[8];
        snprintf(key, sizeof key, "k%d", i);
        szd_sl_submit(sl, one_put(key, "v"), NULL, on_done, &s);
    }
    szd_sl_stop(sl);
    assert_int_equal(s.calls, 5);
    for (int i = 0; i < 5; i++) {
        assert_true(s.durable[i]);
    }
    assert_true(has(st, "k4"));
    shardz_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_order_with_proof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_withholds_proof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_ack_gives_no_proof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync_after_async, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guard, setup, teardown),
        cmocka_unit_test(test_stop_finishes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
