"""Delta assignments in the Python protocol worker (fakeworker.py, PROTOCOL.md 4.1 and 4.3): a
stand-in coordinator in this process answers its registration (agreeing to deltas or not) and
the test plays the assignments: a delta serves and deletes exactly what it names and answers for
those only, a wrong base is refused 409 with applied_revision, stale deltas are ignored, a lease
drop makes every delta refused until a full set; with --no-delta the worker offers nothing and
takes every assignment as full. Then both kinds against the real shardzd (which sends full sets).
Usage: test_fakeworker_delta.py SHARDZD_BINARY"""
import json
import os
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import (TMPS, Daemon, HTTPError, Worker, read_events, request, run, settled,
                     wait_for)

BIN = sys.argv[1]


class Coordinator:
    """Answers register (recording the bodies; "features" as given) and leave; no pings."""

    def __init__(self, features):
        self.registers = []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                out = {"revision": 1}
                if self.path.endswith("/nodes"):
                    outer.registers.append(body)
                    out = {"node": {"id": body["id"]}, "ping_interval_ms": 200,
                           "lease_ms": 1000, "consistency": "available", "revision": 1}
                    if features is not None:
                        out["features"] = features
                data = json.dumps(out).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        self.tmp = tempfile.mkdtemp(prefix="shardz-fw-")
        TMPS.append(self.tmp)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def stop(self):
        self.srv.shutdown()


def rep(p, g, **kw):
    return dict({"partition": p, "generation": g, "slot": 0, "role": "none",
                 "state": "serving"}, **kw)


def send(w, rev, replicas, base=None, removed=None, lease_ms=None, raw=None):
    """Plays one assignment; returns (status, reply)."""
    body = raw or {"namespace": "kv", "node": w.node, "revision": rev, "replicas": replicas}
    if base is not None:
        body["base_revision"] = base
    if removed is not None:
        body["removed"] = removed
    if lease_ms is not None:
        body["lease_ms"] = lease_ms
    try:
        return request(f"http://127.0.0.1:{w.port}", "POST", "/shardz/v1/assign", body)
    except HTTPError as e:
        return e.status, e.body


def ops(w, since=0):
    """The worker's serve/delete events after the first `since`, as 'serve p1 4' strings."""
    return [f"{e['op']} {e['partition']} {e['generation']}"
            + (" lease" if e["cause"] == "lease" else "")
            for e in read_events(w.events)[since:] if e["op"] in ("serve", "delete")]


def serving(reply):
    return sorted((s["partition"], s["generation"]) for s in reply["serving"])


def start(features, extra=()):
    c = Coordinator(features)
    w = Worker(c, "kv", "w1", extra=list(extra))
    wait_for(lambda: c.registers, 10, what="registration")
    # the worker reads the reply right after; an assignment before that would race the flag
    wait_for(lambda: send(w, 0, [])[0] == 200, 10, what="worker answering")
    return c, w


def test_delta_applied_and_refused():
    c, w = start(["delta", "other"])
    try:
        assert c.registers[0]["features"] == ["delta", "term"], c.registers
        st, r = send(w, 10, [rep("p1", 4), rep("p7", 9), rep("p8", 1)])
        assert st == 200 and "delta" not in r and len(r["serving"]) == 3, r
        assert ops(w) == ["serve p1 4", "serve p7 9", "serve p8 1"], ops(w)
        # p7 removed, p1 a new generation, p9 new; p8 untouched and not reported
        st, r = send(w, 11, [rep("p9", 2), rep("p1", 5)], base=10, removed=["p7", "p-none"])
        assert st == 200 and r["delta"] is True and r["applied_revision"] == 11, r
        assert serving(r) == [("p1", 5), ("p9", 2)], r
        assert ops(w, 3) == ["delete p7 9", "serve p1 5", "serve p9 2"], ops(w)
        # a base that is not the applied revision: 409, nothing done
        st, r = send(w, 12, [rep("p3", 1)], base=10, removed=["p1"])
        assert st == 409 and r["code"] == "ESTALE" and r["applied_revision"] == 11, r
        # stale: ignored, answered with everything
        st, r = send(w, 9, [rep("p3", 1)], base=8)
        assert st == 200 and "delta" not in r and r["applied_revision"] == 11, r
        assert serving(r) == [("p1", 5), ("p8", 1), ("p9", 2)], r
        assert len(ops(w)) == 6, ops(w)
        # malformed deltas: 400, nothing done
        for bad in ({"base_revision": "10"}, {"base_revision": 11}, {"base_revision": -1},
                    {"base_revision": 10, "removed": "p1"}, {"base_revision": 10, "removed": [1]},
                    {"base_revision": 10, "removed": ["p1", "p1"]},
                    {"base_revision": 10, "released": True}, {"removed": ["p1"]}):
            body = dict({"namespace": "kv", "node": "w1", "revision": 11, "replicas": []}, **bad)
            st, r = send(w, 0, None, raw=body)
            assert st == 400 and r["code"] in ("EINVAL", "EPROTO"), (bad, st, r)
        assert len(ops(w)) == 6, ops(w)
        # the refused delta on the right base applies (so the refusals would have shown)
        st, r = send(w, 12, [rep("p3", 1)], base=11, removed=["p1"])
        assert st == 200 and serving(r) == [("p3", 1)], r
        assert ops(w, 6) == ["delete p1 5", "serve p3 1"], ops(w)
        # a full set replaces everything; deltas build on it
        st, r = send(w, 13, [rep("p8", 1)])
        assert st == 200 and serving(r) == [("p8", 1)], r
        assert ops(w, 8) == ["delete p3 1", "delete p9 2"], ops(w)
        st, r = send(w, 14, [], base=13, removed=["p8"])
        assert st == 200 and r["serving"] == [], r
        assert ops(w, 10) == ["delete p8 1"], ops(w)
    finally:
        w.kill9()  # a graceful leave would wait for a release this stand-in never sends
        c.stop()


def test_delta_after_lease_drop():
    c, w = start(["delta"])
    try:
        st, r = send(w, 5, [rep("p1", 4)], lease_ms=300)
        assert st == 200, r
        wait_for(lambda: ops(w) == ["serve p1 4", "delete p1 4 lease"], 10, what="lease drop")
        # the set is gone: applied 0, deltas refused until a full set
        st, r = send(w, 6, [rep("p2", 1)], base=5, lease_ms=60000)
        assert st == 409 and r["applied_revision"] == 0, r
        st, r = send(w, 6, [rep("p1", 4), rep("p2", 1)], lease_ms=60000)
        assert st == 200 and r["applied_revision"] == 6, r
        assert ops(w, 2) == ["serve p1 4", "serve p2 1"], ops(w)
        st, r = send(w, 7, [], base=6, removed=["p2"], lease_ms=60000)
        assert st == 200 and r["applied_revision"] == 7 and serving(r) == [], r
    finally:
        w.kill9()  # a graceful leave would wait for a release this stand-in never sends
        c.stop()


def test_no_delta_is_an_old_worker():
    c, w = start(["delta"], extra=["--no-delta"])
    try:
        assert "delta" not in c.registers[0]["features"], c.registers
        send(w, 10, [rep("p1", 4), rep("p7", 9)])
        # a delta-shaped message is taken as a full set, as a worker before deltas did
        st, r = send(w, 11, [rep("p8", 1)], base=10, removed=["p1"])
        assert st == 200 and "delta" not in r and serving(r) == [("p8", 1)], r
        assert ops(w) == ["serve p1 4", "serve p7 9", "delete p1 4", "delete p7 9",
                          "serve p8 1"], ops(w)
    finally:
        w.kill9()  # a graceful leave would wait for a release this stand-in never sends
        c.stop()


def test_both_kinds_with_shardzd():
    """The real coordinator (full sets) serves a delta-offering worker and an old one alike."""
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "kv", "replicas": 2, "partitions": 8})
        ws = [Worker(d, "kv", "w1"), Worker(d, "kv", "w2", extra=["--no-delta"])]
        r = wait_for(lambda: settled(d, "kv", 8, 2, nodes=2), 20, what="settled")
        for w in ws:
            held = w.served()
            assert sorted(held) == sorted(p for p, nodes in r.items() if w.node in nodes), held
    finally:
        for w in ws:
            w.kill9()
        d.stop()


run([test_delta_applied_and_refused, test_delta_after_lease_drop, test_no_delta_is_an_old_worker,
     test_both_kinds_with_shardzd])
