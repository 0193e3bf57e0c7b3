"""Per-partition load statistics (seed 000) with real processes: workers report load in their
ping replies, the coordinator keeps a time-aware EWMA per partition, apart from the
assignment, so it survives a move and a restart; bad samples are refused and counted.
Usage: test_daemon_stats.py SHARDZD_BINARY"""
import sys
import time
import urllib.request

from harness import Daemon, Worker, routing, run, wait_for

BIN = sys.argv[1]


def part(d, p):
    return d.call("GET", f"/v1/namespaces/kv/partitions/{p}")[1]


def metric(d, name):
    with urllib.request.urlopen(d.base + "/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_statistics_survive_moves_and_restarts():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "kv", "replicas": 1, "partitions": 6,
                                          "dimensions": ["cpu", "mem"], "load_tau_ms": 500,
                                          "ping_interval_ms": 100, "dead_after_ms": 500})
        ws = [Worker(d, "kv", "w0", extra=["--load", "cpu=2.5,mem=100"])]
        wait_for(lambda: all(len(v) == 1 for v in routing(d, "kv").values()), 10)
        wait_for(lambda: all("load" in part(d, str(i)) for i in range(6)), 10, what="samples")
        p0 = part(d, "0")
        assert abs(p0["load"]["cpu"] - 2.5) < 1e-9 and abs(p0["load"]["mem"] - 100) < 1e-9, p0
        assert p0["load_age_ms"] < 1000
        # a second worker whose samples are all wrong: refused, counted, nothing changed
        bad = '{"nope": {"cpu": 1}, "0": {"cpu": -1}, "1": {"gpu": 3}, "2": {"cpu": "x"}}'
        ws.append(Worker(d, "kv", "w1", extra=["--load-json", bad]))
        wait_for(lambda: (metric(d, "shardz_load_samples_rejected_total") or 0) >= 4, 10,
                 what="rejections")
        assert metric(d, "shardz_load_samples_total") > 0
        # the statistics are the partition's, not the node's: they survive a move
        ws[0].kill9()
        wait_for(lambda: all(v == ["w1"] for v in routing(d, "kv").values()), 10, what="moves")
        time.sleep(0.3)
        for i in range(6):
            p = part(d, str(i))
            assert abs(p["load"]["cpu"] - 2.5) < 1e-9, p  # w1 reports nothing usable
            assert "moved_age_ms" in p, p
        ws[1].kill9()
        d.stop()  # writes the statistics
        d2 = Daemon(BIN, data=d.data).start()
        try:
            p = d2.call("GET", "/v1/namespaces/kv/partitions/3")[1]
            assert abs(p["load"]["cpu"] - 2.5) < 1e-9 and abs(p["load"]["mem"] - 100) < 1e-9, p
        finally:
            d2.stop()
    finally:
        for w in ws:
            w.kill9()
        if d.proc.poll() is None:
            d.stop()


def test_ewma_time_aware():
    """A step in the load: the smoothed load moves towards the new level sample by sample, never
    all the way at once and never back, until it gets there."""
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "kv", "replicas": 1, "partitions": 1,
                                          "dimensions": ["cpu"], "load_tau_ms": 1000,
                                          "ping_interval_ms": 100, "dead_after_ms": 2000})
        ws = [Worker(d, "kv", "w0", extra=["--load", "cpu=10"])]
        wait_for(lambda: "load" in part(d, "0"), 10, what="first sample")
        assert abs(part(d, "0")["load"]["cpu"] - 10) < 1e-9  # the first sample is taken as is
        ws[0].kill9()
        ws[0] = Worker(d, "kv", "w0", extra=["--load", "cpu=0"])  # same id, new process
        wait_for(lambda: part(d, "0")["load"]["cpu"] < 9.9, 10, what="the step starting")
        # smoothed: the first sample of the new level moves it part of the way, not all of it
        # (alpha = 1 - exp(-dt / tau) < 1; the arithmetic itself is tests/placement/test_stats.c)
        xs = [part(d, "0")["load"]["cpu"]]
        assert 0 < xs[0] < 10, xs

        def approaching():
            x = part(d, "0")["load"]["cpu"]
            assert x <= xs[-1] + 1e-9, f"the average rose on samples of 0: {xs + [x]}"
            xs.append(x)
            return x < 1.0  # within 10% of the step: about 2.3 tau of samples
        wait_for(approaching, 30, what="the average to approach the new level")
    finally:
        for w in ws:
            w.kill9()
        d.stop()



def test_load_balancer_round():
    """Reported loads drive the load balancer: a dry run names moves off the hot node with
    reason load and the expected imbalance, changing nothing; a round carries them out."""
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "kv", "replicas": 1, "partitions": 12,
                                          "dimensions": ["cpu"], "load_tau_ms": 200,
                                          "ping_interval_ms": 100, "dead_after_ms": 500,
                                          "balance": {"interval_ms": 0, "band": 0.05,
                                                      "max_moves_fraction": 0.5,
                                                      "cooldown_ms": 0}})
        ws = [Worker(d, "kv", "w0", extra=["--load", "cpu=4"]),
              Worker(d, "kv", "w1", extra=["--load", "cpu=1"]),
              Worker(d, "kv", "w2", extra=["--load", "cpu=1"])]
        wait_for(lambda: all(len(v) == 1 for v in routing(d, "kv").values()) and
                 all("load" in part(d, str(i)) for i in range(12)), 10, what="samples")
        time.sleep(0.5)
        on_w0 = [p for p, v in routing(d, "kv").items() if v == ["w0"]]
        # a node's load per dimension: the smoothed loads of the replicas it owns, summed
        # (samples arrive every 100 ms: compare only what was read between two of them, i.e.
        # node loads unchanged from before the partitions' reads to after them)
        def loads():
            return {n["id"]: n["load"]["cpu"]
                    for n in d.call("GET", "/v1/namespaces/kv/nodes")[1]["nodes"]}

        def one_view():
            before, r = loads(), routing(d, "kv")
            parts = {p: part(d, p)["load"]["cpu"] for p in r}
            ones = {nid: d.call("GET", f"/v1/namespaces/kv/nodes/{nid}")[1]["load"]["cpu"]
                    for nid in before}
            return (before, r, parts, ones) if loads() == before else None

        nodes, r, parts, ones = wait_for(one_view, 10, what="a read between two samples")
        for nid, load in nodes.items():
            want = sum(parts[p] for p, v in r.items() if v == [nid])
            assert abs(load - want) < 1e-6, (nid, load, want)
            assert abs(ones[nid] - want) < 1e-6, (nid, ones[nid], want)
        with urllib.request.urlopen(d.base + "/metrics", timeout=5) as m:
            text = m.read().decode()
        imb = [line for line in text.splitlines()
               if line.startswith('shardz_load_max_over_mean{ns="kv",dim="cpu"}')]
        assert imb and float(imb[0].split()[1]) > 1.05, imb  # w0's samples are 4x the others
        rev = d.call("GET", "/v1/namespaces/kv")[1]["revision"]
        plan = d.call("GET", "/v1/namespaces/kv/plan?balancer=load")[1]
        # the hottest node gives first; later steps may even out the others
        assert plan["moves"] and plan["moves"][0]["from"] == "w0", plan
        assert all(m["reason"] == "load" for m in plan["moves"]), plan
        assert plan["max_over_mean_after"]["cpu"] < plan["max_over_mean_before"]["cpu"], plan
        assert d.call("GET", "/v1/namespaces/kv")[1]["revision"] == rev, "a dry run changed state"
        done = d.call("POST", "/v1/namespaces/kv/rebalance?balancer=load")[1]
        assert [m["partition"] for m in done["moves"]] == [m["partition"] for m in plan["moves"]]
        wait_for(lambda: all(routing(d, "kv")[m["partition"]] == [m["to"]]
                             for m in done["moves"]), 10, what="load moves")
        assert len(on_w0) >= 1
        ev = d.call("GET", "/v1/namespaces/kv/events?limit=10000")[1]["events"]
        assert any(e["type"] == "move" and e["reason"] == "load" for e in ev)
        with urllib.request.urlopen(d.base + "/metrics", timeout=5) as r:
            assert 'shardz_moves_total{ns="kv",reason="load"}' in r.read().decode()
    finally:
        for w in ws:
            w.kill9()
        d.stop()


run([test_statistics_survive_moves_and_restarts, test_ewma_time_aware,
     test_load_balancer_round])
