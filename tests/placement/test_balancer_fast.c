/* The load balancer's fast search against its brute-force reference (pz_balance_round_brute:
 * every node weighed for every receiver, candidates re-sorted at every step): over random
 * instances (dimensions, weights, capacities, zones, replicas, ties from equal loads, cooling
 * partitions, a hotspot), two identical sharders run the same rounds, one each way, and every
 * plan must be the same move for move (the same destinations) with the same report. */
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
#include "placement/model.h"
#include "shardz/placement.h"

#define F_MAXP 3000
#define F_MAXN 64

typedef struct {
    int64_t last[F_MAXP];
    size_t np;
} f_moves;

static int64_t f_last(const char *partition, void *ctx)
{
    const f_moves *fm = ctx;
    size_t p = strtoul(partition + 1, NULL, 10);
    return p < fm->np ? fm->last[p] : SHARDZ_NEVER_MOVED;
}

static void f_plans_equal(const shardz_plan *a, const shardz_plan *b, uint64_t seed, int round)
{
    if (shardz_plan_count(a) != shardz_plan_count(b)) {
        fail_msg("seed %llu round %d: %zu moves (fast) vs %zu (brute)", (unsigned long long)seed,
                 round, shardz_plan_count(a), shardz_plan_count(b));
    }
    for (size_t i = 0; i < shardz_plan_count(a); i++) {
        shardz_move x, y;
        shardz_plan_move(a, i, &x);
        shardz_plan_move(b, i, &y);
        if (strcmp(x.partition, y.partition) != 0 || x.slot != y.slot ||
            strcmp(x.from, y.from) != 0 || strcmp(x.to, y.to) != 0) {
            fail_msg("seed %llu round %d move %zu: %s/%u %s->%s (fast) vs %s/%u %s->%s (brute)",
                     (unsigned long long)seed, round, i, x.partition, x.slot, x.from, x.to,
                     y.partition, y.slot, y.from, y.to);
        }
    }
}

static void f_reports_equal(const shardz_balance_report *a, const shardz_balance_report *b)
{
    assert_int_equal(a->stop, b->stop);
    assert_int_equal(a->moves, b->moves);
    assert_int_equal(a->budget, b->budget);
    assert_int_equal(a->cooling, b->cooling);
    assert_int_equal(a->ndims, b->ndims);
    for (size_t d = 0; d < a->ndims; d++) {
        assert_true(a->before[d] == b->before[d]);
        assert_true(a->after[d] == b->after[d]);
    }
}

static void one_instance(uint64_t seed)
{
    ck_rng rng = {seed * 0x9E3779B97F4A7C15ull + 11};
    size_t nd = (size_t)ck_rng_range(&rng, 1, 3);
    unsigned rep = (unsigned)ck_rng_range(&rng, 1, 3);
    size_t nn = (size_t)ck_rng_range(&rng, rep + 1, F_MAXN);
    size_t nz = (size_t)ck_rng_range(&rng, 1, 4);
    size_t np = (size_t)ck_rng_range(&rng, 50, F_MAXP);
    int equal = ck_rng_unit(&rng) < 0.25; /* equal loads: many ties between nodes */
    shardz_sharder_config cfg = {.replicas = rep, .ndims = nd, .seed = seed};
    shardz_sharder *s[2];
    for (int k = 0; k < 2; k++) {
        assert_int_equal(shardz_sharder_new(&cfg, &s[k]), 0);
    }

    static double load[F_MAXP][SHARDZ_MAX_DIMS];
    double tot[SHARDZ_MAX_DIMS] = {0};
    for (size_t p = 0; p < np; p++) {
        for (size_t d = 0; d < nd; d++) {
            double u1 = ck_rng_unit(&rng), u2 = ck_rng_unit(&rng);
            double z = sqrt(-2 * log(1 - u1)) * cos(6.283185307179586 * u2);
            load[p][d] = equal ? 1.0 + (double)(d > 0 && ck_rng_unit(&rng) < 0.5) : exp(z);
            tot[d] += load[p][d] * rep;
        }
    }
    bool limited[SHARDZ_MAX_DIMS];
    for (size_t d = 0; d < nd; d++) {
        limited[d] = ck_rng_unit(&rng) < 0.5;
    }
    for (size_t i = 0; i < nn; i++) {
        char id[32], zone[32];
        snprintf(id, sizeof id, "n%zu", i);
        snprintf(zone, sizeof zone, "z%zu", i % nz);
        shardz_node_spec n = {.id = id, .zone = zone, .state = SHARDZ_NODE_ALIVE};
        bool any = false;
        for (size_t d = 0; d < nd; d++) {
            any |= limited[d];
        }
        if (any) {
            n.ncapacity = nd;
            for (size_t d = 0; d < nd; d++) {
                n.capacity[d] =
                    limited[d] ? tot[d] / (double)nn * (1.5 + 3 * ck_rng_unit(&rng)) : 1e300;
            }
        }
        for (int k = 0; k < 2; k++) {
            assert_int_equal(shardz_sharder_register_nodes(s[k], &n, 1), 0);
        }
    }
    for (size_t p = 0; p < np; p++) {
        char id[32];
        snprintf(id, sizeof id, "p%zu", p);
        shardz_partition_spec ps = {.id = id, .nload = nd};
        memcpy(ps.load, load[p], nd * sizeof *ps.load);
        for (int k = 0; k < 2; k++) {
            assert_int_equal(shardz_sharder_register_partitions(s[k], &ps, 1), 0);
        }
    }
    for (int k = 0; k < 2; k++) {
        shardz_plan *plan = NULL;
        assert_int_equal(shardz_sharder_rebalance(s[k], 0, &plan), 0);
        shardz_plan_free(plan);
    }
    /* A hotspot: a few partitions get hotter, by a random factor. */
    double share = ck_rng_unit(&rng) * 0.1;
    for (size_t p = 0; p < np; p++) {
        if (ck_rng_unit(&rng) >= share) {
            continue;
        }
        char id[32];
        snprintf(id, sizeof id, "p%zu", p);
        double f = 1.5 + 4 * ck_rng_unit(&rng);
        for (size_t d = 0; d < nd; d++) {
            load[p][d] *= f;
        }
        for (int k = 0; k < 2; k++) {
            assert_int_equal(shardz_sharder_set_partition_load(s[k], id, load[p], nd), 0);
        }
    }
    shardz_balance_policy pol;
    shardz_balance_policy_default(&pol);
    pol.band = ck_rng_unit(&rng) < 0.3 ? 0 : ck_rng_unit(&rng) * 0.1;
    pol.max_moves_fraction = 0.005 + ck_rng_unit(&rng) * 0.2;
    pol.cooldown_ms = 2000;
    pol.hysteresis = ck_rng_unit(&rng) * 0.4;
    if (ck_rng_unit(&rng) < 0.4) {
        pol.ndims_weight = nd;
        for (size_t d = 0; d < nd; d++) {
            pol.dims_weight[d] = ck_rng_unit(&rng) < 0.2 ? 0 : ck_rng_unit(&rng) * 2;
        }
    }
    static f_moves fm;
    fm.np = np;
    for (size_t p = 0; p < np; p++) { /* some partitions moved recently: cooling at first */
        fm.last[p] = ck_rng_unit(&rng) < 0.1 ? 500 : SHARDZ_NEVER_MOVED;
    }
    int64_t now = 1000;
    for (int round = 0; round < 4; round++, now += 1000) {
        unsigned flags = round == 3 ? SHARDZ_PLAN_DRY_RUN : 0;
        shardz_plan *pf = NULL, *pb = NULL;
        shardz_balance_report rf, rb;
        assert_int_equal(
            shardz_sharder_balance_round(s[0], &pol, now, f_last, &fm, flags, &pf, &rf), 0);
        assert_int_equal(pz_balance_round_brute(s[1], &pol, now, f_last, &fm, flags, &pb, &rb), 0);
        f_plans_equal(pf, pb, seed, round);
        f_reports_equal(&rf, &rb);
        for (size_t i = 0; i < shardz_plan_count(pf) && flags == 0; i++) {
            shardz_move mv;
            shardz_plan_move(pf, i, &mv);
            fm.last[strtoul(mv.partition + 1, NULL, 10)] = now;
        }
        shardz_plan_free(pf);
        shardz_plan_free(pb);
    }
    for (int k = 0; k < 2; k++) {
        shardz_sharder_free(s[k]);
    }
}

static void test_fast_equals_brute(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        one_instance(seed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_equals_brute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
