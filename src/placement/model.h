/* The placement model shared by every sharder kind: nodes, zones, partitions, replica slots,
 * the node -> replicas index, plans, and the ops table each kind fills in. Internal (pz_
 * prefix): nothing here is in a public header. Pure data structures, one thread, no I/O.
 * Memory per replica is the point of the layout: see docs/ARCHITECTURE.md "Placement memory". */
#ifndef SHARDZ_PLACEMENT_MODEL_H
#define SHARDZ_PLACEMENT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardz/placement.h"

#define PZ_NONE UINT32_MAX
/* A replica reference: partition index * 16 + slot (so at most 2^28 partitions). */
#define PZ_RID(pidx, slot) (((uint32_t)(pidx) << 4) | (uint32_t)(slot))
#define PZ_RID_PART(rid) ((rid) >> 4)
#define PZ_RID_SLOT(rid) ((rid)&0xFu)
#define PZ_MAX_PARTS (1u << 28)

/* Id -> dense index, open addressing with linear probing and backward-shift deletion. The
 * table stores indices only; keys are read back through the owner's callback. */
typedef struct {
    uint64_t *slots; /* hash << 32 | index; UINT64_MAX = empty */
    uint32_t cap;    /* power of two, or 0 */
    uint32_t count;
} pz_idmap;

/* One replica slot of a partition. */
typedef struct {
    uint32_t node; /* node index, or PZ_NONE when vacant */
    uint32_t pos;  /* index in the node's replica list; when vacant: the shardz_reason that
                      vacated it (used as the reason of the move that fills it) */
} pz_slot;

/* A partition: one allocation holding the header, its slots and its id. */
typedef struct {
    uint64_t gen;    /* generation: bumped whenever its assignment changes */
    uint32_t hash;   /* hash of the id (for the id map) */
    uint16_t nrep;   /* replica slots */
    uint8_t placed;  /* non-zero once any replica was ever assigned */
    uint8_t idlen;   /* bytes of the id */
    pz_slot slots[]; /* nrep slots, followed by the id and its NUL */
} pz_part;

static inline const char *pz_part_id(const pz_part *p)
{
    return (const char *)(p->slots + p->nrep);
}

/* A node. Replica lists grow by doubling. */
typedef struct {
    char *id;      /* owned */
    uint32_t hash; /* hash of the id */
    uint32_t zone; /* index into the model's zones */
    shardz_node_state state;
    bool gone;           /* unregistered: its replicas move away, then the index is reused */
    bool joined;         /* registered since the last applied plan (moves to it say "join") */
    uint8_t gone_reason; /* shardz_reason for the moves off a gone node */
    double weight;       /* fair-share weight: capacity[0], or 1 when unlimited */
    double cap[SHARDZ_MAX_DIMS];  /* INFINITY when unlimited */
    double load[SHARDZ_MAX_DIMS]; /* sum of its replicas' loads */
    uint32_t *list;               /* replica ids (PZ_RID) it holds */
    uint32_t nlist, caplist;
} pz_node;

/* The model every kind works on. */
typedef struct {
    size_t ndims;
    unsigned default_replicas;
    int roles;
    uint64_t revision; /* bumped by every change */

    pz_node *nodes; /* indices stable while registered; gone ones are reused after a plan */
    uint32_t nnodes, capnodes;
    uint32_t *free_nodes; /* recycled node indices */
    uint32_t nfree, capfree;
    pz_idmap node_map;

    char **zones; /* interned zone names; zone 0 is "" */
    uint32_t nzones, capzones;
    uint32_t *zone_room; /* per zone: eligible nodes when the last plan was committed */
    unsigned max_nrep;   /* the most replicas any partition ever had */
    uint32_t nrep_count[SHARDZ_MAX_REPLICAS + 1]; /* partitions by replica count */

    pz_part **parts;  /* dense: removal moves the last partition into the hole */
    uint64_t nvacant; /* vacant replica slots over all partitions (lets planners skip a scan) */
    uint8_t *vacbits; /* bit p: partition p has a vacant slot (scanned without the records) */
    double *load;     /* parts x ndims loads */
    uint32_t nparts, capparts;
    pz_idmap part_map;
} pz_model;

/* A move inside a plan (16 bytes). */
typedef struct {
    uint32_t pidx;
    uint32_t from, to; /* node indices or PZ_NONE */
    uint8_t slot;
    uint8_t reason;
    uint16_t pad;
} pz_move;

struct shardz_plan {
    pz_move *moves;
    size_t n, cap;
    size_t missing;
    uint64_t revision;     /* the model revision the plan applies to */
    const pz_model *model; /* for partition ids (borrowed) */
    char **node_ids;       /* copy of every node id at plan time, by node index (owned) */
    uint32_t nnode_ids;
    /* The nodes' loads when the plan started (owned): a revert puts them back bit for bit,
     * since float sums do not survive add-then-subtract exactly. */
    double *node_load;
    /* Dry runs log every assignment made while planning (owned), so the revert restores
     * the model exactly, replica lists in the same order included: the same state then
     * always gives the same plan, however many dry runs came before. */
    bool logging;
    struct pz_op *ops;
    size_t nops, capops;
};

/* One logged assignment (dry runs). */
struct pz_op {
    uint32_t pidx;
    uint32_t from, to; /* node indices or PZ_NONE */
    uint32_t aux;      /* from's list position, or the vacancy reason when from is PZ_NONE */
    uint8_t slot;
    uint8_t reason; /* the reason given (kept by the slot when to is PZ_NONE) */
};

/* ---- the ops table: one instance per kind -------------------------------------------- */
struct shardz_sharder;
typedef struct {
    int version; /* PZ_OPS_VERSION */
    const char *name;
    /* Kind state: created after the model; destroy accepts a sharder whose init failed. */
    int (*init)(struct shardz_sharder *s);
    void (*destroy)(struct shardz_sharder *s);
    /* The seed's interface. Each may be a pz_generic_* function. */
    int (*register_nodes)(struct shardz_sharder *s, const shardz_node_spec *nodes, size_t n);
    int (*unregister_nodes)(struct shardz_sharder *s, const char *const *ids, size_t n,
                            shardz_reason reason);
    int (*register_partitions)(struct shardz_sharder *s, const shardz_partition_spec *parts,
                               size_t n);
    int (*unregister_partitions)(struct shardz_sharder *s, const char *const *ids, size_t n);
    int (*partitions_of_node)(const struct shardz_sharder *s, const char *node, shardz_replica *out,
                              size_t cap, size_t *n);
    int (*nodes_of_partition)(const struct shardz_sharder *s, const char *partition,
                              shardz_replica *out, size_t cap, size_t *n);
    /* Computes moves into plan, applying each to the model as it goes (the caller reverts a
     * dry run). On error the caller reverts what was recorded. */
    int (*plan)(struct shardz_sharder *s, shardz_plan *plan);
    /* Optional (NULL: SHARDZ_ENOTSUP). */
    int (*partition_for_key)(const struct shardz_sharder *s, const void *key, size_t len,
                             const char **partition);
} pz_ops;
#define PZ_OPS_VERSION 1

struct shardz_sharder {
    const pz_ops *ops;
    pz_model m;
    shardz_sharder_config cfg; /* kind and pointers cleared: a value copy */
    void *kind;                /* the kind's own state */
};

/* ---- id maps ------------------------------------------------------------------------- */
uint32_t pz_hash_id(const char *id, size_t len);

/* ---- model --------------------------------------------------------------------------- */
int pz_model_init(pz_model *m, size_t ndims, unsigned default_replicas, int roles);
void pz_model_destroy(pz_model *m);
/* Index of a registered (not gone) node / of a partition, or PZ_NONE. */
uint32_t pz_node_find(const pz_model *m, const char *id);
uint32_t pz_part_find(const pz_model *m, const char *id);

/* Validated, all-or-nothing membership changes (the public contract's errors). */
int pz_model_add_nodes(pz_model *m, const shardz_node_spec *nodes, size_t n);
int pz_model_remove_nodes(pz_model *m, const char *const *ids, size_t n, shardz_reason reason);
int pz_model_set_node_state(pz_model *m, const char *id, shardz_node_state st);
int pz_model_update_node(pz_model *m, const shardz_node_spec *spec);
/* Adds partitions; on success *first is the index of the first new one (they are dense). */
int pz_model_add_parts(pz_model *m, const shardz_partition_spec *parts, size_t n, uint32_t *first);
/* Removes one partition by index: frees its slots and moves the last partition into pidx.
 * Returns the index the moved partition had (PZ_NONE when none moved). The partitions that
 * stay keep their records (the same pz_part pointer): only their index can change. */
uint32_t pz_model_remove_part(pz_model *m, uint32_t pidx);
int pz_model_set_load(pz_model *m, const char *id, const double *load, size_t n);

/* Sets slot `slot` of partition pidx to node (PZ_NONE vacates, recording `reason`), keeping
 * node lists and loads in step. Fails only on allocation (SHARDZ_ENOMEM, nothing changed). */
int pz_assign(pz_model *m, uint32_t pidx, unsigned slot, uint32_t node, shardz_reason reason);

static inline bool pz_part_has_vacancy(const pz_model *m, uint32_t pidx)
{
    return (m->vacbits[pidx >> 3] >> (pidx & 7)) & 1;
}
static inline pz_part *pz_part_at(const pz_model *m, uint32_t pidx)
{
    return m->parts[pidx];
}
static inline const double *pz_part_load(const pz_model *m, uint32_t pidx)
{
    return m->load + (size_t)pidx * m->ndims;
}
/* May take new replicas: registered, alive. */
static inline bool pz_node_eligible(const pz_model *m, uint32_t n)
{
    return !m->nodes[n].gone && m->nodes[n].state == SHARDZ_NODE_ALIVE;
}
/* Must give its replicas away: gone, draining or dead. */
static inline bool pz_node_evicting(const pz_model *m, uint32_t n)
{
    const pz_node *nd = &m->nodes[n];
    return nd->gone || nd->state == SHARDZ_NODE_DRAINING || nd->state == SHARDZ_NODE_DEAD;
}
/* The partition holds a replica on node n. */
bool pz_part_on_node(const pz_model *m, uint32_t pidx, uint32_t n);
/* Node n has room for one more replica of pidx in every dimension. */
bool pz_fits(const pz_model *m, uint32_t n, uint32_t pidx);
/* Counts pidx's replicas per zone into cnt[0..m->nzones-1] (skipping slot `skip`, or pass
 * a slot >= nrep to skip none). */
void pz_zone_counts(const pz_model *m, uint32_t pidx, unsigned skip, uint16_t *cnt);
/* Moving pidx's replica from node d to node r keeps its zone spread: inside one zone, or to
 * a zone holding fewer of its replicas than d's (the rule every planner moves by). */
bool pz_zone_move_ok(const pz_model *m, uint32_t pidx, uint32_t d, uint32_t r);
/* Zones that hold at least one eligible node (the zones a partition should spread over). */
uint32_t pz_live_zones(const pz_model *m, bool *live);
/* The reason for moves off node n (gone / drain / dead), or REBALANCE. */
shardz_reason pz_evict_reason(const pz_model *m, uint32_t n);

/* ---- plans --------------------------------------------------------------------------- */
/* A new empty plan against m's current revision (copies the node ids). NULL on ENOMEM. */
shardz_plan *pz_plan_new(const pz_model *m);
/* Makes room for `extra` more moves (an optimisation: moves grow the plan anyway). */
int pz_plan_reserve(shardz_plan *p, size_t extra);
/* Every assignment a planner makes goes through this (logged in dry runs). */
int pz_plan_assign(pz_model *m, shardz_plan *p, uint32_t pidx, unsigned slot, uint32_t to,
                   shardz_reason reason);
/* Records a move and applies it to the model. */
/* Swaps the nodes of slots a and b of partition pidx, both assigned (shardz_sharder_swap_slots);
 * the nodes' replica lists follow. SHARDZ_ERANGE, SHARDZ_EINVAL; nothing changes on error. */
int pz_swap_slots(pz_model *m, uint32_t pidx, unsigned a, unsigned b);
int pz_plan_move(pz_model *m, shardz_plan *p, uint32_t pidx, unsigned slot, uint32_t to,
                 shardz_reason reason);
/* Saves the nodes' loads so pz_plan_revert restores them exactly. */
int pz_plan_snapshot(const pz_model *m, shardz_plan *p);
/* Undoes every recorded move, newest first, and restores the snapshot if one was taken. */
void pz_plan_revert(pz_model *m, const shardz_plan *p);
/* After a plan is applied for good: bump generations, free gone nodes left empty, clear the
 * joined flags, bump the revision. */
void pz_plan_commit(pz_model *m, shardz_plan *p);

/* ---- generic implementations of the seed interface ------------------------------------ */
int pz_generic_register_nodes(struct shardz_sharder *s, const shardz_node_spec *nodes, size_t n);
int pz_generic_unregister_nodes(struct shardz_sharder *s, const char *const *ids, size_t n,
                                shardz_reason reason);
int pz_generic_register_partitions(struct shardz_sharder *s, const shardz_partition_spec *p,
                                   size_t n);
int pz_generic_unregister_partitions(struct shardz_sharder *s, const char *const *ids, size_t n);
int pz_generic_partitions_of_node(const struct shardz_sharder *s, const char *node,
                                  shardz_replica *out, size_t cap, size_t *n);
int pz_generic_nodes_of_partition(const struct shardz_sharder *s, const char *partition,
                                  shardz_replica *out, size_t cap, size_t *n);

/* ---- the load balancer (balancer.c) ---------------------------------------------------- */
/* shardz_sharder_balance_round with the brute-force searches (every node weighed for every
 * receiver and every step, candidates re-sorted at every step): the reference the tests check
 * the fast search against. Same contract and results. */
int pz_balance_round_brute(struct shardz_sharder *s, const shardz_balance_policy *pol,
                           int64_t now_ms, shardz_last_move_fn last_move, void *ctx, unsigned flags,
                           shardz_plan **out, shardz_balance_report *report);

/* ---- the replica sharder's planner (also used by "hash") ----------------------------- */
int pz_replica_plan(struct shardz_sharder *s, shardz_plan *plan);

extern const pz_ops pz_replica_ops;
extern const pz_ops pz_hash_ops;
extern const pz_ops pz_seed_ops;
extern const pz_ops pz_range_ops;

#endif
