/* Brute-force checker for sharders, built only on the public API (the include/shardz headers).
 * A ck_world wraps a sharder and mirrors every id the test registered; after each rebalance it
 * rebuilds the assignment from the queries and checks it independently of the implementation:
 * query agreement, distinct nodes, zone spread, capacity, balance, re-placement, minimal
 * movement, plan replay, reasons, generations. Checks return NULL or a message (no cmocka). */
#ifndef SHARDZ_TESTS_PLACEMENT_CHECKER_H
#define SHARDZ_TESTS_PLACEMENT_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardz/placement.h"

/* splitmix64: the tests' own seeded PRNG. */
typedef struct {
    uint64_t s;
} ck_rng;
uint64_t ck_rng_next(ck_rng *r);
/* Uniform in [lo, hi] (inclusive). */
uint64_t ck_rng_range(ck_rng *r, uint64_t lo, uint64_t hi);
/* Uniform in [0, 1). */
double ck_rng_unit(ck_rng *r);

/* Which properties the checker asserts (all on by default for the replica kind). Whatever is on
 * is only asserted where it is achievable; see checker.c "What is asserted when". */
typedef struct {
    bool zones; /* (3) zone spread */
    /* (2) is always checked; with this set, only for partitions with replicas <= alive nodes
     * (for kinds that stack replicas when nodes are short) */
    bool distinct_if_enough;
    bool capacity;  /* (4) per node and dimension: sum of loads <= capacity */
    bool balance;   /* (5) balance bounds */
    bool replace;   /* (6) nothing left on dead/draining nodes, no vacant slot, when room */
    bool movement;  /* (7) minimal movement after pure leave / pure join steps */
    bool reasons;   /* every move's reason matches the state change that caused it */
    bool gens_flat; /* a partition whose assignment did not change keeps its generation */
    /* With zones of equal size, assert balance across zones even when R is not a multiple of
     * the number of zones (achievable on a fresh placement; off by default because later
     * leaves would need moves beyond the leaver's replicas). */
    bool zone_extras_global;
} ck_opts;

/* What the last checked rebalance saw (for tests to assert on, and to prove checks ran). */
typedef struct {
    size_t plan_moves; /* moves in the plan */
    size_t moved;      /* replica slots whose node differs between the two snapshots */
    size_t join_lb;    /* sum over joiners of floor(T_joiner), when the step was a pure join */
    size_t missing;    /* vacant slots after the plan */
    bool pure_leave;   /* the step only removed / killed / drained nodes */
    bool pure_join;    /* the step only added alive nodes */
    bool balance_checked, balance_global, zones_checked, movement_checked;
    int leave_oracle; /* pure leave: 1 leavers-only placement exists, 0 none, -1 not applied */
} ck_last;

/* Counters of how often each check was actually asserted (property tests print them). */
typedef struct {
    size_t rebalances, balance_global, balance_zone, balance_load, zone_partitions;
    size_t leave_moves, join_moves, dry_runs, skipped_balance;
    size_t leave_infeasible; /* pure leaves where no leavers-only placement meets the bounds */
} ck_counters;

typedef struct ck_world ck_world;

/* Creates a sharder from cfg and a world around it. NULL when shardz_sharder_new fails (its
 * error in *rc when rc is not NULL). */
ck_world *ck_new(const shardz_sharder_config *cfg, int *rc);
void ck_free(ck_world *w);
shardz_sharder *ck_sharder(ck_world *w);
ck_opts *ck_options(ck_world *w);
const ck_last *ck_last_step(const ck_world *w);
const ck_counters *ck_counts(const ck_world *w);

/* Wrappers: call the API, and on success mirror the change. They return the API's code. */
int ck_add_nodes(ck_world *w, const shardz_node_spec *nodes, size_t n);
/* One node: cap0 <= 0 means unlimited. */
int ck_add_node(ck_world *w, const char *id, const char *zone, double cap0,
                shardz_node_state state);
int ck_remove_nodes(ck_world *w, const char *const *ids, size_t n, shardz_reason reason);
int ck_remove_node(ck_world *w, const char *id, shardz_reason reason);
int ck_set_state(ck_world *w, const char *id, shardz_node_state state);
int ck_add_parts(ck_world *w, const shardz_partition_spec *parts, size_t n);
/* One partition: replicas 0 = default, load0 < 0 = unset. */
int ck_add_part(ck_world *w, const char *id, unsigned replicas, double load0);
int ck_remove_parts(ck_world *w, const char *const *ids, size_t n);
int ck_set_load(ck_world *w, const char *id, const double *load, size_t n);
/* Bulk helpers (one API call each): nodes "<prefix><first + i>" in zones "z<i % nzones>"
 * (nzones 0: default zone), capacity cap0 (<= 0 unlimited), alive; partitions
 * "<prefix><first + i>" with `replicas` (0 default) and load0 (< 0 unset). */
int ck_add_nodes_n(ck_world *w, const char *prefix, size_t first, size_t n, size_t nzones,
                   double cap0);
int ck_add_parts_n(ck_world *w, const char *prefix, size_t first, size_t n, unsigned replicas,
                   double load0);

/* Soft findings: the stats counters disagreeing with the queries (the other checks go on).
 * NULL when none, else the first one. */
const char *ck_soft(const ck_world *w);

/* Rebalances with flags and checks everything. The plan goes to *plan when plan is not NULL
 * (caller frees), else it is freed. Returns NULL when all checks pass, else a message valid
 * until the next checker call on w. A DRY_RUN rebalance checks that nothing changed and that
 * the plan replays over the current state; apply it later with ck_apply. */
const char *ck_rebalance(ck_world *w, unsigned flags, shardz_plan **plan);
/* Applies a dry-run plan (expecting success) and checks like a rebalance. */
const char *ck_apply(ck_world *w, const shardz_plan *plan);
/* Applies a plan expecting SHARDZ_ESTALE, and checks that nothing changed. */
const char *ck_apply_stale(ck_world *w, const shardz_plan *plan);
/* Checks the current state (agreement, invariants) without rebalancing; no balance/movement
 * assertions unless `full`. */
const char *ck_check_now(ck_world *w, bool full);

/* A snapshot of everything observable (assignment, generations, revision, stats). */
typedef struct ck_snap ck_snap;
ck_snap *ck_snap_take(ck_world *w, const char **err);
/* NULL when a and b (taken on the same world, or on twin worlds built by the same calls) show
 * the same state; else a message. */
const char *ck_snap_diff(const ck_world *wa, const ck_snap *a, const ck_world *wb,
                         const ck_snap *b);
void ck_snap_free(ck_snap *s);
/* Compares the current state of two worlds. */
const char *ck_same_state(ck_world *a, ck_world *b);

/* Observations from the last snapshot taken (after the last check). -1 for unknown ids. */
long ck_node_count(const ck_world *w, const char *node);
double ck_node_load(const ck_world *w, const char *node, size_t dim);
/* The node of a partition's slot in the last snapshot (NULL when vacant or unknown). */
const char *ck_slot_node(const ck_world *w, const char *part, unsigned slot);
/* The zone of a registered node ("" default), NULL if unknown. */
const char *ck_node_zone(const ck_world *w, const char *node);

#endif
