"""Planned maintenance against a real shardzd and real worker processes (issue 13, items 1 and
2): the availability floor and the drain gate (min_available, max_moves_in_flight, the queue of
held-back moves with their reasons), POST /v1/stoppable, drain reasons and zone drains, a
rolling restart of every worker with a client reading every partition throughout, and bad
input (400/404 with a JSON body naming the problem, nothing changed).
Usage: test_maintenance.py SHARDZD_BINARY"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

from harness import Daemon, HTTPError, Worker, routing, run, settled, wait_for

BIN = sys.argv[1]
FAST = {"ping_interval_ms": 100, "dead_after_ms": 1500}


def error_of(fn):
    try:
        fn()
    except HTTPError as e:
        return e.status, e.body
    raise AssertionError("no error")


def events(d, ns):
    return d.call("GET", f"/v1/namespaces/{ns}/events?since=0&limit=10000")[1]["events"]


def serving_counts(d, ns):
    """partition -> replicas serving, from the coordinator's state."""
    return {p: len(v) for p, v in routing(d, ns).items()}


class Watcher(threading.Thread):
    """Polls the coordinator until stopped: the fewest replicas serving any partition, the
    namespace's below_floor, the most planned moves in flight, and every queued entry seen."""

    PLANNED = {"drain", "leave", "operator", "rebalance", "load", "join"}

    def __init__(self, d, ns):
        super().__init__(daemon=True)
        self.d, self.ns = d, ns
        self.min_serving = None
        self.below_floor = 0
        self.max_planned = 0
        self.queued = []
        self.polls = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                c = serving_counts(self.d, self.ns)
                s = self.d.call("GET", f"/v1/namespaces/{self.ns}")[1]
                m = self.d.call("GET", f"/v1/namespaces/{self.ns}/moves")[1]
            except (OSError, HTTPError):
                continue
            if c:
                low = min(c.values())
                self.min_serving = low if self.min_serving is None else min(low, self.min_serving)
            self.below_floor = max(self.below_floor, s["below_floor"])
            planned = sum(1 for mv in m["moves"] if mv["reason"] in self.PLANNED)
            self.max_planned = max(self.max_planned, planned)
            self.queued.extend(m["queued"])
            self.polls += 1
            time.sleep(0.02)

    def stop(self):
        self.halt.set()
        self.join(10)


def worker_port(d, ns, node):
    return int(d.call("GET", f"/v1/namespaces/{ns}/nodes/{node}")[1]["address"].split(":")[1])


class Reader(threading.Thread):
    """A client reading every partition continuously: it finds the partition's serving
    replicas in the coordinator's routing and reads from the first that answers (GET
    /read/<pid> on the worker: 200 only while it serves it). A read fails when none does."""

    def __init__(self, d, ns):
        super().__init__(daemon=True)
        self.d, self.ns = d, ns
        self.reads = self.failed = 0
        self.failures = []
        self.halt = threading.Event()

    def read_one(self, pid, replicas):
        for r in replicas:
            try:
                url = f"http://{r['address']}/read/{pid}"
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return True
            except (OSError, urllib.error.HTTPError):
                continue
        return False

    def run(self):
        while not self.halt.is_set():
            try:
                st = self.d.call("GET", f"/v1/namespaces/{self.ns}/state")[1]
            except (OSError, HTTPError):
                continue
            for p in st["partitions"]:
                reps = [r for r in p["replicas"] if r["state"] == "serving"]
                self.reads += 1
                if not self.read_one(p["id"], reps):
                    self.failed += 1
                    self.failures.append((time.time(), p["id"], reps))

    def stop(self):
        self.halt.set()
        self.join(10)


def test_bad_input_changes_nothing():
    d = Daemon(BIN).start()
    try:
        st, body = error_of(lambda: d.call("POST", "/v1/namespaces", dict(
            name="m", replicas=2, min_available=3, partitions=2)))
        assert st == 400 and "min_available" in body["message"], body
        st, body = error_of(lambda: d.call("POST", "/v1/namespaces", dict(
            name="m", replicas=2, max_moves_in_flight=-1, partitions=2)))
        assert st == 400 and "max_moves_in_flight" in body["message"], body
        assert error_of(lambda: d.call("GET", "/v1/namespaces/m"))[0] == 404  # not created
        _, ns = d.call("POST", "/v1/namespaces", dict(name="m", replicas=3, partitions=2))
        assert ns["min_available"] == 2 and ns["max_moves_in_flight"] == 0, ns  # the defaults
        d.call("POST", "/v1/namespaces/m/nodes", {"id": "n1", "address": "127.0.0.1:9",
                                                   "zone": "a"})
        st, body = error_of(lambda: d.call("POST", "/v1/stoppable", {"nodes": ["n1", "nope"]}))
        assert st == 404 and "nope" in body["message"] and body["code"] == "ENOENT", body
        for bad in ({}, {"nodes": []}, {"nodes": ["bad id"]}, {"nodes": "n1"},
                    {"nodes": ["n1"], "x": 1}):
            st, body = error_of(lambda: d.call("POST", "/v1/stoppable", bad))
            assert st == 400 and body["code"] == "EINVAL", (bad, body)
        before = d.call("GET", "/v1/namespaces/m/nodes/n1")[1]
        st, body = error_of(lambda: d.call("POST", "/v1/namespaces/m/nodes/n1/drain",
                                           {"reason": "x" * 201}))
        assert st == 400 and "reason" in body["message"], body
        st, body = error_of(lambda: d.call("POST", "/v1/namespaces/m/nodes/n1/drain",
                                           {"reason": 7}))
        assert st == 400 and "reason" in body["message"], body
        st, body = error_of(lambda: d.call("POST", "/v1/namespaces/m/drain", {"zone": "zz"}))
        assert st == 404 and "zz" in body["message"], body
        st, body = error_of(lambda: d.call("POST", "/v1/namespaces/m/drain", {"reason": "r"}))
        assert st == 400 and "zone" in body["message"], body
        assert d.call("GET", "/v1/namespaces/m/nodes/n1")[1] == before  # not drained
        # the positive control: a good drain with a reason is taken and shown
        st, n = d.call("POST", "/v1/namespaces/m/nodes/n1/drain", {"reason": "kernel 6.1"})
        assert st == 202 and n["drained"] and n["drain_reason"] == "kernel 6.1", n
    finally:
        d.stop()


def test_strict_drain_is_gated_by_the_floor():
    """Strict moves take their source out of service while in flight. Two drained nodes that
    share partitions: with min_available 1 the second move of a shared partition waits
    (queued, "floor") and every partition keeps a serving replica; with min_available 0 the
    same drain takes some partition to none (the positive control: the watcher sees it)."""
    for floor in (1, 0):
        d = Daemon(BIN).start()
        ws = []
        w = None
        try:
            d.call("POST", "/v1/namespaces", dict(name="s", replicas=2, consistency="strict",
                                                  min_available=floor, partitions=6, **FAST))
            # new owners take 0.6 s to serve: a strict move's window without its source is long
            # (the watcher polls every 20 ms)
            ws = [Worker(d, "s", f"w{i}", extra=["--serve-delay-ms", "600"]) for i in range(2)]
            r = wait_for(lambda: settled(d, "s", 6, 2, nodes=2), 30, what="placement")
            ws += [Worker(d, "s", f"w{i}", extra=["--serve-delay-ms", "600"])
                   for i in range(2, 4)]
            wait_for(lambda: d.call("GET", "/v1/namespaces/s")[1]["nodes"]["alive"] == 4, 15,
                     what="w2 and w3 alive")
            # w0 and w1 hold both replicas of every partition; draining both moves all of them
            w = Watcher(d, "s")
            w.start()
            for n in ("w0", "w1"):
                d.call("POST", f"/v1/namespaces/s/nodes/{n}/drain", {"reason": "floor test"})
            r = wait_for(lambda: (lambda r: r if r and all(
                "w0" not in v and "w1" not in v for v in r.values()) else None)(
                    settled(d, "s", 6, 2)), 60, what="drained")
            w.stop()
            assert w.polls > 20, w.polls
            if floor == 1:
                assert w.min_serving >= 1, w.min_serving
                assert w.below_floor == 0, w.below_floor
                assert any(q["waiting"] == "floor" and q["reason"] == "drain" for q in w.queued), \
                    w.queued[:5]
                assert any(e["type"] == "move-queued" for e in events(d, "s"))
            else:
                assert w.min_serving == 0, w.min_serving  # without the floor it breaks
                assert not w.queued, w.queued[:5]
        finally:
            if w:
                w.stop()
            for x in ws:
                x.kill9()
            d.stop()


def test_max_moves_in_flight():
    d = Daemon(BIN).start()
    ws = []
    w = None
    try:
        d.call("POST", "/v1/namespaces", dict(name="l", replicas=1, max_moves_in_flight=1,
                                              partitions=8, **FAST))
        ws = [Worker(d, "l", "w0", extra=["--serve-delay-ms", "300"])]
        wait_for(lambda: settled(d, "l", 8, 1, nodes=1), 30, what="placement")
        ws.append(Worker(d, "l", "w1", extra=["--serve-delay-ms", "300"]))
        wait_for(lambda: settled(d, "l", 8, 1, nodes=2), 30, what="w1 joined")
        w = Watcher(d, "l")
        w.start()
        st, n = d.call("POST", "/v1/namespaces/l/nodes/w0/drain")
        assert st == 202
        wait_for(lambda: (lambda r: r if r and all(v == ["w1"] for v in r.values()) else None)(
            settled(d, "l", 8, 1)), 60, what="drained one move at a time")
        w.stop()
        assert w.max_planned == 1, w.max_planned  # never two at once ...
        assert any(q["waiting"] == "limit" for q in w.queued), w.queued[:5]  # ... the rest waited
        drains = [e for e in events(d, "l") if e["type"] == "move" and e["reason"] == "drain"]
        assert len(drains) >= 4, drains  # w0 held about half of the 8
    finally:
        if w:
            w.stop()
        for x in ws:
            x.kill9()
        d.stop()


def test_zone_drain_and_stoppable():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="z", replicas=2, partitions=8, **FAST))
        ws = [Worker(d, "z", n, zone=z) for n, z in
              (("a1", "za"), ("a2", "za"), ("b1", "zb"), ("b2", "zb"))]
        r = wait_for(lambda: settled(d, "z", 8, 2, nodes=4), 30, what="placement")
        # the replicas of each partition are spread over both zones; one zone at a time: a zb
        # node after a za node is refused by the zone rule
        assert all({n[0] for n in v} == {"a", "b"} for v in r.values()), r
        _, ans = d.call("POST", "/v1/stoppable", {"nodes": ["a1", "b1"]})
        assert ans["stoppable"] == ["a1"], ans
        assert ans["nodes"][1]["reasons"][0]["rule"] in ("zone",), ans
        st, res = d.call("POST", "/v1/namespaces/z/drain", {"zone": "za", "reason": "rack 7"})
        assert st == 202 and sorted(res["drained"]) == ["a1", "a2"], res
        for n in ("a1", "a2"):
            nj = d.call("GET", f"/v1/namespaces/z/nodes/{n}")[1]
            assert nj["state"] == "draining" and nj["drain_reason"] == "rack 7", nj
        r = wait_for(lambda: (lambda r: r if r and all(set(v) == {"b1", "b2"} for v in r.values())
                              else None)(settled(d, "z", 8, 2)), 60, what="zone drained")
        ev = events(d, "z")
        assert sorted(e["node"] for e in ev if e["type"] == "drain" and
                      e.get("reason") == "rack 7") == ["a1", "a2"], ev[-10:]
        # drained, both za nodes may stop together now; a zb node may not join them
        _, ans = d.call("POST", "/v1/stoppable", {"nodes": ["a1", "a2", "b1"]})
        assert ans["stoppable"] == ["a1", "a2"], ans
        # a dead node counts as gone: kill b1; then b2 holds the only serving replicas
        ws[2].kill9()
        wait_for(lambda: d.call("GET", "/v1/namespaces/z/nodes/b1")[1]["state"] == "dead", 15,
                 what="b1 dead")
        _, ans = d.call("POST", "/v1/stoppable", {"nodes": ["b1", "b2"]})
        assert ans["nodes"][0]["stoppable"] and ans["nodes"][0].get("gone"), ans
        assert not ans["nodes"][1]["stoppable"], ans
    finally:
        for x in ws:
            x.kill9()
        d.stop()


def test_rolling_restart_through_stoppable_and_drain():
    """Every worker restarted in turn: stoppable, drain (with a reason), wait until it holds
    nothing, stoppable again, SIGKILL, start a new process, undrain, settle. A client reads
    every partition throughout (no read fails) and the floor is never broken. The positive
    control at the end: two workers holding one partition's replicas killed together make
    the reader fail and the watcher see a partition below its floor."""
    d = Daemon(BIN).start()
    ws = {}
    w = reader = None
    try:
        d.call("POST", "/v1/namespaces", dict(name="r", replicas=2, partitions=8, **FAST))
        # moves take a while (a new replica serves 300 ms after it is told to), so that a
        # partition below its floor stays visible long enough for the watcher's polls
        slow = ["--serve-delay-ms", "300"]
        ws = {f"w{i}": Worker(d, "r", f"w{i}", extra=slow) for i in range(4)}
        wait_for(lambda: settled(d, "r", 8, 2, nodes=4), 30, what="placement")
        w, reader = Watcher(d, "r"), Reader(d, "r")
        w.start()
        reader.start()
        for name in sorted(ws):
            _, ans = d.call("POST", "/v1/stoppable", {"nodes": [name]})
            assert ans["stoppable"] == [name], ans  # all serving: any one may stop
            # but not together with a node holding the other replica of one of its partitions
            p, other = next((p, v) for p, v in routing(d, "r").items() if name in v)
            other = [n for n in other if n != name][0]
            _, ans = d.call("POST", "/v1/stoppable", {"nodes": [name, other]})
            assert ans["stoppable"] == [name], ans
            assert any(x["rule"] == "floor" and x["partition"] == p and x["left"] == 0
                       for x in ans["nodes"][1]["reasons"]), ans
            d.call("POST", f"/v1/namespaces/r/nodes/{name}/drain", {"reason": "rolling restart"})
            wait_for(lambda: d.call("GET", f"/v1/namespaces/r/nodes/{name}")[1]["replicas"] == 0
                     and settled(d, "r", 8, 2), 60, what=f"{name} drained")
            _, ans = d.call("POST", "/v1/stoppable", {"nodes": [name]})
            assert ans["stoppable"] == [name], ans
            ws[name].kill9()
            ws[name] = Worker(d, "r", name, extra=slow)
            wait_for(lambda: d.call("GET", f"/v1/namespaces/r/nodes/{name}")[1]["state"]
                     == "draining" and d.call("GET", f"/v1/namespaces/r/nodes/{name}")[1]
                     ["address"].endswith(str(ws[name].port)), 30, what=f"{name} back")
            st, _ = d.call("POST", f"/v1/namespaces/r/nodes/{name}/undrain")
            assert st == 200
            wait_for(lambda: (lambda r: r and any(name in v for v in r.values()))(
                settled(d, "r", 8, 2, nodes=4)), 60, what=f"{name} given its share")
        reads_before = reader.reads
        wait_for(lambda: reader.reads > reads_before + 16, 30, what="reads after the restarts")
        assert reader.failed == 0, reader.failures[:5]
        assert w.below_floor == 0 and w.min_serving >= 1, (w.below_floor, w.min_serving)
        assert reader.reads > 100, reader.reads
        # the positive control: both replicas of a partition killed at once
        p, nodes = next(iter(routing(d, "r").items()))
        for n in nodes:
            ws[n].kill9()
        wait_for(lambda: reader.failed > 0, 30, what="the reader seeing a failed read")
        wait_for(lambda: w.below_floor > 0, 30, what="the watcher seeing the floor broken")
    finally:
        for t in (w, reader):
            if t:
                t.stop()
        for x in ws.values():
            x.kill9()
        d.stop()


def history(d, ns, pid):
    return d.call("GET", f"/v1/namespaces/{ns}/partitions/{pid}/history")[1]["history"]


def test_move_history_survives_a_restart():
    """Each partition keeps its last 32 moves (time, slot, from, to, reason, generation) in the
    store: they come back after the coordinator is killed and started again on its data."""
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="h", replicas=1, partitions=2, **FAST))
        ws = [Worker(d, "h", "w0")]
        wait_for(lambda: settled(d, "h", 2, 1, nodes=1), 30, what="placement")
        assert history(d, "h", "0") == []  # a first placement is not a move
        ws.append(Worker(d, "h", "w1"))
        wait_for(lambda: settled(d, "h", 2, 1, nodes=2), 30, what="w1 joined")
        # 34 operator moves of partition 0 between the nodes: the first two fall out
        t0 = time.time() * 1000
        for i in range(34):
            cur = routing(d, "h")["0"][0]
            to = "w1" if cur == "w0" else "w0"
            st, _ = d.call("POST", "/v1/namespaces/h/partitions/0/move", {"slot": 0, "to": to})
            assert st == 202
            wait_for(lambda: (lambda r: r and r["0"] == [to])(settled(d, "h", 2, 1)), 30,
                     what=f"move {i}")
        h = history(d, "h", "0")
        assert len(h) == 32, len(h)
        assert all(e["reason"] == "operator" and e["slot"] == 0 and e["time_ms"] >= t0 - 1000
                   for e in h), h[:3]
        gens = [e["generation"] for e in h]
        assert gens == sorted(gens) and len(set(gens)) == 32, gens  # oldest first, growing
        assert all(a["to"] == b["from"] for a, b in zip(h, h[1:])), h[:4]
        before = {p: history(d, "h", p) for p in ("0", "1")}
        # a failure is recorded with its reason too
        victim = routing(d, "h")["1"][0]
        next(w for w in ws if w.node == victim).kill9()
        wait_for(lambda: any(e["reason"] == "node-dead" for e in history(d, "h", "1")), 30,
                 what="node-dead in the history")
        before["1"] = history(d, "h", "1")
        last = before["1"][-1]
        assert last["from"] == victim and last["reason"] == "node-dead", last
        d.kill9()
        d.start()
        after = {p: history(d, "h", p) for p in ("0", "1")}
        assert after == before, (after, before)
        st, body = error_of(lambda: d.call("GET", "/v1/namespaces/h/partitions/nope/history"))
        assert st == 404 and "nope" in body["message"], body
    finally:
        for x in ws:
            x.kill9()
        d.stop()


def ns_config(d, ns):
    j = d.call("GET", f"/v1/namespaces/{ns}")[1]
    return {k: v for k, v in j.items() if k not in ("revision", "nodes", "missing", "moves",
                                                     "queued_moves", "below_floor")}


def test_patch_bad_input_and_dry_run():
    d = Daemon(BIN).start()
    try:
        d.call("POST", "/v1/namespaces", dict(name="p", replicas=2, partitions=4, **FAST))
        d.call("POST", "/v1/namespaces", dict(name="s", replicas=2, consistency="strict",
                                              partitions=2))
        d.call("POST", "/v1/namespaces", dict(name="h", sharder="hash", partitions=2))
        before = {n: ns_config(d, n) for n in ("p", "s", "h")}
        bad = [
            ("p", {"name": "q"}, "name"),
            ("p", {"sharder": "hash"}, "sharder"),
            ("p", {"consistency": "strict"}, "consistency"),
            ("p", {"min_available": 3}, "min_available"),
            ("p", {"replicas": 0}, "replicas"),
            ("p", {"replicas": 17}, "replicas"),
            ("p", {"max_moves_in_flight": "x"}, "max_moves_in_flight"),
            ("p", {"frozen": 1}, "frozen"),
            ("p", {"startup_grace_ms": -1}, "startup_grace_ms"),
            ("p", {"min_nodes": 1.5}, "min_nodes"),
            ("p", {"ping_interval_ms": 5}, "ping_interval_ms"),
            ("p", {"dead_after_ms": 100}, "dead_after_ms"),  # not above ping_interval_ms 100
            ("p", {"balance": {"band": 2}}, "balance"),
            ("p", {}, "fields to change"),
            ("p", {"replicas": 1, "min_available": 2}, "min_available"),
            ("s", {"lease_ms": 5000}, "lease_ms"),
            ("s", {"dead_after_ms": 5000}, "dead_after_ms"),
            ("h", {"replicas": 2}, "replicas"),
        ]
        for ns, patch, field in bad:
            st, body = error_of(lambda: d.call("PATCH", f"/v1/namespaces/{ns}", patch))
            assert st == 400 and body["code"] == "EINVAL" and field in body["message"], \
                (ns, patch, body)
        d.call("PATCH", "/v1/namespaces/p", {"min_available": 2})
        before["p"]["min_available"] = 2
        st, body = error_of(lambda: d.call("PATCH", "/v1/namespaces/p", {"replicas": 1}))
        assert st == 400 and "min_available" in body["message"] and "replicas" in body["message"]
        st, body = error_of(lambda: d.call("PATCH", "/v1/namespaces/nope", {"frozen": True}))
        assert st == 404, body
        st, body = error_of(lambda: d.call("PATCH", "/v1/namespaces/p?dry_run=maybe",
                                           {"frozen": True}))
        assert st == 400 and "dry_run" in body["message"], body
        assert {n: ns_config(d, n) for n in ("p", "s", "h")} == before  # nothing changed
        # a dry run shows the plan and changes nothing either
        ws = [Worker(d, "p", f"w{i}") for i in range(3)]
        try:
            wait_for(lambda: settled(d, "p", 4, 2, nodes=3), 30, what="placement")
            rev = d.call("GET", "/v1/namespaces/p")[1]["revision"]
            _, dry = d.call("PATCH", "/v1/namespaces/p?dry_run=true", {"replicas": 3})
            assert dry["dry_run"] and dry["config"]["replicas"] == 3, dry
            assert len(dry["moves"]) == 4 and all(m["from"] is None and m["to"] for m in
                                                  dry["moves"]), dry["moves"]
            assert all(m["slot"] == 2 for m in dry["moves"]), dry["moves"]
            assert d.call("GET", "/v1/namespaces/p")[1]["revision"] == rev
            assert ns_config(d, "p")["replicas"] == 2
            _, dry = d.call("PATCH", "/v1/namespaces/p?dry_run=true",
                            {"replicas": 1, "min_available": 1})
            # the slots emptied, then what the placement would rebalance after
            vac = [m for m in dry["moves"] if m["to"] is None]
            assert len(vac) == 4 and all(m["slot"] == 1 for m in vac), dry["moves"]
            assert all(m["reason"] in ("join", "rebalance") for m in dry["moves"]), dry["moves"]
        finally:
            for w in ws:
                w.kill9()
    finally:
        d.stop()


def test_replicas_2_3_2_under_load():
    """replicas 2 -> 3 -> 2 by PATCH while a client reads every partition: every partition
    ends with 3, then 2 distinct serving replicas (the workers' own views agree), no read
    fails and no partition drops below min_available 1; the slots emptied show in the
    partitions' history with reason rebalance."""
    d = Daemon(BIN).start()
    ws = []
    w = reader = None
    try:
        d.call("POST", "/v1/namespaces", dict(name="r", replicas=2, partitions=8, **FAST))
        slow = ["--serve-delay-ms", "200"]
        ws = [Worker(d, "r", f"w{i}", extra=slow) for i in range(4)]
        wait_for(lambda: settled(d, "r", 8, 2, nodes=4), 30, what="placement")
        w, reader = Watcher(d, "r"), Reader(d, "r")
        w.start()
        reader.start()
        st, j = d.call("PATCH", "/v1/namespaces/r", {"replicas": 3})
        assert st == 200 and j["replicas"] == 3 and j["min_available"] == 1, j
        r = wait_for(lambda: settled(d, "r", 8, 3), 60, what="3 replicas each")
        wait_for(lambda: sum(len(x.served()) for x in ws) == 24, 30, what="workers serve 24")
        st, j = d.call("PATCH", "/v1/namespaces/r", {"replicas": 2})
        assert st == 200 and len(j["moves"]) == 8, j
        assert all(m["slot"] == 2 and m["to"] is None for m in j["moves"]), j["moves"]
        r = wait_for(lambda: settled(d, "r", 8, 2), 60, what="2 replicas each")
        wait_for(lambda: sum(len(x.served()) for x in ws) == 16, 30, what="workers serve 16")
        parts = d.call("GET", "/v1/namespaces/r/state")[1]["partitions"]
        assert all(len(p["replicas"]) == 2 for p in parts), parts
        reads = reader.reads
        wait_for(lambda: reader.reads > reads + 8, 30, what="reads after the change")
        w.stop()
        reader.stop()
        assert reader.failed == 0, reader.failures[:5]
        assert w.below_floor == 0 and w.min_serving >= 1, (w.below_floor, w.min_serving)
        h = history(d, "r", "0")
        assert h and h[-1]["slot"] == 2 and h[-1]["to"] is None and \
            h[-1]["reason"] == "rebalance", h
        assert any(e["type"] == "config" for e in events(d, "r"))
    finally:
        for t in (w, reader):
            if t:
                t.stop()
        for x in ws:
            x.kill9()
        d.stop()


def test_freeze_during_a_worker_kill():
    """Frozen: a killed worker's replicas are replaced all the same; a joining worker gets
    nothing (its moves wait, "frozen"), a drain waits, a rebalance answers 409, an operator's
    move runs. Thawed, the waiting moves start."""
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="f", replicas=1, partitions=9, **FAST))
        ws = [Worker(d, "f", f"w{i}") for i in range(3)]
        r = wait_for(lambda: settled(d, "f", 9, 1, nodes=3), 30, what="placement")
        st, j = d.call("PATCH", "/v1/namespaces/f", {"frozen": True})
        assert st == 200 and j["frozen"] is True, j
        victim = ws[0]
        victim.kill9()
        r = wait_for(lambda: (lambda r: r if r and all("w0" not in v for v in r.values())
                              else None)(settled(d, "f", 9, 1)), 30, what="w0 replaced")
        ev = events(d, "f")
        assert any(e["type"] == "move" and e["reason"] == "node-dead" for e in ev), ev[-5:]
        ws.append(Worker(d, "f", "w3"))
        q = wait_for(lambda: (lambda m: m["queued"] if any(
            x["reason"] in ("join", "rebalance") and x["waiting"] == "frozen" and x["to"] == "w3"
            for x in m["queued"]) else None)(d.call("GET", "/v1/namespaces/f/moves")[1]), 30,
            what="w3's moves waiting")
        assert sum(1 for v in routing(d, "f").values() if "w3" in v) == 0, q
        st, body = error_of(lambda: d.call("POST", "/v1/namespaces/f/rebalance"))
        assert st == 409 and "frozen" in body["message"], body
        d.call("POST", "/v1/namespaces/f/nodes/w1/drain", {"reason": "while frozen"})
        wait_for(lambda: any(x["reason"] == "drain" and x["waiting"] == "frozen" for x in
                             d.call("GET", "/v1/namespaces/f/moves")[1]["queued"]), 30,
                 what="w1's drain waiting")
        p = next(p for p, v in routing(d, "f").items() if v == ["w2"])
        st, _ = d.call("POST", f"/v1/namespaces/f/partitions/{p}/move", {"slot": 0, "to": "w3"})
        assert st == 202
        wait_for(lambda: routing(d, "f")[p] == ["w3"], 30, what="operator move while frozen")
        assert any(v == ["w1"] for v in routing(d, "f").values())  # the drain still waits
        st, j = d.call("PATCH", "/v1/namespaces/f", {"frozen": False})
        assert st == 200 and j["frozen"] is False, j
        wait_for(lambda: (lambda r: r and all("w1" not in v for v in r.values()) and
                          sum(1 for v in r.values() if "w3" in v) >= 3)(settled(d, "f", 9, 1)),
                 30, what="thawed: drain and join done")
        assert d.call("GET", "/v1/namespaces/f/moves")[1]["queued"] == []
    finally:
        for x in ws:
            x.kill9()
        d.stop()


def test_startup_grace():
    """With startup_grace_ms and min_nodes the first placement waits for the third worker and
    deals the partitions once (no join or rebalance move after); without it the first worker
    takes everything and the others steal their share (the control)."""
    for grace in (True, False):
        d = Daemon(BIN).start()
        ws = []
        try:
            extra = {"startup_grace_ms": 60000, "min_nodes": 3} if grace else {}
            d.call("POST", "/v1/namespaces", dict(name="g", replicas=1, partitions=12,
                                                  **FAST, **extra))
            ws = [Worker(d, "g", "w0")]
            wait_for(lambda: d.call("GET", "/v1/namespaces/g")[1]["nodes"]["alive"] == 1, 30,
                     what="w0 alive")
            if grace:
                # alive, yet nothing placed: the grace holds the first placement
                assert d.call("GET", "/v1/namespaces/g")[1]["missing"] == 12
            else:
                wait_for(lambda: settled(d, "g", 12, 1, nodes=1), 30, what="all on w0")
            ws += [Worker(d, "g", f"w{i}") for i in (1, 2)]
            r = wait_for(lambda: settled(d, "g", 12, 1, nodes=3), 30, what="placement")
            counts = sorted(sum(1 for v in r.values() if f"w{i}" in v) for i in range(3))
            assert counts == [4, 4, 4], counts
            steals = [e for e in events(d, "g") if e["type"] == "move" and
                      e["reason"] in ("join", "rebalance")]
            if grace:
                assert steals == [], steals
            else:
                assert len(steals) >= 8, steals  # w1 and w2's share, at least
        finally:
            for x in ws:
                x.kill9()
            d.stop()


run([test_bad_input_changes_nothing, test_strict_drain_is_gated_by_the_floor,
     test_max_moves_in_flight, test_zone_drain_and_stoppable,
     test_rolling_restart_through_stoppable_and_drain, test_move_history_survives_a_restart,
     test_patch_bad_input_and_dry_run, test_replicas_2_3_2_under_load,
     test_freeze_during_a_worker_kill, test_startup_grace])
