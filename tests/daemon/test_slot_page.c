/* Table tests of the slot table's pages and manifest (src/daemon/core/slot_page.c): runs cut
 * at page bounds and read back whole, the exact text of a page, every malformed page refused,
 * and the manifest's rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/core/slot_page.h"

/* Runs a..d over 16 slots: pages of 4 cut b and d. */
static const shardz_slot_range runs16[] = {{"a", 0, 3}, {"b", 3, 9}, {"c", 9, 12}, {"d", 12, 16}};

static void test_page_text_exact(void **state)
{
    (void)state;
    static const char *const want[] = {"0 3 a\n3 4 b\n", "4 8 b\n", "8 9 b\n9 12 c\n", "12 16 d\n"};
    size_t first = 0;
    for (uint32_t k = 0; k < 4; k++) {
        size_t len = 0;
        char *t = szd_slot_page_text(runs16, 4, &first, k * 4, k * 4 + 4, &len);
        assert_non_null(t);
        assert_string_equal(t, want[k]);
        assert_int_equal(len, strlen(want[k]));
        free(t);
    }
    /* a hole, or runs that end short of the page: no text */
    static const shardz_slot_range holed[] = {{"a", 0, 2}, {"b", 3, 4}};
    size_t len = 0;
    first = 0;
    assert_null(szd_slot_page_text(holed, 2, &first, 0, 4, &len));
    first = 0;
    assert_null(szd_slot_page_text(runs16, 4, &first, 12, 20, &len));
}

/* Every page written, read back and merged gives the runs it came from. */
static void test_split_then_merge_round_trip(void **state)
{
    (void)state;
    enum { S = 64, W = 8, NRUNS = 9 };
    static const shardz_slot_range runs[NRUNS] = {{"p0", 0, 5},   {"p1", 5, 6},   {"p0", 6, 21},
                                                  {"p2", 21, 24}, {"p3", 24, 40}, {"p1", 40, 41},
                                                  {"p2", 41, 48}, {"p4", 48, 63}, {"p0", 63, 64}};
    const char *ids[] = {"p0", "p1", "p2", "p3", "p4"};
    szd_slot_run got[S];
    size_t ngot = 0, first = 0;
    for (uint32_t k = 0; k < S / W; k++) {
        size_t len = 0, n = 0;
        char *t = szd_slot_page_text(runs, NRUNS, &first, k * W, k * W + W, &len);
        assert_non_null(t);
        szd_slot_line lines[W];
        assert_int_equal(szd_slot_page_parse(t, len, k * W, k * W + W, lines, W, &n), 0);
        for (size_t i = 0; i < n; i++) {
            uint32_t part = 99;
            for (uint32_t q = 0; q < 5; q++) {
                if (strlen(ids[q]) == lines[i].id_len &&
                    memcmp(ids[q], lines[i].id, lines[i].id_len) == 0) {
                    part = q;
                }
            }
            assert_int_not_equal(part, 99);
            got[ngot++] = (szd_slot_run){lines[i].lo, lines[i].hi, part};
        }
        free(t);
    }
    assert_true(ngot > NRUNS); /* runs were cut at page bounds */
    ngot = szd_slot_runs_merge(got, ngot);
    assert_int_equal(ngot, NRUNS);
    for (size_t i = 0; i < NRUNS; i++) {
        assert_int_equal(got[i].lo, runs[i].lo);
        assert_int_equal(got[i].hi, runs[i].hi);
        assert_string_equal(ids[got[i].part], runs[i].partition);
    }
}

typedef struct {
    const char *what, *text;
    int rc;
    size_t n;
} parse_row;

static void test_page_parse_table(void **state)
{
    (void)state;
    static const parse_row rows[] = {
        {"a whole page", "4 6 x\n6 8 y\n", 0, 2},
        {"one run", "4 8 p:1.a-b_c\n", 0, 1},
        {"a hole", "4 5 x\n6 8 y\n", SHARDZ_EINVAL, 0},
        {"an overlap", "4 6 x\n5 8 y\n", SHARDZ_EINVAL, 0},
        {"starts late", "5 8 x\n", SHARDZ_EINVAL, 0},
        {"ends short", "4 7 x\n", SHARDZ_EINVAL, 0},
        {"runs past the page", "4 9 x\n", SHARDZ_EINVAL, 0},
        {"an empty run", "4 4 x\n4 8 y\n", SHARDZ_EINVAL, 0},
        {"no final newline", "4 8 x", SHARDZ_EINVAL, 0},
        {"a leading zero", "4 08 x\n", SHARDZ_EINVAL, 0},
        {"a sign", "+4 8 x\n", SHARDZ_EINVAL, 0},
        {"no id", "4 8 \n", SHARDZ_EINVAL, 0},
        {"a slash in the id", "4 8 a/b\n", SHARDZ_EINVAL, 0},
        {"a control byte in the id", "4 8 a\tb\n", SHARDZ_EINVAL, 0},
        {"two spaces", "4  8 x\n", SHARDZ_EINVAL, 0},
        {"too large", "4 4294967296 x\n", SHARDZ_EINVAL, 0},
        {"empty", "", SHARDZ_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        szd_slot_line lines[4];
        size_t n = 0;
        int rc = szd_slot_page_parse(rows[i].text, strlen(rows[i].text), 4, 8, lines, 4, &n);
        if (rc != rows[i].rc || (rc == 0 && n != rows[i].n)) {
            fail_msg("%s: rc %d n %zu", rows[i].what, rc, n);
        }
    }
    /* more lines than room: refused, never written past cap */
    szd_slot_line one[1];
    size_t n = 0;
    assert_int_equal(szd_slot_page_parse("4 6 x\n6 8 y\n", 12, 4, 8, one, 1, &n), SHARDZ_EINVAL);
}

static void test_manifest(void **state)
{
    (void)state;
    szd_slot_manifest m = {0};
    json_t *j = json_loads("{\"page_slots\":4,\"pages\":[1,3,3,2]}", 0, NULL);
    assert_int_equal(szd_slot_manifest_parse(j, 16, &m), 0);
    assert_int_equal(m.page_slots, 4);
    assert_int_equal(m.npages, 4);
    assert_true(m.epoch[1] == 3 && m.epoch[3] == 2);
    json_t *back = szd_slot_manifest_json(&m);
    assert_true(json_equal(j, back));
    json_decref(back);
    json_decref(j);
    szd_slot_manifest c = {0};
    assert_int_equal(szd_slot_manifest_copy(&c, &m), 0);
    assert_true(c.epoch != m.epoch && c.epoch[2] == 3);
    szd_slot_manifest_free(&c);
    szd_slot_manifest_free(&m);
    szd_slot_manifest_free(&m); /* twice: zeroed */
    static const char *const bad[] = {
        "{\"page_slots\":3,\"pages\":[]}",
        "{\"page_slots\":32,\"pages\":[]}",
        "{\"page_slots\":4,\"pages\":[1,1]}",
        "{\"page_slots\":4,\"pages\":[1,1,0,1]}",
        "{\"page_slots\":4,\"pages\":[1,1,1,\"1\"]}",
        "{\"pages\":[]}",
        "{\"page_slots\":4}",
        "{\"page_slots\":0,\"pages\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        assert_non_null(b);
        if (szd_slot_manifest_parse(b, 16, &m) != SHARDZ_EINVAL || m.epoch) {
            fail_msg("accepted %s", bad[i]);
        }
        json_decref(b);
    }
    /* an empty table: no pages */
    j = json_loads("{\"page_slots\":16,\"pages\":[]}", 0, NULL);
    assert_int_equal(szd_slot_manifest_parse(j, 16, &m), 0);
    assert_int_equal(m.npages, 0);
    szd_slot_manifest_free(&m);
    json_decref(j);
    assert_int_equal(szd_slot_page_slots(64), 64);
    assert_int_equal(szd_slot_page_slots(1u << 20), SZD_SLOT_PAGE_SLOTS);
}

static void test_hash_tells_pages_apart(void **state)
{
    (void)state;
    assert_true(szd_slot_page_hash("0 4 a\n", 6) != szd_slot_page_hash("0 4 b\n", 6));
    assert_true(szd_slot_page_hash("0 4 a\n", 6) == szd_slot_page_hash("0 4 a\n", 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_page_text_exact),
        cmocka_unit_test(test_split_then_merge_round_trip),
        cmocka_unit_test(test_page_parse_table),
        cmocka_unit_test(test_manifest),
        cmocka_unit_test(test_hash_tells_pages_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
