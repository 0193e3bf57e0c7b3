/* The lease keeper (keeper.h): renews this coordinator's etcd lease on its own thread through
 * its own store handle, and publishes the lease's freshness to the loop (szd_keeper_read) and,
 * while leading, to the health lane. Before it, the loop renewed the lease itself and had to
 * call back into the role loop from inside every long loop; a loop held longer than the
 * margin stepped down and stopped the pings. Its own thread; the setters: the loop's. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common/clock.h"
#include "daemon/keeper.h"
#include "daemon/log.h"

#define KEEPER_RETRY_MS 200 /* after a failed renewal (etcd unreachable, a timeout) */

struct szd_keeper {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC: a setting changed, or stop */
    shardz_store *st;  /* owned; the keeper's thread only once it runs */
    szd_keeper_publish publish;
    void *ctx;
    int64_t (*clock_ms)(void);
    int log_level;
    bool started;
    /* under mu */
    bool stop;
    int64_t lease_id; /* 0: none kept */
    int64_t ttl_ms;
    int64_t fresh_until_ms; /* the lease is known alive until then (the keeper's clock) */
    int64_t next_ms;        /* the next renewal */
    bool leading;
    int64_t term;
    bool expired; /* etcd said the lease no longer exists */
    uint64_t renewed, failed;
};

int64_t szd_lease_margin_ms(int64_t ttl_ms)
{
    int64_t m = ttl_ms / 5;
    return m < 300 ? 300 : m;
}

static int64_t now_ms(const szd_keeper *k)
{
    if (k->clock_ms) {
        return k->clock_ms();
    }
    return shardz__boot_ms(); /* CLOCK_BOOTTIME: it counts a suspend too */
}

/* Under mu: what the health lane may act on now. */
static void publish_locked(szd_keeper *k)
{
    if (k->publish) {
        k->publish(k->ctx, k->leading && k->lease_id ? k->fresh_until_ms : 0, k->term);
    }
}

/* Under mu: a renewal (or grant) sent at t0 that granted ttl. */
static void renewed_locked(szd_keeper *k, int64_t t0, int64_t ttl)
{
    k->ttl_ms = ttl;
    int64_t fresh = t0 + ttl - szd_lease_margin_ms(ttl);
    if (fresh > k->fresh_until_ms) {
        k->fresh_until_ms = fresh;
    }
    if (t0 + ttl / 3 > k->next_ms) {
        k->next_ms = t0 + ttl / 3;
    }
}

/* Under mu: waits until `ms` on the keeper's clock at most, or a signal. */
static void wait_until(szd_keeper *k, int64_t ms)
{
    int64_t d = ms - now_ms(k);
    if (d <= 0) {
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += d / 1000;
    ts.tv_nsec += (d % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    (void)pthread_cond_timedwait(&k->cv, &k->mu, &ts);
}

static void *keeper_main(void *arg)
{
    szd_keeper *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        if (!k->lease_id || k->expired) {
            pthread_cond_wait(&k->cv, &k->mu);
            continue;
        }
        if (now_ms(k) < k->next_ms) {
            wait_until(k, k->next_ms);
            continue;
        }
        int64_t id = k->lease_id, ttl = 0;
        pthread_mutex_unlock(&k->mu);
        int64_t t0 = now_ms(k);
        int rc = shardz_store_lease_keepalive(k->st, id, &ttl);
        pthread_mutex_lock(&k->mu);
        if (k->lease_id != id) {
            continue; /* the loop changed the lease meanwhile: its settings stand */
        }
        if (rc == 0) {
            k->renewed++;
            renewed_locked(k, t0, ttl);
            publish_locked(k);
            continue;
        }
        k->failed++;
        if (rc == SHARDZ_ENOENT) {
            k->expired = true; /* the loop steps down and grants anew */
            szd_log_at(k->log_level, SZD_WARN, "msg=\"lease expired\" lease=%lld", (long long)id);
            continue;
        }
        k->next_ms = t0 + KEEPER_RETRY_MS;
        szd_log_at(k->log_level, SZD_WARN,
                   "msg=\"lease keepalive failed\" err=%s detail=\"%s\" fresh_for_ms=%lld",
                   shardz_err_name(rc), shardz_store_errmsg(k->st),
                   (long long)(k->fresh_until_ms - now_ms(k)));
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

int szd_keeper_start(shardz_store *store, szd_keeper_publish publish, void *ctx,
                     int64_t (*clock_ms)(void), int log_level, szd_keeper **out)
{
    szd_keeper *k = calloc(1, sizeof *k);
    if (!k) {
        shardz_store_close(store);
        return SHARDZ_ENOMEM;
    }
    k->st = store;
    k->publish = publish;
    k->ctx = ctx;
    k->clock_ms = clock_ms;
    k->log_level = log_level;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&k->mu, NULL);
    if (pthread_create(&k->thread, NULL, keeper_main, k) != 0) {
        szd_keeper_stop(k);
        return SHARDZ_EIO;
    }
    k->started = true;
    *out = k;
    return 0;
}

void szd_keeper_set(szd_keeper *k, int64_t lease_id, int64_t ttl_ms, int64_t renewed_ms,
                    bool leading, int64_t term)
{
    pthread_mutex_lock(&k->mu);
    if (lease_id != k->lease_id) {
        k->lease_id = lease_id;
        k->fresh_until_ms = k->next_ms = 0;
        k->expired = false;
        k->ttl_ms = ttl_ms;
    }
    if (lease_id && renewed_ms > 0) {
        renewed_locked(k, renewed_ms, ttl_ms);
    }
    k->leading = leading && lease_id;
    k->term = term;
    publish_locked(k);
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

int64_t szd_keeper_read(szd_keeper *k, int64_t lease_id, int64_t *ttl_ms, bool *expired)
{
    pthread_mutex_lock(&k->mu);
    bool mine = lease_id && lease_id == k->lease_id;
    int64_t fresh = mine && !k->expired ? k->fresh_until_ms : 0;
    *ttl_ms = k->ttl_ms;
    *expired = mine && k->expired;
    pthread_mutex_unlock(&k->mu);
    return fresh;
}

void szd_keeper_counts(szd_keeper *k, uint64_t *renewed, uint64_t *failed)
{
    pthread_mutex_lock(&k->mu);
    *renewed = k->renewed;
    *failed = k->failed;
    pthread_mutex_unlock(&k->mu);
}

void szd_keeper_stop(szd_keeper *k)
{
    if (!k) {
        return;
    }
    if (k->started) {
        pthread_mutex_lock(&k->mu);
        k->stop = true;
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
        pthread_join(k->thread, NULL);
    }
    shardz_store_close(k->st);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    free(k);
}
