/* shardzd's HTTP API (docs/PROTOCOL.md): routing of /healthz, /v1/status and the namespace
 * routes, request checks (secret, methods, bodies), and watches: long-polls parked until the
 * namespace's revision passes the one the client knows. Event-loop thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/auth.h"
#include "daemon/daemon.h"
#include "daemon/oom.h"
#include "daemon/range.h"
#include "shardz/hash.h"
#ifdef SHARDZ_HAVE_WEB
#include "web_assets.h"
#endif

#define SZD_VERSION "0.1.0"
#define MAX_SEGS 8

/* ---- the state body, shared ----------------------------------------------------------- */

/* A namespace's /state, serialised once per revision (it shows no statistics or ages, which
 * change without one) and shared by every reply that sends it, watches and GET /state alike: a
 * change woken for a thousand watches builds it once. Reference-counted: the namespace holds one
 * reference while it is current, each reply one until libevent has written it. Loop thread. */
struct szd_body {
    char *text; /* JSON and a newline, owned */
    size_t len;
    uint64_t revision;
    int refs;
};

static void body_unref(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    struct szd_body *b = arg;
    if (--b->refs == 0) {
        free(b->text);
        free(b);
    }
}

/* The current body with a reference for the caller, or NULL (out of memory). */
static struct szd_body *state_body(szd_ns *ns)
{
    struct szd_body *b = ns->state_body;
    if (!b || b->revision != ns->revision) {
        if (b) {
            body_unref(NULL, 0, b); /* the namespace's reference */
        }
        ns->state_body = NULL;
        json_t *j = szd_state_json(ns);
        char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        b = text ? calloc(1, sizeof *b) : NULL;
        size_t len = text ? strlen(text) : 0;
        char *nl = b ? realloc(text, len + 2) : NULL;
        if (!nl) {
            free(text);
            free(b);
            return NULL;
        }
        nl[len] = '\n';
        nl[len + 1] = '\0';
        *b = (struct szd_body){nl, len + 1, ns->revision, 1};
        ns->state_body = b;
    }
    b->refs++;
    return b;
}

/* Sends the namespace's state (a shared body) as a 200. */
static void reply_state(struct evhttp_request *req, szd_ns *ns)
{
    struct szd_body *b = state_body(ns);
    struct evbuffer *buf = b ? evbuffer_new() : NULL;
    if (!buf || evbuffer_add_reference(buf, b->text, b->len, body_unref, b) != 0) {
        if (b) {
            body_unref(NULL, 0, b);
        }
        if (buf) {
            evbuffer_free(buf);
        }
        szd_reply_error(req, SHARDZ_ENOMEM, "out of memory");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    char rev[32];
    snprintf(rev, sizeof rev, "%llu", (unsigned long long)b->revision);
    evhttp_add_header(h, "X-Shardz-Revision", rev);
    evhttp_send_reply(req, 200, "OK", buf);
    evbuffer_free(buf);
}

void szd_state_body_release(szd_ns *ns)
{
    if (ns->state_body) {
        body_unref(NULL, 0, ns->state_body);
    }
    ns->state_body = NULL;
}

/* ---- watches ------------------------------------------------------------------------- */

static void waiter_free(szd_waiter *w)
{
    if (w->timer) {
        event_free(w->timer);
    }
    if (w->eof) {
        event_free(w->eof);
    }
    w->ns->d->nwaiters--;
    free(w);
}

static void waiter_unlink(szd_waiter *w)
{
    for (szd_waiter **pp = &w->ns->waiters; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            return;
        }
    }
}

static void waiter_reply(szd_waiter *w, bool changed)
{
    struct evhttp_connection *c = evhttp_request_get_connection(w->req);
    if (c) {
        szd_conn_set_closecb(w->ns->d, c, NULL, NULL);
        szd_conn_set_release(w->ns->d, c, NULL, NULL);
    }
    szd_ns *ns = w->ns;
    if (changed) {
        reply_state(w->req, ns); /* built once for every watch woken by this change */
    } else {
        szd_reply_json(
            w->req, 200,
            json_pack("{s:I, s:b}", "revision", (json_int_t)ns->revision, "unchanged", 1),
            ns->revision);
    }
    waiter_unlink(w);
    waiter_free(w);
}

static void on_waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    waiter_reply(arg, false);
}

/* The parked client's socket became readable. evhttp does not read a connection whose request
 * is being answered, so it would not see the client go away before the watch's timeout (up to
 * 300 s): a peek tells. Gone (EOF or an error): the watch ends now (its reply fails to send, and
 * libevent closes the connection). Data instead (a pipelined request): left to evhttp. */
static void on_waiter_readable(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        waiter_reply(arg, false);
    }
}

/* The connection cap needs room: the watch is answered now, as at its timeout. */
static void on_waiter_release(void *arg)
{
    waiter_reply(arg, false);
}

static void on_waiter_close(struct evhttp_connection *c, void *arg)
{
    (void)c;
    szd_waiter *w = arg;
    waiter_unlink(w);
    waiter_free(w);
}

void szd_watch_notify(szd_ns *ns)
{
    szd_waiter *w = ns->waiters;
    while (w) {
        szd_waiter *next = w->next;
        if (ns->revision > w->since) {
            waiter_reply(w, true);
        }
        w = next;
    }
}

void szd_watch_cancel_all(szd_ns *ns)
{
    while (ns->waiters) {
        szd_waiter *w = ns->waiters;
        struct evhttp_connection *c = evhttp_request_get_connection(w->req);
        if (c) {
            szd_conn_set_closecb(ns->d, c, NULL, NULL);
            szd_conn_set_release(ns->d, c, NULL, NULL);
        }
        szd_reply_error(w->req, SHARDZ_ENOENT, "namespace '%s' was deleted", ns->cfg.name);
        ns->waiters = w->next;
        waiter_free(w);
    }
}

static bool query_u64(const struct evkeyvalq *q, const char *name, uint64_t dflt, uint64_t max,
                      uint64_t *out)
{
    const char *v = evhttp_find_header(q, name);
    if (!v) {
        *out = dflt;
        return true;
    }
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || x > max) {
        return false;
    }
    *out = x;
    return true;
}

static void handle_watch(szd_ns *ns, struct evhttp_request *req, const struct evkeyvalq *q)
{
    uint64_t since, timeout;
    if (!query_u64(q, "revision", 0, UINT64_MAX, &since)) {
        szd_reply_error(req, SHARDZ_EINVAL, "revision must be a non-negative integer");
        return;
    }
    if (!query_u64(q, "timeout_ms", 30000, 300000, &timeout)) {
        szd_reply_error(req, SHARDZ_EINVAL, "timeout_ms must be an integer in [0, 300000]");
        return;
    }
    if (ns->revision > since) {
        reply_state(req, ns);
        return;
    }
    if (ns->d->nwaiters >= ns->d->cfg.max_watches) {
        szd_reply_error(req, SHARDZ_EBUSY,
                        "%zu watches are parked, the most this coordinator keeps (--max-watches); "
                        "retry later, or read /state",
                        ns->d->nwaiters);
        return;
    }
    szd_waiter *w = calloc(1, sizeof *w);
    if (!w) {
        szd_reply_error(req, SHARDZ_ENOMEM, "out of memory");
        return;
    }
    w->req = req;
    w->ns = ns;
    w->since = since;
    ns->d->nwaiters++;
    w->timer = evtimer_new(ns->d->base, on_waiter_timeout, w);
    if (!w->timer) {
        waiter_free(w);
        szd_reply_error(req, SHARDZ_ENOMEM, "out of memory");
        return;
    }
    struct timeval tv = {(time_t)(timeout / 1000), (suseconds_t)((timeout % 1000) * 1000)};
    evtimer_add(w->timer, &tv);
    w->next = ns->waiters;
    ns->waiters = w;
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    if (c) {
        szd_conn_set_closecb(ns->d, c, on_waiter_close, w);
        szd_conn_set_release(ns->d, c, on_waiter_release, w);
        struct bufferevent *bev = evhttp_connection_get_bufferevent(c);
        evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
        if (fd >= 0) {
            w->eof = event_new(ns->d->base, fd, EV_READ, on_waiter_readable, w);
            if (w->eof) {
                event_add(w->eof, NULL);
            }
        }
    }
}

/* ---- routes -------------------------------------------------------------------------- */

static json_t *status_json(szd *d)
{
    shardz_store_status st = {0};
    bool reachable = szd_store_status(d, &st) == 0;
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:I, s:i, s:I, s:s, s:b}", "version", SZD_VERSION, "store",
        reachable ? st.backend : "unreachable", "fsync", shardz_store_sync_name(st.sync),
        "store_revision", (json_int_t)st.revision, "namespaces", (int)d->nns, "uptime_ms",
        (json_int_t)(szd_now(d) - d->started_ms), "listen", d->cfg.listen, "acting", szd_acting(d));
    json_t *ha = szd_ha_status_json(d);
    if (j && ha) {
        json_object_update(j, ha);
    }
    json_decref(ha);
    return j;
}

/* {"<name>": list, "revision": R}: every list of a namespace replies so (takes list). */
static void reply_list(struct evhttp_request *req, const szd_ns *ns, const char *name, json_t *list)
{
    szd_reply_json(req, 200,
                   json_pack("{s:o, s:I}", name, list, "revision", (json_int_t)ns->revision),
                   ns->revision);
}

/* ---- the route table ------------------------------------------------------------------ */

/* One request being answered: what the dispatcher resolved for the handler. */
typedef struct {
    szd *d;
    struct evhttp_request *req;
    szd_ns *ns;                /* {ns}, resolved (routes under a namespace) */
    const char *arg[2];        /* the other {...} segments, in order ({id}/{pid}, {slot}) */
    const struct evkeyvalq *q; /* the query */
} szd_call;

/* A write changes state (a follower sends it to the leader); a read a follower answers from
 * its cache; local routes are about this coordinator (status, metrics, health). */
typedef enum { R_READ = 0, R_WRITE, R_LOCAL } route_kind;

typedef struct {
    enum evhttp_cmd_type method;
    const char *pattern; /* segments; {name} matches any one segment */
    route_kind kind;
    void (*handler)(szd_call *c);
} route;

static const char *kind_name(route_kind k)
{
    return k == R_WRITE ? "write" : k == R_READ ? "read" : "local";
}

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    default:
        return "?";
    }
}

static szd_node *node_arg(szd_call *c)
{
    szd_node *n = szd_node_find(c->ns, c->arg[0]);
    if (!n) {
        szd_reply_error(c->req, SHARDZ_ENOENT, "no node '%s' in namespace '%s'", c->arg[0],
                        c->ns->cfg.name);
    }
    return n;
}

static szd_part *part_arg(szd_call *c)
{
    szd_part *p = szd_part_find(c->ns, c->arg[0]);
    if (!p) {
        szd_reply_error(c->req, SHARDZ_ENOENT, "no partition '%s' in namespace '%s'", c->arg[0],
                        c->ns->cfg.name);
    }
    return p;
}

/* ---- handlers -------------------------------------------------------------------------- */

static void r_healthz(szd_call *c)
{
    if (c->d->ready) {
        szd_reply_json(c->req, 200, json_pack("{s:s}", "status", "ok"), 0);
    } else {
        szd_reply_error(c->req, SHARDZ_EBUSY, "starting");
    }
}

static void r_metrics(szd_call *c)
{
    size_t len = 0;
    char *text = szd_metrics_text(c->d, &len);
    struct evbuffer *buf = evbuffer_new();
    if (!text || !buf) {
        free(text);
        if (buf) {
            evbuffer_free(buf);
        }
        szd_reply_error(c->req, SHARDZ_ENOMEM, "out of memory");
        return;
    }
    evbuffer_add(buf, text, len);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(c->req, 200, "OK", buf);
    evbuffer_free(buf);
}

static void r_status(szd_call *c)
{
    szd_reply_json(c->req, 200, status_json(c->d), 0);
}

static void r_ns_list(szd_call *c)
{
    json_t *list = json_array();
    for (uint32_t i = 0; i < c->d->nns; i++) {
        json_array_append_new(list, szd_ns_summary_json(c->d->ns[i]));
    }
    szd_reply_json(c->req, 200, json_pack("{s:o}", "namespaces", list), 0);
}

static void r_ns_create(szd_call *c)
{
    char err[512] = "";
    json_t *body = szd_read_body_max(c->req, SZD_MAX_BULK_BODY);
    if (!body) {
        return;
    }
    szd_ns_config cfg;
    int rc = szd_ns_config_parse(body, &cfg, err, sizeof err);
    szd_ns *ns = NULL;
    if (rc == 0 && cfg.strict && !json_object_get(body, "lease_ms")) {
        cfg.lease_ms = szd_strict_lease_default(c->d, &cfg); /* covers a failover (HA) */
    } else if (rc == 0 && cfg.strict && cfg.lease_ms < szd_strict_lease_default(c->d, &cfg)) {
        szd_log(c->d, SZD_WARN,
                "msg=\"strict lease shorter than a failover: its workers drop everything when "
                "the leader dies\" ns=%s lease_ms=%lld failover_lease_ms=%lld",
                cfg.name, (long long)cfg.lease_ms, (long long)szd_strict_lease_default(c->d, &cfg));
    }
    if (rc == 0) {
        rc = szd_ns_create(c->d, &cfg, json_object_get(body, "partitions"), &ns, err, sizeof err);
    }
    json_decref(body);
    if (rc) {
        szd_reply_error(c->req, rc, "%s", err);
        return;
    }
    szd_reply_json(c->req, 201, szd_ns_summary_json(ns), ns->revision);
}

static void r_ns_get(szd_call *c)
{
    szd_reply_json(c->req, 200, szd_ns_summary_json(c->ns), c->ns->revision);
}

/* PATCH /v1/namespaces/{ns}[?dry_run=true]: live configuration (live.c). */
static void r_ns_patch(szd_call *c)
{
    char err[512] = "";
    const char *dry = evhttp_find_header(c->q, "dry_run");
    if (dry && strcmp(dry, "true") != 0 && strcmp(dry, "false") != 0 && strcmp(dry, "1") != 0 &&
        strcmp(dry, "0") != 0) {
        szd_reply_error(c->req, SHARDZ_EINVAL, "dry_run must be true or false");
        return;
    }
    json_t *body = szd_read_body(c->req);
    if (!body) {
        return;
    }
    json_t *reply = NULL;
    bool dry_run = dry && (strcmp(dry, "true") == 0 || strcmp(dry, "1") == 0);
    int rc = szd_ns_patch(c->ns, body, dry_run, &reply, err, sizeof err);
    json_decref(body);
    if (rc) {
        json_decref(reply);
        szd_reply_error(c->req, rc, "%s", err);
        return;
    }
    szd_reply_json(c->req, 200, reply, c->ns->revision);
}

static void r_ns_delete(szd_call *c)
{
    int rc = szd_ns_delete(c->d, c->ns);
    if (rc) {
        szd_reply_error(c->req, rc, "could not delete: %s", shardz_strerror(rc));
    } else {
        szd_reply_json(c->req, 200, json_pack("{s:b}", "deleted", 1), 0);
    }
}

static void r_nodes(szd_call *c)
{
    reply_list(c->req, c->ns, "nodes", szd_nodes_json(c->ns));
}

static void r_node_register(szd_call *c)
{
    char err[512] = "";
    szd_ns *ns = c->ns;
    json_t *body = szd_read_body(c->req);
    if (!body) {
        return;
    }
    szd_node *n = NULL;
    int rc = szd_node_register(ns, body, &n, err, sizeof err);
    bool term_offered = false; /* the worker refuses messages of an older term (4.1) */
    size_t fi;
    json_t *fv;
    json_array_foreach(json_object_get(body, "features"), fi, fv)
    {
        term_offered |= json_is_string(fv) && strcmp(json_string_value(fv), "term") == 0;
    }
    json_decref(body);
    if (rc) {
        szd_reply_error(c->req, rc, "%s", err);
        return;
    }
    json_t *reply = json_pack("{s:o, s:I, s:I, s:s, s:I, s:I}", "node", szd_node_json(ns, n, false),
                              "ping_interval_ms", (json_int_t)ns->cfg.ping_interval_ms, "lease_ms",
                              (json_int_t)ns->cfg.lease_ms, "consistency",
                              ns->cfg.strict ? "strict" : "available", "revision",
                              (json_int_t)ns->revision, "term", (json_int_t)c->d->ha.term);
    /* the protocol features this coordinator uses with this node (docs/PROTOCOL.md 4.1) */
    json_t *features = json_array();
    if (n->delta_ok) {
        json_array_append_new(features, json_string("delta"));
    }
    if (term_offered) {
        json_array_append_new(features, json_string("term")); /* every message carries it */
    }
    if (n->transfer_ok) {
        json_array_append_new(features, json_string("transfer"));
    }
    json_object_set_new(reply, "features", features);
    szd_reply_json(c->req, 200, reply, ns->revision);
}

static void r_node_get(szd_call *c)
{
    szd_node *n = node_arg(c);
    if (!n) {
        return;
    }
    json_t *j = szd_node_json(c->ns, n, true);
    json_object_set_new(j, "revision", json_integer((json_int_t)c->ns->revision));
    szd_reply_json(c->req, 200, j, c->ns->revision);
}

/* A drain's optional body {"reason": "..."} (empty: no body). False after replying 400;
 * reason (SZD_DRAIN_REASON_MAX + 1 bytes) gets the reason or "". */
static bool drain_body(szd_call *c, char *reason, json_t **bodyp)
{
    reason[0] = '\0';
    *bodyp = NULL;
    if (evbuffer_get_length(evhttp_request_get_input_buffer(c->req)) == 0) {
        return true;
    }
    json_t *body = szd_read_body(c->req);
    if (!body) {
        return false;
    }
    *bodyp = body;
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v)
    {
        if (strcmp(k, "reason") != 0 && strcmp(k, "zone") != 0) {
            szd_reply_error(c->req, SHARDZ_EINVAL, "unknown field '%s'", k);
            return false;
        }
    }
    v = json_object_get(body, "reason");
    const char *r = v ? json_string_value(v) : "";
    size_t len = r ? strlen(r) : 0;
    bool printable = r != NULL;
    for (size_t i = 0; printable && i < len; i++) {
        printable = (unsigned char)r[i] >= 0x20 && r[i] != 0x7f;
    }
    if (!printable || len > SZD_DRAIN_REASON_MAX) {
        szd_reply_error(c->req, SHARDZ_EINVAL,
                        "reason must be a string of at most %d printable bytes",
                        SZD_DRAIN_REASON_MAX);
        return false;
    }
    memcpy(reason, r, len + 1);
    return true;
}

static void node_drain(szd_call *c, bool drain)
{
    szd_node *n = node_arg(c);
    char reason[SZD_DRAIN_REASON_MAX + 1];
    json_t *body = NULL;
    if (!n || !drain_body(c, reason, &body)) {
        json_decref(body);
        return;
    }
    json_decref(body);
    if (n->state == SZD_NODE_LEFT) {
        szd_reply_error(c->req, SHARDZ_ECONFLICT, "node '%s' has left", n->id);
        return;
    }
    int rc = szd_nodes_drain(c->ns, &n, 1, drain, reason[0] ? reason : NULL);
    if (rc) {
        szd_reply_error(c->req, rc, "could not record it: %s", shardz_strerror(rc));
        return;
    }
    szd_reply_json(c->req, drain ? 202 : 200, szd_node_json(c->ns, n, false), c->ns->revision);
}

static void r_node_drain(szd_call *c)
{
    node_drain(c, true);
}

static void r_node_undrain(szd_call *c)
{
    node_drain(c, false);
}

/* POST /v1/namespaces/{ns}/drain {"zone": Z, "reason": R}: every node of zone Z (not left) is
 * drained in one write; its replicas move away through the drain gate. */
static void r_zone_drain(szd_call *c)
{
    char reason[SZD_DRAIN_REASON_MAX + 1];
    json_t *body = NULL;
    szd_node **nodes = NULL;
    if (!drain_body(c, reason, &body)) {
        goto out;
    }
    const char *zone = json_string_value(json_object_get(body, "zone"));
    if (!zone || !szd_valid_id(zone)) {
        szd_reply_error(c->req, SHARDZ_EINVAL, "zone must be a zone name");
        goto out;
    }
    nodes = szd_xcalloc(c->ns->nnodes ? c->ns->nnodes : 1, sizeof *nodes);
    size_t n = 0;
    for (uint32_t i = 0; i < c->ns->nnodes; i++) {
        if (strcmp(c->ns->nodes[i]->zone, zone) == 0 && c->ns->nodes[i]->state != SZD_NODE_LEFT) {
            nodes[n++] = c->ns->nodes[i];
        }
    }
    if (n == 0) {
        szd_reply_error(c->req, SHARDZ_ENOENT, "no node in zone '%s' in namespace '%s'", zone,
                        c->ns->cfg.name);
        goto out;
    }
    int rc = szd_nodes_drain(c->ns, nodes, n, true, reason[0] ? reason : NULL);
    if (rc) {
        szd_reply_error(c->req, rc, "could not record it: %s", shardz_strerror(rc));
        goto out;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(list, json_string(nodes[i]->id));
    }
    szd_reply_json(c->req, 202,
                   json_pack("{s:s, s:o, s:I}", "zone", zone, "drained", list, "revision",
                             (json_int_t)c->ns->revision),
                   c->ns->revision);
out:
    free(nodes);
    json_decref(body);
}

static void r_stoppable(szd_call *c)
{
    szd_api_stoppable(c->d, c->req);
}

static void r_node_leave(szd_call *c)
{
    szd_node *n = node_arg(c);
    if (!n) {
        return;
    }
    int rc = szd_node_leave(c->ns, n);
    if (rc) {
        szd_reply_error(c->req, rc, "could not record the leave: %s", shardz_strerror(rc));
        return;
    }
    szd_reply_json(c->req, 202, szd_node_json(c->ns, n, false), c->ns->revision);
}

static void r_parts(szd_call *c)
{
    json_t *list = json_array();
    for (uint32_t i = 0; i < c->ns->nparts; i++) {
        json_array_append_new(list, szd_part_json(c->ns, &c->ns->parts[i]));
    }
    reply_list(c->req, c->ns, "partitions", list);
}

/* Strict hash namespaces are not re-partitioned in place (issue 15): adding or removing a
 * partition re-deals hash slots between partitions, and so keys between owners, at once, while
 * the workers (which serve partitions, not slots) cannot be told to stop serving the moved
 * slots first: two owners of those keys. Refused (409 ECONFLICT, nothing changes) with the
 * documented path (PROTOCOL.md 3). The first partitions of an empty namespace move no key. */
static bool strict_hash_repartition(szd_call *c)
{
    if (!c->ns->cfg.strict || strcmp(c->ns->cfg.sharder, "hash") != 0 || c->ns->nparts == 0) {
        return false;
    }
    szd_reply_error(c->req, SHARDZ_ECONFLICT,
                    "namespace '%s' is strict and hashed: adding or removing partitions would "
                    "move hash slots between owners without break-before-make; create a new "
                    "namespace with the partition count you want and move the data to it "
                    "(docs/PROTOCOL.md section 3)",
                    c->ns->cfg.name);
    return true;
}

static void r_parts_add(szd_call *c)
{
    char err[512] = "";
    json_t *body = szd_read_body_max(c->req, SZD_MAX_BULK_BODY);
    if (!body) {
        return;
    }
    if (strict_hash_repartition(c)) {
        json_decref(body);
        return;
    }
    int rc = szd_range_parts_change(c->ns, NULL, err, sizeof err);
    if (rc == 0) {
        rc = szd_parts_add(c->ns, json_object_get(body, "ids"), err, sizeof err);
    }
    json_decref(body);
    if (rc) {
        szd_reply_error(c->req, rc, "%s", err);
        return;
    }
    szd_reply_json(c->req, 201, szd_ns_summary_json(c->ns), c->ns->revision);
}

static void r_part_get(szd_call *c)
{
    szd_part *p = part_arg(c);
    if (!p) {
        return;
    }
    json_t *j = szd_part_json(c->ns, p);
    json_object_set_new(j, "revision", json_integer((json_int_t)c->ns->revision));
    szd_reply_json(c->req, 200, j, c->ns->revision);
}

static void r_part_history(szd_call *c)
{
    szd_part *p = part_arg(c);
    if (!p) {
        return;
    }
    szd_reply_json(c->req, 200,
                   json_pack("{s:s, s:o, s:I}", "partition", p->id, "history", szd_history_json(p),
                             "revision", (json_int_t)c->ns->revision),
                   c->ns->revision);
}

static void r_part_delete(szd_call *c)
{
    char err[512] = "";
    szd_part *p = part_arg(c);
    if (!p || strict_hash_repartition(c)) {
        return;
    }
    int rc = szd_range_parts_change(c->ns, p->id, err, sizeof err);
    if (rc) {
        szd_reply_error(c->req, rc, "%s", err);
        return;
    }
    rc = szd_part_remove(c->ns, p);
    if (rc) {
        szd_reply_error(c->req, rc, "could not remove the partition: %s", shardz_strerror(rc));
        return;
    }
    szd_reply_json(c->req, 200, json_pack("{s:I}", "revision", (json_int_t)c->ns->revision),
                   c->ns->revision);
}

static bool json_uint(json_t *v, unsigned max, unsigned *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        return false;
    }
    *out = (unsigned)json_integer_value(v);
    return true;
}

static void handle_part_move(szd_ns *ns, struct evhttp_request *req, szd_part *p)
{
    char err[512] = "";
    json_t *body = szd_read_body(req);
    if (!body) {
        return;
    }
    unsigned slot;
    const char *to = json_string_value(json_object_get(body, "to"));
    if (!json_uint(json_object_get(body, "slot"), SHARDZ_MAX_REPLICAS, &slot) || !to) {
        json_decref(body);
        szd_reply_error(req, SHARDZ_EINVAL,
                        "the body needs \"slot\" (an integer) and \"to\" "
                        "(a node id)");
        return;
    }
    szd_node *n = szd_node_find(ns, to);
    if (!n) {
        szd_reply_error(req, SHARDZ_ENOENT, "no node '%s' in namespace '%s'", to, ns->cfg.name);
        json_decref(body);
        return;
    }
    int rc = szd_operator_move(ns, p, slot, n, err, sizeof err);
    json_decref(body);
    if (rc == 0) {
        rc = szd_ns_flush(ns, false, err, sizeof err, NULL); /* 2xx only once durable */
    }
    if (rc) {
        szd_reply_error(req, rc, "%s", err);
        return;
    }
    szd_reply_json(req, 202, szd_part_json(ns, p), ns->revision);
}

static void r_part_move(szd_call *c)
{
    szd_part *p = part_arg(c);
    if (p) {
        handle_part_move(c->ns, c->req, p);
    }
}

static void r_part_split(szd_call *c)
{
    szd_part *p = part_arg(c);
    if (p) {
        szd_range_api_split(c->ns, c->req, p->id);
    }
}

static void handle_lookup(szd_ns *ns, struct evhttp_request *req, const struct evkeyvalq *q)
{
    const char *key = evhttp_find_header(q, "key");
    if (!key) {
        szd_reply_error(req, SHARDZ_EINVAL, "the query parameter key is required");
        return;
    }
    const char *pid = NULL;
    int rc = shardz_sharder_partition_for_key(ns->sh, key, strlen(key), &pid);
    if (rc) {
        szd_reply_error(req, rc,
                        rc == SHARDZ_ENOTSUP ? "namespace '%s' is not a hash or range namespace"
                                             : "no partition for the key in '%s'",
                        ns->cfg.name);
        return;
    }
    szd_part *p = szd_part_find(ns, pid);
    if (!p) {
        szd_reply_error(req, SHARDZ_ENOENT, "partition '%s' is unknown", pid);
        return;
    }
    json_t *j = szd_part_json(ns, p);
    json_object_set_new(j, "key", json_string(key));
    if (!szd_is_range(ns)) {
        json_object_set_new(j, "slot",
                            json_integer(shardz_key_slot(key, strlen(key), ns->cfg.slots)));
    }
    json_object_set_new(j, "revision", json_integer((json_int_t)ns->revision));
    szd_reply_json(req, 200, j, ns->revision);
}

static void r_lookup(szd_call *c)
{
    handle_lookup(c->ns, c->req, c->q);
}

static void handle_moves(szd_ns *ns, struct evhttp_request *req)
{
    json_t *list = json_array();
    int64_t now = szd_now(ns->d);
    for (uint32_t i = 0; i < ns->nparts; i++) {
        const szd_part *p = &ns->parts[i];
        for (unsigned s = 0; s < p->nrep; s++) {
            const szd_slot *sl = &p->slots[s];
            if (sl->owner < 0 || (sl->owner_state == SZD_R_SERVING && sl->prev < 0)) {
                continue;
            }
            json_array_append_new(
                list,
                json_pack("{s:s, s:i, s:s?, s:s, s:s, s:s, s:s, s:I, s:I}", "partition", p->id,
                          "slot", (int)s, "from", sl->prev >= 0 ? ns->nodes[sl->prev]->id : NULL,
                          "to", ns->nodes[sl->owner]->id, "to_state",
                          szd_rstate_name((szd_rstate)sl->owner_state), "from_state",
                          szd_rstate_name((szd_rstate)sl->prev_state), "reason",
                          shardz_reason_name((shardz_reason)sl->reason), "generation",
                          (json_int_t)sl->generation, "age_ms",
                          (json_int_t)(now - sl->started_ms)));
        }
    }
    json_t *j = json_pack("{s:o, s:o, s:I}", "moves", list, "queued", szd_gate_queue_json(ns),
                          "revision", (json_int_t)ns->revision);
    szd_reply_json(req, 200, j, ns->revision);
}

static void r_moves(szd_call *c)
{
    handle_moves(c->ns, c->req);
}

static void handle_cancel(szd_ns *ns, struct evhttp_request *req, const char *pid,
                          const char *slotstr)
{
    char err[512] = "", *end;
    unsigned long slot = strtoul(slotstr, &end, 10);
    szd_part *p = szd_part_find(ns, pid);
    if (!p) {
        szd_reply_error(req, SHARDZ_ENOENT, "no partition '%s' in namespace '%s'", pid,
                        ns->cfg.name);
        return;
    }
    if (!*slotstr || *end || slot >= SHARDZ_MAX_REPLICAS) {
        szd_reply_error(req, SHARDZ_EINVAL, "the slot must be a number");
        return;
    }
    int rc = szd_cancel_move(ns, p, (unsigned)slot, err, sizeof err);
    if (rc == 0) {
        rc = szd_ns_flush(ns, false, err, sizeof err, NULL); /* 2xx only once durable */
    }
    if (rc) {
        szd_reply_error(req, rc, "%s", err);
        return;
    }
    szd_reply_json(req, 200, szd_part_json(ns, p), ns->revision);
}

static void r_cancel(szd_call *c)
{
    handle_cancel(c->ns, c->req, c->arg[0], c->arg[1]);
}

static void r_merge(szd_call *c)
{
    szd_range_api_merge(c->ns, c->req);
}

/* A plan (dry run) or a rebalance: the placement's, or with ?balancer=load one load round. */
static void plan(szd_call *c, bool apply)
{
    const char *kind = evhttp_find_header(c->q, "balancer");
    if (kind && strcmp(kind, "load") != 0) {
        szd_reply_error(c->req, SHARDZ_EINVAL, "balancer must be \"load\" (or absent)");
        return;
    }
    json_t *j = kind ? szd_balance_json(c->ns, apply) : szd_plan_json(c->ns, apply);
    if (j && kind) {
        szd_range_balance(c->ns, j, apply); /* range namespaces: split hot ranges */
    }
    char err[512] = "";
    int rc = !j ? SHARDZ_ENOMEM : apply ? szd_ns_flush(c->ns, false, err, sizeof err, NULL) : 0;
    if (!j) {
        szd_reply_error(c->req, SHARDZ_ENOMEM, "the placement failed");
    } else if (rc) {
        json_decref(j); /* started, but not durable: no 2xx, and not kept (PROTOCOL.md 8) */
        szd_reply_error(c->req, rc, "%s", err);
    } else {
        szd_reply_json(c->req, 200, j, c->ns->revision);
    }
}

static void r_plan(szd_call *c)
{
    plan(c, false);
}

static void r_rebalance(szd_call *c)
{
    if (c->ns->cfg.frozen) {
        szd_reply_error(c->req, SHARDZ_EBUSY,
                        "namespace '%s' is frozen: no rebalance until it is thawed (PATCH "
                        "{\"frozen\": false}); operator moves still run",
                        c->ns->cfg.name);
        return;
    }
    plan(c, true);
}

static void r_state(szd_call *c)
{
    reply_state(c->req, c->ns);
}

static void r_watch(szd_call *c)
{
    handle_watch(c->ns, c->req, c->q);
}

static void r_tasks(szd_call *c)
{
    szd_range_api_tasks(c->ns, c->req);
}

static void r_events(szd_call *c)
{
    uint64_t since, limit;
    if (!query_u64(c->q, "since", 0, UINT64_MAX, &since) ||
        !query_u64(c->q, "limit", 1000, SZD_EVENTS, &limit) || limit == 0) {
        szd_reply_error(c->req, SHARDZ_EINVAL, "since must be an integer, limit in [1, %d]",
                        SZD_EVENTS);
    } else {
        szd_reply_json(c->req, 200, szd_events_json(c->ns, since, (size_t)limit), c->ns->revision);
    }
}

/* The one description of the HTTP API (docs/PROTOCOL.md; tests/integration/test_routes.py
 * checks the two agree). {ns} is resolved to a namespace before the handler runs. */
static const route routes[] = {
    {EVHTTP_REQ_GET, "/healthz", R_LOCAL, r_healthz},
    {EVHTTP_REQ_GET, "/metrics", R_LOCAL, r_metrics},
    {EVHTTP_REQ_GET, "/v1/status", R_LOCAL, r_status},
    {EVHTTP_REQ_GET, "/v1/namespaces", R_READ, r_ns_list},
    {EVHTTP_REQ_POST, "/v1/namespaces", R_WRITE, r_ns_create},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}", R_READ, r_ns_get},
    {EVHTTP_REQ_DELETE, "/v1/namespaces/{ns}", R_WRITE, r_ns_delete},
    {EVHTTP_REQ_PATCH, "/v1/namespaces/{ns}", R_WRITE, r_ns_patch},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/nodes", R_READ, r_nodes},
    {EVHTTP_REQ_POST, "/v1/namespaces/{ns}/nodes", R_WRITE, r_node_register},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/nodes/{id}", R_READ, r_node_get},
    {EVHTTP_REQ_POST, "/v1/namespaces/{ns}/nodes/{id}/drain", R_WRITE, r_node_drain},
    {EVHTTP_REQ_POST, "/v1/namespaces/{ns}/nodes/{id}/undrain", R_WRITE, r_node_undrain},
    {EVHTTP_REQ_POST, "/v1/namespaces/{ns}/nodes/{id}/leave", R_WRITE, r_node_leave},
    {EVHTTP_REQ_POST, "/v1/namespaces/{ns}/drain", R_WRITE, r_zone_drain},
    {EVHTTP_REQ_POST, "/v1/stoppable", R_WRITE, r_stoppable}, /* the leader answers */
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/partitions", R_READ, r_parts},
    {EVHTTP_REQ_POST, "/v1/namespaces/{ns}/partitions", R_WRITE, r_parts_add},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/partitions/{pid}", R_READ, r_part_get},
    {EVHTTP_REQ_DELETE, "/v1/namespaces/{ns}/partitions/{pid}", R_WRITE, r_part_delete},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/partitions/{pid}/history", R_READ, r_part_history},
    {EVHTTP_REQ_POST, "/v1/namespaces/{ns}/partitions/{pid}/move", R_WRITE, r_part_move},
    {EVHTTP_REQ_POST, "/v1/namespaces/{ns}/partitions/{pid}/split", R_WRITE, r_part_split},
    {EVHTTP_REQ_DELETE, "/v1/namespaces/{ns}/moves/{pid}/{slot}", R_WRITE, r_cancel},
    {EVHTTP_REQ_POST, "/v1/namespaces/{ns}/merge", R_WRITE, r_merge},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/plan", R_READ, r_plan},
    {EVHTTP_REQ_POST, "/v1/namespaces/{ns}/rebalance", R_WRITE, r_rebalance},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/state", R_READ, r_state},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/watch", R_READ, r_watch},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/lookup", R_READ, r_lookup},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/moves", R_READ, r_moves},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/tasks", R_READ, r_tasks},
    {EVHTTP_REQ_GET, "/v1/namespaces/{ns}/events", R_READ, r_events},
};

void szd_api_print_routes(FILE *f)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        fprintf(f, "%s %s %s\n", method_name(routes[i].method), routes[i].pattern,
                kind_name(routes[i].kind));
    }
}

/* Matches path segments against a pattern; captures {ns} into *ns_name and the others into
 * args. True on a match. */
static bool match(const char *pattern, char **seg, int nseg, const char **ns_name,
                  const char **args)
{
    char pat[128];
    snprintf(pat, sizeof pat, "%s", pattern);
    int k = 0, na = 0;
    for (char *save = NULL, *t = strtok_r(pat, "/", &save); t;
         t = strtok_r(NULL, "/", &save), k++) {
        if (k >= nseg) {
            return false;
        }
        if (t[0] == '{') {
            if (strcmp(t, "{ns}") == 0) {
                *ns_name = seg[k];
            } else if (na < 2) {
                args[na++] = seg[k];
            }
        } else if (strcmp(t, seg[k]) != 0) {
            return false;
        }
    }
    return k == nseg;
}

static bool authorized(const szd *d, struct evhttp_request *req)
{
    if (!d->cfg.secret[0]) {
        return true;
    }
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    return shardz__bearer_ok(d->cfg.secret, h);
}

void szd_api_handle(struct evhttp_request *req, void *arg)
{
    szd *d = arg;
    szd_conn_request(d, req); /* busy (never evicted) until answered */
    int method = evhttp_request_get_command(req);
    const char *uri = evhttp_request_get_uri(req);
    struct evhttp_uri *parsed = evhttp_uri_parse(uri);
    if (!parsed) {
        szd_reply_error(req, SHARDZ_EINVAL, "malformed request URI");
        return;
    }
    const char *path = evhttp_uri_get_path(parsed);
    const char *query = evhttp_uri_get_query(parsed);
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (query && evhttp_parse_query_str(query, &q) != 0) {
        szd_reply_error(req, SHARDZ_EINVAL, "malformed query string");
        goto out;
    }
    if (!path || !*path) {
        path = "/";
    }
#ifdef SHARDZ_HAVE_WEB
    /* The dashboard: static files, open like /healthz (its API calls carry the secret). */
    if (method == EVHTTP_REQ_GET && strncmp(path, "/v1/", 4) != 0 &&
        strcmp(path, "/metrics") != 0 && strcmp(path, "/healthz") != 0) {
        const struct shardz_web_asset *a =
            shardz_web_asset_find(strcmp(path, "/") == 0 ? "/index.html" : path);
        if (a) {
            struct evbuffer *buf = evbuffer_new();
            if (buf) {
                evbuffer_add_reference(buf, a->data, a->size, NULL, NULL);
                struct evkeyvalq *h = evhttp_request_get_output_headers(req);
                evhttp_add_header(h, "Content-Type", a->content_type);
                evhttp_add_header(h, "Cache-Control", "no-cache");
                evhttp_send_reply(req, 200, "OK", buf);
                evbuffer_free(buf);
            } else {
                szd_reply_error(req, SHARDZ_ENOMEM, "out of memory");
            }
            goto out;
        }
    }
#endif
    char copy[1024];
    if (strlen(path) >= sizeof copy) {
        szd_reply_error(req, SHARDZ_ETOOBIG, "path too long");
        goto out;
    }
    snprintf(copy, sizeof copy, "%s", path);
    char *seg[MAX_SEGS];
    int nseg = 0;
    for (char *save = NULL, *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
        if (nseg == MAX_SEGS) {
            szd_reply_error(req, SHARDZ_ENOENT, "no such route: %s", path);
            goto out;
        }
        seg[nseg++] = t;
    }
    /* the route: its path, then its method */
    const route *hit = NULL;
    bool path_known = false;
    szd_call c = {.d = d, .req = req, .q = &q};
    const char *ns_name = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !hit; i++) {
        const char *nsn = NULL, *args[2] = {NULL, NULL};
        if (!match(routes[i].pattern, seg, nseg, &nsn, args)) {
            continue;
        }
        path_known = true;
        if ((int)routes[i].method != method) {
            continue;
        }
        hit = &routes[i];
        ns_name = nsn;
        c.arg[0] = args[0];
        c.arg[1] = args[1];
    }
    if (!hit) {
        if (path_known) {
            szd_reply_error(req, SHARDZ_EINVAL, "method not allowed on %s", path);
        } else {
            szd_reply_error(req, SHARDZ_ENOENT, "no such route: %s", path);
        }
        goto out;
    }
    /* /healthz is open (load balancers probe it); everything else wants the secret */
    if (strcmp(hit->pattern, "/healthz") != 0 && !authorized(d, req)) {
        json_t *body =
            json_pack("{s:s, s:s}", "code", "EPROTO", "message", "bad or missing secret");
        szd_reply_json(req, 401, body, 0);
        goto out;
    }
    /* Several coordinators: a follower answers reads from its cache and sends writes to the
     * leader; a leader whose lease is no longer known fresh steps down first. */
    if (d->ha.role != SZD_ROLE_SOLO && hit->kind != R_LOCAL && !szd_acting(d)) {
        if (hit->kind == R_WRITE) {
            szd_ha_forward(d, req);
            goto out;
        }
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "X-Shardz-Role", "follower");
        if (d->ha.cache_stale) {
            evhttp_add_header(h, "X-Shardz-Stale", "true");
        }
    }
    if (ns_name) {
        c.ns = szd_ns_find(d, ns_name);
        if (!c.ns) {
            szd_reply_error(req, SHARDZ_ENOENT, "no namespace '%s'", ns_name);
            goto out;
        }
    }
    bool pending = c.ns && c.ns->reload; /* an earlier failure's: the work pass retries it */
    hit->handler(&c);
    /* a change the caller was refused for, because its write failed, is not kept: the namespace
     * is read again from the store (found again by name: the handler may have deleted it) */
    szd_ns *after = ns_name ? szd_ns_find(d, ns_name) : NULL;
    if (after && after->reload && !pending) {
        (void)szd_ns_reload(after);
    }
out:
    evhttp_clear_headers(&q);
    evhttp_uri_free(parsed);
}
