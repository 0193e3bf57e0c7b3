/* The store conformance suite (see conformance.h): revisions, ranges, compare-and-swap with
 * nothing changed on failure, the 128-operation limit, batching, changes since a revision and
 * compaction, bad input, and fault injection (the wrapper store and the backends' own fault
 * points), run identically against every backend. Plus the shared tmpdir/snapshot helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conformance.h"

/* ---- helpers ---- */

char *tmpdir_make(void)
{
    const char *base = getenv("TMPDIR");
    char *dir;

    if (!base || !*base) {
        base = "/tmp";
    }
    dir = malloc(strlen(base) + sizeof "/shardz-store-XXXXXX");
    assert_non_null(dir);
    sprintf(dir, "%s/shardz-store-XXXXXX", base);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void remove_tree(const char *path)
{
    struct stat sb;
    DIR *d;
    struct dirent *e;

    if (lstat(path, &sb) != 0) {
        return;
    }
    if (S_ISDIR(sb.st_mode)) {
        d = opendir(path);
        while (d && (e = readdir(d)) != NULL) {
            char child[4096];

            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            snprintf(child, sizeof child, "%s/%s", path, e->d_name);
            remove_tree(child);
        }
        if (d) {
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

void tmpdir_remove(char *dir)
{
    if (!dir) {
        return;
    }
    remove_tree(dir);
    free(dir);
}

void snapshot_take(shardz_store *st, snapshot *s)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(shardz_store_status_get(st, &s->status), 0);
    assert_int_equal(shardz_store_range(st, NULL, 0, NULL, 0, 0, &s->kvs), 0);
    assert_int_equal(shardz_store_changes(st, s->status.compact_revision, 0, &s->changes), 0);
}

static void kv_assert_equal(const shardz_kv *a, const shardz_kv *b)
{
    assert_int_equal(a->key_len, b->key_len);
    assert_memory_equal(a->key, b->key, a->key_len + 1);
    assert_int_equal(a->value_len, b->value_len);
    assert_memory_equal(a->value, b->value, a->value_len + 1);
    assert_int_equal(a->create_revision, b->create_revision);
    assert_int_equal(a->mod_revision, b->mod_revision);
    assert_int_equal(a->version, b->version);
}

void snapshot_assert_equal(const snapshot *a, const snapshot *b)
{
    size_t i;

    assert_int_equal(a->status.revision, b->status.revision);
    assert_int_equal(a->status.compact_revision, b->status.compact_revision);
    assert_int_equal(a->kvs->revision, b->kvs->revision);
    assert_int_equal(a->kvs->count, b->kvs->count);
    for (i = 0; i < a->kvs->count; i++) {
        kv_assert_equal(&a->kvs->kvs[i], &b->kvs->kvs[i]);
    }
    assert_int_equal(a->changes->count, b->changes->count);
    for (i = 0; i < a->changes->count; i++) {
        assert_int_equal(a->changes->events[i].type, b->changes->events[i].type);
        kv_assert_equal(&a->changes->events[i].kv, &b->changes->events[i].kv);
    }
}

void snapshot_free(snapshot *s)
{
    shardz_range_free(s->kvs);
    shardz_changes_free(s->changes);
    memset(s, 0, sizeof *s);
}

/* Puts a C-string key and value; returns the revision after it. */
static int64_t put_s(shardz_store *st, const char *key, const char *value)
{
    int64_t rev = -1;

    assert_int_equal(shardz_store_put(st, key, strlen(key), value, strlen(value), &rev), 0);
    return rev;
}

static shardz_kv *get_s(shardz_store *st, const char *key)
{
    shardz_kv *kv = NULL;

    assert_int_equal(shardz_store_get(st, key, strlen(key), &kv, NULL), 0);
    return kv;
}

static int64_t revision_of(shardz_store *st)
{
    shardz_store_status s;

    assert_int_equal(shardz_store_status_get(st, &s), 0);
    return s.revision;
}

static void assert_absent(shardz_store *st, const char *key)
{
    shardz_kv *kv = (shardz_kv *)1;

    assert_int_equal(shardz_store_get(st, key, strlen(key), &kv, NULL), SHARDZ_ENOENT);
    assert_null(kv);
}

static shardz_op op_put(const char *key, const char *value)
{
    shardz_op o = {SHARDZ_OP_PUT, key, strlen(key), value, strlen(value), 0};

    return o;
}

static shardz_op op_del(const char *key)
{
    shardz_op o = {SHARDZ_OP_DELETE, key, strlen(key), NULL, 0, 0};

    return o;
}

static shardz_compare cmp_num(shardz_cmp_target t, const char *key, int64_t n)
{
    shardz_compare c = {t, key, strlen(key), n, NULL, 0};

    return c;
}

/* ---- fixture: a fresh store per test ---- */

static const store_backend *be;

typedef struct {
    char *dir;
    shardz_store *st;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    assert_non_null(f);
    f->dir = tmpdir_make();
    assert_int_equal(be->open(f->dir, NULL, &f->st), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    shardz_store_close(f->st);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

/* ---- tests ---- */

static void test_empty_store(void **state)
{
    fixture *f = *state;
    shardz_store_status s;
    shardz_range *r = NULL;
    shardz_changes *c = NULL;
    int64_t rev = -1;
    shardz_kv *kv = NULL;

    assert_int_equal(shardz_store_status_get(f->st, &s), 0);
    assert_int_equal(s.revision, 0);
    assert_int_equal(s.compact_revision, 0);
    assert_int_equal(s.sync, be->default_sync);
    assert_non_null(s.backend);
    assert_int_equal(shardz_store_get(f->st, "a", 1, &kv, &rev), SHARDZ_ENOENT);
    assert_null(kv);
    assert_int_equal(rev, 0);
    assert_int_equal(shardz_store_range(f->st, NULL, 0, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, 0);
    assert_false(r->more);
    assert_int_equal(r->revision, 0);
    shardz_range_free(r);
    assert_int_equal(shardz_store_changes(f->st, 0, 0, &c), 0);
    assert_int_equal(c->count, 0);
    shardz_changes_free(c);
}

static void test_put_get_revisions(void **state)
{
    fixture *f = *state;
    shardz_kv *kv;
    size_t deleted = 99;
    int64_t rev = -1;

    assert_int_equal(put_s(f->st, "a", "1"), 1);
    kv = get_s(f->st, "a");
    assert_string_equal(kv->key, "a");
    assert_string_equal(kv->value, "1");
    assert_int_equal(kv->create_revision, 1);
    assert_int_equal(kv->mod_revision, 1);
    assert_int_equal(kv->version, 1);
    shardz_kv_free(kv);

    assert_int_equal(put_s(f->st, "a", "2"), 2);
    assert_int_equal(put_s(f->st, "b", "x"), 3);
    kv = get_s(f->st, "a");
    assert_string_equal(kv->value, "2");
    assert_int_equal(kv->create_revision, 1);
    assert_int_equal(kv->mod_revision, 2);
    assert_int_equal(kv->version, 2);
    shardz_kv_free(kv);

    assert_int_equal(shardz_store_delete(f->st, "a", 1, &deleted, &rev), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(rev, 4);
    assert_absent(f->st, "a");
    /* Deleting an absent key changes nothing and keeps the revision. */
    assert_int_equal(shardz_store_delete(f->st, "a", 1, &deleted, &rev), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(rev, 4);
    assert_int_equal(revision_of(f->st), 4);
    /* A key created again starts a new life. */
    assert_int_equal(put_s(f->st, "a", "3"), 5);
    kv = get_s(f->st, "a");
    assert_int_equal(kv->create_revision, 5);
    assert_int_equal(kv->version, 1);
    shardz_kv_free(kv);
    /* Reads report the current revision. */
    assert_int_equal(shardz_store_get(f->st, "b", 1, &kv, &rev), 0);
    assert_int_equal(rev, 5);
    assert_int_equal(kv->mod_revision, 3);
    shardz_kv_free(kv);
}

static void test_binary_keys_values(void **state)
{
    fixture *f = *state;
    const char key[] = {'k', 0, (char)0xff, 'z'};
    const char val[] = {0, 1, 0, (char)0x80};
    shardz_kv *kv = NULL;
    char *big;
    size_t i;

    assert_int_equal(shardz_store_put(f->st, key, sizeof key, val, sizeof val, NULL), 0);
    assert_int_equal(shardz_store_get(f->st, key, sizeof key, &kv, NULL), 0);
    assert_int_equal(kv->key_len, sizeof key);
    assert_memory_equal(kv->key, key, sizeof key);
    assert_int_equal(kv->key[sizeof key], '\0');
    assert_int_equal(kv->value_len, sizeof val);
    assert_memory_equal(kv->value, val, sizeof val);
    assert_int_equal(kv->value[sizeof val], '\0');
    shardz_kv_free(kv);

    /* An empty value is a value (NULL pointer allowed with length 0). */
    assert_int_equal(shardz_store_put(f->st, "e", 1, NULL, 0, NULL), 0);
    kv = get_s(f->st, "e");
    assert_int_equal(kv->value_len, 0);
    assert_string_equal(kv->value, "");
    shardz_kv_free(kv);

    /* The largest key and the largest value round-trip. */
    big = malloc(SHARDZ_STORE_MAX_VALUE);
    assert_non_null(big);
    for (i = 0; i < SHARDZ_STORE_MAX_VALUE; i++) {
        big[i] = (char)(i * 7 + 3);
    }
    assert_int_equal(
        shardz_store_put(f->st, big, SHARDZ_STORE_MAX_KEY, big, SHARDZ_STORE_MAX_VALUE, NULL), 0);
    assert_int_equal(shardz_store_get(f->st, big, SHARDZ_STORE_MAX_KEY, &kv, NULL), 0);
    assert_int_equal(kv->value_len, SHARDZ_STORE_MAX_VALUE);
    assert_memory_equal(kv->value, big, SHARDZ_STORE_MAX_VALUE);
    shardz_kv_free(kv);
    free(big);
}

static void test_range_sorted_limit_after(void **state)
{
    fixture *f = *state;
    /* Inserted out of order; bytewise order puts "p/a" < "p/a/b" < "p/aa" < "p/b". */
    const char *keys[] = {"p/b", "q", "p/aa", "o", "p/a", "p/a/b", "p", "p/c"};
    const char *want[] = {"p/a", "p/a/b", "p/aa", "p/b", "p/c"};
    shardz_range *r = NULL;
    size_t i, seen = 0;
    const char *after = NULL;
    char last[64];

    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        put_s(f->st, keys[i], keys[i]);
    }
    assert_int_equal(shardz_store_range(f->st, "p/", 2, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, 5);
    assert_false(r->more);
    assert_int_equal(r->revision, 8);
    for (i = 0; i < r->count; i++) {
        assert_string_equal(r->kvs[i].key, want[i]);
        assert_string_equal(r->kvs[i].value, want[i]);
    }
    shardz_range_free(r);

    /* Pages of two, continued with after = the last key. */
    do {
        assert_int_equal(
            shardz_store_range(f->st, "p/", 2, after, after ? strlen(after) : 0, 2, &r), 0);
        for (i = 0; i < r->count; i++) {
            assert_string_equal(r->kvs[i].key, want[seen + i]);
        }
        seen += r->count;
        assert_true(r->more == (seen < 5));
        if (r->count) {
            snprintf(last, sizeof last, "%s", r->kvs[r->count - 1].key);
            after = last;
        }
        shardz_range_free(r);
    } while (seen < 5);
    assert_int_equal(seen, 5);

    /* An empty prefix is everything; a limit exactly the size sets no more. */
    assert_int_equal(shardz_store_range(f->st, "", 0, NULL, 0, 8, &r), 0);
    assert_int_equal(r->count, 8);
    assert_false(r->more);
    assert_string_equal(r->kvs[0].key, "o");
    assert_string_equal(r->kvs[7].key, "q");
    shardz_range_free(r);
    /* No match. */
    assert_int_equal(shardz_store_range(f->st, "zz", 2, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, 0);
    shardz_range_free(r);
    /* after must lie under the prefix. */
    assert_int_equal(shardz_store_range(f->st, "p/", 2, "o", 1, 0, &r), SHARDZ_EINVAL);
    assert_null(r);
}

static void test_range_prefix_edges(void **state)
{
    fixture *f = *state;
    const char k1[] = {'a', (char)0xff}, k2[] = {'a', (char)0xff, (char)0xff}, k3[] = {'b'};
    const char k4[] = {(char)0xff, (char)0xff}, pre[] = {'a', (char)0xff};
    const char all_ff[] = {(char)0xff};
    shardz_range *r = NULL;

    assert_int_equal(shardz_store_put(f->st, k1, sizeof k1, "1", 1, NULL), 0);
    assert_int_equal(shardz_store_put(f->st, k2, sizeof k2, "2", 1, NULL), 0);
    assert_int_equal(shardz_store_put(f->st, k3, sizeof k3, "3", 1, NULL), 0);
    assert_int_equal(shardz_store_put(f->st, k4, sizeof k4, "4", 1, NULL), 0);
    /* A prefix ending in 0xff: its end is "b", excluded. */
    assert_int_equal(shardz_store_range(f->st, pre, sizeof pre, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, 2);
    assert_string_equal(r->kvs[0].value, "1");
    assert_string_equal(r->kvs[1].value, "2");
    shardz_range_free(r);
    /* An all-0xff prefix has no upper bound. */
    assert_int_equal(shardz_store_range(f->st, all_ff, 1, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, 1);
    assert_string_equal(r->kvs[0].value, "4");
    shardz_range_free(r);
    /* The largest possible key is still inside an empty prefix. */
    {
        char big[SHARDZ_STORE_MAX_KEY];

        memset(big, 0xff, sizeof big);
        assert_int_equal(shardz_store_put(f->st, big, sizeof big, "5", 1, NULL), 0);
        assert_int_equal(shardz_store_range(f->st, NULL, 0, NULL, 0, 0, &r), 0);
        assert_int_equal(r->count, 5);
        assert_string_equal(r->kvs[4].value, "5");
        shardz_range_free(r);
        assert_int_equal(shardz_store_delete_prefix(f->st, all_ff, 1, NULL, NULL), 0);
        assert_int_equal(shardz_store_range(f->st, NULL, 0, NULL, 0, 0, &r), 0);
        assert_int_equal(r->count, 3);
        shardz_range_free(r);
    }
}

static void test_txn_cas_success(void **state)
{
    fixture *f = *state;
    shardz_compare c[6];
    shardz_op o[3];
    shardz_kv *kv;
    size_t deleted = 0;
    int64_t rev = 0;

    put_s(f->st, "a", "va");   /* rev 1 */
    put_s(f->st, "a", "vb");   /* rev 2: create 1, version 2 */
    put_s(f->st, "gone", "x"); /* rev 3 */
    c[0] = cmp_num(SHARDZ_CMP_MOD, "a", 2);
    c[1] = cmp_num(SHARDZ_CMP_CREATE, "a", 1);
    c[2] = cmp_num(SHARDZ_CMP_VERSION, "a", 2);
    c[3] = (shardz_compare){SHARDZ_CMP_VALUE, "a", 1, 0, "vb", 2};
    c[4] = cmp_num(SHARDZ_CMP_ABSENT, "new", 0);
    c[5] = cmp_num(SHARDZ_CMP_EXISTS, "gone", 0);
    o[0] = op_put("a", "vc");
    o[1] = op_put("new", "n");
    o[2] = op_del("gone");
    assert_int_equal(shardz_store_txn(f->st, c, 6, o, 3, &deleted, &rev), 0);
    assert_int_equal(rev, 4);
    assert_int_equal(deleted, 1);
    kv = get_s(f->st, "a");
    assert_string_equal(kv->value, "vc");
    assert_int_equal(kv->mod_revision, 4);
    assert_int_equal(kv->version, 3);
    shardz_kv_free(kv);
    kv = get_s(f->st, "new");
    assert_int_equal(kv->create_revision, 4);
    assert_int_equal(kv->mod_revision, 4);
    shardz_kv_free(kv);
    assert_absent(f->st, "gone");
    /* Compares without operations: a check, no write. */
    c[0] = cmp_num(SHARDZ_CMP_MOD, "a", 4);
    assert_int_equal(shardz_store_txn(f->st, c, 1, NULL, 0, NULL, &rev), 0);
    assert_int_equal(rev, 4);
    /* Absent keys compare as zeros. */
    c[0] = cmp_num(SHARDZ_CMP_CREATE, "nope", 0);
    c[1] = cmp_num(SHARDZ_CMP_MOD, "nope", 0);
    c[2] = cmp_num(SHARDZ_CMP_VERSION, "nope", 0);
    o[0] = op_put("nope", "");
    assert_int_equal(shardz_store_txn(f->st, c, 3, o, 1, NULL, &rev), 0);
    assert_int_equal(rev, 5);
}

static void test_txn_cas_failure_changes_nothing(void **state)
{
    fixture *f = *state;
    shardz_compare good[2], bad[7];
    shardz_op o[4];
    snapshot before, after;
    int64_t rev = -1;
    size_t deleted = 99, i;

    put_s(f->st, "a", "va");
    put_s(f->st, "b", "vb");
    put_s(f->st, "pre/1", "1");
    good[0] = cmp_num(SHARDZ_CMP_MOD, "a", 1);
    good[1] = cmp_num(SHARDZ_CMP_EXISTS, "b", 0);
    bad[0] = cmp_num(SHARDZ_CMP_MOD, "a", 2);
    bad[1] = cmp_num(SHARDZ_CMP_CREATE, "a", 7);
    bad[2] = cmp_num(SHARDZ_CMP_VERSION, "a", 2);
    bad[3] = (shardz_compare){SHARDZ_CMP_VALUE, "a", 1, 0, "vX", 2};
    bad[4] = cmp_num(SHARDZ_CMP_ABSENT, "a", 0);
    bad[5] = cmp_num(SHARDZ_CMP_EXISTS, "zz", 0);
    bad[6] = (shardz_compare){SHARDZ_CMP_VALUE, "zz", 2, 0, NULL, 0}; /* absent: no value */
    o[0] = op_put("a", "new");
    o[1] = op_put("c", "new");
    o[2] = op_del("b");
    o[3] = (shardz_op){SHARDZ_OP_DELETE_PREFIX, "pre/", 4, NULL, 0, 0};
    snapshot_take(f->st, &before);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        shardz_compare c[3] = {good[0], bad[i], good[1]};

        assert_int_equal(shardz_store_txn(f->st, c, 3, o, 4, &deleted, &rev), SHARDZ_ECONFLICT);
        assert_int_equal(rev, 3);
        assert_int_equal(deleted, 0);
        assert_string_not_equal(shardz_store_errmsg(f->st), "");
        snapshot_take(f->st, &after);
        snapshot_assert_equal(&before, &after);
        snapshot_free(&after);
    }
    snapshot_free(&before);
    /* The same transaction with only the good compares goes through. */
    assert_int_equal(shardz_store_txn(f->st, good, 2, o, 4, &deleted, &rev), 0);
    assert_int_equal(rev, 4);
    assert_int_equal(deleted, 2);
    assert_string_equal(shardz_store_errmsg(f->st), "");
}

/* 128 operations fit; 129 operations or compares are refused with nothing changed. */
static void test_txn_limit_128(void **state)
{
    fixture *f = *state;
    shardz_op ops[SHARDZ_STORE_MAX_TXN_OPS + 1];
    shardz_compare cmps[SHARDZ_STORE_MAX_TXN_OPS + 1];
    char keys[SHARDZ_STORE_MAX_TXN_OPS + 1][16];
    snapshot before, after;
    shardz_range *r = NULL;
    int64_t rev = 0;
    size_t i;

    for (i = 0; i <= SHARDZ_STORE_MAX_TXN_OPS; i++) {
        snprintf(keys[i], sizeof keys[i], "k%03zu", i);
        ops[i] = op_put(keys[i], "v");
        cmps[i] = cmp_num(SHARDZ_CMP_ABSENT, keys[i], 0);
    }
    snapshot_take(f->st, &before);
    assert_int_equal(
        shardz_store_txn(f->st, NULL, 0, ops, SHARDZ_STORE_MAX_TXN_OPS + 1, NULL, &rev),
        SHARDZ_ETOOBIG);
    assert_int_equal(
        shardz_store_txn(f->st, cmps, SHARDZ_STORE_MAX_TXN_OPS + 1, ops, 1, NULL, &rev),
        SHARDZ_ETOOBIG);
    snapshot_take(f->st, &after);
    snapshot_assert_equal(&before, &after);
    snapshot_free(&after);
    snapshot_free(&before);
    assert_int_equal(shardz_store_txn(f->st, cmps, SHARDZ_STORE_MAX_TXN_OPS, ops,
                                      SHARDZ_STORE_MAX_TXN_OPS, NULL, &rev),
                     0);
    assert_int_equal(rev, 1);
    assert_int_equal(shardz_store_range(f->st, "k", 1, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, SHARDZ_STORE_MAX_TXN_OPS);
    for (i = 0; i < r->count; i++) {
        assert_int_equal(r->kvs[i].mod_revision, 1);
    }
    shardz_range_free(r);
}

static void test_txn_byte_limit(void **state)
{
    fixture *f = *state;
    char *v = calloc(1, SHARDZ_STORE_MAX_VALUE);
    shardz_op o[2];

    assert_non_null(v);
    o[0] = (shardz_op){SHARDZ_OP_PUT, "a", 1, v, SHARDZ_STORE_MAX_VALUE, 0};
    o[1] = (shardz_op){
        SHARDZ_OP_PUT, "b", 1, v, SHARDZ_STORE_MAX_TXN_BYTES - SHARDZ_STORE_MAX_VALUE - 1, 0};
    /* Exactly at the limit: 1 + 1 MiB + 1 + (limit - 1 MiB - 1) = limit + 1 bytes. */
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 2, NULL, NULL), SHARDZ_ETOOBIG);
    assert_int_equal(revision_of(f->st), 0);
    o[1].value_len--;
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 2, NULL, NULL), 0);
    assert_int_equal(revision_of(f->st), 1);
    free(v);
}

static void test_bad_input(void **state)
{
    fixture *f = *state;
    char big[SHARDZ_STORE_MAX_KEY + 1];
    char *bigv = calloc(1, SHARDZ_STORE_MAX_VALUE + 1);
    shardz_kv *kv = NULL;
    shardz_range *r = NULL;
    shardz_changes *c = NULL;
    shardz_op o[2];
    shardz_compare cmp;
    snapshot before, after;

    assert_non_null(bigv);
    memset(big, 'k', sizeof big);
    put_s(f->st, "p/x", "1");
    snapshot_take(f->st, &before);
    /* Keys: empty, NULL, too long. */
    assert_int_equal(shardz_store_put(f->st, "", 0, "v", 1, NULL), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_put(f->st, NULL, 3, "v", 1, NULL), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_get(f->st, "", 0, &kv, NULL), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_delete(f->st, "", 0, NULL, NULL), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_delete_prefix(f->st, "", 0, NULL, NULL), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_put(f->st, big, sizeof big, "v", 1, NULL), SHARDZ_ETOOBIG);
    assert_int_equal(shardz_store_get(f->st, big, sizeof big, &kv, NULL), SHARDZ_ETOOBIG);
    assert_int_equal(shardz_store_range(f->st, big, sizeof big, NULL, 0, 0, &r), SHARDZ_ETOOBIG);
    assert_int_equal(shardz_store_range(f->st, NULL, 3, NULL, 0, 0, &r), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_range(f->st, "p", 1, "", 0, 0, &r), SHARDZ_EINVAL);
    assert_string_not_equal(shardz_store_errmsg(f->st), "");
    /* Values: NULL with a length, too large. */
    assert_int_equal(shardz_store_put(f->st, "k", 1, NULL, 2, NULL), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_put(f->st, "k", 1, bigv, SHARDZ_STORE_MAX_VALUE + 1, NULL),
                     SHARDZ_ETOOBIG);
    /* Transactions: a key put twice, put and deleted, put under a deleted prefix. */
    o[0] = op_put("k", "1");
    o[1] = op_put("k", "2");
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 2, NULL, NULL), SHARDZ_EINVAL);
    o[1] = op_del("k");
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 2, NULL, NULL), SHARDZ_EINVAL);
    o[0] = op_del("k");
    o[1] = op_put("k", "2");
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 2, NULL, NULL), SHARDZ_EINVAL);
    o[0] = (shardz_op){SHARDZ_OP_DELETE_PREFIX, "p/", 2, NULL, 0, 0};
    o[1] = op_put("p/y", "2");
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 2, NULL, NULL), SHARDZ_EINVAL);
    o[0] = op_put("a", "1");
    o[0].type = (shardz_op_type)42;
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 1, NULL, NULL), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, NULL, 1, NULL, NULL), SHARDZ_EINVAL);
    cmp = cmp_num((shardz_cmp_target)42, "a", 0);
    assert_int_equal(shardz_store_txn(f->st, &cmp, 1, NULL, 0, NULL, NULL), SHARDZ_EINVAL);
    cmp = cmp_num(SHARDZ_CMP_MOD, "", 0);
    assert_int_equal(shardz_store_txn(f->st, &cmp, 1, NULL, 0, NULL, NULL), SHARDZ_EINVAL);
    /* Revisions. */
    assert_int_equal(shardz_store_changes(f->st, -1, 0, &c), SHARDZ_EINVAL);
    assert_null(c);
    assert_int_equal(shardz_store_compact(f->st, -1), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_compact(f->st, 2), SHARDZ_EINVAL); /* the future */
    snapshot_take(f->st, &after);
    snapshot_assert_equal(&before, &after);
    snapshot_free(&after);
    snapshot_free(&before);
    /* Overlapping deletes are allowed (the later finds nothing). */
    o[0] = (shardz_op){SHARDZ_OP_DELETE_PREFIX, "p/", 2, NULL, 0, 0};
    o[1] = op_del("p/x");
    {
        size_t deleted = 0;

        assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 2, &deleted, NULL), 0);
        assert_int_equal(deleted, 1);
    }
    free(bigv);
}

static void test_delete_prefix(void **state)
{
    fixture *f = *state;
    shardz_range *r = NULL;
    shardz_changes *c = NULL;
    size_t deleted = 0, i;
    int64_t rev = 0;

    put_s(f->st, "ns/a/x", "1");
    put_s(f->st, "ns/a/y", "2");
    put_s(f->st, "ns/ab", "3");
    put_s(f->st, "ns/a/z", "4");
    assert_int_equal(shardz_store_delete_prefix(f->st, "ns/a/", 5, &deleted, &rev), 0);
    assert_int_equal(deleted, 3);
    assert_int_equal(rev, 5);
    assert_int_equal(shardz_store_range(f->st, "ns/", 3, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, 1);
    assert_string_equal(r->kvs[0].key, "ns/ab");
    shardz_range_free(r);
    /* One revision, one delete event per key in key order. */
    assert_int_equal(shardz_store_changes(f->st, 4, 0, &c), 0);
    assert_int_equal(c->count, 3);
    for (i = 0; i < 3; i++) {
        assert_int_equal(c->events[i].type, SHARDZ_EVENT_DELETE);
        assert_int_equal(c->events[i].kv.mod_revision, 5);
        assert_int_equal(c->events[i].kv.create_revision, 0);
        assert_int_equal(c->events[i].kv.version, 0);
        assert_int_equal(c->events[i].kv.value_len, 0);
    }
    assert_string_equal(c->events[0].kv.key, "ns/a/x");
    assert_string_equal(c->events[2].kv.key, "ns/a/z");
    shardz_changes_free(c);
    /* Nothing under the prefix: no revision. */
    assert_int_equal(shardz_store_delete_prefix(f->st, "ns/a/", 5, &deleted, &rev), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(rev, 5);
}

static void test_changes_since(void **state)
{
    fixture *f = *state;
    shardz_changes *c = NULL;
    shardz_op o[3];

    put_s(f->st, "a", "1"); /* 1 */
    put_s(f->st, "b", "2"); /* 2 */
    put_s(f->st, "a", "3"); /* 3 */
    o[0] = op_put("c", "4");
    o[1] = op_del("b");
    o[2] = op_put("d", "5");
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 3, NULL, NULL), 0); /* 4 */
    assert_int_equal(shardz_store_delete(f->st, "a", 1, NULL, NULL), 0);     /* 5 */

    assert_int_equal(shardz_store_changes(f->st, 0, 0, &c), 0);
    assert_int_equal(c->revision, 5);
    assert_false(c->more);
    assert_int_equal(c->count, 7);
    assert_int_equal(c->events[0].type, SHARDZ_EVENT_PUT);
    assert_string_equal(c->events[0].kv.key, "a");
    assert_string_equal(c->events[0].kv.value, "1");
    assert_int_equal(c->events[0].kv.mod_revision, 1);
    assert_string_equal(c->events[2].kv.value, "3");
    assert_int_equal(c->events[2].kv.create_revision, 1);
    assert_int_equal(c->events[2].kv.version, 2);
    /* Within a revision, the order of the operations. */
    assert_string_equal(c->events[3].kv.key, "c");
    assert_int_equal(c->events[4].type, SHARDZ_EVENT_DELETE);
    assert_string_equal(c->events[4].kv.key, "b");
    assert_int_equal(c->events[4].kv.mod_revision, 4);
    assert_string_equal(c->events[5].kv.key, "d");
    assert_int_equal(c->events[6].type, SHARDZ_EVENT_DELETE);
    assert_int_equal(c->events[6].kv.mod_revision, 5);
    shardz_changes_free(c);

    assert_int_equal(shardz_store_changes(f->st, 3, 0, &c), 0);
    assert_int_equal(c->count, 4);
    assert_int_equal(c->events[0].kv.mod_revision, 4);
    shardz_changes_free(c);
    assert_int_equal(shardz_store_changes(f->st, 5, 0, &c), 0);
    assert_int_equal(c->count, 0);
    shardz_changes_free(c);
    assert_int_equal(shardz_store_changes(f->st, 99, 0, &c), 0);
    assert_int_equal(c->count, 0);
    shardz_changes_free(c);

    /* A limit never splits a revision: limit 4 from 0 ends after revision 4 (6 events). */
    assert_int_equal(shardz_store_changes(f->st, 0, 4, &c), 0);
    assert_int_equal(c->count, 6);
    assert_true(c->more);
    shardz_changes_free(c);
    assert_int_equal(shardz_store_changes(f->st, 0, 2, &c), 0);
    assert_int_equal(c->count, 2);
    assert_true(c->more);
    assert_int_equal(c->events[1].kv.mod_revision, 2);
    shardz_changes_free(c);
    assert_int_equal(shardz_store_changes(f->st, 4, 1, &c), 0);
    assert_int_equal(c->count, 1);
    assert_false(c->more);
    shardz_changes_free(c);
    /* The limit reached exactly at a revision's end: more, when a revision follows... */
    assert_int_equal(shardz_store_changes(f->st, 0, 6, &c), 0);
    assert_int_equal(c->count, 6);
    assert_true(c->more);
    assert_int_equal(c->events[5].kv.mod_revision, 4);
    shardz_changes_free(c);
    /* ...and not at the current revision; reading on from the last event gives the rest. */
    assert_int_equal(shardz_store_changes(f->st, 0, 7, &c), 0);
    assert_int_equal(c->count, 7);
    assert_false(c->more);
    shardz_changes_free(c);
    assert_int_equal(shardz_store_changes(f->st, 4, 6, &c), 0);
    assert_int_equal(c->count, 1);
    assert_false(c->more);
    assert_int_equal(c->events[0].kv.mod_revision, 5);
    shardz_changes_free(c);
}

/* What a watch hands over, gathered: every event (copied), and each delivery's checks. */
typedef struct {
    shardz_store *st;
    size_t limit;
    int64_t stop_at; /* fn stops the watch (returning 77) once the revision read reaches it */
    int64_t revision;
    size_t count, calls, polls;
    int64_t revs[64];
    char keys[64][8];
    shardz_event_type types[64];
} watch_seen;

static int watch_fn(void *arg, shardz_changes *c)
{
    watch_seen *w = arg;
    w->calls++;
    assert_false(c->more);
    assert_true(c->revision > w->revision); /* each delivery moves on */
    if (c->count > 0) {
        /* whole revisions, in order, ending with the revision in which it reaches limit */
        assert_true(c->events[0].kv.mod_revision > w->revision);
        assert_true(c->revision >= c->events[c->count - 1].kv.mod_revision);
        size_t before_last = c->count;
        while (before_last > 0 && c->events[before_last - 1].kv.mod_revision ==
                                      c->events[c->count - 1].kv.mod_revision) {
            before_last--;
        }
        assert_true(w->limit == 0 || before_last < w->limit);
    }
    for (size_t i = 0; i < c->count; i++) {
        assert_true(w->count < 64);
        w->revs[w->count] = c->events[i].kv.mod_revision;
        w->types[w->count] = c->events[i].type;
        snprintf(w->keys[w->count], sizeof w->keys[0], "%.*s", (int)c->events[i].kv.key_len,
                 c->events[i].kv.key);
        w->count++;
    }
    w->revision = c->revision;
    int rc = c->revision >= w->stop_at ? 77 : 0;
    shardz_changes_free(c); /* the callback's */
    return rc;
}

static int watch_poll(void *arg)
{
    watch_seen *w = arg;
    w->polls++;
    return 0;
}

static int watch_poll_stop(void *arg)
{
    (void)arg;
    return 99;
}

/* shardz_store_watch hands over the kept history in whole revisions, as changes reads it, and
 * stops on what fn or poll return. */
static void test_watch(void **state)
{
    fixture *f = *state;
    shardz_changes *all = NULL;
    shardz_op o[3];

    put_s(f->st, "a", "1"); /* 1 */
    o[0] = op_put("b", "2");
    o[1] = op_put("c", "3");
    o[2] = op_put("e", "4");
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 3, NULL, NULL), 0); /* 2 */
    assert_int_equal(shardz_store_delete(f->st, "a", 1, NULL, NULL), 0);     /* 3 */
    put_s(f->st, "d", "5");                                                  /* 4 */
    assert_int_equal(shardz_store_changes(f->st, 0, 0, &all), 0);

    watch_seen w = {.st = f->st, .limit = 2, .stop_at = 4};
    int wrc = shardz_store_watch(f->st, 0, 2, watch_fn, watch_poll, &w);
    if (wrc != 77) {
        print_error("watch: %d %s\n", wrc, shardz_store_errmsg(f->st));
    }
    assert_int_equal(wrc, 77);
    assert_int_equal(w.revision, 4);
    assert_int_equal(w.count, all->count);
    assert_int_equal(w.calls, 2); /* revisions 1-2 (reaching the limit), then 3-4 */
    for (size_t i = 0; i < all->count; i++) {
        assert_int_equal(w.revs[i], all->events[i].kv.mod_revision);
        assert_int_equal(w.types[i], all->events[i].type);
        assert_string_equal(w.keys[i], all->events[i].kv.key);
    }
    shardz_changes_free(all);

    /* from a later revision, only what follows it */
    watch_seen w2 = {.st = f->st, .limit = 0, .stop_at = 4, .revision = 2};
    assert_int_equal(shardz_store_watch(f->st, 2, 0, watch_fn, watch_poll, &w2), 77);
    assert_int_equal(w2.count, 2);
    assert_int_equal(w2.revs[0], 3);
    assert_int_equal(w2.types[0], SHARDZ_EVENT_DELETE);
    assert_string_equal(w2.keys[1], "d");

    /* poll stops a watch that has nothing to hand over; bad arguments are refused */
    watch_seen w3 = {.st = f->st, .limit = 0, .stop_at = 100, .revision = 4};
    assert_int_equal(shardz_store_watch(f->st, 4, 0, watch_fn, watch_poll_stop, &w3), 99);
    assert_int_equal(w3.calls, 0);
    assert_int_equal(shardz_store_watch(f->st, -1, 0, watch_fn, watch_poll, &w3), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_watch(f->st, 0, 0, NULL, watch_poll, &w3), SHARDZ_EINVAL);

    /* a compacted start is SHARDZ_STORE_ECOMPACTED */
    assert_int_equal(shardz_store_compact(f->st, 3), 0);
    watch_seen w4 = {.st = f->st, .limit = 0, .stop_at = 100};
    assert_int_equal(shardz_store_watch(f->st, 1, 0, watch_fn, watch_poll, &w4),
                     SHARDZ_STORE_ECOMPACTED);
    assert_int_equal(w4.count, 0);
}

static void test_changes_compacted(void **state)
{
    fixture *f = *state;
    shardz_changes *c = NULL;
    shardz_store_status s;
    int i;

    for (i = 0; i < 10; i++) {
        put_s(f->st, "k", "v");
    }
    assert_int_equal(shardz_store_compact(f->st, 6), 0);
    assert_int_equal(shardz_store_status_get(f->st, &s), 0);
    assert_int_equal(s.compact_revision, 6);
    assert_int_equal(shardz_store_changes(f->st, 5, 0, &c), SHARDZ_STORE_ECOMPACTED);
    assert_null(c);
    assert_string_not_equal(shardz_store_errmsg(f->st), "");
    assert_int_equal(shardz_store_changes(f->st, 0, 0, &c), SHARDZ_STORE_ECOMPACTED);
    assert_int_equal(shardz_store_changes(f->st, 6, 0, &c), 0);
    assert_int_equal(c->count, 4);
    assert_int_equal(c->events[0].kv.mod_revision, 7);
    shardz_changes_free(c);
    /* Compacting to an older revision does nothing; to the current one empties the history. */
    assert_int_equal(shardz_store_compact(f->st, 3), 0);
    assert_int_equal(shardz_store_status_get(f->st, &s), 0);
    assert_int_equal(s.compact_revision, 6);
    assert_int_equal(shardz_store_compact(f->st, 10), 0);
    assert_int_equal(shardz_store_changes(f->st, 10, 0, &c), 0);
    assert_int_equal(c->count, 0);
    shardz_changes_free(c);
    assert_int_equal(shardz_store_changes(f->st, 9, 0, &c), SHARDZ_STORE_ECOMPACTED);
    /* The keys themselves are untouched. */
    {
        shardz_kv *kv = get_s(f->st, "k");

        assert_int_equal(kv->version, 10);
        shardz_kv_free(kv);
    }
}

/* The history option bounds the change log by itself. */
static void test_history_window(void **state)
{
    fixture *f = *state;
    shardz_store_options opt = {.history = 5};
    shardz_store *st = NULL;
    shardz_changes *c = NULL;
    shardz_store_status s;
    char *dir = tmpdir_make();
    int i;

    (void)f;
    assert_int_equal(be->open(dir, &opt, &st), 0);
    for (i = 0; i < 20; i++) {
        put_s(st, i % 2 ? "a" : "b", "v");
    }
    assert_int_equal(shardz_store_status_get(st, &s), 0);
    assert_int_equal(s.revision, 20);
    assert_int_equal(s.compact_revision, 15);
    assert_int_equal(shardz_store_changes(st, 14, 0, &c), SHARDZ_STORE_ECOMPACTED);
    assert_int_equal(shardz_store_changes(st, 15, 0, &c), 0);
    assert_int_equal(c->count, 5);
    shardz_changes_free(c);
    shardz_store_close(st);
    tmpdir_remove(dir);
    opt.history = -1;
    dir = tmpdir_make();
    assert_int_equal(be->open(dir, &opt, &st), SHARDZ_EINVAL);
    assert_null(st);
    tmpdir_remove(dir);
}

static void test_batched(void **state)
{
    fixture *f = *state;
    enum { N = 1000 };
    shardz_op *ops = calloc(N, sizeof *ops);
    char(*keys)[16] = calloc(N, sizeof *keys);
    shardz_compare guard;
    shardz_range *r = NULL;
    snapshot before, after;
    size_t applied = 99, i;
    int64_t rev = 0;

    assert_non_null(ops);
    assert_non_null(keys);
    put_s(f->st, "leader", "me"); /* rev 1 */
    guard = cmp_num(SHARDZ_CMP_CREATE, "leader", 1);
    for (i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "b/%04zu", i);
        ops[i] = op_put(keys[i], keys[i]);
    }
    /* 1000 puts in transactions of at most 128: 8 commits, all guarded. */
    assert_int_equal(shardz_store_txn_batched(f->st, &guard, 1, ops, N, 0, &applied, &rev), 0);
    assert_int_equal(applied, N);
    assert_int_equal(rev, 1 + (N + 127) / 128);
    assert_int_equal(shardz_store_range(f->st, "b/", 2, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, N);
    assert_int_equal(r->kvs[0].mod_revision, 2);
    assert_int_equal(r->kvs[127].mod_revision, 2);
    assert_int_equal(r->kvs[128].mod_revision, 3);
    assert_int_equal(r->kvs[N - 1].mod_revision, 9);
    shardz_range_free(r);
    /* A smaller per_txn; deletes mixed in. */
    for (i = 0; i < N; i += 2) {
        ops[i] = op_del(keys[i]);
    }
    assert_int_equal(shardz_store_txn_batched(f->st, NULL, 0, ops, N, 100, &applied, &rev), 0);
    assert_int_equal(rev, 9 + 10);
    assert_int_equal(shardz_store_range(f->st, "b/", 2, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, N / 2);
    shardz_range_free(r);

    snapshot_take(f->st, &before);
    /* The guard fails: nothing is written. */
    guard.number = 2;
    assert_int_equal(shardz_store_txn_batched(f->st, &guard, 1, ops, N, 0, &applied, &rev),
                     SHARDZ_ECONFLICT);
    assert_int_equal(applied, 0);
    /* Rejected before anything is written: a key twice, a delete-prefix, per_txn > 128. */
    ops[N - 1] = op_put(keys[3], "dup");
    assert_int_equal(shardz_store_txn_batched(f->st, NULL, 0, ops, N, 0, &applied, NULL),
                     SHARDZ_EINVAL);
    ops[N - 1] = (shardz_op){SHARDZ_OP_DELETE_PREFIX, "b/", 2, NULL, 0, 0};
    assert_int_equal(shardz_store_txn_batched(f->st, NULL, 0, ops, N, 0, &applied, NULL),
                     SHARDZ_EINVAL);
    ops[N - 1] = op_put(keys[N - 1], "x");
    assert_int_equal(shardz_store_txn_batched(f->st, NULL, 0, ops, N, 129, &applied, NULL),
                     SHARDZ_EINVAL);
    snapshot_take(f->st, &after);
    snapshot_assert_equal(&before, &after);
    snapshot_free(&after);
    snapshot_free(&before);
    free(ops);
    free(keys);
}

/* Large values split a batch by bytes, not only by count. */
static void test_batched_bytes(void **state)
{
    fixture *f = *state;
    size_t vlen = 512 * 1024, applied = 0;
    char *v = calloc(1, vlen);
    shardz_op ops[5];
    char keys[5][8];
    int64_t rev = 0;
    int i;

    assert_non_null(v);
    for (i = 0; i < 5; i++) {
        snprintf(keys[i], sizeof keys[i], "v%d", i);
        ops[i] = (shardz_op){SHARDZ_OP_PUT, keys[i], strlen(keys[i]), v, vlen, 0};
    }
    /* 2 x 512 KiB fit under 1.25 MiB, 3 do not: 3 commits. */
    assert_int_equal(shardz_store_txn_batched(f->st, NULL, 0, ops, 5, 0, &applied, &rev), 0);
    assert_int_equal(applied, 5);
    assert_int_equal(rev, 3);
    /* An operation larger than a transaction can hold. */
    ops[0].value_len = SHARDZ_STORE_MAX_VALUE + 1;
    assert_int_equal(shardz_store_txn_batched(f->st, NULL, 0, ops, 5, 0, &applied, &rev),
                     SHARDZ_ETOOBIG);
    assert_int_equal(applied, 0);
    free(v);
}

static int open_faulty(shardz_store **inner_then_wrapper)
{
    shardz_store *w = NULL;
    int rc = shardz_store_open_fault(*inner_then_wrapper, &w);

    if (rc == 0) {
        *inner_then_wrapper = w;
    }
    return rc;
}

/* The wrapper fails the nth write before it reaches the store: nothing changes. */
static void test_fault_wrapper_before(void **state)
{
    fixture *f = *state;
    shardz_store_fault fault = {.nth = 3};
    snapshot before, after;
    int64_t rev = 0;
    shardz_op o[2];

    assert_int_equal(open_faulty(&f->st), 0);
    assert_int_equal(shardz_store_fault_arm(f->st, &fault), 0);
    put_s(f->st, "a", "1");
    put_s(f->st, "b", "1");
    snapshot_take(f->st, &before);
    assert_string_equal(before.status.backend, "fault");
    o[0] = op_put("a", "2");
    o[1] = op_del("b");
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 2, NULL, &rev), SHARDZ_EIO);
    assert_int_equal(rev, 2);
    assert_string_not_equal(shardz_store_errmsg(f->st), "");
    snapshot_take(f->st, &after);
    snapshot_assert_equal(&before, &after);
    snapshot_free(&after);
    snapshot_free(&before);
    assert_int_equal(shardz_store_fault_writes(f->st), 3);
    /* One-shot: the next write goes through. */
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, o, 2, NULL, &rev), 0);
    assert_int_equal(rev, 3);
    /* Sticky with a chosen error: every write from the first on. */
    fault = (shardz_store_fault){.nth = 1, .err = SHARDZ_EBUSY, .sticky = true};
    assert_int_equal(shardz_store_fault_arm(f->st, &fault), 0);
    assert_int_equal(shardz_store_put(f->st, "c", 1, "1", 1, NULL), SHARDZ_EBUSY);
    assert_int_equal(shardz_store_put(f->st, "c", 1, "1", 1, NULL), SHARDZ_EBUSY);
    assert_absent(f->st, "c");
    fault.nth = 0;
    assert_int_equal(shardz_store_fault_arm(f->st, &fault), 0);
    put_s(f->st, "c", "1");
    /* A positive error is refused. */
    fault.err = 5;
    assert_int_equal(shardz_store_fault_arm(f->st, &fault), SHARDZ_EINVAL);
}

/* shardz_store_write_batch: one atomic transaction where the backend has no limits (SQLite,
 * memory), 128-operation pieces where it has (etcd); through the fault wrapper the same. */
static void test_write_batch(void **state)
{
    fixture *f = *state;
    enum { N = 1000 };
    shardz_op *ops = calloc(N, sizeof *ops);
    char(*keys)[16] = calloc(N, sizeof *keys);
    shardz_store_status st;
    shardz_compare guard;
    shardz_range *r = NULL;
    snapshot before, after;
    size_t applied = 99, i;
    int64_t rev = 0;
    bool whole = false, want;

    assert_non_null(ops);
    assert_non_null(keys);
    assert_int_equal(shardz_store_status_get(f->st, &st), 0);
    want = strcmp(st.backend, "etcd") != 0;
    put_s(f->st, "leader", "me"); /* rev 1 */
    guard = cmp_num(SHARDZ_CMP_CREATE, "leader", 1);
    for (i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "w/%04zu", i);
        ops[i] = op_put(keys[i], keys[i]);
    }
    assert_int_equal(shardz_store_write_batch(f->st, &guard, 1, ops, N, &applied, &rev, &whole), 0);
    assert_int_equal(applied, N);
    assert_int_equal(whole, want);
    assert_int_equal(rev, want ? 2 : 1 + (N + 127) / 128);
    assert_int_equal(shardz_store_range(f->st, "w/", 2, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, N);
    assert_int_equal(r->kvs[N - 1].mod_revision, rev);
    assert_int_equal(r->kvs[0].mod_revision, 2);
    shardz_range_free(r);
    /* Rewrites: versions grow, create revisions stay. */
    for (i = 0; i < N; i += 2) {
        ops[i] = op_del(keys[i]);
    }
    assert_int_equal(shardz_store_write_batch(f->st, NULL, 0, ops, N, &applied, &rev, NULL), 0);
    assert_int_equal(shardz_store_range(f->st, "w/", 2, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, N / 2);
    assert_int_equal(r->kvs[0].version, 2);
    assert_int_equal(r->kvs[0].create_revision, 2);
    shardz_range_free(r);

    assert_int_equal(open_faulty(&f->st), 0);
    snapshot_take(f->st, &before);
    /* A guard that fails, a key twice: nothing written. */
    guard.number = 2;
    assert_int_equal(shardz_store_write_batch(f->st, &guard, 1, ops, N, &applied, &rev, NULL),
                     SHARDZ_ECONFLICT);
    assert_int_equal(applied, 0);
    ops[N - 1] = op_put(keys[3], "dup");
    assert_int_equal(shardz_store_write_batch(f->st, NULL, 0, ops, N, &applied, NULL, NULL),
                     SHARDZ_EINVAL);
    ops[N - 1] = op_put(keys[N - 1], "x");
    /* Whole through the fault wrapper too; a failed whole batch leaves everything as it was. */
    shardz_store_fault fault = {.nth = want ? 1 : 2};
    assert_int_equal(shardz_store_fault_arm(f->st, &fault), 0);
    assert_int_equal(shardz_store_write_batch(f->st, NULL, 0, ops, N, &applied, NULL, &whole),
                     SHARDZ_EIO);
    assert_int_equal(whole, want);
    assert_int_equal(applied, want ? 0 : 128);
    if (want) {
        snapshot_take(f->st, &after);
        snapshot_assert_equal(&before, &after);
        snapshot_free(&after);
    }
    snapshot_free(&before);
    free(ops);
    free(keys);
}

/* A batch failing in its third transaction keeps the first two and says so. */
static void test_fault_wrapper_batch(void **state)
{
    fixture *f = *state;
    shardz_store_fault fault = {.nth = 3};
    enum { N = 300 };
    shardz_op ops[N];
    char keys[N][8];
    shardz_range *r = NULL;
    size_t applied = 0, i;
    int64_t rev = 0;

    assert_int_equal(open_faulty(&f->st), 0);
    assert_int_equal(shardz_store_fault_arm(f->st, &fault), 0);
    for (i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "%03zu", i);
        ops[i] = op_put(keys[i], "v");
    }
    assert_int_equal(shardz_store_txn_batched(f->st, NULL, 0, ops, N, 100, &applied, &rev),
                     SHARDZ_EIO);
    assert_int_equal(applied, 200);
    assert_int_equal(rev, 2);
    assert_int_equal(shardz_store_range(f->st, NULL, 0, NULL, 0, 0, &r), 0);
    assert_int_equal(r->count, 200);
    assert_string_equal(r->kvs[199].key, "199");
    shardz_range_free(r);
}

/* A write applied but reported failed (a lost acknowledgement): it is there. */
static void test_fault_wrapper_after(void **state)
{
    fixture *f = *state;
    shardz_store_fault fault = {.nth = 1, .after = true, .err = SHARDZ_ETIMEDOUT};
    shardz_kv *kv;
    int64_t rev = 0;

    assert_int_equal(open_faulty(&f->st), 0);
    assert_int_equal(shardz_store_fault_arm(f->st, &fault), 0);
    assert_int_equal(shardz_store_put(f->st, "a", 1, "1", 1, &rev), SHARDZ_ETIMEDOUT);
    assert_int_equal(rev, 1);
    kv = get_s(f->st, "a");
    assert_int_equal(kv->mod_revision, 1);
    shardz_kv_free(kv);
    /* A compare failing inside the inner store is passed through, not replaced. */
    fault.nth = 1;
    assert_int_equal(shardz_store_fault_arm(f->st, &fault), 0);
    {
        shardz_compare c = cmp_num(SHARDZ_CMP_ABSENT, "a", 0);
        shardz_op o = op_put("a", "2");

        assert_int_equal(shardz_store_txn(f->st, &c, 1, &o, 1, NULL, NULL), SHARDZ_ECONFLICT);
    }
}

/* The backend's own fault points: fail the 1st, 2nd, ... failure point inside one big
 * transaction until it succeeds; every failure must leave the store exactly as it was. */
static void test_fault_inside_rollback(void **state)
{
    fixture *f = *state;
    shardz_op o[6];
    shardz_compare c = cmp_num(SHARDZ_CMP_VERSION, "keep", 1);
    snapshot before, after;
    long n;
    int rc = -1;
    int64_t rev = 0;
    size_t deleted = 0;

    if (!be->fail_inside) {
        /* etcd: a transaction is one request applied by etcd itself; there is no failure point
         * inside it to arm (the fault wrapper tests cover a failed or lost request). */
        print_message("skipped for %s: no internal failure point in a transaction\n", be->name);
        skip();
    }
    put_s(f->st, "keep", "1");
    put_s(f->st, "old", "1");
    put_s(f->st, "pre/1", "1");
    put_s(f->st, "pre/2", "1");
    o[0] = op_put("old", "2");
    o[1] = op_put("fresh", "1");
    o[2] = op_del("keep");
    o[3] = (shardz_op){SHARDZ_OP_DELETE_PREFIX, "pre/", 4, NULL, 0, 0};
    o[4] = op_put("fresh2", "");
    o[5] = op_del("absent");
    snapshot_take(f->st, &before);
    for (n = 1; n < 1000; n++) {
        be->fail_inside(f->st, n);
        rc = shardz_store_txn(f->st, &c, 1, o, 6, &deleted, &rev);
        be->fail_inside(f->st, 0);
        if (rc == 0) {
            break;
        }
        assert_true(rc == SHARDZ_ENOMEM || rc == SHARDZ_EIO);
        assert_int_equal(deleted, 0);
        snapshot_take(f->st, &after);
        snapshot_assert_equal(&before, &after);
        snapshot_free(&after);
    }
    snapshot_free(&before);
    assert_int_equal(rc, 0);
    assert_true(n > 3); /* several distinct failure points were exercised */
    assert_int_equal(rev, 5);
    assert_int_equal(deleted, 3);
    assert_absent(f->st, "keep");
}

static void test_errmsg_and_sync_names(void **state)
{
    fixture *f = *state;
    shardz_store_sync sync = SHARDZ_STORE_SYNC_NONE;

    assert_string_equal(shardz_store_errmsg(f->st), "");
    assert_int_equal(shardz_store_put(f->st, "", 0, "", 0, NULL), SHARDZ_EINVAL);
    assert_string_not_equal(shardz_store_errmsg(f->st), "");
    put_s(f->st, "a", "b");
    assert_string_equal(shardz_store_errmsg(f->st), "");
    assert_string_equal(shardz_store_errmsg(NULL), "");
    assert_int_equal(shardz_store_sync_parse("normal", &sync), 0);
    assert_int_equal(sync, SHARDZ_STORE_SYNC_NORMAL);
    assert_int_equal(shardz_store_sync_parse("full", &sync), 0);
    assert_int_equal(sync, SHARDZ_STORE_SYNC_FULL);
    assert_int_equal(shardz_store_sync_parse("off", &sync), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_sync_parse(NULL, &sync), SHARDZ_EINVAL);
    assert_int_equal(sync, SHARDZ_STORE_SYNC_FULL);
    assert_string_equal(shardz_store_sync_name(SHARDZ_STORE_SYNC_FULL), "full");
    assert_string_equal(shardz_store_sync_name(SHARDZ_STORE_SYNC_NORMAL), "normal");
    assert_string_equal(shardz_store_sync_name(SHARDZ_STORE_SYNC_NONE), "none");
    assert_string_equal(shardz_store_sync_name((shardz_store_sync)9), "unknown");
    shardz_store_close(NULL);
    shardz_kv_free(NULL);
    shardz_range_free(NULL);
    shardz_changes_free(NULL);
}

/* A pseudo-random workload checked against a plain model, with revisions. */
static void test_random_against_model(void **state)
{
    fixture *f = *state;
    enum { NKEYS = 40, STEPS = 600 };
    struct {
        bool live;
        char value[16];
        int64_t create, mod, version;
    } model[NKEYS];
    uint64_t seed = 0x9e3779b97f4a7c15u;
    int64_t rev = 0;
    shardz_range *r = NULL;
    int step, i, n;

    memset(model, 0, sizeof model);
    for (step = 0; step < STEPS; step++) {
        char key[8];
        int k, what;

        seed = seed * 6364136223846793005u + 1442695040888963407u;
        k = (int)((seed >> 33) % NKEYS);
        what = (int)((seed >> 20) % 4);
        snprintf(key, sizeof key, "m%02d", k);
        if (what < 3) {
            char value[16];

            snprintf(value, sizeof value, "v%d", step);
            rev++;
            assert_int_equal(put_s(f->st, key, value), rev);
            if (!model[k].live) {
                model[k].create = rev;
                model[k].version = 0;
            }
            model[k].live = true;
            model[k].mod = rev;
            model[k].version++;
            snprintf(model[k].value, sizeof model[k].value, "%s", value);
        } else {
            size_t deleted = 0;
            int64_t got = 0;

            assert_int_equal(shardz_store_delete(f->st, key, strlen(key), &deleted, &got), 0);
            assert_int_equal(deleted, model[k].live ? 1 : 0);
            if (model[k].live) {
                rev++;
            }
            assert_int_equal(got, rev);
            model[k].live = false;
        }
    }
    assert_int_equal(shardz_store_range(f->st, "m", 1, NULL, 0, 0, &r), 0);
    for (i = 0, n = 0; i < NKEYS; i++) {
        if (!model[i].live) {
            continue;
        }
        assert_string_equal(r->kvs[n].value, model[i].value);
        assert_int_equal(r->kvs[n].create_revision, model[i].create);
        assert_int_equal(r->kvs[n].mod_revision, model[i].mod);
        assert_int_equal(r->kvs[n].version, model[i].version);
        n++;
    }
    assert_int_equal(r->count, (size_t)n);
    shardz_range_free(r);
}

/* The guard: every write of a guarded handle carries it; once it stops holding, writes are
 * SHARDZ_ENOTLEADER and change nothing, while a failing compare of the caller's own stays
 * SHARDZ_ECONFLICT. Another handle's writes are not guarded. */
static void test_guard_fences_writes(void **state)
{
    fixture *f = *state;
    shardz_compare g, c;
    shardz_op o[2];
    snapshot a, b;
    int64_t rev = 0;
    size_t applied = 9;

    put_s(f->st, "leader", "me"); /* rev 1: create_revision 1 */
    g = cmp_num(SHARDZ_CMP_CREATE, "leader", 1);
    assert_int_equal(shardz_store_set_guard(f->st, &g), 0);
    put_s(f->st, "x", "1"); /* guard holds */
    c = cmp_num(SHARDZ_CMP_ABSENT, "x", 0);
    o[0] = op_put("y", "1");
    assert_int_equal(shardz_store_txn(f->st, &c, 1, o, 1, NULL, &rev), SHARDZ_ECONFLICT);
    /* Another holder takes over: the key is deleted and created again (create_revision 4). */
    assert_int_equal(shardz_store_set_guard(f->st, NULL), 0);
    assert_int_equal(shardz_store_delete(f->st, "leader", 6, NULL, NULL), 0);
    put_s(f->st, "leader", "other");
    assert_int_equal(shardz_store_set_guard(f->st, &g), 0);
    snapshot_take(f->st, &a);
    assert_int_equal(shardz_store_put(f->st, "x", 1, "2", 1, &rev), SHARDZ_ENOTLEADER);
    assert_non_null(strstr(shardz_store_errmsg(f->st), "fenced"));
    assert_int_equal(shardz_store_delete_prefix(f->st, "x", 1, NULL, NULL), SHARDZ_ENOTLEADER);
    o[0] = op_put("p", "1");
    o[1] = op_put("q", "1");
    assert_int_equal(shardz_store_txn_batched(f->st, NULL, 0, o, 2, 1, &applied, NULL),
                     SHARDZ_ENOTLEADER);
    assert_int_equal(applied, 0);
    /* the guard fails, and so does the caller's compare: the guard is named */
    c = cmp_num(SHARDZ_CMP_ABSENT, "x", 0);
    assert_int_equal(shardz_store_txn(f->st, &c, 1, o, 1, NULL, NULL), SHARDZ_ENOTLEADER);
    snapshot_take(f->st, &b);
    snapshot_assert_equal(&a, &b);
    snapshot_free(&a);
    snapshot_free(&b);
    /* a guard on an absent key (the holder's key expired) fails the same way */
    assert_int_equal(shardz_store_set_guard(f->st, NULL), 0);
    assert_int_equal(shardz_store_delete(f->st, "leader", 6, NULL, NULL), 0);
    assert_int_equal(shardz_store_set_guard(f->st, &g), 0);
    assert_int_equal(shardz_store_put(f->st, "x", 1, "3", 1, NULL), SHARDZ_ENOTLEADER);
    /* the guard takes a compare slot: 128 compares of the caller's own are too many */
    {
        shardz_compare many[SHARDZ_STORE_MAX_TXN_OPS];

        for (int i = 0; i < SHARDZ_STORE_MAX_TXN_OPS; i++) {
            many[i] = cmp_num(SHARDZ_CMP_EXISTS, "x", 0);
        }
        assert_int_equal(
            shardz_store_txn(f->st, many, SHARDZ_STORE_MAX_TXN_OPS, NULL, 0, NULL, NULL),
            SHARDZ_ETOOBIG);
    }
    /* bad guards */
    c = (shardz_compare){SHARDZ_CMP_VALUE, "leader", 6, 0, "me", 2};
    assert_int_equal(shardz_store_set_guard(f->st, &c), SHARDZ_EINVAL);
    c = cmp_num(SHARDZ_CMP_CREATE, "", 1);
    assert_int_equal(shardz_store_set_guard(f->st, &c), SHARDZ_EINVAL);
    /* cleared, writes go through again */
    assert_int_equal(shardz_store_set_guard(f->st, NULL), 0);
    put_s(f->st, "x", "4");
}

/* Leases: a key put with a lease vanishes when the lease is revoked; renewing a revoked lease
 * is SHARDZ_ENOENT. Backends without leases say SHARDZ_ENOTSUP and change nothing. */
static void test_leases(void **state)
{
    fixture *f = *state;
    shardz_op o = op_put("held", "1");
    int64_t id = 0, granted = 0, ttl = 0;
    shardz_changes *ch = NULL;

    if (!be->leases) {
        snapshot a, b;

        snapshot_take(f->st, &a);
        assert_int_equal(shardz_store_lease_grant(f->st, 2000, &id, &granted), SHARDZ_ENOTSUP);
        assert_int_equal(shardz_store_lease_keepalive(f->st, 1, &ttl), SHARDZ_ENOTSUP);
        assert_int_equal(shardz_store_lease_revoke(f->st, 1), SHARDZ_ENOTSUP);
        o.lease = 1;
        assert_int_equal(shardz_store_txn(f->st, NULL, 0, &o, 1, NULL, NULL), SHARDZ_ENOTSUP);
        snapshot_take(f->st, &b);
        snapshot_assert_equal(&a, &b);
        snapshot_free(&a);
        snapshot_free(&b);
        return;
    }
    assert_int_equal(shardz_store_lease_grant(f->st, 0, &id, &granted), SHARDZ_EINVAL);
    assert_int_equal(shardz_store_lease_grant(f->st, 2000, &id, &granted), 0);
    assert_true(id > 0);
    assert_true(granted >= 2000);
    o.lease = id;
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, &o, 1, NULL, NULL), 0);
    assert_int_equal(shardz_store_lease_keepalive(f->st, id, &ttl), 0);
    assert_true(ttl >= 2000);
    assert_int_equal(shardz_store_lease_revoke(f->st, id), 0);
    assert_absent(f->st, "held");
    /* the deletion is an event like any other */
    assert_int_equal(shardz_store_changes(f->st, 1, 0, &ch), 0);
    assert_int_equal(ch->count, 1);
    assert_int_equal(ch->events[0].type, SHARDZ_EVENT_DELETE);
    shardz_changes_free(ch);
    assert_int_equal(shardz_store_lease_keepalive(f->st, id, &ttl), SHARDZ_ENOENT);
    assert_int_equal(shardz_store_lease_revoke(f->st, id), SHARDZ_ENOENT);
    assert_int_equal(shardz_store_lease_keepalive(f->st, 0, &ttl), SHARDZ_EINVAL);
    /* a put on an unknown lease changes nothing */
    assert_int_equal(shardz_store_txn(f->st, NULL, 0, &o, 1, NULL, NULL), SHARDZ_ENOENT);
    assert_absent(f->st, "held");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int conformance_run(const store_backend *backend)
{
    const struct CMUnitTest tests[] = {
        T(test_empty_store),
        T(test_put_get_revisions),
        T(test_binary_keys_values),
        T(test_range_sorted_limit_after),
        T(test_range_prefix_edges),
        T(test_txn_cas_success),
        T(test_txn_cas_failure_changes_nothing),
        T(test_txn_limit_128),
        T(test_txn_byte_limit),
        T(test_bad_input),
        T(test_delete_prefix),
        T(test_changes_since),
        T(test_changes_compacted),
        T(test_watch),
        T(test_history_window),
        T(test_batched),
        T(test_batched_bytes),
        T(test_write_batch),
        T(test_fault_wrapper_before),
        T(test_fault_wrapper_batch),
        T(test_fault_wrapper_after),
        T(test_fault_inside_rollback),
        T(test_errmsg_and_sync_names),
        T(test_random_against_model),
        T(test_guard_fences_writes),
        T(test_leases),
    };
    char name[64];

    be = backend;
    snprintf(name, sizeof name, "store conformance: %s", backend->name);
    return _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
