/* State transfer in the shell: a new owner that serves a replica but still copies its data
 * (a "ready": false answer from a worker that speaks "transfer") keeps routing on the old
 * owner until it reports ready in a ping reply, or until the namespace's transfer_timeout_ms
 * (then routing switches anyway: logged, counted, an event). The core's gate
 * (core/transfer.c) decides per slot. Event-loop thread. */
#include <string.h>

#include "daemon/core/transfer.h"
#include "daemon/daemon.h"
#include "daemon/oom.h"

int32_t szd_transfer_source(const szd_ns *ns, const szd_part *p, unsigned s, int32_t me)
{
    const szd_slot *sl = &p->slots[s];
    if (sl->prev >= 0 && sl->prev != me && sl->prev_state == SZD_R_SERVING) {
        return sl->prev; /* the node it replaces, still serving */
    }
    for (unsigned t = 0; t < p->nrep; t++) {
        int32_t x = szd_slot_serving_node(&p->slots[t]);
        if (x >= 0 && x != me && ns->nodes[x]->state != SZD_NODE_DEAD &&
            ns->nodes[x]->state != SZD_NODE_LEFT) {
            return x; /* another replica's */
        }
    }
    return -1; /* a first placement, or every other copy is gone */
}

json_t *szd_transfer_unready_of(const szd_node *n, json_t *serving)
{
    if (!n->transfer_ok) {
        return NULL; /* a worker that never offered it is ready at once */
    }
    json_t *out = NULL;
    size_t k;
    json_t *e;
    json_array_foreach(serving, k, e)
    {
        const char *pid = json_string_value(json_object_get(e, "partition"));
        if (pid && json_is_false(json_object_get(e, "ready"))) {
            if (!out) {
                out = json_object();
            }
            json_object_set_new(out, pid, json_true());
        }
    }
    return out;
}

bool szd_transfer_unready(szd_ns *ns, szd_part *p, int32_t me, uint64_t served_gen)
{
    bool waits = false, serve = false;
    for (unsigned s = 0; s < p->nrep; s++) {
        bool was = p->slots[s].unready;
        szd_tr_step st =
            szd_transfer_answer(&p->slots[s], me, served_gen, false, ns->cfg.transfer_timeout_ms);
        waits |= st == SZD_TR_WAIT;
        serve |= st == SZD_TR_SERVE;
        if (st == SZD_TR_WAIT && !was) {
            szd_log(ns->d, SZD_INFO,
                    "msg=\"new owner not ready: routing waits\" ns=%s partition=%s slot=%u "
                    "node=%s generation=%llu",
                    ns->cfg.name, p->id, s, ns->nodes[me]->id,
                    (unsigned long long)p->slots[s].generation);
        }
    }
    if (waits && !szd_idset_add(&ns->transfers, p->id)) {
        szd_oom();
    }
    /* routing never waits (timeout 0): as if it were ready */
    return serve ? szd_ns_ack_serving(ns, p, me, served_gen) : false;
}

void szd_transfer_ready(szd_ns *ns, szd_node *n, json_t *ready)
{
    if (!n->transfer_ok || !json_is_array(ready)) {
        return;
    }
    int32_t me = 0;
    while ((uint32_t)me < ns->nnodes && ns->nodes[me] != n) {
        me++;
    }
    bool changed = false;
    size_t k;
    json_t *e;
    json_array_foreach(ready, k, e)
    {
        const char *pid = json_string_value(json_object_get(e, "partition"));
        json_t *gen = json_object_get(e, "generation");
        szd_part *p = pid ? szd_part_find(ns, pid) : NULL;
        if (!p || !json_is_integer(gen) || json_integer_value(gen) < 0) {
            szd_log(ns->d, SZD_WARN, "msg=\"ignoring a ready entry\" ns=%s node=%s reason=\"%s\"",
                    ns->cfg.name, n->id, p ? "bad generation" : "unknown partition");
            continue;
        }
        changed |= szd_ns_ack_serving(ns, p, me, (uint64_t)json_integer_value(gen));
    }
    if (changed) {
        szd_ns_changed(ns);
    }
}

void szd_transfer_settled(szd_ns *ns, const szd_part *p)
{
    for (unsigned s = 0; s < p->nrep; s++) {
        if (szd_transfer_waiting(&p->slots[s])) {
            return;
        }
    }
    szd_idset_remove(&ns->transfers, p->id);
}

void szd_transfer_tick(szd_ns *ns)
{
    if (ns->transfers.n == 0) {
        return;
    }
    int64_t now = szd_now(ns->d);
    bool changed = false;
    /* taken: a switch below settles its partition (szd_transfer_settled), which must not
     * change the set being walked; the ones still waiting go back */
    szd_idset cur = ns->transfers;
    ns->transfers = (szd_idset){0};
    for (size_t i = 0; i < cur.cap; i++) {
        const char *id = cur.slots[i];
        szd_part *p = id ? szd_part_find(ns, id) : NULL;
        if (!p) {
            continue;
        }
        for (unsigned s = 0; s < p->nrep; s++) {
            szd_slot *sl = &p->slots[s];
            if (!szd_transfer_expired(sl, ns->cfg.transfer_timeout_ms, now)) {
                continue;
            }
            int32_t owner = sl->owner;
            ns->transfer_timeouts++;
            szd_log(ns->d, SZD_WARN,
                    "msg=\"state transfer timed out: routing switches to a node not ready\" "
                    "ns=%s partition=%s slot=%u node=%s generation=%llu timeout_ms=%lld",
                    ns->cfg.name, p->id, s, ns->nodes[owner]->id,
                    (unsigned long long)sl->generation, (long long)ns->cfg.transfer_timeout_ms);
            szd_event(ns, "transfer-timeout",
                      json_pack("{s:s, s:i, s:s, s:I}", "partition", p->id, "slot", (int)s, "node",
                                ns->nodes[owner]->id, "generation", (json_int_t)sl->generation));
            changed |= szd_ns_ack_serving(ns, p, owner, sl->generation);
        }
        bool waiting = false;
        for (unsigned s = 0; s < p->nrep; s++) {
            waiting |= szd_transfer_waiting(&p->slots[s]);
        }
        if (waiting && !szd_idset_add(&ns->transfers, id)) {
            szd_oom();
        }
    }
    szd_idset_clear(&cur);
    if (changed) {
        szd_ns_changed(ns);
    }
}
