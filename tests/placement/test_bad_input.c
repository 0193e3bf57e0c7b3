/* Bad input to the sharder API: every case checks the error code AND that nothing changed
 * (the checker's snapshot: assignment, generations, revision, counters, and that ids from a
 * rejected batch stayed unknown). Covers unknown and duplicate ids, id lengths, replica counts,
 * capacities, loads, node states, reasons, kinds, band, presets, foreign plans. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "checker.h"
#include "shardz/placement.h"

#define CK(expr)                                                                                   \
    do {                                                                                           \
        const char *e_ = (expr);                                                                   \
        if (e_) {                                                                                  \
            fail_msg("%s", e_);                                                                    \
        }                                                                                          \
    } while (0)

/* A placed world: 6 alive nodes in 3 zones, 60 partitions of 2 replicas, one suspect node. */
static ck_world *placed(void)
{
    shardz_sharder_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.replicas = 2;
    cfg.ndims = 2;
    cfg.seed = 9;
    ck_world *w = ck_new(&cfg, NULL);
    assert_non_null(w);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 6, 3, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 60, 0, -1), 0);
    CK(ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_add_node(w, "sus", "z0", 0, SHARDZ_NODE_ALIVE), 0);
    CK(ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_set_state(w, "sus", SHARDZ_NODE_SUSPECT), 0);
    CK(ck_rebalance(w, 0, NULL));
    return w;
}

/* Runs `call`, expects `want`, and checks that the state did not change. */
#define UNCHANGED(w, want, call)                                                                   \
    do {                                                                                           \
        const char *err_ = NULL;                                                                   \
        ck_snap *before_ = ck_snap_take((w), &err_);                                               \
        CK(err_);                                                                                  \
        int rc_ = (call);                                                                          \
        if (rc_ != (want)) {                                                                       \
            ck_snap_free(before_);                                                                 \
            fail_msg("%s: got %d (%s), want %s", #call, rc_, shardz_err_name(rc_), #want);         \
        }                                                                                          \
        ck_snap *after_ = ck_snap_take((w), &err_);                                                \
        CK(err_);                                                                                  \
        err_ = ck_snap_diff((w), before_, (w), after_);                                            \
        ck_snap_free(before_);                                                                     \
        ck_snap_free(after_);                                                                      \
        if (err_) {                                                                                \
            fail_msg("%s changed the state: %s", #call, err_);                                     \
        }                                                                                          \
    } while (0)

static shardz_node_spec node(const char *id, const char *zone)
{
    shardz_node_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.id = id;
    sp.zone = zone;
    sp.state = SHARDZ_NODE_ALIVE;
    return sp;
}

static shardz_partition_spec part(const char *id, unsigned replicas)
{
    shardz_partition_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.id = id;
    sp.replicas = replicas;
    return sp;
}

static void assert_unknown_node(ck_world *w, const char *id)
{
    size_t n = 0;
    assert_int_equal(shardz_sharder_partitions_of_node(ck_sharder(w), id, NULL, 0, &n),
                     SHARDZ_ENOENT);
}

static void assert_unknown_part(ck_world *w, const char *id)
{
    size_t n = 0;
    uint64_t g = 0;
    assert_int_equal(shardz_sharder_nodes_of_partition(ck_sharder(w), id, NULL, 0, &n),
                     SHARDZ_ENOENT);
    assert_int_equal(shardz_sharder_generation(ck_sharder(w), id, &g), SHARDZ_ENOENT);
}

/* ---- sharder config ------------------------------------------------------------------------ */

static void test_config(void **state)
{
    (void)state;
    static const struct {
        const char *kind;
        unsigned replicas;
        size_t ndims;
        double band;
        int want;
    } cases[] = {
        {"nope", 0, 0, 0, SHARDZ_EINVAL},
        {"", 0, 0, 0, SHARDZ_EINVAL},
        {"Replica", 0, 0, 0, SHARDZ_EINVAL},
        {"replica", SHARDZ_MAX_REPLICAS + 1, 0, 0, SHARDZ_EINVAL},
        {"replica", 1000, 0, 0, SHARDZ_EINVAL},
        {"replica", 0, SHARDZ_MAX_DIMS + 1, 0, SHARDZ_EINVAL},
        {"replica", 0, 0, -0.1, SHARDZ_EINVAL},
        {"replica", 0, 0, 1.1, SHARDZ_EINVAL},
        {"replica", 0, 0, NAN, SHARDZ_EINVAL},
        {"replica", 0, 0, INFINITY, SHARDZ_EINVAL},
        {"seed", 0, 0, -1, SHARDZ_EINVAL},
        {"replica", 0, 0, 0, 0},
        {"replica", 0, 0, 1.0, 0},
        {"replica", SHARDZ_MAX_REPLICAS, SHARDZ_MAX_DIMS, 0.5, 0},
        {NULL, 3, 1, 0, 0},
        {"seed", 2, 0, 0, 0},
        {"hash", 1, 0, 0, 0},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        shardz_sharder_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.kind = cases[c].kind;
        cfg.replicas = cases[c].replicas;
        cfg.ndims = cases[c].ndims;
        cfg.band = cases[c].band;
        shardz_sharder *s = NULL;
        int rc = shardz_sharder_new(&cfg, &s);
        if (rc != cases[c].want) {
            shardz_sharder_free(rc == 0 ? s : NULL);
            fail_msg("case %zu (kind %s replicas %u ndims %zu band %g): %s, want %s", c,
                     cases[c].kind ? cases[c].kind : "NULL", cases[c].replicas, cases[c].ndims,
                     cases[c].band, shardz_err_name(rc), shardz_err_name(cases[c].want));
        }
        if (rc == 0) {
            assert_non_null(s);
            assert_string_equal(shardz_sharder_kind(s), cases[c].kind ? cases[c].kind : "replica");
        }
        shardz_sharder_free(rc == 0 ? s : NULL);
    }

    /* replicas 0 on the config means 1; on a partition, the config's default */
    shardz_sharder_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    ck_world *w = ck_new(&cfg, NULL);
    assert_non_null(w);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 3, 0, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 5, 0, -1), 0);
    CK(ck_rebalance(w, 0, NULL));
    shardz_sharder_stats st;
    shardz_sharder_get_stats(ck_sharder(w), &st);
    assert_int_equal(st.replicas, 5);
    ck_free(w);
}

/* ---- nodes --------------------------------------------------------------------------------- */

static void test_register_nodes(void **state)
{
    (void)state;
    ck_world *w = placed();
    shardz_sharder *s = ck_sharder(w);
    char longid[SHARDZ_MAX_ID + 2];
    memset(longid, 'x', sizeof(longid));
    longid[SHARDZ_MAX_ID + 1] = 0; /* 256 bytes */
    shardz_node_spec b[3];

    b[0] = node(NULL, NULL);
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_nodes(s, b, 1));
    b[0] = node("", NULL);
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_nodes(s, b, 1));
    b[0] = node(longid, NULL);
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_nodes(s, b, 1));
    b[0] = node("okzone", longid);
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_nodes(s, b, 1));
    assert_unknown_node(w, "okzone");

    /* duplicates: already registered, twice in one batch */
    b[0] = node("fresh", NULL);
    b[1] = node("n3", NULL);
    UNCHANGED(w, SHARDZ_EEXIST, shardz_sharder_register_nodes(s, b, 2));
    assert_unknown_node(w, "fresh");
    b[1] = node("fresh", "z1");
    UNCHANGED(w, SHARDZ_EEXIST, shardz_sharder_register_nodes(s, b, 2));
    assert_unknown_node(w, "fresh");
    b[0] = node("sus", NULL); /* a suspect node is registered too */
    UNCHANGED(w, SHARDZ_EEXIST, shardz_sharder_register_nodes(s, b, 1));

    /* capacities */
    static const double bad_caps[] = {0.0, -1.0, -0.0, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof(bad_caps) / sizeof(bad_caps[0]); i++) {
        for (size_t dim = 0; dim < 2; dim++) {
            b[0] = node("good", NULL);
            b[1] = node("capped", NULL);
            b[1].ncapacity = 2;
            b[1].capacity[0] = 10;
            b[1].capacity[1] = 10;
            b[1].capacity[dim] = bad_caps[i];
            UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_nodes(s, b, 2));
            assert_unknown_node(w, "good");
            assert_unknown_node(w, "capped");
        }
    }
    b[0] = node("toomany", NULL);
    b[0].ncapacity = SHARDZ_MAX_DIMS + 1;
    for (size_t d = 0; d < SHARDZ_MAX_DIMS; d++) {
        b[0].capacity[d] = 1;
    }
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_nodes(s, b, 1));

    /* state out of range */
    b[0] = node("weird", NULL);
    b[0].state = (shardz_node_state)42;
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_nodes(s, b, 1));
    assert_unknown_node(w, "weird");

    /* the longest id is fine; an empty batch is fine */
    char maxid[SHARDZ_MAX_ID + 1];
    memset(maxid, 'y', SHARDZ_MAX_ID);
    maxid[SHARDZ_MAX_ID] = 0;
    b[0] = node(maxid, maxid);
    assert_int_equal(ck_add_nodes(w, b, 1), 0);
    assert_int_equal(ck_add_nodes(w, b, 0), 0);
    CK(ck_rebalance(w, 0, NULL));
    CK(ck_soft(w));
    ck_free(w);
}

static void test_unregister_and_state(void **state)
{
    (void)state;
    ck_world *w = placed();
    shardz_sharder *s = ck_sharder(w);
    const char *ids[3] = {"n1", "ghost", "n2"};
    UNCHANGED(w, SHARDZ_ENOENT, shardz_sharder_unregister_nodes(s, ids, 3, SHARDZ_REASON_LEAVE));
    UNCHANGED(w, SHARDZ_ENOENT,
              shardz_sharder_unregister_nodes(s, ids + 1, 1, SHARDZ_REASON_NODE_DEAD));
    /* only leave and node-dead are reasons to unregister */
    UNCHANGED(w, SHARDZ_EINVAL,
              shardz_sharder_unregister_nodes(s, ids, 1, SHARDZ_REASON_REBALANCE));
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_unregister_nodes(s, ids, 1, (shardz_reason)99));
    UNCHANGED(w, SHARDZ_ENOENT, shardz_sharder_set_node_state(s, "ghost", SHARDZ_NODE_DEAD));
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_set_node_state(s, "n1", (shardz_node_state)7));
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_set_node_state(s, "n1", (shardz_node_state)-1));

    CK(ck_rebalance(w, 0, NULL));
    CK(ck_soft(w));

    /* the same id twice in one unregister batch: either done once or refused as a whole */
    const char *twice[2] = {"n4", "n4"};
    const char *err = NULL;
    ck_snap *before = ck_snap_take(w, &err);
    CK(err);
    shardz_sharder_stats st0, st1;
    shardz_sharder_get_stats(s, &st0);
    int rc = shardz_sharder_unregister_nodes(s, twice, 2, SHARDZ_REASON_LEAVE);
    shardz_sharder_get_stats(s, &st1);
    if (rc != 0) {
        ck_snap *after = ck_snap_take(w, &err);
        CK(err);
        err = ck_snap_diff(w, before, w, after);
        ck_snap_free(after);
        ck_snap_free(before);
        CK(err);
    } else {
        ck_snap_free(before);
        assert_unknown_node(w, "n4");
        assert_int_equal(st1.nodes, st0.nodes - 1);
        shardz_plan *plan = NULL;
        assert_int_equal(shardz_sharder_rebalance(s, 0, &plan), 0);
        shardz_plan_free(plan);
        print_message("note: a duplicate id in an unregister batch is accepted\n");
    }
    ck_free(w);
}

static void test_register_partitions(void **state)
{
    (void)state;
    ck_world *w = placed();
    shardz_sharder *s = ck_sharder(w);
    char longid[SHARDZ_MAX_ID + 2];
    memset(longid, 'x', sizeof(longid));
    longid[SHARDZ_MAX_ID + 1] = 0;
    shardz_partition_spec b[3];

    b[0] = part(NULL, 1);
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_partitions(s, b, 1));
    b[0] = part("", 1);
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_partitions(s, b, 1));
    b[0] = part(longid, 1);
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_partitions(s, b, 1));

    /* duplicates */
    b[0] = part("new1", 1);
    b[1] = part("p7", 1);
    UNCHANGED(w, SHARDZ_EEXIST, shardz_sharder_register_partitions(s, b, 2));
    assert_unknown_part(w, "new1");
    b[1] = part("new1", 2);
    UNCHANGED(w, SHARDZ_EEXIST, shardz_sharder_register_partitions(s, b, 2));
    assert_unknown_part(w, "new1");

    /* replica counts: above the maximum, above the eligible (alive) nodes */
    b[0] = part("new1", 1);
    b[1] = part("big", SHARDZ_MAX_REPLICAS + 1);
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_partitions(s, b, 2));
    b[1] = part("big", 7); /* 6 alive + 1 suspect */
    UNCHANGED(w, SHARDZ_ENOSPC, shardz_sharder_register_partitions(s, b, 2));
    assert_unknown_part(w, "new1");
    assert_unknown_part(w, "big");
    b[0] = part("six", 6);
    assert_int_equal(ck_add_parts(w, b, 1), 0);

    /* loads */
    static const double bad_loads[] = {-1.0, -1e-300, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof(bad_loads) / sizeof(bad_loads[0]); i++) {
        for (size_t dim = 0; dim < 2; dim++) {
            b[0] = part("new1", 1);
            b[1] = part("loaded", 1);
            b[1].nload = 2;
            b[1].load[0] = 1;
            b[1].load[1] = 1;
            b[1].load[dim] = bad_loads[i];
            UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_partitions(s, b, 2));
            assert_unknown_part(w, "new1");
            assert_unknown_part(w, "loaded");
        }
    }
    b[0] = part("dims", 1);
    b[0].nload = SHARDZ_MAX_DIMS + 1;
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_partitions(s, b, 1));

    /* presets: unknown node, repeated node, more nodes than replicas */
    const char *unknown[2] = {"n0", "ghost"};
    const char *repeated[2] = {"n1", "n1"};
    const char *three[3] = {"n0", "n1", "n2"};
    b[0] = part("new1", 1);
    b[1] = part("pre", 2);
    b[1].nnodes = 2;
    b[1].nodes = unknown;
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_partitions(s, b, 2));
    b[1].nodes = repeated;
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_partitions(s, b, 2));
    b[1].nnodes = 3;
    b[1].nodes = three;
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_register_partitions(s, b, 2));
    assert_unknown_part(w, "new1");
    assert_unknown_part(w, "pre");
    CK(ck_rebalance(w, 0, NULL));
    CK(ck_soft(w));
    ck_free(w);

    /* no node at all, or only non-eligible ones: nothing fits */
    shardz_sharder_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.replicas = 3;
    w = ck_new(&cfg, NULL);
    assert_non_null(w);
    s = ck_sharder(w);
    b[0] = part("lonely", 1);
    UNCHANGED(w, SHARDZ_ENOSPC, shardz_sharder_register_partitions(s, b, 1));
    assert_int_equal(ck_add_node(w, "j", NULL, 0, SHARDZ_NODE_JOINING), 0);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 2, 0, 0), 0);
    b[0] = part("dflt", 0); /* default 3 > 2 alive */
    UNCHANGED(w, SHARDZ_ENOSPC, shardz_sharder_register_partitions(s, b, 1));
    assert_unknown_part(w, "dflt");
    ck_free(w);
}

static void test_partition_ops(void **state)
{
    (void)state;
    ck_world *w = placed();
    shardz_sharder *s = ck_sharder(w);
    const char *ids[3] = {"p1", "ghost", "p2"};
    UNCHANGED(w, SHARDZ_ENOENT, shardz_sharder_unregister_partitions(s, ids, 3));
    UNCHANGED(w, SHARDZ_ENOENT, shardz_sharder_unregister_partitions(s, ids + 1, 1));
    double l[SHARDZ_MAX_DIMS + 1] = {1, 1};
    UNCHANGED(w, SHARDZ_ENOENT, shardz_sharder_set_partition_load(s, "ghost", l, 1));
    static const double bad[] = {-1.0, NAN, INFINITY};
    for (size_t i = 0; i < 3; i++) {
        l[0] = 1;
        l[1] = bad[i];
        UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_set_partition_load(s, "p1", l, 2));
        l[0] = bad[i];
        UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_set_partition_load(s, "p1", l, 1));
    }
    for (size_t d = 0; d <= SHARDZ_MAX_DIMS; d++) {
        l[d] = 1;
    }
    UNCHANGED(w, SHARDZ_EINVAL, shardz_sharder_set_partition_load(s, "p1", l, SHARDZ_MAX_DIMS + 1));

    /* queries on unknown ids */
    assert_unknown_node(w, "ghost");
    assert_unknown_part(w, "ghost");

    /* a plan of another sharder is not applied here */
    ck_world *other = placed();
    assert_int_equal(ck_add_part(other, "extra", 0, -1), 0);
    shardz_plan *plan = NULL;
    CK(ck_rebalance(other, SHARDZ_PLAN_DRY_RUN, &plan));
    assert_true(shardz_plan_count(plan) > 0);
    const char *err = NULL;
    ck_snap *before = ck_snap_take(w, &err);
    CK(err);
    int rc = shardz_sharder_apply(s, plan);
    ck_snap *after = ck_snap_take(w, &err);
    CK(err);
    err = ck_snap_diff(w, before, w, after);
    ck_snap_free(before);
    ck_snap_free(after);
    shardz_plan_free(plan);
    if (rc != SHARDZ_ESTALE && rc != SHARDZ_EINVAL) {
        fail_msg("apply of another sharder's plan: %d (%s), want ESTALE or EINVAL", rc,
                 shardz_err_name(rc));
    }
    CK(err);
    ck_free(other);
    CK(ck_rebalance(w, 0, NULL));
    CK(ck_soft(w));
    ck_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_register_nodes),
        cmocka_unit_test(test_unregister_and_state),
        cmocka_unit_test(test_register_partitions),
        cmocka_unit_test(test_partition_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
