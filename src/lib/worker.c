/* The worker (include/shardz/worker.h). DESIGN: three library threads.
 * - the event thread runs a libevent loop: the optional evhttp listener (pings answered at once,
 *   assignments parsed, validated and queued), the lease / watchdog timer, and the replies of
 *   applied assignments. It never runs a hook, so a slow hook never delays a ping (seed 004's
 *   lanes: health traffic is never queued behind an assignment).
 * - the hook thread applies queued jobs (assignments, lease expiry, local release) one at a
 *   time: the only thread that calls serve / delete, and the only writer of the served table.
 *   It alone decides whether a delta assignment fits (its base is the revision applied when the
 *   job runs, which the jobs ahead of it may have changed), so the check needs no other lock.
 * - the control thread talks to the coordinator (register with backoff, re-register, leave)
 *   with blocking libcurl requests that stop() interrupts.
 * Everything shared sits under w->mu; w->cv (CLOCK_MONOTONIC) is broadcast on every change. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>

#include "common/auth.h"
#include "lib/lib_int.h"
#include "shardz/error.h"

#define W_HTTP_LIMIT (2u * SHARDZ_WORKER_MAX_BODY) /* evhttp's own hard cap; ours is 1 MiB */
#define W_ERRLEN 256
#define W_MSGLEN 320

/* A served replica. Written by the hook thread under mu; read by others under mu. */
typedef struct w_rec {
    struct w_rec *next; /* hash chain */
    uint64_t hash;
    char *partition;
    unsigned slot;
    char role[SZL_NAME_MAX + 1];
    char state[SZL_NAME_MAX + 1];
    int64_t generation;
    char *range_lo, *range_hi;
    bool pending;      /* a new partition whose serve hook is running */
    bool unready;      /* its serve hook said not ready (shardz_worker_not_ready): "ready":
                        * false in serving lists until shardz_worker_ready */
    bool report_ready; /* became ready after that: "ready" in ping replies until an
                        * assignment shows it serving */
    uint8_t load_mask; /* which load[] entries hold a sample for the next ping */
    double load[SHARDZ_WORKER_MAX_DIMS];
    char *split_key; /* a key to split this range at, for the next ping (owned), or NULL */
} w_rec;

/* The served set: a chained hash table keyed by partition id. */
typedef struct {
    w_rec **b;
    size_t nb, n;
} w_table;

enum { JOB_ASSIGN, JOB_LEASE, JOB_RELEASE };

/* A unit of work for the hook thread. An assignment's reply goes back to the event thread
 * (req) or to the shardz_worker_handle caller waiting on done. */
typedef struct w_job {
    struct w_job *next;
    int kind;
    szl_assign a;
    uint64_t grant_end; /* strict: its own lease grant lasts until then (clock_ms); 0: none */
    struct evhttp_request *req;
    bool done;
    int status;
    char *body;
    size_t len;
} w_job;

struct shardz_worker {
    /* Fixed after create (addr and port filled by start before any thread runs). */
    char *coordinator, *ns, *node, *listen, *advertise, *zone, *secret;
    char **cap_names;
    double *cap_values;
    size_t ncap;
    shardz_worker_hook serve, del;
    void *user;
    uint64_t (*clock_ms)(void *);
    void *clock_user;
    shardz_lease_mode lease_mode;
    uint32_t lease_margin_ms, lease_check_ms, request_timeout_ms, backoff_max_ms;
    uint32_t reregister_after_ms;
    szl_log_fn log;
    void *log_user;
    char addr[SZL_HOST_MAX + 16];
    uint16_t port;
    char
        incarnation[33]; /* this process, drawn at create: 32 random hex digits (PROTOCOL.md 4.1) */

    struct event_base *base;
    struct evhttp *http;
    struct event *ev_wake, *ev_tick;
    pthread_t ev_thr, hook_thr, ctl_thr;
    bool ev_started, hook_started, ctl_started;
    szl_http ctl_http;
    atomic_bool ctl_stop;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* ---- under mu ---- */
    int phase; /* 0 created, 1 running, 2 stopped */
    bool hook_stop, ev_stop;
    bool registered, want_register, leaving, leave_done, released;
    unsigned ctl_kick; /* bumped to cut a control-thread backoff short */
    int64_t ping_interval_ms, lease_ms;
    int consistency;          /* -1 unknown, 0 available, 1 strict */
    bool contact;             /* a ping or assignment has arrived */
    uint64_t last_contact;    /* the lease runs from here (clock_ms): the latest grant's
                               * lease_stamp, or its receipt when it carried none */
    uint64_t last_alive;      /* last contact or registration: the watchdog */
    int64_t applied_reported; /* applied_revision of the next reply; also the revision the
                               * served set is as of, which a delta's base must equal (0 after a
                               * lease lapse or a local release: only a full set applies then) */
    int64_t last_revision;    /* highest assignment revision applied: older ones are stale */
    int64_t term_seen;        /* the highest coordinator term seen (PROTOCOL.md 4.2): a message
                               * of an older one is from a deposed leader and is refused */
    bool delta_agreed;        /* the last register reply listed "delta" in its features */
    bool transfer_agreed;     /* ... and "transfer" (state transfer, PROTOCOL.md 4.3) */
    uint64_t registrations, assignments, lease_expiries;
    uint64_t deltas, deltas_refused; /* delta assignments applied; refused 409 ESTALE */
    uint64_t lease_checks;           /* runs of the lease / watchdog timer */
    char last_error[160];
    w_table served;
    char dims[SHARDZ_WORKER_MAX_DIMS][SZL_NAME_MAX + 1];
    size_t ndims;
    w_job *jobs_head, *jobs_tail;
    bool lease_queued;
    bool lease_lapsed;  /* the lease ran out: drop everything before serving again */
    bool lease_revoked; /* a lapse was noticed and no lease-granting message came since:
                         * lease_ok is 0 (also once the drop is done) */
    w_job *replies;     /* answered jobs the event thread must send */
};

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t w_now(shardz_worker *w)
{
    return w->clock_ms != NULL ? w->clock_ms(w->clock_user) : szl_boot_ms();
}

static char *w_strdup0(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static uint64_t w_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;

    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

/* Under mu: whether the lease is enforced, and the effective lease (0: cannot enforce) for a
 * lease of lease_ms. */
static uint64_t w_lease_eff_for(const shardz_worker *w, int64_t lease_ms)
{
    bool on;
    uint64_t lease;
    uint64_t margin;

    switch (w->lease_mode) {
    case SHARDZ_LEASE_ON:
        on = true;
        break;
    case SHARDZ_LEASE_OFF:
        on = false;
        break;
    default:
        on = w->consistency != 0; /* unknown counts as strict: the safe side */
        break;
    }
    if (!on || lease_ms <= 0) {
        return 0;
    }
    lease = (uint64_t)lease_ms;
    margin = w->lease_margin_ms != 0 ? w->lease_margin_ms
                                     : 2u * (uint64_t)w->lease_check_ms + lease / 10u;
    return margin < lease / 2u ? lease - margin : lease / 2u + 1u;
}

/* Under mu: the effective lease of the lease_ms last granted. */
static uint64_t w_lease_eff(const shardz_worker *w)
{
    return w_lease_eff_for(w, w->lease_ms);
}

/* Under mu: the lease has lapsed (and it matters: something is served). */
static bool w_lease_expired(shardz_worker *w, uint64_t now)
{
    uint64_t eff = w_lease_eff(w);

    return eff != 0 && w->contact && w->served.n > 0 && now - w->last_contact >= eff;
}

/* ---- the served table (hook thread writes under mu) ------------------------------------- */

static w_rec *t_find(const w_table *t, const char *partition)
{
    uint64_t h;

    if (t->nb == 0) {
        return NULL;
    }
    h = w_hash(partition);
    for (w_rec *r = t->b[h & (t->nb - 1)]; r != NULL; r = r->next) {
        if (r->hash == h && strcmp(r->partition, partition) == 0) {
            return r;
        }
    }
    return NULL;
}

static int t_insert(w_table *t, w_rec *r)
{
    if (t->n + 1 > t->nb) {
        size_t nb = t->nb != 0 ? t->nb * 2 : 16;
        w_rec **b = calloc(nb, sizeof *b);
        if (b == NULL) {
            return SHARDZ_ENOMEM;
        }
        for (size_t i = 0; i < t->nb; i++) {
            w_rec *x = t->b[i];
            while (x != NULL) {
                w_rec *next = x->next;
                x->next = b[x->hash & (nb - 1)];
                b[x->hash & (nb - 1)] = x;
                x = next;
            }
        }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    r->next = t->b[r->hash & (t->nb - 1)];
    t->b[r->hash & (t->nb - 1)] = r;
    t->n++;
    return 0;
}

static void t_remove(w_table *t, w_rec *r)
{
    w_rec **p = &t->b[r->hash & (t->nb - 1)];

    while (*p != r) {
        p = &(*p)->next;
    }
    *p = r->next;
    t->n--;
}

static void rec_free(w_rec *r)
{
    if (r != NULL) {
        free(r->partition);
        free(r->range_lo);
        free(r->range_hi);
        free(r->split_key);
        free(r);
    }
}

static int rec_cmp(const void *a, const void *b)
{
    return strcmp((*(w_rec *const *)a)->partition, (*(w_rec *const *)b)->partition);
}

/* All records (optionally only those missing from keep), sorted by partition id. Under mu or
 * on the hook thread. *out is malloc'd (NULL when none). */
static int t_list(const w_table *t, const szl_assign *keep, w_rec ***out, size_t *n)
{
    w_rec **v = NULL;
    size_t k = 0;

    *out = NULL;
    *n = 0;
    if (t->n == 0) {
        return 0;
    }
    v = malloc(t->n * sizeof *v);
    if (v == NULL) {
        return SHARDZ_ENOMEM;
    }
    for (size_t i = 0; i < t->nb; i++) {
        for (w_rec *r = t->b[i]; r != NULL; r = r->next) {
            if (keep == NULL || szl_assign_find(keep, r->partition) == NULL) {
                v[k++] = r;
            }
        }
    }
    qsort(v, k, sizeof *v, rec_cmp);
    *out = v;
    *n = k;
    return 0;
}

static void t_free(w_table *t)
{
    for (size_t i = 0; i < t->nb; i++) {
        w_rec *r = t->b[i];
        while (r != NULL) {
            w_rec *next = r->next;
            rec_free(r);
            r = next;
        }
    }
    free(t->b);
    memset(t, 0, sizeof *t);
}

/* ---- replies ---------------------------------------------------------------------------- */

static void w_reply_error(int err, const char *msg, int *status, char **body, size_t *len)
{
    *status = shardz_err_http_status(err);
    *body = szl_error_body(err, msg, len);
}

/* Under mu: the assignment reply {"node", "applied_revision", "serving", "failed"}. serving
 * lists everything served, or with a delta (named not NULL) only the partitions it named
 * (listed or removed) that are served now, and the reply says "delta": true. */
static int w_assign_reply(shardz_worker *w, const szl_assign *named, json_t *failed, char **body,
                          size_t *len)
{
    json_t *root = json_object();
    json_t *serving = json_array();
    w_rec **v = NULL;
    size_t n = 0;
    int rc = SHARDZ_ENOMEM;

    if (root == NULL || serving == NULL) {
        goto out;
    }
    if (named != NULL) {
        n = named->n + named->nremoved;
        v = n > 0 ? calloc(n, sizeof *v) : NULL;
        if (n > 0 && v == NULL) {
            goto out;
        }
        for (size_t i = 0; i < n; i++) { /* a removed one is gone unless its delete is pending */
            v[i] = t_find(&w->served,
                          i < named->n ? named->reps[i].partition : named->removed[i - named->n]);
        }
    } else if (t_list(&w->served, NULL, &v, &n) != 0) {
        goto out;
    }
    for (size_t i = 0; i < n && !w->lease_lapsed; i++) { /* lapsed: all about to go */
        if (v[i] == NULL || v[i]->pending) {
            continue;
        }
        json_t *e = json_pack("{s:s, s:I}", "partition", v[i]->partition, "generation",
                              (json_int_t)v[i]->generation);
        if (e != NULL && v[i]->unready && w->transfer_agreed) {
            json_object_set_new(e, "ready", json_false()); /* its transfer goes on */
        }
        if (json_array_append_new(serving, e) != 0) {
            goto out;
        }
    }
    if (json_object_set_new(root, "node", json_string(w->node)) != 0 ||
        json_object_set_new(root, "applied_revision", json_integer(w->applied_reported)) != 0 ||
        json_object_set_new(root, "stamp", json_integer((json_int_t)w_now(w))) != 0 ||
        (named != NULL && json_object_set_new(root, "delta", json_true()) != 0) ||
        json_object_set(root, "serving", serving) != 0 ||
        json_object_set(root, "failed", failed != NULL ? failed : json_array()) != 0) {
        goto out;
    }
    *body = szl_dump(root, len);
    rc = *body != NULL ? 0 : SHARDZ_ENOMEM;
out:
    free(v);
    json_decref(serving);
    json_decref(root);
    return rc;
}

/* Under mu: the ping reply {"node", "applied_revision", "load", "split_at"}; clears the load
 * samples and split keys. */
static int w_ping_reply(shardz_worker *w, char **body, size_t *len)
{
    json_t *root = json_pack("{s:s, s:I, s:I}", "node", w->node, "applied_revision",
                             (json_int_t)w->applied_reported, "stamp", (json_int_t)w_now(w));
    json_t *load = json_object();
    json_t *split = json_object();
    json_t *ready = json_array();
    int rc = SHARDZ_ENOMEM;

    if (root == NULL || load == NULL || split == NULL || ready == NULL) {
        goto out;
    }
    for (size_t i = 0; i < w->served.nb; i++) {
        for (w_rec *r = w->served.b[i]; r != NULL; r = r->next) {
            json_t *dims;
            if (r->report_ready && !r->unready && !r->pending && w->transfer_agreed &&
                json_array_append_new(ready, json_pack("{s:s, s:I}", "partition", r->partition,
                                                       "generation", (json_int_t)r->generation)) !=
                    0) {
                goto out;
            }
            if (r->split_key != NULL &&
                json_object_set_new(split, r->partition, json_string(r->split_key)) != 0) {
                goto out;
            }
            if (r->load_mask == 0) {
                continue;
            }
            dims = json_object();
            if (dims == NULL || json_object_set_new(load, r->partition, dims) != 0) {
                goto out;
            }
            for (size_t d = 0; d < w->ndims; d++) {
                if ((r->load_mask & (1u << d)) != 0 &&
                    json_object_set_new(dims, w->dims[d], json_real(r->load[d])) != 0) {
                    goto out;
                }
            }
        }
    }
    if (json_object_size(load) > 0 && json_object_set(root, "load", load) != 0) {
        goto out;
    }
    if (json_object_size(split) > 0 && json_object_set(root, "split_at", split) != 0) {
        goto out;
    }
    if (json_array_size(ready) > 0 && json_object_set(root, "ready", ready) != 0) {
        goto out;
    }
    *body = szl_dump(root, len);
    if (*body == NULL) {
        goto out;
    }
    for (size_t i = 0; i < w->served.nb; i++) {
        for (w_rec *r = w->served.b[i]; r != NULL; r = r->next) {
            r->load_mask = 0;
            free(r->split_key);
            r->split_key = NULL;
        }
    }
    rc = 0;
out:
    json_decref(ready);
    json_decref(split);
    json_decref(load);
    json_decref(root);
    return rc;
}

static void w_enqueue(shardz_worker *w, w_job *job)
{
    if (w->jobs_tail != NULL) {
        w->jobs_tail->next = job;
    } else {
        w->jobs_head = job;
    }
    w->jobs_tail = job;
    pthread_cond_broadcast(&w->cv);
}

/* Under mu: notices a lapsed lease (from the timer, or when a message arrives after a pause:
 * socket events run before timers) and queues the drop. From here on nothing is reported
 * applied, and assignments received before are not applied. */
static void w_check_lapse(shardz_worker *w, uint64_t now)
{
    w_job *job;

    if (w->lease_lapsed || w->hook_stop || !w_lease_expired(w, now)) {
        return;
    }
    w->lease_lapsed = true;
    w->lease_revoked = true;
    w->applied_reported = 0;
    if (!w->lease_queued) {
        job = calloc(1, sizeof *job);
        if (job == NULL) {
            return; /* the timer tries again; lease_lapsed already stops serving */
        }
        job->kind = JOB_LEASE;
        w->lease_queued = true;
        w_enqueue(w, job);
    }
}

/* Under mu: whether a message of term (-1: none said) comes from a deposed coordinator: an
 * older term than one seen. Otherwise its term is remembered. */
static bool w_deposed(shardz_worker *w, int64_t term)
{
    if (term >= 0 && term < w->term_seen) {
        return true;
    }
    if (term > w->term_seen) {
        w->term_seen = term;
    }
    return false;
}

/* The 409 refusal of a message from a deposed coordinator (its term is below term_seen). */
static void w_reply_deposed(int64_t term, int64_t seen, int *status, char **out, size_t *outlen)
{
    char msg[W_MSGLEN];
    json_t *root;

    snprintf(msg, sizeof msg,
             "from term %lld, but term %lld was seen: a deposed coordinator (nothing changed)",
             (long long)term, (long long)seen);
    root = json_pack("{s:s, s:s, s:I}", "code", shardz_err_name(SHARDZ_ESTALE), "message", msg,
                     "term", (json_int_t)seen);
    *status = 409;
    *out = root != NULL ? szl_dump(root, outlen) : NULL;
    json_decref(root);
    if (*out == NULL) {
        *status = 503;
        *out = szl_error_body(SHARDZ_ENOMEM, NULL, outlen);
    }
}

/* Under mu: a message arrived from the coordinator, granting a lease of lease_ms (0: none)
 * from lease_stamp (this worker's clock echoed, -1: none, the grant runs from its receipt).
 * Returns until when (clock_ms) this message's own grant lasts, or 0 when it grants nothing:
 * no lease_ms, or a grant that had run out before it arrived (a late message), which renews
 * nothing (docs/PROTOCOL.md section 6). A grant never shortens the lease. */
static uint64_t w_contact(shardz_worker *w, int64_t lease_ms, int64_t lease_stamp, int consistency)
{
    uint64_t now = w_now(w);
    uint64_t from = now;
    uint64_t eff;

    w_check_lapse(w, now); /* before renewing: a late message does not undo a lapse */
    w->last_alive = now;
    if (consistency >= 0) {
        w->consistency = consistency;
    }
    if (lease_ms <= 0) {
        /* only a message that grants the lease renews it: the coordinator pings a node it
         * declared dead without lease_ms, so that contact does not extend a lease it is
         * about to break (docs/PROTOCOL.md section 6) */
        return 0;
    }
    if (lease_stamp >= 0 && (uint64_t)lease_stamp > now) {
        return 0; /* a stamp from the future is not this clock's (another process's): none */
    }
    if (lease_stamp >= 0) {
        from = (uint64_t)lease_stamp;
    }
    eff = w_lease_eff_for(w, lease_ms);
    if (eff != 0 && now - from >= eff) {
        return 0; /* delivered after its grant ran out */
    }
    if (!w->contact || from > w->last_contact) {
        w->last_contact = from;
    }
    w->contact = true;
    w->lease_ms = lease_ms;
    w->lease_revoked = false;
    return eff != 0 ? from + eff : UINT64_MAX;
}

/* Under mu: whether a is older than the last assignment applied, and so stale: a lower
 * revision, unless it resynchronises this worker from exactly that revision, one the
 * coordinator never issued (docs/PROTOCOL.md 4.3, "Resynchronisation"). */
static bool w_older(const shardz_worker *w, const szl_assign *a)
{
    return a->revision < w->last_revision &&
           !(a->resync_from > 0 && a->resync_from == w->last_revision);
}

/* Handles one request, from the listener (req set) or shardz_worker_handle. Either answers
 * at once (returns NULL with *status, *body, *len set) or queues an assignment and returns the
 * job, answered later by the hook thread. */
static w_job *w_dispatch(shardz_worker *w, const char *method, const char *path, const char *auth,
                         const void *body, size_t len, struct evhttp_request *req, int *status,
                         char **out, size_t *outlen)
{
    char msg[W_MSGLEN];
    size_t plen = strcspn(path, "?");
    bool ping = plen == 15 && strncmp(path, "/shardz/v1/ping", plen) == 0;
    bool assign = plen == 17 && strncmp(path, "/shardz/v1/assign", plen) == 0;
    w_job *job = NULL;
    int rc;

    *out = NULL;
    *outlen = 0;
    if (!shardz__bearer_ok(w->secret, auth)) {
        *status = 401;
        *out = szl_error_body(SHARDZ_EPROTO, "bad or missing secret", outlen);
        return NULL;
    }
    if (!ping && !assign) {
        w_reply_error(SHARDZ_ENOENT, "no such endpoint (POST /shardz/v1/ping or assign)", status,
                      out, outlen);
        return NULL;
    }
    if (strcmp(method, "POST") != 0) {
        w_reply_error(SHARDZ_EPROTO, "only POST is accepted here", status, out, outlen);
        return NULL;
    }
    if (len > SHARDZ_WORKER_MAX_BODY) {
        w_reply_error(SHARDZ_ETOOBIG, "body over 1 MiB", status, out, outlen);
        return NULL;
    }
    if (ping) {
        szl_ping p;
        rc = szl_parse_ping(body, len, w->ns, w->node, &p, msg, sizeof msg);
        if (rc != 0) {
            szl_log(w->log, w->log_user, SHARDZ_LOG_WARN, "rejected a ping: %s", msg);
            w_reply_error(rc, msg, status, out, outlen);
            return NULL;
        }
        pthread_mutex_lock(&w->mu);
        if (w->phase != 1) {
            pthread_mutex_unlock(&w->mu);
            w_reply_error(SHARDZ_EBUSY, "worker not running", status, out, outlen);
            return NULL;
        }
        if (w_deposed(w, p.term)) {
            int64_t seen = w->term_seen;
            pthread_mutex_unlock(&w->mu);
            szl_log(w->log, w->log_user, SHARDZ_LOG_WARN,
                    "refused a ping of term %lld: term %lld seen", (long long)p.term,
                    (long long)seen);
            w_reply_deposed(p.term, seen, status, out, outlen);
            return NULL;
        }
        w_contact(w, p.lease_ms, p.lease_stamp, p.consistency);
        rc = w_ping_reply(w, out, outlen);
        pthread_mutex_unlock(&w->mu);
        *status = 200;
        if (rc != 0) {
            w_reply_error(rc, NULL, status, out, outlen);
        }
        return NULL;
    }
    job = calloc(1, sizeof *job);
    if (job == NULL) {
        w_reply_error(SHARDZ_ENOMEM, NULL, status, out, outlen);
        return NULL;
    }
    rc = szl_parse_assign(body, len, w->ns, w->node, &job->a, msg, sizeof msg);
    if (rc != 0) {
        szl_log(w->log, w->log_user, SHARDZ_LOG_WARN, "rejected an assignment: %s", msg);
        w_reply_error(rc, msg, status, out, outlen);
        free(job);
        return NULL;
    }
    job->kind = JOB_ASSIGN;
    job->req = req;
    pthread_mutex_lock(&w->mu);
    if (w->hook_stop || w->phase != 1) {
        pthread_mutex_unlock(&w->mu);
        szl_assign_free(&job->a);
        free(job);
        w_reply_error(SHARDZ_EBUSY, "worker stopping", status, out, outlen);
        return NULL;
    }
    if (w_deposed(w, job->a.term)) {
        int64_t seen = w->term_seen;
        pthread_mutex_unlock(&w->mu);
        szl_log(w->log, w->log_user, SHARDZ_LOG_WARN,
                "refused assignment %lld of term %lld: term %lld seen", (long long)job->a.revision,
                (long long)job->a.term, (long long)seen);
        w_reply_deposed(job->a.term, seen, status, out, outlen);
        szl_assign_free(&job->a);
        free(job);
        return NULL;
    }
    /* may queue a lease drop first; an assignment older than one applied renews nothing,
     * unless it resynchronises this worker from a revision the coordinator never issued (it
     * grants the lease it needs to apply: a strict worker would stay wedged otherwise) */
    job->grant_end = w_contact(w, w_older(w, &job->a) ? 0 : job->a.lease_ms, job->a.lease_stamp,
                               job->a.consistency);
    w_enqueue(w, job);
    pthread_mutex_unlock(&w->mu);
    return job;
}

/* ---- the hook thread -------------------------------------------------------------------- */

static int w_call(shardz_worker *w, shardz_worker_hook hook, const w_rec *r, const szl_rep *rep,
                  int64_t revision, shardz_cause cause, int update, int64_t old_gen, char *err)
{
    shardz_worker_replica info;

    memset(&info, 0, sizeof info);
    info.ns = w->ns;
    info.node = w->node;
    info.partition = rep != NULL ? rep->partition : r->partition;
    info.slot = rep != NULL ? rep->slot : r->slot;
    info.role = rep != NULL ? rep->role : r->role;
    info.state = rep != NULL ? rep->state : r->state;
    info.generation = rep != NULL ? rep->generation : r->generation;
    info.range_lo = rep != NULL ? rep->range_lo : r->range_lo;
    info.range_hi = rep != NULL ? rep->range_hi : r->range_hi;
    info.revision = revision;
    info.update = update;
    info.old_generation = old_gen;
    info.cause = cause;
    if (rep != NULL) {
        info.from_node = rep->from_node;
        info.from_address = rep->from_address;
    }
    err[0] = '\0';
    return hook(&info, err, W_ERRLEN, w->user);
}

static void w_fail(json_t *failed, const char *partition, const char *err, const char *dflt)
{
    if (failed != NULL) {
        json_array_append_new(failed, json_pack("{s:s, s:s}", "partition", partition, "error",
                                                err[0] != '\0' ? err : dflt));
    }
}

/* Calls delete for a served record and removes it (the hook's failure is reported, but the
 * replica counts as gone: the coordinator no longer routes to it). */
static void w_delete(shardz_worker *w, w_rec *r, int64_t revision, shardz_cause cause,
                     json_t *failed)
{
    char err[W_ERRLEN];

    if (w_call(w, w->del, r, NULL, revision, cause, 0, 0, err) != 0) {
        szl_log(w->log, w->log_user, SHARDZ_LOG_WARN, "delete %s failed: %s", r->partition,
                err[0] != '\0' ? err : "(no reason)");
        w_fail(failed, r->partition, err, "delete failed");
    }
    pthread_mutex_lock(&w->mu);
    t_remove(&w->served, r);
    pthread_mutex_unlock(&w->mu);
    rec_free(r);
}

/* Deletes everything served (lease lapsed, or a local release). */
static void w_drop_all(shardz_worker *w, shardz_cause cause)
{
    w_rec **v;
    size_t n;
    int64_t rev;

    pthread_mutex_lock(&w->mu);
    rev = w->last_revision;
    pthread_mutex_unlock(&w->mu);
    if (t_list(&w->served, NULL, &v, &n) != 0) {
        szl_log(w->log, w->log_user, SHARDZ_LOG_ERROR, "out of memory dropping replicas");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        w_delete(w, v[i], rev, cause, NULL);
    }
    free(v);
    pthread_mutex_lock(&w->mu);
    if (cause == SHARDZ_CAUSE_LEASE) {
        /* Report nothing applied, so the coordinator sends the whole assignment again. */
        w->applied_reported = 0;
        w->lease_expiries++;
        w->lease_lapsed = false;
    } else {
        /* The set is gone without an assignment: no delta may build on it. */
        w->applied_reported = 0;
        w->released = true;
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Serves one desired replica (new, or a changed generation or role). */
static void w_serve(shardz_worker *w, const szl_rep *rep, int64_t revision, json_t *failed)
{
    char err[W_ERRLEN];
    w_rec *r = t_find(&w->served, rep->partition);
    char *lo = NULL;
    char *hi = NULL;

    if (r != NULL && r->generation == rep->generation && strcmp(r->role, rep->role) == 0) {
        pthread_mutex_lock(&w->mu); /* nothing to call: keep slot and state current */
        r->slot = rep->slot;
        strcpy(r->state, rep->state);
        if (strcmp(rep->state, "adding") != 0) {
            r->report_ready = false; /* the coordinator took its readiness */
        }
        pthread_mutex_unlock(&w->mu);
        return;
    }
    if ((rep->range_lo != NULL && (lo = strdup(rep->range_lo)) == NULL) ||
        (rep->range_hi != NULL && (hi = strdup(rep->range_hi)) == NULL)) {
        goto nomem;
    }
    if (r != NULL) {
        pthread_mutex_lock(&w->mu); /* a new serve: its own readiness */
        r->unready = false;
        r->report_ready = false;
        pthread_mutex_unlock(&w->mu);
        if (w_call(w, w->serve, r, rep, revision, SHARDZ_CAUSE_ASSIGN, 1, r->generation, err) !=
            0) {
            w_fail(failed, rep->partition, err, "serve failed");
            goto out; /* the old generation stays served */
        }
        pthread_mutex_lock(&w->mu);
    } else {
        r = calloc(1, sizeof *r);
        if (r == NULL || (r->partition = strdup(rep->partition)) == NULL) {
            free(r);
            goto nomem;
        }
        r->hash = w_hash(r->partition);
        r->pending = true;
        strcpy(r->role, rep->role);
        strcpy(r->state, rep->state);
        r->generation = rep->generation;
        pthread_mutex_lock(&w->mu);
        if (t_insert(&w->served, r) != 0) {
            pthread_mutex_unlock(&w->mu);
            rec_free(r);
            goto nomem;
        }
        pthread_mutex_unlock(&w->mu);
        if (w_call(w, w->serve, r, rep, revision, SHARDZ_CAUSE_ASSIGN, 0, 0, err) != 0) {
            w_fail(failed, rep->partition, err, "serve failed");
            pthread_mutex_lock(&w->mu);
            t_remove(&w->served, r);
            pthread_mutex_unlock(&w->mu);
            rec_free(r);
            goto out;
        }
        pthread_mutex_lock(&w->mu);
        r->pending = false;
    }
    r->slot = rep->slot;
    r->generation = rep->generation;
    strcpy(r->role, rep->role);
    strcpy(r->state, rep->state);
    free(r->range_lo);
    free(r->range_hi);
    r->range_lo = lo;
    r->range_hi = hi;
    lo = hi = NULL;
    pthread_mutex_unlock(&w->mu);
    goto out;
nomem:
    w_fail(failed, rep->partition, "out of memory", "");
out:
    free(lo);
    free(hi);
}

/* Under mu: the 409 answer to a delta whose base is not the revision applied. */
static void w_refuse_delta(shardz_worker *w, w_job *job)
{
    char msg[W_MSGLEN];
    json_t *root;

    snprintf(msg, sizeof msg,
             "delta from revision %lld, but the revision applied here is %lld: send a full "
             "assignment",
             (long long)job->a.base_revision, (long long)w->applied_reported);
    root = json_pack("{s:s, s:s, s:I}", "code", shardz_err_name(SHARDZ_ESTALE), "message", msg,
                     "applied_revision", (json_int_t)w->applied_reported);
    job->status = 409;
    job->body = root != NULL ? szl_dump(root, &job->len) : NULL;
    json_decref(root);
    if (job->body == NULL) {
        job->status = 503;
        job->body = szl_error_body(SHARDZ_ENOMEM, NULL, &job->len);
    }
    w->deltas_refused++;
}

/* The hooks of one assignment, deletes first (each in partition id order), then serves. A full
 * one deletes what it does not list; a delta deletes what it removes and leaves unnamed
 * partitions as they are. */
static int w_apply_hooks(shardz_worker *w, const szl_assign *a, json_t *failed)
{
    w_rec **gone = NULL;
    size_t ngone = 0;

    if (a->delta) {
        for (size_t i = 0; i < a->nremoved; i++) {
            w_rec *r = t_find(&w->served, a->removed[i]); /* the hook thread writes the table */
            if (r != NULL) {
                w_delete(w, r, a->revision, SHARDZ_CAUSE_ASSIGN, failed);
            }
        }
    } else {
        if (t_list(&w->served, a, &gone, &ngone) != 0) {
            return SHARDZ_ENOMEM;
        }
        for (size_t i = 0; i < ngone; i++) {
            w_delete(w, gone[i], a->revision, SHARDZ_CAUSE_ASSIGN, failed);
        }
        free(gone);
    }
    for (size_t i = 0; i < a->n; i++) {
        w_serve(w, &a->reps[i], a->revision, failed);
    }
    return 0;
}

/* Applies an assignment: stale ones are only answered; a delta on another base is refused
 * (409) and changes nothing; an assignment that arrived before a lease lapse is not applied. */
static void w_apply(shardz_worker *w, w_job *job)
{
    const szl_assign *a = &job->a;
    json_t *failed = json_array();
    bool stale;
    bool expired;

    pthread_mutex_lock(&w->mu);
    /* stale: older than one applied (unless the coordinator resynchronises a worker that
     * applied a revision it never issued: a forged message would wedge it otherwise), or of a
     * term older than one seen since it was queued */
    stale = w_older(w, a) || (a->term >= 0 && a->term < w->term_seen);
    if (!stale && a->revision < w->last_revision) {
        szl_log(w->log, w->log_user, SHARDZ_LOG_WARN,
                "resynchronised: assignment %lld replaces %lld, a revision the coordinator never "
                "issued",
                (long long)a->revision, (long long)w->last_revision);
    }
    w_check_lapse(w, w_now(w)); /* a lapse resets applied_reported: no delta fits then */
    if (!stale && a->delta && a->base_revision != w->applied_reported) {
        szl_log(w->log, w->log_user, SHARDZ_LOG_INFO,
                "refused delta %lld: its base %lld is not the applied revision %lld",
                (long long)a->revision, (long long)a->base_revision,
                (long long)w->applied_reported);
        w_refuse_delta(w, job);
        pthread_mutex_unlock(&w->mu);
        json_decref(failed);
        return;
    }
    /* Lapsed: this assignment arrived before the lapse was noticed (later ones queue behind
     * the drop, which clears the flag), so the coordinator may have moved on since. A strict
     * assignment is also applied only while its own grant lasts: one delivered late, or that
     * waited past its grant, may be one the coordinator has given up on (section 6). */
    expired =
        w->lease_lapsed || (!stale && a->lease_ms > 0 && w_lease_eff_for(w, a->lease_ms) != 0 &&
                            w_now(w) >= job->grant_end);
    pthread_mutex_unlock(&w->mu);
    if (stale) {
        szl_log(w->log, w->log_user, SHARDZ_LOG_INFO, "ignored assignment %lld: older than %lld",
                (long long)a->revision, (long long)w->last_revision);
    } else if (expired) {
        szl_log(w->log, w->log_user, SHARDZ_LOG_WARN,
                "no lease for assignment %lld (lapsed, or its grant ran out): not applied",
                (long long)a->revision);
    } else if (w_apply_hooks(w, a, failed) != 0) {
        job->status = 503;
        job->body = szl_error_body(SHARDZ_ENOMEM, NULL, &job->len);
        json_decref(failed);
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (!stale && !expired) {
        w->last_revision = a->revision;
        if (!w->lease_lapsed) { /* a lapse noticed while the hooks ran: the drop comes next */
            w->applied_reported = a->revision;
        }
        w->assignments++;
        w->deltas += a->delta ? 1 : 0;
        if (a->released) {
            w->released = true;
        }
        pthread_cond_broadcast(&w->cv);
    }
    job->status = 200;
    /* stale or not applied: answered as a full one (everything served), as before deltas */
    if (w_assign_reply(w, !stale && !expired && a->delta ? a : NULL, failed, &job->body,
                       &job->len) != 0) {
        job->status = 503;
        job->body = szl_error_body(SHARDZ_ENOMEM, NULL, &job->len);
    }
    pthread_mutex_unlock(&w->mu);
    json_decref(failed);
}

/* Under mu: hands an answered job to whoever waits for it. Returns true when the event thread
 * must be woken (after unlocking). */
static bool w_finish(shardz_worker *w, w_job *job)
{
    if (job->kind != JOB_ASSIGN) {
        free(job);
        return false;
    }
    szl_assign_free(&job->a);
    if (job->req != NULL) {
        job->next = w->replies;
        w->replies = job;
        return true;
    }
    job->done = true;
    pthread_cond_broadcast(&w->cv);
    return false;
}

static void *w_hook_main(void *arg)
{
    shardz_worker *w = arg;
    bool wake;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        w_job *job;
        while (w->jobs_head == NULL && !w->hook_stop) {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        if (w->hook_stop) {
            break;
        }
        job = w->jobs_head;
        w->jobs_head = job->next;
        if (w->jobs_head == NULL) {
            w->jobs_tail = NULL;
        }
        job->next = NULL;
        if (job->kind == JOB_LEASE) {
            w->lease_queued = false;
            if (!w->lease_lapsed) {
                free(job);
                continue;
            }
        }
        pthread_mutex_unlock(&w->mu);
        if (job->kind == JOB_ASSIGN) {
            w_apply(w, job);
        } else if (job->kind == JOB_LEASE) {
            szl_log(w->log, w->log_user, SHARDZ_LOG_WARN,
                    "lease lapsed without contact: deleting every replica");
            w_drop_all(w, SHARDZ_CAUSE_LEASE);
        } else {
            w_drop_all(w, SHARDZ_CAUSE_RELEASE);
        }
        pthread_mutex_lock(&w->mu);
        wake = w_finish(w, job);
        if (wake) {
            pthread_mutex_unlock(&w->mu);
            event_active(w->ev_wake, 0, 0);
            pthread_mutex_lock(&w->mu);
        }
    }
    /* Stopping: answer what is still queued without running it. */
    wake = false;
    while (w->jobs_head != NULL) {
        w_job *job = w->jobs_head;
        w->jobs_head = job->next;
        job->next = NULL;
        if (job->kind == JOB_ASSIGN) {
            job->status = 409;
            job->body = szl_error_body(SHARDZ_EBUSY, "worker stopping", &job->len);
        }
        wake |= w_finish(w, job);
    }
    w->jobs_tail = NULL;
    pthread_mutex_unlock(&w->mu);
    if (wake) {
        event_active(w->ev_wake, 0, 0);
    }
    return NULL;
}

/* ---- the event thread ------------------------------------------------------------------- */

static const char *w_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    default:
        return "Error";
    }
}

static void w_send(struct evhttp_request *req, int status, char *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();

    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    if (b == NULL || (body != NULL && evbuffer_add(b, body, len) != 0)) {
        status = 503;
    }
    evhttp_send_reply(req, status, w_reason(status), b);
    if (b != NULL) {
        evbuffer_free(b);
    }
    free(body);
}

static void w_http_cb(struct evhttp_request *req, void *arg)
{
    shardz_worker *w = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    const char *method;
    const unsigned char *body = NULL;
    char *out;
    size_t outlen;
    int status = 500;

    switch (evhttp_request_get_command(req)) {
    case EVHTTP_REQ_POST:
        method = "POST";
        break;
    case EVHTTP_REQ_GET:
        method = "GET";
        break;
    default:
        method = "OTHER";
        break;
    }
    if (len > 0 && len <= SHARDZ_WORKER_MAX_BODY) {
        body = evbuffer_pullup(in, -1);
        if (body == NULL) {
            w_send(req, 503, szl_error_body(SHARDZ_ENOMEM, NULL, &outlen), outlen);
            return;
        }
    }
    if (w_dispatch(w, method, evhttp_request_get_uri(req), auth, body, len, req, &status, &out,
                   &outlen) != NULL) {
        return; /* the hook thread answers */
    }
    w_send(req, status, out, outlen);
}

static void w_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    shardz_worker *w = arg;
    w_job *list;
    bool stop;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->mu);
    list = w->replies;
    w->replies = NULL;
    stop = w->ev_stop;
    pthread_mutex_unlock(&w->mu);
    while (list != NULL) {
        w_job *job = list;
        list = job->next;
        w_send(job->req, job->status, job->body, job->len);
        free(job);
    }
    if (stop) {
        event_base_loopbreak(w->base);
    }
}

/* The lease and watchdog timer. */
static void w_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    shardz_worker *w = arg;
    uint64_t now;
    uint64_t rereg;
    w_job *job = NULL;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->mu);
    /* the clock is read under mu: a status read before this run sees a count that this run
     * then bumps, so a test can wait for one full run after changing the clock */
    now = w_now(w);
    w->lease_checks++;
    w_check_lapse(w, now);
    if (w->lease_lapsed && !w->lease_queued && !w->hook_stop) {
        job = calloc(1, sizeof *job); /* the first try failed for memory */
        if (job != NULL) {
            job->kind = JOB_LEASE;
            w->lease_queued = true;
            w_enqueue(w, job);
        }
    }
    rereg = w->reregister_after_ms;
    if (rereg == 0) {
        rereg = 10u * (uint64_t)(w->ping_interval_ms > 0 ? w->ping_interval_ms : 0);
        rereg = rereg > 3000 ? rereg : 3000;
    }
    if (w->registered && !w->want_register && !w->leaving && !w->released &&
        now - w->last_alive >= rereg) {
        szl_log(w->log, w->log_user, SHARDZ_LOG_WARN, "no ping for %llu ms: registering again",
                (unsigned long long)(now - w->last_alive));
        w->want_register = true;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

static void *w_ev_main(void *arg)
{
    shardz_worker *w = arg;

    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* ---- the control thread ----------------------------------------------------------------- */

/* Records the last failure (status API) and logs it. */
static void w_error(shardz_worker *w, const char *what, int rc, const szl_http_resp *resp)
{
    char buf[sizeof w->last_error];

    if (resp != NULL && resp->body != NULL) {
        snprintf(buf, sizeof buf, "%s: HTTP %ld %.100s", what, resp->status, resp->body);
    } else {
        snprintf(buf, sizeof buf, "%s: %s", what, shardz_strerror(rc));
    }
    pthread_mutex_lock(&w->mu);
    strcpy(w->last_error, buf);
    pthread_mutex_unlock(&w->mu);
    szl_log(w->log, w->log_user, SHARDZ_LOG_WARN, "%s", buf);
}

/* The error a non-2xx response stands for. */
static int w_resp_err(const szl_http_resp *resp)
{
    int code = szl_error_code(resp->body, resp->len);

    if (code != 0) {
        return code;
    }
    return resp->status == 404 ? SHARDZ_ENOENT : SHARDZ_EIO;
}

/* Reads timings and the consistency mode from a reply object (top level or its "config"). */
static void w_learn(shardz_worker *w, const json_t *root)
{
    const json_t *objs[2] = {root, json_object_get(root, "config")};

    for (size_t i = 0; i < 2; i++) {
        int64_t v;
        int c;
        if (!json_is_object(objs[i])) {
            continue;
        }
        if (szl_get_int(objs[i], "ping_interval_ms", 1, 86400000, &v)) {
            w->ping_interval_ms = v;
        }
        if (szl_get_int(objs[i], "lease_ms", 1, 86400000, &v)) {
            w->lease_ms = v;
        }
        c = szl_consistency(objs[i]);
        if (c >= 0) {
            w->consistency = c;
        }
        if (i == 0 && szl_get_int(objs[i], "term", 0, INT64_MAX, &v) && v > w->term_seen) {
            w->term_seen = v; /* the registering coordinator's leadership */
        }
    }
}

/* Whether a register reply's "features" (an array of names; anything else: none) lists name.
 */
static bool w_has_feature(const json_t *reply, const char *name)
{
    const json_t *f = json_object_get(reply, "features");

    for (size_t i = 0; i < json_array_size(f); i++) {
        const char *s = json_string_value(json_array_get(f, i));
        if (s != NULL && strcmp(s, name) == 0) {
            return true;
        }
    }
    return false;
}

/* A new process's incarnation: 16 random bytes in hex (the kernel's generator; should it
 * fail, the time, the process id and this object's address, mixed). */
static void w_draw_incarnation(shardz_worker *w)
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, GRND_NONBLOCK) != (ssize_t)sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
                     ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)w;
        for (size_t i = 0; i < sizeof b; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[i] = (unsigned char)x;
        }
    }
    for (size_t i = 0; i < sizeof b; i++) {
        snprintf(w->incarnation + 2 * i, 3, "%02x", b[i]);
    }
}

static int w_register_once(shardz_worker *w)
{
    char path[128 + SZL_NS_MAX];
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:{}, s:[s, s, s], s:s}", "id", w->node, "address", w->addr,
                  "zone", w->zone != NULL ? w->zone : "", "capacity", "features", "delta", "term",
                  "transfer", "incarnation", w->incarnation);
    json_t *cap = json_object_get(body, "capacity");
    json_t *reply = NULL;
    szl_http_resp resp = {0};
    char *text = NULL;
    size_t len;
    int rc = SHARDZ_ENOMEM;

    if (body == NULL) {
        goto out;
    }
    for (size_t i = 0; i < w->ncap; i++) {
        if (json_object_set_new(cap, w->cap_names[i], json_real(w->cap_values[i])) != 0) {
            goto out;
        }
    }
    /* its clock now: a lease granted on this registration runs from here (PROTOCOL.md 4.1) */
    if (json_object_set_new(body, "stamp", json_integer((json_int_t)w_now(w))) != 0) {
        goto out;
    }
    text = szl_dump(body, &len);
    if (text == NULL) {
        goto out;
    }
    snprintf(path, sizeof path, "/v1/namespaces/%s/nodes", w->ns);
    rc = szl_http_request(&w->ctl_http, "POST", path, text, len, w->request_timeout_ms,
                          SZL_REPLY_MAX, &resp);
    if (rc != 0) {
        w_error(w, "register", rc, NULL);
        goto out;
    }
    if (resp.status != 200 && resp.status != 201) {
        rc = w_resp_err(&resp);
        w_error(w, "register", rc, &resp);
        goto out;
    }
    reply = json_loadb(resp.body, resp.len, 0, NULL);
    pthread_mutex_lock(&w->mu);
    if (json_is_object(reply)) {
        w_learn(w, reply);
    }
    /* each registration starts over: deltas only when this reply agrees to them */
    w->delta_agreed = json_is_object(reply) && w_has_feature(reply, "delta");
    w->transfer_agreed = json_is_object(reply) && w_has_feature(reply, "transfer");
    rc = w->lease_mode == SHARDZ_LEASE_AUTO && w->consistency < 0 ? 1 : 0;
    pthread_mutex_unlock(&w->mu);
    if (rc == 1) {
        /* The register reply did not say the consistency mode: read the namespace. */
        json_decref(reply);
        reply = NULL;
        free(resp.body);
        snprintf(path, sizeof path, "/v1/namespaces/%s", w->ns);
        rc = szl_http_request(&w->ctl_http, "GET", path, NULL, 0, w->request_timeout_ms,
                              SZL_REPLY_MAX, &resp);
        if (rc != 0 || resp.status != 200) {
            rc = rc != 0 ? rc : w_resp_err(&resp);
            w_error(w, "read namespace", rc, rc != 0 && resp.body == NULL ? NULL : &resp);
            goto out;
        }
        reply = json_loadb(resp.body, resp.len, 0, NULL);
        if (!json_is_object(reply)) {
            rc = SHARDZ_EPROTO;
            w_error(w, "read namespace: not a JSON object", rc, NULL);
            goto out;
        }
        pthread_mutex_lock(&w->mu);
        w_learn(w, reply);
        pthread_mutex_unlock(&w->mu);
    }
    pthread_mutex_lock(&w->mu);
    w->registered = true;
    w->want_register = false;
    w->registrations++;
    w->last_alive = w_now(w);
    w->last_error[0] = '\0';
    pthread_cond_broadcast(&w->cv);
    szl_log(w->log, w->log_user, SHARDZ_LOG_INFO,
            "registered %s/%s at %s (ping %lld ms, lease %lld ms, %s, %s assignments)", w->ns,
            w->node, w->addr, (long long)w->ping_interval_ms, (long long)w->lease_ms,
            w->consistency == 0 ? "available" : "strict", w->delta_agreed ? "delta" : "full");
    pthread_mutex_unlock(&w->mu);
    rc = 0;
out:
    json_decref(reply);
    json_decref(body);
    free(text);
    free(resp.body);
    return rc;
}

static int w_leave_once(shardz_worker *w)
{
    char path[128 + SZL_NS_MAX + SZL_ID_MAX];
    szl_http_resp resp = {0};
    int rc;

    snprintf(path, sizeof path, "/v1/namespaces/%s/nodes/%s/leave", w->ns, w->node);
    rc = szl_http_request(&w->ctl_http, "POST", path, "{}", 2, w->request_timeout_ms, SZL_REPLY_MAX,
                          &resp);
    if (rc != 0) {
        w_error(w, "leave", rc, NULL);
    } else if (resp.status < 200 || resp.status > 299) {
        rc = w_resp_err(&resp);
        w_error(w, "leave", rc, &resp);
    } else {
        szl_log(w->log, w->log_user, SHARDZ_LOG_INFO, "leave sent; waiting to be released");
    }
    free(resp.body);
    return rc;
}

/* Under mu: waits for the backoff, a stop, or a kick (a leave). Returns the next backoff. */
static uint32_t w_backoff(shardz_worker *w, uint32_t backoff)
{
    /* +-25% jitter from the clock's low bits: workers restarted together spread out. */
    uint64_t jitter = (szl_boot_ms() * 2654435761u) % (backoff / 2u + 1u);
    struct timespec dl = szl_deadline((int64_t)(backoff - backoff / 4u + jitter));
    unsigned kick = w->ctl_kick;

    while (!atomic_load(&w->ctl_stop) && w->ctl_kick == kick) {
        if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0) {
            break;
        }
    }
    backoff *= 2u;
    return backoff < w->backoff_max_ms ? backoff : w->backoff_max_ms;
}

static void *w_ctl_main(void *arg)
{
    shardz_worker *w = arg;
    uint32_t backoff = 50;
    int rc;

    pthread_mutex_lock(&w->mu);
    while (!atomic_load(&w->ctl_stop)) {
        if (w->leaving && !w->leave_done) {
            pthread_mutex_unlock(&w->mu);
            rc = w_leave_once(w);
            pthread_mutex_lock(&w->mu);
            if (rc == SHARDZ_ENOENT) {
                /* The coordinator does not know this node: nothing is routed here, so dropping
                 * what is still served is safe. The hook thread does it, then releases. */
                w_job *job = calloc(1, sizeof *job);
                if (job == NULL) {
                    backoff = w_backoff(w, backoff);
                    continue;
                }
                job->kind = JOB_RELEASE;
                w_enqueue(w, job);
                rc = 0;
            }
            if (rc == 0) {
                w->leave_done = true;
                backoff = 50;
            } else if (rc != SHARDZ_EBUSY) {
                backoff = w_backoff(w, backoff);
            }
            continue;
        }
        if (w->want_register && !w->leaving) {
            pthread_mutex_unlock(&w->mu);
            rc = w_register_once(w);
            pthread_mutex_lock(&w->mu);
            if (rc == 0) {
                backoff = 50;
            } else if (rc != SHARDZ_EBUSY) {
                backoff = w_backoff(w, backoff);
            }
            continue;
        }
        pthread_cond_wait(&w->cv, &w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- public API ------------------------------------------------------------------------- */

static int w_check_config(const shardz_worker_config *c)
{
    char host[SZL_HOST_MAX + 1];
    uint16_t port;

    if (c->coordinator == NULL || !szl_hostports_valid(c->coordinator)) {
        return SHARDZ_EINVAL;
    }
    if (!szl_valid_ns(c->ns) || !szl_valid_id(c->node_id, SZL_ID_MAX)) {
        return SHARDZ_EINVAL;
    }
    if (c->serve == NULL || c->del == NULL || c->ncapacity > SHARDZ_WORKER_MAX_DIMS ||
        (c->ncapacity > 0 && c->capacity == NULL)) {
        return SHARDZ_EINVAL;
    }
    if (c->zone != NULL && c->zone[0] != '\0' && !szl_valid_id(c->zone, SZL_NAME_MAX)) {
        return SHARDZ_EINVAL;
    }
    if (c->secret != NULL &&
        (c->secret[0] == '\0' || strlen(c->secret) > 512 || strpbrk(c->secret, "\r\n") != NULL)) {
        return SHARDZ_EINVAL;
    }
    if (c->advertise != NULL && szl_hostport(c->advertise, host, sizeof host, &port) != 0) {
        return SHARDZ_EINVAL;
    }
    if (c->listen == NULL && c->advertise == NULL) {
        return SHARDZ_EINVAL; /* nothing to tell the coordinator */
    }
    if (c->listen != NULL) {
        if (szl_hostport(c->listen, host, sizeof host, &port) != 0) {
            return SHARDZ_EINVAL;
        }
        if (c->advertise == NULL &&
            (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 || strcmp(host, "*") == 0)) {
            return SHARDZ_EINVAL; /* a wildcard is no address to advertise */
        }
    }
    for (size_t i = 0; i < c->ncapacity; i++) {
        if (!szl_valid_id(c->capacity[i].name, SZL_NAME_MAX) || !isfinite(c->capacity[i].value) ||
            c->capacity[i].value < 0) {
            return SHARDZ_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->capacity[i].name, c->capacity[j].name) == 0) {
                return SHARDZ_EINVAL;
            }
        }
    }
    return 0;
}

/* Protected mode's library half (issue 16): a worker reachable beyond loopback without a
 * secret takes assignments from anyone who reaches it, one forged message deletes everything
 * it serves. Not refused (the application decides), but said loudly, at WARN. */
static void w_warn_unprotected(const shardz_worker_config *c)
{
    const char *addrs[2] = {c->listen, c->advertise};
    char host[SZL_HOST_MAX + 1];
    uint16_t port;

    if (c->secret != NULL) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        if (addrs[i] != NULL && szl_hostport(addrs[i], host, sizeof host, &port) == 0 &&
            !shardz__host_is_loopback(host)) {
            szl_log(c->log, c->log_user, SHARDZ_LOG_WARN,
                    "INSECURE: worker %s is reachable at %s without a secret: anyone who reaches "
                    "it can assign or delete its partitions. Give it the coordinator's secret "
                    "(shardz_worker_config.secret, from SHARDZ_SECRET or a file)",
                    c->node_id, addrs[i]);
            return;
        }
    }
}

static pthread_once_t w_evthread_once = PTHREAD_ONCE_INIT;
static int w_evthread_rc = -1;

static void w_evthread_init(void)
{
    w_evthread_rc = evthread_use_pthreads();
}

int shardz_worker_create(const shardz_worker_config *cfg, shardz_worker **out)
{
    shardz_worker *w;
    int rc;

    if (out == NULL) {
        return SHARDZ_EINVAL;
    }
    *out = NULL;
    if (cfg == NULL) {
        return SHARDZ_EINVAL;
    }
    rc = w_check_config(cfg);
    if (rc != 0) {
        szl_log(cfg->log, cfg->log_user, SHARDZ_LOG_ERROR,
                "bad worker config (coordinator, ns, node_id, listen/advertise, zone, capacity, "
                "hooks or secret)");
        return rc;
    }
    w = calloc(1, sizeof *w);
    if (w == NULL) {
        return SHARDZ_ENOMEM;
    }
    w->coordinator = strdup(cfg->coordinator);
    w->ns = strdup(cfg->ns);
    w->node = strdup(cfg->node_id);
    w_draw_incarnation(w);
    w->listen = w_strdup0(cfg->listen);
    w->advertise = w_strdup0(cfg->advertise);
    w->zone = w_strdup0(cfg->zone);
    w->secret = w_strdup0(cfg->secret);
    w->ncap = cfg->ncapacity;
    w->cap_names = calloc(w->ncap + 1, sizeof *w->cap_names);
    w->cap_values = calloc(w->ncap + 1, sizeof *w->cap_values);
    if (w->coordinator == NULL || w->ns == NULL || w->node == NULL ||
        (cfg->listen != NULL && w->listen == NULL) ||
        (cfg->advertise != NULL && w->advertise == NULL) ||
        (cfg->zone != NULL && w->zone == NULL) || (cfg->secret != NULL && w->secret == NULL) ||
        w->cap_names == NULL || w->cap_values == NULL) {
        goto nomem;
    }
    for (size_t i = 0; i < w->ncap; i++) {
        w->cap_names[i] = strdup(cfg->capacity[i].name);
        if (w->cap_names[i] == NULL) {
            goto nomem;
        }
        w->cap_values[i] = cfg->capacity[i].value;
    }
    w_warn_unprotected(cfg);
    w->serve = cfg->serve;
    w->del = cfg->del;
    w->user = cfg->user;
    w->clock_ms = cfg->clock_ms;
    w->clock_user = cfg->clock_user;
    w->lease_mode = cfg->lease_mode;
    w->lease_margin_ms = cfg->lease_margin_ms;
    w->lease_check_ms = cfg->lease_check_ms != 0 ? cfg->lease_check_ms : 25;
    w->request_timeout_ms = cfg->request_timeout_ms != 0 ? cfg->request_timeout_ms : 5000;
    w->backoff_max_ms = cfg->backoff_max_ms != 0 ? cfg->backoff_max_ms : 2000;
    w->reregister_after_ms = cfg->reregister_after_ms;
    w->log = cfg->log;
    w->log_user = cfg->log_user;
    w->consistency = -1;
    if (w->advertise != NULL) {
        snprintf(w->addr, sizeof w->addr, "%s", w->advertise);
    }
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        goto nomem;
    }
    if (szl_cond_init(&w->cv) != 0) {
        pthread_mutex_destroy(&w->mu);
        goto nomem;
    }
    atomic_init(&w->ctl_stop, false);
    *out = w;
    return 0;
nomem:
    w->phase = -1; /* no mutex yet */
    shardz_worker_destroy(w);
    return SHARDZ_ENOMEM;
}

/* Binds the listener and fills addr and port. */
static int w_bind(shardz_worker *w)
{
    char host[SZL_HOST_MAX + 1];
    uint16_t port;
    struct evhttp_bound_socket *bs;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;

    szl_hostport(w->listen, host, sizeof host, &port);
    w->http = evhttp_new(w->base);
    if (w->http == NULL) {
        return SHARDZ_ENOMEM;
    }
    evhttp_set_max_body_size(w->http, W_HTTP_LIMIT);
    evhttp_set_max_headers_size(w->http, 16384);
    evhttp_set_timeout(w->http, 30);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(w->http, w_http_cb, w);
    bs = evhttp_bind_socket_with_handle(w->http, host, port);
    if (bs == NULL) {
        szl_log(w->log, w->log_user, SHARDZ_LOG_ERROR, "cannot listen on %s", w->listen);
        return SHARDZ_EIO;
    }
    if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl) != 0) {
        return SHARDZ_EIO;
    }
    w->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    if (w->advertise == NULL) {
        snprintf(w->addr, sizeof w->addr, strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host,
                 (unsigned)w->port);
    }
    return 0;
}

/* Frees what start created (threads already joined). */
static void w_teardown(shardz_worker *w)
{
    if (w->http != NULL) {
        evhttp_free(w->http);
        w->http = NULL;
    }
    if (w->ev_tick != NULL) {
        event_free(w->ev_tick);
        w->ev_tick = NULL;
    }
    if (w->ev_wake != NULL) {
        event_free(w->ev_wake);
        w->ev_wake = NULL;
    }
    if (w->base != NULL) {
        event_base_free(w->base);
        w->base = NULL;
    }
    szl_http_free(&w->ctl_http);
}

/* Joins the threads that run, in order: control, hooks (answering what is queued), events. */
static void w_join(shardz_worker *w)
{
    atomic_store(&w->ctl_stop, true);
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    szl_http_wakeup(&w->ctl_http);
    if (w->ctl_started) {
        pthread_join(w->ctl_thr, NULL);
        w->ctl_started = false;
    }
    pthread_mutex_lock(&w->mu);
    w->hook_stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->hook_started) {
        pthread_join(w->hook_thr, NULL);
        w->hook_started = false;
    }
    pthread_mutex_lock(&w->mu);
    w->ev_stop = true;
    pthread_mutex_unlock(&w->mu);
    if (w->ev_started) {
        event_active(w->ev_wake, 0, 0);
        pthread_join(w->ev_thr, NULL);
        w->ev_started = false;
    }
}

int shardz_worker_start(shardz_worker *w)
{
    struct timeval tv;
    int rc;

    if (w == NULL) {
        return SHARDZ_EINVAL;
    }
    pthread_mutex_lock(&w->mu);
    if (w->phase != 0) {
        pthread_mutex_unlock(&w->mu);
        return SHARDZ_EBUSY;
    }
    w->phase = 1;
    pthread_mutex_unlock(&w->mu);
    pthread_once(&w_evthread_once, w_evthread_init);
    rc = SHARDZ_ENOMEM;
    if (w_evthread_rc != 0) {
        goto fail;
    }
    w->base = event_base_new();
    if (w->base == NULL) {
        goto fail;
    }
    w->ev_wake = event_new(w->base, -1, 0, w_wake_cb, w);
    w->ev_tick = event_new(w->base, -1, EV_PERSIST, w_tick_cb, w);
    if (w->ev_wake == NULL || w->ev_tick == NULL) {
        goto fail;
    }
    tv.tv_sec = w->lease_check_ms / 1000;
    tv.tv_usec = (suseconds_t)(w->lease_check_ms % 1000) * 1000;
    if (event_add(w->ev_tick, &tv) != 0) {
        goto fail;
    }
    if (w->listen != NULL) {
        rc = w_bind(w);
        if (rc != 0) {
            goto fail;
        }
    }
    rc = szl_http_init(&w->ctl_http, w->coordinator, w->secret, &w->ctl_stop);
    if (rc != 0) {
        goto fail;
    }
    pthread_mutex_lock(&w->mu);
    w->want_register = true;
    pthread_mutex_unlock(&w->mu);
    rc = SHARDZ_ENOMEM;
    if (pthread_create(&w->ev_thr, NULL, w_ev_main, w) != 0) {
        goto fail;
    }
    w->ev_started = true;
    if (pthread_create(&w->hook_thr, NULL, w_hook_main, w) != 0) {
        goto fail;
    }
    w->hook_started = true;
    if (pthread_create(&w->ctl_thr, NULL, w_ctl_main, w) != 0) {
        goto fail;
    }
    w->ctl_started = true;
    return 0;
fail:
    w_join(w);
    w_teardown(w);
    pthread_mutex_lock(&w->mu);
    w->phase = 2;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int shardz_worker_wait_registered(shardz_worker *w, int timeout_ms)
{
    struct timespec dl = szl_deadline(timeout_ms);
    int rc = 0;

    if (w == NULL) {
        return SHARDZ_EINVAL;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->registered) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&w->cv, &w->mu);
        } else if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0) {
            rc = w->registered ? 0 : SHARDZ_ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int shardz_worker_report_load(shardz_worker *w, const char *partition, const char *dimension,
                              double value)
{
    w_rec *r;
    size_t d;
    int rc = 0;

    if (w == NULL || !szl_valid_id(partition, SZL_ID_MAX) ||
        !szl_valid_id(dimension, SZL_NAME_MAX) || !isfinite(value) || value < 0) {
        return SHARDZ_EINVAL;
    }
    pthread_mutex_lock(&w->mu);
    r = t_find(&w->served, partition);
    if (r == NULL) {
        rc = SHARDZ_ENOENT;
        goto out;
    }
    for (d = 0; d < w->ndims; d++) {
        if (strcmp(w->dims[d], dimension) == 0) {
            break;
        }
    }
    if (d == w->ndims) {
        if (w->ndims == SHARDZ_WORKER_MAX_DIMS) {
            rc = SHARDZ_ENOSPC;
            goto out;
        }
        strcpy(w->dims[w->ndims++], dimension);
    }
    r->load[d] = value;
    r->load_mask |= (uint8_t)(1u << d);
out:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int shardz_worker_not_ready(shardz_worker *w, const char *partition)
{
    w_rec *r;
    int rc = 0;

    if (w == NULL || !szl_valid_id(partition, SZL_ID_MAX)) {
        return SHARDZ_EINVAL;
    }
    pthread_mutex_lock(&w->mu);
    r = t_find(&w->served, partition);
    if (r == NULL) {
        rc = SHARDZ_ENOENT;
    } else {
        r->unready = true;
        r->report_ready = false;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int shardz_worker_ready(shardz_worker *w, const char *partition, int64_t generation)
{
    w_rec *r;
    int rc = 0;

    if (w == NULL || !szl_valid_id(partition, SZL_ID_MAX) || generation < 0) {
        return SHARDZ_EINVAL;
    }
    pthread_mutex_lock(&w->mu);
    r = t_find(&w->served, partition);
    if (r == NULL || r->generation != generation) {
        rc = SHARDZ_ENOENT;
    } else if (r->unready) {
        r->unready = false;
        r->report_ready = true;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int shardz_worker_report_split_key(shardz_worker *w, const char *partition, const char *key)
{
    w_rec *r;
    char *copy;
    int rc = 0;

    if (w == NULL || !szl_valid_id(partition, SZL_ID_MAX) || key == NULL || key[0] == '\0' ||
        strlen(key) > SHARDZ_WORKER_MAX_SPLIT_KEY) {
        return SHARDZ_EINVAL;
    }
    copy = strdup(key);
    if (copy == NULL) {
        return SHARDZ_ENOMEM;
    }
    pthread_mutex_lock(&w->mu);
    r = t_find(&w->served, partition);
    if (r == NULL) {
        rc = SHARDZ_ENOENT;
    } else {
        free(r->split_key);
        r->split_key = copy;
        copy = NULL;
    }
    pthread_mutex_unlock(&w->mu);
    free(copy);
    return rc;
}

int shardz_worker_handle(shardz_worker *w, const char *method, const char *path,
                         const char *authorization, const void *body, size_t len, char **reply,
                         size_t *reply_len, int *status)
{
    w_job *job;
    char *out;
    size_t outlen;
    int st;

    if (w == NULL || method == NULL || path == NULL || (body == NULL && len > 0) || reply == NULL ||
        reply_len == NULL || status == NULL) {
        return SHARDZ_EINVAL;
    }
    *reply = NULL;
    *reply_len = 0;
    job = w_dispatch(w, method, path, authorization, body, len, NULL, &st, &out, &outlen);
    if (job != NULL) {
        pthread_mutex_lock(&w->mu);
        while (!job->done) {
            pthread_cond_wait(&w->cv, &w->mu);
        }
        pthread_mutex_unlock(&w->mu);
        st = job->status;
        out = job->body;
        outlen = job->len;
        free(job);
    }
    if (out == NULL) {
        return SHARDZ_ENOMEM;
    }
    *reply = out;
    *reply_len = outlen;
    *status = st;
    return 0;
}

int shardz_worker_leave(shardz_worker *w, int timeout_ms)
{
    struct timespec dl = szl_deadline(timeout_ms);
    int rc;

    if (w == NULL) {
        return SHARDZ_EINVAL;
    }
    pthread_mutex_lock(&w->mu);
    if (w->phase != 1) {
        pthread_mutex_unlock(&w->mu);
        return SHARDZ_EINVAL;
    }
    if (!w->leaving) {
        w->leaving = true;
        w->ctl_kick++;
        pthread_cond_broadcast(&w->cv);
    }
    while (!w->released && w->phase == 1) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&w->cv, &w->mu);
        } else if (pthread_cond_timedwait(&w->cv, &w->mu, &dl) != 0) {
            break;
        }
    }
    rc = w->released ? 0 : w->phase != 1 ? SHARDZ_EBUSY : SHARDZ_ETIMEDOUT;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

void shardz_worker_status_get(shardz_worker *w, shardz_worker_status *st)
{
    memset(st, 0, sizeof *st);
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    st->started = w->phase == 1;
    st->registered = w->registered;
    st->leaving = w->leaving;
    st->released = w->released;
    st->lease_enforced = w_lease_eff(w) != 0;
    st->applied_revision = w->applied_reported;
    st->ping_interval_ms = w->ping_interval_ms;
    st->lease_ms = w->lease_ms;
    st->serving = w->served.n;
    st->registrations = w->registrations;
    st->assignments = w->assignments;
    st->lease_expiries = w->lease_expiries;
    st->lease_checks = w->lease_checks;
    st->delta_agreed = w->delta_agreed;
    st->deltas = w->deltas;
    st->deltas_refused = w->deltas_refused;
    for (const w_job *j = w->jobs_head; j != NULL; j = j->next) {
        st->queued++;
    }
    st->stopping = w->hook_stop;
    st->port = w->port;
    snprintf(st->last_error, sizeof st->last_error, "%s", w->last_error);
    pthread_mutex_unlock(&w->mu);
}

int shardz_worker_lease_ok(shardz_worker *w)
{
    int ok;

    if (w == NULL) {
        return 0;
    }
    pthread_mutex_lock(&w->mu);
    ok = !w->lease_lapsed && !w->lease_revoked && !w_lease_expired(w, w_now(w));
    pthread_mutex_unlock(&w->mu);
    return ok;
}

const char *shardz_worker_address(const shardz_worker *w)
{
    return w != NULL ? w->addr : "";
}

void shardz_worker_stop(shardz_worker *w)
{
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->mu);
    if (w->phase != 1) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    w->phase = 2;
    pthread_mutex_unlock(&w->mu);
    w_join(w);
    w_teardown(w);
}

void shardz_worker_destroy(shardz_worker *w)
{
    if (w == NULL) {
        return;
    }
    if (w->phase != -1) {
        shardz_worker_stop(w);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
    }
    t_free(&w->served);
    while (w->jobs_head != NULL) {
        w_job *j = w->jobs_head;
        w->jobs_head = j->next;
        szl_assign_free(&j->a);
        free(j);
    }
    for (size_t i = 0; i < w->ncap && w->cap_names != NULL; i++) {
        free(w->cap_names[i]);
    }
    free(w->cap_names);
    free(w->cap_values);
    free(w->coordinator);
    free(w->ns);
    free(w->node);
    free(w->listen);
    free(w->advertise);
    free(w->zone);
    free(w->secret);
    free(w);
}
