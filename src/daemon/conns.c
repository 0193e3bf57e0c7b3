/* The API listener's client connections (conns.h): counts what evhttp holds, caps it at
 * --max-connections by pausing accept() (evconnlistener_disable) and evicting the client idle
 * longest, and pauses accept() with a doubling backoff after it fails (EMFILE, ENFILE), logging
 * at most one line every 10 s. Pings never come through here: the health lane dials out on its
 * own connections. Event-loop thread only. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "daemon/conns.h"
#include "daemon/daemon.h"
#include "daemon/oom.h"

#define LOG_EVERY_MS 10000
#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000

/* One client connection, indexed by its socket. evcon NULL: no connection of ours. */
typedef struct {
    struct evhttp_connection *evcon;                /* borrowed: evhttp owns it */
    void (*cb)(struct evhttp_connection *, void *); /* the other user's close callback */
    void *arg;
    void (*release)(void *); /* finishes its request early (a parked watch), or NULL */
    void *release_arg;
    int64_t idle_since; /* accepted, or its last reply written */
    bool busy;          /* a request is being answered */
} conn_slot;

struct szd_conns {
    szd *d;                     /* borrowed */
    struct evconnlistener *lev; /* evhttp's, borrowed; NULL once stopped */
    size_t max, open;
    conn_slot *slot; /* by socket, owned */
    size_t nslot;
    conn_slot **cand; /* evict_idle's scratch: idle connections, owned */
    size_t ncand;
    /* accepted, not yet matched with their evhttp_connection: the bufferevents made for them,
     * each with a reference of ours (so a connection gone in between is seen, not freed) */
    struct bufferevent **pending;
    size_t npending, cappending;
    struct event *attach_ev; /* matches the pending ones, right after the accept, owned */
    struct event *resume_ev; /* ends an accept pause, owned */
    struct event *room_ev;   /* another pass soon: idle clients had request bytes unread */
    bool paused_cap, paused_err;
    int64_t backoff_ms;
    int64_t last_log_ms;
    uint64_t quiet_errors; /* accept failures since the last line */
    uint64_t quiet_capped;
    szd_conns_stats st;
};

static void listener_update(szd_conns *c)
{
    if (!c->lev) {
        return;
    }
    if (c->paused_cap || c->paused_err) {
        evconnlistener_disable(c->lev);
    } else {
        evconnlistener_enable(c->lev);
    }
}

static conn_slot *slot_of(szd_conns *c, struct evhttp_connection *evcon)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd >= 0 && (size_t)fd < c->nslot && c->slot[fd].evcon == evcon) {
        return &c->slot[fd];
    }
    for (size_t i = 0; i < c->nslot; i++) { /* its socket already reset: rare */
        if (c->slot[i].evcon == evcon) {
            return &c->slot[i];
        }
    }
    return NULL;
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
    szd_conns *c = arg;
    conn_slot *s = slot_of(c, evcon);
    void (*cb)(struct evhttp_connection *, void *) = s ? s->cb : NULL;
    void *cbarg = s ? s->arg : NULL;
    if (s) {
        memset(s, 0, sizeof *s);
    }
    c->open--;
    if (cb) {
        cb(evcon, cbarg);
    }
    if (c->paused_cap && c->open < c->max) {
        c->paused_cap = false;
        listener_update(c);
    }
}

static void on_complete(struct evhttp_request *req, void *arg)
{
    szd_conns *c = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    conn_slot *s = evcon ? slot_of(c, evcon) : NULL;
    if (s) {
        s->busy = false;
        s->release = NULL;
        s->idle_since = szd_now(c->d);
    }
    /* paused at the cap with every connection busy: this one is idle now, room for the next,
     * made after evhttp is done with it (never inside its own completion) */
    if (c->paused_cap) {
        event_active(c->attach_ev, EV_TIMEOUT, 0);
    }
}

/* Makes evcon (on socket fd) one of ours. */
static conn_slot *attach(szd_conns *c, struct evhttp_connection *evcon, evutil_socket_t fd)
{
    if ((size_t)fd >= c->nslot) {
        size_t n = c->nslot ? c->nslot : 1024;
        while (n <= (size_t)fd) {
            n *= 2;
        }
        c->slot = szd_xrealloc(c->slot, n * sizeof *c->slot);
        memset(c->slot + c->nslot, 0, (n - c->nslot) * sizeof *c->slot);
        c->nslot = n;
    }
    conn_slot *s = &c->slot[fd];
    if (s->evcon && s->evcon != evcon) { /* a connection whose close we never heard of */
        c->open--;
    }
    *s = (conn_slot){.evcon = evcon, .idle_since = szd_now(c->d)};
    evhttp_connection_set_closecb(evcon, on_close, c);
    return s;
}

/* The slot of a connection that carries a request, attached now if the accept's batch has not
 * run yet. */
static conn_slot *slot_now(szd_conns *c, struct evhttp_connection *evcon)
{
    conn_slot *s = slot_of(c, evcon);
    if (s) {
        return s;
    }
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0) {
        return NULL;
    }
    bool counted = false;
    for (size_t i = 0; i < c->npending; i++) {
        if (c->pending[i] == bev) {
            c->pending[i] = c->pending[--c->npending];
            bufferevent_decref(bev);
            counted = true;
            break;
        }
    }
    if (!counted) { /* not seen at its accept: count it now, as its close will */
        c->open++;
    }
    return attach(c, evcon, fd);
}

/* Orders idle candidates, longest idle first. */
static int by_idle_since(const void *x, const void *y)
{
    const conn_slot *a = *(conn_slot *const *)x, *b = *(conn_slot *const *)y;
    return (a->idle_since > b->idle_since) - (a->idle_since < b->idle_since);
}

/* Closes up to `want` connections, those idle longest first (a client that sent nothing yet,
 * or one between requests; one whose request bytes wait unread is not idle), in one pass over
 * the connections: at the cap it makes room for a tenth of the cap at once, not one accept at
 * a time. None idle: the oldest parked watch is answered now (as its timeout would), so its
 * connection turns idle once the reply is written (on_complete schedules another pass).
 * Returns how many it closed. */
static size_t evict_idle(szd_conns *c, size_t want)
{
    conn_slot *parked = NULL;
    size_t n = 0, done = 0, unread_seen = 0;
    for (size_t i = 0; i < c->nslot; i++) {
        conn_slot *s = &c->slot[i];
        if (s->evcon && !s->busy) {
            if (n == c->ncand) {
                c->ncand = c->ncand ? 2 * c->ncand : 64;
                c->cand = szd_xrealloc(c->cand, c->ncand * sizeof *c->cand);
            }
            c->cand[n++] = s;
        }
        if (s->evcon && s->busy && s->release && (!parked || s->idle_since < parked->idle_since)) {
            parked = s;
        }
    }
    if (n > 1) {
        qsort(c->cand, n, sizeof *c->cand, by_idle_since);
    }
    for (size_t k = 0; k < n && done < want; k++) {
        int unread = 0;
        int fd = (int)(c->cand[k] - c->slot);
        /* bytes waiting in the socket: a request arriving, which evhttp has not read yet */
        if (ioctl(fd, FIONREAD, &unread) != 0 || unread > 0) {
            unread_seen++;
            continue;
        }
        c->st.evicted++;
        done++;
        evhttp_connection_free(c->cand[k]->evcon); /* on_close runs, and counts it gone */
    }
    if (done == 0 && unread_seen > 0) {
        /* evhttp reads those next: a partial request turns idle, a whole one busy; look again
         * shortly (a request that completes also brings a pass, through on_complete) */
        struct timeval tv = {0, 10000};
        evtimer_add(c->room_ev, &tv);
    }
    if (done == 0 && parked) {
        void (*release)(void *) = parked->release;
        parked->release = NULL;
        c->st.released++;
        release(parked->release_arg);
    }
    return done;
}

static void log_pause(szd_conns *c, const char *why, int err)
{
    int64_t now = szd_now(c->d);
    if (c->last_log_ms && now - c->last_log_ms < LOG_EVERY_MS) {
        return;
    }
    szd_log(c->d, SZD_WARN,
            "msg=\"accepting paused\" reason=%s error=\"%s\" open=%zu max=%zu "
            "accept_errors_since_last=%llu full_since_last=%llu backoff_ms=%lld",
            why, err ? strerror(err) : "", c->open, c->max, (unsigned long long)c->quiet_errors,
            (unsigned long long)c->quiet_capped, (long long)c->backoff_ms);
    c->last_log_ms = now;
    c->quiet_errors = 0;
    c->quiet_capped = 0;
}

static void on_attach(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd_conns *c = arg;
    for (size_t i = 0; i < c->npending; i++) {
        struct bufferevent *bev = c->pending[i];
        bufferevent_data_cb readcb = NULL;
        void *cbarg = NULL;
        bufferevent_getcb(bev, &readcb, NULL, NULL, &cbarg);
        evutil_socket_t sock = bufferevent_getfd(bev);
        /* evhttp gives the bufferevent its connection as the callbacks' argument, and clears
         * the callbacks when it frees the connection */
        if (readcb && cbarg && sock >= 0) {
            attach(c, cbarg, sock);
        } else {
            c->open--; /* gone before we saw it */
        }
        bufferevent_decref(bev);
    }
    c->npending = 0;
    /* at the cap: room for the next client, taken from the one idle longest */
    if (c->open >= c->max) {
        evict_idle(c, c->max / 10 ? c->max / 10 : 1);
    }
    if (c->open >= c->max) {
        c->st.capped++;
        c->quiet_capped++;
        log_pause(c, "max-connections", 0);
    }
    c->paused_cap = c->open >= c->max;
    listener_update(c);
}

static struct bufferevent *on_bev(struct event_base *base, void *arg)
{
    szd_conns *c = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        szd_oom();
    }
    bufferevent_incref(bev);
    if (c->npending == c->cappending) {
        c->cappending = c->cappending ? 2 * c->cappending : 16;
        c->pending = szd_xrealloc(c->pending, c->cappending * sizeof *c->pending);
    }
    c->pending[c->npending++] = bev;
    c->open++;
    c->backoff_ms = 0;
    event_active(c->attach_ev, EV_TIMEOUT, 0);
    if (c->open >= c->max) { /* no further accept in this callback */
        c->paused_cap = true;
        listener_update(c);
    }
    return bev;
}

/* The listener's error callback gets the listener's argument, which evhttp set to itself:
 * the one coordinator of the process registers here which counts go with which evhttp. */
static szd_conns *error_target;

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)lev;
    szd_conns *c = error_target;
    if (!c || c->d->http != arg) {
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    c->st.accept_errors++;
    c->quiet_errors++;
    c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (c->backoff_ms > BACKOFF_MAX_MS) {
        c->backoff_ms = BACKOFF_MAX_MS;
    }
    /* out of descriptors: an idle client gives one back, for a worker that registers */
    if (err == EMFILE || err == ENFILE) {
        evict_idle(c, 1);
    }
    c->paused_err = true;
    listener_update(c);
    struct timeval tv = {(time_t)(c->backoff_ms / 1000),
                         (suseconds_t)((c->backoff_ms % 1000) * 1000)};
    evtimer_add(c->resume_ev, &tv);
    log_pause(c, "accept-failed", err);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd_conns *c = arg;
    c->paused_err = false;
    listener_update(c);
}

int szd_conns_start(szd *d, struct evconnlistener *lev, size_t max, szd_conns **out)
{
    szd_conns *c = calloc(1, sizeof *c);
    if (!c) {
        return SHARDZ_ENOMEM;
    }
    c->d = d;
    c->lev = lev;
    c->max = max ? max : 1;
    c->attach_ev = event_new(d->base, -1, 0, on_attach, c);
    c->resume_ev = evtimer_new(d->base, on_resume, c);
    c->room_ev = evtimer_new(d->base, on_attach, c);
    if (!c->attach_ev || !c->resume_ev || !c->room_ev) {
        szd_conns_free(c);
        return SHARDZ_ENOMEM;
    }
    evhttp_set_bevcb(d->http, on_bev, c);
    error_target = c;
    evconnlistener_set_error_cb(lev, on_accept_error);
    *out = c;
    return 0;
}

void szd_conns_stop(szd_conns *c)
{
    if (c) {
        c->lev = NULL;
        c->paused_cap = c->paused_err = false;
    }
}

void szd_conns_free(szd_conns *c)
{
    if (!c) {
        return;
    }
    if (error_target == c) {
        error_target = NULL;
    }
    for (size_t i = 0; i < c->npending; i++) {
        bufferevent_decref(c->pending[i]);
    }
    free(c->pending);
    free(c->slot);
    free(c->cand);
    if (c->attach_ev) {
        event_free(c->attach_ev);
    }
    if (c->resume_ev) {
        event_free(c->resume_ev);
    }
    if (c->room_ev) {
        event_free(c->room_ev);
    }
    free(c);
}

void szd_conn_set_closecb(szd *d, struct evhttp_connection *evcon,
                          void (*cb)(struct evhttp_connection *, void *), void *arg)
{
    conn_slot *s = d->conns ? slot_now(d->conns, evcon) : NULL;
    if (s) {
        s->cb = cb;
        s->arg = arg;
    } else {
        evhttp_connection_set_closecb(evcon, cb, arg);
    }
}

void szd_conn_set_release(szd *d, struct evhttp_connection *evcon, void (*release)(void *),
                          void *arg)
{
    conn_slot *s = d->conns ? slot_now(d->conns, evcon) : NULL;
    if (s) {
        s->release = release;
        s->release_arg = arg;
    }
    /* paused at the cap: a watch just parked can give room (the pass runs after this call) */
    if (s && release && d->conns->paused_cap) {
        event_active(d->conns->attach_ev, EV_TIMEOUT, 0);
    }
}

void szd_conn_request(szd *d, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    conn_slot *s = d->conns && evcon ? slot_now(d->conns, evcon) : NULL;
    if (s) {
        s->busy = true;
        evhttp_request_set_on_complete_cb(req, on_complete, d->conns);
    }
}

void szd_conns_get_stats(const szd_conns *c, szd_conns_stats *out)
{
    *out = c->st;
    out->open = c->open;
    out->max = c->max;
}
