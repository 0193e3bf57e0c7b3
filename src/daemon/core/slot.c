/* The replica-slot machine (slot.h): pure, deterministic, no I/O and no clock. Run on the
 * loop thread by the namespace code (ns.c), which applies its output; tested by
 * tests/daemon/test_slot.c. */
#include <stddef.h>

#include "daemon/core/slot.h"

static const char *const node_state_names[] = {"joining",  "alive", "suspect",
                                               "draining", "dead",  "left"};
static const char *const rstate_names[] = {"none",    "pending",  "adding",
                                           "serving", "dropping", "retired"};

const char *szd_node_state_name(szd_node_state st)
{
    return (unsigned)st <= SZD_NODE_LEFT ? node_state_names[st] : "unknown";
}

const char *szd_rstate_name(szd_rstate st)
{
    return (unsigned)st <= SZD_R_RETIRED ? rstate_names[st] : "unknown";
}

void szd_slot_out_init(szd_slot_out *out)
{
    *out = (szd_slot_out){.push = {-1, -1, -1}, .drop_watch = -1};
}

void szd_slot_init(szd_slot *sl)
{
    *sl = (szd_slot){.owner = -1, .prev = -1};
}

static void push(szd_slot_out *out, int32_t node)
{
    if (node < 0) {
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (out->push[i] == node) {
            return;
        }
        if (out->push[i] < 0) {
            out->push[i] = node;
            return;
        }
    }
}

int32_t szd_slot_serving_node(const szd_slot *sl)
{
    if (sl->owner >= 0 && sl->owner_state == SZD_R_SERVING) {
        return sl->owner;
    }
    if (sl->prev >= 0 && sl->prev_state == SZD_R_SERVING) {
        return sl->prev;
    }
    return -1;
}

static uint8_t state_of(const szd_slot_env *env, int32_t i)
{
    return env->node_state(env->ctx, i);
}

/* Strict mode: the node that may hold the replica now, or -1: the old owner still told to
 * drop it, else the owner (serving, or adding: its push may be in flight and it may be
 * serving already); a node that left holds nothing. */
static int32_t strict_holder(const szd_slot *sl, const szd_slot_env *env)
{
    int32_t holder = -1;
    if (sl->prev >= 0 && (sl->prev_state == SZD_R_DROPPING || sl->prev_state == SZD_R_SERVING ||
                          sl->prev_state == SZD_R_RETIRED)) {
        holder = sl->prev;
    } else if (sl->owner >= 0 &&
               (sl->owner_state == SZD_R_ADDING || sl->owner_state == SZD_R_SERVING)) {
        holder = sl->owner;
    }
    if (holder >= 0 && state_of(env, holder) == SZD_NODE_LEFT) {
        holder = -1;
    }
    return holder;
}

void szd_slot_move(szd_slot *sl, const szd_slot_env *env, int32_t to, uint64_t gen, uint8_t reason,
                   int64_t now, szd_slot_out *out)
{
    int32_t cur = szd_slot_serving_node(sl);
    sl->unready = 0; /* whatever owner comes next has not answered yet */
    push(out, sl->owner);
    push(out, sl->prev);
    push(out, to);
    out->changed = true;
    /* a node that keeps the replica for a while keeps the generation it was given */
    int32_t old_prev = sl->prev;
    uint64_t old_gen = sl->generation, old_prev_gen = sl->prev_generation;
#define GEN_OF(node) ((node) == old_prev ? old_prev_gen : old_gen)
    if (to < 0) {
        /* Vacated: nowhere to go. Strict mode: the node that may hold the replica (a dead
         * owner serving until its lease ends, an owner cut off) is not forgotten: it stays the
         * slot's holder, told to drop, until it answered without it or its lease certainly
         * ended (szd_slot_dropped, szd_slot_holder_gone); a later owner waits for that. */
        int32_t holder = env->strict ? strict_holder(sl, env) : -1;
        bool retired = holder >= 0 && holder == sl->prev && sl->prev_state == SZD_R_RETIRED;
        szd_slot_init(sl);
        if (holder >= 0) {
            sl->prev = holder;
            sl->prev_state = retired ? SZD_R_RETIRED : SZD_R_DROPPING;
            sl->prev_generation = GEN_OF(holder);
            sl->started_ms = now;
            sl->reason = reason;
            out->drop_watch = holder;
        }
        return;
    }
    if (sl->owner == to && sl->owner_state != SZD_R_NONE) {
        return;
    }
    out->started = true;
    sl->reason = reason;
    sl->generation = gen;
    sl->started_ms = now;
    if (cur == to && !env->strict) {
        /* back to the node still serving it: the move in flight is cancelled */
        sl->owner = to;
        sl->owner_state = SZD_R_SERVING;
        sl->prev = -1;
        sl->prev_state = SZD_R_NONE;
        sl->prev_generation = 0;
        return;
    }
    if (env->strict) {
        /* Break before make. The node that may hold the replica now (strict_holder) must be
         * rid of it before the new one starts; a dead holder is waited for until its lease
         * ends (szd_slot_holder_gone). */
        int32_t holder = strict_holder(sl, env);
        /* an earlier process of `to` is another holder: `to` waits for it too */
        bool retired = holder >= 0 && holder == sl->prev && sl->prev_state == SZD_R_RETIRED;
        sl->owner = to;
        if (holder < 0 || (holder == to && !retired)) {
            sl->prev = -1;
            sl->prev_state = SZD_R_NONE;
            sl->prev_generation = 0;
            sl->owner_state = SZD_R_ADDING;
        } else {
            sl->prev = holder;
            sl->prev_generation = GEN_OF(holder);
            sl->prev_state = retired ? SZD_R_RETIRED : SZD_R_DROPPING;
            sl->owner_state = SZD_R_PENDING;
            out->drop_watch = holder;
        }
        push(out, holder);
        return;
    }
    /* Make before break: the node serving traffic keeps it until the new owner serves. */
    sl->owner = to;
    int32_t prev = cur;
    if (prev >= 0 &&
        (state_of(env, prev) == SZD_NODE_LEFT || state_of(env, prev) == SZD_NODE_DEAD)) {
        prev = -1;
    }
    sl->prev = prev;
    sl->prev_generation = prev < 0 ? 0 : GEN_OF(prev);
    sl->prev_state = prev < 0 ? SZD_R_NONE : SZD_R_SERVING;
    sl->owner_state = SZD_R_ADDING;
#undef GEN_OF
}

void szd_slot_serving(szd_slot *sl, const szd_slot_env *env, int32_t me, uint64_t served_gen,
                      szd_slot_out *out)
{
    if (sl->owner != me || sl->owner_state != SZD_R_ADDING || served_gen < sl->generation) {
        return;
    }
    sl->owner_state = SZD_R_SERVING;
    out->changed = true;
    if (sl->prev >= 0 && sl->prev_state == SZD_R_SERVING) {
        uint8_t ps = state_of(env, sl->prev);
        if (ps != SZD_NODE_DEAD && ps != SZD_NODE_LEFT) {
            sl->prev_state = SZD_R_DROPPING; /* routing switched: the old owner drops */
            out->drop_watch = sl->prev;
            push(out, sl->prev);
        } else {
            sl->prev = -1;
            sl->prev_state = SZD_R_NONE;
            sl->prev_generation = 0;
        }
    }
    if (sl->prev < 0) {
        out->done = true;
    }
}

bool szd_slot_dropped(szd_slot *sl, int32_t me, bool still_served, szd_slot_out *out)
{
    if (sl->prev == me && sl->prev_state == SZD_R_RETIRED) {
        return true; /* its earlier process may hold it: its answers cannot tell */
    }
    if (sl->prev != me || sl->prev_state != SZD_R_DROPPING) {
        return false;
    }
    if (still_served) {
        return true;
    }
    szd_slot_holder_gone(sl, me, out);
    return false;
}

void szd_slot_holder_gone(szd_slot *sl, int32_t me, szd_slot_out *out)
{
    if (sl->prev != me || sl->prev_state != SZD_R_DROPPING) {
        return;
    }
    sl->prev = -1;
    sl->prev_state = SZD_R_NONE;
    sl->prev_generation = 0;
    out->changed = true;
    if (sl->owner_state == SZD_R_PENDING) {
        sl->owner_state = SZD_R_ADDING; /* strict: the old owner stopped; the new one starts */
        push(out, sl->owner);
    } else if (sl->owner >= 0) {
        out->done = true;
    } /* else a vacated slot's holder is gone: the slot is empty, no move was in flight */
}

int32_t szd_slot_holder(const szd_slot *sl, const szd_slot_env *env, uint64_t *gen, bool *retired)
{
    int32_t holder = env->strict ? strict_holder(sl, env) : -1;
    *gen = holder < 0 ? 0 : holder == sl->prev ? sl->prev_generation : sl->generation;
    *retired = holder >= 0 && holder == sl->prev && sl->prev_state == SZD_R_RETIRED;
    return holder;
}

void szd_slot_held_by(szd_slot *sl, int32_t holder, uint64_t gen, bool retired, szd_slot_out *out)
{
    if (holder < 0 || sl->owner >= 0 || sl->prev >= 0) {
        return;
    }
    sl->prev = holder;
    sl->prev_state = retired ? SZD_R_RETIRED : SZD_R_DROPPING;
    sl->prev_generation = gen;
    out->drop_watch = holder;
    out->changed = true;
    push(out, holder);
}

void szd_slot_reincarnated(szd_slot *sl, const szd_slot_env *env, int32_t me, uint64_t gen,
                           uint8_t reason, szd_slot_out *out)
{
    bool owns =
        sl->owner == me && (sl->owner_state == SZD_R_ADDING || sl->owner_state == SZD_R_SERVING);
    bool was_prev =
        sl->prev == me && (sl->prev_state == SZD_R_DROPPING || sl->prev_state == SZD_R_SERVING);
    if (!env->strict) {
        if (was_prev) {
            sl->prev = -1; /* the new process never held it */
            sl->prev_state = SZD_R_NONE;
            sl->prev_generation = 0;
            out->changed = true;
        }
        if (owns) {
            sl->owner_state = SZD_R_ADDING;
            sl->generation = gen;
            sl->reason = reason;
            out->changed = out->started = true;
            push(out, me);
        }
        return;
    }
    if (owns) {
        /* strict: an owner has no previous owner left (break before make) */
        sl->prev = me;
        sl->prev_state = SZD_R_RETIRED;
        sl->prev_generation = sl->generation;
        sl->owner_state = SZD_R_PENDING;
        sl->generation = gen;
        sl->reason = reason;
        out->started = true;
    } else if (was_prev) {
        sl->prev_state = SZD_R_RETIRED;
    } else {
        return;
    }
    out->changed = true;
    out->drop_watch = me;
    push(out, me);
}

void szd_slot_retired_gone(szd_slot *sl, int32_t me, szd_slot_out *out)
{
    if (sl->prev != me || sl->prev_state != SZD_R_RETIRED) {
        return;
    }
    sl->prev_state = SZD_R_DROPPING; /* then exactly as a holder gone */
    szd_slot_holder_gone(sl, me, out);
}
