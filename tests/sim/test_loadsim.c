/* The load simulator (src/sim/loadsim.c, baseline.c): the two baselines on small hand-made
 * views (who gives, what, to whom, within which limits), convergence from a run's steps, and
 * the engine's runs: deterministic for a seed, the statistics lag the truth by the EWMA, the
 * real balancer settles a hotspot within the band without moving a partition twice within
 * its cooldown, while the seed's stealing does on the zipf scenario. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim/loadsim.h"

/* ---- baselines on a view ------------------------------------------------------------------ */

#define V_MAXP 16
#define V_MAXN 4

typedef struct {
    lsim_view v;
    double load[V_MAXP];
    double cap[V_MAXN];
    uint32_t owner[V_MAXP];
    int64_t last[V_MAXP];
    size_t moved_part[V_MAXP * 4];
    uint32_t moved_to[V_MAXP * 4];
    size_t nmoves;
} vworld;

/* nodes[p] = p's node; one dimension, one replica, unlimited capacity. */
static void v_init(vworld *w, const double *load, const uint32_t *nodes, size_t np, size_t nn)
{
    memset(w, 0, sizeof *w);
    for (size_t p = 0; p < np; p++) {
        w->load[p] = load[p];
        w->owner[p] = nodes[p];
        w->last[p] = SHARDZ_NEVER_MOVED;
    }
    for (size_t n = 0; n < nn; n++) {
        w->cap[n] = INFINITY;
    }
    w->v = (lsim_view){.nparts = np,
                       .nnodes = nn,
                       .ndims = 1,
                       .replicas = 1,
                       .load = w->load,
                       .cap = w->cap,
                       .owner = w->owner,
                       .last_move = w->last,
                       .now_ms = 100000,
                       .cooldown_ms = LSIM_GREEDY_COOLDOWN_MS};
}

static int v_move(void *ctx, size_t part, unsigned slot, uint32_t to)
{
    vworld *w = ctx;
    assert_int_equal(slot, 0);
    w->owner[part] = to;
    w->last[part] = w->v.now_ms;
    w->moved_part[w->nmoves] = part;
    w->moved_to[w->nmoves++] = to;
    return 0;
}

/* Node 0 at 1.5x the mean gives from the end of its list to the least loaded node until it is
 * at its share; node 1 at 1.2x (under 1.3x) gives nothing. */
static void test_seed_steal(void **state)
{
    (void)state;
    vworld w;
    /* node 0: 3+3+3 = 9, node 1: 7.2, node 2: 1.8; mean 6 */
    double load[] = {3, 3, 3, 3.6, 3.6, 1.8};
    uint32_t nodes[] = {0, 0, 0, 1, 1, 2};
    v_init(&w, load, nodes, 6, 3);
    assert_int_equal(lsim_seed_steal(&w.v, v_move, &w), 0);
    /* 9 > 6: one replica (3) to node 2 (the least loaded), then 6 is not above 6. */
    assert_int_equal(w.nmoves, 1);
    assert_int_equal(w.moved_to[0], 2);
    assert_int_equal(w.moved_part[0], 2); /* the last of node 0's list */
}

/* The greedy band: the most loaded above 1.15x gives its largest replica that keeps the
 * receiver (below 0.90x) within 1.15x, skipping partitions in their cooldown. */
static void test_greedy_band(void **state)
{
    (void)state;
    vworld w;
    /* node 0: 5+2+1 = 8 (1.6x of 5), node 1: 5 (1.0x), node 2: 2 (0.4x); total 15, mean 5 */
    double load[] = {5, 2, 1, 5, 2};
    uint32_t nodes[] = {0, 0, 0, 1, 2};
    v_init(&w, load, nodes, 5, 3);
    /* Budget: 1% of 5 partitions rounds down to 0, so 1. The 5 would take node 2 to 7 (1.4x):
     * too much; the 2 takes it to 4 (0.8x). */
    assert_int_equal(lsim_greedy_band(&w.v, v_move, &w), 0);
    assert_int_equal(w.nmoves, 1);
    assert_int_equal(w.moved_part[0], 1);
    assert_int_equal(w.moved_to[0], 2);

    /* The same with partition 1 moved 30 s ago: the 1 goes instead. */
    v_init(&w, load, nodes, 5, 3);
    w.last[1] = w.v.now_ms - 30000;
    assert_int_equal(lsim_greedy_band(&w.v, v_move, &w), 0);
    assert_int_equal(w.nmoves, 1);
    assert_int_equal(w.moved_part[0], 2);

    /* No node below 0.90x: nothing moves, however hot the donor. */
    double flat[] = {7, 4, 4};
    uint32_t fn[] = {0, 1, 2};
    v_init(&w, flat, fn, 3, 3);
    assert_int_equal(lsim_greedy_band(&w.v, v_move, &w), 0);
    assert_int_equal(w.nmoves, 0);
}

/* Capacity is a hard limit for both baselines. */
static void test_baselines_capacity(void **state)
{
    (void)state;
    vworld w;
    double load[] = {6.5, 6.5, 1};
    uint32_t nodes[] = {0, 0, 1};
    v_init(&w, load, nodes, 3, 2);
    w.cap[0] = w.cap[1] = 7; /* equal shares (7 each); node 1 has room for 6 more */
    assert_int_equal(lsim_seed_steal(&w.v, v_move, &w), 0);
    assert_int_equal(w.nmoves, 0);
    assert_int_equal(lsim_greedy_band(&w.v, v_move, &w), 0);
    assert_int_equal(w.nmoves, 0);
}

/* ---- convergence -------------------------------------------------------------------------- */

static void test_converged_at(void **state)
{
    (void)state;
    lsim_config cfg;
    lsim_config_defaults(&cfg);
    cfg.event_step = 2;
    static lsim_run r;
    memset(&r, 0, sizeof r);
    double ratios[] = {1.0, 1.0, 1.2, 1.1, 1.04, 1.06, 1.03, 1.02};
    r.nsteps = 8;
    for (size_t i = 0; i < r.nsteps; i++) {
        r.steps[i].ratio[0] = ratios[i];
    }
    assert_int_equal(lsim_converged_at(&cfg, &r), 6); /* 1.06 at step 5 breaks the run */
    r.steps[7].ratio[0] = 1.051;
    assert_int_equal(lsim_converged_at(&cfg, &r), -1);
    for (size_t i = 0; i < r.nsteps; i++) {
        r.steps[i].ratio[0] = 1.0;
    }
    assert_int_equal(lsim_converged_at(&cfg, &r), 2); /* never left the band: the event step */
}

/* ---- runs --------------------------------------------------------------------------------- */

static void small_config(lsim_config *cfg, lsim_scenario_kind k)
{
    lsim_config_defaults(cfg);
    cfg->partitions = 2000;
    cfg->nodes = 20;
    cfg->scenario = k;
    cfg->steps = 30;
    cfg->event_step = 3;
}

/* Runs a strategy; returns its steps (cfg->steps + 1, caller frees). */
static lsim_step *run(const lsim_config *cfg, lsim_strategy s)
{
    lsim_step *st = calloc(cfg->steps + 1, sizeof *st);
    lsim *L = NULL;
    assert_non_null(st);
    assert_int_equal(lsim_new(cfg, s, &L, &st[0]), 0);
    for (size_t i = 1; i <= cfg->steps; i++) {
        assert_int_equal(lsim_step_once(L, &st[i]), 0);
        assert_int_equal(st[i].errors, 0);
    }
    lsim_free(L);
    return st;
}

static void test_deterministic(void **state)
{
    (void)state;
    lsim_config cfg;
    small_config(&cfg, LSIM_DIURNAL);
    for (lsim_strategy s = LSIM_BALANCER; s <= LSIM_GREEDY; s++) {
        lsim_step *a = run(&cfg, s), *b = run(&cfg, s);
        for (size_t i = 0; i <= cfg.steps; i++) {
            a[i].round_ms = b[i].round_ms = 0; /* wall time */
            assert_memory_equal(&a[i], &b[i], sizeof a[i]);
        }
        free(a);
        free(b);
    }
}

/* The statistics lag the truth: at the hotspot's step the strategies see less of it. */
static void test_statistics_lag(void **state)
{
    (void)state;
    lsim_config cfg;
    small_config(&cfg, LSIM_HOTSPOT);
    cfg.hot_factor = 5;
    lsim_step *st = run(&cfg, LSIM_GREEDY);
    assert_true(st[cfg.event_step].ratio[0] > 1.1);
    assert_true(st[cfg.event_step].seen_ratio < st[cfg.event_step].ratio[0] - 0.05);
    free(st);
    cfg.tau_ms = 0; /* no smoothing: the statistics are the truth */
    st = run(&cfg, LSIM_GREEDY);
    assert_true(fabs(st[cfg.event_step].seen_ratio - st[cfg.event_step].ratio[0]) < 1e-9);
    free(st);
}

/* The balancer settles a hotspot within the band, within its budget, never moving a partition
 * twice within the cooldown. */
static void test_balancer_settles_hotspot(void **state)
{
    (void)state;
    lsim_config cfg;
    small_config(&cfg, LSIM_HOTSPOT);
    cfg.hot_factor = 5;
    lsim_step *st = run(&cfg, LSIM_BALANCER);
    size_t budget = (size_t)(cfg.policy.max_moves_fraction * (double)cfg.partitions);
    size_t moves = 0;
    for (size_t i = 0; i <= cfg.steps; i++) {
        assert_true(st[i].moves <= budget);
        assert_int_equal(st[i].repeats, 0);
        moves += st[i].moves;
    }
    assert_true(moves > 0);
    assert_true(st[cfg.steps].ratio[0] <= 1 + cfg.policy.band);
    free(st);
}

/* Half a node's capacity doubles its relative load; the balancer brings it back. */
static void test_halfcap(void **state)
{
    (void)state;
    lsim_config cfg;
    small_config(&cfg, LSIM_HALFCAP);
    lsim_step *st = run(&cfg, LSIM_BALANCER);
    assert_true(st[cfg.event_step].before[0] > 1.8);
    assert_true(st[cfg.steps].ratio[0] <= 1 + cfg.policy.band);
    free(st);
}

/* On zipf keys the seed's stealing (no cooldown) moves partitions again within a minute. */
static void test_seed_repeats_on_zipf(void **state)
{
    (void)state;
    lsim_config cfg;
    small_config(&cfg, LSIM_ZIPF);
    cfg.zipf_keys_s = 1.1;
    lsim_step *seed = run(&cfg, LSIM_SEED), *bal = run(&cfg, LSIM_BALANCER);
    size_t rs = 0, rb = 0;
    for (size_t i = 0; i <= cfg.steps; i++) {
        rs += seed[i].repeats;
        rb += bal[i].repeats;
    }
    assert_true(rs > 0);
    assert_int_equal(rb, 0);
    free(seed);
    free(bal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_steal),
        cmocka_unit_test(test_greedy_band),
        cmocka_unit_test(test_baselines_capacity),
        cmocka_unit_test(test_converged_at),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_statistics_lag),
        cmocka_unit_test(test_balancer_settles_hotspot),
        cmocka_unit_test(test_halfcap),
        cmocka_unit_test(test_seed_repeats_on_zipf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
