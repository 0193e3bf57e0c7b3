"""The conformance suite's runner (tests/conformance/README.md): every test that takes the
`driver` fixture runs once per executable in drivers/, against real processes started through
tests/integration/harness.py. Nothing is skipped: a driver that cannot do a scenario fails it.
Runs in pytest's main thread; one reader thread per driver process collects its stdout."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402

DRIVER_DIR = os.path.join(HERE, "drivers")


def build_dir():
    b = os.environ.get("SHARDZ_BUILD_DIR") or os.path.join(ROOT, "build", "release")
    return os.path.abspath(b)


def shardzd_binary():
    return os.environ.get("SHARDZ_SHARDZD") or os.path.join(build_dir(), "src", "daemon", "shardzd")


def all_drivers():
    names = sorted(n for n in os.listdir(DRIVER_DIR)
                   if os.path.isfile(os.path.join(DRIVER_DIR, n))
                   and os.access(os.path.join(DRIVER_DIR, n), os.X_OK))
    only = os.environ.get("SHARDZ_CONFORMANCE_DRIVERS")
    if only:
        wanted = only.split(",")
        missing = [w for w in wanted if w not in names]
        if missing:
            raise RuntimeError(f"no driver {missing} in {DRIVER_DIR}")
        names = [n for n in names if n in wanted]
    return names


DRIVERS = all_drivers()


def driver_env():
    return dict(os.environ, SHARDZ_BUILD_DIR=build_dir(), SHARDZ_SOURCE_DIR=ROOT)


_prepared = {}


def prepare(name):
    """Runs `drivers/<name> prepare` once per run; a failure fails every test of that driver."""
    if name not in _prepared:
        p = subprocess.run([os.path.join(DRIVER_DIR, name), "prepare"], env=driver_env(),
                           capture_output=True, text=True, timeout=300)
        _prepared[name] = (p.returncode, p.stdout + p.stderr)
    rc, out = _prepared[name]
    assert rc == 0, f"drivers/{name} prepare failed ({rc}):\n{out}"


@pytest.fixture(params=DRIVERS)
def driver(request):
    prepare(request.param)
    return request.param


class Proc:
    """A driver process with its stdin, a stdout line queue and a stderr log file."""

    def __init__(self, name, args, tmp, label):
        self.name = name
        self.label = label
        self.errlog = os.path.join(tmp, f"{label}.stderr")
        self._err = open(self.errlog, "ab")
        self.proc = subprocess.Popen([os.path.join(DRIVER_DIR, name)] + args, env=driver_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, bufsize=1)
        self.lines = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def readline(self, timeout=10.0):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.label} ({self.name}): no answer within {timeout} s; "
                                 f"stderr: {self.stderr()}")
        if line is None:
            raise AssertionError(f"{self.label} ({self.name}) exited "
                                 f"({self.proc.poll()}); stderr: {self.stderr()}")
        return line

    def cmd(self, line, timeout=10.0):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.readline(timeout)

    def stderr(self, n=3000):
        try:
            with open(self.errlog, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill9(self):
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class DriverWorker(Proc):
    def __init__(self, name, tmp, coordinators, ns, node, zone="z1", capacity=(), secret=None):
        self.node = node
        self.port = harness.free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.events_path = os.path.join(tmp, f"{node}.events")
        args = ["worker", "--coordinator", coordinators, "--ns", ns, "--node", node,
                "--listen", self.addr, "--zone", zone, "--events", self.events_path]
        for c in capacity:
            args += ["--capacity", c]
        if secret:
            args += ["--secret", secret]
        super().__init__(name, args, tmp, node)

    def events(self, kind=None):
        evs = harness.read_events(self.events_path)
        return [e for e in evs if kind is None or e["ev"] == kind]

    def served(self):
        """partition -> generation, from the worker's own serve / delete events."""
        held = {}
        for e in self.events():
            if e["ev"] == "serve":
                held[e["partition"]] = e["generation"]
            elif e["ev"] == "delete":
                held.pop(e["partition"], None)
        return held

    def wait_registered(self, timeout=15):
        harness.wait_for(lambda: self.events("registered") or self.dead(), timeout,
                         what=f"{self.node} registered")
        assert not self.dead(), f"{self.node} exited: {self.stderr()}"

    def dead(self):
        return self.proc.poll() is not None

    def post(self, path, body, raw=None, timeout=5):
        """A request to the worker's own endpoint: (status, parsed body)."""
        try:
            return harness.request(f"http://{self.addr}", "POST", path, body, raw=raw,
                                   timeout=timeout)
        except harness.HTTPError as e:
            return e.status, e.body


class DriverRouter(Proc):
    def __init__(self, name, tmp, coordinators, ns, label="router", secret=None):
        args = ["router", "--coordinator", coordinators, "--ns", ns]
        if secret:
            args += ["--secret", secret]
        super().__init__(name, args, tmp, label)
        line = self.readline(timeout=20)
        assert line == "ready", f"router said {line!r}; stderr: {self.stderr()}"

    def ask(self, line, timeout=10):
        return json.loads(self.cmd(line, timeout))

    def wait(self, revision, timeout=10):
        assert self.cmd(f"wait {revision}", timeout) == "ok"


class Cluster:
    """A real shardzd (its own SQLite file) and the driver processes of one test."""

    def __init__(self, driver, secret=None):
        self.driver = driver
        self.secret = secret
        extra = ["--secret", secret] if secret else []
        self.d = harness.Daemon(shardzd_binary(), extra=extra).start()
        self.tmp = self.d.tmp
        self.procs = []

    @property
    def coord(self):
        return f"127.0.0.1:{self.d.port}"

    def call(self, method, path, body=None):
        """A request to the coordinator, with the secret when it runs with one."""
        h = {"Authorization": "Bearer " + self.secret} if self.secret else None
        return self.d.call(method, path, body, headers=h)

    def namespace(self, name, **cfg):
        # pings every 100 ms; a node is dead after 2 s without one (a loaded 2-core machine
        # must not kill a slow worker by mistake; scenarios about failure set it shorter)
        body = {"name": name, "ping_interval_ms": 100, "dead_after_ms": 2000, "lease_ms": 800}
        body.update(cfg)
        return self.call("POST", "/v1/namespaces", body)[1]

    def worker(self, ns, node, coordinators=None, **kw):
        w = DriverWorker(self.driver, self.tmp, coordinators or self.coord, ns, node, **kw)
        self.procs.append(w)
        return w

    def router(self, ns, coordinators=None, label="router", secret=None):
        r = DriverRouter(self.driver, self.tmp, coordinators or self.coord, ns, label, secret)
        self.procs.append(r)
        return r

    def close(self):
        for p in self.procs:
            p.close()
        self.d.stop()


@pytest.fixture
def cluster(driver):
    c = Cluster(driver)
    yield c
    c.close()


def wait_for(pred, timeout=10, what="condition"):
    return harness.wait_for(pred, timeout=timeout, step=0.02, what=what)


def now_ms():
    """The runner's CLOCK_MONOTONIC in ms: the clock of the events' t_ms."""
    return time.monotonic() * 1000.0


def pytest_sessionfinish(session, exitstatus):
    """A passing run leaves no temporary directories behind (etcd's are hundreds of MB)."""
    if exitstatus == 0:
        harness.cleanup_tmp()
