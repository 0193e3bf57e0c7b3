"""The daemon's lanes, with real processes: the health lane keeps pinging (and keeps every
strict lease) while the loop is held inside a store write for several lease lengths, and
still declares dead a worker that really went silent in that time; and no assignment push
leaves before the batch it depends on is durable (the store lane holds it back).
Usage: test_daemon_lanes.py SHARDZD_BINARY"""
import os
import re
import signal
import sys
import threading
import time

from harness import Daemon, Worker, read_events, run, settled, wait_for

BIN = sys.argv[1]
LEASE_MS = 1000  # the default for ping_interval_ms 200 and dead_after_ms 800


def pings_after(path, t0):
    """Lease-granting pings a worker received after t0 (its --pings file)."""
    try:
        with open(path) as f:
            return sum(1 for line in f if float(line.split()[0]) > t0 and line.split()[1] == "1")
    except FileNotFoundError:
        return 0


def log_has(d, pattern):
    with open(d.log, errors="replace") as f:
        return re.search(pattern, f.read()) is not None


def test_health_lane_pings_through_a_held_store():
    d = Daemon(BIN)
    hold = os.path.join(d.tmp, "hold")
    d.env["SHARDZ_TEST_STORE_HOLD"] = hold
    d.start()
    workers = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "lanes", "sharder": "replica", "replicas": 2,
                                          "consistency": "strict", "partitions": 6})
        pings = {}
        for name in ("w1", "w2", "w3"):
            pings[name] = os.path.join(d.tmp, f"{name}.pings")
            workers.append(Worker(d, "lanes", name, extra=["--pings", pings[name]]))
        wait_for(lambda: settled(d, "lanes", 6, 2, nodes=3), timeout=30, what="placement")
        w1, w2, w3 = workers
        for w in (w1, w2, w3):
            assert w.served(), f"{w.node} serves nothing"

        # Hold the store: the next write blocks the loop until the file goes.
        open(hold, "w").close()
        reply = {}

        def add():
            reply["r"] = d.call("POST", "/v1/namespaces/lanes/partitions", {"ids": ["x1"]},
                                timeout=120)
        t = threading.Thread(target=add)
        t.start()
        wait_for(lambda: log_has(d, r'msg="test hold: store write held"'), timeout=10,
                 what="the store write to be held")
        held_at = time.time()
        # The control: a worker that really goes silent during the hold is declared dead by
        # the health lane (which does not need the loop to do so).
        w3.proc.send_signal(signal.SIGSTOP)
        wait_for(lambda: log_has(d, r'msg="node dead" ns=lanes node=w3 .*lane=health'),
                 timeout=15, what="the lane to declare the stopped worker dead")
        # The others keep getting lease-granting pings, for three lease lengths: with pings on
        # the loop they would stop here, and their leases would lapse.
        need = 3 * LEASE_MS // 200
        wait_for(lambda: pings_after(pings["w1"], held_at) >= need and
                 pings_after(pings["w2"], held_at) >= need, timeout=30,
                 what=f"{need} lease-granting pings to w1 and w2 while the store is held")
        assert not log_has(d, r'msg="test hold: store write released"'), "the hold ended early"
        os.remove(hold)
        t.join(timeout=60)
        assert reply.get("r", (0,))[0] in (200, 201), f"the held write was not answered: {reply}"

        # Nobody lost a lease: w1 and w2 never deleted anything for a lapsed lease (deletes
        # of an assignment are moves: w3's replicas are re-placed once it is dead); neither
        # was ever suspect or dead, while the stopped w3 was (the same check would have seen
        # w1 or w2).
        for w in (w1, w2):
            lapsed = [e for e in read_events(w.events)
                      if e["op"] == "delete" and e.get("cause") == "lease"]
            assert not lapsed, f"{w.node}'s lease lapsed: {lapsed}"
        def states():
            evs = d.call("GET", "/v1/namespaces/lanes/events?since=0&limit=10000")[1]["events"]
            return [(e["node"], e["to"]) for e in evs if e["type"] == "node-state"]
        wait_for(lambda: ("w3", "dead") in states(), timeout=10, what="w3's death applied")
        bad = [s for s in states() if s[0] in ("w1", "w2") and s[1] in ("suspect", "dead")]
        assert not bad, f"a pinged worker was judged {bad}"
        # ...and w3, let go, finds its lease lapsed: the same check sees a lapse when there is one
        w3.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: any(e["op"] == "delete" and e.get("cause") == "lease"
                             for e in read_events(w3.events)), timeout=10,
                 what="w3 to find its lease lapsed")
    finally:
        if os.path.exists(hold):
            os.remove(hold)
        for w in workers:
            w.proc.send_signal(signal.SIGCONT)
            w.kill9()
        d.stop()


def test_no_push_before_its_batch_is_durable():
    d = Daemon(BIN)
    hold = os.path.join(d.tmp, "hold")
    d.env["SHARDZ_TEST_STORE_HOLD"] = hold
    d.start()
    workers = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "dur", "sharder": "replica", "replicas": 1,
                                          "partitions": 6})
        w1_pings = os.path.join(d.tmp, "w1.pings")
        w1 = Worker(d, "dur", "w1", extra=["--pings", w1_pings])
        w2 = Worker(d, "dur", "w2")
        workers = [w1, w2]
        wait_for(lambda: settled(d, "dur", 6, 1, nodes=2), timeout=30, what="placement")
        before = len(read_events(w1.events))
        theirs = set(w2.served())
        assert theirs, "w2 serves nothing"
        # Hold the store, then kill w2: the health lane declares it dead, the loop re-places
        # its partitions on w1 and queues that step on the store lane, where it is held.
        open(hold, "w").close()
        w2.kill9()
        wait_for(lambda: log_has(d, r'msg="move" ns=dur .*from=w2 to=w1 reason=node-dead'),
                 timeout=15, what="the loop to re-place w2's partitions")
        wait_for(lambda: log_has(d, r'msg="test hold: store write held"'), timeout=10,
                 what="that step's batch to be held")
        # The loop is free (the write is on the store lane) and keeps working: w1 keeps being
        # pinged. Meanwhile it must not be told to serve what is not on disk yet.
        t0 = time.time()
        wait_for(lambda: pings_after(w1_pings, t0) + _plain_pings(w1_pings, t0) >= 10,
                 timeout=30, what="ten more pings to w1 while the batch is held")
        _, st = d.call("GET", "/v1/namespaces/dur")  # the API answers meanwhile
        assert st["name"] == "dur"
        early = [e for e in read_events(w1.events)[before:] if e["op"] == "serve"]
        assert not early, f"w1 was told to serve before the batch was durable: {early}"
        released = time.time()
        os.remove(hold)
        # ...and once it is durable, the push leaves (the same check sees it now)
        wait_for(lambda: theirs <= set(w1.served()), timeout=15,
                 what="w1 to serve w2's partitions once the batch is durable")
        new = [e for e in read_events(w1.events)[before:] if e["op"] == "serve"]
        assert new and all(e["t"] >= released for e in new), new
    finally:
        if os.path.exists(hold):
            os.remove(hold)
        for w in workers:
            w.kill9()
        d.stop()


def _plain_pings(path, t0):
    """Pings without a lease (available mode) a worker received after t0."""
    try:
        with open(path) as f:
            return sum(1 for line in f if float(line.split()[0]) > t0 and line.split()[1] == "0")
    except FileNotFoundError:
        return 0


def node_state(d, ns, node):
    nodes = d.call("GET", f"/v1/namespaces/{ns}/nodes")[1]["nodes"]
    return next((n["state"] for n in nodes if n["id"] == node), None)


def test_late_reply_does_not_revive():
    """A worker whose pings fail while it still serves an assignment: the health lane declares
    it dead, then the assignment's reply arrives. The reply does not make it alive (the lane
    alone revives a dead node, by a ping reply): before, the loop counted it alive while the
    lane, still holding its dead verdict, never declared it dead again, and its replicas stayed
    routed to it (test_strict_late_messages_do_not_renew hung so under load). Then the positive
    control: its pings answered again, it is alive."""
    d = Daemon(BIN).start()
    fail = os.path.join(d.tmp, "fail-pings")
    ws = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "kv", "partitions": 2,
                                          "ping_interval_ms": 100, "dead_after_ms": 500})
        ws.append(Worker(d, "kv", "w0"))
        wait_for(lambda: settled(d, "kv", 2, 1, nodes=1), timeout=30, what="placement on w0")
        # w1's serve hook takes 3 s: the assignment of its share (on joining) is answered late
        ws.append(Worker(d, "kv", "w1", extra=["--fail-pings", fail, "--serve-delay-ms", "3000"]))
        wait_for(lambda: node_state(d, "kv", "w1") == "alive", timeout=10, what="w1 alive")
        open(fail, "w").close()  # from now on its pings fail
        wait_for(lambda: node_state(d, "kv", "w1") == "dead", timeout=10, what="w1 dead")
        wait_for(lambda: log_has(d, r'msg="assignment answered by a dead node" ns=kv node=w1'),
                 timeout=20, what="the late reply")
        assert node_state(d, "kv", "w1") == "dead", "a late reply revived a node whose pings fail"
        assert read_events(ws[1].events), "w1 served nothing: the reply was not late"
        os.unlink(fail)
        wait_for(lambda: node_state(d, "kv", "w1") == "alive", timeout=10,
                 what="w1 alive again once its pings are answered")
    finally:
        for w in ws:
            w.kill9()
        d.stop()


if __name__ == "__main__":
    run([test_health_lane_pings_through_a_held_store, test_no_push_before_its_batch_is_durable,
         test_late_reply_does_not_revive])
