/* Tests for the UTF-8 repair of outgoing messages (src/common/utf8.c): valid text is kept,
 * a character cut by truncation is dropped, invalid bytes, overlong forms, surrogates and code
 * points past U+10FFFF become '?'. Runs on the test's main thread only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/utf8.h"

static void check(const char *in, const char *want)
{
    char buf[64];
    strcpy(buf, in);
    assert_int_equal(shardz__utf8_clean(buf), strlen(want));
    assert_string_equal(buf, want);
}

static void test_clean(void **state)
{
    (void)state;
    /* clang-format off */
    check("plain ascii", "plain ascii");
    check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    check("a\xc3", "a");                       /* a 2-byte character cut at the end */
    check("a\xe2\x82", "a");                   /* a 3-byte one */
    check("a\xf0\x9f\x98", "a");               /* a 4-byte one */
    check("a\xff" "b", "a?b");                 /* never valid */
    check("a\x80" "b", "a?b");                 /* a lone continuation byte */
    check("\xc0\xaf", "??");                   /* overlong '/' */
    check("\xe0\x80\xaf", "???");              /* overlong, 3 bytes */
    check("\xed\xa0\x80", "???");              /* a surrogate */
    check("\xf4\x90\x80\x80", "????");         /* past U+10FFFF */
    check("\xc3" "x", "?x");                   /* a lead byte without its continuation */
    check("", "");
    /* clang-format on */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
