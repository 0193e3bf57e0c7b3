/* The primary handoff machine (handoff.h): promote the secondary, then demote the old primary
 * in place of it. Pure; run on the loop thread by ns.c; tests/daemon/test_handoff.c. */
#include <stddef.h>

#include "daemon/core/handoff.h"
#include "shardz/placement.h"

static bool node_there(const szd_slot_env *env, int32_t i)
{
    uint8_t st = env->node_state(env->ctx, i);
    return st != SZD_NODE_DEAD && st != SZD_NODE_LEFT;
}

bool szd_handoff_eligible(const szd_slot *pri, const szd_slot *sec, const szd_slot_env *env,
                          int32_t to)
{
    if (env->strict || to < 0) {
        return false;
    }
    if (pri->owner < 0 || pri->owner_state != SZD_R_SERVING || pri->prev >= 0 ||
        !node_there(env, pri->owner)) {
        return false;
    }
    if (sec->owner < 0 || sec->owner_state != SZD_R_SERVING || sec->prev >= 0 ||
        env->node_state(env->ctx, sec->owner) != SZD_NODE_ALIVE) {
        return false;
    }
    return to != pri->owner && to != sec->owner;
}

void szd_handoff_begin(szd_slot *pri, szd_slot *sec, const szd_slot_env *env, int32_t to,
                       uint64_t pri_gen, uint64_t sec_gen, uint8_t reason, int64_t now,
                       szd_slot_out *out_pri, szd_slot_out *out_sec)
{
    int32_t promoted = sec->owner;
    szd_slot_move(sec, env, to, sec_gen, reason, now, out_sec);
    szd_slot_move(pri, env, promoted, pri_gen, (uint8_t)SHARDZ_REASON_HANDOFF, now, out_pri);
}

bool szd_handoff_waits_for(const szd_slot *pri, int32_t me)
{
    return pri->reason == SHARDZ_REASON_HANDOFF && pri->owner == me &&
           pri->owner_state == SZD_R_ADDING;
}

void szd_handoff_promoted(szd_slot *pri, szd_slot *sec, const szd_slot_env *env, int32_t me,
                          uint64_t served_gen, szd_slot_out *out_pri, szd_slot_out *out_sec)
{
    if (!szd_handoff_waits_for(pri, me) || served_gen < pri->generation) {
        return;
    }
    int32_t old = pri->prev;
    bool demote = sec && sec->prev == me && sec->prev_state == SZD_R_SERVING && old >= 0 &&
                  pri->prev_state == SZD_R_SERVING && node_there(env, old);
    if (!demote) {
        szd_slot_serving(pri, env, me, served_gen, out_pri);
        return;
    }
    /* the old primary takes the promoted node's place as sec's serving previous owner: told
     * its new role (secondary) at the generation it holds */
    sec->prev = old;
    sec->prev_generation = pri->prev_generation;
    out_sec->changed = true;
    out_sec->push[0] = old;
    pri->owner_state = SZD_R_SERVING;
    pri->prev = -1;
    pri->prev_state = SZD_R_NONE;
    pri->prev_generation = 0;
    out_pri->changed = true;
    out_pri->done = true;
}
