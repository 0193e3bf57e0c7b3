/* The key layout's builders and parser (the seed 000 review: test the key builders and
 * parsers, not only the big flows): exact bytes of every key, round trips, the id rules, buffer
 * sizes, and foreign or corrupt keys refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "shardz/store.h"

/* Builds with a generous buffer and checks the exact key and its length. */
static void expect_key(int len, const char *buf, const char *want)
{
    assert_int_equal(len, (int)strlen(want));
    assert_string_equal(buf, want);
}

static void test_builders_exact_bytes(void **state)
{
    char b[SHARDZ_KEY_BUF];

    (void)state;
    expect_key(shardz_key_config(b, sizeof b, "orders"), b, "ns/orders/config");
    expect_key(shardz_key_node(b, sizeof b, "orders", "w-1"), b, "ns/orders/node/w-1");
    expect_key(shardz_key_assign(b, sizeof b, "orders", "p0007"), b, "ns/orders/assign/p0007");
    expect_key(shardz_key_stats(b, sizeof b, "orders", "p0007"), b, "ns/orders/stats/p0007");
    expect_key(shardz_key_task(b, sizeof b, "orders", "t42"), b, "ns/orders/task/t42");
    expect_key(shardz_key_leader(b, sizeof b), b, "leader");
    expect_key(shardz_key_build(b, sizeof b, SHARDZ_KEY_LEADER, NULL, NULL), b, "leader");
    expect_key(shardz_key_build(b, sizeof b, SHARDZ_KEY_CONFIG, "n", "ignored"), b, "ns/n/config");
    expect_key(shardz_key_build(b, sizeof b, SHARDZ_KEY_GONE, "orders", "ignored"), b,
               "gone/orders");
    assert_int_equal(shardz_key_kind_prefix(b, sizeof b, SHARDZ_KEY_GONE, "orders"), SHARDZ_EINVAL);
    expect_key(shardz_key_kind_prefix(b, sizeof b, SHARDZ_KEY_NODE, "orders"), b,
               "ns/orders/node/");
    expect_key(shardz_key_kind_prefix(b, sizeof b, SHARDZ_KEY_STATS, "orders"), b,
               "ns/orders/stats/");
    expect_key(shardz_key_kind_prefix(b, sizeof b, SHARDZ_KEY_CONFIG, "orders"), b,
               "ns/orders/config");
    expect_key(shardz_key_ns_prefix(b, sizeof b, "orders"), b, "ns/orders/");
    expect_key(shardz_key_ns_prefix(b, sizeof b, NULL), b, "ns/");
    /* Ids may hold dots, spaces, braces and UTF-8. */
    expect_key(shardz_key_node(b, sizeof b, "a.b", "host:7000 {x} \xc3\xa9"), b,
               "ns/a.b/node/host:7000 {x} \xc3\xa9");
}

/* Statistics and assignment of one partition are two keys, neither naming a node. */
static void test_stats_apart_from_assignment(void **state)
{
    char a[SHARDZ_KEY_BUF], s[SHARDZ_KEY_BUF], pa[SHARDZ_KEY_BUF], ps[SHARDZ_KEY_BUF];

    (void)state;
    assert_true(shardz_key_assign(a, sizeof a, "ns1", "p1") > 0);
    assert_true(shardz_key_stats(s, sizeof s, "ns1", "p1") > 0);
    assert_string_not_equal(a, s);
    assert_true(shardz_key_kind_prefix(pa, sizeof pa, SHARDZ_KEY_ASSIGN, "ns1") > 0);
    assert_true(shardz_key_kind_prefix(ps, sizeof ps, SHARDZ_KEY_STATS, "ns1") > 0);
    assert_int_equal(strncmp(a, pa, strlen(pa)), 0);
    assert_int_not_equal(strncmp(a, ps, strlen(ps)), 0);
    assert_int_equal(strncmp(s, ps, strlen(ps)), 0);
}

static void test_round_trip(void **state)
{
    static const struct {
        shardz_key_kind kind;
        const char *ns, *id;
    } cases[] = {
        {SHARDZ_KEY_CONFIG, "orders", ""}, {SHARDZ_KEY_NODE, "orders", "w1"},
        {SHARDZ_KEY_ASSIGN, "o", "p/"},    {SHARDZ_KEY_STATS, "x", "config"},
        {SHARDZ_KEY_TASK, "ns", "node"},   {SHARDZ_KEY_LEADER, "", ""},
        {SHARDZ_KEY_NODE, "leader", "ns"}, {SHARDZ_KEY_GONE, "orders", ""},
        {SHARDZ_KEY_NODE, "gone", "x"},
    };
    char b[SHARDZ_KEY_BUF];
    shardz_key_parts p;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int len = shardz_key_build(b, sizeof b, cases[i].kind, cases[i].ns, cases[i].id);

        if (strchr(cases[i].id, '/')) { /* "p/" is no valid id */
            assert_int_equal(len, SHARDZ_EINVAL);
            assert_string_equal(b, "");
            continue;
        }
        assert_true(len > 0);
        assert_int_equal(shardz_key_parse(b, (size_t)len, &p), 0);
        assert_int_equal(p.kind, cases[i].kind);
        assert_string_equal(p.ns, cases[i].ns);
        assert_string_equal(p.id, cases[i].id);
    }
}

static void test_longest_ids(void **state)
{
    char ns[SHARDZ_KEY_MAX_ID + 2], id[SHARDZ_KEY_MAX_ID + 2];
    char b[SHARDZ_KEY_BUF];
    shardz_key_parts p;
    int len;

    (void)state;
    memset(ns, 'n', SHARDZ_KEY_MAX_ID);
    ns[SHARDZ_KEY_MAX_ID] = '\0';
    memset(id, 'i', SHARDZ_KEY_MAX_ID);
    id[SHARDZ_KEY_MAX_ID] = '\0';
    len = shardz_key_assign(b, sizeof b, ns, id);
    assert_int_equal(len, 3 + SHARDZ_KEY_MAX_ID + 8 + SHARDZ_KEY_MAX_ID);
    assert_true(len < SHARDZ_STORE_MAX_KEY);
    assert_int_equal(shardz_key_parse(b, (size_t)len, &p), 0);
    assert_string_equal(p.ns, ns);
    assert_string_equal(p.id, id);
    /* One byte more is refused, in builder and parser alike. */
    id[SHARDZ_KEY_MAX_ID] = 'i';
    id[SHARDZ_KEY_MAX_ID + 1] = '\0';
    assert_false(shardz_key_id_valid(id));
    assert_int_equal(shardz_key_assign(b, sizeof b, ns, id), SHARDZ_EINVAL);
    {
        char big[SHARDZ_KEY_BUF + 8];

        len = snprintf(big, sizeof big, "ns/x/node/%s", id);
        assert_int_equal(shardz_key_parse(big, (size_t)len, &p), SHARDZ_EINVAL);
    }
}

static void test_id_rules(void **state)
{
    static const char *const bad[] = {"",     "a/b",       "/",       "a\x01",
                                      "\x1f", "tab\there", "del\x7f", "new\nline"};
    static const char *const good[] = {"a", "A-Z_0.9", "..", " ", "\xff", "{tag}"};
    char b[SHARDZ_KEY_BUF];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_false(shardz_key_id_valid(bad[i]));
        assert_int_equal(shardz_key_node(b, sizeof b, "ns", bad[i]), SHARDZ_EINVAL);
        assert_int_equal(shardz_key_node(b, sizeof b, bad[i], "id"), SHARDZ_EINVAL);
        assert_int_equal(shardz_key_config(b, sizeof b, bad[i]), SHARDZ_EINVAL);
        assert_int_equal(shardz_key_ns_prefix(b, sizeof b, bad[i]), SHARDZ_EINVAL);
    }
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_true(shardz_key_id_valid(good[i]));
        assert_true(shardz_key_task(b, sizeof b, good[i], good[i]) > 0);
    }
    assert_false(shardz_key_id_valid(NULL));
    assert_int_equal(shardz_key_node(b, sizeof b, NULL, "id"), SHARDZ_EINVAL);
    assert_int_equal(shardz_key_node(b, sizeof b, "ns", NULL), SHARDZ_EINVAL);
    assert_int_equal(shardz_key_build(b, sizeof b, (shardz_key_kind)99, "ns", "id"), SHARDZ_EINVAL);
    assert_int_equal(shardz_key_kind_prefix(b, sizeof b, SHARDZ_KEY_LEADER, "ns"), SHARDZ_EINVAL);
    assert_int_equal(shardz_key_node(NULL, 10, "ns", "id"), SHARDZ_EINVAL);
}

static void test_buffer_too_small(void **state)
{
    char b[32];

    (void)state;
    /* "ns/orders/node/w1" is 17 bytes: 18 fit with the NUL, 17 do not. */
    assert_int_equal(shardz_key_node(b, 18, "orders", "w1"), 17);
    memset(b, 'x', sizeof b);
    assert_int_equal(shardz_key_node(b, 17, "orders", "w1"), SHARDZ_ERANGE);
    assert_string_equal(b, "");
    assert_int_equal(shardz_key_leader(b, 6), SHARDZ_ERANGE);
    assert_int_equal(shardz_key_leader(b, 0), SHARDZ_ERANGE);
    assert_int_equal(shardz_key_ns_prefix(b, 3, NULL), SHARDZ_ERANGE);
}

static void test_parse_refuses_foreign_keys(void **state)
{
    static const char *const bad[] = {
        "",
        "leader/x",
        "leaderx",
        "ns",
        "ns/",
        "ns/a",
        "ns/a/",
        "ns//config",
        "ns/a/config/",
        "ns/a/configx",
        "ns/a/node",
        "ns/a/node/",
        "ns/a/node/x/y",
        "ns/a/nodes/x",
        "ns/a/Node/x",
        "nz/a/node/x",
        "/ns/a/node/x",
        "ns/a/leader/x",
        "ns/a/config/x",
        "ns/a\x01/node/x",
        "ns/a/task/t\x7f",
        "ns/a/stats",
        "Leader",
        "ns/a//node/x",
        "gone/",
        "gone",
        "gone/a/b",
        "gone/a\x01",
        "ns/a/gone/x",
    };
    const char nul[] = {'n', 's', '/', 'a', '/', 'n', 'o', 'd', 'e', '/', 'x', 0, 'y'};
    shardz_key_parts p;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (shardz_key_parse(bad[i], strlen(bad[i]), &p) != SHARDZ_EINVAL) {
            fail_msg("parsed a foreign key: \"%s\"", bad[i]);
        }
    }
    assert_int_equal(shardz_key_parse(nul, sizeof nul, &p), SHARDZ_EINVAL);
    /* The parser reads only len bytes: a valid key followed by garbage in memory. */
    assert_int_equal(shardz_key_parse("ns/a/node/xGARBAGE", 11, &p), 0);
    assert_string_equal(p.id, "x");
    assert_int_equal(shardz_key_parse(NULL, 3, &p), SHARDZ_EINVAL);
}

/* Assignment pages: a numbered key, built and parsed exactly; anything but a canonical decimal
 * number below 2^32 is refused, and the kind is never built from an id. */
static void test_apage_keys(void **state)
{
    char b[SHARDZ_KEY_BUF];
    shardz_key_parts p;

    (void)state;
    expect_key(shardz_key_apage(b, sizeof b, "orders", 0), b, "ns/orders/apage/0");
    expect_key(shardz_key_apage(b, sizeof b, "o", UINT32_MAX), b, "ns/o/apage/4294967295");
    assert_int_equal(shardz_key_parse(b, strlen(b), &p), 0);
    assert_int_equal(p.kind, SHARDZ_KEY_APAGE);
    assert_string_equal(p.ns, "o");
    assert_string_equal(p.id, "");
    assert_true(p.page == UINT32_MAX);
    assert_int_equal(shardz_key_apage(b, sizeof b, "a/b", 1), SHARDZ_EINVAL);
    assert_int_equal(shardz_key_apage(b, 10, "orders", 1), SHARDZ_ERANGE);
    assert_int_equal(shardz_key_build(b, sizeof b, SHARDZ_KEY_APAGE, "orders", "1"), SHARDZ_EINVAL);
    expect_key(shardz_key_kind_prefix(b, sizeof b, SHARDZ_KEY_APAGE, "orders"), b,
               "ns/orders/apage/");
    static const char *const bad[] = {"ns/o/apage/01",         "ns/o/apage/+1",  "ns/o/apage/",
                                      "ns/o/apage/4294967296", "ns/o/apage/1/2", "ns/o/apage/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(shardz_key_parse(bad[i], strlen(bad[i]), &p), SHARDZ_EINVAL);
    }
}

/* Slot table pages: numbered keys, built and parsed exactly; anything but canonical decimal
 * numbers (epoch >= 1, page < 2^32) is refused. */
static void test_slots_keys(void **state)
{
    char b[SHARDZ_KEY_BUF], longest[SHARDZ_KEY_MAX_ID + 1];
    shardz_key_parts p;

    (void)state;
    expect_key(shardz_key_slots(b, sizeof b, "orders", 7, 0), b, "ns/orders/slots/7/0");
    expect_key(shardz_key_slots(b, sizeof b, "o", UINT64_MAX, UINT32_MAX), b,
               "ns/o/slots/18446744073709551615/4294967295");
    assert_int_equal(shardz_key_parse(b, strlen(b), &p), 0);
    assert_int_equal(p.kind, SHARDZ_KEY_SLOTS);
    assert_string_equal(p.ns, "o");
    assert_string_equal(p.id, "");
    assert_true(p.epoch == UINT64_MAX);
    assert_true(p.page == UINT32_MAX);
    assert_int_equal(shardz_key_slots(b, sizeof b, "orders", 0, 1), SHARDZ_EINVAL);
    assert_string_equal(b, "");
    assert_int_equal(shardz_key_slots(b, sizeof b, "a/b", 1, 1), SHARDZ_EINVAL);
    assert_int_equal(shardz_key_slots(b, 10, "orders", 1, 1), SHARDZ_ERANGE);
    assert_int_equal(shardz_key_build(b, sizeof b, SHARDZ_KEY_SLOTS, "orders", "1/2"),
                     SHARDZ_EINVAL);
    expect_key(shardz_key_kind_prefix(b, sizeof b, SHARDZ_KEY_SLOTS, "orders"), b,
               "ns/orders/slots/");
    /* the longest namespace still fits the buffer */
    memset(longest, 'n', SHARDZ_KEY_MAX_ID);
    longest[SHARDZ_KEY_MAX_ID] = '\0';
    assert_true(shardz_key_slots(b, sizeof b, longest, UINT64_MAX, UINT32_MAX) > 0);
    assert_int_equal(shardz_key_parse(b, strlen(b), &p), 0);
    assert_string_equal(p.ns, longest);
    /* refused: zero epoch, leading zeros, signs, missing or extra parts, overflow */
    static const char *const bad[] = {
        "ns/o/slots/0/1",
        "ns/o/slots/01/1",
        "ns/o/slots/1/01",
        "ns/o/slots/+1/1",
        "ns/o/slots/1",
        "ns/o/slots/1/",
        "ns/o/slots//1",
        "ns/o/slots/1/2/3",
        "ns/o/slots/a/1",
        "ns/o/slots/1/-1",
        "ns/o/slots/18446744073709551616/0",
        "ns/o/slots/1/4294967296",
        "ns/o/slots/",
        "ns/o/slots",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (shardz_key_parse(bad[i], strlen(bad[i]), &p) != SHARDZ_EINVAL) {
            fail_msg("parsed %s", bad[i]);
        }
    }
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(shardz_key_kind_name(SHARDZ_KEY_CONFIG), "config");
    assert_string_equal(shardz_key_kind_name(SHARDZ_KEY_NODE), "node");
    assert_string_equal(shardz_key_kind_name(SHARDZ_KEY_ASSIGN), "assign");
    assert_string_equal(shardz_key_kind_name(SHARDZ_KEY_STATS), "stats");
    assert_string_equal(shardz_key_kind_name(SHARDZ_KEY_TASK), "task");
    assert_string_equal(shardz_key_kind_name(SHARDZ_KEY_LEADER), "leader");
    assert_string_equal(shardz_key_kind_name(SHARDZ_KEY_GONE), "gone");
    assert_string_equal(shardz_key_kind_name(SHARDZ_KEY_SLOTS), "slots");
    assert_string_equal(shardz_key_kind_name(SHARDZ_KEY_APAGE), "apage");
    assert_string_equal(shardz_key_kind_name((shardz_key_kind)77), "unknown");
}

/* A whole namespace is one prefix: a range or a delete of it never touches a neighbour whose
 * name starts with the same bytes ("a" and "ab"). */
static void test_namespace_prefix_isolation(void **state)
{
    shardz_store *st = NULL;
    shardz_range *r = NULL;
    char k[SHARDZ_KEY_BUF], pre[SHARDZ_KEY_BUF];
    size_t deleted = 0;
    int len, plen;

    (void)state;
    assert_int_equal(shardz_store_open_memory(NULL, &st), 0);
    len = shardz_key_node(k, sizeof k, "a", "n1");
    assert_int_equal(shardz_store_put(st, k, (size_t)len, "{}", 2, NULL), 0);
    len = shardz_key_node(k, sizeof k, "ab", "n1");
    assert_int_equal(shardz_store_put(st, k, (size_t)len, "{}", 2, NULL), 0);
    len = shardz_key_config(k, sizeof k, "a");
    assert_int_equal(shardz_store_put(st, k, (size_t)len, "{}", 2, NULL), 0);
    plen = shardz_key_ns_prefix(pre, sizeof pre, "a");
    assert_int_equal(shardz_store_range(st, pre, (size_t)plen, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, 2);
    shardz_range_free(r);
    assert_int_equal(shardz_store_delete_prefix(st, pre, (size_t)plen, &deleted, NULL), 0);
    assert_int_equal(deleted, 2);
    plen = shardz_key_ns_prefix(pre, sizeof pre, NULL);
    assert_int_equal(shardz_store_range(st, pre, (size_t)plen, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, 1);
    assert_string_equal(r->kvs[0].key, "ns/ab/node/n1");
    shardz_range_free(r);
    shardz_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builders_exact_bytes),
        cmocka_unit_test(test_stats_apart_from_assignment),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_longest_ids),
        cmocka_unit_test(test_id_rules),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_parse_refuses_foreign_keys),
        cmocka_unit_test(test_slots_keys),
        cmocka_unit_test(test_apage_keys),
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_namespace_prefix_isolation),
    };

    return cmocka_run_group_tests_name("store keys", tests, NULL, NULL);
}
