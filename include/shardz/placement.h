/* shardz placement: the data model and the Sharder interface (seed 001) as a C API.
 * A sharder keeps nodes, partitions and the assignment of partition replicas to nodes, and
 * computes plans (moves, each with a reason). It is pure: no I/O, no clock, no globals, and
 * deterministic for a given config (seed included). Not thread-safe: one thread per sharder. */
#ifndef SHARDZ_PLACEMENT_H
#define SHARDZ_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardz/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Load dimensions per namespace (dimension 0 is the one replicas are balanced on). */
#define SHARDZ_MAX_DIMS 8
/* Replicas per partition, at most. */
#define SHARDZ_MAX_REPLICAS 16
/* Length of a node, partition or zone id, at most (bytes, without the NUL). */
#define SHARDZ_MAX_ID 255
/* "No node": a vacant replica slot. */
#define SHARDZ_NO_NODE UINT32_MAX

typedef enum {
    SHARDZ_NODE_JOINING = 0, /* registered, not yet confirmed alive; not given replicas */
    SHARDZ_NODE_ALIVE,       /* eligible for replicas */
    SHARDZ_NODE_SUSPECT,     /* missed pings: keeps its replicas, gets no new ones */
    SHARDZ_NODE_DRAINING,    /* its replicas move away (reason drain); gets no new ones */
    SHARDZ_NODE_DEAD,        /* its replicas are re-placed (reason node-dead) */
} shardz_node_state;

/* Why a move exists. Every move in a plan carries one. */
typedef enum {
    SHARDZ_REASON_NEW = 0,   /* a replica placed for the first time (partition created) */
    SHARDZ_REASON_NODE_DEAD, /* its node died */
    SHARDZ_REASON_LEAVE,     /* its node was unregistered */
    SHARDZ_REASON_DRAIN,     /* its node is draining */
    SHARDZ_REASON_JOIN,      /* work stolen by a node that joined */
    SHARDZ_REASON_REBALANCE, /* work stolen to restore balance (e.g. after partitions left) */
    SHARDZ_REASON_LOAD,      /* the load balancer moved it */
    SHARDZ_REASON_SPLIT,     /* a range split or merge */
    SHARDZ_REASON_OPERATOR,  /* an operator asked for it */
    SHARDZ_REASON_REPAIR,    /* a vacant replica slot filled (e.g. nodes came back) */
    SHARDZ_REASON_HANDOFF,   /* a secondary promoted to primary in place (shardz_sharder_swap_slots)
                              */
    SHARDZ_REASON__COUNT
} shardz_reason;

typedef enum {
    SHARDZ_ROLE_NONE = 0,  /* the namespace has no roles */
    SHARDZ_ROLE_PRIMARY,   /* replica slot 0 when the namespace has roles */
    SHARDZ_ROLE_SECONDARY, /* the other slots */
} shardz_role;

/* A node to register. Everything is borrowed for the duration of the call. */
typedef struct {
    const char *id;   /* required, 1..SHARDZ_MAX_ID bytes, unique in the sharder */
    const char *zone; /* fault domain; NULL or "" is the default zone */
    /* Capacity in dimensions 0..ncapacity-1, each finite and > 0; the dimensions beyond are
     * unlimited. Capacity is a hard limit, and capacity[0] weighs the node's fair share of
     * dimension 0 (a node with twice the capacity gets twice the replicas). Unlimited nodes
     * weigh 1. */
    size_t ncapacity;
    double capacity[SHARDZ_MAX_DIMS];
    shardz_node_state state; /* usually SHARDZ_NODE_ALIVE */
} shardz_node_spec;

/* A partition to register. Everything is borrowed for the duration of the call. */
typedef struct {
    const char *id;    /* required, 1..SHARDZ_MAX_ID bytes, unique in the sharder */
    unsigned replicas; /* 1..SHARDZ_MAX_REPLICAS; 0 = the sharder's default */
    /* Load in dimensions 0..nload-1, each finite and >= 0. Unset dimensions: 1.0 in
     * dimension 0, 0.0 in the others (so equal-load partitions balance by count). */
    size_t nload;
    double load[SHARDZ_MAX_DIMS];
    /* Optional preset assignment (restoring a persisted state): nnodes node ids, one per
     * replica slot, NULL for a vacant slot; nnodes == 0 means "place it". Preset replicas are
     * taken as they are (they only have to name registered, distinct nodes). */
    size_t nnodes;
    const char *const *nodes;
    uint64_t generation; /* preset generation (restore); 0 for a new partition */
} shardz_partition_spec;

/* The configuration of a sharder. Borrowed for the call to shardz_sharder_new. */
typedef struct {
    const char *kind;  /* "replica" (default when NULL), "hash", "range" (shardz/range.h), or
                          "seed" (the seed's baseline) */
    unsigned replicas; /* default replicas per partition; 0 means 1 */
    size_t ndims;      /* load dimensions in use, 1..SHARDZ_MAX_DIMS; 0 means 1 */
    int roles;         /* non-zero: slot 0 is the primary, the rest secondaries */
    /* Dead band: a node is rebalanced only when its load is off its fair share by more than
     * band * share + the largest partition load. 0 (the default) balances to the integer
     * optimum (max - min <= 1 replica for equal loads). Range [0, 1]. */
    double band;
    uint64_t seed;  /* seeds every random choice (the seed baseline uses some) */
    uint32_t slots; /* "hash": size of the slot space, a power of two in [64, 1<<20];
                       0 means SHARDZ_HASH_SLOTS_DEFAULT */
} shardz_sharder_config;

typedef struct shardz_sharder shardz_sharder; /* opaque */
typedef struct shardz_plan shardz_plan;       /* opaque */

/* One replica of a partition, as the queries return it. */
typedef struct {
    const char *partition; /* borrowed from the sharder: valid until the partition leaves */
    const char *node;      /* borrowed from the sharder: valid until the node leaves */
    unsigned slot;         /* replica slot index, 0..replicas-1 */
    shardz_role role;
} shardz_replica;

/* One move of a plan. */
typedef struct {
    const char *partition; /* borrowed from the sharder: valid until the partition leaves */
    unsigned slot;         /* the replica slot that changes */
    const char *from;      /* owned by the plan; NULL when the slot was vacant */
    const char *to;        /* owned by the plan; NULL when the slot becomes vacant */
    shardz_reason reason;
} shardz_move;

/* Counters describing a sharder's current state (see shardz_sharder_get_stats). */
typedef struct {
    size_t nodes;          /* registered nodes (any state) */
    size_t eligible_nodes; /* nodes that may take new replicas (alive) */
    size_t partitions;
    size_t replicas;        /* assigned replica slots */
    size_t missing;         /* vacant replica slots */
    size_t zone_violations; /* partitions whose replicas are not spread over zones as they could */
    double min_load, max_load, mean_load; /* dimension 0, over eligible nodes */
    size_t min_count, max_count;          /* replicas per eligible node */
    double max_over_share; /* max over eligible nodes of load / fair share (1.0 = perfect) */
    uint64_t revision;     /* bumped by every change */
} shardz_sharder_stats;

/* Flags for shardz_sharder_rebalance. */
#define SHARDZ_PLAN_DRY_RUN 0x1u /* compute the plan only; the sharder is left unchanged */

/* Creates a sharder. On success *out is owned by the caller (free with shardz_sharder_free).
 * Errors: SHARDZ_EINVAL (unknown kind, value out of range), SHARDZ_ENOMEM. */
int shardz_sharder_new(const shardz_sharder_config *cfg, shardz_sharder **out);
/* Frees a sharder and everything it owns; accepts NULL. Plans it made stay valid except
 * their partition ids. */
void shardz_sharder_free(shardz_sharder *s);
/* The kind's name ("replica", "hash", "seed"). Static string. */
const char *shardz_sharder_kind(const shardz_sharder *s);

/* Registers nodes, all or none: on any error (SHARDZ_EINVAL for a bad field, SHARDZ_EEXIST
 * for an id already registered or given twice, SHARDZ_ENOMEM) nothing changes. New nodes get
 * replicas at the next rebalance. */
int shardz_sharder_register_nodes(shardz_sharder *s, const shardz_node_spec *nodes, size_t n);
/* Unregisters nodes, all or none (SHARDZ_ENOENT for an unknown id: nothing changes). Their
 * replicas stop counting at once (queries skip them) and are re-placed by the next rebalance
 * with reason `reason` (SHARDZ_REASON_LEAVE or SHARDZ_REASON_NODE_DEAD). */
int shardz_sharder_unregister_nodes(shardz_sharder *s, const char *const *ids, size_t n,
                                    shardz_reason reason);
/* Updates a registered node in place from spec (matched by spec->id): zone, capacity and
 * state; its replicas stay where they are until the next rebalance decides. SHARDZ_ENOENT,
 * SHARDZ_EINVAL (a bad field: nothing changes), SHARDZ_ENOMEM. */
int shardz_sharder_update_node(shardz_sharder *s, const shardz_node_spec *spec);
/* Changes a node's state (see shardz_node_state). SHARDZ_ENOENT, SHARDZ_EINVAL. */
int shardz_sharder_set_node_state(shardz_sharder *s, const char *id, shardz_node_state state);

/* Registers partitions, all or none: SHARDZ_EINVAL (bad field, preset naming an unknown or
 * repeated node), SHARDZ_EEXIST, SHARDZ_ENOSPC (more replicas than eligible nodes),
 * SHARDZ_ENOMEM; on error nothing changes. Replicas are placed by the next rebalance. */
int shardz_sharder_register_partitions(shardz_sharder *s, const shardz_partition_spec *parts,
                                       size_t n);
/* Unregisters partitions, all or none (SHARDZ_ENOENT: nothing changes). Their replicas are
 * gone at once; the next rebalance may steal work to restore balance. */
int shardz_sharder_unregister_partitions(shardz_sharder *s, const char *const *ids, size_t n);
/* Sets a partition's load in dimensions 0..n-1 (finite, >= 0). SHARDZ_ENOENT, SHARDZ_EINVAL. */
int shardz_sharder_set_partition_load(shardz_sharder *s, const char *id, const double *load,
                                      size_t n);

/* The replicas a node holds. Fills out[0..cap-1] and sets *n to the total (call with cap 0 to
 * size the array). Strings are borrowed from the sharder. SHARDZ_ENOENT for an unknown node. */
int shardz_sharder_partitions_of_node(const shardz_sharder *s, const char *node,
                                      shardz_replica *out, size_t cap, size_t *n);
/* The assigned replicas of a partition, in slot order (vacant slots skipped). Same contract
 * as shardz_sharder_partitions_of_node. */
int shardz_sharder_nodes_of_partition(const shardz_sharder *s, const char *partition,
                                      shardz_replica *out, size_t cap, size_t *n);
/* The partition a key belongs to ("hash" and "range" kinds; SHARDZ_ENOTSUP for the others,
 * SHARDZ_ENOENT when no partition is registered, or a range table is empty). *partition is borrowed
 * from the sharder. */
int shardz_sharder_partition_for_key(const shardz_sharder *s, const void *key, size_t len,
                                     const char **partition);
/* A partition's generation: a fencing token bumped whenever its assignment changes. */
int shardz_sharder_generation(const shardz_sharder *s, const char *partition, uint64_t *gen);
/* Raises a partition's generation by one without moving it (its holder changed identity, for
 * instance a restarted worker process) and stores the new one in *gen. SHARDZ_ENOENT for an
 * unknown partition (nothing changed). */
int shardz_sharder_bump_generation(shardz_sharder *s, const char *partition, uint64_t *gen);
/* Fills *st with the current counters. */
void shardz_sharder_get_stats(const shardz_sharder *s, shardz_sharder_stats *st);

/* Computes a plan that brings the assignment to its target: re-places replicas of dead,
 * draining and unregistered nodes, fills vacant slots, then steals work until balanced.
 * Without SHARDZ_PLAN_DRY_RUN the plan is applied before returning; with it the sharder is
 * unchanged and the plan may be applied later with shardz_sharder_apply. On success *out is
 * owned by the caller (shardz_plan_free). SHARDZ_ENOMEM: nothing changed. */
int shardz_sharder_rebalance(shardz_sharder *s, unsigned flags, shardz_plan **out);
/* Applies a dry-run plan. SHARDZ_ESTALE (and nothing changes) if the sharder changed since
 * the plan was computed. The plan stays owned by the caller. */
int shardz_sharder_apply(shardz_sharder *s, const shardz_plan *plan);

/* An operator's move: replica slot `slot` of `partition` goes to `node` now (reason
 * operator), applied like a one-move plan returned in *out (the caller's, shardz_plan_free).
 * The node must be registered and alive, must not hold the partition already and must have
 * room; zone spread is the operator's call. SHARDZ_ENOENT (unknown partition or node),
 * SHARDZ_ERANGE (no such slot), SHARDZ_EINVAL (the node may not take it), SHARDZ_ENOMEM; on
 * error nothing changes. A later rebalance may move it again if balance asks for it. */
int shardz_sharder_move(shardz_sharder *s, const char *partition, unsigned slot, const char *node,
                        shardz_plan **out);

/* Swaps the nodes of two replica slots of `partition` (a primary handoff: the node of slot b
 * becomes slot a's and the other way round). No replica changes node, so no load, capacity or
 * zone changes; the generation is left as it is (the caller bumps it for the promoted owner).
 * SHARDZ_ENOENT (unknown partition), SHARDZ_ERANGE (a slot out of range, or a == b), SHARDZ_EINVAL
 * (a slot vacant); on error nothing changes. */
int shardz_sharder_swap_slots(shardz_sharder *s, const char *partition, unsigned a, unsigned b);

/* Number of moves in a plan. */
size_t shardz_plan_count(const shardz_plan *p);
/* Move i (i < shardz_plan_count) into *m. Strings as documented in shardz_move. */
void shardz_plan_move(const shardz_plan *p, size_t i, shardz_move *m);
/* Replica slots the plan could not fill (no eligible node or capacity). */
size_t shardz_plan_missing(const shardz_plan *p);
/* Moves of the plan that carry a given reason. */
size_t shardz_plan_count_reason(const shardz_plan *p, shardz_reason r);
/* Frees a plan; accepts NULL. */
void shardz_plan_free(shardz_plan *p);

/* Names: "new", "node-dead", "leave", "drain", "join", "rebalance", "load", "split",
 * "operator", "repair", "handoff"; node states "joining", "alive", "suspect", "draining", "dead".
 * Static strings; "unknown" out of range. */
const char *shardz_reason_name(shardz_reason r);
const char *shardz_node_state_name(shardz_node_state st);
/* Parses a node state name; SHARDZ_EINVAL when unknown. */
int shardz_node_state_parse(const char *name, shardz_node_state *out);

/* ---- "hash" kind: the slot table (src/placement/hash_sharder.c) ---------------------------
 * A "hash" sharder maps every key to a slot (shardz_key_slot, include/shardz/hash.h) and every
 * slot to a partition. These calls return SHARDZ_ENOTSUP for the other kinds. */

/* A run of slots [lo, hi) held by one partition. */
typedef struct {
    const char *partition; /* out: borrowed from the sharder, valid until the partition
                              leaves; in (restore): borrowed for the call */
    uint32_t lo, hi;       /* 0 <= lo < hi <= the slot count */
} shardz_slot_range;

/* The size of the sharder's slot space (cfg.slots, or SHARDZ_HASH_SLOTS_DEFAULT). */
int shardz_sharder_slot_count(const shardz_sharder *s, uint32_t *slots);
/* The slot table as maximal runs in slot order: every run when partition is NULL (they cover
 * the slot space once partitions exist; none before), else only that partition's runs
 * (SHARDZ_ENOENT when unknown). Fills out[0..cap-1] and sets *n to the total (cap 0 sizes). */
int shardz_sharder_slot_ranges(const shardz_sharder *s, const char *partition,
                               shardz_slot_range *out, size_t cap, size_t *n);
/* Replaces the slot table with a persisted one (register the partitions first): the ranges,
 * in any order, must name registered partitions and cover every slot exactly once; they are
 * taken as they are, balanced or not (the next register / unregister rebalances with the
 * fewest moves). SHARDZ_EINVAL (bad range, overlap, gap; or ranges given while no partition
 * exists), SHARDZ_ENOENT (unknown partition), SHARDZ_ENOMEM; on error nothing changes. On
 * success the revision is bumped. ranges are borrowed for the call. */
int shardz_sharder_restore_slots(shardz_sharder *s, const shardz_slot_range *ranges, size_t n);

/* ---- load statistics (src/placement/stats.c; DESIGN.md section 6, seed 000) -------------
 * The smoothing the coordinator applies to the load samples workers report, and the simulator
 * too, so both use one implementation. Pure: the caller passes the times. */

/* Folds a sample taken at now_ms into a partition's smoothed loads load[0..n-1], last updated
 * at *updated_ms (0: never, and the sample is taken as it is): an EWMA whose weight follows the
 * time since the last update, alpha = 1 - exp(-dt / tau_ms), so irregular samples weigh by
 * elapsed time (dt <= 0 weighs 0; tau_ms <= 0 takes every sample as it is). Only dimensions d
 * with have[d] change (have NULL: every one). When any did, *updated_ms becomes now_ms.
 * Returns how many dimensions changed. Everything is the caller's; n <= SHARDZ_MAX_DIMS. */
size_t shardz_load_smooth(double *load, int64_t *updated_ms, const double *sample, const bool *have,
                          size_t n, int64_t now_ms, int64_t tau_ms);

/* ---- the load balancer (src/placement/balancer.c; DESIGN.md section 6, seed 003) ----------
 * One balancer round moves replicas from the most loaded node to where they lower the
 * imbalance most, within churn limits. Pure like the rest: time is passed in, the last move
 * time of each partition comes from the caller. Any kind; moves carry SHARDZ_REASON_LOAD. */

/* A node's relative load in dimension d is load / share, where share = total * w / W over the
 * eligible (alive) nodes, w its capacity[d] (1 when unlimited: equal shares when no node has a
 * capacity there) and W the sum of w: 1.0 is the mean, and max over nodes is max/mean. */
typedef struct {
    /* Dead band: a node is hot in a dimension when its relative load exceeds 1 + band.
     * Range [0, 1]; default SHARDZ_BALANCE_BAND_DEFAULT. */
    double band;
    /* Move budget per round, as a share of the partitions (at least 1 move when > 0; 0 turns
     * the balancer off). Range [0, 1]; default SHARDZ_BALANCE_MOVES_DEFAULT. */
    double max_moves_fraction;
    /* A partition whose last move is younger than this is not moved (>= 0 ms); default
     * SHARDZ_BALANCE_COOLDOWN_DEFAULT. */
    int64_t cooldown_ms;
    /* Hysteresis: a move from donor d to receiver r must lower max(rel_d, rel_r) by more than
     * hysteresis * the drop of rel_d (the load it moves), so that a partition about as large
     * as the gap (one that would only make the receiver the next donor) does not bounce: the
     * receiver must end below the donor's old level by that margin. Range [0, 1] (1 allows
     * no move); default SHARDZ_BALANCE_HYSTERESIS_DEFAULT. */
    double hysteresis;
    /* Weights of dimensions 0..ndims_weight-1 (finite, >= 0; 0 ignores the dimension); the
     * dimensions beyond weigh 1. ndims_weight 0: every dimension weighs 1. */
    size_t ndims_weight;
    double dims_weight[SHARDZ_MAX_DIMS];
} shardz_balance_policy;

#define SHARDZ_BALANCE_BAND_DEFAULT 0.05
#define SHARDZ_BALANCE_MOVES_DEFAULT 0.02
#define SHARDZ_BALANCE_COOLDOWN_DEFAULT 60000
#define SHARDZ_BALANCE_HYSTERESIS_DEFAULT 0.1

/* Fills *pol with the documented defaults (every weight 1). */
void shardz_balance_policy_default(shardz_balance_policy *pol);
/* 0 when every field is in range, else SHARDZ_EINVAL (NULL, NaN, negative, a fraction > 1,
 * ndims_weight > SHARDZ_MAX_DIMS). */
int shardz_balance_policy_validate(const shardz_balance_policy *pol);

/* The caller's record of a partition's last move (epoch ms on the caller's clock), or
 * SHARDZ_NEVER_MOVED. Called at most once per partition and round. */
#define SHARDZ_NEVER_MOVED INT64_MIN
typedef int64_t (*shardz_last_move_fn)(const char *partition, void *ctx);

/* Why a round stopped. */
typedef enum {
    SHARDZ_BALANCE_BALANCED = 0, /* no node is hot in any weighted dimension */
    SHARDZ_BALANCE_BUDGET,       /* the move budget is spent */
    SHARDZ_BALANCE_STUCK,        /* hot nodes are left, but no allowed move helps them */
    SHARDZ_BALANCE_DEGRADED,     /* skipped: a dead, suspect, draining or unregistered node
                                    holds replicas, or a replica slot is vacant */
    SHARDZ_BALANCE_OFF,          /* skipped: budget 0, no eligible node, or no load */
} shardz_balance_stop;

/* "balanced", "budget", "stuck", "degraded", "off"; static strings, "unknown" out of range. */
const char *shardz_balance_stop_name(shardz_balance_stop stop);

/* What a round did (optional output). */
typedef struct {
    shardz_balance_stop stop;
    size_t moves;                   /* moves in the plan */
    size_t budget;                  /* moves allowed this round */
    size_t cooling;                 /* candidate partitions skipped because of their cooldown */
    size_t ndims;                   /* the sharder's dimensions: before/after are filled up to it */
    double before[SHARDZ_MAX_DIMS]; /* max relative load per dimension (max/mean) */
    double after[SHARDZ_MAX_DIMS];  /* the same once the plan is applied (expected, dry run) */
} shardz_balance_report;

/* One balancer round at time now_ms. Repeated steps: the (node, dimension) with the greatest
 * weighted excess w * (rel - 1) among hot ones; its hottest movable replica (not in cooldown
 * per last_move, not moved this round) that has a receiver; the receiver (alive, not holding
 * the partition, within capacity, keeping the zone spread) that lowers the larger of the two
 * nodes' relative loads most, beyond the hysteresis, without raising that larger value in any
 * other dimension (so max/mean never increases in any dimension). A node with no such move
 * leaves the round. Ends at the budget, when no node is hot, or when no hot node can move.
 * Nothing moves while the sharder is degraded (see SHARDZ_BALANCE_DEGRADED).
 * last_move may be NULL (no partition is cooling). flags: SHARDZ_PLAN_DRY_RUN (the sharder is
 * unchanged; shardz_sharder_apply applies the plan later). *out: the plan (caller's,
 * shardz_plan_free), possibly empty; an empty plan changes nothing, not even the revision.
 * report may be NULL. SHARDZ_EINVAL (bad policy or flags, more weights than dimensions),
 * SHARDZ_ENOMEM; on error nothing changes. */
int shardz_sharder_balance_round(shardz_sharder *s, const shardz_balance_policy *pol,
                                 int64_t now_ms, shardz_last_move_fn last_move, void *ctx,
                                 unsigned flags, shardz_plan **out, shardz_balance_report *report);

/* Max relative load (max/mean, as above) per dimension into out[0..cap-1]; *ndims gets the
 * sharder's dimension count. 0 for a dimension with no load or no eligible node. */
int shardz_sharder_load_imbalance(const shardz_sharder *s, double *out, size_t cap, size_t *ndims);

#ifdef __cplusplus
}
#endif
#endif
