/* The worker tests' shared fixtures (worker_env.h): hook recorder, injected clock, fake
 * coordinator + worker setup, and the coordinator-side helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "worker_env.h"

#define EV_MAX 256

static struct {
    pthread_mutex_t mu;
    char ev[EV_MAX][160];
    int n;
    int deletes;
    char fail[64];
    bool gate_closed;
    int entered;
    pthread_cond_t cv; /* gate opened, or a serve hook entered */
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

_Atomic uint64_t test_now;

uint64_t test_clock(void *user)
{
    (void)user;
    return atomic_load(&test_now);
}

void rec_reset(void)
{
    pthread_mutex_lock(&rec.mu);
    rec.n = 0;
    rec.deletes = 0;
    rec.fail[0] = '\0';
    rec.gate_closed = false;
    rec.entered = 0;
    pthread_cond_broadcast(&rec.cv);
    pthread_mutex_unlock(&rec.mu);
}

int rec_count(void)
{
    int n;

    pthread_mutex_lock(&rec.mu);
    n = rec.n;
    pthread_mutex_unlock(&rec.mu);
    return n;
}

int rec_deletes(void)
{
    int n;

    pthread_mutex_lock(&rec.mu);
    n = rec.deletes;
    pthread_mutex_unlock(&rec.mu);
    return n;
}

void rec_fail(const char *partition)
{
    pthread_mutex_lock(&rec.mu);
    snprintf(rec.fail, sizeof rec.fail, "%s", partition != NULL ? partition : "");
    pthread_mutex_unlock(&rec.mu);
}

void rec_gate_close(void)
{
    pthread_mutex_lock(&rec.mu);
    rec.gate_closed = true;
    pthread_mutex_unlock(&rec.mu);
}

void rec_gate_open(void)
{
    pthread_mutex_lock(&rec.mu);
    rec.gate_closed = false;
    pthread_cond_broadcast(&rec.cv);
    pthread_mutex_unlock(&rec.mu);
}

int rec_serve_entered(void)
{
    int n;

    pthread_mutex_lock(&rec.mu);
    n = rec.entered;
    pthread_mutex_unlock(&rec.mu);
    return n;
}

static bool entered_at_least(void *arg)
{
    return rec_serve_entered() >= *(int *)arg;
}

bool rec_wait_entered(int n, unsigned ms)
{
    return wait_until(entered_at_least, &n, ms);
}

static void rec_add(const char *what, const shardz_worker_replica *r)
{
    pthread_mutex_lock(&rec.mu);
    if (rec.n < EV_MAX) {
        snprintf(rec.ev[rec.n++], sizeof rec.ev[0], "%s %s g%lld %s upd%d old%lld cause%d", what,
                 r->partition, (long long)r->generation, r->role, r->update,
                 (long long)r->old_generation, (int)r->cause);
    }
    pthread_mutex_unlock(&rec.mu);
}

int hook_serve(const shardz_worker_replica *r, char *err, size_t errlen, void *user)
{
    bool fail;

    (void)user;
    assert_string_equal(r->ns, "kv");
    assert_string_equal(r->node, "w1");
    pthread_mutex_lock(&rec.mu);
    rec.entered++;
    while (rec.gate_closed) {
        pthread_cond_wait(&rec.cv, &rec.mu);
    }
    fail = rec.fail[0] != '\0' && strcmp(rec.fail, r->partition) == 0;
    pthread_mutex_unlock(&rec.mu);
    rec_add("serve", r);
    if (fail) {
        snprintf(err, errlen, "disk full");
        return -1;
    }
    return 0;
}

int hook_delete(const shardz_worker_replica *r, char *err, size_t errlen, void *user)
{
    (void)user;
    (void)err;
    (void)errlen;
    rec_add("delete", r);
    pthread_mutex_lock(&rec.mu);
    rec.deletes++;
    pthread_mutex_unlock(&rec.mu);
    return 0;
}

void rec_expect(const char *const *want, int n)
{
    /* compared outside the lock: a failed assertion leaves the test (longjmp), and a lock
     * held then would hang the next test's rec_reset instead of reporting the failure */
    static char got[EV_MAX][sizeof rec.ev[0]];
    int have;
    pthread_mutex_lock(&rec.mu);
    have = rec.n;
    memcpy(got, rec.ev, sizeof got);
    rec.n = 0;
    pthread_mutex_unlock(&rec.mu);
    if (have != n) {
        for (int i = 0; i < have; i++) {
            fprintf(stderr, "  event %d: %s\n", i, got[i]);
        }
    }
    assert_int_equal(have, n);
    for (int i = 0; i < n; i++) {
        assert_string_equal(got[i], want[i]);
    }
}

shardz_worker_config base_config(fake_coord *f)
{
    static const shardz_worker_capacity cap[] = {{"cpu", 8}, {"mem", 2.5}};
    shardz_worker_config c;

    memset(&c, 0, sizeof c);
    c.coordinator = f != NULL ? fake_addr(f) : "127.0.0.1:1";
    c.ns = "kv";
    c.node_id = "w1";
    c.listen = "127.0.0.1:0";
    c.zone = "a";
    c.capacity = cap;
    c.ncapacity = 2;
    c.serve = hook_serve;
    c.del = hook_delete;
    c.backoff_max_ms = 100;
    return c;
}

void env_start(env *e, const fake_opts *fo, const shardz_worker_config *cfg)
{
    shardz_worker_config c;

    rec_reset();
    e->f = fake_start(fo);
    c = cfg != NULL ? *cfg : base_config(e->f);
    c.coordinator = fake_addr(e->f);
    assert_int_equal(shardz_worker_create(&c, &e->w), 0);
    assert_int_equal(shardz_worker_start(e->w), 0);
    assert_int_equal(shardz_worker_wait_registered(e->w, 5000), 0);
    e->addr = shardz_worker_address(e->w);
}

void env_stop(env *e)
{
    shardz_worker_destroy(e->w);
    fake_stop(e->f);
}

long post(env *e, const char *path, const char *body, json_t **reply)
{
    char *text = NULL;
    long st = tc_request(e->addr, "POST", path, NULL, body, strlen(body), &text);

    if (reply != NULL) {
        *reply = json_loads(text, 0, NULL);
        if (*reply == NULL) {
            fprintf(stderr, "not JSON: %s\n", text);
        }
    }
    free(text);
    return st;
}

long assign(env *e, long long rev, const char *replicas, json_t **reply)
{
    char body[4096];

    snprintf(body, sizeof body,
             "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":%lld,\"lease_ms\":1000,"
             "\"released\":false,\"replicas\":[%s]}",
             rev, replicas);
    return post(e, "/shardz/v1/assign", body, reply);
}

long ping(env *e, long long rev, json_t **reply)
{
    char body[256];

    snprintf(body, sizeof body,
             "{\"namespace\":\"kv\",\"node\":\"w1\",\"revision\":%lld,\"lease_ms\":1000}", rev);
    return post(e, "/shardz/v1/ping", body, reply);
}

long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

void serving_str(const json_t *reply, char *buf, size_t n)
{
    const json_t *s = json_object_get(reply, "serving");
    size_t at = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < json_array_size(s) && at < n; i++) {
        const json_t *x = json_array_get(s, i);
        at += (size_t)snprintf(buf + at, n - at, "%s%s:%lld", i > 0 ? " " : "",
                               json_string_value(json_object_get(x, "partition")),
                               jint(x, "generation"));
    }
}

bool wait_until(bool (*cond)(void *), void *arg, unsigned ms)
{
    uint64_t end = tc_now_ms() + ms;

    while (tc_now_ms() < end) {
        if (cond(arg)) {
            return true;
        }
        tc_sleep_ms(5);
    }
    return cond(arg);
}

typedef struct {
    shardz_worker *w;
    uint64_t checks; /* wait for more than this */
    size_t queued;   /* or for at least this many queued */
} status_wait;

static bool lease_checked(void *arg)
{
    status_wait *sw = arg;
    shardz_worker_status st;

    shardz_worker_status_get(sw->w, &st);
    return st.lease_checks > sw->checks;
}

bool wait_lease_check(shardz_worker *w, unsigned ms)
{
    status_wait sw = {.w = w};
    shardz_worker_status st;

    /* A run counted after this read took mu after it, and read the clock under mu. */
    shardz_worker_status_get(w, &st);
    sw.checks = st.lease_checks;
    return wait_until(lease_checked, &sw, ms);
}

static bool queued_enough(void *arg)
{
    status_wait *sw = arg;
    shardz_worker_status st;

    shardz_worker_status_get(sw->w, &st);
    return st.queued >= sw->queued;
}

bool wait_queued(shardz_worker *w, size_t n, unsigned ms)
{
    status_wait sw = {.w = w, .queued = n};

    return wait_until(queued_enough, &sw, ms);
}
