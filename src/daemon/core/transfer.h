/* The state-transfer gate, pure: a new owner that answers it serves a replica but is not ready
 * yet (it still copies the data from the node it comes from) keeps routing away from it until
 * it reports ready, or until the namespace's transfer_timeout_ms has passed since its move
 * started. No I/O, no clock (now is an argument), no globals; run on the loop thread by
 * transfer.c in the shell, tested by tests/daemon/test_transfer.c. */
#ifndef SZD_CORE_TRANSFER_H
#define SZD_CORE_TRANSFER_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/core/slot.h"

/* What an answer about a slot calls for. */
typedef enum {
    SZD_TR_NONE = 0, /* not about this slot's adding owner at its generation: nothing */
    SZD_TR_SERVE,    /* the owner serves and is ready (or routing never waits): switch
                      * (szd_slot_serving) */
    SZD_TR_WAIT,     /* the owner serves but is not ready: routing waits (slot marked) */
} szd_tr_step;

/* Node `me` answered that it serves the replica at served_gen, ready or not. timeout_ms 0:
 * routing never waits (SZD_TR_SERVE). */
szd_tr_step szd_transfer_answer(szd_slot *sl, int32_t me, uint64_t served_gen, bool ready,
                                int64_t timeout_ms);
/* Whether the slot waits for a not-ready owner whose time ran out at now (its move started
 * timeout_ms ago or more): routing switches to it anyway. */
bool szd_transfer_expired(const szd_slot *sl, int64_t timeout_ms, int64_t now);
/* Whether the slot waits for a not-ready owner at all. */
bool szd_transfer_waiting(const szd_slot *sl);

#endif
