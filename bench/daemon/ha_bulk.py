"""Benchmark: one large request to a leader on etcd, and whether the leadership survives it.
Starts a real etcd (Debian's etcd-server) and one shardzd on it with a short lease TTL, a
namespace with WORKERS protocol workers (tests/integration/fakeworker.py), then adds PARTITIONS
partitions in one request through the leader, ROUNDS times (each a new batch of ids), and prints
for each: the answer's status and time, whether the coordinator stepped down meanwhile (its
leader_changes, its log), and the lease renewals it made (GET /v1/status, where the tree has
them). Before the lease keeper (keeper.c) the loop renewed the lease itself, so a request that
held it for longer than TTL - margin cost the leadership. Prints the machine's core count.
Usage: ha_bulk.py SHARDZD [--ttl MS] [--partitions N] [--rounds N] [--workers N]"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from harness import Daemon, Etcd, HTTPError, Worker, cleanup_tmp, wait_for  # noqa: E402


def status(d):
    return d.call("GET", "/v1/status", timeout=30)[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shardzd")
    ap.add_argument("--ttl", type=int, default=2000)
    ap.add_argument("--partitions", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=3)
    a = ap.parse_args()
    print(f"ha_bulk: {a.shardzd}, lease TTL {a.ttl} ms, {a.rounds} requests of {a.partitions} "
          f"partitions, {a.workers} workers, replicas 1; cores online {os.cpu_count()}",
          flush=True)
    etcd = Etcd().start()
    d = Daemon(a.shardzd, extra=["--store", etcd.url(), "--id", "c0", "--lease-ttl",
                                 str(a.ttl), "--log-level", "info"])
    d.start()
    ws = []
    try:
        wait_for(lambda: status(d)["acting"], timeout=a.ttl / 1000 + 10, what="the leader")
        d.call("POST", "/v1/namespaces", {"name": "bulk", "partitions": 0})
        ws = [Worker(d, "bulk", f"w{i}") for i in range(a.workers)]
        wait_for(lambda: d.call("GET", "/v1/namespaces/bulk")[1]["nodes"]["alive"] == a.workers,
                 timeout=30, what="the workers")
        stepped = 0
        for r in range(a.rounds):
            before = status(d)
            ids = [f"p{r}-{i}" for i in range(a.partitions)]
            t0 = time.time()
            try:
                code = d.call("POST", "/v1/namespaces/bulk/partitions", {"ids": ids},
                              timeout=300)[0]
                err = ""
            except HTTPError as e:
                code, err = e.status, (e.body or {}).get("message", "")
            took = time.time() - t0
            # the leader again (a coordinator that stepped down campaigns anew)
            wait_for(lambda: status(d)["acting"], timeout=a.ttl / 1000 + 30, what="acting")
            after = status(d)
            changes = after["leader_changes"] - before["leader_changes"]
            stepped += changes > 0
            renew = (f", lease renewals {after['lease_renewals'] - before['lease_renewals']}"
                     if "lease_renewals" in after else "")
            print(f"  request {r + 1}: +{a.partitions} answered {code} in {took * 1000:.0f} ms"
                  f"{' (' + err + ')' if err else ''}, leadership lost and taken again "
                  f"{changes} time(s){renew}", flush=True)
        log = d.tail(10_000_000)
        print(f"requests that cost the leadership: {stepped} of {a.rounds}; "
              f"'stepping down' lines in the log: {log.count('stepping down')}", flush=True)
    finally:
        d.stop()
        for w in ws:
            w.kill9()
        etcd.stop()
        cleanup_tmp()


if __name__ == "__main__":
    main()
