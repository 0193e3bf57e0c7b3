/* The public Sharder API: creation by kind, dispatch through each kind's ops table, the
 * generic implementations of the seed's interface shared by the kinds, plans (dry run, apply,
 * accessors), counters and names. Pure: no I/O, no clock, no globals; one thread. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "placement/model.h"

static const pz_ops *const kinds[] = {&pz_replica_ops, &pz_hash_ops, &pz_seed_ops, &pz_range_ops};

int shardz_sharder_new(const shardz_sharder_config *cfg, shardz_sharder **out)
{
    shardz_sharder_config c = {0};
    const pz_ops *ops = NULL;
    int rc;
    if (!out) {
        return SHARDZ_EINVAL;
    }
    *out = NULL;
    if (cfg) {
        c = *cfg;
    }
    const char *kind = c.kind ? c.kind : "replica";
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strcmp(kinds[i]->name, kind) == 0) {
            ops = kinds[i];
        }
    }
    if (!ops || ops->version != PZ_OPS_VERSION) {
        return SHARDZ_EINVAL;
    }
    if (c.replicas == 0) {
        c.replicas = 1;
    }
    if (c.ndims == 0) {
        c.ndims = 1;
    }
    if (c.replicas > SHARDZ_MAX_REPLICAS || c.ndims > SHARDZ_MAX_DIMS) {
        return SHARDZ_EINVAL;
    }
    if (!isfinite(c.band) || c.band < 0 || c.band > 1) {
        return SHARDZ_EINVAL;
    }
    c.kind = NULL; /* borrowed: not kept */

    shardz_sharder *s = calloc(1, sizeof *s);
    if (!s) {
        return SHARDZ_ENOMEM;
    }
    s->ops = ops;
    s->cfg = c;
    rc = pz_model_init(&s->m, c.ndims, c.replicas, c.roles);
    if (rc) {
        goto err_after_alloc;
    }
    if (ops->init) {
        rc = ops->init(s);
        if (rc) {
            goto err_after_model;
        }
    }
    *out = s;
    return 0;
err_after_model:
    if (ops->destroy) {
        ops->destroy(s);
    }
    pz_model_destroy(&s->m);
err_after_alloc:
    free(s);
    return rc;
}

void shardz_sharder_free(shardz_sharder *s)
{
    if (!s) {
        return;
    }
    if (s->ops->destroy) {
        s->ops->destroy(s);
    }
    pz_model_destroy(&s->m);
    free(s);
}

const char *shardz_sharder_kind(const shardz_sharder *s)
{
    return s->ops->name;
}

int shardz_sharder_register_nodes(shardz_sharder *s, const shardz_node_spec *nodes, size_t n)
{
    return s->ops->register_nodes(s, nodes, n);
}

int shardz_sharder_unregister_nodes(shardz_sharder *s, const char *const *ids, size_t n,
                                    shardz_reason reason)
{
    return s->ops->unregister_nodes(s, ids, n, reason);
}

int shardz_sharder_update_node(shardz_sharder *s, const shardz_node_spec *spec)
{
    return pz_model_update_node(&s->m, spec);
}

int shardz_sharder_set_node_state(shardz_sharder *s, const char *id, shardz_node_state state)
{
    return pz_model_set_node_state(&s->m, id, state);
}

int shardz_sharder_register_partitions(shardz_sharder *s, const shardz_partition_spec *parts,
                                       size_t n)
{
    return s->ops->register_partitions(s, parts, n);
}

int shardz_sharder_unregister_partitions(shardz_sharder *s, const char *const *ids, size_t n)
{
    return s->ops->unregister_partitions(s, ids, n);
}

int shardz_sharder_set_partition_load(shardz_sharder *s, const char *id, const double *load,
                                      size_t n)
{
    return pz_model_set_load(&s->m, id, load, n);
}

int shardz_sharder_partitions_of_node(const shardz_sharder *s, const char *node,
                                      shardz_replica *out, size_t cap, size_t *n)
{
    return s->ops->partitions_of_node(s, node, out, cap, n);
}

int shardz_sharder_nodes_of_partition(const shardz_sharder *s, const char *partition,
                                      shardz_replica *out, size_t cap, size_t *n)
{
    return s->ops->nodes_of_partition(s, partition, out, cap, n);
}

int shardz_sharder_partition_for_key(const shardz_sharder *s, const void *key, size_t len,
                                     const char **partition)
{
    if (!s->ops->partition_for_key) {
        return SHARDZ_ENOTSUP;
    }
    if (!partition || (!key && len > 0)) {
        return SHARDZ_EINVAL;
    }
    return s->ops->partition_for_key(s, key, len, partition);
}

int shardz_sharder_generation(const shardz_sharder *s, const char *partition, uint64_t *gen)
{
    if (!partition || !gen) {
        return SHARDZ_EINVAL;
    }
    uint32_t p = pz_part_find(&s->m, partition);
    if (p == PZ_NONE) {
        return SHARDZ_ENOENT;
    }
    *gen = s->m.parts[p]->gen;
    return 0;
}

int shardz_sharder_bump_generation(shardz_sharder *s, const char *partition, uint64_t *gen)
{
    if (!partition || !gen) {
        return SHARDZ_EINVAL;
    }
    uint32_t p = pz_part_find(&s->m, partition);
    if (p == PZ_NONE) {
        return SHARDZ_ENOENT;
    }
    *gen = ++s->m.parts[p]->gen;
    return 0;
}

/* ---- generic implementations --------------------------------------------------------- */

int pz_generic_register_nodes(shardz_sharder *s, const shardz_node_spec *nodes, size_t n)
{
    return pz_model_add_nodes(&s->m, nodes, n);
}

int pz_generic_unregister_nodes(shardz_sharder *s, const char *const *ids, size_t n,
                                shardz_reason reason)
{
    return pz_model_remove_nodes(&s->m, ids, n, reason);
}

int pz_generic_register_partitions(shardz_sharder *s, const shardz_partition_spec *p, size_t n)
{
    return pz_model_add_parts(&s->m, p, n, NULL);
}

int pz_generic_unregister_partitions(shardz_sharder *s, const char *const *ids, size_t n)
{
    if (n == 0) {
        return 0;
    }
    if (!ids) {
        return SHARDZ_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ids[i]) {
            return SHARDZ_EINVAL;
        }
        if (pz_part_find(&s->m, ids[i]) == PZ_NONE) {
            return SHARDZ_ENOENT;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t p = pz_part_find(&s->m, ids[i]);
        if (p != PZ_NONE) { /* named twice: already gone */
            pz_model_remove_part(&s->m, p);
        }
    }
    return 0;
}

static shardz_role role_of(const pz_model *m, unsigned slot)
{
    if (!m->roles) {
        return SHARDZ_ROLE_NONE;
    }
    return slot == 0 ? SHARDZ_ROLE_PRIMARY : SHARDZ_ROLE_SECONDARY;
}

int pz_generic_partitions_of_node(const shardz_sharder *s, const char *node, shardz_replica *out,
                                  size_t cap, size_t *n)
{
    const pz_model *m = &s->m;
    if (!node || !n || (cap > 0 && !out)) {
        return SHARDZ_EINVAL;
    }
    uint32_t idx = pz_node_find(m, node);
    if (idx == PZ_NONE) {
        return SHARDZ_ENOENT;
    }
    const pz_node *nd = &m->nodes[idx];
    for (uint32_t i = 0; i < nd->nlist && i < cap; i++) {
        uint32_t rid = nd->list[i];
        out[i].partition = pz_part_id(m->parts[PZ_RID_PART(rid)]);
        out[i].node = nd->id;
        out[i].slot = PZ_RID_SLOT(rid);
        out[i].role = role_of(m, PZ_RID_SLOT(rid));
    }
    *n = nd->nlist;
    return 0;
}

int pz_generic_nodes_of_partition(const shardz_sharder *s, const char *partition,
                                  shardz_replica *out, size_t cap, size_t *n)
{
    const pz_model *m = &s->m;
    if (!partition || !n || (cap > 0 && !out)) {
        return SHARDZ_EINVAL;
    }
    uint32_t idx = pz_part_find(m, partition);
    if (idx == PZ_NONE) {
        return SHARDZ_ENOENT;
    }
    const pz_part *p = m->parts[idx];
    size_t k = 0;
    for (unsigned sl = 0; sl < p->nrep; sl++) {
        uint32_t nn = p->slots[sl].node;
        if (nn == PZ_NONE || m->nodes[nn].gone) {
            continue;
        }
        if (k < cap) {
            out[k].partition = pz_part_id(p);
            out[k].node = m->nodes[nn].id;
            out[k].slot = sl;
            out[k].role = role_of(m, sl);
        }
        k++;
    }
    *n = k;
    return 0;
}

/* ---- plans --------------------------------------------------------------------------- */

shardz_plan *pz_plan_new(const pz_model *m)
{
    shardz_plan *p = calloc(1, sizeof *p);
    if (!p) {
        return NULL;
    }
    p->revision = m->revision;
    p->model = m;
    p->nnode_ids = m->nnodes;
    p->node_ids = calloc(m->nnodes ? m->nnodes : 1, sizeof *p->node_ids);
    if (!p->node_ids) {
        goto err;
    }
    for (uint32_t i = 0; i < m->nnodes; i++) {
        if (!m->nodes[i].id) {
            continue;
        }
        p->node_ids[i] = strdup(m->nodes[i].id);
        if (!p->node_ids[i]) {
            goto err;
        }
    }
    return p;
err:
    shardz_plan_free(p);
    return NULL;
}

int shardz_sharder_rebalance(shardz_sharder *s, unsigned flags, shardz_plan **out)
{
    if (!out || (flags & ~SHARDZ_PLAN_DRY_RUN)) {
        return SHARDZ_EINVAL;
    }
    *out = NULL;
    shardz_plan *p = pz_plan_new(&s->m);
    if (!p) {
        return SHARDZ_ENOMEM;
    }
    int rc = pz_plan_snapshot(&s->m, p);
    if (rc) {
        shardz_plan_free(p);
        return rc;
    }
    p->logging = (flags & SHARDZ_PLAN_DRY_RUN) != 0;
    rc = s->ops->plan(s, p);
    if (rc) {
        pz_plan_revert(&s->m, p);
        shardz_plan_free(p);
        return rc;
    }
    if (flags & SHARDZ_PLAN_DRY_RUN) {
        pz_plan_revert(&s->m, p);
    } else {
        pz_plan_commit(&s->m, p);
    }
    /* The snapshot only served the revert; a dry run keeps its log, so that applying it
     * later replays the very assignments the planner made (same replica list order as a
     * rebalance without a dry run: the two paths stay identical). */
    p->logging = false;
    free(p->node_load);
    p->node_load = NULL;
    *out = p;
    return 0;
}

int shardz_sharder_apply(shardz_sharder *s, const shardz_plan *plan)
{
    if (!plan || plan->model != &s->m) {
        return SHARDZ_EINVAL;
    }
    if (plan->revision != s->m.revision) {
        return SHARDZ_ESTALE;
    }
    /* Replay the planner's assignments (or, without a log, the moves); a failure
     * (allocation) undoes the ones done. */
    shardz_plan undo = {.model = plan->model, .logging = true};
    int rc = pz_plan_snapshot(&s->m, &undo);
    size_t steps = plan->ops ? plan->nops : plan->n;
    for (size_t i = 0; i < steps && rc == 0; i++) {
        if (plan->ops) {
            const struct pz_op *op = &plan->ops[i];
            rc =
                pz_plan_assign(&s->m, &undo, op->pidx, op->slot, op->to, (shardz_reason)op->reason);
        } else {
            const pz_move *mv = &plan->moves[i];
            rc =
                pz_plan_assign(&s->m, &undo, mv->pidx, mv->slot, mv->to, (shardz_reason)mv->reason);
        }
    }
    if (rc) {
        pz_plan_revert(&s->m, &undo);
    }
    free(undo.node_load);
    free(undo.ops);
    if (rc) {
        return rc;
    }
    pz_plan_commit(&s->m, (shardz_plan *)plan);
    return 0;
}

int shardz_sharder_move(shardz_sharder *s, const char *partition, unsigned slot, const char *node,
                        shardz_plan **out)
{
    if (!partition || !node || !out) {
        return SHARDZ_EINVAL;
    }
    *out = NULL;
    uint32_t p = pz_part_find(&s->m, partition);
    uint32_t n = pz_node_find(&s->m, node);
    if (p == PZ_NONE || n == PZ_NONE) {
        return SHARDZ_ENOENT;
    }
    if (slot >= s->m.parts[p]->nrep) {
        return SHARDZ_ERANGE;
    }
    if (s->m.parts[p]->slots[slot].node == n) {
        return SHARDZ_EEXIST;
    }
    if (!pz_node_eligible(&s->m, n) || pz_part_on_node(&s->m, p, n) || !pz_fits(&s->m, n, p)) {
        return SHARDZ_EINVAL;
    }
    shardz_plan *plan = pz_plan_new(&s->m);
    if (!plan) {
        return SHARDZ_ENOMEM;
    }
    int rc = pz_plan_move(&s->m, plan, p, slot, n, SHARDZ_REASON_OPERATOR);
    if (rc) {
        shardz_plan_free(plan);
        return rc;
    }
    pz_plan_commit(&s->m, plan);
    *out = plan;
    return 0;
}

int shardz_sharder_swap_slots(shardz_sharder *s, const char *partition, unsigned a, unsigned b)
{
    if (!partition) {
        return SHARDZ_EINVAL;
    }
    uint32_t p = pz_part_find(&s->m, partition);
    if (p == PZ_NONE) {
        return SHARDZ_ENOENT;
    }
    return pz_swap_slots(&s->m, p, a, b);
}

size_t shardz_plan_count(const shardz_plan *p)
{
    return p ? p->n : 0;
}

void shardz_plan_move(const shardz_plan *p, size_t i, shardz_move *m)
{
    const pz_move *mv = &p->moves[i];
    m->partition = pz_part_id(p->model->parts[mv->pidx]);
    m->slot = mv->slot;
    m->from = mv->from == PZ_NONE ? NULL : p->node_ids[mv->from];
    m->to = mv->to == PZ_NONE ? NULL : p->node_ids[mv->to];
    m->reason = (shardz_reason)mv->reason;
}

size_t shardz_plan_missing(const shardz_plan *p)
{
    return p ? p->missing : 0;
}

size_t shardz_plan_count_reason(const shardz_plan *p, shardz_reason r)
{
    size_t k = 0;
    for (size_t i = 0; p && i < p->n; i++) {
        if (p->moves[i].reason == r) {
            k++;
        }
    }
    return k;
}

void shardz_plan_free(shardz_plan *p)
{
    if (!p) {
        return;
    }
    for (uint32_t i = 0; p->node_ids && i < p->nnode_ids; i++) {
        free(p->node_ids[i]);
    }
    free(p->node_ids);
    free(p->moves);
    free(p->node_load);
    free(p->ops);
    free(p);
}

/* ---- counters ------------------------------------------------------------------------ */

void shardz_sharder_get_stats(const shardz_sharder *s, shardz_sharder_stats *st)
{
    const pz_model *m = &s->m;
    memset(st, 0, sizeof *st);
    st->revision = m->revision;
    st->partitions = m->nparts;
    double total = 0, wsum = 0;
    bool first = true;
    for (uint32_t i = 0; i < m->nnodes; i++) {
        const pz_node *nd = &m->nodes[i];
        if (!nd->id || nd->gone) {
            continue;
        }
        st->nodes++;
        if (!pz_node_eligible(m, i)) {
            continue;
        }
        st->eligible_nodes++;
        total += nd->load[0];
        wsum += nd->weight;
        if (first || nd->nlist < st->min_count) {
            st->min_count = nd->nlist;
        }
        if (first || nd->nlist > st->max_count) {
            st->max_count = nd->nlist;
        }
        if (first || nd->load[0] < st->min_load) {
            st->min_load = nd->load[0];
        }
        if (first || nd->load[0] > st->max_load) {
            st->max_load = nd->load[0];
        }
        first = false;
    }
    if (st->eligible_nodes > 0) {
        st->mean_load = total / (double)st->eligible_nodes;
        for (uint32_t i = 0; i < m->nnodes; i++) {
            if (!m->nodes[i].id || !pz_node_eligible(m, i) || total <= 0) {
                continue;
            }
            double share = total * m->nodes[i].weight / wsum;
            double r = m->nodes[i].load[0] / share;
            if (r > st->max_over_share) {
                st->max_over_share = r;
            }
        }
    }
    /* Per live zone, its eligible nodes: a zone can hold at most that many of a partition's
     * replicas, so "spread as zones allow" means no zone could take one more from a zone
     * holding two or more above it. */
    uint32_t *room = calloc(m->nzones, sizeof *room);
    uint16_t *cnt = calloc(m->nzones, sizeof *cnt);
    for (uint32_t i = 0; room && i < m->nnodes; i++) {
        if (m->nodes[i].id && pz_node_eligible(m, i)) {
            room[m->nodes[i].zone]++;
        }
    }
    uint32_t nlive = 0;
    for (uint32_t z = 0; room && z < m->nzones; z++) {
        nlive += room[z] > 0;
    }
    for (uint32_t p = 0; p < m->nparts; p++) {
        const pz_part *pp = m->parts[p];
        unsigned assigned = 0;
        for (unsigned sl = 0; sl < pp->nrep; sl++) {
            uint32_t nn = pp->slots[sl].node;
            if (nn == PZ_NONE || m->nodes[nn].gone) {
                st->missing++;
            } else {
                assigned++;
            }
        }
        st->replicas += assigned;
        if (nlive > 1 && assigned > 1 && cnt) {
            pz_zone_counts(m, p, pp->nrep, cnt);
            unsigned hi = 0, lo_open = UINT32_MAX;
            for (uint32_t z = 0; z < m->nzones; z++) {
                if (!room[z]) {
                    continue;
                }
                hi = cnt[z] > hi ? cnt[z] : hi;
                if (cnt[z] < room[z] && cnt[z] < lo_open) {
                    lo_open = cnt[z];
                }
            }
            if (lo_open != UINT32_MAX && hi >= lo_open + 2) {
                st->zone_violations++;
            }
        }
    }
    free(room);
    free(cnt);
}

/* ---- names --------------------------------------------------------------------------- */

static const char *const reason_names[SHARDZ_REASON__COUNT] = {
    "new",  "node-dead", "leave",    "drain",  "join",   "rebalance",
    "load", "split",     "operator", "repair", "handoff"};
static const char *const state_names[] = {"joining", "alive", "suspect", "draining", "dead"};

const char *shardz_reason_name(shardz_reason r)
{
    return (unsigned)r < SHARDZ_REASON__COUNT ? reason_names[r] : "unknown";
}

const char *shardz_node_state_name(shardz_node_state st)
{
    return (unsigned)st <= SHARDZ_NODE_DEAD ? state_names[st] : "unknown";
}

int shardz_node_state_parse(const char *name, shardz_node_state *out)
{
    for (unsigned i = 0; name && i <= SHARDZ_NODE_DEAD; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (shardz_node_state)i;
            return 0;
        }
    }
    return SHARDZ_EINVAL;
}
