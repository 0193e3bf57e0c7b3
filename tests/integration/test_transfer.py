"""State transfer (issue 13, item 4) against a real shardzd and real worker processes
(fakeworker.py with --transfer-ms: it offers "transfer", answers a replica that comes from
another node "ready": false, and reports it ready in a ping reply once its copy is done): a
replica being added names the node it comes from; routing switches to it (and the old owner is
told to delete) only once it is ready, or, for a worker that never becomes ready, after the
namespace's transfer_timeout_ms, logged, counted and recorded as an event.
Usage: test_transfer.py SHARDZD_BINARY"""
import re
import sys
import urllib.request

from harness import Daemon, Worker, read_events, run, settled, wait_for

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


if __name__ == "__main__":
    run([test_slow_transfer_waits_for_ready, test_never_ready_times_out])
