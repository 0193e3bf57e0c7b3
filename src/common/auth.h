/* The shared-secret check of an HTTP Authorization header ("Bearer <secret>"), one
 * constant-time comparison for the coordinator and libshardz. Internal to shardz (not a public
 * header). Pure and thread-safe: any thread may call it. */
#ifndef SHARDZ_COMMON_AUTH_H
#define SHARDZ_COMMON_AUTH_H

#include <stdbool.h>

/* Whether authorization (the header's value, borrowed; NULL: no header) carries secret
 * (borrowed; NULL or "": no secret required, always true). Every byte of the secret is compared
 * whatever the header holds, so the time taken does not tell how many leading bytes matched. */
bool shardz__bearer_ok(const char *secret, const char *authorization);

/* Whether host (borrowed: a name or an address, without port or brackets) is a loopback one:
 * 127.0.0.0/8, ::1 or localhost. A listener on any other address, without a secret, lets
 * anyone who reaches it act as the coordinator or a worker (protected mode, issue 16). */
bool shardz__host_is_loopback(const char *host);

#endif
