/* Table tests of the assignment pages (src/daemon/core/apage.c): the page text's header and
 * lines, the rule for when a write rewrites a page, and the load's choice of the newest record
 * per partition whatever order a crash left the page lines and overrides in. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/core/apage.h"

static void test_head_and_lines(void **state)
{
    (void)state;
    char buf[256];
    size_t n = szd_apage_head(buf, 42, 0), raw = 99;
    assert_int_equal(n, strlen("shardz-apage 1 42\n"));
    assert_memory_equal(buf, "shardz-apage 1 42\n", n);
    strcpy(buf + n, "{\"id\":\"a\",\"slots\":[]}\n\n{\"id\":\"b\"}");
    size_t len = strlen(buf), off = 0, ln, idn;
    uint64_t w = 0;
    const char *line, *id;
    assert_int_equal(szd_apage_read_head(buf, len, &w, &off, &raw), 0);
    assert_true(w == 42);
    assert_int_equal(off, n);
    assert_int_equal(raw, 0); /* format 1: the lines are text */
    assert_true(szd_apage_next(buf, len, &off, &line, &ln));
    assert_true(szd_apage_line_id(line, ln, &id, &idn));
    assert_int_equal(idn, 1);
    assert_memory_equal(id, "a", 1);
    assert_true(szd_apage_next(buf, len, &off, &line, &ln)); /* the empty line is skipped */
    assert_true(szd_apage_line_id(line, ln, &id, &idn));
    assert_memory_equal(id, "b", 1);
    assert_false(szd_apage_next(buf, len, &off, &line, &ln));
    /* not a page: every malformed header refused */
    static const char *const bad[] = {"",
                                      "shardz-apage 1 \n",
                                      "shardz-apage 1 01\n",
                                      "shardz-apage 2 1\n",
                                      "shardz-apage 2 1 0\n",
                                      "shardz-apage 2 1 524289\n",
                                      "shardz-apage 2 1 07\n",
                                      "shardz-apage 2 1 7",
                                      "shardz-apage 3 1 7\n",
                                      "shardz-apage 1 1",
                                      "shardz-apage 1 1x\n",
                                      "shardz-apage 1 12345678901234567890\n",
                                      "{\"id\":\"a\"}\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(szd_apage_read_head(bad[i], strlen(bad[i]), &w, &off, &raw), -1);
    }
    /* format 2: the raw length the zlib stream after the header inflates to */
    n = szd_apage_head(buf, 7, 30000);
    assert_int_equal(n, strlen("shardz-apage 2 7 30000\n"));
    assert_memory_equal(buf, "shardz-apage 2 7 30000\n", n);
    memcpy(buf + n, "\x78\x01\x00", 3); /* binary after the header */
    assert_int_equal(szd_apage_read_head(buf, n + 3, &w, &off, &raw), 0);
    assert_true(w == 7);
    assert_int_equal(off, n);
    assert_int_equal(raw, 30000);
    /* lines whose id is not plain are not taken */
    static const char *const nid[] = {"{\"id\":\"\"}", "{\"id\":\"a\\\"b\"}", "{\"slots\":[]}",
                                      "{\"id\":\"abc"};
    for (size_t i = 0; i < sizeof nid / sizeof nid[0]; i++) {
        assert_false(szd_apage_line_id(nid[i], strlen(nid[i]), &id, &idn));
    }
}

/* When a write rewrites a page. */
static void test_fold_rule(void **state)
{
    (void)state;
    static const struct {
        szd_apage_count c;
        bool fold;
    } cases[] = {
        /* a page not yet in the store with something to write: written */
        {{.nlive = 256, .ndirty = 256, .nfresh = 256}, true},
        {{.nlive = 1, .ndirty = 1, .nfresh = 1}, true},
        /* the layout before pages (every record its own key): converted when one changes */
        {{.nlive = 256, .nover = 256, .ndirty = 1}, true},
        /* nothing to write: left alone */
        {{.nlive = 256, .nover = 256}, false},
        {{.nlive = 256, .nover = 200, .ndead = 50, .based = true}, false},
        /* nothing new would be an override: left alone (dirty overrides are rewritten) */
        {{.nlive = 256, .nover = 10, .ndirty = 10, .based = true}, false},
        /* a stale line must go */
        {{.nlive = 256, .based = true, .refold = true}, true},
        /* a few changes in a written page: overrides */
        {{.nlive = 256, .ndirty = 1, .nfresh = 1, .based = true}, false},
        {{.nlive = 256, .nover = 30, .ndead = 2, .ndirty = 31, .nfresh = 31, .based = true}, false},
        /* a quarter out of the page: rewritten */
        {{.nlive = 256, .nover = 30, .ndead = 2, .ndirty = 40, .nfresh = 32, .based = true}, true},
        {{.nlive = 256, .ndirty = 64, .nfresh = 64, .based = true}, true},
        /* every partition gone but a new one: rewritten */
        {{.nlive = 1, .ndead = 255, .ndirty = 1, .nfresh = 1, .based = true}, true},
        /* compressed: a tenth of the page, or 25 partitions, changed in one write rewrites it */
        {{.nlive = 256, .ndirty = 25, .nfresh = 25, .based = true, .z = true}, true},
        {{.nlive = 256, .ndirty = 24, .nfresh = 24, .based = true, .z = true}, false},
        {{.nlive = 200, .nover = 20, .ndirty = 20, .based = true, .z = true}, true},
        {{.nlive = 200, .nover = 19, .ndirty = 19, .based = true, .z = true}, false},
        /* (overrides rewritten again count too: the page replaces them) */
        {{.nlive = 256, .nover = 30, .ndirty = 30, .based = true, .z = true}, true},
        /* a move: an override, compressed or not */
        {{.nlive = 256, .ndirty = 1, .nfresh = 1, .based = true, .z = true}, false},
        {{.nlive = 88, .ndirty = 1, .nfresh = 1, .based = true, .z = true}, false},
        /* the quarter still holds */
        {{.nlive = 256, .nover = 60, .ndirty = 4, .nfresh = 4, .based = true, .z = true}, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(szd_apage_fold(&cases[i].c), cases[i].fold);
    }
}

/* The newest record wins, in either order of arrival; an older line's page is named to be
 * rewritten. */
static void test_newest_wins(void **state)
{
    (void)state;
    szd_apage_map m;
    assert_int_equal(szd_apage_map_init(&m, 8), 0);
    /* a: line 5, override 7 -> override; b: override 3, line 5 -> line */
    szd_apage_entry *a = szd_apage_map_get(&m, "a", 1);
    assert_int_equal(szd_apage_see_line(a, 0, 5), UINT32_MAX);
    szd_apage_see_override(a, 10, 7, false);
    assert_true(a->best == 10 && a->w == 7 && a->page == 0);
    szd_apage_entry *b = szd_apage_map_get(&m, "b", 1);
    szd_apage_see_override(b, 11, 3, false);
    assert_int_equal(szd_apage_see_line(b, 1, 5), UINT32_MAX);
    assert_true(b->best == -1 && b->w == 5 && b->page == 1);
    /* c: a removal mark newer than its line: removed, the line's page known */
    szd_apage_entry *c = szd_apage_map_get(&m, "c", 1);
    szd_apage_see_override(c, 12, 9, true);
    assert_int_equal(szd_apage_see_line(c, 2, 4), UINT32_MAX);
    assert_true(c->best == 12 && c->removed && c->page == 2);
    /* d: lines in two pages: the newer holds, the older's page is named, either order */
    szd_apage_entry *d = szd_apage_map_get(&m, "d", 1);
    assert_int_equal(szd_apage_see_line(d, 3, 4), UINT32_MAX);
    assert_int_equal(szd_apage_see_line(d, 4, 8), 3);
    assert_true(d->best == -1 && d->page == 4 && d->line_w == 8 && d->dup_line);
    assert_int_equal(szd_apage_see_line(d, 5, 6), 5);
    assert_true(d->page == 4);
    /* e: a removal mark older than a line written after it (added again): the line */
    szd_apage_entry *e = szd_apage_map_get(&m, "e", 1);
    szd_apage_see_override(e, 13, 2, true);
    assert_int_equal(szd_apage_see_line(e, 6, 3), UINT32_MAX);
    assert_true(e->best == -1 && !e->removed);
    /* the same entry is found again; find creates nothing */
    assert_ptr_equal(szd_apage_map_get(&m, "a", 1), a);
    assert_ptr_equal(szd_apage_map_find(&m, "b", 1), b);
    assert_null(szd_apage_map_find(&m, "zz", 2));
    assert_int_equal(m.n, 5);
    szd_apage_map_free(&m);
}

/* The map takes as many ids as it was sized for and refuses more rather than growing. */
static void test_map_capacity(void **state)
{
    (void)state;
    szd_apage_map m;
    assert_int_equal(szd_apage_map_init(&m, 1000), 0);
    char ids[1000][8];
    for (int i = 0; i < 1000; i++) {
        snprintf(ids[i], sizeof ids[i], "p%d", i);
        assert_non_null(szd_apage_map_get(&m, ids[i], strlen(ids[i])));
    }
    for (int i = 0; i < 1000; i++) {
        szd_apage_entry *e = szd_apage_map_get(&m, ids[i], strlen(ids[i]));
        assert_int_equal(e->idlen, strlen(ids[i]));
        assert_memory_equal(e->id, ids[i], e->idlen);
    }
    assert_int_equal(m.n, 1000);
    size_t extra = 0;
    static char more[4096][8];
    for (int i = 0; i < 4096; i++) {
        snprintf(more[i], sizeof more[i], "q%d", i);
        extra += szd_apage_map_get(&m, more[i], strlen(more[i])) != NULL;
    }
    assert_true(extra < 4096 && (m.n + 1) * 2 > m.cap);
    szd_apage_map_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_and_lines),
        cmocka_unit_test(test_fold_rule),
        cmocka_unit_test(test_newest_wins),
        cmocka_unit_test(test_map_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
