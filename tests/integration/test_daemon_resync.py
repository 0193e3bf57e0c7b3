"""A forged assignment does not wedge a worker (issue 16, case 6). Without a secret anyone can
POST an assignment to a worker; one with revision 2^63-1 made the worker delete everything and
then ignore every later assignment as older, while the coordinator took its applied revision
and kept routing to it. Now the coordinator, seeing an applied revision it never issued, counts
the worker's replicas as not served, and sends the whole set with "resync_from", which the
worker applies. Real processes: shardzd, libshardz's shardz-kv and the Python protocol worker.
Usage: test_daemon_resync.py SHARDZD_BINARY"""
import signal
import sys
import time

from harness import Daemon, KvWorker, Worker, request, run, settled, wait_for

BIN = sys.argv[1]
FORGED = 9223372036854775807


def routed_to(d, ns, node):
    """partition -> generation the coordinator routes to `node` (serving replicas)."""
    _, st = d.call("GET", f"/v1/namespaces/{ns}/state")
    return {p["id"]: r["generation"] for p in st["partitions"] for r in p["replicas"]
            if r["node"] == node and r["state"] == "serving"}


def events(d, ns, kind):
    _, body = d.call("GET", f"/v1/namespaces/{ns}/events")
    return [e for e in body["events"] if e["type"] == kind]


def forge_and_recover(d, ns, victim, port, nparts):
    before = victim.served()
    assert before, "the victim served nothing to lose"
    status, reply = request(f"http://127.0.0.1:{port}", "POST", "/shardz/v1/assign",
                            {"namespace": ns, "node": victim.node, "revision": FORGED,
                             "replicas": []})
    # the forgery works on the worker (no secret): it deleted everything (positive control)
    assert status == 200 and reply["applied_revision"] == FORGED, reply
    wait_for(lambda: not victim.served(), 10, what="the forged assignment applied")
    # the coordinator saw an applied revision it never issued, said so, and resynchronised:
    # the worker serves again what the coordinator routes to it, at new generations
    wait_for(lambda: events(d, ns, "node-ahead"), 15, what="the coordinator noticing")
    wait_for(lambda: settled(d, ns, nparts, 1, nodes=2), 20, what="settled again")
    wait_for(lambda: victim.served() and victim.served() == routed_to(d, ns, victim.node), 20,
             what=f"{victim.node} serving what it is routed again")
    for p, g in victim.served().items():
        assert g > before.get(p, 0), (p, g, before.get(p))
    # and it is not wedged: later assignments (lower revisions than the forged one) apply
    d.call("POST", f"/v1/namespaces/{ns}/partitions", {"ids": [f"x{i}" for i in range(8)]})
    wait_for(lambda: settled(d, ns, nparts + 8, 1, nodes=2), 20, what="the new partitions placed")
    wait_for(lambda: victim.served() == routed_to(d, ns, victim.node), 20,
             what=f"{victim.node} applying a later assignment")
    assert any(p.startswith("x") for p in victim.served()), victim.served()
    _, summary = d.call("GET", f"/v1/namespaces/{ns}")
    assert summary["missing"] == 0 and summary["revision"] < FORGED


def test_forged_assignment_libshardz():
    d = Daemon(BIN).start()
    workers = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "sec", "partitions": 16})
        workers = [KvWorker(d, "sec", "w1"), KvWorker(d, "sec", "w2")]
        wait_for(lambda: settled(d, "sec", 16, 1, nodes=2), 20, what="placement")
        wait_for(lambda: workers[0].served() == routed_to(d, "sec", "w1"), 10, what="w1 serving")
        forge_and_recover(d, "sec", workers[0], workers[0].port, 16)
    finally:
        for w in workers:
            w.stop()
        d.stop()


def test_forged_assignment_protocol_worker():
    d = Daemon(BIN).start()
    workers = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "sec", "partitions": 16})
        workers = [Worker(d, "sec", "w1"), Worker(d, "sec", "w2")]
        wait_for(lambda: settled(d, "sec", 16, 1, nodes=2), 20, what="placement")
        wait_for(lambda: workers[0].served() == routed_to(d, "sec", "w1"), 10, what="w1 serving")
        forge_and_recover(d, "sec", workers[0], workers[0].port, 16)
    finally:
        for w in workers:
            w.kill9()
        d.stop()


STRICT = {"partitions": 16, "consistency": "strict", "ping_interval_ms": 200,
          "dead_after_ms": 6000, "lease_ms": 1000}


def lapse(d, victim):
    """Pauses victim (a libshardz worker) past its strict lease (1 s) but well within its dead
    time (6 s), so that it drops everything when it runs again, undeclared dead."""
    victim.proc.send_signal(signal.SIGSTOP)
    time.sleep(1.6)  # a scenario length: the pause outlasts the lease, not the dead time
    victim.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: victim.lease_drops(), 10, what=f"{victim.node}'s own lease drop")


def strict_pair(d, ns, workers):
    """A strict namespace ns (STRICT) on two libshardz workers, appended to workers as they
    start (the caller stops them, also when this fails), placed; w1 serving."""
    d.call("POST", "/v1/namespaces", dict(STRICT, name=ns))
    workers += [KvWorker(d, ns, "w1"), KvWorker(d, ns, "w2")]
    wait_for(lambda: settled(d, ns, 16, 1, nodes=2), 20, what="placement")
    wait_for(lambda: workers[0].served() and workers[0].served() == routed_to(d, ns, "w1"), 10,
             what="w1 serving")


def test_forged_assignment_after_lapse_strict():
    """A strict worker whose lease lapsed and that then took a forged assignment from the
    future does not stay wedged: the coordinator's resynchronising whole set (older than the
    forged revision) grants the lease it is applied under. Before, the worker refused every
    one ("no lease for assignment ...: not applied") and never served again."""
    d = Daemon(BIN).start()
    workers = []
    try:
        strict_pair(d, "sec", workers)
        victim = workers[0]
        lapse(d, victim)
        status, reply = request(f"http://127.0.0.1:{victim.port}", "POST", "/shardz/v1/assign",
                                {"namespace": "sec", "node": "w1", "revision": FORGED,
                                 "replicas": []})
        assert status == 200 and reply["applied_revision"] == FORGED, reply  # it took it
        wait_for(lambda: events(d, "sec", "node-ahead"), 15, what="the coordinator noticing")
        wait_for(lambda: victim.served() and victim.served() == routed_to(d, "sec", "w1"), 30,
                 what="w1 serving what it is routed again (not wedged)")
        d.call("POST", "/v1/namespaces/sec/partitions", {"ids": [f"x{i}" for i in range(8)]})
        wait_for(lambda: settled(d, "sec", 24, 1, nodes=2), 20, what="the new partitions placed")
        wait_for(lambda: victim.served() == routed_to(d, "sec", "w1") and
                 any(p.startswith("x") for p in victim.served()), 20,
                 what="w1 applying a later assignment")
        assert d.call("GET", "/v1/namespaces/sec")[1]["missing"] == 0
    finally:
        for w in workers:
            w.stop()
        d.stop()


def test_lapse_undeclared_is_counted_and_restored():
    """A strict worker whose lease lapsed while the coordinator did not declare it dead (here
    paused 1.6 s against a 1 s lease and a 6 s dead time; under CPU starvation the grants come
    late) holds nothing: the coordinator counts its replicas missing, leaves them out of
    routing, and gives them back at new generations (issue 16). Before, it sent the whole set
    again at the same generations and counted nothing missing meanwhile."""
    d = Daemon(BIN).start()
    workers = []
    try:
        strict_pair(d, "lap", workers)
        victim = workers[0]
        before = victim.served()
        lapse(d, victim)
        wait_for(lambda: 'msg="worker holds nothing it acknowledged" ns=lap node=w1' in d.tail(),
                 10, what="the coordinator seeing the lapse")
        reborn = wait_for(lambda: [e for e in events(d, "lap", "node-reborn")
                                   if e.get("node") == "w1"], 10, what="w1's replicas unknown")
        assert reborn[0]["replicas"] == len(before), reborn
        wait_for(lambda: victim.served() and victim.served() == routed_to(d, "lap", "w1"), 30,
                 what="w1 serving what it is routed again")
        for p, g in victim.served().items():
            assert g > before.get(p, 0), (p, g, before.get(p))
        _, s = d.call("GET", "/v1/namespaces/lap")
        assert s["nodes"]["dead"] == 0, "w1 was declared dead: not the case under test"
        assert s["missing"] == 0, s
    finally:
        for w in workers:
            w.stop()
        d.stop()


if __name__ == "__main__":
    run([test_forged_assignment_libshardz, test_forged_assignment_protocol_worker,
         test_forged_assignment_after_lapse_strict, test_lapse_undeclared_is_counted_and_restored])
