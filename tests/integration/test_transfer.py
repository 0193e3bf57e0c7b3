"""State transfer (issue 13, item 4) against a real shardzd and real worker processes
(fakeworker.py with --transfer-ms: it offers "transfer", answers a replica that comes from
another node "ready": false, and reports it ready in a ping reply once its copy is done): a
replica being added names the node it comes from; routing switches to it (and the old owner is
told to delete) only once it is ready, or, for a worker that never becomes ready, after the
namespace's transfer_timeout_ms, logged, counted and recorded as an event.
Usage: test_transfer.py SHARDZD_BINARY"""
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

from harness import Daemon, KvWorker, Worker, read_events, run, settled, wait_for

BIN = sys.argv[1]
FAST = {"ping_interval_ms": 100, "dead_after_ms": 2000}


def metric(d, name):
    with urllib.request.urlopen(d.base + "/metrics", timeout=5) as r:
        text = r.read().decode()
    m = re.search(r"^" + re.escape(name) + r" (\S+)$", text, re.M)
    assert m, (name, text[:2000])
    return float(m.group(1))


def drain_onto(d, ns, nparts, extra, timeout_ms):
    """w0 (no transfer) holds every partition; w1 (a transferring worker with `extra`) joins and
    w0 is drained: every partition moves to w1. Returns (w0, w1, the events of both)."""
    d.call("POST", "/v1/namespaces", dict(name=ns, replicas=1, partitions=nparts,
                                          transfer_timeout_ms=timeout_ms, **FAST))
    w0 = Worker(d, ns, "w0")
    wait_for(lambda: settled(d, ns, nparts, 1, nodes=1), 20, what="placement on w0")
    w1 = Worker(d, ns, "w1", extra=extra)
    wait_for(lambda: d.call("GET", f"/v1/namespaces/{ns}")[1]["nodes"]["alive"] == 2, 20,
             what="w1 alive")
    d.call("POST", f"/v1/namespaces/{ns}/nodes/w0/drain")
    wait_for(lambda: (lambda r: r if r and all(v == ["w1"] for v in r.values()) else None)(
        settled(d, ns, nparts, 1)), 60, what="every partition on w1")
    return w0, w1


def by(events, node, op, p):
    return [e for e in events if e["node"] == node and e["op"] == op and e["partition"] == p]


def test_slow_transfer_waits_for_ready():
    d = Daemon(BIN).start()
    ws = []
    try:
        w0, w1 = drain_onto(d, "st", 6, ["--transfer-ms", "1500"], 60000)
        ws = [w0, w1]
        evs = read_events(w0.events) + read_events(w1.events)
        for p in map(str, range(6)):
            serve, ready, gone = by(evs, "w1", "serve", p), by(evs, "w1", "ready", p), \
                by(evs, "w0", "delete", p)
            assert serve and ready and gone, (p, serve, ready, gone)
            # the new replica was told where it comes from
            assert serve[0]["from"] == {"node": "w0", "address": f"127.0.0.1:{w0.port}"}, serve
            # routing switched (the old owner told to delete) only after it was ready
            assert ready[0]["t"] <= gone[0]["t"], ("switched before ready", p, ready, gone)
            assert serve[0]["t"] < ready[0]["t"], (p, serve, ready)
        assert metric(d, 'shardz_transfer_timeouts_total{ns="st"}') == 0
        assert metric(d, 'shardz_handoff_duration_seconds_count{ns="st"}') >= 6
        assert metric(d, 'shardz_transfers_waiting{ns="st"}') == 0
        log = d.call("GET", "/v1/namespaces/st/events?since=0&limit=10000")[1]["events"]
        assert not [e for e in log if e["type"] == "transfer-timeout"], log
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_never_ready_times_out():
    d = Daemon(BIN).start()
    ws = []
    try:
        w0, w1 = drain_onto(d, "nr", 4, ["--transfer-ms", "-1"], 1500)
        ws = [w0, w1]
        evs = read_events(w0.events) + read_events(w1.events)
        log = d.call("GET", "/v1/namespaces/nr/events?since=0&limit=10000")[1]["events"]
        timeouts = {e["partition"] for e in log if e["type"] == "transfer-timeout"}
        assert timeouts == {str(p) for p in range(4)}, log
        assert all(e["node"] == "w1" for e in log if e["type"] == "transfer-timeout"), log
        assert not [e for e in evs if e["op"] == "ready"], "a worker that never becomes ready"
        for p in map(str, range(4)):
            serve, gone = by(evs, "w1", "serve", p), by(evs, "w0", "delete", p)
            assert serve and gone and serve[0]["t"] < gone[0]["t"], (p, serve, gone)
        assert metric(d, 'shardz_transfer_timeouts_total{ns="nr"}') == 4
        assert metric(d, 'shardz_transfers_waiting{ns="nr"}') == 0
        assert "state transfer timed out" in d.tail(1 << 20), "the timeout is logged"
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def kv_call(w, method, key, value=None):
    """One request to a shardz-kv worker's /kv/<key>: (status, body bytes)."""
    req = urllib.request.Request(f"http://127.0.0.1:{w.port}/kv/{urllib.parse.quote(key)}",
                                 data=value, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def owner_of(d, ns, key):
    _, r = d.call("GET", f"/v1/namespaces/{ns}/lookup?key={urllib.parse.quote(key)}")
    return [x["node"] for x in r["replicas"] if x["state"] == "serving"][0]


def test_kv_keeps_every_key_across_a_drain():
    """The example kv worker (libshardz) copies a partition's keys from the node it comes from
    before it is ready: after draining one of two workers, every key written before is read
    back from the other."""
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kvt", sharder="hash", replicas=1,
                                              partitions=8, **FAST))
        ws = [KvWorker(d, "kvt", "w1"), KvWorker(d, "kvt", "w2")]
        by_id = {w.node: w for w in ws}
        wait_for(lambda: settled(d, "kvt", 8, 1, nodes=2), 20, what="placement")
        keys = {f"key-{i}": f"value-{i}".encode() * (i % 5 + 1) for i in range(200)}
        on_w1 = 0
        for k, v in keys.items():
            owner = owner_of(d, "kvt", k)
            on_w1 += owner == "w1"
            # the worker's router may lag the coordinator by a moment: retried until stored
            wait_for(lambda: kv_call(by_id[owner], "PUT", k, v)[0] == 200, 10, what=f"put {k}")
        assert 0 < on_w1 < len(keys), on_w1  # both hold some: the drain moves w1's
        d.call("POST", "/v1/namespaces/kvt/nodes/w1/drain")
        wait_for(lambda: (lambda r: r if r and all(v == ["w2"] for v in r.values()) else None)(
            settled(d, "kvt", 8, 1)), 60, what="every partition on w2")
        lost = [k for k, v in keys.items() if kv_call(ws[1], "GET", k) != (200, v)]
        assert not lost, (len(lost), lost[:5])
        copied = [e for e in ws[1].events() if e.get("event") == "transfer"]
        assert sum(e["keys"] for e in copied) == on_w1, copied
        assert all(e["from"] == "w1" and e["ready_rc"] == 0 for e in copied), copied
        assert not [e for e in ws[1].events() if e.get("event") == "transfer-failed"]
        assert metric(d, 'shardz_transfer_timeouts_total{ns="kvt"}') == 0
    finally:
        for w in ws:
            w.stop()
        d.stop()


if __name__ == "__main__":
    run([test_slow_transfer_waits_for_ready, test_never_ready_times_out,
         test_kv_keeps_every_key_across_a_drain])
