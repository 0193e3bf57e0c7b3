/* Tests for the worker's graceful leave (released, timeout, node unknown to the coordinator)
 * and the strict-mode lease on an injected clock: deletes everything once lease_ms (less the
 * safety margin) passes without contact, never in available mode, pings renew it, and the
 * coordinator's re-sent assignment is served again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shardz/error.h"
#include "worker_env.h"

static bool leave_seen(void *arg)
{
    fake_coord *f = arg;
    bool ok;

    fake_lock(f);
    ok = fake_rec(f)->leaves >= 1;
    fake_unlock(f);
    return ok;
}

/* Plays the coordinator during a drain: once the leave arrived, moves p1 away, then
 * releases. */
static void *drainer(void *arg)
{
    env *e = arg;
    json_t *r;

    assert_true(wait_until(leave_seen, e->f, 5000));
    tc_sleep_ms(50);
    assert_int_equal(assign(e, 6, "", &r), 200);
    json_decref(r);
    assert_int_equal(post(e, "/shardz/v1/assign",
                          "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":7,\"lease_ms\":1000,"
                          "\"released\":true,\"replicas\":[]}",
                          &r),
                     200);
    assert_int_equal(jint(r, "applied_revision"), 7);
    json_decref(r);
    return NULL;
}

static void test_leave_released(void **state)
{
    fake_opts fo = {.ns = "kv"};
    env e;
    json_t *r;
    pthread_t t;
    shardz_worker_status st;

    (void)state;
    env_start(&e, &fo, NULL);
    assert_int_equal(assign(&e, 5, P1, &r), 200);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0"}, 1);
    pthread_create(&t, NULL, drainer, &e);
    assert_int_equal(shardz_worker_leave(e.w, 5000), 0);
    pthread_join(t, NULL);
    rec_expect((const char *[]){"delete p1 g4 primary upd0 old0 cause0"}, 1);
    fake_lock(e.f);
    assert_int_equal(fake_rec(e.f)->leaves, 1);
    assert_string_equal(fake_rec(e.f)->last_leave_path, "/v1/namespaces/kv/nodes/w1/leave");
    fake_unlock(e.f);
    shardz_worker_status_get(e.w, &st);
    assert_true(st.leaving);
    assert_true(st.released);
    assert_int_equal(st.serving, 0);
    /* Still answering pings until stopped; a second leave returns at once. */
    assert_int_equal(ping(&e, 7, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 7);
    json_decref(r);
    assert_int_equal(shardz_worker_leave(e.w, 0), 0);
    env_stop(&e);
}

static void test_leave_timeout(void **state)
{
    fake_opts fo = {.ns = "kv"};
    env e;
    uint64_t t0;

    (void)state;
    env_start(&e, &fo, NULL);
    t0 = tc_now_ms();
    assert_int_equal(shardz_worker_leave(e.w, 300), SHARDZ_ETIMEDOUT);
    assert_true(tc_now_ms() - t0 >= 290);
    fake_lock(e.f);
    assert_int_equal(fake_rec(e.f)->leaves, 1);
    fake_unlock(e.f);
    env_stop(&e);
}

static void test_leave_unknown_node(void **state)
{
    fake_opts fo = {.ns = "kv", .leave_status = 404};
    env e;
    json_t *r;

    (void)state;
    env_start(&e, &fo, NULL);
    assert_int_equal(assign(&e, 5, P1, &r), 200);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0"}, 1);
    /* The coordinator does not know the node: nothing routes here, drop and release. */
    assert_int_equal(shardz_worker_leave(e.w, 3000), 0);
    rec_expect((const char *[]){"delete p1 g4 primary upd0 old0 cause2"}, 1);
    env_stop(&e);
}

static bool one_delete(void *arg)
{
    (void)arg;
    return rec_deletes() >= 1;
}

static bool two_deletes(void *arg)
{
    (void)arg;
    return rec_deletes() >= 2;
}

/* Nothing dropped so far: the timer has not seen a lapse (none flagged, none done) and no
 * hook ran. With lease_lapsed false and no expiry counted, no drop is queued either. */
static void assert_nothing_dropped(env *e)
{
    shardz_worker_status st;

    assert_true(shardz_worker_lease_ok(e->w));
    shardz_worker_status_get(e->w, &st);
    assert_int_equal(st.lease_expiries, 0);
    assert_int_equal(rec_deletes(), 0);
}

static void test_lease_strict(void **state)
{
    fake_opts fo = {.ns = "kv", .consistency = "strict", .lease_ms = 1000};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r;
    shardz_worker_status st;
    char s[128];

    (void)state;
    atomic_store(&test_now, 1000000);
    c.clock_ms = test_clock;
    env_start(&e, &fo, &c);
    assert_int_equal(assign(&e, 5, P1 "," P7, &r), 200);
    json_decref(r);
    assert_int_equal(rec_count(), 2);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0",
                                "serve p7 g9 secondary upd0 old0 cause0"},
               2);

    /* 800 ms: inside the lease (the margin is 2 * 25 + 1000 / 10 = 150 ms). The timer runs on
     * the moved clock and drops nothing. */
    atomic_fetch_add(&test_now, 800);
    assert_true(wait_lease_check(e.w, 5000));
    assert_nothing_dropped(&e);
    /* A ping renews it: 800 ms more is still fine. */
    assert_int_equal(ping(&e, 5, &r), 200);
    json_decref(r);
    atomic_fetch_add(&test_now, 800);
    assert_true(wait_lease_check(e.w, 5000));
    assert_nothing_dropped(&e);

    /* 900 ms after the last ping: past lease - margin, everything is deleted (the positive case
     * of the two checks above: the same timer on the same clock does see a lapse). */
    atomic_fetch_add(&test_now, 100);
    assert_true(wait_until(two_deletes, NULL, 2000));
    rec_expect((const char *[]){"delete p1 g4 primary upd0 old0 cause1",
                                "delete p7 g9 secondary upd0 old0 cause1"},
               2);
    shardz_worker_status_get(e.w, &st);
    assert_true(st.lease_enforced);
    assert_int_equal(st.lease_expiries, 1);
    assert_int_equal(st.serving, 0);
    /* The next ping reports nothing applied, so the coordinator re-sends the assignment... */
    assert_int_equal(ping(&e, 5, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 0);
    json_decref(r);
    /* ...which is served again (same revision: not stale). */
    assert_int_equal(assign(&e, 5, P1 "," P7, &r), 200);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:4 p7:9");
    assert_int_equal(jint(r, "applied_revision"), 5);
    json_decref(r);
    assert_int_equal(rec_count(), 2);
    env_stop(&e);
}

static void test_lease_available_never_expires(void **state)
{
    fake_opts fo = {.ns = "kv", .consistency = "available"};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r;
    shardz_worker_status st;

    (void)state;
    atomic_store(&test_now, 5000);
    c.clock_ms = test_clock;
    env_start(&e, &fo, &c);
    assert_int_equal(assign(&e, 5, P1, &r), 200);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0"}, 1);
    atomic_fetch_add(&test_now, 100000);
    assert_true(wait_lease_check(e.w, 5000)); /* the timer ran 100 s past the lease */
    assert_int_equal(rec_deletes(), 0);
    shardz_worker_status_get(e.w, &st);
    assert_false(st.lease_enforced);
    assert_int_equal(st.lease_expiries, 0);
    assert_int_equal(st.serving, 1);
    /* The positive case: a delete is seen when one happens (the coordinator moves p1 away). */
    assert_int_equal(assign(&e, 6, "", &r), 200);
    json_decref(r);
    assert_true(wait_until(one_delete, NULL, 2000));
    rec_expect((const char *[]){"delete p1 g4 primary upd0 old0 cause0"}, 1);
    env_stop(&e);
}

static void test_lease_forced_on(void **state)
{
    fake_opts fo = {.ns = "kv", .consistency = "available"};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r;

    (void)state;
    atomic_store(&test_now, 5000);
    c.clock_ms = test_clock;
    c.lease_mode = SHARDZ_LEASE_ON;
    c.lease_margin_ms = 10;
    env_start(&e, &fo, &c);
    assert_int_equal(assign(&e, 5, P1, &r), 200);
    json_decref(r);
    atomic_fetch_add(&test_now, 980); /* the lease less the 10 ms margin is 990 ms */
    assert_true(wait_lease_check(e.w, 5000));
    assert_nothing_dropped(&e);
    atomic_fetch_add(&test_now, 20);
    assert_true(wait_until(one_delete, NULL, 2000));
    env_stop(&e);
}

/* A message that arrives after a pause longer than the lease (socket events run before the
 * timer) must not renew it: the drop happens first. The timer is kept out of the way. */
static void test_lease_lapse_seen_on_contact(void **state)
{
    fake_opts fo = {.ns = "kv", .consistency = "strict", .lease_ms = 1000};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r;

    (void)state;
    atomic_store(&test_now, 1000);
    c.clock_ms = test_clock;
    c.lease_check_ms = 60000;
    env_start(&e, &fo, &c);
    assert_int_equal(assign(&e, 5, P1 "," P7, &r), 200);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0",
                                "serve p7 g9 secondary upd0 old0 cause0"},
               2);
    assert_true(shardz_worker_lease_ok(e.w));
    atomic_fetch_add(&test_now, 2000); /* "paused" */
    assert_false(shardz_worker_lease_ok(e.w));
    assert_int_equal(ping(&e, 5, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 0);
    json_decref(r);
    assert_true(wait_until(two_deletes, NULL, 2000));
    rec_expect((const char *[]){"delete p1 g4 primary upd0 old0 cause1",
                                "delete p7 g9 secondary upd0 old0 cause1"},
               2);
    assert_true(shardz_worker_lease_ok(e.w)); /* nothing held, contact renewed */
    assert_int_equal(assign(&e, 5, P1, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 5);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0"}, 1);
    env_stop(&e);
}

typedef struct {
    env *e;
    long long rev;
    const char *reps;
    json_t *reply;
} assign_arg;

static void *assign_thread(void *arg)
{
    assign_arg *a = arg;

    assert_int_equal(assign(a->e, a->rev, a->reps, &a->reply), 200);
    return NULL;
}

/* An assignment queued while the lease lapses is not applied; the drop follows. */
static void test_lease_lapse_skips_queued(void **state)
{
    fake_opts fo = {.ns = "kv", .consistency = "strict", .lease_ms = 1000};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r;
    pthread_t t1;
    pthread_t t2;
    assign_arg a1;
    assign_arg a2;
    char s[64];

    (void)state;
    atomic_store(&test_now, 1000);
    c.clock_ms = test_clock;
    c.lease_check_ms = 60000;
    env_start(&e, &fo, &c);
    rec_gate_close();
    a1 = (assign_arg){&e, 5, P1, NULL};
    a2 = (assign_arg){&e, 6, P1 "," P7, NULL};
    pthread_create(&t1, NULL, assign_thread, &a1);
    assert_true(rec_wait_entered(1, 5000)); /* p1's serve hook is running (held at the gate) */
    pthread_create(&t2, NULL, assign_thread, &a2);
    assert_true(wait_queued(e.w, 1, 5000)); /* revision 6 waits in the queue */
    atomic_fetch_add(&test_now, 2000);
    assert_int_equal(ping(&e, 6, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 0);
    json_decref(r);
    rec_gate_open();
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(jint(a1.reply, "applied_revision"), 0);
    assert_int_equal(jint(a2.reply, "applied_revision"), 0);
    serving_str(a2.reply, s, sizeof s);
    assert_string_equal(s, "");
    json_decref(a1.reply);
    json_decref(a2.reply);
    assert_true(wait_until(one_delete, NULL, 2000));
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0",
                                "delete p1 g4 primary upd0 old0 cause1"},
               2);
    env_stop(&e);
}

/* An assignment with lease_stamp s (this worker's clock echoed, PROTOCOL.md 6) at now. */
static long assign_stamped(env *e, long long rev, long long stamp, const char *replicas,
                           json_t **reply)
{
    char body[4096];

    snprintf(body, sizeof body,
             "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":%lld,\"lease_ms\":1000,"
             "\"lease_stamp\":%lld,\"released\":false,\"replicas\":[%s]}",
             rev, stamp, replicas);
    return post(e, "/shardz/v1/assign", body, reply);
}

static long ping_stamped(env *e, long long rev, long long stamp, json_t **reply)
{
    char body[256];

    snprintf(body, sizeof body,
             "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":%lld,\"lease_ms\":1000,"
             "\"lease_stamp\":%lld}",
             rev, stamp);
    return post(e, "/shardz/v1/ping", body, reply);
}

/* Stamps (PROTOCOL.md 4.1, 6): the registration and every reply carry this worker's clock; a
 * grant runs from the lease_stamp it echoes, not from its receipt, so a message delivered
 * after its grant ran out renews nothing and its assignment is not applied (a late push
 * cannot resurrect a lease), and an older stamp never shortens the lease. */
static void test_lease_stamps(void **state)
{
    fake_opts fo = {.ns = "kv", .consistency = "strict", .lease_ms = 1000};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r;
    json_t *reg;
    shardz_worker_status st;
    const long long t0 = 1000000;

    (void)state;
    atomic_store(&test_now, (uint64_t)t0);
    c.clock_ms = test_clock;
    env_start(&e, &fo, &c);
    fake_lock(e.f);
    reg = json_loads(fake_rec(e.f)->last_register, 0, NULL);
    fake_unlock(e.f);
    assert_non_null(reg);
    assert_int_equal(jint(reg, "stamp"), t0);
    json_decref(reg);
    assert_int_equal(ping_stamped(&e, 5, t0 - 900, &r), 200); /* late: grants nothing */
    assert_int_equal(jint(r, "stamp"), t0);
    json_decref(r);

    /* Late: granted from t0 - 900, past the effective lease of 850 ms. Not applied, nothing
     * served, and the lease is not renewed by it (nothing held, so lease_ok stays as it was). */
    assert_int_equal(assign_stamped(&e, 5, t0 - 900, P1, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 0);
    assert_int_equal(jint(r, "stamp"), t0);
    json_decref(r);
    assert_int_equal(rec_count(), 0);

    /* In time: granted from t0 - 100, so it lasts until t0 + 750 on this clock. */
    assert_int_equal(assign_stamped(&e, 5, t0 - 100, P1, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 5);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0"}, 1);
    /* An older stamp does not shorten it. */
    assert_int_equal(ping_stamped(&e, 5, t0 - 500, &r), 200);
    json_decref(r);
    atomic_store(&test_now, (uint64_t)t0 + 740);
    assert_true(wait_lease_check(e.w, 5000));
    assert_nothing_dropped(&e);
    assert_true(shardz_worker_lease_ok(e.w));
    /* 10 ms later the grant of t0 - 100 has run out (received at t0, it would still last
     * 100 ms: the stamp, not the receipt, counts). */
    atomic_store(&test_now, (uint64_t)t0 + 750);
    assert_true(wait_until(one_delete, NULL, 2000));
    rec_expect((const char *[]){"delete p1 g4 primary upd0 old0 cause1"}, 1);
    shardz_worker_status_get(e.w, &st);
    assert_int_equal(st.lease_expiries, 1);
    assert_false(shardz_worker_lease_ok(e.w));
    /* A ping whose grant ran out does not restore it either; a fresh one does. */
    assert_int_equal(ping_stamped(&e, 5, t0 - 100, &r), 200);
    json_decref(r);
    assert_false(shardz_worker_lease_ok(e.w));
    assert_int_equal(ping_stamped(&e, 5, t0 + 700, &r), 200);
    assert_int_equal(jint(r, "stamp"), t0 + 750);
    json_decref(r);
    assert_true(shardz_worker_lease_ok(e.w));
    env_stop(&e);
}

/* Terms (PROTOCOL.md 4.2): a message of an older term than one seen comes from a deposed
 * coordinator: refused with 409 ESTALE naming the term seen, it renews no lease and changes
 * nothing; one without a term (an older coordinator) is taken as before. */
static void test_terms(void **state)
{
    fake_opts fo = {.ns = "kv", .consistency = "strict", .lease_ms = 1000};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r;
    json_t *reg;
    char s[64];

    (void)state;
    atomic_store(&test_now, 1000000);
    c.clock_ms = test_clock;
    c.lease_check_ms = 60000; /* lease_ok and the messages notice a lapse */
    env_start(&e, &fo, &c);
    fake_lock(e.f);
    reg = json_loads(fake_rec(e.f)->last_register, 0, NULL);
    fake_unlock(e.f);
    assert_non_null(reg);
    assert_string_equal(json_string_value(json_array_get(json_object_get(reg, "features"), 1)),
                        "term");
    json_decref(reg);
    assert_int_equal(post(&e, "/shardz/v1/assign",
                          "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":5,\"term\":7,"
                          "\"lease_ms\":1000,\"replicas\":[" P1 "]}",
                          &r),
                     200);
    assert_int_equal(jint(r, "applied_revision"), 5);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0"}, 1);
    /* the deposed leader (term 6): an assignment and a ping, both refused */
    assert_int_equal(post(&e, "/shardz/v1/assign",
                          "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":9,\"term\":6,"
                          "\"lease_ms\":1000,\"replicas\":[" P7 "]}",
                          &r),
                     409);
    assert_string_equal(json_string_value(json_object_get(r, "code")), "ESTALE");
    assert_int_equal(jint(r, "term"), 7);
    json_decref(r);
    atomic_fetch_add(&test_now, 800);
    assert_int_equal(post(&e, "/shardz/v1/ping",
                          "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":9,\"term\":6,"
                          "\"lease_ms\":1000}",
                          &r),
                     409);
    json_decref(r);
    assert_int_equal(rec_count(), 0);
    /* it renewed nothing: 60 ms later (850 ms after the grant) the lease has run out */
    atomic_fetch_add(&test_now, 60);
    assert_false(shardz_worker_lease_ok(e.w));
    /* the current leader's ping, and one without a term, are answered */
    assert_int_equal(post(&e, "/shardz/v1/ping",
                          "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":9,\"term\":7,"
                          "\"lease_ms\":1000}",
                          &r),
                     200);
    json_decref(r);
    assert_true(wait_until(one_delete, NULL, 2000)); /* the lapse's drop */
    rec_reset();
    assert_int_equal(assign(&e, 10, P7, &r), 200);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p7:9");
    json_decref(r);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leave_released),
        cmocka_unit_test(test_leave_timeout),
        cmocka_unit_test(test_leave_unknown_node),
        cmocka_unit_test(test_lease_strict),
        cmocka_unit_test(test_lease_available_never_expires),
        cmocka_unit_test(test_lease_forced_on),
        cmocka_unit_test(test_lease_lapse_seen_on_contact),
        cmocka_unit_test(test_lease_lapse_skips_queued),
        cmocka_unit_test(test_lease_stamps),
        cmocka_unit_test(test_terms),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
