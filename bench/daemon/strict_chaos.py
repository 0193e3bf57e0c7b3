"""The randomized strict-mode run (issue 15), long: tests/integration/chaos.py for --seconds
(default 120) against real shardzd (two on a real etcd by default, --coordinators 1 for one on
SQLite) and real workers behind fault proxies, with network partitions, delays, resets,
pauses, kills with new processes, partitions removed and added again, operator moves and
leader failovers; then the ownership checker over every worker process's log. Prints what it
did, the owner changes, the overlaps and the generation regressions (both must be zero), and
the core count; exits 1 when either is not zero. The suite runs a 20 s variant
(tests/integration/test_strict.py: test_strict_randomized_short). Standard library only.
Usage: strict_chaos.py SHARDZD [--seconds N] [--seed N] [--coordinators N] [--replicas N]
       [--workers N] [--partitions N] [--lease-ms N (0: the namespace's default)]"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from chaos import run_chaos  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shardzd")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--coordinators", type=int, default=2)
    ap.add_argument("--replicas", type=int, default=2)
    ap.add_argument("--workers", type=int, default=5)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--lease-ms", type=int, default=1500,
                    help="the namespace's lease_ms; 0: its default (with etcd, one that spans a "
                    "failover: docs/OPERATIONS.md)")
    a = ap.parse_args()
    t0 = time.time()
    r = run_chaos(a.shardzd, a.seconds, a.seed, coordinators=a.coordinators,
                  replicas=a.replicas, workers=a.workers, partitions=a.partitions,
                  lease_ms=a.lease_ms)
    print(f"cores: {os.cpu_count()}")
    print(f"run: {a.seconds:.0f} s of faults, seed {a.seed}, {a.coordinators} coordinator(s) "
          f"({'etcd' if a.coordinators > 1 else 'SQLite'}), replicas {a.replicas}, "
          f"{a.workers} workers, {a.partitions} partitions, lease_ms {r['lease_ms']}; "
          f"{time.time() - t0:.0f} s in all")
    print("faults: " + ", ".join(f"{k} {v}" for k, v in sorted(r["actions"].items())))
    print(f"worker processes: {r['processes']}; partitions that changed owner: "
          f"{r['owner_changes']}; API calls refused: {r['api_errors']}; replicas dropped for "
          f"a lease lapse: {r['lapses']}")
    print(f"overlaps: {len(r['overlaps'])} {r['overlaps'][:10]}")
    print(f"generation regressions: {len(r['regressions'])} {r['regressions'][:10]}")
    print(f"logs: {' '.join(r['logs'])}")
    sys.exit(1 if r["overlaps"] or r["regressions"] else 0)


main()
