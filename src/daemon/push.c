/* Assignment pushes: each node whose desired replicas changed is sent its set on a connection
 * of its own (pings travel on the health lane's, so a push never delays a ping: seed 004), and
 * the replies acknowledge the moves. Event-loop thread; outbound HTTP through libevent's evhttp
 * client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "daemon/daemon.h"
#include "daemon/store_lane.h"
#include "daemon/range.h"


#define ASSIGN_TIMEOUT_S 10

typedef struct push_ctx {
    szd_node *node;
    uint64_t revision; /* the revision pushed */
} push_ctx;

void szd_node_close(szd_node *n)
{
    /* freeing a connection drops its pending requests without calling back */
    if (n->assign_conn) {
        evhttp_connection_free(n->assign_conn);
        n->assign_conn = NULL;
    }
    n->assign_inflight = false;
    free(n->assign_ctx);
    n->assign_ctx = NULL;
    json_decref(n->desired);
    n->desired = NULL;
}

static struct evhttp_connection *push_conn(szd_node *n)
{
    if (n->assign_conn)
        return n->assign_conn;
    n->assign_conn = evhttp_connection_base_new(n->ns->d->base, NULL, n->host, n->port);
    if (!n->assign_conn)
        return NULL;
    struct timeval tv = {ASSIGN_TIMEOUT_S, 0};
    evhttp_connection_set_timeout_tv(n->assign_conn, &tv);
    evhttp_connection_set_retries(n->assign_conn, 0);
    return n->assign_conn;
}

/* Sends a JSON POST on the node's push connection; the request owns ctx until its callback. */
static int send_json(szd_node *n, const char *path, const char *text,
                     void (*cb)(struct evhttp_request *, void *), push_ctx *ctx)
{
    struct evhttp_connection *c = push_conn(n);
    if (!c)
        return SHARDZ_ENOMEM;
    struct evhttp_request *req = evhttp_request_new(cb, ctx);
    if (!req)
        return SHARDZ_ENOMEM;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", n->address);
    evhttp_add_header(h, "Content-Type", "application/json");
    const szd *d = n->ns->d;
    if (d->cfg.secret[0]) {
        char auth[300];
        snprintf(auth, sizeof auth, "Bearer %s", d->cfg.secret);
        evhttp_add_header(h, "Authorization", auth);
    }
    evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
    if (evhttp_make_request(c, req, EVHTTP_REQ_POST, path) != 0)
        return SHARDZ_EIO; /* libevent freed the request */
    return 0;
}

/* The reply body as JSON, or NULL when the request failed or the reply is not JSON. */
static json_t *reply_body(struct evhttp_request *req, int *code)
{
    *code = req ? evhttp_request_get_response_code(req) : 0;
    if (!req || *code != 200)
        return NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    if (len == 0 || len > SZD_MAX_BODY)
        return NULL;
    json_t *j = json_loadb((const char *)evbuffer_pullup(in, (ssize_t)len), len, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- assignments --------------------------------------------------------------------- */

static void on_assign(struct evhttp_request *req, void *arg)
{
    push_ctx *ctx = arg;
    szd_node *n = ctx->node;
    szd_ns *ns = n->ns;
    uint64_t pushed = ctx->revision;
    free(ctx);
    n->assign_ctx = NULL;
    n->assign_inflight = false;
    int code;
    json_t *j = reply_body(req, &code);
    const char *who = j ? json_string_value(json_object_get(j, "node")) : NULL;
    json_t *serving = j ? json_object_get(j, "serving") : NULL;
    if (!j || !who || strcmp(who, n->id) != 0 || !json_is_array(serving)) {
        n->reach_ms = n->assign_reach_ms > n->reach_ms ? n->assign_reach_ms : n->reach_ms;
        n->assign_reach_ms = 0;
        szd_log(ns->d, SZD_WARN, "msg=\"assignment failed\" ns=%s node=%s status=%d",
                ns->cfg.name, n->id, code);
        n->dirty = true;
        n->assign_retry_ms = szd_now(ns->d) + ns->cfg.ping_interval_ms;
        json_decref(j);
        return;
    }
    n->assign_reach_ms = 0;
    szd_node_contact(ns, n);
    n->applied_revision = pushed;
    json_t *failed = json_object_get(j, "failed");
    if (json_is_array(failed) && json_array_size(failed) > 0) {
        size_t k;
        json_t *e;
        json_array_foreach(failed, k, e)
        {
            szd_log(ns->d, SZD_WARN, "msg=\"serve failed\" ns=%s node=%s partition=%s error=\"%s\"",
                    ns->cfg.name, n->id, json_string_value(json_object_get(e, "partition")) ?: "?",
                    json_string_value(json_object_get(e, "error")) ?: "");
        }
        n->dirty = true; /* try again a little later */
        n->assign_retry_ms = szd_now(ns->d) + ns->cfg.ping_interval_ms;
    }
    szd_apply_serving(ns, n, serving);
    json_decref(j);
    szd_ns_schedule(ns);
}

static bool pushable(const szd_node *n, int64_t now)
{
    if (!n->dirty || n->assign_inflight || n->push_pending || now < n->assign_retry_ms)
        return false;
    return n->state != SZD_NODE_DEAD && !(n->state == SZD_NODE_LEFT && n->released_sent);
}

static json_t *replica_json(const szd_ns *ns, const szd_part *p, unsigned s, szd_rstate st,
                            uint64_t generation)
{
    json_t *j = json_pack("{s:s, s:i, s:s, s:I, s:s}", "partition", p->id, "slot", (int)s,
                          "role", !ns->cfg.roles ? "none" : s == 0 ? "primary" : "secondary",
                          "generation", (json_int_t)generation, "state", szd_rstate_name(st));
    szd_range_fields(ns, p->id, j, false); /* range namespaces: the bounds */
    return j;
}

/* One assignment built, waiting for its batch to be durable. */
typedef struct {
    szd_node *node;
    uint64_t revision;
    bool released;
    char *body; /* owned */
} push_msg;

struct szd_pushes {
    uint64_t seq; /* the batch it waits for (szd_push_attach) */
    push_msg *msgs;
    size_t n;
};

szd_pushes *szd_push_build(szd_ns *ns)
{
    int64_t now = szd_now(ns->d);
    size_t npush = 0;
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        szd_node *n = ns->nodes[i];
        if (!pushable(n, now))
            continue;
        json_decref(n->desired);
        n->desired = json_array();
        npush++;
    }
    if (npush == 0)
        return NULL;
    szd_pushes *p = calloc(1, sizeof *p);
    push_msg *msgs = calloc(npush, sizeof *msgs);
    if (!p || !msgs) {
        fprintf(stderr, "shardzd: out of memory\n");
        abort();
    }
    p->msgs = msgs;
    /* one pass over the slots builds every node's desired replicas */
    for (uint32_t i = 0; i < ns->nparts; i++) {
        const szd_part *pt = &ns->parts[i];
        for (unsigned s = 0; s < pt->nrep; s++) {
            const szd_slot *sl = &pt->slots[s];
            if (sl->owner >= 0 && ns->nodes[sl->owner]->desired &&
                (sl->owner_state == SZD_R_ADDING || sl->owner_state == SZD_R_SERVING))
                json_array_append_new(ns->nodes[sl->owner]->desired,
                                      replica_json(ns, pt, s, (szd_rstate)sl->owner_state,
                                                   sl->generation));
            if (sl->prev >= 0 && ns->nodes[sl->prev]->desired && sl->prev_state == SZD_R_SERVING)
                json_array_append_new(ns->nodes[sl->prev]->desired,
                                      replica_json(ns, pt, s, SZD_R_SERVING,
                                                   sl->prev_generation));
        }
    }
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        szd_node *n = ns->nodes[i];
        if (!n->desired)
            continue;
        json_t *reps = n->desired;
        n->desired = NULL;
        bool released = n->state == SZD_NODE_LEFT;
        json_t *body = json_pack("{s:s, s:s, s:I, s:b, s:o}", "namespace", ns->cfg.name, "node",
                                 n->id, "revision", (json_int_t)ns->revision, "released",
                                 released, "replicas", reps);
        if (body && ns->cfg.strict)
            json_object_set_new(body, "lease_ms", json_integer((json_int_t)ns->cfg.lease_ms));
        char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!text) {
            fprintf(stderr, "shardzd: out of memory\n");
            abort();
        }
        p->msgs[p->n++] = (push_msg){n, ns->revision, released, text};
        n->dirty = false;
        n->push_pending = true;
        if (released)
            n->released_sent = true;
    }
    return p;
}

void szd_push_attach(szd_pushes *p, uint64_t seq)
{
    if (p)
        p->seq = seq;
}

static void pushes_free(szd_pushes *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->msgs[i].body);
    free(p->msgs);
    free(p);
}

void szd_push_release(szd_ns *ns, szd_pushes *p, const szd_sl_durable *durable)
{
    if (!p)
        return;
    if (!durable || szd_sl_durable_seq(durable) < p->seq) {
        /* a push before its batch is durable: never (a bug, not a condition) */
        szd_log(ns->d, SZD_ERROR, "msg=\"push released before its batch is durable\" seq=%llu",
                (unsigned long long)p->seq);
        abort();
    }
    int64_t now = szd_now(ns->d);
    for (size_t i = 0; i < p->n; i++) {
        push_msg *m = &p->msgs[i];
        szd_node *n = m->node;
        n->push_pending = false;
        push_ctx *ctx = calloc(1, sizeof *ctx);
        if (!ctx) {
            fprintf(stderr, "shardzd: out of memory\n");
            abort();
        }
        ctx->node = n;
        ctx->revision = m->revision;
        int rc = send_json(n, "/shardz/v1/assign", m->body, on_assign, ctx);
        if (rc) {
            if (rc != SHARDZ_EIO)
                free(ctx);
            n->dirty = true;
            n->released_sent = false;
            n->assign_retry_ms = now + ns->cfg.ping_interval_ms;
            continue;
        }
        n->assign_ctx = ctx;
        n->assign_inflight = true;
        n->assign_reach_ms = ns->cfg.strict ? now + ASSIGN_TIMEOUT_S * 1000 : 0;
    }
    pushes_free(p);
}

void szd_push_drop(szd_ns *ns, szd_pushes *p)
{
    if (!p)
        return;
    for (size_t i = 0; ns && i < p->n; i++) {
        szd_node *n = p->msgs[i].node;
        n->push_pending = false;
        n->dirty = true; /* built again from the state when it is durable */
        n->released_sent = false;
    }
    pushes_free(p);
}
