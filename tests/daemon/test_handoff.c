/* Table tests of the primary handoff machine (src/daemon/core/handoff.c): two replica slots of
 * one partition (the primary's and a secondary's) driven by a script of inputs, with both
 * slots and the output expected after each step. Node 0 is the old primary A, node 1 the
 * secondary B that is promoted, node 2 the placement's target C. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "daemon/core/handoff.h"
#include "shardz/placement.h"

typedef enum { BEGIN, PROMOTED, SERVING, DROPPED, NODE, END } op_kind;

enum { N = SZD_R_NONE, A = SZD_R_ADDING, S = SZD_R_SERVING, D = SZD_R_DROPPING };

/* One step. BEGIN: a = to, b = the promoted primary's generation (the target's is b - 1).
 * PROMOTED: node a served at generation b (szd_handoff_promoted). SERVING: the secondary
 * slot's owner a served at generation b (szd_slot_serving). DROPPED: node a answered without
 * the replica (slot: c, 0 primary, 1 secondary). NODE: node a enters state b. Then both
 * slots (owner, state, generation; prev, state, generation), the nodes pushed (a bit each),
 * and which slots' moves are done (bit 0 primary, bit 1 secondary). */
typedef struct {
    op_kind op;
    int a;
    long long b;
    int c;
    int slot[2][6];
    unsigned push, done;
} step;

static uint8_t states[3];

static uint8_t state_of(const void *ctx, int32_t i)
{
    (void)ctx;
    return states[i];
}

static unsigned pushed(const szd_slot_out *o)
{
    unsigned m = 0;
    for (int k = 0; k < 3; k++) {
        if (o->push[k] >= 0) {
            m |= 1u << o->push[k];
        }
    }
    return m;
}

static void check_slot(size_t i, const char *name, const szd_slot *sl, const int *w)
{
    if (sl->owner != w[0] || sl->owner_state != w[1] || (int)sl->generation != w[2] ||
        sl->prev != w[3] || sl->prev_state != w[4] || (int)sl->prev_generation != w[5]) {
        fail_msg("step %zu, %s slot: owner %d %s gen %d, prev %d %s gen %d; want owner %d %s "
                 "gen %d, prev %d %s gen %d",
                 i, name, sl->owner, szd_rstate_name(sl->owner_state), (int)sl->generation,
                 sl->prev, szd_rstate_name(sl->prev_state), (int)sl->prev_generation, w[0],
                 szd_rstate_name((szd_rstate)w[1]), w[2], w[3], szd_rstate_name((szd_rstate)w[4]),
                 w[5]);
    }
}

/* Runs a script from A serving the primary at generation 5 and B a secondary at 3. */
static void run(const step *t)
{
    for (int i = 0; i < 3; i++) {
        states[i] = SZD_NODE_ALIVE;
    }
    szd_slot_env env = {.strict = false, .node_state = state_of, .ctx = NULL};
    szd_slot pri, sec;
    szd_slot_init(&pri);
    szd_slot_init(&sec);
    pri.owner = 0;
    pri.owner_state = SZD_R_SERVING;
    pri.generation = 5;
    sec.owner = 1;
    sec.owner_state = SZD_R_SERVING;
    sec.generation = 3;
    for (size_t i = 0; t[i].op != END; i++) {
        const step *s = &t[i];
        szd_slot_out op, os;
        szd_slot_out_init(&op);
        szd_slot_out_init(&os);
        switch (s->op) {
        case BEGIN:
            assert_true(szd_handoff_eligible(&pri, &sec, &env, s->a));
            szd_handoff_begin(&pri, &sec, &env, s->a, (uint64_t)s->b, (uint64_t)s->b - 1,
                              SHARDZ_REASON_DRAIN, 1000, &op, &os);
            assert_int_equal(pri.reason, SHARDZ_REASON_HANDOFF);
            assert_int_equal(sec.reason, SHARDZ_REASON_DRAIN);
            break;
        case PROMOTED:
            szd_handoff_promoted(&pri, &sec, &env, s->a, (uint64_t)s->b, &op, &os);
            break;
        case SERVING:
            szd_slot_serving(&sec, &env, s->a, (uint64_t)s->b, &os);
            break;
        case DROPPED:
            (void)szd_slot_dropped(s->c ? &sec : &pri, s->a, false, s->c ? &os : &op);
            break;
        case NODE:
            states[s->a] = (uint8_t)s->b;
            continue;
        case END:
            break;
        }
        check_slot(i, "primary", &pri, s->slot[0]);
        check_slot(i, "secondary", &sec, s->slot[1]);
        unsigned done = (op.done ? 1u : 0u) | (os.done ? 2u : 0u);
        if ((pushed(&op) | pushed(&os)) != s->push || done != s->done) {
            fail_msg("step %zu: pushed %#x done %#x; want %#x %#x", i, pushed(&op) | pushed(&os),
                     done, s->push, s->done);
        }
    }
}

#define BIT(n) (1u << (n))

/* clang-format off */

/* B is promoted (primary at 7) while A keeps serving; once B serves, routing switches and A
 * takes B's place as the secondary's serving previous owner (demoted, generation 5 kept),
 * until C serves the secondary; then A drops. Never fewer than two serving, one primary
 * routed at a time. */
static void test_promote_then_demote(void **state)
{
    (void)state;
    static const step t[] = {
        {BEGIN,    2, 7, 0, {{1, A, 7, 0, S, 5}, {2, A, 6, 1, S, 3}}, BIT(0) | BIT(1) | BIT(2), 0},
        {PROMOTED, 1, 3, 0, {{1, A, 7, 0, S, 5}, {2, A, 6, 1, S, 3}}, 0, 0}, /* its old gen */
        {PROMOTED, 1, 7, 0, {{1, S, 7, -1, N, 0}, {2, A, 6, 0, S, 5}}, BIT(0), 1},
        {SERVING,  2, 6, 0, {{1, S, 7, -1, N, 0}, {2, S, 6, 0, D, 5}}, BIT(0), 0},
        {DROPPED,  0, 0, 1, {{1, S, 7, -1, N, 0}, {2, S, 6, -1, N, 0}}, 0, 2},
        {END, 0, 0, 0, {{0}}, 0, 0},
    };
    run(t);
}

/* C serves the secondary before B is promoted: B's old copy drops (B keeps the partition as
 * the primary), and once B serves as primary, A drops like any old owner. */
static void test_target_first(void **state)
{
    (void)state;
    static const step t[] = {
        {BEGIN,    2, 7, 0, {{1, A, 7, 0, S, 5}, {2, A, 6, 1, S, 3}}, BIT(0) | BIT(1) | BIT(2), 0},
        {SERVING,  2, 6, 0, {{1, A, 7, 0, S, 5}, {2, S, 6, 1, D, 3}}, BIT(1), 0},
        {DROPPED,  1, 0, 1, {{1, A, 7, 0, S, 5}, {2, S, 6, -1, N, 0}}, 0, 2},
        {PROMOTED, 1, 7, 0, {{1, S, 7, 0, D, 5}, {2, S, 6, -1, N, 0}}, BIT(0), 0},
        {DROPPED,  0, 0, 0, {{1, S, 7, -1, N, 0}, {2, S, 6, -1, N, 0}}, 0, 1},
        {END, 0, 0, 0, {{0}}, 0, 0},
    };
    run(t);
}

/* The old primary died before B was promoted: nothing to demote; B serves and the handoff is
 * done (the secondary's move goes on from B). */
static void test_old_primary_dead(void **state)
{
    (void)state;
    static const step t[] = {
        {BEGIN,    2, 7, 0, {{1, A, 7, 0, S, 5}, {2, A, 6, 1, S, 3}}, BIT(0) | BIT(1) | BIT(2), 0},
        {NODE,     0, SZD_NODE_DEAD, 0, {{0}}, 0, 0},
        {PROMOTED, 1, 7, 0, {{1, S, 7, -1, N, 0}, {2, A, 6, 1, S, 3}}, 0, 1},
        {END, 0, 0, 0, {{0}}, 0, 0},
    };
    run(t);
}

/* clang-format on */

/* When a handoff may start: available mode, both replicas serving with no move in flight, the
 * promoted node alive, the target another node. */
static void test_eligible(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        states[i] = SZD_NODE_ALIVE;
    }
    szd_slot_env env = {.strict = false, .node_state = state_of, .ctx = NULL};
    szd_slot pri, sec;
    szd_slot_init(&pri);
    szd_slot_init(&sec);
    pri = (szd_slot){.owner = 0, .owner_state = SZD_R_SERVING, .generation = 5, .prev = -1};
    sec = (szd_slot){.owner = 1, .owner_state = SZD_R_SERVING, .generation = 3, .prev = -1};
    assert_true(szd_handoff_eligible(&pri, &sec, &env, 2));
    assert_false(szd_handoff_eligible(&pri, &sec, &env, -1)); /* vacated */
    assert_false(szd_handoff_eligible(&pri, &sec, &env, 1));  /* to the secondary itself */
    env.strict = true;
    assert_false(szd_handoff_eligible(&pri, &sec, &env, 2)); /* strict: break before make */
    env.strict = false;
    states[1] = SZD_NODE_DRAINING;
    assert_false(szd_handoff_eligible(&pri, &sec, &env, 2)); /* the secondary leaves too */
    states[1] = SZD_NODE_ALIVE;
    states[0] = SZD_NODE_DEAD;
    assert_false(szd_handoff_eligible(&pri, &sec, &env, 2)); /* a dead primary hands nothing */
    states[0] = SZD_NODE_DRAINING;
    assert_true(szd_handoff_eligible(&pri, &sec, &env, 2)); /* a draining one does */
    sec.owner_state = SZD_R_ADDING;
    assert_false(szd_handoff_eligible(&pri, &sec, &env, 2)); /* not serving yet */
    sec.owner_state = SZD_R_SERVING;
    pri.prev = 2;
    pri.prev_state = SZD_R_DROPPING;
    assert_false(szd_handoff_eligible(&pri, &sec, &env, 2)); /* a move in flight */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_promote_then_demote),
        cmocka_unit_test(test_target_first),
        cmocka_unit_test(test_old_primary_dead),
        cmocka_unit_test(test_eligible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
