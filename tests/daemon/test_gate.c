/* Table tests of the drain gate (src/daemon/core/gate.c): for each row, a move's reason, the
 * mode, whether its source serves, the partition's serving count, the floor, the moves in
 * flight and the limit, then the verdict expected. Then the stop rule and the zone rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/core/gate.h"
#include "shardz/placement.h"

typedef struct {
    shardz_reason reason;
    int strict, source_serving, serving, floor, in_flight, limit;
    szd_gate_verdict want;
    int gone;   /* the source is dead or left */
    int frozen; /* the namespace is frozen */
    int vacate; /* the move empties its slot */
} row;

/* The table is laid out by hand, a column per field. */
/* clang-format off */
static const row rows[] = {
    /* failures, first placements, repairs and splits are never gated */
    {SHARDZ_REASON_NODE_DEAD, 1, 1, 0, 2, 9, 1, SZD_GATE_START, 0, 0, 0},
    {SHARDZ_REASON_NEW,       1, 0, 0, 2, 9, 1, SZD_GATE_START, 0, 0, 0},
    {SHARDZ_REASON_REPAIR,    0, 0, 0, 2, 9, 1, SZD_GATE_START, 0, 0, 0},
    {SHARDZ_REASON_SPLIT,     1, 1, 1, 2, 9, 1, SZD_GATE_START, 0, 0, 0},
    /* strict: the source stops first, so the partition must keep the floor without it */
    {SHARDZ_REASON_DRAIN,     1, 1, 2, 1, 0, 0, SZD_GATE_START, 0, 0, 0},
    {SHARDZ_REASON_DRAIN,     1, 1, 1, 1, 0, 0, SZD_GATE_FLOOR, 0, 0, 0},
    {SHARDZ_REASON_DRAIN,     1, 1, 3, 2, 0, 0, SZD_GATE_START, 0, 0, 0},
    {SHARDZ_REASON_DRAIN,     1, 1, 2, 2, 0, 0, SZD_GATE_FLOOR, 0, 0, 0},
    {SHARDZ_REASON_JOIN,      1, 0, 1, 1, 0, 0, SZD_GATE_START, 0, 0, 0}, /* a replica not serving: nothing lost */
    {SHARDZ_REASON_LEAVE,     1, 1, 1, 0, 0, 0, SZD_GATE_START, 0, 0, 0}, /* floor 0 */
    /* available: make-before-break takes nothing away, so it never waits for the floor, not
     * even in a partition below it already (a fresh one still adding: its joins go at once) */
    {SHARDZ_REASON_DRAIN,     0, 1, 1, 1, 0, 0, SZD_GATE_START, 0, 0, 0},
    {SHARDZ_REASON_DRAIN,     0, 1, 2, 2, 0, 0, SZD_GATE_START, 0, 0, 0},
    {SHARDZ_REASON_OPERATOR,  0, 0, 0, 1, 0, 0, SZD_GATE_START, 0, 0, 0}, /* nothing serves yet */
    {SHARDZ_REASON_LOAD,      0, 1, 1, 2, 0, 0, SZD_GATE_START, 0, 0, 0},
    {SHARDZ_REASON_JOIN,      1, 0, 0, 1, 0, 0, SZD_GATE_START, 0, 0, 0}, /* strict, not serving */
    /* the limit, checked before the floor */
    {SHARDZ_REASON_REBALANCE, 0, 1, 3, 1, 4, 5, SZD_GATE_START, 0, 0, 0},
    {SHARDZ_REASON_REBALANCE, 0, 1, 3, 1, 5, 5, SZD_GATE_LIMIT, 0, 0, 0},
    {SHARDZ_REASON_DRAIN,     1, 1, 1, 1, 7, 5, SZD_GATE_LIMIT, 0, 0, 0},
    {SHARDZ_REASON_DRAIN,     1, 1, 2, 1, 999, 0, SZD_GATE_START, 0, 0, 0}, /* 0: no limit */
    /* a queued move whose source died since replaces a failure: never gated */
    {SHARDZ_REASON_DRAIN,     1, 0, 0, 1, 9, 1, SZD_GATE_START, 1, 0, 0},
    /* frozen: every planned move waits but an operator's; failures still start */
    {SHARDZ_REASON_DRAIN,     0, 1, 2, 1, 0, 0, SZD_GATE_FROZEN, 0, 1, 0},
    {SHARDZ_REASON_LOAD,      0, 1, 2, 1, 9, 1, SZD_GATE_FROZEN, 0, 1, 0}, /* before the limit */
    {SHARDZ_REASON_OPERATOR,  0, 1, 2, 1, 0, 0, SZD_GATE_START,  0, 1, 0},
    {SHARDZ_REASON_NODE_DEAD, 1, 0, 0, 1, 0, 0, SZD_GATE_START,  0, 1, 0},
    {SHARDZ_REASON_DRAIN,     1, 0, 0, 1, 0, 0, SZD_GATE_START,  1, 1, 0}, /* source gone */
    /* vacating a slot (replicas lowered) takes its serving replica even when available */
    {SHARDZ_REASON_REBALANCE, 0, 1, 2, 1, 0, 0, SZD_GATE_START,  0, 0, 1},
    {SHARDZ_REASON_REBALANCE, 0, 1, 2, 2, 0, 0, SZD_GATE_FLOOR,  0, 0, 1},
    {SHARDZ_REASON_REBALANCE, 0, 0, 1, 1, 0, 0, SZD_GATE_START,  0, 0, 1}, /* not serving */
};
/* clang-format on */

static void test_verdicts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        szd_gate_in in = {.reason = (uint8_t)r->reason,
                          .strict = r->strict != 0,
                          .source_serving = r->source_serving != 0,
                          .serving = (uint32_t)r->serving,
                          .min_available = (uint32_t)r->floor,
                          .in_flight = (uint64_t)r->in_flight,
                          .max_in_flight = (uint64_t)r->limit,
                          .source_gone = r->gone != 0,
                          .frozen = r->frozen != 0,
                          .vacate = r->vacate != 0};
        szd_gate_verdict got = szd_gate_check(&in);
        if (got != r->want) {
            print_error("row %zu: %s, want %s\n", i, szd_gate_verdict_name(got),
                        szd_gate_verdict_name(r->want));
        }
        assert_int_equal(got, r->want);
    }
}

static void test_planned(void **state)
{
    (void)state;
    int planned = 0;
    for (int r = 0; r < SHARDZ_REASON__COUNT; r++) {
        planned += szd_gate_planned((uint8_t)r);
    }
    assert_int_equal(planned, 6); /* drain, leave, operator, rebalance, load, join */
    assert_false(szd_gate_planned(SHARDZ_REASON_NODE_DEAD));
    assert_true(szd_gate_planned(SHARDZ_REASON_OPERATOR));
    assert_string_equal(szd_gate_verdict_name(SZD_GATE_FLOOR), "floor");
    assert_string_equal(szd_gate_verdict_name(SZD_GATE_LIMIT), "limit");
    assert_string_equal(szd_gate_verdict_name(SZD_GATE_FROZEN), "frozen");
}

static void test_stop_and_zone(void **state)
{
    (void)state;
    assert_true(szd_gate_stop_ok(1, 1, 1));  /* replicas 2, floor 1: one of two may stop */
    assert_false(szd_gate_stop_ok(0, 2, 1)); /* both of them may not */
    assert_false(szd_gate_stop_ok(1, 1, 2));
    assert_true(szd_gate_stop_ok(0, 0, 1)); /* it holds none of the partition's serving */
    assert_true(szd_gate_stop_ok(0, 1, 0)); /* floor 0 */
    assert_true(szd_gate_zone_ok(NULL, "a"));
    assert_true(szd_gate_zone_ok("", "a"));
    assert_true(szd_gate_zone_ok("a", "a"));
    assert_false(szd_gate_zone_ok("a", "b"));
    assert_false(szd_gate_zone_ok("a", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts),
        cmocka_unit_test(test_planned),
        cmocka_unit_test(test_stop_and_zone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
