/* shardz_sharder_move, the operator's one-replica move: it lands where asked with reason
 * operator and a new generation, and every refusal (unknown ids, no such slot, a node that
 * may not take it) leaves the sharder exactly as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "shardz/placement.h"

static shardz_sharder *setup_sharder(void)
{
    shardz_sharder_config cfg = {.replicas = 2, .roles = 1};
    shardz_sharder *s = NULL;
    assert_int_equal(shardz_sharder_new(&cfg, &s), 0);
    static const char *const ids[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        shardz_node_spec n = {.id = ids[i], .state = SHARDZ_NODE_ALIVE};
        assert_int_equal(shardz_sharder_register_nodes(s, &n, 1), 0);
    }
    shardz_partition_spec p = {.id = "p0"};
    assert_int_equal(shardz_sharder_register_partitions(s, &p, 1), 0);
    shardz_plan *plan = NULL;
    assert_int_equal(shardz_sharder_rebalance(s, 0, &plan), 0);
    shardz_plan_free(plan);
    return s;
}

/* The nodes holding p0's two slots. */
static void holders(shardz_sharder *s, const char **n0, const char **n1)
{
    shardz_replica r[2];
    size_t n = 0;
    assert_int_equal(shardz_sharder_nodes_of_partition(s, "p0", r, 2, &n), 0);
    assert_int_equal(n, 2);
    *n0 = r[0].node;
    *n1 = r[1].node;
}

static const char *free_node(const char *n0, const char *n1)
{
    static const char *const ids[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(ids[i], n0) != 0 && strcmp(ids[i], n1) != 0) {
            return ids[i];
        }
    }
    return NULL;
}

static void test_move_lands(void **state)
{
    (void)state;
    shardz_sharder *s = setup_sharder();
    const char *n0, *n1;
    holders(s, &n0, &n1);
    char keep1[8];
    snprintf(keep1, sizeof keep1, "%s", n1);
    const char *to = free_node(n0, n1);
    uint64_t g0, g1;
    assert_int_equal(shardz_sharder_generation(s, "p0", &g0), 0);
    shardz_plan *plan = NULL;
    assert_int_equal(shardz_sharder_move(s, "p0", 0, to, &plan), 0);
    assert_int_equal(shardz_plan_count(plan), 1);
    shardz_move mv;
    shardz_plan_move(plan, 0, &mv);
    assert_int_equal(mv.reason, SHARDZ_REASON_OPERATOR);
    assert_string_equal(mv.to, to);
    assert_int_equal(mv.slot, 0);
    shardz_plan_free(plan);
    holders(s, &n0, &n1);
    assert_string_equal(n0, to);
    assert_string_equal(n1, keep1);
    assert_int_equal(shardz_sharder_generation(s, "p0", &g1), 0);
    assert_true(g1 > g0);
    shardz_sharder_free(s);
}

static void test_refusals_change_nothing(void **state)
{
    (void)state;
    shardz_sharder *s = setup_sharder();
    const char *n0, *n1;
    holders(s, &n0, &n1);
    char h0[8], h1[8];
    snprintf(h0, sizeof h0, "%s", n0);
    snprintf(h1, sizeof h1, "%s", n1);
    const char *to = free_node(h0, h1);
    shardz_sharder_stats before, after;
    shardz_sharder_get_stats(s, &before);
    shardz_plan *plan = (shardz_plan *)1;
    assert_int_equal(shardz_sharder_move(s, "nope", 0, to, &plan), SHARDZ_ENOENT);
    assert_null(plan);
    assert_int_equal(shardz_sharder_move(s, "p0", 0, "nope", &plan), SHARDZ_ENOENT);
    assert_int_equal(shardz_sharder_move(s, "p0", 2, to, &plan), SHARDZ_ERANGE);
    assert_int_equal(shardz_sharder_move(s, "p0", 0, h1, &plan), SHARDZ_EINVAL); /* holds it */
    assert_int_equal(shardz_sharder_move(s, "p0", 0, h0, &plan), SHARDZ_EEXIST); /* already */
    assert_int_equal(shardz_sharder_set_node_state(s, to, SHARDZ_NODE_DEAD), 0);
    shardz_sharder_get_stats(s, &before);
    assert_int_equal(shardz_sharder_move(s, "p0", 0, to, &plan), SHARDZ_EINVAL); /* not alive */
    assert_int_equal(shardz_sharder_move(s, NULL, 0, to, &plan), SHARDZ_EINVAL);
    shardz_sharder_get_stats(s, &after);
    assert_int_equal(after.revision, before.revision);
    holders(s, &n0, &n1);
    assert_string_equal(n0, h0);
    assert_string_equal(n1, h1);
    shardz_sharder_free(s);
}

/* shardz_sharder_swap_slots (a primary handoff): the two slots' nodes trade places, each node's
 * own list names its new slot, the generation stays; bad slots change nothing. */
static void test_swap_slots(void **state)
{
    (void)state;
    shardz_sharder *s = setup_sharder();
    const char *n0, *n1;
    holders(s, &n0, &n1);
    char was0[8], was1[8];
    snprintf(was0, sizeof was0, "%s", n0);
    snprintf(was1, sizeof was1, "%s", n1);
    uint64_t g0, g1;
    assert_int_equal(shardz_sharder_generation(s, "p0", &g0), 0);
    assert_int_equal(shardz_sharder_swap_slots(s, "p0", 0, 1), 0);
    holders(s, &n0, &n1);
    assert_string_equal(n0, was1);
    assert_string_equal(n1, was0);
    shardz_replica r[1];
    size_t n = 0;
    assert_int_equal(shardz_sharder_partitions_of_node(s, was1, r, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(r[0].slot, 0);
    assert_int_equal(r[0].role, SHARDZ_ROLE_PRIMARY);
    assert_int_equal(shardz_sharder_generation(s, "p0", &g1), 0);
    assert_int_equal(g1, g0);
    assert_int_equal(shardz_sharder_swap_slots(s, "p0", 0, 0), SHARDZ_ERANGE);
    assert_int_equal(shardz_sharder_swap_slots(s, "p0", 0, 2), SHARDZ_ERANGE);
    assert_int_equal(shardz_sharder_swap_slots(s, "nope", 0, 1), SHARDZ_ENOENT);
    holders(s, &n0, &n1);
    assert_string_equal(n0, was1);
    /* a plan after the swap still sees a balanced, consistent model: nothing to do */
    shardz_plan *plan = NULL;
    assert_int_equal(shardz_sharder_rebalance(s, 0, &plan), 0);
    assert_int_equal(shardz_plan_count(plan), 0);
    shardz_plan_free(plan);
    shardz_sharder_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_move_lands),
        cmocka_unit_test(test_refusals_change_nothing),
        cmocka_unit_test(test_swap_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
