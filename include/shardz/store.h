/* shardz store: a versioned key-value store with etcd v3 semantics, behind one interface with
 * several backends (memory for tests, SQLite embedded, etcd later), plus the key layout the
 * daemon keeps per namespace. A handle is used by one thread at a time (the caller serialises);
 * distinct handles are independent. Reference: docs/STORE.md. */
#ifndef SHARDZ_STORE_H
#define SHARDZ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardz/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits (every backend enforces the same ones, checked before the backend is called) ---- */

/* A key is 1..SHARDZ_STORE_MAX_KEY bytes (any bytes); longer is SHARDZ_ETOOBIG. */
#define SHARDZ_STORE_MAX_KEY 1024
/* A value is 0..SHARDZ_STORE_MAX_VALUE bytes; larger is SHARDZ_ETOOBIG. */
#define SHARDZ_STORE_MAX_VALUE (1024 * 1024)
/* Operations per transaction list, and compares per transaction: etcd's default --max-txn-ops. */
#define SHARDZ_STORE_MAX_TXN_OPS 128
/* Bytes of keys and values in one transaction (compares and operations together): under etcd's
 * default --max-request-bytes (1.5 MiB) with room for its framing. */
#define SHARDZ_STORE_MAX_TXN_BYTES (1024 * 1024 + 256 * 1024)
/* Revisions of change history a store keeps by default (see shardz_store_changes). */
#define SHARDZ_STORE_HISTORY_DEFAULT 10000

/* changes-since asked for a revision whose history was discarded (etcd's "compacted"): the
 * caller resyncs from a full range. The store returns SHARDZ_ESTALE for nothing else. */
#define SHARDZ_STORE_ECOMPACTED SHARDZ_ESTALE

/* ---- handle, options, status ---- */

/* An open store. Opaque; created by a shardz_store_open_* function, freed by
 * shardz_store_close. */
typedef struct shardz_store shardz_store;

/* What a committed write survives. */
typedef enum {
    SHARDZ_STORE_SYNC_FULL = 0, /* fsync on every commit: survives power loss (the default) */
    SHARDZ_STORE_SYNC_NORMAL,   /* fsync at checkpoints: survives a process crash, not power loss */
    SHARDZ_STORE_SYNC_NONE,     /* nothing is durable: the memory backend */
} shardz_store_sync;

/* Options for opening a store; a zeroed struct (or NULL) gives the defaults. */
typedef struct {
    shardz_store_sync sync; /* SQLite: FULL (default) or NORMAL; the memory backend ignores it */
    int busy_timeout_ms;    /* SQLite: wait this long for a lock held by another connection;
                             * 0 means 5000, negative is SHARDZ_EINVAL */
    int64_t history;        /* revisions of change history kept; 0 means
                             * SHARDZ_STORE_HISTORY_DEFAULT, negative is SHARDZ_EINVAL */
    char *errbuf;           /* optional (borrowed): when open fails, a human detail ("data
                             * directory /x: Permission denied") is written here, NUL-terminated */
    size_t errbuf_size;     /* bytes of errbuf */
} shardz_store_options;

/* A store's state as its status API shows it. */
typedef struct {
    const char *backend;      /* "memory", "sqlite", "etcd", "fault": static string */
    shardz_store_sync sync;   /* the mode in effect, read back from the backend */
    int64_t revision;         /* the current store revision (0 for an empty new store) */
    int64_t compact_revision; /* history is kept for revisions after this one */
} shardz_store_status;

/* Opens an empty in-memory store. opt may be NULL. *out is the caller's, freed by
 * shardz_store_close. SHARDZ_EINVAL (bad option), SHARDZ_ENOMEM. */
int shardz_store_open_memory(const shardz_store_options *opt, shardz_store **out);

/* Opens (creating when missing) the SQLite store in directory dir: the directory is created
 * (one level, mode 0700) when missing, the database is dir/shardz.db in WAL mode with the given
 * synchronous mode. dir and opt are borrowed; opt may be NULL. *out is the caller's.
 * Errors (nothing is left open): SHARDZ_EINVAL (bad option), SHARDZ_ENOENT (parent directory
 * missing), SHARDZ_ENOTSUP (a schema newer than this build, or WAL refused by the file system),
 * SHARDZ_EBUSY (locked past the busy timeout), SHARDZ_EIO (not a shardz database, I/O error),
 * SHARDZ_ENOMEM. */
int shardz_store_open_sqlite(const char *dir, const shardz_store_options *opt, shardz_store **out);

/* Opens the store kept in an etcd v3 cluster reached through its JSON gateway at endpoint
 * ("http://127.0.0.1:2379", or the members as a comma-separated list
 * "http://a:2379,http://b:2379": a member refusing the connection is skipped at once, and a
 * call failing on one member makes the next call start at the next), under key prefix (NULL or ""
 * for the whole keyspace; "/shardz/" keeps several clusters apart). The endpoint is checked at
 * once: an unreachable etcd is SHARDZ_EIO with "etcd at <endpoint>: <reason>" in opt->errbuf.
 * endpoint, prefix and opt are borrowed; opt may be NULL (its sync and busy_timeout_ms are ignored;
 * history is kept by compacting etcd). *out is the caller's. SHARDZ_EINVAL (bad argument),
 * SHARDZ_EIO, SHARDZ_ENOMEM. See docs/STORE.md, "The etcd backend". */
int shardz_store_open_etcd(const char *endpoint, const char *prefix,
                           const shardz_store_options *opt, shardz_store **out);

/* Closes a store and frees everything it owns; accepts NULL. Results already returned stay
 * valid (they belong to the caller). */
void shardz_store_close(shardz_store *st);

/* A human-readable detail of the last failed call on st ("" when none): static storage of the
 * handle, valid until the next call on st. */
const char *shardz_store_errmsg(const shardz_store *st);

/* Fills *out. SHARDZ_EIO on a backend failure. */
int shardz_store_status_get(shardz_store *st, shardz_store_status *out);

/* "full", "normal", "none" (static strings; "unknown" for other values). */
const char *shardz_store_sync_name(shardz_store_sync sync);
/* Parses "full" or "normal" (the --fsync flag). SHARDZ_EINVAL otherwise, *out unchanged. */
int shardz_store_sync_parse(const char *s, shardz_store_sync *out);

/* ---- results: allocated by the store, owned and freed by the caller ---- */

/* One key with its revisions. key and value are followed by a NUL byte not counted in their
 * lengths (so text reads as a C string); they may contain NUL bytes themselves. */
typedef struct {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    int64_t create_revision; /* revision of the put that created the key (0 in a delete event) */
    int64_t mod_revision;    /* revision of the last change (of the delete, in a delete event) */
    int64_t version;         /* puts since creation, 1 for a new key (0 in a delete event) */
} shardz_kv;

/* Frees a kv from shardz_store_get (one allocation); accepts NULL. */
void shardz_kv_free(shardz_kv *kv);

/* The answer of a range read. */
typedef struct {
    int64_t revision; /* the store revision this read reflects */
    bool more;        /* the limit cut the answer: keys after the last one also match */
    size_t count;
    shardz_kv *kvs; /* count entries, sorted by key (bytewise, shorter first) */
} shardz_range;

/* Frees a range answer and everything it points to; accepts NULL. */
void shardz_range_free(shardz_range *r);

typedef enum {
    SHARDZ_EVENT_PUT = 0,
    SHARDZ_EVENT_DELETE,
} shardz_event_type;

/* One change: a key put (kv holds the new value and revisions) or deleted (kv holds the key,
 * an empty value, the deleting revision as mod_revision, 0 for the others). */
typedef struct {
    shardz_event_type type;
    shardz_kv kv;
} shardz_event;

/* The answer of shardz_store_changes. */
typedef struct {
    int64_t revision; /* the store revision this read reflects */
    bool more;        /* the limit cut the answer: ask again from the last event's revision */
    size_t count;
    shardz_event *events; /* by revision; within a revision, in the order the writes were made */
} shardz_changes;

/* Frees a changes answer; accepts NULL. */
void shardz_changes_free(shardz_changes *c);

/* ---- reads ---- */

/* Reads one key. On success *out is a new kv owned by the caller (shardz_kv_free). A missing
 * key is SHARDZ_ENOENT with *out = NULL. revision (may be NULL) receives the store revision the
 * read reflects, also for SHARDZ_ENOENT. SHARDZ_EINVAL/SHARDZ_ETOOBIG for a bad key. */
int shardz_store_get(shardz_store *st, const void *key, size_t key_len, shardz_kv **out,
                     int64_t *revision);

/* Reads the keys starting with prefix (an empty prefix is every key), in key order, from one
 * consistent snapshot. after (may be NULL) skips the keys <= after: pass the last key of a page
 * to read the next one; it must start with prefix. limit 0 means no limit. *out is the
 * caller's (shardz_range_free). SHARDZ_EINVAL, SHARDZ_ETOOBIG (prefix or after too long). */
int shardz_store_range(shardz_store *st, const void *prefix, size_t prefix_len, const void *after,
                       size_t after_len, size_t limit, shardz_range **out);

/* The changes committed after revision since, in order, from the store's bounded history.
 * since >= the current revision gives none. since < status.compact_revision is
 * SHARDZ_STORE_ECOMPACTED: that history is gone; resync with a full range, then ask for changes
 * since the range's revision. limit 0 means no limit; otherwise the answer stops at the end of
 * the revision in which it reaches limit events (a revision is never split) and sets more.
 * *out is the caller's (shardz_changes_free). SHARDZ_EINVAL for since < 0. */
int shardz_store_changes(shardz_store *st, int64_t since, size_t limit, shardz_changes **out);

/* What shardz_store_watch hands over: c (the callee's: shardz_changes_free) holds whole revisions,
 * in order, ending with the revision in which it reaches limit events (0: no limit; as
 * shardz_store_changes); c->revision is the
 * revision read up to (it may be past the last event: revisions of keys outside the prefix),
 * c->more is false. Return 0 to go on; anything else stops the watch, which returns it. */
typedef int (*shardz_watch_fn)(void *arg, shardz_changes *c);
/* Called while the watch waits (every 100 ms or so) and between deliveries: return 0 to go on;
 * anything else stops the watch, which returns it. */
typedef int (*shardz_watch_poll_fn)(void *arg);

/* Follows the changes committed after revision since, as they are committed, until fn or poll
 * stops it or the store fails: blocks the calling thread meanwhile. On etcd one watch stream
 * (read once, however far behind since is); on the other backends shardz_store_changes polled
 * every 20 ms. Returns what stopped it: fn's or poll's value, SHARDZ_STORE_ECOMPACTED (since's
 * history is gone: read everything again), SHARDZ_EIO (the store is unreachable or the stream
 * broke; the detail in shardz_store_errmsg), SHARDZ_EINVAL for since < 0 or a NULL fn or poll.
 * The handle is used by nothing else meanwhile. */
int shardz_store_watch(shardz_store *st, int64_t since, size_t limit, shardz_watch_fn fn,
                       shardz_watch_poll_fn poll, void *arg);

/* ---- writes ---- */

/* What a compare checks about its key. Compares test equality; an absent key has version,
 * create_revision and mod_revision 0, and no value (a VALUE compare on it fails). */
typedef enum {
    SHARDZ_CMP_ABSENT = 0, /* the key does not exist */
    SHARDZ_CMP_EXISTS,     /* the key exists */
    SHARDZ_CMP_VERSION,    /* version == number */
    SHARDZ_CMP_CREATE,     /* create_revision == number */
    SHARDZ_CMP_MOD,        /* mod_revision == number */
    SHARDZ_CMP_VALUE,      /* the key exists and its value is value/value_len */
} shardz_cmp_target;

/* One condition of a transaction. Pointers are borrowed for the call. */
typedef struct {
    shardz_cmp_target target;
    const void *key;
    size_t key_len;
    int64_t number;    /* VERSION, CREATE, MOD */
    const void *value; /* VALUE (may be NULL when value_len is 0) */
    size_t value_len;
} shardz_compare;

typedef enum {
    SHARDZ_OP_PUT = 0,      /* set key to value */
    SHARDZ_OP_DELETE,       /* delete key (nothing when absent) */
    SHARDZ_OP_DELETE_PREFIX /* delete every key starting with key (key_len >= 1) */
} shardz_op_type;

/* One write of a transaction. Pointers are borrowed for the call. */
typedef struct {
    shardz_op_type type;
    const void *key;
    size_t key_len;
    const void *value; /* PUT (may be NULL when value_len is 0) */
    size_t value_len;
    int64_t lease; /* PUT: attach the key to this lease (0: none); the key is deleted when the
                    * lease expires or is revoked. Only backends with leases (etcd) accept a
                    * non-zero lease; the others answer SHARDZ_ENOTSUP. */
} shardz_op;

/* The atomic write: when every compare holds, applies the operations in order as one commit;
 * otherwise SHARDZ_ECONFLICT and nothing changes. A commit that changes at least one key bumps
 * the store revision by exactly one, and every key it touches gets that mod_revision; a commit
 * that changes nothing (deletes of absent keys) keeps the revision. revision (may be NULL)
 * receives the store revision after the call, also on SHARDZ_ECONFLICT.
 * Rules, checked before anything is read: at most SHARDZ_STORE_MAX_TXN_OPS compares and as many
 * operations, at most SHARDZ_STORE_MAX_TXN_BYTES of keys and values (SHARDZ_ETOOBIG); every key
 * valid; a key put twice, or put and deleted (also through a prefix) in one transaction, is
 * SHARDZ_EINVAL, as in etcd. Any error leaves the store unchanged. deleted (may be NULL)
 * receives the number of keys deleted. Other errors: SHARDZ_EBUSY, SHARDZ_EIO, SHARDZ_ENOMEM. */
int shardz_store_txn(shardz_store *st, const shardz_compare *cmps, size_t ncmps,
                     const shardz_op *ops, size_t nops, size_t *deleted, int64_t *revision);

/* One-operation transactions without compares (same rules and errors). */
int shardz_store_put(shardz_store *st, const void *key, size_t key_len, const void *value,
                     size_t value_len, int64_t *revision);
int shardz_store_delete(shardz_store *st, const void *key, size_t key_len, size_t *deleted,
                        int64_t *revision);
int shardz_store_delete_prefix(shardz_store *st, const void *prefix, size_t prefix_len,
                               size_t *deleted, int64_t *revision);

/* Applies a large batch of PUT and DELETE operations as several transactions, each within the
 * limits (at most per_txn operations, 0 meaning SHARDZ_STORE_MAX_TXN_OPS, and at most
 * SHARDZ_STORE_MAX_TXN_BYTES), in order. The guards (at most SHARDZ_STORE_MAX_TXN_OPS, e.g. the
 * leader key's create_revision) are checked in every one of them. Each transaction is atomic,
 * the batch is not: on an error, *applied (may be NULL) says how many leading operations were
 * committed; the failed transaction and those after it changed nothing.
 * Checked before anything is written (SHARDZ_EINVAL): a DELETE_PREFIX, a key given twice, an
 * invalid key or value; a single operation too large for a transaction is SHARDZ_ETOOBIG.
 * revision (may be NULL) receives the store revision after the call. */
int shardz_store_txn_batched(shardz_store *st, const shardz_compare *guards, size_t nguards,
                             const shardz_op *ops, size_t nops, size_t per_txn, size_t *applied,
                             int64_t *revision);

/* Applies a batch of PUT and DELETE operations, checked as shardz_store_txn_batched checks them,
 * in one atomic transaction when the backend has no transaction limits (SQLite, memory: any
 * number of operations, any size, one commit), and otherwise (etcd) as shardz_store_txn_batched
 * with per_txn 0 does. *whole (may be NULL) says which: true when the batch was one
 * transaction, so that on an error nothing was written and *applied is 0. The guards and the
 * handle's guard are checked as in shardz_store_txn_batched. */
int shardz_store_write_batch(shardz_store *st, const shardz_compare *guards, size_t nguards,
                             const shardz_op *ops, size_t nops, size_t *applied, int64_t *revision,
                             bool *whole);

/* Discards the change history up to and including revision (etcd's compaction). A revision at
 * or before the current compact revision does nothing; one after the current revision is
 * SHARDZ_EINVAL. */
int shardz_store_compact(shardz_store *st, int64_t revision);

/* ---- leases (etcd): keys that vanish when their holder stops renewing ---- */

/* Grants a lease of ttl_ms (rounded up to whole seconds; etcd may raise it to its minimum).
 * *id receives the lease id (> 0), *granted_ms (may be NULL) the TTL granted. SHARDZ_ENOTSUP on
 * a backend without leases (memory, SQLite), SHARDZ_EINVAL for ttl_ms <= 0, SHARDZ_EIO. */
int shardz_store_lease_grant(shardz_store *st, int64_t ttl_ms, int64_t *id, int64_t *granted_ms);
/* Renews lease id for its full TTL. *ttl_ms (may be NULL) receives the TTL it now has.
 * SHARDZ_ENOENT when the lease no longer exists (expired or revoked: its keys are gone),
 * SHARDZ_ENOTSUP, SHARDZ_EIO (etcd unreachable: the lease may still be alive). */
int shardz_store_lease_keepalive(shardz_store *st, int64_t id, int64_t *ttl_ms);
/* Revokes lease id, deleting its keys at once. SHARDZ_ENOENT when it no longer exists,
 * SHARDZ_ENOTSUP, SHARDZ_EIO. */
int shardz_store_lease_revoke(shardz_store *st, int64_t id);

/* ---- fencing: a guard every write of a handle carries ---- */

/* Sets (or with g NULL clears) the guard of st: from now on every transaction on st (also
 * shardz_store_put, _delete, _delete_prefix and each transaction of _txn_batched) carries *g as
 * one more compare, so its writes commit only while the guard holds (the leader key's
 * create_revision: a deposed leader's writes fail). *g and its key are copied. A transaction
 * whose guard no longer holds changes nothing and is SHARDZ_ENOTLEADER (its other compares
 * failing is SHARDZ_ECONFLICT, as before); with the guard, a transaction may hold at most
 * SHARDZ_STORE_MAX_TXN_OPS - 1 compares of its own. SHARDZ_EINVAL for a bad compare,
 * SHARDZ_ENOMEM. */
int shardz_store_set_guard(shardz_store *st, const shardz_compare *g);

/* ---- fault injection (tests of the store's callers; habit 13) ---- */

/* When and how the wrapper fails a write (a transaction; reads pass through). */
typedef struct {
    uint64_t nth; /* the nth write from now fails (1 = the next one); 0 disarms */
    int err;      /* the error returned (a negative SHARDZ_E*); 0 means SHARDZ_EIO */
    bool after;   /* apply the write to the inner store, then report err (an acknowledgement
                   * lost after the commit); otherwise the write never reaches it */
    bool sticky;  /* every write from the nth on fails, not only the nth */
} shardz_store_fault;

/* Wraps inner in a store that passes everything through until a fault is armed. On success the
 * wrapper owns inner (closing the wrapper closes it); on failure (SHARDZ_ENOMEM) the caller
 * keeps it. */
int shardz_store_open_fault(shardz_store *inner, shardz_store **out);
/* Arms (or with nth 0 disarms) the wrapper's fault, restarting its count; *f is copied.
 * SHARDZ_EINVAL when st is not a fault wrapper or f->err is positive. */
int shardz_store_fault_arm(shardz_store *st, const shardz_store_fault *f);
/* The writes the wrapper has seen since it was opened, failed ones included (0 when st is not
 * a fault wrapper). */
uint64_t shardz_store_fault_writes(const shardz_store *st);

/* ---- the key layout (docs/STORE.md) ---- */

/* The records a namespace keeps, the coordinator-wide leader key, and deleted namespaces'
 * marks. */
typedef enum {
    SHARDZ_KEY_CONFIG = 0, /* ns/<ns>/config: the namespace exists iff this key exists */
    SHARDZ_KEY_NODE,       /* ns/<ns>/node/<node> */
    SHARDZ_KEY_ASSIGN,     /* ns/<ns>/assign/<partition>: the partition's replicas */
    SHARDZ_KEY_STATS,      /* ns/<ns>/stats/<partition>: its statistics, apart from the
                            * assignment so they survive a move (seed 000) */
    SHARDZ_KEY_TASK,       /* ns/<ns>/task/<task> */
    SHARDZ_KEY_LEADER,     /* leader: one for all coordinators sharing the store */
    SHARDZ_KEY_GONE,       /* gone/<ns>: what a deleted namespace leaves to the next one of
                            * its name (the revision and generation floor it starts above) */
    SHARDZ_KEY_SLOTS,      /* ns/<ns>/slots/<epoch>/<page>: one page of a hash namespace's
                            * slot table as written at epoch <epoch> (docs/STORE.md 5) */
    SHARDZ_KEY_APAGE,      /* ns/<ns>/apage/<page>: a page of assignment records, the base the
                            * assign/<partition> keys override (docs/STORE.md 5) */
} shardz_key_kind;

/* Namespace and record ids are 1..SHARDZ_KEY_MAX_ID bytes (placement's SHARDZ_MAX_ID), with no
 * '/' and no control byte (0x00-0x1f, 0x7f). */
#define SHARDZ_KEY_MAX_ID 255
/* A buffer this large holds any key or prefix of the layout with its NUL. */
#define SHARDZ_KEY_BUF 544

/* true when s is a valid namespace or record id. */
bool shardz_key_id_valid(const char *s);

/* Writes the key of a record into buf (cap bytes, NUL-terminated) and returns its length (> 0).
 * id is ignored (may be NULL) for CONFIG, LEADER and GONE, ns for LEADER. SHARDZ_EINVAL for an
 * invalid ns or id or kind (SLOTS and APAGE too: their keys are numbered, shardz_key_slots and
 * shardz_key_apage), SHARDZ_ERANGE
 * when cap is too small (buf then holds ""). */
int shardz_key_build(char *buf, size_t cap, shardz_key_kind kind, const char *ns, const char *id);
/* Shorthands of shardz_key_build. */
int shardz_key_config(char *buf, size_t cap, const char *ns);
int shardz_key_node(char *buf, size_t cap, const char *ns, const char *node);
int shardz_key_assign(char *buf, size_t cap, const char *ns, const char *partition);
int shardz_key_stats(char *buf, size_t cap, const char *ns, const char *partition);
int shardz_key_task(char *buf, size_t cap, const char *ns, const char *task);
int shardz_key_leader(char *buf, size_t cap);
/* "ns/<ns>/slots/<epoch>/<page>", both numbers in decimal without leading zeros. epoch >= 1.
 * Same returns as shardz_key_build (SHARDZ_EINVAL for epoch 0 or an invalid ns). */
int shardz_key_slots(char *buf, size_t cap, const char *ns, uint64_t epoch, uint32_t page);
/* "ns/<ns>/apage/<page>", the number in decimal without leading zeros. Same returns as
 * shardz_key_build. */
int shardz_key_apage(char *buf, size_t cap, const char *ns, uint32_t page);

/* The prefix of every record of one kind in a namespace ("ns/<ns>/node/"; CONFIG gives the
 * config key itself, LEADER and GONE are SHARDZ_EINVAL). Same returns as shardz_key_build. */
int shardz_key_kind_prefix(char *buf, size_t cap, shardz_key_kind kind, const char *ns);
/* The prefix of every record of namespace ns ("ns/<ns>/"), or of all namespaces when ns is
 * NULL ("ns/"). Same returns as shardz_key_build. */
int shardz_key_ns_prefix(char *buf, size_t cap, const char *ns);

/* A key taken apart by shardz_key_parse. */
typedef struct {
    shardz_key_kind kind;
    char ns[SHARDZ_KEY_MAX_ID + 1]; /* "" for LEADER */
    char id[SHARDZ_KEY_MAX_ID + 1]; /* "" for CONFIG, LEADER, GONE, SLOTS and APAGE */
    uint64_t epoch;                 /* SLOTS: the page's epoch (>= 1); 0 otherwise */
    uint32_t page;                  /* SLOTS, APAGE: the page's number; 0 otherwise */
} shardz_key_parts;

/* Parses a key of the layout (key is borrowed, need not be NUL-terminated). SHARDZ_EINVAL for
 * anything else (a foreign or corrupt key: callers log it with its key and skip it); *out is
 * then unspecified. */
int shardz_key_parse(const void *key, size_t len, shardz_key_parts *out);
/* "config", "node", "assign", "stats", "task", "leader", "gone", "slots", "apage" ("unknown"
 * otherwise).
 * Static. */
const char *shardz_key_kind_name(shardz_key_kind kind);

#ifdef __cplusplus
}
#endif
#endif
