"""The worker's behaviour, driven through Worker.handle (the entry a mounted worker uses) with
an injected clock, and through its own listener for the ping-during-a-hook test. No coordinator:
the registration thread is not started (or retries against a closed port in the background)."""
import json
import threading
import urllib.request

import pytest

from shardz import CAUSE_ASSIGN, CAUSE_LEASE, Worker


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Rec:
    def __init__(self):
        self.calls = []
        self.fail = set()

    def serve(self, r):
        self.calls.append(("serve", r.partition, r.generation, r.role, r.update, r.old_generation))
        if r.partition in self.fail:
            raise RuntimeError("disk full")

    def delete(self, r):
        self.calls.append(("delete", r.partition, r.generation, r.cause))


def make(rec, clock=None, **kw):
    return Worker("127.0.0.1:1", "kv", "w1", rec.serve, rec.delete, listen=None,
                  advertise="127.0.0.1:9", clock=clock or Clock(), **kw)


def rep(pid, gen, role="none", state="serving", slot=0):
    return {"partition": pid, "generation": gen, "role": role, "state": state, "slot": slot}


def assign(w, revision, reps, **extra):
    body = dict({"namespace": "kv", "node": "w1", "revision": revision, "replicas": reps}, **extra)
    status, out = w.handle("POST", "/shardz/v1/assign", None, json.dumps(body).encode())
    return status, json.loads(out)


def ping(w, revision=1, **extra):
    body = dict({"namespace": "kv", "node": "w1", "revision": revision}, **extra)
    status, out = w.handle("POST", "/shardz/v1/ping", None, json.dumps(body).encode())
    return status, json.loads(out)


def test_diffs_deletes_first_updates_and_stale():
    rec = Rec()
    w = make(rec)
    st, r = assign(w, 5, [rep("p2", 1), rep("p1", 4, "primary")])
    assert st == 200 and r["applied_revision"] == 5
    assert rec.calls == [("serve", "p1", 4, "primary", False, 0), ("serve", "p2", 1, "none", False, 0)]
    rec.calls.clear()
    # p2 gone, p1 a new generation (update in place), p3 new, p0 only its state changed
    st, r = assign(w, 6, [rep("p1", 5, "primary"), rep("p3", 1)])
    assert rec.calls == [("delete", "p2", 1, CAUSE_ASSIGN), ("serve", "p1", 5, "primary", True, 4),
                         ("serve", "p3", 1, "none", False, 0)]
    rec.calls.clear()
    st, r = assign(w, 7, [rep("p1", 5, "primary", state="adding", slot=1), rep("p3", 1)])
    assert rec.calls == [] and r["serving"] == [{"partition": "p1", "generation": 5},
                                                {"partition": "p3", "generation": 1}]
    st, r = assign(w, 6, [])  # stale: ignored, answered with the current state
    assert st == 200 and rec.calls == [] and r["applied_revision"] == 7 and len(r["serving"]) == 2


def test_failed_serve_is_reported_and_not_held():
    rec = Rec()
    rec.fail.add("p2")
    w = make(rec)
    st, r = assign(w, 5, [rep("p1", 1), rep("p2", 1)])
    assert r["serving"] == [{"partition": "p1", "generation": 1}]
    assert r["failed"] == [{"partition": "p2", "error": "disk full"}]
    assert set(w.serving()) == {"p1"}


def test_delta_and_its_base():
    rec = Rec()
    w = make(rec)
    assign(w, 5, [rep("p1", 1), rep("p2", 1)])
    rec.calls.clear()
    st, r = assign(w, 6, [rep("p3", 2)], base_revision=4, removed=["p1"])
    assert st == 409 and r["code"] == "ESTALE" and r["applied_revision"] == 5 and rec.calls == []
    st, r = assign(w, 6, [rep("p3", 2)], base_revision=5, removed=["p1"])
    assert st == 200 and r["delta"] is True and r["applied_revision"] == 6
    assert r["serving"] == [{"partition": "p3", "generation": 2}]  # only what it named
    assert rec.calls == [("delete", "p1", 1, CAUSE_ASSIGN), ("serve", "p3", 2, "none", False, 0)]
    assert w.status()["deltas"] == 1 and w.status()["deltas_refused"] == 1


def test_lease_lapse_drops_everything_before_the_next_assignment():
    rec, clock = Rec(), Clock()
    w = make(rec, clock)
    assign(w, 5, [rep("p1", 1), rep("p2", 1)], lease_ms=1000, consistency="strict")
    assert w.lease_ok()
    clock.t += 0.7
    assert w.lease_ok() and ping(w, 5, lease_ms=1000)[1]["applied_revision"] == 5  # renewed
    clock.t += 0.9  # 0.9 s after the last grant: past the effective lease (1 s - 0.15 s margin)
    assert not w.lease_ok()
    rec.calls.clear()
    st, r = ping(w, 5, lease_ms=1000)
    assert r["applied_revision"] == 0  # a lapse is reported at once, even before the drop
    # a delta is refused (the set is gone); the full set comes and is applied after the drop
    st, r = assign(w, 6, [rep("p1", 2)], base_revision=5, lease_ms=1000)
    assert st == 409 and r["applied_revision"] == 0
    assert rec.calls == [("delete", "p1", 1, CAUSE_LEASE), ("delete", "p2", 1, CAUSE_LEASE)]
    st, r = assign(w, 7, [rep("p1", 2)], lease_ms=1000)
    assert r["applied_revision"] == 7 and rec.calls[-1] == ("serve", "p1", 2, "none", False, 0)
    assert w.lease_ok() and w.status()["lease_expiries"] == 1


def test_resync_after_a_lapse_grants_its_lease():
    """A strict worker whose lease lapsed and that then applied a forged assignment from the
    future (no lease_ms: anyone can send one without a secret) is resynchronised by the
    coordinator's whole set with resync_from: older than the forged revision, it still grants
    the lease it is applied under (issue 16; before, it was refused as ungranted, forever)."""
    rec, clock = Rec(), Clock()
    w = make(rec, clock)
    assign(w, 5, [rep("p1", 1)], lease_ms=1000, consistency="strict")
    clock.t += 1.6  # past the lease: lapsed
    assert ping(w, 5, lease_ms=1000)[1]["applied_revision"] == 0
    forged = 2**63 - 1
    st, r = assign(w, forged, [])
    assert st == 200 and r["applied_revision"] == forged  # the forgery took (positive control)
    st, r = assign(w, 8, [rep("p1", 2)], lease_ms=1000, resync_from=forged)
    assert st == 200 and r["applied_revision"] == 8, r
    assert rec.calls[-1] == ("serve", "p1", 2, "none", False, 0) and w.lease_ok()


def test_lease_stamps():
    """PROTOCOL.md 4.1, 6: replies carry this worker's clock (stamp); a grant runs from the
    lease_stamp it echoes, so one that ran out before it arrived renews nothing and its
    assignment is not applied (a late push cannot resurrect a lease), and an older stamp never
    shortens the lease."""
    rec, clock = Rec(), Clock()
    w = make(rec, clock)
    t0 = 1000000  # the clock in ms
    st, r = ping(w, 5, lease_ms=1000, lease_stamp=t0 - 900, consistency="strict")
    assert r["stamp"] == t0  # late: grants nothing
    st, r = assign(w, 5, [rep("p1", 1)], lease_ms=1000, lease_stamp=t0 - 900)  # late
    assert st == 200 and r["applied_revision"] == 0 and r["stamp"] == t0 and rec.calls == []
    st, r = assign(w, 5, [rep("p1", 1)], lease_ms=1000, lease_stamp=t0 - 100)  # until t0 + 750
    assert r["applied_revision"] == 5 and rec.calls == [("serve", "p1", 1, "none", False, 0)]
    ping(w, 5, lease_ms=1000, lease_stamp=t0 - 500)  # older: does not shorten it
    clock.t += 0.74
    assert w.lease_ok()
    clock.t += 0.01  # t0 + 750: run out (from its receipt at t0 it would last to t0 + 850)
    assert not w.lease_ok()
    st, r = ping(w, 5, lease_ms=1000, lease_stamp=t0 - 100)  # ran out: renews nothing
    assert r["applied_revision"] == 0
    # ran out as well: the lapse's drop runs, and this one is not applied
    st, r = assign(w, 6, [rep("p1", 2)], lease_ms=1000, lease_stamp=t0 - 100)
    assert r["applied_revision"] == 0 and rec.calls[-1] == ("delete", "p1", 1, CAUSE_LEASE)
    assert not w.lease_ok()
    st, r = assign(w, 6, [rep("p1", 2)], lease_ms=1000, lease_stamp=t0 + 700)
    assert r["applied_revision"] == 6 and r["stamp"] == t0 + 750 and w.lease_ok()


def test_terms():
    """PROTOCOL.md 4.2: a message of an older term than one seen (a deposed coordinator's) is
    refused 409 ESTALE naming the term seen; it renews no lease and changes nothing. One
    without a term (an older coordinator) is taken."""
    rec, clock = Rec(), Clock()
    w = make(rec, clock)
    st, r = assign(w, 5, [rep("p1", 1)], lease_ms=1000, consistency="strict", term=7)
    assert st == 200 and r["applied_revision"] == 5
    st, r = assign(w, 9, [rep("p2", 1)], lease_ms=1000, term=6)
    assert st == 409 and r["code"] == "ESTALE" and r["term"] == 7
    clock.t += 0.8
    st, r = ping(w, 9, lease_ms=1000, term=6)
    assert st == 409 and r["term"] == 7
    clock.t += 0.06  # 0.86 s after the last grant: it renewed nothing
    assert not w.lease_ok() and set(w.serving()) == {"p1"}
    assert rec.calls == [("serve", "p1", 1, "none", False, 0)]
    assert ping(w, 9, lease_ms=1000, term=7)[0] == 200
    st, r = assign(w, 10, [rep("p2", 1)], lease_ms=1000)  # no term: taken
    assert st == 200 and r["applied_revision"] == 10 and set(w.serving()) == {"p2"}


def test_lease_not_enforced_in_available_mode():
    rec, clock = Rec(), Clock()
    w = make(rec, clock)
    assign(w, 5, [rep("p1", 1)], lease_ms=1000, consistency="available")
    clock.t += 10
    assert w.lease_ok() and ping(w, 5)[1]["applied_revision"] == 5 and rec.calls[-1][0] == "serve"


def test_load_and_split_reports():
    rec = Rec()
    w = make(rec)
    assign(w, 5, [rep("p1", 1)])
    with pytest.raises(KeyError):
        w.report_load("p9", "cpu", 1)
    with pytest.raises(ValueError):
        w.report_load("p1", "cpu", float("nan"))
    with pytest.raises(ValueError):
        w.split_at("p1", "")
    w.report_load("p1", "cpu", 0.5)
    w.report_load("p1", "cpu", 0.75)  # the latest wins
    w.split_at("p1", "user:5")
    assert ping(w, 5)[1] == {"node": "w1", "applied_revision": 5, "load": {"p1": {"cpu": 0.75}},
                             "split_at": {"p1": "user:5"}, "stamp": 1000000}
    assert ping(w, 5)[1] == {"node": "w1", "applied_revision": 5, "stamp": 1000000}  # cleared


def test_secret_and_routes():
    rec = Rec()
    w = Worker("127.0.0.1:1", "kv", "w1", rec.serve, rec.delete, listen=None,
               advertise="127.0.0.1:9", secret="s3")
    body = json.dumps({"namespace": "kv", "node": "w1", "revision": 1}).encode()
    assert w.handle("POST", "/shardz/v1/ping", None, body)[0] == 401
    assert w.handle("POST", "/shardz/v1/ping", "Bearer s3", body)[0] == 200
    assert w.handle("GET", "/shardz/v1/ping", "Bearer s3", body)[0] == 400
    assert w.handle("POST", "/shardz/v1/other", "Bearer s3", body)[0] == 404


def test_ping_answered_while_a_hook_runs():
    """A serve hook held at a gate: a ping over the worker's own listener is still answered."""
    entered, gate = threading.Event(), threading.Event()

    def serve(r):
        entered.set()
        assert gate.wait(20)

    w = Worker("127.0.0.1:1", "kv", "w1", serve, lambda r: None, listen="127.0.0.1:0",
               backoff_max=0.2)
    w.start()
    try:
        port = w.address.rsplit(":", 1)[1]

        def post(path, body):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST",
                                         data=json.dumps(body).encode())
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())
        result = {}
        t = threading.Thread(target=lambda: result.update(
            a=post("/shardz/v1/assign", {"namespace": "kv", "node": "w1", "revision": 3,
                                         "replicas": [rep("p1", 1)]})))
        t.start()
        assert entered.wait(10)  # the hook runs (and is held)
        got = post("/shardz/v1/ping", {"namespace": "kv", "node": "w1", "revision": 3})
        assert isinstance(got.pop("stamp"), int) and got == {"node": "w1", "applied_revision": 0}
        gate.set()
        t.join(10)
        assert result["a"]["applied_revision"] == 3  # and the assignment completes after it
    finally:
        gate.set()
        w.stop()


def test_wsgi_app():
    """The worker mounted as a WSGI application answers like its own listener."""
    import io
    rec = Rec()
    w = make(rec)
    body = json.dumps({"namespace": "kv", "node": "w1", "revision": 3,
                       "replicas": [rep("p1", 2)]}).encode()
    seen = {}

    def start_response(status, headers):
        seen["status"], seen["headers"] = status, dict(headers)
    out = b"".join(w.wsgi({"REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO":
                           "/shardz/v1/assign", "CONTENT_LENGTH": str(len(body)),
                           "wsgi.input": io.BytesIO(body)}, start_response))
    assert seen["status"].startswith("200") and json.loads(out)["applied_revision"] == 3
    assert seen["headers"]["Content-Length"] == str(len(out))
    assert rec.calls == [("serve", "p1", 2, "none", False, 0)]
    out = b"".join(w.wsgi({"REQUEST_METHOD": "POST", "PATH_INFO": "/shardz/v1/ping",
                           "CONTENT_LENGTH": "2", "wsgi.input": io.BytesIO(b"{}")},
                          start_response))
    assert seen["status"].startswith("400") and json.loads(out)["code"] == "EINVAL"


def test_default_clock_is_monotonic():
    from shardz.worker import lease_clock
    a = lease_clock()
    b = lease_clock()
    assert b >= a


def test_state_transfer_not_ready_then_ready():
    """PROTOCOL.md 4.3: a serve hook of an adding replica sees where it comes from and may say
    not ready; serving then says "ready": false, and once ready() the pings list it until an
    assignment shows it serving. Without the coordinator's agreement nothing reaches the wire."""
    seen = []
    w = None

    def serve(r):
        seen.append((r.partition, r.from_node, r.from_address))
        if r.from_node:
            w.not_ready(r.partition)

    w = Worker("127.0.0.1:1", "kv", "w1", serve, lambda r: None, listen=None,
               advertise="127.0.0.1:9", clock=Clock())
    w.transfer_agreed = True  # as a register reply listing "transfer" sets it
    src = {"node": "w0", "address": "127.0.0.1:9100"}
    st, r = assign(w, 5, [dict(rep("p1", 7, state="adding"), **{"from": src})])
    assert st == 200 and seen == [("p1", "w0", "127.0.0.1:9100")]
    assert r["serving"] == [{"partition": "p1", "generation": 7, "ready": False}]
    assert "ready" not in ping(w, 5)[1]
    with pytest.raises(KeyError):
        w.ready("p1", 6)  # another generation
    with pytest.raises(KeyError):
        w.not_ready("p1")  # only from its serve hook
    w.ready("p1", 7)
    assert ping(w, 5)[1]["ready"] == [{"partition": "p1", "generation": 7}]
    assert ping(w, 5)[1]["ready"] == [{"partition": "p1", "generation": 7}]  # until taken
    st, r = assign(w, 6, [rep("p1", 7)])
    assert r["serving"] == [{"partition": "p1", "generation": 7}] and "ready" not in ping(w, 6)[1]
    st, r = assign(w, 7, [dict(rep("p1", 7), **{"from": {"node": "w 0", "address": "x"}})])
    assert st == 400 and r["code"] == "EINVAL"
    # not agreed: the hook may say so, but the replica is ready on the wire at once
    w.transfer_agreed = False
    st, r = assign(w, 8, [dict(rep("p2", 1, state="adding"), **{"from": src}), rep("p1", 7)])
    assert r["serving"] == [{"partition": "p1", "generation": 7},
                            {"partition": "p2", "generation": 1}]
