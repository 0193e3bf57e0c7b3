/* Assignment pushes: each node whose desired replicas changed is sent them on a connection of
 * its own (pings travel on the health lane's, so a push never delays a ping: seed 004), and the
 * replies acknowledge the moves. A worker that speaks deltas (docs/PROTOCOL.md 4.3) is sent only
 * the replicas that changed since the assignment it acknowledged last; the others, and every
 * worker after a registration or a refusal, the whole set. Bodies are written straight into a
 * buffer, not built as JSON trees. A deleted namespace's nodes get a last, empty assignment
 * (farewells), retried until answered. Event-loop thread; outbound HTTP through libevent. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "daemon/oom.h"
#include "daemon/sbuf.h"
#include "daemon/daemon.h"
#include "daemon/store_lane.h"
#include "daemon/wire.h"
#include "daemon/range.h"

#define ASSIGN_TIMEOUT_S 10

typedef struct push_ctx {
    szd_node *node;
    uint64_t revision; /* the revision pushed */
    bool delta;        /* a delta: its reply names only these partitions */
    char **named;      /* delta: the partitions it named (owned) */
    size_t nnamed;
} push_ctx;

static void ctx_free(push_ctx *ctx)
{
    if (!ctx) {
        return;
    }
    for (size_t i = 0; i < ctx->nnamed; i++) {
        free(ctx->named[i]);
    }
    free(ctx->named);
    free(ctx);
}

/* ---- the partitions whose replica for a node changed (deltas) ------------------------ */

#define IDSET_MAX 8192 /* more changes than this: the whole set goes instead */

void szd_push_changed(szd_node *n, const char *partition)
{
    n->dirty = true;
    if (!n->delta_ok || n->need_full) {
        return;
    }
    if (n->changed.n >= IDSET_MAX || !szd_idset_add(&n->changed, partition)) {
        szd_push_full(n);
    }
}

void szd_push_full(szd_node *n)
{
    n->dirty = true;
    n->need_full = true;
    szd_idset_clear(&n->changed);
}

bool szd_push_check_ahead(szd_ns *ns, szd_node *n, uint64_t applied)
{
    if (applied <= ns->revision) {
        return false;
    }
    if (n->resync_from != applied) {
        szd_log(ns->d, SZD_WARN,
                "msg=\"worker reports a revision this coordinator never sent\" ns=%s node=%s "
                "applied_revision=%llu revision=%llu action=resync",
                ns->cfg.name, n->id, (unsigned long long)applied, (unsigned long long)ns->revision);
        szd_event(ns, "node-ahead",
                  json_pack("{s:s, s:I, s:I}", "node", n->id, "applied_revision",
                            (json_int_t)applied, "revision", (json_int_t)ns->revision));
        n->resync_from = applied;
        n->applied_revision = 0;
        n->base_revision = 0;
        szd_node_state_unknown(ns, n);
    }
    szd_push_full(n);
    return true;
}

void szd_push_node_free(szd_node *n)
{
    szd_idset_clear(&n->changed);
    szd_idset_clear(&n->drops);
}

void szd_node_close(szd_node *n)
{
    /* freeing a connection drops its pending requests without calling back */
    if (n->assign_conn) {
        evhttp_connection_free(n->assign_conn);
        n->assign_conn = NULL;
    }
    n->assign_inflight = false;
    ctx_free(n->assign_ctx);
    n->assign_ctx = NULL;
}

static struct evhttp_connection *push_conn(szd_node *n)
{
    if (n->assign_conn) {
        return n->assign_conn;
    }
    n->assign_conn = evhttp_connection_base_new(n->ns->d->base, NULL, n->host, n->port);
    if (!n->assign_conn) {
        return NULL;
    }
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
    if (!c) {
        return SHARDZ_ENOMEM;
    }
    struct evhttp_request *req = evhttp_request_new(cb, ctx);
    if (!req) {
        return SHARDZ_ENOMEM;
    }
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
    if (evhttp_make_request(c, req, EVHTTP_REQ_POST, path) != 0) {
        return SHARDZ_EIO; /* libevent freed the request */
    }
    return 0;
}

/* The reply body as JSON, or NULL when the request failed or the reply is not JSON. */

/* ---- assignments --------------------------------------------------------------------- */

/* A delta the worker refused (its applied revision is not the delta's base): 409 ESTALE. */
static bool refused_delta(const push_ctx *ctx, int code, json_t *j)
{
    const char *c = j ? json_string_value(json_object_get(j, "code")) : NULL;
    return ctx->delta && code == 409 && c && strcmp(c, "ESTALE") == 0;
}

static void on_assign(struct evhttp_request *req, void *arg)
{
    push_ctx *ctx = arg;
    szd_node *n = ctx->node;
    szd_ns *ns = n->ns;
    uint64_t pushed = ctx->revision;
    n->assign_ctx = NULL;
    n->assign_inflight = false;
    int code;
    json_t *j = szd_reply_object(req, &code, SZD_MAX_REPLY, true);
    const char *who = j ? json_string_value(json_object_get(j, "node")) : NULL;
    json_t *serving = j ? json_object_get(j, "serving") : NULL;
    if (refused_delta(ctx, code, j)) {
        /* it does not hold what the delta builds on (a restart, a lost push): the whole set */
        szd_log(ns->d, SZD_INFO, "msg=\"delta refused, sending the whole set\" ns=%s node=%s",
                ns->cfg.name, n->id);
        szd_push_full(n);
        n->assign_reach_ms = 0; /* it answered: the message arrived, and granted no lease */
        json_decref(j);
        ctx_free(ctx);
        szd_ns_schedule(ns);
        return;
    }
    if (code != 200 || !j || !who || strcmp(who, n->id) != 0 || !json_is_array(serving)) {
        n->reach_ms = n->assign_reach_ms > n->reach_ms ? n->assign_reach_ms : n->reach_ms;
        n->assign_reach_ms = 0;
        szd_log(ns->d, SZD_WARN, "msg=\"assignment failed\" ns=%s node=%s status=%d", ns->cfg.name,
                n->id, code);
        /* it may or may not have applied it: only the whole set is certain to be right */
        szd_push_full(n);
        n->assign_retry_ms = szd_now(ns->d) + ns->cfg.ping_interval_ms;
        json_decref(j);
        ctx_free(ctx);
        return;
    }
    n->assign_reach_ms = 0;
    json_t *stamp = json_object_get(j, "stamp");
    if (json_is_integer(stamp) && json_integer_value(stamp) > n->stamp) {
        n->stamp = json_integer_value(stamp);
    }
    szd_node_contact(ns, n, false); /* what it says it serves counts, even from a dead node */
    /* what it holds now is the next delta's base, if it applied this push: a stale answer, or
     * one after it dropped everything (applied_revision 0), says otherwise */
    json_t *ar = json_object_get(j, "applied_revision");
    uint64_t applied = json_is_integer(ar) ? (uint64_t)json_integer_value(ar) : pushed;
    if (szd_push_check_ahead(ns, n, applied)) {
        /* still ahead after a resync (a worker that ignores "resync_from"): once an interval */
        n->assign_retry_ms = szd_now(ns->d) + ns->cfg.ping_interval_ms;
        json_decref(j);
        ctx_free(ctx);
        szd_ns_schedule(ns);
        return;
    }
    if (n->resync_from && applied == pushed) {
        szd_log(ns->d, SZD_INFO, "msg=\"worker resynchronised\" ns=%s node=%s revision=%llu",
                ns->cfg.name, n->id, (unsigned long long)pushed);
        n->resync_from = 0;
    }
    n->applied_revision = applied;
    n->acked_ms = szd_now(ns->d);
    if (applied == pushed) {
        n->base_revision = pushed;
    } else {
        szd_push_full(n);
    }
    json_t *failed = json_object_get(j, "failed");
    if (json_is_array(failed) && json_array_size(failed) > 0) {
        size_t k;
        json_t *e;
        json_array_foreach(failed, k, e)
        {
            const char *pid = json_string_value(json_object_get(e, "partition"));
            char q[256];
            szd_log(ns->d, SZD_WARN, "msg=\"serve failed\" ns=%s node=%s partition=%s error=\"%s\"",
                    ns->cfg.name, n->id, pid && szd_valid_id(pid) ? pid : "?",
                    szd_logq(q, sizeof q, json_string_value(json_object_get(e, "error"))));
            if (pid && szd_valid_id(pid)) {
                szd_push_changed(n, pid); /* try again a little later */
            } else {
                szd_push_full(n);
            }
        }
        n->assign_retry_ms = szd_now(ns->d) + ns->cfg.ping_interval_ms;
    }
    /* a reply to a delta lists only what it named, marked so; any other lists everything */
    if (ctx->delta && json_is_true(json_object_get(j, "delta"))) {
        szd_apply_serving_delta(ns, n, serving, (const char *const *)ctx->named, ctx->nnamed);
    } else {
        szd_apply_serving(ns, n, serving);
    }
    json_decref(j);
    ctx_free(ctx);
    szd_ns_schedule(ns);
}

static bool pushable(const szd_node *n, int64_t now)
{
    if (!n->dirty || n->assign_inflight || n->push_pending || now < n->assign_retry_ms) {
        return false;
    }
    return n->state != SZD_NODE_DEAD && !(n->state == SZD_NODE_LEFT && n->released_sent);
}

/* ---- bodies -------------------------------------------------------------------------- */

/* One replica entry (docs/PROTOCOL.md 4.3), after a comma unless it is the first. Ids of
 * partitions are plain ([A-Za-z0-9._:-]): written as they are; a range namespace's bounds are
 * arbitrary bytes and go through jansson's escaping. */
static void put_entry(szd_sbuf *b, const szd_ns *ns, const szd_part *p, unsigned s, szd_rstate st,
                      uint64_t generation, int32_t me)
{
    if (b->s && b->s[b->n - 1] != '[') {
        szd_sb_add(b, ",", 1);
    }
    const char *role = !ns->cfg.roles ? "none" : s == 0 ? "primary" : "secondary";
    /* state transfer: an adding replica names the node it comes from, to a worker that
     * speaks "transfer" (ids are plain; an address is host:port) */
    int32_t from =
        st == SZD_R_ADDING && ns->nodes[me]->transfer_ok ? szd_transfer_source(ns, p, s, me) : -1;
    if (!szd_is_range(ns)) {
        szd_sb_printf(b,
                      "{\"partition\":\"%s\",\"slot\":%u,\"role\":\"%s\",\"generation\":%llu,"
                      "\"state\":\"%s\"",
                      p->id, s, role, (unsigned long long)generation, szd_rstate_name(st));
        if (from >= 0) {
            szd_sb_printf(b, ",\"from\":{\"node\":\"%s\",\"address\":\"%s\"}", ns->nodes[from]->id,
                          ns->nodes[from]->address);
        }
        szd_sb_add(b, "}", 1);
        return;
    }
    json_t *j = json_pack("{s:s, s:i, s:s, s:I, s:s}", "partition", p->id, "slot", (int)s, "role",
                          role, "generation", (json_int_t)generation, "state", szd_rstate_name(st));
    if (from >= 0) {
        json_object_set_new(j, "from",
                            json_pack("{s:s, s:s}", "node", ns->nodes[from]->id, "address",
                                      ns->nodes[from]->address));
    }
    szd_range_fields(ns, p->id, j, false); /* the bounds */
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        szd_oom();
    }
    szd_sb_add(b, text, strlen(text));
    free(text);
}

/* The replica of p node `me` should hold now (at most one: replicas of a partition are on
 * distinct nodes); false when none. */
static bool desired_of(const szd_part *p, int32_t me, unsigned *slot, szd_rstate *st, uint64_t *gen)
{
    for (unsigned s = 0; s < p->nrep; s++) {
        const szd_slot *sl = &p->slots[s];
        if (sl->owner == me &&
            (sl->owner_state == SZD_R_ADDING || sl->owner_state == SZD_R_SERVING)) {
            *slot = s;
            *st = (szd_rstate)sl->owner_state;
            *gen = sl->generation;
            return true;
        }
        if (sl->prev == me && sl->prev_state == SZD_R_SERVING) {
            *slot = s;
            *st = SZD_R_SERVING;
            *gen = sl->prev_generation;
            return true;
        }
    }
    return false;
}

/* Whether node x holds p in a slot before s: a node is sent one replica of a partition, the
 * one desired_of names (a handoff's promoted node is slot 0's owner and a secondary's previous
 * owner for a while). */
static bool held_before(const szd_part *p, int32_t x, unsigned s)
{
    unsigned slot;
    szd_rstate st;
    uint64_t gen;
    return desired_of(p, x, &slot, &st, &gen) && slot < s;
}

static void put_head(szd_sbuf *b, const szd_ns *ns, const szd_node *n, bool released, uint64_t base)
{
    szd_sb_printf(b,
                  "{\"namespace\":\"%s\",\"node\":\"%s\",\"revision\":%llu,\"term\":%lld,"
                  "\"released\":%s",
                  ns->cfg.name, n->id, (unsigned long long)ns->revision, (long long)ns->d->ha.term,
                  released ? "true" : "false");
    if (ns->cfg.strict) {
        szd_sb_printf(b, ",\"lease_ms\":%lld", (long long)ns->cfg.lease_ms);
    }
    if (ns->cfg.strict && n->stamp >= 0) {
        szd_sb_printf(b, ",\"lease_stamp\":%lld", (long long)n->stamp);
    }
    if (base) {
        szd_sb_printf(b, ",\"base_revision\":%llu", (unsigned long long)base);
    } else if (n->resync_from) {
        szd_sb_printf(b, ",\"resync_from\":%llu", (unsigned long long)n->resync_from);
    }
    szd_sb_add(b, ",\"replicas\":[", 13);
}

/* One assignment built, waiting for its batch to be durable. */
typedef struct {
    szd_node *node;
    uint32_t index; /* the node's index in ns->nodes */
    uint64_t revision;
    bool released;
    char *body;   /* owned */
    char **named; /* delta: the partitions named (owned), else NULL */
    size_t nnamed;
    bool delta;
    bool stamped; /* its body carries lease_stamp (put_head): its grant cannot outlive its send */
    uint32_t era; /* the node's stamp_era when built: the stamp is of the clock that sent it */
} push_msg;

struct szd_pushes {
    uint64_t seq; /* the batch it waits for (szd_push_attach) */
    push_msg *msgs;
    size_t n;
};

/* A node's delta: its changed partitions' replicas, or their removal. Takes n->changed. */
static void build_delta(szd_ns *ns, szd_node *n, int32_t me, push_msg *m)
{
    szd_sbuf b = {0}, removed = {0};
    szd_idset taken = n->changed, *set = &taken;
    n->changed = (szd_idset){0};
    put_head(&b, ns, n, false, n->base_revision);
    szd_sb_add(&removed, "[", 1);
    m->named = calloc(set->n ? set->n : 1, sizeof *m->named);
    if (!m->named) {
        szd_oom();
    }
    for (size_t i = 0; i < set->cap; i++) {
        char *id = set->slots[i];
        if (!id) {
            continue;
        }
        set->slots[i] = NULL;
        m->named[m->nnamed++] = id; /* taken */
        const szd_part *p = szd_part_find(ns, id);
        unsigned slot;
        szd_rstate st;
        uint64_t gen;
        if (p && desired_of(p, me, &slot, &st, &gen)) {
            put_entry(&b, ns, p, slot, st, gen, me);
        } else {
            if (removed.n > 1) {
                szd_sb_add(&removed, ",", 1);
            }
            szd_sb_printf(&removed, "\"%s\"", id);
        }
    }
    szd_sb_add(&removed, "]", 1);
    szd_sb_add(&b, "],\"removed\":", 12);
    szd_sb_add(&b, removed.s, removed.n);
    szd_sb_add(&b, "}", 1);
    free(removed.s);
    free(set->slots); /* its ids were taken */
    m->body = b.s;
    m->delta = true;
}

szd_pushes *szd_push_build(szd_ns *ns)
{
    int64_t now = szd_now(ns->d);
    size_t npush = 0, nfull = 0;
    bool range = szd_is_range(ns);
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        szd_node *n = ns->nodes[i];
        if (!pushable(n, now)) {
            continue;
        }
        npush++;
        if (!n->delta_ok || n->need_full || range || n->state == SZD_NODE_LEFT) {
            nfull++;
        }
    }
    if (npush == 0) {
        return NULL;
    }
    szd_pushes *p = calloc(1, sizeof *p);
    push_msg *msgs = calloc(npush, sizeof *msgs);
    szd_sbuf *full = calloc(ns->nnodes ? ns->nnodes : 1, sizeof *full); /* by node index */
    if (!p || !msgs || !full) {
        szd_oom();
    }
    p->msgs = msgs;
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        szd_node *n = ns->nodes[i];
        if (!pushable(n, now)) {
            continue;
        }
        push_msg *m = &p->msgs[p->n++];
        m->node = n;
        m->index = i;
        m->revision = ns->revision;
        m->released = n->state == SZD_NODE_LEFT;
        m->stamped = ns->cfg.strict && n->stamp >= 0; /* as put_head writes it, now */
        m->era = n->stamp_era;
        if (n->delta_ok && !n->need_full && !range && !m->released) {
            build_delta(ns, n, (int32_t)i, m);
        } else {
            put_head(&full[i], ns, n, m->released, 0);
        }
    }
    /* one pass over the slots builds every whole set; a node that left gets none */
    for (uint32_t i = 0; nfull > 0 && i < ns->nparts; i++) {
        const szd_part *pt = &ns->parts[i];
        for (unsigned s = 0; s < pt->nrep; s++) {
            const szd_slot *sl = &pt->slots[s];
            if (sl->owner >= 0 && full[sl->owner].s &&
                ns->nodes[sl->owner]->state != SZD_NODE_LEFT &&
                (sl->owner_state == SZD_R_ADDING || sl->owner_state == SZD_R_SERVING) &&
                !held_before(pt, sl->owner, s)) {
                put_entry(&full[sl->owner], ns, pt, s, (szd_rstate)sl->owner_state, sl->generation,
                          sl->owner);
            }
            if (sl->prev >= 0 && full[sl->prev].s && ns->nodes[sl->prev]->state != SZD_NODE_LEFT &&
                sl->prev_state == SZD_R_SERVING && !held_before(pt, sl->prev, s)) {
                put_entry(&full[sl->prev], ns, pt, s, SZD_R_SERVING, sl->prev_generation, sl->prev);
            }
        }
    }
    for (size_t k = 0; k < p->n; k++) {
        push_msg *m = &p->msgs[k];
        szd_node *n = m->node;
        if (!m->delta) {
            szd_sb_add(&full[m->index], "]}", 2);
            m->body = full[m->index].s;
            full[m->index].s = NULL;
            /* changes from here on are relative to the whole set it is about to hold (if the
             * push fails, szd_push_full asks for the whole set again) */
            szd_idset_clear(&n->changed);
            n->need_full = false;
        }
        n->dirty = false;
        n->push_pending = true;
        if (m->released) {
            n->released_sent = true;
        }
    }
    free(full);
    return p;
}

void szd_push_attach(szd_pushes *p, uint64_t seq)
{
    if (p) {
        p->seq = seq;
    }
}

static void pushes_free(szd_pushes *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->msgs[i].body);
        for (size_t k = 0; k < p->msgs[i].nnamed; k++) {
            free(p->msgs[i].named[k]);
        }
        free(p->msgs[i].named);
    }
    free(p->msgs);
    free(p);
}

void szd_push_release(szd_ns *ns, szd_pushes *p, const szd_sl_durable *durable)
{
    if (!p) {
        return;
    }
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
            szd_oom();
        }
        ctx->node = n;
        ctx->revision = m->revision;
        ctx->delta = m->delta;
        ctx->named = m->named; /* taken */
        ctx->nnamed = m->nnamed;
        m->named = NULL;
        m->nnamed = 0;
        /* in flight before the call: libevent may run on_assign inside it (a connection that
         * fails at once, out of descriptors say), which frees ctx and clears these */
        n->assign_ctx = ctx;
        n->assign_inflight = true;
        int rc = send_json(n, "/shardz/v1/assign", m->body, on_assign, ctx);
        if (n->assign_ctx != ctx) {
            continue; /* answered (failed) already */
        }
        if (rc) {
            ctx_free(ctx);
            n->assign_ctx = NULL;
            n->assign_inflight = false;
            szd_push_full(n);
            n->released_sent = false;
            n->assign_retry_ms = now + ns->cfg.ping_interval_ms;
            continue;
        }
        /* A lease-granting push may start a lease until it times out; one that carries
         * lease_stamp only until now: the worker runs its grant from that stamp, taken before
         * this send, and applies the assignment only while that grant lasts (PROTOCOL.md 6),
         * so a late push cannot resurrect a lease whatever its timeout. */
        bool stamped = m->stamped && m->era == n->stamp_era;
        n->assign_reach_ms = !ns->cfg.strict ? 0 : stamped ? now : now + ASSIGN_TIMEOUT_S * 1000;
    }
    pushes_free(p);
}

void szd_push_drop(szd_ns *ns, szd_pushes *p)
{
    if (!p) {
        return;
    }
    for (size_t i = 0; ns && i < p->n; i++) {
        szd_node *n = p->msgs[i].node;
        n->push_pending = false;
        n->released_sent = false;
        /* built again from the state once it is durable: the whole set, to be simple */
        szd_push_full(n);
    }
    pushes_free(p);
}

/* ---- farewells: a deleted namespace's last assignment ------------------------------- */

/* One node of a deleted namespace, told to serve nothing: owns its copy of everything (the
 * namespace is freed at once) and its own connection; on d->farewells until it is answered
 * 200 or its deadline passes. */
typedef struct szd_farewell {
    struct szd_farewell *next;
    szd *d;
    char host[SZD_ADDR_MAX + 1];
    char address[SZD_ADDR_MAX + 1];
    uint16_t port;
    char *body;
    int64_t deadline_ms, retry_ms;
    bool over; /* answered, or past its deadline: freed by its timer, outside the callback */
    struct evhttp_connection *conn;
    struct event *timer;
} szd_farewell;

static void farewell_free(szd_farewell *f)
{
    if (f->conn) {
        evhttp_connection_free(f->conn); /* drops a request still pending, no callback */
    }
    if (f->timer) {
        event_free(f->timer);
    }
    free(f->body);
    free(f);
}

static void farewell_done(szd_farewell *f)
{
    for (szd_farewell **pp = &f->d->farewells; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    }
    farewell_free(f);
}

static void farewell_send(szd_farewell *f);

static void on_farewell(struct evhttp_request *req, void *arg)
{
    szd_farewell *f = arg;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    struct timeval tv = {(time_t)(f->retry_ms / 1000), (suseconds_t)((f->retry_ms % 1000) * 1000)};
    if (code == 200) {
        szd_log(f->d, SZD_DEBUG, "msg=\"deleted namespace's worker told\" address=%s", f->address);
        f->over = true;
        tv = (struct timeval){0, 0};
    } else if (szd_now(f->d) >= f->deadline_ms) {
        szd_log(f->d, SZD_WARN,
                "msg=\"a deleted namespace's worker was not reached\" address=%s status=%d",
                f->address, code);
        f->over = true;
        tv = (struct timeval){0, 0};
    }
    evtimer_add(f->timer, &tv); /* its connection is not freed inside its own callback */
}

static void on_farewell_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd_farewell *f = arg;
    if (f->over) {
        farewell_done(f);
    } else {
        farewell_send(f);
    }
}

static void farewell_send(szd_farewell *f)
{
    if (!szd_acting(f->d)) {
        farewell_done(f); /* deposed: nothing more leaves; the next leader tells the workers */
        return;
    }
    if (!f->conn) {
        f->conn = evhttp_connection_base_new(f->d->base, NULL, f->host, f->port);
        if (!f->conn) {
            szd_oom();
        }
        struct timeval tv = {ASSIGN_TIMEOUT_S, 0};
        evhttp_connection_set_timeout_tv(f->conn, &tv);
        evhttp_connection_set_retries(f->conn, 0);
    }
    struct evhttp_request *req = evhttp_request_new(on_farewell, f);
    if (!req) {
        szd_oom();
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", f->address);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (f->d->cfg.secret[0]) {
        char auth[300];
        snprintf(auth, sizeof auth, "Bearer %s", f->d->cfg.secret);
        evhttp_add_header(h, "Authorization", auth);
    }
    evbuffer_add(evhttp_request_get_output_buffer(req), f->body, strlen(f->body));
    if (evhttp_make_request(f->conn, req, EVHTTP_REQ_POST, "/shardz/v1/assign") != 0) {
        struct timeval tv = {(time_t)(f->retry_ms / 1000),
                             (suseconds_t)((f->retry_ms % 1000) * 1000)};
        evtimer_add(f->timer, &tv); /* libevent freed the request */
    }
}

void szd_push_farewell(szd *d, const szd_ns *ns, uint64_t revision, int64_t for_ms)
{
    for (uint32_t i = 0; i < ns->nnodes; i++) {
        const szd_node *n = ns->nodes[i];
        if (n->state == SZD_NODE_LEFT) {
            continue;
        }
        szd_farewell *f = szd_xcalloc(1, sizeof *f);
        f->d = d;
        snprintf(f->host, sizeof f->host, "%s", n->host);
        snprintf(f->address, sizeof f->address, "%s", n->address);
        f->port = n->port;
        f->deadline_ms = szd_now(d) + for_ms;
        f->retry_ms = ns->cfg.ping_interval_ms;
        json_t *j =
            json_pack("{s:s, s:s, s:I, s:I, s:b, s:[], s:b}", "namespace", ns->cfg.name, "node",
                      n->id, "revision", (json_int_t)revision, "term", (json_int_t)d->ha.term,
                      "released", 0, "replicas", "namespace_deleted", 1);
        f->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
        f->timer = evtimer_new(d->base, on_farewell_timer, f);
        if (!f->body || !f->timer) {
            szd_oom();
        }
        f->next = d->farewells;
        d->farewells = f;
        farewell_send(f);
    }
}

void szd_push_farewells_free(szd *d)
{
    while (d->farewells) {
        szd_farewell *f = d->farewells;
        d->farewells = f->next;
        farewell_free(f);
    }
}
