/* The load statistics' EWMA (shardz_load_smooth, src/placement/stats.c): the first sample is
 * taken as it is, the weight follows elapsed time (alpha = 1 - exp(-dt / tau)), a sample not
 * after the last weighs nothing, only the dimensions given change. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "shardz/placement.h"

#define assert_near(a, b, eps) assert_true(fabs((double)(a) - (double)(b)) <= (eps))

static void test_first_sample(void **state)
{
    (void)state;
    double load[2] = {7, 7}, x[2] = {3, 4};
    int64_t at = 0;
    assert_int_equal(shardz_load_smooth(load, &at, x, NULL, 2, 500, 60000), 2);
    assert_near(load[0], 3, 0);
    assert_near(load[1], 4, 0);
    assert_int_equal(at, 500);
}

static void test_time_aware(void **state)
{
    (void)state;
    double load[1] = {10}, x[1] = {20};
    int64_t at = 1000;
    /* dt = tau: alpha = 1 - 1/e. */
    assert_int_equal(shardz_load_smooth(load, &at, x, NULL, 1, 61000, 60000), 1);
    assert_near(load[0], 10 + (1 - exp(-1)) * 10, 1e-12);
    assert_int_equal(at, 61000);
    /* Two samples dt/2 apart weigh like one dt apart (for a constant sample). */
    double a[1] = {0}, b[1] = {0}, y[1] = {1};
    int64_t ta = 1, tb = 1;
    shardz_load_smooth(a, &ta, y, NULL, 1, 30001, 60000);
    shardz_load_smooth(a, &ta, y, NULL, 1, 60001, 60000);
    shardz_load_smooth(b, &tb, y, NULL, 1, 60001, 60000);
    assert_near(a[0], b[0], 1e-12);
    /* A sample not after the last one weighs nothing; tau 0 takes it as it is. */
    assert_int_equal(shardz_load_smooth(load, &at, x, NULL, 1, 61000, 60000), 1);
    assert_near(load[0], 10 + (1 - exp(-1)) * 10, 1e-12);
    assert_int_equal(shardz_load_smooth(load, &at, x, NULL, 1, 62000, 0), 1);
    assert_near(load[0], 20, 0);
}

static void test_only_given_dims(void **state)
{
    (void)state;
    double load[3] = {1, 1, 1}, x[3] = {5, 5, 5};
    bool have[3] = {false, true, false};
    int64_t at = 10;
    assert_int_equal(shardz_load_smooth(load, &at, x, have, 3, 20, 0), 1);
    assert_near(load[0], 1, 0);
    assert_near(load[1], 5, 0);
    assert_near(load[2], 1, 0);
    bool none[3] = {false, false, false};
    assert_int_equal(shardz_load_smooth(load, &at, x, none, 3, 30, 0), 0);
    assert_int_equal(at, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_sample),
        cmocka_unit_test(test_time_aware),
        cmocka_unit_test(test_only_given_dims),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
