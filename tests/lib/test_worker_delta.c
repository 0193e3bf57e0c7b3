/* Tests for delta assignments in the worker (src/lib/worker.c, docs/PROTOCOL.md 4.3) against
 * the in-process fake coordinator: the register body offers "delta" and the reply's agreement
 * is recorded; a delta calls serve / delete for exactly the partitions it names and answers
 * "serving" for those only; a delta on another base is refused 409 ESTALE and changes nothing;
 * stale deltas are ignored; full assignments still work between deltas; a lapsed strict lease
 * refuses them. Runs on the test's thread; the worker's own threads apply. */
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

/* A delta of revision rev on base, with the replicas' JSON objects and the removed ids' JSON
 * strings (both comma-separated). */
static long delta(env *e, long long rev, long long base, const char *replicas, const char *removed,
                  json_t **reply)
{
    char body[4096];

    snprintf(body, sizeof body,
             "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":%lld,\"base_revision\":%lld,"
             "\"lease_ms\":1000,\"replicas\":[%s],\"removed\":[%s]}",
             rev, base, replicas, removed);
    return post(e, "/shardz/v1/assign", body, reply);
}

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

#define P9 "{\"partition\":\"p9\",\"slot\":0,\"role\":\"primary\",\"generation\":2}"
#define P1G5 "{\"partition\":\"p1\",\"slot\":0,\"role\":\"primary\",\"generation\":5}"

static void test_register_features(void **state)
{
    fake_opts old = {.ns = "kv"};
    fake_opts agrees = {.ns = "kv", .features = "[\"other\", \"delta\"]"};
    fake_opts other = {.ns = "kv", .features = "[\"other\"]"};
    fake_opts bad = {.ns = "kv", .features = "\"delta\""};
    const fake_opts *cases[] = {&old, &agrees, &other, &bad};
    const int want[] = {0, 1, 0, 0};

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        env e;
        json_t *body;
        json_t *f;
        shardz_worker_status st;

        env_start(&e, cases[i], NULL);
        fake_lock(e.f);
        body = json_loads(fake_rec(e.f)->last_register, 0, NULL);
        fake_unlock(e.f);
        assert_non_null(body);
        f = json_object_get(body, "features");
        /* delta, term (PROTOCOL.md 4.2) and transfer (4.3, state transfer) */
        assert_int_equal(json_array_size(f), 3);
        assert_string_equal(json_string_value(json_array_get(f, 0)), "delta");
        assert_string_equal(json_string_value(json_array_get(f, 1)), "term");
        assert_string_equal(json_string_value(json_array_get(f, 2)), "transfer");
        json_decref(body);
        shardz_worker_status_get(e.w, &st);
        assert_int_equal(st.delta_agreed, want[i]);
        env_stop(&e);
    }
}

static void test_delta_applied(void **state)
{
    fake_opts fo = {.ns = "kv", .features = "[\"delta\"]"};
    env e;
    json_t *r;
    char s[256];
    shardz_worker_status st;

    (void)state;
    env_start(&e, &fo, NULL);
    assert_int_equal(assign(&e, 10, P1 "," P7 "," P8, &r), 200);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0",
                                "serve p7 g9 secondary upd0 old0 cause0",
                                "serve p8 g1 primary upd0 old0 cause0"},
               3);

    /* p7 removed, p1 a new generation, p9 new; p8 not named: untouched, not reported. */
    assert_int_equal(delta(&e, 11, 10, P9 "," P1G5, "\"p7\"", &r), 200);
    rec_expect((const char *[]){"delete p7 g9 secondary upd0 old0 cause0",
                                "serve p1 g5 primary upd1 old4 cause0",
                                "serve p9 g2 primary upd0 old0 cause0"},
               3);
    assert_true(json_is_true(json_object_get(r, "delta")));
    assert_string_equal(jstr(r, "node"), "w1");
    assert_int_equal(jint(r, "applied_revision"), 11);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:5 p9:2");
    assert_int_equal(json_array_size(json_object_get(r, "failed")), 0);
    json_decref(r);
    assert_int_equal(ping(&e, 11, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 11);
    json_decref(r);

    /* Removing one not served calls nothing for it; a state-only change calls nothing and is
     * reported; a failing serve is reported and not served. */
    rec_fail("p3");
    assert_int_equal(delta(&e, 12, 11,
                           "{\"partition\":\"p9\",\"slot\":0,\"role\":\"primary\",\"generation\":2,"
                           "\"state\":\"dropping\"},{\"partition\":\"p3\",\"generation\":1}",
                           "\"p8\",\"p-unknown\"", &r),
                     200);
    rec_expect((const char *[]){"delete p8 g1 primary upd0 old0 cause0",
                                "serve p3 g1 none upd0 old0 cause0"},
               2);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p9:2");
    assert_int_equal(json_array_size(json_object_get(r, "failed")), 1);
    assert_string_equal(jstr(json_array_get(json_object_get(r, "failed"), 0), "partition"), "p3");
    json_decref(r);

    /* The failed one listed again in a later delta is served then. An empty delta applies and
     * reports nothing. */
    rec_fail(NULL);
    assert_int_equal(delta(&e, 13, 12, "{\"partition\":\"p3\",\"generation\":1}", "", &r), 200);
    rec_expect((const char *[]){"serve p3 g1 none upd0 old0 cause0"}, 1);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p3:1");
    json_decref(r);
    assert_int_equal(delta(&e, 14, 13, "", "", &r), 200);
    rec_expect(NULL, 0);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "");
    assert_int_equal(jint(r, "applied_revision"), 14);
    json_decref(r);

    shardz_worker_status_get(e.w, &st);
    assert_true(st.delta_agreed);
    assert_int_equal(st.serving, 3); /* p1, p3, p9 */
    assert_int_equal(st.assignments, 5);
    assert_int_equal(st.deltas, 4);
    assert_int_equal(st.deltas_refused, 0);
    assert_int_equal(st.applied_revision, 14);
    env_stop(&e);
}

static void test_delta_wrong_base(void **state)
{
    fake_opts fo = {.ns = "kv", .features = "[\"delta\"]"};
    env e;
    json_t *r;
    char s[256];
    shardz_worker_status st;

    (void)state;
    env_start(&e, &fo, NULL);
    assert_int_equal(assign(&e, 10, P1, &r), 200);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0"}, 1);

    /* Base 11 is not the applied 10: 409 ESTALE with the applied revision, nothing called. */
    assert_int_equal(delta(&e, 12, 11, P7, "\"p1\"", &r), 409);
    assert_string_equal(jstr(r, "code"), "ESTALE");
    assert_non_null(jstr(r, "message"));
    assert_int_equal(jint(r, "applied_revision"), 10);
    json_decref(r);
    /* A base below the applied one is refused the same way. */
    assert_int_equal(delta(&e, 12, 9, P7, "\"p1\"", &r), 409);
    assert_int_equal(jint(r, "applied_revision"), 10);
    json_decref(r);
    shardz_worker_status_get(e.w, &st);
    assert_int_equal(st.applied_revision, 10);
    assert_int_equal(st.serving, 1);
    assert_int_equal(st.deltas_refused, 2);
    assert_int_equal(st.deltas, 0);

    /* The same delta on the right base applies: its hooks are seen, so the refusals above
     * would have shown theirs. Sent twice, the second is on a base no longer applied. */
    for (int i = 0; i < 2; i++) {
        long want = i == 0 ? 200 : 409;
        assert_int_equal(delta(&e, 12, 10, P7, "\"p1\"", &r), want);
        assert_int_equal(jint(r, "applied_revision"), 12);
        json_decref(r);
    }
    rec_expect((const char *[]){"delete p1 g4 primary upd0 old0 cause0",
                                "serve p7 g9 secondary upd0 old0 cause0"},
               2);
    assert_int_equal(ping(&e, 12, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 12);
    json_decref(r);
    /* The full assignment the coordinator sends after a 409 is applied as ever. */
    assert_int_equal(assign(&e, 13, P7 "," P8, &r), 200);
    rec_expect((const char *[]){"serve p8 g1 primary upd0 old0 cause0"}, 1);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p7:9 p8:1");
    json_decref(r);
    shardz_worker_status_get(e.w, &st);
    assert_int_equal(st.deltas_refused, 3);
    assert_int_equal(st.deltas, 1);
    env_stop(&e);
}

static void test_delta_stale(void **state)
{
    fake_opts fo = {.ns = "kv", .features = "[\"delta\"]"};
    env e;
    json_t *r;
    char s[256];

    (void)state;
    env_start(&e, &fo, NULL);
    assert_int_equal(assign(&e, 10, P1, &r), 200);
    json_decref(r);
    assert_int_equal(delta(&e, 12, 10, P7, "", &r), 200);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0",
                                "serve p7 g9 secondary upd0 old0 cause0"},
               2);
    /* Revision 11 < 12: ignored, answered as ever (everything served, no "delta"), even on the
     * base that was applied before. */
    assert_int_equal(delta(&e, 11, 10, P8, "\"p1\",\"p7\"", &r), 200);
    assert_null(json_object_get(r, "delta"));
    assert_int_equal(jint(r, "applied_revision"), 12);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:4 p7:9");
    json_decref(r);
    rec_expect(NULL, 0);
    /* A fresh one on 12 is applied: a hook that runs is seen. */
    assert_int_equal(delta(&e, 13, 12, "", "\"p1\"", &r), 200);
    rec_expect((const char *[]){"delete p1 g4 primary upd0 old0 cause0"}, 1);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "");
    json_decref(r);
    env_stop(&e);
}

static void test_full_after_deltas(void **state)
{
    fake_opts fo = {.ns = "kv", .features = "[\"delta\"]"};
    env e;
    json_t *r;
    char s[256];
    shardz_worker_status st;

    (void)state;
    env_start(&e, &fo, NULL);
    assert_int_equal(assign(&e, 10, P1 "," P7, &r), 200);
    json_decref(r);
    assert_int_equal(delta(&e, 11, 10, P8, "", &r), 200);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0",
                                "serve p7 g9 secondary upd0 old0 cause0",
                                "serve p8 g1 primary upd0 old0 cause0"},
               3);
    /* A full set replaces everything (the partition added by the delta included) and is
     * answered with everything served, without "delta". */
    assert_int_equal(assign(&e, 12, P7 "," P9, &r), 200);
    rec_expect((const char *[]){"delete p1 g4 primary upd0 old0 cause0",
                                "delete p8 g1 primary upd0 old0 cause0",
                                "serve p9 g2 primary upd0 old0 cause0"},
               3);
    assert_null(json_object_get(r, "delta"));
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p7:9 p9:2");
    json_decref(r);
    /* Deltas build on the full set. */
    assert_int_equal(delta(&e, 13, 12, P1, "\"p9\"", &r), 200);
    rec_expect((const char *[]){"delete p9 g2 primary upd0 old0 cause0",
                                "serve p1 g4 primary upd0 old0 cause0"},
               2);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:4");
    json_decref(r);
    shardz_worker_status_get(e.w, &st);
    assert_int_equal(st.serving, 2);
    assert_int_equal(st.deltas, 2);
    assert_int_equal(st.assignments, 4);
    env_stop(&e);
}

/* Strict mode: after the lease lapsed (everything deleted), a delta on the revision applied
 * before does not apply: the set is gone, the worker says applied 0, a full set is needed. */
static void test_delta_after_lease_lapse(void **state)
{
    fake_opts fo = {
        .ns = "kv", .consistency = "strict", .lease_ms = 1000, .features = "[\"delta\"]"};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r;
    char s[128];
    shardz_worker_status st;

    (void)state;
    atomic_store(&test_now, 1000);
    c.clock_ms = test_clock;
    c.lease_check_ms = 60000; /* the lapse is seen when the delta arrives */
    env_start(&e, &fo, &c);
    assert_int_equal(assign(&e, 5, P1 "," P7, &r), 200);
    json_decref(r);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0",
                                "serve p7 g9 secondary upd0 old0 cause0"},
               2);
    atomic_fetch_add(&test_now, 2000); /* "paused" past the lease */
    assert_false(shardz_worker_lease_ok(e.w));
    /* The drop is queued before the delta, so its reply comes after the deletes. */
    assert_int_equal(delta(&e, 6, 5, P8, "", &r), 409);
    assert_string_equal(jstr(r, "code"), "ESTALE");
    assert_int_equal(jint(r, "applied_revision"), 0);
    json_decref(r);
    rec_expect((const char *[]){"delete p1 g4 primary upd0 old0 cause1",
                                "delete p7 g9 secondary upd0 old0 cause1"},
               2);
    shardz_worker_status_get(e.w, &st);
    assert_int_equal(st.lease_expiries, 1);
    assert_int_equal(st.serving, 0);
    assert_int_equal(st.deltas_refused, 1);
    /* The full set that follows is served (the delta's p8 would have been seen the same way). */
    assert_int_equal(assign(&e, 6, P1 "," P8, &r), 200);
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0",
                                "serve p8 g1 primary upd0 old0 cause0"},
               2);
    serving_str(r, s, sizeof s);
    assert_string_equal(s, "p1:4 p8:1");
    json_decref(r);
    env_stop(&e);
}

typedef struct {
    env *e;
    bool is_delta;
    long long rev, base;
    const char *reps;
    long status;
    json_t *reply;
} send_arg;

static void *send_thread(void *arg)
{
    send_arg *a = arg;

    a->status = a->is_delta ? delta(a->e, a->rev, a->base, a->reps, "", &a->reply)
                            : assign(a->e, a->rev, a->reps, &a->reply);
    return NULL;
}

/* Strict mode: a delta queued behind an assignment whose serve hook is running when the lease
 * lapses is not applied (the lapse is noticed before the queue gets to it). */
static bool one_delete(void *arg)
{
    (void)arg;
    return rec_deletes() >= 1;
}

static void test_delta_queued_when_lease_lapses(void **state)
{
    fake_opts fo = {
        .ns = "kv", .consistency = "strict", .lease_ms = 1000, .features = "[\"delta\"]"};
    shardz_worker_config c = base_config(NULL);
    env e;
    json_t *r;
    pthread_t t1;
    pthread_t t2;
    send_arg a1;
    send_arg a2;

    (void)state;
    atomic_store(&test_now, 1000);
    c.clock_ms = test_clock;
    c.lease_check_ms = 60000;
    env_start(&e, &fo, &c);
    rec_gate_close();
    a1 = (send_arg){&e, false, 5, 0, P1, 0, NULL};
    a2 = (send_arg){&e, true, 6, 5, P7, 0, NULL};
    pthread_create(&t1, NULL, send_thread, &a1);
    assert_true(rec_wait_entered(1, 5000)); /* p1's serve hook is running (held at the gate) */
    pthread_create(&t2, NULL, send_thread, &a2);
    assert_true(wait_queued(e.w, 1, 5000)); /* the delta waits in the queue */
    atomic_fetch_add(&test_now, 2000);
    assert_int_equal(ping(&e, 6, &r), 200);
    assert_int_equal(jint(r, "applied_revision"), 0);
    json_decref(r);
    rec_gate_open();
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(a1.status, 200);
    assert_int_equal(jint(a1.reply, "applied_revision"), 0);
    assert_int_equal(a2.status, 409);
    assert_int_equal(jint(a2.reply, "applied_revision"), 0);
    json_decref(a1.reply);
    json_decref(a2.reply);
    /* p1 was served by the first, then dropped for the lease; p7 never served. The drop's
     * delete hook may still be finishing when the replies are out: waited for, with a
     * deadline, before the events are compared. */
    assert_true(wait_until(one_delete, NULL, 5000));
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0",
                                "delete p1 g4 primary upd0 old0 cause1"},
               2);
    env_stop(&e);
}

/* Without a listener the delta and its refusal go through shardz_worker_handle alike. */
static void test_delta_handle_mode(void **state)
{
    fake_opts fo = {.ns = "kv", .features = "[\"delta\"]"};
    shardz_worker_config c = base_config(NULL);
    env e;
    char *reply;
    size_t len;
    int status;
    json_t *j;
    const char *full =
        "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":3,\"replicas\":[" P1 "]}";
    const char *d = "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":4,\"base_revision\":3,"
                    "\"replicas\":[" P7 "],\"removed\":[\"p1\"]}";

    (void)state;
    c.listen = NULL;
    c.advertise = "127.0.0.1:9";
    env_start(&e, &fo, &c);
    assert_int_equal(shardz_worker_handle(e.w, "POST", "/shardz/v1/assign", NULL, full,
                                          strlen(full), &reply, &len, &status),
                     0);
    assert_int_equal(status, 200);
    free(reply);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(shardz_worker_handle(e.w, "POST", "/shardz/v1/assign", NULL, d, strlen(d),
                                              &reply, &len, &status),
                         0);
        assert_int_equal(status, i == 0 ? 200 : 409);
        j = json_loadb(reply, len, 0, NULL);
        assert_non_null(j);
        assert_int_equal(jint(j, "applied_revision"), 4);
        json_decref(j);
        free(reply);
    }
    rec_expect((const char *[]){"serve p1 g4 primary upd0 old0 cause0",
                                "delete p1 g4 primary upd0 old0 cause0",
                                "serve p7 g9 secondary upd0 old0 cause0"},
               3);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_features),
        cmocka_unit_test(test_delta_applied),
        cmocka_unit_test(test_delta_wrong_base),
        cmocka_unit_test(test_delta_stale),
        cmocka_unit_test(test_full_after_deltas),
        cmocka_unit_test(test_delta_after_lease_lapse),
        cmocka_unit_test(test_delta_queued_when_lease_lapses),
        cmocka_unit_test(test_delta_handle_mode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
