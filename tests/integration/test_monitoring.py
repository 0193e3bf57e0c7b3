"""Monitoring that ships with shardz (ops/, issue 14): the Prometheus alerts
(ops/prometheus/alerts.yml) pass `promtool check rules` and their unit tests
(alerts_test.yml: each alert fires on a series made for it, after its `for:`, and not on a
healthy one); the Grafana dashboard (ops/grafana/shardz.json) is what make_dashboard.py makes
and each of its expressions parses as PromQL; a live shardzd's /metrics passes
`promtool check metrics`, and every metric the alerts and the dashboard name is in it.
promtool comes from Debian's prometheus package (scripts/install-deps.sh).
Usage: test_monitoring.py SHARDZD_BINARY"""
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request

from harness import Daemon, Worker, run, settled, wait_for

BIN = sys.argv[1]
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ALERTS = os.path.join(ROOT, "ops", "prometheus", "alerts.yml")
ALERTS_TEST = os.path.join(ROOT, "ops", "prometheus", "alerts_test.yml")
DASHBOARD = os.path.join(ROOT, "ops", "grafana", "shardz.json")
MAKE_DASHBOARD = os.path.join(ROOT, "ops", "grafana", "make_dashboard.py")


def promtool(*args, stdin=None):
    p = subprocess.run(["promtool", *args], input=stdin, capture_output=True, text=True,
                       cwd=os.path.dirname(ALERTS))
    assert p.returncode == 0, f"promtool {' '.join(args)}: {p.stdout}{p.stderr}"
    return p.stdout


def dashboard_exprs():
    with open(DASHBOARD) as f:
        d = json.load(f)
    exprs = [t["expr"] for p in d["panels"] for t in p["targets"]]
    assert exprs, "no expressions in the dashboard"
    return d, exprs


def named_metrics(text):
    return set(re.findall(r"\bshardz_[a-z_]+\b", text))


def test_alert_rules_check_and_fire():
    out = promtool("check", "rules", ALERTS)
    assert "SUCCESS: 6 rules found" in out, out
    promtool("test", "rules", ALERTS_TEST)
    with open(ALERTS) as f:
        text = f.read()
    for alert in ("ShardzReplicasMissing", "ShardzNodeSuspect", "ShardzNoLeader",
                  "ShardzFsyncOff", "ShardzImbalance", "ShardzStoreWritesSlow"):
        assert f"alert: {alert}" in text, alert


def test_dashboard_generated_and_parses():
    with tempfile.TemporaryDirectory() as tmp:
        fresh = os.path.join(tmp, "shardz.json")
        subprocess.run([sys.executable, MAKE_DASHBOARD, fresh], check=True)
        with open(fresh) as a, open(DASHBOARD) as b:
            assert a.read() == b.read(), "ops/grafana/shardz.json is not what make_dashboard.py makes"
        d, exprs = dashboard_exprs()
        # each expression as a recording rule, Grafana's variables given values: promtool
        # parses them as PromQL
        rules = os.path.join(tmp, "dashboard_rules.yml")
        with open(rules, "w") as f:
            f.write("groups:\n  - name: dashboard\n    rules:\n")
            for i, e in enumerate(exprs):
                e = (e.replace("$__rate_interval", "1m").replace("$__range", "1h")
                     .replace("$job", ".*").replace("$ns", ".*"))
                assert "$" not in e, e
                f.write(f"      - record: dashboard:expr{i}\n        expr: {json.dumps(e)}\n")
        out = promtool("check", "rules", rules)
        assert f"SUCCESS: {len(exprs)} rules found" in out, out
    names = named_metrics(" ".join(exprs))
    # what issue 14 asks the dashboard to show
    for m in ("shardz_nodes", "shardz_replicas_missing", "shardz_moves_total",
              "shardz_move_duration_seconds_bucket", "shardz_ping_duration_seconds_bucket",
              "shardz_load_max_over_mean", "shardz_store_write_duration_seconds_bucket",
              "shardz_leader"):
        assert m in names, f"the dashboard does not show {m}"


def test_named_metrics_exist_in_live_metrics():
    d = Daemon(BIN).start()
    workers = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "mon", "partitions": 8, "replicas": 2,
                                          "dimensions": ["cpu", "mem"]})
        workers = [Worker(d, "mon", f"w{i}") for i in range(3)]
        wait_for(lambda: settled(d, "mon", 8, 2, nodes=3), timeout=30, what="placement")
        with urllib.request.urlopen(d.base + "/metrics", timeout=10) as r:
            text = r.read().decode()
        promtool("check", "metrics", stdin=text)
        samples = set(re.findall(r"^(shardz_[a-z_]+)[{ ]", text, re.M))
        assert "shardz_nodes" in samples and "shardz_balance_band" in samples, sorted(samples)
        with open(ALERTS) as f:
            wanted = named_metrics(f.read())
        wanted |= named_metrics(" ".join(dashboard_exprs()[1]))
        missing = sorted(wanted - samples)
        assert not missing, f"named by the alerts or the dashboard, not in /metrics: {missing}"
        print(f"  {len(wanted)} metric names checked against {len(samples)} exported")
    finally:
        for w in workers:
            w.stop()
        d.stop()


if __name__ == "__main__":
    run([test_alert_rules_check_and_fire, test_dashboard_generated_and_parses,
         test_named_metrics_exist_in_live_metrics])
