/* Test hooks read from the environment, so that tests can stall or fail a part of the daemon
 * the way a stalled disk, etcd or loop would. Tests only: nothing happens unless the named
 * variable is set. Any thread (each hook runs on the thread it stalls). */
#ifndef SZD_TESTHOOK_H
#define SZD_TESTHOOK_H

#include <stdbool.h>
#include <stdint.h>

/* While the file named by the environment variable `env` exists (at most 60 s), blocks the
 * calling thread, logging `what` held and released. Returns at once when `env` is unset or
 * the file is absent. clock_ms NULL: CLOCK_BOOTTIME. */
void szd_test_hold(const char *env, const char *what, int64_t (*clock_ms)(void), int log_level);

/* Whether the file named by the environment variable `env` exists now. */
bool szd_test_file(const char *env);

#endif
