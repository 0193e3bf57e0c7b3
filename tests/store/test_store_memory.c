/* The store conformance suite on the memory backend (the in-memory twin used by unit tests),
 * with its allocation-failure hook as the backend's internal fault point. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "conformance.h"
#include "store/store_int.h"

static int open_memory(const char *dir, const shardz_store_options *opt, shardz_store **out)
{
    (void)dir;
    return shardz_store_open_memory(opt, out);
}

int main(void)
{
    const store_backend memory = {
        .name = "memory",
        .open = open_memory,
        .default_sync = SHARDZ_STORE_SYNC_NONE,
        .fail_inside = store_memory_fail_alloc,
    };

    return conformance_run(&memory);
}
