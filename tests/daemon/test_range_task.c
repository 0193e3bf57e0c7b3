/* Table tests of the range task machine (src/daemon/core/range_task.c): each row a task's
 * state, its partitions' slots (written as short strings) and the nodes' states; the step due.
 * Then a split walked through its whole life, as the shell carries it out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/core/range_task.h"

/* nodes 0..3: 0 and 1 alive, 2 dead, 3 left */
static uint8_t node_state(const void *ctx, int32_t i)
{
    (void)ctx;
    static const uint8_t st[] = {SZD_NODE_ALIVE, SZD_NODE_ALIVE, SZD_NODE_DEAD, SZD_NODE_LEFT};
    return st[i];
}

/* A slot from a short string: "-" none; "0s" owner 0 serving; "1a" owner 1 adding;
 * "1s<0d" owner 1 serving, node 0 the previous owner dropping; "-<0d" vacated, 0 dropping. */
static szd_slot slot(const char *w)
{
    szd_slot sl;
    szd_slot_init(&sl);
    if (w[0] != '-') {
        sl.owner = w[0] - '0';
        sl.owner_state = w[1] == 's' ? SZD_R_SERVING : w[1] == 'a' ? SZD_R_ADDING : SZD_R_PENDING;
    }
    const char *lt = strchr(w, '<');
    if (lt) {
        sl.prev = lt[1] - '0';
        sl.prev_state = SZD_R_DROPPING;
    }
    return sl;
}

typedef struct {
    const char *what;
    szd_rt_state state;
    bool unsaved;
    const char *old[2]; /* one slot each (replicas 1); NULL: no such partition */
    const char *neu[2];
    size_t nold, nnew;
    szd_rt_step want;
} row;

/* clang-format off */
static const row rows[] = {
    {"planned: create the successors",          SZD_RT_PLANNED, false, {"0s"},        {NULL, NULL},   1, 2, SZD_RT_CREATE},
    {"a failed write first",                    SZD_RT_CREATED, true,  {"0s"},        {"0s", "0s"},   1, 2, SZD_RT_REWRITE},
    {"successors still adding: wait",           SZD_RT_CREATED, false, {"0s"},        {"0s", "0a"},   1, 2, SZD_RT_WAIT},
    {"a successor missing: wait",               SZD_RT_CREATED, false, {"0s"},        {"0s", NULL},   1, 2, SZD_RT_WAIT},
    {"a successor moving: wait",                SZD_RT_CREATED, false, {"0s"},        {"0s", "1s<0d"}, 1, 2, SZD_RT_WAIT},
    {"a predecessor moving: wait",              SZD_RT_CREATED, false, {"1a<0d"},     {"0s", "0s"},   1, 2, SZD_RT_WAIT},
    {"all serving, settled: switch",            SZD_RT_CREATED, false, {"0s"},        {"0s", "0s"},   1, 2, SZD_RT_SWITCH},
    {"merge: both predecessors settled",        SZD_RT_CREATED, false, {"0s", "1s"},  {"1s"},         2, 1, SZD_RT_SWITCH},
    {"moved: predecessor still dropping",       SZD_RT_MOVED,   false, {"-<0d"},      {"0s", "0s"},   1, 2, SZD_RT_WAIT},
    {"moved: held by a dead node only",         SZD_RT_MOVED,   false, {"-<2d"},      {"0s", "0s"},   1, 2, SZD_RT_FINISH},
    {"moved: held by a node that left",         SZD_RT_MOVED,   false, {"3s"},        {"0s", "0s"},   1, 2, SZD_RT_FINISH},
    {"moved: dropped everywhere",               SZD_RT_MOVED,   false, {"-"},         {"0s", "0s"},   1, 2, SZD_RT_FINISH},
    {"moved: a predecessor already gone",       SZD_RT_MOVED,   false, {NULL},        {"0s", "0s"},   1, 2, SZD_RT_FINISH},
    {"merge moved: one still held",             SZD_RT_MOVED,   false, {"-", "-<1d"}, {"1s"},         2, 1, SZD_RT_WAIT},
    {"done: nothing",                           SZD_RT_DONE,    false, {"-"},         {"0s", "0s"},   1, 2, SZD_RT_WAIT},
};
/* clang-format on */

static szd_rt_step run_row(const row *r)
{
    szd_slot_env env = {.strict = false, .node_state = node_state, .ctx = NULL};
    szd_slot slots[4];
    szd_rt_part parts[4];
    for (size_t k = 0; k < r->nold + r->nnew; k++) {
        const char *w = k < r->nold ? r->old[k] : r->neu[k - r->nold];
        if (w) {
            slots[k] = slot(w);
        }
        parts[k] = (szd_rt_part){w ? &slots[k] : NULL, w ? 1 : 0};
    }
    szd_rt_view v = {r->state, r->unsaved, parts, r->nold, parts + r->nold, r->nnew, &env};
    return szd_rt_next(&v);
}

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        szd_rt_step got = run_row(&rows[i]);
        if (got != rows[i].want) {
            fail_msg("%s: %s, want %s", rows[i].what, szd_rt_step_name(got),
                     szd_rt_step_name(rows[i].want));
        }
    }
}

/* A split's life: each step due in turn, the state after it, and no step due twice. */
static void test_split_walk(void **state)
{
    (void)state;
    struct {
        const char *old, *neu0, *neu1;
        szd_rt_step want;
    } walk[] = {
        {"0s", NULL, NULL, SZD_RT_CREATE}, {"0s", "0a", "0a", SZD_RT_WAIT},
        {"0s", "0s", "0a", SZD_RT_WAIT},   {"0s", "0s", "0s", SZD_RT_SWITCH},
        {"-<0d", "0s", "0s", SZD_RT_WAIT}, {"-", "0s", "0s", SZD_RT_FINISH},
        {"-", "0s", "0s", SZD_RT_WAIT},
    };
    szd_rt_state st = SZD_RT_PLANNED;
    for (size_t i = 0; i < sizeof walk / sizeof walk[0]; i++) {
        row r = {"walk", st, false, {walk[i].old}, {walk[i].neu0, walk[i].neu1}, 1, 2, 0};
        szd_rt_step got = run_row(&r);
        if (got != walk[i].want) {
            fail_msg("walk step %zu: %s, want %s", i, szd_rt_step_name(got),
                     szd_rt_step_name(walk[i].want));
        }
        st = szd_rt_after(st, got);
    }
    assert_int_equal(st, SZD_RT_DONE);
    assert_int_equal(szd_rt_after(SZD_RT_MOVED, SZD_RT_REWRITE), SZD_RT_MOVED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rows),
                                       cmocka_unit_test(test_split_walk)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
