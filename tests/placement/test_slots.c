/* Tests for src/placement/slots.c: exact tables for small slot spaces, then property tests over
 * seeded random operation sequences checked against a brute-force recount (balance, every
 * slot owned, the fewest moves, bad input changes nothing, determinism). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "placement/slots.h"
#include "shardz/error.h"
#include "shardz/hash.h"

/* ---- helpers ------------------------------------------------------------------------- */

/* splitmix64: the tests' only source of randomness, seeded explicitly. */
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

/* A copy of a table's observable state. */
typedef struct {
    uint32_t nparts;
    uint32_t *owner;
    uint32_t *count;
} snap;

static snap snap_take(const pz_slots *t)
{
    snap s;

    s.nparts = t->nparts;
    s.owner = malloc((size_t)t->nslots * sizeof *s.owner);
    s.count = malloc(((size_t)t->nparts + 1) * sizeof *s.count);
    assert_non_null(s.owner);
    assert_non_null(s.count);
    memcpy(s.owner, t->owner, (size_t)t->nslots * sizeof *s.owner);
    if (t->nparts > 0) {
        memcpy(s.count, t->count, (size_t)t->nparts * sizeof *s.count);
    }
    return s;
}

static void snap_free(snap *s)
{
    free(s->owner);
    free(s->count);
}

static void assert_unchanged(const pz_slots *t, const snap *s)
{
    assert_int_equal(t->nparts, s->nparts);
    assert_memory_equal(t->owner, s->owner, (size_t)t->nslots * sizeof *s->owner);
    if (s->nparts > 0) {
        assert_memory_equal(t->count, s->count, (size_t)s->nparts * sizeof *s->count);
    }
}

/* Every slot owned by a valid partition (none when P == 0), counts equal a recount. */
static void check_owned(const pz_slots *t)
{
    uint32_t *rc = calloc((size_t)t->nparts + 1, sizeof *rc);

    assert_non_null(rc);
    assert_true(t->nparts <= t->nslots);
    for (uint32_t s = 0; s < t->nslots; s++) {
        if (t->nparts == 0) {
            assert_int_equal(t->owner[s], PZ_SLOTS_NONE);
            continue;
        }
        assert_true(t->owner[s] < t->nparts);
        rc[t->owner[s]]++;
    }
    for (uint32_t i = 0; i < t->nparts; i++) {
        assert_int_equal(t->count[i], rc[i]);
        assert_int_equal(pz_slots_count(t, i), rc[i]);
    }
    free(rc);
}

/* Owned, and every partition holds floor(S/P) or ceil(S/P) slots. */
static void check_balanced(const pz_slots *t)
{
    check_owned(t);
    if (t->nparts == 0) {
        return;
    }
    uint32_t lo = t->nslots / t->nparts;
    uint32_t hi = lo + (t->nslots % t->nparts != 0);
    for (uint32_t i = 0; i < t->nparts; i++) {
        assert_true(t->count[i] >= lo && t->count[i] <= hi);
    }
}

static int cmp_desc(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Brute force: the fewest slots that must move to bring partitions whose current counts are
 * c[0..n-1] (0 for new ones) to a floor/ceil balance over n partitions of S slots. The best
 * balance lets the partitions holding the most keep ceil: sort, and count what can stay. */
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

static void test_init_errors(void **state)
{
    static const uint32_t bad[] = {0, 3, 6, 100, 1000, SHARDZ_HASH_SLOTS_MAX * 2, UINT32_MAX};
    pz_slots t;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pz_slots_init(&t, bad[i]), SHARDZ_EINVAL);
        assert_null(t.owner);
        pz_slots_destroy(&t);
    }
    assert_int_equal(pz_slots_init(&t, 1), 0);
    assert_int_equal(pz_slots_owner(&t, 0), PZ_SLOTS_NONE);
    assert_int_equal(pz_slots_add(&t, 1), 0);
    assert_int_equal(pz_slots_owner(&t, 0), 0);
    assert_int_equal(pz_slots_add(&t, 1), SHARDZ_ENOSPC);
    pz_slots_destroy(&t);
    pz_slots_destroy(&t); /* zeroed: fine twice */
    pz_slots_destroy(NULL);
    assert_int_equal(pz_slots_init(&t, SHARDZ_HASH_SLOTS_MAX), 0);
    assert_int_equal(pz_slots_add(&t, 3), 0);
    check_balanced(&t);
    pz_slots_destroy(&t);
}

/* The exact layout of a small table through adds, removes, ranges and renumbering. */
static void test_golden_8(void **state)
{
    pz_slots t;
    pz_slot_range r[8];
    uint32_t moved;

    (void)state;
    assert_int_equal(pz_slots_init(&t, 8), 0);
    assert_int_equal(pz_slots_add(&t, 0), 0);
    assert_int_equal(t.nparts, 0);

    assert_int_equal(pz_slots_add(&t, 1), 0);
    assert_memory_equal(t.owner, ((uint32_t[]){0, 0, 0, 0, 0, 0, 0, 0}), 8 * sizeof(uint32_t));
    assert_int_equal(pz_slots_add(&t, 1), 0); /* the new one takes the highest half */
    assert_memory_equal(t.owner, ((uint32_t[]){0, 0, 0, 0, 1, 1, 1, 1}), 8 * sizeof(uint32_t));
    assert_int_equal(pz_slots_add(&t, 1), 0); /* 3,3,2: each old one gives its highest slot */
    assert_memory_equal(t.owner, ((uint32_t[]){0, 0, 0, 2, 1, 1, 1, 2}), 8 * sizeof(uint32_t));

    assert_int_equal(pz_slots_ranges(&t, 0, NULL, 0), 1);
    assert_int_equal(pz_slots_ranges(&t, 2, r, 8), 2);
    assert_int_equal(r[0].lo, 3);
    assert_int_equal(r[0].hi, 4);
    assert_int_equal(r[1].lo, 7);
    assert_int_equal(r[1].hi, 8);
    assert_int_equal(pz_slots_ranges(&t, 3, r, 8), 0);

    /* Remove 0: its slots go to the fewest (1 needs one, 2 needs two), then 2 becomes 0. */
    assert_int_equal(pz_slots_remove_one(&t, 0, &moved), 0);
    assert_int_equal(moved, 2);
    assert_memory_equal(t.owner, ((uint32_t[]){1, 0, 0, 0, 1, 1, 1, 0}), 8 * sizeof(uint32_t));
    assert_int_equal(pz_slots_ranges(&t, 0, r, 1), 2); /* cap 1: only the first filled */
    assert_int_equal(r[0].lo, 1);
    assert_int_equal(r[0].hi, 4);
    check_balanced(&t);

    assert_int_equal(pz_slots_renumber(&t, (uint32_t[]){1, 0}), 0);
    assert_memory_equal(t.owner, ((uint32_t[]){0, 1, 1, 1, 0, 0, 0, 1}), 8 * sizeof(uint32_t));

    /* Remove the last: nothing renumbered. */
    assert_int_equal(pz_slots_remove_one(&t, 1, &moved), 0);
    assert_int_equal(moved, PZ_SLOTS_NONE);
    assert_memory_equal(t.owner, ((uint32_t[]){0, 0, 0, 0, 0, 0, 0, 0}), 8 * sizeof(uint32_t));
    assert_int_equal(pz_slots_remove_one(&t, 0, &moved), 0);
    assert_int_equal(t.nparts, 0);
    check_owned(&t);
    assert_int_equal(pz_slots_remove_one(&t, 0, &moved), SHARDZ_EINVAL);

    /* Adding several at once lays them out in contiguous runs. */
    assert_int_equal(pz_slots_add(&t, 3), 0);
    assert_memory_equal(t.owner, ((uint32_t[]){0, 0, 0, 1, 1, 1, 2, 2}), 8 * sizeof(uint32_t));
    pz_slots_destroy(&t);
}

/* Adding k at once moves exactly the lower bound: 16 slots as 6,5,5 plus 2 partitions -> the
 * first keeps 4 (the one ceil), the others 3, and 6 slots move, all to the new ones. */
static void test_batch_add_minimal(void **state)
{
    pz_slots t;

    (void)state;
    assert_int_equal(pz_slots_init(&t, 16), 0);
    assert_int_equal(pz_slots_add(&t, 3), 0); /* 6, 5, 5 */
    assert_int_equal(t.count[0], 6);
    assert_int_equal(t.count[1], 5);
    assert_int_equal(t.count[2], 5);
    snap before = snap_take(&t);
    assert_int_equal(pz_slots_add(&t, 2), 0); /* 16 / 5: 4,3,3,3,3 */
    check_balanced(&t);
    uint32_t moved = 0;
    for (uint32_t s = 0; s < 16; s++) {
        moved += t.owner[s] != before.owner[s];
        if (t.owner[s] != before.owner[s]) {
            assert_true(t.owner[s] >= 3);
        }
    }
    assert_int_equal(moved, 6);
    assert_int_equal(min_moves(16, (uint32_t[]){6, 5, 5, 0, 0}, 5), 6);
    snap_free(&before);
    pz_slots_destroy(&t);
}

static void test_bad_input_unchanged(void **state)
{
    pz_slots t;
    snap s;
    uint32_t moved = 7;

    (void)state;
    assert_int_equal(pz_slots_init(&t, 64), 0);
    assert_int_equal(pz_slots_add(&t, 5), 0);
    s = snap_take(&t);

    assert_int_equal(pz_slots_add(&t, 60), SHARDZ_ENOSPC);
    assert_int_equal(pz_slots_add(&t, UINT32_MAX), SHARDZ_ENOSPC);
    assert_int_equal(pz_slots_reserve(&t, 65), SHARDZ_ENOSPC);
    assert_int_equal(pz_slots_remove(&t, NULL), SHARDZ_EINVAL);
    /* Out of range, a repeated index, a hole in 0..P'-1. */
    assert_int_equal(pz_slots_remove(&t, (uint32_t[]){0, 1, 2, 3, 5}), SHARDZ_EINVAL);
    assert_int_equal(pz_slots_remove(&t, (uint32_t[]){0, 1, 1, 2, 3}), SHARDZ_EINVAL);
    assert_int_equal(pz_slots_remove(&t, (uint32_t[]){0, PZ_SLOTS_NONE, 1, 4, 2}), SHARDZ_EINVAL);
    assert_int_equal(pz_slots_remove_one(&t, 5, &moved), SHARDZ_EINVAL);
    assert_int_equal(moved, 7);
    assert_int_equal(pz_slots_renumber(&t, NULL), SHARDZ_EINVAL);
    assert_int_equal(pz_slots_renumber(&t, (uint32_t[]){0, 1, 2, PZ_SLOTS_NONE, 3}), SHARDZ_EINVAL);
    assert_int_equal(pz_slots_renumber(&t, (uint32_t[]){4, 3, 2, 1, 1}), SHARDZ_EINVAL);
    uint32_t preset[64];
    for (uint32_t i = 0; i < 64; i++) {
        preset[i] = i % 3;
    }
    preset[63] = 3;
    assert_int_equal(pz_slots_restore(&t, preset, 3), SHARDZ_EINVAL);
    assert_int_equal(pz_slots_restore(&t, preset, 65), SHARDZ_EINVAL);
    assert_int_equal(pz_slots_restore(&t, preset, 0), SHARDZ_EINVAL);
    assert_int_equal(pz_slots_restore(&t, NULL, 2), SHARDZ_EINVAL);
    assert_unchanged(&t, &s);
    check_balanced(&t);
    snap_free(&s);
    pz_slots_destroy(&t);
}

/* A restored preset is taken as is; balance then moves exactly the brute-force minimum. */
static void test_restore_balance(void **state)
{
    pz_slots t;
    uint32_t preset[64];

    (void)state;
    assert_int_equal(pz_slots_init(&t, 64), 0);
    for (uint32_t i = 0; i < 64; i++) {
        preset[i] = i < 40 ? 0 : i < 60 ? 1 : 2; /* 40, 20, 4, and 3 holds nothing */
    }
    assert_int_equal(pz_slots_restore(&t, preset, 4), 0);
    check_owned(&t);
    assert_memory_equal(t.owner, preset, sizeof preset);
    assert_int_equal(pz_slots_count(&t, 3), 0);
    assert_int_equal(pz_slots_ranges(&t, 3, NULL, 0), 0);
    uint32_t want = min_moves(64, (uint32_t[]){40, 20, 4, 0}, 4);
    assert_int_equal(want, 40 - 16 + 20 - 16);
    assert_int_equal(pz_slots_balance(&t), want);
    check_balanced(&t);
    assert_int_equal(pz_slots_balance(&t), 0);
    assert_int_equal(pz_slots_restore(&t, NULL, 0), 0);
    assert_int_equal(t.nparts, 0);
    check_owned(&t);
    assert_int_equal(pz_slots_balance(&t), 0);
    pz_slots_destroy(&t);
}

/* ---- properties ------------------------------------------------------------------------ */

/* Adds k partitions and checks the outcome against the state before. */
static void step_add(pz_slots *t, uint32_t k)
{
    snap b = snap_take(t);
    uint32_t n = b.nparts + k;
    bool was_balanced = true;
    int rc = pz_slots_add(t, k);

    if ((uint64_t)b.nparts + k > t->nslots) {
        assert_int_equal(rc, SHARDZ_ENOSPC);
        assert_unchanged(t, &b);
        snap_free(&b);
        return;
    }
    assert_int_equal(rc, 0);
    check_balanced(t);
    if (k == 0) {
        assert_unchanged(t, &b);
        snap_free(&b);
        return;
    }
    uint32_t *c = calloc(n, sizeof *c);
    assert_non_null(c);
    if (b.nparts > 0) {
        memcpy(c, b.count, (size_t)b.nparts * sizeof *c);
        for (uint32_t i = 0; i < b.nparts; i++) {
            uint32_t lo = t->nslots / b.nparts;
            was_balanced &= c[i] == lo || c[i] == lo + (t->nslots % b.nparts != 0);
        }
    }
    uint32_t moved = 0;
    for (uint32_t s = 0; s < t->nslots; s++) {
        if (t->owner[s] != b.owner[s]) {
            moved++;
            /* From a balanced table, slots only go to the new partitions. */
            if (was_balanced) {
                assert_true(t->owner[s] >= b.nparts);
            }
        }
    }
    assert_int_equal(moved, b.nparts == 0 ? t->nslots : min_moves(t->nslots, c, n));
    free(c);
    snap_free(&b);
}

/* Removes a random subset with a random renumbering of the rest and checks the outcome. */
static void step_remove(pz_slots *t, uint64_t *rng)
{
    uint32_t P = t->nparts;
    if (P == 0) {
        assert_int_equal(pz_slots_remove(t, NULL), 0);
        return;
    }
    snap b = snap_take(t);
    uint32_t *newidx = malloc((size_t)P * sizeof *newidx);
    uint32_t *perm = malloc((size_t)P * sizeof *perm);
    uint32_t *c = malloc((size_t)P * sizeof *c);
    uint32_t k = rng_below(rng, P) + (rng_below(rng, 8) == 0); /* sometimes all */
    uint32_t nstay = P - k;
    bool was_balanced = true;

    assert_non_null(newidx);
    assert_non_null(perm);
    assert_non_null(c);
    /* A random subset of size k goes; the others get a random permutation of 0..nstay-1. */
    for (uint32_t i = 0; i < P; i++) {
        perm[i] = i;
    }
    for (uint32_t i = P - 1; i > 0; i--) {
        uint32_t j = rng_below(rng, i + 1), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    for (uint32_t i = 0; i < P; i++) {
        newidx[perm[i]] = i < nstay ? i : PZ_SLOTS_NONE;
    }
    for (uint32_t i = 0; i < P; i++) {
        uint32_t lo = t->nslots / P;
        was_balanced &= b.count[i] == lo || b.count[i] == lo + (t->nslots % P != 0);
    }
    assert_int_equal(pz_slots_remove(t, newidx), 0);
    check_balanced(t);
    assert_int_equal(t->nparts, nstay);
    if (nstay > 0) {
        uint32_t moved = 0, m = 0;
        for (uint32_t i = 0; i < P; i++) {
            if (newidx[i] != PZ_SLOTS_NONE) {
                c[m++] = b.count[i];
            }
        }
        for (uint32_t s = 0; s < t->nslots; s++) {
            uint32_t was = newidx[b.owner[s]];
            if (was != t->owner[s]) {
                moved++;
                if (was_balanced) {
                    assert_int_equal(was, PZ_SLOTS_NONE); /* only the removed ones' slots */
                }
            }
        }
        /* The removed ones' slots all move, plus whatever balancing the others need. */
        assert_int_equal(moved, min_moves(t->nslots, c, nstay));
    }
    free(newidx);
    free(perm);
    free(c);
    snap_free(&b);
}

/* remove_one mirrors pz_model_remove_part: the last partition takes the hole. */
static void step_remove_one(pz_slots *t, uint64_t *rng)
{
    if (t->nparts == 0) {
        return;
    }
    snap b = snap_take(t);
    uint32_t P = t->nparts, pidx = rng_below(rng, P), moved;

    assert_int_equal(pz_slots_remove_one(t, pidx, &moved), 0);
    assert_int_equal(moved, pidx == P - 1 ? PZ_SLOTS_NONE : P - 1);
    check_balanced(t);
    for (uint32_t s = 0; s < t->nslots && t->nparts > 0; s++) {
        uint32_t o = b.owner[s];
        if (o == pidx) {
            continue;
        }
        /* Every other slot stays with its partition (renumbered if it was the last). */
        assert_int_equal(t->owner[s], o == P - 1 ? pidx : o);
    }
    snap_free(&b);
}

static void step_renumber(pz_slots *t, uint64_t *rng)
{
    uint32_t P = t->nparts;
    if (P == 0) {
        return;
    }
    snap b = snap_take(t);
    uint32_t *map = malloc((size_t)P * sizeof *map);

    assert_non_null(map);
    for (uint32_t i = 0; i < P; i++) {
        map[i] = i;
    }
    for (uint32_t i = P - 1; i > 0; i--) {
        uint32_t j = rng_below(rng, i + 1), x = map[i];
        map[i] = map[j];
        map[j] = x;
    }
    assert_int_equal(pz_slots_renumber(t, map), 0);
    for (uint32_t s = 0; s < t->nslots; s++) {
        assert_int_equal(t->owner[s], map[b.owner[s]]);
    }
    for (uint32_t i = 0; i < P; i++) {
        assert_int_equal(t->count[map[i]], b.count[i]);
    }
    free(map);
    snap_free(&b);
}

static void step_restore(pz_slots *t, uint64_t *rng)
{
    uint32_t P = 1 + rng_below(rng, t->nslots < 40 ? t->nslots : 40);
    uint32_t *preset = malloc((size_t)t->nslots * sizeof *preset);
    uint32_t *c = calloc(P, sizeof *c);
    uint32_t skew = rng_below(rng, 4);

    assert_non_null(preset);
    assert_non_null(c);
    for (uint32_t s = 0; s < t->nslots; s++) {
        /* Skewed: small indices favoured, some partitions may get nothing. */
        uint32_t o = rng_below(rng, P);
        for (uint32_t i = 0; i < skew; i++) {
            uint32_t o2 = rng_below(rng, P);
            o = o2 < o ? o2 : o;
        }
        preset[s] = o;
        c[o]++;
    }
    assert_int_equal(pz_slots_restore(t, preset, P), 0);
    check_owned(t);
    assert_memory_equal(t->owner, preset, (size_t)t->nslots * sizeof *preset);
    snap b = snap_take(t);
    uint32_t moved = pz_slots_balance(t);
    check_balanced(t);
    uint32_t diff = 0;
    for (uint32_t s = 0; s < t->nslots; s++) {
        diff += t->owner[s] != b.owner[s];
    }
    assert_int_equal(moved, diff);
    assert_int_equal(moved, min_moves(t->nslots, c, P));
    snap_free(&b);
    free(preset);
    free(c);
}

/* One random run: a slot space, then a sequence of operations, each checked. */
static void run_seed(uint64_t seed, pz_slots *t)
{
    uint64_t rng = seed;
    uint32_t S = 1u << rng_below(&rng, 11); /* 1..1024 */

    assert_int_equal(pz_slots_init(t, S), 0);
    for (int op = 0; op < 60; op++) {
        uint32_t what = rng_below(&rng, 10);
        if (what < 4) {
            uint32_t room = S - t->nparts;
            /* Mostly a few, sometimes a batch, sometimes too many. */
            uint32_t k = rng_below(&rng, 4) == 0 ? rng_below(&rng, room + 3) : rng_below(&rng, 4);
            step_add(t, k);
        } else if (what < 6) {
            step_remove(t, &rng);
        } else if (what < 8) {
            step_remove_one(t, &rng);
        } else if (what < 9) {
            step_renumber(t, &rng);
        } else {
            step_restore(t, &rng);
        }
    }
}

static void test_property_random(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        pz_slots a, b;

        run_seed(seed, &a);
        /* Deterministic: the same seed gives the same table. */
        run_seed(seed, &b);
        assert_int_equal(a.nparts, b.nparts);
        assert_memory_equal(a.owner, b.owner, (size_t)a.nslots * sizeof *a.owner);
        pz_slots_destroy(&a);
        pz_slots_destroy(&b);
    }
}

/* Growing one partition at a time from 1 to 100 over 16384 slots, and shrinking back by
 * removing random ones: each step moves exactly the brute-force minimum. */
static void test_property_grow_shrink(void **state)
{
    pz_slots t;
    uint64_t rng = 42;

    (void)state;
    assert_int_equal(pz_slots_init(&t, SHARDZ_HASH_SLOTS_DEFAULT), 0);
    for (int i = 0; i < 100; i++) {
        step_add(&t, 1);
    }
    assert_int_equal(t.nparts, 100);
    while (t.nparts > 0) {
        step_remove_one(&t, &rng);
    }
    check_owned(&t);
    pz_slots_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_errors),          cmocka_unit_test(test_golden_8),
        cmocka_unit_test(test_batch_add_minimal),    cmocka_unit_test(test_bad_input_unchanged),
        cmocka_unit_test(test_restore_balance),      cmocka_unit_test(test_property_random),
        cmocka_unit_test(test_property_grow_shrink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
