/* The placement simulator's internal interface: a scenario (cluster shape, capacity and load
 * distributions, events), the per-step record a run produces, the runner that drives the real
 * placement library through a scenario (run.c), and the table and JSON reports (report.c).
 * Single-threaded; each kind runs in its own forked child (simkit_isolated). */
#ifndef SHARDZ_SIM_SIM_H
#define SHARDZ_SIM_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shardz/placement.h"

#define SIM_MAX_EVENTS 32
#define SIM_MAX_KINDS 8
#define SIM_MAX_STEPS (SIM_MAX_EVENTS + 1)
#define SIM_MAX_NOTE 160

typedef enum {
    SIM_LOAD_EQUAL = 0, /* every partition 1.0 */
    SIM_LOAD_UNIFORM,   /* uniform in [0.5, 1.5) */
    SIM_LOAD_LOGNORMAL, /* lognormal(0, sigma) */
    SIM_LOAD_ZIPF,      /* rank^-s, ranks shuffled over partitions */
} sim_load_dist;

typedef enum {
    SIM_CAP_EQUAL = 0, /* every node weighs 1 */
    SIM_CAP_MIXED,     /* weights 1x, 2x, 4x, mixed inside every zone */
} sim_cap_dist;

typedef enum {
    SIM_EV_INITIAL = 0, /* register nodes and partitions, place everything (step 0) */
    SIM_EV_JOIN,        /* register `count` new nodes */
    SIM_EV_LEAVE,       /* unregister `count` random nodes (reason leave) */
    SIM_EV_ZONELOSS,    /* every node of `count` random zones dies (state dead) */
    SIM_EV_DRAIN,       /* `count` random nodes start draining */
    SIM_EV_LOADSHIFT,   /* every partition gets a new load drawn from the distribution */
    SIM_EV_REBALANCE,   /* a bare rebalance: a settled sharder should move nothing */
} sim_event_kind;

typedef struct {
    sim_event_kind kind;
    unsigned count;
} sim_event;

/* Everything that defines a run; identical for every kind compared side by side. */
typedef struct {
    size_t partitions;
    unsigned replicas;
    size_t nodes;
    unsigned zones;
    sim_cap_dist cap;
    double headroom; /* > 0: capacity[0] = weight * headroom * total load / total weight */
    sim_load_dist load;
    double sigma;   /* lognormal */
    double zipf_s;  /* zipf exponent */
    double band;    /* shardz_sharder_config.band */
    uint32_t slots; /* "hash" slot space; 0: the smallest power of two >= max(partitions,
                       SHARDZ_HASH_SLOTS_DEFAULT), at most SHARDZ_HASH_SLOTS_MAX */
    uint64_t seed;
    sim_event events[SIM_MAX_EVENTS];
    size_t nevents;
} sim_scenario;

/* What one step measured on one kind. Plain data: it crosses the pipe from the child. */
typedef struct {
    char label[24]; /* "initial", "join:5", ... */
    int rc;         /* 0, or the library error that stopped the run at this step */
    char failed_call[40];
    double ms;         /* wall time of the step's library calls */
    double plan_ms;    /* wall time of the rebalance call alone */
    size_t moves;      /* moves in the plan */
    long long bound;   /* lower bound on moves; -1 when none is defined */
    double load_moved; /* dimension-0 load carried by the moves */
    double load_bound; /* the load that must move at least; -1 when none is defined */
    size_t by_reason[SHARDZ_REASON__COUNT];
    size_t plan_missing;   /* shardz_plan_missing */
    size_t repeat_moves;   /* moves a second (dry-run) rebalance still wants */
    size_t eligible_nodes; /* alive nodes after the step */
    size_t replicas;       /* assigned replicas after the step */
    double mean_load;      /* dimension-0 load per eligible node, mean */
    double max_part_load;  /* the largest partition's load */
    /* Balance over eligible nodes, each against its fair share (count or load * weight / total
     * weight): max/share and max(dev) - min(dev), dev = value - share. With equal weights these
     * are max/mean and max - min. */
    double cnt_ratio, cnt_spread;
    double load_ratio, load_spread;
    /* The best count balance the zone rule allows (see sim_zone_best); -1 when unknown. */
    double cnt_best_ratio, cnt_best_spread;
    size_t zone_violations;                  /* measured by the simulator */
    size_t missing;                          /* vacant replica slots, measured */
    size_t over_capacity;                    /* alive nodes whose load exceeds their capacity */
    size_t lib_zone_violations, lib_missing; /* as shardz_sharder_stats reports them */
    size_t errors;                           /* failed checks (see note) */
    char note[SIM_MAX_NOTE];
    long maxrss_kb;       /* peak RSS of the run's process so far */
    long long heap_bytes; /* malloc-level bytes the sharder holds after the step (-1: unknown) */
    long long plan_bytes; /* extra malloc-level bytes the step's plan held */
} sim_step;

/* What a run produced: its steps, and how it ended. */
typedef struct {
    char kind[16];
    sim_step steps[SIM_MAX_STEPS];
    size_t nsteps;
    int status; /* 0: completed; otherwise see error */
    char error[SIM_MAX_NOTE];
} sim_run;

/* scenario.c */
void sim_scenario_defaults(sim_scenario *sc);
/* Parses "join:5,leave:3,zoneloss:1,loadshift" into sc->events. 0, or -1 with a message on
 * stderr. */
int sim_parse_events(const char *text, sim_scenario *sc);
const char *sim_event_name(sim_event_kind k);
const char *sim_load_name(sim_load_dist d);
const char *sim_cap_name(sim_cap_dist c);
int sim_parse_load(const char *text, sim_load_dist *out);
int sim_parse_cap(const char *text, sim_cap_dist *out);
/* Draws the partitions' loads for a stream (0: the initial loads, k: the k-th load shift). */
void sim_draw_loads(const sim_scenario *sc, uint64_t stream, double *load);
/* The slot count the "hash" kind gets (sc->slots, or the automatic choice). */
uint32_t sim_hash_slots(const sim_scenario *sc);
/* A node's fair-share weight: 1, or 1/2/4 mixed within each zone. */
double sim_node_weight(const sim_scenario *sc, size_t index);

/* run.c: runs the scenario on one kind, emitting one sim_step per step on fd. 0 when every step
 * ran (checks may still have failed), non-zero when the run stopped early. */
int sim_run_kind(const sim_scenario *sc, const char *kind, int fd);

/* report.c */
void sim_report_table(FILE *out, const sim_scenario *sc, const sim_run *runs, size_t nruns);
void sim_report_json(FILE *out, const sim_scenario *sc, const sim_run *runs, size_t nruns);

#endif
