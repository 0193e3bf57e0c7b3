/* Tests for key ranges (src/placement/rtable.c, range_sharder.c): key order and the middle of a
 * range as tables, then property tests: seeded random splits and merges of the range table
 * checked against a brute-force model (coverage, no overlap, no gap, lookup equals a linear
 * scan), bad input changing nothing, and the "range" sharder kind end to end. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "placement/rtable.h"
#include "shardz/error.h"
#include "shardz/range.h"

/* splitmix64: the tests' only source of randomness, seeded explicitly. */
static uint64_t rng_next(uint64_t *st)
{
    uint64_t z = (*st += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t rng_below(uint64_t *st, size_t n)
{
    return n == 0 ? 0 : (size_t)(rng_next(st) % n);
}

#define S(x) x, sizeof(x) - 1

/* ---- keys ------------------------------------------------------------------------------ */

static void test_key_cmp(void **state)
{
    (void)state;
    assert_int_equal(shardz_key_cmp(S(""), S("")), 0);
    assert_true(shardz_key_cmp(S(""), S("a")) < 0);
    assert_true(shardz_key_cmp(S("a"), S("ab")) < 0);
    assert_true(shardz_key_cmp(S("ab"), S("b")) < 0);
    assert_true(shardz_key_cmp(S("\xff"), S("a")) > 0); /* bytes are unsigned */
    assert_int_equal(shardz_key_cmp(NULL, 0, S("")), 0);
}

/* The middle's exact bytes for a table of ranges (printable alphabet 0x20-0x7e). */
static void test_key_middle_table(void **state)
{
    static const struct {
        const char *lo, *hi, *mid;
    } rows[] = {
        {"", "", "O"},        /* the whole space: (0x1f + 0x7f) / 2 */
        {"a", "c", "b"},      /* digits two apart: the mean */
        {"a", "b", "aO"},     /* adjacent: lo's digit, then the middle of the rest and +inf */
        {"ab", "ab!", "ab "}, /* lo a prefix of hi */
        {"a", "", "p"},       /* to +inf: (0x61 + 0x7f) / 2 */
        {"", "a", "@"},       /* from -inf: (0x1f + 0x61) / 2 */
        {"user:1", "user:9", "user:5"},
        {"k~", "l", "k~O"}, /* lo's digit at the top of the alphabet */
    };
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char out[64];
        size_t n = 0;
        int rc = shardz_key_middle(rows[i].lo, strlen(rows[i].lo), rows[i].hi, strlen(rows[i].hi),
                                   0x20, 0x7e, out, sizeof out, &n);
        assert_int_equal(rc, 0);
        out[n] = '\0';
        assert_string_equal(out, rows[i].mid);
    }
}

static void test_key_middle_bad(void **state)
{
    char out[8];
    size_t n;
    (void)state;
    /* lo >= hi */
    assert_int_equal(shardz_key_middle(S("b"), S("a"), 1, 255, out, sizeof out, &n), SHARDZ_EINVAL);
    assert_int_equal(shardz_key_middle(S("a"), S("a"), 1, 255, out, sizeof out, &n), SHARDZ_EINVAL);
    /* a byte outside the alphabet */
    assert_int_equal(shardz_key_middle(S("\x01"), S(""), 0x20, 0x7e, out, sizeof out, &n),
                     SHARDZ_EINVAL);
    /* [k, k + amin): only k itself */
    assert_int_equal(shardz_key_middle(S("k"), S("k "), 0x20, 0x7e, out, sizeof out, &n),
                     SHARDZ_ERANGE);
    assert_int_equal(shardz_key_middle(S("k"), S("k\x01"), 1, 255, out, sizeof out, &n),
                     SHARDZ_ERANGE);
    /* does not fit */
    assert_int_equal(shardz_key_middle(S("aaaaaaaa"), S("aaaaaaab"), 1, 255, out, sizeof out, &n),
                     SHARDZ_ERANGE);
    /* amin 0 (NUL) is refused */
    assert_int_equal(shardz_key_middle(S(""), S(""), 0, 255, out, sizeof out, &n), SHARDZ_EINVAL);
}

/* A random key of 0-4 bytes over a small alphabet (so ranges collide and nest often). */
static size_t random_key(uint64_t *rng, char *k, int amin, int amax)
{
    size_t n = rng_below(rng, 5);
    for (size_t i = 0; i < n; i++) {
        k[i] = (char)(amin + (int)rng_below(rng, (size_t)(amax - amin + 1)));
    }
    return n;
}

/* Property: for random lo < hi, lo < middle < hi and the middle stays in the alphabet. */
static void test_key_middle_props(void **state)
{
    static const int alpha[][2] = {{0x20, 0x7e}, {1, 255}, {'a', 'c'}};
    uint64_t rng = 42;
    (void)state;
    for (int round = 0; round < 20000; round++) {
        const int *a = alpha[round % 3];
        char lo[8], hi[8], m[32];
        size_t ll = random_key(&rng, lo, a[0], a[1]), hl = random_key(&rng, hi, a[0], a[1]), n;
        if (hl > 0 && shardz_key_cmp(lo, ll, hi, hl) >= 0) {
            continue;
        }
        int rc = shardz_key_middle(lo, ll, hi, hl, (unsigned char)a[0], (unsigned char)a[1], m,
                                   sizeof m, &n);
        if (rc == SHARDZ_ERANGE) {
            continue; /* [k, k + amin) */
        }
        assert_int_equal(rc, 0);
        assert_true(shardz_key_cmp(lo, ll, m, n) < 0);
        assert_true(hl == 0 || shardz_key_cmp(m, n, hi, hl) < 0);
        for (size_t i = 0; i < n; i++) {
            assert_true((unsigned char)m[i] >= a[0] && (unsigned char)m[i] <= a[1]);
        }
    }
}

/* ---- the table against a brute-force model ---------------------------------------------- */

/* The model: a plain list of ranges [lo, hi) with ids, kept in no particular order. */
typedef struct {
    char lo[16], hi[16];
    size_t lo_len, hi_len; /* hi_len 0: +inf */
    char id[16];
} mrange;

typedef struct {
    mrange r[512];
    size_t n;
    unsigned next_id;
} model;

static int in_mrange(const mrange *r, const char *k, size_t len)
{
    return shardz_key_cmp(r->lo, r->lo_len, k, len) <= 0 &&
           (r->hi_len == 0 || shardz_key_cmp(k, len, r->hi, r->hi_len) < 0);
}

/* Checks the table against the model: the same ranges in key order, contiguous from -inf to
 * +inf, and for random keys the table's lookup is the one model range holding the key. */
static void check(const pz_rtable *t, const model *m, uint64_t *rng)
{
    assert_int_equal(t->n, m->n);
    for (size_t i = 0; i < t->n; i++) {
        shardz_key_range r;
        pz_rtable_get(t, i, &r);
        if (i == 0) {
            assert_int_equal(r.lo_len, 0);
        }
        if (i + 1 == t->n) {
            assert_int_equal(r.hi_len, 0);
        } else {
            assert_true(shardz_key_cmp(r.lo, r.lo_len, r.hi, r.hi_len) < 0);
        }
        size_t k = 0;
        while (k < m->n && strcmp(m->r[k].id, r.partition) != 0) {
            k++;
        }
        assert_true(k < m->n);
        assert_int_equal(shardz_key_cmp(r.lo, r.lo_len, m->r[k].lo, m->r[k].lo_len), 0);
        assert_int_equal(shardz_key_cmp(r.hi, r.hi_len, m->r[k].hi, m->r[k].hi_len), 0);
    }
    for (int q = 0; q < 64; q++) {
        char key[8];
        size_t len = random_key(rng, key, 'a', 'd');
        size_t holders = 0, which = 0;
        for (size_t k = 0; k < m->n; k++) {
            if (in_mrange(&m->r[k], key, len)) {
                holders++;
                which = k;
            }
        }
        assert_int_equal(holders, 1); /* coverage: no gap, no overlap */
        size_t i = pz_rtable_find(t, key, len);
        assert_true(i != PZ_RT_NONE);
        assert_string_equal(t->e[i].pid, m->r[which].id);
    }
}

static shardz_key_range as_range(const mrange *r)
{
    return (shardz_key_range){r->id, r->lo, r->lo_len, r->hi, r->hi_len};
}

/* One random split: a random range, at its middle or at a random key (often outside, which
 * must be refused and change nothing). */
static void random_split(pz_rtable *t, model *m, uint64_t *rng)
{
    size_t k = rng_below(rng, m->n);
    mrange *r = &m->r[k];
    char at[32];
    size_t alen;
    if (rng_below(rng, 2) == 0) {
        if (shardz_key_middle(r->lo, r->lo_len, r->hi, r->hi_len, 'a', 'd', at, 15, &alen) != 0) {
            return;
        }
    } else {
        alen = random_key(rng, at, 'a', 'd');
    }
    mrange left = *r, right = *r;
    memcpy(left.hi, at, alen);
    left.hi_len = alen;
    memcpy(right.lo, at, alen);
    right.lo_len = alen;
    snprintf(left.id, sizeof left.id, "p%u", m->next_id++);
    snprintf(right.id, sizeof right.id, "p%u", m->next_id++);
    shardz_key_range nr[2] = {as_range(&left), as_range(&right)};
    int ok = alen > 0 && shardz_key_cmp(r->lo, r->lo_len, at, alen) < 0 &&
             (r->hi_len == 0 || shardz_key_cmp(at, alen, r->hi, r->hi_len) < 0);
    int rc = pz_rtable_replace(t, pz_rtable_index(t, r->id), 1, nr, 2);
    if (!ok) {
        assert_int_equal(rc, SHARDZ_EINVAL);
        return;
    }
    assert_int_equal(rc, 0);
    *r = left;
    m->r[m->n++] = right;
}

/* One random merge of two ranges: neighbours are merged; others are refused. */
static void random_merge(pz_rtable *t, model *m, uint64_t *rng)
{
    size_t a = rng_below(rng, m->n), b = rng_below(rng, m->n);
    if (a == b) {
        return;
    }
    mrange *ra = &m->r[a], *rb = &m->r[b];
    int neighbours = ra->hi_len > 0 && shardz_key_cmp(ra->hi, ra->hi_len, rb->lo, rb->lo_len) == 0;
    mrange merged = *ra;
    memcpy(merged.hi, rb->hi, rb->hi_len);
    merged.hi_len = rb->hi_len;
    snprintf(merged.id, sizeof merged.id, "p%u", m->next_id++);
    shardz_key_range nr = as_range(&merged);
    size_t ia = pz_rtable_index(t, ra->id), ib = pz_rtable_index(t, rb->id);
    assert_int_equal(ib == ia + 1, neighbours); /* neighbours in key order, by the table too */
    int rc = pz_rtable_replace(t, ia, neighbours ? 2 : 1, &nr, 1);
    if (!neighbours) {
        assert_int_equal(rc, SHARDZ_EINVAL); /* one range cannot take another's span */
        return;
    }
    assert_int_equal(rc, 0);
    *ra = merged;
    m->r[b] = m->r[--m->n];
}

static void test_table_random(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        uint64_t rng = seed;
        pz_rtable t;
        model *m = calloc(1, sizeof *m);
        assert_non_null(m);
        pz_rtable_init(&t);
        snprintf(m->r[0].id, sizeof m->r[0].id, "p%u", m->next_id++);
        m->n = 1;
        shardz_key_range whole = as_range(&m->r[0]);
        assert_int_equal(pz_rtable_restore(&t, &whole, 1), 0);
        check(&t, m, &rng);
        for (int step = 0; step < 300; step++) {
            if (m->n < 2 || (m->n < 400 && rng_below(&rng, 3) != 0)) {
                random_split(&t, m, &rng);
            } else {
                random_merge(&t, m, &rng);
            }
            check(&t, m, &rng);
        }
        /* a restore from the model's (unordered) list rebuilds the same table */
        shardz_key_range *all = calloc(m->n, sizeof *all);
        assert_non_null(all);
        for (size_t i = 0; i < m->n; i++) {
            all[i] = as_range(&m->r[m->n - 1 - i]);
        }
        pz_rtable t2;
        pz_rtable_init(&t2);
        assert_int_equal(pz_rtable_restore(&t2, all, m->n), 0);
        check(&t2, m, &rng);
        free(all);
        pz_rtable_destroy(&t2);
        pz_rtable_destroy(&t);
        free(m);
    }
}

/* Restores that leave a gap, overlap, or do not start at -inf / end at +inf are refused. */
static void test_table_restore_bad(void **state)
{
    pz_rtable t;
    (void)state;
    pz_rtable_init(&t);
    shardz_key_range ok[2] = {{"a", S(""), S("m")}, {"b", S("m"), S("")}};
    shardz_key_range gap[2] = {{"a", S(""), S("m")}, {"b", S("n"), S("")}};
    shardz_key_range overlap[2] = {{"a", S(""), S("n")}, {"b", S("m"), S("")}};
    shardz_key_range no_inf[2] = {{"a", S("a"), S("m")}, {"b", S("m"), S("")}};
    shardz_key_range twice[2] = {{"a", S(""), S("m")}, {"a", S("m"), S("")}};
    shardz_key_range empty[2] = {{"a", S(""), S("m")}, {"b", S("m"), S("m")}};
    assert_int_equal(pz_rtable_restore(&t, ok, 2), 0);
    assert_int_equal(pz_rtable_restore(&t, gap, 2), SHARDZ_EINVAL);
    assert_int_equal(pz_rtable_restore(&t, overlap, 2), SHARDZ_EINVAL);
    assert_int_equal(pz_rtable_restore(&t, no_inf, 2), SHARDZ_EINVAL);
    assert_int_equal(pz_rtable_restore(&t, twice, 2), SHARDZ_EINVAL);
    assert_int_equal(pz_rtable_restore(&t, empty, 2), SHARDZ_EINVAL);
    assert_int_equal(t.n, 2); /* unchanged */
    assert_string_equal(t.e[1].pid, "b");
    pz_rtable_destroy(&t);
}

/* ---- the "range" kind ------------------------------------------------------------------- */

static void test_range_kind(void **state)
{
    shardz_sharder *s = NULL;
    shardz_sharder_config cfg = {.kind = "range", .replicas = 2};
    (void)state;
    assert_int_equal(shardz_sharder_new(&cfg, &s), 0);
    assert_string_equal(shardz_sharder_kind(s), "range");
    shardz_node_spec nodes[3] = {{.id = "n1"}, {.id = "n2"}, {.id = "n3"}};
    for (int i = 0; i < 3; i++) {
        nodes[i].state = SHARDZ_NODE_ALIVE;
    }
    assert_int_equal(shardz_sharder_register_nodes(s, nodes, 3), 0);
    shardz_partition_spec parts[4] = {{.id = "r1"}, {.id = "r2"}, {.id = "r3"}, {.id = "r4"}};
    assert_int_equal(shardz_sharder_register_partitions(s, parts, 2), 0);
    const char *pid = NULL;
    assert_int_equal(shardz_sharder_partition_for_key(s, S("k"), &pid), SHARDZ_ENOENT);
    shardz_key_range init[2] = {{"r1", S(""), S("m")}, {"r2", S("m"), S("")}};
    shardz_key_range unknown[1] = {{"zz", S(""), S("")}};
    assert_int_equal(shardz_sharder_range_restore(s, unknown, 1), SHARDZ_ENOENT);
    assert_int_equal(shardz_sharder_range_restore(s, init, 2), 0);
    assert_int_equal(shardz_sharder_partition_for_key(s, S("k"), &pid), 0);
    assert_string_equal(pid, "r1");
    assert_int_equal(shardz_sharder_partition_for_key(s, S("m"), &pid), 0);
    assert_string_equal(pid, "r2");
    /* a routed partition cannot be unregistered */
    const char *r1 = "r1";
    assert_int_equal(shardz_sharder_unregister_partitions(s, &r1, 1), SHARDZ_EBUSY);
    /* split r2 at "t" into r3, r4: they must be registered first */
    shardz_key_range split[2] = {{"r3", S("m"), S("t")}, {"r4", S("t"), S("")}};
    const char *old2[1] = {"r2"};
    assert_int_equal(shardz_sharder_range_replace(s, old2, 1, split, 2), SHARDZ_ENOENT);
    assert_int_equal(shardz_sharder_register_partitions(s, parts + 2, 2), 0);
    shardz_key_range outside[2] = {{"r3", S("m"), S("z")}, {"r4", S("z"), S("zz")}};
    assert_int_equal(shardz_sharder_range_replace(s, old2, 1, outside, 2), SHARDZ_EINVAL);
    assert_int_equal(shardz_sharder_range_replace(s, old2, 1, split, 2), 0);
    assert_int_equal(shardz_sharder_partition_for_key(s, S("u"), &pid), 0);
    assert_string_equal(pid, "r4");
    const char *r2 = "r2";
    assert_int_equal(shardz_sharder_unregister_partitions(s, &r2, 1), 0);
    /* merge: r1 and r4 are not neighbours; r1 and r3 are */
    const char *far[2] = {"r1", "r4"}, *near[2] = {"r1", "r3"};
    shardz_key_range m1[1] = {{"r5", S(""), S("t")}};
    shardz_partition_spec p5 = {.id = "r5"};
    assert_int_equal(shardz_sharder_register_partitions(s, &p5, 1), 0);
    assert_int_equal(shardz_sharder_range_replace(s, far, 2, m1, 1), SHARDZ_EINVAL);
    assert_int_equal(shardz_sharder_range_replace(s, near, 2, m1, 1), 0);
    size_t n = 0;
    shardz_key_range list[4];
    assert_int_equal(shardz_sharder_range_list(s, list, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].partition, "r5");
    assert_string_equal(list[1].partition, "r4");
    shardz_key_range one;
    assert_int_equal(shardz_sharder_range_of(s, "r3", &one), SHARDZ_ENOENT);
    assert_int_equal(shardz_sharder_range_of(s, "r4", &one), 0);
    assert_int_equal(one.lo_len, 1);
    /* placement works as for the replica kind */
    shardz_plan *plan = NULL;
    assert_int_equal(shardz_sharder_rebalance(s, 0, &plan), 0);
    shardz_plan_free(plan);
    shardz_sharder_free(s);
    /* other kinds: not supported */
    cfg.kind = "replica";
    assert_int_equal(shardz_sharder_new(&cfg, &s), 0);
    assert_int_equal(shardz_sharder_range_list(s, NULL, 0, &n), SHARDZ_ENOTSUP);
    shardz_sharder_free(s);
}

/* A range whose load alone exceeds a node's mean by more than the band is hot; others not. */
static void test_range_hot(void **state)
{
    shardz_sharder *s = NULL;
    shardz_sharder_config cfg = {.kind = "range", .replicas = 1};
    (void)state;
    assert_int_equal(shardz_sharder_new(&cfg, &s), 0);
    shardz_node_spec nodes[2] = {{.id = "n1", .state = SHARDZ_NODE_ALIVE},
                                 {.id = "n2", .state = SHARDZ_NODE_ALIVE}};
    assert_int_equal(shardz_sharder_register_nodes(s, nodes, 2), 0);
    shardz_partition_spec parts[3] = {{.id = "a"}, {.id = "b"}, {.id = "c"}};
    assert_int_equal(shardz_sharder_register_partitions(s, parts, 3), 0);
    shardz_key_range r[3] = {{"a", S(""), S("g")}, {"b", S("g"), S("p")}, {"c", S("p"), S("")}};
    assert_int_equal(shardz_sharder_range_restore(s, r, 3), 0);
    shardz_plan *plan = NULL;
    assert_int_equal(shardz_sharder_rebalance(s, 0, &plan), 0);
    shardz_plan_free(plan);
    const char *hot[3];
    size_t n = 9;
    assert_int_equal(shardz_sharder_range_hot(s, 0.05, 0, hot, 3, &n), 0);
    assert_int_equal(n, 0); /* equal loads (1 each): mean 1.5 per node, nothing hot */
    double ten = 10, one = 1;
    assert_int_equal(shardz_sharder_set_partition_load(s, "b", &ten, 1), 0);
    assert_int_equal(shardz_sharder_set_partition_load(s, "c", &one, 1), 0);
    assert_int_equal(shardz_sharder_range_hot(s, 0.05, 0, hot, 3, &n), 0);
    assert_int_equal(n, 1); /* 12 over 2 nodes: 6; b's 10 is above 6.3 */
    assert_string_equal(hot[0], "b");
    assert_int_equal(shardz_sharder_range_hot(s, 1, 0, hot, 3, &n), 0);
    assert_int_equal(n, 0); /* band 1: above 12 */
    assert_int_equal(shardz_sharder_range_hot(s, 2, 0, hot, 3, &n), SHARDZ_EINVAL);
    assert_int_equal(shardz_sharder_range_hot(s, 0.05, 1, hot, 3, &n), SHARDZ_EINVAL);
    shardz_sharder_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_cmp),        cmocka_unit_test(test_key_middle_table),
        cmocka_unit_test(test_key_middle_bad), cmocka_unit_test(test_key_middle_props),
        cmocka_unit_test(test_table_random),   cmocka_unit_test(test_table_restore_bad),
        cmocka_unit_test(test_range_kind),     cmocka_unit_test(test_range_hot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
