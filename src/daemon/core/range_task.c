/* The range task machine (range_task.h): which step of a split or merge is due, from the
 * task's state and its partitions' slots. Pure; run by the loop (range.c); tested by
 * tests/daemon/test_range_task.c. */
#include "daemon/core/range_task.h"

static bool gone(const szd_slot_env *env, int32_t i)
{
    if (i < 0) {
        return true;
    }
    uint8_t st = env->node_state(env->ctx, i);
    return st == SZD_NODE_DEAD || st == SZD_NODE_LEFT;
}

/* Every slot of every successor served by its owner, no move in flight. */
static bool successors_serving(const szd_rt_view *v)
{
    for (size_t k = 0; k < v->nnew; k++) {
        const szd_rt_part *p = &v->neu[k];
        if (!p->slots) {
            return false;
        }
        for (unsigned s = 0; s < p->n; s++) {
            const szd_slot *sl = &p->slots[s];
            if (sl->owner < 0 || sl->owner_state != SZD_R_SERVING || sl->prev >= 0) {
                return false;
            }
        }
    }
    return true;
}

/* No move in flight on a predecessor. */
static bool predecessors_settled(const szd_rt_view *v)
{
    for (size_t k = 0; k < v->nold; k++) {
        const szd_rt_part *p = &v->old[k];
        for (unsigned s = 0; p->slots && s < p->n; s++) {
            if (p->slots[s].prev >= 0) {
                return false;
            }
        }
    }
    return true;
}

/* No live node holds a predecessor (as owner or as the previous owner dropping it). */
static bool predecessors_dropped(const szd_rt_view *v)
{
    for (size_t k = 0; k < v->nold; k++) {
        const szd_rt_part *p = &v->old[k];
        for (unsigned s = 0; p->slots && s < p->n; s++) {
            const szd_slot *sl = &p->slots[s];
            if ((sl->owner >= 0 && !gone(v->env, sl->owner)) ||
                (sl->prev >= 0 && !gone(v->env, sl->prev))) {
                return false;
            }
        }
    }
    return true;
}

szd_rt_step szd_rt_next(const szd_rt_view *v)
{
    if (v->unsaved) {
        return SZD_RT_REWRITE;
    }
    switch (v->state) {
    case SZD_RT_PLANNED:
        return SZD_RT_CREATE;
    case SZD_RT_CREATED:
        return successors_serving(v) && predecessors_settled(v) ? SZD_RT_SWITCH : SZD_RT_WAIT;
    case SZD_RT_MOVED:
        return predecessors_dropped(v) ? SZD_RT_FINISH : SZD_RT_WAIT;
    case SZD_RT_DONE:
        return SZD_RT_WAIT;
    }
    return SZD_RT_WAIT;
}

szd_rt_state szd_rt_after(szd_rt_state st, szd_rt_step step)
{
    switch (step) {
    case SZD_RT_CREATE:
        return SZD_RT_CREATED;
    case SZD_RT_SWITCH:
        return SZD_RT_MOVED;
    case SZD_RT_FINISH:
        return SZD_RT_DONE;
    case SZD_RT_WAIT:
    case SZD_RT_REWRITE:
        return st;
    }
    return st;
}

const char *szd_rt_step_name(szd_rt_step step)
{
    static const char *const names[] = {"wait", "rewrite", "create", "switch", "finish"};
    return (unsigned)step < sizeof names / sizeof names[0] ? names[step] : "unknown";
}
