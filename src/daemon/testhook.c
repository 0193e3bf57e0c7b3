/* Test hooks (testhook.h): hold the calling thread while a file exists, or say whether it
 * exists. Tests set SHARDZ_TEST_STORE_HOLD, SHARDZ_TEST_STORE_FAIL (the store lane) and
 * SHARDZ_TEST_LOOP_HOLD (the loop, main.c). Runs on whichever thread calls it. */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "daemon/log.h"
#include "daemon/testhook.h"

#define HOLD_MAX_MS 60000

static int64_t now_ms(int64_t (*clock_ms)(void))
{
    return clock_ms ? clock_ms() : shardz__boot_ms();
}

bool szd_test_file(const char *env)
{
    const char *path = getenv(env);
    return path && access(path, F_OK) == 0;
}

void szd_test_hold(const char *env, const char *what, int64_t (*clock_ms)(void), int log_level)
{
    if (!szd_test_file(env)) {
        return;
    }
    int64_t t0 = now_ms(clock_ms);
    szd_log_at(log_level, SZD_WARN, "msg=\"test hold: %s held\"", what);
    struct timespec ts = {0, 10 * 1000 * 1000};
    while (szd_test_file(env) && now_ms(clock_ms) - t0 < HOLD_MAX_MS) {
        nanosleep(&ts, NULL);
    }
    szd_log_at(log_level, SZD_WARN, "msg=\"test hold: %s released\" held_ms=%lld", what,
               (long long)(now_ms(clock_ms) - t0));
}
