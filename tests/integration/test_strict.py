"""Strict mode that holds (docs/PROTOCOL.md section 6): no two owners of a replica at once and
generations that only grow, under network partitions (a TCP fault proxy between the
coordinator and a worker: faultproxy.py), re-registration and removal. Real shardzd, real
worker processes (fakeworker.py with --log-leases); ownership is computed from the workers' own
logs by ownership.py, each holder's ownership cut where its lease could lapse. The first two
tests check the tools themselves: the proxy's modes and the checker's verdicts on hand-made
logs.
Usage: test_strict.py SHARDZD_BINARY"""
import http.server
import os
import signal
import subprocess
import socket
import sys
import threading
import time
import urllib.request

from chaos import run_chaos
from faultproxy import BLACKHOLE, DELAY, PASS, RESET, Link, Proxy
from harness import Daemon, HTTPError, Worker, free_port, read_events, routing, run, settled, wait_for
from ownership import check, overlaps, ownership, owners_moved, regressions

BIN = sys.argv[1] if len(sys.argv) > 1 else None
FAST = {"ping_interval_ms": 100, "dead_after_ms": 500}


def node_state(d, ns, node):
    return d.call("GET", f"/v1/namespaces/{ns}/nodes/{node}")[1]["state"]


def cut_off_worker(d, ns, node, extra=()):
    """A worker reached only through a Link (both directions proxied): returns (worker, link)."""
    port = free_port()
    link = Link(d.port, port)
    w = Worker(d, ns, node, port=port, coordinators=link.to_coordinator.address,
               extra=["--log-leases", "--advertise", link.to_worker.address] + list(extra))
    return w, link


def test_fault_proxy_modes():
    """pass forwards; blackhole answers nothing (and the bytes are seen dropped); delay
    forwards late and in order; reset closes connections with an error; pass again heals."""
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_GET(self):
            body = self.path.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    px = Proxy(f"127.0.0.1:{srv.server_address[1]}")
    url = f"http://{px.address}"
    try:
        def get(path, timeout=2):
            with urllib.request.urlopen(url + path, timeout=timeout) as r:
                return r.read().decode()
        assert get("/a") == "/a"
        px.set(BLACKHOLE)
        t0 = time.time()
        try:
            get("/b", timeout=0.5)
            raise AssertionError("a black-holed request was answered")
        except (socket.timeout, OSError):
            pass
        assert time.time() - t0 >= 0.45 and px.dropped > 0, px.dropped
        px.set(DELAY, 0.3)
        t0 = time.time()
        assert get("/c") == "/c"
        assert time.time() - t0 >= 0.3 and px.delayed > 0
        px.set(RESET)
        try:
            get("/d")
            raise AssertionError("a reset link answered")
        except OSError:
            pass
        px.set(PASS)
        assert get("/e") == "/e"
    finally:
        px.stop()
        srv.shutdown()


def test_ownership_checker():
    """The checker's verdicts on hand-made logs: a lease cuts a paused holder's ownership; an
    overlap and a lower generation are reported; replicas 3 allows three holders, not four; a
    second process of one node id needs a higher generation; a positive case passes."""
    def ev(t, op, p=None, g=0, until=None):
        e = {"t": t, "op": op, "partition": p, "generation": g}
        if until is not None:
            e["until"] = until
        return e
    # a: serves p at gen 1, lease until 2, logs its delete late (paused) at 5; b serves at 3
    good = {"a": [ev(0, "lease", until=2), ev(0.1, "serve", "p", 1), ev(5, "delete", "p", 1)],
            "b": [ev(2.5, "lease", until=10), ev(3, "serve", "p", 2)]}
    spans = ownership(good, {"b": 10})
    assert spans["p"] == [(0.1, 2, "a", 1, None), (3, 10, "b", 2, None)], spans
    assert not overlaps(spans) and not regressions(spans) and owners_moved(spans) == ["p"]
    # b starts before a's lease ran out, with a lower generation
    bad = {"a": [ev(0, "lease", until=4), ev(0.1, "serve", "p", 3)],
           "b": [ev(2.5, "lease", until=10), ev(3, "serve", "p", 1)]}
    spans = ownership(bad, {"a": 20, "b": 10})
    assert overlaps(spans) == [("p", ["a", "b"], 1.0)], overlaps(spans)
    assert regressions(spans) == [("p", "a", 3, "b", 1)], regressions(spans)
    three = {h: [ev(0, "lease", until=10), ev(0.1 * i, "serve", "p", 1)]
             for i, h in enumerate("abc")}
    spans = ownership(three, {})
    assert not overlaps(spans, 3) and overlaps(spans, 2) and not regressions(spans, 3)
    three["d"] = [ev(5, "lease", until=10), ev(6, "serve", "p", 2)]
    assert overlaps(ownership(three, {}), 3), "four holders at once with replicas 3"
    # slots named: two holders of one slot overlap even within the replica count; a lower
    # generation on another slot is no regression, on the same slot it is
    def sv(t, g, slot):
        return dict(ev(t, "serve", "p", g), slot=slot)
    slotted = {"a": [ev(0, "lease", until=10), sv(0.1, 5, 0)],
               "b": [ev(0, "lease", until=10), sv(0.2, 4, 1)]}
    spans = ownership(slotted, {})
    assert not overlaps(spans, 2) and not regressions(spans, 2), (overlaps(spans, 2), spans)
    slotted["c"] = [ev(3, "lease", until=10), sv(4, 3, 1)]
    spans = ownership(slotted, {})
    assert overlaps(spans, 3) == [("p", ["b", "c"], 6)], overlaps(spans, 3)
    assert regressions(spans, 3) == [("p", "b", 4, "c", 3)], regressions(spans, 3)
    twins = {"w1": [ev(0, "lease", until=3), ev(0.1, "serve", "p", 3)],
             "w1#2": [ev(4, "lease", until=9), ev(4.1, "serve", "p", 3)]}
    spans = ownership(twins, {})
    assert not overlaps(spans, 3) and regressions(spans, 3) == [("p", "w1", 3, "w1#2", 3)]


def strict_vacated_slot(replicas):
    """Case 1: a strict namespace with exactly `replicas` workers; one is cut off (not killed)
    and declared dead; with no free node its slot is vacated. A new worker then joins: it may
    serve only once the cut-off holder's lease has certainly run out."""
    d = Daemon(BIN).start()
    ws, link = [], None
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=replicas, partitions=4,
                                              consistency="strict", lease_ms=3000, **FAST))
        ws = [Worker(d, "kv", f"w{i}", extra=["--log-leases"]) for i in range(replicas - 1)]
        cut, link = cut_off_worker(d, "kv", f"w{replicas - 1}")
        ws.append(cut)
        wait_for(lambda: settled(d, "kv", 4, replicas, nodes=replicas), 30, what="placement")
        held = set(cut.served())
        assert held, f"{cut.node} serves nothing: the cut would test nothing"
        link.set(BLACKHOLE)
        wait_for(lambda: node_state(d, "kv", cut.node) == "dead", 10, what="declared dead")
        ws.append(Worker(d, "kv", "wn", extra=["--log-leases"]))
        # the newcomer takes the cut-off worker's replicas (it serves them: positive control)
        wait_for(lambda: held <= set(ws[-1].served()), 30, what="the newcomer serves")
        wait_for(lambda: not cut.served(), 10, what="the cut-off worker's lease drop")
        spans, bad, regress = check({w.holder: w.events for w in ws}, replicas)
        assert set(owners_moved(spans)) >= held, spans
        assert not bad, f"more than {replicas} owners at once (partition, holders, s): {bad}"
        assert not regress, f"generations went backwards: {regress}"
    finally:
        if link:
            link.stop()
        for w in ws:
            w.kill9()
        d.stop()


def test_strict_vacated_slot_keeps_holder_r1():
    strict_vacated_slot(1)


def test_strict_vacated_slot_keeps_holder_r3():
    strict_vacated_slot(3)


def served_generations(w, partition):
    """The generations worker w was told to serve `partition` at, in order (its own log)."""
    return [e["generation"] for e in read_events(w.events)
            if e["op"] == "serve" and e["partition"] == partition]


def test_strict_removed_partition_keeps_holder():
    """Case 3, strict: a worker holding partition X is cut off and drained; X is removed and
    added again at once. The cut-off holder may serve X until its lease ends: the new owner
    starts only after that, with a higher generation than the cut-off one's."""
    d = Daemon(BIN).start()
    ws, link = [], None
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=["x", "y"],
                                              consistency="strict", lease_ms=3000, **FAST))
        cut, link = cut_off_worker(d, "kv", "w1")
        ws = [cut, Worker(d, "kv", "w0", extra=["--log-leases"])]
        r = wait_for(lambda: settled(d, "kv", 2, 1, nodes=2), 30, what="placement")
        x = next(p for p, nodes in r.items() if nodes == ["w1"])
        assert x in cut.served(), "w1 does not serve its partition: the cut would test nothing"
        link.set(BLACKHOLE)
        d.call("POST", "/v1/namespaces/kv/nodes/w1/drain", {})
        d.call("DELETE", f"/v1/namespaces/kv/partitions/{x}")
        d.call("POST", "/v1/namespaces/kv/partitions", {"ids": [x]})
        # positive control: w0 gets it (once the cut-off holder's lease certainly ended)
        wait_for(lambda: served_generations(ws[1], x), 30, what="w0 serves the partition")
        wait_for(lambda: not cut.served(), 10, what="the cut-off worker's lease drop")
        spans, bad, regress = check({w.holder: w.events for w in ws}, 1)
        assert x in owners_moved(spans), spans
        assert not bad, f"two owners at once (partition, holders, s): {bad}"
        assert not regress, f"generations went backwards: {regress}"
    finally:
        if link:
            link.stop()
        for w in ws:
            w.kill9()
        d.stop()


def test_generations_survive_remove_readd_and_restart():
    """Case 3, both modes: a partition removed and added again (across a coordinator restart
    in between) is served at a higher generation than it ever had."""
    for mode in ("available", "strict"):
        d = Daemon(BIN).start()
        ws = []
        try:
            d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=["x"],
                                                  consistency=mode, **FAST))
            ws = [Worker(d, "kv", "w0", extra=["--log-leases"])]
            wait_for(lambda: settled(d, "kv", 1, 1, nodes=1), 10, what="placement")
            ws.append(Worker(d, "kv", "w1", extra=["--log-leases"]))
            # an operator move back and forth raises x's generation above 1
            for to in ("w1", "w0"):
                wait_for(lambda: d.call("GET", "/v1/namespaces/kv")[1]["nodes"]["alive"] == 2,
                         10, what="both alive")
                d.call("POST", "/v1/namespaces/kv/partitions/x/move", {"slot": 0, "to": to})
                wait_for(lambda: routing(d, "kv").get("x") == [to] and settled(d, "kv", 1, 1),
                         15, what=f"x on {to}")
            before = max(served_generations(ws[0], "x") + served_generations(ws[1], "x"))
            assert before >= 3, before
            d.call("DELETE", "/v1/namespaces/kv/partitions/x")
            wait_for(lambda: not ws[0].served() and not ws[1].served(), 10, what="x dropped")
            d.stop()
            d2 = Daemon(BIN, data=d.data)
            d2.port, d2.base = d.port, d.base
            d = d2.start()
            d.call("POST", "/v1/namespaces/kv/partitions", {"ids": ["x"]})
            wait_for(lambda: ws[0].served().get("x") or ws[1].served().get("x"), 15,
                     what="x served again")
            after = (ws[0].served().get("x") or ws[1].served().get("x"))
            assert after > before, f"{mode}: x served at {after} after {before}: backwards"
        finally:
            for w in ws:
                w.kill9()
            d.stop()


def lease_end(w):
    """The wall time the last lease worker w logged runs to."""
    return max(e["until"] for e in read_events(w.events) if e["op"] == "lease")


def strict_new_incarnation(replicas, pause):
    """Case 2: a second process registers under a node id whose first process still lives,
    paused (SIGSTOP) or running (a copy started by mistake), at another address. It is a new
    holder: it may serve that node's replicas only once the first process's lease has
    certainly ended, and with higher generations."""
    d = Daemon(BIN).start()
    ws, old = [], None
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=replicas, partitions=4,
                                              consistency="strict", lease_ms=3000, **FAST))
        ws = [Worker(d, "kv", f"w{i}", extra=["--log-leases"]) for i in range(replicas)]
        wait_for(lambda: settled(d, "kv", 4, replicas, nodes=replicas), 30, what="placement")
        old = ws[-1]
        held = set(old.served())
        assert held, f"{old.node} serves nothing: the test would test nothing"
        if pause:
            old.proc.send_signal(signal.SIGSTOP)
        new = Worker(d, "kv", old.node, holder=old.node + "#2", extra=["--log-leases"])
        ws.append(new)
        # positive control: the new process serves what the first one held
        wait_for(lambda: held <= set(new.served()), 30, what="the new process serves")
        if not pause:
            wait_for(lambda: not old.served(), 10, what="the first process's lease drop")
        # the first process owns nothing past its last lease: judge once that has passed, so
        # that an overlap is seen whole
        end = lease_end(old)
        wait_for(lambda: time.time() > end, 10, what="the first process's lease end")
        spans, bad, regress = check({w.holder: w.events for w in ws}, replicas)
        assert held <= set(owners_moved(spans)), spans
        assert not bad, f"more than {replicas} owners at once (partition, holders, s): {bad}"
        assert not regress, f"generations went backwards: {regress}"
    finally:
        if old is not None and old.proc.poll() is None:
            old.proc.send_signal(signal.SIGCONT)
        for w in ws:
            w.kill9()
        d.stop()


def test_strict_new_incarnation_paused_r1():
    strict_new_incarnation(1, pause=True)


def test_strict_new_incarnation_running_copy_r3():
    strict_new_incarnation(3, pause=False)


def test_incarnation_in_registration():
    """A bad incarnation is refused (400, nothing changes); the same process registering again
    (same incarnation) changes no holder, its replicas keep serving; another incarnation makes
    the earlier process a retired holder (seen in the moves) until its lease ends."""
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=2,
                                              consistency="strict", lease_ms=2000, **FAST))
        w = Worker(d, "kv", "w0", extra=["--log-leases", "--incarnation", "first"])
        ws = [w]
        before = wait_for(lambda: settled(d, "kv", 2, 1, nodes=1), 10, what="placement")
        reg = {"id": "w0", "address": f"127.0.0.1:{w.port}"}
        for bad in (5, "", "has space", "x" * 256):
            try:
                d.call("POST", "/v1/namespaces/kv/nodes", dict(reg, incarnation=bad))
                raise AssertionError(f"incarnation {bad!r} accepted")
            except HTTPError as e:
                assert e.status == 400 and e.body["code"] == "EINVAL", e.body
                assert "incarnation" in e.body["message"], e.body
        d.call("POST", "/v1/namespaces/kv/nodes", dict(reg, incarnation="first"))
        assert settled(d, "kv", 2, 1) == before, "the same process's registration moved replicas"
        d.call("POST", "/v1/namespaces/kv/nodes", dict(reg, incarnation="second"))
        moves = d.call("GET", "/v1/namespaces/kv/moves")[1]["moves"]
        assert len(moves) == 2 and all(m.get("from_state") == "retired" for m in moves), moves
        # the lease of the first ends, the "second" (the same listener) serves again; a push
        # in flight when "second" registered may still arrive for its timeout (10 s), so the
        # lease of "first" may run from then
        wait_for(lambda: settled(d, "kv", 2, 1), 20, what="served again after the lease")
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_namespace_delete_and_recreate():
    """Case 4: deleting a namespace tells its workers (they stop serving it); one re-created
    under the same name is a new namespace the same worker processes (registering again, as
    a worker library does) take up: they serve its placement, with generations above every one
    of the deleted namespace, and the coordinator's routing agrees with what they serve."""
    d = Daemon(BIN).start()
    ws = []
    try:
        spec = dict(name="kv", replicas=1, partitions=6, **FAST)
        d.call("POST", "/v1/namespaces", spec)
        ws = [Worker(d, "kv", f"w{i}", extra=["--incarnation", f"i{i}"]) for i in range(2)]
        wait_for(lambda: settled(d, "kv", 6, 1, nodes=2), 30, what="placement")
        # an operator move raises a generation, so the old namespace's are not all 1
        d.call("POST", "/v1/namespaces/kv/partitions/0/move",
               {"slot": 0, "to": "w1" if routing(d, "kv")["0"] == ["w0"] else "w0"})
        wait_for(lambda: settled(d, "kv", 6, 1), 15, what="the move")
        old_top = max(e["generation"] for w in ws for e in read_events(w.events)
                      if e["op"] == "serve")
        assert all(w.served() for w in ws), "a worker serves nothing: the delete tests nothing"
        d.call("DELETE", "/v1/namespaces/kv")
        wait_for(lambda: not any(w.served() for w in ws), 10, what="the workers told to stop")
        t_new = time.time()
        d.call("POST", "/v1/namespaces", spec)
        for i, w in enumerate(ws):  # the same processes register again
            d.call("POST", "/v1/namespaces/kv/nodes",
                   {"id": w.node, "address": f"127.0.0.1:{w.port}", "incarnation": f"i{i}"})
        r = wait_for(lambda: settled(d, "kv", 6, 1, nodes=2), 15, what="the new placement")
        def agree():
            return all({p for p, nodes in r.items() if w.node in nodes} == set(w.served())
                       for w in ws)
        wait_for(agree, 10, what="the workers serving the new namespace's placement")
        new = [e["generation"] for w in ws for e in read_events(w.events)
               if e["op"] == "serve" and e["t"] > t_new]
        assert new and min(new) > old_top, f"generations {new} not above {old_top}"
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_strict_randomized_short():
    """The randomized run (chaos.py), short: 20 s of partitions, delays, resets, pauses, kills
    with new processes, removals and re-additions, operator moves and coordinator restarts
    against one coordinator, replicas 2 on 5 workers; then zero overlaps and zero generation
    regressions, with owners changing (the positive control). The 2-minute run, with two
    coordinators on etcd, is bench/daemon/strict_chaos.py."""
    r = run_chaos(BIN, 20, seed=7, coordinators=1)
    assert r["owner_changes"] > 0 and r["actions"], r["actions"]
    assert not r["overlaps"], f"overlaps: {r['overlaps']} ({r['actions']})"
    assert not r["regressions"], f"regressions: {r['regressions']} ({r['actions']})"


def test_strict_late_messages_do_not_renew():
    """Late messages cannot resurrect a lease: a worker's link is slowed (every byte 0.7 s
    late, far past the ping timeout) until it is declared dead and replaced. The pings that
    granted its lease arrive late; a lease they grant runs from the worker's own clock as it
    was before they were sent (lease_stamp), so it ends before the coordinator counts it
    ended, and the replacement never overlaps it."""
    d = Daemon(BIN).start()
    ws, link = [], None
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=4,
                                              consistency="strict", lease_ms=1500, **FAST))
        cut, link = cut_off_worker(d, "kv", "w1")
        ws = [cut]
        wait_for(lambda: settled(d, "kv", 4, 1, nodes=1), 30, what="placement on w1")
        ws.append(Worker(d, "kv", "w0", extra=["--log-leases"]))
        wait_for(lambda: d.call("GET", "/v1/namespaces/kv")[1]["nodes"]["alive"] == 2, 10,
                 what="w0 alive")
        held = set(cut.served())
        assert held, "w1 serves nothing"
        link.set(DELAY, 0.7)
        wait_for(lambda: held <= set(ws[1].served()), 30, what="w0 took over")
        assert link.to_worker.delayed > 0, "nothing was delayed: the test tests nothing"
        wait_for(lambda: not cut.served(), 10, what="w1's lease drop")
        end = lease_end(cut)
        wait_for(lambda: time.time() > end, 10, what="w1's last lease ended")
        spans, bad, regress = check({w.holder: w.events for w in ws}, 1)
        assert held <= set(owners_moved(spans)), spans
        assert not bad, f"two owners at once (partition, holders, s): {bad}"
        assert not regress, f"generations went backwards: {regress}"
    finally:
        if link:
            link.stop()
        for w in ws:
            w.kill9()
        d.stop()


def c_worker_binary():
    """The conformance suite's C worker on libshardz (tests/conformance/driver_c.c), built in
    the same tree as BIN (BUILD/src/daemon/shardzd -> BUILD/tests/conformance/)."""
    build = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(BIN))))
    return os.path.join(build, "tests", "conformance", "shardz-conformance-c")


def test_strict_late_push_not_applied_libshardz():
    """A late lease-granting push cannot resurrect a lease (PROTOCOL.md 6), with libshardz: a
    C worker (c1) is slowed (every byte 2 s late) right before partitions are added, so the push
    that tells it to serve some of them arrives after its lease ran out. It carries lease_stamp
    (c1's own clock before it was sent): the coordinator re-places those partitions lease_ms
    after the push left, and c1 must not apply the push when it arrives. Before libshardz anchored
    its lease at the stamp, c1 served them on arrival while w0 already did (two owners)."""
    d = Daemon(BIN).start()
    link, proc, ws = None, None, []
    try:
        # no partitions yet: c1 holds nothing, so no lapse of its own precedes the late push
        # (a lapse would make it refuse the push as a delta on another base, telling nothing)
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=0,
                                              consistency="strict", lease_ms=1000, **FAST))
        port = free_port()
        link = Link(d.port, port)
        events = os.path.join(d.tmp, "c1.events")
        log = open(os.path.join(d.tmp, "c1.log"), "ab")
        proc = subprocess.Popen([c_worker_binary(), "worker", "--coordinator",
                                 link.to_coordinator.address, "--ns", "kv", "--node", "c1",
                                 "--listen", f"127.0.0.1:{port}", "--advertise",
                                 link.to_worker.address, "--events", events],
                                stdin=subprocess.PIPE, stdout=log, stderr=log)
        ws = [Worker(d, "kv", "w0", extra=["--log-leases"])]
        wait_for(lambda: d.call("GET", "/v1/namespaces/kv")[1]["nodes"]["alive"] == 2, 30,
                 what="both workers alive")
        link.set(DELAY, 2.0)
        new = [f"n{i}" for i in range(8)]
        d.call("POST", "/v1/namespaces/kv/partitions", {"ids": new})
        _, st = d.call("GET", "/v1/namespaces/kv/state")
        on_c1 = {p["id"] for p in st["partitions"]
                 if p["id"] in new and any(r["node"] == "c1" for r in p["replicas"])}
        assert on_c1, f"nothing new was given to c1: the test tests nothing ({st})"
        wait_for(lambda: on_c1 <= set(ws[0].served()), 30, what="w0 took c1's new partitions")

        def c1_served():
            return {e["partition"] for e in read_events(events)
                    if e["ev"] == "serve" and e["partition"] in on_c1}

        def push_arrived():
            with open(os.path.join(d.tmp, "c1.log"), errors="replace") as f:
                refused = "(lapsed, or its grant ran out): not applied" in f.read()
            return refused or c1_served()
        # the late push reaches c1 (through the proxy, 2 s late): refused, or served
        wait_for(push_arrived, 20, what="the late push reached c1")
        assert link.to_worker.delayed > 0
        assert not c1_served(), f"c1 applied a late push: {c1_served()} (w0 serves them too)"
    finally:
        if link:
            link.stop()
        if proc:
            proc.kill()
            proc.wait()
        for w in ws:
            w.kill9()
        d.stop()


def test_strict_hash_repartition_refused():
    """Strict hash namespaces are not re-partitioned in place (PROTOCOL.md 3): adding or
    removing a partition would move hash slots, and so keys, between owners at once. Both are
    refused 409 ECONFLICT naming the path, and nothing changes (revision, partitions, slots).
    The first partitions of an empty one are allowed, and an available hash namespace is
    re-partitioned (the positive controls: the same requests do change a namespace)."""
    d = Daemon(BIN).start()
    try:
        d.call("POST", "/v1/namespaces", dict(name="sh", sharder="hash", partitions=0,
                                              consistency="strict", **FAST))
        d.call("POST", "/v1/namespaces/sh/partitions", {"ids": ["a", "b", "c"]})  # empty: fine
        before = d.call("GET", "/v1/namespaces/sh/state")[1]
        assert len(before["partitions"]) == 3, before
        for method, path, body in (("POST", "/v1/namespaces/sh/partitions", {"ids": ["d"]}),
                                   ("DELETE", "/v1/namespaces/sh/partitions/a", None)):
            try:
                d.call(method, path, body)
                raise AssertionError(f"{method} {path} was accepted in a strict hash namespace")
            except HTTPError as e:
                assert e.status == 409 and e.body["code"] == "ECONFLICT", (e.status, e.body)
                assert "new namespace" in e.body["message"], e.body
        after = d.call("GET", "/v1/namespaces/sh/state")[1]

        def shape(st):
            return st["revision"], [(p["id"], p["slots"]) for p in st["partitions"]]
        assert shape(after) == shape(before), "a refused re-partition changed the namespace"
        d.call("POST", "/v1/namespaces", dict(name="ah", sharder="hash", partitions=3, **FAST))
        d.call("POST", "/v1/namespaces/ah/partitions", {"ids": ["d"]})
        d.call("DELETE", "/v1/namespaces/ah/partitions/0")
        assert len(d.call("GET", "/v1/namespaces/ah/state")[1]["partitions"]) == 3
    finally:
        d.stop()


if __name__ == "__main__":
    run([test_fault_proxy_modes, test_ownership_checker, test_strict_vacated_slot_keeps_holder_r1,
         test_strict_vacated_slot_keeps_holder_r3, test_strict_removed_partition_keeps_holder,
         test_generations_survive_remove_readd_and_restart, test_strict_new_incarnation_paused_r1,
         test_strict_new_incarnation_running_copy_r3, test_incarnation_in_registration,
         test_namespace_delete_and_recreate, test_strict_late_messages_do_not_renew,
         test_strict_late_push_not_applied_libshardz, test_strict_hash_repartition_refused,
         test_strict_randomized_short])
