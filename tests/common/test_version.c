/* Tests for the version API (include/shardz/version.h, src/common/version.c): shardz_version()
 * spells the SHARDZ_VERSION_* numbers, and SHARDZ_VERSION_NUMBER orders releases. Main thread
 * only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "shardz/version.h"

static void test_version_string_matches_macros(void **state)
{
    (void)state;
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", SHARDZ_VERSION_MAJOR, SHARDZ_VERSION_MINOR,
             SHARDZ_VERSION_PATCH);
    assert_string_equal(shardz_version(), want);
    assert_ptr_equal(shardz_version(), shardz_version()); /* static: never freed */
}

static void test_version_number_orders_releases(void **state)
{
    (void)state;
    assert_int_equal(SHARDZ_VERSION_NUMBER, SHARDZ_VERSION_MAJOR * 10000 +
                                                SHARDZ_VERSION_MINOR * 100 + SHARDZ_VERSION_PATCH);
    assert_true(SHARDZ_VERSION_MINOR < 100 && SHARDZ_VERSION_PATCH < 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_string_matches_macros),
        cmocka_unit_test(test_version_number_orders_releases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
