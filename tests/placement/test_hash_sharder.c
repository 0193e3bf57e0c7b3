/* Tests for the "hash" kind (src/placement/hash_sharder.c) through the public API only:
 * config checks, exact routing tables, all-or-nothing errors, the slot accessors and restore,
 * and property tests over seeded random membership changes checked against a brute-force
 * recount (every slot owned, floor/ceil balance, the fewest slot moves, stable routing, hash
 * tags colocated, bad input changes nothing, determinism). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shardz/hash.h"
#include "shardz/placement.h"

/* ---- helpers ------------------------------------------------------------------------- */

/* splitmix64, seeded explicitly: the tests' only randomness. */
static uint64_t rng_next(uint64_t *st)
{
    uint64_t z = (*st += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *st, uint32_t n)
{
    return n == 0 ? 0 : (uint32_t)(rng_next(st) % n);
}

/* A "hash" sharder with two alive nodes (partitions need as many eligible nodes as replicas). */
static shardz_sharder *new_hash(uint32_t slots, unsigned replicas)
{
    shardz_sharder_config cfg = {.kind = "hash", .slots = slots, .replicas = replicas};
    shardz_node_spec base[2] = {{.id = "b0", .state = SHARDZ_NODE_ALIVE},
                                {.id = "b1", .state = SHARDZ_NODE_ALIVE}};
    shardz_sharder *s = NULL;

    assert_int_equal(shardz_sharder_new(&cfg, &s), 0);
    assert_non_null(s);
    assert_int_equal(shardz_sharder_register_nodes(s, base, 2), 0);
    return s;
}

/* Partition ids are "p<number>"; slot owners are compared by that number. */
static uint32_t id_num(const char *id)
{
    assert_true(id[0] == 'p');
    return (uint32_t)strtoul(id + 1, NULL, 10);
}

static int add_parts(shardz_sharder *s, const uint32_t *nums, size_t n)
{
    shardz_partition_spec *sp = calloc(n + 1, sizeof *sp);
    char(*ids)[16] = calloc(n + 1, sizeof *ids);
    int rc;

    assert_non_null(sp);
    assert_non_null(ids);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "p%u", nums[i]);
        sp[i].id = ids[i];
    }
    rc = shardz_sharder_register_partitions(s, sp, n);
    free(sp);
    free(ids);
    return rc;
}

static int remove_parts(shardz_sharder *s, const uint32_t *nums, size_t n)
{
    const char **idp = calloc(n + 1, sizeof *idp);
    char(*ids)[16] = calloc(n + 1, sizeof *ids);
    int rc;

    assert_non_null(idp);
    assert_non_null(ids);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "p%u", nums[i]);
        idp[i] = ids[i];
    }
    rc = shardz_sharder_unregister_partitions(s, idp, n);
    free(idp);
    free(ids);
    return rc;
}

/* The slot table read back through shardz_sharder_slot_ranges: owner[slot] = partition number
 * (UINT32_MAX when no partition). Checks the runs are maximal, ordered and cover every slot. */
static uint32_t *read_owners(const shardz_sharder *s, uint32_t S)
{
    uint32_t *owner = malloc((size_t)S * sizeof *owner);
    size_t n = 0;
    shardz_slot_range *r;

    assert_non_null(owner);
    assert_int_equal(shardz_sharder_slot_ranges(s, NULL, NULL, 0, &n), 0);
    r = calloc(n + 1, sizeof *r);
    assert_non_null(r);
    size_t n2 = 0;
    assert_int_equal(shardz_sharder_slot_ranges(s, NULL, r, n, &n2), 0);
    assert_int_equal(n2, n);
    uint32_t next = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(r[i].lo, next);
        assert_true(r[i].hi > r[i].lo && r[i].hi <= S);
        if (i > 0) {
            assert_string_not_equal(r[i].partition, r[i - 1].partition); /* maximal */
        }
        for (uint32_t sl = r[i].lo; sl < r[i].hi; sl++) {
            owner[sl] = id_num(r[i].partition);
        }
        next = r[i].hi;
    }
    if (n == 0) {
        for (uint32_t sl = 0; sl < S; sl++) {
            owner[sl] = UINT32_MAX;
        }
    } else {
        assert_int_equal(next, S);
    }
    free(r);
    return owner;
}

static int cmp_desc(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Brute force: the fewest slots that must move to bring partitions holding c[0..n-1] (0 for
 * new ones; slots of removed partitions are in none) to floor/ceil of S over n. */
static uint32_t min_moves(uint32_t S, const uint32_t *c, uint32_t n)
{
    uint32_t *d = malloc(((size_t)n + 1) * sizeof *d);
    uint32_t kept = 0;

    assert_non_null(d);
    memcpy(d, c, (size_t)n * sizeof *d);
    qsort(d, n, sizeof *d, cmp_desc);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t tgt = S / n + (i < S % n);
        kept += d[i] < tgt ? d[i] : tgt;
    }
    free(d);
    return S - kept;
}

/* ---- tables ------------------------------------------------------------------------- */

static void test_config(void **state)
{
    static const uint32_t bad[] = {1, 2, 32, 63, 100, 3000, SHARDZ_HASH_SLOTS_MAX * 2, UINT32_MAX};
    static const uint32_t good[] = {SHARDZ_HASH_SLOTS_MIN, 1024, SHARDZ_HASH_SLOTS_MAX};
    shardz_sharder *s = NULL;
    uint32_t n = 0;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        shardz_sharder_config cfg = {.kind = "hash", .slots = bad[i]};
        assert_int_equal(shardz_sharder_new(&cfg, &s), SHARDZ_EINVAL);
        assert_null(s);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        s = new_hash(good[i], 1);
        assert_string_equal(shardz_sharder_kind(s), "hash");
        assert_int_equal(shardz_sharder_slot_count(s, &n), 0);
        assert_int_equal(n, good[i]);
        shardz_sharder_free(s);
    }
    s = new_hash(0, 1);
    assert_int_equal(shardz_sharder_slot_count(s, &n), 0);
    assert_int_equal(n, SHARDZ_HASH_SLOTS_DEFAULT);
    shardz_sharder_free(s);
}

static void test_not_hash_kind(void **state)
{
    shardz_sharder_config cfg = {.kind = "replica"};
    shardz_sharder *s = NULL;
    const char *p = NULL;
    uint32_t n32;
    size_t n;

    (void)state;
    assert_int_equal(shardz_sharder_new(&cfg, &s), 0);
    assert_int_equal(shardz_sharder_partition_for_key(s, "k", 1, &p), SHARDZ_ENOTSUP);
    assert_int_equal(shardz_sharder_slot_count(s, &n32), SHARDZ_ENOTSUP);
    assert_int_equal(shardz_sharder_slot_ranges(s, NULL, NULL, 0, &n), SHARDZ_ENOTSUP);
    assert_int_equal(shardz_sharder_restore_slots(s, NULL, 0), SHARDZ_ENOTSUP);
    shardz_sharder_free(s);
}

/* Exact routing for 64 slots: 4 partitions hold 16 each in order, and the keys' slots (from
 * test_keyhash's vectors: foo 10, a 31, bar 34, user1000 52) decide. */
static void test_golden_routing(void **state)
{
    shardz_sharder *s = new_hash(64, 1);
    const char *p = NULL;
    shardz_slot_range r[8];
    size_t n = 0;

    (void)state;
    assert_int_equal(shardz_sharder_partition_for_key(s, "foo", 3, &p), SHARDZ_ENOENT);
    assert_int_equal(shardz_sharder_slot_ranges(s, NULL, r, 8, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(add_parts(s, (uint32_t[]){0, 1, 2, 3}, 4), 0);
    assert_int_equal(shardz_sharder_slot_ranges(s, NULL, r, 8, &n), 0);
    assert_int_equal(n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        char id[8];
        snprintf(id, sizeof id, "p%u", i);
        assert_string_equal(r[i].partition, id);
        assert_int_equal(r[i].lo, 16 * i);
        assert_int_equal(r[i].hi, 16 * i + 16);
    }
    static const struct {
        const char *key, *part;
    } routes[] = {
        {"foo", "p0"},
        {"a", "p1"},
        {"bar", "p2"},
        {"user1000", "p3"},
        {"{user1000}.following", "p3"},
        {"x{foo}y", "p0"},
        {"{a}", "p1"},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        assert_int_equal(
            shardz_sharder_partition_for_key(s, routes[i].key, strlen(routes[i].key), &p), 0);
        assert_string_equal(p, routes[i].part);
    }
    /* "" is slot 2: p0. A NULL key of length 0 is the empty key. */
    assert_int_equal(shardz_sharder_partition_for_key(s, NULL, 0, &p), 0);
    assert_string_equal(p, "p0");
    assert_int_equal(shardz_sharder_partition_for_key(s, NULL, 1, &p), SHARDZ_EINVAL);
    assert_int_equal(shardz_sharder_partition_for_key(s, "k", 1, NULL), SHARDZ_EINVAL);

    /* p0 leaves: its 16 slots go to the others (6, 5, 5 more: 22, 21, 21), p3 takes index 0
     * inside, which must not show: routing stays by id. */
    assert_int_equal(remove_parts(s, (uint32_t[]){0}, 1), 0);
    assert_int_equal(shardz_sharder_partition_for_key(s, "bar", 3, &p), 0);
    assert_string_equal(p, "p2");
    assert_int_equal(shardz_sharder_partition_for_key(s, "user1000", 8, &p), 0);
    assert_string_equal(p, "p3");
    assert_int_equal(shardz_sharder_partition_for_key(s, "a", 1, &p), 0);
    assert_string_equal(p, "p1");
    assert_int_equal(shardz_sharder_slot_ranges(s, "p3", r, 8, &n), 0);
    uint32_t held = 0;
    for (size_t i = 0; i < n && i < 8; i++) {
        assert_string_equal(r[i].partition, "p3");
        held += r[i].hi - r[i].lo;
    }
    assert_true(held == 21 || held == 22);
    assert_int_equal(shardz_sharder_slot_ranges(s, "p0", r, 8, &n), SHARDZ_ENOENT);
    assert_int_equal(shardz_sharder_slot_ranges(s, "p1", NULL, 1, &n), SHARDZ_EINVAL);

    assert_int_equal(remove_parts(s, (uint32_t[]){1, 2, 3}, 3), 0);
    assert_int_equal(shardz_sharder_partition_for_key(s, "foo", 3, &p), SHARDZ_ENOENT);
    shardz_sharder_free(s);
}

/* Errors leave the slot table (and the partitions) as they were. */
static void test_all_or_nothing(void **state)
{
    shardz_sharder *s = new_hash(64, 1);
    uint32_t nums[70];
    uint32_t *before, *after;

    (void)state;
    for (uint32_t i = 0; i < 70; i++) {
        nums[i] = i;
    }
    assert_int_equal(add_parts(s, nums, 65), SHARDZ_ENOSPC); /* more partitions than slots */
    assert_int_equal(add_parts(s, nums, 10), 0);
    before = read_owners(s, 64);

    assert_int_equal(add_parts(s, nums + 10, 55), SHARDZ_ENOSPC);
    assert_int_equal(add_parts(s, (uint32_t[]){20, 21, 20}, 3), SHARDZ_EEXIST);
    assert_int_equal(add_parts(s, (uint32_t[]){20, 3}, 2), SHARDZ_EEXIST);
    shardz_partition_spec bad = {.id = "p30", .replicas = SHARDZ_MAX_REPLICAS + 1};
    assert_int_equal(shardz_sharder_register_partitions(s, &bad, 1), SHARDZ_EINVAL);
    assert_int_equal(remove_parts(s, (uint32_t[]){1, 2, 99}, 3), SHARDZ_ENOENT);
    assert_int_equal(shardz_sharder_unregister_partitions(s, NULL, 2), SHARDZ_EINVAL);
    const char *withnull[] = {"p1", NULL};
    assert_int_equal(shardz_sharder_unregister_partitions(s, withnull, 2), SHARDZ_EINVAL);
    /* Restores that must fail: gap, overlap, unknown id, empty / out-of-range run, no id. */
    shardz_slot_range gap[] = {{"p1", 0, 30}, {"p2", 31, 64}};
    shardz_slot_range overlap[] = {{"p1", 0, 33}, {"p2", 32, 64}};
    shardz_slot_range unknown[] = {{"p1", 0, 32}, {"p77", 32, 64}};
    shardz_slot_range empty[] = {{"p1", 0, 64}, {"p2", 5, 5}};
    shardz_slot_range past[] = {{"p1", 0, 32}, {"p2", 32, 65}};
    shardz_slot_range noid[] = {{"p1", 0, 32}, {NULL, 32, 64}};
    assert_int_equal(shardz_sharder_restore_slots(s, gap, 2), SHARDZ_EINVAL);
    assert_int_equal(shardz_sharder_restore_slots(s, overlap, 2), SHARDZ_EINVAL);
    assert_int_equal(shardz_sharder_restore_slots(s, unknown, 2), SHARDZ_ENOENT);
    assert_int_equal(shardz_sharder_restore_slots(s, empty, 2), SHARDZ_EINVAL);
    assert_int_equal(shardz_sharder_restore_slots(s, past, 2), SHARDZ_EINVAL);
    assert_int_equal(shardz_sharder_restore_slots(s, noid, 2), SHARDZ_EINVAL);
    assert_int_equal(shardz_sharder_restore_slots(s, NULL, 0), SHARDZ_EINVAL);
    assert_int_equal(shardz_sharder_restore_slots(s, NULL, 1), SHARDZ_EINVAL);

    after = read_owners(s, 64);
    assert_memory_equal(before, after, 64 * sizeof *before);
    free(after);

    /* Repeated ids in one unregister count once. */
    assert_int_equal(remove_parts(s, (uint32_t[]){4, 4, 9}, 3), 0);
    after = read_owners(s, 64);
    for (uint32_t sl = 0; sl < 64; sl++) {
        if (before[sl] != 4 && before[sl] != 9) {
            assert_int_equal(after[sl], before[sl]);
        } else {
            assert_true(after[sl] != 4 && after[sl] != 9);
        }
    }
    free(after);
    /* Filling the slot space exactly is fine; one more is not. */
    assert_int_equal(add_parts(s, nums + 10, 56), 0);
    assert_int_equal(add_parts(s, nums + 66, 1), SHARDZ_ENOSPC);
    free(before);
    shardz_sharder_free(s);
}

/* A persisted table comes back exactly; the next change rebalances it with the fewest moves. */
static void test_restore(void **state)
{
    shardz_sharder *s = new_hash(64, 1);
    shardz_slot_range r[] = {{"p2", 40, 64}, {"p0", 0, 30}, {"p1", 30, 40}}; /* any order */
    uint32_t *owner;

    (void)state;
    assert_int_equal(shardz_sharder_restore_slots(s, r, 3), SHARDZ_EINVAL); /* none yet */
    assert_int_equal(shardz_sharder_restore_slots(s, NULL, 0), 0);
    assert_int_equal(add_parts(s, (uint32_t[]){0, 1, 2, 3}, 4), 0);
    assert_int_equal(shardz_sharder_restore_slots(s, r, 3), 0); /* p3 holds nothing */
    owner = read_owners(s, 64);
    for (uint32_t sl = 0; sl < 64; sl++) {
        assert_int_equal(owner[sl], sl < 30 ? 0u : sl < 40 ? 1u : 2u);
    }
    size_t n = 9;
    assert_int_equal(shardz_sharder_slot_ranges(s, "p3", NULL, 0, &n), 0);
    assert_int_equal(n, 0);
    const char *p;
    assert_int_equal(shardz_sharder_partition_for_key(s, "user1000", 8, &p), 0); /* slot 52 */
    assert_string_equal(p, "p2");

    /* Adding p4 over 30/10/24/0/0: targets 13,13,13,13,12 -> 17 + 11 = 28 slots move. */
    assert_int_equal(add_parts(s, (uint32_t[]){4}, 1), 0);
    uint32_t *now = read_owners(s, 64), moved = 0;
    for (uint32_t sl = 0; sl < 64; sl++) {
        moved += now[sl] != owner[sl];
    }
    assert_int_equal(moved, min_moves(64, (uint32_t[]){30, 10, 24, 0, 0}, 5));
    assert_int_equal(moved, 28);
    free(now);
    free(owner);
    shardz_sharder_free(s);
}

/* Keys route to partitions whose replicas the replica planner places on nodes. */
static void test_with_nodes(void **state)
{
    shardz_sharder *s = new_hash(1024, 2);
    shardz_node_spec nodes[3] = {
        {.id = "n0", .state = SHARDZ_NODE_ALIVE},
        {.id = "n1", .state = SHARDZ_NODE_ALIVE},
        {.id = "n2", .state = SHARDZ_NODE_ALIVE},
    };
    shardz_plan *plan = NULL;
    uint32_t nums[12];
    const char *p = NULL;
    shardz_replica rep[4];
    size_t n = 0;

    (void)state;
    for (uint32_t i = 0; i < 12; i++) {
        nums[i] = i;
    }
    assert_int_equal(shardz_sharder_register_nodes(s, nodes, 3), 0);
    assert_int_equal(add_parts(s, nums, 12), 0);
    assert_int_equal(shardz_sharder_rebalance(s, 0, &plan), 0);
    assert_int_equal(shardz_plan_count(plan), 24);
    assert_int_equal(shardz_plan_missing(plan), 0);
    shardz_plan_free(plan);
    assert_int_equal(shardz_sharder_partition_for_key(s, "{user1000}.following", 20, &p), 0);
    assert_int_equal(shardz_sharder_nodes_of_partition(s, p, rep, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_string_not_equal(rep[0].node, rep[1].node);

    /* Removing partitions keeps the remaining replicas where they are. */
    assert_int_equal(remove_parts(s, (uint32_t[]){0, 5, 11}, 3), 0);
    assert_int_equal(shardz_sharder_partition_for_key(s, "{user1000}.following", 20, &p), 0);
    assert_int_equal(shardz_sharder_nodes_of_partition(s, p, rep, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(shardz_sharder_rebalance(s, 0, &plan), 0);
    shardz_plan_free(plan);
    shardz_sharder_free(s);
}

/* ---- properties ------------------------------------------------------------------------ */

/* A mirror of the registered partition numbers. */
typedef struct {
    uint32_t *nums;
    uint32_t n;
    uint32_t next; /* next fresh number */
} mirror;

/* live[num] for every number ever handed out: registered now or not (caller frees). */
static bool *mirror_live(const mirror *mr)
{
    bool *live = calloc((size_t)mr->next + 1, sizeof *live);

    assert_non_null(live);
    for (uint32_t i = 0; i < mr->n; i++) {
        live[mr->nums[i]] = true;
    }
    return live;
}

/* Every slot owned by a registered partition, each holding floor/ceil (unless restored). */
static void check_table(const uint32_t *owner, uint32_t S, const mirror *mr, bool balanced)
{
    uint32_t *cnt = calloc((size_t)mr->next + 1, sizeof *cnt);
    bool *live = mirror_live(mr);

    assert_non_null(cnt);
    for (uint32_t sl = 0; sl < S; sl++) {
        if (mr->n == 0) {
            assert_int_equal(owner[sl], UINT32_MAX);
            continue;
        }
        assert_true(owner[sl] < mr->next);
        assert_true(live[owner[sl]]);
        cnt[owner[sl]]++;
    }
    if (balanced && mr->n > 0) {
        uint32_t lo = S / mr->n, hi = lo + (S % mr->n != 0);
        for (uint32_t i = 0; i < mr->n; i++) {
            assert_true(cnt[mr->nums[i]] >= lo && cnt[mr->nums[i]] <= hi);
        }
    }
    free(cnt);
    free(live);
}

/* Routing agrees with the table, and tagged keys colocate. */
static void check_routing(const shardz_sharder *s, const uint32_t *owner, uint32_t S, uint64_t *rng,
                          uint32_t nkeys)
{
    for (uint32_t i = 0; i < nkeys; i++) {
        char key[48], key2[48];
        const char *p = NULL, *p2 = NULL;
        uint64_t r = rng_next(rng);
        int len = snprintf(key, sizeof key, "user:%llu", (unsigned long long)(r % 100000));
        int len2 = snprintf(key2, sizeof key2, "x{%s}y", key);
        uint32_t slot = shardz_key_slot(key, (size_t)len, S);

        if (owner[0] == UINT32_MAX) {
            assert_int_equal(shardz_sharder_partition_for_key(s, key, (size_t)len, &p),
                             SHARDZ_ENOENT);
            continue;
        }
        assert_int_equal(shardz_sharder_partition_for_key(s, key, (size_t)len, &p), 0);
        assert_int_equal(id_num(p), owner[slot]);
        assert_int_equal(shardz_sharder_partition_for_key(s, key2, (size_t)len2, &p2), 0);
        assert_string_equal(p, p2);
    }
}

/* Keys whose slot kept its partition still route to it (checked over a fixed key sample). */
static void check_stable(const uint32_t *before, const uint32_t *after, const uint32_t *kslot,
                         const uint32_t *kbefore, const uint32_t *kafter, uint32_t nkeys)
{
    for (uint32_t i = 0; i < nkeys; i++) {
        if (before[kslot[i]] == after[kslot[i]]) {
            assert_int_equal(kbefore[i], kafter[i]);
        }
    }
}

#define NKEYS 64

/* How often each kind of step ran, printed so a run shows the checks were exercised. */
static struct {
    size_t adds, add_enospc, add_eexist, removes, remove_enoent, restores, plans, moved_checked;
} counters;

/* The partition number each sample key routes to now (UINT32_MAX: none). */
static void route_sample(const shardz_sharder *s, uint32_t *out)
{
    for (uint32_t i = 0; i < NKEYS; i++) {
        char key[16];
        int len = snprintf(key, sizeof key, "k%u", i * 7919u);
        const char *p = NULL;
        int rc = shardz_sharder_partition_for_key(s, key, (size_t)len, &p);

        out[i] = rc == 0 ? id_num(p) : UINT32_MAX;
    }
}

static void run_seed(uint64_t seed, uint32_t **final_owner, uint32_t *final_S)
{
    uint64_t rng = seed;
    uint32_t S = SHARDZ_HASH_SLOTS_MIN << rng_below(&rng, 6); /* 64..2048 */
    shardz_sharder *s = new_hash(S, 1 + rng_below(&rng, 2));
    mirror mr = {calloc(S + 1, sizeof(uint32_t)), 0, 0};
    uint32_t kslot[NKEYS], kbefore[NKEYS], kafter[NKEYS];
    bool balanced = true;
    shardz_node_spec nodes[4] = {{.id = "n0", .state = SHARDZ_NODE_ALIVE},
                                 {.id = "n1", .state = SHARDZ_NODE_ALIVE},
                                 {.id = "n2", .state = SHARDZ_NODE_ALIVE},
                                 {.id = "n3", .state = SHARDZ_NODE_ALIVE}};

    assert_non_null(mr.nums);
    assert_int_equal(shardz_sharder_register_nodes(s, nodes, 4), 0);
    for (uint32_t i = 0; i < NKEYS; i++) {
        char key[16];
        int len = snprintf(key, sizeof key, "k%u", i * 7919u);
        kslot[i] = shardz_key_slot(key, (size_t)len, S);
    }
    for (int step = 0; step < 40; step++) {
        uint32_t *before = read_owners(s, S);
        uint32_t what = rng_below(&rng, 10);
        uint32_t *c = calloc((size_t)mr.n + 64 + S, sizeof *c);
        uint32_t nc = 0;
        bool changed = false, grew = false, restored = false;
        uint32_t oldn = mr.n;

        assert_non_null(c);
        route_sample(s, kbefore);
        if (what < 5) {
            /* Register a batch of fresh ids: sometimes more than fit (ENOSPC). */
            uint32_t k =
                rng_below(&rng, 5) == 0 ? rng_below(&rng, S - mr.n + 8) : 1 + rng_below(&rng, 6);
            uint32_t *nums = calloc(k + 1, sizeof *nums);
            assert_non_null(nums);
            for (uint32_t i = 0; i < k; i++) {
                nums[i] = mr.next + i;
            }
            /* Sometimes repeat an id inside the batch or name a registered one: EEXIST. */
            uint32_t dup = k > 1 ? rng_below(&rng, 8) : 7;
            if (dup == 0) {
                nums[k - 1] = nums[0];
            } else if (dup == 1 && mr.n > 0) {
                nums[k - 1] = mr.nums[rng_below(&rng, mr.n)];
            } else {
                dup = 7;
            }
            int rc = add_parts(s, nums, k);
            if (mr.n + k > S) {
                assert_int_equal(rc, SHARDZ_ENOSPC);
                counters.add_enospc++;
            } else if (dup != 7) {
                assert_int_equal(rc, SHARDZ_EEXIST);
                counters.add_eexist++;
            } else {
                assert_int_equal(rc, 0);
                counters.adds++;
                for (uint32_t i = 0; i < k; i++) {
                    mr.nums[mr.n++] = nums[i];
                }
                mr.next += k;
                changed = grew = true;
            }
            free(nums);
        } else if (what < 8) {
            /* Unregister a random subset (maybe with a repeat), sometimes with an unknown id. */
            uint32_t k = mr.n == 0 ? 0 : 1 + rng_below(&rng, mr.n);
            bool unknown = rng_below(&rng, 6) == 0;
            uint32_t *nums = calloc(k + 2, sizeof *nums);
            assert_non_null(nums);
            /* Shuffle the mirror, take the first k. */
            for (uint32_t i = mr.n; i > 1; i--) {
                uint32_t j = rng_below(&rng, i), x = mr.nums[i - 1];
                mr.nums[i - 1] = mr.nums[j];
                mr.nums[j] = x;
            }
            memcpy(nums, mr.nums, (size_t)k * sizeof *nums);
            uint32_t total = k;
            if (k > 0 && rng_below(&rng, 3) == 0) {
                nums[total++] = nums[0];
            }
            if (unknown) {
                nums[total++] = mr.next + 1000;
            }
            int rc = remove_parts(s, nums, total);
            if (unknown) {
                assert_int_equal(rc, SHARDZ_ENOENT);
                counters.remove_enoent++;
            } else if (total > 0) {
                assert_int_equal(rc, 0);
                counters.removes++;
                memmove(mr.nums, mr.nums + k, (size_t)(mr.n - k) * sizeof *mr.nums);
                mr.n -= k;
                changed = true;
            }
            free(nums);
        } else if (what < 9 && mr.n > 0) {
            /* Restore a random, unbalanced table over the registered partitions. */
            uint32_t nr = 1 + rng_below(&rng, 12);
            shardz_slot_range *r = calloc(nr, sizeof *r);
            char(*ids)[16] = calloc(nr, sizeof *ids);
            uint32_t lo = 0;
            assert_non_null(r);
            assert_non_null(ids);
            for (uint32_t i = 0; i < nr; i++) {
                uint32_t left = S - lo, rest = nr - i - 1;
                uint32_t len = i + 1 == nr ? left : 1 + rng_below(&rng, left - rest);
                snprintf(ids[i], sizeof ids[i], "p%u", mr.nums[rng_below(&rng, mr.n)]);
                r[i].partition = ids[i];
                r[i].lo = lo;
                r[i].hi = lo + len;
                lo += len;
            }
            assert_int_equal(shardz_sharder_restore_slots(s, r, nr), 0);
            uint32_t *now = read_owners(s, S);
            for (uint32_t i = 0; i < nr; i++) {
                for (uint32_t sl = r[i].lo; sl < r[i].hi; sl++) {
                    assert_int_equal(now[sl], id_num(r[i].partition));
                }
            }
            free(now);
            free(r);
            free(ids);
            balanced = false;
            restored = true;
            counters.restores++;
        } else {
            /* A plan places the replicas; the slot table does not change. */
            shardz_plan *plan = NULL;
            assert_int_equal(shardz_sharder_rebalance(s, 0, &plan), 0);
            shardz_plan_free(plan);
            counters.plans++;
        }

        uint32_t *after = read_owners(s, S);
        route_sample(s, kafter);
        if (!changed) {
            if (!restored) { /* errors and plans leave the table alone */
                assert_memory_equal(before, after, (size_t)S * sizeof *before);
            }
        } else {
            /* Brute force: the counts the partitions that stay (and the new ones) had. */
            uint32_t moved = 0;
            bool *live = mirror_live(&mr);
            uint32_t *had = calloc((size_t)mr.next + 1, sizeof *had);
            assert_non_null(had);
            for (uint32_t sl = 0; sl < S; sl++) {
                if (before[sl] != UINT32_MAX) {
                    had[before[sl]]++;
                }
            }
            for (uint32_t i = 0; i < mr.n; i++) {
                c[nc++] = had[mr.nums[i]];
            }
            free(had);
            for (uint32_t sl = 0; sl < S; sl++) {
                if (before[sl] != after[sl]) {
                    moved++;
                    if (balanced && grew) {
                        assert_true(after[sl] >= mr.next - (mr.n - oldn)); /* to new ones */
                    } else if (balanced && oldn > 0) {
                        assert_false(live[before[sl]]); /* from removed ones */
                    }
                }
            }
            free(live);
            if (mr.n > 0) {
                uint32_t want = oldn == 0 ? S : min_moves(S, c, nc);
                assert_int_equal(moved, want);
                counters.moved_checked++;
            }
            balanced = true;
        }
        check_table(after, S, &mr, balanced);
        check_routing(s, after, S, &rng, 16);
        check_stable(before, after, kslot, kbefore, kafter, NKEYS);
        free(before);
        free(after);
        free(c);
    }
    *final_owner = read_owners(s, S);
    *final_S = S;
    free(mr.nums);
    shardz_sharder_free(s);
}

static void test_property_random(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 150; seed++) {
        uint32_t *a, *b, Sa, Sb;

        run_seed(seed, &a, &Sa);
        run_seed(seed, &b, &Sb); /* deterministic: same seed, same table */
        assert_int_equal(Sa, Sb);
        assert_memory_equal(a, b, (size_t)Sa * sizeof *a);
        free(a);
        free(b);
    }
    print_message("adds %zu (enospc %zu, eexist %zu), removes %zu (enoent %zu), restores %zu, "
                  "plans %zu, movement checked %zu (counts doubled: each seed runs twice)\n",
                  counters.adds, counters.add_enospc, counters.add_eexist, counters.removes,
                  counters.remove_enoent, counters.restores, counters.plans,
                  counters.moved_checked);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),          cmocka_unit_test(test_not_hash_kind),
        cmocka_unit_test(test_golden_routing),  cmocka_unit_test(test_all_or_nothing),
        cmocka_unit_test(test_restore),         cmocka_unit_test(test_with_nodes),
        cmocka_unit_test(test_property_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
