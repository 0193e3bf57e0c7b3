"""Benchmark: strict mode and a leader failover (issue 15 case 5, docs/OPERATIONS.md "Strict
namespaces and failover"). Two shardzd on a real etcd (at --lease-ttl, default 5000 as shipped)
and real workers (tests/integration/fakeworker.py, which log serve / delete / lease grants with
wall-clock times); a strict namespace created with default settings, so its lease is the one a
failover needs (3/2 of the TTL + two pings). Each round:
  1. kill -9 the leader: the time until the other one acts, and the replicas dropped for a
     lease lapse meanwhile (should be 0); the killed one restarts as a follower;
  2. SIGKILL a worker: the time until its partitions are served elsewhere (strict: only once
     its lease has certainly ended: dead_after + lease); a new process takes its place.
Prints each round, the medians and the core count. Standard library only.
Usage: strict_failover.py SHARDZD [--rounds N] [--lease-ttl MS] [--partitions N] [--workers N]
       [--lease-ms MS (0: the namespace's default)]"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from harness import Daemon, Etcd, HTTPError, Worker, read_events, routing, wait_for  # noqa: E402

NS = "sf"


def status(d):
    return d.call("GET", "/v1/status", timeout=5)[1]


def leader_of(ds):
    for d in ds:
        try:
            if d.proc.poll() is None and status(d)["acting"]:
                return d
        except (OSError, HTTPError):
            pass
    return None


def settled(d, workers, nparts):
    try:
        s = d.call("GET", f"/v1/namespaces/{NS}")[1]
    except (OSError, HTTPError):
        return None
    if s["moves"] or s["missing"] or s["nodes"]["alive"] != len(workers):
        return None
    r = routing(d, NS)
    if len(r) != nparts or any(len(v) != 1 for v in r.values()):
        return None
    for w in workers:
        if set(w.served()) != {p for p, v in r.items() if v[0] == w.node}:
            return None
    return r


def lapses_after(workers, t0):
    return [e for w in workers for e in read_events(w.events)
            if e["op"] == "delete" and e.get("cause") == "lease" and e["t"] >= t0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shardzd")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lease-ttl", type=int, default=5000)
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--lease-ms", type=int, default=0,
                    help="the namespace's lease_ms (0: its default, one that spans a failover)")
    a = ap.parse_args()
    etcd = Etcd().start()
    ds, workers, gen = [], [], {}

    def coordinator(i):
        d = Daemon(a.shardzd, extra=["--store", etcd.url(), "--id", f"c{i}", "--lease-ttl",
                                     str(a.lease_ttl), "--log-level", "warn"])
        return d.start()

    def start_worker(d, node):
        gen[node] = gen.get(node, 0) + 1
        ev = os.path.join(d.tmp, f"{node}.{gen[node]}.events")
        return Worker(d, NS, node, events=ev, extra=["--log-leases"],
                      coordinators=",".join(f"127.0.0.1:{x.port}" for x in ds))
    try:
        ds = [coordinator(0), coordinator(1)]
        lead = wait_for(lambda: leader_of(ds), a.lease_ttl / 1000 + 10, what="a leader")
        spec = {"name": NS, "partitions": a.partitions, "consistency": "strict"}
        if a.lease_ms:
            spec["lease_ms"] = a.lease_ms
        _, cfg = lead.call("POST", "/v1/namespaces", spec)
        workers = [start_worker(lead, f"w{i}") for i in range(a.workers)]
        wait_for(lambda: settled(lead, workers, a.partitions), 60, what="initial placement")
        print(f"cores: {os.cpu_count()}")
        print(f"2 coordinators on etcd, --lease-ttl {a.lease_ttl}; strict, replicas 1, "
              f"{a.partitions} partitions, {a.workers} workers; defaults: ping_interval_ms "
              f"{cfg['ping_interval_ms']}, dead_after_ms {cfg['dead_after_ms']}, lease_ms "
              f"{cfg['lease_ms']}", flush=True)
        print("round  kill-leader->new-acting(ms)  lapse-drops  kill-worker->served(ms)",
              flush=True)
        fo, rp, drops = [], [], 0
        for rnd in range(a.rounds):
            lead = leader_of(ds)
            t0 = time.time()
            lead.kill9()
            other = wait_for(lambda: leader_of([d for d in ds if d is not lead]),
                             a.lease_ttl / 1000 + 15, step=0.01, what="a new leader")
            took = time.time() - t0
            # the new leader acts: a worker's next reregistration or push goes through it
            wait_for(lambda: settled(other, workers, a.partitions), 60, what="settled again")
            lost = lapses_after(workers, t0)
            drops += len(lost)
            ds[ds.index(lead)] = coordinator(ds.index(lead))  # back, as a follower
            fo.append(took)
            # a worker killed: its partitions are served elsewhere once its lease is over
            victim = workers[rnd % len(workers)]
            held = set(victim.served())
            others = [w for w in workers if w is not victim]
            t1 = time.time()
            victim.kill9()

            def served_elsewhere():
                got = {}
                for w in others:
                    for e in read_events(w.events):
                        if e["op"] == "serve" and e["t"] >= t1 and e["partition"] in held:
                            got.setdefault(e["partition"], e["t"])
                return got if len(got) == len(held) else None
            got = wait_for(served_elsewhere, 60, step=0.01, what="re-placed")
            rp.append(max(got.values()) - t1)
            workers[workers.index(victim)] = start_worker(other, victim.node)
            wait_for(lambda: settled(other, workers, a.partitions), 60, what="settled")
            print(f"{rnd:5d}  {took * 1000:27.0f}  {len(lost):11d}  {rp[-1] * 1000:23.0f}",
                  flush=True)
        print(f"leader killed -> new leader acting: median {statistics.median(fo) * 1000:.0f} ms "
              f"(min {min(fo) * 1000:.0f}, max {max(fo) * 1000:.0f}, n={len(fo)}); replicas "
              f"dropped for a lease lapse across the failovers: {drops}")
        print(f"strict worker killed -> its partitions served elsewhere: median "
              f"{statistics.median(rp) * 1000:.0f} ms (min {min(rp) * 1000:.0f}, max "
              f"{max(rp) * 1000:.0f}, n={len(rp)})")
        sys.exit(1 if drops else 0)
    finally:
        for w in workers:
            w.kill9()
        for d in ds:
            d.stop()
        etcd.stop()


main()
