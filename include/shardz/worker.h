/* libshardz worker API: makes a process a shardz worker (docs/PROTOCOL.md section 4).
 * The library registers the node, answers the coordinator's pings and assignments (whole sets,
 * or deltas when the coordinator agrees), applies each to what the process serves through the
 * application's serve / delete hooks, enforces the strict-mode lease, and leaves gracefully.
 * Threads and ownership: docs/LIBRARY.md and the comments below. */
#ifndef SHARDZ_WORKER_H
#define SHARDZ_WORKER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The largest request body the worker endpoint accepts (the protocol's 1 MiB). */
#define SHARDZ_WORKER_MAX_BODY (1u << 20)
/* The most load dimensions a worker reports (the protocol's limit). */
#define SHARDZ_WORKER_MAX_DIMS 8

typedef struct shardz_worker shardz_worker; /* opaque */

/* Why a hook is called. */
typedef enum {
    SHARDZ_CAUSE_ASSIGN = 0, /* an assignment from the coordinator */
    SHARDZ_CAUSE_LEASE = 1,  /* delete only: the strict-mode lease lapsed without contact */
    SHARDZ_CAUSE_RELEASE = 2 /* delete only: a leave found the node unknown to the coordinator */
} shardz_cause;

/* What a serve or delete hook is told. Every pointer is borrowed and valid only during the
 * call; copy what you keep. */
typedef struct {
    const char *ns;         /* namespace */
    const char *node;       /* this worker's node id */
    const char *partition;  /* partition id */
    unsigned slot;          /* replica slot index (0 is the primary when roles are on) */
    const char *role;       /* "none", "primary" or "secondary" */
    const char *state;      /* replica state as assigned: "adding", "serving", "dropping" */
    int64_t generation;     /* fencing token: only grows for a partition */
    int64_t revision;       /* the assignment's revision (the last applied one for a lease) */
    const char *range_lo;   /* key range [lo, hi) of a range partition; NULL when none */
    const char *range_hi;   /* NULL when none or unbounded */
    int update;             /* serve only: 1 when the partition is already served here and only
                               its generation or role changed (update in place) */
    int64_t old_generation; /* serve with update: the generation served until now; else 0 */
    shardz_cause cause;
    /* State transfer (docs/PROTOCOL.md 4.3), serve of an "adding" replica only: the node it
     * comes from (its previous owner, or another replica's) and that node's shardz address
     * ("host:port"): copy the partition's data from there. NULL when the coordinator named
     * none (a first placement, or a coordinator that did not agree to "transfer"). */
    const char *from_node;
    const char *from_address;
} shardz_worker_replica;

/* A serve or delete hook. Returns 0 on success; on failure returns non-zero and may write a
 * NUL-terminated reason into err (errlen bytes, at least 64), reported to the coordinator.
 * Called on the library's hook thread only, one call at a time (see docs/LIBRARY.md). A hook
 * may call shardz_worker_report_load and shardz_worker_status, nothing else of this API. */
typedef int (*shardz_worker_hook)(const shardz_worker_replica *r, char *err, size_t errlen,
                                  void *user);

/* One capacity: a load dimension name and the node's capacity in it. */
typedef struct {
    const char *name; /* 1-63 bytes of [A-Za-z0-9._:-] */
    double value;     /* >= 0, finite */
} shardz_worker_capacity;

/* Whether the worker enforces the strict-mode lease (PROTOCOL.md section 6). */
typedef enum {
    SHARDZ_LEASE_AUTO = 0, /* follow the namespace: on when its consistency is "strict" (learned
                              from the register reply or GET /v1/namespaces/{ns}) */
    SHARDZ_LEASE_ON = 1,   /* always enforce */
    SHARDZ_LEASE_OFF = 2   /* never enforce */
} shardz_lease_mode;

/* Log levels for the log hook. */
enum { SHARDZ_LOG_ERROR = 0, SHARDZ_LOG_WARN = 1, SHARDZ_LOG_INFO = 2, SHARDZ_LOG_DEBUG = 3 };

/* A worker's configuration. Zero-initialise, then fill. shardz_worker_create copies every
 * string and array: the config and what it points to may be freed once create returns. */
typedef struct {
    const char *coordinator; /* "host:port" of shardzd (required), or several coordinators
                              * "h1:p1,h2:p2" (at most 8): a refused connection or a 503
                              * ENOTLEADER is tried on the next (docs/PROTOCOL.md section 10) */
    const char *ns;          /* namespace (required) */
    const char *node_id;     /* this node's id (required) */
    /* The library's own HTTP listener, "host:port" (port 0: any free port), run on the
     * library's event thread. NULL: no listener; the application's own HTTP server passes
     * every request under /shardz/v1/ to shardz_worker_handle. */
    const char *listen;
    /* "host:port" the coordinator reaches this worker at. NULL: the listen address with its
     * bound port (required when listen is NULL or a wildcard address). */
    const char *advertise;
    const char *zone;                       /* fault domain; NULL: "" */
    const shardz_worker_capacity *capacity; /* ncapacity entries; NULL when 0 */
    size_t ncapacity;                       /* at most SHARDZ_WORKER_MAX_DIMS */
    const char *secret;       /* shared secret (Authorization: Bearer), both ways; NULL: none */
    shardz_worker_hook serve; /* required */
    shardz_worker_hook del;   /* required: the delete hook */
    void *user;               /* passed to the hooks */
    /* Monotonic clock in milliseconds for the lease, the stamps sent to the coordinator
     * (PROTOCOL.md 4.1) and the re-register watchdog; NULL: CLOCK_BOOTTIME (it keeps counting
     * while the machine is suspended). Tests inject one. Called from any library thread:
     * thread-safe. */
    uint64_t (*clock_ms)(void *clock_user);
    void *clock_user;
    shardz_lease_mode lease_mode;
    /* The library expires its lease lease_margin_ms early so timer lag and the hooks' own time
     * cannot make two owners overlap. 0: 2 * lease_check_ms + lease_ms / 10. */
    uint32_t lease_margin_ms;
    uint32_t lease_check_ms;     /* lease and watchdog timer period; 0: 25 */
    uint32_t request_timeout_ms; /* requests to the coordinator; 0: 5000 */
    uint32_t backoff_max_ms;     /* registration / leave retry backoff cap; 0: 2000 */
    /* Re-register when no ping arrived for this long (the coordinator may have forgotten the
     * node). 0: max(10 * ping_interval_ms, 3000). */
    uint32_t reregister_after_ms;
    /* Log hook, called from any library thread (serialise inside if needed). NULL: warnings
     * and errors to stderr. msg is borrowed for the call. */
    void (*log)(void *log_user, int level, const char *msg);
    void *log_user;
} shardz_worker_config;

/* What shardz_worker_status reports. A copy: owned by the caller. */
typedef struct {
    int started;              /* started and not stopped */
    int registered;           /* the coordinator answered a registration */
    int leaving;              /* shardz_worker_leave was called */
    int released;             /* an assignment with "released": true was applied */
    int lease_enforced;       /* the strict-mode lease is on */
    int64_t applied_revision; /* as the next ping reply will report it */
    int64_t ping_interval_ms; /* as learned from the coordinator (0: not yet) */
    int64_t lease_ms;         /* as learned from the coordinator (0: not yet) */
    size_t serving;           /* replicas served now */
    uint64_t registrations;   /* successful registrations */
    uint64_t assignments;     /* assignments applied */
    uint64_t lease_expiries;  /* times the lease lapsed and everything was deleted */
    uint16_t port;            /* the listener's bound port (0 without a listener) */
    char last_error[160];     /* the last failure talking to the coordinator ("" if none) */
    uint64_t lease_checks;    /* times the lease / watchdog timer has run: a run that starts
                               * after this status was read sees the clock as it is now */
    size_t queued;            /* jobs (assignments, lease drops) waiting for the hook thread */
    int stopping;             /* shardz_worker_stop has stopped the hook thread taking jobs:
                               * what is still queued is answered 409 without running */
    /* Delta assignments (docs/PROTOCOL.md 4.3). The library always offers them when it
     * registers and applies one whenever its base is the revision applied here. */
    int delta_agreed;        /* the coordinator's last register reply agreed to send deltas */
    uint64_t deltas;         /* delta assignments applied (also counted in assignments) */
    uint64_t deltas_refused; /* deltas refused with 409 ESTALE, their base not the revision
                              * applied here: the coordinator then sends the full set */
} shardz_worker_status;

/* Validates cfg and creates a worker (not started). 0, SHARDZ_EINVAL (a bad or missing field;
 * the log hook says which), SHARDZ_ENOMEM. *out is owned by the caller: free it with
 * shardz_worker_destroy. */
int shardz_worker_create(const shardz_worker_config *cfg, shardz_worker **out);

/* Binds the listener (if any) and starts the library's threads; registration then proceeds in
 * the background, retried with backoff until the coordinator answers (see
 * shardz_worker_wait_registered). Returns 0, SHARDZ_EIO (bind failed), SHARDZ_EBUSY (already
 * started once), SHARDZ_ENOMEM. On error nothing runs. */
int shardz_worker_start(shardz_worker *w);

/* Waits until the worker is registered, at most timeout_ms (< 0: forever). 0 or
 * SHARDZ_ETIMEDOUT. Thread-safe. */
int shardz_worker_wait_registered(shardz_worker *w, int timeout_ms);

/* Records a load sample of a served partition in one dimension; the latest sample per
 * (partition, dimension) goes into the next ping reply, then is cleared. Thread-safe, any
 * thread (hooks included). 0, SHARDZ_EINVAL (bad name or value), SHARDZ_ENOENT (partition not
 * served; a serve hook may already report for its partition), SHARDZ_ENOSPC (more than
 * SHARDZ_WORKER_MAX_DIMS dimension names). */
int shardz_worker_report_load(shardz_worker *w, const char *partition, const char *dimension,
                              double value);

/* The longest split key shardz_worker_report_split_key takes (the coordinator's limit). */
#define SHARDZ_WORKER_MAX_SPLIT_KEY 1024

/* Range namespaces: suggests where to split a served range, e.g. the median key of the
 * application's own key histogram of it; the latest key per partition goes into the next ping
 * reply ("split_at"), then is cleared. The coordinator uses it when the load balancer splits
 * that range for being hot (a key outside the range is ignored: the middle is used). key is
 * copied. Thread-safe, any thread. 0, SHARDZ_EINVAL (bad partition id, key empty or longer
 * than SHARDZ_WORKER_MAX_SPLIT_KEY), SHARDZ_ENOENT (partition not served), SHARDZ_ENOMEM. */
int shardz_worker_report_split_key(shardz_worker *w, const char *partition, const char *key);

/* State transfer (docs/PROTOCOL.md 4.3). A serve hook that must copy the partition's data
 * before it can take traffic (for instance from r->from_address) calls this for r->partition
 * before returning 0: the replica is served, but the coordinator keeps routing on the node it
 * comes from until shardz_worker_ready, or until the namespace's transfer_timeout_ms (then
 * routing switches anyway). A hook that never calls it is ready at once, as before. Call it
 * only from a serve hook, for the partition being served. 0, SHARDZ_EINVAL, SHARDZ_ENOENT
 * (not the partition being served). With a coordinator that did not agree to "transfer" it
 * changes nothing on the wire: routing switches at once. */
int shardz_worker_not_ready(shardz_worker *w, const char *partition);

/* The transfer of a partition that serve marked not ready is done: the next ping replies
 * report it ready ("ready"), until an assignment shows it serving. generation is the one the
 * serve hook was given (r->generation): a report for an older serve of the partition is
 * refused. Thread-safe, any thread (a hook included). 0, SHARDZ_EINVAL, SHARDZ_ENOENT (not
 * served, or at another generation). */
int shardz_worker_ready(shardz_worker *w, const char *partition, int64_t generation);

/* Without a listener: the application's HTTP server hands the library one request for a path
 * under /shardz/v1/. method ("POST"), path (may carry a query), authorization (the
 * Authorization header's value or NULL) and body (len bytes) are borrowed for the call. On 0,
 * *status is the HTTP status to answer and *reply (malloc'd, *reply_len bytes of JSON, owned
 * by the caller: free()) the body. Pings are answered at once on the calling thread; an
 * assignment waits until the hook thread applied it. Thread-safe; never call it from a hook.
 * Returns SHARDZ_EINVAL for NULL arguments, SHARDZ_ENOMEM. */
int shardz_worker_handle(shardz_worker *w, const char *method, const char *path,
                         const char *authorization, const void *body, size_t len, char **reply,
                         size_t *reply_len, int *status);

/* Graceful shutdown: sends the leave (retried until the coordinator answers), keeps answering
 * pings and assignments while the node's replicas move away, and returns 0 once an assignment
 * with "released": true has been applied, SHARDZ_ETIMEDOUT after timeout_ms (< 0: no limit),
 * or SHARDZ_EBUSY when another thread stops the worker meanwhile; SHARDZ_EINVAL when not
 * running. The worker keeps running: call shardz_worker_stop next. Blocks: never call it from a
 * hook, nor (without a listener) from the thread that runs shardz_worker_handle. */
int shardz_worker_leave(shardz_worker *w, int timeout_ms);

/* A copy of the worker's status. Thread-safe. */
void shardz_worker_status_get(shardz_worker *w, shardz_worker_status *st);

/* 1 while this worker may serve what it holds: the strict-mode lease is not enforced, or it
 * has not lapsed (measured now on the worker's clock, so a process that was paused longer than
 * the lease learns it before its timer runs). 0 once lapsed, until the drop is done and the
 * coordinator is heard from again. Strict-mode applications call it on their request path.
 * Thread-safe (a short mutex). */
int shardz_worker_lease_ok(shardz_worker *w);

/* The address the worker registers ("host:port", with the bound port). Borrowed: valid until
 * shardz_worker_destroy; complete once shardz_worker_start returned 0. */
const char *shardz_worker_address(const shardz_worker *w);

/* Stops the threads and closes the listener. Does not call delete for what is still served
 * (the process owns it until it exits; a restarted worker that re-registers before it is dead
 * keeps its replicas). Pending shardz_worker_handle calls return 409 EBUSY. Idempotent; never
 * call it from a hook. */
void shardz_worker_stop(shardz_worker *w);

/* Stops the worker if needed and frees it. Accepts NULL. */
void shardz_worker_destroy(shardz_worker *w);

#ifdef __cplusplus
}
#endif
#endif
