/* The store conformance suite: the same cmocka tests run against every backend, each test on a
 * fresh store in its own temporary directory. A backend's test file describes the backend and
 * calls conformance_run. Also the temporary-directory and snapshot helpers the tests share. */
#ifndef SHARDZ_TESTS_STORE_CONFORMANCE_H
#define SHARDZ_TESTS_STORE_CONFORMANCE_H

#include <stdbool.h>

#include "shardz/store.h"

/* How the suite opens and pokes one backend. */
typedef struct {
    const char *name;
    /* Opens the store kept in dir (an existing, initially empty directory); opt may be NULL. */
    int (*open)(const char *dir, const shardz_store_options *opt, shardz_store **out);
    shardz_store_sync default_sync; /* what the status shows with default options */
    /* The backend's internal fault hook: the nth failure point of a transaction fails; NULL
     * when a backend has none (etcd): that test is then skipped with its reason. */
    void (*fail_inside)(shardz_store *st, long n);
    bool leases; /* the backend has leases (etcd); the others must answer SHARDZ_ENOTSUP */
} store_backend;

/* Runs every conformance test against be; returns the number of failed tests. */
int conformance_run(const store_backend *be);

/* A new empty directory under $TMPDIR (or /tmp); the caller removes it with tmpdir_remove. */
char *tmpdir_make(void);
/* Removes dir and everything in it, then frees the string; accepts NULL. */
void tmpdir_remove(char *dir);

/* Everything observable about a store: every key, the whole kept history, the status. */
typedef struct {
    shardz_range *kvs;
    shardz_changes *changes;
    shardz_store_status status;
} snapshot;

void snapshot_take(shardz_store *st, snapshot *s);
/* Asserts (cmocka) that a and b are equal in every byte and revision. */
void snapshot_assert_equal(const snapshot *a, const snapshot *b);
void snapshot_free(snapshot *s);

#endif
