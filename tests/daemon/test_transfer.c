/* Table tests of the state-transfer gate (src/daemon/core/transfer.c) with the slot machine
 * (core/slot.c): a new owner that serves but is not ready keeps routing on the old owner until
 * it is ready, or its move is transfer_timeout_ms old; answers about another node, an older
 * generation, or a slot not adding change nothing; a new move forgets the mark. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "daemon/core/transfer.h"

typedef enum { MOVE, ANSWER, EXPIRED, END } op_kind;

/* One step. MOVE: to node a at generation b, at time c. ANSWER: node a serves generation b,
 * ready c (1/0), timeout 1000 (or 0 when c is 2: routing never waits): the step expected in
 * want. EXPIRED: at time c, with timeout 1000: want is 1 when it expired. Then the slot's
 * unready mark and whether it waits. */
typedef struct {
    op_kind op;
    int a;
    long long b, c;
    int want, unready, waiting;
} step;

static uint8_t state_of(const void *ctx, int32_t i)
{
    (void)ctx;
    (void)i;
    return SZD_NODE_ALIVE;
}

static void run(const step *t)
{
    szd_slot_env env = {.strict = false, .node_state = state_of, .ctx = NULL};
    szd_slot sl;
    szd_slot_init(&sl);
    for (size_t i = 0; t[i].op != END; i++) {
        const step *s = &t[i];
        szd_slot_out out;
        szd_slot_out_init(&out);
        int got = 0;
        switch (s->op) {
        case MOVE:
            szd_slot_move(&sl, &env, s->a, (uint64_t)s->b, 0, s->c, &out);
            break;
        case ANSWER:
            got = (int)szd_transfer_answer(&sl, s->a, (uint64_t)s->b, s->c == 1,
                                           s->c == 2 ? 0 : 1000);
            if (got == SZD_TR_SERVE) {
                szd_slot_serving(&sl, &env, s->a, (uint64_t)s->b, &out);
            }
            break;
        case EXPIRED:
            got = szd_transfer_expired(&sl, 1000, s->c);
            break;
        case END:
            break;
        }
        if (got != s->want || sl.unready != s->unready ||
            (int)szd_transfer_waiting(&sl) != s->waiting) {
            fail_msg("step %zu: got %d unready %d waiting %d; want %d %d %d", i, got, sl.unready,
                     (int)szd_transfer_waiting(&sl), s->want, s->unready, s->waiting);
        }
    }
}

enum { NONE = SZD_TR_NONE, SERVE = SZD_TR_SERVE, WAIT = SZD_TR_WAIT };

/* clang-format off */

/* Node 0 serves at generation 1; the slot moves to node 1 (generation 2) at t=100. Node 1
 * answers not ready: routing waits; an answer from node 0, or of generation 1, is nothing; it
 * has not expired at 1099, it has at 1100; ready, it serves and waits no more. */
static void test_wait_then_ready(void **state)
{
    (void)state;
    static const step t[] = {
        {MOVE,    0, 1, 0,    0, 0, 0},
        {ANSWER,  0, 1, 1,    SERVE, 0, 0},
        {MOVE,    1, 2, 100,  0, 0, 0},
        {ANSWER,  1, 2, 0,    WAIT, 1, 1},
        {ANSWER,  0, 2, 0,    NONE, 1, 1}, /* not the adding owner */
        {ANSWER,  1, 1, 1,    NONE, 1, 1}, /* an older generation */
        {EXPIRED, 0, 0, 1099, 0, 1, 1},
        {EXPIRED, 0, 0, 1100, 1, 1, 1},
        {ANSWER,  1, 2, 1,    SERVE, 0, 0},
        {EXPIRED, 0, 0, 5000, 0, 0, 0},
        {ANSWER,  1, 2, 0,    NONE, 0, 0}, /* serving already: a late "not ready" is nothing */
        {END, 0, 0, 0, 0, 0, 0},
    };
    run(t);
}

/* A move elsewhere while the owner is not ready forgets the mark (the next owner has not
 * answered); a namespace whose routing never waits (timeout 0) switches at once. */
static void test_moved_away_and_no_wait(void **state)
{
    (void)state;
    static const step t[] = {
        {MOVE,    0, 1, 0,    0, 0, 0},
        {ANSWER,  0, 1, 1,    SERVE, 0, 0},
        {MOVE,    1, 2, 100,  0, 0, 0},
        {ANSWER,  1, 2, 0,    WAIT, 1, 1},
        {MOVE,    2, 3, 200,  0, 0, 0},
        {EXPIRED, 0, 0, 9999, 0, 0, 0}, /* node 2 never answered: nothing to time out */
        {ANSWER,  2, 3, 2,    SERVE, 0, 0},
        {END, 0, 0, 0, 0, 0, 0},
    };
    run(t);
}

/* clang-format on */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_then_ready),
        cmocka_unit_test(test_moved_away_and_no_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
