/* The primary handoff machine, pure: a partition's primary slot handed to the node that serves
 * one of its secondary slots, promote before demote (docs/PROTOCOL.md section 5, "Primary
 * handoff"). It works on two replica slots (core/slot.h) at once; no I/O, no clock (now is an
 * argument), no globals; run on the loop thread by ns.c, tested by tests/daemon/test_handoff.c. */
#ifndef SZD_CORE_HANDOFF_H
#define SZD_CORE_HANDOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/core/slot.h"

/* Whether the primary slot `pri` may be handed to the owner of secondary slot `sec` while the
 * placement moves the primary to node `to`: available mode only (strict keeps break before
 * make), `pri` served by a node that is still there (not dead, not left) with no move in
 * flight, `sec` served by an alive node with no move in flight, and `to` a node (not vacated)
 * other than both. */
bool szd_handoff_eligible(const szd_slot *pri, const szd_slot *sec, const szd_slot_env *env,
                          int32_t to);
/* Starts a handoff (szd_handoff_eligible holds): `sec` moves to `to` at sec_gen with `reason`
 * (make before break: its owner B keeps serving it until `to` serves), and `pri` moves to B at
 * pri_gen (above sec_gen: the promoted primary holds the partition's highest generation) with
 * reason handoff; the old primary A keeps serving `pri` until B serves it as primary. Outputs
 * for each slot in *out_pri and *out_sec. */
void szd_handoff_begin(szd_slot *pri, szd_slot *sec, const szd_slot_env *env, int32_t to,
                       uint64_t pri_gen, uint64_t sec_gen, uint8_t reason, int64_t now,
                       szd_slot_out *out_pri, szd_slot_out *out_sec);
/* Whether `pri` is a handoff in flight waiting for node `me` to serve it. */
bool szd_handoff_waits_for(const szd_slot *pri, int32_t me);
/* Node `me` serves the partition at generation served_gen. When it is the handoff's promoted
 * owner of `pri` at its generation: routing switches (me serves `pri`, the primary), and the
 * old primary A is demoted in place: it becomes the serving previous owner of `sec` (a
 * secondary, its generation kept) instead of me, until `sec`'s new owner serves, so the
 * partition never has fewer serving replicas; the handoff of `pri` is done. When `sec` no
 * longer waits on me (its new owner already serves, or sec is NULL) or A is gone, A drops as
 * after any move. Otherwise nothing changes. */
void szd_handoff_promoted(szd_slot *pri, szd_slot *sec, const szd_slot_env *env, int32_t me,
                          uint64_t served_gen, szd_slot_out *out_pri, szd_slot_out *out_sec);

#endif
