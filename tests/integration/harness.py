"""Integration test harness: starts a real shardzd (the binary under test) on a free loopback
port with its own data directory, and real worker processes; talks to them over HTTP.
Standard library only. Every process is stopped (SIGTERM, then SIGKILL) when a test ends."""
import base64
import json
import os
import shutil
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


# Every Daemon made since the current test began: a failing test prints their logs.
DAEMONS = []


def print_daemon_logs(lines=40):
    """The last `lines` lines above debug level of each daemon the failed test made."""
    for d in DAEMONS:
        try:
            with open(d.log, "rb") as f:
                text = f.read().decode(errors="replace").splitlines()
        except OSError:
            continue
        kept = [ln for ln in text if "level=debug" not in ln][-lines:]
        print(f"--- {d.log} (last {len(kept)} lines above debug)", flush=True)
        print("\n".join(kept), flush=True)


class Daemon:
    def __init__(self, binary, data=None, extra=(), env=None):
        self.binary = binary
        self.env = dict(os.environ, **(env or {}))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.tmp = tempfile.mkdtemp(prefix="shardz-it-")
        TMPS.append(self.tmp)
        self.data = data or os.path.join(self.tmp, "data")
        self.extra = list(extra)
        self.proc = None
        self.log = os.path.join(self.tmp, "shardzd.log")
        DAEMONS.append(self)

    def start(self, wait=True):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--listen", f"127.0.0.1:{self.port}", "--data", self.data,
             "--log-level", "debug"] + self.extra,
            stdout=self.logf, stderr=self.logf, env=self.env)
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


ETCD = "/usr/bin/etcd"


class Etcd:
    """A real etcd (Debian's etcd-server, installed by scripts/install-deps.sh): `members`
    processes forming one cluster on free loopback ports, each with its own data directory;
    stopped by process id. A missing binary fails the test: it never skips."""

    def __init__(self, members=1):
        if not os.path.exists(ETCD):
            raise AssertionError(f"{ETCD} is missing: run scripts/install-deps.sh")
        self.tmp = tempfile.mkdtemp(prefix="shardz-etcd-")
        TMPS.append(self.tmp)
        self.names = [f"m{i}" for i in range(members)]
        self.client = [free_port() for _ in self.names]
        self.peer = [free_port() for _ in self.names]
        self.procs = [None] * members
        self.cluster = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in zip(self.names, self.peer))

    def url(self):
        """The --store argument naming every member."""
        return "etcd://" + ",".join(f"127.0.0.1:{p}" for p in self.client)

    def endpoint(self, i=0):
        return f"http://127.0.0.1:{self.client[i]}"

    def start_member(self, i, state="new"):
        log = open(os.path.join(self.tmp, f"{self.names[i]}.log"), "ab")
        self.procs[i] = subprocess.Popen(
            [ETCD, "--name", self.names[i], "--data-dir", os.path.join(self.tmp, self.names[i]),
             "--listen-client-urls", self.endpoint(i), "--advertise-client-urls", self.endpoint(i),
             "--listen-peer-urls", f"http://127.0.0.1:{self.peer[i]}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer[i]}",
             "--initial-cluster", self.cluster, "--initial-cluster-state", state,
             "--heartbeat-interval", "50", "--election-timeout", "500"],
            stdout=log, stderr=log)

    def start(self):
        for i in range(len(self.names)):
            self.start_member(i)
        for i in range(len(self.names)):
            self.wait_member(i)
        return self

    def wait_member(self, i, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if self.procs[i].poll() is not None:
                raise RuntimeError(f"etcd {self.names[i]} exited: see {self.tmp}")
            try:
                req = urllib.request.Request(self.endpoint(i) + "/v3/kv/range", method="POST",
                                             data=b'{"key":"AA=="}')
                with urllib.request.urlopen(req, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"etcd {self.names[i]} did not answer within {timeout} s")

    def kill(self, i, sig=signal.SIGKILL):
        if self.procs[i] and self.procs[i].poll() is None:
            self.procs[i].send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.procs[i].wait()

    def put(self, key, value, i=0):
        """A raw put through the gateway (keys as etcd holds them, prefix included)."""
        import base64
        body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                           "value": base64.b64encode(value.encode()).decode()}).encode()
        req = urllib.request.Request(self.endpoint(i) + "/v3/kv/put", method="POST", data=body)
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read().decode())

    def get(self, key, i=0):
        """A raw read through the gateway: the value at key (prefix included), or None."""
        import base64
        body = json.dumps({"key": base64.b64encode(key.encode()).decode()}).encode()
        req = urllib.request.Request(self.endpoint(i) + "/v3/kv/range", method="POST", data=body)
        with urllib.request.urlopen(req, timeout=5) as r:
            kvs = json.loads(r.read().decode()).get("kvs") or []
        return base64.b64decode(kvs[0]["value"]).decode() if kvs else None

    def stop(self):
        for i in range(len(self.procs)):
            if self.procs[i] and self.procs[i].poll() is None:
                self.procs[i].send_signal(signal.SIGCONT)
                self.procs[i].kill()
                self.procs[i].wait()
        # a member's data directory holds preallocated WAL files (hundreds of MB): gone with
        # the cluster; the members' logs stay until the run ends (cleanup_tmp)
        for name in self.names:
            shutil.rmtree(os.path.join(self.tmp, name), ignore_errors=True)


def etcd_keys(etcd, prefix):
    """Every key under prefix (the etcd prefix included) with its value, read from etcd's
    JSON gateway; values as latin-1 text (byte for byte: a compressed page survives
    .encode("latin-1"))."""
    end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    body = json.dumps({"key": base64.b64encode(prefix.encode()).decode(),
                       "range_end": base64.b64encode(end.encode()).decode()}).encode()
    req = urllib.request.Request(etcd.endpoint() + "/v3/kv/range", method="POST", data=body)
    with urllib.request.urlopen(req, timeout=10) as r:
        kvs = json.loads(r.read().decode()).get("kvs") or []
    return {base64.b64decode(kv["key"]).decode():
            base64.b64decode(kv.get("value", "")).decode("latin-1") for kv in kvs}


class Worker:
    """A worker process: the Python protocol worker (fakeworker.py) by default."""

    def __init__(self, daemon, ns, node, zone="", events=None, extra=(), coordinators=None,
                 port=None, holder=None):
        """`holder` names this process in ownership checks ("node#2" for a second process of
        one node id: its own events file); `port` is the port it listens on (a free one)."""
        self.daemon = daemon
        self.ns = ns
        self.node = node
        self.holder = holder or node
        self.port = port or free_port()
        self.events = events or os.path.join(daemon.tmp, f"{self.holder}.events")
        cmd = [sys.executable, os.path.join(HERE, "fakeworker.py"), "--coordinator",
               coordinators or f"127.0.0.1:{daemon.port}", "--namespace", ns, "--node", node, "--port",
               str(self.port), "--events", self.events] + (["--zone", zone] if zone else [])
        self.log = open(os.path.join(daemon.tmp, f"{self.holder}.log"), "ab")
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


class KvWorker:
    """A shardz-kv worker (examples/kv: libshardz, the C library) with its serve/delete log;
    the binary is found beside the shardzd under test (BUILD/examples/kv/shardz-kv)."""

    def __init__(self, daemon, ns, node):
        kv = os.path.join(os.path.dirname(os.path.abspath(daemon.binary)), "..", "..",
                          "examples", "kv", "shardz-kv")
        self.node = node
        self.port = free_port()
        self.log = os.path.join(daemon.tmp, f"{node}.kv.jsonl")
        self.out = open(os.path.join(daemon.tmp, f"{node}.kv.log"), "ab")
        self.proc = subprocess.Popen(
            [kv, "--id", node, "--listen", f"127.0.0.1:{self.port}", "--coordinator",
             f"127.0.0.1:{daemon.port}", "--namespace", ns, "--log", self.log],
            stdout=self.out, stderr=self.out)

    def events(self):
        return read_events(self.log)

    def lease_drops(self):
        """Its deletes because its strict lease lapsed."""
        return [e for e in self.events()
                if e.get("event") == "delete" and e.get("cause") == "lease"]

    def served(self):
        """partition -> generation it serves, from its own log."""
        held = {}
        for ev in self.events():
            if ev.get("event") == "serve":
                held[ev["partition"]] = ev["generation"]
            elif ev.get("event") == "delete":
                held.pop(ev["partition"], None)
        return held

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


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


def error_of(fn):
    """(status, error code) of a call that must fail with an HTTP error."""
    try:
        fn()
    except HTTPError as e:
        return e.status, e.body["code"]
    raise AssertionError("no error")


def wait_for(pred, timeout=10, step=0.05, what="condition"):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = pred()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def settled(d, ns, nparts, replicas, nodes=None):
    """The routing (partition -> serving nodes) once every partition is served by `replicas`
    distinct nodes with no move in flight and, when given, `nodes` nodes alive (a worker still
    registering would otherwise be missed); None before."""
    if nodes is not None and d.call("GET", f"/v1/namespaces/{ns}")[1]["nodes"]["alive"] != nodes:
        return None
    r = routing(d, ns)
    m = d.call("GET", f"/v1/namespaces/{ns}/moves")[1]
    ok = len(r) == nparts and all(len(v) == replicas and len(set(v)) == replicas
                                  for v in r.values())
    # nothing in flight, and nothing the drain gate still holds back
    return r if ok and not m["moves"] and not m.get("queued") else None


def routing(daemon, ns):
    """partition -> list of serving node ids, from the coordinator's state."""
    _, st = daemon.call("GET", f"/v1/namespaces/{ns}/state")
    return {p["id"]: [r["node"] for r in p["replicas"] if r["state"] == "serving"]
            for p in st["partitions"]}


# Every temporary directory the harness made (daemons' data and logs, etcd clusters).
TMPS = []


def cleanup_tmp():
    """Removes the harness's temporary directories (a run that passed needs none of them)."""
    for d in TMPS:
        shutil.rmtree(d, ignore_errors=True)
    TMPS.clear()


def run(tests):
    """Runs test functions; prints 'N passed, N failed'; exits non-zero on failure."""
    import traceback
    passed = failed = 0
    only = os.environ.get("SHARDZ_IT_ONLY")
    for t in tests:
        if only and t.__name__ != only:
            continue
        start = time.time()
        DAEMONS.clear()
        try:
            t()
            passed += 1
            print(f"PASS {t.__name__} ({time.time() - start:.1f}s)", flush=True)
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}", flush=True)
            traceback.print_exc()
            print_daemon_logs()
    print(f"{passed} passed, {failed} failed", flush=True)
    if not failed:
        cleanup_tmp()  # kept after a failure: the logs tell what happened
    sys.exit(1 if failed else 0)
