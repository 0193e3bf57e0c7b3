"""High availability on etcd with real processes: real etcd members (Debian's etcd-server) on
loopback ports of their own, several shardzd on them, real workers. One leader is elected and
every coordinator agrees on it; followers answer reads from their cache and forward writes;
kill -9 of the leader: a new one acts within the lease TTL (+ slack), the workers keep
serving and the partitions' move history is the same; SIGSTOP of the leader past its TTL: it
is replaced, and after SIGCONT it steps down
without disturbing anyone; one etcd member killed in a 3-member cluster: the coordinators go
on; etcd lost and back: no leader while it is gone, reads marked stale, nothing acknowledged
lost, a leader again by itself; corrupt records skipped; etcd unreachable at start: a clear
error naming the endpoint and a non-zero exit.
Usage: test_ha.py SHARDZD_BINARY"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from harness import (Daemon, Etcd, HTTPError, Worker, free_port, read_events, routing, run,
                     settled, wait_for)
from ownership import check

BIN = sys.argv[1]
CTL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(BIN))), "cli", "shardzctl")
TTL = 2000
FAST = {"ping_interval_ms": 100, "dead_after_ms": 600}


def coordinators(etcd, n):
    ds = [Daemon(BIN, extra=["--store", etcd.url(), "--id", f"c{i}", "--lease-ttl", str(TTL)])
          for i in range(n)]
    for d in ds:
        d.start()
    return ds


def status(d):
    return d.call("GET", "/v1/status", timeout=5)[1]


def alive(ds):
    return [d for d in ds if d.proc.poll() is None]


def the_leader(ds):
    """The one coordinator acting as leader, when every live one agrees on it; else None."""
    try:
        sts = [(d, status(d)) for d in alive(ds)]
    except (OSError, HTTPError):
        return None
    acting = [d for d, s in sts if s["acting"]]
    ids = {(s.get("leader") or {}).get("id") for _, s in sts}
    if len(acting) != 1 or len(ids) != 1:
        return None
    me = dict(sts)[acting[0]]
    return acting[0] if me["leader"]["id"] == me["id"] else None


def stop_all(ds, workers=(), etcd=None):
    # coordinators first: a last worker's graceful leave would wait for a hand-over
    for d in ds:
        if d.proc and d.proc.poll() is None:
            d.proc.send_signal(signal.SIGCONT)
            d.stop()
    for w in workers:
        w.stop()
    if etcd:
        etcd.stop()


def served_everywhere(leader, ns, nparts):
    r = routing(leader, ns)
    return len(r) == nparts and all(len(v) == 1 for v in r.values())


def agreed(d, ns, nparts, workers):
    """Settled with every worker alive (one replica each partition), spread evenly, and the
    workers' own logs agree with the routing."""
    r = settled(d, ns, nparts, 1, nodes=len(workers))
    if not r:
        return False
    # spread evenly: the rebalance after the last worker's arrival has run
    counts = [sum(1 for v in r.values() if v == [w.node]) for w in workers]
    return max(counts) - min(counts) <= 1 and all(
        set(w.served()) == {p for p, v in r.items() if v == [w.node]} for w in workers)


def replicas_view(d, ns="kv"):
    """partition -> sorted (node, state, generation) of its replicas, from d's /state (None
    while d does not know the namespace yet)."""
    try:
        st = d.call("GET", f"/v1/namespaces/{ns}/state")[1]
    except HTTPError:
        return None
    return {p["id"]: sorted((r["node"], r["state"], r["generation"]) for r in p["replicas"])
            for p in st["partitions"]}


def cluster_with_workers(ds, nparts, nworkers):
    """The leader of ds, a namespace kv of nparts partitions, and nworkers workers given every
    coordinator, once the placement has settled: (leader, workers)."""
    leader = wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 5, what="one leader")
    leader.call("POST", "/v1/namespaces", dict(name="kv", partitions=nparts, **FAST))
    addrs = ",".join(f"127.0.0.1:{d.port}" for d in ds)
    ws = [Worker(leader, "kv", f"w{i}", coordinators=addrs) for i in range(nworkers)]
    try:
        wait_for(lambda: agreed(leader, "kv", nparts, ws), timeout=20,
                 what="placement settled")
    except Exception:
        for w in ws:
            w.kill9()
        raise
    return leader, ws


def partitions_of(d, ns):
    """How many partitions coordinator d shows for namespace ns (-1: it does not know it)."""
    try:
        return d.call("GET", f"/v1/namespaces/{ns}")[1]["partitions"]
    except HTTPError:
        return -1


def deletes_after(workers, t):
    return [e for w in workers for e in read_events(w.events) if e["op"] == "delete" and e["t"] > t]


def test_unreachable_at_start():
    port = free_port()
    d = Daemon(BIN, extra=["--store", f"etcd://127.0.0.1:{port}"])
    d.start(wait=False)
    rc = d.proc.wait(timeout=30)
    assert rc != 0, rc
    assert f"127.0.0.1:{port}" in d.tail(), d.tail()
    bad = Daemon(BIN, extra=["--store", "etcd:/nope"])
    bad.start(wait=False)
    assert bad.proc.wait(timeout=10) == 2
    assert "--store wants" in bad.tail(), bad.tail()


def test_election_status_and_forwarding():
    etcd = Etcd().start()
    ds = coordinators(etcd, 3)
    try:
        leader = wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 5, what="one leader")
        followers = [d for d in ds if d is not leader]
        for d in ds:
            s = status(d)
            assert s["store"] == "etcd" and s["shared_store"], s
            assert s["role"] == ("leader" if d is leader else "follower"), s
            assert s["leader"]["address"] == f"127.0.0.1:{leader.port}", s
        wait_for(lambda: len(status(ds[0])["coordinators"]) == 3, what="three coordinators")
        roles = sorted(c["role"] for c in status(ds[0])["coordinators"])
        assert roles == ["follower", "follower", "leader"], roles
        # a write sent to a follower is forwarded to the leader and acknowledged
        code, body = followers[0].call("POST", "/v1/namespaces",
                                       dict(name="kv", partitions=6, **FAST))
        assert code == 201 and body["partitions"] == 6, body
        # bad input through a follower: the leader's 4xx, nothing changed
        try:
            followers[1].call("POST", "/v1/namespaces", dict(name="kv", partitions=2))
            raise AssertionError("a duplicate namespace was accepted")
        except HTTPError as e:
            assert e.status == 409 and e.body["code"] == "EEXIST", e.body
        try:
            followers[1].call("POST", "/v1/namespaces", dict(name="x", replicas=-1))
            raise AssertionError("a bad namespace was accepted")
        except HTTPError as e:
            assert e.status == 400 and "replicas" in e.body["message"], e.body
        # every follower's cache catches up (the watch-fed refresh)
        for f in followers:
            wait_for(lambda: partitions_of(f, "kv") == 6,
                     timeout=5, what="the follower's cache")
            req = urllib.request.Request(f.base + "/v1/namespaces/kv/state")
            with urllib.request.urlopen(req, timeout=5) as r:
                assert r.headers.get("X-Shardz-Role") == "follower"
        names = [n["name"] for n in followers[1].call("GET", "/v1/namespaces")[1]["namespaces"]]
        assert names == ["kv"], names
        # the CLI shows who leads and every coordinator's role
        out = subprocess.run([CTL, "--endpoint", f"127.0.0.1:{followers[0].port}", "status"],
                             capture_output=True, text=True, timeout=10)
        assert out.returncode == 0, out.stderr
        assert "follower" in out.stdout and f"127.0.0.1:{leader.port}" in out.stdout, out.stdout
        assert out.stdout.count("(follower)") == 2 and "(leader)" in out.stdout, out.stdout
    finally:
        stop_all(ds, etcd=etcd)


def test_kill_leader_failover():
    etcd = Etcd().start()
    ds = coordinators(etcd, 3)
    ws = []
    try:
        leader, ws = cluster_with_workers(ds, 9, 3)
        # the followers' caches follow a move record by record (applied in place)
        follower = [d for d in ds if d is not leader][0]
        # caught up in revisions too (a reload reads newer records than its revision says,
        # and the next refresh would read those events again, in a reload of their own)
        wait_for(lambda: replicas_view(follower) == replicas_view(leader) and
                 status(follower)["cache_revision"] >= status(leader)["store_revision"],
                 timeout=5, what="the follower's cache caught up")
        applied = status(follower)["cache_applied"]
        holder = routing(leader, "kv")["0"][0]
        target = next(w.node for w in ws if w.node != holder)
        leader.call("POST", "/v1/namespaces/kv/partitions/0/move", {"slot": 0, "to": target})
        wait_for(lambda: (settled(leader, "kv", 9, 1, nodes=3) or {}).get("0") == [target],
                 timeout=10, what="the operator move done")
        leader.call("POST", "/v1/namespaces/kv/rebalance")  # back to 3 each
        wait_for(lambda: agreed(leader, "kv", 9, ws) and
                 sorted(len(w.served()) for w in ws) == [3, 3, 3], timeout=15,
                 what="balanced again")
        wait_for(lambda: replicas_view(follower) == replicas_view(leader), timeout=10,
                 what="the follower's cache equal to the leader's state")
        st = status(follower)
        assert st["cache_applied"] > applied, st  # a reload instead would not count
        # the move history rides in the assignment records: the follower's cache has it too
        hist = leader.call("GET", "/v1/namespaces/kv/partitions/0/history")[1]["history"]
        assert any(e["reason"] == "operator" and e["to"] == target for e in hist), hist
        wait_for(lambda: follower.call("GET", "/v1/namespaces/kv/partitions/0/history")[1]
                 ["history"] == hist, timeout=10, what="the follower's history")
        before = {w.node: w.served() for w in ws}
        t0 = time.time()
        leader.kill9()
        new = wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 5, what="a new leader")
        took = time.time() - t0
        print(f"failover: new leader acting {took * 1000:.0f} ms after kill -9 (TTL {TTL} ms)")
        assert took < TTL / 1000 + 3, took
        assert new is not leader
        # the new leader pings the workers: all alive, nothing moved, nobody stopped serving
        wait_for(lambda: all(n["state"] == "alive"
                             for n in new.call("GET", "/v1/namespaces/kv/nodes")[1]["nodes"]),
                 timeout=5, what="workers alive under the new leader")
        assert served_everywhere(new, "kv", 9)
        after = {w.node: w.served() for w in ws}
        assert after == before, (before, after)
        assert not deletes_after(ws, t0), deletes_after(ws, t0)
        # why partition 0 moved survives the failover
        assert new.call("GET", "/v1/namespaces/kv/partitions/0/history")[1]["history"] == hist
        # it decides: new partitions (sent to a follower) are placed and served
        follower = [d for d in alive(ds) if d is not new][0]
        follower.call("POST", "/v1/namespaces/kv/partitions", {"ids": ["n1", "n2", "n3"]})
        wait_for(lambda: sum(len(w.served()) for w in ws) == 12, timeout=10, what="new ones")
        # and it detects a dead worker
        ws[0].kill9()
        wait_for(lambda: served_everywhere(new, "kv", 12) and
                 all("w0" not in v for v in routing(new, "kv").values()), timeout=10,
                 what="w0's partitions moved")
    finally:
        stop_all(ds, ws, etcd)


def pings_since(path, t):
    """The times of the pings a worker's --pings file noted after t."""
    try:
        with open(path) as f:
            return [float(ln.split()[0]) for ln in f if ln.strip() and float(ln.split()[0]) > t]
    except OSError:
        return []


def test_held_loop_keeps_the_lease():
    """The lease keeper renews the leader's lease on its own thread: a loop held for three TTLs
    (SHARDZ_TEST_LOOP_HOLD, as placement or a large load would hold it) neither loses the
    leadership nor stops the health lane's pings. Then, the positive control: the whole process
    stopped as long (SIGSTOP) does step down, so the test would see a step-down."""
    etcd = Etcd().start()
    hold = os.path.join(tempfile.mkdtemp(prefix="shardz-hold-"), "hold")
    d = Daemon(BIN, extra=["--store", etcd.url(), "--id", "c0", "--lease-ttl", str(TTL)],
               env={"SHARDZ_TEST_LOOP_HOLD": hold}).start()
    w = None
    try:
        wait_for(lambda: status(d)["acting"], timeout=TTL / 1000 + 5, what="the leader")
        d.call("POST", "/v1/namespaces", dict(name="kv", partitions=4, **FAST))
        pings = os.path.join(d.tmp, "w0.pings")
        w = Worker(d, "kv", "w0", extra=["--pings", pings])
        wait_for(lambda: served_everywhere(d, "kv", 4), timeout=20, what="placement")
        before = status(d)
        open(hold, "w").close()
        wait_for(lambda: "test hold: loop held" in d.tail(20000), timeout=10, what="the hold")
        t0 = time.time()
        # pings go on while the loop is held: for three TTLs (well past the lease's margin)
        wait_for(lambda: (lambda ts: ts and ts[-1] - t0 > 3 * TTL / 1000)(pings_since(pings, t0)),
                 timeout=3 * TTL / 1000 + 10, what="pings during the hold")
        ts = pings_since(pings, t0)
        gaps = [b - a for a, b in zip([t0] + ts, ts)]
        assert max(gaps) < TTL / 1000, gaps  # never stopped for the lease's length
        os.unlink(hold)
        wait_for(lambda: "test hold: loop released" in d.tail(20000), timeout=10,
                 what="the release")
        after = status(d)
        assert after["acting"] and after["role"] == "leader", after
        assert after["leader_changes"] == before["leader_changes"], (before, after)
        assert after["lease_renewals"] > before["lease_renewals"], (before, after)
        assert "stepping down" not in d.tail(200000), d.tail()
        nodes = d.call("GET", "/v1/namespaces/kv/nodes")[1]["nodes"]
        assert [n["state"] for n in nodes] == ["alive"], nodes
        # the positive control: a process stopped past its TTL steps down when it resumes
        d.proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: etcd.get("/shardz/leader") is None, timeout=2 * TTL / 1000 + 10,
                 what="the stopped leader's key to expire")
        d.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: "stepping down" in d.tail(200000), timeout=10, what="the step-down")
    finally:
        if os.path.exists(hold):
            os.unlink(hold)  # a failed test must not leave the loop held
        if w:
            w.kill9()
        stop_all([d], [], etcd)


def test_sigstop_leader_steps_down():
    etcd = Etcd().start()
    ds = coordinators(etcd, 2)
    ws = []
    try:
        old, ws = cluster_with_workers(ds, 6, 2)
        t0 = time.time()
        old.proc.send_signal(signal.SIGSTOP)
        other = [d for d in ds if d is not old][0]
        wait_for(lambda: status(other)["acting"], timeout=TTL / 1000 + 5, what="a new leader")
        other.call("POST", "/v1/namespaces/kv/partitions", {"ids": ["late"]})
        wait_for(lambda: sum(len(w.served()) for w in ws) == 7, timeout=10, what="the new one")
        time.sleep(TTL / 1000)  # well past the stopped leader's TTL
        old.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: status(old)["role"] == "follower" and not status(old)["acting"],
                 timeout=10, what="the old leader stepping down")
        assert "stepping down" in old.tail(20000), old.tail()
        assert status(other)["acting"]
        # it follows now: its cache shows the new leader's change, its writes are forwarded
        wait_for(lambda: partitions_of(old, "kv") == 7, timeout=5,
                 what="the old leader's cache")
        old.call("POST", "/v1/namespaces/kv/partitions", {"ids": ["later"]})
        wait_for(lambda: sum(len(w.served()) for w in ws) == 8, timeout=10, what="a forwarded one")
        # the workers were never told to drop anything
        assert not deletes_after(ws, t0), deletes_after(ws, t0)
    finally:
        stop_all(ds, ws, etcd)


def test_etcd_member_killed():
    etcd = Etcd(members=3).start()
    ds = coordinators(etcd, 2)
    try:
        wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 5, what="one leader")
        ds[0].call("POST", "/v1/namespaces", dict(name="a", partitions=4))
        etcd.kill(0)  # the member every coordinator talks to first
        t0 = time.time()
        wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 8, what="a leader after the loss")
        ds[1].call("POST", "/v1/namespaces", dict(name="b", partitions=4))
        for d in ds:
            wait_for(lambda: {n["name"] for n in d.call("GET", "/v1/namespaces")[1]["namespaces"]}
                     == {"a", "b"}, timeout=15, what="both namespaces everywhere")
        # (when the killed member led etcd's raft, requests in flight wait for etcd's own
        # election and its request timeout: several seconds)
        print(f"member killed: coordinators went on ({time.time() - t0:.1f} s to the write)")
    finally:
        stop_all(ds, etcd=etcd)


def test_etcd_lost_and_back():
    etcd = Etcd().start()
    ds = coordinators(etcd, 2)
    try:
        leader = wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 5, what="one leader")
        leader.call("POST", "/v1/namespaces", dict(name="kv", partitions=5))
        wait_for(lambda: all(partitions_of(d, "kv") == 5 for d in ds), timeout=5, what="caches")
        etcd.kill(0)
        # nobody leads once the lease can no longer be trusted
        wait_for(lambda: not any(status(d)["acting"] for d in ds), timeout=TTL / 1000 + 2,
                 what="the leader stepping down")
        for d in ds:
            req = urllib.request.Request(d.base + "/v1/namespaces/kv")
            with urllib.request.urlopen(req, timeout=5) as r:  # reads still answer...
                assert r.headers.get("X-Shardz-Stale") == "true", dict(r.headers)  # ...marked
            try:
                d.call("POST", "/v1/namespaces", dict(name="lost", partitions=1))
                raise AssertionError("a write was accepted without etcd")
            except HTTPError as e:
                assert e.status == 503 and e.body["code"] == "ENOTLEADER", e.body
        etcd.start_member(0)
        etcd.wait_member(0)
        leader = wait_for(lambda: the_leader(ds), timeout=3 * TTL / 1000 + 8,
                          what="a leader again")
        got = leader.call("GET", "/v1/namespaces/kv")[1]
        assert got["partitions"] == 5, got  # nothing acknowledged was lost
        names = [n["name"] for n in leader.call("GET", "/v1/namespaces")[1]["namespaces"]]
        assert names == ["kv"], names
        leader.call("POST", "/v1/namespaces", dict(name="after", partitions=1))
    finally:
        stop_all(ds, etcd=etcd)


def test_corrupt_records_skipped():
    etcd = Etcd().start()
    etcd.put("/shardz/ns/kv/config", "{not json")
    etcd.put("/shardz/ns/ok/config", '{"name":"ok","partitions":0}')
    etcd.put("/shardz/something/foreign", "x")
    ds = coordinators(etcd, 2)
    try:
        leader = wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 5, what="one leader")
        follower = [d for d in ds if d is not leader][0]
        leader.call("POST", "/v1/namespaces", dict(name="good", partitions=2))
        etcd.put("/shardz/ns/good/node/bad", "garbage")
        etcd.put("/shardz/ns/good/assign/p9", "[1,2")
        wait_for(lambda: "ns/good/node/bad" in follower.tail(50000), timeout=5,
                 what="the corrupt node record logged by key")
        for d in ds:
            assert status(d)  # still running and answering
            names = {n["name"] for n in d.call("GET", "/v1/namespaces")[1]["namespaces"]}
            assert "good" in names and "kv" not in names, names
        assert "ns/kv/config" in leader.tail(50000) + follower.tail(50000)
    finally:
        stop_all(ds, etcd=etcd)


def test_split_resumed_by_new_leader():
    """A range split whose leader dies right after persisting its "split" step (the test crash
    hook) is finished by the next leader from its cache: one task, done, the key space covered
    once, the workers serving the new ranges."""
    from test_daemon_range import check_cover, routed, settled as range_settled, task
    etcd = Etcd().start()
    os.environ["SHARDZ_TEST_CRASH_AFTER"] = "split:split"
    try:
        first = coordinators(etcd, 1)[0]  # only this one crashes
    finally:
        del os.environ["SHARDZ_TEST_CRASH_AFTER"]
    ds = [first]
    ws = []
    try:
        wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 5, what="the first leader")
        other = Daemon(BIN, extra=["--store", etcd.url(), "--id", "c1", "--lease-ttl", str(TTL)])
        ds.append(other.start())
        first.call("POST", "/v1/namespaces",
                   dict(name="rg", sharder="range", replicas=2, partitions=2, **FAST))
        addrs = ",".join(f"127.0.0.1:{d.port}" for d in ds)
        ws = [Worker(first, "rg", f"w{i}", coordinators=addrs) for i in range(3)]
        wait_for(lambda: range_settled(first, "rg", 2), 15, what="placement")
        try:
            first.call("POST", "/v1/namespaces/rg/partitions/1/split", {"at": "t"})
        except (HTTPError, OSError):
            pass  # killed before the reply went out
        first.proc.wait(timeout=20)
        assert first.proc.returncode == -9 and "test crash" in first.tail(), first.tail()
        wait_for(lambda: status(other)["acting"], timeout=TTL / 1000 + 5, what="a new leader")
        tasks = other.call("GET", "/v1/namespaces/rg/tasks")[1]["tasks"]
        assert len(tasks) == 1 and tasks[0]["type"] == "split", tasks
        check_cover(routed(other, "rg"))
        tid = tasks[0]["id"]
        wait_for(lambda: task(other, "rg", tid)["state"] == "done", 20, what="split done")
        r = wait_for(lambda: range_settled(other, "rg", 2), 20, what="settled")
        check_cover(r)
        assert [(x[0], x[1]) for x in r] == [("", "O"), ("O", "t"), ("t", None)], r
    finally:
        stop_all([other for other in ds if other is not first], ws, etcd)


def test_deposed_leader_fenced_by_term():
    """Case 6 (PROTOCOL.md 4.2): every ping and assignment carries the leader's term (its
    leader key's create revision), and a worker refuses a message of an older term than one it
    has seen. A strict namespace on two coordinators; the leader is SIGSTOPped, the other takes
    over and the workers hear its higher term; then the old one is continued and steps down.
    No message of the old term is taken after the new term was seen, and one of the old
    leader's own messages delivered now (a late TCP delivery: replayed from the worker's log)
    is refused with the new term; a worker without terms (--no-term, the old behaviour) takes
    it, which is the hole this closes."""
    etcd = Etcd().start()
    ds = coordinators(etcd, 2)
    ws = []
    try:
        old = wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 5, what="one leader")
        old.call("POST", "/v1/namespaces", dict(name="kv", partitions=4, consistency="strict",
                                                lease_ms=1000, **FAST))
        addrs = ",".join(f"127.0.0.1:{d.port}" for d in ds)
        logs = [os.path.join(old.tmp, f"w{i}.msgs") for i in range(2)]
        ws = [Worker(old, "kv", f"w{i}", coordinators=addrs, extra=["--msg-log", logs[i]])
              for i in range(2)]
        ws.append(Worker(old, "kv", "w9", coordinators=addrs,
                         extra=["--msg-log", os.path.join(old.tmp, "w9.msgs"), "--no-term"]))
        wait_for(lambda: settled(old, "kv", 4, 1, nodes=3), timeout=20, what="placement")
        old_term = read_events(logs[0])[-1]["term"]
        assert isinstance(old_term, int) and old_term > 0, read_events(logs[0])[-1]
        old.proc.send_signal(signal.SIGSTOP)
        other = [d for d in ds if d is not old][0]
        wait_for(lambda: status(other)["acting"], timeout=TTL / 1000 + 5, what="a new leader")

        def new_term_seen(log):
            return [m for m in read_events(log) if (m["term"] or 0) > old_term and not m["refused"]]
        for log in logs:
            wait_for(lambda: new_term_seen(log), timeout=10, what="the new term at a worker")
        new_term = new_term_seen(logs[0])[0]["term"]
        old.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: status(old)["role"] == "follower" and not status(old)["acting"],
                 timeout=10, what="the old leader stepping down")
        # after a worker saw the new term, nothing of the old one was taken
        for log in logs:
            seen = 0
            for m in read_events(log):
                if m["term"] is not None and m["term"] < seen:
                    assert m["refused"], f"a deposed leader's message was taken: {m}"
                if not m["refused"] and m["term"] is not None:
                    seen = max(seen, m["term"])
        # the old leader's last ping, delivered now: refused by a worker that knows terms,
        # taken by one that does not (the positive control: it is a message a worker acts on)
        last = [m for m in read_events(logs[0]) if m["term"] == old_term and
                m["path"] == "/shardz/v1/ping" and m["body"].get("lease_ms")][-1]
        try:
            urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{ws[0].port}/shardz/v1/ping", method="POST",
                data=json.dumps(last["body"]).encode()), timeout=5)
            raise AssertionError("a deposed leader's ping was taken")
        except urllib.error.HTTPError as e:
            body = json.loads(e.read())
            assert e.code == 409 and body["code"] == "ESTALE" and body["term"] == new_term, body
        legacy = dict(last["body"], node="w9")
        with urllib.request.urlopen(urllib.request.Request(
                f"http://127.0.0.1:{ws[2].port}/shardz/v1/ping", method="POST",
                data=json.dumps(legacy).encode()), timeout=5) as r:
            assert r.status == 200
    finally:
        stop_all(ds, ws, etcd)


def test_strict_keeps_serving_through_failover():
    """Case 5: strict + HA keeps serving through a leader failover at default settings. A
    strict namespace created without lease_ms on two coordinators gets a lease that spans a
    failover (3/2 of the leader TTL + two pings); the leader is killed; the other takes over
    before any worker's lease runs out, so no worker drops anything for a lapse, and the new
    leader places a new partition (it acts). The ownership checker finds no two owners.
    With the lease default of a single coordinator (dead_after + ping = 700 ms here) every
    worker dropped everything at the failover."""
    etcd = Etcd().start()
    ds = coordinators(etcd, 2)
    ws = []
    try:
        old = wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 5, what="one leader")
        old.call("POST", "/v1/namespaces", dict(name="kv", partitions=6, consistency="strict",
                                                **FAST))
        lease = old.call("GET", "/v1/namespaces/kv")[1]["lease_ms"]
        assert lease == TTL * 3 // 2 + 2 * FAST["ping_interval_ms"], lease
        addrs = ",".join(f"127.0.0.1:{d.port}" for d in ds)
        ws = [Worker(old, "kv", f"w{i}", coordinators=addrs, extra=["--log-leases"])
              for i in range(2)]
        wait_for(lambda: settled(old, "kv", 6, 1, nodes=2), timeout=20, what="placement")
        t0 = time.time()
        old.kill9()
        other = [d for d in ds if d is not old][0]
        wait_for(lambda: status(other)["acting"], timeout=TTL / 1000 + 5, what="a new leader")
        took = time.time() - t0
        other.call("POST", "/v1/namespaces/kv/partitions", {"ids": ["late"]})
        wait_for(lambda: any("late" in w.served() for w in ws), timeout=10,
                 what="the new leader's partition served")
        lapses = [e for w in ws for e in read_events(w.events)
                  if e["op"] == "delete" and e.get("cause") == "lease"]
        assert not lapses, f"workers dropped replicas at the failover ({took:.1f} s): {lapses}"
        assert all(len(w.served()) >= 3 for w in ws), [w.served() for w in ws]
        spans, bad, regress = check({w.holder: w.events for w in ws}, 1)
        assert not bad, f"two owners at once (partition, holders, s): {bad}"
        assert not regress, f"generations went backwards: {regress}"
    finally:
        stop_all(ds, ws, etcd)


def test_forward_lost_is_not_nothing_changed():
    """Issue 15: a write a follower forwarded to the leader, which took it and did not answer
    (SIGSTOPped), may have been applied: the follower answers 504 ETIMEDOUT (outcome unknown),
    not 503 ENOTLEADER, which says nothing changed and which the client libraries retry on
    another coordinator at once. The control, so the two can be told apart: a forward to a
    leader that cannot be reached at all (SIGKILLed: connection refused) is 503 ENOTLEADER."""
    etcd = Etcd().start()
    ds = coordinators(etcd, 2)
    try:
        a = wait_for(lambda: the_leader(ds), timeout=TTL / 1000 + 5, what="one leader")
        b = [d for d in ds if d is not a][0]
        a.proc.send_signal(signal.SIGSTOP)
        try:
            b.call("POST", "/v1/namespaces", dict(name="lost", partitions=1), timeout=30)
            raise AssertionError("a write to a stopped leader was acknowledged")
        except HTTPError as e:
            assert e.status == 504 and e.body["code"] == "ETIMEDOUT", (e.status, e.body)
            assert "may or may not have applied it" in e.body["message"], e.body
        a.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: the_leader(ds) is b, timeout=TTL / 1000 + 10, what="b leading")
        b.proc.kill()  # SIGKILL: its port refuses connections; a still names it leader
        b.proc.wait()
        try:
            a.call("POST", "/v1/namespaces", dict(name="refused", partitions=1), timeout=30)
            raise AssertionError("a write to a dead leader was acknowledged")
        except HTTPError as e:
            assert e.status == 503 and e.body["code"] == "ENOTLEADER", (e.status, e.body)
    finally:
        stop_all(ds, etcd=etcd)


if __name__ == "__main__":
    run([
        test_unreachable_at_start, test_election_status_and_forwarding,
        test_kill_leader_failover, test_held_loop_keeps_the_lease, test_sigstop_leader_steps_down, test_etcd_member_killed,
        test_etcd_lost_and_back, test_corrupt_records_skipped, test_split_resumed_by_new_leader,
        test_deposed_leader_fenced_by_term, test_strict_keeps_serving_through_failover,
        test_forward_lost_is_not_nothing_changed])
