"""The coordinator under watch load (issue 16), with real sockets: watches whose clients went
away do not hold a change up, and are all closed once it wakes them; live watches woken by
one change all get the same state, built once.
Usage: test_daemon_overload.py SHARDZD_BINARY"""
import os
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


def test_same_registration_is_no_change():
    """A worker registering again with nothing new (it lost contact) bumps no revision, so
    routers do not fetch the state again; a new zone does (the same check sees it)."""
    d = Daemon(BIN).start()
    w = None
    try:
        d.call("POST", "/v1/namespaces", {"name": "r", "partitions": 4})
        w = Worker(d, "r", "n1", extra=["--incarnation", "i1"])
        wait_for(lambda: settled(d, "r", 4, 1, nodes=1), 15, what="placement")
        # the same process: its address and its incarnation (PROTOCOL.md 4.1)
        body = {"id": "n1", "address": f"127.0.0.1:{w.port}", "incarnation": "i1"}

        def rev():
            return d.call("GET", "/v1/namespaces/r")[1]["revision"]
        before = rev()
        status, reply = d.call("POST", "/v1/namespaces/r/nodes", body)
        assert status == 200 and reply["node"]["id"] == "n1"
        assert rev() == before, "a registration with nothing new made a new revision"
        d.call("POST", "/v1/namespaces/r/nodes", dict(body, zone="b"))
        assert rev() > before, "a new zone made no new revision"
    finally:
        if w:
            w.kill9()
        d.stop()


if __name__ == "__main__":
    run([test_abandoned_watches_release, test_one_change_one_state_for_every_watch,
         test_same_registration_is_no_change])
