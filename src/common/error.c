/* The error table's lookups: message, name and HTTP status of a SHARDZ_E* code.
 * Pure and thread-safe; everything comes from SHARDZ_ERRNO_MAP in include/shardz/error.h. */
#include "shardz/error.h"

const char *shardz_strerror(int err)
{
    switch (err) {
    case 0:
        return "ok";
#define X(name, val, http, msg)                                                                    \
    case val:                                                                                      \
        return msg;
        SHARDZ_ERRNO_MAP(X)
#undef X
    }
    return "unknown error";
}

const char *shardz_err_name(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define X(name, val, http, msg)                                                                    \
    case val:                                                                                      \
        return #name;
        SHARDZ_ERRNO_MAP(X)
#undef X
    }
    return "EUNKNOWN";
}

int shardz_err_http_status(int err)
{
    switch (err) {
    case 0:
        return 200;
#define X(name, val, http, msg)                                                                    \
    case val:                                                                                      \
        return http;
        SHARDZ_ERRNO_MAP(X)
#undef X
    }
    return 500;
}
