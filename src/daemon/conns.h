/* The API listener's client connections: the cap (--max-connections), eviction of idle clients
 * at the cap, and the pause of accept() after it fails (EMFILE, ENFILE), with a rate-limited
 * log line. Event-loop thread only. */
#ifndef SZD_CONNS_H
#define SZD_CONNS_H

#include <stddef.h>
#include <stdint.h>

struct szd;
struct evconnlistener;
struct evhttp_connection;
struct evhttp_request;

typedef struct szd_conns szd_conns;

/* What /metrics shows. */
typedef struct {
    size_t open;            /* client connections evhttp holds now */
    size_t max;             /* --max-connections */
    uint64_t evicted;       /* idle connections closed to make room for a new one */
    uint64_t capped;        /* times accepting paused because every connection was busy */
    uint64_t released;      /* parked watches answered early to make room at the cap */
    uint64_t accept_errors; /* accept() failures (EMFILE, ENFILE, ENOBUFS, ...) */
} szd_conns_stats;

/* Starts counting the connections that d->http accepts on `lev` (evhttp's listener, borrowed:
 * evhttp frees it), at most `max` at once. Sets evhttp's bufferevent callback and the
 * listener's error callback. 0 or SHARDZ_ENOMEM (nothing set). *out is freed by
 * szd_conns_free after evhttp_free; szd_conns_stop comes before it. */
int szd_conns_start(struct szd *d, struct evconnlistener *lev, size_t max, szd_conns **out);
/* evhttp is about to be freed (its listener first): never touch the listener again. NULL ok. */
void szd_conns_stop(szd_conns *c);
/* Frees what szd_conns_start made. After evhttp_free. NULL ok. */
void szd_conns_free(szd_conns *c);
/* The close callback of a client connection. evhttp keeps one per connection and the count
 * uses it, so every other user sets theirs here (cb NULL clears it). Called once, before the
 * socket closes. */
void szd_conn_set_closecb(struct szd *d, struct evhttp_connection *evcon,
                          void (*cb)(struct evhttp_connection *, void *), void *arg);
/* How to finish the request on evcon early (a parked watch: answered as unchanged) when the
 * cap needs room and no connection is idle; release NULL: none (done with the request).
 * Called at most once. */
void szd_conn_set_release(struct szd *d, struct evhttp_connection *evcon, void (*release)(void *),
                          void *arg);
/* A request arrived (the route table calls this first): its connection is busy, never evicted,
 * until the reply has been written. */
void szd_conn_request(struct szd *d, struct evhttp_request *req);
void szd_conns_get_stats(const szd_conns *c, szd_conns_stats *out);

#endif
