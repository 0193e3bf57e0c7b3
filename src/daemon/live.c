/* Live configuration: PATCH /v1/namespaces/{ns} (docs/PROTOCOL.md section 3.1). The patch is
 * checked by the pure core (core/config.c: szd_ns_config_patch), shown as a plan by a dry run,
 * or made durable (the config record) and then carried out: timings go to the health lane and
 * the tick, a replica count change adds vacant slots (placed by the next rebalance, never
 * gated: adding a replica takes nothing away) or empties the highest slots (planned moves
 * through the drain gate, the slots dropped once empty). Also the startup grace (first
 * placement after a start or a create). Event-loop thread. */
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/health_lane.h"
#include "daemon/oom.h"

/* p's slots resized to nrep in place (a new block: load, slots, id); new slots vacant. */
static void part_resize(szd_ns *ns, szd_part *p, unsigned nrep)
{
    size_t nd = ns->cfg.ndims, idlen = strlen(p->id);
    double *blk = szd_xcalloc(1, nd * sizeof(double) + nrep * sizeof(szd_slot) + idlen + 1);
    memcpy(blk, p->load, nd * sizeof(double));
    szd_slot *sl = (szd_slot *)(blk + nd);
    for (unsigned s = 0; s < nrep; s++) {
        if (s < p->nrep) {
            sl[s] = p->slots[s];
        } else {
            szd_slot_init(&sl[s]);
        }
    }
    char *id = (char *)(sl + nrep);
    memcpy(id, p->id, idlen + 1);
    free(p->load);
    p->load = blk;
    p->slots = sl;
    p->id = id;
    p->nrep = (uint16_t)nrep;
    szd_part_mark_dirty(ns, p);
}

/* The sharder's view of p with `nrep` replicas: its slots 0..nrep-1 as they are (owners that
 * left are vacant). 0 or the sharder's error (p is then registered as before when possible). */
static int sharder_reshape(szd_ns *ns, szd_part *p, unsigned nrep)
{
    const char *owners[SHARDZ_MAX_REPLICAS] = {0};
    for (unsigned s = 0; s < nrep && s < p->nrep; s++) {
        int32_t o = p->slots[s].owner;
        owners[s] = o >= 0 && ns->nodes[o]->state != SZD_NODE_LEFT ? ns->nodes[o]->id : NULL;
    }
    uint64_t gen = 0;
    (void)shardz_sharder_generation(ns->sh, p->id, &gen);
    const char *id = p->id;
    shardz_partition_spec spec = {
        .id = id, .replicas = nrep, .nnodes = nrep, .nodes = owners, .generation = gen};
    int rc = shardz_sharder_unregister_partitions(ns->sh, &id, 1);
    if (rc == 0) {
        rc = shardz_sharder_register_partitions(ns->sh, &spec, 1);
    }
    return rc;
}

/* Drops the emptied slots above the replica count (their replicas dropped, or the gate still
 * holds their vacate back: then later). */
void szd_live_shrink(szd_ns *ns)
{
    bool pending = false;
    for (uint32_t i = 0; i < ns->nparts; i++) {
        szd_part *p = &ns->parts[i];
        if (p->nrep <= ns->cfg.replicas) {
            continue;
        }
        bool empty = true;
        for (unsigned s = ns->cfg.replicas; s < p->nrep; s++) {
            empty &= p->slots[s].owner < 0 && p->slots[s].prev < 0;
        }
        if (empty) {
            part_resize(ns, p, ns->cfg.replicas);
        } else {
            pending = true;
        }
    }
    ns->shrink_pending = pending;
}

/* Replicas lowered to nrep: the sharder forgets the higher slots; each one held is emptied by a
 * planned move (reason rebalance) through the drain gate. The moves, started or waiting, are
 * appended to `moves`. */
static void replicas_down(szd_ns *ns, unsigned nrep, json_t *moves)
{
    for (uint32_t i = 0; i < ns->nparts; i++) {
        szd_part *p = &ns->parts[i];
        if (p->nrep <= nrep) {
            continue;
        }
        if (sharder_reshape(ns, p, nrep) != 0) {
            szd_log(ns->d, SZD_ERROR, "msg=\"replicas not lowered\" ns=%s partition=%s",
                    ns->cfg.name, p->id);
            continue;
        }
        for (unsigned s = nrep; s < p->nrep; s++) {
            int32_t at = szd_slot_serving_node(&p->slots[s]);
            if (at < 0) {
                at = p->slots[s].owner;
            }
            shardz_move mv = {.partition = p->id,
                              .slot = s,
                              .from = at >= 0 ? ns->nodes[at]->id : NULL,
                              .to = NULL,
                              .reason = SHARDZ_REASON_REBALANCE};
            if (at < 0 && p->slots[s].prev < 0) {
                continue; /* vacant already */
            }
            bool started = szd_gate_admit(ns, &mv);
            if (started) {
                szd_move_start(ns, &mv);
            }
            json_array_append_new(moves,
                                  json_pack("{s:s, s:i, s:s?, s:n, s:s, s:s}", "partition", p->id,
                                            "slot", (int)s, "from", mv.from, "to", "reason",
                                            "rebalance", "waiting", started ? "" : "gate"));
        }
    }
    ns->shrink_pending = true;
    ns->want_rebalance = true; /* the placement evens out what is left (planned, gated) */
}

/* Replicas raised to nrep: vacant slots added; the next rebalance places them. */
static int replicas_up(szd_ns *ns, unsigned nrep)
{
    for (uint32_t i = 0; i < ns->nparts; i++) {
        szd_part *p = &ns->parts[i];
        if (p->nrep >= nrep) {
            continue;
        }
        int rc = sharder_reshape(ns, p, nrep);
        if (rc) {
            szd_log(ns->d, SZD_ERROR, "msg=\"replicas not raised\" ns=%s partition=%s err=%s",
                    ns->cfg.name, p->id, shardz_err_name(rc));
            return rc;
        }
        part_resize(ns, p, nrep);
    }
    ns->want_rebalance = true;
    return 0;
}

/* Alive nodes of ns. */
static uint32_t alive_nodes(const szd_ns *ns)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        n += ns->nodes[i]->state == SZD_NODE_ALIVE;
    }
    return n;
}

bool szd_live_in_grace(szd_ns *ns)
{
    if (ns->grace_until_ms == 0) {
        return false;
    }
    if (szd_now(ns->d) >= ns->grace_until_ms ||
        (ns->cfg.min_nodes > 0 && alive_nodes(ns) >= ns->cfg.min_nodes)) {
        szd_log(ns->d, SZD_INFO, "msg=\"startup grace over\" ns=%s alive=%u", ns->cfg.name,
                alive_nodes(ns));
        ns->grace_until_ms = 0;
        return false;
    }
    return true;
}

void szd_live_start_grace(szd_ns *ns)
{
    ns->grace_until_ms =
        ns->cfg.startup_grace_ms > 0 ? szd_now(ns->d) + ns->cfg.startup_grace_ms : 0;
}

/* A dry run of a replica count change: the placement's plan on a copy of the namespace
 * (nodes and partitions as they are, every partition with nrep replicas). NULL on failure. */
static json_t *dry_plan(szd_ns *ns, unsigned nrep)
{
    shardz_sharder_config sc = {.kind = ns->cfg.sharder,
                                .replicas = nrep,
                                .ndims = ns->cfg.ndims,
                                .roles = ns->cfg.roles,
                                .band = ns->cfg.band,
                                .seed = 1,
                                .slots = ns->cfg.slots};
    shardz_sharder *sh = NULL;
    shardz_plan *plan = NULL;
    json_t *moves = NULL;
    if (shardz_sharder_new(&sc, &sh) != 0) {
        return NULL;
    }
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        const szd_node *n = ns->nodes[i];
        if (n->state == SZD_NODE_LEFT) {
            continue;
        }
        shardz_node_spec spec = {.id = n->id,
                                 .zone = n->zone,
                                 .ncapacity = n->ncap,
                                 .state = szd_sharder_state(n->state)};
        memcpy(spec.capacity, n->cap, sizeof spec.capacity);
        if (shardz_sharder_register_nodes(sh, &spec, 1) != 0) {
            goto out;
        }
    }
    for (uint32_t i = 0; i < ns->nparts; i++) {
        const szd_part *p = &ns->parts[i];
        const char *owners[SHARDZ_MAX_REPLICAS] = {0};
        for (unsigned s = 0; s < nrep && s < p->nrep; s++) {
            int32_t o = p->slots[s].owner;
            owners[s] = o >= 0 && ns->nodes[o]->state != SZD_NODE_LEFT ? ns->nodes[o]->id : NULL;
        }
        uint64_t gen = 0;
        (void)shardz_sharder_generation(ns->sh, p->id, &gen);
        shardz_partition_spec spec = {
            .id = p->id, .replicas = nrep, .nnodes = nrep, .nodes = owners, .generation = gen};
        if (shardz_sharder_register_partitions(sh, &spec, 1) != 0) {
            goto out;
        }
    }
    if (shardz_sharder_rebalance(sh, SHARDZ_PLAN_DRY_RUN, &plan) != 0) {
        goto out;
    }
    moves = json_array();
    for (uint32_t i = 0; i < ns->nparts; i++) { /* the slots emptied first */
        const szd_part *p = &ns->parts[i];
        for (unsigned s = nrep; s < p->nrep; s++) {
            int32_t at = szd_slot_serving_node(&p->slots[s]);
            at = at >= 0 ? at : p->slots[s].owner;
            if (at >= 0) {
                json_array_append_new(moves,
                                      json_pack("{s:s, s:i, s:s, s:n, s:s}", "partition", p->id,
                                                "slot", (int)s, "from", ns->nodes[at]->id, "to",
                                                "reason", "rebalance"));
            }
        }
    }
    for (size_t i = 0; i < shardz_plan_count(plan); i++) {
        shardz_move mv;
        shardz_plan_move(plan, i, &mv);
        json_array_append_new(moves,
                              json_pack("{s:s, s:i, s:s?, s:s?, s:s}", "partition", mv.partition,
                                        "slot", (int)mv.slot, "from", mv.from, "to", mv.to,
                                        "reason", shardz_reason_name(mv.reason)));
    }
out:
    shardz_plan_free(plan);
    shardz_sharder_free(sh);
    return moves;
}

int szd_ns_patch(szd_ns *ns, json_t *patch, bool dry_run, json_t **reply, char *err, size_t errlen)
{
    szd_ns_config nc;
    json_t *cur = szd_ns_config_json(ns);
    int rc = szd_ns_config_patch(&ns->cfg, cur, patch, &nc, err, errlen);
    json_decref(cur);
    if (rc) {
        return rc;
    }
    bool replicas = nc.replicas != ns->cfg.replicas;
    if (dry_run) {
        json_t *moves = replicas ? dry_plan(ns, nc.replicas) : json_array();
        if (!moves) {
            snprintf(err, errlen, "the placement could not plan it");
            return SHARDZ_EINVAL;
        }
        szd_ns_config old = ns->cfg;
        ns->cfg = nc; /* shown as it would be; put back at once */
        json_t *cfg = szd_ns_config_json(ns);
        ns->cfg = old;
        *reply = json_pack("{s:b, s:o, s:o, s:I}", "dry_run", 1, "config", cfg, "moves", moves,
                           "revision", (json_int_t)ns->revision);
        return 0;
    }
    szd_ns_config old = ns->cfg;
    ns->cfg = nc;
    rc = szd_ns_flush(ns, true, err, errlen, NULL); /* the config record, durable first */
    if (rc) {
        ns->cfg = old;
        return rc;
    }
    json_t *moves = json_array();
    if (replicas && nc.replicas > old.replicas) {
        rc = replicas_up(ns, nc.replicas);
        if (rc) {
            snprintf(err, errlen, "recorded, but the placement refused %u replicas: %s",
                     nc.replicas, shardz_strerror(rc));
        }
    } else if (replicas) {
        replicas_down(ns, nc.replicas, moves);
    }
    if (nc.ping_interval_ms != old.ping_interval_ms || nc.dead_after_ms != old.dead_after_ms ||
        nc.lease_ms != old.lease_ms) {
        szd_hl_ns_set(ns->d->hl, ns->key, nc.name, nc.ping_interval_ms, nc.dead_after_ms,
                      nc.lease_ms, nc.strict);
        struct timeval tv = {nc.ping_interval_ms / 1000, (nc.ping_interval_ms % 1000) * 1000};
        event_del(ns->tick);
        event_add(ns->tick, &tv);
    }
    szd_event(ns, "config", json_pack("{s:O}", "changed", patch));
    szd_log(ns->d, SZD_INFO, "msg=\"config changed\" ns=%s replicas=%u min_available=%u frozen=%d",
            nc.name, nc.replicas, nc.min_available, nc.frozen);
    szd_ns_changed(ns); /* the queue is pumped, the moves persisted and pushed */
    json_t *j = szd_ns_summary_json(ns);
    json_object_set_new(j, "moves", moves);
    *reply = j;
    return rc;
}
