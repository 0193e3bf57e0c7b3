/* shardzd's HTTP API (docs/PROTOCOL.md): routing of /healthz, /v1/status and the namespace
 * routes, request checks (secret, methods, bodies), and watches: long-polls parked until the
 * namespace's revision passes the one the client knows. Event-loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/auth.h"
#include "daemon/daemon.h"
#include "daemon/range.h"
#include "shardz/hash.h"
#ifdef SHARDZ_HAVE_WEB
#include "web_assets.h"
#endif

#define SZD_VERSION "0.1.0"
#define MAX_SEGS 8

/* ---- watches ------------------------------------------------------------------------- */

static void waiter_free(szd_waiter *w)
{
    if (w->timer)
        event_free(w->timer);
    free(w);
}

static void waiter_unlink(szd_waiter *w)
{
    for (szd_waiter **pp = &w->ns->waiters; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            return;
        }
}

static void waiter_reply(szd_waiter *w, bool changed)
{
    struct evhttp_connection *c = evhttp_request_get_connection(w->req);
    if (c)
        evhttp_connection_set_closecb(c, NULL, NULL);
    szd_ns *ns = w->ns;
    json_t *body = changed ? szd_state_json(ns)
                           : json_pack("{s:I, s:b}", "revision", (json_int_t)ns->revision,
                                       "unchanged", 1);
    szd_reply_json(w->req, 200, body, ns->revision);
    waiter_unlink(w);
    waiter_free(w);
}

static void on_waiter_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
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
        if (ns->revision > w->since)
            waiter_reply(w, true);
        w = next;
    }
}

void szd_watch_cancel_all(szd_ns *ns)
{
    while (ns->waiters) {
        szd_waiter *w = ns->waiters;
        struct evhttp_connection *c = evhttp_request_get_connection(w->req);
        if (c)
            evhttp_connection_set_closecb(c, NULL, NULL);
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
    if (!*v || *end || x > max)
        return false;
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
        szd_reply_json(req, 200, szd_state_json(ns), ns->revision);
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
    w->timer = evtimer_new(ns->d->base, on_waiter_timeout, w);
    if (!w->timer) {
        free(w);
        szd_reply_error(req, SHARDZ_ENOMEM, "out of memory");
        return;
    }
    struct timeval tv = {(time_t)(timeout / 1000), (suseconds_t)((timeout % 1000) * 1000)};
    evtimer_add(w->timer, &tv);
    w->next = ns->waiters;
    ns->waiters = w;
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    if (c)
        evhttp_connection_set_closecb(c, on_waiter_close, w);
}

/* ---- routes -------------------------------------------------------------------------- */

static json_t *status_json(szd *d)
{
    shardz_store_status st = {0};
    bool reachable = szd_store_status(d, &st) == 0;
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:i, s:I, s:s, s:b}", "version", SZD_VERSION,
                          "store", reachable ? st.backend : "unreachable", "fsync",
                          shardz_store_sync_name(st.sync), "store_revision",
                          (json_int_t)st.revision, "namespaces", (int)d->nns, "uptime_ms",
                          (json_int_t)(szd_now(d) - d->started_ms), "listen", d->cfg.listen,
                          "acting", szd_acting(d));
    json_t *ha = szd_ha_status_json(d);
    if (j && ha)
        json_object_update(j, ha);
    json_decref(ha);
    return j;
}

/* {"<name>": list, "revision": R}: every list of a namespace replies so (takes list). */
static void reply_list(struct evhttp_request *req, const szd_ns *ns, const char *name,
                       json_t *list)
{
    szd_reply_json(req, 200, json_pack("{s:o, s:I}", name, list, "revision",
                                       (json_int_t)ns->revision),
                   ns->revision);
}

static void not_allowed(struct evhttp_request *req)
{
    szd_reply_error(req, SHARDZ_EINVAL, "method not allowed on this path");
}

static void handle_namespaces(szd *d, struct evhttp_request *req, int method)
{
    char err[512] = "";
    if (method == EVHTTP_REQ_GET) {
        json_t *list = json_array();
        for (uint32_t i = 0; i < d->nns; i++)
            json_array_append_new(list, szd_ns_summary_json(d->ns[i]));
        szd_reply_json(req, 200, json_pack("{s:o}", "namespaces", list), 0);
        return;
    }
    if (method != EVHTTP_REQ_POST) {
        not_allowed(req);
        return;
    }
    json_t *body = szd_read_body_max(req, SZD_MAX_BULK_BODY);
    if (!body)
        return;
    szd_ns_config cfg;
    int rc = szd_ns_config_parse(body, &cfg, err, sizeof err);
    szd_ns *ns = NULL;
    if (rc == 0)
        rc = szd_ns_create(d, &cfg, json_object_get(body, "partitions"), &ns, err, sizeof err);
    json_decref(body);
    if (rc) {
        szd_reply_error(req, rc, "%s", err);
        return;
    }
    szd_reply_json(req, 201, szd_ns_summary_json(ns), ns->revision);
}

static void handle_nodes(szd_ns *ns, struct evhttp_request *req, int method, const char *id,
                         const char *action)
{
    char err[512] = "";
    if (!id) {
        if (method == EVHTTP_REQ_GET) {
            json_t *list = szd_nodes_json(ns);
            reply_list(req, ns, "nodes", list);
            return;
        }
        if (method != EVHTTP_REQ_POST) {
            not_allowed(req);
            return;
        }
        json_t *body = szd_read_body(req);
        if (!body)
            return;
        szd_node *n = NULL;
        int rc = szd_node_register(ns, body, &n, err, sizeof err);
        json_decref(body);
        if (rc) {
            szd_reply_error(req, rc, "%s", err);
            return;
        }
        json_t *reply = json_pack("{s:o, s:I, s:I, s:s, s:I}", "node", szd_node_json(ns, n, false),
                                  "ping_interval_ms", (json_int_t)ns->cfg.ping_interval_ms,
                                  "lease_ms", (json_int_t)ns->cfg.lease_ms, "consistency",
                                  ns->cfg.strict ? "strict" : "available", "revision",
                                  (json_int_t)ns->revision);
        /* the protocol features this coordinator uses with this node (docs/PROTOCOL.md 4.1) */
        json_t *features = json_array();
        if (n->delta_ok)
            json_array_append_new(features, json_string("delta"));
        json_object_set_new(reply, "features", features);
        szd_reply_json(req, 200, reply, ns->revision);
        return;
    }
    szd_node *n = szd_node_find(ns, id);
    if (!n) {
        szd_reply_error(req, SHARDZ_ENOENT, "no node '%s' in namespace '%s'", id, ns->cfg.name);
        return;
    }
    if (!action) {
        if (method != EVHTTP_REQ_GET) {
            not_allowed(req);
            return;
        }
        json_t *j = szd_node_json(ns, n, true);
        json_object_set_new(j, "revision", json_integer((json_int_t)ns->revision));
        szd_reply_json(req, 200, j, ns->revision);
        return;
    }
    if ((strcmp(action, "drain") == 0 || strcmp(action, "undrain") == 0) &&
        method == EVHTTP_REQ_POST) {
        bool drain = strcmp(action, "drain") == 0;
        if (n->state == SZD_NODE_LEFT) {
            szd_reply_error(req, SHARDZ_ECONFLICT, "node '%s' has left", n->id);
            return;
        }
        int rc = szd_node_drain(ns, n, drain);
        if (rc) {
            szd_reply_error(req, rc, "could not record it: %s", shardz_strerror(rc));
            return;
        }
        szd_reply_json(req, drain ? 202 : 200, szd_node_json(ns, n, false), ns->revision);
        return;
    }
    if (strcmp(action, "leave") == 0 && method == EVHTTP_REQ_POST) {
        int rc = szd_node_leave(ns, n);
        if (rc) {
            szd_reply_error(req, rc, "could not record the leave: %s", shardz_strerror(rc));
            return;
        }
        json_t *j = szd_node_json(ns, n, false);
        szd_reply_json(req, 202, j, ns->revision);
        return;
    }
    szd_reply_error(req, SHARDZ_ENOENT, "no such route");
}

static bool json_uint(json_t *v, unsigned max, unsigned *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return false;
    *out = (unsigned)json_integer_value(v);
    return true;
}

static void handle_part_move(szd_ns *ns, struct evhttp_request *req, szd_part *p)
{
    char err[512] = "";
    json_t *body = szd_read_body(req);
    if (!body)
        return;
    unsigned slot;
    const char *to = json_string_value(json_object_get(body, "to"));
    if (!json_uint(json_object_get(body, "slot"), SHARDZ_MAX_REPLICAS, &slot) || !to) {
        json_decref(body);
        szd_reply_error(req, SHARDZ_EINVAL, "the body needs \"slot\" (an integer) and \"to\" "
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
    if (rc) {
        szd_reply_error(req, rc, "%s", err);
        return;
    }
    szd_reply_json(req, 202, szd_part_json(ns, p), ns->revision);
}

static void handle_partitions(szd_ns *ns, struct evhttp_request *req, int method, const char *id,
                              const char *action)
{
    char err[512] = "";
    if (!id) {
        if (method == EVHTTP_REQ_GET) {
            json_t *list = json_array();
            for (uint32_t i = 0; i < ns->nparts; i++)
                json_array_append_new(list, szd_part_json(ns, &ns->parts[i]));
            reply_list(req, ns, "partitions", list);
            return;
        }
        if (method != EVHTTP_REQ_POST) {
            not_allowed(req);
            return;
        }
        json_t *body = szd_read_body_max(req, SZD_MAX_BULK_BODY);
        if (!body)
            return;
        int rc = szd_range_parts_change(ns, NULL, err, sizeof err);
        if (rc == 0)
            rc = szd_parts_add(ns, json_object_get(body, "ids"), err, sizeof err);
        json_decref(body);
        if (rc) {
            szd_reply_error(req, rc, "%s", err);
            return;
        }
        szd_reply_json(req, 201, szd_ns_summary_json(ns), ns->revision);
        return;
    }
    szd_part *p = szd_part_find(ns, id);
    if (!p) {
        szd_reply_error(req, SHARDZ_ENOENT, "no partition '%s' in namespace '%s'", id,
                        ns->cfg.name);
        return;
    }
    if (action) {
        if (strcmp(action, "move") == 0 && method == EVHTTP_REQ_POST)
            handle_part_move(ns, req, p);
        else if (strcmp(action, "split") == 0 && method == EVHTTP_REQ_POST)
            szd_range_api_split(ns, req, p->id);
        else
            szd_reply_error(req, SHARDZ_ENOENT, "no such route");
        return;
    }
    if (method == EVHTTP_REQ_GET) {
        json_t *j = szd_part_json(ns, p);
        json_object_set_new(j, "revision", json_integer((json_int_t)ns->revision));
        szd_reply_json(req, 200, j, ns->revision);
        return;
    }
    if (method == EVHTTP_REQ_DELETE) {
        int rc = szd_range_parts_change(ns, p->id, err, sizeof err);
        if (rc) {
            szd_reply_error(req, rc, "%s", err);
            return;
        }
        rc = szd_part_remove(ns, p);
        if (rc) {
            szd_reply_error(req, rc, "could not remove the partition: %s", shardz_strerror(rc));
            return;
        }
        szd_reply_json(req, 200, json_pack("{s:I}", "revision", (json_int_t)ns->revision),
                       ns->revision);
        return;
    }
    not_allowed(req);
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
    if (!szd_is_range(ns))
        json_object_set_new(j, "slot",
                            json_integer(shardz_key_slot(key, strlen(key), ns->cfg.slots)));
    json_object_set_new(j, "revision", json_integer((json_int_t)ns->revision));
    szd_reply_json(req, 200, j, ns->revision);
}

static void handle_moves(szd_ns *ns, struct evhttp_request *req)
{
    json_t *list = json_array();
    int64_t now = szd_now(ns->d);
    for (uint32_t i = 0; i < ns->nparts; i++) {
        const szd_part *p = &ns->parts[i];
        for (unsigned s = 0; s < p->nrep; s++) {
            const szd_slot *sl = &p->slots[s];
            if (sl->owner < 0 || (sl->owner_state == SZD_R_SERVING && sl->prev < 0))
                continue;
            json_array_append_new(
                list, json_pack("{s:s, s:i, s:s?, s:s, s:s, s:s, s:s, s:I, s:I}", "partition",
                                p->id, "slot", (int)s, "from",
                                sl->prev >= 0 ? ns->nodes[sl->prev]->id : NULL, "to",
                                ns->nodes[sl->owner]->id, "to_state",
                                szd_rstate_name((szd_rstate)sl->owner_state), "from_state",
                                szd_rstate_name((szd_rstate)sl->prev_state), "reason",
                                shardz_reason_name((shardz_reason)sl->reason), "generation",
                                (json_int_t)sl->generation, "age_ms",
                                (json_int_t)(now - sl->started_ms)));
        }
    }
    reply_list(req, ns, "moves", list);
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
    if (rc) {
        szd_reply_error(req, rc, "%s", err);
        return;
    }
    szd_reply_json(req, 200, szd_part_json(ns, p), ns->revision);
}

static void handle_ns(szd *d, struct evhttp_request *req, int method, char **seg, int nseg,
                      const struct evkeyvalq *q)
{
    szd_ns *ns = szd_ns_find(d, seg[2]);
    if (!ns) {
        szd_reply_error(req, SHARDZ_ENOENT, "no namespace '%s'", seg[2]);
        return;
    }
    if (nseg == 3) {
        if (method == EVHTTP_REQ_GET) {
            szd_reply_json(req, 200, szd_ns_summary_json(ns), ns->revision);
        } else if (method == EVHTTP_REQ_DELETE) {
            int rc = szd_ns_delete(d, ns);
            if (rc)
                szd_reply_error(req, rc, "could not delete: %s", shardz_strerror(rc));
            else
                szd_reply_json(req, 200, json_pack("{s:b}", "deleted", 1), 0);
        } else {
            not_allowed(req);
        }
        return;
    }
    const char *what = seg[3];
    if (strcmp(what, "nodes") == 0 && nseg <= 6) {
        handle_nodes(ns, req, method, nseg > 4 ? seg[4] : NULL, nseg > 5 ? seg[5] : NULL);
    } else if (strcmp(what, "partitions") == 0 && nseg <= 6) {
        handle_partitions(ns, req, method, nseg > 4 ? seg[4] : NULL, nseg > 5 ? seg[5] : NULL);
    } else if (strcmp(what, "moves") == 0 && nseg == 6 && method == EVHTTP_REQ_DELETE) {
        handle_cancel(ns, req, seg[4], seg[5]);
    } else if (nseg == 4 && strcmp(what, "merge") == 0 && method == EVHTTP_REQ_POST) {
        szd_range_api_merge(ns, req);
    } else if (nseg == 4 && strcmp(what, "rebalance") == 0 && method == EVHTTP_REQ_POST) {
        const char *kind = evhttp_find_header(q, "balancer");
        if (kind && strcmp(kind, "load") != 0) {
            szd_reply_error(req, SHARDZ_EINVAL, "balancer must be \"load\" (or absent)");
            return;
        }
        json_t *j = kind ? szd_balance_json(ns, true) : szd_plan_json(ns, true);
        if (j && kind)
            szd_range_balance(ns, j, true); /* range namespaces: split hot ranges */
        if (!j)
            szd_reply_error(req, SHARDZ_ENOMEM, "the placement failed");
        else
            szd_reply_json(req, 200, j, ns->revision);
    } else if (nseg == 4 && method != EVHTTP_REQ_GET) {
        not_allowed(req);
    } else if (nseg == 4 && strcmp(what, "state") == 0) {
        szd_reply_json(req, 200, szd_state_json(ns), ns->revision);
    } else if (nseg == 4 && strcmp(what, "watch") == 0) {
        handle_watch(ns, req, q);
    } else if (nseg == 4 && strcmp(what, "lookup") == 0) {
        handle_lookup(ns, req, q);
    } else if (nseg == 4 && strcmp(what, "moves") == 0) {
        handle_moves(ns, req);
    } else if (nseg == 4 && strcmp(what, "tasks") == 0) {
        szd_range_api_tasks(ns, req);
    } else if (nseg == 4 && strcmp(what, "plan") == 0) {
        const char *kind = evhttp_find_header(q, "balancer");
        if (kind && strcmp(kind, "load") != 0) {
            szd_reply_error(req, SHARDZ_EINVAL, "balancer must be \"load\" (or absent)");
            return;
        }
        json_t *j = kind ? szd_balance_json(ns, false) : szd_plan_json(ns, false);
        if (j && kind)
            szd_range_balance(ns, j, false);
        if (!j)
            szd_reply_error(req, SHARDZ_ENOMEM, "the placement failed");
        else
            szd_reply_json(req, 200, j, ns->revision);
    } else if (nseg == 4 && strcmp(what, "events") == 0) {
        uint64_t since, limit;
        if (!query_u64(q, "since", 0, UINT64_MAX, &since) ||
            !query_u64(q, "limit", 1000, SZD_EVENTS, &limit) || limit == 0)
            szd_reply_error(req, SHARDZ_EINVAL, "since must be an integer, limit in [1, %d]",
                            SZD_EVENTS);
        else
            szd_reply_json(req, 200, szd_events_json(ns, since, (size_t)limit), ns->revision);
    } else {
        szd_reply_error(req, SHARDZ_ENOENT, "no such route");
    }
}

static bool authorized(const szd *d, struct evhttp_request *req)
{
    if (!d->cfg.secret[0])
        return true;
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    return shardz__bearer_ok(d->cfg.secret, h);
}

void szd_api_handle(struct evhttp_request *req, void *arg)
{
    szd *d = arg;
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
    if (!path || !*path)
        path = "/";
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
    if (strcmp(path, "/healthz") == 0) {
        if (d->ready)
            szd_reply_json(req, 200, json_pack("{s:s}", "status", "ok"), 0);
        else
            szd_reply_error(req, SHARDZ_EBUSY, "starting");
        goto out;
    }
    if (!authorized(d, req)) {
        json_t *body = json_pack("{s:s, s:s}", "code", "EPROTO", "message",
                                 "bad or missing secret");
        szd_reply_json(req, 401, body, 0);
        goto out;
    }
    /* Several coordinators: a follower answers reads from its cache and sends everything else
     * to the leader; a leader whose lease is no longer known fresh steps down first. */
    if (d->ha.role != SZD_ROLE_SOLO && strncmp(path, "/v1/namespaces", 14) == 0 &&
        !szd_acting(d)) {
        if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
            szd_ha_forward(d, req);
            goto out;
        }
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "X-Shardz-Role", "follower");
        if (d->ha.cache_stale)
            evhttp_add_header(h, "X-Shardz-Stale", "true");
    }
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
            szd_reply_error(req, SHARDZ_ENOENT, "no such route");
            goto out;
        }
        seg[nseg++] = t;
    }
    if (nseg == 1 && strcmp(seg[0], "metrics") == 0) {
        size_t len = 0;
        char *text = szd_metrics_text(d, &len);
        struct evbuffer *buf = evbuffer_new();
        if (!text || !buf) {
            free(text);
            if (buf)
                evbuffer_free(buf);
            szd_reply_error(req, SHARDZ_ENOMEM, "out of memory");
            goto out;
        }
        evbuffer_add(buf, text, len);
        free(text);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; version=0.0.4");
        evhttp_send_reply(req, 200, "OK", buf);
        evbuffer_free(buf);
    } else if (nseg == 2 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "status") == 0) {
        szd_reply_json(req, 200, status_json(d), 0);
    } else if (nseg == 2 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "namespaces") == 0) {
        handle_namespaces(d, req, method);
    } else if (nseg >= 3 && strcmp(seg[0], "v1") == 0 && strcmp(seg[1], "namespaces") == 0) {
        handle_ns(d, req, method, seg, nseg, &q);
    } else {
        szd_reply_error(req, SHARDZ_ENOENT, "no such route: %s", path);
    }
out:
    evhttp_clear_headers(&q);
    evhttp_uri_free(parsed);
}
