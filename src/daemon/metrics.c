/* shardzd's /metrics in the Prometheus text format (version 0.0.4): gauges of every
 * namespace's nodes, partitions and moves, counters of moves by reason and failed pings,
 * histograms of move durations, ping round trips and store writes. Event-loop thread; built
 * on demand for each scrape. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/health_lane.h"
#include "daemon/store_lane.h"

const double szd_hist_bounds[SZD_HIST_N] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                            0.1,   0.25,   0.5,   1,    2.5,   10};

void szd_hist_add(szd_hist *h, double seconds)
{
    for (int i = 0; i < SZD_HIST_N; i++) {
        if (seconds <= szd_hist_bounds[i]) {
            h->b[i]++;
            break;
        }
    }
    h->count++;
    h->sum += seconds;
}

typedef struct {
    char *buf;
    size_t len, cap;
    bool failed;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
    if (o->failed) {
        return;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if (o->len + (size_t)n < o->cap) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = 2 * o->cap + (size_t)n;
        char *nb = realloc(o->buf, ncap);
        if (!nb) {
            o->failed = true;
            return;
        }
        o->buf = nb;
        o->cap = ncap;
    }
}

static void help(out_t *o, const char *name, const char *type, const char *text)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void hist(out_t *o, const char *name, const char *labels, const szd_hist *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < SZD_HIST_N; i++) {
        cum += h->b[i];
        put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, szd_hist_bounds[i],
            (unsigned long long)cum);
    }
    put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)h->count);
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    put(o, "%s_sum%s%s%s %.6f\n%s_count%s%s%s %llu\n", name, open, labels, close, h->sum, name,
        open, labels, close, (unsigned long long)h->count);
}

char *szd_metrics_text(szd *d, size_t *len)
{
    out_t o = {.cap = 8192};
    o.buf = malloc(o.cap);
    if (!o.buf) {
        return NULL;
    }
    o.buf[0] = 0;
    help(&o, "shardz_nodes", "gauge", "Nodes by state.");
    for (uint32_t i = 0; i < d->nns; i++) {
        const szd_ns *ns = d->ns[i];
        size_t cnt[SZD_NODE_LEFT + 1] = {0};
        for (uint32_t k = 0; k < ns->nnodes; k++) {
            cnt[ns->nodes[k]->state]++;
        }
        for (int st = 0; st <= SZD_NODE_LEFT; st++) {
            put(&o, "shardz_nodes{ns=\"%s\",state=\"%s\"} %zu\n", ns->cfg.name,
                szd_node_state_name((szd_node_state)st), cnt[st]);
        }
    }
    help(&o, "shardz_partitions", "gauge", "Partitions.");
    for (uint32_t i = 0; i < d->nns; i++) {
        put(&o, "shardz_partitions{ns=\"%s\"} %u\n", d->ns[i]->cfg.name, d->ns[i]->nparts);
    }
    help(&o, "shardz_replicas_missing", "gauge", "Replica slots without a serving owner.");
    for (uint32_t i = 0; i < d->nns; i++) {
        const szd_ns *ns = d->ns[i];
        size_t missing = 0;
        for (uint32_t k = 0; k < ns->nparts; k++) {
            for (unsigned s = 0; s < ns->parts[k].nrep; s++) {
                const szd_slot *sl = &ns->parts[k].slots[s];
                missing += sl->owner_state != SZD_R_SERVING && sl->prev_state != SZD_R_SERVING;
            }
        }
        put(&o, "shardz_replicas_missing{ns=\"%s\"} %zu\n", ns->cfg.name, missing);
    }
    help(&o, "shardz_moves_in_flight", "gauge", "Replica moves started and not done.");
    for (uint32_t i = 0; i < d->nns; i++) {
        const szd_ns *ns = d->ns[i];
        put(&o, "shardz_moves_in_flight{ns=\"%s\"} %llu\n", ns->cfg.name,
            (unsigned long long)(ns->moves_started > ns->moves_done
                                     ? ns->moves_started - ns->moves_done
                                     : 0));
    }
    help(&o, "shardz_moves_total", "counter", "Replica moves started, by reason.");
    for (uint32_t i = 0; i < d->nns; i++) {
        for (int r = 0; r < SHARDZ_REASON__COUNT; r++) {
            put(&o, "shardz_moves_total{ns=\"%s\",reason=\"%s\"} %llu\n", d->ns[i]->cfg.name,
                shardz_reason_name((shardz_reason)r),
                (unsigned long long)d->ns[i]->moves_by_reason[r]);
        }
    }
    help(&o, "shardz_handoff_duration_seconds", "histogram",
         "Moves from start to routing switched to the new owner (ready, or its transfer timed "
         "out).");
    for (uint32_t i = 0; i < d->nns; i++) {
        char labels[128];
        snprintf(labels, sizeof labels, "ns=\"%s\"", d->ns[i]->cfg.name);
        hist(&o, "shardz_handoff_duration_seconds", labels, &d->ns[i]->handoff_hist);
    }
    help(&o, "shardz_transfer_timeouts_total", "counter",
         "Routing switched to a new owner not ready at transfer_timeout_ms.");
    for (uint32_t i = 0; i < d->nns; i++) {
        put(&o, "shardz_transfer_timeouts_total{ns=\"%s\"} %llu\n", d->ns[i]->cfg.name,
            (unsigned long long)d->ns[i]->transfer_timeouts);
    }
    help(&o, "shardz_transfers_waiting", "gauge",
         "Partitions whose routing waits for a new owner to be ready.");
    for (uint32_t i = 0; i < d->nns; i++) {
        put(&o, "shardz_transfers_waiting{ns=\"%s\"} %zu\n", d->ns[i]->cfg.name,
            d->ns[i]->transfers.n);
    }
    help(&o, "shardz_move_duration_seconds", "histogram", "Moves from start to done.");
    for (uint32_t i = 0; i < d->nns; i++) {
        char labels[128];
        snprintf(labels, sizeof labels, "ns=\"%s\"", d->ns[i]->cfg.name);
        hist(&o, "shardz_move_duration_seconds", labels, &d->ns[i]->move_hist);
    }
    help(&o, "shardz_ping_duration_seconds", "histogram", "Answered pings' round trips.");
    for (uint32_t i = 0; i < d->nns; i++) {
        char labels[128];
        snprintf(labels, sizeof labels, "ns=\"%s\"", d->ns[i]->cfg.name);
        hist(&o, "shardz_ping_duration_seconds", labels, &d->ns[i]->ping_hist);
    }
    help(&o, "shardz_pings_failed_total", "counter", "Pings without a valid answer.");
    for (uint32_t i = 0; i < d->nns; i++) {
        put(&o, "shardz_pings_failed_total{ns=\"%s\"} %llu\n", d->ns[i]->cfg.name,
            (unsigned long long)d->ns[i]->pings_failed);
    }
    help(&o, "shardz_load_samples_total", "counter", "Per-partition load samples applied.");
    for (uint32_t i = 0; i < d->nns; i++) {
        put(&o, "shardz_load_samples_total{ns=\"%s\"} %llu\n", d->ns[i]->cfg.name,
            (unsigned long long)d->ns[i]->load_samples);
    }
    help(&o, "shardz_load_samples_rejected_total", "counter",
         "Load samples refused (unknown partition or dimension, a bad value, not a holder).");
    for (uint32_t i = 0; i < d->nns; i++) {
        put(&o, "shardz_load_samples_rejected_total{ns=\"%s\"} %llu\n", d->ns[i]->cfg.name,
            (unsigned long long)d->ns[i]->load_rejected);
    }
    help(&o, "shardz_node_replicas_max_over_mean", "gauge",
         "Imbalance: most replicas on an alive node over the mean.");
    for (uint32_t i = 0; i < d->nns; i++) {
        shardz_sharder_stats st;
        shardz_sharder_get_stats(d->ns[i]->sh, &st);
        double mean = st.eligible_nodes ? (double)st.replicas / (double)st.eligible_nodes : 0;
        put(&o, "shardz_node_replicas_max_over_mean{ns=\"%s\"} %.6f\n", d->ns[i]->cfg.name,
            mean > 0 ? (double)st.max_count / mean : 0);
    }
    help(&o, "shardz_load_max_over_mean", "gauge",
         "Imbalance per load dimension: the most loaded eligible node's load over its fair "
         "share (1 is perfect; 0 without load).");
    for (uint32_t i = 0; i < d->nns; i++) {
        double imb[SHARDZ_MAX_DIMS] = {0};
        size_t nd = 0;
        if (shardz_sharder_load_imbalance(d->ns[i]->sh, imb, SHARDZ_MAX_DIMS, &nd) != 0) {
            continue;
        }
        for (size_t k = 0; k < nd && k < d->ns[i]->cfg.ndims; k++) {
            put(&o, "shardz_load_max_over_mean{ns=\"%s\",dim=\"%s\"} %.6f\n", d->ns[i]->cfg.name,
                d->ns[i]->cfg.dims[k], imb[k]);
        }
    }
    help(&o, "shardz_balance_band", "gauge",
         "The load balancer's dead band: a node is hot above 1 + band of its fair share "
         "(alert on shardz_load_max_over_mean against it).");
    for (uint32_t i = 0; i < d->nns; i++) {
        put(&o, "shardz_balance_band{ns=\"%s\"} %.6f\n", d->ns[i]->cfg.name,
            d->ns[i]->cfg.balance.band);
    }
    help(&o, "shardz_revision", "gauge", "The namespace's revision.");
    for (uint32_t i = 0; i < d->nns; i++) {
        put(&o, "shardz_revision{ns=\"%s\"} %llu\n", d->ns[i]->cfg.name,
            (unsigned long long)d->ns[i]->revision);
    }
    help(&o, "shardz_store_write_duration_seconds", "histogram", "Store transactions.");
    hist(&o, "shardz_store_write_duration_seconds", "", &d->store_hist);
    shardz_store_status st = {0};
    szd_store_status(d, &st);
    if (d->conns) {
        szd_conns_stats cs;
        szd_conns_get_stats(d->conns, &cs);
        help(&o, "shardz_connections_open", "gauge",
             "Client connections held open (API listener).");
        put(&o, "shardz_connections_open %zu\n", cs.open);
        help(&o, "shardz_connections_max", "gauge",
             "The most client connections held (--max-connections).");
        put(&o, "shardz_connections_max %zu\n", cs.max);
        help(&o, "shardz_connections_evicted_total", "counter",
             "Idle client connections closed to make room at the cap.");
        put(&o, "shardz_connections_evicted_total %llu\n", (unsigned long long)cs.evicted);
        help(&o, "shardz_connections_capped_total", "counter",
             "Times accepting paused at the cap with no idle connection to close.");
        put(&o, "shardz_connections_capped_total %llu\n", (unsigned long long)cs.capped);
        help(&o, "shardz_connections_watches_released_total", "counter",
             "Parked watches answered early to make room at the cap.");
        put(&o, "shardz_connections_watches_released_total %llu\n",
            (unsigned long long)cs.released);
        help(&o, "shardz_accept_errors_total", "counter",
             "accept() failures (EMFILE, ENFILE, ...); each pauses accepting, with backoff.");
        put(&o, "shardz_accept_errors_total %llu\n", (unsigned long long)cs.accept_errors);
    }
    help(&o, "shardz_watches_parked", "gauge", "Watches waiting for a change.");
    for (uint32_t i = 0; i < d->nns; i++) {
        size_t n = 0;
        for (const szd_waiter *w = d->ns[i]->waiters; w; w = w->next) {
            n++;
        }
        put(&o, "shardz_watches_parked{ns=\"%s\"} %zu\n", d->ns[i]->cfg.name, n);
    }
    help(&o, "shardz_ping_round_gap_max_seconds", "gauge",
         "The longest interval between two rounds of pings since the last scrape.");
    put(&o, "shardz_ping_round_gap_max_seconds %.3f\n",
        d->hl ? (double)szd_hl_ping_gap_max(d->hl) / 1000.0 : 0.0);
    help(&o, "shardz_store_batches_queued", "gauge",
         "Batches queued on the store lane, not yet completed.");
    put(&o, "shardz_store_batches_queued %zu\n", d->sl ? szd_sl_queued(d->sl) : (size_t)0);
    szd_sl_counts sc = d->sl ? szd_sl_counts_get(d->sl) : (szd_sl_counts){0};
    help(&o, "shardz_store_batches_total", "counter", "Batches the store lane wrote.");
    put(&o, "shardz_store_batches_total %llu\n", (unsigned long long)sc.batches);
    help(&o, "shardz_store_records_total", "counter",
         "Records (puts and deletes) the store lane's batches wrote.");
    put(&o, "shardz_store_records_total %llu\n", (unsigned long long)sc.records);
    help(&o, "shardz_store_bytes_total", "counter",
         "Bytes of keys and values the store lane's batches wrote.");
    put(&o, "shardz_store_bytes_total %llu\n", (unsigned long long)sc.bytes);
    help(&o, "shardz_store_fsync_full", "gauge", "1 when every commit is fsynced.");
    put(&o, "shardz_store_fsync_full %d\n", st.sync == SHARDZ_STORE_SYNC_FULL);
    help(&o, "shardz_leader", "gauge", "1 when this coordinator leads.");
    put(&o, "shardz_leader %d\n", szd_acting(d) ? 1 : 0);
    help(&o, "shardz_leader_changes_total", "counter", "Leadership changes seen.");
    put(&o, "shardz_leader_changes_total %llu\n", (unsigned long long)d->ha.leader_changes);
    help(&o, "shardz_uptime_seconds", "gauge", "Seconds since start.");
    put(&o, "shardz_uptime_seconds %.3f\n", (double)(szd_now(d) - d->started_ms) / 1000.0);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
