/* Table tests of the assignment record's readers (src/daemon/core/record.c): each row a record
 * as bytes, whether the hand scanner takes it (the plain form shardzd writes) or leaves it to
 * jansson, and what either reader makes of it; every row that is JSON is also read through
 * jansson, and the two readers must agree wherever the scanner takes a record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/core/record.h"

typedef struct {
    const char *what;
    const char *text;
    int plain;            /* 0: the scanner takes it; SZD_REC_OTHER: jansson's */
    int json;             /* szd_rec_part_from_json's result; -1: not JSON at all */
    unsigned nslots;      /* what it reads (either reader) */
    const char *owner0;   /* slot 0's owner ("" absent) */
    uint64_t gen0, pgen1; /* slot 0's generation, slot 1's prev_generation */
    const char *reason1;  /* slot 1's reason */
} row;

#define P SZD_REC_OTHER
/* clang-format off */
static const row rows[] = {
    {"one slot, defaults left out", "{\"id\":\"p1\",\"slots\":[{\"owner\":\"w1\",\"state\":\"serving\",\"generation\":3}]}", 0, 0, 1, "w1", 3, 0, ""},
    {"a move in flight", "{\"id\":\"p1\",\"slots\":[{\"state\":\"none\",\"generation\":0},{\"owner\":\"w2\",\"state\":\"adding\",\"generation\":7,\"prev\":\"w1\",\"prev_state\":\"dropping\",\"prev_generation\":6,\"reason\":\"drain\"}]}", 0, 0, 2, "", 0, 6, "drain"},
    {"fields in another order", "{\"id\":\"p\",\"slots\":[{\"generation\":5,\"owner\":\"a:b-c.d_e\",\"state\":\"serving\"},{\"reason\":\"rebalance\",\"prev_generation\":1}]}", 0, 0, 2, "a:b-c.d_e", 5, 1, "rebalance"},
    {"the largest generation kept by hand", "{\"id\":\"p\",\"slots\":[{\"generation\":999999999999999999}]}", 0, 0, 1, "", 999999999999999999ull, 0, ""},
    {"19 digits: jansson's", "{\"id\":\"p\",\"slots\":[{\"generation\":1000000000000000000}]}", P, 0, 1, "", 1000000000000000000ull, 0, ""},
    {"whitespace: jansson's", "{\"id\": \"p\",\"slots\":[{\"owner\":\"w\"}]}", P, 0, 1, "w", 0, 0, ""},
    {"an escape: jansson's", "{\"id\":\"p\",\"slots\":[{\"owner\":\"w\\u0031\"}]}", P, 0, 1, "w1", 0, 0, ""},
    {"a repeated member: jansson's (the last wins)", "{\"id\":\"p\",\"slots\":[{\"owner\":\"a\",\"owner\":\"b\"}]}", P, 0, 1, "b", 0, 0, ""},
    {"hash slot runs: jansson's", "{\"id\":\"p\",\"slots\":[{\"owner\":\"w\",\"generation\":2}],\"hash_slots\":[[0,9]]}", P, 0, 1, "w", 2, 0, ""},
    {"range bounds: jansson's", "{\"id\":\"p\",\"slots\":[{\"owner\":\"w\"}],\"routed\":true,\"range\":{\"lo\":\"\",\"hi\":\"m\"}}", P, 0, 1, "w", 0, 0, ""},
    {"a leading zero: not JSON", "{\"id\":\"p\",\"slots\":[{\"generation\":01}]}", P, -1, 0, "", 0, 0, ""},
    {"a real generation reads as 0", "{\"id\":\"p\",\"slots\":[{\"generation\":1.0}]}", P, 0, 1, "", 0, 0, ""},
    {"an owner of another type is absent", "{\"id\":\"p\",\"slots\":[{\"owner\":7}]}", P, 0, 1, "", 0, 0, ""},
    {"an empty slot", "{\"id\":\"p\",\"slots\":[{}]}", P, 0, 1, "", 0, 0, ""},
    {"no slots", "{\"id\":\"p\",\"slots\":[]}", P, SHARDZ_EINVAL, 0, "", 0, 0, ""},
    {"17 slots", "{\"id\":\"p\",\"slots\":[{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}]}", P, SHARDZ_EINVAL, 0, "", 0, 0, ""},
    {"an id of another type", "{\"id\":1,\"slots\":[{\"owner\":\"w\"}]}", P, SHARDZ_EINVAL, 0, "", 0, 0, ""},
    {"cut short", "{\"id\":\"p\",\"slots\":[{\"owner\":\"w\"}]", P, -1, 0, "", 0, 0, ""},
    {"bytes after the record", "{\"id\":\"p\",\"slots\":[{\"owner\":\"w\"}]}x", P, -1, 0, "", 0, 0, ""},
    {"non-ASCII: jansson's", "{\"id\":\"p\",\"slots\":[{\"owner\":\"w\xc3\xbc\"}]}", P, 0, 1, "w\xc3\xbc", 0, 0, ""},
    {"an override's write number: plain", "{\"id\":\"p\",\"slots\":[{\"owner\":\"w\",\"generation\":2}],\"w\":77}", 0, 0, 1, "w", 2, 0, ""},
    {"a write number with history: jansson's", "{\"id\":\"p\",\"slots\":[{\"owner\":\"w\"}],\"w\":5,\"history\":[]}", P, 0, 1, "w", 0, 0, ""},
    {"a write number before the slots: jansson's", "{\"id\":\"p\",\"w\":5,\"slots\":[{\"owner\":\"w\"}]}", P, 0, 1, "w", 0, 0, ""},
    {"a negative write number: jansson's (none)", "{\"id\":\"p\",\"slots\":[{}],\"w\":-1}", P, 0, 1, "", 0, 0, ""},
    {"a removal mark: no slots", "{\"id\":\"p\",\"removed\":true,\"w\":9}", P, 0, 0, "", 0, 0, ""},
    {"removed false is no mark", "{\"id\":\"p\",\"removed\":false,\"w\":9}", P, SHARDZ_EINVAL, 0, "", 0, 0, ""},
    {"a state name too long to be one reads as absent", "{\"id\":\"p\",\"slots\":[{\"state\":\"servingservingserving\"}]}", P, 0, 1, "", 0, 0, ""},
};
/* clang-format on */
#undef P

static void check(const row *r, const szd_rec_part *p)
{
    if (p->nslots != r->nslots || strcmp(p->slots[0].owner, r->owner0) != 0 ||
        p->slots[0].generation != r->gen0 ||
        (r->nslots > 1 && (p->slots[1].prev_generation != r->pgen1 ||
                           strcmp(p->slots[1].reason, r->reason1) != 0))) {
        fail_msg("%s: read %u slots, owner '%s' generation %llu", r->what, p->nslots,
                 p->slots[0].owner, (unsigned long long)p->slots[0].generation);
    }
}

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        szd_rec_part fast, slow;
        int rc = szd_rec_part_parse(r->text, strlen(r->text), &fast);
        if (rc != r->plain) {
            fail_msg("%s: the scanner said %d, want %d", r->what, rc, r->plain);
        }
        json_t *j = json_loads(r->text, 0, NULL);
        if (!j) {
            if (r->json != -1) {
                fail_msg("%s: jansson refused it", r->what);
            }
            continue;
        }
        int jrc = szd_rec_part_from_json(j, &slow);
        json_decref(j);
        if (jrc != r->json) {
            fail_msg("%s: from_json said %d, want %d", r->what, jrc, r->json);
        }
        if (jrc == 0) {
            check(r, &slow);
        }
        if (rc == 0) {
            check(r, &fast);
            if (!szd_rec_part_same(&fast, &slow)) {
                fail_msg("%s: the two readers disagree", r->what);
            }
        }
    }
}

/* The write number and the removal mark, as either reader gives them. */
static void test_write_number_and_mark(void **state)
{
    (void)state;
    szd_rec_part fast, slow;
    const char *t = "{\"id\":\"p\",\"slots\":[{\"owner\":\"w\"}],\"w\":123456789012}";
    assert_int_equal(szd_rec_part_parse(t, strlen(t), &fast), 0);
    assert_true(fast.w == 123456789012ull && !fast.removed);
    json_t *j = json_loads(t, 0, NULL);
    assert_int_equal(szd_rec_part_from_json(j, &slow), 0);
    json_decref(j);
    assert_true(szd_rec_part_same(&fast, &slow));
    slow.w++;
    assert_false(szd_rec_part_same(&fast, &slow));
    const char *m = "{\"id\":\"p\",\"removed\":true,\"w\":9}";
    assert_int_equal(szd_rec_part_parse(m, strlen(m), &fast), SZD_REC_OTHER);
    j = json_loads(m, 0, NULL);
    assert_int_equal(szd_rec_part_from_json(j, &slow), 0);
    json_decref(j);
    assert_true(slow.removed && slow.w == 9 && slow.nslots == 0);
    assert_string_equal(slow.id, "p");
    /* a plain record without "w" reads as none */
    const char *o = "{\"id\":\"p\",\"slots\":[{}]}";
    fast.w = 5;
    assert_int_equal(szd_rec_part_parse(o, strlen(o), &fast), SZD_REC_OTHER);
    const char *o2 = "{\"id\":\"p\",\"slots\":[{\"owner\":\"w\"}]}";
    assert_int_equal(szd_rec_part_parse(o2, strlen(o2), &fast), 0);
    assert_true(fast.w == 0 && !fast.removed);
}

/* The scanner never reads past the length it is given: every prefix of a plain record is
 * refused (ASan catches a read past the copy's end). */
static void test_prefixes(void **state)
{
    (void)state;
    const char *text = rows[1].text;
    size_t n = strlen(text);
    for (size_t k = 0; k < n; k++) {
        char *copy = malloc(k ? k : 1);
        memcpy(copy, text, k);
        szd_rec_part p;
        assert_int_equal(szd_rec_part_parse(copy, k, &p), SZD_REC_OTHER);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rows),
                                       cmocka_unit_test(test_write_number_and_mark),
                                       cmocka_unit_test(test_prefixes)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
