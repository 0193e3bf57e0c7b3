"""Benchmark: shardzd under overload and hostile clients (issue 16). A real shardzd, a hash
namespace (default 10,000 partitions, default timings: pings every 200 ms), and real worker
processes (tests/integration/fakeworker.py, each logging the time of every ping it receives).
For each overload shape it runs for --seconds while a probe opens a new connection for
GET /healthz every 20 ms, then prints the /healthz latency (p50, p99, max, failures) and the
longest gap between two pings any worker saw, against the targets: ping gaps under 1.5 x the
ping interval, /healthz p99 under 50 ms. The daemon starts with the shell's open-file limit
(run it under `ulimit -Sn 1024`, Debian's default soft limit, to see a tree without the cap run
out of descriptors). Shapes:
  quiet     nothing else
  state     8 clients read GET /state in a loop (wrk, keep-alive)
  watches   2,000 watches parked, then abandoned, then a change to the namespace
  idle      3,000 idle connections (connected, nothing sent), more than --max-connections 1000
            (a tree without the option runs without a cap)
  register  every worker registers again every 50 ms with the same fields (no change)
Standard library plus wrk (Debian: wrk, installed by scripts/install-deps.sh).
Usage: overload.py SHARDZD [--partitions N] [--workers W] [--seconds S] [--shapes a,b]"""
import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from harness import Daemon, Worker, request, settled, wait_for  # noqa: E402

NS = "o"
INTERVAL_MS = 200


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


class Probe:
    """GET /healthz on a new connection every 20 ms; latencies in ms, failures counted."""

    def __init__(self, port):
        self.port, self.lat, self.fail = port, [], 0
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run)

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                data = b""
                while True:
                    c = s.recv(4096)
                    if not c:
                        break
                    data += c
                s.close()
                if not data.startswith(b"HTTP/1.1 200"):
                    raise OSError(data[:40])
                self.lat.append((time.monotonic() - t0) * 1000)
            except OSError:
                self.fail += 1
            time.sleep(0.02)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join()


def ping_gap_ms(files, t0, t1):
    """The longest interval between two pings one worker received within [t0, t1] (its first
    ping of the window is measured from t0, the window's end from its last ping)."""
    worst = 0.0
    for f in files:
        times = []
        with open(f) as fh:
            for line in fh:
                t = float(line.split()[0])
                if t0 <= t <= t1:
                    times.append(t)
        edges = [t0] + times + [t1]
        worst = max(worst, max(b - a for a, b in zip(edges, edges[1:])) * 1000)
    return worst


def shape_state(d, a, stop):
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{a.seconds}s",
                          f"{d.base}/v1/namespaces/{NS}/state"],
                         capture_output=True, text=True, check=True).stdout
    reqs = [ln for ln in out.splitlines() if "requests in" in ln]
    return reqs[0].strip() if reqs else out


def shape_watches(d, a, stop):
    rev = d.call("GET", f"/v1/namespaces/{NS}")[1]["revision"]
    socks = []
    for _ in range(2000):
        s = socket.create_connection(("127.0.0.1", d.port))
        s.sendall(f"GET /v1/namespaces/{NS}/watch?revision={rev}&timeout_ms=120000 HTTP/1.1\r\n"
                  f"Host: b\r\n\r\n".encode())
        socks.append(s)
    for s in socks:
        s.close()
    t0 = time.monotonic()
    d.call("POST", f"/v1/namespaces/{NS}/partitions", {"ids": [f"w{time.time_ns()}"]},
           timeout=120)
    took = (time.monotonic() - t0) * 1000
    stop.wait(a.seconds)
    return f"2000 watches parked and abandoned; the change after them answered in {took:.0f} ms"


def shape_idle(d, a, stop):
    socks = []
    for _ in range(3000):
        s = socket.socket()
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", d.port))
        except OSError:
            s.close()
            continue
        socks.append(s)
    stop.wait(a.seconds)
    closed = 0
    for s in socks:
        s.settimeout(0)
        try:
            closed += s.recv(1) == b""
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    return f"{len(socks)} idle clients connected; {closed} closed by the daemon to make room"


def shape_register(d, a, stop, workers):
    n = 0
    end = time.monotonic() + a.seconds
    while time.monotonic() < end:
        for w in workers:
            # the body the worker registered with (fakeworker.py: its incarnation, its
            # features), so that nothing is new
            request(d.base, "POST", f"/v1/namespaces/{NS}/nodes",
                    {"id": w.node, "address": f"127.0.0.1:{w.port}", "incarnation": w.node,
                     "features": ["delta", "term"]})
            n += 1
        time.sleep(0.05)
    return f"{n} registrations with nothing new"


def run_shape(shape, d, a, stop, workers):
    if shape == "quiet":
        stop.wait(a.seconds)
        return "nothing"
    if shape == "state":
        return shape_state(d, a, stop)
    if shape == "watches":
        return shape_watches(d, a, stop)
    if shape == "idle":
        return shape_idle(d, a, stop)
    if shape == "register":
        return shape_register(d, a, stop, workers)
    sys.exit(f"overload: unknown shape {shape}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shardzd")
    ap.add_argument("--partitions", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--shapes", default="quiet,state,watches,idle,register")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("overload: wrk not found: run scripts/install-deps.sh")
    # a tree from before the connection cap (side by side runs) has no --max-connections
    helptext = subprocess.run([a.shardzd, "--help"], capture_output=True, text=True).stdout
    cap = ["--max-connections", "1000"] if "--max-connections" in helptext else []
    d = Daemon(a.shardzd, extra=["--log-level", "warn"] + cap)
    d.start()  # with this shell's open-file limit (Debian's default soft limit: 1024)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    workers = []
    try:
        d.call("POST", "/v1/namespaces", {"name": NS, "sharder": "hash",
                                           "partitions": a.partitions}, timeout=120)
        pings = [os.path.join(d.tmp, f"w{i}.pings") for i in range(a.workers)]
        workers = [Worker(d, NS, f"w{i}", extra=["--pings", pings[i], "--incarnation", f"w{i}"])
                   for i in range(a.workers)]
        wait_for(lambda: settled(d, NS, a.partitions, 1, nodes=a.workers), 120, step=0.5,
                 what="placement")
        print(f"overload: shardzd {a.shardzd}, {a.partitions} partitions (hash), {a.workers} "
              f"workers, ping interval {INTERVAL_MS} ms, {a.seconds} s per shape, "
              f"{os.cpu_count()} cores", flush=True)
        print(f"{'shape':<9} {'healthz p50':>11} {'p99':>8} {'max':>8} {'failed':>6} "
              f"{'ping gap max':>12} {'x interval':>10}  what ran", flush=True)
        # the bench's own clients need more descriptors than the daemon is given
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
        for shape in a.shapes.split(","):
            stop = threading.Event()
            t0 = time.time()
            with Probe(d.port) as probe:
                try:
                    what = run_shape(shape, d, a, stop, workers)
                except Exception as e:  # noqa: BLE001 (a shape the tree cannot take is a result)
                    what = f"FAILED: {type(e).__name__}: {e}"
            t1 = time.time()
            gap = ping_gap_ms(pings, t0, t1)
            print(f"{shape:<9} {pct(probe.lat, 0.5):>9.1f}ms {pct(probe.lat, 0.99):>6.1f}ms "
                  f"{max(probe.lat, default=float('nan')):>6.1f}ms {probe.fail:>6} "
                  f"{gap:>10.0f}ms {gap / INTERVAL_MS:>10.2f}  {what}", flush=True)
            if d.proc.poll() is not None:
                print(f"shardzd died (exit status {d.proc.returncode}); the log's last line: "
                      f"{d.tail(300).strip().splitlines()[-1]}", flush=True)
                return
        _, s = d.call("GET", f"/v1/namespaces/{NS}", timeout=30)
        print(f"after: nodes {json.dumps(s['nodes'])}, missing {s['missing']}", flush=True)
    finally:
        for w in workers:
            w.kill9()
        if d.proc.poll() is None:
            d.stop()
        print(f"daemon log: {os.path.getsize(d.log)} bytes", flush=True)


if __name__ == "__main__":
    main()
