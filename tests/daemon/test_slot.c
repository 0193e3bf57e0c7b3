/* Table tests of the replica-slot machine (src/daemon/core/slot.c), in the etcd-raft style:
 * each table is a script of inputs (a move, an owner serving, an old owner's answer, a holder
 * gone, a node changing state) with the slot and the output expected after each. Covers
 * make-before-break (available) and break-before-make (strict): who is told what, when a move
 * is done, which generation each holder keeps, cancels, dead and departed holders. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "daemon/core/slot.h"

typedef enum { MOVE, SERVING, DROPPED, GONE, NODE, HOLDER, HELD, REINC, RGONE } op;

enum {
    N = SZD_R_NONE,
    P = SZD_R_PENDING,
    A = SZD_R_ADDING,
    S = SZD_R_SERVING,
    D = SZD_R_DROPPING,
    R = SZD_R_RETIRED
};

/* One step. MOVE: a = to, b = generation. SERVING: a = node, b = generation served. DROPPED:
 * a = node, b = still serving (1) or not (0). GONE: a = node. NODE: a = node, b = its state.
 * HOLDER: the slot's holder as a removal keeps it must be node a at generation b (the slot is
 * then emptied, as the removal frees it). HELD: a vacant slot given holder a at generation b
 * (retired when a is negative: holder -a - 1). REINC: node a registered as a new process, the
 * new generation b. RGONE: node a's earlier process is certainly stopped.
 * Then the slot (owner, its state and generation; prev, its state and generation), the nodes
 * pushed (a bit per node), the node to watch for a drop (-1), started, done, and (DROPPED)
 * whether it still has to drop. */
typedef struct {
    op op;
    int a;
    long long b;
    int owner, ost;
    long long gen;
    int prev, pst;
    long long pgen;
    unsigned push;
    int watch, started, done, pending;
} step;

/* The tables below are laid out by hand, a column per field. */
/* clang-format off */
#define END {NODE, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

static uint8_t states[4];

static uint8_t state_of(const void *ctx, int32_t i)
{
    (void)ctx;
    return states[i];
}

static void run(bool strict, const step *t)
{
    for (int i = 0; i < 4; i++)
        states[i] = SZD_NODE_ALIVE;
    szd_slot_env env = {.strict = strict, .node_state = state_of, .ctx = NULL};
    szd_slot sl;
    szd_slot_init(&sl);
    for (size_t i = 0; t[i].a >= 0 || t[i].op != NODE; i++) {
        const step *s = &t[i];
        szd_slot_out out;
        szd_slot_out_init(&out);
        bool pending = false;
        switch (s->op) {
        case MOVE:
            szd_slot_move(&sl, &env, s->a, (uint64_t)s->b, 0, 1000 + (int64_t)i, &out);
            break;
        case SERVING:
            szd_slot_serving(&sl, &env, s->a, (uint64_t)s->b, &out);
            break;
        case DROPPED:
            pending = szd_slot_dropped(&sl, s->a, s->b != 0, &out);
            break;
        case GONE:
            szd_slot_holder_gone(&sl, s->a, &out);
            break;
        case NODE:
            states[s->a] = (uint8_t)s->b;
            continue;
        case HOLDER: {
            uint64_t g = 0;
            bool retired = false;
            int32_t h = szd_slot_holder(&sl, &env, &g, &retired);
            if (retired)
                h = -h - 1;
            if (h != s->a || (long long)g != s->b)
                fail_msg("step %zu: holder %d gen %llu; want %d gen %lld", i, h,
                         (unsigned long long)g, s->a, s->b);
            szd_slot_init(&sl);
            break;
        }
        case HELD:
            szd_slot_held_by(&sl, s->a < 0 ? -s->a - 1 : s->a, (uint64_t)s->b, s->a < 0, &out);
            break;
        case REINC:
            szd_slot_reincarnated(&sl, &env, s->a, (uint64_t)s->b, 0, &out);
            break;
        case RGONE:
            szd_slot_retired_gone(&sl, s->a, &out);
            break;
        }
        unsigned pushed = 0;
        for (int k = 0; k < 3; k++)
            if (out.push[k] >= 0)
                pushed |= 1u << out.push[k];
        if (sl.owner != s->owner || sl.owner_state != s->ost ||
            (long long)sl.generation != s->gen || sl.prev != s->prev ||
            sl.prev_state != s->pst || (long long)sl.prev_generation != s->pgen)
            fail_msg("step %zu: slot owner %d %s gen %llu, prev %d %s gen %llu; want owner %d %s "
                     "gen %lld, prev %d %s gen %lld",
                     i, sl.owner, szd_rstate_name(sl.owner_state),
                     (unsigned long long)sl.generation, sl.prev, szd_rstate_name(sl.prev_state),
                     (unsigned long long)sl.prev_generation, s->owner,
                     szd_rstate_name((szd_rstate)s->ost), s->gen, s->prev,
                     szd_rstate_name((szd_rstate)s->pst), s->pgen);
        if (pushed != s->push || out.drop_watch != s->watch || (int)out.started != s->started ||
            (int)out.done != s->done || (int)pending != s->pending)
            fail_msg("step %zu: pushed %#x watch %d started %d done %d pending %d; want %#x %d "
                     "%d %d %d",
                     i, pushed, out.drop_watch, out.started, out.done, pending, s->push, s->watch,
                     s->started, s->done, s->pending);
    }
}

#define B(n) (1u << (n))

/* Available: the first placement, then make-before-break: the new owner adds, serves (routing
 * switches, the old owner drops), the old owner drops; the move is done then. */
static void test_available_make_before_break(void **state)
{
    (void)state;
    static const step t[] = {
        /* op      a  b   owner st gen prev st pgen push      watch st dn pend */
        {MOVE, 0, 1, 0, A, 1, -1, N, 0, B(0), -1, 1, 0, 0},
        {SERVING, 0, 1, 0, S, 1, -1, N, 0, 0, -1, 0, 1, 0},
        {MOVE, 1, 2, 1, A, 2, 0, S, 1, B(0) | B(1), -1, 1, 0, 0},
        {SERVING, 1, 1, 1, A, 2, 0, S, 1, 0, -1, 0, 0, 0}, /* an older generation: no */
        {SERVING, 0, 2, 1, A, 2, 0, S, 1, 0, -1, 0, 0, 0}, /* not the owner: no */
        {SERVING, 1, 2, 1, S, 2, 0, D, 1, B(0), 0, 0, 0, 0},
        {DROPPED, 0, 1, 1, S, 2, 0, D, 1, 0, -1, 0, 0, 1}, /* still serves it */
        {DROPPED, 2, 0, 1, S, 2, 0, D, 1, 0, -1, 0, 0, 0}, /* not the one dropping */
        {DROPPED, 0, 0, 1, S, 2, -1, N, 0, 0, -1, 0, 1, 0},
        END,
    };
    run(false, t);
}

/* Available: moving back to the node still serving cancels the move in flight (with a new,
 * higher generation for it); moving to the owner again does nothing; vacating clears. */
static void test_available_cancel_and_vacate(void **state)
{
    (void)state;
    static const step t[] = {
        {MOVE, 0, 1, 0, A, 1, -1, N, 0, B(0), -1, 1, 0, 0},
        {SERVING, 0, 1, 0, S, 1, -1, N, 0, 0, -1, 0, 1, 0},
        {MOVE, 1, 2, 1, A, 2, 0, S, 1, B(0) | B(1), -1, 1, 0, 0},
        {MOVE, 0, 3, 0, S, 3, -1, N, 0, B(0) | B(1), -1, 1, 0, 0},
        {MOVE, 0, 4, 0, S, 3, -1, N, 0, B(0), -1, 0, 0, 0},
        {MOVE, -1, 5, -1, N, 0, -1, N, 0, B(0), -1, 0, 0, 0},
        END,
    };
    run(false, t);
}

/* Available: a dead old owner keeps nothing (its replicas are re-placed at once); an old
 * owner that dies while the new one adds is forgotten when the new one serves. */
static void test_available_dead_owner(void **state)
{
    (void)state;
    static const step t[] = {
        {MOVE, 0, 1, 0, A, 1, -1, N, 0, B(0), -1, 1, 0, 0},
        {SERVING, 0, 1, 0, S, 1, -1, N, 0, 0, -1, 0, 1, 0},
        {NODE, 0, SZD_NODE_DEAD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {MOVE, 1, 2, 1, A, 2, -1, N, 0, B(0) | B(1), -1, 1, 0, 0},
        {SERVING, 1, 2, 1, S, 2, -1, N, 0, 0, -1, 0, 1, 0},
        {MOVE, 2, 3, 2, A, 3, 1, S, 2, B(1) | B(2), -1, 1, 0, 0},
        {NODE, 1, SZD_NODE_DEAD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {SERVING, 2, 3, 2, S, 3, -1, N, 0, 0, -1, 0, 1, 0},
        END,
    };
    run(false, t);
}

/* Strict: break before make. The holder drops first (the new owner is pending), then the new
 * owner is told to serve; it serving finishes the move. An ack while pending means nothing. */
static void test_strict_break_before_make(void **state)
{
    (void)state;
    static const step t[] = {
        {MOVE, 0, 1, 0, A, 1, -1, N, 0, B(0), -1, 1, 0, 0},
        {SERVING, 0, 1, 0, S, 1, -1, N, 0, 0, -1, 0, 1, 0},
        {MOVE, 1, 2, 1, P, 2, 0, D, 1, B(0) | B(1), 0, 1, 0, 0},
        {SERVING, 1, 2, 1, P, 2, 0, D, 1, 0, -1, 0, 0, 0}, /* pending: not told yet */
        {DROPPED, 0, 1, 1, P, 2, 0, D, 1, 0, -1, 0, 0, 1},
        {DROPPED, 0, 0, 1, A, 2, -1, N, 0, B(1), -1, 0, 0, 0},
        {SERVING, 1, 2, 1, S, 2, -1, N, 0, 0, -1, 0, 1, 0},
        END,
    };
    run(true, t);
}

/* Strict: a dead holder is waited for (its lease may still run); its lease running out lets
 * the new owner start. A holder that left holds nothing: the new owner starts at once. */
static void test_strict_dead_and_left_holders(void **state)
{
    (void)state;
    static const step t[] = {
        {MOVE, 0, 1, 0, A, 1, -1, N, 0, B(0), -1, 1, 0, 0},
        {SERVING, 0, 1, 0, S, 1, -1, N, 0, 0, -1, 0, 1, 0},
        {NODE, 0, SZD_NODE_DEAD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {MOVE, 1, 2, 1, P, 2, 0, D, 1, B(0) | B(1), 0, 1, 0, 0},
        {GONE, 2, 0, 1, P, 2, 0, D, 1, 0, -1, 0, 0, 0}, /* not the holder */
        {GONE, 0, 0, 1, A, 2, -1, N, 0, B(1), -1, 0, 0, 0},
        {SERVING, 1, 2, 1, S, 2, -1, N, 0, 0, -1, 0, 1, 0},
        {NODE, 1, SZD_NODE_LEFT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {MOVE, 2, 3, 2, A, 3, -1, N, 0, B(1) | B(2), -1, 1, 0, 0},
        END,
    };
    run(true, t);
}

/* Strict: an owner still adding may be serving already (its push in flight): it is the holder.
 * Moving again while a holder drops keeps that holder (and its generation) and makes the newest
 * target pending; moving back to the holder makes it the owner again with a new generation. */
static void test_strict_holder_rules(void **state)
{
    (void)state;
    static const step t[] = {
        {MOVE, 0, 1, 0, A, 1, -1, N, 0, B(0), -1, 1, 0, 0},
        {MOVE, 1, 2, 1, P, 2, 0, D, 1, B(0) | B(1), 0, 1, 0, 0},
        {MOVE, 2, 3, 2, P, 3, 0, D, 1, B(0) | B(1) | B(2), 0, 1, 0, 0},
        {MOVE, 0, 4, 0, A, 4, -1, N, 0, B(0) | B(2), -1, 1, 0, 0},
        {SERVING, 0, 3, 0, A, 4, -1, N, 0, 0, -1, 0, 0, 0}, /* the old generation: no */
        {SERVING, 0, 4, 0, S, 4, -1, N, 0, 0, -1, 0, 1, 0},
        END,
    };
    run(true, t);
}

/* Strict: a vacated slot (nowhere to go) does not forget its holder: a dead owner may serve
 * until its lease ends. It stays the slot's holder, told to drop; a move to a node that joins
 * later waits for it (pending) until its lease ran out. A holder that comes back and answers
 * without the replica empties the slot (no move was in flight: nothing is done); vacating
 * again keeps the same holder; a holder that left is forgotten at once. */
static void test_strict_vacate_keeps_holder(void **state)
{
    (void)state;
    static const step t[] = {
        /* op      a  b   owner st gen prev st pgen push      watch st dn pend */
        {MOVE, 0, 1, 0, A, 1, -1, N, 0, B(0), -1, 1, 0, 0},
        {SERVING, 0, 1, 0, S, 1, -1, N, 0, 0, -1, 0, 1, 0},
        {NODE, 0, SZD_NODE_DEAD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {MOVE, -1, 2, -1, N, 0, 0, D, 1, B(0), 0, 0, 0, 0},
        {MOVE, -1, 3, -1, N, 0, 0, D, 1, B(0), 0, 0, 0, 0},   /* vacated again: same holder */
        {MOVE, 1, 4, 1, P, 4, 0, D, 1, B(0) | B(1), 0, 1, 0, 0}, /* the joiner waits */
        {SERVING, 1, 4, 1, P, 4, 0, D, 1, 0, -1, 0, 0, 0},
        {GONE, 0, 0, 1, A, 4, -1, N, 0, B(1), -1, 0, 0, 0},   /* its lease ran out */
        {SERVING, 1, 4, 1, S, 4, -1, N, 0, 0, -1, 0, 1, 0},
        /* the owner is cut off again, vacated; it comes back and answers without it */
        {NODE, 1, SZD_NODE_DEAD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {MOVE, -1, 5, -1, N, 0, 1, D, 4, B(1), 1, 0, 0, 0},
        {NODE, 1, SZD_NODE_ALIVE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {DROPPED, 1, 1, -1, N, 0, 1, D, 4, 0, -1, 0, 0, 1},  /* still serves it */
        {DROPPED, 1, 0, -1, N, 0, -1, N, 0, 0, -1, 0, 0, 0}, /* empty, nothing done */
        /* a holder gone with no owner waiting: empty, nothing done */
        {MOVE, 2, 6, 2, A, 6, -1, N, 0, B(2), -1, 1, 0, 0},
        {MOVE, -1, 7, -1, N, 0, 2, D, 6, B(2), 2, 0, 0, 0},
        {GONE, 2, 0, -1, N, 0, -1, N, 0, 0, -1, 0, 0, 0},
        /* a holder that left holds nothing: vacating forgets it */
        {MOVE, 3, 8, 3, A, 8, -1, N, 0, B(3), -1, 1, 0, 0},
        {NODE, 3, SZD_NODE_LEFT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {MOVE, -1, 9, -1, N, 0, -1, N, 0, B(3), -1, 0, 0, 0},
        END,
    };
    run(true, t);
}

/* Strict: a partition removed while its holder may still serve (the owner, or the old owner
 * told to drop) keeps that holder; added again, its slot starts with the holder told to drop
 * and a move waits for it (until it drops or its lease ran out). Vacant slots, pending
 * owners and nodes that left hold nothing; HELD on a slot that is not vacant changes nothing. */
static void test_strict_removed_partition_keeps_holder(void **state)
{
    (void)state;
    static const step t[] = {
        /* op      a  b   owner st gen prev st pgen push      watch st dn pend */
        {HOLDER, -1, 0, -1, N, 0, -1, N, 0, 0, -1, 0, 0, 0},             /* vacant: none */
        {MOVE, 0, 3, 0, A, 3, -1, N, 0, B(0), -1, 1, 0, 0},
        {HOLDER, 0, 3, -1, N, 0, -1, N, 0, 0, -1, 0, 0, 0},              /* adding: it may serve */
        {HELD, 0, 3, -1, N, 0, 0, D, 3, B(0), 0, 0, 0, 0},               /* added again */
        {HELD, 1, 9, -1, N, 0, 0, D, 3, 0, -1, 0, 0, 0},                 /* not vacant: no */
        {MOVE, 1, 4, 1, P, 4, 0, D, 3, B(0) | B(1), 0, 1, 0, 0},          /* waits for it */
        {HOLDER, 0, 3, -1, N, 0, -1, N, 0, 0, -1, 0, 0, 0},              /* removed again */
        {HELD, 0, 3, -1, N, 0, 0, D, 3, B(0), 0, 0, 0, 0},
        {MOVE, 1, 5, 1, P, 5, 0, D, 3, B(0) | B(1), 0, 1, 0, 0},
        {GONE, 0, 0, 1, A, 5, -1, N, 0, B(1), -1, 0, 0, 0},
        {HOLDER, 1, 5, -1, N, 0, -1, N, 0, 0, -1, 0, 0, 0},              /* adding: it may serve */
        {MOVE, 2, 6, 2, A, 6, -1, N, 0, B(2), -1, 1, 0, 0},
        {NODE, 2, SZD_NODE_LEFT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
        {HOLDER, -1, 0, -1, N, 0, -1, N, 0, 0, -1, 0, 0, 0},             /* it left: none */
        END,
    };
    run(true, t);
}

/* Strict: a node registering as a new process (incarnation) is a new holder. Its earlier
 * process keeps the replica (retired) until its lease ran out; the new one owns it pending,
 * with a higher generation, and is told to serve only then. The node's answers (from the new
 * process), a holder-gone for the node and a serving ack change nothing meanwhile; moves, to
 * another node or back to it, still wait for the retired process. One told to drop when it
 * restarted is retired likewise. A removed partition keeps a retired holder as retired. */
static void test_strict_new_incarnation(void **state)
{
    (void)state;
    static const step t[] = {
        /* op      a  b   owner st gen prev st pgen push      watch st dn pend */
        {MOVE, 0, 1, 0, A, 1, -1, N, 0, B(0), -1, 1, 0, 0},
        {SERVING, 0, 1, 0, S, 1, -1, N, 0, 0, -1, 0, 1, 0},
        {REINC, 2, 9, 0, S, 1, -1, N, 0, 0, -1, 0, 0, 0},          /* holds nothing */
        {REINC, 0, 2, 0, P, 2, 0, R, 1, B(0), 0, 1, 0, 0},
        {DROPPED, 0, 0, 0, P, 2, 0, R, 1, 0, -1, 0, 0, 1},         /* the new process */
        {GONE, 0, 0, 0, P, 2, 0, R, 1, 0, -1, 0, 0, 0},
        {SERVING, 0, 2, 0, P, 2, 0, R, 1, 0, -1, 0, 0, 0},
        {MOVE, 1, 3, 1, P, 3, 0, R, 1, B(0) | B(1), 0, 1, 0, 0},
        {MOVE, 0, 4, 0, P, 4, 0, R, 1, B(0) | B(1), 0, 1, 0, 0},    /* back: still waits */
        {RGONE, 1, 0, 0, P, 4, 0, R, 1, 0, -1, 0, 0, 0},           /* not the holder */
        {RGONE, 0, 0, 0, A, 4, -1, N, 0, B(0), -1, 0, 0, 0},
        {SERVING, 0, 4, 0, S, 4, -1, N, 0, 0, -1, 0, 1, 0},
        /* restarted while told to drop */
        {MOVE, 1, 5, 1, P, 5, 0, D, 4, B(0) | B(1), 0, 1, 0, 0},
        {REINC, 0, 6, 1, P, 5, 0, R, 4, B(0), 0, 0, 0, 0},
        {DROPPED, 0, 0, 1, P, 5, 0, R, 4, 0, -1, 0, 0, 1},
        {HOLDER, -1, 4, -1, N, 0, -1, N, 0, 0, -1, 0, 0, 0},       /* removed: retired */
        {HELD, -1, 4, -1, N, 0, 0, R, 4, B(0), 0, 0, 0, 0},        /* added again */
        {MOVE, 1, 7, 1, P, 7, 0, R, 4, B(0) | B(1), 0, 1, 0, 0},
        {RGONE, 0, 0, 1, A, 7, -1, N, 0, B(1), -1, 0, 0, 0},
        {SERVING, 1, 7, 1, S, 7, -1, N, 0, 0, -1, 0, 1, 0},
        /* vacated while retired: stays retired */
        {REINC, 1, 8, 1, P, 8, 1, R, 7, B(1), 1, 1, 0, 0},
        {MOVE, -1, 9, -1, N, 0, 1, R, 7, B(1), 1, 0, 0, 0},
        {RGONE, 1, 0, -1, N, 0, -1, N, 0, 0, -1, 0, 0, 0},
        END,
    };
    run(true, t);
}

/* Available: a new process of the owner serves nothing yet: the owner is adding again at the
 * new generation (routing waits for it); a previous owner that restarted is forgotten. */
static void test_available_new_incarnation(void **state)
{
    (void)state;
    static const step t[] = {
        {MOVE, 0, 1, 0, A, 1, -1, N, 0, B(0), -1, 1, 0, 0},
        {SERVING, 0, 1, 0, S, 1, -1, N, 0, 0, -1, 0, 1, 0},
        {REINC, 0, 2, 0, A, 2, -1, N, 0, B(0), -1, 1, 0, 0},
        {SERVING, 0, 2, 0, S, 2, -1, N, 0, 0, -1, 0, 1, 0},
        {MOVE, 1, 3, 1, A, 3, 0, S, 2, B(0) | B(1), -1, 1, 0, 0},
        {REINC, 0, 4, 1, A, 3, -1, N, 0, 0, -1, 0, 0, 0},
        {SERVING, 1, 3, 1, S, 3, -1, N, 0, 0, -1, 0, 1, 0},
        END,
    };
    run(false, t);
}

/* Available mode keeps no holder of a removed partition (a new owner starts at once). */
static void test_available_removed_partition_no_holder(void **state)
{
    (void)state;
    static const step t[] = {
        {MOVE, 0, 1, 0, A, 1, -1, N, 0, B(0), -1, 1, 0, 0},
        {SERVING, 0, 1, 0, S, 1, -1, N, 0, 0, -1, 0, 1, 0},
        {HOLDER, -1, 0, -1, N, 0, -1, N, 0, 0, -1, 0, 0, 0},
        END,
    };
    run(false, t);
}

/* clang-format on */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_available_make_before_break),
        cmocka_unit_test(test_available_cancel_and_vacate),
        cmocka_unit_test(test_available_dead_owner),
        cmocka_unit_test(test_strict_break_before_make),
        cmocka_unit_test(test_strict_dead_and_left_holders),
        cmocka_unit_test(test_strict_holder_rules),
        cmocka_unit_test(test_strict_vacate_keeps_holder),
        cmocka_unit_test(test_strict_removed_partition_keeps_holder),
        cmocka_unit_test(test_available_removed_partition_no_holder),
        cmocka_unit_test(test_strict_new_incarnation),
        cmocka_unit_test(test_available_new_incarnation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
