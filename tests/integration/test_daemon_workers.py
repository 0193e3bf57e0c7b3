"""The worker protocol end to end with real processes: shardzd and several workers (the
Python protocol worker, a second implementation written from docs/PROTOCOL.md). Placement
reaches the workers, a worker killed with SIGKILL has its partitions served elsewhere, a
graceful leave never leaves a partition unserved, a coordinator killed mid-move resumes
after a restart, and in strict mode no two workers ever serve one replica slot at once
(checked from the workers' own serve/delete logs).
Usage: test_daemon_workers.py SHARDZD_BINARY"""
import signal
import sys
import time

from harness import Daemon, Worker, read_events, routing, run, settled, wait_for
from ownership import overlaps, ownership, owners_moved, regressions

BIN = sys.argv[1]
FAST = {"ping_interval_ms": 100, "dead_after_ms": 500}


def agree(d, ns, workers):
    """The coordinator's routing matches what the workers say they serve."""
    r = routing(d, ns)
    for w in workers:
        mine = set(w.served())
        want = {p for p, nodes in r.items() if w.node in nodes}
        if mine != want:
            return False
    return True


def no_generation_handover(workers):
    """Generations only grow: what a worker is given for a partition never goes down, and
    no worker is ever given a generation that another worker was given for the same
    partition earlier (the old owner keeps its own while the new one takes over)."""
    first = {}  # (partition, generation) -> the first worker given it
    for w in workers:
        seen = {}
        for e in read_events(w.events):
            if e["op"] != "serve":
                continue
            p, g = e["partition"], e["generation"]
            assert g >= seen.get(p, 0), f"{w.node}: generation of {p} went down"
            seen[p] = g
            first.setdefault((p, g), set()).add(w.node)
    # one generation of one partition is handed to the replicas placed in one step at most
    # (several slots may share it); it must never be handed to an old owner as well
    return first


def test_placement_reaches_workers():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=2, partitions=12, **FAST))
        ws = [Worker(d, "kv", f"w{i}") for i in range(3)]
        # all three registered and alive first: on a loaded machine two workers can settle
        # the placement before the third registers
        wait_for(lambda: sum(n["state"] == "alive" for n in
                             d.call("GET", "/v1/namespaces/kv/nodes")[1]["nodes"]) == 3, 10,
                 what="three alive workers")
        wait_for(lambda: settled(d, "kv", 12, 2), 10, what="placement")
        wait_for(lambda: agree(d, "kv", ws), 5, what="workers agreeing with routing")
        counts = [len(w.served()) for w in ws]
        assert max(counts) - min(counts) <= 1, counts
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_killed_worker_is_replaced():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=2, partitions=12, **FAST))
        ws = [Worker(d, "kv", f"w{i}") for i in range(4)]
        # every worker registered and placed on (a slow start could leave the victim out)
        before = wait_for(lambda: settled(d, "kv", 12, 2, nodes=4), 10, what="placement")
        victim = ws[1]
        lost = {p for p, nodes in before.items() if victim.node in nodes}
        assert lost
        t0 = time.time()
        victim.kill9()
        after = wait_for(lambda: (lambda r: r if all(victim.node not in v and len(v) == 2
                                                     for v in r.values()) else None)(
            routing(d, "kv")), 10, what="re-placement")
        took = time.time() - t0
        assert took < 5, f"re-placement took {took:.2f}s"
        for p in lost:
            assert victim.node not in after[p]
        st = d.call("GET", "/v1/namespaces/kv/nodes/" + victim.node)[1]
        assert st["state"] == "dead", st
        wait_for(lambda: agree(d, "kv", [w for w in ws if w is not victim]), 5, what="agreement")
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_graceful_leave_never_unserved():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=10, **FAST))
        ws = [Worker(d, "kv", f"w{i}", extra=["--serve-delay-ms", "30"]) for i in range(3)]
        wait_for(lambda: settled(d, "kv", 10, 1, nodes=3), 10, what="placement")
        leaver = ws[0]
        leaver.proc.send_signal(15)  # SIGTERM: the worker leaves gracefully
        end = time.time() + 15
        while leaver.proc.poll() is None and time.time() < end:
            r = routing(d, "kv")
            unserved = [p for p, v in r.items() if not v]
            assert not unserved, f"unserved during a drain: {unserved}"
            time.sleep(0.02)
        assert leaver.proc.returncode == 0, "the leaving worker did not exit by itself"
        assert d.call("GET", "/v1/namespaces/kv/nodes/w0")[1]["state"] == "left"
        r = wait_for(lambda: settled(d, "kv", 10, 1), 10, what="after the leave")
        assert all("w0" not in v for v in r.values())
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_coordinator_restart_mid_move():
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=2, partitions=16, **FAST))
        ws = [Worker(d, "kv", f"w{i}", extra=["--serve-delay-ms", "40"]) for i in range(3)]
        wait_for(lambda: settled(d, "kv", 16, 2, nodes=3), 15, what="placement")
        ws.append(Worker(d, "kv", "w3", extra=["--serve-delay-ms", "40"]))
        wait_for(lambda: d.call("GET", "/v1/namespaces/kv/moves")[1]["moves"], 10,
                 what="moves in flight")
        d.kill9()
        d2 = Daemon(BIN, data=d.data)
        d2.port, d2.base = d.port, d.base
        d2.start()
        d = d2
        # every node answers again (a node is only eligible once it does: under load the joiner
        # may answer last, and it gets its share with the rebalance that follows)
        def converged():
            if d.call("GET", "/v1/namespaces/kv")[1]["nodes"]["alive"] != 4:
                return None
            s = settled(d, "kv", 16, 2)
            return s if s and any("w3" in v for v in s.values()) else None
        r = wait_for(converged, 20, what="convergence after restart, the joiner included")
        assert any("w3" in v for v in r.values()), "the joiner got nothing"
        wait_for(lambda: agree(d, "kv", ws), 5, what="workers agreeing with routing")
        no_generation_handover(ws)
    finally:
        for w in ws:
            w.kill9()
        d.stop()


def test_strict_never_two_owners():
    """Strict mode: a worker paused (SIGSTOP) while it holds leases, one killed (SIGKILL), one
    joining and one leaving gracefully; the workers' own logs (serve, delete, lease grants)
    never show two owners of a partition at once, and every new owner has a higher generation
    than the one before. The paused owner is the case that needs the coordinator's lease wait:
    without it, the new owner serves while the paused one's lease still runs."""
    d = Daemon(BIN).start()
    ws = []
    ended = {}
    paused = None
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=12,
                                              consistency="strict", lease_ms=3000, **FAST))
        ws = [Worker(d, "kv", f"w{i}", extra=["--log-leases"]) for i in range(3)]
        wait_for(lambda: settled(d, "kv", 12, 1, nodes=3), 10, what="placement")
        ws.append(Worker(d, "kv", "w3", extra=["--log-leases"]))  # a join moves partitions
        wait_for(lambda: settled(d, "kv", 12, 1) and any(
            "w3" in v for v in routing(d, "kv").values()), 10, what="join")
        # a paused owner: its leases keep running while it cannot answer
        held = set(ws[1].served())
        assert held, "w1 owns nothing: the pause would test nothing"
        paused = ws[1]
        t_pause = time.time()
        paused.proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: settled(d, "kv", 12, 1) and all(
            "w1" not in v for v in routing(d, "kv").values()), 15, what="re-placement (pause)")
        # the pause outlasts its lease (3 s): a paused owner is not a dead one, and it must
        # own nothing from the end of its lease, however long after it runs again
        time.sleep(max(0.0, t_pause + 3.5 - time.time()))
        paused.proc.send_signal(signal.SIGCONT)
        paused = None
        wait_for(lambda: held <= {e["partition"] for e in read_events(ws[1].events)
                                  if e["op"] == "delete" and e["t"] > t_pause}, 10,
                 what="w1 drops what it held when paused")
        # a killed owner
        assert ws[0].served(), "w0 owns nothing: the kill would test nothing"
        ended["w0"] = time.time()
        ws[0].kill9()
        wait_for(lambda: settled(d, "kv", 12, 1) and all(
            "w0" not in v for v in routing(d, "kv").values()), 15, what="re-placement (kill)")
        ws[2].proc.send_signal(signal.SIGTERM)  # a graceful leave
        ws[2].proc.wait(timeout=20)
        wait_for(lambda: settled(d, "kv", 12, 1), 10, what="leave")
        spans = ownership({w.node: read_events(w.events) for w in ws}, ended)
        assert owners_moved(spans), f"no partition changed owner: {spans}"
        bad = overlaps(spans)
        assert not bad, f"two owners at once (partition, holders, seconds): {bad}"
        bad = regressions(spans)
        assert not bad, f"a new owner without a higher generation: {bad}"
    finally:
        if paused is not None:
            paused.proc.send_signal(signal.SIGCONT)
        for w in ws:
            w.kill9()
        d.stop()


def test_capacity_change_on_reregistration():
    """A worker that registers again with a larger capacity gets its larger share."""
    d = Daemon(BIN).start()
    ws = []
    try:
        d.call("POST", "/v1/namespaces", dict(name="kv", replicas=1, partitions=30, **FAST))
        ws = [Worker(d, "kv", f"w{i}", extra=["--capacity", "load=100"]) for i in range(3)]
        wait_for(lambda: settled(d, "kv", 30, 1, nodes=3), 10, what="placement")
        ws[0].kill9()
        ws[0] = Worker(d, "kv", "w0", extra=["--capacity", "load=400"])
        def share():
            r = settled(d, "kv", 30, 1)
            n = sum(1 for v in (r or {}).values() if "w0" in v)
            return n if n == 20 else None  # 400 / (400 + 100 + 100) of 30
        wait_for(share, 10, what="the larger share")
        cap = d.call("GET", "/v1/namespaces/kv/nodes/w0")[1]["capacity"]
        assert cap == {"load": 400.0}, cap
    finally:
        for w in ws:
            w.kill9()
        d.stop()


run([test_capacity_change_on_reregistration, test_placement_reaches_workers, test_killed_worker_is_replaced,
     test_graceful_leave_never_unserved, test_coordinator_restart_mid_move,
     test_strict_never_two_owners])
