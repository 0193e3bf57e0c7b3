/* shardz error codes: the one table of every error the project returns.
 * Every fallible call returns 0 or a negative SHARDZ_E* code; the table also yields the code's
 * name, a human message and the HTTP status the API answers with. */
#ifndef SHARDZ_ERROR_H
#define SHARDZ_ERROR_H

/* X(name, value, http status, message) */
#define SHARDZ_ERRNO_MAP(X)                                                                        \
    X(EINVAL, -1, 400, "invalid argument")                                                         \
    X(ENOMEM, -2, 503, "out of memory")                                                            \
    X(ENOENT, -3, 404, "not found")                                                                \
    X(EEXIST, -4, 409, "already exists")                                                           \
    X(ENOSPC, -5, 409, "no room: not enough eligible nodes, capacity or slots")                    \
    X(ESTALE, -6, 409, "stale: the state changed since this was computed")                         \
    X(ENOTSUP, -7, 400, "not supported by this kind")                                              \
    X(ERANGE, -8, 400, "value out of range")                                                       \
    X(EIO, -9, 500, "input/output error")                                                          \
    X(ETIMEDOUT, -10, 504, "timed out")                                                            \
    X(EBUSY, -11, 409, "busy")                                                                     \
    X(EPROTO, -12, 400, "protocol error")                                                          \
    X(ETOOBIG, -13, 413, "too large")                                                              \
    X(ENOTLEADER, -14, 503, "not the leader")                                                      \
    X(ECONFLICT, -15, 409, "conflict: compare-and-swap failed")

typedef enum {
    SHARDZ_OK = 0,
#define SHARDZ_ERR_ENUM(name, val, http, msg) SHARDZ_##name = val,
    SHARDZ_ERRNO_MAP(SHARDZ_ERR_ENUM)
#undef SHARDZ_ERR_ENUM
} shardz_err;

/* The message for an error code ("ok" for 0, "unknown error" for a code not in the table).
 * Returns a static string: never freed. */
const char *shardz_strerror(int err);
/* The code's name without prefix ("EINVAL"), or "OK"/"EUNKNOWN". Static string. */
const char *shardz_err_name(int err);
/* The HTTP status the API answers with for this code (200 for 0, 500 when unknown). */
int shardz_err_http_status(int err);

#endif
