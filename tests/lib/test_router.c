/* Tests for router snapshots and the router (src/lib/snapshot.c, router.c): a snapshot from a
 * state JSON (every slot form, address and generation fallbacks, the routing target), key
 * lookups that agree with shardz_key_slot over many keys, bad states refused whole, the
 * router fetching /state and following /watch from a fake coordinator, a prompt stop during a
 * long-poll, and readers on several threads while snapshots are swapped under them. */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fake_coord.h"
#include "worker_env.h"
#include "shardz/error.h"
#include "shardz/hash.h"
#include "shardz/router.h"

/* 64 slots over four partitions, in every accepted slot form. */
static const char *const state64 =
    "{\"revision\": 7, \"slots\": 64,"
    " \"nodes\": [{\"id\": \"n1\", \"address\": \"127.0.0.1:9101\", \"state\": \"alive\"},"
    "             {\"id\": \"n2\", \"address\": \"127.0.0.1:9102\", \"state\": \"suspect\"}],"
    " \"partitions\": ["
    "  {\"id\": \"p2\", \"generation\": 3, \"slots\": [{\"lo\": 16, \"hi\": 32}],"
    "   \"replicas\": [{\"node\": \"n2\", \"slot\": 1, \"role\": \"secondary\","
    "                   \"state\": \"serving\"},"
    "                  {\"node\": \"n1\", \"slot\": 0, \"role\": \"primary\","
    "                   \"state\": \"serving\", \"generation\": 2}]},"
    "  {\"id\": \"p1\", \"generation\": 5, \"slots\": [[0, 16]],"
    "   \"replicas\": [{\"node\": \"n1\", \"address\": \"10.0.0.1:1\", \"slot\": 0,"
    "                   \"role\": \"none\", \"state\": \"serving\"}]},"
    "  {\"id\": \"p3\", \"generation\": 1, \"slots\": [[32, 40], 40, 41, [42, 48]],"
    "   \"replicas\": [{\"node\": \"n2\", \"state\": \"adding\"}]},"
    "  {\"id\": \"p4\", \"slots\": [[48, 64]], \"replicas\": []}"
    " ]}";

static const char *expected_partition(uint32_t slot)
{
    return slot < 16 ? "p1" : slot < 32 ? "p2" : slot < 48 ? "p3" : "p4";
}

static void test_snapshot_from_state(void **state)
{
    shardz_snapshot *s = NULL;
    const shardz_route *rt;
    uint32_t slot;

    (void)state;
    assert_int_equal(shardz_snapshot_from_state(state64, strlen(state64), 0, &s), 0);
    assert_int_equal(shardz_snapshot_revision(s), 7);
    assert_int_equal(shardz_snapshot_slots(s), 64);
    assert_int_equal(shardz_snapshot_partition_count(s), 4);
    assert_string_equal(shardz_snapshot_partition_at(s, 0)->partition, "p1");
    assert_string_equal(shardz_snapshot_partition_at(s, 3)->partition, "p4");
    assert_null(shardz_snapshot_partition_at(s, 4));

    assert_int_equal(shardz_snapshot_lookup_partition(s, "p2", &rt), 0);
    assert_int_equal(rt->generation, 3);
    assert_int_equal(rt->nreplicas, 2);
    /* Replicas in slot order; the address and node state come from the node list; the
     * generation from the replica, else the partition. */
    assert_string_equal(rt->replicas[0].node, "n1");
    assert_string_equal(rt->replicas[0].role, "primary");
    assert_int_equal(rt->replicas[0].generation, 2);
    assert_string_equal(rt->replicas[0].address, "127.0.0.1:9101");
    assert_string_equal(rt->replicas[0].node_state, "alive");
    assert_string_equal(rt->replicas[1].node, "n2");
    assert_int_equal(rt->replicas[1].generation, 3);
    assert_string_equal(rt->replicas[1].node_state, "suspect");
    assert_int_equal(rt->target, 0); /* the serving primary */

    assert_int_equal(shardz_snapshot_lookup_partition(s, "p1", &rt), 0);
    assert_string_equal(rt->replicas[0].address, "10.0.0.1:1"); /* the replica's own wins */
    assert_int_equal(rt->target, 0);
    assert_int_equal(shardz_snapshot_lookup_partition(s, "p3", &rt), 0);
    assert_int_equal(rt->target, -1); /* only an "adding" replica: nothing to route to */
    assert_string_equal(rt->replicas[0].role, "none");
    assert_int_equal(shardz_snapshot_lookup_partition(s, "p4", &rt), 0);
    assert_int_equal(rt->nreplicas, 0);
    assert_int_equal(rt->generation, 0);
    assert_int_equal(shardz_snapshot_lookup_partition(s, "p5", &rt), SHARDZ_ENOENT);
    assert_null(rt);

    /* Keys: the slot is shardz_key_slot's and the partition the one holding it. */
    for (int i = 0; i < 5000; i++) {
        char key[32];
        int n = snprintf(key, sizeof key, i % 3 == 0 ? "user:%d" : "{tag%d}.x", i);
        assert_int_equal(shardz_snapshot_lookup_key(s, key, (size_t)n, &slot, &rt), 0);
        assert_int_equal(slot, shardz_key_slot(key, (size_t)n, 64));
        assert_string_equal(rt->partition, expected_partition(slot));
    }
    for (uint32_t x = 0; x < 64; x++) {
        assert_int_equal(shardz_snapshot_lookup_slot(s, x, &rt), 0);
        assert_string_equal(rt->partition, expected_partition(x));
    }
    assert_int_equal(shardz_snapshot_lookup_slot(s, 64, &rt), SHARDZ_ENOENT);
    assert_ptr_equal(shardz_snapshot_ref(s), s);
    shardz_snapshot_release(s);
    shardz_snapshot_release(s);
    shardz_snapshot_release(NULL);
}

static void test_snapshot_slot_count_sources(void **state)
{
    const char *no_count = "{\"revision\": 1, \"partitions\": ["
                           "{\"id\": \"a\", \"slots\": [[0, 64]]},"
                           "{\"id\": \"b\", \"slots\": [[64, 128]]}]}";
    const char *holes = "{\"revision\": 1, \"partitions\": [{\"id\": \"a\", \"slots\": [3]}]}";
    const char *replica = "{\"revision\": 2, \"partitions\": [{\"id\": \"0\", \"replicas\": []}]}";
    shardz_snapshot *s;
    const shardz_route *rt;

    (void)state;
    /* No count anywhere: the end of the highest range. */
    assert_int_equal(shardz_snapshot_from_state(no_count, strlen(no_count), 0, &s), 0);
    assert_int_equal(shardz_snapshot_slots(s), 128);
    shardz_snapshot_release(s);
    /* The caller's count (the namespace's). */
    assert_int_equal(shardz_snapshot_from_state(no_count, strlen(no_count), 256, &s), 0);
    assert_int_equal(shardz_snapshot_slots(s), 256);
    assert_int_equal(shardz_snapshot_lookup_slot(s, 200, &rt), SHARDZ_ENOENT); /* unheld */
    shardz_snapshot_release(s);
    assert_int_equal(shardz_snapshot_from_state(holes, strlen(holes), 64, &s), 0);
    assert_int_equal(shardz_snapshot_lookup_slot(s, 3, &rt), 0);
    assert_int_equal(shardz_snapshot_lookup_slot(s, 4, &rt), SHARDZ_ENOENT);
    shardz_snapshot_release(s);
    /* Not a hash namespace: key lookups are not supported. */
    assert_int_equal(shardz_snapshot_from_state(replica, strlen(replica), 0, &s), 0);
    assert_int_equal(shardz_snapshot_slots(s), 0);
    assert_int_equal(shardz_snapshot_lookup_key(s, "k", 1, NULL, &rt), SHARDZ_ENOTSUP);
    assert_int_equal(shardz_snapshot_lookup_partition(s, "0", &rt), 0);
    shardz_snapshot_release(s);
}

static void test_snapshot_bad_states(void **state)
{
    static const struct {
        const char *json;
        int rc;
    } cases[] = {
        {"", SHARDZ_EINVAL},
        {"nope", SHARDZ_EINVAL},
        {"[]", SHARDZ_EINVAL},
        {"{\"partitions\": []}", SHARDZ_EINVAL},
        {"{\"revision\": -1, \"partitions\": []}", SHARDZ_EINVAL},
        {"{\"revision\": 1}", SHARDZ_EINVAL},
        {"{\"revision\": 1, \"partitions\": [{\"generation\": 1}]}", SHARDZ_EINVAL},
        {"{\"revision\": 1, \"partitions\": [{\"id\": \"a b\"}]}", SHARDZ_EINVAL},
        {"{\"revision\": 1, \"partitions\": [{\"id\": \"a\"}, {\"id\": \"a\"}]}", SHARDZ_EPROTO},
        {"{\"revision\": 1, \"partitions\": [{\"id\": \"a\", \"replicas\": {}}]}", SHARDZ_EINVAL},
        {"{\"revision\": 1, \"partitions\": [{\"id\": \"a\", \"replicas\": [{}]}]}", SHARDZ_EINVAL},
        {"{\"revision\": 1, \"partitions\": [{\"id\": \"a\", \"replicas\": [{\"node\": \"n\","
         "\"slot\": -1}]}]}",
         SHARDZ_EINVAL},
        {"{\"revision\": 1, \"partitions\": [{\"id\": \"a\", \"generation\": \"x\"}]}",
         SHARDZ_EINVAL},
        {"{\"revision\": 1, \"slots\": 64, \"partitions\": [{\"id\": \"a\", \"slots\": [[0, 40]]},"
         " {\"id\": \"b\", \"slots\": [[39, 64]]}]}",
         SHARDZ_EPROTO},
        {"{\"revision\": 1, \"slots\": 64, \"partitions\": [{\"id\": \"a\", \"slots\": [[0, "
         "65]]}]}",
         SHARDZ_EINVAL},
        {"{\"revision\": 1, \"slots\": 100, \"partitions\": [{\"id\": \"a\", \"slots\": [1]}]}",
         SHARDZ_EINVAL},
        {"{\"revision\": 1, \"partitions\": [{\"id\": \"a\", \"slots\": [[5, 5]]}]}",
         SHARDZ_EINVAL},
        {"{\"revision\": 1, \"partitions\": [{\"id\": \"a\", \"slots\": [\"0\"]}]}", SHARDZ_EINVAL},
        {"{\"revision\": 1, \"partitions\": [{\"id\": \"a\", \"slots\": 5}]}", SHARDZ_EINVAL},
    };
    shardz_snapshot *s;

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s = (shardz_snapshot *)1;
        if (shardz_snapshot_from_state(cases[i].json, strlen(cases[i].json), 0, &s) !=
            cases[i].rc) {
            fprintf(stderr, "case %zu: %s\n", i, cases[i].json);
        }
        assert_int_equal(shardz_snapshot_from_state(cases[i].json, strlen(cases[i].json), 0, &s),
                         cases[i].rc);
        assert_null(s);
    }
}

static char *make_state(int64_t rev, const char *owner)
{
    char *buf = malloc(512);

    snprintf(buf, 512,
             "{\"revision\": %lld, \"nodes\": [{\"id\": \"%s\", \"address\": \"h:1\"}],"
             " \"partitions\": [{\"id\": \"a\", \"generation\": %lld, \"slots\": [[0, 32]],"
             "   \"replicas\": [{\"node\": \"%s\", \"state\": \"serving\"}]},"
             "  {\"id\": \"b\", \"slots\": [[32, 64]], \"replicas\": []}]}",
             (long long)rev, owner, (long long)rev, owner);
    return buf;
}

static _Atomic int changes;

static void on_change(void *user, int64_t revision)
{
    (void)user;
    (void)revision;
    atomic_fetch_add(&changes, 1);
}

typedef struct {
    fake_coord *f;
    int at_least;
} fake_wait;

static bool unchanged_answers(void *arg)
{
    fake_wait *fw = arg;
    int n;

    fake_lock(fw->f);
    n = fake_rec(fw->f)->watches_unchanged;
    fake_unlock(fw->f);
    return n >= fw->at_least;
}

/* A watch is held open by the fake right now. */
static bool watch_held(void *arg)
{
    fake_coord *f = arg;
    bool held;

    fake_lock(f);
    held = fake_rec(f)->watches_held > fake_rec(f)->watches_released;
    fake_unlock(f);
    return held;
}

static bool no_watch_held(void *arg)
{
    return !watch_held(arg);
}

static void test_router_follows_watch(void **state)
{
    fake_opts fo = {.ns = "kv", .sharder = "hash", .slots = 64};
    fake_coord *f = fake_start(&fo);
    shardz_router_config c;
    shardz_router *r = NULL;
    const shardz_route *rt;
    char *st = make_state(5, "n1");
    int released;
    uint32_t slot;

    (void)state;
    fake_set_state(f, 5, st);
    free(st);
    memset(&c, 0, sizeof c);
    c.coordinator = fake_addr(f);
    c.ns = "kv";
    c.watch_timeout_ms = 200; /* exercises "unchanged" answers too */
    c.on_change = on_change;
    assert_int_equal(shardz_router_create(&c, &r), 0);
    assert_int_equal(shardz_router_lookup_partition(r, "a", &rt), SHARDZ_ENOENT);
    assert_int_equal(shardz_router_revision(r), 0);
    assert_int_equal(shardz_router_start(r), 0);
    assert_int_equal(shardz_router_start(r), SHARDZ_EBUSY);
    assert_int_equal(shardz_router_revision(r), 5);
    assert_int_equal(shardz_router_lookup_partition(r, "a", &rt), 0);
    assert_string_equal(rt->replicas[0].node, "n1");
    assert_int_equal(shardz_router_lookup_key(r, "k", 1, &slot, &rt), 0);
    assert_int_equal(slot, shardz_key_slot("k", 1, 64));

    /* a couple of "unchanged" long-polls, each answered at its 200 ms timeout */
    assert_true(wait_until(unchanged_answers, &(fake_wait){f, 2}, 10000));
    st = make_state(6, "n2");
    fake_set_state(f, 6, st);
    free(st);
    assert_int_equal(shardz_router_wait(r, 6, 3000), 0);
    assert_int_equal(shardz_router_lookup_partition(r, "a", &rt), 0);
    assert_string_equal(rt->replicas[0].node, "n2");
    assert_int_equal(rt->generation, 6);
    for (int i = 0; i < 200 && atomic_load(&changes) < 2; i++) {
        tc_sleep_ms(5); /* on_change runs on the router thread just after the install */
    }
    assert_true(atomic_load(&changes) >= 2);
    assert_int_equal(shardz_router_wait(r, 99, 50), SHARDZ_ETIMEDOUT);
    fake_lock(f);
    assert_true(fake_rec(f)->watches >= 3);
    fake_unlock(f);

    /* A state installed by hand must be newer. */
    st = make_state(6, "n3");
    assert_int_equal(shardz_router_load_state(r, st, strlen(st)), SHARDZ_ESTALE);
    free(st);
    assert_int_equal(shardz_router_load_state(r, "{", 1), SHARDZ_EINVAL);

    /* Stopping interrupts a long-poll in flight. */
    shardz_router_destroy(r);
    r = NULL;
    assert_true(wait_until(no_watch_held, f, 10000)); /* the first router's last one is over */
    c.watch_timeout_ms = 60000;
    assert_int_equal(shardz_router_create(&c, &r), 0);
    assert_int_equal(shardz_router_start(r), 0);
    assert_true(wait_until(watch_held, f, 10000)); /* the 60 s long-poll is in flight */
    fake_lock(f);
    released = fake_rec(f)->watches_released;
    fake_unlock(f);
    shardz_router_destroy(r);
    /* destroy returned while the fake still held that watch: the router cut it short rather
     * than waiting for the fake's answer (which only its 60 s timeout would give) */
    fake_lock(f);
    assert_int_equal(fake_rec(f)->watches_released, released);
    fake_unlock(f);
    shardz_router_thread_release();
    fake_stop(f);
}

static void test_router_start_timeout(void **state)
{
    shardz_router_config c;
    shardz_router *r = NULL;

    (void)state;
    memset(&c, 0, sizeof c);
    c.coordinator = "127.0.0.1:1"; /* refused */
    c.ns = "kv";
    c.start_timeout_ms = 200;
    c.backoff_max_ms = 50;
    assert_int_equal(shardz_router_create(&c, &r), 0);
    assert_int_equal(shardz_router_start(r), SHARDZ_ETIMEDOUT);
    shardz_router_destroy(r);
    c.ns = "Bad";
    assert_int_equal(shardz_router_create(&c, &r), SHARDZ_EINVAL);
    assert_null(r);
}

/* Readers on two threads while the main thread swaps 300 snapshots. */
typedef struct {
    shardz_router *r;
    _Atomic bool *stop;
    long lookups;
} reader_arg;

static void *reader(void *arg)
{
    reader_arg *a = arg;
    const shardz_route *rt;
    shardz_snapshot *s;
    uint32_t slot;
    long i = 0;

    while (!atomic_load(a->stop)) {
        char key[16];
        int n = snprintf(key, sizeof key, "k%ld", i++);
        if (shardz_router_lookup_key(a->r, key, (size_t)n, &slot, &rt) == 0) {
            /* Everything read must belong to one consistent snapshot. */
            assert_string_equal(rt->partition, slot < 32 ? "a" : "b");
            if (rt->nreplicas > 0) {
                assert_true(rt->replicas[0].generation == rt->generation);
            }
            a->lookups++;
        }
        if (i % 64 == 0) {
            s = shardz_router_snapshot(a->r);
            if (s != NULL) {
                assert_int_equal(shardz_snapshot_lookup_partition(s, "a", &rt), 0);
                assert_int_equal(rt->generation, shardz_snapshot_revision(s));
            }
            shardz_snapshot_release(s);
        }
    }
    return NULL;
}

static void test_router_concurrent_swaps(void **state)
{
    shardz_router_config c;
    shardz_router *r = NULL;
    _Atomic bool stop = false;
    reader_arg a[2];
    pthread_t t[2];

    (void)state;
    memset(&c, 0, sizeof c);
    c.coordinator = "127.0.0.1:1";
    c.ns = "kv";
    assert_int_equal(shardz_router_create(&c, &r), 0);
    for (int i = 0; i < 2; i++) {
        a[i] = (reader_arg){r, &stop, 0};
        pthread_create(&t[i], NULL, reader, &a[i]);
    }
    for (int64_t rev = 1; rev <= 300; rev++) {
        char *st = make_state(rev, rev % 2 != 0 ? "n1" : "n2");
        assert_int_equal(shardz_router_load_state(r, st, strlen(st)), 0);
        free(st);
        tc_sleep_ms(1);
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_true(a[i].lookups > 0);
    }
    assert_int_equal(shardz_router_revision(r), 300);
    shardz_router_destroy(r);
}

/* More routers than the per-thread cache holds, looked up in turns: each answers its own. */
static void test_router_many_routers(void **state)
{
    shardz_router_config c;
    shardz_router *r[7];
    const shardz_route *rt;
    const shardz_route *keep;
    char owner[8];
    int64_t gen[7];

    (void)state;
    memset(&c, 0, sizeof c);
    c.coordinator = "127.0.0.1:1";
    c.ns = "kv";
    for (int i = 0; i < 7; i++) {
        char *st;
        snprintf(owner, sizeof owner, "n%d", i);
        st = make_state(10 + i, owner);
        assert_int_equal(shardz_router_create(&c, &r[i]), 0);
        assert_int_equal(shardz_router_load_state(r[i], st, strlen(st)), 0);
        free(st);
        gen[i] = 10 + i;
    }
    for (int round = 0; round < 50; round++) {
        int i = (round * 3) % 7;
        snprintf(owner, sizeof owner, "n%d", i);
        assert_int_equal(shardz_router_lookup_partition(r[i], "a", &rt), 0);
        assert_string_equal(rt->replicas[0].node, owner);
        assert_int_equal(rt->generation, gen[i]);
        if (round % 10 == 0) {
            /* Swap r[i]'s snapshot while this thread holds the old one. */
            char *st = make_state(100 + round, "zz");
            keep = rt;
            assert_int_equal(shardz_router_load_state(r[i], st, strlen(st)), 0);
            free(st);
            assert_string_equal(keep->replicas[0].node, owner); /* still valid */
            assert_int_equal(shardz_router_lookup_partition(r[i], "a", &rt), 0);
            assert_string_equal(rt->replicas[0].node, "zz");
            st = make_state(101 + round, owner);
            assert_int_equal(shardz_router_load_state(r[i], st, strlen(st)), 0);
            free(st);
            gen[i] = 101 + round;
        }
    }
    for (int i = 0; i < 7; i++) {
        shardz_router_destroy(r[i]); /* this thread's cache may still hold their snapshots */
    }
    shardz_router_thread_release();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_from_state),
        cmocka_unit_test(test_snapshot_slot_count_sources),
        cmocka_unit_test(test_snapshot_bad_states),
        cmocka_unit_test(test_router_follows_watch),
        cmocka_unit_test(test_router_start_timeout),
        cmocka_unit_test(test_router_concurrent_swaps),
        cmocka_unit_test(test_router_many_routers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
