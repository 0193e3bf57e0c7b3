"""Benchmark: query API requests per second with keep-alive. Starts a real shardzd and worker
processes (tests/integration/fakeworker.py), creates a namespace with 10,000 partitions, waits
until placement settles, then loads GET /v1/namespaces/{ns}/partitions/{id} and GET /healthz
(the plainest reply the same server gives) with wrk, one client thread, alternating the two so
both see the same machine; prints each run and the ratio. Standard library only (plus wrk).
Usage: query.py SHARDZD [--partitions N] [--replicas R] [--connections C] [--seconds S]"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from harness import Daemon, Worker, routing, wait_for  # noqa: E402

NS = "q"


def wrk(url, connections, seconds):
    """Runs wrk with one thread; (requests/s, p50 ms, p99 ms, non-2xx count, raw output)."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def lat(q):
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, lat(50), lat(99), int(m.group(1)) if m else 0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shardzd")
    ap.add_argument("--partitions", type=int, default=10000)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--memory", action="store_true", help="run shardzd with --memory")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        print("query: wrk not found (Debian: apt-get install -y wrk); skipped")
        return
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(
        "\n")[0]
    d = Daemon(a.shardzd, extra=["--log-level", "warn"] + (["--memory"] if a.memory else []))
    d.start()
    workers = []
    try:
        d.call("POST", "/v1/namespaces", {"name": NS, "replicas": a.replicas,
                                           "partitions": a.partitions})
        workers = [Worker(d, NS, f"w{i}") for i in range(a.workers)]

        def settled():
            s = d.call("GET", f"/v1/namespaces/{NS}")[1]
            return not s["moves"] and not s["missing"] and s["nodes"]["alive"] == a.workers
        wait_for(settled, 60, what="placement")
        pid = str(a.partitions // 2 + 7)
        path = f"/v1/namespaces/{NS}/partitions/{pid}"
        _, sample = d.call("GET", path)
        assert len(sample["replicas"]) == a.replicas, sample
        body = subprocess.run(["curl", "-s", "-i", d.base + path], capture_output=True,
                              text=True).stdout if shutil.which("curl") else ""
        health = subprocess.run(["curl", "-s", "-i", d.base + "/healthz"], capture_output=True,
                                text=True).stdout if shutil.which("curl") else ""
        print(f"query: cores online {os.sysconf('SC_NPROCESSORS_ONLN')}; {wrk_version}; "
              f"client: wrk -t1 (one thread) -c{a.connections} (keep-alive) -d{a.seconds}s, "
              f"{a.rounds} rounds alternating; server: shardzd "
              f"({'memory store' if a.memory else 'SQLite store'}), one event loop; namespace "
              f"{a.partitions} partitions x {a.replicas} replicas on {a.workers} workers "
              f"(fakeworker.py, pinged every 200 ms)")
        print(f"reply sizes: partition {len(body.encode())} bytes with headers, /healthz "
              f"{len(health.encode())} bytes with headers")
        print(f"partition reply: {body.strip().splitlines()[-1] if body else sample}")
        print(f"\n{'round':>5} {'GET /healthz req/s':>19} {'GET partition req/s':>20} "
              f"{'ratio':>6} {'p50 ms h/p':>12} {'p99 ms h/p':>12}")
        ratios, hs, ps = [], [], []
        for r in range(a.rounds):
            h = wrk(d.base + "/healthz", a.connections, a.seconds)
            p = wrk(d.base + path, a.connections, a.seconds)
            if h[3] or p[3]:
                print(f"non-2xx replies: healthz {h[3]}, partition {p[3]}")
            ratios.append(p[0] / h[0])
            hs.append(h[0])
            ps.append(p[0])
            print(f"{r:5d} {h[0]:19.0f} {p[0]:20.0f} {p[0] / h[0]:6.2f} "
                  f"{h[1]:5.2f}/{p[1]:<5.2f} {h[2]:5.2f}/{p[2]:<5.2f}", flush=True)
        median = sorted(ratios)[len(ratios) // 2]
        print(f"query: partition lookup / healthz ratio: median {median:.2f}"
              f" (min {min(ratios):.2f}, max {max(ratios):.2f}); best req/s: healthz "
              f"{max(hs):.0f}, partition {max(ps):.0f}")
        r = routing(d, NS)
        assert len(r) == a.partitions
    finally:
        for w in workers:
            w.kill9()
        d.stop()
        shutil.rmtree(d.tmp, ignore_errors=True)


main()
