/* The brute-force checker's own test: for each property checker.h says it checks, a hand-made
 * assignment that breaks exactly that property must be rejected (with that property's message),
 * and the corrected assignment must pass, in the same test.
 *
 * Two ways to hand-make an assignment. Where the public API allows it, presets: a partition
 * registered with its nodes is taken as it is (no zone, capacity or balance rule applied), so the
 * real sharder holds exactly the bad assignment. Where the sharder refuses to hold it (two
 * replicas on one node, a plan that does not add up, a wrong reason or generation), a lie: this
 * executable is linked with --wrap for the queries and plan accessors the checker reads
 * (tests/CMakeLists.txt), and the wrappers below report the real answer edited as `lie` says.
 * With `lie` empty they pass everything through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "checker.h"
#include "shardz/placement.h"

/* ---- the lie --------------------------------------------------------------------------------- */

#define LIE_MAX 4

/* A replica slot reported on another node (NULL: vacant) than the sharder's. */
typedef struct {
    char part[32];
    unsigned slot;
    const char *node; /* a string literal */
} lie_slot;

/* A generation reported as `value` (pin) or as the real one + `value`. */
typedef struct {
    char part[32];
    bool pin;
    uint64_t value;
} lie_gen;

static struct {
    lie_slot slots[LIE_MAX];
    size_t nslots;
    bool partition_view_only; /* the slots lie in nodes_of_partition only */
    lie_gen gens[LIE_MAX];
    size_t ngens;
    bool rewrite_reason; /* moves with reason_from are reported with reason_to */
    shardz_reason reason_from, reason_to;
    size_t hide;                /* the plan's last `hide` moves are not reported */
    shardz_move extra[LIE_MAX]; /* reported after the plan's own moves */
    char extra_part[LIE_MAX][32];
    size_t nextra;
} lie;

static void lie_reset(void)
{
    memset(&lie, 0, sizeof(lie));
}

static void lie_slot_add(const char *part, unsigned slot, const char *node)
{
    assert_true(lie.nslots < LIE_MAX);
    lie_slot *l = &lie.slots[lie.nslots++];
    snprintf(l->part, sizeof(l->part), "%s", part);
    l->slot = slot;
    l->node = node;
}

static void lie_gen_add(const char *part, bool pin, uint64_t value)
{
    assert_true(lie.ngens < LIE_MAX);
    lie_gen *g = &lie.gens[lie.ngens++];
    snprintf(g->part, sizeof(g->part), "%s", part);
    g->pin = pin;
    g->value = value;
}

static void lie_move_add(const char *part, unsigned slot, const char *from, const char *to,
                         shardz_reason reason)
{
    assert_true(lie.nextra < LIE_MAX);
    size_t i = lie.nextra++;
    snprintf(lie.extra_part[i], sizeof(lie.extra_part[i]), "%s", part);
    lie.extra[i] = (shardz_move){
        .partition = lie.extra_part[i], .slot = slot, .from = from, .to = to, .reason = reason};
}

int __real_shardz_sharder_nodes_of_partition(const shardz_sharder *s, const char *partition,
                                             shardz_replica *out, size_t cap, size_t *n);
int __real_shardz_sharder_partitions_of_node(const shardz_sharder *s, const char *node,
                                             shardz_replica *out, size_t cap, size_t *n);
int __real_shardz_sharder_generation(const shardz_sharder *s, const char *partition, uint64_t *gen);
size_t __real_shardz_plan_count(const shardz_plan *p);
void __real_shardz_plan_move(const shardz_plan *p, size_t i, shardz_move *m);

int __wrap_shardz_sharder_nodes_of_partition(const shardz_sharder *s, const char *partition,
                                             shardz_replica *out, size_t cap, size_t *n);
int __wrap_shardz_sharder_partitions_of_node(const shardz_sharder *s, const char *node,
                                             shardz_replica *out, size_t cap, size_t *n);
int __wrap_shardz_sharder_generation(const shardz_sharder *s, const char *partition, uint64_t *gen);
size_t __wrap_shardz_plan_count(const shardz_plan *p);
void __wrap_shardz_plan_move(const shardz_plan *p, size_t i, shardz_move *m);
size_t __wrap_shardz_plan_count_reason(const shardz_plan *p, shardz_reason r);

/* Copies list[0..k-1] into out[0..cap-1] and sets *n, as the queries do. */
static int emit(const shardz_replica *list, size_t k, shardz_replica *out, size_t cap, size_t *n)
{
    for (size_t i = 0; i < k && i < cap; i++) {
        out[i] = list[i];
    }
    *n = k;
    return 0;
}

int __wrap_shardz_sharder_nodes_of_partition(const shardz_sharder *s, const char *partition,
                                             shardz_replica *out, size_t cap, size_t *n)
{
    shardz_replica real[SHARDZ_MAX_REPLICAS];
    size_t k = 0;
    int rc = __real_shardz_sharder_nodes_of_partition(s, partition, real, SHARDZ_MAX_REPLICAS, &k);
    if (rc != 0 || lie.nslots == 0) {
        return rc != 0 ? rc : emit(real, k, out, cap, n);
    }
    assert_true(k <= SHARDZ_MAX_REPLICAS);
    shardz_replica by_slot[SHARDZ_MAX_REPLICAS];
    bool present[SHARDZ_MAX_REPLICAS] = {false};
    for (size_t i = 0; i < k; i++) {
        by_slot[real[i].slot] = real[i];
        present[real[i].slot] = true;
    }
    for (size_t j = 0; j < lie.nslots; j++) {
        const lie_slot *l = &lie.slots[j];
        if (strcmp(l->part, partition) != 0) {
            continue;
        }
        present[l->slot] = l->node != NULL;
        by_slot[l->slot] = (shardz_replica){
            .partition = partition, .node = l->node, .slot = l->slot, .role = SHARDZ_ROLE_NONE};
    }
    shardz_replica list[SHARDZ_MAX_REPLICAS];
    size_t m = 0;
    for (unsigned slot = 0; slot < SHARDZ_MAX_REPLICAS; slot++) {
        if (present[slot]) {
            list[m++] = by_slot[slot];
        }
    }
    return emit(list, m, out, cap, n);
}

int __wrap_shardz_sharder_partitions_of_node(const shardz_sharder *s, const char *node,
                                             shardz_replica *out, size_t cap, size_t *n)
{
    enum { MAX = 256 };
    shardz_replica list[MAX + LIE_MAX];
    size_t k = 0;
    int rc = __real_shardz_sharder_partitions_of_node(s, node, list, MAX, &k);
    if (rc != 0 || lie.nslots == 0 || lie.partition_view_only) {
        return rc != 0 ? rc : emit(list, k, out, cap, n);
    }
    assert_true(k <= MAX);
    size_t m = 0;
    for (size_t i = 0; i < k; i++) { /* drop every slot the lie puts elsewhere */
        bool lied = false;
        for (size_t j = 0; j < lie.nslots; j++) {
            lied = lied || (strcmp(lie.slots[j].part, list[i].partition) == 0 &&
                            lie.slots[j].slot == list[i].slot);
        }
        if (!lied) {
            list[m++] = list[i];
        }
    }
    for (size_t j = 0; j < lie.nslots; j++) { /* and add the ones it puts here */
        const lie_slot *l = &lie.slots[j];
        if (l->node && strcmp(l->node, node) == 0) {
            list[m++] = (shardz_replica){
                .partition = l->part, .node = l->node, .slot = l->slot, .role = SHARDZ_ROLE_NONE};
        }
    }
    return emit(list, m, out, cap, n);
}

int __wrap_shardz_sharder_generation(const shardz_sharder *s, const char *partition, uint64_t *gen)
{
    int rc = __real_shardz_sharder_generation(s, partition, gen);
    for (size_t j = 0; j < lie.ngens && rc == 0; j++) {
        if (strcmp(lie.gens[j].part, partition) == 0) {
            *gen = lie.gens[j].pin ? lie.gens[j].value : *gen + lie.gens[j].value;
        }
    }
    return rc;
}

size_t __wrap_shardz_plan_count(const shardz_plan *p)
{
    size_t real = __real_shardz_plan_count(p);
    assert_true(lie.hide <= real);
    return real - lie.hide + lie.nextra;
}

void __wrap_shardz_plan_move(const shardz_plan *p, size_t i, shardz_move *m)
{
    size_t shown = __real_shardz_plan_count(p) - lie.hide;
    if (i >= shown) {
        assert_true(i - shown < lie.nextra);
        *m = lie.extra[i - shown];
        return;
    }
    __real_shardz_plan_move(p, i, m);
    if (lie.rewrite_reason && m->reason == lie.reason_from) {
        m->reason = lie.reason_to;
    }
}

/* Counted over the moves as reported, so that a lie about moves is not caught by the count
 * (the per-reason count is not one of the properties under test here). */
size_t __wrap_shardz_plan_count_reason(const shardz_plan *p, shardz_reason r)
{
    size_t c = 0, n = __wrap_shardz_plan_count(p);
    for (size_t i = 0; i < n; i++) {
        shardz_move m;
        __wrap_shardz_plan_move(p, i, &m);
        c += m.reason == r;
    }
    return c;
}

/* ---- helpers --------------------------------------------------------------------------------- */

/* The checker accepts: err is NULL. */
#define PASSES(ctx, expr)                                                                          \
    do {                                                                                           \
        const char *e_ = (expr);                                                                   \
        if (e_) {                                                                                  \
            fail_msg("%s: the checker rejected it: %s", (ctx), e_);                                \
        }                                                                                          \
    } while (0)

/* The checker rejects, and its message contains `want` (the property's tag or wording). */
#define REJECTS(ctx, expr, want)                                                                   \
    do {                                                                                           \
        const char *e_ = (expr);                                                                   \
        if (!e_) {                                                                                 \
            fail_msg("%s: the checker accepted it", (ctx));                                        \
        }                                                                                          \
        if (!strstr(e_, (want))) {                                                                 \
            fail_msg("%s: rejected, but not for \"%s\": %s", (ctx), (want), e_);                   \
        }                                                                                          \
    } while (0)

static ck_world *mk(unsigned replicas)
{
    shardz_sharder_config cfg = {.replicas = replicas};
    ck_world *w = ck_new(&cfg, NULL);
    assert_non_null(w);
    lie_reset();
    return w;
}

/* A partition registered with its replicas already placed (taken as they are). */
static void preset(ck_world *w, const char *id, const char *const *nodes, size_t n, double load0)
{
    shardz_partition_spec sp = {.id = id, .replicas = (unsigned)n, .nnodes = n, .nodes = nodes};
    if (load0 >= 0) {
        sp.nload = 1;
        sp.load[0] = load0;
    }
    assert_int_equal(ck_add_parts(w, &sp, 1), 0);
}

static void unpreset(ck_world *w, const char *id)
{
    assert_int_equal(ck_remove_parts(w, &id, 1), 0);
}

/* ---- state properties: checked on the state as it is (ck_check_now) ---------------------------
 */

/* (1) query agreement: nodes_of_partition and partitions_of_node name the same replicas. */
static void test_rejects_queries_that_disagree(void **state)
{
    (void)state;
    ck_world *w = mk(1);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 2, 0, 0), 0);
    preset(w, "p0", (const char *const[]){"n0"}, 1, -1);
    preset(w, "p1", (const char *const[]){"n1"}, 1, -1);
    PASSES("the sharder's own answers", ck_check_now(w, true));
    /* p0 reported on n1 by the partition view only: n1's own list does not have it */
    lie_slot_add("p0", 0, "n1");
    lie.partition_view_only = true;
    REJECTS("views disagree", ck_check_now(w, false), "partitions_of_node says 1 replicas");
    /* the same replica told the same way by both views is consistent */
    lie.partition_view_only = false;
    PASSES("views agree", ck_check_now(w, false));
    lie_reset();
    ck_free(w);
}

/* (2) distinct nodes: no partition has two replicas on one node. The sharder refuses such a
 * preset, so the queries tell it. */
static void test_rejects_replicas_on_one_node(void **state)
{
    (void)state;
    ck_world *w = mk(2);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 4, 0, 0), 0);
    preset(w, "p0", (const char *const[]){"n0", "n1"}, 2, -1);
    preset(w, "p1", (const char *const[]){"n2", "n3"}, 2, -1);
    lie_slot_add("p0", 1, "n0");
    REJECTS("p0 twice on n0", ck_check_now(w, true),
            "(2) partition p0 has slots 0 and 1 on node n0");
    lie_reset();
    PASSES("p0 on n0 and n1", ck_check_now(w, true));
    ck_free(w);
}

/* (3) zone spread: with two zones of free nodes, R = 2 goes one replica per zone. */
static void test_rejects_replicas_in_one_zone(void **state)
{
    (void)state;
    ck_world *w = mk(2);
    assert_int_equal(ck_add_node(w, "a0", "za", 0, SHARDZ_NODE_ALIVE), 0);
    assert_int_equal(ck_add_node(w, "a1", "za", 0, SHARDZ_NODE_ALIVE), 0);
    assert_int_equal(ck_add_node(w, "b0", "zb", 0, SHARDZ_NODE_ALIVE), 0);
    assert_int_equal(ck_add_node(w, "b1", "zb", 0, SHARDZ_NODE_ALIVE), 0);
    /* one replica per node (balanced), but each partition inside one zone */
    preset(w, "p0", (const char *const[]){"a0", "a1"}, 2, -1);
    preset(w, "p1", (const char *const[]){"b0", "b1"}, 2, -1);
    REJECTS("p0 all in za", ck_check_now(w, true),
            "(3) partition p0 has 2 replicas in zone 'za' and 0 in zone 'zb'");
    unpreset(w, "p0");
    unpreset(w, "p1");
    preset(w, "p0", (const char *const[]){"a0", "b0"}, 2, -1);
    preset(w, "p1", (const char *const[]){"a1", "b1"}, 2, -1);
    PASSES("one replica per zone", ck_check_now(w, true));
    ck_free(w);
}

/* (4) capacity: a node's load stays within its capacity. */
static void test_rejects_load_over_capacity(void **state)
{
    (void)state;
    ck_world *w = mk(1);
    assert_int_equal(ck_add_node(w, "a", NULL, 2.0, SHARDZ_NODE_ALIVE), 0);
    assert_int_equal(ck_add_node(w, "b", NULL, 2.0, SHARDZ_NODE_ALIVE), 0);
    preset(w, "p0", (const char *const[]){"a"}, 1, 1.5);
    preset(w, "p1", (const char *const[]){"a"}, 1, 1.0);
    REJECTS("2.5 on a node of capacity 2", ck_check_now(w, true),
            "(4) node a dimension 0: load 2.5 > capacity 2");
    unpreset(w, "p1");
    preset(w, "p1", (const char *const[]){"b"}, 1, 1.0);
    PASSES("1.5 and 1.0 on two nodes of capacity 2", ck_check_now(w, true));
    ck_free(w);
}

/* (5) balance to the integer optimum: 7 equal replicas on 3 nodes are 3/2/2, and 3/3/1 (off by
 * one replica on one node) is rejected. */
static void test_rejects_balance_off_the_integer_optimum(void **state)
{
    (void)state;
    ck_world *w = mk(1);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 3, 0, 0), 0);
    static const char *const where[7] = {"n0", "n0", "n0", "n1", "n1", "n1", "n2"};
    for (int i = 0; i < 7; i++) {
        char id[8];
        snprintf(id, sizeof(id), "p%d", i);
        preset(w, id, &where[i], 1, -1);
    }
    REJECTS("3/3/1", ck_check_now(w, true), "(5) balance (global, 3 nodes, 7 replicas): max 3");
    unpreset(w, "p5");
    preset(w, "p5", (const char *const[]){"n2"}, 1, -1);
    PASSES("3/2/2", ck_check_now(w, true));
    assert_int_equal(ck_node_count(w, "n0"), 3);
    assert_int_equal(ck_node_count(w, "n1"), 2);
    assert_int_equal(ck_node_count(w, "n2"), 2);
    ck_free(w);
}

/* (6) re-placement: nothing stays on a draining node while an alive node has room. */
static void test_rejects_replica_left_on_draining_node(void **state)
{
    (void)state;
    ck_world *w = mk(1);
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 2, 0, 0), 0);
    assert_int_equal(ck_add_node(w, "d", NULL, 0, SHARDZ_NODE_ALIVE), 0);
    preset(w, "p0", (const char *const[]){"n0"}, 1, -1);
    preset(w, "p1", (const char *const[]){"d"}, 1, -1);
    assert_int_equal(ck_set_state(w, "d", SHARDZ_NODE_DRAINING), 0);
    REJECTS("p1 on draining d", ck_check_now(w, true),
            "(6) partition p1 slot 0 is on d (draining)");
    unpreset(w, "p1");
    preset(w, "p1", (const char *const[]){"n1"}, 1, -1);
    PASSES("p1 on alive n1", ck_check_now(w, true));
    ck_free(w);
}

/* ---- transition properties: checked on a rebalance's plan (ck_rebalance) ----------------------
 */

typedef enum {
    LEAVE_TRUE,       /* what the sharder did */
    LEAVE_SWAP,       /* plus two replicas swapped between nodes that stay */
    LEAVE_HIDE_MOVE,  /* the plan without its last move */
    LEAVE_REASON,     /* the leaver's moves with reason rebalance */
    LEAVE_GEN_STAYED, /* a moved partition keeps its generation */
    LEAVE_GEN_BUMPED, /* a partition that did not move gets a new generation */
} leave_lie;

/* Three nodes hold six partitions two each (placed by the sharder, checked), then n2 leaves
 * and the sharder re-places its two replicas; the checker checks that rebalance as `how` tells
 * it. Returns its verdict (valid until the next checker call on w). */
static const char *leave_step(ck_world *w, leave_lie how)
{
    assert_int_equal(ck_add_nodes_n(w, "n", 0, 3, 0, 0), 0);
    assert_int_equal(ck_add_parts_n(w, "p", 0, 6, 0, -1), 0);
    PASSES("first placement", ck_rebalance(w, 0, NULL));
    for (int i = 0; i < 3; i++) {
        char id[8];
        snprintf(id, sizeof(id), "n%d", i);
        assert_int_equal(ck_node_count(w, id), 2);
    }
    char on[3][8] = {{0}}; /* a partition on each node */
    for (int i = 0; i < 6; i++) {
        char id[8];
        snprintf(id, sizeof(id), "p%d", i);
        const char *node = ck_slot_node(w, id, 0);
        assert_non_null(node);
        snprintf(on[node[1] - '0'], sizeof(on[0]), "%s", id);
    }
    uint64_t gen = 0;
    assert_int_equal(shardz_sharder_generation(ck_sharder(w), on[2], &gen), 0);
    assert_int_equal(ck_remove_node(w, "n2", SHARDZ_REASON_LEAVE), 0);
    lie_reset();
    switch (how) {
    case LEAVE_TRUE:
        break;
    case LEAVE_SWAP:
        lie_move_add(on[0], 0, "n0", "n1", SHARDZ_REASON_REBALANCE);
        lie_move_add(on[1], 0, "n1", "n0", SHARDZ_REASON_REBALANCE);
        lie_slot_add(on[0], 0, "n1");
        lie_slot_add(on[1], 0, "n0");
        lie_gen_add(on[0], false, 1);
        lie_gen_add(on[1], false, 1);
        break;
    case LEAVE_HIDE_MOVE:
        lie.hide = 1;
        break;
    case LEAVE_REASON:
        lie.rewrite_reason = true;
        lie.reason_from = SHARDZ_REASON_LEAVE;
        lie.reason_to = SHARDZ_REASON_REBALANCE;
        break;
    case LEAVE_GEN_STAYED:
        lie_gen_add(on[2], true, gen);
        break;
    case LEAVE_GEN_BUMPED:
        lie_gen_add(on[0], false, 1);
        break;
    }
    const char *err = ck_rebalance(w, 0, NULL);
    lie_reset();
    return err;
}

/* The true leave step passes with movement asserted (the leave oracle vouched for it). */
static void leave_step_passes(void)
{
    ck_world *w = mk(1);
    PASSES("n2 leaves, as the sharder did it", leave_step(w, LEAVE_TRUE));
    const ck_last *ls = ck_last_step(w);
    assert_true(ls->pure_leave);
    assert_int_equal(ls->leave_oracle, 1);
    assert_true(ls->movement_checked);
    assert_true(ls->balance_checked);
    assert_int_equal(ls->plan_moves, 2);
    assert_int_equal(ls->moved, 2);
    ck_free(w);
}

/* (7) minimal movement: after a pure leave only the leaver's replicas move. */
static void test_rejects_moves_beyond_the_leavers(void **state)
{
    (void)state;
    ck_world *w = mk(1);
    REJECTS("a swap between nodes that stay", leave_step(w, LEAVE_SWAP),
            "(7) after nodes left, 2 replicas moved that were not on a leaving node");
    ck_free(w);
    leave_step_passes();
}

/* Plan replay: the previous state plus the plan's moves is the new state. */
static void test_rejects_plan_that_does_not_replay(void **state)
{
    (void)state;
    ck_world *w = mk(1);
    REJECTS("a move missing from the plan", leave_step(w, LEAVE_HIDE_MOVE),
            "replaying the plan: partition");
    ck_free(w);
    leave_step_passes();
}

/* Reasons: a replica moved off a node that was unregistered carries the unregister reason. */
static void test_rejects_wrong_reason(void **state)
{
    (void)state;
    ck_world *w = mk(1);
    REJECTS("leave reported as rebalance", leave_step(w, LEAVE_REASON),
            "(from an unregistered node): reason rebalance, want leave");
    ck_free(w);
    leave_step_passes();
}

/* Generations: bumped when a partition's assignment changes, kept when it does not. */
static void test_rejects_wrong_generations(void **state)
{
    (void)state;
    ck_world *w = mk(1);
    REJECTS("a moved partition keeps its generation", leave_step(w, LEAVE_GEN_STAYED),
            "assignment changed, generation stayed");
    ck_free(w);
    w = mk(1);
    REJECTS("an unmoved partition gets a new one", leave_step(w, LEAVE_GEN_BUMPED),
            "assignment unchanged, generation");
    ck_free(w);
    leave_step_passes();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rejects_queries_that_disagree),
        cmocka_unit_test(test_rejects_replicas_on_one_node),
        cmocka_unit_test(test_rejects_replicas_in_one_zone),
        cmocka_unit_test(test_rejects_load_over_capacity),
        cmocka_unit_test(test_rejects_balance_off_the_integer_optimum),
        cmocka_unit_test(test_rejects_replica_left_on_draining_node),
        cmocka_unit_test(test_rejects_moves_beyond_the_leavers),
        cmocka_unit_test(test_rejects_plan_that_does_not_replay),
        cmocka_unit_test(test_rejects_wrong_reason),
        cmocka_unit_test(test_rejects_wrong_generations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
