"""Benchmark: what GET /state costs at size (issue 16: "/state in O(partitions + slots);
measure it at 1M partitions"). A real shardzd (SQLite store), a hash namespace of --partitions
partitions on --slots hash slots and --workers registered nodes (addresses only: no worker
processes, so nothing is placed unless --place; without it every partition shows no replicas,
which still measures the slot runs, the part that scanned every slot per partition before).
It reads /state --reads times at one revision and prints the first read (the body is built and
serialised then) and the later ones (the same shared body, only written), the body's size,
the daemon's RSS and the core count. Wall time includes waiting for a core on a busy
machine; the daemon's CPU time (from /proc) does not. Standard library only.
Usage: state_size.py SHARDZD [--partitions N] [--slots S] [--reads R]"""
import argparse
import os
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from harness import Daemon  # noqa: E402


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_ms(pid):
    """The process's CPU time so far (user + system), in ms."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 // os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shardzd")
    ap.add_argument("--partitions", type=int, default=1000000)
    ap.add_argument("--slots", type=int, default=1 << 20)
    ap.add_argument("--reads", type=int, default=5)
    a = ap.parse_args()
    d = Daemon(a.shardzd, extra=["--log-level", "warn"]).start()
    try:
        t0 = time.monotonic()
        d.call("POST", "/v1/namespaces", {"name": "big", "sharder": "hash", "slots": a.slots,
                                          "partitions": a.partitions}, timeout=600)
        created = time.monotonic() - t0
        times, cpus, size, rev = [], [], 0, set()
        for _ in range(a.reads):
            t, c = time.monotonic(), cpu_ms(d.proc.pid)
            with urllib.request.urlopen(d.base + "/v1/namespaces/big/state", timeout=600) as r:
                body = r.read()
                rev.add(r.headers["X-Shardz-Revision"])
            times.append((time.monotonic() - t) * 1000)
            cpus.append(cpu_ms(d.proc.pid) - c)
            size = len(body)
        print(f"state_size: shardzd {a.shardzd}, {a.partitions} partitions on {a.slots} slots "
              f"(hash), {os.cpu_count()} cores")
        print(f"  namespace created in {created:.1f} s; /state {size / 1e6:.1f} MB at "
              f"revision(s) {sorted(rev)}")
        print(f"  first read (built, serialised, written): {times[0]:.0f} ms wall, "
              f"{cpus[0]} ms daemon CPU; later reads (shared body, written): "
              f"{', '.join(f'{x:.0f}' for x in times[1:])} ms wall, "
              f"{', '.join(str(x) for x in cpus[1:])} ms CPU")
        print(f"  daemon RSS after: {rss_mb(d.proc.pid):.0f} MB")
    finally:
        d.stop()


if __name__ == "__main__":
    main()
