"""The randomized strict-mode run (issue 15): real shardzd (one on SQLite, or two on a real
etcd), real workers (fakeworker.py) each behind a fault proxy, and for `seconds` a seeded
random schedule of faults: network partitions (black-hole), delays and resets of a worker's
link, SIGSTOP pauses, SIGKILL followed by a new process of the same node id, partitions
removed and added again, operator moves, and coordinator failovers (kill -9 of the leader, or
SIGSTOP past its lease; on SQLite a kill -9 and restart). Then everything heals, the run waits
until the placement settles and every lease has run out, and the ownership checker
(ownership.py) computes, from the workers' own logs, every overlap of more owners than
replicas and every generation that did not grow. Used by test_strict.py (a short run) and
bench/daemon/strict_chaos.py (the 2-minute run). Standard library only."""
import random
import signal
import time

from faultproxy import BLACKHOLE, DELAY, PASS, RESET, Proxy
from harness import Daemon, Etcd, HTTPError, Worker, free_port, read_events, routing, wait_for
from ownership import check, owners_moved


class Proc:
    """One worker process behind its own proxy (coordinator -> worker traffic)."""

    def __init__(self, daemon, coords, ns, node, k):
        self.node, self.k = node, k
        self.holder = node if k == 0 else f"{node}#{k}"
        port = free_port()
        self.proxy = Proxy(f"127.0.0.1:{port}")
        self.w = Worker(daemon, ns, node, port=port, holder=self.holder, coordinators=coords,
                        extra=["--log-leases", "--advertise", self.proxy.address])
        self.paused = False
        self.ended = None


def leader_of(ds):
    for d in ds:
        if d.proc is None or d.proc.poll() is not None:
            continue
        try:
            st = d.call("GET", "/v1/status", timeout=2)[1]
        except (OSError, HTTPError):
            continue
        if st.get("acting"):
            return d
    return None


def run_chaos(binary, seconds, seed, coordinators=1, replicas=2, workers=5, partitions=16,
              lease_ms=1500, log=print):
    rng = random.Random(seed)
    etcd = Etcd().start() if coordinators > 1 else None
    ds = []
    if etcd:
        ds = [Daemon(binary, extra=["--store", etcd.url(), "--id", f"c{i}", "--lease-ttl",
                                    "2000"]) for i in range(coordinators)]
    else:
        ds = [Daemon(binary)]
    for d in ds:
        d.start()
    procs, counts, api_errors = {}, {}, 0
    every = []  # every Proc ever started
    pending = []  # (time, fn) heals and restarts due
    nparts = partitions
    ns = "kv"

    def count(what):
        counts[what] = counts.get(what, 0) + 1

    def call(method, path, body=None):
        nonlocal api_errors
        for _ in range(3):
            d = leader_of(ds) or ds[0]
            try:
                return d.call(method, path, body, timeout=5)
            except HTTPError as e:
                if e.status == 503:
                    time.sleep(0.2)
                    continue
                api_errors += 1
                return None
            except OSError:
                time.sleep(0.2)
        api_errors += 1
        return None

    coords = ",".join(f"127.0.0.1:{d.port}" for d in ds)
    try:
        wait_for(lambda: leader_of(ds), 20, what="a leader")
        cfg = dict(name=ns, replicas=replicas, partitions=partitions, consistency="strict",
                   ping_interval_ms=100, dead_after_ms=500)
        if lease_ms:  # else the namespace's default (with etcd: one that spans a failover)
            cfg["lease_ms"] = lease_ms
        call("POST", "/v1/namespaces", cfg)
        lease_ms = call("GET", f"/v1/namespaces/{ns}")[1]["lease_ms"]
        for i in range(workers):
            p = Proc(ds[0], coords, ns, f"w{i}", 0)
            procs[p.node] = p
            every.append(p)

        def placed():
            d = leader_of(ds)
            return d and len(routing(d, ns)) == nparts and all(
                len(v) == replicas for v in routing(d, ns).values())
        wait_for(placed, 30, what="first placement")
        disrupted = set()
        end = time.time() + seconds
        while time.time() < end:
            now = time.time()
            for t, fn in [x for x in pending if x[0] <= now]:
                pending.remove((t, fn))
                fn()
            time.sleep(rng.uniform(0.2, 0.8))
            node = rng.choice(sorted(procs))
            p = procs[node]
            action = rng.choice(["partition", "pause", "kill", "delay", "reset", "readd",
                                 "move", "failover"])
            if action in ("partition", "pause", "kill", "delay") and (
                    node in disrupted or len(disrupted) >= max(1, workers - replicas - 1)):
                continue
            dur = rng.uniform(0.3, 2.5 * lease_ms / 1000)
            if action == "partition":
                p.proxy.set(BLACKHOLE)
                disrupted.add(node)
                pending.append((now + dur, lambda p=p: (p.proxy.set(PASS),
                                                         disrupted.discard(p.node))))
            elif action == "pause":
                p.w.proc.send_signal(signal.SIGSTOP)
                p.paused = True
                disrupted.add(node)

                def cont(p=p):
                    p.w.proc.send_signal(signal.SIGCONT)
                    p.paused = False
                    disrupted.discard(p.node)
                pending.append((now + dur, cont))
            elif action == "kill":
                p.w.kill9()
                p.ended = time.time()
                p.proxy.stop()
                disrupted.add(node)

                def restart(p=p):
                    q = Proc(ds[0], coords, ns, p.node, p.k + 1)
                    procs[p.node] = q
                    every.append(q)
                    disrupted.discard(p.node)
                pending.append((now + rng.uniform(0.2, 2.0), restart))
            elif action == "delay":
                p.proxy.set(DELAY, rng.uniform(0.05, 0.6))
                disrupted.add(node)
                pending.append((now + dur, lambda p=p: (p.proxy.set(PASS),
                                                         disrupted.discard(p.node))))
            elif action == "reset":
                if node in disrupted:
                    continue
                p.proxy.set(RESET)
                p.proxy.set(PASS)
            elif action == "readd":
                pid = str(rng.randrange(partitions))
                if call("DELETE", f"/v1/namespaces/{ns}/partitions/{pid}") is None:
                    continue
                if rng.random() < 0.5:
                    time.sleep(rng.uniform(0, 0.5))
                call("POST", f"/v1/namespaces/{ns}/partitions", {"ids": [pid]})
            elif action == "move":
                pid = str(rng.randrange(partitions))
                call("POST", f"/v1/namespaces/{ns}/partitions/{pid}/move",
                     {"slot": rng.randrange(replicas), "to": rng.choice(sorted(procs))})
            elif action == "failover":
                if rng.random() > 0.3:
                    continue  # rarer than the rest
                d = leader_of(ds)
                if d is None:
                    continue
                if etcd and rng.random() < 0.5:
                    d.proc.send_signal(signal.SIGSTOP)
                    pending.append((time.time() + 3.0, lambda d=d: d.proc.send_signal(
                        signal.SIGCONT)))
                else:
                    d.kill9()
                    d2 = Daemon(binary, data=d.data, extra=d.extra)
                    d2.port, d2.base = d.port, d.base
                    d2.tmp, d2.log = d.tmp, d.log
                    ds[ds.index(d)] = d2
                    pending.append((time.time() + (1.0 if etcd else 0.3), d2.start))
            count(action)
        # heal everything
        for t, fn in sorted(pending, key=lambda x: x[0]):
            fn()
        pending.clear()
        for p in procs.values():
            p.proxy.set(PASS)
            if p.paused:
                p.w.proc.send_signal(signal.SIGCONT)
        for d in ds:
            if d.proc.poll() is None:
                d.proc.send_signal(signal.SIGCONT)
        for d in ds:
            if d.proc is None:
                d.start(wait=False)
        wait_for(lambda: leader_of(ds), 30, what="a leader after the run")
        # a partition whose re-addition failed is added now
        have = set(routing(leader_of(ds), ns))
        missing = [str(i) for i in range(partitions) if str(i) not in have]
        if missing:
            call("POST", f"/v1/namespaces/{ns}/partitions", {"ids": missing})

        def settled_now():
            d = leader_of(ds)
            if not d:
                return False
            r = routing(d, ns)
            moves = d.call("GET", f"/v1/namespaces/{ns}/moves")[1]["moves"]
            return len(r) == nparts and not moves and all(len(v) == replicas
                                                         for v in r.values())
        try:
            wait_for(settled_now, 60, what="settled after the run")
        except AssertionError:
            d = leader_of(ds)
            state = d and {"routing": routing(d, ns),
                           "moves": d.call("GET", f"/v1/namespaces/{ns}/moves")[1]["moves"],
                           "nodes": d.call("GET", f"/v1/namespaces/{ns}/nodes")[1]["nodes"]}
            raise AssertionError(f"not settled 60 s after the run: {state}; logs in "
                                 f"{[x.tmp for x in ds]}")
        spans, bad, regress = check({p.holder: p.w.events for p in every}, replicas,
                                    {p.holder: p.ended for p in every if p.ended})
        lapses = sum(1 for p in every for e in read_events(p.w.events)
                     if e["op"] == "delete" and e.get("cause") == "lease")
        return {"spans": spans, "overlaps": bad, "regressions": regress, "lease_ms": lease_ms,
                "lapses": lapses,
                "owner_changes": len(owners_moved(spans)), "actions": counts,
                "api_errors": api_errors, "processes": len(every),
                "logs": sorted({d.tmp for d in ds})}
    finally:
        for p in every:
            if p.w.proc.poll() is None:
                p.w.proc.send_signal(signal.SIGCONT)
                p.w.kill9()
            p.proxy.stop()
        for d in ds:
            if d.proc and d.proc.poll() is None:
                d.proc.send_signal(signal.SIGCONT)
                d.stop()
        if etcd:
            etcd.stop()
