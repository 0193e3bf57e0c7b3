/* Primary handoff in the shell: when the placement moves a partition's primary (slot 0 of a
 * namespace with roles) off a node that still serves it, a serving secondary is promoted in
 * place instead (the sharder's slots swapped), and the placement's target takes the
 * secondary's slot. The core's handoff machine (core/handoff.c) decides; this applies it:
 * generations, events, logs, pushes. Event-loop thread (ns.c calls it). */
#include <string.h>

#include "daemon/core/handoff.h"
#include "daemon/daemon.h"

/* The secondary slot of p whose owner is promoted, or 0 when none may be: its owner serves
 * with no move in flight, is alive, and the sharder holds it in that slot (a plan that also
 * moved the secondary is carried out as planned). */
static unsigned partner_slot(szd_ns *ns, const szd_part *p, const szd_slot_env *env, int32_t to)
{
    shardz_replica reps[SHARDZ_MAX_REPLICAS];
    size_t n = 0;
    if (shardz_sharder_nodes_of_partition(ns->sh, p->id, reps, SHARDZ_MAX_REPLICAS, &n) != 0) {
        return 0;
    }
    for (unsigned s = 1; s < p->nrep; s++) {
        const szd_slot *sec = &p->slots[s];
        if (!szd_handoff_eligible(&p->slots[0], sec, env, to)) {
            continue;
        }
        for (size_t i = 0; i < n && i < SHARDZ_MAX_REPLICAS; i++) {
            if (reps[i].slot == s && strcmp(reps[i].node, ns->nodes[sec->owner]->id) == 0) {
                return s;
            }
        }
    }
    return 0;
}

static void move_event(szd_ns *ns, const szd_part *p, unsigned s, int32_t from, int32_t to,
                       shardz_reason reason, uint64_t gen)
{
    const char *f = ns->nodes[from]->id, *t = ns->nodes[to]->id;
    ns->moves_by_reason[reason]++;
    szd_event(ns, "move",
              json_pack("{s:s, s:i, s:s, s:s, s:s, s:I}", "partition", p->id, "slot", (int)s,
                        "from", f, "to", t, "reason", shardz_reason_name(reason), "generation",
                        (json_int_t)gen));
    szd_log(ns->d, SZD_INFO,
            "msg=\"move\" ns=%s partition=%s slot=%u from=%s to=%s reason=%s generation=%llu",
            ns->cfg.name, p->id, s, f, t, shardz_reason_name(reason), (unsigned long long)gen);
}

bool szd_handoff_try(szd_ns *ns, szd_part *p, const shardz_move *mv, int32_t to)
{
    if (!ns->cfg.roles || mv->slot != 0 || p->nrep < 2) {
        return false;
    }
    szd_slot_env env = szd_ns_slot_env(ns);
    unsigned k = partner_slot(ns, p, &env, to);
    if (k == 0 || shardz_sharder_swap_slots(ns->sh, p->id, 0, k) != 0) {
        return false;
    }
    /* the sharder now holds the promoted node in slot 0 and `to` in slot k; the target gets
     * the plan's generation, the promoted primary the next one (the partition's highest) */
    uint64_t sec_gen = 0, pri_gen = 0;
    (void)shardz_sharder_generation(ns->sh, p->id, &sec_gen);
    (void)shardz_sharder_bump_generation(ns->sh, p->id, &pri_gen);
    int32_t old = p->slots[0].owner, promoted = p->slots[k].owner;
    move_event(ns, p, 0, old, promoted, SHARDZ_REASON_HANDOFF, pri_gen);
    move_event(ns, p, k, promoted, to, mv->reason, sec_gen);
    szd_slot_out out_pri, out_sec;
    szd_slot_out_init(&out_pri);
    szd_slot_out_init(&out_sec);
    szd_handoff_begin(&p->slots[0], &p->slots[k], &env, to, pri_gen, sec_gen, (uint8_t)mv->reason,
                      szd_now(ns->d), &out_pri, &out_sec);
    out_pri.done = out_sec.done = false; /* moves start here; done when acknowledged */
    szd_ns_slot_applied(ns, p, k, &out_sec);
    szd_ns_slot_applied(ns, p, 0, &out_pri);
    return true;
}

bool szd_handoff_ack(szd_ns *ns, szd_part *p, int32_t me, uint64_t served_gen)
{
    if (!szd_handoff_waits_for(&p->slots[0], me)) {
        return false;
    }
    szd_slot *sec = NULL;
    unsigned k = 0;
    for (unsigned s = 1; s < p->nrep && !sec; s++) {
        if (p->slots[s].prev == me && p->slots[s].prev_state == SZD_R_SERVING) {
            sec = &p->slots[s];
            k = s;
        }
    }
    int32_t old = p->slots[0].prev;
    szd_slot_env env = szd_ns_slot_env(ns);
    szd_slot_out out_pri, out_sec;
    szd_slot_out_init(&out_pri);
    szd_slot_out_init(&out_sec);
    szd_handoff_promoted(&p->slots[0], sec, &env, me, served_gen, &out_pri, &out_sec);
    if (out_sec.changed && old >= 0) {
        szd_log(ns->d, SZD_INFO,
                "msg=\"primary handed off\" ns=%s partition=%s primary=%s generation=%llu "
                "demoted=%s slot=%u",
                ns->cfg.name, p->id, ns->nodes[me]->id, (unsigned long long)p->slots[0].generation,
                ns->nodes[old]->id, k);
        szd_ns_slot_applied(ns, p, k, &out_sec);
    }
    szd_ns_slot_applied(ns, p, 0, &out_pri);
    return out_pri.changed || out_sec.changed;
}
