/* Property tests of the replica sharder: random scenarios (P 1..2000, R 1..4, N R..60, zones
 * 0..5, equal or weighted capacities, equal or log-normal loads), random event sequences (join,
 * leave, dead, drain, suspect, revive, partition add/remove, load change), the checker after
 * every rebalance, dry runs applied later, stale plans, a twin without dry runs. Environment:
 * SHARDZ_PROP_SEED, SHARDZ_PROP_SEEDS, SHARDZ_PROP_VERBOSE, SHARDZ_CK_TRACE (see run_family). */
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

/* What a scenario family draws. */
typedef struct {
    const char *name;
    uint64_t seed_base;
    size_t seeds; /* default number of seeds */
    int zones;    /* -1: random 0..5; else fixed */
    bool equal_zones;
    bool weights; /* capacities 1x..3x (never binding) */
    bool loads;   /* log-normal loads */
    bool twin;    /* a twin world without dry runs must reach the same state */
    size_t pmax, nmax;
    size_t steps;
} family;

#define MAXN 128
#define MAXP 4096

typedef struct {
    ck_world *w, *twin;
    ck_rng rng;
    unsigned rmax;
    size_t nz;
    bool loads, weights;
    double capunit;
    /* ids in use */
    char nodes[MAXN][16];
    bool nreg[MAXN];
    shardz_node_state nstate[MAXN];
    size_t nnodes;
    char parts[MAXP][16];
    bool preg[MAXP];
    size_t nparts;
    char log[2048]; /* the events of the current step */
} run;

static void logf_(run *r, const char *fmt, ...)
{
    size_t len = strlen(r->log);
    if (len + 64 >= sizeof(r->log)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->log + len, sizeof(r->log) - len, fmt, ap);
    va_end(ap);
}

static double lognormal(ck_rng *g)
{
    double u1 = ck_rng_unit(g), u2 = ck_rng_unit(g);
    if (u1 < 1e-300) {
        u1 = 1e-300;
    }
    return exp(0.8 * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static size_t count_alive(const run *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nnodes; i++) {
        n += r->nreg[i] && r->nstate[i] == SHARDZ_NODE_ALIVE;
    }
    return n;
}

/* Calls f on the world and the twin; both must return the same code. */
#define BOTH(r, call)                                                                              \
    do {                                                                                           \
        ck_world *w_ = (r)->w;                                                                     \
        int rc1_ = (call);                                                                         \
        if ((r)->twin) {                                                                           \
            w_ = (r)->twin;                                                                        \
            int rc2_ = (call);                                                                     \
            assert_int_equal(rc1_, rc2_);                                                          \
        }                                                                                          \
        if (rc1_ != 0) {                                                                           \
            return shardz_err_name(rc1_);                                                          \
        }                                                                                          \
    } while (0)

static const char *add_nodes(run *r, size_t k, long zone)
{
    shardz_node_spec sp[8];
    char zs[8][8];
    memset(sp, 0, sizeof(sp));
    if (k > 8) {
        k = 8;
    }
    if (r->nnodes + k > MAXN) {
        return NULL;
    }
    for (size_t i = 0; i < k; i++) {
        size_t id = r->nnodes + i;
        snprintf(r->nodes[id], sizeof(r->nodes[id]), "n%zu", id);
        sp[i].id = r->nodes[id];
        if (r->nz > 0) {
            size_t z = zone >= 0 ? ((size_t)zone + i) % r->nz : ck_rng_range(&r->rng, 0, r->nz - 1);
            snprintf(zs[i], sizeof(zs[i]), "z%zu", z);
            sp[i].zone = zs[i];
        }
        if (r->weights) {
            sp[i].ncapacity = 1;
            sp[i].capacity[0] = r->capunit * (double)ck_rng_range(&r->rng, 1, 3);
        }
        sp[i].state = SHARDZ_NODE_ALIVE;
        logf_(r, " join %s%s%s;", sp[i].id, sp[i].zone ? "@" : "", sp[i].zone ? sp[i].zone : "");
    }
    BOTH(r, ck_add_nodes(w_, sp, k));
    for (size_t i = 0; i < k; i++) {
        r->nreg[r->nnodes] = true;
        r->nstate[r->nnodes] = SHARDZ_NODE_ALIVE;
        r->nnodes++;
    }
    return NULL;
}

static const char *add_parts(run *r, size_t k)
{
    shardz_partition_spec sp[64];
    memset(sp, 0, sizeof(sp));
    if (k > 64) {
        k = 64;
    }
    if (r->nparts + k > MAXP) {
        return NULL;
    }
    size_t alive = count_alive(r);
    if (alive == 0) {
        return NULL;
    }
    for (size_t i = 0; i < k; i++) {
        size_t id = r->nparts + i;
        snprintf(r->parts[id], sizeof(r->parts[id]), "p%zu", id);
        sp[i].id = r->parts[id];
        unsigned rep = r->rmax;
        if (ck_rng_range(&r->rng, 0, 9) == 0) {
            rep = (unsigned)ck_rng_range(&r->rng, 1, r->rmax); /* a few mixed R */
        }
        sp[i].replicas = rep <= alive ? rep : (unsigned)alive;
        if (r->loads) {
            sp[i].nload = 1;
            sp[i].load[0] = lognormal(&r->rng);
        }
    }
    logf_(r, " add %zu partitions;", k);
    BOTH(r, ck_add_parts(w_, sp, k));
    for (size_t i = 0; i < k; i++) {
        r->preg[r->nparts++] = true;
    }
    return NULL;
}

static long pick_node(run *r, int want_state)
{
    size_t cand[MAXN], n = 0;
    for (size_t i = 0; i < r->nnodes; i++) {
        if (r->nreg[i] && (want_state < 0 ? true : r->nstate[i] == (shardz_node_state)want_state)) {
            cand[n++] = i;
        }
    }
    return n ? (long)cand[ck_rng_range(&r->rng, 0, n - 1)] : -1;
}

static long pick_nonalive(run *r)
{
    size_t cand[MAXN], n = 0;
    for (size_t i = 0; i < r->nnodes; i++) {
        if (r->nreg[i] && r->nstate[i] != SHARDZ_NODE_ALIVE) {
            cand[n++] = i;
        }
    }
    return n ? (long)cand[ck_rng_range(&r->rng, 0, n - 1)] : -1;
}

/* One random event. */
static const char *event(run *r)
{
    size_t alive = count_alive(r);
    unsigned e = (unsigned)ck_rng_range(&r->rng, 0, 99);
    bool can_lose = alive > (size_t)r->rmax + 1;
    if (e < 22 || alive <= r->rmax) { /* join */
        size_t k = ck_rng_range(&r->rng, 1, 3);
        long zone = -1;
        if (r->nz > 0 && ck_rng_range(&r->rng, 0, 1)) {
            k = r->nz; /* one per zone keeps zones equal */
            zone = 0;
        }
        return add_nodes(r, k, zone);
    }
    if (e < 40 && can_lose) { /* leave */
        long i = pick_node(r, -1);
        if (i < 0) {
            return NULL;
        }
        shardz_reason why =
            ck_rng_range(&r->rng, 0, 1) ? SHARDZ_REASON_LEAVE : SHARDZ_REASON_NODE_DEAD;
        const char *id = r->nodes[i];
        logf_(r, " unregister %s (%s);", id, shardz_reason_name(why));
        BOTH(r, ck_remove_nodes(w_, &id, 1, why));
        r->nreg[i] = false;
        return NULL;
    }
    if (e < 58 && can_lose) { /* dead / draining / suspect */
        long i = pick_node(r, SHARDZ_NODE_ALIVE);
        if (i < 0) {
            return NULL;
        }
        unsigned k = (unsigned)ck_rng_range(&r->rng, 0, 2);
        shardz_node_state st = k == 0   ? SHARDZ_NODE_DEAD
                               : k == 1 ? SHARDZ_NODE_DRAINING
                                        : SHARDZ_NODE_SUSPECT;
        logf_(r, " %s %s;", r->nodes[i], shardz_node_state_name(st));
        BOTH(r, ck_set_state(w_, r->nodes[i], st));
        r->nstate[i] = st;
        return NULL;
    }
    if (e < 66) { /* revive */
        long i = pick_nonalive(r);
        if (i < 0) {
            return NULL;
        }
        logf_(r, " %s alive;", r->nodes[i]);
        BOTH(r, ck_set_state(w_, r->nodes[i], SHARDZ_NODE_ALIVE));
        r->nstate[i] = SHARDZ_NODE_ALIVE;
        return NULL;
    }
    if (e < 78) { /* partitions added */
        size_t live = 0;
        for (size_t i = 0; i < r->nparts; i++) {
            live += r->preg[i];
        }
        return add_parts(r, ck_rng_range(&r->rng, 1, live / 10 + 1));
    }
    if (e < 90) { /* partitions removed */
        const char *ids[64];
        size_t n = 0, want = ck_rng_range(&r->rng, 1, 40);
        for (size_t tries = 0; tries < 4 * want && n < want && r->nparts > 0; tries++) {
            size_t i = ck_rng_range(&r->rng, 0, r->nparts - 1);
            bool dup = false;
            for (size_t j = 0; j < n; j++) {
                dup = dup || ids[j] == r->parts[i];
            }
            if (r->preg[i] && !dup) {
                ids[n++] = r->parts[i];
            }
        }
        if (n == 0) {
            return NULL;
        }
        logf_(r, " remove %zu partitions;", n);
        BOTH(r, ck_remove_parts(w_, ids, n));
        for (size_t j = 0; j < n; j++) {
            r->preg[(size_t)(ids[j] - r->parts[0]) / sizeof(r->parts[0])] = false;
        }
        return NULL;
    }
    /* load change: only in load scenarios (equal-load scenarios stay equal) */
    if (!r->loads || r->nparts == 0) {
        return NULL;
    }
    size_t n = ck_rng_range(&r->rng, 1, 30);
    logf_(r, " %zu load changes;", n);
    for (size_t k = 0; k < n; k++) {
        size_t i = ck_rng_range(&r->rng, 0, r->nparts - 1);
        if (!r->preg[i]) {
            continue;
        }
        double l = lognormal(&r->rng) * (ck_rng_range(&r->rng, 0, 4) ? 1.0 : 4.0);
        BOTH(r, ck_set_load(w_, r->parts[i], &l, 1));
    }
    return NULL;
}

/* SHARDZ_PROP_VERBOSE: what a plan did, and the count per node afterwards. */
static void verbose_plan(run *r, const shardz_plan *plan)
{
    if (!getenv("SHARDZ_PROP_VERBOSE") || !plan) {
        return;
    }
    print_message("  plan %zu moves, missing %zu:", shardz_plan_count(plan),
                  shardz_plan_missing(plan));
    for (int k = 0; k < SHARDZ_REASON__COUNT; k++) {
        size_t c = shardz_plan_count_reason(plan, (shardz_reason)k);
        if (c) {
            print_message(" %s %zu", shardz_reason_name((shardz_reason)k), c);
        }
    }
    print_message("\n  to:");
    for (size_t i = 0; i < r->nnodes; i++) {
        size_t in = 0, out = 0;
        for (size_t m = 0; m < shardz_plan_count(plan); m++) {
            shardz_move mv;
            shardz_plan_move(plan, m, &mv);
            in += mv.to && strcmp(mv.to, r->nodes[i]) == 0;
            out += mv.from && strcmp(mv.from, r->nodes[i]) == 0;
        }
        if (in || out) {
            print_message(" %s +%zu-%zu", r->nodes[i], in, out);
        }
    }
    for (size_t m = 0; m < shardz_plan_count(plan); m++) {
        shardz_move mv;
        shardz_plan_move(plan, m, &mv);
        if (mv.reason == SHARDZ_REASON_REBALANCE || mv.reason == SHARDZ_REASON_LOAD) {
            print_message("\n  %s %s/%u %s -> %s", shardz_reason_name(mv.reason), mv.partition,
                          mv.slot, mv.from ? mv.from : "-", mv.to ? mv.to : "-");
        }
    }
    print_message("\n  counts:");
    for (size_t i = 0; i < r->nnodes; i++) {
        if (r->nreg[i]) {
            print_message(" %s%s=%ld", r->nodes[i],
                          r->nstate[i] == SHARDZ_NODE_ALIVE ? ""
                                                            : shardz_node_state_name(r->nstate[i]),
                          ck_node_count(r->w, r->nodes[i]));
        }
    }
    print_message("\n");
}

/* Rebalances: plain, or dry run then apply (sometimes with a stale plan first). The twin
 * always rebalances without a dry run. */
static const char *rebalance(run *r)
{
    unsigned how = (unsigned)ck_rng_range(&r->rng, 0, 9);
    const char *err = NULL;
    if (r->twin || how < 2) {
        shardz_plan *plan = NULL;
        err = ck_rebalance(r->w, SHARDZ_PLAN_DRY_RUN, &plan);
        if (!err && how == 0 && !r->twin) {
            /* a change after the dry run: the plan is stale; the change is undone */
            err = add_parts(r, 1);
            if (!err) {
                err = ck_apply_stale(r->w, plan);
            }
            shardz_plan_free(plan);
            plan = NULL;
            if (!err) {
                err = ck_rebalance(r->w, SHARDZ_PLAN_DRY_RUN, &plan);
            }
        }
        if (!err) {
            err = ck_apply(r->w, plan);
        }
        verbose_plan(r, plan);
        shardz_plan_free(plan);
    } else {
        shardz_plan *plan = NULL;
        err = ck_rebalance(r->w, 0, &plan);
        verbose_plan(r, plan);
        shardz_plan_free(plan);
    }
    if (!err && r->twin) {
        err = ck_rebalance(r->twin, 0, NULL);
        if (err) {
            static char buf[4200];
            snprintf(buf, sizeof(buf), "twin: %s", err);
            err = buf;
        }
        if (!err) {
            err = ck_same_state(r->w, r->twin);
        }
    }
    return err;
}

/* Runs one seed; NULL or a failure message (static buffer). */
static const char *run_seed(const family *f, uint64_t seed, ck_counters *tot, char *softbuf,
                            size_t softcap)
{
    static char msg[6000];
    static run r;
    memset(&r, 0, sizeof(r));
    r.rng.s = seed;
    r.rmax = (unsigned)ck_rng_range(&r.rng, 1, 4);
    size_t n = ck_rng_range(&r.rng, r.rmax, f->nmax);
    size_t p = ck_rng_range(&r.rng, 1, f->pmax);
    r.nz = f->zones >= 0 ? (size_t)f->zones : ck_rng_range(&r.rng, 0, 5);
    if (r.nz > 0 && f->equal_zones) {
        n = (n + r.nz - 1) / r.nz * r.nz;
    }
    r.loads = f->loads;
    r.weights = f->weights;
    r.capunit = 4.0 * (double)p * r.rmax * (f->loads ? 8.0 : 1.0) / (double)n + 40.0;
    shardz_sharder_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.kind = "replica";
    cfg.replicas = r.rmax;
    cfg.seed = seed;
    r.w = ck_new(&cfg, NULL);
    assert_non_null(r.w);
    if (f->twin) {
        r.twin = ck_new(&cfg, NULL);
        assert_non_null(r.twin);
    }
    char scen[160];
    snprintf(scen, sizeof(scen), "%s seed %llu: P %zu R %u N %zu zones %zu%s%s", f->name,
             (unsigned long long)seed, p, r.rmax, n, r.nz, r.weights ? " weighted" : "",
             r.loads ? " lognormal" : "");
    const char *err = NULL;
    size_t step = 0;
    r.log[0] = 0;
    for (size_t made = 0; made < n && !err; made += 8) {
        err = add_nodes(&r, n - made < 8 ? n - made : 8, r.nz ? (long)(made % r.nz) : -1);
    }
    for (size_t made = 0; made < p && !err; made += 64) {
        err = add_parts(&r, p - made < 64 ? p - made : 64);
    }
    snprintf(r.log, sizeof(r.log), " initial placement;");
    if (!err) {
        ck_options(r.w)->zone_extras_global = true;
        err = rebalance(&r);
        ck_options(r.w)->zone_extras_global = false;
    }
    for (step = 1; step <= f->steps && !err; step++) {
        r.log[0] = 0;
        size_t nev = ck_rng_range(&r.rng, 0, 4) == 0 ? ck_rng_range(&r.rng, 2, 3) : 1;
        for (size_t k = 0; k < nev && !err; k++) {
            err = event(&r);
        }
        if (!err) {
            err = rebalance(&r);
        }
        if (getenv("SHARDZ_PROP_VERBOSE")) {
            const ck_last *ls = ck_last_step(r.w);
            print_message("step %zu [%s ]: %zu moves, moved %zu, missing %zu%s%s%s\n", step, r.log,
                          ls->plan_moves, ls->moved, ls->missing,
                          ls->balance_checked ? " balanced" : "",
                          ls->pure_leave ? " pure-leave" : "", ls->pure_join ? " pure-join" : "");
        }
    }
    const ck_counters *c = ck_counts(r.w);
    tot->rebalances += c->rebalances;
    tot->balance_global += c->balance_global;
    tot->balance_zone += c->balance_zone;
    tot->balance_load += c->balance_load;
    tot->zone_partitions += c->zone_partitions;
    tot->leave_moves += c->leave_moves;
    tot->join_moves += c->join_moves;
    tot->dry_runs += c->dry_runs;
    tot->skipped_balance += c->skipped_balance;
    tot->leave_infeasible += c->leave_infeasible;
    if (ck_soft(r.w) && !softbuf[0]) {
        snprintf(softbuf, softcap, "%s: %s", scen, ck_soft(r.w));
    }
    if (err) {
        snprintf(msg, sizeof(msg), "%s, step %zu [%s ]: %s", scen, step ? step - 1 : 0, r.log, err);
    }
    ck_free(r.w);
    ck_free(r.twin);
    return err ? msg : NULL;
}

/* SHARDZ_PROP_SEED=<n> runs that one seed in each family, SHARDZ_PROP_SEEDS=<n> runs n seeds
 * per family, SHARDZ_PROP_VERBOSE=1 prints every step and plan, SHARDZ_CK_TRACE=1 (checker)
 * prints every API call: the reproduction of a failing seed. */
static void run_family(const family *f)
{
    size_t seeds = f->seeds;
    const char *env = getenv("SHARDZ_PROP_SEEDS");
    if (env && atoi(env) > 0) {
        seeds = (size_t)atoi(env);
    }
    const char *one = getenv("SHARDZ_PROP_SEED");
    ck_counters tot;
    memset(&tot, 0, sizeof(tot));
    char softbuf[1400] = "";
    size_t failed = 0;
    char first[6000] = "";
    for (size_t i = 0; i < (one ? 1 : seeds); i++) {
        uint64_t seed = one ? strtoull(one, NULL, 0) : f->seed_base + i;
        const char *err = run_seed(f, seed, &tot, softbuf, sizeof(softbuf));
        if (err) {
            print_message("FAIL %s\n", err);
            if (!failed++) {
                snprintf(first, sizeof(first), "%s", err);
            }
        }
    }
    print_message("%s: %zu seeds, %zu rebalances (%zu dry runs); balance asserted %zu global, "
                  "%zu per zone, %zu by load, skipped %zu; zone checks %zu; leave-move checks "
                  "%zu (infeasible %zu), join-move checks %zu\n",
                  f->name, one ? (size_t)1 : seeds, tot.rebalances, tot.dry_runs,
                  tot.balance_global, tot.balance_zone, tot.balance_load, tot.skipped_balance,
                  tot.zone_partitions, tot.leave_moves, tot.leave_infeasible, tot.join_moves);
    if (failed) {
        fail_msg("%zu of %zu seeds failed; first: %s", failed, one ? (size_t)1 : seeds, first);
    }
    if (softbuf[0]) {
        fail_msg("soft finding: %s", softbuf);
    }
    /* the checks must really have run */
    if (!one) {
        assert_true(tot.rebalances > 0);
        assert_true(tot.balance_global + tot.balance_zone > 0);
        if (!f->loads) { /* the leave oracle works on counts */
            assert_true(tot.leave_moves > 0);
        }
    }
}

static void test_props_plain(void **state)
{
    (void)state;
    family f = {"plain", 1000, 40, 0, false, false, false, false, 2000, 60, 10};
    run_family(&f);
}

static void test_props_zones_equal(void **state)
{
    (void)state;
    family f = {"zones-equal", 2000, 40, -1, true, false, false, false, 2000, 60, 10};
    run_family(&f);
}

static void test_props_zones_any(void **state)
{
    (void)state;
    family f = {"zones-any", 3000, 32, -1, false, false, false, false, 1500, 40, 10};
    run_family(&f);
}

static void test_props_weighted(void **state)
{
    (void)state;
    family f = {"weighted", 4000, 32, 0, false, true, false, false, 1500, 40, 8};
    run_family(&f);
}

static void test_props_loads(void **state)
{
    (void)state;
    family f = {"lognormal", 5000, 30, -1, true, false, true, false, 1500, 40, 8};
    run_family(&f);
}

/* Small scenarios: failures come with short reproductions (SHARDZ_CK_TRACE=1). */
static void test_props_small(void **state)
{
    (void)state;
    family f = {"small", 8000, 200, -1, false, false, false, false, 40, 10, 10};
    run_family(&f);
}

static void test_props_small_weighted(void **state)
{
    (void)state;
    family f = {"small-weighted", 9000, 100, 0, false, true, false, false, 60, 10, 8};
    run_family(&f);
}

static void test_props_twin(void **state)
{
    (void)state;
    family f = {"twin", 6000, 16, -1, true, false, false, true, 800, 30, 8};
    run_family(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_props_plain),     cmocka_unit_test(test_props_zones_equal),
        cmocka_unit_test(test_props_zones_any), cmocka_unit_test(test_props_weighted),
        cmocka_unit_test(test_props_loads),     cmocka_unit_test(test_props_twin),
        cmocka_unit_test(test_props_small),     cmocka_unit_test(test_props_small_weighted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
