/* The fault-injection store: an ops table wrapping another store, passing everything through
 * until armed, then failing the nth write (before it reaches the inner store, or after it was
 * applied: a lost acknowledgement). For tests of the store's callers (STYLE habit 13).
 * Runs on the caller's thread; one thread per handle. */
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

typedef struct {
    shardz_store base;
    store_ops ops;          /* fault_ops, with txn_whole only when the inner store has one */
    shardz_store *inner;    /* owned */
    shardz_store_fault arm; /* the armed fault; arm.nth counts down, 0 when disarmed */
    bool firing;            /* sticky mode reached its nth write */
    uint64_t writes;        /* writes seen, failed ones included */
} fault_store;

static const store_ops fault_ops;

/* Copies the inner store's detail after a call that failed there. */
static int pass(fault_store *f, int rc)
{
    if (rc) {
        memcpy(f->base.errmsg, f->inner->errmsg, sizeof f->base.errmsg);
    }
    return rc;
}

static int fault_get(shardz_store *st, const void *key, size_t key_len, shardz_kv **out,
                     int64_t *revision)
{
    fault_store *f = (fault_store *)st;

    return pass(f, shardz_store_get(f->inner, key, key_len, out, revision));
}

static int fault_range(shardz_store *st, const void *lo, size_t lo_len, const void *hi,
                       size_t hi_len, size_t limit, shardz_range **out)
{
    fault_store *f = (fault_store *)st;

    f->inner->errmsg[0] = '\0';
    return pass(f, f->inner->ops->range(f->inner, lo, lo_len, hi, hi_len, limit, out));
}

static int fault_changes(shardz_store *st, int64_t since, size_t limit, shardz_changes **out)
{
    fault_store *f = (fault_store *)st;

    return pass(f, shardz_store_changes(f->inner, since, limit, out));
}

static int fault_compact(shardz_store *st, int64_t revision)
{
    fault_store *f = (fault_store *)st;

    return pass(f, shardz_store_compact(f->inner, revision));
}

static int fault_status(shardz_store *st, shardz_store_status *out)
{
    fault_store *f = (fault_store *)st;
    int rc = pass(f, shardz_store_status_get(f->inner, out));

    out->backend = "fault";
    return rc;
}

/* Counts a write; true when this one fails. */
static bool fails_now(fault_store *f)
{
    f->writes++;
    if (f->firing) {
        return true;
    }
    if (f->arm.nth == 0 || --f->arm.nth > 0) {
        return false;
    }
    f->firing = f->arm.sticky;
    return true;
}

/* The inner store's transaction: bounded (shardz_store_txn checks it again), or whole (the
 * batch was checked by shardz_store_write_batch on this handle). */
static int inner_txn(fault_store *f, bool whole, const shardz_compare *cmps, size_t ncmps,
                     const shardz_op *ops, size_t nops, size_t *deleted, int64_t *revision)
{
    if (!whole) {
        return shardz_store_txn(f->inner, cmps, ncmps, ops, nops, deleted, revision);
    }
    f->inner->errmsg[0] = '\0';
    return f->inner->ops->txn_whole(f->inner, cmps, ncmps, ops, nops, deleted, revision);
}

static int apply(shardz_store *st, bool whole, const shardz_compare *cmps, size_t ncmps,
                 const shardz_op *ops, size_t nops, size_t *deleted, int64_t *revision)
{
    fault_store *f = (fault_store *)st;
    int err = f->arm.err ? f->arm.err : SHARDZ_EIO;
    int rc;

    if (!fails_now(f)) {
        return pass(f, inner_txn(f, whole, cmps, ncmps, ops, nops, deleted, revision));
    }
    if (f->arm.after) {
        rc = inner_txn(f, whole, cmps, ncmps, ops, nops, deleted, revision);
        if (rc) {
            return pass(f, rc);
        }
    } else {
        shardz_store_status s = {0};

        shardz_store_status_get(f->inner, &s);
        *revision = s.revision;
    }
    *deleted = 0;
    store_seterr(st, "injected fault (%s the write): %s", f->arm.after ? "after" : "before",
                 shardz_strerror(err));
    return err;
}

static int fault_txn(shardz_store *st, const shardz_compare *cmps, size_t ncmps,
                     const shardz_op *ops, size_t nops, size_t *deleted, int64_t *revision)
{
    return apply(st, false, cmps, ncmps, ops, nops, deleted, revision);
}

static int fault_txn_whole(shardz_store *st, const shardz_compare *cmps, size_t ncmps,
                           const shardz_op *ops, size_t nops, size_t *deleted, int64_t *revision)
{
    return apply(st, true, cmps, ncmps, ops, nops, deleted, revision);
}

static void fault_close(shardz_store *st)
{
    fault_store *f = (fault_store *)st;

    shardz_store_close(f->inner);
    free(f);
}

static int fault_lease_grant(shardz_store *st, int64_t ttl_ms, int64_t *id, int64_t *granted_ms)
{
    fault_store *f = (fault_store *)st;

    return pass(f, shardz_store_lease_grant(f->inner, ttl_ms, id, granted_ms));
}

static int fault_lease_keepalive(shardz_store *st, int64_t id, int64_t *ttl_ms)
{
    fault_store *f = (fault_store *)st;

    return pass(f, shardz_store_lease_keepalive(f->inner, id, ttl_ms));
}

static int fault_lease_revoke(shardz_store *st, int64_t id)
{
    fault_store *f = (fault_store *)st;

    return pass(f, shardz_store_lease_revoke(f->inner, id));
}

static const store_ops fault_ops = {
    .version = STORE_OPS_VERSION,
    .name = "fault",
    .get = fault_get,
    .range = fault_range,
    .txn = fault_txn,
    .changes = fault_changes,
    .compact = fault_compact,
    .status = fault_status,
    .close = fault_close,
    .lease_grant = fault_lease_grant,
    .lease_keepalive = fault_lease_keepalive,
    .lease_revoke = fault_lease_revoke,
    .txn_whole = fault_txn_whole,
};

int shardz_store_open_fault(shardz_store *inner, shardz_store **out)
{
    fault_store *f;

    *out = NULL;
    if (!inner) {
        return SHARDZ_EINVAL;
    }
    f = calloc(1, sizeof *f);
    if (!f) {
        return SHARDZ_ENOMEM;
    }
    f->ops = fault_ops;
    if (inner->ops->version < 3 || !inner->ops->txn_whole) {
        f->ops.txn_whole = NULL; /* bounded like the inner store */
    }
    f->base.ops = &f->ops;
    f->inner = inner;
    *out = &f->base;
    return 0;
}

int shardz_store_fault_arm(shardz_store *st, const shardz_store_fault *fault)
{
    fault_store *f = (fault_store *)st;

    if (!st || st->ops->close != fault_close || !fault || fault->err > 0) {
        return SHARDZ_EINVAL;
    }
    f->arm = *fault;
    f->firing = false;
    return 0;
}

uint64_t shardz_store_fault_writes(const shardz_store *st)
{
    return st && st->ops->close == fault_close ? ((const fault_store *)st)->writes : 0;
}
