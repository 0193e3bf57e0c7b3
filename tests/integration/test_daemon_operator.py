"""shardzd's operator API against a real daemon and real worker processes: drain and undrain,
an operator's move, a dry-run plan and a rebalance, cancelling a move in flight, the event
log, and /metrics checked by a Prometheus text-format checker.
Usage: test_daemon_operator.py SHARDZD_BINARY"""
import os
import re
import sys
import threading
import time
import urllib.request

from harness import Daemon, HTTPError, Worker, error_of, routing, run, settled, wait_for

BIN = sys.argv[1]
FAST = {"ping_interval_ms": 100, "dead_after_ms": 500}


def events(d, ns):
    return d.call("GET", f"/v1/namespaces/{ns}/events?since=0&limit=10000")[1]["events"]


def test_drain_undrain_move_plan():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=12, **FAST))
        ws = [Worker(d, "kv", f"w{i}") for i in range(3)]
        wait_for(lambda: settled(d, "kv", 12, 1, nodes=3), 10, what="placement")
        st, node = d.call("POST", "/v1/namespaces/kv/nodes/w0/drain")
        assert st == 202 and node["drained"] and node["state"] == "draining", node
        r = wait_for(lambda: (lambda r: r if r and all("w0" not in v for v in r.values())
                              else None)(settled(d, "kv", 12, 1)), 10, what="drain")
        # A drained node that holds nothing stays registered, unlike a worker that leaves.
        # The positive control in the same namespace: w3 joins, takes its share and leaves
        # gracefully; it is released (`left`) by a release pass that ran after w0 held
        # nothing, and that pass must have kept w0.
        ws.append(Worker(d, "kv", "w3"))
        wait_for(lambda: (lambda r: r if r and any("w3" in v for v in r.values())
                          else None)(settled(d, "kv", 12, 1, nodes=3)), 10, what="w3 placed")
        ws[-1].stop()  # SIGTERM: the worker's graceful leave
        ev = wait_for(lambda: (lambda ev: ev if any(
            e["type"] == "node-state" and e["node"] == "w3" and e["to"] == "left" for e in ev)
            else None)(events(d, "kv")), 10, what="w3 released")
        assert not any(e["type"] == "node-state" and e["node"] == "w0" and e["to"] == "left"
                       for e in ev), [e for e in ev if e["type"] == "node-state"]
        n = d.call("GET", "/v1/namespaces/kv/nodes/w0")[1]
        assert n["state"] == "draining" and n["replicas"] == 0, n  # stays, not released
        st, node = d.call("POST", "/v1/namespaces/kv/nodes/w0/undrain")
        assert st == 200 and not node["drained"], node
        # undraining makes it eligible again: the placement gives it its share by itself
        r = wait_for(lambda: (lambda r: r if r and sum(1 for v in r.values() if "w0" in v) == 4
                              else None)(settled(d, "kv", 12, 1)), 10, what="undrain")
        # an operator's move (it leaves an imbalance that only a rebalance would undo)
        p = next(p for p, v in sorted(r.items()) if v[0] != "w2")
        st, _ = d.call("POST", f"/v1/namespaces/kv/partitions/{p}/move", {"slot": 0, "to": "w2"})
        assert st == 202
        wait_for(lambda: routing(d, "kv")[p] == ["w2"], 10, what="operator move")
        wait_for(lambda: settled(d, "kv", 12, 1), 10, what="settled")
        ev = d.call("GET", "/v1/namespaces/kv/events?since=0&limit=10000")[1]["events"]
        assert any(e["type"] == "move" and e["reason"] == "operator" and e["partition"] == p
                   for e in ev), ev[-5:]
        assert any(e["type"] == "node-state" and e["to"] == "draining" for e in ev)
        assert any(e["type"] == "move-done" for e in ev)
        assert [e["seq"] for e in ev] == sorted(e["seq"] for e in ev)
        # the plan shows what a rebalance would do (undo the imbalance), and changes nothing
        rev = d.call("GET", "/v1/namespaces/kv")[1]["revision"]
        plan = d.call("GET", "/v1/namespaces/kv/plan")[1]
        assert len(plan["moves"]) == 1 and plan["moves"][0]["from"] == "w2", plan
        assert d.call("GET", "/v1/namespaces/kv")[1]["revision"] == rev
        done = d.call("POST", "/v1/namespaces/kv/rebalance")[1]
        assert done["moves"] == plan["moves"], (done, plan)
        r = wait_for(lambda: settled(d, "kv", 12, 1), 10, what="rebalance")
        assert sorted(sum(1 for v in r.values() if w in v) for w in ("w0", "w1", "w2")) == \
            [4, 4, 4], r
        # bad operator input changes nothing
        rev = d.call("GET", "/v1/namespaces/kv")[1]["revision"]
        assert error_of(lambda: d.call("POST", f"/v1/namespaces/kv/partitions/{p}/move",
                                       {"slot": 0, "to": "w2"})) == (409, "EEXIST")
        assert error_of(lambda: d.call("POST", f"/v1/namespaces/kv/partitions/{p}/move",
                                       {"slot": 5, "to": "w1"}))[0] == 404
        assert error_of(lambda: d.call("POST", f"/v1/namespaces/kv/partitions/{p}/move",
                                       {"slot": 0, "to": "nope"})) == (404, "ENOENT")
        assert error_of(lambda: d.call("POST", f"/v1/namespaces/kv/partitions/{p}/move",
                                       {"to": "w1"})) == (400, "EINVAL")
        assert error_of(lambda: d.call("DELETE", f"/v1/namespaces/kv/moves/{p}/0")) == \
            (404, "ENOENT")
        assert error_of(lambda: d.call("GET", "/v1/namespaces/kv/events?limit=0"))[0] == 400
        assert d.call("GET", "/v1/namespaces/kv")[1]["revision"] == rev
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_cancel_move_in_flight():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=4, **FAST))
        ws = [Worker(d, "kv", "w0")]
        wait_for(lambda: settled(d, "kv", 4, 1, nodes=1), 10, what="placement")
        ws.append(Worker(d, "kv", "w1", extra=["--serve-delay-ms", "3000"]))
        def alive(node):
            try:
                return d.call("GET", f"/v1/namespaces/kv/nodes/{node}")[1]["state"] == "alive"
            except HTTPError:
                return False
        wait_for(lambda: alive("w1"), 10, what="w1 alive")
        # w1 joined: moves to it are in flight (its serve hook takes 3 s)
        moves = wait_for(lambda: d.call("GET", "/v1/namespaces/kv/moves")[1]["moves"], 5)
        m = moves[0]
        p = m["partition"]
        assert m["from"] == "w0" and m["to"] == "w1" and m["reason"] == "join", m
        assert routing(d, "kv")[p] == ["w0"]  # make before break: still the old owner
        st, _ = d.call("DELETE", f"/v1/namespaces/kv/moves/{p}/0")
        assert st == 200
        assert all(x["partition"] != p for x in d.call("GET", "/v1/namespaces/kv/moves")[1]["moves"])
        wait_for(lambda: settled(d, "kv", 4, 1), 15, what="the other moves")
        assert routing(d, "kv")[p] == ["w0"]
    finally:
        for w in ws:
            w.kill9()
        d.stop()


METRIC_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
                         r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (-?[0-9.e+-]+|\+Inf|NaN)$')


def test_operator_writes_answer_once_durable():
    """Issue 15: an operator's move, a cancel and a rebalance answer 2xx only once the change
    is durable. With every store write held (SHARDZ_TEST_STORE_HOLD), a move is applied (its
    log line) but its 202 comes only after the hold is released; with writes failing
    (SHARDZ_TEST_STORE_FAIL) a move, an add of partitions and a rebalance that change something
    get no 2xx (500 EIO naming the store) and change nothing: the failed move is not in the
    moves and is not carried out by the next write that succeeds, nor is the added partition;
    the rebalance's moves are not kept. Positive controls: the same kinds of change succeed
    once writes do."""
    d = Daemon(BIN)
    hold, fail = os.path.join(d.tmp, "hold"), os.path.join(d.tmp, "fail")
    d.env["SHARDZ_TEST_STORE_HOLD"] = hold
    d.env["SHARDZ_TEST_STORE_FAIL"] = fail
    d.start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=6, **FAST))
        ws = [Worker(d, "kv", f"w{i}") for i in range(2)]
        r = wait_for(lambda: settled(d, "kv", 6, 1, nodes=2), 10, what="placement")
        pid, owner = sorted(r.items())[0]
        to = "w1" if owner == ["w0"] else "w0"
        open(hold, "w").close()
        got = {}

        def move():
            got["reply"] = d.call("POST", f"/v1/namespaces/kv/partitions/{pid}/move",
                                  {"slot": 0, "to": to}, timeout=30)
            got["t"] = time.time()
        t = threading.Thread(target=move)
        t.start()
        applied = f'msg="move" ns=kv partition={pid} slot=0 from={owner[0]} to={to} reason=operator'
        wait_for(lambda: applied in d.tail(), 10, what="the move applied in memory")
        released = time.time()
        os.remove(hold)
        t.join(30)
        assert got["reply"][0] == 202, got
        assert got["t"] > released, "the move was answered before its write was released"
        wait_for(lambda: settled(d, "kv", 6, 1, nodes=2), 10, what="the move done")

        # failing writes: no 2xx for a change that is not durable, and the change is not kept
        # either (issue 15): the namespace is read again from the store, so no later pass
        # writes or carries out what the caller was told failed
        open(fail, "w").close()
        r = routing(d, "kv")
        other = {"w0": "w1", "w1": "w0"}
        # the move that succeeds below goes from the node with fewer partitions to the other,
        # so that a rebalance has moves to make afterwards
        count = {w: sum(1 for o in r.values() if o == [w]) for w in other}
        few = min(count, key=lambda w: count[w])
        pid2 = sorted(p for p, o in r.items() if o == [few])[0]
        owner2 = [few]
        pid1 = sorted(p for p in r if p != pid2)[0]
        owner1 = r[pid1]
        st, code = error_of(lambda: d.call("POST", f"/v1/namespaces/kv/partitions/{pid1}/move",
                                           {"slot": 0, "to": other[owner1[0]]}))
        assert st >= 500 and code == "EIO", (st, code)
        _, mv = d.call("GET", "/v1/namespaces/kv/moves")
        assert mv["moves"] == [], ("a failed move stayed in memory", mv)
        # so there is no move to cancel (a cancel takes the same path as a move once started)
        st, code = error_of(lambda: d.call("DELETE", f"/v1/namespaces/kv/moves/{pid1}/0"))
        assert st == 404 and code == "ENOENT", (st, code)
        st, code = error_of(lambda: d.call("POST", "/v1/namespaces/kv/partitions",
                                           {"ids": ["extra"]}))
        assert st >= 500 and code == "EIO", (st, code)
        _, parts = d.call("GET", "/v1/namespaces/kv/partitions")
        assert "extra" not in [p["partition"] for p in parts["partitions"]], "a failed add stayed"
        os.remove(fail)
        # with writes working, another move goes through and settles: had the failed move or
        # the failed add stayed in memory, this write would have carried them too
        st, _ = d.call("POST", f"/v1/namespaces/kv/partitions/{pid2}/move",
                       {"slot": 0, "to": other[owner2[0]]})
        assert st == 202
        wait_for(lambda: routing(d, "kv").get(pid2) == [other[owner2[0]]], 30,
                 what="the second move done")
        wait_for(lambda: settled(d, "kv", 6, 1, nodes=2), 30, what="settled after it")
        r2 = routing(d, "kv")
        assert r2[pid1] == owner1, ("the failed move was carried out later", r2[pid1], owner1)
        assert "extra" not in r2, "the failed add was carried out later"
        # a rebalance has moves to make now (the operator's move unbalanced the nodes); while
        # writes fail it gets no 2xx and its moves are not kept
        open(fail, "w").close()
        st, code = error_of(lambda: d.call("POST", "/v1/namespaces/kv/rebalance"))
        assert st >= 500 and code == "EIO", (st, code)
        _, mv = d.call("GET", "/v1/namespaces/kv/moves")
        assert mv["moves"] == [] and routing(d, "kv") == r2, ("a failed rebalance stayed", mv)
        os.remove(fail)
        _, reb = d.call("POST", "/v1/namespaces/kv/rebalance")  # the positive control
        assert len(reb["moves"]) >= 1, reb
    finally:
        for f in (hold, fail):
            if os.path.exists(f):
                os.remove(f)
        for w in ws:
            w.kill9()
        d.stop()


def check_prometheus(text):
    """A checker of the Prometheus text format (0.0.4): every line a HELP, a TYPE or a
    sample of a declared family; histogram buckets cumulative, ending in +Inf = _count."""
    types, samples = {}, []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, f"{name} declared twice"
            types[name] = typ
            continue
        m = METRIC_LINE.match(line)
        assert m, f"not a sample: {line!r}"
        name = m.group(1)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, f"{name} has no TYPE"
        if name in types and types[name] == "counter":
            assert name.endswith("_total"), name
        samples.append((name, m.group(3) or "", float(m.group(5))))
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        series = {}
        for name, labels, v in samples:
            if name == fam + "_bucket":
                key = re.sub(r',?le="[^"]*"', "", labels)
                series.setdefault(key, []).append(v)
        for key, vals in series.items():
            assert vals == sorted(vals), f"{fam}{{{key}}} buckets not cumulative"
            count = [v for n, l, v in samples if n == fam + "_count" and l == key]
            assert count and count[0] == vals[-1], f"{fam}{{{key}}}: +Inf != _count"
    return types, samples


def test_metrics():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=2, partitions=8, **FAST))
        ws = [Worker(d, "kv", f"w{i}") for i in range(3)]
        wait_for(lambda: settled(d, "kv", 8, 2, nodes=3), 10, what="placement")

        def scrape():
            with urllib.request.urlopen(d.base + "/metrics", timeout=5) as r:
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                return check_prometheus(r.read().decode())

        # the 16 first placements are done: wait until the scrape has their durations
        types, samples = wait_for(lambda: (lambda ts: ts if any(
            n == "shardz_move_duration_seconds_count" and l == 'ns="kv"' and v >= 16
            for n, l, v in ts[1]) else None)(scrape()), 10, what="16 move durations")
        for fam in ("shardz_nodes", "shardz_moves_total", "shardz_move_duration_seconds",
                    "shardz_ping_duration_seconds", "shardz_store_write_duration_seconds",
                    "shardz_node_replicas_max_over_mean", "shardz_store_fsync_full",
                    "shardz_leader_changes_total", "shardz_replicas_missing"):
            assert fam in types, fam
        val = {(n, l): v for n, l, v in samples}
        assert val[("shardz_nodes", 'ns="kv",state="alive"')] == 3
        assert val[("shardz_moves_total", 'ns="kv",reason="new"')] == 16
        assert val[("shardz_replicas_missing", 'ns="kv"')] == 0
        assert val[("shardz_store_fsync_full", "")] == 1
        assert val[("shardz_move_duration_seconds_count", 'ns="kv"')] >= 16
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_failed_registration_changes_nothing():
    """Issue 15 item 6: a registration whose store write fails (SHARDZ_TEST_STORE_FAIL) gets a
    5xx JSON error naming the store and changes nothing in memory: no new node, no new zone,
    no new revision, also after the hook is lifted. The positive control: the same requests
    succeed once writes do (so the ones refused would have been seen)."""
    d = Daemon(BIN)
    fail = os.path.join(d.tmp, "fail")
    d.env["SHARDZ_TEST_STORE_FAIL"] = fail
    d.start()
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=4, **FAST))
        d.call("POST", "/v1/namespaces/kv/nodes", {"id": "old", "address": "127.0.0.1:9",
                                                   "zone": "a"})

        def seen():
            _, ns = d.call("GET", "/v1/namespaces/kv")
            _, nodes = d.call("GET", "/v1/namespaces/kv/nodes")
            return ns["revision"], {n["id"]: n["zone"] for n in nodes["nodes"]}
        before = seen()
        open(fail, "w").close()
        for body in ({"id": "new", "address": "127.0.0.1:10", "zone": "b"},
                     {"id": "old", "address": "127.0.0.1:9", "zone": "b"}):
            st, code = error_of(lambda: d.call("POST", "/v1/namespaces/kv/nodes", body))
            assert st >= 500 and code == "EIO", (body, st, code)
            assert seen() == before, (body, seen(), before)
        os.remove(fail)
        assert seen() == before, "a failed registration showed up once writes work again"
        # the positive control: the same two registrations, with writes working
        d.call("POST", "/v1/namespaces/kv/nodes", {"id": "new", "address": "127.0.0.1:10",
                                                   "zone": "b"})
        d.call("POST", "/v1/namespaces/kv/nodes", {"id": "old", "address": "127.0.0.1:9",
                                                   "zone": "b"})
        rev, nodes = seen()
        assert rev > before[0] and nodes == {"old": "b", "new": "b"}, (rev, nodes)
    finally:
        if os.path.exists(fail):
            os.remove(fail)
        d.stop()


def test_unread_namespace_holds_its_change():
    """Issue 15: when the namespace of a failed write cannot be read again either (reads fail:
    SHARDZ_TEST_STORE_READ_FAIL, as with an unreachable etcd), the change stays in memory only
    and nothing is written over it: another change is refused (500 EIO naming the namespace
    still to be read again) even with writes working. Once reads work, the work pass reads it
    again and the failed move is gone (seen in /moves before, so the check can fail). Positive
    control: the same move then goes through."""
    d = Daemon(BIN)
    fail, rfail = os.path.join(d.tmp, "fail"), os.path.join(d.tmp, "rfail")
    d.env["SHARDZ_TEST_STORE_FAIL"] = fail
    d.env["SHARDZ_TEST_STORE_READ_FAIL"] = rfail
    d.start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=4,
                                              ping_interval_ms=200, dead_after_ms=3000))
        ws = [Worker(d, "kv", f"w{i}") for i in range(2)]
        r = wait_for(lambda: settled(d, "kv", 4, 1, nodes=2), 30, what="placement")
        (pid, owner), (pid2, owner2) = sorted(r.items())[:2]
        other = {"w0": "w1", "w1": "w0"}
        for f in (fail, rfail):
            open(f, "w").close()
        st, code = error_of(lambda: d.call("POST", f"/v1/namespaces/kv/partitions/{pid}/move",
                                           {"slot": 0, "to": other[owner[0]]}))
        assert st >= 500 and code == "EIO", (st, code)
        _, mv = d.call("GET", "/v1/namespaces/kv/moves")
        assert [m["partition"] for m in mv["moves"]] == [pid], ("held in memory", mv)
        os.remove(fail)  # writes work again; the namespace is still to be read
        try:
            d.call("POST", f"/v1/namespaces/kv/partitions/{pid2}/move",
                   {"slot": 0, "to": other[owner2[0]]})
            raise AssertionError("a change was written over one not durable")
        except HTTPError as e:
            assert e.status >= 500 and "read again" in e.body["message"], (e.status, e.body)
        os.remove(rfail)
        wait_for(lambda: d.call("GET", "/v1/namespaces/kv/moves")[1]["moves"] == [], 30,
                 what="the namespace read again by the work pass")
        assert routing(d, "kv")[pid] == owner
        assert "namespace read again after a failed write" in d.tail()
        st, _ = d.call("POST", f"/v1/namespaces/kv/partitions/{pid}/move",
                       {"slot": 0, "to": other[owner[0]]})
        assert st == 202
        wait_for(lambda: routing(d, "kv").get(pid) == [other[owner[0]]], 30, what="the move")
    finally:
        for f in (fail, rfail):
            if os.path.exists(f):
                os.remove(f)
        for w in ws:
            w.kill9()
        d.stop()


run([test_drain_undrain_move_plan, test_cancel_move_in_flight, test_metrics,
     test_operator_writes_answer_once_durable, test_failed_registration_changes_nothing,
     test_unread_namespace_holds_its_change])
