/* The load balancer round (shardz_sharder_balance_round), public API only: one table test per
 * step of the round (hottest node, dimension with the greatest impact, dead band, cooldown,
 * budget, degraded, zones, capacity, dry run, bad policy), and a property test over random
 * seeds: no move breaks a hard rule, max/mean never increases in any dimension, the budget
 * and the cooldown hold over consecutive rounds. */
#include <math.h>
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

/* This cmocka has no assert_double_equal. */
#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

/* ---- a small world mirrored by the test -------------------------------------------------- */

#define W_MAXN 16
#define W_MAXP 512

typedef struct {
    shardz_sharder *s;
    size_t ndims;
    size_t nn, np;
    char nid[W_MAXN][16];
    char zone[W_MAXN][16];
    double cap[W_MAXN][SHARDZ_MAX_DIMS]; /* INFINITY when unlimited */
    shardz_node_state st[W_MAXN];
    char pid[W_MAXP][16];
    double load[W_MAXP][SHARDZ_MAX_DIMS];
    int64_t last[W_MAXP]; /* last move time, SHARDZ_NEVER_MOVED */
} world;

static void w_init(world *w, size_t ndims, unsigned replicas)
{
    memset(w, 0, sizeof *w);
    shardz_sharder_config cfg = {.replicas = replicas, .ndims = ndims};
    w->ndims = ndims;
    assert_int_equal(shardz_sharder_new(&cfg, &w->s), 0);
}

static void w_free(world *w)
{
    shardz_sharder_free(w->s);
}

/* A node; caps NULL (or a non-positive entry) means unlimited. */
static void w_node(world *w, const char *id, const char *zone, const double *caps)
{
    size_t i = w->nn++;
    snprintf(w->nid[i], sizeof w->nid[i], "%s", id);
    snprintf(w->zone[i], sizeof w->zone[i], "%s", zone ? zone : "");
    shardz_node_spec n = {.id = id, .zone = zone, .state = SHARDZ_NODE_ALIVE};
    size_t nc = 0;
    for (size_t d = 0; d < w->ndims; d++) {
        w->cap[i][d] = INFINITY;
        if (caps && caps[d] > 0) {
            w->cap[i][d] = caps[d];
            nc = d + 1;
        }
    }
    n.ncapacity = nc;
    for (size_t d = 0; d < nc; d++) {
        n.capacity[d] = isfinite(w->cap[i][d]) ? w->cap[i][d] : 1e300;
    }
    for (size_t d = 0; d < nc; d++) {
        if (!isfinite(w->cap[i][d])) {
            w->cap[i][d] = 1e300;
        }
    }
    w->st[i] = SHARDZ_NODE_ALIVE;
    assert_int_equal(shardz_sharder_register_nodes(w->s, &n, 1), 0);
}

static size_t w_node_idx(const world *w, const char *id)
{
    for (size_t i = 0; i < w->nn; i++) {
        if (strcmp(w->nid[i], id) == 0) {
            return i;
        }
    }
    fail_msg("unknown node %s", id);
    return 0;
}

/* A partition with a preset assignment (nodes NULL: placed by a rebalance later). */
static void w_part(world *w, const char *id, const double *load, size_t nnodes,
                   const char *const *nodes)
{
    size_t i = w->np++;
    snprintf(w->pid[i], sizeof w->pid[i], "%s", id);
    shardz_partition_spec p = {.id = id,
                               .nload = w->ndims,
                               .nnodes = nnodes,
                               .nodes = nodes,
                               .replicas = nnodes ? (unsigned)nnodes : 0};
    for (size_t d = 0; d < w->ndims; d++) {
        p.load[d] = w->load[i][d] = load[d];
    }
    w->last[i] = SHARDZ_NEVER_MOVED;
    assert_int_equal(shardz_sharder_register_partitions(w->s, &p, 1), 0);
}

static size_t w_part_idx(const world *w, const char *id)
{
    for (size_t i = 0; i < w->np; i++) {
        if (strcmp(w->pid[i], id) == 0) {
            return i;
        }
    }
    fail_msg("unknown partition %s", id);
    return 0;
}

/* One-dimension helpers. */
static void part1(world *w, const char *id, double l, const char *node)
{
    const char *nodes[1] = {node};
    w_part(w, id, &l, 1, nodes);
}

/* Node loads from the queries and the mirrored partition loads. */
static void w_node_loads(world *w, double (*out)[SHARDZ_MAX_DIMS])
{
    shardz_replica r[W_MAXP];
    for (size_t i = 0; i < w->nn; i++) {
        size_t n = 0;
        for (size_t d = 0; d < w->ndims; d++) {
            out[i][d] = 0;
        }
        assert_int_equal(shardz_sharder_partitions_of_node(w->s, w->nid[i], r, W_MAXP, &n), 0);
        assert_true(n <= W_MAXP);
        for (size_t k = 0; k < n; k++) {
            size_t p = w_part_idx(w, r[k].partition);
            for (size_t d = 0; d < w->ndims; d++) {
                out[i][d] += w->load[p][d];
            }
        }
    }
}

/* max/mean per dimension, computed independently: shares weighted by capacity (1 when
 * unlimited) over alive nodes. */
static void w_imbalance(world *w, double *out)
{
    double nl[W_MAXN][SHARDZ_MAX_DIMS];
    w_node_loads(w, nl);
    for (size_t d = 0; d < w->ndims; d++) {
        double total = 0, wsum = 0, mx = 0;
        for (size_t i = 0; i < w->nn; i++) {
            if (w->st[i] == SHARDZ_NODE_ALIVE) {
                total += nl[i][d];
                wsum += w->cap[i][d] < 1e299 ? w->cap[i][d] : 1.0;
            }
        }
        for (size_t i = 0; i < w->nn; i++) {
            if (w->st[i] == SHARDZ_NODE_ALIVE && total > 0) {
                double wt = w->cap[i][d] < 1e299 ? w->cap[i][d] : 1.0;
                double rel = nl[i][d] / (total * wt / wsum);
                if (rel > mx) {
                    mx = rel;
                }
            }
        }
        out[d] = mx;
    }
}

static int64_t w_last(const char *partition, void *ctx)
{
    world *w = ctx;
    return w->last[w_part_idx(w, partition)];
}

static shardz_balance_policy pol_default(void)
{
    shardz_balance_policy p;
    shardz_balance_policy_default(&p);
    return p;
}

/* A round; returns the plan (caller frees) and fills rep. */
static shardz_plan *round_(world *w, const shardz_balance_policy *pol, int64_t now, unsigned flags,
                           shardz_balance_report *rep)
{
    shardz_plan *plan = NULL;
    assert_int_equal(shardz_sharder_balance_round(w->s, pol, now, w_last, w, flags, &plan, rep), 0);
    assert_non_null(plan);
    assert_int_equal(shardz_plan_count(plan), rep->moves);
    assert_true(rep->moves <= rep->budget);
    for (size_t i = 0; i < shardz_plan_count(plan); i++) {
        shardz_move mv;
        shardz_plan_move(plan, i, &mv);
        assert_int_equal(mv.reason, SHARDZ_REASON_LOAD);
        assert_non_null(mv.from);
        assert_non_null(mv.to);
    }
    return plan;
}

/* ---- table tests --------------------------------------------------------------------------- */

/* The first move leaves the most loaded node (relative to its share). */
static void test_hottest_node(void **state)
{
    (void)state;
    world w;
    w_init(&w, 1, 1);
    w_node(&w, "a", NULL, NULL);
    w_node(&w, "b", NULL, NULL);
    w_node(&w, "c", NULL, NULL);
    w_node(&w, "d", NULL, NULL);
    char id[16];
    /* a: 10, b: 6, c: 2, d: 2 (mean 5). */
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "a%d", i);
        part1(&w, id, 1, "a");
    }
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof id, "b%d", i);
        part1(&w, id, 1, "b");
    }
    part1(&w, "c0", 2, "c");
    part1(&w, "d0", 2, "d");
    shardz_balance_policy pol = pol_default();
    pol.max_moves_fraction = 1.0 / 20; /* one move */
    shardz_balance_report rep;
    shardz_plan *plan = round_(&w, &pol, 0, 0, &rep);
    assert_int_equal(rep.moves, 1);
    assert_int_equal(rep.stop, SHARDZ_BALANCE_BUDGET);
    assert_near(rep.before[0], 2.0, 1e-12);
    shardz_move mv;
    shardz_plan_move(plan, 0, &mv);
    assert_string_equal(mv.from, "a");
    assert_true(strcmp(mv.to, "c") == 0 || strcmp(mv.to, "d") == 0);
    shardz_plan_free(plan);

    /* With a larger budget the round reaches the band and stops there. */
    pol.max_moves_fraction = 1;
    plan = round_(&w, &pol, 0, 0, &rep);
    assert_int_equal(rep.stop, SHARDZ_BALANCE_BALANCED);
    double imb[1];
    w_imbalance(&w, imb);
    assert_true(imb[0] <= 1 + pol.band + 1e-12);
    assert_near(imb[0], rep.after[0], 1e-9);
    shardz_plan_free(plan);
    w_free(&w);
}

/* Node a is hot in both dimensions, far more in dimension 1: the move is for dimension 1
 * (a "py" partition). With dimension 1 weighted 0, it is for dimension 0 (a "px"). */
static void build_two_dims(world *w)
{
    w_init(w, 2, 1);
    w_node(w, "a", NULL, NULL);
    w_node(w, "b", NULL, NULL);
    w_node(w, "c", NULL, NULL);
    const char *a[1] = {"a"}, *b[1] = {"b"}, *c[1] = {"c"};
    char id[16];
    for (int i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "px%d", i);
        w_part(w, id, (double[]){1, 0}, 1, a);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "py%d", i);
        w_part(w, id, (double[]){0, 3}, 1, a);
    }
    w_part(w, "q1", (double[]){2.5, 1}, 1, b);
    w_part(w, "q2", (double[]){2.5, 1}, 1, c);
}

static void test_dimension_with_greatest_impact(void **state)
{
    (void)state;
    world w;
    build_two_dims(&w);
    shardz_balance_policy pol = pol_default();
    pol.max_moves_fraction = 0.01; /* one move */
    shardz_balance_report rep;
    shardz_plan *plan = round_(&w, &pol, 0, SHARDZ_PLAN_DRY_RUN, &rep);
    assert_int_equal(rep.moves, 1);
    shardz_move mv;
    shardz_plan_move(plan, 0, &mv);
    assert_string_equal(mv.from, "a");
    assert_memory_equal(mv.partition, "py", 2);
    shardz_plan_free(plan);

    pol.ndims_weight = 2;
    pol.dims_weight[0] = 1;
    pol.dims_weight[1] = 0;
    plan = round_(&w, &pol, 0, SHARDZ_PLAN_DRY_RUN, &rep);
    assert_int_equal(rep.moves, 1);
    shardz_plan_move(plan, 0, &mv);
    assert_string_equal(mv.from, "a");
    assert_memory_equal(mv.partition, "px", 2);
    shardz_plan_free(plan);

    /* Weights beyond the sharder's dimensions: refused. */
    pol.ndims_weight = 3;
    assert_int_equal(shardz_sharder_balance_round(w.s, &pol, 0, NULL, NULL, 0, &plan, NULL),
                     SHARDZ_EINVAL);
    assert_null(plan);
    w_free(&w);
}

/* a at 1.04 of the mean: inside the default band, no move; with band 0.01 it moves. */
static void test_band(void **state)
{
    (void)state;
    world w;
    w_init(&w, 1, 1);
    w_node(&w, "a", NULL, NULL);
    w_node(&w, "b", NULL, NULL);
    w_node(&w, "c", NULL, NULL);
    part1(&w, "big", 10, "a");
    part1(&w, "small", 0.4, "a");
    part1(&w, "pb", 10, "b");
    part1(&w, "pc", 9.6, "c");
    shardz_sharder_stats st0, st1;
    shardz_sharder_get_stats(w.s, &st0);
    shardz_balance_policy pol = pol_default();
    pol.max_moves_fraction = 1;
    shardz_balance_report rep;
    shardz_plan *plan = round_(&w, &pol, 0, 0, &rep);
    assert_int_equal(rep.moves, 0);
    assert_int_equal(rep.stop, SHARDZ_BALANCE_BALANCED);
    assert_near(rep.before[0], 1.04, 1e-12);
    shardz_sharder_get_stats(w.s, &st1);
    assert_int_equal(st0.revision, st1.revision); /* an empty round changes nothing */
    shardz_plan_free(plan);

    pol.band = 0.01;
    plan = round_(&w, &pol, 0, 0, &rep);
    assert_int_equal(rep.moves, 1);
    shardz_move mv;
    shardz_plan_move(plan, 0, &mv);
    assert_string_equal(mv.partition, "small");
    assert_string_equal(mv.to, "c");
    assert_int_equal(rep.stop, SHARDZ_BALANCE_BALANCED);
    assert_near(rep.after[0], 1.0, 1e-12);
    shardz_plan_free(plan);
    w_free(&w);
}

/* The hottest partition moved 1 s ago is skipped; one moved a full cooldown ago is not. */
static void test_cooldown(void **state)
{
    (void)state;
    world w;
    w_init(&w, 1, 1);
    w_node(&w, "a", NULL, NULL);
    w_node(&w, "b", NULL, NULL);
    part1(&w, "hot", 3, "a");
    part1(&w, "warm", 2, "a");
    part1(&w, "cold", 1, "a");
    part1(&w, "pb", 1, "b");
    const int64_t now = 1000000;
    shardz_balance_policy pol = pol_default();
    pol.max_moves_fraction = 0.25; /* one move */
    w.last[w_part_idx(&w, "hot")] = now - 1000;
    w.last[w_part_idx(&w, "warm")] = now - pol.cooldown_ms; /* exactly old enough */
    shardz_balance_report rep;
    shardz_plan *plan = round_(&w, &pol, now, SHARDZ_PLAN_DRY_RUN, &rep);
    assert_int_equal(rep.moves, 1);
    assert_int_equal(rep.cooling, 1);
    shardz_move mv;
    shardz_plan_move(plan, 0, &mv);
    assert_string_equal(mv.partition, "warm");
    shardz_plan_free(plan);

    /* Everything on a cooling (a last move in the future counts as cooling): stuck. */
    w.last[w_part_idx(&w, "warm")] = now - 1;
    w.last[w_part_idx(&w, "cold")] = now + 5;
    plan = round_(&w, &pol, now, 0, &rep);
    assert_int_equal(rep.moves, 0);
    assert_int_equal(rep.cooling, 3);
    assert_int_equal(rep.stop, SHARDZ_BALANCE_STUCK);
    shardz_plan_free(plan);

    /* No callback: nothing is cooling. */
    plan = NULL;
    assert_int_equal(
        shardz_sharder_balance_round(w.s, &pol, now, NULL, NULL, SHARDZ_PLAN_DRY_RUN, &plan, &rep),
        0);
    assert_int_equal(rep.moves, 1);
    shardz_plan_move(plan, 0, &mv);
    assert_string_equal(mv.partition, "hot");
    shardz_plan_free(plan);
    w_free(&w);
}

/* 100 partitions on one of four nodes: 2% is 2 moves; a tiny share still allows 1; 0 none. */
static void test_budget(void **state)
{
    (void)state;
    world w;
    w_init(&w, 1, 1);
    w_node(&w, "a", NULL, NULL);
    w_node(&w, "b", NULL, NULL);
    w_node(&w, "c", NULL, NULL);
    w_node(&w, "d", NULL, NULL);
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof id, "p%d", i);
        part1(&w, id, 1, "a");
    }
    shardz_balance_policy pol = pol_default();
    shardz_balance_report rep;
    shardz_plan *plan = round_(&w, &pol, 0, SHARDZ_PLAN_DRY_RUN, &rep);
    assert_int_equal(rep.budget, 2);
    assert_int_equal(rep.moves, 2);
    assert_int_equal(rep.stop, SHARDZ_BALANCE_BUDGET);
    shardz_plan_free(plan);
    pol.max_moves_fraction = 0.001;
    plan = round_(&w, &pol, 0, SHARDZ_PLAN_DRY_RUN, &rep);
    assert_int_equal(rep.moves, 1);
    shardz_plan_free(plan);
    pol.max_moves_fraction = 0;
    plan = round_(&w, &pol, 0, SHARDZ_PLAN_DRY_RUN, &rep);
    assert_int_equal(rep.moves, 0);
    assert_int_equal(rep.stop, SHARDZ_BALANCE_OFF);
    shardz_plan_free(plan);
    /* Rounds one after another converge, each within its budget, no partition twice. */
    pol.max_moves_fraction = 0.1;
    int64_t now = 0;
    for (int r = 0; r < 20; r++, now += 1000) {
        plan = round_(&w, &pol, now, 0, &rep);
        assert_true(rep.moves <= 10);
        for (size_t i = 0; i < shardz_plan_count(plan); i++) {
            shardz_move mv;
            shardz_plan_move(plan, i, &mv);
            size_t p = w_part_idx(&w, mv.partition);
            assert_true(w.last[p] == SHARDZ_NEVER_MOVED);
            w.last[p] = now;
        }
        shardz_plan_free(plan);
    }
    double imb[1];
    w_imbalance(&w, imb);
    assert_true(imb[0] <= 1.05 + 1e-12);
    w_free(&w);
}

/* No load move while a node that must give replicas away holds some, or a slot is vacant. */
static void test_degraded(void **state)
{
    (void)state;
    static const shardz_node_state bad[] = {SHARDZ_NODE_DEAD, SHARDZ_NODE_DRAINING,
                                            SHARDZ_NODE_SUSPECT};
    for (size_t k = 0; k < 4; k++) {
        world w;
        w_init(&w, 1, 1);
        w_node(&w, "a", NULL, NULL);
        w_node(&w, "b", NULL, NULL);
        w_node(&w, "c", NULL, NULL);
        w_node(&w, "d", NULL, NULL);
        part1(&w, "p0", 1, "a");
        part1(&w, "p1", 1, "a");
        part1(&w, "p2", 1, "a");
        part1(&w, "p3", 1, "d");
        if (k < 3) {
            assert_int_equal(shardz_sharder_set_node_state(w.s, "d", bad[k]), 0);
        } else {
            const char *nodes[2] = {"b", NULL};
            w_part(&w, "vac", (double[]){1}, 2, nodes);
        }
        shardz_balance_policy pol = pol_default();
        pol.max_moves_fraction = 1;
        shardz_balance_report rep;
        shardz_plan *plan = round_(&w, &pol, 0, 0, &rep);
        assert_int_equal(rep.moves, 0);
        assert_int_equal(rep.stop, SHARDZ_BALANCE_DEGRADED);
        shardz_plan_free(plan);
        /* Repaired: the balancer works again. */
        plan = NULL;
        if (k == 2) {
            assert_int_equal(shardz_sharder_set_node_state(w.s, "d", SHARDZ_NODE_ALIVE), 0);
        }
        assert_int_equal(shardz_sharder_rebalance(w.s, 0, &plan), 0);
        shardz_plan_free(plan);
        plan = round_(&w, &pol, 0, SHARDZ_PLAN_DRY_RUN, &rep);
        assert_int_not_equal(rep.stop, SHARDZ_BALANCE_DEGRADED);
        shardz_plan_free(plan);
        w_free(&w);
    }
}

/* The best receiver b is full in dimension 1 (capacity is hard; a is over its own after a
 * load change): the move goes to c instead. With one unit more room on b, it goes to b. */
static void test_capacity(void **state)
{
    (void)state;
    for (int limited = 0; limited < 2; limited++) {
        world w;
        w_init(&w, 2, 1);
        w_node(&w, "a", NULL, (double[]){0, 10});
        w_node(&w, "b", NULL, (double[]){0, limited ? 10 : 11});
        w_node(&w, "c", NULL, (double[]){0, 10});
        const char *a[1] = {"a"}, *b[1] = {"b"}, *c[1] = {"c"};
        w_part(&w, "p1", (double[]){6, 11}, 1, a);
        w_part(&w, "p2", (double[]){3, 1}, 1, a);
        w_part(&w, "q1", (double[]){2, 10}, 1, b);
        w_part(&w, "q2", (double[]){5, 0}, 1, c);
        shardz_balance_policy pol = pol_default();
        pol.ndims_weight = 2;
        pol.dims_weight[1] = 0;
        pol.max_moves_fraction = 0.25; /* one move */
        shardz_balance_report rep;
        shardz_plan *plan = round_(&w, &pol, 0, 0, &rep);
        assert_int_equal(rep.moves, 1);
        shardz_move mv;
        shardz_plan_move(plan, 0, &mv);
        assert_string_equal(mv.partition, "p2");
        assert_string_equal(mv.to, limited ? "c" : "b");
        shardz_plan_free(plan);
        double nl[W_MAXN][SHARDZ_MAX_DIMS];
        w_node_loads(&w, nl);
        for (size_t i = 1; i < w.nn; i++) { /* a was over before the round */
            for (size_t d = 0; d < 2; d++) {
                assert_true(nl[i][d] <= w.cap[i][d]);
            }
        }
        w_free(&w);
    }
}

/* Replicas 2 over zones z1 {a} and z2 {c, d} (a 10, c 5, d 5): a is hot but any move off it would
 * put both replicas in z2: stuck, no move. Without zones the same layout moves. */
static void test_zones(void **state)
{
    (void)state;
    for (int zoned = 0; zoned < 2; zoned++) {
        world w;
        w_init(&w, 1, 2);
        w_node(&w, "a", zoned ? "z1" : NULL, NULL);
        w_node(&w, "c", zoned ? "z2" : NULL, NULL);
        w_node(&w, "d", zoned ? "z2" : NULL, NULL);
        const char *n1[2] = {"a", "c"}, *n2[2] = {"a", "d"};
        w_part(&w, "p1", (double[]){2.5}, 2, n1);
        w_part(&w, "p2", (double[]){2.5}, 2, n1);
        w_part(&w, "p3", (double[]){2.5}, 2, n2);
        w_part(&w, "p4", (double[]){2.5}, 2, n2);
        shardz_balance_policy pol = pol_default();
        pol.max_moves_fraction = 1;
        shardz_balance_report rep;
        shardz_plan *plan = round_(&w, &pol, 0, 0, &rep);
        if (zoned) {
            assert_int_equal(rep.moves, 0);
            assert_int_equal(rep.stop, SHARDZ_BALANCE_STUCK);
        } else {
            assert_true(rep.moves > 0);
        }
        shardz_sharder_stats st;
        shardz_sharder_get_stats(w.s, &st);
        assert_int_equal(st.zone_violations, 0);
        shardz_plan_free(plan);
        w_free(&w);
    }
}

/* Snapshot of the assignment and generations. */
typedef struct {
    char node[W_MAXP][SHARDZ_MAX_REPLICAS][16];
    uint64_t gen[W_MAXP];
    uint64_t revision;
} snap;

static void take(world *w, snap *sn)
{
    memset(sn, 0, sizeof *sn);
    for (size_t p = 0; p < w->np; p++) {
        shardz_replica r[SHARDZ_MAX_REPLICAS];
        size_t n = 0;
        assert_int_equal(
            shardz_sharder_nodes_of_partition(w->s, w->pid[p], r, SHARDZ_MAX_REPLICAS, &n), 0);
        for (size_t k = 0; k < n; k++) {
            snprintf(sn->node[p][r[k].slot], 16, "%s", r[k].node);
        }
        assert_int_equal(shardz_sharder_generation(w->s, w->pid[p], &sn->gen[p]), 0);
    }
    shardz_sharder_stats st;
    shardz_sharder_get_stats(w->s, &st);
    sn->revision = st.revision;
}

/* A dry run leaves everything as it was; applied later it does what the real round does. */
static void test_dry_run(void **state)
{
    (void)state;
    world w1, w2;
    build_two_dims(&w1);
    build_two_dims(&w2);
    static snap a, b;
    take(&w1, &a);
    shardz_balance_policy pol = pol_default();
    pol.max_moves_fraction = 1;
    shardz_balance_report rep1, rep2;
    shardz_plan *dry = round_(&w1, &pol, 0, SHARDZ_PLAN_DRY_RUN, &rep1);
    assert_true(rep1.moves > 0);
    take(&w1, &b);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(shardz_sharder_apply(w1.s, dry), 0);
    shardz_plan *real = round_(&w2, &pol, 0, 0, &rep2);
    assert_int_equal(rep1.moves, rep2.moves);
    for (size_t d = 0; d < 2; d++) {
        assert_near(rep1.after[d], rep2.after[d], 0);
    }
    take(&w1, &a);
    take(&w2, &b);
    assert_memory_equal(&a, &b, sizeof a);
    double imb[SHARDZ_MAX_DIMS];
    size_t nd = 0;
    assert_int_equal(shardz_sharder_load_imbalance(w1.s, imb, SHARDZ_MAX_DIMS, &nd), 0);
    assert_int_equal(nd, 2);
    for (size_t d = 0; d < 2; d++) {
        assert_near(imb[d], rep1.after[d], 1e-9);
    }
    shardz_plan_free(dry);
    shardz_plan_free(real);
    w_free(&w1);
    w_free(&w2);
}

/* Out-of-range policies are refused and change nothing. */
static void test_bad_policy(void **state)
{
    (void)state;
    shardz_balance_policy p = pol_default();
    assert_near(p.band, 0.05, 0);
    assert_near(p.max_moves_fraction, 0.02, 0);
    assert_int_equal(p.cooldown_ms, 60000);
    assert_int_equal(shardz_balance_policy_validate(&p), 0);
    assert_int_equal(shardz_balance_policy_validate(NULL), SHARDZ_EINVAL);
    struct {
        int field;
        double v;
    } bad[] = {{0, -0.1}, {0, NAN}, {0, 1.5}, {1, -1}, {1, 1.01}, {1, INFINITY},
               {2, -1},   {3, NAN}, {3, 2},   {4, -1}, {4, NAN},  {5, 9}};
    world w;
    build_two_dims(&w);
    static snap a, b;
    take(&w, &a);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        shardz_balance_policy q = pol_default();
        switch (bad[i].field) {
        case 0:
            q.band = bad[i].v;
            break;
        case 1:
            q.max_moves_fraction = bad[i].v;
            break;
        case 2:
            q.cooldown_ms = (int64_t)bad[i].v;
            break;
        case 3:
            q.hysteresis = bad[i].v;
            break;
        case 4:
            q.ndims_weight = 1;
            q.dims_weight[0] = bad[i].v;
            break;
        default:
            q.ndims_weight = (size_t)bad[i].v;
            break;
        }
        assert_int_equal(shardz_balance_policy_validate(&q), SHARDZ_EINVAL);
        shardz_plan *plan = NULL;
        assert_int_equal(shardz_sharder_balance_round(w.s, &q, 0, NULL, NULL, 0, &plan, NULL),
                         SHARDZ_EINVAL);
        assert_null(plan);
    }
    shardz_plan *plan = NULL;
    assert_int_equal(shardz_sharder_balance_round(w.s, &p, 0, NULL, NULL, 0x8, &plan, NULL),
                     SHARDZ_EINVAL);
    take(&w, &b);
    assert_memory_equal(&a, &b, sizeof a);
    w_free(&w);
}

/* ---- property test ------------------------------------------------------------------------- */

static double lognormal(ck_rng *r)
{
    double u1 = ck_rng_unit(r), u2 = ck_rng_unit(r);
    double z = sqrt(-2 * log(1 - u1)) * cos(6.283185307179586 * u2);
    return exp(0.8 * z);
}

typedef struct {
    char node[SHARDZ_MAX_REPLICAS][16];
    unsigned nrep;
} pasg;

static void assignment(world *w, pasg *out)
{
    for (size_t p = 0; p < w->np; p++) {
        shardz_replica r[SHARDZ_MAX_REPLICAS];
        size_t n = 0;
        memset(&out[p], 0, sizeof out[p]);
        assert_int_equal(
            shardz_sharder_nodes_of_partition(w->s, w->pid[p], r, SHARDZ_MAX_REPLICAS, &n), 0);
        for (size_t k = 0; k < n; k++) {
            snprintf(out[p].node[r[k].slot], 16, "%s", r[k].node);
        }
    }
}

static void one_seed(uint64_t seed, size_t *total_moves)
{
    ck_rng rng = {seed * 0x9E3779B97F4A7C15ull + 7};
    world w;
    size_t nd = (size_t)ck_rng_range(&rng, 1, 3);
    unsigned rep = (unsigned)ck_rng_range(&rng, 1, 3);
    w_init(&w, nd, rep);
    size_t nn = (size_t)ck_rng_range(&rng, rep + 1, 12);
    size_t nz = (size_t)ck_rng_range(&rng, 1, 3);
    size_t np = (size_t)ck_rng_range(&rng, 20, 200);
    double tot[SHARDZ_MAX_DIMS] = {0};
    double loads[W_MAXP][SHARDZ_MAX_DIMS];
    for (size_t p = 0; p < np; p++) {
        for (size_t d = 0; d < nd; d++) {
            loads[p][d] = (d > 0 && ck_rng_unit(&rng) < 0.3) ? 0 : lognormal(&rng);
            tot[d] += loads[p][d] * rep;
        }
    }
    char id[16], zone[16];
    /* Per dimension, every node has a capacity or none (unset ones below a set one are
     * 1e300 on every node, so shares stay equal there). */
    bool limited[SHARDZ_MAX_DIMS];
    for (size_t d = 0; d < nd; d++) {
        limited[d] = ck_rng_unit(&rng) < 0.5;
    }
    for (size_t i = 0; i < nn; i++) {
        double caps[SHARDZ_MAX_DIMS] = {0};
        for (size_t d = 0; d < nd; d++) {
            if (limited[d]) {
                caps[d] = tot[d] / (double)nn * (2 + 2 * ck_rng_unit(&rng));
            }
        }
        snprintf(id, sizeof id, "n%u", (unsigned)i);
        snprintf(zone, sizeof zone, "z%u", (unsigned)(i % nz));
        w_node(&w, id, zone, caps);
    }
    for (size_t p = 0; p < np; p++) {
        snprintf(id, sizeof id, "p%u", (unsigned)p);
        w_part(&w, id, loads[p], 0, NULL);
    }
    shardz_plan *plan = NULL;
    assert_int_equal(shardz_sharder_rebalance(w.s, 0, &plan), 0);
    shardz_plan_free(plan);
    /* A hotspot: 5% of the partitions triple. */
    for (size_t p = 0; p < np; p++) {
        if (ck_rng_unit(&rng) < 0.05) {
            for (size_t d = 0; d < nd; d++) {
                w.load[p][d] *= 3;
            }
            assert_int_equal(shardz_sharder_set_partition_load(w.s, w.pid[p], w.load[p], nd), 0);
        }
    }
    bool dead = ck_rng_unit(&rng) < 0.1;
    size_t held = 0;
    assert_int_equal(shardz_sharder_partitions_of_node(w.s, w.nid[0], NULL, 0, &held), 0);
    dead = dead && held > 0;
    if (dead) {
        assert_int_equal(shardz_sharder_set_node_state(w.s, w.nid[0], SHARDZ_NODE_DEAD), 0);
        w.st[0] = SHARDZ_NODE_DEAD;
    }
    shardz_balance_policy pol = pol_default();
    pol.band = ck_rng_unit(&rng) * 0.1;
    pol.max_moves_fraction = 0.01 + ck_rng_unit(&rng) * 0.1;
    pol.cooldown_ms = 3000;
    pol.hysteresis = ck_rng_unit(&rng) * 0.3;
    if (ck_rng_unit(&rng) < 0.3) {
        pol.ndims_weight = nd;
        for (size_t d = 0; d < nd; d++) {
            pol.dims_weight[d] = ck_rng_unit(&rng) * 2;
        }
    }
    static pasg before[W_MAXP], after[W_MAXP];
    int64_t now = 1000;
    for (int round = 0; round < 6; round++, now += 1000) {
        double imb0[SHARDZ_MAX_DIMS], imb1[SHARDZ_MAX_DIMS];
        w_imbalance(&w, imb0);
        assignment(&w, before);
        shardz_balance_report r;
        plan = round_(&w, &pol, now, 0, &r);
        assignment(&w, after);
        w_imbalance(&w, imb1);
        *total_moves += r.moves;
        if (dead) {
            assert_int_equal(r.moves, 0);
            assert_int_equal(r.stop, SHARDZ_BALANCE_DEGRADED);
        }
        for (size_t d = 0; d < nd; d++) {
            if (imb1[d] > imb0[d] + 1e-9) {
                fail_msg("seed %llu round %d dim %zu: max/mean %.12f -> %.12f",
                         (unsigned long long)seed, round, d, imb0[d], imb1[d]);
            }
            assert_near(imb1[d], r.after[d], 1e-9);
        }
        assert_true(r.moves <= r.budget);
        assert_true(r.budget <= (size_t)(pol.max_moves_fraction * (double)np) + 1);
        /* Every move: the replica left `from`, went to an alive node that did not hold the
         * partition, within capacity, keeping the zone spread; not within its cooldown. */
        for (size_t i = 0; i < shardz_plan_count(plan); i++) {
            shardz_move mv;
            shardz_plan_move(plan, i, &mv);
            size_t p = w_part_idx(&w, mv.partition);
            assert_string_equal(before[p].node[mv.slot], mv.from);
            assert_string_equal(after[p].node[mv.slot], mv.to);
            size_t to = w_node_idx(&w, mv.to), from = w_node_idx(&w, mv.from);
            assert_int_equal(w.st[to], SHARDZ_NODE_ALIVE);
            unsigned in_to = 0, in_from = 0;
            for (unsigned sl = 0; sl < SHARDZ_MAX_REPLICAS; sl++) {
                if (!before[p].node[sl][0]) {
                    continue;
                }
                assert_string_not_equal(before[p].node[sl], mv.to);
                size_t k = w_node_idx(&w, before[p].node[sl]);
                in_to += strcmp(w.zone[k], w.zone[to]) == 0;
                in_from += strcmp(w.zone[k], w.zone[from]) == 0;
            }
            if (strcmp(w.zone[to], w.zone[from]) != 0) {
                assert_true(in_to < in_from);
            }
            if (w.last[p] != SHARDZ_NEVER_MOVED) {
                assert_true(now - w.last[p] >= pol.cooldown_ms);
            }
            w.last[p] = now;
        }
        /* Distinct nodes per partition after the round; receivers within capacity. */
        double nl[W_MAXN][SHARDZ_MAX_DIMS];
        w_node_loads(&w, nl);
        for (size_t i = 0; i < shardz_plan_count(plan); i++) {
            shardz_move mv;
            shardz_plan_move(plan, i, &mv);
            size_t p = w_part_idx(&w, mv.partition), to = w_node_idx(&w, mv.to);
            for (unsigned x = 0; x < SHARDZ_MAX_REPLICAS; x++) {
                for (unsigned y = x + 1; y < SHARDZ_MAX_REPLICAS; y++) {
                    if (after[p].node[x][0]) {
                        assert_string_not_equal(after[p].node[x], after[p].node[y]);
                    }
                }
            }
            for (size_t d = 0; d < nd; d++) {
                assert_true(nl[to][d] <= w.cap[to][d] * (1 + 1e-9));
            }
        }
        shardz_plan_free(plan);
    }
    w_free(&w);
}

static void test_properties(void **state)
{
    (void)state;
    size_t moves = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        one_seed(seed, &moves);
    }
    printf("balancer properties: 300 seeds x 6 rounds, %zu moves checked\n", moves);
    assert_true(moves > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hottest_node), cmocka_unit_test(test_dimension_with_greatest_impact),
        cmocka_unit_test(test_band),         cmocka_unit_test(test_cooldown),
        cmocka_unit_test(test_budget),       cmocka_unit_test(test_degraded),
        cmocka_unit_test(test_capacity),     cmocka_unit_test(test_zones),
        cmocka_unit_test(test_dry_run),      cmocka_unit_test(test_bad_policy),
        cmocka_unit_test(test_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
