/* libshardz internals shared by the worker and the router: id and address checks, the clock,
 * logging, JSON error bodies, the blocking HTTP client (libcurl, interruptible), the worker's
 * protocol messages (parsed and validated apart from any thread or socket) and the snapshot
 * builder. Internal to src/lib and its tests; the public API is include/shardz/{worker,router}.h.
 */
#ifndef SHARDZ_LIB_INT_H
#define SHARDZ_LIB_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "shardz/error.h"
#include "shardz/router.h"
#include "shardz/worker.h"

#define SZL_ID_MAX 255           /* node and partition ids: 1-255 bytes */
#define SZL_NS_MAX 63            /* namespace names: 1-63 bytes */
#define SZL_NAME_MAX 63          /* dimension names, roles, states, zones */
#define SZL_HOST_MAX 255         /* host part of "host:port" */
#define SZL_RANGE_MAX 1024       /* a range partition's bound */
#define SZL_REPLY_MAX (1u << 20) /* replies the worker reads from the coordinator */

/* ---- util.c ------------------------------------------------------------------------------ */

/* An id: 1-max bytes of [A-Za-z0-9._:-]. */
bool szl_valid_id(const char *s, size_t max);
/* A namespace name: 1-63 bytes of [a-z0-9._-], starting with a letter or digit. */
bool szl_valid_ns(const char *s);
/* Splits "host:port" ("[v6]:port" too) into host (NUL-terminated, brackets dropped) and port.
 * SHARDZ_EINVAL when malformed or the host does not fit hostlen. */
int szl_hostport(const char *hp, char *host, size_t hostlen, uint16_t *port);
/* The lease clock: CLOCK_BOOTTIME in milliseconds (common/clock.h), so a lease keeps running
 * while the machine is suspended. */
uint64_t szl_boot_ms(void);
/* An absolute CLOCK_MONOTONIC deadline timeout_ms from now, for pthread_cond_timedwait on a
 * condition variable created by szl_cond_init. */
struct timespec szl_deadline(int64_t timeout_ms);
/* A condition variable on CLOCK_MONOTONIC. */
int szl_cond_init(pthread_cond_t *cond);

typedef void (*szl_log_fn)(void *user, int level, const char *msg);
/* Formats and passes a message to fn, or to stderr (warnings and errors) when fn is NULL. */
void szl_log(szl_log_fn fn, void *user, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A JSON error body {"code": <name of err>, "message": msg}, malloc'd (NULL on out of
 * memory), with its length. */
char *szl_error_body(int err, const char *msg, size_t *len);
/* The SHARDZ_E* code named by an error body's "code" (0 when absent or unknown). */
int szl_error_code(const char *body, size_t len);
/* json_dumps(compact) with its length; NULL on out of memory. */
char *szl_dump(const json_t *j, size_t *len);
/* Reads an integer member: true when present and an integer within [lo, hi]. */
bool szl_get_int(const json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out);

/* ---- http.c: blocking HTTP/1.1 client on libcurl ----------------------------------------- */

/* One client per thread that uses it; szl_http_wakeup may be called from any thread to make
 * a request in flight on it return SHARDZ_EBUSY once *stop is set. Keeps connections alive. */
#define SZL_MAX_COORDS 8 /* coordinators one client may be given */
typedef struct {
    void *multi;                     /* CURLM */
    void *easy;                      /* CURL */
    void *headers;                   /* struct curl_slist: Content-Type, Expect, Authorization */
    char bases[SZL_MAX_COORDS][300]; /* "http://host:port", one per coordinator given */
    int nbases, cur;                 /* cur: the one that answered last */
    atomic_bool *stop;               /* owner's stop flag (borrowed) */
} szl_http;

/* The response of one request: status and body (malloc'd, NUL-terminated; free()). */
typedef struct {
    long status;
    char *body;
    size_t len;
} szl_http_resp;

/* hostports: "host:port", or several coordinators as "host:port,host:port" (at most
 * SZL_MAX_COORDS). SHARDZ_EINVAL for a bad list. */
int szl_http_init(szl_http *h, const char *hostports, const char *secret, atomic_bool *stop);
/* true when s is a valid "host:port[,host:port...]" list of at most SZL_MAX_COORDS. */
bool szl_hostports_valid(const char *s);
/* Sends method path (with query) and body (NULL for none) and waits for the whole response
 * (at most max_reply bytes) or timeout_ms. 0 with *resp filled when an HTTP response arrived
 * (any status); SHARDZ_EIO (connection failed), SHARDZ_ETIMEDOUT, SHARDZ_ETOOBIG, SHARDZ_EBUSY
 * (stopped), SHARDZ_ENOMEM; resp->body is NULL then. With several coordinators, a refused
 * connection (the request never left) or a 503 ENOTLEADER (nothing changed) is tried on the
 * next one, each at most once per call, starting from the one that answered last. */
int szl_http_request(szl_http *h, const char *method, const char *path, const char *body,
                     size_t len, long timeout_ms, size_t max_reply, szl_http_resp *resp);
void szl_http_wakeup(szl_http *h);
void szl_http_free(szl_http *h);

/* ---- proto.c: the worker's messages ------------------------------------------------------ */

/* One replica of an assignment. */
typedef struct {
    char *partition; /* malloc'd */
    unsigned slot;
    char role[SZL_NAME_MAX + 1];
    char state[SZL_NAME_MAX + 1];
    int64_t generation;
    char *range_lo;  /* malloc'd or NULL */
    char *range_hi;  /* malloc'd or NULL */
    char *from_node; /* state transfer: the node an adding replica comes from (malloc'd) or NULL */
    char *from_address; /* its address, host:port (malloc'd) or NULL */
} szl_rep;

/* A parsed assignment: replicas sorted by partition id, no duplicates. A delta (docs/PROTOCOL.md
 * 4.3) also has base_revision < revision and the removed partition ids, sorted, no duplicates,
 * none of them among the replicas; a full assignment has neither. */
typedef struct {
    int64_t revision;
    int64_t lease_ms;    /* 0 when absent */
    int64_t lease_stamp; /* -1 when absent: the worker's own clock the grant runs from */
    int64_t term;        /* -1 when absent: the sending coordinator's leadership */
    bool released;
    int consistency; /* -1 absent, 0 available, 1 strict (or unknown: strict) */
    szl_rep *reps;
    size_t n;
    bool delta;            /* "base_revision" was given: only the changes since it */
    int64_t base_revision; /* delta only */
    int64_t resync_from;   /* full only, 0: none. Applied even when older than the last one
                            * applied, if that one is exactly resync_from (a revision the
                            * coordinator never issued: docs/PROTOCOL.md 4.3) */
    char **removed;        /* delta only: nremoved malloc'd ids (the array too), or NULL */
    size_t nremoved;
} szl_assign;

/* A parsed ping. */
typedef struct {
    int64_t revision;
    int64_t lease_ms;    /* 0 when absent */
    int64_t lease_stamp; /* as in szl_assign */
    int64_t term;        /* as in szl_assign */
    int consistency;     /* as in szl_assign */
} szl_ping;

/* Parse and validate a ping / an assignment (full or delta) addressed to (ns, node). On error
 * the code (SHARDZ_EINVAL: not JSON, missing or bad field, base_revision not below revision;
 * SHARDZ_EPROTO: wrong namespace or node, duplicates, replicas with released, a delta that
 * releases, removed without base_revision, a partition both listed and removed) and a message
 * in msg; *out is then empty. A parsed assignment is owned by the caller: szl_assign_free. */
int szl_parse_ping(const char *body, size_t len, const char *ns, const char *node, szl_ping *out,
                   char *msg, size_t msglen);
int szl_parse_assign(const char *body, size_t len, const char *ns, const char *node,
                     szl_assign *out, char *msg, size_t msglen);
void szl_assign_free(szl_assign *a);
/* The replica of partition id in a (bsearch), or NULL. */
const szl_rep *szl_assign_find(const szl_assign *a, const char *partition);
/* Whether partition id is among a delta's removed ids (bsearch). */
bool szl_assign_removes(const szl_assign *a, const char *partition);
/* "strict" -> 1, "available" -> 0, anything else -> 1 (the safe side), absent -> -1. */
int szl_consistency(const json_t *obj);

/* ---- snapshot.c -------------------------------------------------------------------------- */

/* What the router knows of the namespace before reading a state. */
typedef struct {
    int kind;       /* -1 unknown, 0 neither hash nor range, 1 hash, 2 range */
    uint32_t slots; /* 0: unknown */
} szl_ns_info;

#define SZL_SLOT_NONE UINT32_MAX

/* A bump allocator for the snapshot's strings. */
typedef struct szl_chunk {
    struct szl_chunk *next;
    size_t used, cap;
    char data[];
} szl_chunk;

/* A routed key range of a "range" namespace: [lo, the next range's lo), the last to +inf. */
typedef struct {
    uint64_t pfx;   /* lo's first 8 bytes, big-endian, zero-padded: most compares end here */
    const char *lo; /* in the snapshot's strings; "" for the first range (-infinity) */
    size_t lo_len;
    uint32_t part; /* partition index */
} szl_range;

/* The first 8 bytes of a key as a big-endian number (zero-padded): keys order like it when
 * it differs. */
static inline uint64_t szl_key_prefix(const void *key, size_t len)
{
    const unsigned char *k = key;
    uint64_t v = 0;

    for (size_t i = 0; i < 8; i++) {
        v = v << 8 | (i < len ? k[i] : 0);
    }
    return v;
}

struct shardz_snapshot {
    atomic_long refs;
    int64_t revision;
    bool hash;      /* a "hash" namespace: key lookups work */
    bool range;     /* a "range" namespace: key lookups go through ranges */
    size_t nranges; /* range: the routed ranges, in key order (cover the key space) */
    szl_range *ranges;
    uint32_t nslots;     /* hash: the slot count (0 when unknown: no partitions yet) */
    uint32_t *slot_part; /* nslots entries: partition index, S_NONE when none */
    size_t nparts;
    shardz_route *parts;        /* id order */
    uint64_t *phash;            /* XXH3 of each partition id */
    shardz_route_replica *reps; /* every replica, grouped by partition */
    uint32_t *idx;              /* open addressing by id: partition index + 1, 0 empty */
    size_t idx_mask;
    szl_chunk *strings;
};

/* The range lookup, shared by the snapshot and router calls: the last range whose lo <= key;
 * *idx gets its position in key order. */
static inline int szl_range_route(const shardz_snapshot *s, const void *key, size_t len,
                                  uint32_t *idx, const shardz_route **out)
{
    size_t lo = 0, hi = s->nranges;
    uint64_t kp = szl_key_prefix(key, len);

    if (hi == 0) {
        return SHARDZ_ENOENT;
    }
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        const szl_range *r = &s->ranges[mid];
        size_t n = r->lo_len < len ? r->lo_len : len;
        int c = r->pfx != kp ? (r->pfx < kp ? -1 : 1) : n > 0 ? memcmp(r->lo, key, n) : 0;

        if (c < 0 || (c == 0 && r->lo_len <= len)) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if (idx != NULL) {
        *idx = (uint32_t)lo;
    }
    *out = &s->parts[s->ranges[lo].part];
    return 0;
}

/* The slot lookup itself, shared by the snapshot and router calls. */
static inline int szl_slot_route(const shardz_snapshot *s, uint32_t sl, const shardz_route **out)
{
    uint32_t p = s->slot_part[sl];

    if (p == SZL_SLOT_NONE) {
        return SHARDZ_ENOENT;
    }
    *out = &s->parts[p];
    return 0;
}

/* Builds a snapshot (one reference) from a parsed state. err gets the reason on failure. */
int szl_snapshot_build(const json_t *state, const szl_ns_info *ns, shardz_snapshot **out, char *err,
                       size_t errlen);

#endif
