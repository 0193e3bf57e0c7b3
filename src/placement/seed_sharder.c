/* The seed's own algorithm (kind "seed"), kept as a baseline for the simulator and benchmarks:
 * nextNode (the least loaded node if it does not already serve the partition, else random
 * tries, else any random node) and stealWork (only nodes above 1.3x the average replica count
 * give away their excess), as seed 001 describes them. Counts only: no zones, no capacity.
 * Deterministic for a given config seed. Not for production use: shardz's default is "replica". */
#include <stdlib.h>
#include <string.h>

#include "placement/heap.h"
#include "placement/model.h"

#define SEED_STEAL_FACTOR 1.3

typedef struct {
    shardz_sharder *s;
    shardz_plan *plan;
    uint64_t *count; /* replicas per node (heap key) */
    uint32_t *pos, *a;
    uint32_t *elig; /* eligible node indices */
    uint32_t nelig;
    pz_heap h;    /* eligible nodes by count */
    uint64_t rng; /* seeded from the config seed and the model revision: the same state
                     always gives the same plan, dry run or not */
} sctx;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t random_node(sctx *c)
{
    return c->elig[splitmix64(&c->rng) % c->nelig];
}

/* The seed's nextNode(p). */
static uint32_t next_node(sctx *c, uint32_t pidx)
{
    pz_model *m = &c->s->m;
    if (c->nelig == 0) {
        return PZ_NONE;
    }
    uint32_t n = c->h.a[0];
    if (!pz_part_on_node(m, pidx, n)) {
        return n;
    }
    for (uint32_t i = 0; i < 2 * c->nelig; i++) { /* "randomly loop for a while" */
        n = random_node(c);
        if (!pz_part_on_node(m, pidx, n)) {
            return n;
        }
    }
    return random_node(c);
}

static int seed_move(sctx *c, uint32_t pidx, unsigned slot, uint32_t to, shardz_reason reason)
{
    pz_model *m = &c->s->m;
    uint32_t from = m->parts[pidx]->slots[slot].node;
    int rc = pz_plan_move(m, c->plan, pidx, slot, to, reason);
    if (rc) {
        return rc;
    }
    if (from != PZ_NONE && pz_heap_has(&c->h, from)) {
        c->count[from]--;
        pz_heap_update(&c->h, from);
    }
    if (to != PZ_NONE) {
        c->count[to]++;
        pz_heap_update(&c->h, to);
    }
    return 0;
}

/* Replicas of evicting nodes and vacant slots go to nextNode. */
static int seed_place(sctx *c)
{
    pz_model *m = &c->s->m;
    int rc = 0;
    for (uint32_t p = 0; p < m->nparts && rc == 0; p++) {
        const pz_part *pp = m->parts[p];
        for (unsigned s = 0; s < pp->nrep && rc == 0; s++) {
            uint32_t from = pp->slots[s].node;
            if (from != PZ_NONE && !pz_node_evicting(m, from)) {
                continue;
            }
            uint32_t to = next_node(c, p);
            shardz_reason why =
                from == PZ_NONE ? (shardz_reason)pp->slots[s].pos : pz_evict_reason(m, from);
            if (to == PZ_NONE) {
                c->plan->missing++;
                if (from != PZ_NONE && m->nodes[from].state != SHARDZ_NODE_DRAINING) {
                    rc = seed_move(c, p, s, PZ_NONE, why);
                }
                continue;
            }
            rc = seed_move(c, p, s, to, why);
        }
    }
    return rc;
}

/* The seed's stealWork(): nodes above 1.3x the average give away (count - average). */
static int seed_steal(sctx *c)
{
    pz_model *m = &c->s->m;
    double total = 0;
    for (uint32_t i = 0; i < c->nelig; i++) {
        total += (double)c->count[c->elig[i]];
    }
    if (c->nelig == 0) {
        return 0;
    }
    double avg = total / c->nelig;
    for (uint32_t i = 0; i < c->nelig; i++) {
        uint32_t d = c->elig[i];
        if ((double)c->count[d] <= SEED_STEAL_FACTOR * avg) {
            continue;
        }
        uint32_t excess = (uint32_t)((double)c->count[d] - avg);
        for (uint32_t k = 0; k < excess && m->nodes[d].nlist > 0; k++) {
            uint32_t rid = m->nodes[d].list[m->nodes[d].nlist - 1];
            uint32_t to = next_node(c, PZ_RID_PART(rid));
            if (to == PZ_NONE || to == d) {
                break;
            }
            shardz_reason why = m->nodes[to].joined ? SHARDZ_REASON_JOIN : SHARDZ_REASON_REBALANCE;
            int rc = seed_move(c, PZ_RID_PART(rid), PZ_RID_SLOT(rid), to, why);
            if (rc) {
                return rc;
            }
        }
    }
    return 0;
}

static int seed_plan(shardz_sharder *s, shardz_plan *plan)
{
    pz_model *m = &s->m;
    size_t nn = m->nnodes ? m->nnodes : 1;
    sctx c = {.s = s, .plan = plan, .rng = s->cfg.seed ^ (m->revision * 0x9E3779B97F4A7C15ull)};
    int rc = SHARDZ_ENOMEM;
    c.count = calloc(nn, sizeof *c.count);
    c.pos = malloc(nn * sizeof *c.pos);
    c.a = malloc(nn * sizeof *c.a);
    c.elig = malloc(nn * sizeof *c.elig);
    if (!c.count || !c.pos || !c.a || !c.elig) {
        goto out;
    }
    memset(c.pos, 0xff, nn * sizeof *c.pos);
    c.h = (pz_heap){.a = c.a, .pos = c.pos, .key = c.count};
    for (uint32_t n = 0; n < m->nnodes; n++) {
        if (!pz_node_eligible(m, n)) {
            continue;
        }
        c.count[n] = m->nodes[n].nlist;
        c.elig[c.nelig++] = n;
        pz_heap_push(&c.h, n);
    }
    rc = seed_place(&c);
    if (rc == 0) {
        rc = seed_steal(&c);
    }
out:
    free(c.count);
    free(c.pos);
    free(c.a);
    free(c.elig);
    return rc;
}

const pz_ops pz_seed_ops = {
    .version = PZ_OPS_VERSION,
    .name = "seed",
    .register_nodes = pz_generic_register_nodes,
    .unregister_nodes = pz_generic_unregister_nodes,
    .register_partitions = pz_generic_register_partitions,
    .unregister_partitions = pz_generic_unregister_partitions,
    .partitions_of_node = pz_generic_partitions_of_node,
    .nodes_of_partition = pz_generic_nodes_of_partition,
    .plan = seed_plan,
};
