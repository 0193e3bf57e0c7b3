/* Shared fixtures of the worker tests: a recorder of hook calls (serve / delete with their
 * fields, in order), an injectable clock, a fake coordinator plus a started worker, and
 * helpers that play the coordinator's pings and assignments against the worker. */
#ifndef SHARDZ_TESTS_LIB_WORKER_ENV_H
#define SHARDZ_TESTS_LIB_WORKER_ENV_H

#include <stdatomic.h>
#include <stdbool.h>

#include <jansson.h>

#include "fake_coord.h"
#include "shardz/worker.h"

/* Hook calls as "serve p1 g4 primary upd0 old0 cause0". */
void rec_reset(void);
int rec_count(void);
int rec_deletes(void);
/* Asserts the recorded calls equal want[0..n) in order, then forgets them. */
void rec_expect(const char *const *want, int n);
/* Makes serve of partition fail with "disk full" (NULL: none fail). */
void rec_fail(const char *partition);
/* Gates serve hooks: while closed, each serve hook counts itself entered, then waits until
 * the gate opens. rec_reset opens it. */
void rec_gate_close(void);
void rec_gate_open(void);
/* Serve hooks that have entered (running or waiting at the gate) since the last reset. */
int rec_serve_entered(void);
/* Waits up to ms for n serve hooks to have entered. */
bool rec_wait_entered(int n, unsigned ms);
int hook_serve(const shardz_worker_replica *r, char *err, size_t errlen, void *user);
int hook_delete(const shardz_worker_replica *r, char *err, size_t errlen, void *user);

/* The injected clock (milliseconds), for cfg.clock_ms. */
extern _Atomic uint64_t test_now;
uint64_t test_clock(void *user);

typedef struct {
    fake_coord *f;
    shardz_worker *w;
    const char *addr; /* the worker's address */
} env;

/* A worker config for fake f: ns "kv", node "w1", listener on 127.0.0.1:0, zone "a",
 * capacity cpu=8 mem=2.5, the recorder's hooks, fast backoff. */
shardz_worker_config base_config(fake_coord *f);
/* Starts a fake with fo and a worker with cfg (NULL: base_config), waits for registration. */
void env_start(env *e, const fake_opts *fo, const shardz_worker_config *cfg);
void env_stop(env *e);

/* POSTs to the worker; returns the status and, when reply is not NULL, the parsed body. */
long post(env *e, const char *path, const char *body, json_t **reply);
/* An assignment of revision rev with the replicas' JSON objects (comma-separated). */
long assign(env *e, long long rev, const char *replicas, json_t **reply);
long ping(env *e, long long rev, json_t **reply);
long long jint(const json_t *o, const char *k);
/* The reply's "serving" as "p1:4 p7:9". */
void serving_str(const json_t *reply, char *buf, size_t n);
/* Polls cond every 5 ms for up to ms. */
bool wait_until(bool (*cond)(void *), void *arg, unsigned ms);
/* Waits up to ms for the worker's lease timer to run once after this call (so with the clock
 * as it is now); returns false if it did not. */
bool wait_lease_check(shardz_worker *w, unsigned ms);
/* Waits up to ms for n jobs to be queued for the worker's hook thread. */
bool wait_queued(shardz_worker *w, size_t n, unsigned ms);

#define P1                                                                                         \
    "{\"partition\":\"p1\",\"slot\":0,\"role\":\"primary\",\"generation\":4,\"state\":"            \
    "\"serving\"}"
#define P7                                                                                         \
    "{\"partition\":\"p7\",\"slot\":1,\"role\":\"secondary\",\"generation\":9,\"state\":"          \
    "\"adding\"}"
#define P8                                                                                         \
    "{\"partition\":\"p8\",\"slot\":0,\"role\":\"primary\",\"generation\":1,\"state\":\"adding\"}"

#endif
