/* The lease clock (clock.h): CLOCK_BOOTTIME in milliseconds. Called from any thread of the
 * daemon (its injectable clock's default) and of libshardz (the worker's lease and stamps). */
#define _GNU_SOURCE
#include "common/clock.h"

#include <time.h>

int64_t shardz__boot_ms(void)
{
    struct timespec ts;

#ifdef CLOCK_BOOTTIME
    if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0) {
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
#endif
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
