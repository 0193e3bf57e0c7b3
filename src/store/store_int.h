/* The store's backend contract: the versioned ops table every backend fills (like sqlite3_vfs),
 * the handle base every backend embeds first, the result builder backends return answers with,
 * the bound helpers, and the test-only fault hooks inside the backends. Internal to src/store
 * and its tests; the public API is include/shardz/store.h. */
#ifndef SHARDZ_STORE_INT_H
#define SHARDZ_STORE_INT_H

#include <stdarg.h>

#include "shardz/store.h"

/* The ops table version this build writes and reads. A later version only appends members;
 * callers check ops->version before using a member newer than version 1. */
#define STORE_OPS_VERSION 4

/* What a backend implements. Every member of version 1 is required. The public wrappers in
 * store.c validate every argument (limits, key rules, txn overlap rules) before calling, so a
 * backend may rely on them. Results are built with store_builder / store_kv_new. A backend sets
 * a detail with store_seterr when it fails; the wrapper clears it before each call. */
typedef struct store_ops {
    int version;      /* STORE_OPS_VERSION */
    const char *name; /* "memory", "sqlite", ... */
    /* *out (NULL for SHARDZ_ENOENT) and *revision (never NULL here) as in shardz_store_get. */
    int (*get)(shardz_store *st, const void *key, size_t key_len, shardz_kv **out,
               int64_t *revision);
    /* keys in [lo, hi) (hi NULL: no upper bound), at most limit (0: all), *more set when a
     * further key matches. lo and hi come from store_bounds. */
    int (*range)(shardz_store *st, const void *lo, size_t lo_len, const void *hi, size_t hi_len,
                 size_t limit, shardz_range **out);
    /* As shardz_store_txn; deleted and revision are never NULL here. Atomic: on any error the
     * store is unchanged. */
    int (*txn)(shardz_store *st, const shardz_compare *cmps, size_t ncmps, const shardz_op *ops,
               size_t nops, size_t *deleted, int64_t *revision);
    int (*changes)(shardz_store *st, int64_t since, size_t limit, shardz_changes **out);
    int (*compact)(shardz_store *st, int64_t revision);
    int (*status)(shardz_store *st, shardz_store_status *out);
    /* Frees the backend and the handle (which it allocated). Never NULL st. */
    void (*close)(shardz_store *st);
    /* Version 2, optional (NULL: the backend has no leases, SHARDZ_ENOTSUP; a put with a lease
     * is then refused before txn is called). As the public shardz_store_lease_* functions;
     * ttl_ms > 0, id > 0, out pointers never NULL. */
    int (*lease_grant)(shardz_store *st, int64_t ttl_ms, int64_t *id, int64_t *granted_ms);
    int (*lease_keepalive)(shardz_store *st, int64_t id, int64_t *ttl_ms);
    int (*lease_revoke)(shardz_store *st, int64_t id);
    /* Version 3, optional (NULL: transactions are bounded as etcd's, and
     * shardz_store_write_batch splits). As txn, for a batch of any number of puts and deletes
     * and any size (validated by shardz_store_write_batch), in one atomic transaction. */
    int (*txn_whole)(shardz_store *st, const shardz_compare *cmps, size_t ncmps,
                     const shardz_op *ops, size_t nops, size_t *deleted, int64_t *revision);
    /* Version 4, optional (NULL: shardz_store_watch polls changes). As shardz_store_watch,
     * arguments checked. */
    int (*watch)(shardz_store *st, int64_t since, size_t limit, shardz_watch_fn fn,
                 shardz_watch_poll_fn poll, void *arg);
} store_ops;

/* The handle base. Each backend allocates its own struct with this as its first member. */
struct shardz_store {
    const store_ops *ops;
    char errmsg[256];     /* detail of the last failure on this handle */
    bool guarded;         /* every transaction also checks guard */
    shardz_compare guard; /* its key points at guard_key */
    unsigned char guard_key[SHARDZ_STORE_MAX_KEY];
};

/* Sets st's error detail (printf-style, truncated). */
void store_seterr(shardz_store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Byte order of keys: memcmp on the common length, then the shorter first (etcd's
 * bytes.Compare, SQLite's BLOB order). */
int store_keycmp(const void *a, size_t alen, const void *b, size_t blen);

/* The bounds [lo, hi) of a range read, etcd-style: lo is prefix or, with after, after + "\0";
 * hi is the prefix with its last non-0xff byte incremented (the bytes after it dropped), or
 * none (*hi_len = 0, hi_set false) for an empty or all-0xff prefix. lo and hi are buffers of
 * SHARDZ_STORE_MAX_KEY + 1 bytes. */
typedef struct {
    unsigned char lo[SHARDZ_STORE_MAX_KEY + 1];
    size_t lo_len;
    unsigned char hi[SHARDZ_STORE_MAX_KEY + 1];
    size_t hi_len;
    bool hi_set;
} store_bounds;
void store_bounds_make(store_bounds *b, const void *prefix, size_t prefix_len, const void *after,
                       size_t after_len);
/* true when compare c holds for a key with these revisions and value (exists false: an absent
 * key, whose revisions count as 0). */
bool store_compare_holds(const shardz_compare *c, bool exists, int64_t version, int64_t create,
                         int64_t mod, const void *value, size_t value_len);
/* true when key lies in [lo, hi). */
bool store_bounds_has(const store_bounds *b, const void *key, size_t key_len);

/* A new kv as shardz_store_get returns it (one allocation). NULL on out-of-memory. */
shardz_kv *store_kv_new(const void *key, size_t key_len, const void *value, size_t value_len,
                        int64_t create, int64_t mod, int64_t version);

/* Accumulates kvs or events, then packs them into one allocation (a shardz_range or a
 * shardz_changes, both freed with free()). Zero-initialise, add, then finish or free. Every
 * function returns 0 or SHARDZ_ENOMEM; a finish frees the builder's buffers in any case. */
typedef struct store_bent store_bent;
typedef struct {
    store_bent *ents;
    size_t n, cap;
    char *arena;
    size_t alen, acap;
} store_builder;
int store_builder_add(store_builder *b, shardz_event_type type, const void *key, size_t key_len,
                      const void *value, size_t value_len, int64_t create, int64_t mod,
                      int64_t version);
int store_builder_range(store_builder *b, int64_t revision, bool more, shardz_range **out);
int store_builder_changes(store_builder *b, int64_t revision, bool more, shardz_changes **out);
void store_builder_free(store_builder *b);

/* Test hooks: fault points inside the backends, to prove a write failing half-way through a
 * transaction is rolled back completely. One-shot; n = 0 disarms. Both ignore other stores. */
/* Memory: the nth allocation a transaction makes from now fails (SHARDZ_ENOMEM). */
void store_memory_fail_alloc(shardz_store *st, long n);
/* SQLite: the nth write statement or commit from now fails (SHARDZ_EIO). */
void store_sqlite_fail_step(shardz_store *st, long n);

#endif
