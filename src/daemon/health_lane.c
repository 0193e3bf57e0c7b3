/* The health lane (health_lane.h): one thread with its own libevent base that pings every
 * node of every namespace on a connection of its own, runs each node's failure detector
 * (core/failure.c) and reports replies and verdicts to the loop. Nothing but pings runs on
 * this thread. Lane thread, except the szd_hl_* command calls and szd_hl_drain (loop thread),
 * which only touch the two queues under the mutex. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/clock.h"
#include "daemon/core/node_spec.h"
#include "daemon/oom.h"
#include "daemon/health_lane.h"
#include "daemon/log.h"
#include "daemon/wire.h"

#define HL_MAX_REPLY (1024 * 1024) /* a ping reply larger than this is refused */
#define HL_NAME_MAX 63

typedef enum {
    CMD_NS_SET = 0,
    CMD_NS_DEL,
    CMD_NS_REVISION,
    CMD_NODE_SET,
    CMD_NODE_DEL,
    CMD_NODE_GRANT,
    CMD_HEARD_ALL,
    CMD_STOP,
} cmd_op;

typedef struct hl_cmd {
    struct hl_cmd *next;
    cmd_op op;
    uint64_t key;
    char name[HL_NAME_MAX + 1];
    char node[SHARDZ_MAX_ID + 1];
    char address[256];
    int64_t interval_ms, dead_after_ms, lease_ms;
    bool strict;
    uint64_t revision;
    int64_t stamp;
} hl_cmd;

struct hl_ns;

typedef struct hl_node {
    struct hl_ns *ns;
    char id[SHARDZ_MAX_ID + 1];
    char address[256]; /* host:port, also the Host header */
    char host[256];
    uint16_t port;
    szd_fd fd;                      /* the failure detector */
    struct evhttp_connection *conn; /* pings only */
    struct hl_ping *ping;           /* the ping in flight (owned), or NULL */
    int64_t stamp; /* the worker's clock in its latest reply or registration (-1: it sends
                    * none): a lease-granting ping carries it (lease_stamp, PROTOCOL.md 6) */
} hl_node;

typedef struct hl_ping {
    hl_node *node;
    int64_t sent_ms;
} hl_ping;

typedef struct hl_ns {
    struct szd_hl *hl;
    uint64_t key;
    char name[HL_NAME_MAX + 1];
    szd_fd_config cfg;
    int64_t lease_ms;
    uint64_t revision;
    bool acting;     /* the last tick found the coordinator acting */
    int64_t tick_ms; /* when the last tick ran */
    struct event *tick;
    hl_node **nodes;
    size_t nnodes, cap;
} hl_ns;

struct szd_hl {
    pthread_t thread;
    bool started;
    struct event_base *base;
    struct event *cmd_ev;
    int cmd_pipe[2], rep_pipe[2];
    pthread_mutex_t mu;
    hl_cmd *cmd_head, *cmd_tail;        /* under mu */
    szd_hl_report *rep_head, *rep_tail; /* under mu */
    bool rep_signalled;                 /* under mu: a byte waits in rep_pipe */
    _Atomic int64_t acting_until_ms;
    _Atomic int64_t term;       /* the leadership the pings carry (szd_hl_set_acting_until) */
    _Atomic int64_t gap_max_ms; /* the longest interval between two rounds of pings of a
                                 * namespace since szd_hl_ping_gap_max last read it */
    char secret[256];
    int64_t (*clock_ms)(void);
    int log_level;
    /* lane thread only */
    hl_ns **ns;
    size_t nns, capns;
};

static int64_t lane_now(const szd_hl *hl)
{
    if (hl->clock_ms) {
        return hl->clock_ms();
    }
    return shardz__boot_ms(); /* CLOCK_BOOTTIME: it counts a suspend too */
}

static void wake(int fd)
{
    char b = 1;
    while (write(fd, &b, 1) < 0 && errno == EINTR) {
        ;
    }
    /* EAGAIN: the pipe is full, so the reader is awake already */
}

static void drain_pipe(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
        ;
    }
}

/* ---- reports (lane -> loop) ---------------------------------------------------------- */

void szd_hl_report_free(szd_hl_report *r)
{
    if (!r) {
        return;
    }
    json_decref(r->body);
    free(r);
}

static szd_hl_report *report_new(const hl_node *n, szd_hl_kind kind, int64_t now)
{
    szd_hl_report *r = szd_xcalloc(1, sizeof *r);
    r->kind = kind;
    r->ns_key = n->ns->key;
    snprintf(r->node, sizeof r->node, "%s", n->id);
    r->at_ms = now;
    return r;
}

static void report_post(szd_hl *hl, szd_hl_report *r)
{
    pthread_mutex_lock(&hl->mu);
    if (hl->rep_tail) {
        hl->rep_tail->next = r;
    } else {
        hl->rep_head = r;
    }
    hl->rep_tail = r;
    bool signal = !hl->rep_signalled;
    hl->rep_signalled = true;
    pthread_mutex_unlock(&hl->mu);
    if (signal) {
        wake(hl->rep_pipe[1]);
    }
}

int szd_hl_report_fd(const szd_hl *hl)
{
    return hl->rep_pipe[0];
}

szd_hl_report *szd_hl_drain(szd_hl *hl)
{
    drain_pipe(hl->rep_pipe[0]);
    pthread_mutex_lock(&hl->mu);
    szd_hl_report *r = hl->rep_head;
    hl->rep_head = hl->rep_tail = NULL;
    hl->rep_signalled = false;
    pthread_mutex_unlock(&hl->mu);
    return r;
}

/* ---- pings (lane thread) ------------------------------------------------------------- */

static void node_close(hl_node *n)
{
    /* freeing a connection drops its pending request without calling back */
    if (n->conn) {
        evhttp_connection_free(n->conn);
    }
    n->conn = NULL;
    free(n->ping);
    n->ping = NULL;
}

/* Closes the node's connection while it stays: a ping in flight counts as failed (its reach,
 * when it granted a lease, still counts). */
static void node_reset(hl_node *n, int64_t now)
{
    node_close(n);
    if (n->fd.inflight) {
        szd_fd_reply(&n->fd, false, now);
    }
}

static void on_ping(struct evhttp_request *req, void *arg)
{
    hl_ping *p = arg;
    hl_node *n = p->node;
    szd_hl *hl = n->ns->hl;
    int64_t now = lane_now(hl);
    int64_t sent = p->sent_ms;
    free(p);
    n->ping = NULL;
    int code;
    json_t *j = szd_reply_object(req, &code, HL_MAX_REPLY, false);
    const char *who = j ? json_string_value(json_object_get(j, "node")) : NULL;
    bool ok = who && strcmp(who, n->id) == 0;
    json_t *stamp = ok ? json_object_get(j, "stamp") : NULL;
    if (json_is_integer(stamp) && json_integer_value(stamp) > n->stamp) {
        n->stamp = json_integer_value(stamp);
    }
    bool revived = szd_fd_reply(&n->fd, ok, now);
    szd_hl_report *r = report_new(n, ok ? SZD_HL_PING_OK : SZD_HL_PING_FAILED, now);
    if (ok) {
        r->body = j;
        r->rtt_ms = now - sent;
        r->revived = revived;
    } else {
        json_decref(j);
        r->status = code;
    }
    report_post(hl, r);
}

/* Sends one ping; false when it could not leave (counted as a miss by the caller). */
static bool send_ping(hl_node *n, bool grants, int64_t now)
{
    hl_ns *ns = n->ns;
    szd_hl *hl = ns->hl;
    if (!n->conn) {
        n->conn = evhttp_connection_base_new(hl->base, NULL, n->host, n->port);
        if (!n->conn) {
            return false;
        }
        int64_t ms = ns->cfg.interval_ms;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
        evhttp_connection_set_timeout_tv(n->conn, &tv);
        evhttp_connection_set_retries(n->conn, 0);
    }
    hl_ping *p = szd_xcalloc(1, sizeof *p);
    p->node = n;
    p->sent_ms = now;
    struct evhttp_request *req = evhttp_request_new(on_ping, p);
    if (!req) {
        free(p);
        return false;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", n->address);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (hl->secret[0]) {
        char auth[300];
        snprintf(auth, sizeof auth, "Bearer %s", hl->secret);
        evhttp_add_header(h, "Authorization", auth);
    }
    /* namespace names and node ids are plain ([A-Za-z0-9._:-]): nothing to escape; besides
     * them, the fixed text and five integers take 180 bytes at most */
    char body[HL_NAME_MAX + SHARDZ_MAX_ID + 256];
    int len = snprintf(
        body, sizeof body, "{\"namespace\":\"%s\",\"node\":\"%s\",\"revision\":%llu,\"term\":%lld",
        ns->name, n->id, (unsigned long long)ns->revision, (long long)atomic_load(&hl->term));
    if (grants) {
        len += snprintf(body + len, sizeof body - (size_t)len, ",\"lease_ms\":%lld",
                        (long long)ns->lease_ms);
    }
    if (grants && n->stamp >= 0) {
        len += snprintf(body + len, sizeof body - (size_t)len, ",\"lease_stamp\":%lld",
                        (long long)n->stamp);
    }
    len += snprintf(body + len, sizeof body - (size_t)len, "}");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, (size_t)len);
    if (evhttp_make_request(n->conn, req, EVHTTP_REQ_POST, "/shardz/v1/ping") != 0) {
        free(p); /* libevent freed the request */
        return false;
    }
    n->ping = p;
    return true;
}

/* Every node of ns heard from now (the coordinator starts acting, or takes over). */
static void heard_all(hl_ns *ns, int64_t now)
{
    for (size_t k = 0; k < ns->nnodes; k++) {
        hl_node *n = ns->nodes[k];
        bool inflight = n->fd.inflight;
        int64_t reach = n->fd.reach_ms;
        szd_fd_init(&n->fd, now);
        n->fd.inflight = inflight; /* its reply is still coming */
        n->fd.reach_ms = reach;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hl_ns *ns = arg;
    szd_hl *hl = ns->hl;
    int64_t now = lane_now(hl);
    if (now >= atomic_load(&hl->acting_until_ms)) {
        ns->acting = false; /* a follower, or a leader whose lease is not known fresh */
        return;
    }
    if (!ns->acting) {
        /* it starts acting: silence while it did not is nobody's fault */
        heard_all(ns, now);
        ns->acting = true;
    } else if (now - ns->tick_ms > atomic_load(&hl->gap_max_ms)) {
        /* the lane's own regularity: a worker that answers is pinged this often */
        atomic_store(&hl->gap_max_ms, now - ns->tick_ms);
    }
    ns->tick_ms = now;
    for (size_t i = 0; i < ns->nnodes; i++) {
        hl_node *n = ns->nodes[i];
        szd_fd_out out;
        szd_fd_tick(&n->fd, &ns->cfg, now, &out);
        if (out.changed) {
            szd_log_at(hl->log_level, SZD_WARN,
                       "msg=\"node %s\" ns=%s node=%s silent_ms=%lld lane=health",
                       szd_fd_verdict_name(out.verdict), ns->name, n->id,
                       (long long)(now - n->fd.last_ok_ms));
            szd_hl_report *r = report_new(n, SZD_HL_VERDICT, now);
            r->verdict = out.verdict;
            r->lease_from_ms = out.lease_from_ms;
            report_post(hl, r);
        }
        if (!out.ping) {
            continue;
        }
        if (send_ping(n, out.grants, now)) {
            szd_fd_sent(&n->fd, &ns->cfg, now, out.grants, n->stamp >= 0);
        } else {
            szd_fd_reply(&n->fd, false, now);
            szd_hl_report *r = report_new(n, SZD_HL_PING_FAILED, now);
            report_post(hl, r);
        }
    }
}

/* ---- commands (applied on the lane thread) ------------------------------------------- */

static hl_ns *ns_find(szd_hl *hl, uint64_t key, size_t *at)
{
    for (size_t i = 0; i < hl->nns; i++) {
        if (hl->ns[i]->key == key) {
            if (at) {
                *at = i;
            }
            return hl->ns[i];
        }
    }
    return NULL;
}

static hl_node *node_find(hl_ns *ns, const char *id, size_t *at)
{
    for (size_t i = 0; i < ns->nnodes; i++) {
        if (strcmp(ns->nodes[i]->id, id) == 0) {
            if (at) {
                *at = i;
            }
            return ns->nodes[i];
        }
    }
    return NULL;
}

static void ns_free(hl_ns *ns)
{
    for (size_t i = 0; i < ns->nnodes; i++) {
        node_close(ns->nodes[i]);
        free(ns->nodes[i]);
    }
    free(ns->nodes);
    if (ns->tick) {
        event_free(ns->tick);
    }
    free(ns);
}

static void apply_ns_set(szd_hl *hl, const hl_cmd *c)
{
    hl_ns *ns = ns_find(hl, c->key, NULL);
    if (!ns) {
        ns = szd_xcalloc(1, sizeof *ns);
        ns->hl = hl;
        ns->key = c->key;
        ns->tick = event_new(hl->base, -1, EV_PERSIST, on_tick, ns);
        if (!ns->tick) {
            szd_oom();
        }
        if (hl->nns == hl->capns) {
            hl->capns = hl->capns ? 2 * hl->capns : 8;
            hl_ns **nn = realloc(hl->ns, hl->capns * sizeof *nn);
            if (!nn) {
                szd_oom();
            }
            hl->ns = nn;
        }
        hl->ns[hl->nns++] = ns;
    }
    snprintf(ns->name, sizeof ns->name, "%s", c->name);
    bool retime = ns->cfg.interval_ms != c->interval_ms;
    ns->cfg = (szd_fd_config){
        .interval_ms = c->interval_ms, .dead_after_ms = c->dead_after_ms, .strict = c->strict};
    ns->lease_ms = c->lease_ms;
    if (retime) {
        struct timeval tv = {(time_t)(c->interval_ms / 1000),
                             (suseconds_t)((c->interval_ms % 1000) * 1000)};
        event_add(ns->tick, &tv);
        /* connections time out after the interval: new ones take the new value */
        for (size_t i = 0; i < ns->nnodes; i++) {
            node_reset(ns->nodes[i], lane_now(hl));
        }
    }
}

static void apply_node_set(szd_hl *hl, hl_ns *ns, const hl_cmd *c)
{
    int64_t now = lane_now(hl);
    hl_node *n = node_find(ns, c->node, NULL);
    if (!n) {
        n = szd_xcalloc(1, sizeof *n);
        n->ns = ns;
        snprintf(n->id, sizeof n->id, "%s", c->node);
        szd_fd_init(&n->fd, now);
        if (ns->nnodes == ns->cap) {
            ns->cap = ns->cap ? 2 * ns->cap : 16;
            hl_node **nn = realloc(ns->nodes, ns->cap * sizeof *nn);
            if (!nn) {
                szd_oom();
            }
            ns->nodes = nn;
        }
        ns->nodes[ns->nnodes++] = n;
    } else {
        szd_fd_heard(&n->fd, now);
    }
    n->stamp = c->stamp; /* its registration: maybe a new process, with a clock of its own */
    if (strcmp(n->address, c->address) != 0) {
        node_reset(n, now); /* a ping in flight to the old address counts as failed */
        snprintf(n->address, sizeof n->address, "%s", c->address);
        if (szd_parse_address(n->address, n->host, sizeof n->host, &n->port) != 0) {
            n->host[0] = 0; /* the loop checked it: cannot happen */
        }
    }
}

static void apply(szd_hl *hl, const hl_cmd *c)
{
    size_t at;
    hl_ns *ns = c->op == CMD_NS_SET || c->op == CMD_HEARD_ALL || c->op == CMD_STOP
                    ? NULL
                    : ns_find(hl, c->key, &at);
    switch (c->op) {
    case CMD_NS_SET:
        apply_ns_set(hl, c);
        break;
    case CMD_NS_DEL:
        if (ns) {
            hl->ns[at] = hl->ns[--hl->nns];
            ns_free(ns);
        }
        break;
    case CMD_NS_REVISION:
        if (ns) {
            ns->revision = c->revision;
        }
        break;
    case CMD_NODE_SET:
        if (ns) {
            apply_node_set(hl, ns, c);
        }
        break;
    case CMD_NODE_DEL: {
        hl_node *n = ns ? node_find(ns, c->node, &at) : NULL;
        if (n) {
            node_close(n);
            free(n);
            ns->nodes[at] = ns->nodes[--ns->nnodes];
        }
        break;
    }
    case CMD_NODE_GRANT: {
        hl_node *n = ns ? node_find(ns, c->node, NULL) : NULL;
        if (n) {
            szd_fd_allow_grant(&n->fd);
        }
        break;
    }
    case CMD_HEARD_ALL:
        for (size_t i = 0; i < hl->nns; i++) {
            heard_all(hl->ns[i], lane_now(hl));
        }
        break;
    case CMD_STOP:
        event_base_loopbreak(hl->base);
        break;
    }
}

static void on_cmd(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd_hl *hl = arg;
    drain_pipe(hl->cmd_pipe[0]);
    pthread_mutex_lock(&hl->mu);
    hl_cmd *c = hl->cmd_head;
    hl->cmd_head = hl->cmd_tail = NULL;
    pthread_mutex_unlock(&hl->mu);
    while (c) {
        hl_cmd *next = c->next;
        apply(hl, c);
        free(c);
        c = next;
    }
}

static void post(szd_hl *hl, hl_cmd *c)
{
    pthread_mutex_lock(&hl->mu);
    bool was_empty = hl->cmd_head == NULL;
    if (hl->cmd_tail) {
        hl->cmd_tail->next = c;
    } else {
        hl->cmd_head = c;
    }
    hl->cmd_tail = c;
    pthread_mutex_unlock(&hl->mu);
    if (was_empty) {
        wake(hl->cmd_pipe[1]);
    }
}

static hl_cmd *cmd_new(cmd_op op, uint64_t key, const char *node)
{
    hl_cmd *c = szd_xcalloc(1, sizeof *c);
    c->op = op;
    c->key = key;
    if (node) {
        snprintf(c->node, sizeof c->node, "%s", node);
    }
    return c;
}

void szd_hl_ns_set(szd_hl *hl, uint64_t key, const char *name, int64_t interval_ms,
                   int64_t dead_after_ms, int64_t lease_ms, bool strict)
{
    hl_cmd *c = cmd_new(CMD_NS_SET, key, NULL);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->interval_ms = interval_ms;
    c->dead_after_ms = dead_after_ms;
    c->lease_ms = lease_ms;
    c->strict = strict;
    post(hl, c);
}

void szd_hl_ns_del(szd_hl *hl, uint64_t key)
{
    post(hl, cmd_new(CMD_NS_DEL, key, NULL));
}

void szd_hl_ns_revision(szd_hl *hl, uint64_t key, uint64_t revision)
{
    hl_cmd *c = cmd_new(CMD_NS_REVISION, key, NULL);
    c->revision = revision;
    post(hl, c);
}

void szd_hl_node_set(szd_hl *hl, uint64_t key, const char *node, const char *address, int64_t stamp)
{
    hl_cmd *c = cmd_new(CMD_NODE_SET, key, node);
    snprintf(c->address, sizeof c->address, "%s", address);
    c->stamp = stamp;
    post(hl, c);
}

void szd_hl_node_del(szd_hl *hl, uint64_t key, const char *node)
{
    post(hl, cmd_new(CMD_NODE_DEL, key, node));
}

void szd_hl_node_grant(szd_hl *hl, uint64_t key, const char *node)
{
    post(hl, cmd_new(CMD_NODE_GRANT, key, node));
}

void szd_hl_heard_all(szd_hl *hl)
{
    post(hl, cmd_new(CMD_HEARD_ALL, 0, NULL));
}

int64_t szd_hl_ping_gap_max(szd_hl *hl)
{
    return atomic_exchange(&hl->gap_max_ms, 0);
}

void szd_hl_set_acting_until(szd_hl *hl, int64_t until_ms, int64_t term)
{
    atomic_store(&hl->term, term); /* first: a tick that sees the new time sees the term */
    atomic_store(&hl->acting_until_ms, until_ms);
}

/* ---- the thread ---------------------------------------------------------------------- */

static void *lane_main(void *arg)
{
    szd_hl *hl = arg;
    event_base_dispatch(hl->base);
    return NULL;
}

int szd_hl_start(const char *secret, int64_t (*clock_ms)(void), int log_level, szd_hl **out)
{
    szd_hl *hl = calloc(1, sizeof *hl);
    if (!hl) {
        return SHARDZ_ENOMEM;
    }
    hl->cmd_pipe[0] = hl->cmd_pipe[1] = hl->rep_pipe[0] = hl->rep_pipe[1] = -1;
    pthread_mutex_init(&hl->mu, NULL);
    atomic_init(&hl->acting_until_ms, 0);
    atomic_init(&hl->term, 0);
    atomic_init(&hl->gap_max_ms, 0);
    snprintf(hl->secret, sizeof hl->secret, "%s", secret ? secret : "");
    hl->clock_ms = clock_ms;
    hl->log_level = log_level;
    int rc = SHARDZ_EIO;
    if (szd_pipe_open(hl->cmd_pipe) != 0 || szd_pipe_open(hl->rep_pipe) != 0) {
        goto fail;
    }
    rc = SHARDZ_ENOMEM;
    hl->base = event_base_new();
    if (!hl->base) {
        goto fail;
    }
    hl->cmd_ev = event_new(hl->base, hl->cmd_pipe[0], EV_READ | EV_PERSIST, on_cmd, hl);
    if (!hl->cmd_ev || event_add(hl->cmd_ev, NULL) != 0) {
        goto fail;
    }
    rc = SHARDZ_EIO;
    if (pthread_create(&hl->thread, NULL, lane_main, hl) != 0) {
        goto fail;
    }
    hl->started = true;
    *out = hl;
    return 0;
fail:
    szd_hl_stop(hl);
    return rc;
}

void szd_hl_stop(szd_hl *hl)
{
    if (!hl) {
        return;
    }
    if (hl->started) {
        post(hl, cmd_new(CMD_STOP, 0, NULL));
        pthread_join(hl->thread, NULL);
    }
    for (size_t i = 0; i < hl->nns; i++) {
        ns_free(hl->ns[i]);
    }
    free(hl->ns);
    for (szd_hl_report *r = hl->rep_head; r;) {
        szd_hl_report *next = r->next;
        szd_hl_report_free(r);
        r = next;
    }
    for (hl_cmd *c = hl->cmd_head; c;) {
        hl_cmd *next = c->next;
        free(c);
        c = next;
    }
    if (hl->cmd_ev) {
        event_free(hl->cmd_ev);
    }
    if (hl->base) {
        event_base_free(hl->base);
    }
    for (int i = 0; i < 2; i++) {
        if (hl->cmd_pipe[i] >= 0) {
            close(hl->cmd_pipe[i]);
        }
        if (hl->rep_pipe[i] >= 0) {
            close(hl->rep_pipe[i]);
        }
    }
    pthread_mutex_destroy(&hl->mu);
    free(hl);
}
