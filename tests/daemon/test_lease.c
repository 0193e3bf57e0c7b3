/* Table tests of the strict-mode lease rule (src/daemon/core/lease.c): a row is the node's
 * state, what is known of the lease-granting messages sent to it, the lease, and now; the
 * expected start of its lease and whether it has certainly ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/core/lease.h"
#include "daemon/core/slot.h"

typedef struct {
    const char *what;
    uint8_t state;
    szd_lease_facts f;
    int64_t lease_ms, now;
    int64_t from;
    bool over;
} row;

/* clang-format off */
static const row rows[] = {
    /* what                                       state            ok   lane  push  failed  lease  now   from  over */
    {"dead, only its last answer",               SZD_NODE_DEAD,  {1000, 0,    0,    0},    1000, 1999, 1000, false},
    {"dead, its lease just ran out",             SZD_NODE_DEAD,  {1000, 0,    0,    0},    1000, 2000, 1000, true},
    {"a ping that may have reached it counts",   SZD_NODE_DEAD,  {1000, 1300, 0,    0},    1000, 2200, 1300, false},
    {"...until lease_ms after it",               SZD_NODE_DEAD,  {1000, 1300, 0,    0},    1000, 2300, 1300, true},
    {"a push in flight counts to its timeout",   SZD_NODE_DEAD,  {1000, 1300, 9000, 0},    1000, 9999, 9000, false},
    {"a failed push counts (it may have arrived)", SZD_NODE_DEAD, {1000, 0,    0,    5000}, 1000, 5999, 5000, false},
    {"the latest of all of them",                SZD_NODE_DEAD,  {4000, 3000, 2000, 1000}, 1000, 5000, 4000, true},
    {"alive: waited for by its own answers",     SZD_NODE_ALIVE, {0,    0,    0,    0},    1000, 1000000000, 0,    false},
    {"suspect: may still hold it",               SZD_NODE_SUSPECT, {0,  0,    0,    0},    1000, 1000000000, 0,    false},
    {"draining: may still hold it",              SZD_NODE_DRAINING, {0, 0,    0,    0},    1000, 1000000000, 0,    false},
    {"left: holds none",                         SZD_NODE_LEFT,  {5000, 5000, 5000, 5000}, 1000, 0,    5000, true},
};
/* clang-format on */

static void test_rows(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        int64_t from = szd_lease_from(&r->f);
        bool over = szd_lease_over(r->state, &r->f, r->lease_ms, r->now);
        if (from != r->from || over != r->over) {
            fail_msg("%s: from %lld over %d, want %lld %d", r->what, (long long)from, over,
                     (long long)r->from, r->over);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rows)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
