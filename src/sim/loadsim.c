/* The load simulator's engine: one run of a load scenario on one strategy. It owns the
 * simulated clock, the partitions' true loads (the scenario), their statistics (fed through the
 * real shardz_load_smooth), the simulator's own view of the assignment and of each partition's
 * last move, and the sharder the real balancer works on. Each step measures the true balance;
 * the balancer's plans are checked against the simulator's view. Deterministic for a seed. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sim/loadsim.h"
#include "sim/simkit.h"

#define LSIM_ID_LEN 16
#define LSIM_BATCH 8192
#define LSIM_T0 1000000 /* simulated epoch (ms): non-zero, 0 means "never" to the statistics */
#define LSIM_STREAM_SCENARIO 7u

struct lsim {
    const lsim_config *cfg;
    lsim_strategy strategy;
    shardz_sharder *s;
    size_t np, nn, nd;
    unsigned R;
    char *pids, *nids;  /* LSIM_ID_LEN each */
    double *base;       /* np x nd: the loads before the scenario */
    double *truth;      /* np x nd: what the partitions carry now */
    double *stat;       /* np x nd: the statistics (smoothed) */
    int64_t *stat_ms;   /* per partition: last sample */
    int64_t *last_move; /* per partition: SHARDZ_NEVER_MOVED or the simulated time */
    uint32_t *owner;    /* np x R */
    double *cap;        /* nn x nd: capacity (INFINITY: none) */
    double *mult;       /* per partition: the scenario's multiplier (hotspot, zipf) */
    double *phase;      /* per partition: diurnal phase */
    uint32_t victim;    /* halfcap: the node that loses half its capacity */
    double *nload;      /* nn x nd: measurement scratch */
    size_t step;
    int64_t now;
    lsim_step *cur; /* the step being run (move bookkeeping) */
};

static const char *const lsim_scenario_names[] = {"hotspot", "diurnal", "zipf", "halfcap"};
static const char *const lsim_strategy_names[] = {"balancer", "seed-1.3x", "greedy"};

void lsim_config_defaults(lsim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->partitions = 10000;
    cfg->nodes = 100;
    cfg->replicas = 1;
    cfg->zones = 3;
    cfg->ndims = 1;
    cfg->load = SIM_LOAD_LOGNORMAL;
    cfg->sigma = 1.0;
    cfg->zipf_s = 1.1;
    cfg->headroom = 2.0;
    cfg->scenario = LSIM_HOTSPOT;
    cfg->event_step = 6;
    cfg->hot_fraction = 0.01;
    cfg->hot_factor = 2.0;
    cfg->diurnal_amp = 0.5;
    cfg->diurnal_period_ms = 3600000;
    cfg->zipf_keys = 0;
    cfg->zipf_keys_s = 0.8;
    cfg->steps = 60;
    cfg->step_ms = 10000;
    cfg->round_ms = 30000;
    cfg->tau_ms = 60000;
    shardz_balance_policy_default(&cfg->policy);
    cfg->seed = 1;
}

/* Index of text in names[0..n-1], or -1. */
static int lsim_lookup(const char *const *names, unsigned n, const char *text)
{
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(text, names[i]) == 0) {
            return (int)i;
        }
    }
    return -1;
}

int lsim_parse_scenario(const char *text, lsim_scenario_kind *out)
{
    int i = lsim_lookup(lsim_scenario_names, 4, text);
    *out = i >= 0 ? (lsim_scenario_kind)i : *out;
    return i >= 0 ? 0 : -1;
}

const char *lsim_scenario_name(lsim_scenario_kind k)
{
    return (unsigned)k < 4 ? lsim_scenario_names[k] : "unknown";
}

int lsim_parse_strategy(const char *text, lsim_strategy *out)
{
    int i = lsim_lookup(lsim_strategy_names, LSIM_MAX_STRATEGIES, text);
    *out = i >= 0 ? (lsim_strategy)i : *out;
    return i >= 0 ? 0 : -1;
}

const char *lsim_strategy_name(lsim_strategy s)
{
    return (unsigned)s < LSIM_MAX_STRATEGIES ? lsim_strategy_names[s] : "unknown";
}

static int lsim_fail(lsim_step *st, const char *call, int rc)
{
    st->rc = rc;
    snprintf(st->failed_call, sizeof st->failed_call, "%s", call);
    return rc;
}

/* Index from an id "p0000042" / "n00042", or SIZE_MAX. */
static size_t lsim_index(const char *id, char prefix, size_t n)
{
    char *end;
    if (id == NULL || id[0] != prefix) {
        return SIZE_MAX;
    }
    unsigned long long v = strtoull(id + 1, &end, 10);
    return *end == '\0' && v < n ? (size_t)v : SIZE_MAX;
}

/* The scenario's per-partition state: hot set, zipf-key loads, phases, the victim node. */
static void lsim_scenario_init(lsim *L)
{
    const lsim_config *c = L->cfg;
    simkit_rng rng;
    simkit_rng_seed(&rng, c->seed, LSIM_STREAM_SCENARIO);
    for (size_t p = 0; p < L->np; p++) {
        L->mult[p] = 1.0;
    }
    if (c->scenario == LSIM_HOTSPOT) {
        size_t k = (size_t)llround(c->hot_fraction * (double)L->np);
        size_t *idx = malloc(L->np * sizeof *idx);
        k = k > 0 ? k : 1;
        if (idx != NULL) { /* a partial Fisher-Yates picks k distinct partitions */
            for (size_t p = 0; p < L->np; p++) {
                idx[p] = p;
            }
            for (size_t i = 0; i < k && i < L->np; i++) {
                size_t j = i + (size_t)simkit_below(&rng, L->np - i);
                size_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
                L->mult[idx[i]] = c->hot_factor;
            }
        }
        free(idx);
    } else if (c->scenario == LSIM_DIURNAL) {
        for (size_t p = 0; p < L->np; p++) {
            L->phase[p] = 2.0 * M_PI * simkit_uniform(&rng);
        }
    } else if (c->scenario == LSIM_ZIPF) {
        /* Keys of zipf popularity hashed to partitions: a partition's load becomes the
         * popularity of its keys, scaled so the total stays that of dimension 0's base. */
        size_t keys = c->zipf_keys > 0 ? c->zipf_keys : 100 * L->np;
        double sum = 0.0, base = 0.0;
        for (size_t p = 0; p < L->np; p++) {
            L->phase[p] = 0.0;
        }
        for (size_t k = 0; k < keys; k++) {
            double pop = pow((double)(k + 1), -c->zipf_keys_s);
            L->phase[simkit_below(&rng, L->np)] += pop;
            sum += pop;
        }
        for (size_t p = 0; p < L->np; p++) {
            base += L->base[p * L->nd];
        }
        for (size_t p = 0; p < L->np; p++) {
            double b = L->base[p * L->nd];
            L->mult[p] = b > 0.0 ? L->phase[p] * base / sum / b : 0.0;
        }
    } else {
        L->victim = (uint32_t)simkit_below(&rng, L->nn);
    }
}

/* The true loads at the current step. */
static void lsim_truth(lsim *L)
{
    const lsim_config *c = L->cfg;
    bool after = L->step >= c->event_step;
    double t = (double)(L->now - LSIM_T0);
    for (size_t p = 0; p < L->np; p++) {
        double m = 1.0;
        if ((c->scenario == LSIM_HOTSPOT || c->scenario == LSIM_ZIPF) && after) {
            m = L->mult[p];
        } else if (c->scenario == LSIM_DIURNAL) {
            m = 1.0 +
                c->diurnal_amp * sin(2.0 * M_PI * t / (double)c->diurnal_period_ms + L->phase[p]);
        }
        for (size_t d = 0; d < L->nd; d++) {
            L->truth[p * L->nd + d] = L->base[p * L->nd + d] * m;
        }
    }
}

/* One sample per partition into the statistics; the balancer's sharder gets them. */
static int lsim_sample(lsim *L, lsim_step *st)
{
    for (size_t p = 0; p < L->np; p++) {
        double *x = &L->stat[p * L->nd];
        shardz_load_smooth(x, &L->stat_ms[p], &L->truth[p * L->nd], NULL, L->nd, L->now,
                           L->cfg->tau_ms);
        if (L->strategy != LSIM_BALANCER || L->s == NULL) {
            continue; /* before lsim_place, the partitions are registered with these loads */
        }
        int rc = shardz_sharder_set_partition_load(L->s, L->pids + p * LSIM_ID_LEN, x, L->nd);
        if (rc != 0) {
            return lsim_fail(st, "set_partition_load", rc);
        }
    }
    return 0;
}

/* Node n's spec; its zone name ("z<n mod zones>") goes into zone[LSIM_ID_LEN]. */
static void lsim_node_spec(const lsim *L, size_t n, shardz_node_spec *spec, char *zone)
{
    memset(spec, 0, sizeof *spec);
    snprintf(zone, LSIM_ID_LEN, "z%u", (unsigned)(n % L->cfg->zones));
    spec->id = L->nids + n * LSIM_ID_LEN;
    spec->zone = zone;
    spec->state = SHARDZ_NODE_ALIVE;
    if (isfinite(L->cap[n * L->nd])) {
        spec->ncapacity = L->nd;
        for (size_t d = 0; d < L->nd; d++) {
            spec->capacity[d] = L->cap[n * L->nd + d];
        }
    }
}

/* Records one move in the simulator's view (every strategy's moves go through here). */
static int lsim_apply(void *ctx, size_t p, unsigned slot, uint32_t to)
{
    lsim *L = ctx;
    lsim_step *st = L->cur;
    int64_t last = L->last_move[p];
    if (last != SHARDZ_NEVER_MOVED && L->now - last < L->cfg->policy.cooldown_ms) {
        st->repeats++;
    }
    L->last_move[p] = L->now;
    L->owner[p * L->R + slot] = to;
    st->moves++;
    st->moved += L->stat[p * L->nd];
    return 0;
}

static int64_t lsim_last_move(const char *partition, void *ctx)
{
    const lsim *L = ctx;
    size_t p = lsim_index(partition, 'p', L->np);
    return p != SIZE_MAX ? L->last_move[p] : SHARDZ_NEVER_MOVED;
}

/* The real balancer's round; its plan is checked against the simulator's view. */
static int lsim_balancer_round(lsim *L, lsim_step *st)
{
    shardz_plan *plan = NULL;
    shardz_balance_report rep;
    uint64_t t0 = simkit_wall_ns();
    int rc = shardz_sharder_balance_round(L->s, &L->cfg->policy, L->now, lsim_last_move, L, 0,
                                          &plan, &rep);
    st->round_ms = (double)(simkit_wall_ns() - t0) / 1e6;
    if (rc != 0) {
        return lsim_fail(st, "balance_round", rc);
    }
    snprintf(st->stop, sizeof st->stop, "%s", shardz_balance_stop_name(rep.stop));
    for (size_t i = 0; i < shardz_plan_count(plan); i++) {
        shardz_move mv;
        shardz_plan_move(plan, i, &mv);
        size_t p = lsim_index(mv.partition, 'p', L->np);
        size_t from = lsim_index(mv.from, 'n', L->nn), to = lsim_index(mv.to, 'n', L->nn);
        if (p == SIZE_MAX || from == SIZE_MAX || to == SIZE_MAX || mv.slot >= L->R ||
            L->owner[p * L->R + mv.slot] != from || mv.reason != SHARDZ_REASON_LOAD) {
            st->errors++;
            continue;
        }
        lsim_apply(L, p, mv.slot, (uint32_t)to);
    }
    shardz_plan_free(plan);
    return 0;
}

static int lsim_baseline_round(lsim *L, lsim_step *st)
{
    lsim_view v = {.nparts = L->np,
                   .nnodes = L->nn,
                   .ndims = L->nd,
                   .replicas = L->R,
                   .load = L->stat,
                   .cap = L->cap,
                   .owner = L->owner,
                   .last_move = L->last_move,
                   .now_ms = L->now,
                   .cooldown_ms = LSIM_GREEDY_COOLDOWN_MS};
    uint64_t t0 = simkit_wall_ns();
    int rc = L->strategy == LSIM_SEED ? lsim_seed_steal(&v, lsim_apply, L)
                                      : lsim_greedy_band(&v, lsim_apply, L);
    st->round_ms = (double)(simkit_wall_ns() - t0) / 1e6;
    return rc != 0 ? lsim_fail(st, "baseline", rc) : 0;
}

/* Balance of true loads (and dimension 0 of the statistics) over the nodes. */
static void lsim_measure(lsim *L, lsim_step *st)
{
    size_t nd = L->nd;
    for (int pass = 0; pass < 2; pass++) {
        const double *load = pass == 0 ? L->truth : L->stat;
        memset(L->nload, 0, L->nn * nd * sizeof *L->nload);
        for (size_t p = 0; p < L->np; p++) {
            for (unsigned s = 0; s < L->R; s++) {
                uint32_t n = L->owner[p * L->R + s];
                for (size_t d = 0; d < nd; d++) {
                    L->nload[n * nd + d] += load[p * nd + d];
                }
            }
        }
        for (size_t d = 0; d < nd; d++) {
            double total = 0.0, wsum = 0.0, mx = 0.0, sq = 0.0;
            for (size_t n = 0; n < L->nn; n++) {
                double c = L->cap[n * nd + d];
                total += L->nload[n * nd + d];
                wsum += isfinite(c) ? c : 1.0;
            }
            for (size_t n = 0; n < L->nn && total > 0.0; n++) {
                double c = L->cap[n * nd + d], w = isfinite(c) ? c : 1.0;
                double r = L->nload[n * nd + d] / (total * w / wsum);
                mx = r > mx ? r : mx;
                sq += w * (r - 1.0) * (r - 1.0);
            }
            if (pass == 0 && d == 0 && total > 0.0) {
                double big = 0.0;
                for (size_t p = 0; p < L->np; p++) {
                    big = load[p * nd] > big ? load[p * nd] : big;
                }
                st->largest = big / (total / (double)L->nn);
            }
            if (pass == 0) {
                st->ratio[d] = mx;
                st->cv[d] = wsum > 0.0 ? sqrt(sq / wsum) : 0.0;
            } else if (d == 0) {
                st->seen_ratio = mx;
            }
        }
    }
}

void lsim_free(lsim *L)
{
    if (L == NULL) {
        return;
    }
    shardz_sharder_free(L->s);
    free(L->pids);
    free(L->nids);
    free(L->base);
    free(L->truth);
    free(L->stat);
    free(L->stat_ms);
    free(L->last_move);
    free(L->owner);
    free(L->cap);
    free(L->mult);
    free(L->phase);
    free(L->nload);
    free(L);
}

/* Registers the nodes and the partitions and places every replica with the "replica" planner;
 * the simulator's view of the assignment is read back from the sharder. */
static int lsim_place(lsim *L, lsim_step *st)
{
    const lsim_config *c = L->cfg;
    shardz_sharder_config cfg = {
        .kind = "replica", .replicas = L->R, .ndims = L->nd, .seed = c->seed};
    shardz_node_spec *specs = calloc(L->nn, sizeof *specs);
    char(*zones)[LSIM_ID_LEN] = calloc(L->nn, LSIM_ID_LEN);
    shardz_partition_spec *batch = calloc(LSIM_BATCH, sizeof *batch);
    shardz_plan *plan = NULL;
    int rc = SHARDZ_ENOMEM;

    if (specs == NULL || zones == NULL || batch == NULL) {
        lsim_fail(st, "calloc", rc);
        goto out;
    }
    rc = shardz_sharder_new(&cfg, &L->s);
    if (rc != 0) {
        lsim_fail(st, "sharder_new", rc);
        goto out;
    }
    for (size_t n = 0; n < L->nn; n++) {
        lsim_node_spec(L, n, &specs[n], zones[n]);
    }
    rc = shardz_sharder_register_nodes(L->s, specs, L->nn);
    if (rc != 0) {
        lsim_fail(st, "register_nodes", rc);
        goto out;
    }
    for (size_t first = 0; first < L->np; first += LSIM_BATCH) {
        size_t k = L->np - first < LSIM_BATCH ? L->np - first : LSIM_BATCH;
        for (size_t i = 0; i < k; i++) {
            shardz_partition_spec *p = &batch[i];
            memset(p, 0, sizeof *p);
            p->id = L->pids + (first + i) * LSIM_ID_LEN;
            p->replicas = L->R;
            p->nload = L->nd;
            memcpy(p->load, &L->stat[(first + i) * L->nd], L->nd * sizeof *p->load);
        }
        rc = shardz_sharder_register_partitions(L->s, batch, k);
        if (rc != 0) {
            lsim_fail(st, "register_partitions", rc);
            goto out;
        }
    }
    rc = shardz_sharder_rebalance(L->s, 0, &plan);
    if (rc != 0) {
        lsim_fail(st, "rebalance", rc);
        goto out;
    }
    for (size_t p = 0; p < L->np && rc == 0; p++) {
        shardz_replica reps[SHARDZ_MAX_REPLICAS];
        size_t n = 0;
        rc = shardz_sharder_nodes_of_partition(L->s, L->pids + p * LSIM_ID_LEN, reps,
                                               SHARDZ_MAX_REPLICAS, &n);
        if (rc == 0 && n != L->R) {
            rc = SHARDZ_ENOSPC; /* a replica could not be placed: nothing to balance */
        }
        for (size_t i = 0; i < n && rc == 0; i++) {
            L->owner[p * L->R + reps[i].slot] = (uint32_t)lsim_index(reps[i].node, 'n', L->nn);
        }
        if (rc != 0) {
            lsim_fail(st, "nodes_of_partition", rc);
        }
    }
out:
    shardz_plan_free(plan);
    free(batch);
    free(zones);
    free(specs);
    return rc;
}

int lsim_new(const lsim_config *cfg, lsim_strategy strategy, lsim **out, lsim_step *st)
{
    lsim *L = calloc(1, sizeof *L);
    int rc = SHARDZ_ENOMEM;

    *out = NULL;
    memset(st, 0, sizeof *st);
    if (L == NULL) {
        return lsim_fail(st, "calloc", rc);
    }
    L->cfg = cfg;
    L->strategy = strategy;
    L->np = cfg->partitions;
    L->nn = cfg->nodes;
    L->nd = cfg->ndims;
    L->R = cfg->replicas;
    L->now = LSIM_T0;
    L->pids = malloc(L->np * LSIM_ID_LEN);
    L->nids = malloc(L->nn * LSIM_ID_LEN);
    L->base = malloc(L->np * L->nd * sizeof *L->base);
    L->truth = malloc(L->np * L->nd * sizeof *L->truth);
    L->stat = malloc(L->np * L->nd * sizeof *L->stat);
    L->stat_ms = calloc(L->np, sizeof *L->stat_ms);
    L->last_move = malloc(L->np * sizeof *L->last_move);
    L->owner = malloc(L->np * L->R * sizeof *L->owner);
    L->cap = malloc(L->nn * L->nd * sizeof *L->cap);
    L->mult = malloc(L->np * sizeof *L->mult);
    L->phase = calloc(L->np, sizeof *L->phase);
    L->nload = malloc(L->nn * L->nd * sizeof *L->nload);
    double *draw = malloc(L->np * sizeof *draw);
    if (!L->pids || !L->nids || !L->base || !L->truth || !L->stat || !L->stat_ms || !L->last_move ||
        !L->owner || !L->cap || !L->mult || !L->phase || !L->nload || !draw) {
        lsim_fail(st, "malloc", rc);
        goto fail;
    }
    for (size_t p = 0; p < L->np; p++) {
        snprintf(L->pids + p * LSIM_ID_LEN, LSIM_ID_LEN, "p%07u", (unsigned)p);
        L->last_move[p] = SHARDZ_NEVER_MOVED;
    }
    for (size_t n = 0; n < L->nn; n++) {
        snprintf(L->nids + n * LSIM_ID_LEN, LSIM_ID_LEN, "n%05u", (unsigned)n);
    }
    /* Base loads: each dimension its own draw of the distribution, mean 1. */
    sim_scenario sc;
    sim_scenario_defaults(&sc);
    sc.partitions = L->np;
    sc.load = cfg->load;
    sc.sigma = cfg->sigma;
    sc.zipf_s = cfg->zipf_s;
    sc.seed = cfg->seed;
    for (size_t d = 0; d < L->nd; d++) {
        sim_draw_loads(&sc, d, draw);
        for (size_t p = 0; p < L->np; p++) {
            L->base[p * L->nd + d] = draw[p];
        }
    }
    for (size_t n = 0; n < L->nn * L->nd; n++) {
        /* Mean node load is partitions * replicas / nodes in every dimension (mean 1). */
        L->cap[n] =
            cfg->headroom > 0.0 ? cfg->headroom * (double)L->np * L->R / (double)L->nn : INFINITY;
    }
    lsim_scenario_init(L);
    lsim_truth(L);
    L->cur = st;
    rc = lsim_sample(L, st); /* the first sample is taken as it is; the sharder is not built */
    if (rc == 0) {
        rc = lsim_place(L, st);
    }
    if (rc != 0) {
        goto fail;
    }
    lsim_measure(L, st);
    memcpy(st->before, st->ratio, sizeof st->before);
    free(draw);
    *out = L;
    return 0;
fail:
    free(draw);
    lsim_free(L);
    return rc;
}

int lsim_step_once(lsim *L, lsim_step *st)
{
    const lsim_config *c = L->cfg;
    int rc = 0;

    memset(st, 0, sizeof *st);
    L->cur = st;
    L->step++;
    L->now = LSIM_T0 + (int64_t)L->step * c->step_ms;
    st->t_ms = L->now - LSIM_T0;
    if (c->scenario == LSIM_HALFCAP && L->step == c->event_step) {
        shardz_node_spec spec;
        char zone[LSIM_ID_LEN];
        for (size_t d = 0; d < L->nd; d++) {
            L->cap[L->victim * L->nd + d] /= 2.0;
        }
        lsim_node_spec(L, L->victim, &spec, zone);
        rc = shardz_sharder_update_node(L->s, &spec);
        if (rc != 0) {
            return lsim_fail(st, "update_node", rc);
        }
    }
    lsim_truth(L);
    rc = lsim_sample(L, st);
    if (rc != 0) {
        return rc;
    }
    if ((st->t_ms % c->round_ms) == 0) {
        lsim_measure(L, st);
        memcpy(st->before, st->ratio, sizeof st->before);
        st->round = 1;
        rc = L->strategy == LSIM_BALANCER ? lsim_balancer_round(L, st) : lsim_baseline_round(L, st);
        if (rc != 0) {
            return rc;
        }
    }
    double total = 0.0;
    for (size_t p = 0; p < L->np; p++) {
        total += L->stat[p * L->nd] * L->R;
    }
    st->moved = total > 0.0 ? st->moved / total : 0.0;
    lsim_measure(L, st);
    if (!st->round) {
        memcpy(st->before, st->ratio, sizeof st->before);
    }
    return 0;
}

shardz_sharder *lsim_sharder(const lsim *L)
{
    return L->s;
}

int lsim_run_strategy(const lsim_config *cfg, lsim_strategy strategy, int fd)
{
    lsim *L = NULL;
    lsim_step st;
    int rc = lsim_new(cfg, strategy, &L, &st);

    if (simkit_emit(fd, &st, sizeof st) != 0 || rc != 0) {
        goto out;
    }
    for (size_t i = 0; i < cfg->steps && i < LSIM_MAX_STEPS; i++) {
        rc = lsim_step_once(L, &st);
        if (simkit_emit(fd, &st, sizeof st) != 0 || rc != 0) {
            rc = rc != 0 ? rc : -1;
            goto out;
        }
    }
out:
    lsim_free(L);
    return rc;
}

long lsim_converged_at(const lsim_config *cfg, const lsim_run *r)
{
    size_t k = r->nsteps;
    while (k > cfg->event_step && k > 0) {
        const lsim_step *s = &r->steps[k - 1];
        bool within = s->rc == 0;
        for (size_t d = 0; d < cfg->ndims && within; d++) {
            within = s->ratio[d] <= 1.0 + cfg->policy.band;
        }
        if (!within) {
            break;
        }
        k--;
    }
    return k < r->nsteps ? (long)k : -1;
}
