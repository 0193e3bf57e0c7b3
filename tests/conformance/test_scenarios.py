"""The conformance scenarios (tests/conformance/README.md, "Scenarios"): each runs once per
driver against a real shardzd on its own SQLite file (and a real etcd for HA), and checks the
workers' behaviour from their own event files and the coordinator's state. Waits are on
conditions with deadlines; every negative check comes with the positive event in the same test."""
import signal
from urllib.parse import quote

import pytest

import harness
from conftest import Cluster, DriverRouter, DriverWorker, now_ms, shardzd_binary, wait_for


def node_partitions(c, ns, node):
    """partition -> generation the coordinator assigns to a node (every replica state)."""
    _, n = c.d.call("GET", f"/v1/namespaces/{ns}/nodes/{node}")
    return {p["partition"]: p["generation"] for p in n["partitions"]}


def settled(c, ns, nparts, replicas, nodes):
    return harness.settled(c.d, ns, nparts, replicas, nodes)


def served_match(c, ns, workers):
    """Every worker's own view (its events) equals what the coordinator routes to it."""
    r = harness.routing(c.d, ns)
    for w in workers:
        want = {p for p, nodes in r.items() if w.node in nodes}
        if set(w.served()) != want:
            return False
    return True


def test_registration(cluster):
    c = cluster
    c.namespace("reg", partitions=4, dimensions=["cpu"])
    w = c.worker("reg", "w1", zone="za", capacity=["cpu=4"])
    w.wait_registered()

    def listed():
        nodes = c.d.call("GET", "/v1/namespaces/reg/nodes")[1]["nodes"]
        return nodes if nodes and nodes[0]["state"] == "alive" else None
    nodes = wait_for(listed, what="w1 alive")
    n = nodes[0]
    assert (n["id"], n["address"], n["zone"], n["capacity"]) == ("w1", w.addr, "za", {"cpu": 4}), n
    wait_for(lambda: len(w.served()) == 4 and served_match(c, "reg", [w]),
             what="w1 serves the 4 partitions, as routed")


def test_assignments_and_diffs(cluster):
    c = cluster
    c.namespace("diff", partitions=4)
    w = c.worker("diff", "w1")
    w.wait_registered()
    wait_for(lambda: w.served() == node_partitions(c, "diff", "w1") and len(w.served()) == 4,
             what="served = assigned")
    c.d.call("POST", "/v1/namespaces/diff/partitions", {"ids": ["x1", "x2"]})
    wait_for(lambda: w.served() == node_partitions(c, "diff", "w1") and len(w.served()) == 6,
             what="the new partitions served")
    # only the new ones were served: nothing already served was called again
    assert sorted(e["partition"] for e in w.events("serve")) == ["0", "1", "2", "3", "x1", "x2"]
    assert w.events("delete") == []
    c.d.call("DELETE", "/v1/namespaces/diff/partitions/x1")
    wait_for(lambda: w.events("delete"), what="x1 deleted")
    wait_for(lambda: w.served() == node_partitions(c, "diff", "w1") and len(w.served()) == 5,
             what="served = assigned after the removal")
    assert [(e["partition"], e["cause"]) for e in w.events("delete")] == [("x1", "assign")]
    assert len(w.events("serve")) == 6


def test_make_before_break_move(cluster):
    c = cluster
    c.namespace("mv", partitions=2)
    a, b = c.worker("mv", "a"), c.worker("mv", "b")
    r = wait_for(lambda: settled(c, "mv", 2, 1, 2), what="one partition each")
    wait_for(lambda: served_match(c, "mv", [a, b]), what="the workers' own views agree")
    pid = next(p for p, nodes in r.items() if nodes == ["a"])
    old_gen = a.served()[pid]
    t_move = now_ms()
    c.d.call("POST", f"/v1/namespaces/mv/partitions/{pid}/move", {"slot": 0, "to": "b"})
    wait_for(lambda: [e for e in a.events("delete") if e["partition"] == pid and
                      e["t_ms"] > t_move], what="a deletes the moved partition")
    serve = [e for e in b.events("serve") if e["partition"] == pid and e["t_ms"] > t_move]
    drop = [e for e in a.events("delete") if e["partition"] == pid and e["t_ms"] > t_move]
    assert len(serve) == 1 and len(drop) == 1, (serve, drop)
    assert serve[0]["t_ms"] < drop[0]["t_ms"], (serve, drop)  # make before break
    assert serve[0]["generation"] > old_gen and drop[0]["generation"] == old_gen
    assert drop[0]["cause"] == "assign"


def test_kill9_replaced(cluster):
    c = cluster
    c.namespace("k9", partitions=4, replicas=2, dead_after_ms=800)
    ws = [c.worker("k9", f"w{i}") for i in range(3)]
    wait_for(lambda: settled(c, "k9", 4, 2, 3), what="4 x 2 replicas on 3 workers")
    wait_for(lambda: served_match(c, "k9", ws), what="the workers' own views agree")
    router = c.router("k9")
    victim = max(ws, key=lambda w: len(w.served()))
    held = victim.served()
    survivors = [w for w in ws if w is not victim]
    before = {w.node: w.served() for w in survivors}
    victim.kill9()
    r = wait_for(lambda: (lambda s: s if s and all(victim.node not in v for v in s.values())
                          else None)(settled(c, "k9", 4, 2, 2)),
                 timeout=15, what="the victim's replicas re-placed")
    wait_for(lambda: served_match(c, "k9", survivors), what="survivors serve them")
    for pid in held:
        new_owner = next(w for w in survivors if w.node in r[pid] and pid not in before[w.node])
        assert new_owner.served()[pid] > held[pid]  # a new owner, a higher generation
    rev = c.d.call("GET", "/v1/namespaces/k9/state")[1]["revision"]
    router.wait(rev)
    for pid in held:
        got = router.ask(f"partition {pid}")
        assert sorted(n["node"] for n in got["nodes"]) == sorted(r[pid]), got


def test_graceful_leave(cluster):
    c = cluster
    c.namespace("lv", partitions=4)
    a, b = c.worker("lv", "a"), c.worker("lv", "b")
    wait_for(lambda: settled(c, "lv", 4, 1, 2), what="2 partitions each")
    wait_for(lambda: served_match(c, "lv", [a, b]), what="the workers' own views agree")
    held = a.served()
    assert held
    assert a.cmd("leave", timeout=30) == "left"
    a.proc.wait(timeout=10)
    assert a.proc.returncode == 0, a.stderr()
    left = a.events("left")
    assert len(left) == 1
    assert a.served() == {} and set(held) <= set(b.served())
    for pid in held:  # no partition unserved: b served it before a let go, before a left
        serve = [e for e in b.events("serve") if e["partition"] == pid][-1]
        drop = [e for e in a.events("delete") if e["partition"] == pid][-1]
        assert serve["t_ms"] < drop["t_ms"] < left[0]["t_ms"], (serve, drop, left)
    wait_for(lambda: settled(c, "lv", 4, 1, 1) == {p: ["b"] for p in ["0", "1", "2", "3"]},
             what="everything routed to b")


def test_strict_lease_lapse(cluster):
    c = cluster
    lease = 800
    c.namespace("st", partitions=2, consistency="strict", lease_ms=lease)
    w = c.worker("st", "w1")
    wait_for(lambda: len(w.served()) == 2, what="w1 serves both")
    wait_for(lambda: w.cmd("lease_ok st 0") == "true", what="the lease granted")
    c.d.proc.send_signal(signal.SIGSTOP)
    t_stop = now_ms()
    try:
        wait_for(lambda: len(w.events("delete")) == 2, timeout=5, what="deletes on the lapse")
        assert w.cmd("lease_ok st 0") == "false"
    finally:
        c.d.proc.send_signal(signal.SIGCONT)
    lapse = w.events("lease_lapse")
    drops = w.events("delete")
    assert len(lapse) == 1 and all(d["cause"] == "lease" for d in drops), (lapse, drops)
    assert lapse[0]["t_ms"] <= min(d["t_ms"] for d in drops)
    for d in drops:  # after the last contact, before the lease could have run out
        assert t_stop < d["t_ms"] < t_stop + lease, (t_stop, d)
    # back in contact: the coordinator gives the partitions back, the lease is good again
    wait_for(lambda: len(w.served()) == 2, timeout=15, what="served again")
    wait_for(lambda: w.cmd("lease_ok st 0") == "true", what="the lease renewed")


def test_load_reports(cluster):
    c = cluster
    c.namespace("ld", partitions=2, dimensions=["cpu", "mem"])
    w = c.worker("ld", "w1")
    wait_for(lambda: len(w.served()) == 2, what="w1 serves both")
    assert w.cmd("load ld nope cpu 1").startswith("error ")  # not served: refused by the library

    def load(pid):
        return c.d.call("GET", f"/v1/namespaces/ld/partitions/{pid}")[1].get("load")

    def reported():
        # an application reports periodically: a sample goes out with one ping reply, and a
        # reply later than ping_interval_ms (a loaded machine) counts as missed, sample and all
        assert w.cmd("load ld 0 cpu 2.5") == "ok"
        assert w.cmd("load ld 1 mem 7") == "ok"
        return load("0") and load("1")
    wait_for(reported, what="loads at the coordinator")
    assert load("0")["cpu"] == 2.5 and load("1")["mem"] == 7, (load("0"), load("1"))


def test_range_bounds_and_split_hint(cluster):
    c = cluster
    c.namespace("rg", sharder="range", partitions=2, balance={"interval_ms": 0})
    ws = [c.worker("rg", "a"), c.worker("rg", "b")]
    r = wait_for(lambda: settled(c, "rg", 2, 1, 2), what="one range each")
    wait_for(lambda: served_match(c, "rg", ws), what="the workers' own views agree")
    state = c.d.call("GET", "/v1/namespaces/rg/state")[1]
    bounds = {p["id"]: (p["range"]["lo"], p["range"]["hi"]) for p in state["partitions"]}
    assert bounds == {"0": ("", "O"), "1": ("O", None)}, bounds
    for w in ws:
        for e in w.events("serve"):
            assert (e["lo"], e["hi"]) == bounds[e["partition"]], e
    holder = {nodes[0]: pid for pid, nodes in r.items()}
    w0 = next(w for w in ws if holder[w.node] == "0")
    w1 = next(w for w in ws if holder[w.node] == "1")

    def reported():  # periodically, as in test_load_reports
        assert w0.cmd("split rg 0 C") == "ok"
        assert w0.cmd("load rg 0 load 10") == "ok"
        assert w1.cmd("load rg 1 load 1") == "ok"
        return all(c.d.call("GET", f"/v1/namespaces/rg/partitions/{p}")[1].get("load")
                   for p in ("0", "1"))
    wait_for(reported, what="both loads at the coordinator")
    run = c.d.call("POST", "/v1/namespaces/rg/rebalance?balancer=load")[1]
    assert [(s["partition"], s.get("at")) for s in run["splits"]] == [("0", "C")], run
    # the successors reach their workers with their bounds
    wait_for(lambda: {(e.get("lo"), e.get("hi")) for w in ws for e in w.events("serve")} >=
             {("", "C"), ("C", "O")}, timeout=15, what="the successors served")
    wait_for(lambda: not [t for t in c.d.call("GET", "/v1/namespaces/rg/tasks")[1]["tasks"]
                          if t["state"] != "done"], timeout=15, what="the split done")
    router = c.router("rg")
    router.wait(c.d.call("GET", "/v1/namespaces/rg/state")[1]["revision"])
    for key in ("B", "C", "D", "Z", " "):
        got = router.ask(f"key {key}")
        want = c.d.call("GET", f"/v1/namespaces/rg/lookup?key={key.replace(' ', '%20')}")[1]
        assert got["partition"] == want["partition"] and "slot" not in got, (key, got, want)
        assert [n["node"] for n in got["nodes"]] == \
            [x["node"] for x in want["replicas"] if x["state"] == "serving"], (got, want)


def test_bad_messages(cluster):
    c = cluster
    c.namespace("bad", partitions=2)
    w = c.worker("bad", "w1")
    wait_for(lambda: len(w.served()) == 2, what="w1 serves both")
    n_events = len(w.events())
    good = {"namespace": "bad", "node": "w1", "revision": 10**9}
    rep = {"partition": "zz", "generation": 1, "slot": 0}
    cases = [
        ("/shardz/v1/assign", None, b"{not json", 400, "EINVAL"),
        ("/shardz/v1/assign", None, b"[1, 2]", 400, "EINVAL"),
        ("/shardz/v1/assign", dict(good, node="w2", replicas=[]), None, 400, "EPROTO"),
        ("/shardz/v1/assign", dict(good, replicas="p1"), None, 400, "EINVAL"),
        ("/shardz/v1/assign", dict(good, revision=-1, replicas=[]), None, 400, "EINVAL"),
        ("/shardz/v1/assign", dict(good, revision=1.5, replicas=[]), None, 400, "EINVAL"),
        ("/shardz/v1/assign", dict(good, replicas=[dict(rep, partition="a b")]), None, 400,
         "EINVAL"),
        ("/shardz/v1/assign", dict(good, replicas=[rep, rep]), None, 400, "EPROTO"),
        ("/shardz/v1/assign", dict(good, replicas=[], removed=["0"]), None, 400, "EPROTO"),
        ("/shardz/v1/assign", dict(good, replicas=[], base_revision=10**9), None, 400, "EINVAL"),
        ("/shardz/v1/assign", dict(good, replicas=[rep], base_revision=1, removed=["zz"]), None,
         400, "EPROTO"),
        ("/shardz/v1/ping", None, b"", 400, "EINVAL"),
        ("/shardz/v1/ping", dict(good, revision="7"), None, 400, "EINVAL"),
        ("/shardz/v1/ping", dict(good, lease_ms=0), None, 400, "EINVAL"),
        ("/shardz/v1/nope", good, None, 404, "ENOENT"),
    ]
    for path, body, raw, status, code in cases:
        st, reply = w.post(path, body, raw=raw)
        assert (st, isinstance(reply, dict) and reply.get("code")) == (status, code), \
            (path, body, raw, st, reply)
        assert isinstance(reply.get("message"), str) and reply["message"], reply
    assert len(w.events()) == n_events  # nothing was called
    # still serving: it answers the coordinator's pings and applies the next real change
    c.d.call("POST", "/v1/namespaces/bad/partitions", {"ids": ["later"]})
    wait_for(lambda: len(w.served()) == 3, what="the next assignment applied")
    assert w.served() == node_partitions(c, "bad", "w1")
    nodes = c.d.call("GET", "/v1/namespaces/bad/nodes")[1]["nodes"]
    assert nodes[0]["state"] == "alive"


def test_router_lookups(cluster):
    c = cluster
    c.namespace("rt", sharder="hash", partitions=8, replicas=2, roles=True, slots=1024)
    ws = [c.worker("rt", f"w{i}") for i in range(3)]
    wait_for(lambda: settled(c, "rt", 8, 2, 3), what="8 x 2 on 3 workers")
    router = c.router("rt")
    router.wait(c.d.call("GET", "/v1/namespaces/rt/state")[1]["revision"])
    for key in ("foo", "bar", "{user1}:a", "{user1}:b", "user:1000", "ключ", "a b"):
        got = router.ask(f"key {key}")
        _, want = c.d.call("GET", "/v1/namespaces/rt/lookup?key=" + quote(key, safe=""))
        assert (got["partition"], got["slot"]) == (want["partition"], want["slot"]), (got, want)
        serving = [x for x in sorted(want["replicas"], key=lambda x: x["slot"])
                   if x["state"] == "serving"]
        assert got["nodes"] == [{"node": x["node"], "addr": x["address"], "role": x["role"]}
                                for x in serving], (got, want)
    for pid in [str(i) for i in range(8)]:
        got = router.ask(f"partition {pid}")
        want = c.d.call("GET", f"/v1/namespaces/rt/partitions/{pid}")[1]
        assert {n["node"] for n in got["nodes"]} == {x["node"] for x in want["replicas"]
                                                     if x["state"] == "serving"}, (got, want)
        assert sorted(n["role"] for n in got["nodes"]) == ["primary", "secondary"], got
    assert router.ask("partition nope")["error"] == "ENOENT"
    # a change reaches the router through its watch
    rev = c.d.call("POST", "/v1/namespaces/rt/partitions", {"ids": ["new"]})[1]["revision"]
    router.wait(rev)
    got = router.ask("partition new")
    assert got["revision"] >= rev and "error" not in got, got
    wait_for(lambda: settled(c, "rt", 9, 2, 3), what="the new partition placed")
    rev = c.d.call("GET", "/v1/namespaces/rt/state")[1]["revision"]
    router.wait(rev)
    assert len(router.ask("partition new")["nodes"]) == 2


@pytest.fixture
def ha(driver):
    etcd = harness.Etcd().start()
    ds = []
    try:
        for i in range(2):
            d = harness.Daemon(shardzd_binary(),
                               extra=["--store", etcd.url(), "--id", f"c{i}", "--lease-ttl", "2000"])
            d.start()
            ds.append(d)
            if i == 0:  # the first one leads
                wait_for(lambda: d.call("GET", "/v1/status")[1]["acting"], what="c0 leads")
        yield driver, etcd, ds
    finally:
        for d in ds:
            if d.proc.poll() is None:
                d.proc.send_signal(signal.SIGKILL)
                d.proc.wait()
        etcd.stop()


def test_ha_two_coordinators(ha, tmp_path):
    driver, etcd, (c0, c1) = ha
    both = f"127.0.0.1:{c0.port},127.0.0.1:{c1.port}"
    tmp = str(tmp_path)
    c0.call("POST", "/v1/namespaces", {"name": "ha", "partitions": 4, "ping_interval_ms": 100,
                                        "dead_after_ms": 600})
    ws = [DriverWorker(driver, tmp, both, "ha", f"w{i}") for i in range(2)]
    router = None
    try:
        wait_for(lambda: harness.settled(c0, "ha", 4, 1, 2), timeout=15, what="placed")
        wait_for(lambda: sum(len(w.served()) for w in ws) == 4, what="served")
        router = DriverRouter(driver, tmp, both, "ha")
        before = {w.node: w.served() for w in ws}
        t_kill = now_ms()
        c0.kill9()
        wait_for(lambda: c1.call("GET", "/v1/status")[1]["acting"], timeout=10,
                 what="c1 leads")
        # the new leader pings the workers: alive under it, nothing dropped
        wait_for(lambda: all(n["state"] == "alive"
                             for n in c1.call("GET", "/v1/namespaces/ha/nodes")[1]["nodes"]),
                 timeout=10, what="workers alive under c1")
        assert {w.node: w.served() for w in ws} == before
        assert not [e for w in ws for e in w.events("delete") if e["t_ms"] > t_kill]
        # it decides, and the workers apply its assignments
        rev = c1.call("POST", "/v1/namespaces/ha/partitions", {"ids": ["n1", "n2"]})[1]["revision"]
        wait_for(lambda: sum(len(w.served()) for w in ws) == 6, timeout=10,
                 what="the new partitions served")
        # the router moved to c1 and follows it
        router.wait(rev, timeout=15)
        wait_for(lambda: harness.settled(c1, "ha", 6, 1, 2), timeout=10, what="settled on c1")
        rev = c1.call("GET", "/v1/namespaces/ha/state")[1]["revision"]
        router.wait(rev, timeout=15)
        r = harness.routing(c1, "ha")
        for pid in ("n1", "n2", "0"):
            got = router.ask(f"partition {pid}")
            assert [n["node"] for n in got["nodes"]] == r[pid], (got, r)
    finally:
        for p in ws + ([router] if router else []):
            p.close()


def test_secret(driver):
    """A coordinator with a secret: the worker and the router given it register, serve and
    route; the worker's own endpoint refuses a request without it (401), and so does the
    coordinator (so the worker's requests to it did carry it)."""
    c = Cluster(driver, secret="s3cret")
    try:
        c.namespace("sec", partitions=2)
        w = c.worker("sec", "w1", secret="s3cret")
        wait_for(lambda: len(w.served()) == 2, what="w1 serves both")
        st, reply = w.post("/shardz/v1/ping", {"namespace": "sec", "node": "w1", "revision": 1})
        assert (st, reply.get("code")) == (401, "EPROTO"), (st, reply)
        try:
            c.d.call("GET", "/v1/namespaces/sec")
            raise AssertionError("the coordinator answered without the secret")
        except harness.HTTPError as e:
            assert e.status == 401
        router = c.router("sec", secret="s3cret")
        got = router.ask("partition 0")
        assert [n["node"] for n in got["nodes"]] == ["w1"], got
        assert len(w.served()) == 2 and not w.events("delete")
    finally:
        c.close()
