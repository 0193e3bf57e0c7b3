/* The range task machine, pure: a split (1 -> 2 partitions) or merge (2 -> 1) carried out
 * make-before-break, one persisted step at a time (docs/PROTOCOL.md section 9):
 *   planned -> created ("split"/"merged") -> moved -> done
 * given the task's state and its partitions' replica slots, which step is due now. The shell
 * (range.c) carries the step out and writes it. No I/O, no clock, no globals; tested by
 * tests/daemon/test_range_task.c. */
#ifndef SZD_CORE_RANGE_TASK_H
#define SZD_CORE_RANGE_TASK_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/core/slot.h"

typedef enum {
    SZD_RT_PLANNED = 0, /* recorded; nothing else exists yet */
    SZD_RT_CREATED,     /* the successors exist, told to serve their ranges; routing unchanged */
    SZD_RT_MOVED,       /* routing goes to the successors; the predecessors are told to delete */
    SZD_RT_DONE,        /* the predecessors are gone */
} szd_rt_state;

typedef enum {
    SZD_RT_WAIT = 0, /* nothing to do until a slot changes */
    SZD_RT_REWRITE,  /* the last step's write failed: write the task and its partitions again */
    SZD_RT_CREATE,   /* planned -> created: add the successors where the first predecessor is */
    SZD_RT_SWITCH,   /* created -> moved: switch routing, tell the predecessors to drop */
    SZD_RT_FINISH,   /* moved -> done: remove the predecessors' records */
} szd_rt_step;

/* One partition of the task: its slots (NULL: it does not exist) and how many. */
typedef struct {
    const szd_slot *slots;
    unsigned n;
} szd_rt_part;

/* What the machine reads: the task and its partitions (borrowed), the nodes through env. */
typedef struct {
    szd_rt_state state;
    bool unsaved; /* the task's state is ahead of the store */
    const szd_rt_part *old;
    size_t nold; /* predecessors: 1 (split) or 2 (merge) */
    const szd_rt_part *neu;
    size_t nnew; /* successors: 2 (split) or 1 (merge) */
    const szd_slot_env *env;
} szd_rt_view;

/* The step due now. The switch waits until every slot of every successor is served by its
 * owner with no move in flight, and no predecessor has a move in flight (a slot carries one
 * move: a predecessor's drop must not overwrite one); the finish waits until no live node
 * (neither dead nor left) holds a predecessor. */
szd_rt_step szd_rt_next(const szd_rt_view *v);

/* The state once `step` is written (a wait or a rewrite keeps it). */
szd_rt_state szd_rt_after(szd_rt_state st, szd_rt_step step);

const char *szd_rt_step_name(szd_rt_step step);

#endif
