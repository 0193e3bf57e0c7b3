/* The bearer secret check (common/auth.h): a constant-time comparison shared by the
 * coordinator's API and libshardz's worker listener. Pure: no state, any thread. */
#include <string.h>

#include "common/auth.h"

bool shardz__bearer_ok(const char *secret, const char *authorization)
{
    static const char prefix[] = "Bearer ";
    size_t sl;
    size_t al;
    unsigned diff = 0;

    if (secret == NULL || secret[0] == '\0') {
        return true;
    }
    if (authorization == NULL || strncmp(authorization, prefix, sizeof prefix - 1) != 0) {
        return false;
    }
    authorization += sizeof prefix - 1;
    sl = strlen(secret);
    al = strlen(authorization);
    /* Compare every byte of the secret whatever the header holds: no early exit. */
    for (size_t i = 0; i < sl; i++) {
        diff |= (unsigned)(unsigned char)secret[i] ^
                (unsigned)(unsigned char)(i < al ? authorization[i] : 0);
    }
    return diff == 0 && al == sl;
}

bool shardz__host_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}
