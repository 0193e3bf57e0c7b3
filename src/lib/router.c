/* The router (include/shardz/router.h). DESIGN: one background thread per router fetches the
 * namespace and its /state, then long-polls /watch and installs each newer state as a new
 * immutable snapshot with one atomic pointer store (RCU-style). Readers never lock on the hot
 * path: each thread caches a counted reference to the snapshot it last used, per router, and
 * only when the router's pointer moved does it swap references under a short mutex. A
 * snapshot lives until its last reference (router, thread caches, application) is released. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/lib_int.h"
#include "shardz/error.h"
#include "shardz/hash.h"

struct shardz_router {
    char *coordinator, *ns, *secret;
    uint32_t watch_timeout_ms, start_timeout_ms, backoff_max_ms;
    size_t max_state_bytes;
    void (*on_change)(void *, int64_t);
    void *user;
    szl_log_fn log;
    void *log_user;

    _Atomic(shardz_snapshot *) cur; /* the installed snapshot (the router holds one ref) */
    pthread_mutex_t mu;             /* guards the swap, nsinfo, phase */
    pthread_cond_t cv;              /* broadcast on every install */
    szl_ns_info nsinfo;
    int phase; /* 0 created, 1 running, 2 stopped */
    pthread_t thr;
    bool thr_started;
    atomic_bool stop;
    szl_http http;
};

/* ---- per-thread snapshot cache ---------------------------------------------------------- */

#define RT_CACHE 4

typedef struct {
    const shardz_router *r; /* compared, never dereferenced: may be destroyed */
    shardz_snapshot *s;     /* a reference this thread holds */
} rt_ent;

static _Thread_local rt_ent rt_cache[RT_CACHE];
static _Thread_local bool rt_keyed;
static pthread_key_t rt_key;
static pthread_once_t rt_key_once = PTHREAD_ONCE_INIT;
static bool rt_key_ok;

static void rt_thread_exit(void *arg)
{
    (void)arg;
    shardz_router_thread_release();
}

static void rt_key_init(void)
{
    rt_key_ok = pthread_key_create(&rt_key, rt_thread_exit) == 0;
}

void shardz_router_thread_release(void)
{
    for (size_t i = 0; i < RT_CACHE; i++) {
        shardz_snapshot_release(rt_cache[i].s);
        rt_cache[i].s = NULL;
        rt_cache[i].r = NULL;
    }
}

/* Takes a reference to the router's current snapshot (NULL when none). */
static shardz_snapshot *rt_take(shardz_router *r)
{
    shardz_snapshot *s;

    pthread_mutex_lock(&r->mu);
    s = atomic_load_explicit(&r->cur, memory_order_relaxed);
    if (s != NULL) {
        shardz_snapshot_ref(s);
    }
    pthread_mutex_unlock(&r->mu);
    return s;
}

/* The slow path: r's entry is not first or holds an older snapshot. Moves r's entry (or the
 * evicted last one) to the front, holding a reference to the current snapshot. */
static shardz_snapshot *rt_refresh(shardz_router *r)
{
    rt_ent e = {NULL, NULL};
    size_t i;

    if (!rt_keyed) {
        pthread_once(&rt_key_once, rt_key_init);
        if (rt_key_ok) {
            pthread_setspecific(rt_key, (void *)1); /* so the destructor runs at thread exit */
        }
        rt_keyed = true;
    }
    for (i = 0; i < RT_CACHE - 1 && rt_cache[i].r != r; i++) {
    }
    e = rt_cache[i]; /* r's entry, or the least recently used one */
    memmove(&rt_cache[1], &rt_cache[0], i * sizeof rt_cache[0]);
    if (e.r != r || e.s != atomic_load_explicit(&r->cur, memory_order_acquire)) {
        shardz_snapshot_release(e.s);
        e.r = r;
        e.s = rt_take(r);
    }
    rt_cache[0] = e;
    return e.s;
}

/* The calling thread's snapshot of r: lock-free when r was the last router looked up on this
 * thread and its snapshot has not changed since. */
static inline shardz_snapshot *rt_current(shardz_router *r)
{
    shardz_snapshot *cur = atomic_load_explicit(&r->cur, memory_order_acquire);

    if (rt_cache[0].r == r && rt_cache[0].s == cur && cur != NULL) {
        return cur;
    }
    return rt_refresh(r);
}

int shardz_router_lookup_partition(shardz_router *r, const char *partition,
                                   const shardz_route **out)
{
    shardz_snapshot *s;

    if (out == NULL) {
        return SHARDZ_EINVAL;
    }
    *out = NULL;
    if (r == NULL || partition == NULL) {
        return SHARDZ_EINVAL;
    }
    s = rt_current(r);
    return s != NULL ? shardz_snapshot_lookup_partition(s, partition, out) : SHARDZ_ENOENT;
}

int shardz_router_lookup_key(shardz_router *r, const void *key, size_t len, uint32_t *slot,
                             const shardz_route **out)
{
    shardz_snapshot *s;
    uint32_t sl;

    if (out == NULL) {
        return SHARDZ_EINVAL;
    }
    *out = NULL;
    if (r == NULL || (key == NULL && len > 0)) {
        return SHARDZ_EINVAL;
    }
    s = rt_current(r);
    if (s != NULL && s->range) {
        return szl_range_route(s, key, len, slot, out);
    }
    if (s == NULL || !s->hash || s->nslots == 0) {
        return s != NULL && !s->hash ? SHARDZ_ENOTSUP : SHARDZ_ENOENT;
    }
    sl = shardz_key_slot(key, len, s->nslots);
    if (slot != NULL) {
        *slot = sl;
    }
    return szl_slot_route(s, sl, out);
}

shardz_snapshot *shardz_router_snapshot(shardz_router *r)
{
    return r != NULL ? rt_take(r) : NULL;
}

int64_t shardz_router_revision(shardz_router *r)
{
    shardz_snapshot *s;
    int64_t rev = 0;

    if (r == NULL) {
        return 0;
    }
    /* Not through the thread cache: that would invalidate this thread's lookup results. */
    pthread_mutex_lock(&r->mu);
    s = atomic_load_explicit(&r->cur, memory_order_relaxed);
    if (s != NULL) {
        rev = shardz_snapshot_revision(s);
    }
    pthread_mutex_unlock(&r->mu);
    return rev;
}

/* ---- installing snapshots --------------------------------------------------------------- */

/* Swaps s in when it is newer (takes s's reference either way). 0 or SHARDZ_ESTALE. */
static int rt_install(shardz_router *r, shardz_snapshot *s)
{
    shardz_snapshot *old;

    pthread_mutex_lock(&r->mu);
    old = atomic_load_explicit(&r->cur, memory_order_relaxed);
    if (old != NULL && shardz_snapshot_revision(s) <= shardz_snapshot_revision(old)) {
        pthread_mutex_unlock(&r->mu);
        shardz_snapshot_release(s);
        return SHARDZ_ESTALE;
    }
    atomic_store_explicit(&r->cur, s, memory_order_release);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    shardz_snapshot_release(old);
    return 0;
}

/* Builds and installs a snapshot from a parsed state. */
static int rt_load(shardz_router *r, const json_t *root)
{
    szl_ns_info ns;
    shardz_snapshot *s;
    char err[256];
    int rc;

    pthread_mutex_lock(&r->mu);
    ns = r->nsinfo;
    pthread_mutex_unlock(&r->mu);
    rc = szl_snapshot_build(root, &ns, &s, err, sizeof err);
    if (rc != 0) {
        szl_log(r->log, r->log_user, SHARDZ_LOG_WARN, "%s: state rejected: %s", r->ns, err);
        return rc;
    }
    return rt_install(r, s);
}

int shardz_router_load_state(shardz_router *r, const char *json, size_t len)
{
    json_t *root;
    int rc;

    if (r == NULL || json == NULL) {
        return SHARDZ_EINVAL;
    }
    root = json_loadb(json, len, 0, NULL);
    if (root == NULL) {
        return SHARDZ_EINVAL;
    }
    rc = rt_load(r, root);
    json_decref(root);
    return rc;
}

int shardz_router_wait(shardz_router *r, int64_t revision, int timeout_ms)
{
    struct timespec dl = szl_deadline(timeout_ms);
    int rc = 0;

    if (r == NULL) {
        return SHARDZ_EINVAL;
    }
    pthread_mutex_lock(&r->mu);
    for (;;) {
        shardz_snapshot *s = atomic_load_explicit(&r->cur, memory_order_relaxed);
        if (s != NULL && shardz_snapshot_revision(s) >= revision) {
            break;
        }
        if (timeout_ms < 0) {
            pthread_cond_wait(&r->cv, &r->mu);
        } else if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) != 0) {
            s = atomic_load_explicit(&r->cur, memory_order_relaxed);
            rc = s != NULL && shardz_snapshot_revision(s) >= revision ? 0 : SHARDZ_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* ---- the router thread ------------------------------------------------------------------ */

/* GET path; on 200 *out is the parsed JSON object. Logs failures. */
static int rt_get(shardz_router *r, const char *path, long timeout_ms, json_t **out)
{
    szl_http_resp resp;
    json_error_t jerr;
    int rc;

    *out = NULL;
    rc = szl_http_request(&r->http, "GET", path, NULL, 0, timeout_ms, r->max_state_bytes, &resp);
    if (rc != 0) {
        if (rc != SHARDZ_EBUSY) {
            szl_log(r->log, r->log_user, SHARDZ_LOG_WARN, "GET %s: %s", path, shardz_strerror(rc));
        }
        return rc;
    }
    if (resp.status != 200) {
        rc = szl_error_code(resp.body, resp.len);
        szl_log(r->log, r->log_user, SHARDZ_LOG_WARN, "GET %s: HTTP %ld %.200s", path, resp.status,
                resp.body);
        free(resp.body);
        return rc != 0 ? rc : SHARDZ_EIO;
    }
    *out = json_loadb(resp.body, resp.len, 0, &jerr);
    free(resp.body);
    if (!json_is_object(*out)) {
        szl_log(r->log, r->log_user, SHARDZ_LOG_WARN, "GET %s: not a JSON object (%s)", path,
                jerr.text);
        json_decref(*out);
        *out = NULL;
        return SHARDZ_EPROTO;
    }
    return 0;
}

/* Reads the sharder kind and slot count from GET /v1/namespaces/{ns}. */
static int rt_fetch_ns(shardz_router *r)
{
    char path[64 + SZL_NS_MAX];
    json_t *root;
    const json_t *objs[2];
    szl_ns_info ns = {.kind = -1, .slots = 0};
    int rc;

    snprintf(path, sizeof path, "/v1/namespaces/%s", r->ns);
    rc = rt_get(r, path, 10000, &root);
    if (rc != 0) {
        return rc;
    }
    objs[0] = root;
    objs[1] = json_object_get(root, "config");
    for (size_t i = 0; i < 2; i++) {
        const char *sharder = json_string_value(json_object_get(objs[i], "sharder"));
        int64_t v;
        if (sharder != NULL) {
            ns.kind = strcmp(sharder, "hash") == 0 ? 1 : strcmp(sharder, "range") == 0 ? 2 : 0;
        }
        if (szl_get_int(objs[i], "slots", 1, SHARDZ_HASH_SLOTS_MAX, &v)) {
            ns.slots = (uint32_t)v;
        }
    }
    if (ns.kind < 0 && ns.slots != 0) {
        ns.kind = 1; /* no "sharder" but a slot count: hash (else the state decides) */
    }
    pthread_mutex_lock(&r->mu);
    r->nsinfo = ns;
    pthread_mutex_unlock(&r->mu);
    json_decref(root);
    return 0;
}

/* Waits for the backoff or a stop. Returns the next backoff. */
static uint32_t rt_backoff(shardz_router *r, uint32_t backoff)
{
    struct timespec dl = szl_deadline(backoff);

    pthread_mutex_lock(&r->mu);
    while (!atomic_load(&r->stop)) {
        if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) != 0) {
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    backoff *= 2u;
    return backoff < r->backoff_max_ms ? backoff : r->backoff_max_ms;
}

static void rt_changed(shardz_router *r, int rc)
{
    if (rc == 0 && r->on_change != NULL) {
        r->on_change(r->user, shardz_router_revision(r));
    }
}

static void *rt_main(void *arg)
{
    shardz_router *r = arg;
    char path[128 + SZL_NS_MAX];
    bool have_ns = false;
    bool need_state = true;
    uint32_t backoff = 50;

    while (!atomic_load(&r->stop)) {
        json_t *root = NULL;
        int rc;
        if (!have_ns) {
            rc = rt_fetch_ns(r);
            have_ns = rc == 0;
        } else if (need_state) {
            snprintf(path, sizeof path, "/v1/namespaces/%s/state", r->ns);
            rc = rt_get(r, path, 30000, &root);
            if (rc == 0) {
                rc = rt_load(r, root);
                need_state = rc != 0 && rc != SHARDZ_ESTALE;
                rt_changed(r, rc);
                rc = need_state ? rc : 0;
            }
        } else {
            shardz_snapshot *s = shardz_router_snapshot(r);
            int64_t rev = s != NULL ? shardz_snapshot_revision(s) : 0;
            shardz_snapshot_release(s);
            snprintf(path, sizeof path, "/v1/namespaces/%s/watch?revision=%lld&timeout_ms=%u",
                     r->ns, (long long)rev, (unsigned)r->watch_timeout_ms);
            rc = rt_get(r, path, (long)r->watch_timeout_ms + 10000, &root);
            if (rc == 0 && !json_is_true(json_object_get(root, "unchanged"))) {
                rc = rt_load(r, root);
                rt_changed(r, rc);
                rc = rc == SHARDZ_ESTALE ? 0 : rc;
            }
            need_state = rc != 0; /* after any failure read the whole state again */
        }
        json_decref(root);
        if (rc == 0) {
            backoff = 50;
        } else if (rc != SHARDZ_EBUSY) {
            backoff = rt_backoff(r, backoff);
        }
    }
    shardz_router_thread_release(); /* lookups in on_change cached references here */
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

int shardz_router_create(const shardz_router_config *cfg, shardz_router **out)
{
    shardz_router *r;

    if (out == NULL) {
        return SHARDZ_EINVAL;
    }
    *out = NULL;
    if (cfg == NULL || cfg->coordinator == NULL || !szl_hostports_valid(cfg->coordinator) ||
        !szl_valid_ns(cfg->ns) ||
        (cfg->secret != NULL && (cfg->secret[0] == '\0' || strlen(cfg->secret) > 512 ||
                                 strpbrk(cfg->secret, "\r\n") != NULL))) {
        return SHARDZ_EINVAL;
    }
    r = calloc(1, sizeof *r);
    if (r == NULL) {
        return SHARDZ_ENOMEM;
    }
    r->coordinator = strdup(cfg->coordinator);
    r->ns = strdup(cfg->ns);
    r->secret = cfg->secret != NULL ? strdup(cfg->secret) : NULL;
    if (r->coordinator == NULL || r->ns == NULL || (cfg->secret != NULL && r->secret == NULL) ||
        pthread_mutex_init(&r->mu, NULL) != 0) {
        goto nomem;
    }
    if (szl_cond_init(&r->cv) != 0) {
        pthread_mutex_destroy(&r->mu);
        goto nomem;
    }
    r->watch_timeout_ms = cfg->watch_timeout_ms != 0 ? cfg->watch_timeout_ms : 30000;
    if (r->watch_timeout_ms > 300000) {
        r->watch_timeout_ms = 300000; /* the protocol's maximum */
    }
    r->start_timeout_ms = cfg->start_timeout_ms != 0 ? cfg->start_timeout_ms : 5000;
    r->backoff_max_ms = cfg->backoff_max_ms != 0 ? cfg->backoff_max_ms : 2000;
    r->max_state_bytes = cfg->max_state_bytes != 0 ? cfg->max_state_bytes : (256u << 20);
    r->on_change = cfg->on_change;
    r->user = cfg->user;
    r->log = cfg->log;
    r->log_user = cfg->log_user;
    r->nsinfo.kind = -1;
    atomic_init(&r->cur, NULL);
    atomic_init(&r->stop, false);
    *out = r;
    return 0;
nomem:
    free(r->coordinator);
    free(r->ns);
    free(r->secret);
    free(r);
    return SHARDZ_ENOMEM;
}

int shardz_router_start(shardz_router *r)
{
    int rc;

    if (r == NULL) {
        return SHARDZ_EINVAL;
    }
    pthread_mutex_lock(&r->mu);
    if (r->phase != 0) {
        pthread_mutex_unlock(&r->mu);
        return SHARDZ_EBUSY;
    }
    r->phase = 1;
    pthread_mutex_unlock(&r->mu);
    rc = szl_http_init(&r->http, r->coordinator, r->secret, &r->stop);
    if (rc != 0) {
        return rc;
    }
    if (pthread_create(&r->thr, NULL, rt_main, r) != 0) {
        szl_http_free(&r->http);
        return SHARDZ_ENOMEM;
    }
    r->thr_started = true;
    return shardz_router_wait(r, 0, (int)r->start_timeout_ms);
}

void shardz_router_stop(shardz_router *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mu);
    if (r->phase != 1) {
        pthread_mutex_unlock(&r->mu);
        return;
    }
    r->phase = 2;
    atomic_store(&r->stop, true);
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (r->thr_started) {
        szl_http_wakeup(&r->http);
        pthread_join(r->thr, NULL);
        r->thr_started = false;
    }
    szl_http_free(&r->http);
}

void shardz_router_destroy(shardz_router *r)
{
    if (r == NULL) {
        return;
    }
    shardz_router_stop(r);
    shardz_snapshot_release(atomic_load(&r->cur));
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->coordinator);
    free(r->ns);
    free(r->secret);
    free(r);
}
