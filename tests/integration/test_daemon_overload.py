"""The coordinator under watch and connection load (issue 16), with real sockets: watches whose
clients went away do not hold a change up, and are all closed once it wakes them; live watches
woken by one change all get the same state, built once; idle clients past --max-connections
or past the open-file limit neither lock out /healthz, pings and a registering worker nor
exhaust the descriptors or flood the log.
Usage: test_daemon_overload.py SHARDZD_BINARY"""
import json
import os
import resource
import socket
import sys
import threading
import urllib.request

from harness import Daemon, Worker, request, run, settled, wait_for

BIN = sys.argv[1]


def fds(d):
    return len(os.listdir(f"/proc/{d.proc.pid}/fd"))


def parked(d, ns):
    """The watches the coordinator has parked on ns (its metric)."""
    with urllib.request.urlopen(d.base + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(f'shardz_watches_parked{{ns="{ns}"}}'):
                return int(line.split()[-1])
    return 0


def test_abandoned_watches_release():
    d = Daemon(BIN).start()
    socks = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "w", "partitions": 2000})
        rev = d.call("GET", "/v1/namespaces/w")[1]["revision"]
        base = fds(d)
        for _ in range(300):
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(f"GET /v1/namespaces/w/watch?revision={rev}&timeout_ms=120000 HTTP/1.1\r\n"
                      f"Host: test\r\n\r\n".encode())
            socks.append(s)
        wait_for(lambda: parked(d, "w") == 300, 15, what="300 watches parked")
        for s in socks:
            s.close()  # the clients go away without a word
        status, _ = request(d.base, "POST", "/v1/namespaces/w/partitions", {"ids": ["new"]},
                            timeout=30)
        assert status in (200, 201)
        # the change woke them: none is parked, every abandoned socket is closed well before
        # their timeout
        assert parked(d, "w") == 0
        wait_for(lambda: fds(d) <= base + 2, 20, what="the abandoned watches' sockets closed")
    finally:
        for s in socks:
            s.close()
        d.stop()


def test_one_change_one_state_for_every_watch():
    d = Daemon(BIN).start()
    try:
        d.call("POST", "/v1/namespaces", {"name": "w", "sharder": "hash", "partitions": 64})
        rev = d.call("GET", "/v1/namespaces/w")[1]["revision"]
        bodies = []
        lock = threading.Lock()

        def watch():
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(f"GET /v1/namespaces/w/watch?revision={rev}&timeout_ms=60000 HTTP/1.1\r\n"
                      f"Host: test\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            with lock:
                bodies.append(data.split(b"\r\n\r\n", 1)[1])
        threads = [threading.Thread(target=watch) for _ in range(20)]
        for t in threads:
            t.start()
        wait_for(lambda: parked(d, "w") == 20, 15, what="20 watches parked")
        d.call("POST", "/v1/namespaces/w/partitions", {"ids": ["x"]})
        for t in threads:
            t.join(timeout=30)
        assert len(bodies) == 20, len(bodies)
        assert len(set(bodies)) == 1, "the watches got different states"
        import json
        st = json.loads(bodies[0])
        assert st["revision"] > rev and len(st["partitions"]) == 65, st["revision"]
        assert all(p["slots"] for p in st["partitions"]), "a hash partition without its slots"
    finally:
        d.stop()


def assigns(path):
    """The assignments a fakeworker logged (--assign-log), oldest first."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_same_registration_is_no_change():
    """A worker registering again with nothing new (it lost contact) bumps no revision, so
    routers do not fetch the state again, and is not sent its whole set again: it goes on with
    a delta from the set it acknowledged (PROTOCOL.md 4.1). A new zone makes a new revision and
    a whole set (the same check sees it: the positive control)."""
    d = Daemon(BIN).start()
    w = None
    try:
        d.call("POST", "/v1/namespaces", {"name": "r", "partitions": 40})
        log = os.path.join(d.tmp, "n1.assigns")
        w = Worker(d, "r", "n1", extra=["--incarnation", "i1", "--assign-log", log])
        wait_for(lambda: settled(d, "r", 40, 1, nodes=1), 15, what="placement")
        # the same process: its address and its incarnation (PROTOCOL.md 4.1)
        body = {"id": "n1", "address": f"127.0.0.1:{w.port}", "incarnation": "i1",
                "features": ["delta"]}

        def rev():
            return d.call("GET", "/v1/namespaces/r")[1]["revision"]
        before = rev()
        wait_for(lambda: any(a["replicas"] == 40 for a in assigns(log)), 15,
                 what="the 40 replicas delivered")
        seen = len(assigns(log))
        status, reply = d.call("POST", "/v1/namespaces/r/nodes", body)
        assert status == 200 and reply["node"]["id"] == "n1"
        assert reply["features"] == ["delta"], reply
        assert rev() == before, "a registration with nothing new made a new revision"
        # the next change reaches it as a delta of that change alone (the assignment we wait
        # for, seen either way), with no whole set before it
        d.call("POST", "/v1/namespaces/r/partitions", {"ids": ["new"]})
        wait_for(lambda: any(a["replicas"] + a["removed"] > 0 for a in assigns(log)[seen:]), 15,
                 what="the assignment after registering and adding a partition")
        after = assigns(log)[seen:]
        assert all(a["base_revision"] is not None for a in after), \
            f"a registration with nothing new was sent {after} (the whole set again)"
        assert any(a["replicas"] == 1 for a in after), after
        seen = len(assigns(log))
        d.call("POST", "/v1/namespaces/r/nodes", dict(body, zone="b"))
        assert rev() > before, "a new zone made no new revision"
        wait_for(lambda: len(assigns(log)) > seen, 15, what="the assignment after a new zone")
        full = assigns(log)[seen]
        assert full["base_revision"] is None and full["replicas"] == 41, full
    finally:
        if w:
            w.kill9()
        d.stop()


def test_state_body_changes_only_with_the_revision():
    """/state is built once per revision and shared (issue 16): it carries no statistics or
    ages, which change without a revision, so two reads at one revision are the same bytes,
    also while load samples arrive and ages grow (seen on GET .../partitions/{pid}: the
    positive control that time passed and the statistics moved)."""
    d = Daemon(BIN).start()
    w = None
    try:
        d.call("POST", "/v1/namespaces", {"name": "s", "partitions": 8, "sharder": "hash"})
        w = Worker(d, "s", "n1", extra=["--load", "load=2.5"])
        wait_for(lambda: settled(d, "s", 8, 1, nodes=1), 15, what="placement")
        wait_for(lambda: "load" in d.call("GET", "/v1/namespaces/s/partitions/0")[1], 15,
                 what="a load sample")

        def raw_state():
            with urllib.request.urlopen(d.base + "/v1/namespaces/s/state", timeout=10) as r:
                return r.headers["X-Shardz-Revision"], r.read()
        rev1, body1 = raw_state()
        moved = d.call("GET", "/v1/namespaces/s/partitions/0")[1].get("moved_age_ms", 0)
        wait_for(lambda: d.call("GET", "/v1/namespaces/s/partitions/0")[1].get(
            "moved_age_ms", 0) > moved + 1500, 15, what="1.5 s of statistics ageing")
        rev2, body2 = raw_state()
        assert rev1 == rev2, f"the revision moved ({rev1} -> {rev2}): nothing to compare"
        assert body1 == body2, "/state changed without a new revision (statistics or ages)"
        st = json.loads(body1)
        assert all("load" not in p and "load_age_ms" not in p for p in st["partitions"]), st
    finally:
        if w:
            w.kill9()
        d.stop()


def metric(d, name):
    with urllib.request.urlopen(d.base + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    raise AssertionError(f"no metric {name}")


def count_lines(path):
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def flood(port, n):
    """n idle clients: connected, nothing sent (the kernel queues those not yet accepted)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def closed_by_peer(s):
    s.settimeout(0)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_connection_cap():
    """300 idle clients against --max-connections 40: the daemon holds at most 40 (its fd count
    shows it), closes idle ones to make room, and /healthz, the worker's pings and a worker
    registering meanwhile all get through."""
    d = Daemon(BIN, extra=["--max-connections", "40"]).start()
    workers, socks = [], []
    try:
        d.call("POST", "/v1/namespaces", {"name": "c", "partitions": 8})
        pings = os.path.join(d.tmp, "w1.pings")
        workers.append(Worker(d, "c", "w1", extra=["--pings", pings]))
        wait_for(lambda: settled(d, "c", 8, 1, nodes=1), 20, what="placement")
        base = fds(d)
        assert metric(d, "shardz_connections_max") == 40
        socks = flood(d.port, 300)
        # the cap was reached: idle clients were closed to make room (what a daemon without a
        # cap would never do), and the daemon holds no more than the cap
        wait_for(lambda: metric(d, "shardz_connections_evicted_total") >= 100, 30,
                 what="idle clients closed at the cap")
        assert metric(d, "shardz_connections_open") <= 40
        assert fds(d) <= base + 40 + 4, (fds(d), base)
        wait_for(lambda: sum(closed_by_peer(s) for s in socks) >= 100, 20,
                 what="the idle clients seeing their connections closed")
        for _ in range(5):
            assert request(d.base, "GET", "/healthz", timeout=10)[0] == 200
        # pings go on (the health lane's own outbound connections)
        seen = count_lines(pings)
        wait_for(lambda: count_lines(pings) >= seen + 3, 20, what="three more pings")
        # a worker registering now gets in and serves
        workers.append(Worker(d, "c", "w2"))
        wait_for(lambda: d.call("GET", "/v1/namespaces/c")[1]["nodes"]["alive"] == 2, 30,
                 what="w2 registered during the flood")
        assert d.call("GET", "/v1/namespaces/c")[1]["nodes"]["alive"] == 2
        assert fds(d) <= base + 40 + 8, (fds(d), base)
        for s in socks:
            s.close()
        socks = []
        wait_for(lambda: metric(d, "shardz_connections_open") <= 2, 20,
                 what="the count back down once the clients left")
    finally:
        for s in socks:
            s.close()
        for w in workers:
            w.kill9()
        d.stop()


def test_watches_fill_the_cap():
    """Parked watches (busy connections, never idle) fill --max-connections 30: the oldest are
    answered early (200 unchanged, as at their timeout) to make room, so /healthz and a change
    still get through instead of waiting in the kernel's backlog for a watch to time out."""
    d = Daemon(BIN, extra=["--max-connections", "30"]).start()
    socks = []
    try:
        d.call("POST", "/v1/namespaces", {"name": "w", "partitions": 4})
        rev = d.call("GET", "/v1/namespaces/w")[1]["revision"]
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(f"GET /v1/namespaces/w/watch?revision={rev}&timeout_ms=120000 HTTP/1.1\r\n"
                      f"Host: test\r\n\r\n".encode())
            socks.append(s)
        wait_for(lambda: metric(d, "shardz_connections_watches_released_total") >= 1, 30,
                 what="a parked watch answered early at the cap")
        assert request(d.base, "GET", "/healthz", timeout=20)[0] == 200
        assert metric(d, "shardz_connections_open") <= 30
        # an early answer is the timeout's: unchanged, at the revision the client knows
        answered = 0
        for s in socks:
            s.settimeout(0.2)
            try:
                data = s.recv(65536)
            except OSError:
                continue
            if data.startswith(b"HTTP/1.1 200"):
                assert b'"unchanged": true' in data or b'"unchanged":true' in data, data
                answered += 1
        assert answered >= 1
    finally:
        for s in socks:
            s.close()
        d.stop()


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))


def test_full_fd_table():
    """The open-file limit (96) below the cap (1000): accept() fails with EMFILE. The daemon
    pauses accepting with backoff and logs it at most once every 10 s (libevent alone logged
    `Error from accept() call` in a tight loop), and a worker still registers."""
    d = Daemon(BIN, extra=["--max-connections", "1000"])
    d.start_kw = {}
    d.logf = open(d.log, "ab")
    import subprocess
    d.proc = subprocess.Popen(
        [d.binary, "--listen", f"127.0.0.1:{d.port}", "--data", d.data, "--log-level", "debug",
         "--max-connections", "1000"], stdout=d.logf, stderr=d.logf, env=d.env,
        preexec_fn=low_nofile)
    workers, socks = [], []
    try:
        d.wait_ready()
        d.call("POST", "/v1/namespaces", {"name": "f", "partitions": 4})
        socks = flood(d.port, 200)
        # the fd table filled: accept() failed (positive control: we would see it)
        wait_for(lambda: metric(d, "shardz_accept_errors_total") >= 1, 30,
                 what="accept() failing with EMFILE")
        workers.append(Worker(d, "f", "w1"))
        wait_for(lambda: d.call("GET", "/v1/namespaces/f")[1]["nodes"]["alive"] == 1, 60,
                 what="w1 registered with the fd table full")
        errors = metric(d, "shardz_accept_errors_total")
        size = os.path.getsize(d.log)
        lines = [ln for ln in d.tail(10**7).splitlines()
                 if "accept" in ln.lower()]
        paused = [ln for ln in lines if "accepting paused" in ln]
        assert not [ln for ln in lines if "Error from accept() call" in ln], lines[:3]
        assert 1 <= len(paused) <= 10, len(paused)
        assert size < 2 * 1024 * 1024, size
        assert errors >= 1
    finally:
        for s in socks:
            s.close()
        for w in workers:
            w.kill9()
        d.stop()


if __name__ == "__main__":
    run([test_abandoned_watches_release, test_one_change_one_state_for_every_watch,
         test_same_registration_is_no_change, test_state_body_changes_only_with_the_revision,
         test_connection_cap, test_watches_fill_the_cap,
         test_full_fd_table])
