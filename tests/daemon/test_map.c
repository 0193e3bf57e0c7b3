/* Tests of the daemon's string -> index map (src/daemon/core/map.c): a random run of inserts,
 * swap-removes (as a namespace removes partitions) and lookups against the array itself, on a
 * small map (long probe runs that wrap around) and a large one; then every key is looked up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/core/map.h"

typedef struct {
    char (*ids)[16];
    uint32_t n;
} arr;

static const char *key_of(const void *ctx, uint32_t i)
{
    return ((const arr *)ctx)->ids[i];
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void check_all(const szd_map *m, const arr *a)
{
    for (uint32_t i = 0; i < a->n; i++) {
        uint32_t got = szd_map_find(m, a->ids[i], key_of, a);
        if (got != i) {
            fail_msg("%s at %u found at %d", a->ids[i], i, (int)got);
        }
    }
}

static void run(uint32_t max, uint32_t steps, uint64_t seed)
{
    arr a = {calloc(max, sizeof *a.ids), 0};
    szd_map m = {0};
    uint64_t s = seed;
    uint32_t next = 0;
    for (uint32_t step = 0; step < steps; step++) {
        uint64_t r = rnd(&s);
        if (a.n < max && (a.n == 0 || r % 3 != 0)) {
            snprintf(a.ids[a.n], sizeof a.ids[a.n], "p%06u", next++);
            assert_int_equal(szd_map_insert(&m, a.n, a.n + 1, key_of, &a), 0);
            a.n++;
        } else {
            /* swap-remove a random entry, as szd_part_remove does */
            uint32_t idx = (uint32_t)(rnd(&s) % a.n), last = a.n - 1;
            char gone[16];
            memcpy(gone, a.ids[idx], sizeof gone);
            szd_map_remove(&m, a.ids[idx], idx);
            if (idx != last) {
                szd_map_move(&m, a.ids[last], last, idx);
                memcpy(a.ids[idx], a.ids[last], sizeof a.ids[idx]);
            }
            a.n--;
            assert_int_equal(szd_map_find(&m, gone, key_of, &a), UINT32_MAX);
        }
        if (step % 97 == 0) {
            check_all(&m, &a);
        }
    }
    check_all(&m, &a);
    assert_int_equal(szd_map_find(&m, "absent", key_of, &a), UINT32_MAX);
    szd_map_free(&m);
    free(a.ids);
}

static void test_small(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        run(12, 2000, seed);
    }
}

static void test_large(void **state)
{
    (void)state;
    run(20000, 60000, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_small), cmocka_unit_test(test_large)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
