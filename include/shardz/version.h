/* shardz's version: the numbers the build, the packages and shardz.pc take (CMakeLists.txt
 * reads them from this file), and shardz_version(), what the library linked at run time says.
 * Pure, thread-safe. */
#ifndef SHARDZ_VERSION_H
#define SHARDZ_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

#define SHARDZ_VERSION_MAJOR 0
#define SHARDZ_VERSION_MINOR 1
#define SHARDZ_VERSION_PATCH 0

/* One number that grows with every release: 10000 * major + 100 * minor + patch. */
#define SHARDZ_VERSION_NUMBER                                                                      \
    (SHARDZ_VERSION_MAJOR * 10000 + SHARDZ_VERSION_MINOR * 100 + SHARDZ_VERSION_PATCH)

/* The version of the library actually linked, "MAJOR.MINOR.PATCH" (a static string: never
 * freed). A program built against one header and run against a newer libshardz sees the
 * newer one here, while SHARDZ_VERSION_* above stay what it was compiled with. */
const char *shardz_version(void);

#ifdef __cplusplus
}
#endif

#endif
