/* The replica-slot machine, pure: one slot of a partition (its owner and state, the previous
 * owner while a move is in flight, their generations) advanced by inputs (a move begins, the
 * new owner serves, the old one dropped, the old holder is gone or its lease ran out) into
 * what changed. Both consistency modes: make-before-break (available) and break-before-make
 * (strict). No I/O, no clock (now is an argument), no globals; tests/daemon/test_slot.c. */
#ifndef SZD_CORE_SLOT_H
#define SZD_CORE_SLOT_H

#include <stdbool.h>
#include <stdint.h>

/* A node's state (docs/PROTOCOL.md section 2). */
typedef enum {
    SZD_NODE_JOINING = 0,
    SZD_NODE_ALIVE,
    SZD_NODE_SUSPECT,
    SZD_NODE_DRAINING,
    SZD_NODE_DEAD,
    SZD_NODE_LEFT,
} szd_node_state;

/* A replica's state on one node. */
typedef enum {
    SZD_R_NONE = 0, /* no replica */
    SZD_R_PENDING,  /* strict mode: waits for the old owner to stop */
    SZD_R_ADDING,   /* the owner was told to serve; routing does not point at it yet */
    SZD_R_SERVING,
    SZD_R_DROPPING, /* routing moved away; the node is being told to delete */
    SZD_R_RETIRED,  /* prev only, strict: an earlier process (incarnation) of node prev may
                     * hold it until that process's lease ends; the node's answers (from its
                     * new process) say nothing about it */
} szd_rstate;

/* One replica slot of a partition: where it is, and the move in flight. */
typedef struct {
    uint64_t generation;      /* the owner's */
    uint64_t prev_generation; /* the previous owner's, while it still holds the replica */
    int64_t started_ms;       /* when the move started */
    int32_t owner;            /* node index, -1 none */
    int32_t prev;             /* the previous owner while a move is in flight, -1 none */
    uint8_t owner_state;      /* szd_rstate */
    uint8_t prev_state;       /* szd_rstate */
    uint8_t reason;           /* shardz_reason of the move in flight */
    uint8_t unready;          /* the adding owner serves but its state transfer is not done
                               * (core/transfer.h); cleared when the owner changes */
} szd_slot;

/* What the machine reads about the world: the mode and the nodes' states (by index). */
typedef struct {
    bool strict;
    /* the state of node i >= 0 (szd_node_state); must only read */
    uint8_t (*node_state)(const void *ctx, int32_t i);
    const void *ctx;
} szd_slot_env;

/* What a step changed. */
typedef struct {
    int32_t push[3];    /* nodes whose desired replica of this partition changed (-1: none) */
    int32_t drop_watch; /* a node told to drop its replica: watch its answers (or its lease) */
    bool changed;       /* the slot changed: persist it */
    bool started;       /* a move started */
    bool done;          /* the move in flight finished */
} szd_slot_out;

/* Empties *out (push[] and drop_watch -1). */
void szd_slot_out_init(szd_slot_out *out);
/* A slot with no replica. */
void szd_slot_init(szd_slot *sl);
/* The node serving the slot's traffic now (routing), or -1. */
int32_t szd_slot_serving_node(const szd_slot *sl);

/* The placement moved the slot to node `to` (-1: vacated, nowhere to go) with the partition's
 * next generation `gen` and a reason. Available mode: the node serving traffic keeps it until
 * `to` serves; a move back to that node cancels the move in flight. Strict mode: the node that
 * may hold the replica (the old owner told to drop it, else the owner) must drop it before
 * `to` is told to serve (`to` is pending meanwhile); a node that left holds nothing. Vacating
 * a strict slot keeps that holder (prev, dropping, watched) until it dropped or is gone, so a
 * later move still waits for it. A node that keeps the replica for a while keeps the
 * generation it was given. */
void szd_slot_move(szd_slot *sl, const szd_slot_env *env, int32_t to, uint64_t gen, uint8_t reason,
                   int64_t now, szd_slot_out *out);
/* Node `me` serves the replica at generation served_gen: an owner adding it at that
 * generation (or later) now serves; routing switches to it, and the old owner, when still
 * there, is told to drop (otherwise the move is done). */
void szd_slot_serving(szd_slot *sl, const szd_slot_env *env, int32_t me, uint64_t served_gen,
                      szd_slot_out *out);
/* Node `me` answered an assignment: still serving the replica or not. When it was told to
 * drop and no longer serves it, the move goes on (strict: the pending owner is told to
 * serve; available: done). Returns true when `me` still has to drop it, or an earlier process
 * of `me` may still hold it (retired: its answers cannot tell). */
bool szd_slot_dropped(szd_slot *sl, int32_t me, bool still_served, szd_slot_out *out);
/* The old holder `me`, told to drop, is gone for good: its lease ran out (dead) or it left.
 * As if it had dropped. */
void szd_slot_holder_gone(szd_slot *sl, int32_t me, szd_slot_out *out);

/* Node `me` registered as a new incarnation (a new process under its id): a new holder.
 * Strict: where the earlier process may hold the replica (it owned it, adding or serving, or
 * was told to drop it), that process is the slot's retired holder (prev, retired, watched)
 * until its lease has certainly ended (szd_slot_retired_gone); if `me` owned the replica it
 * stays the owner, pending, with the new, higher generation `gen`, and is told to serve only
 * then. Available: the new process serves nothing yet: an owner is adding again at `gen`
 * (routing waits for it), and a previous owner that was `me` is forgotten. A move started
 * carries `reason`. */
void szd_slot_reincarnated(szd_slot *sl, const szd_slot_env *env, int32_t me, uint64_t gen,
                           uint8_t reason, szd_slot_out *out);
/* The earlier process of node `me` is certainly stopped (its lease ended): as if it dropped. */
void szd_slot_retired_gone(szd_slot *sl, int32_t me, szd_slot_out *out);

/* Strict mode, the slot of a partition being removed: the node that may hold its replica (as
 * a move would wait for it), or -1 (none; a node that left; always -1 in available mode), with
 * the generation it holds in *gen. A holder is forgotten only once its lease has certainly
 * passed: the caller keeps it while the partition is gone, and gives it back to the slot of a
 * partition added again under that id (szd_slot_held_by). */
int32_t szd_slot_holder(const szd_slot *sl, const szd_slot_env *env, uint64_t *gen, bool *retired);
/* A vacant slot whose replica node `holder` may still hold at generation `gen` (a removed
 * partition added again): the holder is told to drop it (prev, dropping, watched; retired
 * when it was an earlier process's, *retired of szd_slot_holder), and a move to another node
 * waits for it as for any strict holder. */
void szd_slot_held_by(szd_slot *sl, int32_t holder, uint64_t gen, bool retired, szd_slot_out *out);

const char *szd_rstate_name(szd_rstate st);
const char *szd_node_state_name(szd_node_state st);

#endif
