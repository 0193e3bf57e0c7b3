/* The public store API: validates every argument once for all backends (limits, key rules,
 * the etcd transaction rules), then dispatches through the handle's ops table. Also the
 * batching helper, result freeing and sync-mode names. Runs on the caller's thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"

static int check_key(shardz_store *st, const void *key, size_t len, const char *what)
{
    if (len == 0 || !key) {
        store_seterr(st, "%s is empty", what);
        return SHARDZ_EINVAL;
    }
    if (len > SHARDZ_STORE_MAX_KEY) {
        store_seterr(st, "%s is %zu bytes, more than %d", what, len, SHARDZ_STORE_MAX_KEY);
        return SHARDZ_ETOOBIG;
    }
    return 0;
}

static int check_value(shardz_store *st, const void *value, size_t len)
{
    if (len && !value) {
        store_seterr(st, "value is NULL with %zu bytes", len);
        return SHARDZ_EINVAL;
    }
    if (len > SHARDZ_STORE_MAX_VALUE) {
        store_seterr(st, "value is %zu bytes, more than %d", len, SHARDZ_STORE_MAX_VALUE);
        return SHARDZ_ETOOBIG;
    }
    return 0;
}

static int check_compare(shardz_store *st, const shardz_compare *c, size_t *bytes)
{
    int rc = check_key(st, c->key, c->key_len, "compare key");

    if (rc) {
        return rc;
    }
    *bytes += c->key_len;
    switch (c->target) {
    case SHARDZ_CMP_ABSENT:
    case SHARDZ_CMP_EXISTS:
    case SHARDZ_CMP_VERSION:
    case SHARDZ_CMP_CREATE:
    case SHARDZ_CMP_MOD:
        return 0;
    case SHARDZ_CMP_VALUE:
        *bytes += c->value_len;
        return check_value(st, c->value, c->value_len);
    }
    store_seterr(st, "unknown compare target %d", (int)c->target);
    return SHARDZ_EINVAL;
}

static int check_op(shardz_store *st, const shardz_op *o, size_t *bytes)
{
    int rc;

    switch (o->type) {
    case SHARDZ_OP_PUT:
        rc = check_key(st, o->key, o->key_len, "key");
        if (rc == 0) {
            rc = check_value(st, o->value, o->value_len);
        }
        *bytes += o->key_len + o->value_len;
        return rc;
    case SHARDZ_OP_DELETE:
        *bytes += o->key_len;
        return check_key(st, o->key, o->key_len, "key");
    case SHARDZ_OP_DELETE_PREFIX:
        *bytes += o->key_len;
        return check_key(st, o->key, o->key_len, "delete prefix");
    }
    store_seterr(st, "unknown operation type %d", (int)o->type);
    return SHARDZ_EINVAL;
}

/* true when operation d (a delete or delete-prefix, or a put) touches the key of put p. */
static bool touches(const shardz_op *d, const shardz_op *p)
{
    if (d->type == SHARDZ_OP_DELETE_PREFIX) {
        return p->key_len >= d->key_len && memcmp(p->key, d->key, d->key_len) == 0;
    }
    return p->key_len == d->key_len && memcmp(p->key, d->key, d->key_len) == 0;
}

/* etcd's rule: a put may not share its key with another put or a delete of the same
 * transaction. Deletes may overlap each other (the later one finds nothing). */
static int check_overlaps(shardz_store *st, const shardz_op *ops, size_t nops)
{
    size_t i, j;

    for (i = 0; i < nops; i++) {
        if (ops[i].type != SHARDZ_OP_PUT) {
            continue;
        }
        for (j = 0; j < nops; j++) {
            if (j == i || (ops[j].type == SHARDZ_OP_PUT && j < i)) {
                continue;
            }
            if (touches(&ops[j], &ops[i])) {
                store_seterr(st, "operations %zu and %zu of the transaction touch one key", i, j);
                return SHARDZ_EINVAL;
            }
        }
    }
    return 0;
}

static int check_txn(shardz_store *st, const shardz_compare *cmps, size_t ncmps,
                     const shardz_op *ops, size_t nops)
{
    size_t bytes = 0, i;
    int rc;

    if ((ncmps && !cmps) || (nops && !ops)) {
        store_seterr(st, "NULL compare or operation list");
        return SHARDZ_EINVAL;
    }
    if (ncmps > SHARDZ_STORE_MAX_TXN_OPS || nops > SHARDZ_STORE_MAX_TXN_OPS) {
        store_seterr(st, "%zu compares and %zu operations: at most %d each", ncmps, nops,
                     SHARDZ_STORE_MAX_TXN_OPS);
        return SHARDZ_ETOOBIG;
    }
    for (i = 0; i < ncmps; i++) {
        rc = check_compare(st, &cmps[i], &bytes);
        if (rc) {
            return rc;
        }
    }
    for (i = 0; i < nops; i++) {
        rc = check_op(st, &ops[i], &bytes);
        if (rc) {
            return rc;
        }
    }
    if (bytes > SHARDZ_STORE_MAX_TXN_BYTES) {
        store_seterr(st, "transaction holds %zu bytes, more than %d", bytes,
                     SHARDZ_STORE_MAX_TXN_BYTES);
        return SHARDZ_ETOOBIG;
    }
    return check_overlaps(st, ops, nops);
}

void shardz_store_close(shardz_store *st)
{
    if (st) {
        st->ops->close(st);
    }
}

const char *shardz_store_errmsg(const shardz_store *st)
{
    return st ? st->errmsg : "";
}

int shardz_store_status_get(shardz_store *st, shardz_store_status *out)
{
    st->errmsg[0] = '\0';
    memset(out, 0, sizeof *out);
    return st->ops->status(st, out);
}

const char *shardz_store_sync_name(shardz_store_sync sync)
{
    switch (sync) {
    case SHARDZ_STORE_SYNC_FULL:
        return "full";
    case SHARDZ_STORE_SYNC_NORMAL:
        return "normal";
    case SHARDZ_STORE_SYNC_NONE:
        return "none";
    }
    return "unknown";
}

int shardz_store_sync_parse(const char *s, shardz_store_sync *out)
{
    if (s && strcmp(s, "full") == 0) {
        *out = SHARDZ_STORE_SYNC_FULL;
        return 0;
    }
    if (s && strcmp(s, "normal") == 0) {
        *out = SHARDZ_STORE_SYNC_NORMAL;
        return 0;
    }
    return SHARDZ_EINVAL;
}

void shardz_kv_free(shardz_kv *kv)
{
    free(kv);
}

void shardz_range_free(shardz_range *r)
{
    free(r);
}

void shardz_changes_free(shardz_changes *c)
{
    free(c);
}

int shardz_store_get(shardz_store *st, const void *key, size_t key_len, shardz_kv **out,
                     int64_t *revision)
{
    int64_t rev = 0;
    int rc;

    st->errmsg[0] = '\0';
    *out = NULL;
    rc = check_key(st, key, key_len, "key");
    if (rc) {
        return rc;
    }
    rc = st->ops->get(st, key, key_len, out, &rev);
    if (revision) {
        *revision = rev;
    }
    return rc;
}

int shardz_store_range(shardz_store *st, const void *prefix, size_t prefix_len, const void *after,
                       size_t after_len, size_t limit, shardz_range **out)
{
    store_bounds b;
    int rc;

    st->errmsg[0] = '\0';
    *out = NULL;
    if (prefix_len && !prefix) {
        store_seterr(st, "prefix is NULL with %zu bytes", prefix_len);
        return SHARDZ_EINVAL;
    }
    if (prefix_len > SHARDZ_STORE_MAX_KEY) {
        store_seterr(st, "prefix is %zu bytes, more than %d", prefix_len, SHARDZ_STORE_MAX_KEY);
        return SHARDZ_ETOOBIG;
    }
    if (after) {
        rc = check_key(st, after, after_len, "after key");
        if (rc) {
            return rc;
        }
        if (after_len < prefix_len || memcmp(after, prefix, prefix_len) != 0) {
            store_seterr(st, "after key does not start with the prefix");
            return SHARDZ_EINVAL;
        }
    }
    store_bounds_make(&b, prefix, prefix_len, after, after_len);
    return st->ops->range(st, b.lo, b.lo_len, b.hi_set ? b.hi : NULL, b.hi_len, limit, out);
}

int shardz_store_changes(shardz_store *st, int64_t since, size_t limit, shardz_changes **out)
{
    st->errmsg[0] = '\0';
    *out = NULL;
    if (since < 0) {
        store_seterr(st, "negative revision %lld", (long long)since);
        return SHARDZ_EINVAL;
    }
    return st->ops->changes(st, since, limit, out);
}

/* The watch of a backend without one of its own: changes polled every 20 ms. */
static int watch_polled(shardz_store *st, int64_t since, size_t limit, shardz_watch_fn fn,
                        shardz_watch_poll_fn poll, void *arg)
{
    for (;;) {
        shardz_changes *c = NULL;
        int rc = poll(arg);
        if (rc) {
            return rc;
        }
        rc = st->ops->changes(st, since, limit, &c);
        if (rc) {
            return rc;
        }
        if (c->count == 0 && c->revision <= since) {
            shardz_changes_free(c);
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        /* with more, the answer ended on a revision's end: read on after it */
        since = c->more && c->count ? c->events[c->count - 1].kv.mod_revision : c->revision;
        c->revision = since;
        c->more = false;
        rc = fn(arg, c);
        if (rc) {
            return rc;
        }
    }
}

int shardz_store_watch(shardz_store *st, int64_t since, size_t limit, shardz_watch_fn fn,
                       shardz_watch_poll_fn poll, void *arg)
{
    st->errmsg[0] = '\0';
    if (since < 0 || !fn || !poll) {
        store_seterr(st, since < 0 ? "negative revision %lld" : "no callback", (long long)since);
        return SHARDZ_EINVAL;
    }
    if (st->ops->version >= 4 && st->ops->watch) {
        return st->ops->watch(st, since, limit, fn, poll, arg);
    }
    return watch_polled(st, since, limit, fn, poll, arg);
}

bool store_compare_holds(const shardz_compare *c, bool exists, int64_t version, int64_t create,
                         int64_t mod, const void *value, size_t value_len)
{
    switch (c->target) {
    case SHARDZ_CMP_ABSENT:
        return !exists;
    case SHARDZ_CMP_EXISTS:
        return exists;
    case SHARDZ_CMP_VERSION:
        return (exists ? version : 0) == c->number;
    case SHARDZ_CMP_CREATE:
        return (exists ? create : 0) == c->number;
    case SHARDZ_CMP_MOD:
        return (exists ? mod : 0) == c->number;
    case SHARDZ_CMP_VALUE:
        return exists && value_len == c->value_len &&
               (c->value_len == 0 || memcmp(value, c->value, c->value_len) == 0);
    }
    return false;
}

/* After a conflict on a guarded handle: SHARDZ_ENOTLEADER when the guard is what failed. */
static int guard_verdict(shardz_store *st)
{
    shardz_kv *kv = NULL;
    int64_t rev = 0;
    int rc = st->ops->get(st, st->guard.key, st->guard.key_len, &kv, &rev);
    bool holds;

    if (rc && rc != SHARDZ_ENOENT) {
        return SHARDZ_ECONFLICT; /* cannot tell: the caller's compares may have failed */
    }
    holds = kv ? store_compare_holds(&st->guard, true, kv->version, kv->create_revision,
                                     kv->mod_revision, kv->value, kv->value_len)
               : store_compare_holds(&st->guard, false, 0, 0, 0, NULL, 0);
    shardz_kv_free(kv);
    if (holds) {
        return SHARDZ_ECONFLICT;
    }
    store_seterr(st,
                 "fenced: the guard on %.*s no longer holds (another holder took over); "
                 "nothing changed",
                 (int)st->guard.key_len, (const char *)st->guard.key);
    return SHARDZ_ENOTLEADER;
}

/* Checked compares and operations run by the backend, bounded (txn) or whole (txn_whole), with
 * the handle's guard added; a conflict on the guard is told apart (guard_verdict). */
static int guarded_txn(shardz_store *st, bool whole, const shardz_compare *cmps, size_t ncmps,
                       const shardz_op *ops, size_t nops, size_t *del, int64_t *rev)
{
    shardz_compare all[SHARDZ_STORE_MAX_TXN_OPS];
    int rc;

    for (size_t i = 0; i < nops; i++) {
        if (ops[i].type == SHARDZ_OP_PUT && ops[i].lease != 0 &&
            (st->ops->version < 2 || !st->ops->lease_grant)) {
            store_seterr(st, "the %s store has no leases", st->ops->name);
            return SHARDZ_ENOTSUP;
        }
    }
    if (st->guarded) {
        if (ncmps + 1 > SHARDZ_STORE_MAX_TXN_OPS) {
            store_seterr(st, "%zu compares and the guard: at most %d", ncmps,
                         SHARDZ_STORE_MAX_TXN_OPS);
            return SHARDZ_ETOOBIG;
        }
        if (ncmps) {
            memcpy(all, cmps, ncmps * sizeof *cmps);
        }
        all[ncmps] = st->guard;
        cmps = all;
        ncmps++;
    }
    rc = (whole ? st->ops->txn_whole : st->ops->txn)(st, cmps, ncmps, ops, nops, del, rev);
    if (rc == SHARDZ_ECONFLICT && st->guarded) {
        rc = guard_verdict(st);
    }
    return rc;
}

int shardz_store_txn(shardz_store *st, const shardz_compare *cmps, size_t ncmps,
                     const shardz_op *ops, size_t nops, size_t *deleted, int64_t *revision)
{
    size_t del = 0;
    int64_t rev = 0;
    int rc;

    st->errmsg[0] = '\0';
    if (deleted) {
        *deleted = 0;
    }
    rc = check_txn(st, cmps, ncmps, ops, nops);
    if (rc == 0) {
        rc = guarded_txn(st, false, cmps, ncmps, ops, nops, &del, &rev);
    }
    if (deleted) {
        *deleted = rc == 0 ? del : 0;
    }
    if (revision) {
        *revision = rev;
    }
    return rc;
}

int shardz_store_set_guard(shardz_store *st, const shardz_compare *g)
{
    size_t bytes = 0;
    int rc;

    st->errmsg[0] = '\0';
    if (!g) {
        st->guarded = false;
        return 0;
    }
    rc = check_compare(st, g, &bytes);
    if (rc) {
        return rc;
    }
    if (g->target == SHARDZ_CMP_VALUE) {
        store_seterr(st, "a guard compares revisions or existence, not values");
        return SHARDZ_EINVAL;
    }
    st->guard = *g;
    memcpy(st->guard_key, g->key, g->key_len);
    st->guard.key = st->guard_key;
    st->guard.value = NULL;
    st->guard.value_len = 0;
    st->guarded = true;
    return 0;
}

/* The lease calls: validated here, then the backend's (SHARDZ_ENOTSUP when it has none). */
static bool has_leases(shardz_store *st)
{
    if (st->ops->version >= 2 && st->ops->lease_grant) {
        return true;
    }
    store_seterr(st, "the %s store has no leases", st->ops->name);
    return false;
}

int shardz_store_lease_grant(shardz_store *st, int64_t ttl_ms, int64_t *id, int64_t *granted_ms)
{
    int64_t g = 0;
    int rc;

    st->errmsg[0] = '\0';
    if (ttl_ms <= 0 || !id) {
        store_seterr(st, "a lease needs a positive TTL and an id to fill");
        return SHARDZ_EINVAL;
    }
    if (!has_leases(st)) {
        return SHARDZ_ENOTSUP;
    }
    rc = st->ops->lease_grant(st, ttl_ms, id, &g);
    if (rc == 0 && granted_ms) {
        *granted_ms = g;
    }
    return rc;
}

/* The checks of a call on lease id: 0, or the error (with the detail set). */
static int lease_call_ok(shardz_store *st, int64_t id)
{
    st->errmsg[0] = '\0';
    if (id <= 0) {
        store_seterr(st, "lease id %lld is not positive", (long long)id);
        return SHARDZ_EINVAL;
    }
    return has_leases(st) ? 0 : SHARDZ_ENOTSUP;
}

int shardz_store_lease_keepalive(shardz_store *st, int64_t id, int64_t *ttl_ms)
{
    int64_t t = 0;
    int rc = lease_call_ok(st, id);

    if (rc) {
        return rc;
    }
    rc = st->ops->lease_keepalive(st, id, &t);
    if (rc == 0 && ttl_ms) {
        *ttl_ms = t;
    }
    return rc;
}

int shardz_store_lease_revoke(shardz_store *st, int64_t id)
{
    int rc = lease_call_ok(st, id);

    return rc ? rc : st->ops->lease_revoke(st, id);
}

int shardz_store_put(shardz_store *st, const void *key, size_t key_len, const void *value,
                     size_t value_len, int64_t *revision)
{
    shardz_op op = {SHARDZ_OP_PUT, key, key_len, value, value_len, 0};

    return shardz_store_txn(st, NULL, 0, &op, 1, NULL, revision);
}

int shardz_store_delete(shardz_store *st, const void *key, size_t key_len, size_t *deleted,
                        int64_t *revision)
{
    shardz_op op = {SHARDZ_OP_DELETE, key, key_len, NULL, 0, 0};

    return shardz_store_txn(st, NULL, 0, &op, 1, deleted, revision);
}

int shardz_store_delete_prefix(shardz_store *st, const void *prefix, size_t prefix_len,
                               size_t *deleted, int64_t *revision)
{
    shardz_op op = {SHARDZ_OP_DELETE_PREFIX, prefix, prefix_len, NULL, 0, 0};

    return shardz_store_txn(st, NULL, 0, &op, 1, deleted, revision);
}

int shardz_store_compact(shardz_store *st, int64_t revision)
{
    st->errmsg[0] = '\0';
    if (revision < 0) {
        store_seterr(st, "negative revision %lld", (long long)revision);
        return SHARDZ_EINVAL;
    }
    return st->ops->compact(st, revision);
}

/* ---- batching ---- */

static int cmp_op_keys(const void *a, const void *b)
{
    const shardz_op *x = *(const shardz_op *const *)a, *y = *(const shardz_op *const *)b;

    return store_keycmp(x->key, x->key_len, y->key, y->key_len);
}

/* The batch's own rules: puts and deletes only, valid, each small enough, no key twice. */
static int check_batch(shardz_store *st, const shardz_op *ops, size_t nops, size_t budget)
{
    const shardz_op **sorted = NULL;
    size_t i, bytes;
    int rc = 0;

    if (nops && !ops) {
        store_seterr(st, "NULL operation list");
        return SHARDZ_EINVAL;
    }
    for (i = 0; i < nops; i++) {
        if (ops[i].type != SHARDZ_OP_PUT && ops[i].type != SHARDZ_OP_DELETE) {
            store_seterr(st, "operation %zu of a batch is neither a put nor a delete", i);
            return SHARDZ_EINVAL;
        }
        bytes = 0;
        rc = check_op(st, &ops[i], &bytes);
        if (rc) {
            return rc;
        }
        if (bytes > budget) {
            store_seterr(st, "operation %zu (%zu bytes) does not fit a transaction", i, bytes);
            return SHARDZ_ETOOBIG;
        }
    }
    if (nops < 2) {
        return 0;
    }
    sorted = malloc(nops * sizeof *sorted);
    if (!sorted) {
        return SHARDZ_ENOMEM;
    }
    for (i = 0; i < nops; i++) {
        sorted[i] = &ops[i];
    }
    qsort(sorted, nops, sizeof *sorted, cmp_op_keys);
    for (i = 1; i < nops; i++) {
        if (cmp_op_keys(&sorted[i - 1], &sorted[i]) == 0) {
            store_seterr(st, "a batch holds one key twice");
            rc = SHARDZ_EINVAL;
            break;
        }
    }
    free(sorted);
    return rc;
}

int shardz_store_txn_batched(shardz_store *st, const shardz_compare *guards, size_t nguards,
                             const shardz_op *ops, size_t nops, size_t per_txn, size_t *applied,
                             int64_t *revision)
{
    size_t done = 0, gbytes = 0, budget, i;
    int64_t rev = 0;
    int rc;

    st->errmsg[0] = '\0';
    if (applied) {
        *applied = 0;
    }
    if (per_txn == 0) {
        per_txn = SHARDZ_STORE_MAX_TXN_OPS;
    }
    if (per_txn > SHARDZ_STORE_MAX_TXN_OPS) {
        store_seterr(st, "per_txn %zu is more than %d", per_txn, SHARDZ_STORE_MAX_TXN_OPS);
        return SHARDZ_EINVAL;
    }
    rc = check_txn(st, guards, nguards, NULL, 0);
    if (rc) {
        return rc;
    }
    for (i = 0; i < nguards; i++) {
        gbytes +=
            guards[i].key_len + (guards[i].target == SHARDZ_CMP_VALUE ? guards[i].value_len : 0);
    }
    budget = SHARDZ_STORE_MAX_TXN_BYTES - gbytes;
    rc = check_batch(st, ops, nops, budget);
    if (rc) {
        return rc;
    }
    do {
        size_t n = 0, bytes = 0;

        while (done + n < nops && n < per_txn) {
            const shardz_op *o = &ops[done + n];
            size_t b = o->key_len + (o->type == SHARDZ_OP_PUT ? o->value_len : 0);

            if (bytes + b > budget) {
                break;
            }
            bytes += b;
            n++;
        }
        rc = shardz_store_txn(st, guards, nguards, ops + done, n, NULL, &rev);
        if (rc) {
            break;
        }
        done += n;
    } while (done < nops);
    if (applied) {
        *applied = done;
    }
    if (revision) {
        *revision = rev;
    }
    return rc;
}

int shardz_store_write_batch(shardz_store *st, const shardz_compare *guards, size_t nguards,
                             const shardz_op *ops, size_t nops, size_t *applied, int64_t *revision,
                             bool *whole)
{
    size_t del = 0;
    int64_t rev = 0;
    int rc;

    if (whole) {
        *whole = false;
    }
    if (st->ops->version < 3 || !st->ops->txn_whole) {
        return shardz_store_txn_batched(st, guards, nguards, ops, nops, 0, applied, revision);
    }
    if (whole) {
        *whole = true;
    }
    st->errmsg[0] = '\0';
    if (applied) {
        *applied = 0;
    }
    rc = check_txn(st, guards, nguards, NULL, 0);
    if (rc) {
        return rc;
    }
    rc = check_batch(st, ops, nops, SIZE_MAX);
    if (rc == 0) {
        rc = guarded_txn(st, true, guards, nguards, ops, nops, &del, &rev);
    }
    if (applied) {
        *applied = rc == 0 ? nops : 0;
    }
    if (revision) {
        *revision = rev;
    }
    return rc;
}
