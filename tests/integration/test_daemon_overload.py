"""The coordinator under watch load (issue 16), with real sockets: watches whose clients went
away do not hold a change up, and are all closed once it wakes them; live watches woken by
one change all get the same state, built once.
Usage: test_daemon_overload.py SHARDZD_BINARY"""
import os
import socket
import sys
import threading

from harness import Daemon, request, run, wait_for

BIN = sys.argv[1]


def fds(d):
    return len(os.listdir(f"/proc/{d.proc.pid}/fd"))


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
        wait_for(lambda: fds(d) >= base + 300, 15, what="300 watches parked")
        for s in socks:
            s.close()  # the clients go away without a word
        status, _ = request(d.base, "POST", "/v1/namespaces/w/partitions", {"ids": ["new"]},
                            timeout=30)
        assert status in (200, 201)
        # the change woke them: every abandoned socket is closed well before their timeout
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
        base = fds(d)
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
        wait_for(lambda: fds(d) >= base + 20, 15, what="20 watches parked")
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


if __name__ == "__main__":
    run([test_abandoned_watches_release, test_one_change_one_state_for_every_watch])
