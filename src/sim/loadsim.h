/* The simulator's load scenarios over time (issue 4): a simulated clock advances in steps, the
 * partitions' true loads follow a scenario (a hotspot, diurnal drift, zipf keys, a node losing
 * half its capacity), every step feeds a sample into the real load statistics
 * (shardz_load_smooth), and every round a strategy moves replicas: the real load balancer
 * (shardz_sharder_balance_round with the real policy) or one of two baselines (baseline.c).
 * loadsim.c owns a run's state; loadsim_report.c prints the runs. Single-threaded. */
#ifndef SHARDZ_SIM_LOADSIM_H
#define SHARDZ_SIM_LOADSIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shardz/placement.h"
#include "sim/sim.h"

#define LSIM_MAX_STEPS 2000
#define LSIM_MAX_STRATEGIES 3

typedef enum {
    LSIM_HOTSPOT = 0, /* from event_step, hot_fraction of the partitions carry hot_factor x */
    LSIM_DIURNAL,     /* every partition x (1 + amp sin(2 pi t / period + its own phase)) */
    LSIM_ZIPF,        /* from event_step, loads come from zipf key popularity (keys hashed) */
    LSIM_HALFCAP,     /* at event_step, one node loses half its capacity in every dimension */
} lsim_scenario_kind;

typedef enum {
    LSIM_BALANCER = 0, /* the real balancer round (src/placement/balancer.c) */
    LSIM_SEED,         /* baseline: the seed's 1.3x work stealing, by load */
    LSIM_GREEDY,       /* baseline: a Cadence-like greedy band (1.15x / 0.90x, 1% per pass) */
} lsim_strategy;

/* Everything that defines a load run; identical for every strategy compared side by side. */
typedef struct {
    size_t partitions, nodes;
    unsigned replicas, zones;
    size_t ndims;       /* 1..SHARDZ_MAX_DIMS; each dimension's base load drawn independently */
    sim_load_dist load; /* base loads (sim_draw_loads' distributions) */
    double sigma, zipf_s;
    double headroom; /* capacity per node in every dimension: headroom x its fair share */
    lsim_scenario_kind scenario;
    size_t event_step;   /* when the hotspot, the zipf loads or the lost capacity come */
    double hot_fraction; /* hotspot: share of partitions (0.01) */
    double hot_factor;   /* hotspot: their load multiplier (2) */
    double diurnal_amp;  /* diurnal: amplitude, < 1 (0.5) */
    int64_t diurnal_period_ms;
    size_t zipf_keys;             /* zipf: keys (0: 100 per partition) */
    double zipf_keys_s;           /* zipf: popularity exponent of the keys (1.1) */
    size_t steps;                 /* steps after step 0 (the initial placement) */
    int64_t step_ms;              /* simulated time per step (one load sample per partition) */
    int64_t round_ms;             /* a strategy's round every round_ms (a multiple of step_ms) */
    int64_t tau_ms;               /* the statistics' EWMA time constant (0: no smoothing) */
    shardz_balance_policy policy; /* the real balancer's policy; its cooldown_ms also defines
                                     "moved twice within the cooldown" for every strategy */
    uint64_t seed;
} lsim_config;

/* What one step measured on one strategy. Plain data: it crosses the pipe from the child. */
typedef struct {
    int rc; /* 0, or the library error that stopped the run at this step */
    char failed_call[40];
    int64_t t_ms;    /* simulated time of the step */
    int round;       /* a round ran at this step */
    double round_ms; /* wall time of the round */
    size_t moves;    /* replica moves of the round */
    double moved;    /* their smoothed load in dimension 0, as a share of the total */
    size_t repeats;  /* moves of a partition whose last move is younger than the cooldown */
    char stop[12];   /* the balancer's stop reason ("" for the baselines) */
    /* Over alive nodes, true loads against capacity-weighted shares, per dimension:
     * max/mean and the coefficient of variation (weighted rms of rel - 1). */
    double ratio[SHARDZ_MAX_DIMS], cv[SHARDZ_MAX_DIMS];
    double before[SHARDZ_MAX_DIMS]; /* max/mean just before the step's round (or = ratio) */
    double seen_ratio;              /* dimension 0 by the statistics (what the strategies see) */
    double largest; /* the largest partition's true load / the mean node load (dimension
                       0): no assignment brings max/mean below it */
    size_t errors;  /* failed checks (the plan and the simulator's view disagree) */
} lsim_step;

/* A strategy's run. */
typedef struct {
    lsim_strategy strategy;
    lsim_step steps[LSIM_MAX_STEPS + 1];
    size_t nsteps;
    int status; /* 0: completed */
    char error[SIM_MAX_NOTE];
} lsim_run;

/* Fills *cfg with the defaults (10,000 partitions x 1 on 100 nodes in 3 zones, lognormal, a 1%
 * hotspot doubling at step 6, 10 s steps, rounds every 30 s, tau 60 s, default policy). */
void lsim_config_defaults(lsim_config *cfg);
/* "hotspot" ...; 0 or -1. */
int lsim_parse_scenario(const char *text, lsim_scenario_kind *out);
const char *lsim_scenario_name(lsim_scenario_kind k);
/* "balancer", "seed-1.3x", "greedy"; 0 or -1. */
int lsim_parse_strategy(const char *text, lsim_strategy *out);
const char *lsim_strategy_name(lsim_strategy s);

/* A run in progress (loadsim.c): the sharder, the simulator's view (assignment, true loads,
 * statistics, last moves) and the clock. Owned by the caller of lsim_new (lsim_free). */
typedef struct lsim lsim;

/* Builds the cluster, places every replica with the "replica" planner and measures step 0
 * into *st. cfg is borrowed for the run's lifetime. 0, or a library error (SHARDZ_ENOMEM...)
 * with *out NULL. */
int lsim_new(const lsim_config *cfg, lsim_strategy strategy, lsim **out, lsim_step *st);
/* Advances the clock one step: the scenario's loads, one sample per partition into the
 * statistics, the strategy's round when one is due, then the measures into *st. 0 or a
 * library error (st->rc and st->failed_call say which call). */
int lsim_step_once(lsim *L, lsim_step *st);
/* Frees a run; accepts NULL. */
void lsim_free(lsim *L);
/* The run's sharder (the real balancer's state), borrowed: valid until lsim_free. */
shardz_sharder *lsim_sharder(const lsim *L);

/* Runs cfg on one strategy, emitting one lsim_step per step on fd (inside a child of
 * simkit_isolated). 0 when every step ran. */
int lsim_run_strategy(const lsim_config *cfg, lsim_strategy strategy, int fd);

/* The first step (>= event_step, so the warm-up does not count) from which max/mean stays
 * within 1 + band in every dimension up to the last step, or -1 when it never settles. */
long lsim_converged_at(const lsim_config *cfg, const lsim_run *r);

/* loadsim_report.c */
void lsim_report_table(FILE *out, const lsim_config *cfg, const lsim_run *runs, size_t nruns);
void lsim_report_json(FILE *out, const lsim_config *cfg, const lsim_run *runs, size_t nruns);

/* ---- baselines (baseline.c) ----------------------------------------------------------------
 * They see what the balancer sees (the statistics, capacity-weighted shares over the nodes) and
 * balance dimension 0, keeping a partition's replicas on distinct nodes and receivers within
 * capacity; they move through the caller's move function. */

/* The simulator's view a baseline reads. Everything borrowed for the call. */
typedef struct {
    size_t nparts, nnodes, ndims;
    unsigned replicas;
    const double *load;       /* nparts x ndims: smoothed loads */
    const double *cap;        /* nnodes x ndims: capacity (weights of the shares, hard limit) */
    const uint32_t *owner;    /* nparts x replicas: node index (updated by move) */
    const int64_t *last_move; /* per partition, SHARDZ_NEVER_MOVED */
    int64_t now_ms, cooldown_ms;
} lsim_view;

/* Moves replica slot `slot` of partition `part` to node `to` (the caller updates owner). */
typedef int (*lsim_move_fn)(void *ctx, size_t part, unsigned slot, uint32_t to);

/* The seed's stealWork by load: every node above 1.3x its share gives replicas away, the last
 * of its list first (as the seed), each to the node least loaded against its share that does
 * not hold the partition, until it is at its share. No budget, no cooldown. 0 or an error of
 * move (or SHARDZ_ENOMEM). */
int lsim_seed_steal(const lsim_view *v, lsim_move_fn move, void *ctx);
/* A Cadence-like greedy band: while a node is above 1.15x its share and another below 0.90x,
 * the most loaded gives its largest replica not in cooldown that the least loaded can take and
 * stay at or below 1.15x; at most 1% of the partitions (at least 1) per pass. */
int lsim_greedy_band(const lsim_view *v, lsim_move_fn move, void *ctx);

#define LSIM_SEED_FACTOR 1.3
#define LSIM_GREEDY_HIGH 1.15
#define LSIM_GREEDY_LOW 0.90
#define LSIM_GREEDY_FRACTION 0.01
#define LSIM_GREEDY_COOLDOWN_MS 60000

#endif
