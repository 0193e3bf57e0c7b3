/* libshardz router API: answers "who serves partition P / key K" from a local cache of the
 * coordinator's state (docs/PROTOCOL.md section 7), kept fresh by a background thread that
 * long-polls the watch. The cache is an immutable snapshot swapped atomically: lookups take no
 * lock and do not allocate; in a hash namespace a key lookup is the key's hash plus one array
 * read. Ownership of every returned pointer is stated below and in docs/LIBRARY.md. */
#ifndef SHARDZ_ROUTER_H
#define SHARDZ_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shardz_router shardz_router;     /* opaque */
typedef struct shardz_snapshot shardz_snapshot; /* opaque, immutable, reference counted */

/* One replica of a partition as the state shows it. Read-only; strings are never NULL ("" when
 * the state did not say). */
typedef struct {
    const char *node;       /* node id */
    const char *address;    /* node's "host:port" */
    const char *role;       /* "none", "primary", "secondary" */
    const char *state;      /* replica state: "adding", "serving", "dropping" */
    const char *node_state; /* node state: "alive", "suspect", "dead", ... */
    unsigned slot;          /* replica slot index */
    int64_t generation;     /* the replica's generation (the partition's when not given) */
} shardz_route_replica;

/* A partition and its replicas. Read-only. */
typedef struct {
    const char *partition;                /* id */
    int64_t generation;                   /* the partition's generation */
    const shardz_route_replica *replicas; /* nreplicas, in slot order */
    size_t nreplicas;
    /* The replica to send requests to: the serving primary when there is one, else the first
     * serving replica; -1 when no replica is serving. */
    int target;
} shardz_route;

/* A router's configuration. Zero-initialise, then fill; create copies the strings. */
typedef struct {
    const char *coordinator;   /* "host:port" of shardzd (required), or several coordinators
                                * "h1:p1,h2:p2" (at most 8), tried in turn as by the worker */
    const char *ns;            /* namespace (required) */
    const char *secret;        /* NULL: none */
    uint32_t watch_timeout_ms; /* long-poll timeout; 0: 30000 */
    uint32_t start_timeout_ms; /* how long shardz_router_start waits for a first state; 0: 5000 */
    uint32_t backoff_max_ms;   /* retry backoff cap after a failed request; 0: 2000 */
    size_t max_state_bytes;    /* largest state body accepted; 0: 256 MiB */
    /* Called on the router thread after each new snapshot was installed. May call lookups. */
    void (*on_change)(void *user, int64_t revision);
    void *user;
    /* Log hook (any thread); NULL: warnings and errors to stderr. */
    void (*log)(void *log_user, int level, const char *msg);
    void *log_user;
} shardz_router_config;

/* Creates a router (no thread yet). 0, SHARDZ_EINVAL, SHARDZ_ENOMEM. *out is owned by the
 * caller: shardz_router_destroy. */
int shardz_router_create(const shardz_router_config *cfg, shardz_router **out);

/* Starts the background thread: it reads GET /v1/namespaces/{ns} (sharder kind and slot count)
 * and GET .../state, then long-polls GET .../watch?revision=R&timeout_ms=T, installing each
 * newer state; failed requests are retried with backoff. Waits until the first snapshot is
 * installed: 0, or SHARDZ_ETIMEDOUT after start_timeout_ms (the thread keeps trying; lookups
 * answer SHARDZ_ENOENT meanwhile). SHARDZ_EBUSY when already started, SHARDZ_ENOMEM. */
int shardz_router_start(shardz_router *r);

/* Parses a /state body (json, len bytes, borrowed) and installs it, as the thread would. For
 * applications that get the state another way, and for tests. 0, SHARDZ_EINVAL / SHARDZ_EPROTO
 * (bad state; the current snapshot stays), SHARDZ_ESTALE (revision not newer), SHARDZ_ENOMEM.
 * Thread-safe. */
int shardz_router_load_state(shardz_router *r, const char *json, size_t len);

/* The installed snapshot's revision; 0 before the first. Thread-safe (a short mutex). */
int64_t shardz_router_revision(shardz_router *r);

/* Waits until the installed revision is >= revision, at most timeout_ms (< 0: forever).
 * 0 or SHARDZ_ETIMEDOUT. Thread-safe. */
int shardz_router_wait(shardz_router *r, int64_t revision, int timeout_ms);

/* Lookups on the current snapshot. Lock-free (an atomic load and a per-thread cached
 * reference; the first lookup after a change takes a short mutex once per thread). *out
 * points into the snapshot this thread holds: valid until this thread's next lookup through
 * any shardz_router_lookup_* call, or shardz_router_thread_release. Thread-safe.
 * Returns 0, SHARDZ_ENOENT (no snapshot yet, unknown partition, or a slot no partition holds),
 * SHARDZ_ENOTSUP (lookup_key in a namespace that is neither "hash" nor "range"). */
int shardz_router_lookup_partition(shardz_router *r, const char *partition,
                                   const shardz_route **out);
/* The key's slot is shardz_key_slot(key, len, slots) (include/shardz/hash.h); key is
 * borrowed. *slot (may be NULL) receives it. In a "range" namespace the key's routed range
 * (the last whose lo <= key, bytewise) is found by binary search and *slot receives its index
 * in key order. */
int shardz_router_lookup_key(shardz_router *r, const void *key, size_t len, uint32_t *slot,
                             const shardz_route **out);
/* Drops the calling thread's cached snapshot references (of every router). Pointers from
 * earlier lookups on this thread become invalid. Threads that exit drop them by themselves. */
void shardz_router_thread_release(void);

/* The current snapshot with a reference taken, or NULL before the first. For many lookups
 * against one consistent view: the snapshot and every pointer into it stay valid until
 * shardz_snapshot_release, even across router updates and shardz_router_destroy. */
shardz_snapshot *shardz_router_snapshot(shardz_router *r);

/* Stops the thread (interrupting a long-poll). Idempotent. */
void shardz_router_stop(shardz_router *r);
/* Stops and frees the router and its reference to the current snapshot. Snapshots held by
 * the application (or cached by other threads) stay valid until released. Accepts NULL. */
void shardz_router_destroy(shardz_router *r);

/* ---- snapshots ------------------------------------------------------------------------ */

/* Builds a snapshot from a /state body (borrowed). slots: the namespace's slot count when the
 * state does not carry one (0: take "slots" from the state, or the end of the highest slot
 * range). *out holds one reference (release it). 0, SHARDZ_EINVAL (not JSON, a missing or bad
 * field), SHARDZ_EPROTO (overlapping slots, duplicate partitions), SHARDZ_ENOMEM. */
int shardz_snapshot_from_state(const char *json, size_t len, uint32_t slots, shardz_snapshot **out);
/* Takes one more reference; returns s. Thread-safe. */
shardz_snapshot *shardz_snapshot_ref(shardz_snapshot *s);
/* Drops a reference; the last one frees the snapshot. Accepts NULL. Thread-safe. */
void shardz_snapshot_release(shardz_snapshot *s);

int64_t shardz_snapshot_revision(const shardz_snapshot *s);
/* The slot count of a hash namespace; 0 for other kinds. */
uint32_t shardz_snapshot_slots(const shardz_snapshot *s);
size_t shardz_snapshot_partition_count(const shardz_snapshot *s);
/* Partition i (0 <= i < count) in id order; NULL when out of range. */
const shardz_route *shardz_snapshot_partition_at(const shardz_snapshot *s, size_t i);
/* Lookups on a snapshot: *out points into s (valid while the caller holds its reference).
 * Same return codes as the router's lookups. Pure reads: thread-safe. */
int shardz_snapshot_lookup_partition(const shardz_snapshot *s, const char *partition,
                                     const shardz_route **out);
int shardz_snapshot_lookup_key(const shardz_snapshot *s, const void *key, size_t len,
                               uint32_t *slot, const shardz_route **out);
/* The partition holding a slot (slot < shardz_snapshot_slots(s)): the key lookup without the
 * hashing. */
int shardz_snapshot_lookup_slot(const shardz_snapshot *s, uint32_t slot, const shardz_route **out);

#ifdef __cplusplus
}
#endif
#endif
