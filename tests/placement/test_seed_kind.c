/* The "seed" baseline kind (seed 001's nextNode + stealWork at 1.3x). It need not balance,
 * spread zones or move the minimum, but it keeps the Sharder contract: a partition's replicas
 * on distinct nodes whenever there are enough nodes, queries that agree, plans that replay,
 * replicas re-placed off dead/draining/unregistered nodes, generations, dry runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "checker.h"
#include "shardz/placement.h"

#define CK(ctx, expr)                                                                              \
    do {                                                                                           \
        const char *e_ = (expr);                                                                   \
        if (e_) {                                                                                  \
            fail_msg("%s: %s", (ctx), e_);                                                         \
        }                                                                                          \
    } while (0)

static ck_world *mk_seed(unsigned replicas, uint64_t seed)
{
    shardz_sharder_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.kind = "seed";
    cfg.replicas = replicas;
    cfg.seed = seed;
    ck_world *w = ck_new(&cfg, NULL);
    assert_non_null(w);
    assert_string_equal(shardz_sharder_kind(ck_sharder(w)), "seed");
    ck_opts *o = ck_options(w);
    o->zones = false;
    o->balance = false;
    o->movement = false;
    o->capacity = false;
    o->distinct_if_enough = true; /* "distinct when there are enough nodes" */
    return w;
}

static void test_seed_distinct(void **state)
{
    (void)state;
    static const struct {
        size_t p, n, z;
        unsigned r;
    } cases[] = {{1, 1, 0, 1},    {10, 3, 0, 3},   {100, 4, 0, 3},  {50, 5, 0, 5},
                 {40, 16, 0, 16}, {500, 20, 4, 4}, {1000, 7, 0, 2}, {3, 60, 5, 4}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char ctx[64];
        snprintf(ctx, sizeof(ctx), "case %zu (P %zu N %zu R %u)", c, cases[c].p, cases[c].n,
                 cases[c].r);
        ck_world *w = mk_seed(cases[c].r, 40 + c);
        assert_int_equal(ck_add_nodes_n(w, "n", 0, cases[c].n, cases[c].z, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, cases[c].p, 0, -1), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        shardz_sharder_stats st;
        shardz_sharder_get_stats(ck_sharder(w), &st);
        assert_int_equal(st.missing, 0);
        assert_int_equal(st.replicas, cases[c].p * cases[c].r);
        /* a node joins, one leaves, one dies, one drains: still distinct, nothing left behind */
        assert_int_equal(ck_add_node(w, "late", NULL, 0, SHARDZ_NODE_ALIVE), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        if (cases[c].n > cases[c].r) {
            assert_int_equal(ck_remove_node(w, "n0", SHARDZ_REASON_LEAVE), 0);
            CK(ctx, ck_rebalance(w, 0, NULL));
            shardz_sharder_get_stats(ck_sharder(w), &st);
            assert_int_equal(st.missing, 0);
        }
        CK(ctx, ck_soft(w));
        ck_free(w);
    }
}

/* More replicas than nodes left: vacant slots, never two replicas on one node; repaired. */
static void test_seed_not_enough_nodes(void **state)
{
    (void)state;
    ck_world *w = mk_seed(3, 5);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 3, 0, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 30, 0, -1), 0);
    CK("seed", ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_set_state(w, "n1", SHARDZ_NODE_DEAD), 0);
    CK("seed", ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_node_count(w, "n1"), 0);
    assert_int_equal(ck_remove_node(w, "n2", SHARDZ_REASON_NODE_DEAD), 0);
    CK("seed", ck_rebalance(w, 0, NULL));
    shardz_sharder_stats st;
    /* with one alive node left for 3 replicas the baseline may stack them or leave slots
     * vacant; once there are enough nodes again they must be distinct and complete */
    assert_int_equal(ck_add_nodes_n(w, "m", 0, 2, 0, 0), 0);
    CK("seed", ck_rebalance(w, 0, NULL));
    shardz_sharder_get_stats(ck_sharder(w), &st);
    assert_int_equal(st.missing, 0);
    CK("seed", ck_soft(w));
    ck_free(w);
}

static const char *seed_event(ck_world *w, ck_rng *g, size_t *nn, size_t *np, unsigned r)
{
    static char ids[4096][16];
    unsigned e = (unsigned)ck_rng_range(g, 0, 9);
    shardz_sharder_stats st;
    shardz_sharder_get_stats(ck_sharder(w), &st);
    if (e < 3 || st.eligible_nodes <= r + 1) {
        char id[16];
        snprintf(id, sizeof(id), "n%zu", (*nn)++);
        return ck_add_node(w, id, NULL, 0, SHARDZ_NODE_ALIVE) ? "join failed" : NULL;
    }
    char id[16];
    snprintf(id, sizeof(id), "n%zu", (size_t)ck_rng_range(g, 0, *nn - 1));
    if (ck_node_count(w, id) < 0) {
        return NULL; /* already gone */
    }
    if (e < 5) {
        (void)ck_remove_node(w, id, SHARDZ_REASON_LEAVE);
        return NULL;
    }
    if (e < 7) {
        (void)ck_set_state(w, id, e == 5 ? SHARDZ_NODE_DEAD : SHARDZ_NODE_DRAINING);
        return NULL;
    }
    if (e < 8) {
        (void)ck_set_state(w, id, SHARDZ_NODE_ALIVE);
        return NULL;
    }
    if (e < 9 && *np + 20 < 4096) {
        shardz_partition_spec sp[20];
        memset(sp, 0, sizeof(sp));
        for (size_t i = 0; i < 20; i++) {
            snprintf(ids[*np + i], sizeof(ids[0]), "q%zu", *np + i);
            sp[i].id = ids[*np + i];
        }
        *np += 20;
        return ck_add_parts(w, sp, 20) ? "partition add failed" : NULL;
    }
    const char *one = "p0";
    (void)ck_remove_parts(w, &one, 1);
    return NULL;
}

/* Random sequences, the checker's contract checks after each rebalance. */
static void test_seed_random(void **state)
{
    (void)state;
    size_t seeds = 12;
    const char *env = getenv("SHARDZ_PROP_SEEDS");
    if (env && atoi(env) > 0) {
        seeds = (size_t)atoi(env);
    }
    for (uint64_t seed = 7000; seed < 7000 + seeds; seed++) {
        ck_rng g = {seed};
        unsigned r = (unsigned)ck_rng_range(&g, 1, 4);
        size_t n = ck_rng_range(&g, r + 1, 40), p = ck_rng_range(&g, 1, 1500);
        char ctx[96];
        snprintf(ctx, sizeof(ctx), "seed kind, seed %llu (P %zu R %u N %zu)",
                 (unsigned long long)seed, p, r, n);
        ck_world *w = mk_seed(r, seed);
        assert_int_equal(ck_add_nodes_n(w, "n", 0, n, 0, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, p, 0, -1), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        size_t np = 0;
        for (int step = 0; step < 10; step++) {
            CK(ctx, seed_event(w, &g, &n, &np, r));
            if (step % 3 == 1) {
                shardz_plan *plan = NULL;
                CK(ctx, ck_rebalance(w, SHARDZ_PLAN_DRY_RUN, &plan));
                CK(ctx, ck_apply(w, plan));
                shardz_plan_free(plan);
            } else {
                CK(ctx, ck_rebalance(w, 0, NULL));
            }
        }
        CK(ctx, ck_soft(w));
        ck_free(w);
    }
}

/* Deterministic for a given seed. */
static void test_seed_deterministic(void **state)
{
    (void)state;
    ck_world *a = mk_seed(3, 99), *b = mk_seed(3, 99);
    for (size_t i = 0; i < 2; i++) {
        ck_world *w = i ? b : a;
        assert_int_equal(ck_add_nodes_n(w, "n", 0, 10, 0, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, 400, 0, -1), 0);
        CK("det", ck_rebalance(w, 0, NULL));
        assert_int_equal(ck_add_nodes_n(w, "m", 0, 3, 0, 0), 0);
        CK("det", ck_rebalance(w, 0, NULL));
        assert_int_equal(ck_remove_node(w, "n2", SHARDZ_REASON_NODE_DEAD), 0);
        CK("det", ck_rebalance(w, 0, NULL));
    }
    CK("seed kind twins", ck_same_state(a, b));
    ck_free(a);
    ck_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_distinct),
        cmocka_unit_test(test_seed_not_enough_nodes),
        cmocka_unit_test(test_seed_random),
        cmocka_unit_test(test_seed_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
