/* The clock every lease and failure timing reads (issue 15): CLOCK_BOOTTIME, which keeps
 * counting while the machine is suspended, so a suspended worker's lease runs out on its own
 * clock as the coordinator sees it (CLOCK_MONOTONIC stops during a suspend). Internal to
 * shardz (not a public header). Pure reads of the kernel's clock; thread-safe. */
#ifndef SHARDZ_COMMON_CLOCK_H
#define SHARDZ_COMMON_CLOCK_H

#include <stdint.h>

/* CLOCK_BOOTTIME in milliseconds (CLOCK_MONOTONIC where the kernel has no CLOCK_BOOTTIME). */
int64_t shardz__boot_ms(void);

#endif
