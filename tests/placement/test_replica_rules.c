/* Table-driven tests of the replica sharder, one test per rule of issue 2 and placement.h:
 * distinct nodes, zone spread, capacity, balance (equal, weighted, loads), least-loaded
 * placement, leave/dead/drain/join movement and reasons, suspect and joining states, roles,
 * dry run / apply / stale, generations, presets, determinism, the query contract. Every
 * rebalance is also verified by the brute-force checker (checker.h). */
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

#define CK(ctx, expr)                                                                              \
    do {                                                                                           \
        const char *e_ = (expr);                                                                   \
        if (e_) {                                                                                  \
            fail_msg("%s: %s", (ctx), e_);                                                         \
        }                                                                                          \
    } while (0)

/* Soft findings (stats counters disagreeing with the queries) do not stop a table: the first
 * one is kept and the test fails at its end (expect_no_soft). */
static char soft_first[1400];

static void note_soft(const char *ctx, const ck_world *w)
{
    const char *s = ck_soft(w);
    if (s && !soft_first[0]) {
        snprintf(soft_first, sizeof(soft_first), "%s: %s", ctx, s);
    }
}

static void expect_no_soft(void)
{
    if (soft_first[0]) {
        char m[sizeof(soft_first)];
        memcpy(m, soft_first, sizeof(m));
        soft_first[0] = 0;
        fail_msg("soft finding: %s", m);
    }
}

static ck_world *mk(unsigned replicas, int roles, double band, uint64_t seed)
{
    shardz_sharder_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.kind = "replica";
    cfg.replicas = replicas;
    cfg.roles = roles;
    cfg.band = band;
    cfg.seed = seed;
    int rc = 0;
    ck_world *w = ck_new(&cfg, &rc);
    assert_int_equal(rc, 0);
    assert_non_null(w);
    return w;
}

static shardz_sharder_stats stats_of(ck_world *w)
{
    shardz_sharder_stats st;
    memset(&st, 0, sizeof(st));
    shardz_sharder_get_stats(ck_sharder(w), &st);
    return st;
}

static size_t plan_moves_and_free(shardz_plan *p)
{
    size_t n = shardz_plan_count(p);
    shardz_plan_free(p);
    return n;
}

/* Number of distinct zones a partition's replicas use. */
static size_t zones_used(ck_world *w, const char *part)
{
    shardz_replica r[SHARDZ_MAX_REPLICAS];
    size_t n = 0;
    assert_int_equal(
        shardz_sharder_nodes_of_partition(ck_sharder(w), part, r, SHARDZ_MAX_REPLICAS, &n), 0);
    const char *seen[SHARDZ_MAX_REPLICAS];
    size_t ns = 0;
    for (size_t i = 0; i < n; i++) {
        const char *z = ck_node_zone(w, r[i].node);
        assert_non_null(z);
        size_t j = 0;
        while (j < ns && strcmp(seen[j], z) != 0) {
            j++;
        }
        if (j == ns) {
            seen[ns++] = z;
        }
    }
    return ns;
}

/* ---- (2) distinct nodes --------------------------------------------------------------------- */

static void test_distinct_nodes(void **state)
{
    (void)state;
    static const struct {
        size_t p, n;
        unsigned r;
    } cases[] = {{1, 1, 1},    {10, 3, 3}, {100, 4, 3}, {50, 5, 5},
                 {40, 16, 16}, {7, 9, 2},  {300, 20, 4}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char ctx[64];
        snprintf(ctx, sizeof(ctx), "case %zu (P %zu N %zu R %u)", c, cases[c].p, cases[c].n,
                 cases[c].r);
        ck_world *w = mk(cases[c].r, 0, 0, c);
        assert_int_equal(ck_add_nodes_n(w, "n", 0, cases[c].n, 0, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, cases[c].p, 0, -1), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        shardz_sharder_stats st = stats_of(w);
        assert_int_equal(st.missing, 0);
        assert_int_equal(st.replicas, cases[c].p * cases[c].r);
        assert_int_equal(ck_last_step(w)->plan_moves, cases[c].p * cases[c].r);
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

/* ---- (3) zone spread ------------------------------------------------------------------------ */

static void test_zone_spread(void **state)
{
    (void)state;
    /* zone sizes (0-terminated), R, P, and whether every partition reaches min(R, Z) zones */
    static const struct {
        size_t sizes[6];
        unsigned r;
        size_t p;
    } cases[] = {
        {{2, 2, 2}, 3, 60}, {{3, 3}, 2, 50},       {{2, 2, 2}, 2, 60},       {{4, 4}, 3, 40},
        {{1, 1, 1}, 3, 10}, {{1, 5}, 4, 20},       {{2, 2, 2, 2, 2}, 4, 50}, {{3, 1, 2}, 3, 30},
        {{5, 5, 5}, 1, 90}, {{2, 2, 2, 2}, 6, 40},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char ctx[64];
        snprintf(ctx, sizeof(ctx), "case %zu (R %u P %zu)", c, cases[c].r, cases[c].p);
        ck_world *w = mk(cases[c].r, 0, 0, 100 + c);
        size_t z = 0, id = 0, minsize = SIZE_MAX;
        for (; cases[c].sizes[z]; z++) {
            char zone[32];
            snprintf(zone, sizeof(zone), "zone-%zu", z);
            for (size_t k = 0; k < cases[c].sizes[z]; k++) {
                char nid[32];
                snprintf(nid, sizeof(nid), "n%zu", id++);
                assert_int_equal(ck_add_node(w, nid, zone, 0, SHARDZ_NODE_ALIVE), 0);
            }
            minsize = cases[c].sizes[z] < minsize ? cases[c].sizes[z] : minsize;
        }
        assert_int_equal(ck_add_parts_n(w, "p", 0, cases[c].p, 0, -1), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        assert_true(ck_last_step(w)->zones_checked);
        size_t want = cases[c].r < z ? cases[c].r : z;
        for (size_t i = 0; i < cases[c].p; i++) {
            char pid[32];
            snprintf(pid, sizeof(pid), "p%zu", i);
            assert_int_equal(zones_used(w, pid), want);
        }
        if (minsize * z >= cases[c].r && minsize >= (cases[c].r + z - 1) / z) {
            assert_int_equal(stats_of(w).zone_violations, 0);
        }
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

/* ---- (4) capacity --------------------------------------------------------------------------- */

static void test_capacity(void **state)
{
    (void)state;
    /* a: unequal capacities, feasible: weighted shares */
    {
        ck_world *w = mk(1, 0, 0, 1);
        const double caps[] = {10, 20, 30, 40};
        for (size_t i = 0; i < 4; i++) {
            char id[32];
            snprintf(id, sizeof(id), "n%zu", i);
            assert_int_equal(ck_add_node(w, id, NULL, caps[i], SHARDZ_NODE_ALIVE), 0);
        }
        assert_int_equal(ck_add_parts_n(w, "p", 0, 50, 1, 1.0), 0);
        CK("capacity a", ck_rebalance(w, 0, NULL));
        assert_int_equal(stats_of(w).missing, 0);
        note_soft(__func__, w);
        ck_free(w);
    }
    /* b: not enough capacity: slots stay vacant, nothing over capacity */
    {
        ck_world *w = mk(1, 0, 0, 2);
        assert_int_equal(ck_add_nodes_n(w, "n", 0, 3, 0, 5.0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, 20, 1, 1.0), 0);
        shardz_plan *plan = NULL;
        CK("capacity b", ck_rebalance(w, 0, &plan));
        assert_int_equal(shardz_plan_missing(plan), 5);
        assert_int_equal(shardz_plan_count(plan), 15);
        shardz_plan_free(plan);
        assert_int_equal(stats_of(w).missing, 5);
        for (size_t i = 0; i < 3; i++) {
            char id[32];
            snprintf(id, sizeof(id), "n%zu", i);
            assert_int_equal(ck_node_count(w, id), 5);
        }
        note_soft(__func__, w);
        ck_free(w);
    }
    /* c: two dimensions, dimension 1 exactly full */
    {
        shardz_sharder_config cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.replicas = 1;
        cfg.ndims = 2;
        ck_world *w = ck_new(&cfg, NULL);
        assert_non_null(w);
        for (size_t i = 0; i < 4; i++) {
            shardz_node_spec sp;
            memset(&sp, 0, sizeof(sp));
            char id[32];
            snprintf(id, sizeof(id), "n%zu", i);
            sp.id = id;
            sp.ncapacity = 2;
            sp.capacity[0] = 1000;
            sp.capacity[1] = 10;
            sp.state = SHARDZ_NODE_ALIVE;
            assert_int_equal(ck_add_nodes(w, &sp, 1), 0);
        }
        for (size_t i = 0; i < 40; i++) {
            shardz_partition_spec ps;
            memset(&ps, 0, sizeof(ps));
            char id[32];
            snprintf(id, sizeof(id), "p%zu", i);
            ps.id = id;
            ps.nload = 2;
            ps.load[0] = 1.0 + (double)(i % 7); /* unequal in dimension 0 */
            ps.load[1] = 1.0;
            assert_int_equal(ck_add_parts(w, &ps, 1), 0);
        }
        CK("capacity c", ck_rebalance(w, 0, NULL));
        assert_int_equal(stats_of(w).missing, 0);
        for (size_t i = 0; i < 4; i++) {
            char id[32];
            snprintf(id, sizeof(id), "n%zu", i);
            assert_true(ck_node_load(w, id, 1) <= 10.0 + 1e-9);
        }
        note_soft(__func__, w);
        ck_free(w);
    }
    /* d: one heavy partition fits on one node only */
    {
        ck_world *w = mk(1, 0, 0, 4);
        assert_int_equal(ck_add_nodes_n(w, "n", 0, 4, 0, 40.0), 0);
        assert_int_equal(ck_add_node(w, "big", NULL, 60.0, SHARDZ_NODE_ALIVE), 0);
        assert_int_equal(ck_add_part(w, "heavy", 1, 50.0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, 20, 1, 1.0), 0);
        CK("capacity d", ck_rebalance(w, 0, NULL));
        const char *at = ck_slot_node(w, "heavy", 0);
        assert_non_null(at);
        assert_string_equal(at, "big");
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

/* ---- (5) balance ---------------------------------------------------------------------------- */

static void test_balance_equal(void **state)
{
    (void)state;
    static const struct {
        size_t p, n, z;
        unsigned r;
    } cases[] = {{100, 7, 0, 1}, {1000, 13, 0, 3}, {10, 7, 0, 3},  {999, 10, 0, 2},  {1, 5, 0, 1},
                 {600, 9, 3, 3}, {500, 12, 3, 2},  {400, 8, 4, 4}, {2000, 60, 5, 4}, {77, 6, 2, 1}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char ctx[80];
        snprintf(ctx, sizeof(ctx), "case %zu (P %zu N %zu Z %zu R %u)", c, cases[c].p, cases[c].n,
                 cases[c].z, cases[c].r);
        ck_world *w = mk(cases[c].r, 0, 0, 200 + c);
        ck_options(w)->zone_extras_global = true;
        assert_int_equal(ck_add_nodes_n(w, "n", 0, cases[c].n, cases[c].z, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, cases[c].p, 0, -1), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        assert_true(ck_last_step(w)->balance_checked);
        assert_true(ck_last_step(w)->balance_global);
        shardz_sharder_stats st = stats_of(w);
        assert_true(st.max_count - st.min_count <= 1);
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

static void test_balance_weighted(void **state)
{
    (void)state;
    static const struct {
        double caps[8];
        size_t p;
        unsigned r;
    } cases[] = {
        {{100, 200, 300}, 120, 1},
        {{100, 200, 300, 400}, 300, 2},
        {{500, 500, 1000, 1000, 2000}, 250, 3},
        {{300, 100, 100, 100, 100, 100}, 200, 1},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char ctx[64];
        snprintf(ctx, sizeof(ctx), "case %zu", c);
        ck_world *w = mk(cases[c].r, 0, 0, 300 + c);
        for (size_t i = 0; i < 8 && cases[c].caps[i] > 0; i++) {
            char id[32];
            snprintf(id, sizeof(id), "n%zu", i);
            assert_int_equal(ck_add_node(w, id, NULL, cases[c].caps[i], SHARDZ_NODE_ALIVE), 0);
        }
        assert_int_equal(ck_add_parts_n(w, "p", 0, cases[c].p, 0, -1), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        assert_true(ck_last_step(w)->balance_checked);
        /* a node with twice the capacity gets about twice the replicas */
        if (c == 0) {
            assert_int_equal(ck_node_count(w, "n0"), 20);
            assert_int_equal(ck_node_count(w, "n1"), 40);
            assert_int_equal(ck_node_count(w, "n2"), 60);
        }
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

/* Log-normal loads from a fixed seed: mu 0, sigma 1. */
static double lognormal(ck_rng *r)
{
    double u1 = ck_rng_unit(r), u2 = ck_rng_unit(r);
    if (u1 < 1e-300) {
        u1 = 1e-300;
    }
    double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return exp(z);
}

static void test_balance_loads(void **state)
{
    (void)state;
    static const struct {
        size_t p, n, z;
        unsigned r;
    } cases[] = {{500, 10, 0, 1}, {500, 10, 0, 2}, {300, 9, 3, 3}, {200, 7, 0, 3}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char ctx[64];
        snprintf(ctx, sizeof(ctx), "case %zu", c);
        ck_world *w = mk(cases[c].r, 0, 0, 400 + c);
        ck_rng rng = {400 + c};
        assert_int_equal(ck_add_nodes_n(w, "n", 0, cases[c].n, cases[c].z, 0), 0);
        for (size_t i = 0; i < cases[c].p; i++) {
            char id[32];
            snprintf(id, sizeof(id), "p%zu", i);
            assert_int_equal(ck_add_part(w, id, 0, lognormal(&rng)), 0);
        }
        CK(ctx, ck_rebalance(w, 0, NULL));
        assert_true(ck_last_step(w)->balance_checked);
        /* then the loads shift, and the next rebalance restores the bound */
        for (size_t i = 0; i < cases[c].p; i += 3) {
            char id[32];
            snprintf(id, sizeof(id), "p%zu", i);
            double l = lognormal(&rng) * 3;
            assert_int_equal(ck_set_load(w, id, &l, 1), 0);
        }
        CK(ctx, ck_rebalance(w, 0, NULL));
        assert_true(ck_last_step(w)->balance_checked);
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

/* New replicas go to the least loaded eligible node. */
static void test_new_least_loaded(void **state)
{
    (void)state;
    static const struct {
        size_t p, n;
    } cases[] = {{12, 5}, {7, 3}, {101, 10}, {1, 4}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char ctx[64];
        snprintf(ctx, sizeof(ctx), "case %zu", c);
        ck_world *w = mk(1, 0, 0, 500 + c);
        assert_int_equal(ck_add_nodes_n(w, "n", 0, cases[c].n, 0, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, cases[c].p, 0, -1), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        long minc = -1;
        for (size_t i = 0; i < cases[c].n; i++) {
            char id[32];
            snprintf(id, sizeof(id), "n%zu", i);
            long k = ck_node_count(w, id);
            minc = minc < 0 || k < minc ? k : minc;
        }
        assert_int_equal(ck_add_part(w, "extra", 1, -1), 0);
        shardz_plan *plan = NULL;
        CK(ctx, ck_rebalance(w, 0, &plan));
        assert_int_equal(shardz_plan_count(plan), 1);
        assert_int_equal(shardz_plan_count_reason(plan, SHARDZ_REASON_NEW), 1);
        shardz_plan_free(plan);
        const char *at = ck_slot_node(w, "extra", 0);
        assert_non_null(at);
        assert_int_equal(ck_node_count(w, at), minc + 1);
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

/* ---- (6)(7) leave, dead, drain, join -------------------------------------------------------- */

static void test_leave(void **state)
{
    (void)state;
    static const struct {
        size_t p, n, z;
        unsigned r;
        shardz_reason reason;
    } cases[] = {{1000, 10, 0, 3, SHARDZ_REASON_LEAVE},  {1000, 10, 0, 3, SHARDZ_REASON_NODE_DEAD},
                 {200, 12, 3, 3, SHARDZ_REASON_LEAVE},   {300, 8, 4, 2, SHARDZ_REASON_LEAVE},
                 {50, 5, 0, 1, SHARDZ_REASON_NODE_DEAD}, {500, 9, 3, 2, SHARDZ_REASON_LEAVE}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char ctx[80];
        snprintf(ctx, sizeof(ctx), "case %zu (P %zu N %zu Z %zu R %u)", c, cases[c].p, cases[c].n,
                 cases[c].z, cases[c].r);
        ck_world *w = mk(cases[c].r, 0, 0, 600 + c);
        assert_int_equal(ck_add_nodes_n(w, "n", 0, cases[c].n, cases[c].z, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, cases[c].p, 0, -1), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        long held = ck_node_count(w, "n1");
        assert_true(held > 0);
        assert_int_equal(ck_remove_node(w, "n1", cases[c].reason), 0);
        /* its replicas stop counting at once */
        CK(ctx, ck_check_now(w, false));
        assert_int_equal(stats_of(w).missing, (size_t)held);
        shardz_plan *plan = NULL;
        CK(ctx, ck_rebalance(w, 0, &plan));
        assert_true(ck_last_step(w)->pure_leave);
        if (!ck_last_step(w)->movement_checked) {
            fail_msg("%s: the leave oracle found no leavers-only placement (%d)", ctx,
                     ck_last_step(w)->leave_oracle);
        }
        assert_int_equal(shardz_plan_count(plan), (size_t)held);
        assert_int_equal(shardz_plan_count_reason(plan, cases[c].reason), (size_t)held);
        for (size_t i = 0; i < shardz_plan_count(plan); i++) {
            shardz_move m;
            shardz_plan_move(plan, i, &m);
            assert_non_null(m.from);
            assert_string_equal(m.from, "n1");
        }
        shardz_plan_free(plan);
        assert_int_equal(stats_of(w).missing, 0);
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

static void test_dead_and_drain_states(void **state)
{
    (void)state;
    static const struct {
        shardz_node_state st;
        shardz_reason reason;
        size_t z;
    } cases[] = {{SHARDZ_NODE_DEAD, SHARDZ_REASON_NODE_DEAD, 0},
                 {SHARDZ_NODE_DRAINING, SHARDZ_REASON_DRAIN, 0},
                 {SHARDZ_NODE_DEAD, SHARDZ_REASON_NODE_DEAD, 3},
                 {SHARDZ_NODE_DRAINING, SHARDZ_REASON_DRAIN, 3}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char ctx[64];
        snprintf(ctx, sizeof(ctx), "case %zu", c);
        ck_world *w = mk(3, 0, 0, 700 + c);
        assert_int_equal(ck_add_nodes_n(w, "n", 0, 9, cases[c].z, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, 300, 0, -1), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        long held = ck_node_count(w, "n4");
        assert_int_equal(ck_set_state(w, "n4", cases[c].st), 0);
        assert_int_equal(stats_of(w).eligible_nodes, 8);
        shardz_plan *plan = NULL;
        CK(ctx, ck_rebalance(w, 0, &plan));
        assert_int_equal(shardz_plan_count(plan), (size_t)held);
        assert_int_equal(shardz_plan_count_reason(plan, cases[c].reason), (size_t)held);
        shardz_plan_free(plan);
        assert_int_equal(ck_node_count(w, "n4"), 0); /* still registered, holds nothing */
        assert_int_equal(stats_of(w).nodes, 9);
        /* a second rebalance has nothing to do */
        CK(ctx, ck_rebalance(w, 0, &plan));
        assert_int_equal(plan_moves_and_free(plan), 0);
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

static void test_join(void **state)
{
    (void)state;
    static const struct {
        size_t p, n, z, k;
        unsigned r;
    } cases[] = {{1000, 10, 0, 1, 3}, {1000, 10, 0, 3, 3}, {600, 9, 3, 3, 3}, {100, 4, 0, 1, 1},
                 {50, 50, 0, 1, 2},   {2000, 20, 0, 2, 2}, {300, 6, 2, 2, 2}, {10, 3, 0, 5, 1}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        char ctx[80];
        snprintf(ctx, sizeof(ctx), "case %zu (P %zu N %zu Z %zu +%zu R %u)", c, cases[c].p,
                 cases[c].n, cases[c].z, cases[c].k, cases[c].r);
        ck_world *w = mk(cases[c].r, 0, 0, 800 + c);
        assert_int_equal(ck_add_nodes_n(w, "n", 0, cases[c].n, cases[c].z, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, cases[c].p, 0, -1), 0);
        CK(ctx, ck_rebalance(w, 0, NULL));
        assert_int_equal(ck_add_nodes_n(w, "j", 0, cases[c].k, cases[c].z, 0), 0);
        shardz_plan *plan = NULL;
        CK(ctx, ck_rebalance(w, 0, &plan));
        assert_true(ck_last_step(w)->pure_join);
        assert_true(ck_last_step(w)->movement_checked);
        size_t moves = shardz_plan_count(plan);
        assert_int_equal(shardz_plan_count_reason(plan, SHARDZ_REASON_JOIN), moves);
        shardz_plan_free(plan);
        /* the joiners got at least floor(fair share) */
        double share = (double)(cases[c].p * cases[c].r) / (double)(cases[c].n + cases[c].k);
        for (size_t j = 0; j < cases[c].k; j++) {
            char id[32];
            snprintf(id, sizeof(id), "j%zu", j);
            assert_true(ck_node_count(w, id) >= (long)floor(share));
        }
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

/* The checker's leave oracle itself: with D's partitions all paired with A, D's replicas can
 * only go to B and C, so "only the leaver's replicas move" cannot keep A within one of the
 * others (oracle 0, neither asserted); with them spread over A, B, C it can (oracle 1). */
static void test_leave_oracle(void **state)
{
    (void)state;
    for (int spread = 0; spread < 2; spread++) {
        ck_world *w = mk(2, 0, 0, 950);
        static const char *ids[4] = {"A", "B", "C", "D"};
        for (size_t i = 0; i < 4; i++) {
            assert_int_equal(ck_add_node(w, ids[i], NULL, 0, SHARDZ_NODE_ALIVE), 0);
        }
        for (size_t i = 0; i < 20; i++) {
            const char *pair[2];
            if (i < 10) {
                pair[0] = spread ? ids[i % 3] : "A";
                pair[1] = "D";
            } else {
                pair[0] = spread ? ids[(i + 1) % 3] : "B";
                pair[1] = spread ? ids[(i + 2) % 3] : "C";
            }
            shardz_partition_spec ps;
            memset(&ps, 0, sizeof(ps));
            char id[32];
            snprintf(id, sizeof(id), "p%zu", i);
            ps.id = id;
            ps.nnodes = 2;
            ps.nodes = pair;
            assert_int_equal(ck_add_parts(w, &ps, 1), 0);
        }
        CK("oracle", ck_rebalance(w, 0, NULL));
        assert_int_equal(ck_node_count(w, "D"), 10);
        assert_int_equal(ck_remove_node(w, "D", SHARDZ_REASON_LEAVE), 0);
        CK("oracle", ck_rebalance(w, 0, NULL));
        assert_int_equal(ck_last_step(w)->leave_oracle, spread ? 1 : 0);
        note_soft(__func__, w);
        ck_free(w);
    }
    expect_no_soft();
}

/* Work stealing after partitions leave (reason rebalance). */
static void test_partition_removal(void **state)
{
    (void)state;
    ck_world *w = mk(1, 0, 0, 900);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 5, 0, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 100, 0, -1), 0);
    CK("removal", ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_node_count(w, "n0"), 20);
    shardz_replica r[32];
    size_t n = 0;
    assert_int_equal(shardz_sharder_partitions_of_node(ck_sharder(w), "n0", r, 32, &n), 0);
    assert_int_equal(n, 20);
    const char *ids[15];
    char buf[15][32];
    for (size_t i = 0; i < 15; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%s", r[i].partition);
        ids[i] = buf[i];
    }
    assert_int_equal(ck_remove_parts(w, ids, 15), 0);
    CK("removal", ck_check_now(w, false));
    assert_int_equal(ck_node_count(w, "n0"), 5);
    shardz_plan *plan = NULL;
    CK("removal", ck_rebalance(w, 0, &plan));
    size_t moves = shardz_plan_count(plan);
    /* 85 over 5 nodes: 17 each; n0 must gain 12, the minimum */
    assert_int_equal(moves, 12);
    assert_int_equal(shardz_plan_count_reason(plan, SHARDZ_REASON_REBALANCE), moves);
    shardz_plan_free(plan);
    assert_int_equal(ck_node_count(w, "n0"), 17);
    note_soft(__func__, w);
    ck_free(w);
    expect_no_soft();
}

/* Suspect nodes keep their replicas and get no new ones; joining nodes get none. */
static void test_suspect_and_joining(void **state)
{
    (void)state;
    ck_world *w = mk(2, 0, 0, 1000);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 6, 0, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 60, 0, -1), 0);
    CK("suspect", ck_rebalance(w, 0, NULL));
    long held = ck_node_count(w, "n0");
    assert_int_equal(held, 20);
    assert_int_equal(ck_set_state(w, "n0", SHARDZ_NODE_SUSPECT), 0);
    shardz_plan *plan = NULL;
    CK("suspect", ck_rebalance(w, 0, &plan));
    assert_int_equal(plan_moves_and_free(plan), 0);
    assert_int_equal(ck_add_parts_n(w, "q", 0, 30, 0, -1), 0);
    CK("suspect", ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_node_count(w, "n0"), held);
    assert_int_equal(ck_remove_node(w, "n1", SHARDZ_REASON_NODE_DEAD), 0);
    CK("suspect", ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_node_count(w, "n0"), held);
    /* back alive: it may receive again */
    assert_int_equal(ck_set_state(w, "n0", SHARDZ_NODE_ALIVE), 0);
    CK("suspect", ck_rebalance(w, 0, NULL));

    /* joining */
    assert_int_equal(ck_add_node(w, "late", NULL, 0, SHARDZ_NODE_JOINING), 0);
    assert_int_equal(ck_add_parts_n(w, "r", 0, 40, 0, -1), 0);
    CK("joining", ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_node_count(w, "late"), 0);
    assert_int_equal(ck_set_state(w, "late", SHARDZ_NODE_ALIVE), 0);
    CK("joining", ck_rebalance(w, 0, NULL));
    assert_true(ck_node_count(w, "late") >= (long)((60 + 30 + 40) * 2 / 6));
    note_soft(__func__, w);
    ck_free(w);
    expect_no_soft();
}

/* Roles: slot 0 is the primary (the checker verifies every replica's role). */
static void test_roles(void **state)
{
    (void)state;
    ck_world *w = mk(3, 1, 0, 1100);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 6, 3, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 50, 0, -1), 0);
    CK("roles", ck_rebalance(w, 0, NULL));
    shardz_replica r[SHARDZ_MAX_REPLICAS];
    size_t n = 0;
    assert_int_equal(
        shardz_sharder_nodes_of_partition(ck_sharder(w), "p7", r, SHARDZ_MAX_REPLICAS, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].slot, 0);
    assert_int_equal(r[0].role, SHARDZ_ROLE_PRIMARY);
    assert_int_equal(r[1].role, SHARDZ_ROLE_SECONDARY);
    assert_int_equal(ck_remove_node(w, r[0].node, SHARDZ_REASON_NODE_DEAD), 0);
    CK("roles", ck_rebalance(w, 0, NULL));
    note_soft(__func__, w);
    ck_free(w);
    expect_no_soft();
}

/* ---- plans: dry run, apply, stale --------------------------------------------------------- */

static void build_pair(ck_world **a, ck_world **b)
{
    *a = mk(3, 0, 0, 1200);
    *b = mk(3, 0, 0, 1200);
    ck_world *ws[2] = {*a, *b};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(ck_add_nodes_n(ws[i], "n", 0, 8, 2, 0), 0);
        assert_int_equal(ck_add_parts_n(ws[i], "p", 0, 200, 0, -1), 0);
    }
}

static void test_dry_run_apply(void **state)
{
    (void)state;
    ck_world *a, *b;
    build_pair(&a, &b);
    shardz_plan *plan = NULL;
    CK("dry", ck_rebalance(a, SHARDZ_PLAN_DRY_RUN, &plan));
    assert_int_equal(shardz_plan_count(plan), 600);
    assert_int_equal(stats_of(a).replicas, 0); /* nothing applied */
    CK("dry", ck_apply(a, plan));
    CK("dry", ck_apply_stale(a, plan)); /* applying twice: stale */
    shardz_plan_free(plan);
    CK("non-dry", ck_rebalance(b, 0, NULL));
    CK("dry vs non-dry", ck_same_state(a, b));

    /* a change between the dry run and the apply makes the plan stale */
    for (size_t i = 0; i < 2; i++) {
        ck_world *w = i ? b : a;
        assert_int_equal(ck_remove_node(w, "n3", SHARDZ_REASON_LEAVE), 0);
    }
    CK("dry", ck_rebalance(a, SHARDZ_PLAN_DRY_RUN, &plan));
    assert_int_equal(ck_add_part(a, "late", 0, -1), 0);
    CK("stale after a partition add", ck_apply_stale(a, plan));
    shardz_plan_free(plan);
    static const struct {
        int what;
    } changes[] = {{0}, {1}, {2}, {3}};
    for (size_t c = 0; c < sizeof(changes) / sizeof(changes[0]); c++) {
        CK("dry", ck_rebalance(a, SHARDZ_PLAN_DRY_RUN, &plan));
        char id[32];
        snprintf(id, sizeof(id), "x%zu", c);
        double l = 2.0;
        switch (changes[c].what) {
        case 0:
            assert_int_equal(ck_add_node(a, id, "z0", 0, SHARDZ_NODE_JOINING), 0);
            break;
        case 1:
            assert_int_equal(ck_set_load(a, "p1", &l, 1), 0);
            assert_int_equal(ck_set_load(a, "p1", (double[]){1.0}, 1), 0);
            break;
        case 2:
            assert_int_equal(ck_set_state(a, "n0", SHARDZ_NODE_SUSPECT), 0);
            assert_int_equal(ck_set_state(a, "n0", SHARDZ_NODE_ALIVE), 0);
            break;
        default:
            assert_int_equal(ck_remove_node(a, "x0", SHARDZ_REASON_LEAVE), 0);
            break;
        }
        CK("stale", ck_apply_stale(a, plan));
        shardz_plan_free(plan);
    }
    /* finally a fresh dry run applies (the checker replays it over the last applied state) */
    CK("dry", ck_rebalance(a, SHARDZ_PLAN_DRY_RUN, &plan));
    CK("apply", ck_apply(a, plan));
    shardz_plan_free(plan);
    note_soft(__func__, a);
    ck_free(a);
    note_soft(__func__, b);
    ck_free(b);
    expect_no_soft();
}

/* ---- generations, presets, determinism ------------------------------------------------------ */

static uint64_t gen_of(ck_world *w, const char *part)
{
    uint64_t g = 0;
    assert_int_equal(shardz_sharder_generation(ck_sharder(w), part, &g), 0);
    return g;
}

static void test_generations(void **state)
{
    (void)state;
    ck_world *w = mk(2, 0, 0, 1300);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 5, 0, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 40, 0, -1), 0);
    CK("gen", ck_rebalance(w, 0, NULL));
    for (size_t i = 0; i < 40; i++) {
        char id[32];
        snprintf(id, sizeof(id), "p%zu", i);
        assert_true(gen_of(w, id) >= 1);
    }
    /* the checker asserts: bumped exactly where the assignment changed */
    assert_int_equal(ck_remove_node(w, "n2", SHARDZ_REASON_NODE_DEAD), 0);
    CK("gen", ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_add_nodes_n(w, "m", 0, 2, 0, 0), 0);
    CK("gen", ck_rebalance(w, 0, NULL));
    /* a preset generation is kept */
    shardz_partition_spec ps;
    memset(&ps, 0, sizeof(ps));
    const char *nodes[2] = {"n0", "n1"};
    ps.id = "restored";
    ps.replicas = 2;
    ps.nnodes = 2;
    ps.nodes = nodes;
    ps.generation = 42;
    assert_int_equal(ck_add_parts(w, &ps, 1), 0);
    assert_int_equal(gen_of(w, "restored"), 42);
    CK("gen", ck_check_now(w, false));
    assert_string_equal(ck_slot_node(w, "restored", 0), "n0");
    assert_string_equal(ck_slot_node(w, "restored", 1), "n1");
    CK("gen", ck_rebalance(w, 0, NULL));
    assert_true(gen_of(w, "restored") >= 42);
    note_soft(__func__, w);
    ck_free(w);
    expect_no_soft();
}

static void test_presets(void **state)
{
    (void)state;
    /* a balanced preset assignment: nothing to do */
    ck_world *w = mk(2, 0, 0, 1400);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 4, 0, 0), 0);
    static const char *pairs[6][2] = {{"n0", "n1"}, {"n2", "n3"}, {"n0", "n2"},
                                      {"n1", "n3"}, {"n0", "n3"}, {"n1", "n2"}};
    for (size_t i = 0; i < 6; i++) {
        shardz_partition_spec ps;
        memset(&ps, 0, sizeof(ps));
        char id[32];
        snprintf(id, sizeof(id), "p%zu", i);
        ps.id = id;
        ps.nnodes = 2;
        ps.nodes = pairs[i];
        ps.generation = 5;
        assert_int_equal(ck_add_parts(w, &ps, 1), 0);
    }
    shardz_plan *plan = NULL;
    CK("presets balanced", ck_rebalance(w, 0, &plan));
    assert_int_equal(plan_moves_and_free(plan), 0);
    assert_int_equal(gen_of(w, "p0"), 5);

    /* a preset with a vacant slot is filled; a lopsided preset is rebalanced */
    const char *half[2] = {"n0", NULL};
    shardz_partition_spec ps;
    memset(&ps, 0, sizeof(ps));
    ps.id = "half";
    ps.nnodes = 2;
    ps.nodes = half;
    assert_int_equal(ck_add_parts(w, &ps, 1), 0);
    for (size_t i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof(id), "q%zu", i);
        memset(&ps, 0, sizeof(ps));
        ps.id = id;
        ps.nnodes = 2;
        ps.nodes = pairs[0];
        assert_int_equal(ck_add_parts(w, &ps, 1), 0);
    }
    CK("presets lopsided", ck_rebalance(w, 0, NULL));
    assert_non_null(ck_slot_node(w, "half", 1));
    assert_true(ck_last_step(w)->balance_checked);
    note_soft(__func__, w);
    ck_free(w);
    expect_no_soft();
}

static void test_determinism(void **state)
{
    (void)state;
    ck_world *a = mk(3, 0, 0, 77), *b = mk(3, 0, 0, 77);
    for (size_t i = 0; i < 2; i++) {
        ck_world *w = i ? b : a;
        assert_int_equal(ck_add_nodes_n(w, "n", 0, 12, 3, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, 500, 0, -1), 0);
        CK("det", ck_rebalance(w, 0, NULL));
    }
    CK("det initial", ck_same_state(a, b));
    for (size_t i = 0; i < 2; i++) {
        ck_world *w = i ? b : a;
        assert_int_equal(ck_remove_node(w, "n5", SHARDZ_REASON_LEAVE), 0);
        CK("det", ck_rebalance(w, 0, NULL));
        assert_int_equal(ck_add_nodes_n(w, "m", 0, 2, 3, 0), 0);
        CK("det", ck_rebalance(w, 0, NULL));
    }
    CK("det after leave and join", ck_same_state(a, b));
    note_soft(__func__, a);
    ck_free(a);
    note_soft(__func__, b);
    ck_free(b);
    expect_no_soft();
}

/* Not enough nodes: slots stay vacant, and are repaired when nodes come. Zone loss. */
static void test_missing_and_zone_loss(void **state)
{
    (void)state;
    ck_world *w = mk(3, 0, 0, 1500);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 3, 0, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 10, 0, -1), 0);
    CK("missing", ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_remove_node(w, "n2", SHARDZ_REASON_LEAVE), 0);
    shardz_plan *plan = NULL;
    CK("missing", ck_rebalance(w, 0, &plan));
    assert_int_equal(shardz_plan_missing(plan), 10);
    for (size_t i = 0; i < shardz_plan_count(plan); i++) {
        shardz_move m; /* at most a record that the leaver's slot is now vacant */
        shardz_plan_move(plan, i, &m);
        assert_null(m.to);
        assert_string_equal(m.from, "n2");
        assert_int_equal(m.reason, SHARDZ_REASON_LEAVE);
    }
    shardz_plan_free(plan);
    assert_int_equal(stats_of(w).missing, 10);
    assert_int_equal(ck_add_node(w, "n3", NULL, 0, SHARDZ_NODE_ALIVE), 0);
    CK("repair", ck_rebalance(w, 0, &plan));
    assert_int_equal(shardz_plan_count(plan), 10);
    assert_int_equal(shardz_plan_missing(plan), 0);
    shardz_plan_free(plan);
    assert_int_equal(stats_of(w).missing, 0);
    note_soft(__func__, w);
    ck_free(w);

    /* a whole zone dies: replicas spread over what is left */
    w = mk(3, 0, 0, 1501);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 6, 3, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 60, 0, -1), 0);
    CK("zone loss", ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_set_state(w, "n0", SHARDZ_NODE_DEAD), 0);
    assert_int_equal(ck_set_state(w, "n3", SHARDZ_NODE_DEAD), 0);
    CK("zone loss", ck_rebalance(w, 0, NULL));
    assert_true(ck_last_step(w)->pure_leave);
    for (size_t i = 0; i < 60; i++) {
        char id[32];
        snprintf(id, sizeof(id), "p%zu", i);
        assert_int_equal(zones_used(w, id), 2);
    }
    /* the zone comes back: spread over three zones again */
    assert_int_equal(ck_add_nodes_n(w, "back", 0, 2, 1, 0), 0); /* zone z0 */
    CK("zone back", ck_rebalance(w, 0, NULL));
    for (size_t i = 0; i < 60; i++) {
        char id[32];
        snprintf(id, sizeof(id), "p%zu", i);
        assert_int_equal(zones_used(w, id), 3);
    }
    note_soft(__func__, w);
    ck_free(w);
    expect_no_soft();
}

/* Dead band: with band > 0 fewer moves, within band * share + 1. */
static void test_band(void **state)
{
    (void)state;
    size_t moves[2];
    const double bands[2] = {0.0, 0.5};
    for (size_t b = 0; b < 2; b++) {
        ck_world *w = mk(1, 0, bands[b], 1600);
        assert_int_equal(ck_add_nodes_n(w, "n", 0, 10, 0, 0), 0);
        assert_int_equal(ck_add_parts_n(w, "p", 0, 1000, 0, -1), 0);
        CK("band", ck_rebalance(w, 0, NULL));
        assert_int_equal(ck_add_node(w, "j", NULL, 0, SHARDZ_NODE_ALIVE), 0);
        shardz_plan *plan = NULL;
        CK("band", ck_rebalance(w, 0, &plan));
        moves[b] = plan_moves_and_free(plan);
        note_soft(__func__, w);
        ck_free(w);
    }
    assert_true(moves[1] <= moves[0]);
    assert_true(moves[1] > 0);
    expect_no_soft();
}

/* An id that leaves and comes back before the rebalance is a new node: it holds nothing. */
static void test_reregister_same_id(void **state)
{
    (void)state;
    ck_world *w = mk(2, 0, 0, 1700);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 4, 0, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 40, 0, -1), 0);
    CK("rereg", ck_rebalance(w, 0, NULL));
    assert_int_equal(ck_remove_node(w, "n0", SHARDZ_REASON_LEAVE), 0);
    assert_int_equal(ck_add_node(w, "n0", NULL, 0, SHARDZ_NODE_ALIVE), 0);
    CK("rereg", ck_check_now(w, false));
    assert_int_equal(ck_node_count(w, "n0"), 0);
    assert_int_equal(stats_of(w).missing, 20);
    CK("rereg", ck_rebalance(w, 0, NULL));
    assert_int_equal(stats_of(w).missing, 0);
    note_soft(__func__, w);
    ck_free(w);
    expect_no_soft();
}

/* The query contract: cap smaller than the total, cap 0 to size. */
static void test_query_contract(void **state)
{
    (void)state;
    ck_world *w = mk(3, 0, 0, 1800);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 4, 0, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 8, 0, -1), 0);
    CK("query", ck_rebalance(w, 0, NULL));
    const shardz_sharder *s = ck_sharder(w);
    size_t n = 0;
    assert_int_equal(shardz_sharder_partitions_of_node(s, "n0", NULL, 0, &n), 0);
    assert_int_equal(n, 6);
    shardz_replica out[4];
    memset(out, 0, sizeof(out));
    out[2].slot = 12345;
    assert_int_equal(shardz_sharder_partitions_of_node(s, "n0", out, 2, &n), 0);
    assert_int_equal(n, 6);
    assert_non_null(out[0].partition);
    assert_non_null(out[1].partition);
    assert_int_equal(out[2].slot, 12345);
    assert_int_equal(shardz_sharder_nodes_of_partition(s, "p0", NULL, 0, &n), 0);
    assert_int_equal(n, 3);
    out[1].slot = 999;
    assert_int_equal(shardz_sharder_nodes_of_partition(s, "p0", out, 1, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(out[0].slot, 0);
    assert_int_equal(out[1].slot, 999);
    const char *part = NULL;
    assert_int_equal(shardz_sharder_partition_for_key(s, "k", 1, &part), SHARDZ_ENOTSUP);
    assert_string_equal(shardz_sharder_kind(s), "replica");
    note_soft(__func__, w);
    ck_free(w);

    shardz_sharder_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    shardz_sharder *d = NULL;
    assert_int_equal(shardz_sharder_new(&cfg, &d), 0);
    assert_string_equal(shardz_sharder_kind(d), "replica"); /* NULL kind: replica */
    shardz_sharder_free(d);
    shardz_sharder_free(NULL);
    shardz_plan_free(NULL);
    expect_no_soft();
}

static void test_names(void **state)
{
    (void)state;
    static const char *reasons[] = {"new",      "node-dead", "leave",  "drain",
                                    "join",     "rebalance", "load",   "split",
                                    "operator", "repair",    "handoff"};
    for (int r = 0; r < SHARDZ_REASON__COUNT; r++) {
        assert_string_equal(shardz_reason_name((shardz_reason)r), reasons[r]);
    }
    assert_string_equal(shardz_reason_name(SHARDZ_REASON__COUNT), "unknown");
    static const char *states[] = {"joining", "alive", "suspect", "draining", "dead"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(shardz_node_state_name((shardz_node_state)i), states[i]);
        shardz_node_state st = SHARDZ_NODE_DEAD;
        assert_int_equal(shardz_node_state_parse(states[i], &st), 0);
        assert_int_equal(st, i);
    }
    assert_string_equal(shardz_node_state_name((shardz_node_state)17), "unknown");
    shardz_node_state st = SHARDZ_NODE_ALIVE;
    assert_int_equal(shardz_node_state_parse("zombie", &st), SHARDZ_EINVAL);
    assert_int_equal(st, SHARDZ_NODE_ALIVE);
    expect_no_soft();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distinct_nodes),
        cmocka_unit_test(test_zone_spread),
        cmocka_unit_test(test_capacity),
        cmocka_unit_test(test_balance_equal),
        cmocka_unit_test(test_balance_weighted),
        cmocka_unit_test(test_balance_loads),
        cmocka_unit_test(test_new_least_loaded),
        cmocka_unit_test(test_leave),
        cmocka_unit_test(test_dead_and_drain_states),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_leave_oracle),
        cmocka_unit_test(test_partition_removal),
        cmocka_unit_test(test_suspect_and_joining),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_dry_run_apply),
        cmocka_unit_test(test_generations),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_missing_and_zone_loss),
        cmocka_unit_test(test_band),
        cmocka_unit_test(test_reregister_same_id),
        cmocka_unit_test(test_query_contract),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
