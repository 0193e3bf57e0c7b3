"""Range namespaces (sharder "range") against a real shardzd and real worker processes: a split
and a merge seen by the workers with their bounds, make-before-break (the successors serve
before the predecessors are deleted), key lookups, bad input refused with nothing changed, and
crash tests: shardzd killed with SIGKILL right after each step of a split and of a merge is on
disk (SHARDZ_TEST_CRASH_AFTER), then restarted: no key range lost, none overlapping, no gap, the
task completes.
Usage: test_daemon_range.py SHARDZD_BINARY"""
import os
import sys
import time

from harness import Daemon, HTTPError, Worker, read_events, run, wait_for

BIN = sys.argv[1]
FAST = {"ping_interval_ms": 100, "dead_after_ms": 500}


def routed(d, ns):
    """The routed ranges [(lo, hi, partition, serving nodes)] in key order, from /state."""
    _, st = d.call("GET", f"/v1/namespaces/{ns}/state")
    out = []
    for p in st["partitions"]:
        if "range" in p and p.get("routed", True):
            out.append((p["range"]["lo"], p["range"]["hi"], p["id"],
                        sorted(r["node"] for r in p["replicas"] if r["state"] == "serving")))
    return sorted(out, key=lambda r: r[0].encode())


def check_cover(ranges):
    """The ranges cover the key space once: from "" to +inf (null), each hi the next lo."""
    assert ranges, "no routed range"
    assert ranges[0][0] == "", ranges
    assert ranges[-1][1] is None, ranges
    for a, b in zip(ranges, ranges[1:]):
        assert a[1] is not None and a[1] == b[0], f"gap or overlap between {a} and {b}"
        assert a[0].encode() < a[1].encode(), a


def settled(d, ns, replicas):
    r = routed(d, ns)
    moves = d.call("GET", f"/v1/namespaces/{ns}/moves")[1]["moves"]
    busy = [t for t in d.call("GET", f"/v1/namespaces/{ns}/tasks")[1]["tasks"]
            if t["state"] != "done"]
    ok = r and all(len(x[3]) == replicas for x in r) and not moves and not busy
    return r if ok else None


def task(d, ns, tid):
    return next(t for t in d.call("GET", f"/v1/namespaces/{ns}/tasks")[1]["tasks"]
                if t["id"] == tid)


def error_of(fn):
    try:
        fn()
    except HTTPError as e:
        assert set(e.body) == {"code", "message"} and e.body["message"], e.body
        return e.status, e.body["code"], e.body["message"]
    raise AssertionError("no error")


def events(ws):
    return {w.node: read_events(w.events) for w in ws}


def make_before_break(ws, old, new, since):
    """Every successor had a serving replica before any node deleted a predecessor (after the
    task started at `since`: earlier moves of a predecessor do not count)."""
    evs = [e for evl in events(ws).values() for e in evl if e["t"] >= since]
    first_serve = {p: min((e["t"] for e in evs if e["op"] == "serve" and e["partition"] == p),
                          default=None) for p in new}
    deletes = [e["t"] for e in evs if e["op"] == "delete" and e["partition"] in old]
    assert all(first_serve.values()), first_serve
    assert deletes, "the predecessors were never deleted"
    assert min(deletes) > max(first_serve.values()), (first_serve, deletes)


def bounds_seen(ws, partition):
    """The bounds the workers were given with the serve of partition."""
    return {(e["range"]["lo"], e["range"]["hi"]) for evl in events(ws).values() for e in evl
            if e["op"] == "serve" and e["partition"] == partition and "range" in e}


def test_split_and_merge():
    d = Daemon(BIN).start()
    ws = []
    try:
        st, ns = d.call("POST", "/v1/namespaces",
                        dict(name="rg", sharder="range", replicas=2, partitions=2, **FAST))
        assert st == 201 and ns["sharder"] == "range" and ns["partitions"] == 2, ns
        ws = [Worker(d, "rg", f"w{i}") for i in range(3)]
        r = wait_for(lambda: settled(d, "rg", 2), 15, what="placement")
        check_cover(r)
        assert [(x[0], x[1]) for x in r] == [("", "O"), ("O", None)], r
        # lookups: key -> range -> nodes
        _, lk = d.call("GET", "/v1/namespaces/rg/lookup?key=apple")
        assert lk["partition"] == "1" and lk["range"] == {"lo": "O", "hi": None}, lk
        _, lk = d.call("GET", "/v1/namespaces/rg/lookup?key=Apple")
        assert lk["partition"] == "0" and "slot" not in lk, lk
        # split "0" = ["", "O") at "G"
        since = time.time()
        st, body = d.call("POST", "/v1/namespaces/rg/partitions/0/split", {"at": "G"})
        assert st == 202 and body["task"]["type"] == "split", body
        t = body["task"]
        assert t["from"] == ["0"] and [(x["lo"], x["hi"]) for x in t["to"]] == [("", "G"),
                                                                                 ("G", "O")], t
        left, right = t["to"][0]["partition"], t["to"][1]["partition"]
        wait_for(lambda: task(d, "rg", t["id"])["state"] == "done", 15, what="split done")
        r = wait_for(lambda: settled(d, "rg", 2), 15, what="settled after the split")
        check_cover(r)
        assert [x[2] for x in r] == [left, right, "1"], r
        assert bounds_seen(ws, left) == {("", "G")}, bounds_seen(ws, left)
        assert bounds_seen(ws, right) == {("G", "O")}, bounds_seen(ws, right)
        make_before_break(ws, ["0"], [left, right], since)
        _, lk = d.call("GET", "/v1/namespaces/rg/lookup?key=H")
        assert lk["partition"] == right, lk
        # a split at the middle (no body): ["O", +inf) splits at "g" ((0x4f + 0x7f) / 2)
        st, body = d.call("POST", "/v1/namespaces/rg/partitions/1/split")
        assert [(x["lo"], x["hi"]) for x in body["task"]["to"]] == [("O", "g"), ("g", None)]
        wait_for(lambda: task(d, "rg", body["task"]["id"])["state"] == "done", 15,
                 what="middle split done")
        # merge the two first ranges
        since = time.time()
        st, body = d.call("POST", "/v1/namespaces/rg/merge", {"partitions": [right, left]})
        assert st == 202 and body["task"]["from"] == [left, right], body
        merged = body["task"]["to"][0]["partition"]
        wait_for(lambda: task(d, "rg", body["task"]["id"])["state"] == "done", 15,
                 what="merge done")
        r = wait_for(lambda: settled(d, "rg", 2), 15, what="settled after the merge")
        check_cover(r)
        assert [(x[0], x[1]) for x in r] == [("", "O"), ("O", "g"), ("g", None)], r
        assert bounds_seen(ws, merged) == {("", "O")}
        make_before_break(ws, [left, right], [merged], since)
        # every worker serves exactly what the routing says
        held = {}
        for w in ws:
            for p in w.served():
                held.setdefault(p, set()).add(w.node)
        assert held == {x[2]: set(x[3]) for x in r}, (held, r)
        # the task log shows all three, done; the events too
        tasks = d.call("GET", "/v1/namespaces/rg/tasks")[1]["tasks"]
        assert [t["state"] for t in tasks] == ["done"] * 3, tasks
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_bad_input():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces",
               dict(name="rg", sharder="range", replicas=1, partitions=3, **FAST))
        d.call("POST", "/v1/namespaces", dict(name="kv", partitions=2, **FAST))
        ws = [Worker(d, "rg", f"w{i}", extra=["--serve-delay-ms", "1500"]) for i in range(2)]
        r = wait_for(lambda: settled(d, "rg", 1), 20, what="placement")
        assert [(x[0], x[1]) for x in r] == [("", "?"), ("?", "_"), ("_", None)], r
        rev = d.call("GET", "/v1/namespaces/rg")[1]["revision"]
        split = "/v1/namespaces/rg/partitions/{}/split"
        cases = [
            (lambda: d.call("POST", split.format("1"), {"at": "z"}), 400, "EINVAL", "outside"),
            (lambda: d.call("POST", split.format("1"), {"at": "?"}), 400, "EINVAL",
             "lower bound"),
            (lambda: d.call("POST", split.format("1"), {"at": "_"}), 400, "EINVAL", "outside"),
            (lambda: d.call("POST", split.format("0"), {"at": ""}), 400, "EINVAL", "at must"),
            (lambda: d.call("POST", split.format("0"), {"at": 7}), 400, "EINVAL", "at must"),
            (lambda: d.call("POST", split.format("nope"), {"at": "a"}), 404, "ENOENT", "nope"),
            (lambda: d.call("POST", "/v1/namespaces/rg/merge", {"partitions": ["0", "2"]}), 400,
             "EINVAL", "not neighbours"),
            (lambda: d.call("POST", "/v1/namespaces/rg/merge", {"partitions": ["0", "x"]}), 404,
             "ENOENT", "'x'"),
            (lambda: d.call("POST", "/v1/namespaces/rg/merge", {"partitions": ["0"]}), 400,
             "EINVAL", "two"),
            (lambda: d.call("POST", "/v1/namespaces/rg/merge", {"partitions": ["0", "0"]}), 400,
             "EINVAL", "neighbours"),
            (lambda: d.call("POST", "/v1/namespaces/kv/partitions/0/split", {}), 400, "ENOTSUP",
             "not a range"),
            (lambda: d.call("DELETE", "/v1/namespaces/rg/partitions/0"), 409, "EBUSY",
             "merge it"),
            (lambda: d.call("POST", "/v1/namespaces/rg/partitions", {"ids": ["x"]}), 400,
             "ENOTSUP", "splitting"),
        ]
        for fn, status, code, text in cases:
            got = error_of(fn)
            assert got[:2] == (status, code) and text in got[2], (got, status, code, text)
        assert d.call("GET", "/v1/namespaces/rg")[1]["revision"] == rev, "a refusal changed it"
        assert d.call("GET", "/v1/namespaces/rg/tasks")[1]["tasks"] == []
        assert [(x[0], x[1]) for x in routed(d, "rg")] == [(x[0], x[1]) for x in r]
        # a range in a task (the slow workers keep the split in flight) is busy
        st, body = d.call("POST", split.format("0"), {"at": "5"})
        assert st == 202
        tid, succ = body["task"]["id"], body["task"]["to"][0]["partition"]
        wait_for(lambda: task(d, "rg", tid)["state"] == "split", 10, what="successors created")
        rev = d.call("GET", "/v1/namespaces/rg")[1]["revision"]
        for fn in (lambda: d.call("POST", split.format("0"), {"at": "7"}),
                   lambda: d.call("POST", "/v1/namespaces/rg/merge",
                                  {"partitions": ["0", "1"]}),
                   lambda: d.call("DELETE", f"/v1/namespaces/rg/partitions/{succ}")):
            got = error_of(fn)
            assert got[:2] == (409, "EBUSY") and tid in got[2], got
        assert d.call("GET", "/v1/namespaces/rg")[1]["revision"] == rev
        wait_for(lambda: task(d, "rg", body["task"]["id"])["state"] == "done", 20,
                 what="split done")
        check_cover(routed(d, "rg"))
        # strict namespaces: not yet (successors serve beside their predecessors)
        d.call("POST", "/v1/namespaces", dict(name="st", sharder="range", consistency="strict",
                                              partitions=1, **FAST))
        got = error_of(lambda: d.call("POST", "/v1/namespaces/st/partitions/0/split", {}))
        assert got[:2] == (400, "ENOTSUP") and "strict" in got[2], got
        # a namespace with more initial ranges than printable first bytes is refused
        got = error_of(lambda: d.call("POST", "/v1/namespaces",
                                      dict(name="big", sharder="range", partitions=96)))
        assert got[:2] == (400, "EINVAL"), got
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_hot_range_split():
    """The load balancer proposes (plan) and starts (rebalance) the split of a range whose load
    alone is above the band over a node's mean; moving it could not help. Without a key from
    the workers, it splits at the middle."""
    hot_range_split(None, ("", "7"), ("7", "O"))


def test_hot_range_split_at_worker_key():
    """A key the worker suggests ("split_at" in its ping reply, e.g. its own keys' median) is
    where the hot range splits; one outside the range is not used (the middle is), and a key
    for a range the worker does not hold is rejected."""
    hot_range_split('{"0": "C", "1": "C"}', ("", "C"), ("C", "O"))
    hot_range_split('{"0": "zzz"}', ("", "7"), ("7", "O"))
    hot_range_split("not-the-holder", ("", "7"), ("7", "O"))


def test_periodic_round_splits_hot_range():
    """With a balance interval, the periodic round splits a range hot by itself on its own."""
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="rg", sharder="range", replicas=1,
                                              partitions=2, balance={"interval_ms": 500},
                                              **FAST))
        load = '{"0": {"load": 10}, "1": {"load": 1}}'
        ws = [Worker(d, "rg", f"w{i}", extra=["--load-json", load]) for i in range(2)]
        tasks = wait_for(lambda: d.call("GET", "/v1/namespaces/rg/tasks")[1]["tasks"], 20,
                         what="a split started by the periodic round")
        assert tasks[0]["type"] == "split" and tasks[0]["from"] == ["0"], tasks
        wait_for(lambda: task(d, "rg", tasks[0]["id"])["state"] == "done", 15, what="done")
        check_cover(routed(d, "rg"))
        assert 'msg="balancer round"' in d.tail(100000) and "splits=1" in d.tail(100000)
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def hot_range_split(split_json, first, second):
    """split_json: every worker's split_at; "not-the-holder": {"0": "C"} from the worker that
    does not hold range 0 only (refused: the middle is used)."""
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="rg", sharder="range", replicas=1,
                                              partitions=2, balance={"interval_ms": 0}, **FAST))
        load = '{"0": {"load": 10}, "1": {"load": 1}}'  # each worker's own part is kept
        files = [os.path.join(d.tmp, f"w{i}.split") for i in range(2)]
        extra = ["--load-json", load]
        if split_json and split_json != "not-the-holder":
            extra += ["--split-json", split_json]
        ws = [Worker(d, "rg", f"w{i}", extra=extra + ["--split-file", files[i]])
              for i in range(2)]

        def spread():  # both workers alive, one range each, both loads reported
            r = settled(d, "rg", 1)
            nodes = d.call("GET", "/v1/namespaces/rg/nodes")[1]["nodes"]
            loads = [d.call("GET", f"/v1/namespaces/rg/partitions/{p}")[1].get("load")
                     for p in ("0", "1")]
            return (r and sorted(x[3][0] for x in r) == ["w0", "w1"] and all(loads) and
                    all(n["state"] == "alive" for n in nodes) and len(nodes) == 2)
        wait_for(spread, 20, what="one range per alive worker, loads reported")
        if split_json == "not-the-holder":
            holder = [x[3][0] for x in routed(d, "rg") if x[2] == "0"][0]
            other = 1 - int(holder[1:])
            with open(files[other], "w") as f:
                f.write('{"0": "C"}')
            time.sleep(0.5)  # a few pings carry it
        plan = d.call("GET", "/v1/namespaces/rg/plan?balancer=load")[1]
        assert [s["partition"] for s in plan["splits"]] == ["0"], plan
        assert "task" not in plan["splits"][0], plan
        assert d.call("GET", "/v1/namespaces/rg/tasks")[1]["tasks"] == []  # a dry run
        r = d.call("POST", "/v1/namespaces/rg/rebalance?balancer=load")[1]
        assert [s["partition"] for s in r["splits"]] == ["0"] and r["splits"][0]["task"], r
        tid = r["splits"][0]["task"]
        wait_for(lambda: task(d, "rg", tid)["state"] == "done", 15, what="hot split done")
        check_cover(routed(d, "rg"))
        assert [(x[0], x[1]) for x in routed(d, "rg")][:2] == [first, second]
        if split_json and first[1] != "7":
            assert r["splits"][0]["at"] == first[1], r
        # plain (non-load) plans carry no splits
        assert "splits" not in d.call("GET", "/v1/namespaces/rg/plan")[1]
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def crash_at(kind, step):
    """Kill -9 right after `kind:step` is persisted, restart, check, let it finish."""
    os.environ["SHARDZ_TEST_CRASH_AFTER"] = f"{kind}:{step}"
    try:
        d = Daemon(BIN).start()
    finally:
        del os.environ["SHARDZ_TEST_CRASH_AFTER"]
    ws = []
    try:
        d.call("POST", "/v1/namespaces",
               dict(name="rg", sharder="range", replicas=2, partitions=2, **FAST))
        ws = [Worker(d, "rg", f"w{i}") for i in range(3)]
        wait_for(lambda: settled(d, "rg", 2), 15, what="placement")
        try:
            if kind == "split":
                d.call("POST", "/v1/namespaces/rg/partitions/1/split", {"at": "t"})
            else:
                d.call("POST", "/v1/namespaces/rg/merge", {"partitions": ["0", "1"]})
        except (HTTPError, OSError):
            pass  # killed before the reply went out (planned, or the next step at once)
        d.proc.wait(timeout=20)
        assert d.proc.returncode == -9, (d.proc.returncode, d.tail())
        assert "test crash" in d.tail(), d.tail()
        d2 = Daemon(BIN, data=d.data)
        d2.port, d2.base = d.port, d.base
        d = d2.start()
        # at once after the restart: one task, the key space covered exactly once
        tasks = d.call("GET", "/v1/namespaces/rg/tasks")[1]["tasks"]
        assert len(tasks) == 1 and tasks[0]["type"] == kind, tasks
        check_cover(routed(d, "rg"))
        tid = tasks[0]["id"]
        wait_for(lambda: task(d, "rg", tid)["state"] == "done", 20, what=f"{kind} done")
        r = wait_for(lambda: settled(d, "rg", 2), 20, what="settled after the restart")
        check_cover(r)
        want = [("", "O"), ("O", "t"), ("t", None)] if kind == "split" else [("", None)]
        assert [(x[0], x[1]) for x in r] == want, r
        for x in r:  # the workers were told the bounds of what they serve
            assert bounds_seen(ws, x[2]) == {(x[0], x[1])}, (x, bounds_seen(ws, x[2]))
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_crash_split_each_step():
    for step in ("planned", "split", "moved", "done"):
        crash_at("split", step)


def test_crash_merge_each_step():
    for step in ("planned", "merged", "moved", "done"):
        crash_at("merge", step)


if __name__ == "__main__":
    run([test_split_and_merge, test_bad_input, test_hot_range_split, test_hot_range_split_at_worker_key,
         test_periodic_round_splits_hot_range, test_crash_split_each_step,
         test_crash_merge_each_step])
