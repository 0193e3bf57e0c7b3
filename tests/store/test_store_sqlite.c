/* The store conformance suite on the SQLite backend, then what only a file-backed store has:
 * everything survives close and reopen, WAL and the synchronous mode are read back, a foreign,
 * corrupt or newer file is refused, a lock held elsewhere gives SHARDZ_EBUSY with nothing
 * changed, and two handles on one file agree on revisions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "store/store_int.h"

static int open_sqlite(const char *dir, const shardz_store_options *opt, shardz_store **out)
{
    return shardz_store_open_sqlite(dir, opt, out);
}

/* The database file of a data directory, for raw SQLite access (caller frees). */
static char *db_path(const char *dir)
{
    char *p = malloc(strlen(dir) + sizeof "/shardz.db");

    assert_non_null(p);
    sprintf(p, "%s/shardz.db", dir);
    return p;
}

static void raw_exec(const char *dir, const char *sql)
{
    char *path = db_path(dir);
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    free(path);
}

static void test_reopen_keeps_everything(void **state)
{
    char *dir = tmpdir_make();
    shardz_store_options opt = {.history = 50};
    shardz_store *st = NULL;
    snapshot before, after;
    shardz_op o[2] = {{SHARDZ_OP_PUT, "x", 1, "1", 1, 0}, {SHARDZ_OP_DELETE, "a/3", 3, NULL, 0, 0}};
    char key[16];
    int64_t rev = 0;
    int i;

    (void)state;
    assert_int_equal(shardz_store_open_sqlite(dir, &opt, &st), 0);
    for (i = 0; i < 60; i++) {
        snprintf(key, sizeof key, "a/%d", i % 7);
        assert_int_equal(shardz_store_put(st, key, strlen(key), key, strlen(key), NULL), 0);
    }
    assert_int_equal(shardz_store_txn(st, NULL, 0, o, 2, NULL, &rev), 0);
    assert_int_equal(rev, 61);
    assert_int_equal(shardz_store_delete_prefix(st, "a/5", 3, NULL, NULL), 0);
    snapshot_take(st, &before);
    assert_int_equal(before.status.compact_revision, 12);
    shardz_store_close(st);

    assert_int_equal(shardz_store_open_sqlite(dir, &opt, &st), 0);
    snapshot_take(st, &after);
    snapshot_assert_equal(&before, &after);
    snapshot_free(&after);
    snapshot_free(&before);
    /* Revisions continue where they stopped; versions and create revisions too. */
    assert_int_equal(shardz_store_put(st, "a/1", 3, "z", 1, &rev), 0);
    assert_int_equal(rev, 63);
    {
        shardz_kv *kv = NULL;

        assert_int_equal(shardz_store_get(st, "a/1", 3, &kv, NULL), 0);
        assert_int_equal(kv->create_revision, 2);
        assert_int_equal(kv->version, 10);
        shardz_kv_free(kv);
    }
    shardz_store_close(st);
    tmpdir_remove(dir);
}

static void test_sync_modes(void **state)
{
    char *dir = tmpdir_make();
    shardz_store_options opt = {.sync = SHARDZ_STORE_SYNC_NORMAL};
    shardz_store *st = NULL;
    shardz_store_status s;

    (void)state;
    assert_int_equal(shardz_store_open_sqlite(dir, &opt, &st), 0);
    assert_int_equal(shardz_store_status_get(st, &s), 0);
    assert_string_equal(s.backend, "sqlite");
    assert_int_equal(s.sync, SHARDZ_STORE_SYNC_NORMAL);
    shardz_store_close(st);
    assert_int_equal(shardz_store_open_sqlite(dir, NULL, &st), 0);
    assert_int_equal(shardz_store_status_get(st, &s), 0);
    assert_int_equal(s.sync, SHARDZ_STORE_SYNC_FULL);
    shardz_store_close(st);
    /* NONE is no SQLite mode. */
    opt.sync = SHARDZ_STORE_SYNC_NONE;
    assert_int_equal(shardz_store_open_sqlite(dir, &opt, &st), SHARDZ_EINVAL);
    assert_null(st);
    tmpdir_remove(dir);
}

/* The file on disk is in WAL mode and has the schema version table. */
static void test_wal_and_schema_on_disk(void **state)
{
    char *dir = tmpdir_make();
    char *path = db_path(dir);
    shardz_store *st = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;

    (void)state;
    assert_int_equal(shardz_store_open_sqlite(dir, NULL, &st), 0);
    assert_int_equal(shardz_store_put(st, "k", 1, "v", 1, NULL), 0);
    shardz_store_close(st);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1);
    assert_int_equal(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(path);
    tmpdir_remove(dir);
}

static void test_refuses_bad_files(void **state)
{
    char *dir = tmpdir_make();
    char *path = db_path(dir);
    char err[256] = "";
    shardz_store_options opt = {.errbuf = err, .errbuf_size = sizeof err};
    shardz_store *st = NULL;
    FILE *fp;

    (void)state;
    /* A newer schema. */
    assert_int_equal(shardz_store_open_sqlite(dir, NULL, &st), 0);
    shardz_store_close(st);
    raw_exec(dir, "INSERT INTO schema_version(version) VALUES(2)");
    assert_int_equal(shardz_store_open_sqlite(dir, &opt, &st), SHARDZ_ENOTSUP);
    assert_null(st);
    assert_non_null(strstr(err, "newer"));
    tmpdir_remove(dir);

    /* A foreign SQLite database. */
    dir = tmpdir_make();
    free(path);
    path = db_path(dir);
    raw_exec(dir, "CREATE TABLE users(name TEXT)");
    err[0] = '\0';
    assert_int_equal(shardz_store_open_sqlite(dir, &opt, &st), SHARDZ_EIO);
    assert_non_null(strstr(err, "not a shardz database"));
    tmpdir_remove(dir);

    /* A file that is no database at all. */
    dir = tmpdir_make();
    free(path);
    path = db_path(dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("this is not an SQLite file, just some text long enough to have a header......", fp);
    fputs("................................................................................", fp);
    fclose(fp);
    err[0] = '\0';
    assert_int_equal(shardz_store_open_sqlite(dir, &opt, &st), SHARDZ_EIO);
    assert_null(st);
    assert_string_not_equal(err, "");
    tmpdir_remove(dir);

    /* A data directory whose parent is missing; a data "directory" that is a file. */
    dir = tmpdir_make();
    free(path);
    path = malloc(strlen(dir) + 32);
    assert_non_null(path);
    sprintf(path, "%s/missing/data", dir);
    err[0] = '\0';
    assert_int_equal(shardz_store_open_sqlite(path, &opt, &st), SHARDZ_ENOENT);
    assert_non_null(strstr(err, "missing/data"));
    sprintf(path, "%s/file", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(shardz_store_open_sqlite(path, &opt, &st), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_open_sqlite("", &opt, &st), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_open_sqlite(NULL, NULL, &st), SHARDZ_EINVAL);
    /* A data directory created on demand (one level). */
    sprintf(path, "%s/newdata", dir);
    assert_int_equal(shardz_store_open_sqlite(path, NULL, &st), 0);
    shardz_store_close(st);
    free(path);
    tmpdir_remove(dir);
}

/* Another connection holds the write lock: the store waits its busy timeout, then answers
 * SHARDZ_EBUSY with nothing changed; once the lock is gone, writes go through. */
static void test_busy_timeout(void **state)
{
    char *dir = tmpdir_make();
    char *path = db_path(dir);
    shardz_store_options opt = {.busy_timeout_ms = 50};
    shardz_store *st = NULL;
    sqlite3 *db = NULL;
    shardz_kv *kv = NULL;
    int64_t rev = -1;

    (void)state;
    assert_int_equal(shardz_store_open_sqlite(dir, &opt, &st), 0);
    assert_int_equal(shardz_store_put(st, "k", 1, "1", 1, NULL), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(shardz_store_put(st, "k", 1, "2", 1, &rev), SHARDZ_EBUSY);
    assert_non_null(strstr(shardz_store_errmsg(st), "sqlite"));
    /* Reads still work in WAL mode while a writer holds the lock. */
    assert_int_equal(shardz_store_get(st, "k", 1, &kv, NULL), 0);
    assert_string_equal(kv->value, "1");
    shardz_kv_free(kv);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(shardz_store_put(st, "k", 1, "2", 1, &rev), 0);
    assert_int_equal(rev, 2);
    shardz_store_close(st);
    free(path);
    tmpdir_remove(dir);
}

/* Two handles on one file: each sees the other's commits and revisions never repeat. */
static void test_two_handles(void **state)
{
    char *dir = tmpdir_make();
    shardz_store *a = NULL, *b = NULL;
    shardz_compare c = {SHARDZ_CMP_MOD, "k", 1, 1, NULL, 0};
    shardz_op o = {SHARDZ_OP_PUT, "k", 1, "b", 1, 0};
    int64_t rev = 0;

    (void)state;
    assert_int_equal(shardz_store_open_sqlite(dir, NULL, &a), 0);
    assert_int_equal(shardz_store_open_sqlite(dir, NULL, &b), 0);
    assert_int_equal(shardz_store_put(a, "k", 1, "a", 1, &rev), 0);
    assert_int_equal(rev, 1);
    assert_int_equal(shardz_store_put(b, "j", 1, "b", 1, &rev), 0);
    assert_int_equal(rev, 2);
    /* b's CAS on a's write holds once; a second identical CAS (stale mod revision) fails. */
    assert_int_equal(shardz_store_txn(b, &c, 1, &o, 1, NULL, &rev), 0);
    assert_int_equal(rev, 3);
    assert_int_equal(shardz_store_txn(a, &c, 1, &o, 1, NULL, &rev), SHARDZ_ECONFLICT);
    assert_int_equal(rev, 3);
    shardz_store_close(a);
    shardz_store_close(b);
    tmpdir_remove(dir);
}

int main(void)
{
    const store_backend sqlite = {
        .name = "sqlite",
        .open = open_sqlite,
        .default_sync = SHARDZ_STORE_SYNC_FULL,
        .fail_inside = store_sqlite_fail_step,
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reopen_keeps_everything),
        cmocka_unit_test(test_sync_modes),
        cmocka_unit_test(test_wal_and_schema_on_disk),
        cmocka_unit_test(test_refuses_bad_files),
        cmocka_unit_test(test_busy_timeout),
        cmocka_unit_test(test_two_handles),
    };
    int failed = conformance_run(&sqlite);

    return failed + cmocka_run_group_tests_name("store sqlite", tests, NULL, NULL);
}
