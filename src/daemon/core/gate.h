/* The drain gate and the availability floor, pure: which planned move may start now (given the
 * partition's serving replicas, the namespace's floor and its planned moves in flight), and
 * whether a set of nodes may stop together (the floor per partition, one zone at a time).
 * Failures are never gated: replacing a dead node's replicas is not a planned move.
 * No I/O, no clock, no globals; tests/daemon/test_gate.c. Any thread. */
#ifndef SZD_CORE_GATE_H
#define SZD_CORE_GATE_H

#include <stdbool.h>
#include <stdint.h>

/* Why a move waits (or that it may start). */
typedef enum {
    SZD_GATE_START = 0, /* it may start now */
    SZD_GATE_FLOOR,     /* its partition would have fewer than min_available replicas serving */
    SZD_GATE_LIMIT,     /* max_moves_in_flight planned moves are in flight already */
    SZD_GATE_FROZEN,    /* the namespace is frozen: no automatic move until it thaws */
} szd_gate_verdict;

/* What the gate reads about one move. */
typedef struct {
    uint8_t reason;         /* shardz_reason of the move */
    bool strict;            /* the namespace is strict: the old owner stops before the new
                             * one serves (break-before-make) */
    bool source_serving;    /* the slot's replica serves traffic now (on a live node) */
    bool source_gone;       /* the slot's current holder is dead or left: the move replaces
                             * a failure (queued before it failed) and is not gated */
    uint32_t serving;       /* the partition's replicas serving now, on live nodes */
    uint32_t min_available; /* the namespace's floor */
    uint64_t in_flight;     /* planned moves in flight in the namespace (started, not done) */
    uint64_t max_in_flight; /* the namespace's limit; 0: none */
    bool frozen;            /* the namespace is frozen (operator moves still run) */
    bool vacate;            /* the move empties the slot (replicas lowered): its serving
                             * replica goes in either mode */
} szd_gate_in;

/* True when moves of this reason are planned work, gated: drain, leave, operator, rebalance,
 * load, join. First placements, failures (node-dead), repairs of vacant slots and range
 * splits are not. */
bool szd_gate_planned(uint8_t reason);
/* The verdict for one move. Unplanned moves, and moves whose source is gone, always start.
 * In a frozen namespace every other planned move but an operator's waits (frozen first). A
 * planned move starts when the namespace's limit allows one more, and its partition keeps at least
 * min_available replicas serving once it has started: a strict move takes its source's replica out
 * of service while in flight; an available one (make-before-break) takes none and never waits for
 * the floor (it cannot lower it), unless it empties its slot (vacate); a move whose source does
 * not serve takes nothing either. The limit is checked first. */
szd_gate_verdict szd_gate_check(const szd_gate_in *in);
/* "start", "floor", "limit", "frozen". Static string. */
const char *szd_gate_verdict_name(szd_gate_verdict v);

/* Stopping nodes (POST /v1/stoppable). A partition's replicas left serving when the nodes
 * asked about stop: `kept`, those on nodes neither dead nor in the set. True when that is at
 * least the floor, or when the set takes none of its serving replicas (nothing changes). */
bool szd_gate_stop_ok(uint32_t kept, uint32_t taken, uint32_t min_available);
/* The zone rule: nodes that stop together share one zone (a zone's outage is the failure the
 * replicas are spread against). `set_zone` is the zone of the nodes already accepted ("" or
 * NULL: none yet), `zone` the candidate's. True when the candidate may join. */
bool szd_gate_zone_ok(const char *set_zone, const char *zone);

#endif
