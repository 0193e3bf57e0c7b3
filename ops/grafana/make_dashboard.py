#!/usr/bin/env python3
"""Writes ops/grafana/shardz.json, the Grafana dashboard for shardz coordinators, from the
panel list below (run it after changing a panel: python3 ops/grafana/make_dashboard.py).
The JSON is checked in so it can be imported as it is; tests/ops/test_ops.sh checks that it
is what this script makes, that every expression parses as PromQL (promtool) and that every
metric it names is exported by a live shardzd."""
import json
import os
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job=~"$job", ns=~"$ns"'
SEL_NO_NS = 'job=~"$job"'

# (title, unit, [(expr, legend)], description); six 8-wide panels per two rows
PANELS = [
    ("Nodes by state", "short",
     [(f"sum by (ns, state) (shardz_nodes{{{SEL}}})", "{{ns}} {{state}}")],
     "Worker nodes per namespace and state (joining, alive, suspect, draining, dead, left)."),
    ("Missing replicas", "short",
     [(f"sum by (ns) (shardz_replicas_missing{{{SEL}}})", "{{ns}}")],
     "Replica slots without a serving owner: above 0 for long means too few nodes, or "
     "stuck moves (alert ShardzReplicasMissing)."),
    ("Moves by reason", "ops",
     [(f"sum by (ns, reason) (rate(shardz_moves_total{{{SEL}}}[$__rate_interval]))",
       "{{ns}} {{reason}}"),
      (f"sum by (ns) (shardz_moves_in_flight{{{SEL}}})", "{{ns}} in flight")],
     "Replica moves started per second by reason (node-dead, drain, join, load, split, "
     "operator, ...), and the moves in flight."),
    ("Move duration", "s",
     [(f"histogram_quantile({q}, sum by (ns, le) "
       f"(rate(shardz_move_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))",
       f"{{{{ns}}}} p{int(q * 100)}") for q in (0.5, 0.99)],
     "From a move's start to done (the new owner serving and the old one dropped)."),
    ("Ping latency", "s",
     [(f"histogram_quantile({q}, sum by (ns, le) "
       f"(rate(shardz_ping_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))",
       f"{{{{ns}}}} p{int(q * 100)}") for q in (0.5, 0.99)] +
     [(f"max(shardz_ping_round_gap_max_seconds{{{SEL_NO_NS}}})", "longest gap between rounds"),
      (f"sum by (ns) (rate(shardz_pings_failed_total{{{SEL}}}[$__rate_interval]))",
       "{{ns}} failed/s")],
     "Answered pings' round trips, the longest interval between two ping rounds (should stay "
     "near the ping interval) and failed pings per second."),
    ("Imbalance per dimension", "short",
     [(f"max by (ns, dim) (shardz_load_max_over_mean{{{SEL}}})", "{{ns}} {{dim}}"),
      (f"max by (ns) (1 + shardz_balance_band{{{SEL}}})", "{{ns}} band"),
      (f"max by (ns) (shardz_node_replicas_max_over_mean{{{SEL}}})", "{{ns}} replicas")],
     "The most loaded node's load over its fair share per load dimension (1 is perfect), "
     "the balancer's band (1 + band) and the imbalance by replica count "
     "(alert ShardzImbalance)."),
    ("Store write latency", "s",
     [(f"histogram_quantile({q}, sum by (instance, le) "
       f"(rate(shardz_store_write_duration_seconds_bucket{{{SEL_NO_NS}}}[$__rate_interval])))",
       f"{{{{instance}}}} p{int(q * 100)}") for q in (0.5, 0.99)] +
     [(f"sum by (instance) (shardz_store_batches_queued{{{SEL_NO_NS}}})",
       "{{instance}} batches queued"),
      (f"min by (instance) (shardz_store_fsync_full{{{SEL_NO_NS}}})",
       "{{instance}} fsync full")],
     "Store transactions (SQLite or etcd), the store lane's queue, and whether every commit "
     "is fsynced (alerts ShardzStoreWritesSlow, ShardzFsyncOff)."),
    ("Leadership", "short",
     [(f"max by (instance) (shardz_leader{{{SEL_NO_NS}}})", "{{instance}} leads"),
      (f"sum by (instance) (increase(shardz_leader_changes_total{{{SEL_NO_NS}}}[$__range]))",
       "{{instance}} changes in range")],
     "Which coordinator leads (1) and how often leadership changed (alert ShardzNoLeader)."),
    ("Partitions and revision", "short",
     [(f"sum by (ns) (shardz_partitions{{{SEL}}})", "{{ns}} partitions"),
      (f"sum by (ns) (rate(shardz_revision{{{SEL}}}[$__rate_interval]))", "{{ns}} changes/s"),
      (f"sum by (ns) (shardz_watches_parked{{{SEL}}})", "{{ns}} watches")],
     "Partitions per namespace, how fast the namespace's revision moves, and watches parked."),
]


def panel(i, title, unit, targets, desc):
    return {
        "id": i + 1,
        "type": "timeseries",
        "title": title,
        "description": desc,
        "datasource": DS,
        "gridPos": {"h": 8, "w": 8, "x": (i % 3) * 8, "y": (i // 3) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                    "tooltip": {"mode": "multi"}},
        "targets": [{"refId": chr(ord("A") + k), "datasource": DS, "expr": e,
                     "legendFormat": leg} for k, (e, leg) in enumerate(targets)],
    }


def var(name, label, query):
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "query": {"query": query, "refId": name}, "definition": query,
            "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
            "current": {"text": "All", "value": "$__all"}, "sort": 1}


def dashboard():
    return {
        "title": "shardz",
        "uid": "shardz",
        "description": "shardz coordinators: nodes, replicas, moves, pings, balance, store, "
                       "leadership (docs/OPERATIONS.md, Monitoring)",
        "tags": ["shardz"],
        "timezone": "",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource",
             "query": "prometheus", "current": {}},
            var("job", "Job", "label_values(shardz_uptime_seconds, job)"),
            var("ns", "Namespace", 'label_values(shardz_partitions{job=~"$job"}, ns)'),
        ]},
        "annotations": {"list": []},
        "panels": [panel(i, *p) for i, p in enumerate(PANELS)],
    }


def main(argv):
    """make_dashboard.py [OUT]: writes OUT (default: shardz.json beside this script)."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = argv[1] if len(argv) > 1 else os.path.join(here, "shardz.json")
    with open(out, "w") as f:
        json.dump(dashboard(), f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv)
