/* The loop's side of health: applies the health lane's reports (health_lane.h) to the
 * namespaces. A ping reply is contact (a joining, suspect or dead node becomes alive or
 * draining) and carries applied revisions, load samples and split hints; a verdict makes a
 * node suspect or dead, with the time its lease may have run from. Event-loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/health_lane.h"
#include "daemon/range.h"

void szd_node_contact(szd_ns *ns, szd_node *n, bool ping)
{
    if (n->state == SZD_NODE_DEAD && !ping) {
        /* The health lane alone revives a dead node, by its next ping reply: were another
         * answer counted as contact, the loop would count the node alive while the lane, still
         * holding its dead verdict, would never declare it dead again however its pings fail
         * (test_late_reply_does_not_revive). */
        szd_log(ns->d, SZD_INFO, "msg=\"assignment answered by a dead node\" ns=%s node=%s",
                ns->cfg.name, n->id);
        return;
    }
    n->last_ok_ms = szd_now(ns->d);
    if (n->state == SZD_NODE_JOINING || n->state == SZD_NODE_SUSPECT || n->state == SZD_NODE_DEAD) {
        if (n->leaving || n->drained) {
            szd_node_set_state(ns, n, SZD_NODE_DRAINING);
        } else {
            szd_node_set_state(ns, n, SZD_NODE_ALIVE);
        }
        /* tell it what it should serve now: what changed while it was silent was recorded for
         * it (a delta names it; a worker that lost its state refuses the delta and gets the
         * whole set) */
        n->dirty = true;
    }
}

static szd_ns *ns_by_key(szd *d, uint64_t key)
{
    for (uint32_t i = 0; i < d->nns; i++) {
        if (d->ns[i]->key == key) {
            return d->ns[i];
        }
    }
    return NULL;
}

static void ping_ok(szd_ns *ns, szd_node *n, const szd_hl_report *r)
{
    szd_hist_add(&ns->ping_hist, (double)r->rtt_ms / 1000.0);
    szd_node_contact(ns, n, true);
    if (r->revived) {
        /* its replicas no longer wait for its lease to run out (it is not dead here): its
         * pings may grant the lease again */
        szd_hl_node_grant(ns->d->hl, ns->key, n->id);
    }
    json_t *ar = json_object_get(r->body, "applied_revision");
    if (json_is_integer(ar)) {
        uint64_t applied = (uint64_t)json_integer_value(ar);
        if (szd_push_check_ahead(ns, n, applied)) {
            szd_ns_schedule(ns);
            return; /* nothing it says about its replicas counts until it is resynchronised */
        }
        /* A worker that restarted (or lost a push) reports an older assignment than it
         * acknowledged, in a ping sent after that acknowledgement (an earlier ping may still
         * carry the one before): it gets the whole set. */
        bool after_ack = r->at_ms - r->rtt_ms > n->acked_ms;
        if (applied == 0 && n->applied_revision > 0 && after_ack) {
            /* It holds nothing it acknowledged: its lease lapsed (the grants came late, or it
             * was paused) or it released everything, without being declared dead. What it
             * served counts as not served from now (missing counts it, routing leaves it out)
             * and is given to it again at new generations, once (strict) any lease it may
             * still hold has certainly ended: as for a new process of the node (4.1). */
            szd_log(ns->d, SZD_WARN,
                    "msg=\"worker holds nothing it acknowledged\" ns=%s node=%s "
                    "acknowledged_revision=%llu action=restore",
                    ns->cfg.name, n->id, (unsigned long long)n->applied_revision);
            n->base_revision = 0;
            szd_node_state_unknown(ns, n); /* its applied revision is 0 from here */
            szd_push_full(n);
        }
        if (applied < n->applied_revision && after_ack) {
            szd_push_full(n);
        }
        /* A ping sent before the last acknowledgement says nothing newer than it: taking its
         * (older) revision would hide a later drop from the comparison above, and the worker
         * (a strict lease lapsed right after an assignment) would never get its set again. */
        if (after_ack) {
            n->applied_revision = applied;
        }
    }
    szd_load_samples(ns, n, json_object_get(r->body, "load"));
    szd_range_split_keys(ns, n, json_object_get(r->body, "split_at"));
    szd_transfer_ready(ns, n, json_object_get(r->body, "ready"));
    if (n->dirty) {
        szd_ns_schedule(ns);
    }
}

static void verdict(szd_ns *ns, szd_node *n, const szd_hl_report *r)
{
    if (r->verdict == SZD_FD_DEAD) {
        /* its lease may have been granted until then; the slot machine waits lease_ms more */
        if (r->lease_from_ms > n->lease_from_ms) {
            n->lease_from_ms = r->lease_from_ms;
        }
        if (n->state != SZD_NODE_DEAD && n->state != SZD_NODE_LEFT) {
            szd_node_set_state(ns, n, SZD_NODE_DEAD);
        }
    } else if (r->verdict == SZD_FD_SUSPECT && n->state == SZD_NODE_ALIVE) {
        szd_node_set_state(ns, n, SZD_NODE_SUSPECT);
    }
}

void szd_health_on_reports(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    szd *d = arg;
    szd_hl_report *r = szd_hl_drain(d->hl);
    while (r) {
        szd_hl_report *next = r->next;
        szd_ns *ns = ns_by_key(d, r->ns_key);
        szd_node *n = ns ? szd_node_find(ns, r->node) : NULL;
        if (n && szd_acting(d)) {
            switch (r->kind) {
            case SZD_HL_PING_OK:
                ping_ok(ns, n, r);
                break;
            case SZD_HL_PING_FAILED:
                ns->pings_failed++;
                szd_log(d, SZD_DEBUG, "msg=\"ping failed\" ns=%s node=%s status=%d", ns->cfg.name,
                        n->id, r->status);
                break;
            case SZD_HL_VERDICT:
                verdict(ns, n, r);
                break;
            }
        }
        szd_hl_report_free(r);
        r = next;
    }
}
