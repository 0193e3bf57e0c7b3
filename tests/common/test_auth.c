/* Tests for the shared bearer-secret check (src/common/auth.c): the right secret passes, a
 * wrong, shorter, longer, unprefixed or missing one fails, and no secret lets everything in.
 * Runs on the test's main thread only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/auth.h"

static void test_bearer(void **state)
{
    (void)state;
    assert_true(shardz__bearer_ok("s3cret", "Bearer s3cret"));
    assert_false(shardz__bearer_ok("s3cret", "Bearer s3creT"));
    assert_false(shardz__bearer_ok("s3cret", "Bearer s3cre"));
    assert_false(shardz__bearer_ok("s3cret", "Bearer s3crets"));
    assert_false(shardz__bearer_ok("s3cret", "Bearer "));
    assert_false(shardz__bearer_ok("s3cret", "s3cret"));
    assert_false(shardz__bearer_ok("s3cret", "Basic s3cret"));
    assert_false(shardz__bearer_ok("s3cret", NULL));
    assert_true(shardz__bearer_ok(NULL, NULL));
    assert_true(shardz__bearer_ok("", "Bearer whatever"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bearer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
