/* The SQLite store, the embedded default: one file dir/shardz.db in WAL mode, synchronous FULL
 * (or NORMAL on request), prepared statements, every write transaction in BEGIN IMMEDIATE (so a
 * writer never fails half-way on a lock upgrade), reads in one snapshot, a schema version table.
 * Runs on the caller's thread; one thread per handle. Durability argument: docs/STORE.md. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

/* The schema this build writes; an older one would be migrated here, a newer one refused. */
#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_DEFAULT_MS 5000

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, value BLOB NOT NULL,"
    " create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS changes(rev INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " type INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
    " create_rev INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY(rev, seq))"
    " WITHOUT ROWID;"
    "INSERT OR IGNORE INTO meta(name, value) VALUES('revision', 0), ('compact_revision', 0);";

/* The prepared statements, by index. */
enum {
    S_BEGIN_READ,
    S_BEGIN_WRITE,
    S_COMMIT,
    S_ROLLBACK,
    S_META_GET,
    S_META_SET,
    S_KV_GET,
    S_KV_PUT,
    S_KV_DEL,
    S_KV_RANGE,
    S_KV_KEYS,
    S_KV_DEL_RANGE,
    S_CH_ADD,
    S_CH_SINCE,
    S_CH_TRIM,
    S_SYNC_GET,
    S__COUNT
};

static const char *const stmt_sql[S__COUNT] = {
    [S_BEGIN_READ] = "BEGIN",
    [S_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_META_GET] = "SELECT value FROM meta WHERE name = ?1",
    [S_META_SET] = "UPDATE meta SET value = ?2 WHERE name = ?1",
    [S_KV_GET] = "SELECT value, create_rev, mod_rev, version FROM kv WHERE key = ?1",
    /* one statement a put: the key's create revision and version come back with it */
    [S_KV_PUT] = "INSERT INTO kv(key, value, create_rev, mod_rev, version)"
                 " VALUES(?1, ?2, ?3, ?3, 1) ON CONFLICT(key) DO UPDATE SET"
                 " value = excluded.value, mod_rev = excluded.mod_rev, version = kv.version + 1"
                 " RETURNING create_rev, version",
    [S_KV_DEL] = "DELETE FROM kv WHERE key = ?1",
    [S_KV_RANGE] = "SELECT key, value, create_rev, mod_rev, version FROM kv"
                   " WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3",
    [S_KV_KEYS] = "SELECT key FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key",
    [S_KV_DEL_RANGE] = "DELETE FROM kv WHERE key >= ?1 AND key < ?2",
    [S_CH_ADD] = "INSERT INTO changes(rev, seq, type, key, value, create_rev, version)"
                 " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_CH_SINCE] = "SELECT rev, type, key, value, create_rev, version FROM changes"
                   " WHERE rev > ?1 ORDER BY rev, seq",
    [S_CH_TRIM] = "DELETE FROM changes WHERE rev <= ?1",
    [S_SYNC_GET] = "PRAGMA synchronous",
};

typedef struct {
    shardz_store base;
    sqlite3 *db;
    sqlite3_stmt *stmt[S__COUNT];
    int64_t history;
    long fail_step; /* test hook: the nth write step or commit fails */
    /* An upper bound above every valid key, for ranges without one: SHARDZ_STORE_MAX_KEY + 1
     * bytes of 0xff. */
    unsigned char key_top[SHARDZ_STORE_MAX_KEY + 1];
} sql_store;

static const store_ops sqlite_ops;

/* Maps an SQLite result code to a shardz error and records the detail. */
static int sqlerr(sql_store *s, int rc, const char *what)
{
    store_seterr(&s->base, "sqlite: %s: %s", what,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return SHARDZ_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return SHARDZ_EBUSY;
    case SQLITE_TOOBIG:
        return SHARDZ_ETOOBIG;
    default:
        return SHARDZ_EIO;
    }
}

/* Binds a blob; a zero-length one stays a blob, not NULL. */
static int bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
    return sqlite3_bind_blob64(st, i, n ? p : "", n, SQLITE_STATIC);
}

static const void *col_blob(sqlite3_stmt *st, int i, size_t *n)
{
    const void *p = sqlite3_column_blob(st, i);

    *n = (size_t)sqlite3_column_bytes(st, i);
    return p ? p : "";
}

/* The test hook's fault point, before each write step. */
static int fault_point(sql_store *s)
{
    if (s->fail_step > 0 && --s->fail_step == 0) {
        store_seterr(&s->base, "sqlite: injected I/O error");
        return SHARDZ_EIO;
    }
    return 0;
}

/* Runs a statement that returns no row, then resets it. */
static int exec_stmt(sql_store *s, int idx, const char *what)
{
    sqlite3_stmt *st = s->stmt[idx];
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        return sqlerr(s, rc, what);
    }
    return 0;
}

static int exec_write(sql_store *s, int idx, const char *what)
{
    int rc = fault_point(s);

    return rc ? rc : exec_stmt(s, idx, what);
}

static void rollback(sql_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        exec_stmt(s, S_ROLLBACK, "rollback");
    }
}

static int meta_get(sql_store *s, const char *name, int64_t *value)
{
    sqlite3_stmt *st = s->stmt[S_META_GET];
    int rc;

    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *value = sqlite3_column_int64(st, 0);
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_ROW) {
        return 0;
    }
    if (rc == SQLITE_DONE) {
        store_seterr(&s->base, "sqlite: meta row %s is missing", name);
        return SHARDZ_EIO;
    }
    return sqlerr(s, rc, "read meta");
}

static int meta_set(sql_store *s, const char *name, int64_t value)
{
    sqlite3_bind_text(s->stmt[S_META_SET], 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s->stmt[S_META_SET], 2, value);
    return exec_write(s, S_META_SET, "write meta");
}

/* Reads a key's row: 0 and the fields, SHARDZ_ENOENT, or an error. With value NULL the value
 * is not read. The statement stays positioned (value points into it) until kv_get_done. */
typedef struct {
    const void *value;
    size_t value_len;
    int64_t create, mod, version;
} row;

static int kv_get(sql_store *s, const void *key, size_t key_len, row *r)
{
    sqlite3_stmt *st = s->stmt[S_KV_GET];
    int rc;

    bind_blob(st, 1, key, key_len);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r->value = col_blob(st, 0, &r->value_len);
        r->create = sqlite3_column_int64(st, 1);
        r->mod = sqlite3_column_int64(st, 2);
        r->version = sqlite3_column_int64(st, 3);
        return 0;
    }
    memset(r, 0, sizeof *r);
    if (rc == SQLITE_DONE) {
        return SHARDZ_ENOENT;
    }
    return sqlerr(s, rc, "read key");
}

static void kv_get_done(sql_store *s)
{
    sqlite3_reset(s->stmt[S_KV_GET]);
    sqlite3_clear_bindings(s->stmt[S_KV_GET]);
}

/* ---- reads ---- */

/* Starts a read snapshot and reads its revision; on failure no transaction is left open. */
static int begin_read(sql_store *s, int64_t *revision)
{
    int rc = exec_stmt(s, S_BEGIN_READ, "begin");

    if (rc == 0) {
        rc = meta_get(s, "revision", revision);
    }
    if (rc) {
        rollback(s);
    }
    return rc;
}

/* Ends a read transaction; keeps rc, or reports a failing commit. */
static int end_read(sql_store *s, int rc)
{
    int crc;

    if (rc) {
        rollback(s);
        return rc;
    }
    crc = exec_stmt(s, S_COMMIT, "commit read");
    if (crc) {
        rollback(s);
    }
    return crc;
}

static int sql_get(shardz_store *st, const void *key, size_t key_len, shardz_kv **out,
                   int64_t *revision)
{
    sql_store *s = (sql_store *)st;
    row r;
    int rc = begin_read(s, revision);

    if (rc) {
        return rc;
    }
    rc = kv_get(s, key, key_len, &r);
    if (rc == 0) {
        *out = store_kv_new(key, key_len, r.value, r.value_len, r.create, r.mod, r.version);
        if (!*out) {
            rc = SHARDZ_ENOMEM;
        }
    }
    kv_get_done(s);
    if (rc == SHARDZ_ENOENT) {
        rc = end_read(s, 0);
        return rc ? rc : SHARDZ_ENOENT;
    }
    rc = end_read(s, rc);
    if (rc) {
        shardz_kv_free(*out);
        *out = NULL;
    }
    return rc;
}

static int sql_range(shardz_store *st, const void *lo, size_t lo_len, const void *hi, size_t hi_len,
                     size_t limit, shardz_range **out)
{
    sql_store *s = (sql_store *)st;
    sqlite3_stmt *q = s->stmt[S_KV_RANGE];
    store_builder b = {0};
    int64_t revision = 0;
    bool more = false;
    int rc = begin_read(s, &revision), step;

    if (rc) {
        return rc;
    }
    bind_blob(q, 1, lo, lo_len);
    if (hi) {
        bind_blob(q, 2, hi, hi_len);
    } else {
        bind_blob(q, 2, s->key_top, sizeof s->key_top);
    }
    /* One row past the limit tells whether more keys match. */
    sqlite3_bind_int64(q, 3, limit && limit < INT64_MAX ? (sqlite3_int64)limit + 1 : -1);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        size_t klen, vlen;
        const void *k = col_blob(q, 0, &klen), *v = col_blob(q, 1, &vlen);

        if (limit && b.n == limit) {
            more = true;
            break;
        }
        rc = store_builder_add(&b, SHARDZ_EVENT_PUT, k, klen, v, vlen, sqlite3_column_int64(q, 2),
                               sqlite3_column_int64(q, 3), sqlite3_column_int64(q, 4));
        if (rc) {
            break;
        }
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = sqlerr(s, step, "range");
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    rc = end_read(s, rc);
    if (rc) {
        store_builder_free(&b);
        return rc;
    }
    return store_builder_range(&b, revision, more, out);
}

static int sql_changes(shardz_store *st, int64_t since, size_t limit, shardz_changes **out)
{
    sql_store *s = (sql_store *)st;
    sqlite3_stmt *q = s->stmt[S_CH_SINCE];
    store_builder b = {0};
    int64_t revision = 0, compact = 0, last = -1;
    bool more = false;
    int rc = begin_read(s, &revision), step = SQLITE_DONE;

    if (rc == 0) {
        rc = meta_get(s, "compact_revision", &compact);
    }
    if (rc == 0 && since < compact) {
        store_seterr(st, "revision %lld is compacted (history starts after %lld)", (long long)since,
                     (long long)compact);
        rc = SHARDZ_STORE_ECOMPACTED;
    }
    if (rc) {
        return end_read(s, rc);
    }
    sqlite3_bind_int64(q, 1, since);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t rev = sqlite3_column_int64(q, 0);
        int type = sqlite3_column_int(q, 1);
        size_t klen, vlen;
        const void *k = col_blob(q, 2, &klen), *v = col_blob(q, 3, &vlen);

        if (limit && b.n >= limit && rev != last) {
            more = true;
            break;
        }
        last = rev;
        rc = store_builder_add(
            &b, type == SHARDZ_EVENT_DELETE ? SHARDZ_EVENT_DELETE : SHARDZ_EVENT_PUT, k, klen, v,
            vlen, sqlite3_column_int64(q, 4), rev, sqlite3_column_int64(q, 5));
        if (rc) {
            break;
        }
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = sqlerr(s, step, "changes");
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    rc = end_read(s, rc);
    if (rc) {
        store_builder_free(&b);
        return rc;
    }
    return store_builder_changes(&b, revision, more, out);
}

static int sql_status(shardz_store *st, shardz_store_status *out)
{
    sql_store *s = (sql_store *)st;
    sqlite3_stmt *q = s->stmt[S_SYNC_GET];
    int rc, step, mode = -1;

    out->backend = "sqlite";
    step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        mode = sqlite3_column_int(q, 0);
    }
    sqlite3_reset(q);
    if (step != SQLITE_ROW) {
        return sqlerr(s, step, "read synchronous");
    }
    /* PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA; we only ever set 1 or 2. */
    out->sync = mode >= 2   ? SHARDZ_STORE_SYNC_FULL
                : mode == 1 ? SHARDZ_STORE_SYNC_NORMAL
                            : SHARDZ_STORE_SYNC_NONE;
    rc = begin_read(s, &out->revision);
    if (rc == 0) {
        rc = meta_get(s, "compact_revision", &out->compact_revision);
    }
    return end_read(s, rc);
}

/* ---- writes ---- */

static int begin_write(sql_store *s, int64_t *revision)
{
    int rc = exec_stmt(s, S_BEGIN_WRITE, "begin immediate");

    if (rc == 0) {
        rc = meta_get(s, "revision", revision);
    }
    return rc;
}

/* Commits a write transaction, or rolls it back when rc is an error or the commit fails. */
static int end_write(sql_store *s, int rc)
{
    if (rc == 0) {
        rc = exec_write(s, S_COMMIT, "commit");
    }
    if (rc) {
        rollback(s);
    }
    return rc;
}

static int compare_holds(sql_store *s, const shardz_compare *c, bool *holds)
{
    row r;
    int rc = kv_get(s, c->key, c->key_len, &r);
    bool found = rc == 0;

    if (rc && rc != SHARDZ_ENOENT) {
        kv_get_done(s);
        return rc;
    }
    switch (c->target) {
    case SHARDZ_CMP_ABSENT:
        *holds = !found;
        break;
    case SHARDZ_CMP_EXISTS:
        *holds = found;
        break;
    case SHARDZ_CMP_VERSION:
        *holds = r.version == c->number;
        break;
    case SHARDZ_CMP_CREATE:
        *holds = r.create == c->number;
        break;
    case SHARDZ_CMP_MOD:
        *holds = r.mod == c->number;
        break;
    case SHARDZ_CMP_VALUE:
        *holds = found && r.value_len == c->value_len &&
                 (c->value_len == 0 || memcmp(r.value, c->value, c->value_len) == 0);
        break;
    }
    kv_get_done(s);
    return 0;
}

static int change_add(sql_store *s, int64_t rev, int64_t seq, shardz_event_type type,
                      const void *key, size_t key_len, const void *value, size_t value_len,
                      int64_t create, int64_t version)
{
    sqlite3_stmt *q = s->stmt[S_CH_ADD];

    sqlite3_bind_int64(q, 1, rev);
    sqlite3_bind_int64(q, 2, seq);
    sqlite3_bind_int(q, 3, (int)type);
    bind_blob(q, 4, key, key_len);
    bind_blob(q, 5, value, value_len);
    sqlite3_bind_int64(q, 6, create);
    sqlite3_bind_int64(q, 7, version);
    return exec_write(s, S_CH_ADD, "log change");
}

static int apply_put(sql_store *s, const shardz_op *o, int64_t rev, int64_t *seq)
{
    sqlite3_stmt *q = s->stmt[S_KV_PUT];
    int64_t create = rev, version = 1;
    int rc = fault_point(s), step;

    if (rc) {
        return rc;
    }
    bind_blob(q, 1, o->key, o->key_len);
    bind_blob(q, 2, o->value, o->value_len);
    sqlite3_bind_int64(q, 3, rev);
    step = sqlite3_step(q);
    if (step == SQLITE_ROW) {
        create = sqlite3_column_int64(q, 0);
        version = sqlite3_column_int64(q, 1);
        step = sqlite3_step(q);
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (step != SQLITE_DONE) {
        return sqlerr(s, step, "put");
    }
    return change_add(s, rev, (*seq)++, SHARDZ_EVENT_PUT, o->key, o->key_len, o->value,
                      o->value_len, create, version);
}

static int apply_delete(sql_store *s, const shardz_op *o, int64_t rev, int64_t *seq,
                        size_t *deleted)
{
    int rc;

    bind_blob(s->stmt[S_KV_DEL], 1, o->key, o->key_len);
    rc = exec_write(s, S_KV_DEL, "delete");
    if (rc || sqlite3_changes(s->db) == 0) {
        return rc;
    }
    (*deleted)++;
    return change_add(s, rev, (*seq)++, SHARDZ_EVENT_DELETE, o->key, o->key_len, NULL, 0, 0, 0);
}

/* Logs a delete event for every key under the prefix, then deletes them. */
static int apply_delete_prefix(sql_store *s, const shardz_op *o, int64_t rev, int64_t *seq,
                               size_t *deleted)
{
    sqlite3_stmt *q = s->stmt[S_KV_KEYS], *d = s->stmt[S_KV_DEL_RANGE];
    store_bounds b;
    int rc = 0, step;
    size_t n = 0;

    store_bounds_make(&b, o->key, o->key_len, NULL, 0);
    bind_blob(q, 1, b.lo, b.lo_len);
    bind_blob(q, 2, b.hi_set ? b.hi : s->key_top, b.hi_set ? b.hi_len : sizeof s->key_top);
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        size_t klen;
        const void *k = col_blob(q, 0, &klen);

        rc = change_add(s, rev, (*seq)++, SHARDZ_EVENT_DELETE, k, klen, NULL, 0, 0, 0);
        if (rc) {
            break;
        }
        n++;
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE) {
        rc = sqlerr(s, step, "delete prefix");
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (rc || n == 0) {
        return rc;
    }
    bind_blob(d, 1, b.lo, b.lo_len);
    bind_blob(d, 2, b.hi_set ? b.hi : s->key_top, b.hi_set ? b.hi_len : sizeof s->key_top);
    rc = exec_write(s, S_KV_DEL_RANGE, "delete prefix");
    if (rc == 0) {
        *deleted += n;
    }
    return rc;
}

/* After a commit at rev: drop the history older than the configured window. */
static int trim_history(sql_store *s, int64_t rev)
{
    int64_t compact;
    int rc = meta_get(s, "compact_revision", &compact);

    if (rc || rev - s->history <= compact) {
        return rc;
    }
    sqlite3_bind_int64(s->stmt[S_CH_TRIM], 1, rev - s->history);
    rc = exec_write(s, S_CH_TRIM, "trim history");
    if (rc == 0) {
        rc = meta_set(s, "compact_revision", rev - s->history);
    }
    return rc;
}

static int sql_txn(shardz_store *st, const shardz_compare *cmps, size_t ncmps, const shardz_op *ops,
                   size_t nops, size_t *deleted, int64_t *revision)
{
    sql_store *s = (sql_store *)st;
    int64_t cur = 0, rev = 0, seq = 0;
    size_t i;
    bool holds = true;
    int rc = begin_write(s, &cur);

    if (rc) {
        goto out;
    }
    for (i = 0; i < ncmps; i++) {
        rc = compare_holds(s, &cmps[i], &holds);
        if (rc) {
            goto out;
        }
        if (!holds) {
            store_seterr(st, "compare %zu does not hold", i);
            rc = SHARDZ_ECONFLICT;
            goto out;
        }
    }
    rev = cur + 1;
    for (i = 0; i < nops && rc == 0; i++) {
        switch (ops[i].type) {
        case SHARDZ_OP_PUT:
            rc = apply_put(s, &ops[i], rev, &seq);
            break;
        case SHARDZ_OP_DELETE:
            rc = apply_delete(s, &ops[i], rev, &seq, deleted);
            break;
        case SHARDZ_OP_DELETE_PREFIX:
            rc = apply_delete_prefix(s, &ops[i], rev, &seq, deleted);
            break;
        }
    }
    if (rc == 0 && seq > 0) { /* something changed: the commit gets the new revision */
        rc = meta_set(s, "revision", rev);
        if (rc == 0) {
            rc = trim_history(s, rev);
        }
    }
out:
    rc = end_write(s, rc); /* commit, or roll back on any error */
    if (rc == 0 && seq > 0) {
        cur = rev;
    }
    if (rc) {
        *deleted = 0;
    }
    *revision = cur;
    return rc;
}

static int sql_compact(shardz_store *st, int64_t revision)
{
    sql_store *s = (sql_store *)st;
    int64_t cur = 0, compact = 0;
    int rc = begin_write(s, &cur);

    if (rc == 0) {
        rc = meta_get(s, "compact_revision", &compact);
    }
    if (rc == 0 && revision > cur) {
        store_seterr(st, "revision %lld is in the future (current %lld)", (long long)revision,
                     (long long)cur);
        rc = SHARDZ_EINVAL;
    }
    if (rc == 0 && revision > compact) {
        sqlite3_bind_int64(s->stmt[S_CH_TRIM], 1, revision);
        rc = exec_write(s, S_CH_TRIM, "compact");
        if (rc == 0) {
            rc = meta_set(s, "compact_revision", revision);
        }
    }
    return end_write(s, rc);
}

/* ---- open and close ---- */

static void sql_close(shardz_store *st)
{
    sql_store *s = (sql_store *)st;
    int i;

    for (i = 0; i < S__COUNT; i++) {
        sqlite3_finalize(s->stmt[i]);
    }
    sqlite3_close(s->db);
    free(s);
}

/* Creates dir (one level) when missing; it must be a directory. */
static int make_dir(sql_store *s, const char *dir)
{
    struct stat sb;

    if (mkdir(dir, 0700) == 0) {
        return 0;
    }
    if (errno == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        return 0;
    }
    store_seterr(&s->base, "data directory %s: %s", dir, strerror(errno));
    if (errno == ENOENT) {
        return SHARDZ_ENOENT;
    }
    if (errno == EEXIST || errno == ENOTDIR) {
        return SHARDZ_EINVAL;
    }
    return SHARDZ_EIO;
}

/* Makes the database file's directory entry durable (after the file was created). */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Runs a PRAGMA that answers one text row, checks the answer starts with want. */
static int pragma_text(sql_store *s, const char *sql, const char *want)
{
    sqlite3_stmt *q = NULL;
    const unsigned char *got;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &q, NULL);

    if (rc != SQLITE_OK) {
        return sqlerr(s, rc, sql);
    }
    rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        rc = sqlerr(s, rc, sql);
        goto out;
    }
    got = sqlite3_column_text(q, 0);
    if (!got || strcmp((const char *)got, want) != 0) {
        store_seterr(&s->base, "sqlite: %s answered %s, not %s", sql, got ? (char *)got : "", want);
        rc = SHARDZ_ENOTSUP;
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(q);
    return rc;
}

/* Creates the schema in an empty file, checks the version of an existing one. */
static int schema_setup(sql_store *s)
{
    sqlite3_stmt *q = NULL;
    char *msg = NULL;
    int rc, version = 0, step;

    rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        return sqlerr(s, rc, "begin schema");
    }
    rc = sqlite3_prepare_v2(s->db,
                            "SELECT (SELECT count(*) FROM sqlite_master),"
                            " (SELECT count(*) FROM sqlite_master WHERE name = 'schema_version')",
                            -1, &q, NULL);
    if (rc != SQLITE_OK) {
        rc = sqlerr(s, rc, "read schema");
        goto out;
    }
    step = sqlite3_step(q);
    if (step != SQLITE_ROW) {
        rc = sqlerr(s, step, "read schema");
        goto out;
    }
    if (sqlite3_column_int(q, 0) > 0 && sqlite3_column_int(q, 1) == 0) {
        store_seterr(&s->base, "sqlite: the file holds tables but no schema_version: "
                               "not a shardz database");
        rc = SHARDZ_EIO;
        goto out;
    }
    sqlite3_finalize(q);
    q = NULL;
    rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        store_seterr(&s->base, "sqlite: schema: %s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        rc = (rc & 0xff) == SQLITE_BUSY ? SHARDZ_EBUSY : SHARDZ_EIO;
        goto out;
    }
    rc = sqlite3_prepare_v2(s->db, "SELECT max(version) FROM schema_version", -1, &q, NULL);
    if (rc != SQLITE_OK) {
        rc = sqlerr(s, rc, "read schema version");
        goto out;
    }
    step = sqlite3_step(q);
    if (step != SQLITE_ROW) {
        rc = sqlerr(s, step, "read schema version");
        goto out;
    }
    version = sqlite3_column_int(q, 0); /* NULL (no row yet) reads as 0 */
    if (version > SCHEMA_VERSION) {
        store_seterr(&s->base, "sqlite: schema version %d is newer than this build's %d", version,
                     SCHEMA_VERSION);
        rc = SHARDZ_ENOTSUP;
        goto out;
    }
    rc = 0;
    if (version == 0) {
        rc = sqlite3_exec(s->db, "INSERT INTO schema_version(version) VALUES(1)", NULL, NULL, NULL);
        rc = rc == SQLITE_OK ? 0 : sqlerr(s, rc, "write schema version");
    }
out:
    sqlite3_finalize(q);
    if (rc == 0) {
        int crc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);

        if (crc != SQLITE_OK) {
            rc = sqlerr(s, crc, "commit schema");
        }
    }
    if (rc) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

int shardz_store_open_sqlite(const char *dir, const shardz_store_options *opt, shardz_store **out)
{
    shardz_store_options def = {0};
    sql_store *s = NULL;
    char *path = NULL;
    struct stat sb;
    bool existed;
    int rc, i;

    *out = NULL;
    if (!opt) {
        opt = &def;
    }
    if (!dir || !*dir || opt->history < 0 || opt->busy_timeout_ms < 0 ||
        (opt->sync != SHARDZ_STORE_SYNC_FULL && opt->sync != SHARDZ_STORE_SYNC_NORMAL)) {
        if (opt->errbuf && opt->errbuf_size) {
            snprintf(opt->errbuf, opt->errbuf_size, "invalid data directory or option");
        }
        return SHARDZ_EINVAL;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        return SHARDZ_ENOMEM;
    }
    memset(s->key_top, 0xff, sizeof s->key_top);
    s->base.ops = &sqlite_ops;
    s->history = opt->history ? opt->history : SHARDZ_STORE_HISTORY_DEFAULT;
    rc = make_dir(s, dir);
    if (rc) {
        goto err;
    }
    path = malloc(strlen(dir) + sizeof "/shardz.db");
    if (!path) {
        rc = SHARDZ_ENOMEM;
        goto err;
    }
    sprintf(path, "%s/shardz.db", dir);
    existed = stat(path, &sb) == 0;
    rc = sqlite3_open_v2(path, &s->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = sqlerr(s, rc, path);
        goto err;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db,
                         opt->busy_timeout_ms ? opt->busy_timeout_ms : BUSY_TIMEOUT_DEFAULT_MS);
    rc = pragma_text(s, "PRAGMA journal_mode=WAL", "wal");
    if (rc) {
        goto err;
    }
    rc = sqlite3_exec(s->db,
                      opt->sync == SHARDZ_STORE_SYNC_NORMAL ? "PRAGMA synchronous=NORMAL"
                                                            : "PRAGMA synchronous=FULL",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        rc = sqlerr(s, rc, "set synchronous");
        goto err;
    }
    rc = schema_setup(s);
    if (rc) {
        goto err;
    }
    for (i = 0; i < S__COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                                NULL);
        if (rc != SQLITE_OK) {
            rc = sqlerr(s, rc, stmt_sql[i]);
            goto err;
        }
    }
    if (!existed) {
        sync_dir(dir);
    }
    free(path);
    *out = &s->base;
    return 0;
err:
    if (opt->errbuf && opt->errbuf_size) {
        snprintf(opt->errbuf, opt->errbuf_size, "%s", s->base.errmsg);
    }
    free(path);
    sql_close(&s->base);
    return rc;
}

static const store_ops sqlite_ops = {
    .version = STORE_OPS_VERSION,
    .name = "sqlite",
    .get = sql_get,
    .range = sql_range,
    .txn = sql_txn,
    .changes = sql_changes,
    .compact = sql_compact,
    .status = sql_status,
    .close = sql_close,
    .txn_whole = sql_txn, /* one BEGIN IMMEDIATE .. COMMIT of any size */
};

void store_sqlite_fail_step(shardz_store *st, long n)
{
    if (st && st->ops == &sqlite_ops) {
        ((sql_store *)st)->fail_step = n;
    }
}
