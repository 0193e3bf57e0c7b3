/* Tests for the router's range routing (src/lib/snapshot.c, lib_int.h): snapshots of "range"
 * namespace states, key lookups by binary search checked against a linear scan of the ranges,
 * partitions that are not routed ignored, and states whose ranges do not cover the key space
 * once refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shardz/error.h"
#include "shardz/router.h"

/* Three routed ranges ["", "g"), ["g", "p"), ["p", +inf) and a successor being created. */
static const char *const state_ok =
    "{\"revision\": 7, \"sharder\": \"range\", \"nodes\": [{\"id\": \"w1\", \"address\": "
    "\"127.0.0.1:1\"}], \"partitions\": ["
    "{\"id\": \"3\", \"range\": {\"lo\": \"p\", \"hi\": null}, \"replicas\": [{\"node\": \"w1\", "
    "\"state\": \"serving\"}]},"
    "{\"id\": \"1\", \"range\": {\"lo\": \"\", \"hi\": \"g\"}, \"replicas\": []},"
    "{\"id\": \"2\", \"range\": {\"lo\": \"g\", \"hi\": \"p\"}, \"replicas\": []},"
    "{\"id\": \"4\", \"range\": {\"lo\": \"p\", \"hi\": \"t\"}, \"routed\": false, "
    "\"replicas\": []},"
    "{\"id\": \"0\", \"routed\": false, \"replicas\": []}]}";

static void test_range_lookups(void **state)
{
    static const struct {
        const char *key, *part;
        uint32_t idx;
    } rows[] = {
        {"", "1", 0},   {"a", "1", 0}, {"fzzz", "1", 0}, {"g", "2", 1},    {"g\x01", "2", 1},
        {"oz", "2", 1}, {"p", "3", 2}, {"q", "3", 2},    {"\xff", "3", 2},
    };
    shardz_snapshot *s = NULL;
    (void)state;
    assert_int_equal(shardz_snapshot_from_state(state_ok, strlen(state_ok), 0, &s), 0);
    assert_int_equal(shardz_snapshot_slots(s), 0);
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const shardz_route *rt = NULL;
        uint32_t idx = 99;
        assert_int_equal(shardz_snapshot_lookup_key(s, rows[i].key, strlen(rows[i].key), &idx, &rt),
                         0);
        assert_string_equal(rt->partition, rows[i].part);
        assert_int_equal(idx, rows[i].idx);
    }
    const shardz_route *rt = NULL;
    assert_int_equal(shardz_snapshot_lookup_partition(s, "4", &rt), 0); /* listed, not routed */
    shardz_snapshot_release(s);
}

/* Random keys: the binary search agrees with a linear scan over many ranges. */
static void test_range_lookups_scan(void **state)
{
    char buf[1 << 16], lo[64][4];
    size_t n = 0;
    uint64_t rng = 7;
    (void)state;
    n += (size_t)snprintf(buf + n, sizeof buf - n,
                          "{\"revision\": 1, \"sharder\": \"range\", \"partitions\": [");
    for (int i = 0; i < 64; i++) { /* lo i: "" then "a" + two letters in order */
        if (i == 0) {
            lo[i][0] = '\0';
        } else {
            snprintf(lo[i], sizeof lo[i], "%c%c", 'a' + i / 8, 'a' + i % 8);
        }
    }
    for (int i = 0; i < 64; i++) {
        char hi[16];
        if (i == 63) {
            snprintf(hi, sizeof hi, "null");
        } else {
            snprintf(hi, sizeof hi, "\"%s\"", lo[i + 1]);
        }
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "%s{\"id\": \"r%d\", \"range\": {\"lo\": \"%s\", \"hi\": %s}}",
                              i ? "," : "", i, lo[i], hi);
    }
    snprintf(buf + n, sizeof buf - n, "]}");
    shardz_snapshot *s = NULL;
    assert_int_equal(shardz_snapshot_from_state(buf, strlen(buf), 0, &s), 0);
    for (int q = 0; q < 5000; q++) {
        char key[4];
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        size_t len = (size_t)(rng >> 60) % 4;
        for (size_t k = 0; k < len; k++) {
            key[k] = (char)('a' + (rng >> (8 * k + 8)) % 10);
        }
        int want = 0;
        for (int i = 0; i < 64; i++) { /* the last range whose lo <= key */
            size_t ll = strlen(lo[i]), m = ll < len ? ll : len;
            int c = m ? memcmp(lo[i], key, m) : 0;
            if (c < 0 || (c == 0 && ll <= len)) {
                want = i;
            }
        }
        const shardz_route *rt = NULL;
        char wid[16];
        assert_int_equal(shardz_snapshot_lookup_key(s, key, len, NULL, &rt), 0);
        snprintf(wid, sizeof wid, "r%d", want);
        assert_string_equal(rt->partition, wid);
    }
    shardz_snapshot_release(s);
}

static void test_range_bad_states(void **state)
{
    static const char *const bad[] = {
        /* a gap */
        "{\"revision\": 1, \"sharder\": \"range\", \"partitions\": [{\"id\": \"a\", \"range\": "
        "{\"lo\": \"\", \"hi\": \"g\"}}, {\"id\": \"b\", \"range\": {\"lo\": \"h\", \"hi\": "
        "null}}]}",
        /* an overlap */
        "{\"revision\": 1, \"sharder\": \"range\", \"partitions\": [{\"id\": \"a\", \"range\": "
        "{\"lo\": \"\", \"hi\": \"h\"}}, {\"id\": \"b\", \"range\": {\"lo\": \"g\", \"hi\": "
        "null}}]}",
        /* does not start at -inf */
        "{\"revision\": 1, \"sharder\": \"range\", \"partitions\": [{\"id\": \"a\", \"range\": "
        "{\"lo\": \"a\", \"hi\": null}}]}",
        /* does not end at +inf */
        "{\"revision\": 1, \"sharder\": \"range\", \"partitions\": [{\"id\": \"a\", \"range\": "
        "{\"lo\": \"\", \"hi\": \"z\"}}]}",
        /* a bound that is not a string */
        "{\"revision\": 1, \"sharder\": \"range\", \"partitions\": [{\"id\": \"a\", \"range\": "
        "{\"lo\": 3, \"hi\": null}}]}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        shardz_snapshot *s = NULL;
        int rc = shardz_snapshot_from_state(bad[i], strlen(bad[i]), 0, &s);
        assert_true(rc == SHARDZ_EPROTO || rc == SHARDZ_EINVAL);
        assert_null(s);
    }
    /* no range yet: lookups find nothing; other kinds: not supported */
    const char *empty = "{\"revision\": 1, \"sharder\": \"range\", \"partitions\": []}";
    const char *replica = "{\"revision\": 1, \"sharder\": \"replica\", \"partitions\": []}";
    shardz_snapshot *s = NULL;
    const shardz_route *rt = NULL;
    assert_int_equal(shardz_snapshot_from_state(empty, strlen(empty), 0, &s), 0);
    assert_int_equal(shardz_snapshot_lookup_key(s, "k", 1, NULL, &rt), SHARDZ_ENOENT);
    shardz_snapshot_release(s);
    assert_int_equal(shardz_snapshot_from_state(replica, strlen(replica), 0, &s), 0);
    assert_int_equal(shardz_snapshot_lookup_key(s, "k", 1, NULL, &rt), SHARDZ_ENOTSUP);
    shardz_snapshot_release(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_lookups),
        cmocka_unit_test(test_range_lookups_scan),
        cmocka_unit_test(test_range_bad_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
