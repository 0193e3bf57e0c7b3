/* libshardz client API: one blocking JSON request at a time to the coordinator's HTTP API
 * (docs/PROTOCOL.md), for tools such as shardzctl. It adds the secret, bounds the reply, and
 * tells "the coordinator answered (any status)" apart from "it could not be reached". It knows
 * no routes: callers build the paths. A client belongs to one thread. */
#ifndef SHARDZ_CLIENT_H
#define SHARDZ_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shardz_client shardz_client; /* opaque */

#define SHARDZ_CLIENT_TIMEOUT_MS 10000L      /* default per-request timeout */
#define SHARDZ_CLIENT_MAX_REPLY (256u << 20) /* default largest reply accepted: 256 MiB */
#define SHARDZ_CLIENT_PATH_MAX 700           /* longest path (with query) a call accepts */

/* Creates a client for the coordinator at endpoint ("host:port", "[v6]:port", optionally with
 * a leading "http://"; or several coordinators "h1:p1,h2:p2", tried in turn on a refused
 * connection or a 503 ENOTLEADER). secret: sent as "Authorization: Bearer <secret>" on every
 * request; NULL or "" for none. Both strings are copied. Connects lazily (on the first call). 0
 * with *out set (owned by the caller: shardz_client_destroy); SHARDZ_EINVAL for a malformed
 * endpoint or a secret over 990 bytes; SHARDZ_ENOMEM. *out is NULL on failure. */
int shardz_client_new(const char *endpoint, const char *secret, shardz_client **out);

/* Sets the timeout of the following calls (whole request, connecting included; connecting
 * alone is capped at 3 s). timeout_ms <= 0 restores SHARDZ_CLIENT_TIMEOUT_MS. */
void shardz_client_set_timeout(shardz_client *c, long timeout_ms);

/* Sets the largest reply body the following calls accept; 0 restores the default. */
void shardz_client_set_max_reply(shardz_client *c, size_t max_bytes);

/* Sends method ("GET", "POST", "DELETE", ...) to path (starting with '/', with its query
 * string already escaped: see shardz_client_escape) with json_body (NUL-terminated; NULL for
 * none; borrowed) and waits for the whole reply.
 * 0 when the coordinator answered, whatever the status: *status is the HTTP status and
 * *json_reply the body (malloc'd, NUL-terminated, possibly ""; the caller free()s it).
 * Otherwise *json_reply is NULL, *status 0, and the result is SHARDZ_EIO (could not connect or
 * the connection failed), SHARDZ_ETIMEDOUT, SHARDZ_ETOOBIG (reply over the limit),
 * SHARDZ_EBUSY (cancelled: shardz_client_cancel), SHARDZ_EINVAL (path not starting with '/' or
 * over SHARDZ_CLIENT_PATH_MAX bytes), SHARDZ_ENOMEM. */
int shardz_client_call(shardz_client *c, const char *method, const char *path,
                       const char *json_body, int *status, char **json_reply);

/* Makes the call in flight (within about a second) and every later call return SHARDZ_EBUSY.
 * Async-signal-safe: meant for a SIGINT handler. Only sets a flag. */
void shardz_client_cancel(shardz_client *c);

/* The endpoint as given to shardz_client_new, without "http://". Valid until destroy. */
const char *shardz_client_endpoint(const shardz_client *c);

/* Frees the client and closes its connection. Accepts NULL. Not while a call is in flight. */
void shardz_client_destroy(shardz_client *c);

/* Percent-encodes s for a query string value (everything but [A-Za-z0-9._~-]) into out
 * (outlen bytes, NUL-terminated). 0, or SHARDZ_ETOOBIG when it does not fit (out is then ""). */
int shardz_client_escape(const char *s, char *out, size_t outlen);

/* The protocol's id rules (docs/PROTOCOL.md section 1), for checking input before sending:
 * a node or partition id is 1-255 bytes of [A-Za-z0-9._:-]; a namespace name 1-63 bytes of
 * [a-z0-9._-] starting with a letter or digit. NULL is never valid. */
bool shardz_client_valid_id(const char *s);
bool shardz_client_valid_ns(const char *s);

#ifdef __cplusplus
}
#endif

#endif
