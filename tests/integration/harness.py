"""Integration test harness: starts a real shardzd (the binary under test) on a free loopback
port with its own data directory, and real worker processes; talks to them over HTTP.
Standard library only. Every process is stopped (SIGTERM, then SIGKILL) when a test ends."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class HTTPError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


def request(base, method, path, body=None, raw=None, headers=None, timeout=10):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text.strip() else None)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = text
        raise HTTPError(e.code, parsed)


class Daemon:
    def __init__(self, binary, data=None, extra=()):
        self.binary = binary
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tmp = tempfile.mkdtemp(prefix="shardz-it-")
        self.data = data or os.path.join(self.tmp, "data")
        self.extra = list(extra)
        self.proc = None
        self.log = os.path.join(self.tmp, "shardzd.log")

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--listen", f"127.0.0.1:{self.port}", "--data", self.data,
             "--log-level", "debug"] + self.extra,
            stdout=self.logf, stderr=self.logf)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"shardzd exited with {self.proc.returncode}: {self.tail()}")
            try:
                if request(self.base, "GET", "/healthz", timeout=1)[0] == 200:
                    return
            except (OSError, HTTPError):
                pass
            time.sleep(0.05)
        raise RuntimeError("shardzd did not become ready: " + self.tail())

    def call(self, method, path, body=None, **kw):
        return request(self.base, method, path, body, **kw)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """SIGTERM and check a clean exit (0: under ASan that also means no leak)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("shardzd did not stop on SIGTERM")
        rc = self.proc.returncode if self.proc else 0
        if rc not in (0, -9):
            raise AssertionError(f"shardzd exited with {rc}: {self.tail()}")
        return rc

    def tail(self, n=4000):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""


class Worker:
    """A worker process: the Python protocol worker (fakeworker.py) by default."""

    def __init__(self, daemon, ns, node, zone="", events=None, extra=()):
        self.daemon = daemon
        self.ns = ns
        self.node = node
        self.port = free_port()
        self.events = events or os.path.join(daemon.tmp, f"{node}.events")
        cmd = [sys.executable, os.path.join(HERE, "fakeworker.py"), "--coordinator",
               f"127.0.0.1:{daemon.port}", "--namespace", ns, "--node", node, "--port",
               str(self.port), "--events", self.events] + (["--zone", zone] if zone else [])
        self.log = open(os.path.join(daemon.tmp, f"{node}.log"), "ab")
        self.proc = subprocess.Popen(cmd + list(extra), stdout=self.log, stderr=self.log)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def served(self):
        """The partitions this worker serves, from its own event log."""
        held = {}
        for ev in read_events(self.events):
            if ev["op"] == "serve":
                held[ev["partition"]] = ev["generation"]
            elif ev["op"] == "delete":
                held.pop(ev["partition"], None)
        return held


def read_events(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    except FileNotFoundError:
        pass
    return out


def wait_for(pred, timeout=10, step=0.05, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = pred()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def routing(daemon, ns):
    """partition -> list of serving node ids, from the coordinator's state."""
    _, st = daemon.call("GET", f"/v1/namespaces/{ns}/state")
    return {p["id"]: [r["node"] for r in p["replicas"] if r["state"] == "serving"]
            for p in st["partitions"]}


def run(tests):
    """Runs test functions; prints 'N passed, N failed'; exits non-zero on failure."""
    import traceback
    passed = failed = 0
    only = os.environ.get("SHARDZ_IT_ONLY")
    for t in tests:
        if only and t.__name__ != only:
            continue
        start = time.time()
        try:
            t()
            passed += 1
            print(f"PASS {t.__name__} ({time.time() - start:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}", flush=True)
            traceback.print_exc()
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
