/* shardz_version(): the library's version as a string, made from include/shardz/version.h.
 * Pure, any thread. */
#include "shardz/version.h"

#define SZV_STR2(x) #x
#define SZV_STR(x) SZV_STR2(x)

const char *shardz_version(void)
{
    return SZV_STR(SHARDZ_VERSION_MAJOR) "." SZV_STR(SHARDZ_VERSION_MINOR) "." SZV_STR(
        SHARDZ_VERSION_PATCH);
}
