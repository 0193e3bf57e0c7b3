/* Tests for the worker (src/lib/worker.c) against an in-process fake coordinator: registration
 * (fields, retries, re-registration), ping replies with load, assignment diffing (serve /
 * delete exactly as expected, stale revisions ignored, hook failures reported), leave and
 * release, the strict-mode lease on an injected clock, the no-listener handle mode, and bad
 * input answered 4xx with a JSON error and no hook called. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "shardz/error.h"
#include "worker_env.h"

/* ---- tests ------------------------------------------------------------------------------ */

static void test_register(void **state)
{
    fake_opts fo = {.ns = "kv", .consistency = "strict", .lease_ms = 1500};
    env e;
    json_t *body;
    shardz_worker_status st;
    char want_addr[64];

    (void)state;
    env_start(&e, &fo, NULL);
    fake_lock(e.f);
    body = json_loads(fake_rec(e.f)->last_register, 0, NULL);
    assert_int_equal(fake_rec(e.f)->registrations, 1);
    assert_int_equal(fake_rec(e.f)->ns_reads, 1); /* consistency read from the namespace */
    fake_unlock(e.f);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "id")), "w1");
    assert_string_equal(json_string_value(json_object_get(body, "zone")), "a");
    shardz_worker_status_get(e.w, &st);
    snprintf(want_addr, sizeof want_addr, "127.0.0.1:%u", (unsigned)st.port);
    assert_true(st.port != 0);
    assert_string_equal(json_string_value(json_object_get(body, "address")), want_addr);
    assert_string_equal(e.addr, want_addr);
    assert_true(json_real_value(json_object_get(json_object_get(body, "capacity"), "cpu")) == 8);
    assert_true(json_real_value(json_object_get(json_object_get(body, "capacity"), "mem")) == 2.5);
    json_decref(body);
    assert_true(st.registered);
    assert_true(st.lease_enforced);
    assert_int_equal(st.lease_ms, 1500);
    assert_int_equal(st.ping_interval_ms, 200);
    assert_int_equal(st.registrations, 1);
    env_stop(&e);
}

static void test_register_retries(void **state)
{
    fake_opts fo = {.ns = "kv", .register_fail = 3};
    env e;

    (void)state;
    env_start(&e, &fo, NULL);
    fake_lock(e.f);
    assert_int_equal(fake_rec(e.f)->register_attempts, 4);
    assert_int_equal(fake_rec(e.f)->registrations, 1);
    fake_unlock(e.f);
    env_stop(&e);
}

/* Several coordinators: a refused connection and a follower without a leader (503 ENOTLEADER)
 * are skipped; the worker registers with the one that leads, and stays with it. */
static void test_several_coordinators(void **state)
{
    fake_opts fa = {.ns = "kv", .register_fail = 1000}; /* a follower with no leader */
    fake_opts fb = {.ns = "kv"};
    fake_coord *a, *b;
    shardz_worker_config c;
    shardz_worker *w = NULL;
    char list[128];

    (void)state;
    rec_reset();
    a = fake_start(&fa);
    b = fake_start(&fb);
    c = base_config(b);
    /* port 1 on loopback refuses the connection */
    snprintf(list, sizeof list, "127.0.0.1:1,%s,%s", fake_addr(a), fake_addr(b));
    c.coordinator = list;
    assert_int_equal(shardz_worker_create(&c, &w), 0);
    assert_int_equal(shardz_worker_start(w), 0);
    assert_int_equal(shardz_worker_wait_registered(w, 5000), 0);
    fake_lock(a);
    assert_int_equal(fake_rec(a)->registrations, 0);
    assert_true(fake_rec(a)->register_attempts >= 1);
    fake_unlock(a);
    fake_lock(b);
    assert_int_equal(fake_rec(b)->registrations, 1);
    fake_unlock(b);
    shardz_worker_destroy(w);
    /* a bad list is refused at create */
    c.coordinator = "127.0.0.1:1,,127.0.0.1:2";
    assert_int_equal(shardz_worker_create(&c, &w), SHARDZ_EINVAL);
    c.coordinator = "127.0.0.1:1,nohost";
    assert_int_equal(shardz_worker_create(&c, &w), SHARDZ_EINVAL);
    fake_stop(a);
    fake_stop(b);
}

static bool two_registrations(void *arg)
{
    fake_coord *f = arg;
    bool ok;

    fake_lock(f);
    ok = fake_rec(f)->registrations >= 2;
    fake_unlock(f);
    return ok;
}

static void test_reregister_without_pings(void **state)
{
    fake_opts fo = {.ns = "kv"};
    shardz_worker_config c = base_config(NULL);
    env e;

    (void)state;
    c.reregister_after_ms = 150; /* real clock: no pings come */
    env_start(&e, &fo, &c);
    assert_true(wait_until(two_registrations, e.f, 3000));
    env_stop(&e);
}

static void test_ping_with_load(void **state)
{
    fake_opts fo = {.ns = "kv"};
    env e;
    json_t *r;
    json_t *load;

    (void)state;
    env_start(&e, &fo, NULL);
    assert_int_equal(ping(&e, 3, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r, "node")), "w1");
    assert_int_equal(jint(r, "applied_revision"), 0);
    assert_null(json_object_get(r, "load"));
    json_decref(r);

    assert_int_equal(assign(&e, 12, P1 "," P7, &r), 200);
    json_decref(r);
    assert_int_equal(shardz_worker_report_load(e.w, "p1", "cpu", 0.25), 0);
    assert_int_equal(shardz_worker_report_load(e.w, "p7", "cpu", 1.0), 0);
    assert_int_equal(shardz_worker_report_load(e.w, "p7", "cpu", 1.5), 0); /* latest wins */
    assert_int_equal(shardz_worker_report_load(e.w, "p7", "mem", 3), 0);
    assert_int_equal(shardz_worker_report_load(e.w, "p9", "cpu", 1), SHARDZ_ENOENT);
    assert_int_equal(shardz_worker_report_load(e.w, "p1", "cpu", -1), SHARDZ_EINVAL);
    assert_int_equal(shardz_worker_report_load(e.w, "p1", "bad name", 1), SHARDZ_EINVAL);

    assert_int_equal(ping(&e, 12, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 12);
    load = json_object_get(r, "load");
    assert_non_null(load);
    assert_int_equal(json_object_size(load), 2);
    assert_true(json_real_value(json_object_get(json_object_get(load, "p1"), "cpu")) == 0.25);
    assert_true(json_real_value(json_object_get(json_object_get(load, "p7"), "cpu")) == 1.5);
    assert_true(json_real_value(json_object_get(json_object_get(load, "p7"), "mem")) == 3);
    assert_null(json_object_get(json_object_get(load, "p1"), "mem"));
    json_decref(r);
    /* Samples go out once. */
    assert_int_equal(ping(&e, 12, &r), 200);
    assert_null(json_object_get(r, "load"));
    assert_null(json_object_get(r, "split_at"));
    json_decref(r);
    /* Split keys (range namespaces): the latest per partition, once, in "split_at". */
    assert_int_equal(shardz_worker_report_split_key(e.w, "p1", "k1"), 0);
    assert_int_equal(shardz_worker_report_split_key(e.w, "p1", "k2"), 0);
    assert_int_equal(shardz_worker_report_split_key(e.w, "p9", "k"), SHARDZ_ENOENT);
    assert_int_equal(shardz_worker_report_split_key(e.w, "p1", ""), SHARDZ_EINVAL);
    assert_int_equal(shardz_worker_report_split_key(e.w, "p1", NULL), SHARDZ_EINVAL);
    assert_int_equal(ping(&e, 12, &r), 200);
    assert_int_equal(json_object_size(json_object_get(r, "split_at")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "split_at"), "p1")),
                        "k2");
    json_decref(r);
    assert_int_equal(ping(&e, 12, &r), 200);
    assert_null(json_object_get(r, "split_at"));
    json_decref(r);
    /* Dimension names are bounded. */
    for (int i = 0; i < 6; i++) {
        char d[8];
        snprintf(d, sizeof d, "d%d", i);
        assert_int_equal(shardz_worker_report_load(e.w, "p1", d, 1), 0);
    }
    assert_int_equal(shardz_worker_report_load(e.w, "p1", "one-too-many", 1), SHARDZ_ENOSPC);
    env_stop(&e);
}

static void test_assign_diff(void **state)
{
    fake_opts fo = {.ns = "kv"};
    env e;
    json_t *r;
    char s[256];
    shardz_worker_status st;

    (void)state;
    env_start(&e, &fo, NULL);

    /* New replicas: serve both, in partition order. */
    assert_int_equal(assign(&e, 13, P7 "," P1, &r), 200);
    {
        const char *want[] = {"serve p1 g4 primary upd0 old0 cause0",
                              "serve p7 g9 secondary upd0 old0 cause0"};
        rec_expect(want, 2);
    }
    assert_int_equal(jint(r, "applied_revision"), 13);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:4 p7:9");
    assert_int_equal(json_array_size(json_object_get(r, "failed")), 0);
    json_decref(r);

    /* p7 removed, p8 added: delete first, then serve. */
    assert_int_equal(assign(&e, 14, P1 "," P8, &r), 200);
    {
        const char *want[] = {"delete p7 g9 secondary upd0 old0 cause0",
                              "serve p8 g1 primary upd0 old0 cause0"};
        rec_expect(want, 2);
    }
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:4 p8:1");
    json_decref(r);

    /* An older revision is ignored and answered with the current state. */
    assert_int_equal(assign(&e, 12, P7, &r), 200);
    rec_expect(NULL, 0);
    assert_int_equal(jint(r, "applied_revision"), 14);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:4 p8:1");
    json_decref(r);

    /* A new generation of p1 and a new role of p8: serve again, as updates. */
    assert_int_equal(
        assign(&e, 15,
               "{\"partition\":\"p1\",\"slot\":0,\"role\":\"primary\",\"generation\":5},"
               "{\"partition\":\"p8\",\"slot\":1,\"role\":\"secondary\",\"generation\":1}",
               &r),
        200);
    {
        const char *want[] = {"serve p1 g5 primary upd1 old4 cause0",
                              "serve p8 g1 secondary upd1 old1 cause0"};
        rec_expect(want, 2);
    }
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:5 p8:1");
    json_decref(r);

    /* Only the replica states change: no hook. The same revision again: no hook either. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            assign(&e, 16,
                   "{\"partition\":\"p1\",\"slot\":0,\"role\":\"primary\",\"generation\":5,"
                   "\"state\":\"dropping\"},"
                   "{\"partition\":\"p8\",\"slot\":1,\"role\":\"secondary\",\"generation\":1}",
                   &r),
            200);
        rec_expect(NULL, 0);
        assert_int_equal(jint(r, "applied_revision"), 16);
        json_decref(r);
    }

    /* A failing serve is reported and not served; the others go on. */
    rec_fail("p9");
    assert_int_equal(
        assign(&e, 17,
               "{\"partition\":\"p1\",\"slot\":0,\"role\":\"primary\",\"generation\":5},"
               "{\"partition\":\"p9\",\"generation\":2},"
               "{\"partition\":\"p8\",\"slot\":1,\"role\":\"secondary\",\"generation\":1}",
               &r),
        200);
    {
        const char *want[] = {"serve p9 g2 none upd0 old0 cause0"};
        rec_expect(want, 1);
    }
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:5 p8:1");
    {
        const json_t *f = json_array_get(json_object_get(r, "failed"), 0);
        assert_int_equal(json_array_size(json_object_get(r, "failed")), 1);
        assert_string_equal(json_string_value(json_object_get(f, "partition")), "p9");
        assert_string_equal(json_string_value(json_object_get(f, "error")), "disk full");
    }
    assert_int_equal(jint(r, "applied_revision"), 17);
    json_decref(r);

    /* An empty set deletes everything. */
    assert_int_equal(assign(&e, 18, "", &r), 200);
    {
        const char *want[] = {"delete p1 g5 primary upd0 old0 cause0",
                              "delete p8 g1 secondary upd0 old0 cause0"};
        rec_expect(want, 2);
    }
    json_decref(r);
    shardz_worker_status_get(e.w, &st);
    assert_int_equal(st.serving, 0);
    assert_int_equal(st.applied_revision, 18);
    assert_int_equal(st.assignments, 7); /* 13..18 with 16 twice; 12 was stale */
    env_stop(&e);
}

/* A full assignment with "resync_from": the coordinator resynchronises a worker that applied a
 * revision it never issued (a forged one). Applied although older, only when the last applied
 * revision is exactly resync_from; later assignments then apply as usual. */
static void test_resync_after_forged(void **state)
{
    (void)state;
    env e;
    json_t *r = NULL;
    char body[512];
    const char *p1g1 = "{\"partition\":\"p1\",\"generation\":1}";

    fake_opts fo = {0};
    env_start(&e, &fo, NULL);
    rec_reset();
    assert_int_equal(assign(&e, 10, p1g1, NULL), 200);
    {
        const char *want[] = {"serve p1 g1 none upd0 old0 cause0"};
        rec_expect(want, 1);
    }
    /* the forgery: everything deleted, and the worker now holds revision 2^63-1 */
    assert_int_equal(assign(&e, INT64_MAX, "", &r), 200);
    assert_int_equal(jint(r, "applied_revision"), INT64_MAX);
    json_decref(r);
    {
        const char *want[] = {"delete p1 g1 none upd0 old0 cause0"};
        rec_expect(want, 1);
    }
    /* the coordinator's next assignment is older: ignored (the wedge, shown) */
    assert_int_equal(assign(&e, 11, "{\"partition\":\"p1\",\"generation\":2}", NULL), 200);
    rec_expect(NULL, 0);
    /* a resync from another revision is stale too */
    snprintf(body, sizeof body,
             "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":11,\"resync_from\":5,"
             "\"replicas\":[{\"partition\":\"p1\",\"generation\":2}]}");
    assert_int_equal(post(&e, "/shardz/v1/assign", body, NULL), 200);
    rec_expect(NULL, 0);
    /* resync_from on a delta is malformed */
    snprintf(body, sizeof body,
             "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":11,\"resync_from\":%lld,"
             "\"base_revision\":10,\"replicas\":[]}",
             (long long)INT64_MAX);
    assert_int_equal(post(&e, "/shardz/v1/assign", body, NULL), 400);
    /* the resync from exactly the forged revision applies */
    snprintf(body, sizeof body,
             "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":11,\"resync_from\":%lld,"
             "\"replicas\":[{\"partition\":\"p1\",\"generation\":2}]}",
             (long long)INT64_MAX);
    assert_int_equal(post(&e, "/shardz/v1/assign", body, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 11);
    json_decref(r);
    {
        const char *want[] = {"serve p1 g2 none upd0 old0 cause0"};
        rec_expect(want, 1);
    }
    /* and the next assignment applies as usual */
    assert_int_equal(assign(&e, 12, "", NULL), 200);
    {
        const char *want[] = {"delete p1 g2 none upd0 old0 cause0"};
        rec_expect(want, 1);
    }
    env_stop(&e);
}

/* A slow serve hook must not hold pings back (their own lane). */
static void *slow_assign(void *arg)
{
    env *e = arg;
    json_t *r = NULL;

    assert_int_equal(assign(e, 20, P1, &r), 200);
    json_decref(r);
    return NULL;
}

static bool one_event(void *arg)
{
    (void)arg;
    return rec_count() >= 1;
}

static void test_ping_not_behind_slow_hook(void **state)
{
    fake_opts fo = {.ns = "kv"};
    env e;
    json_t *r;
    pthread_t t;

    (void)state;
    env_start(&e, &fo, NULL);
    rec_gate_close();
    pthread_create(&t, NULL, slow_assign, &e);
    assert_true(rec_wait_entered(1, 5000)); /* the hook is running now, held at the gate */
    /* Answered while the hook cannot return: a ping queued behind it would never be. */
    assert_int_equal(ping(&e, 20, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 0); /* not applied yet */
    json_decref(r);
    rec_gate_open();
    pthread_join(t, NULL);
    assert_true(wait_until(one_event, NULL, 1000));
    assert_int_equal(ping(&e, 20, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 20);
    json_decref(r);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register),
        cmocka_unit_test(test_register_retries),
        cmocka_unit_test(test_several_coordinators),
        cmocka_unit_test(test_reregister_without_pings),
        cmocka_unit_test(test_ping_with_load),
        cmocka_unit_test(test_assign_diff),
        cmocka_unit_test(test_resync_after_forged),
        cmocka_unit_test(test_ping_not_behind_slow_hook),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
