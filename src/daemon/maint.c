/* Planned maintenance (docs/OPERATIONS.md "Planned maintenance"): the drain gate's queue of
 * planned moves waiting for the availability floor or the in-flight limit (core/gate.c
 * decides; this file keeps the queue and starts what it allows), and POST /v1/stoppable
 * (which nodes may stop now, together, across every namespace). Event-loop thread. */
#include <stdlib.h>
#include <string.h>

#include "daemon/core/gate.h"
#include "daemon/daemon.h"
#include "daemon/oom.h"

/* One planned move the gate holds back. The placement's target already has it (the sharder
 * applied the plan); the slot has not started it yet. Kept in memory only: after a restart
 * the namespace's first rebalance plans again what the target and the slots still differ on
 * (docs/STORE.md). */
struct szd_queued {
    char *partition; /* owned */
    unsigned slot;
    char from[SHARDZ_MAX_ID + 1]; /* "" none */
    char to[SHARDZ_MAX_ID + 1];   /* "" the slot becomes vacant */
    uint8_t reason;               /* shardz_reason */
    uint8_t wait;                 /* szd_gate_verdict: why it waits */
    int64_t since_ms;             /* queued then */
};

static bool node_gone(const szd_ns *ns, int32_t i)
{
    return i < 0 || ns->nodes[i]->state == SZD_NODE_DEAD || ns->nodes[i]->state == SZD_NODE_LEFT;
}

/* Replicas of p serving now on live nodes. */
static uint32_t serving_of(const szd_ns *ns, const szd_part *p)
{
    uint32_t n = 0;
    for (unsigned s = 0; s < p->nrep; s++) {
        n += !node_gone(ns, szd_slot_serving_node(&p->slots[s]));
    }
    return n;
}

/* Planned moves in flight (started, not done). A pass over the slots, cached while nothing
 * moved on (same revision, no move done); starts through the gate add to the cache. */
static uint64_t in_flight(szd_ns *ns)
{
    if (ns->gate_cache_ok && ns->gate_cache_rev == ns->revision &&
        ns->gate_cache_done == ns->moves_done) {
        return ns->gate_cache_n;
    }
    uint64_t n = 0;
    for (uint32_t i = 0; i < ns->nparts; i++) {
        for (unsigned s = 0; s < ns->parts[i].nrep; s++) {
            const szd_slot *sl = &ns->parts[i].slots[s];
            bool moving = sl->prev >= 0 || sl->owner_state == SZD_R_ADDING ||
                          sl->owner_state == SZD_R_PENDING;
            n += moving && sl->owner >= 0 && szd_gate_planned(sl->reason);
        }
    }
    ns->gate_cache_ok = true;
    ns->gate_cache_rev = ns->revision;
    ns->gate_cache_done = ns->moves_done;
    ns->gate_cache_n = n;
    return n;
}

static szd_gate_verdict verdict(szd_ns *ns, const szd_part *p, unsigned slot, uint8_t reason,
                                bool vacate)
{
    int32_t src = szd_slot_serving_node(&p->slots[slot]);
    int32_t holder = p->slots[slot].owner;
    szd_gate_in in = {.reason = reason,
                      .strict = ns->cfg.strict,
                      .source_serving = !node_gone(ns, src),
                      .source_gone = holder >= 0 && node_gone(ns, holder) && src < 0,
                      .serving = serving_of(ns, p),
                      .min_available = ns->cfg.min_available,
                      .in_flight = in_flight(ns),
                      .max_in_flight = ns->cfg.max_moves_in_flight,
                      .frozen = ns->cfg.frozen,
                      .vacate = vacate};
    return szd_gate_check(&in);
}

static void queue_remove(szd_ns *ns, size_t i)
{
    free(ns->queue[i].partition);
    memmove(&ns->queue[i], &ns->queue[i + 1], (ns->nqueue - i - 1) * sizeof ns->queue[0]);
    ns->nqueue--;
}

/* The queued move of (partition, slot), or -1. */
static ssize_t queue_find(const szd_ns *ns, const char *partition, unsigned slot)
{
    for (size_t i = 0; i < ns->nqueue; i++) {
        if (ns->queue[i].slot == slot && strcmp(ns->queue[i].partition, partition) == 0) {
            return (ssize_t)i;
        }
    }
    return -1;
}

void szd_gate_forget(szd_ns *ns, const char *partition, unsigned slot)
{
    ssize_t i = queue_find(ns, partition, slot);
    if (i >= 0) {
        queue_remove(ns, (size_t)i);
    }
}

/* Queues mv (replacing what waited for its slot); false when out of memory (logged). */
static bool enqueue(szd_ns *ns, const shardz_move *mv, szd_gate_verdict why)
{
    ssize_t at = queue_find(ns, mv->partition, mv->slot);
    if (at < 0) {
        if (ns->nqueue == ns->capqueue) {
            size_t cap = ns->capqueue ? 2 * ns->capqueue : 16;
            struct szd_queued *q = realloc(ns->queue, cap * sizeof *q);
            if (!q) {
                return false;
            }
            ns->queue = q;
            ns->capqueue = cap;
        }
        char *id = strdup(mv->partition);
        if (!id) {
            return false;
        }
        at = (ssize_t)ns->nqueue++;
        ns->queue[at] = (struct szd_queued){.partition = id, .slot = mv->slot};
    }
    struct szd_queued *e = &ns->queue[at];
    snprintf(e->from, sizeof e->from, "%s", mv->from ? mv->from : "");
    snprintf(e->to, sizeof e->to, "%s", mv->to ? mv->to : "");
    e->reason = (uint8_t)mv->reason;
    e->wait = (uint8_t)why;
    e->since_ms = szd_now(ns->d);
    szd_event(ns, "move-queued",
              json_pack("{s:s, s:i, s:s?, s:s?, s:s, s:s}", "partition", mv->partition, "slot",
                        (int)mv->slot, "from", mv->from, "to", mv->to, "reason",
                        shardz_reason_name(mv->reason), "waiting", szd_gate_verdict_name(why)));
    szd_log(ns->d, SZD_INFO,
            "msg=\"move queued\" ns=%s partition=%s slot=%u to=%s reason=%s waiting=%s",
            ns->cfg.name, mv->partition, mv->slot, mv->to ? mv->to : "-",
            shardz_reason_name(mv->reason), szd_gate_verdict_name(why));
    return true;
}

bool szd_gate_admit(szd_ns *ns, const shardz_move *mv)
{
    szd_part *p = szd_part_find(ns, mv->partition);
    if (!p || mv->slot >= p->nrep || !szd_gate_planned((uint8_t)mv->reason)) {
        szd_gate_forget(ns, mv->partition, mv->slot); /* a failure supersedes what waited */
        return true;
    }
    szd_gate_verdict v = verdict(ns, p, mv->slot, (uint8_t)mv->reason, mv->to == NULL);
    if (v == SZD_GATE_START || !enqueue(ns, mv, v)) {
        szd_gate_forget(ns, mv->partition, mv->slot);
        if (v == SZD_GATE_START) {
            ns->gate_cache_n++;
        }
        return true;
    }
    return false;
}

void szd_gate_pump(szd_ns *ns)
{
    bool started = false;
    for (size_t i = 0; i < ns->nqueue;) {
        struct szd_queued *e = &ns->queue[i];
        szd_part *p = szd_part_find(ns, e->partition);
        szd_node *to = e->to[0] ? szd_node_find(ns, e->to) : NULL;
        if (!p || e->slot >= p->nrep ||
            (e->to[0] && (!to || to->state == SZD_NODE_DEAD || to->state == SZD_NODE_LEFT))) {
            /* the partition went, or the destination failed: the placement re-plans it */
            szd_log(ns->d, SZD_INFO,
                    "msg=\"queued move dropped\" ns=%s partition=%s slot=%u to=%s why=%s",
                    ns->cfg.name, e->partition, e->slot, e->to[0] ? e->to : "-",
                    p ? "destination gone" : "partition gone");
            ns->want_rebalance = true;
            queue_remove(ns, i);
            continue;
        }
        szd_gate_verdict v = verdict(ns, p, e->slot, e->reason, e->to[0] == '\0');
        if (v != SZD_GATE_START) {
            e->wait = (uint8_t)v;
            i++;
            continue;
        }
        shardz_move mv = {.partition = p->id,
                          .slot = e->slot,
                          .from = e->from[0] ? e->from : NULL,
                          .to = e->to[0] ? e->to : NULL,
                          .reason = (shardz_reason)e->reason};
        szd_log(ns->d, SZD_INFO,
                "msg=\"queued move starts\" ns=%s partition=%s slot=%u waited_ms=%lld",
                ns->cfg.name, p->id, e->slot, (long long)(szd_now(ns->d) - e->since_ms));
        szd_move_start(ns, &mv);
        ns->gate_cache_n++;
        queue_remove(ns, i);
        started = true;
    }
    if (started) {
        szd_ns_changed(ns);
    }
}

json_t *szd_gate_queue_json(const szd_ns *ns)
{
    json_t *list = json_array();
    int64_t now = szd_now(ns->d);
    for (size_t i = 0; i < ns->nqueue; i++) {
        const struct szd_queued *e = &ns->queue[i];
        json_array_append_new(list,
                              json_pack("{s:s, s:i, s:s?, s:s?, s:s, s:s, s:I}", "partition",
                                        e->partition, "slot", (int)e->slot, "from",
                                        e->from[0] ? e->from : NULL, "to", e->to[0] ? e->to : NULL,
                                        "reason", shardz_reason_name((shardz_reason)e->reason),
                                        "waiting", szd_gate_verdict_name((szd_gate_verdict)e->wait),
                                        "age_ms", (json_int_t)(now - e->since_ms)));
    }
    return list;
}

void szd_gate_free(szd_ns *ns)
{
    for (size_t i = 0; i < ns->nqueue; i++) {
        free(ns->queue[i].partition);
    }
    free(ns->queue);
    ns->queue = NULL;
    ns->nqueue = ns->capqueue = 0;
}

/* ---- POST /v1/stoppable ----------------------------------------------------------------- */

#define STOP_MAX_NODES 1000 /* ids in one question */
#define STOP_MAX_REASONS 10 /* partitions named per refused node */

/* Per namespace while answering: which of its nodes are in the set accepted so far. */
typedef struct {
    szd_ns *ns;
    bool *in_set; /* nnodes */
} stop_ns;

/* Would node `me` of sn stop with the set without breaking a floor? Appends a reason per
 * partition that would drop below (at most STOP_MAX_REASONS in all) to reasons. */
static bool stop_check_ns(const stop_ns *sn, int32_t me, json_t *reasons)
{
    const szd_ns *ns = sn->ns;
    bool ok = true;
    for (uint32_t i = 0; i < ns->nparts; i++) {
        const szd_part *p = &ns->parts[i];
        uint32_t kept = 0, taken = 0;
        bool mine = false;
        for (unsigned s = 0; s < p->nrep; s++) {
            int32_t at = szd_slot_serving_node(&p->slots[s]);
            if (node_gone(ns, at)) {
                continue; /* dead nodes count as gone already */
            }
            mine |= at == me;
            if (at == me || sn->in_set[at]) {
                taken++;
            } else {
                kept++;
            }
        }
        if (!mine || szd_gate_stop_ok(kept, taken, ns->cfg.min_available)) {
            continue;
        }
        ok = false;
        if (json_array_size(reasons) < STOP_MAX_REASONS) {
            json_array_append_new(
                reasons, json_pack("{s:s, s:s, s:s, s:i, s:i, s:i}", "rule", "floor", "namespace",
                                   ns->cfg.name, "partition", p->id, "serving", (int)(kept + taken),
                                   "left", (int)kept, "min_available", (int)ns->cfg.min_available));
        }
    }
    return ok;
}

/* Answers for the ids in list (checked: 1..STOP_MAX_NODES valid ids, each known somewhere). */
static json_t *stoppable_answer(szd *d, json_t *list, stop_ns *sns)
{
    json_t *may = json_array(), *nodes = json_array();
    char set_zone[SHARDZ_MAX_ID + 1] = "";
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        const char *id = json_string_value(v);
        json_t *reasons = json_array();
        bool alive_somewhere = false, ok = true;
        const char *zone = "";
        for (uint32_t k = 0; k < d->nns; k++) {
            szd_node *n = szd_node_find(sns[k].ns, id);
            if (n && n->state != SZD_NODE_DEAD && n->state != SZD_NODE_LEFT) {
                alive_somewhere = true;
                zone = n->zone;
            }
        }
        if (alive_somewhere && !szd_gate_zone_ok(set_zone, zone)) {
            ok = false;
            json_array_append_new(reasons, json_pack("{s:s, s:s, s:s}", "rule", "zone", "zone",
                                                     zone, "stopping_zone", set_zone));
        }
        for (uint32_t k = 0; ok && alive_somewhere && k < d->nns; k++) {
            int32_t me = -1;
            for (uint32_t x = 0; x < sns[k].ns->nnodes; x++) {
                if (strcmp(sns[k].ns->nodes[x]->id, id) == 0) {
                    me = (int32_t)x;
                }
            }
            if (me >= 0 && !node_gone(sns[k].ns, me)) {
                ok &= stop_check_ns(&sns[k], me, reasons);
            }
        }
        json_t *nj = json_pack("{s:s, s:b}", "id", id, "stoppable", ok);
        if (!alive_somewhere) {
            json_object_set_new(nj, "gone", json_true()); /* dead or left everywhere */
        }
        if (ok) {
            json_array_append_new(may, json_string(id));
            for (uint32_t k = 0; alive_somewhere && k < d->nns; k++) {
                for (uint32_t x = 0; x < sns[k].ns->nnodes; x++) {
                    sns[k].in_set[x] |= strcmp(sns[k].ns->nodes[x]->id, id) == 0;
                }
            }
            if (alive_somewhere && !set_zone[0]) {
                snprintf(set_zone, sizeof set_zone, "%s", zone);
            }
            json_decref(reasons);
        } else {
            json_object_set_new(nj, "reasons", reasons);
        }
        json_array_append_new(nodes, nj);
    }
    return json_pack("{s:o, s:o}", "stoppable", may, "nodes", nodes);
}

void szd_api_stoppable(szd *d, struct evhttp_request *req)
{
    json_t *body = szd_read_body(req);
    stop_ns *sns = NULL;
    if (!body) {
        return;
    }
    json_t *list = json_object_get(body, "nodes");
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "nodes") != 0) {
            szd_reply_error(req, SHARDZ_EINVAL, "unknown field '%s'", k);
            goto out;
        }
    }
    if (!json_is_array(list) || json_array_size(list) < 1 ||
        json_array_size(list) > STOP_MAX_NODES) {
        szd_reply_error(req, SHARDZ_EINVAL, "nodes must be a list of 1 to %d node ids",
                        STOP_MAX_NODES);
        goto out;
    }
    size_t i;
    json_array_foreach(list, i, v)
    {
        const char *id = json_string_value(v);
        if (!szd_valid_id(id)) {
            szd_reply_error(req, SHARDZ_EINVAL, "nodes[%zu] is not a valid node id", i);
            goto out;
        }
        bool known = false;
        for (uint32_t n = 0; n < d->nns && !known; n++) {
            known = szd_node_find(d->ns[n], id) != NULL;
        }
        if (!known) {
            szd_reply_error(req, SHARDZ_ENOENT, "no node '%s' in any namespace", id);
            goto out;
        }
    }
    sns = szd_xcalloc(d->nns ? d->nns : 1, sizeof *sns);
    for (uint32_t n = 0; n < d->nns; n++) {
        sns[n].ns = d->ns[n];
        sns[n].in_set = szd_xcalloc(d->ns[n]->nnodes ? d->ns[n]->nnodes : 1, sizeof(bool));
    }
    szd_reply_json(req, 200, stoppable_answer(d, list, sns), 0);
out:
    for (uint32_t n = 0; sns && n < d->nns; n++) {
        free(sns[n].in_set);
    }
    free(sns);
    json_decref(body);
}
